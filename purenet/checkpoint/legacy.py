"""Format 1 and 2 files, read for ``purenet upgrade`` in a child process with a time limit
and a memory limit.

Those formats can only be read through libhdf5, and a sealed file can still make libhdf5
loop forever (deaf to SIGINT and SIGTERM) or allocate without bound. So purenet never
parses one in its own process, and only ``upgrade.py`` asks: a child (``python -m
purenet.checkpoint.legacy_child``) reads it under ``RLIMIT_AS`` and ``RLIMIT_CPU``, checks
it, and writes its state as a format 3 file; this process kills the child when it runs out
of time, and reads the file it wrote through the manifest alone, checking everything again
(it trusts the child no more than the file). Nothing is unpickled: the child answers with
one line of JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import purenet
from purenet.checkpoint import sealed
from purenet.checkpoint.read_v3 import plan, read_v3
from purenet.errors import (CheckpointError, CorruptCheckpointError, NotACheckpointError, UnregisteredPieceError,
                            UnsupportedCheckpointError)

SECONDS = 10.0              # the child's time, plus one second per 50 MB of file
MEMORY = 1 << 30            # the child's address space beyond its own, plus 6x the file
ERRORS = {cls.__name__: cls for cls in (CheckpointError, CorruptCheckpointError,
                                        NotACheckpointError, UnsupportedCheckpointError,
                                        UnregisteredPieceError)}


def limits(size: int) -> tuple[float, int]:
    """The time (seconds) and memory (bytes beyond its start) the child may use on a file
    of ``size`` bytes."""
    return SECONDS + size / 50e6, MEMORY + 6 * size


def _environment() -> dict[str, str]:
    """The child's environment: this purenet importable, one BLAS thread (fewer threads
    reserve less address space), warnings not fatal (the child's checks are its own)."""
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(purenet.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONWARNINGS="ignore")
    return env


def _answer(path: str, proc: subprocess.CompletedProcess) -> dict[str, Any]:
    lines = [line for line in proc.stdout.decode("utf-8", "replace").splitlines()
             if line.startswith("{")]
    try:
        answer = json.loads(lines[-1]) if lines and proc.returncode == 0 else None
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        how = (f"was killed by signal {-proc.returncode}" if proc.returncode < 0
               else f"exited with status {proc.returncode}")
        detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no message"]
        raise CorruptCheckpointError(
            f"reading {path} failed: the reader process {how} ({detail[0][:200]}); libhdf5 "
            "could not read the file within its limits; use an earlier checkpoint")
    if "error" in answer:
        raise ERRORS.get(answer["error"], CorruptCheckpointError)(str(answer.get("message")))
    return answer


def run_child(module: str, path: str, *args: str) -> dict[str, Any]:
    """Run ``python -m module path *args MEMORY SECONDS`` within ``limits`` of ``path``'s
    size, killed when its time is up, and return its one JSON answer.

    Raises:
        CheckpointError: the child's own refusal, or its failure to answer in its limits.
    """
    seconds, memory = limits(os.stat(path).st_size)
    command = [sys.executable, "-m", module, path, *args, str(memory), str(int(seconds) + 1)]
    try:
        proc = subprocess.run(command, capture_output=True, timeout=seconds,
                              stdin=subprocess.DEVNULL, env=_environment())
    except subprocess.TimeoutExpired:   # run() has killed the child (SIGKILL) and reaped it
        raise CorruptCheckpointError(
            f"reading {path} took more than {seconds:.0f} s and was stopped: libhdf5 can loop "
            "forever on a damaged file; use an earlier checkpoint") from None
    except OSError as error:
        raise CheckpointError(f"could not start the reader process for {path}: {error}") from error
    return _answer(path, proc)


def convert(path: str, output: str) -> dict[str, Any]:
    """Read ``path`` (format 1 or 2) in a child process and write its state to ``output``
    as a format 3 file (synced). Returns the child's answer: ``step``, ``params_digest``,
    ``format_version`` (of ``path``).

    Raises:
        CheckpointError: the file is not a valid checkpoint, or reading it took longer or
            needed more memory than ``limits`` allows (the child was stopped).
    """
    return run_child("purenet.checkpoint.legacy_child", path, output)


def compare_views(path: str) -> list[str]:
    """How the HDF5 file of the format 3 checkpoint ``path`` differs from its manifest
    (its JSON attributes, datasets and objects), read in a child process by libhdf5; empty
    when both views hold the same. Only on request: purenet reads the manifest alone."""
    from purenet.extend import IMPORTED

    return run_child("purenet.checkpoint.views_child", path, *IMPORTED)["differences"]


def read_converted(output: str, path: str) -> dict[str, Any]:
    """The parts of the format 3 file the child wrote, read through its manifest (errors
    name ``path``, the file it came from)."""
    try:
        image = sealed.read_sealed(output, lambda raw, size: plan(raw, size, path))
    except CheckpointError as error:
        raise CorruptCheckpointError(f"reading {path}: the reader process wrote a file that "
                                     f"does not verify ({error})") from error
    return read_v3(image.data, image.plan, path)
