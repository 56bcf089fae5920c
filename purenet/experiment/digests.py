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

from purenet.checkpoint import atomic
from purenet.core.records import params_digest
from purenet.train.callbacks import Callback

DIGESTS = "digests.csv"
HEADER = "step,epoch,params_digest"
# Often enough to bracket a divergence closely, rarely enough to cost nothing: SHA-256 of a
# 670k-parameter float32 network takes ~2 ms, ten of its training steps ~50 ms.
EVERY_STEPS = 10


def read_digests(path: str | os.PathLike) -> dict[int, str]:
    """``{step: params_digest}`` from a run directory (or its ``digests.csv``); empty when
    the run recorded none. A torn last line (a killed run) is skipped."""
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, DIGESTS)
    return {step: digest for step, (_, digest) in _read_rows(path).items()}


def _read_rows(path: str) -> dict[int, tuple[str, str]]:
    """``{step: (epoch, digest)}`` of the well-formed rows of ``path``."""
    if not os.path.isfile(path):
        return {}
    rows = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            parts = line.strip().split(",")
            if len(parts) == 3 and parts[0].isdigit() and len(parts[2]) == 64:
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
        kept = [f"{step},{epoch},{digest}" for step, (epoch, digest)
                in sorted(_read_rows(self.path).items()) if step < state.step]
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
        self._fh.write(f"{state.step},{state.epoch},{params_digest(state.params)}\n")
        self._fh.flush()
        self._last = state.step
