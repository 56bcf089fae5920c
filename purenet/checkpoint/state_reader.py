"""A ``TrainState`` rebuilt from a file's ``meta`` record and its arrays, every value
checked as it is taken (formats 2 and 3 share it; ``read_v2`` and ``read_v3`` give the
arrays).

Every array is asked for with the shape the architecture gives it and the dtype of the run
record, so its source can refuse it before reading a byte: a file cannot declare a
3 GB dataset where the architecture allows a few KB, nor float64 parameters in a float32
run. Counters are JSON integers in range, the early-stopping fields numbers of their kind,
the optimizer state one of ``STATE_RECORDS`` with exactly its fields.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import numpy as np

from purenet.checkpoint import contract
from purenet.checkpoint.contract import architecture
from purenet.core.records import Dense, Grads, Params
from purenet.errors import CorruptCheckpointError
from purenet.optim.lbfgs import STOP_REASONS
from purenet.optim.states import (COUNT, NUMBER, REASON, RECORDS, ROWS, STATE_RECORDS, TREE,
                                  VALUES, VECTOR, field_kinds)
from purenet.train.config import RunConfig
from purenet.train.state import HISTORY_COLUMNS, EarlyStoppingState, EpochTotals, History, TrainState


class ArraySource(Protocol):
    def array(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """The array ``name``, refused unless it has this shape and dtype."""


def is_int(value: Any) -> bool:
    return type(value) is int


def counter(meta: dict[str, Any], name: str, path: str, low: int = 0) -> int:
    """A step, epoch, batch index or seed as the file holds it: a JSON integer in range."""
    value = meta.get(name)
    if not is_int(value) or not low <= value < 2**63:
        raise CorruptCheckpointError(f"{path}: {name} must be an integer from {low} to "
                                     f"2**63-1, the file holds {value!r:.60}")
    return value


class StateReader:
    """Takes a state's arrays from ``source`` with the shapes and dtype the run gives them,
    keeping track of the names taken."""

    def __init__(self, source: ArraySource, path: str, config: RunConfig) -> None:
        self.source, self.path = source, path
        self.layers_spec = config.architecture.layers
        self.architecture, self.dtype = config.architecture, config.np_dtype
        self.size = config.architecture.parameter_count   # of a flat vector of the params
        self.read: set[str] = set()

    def array(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        self.read.add(name)
        return self.source.array(name, shape, dtype)

    def layers(self, prefix: str) -> tuple[Dense, ...]:
        return tuple(Dense(self.array(f"{prefix}/W{i}", (s.input_dim, s.output_dim), self.dtype),
                           self.array(f"{prefix}/b{i}", (s.output_dim,), self.dtype))
                     for i, s in enumerate(self.layers_spec))

    def params(self, prefix: str) -> Params:
        return Params(self.layers(prefix), self.architecture)

    def record(self, data: Any, prefix: str, depth: int = 0) -> Any:
        """The optimizer state record ``data`` describes (a chain's records nested)."""
        if not isinstance(data, dict) or not isinstance(data.get("record"), str) or depth > 8:
            raise CorruptCheckpointError(f"{self.path}: the optimizer state at {prefix} must be "
                                         f"an object naming its record, the file holds "
                                         f"{data!r:.80}")
        if data["record"] not in STATE_RECORDS:
            raise contract.newer(self.path, f"the optimizer state record {data['record']!r:.40} "
                                 f"at {prefix}")
        cls = STATE_RECORDS[data["record"]]
        kinds = field_kinds(cls)
        contract.fields(data, ("record", *kinds), f"the optimizer state at {prefix}", self.path)
        values = {}
        for name, kind in kinds.items():
            at = f"{prefix}/{name}"
            values[name] = self.stored(kind, data[name], at, depth)
        return cls(**values)

    def stored(self, kind: str, value: Any, at: str, depth: int = 0) -> Any:
        """The field at ``at`` of a state record, checked as its kind must be (trees of
        the parameters' shapes, vectors as long as the flat parameters)."""
        if kind == RECORDS and isinstance(value, list):
            return tuple(self.record(item, f"{at}/{i}", depth + 1) for i, item in enumerate(value))
        taken = _KINDS[kind](self, value, at)
        if taken is _REFUSED:
            raise CorruptCheckpointError(f"{self.path}: the optimizer state's {at} is "
                                         f"{value!r:.80}; expected {_EXPECTED[kind]}")
        return taken

    def history(self, epochs: int) -> History:
        """One row per finished epoch: 1-D float64 columns of ``epochs`` entries."""
        columns = {c: self.array(f"/history/{c}", (epochs,), np.dtype(np.float64)).tolist()
                   for c in HISTORY_COLUMNS}
        if any(e != int(e) for e in columns["epoch"] if math.isfinite(e)) \
                or not all(map(math.isfinite, columns["epoch"])):   # before int() rounds it
            raise CorruptCheckpointError(f"{self.path}: the history's epoch column holds a "
                                         "fraction or a non-finite number")
        columns["epoch"] = [int(e) for e in columns["epoch"]]
        return History(**{c: tuple(v) for c, v in columns.items()})


_REFUSED: Any = object()


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float))


