"""Bounds checked before anything large is read or allocated.

A file is opened only when it is a regular file of bounded size (a FIFO would block the
read forever, ``/dev/zero`` would fill memory), and a run starts only when its estimated
memory (parameters with the optimizer's state, the data, the activations) fits in what the
machine has available now. Each refusal names the file or the key and gives the numbers.
"""

from __future__ import annotations

import json
import math
import os
import resource
import stat
from typing import Any

from purenet.checkpoint.atomic import file_kind
from purenet.checkpoint.manifest import unique_keys

MIB = 2 ** 20
# The most purenet reads of each kind of file (docs/files.md states them): far above what
# purenet writes, far below what would hurt a machine.
MAX_BYTES = {
    "an experiment file (.toml)": 1 * MIB,    # a few KB; TOML parsing is slow
    "a run's config.toml": 1 * MIB,
    "a scaler file (scaler.json)": 64 * MIB,  # two numbers and a name per feature
    "a summary file (summary.json)": 1 * MIB,
    "a run marker (.purenet-run)": 1 * MIB,
    "a sweep record (sweep.json)": 1 * MIB,
    "a digests file (digests.csv)": 256 * MIB,   # ~80 bytes a row, a row every 10 steps
    "a history file (history.csv)": 256 * MIB,
    "a results file (results.csv)": 256 * MIB,
}
MAX_EXPERIMENT_BYTES = MAX_BYTES["an experiment file (.toml)"]
# tomllib and json recurse once per nesting level; Python's limit is ~1000 frames.
MAX_TOML_DEPTH = 100
MAX_JSON_DEPTH = 64
# A line of a data file holds numbers of a few characters each.
MAX_LINE_BYTES = 16 * MIB
# Optimizer state per parameter (moments), by optimizer name; unknown names count 2.
# L-BFGS keeps history_size pairs (s, y), and the gradient, the direction and a trial point.
OPTIMIZER_SLOTS = {"sgd": 0, "momentum": 1, "rmsprop": 1, "adagrad": 1, "adam": 2, "adamw": 2,
                   "lbfgs": lambda config: 2 * config["history_size"] + 3}
# Copies of each parameter beyond the optimizer's: params, grads, updates, a checkpoint's
# copy and early stopping's best params.
PARAM_COPIES = 5
# Copies of the data: as read (float64), the split parts, the scaled arrays in the run's dtype.
DATA_COPIES = 3


def human(n_bytes: float) -> str:
    """``1536`` -> ``"1.5 KiB"``."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n_bytes) < 1024 or unit == "PiB":
            return f"{n_bytes:.0f} {unit}" if unit == "bytes" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024
    return f"{n_bytes:.1f} PiB"


# --- files ----------------------------------------------------------------------------


def check_regular_file(path: str, what: str, max_bytes: int | None = None) -> int:
    """The size of ``path`` after checking it is a regular file of at most ``max_bytes``.

    Raises:
        FileNotFoundError, ValueError: naming ``path`` and ``what`` it should be.
    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"no such file: {path} (expected {what})") from None
    if stat.S_ISDIR(info.st_mode):
        raise ValueError(f"{path} is a directory, not {what}")
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{path} is {file_kind(info.st_mode)}, not {what}; purenet reads "
                         "only regular files")
    if max_bytes is not None and info.st_size > max_bytes:
        raise ValueError(f"{path} is {human(info.st_size)}, more than the {human(max_bytes)} "
                         f"purenet reads as {what}")
    return info.st_size


def read_regular(path: str, what: str, max_bytes: int) -> bytes:
    """The bytes of the regular file ``path`` (at most ``max_bytes``), read once."""
    check_regular_file(path, what, max_bytes)
    # O_NONBLOCK: had the path become a FIFO since the stat, open would wait for a writer.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
            raise ValueError(f"{path} changed while being opened; it is no longer a regular "
                             f"file of at most {human(max_bytes)}")
        data = fh.read(info.st_size + 1)   # one byte more shows a file still growing
    if len(data) > info.st_size:
        raise ValueError(f"{path} grew while being read; read it once it is complete")
    return data


def read_text(path: str, what: str, max_bytes: int | None = None) -> str:
    """The UTF-8 text of the regular file ``path``: at most ``max_bytes`` (default: the cap
    of its kind, ``MAX_BYTES[what]``), read once.

    Raises:
        FileNotFoundError, ValueError: naming ``path``, what it should be and what it is.
    """
    data = read_regular(path, what, MAX_BYTES[what] if max_bytes is None else max_bytes)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path} is not UTF-8 text ({error}); expected {what}") from None


