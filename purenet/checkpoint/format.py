"""The checkpoint file: one HDF5 file per saved step, sealed by a digest in its user block.

Layout of a file (readable with h5py or h5dump alone):

- bytes 0-511, the HDF5 user block: an ASCII header ``PURENET-CHECKPOINT``, the format
  version, the length and BLAKE2b digest of everything after it (the HDF5 body), and a
  CRC-32 of those lines (``header_crc32``), padded with NUL bytes. It is checked before
  HDF5 parses a single byte, so a flipped bit anywhere or a truncated file is an error,
  never a crash or a wrong number.
- ``/`` attributes: ``format``, ``format_version``, ``purenet_version``, ``created``,
  ``step``, ``epoch``, ``batch_index``, ``seed``, ``stopped``.
- ``/config`` attribute ``json``: the run's spec (``RunConfig.config()``); ``experiment``:
  the experiment file that made it, if any.
- ``/architecture/layer_NN`` attributes ``input_dim``, ``output_dim``, ``activation``,
  ``dropout``.
- ``/params/layer_NN/W`` and ``/b``: datasets, each with a ``crc32`` attribute.
- ``/optimizer``: attributes ``name`` and ``config`` (JSON); ``/optimizer/state`` mirrors
  the optimizer's state record (attribute ``record`` names its class, scalar fields are
  attributes, moment trees are groups like ``/params``).
- ``/progress`` attributes: ``loss_sum``, ``correct``, ``samples`` of the current epoch.
- ``/history/<column>``: one float dataset per ``History`` column.
- ``/early_stopping`` (when on): attributes ``best``, ``best_epoch``, ``wait`` and a
  ``best_params`` group.
- ``/environment`` attributes: numpy version, BLAS, its thread count, Python, platform.

This is the only module that imports h5py. Nothing is ever unpickled.
"""

from __future__ import annotations

import datetime
import io
import json
import os
import zlib
from typing import Any

import attrs
import h5py
import numpy as np

from purenet import __version__
from purenet.optim.states import STATE_RECORDS
from purenet.errors import (CheckpointError, CorruptCheckpointError, NotACheckpointError,
                            SettingError, UnsupportedCheckpointError)
from purenet.checkpoint import machine
from purenet.checkpoint.sealed import FORMAT_VERSION, USERBLOCK_SIZE, read_sealed, write_sealed
from purenet.core.records import (
    Architecture,
    Dense,
    Grads,
    Params,
    params_digest,
)
from purenet.train.config import RunConfig
from purenet.train.state import (
    HISTORY_COLUMNS,
    EarlyStoppingState,
    EpochTotals,
    History,
    TrainState,
)

FORMAT_NAME = "purenet-checkpoint"



@attrs.frozen(eq=False)
class Checkpoint:
    """A verified checkpoint, as read back."""

    path: str
    state: TrainState
    config: RunConfig
    experiment: dict[str, Any] | None
    environment: dict[str, Any]
    format_version: int
    purenet_version: str
    created: str

    @property
    def params_digest(self) -> str:
        """SHA-256 of the parameters (``records.params_digest``)."""
        return params_digest(self.state.params)


# --- writing --------------------------------------------------------------------------


def _dataset(group: h5py.Group, name: str, array: np.ndarray) -> None:
    # Each array carries its own CRC-32 (checked when read): a second line of defence
    # behind the body digest, visible to anyone reading the file with other tools.
    # (HDF5's fletcher32 filter does the same job about four times slower.)
    array = np.ascontiguousarray(array)
    group.create_dataset(name, data=array).attrs["crc32"] = zlib.crc32(array)


def _array(group: h5py.Group, name: str) -> np.ndarray:
    dataset = group[name]
    if not isinstance(dataset, h5py.Dataset) or dataset.dtype.kind != "f":
        raise CorruptCheckpointError(f"{group.name}/{name} is not a float dataset")
    array = dataset[()]
    if zlib.crc32(np.ascontiguousarray(array)) != dataset.attrs["crc32"]:
        raise CorruptCheckpointError(f"the CRC-32 of {dataset.name} does not match its data")
    return array


def _write_tree(group: h5py.Group, tree: Params | Grads) -> None:
    for i, layer in enumerate(tree.layers):
        sub = group.create_group(f"layer_{i:02d}")
        _dataset(sub, "W", layer.W)
        _dataset(sub, "b", layer.b)


def _write_record(group: h5py.Group, record: Any) -> None:
    group.attrs["record"] = type(record).__name__
    for field in attrs.fields(type(record)):
        value = getattr(record, field.name)
        if isinstance(value, (Grads, Params)):
            _write_tree(group.create_group(field.name), value)
        elif isinstance(value, tuple):
            sub = group.create_group(field.name)
            sub.attrs["length"] = len(value)
            for i, item in enumerate(value):
                _write_record(sub.create_group(str(i)), item)
        else:
            group.attrs[field.name] = value


