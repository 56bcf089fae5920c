"""Deterministic data order and splits.

The order of epoch ``e`` is a permutation drawn from ``(seed, "data", e)`` alone, so any
batch of any epoch can be produced without replaying the epochs before it; that is what
lets a run resume mid-epoch exactly where it stopped.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from purenet.core.checks import check, integer
from purenet.core.rng import check_seed, derive
from purenet.core.sparse import SparseRows
from purenet.errors import SettingError

Array = np.ndarray
# More batches an epoch than any machine holds samples for (2**40 samples of one float32
# feature are 4 TiB): the bound on a run's counters where its data is not recorded.
MAX_BATCHES = 2**40


def batches_per_epoch(n_samples: int, batch_size: int, drop_last: bool = False) -> int:
    """How many batches an epoch has (the last one partial unless ``drop_last``)."""
    check("batch_size", batch_size, integer(1))
    if n_samples < 1:
        raise ValueError(f"an epoch needs at least one sample, got n_samples={n_samples}")
    count = n_samples // batch_size if drop_last else math.ceil(n_samples / batch_size)
    if count == 0:
        raise ValueError(
            f"batch_size={batch_size} with drop_last=True leaves no batch for "
            f"{n_samples} samples; lower batch_size or set drop_last=False"
        )
    return count


def progress_problems(step: int, epoch: int, batch_index: int,
                      per_epoch: int | None) -> list[str]:
    """Where counters cannot be a point of one run on one data set, whose epochs each have
    ``per_epoch`` batches (None: not known; then only what every such run obeys is checked,
    the same count of batches in every finished epoch and more than ``batch_index``)."""
    if per_epoch is not None:
        if batch_index >= per_epoch:
            return [f"batch_index {batch_index} lies past the end of an epoch, which has "
                    f"{per_epoch} batches"]
        if step != epoch * per_epoch + batch_index:
            return [f"step {step} is not epoch * {per_epoch} + batch_index = "
                    f"{epoch * per_epoch + batch_index} ({per_epoch} batches an epoch)"]
        return []
    done = step - batch_index
    if done < 0 or batch_index >= MAX_BATCHES or (epoch == 0 and done != 0) or (epoch > 0 and (
            done % epoch or not batch_index < done // epoch <= MAX_BATCHES)):
        return [f"step {step} at epoch {epoch}, batch_index {batch_index} is no point of a "
                "run: its finished epochs cannot each have the same number of batches, more "
                f"than batch_index and at most {MAX_BATCHES:,}"]
    return []


def epoch_order(seed: int, epoch: int, n_samples: int, shuffle: bool = True) -> Array:
    """The sample indices of epoch ``epoch`` in the order they are visited."""
    if not shuffle:
        return np.arange(n_samples)
    return derive(seed, "data", epoch).permutation(n_samples)


def batch_indices(order: Array, batch: int, batch_size: int) -> Array:
    """The indices of batch ``batch`` in an epoch's ``order``: a view, not a copy."""
    return order[batch * batch_size:(batch + 1) * batch_size]


def gather(array: Array, indices: Array, out: Array | None = None) -> Array:
    """Rows ``indices`` of ``array``: copies the batch only, never the whole dataset; into
    ``out`` (of the batch's shape and ``array``'s dtype) when given."""
    if len(indices) == len(array) > 0 and indices[0] == 0 and (np.diff(indices) == 1).all():
        return array   # the full batch, in order: no copy at all
    if isinstance(array, SparseRows):
        return array.take(indices)   # the batch's rows, sparse
    # With out=, take's default mode="raise" copies through a temporary (numpy's docs say
    # so; it doubles the cost); indices of an epoch order are always in range, so "clip"
    # never changes one and writes straight into out.
    return np.take(array, indices, axis=0, out=out, mode="raise" if out is None else "clip")


def check_batch_size(batch_size: Any, n_samples: int) -> int:
    """``batch_size`` as an int in [1, n_samples]; None means the full batch."""
    if batch_size is None:
        return n_samples
    try:
        check("batch_size", batch_size, integer(1))
    except SettingError as error:
        raise type(error)(error.path, f"{error.problem} (or None for the full batch)") from None
    return min(int(batch_size), n_samples)


def train_validation_split(x: Array, y: Array, validation_fraction: float, seed: int,
                           stratify: bool = False) -> tuple[Array, Array, Array, Array]:
    """Split ``(x, y)`` into ``(x_train, y_train, x_val, y_val)``, deterministically from
    ``(seed, "split")``.

    With ``stratify``, each class keeps its share in both parts, to within one sample
    (``y`` must then be class labels of shape (n_samples,) or (n_samples, 1), or one-hot
    rows).
    """
    if isinstance(validation_fraction, bool) or not isinstance(
            validation_fraction, (int, float, np.integer, np.floating)):
        raise TypeError(f"validation_fraction must be a number in (0, 1), got "
                        f"{type(validation_fraction).__name__} {validation_fraction!r}")
    if not 0 < validation_fraction < 1:
        raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction!r}")
    x, y = np.asarray(x), np.asarray(y)
    n = len(x)
    if len(y) != n:
        raise ValueError(f"x has {n} samples but y has {len(y)}")
    rng = derive(check_seed(seed), "split")
    if stratify:
        # A single column holds the labels themselves (binary 0/1 targets of shape
        # (n_samples, 1)); its argmax would put every sample in one class.
        labels = y.reshape(n) if y.ndim == 1 or y.shape[1:] == (1,) else y.argmax(axis=1)
        val = []
        for label in np.unique(labels):
            members = rng.permutation(np.flatnonzero(labels == label))
            val.append(members[:round(len(members) * validation_fraction)])
        val_idx = np.sort(np.concatenate(val))
    else:
        val_idx = np.sort(rng.permutation(n)[:round(n * validation_fraction)])
    if len(val_idx) == 0 or len(val_idx) == n:
        raise ValueError(
            f"validation_fraction={validation_fraction} of {n} samples leaves an empty part; "
            "pick a fraction that keeps at least one sample on each side"
        )
    train_mask = np.ones(n, dtype=bool)
    train_mask[val_idx] = False
    return x[train_mask], y[train_mask], x[val_idx], y[val_idx]
