"""The arrays of a training state by their path in a checkpoint (``/params/W0``,
``/optimizer/mu/b1``, ``/early_stopping/best_params/W0``), and the optimizer state record
as JSON-able data whose trees stand as those paths.

Each field of a record is stored by its kind (``optim.states.field_kinds``): a tree as a
group of datasets, nested records as a list, a vector as one dataset, rows (a tuple of
vectors, L-BFGS's curvature pairs) stacked as one (rows, n) dataset standing as
``{"array": path, "rows": k}``, values as a JSON list, counts, numbers and reasons as JSON."""

from __future__ import annotations

import math
from typing import Any, Iterator

import attrs
import numpy as np

from purenet.core.records import Grads, Params
from purenet.optim.states import NUMBER, RECORDS, ROWS, TREE, VALUES, VECTOR, field_kinds
from purenet.train.state import TrainState

__all__ = ["non_finite_arrays", "state_arrays"]


def _tree_arrays(tree: Params | Grads, prefix: str) -> list[tuple[str, np.ndarray]]:
    return [(f"{prefix}/{name}{i}", getattr(layer, name))
            for i, layer in enumerate(tree.layers) for name in ("W", "b")]


def _record_meta(record: Any, prefix: str, arrays: list) -> dict[str, Any]:
    """The record as JSON-able data; its trees' arrays are appended to ``arrays`` and
    stand in the data as their group's path."""
    out: dict[str, Any] = {"record": type(record).__name__}
    for name, kind in field_kinds(type(record)).items():
        value, at = getattr(record, name), f"{prefix}/{name}"
        if kind in _STORED:
            out[name] = _STORED[kind](record, attrs.fields_dict(type(record))[name], value, at,
                                      arrays)
        elif kind == TREE:
            arrays += _tree_arrays(value, at)
            out[name] = at
        elif kind == RECORDS:
            out[name] = [_record_meta(item, f"{at}/{i}", arrays) for i, item in enumerate(value)]
        else:
            out[name] = value.item() if isinstance(value, np.generic) else value
    return out


def _vector(record: Any, field: Any, value: np.ndarray, path: str, arrays: list) -> str:
    arrays.append((path, value))
    return path


def _rows(record: Any, field: Any, value: tuple, path: str, arrays: list) -> dict[str, Any]:
    # Every row is as long as the field metadata's "like" vector, even when there are none.
    width = getattr(record, field.metadata["like"])
    stacked = np.stack(value) if value else np.zeros((0, width.size), width.dtype)
    arrays.append((path, stacked))
    return {"array": path, "rows": len(value)}


_STORED = {VECTOR: _vector, ROWS: _rows,
           VALUES: lambda record, field, value, path, arrays: list(value)}


def state_arrays(state: TrainState) -> tuple[list[tuple[str, np.ndarray]], dict[str, Any]]:
    """Every array of the state with its dataset path (history excluded), and the
    optimizer state record's data."""
    arrays = _tree_arrays(state.params, "/params")
    record = _record_meta(state.opt_state, "/optimizer", arrays)
    early = state.early_stopping
    if early is not None and early.best_params is not None:
        arrays += _tree_arrays(early.best_params, "/early_stopping/best_params")
    return arrays, record


def non_finite_arrays(state: TrainState) -> list[str]:
    """The file paths (e.g. ``/params/W1``) of the state's arrays that hold NaN or inf:
    parameters, optimizer state, and early stopping's best parameters; and of the
    optimizer state's numbers that are NaN or inf."""
    arrays, record = state_arrays(state)
    return [name for name, array in arrays if not np.isfinite(array).all()] + \
        list(_non_finite_numbers(record, state.opt_state, "/optimizer"))


def _non_finite_numbers(data: dict[str, Any], record: Any, prefix: str) -> Iterator[str]:
    for name, kind in field_kinds(type(record)).items():
        if kind == NUMBER and not math.isfinite(data[name]):
            yield f"{prefix}/{name}"
        elif kind == RECORDS:
            for i, (item, inner) in enumerate(zip(data[name], getattr(record, name))):
                yield from _non_finite_numbers(item, inner, f"{prefix}/{name}/{i}")