def json_depth(text: str) -> int:
    """How deeply the arrays and objects of JSON ``text`` nest, brackets inside strings
    left out: counted before parsing, which recurses once per level."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth = max(depth - 1, 0)
    return deepest


def parse_json(text: str, path: str, what: str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The JSON value ``text`` (of the file ``path``): nested at most ``max_depth`` deep,
    no key twice in an object.

    Raises:
        ValueError: naming ``path`` and the problem.
    """
    depth = json_depth(text)
    if depth > max_depth:
        raise ValueError(f"{path} nests {depth} levels deep, more than the {max_depth} of "
                         f"{what}")
    try:
        return json.loads(text, object_pairs_hook=unique_keys)
    except ValueError as error:
        raise ValueError(f"{path} is not valid JSON ({error}); expected {what}") from None


def read_json(path: str, what: str, max_bytes: int | None = None) -> Any:
    """The JSON value of the regular file ``path``, bounded in size (``read_text``) and in
    depth (``parse_json``)."""
    return parse_json(read_text(path, what, max_bytes), path, what)


def toml_depth(text: str) -> int:
    """An upper bound on how deep the arrays and inline tables of TOML ``text`` nest
    (brackets inside strings count too, so it only ever overestimates)."""
    depth = deepest = 0
    for char in text:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth = max(depth - 1, 0)
    return deepest


# --- memory ---------------------------------------------------------------------------


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_available() -> int | None:
    """What the process's cgroup (v2) still allows, e.g. inside a container. Only its
    anonymous memory counts as used: page cache is given back under pressure."""
    try:
        with open("/sys/fs/cgroup/memory.max", encoding="ascii") as fh:
            limit = fh.read().strip()
        if limit == "max":
            return None
        with open("/sys/fs/cgroup/memory.stat", encoding="ascii") as fh:
            stats = dict(line.split() for line in fh if len(line.split()) == 2)
        return max(int(limit) - int(stats["anon"]), 0)
    except (OSError, ValueError, KeyError):
        return None


def _address_space_available() -> int | None:
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            used = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        used = 0
    return max(soft - used, 0)


def available_memory() -> int | None:
    """Bytes this process can still allocate: the least of the memory available on the
    machine, its cgroup's limit and its address-space limit (None: unknown)."""
    found = [m for m in (_meminfo_available(), _cgroup_available(), _address_space_available())
             if m is not None]
    if not found:
        try:
            found = [os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")]
        except (ValueError, OSError):
            return None
    return min(found)


def parameter_count(architecture: Any) -> int:
    return architecture.parameter_count


def training_memory(run: Any, n_samples: int, n_features: int,
                    stored: int | None = None) -> dict[str, int]:
    """Estimated bytes of a run (``purenet.RunConfig``) on ``n_samples`` x ``n_features``
    data, by part: ``params`` (with gradients, updates and the optimizer's state),
    ``data`` and ``activations`` (the metrics run forward on the whole data set at once,
    which outweighs a training batch). ``stored``: the entries of a sparse x, which is
    never densified (a value and a column index each)."""
    arch = run.architecture
    itemsize = 8 if run.dtype == "float64" else 4
    config = run.optimizer.config()
    slots = OPTIMIZER_SLOTS.get(config.get("name"), 2)
    slots = slots(config) if callable(slots) else slots
    dense_x = stored is None
    widths = sum(l.output_dim for l in arch.layers) + (arch.input_dim if dense_x else 0)
    x_bytes = n_samples * n_features * 8 if dense_x else stored * 12 + n_samples * 8
    return {"params": parameter_count(arch) * itemsize * (PARAM_COPIES + slots),
            "data": (x_bytes + n_samples * arch.output_dim * 8) * DATA_COPIES,
            "activations": n_samples * widths * itemsize * 2}   # Z and A of every layer


def memory_problem(parts: dict[str, int], available: int | None) -> str | None:
    """A sentence giving the numbers when ``parts`` together need more than ``available``."""
    total = sum(parts.values())
    if available is None or total <= available:
        return None
    detail = ", ".join(f"{name} {human(n)}" for name, n in parts.items())
    return (f"needs about {human(total)} of memory ({detail}) but only {human(available)} is "
            "available; make it smaller (fewer units or samples) or use a bigger machine")


def total_elements(shape: Any) -> int:
    return math.prod(int(n) for n in shape)
