"""A run's trail of parameter digests: ``digests.csv`` in its run directory.

Every ``every`` steps (and at the start and end of each ``fit``) the run writes its step,
epoch and ``params_digest``. Two runs that should be the same can then be compared step by
step (``purenet diff``): the first recorded step whose digests differ brackets the step
where they parted to within ``every`` steps, and a replay narrows it to one.

A resumed run first drops the rows past the step it resumes from (a killed run may have
written some after its newest checkpoint), so the file always describes one trajectory.
"""

from __future__ import annotations

import os
from typing import Any

import xxhash

from purenet.checkpoint import atomic
from purenet.core.records import params_digest
from purenet.errors import RunDirectoryError
from purenet.experiment import limits
from purenet.train.callbacks import Callback

DIGESTS = "digests.csv"
# Each row carries a check of its own (xxh3-64 of the row's first three fields), so that an
# edited row is caught: a diff must not announce a divergence nobody's replay would find.
HEADER = "step,epoch,params_digest,check"
OLD_HEADER = "step,epoch,params_digest"   # purenet 0.2: rows without their check
# Often enough to bracket a divergence closely, rarely enough to cost nothing: SHA-256 of a
# 670k-parameter float32 network takes ~2 ms, ten of its training steps ~50 ms.
EVERY_STEPS = 10
_WHAT = "a digests file (digests.csv)"


def _check(row: str) -> str:
    return xxhash.xxh3_64_hexdigest(row.encode("ascii"))


def _row(step: int, epoch: int, digest: str) -> str:
    row = f"{step},{epoch},{digest}"
    return f"{row},{_check(row)}"


def read_digests(path: str | os.PathLike) -> dict[int, str]:
    """``{step: params_digest}`` from a run directory (or its ``digests.csv``); empty when
    the run recorded none. A torn last line (a killed run) is skipped.

    Raises:
        RunDirectoryError: a row was edited (its check does not match), or the file is not
            a digests file. ValueError: not a regular file, or over its size cap.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, DIGESTS)
    return {step: digest for step, (_, digest) in _read_rows(path).items()}


def _read_rows(path: str) -> dict[int, tuple[str, str]]:
    """``{step: (epoch, digest)}`` of the rows of ``path``, each row's check verified."""
    if not os.path.lexists(path):
        return {}
    lines = limits.read_text(path, _WHAT).split("\n")
    header, *body = lines
    if header not in (HEADER, OLD_HEADER):
        raise RunDirectoryError(f"{path} does not start with the header {HEADER!r}; it is not "
                                "a digests file purenet wrote (delete it to start it afresh)")
    checked = header == HEADER
    rows = {}
    for number, line in enumerate(body, start=2):
        parts = line.split(",")
        last = number == len(lines)   # a killed run may have torn the last line
        well_formed = (len(parts) == (4 if checked else 3) and parts[0].isdigit()
                       and parts[1].isdigit() and len(parts[2]) == 64)
        if not well_formed or (checked and parts[3] != _check(",".join(parts[:3]))):
            if last or not line:
                continue
            raise RunDirectoryError(f"{path}, line {number}: {line[:100]!r} is not a row "
                                    "purenet wrote (edited, or its check does not match); "
                                    "delete the file to start the trail afresh")
        rows[int(parts[0])] = (parts[1], parts[2])
    return rows


class DigestLog(Callback):
    """Writes the params digest every ``every`` steps to ``run_dir/digests.csv``."""

    def __init__(self, run_dir: str | os.PathLike, every: int = EVERY_STEPS) -> None:
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise ValueError(f"every must be an integer >= 1 (steps), got {every!r}")
        self.path = os.path.join(os.fspath(run_dir), DIGESTS)
        self.every = every
        self._fh: Any = None
        self._last: int | None = None

    def on_fit_start(self, state: Any, config: Any, total_steps: int, data: Any) -> None:
        try:
            rows = _read_rows(self.path)
        except (OSError, ValueError) as error:   # too large, not a regular file, not UTF-8
            raise RunDirectoryError(f"{error}; delete it to start the trail afresh") from None
        kept = [_row(step, int(epoch), digest) for step, (epoch, digest)
                in sorted(rows.items()) if step < state.step]
        # Rewritten through a rename, so a kill here leaves the old rows, never half of them.
        atomic.write_atomic(self.path, "\n".join([HEADER, *kept, ""]).encode("utf-8"))
        self._fh = open(self.path, "a", encoding="utf-8")
        self._write(state)

    def on_step_end(self, state: Any, metrics: Any) -> None:
        if state.step % self.every == 0:
            self._write(state)

    def on_fit_end(self, state: Any, error: BaseException | None) -> None:
        if self._fh is None:
            return
        try:
            if state is not None and state.step != self._last:
                self._write(state)
        finally:
            self._fh.close()
            self._fh = None

    def _write(self, state: Any) -> None:
        self._fh.write(_row(state.step, state.epoch, params_digest(state.params)) + "\n")
        self._fh.flush()
        self._last = state.step
