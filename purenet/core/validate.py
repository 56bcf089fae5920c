"""Checks of user input, done before any computation so that bad data fails early with a
message that says what was expected, what was found, and what to do."""

from __future__ import annotations

from typing import Any

import numpy as np

from purenet.core.losses import target_kind
from purenet.core.records import Architecture
from purenet.core.sparse import SparseRows, is_sparse, sparse_rows

Array = np.ndarray
_NUMERIC_KINDS = "biuf"


def _numeric_array(value: Any, name: str) -> Array:
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as error:
        raise TypeError(f"{name} must be a numeric array, could not convert it: {error}") from None
    if array.dtype.kind not in _NUMERIC_KINDS:
        raise TypeError(
            f"{name} must hold numbers (int or float), got dtype {array.dtype}; convert it "
            f"with np.asarray({name}, dtype=float) after encoding any text columns"
        )
    return array


def _all_finite(array: Array) -> bool:
    # A sum is NaN or inf when any entry is, and needs no boolean copy of the data (which
    # for a large training set would be the biggest allocation of a fit); only a sum that
    # overflows from finite entries needs the entry-by-entry check.
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(array.sum()):
            return True
    return bool(np.isfinite(array).all())


def _check_finite(array: Array, name: str) -> None:
    if array.dtype.kind == "f" and not _all_finite(array):
        bad = np.argwhere(~np.isfinite(array))
        raise ValueError(
            f"{name} holds {len(bad)} NaN or inf value(s), the first at index "
            f"{tuple(int(i) for i in bad[0])}; remove or impute them before training"
        )


def check_x(x: Any, architecture: Architecture, dtype: np.dtype) -> Array:
    """``x`` as a finite (n_samples, input_dim) array of ``dtype``; a scipy.sparse matrix
    or array (CSR, CSC, ...) becomes ``SparseRows`` over its stored entries instead."""
    if is_sparse(x) or isinstance(x, SparseRows):
        return _check_sparse(x, architecture, dtype)
    x = _numeric_array(x, "x")
    if x.ndim != 2:
        hint = "; for a single feature use x.reshape(-1, 1)" if x.ndim == 1 else ""
        raise ValueError(f"x must be 2-D (n_samples, n_features), got shape {x.shape}{hint}")
    if x.shape[0] == 0:
        raise ValueError("x has no samples (shape {}); pass at least one row".format(x.shape))
    if x.shape[1] != architecture.input_dim:
        raise ValueError(
            f"x has {x.shape[1]} features but the network's first layer expects "
            f"{architecture.input_dim} (input_dim={architecture.input_dim})"
        )
    _check_finite(x, "x")
    return np.asarray(x, dtype=dtype)


def _check_sparse(x: Any, architecture: Architecture, dtype: np.dtype) -> SparseRows:
    if x.shape[0] == 0 or x.shape[1] != architecture.input_dim:
        raise ValueError(f"x has shape {x.shape} but the network's first layer expects "
                         f"(n_samples >= 1, {architecture.input_dim}) "
                         f"(input_dim={architecture.input_dim})")
    if isinstance(x, SparseRows) and x.dtype == dtype:
        return x   # checked already
    rows = sparse_rows(x.matrix if isinstance(x, SparseRows) else x, dtype)
    _check_finite(rows.matrix.data, "the stored entries of sparse x")
    return rows


def check_targets(y: Any, n_samples: int, loss: str, architecture: Architecture,
                  dtype: np.dtype) -> Array:
    """``y`` in the form the loss computes with (see ``purenet.core.losses``).

    Categorical cross-entropy keeps 1-D integer class ids as intp ids; every other target
    becomes a float array of ``dtype`` shaped like the network's output.
    """
    y = _numeric_array(y, "y")
    _check_finite(y, "y")
    if y.ndim == 0 or y.shape[0] != n_samples:
        raise ValueError(
            f"y must have one row per sample of x ({n_samples}), got shape {y.shape}"
        )
    n_outputs = architecture.output_dim
    if loss == "categorical_crossentropy" and y.ndim == 1:
        return _class_ids(y, n_outputs)
    if y.ndim == 1 and n_outputs == 1:
        y = y.reshape(-1, 1)
    if y.shape != (n_samples, n_outputs):
        raise ValueError(
            f"y has shape {y.shape} but the output layer has {n_outputs} unit(s); expected "
            f"({n_samples}, {n_outputs})"
            + (" or class ids of shape (n_samples,)" if loss == "categorical_crossentropy" else "")
        )
    y = np.asarray(y, dtype=dtype)
    kind = target_kind(loss)
    if kind == "binary":
        _check_binary(y, loss)
    elif kind == "categorical":
        _check_distributions(y)
    return y


def _class_ids(y: Array, n_classes: int) -> Array:
    # Checked before casting: a cast of a huge float to int warns and wraps around.
    valid = (y >= 0) & (y < n_classes) & (y % 1 == 0)
    if not valid.all():
        # .item(): numpy 2 would print a numpy scalar as np.int64(7).
        bad = y[~valid][0].item()
        raise ValueError(
            f"y holds label {bad!r} but a {n_classes}-way softmax output can only produce "
            f"the integer classes 0..{n_classes - 1}; encode the labels (e.g. with "
            "sklearn.preprocessing.LabelEncoder) or widen the output layer"
        )
    return y.astype(np.intp)


def _check_binary(y: Array, loss: str) -> None:
    bad = y[(y != 0) & (y != 1)]
    if bad.size:
        raise ValueError(
            f"{loss} needs labels 0 or 1, got {bad[0].item()!r}; encode the classes "
            "as 0/1, or use a softmax output for more than two classes"
        )


def _check_distributions(y: Array) -> None:
    if (y < 0).any() or (y > 1).any() or not np.allclose(y.sum(axis=1), 1, atol=1e-4):
        raise ValueError(
            "categorical_crossentropy with 2-D y needs one-hot or probability rows "
            "(entries in [0, 1], each row summing to 1); pass integer class ids of shape "
            "(n_samples,) instead"
        )
