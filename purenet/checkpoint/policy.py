"""The checkpoint policy ``fit`` follows: when to save, what to keep, where to resume.

Files are named ``step-00001200.h5`` in one directory. A save writes atomically
(``checkpoint.write_checkpoint``), reads the new file back and verifies it, and only then
deletes checkpoints the retention policy no longer keeps; so at every instant the directory
holds at least one complete, verified checkpoint once one was ever written.
"""

from __future__ import annotations

import os
import re
import shlex
import warnings
from typing import Any

from purenet.checkpoint import atomic, scope
from purenet.checkpoint.lock import DirectoryLock
from purenet.checkpoint.options import CheckpointOptions
from purenet.checkpoint.format import (Checkpoint, read_checkpoint, verify_checkpoint,
                                       write_checkpoint)
from purenet.checkpoint.writer import BackgroundWriter
from purenet.checkpoint.validity import batches_of, samples_of
from purenet.train.data import progress_problems
from purenet.errors import (CheckpointError, CheckpointMismatchError, CheckpointNotFoundError,
                            CheckpointWarning, CorruptCheckpointError, LegacyCheckpointError,
                            UnregisteredPieceError)
from purenet.errors import NonFiniteError, TrainingInterrupted
from purenet.train.callbacks import Callback
from purenet.train.config import RunConfig, listed
from purenet.train.fingerprint import Fingerprint, data_differences
from purenet.train.state import MONITORS, TrainState

CHECKPOINT_NAME = re.compile(r"^step-(\d+)\.h5$")


def checkpoint_name(step: int) -> str:
    return f"step-{step:08d}.h5"


def checkpoints_directory(path: str | os.PathLike) -> str:
    """``path`` itself, or its ``checkpoints/`` folder when it is a run directory."""
    path = os.fspath(path)
    inner = os.path.join(path, "checkpoints")
    return inner if os.path.isdir(inner) else path


def checkpoint_files(directory: str | os.PathLike) -> list[tuple[int, str]]:
    """``(step, path)`` of every file named like a checkpoint in ``directory``, oldest first.

    Raises:
        CheckpointError: the directory cannot be listed (no permission, not a directory).
    """
    directory = os.fspath(directory)
    found = []
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        raise CheckpointNotFoundError(f"no checkpoint directory at {directory}") from None
    except OSError as error:
        raise CheckpointError(f"cannot list the checkpoint directory {directory}: "
                              f"{error.strerror or error}; check its permissions") from error
    for name in names:
        match = CHECKPOINT_NAME.match(name)
        if match:
            found.append((int(match.group(1)), os.path.join(directory, name)))
    return sorted(found)


def read_named(step: int, path: str) -> Checkpoint:
    """The checkpoint ``path``, whose name says it holds ``step``: refused when the state
    inside holds another (a copy of step 2 named step-99999999.h5 must not pass for the
    newest, nor step 4 named step-00000002.h5 for step 2)."""
    found = read_checkpoint(path)
    if found.state.step != step:
        raise CorruptCheckpointError(
            f"{path} is named for step {step} but holds step {found.state.step}; rename it "
            f"{checkpoint_name(found.state.step)} (or remove it) if it is a real checkpoint")
    return found


