"""Rewind: the exact state of a run at any step, saved or not.

Training is deterministic, so the state after step K is the newest checkpoint at or before
K plus a replay of the steps between, under the run's own settings (its thread count
included) and on its own data (checked by fingerprint). The replay is ``fit`` itself. It
is the run's state bit for bit when this process computes in the scope the run computed
those steps in (``scope.py``); in another, it warns, and says where the replay crossed.
"""

from __future__ import annotations

import os
import warnings
from typing import Any, NamedTuple

from purenet.checkpoint import scope
from purenet.checkpoint.format import Checkpoint
from purenet.checkpoint.policy import (checkpoint_files, checkpoints_directory, newest_valid,
                                       read_named)
from purenet.core import checks
from purenet.errors import (CheckpointError, CheckpointMismatchError, CheckpointNotFoundError,
                            CheckpointWarning)
from purenet.train.callbacks import Callback
from purenet.train.config import RunConfig
from purenet.train.data import batches_per_epoch, check_batch_size
from purenet.train.fingerprint import Fingerprint, data_differences
from purenet.train.loop import fit
from purenet.train.state import TrainState


class Replayed(NamedTuple):
    """A state replayed; ``earlier``, the scope crossings of the checkpoint it was replayed
    from; ``own``, the replay's own crossing when this process computes in another scope
    than the run did after that step (None when it does not)."""

    state: TrainState
    earlier: tuple[scope.Crossing, ...]
    own: scope.Crossing | None

    @property
    def crossings(self) -> tuple[scope.Crossing, ...]:
        """Every crossing on the way to the replayed state."""
        return self.earlier + (() if self.own is None else (self.own,))


class _Replay(Callback):
    """What ``fit`` resumes from: a checkpoint (or the start), after checking the run's
    data against the one the checkpoints were trained on, and its scope against this
    process's. It saves nothing."""

    def __init__(self, directory: str, newest: Checkpoint, base: Checkpoint | None,
                 data: Fingerprint | None):
        self.directory, self.newest, self.base, self.data = directory, newest, base, data
        self.earlier: tuple[scope.Crossing, ...] = ()
        self.own: scope.Crossing | None = None

    def restore(self, config: RunConfig, data: Fingerprint) -> TrainState | None:
        if self.data is not None:
            different = data_differences(data, self.data)
            if different:
                raise CheckpointMismatchError(
                    f"the data given is not the data the run in {self.directory} was trained "
                    "on:\n  " + "\n  ".join(different) + "\npass the run's own data")
        step = 0 if self.base is None else self.base.state.step
        then = scope.scope_after(self.newest.scope, self.newest.crossings, step)
        self.earlier = () if self.base is None else self.base.crossings
        self.own = scope.go_on(self.directory if self.base is None else self.base.path,
                               "replaying", step, then, stacklevel=5)
        return None if self.base is None else self.base.state


def _base(directory: str, step: int) -> Checkpoint | None:
    """The newest valid checkpoint at or before ``step``, or None (replay from the start)."""
    for saved, path in reversed(checkpoint_files(directory)):
        if saved <= step:
            try:
                return read_named(saved, path)
            except CheckpointError as error:
                warnings.warn(f"skipping checkpoint {path}: {error}", CheckpointWarning,
                              stacklevel=3)
    return None


def state_at(directory: str | os.PathLike, step: int, x: Any, y: Any,
             validation_data: tuple[Any, Any] | None = None) -> TrainState:
    """The ``TrainState`` that the uninterrupted run had after ``step`` steps, bit for bit
    (params, optimizer state, history, counters): the newest checkpoint at or before
    ``step`` replayed forwards, or the run replayed from its start. Bit for bit within the
    run's scope (numerics version, numpy and BLAS); replayed under another, it warns.

    Args:
        directory: a checkpoints folder, or a run directory holding ``checkpoints/``.
        step: the step wanted (0 is the state before the first step).
        x, y, validation_data: the run's own data, as given to its ``fit``.

    Raises:
        CheckpointNotFoundError: no valid checkpoint says what the run is.
        CheckpointMismatchError: ``x``/``y`` are not the data the run was trained on.
        ValueError: ``step`` lies past the run's end.
    """
    return replay_to(directory, step, x, y, validation_data).state


def replay_to(directory: str | os.PathLike, step: int, x: Any, y: Any,
              validation_data: tuple[Any, Any] | None = None) -> Replayed:
    """``state_at``'s state, with the scope crossings of the run up to it."""
    checks.check("step", step, checks.integer(0))
    directory = checkpoints_directory(directory)
    if not os.path.isdir(directory):
        raise CheckpointNotFoundError(f"no checkpoint directory at {directory}")
    newest = newest_valid(directory)
    if newest is None:
        raise CheckpointNotFoundError(f"no valid checkpoint (step-*.h5) in {directory}")
    config, last = newest.config, newest.state
    n = len(x)
    end = config.epochs * batches_per_epoch(n, check_batch_size(config.batch_size, n),
                                            config.drop_last)
    if last.stopped and step > last.step:
        end = last.step
    if step > end:
        raise ValueError(f"step {step} lies past the end of the run in {directory}, which "
                         f"ends at step {end}; choose a step from 0 to {end}")
    return replay(directory, newest, _base(directory, step), step, x, y, validation_data)


def replay(directory: str, newest: Checkpoint, base: Checkpoint | None, step: int, x: Any,
           y: Any, validation_data: tuple[Any, Any] | None = None) -> Replayed:
    """The state after ``step`` of the run whose newest checkpoint in ``directory`` is
    ``newest``: ``base`` (None: the start) replayed forwards by ``fit`` under the run's
    settings, on data checked against the run's fingerprint."""
    source = _Replay(directory, newest, base, newest.data)
    result = fit(newest.config, x, y, validation_data=validation_data, resume=True,
                 checkpointer=source, max_steps=step, progress=False)
    return Replayed(result.state, source.earlier, source.own)
