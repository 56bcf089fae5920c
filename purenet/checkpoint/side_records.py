"""The records a file keeps beside its state, each checked field by field: where it was
computed (environment, numerics version, scope crossings), what it was upgraded from, the
fingerprint of the data it was trained on, and the experiment that ran it.

Readers take them as plain data; after ``check`` every field has the type and range a
writer gives it, so no reader meets a list where a name belongs.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from purenet.checkpoint import contract
from purenet.checkpoint.scope import FIELDS, Crossing
from purenet.core import numerics
from purenet.errors import CorruptCheckpointError
from purenet.train.config import RunConfig, flatten, setting_names

# What each value of the environment may be (None: every other key).
_ENVIRONMENT_VALUES = {
    "blas_threads": ("an integer >= 0", lambda v: _is_int(v) and v >= 0),
    "numpy_simd": ("a string or null", lambda v: v is None or isinstance(v, str)),
    None: ("a string", lambda v: isinstance(v, str)),
}
# The arrays a data fingerprint names (``fit``'s), and which must be there.
DATA_ARRAYS = ("x", "y", "x_val", "y_val")
DATA_OPTIONAL = ("sample_weight",)
_HEX_128 = re.compile(r"^[0-9a-f]{32}$")
_MAX_CROSSINGS = 10_000
# The keys of an experiment record besides the run record's settings.
EXPERIMENT_KEYS = ("name", "data", "checkpoint")


class SideRecords(NamedTuple):
    environment: dict[str, Any]
    numerics: int
    crossings: tuple[Crossing, ...]
    upgraded_from: dict[str, Any] | None
    data: dict[str, Any] | None
    experiment: dict[str, Any] | None


def _is_int(value: Any) -> bool:
    return type(value) is int


def _text(meta: dict[str, Any], key: str, path: str) -> str:
    if not isinstance(meta[key], str):
        raise CorruptCheckpointError(f"{path}: meta.{key} must be a string, the file holds "
                                     f"{meta[key]!r:.40}")
    return meta[key]


def environment(data: Any, path: str) -> dict[str, Any]:
    env = contract.record(data, "meta.environment", path)
    for key, value in env.items():
        kind, ok = _ENVIRONMENT_VALUES.get(key, _ENVIRONMENT_VALUES[None])
        if not ok(value):
            raise CorruptCheckpointError(f"{path}: meta.environment.{key} must be {kind}, the "
                                         f"file holds {value!r:.40}")
    return env


def numerics_version(value: Any, path: str) -> int:
    if not _is_int(value) or value < 1:
        raise CorruptCheckpointError(f"{path}: meta.numerics must be an integer >= 1, the "
                                     f"file holds {value!r:.40}")
    if value > numerics.NUMERICS_VERSION:
        raise contract.newer(path, f"numerics version {value}")
    return value


def crossings(data: Any, step: int, path: str) -> tuple[Crossing, ...]:
    """The scope crossings: steps in order, up to the file's own, each naming what changed."""
    bad = CorruptCheckpointError(f"{path}: meta.crossings must list {{step, changed}} objects "
                                 f"in step order up to step {step}, the file holds {data!r:.120}")
    if not isinstance(data, list) or len(data) > _MAX_CROSSINGS:
        raise bad
    found, last = [], 0
    for item in data:
        item = contract.fields(item, ("step", "changed"), "a meta.crossings entry", path)
        changed = item["changed"]
        if not _is_int(item["step"]) or not last <= item["step"] <= step \
                or not isinstance(changed, dict) or not changed:
            raise bad
        unknown = sorted(set(changed) - set(FIELDS))
        if unknown:
            raise contract.newer(path, f"a crossing of {unknown[0]!r:.40}")
        if not all(isinstance(pair, list) and len(pair) == 2 and pair[0] != pair[1] and all(
                v is None or isinstance(v, (str, int)) and not isinstance(v, bool) for v in pair)
                for pair in changed.values()):
            raise bad
        last = item["step"]
        found.append(Crossing(last, tuple((name, *changed[name]) for name in FIELDS
                                          if name in changed)))
    return tuple(found)


def upgraded_from(data: Any, path: str) -> dict[str, Any] | None:
    if data is not None and not (isinstance(data, dict) and set(data) == {
            "format_version", "purenet_version"} and _is_int(data["format_version"])
            and data["format_version"] in (1, 2) and isinstance(data["purenet_version"], str)):
        raise CorruptCheckpointError(f"{path}: meta.upgraded_from must be null or "
                                     f"{{format_version: 1 or 2, purenet_version}}, the file "
                                     f"holds {data!r:.80}")
    return data


