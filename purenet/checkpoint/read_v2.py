"""Format 2 read back: the verified image's objects, its arrays used in place, and the
records rebuilt and checked (``format_v2.py`` writes it)."""

from __future__ import annotations

import json
from typing import Any

import attrs
import h5py
import numpy as np

from purenet.checkpoint.format_v2 import FLOATS, FORMAT_NAME, state_arrays
from purenet.checkpoint.sealed import USERBLOCK_SIZE
from purenet.core.records import Architecture, Dense, Grads, Params
from purenet.errors import CorruptCheckpointError, NotACheckpointError, UnsupportedCheckpointError
from purenet.optim.states import STATE_RECORDS
from purenet.train.state import HISTORY_COLUMNS, EarlyStoppingState, EpochTotals, History, TrainState


def _objects(f: h5py.File, path: str) -> set[str]:
    """Every object's path; a link of any kind but a hard link is refused."""
    found = set()

    def visit(name: bytes, info: Any) -> Any:
        found.add("/" + name.decode("utf-8", "replace"))
        # An exception raised in here would cross HDF5's C code: stop by returning instead.
        return None if info.type == h5py.h5l.TYPE_HARD else (name, info.type)
    # The low-level visit: a tenth of the cost of Group.visititems_links.
    bad = f.id.links.visit(visit, info=True)
    if bad is not None:
        kind = {h5py.h5l.TYPE_SOFT: "SoftLink", h5py.h5l.TYPE_EXTERNAL: "ExternalLink"}
        raise UnsupportedCheckpointError(
            f"{path} holds a {kind.get(bad[1], 'link')} at /{bad[0].decode('utf-8', 'replace')}; "
            "checkpoints may not link out")
    return found


def _dataset(f: h5py.File, image: bytearray, name: str, path: str) -> np.ndarray:
    try:
        dsid = h5py.h5d.open(f.id, name.encode())   # low level: a third of f[name]'s cost
    except (KeyError, ValueError, OSError):
        raise CorruptCheckpointError(f"{path} has no dataset {name}") from None
    dtype, shape = dsid.dtype, dsid.shape
    if dtype not in FLOATS:
        raise CorruptCheckpointError(f"{path}: {name} is not a float32 or float64 dataset")
    size = int(np.prod(shape, dtype=np.int64))
    offset = dsid.get_offset()   # None unless stored contiguously inside this file
    if offset is None or not USERBLOCK_SIZE <= offset <= len(image) - size * dtype.itemsize:
        dataset = h5py.Dataset(dsid)
        if dataset.external or dataset.is_virtual:
            raise UnsupportedCheckpointError(f"{path} stores {name} outside the file")
        return dataset[()]   # empty, or stored otherwise: HDF5 reads it
    # Used in place, in the verified bytes: no copy (HDF5's own read copied each array
    # twice, and made a load 5x slower than np.load).
    array = np.frombuffer(image, dtype, size, offset).reshape(shape)
    return array if array.flags.aligned else array.copy()


class _Reader:
    """Reads the expected datasets of one open file, keeping track of their paths."""

    def __init__(self, f: h5py.File, image: bytearray, path: str,
                 architecture: Architecture) -> None:
        self.f, self.image, self.path, self.architecture = f, image, path, architecture
        self.read: set[str] = set()

    def array(self, name: str) -> np.ndarray:
        self.read.add(name)
        return _dataset(self.f, self.image, name, self.path)

    def layers(self, prefix: str) -> tuple[Dense, ...]:
        return tuple(Dense(self.array(f"{prefix}/W{i}"), self.array(f"{prefix}/b{i}"))
                     for i in range(len(self.architecture.layers)))

    def params(self, prefix: str) -> Params:
        return Params(self.layers(prefix), self.architecture)

    def record(self, data: Any, prefix: str) -> Any:
        if not isinstance(data, dict) or data.get("record") not in STATE_RECORDS:
            raise UnsupportedCheckpointError(
                f"{self.path}: unknown optimizer state record at {prefix}: {data!r:.80}")
        cls = STATE_RECORDS[data["record"]]
        names = [field.name for field in attrs.fields(cls)]
        if set(data) != {"record", *names}:
            raise CorruptCheckpointError(f"{self.path}: the fields of {cls.__name__} at "
                                         f"{prefix} are not {names}")
        values = {}
        for name in names:
            value, at = data[name], f"{prefix}/{name}"
            if value == at:
                values[name] = Grads(self.layers(at))
            elif isinstance(value, list):
                values[name] = tuple(self.record(item, f"{at}/{i}") for i, item in enumerate(value))
            elif isinstance(value, (int, float)):
                values[name] = value
            else:
                raise CorruptCheckpointError(f"{self.path}: {at} is {value!r:.80}")
        return cls(**values)


