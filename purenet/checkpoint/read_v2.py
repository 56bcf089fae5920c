"""Format 2 read back (only ever in the child process of ``legacy.py``): the HDF5 file's
objects bounded (``hdf5_bounds``), its ``meta`` and ``config`` attributes parsed, and each
dataset's declared shape and dtype checked against the architecture before it is read;
the arrays are then used in place, in the verified bytes."""

from __future__ import annotations

import json
from typing import Any

import h5py
import numpy as np

from purenet.checkpoint import hdf5_bounds
from purenet.checkpoint.layout import FORMAT_NAME
from purenet.checkpoint.contract import record, stored_run_config
from purenet.checkpoint.state_reader import read_state
from purenet.errors import CorruptCheckpointError, NotACheckpointError

_ATTRIBUTES = ("meta", "config", "experiment", "data")


class _Datasets:
    """The datasets of one open file, each checked before it is read."""

    def __init__(self, f: h5py.File, image: bytearray, path: str) -> None:
        self.f, self.image, self.path = f, image, path

    def array(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        try:
            dsid = h5py.h5d.open(self.f.id, name.encode())   # low level: a third of f[name]'s cost
        except (KeyError, ValueError, OSError):
            raise CorruptCheckpointError(f"{self.path} has no dataset {name}") from None
        if dsid.dtype != dtype or dsid.shape != shape:   # declared: nothing read yet
            raise CorruptCheckpointError(
                f"{self.path}: the dataset {name} is {dsid.dtype} of shape {dsid.shape}; "
                f"expected {dtype.name} of shape {shape} (from the run's architecture, dtype "
                "and epoch count)")
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        offset = dsid.get_offset()   # None unless stored contiguously inside this file
        if offset is None or not 0 <= offset <= len(self.image) - nbytes:
            return h5py.Dataset(dsid)[()]   # empty, or compact: HDF5 reads it (checked small)
        # Used in place, in the verified bytes: no copy (HDF5's own read copied each array
        # twice, and made a load 5x slower than np.load).
        array = np.frombuffer(self.image, dtype, nbytes // dtype.itemsize, offset).reshape(shape)
        return array if array.flags.aligned else array.copy()


def _attribute(f: h5py.File, key: str, path: str) -> Any:
    if key not in f.attrs:
        raise NotACheckpointError(f"{path} has no {key!r} attribute: it is not a "
                                  f"{FORMAT_NAME} of version 2")
    text = f.attrs[key]
    if not isinstance(text, str):
        raise CorruptCheckpointError(f"{path}: its {key!r} attribute is not a JSON string")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as error:
        raise CorruptCheckpointError(f"{path}: its {key!r} attribute is not valid JSON "
                                     f"({str(error)[:80]})") from None


def read_v2(f: h5py.File, image: bytearray, path: str) -> dict[str, Any]:
    """The parts of a format 2 file, as ``read_v3`` gives them. ``f`` is open on ``image``,
    bytes whose digest was checked."""
    objects = hdf5_bounds.check_objects(f, path, len(image))   # before any object is read
    if set(f.attrs) != set(_ATTRIBUTES):
        raise CorruptCheckpointError(f"{path}: its root attributes must be {list(_ATTRIBUTES)}, "
                                     f"it has {sorted(f.attrs)[:8]}")
    meta = _attribute(f, "meta", path)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME \
            or meta.get("format_version") != 2:
        raise NotACheckpointError(f"{path} does not say it is a {FORMAT_NAME}, version 2")
    meta = record({"upgraded_from": None, **meta}, "meta", path)
    config = stored_run_config(_attribute(f, "config", path), path, exact=False)
    state, taken = read_state(meta, _Datasets(f, image, path), config, path)
    groups = {"/".join(name.split("/")[:i]) for name in taken
              for i in range(2, name.count("/") + 1)}
    extra = objects - taken - groups
    if extra:
        raise CorruptCheckpointError(f"{path} holds objects a checkpoint does not: "
                                     f"{sorted(extra)[:5]}")
    if not isinstance(meta["environment"], dict):
        raise CorruptCheckpointError(f"{path}: meta.environment must be an object")
    return {"state": state, "config": config, "experiment": _attribute(f, "experiment", path),
            "data": _attribute(f, "data", path), "environment": meta["environment"],
            "purenet_version": str(meta["purenet_version"]), "created": str(meta["created"])}