def _write_body(f: h5py.File, state: TrainState, config: RunConfig,
                experiment: dict | None) -> None:
    root = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION,
            "purenet_version": __version__,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "step": state.step, "epoch": state.epoch, "batch_index": state.batch_index,
            "seed": state.seed, "stopped": state.stopped}
    f.attrs.update(root)
    f.create_group("config").attrs.update(
        {"json": json.dumps(config.to_dict()), "experiment": json.dumps(experiment)})
    arch = f.create_group("architecture")
    for i, spec in enumerate(state.params.architecture.layers):
        arch.create_group(f"layer_{i:02d}").attrs.update(attrs.asdict(spec))
    _write_tree(f.create_group("params"), state.params)
    opt = f.create_group("optimizer")
    opt.attrs.update({"name": config.optimizer.name,
                      "config": json.dumps(config.optimizer.config())})
    _write_record(opt.create_group("state"), state.opt_state)
    f.create_group("progress").attrs.update(attrs.asdict(state.totals))
    history = f.create_group("history")
    for column in HISTORY_COLUMNS:
        _dataset(history, column, np.asarray(getattr(state.history, column), dtype=np.float64))
    if state.early_stopping is not None:
        early = f.create_group("early_stopping")
        es = state.early_stopping
        early.attrs.update({"best": es.best, "best_epoch": es.best_epoch, "wait": es.wait})
        if es.best_params is not None:
            _write_tree(early.create_group("best_params"), es.best_params)
    f.create_group("environment").attrs.update(machine.environment())


def _named_leaves(tree: Params | Grads, prefix: str) -> list[tuple[str, np.ndarray]]:
    return [(f"{prefix}/layer_{i:02d}/{name}", getattr(layer, name))
            for i, layer in enumerate(tree.layers) for name in ("W", "b")]


def _record_arrays(record: Any, prefix: str) -> list[tuple[str, np.ndarray]]:
    arrays = []
    for field in attrs.fields(type(record)):
        value = getattr(record, field.name)
        if isinstance(value, (Grads, Params)):
            arrays += _named_leaves(value, f"{prefix}/{field.name}")
        elif isinstance(value, tuple):
            arrays += [a for i, item in enumerate(value)
                       for a in _record_arrays(item, f"{prefix}/{field.name}/{i}")]
    return arrays


def non_finite_arrays(state: TrainState) -> list[str]:
    """The file paths (e.g. ``/params/layer_01/W``) of the state's arrays that hold NaN or
    inf: parameters, optimizer state, and early stopping's best parameters."""
    named = _named_leaves(state.params, "/params")
    named += _record_arrays(state.opt_state, "/optimizer/state")
    if state.early_stopping is not None and state.early_stopping.best_params is not None:
        named += _named_leaves(state.early_stopping.best_params, "/early_stopping/best_params")
    return [name for name, array in named if not np.isfinite(array).all()]


def write_checkpoint(path: str, state: TrainState, config: RunConfig,
                     experiment: dict[str, Any] | None = None) -> str:
    """Write ``state`` to ``path`` atomically: temp file, fsync, rename, fsync directory.

    A crash at any instant leaves either the old file or the complete new one.

    Raises:
        CheckpointError: a non-finite array (nothing is written), or an OS error such as
            a full disk (the temp file is removed; earlier checkpoints are untouched).
    """
    bad = non_finite_arrays(state)
    if bad:
        raise CheckpointError(
            f"refusing to write checkpoint {path} of step {state.step}: "
            f"{', '.join(bad)} {'holds' if len(bad) == 1 else 'hold'} NaN or inf; nothing was "
            "written, so the newest checkpoint already there (if any) is the last good state")
    # Built in memory, so the seal's digest is taken without reading the file back.
    buffer = io.BytesIO()
    with h5py.File(buffer, "w", userblock_size=USERBLOCK_SIZE, libver="latest") as f:
        _write_body(f, state, config, experiment)
    return write_sealed(path, buffer.getbuffer()[USERBLOCK_SIZE:])


# --- reading --------------------------------------------------------------------------


def _refuse_links(group: h5py.Group, path: str) -> None:
    """Refuse soft and external links, external storage and virtual datasets: a
    checkpoint's data must all be inside the verified file."""
    for name in group:
        link = group.get(name, getlink=True)
        if not isinstance(link, h5py.HardLink):
            raise UnsupportedCheckpointError(f"{path} holds a {type(link).__name__} at "
                                             f"{group.name}/{name}; checkpoints may not link out")
        item = group[name]
        if isinstance(item, h5py.Group):
            _refuse_links(item, path)
        elif item.external or item.is_virtual:
            raise UnsupportedCheckpointError(f"{path} stores {item.name} outside the file")


def _read_tree(group: h5py.Group, cls: type, architecture: Architecture | None = None):
    layers = tuple(Dense(_array(group[f"layer_{i:02d}"], "W"), _array(group[f"layer_{i:02d}"], "b"))
                   for i in range(len(group)))
    return Params(layers, architecture) if cls is Params else Grads(layers)