def _check_trees(state: TrainState, path: str) -> None:
    """Optimizer trees must have the parameters' shapes and dtype (Grads cannot check)."""
    want = [(a.shape, a.dtype) for a in (x for l in state.params.layers for x in (l.W, l.b))]
    arrays, _ = state_arrays(state)
    for name, array in arrays:
        if (array.shape, array.dtype) not in want:
            raise CorruptCheckpointError(f"{path}: {name} has shape {array.shape} and dtype "
                                         f"{array.dtype}, unlike any parameter")


def _counter(meta: dict[str, Any], name: str, path: str) -> int:
    """A step, epoch, batch index or seed as the file holds it: a JSON integer in range."""
    value = meta[name]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise CorruptCheckpointError(f"{path}: {name} must be an integer from 0 to 2**63-1, "
                                     f"the file holds {value!r:.60}")
    return value


def _read_state(f: h5py.File, image: bytearray, meta: dict[str, Any], path: str) -> TrainState:
    objects = _objects(f, path)   # before any object is opened: no link is ever followed
    reader = _Reader(f, image, path, Architecture.from_dicts(meta["architecture"]))
    params = reader.params("/params")
    opt_state = reader.record(meta["optimizer_state"], "/optimizer")
    history = History(**{c: tuple(reader.array(f"/history/{c}").tolist())
                         for c in HISTORY_COLUMNS})
    if any(e != int(e) for e in history.epoch):   # checked before int() would round it
        raise CorruptCheckpointError(f"{path}: the history's epoch column holds a fraction")
    history = attrs.evolve(history, epoch=tuple(int(e) for e in history.epoch))
    early, es = None, meta["early_stopping"]
    if es is not None:
        best = reader.params("/early_stopping/best_params") if es["best_params"] is True else None
        early = EarlyStoppingState(float(es["best"]), int(es["best_epoch"]), int(es["wait"]), best)
    step, epoch, batch_index, seed = (_counter(meta, name, path)
                                      for name in ("step", "epoch", "batch_index", "seed"))
    state = TrainState(step=step, epoch=epoch, batch_index=batch_index, seed=seed,
                       params=params, opt_state=opt_state, totals=EpochTotals(**meta["totals"]),
                       history=history, early_stopping=early, stopped=meta["stopped"])
    groups = {"/".join(name.split("/")[:i]) for name in reader.read
              for i in range(2, name.count("/") + 1)}
    extra = objects - reader.read - groups
    if extra:
        raise CorruptCheckpointError(f"{path} holds objects a checkpoint does not: "
                                     f"{sorted(extra)[:5]}")
    _check_trees(state, path)
    return state


def read_v2(f: h5py.File, image: bytearray, path: str) -> dict[str, Any]:
    meta = json.loads(f.attrs["meta"])
    if meta.get("format") != FORMAT_NAME or meta.get("format_version") != 2:
        raise NotACheckpointError(f"{path} does not say it is a {FORMAT_NAME}, version 2")
    config = json.loads(f.attrs["config"])
    if config.get("layers") != meta["architecture"]:
        raise CorruptCheckpointError(f"{path}: the architecture of its run record is not the "
                                     "one of its parameters")
    return {"state": _read_state(f, image, meta, path), "config": config,
            "experiment": json.loads(f.attrs["experiment"]), "data": json.loads(f.attrs["data"]),
            "environment": meta["environment"], "purenet_version": str(meta["purenet_version"]),
            "created": str(meta["created"])}
