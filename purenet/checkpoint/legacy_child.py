"""The child process of ``legacy.py``: read one format 1 or 2 file through libhdf5, under
a memory and CPU-time limit, and write its state as a format 3 file.

    python -m purenet.checkpoint.legacy_child FILE OUTPUT MEMORY_BYTES CPU_SECONDS

Prints one JSON line: ``{"step", "params_digest", "format_version"}``, or ``{"error":
<CheckpointError class name>, "message"}``. The parent reads ``OUTPUT`` again through its
manifest and trusts nothing this process says beyond which error to raise.
"""

from __future__ import annotations

import io
import json
import os
import sys
from typing import Any

import h5py

from purenet.checkpoint import format_v1, layout, sealed
from purenet.checkpoint.read_v2 import read_v2
from purenet.checkpoint import contract
from purenet.checkpoint.contract import stored_run_config
from purenet.checkpoint import side_records
from purenet.checkpoint.validity import check_state
from purenet.core.numerics import FIRST_RECORDED
from purenet.core.records import params_digest
from purenet.errors import CheckpointError, NotACheckpointError


def _limit(memory: int, seconds: int) -> None:
    """At most ``memory`` bytes of address space beyond what this process holds now, and
    ``seconds`` of CPU time (then the kernel stops it)."""
    try:
        import resource
    except ImportError:   # not on this platform: the parent's time limit still holds
        return
    try:
        with open("/proc/self/statm") as fh:
            held = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        held = 1 << 30
    for kind, value in ((resource.RLIMIT_AS, held + memory), (resource.RLIMIT_CPU, seconds)):
        hard = resource.getrlimit(kind)[1]   # a limit inherited from our parent stays
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(kind, (value, hard))


def read_file(path: str) -> tuple[int, dict[str, Any]]:
    """The format version and checked parts of a format 1 or 2 file."""
    found = sealed.read_sealed(path)
    version, image = found.version, found.data
    if version not in (1, 2):
        raise CheckpointError(f"{path} has format version {version}, not 1 or 2")
    with h5py.File(io.BytesIO(image), "r") as f:
        if version == 1:
            if f.attrs.get("format") != layout.FORMAT_NAME:
                raise NotACheckpointError(f"{path} does not say it is a {layout.FORMAT_NAME}")
            parts = format_v1.read_v1(f, path, len(image))
            parts["config"] = stored_run_config(parts["config"], path, exact=False)
        else:
            parts = read_v2(f, image, path)
    parts["data"] = side_records.data_record(parts.get("data"), parts["config"], path)
    check_state(parts["state"], parts["config"], path, parts["data"])
    return version, parts


def _environment(found: Any) -> dict[str, Any]:
    """The original's environment in format 3's record: its keys of that record kept, what
    it did not record (or recorded as something else) marked so."""
    found = found if isinstance(found, dict) else {}
    env = {key: found.get(key) if isinstance(found.get(key), str) else "not recorded"
           for key in contract.REQUIRED["meta.environment"]}
    threads = found.get("blas_threads")
    env["blas_threads"] = threads if type(threads) is int and threads >= 0 else 0
    return env


def write_converted(output: str, version: int, parts: dict[str, Any]) -> None:
    """The state as a format 3 file at ``output`` (a new file, synced), keeping the
    original's creation time and environment and saying what it was converted from."""
    provenance = {"created": parts["created"], "environment": _environment(parts["environment"]),
                  "numerics": FIRST_RECORDED,
                  "upgraded_from": {"format_version": version,
                                    "purenet_version": parts["purenet_version"]}}
    chunks, manifest_length = layout.body_chunks(parts["state"], parts["config"],
                                                 parts["experiment"], parts.get("data"),
                                                 provenance)
    with open(output, "xb") as fh:
        fh.write(sealed.seal(chunks, manifest_length=manifest_length))
        for chunk in chunks:
            fh.write(chunk)
        fh.flush()
        os.fsync(fh.fileno())


def main(argv: list[str]) -> int:
    path, output, memory, seconds = argv
    _limit(int(memory), int(seconds))
    try:
        version, parts = read_file(path)
        write_converted(output, version, parts)
        answer: dict[str, Any] = {"step": parts["state"].step, "format_version": version,
                                  "params_digest": params_digest(parts["state"].params)}
    except CheckpointError as error:
        answer = {"error": type(error).__name__, "message": str(error)}
    except MemoryError:
        answer = {"error": "CorruptCheckpointError",
                  "message": f"reading {path} needed more than its memory limit "
                             f"({int(memory) >> 20} MiB beyond the reader's own); it is not a "
                             "checkpoint purenet could have written"}
    except Exception as error:   # a sealed file HDF5 or the records cannot make sense of
        answer = {"error": "CorruptCheckpointError",
                  "message": f"{path} passed its digest check but its contents are not a "
                             f"readable checkpoint: {type(error).__name__}: {str(error)[:300]}"}
    print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
