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

from purenet.checkpoint import contract, manifest
from purenet.checkpoint.layout import FORMAT_NAME
from purenet.checkpoint.scope import FIELDS, Crossing
from purenet.checkpoint.sealed import USERBLOCK_SIZE
from purenet.checkpoint.state_reader import is_int, read_state
from purenet.core import numerics
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


def _text(meta: dict[str, Any], key: str, path: str) -> str:
    if not isinstance(meta[key], str):
        raise CorruptCheckpointError(f"{path}: meta.{key} must be a string, the file holds "
                                     f"{meta[key]!r:.40}")
    return meta[key]


# What each value of the environment may be (None: every other key).
_ENVIRONMENT_VALUES = {
    "blas_threads": ("an integer >= 0", lambda v: is_int(v) and v >= 0),
    "numpy_simd": ("a string or null", lambda v: v is None or isinstance(v, str)),
    None: ("a string", lambda v: isinstance(v, str)),
}


def _environment(data: Any, path: str) -> dict[str, Any]:
    env = contract.record(data, "meta.environment", path)
    for key, value in env.items():
        kind, ok = _ENVIRONMENT_VALUES.get(key, _ENVIRONMENT_VALUES[None])
        if not ok(value):
            raise CorruptCheckpointError(f"{path}: meta.environment.{key} must be {kind}, the "
                                         f"file holds {value!r:.40}")
    return env


def _numerics_version(value: Any, path: str) -> int:
    if not is_int(value) or value < 1:
        raise CorruptCheckpointError(f"{path}: meta.numerics must be an integer >= 1, the "
                                     f"file holds {value!r:.40}")
    if value > numerics.NUMERICS_VERSION:
        raise contract.newer(path, f"numerics version {value}")
    return value


def _crossings(data: Any, step: int, path: str) -> tuple[Crossing, ...]:
    """The scope crossings: steps in order, up to the file's own, each naming what changed."""
    bad = CorruptCheckpointError(f"{path}: meta.crossings must list {{step, changed}} objects "
                                 f"in step order up to step {step}, the file holds {data!r:.120}")
    if not isinstance(data, list) or len(data) > 10_000:
        raise bad
    found, last = [], 0
    for item in data:
        item = contract.fields(item, ("step", "changed"), "a meta.crossings entry", path)
        changed = item["changed"]
        if not is_int(item["step"]) or not last <= item["step"] <= step \
                or not isinstance(changed, dict) or not changed:
            raise bad
        unknown = sorted(set(changed) - set(FIELDS))
        if unknown:
            raise contract.newer(path, f"a crossing of {unknown[0]!r:.40}")
        if not all(isinstance(pair, list) and len(pair) == 2 and all(
                v is None or isinstance(v, (str, int)) and not isinstance(v, bool) for v in pair)
                for pair in changed.values()):
            raise bad
        last = item["step"]
        found.append(Crossing(last, tuple((name, *changed[name]) for name in FIELDS
                                          if name in changed)))
    return tuple(found)


def _origin(data: Any, path: str) -> None:
    if data is not None and not (isinstance(data, dict) and set(data) == {
            "format_version", "purenet_version"} and data["format_version"] in (1, 2)
            and isinstance(data["purenet_version"], str)):
        raise CorruptCheckpointError(f"{path}: meta.upgraded_from must be null or "
                                     f"{{format_version: 1 or 2, purenet_version}}, the file "
                                     f"holds {data!r:.80}")


def plan(raw: bytes, file_size: int, path: str) -> tuple[Plan, int]:
    """The checked manifest ``raw`` of a file of ``file_size`` bytes, and the largest size
    such a file may have. Every array is checked against the run's architecture here, as
    its stand-in is taken."""
    found = contract.record(manifest.parse(raw, path), "manifest", path)
    meta = contract.record(found["meta"], "meta", path)
    if meta["format"] != FORMAT_NAME or meta["format_version"] != 3:
        raise NotACheckpointError(f"{path} does not say it is a {FORMAT_NAME}, version 3")
    config = contract.stored_run_config(found["config"], path)
    entries = manifest.checked_table(found["arrays"], file_size, USERBLOCK_SIZE + len(raw), path)
    _, taken = read_state(meta, _Table(None, entries, path), config, path)
    extra = sorted(set(entries) - taken)
    if extra:
        raise CorruptCheckpointError(f"{path}: the manifest lists arrays a checkpoint does "
                                     f"not hold: {extra[:5]}")
    for key in ("purenet_version", "created"):
        _text(meta, key, path)
    _environment(meta["environment"], path)
    _numerics_version(meta["numerics"], path)
    _crossings(meta["crossings"], meta["step"], path)
    _origin(meta["upgraded_from"], path)
    return Plan(found, meta, config, entries), manifest.allowed_size(entries, len(raw))


def read_v3(image: bytearray, planned: Plan, path: str) -> dict[str, Any]:
    """The parts of a verified format 3 image whose manifest ``planned`` is: ``state``,
    ``config`` (a RunConfig), ``experiment``, ``data``, ``environment``, ``numerics``,
    ``crossings``, ``purenet_version``, ``created``, ``upgraded_from``."""
    found, meta = planned.found, planned.meta
    state, _ = read_state(meta, _Table(image, planned.entries, path), planned.config, path)
    return {"state": state, "config": planned.config, "experiment": found["experiment"],
            "data": found["data"], "environment": meta["environment"],
            "numerics": meta["numerics"],
            "crossings": _crossings(meta["crossings"], meta["step"], path),
            "purenet_version": meta["purenet_version"], "created": meta["created"],
            "upgraded_from": meta["upgraded_from"]}
