"""``verify``: a witness that resuming is exact on this machine.

Replays a run from an older checkpoint (or from its start) to its newest checkpoint, on
the run's own data and settings, and checks that the replay ends with the parameters the
run saved there, digest for digest.
"""

from __future__ import annotations

import os
import time

import attrs

from purenet.checkpoint.format import Checkpoint, read_checkpoint
from purenet.checkpoint.policy import checkpoint_files, checkpoints_directory, newest_valid
from purenet.checkpoint.rewind import replay
from purenet.core.records import params_digest
from purenet.errors import CheckpointError, CheckpointNotFoundError
from purenet.experiment.readrun import read_run
from purenet.experiment.runner import fit_arrays


@attrs.frozen
class Verification:
    """The replay from ``from_step`` (0: the run's start) to ``to_step`` and its verdict.

    ``crossings``: where the run went on under another scope (numerics, numpy, BLAS),
    with the steps. ``replay_crossing``: what differs between the scope the run computed
    these steps in and this process's, if anything; a replay across either is no witness
    of exactness (``comparable`` is False) and a mismatch then proves nothing.
    """

    run_dir: str
    from_step: int
    to_step: int
    expected_digest: str         # the params digest in the checkpoint of to_step
    replayed_digest: str
    seconds: float
    crossings: tuple[dict, ...] = ()
    replay_crossing: dict | None = None

    @property
    def ok(self) -> bool:
        return self.expected_digest == self.replayed_digest

    @property
    def comparable(self) -> bool:
        """The replay ran in the scope the run computed these steps in, within one scope."""
        return self.replay_crossing is None and not any(
            self.from_step < c["step"] < self.to_step for c in self.crossings)


def _older(directory: str, newest: Checkpoint, from_step: int | None) -> Checkpoint | None:
    """The checkpoint to replay from: of ``from_step``, else the oldest valid one before
    the newest and at or after the run's last scope crossing; None replays from the start."""
    files = [(step, path) for step, path in checkpoint_files(directory) if step < newest.state.step]
    if from_step == 0:
        return None
    if from_step is not None:
        found = dict(files).get(from_step)
        if found is None:
            raise CheckpointNotFoundError(
                f"no checkpoint of step {from_step} before step {newest.state.step} in "
                f"{directory}; choose one of {[s for s, _ in files]} (or 0: the start)")
        return read_checkpoint(found)
    since = max((c.step for c in newest.crossings), default=0)
    for _, path in [(step, path) for step, path in files if step >= since]:
        try:
            return read_checkpoint(path)
        except CheckpointError:
            continue
    return None


def verify(run_dir: str | os.PathLike, from_step: int | None = None) -> Verification:
    """Replay ``run_dir`` from the checkpoint of ``from_step`` (default: its oldest
    checkpoint before the newest since the run last crossed scopes; the start when there
    is none) to its newest checkpoint.

    Raises:
        RunDirectoryError, CheckpointError: not a run, or no valid checkpoint.
        CheckpointMismatchError: the run's data is no longer what it was trained on.
    """
    run_dir = os.fspath(run_dir)
    run = read_run(run_dir)
    directory = checkpoints_directory(run_dir)
    newest = newest_valid(directory)
    if newest is None:
        raise CheckpointNotFoundError(f"no valid checkpoint (step-*.h5) in {directory}")
    base = _older(directory, newest, from_step)
    x, y, validation = fit_arrays(run.experiment)
    start = time.perf_counter()
    replayed = replay(directory, newest, base, newest.state.step, x, y, validation)
    return Verification(run_dir, 0 if base is None else base.state.step, newest.state.step,
                        newest.params_digest, params_digest(replayed.state.params),
                        time.perf_counter() - start,
                        tuple(c.to_dict() for c in newest.crossings),
                        None if replayed.own is None else replayed.own.to_dict())