def newest_valid(directory: str | os.PathLike) -> Checkpoint | None:
    """The newest checkpoint in ``directory`` that reads, verifies and holds the step its
    name says, or None; each newer file that fails is skipped with a warning naming it and
    the problem.

    Raises:
        LegacyCheckpointError: the newest file that is not damaged is of format 1 or 2: a
            valid checkpoint that ``purenet upgrade`` converts, which a resume must not
            pass over for an older one (nor start afresh and delete it).
        UnregisteredPieceError: the newest file that is not damaged names a piece a user
            registered, which this process has not (as every checkpoint of its run does).
    """
    for step, path in reversed(checkpoint_files(directory)):
        try:
            return read_named(step, path)
        except LegacyCheckpointError as error:
            raise LegacyCheckpointError(
                f"{error}; `purenet upgrade {shlex.quote(os.fspath(directory))}` converts "
                "every checkpoint of the directory") from None
        except UnregisteredPieceError:
            raise   # a valid file, as every older one of its run would be: none is skipped
        except CheckpointError as error:
            warnings.warn(f"skipping checkpoint {path}: {error}", CheckpointWarning, stacklevel=2)
    return None


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """A verified checkpoint: the file ``path``, or the newest valid one in a directory.

    Raises:
        CheckpointNotFoundError: nothing there, or no valid checkpoint in the directory.
        CheckpointError: the file is corrupt, foreign, or of a future format.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        found = newest_valid(path)
        if found is None:
            raise CheckpointNotFoundError(f"no valid checkpoint (step-*.h5) in directory {path}")
        return found
    return read_checkpoint(path)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(directory: str) -> list[str]:
    """Delete temp files left by saves whose process is gone (killed mid-save)."""
    removed = []
    for name in os.listdir(directory):
        temp = atomic.temp_of(name)
        if temp and CHECKPOINT_NAME.match(temp[0]) and (temp[1] == os.getpid()
                                                        or not _pid_alive(temp[1])):
            path = os.path.join(directory, name)
            try:
                os.remove(path)
                removed.append(path)
            except FileNotFoundError:
                pass
    return removed


class Checkpointer(Callback):
    """Saves a run's state to ``directory``: a ``fit`` callback that can also restore.

    Args:
        directory: where the ``step-NNNNNNNN.h5`` files go (created if missing).
        every_steps, every_epochs, keep, keep_best, monitor: when to save and what to keep
            (``CheckpointOptions``: with neither ``every_steps`` nor ``every_epochs``, every
            epoch); or ``options``, such a record whole.
        experiment: plain data describing the experiment (stored in every file).
        asynchronous: during ``fit``, write each checkpoint in a background thread while
            training goes on (at most one save in flight; a failure is raised by the next
            step, by ``wait``, or when fit ends). ``save`` called directly is synchronous.
    """

    def __init__(self, directory: str | os.PathLike, every_steps: int | None = None,
                 every_epochs: int | None = None, keep: int | None = 3,
                 keep_best: int | None = None, monitor: str | None = None,
                 experiment: dict[str, Any] | None = None, asynchronous: bool = True,
                 options: CheckpointOptions | None = None) -> None:
        self.options = options if options is not None else CheckpointOptions(
            every_steps, every_epochs, keep, keep_best, monitor)
        self.directory = os.path.abspath(os.fspath(directory))
        self.experiment = experiment
        self.asynchronous = bool(asynchronous)
        self.monitor = self.options.monitor_for(validated=True)   # until a fit says
        self.last_saved_step: int | None = None   # set once a save is verified
        self._submitted_step: int | None = None   # the newest save handed to the writer
        self._writer = BackgroundWriter()
        self._metrics: dict[str, float] = {}   # verified path -> monitor value
        self._config: RunConfig | None = None   # the run being trained, from on_fit_start
        self._data: Fingerprint | None = None    # its training data's fingerprint
        self._lock = DirectoryLock(self.directory)
        # Where the run being trained went on under another scope (from its checkpoint, and
        # this resume's own when it changed scope): written into every save.
        self._crossings: tuple[scope.Crossing, ...] = ()

    every_steps = property(lambda self: self.options.every_steps)
    every_epochs = property(lambda self: self.options.every_epochs)
    keep = property(lambda self: self.options.keep)
    keep_best = property(lambda self: self.options.keep_best)

    def __repr__(self) -> str:
        return (f"Checkpointer({self.directory!r}, every_steps={self.every_steps}, "
                f"every_epochs={self.every_epochs}, keep={self.keep}, keep_best={self.keep_best})")

    # -- the fit callback --

    def start(self) -> None:
        """Take the directory for this trainer (its lock), and clear temp files of saves
        that were killed.

        Raises:
            CheckpointLockedError: another trainer is using the directory.
        """
        self._lock.acquire()
        remove_stale_temps(self.directory)

    def restore(self, config: RunConfig, data: Fingerprint | None = None) -> TrainState | None:
        """The newest valid checkpoint's state, after checking it belongs to ``config``'s
        run and (when the file records it) was trained on ``data``; None when there is no
        checkpoint yet. Takes the directory's lock first, and keeps it for the fit."""
        if not os.path.isdir(self.directory):
            return None
        self.start()
        found = newest_valid(self.directory)
        if found is None:
            return None
        differences = config.differences(found.config)
        if data is not None and found.data is not None:
            differences += data_differences(data, found.data)
        if not differences:   # the counters against the data this run is given
            state = found.state
            differences += progress_problems(state.step, state.epoch, state.batch_index,
                                             batches_of(config, samples_of(data)))
        if differences:
            self._lock.release()
            theirs = (found.experiment or {}).get("name")
            lead = (f"{found.path} belongs to another run" if theirs is None
                    else f"{found.path} belongs to the run of {theirs!r}")
            raise CheckpointMismatchError(
                f"{lead}; refusing to resume it with other settings or data:"
                + listed(differences)
                + "\nresume with the original settings and data, or use another directory")
        own = scope.go_on(found.path, "resuming", found.state.step, found.scope)
        self._crossings = found.crossings + (() if own is None else (own,))
        self.last_saved_step = found.state.step
        return found.state

    def forget_lock(self) -> None:
        """Delete the directory's lock file, holding the lock while doing so (taken again if
        it was let go; left alone if another trainer holds it now): for a run that ended
        before it began, which leaves nothing behind."""
        if os.path.lexists(self._lock.path):
            try:
                self._lock.acquire()
            except (CheckpointError, OSError):
                return
        self._lock.release(remove=True)

    def on_fit_start(self, state: TrainState, config: RunConfig, total_steps: int,
                     data: Fingerprint) -> None:
        self.start()
        self._config, self._data = config, data
        self.monitor = self.options.monitor_for(
            validated=not isinstance(data, dict) or data.get("x_val") is not None)

    def on_step_end(self, state: TrainState, metrics: Any) -> None:
        self._writer.raise_failure()   # a background save that failed stops the run here
        if self.options.due(state, epoch_end=False):
            self._save_from_fit(state)

    def on_epoch_end(self, state: TrainState) -> None:
        self._writer.raise_failure()
        if self.options.due(state, epoch_end=True) \
                and state.step not in (self.last_saved_step, self._submitted_step):
            self._save_from_fit(state)

    def on_fit_end(self, state: TrainState, error: BaseException | None) -> None:
        """Save the final state unless it is saved already: after a normal end, the last
        good step before a NaN, or the step an interrupt stopped at."""
        try:
            self.wait()   # the save in flight first: its failure must not be lost
            ending = error is None or isinstance(error, (NonFiniteError, TrainingInterrupted))
            if ending and self._config is not None and state is not None \
                    and self.last_saved_step != state.step:
                self.save(state, self._config)
        finally:
            self._writer.close()   # no idle thread left per Checkpointer; submit restarts it
            self._lock.release()
            self._crossings = ()

    # -- saving --

    def save(self, state: TrainState, config: RunConfig) -> str:
        """Write ``state``, verify it, then apply retention; synchronous (after waiting for
        a background save in flight, whose failure it raises). Returns the file's path."""
        self.wait()
        return self._save_now(state, config)

    def wait(self) -> str | None:
        """Block until the background save in flight, if any, is finished (written,
        verified, retention applied). Returns its path, or None when none was in flight.

        Raises:
            CheckpointError: that save failed (raised once; the directory still holds the
                checkpoints from before it).
        """
        return self._writer.wait()

    def _save_from_fit(self, state: TrainState) -> None:
        if not self.asynchronous:
            self.save(state, self._config)
            return
        # No copy: the state and its arrays are immutable. submit() waits for the save
        # before, so two saves never run at once.
        self._writer.submit(self._save_now, state, self._config)
        self._submitted_step = state.step

    def _save_now(self, state: TrainState, config: RunConfig) -> str:
        os.makedirs(self.directory, exist_ok=True)
        path = write_checkpoint(os.path.join(self.directory, checkpoint_name(state.step)),
                                state, config, self.experiment, self._data, self._crossings)
        try:
            # The file read back from disk and its digest checked, before any delete. (Every
            # load still verifies in full; the bytes hashed here are the ones it will parse.)
            verify_checkpoint(path)
        except CheckpointError as error:
            raise type(error)(f"the checkpoint just written does not verify, so no older "
                              f"checkpoint was deleted: {error}") from error
        self._remember(path, state)
        self.last_saved_step = state.step
        self._apply_retention()
        return path

    def _remember(self, path: str, state: TrainState) -> None:
        column = getattr(state.history, self.monitor)
        self._metrics[path] = column[-1] if column else float("nan")

    def _apply_retention(self) -> None:
        if self.keep is None:
            return
        files = [path for _, path in checkpoint_files(self.directory)]
        keep = set(files[-self.keep:])
        if self.keep_best:
            keep |= set(self._best(files))
        for path in files:
            if path not in keep:
                self._metrics.pop(path, None)
                try:
                    os.remove(path)
                except FileNotFoundError:   # another process got there first
                    pass

    def _best(self, files: list[str]) -> list[str]:
        scored = []
        for path in files:
            if path not in self._metrics:
                try:
                    self._remember(path, read_checkpoint(path).state)
                except CheckpointError:
                    continue
            value = self._metrics[path]
            if value == value:   # not NaN
                scored.append((value if MONITORS[self.monitor] == "min" else -value, path))
        return [path for _, path in sorted(scored)[:self.keep_best]]
