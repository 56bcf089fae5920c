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
    """The replay from ``from_step`` (0: the run's start) to ``to_step`` and its verdict."""

    run_dir: str
    from_step: int
    to_step: int
    expected_digest: str         # the params digest in the checkpoint of to_step
    replayed_digest: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.expected_digest == self.replayed_digest


def _older(directory: str, newest: Checkpoint, from_step: int | None) -> Checkpoint | None:
    """The checkpoint to replay from: of ``from_step``, else the oldest valid one before
    the newest; None replays from the start."""
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
    for _, path in files:
        try:
            return read_checkpoint(path)
        except CheckpointError:
            continue
    return None


def verify(run_dir: str | os.PathLike, from_step: int | None = None) -> Verification:
    """Replay ``run_dir`` from the checkpoint of ``from_step`` (default: its oldest
    checkpoint before the newest; the start when there is none) to its newest checkpoint.

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
    state = replay(directory, newest, base, newest.state.step, x, y, validation)
    return Verification(run_dir, 0 if base is None else base.state.step, newest.state.step,
                        newest.params_digest, params_digest(state.params),
                        time.perf_counter() - start)
