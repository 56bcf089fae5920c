"""Format 3 read back through its manifest alone, never through libhdf5: the manifest
parsed (bounded), its records checked, its table of arrays checked against the file and
the architecture, and then the arrays used in place, as views of the verified bytes."""

from __future__ import annotations

from typing import Any

import numpy as np

from purenet.checkpoint import manifest
from purenet.checkpoint.layout import FORMAT_NAME
from purenet.checkpoint.sealed import USERBLOCK_SIZE
from purenet.checkpoint.state_reader import META_KEYS, architecture, check_keys, read_state
from purenet.errors import CorruptCheckpointError, NotACheckpointError, SettingError
from purenet.train.config import RunConfig, differences


class _Table:
    """The arrays of the manifest's table, each handed out once, as asked for."""

    def __init__(self, image: bytearray, entries: dict[str, manifest.Entry], path: str):
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
        return manifest.view(self.image, entry)


def run_config(data: Any, path: str, exact: bool) -> RunConfig:
    """The run record stored in a file; with ``exact``, it must be the very plain form
    ``RunConfig.to_dict`` writes (every key, nothing else, nothing left to a default)."""
    if isinstance(data, dict):
        architecture(data.get("layers"), "the run record's layers", path)   # capped first
    try:
        config = RunConfig.from_dict(data) if isinstance(data, dict) else None
    except SettingError as error:
        raise CorruptCheckpointError(f"{path}: the run config stored in the checkpoint is not "
                                     f"valid: {error}") from None
    if config is None:
        raise CorruptCheckpointError(f"{path}: the run config stored in the checkpoint must "
                                     f"be an object, the file holds a {type(data).__name__}")
    if exact:
        changed = differences(config.to_dict(), data, "{key}: expected {expected!r}, the file "
                                                      "has {found!r}")
        if changed:
            raise CorruptCheckpointError(f"{path}: the run config stored in the checkpoint is "
                                         f"not in its written form: {'; '.join(changed[:5])}")
    return config


def read_v3(image: bytearray, manifest_length: int, path: str) -> dict[str, Any]:
    """The parts of a verified format 3 image: ``state``, ``config`` (a RunConfig),
    ``experiment``, ``data``, ``environment``, ``purenet_version``, ``created``,
    ``upgraded_from``."""
    found = manifest.parse(image, manifest_length, path)
    meta = check_keys(found["meta"], META_KEYS, "meta", path)
    if meta["format"] != FORMAT_NAME or meta["format_version"] != 3:
        raise NotACheckpointError(f"{path} does not say it is a {FORMAT_NAME}, version 3")
    config = run_config(found["config"], path, exact=True)
    entries = manifest.checked_table(found["arrays"], len(image),
                                     USERBLOCK_SIZE + manifest_length, path)
    state, taken = read_state(meta, _Table(image, entries, path), config, path)
    extra = sorted(set(entries) - taken)
    if extra:
        raise CorruptCheckpointError(f"{path}: the manifest lists arrays a checkpoint does "
                                     f"not hold: {extra[:5]}")
    for key in ("purenet_version", "created"):
        if not isinstance(meta[key], str):
            raise CorruptCheckpointError(f"{path}: meta.{key} must be a string")
    if not isinstance(meta["environment"], dict):
        raise CorruptCheckpointError(f"{path}: meta.environment must be an object")
    return {"state": state, "config": config, "experiment": found["experiment"],
            "data": found["data"], "environment": meta["environment"],
            "purenet_version": meta["purenet_version"], "created": meta["created"],
            "upgraded_from": meta["upgraded_from"]}
