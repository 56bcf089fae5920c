"""Rewriting a format 1 or 2 checkpoint as the current format, without ever losing it.

The old file is read in the child process of ``legacy.py`` (time and memory limits), which
writes the state as a format 3 temp file beside the target; that file is read back through
its manifest and must hold the same step and parameters (by digest) before it replaces the
target, atomically. A failure at any point leaves the old file as it was.
"""

from __future__ import annotations

import os
from typing import NamedTuple

from purenet.checkpoint import atomic, legacy
from purenet.checkpoint.format import read_checkpoint
from purenet.checkpoint.sealed import FORMAT_VERSION, header_version, sync_directory_of
from purenet.checkpoint.validity import check_state
from purenet.core.records import params_digest
from purenet.errors import CheckpointError, CorruptCheckpointError


class Upgrade(NamedTuple):
    """What ``upgrade_checkpoint`` did: ``path`` (format ``from_version``) rewritten to
    ``output`` as format ``to_version``; ``written`` is False for a dry run or a file that
    was current already."""

    path: str
    output: str
    from_version: int
    to_version: int
    step: int
    written: bool


def _check_writable(output: str, user_named: bool) -> None:
    """Refuse, before anything is read, an output that could not be written: its directory
    missing or read-only, or a path that is not a regular file."""
    try:
        atomic.check_target(output, user_named=user_named)
    except OSError as error:
        raise CheckpointError(f"{error}; nothing was changed") from None
    directory = os.path.dirname(os.path.abspath(output))
    if not os.access(directory, os.W_OK):
        raise CheckpointError(f"cannot write {output}: the directory {directory} is not "
                              "writable (permissions, or a read-only filesystem); nothing was "
                              "changed: choose another --output")


def upgrade_checkpoint(path: str | os.PathLike, output: str | os.PathLike | None = None,
                       dry_run: bool = False) -> Upgrade:
    """Rewrite the checkpoint ``path`` as the current format (in place, or to ``output``).

    The new file is written beside its target, read back and compared (step and params
    digest) with the old one, and only then renamed over the target. A file already in the
    current format is verified and left alone. ``dry_run`` does all of it but the rename.

    Raises:
        CheckpointError: ``path`` is not a valid checkpoint, ``output`` exists (and is not
            ``path``), or the rewritten file did not verify; nothing was changed.
    """
    path = os.fspath(path)
    output = os.fspath(output) if output is not None else path
    version = header_version(path)
    if output != path and os.path.lexists(output):
        raise CheckpointError(f"{output} exists already; choose another output or remove it")
    if version == FORMAT_VERSION:
        step = read_checkpoint(path).state.step
        return Upgrade(path, output, version, version, step, False)
    _check_writable(output, user_named=output != path)
    temp = atomic.temp_path_for(output)
    try:
        answer = legacy.convert(path, temp)
        parts = legacy.read_converted(temp, path)
        state = parts["state"]
        check_state(state, parts["config"], path, parts["data"])
        if state.step != answer.get("step") or \
                params_digest(state.params) != answer.get("params_digest"):
            raise CorruptCheckpointError(f"upgrading {path}: the rewritten file does not hold "
                                         "the state read from the old one; nothing was changed")
        if not dry_run:
            os.replace(temp, output)
            sync_directory_of(output)
    except OSError as error:
        raise CheckpointError(f"could not upgrade {path}: {error}; nothing was changed") from error
    finally:
        if os.path.lexists(temp):
            os.remove(temp)
    return Upgrade(path, output, version, FORMAT_VERSION, state.step, not dry_run)
