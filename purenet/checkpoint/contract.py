"""The compatibility contract of format 3, in code (``docs/compatibility.md`` in words).

A checkpoint written by purenet 0.2 or later loads in every later version:

- a key of a record that a later version added takes its default when a file lacks it
  (``ADDED``; every setting of the run record that has a default);
- a key, a record or a name this version does not know means the file was written by a
  newer purenet: it is refused with ``NewerCheckpointError``, whatever version the file
  claims, and nothing of it is used.

Every record a reader takes from a file goes through ``record`` (its keys) and the run
record through ``stored_run_config``, so all readers agree.
"""

from __future__ import annotations

from typing import Any

from purenet import __version__
from purenet.core.numerics import FIRST_RECORDED
from purenet.errors import (CorruptCheckpointError, NewerCheckpointError, SettingError,
                            UnknownKeyError, UnknownNameError)
from purenet.core.records import Architecture
from purenet.train.config import RunConfig, flatten

MAX_LAYERS = 1000

# The keys each record of a format 3 file has held since purenet 0.2.0.
REQUIRED: dict[str, tuple[str, ...]] = {
    "manifest": ("meta", "config", "experiment", "data", "arrays"),
    "meta": ("format", "format_version", "purenet_version", "created", "step", "epoch",
             "batch_index", "seed", "stopped", "architecture", "totals", "early_stopping",
             "optimizer_state", "environment", "upgraded_from"),
    "meta.environment": ("numpy", "blas", "blas_threads", "python", "platform"),
    "meta.totals": ("loss_sum", "correct", "samples"),
    "meta.early_stopping": ("best", "best_epoch", "wait", "best_params"),
}
# The keys later versions added, each with the value a file without it means (0.3.0: the
# numerics version, which files of 0.2 were all computed with, the scope crossings, the
# user-registered pieces, which 0.2 could not have, and numpy's SIMD targets, which 0.2
# did not record).
ADDED: dict[str, dict[str, Any]] = {
    "meta": {"numerics": FIRST_RECORDED, "crossings": [], "pieces": []},
    "meta.environment": {"numpy_simd": None},   # None: not recorded
}


def newer(path: str, what: str) -> NewerCheckpointError:
    """The one refusal of a file from a newer purenet; ``what`` names what gave it away."""
    return NewerCheckpointError(
        f"{path} was written by a newer purenet ({what}, which purenet {__version__} does not "
        "know); upgrade purenet to read it")


def record(data: Any, name: str, path: str) -> dict[str, Any]:
    """The record ``name`` (a key of ``REQUIRED``) as a dict with every key: the ones a
    later version added filled with their defaults when absent.

    Raises:
        CorruptCheckpointError: not an object, or a required key missing.
        NewerCheckpointError: a key this version does not know.
    """
    required, added = REQUIRED[name], ADDED.get(name, {})
    if not isinstance(data, dict):
        raise CorruptCheckpointError(f"{path}: {name} must be an object with the keys "
                                     f"{list(required)}, the file holds a {type(data).__name__}")
    missing = [key for key in required if key not in data]
    if missing:   # later versions only add keys: a file without one is damaged
        raise CorruptCheckpointError(f"{path}: {name} must have the keys {list(required)}; "
                                     f"{missing} {'is' if len(missing) == 1 else 'are'} missing")
    unknown = sorted(set(data) - set(required) - set(added))
    if unknown:
        raise newer(path, f"{name} has the key {unknown[0]!r:.60}")
    return {**added, **data}


def fields(data: Any, names: tuple[str, ...], what: str, path: str,
           optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """A record whose keys are ``names`` (an optimizer state record's fields), and perhaps
    some of ``optional``: a key more is a newer purenet's, a key less a damaged file."""
    if not isinstance(data, dict):
        raise CorruptCheckpointError(f"{path}: {what} must be an object, the file holds a "
                                     f"{type(data).__name__}")
    missing = [key for key in names if key not in data]
    if missing:
        raise CorruptCheckpointError(f"{path}: {what} must have the keys {list(names)}; "
                                     f"{missing} missing")
    unknown = sorted(set(data) - set(names) - set(optional), key=str)
    if unknown:
        raise newer(path, f"{what} has the key {unknown[0]!r:.60}")
    return data


def architecture(layers: Any, what: str, path: str) -> Architecture:
    """An architecture of at most ``MAX_LAYERS`` layers (counted before any is built)."""
    if not isinstance(layers, list) or not 1 <= len(layers) <= MAX_LAYERS:
        count = len(layers) if isinstance(layers, list) else f"a {type(layers).__name__}"
        raise CorruptCheckpointError(f"{path}: {what} must list 1 to {MAX_LAYERS} layers "
                                     f"(purenet's limit), the file has {count}")
    try:
        return Architecture.from_dicts(layers)
    except SettingError as error:
        raise setting_refusal(error, path, what) from None
    except (TypeError, ValueError) as error:
        raise CorruptCheckpointError(f"{path}: {what} is not valid: {error}") from None


def setting_refusal(error: SettingError, path: str, what: str) -> Exception:
    """A setting a file holds that this version refuses: an unknown key or name is a
    newer purenet's, anything else a damaged file."""
    if isinstance(error, (UnknownKeyError, UnknownNameError)):
        return newer(path, f"{what}: {error}")
    return CorruptCheckpointError(f"{path}: {what} is not valid: {error}")


def stored_run_config(data: Any, path: str, exact: bool = True) -> RunConfig:
    """The run record a file stores. Settings it lacks take their defaults; with
    ``exact``, every setting it holds must be in the form ``RunConfig.to_dict`` writes it
    (``"full"``, not null, for a full batch), so that two readers cannot read two runs.

    Raises:
        NewerCheckpointError: a setting, or a name of one, this version does not know.
        CorruptCheckpointError: anything else that is not a run record.
    """
    if not isinstance(data, dict):
        raise CorruptCheckpointError(f"{path}: the run config stored in the checkpoint must "
                                     f"be an object, the file holds a {type(data).__name__}")
    architecture(data.get("layers"), "the run record's layers", path)   # capped first
    try:
        config = RunConfig.from_stored(data)
    except SettingError as error:
        raise setting_refusal(error, path, "the run config stored in the checkpoint") from None
    if exact:
        written, held = flatten(config.to_dict()), flatten(dict(data))
        changed = [f"{key}: written as {written[key]!r}, the file has {held[key]!r}"
                   for key in sorted(set(written) & set(held)) if written[key] != held[key]]
        if changed:
            raise CorruptCheckpointError(f"{path}: the run config stored in the checkpoint is "
                                         f"not in its written form: {'; '.join(changed[:5])}")
    return config
