"""Targets as scikit-learn users give them -> targets as the network computes with them.

A classifier's task follows from its labels (scikit-learn's ``type_of_target``): two
classes train one sigmoid unit, more a softmax, an indicator matrix one sigmoid per label.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from sklearn.utils.multiclass import check_classification_targets, type_of_target

from purenet.model import encode_labels

Array = np.ndarray

# task -> (loss, output activation): MLPClassifier's losses, averaged over samples and
# summed over labels, so one step from the same weights is its step.
TASKS = {"binary": ("binary_crossentropy", "sigmoid"),
         "multiclass": ("categorical_crossentropy", "softmax"),
         "multilabel": ("multilabel_log_loss", "sigmoid")}
# the estimator's loss -> (purenet's loss, output activation); the first two are
# MLPRegressor's (half the squared error, half the Poisson deviance), the others purenet's.
REGRESSION_LOSSES = {"squared_error": ("half_squared_error", "identity"),
                     "poisson": ("poisson", "exp"),
                     "absolute_error": ("mean_absolute_error", "identity"),
                     "huber": ("huber", "identity")}


class Targets(NamedTuple):
    y: Array              # class ids, 0/1 columns, or values: what the loss takes
    loss: str
    output: str           # the output layer's activation
    n_outputs: int
    strata: Array | None  # class ids to stratify a validation split by; None: no strata


def labels_of(y: Any) -> Array:
    """``y`` checked as classification targets; a column vector becomes 1-D."""
    check_classification_targets(y)
    y = np.asarray(y)
    return y[:, 0] if y.ndim == 2 and y.shape[1] == 1 else y


def classes_of(y: Array, classes: Any = None) -> tuple[Array, str]:
    """``(classes_, task)`` of a first fit: the sorted labels of ``y`` (or the ``classes``
    that partial_fit was given), and the task they make."""
    if type_of_target(y) == "multilabel-indicator":
        return np.arange(y.shape[1]), "multilabel"
    if y.ndim != 1:
        raise ValueError(f"PureNetClassifier takes 1-D labels or a 0/1 indicator matrix for "
                         f"multi-label targets; y is {type_of_target(y)} of shape {y.shape}")
    found = np.unique(y) if classes is None else np.unique(np.asarray(classes))
    # One class trains one sigmoid towards 0, as MLPClassifier's label binarizer makes it.
    return found, "binary" if len(found) <= 2 else "multiclass"


def classifier_targets(y: Array, classes: Array, task: str) -> Targets:
    """The targets of ``y`` for a classifier of ``classes`` on ``task``.

    Raises:
        ValueError: ``y`` holds labels outside ``classes``, or is of another task.
    """
    loss, output = TASKS[task]
    if task == "multilabel":
        if y.ndim != 2 or y.shape[1] != len(classes):
            raise ValueError(f"this classifier was fitted on {len(classes)} labels "
                             f"(multi-label), y has shape {y.shape}")
        return Targets(y.astype(np.float64), loss, output, len(classes), None)
    if y.ndim != 1:
        raise ValueError(f"this classifier was fitted on 1-D labels, y has shape {y.shape}")
    ids = encode_labels(y, classes)
    if task == "binary":
        return Targets(ids.astype(np.float64), loss, output, 1, ids)
    return Targets(ids, loss, output, len(classes), ids)


def regressor_targets(y: Array, loss: str) -> Targets:
    """The targets of a regression: one output per column of ``y``."""
    if loss not in REGRESSION_LOSSES:
        raise ValueError(f"loss={loss!r} is unknown; expected one of "
                         f"{sorted(REGRESSION_LOSSES)}")
    y = np.asarray(y, dtype=np.float64)
    y2 = y.reshape(-1, 1) if y.ndim == 1 else y
    name, output = REGRESSION_LOSSES[loss]
    if name == "poisson" and (y2 < 0).any():
        raise ValueError(f"loss='poisson' needs y >= 0 (counts or rates), y has "
                         f"{y2.min().item()!r}; use loss='squared_error' for signed targets")
    return Targets(y2, name, output, y2.shape[1], None)