def _read_record(group: h5py.Group) -> Any:
    name = group.attrs["record"]
    if name not in STATE_RECORDS:
        raise UnsupportedCheckpointError(f"unknown optimizer state record {name!r}")
    cls = STATE_RECORDS[name]
    values = {}
    for field in attrs.fields(cls):
        if field.name in group.attrs:
            values[field.name] = group.attrs[field.name].item()
        elif "length" in group[field.name].attrs:
            sub = group[field.name]
            values[field.name] = tuple(_read_record(sub[str(i)]) for i in range(sub.attrs["length"]))
        else:
            values[field.name] = _read_tree(group[field.name], Grads)
    return cls(**values)


def _architecture(f: h5py.File) -> Architecture:
    group = f["architecture"]
    return Architecture.from_dicts([
        {k: (v.item() if hasattr(v, "item") else v)
         for k, v in group[f"layer_{i:02d}"].attrs.items() if k != "dropout" or v}
        for i in range(len(group))])


def _read_state(f: h5py.File) -> TrainState:
    a = {k: v.item() if hasattr(v, "item") else v for k, v in f.attrs.items()}
    architecture = _architecture(f)
    params = _read_tree(f["params"], Params, architecture)
    history = History(**{c: tuple(_array(f["history"], c).tolist()) for c in HISTORY_COLUMNS})
    history = attrs.evolve(history, epoch=tuple(int(e) for e in history.epoch))
    totals = EpochTotals(**{k: v.item() for k, v in f["progress"].attrs.items()})
    early = None
    if "early_stopping" in f:
        g = f["early_stopping"]
        best_params = (_read_tree(g["best_params"], Params, architecture)
                       if "best_params" in g else None)
        early = EarlyStoppingState(float(g.attrs["best"]), int(g.attrs["best_epoch"]),
                                   int(g.attrs["wait"]), best_params)
    return TrainState(step=int(a["step"]), epoch=int(a["epoch"]),
                      batch_index=int(a["batch_index"]), seed=int(a["seed"]), params=params,
                      opt_state=_read_record(f["optimizer/state"]), totals=totals,
                      history=history, early_stopping=early, stopped=bool(a["stopped"]))


def _run_config(data: Any, format_version: int) -> RunConfig:
    """The file's run record; format 1 called the layers ``architecture``."""
    if format_version == 1 and isinstance(data, dict) and "architecture" in data:
        data = {("layers" if k == "architecture" else k): v for k, v in data.items()}
    try:
        return RunConfig.from_dict(data)
    except SettingError as error:
        raise CorruptCheckpointError(f"the run config stored in the checkpoint is not valid: "
                                     f"{error}") from None


def read_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read and fully verify one checkpoint file.

    Raises:
        CheckpointError (a subclass naming the problem): missing, empty, truncated,
        corrupt, foreign, future-version or link-bearing files.
    """
    path = os.fspath(path)
    data = read_sealed(path)
    try:
        # Parse the very bytes that were verified, not the file again.
        with h5py.File(io.BytesIO(data), "r") as f:
            if f.attrs.get("format") != FORMAT_NAME:
                raise NotACheckpointError(f"{path} does not say it is a {FORMAT_NAME}")
            _refuse_links(f, path)
            state = _read_state(f)
            config = _run_config(json.loads(f["config"].attrs["json"]),
                                 int(f.attrs["format_version"]))
            experiment = json.loads(f["config"].attrs["experiment"])
            env = {k: v.item() if hasattr(v, "item") else v
                   for k, v in f["environment"].attrs.items()}
            meta = (int(f.attrs["format_version"]), str(f.attrs["purenet_version"]),
                    str(f.attrs["created"]))
    except CheckpointError:
        raise
    except Exception as error:   # a sealed file HDF5 cannot make sense of
        raise CorruptCheckpointError(f"{path} passed its digest check but its contents are "
                                     f"not a readable checkpoint: {error}") from error
    return Checkpoint(path, state, config, experiment, env, *meta)


def summarize(path: str | os.PathLike) -> dict[str, Any]:
    """A verified checkpoint's key facts, as plain data (for ``purenet inspect``)."""
    ckpt = read_checkpoint(path)
    state = ckpt.state
    history = state.history
    loss = history.train_loss[-1] if len(history) else (
        state.totals.loss_sum / state.totals.samples if state.totals.samples else float("nan"))
    return {"path": ckpt.path, "step": state.step, "epoch": state.epoch,
            "batch_index": state.batch_index, "loss": loss,
            "val_loss": history.val_loss[-1] if len(history) else float("nan"),
            "params_digest": ckpt.params_digest, "format": FORMAT_NAME,
            "format_version": ckpt.format_version, "purenet_version": ckpt.purenet_version,
            "created": ckpt.created, "seed": state.seed, "stopped": state.stopped,
            "optimizer": ckpt.config.optimizer.name, "dtype": ckpt.config.dtype,
            "architecture": state.params.architecture.to_dicts(),
            "environment": ckpt.environment, "integrity": "ok"}