def _array_print(value: Any, name: str, ndim: tuple[int, ...], path: str) -> None:
    bad = CorruptCheckpointError(
        f"{path}: data.{name} must be null or {{shape: {' or '.join(map(str, ndim))} integers "
        f">= 0, dtype, xxh3_128: 32 hex digits}}, the file holds {value!r:.100}")
    if value is None:
        return
    if not isinstance(value, dict) or set(value) != {"shape", "dtype", "xxh3_128"}:
        raise bad
    shape, dtype, digest = value["shape"], value["dtype"], value["xxh3_128"]
    if not isinstance(shape, list) or len(shape) not in ndim \
            or not all(_is_int(n) and 0 <= n < 2**62 for n in shape) \
            or not isinstance(dtype, str) or len(dtype) > 16 \
            or not isinstance(digest, str) or not _HEX_128.match(digest):
        raise bad


def data_record(data: Any, config: RunConfig, path: str) -> dict[str, Any] | None:
    """The fingerprint of the data the run was trained on (``train/fingerprint.py``): null
    (saved outside ``fit``, or upgraded from format 1), or each array's shape, dtype and
    digest, the shapes those of one run on the run's network."""
    if data is None:
        return None
    contract.fields(data, DATA_ARRAYS, "data", path, optional=DATA_OPTIONAL)
    for name, value in data.items():
        _array_print(value, name, (2,) if name.startswith("x") else (1, 2), path)
    if data["x"] is None or data["y"] is None:
        raise CorruptCheckpointError(f"{path}: data.x and data.y must be recorded, the file "
                                     "holds null")
    features = config.architecture.input_dim
    problems = []
    for x, others in (("x", ("y", "sample_weight")), ("x_val", ("y_val",))):
        if data[x] is None:
            if any(data.get(other) is not None for other in others):
                problems.append(f"{x} is null but {others[0]} is not")
            continue
        rows, columns = data[x]["shape"]
        if columns != features:
            problems.append(f"{x} has {columns} features, the network takes {features}")
        if rows < 1:
            problems.append(f"{x} has no rows")
        for other in others:
            if data.get(other) is None:
                if other != "sample_weight":
                    problems.append(f"{x} is recorded but {other} is null")
            elif data[other]["shape"][0] != rows:
                problems.append(f"{other} has {data[other]['shape'][0]} rows, {x} {rows}")
    if problems:
        raise CorruptCheckpointError(f"{path}: data is not the fingerprint of one run's data: "
                                     + "; ".join(problems[:3]))
    return data


def experiment_record(data: Any, config: RunConfig, path: str) -> dict[str, Any] | None:
    """The experiment that ran the run (``Experiment.resolved_config()``): null, or an
    object of the run record's settings, read as the run record is and equal to it, and
    its ``name``, ``data`` and ``checkpoint`` tables. Those are the run directory's: every
    reader of a run compares them with its ``config.toml`` (``readrun.read_run``), and no
    reader uses them from the checkpoint."""
    if data is None:
        return None
    if not isinstance(data, dict):
        raise CorruptCheckpointError(f"{path}: experiment must be null or an object, the file "
                                     f"holds a {type(data).__name__}")
    unknown = sorted(set(data) - set(setting_names()) - set(EXPERIMENT_KEYS))
    if unknown:
        raise contract.newer(path, f"experiment has the key {unknown[0]!r:.40}")
    if not isinstance(data.get("name"), str) or not all(
            isinstance(data.get(key), dict) for key in ("data", "checkpoint")):
        raise CorruptCheckpointError(f"{path}: experiment must have a name (a string) and the "
                                     f"tables data and checkpoint, the file holds {data!r:.120}")
    settings = {key: value for key, value in data.items() if key not in EXPERIMENT_KEYS}
    try:
        ran = contract.stored_run_config(settings, path)
    except CorruptCheckpointError as error:
        raise CorruptCheckpointError(f"{error} (in the experiment record)") from None
    written, held = flatten(config.to_dict()), flatten(ran.to_dict())
    changed = sorted(key for key in set(written) | set(held) if written.get(key) != held.get(key))
    if changed:
        raise CorruptCheckpointError(f"{path}: experiment.{changed[0]} is "
                                     f"{held.get(changed[0])!r:.40}, the run record's "
                                     f"{written.get(changed[0])!r:.40}: the experiment is not "
                                     "the one that ran this run")
    return data


def check(meta: dict[str, Any], found: dict[str, Any], config: RunConfig,
          path: str) -> SideRecords:
    """Every record beside the state, checked (``meta``'s counters already are)."""
    for key in ("purenet_version", "created"):
        _text(meta, key, path)
    return SideRecords(environment(meta["environment"], path),
                       numerics_version(meta["numerics"], path),
                       crossings(meta["crossings"], meta["step"], path),
                       upgraded_from(meta["upgraded_from"], path),
                       data_record(found["data"], config, path),
                       experiment_record(found["experiment"], config, path))
