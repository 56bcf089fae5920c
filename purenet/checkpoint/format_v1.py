"""Reading format 1 checkpoints (purenet 0.1), which are never written any more.

Format 1 kept one HDF5 attribute per field and one group per layer:

- ``/`` attributes ``format``, ``format_version``, ``purenet_version``, ``created``, ``step``,
  ``epoch``, ``batch_index``, ``seed``, ``stopped``.
- ``/config`` attributes ``json`` (the run's spec, its layers called ``architecture``) and
  ``experiment``.
- ``/architecture/layer_NN`` attributes ``input_dim``, ``output_dim``, ``activation``,
  ``dropout``.
- ``/params/layer_NN/W`` and ``/b``: datasets, each with a ``crc32`` attribute.
- ``/optimizer/state``: the optimizer state record (attribute ``record`` names its class,
  scalar fields are attributes, moment trees are groups like ``/params``).
- ``/progress``, ``/history/<column>``, ``/early_stopping`` (+ ``best_params``),
  ``/environment``.

The body digest (BLAKE2b) is checked by ``sealed.read_sealed`` before this module runs,
only ever in the child process of ``legacy.py``; ``hdf5_bounds`` bounds the file's objects,
and every dataset's declared shape is checked against the architecture before it is read.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

import attrs
import h5py
import numpy as np

from purenet.checkpoint import hdf5_bounds
from purenet.checkpoint.contract import MAX_LAYERS
from purenet.checkpoint.state_reader import counter
from purenet.core.records import Architecture, Dense, Grads, Params
from purenet.errors import CorruptCheckpointError, UnsupportedCheckpointError
from purenet.optim.states import STATE_RECORDS
from purenet.train.state import HISTORY_COLUMNS, EarlyStoppingState, EpochTotals, History, TrainState

# The optimizer state records purenet 0.1 wrote; a format 1 file naming a later one (L-BFGS's)
# cannot be one 0.1 wrote, and its fields' storage kinds are format 3's.
V1_RECORDS = {name: cls for name, cls in STATE_RECORDS.items() if name != "LbfgsState"}


def _array(group: h5py.Group, name: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    dataset = group[name]
    if not isinstance(dataset, h5py.Dataset) or dataset.dtype.kind != "f":
        raise CorruptCheckpointError(f"{group.name}/{name} is not a float dataset")
    if shape is not None and dataset.shape != shape:   # declared: nothing read yet
        raise CorruptCheckpointError(f"{group.name}/{name} has shape {dataset.shape}; the "
                                     f"architecture gives {shape}")
    array = dataset[()]
    if zlib.crc32(np.ascontiguousarray(array)) != dataset.attrs["crc32"]:
        raise CorruptCheckpointError(f"the CRC-32 of {dataset.name} does not match its data")
    return array


def _read_tree(group: h5py.Group, cls: type, architecture: Architecture):
    if len(group) != len(architecture.layers):
        raise CorruptCheckpointError(f"{group.name} holds {len(group)} layers, the "
                                     f"architecture {len(architecture.layers)}")
    layers = tuple(Dense(_array(group[f"layer_{i:02d}"], "W", (s.input_dim, s.output_dim)),
                         _array(group[f"layer_{i:02d}"], "b", (s.output_dim,)))
                   for i, s in enumerate(architecture.layers))
    return Params(layers, architecture) if cls is Params else Grads(layers)


def _read_record(group: h5py.Group, architecture: Architecture, depth: int = 0) -> Any:
    name = group.attrs["record"]
    if name not in V1_RECORDS or depth > 8:
        raise UnsupportedCheckpointError(f"unknown optimizer state record {name!r}")
    cls = V1_RECORDS[name]
    values = {}
    for field in attrs.fields(cls):
        if field.name in group.attrs:
            values[field.name] = group.attrs[field.name].item()
        elif "length" in group[field.name].attrs:
            sub = group[field.name]
            values[field.name] = tuple(_read_record(sub[str(i)], architecture, depth + 1)
                                       for i in range(min(int(sub.attrs["length"]), len(sub))))
        else:
            values[field.name] = _read_tree(group[field.name], Grads, architecture)
    return cls(**values)


def _architecture(f: h5py.File) -> Architecture:
    group = f["architecture"]
    if not 1 <= len(group) <= MAX_LAYERS:
        raise CorruptCheckpointError(f"its architecture must have 1 to {MAX_LAYERS} layers "
                                     f"(purenet's limit), it has {len(group)}")
    return Architecture.from_dicts([
        {k: (v.item() if hasattr(v, "item") else v)
         for k, v in group[f"layer_{i:02d}"].attrs.items() if k != "dropout" or v}
        for i in range(len(group))])


def _read_state(f: h5py.File, path: str) -> TrainState:
    a = {k: v.item() if hasattr(v, "item") else v for k, v in f.attrs.items()}
    architecture = _architecture(f)
    params = _read_tree(f["params"], Params, architecture)
    history = History(**{c: tuple(_array(f["history"], c).tolist()) for c in HISTORY_COLUMNS})
    if any(e != int(e) for e in history.epoch if np.isfinite(e)) \
            or not all(np.isfinite(history.epoch)):   # before int() rounds it
        raise CorruptCheckpointError("the history's epoch column holds a fraction or a "
                                     "non-finite number")
    history = attrs.evolve(history, epoch=tuple(int(e) for e in history.epoch))
    totals = EpochTotals(**{k: v.item() for k, v in f["progress"].attrs.items()})
    early = None
    if "early_stopping" in f:
        g = f["early_stopping"]
        best_params = (_read_tree(g["best_params"], Params, architecture)
                       if "best_params" in g else None)
        early = EarlyStoppingState(float(g.attrs["best"]), int(g.attrs["best_epoch"]),
                                   int(g.attrs["wait"]), best_params)
    step, epoch, batch_index, seed = (counter(a, name, path)
                                      for name in ("step", "epoch", "batch_index", "seed"))
    if not isinstance(a["stopped"], bool):
        raise CorruptCheckpointError(f"{path}: stopped must be true or false, the file holds "
                                     f"{a['stopped']!r:.40}")
    return TrainState(step=step, epoch=epoch, batch_index=batch_index, seed=seed,
                      params=params, opt_state=_read_record(f["optimizer/state"], architecture),
                      totals=totals, history=history, early_stopping=early,
                      stopped=a["stopped"])


def read_v1(f: h5py.File, path: str, size: int) -> dict[str, Any]:
    """The parts of a format 1 file: ``state``, ``config`` (plain data, its layers renamed
    to format 2's ``layers``), ``experiment``, ``environment``, ``purenet_version``,
    ``created``. ``f`` is open on ``size`` bytes whose digest was checked."""
    hdf5_bounds.check_objects(f, path, size)
    config = json.loads(f["config"].attrs["json"])
    if isinstance(config, dict) and "architecture" in config:
        config = {("layers" if k == "architecture" else k): v for k, v in config.items()}
    return {"state": _read_state(f, path), "config": config,
            "experiment": json.loads(f["config"].attrs["experiment"]),
            "environment": {k: v.item() if hasattr(v, "item") else v
                            for k, v in f["environment"].attrs.items()},
            "purenet_version": str(f.attrs["purenet_version"]), "created": str(f.attrs["created"])}