def _finite(value: Any) -> bool:
    return _is_number(value) and math.isfinite(value)


def _rows(reader: StateReader, value: Any, at: str) -> Any:
    if not isinstance(value, dict) or set(value) != {"array", "rows"} \
            or value["array"] != at or not is_int(value["rows"]) or value["rows"] < 0:
        return _REFUSED
    stacked = reader.array(at, (value["rows"], reader.size), reader.dtype)
    return tuple(stacked)


_KINDS = {
    COUNT: lambda r, v, at: v if is_int(v) and 0 <= v < 2**63 else _REFUSED,
    NUMBER: lambda r, v, at: float(v) if _finite(v) else _REFUSED,
    REASON: lambda r, v, at: v if isinstance(v, str) and (v == "" or v in STOP_REASONS)
    else _REFUSED,
    VECTOR: lambda r, v, at: r.array(at, (r.size,), r.dtype) if v == at else _REFUSED,
    ROWS: _rows,
    VALUES: lambda r, v, at: tuple(map(float, v)) if isinstance(v, list)
    and all(map(_finite, v)) else _REFUSED,
    TREE: lambda r, v, at: Grads(r.layers(at)) if v == at else _REFUSED,
    RECORDS: lambda r, v, at: _REFUSED,   # a list is read by StateReader.stored
}
_EXPECTED = {COUNT: "an integer from 0 to 2**63-1", NUMBER: "a finite number",
             REASON: f"'' or one of {sorted(STOP_REASONS)}", VECTOR: "its own path",
             ROWS: '{"array": its own path, "rows": an integer >= 0}',
             VALUES: "a list of finite numbers", TREE: "the path of its arrays",
             RECORDS: "a list of records"}


def _number(value: Any, what: str, path: str) -> float:
    if not _is_number(value):
        raise CorruptCheckpointError(f"{path}: {what} must be a number, the file holds "
                                     f"{value!r:.40}")
    return float(value)


def _early(reader: StateReader, data: Any, epoch: int, path: str) -> EarlyStoppingState | None:
    if data is None:
        return None
    data = contract.record(data, "meta.early_stopping", path)
    if not is_int(data["best_epoch"]) or not -1 <= data["best_epoch"] < max(epoch, 0) \
            or not is_int(data["wait"]) or not 0 <= data["wait"] <= epoch \
            or not isinstance(data["best_params"], bool):
        raise CorruptCheckpointError(
            f"{path}: early_stopping must hold best_epoch in [-1, epoch), wait in [0, epoch] "
            f"and best_params true or false (epoch {epoch}), the file holds {data!r:.120}")
    best = reader.params("/early_stopping/best_params") if data["best_params"] else None
    return EarlyStoppingState(_number(data["best"], "early_stopping.best", path),
                              data["best_epoch"], data["wait"], best)


def _totals(data: Any, path: str) -> EpochTotals:
    data = contract.record(data, "meta.totals", path)
    if not is_int(data["samples"]) or data["samples"] < 0:
        raise CorruptCheckpointError(f"{path}: totals.samples must be an integer >= 0, the "
                                     f"file holds {data['samples']!r:.40}")
    return EpochTotals(_number(data["loss_sum"], "totals.loss_sum", path),
                       _number(data["correct"], "totals.correct", path), data["samples"])


def read_state(meta: dict[str, Any], source: ArraySource, config: RunConfig,
               path: str) -> tuple[TrainState, set[str]]:
    """The state ``meta`` describes, its arrays from ``source``, and the array names taken.

    ``meta``'s architecture must be the run record's; ``validity.check_state`` checks the
    state against the run afterwards.
    """
    if architecture(meta.get("architecture"), "meta.architecture", path) != config.architecture:
        raise CorruptCheckpointError(f"{path}: the architecture of its run record is not the "
                                     "one of its parameters")
    step, epoch, batch_index, seed = (counter(meta, name, path)
                                      for name in ("step", "epoch", "batch_index", "seed"))
    if not isinstance(meta.get("stopped"), bool):
        raise CorruptCheckpointError(f"{path}: stopped must be true or false, the file holds "
                                     f"{meta.get('stopped')!r:.40}")
    reader = StateReader(source, path, config)
    params = reader.params("/params")
    opt_state = reader.record(meta.get("optimizer_state"), "/optimizer")
    history = reader.history(epoch)
    early = _early(reader, meta.get("early_stopping"), epoch, path)
    state = TrainState(step=step, epoch=epoch, batch_index=batch_index, seed=seed,
                       params=params, opt_state=opt_state, totals=_totals(meta.get("totals"), path),
                       history=history, early_stopping=early, stopped=meta["stopped"])
    return state, reader.read
