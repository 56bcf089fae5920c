"""Format 3 read back through its manifest alone, never through libhdf5.

Reading is two steps. ``plan`` takes the manifest before the body is verified or even
read: it checks every record against the contract (``contract.py``), the table of arrays
against the file's size and the run's architecture, and says how large the file may be,
so that nothing is allocated for bytes no state needs. Once the digest matches, ``read_v3``
builds the state with its arrays as views of the verified bytes.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from purenet.checkpoint import contract, manifest, pieces, side_records
from purenet.checkpoint.layout import FORMAT_NAME
from purenet.checkpoint.sealed import USERBLOCK_SIZE
from purenet.checkpoint.state_reader import is_int, read_state
from purenet.errors import CorruptCheckpointError, NotACheckpointError
from purenet.train.config import RunConfig


class _Table:
    """The arrays of the manifest's table, each handed out as asked for: views of the
    verified ``image``, or (``image`` None, while planning) zero-cost stand-ins."""

    def __init__(self, image: bytearray | None, entries: dict[str, manifest.Entry], path: str):
        self.image, self.entries, self.path = image, entries, path

    def array(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        entry = self.entries.get(name)
        if entry is None:
            raise CorruptCheckpointError(f"{self.path}: the manifest lists no array {name}")
        if entry.dtype != dtype or entry.shape != shape:
            raise CorruptCheckpointError(
                f"{self.path}: the array {name} is {entry.dtype.name} of shape "
                f"{entry.shape}; expected {dtype.name} of shape {shape} (from the run's "
                "architecture, dtype and epoch count)")
        if self.image is None:
            return np.broadcast_to(np.zeros((), dtype), shape)
        return manifest.view(self.image, entry)


class Plan(NamedTuple):
    """What the manifest says, checked: its records, the run record, the table."""

    found: dict[str, Any]
    meta: dict[str, Any]
    config: RunConfig
    entries: dict[str, manifest.Entry]
    side: side_records.SideRecords


def plan(raw: bytes, file_size: int, path: str) -> tuple[Plan, int]:
    """The checked manifest ``raw`` of a file of ``file_size`` bytes, and the largest size
    such a file may have. Every array is checked against the run's architecture here, as
    its stand-in is taken."""
    found = contract.record(manifest.parse(raw, path), "manifest", path)
    meta = contract.record(found["meta"], "meta", path)
    if meta["format"] != FORMAT_NAME or not is_int(meta["format_version"]) \
            or meta["format_version"] != 3:
        raise NotACheckpointError(f"{path} does not say it is a {FORMAT_NAME}, version 3")
    listed = pieces.check_registered(meta["pieces"], path)   # before the run names them
    config = contract.stored_run_config(found["config"], path)
    pieces.check_used(listed, config, path)
    entries = manifest.checked_table(found["arrays"], file_size, USERBLOCK_SIZE + len(raw), path)
    _, taken = read_state(meta, _Table(None, entries, path), config, path)
    extra = sorted(set(entries) - taken)
    if extra:
        raise CorruptCheckpointError(f"{path}: the manifest lists arrays a checkpoint does "
                                     f"not hold: {extra[:5]}")
    side = side_records.check(meta, found, config, path)
    return Plan(found, meta, config, entries, side), manifest.allowed_size(entries, len(raw))


def read_v3(image: bytearray, planned: Plan, path: str) -> dict[str, Any]:
    """The parts of a verified format 3 image whose manifest ``planned`` is: ``state``,
    ``config`` (a RunConfig), ``experiment``, ``data``, ``environment``, ``numerics``,
    ``crossings``, ``purenet_version``, ``created``, ``upgraded_from``."""
    meta, side = planned.meta, planned.side
    state, _ = read_state(meta, _Table(image, planned.entries, path), planned.config, path)
    return {"state": state, "config": planned.config, "experiment": side.experiment,
            "data": side.data, "environment": side.environment, "numerics": side.numerics,
            "crossings": side.crossings, "purenet_version": meta["purenet_version"],
            "created": meta["created"], "upgraded_from": side.upgraded_from}
