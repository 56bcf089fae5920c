"""Loss and accuracy of a network on data."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from purenet.core.losses import CLASSIFICATION_LOSSES, resolve_loss, target_kind
from purenet.core.network import objective
from purenet.core.records import Params
from purenet.core.validate import check_targets, check_x

Array = np.ndarray


def count_correct(loss: str, A: Array, y: Array, weights: Array | None = None) -> float:
    """Correctly classified samples in a batch (0.0 for regression losses); with
    ``weights``, each sample counts as its weight."""
    kind = target_kind(loss)
    if kind == "categorical":
        labels = y if y.ndim == 1 else y.argmax(axis=1)
        hits = A.argmax(axis=1) == labels
        return float(np.count_nonzero(hits) if weights is None else weights @ hits)
    if kind == "binary":
        hits = (A > 0.5) == (y > 0.5)
        count = np.count_nonzero(hits) if weights is None else weights @ hits.sum(axis=1)
        return float(count) / A.shape[1]
    return 0.0


def r2(A: Array, y: Array) -> float:
    """The coefficient of determination averaged over outputs, as scikit-learn's
    ``r2_score`` (a constant target scores 1.0 when matched exactly, else 0.0)."""
    A, y = A.astype(np.float64), y.astype(np.float64)
    sse = np.square(y - A).sum(axis=0)
    sst = np.square(y - y.mean(axis=0)).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = np.where(sst > 0, 1 - sse / np.where(sst > 0, sst, 1),
                          np.where(sse == 0, 1.0, 0.0))
    return float(scores.mean())


def subset_accuracy(A: Array, y: Array, loss: str) -> float:
    """The fraction of samples whose every label is right, as scikit-learn's
    ``accuracy_score`` (for one label or one class per sample, the accuracy)."""
    if target_kind(loss) == "categorical":
        return count_correct(loss, A, y) / len(A)
    return float(((A > 0.5) == (y > 0.5)).all(axis=1).mean())


# Validation scores early stopping may watch that the history does not record (its columns
# are the checkpoint's): name -> (A, y, loss) -> score.
WATCHED = {"val_r2": lambda A, y, loss: r2(A, y), "val_subset_accuracy": subset_accuracy}


def score(params: Params, x: Array, y: Array, loss: str, l2: float = 0.0,
          watch: str | None = None) -> tuple[float, ...]:
    """``(loss, accuracy)`` of ``params`` on validated data (``x`` from ``check_x``, ``y``
    from ``check_targets``), without dropout; accuracy is NaN for regression losses. With
    ``watch`` (a name of ``WATCHED``), that score follows, for early stopping."""
    value, A, _ = objective(params, x, y, loss, l2, grads=False)
    accuracy = count_correct(loss, A, y) / len(x) if loss in CLASSIFICATION_LOSSES else math.nan
    return (value, accuracy) if watch is None else (value, accuracy, WATCHED[watch](A, y, loss))


def evaluate(params: Params, x: Any, y: Any, loss: str | None = None) -> dict[str, float]:
    """The mean loss and (for classifiers) the accuracy of ``params`` on ``(x, y)``."""
    arch = params.architecture
    loss = resolve_loss(loss, arch.output_activation)
    x = check_x(x, arch, params.dtype)
    value, accuracy = score(params, x, check_targets(y, len(x), loss, arch, params.dtype), loss)
    return {"loss": value, "accuracy": accuracy}


