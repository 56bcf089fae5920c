"""Every exception and warning class of purenet, in one place (imported without h5py).

Settings (``SettingError``), training (``NonFiniteError``, ``TrainingInterrupted``),
checkpoint files (``CheckpointError`` and its subclasses), experiment files and run
directories (``ExperimentError``, ``RunDirectoryError``, ``MissingColumnError``).
"""

from __future__ import annotations

from typing import Any, Sequence

Path = tuple[str | int, ...]


# --- settings -------------------------------------------------------------------------


def key_text(path: Sequence[str | int]) -> str:
    """``("layers", 2, "activation")`` -> ``"layers[2].activation"``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


class SettingError(ValueError):
    """A bad value for a setting: ``path`` says which (``("optimizer", "b1")``), ``problem``
    what is wrong with it (``"must be a number in [0, 1), got 1.5"``)."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path: Path = (path,) if isinstance(path, str) else tuple(path)
        self.problem = problem
        super().__init__(f"{key_text(self.path)} {problem}" if self.path else problem)

    def within(self, *prefix: str | int) -> "SettingError":
        """The same error, its path under ``prefix`` (a record inside a record)."""
        return type(self)((*prefix, *self.path), self.problem)


class SettingTypeError(SettingError, TypeError):
    """A setting of the wrong type (a string where a number belongs)."""


class UnknownKeyError(SettingError):
    """A key that no setting has (``lerning_rate``); in a checkpoint, the mark of a file
    written by a newer purenet."""


class UnknownNameError(SettingError):
    """A name that no table holds (an activation, loss, optimizer or schedule)."""


# --- training -------------------------------------------------------------------------


class NonFiniteError(FloatingPointError):
    """Training produced NaN or inf; the state before the offending step is intact."""


class TrainingInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped ``fit`` between two steps; ``state`` is the last complete
    one (and was checkpointed, when ``fit`` had a checkpointer)."""

    def __init__(self, message: str, state: Any, signal_number: int):
        super().__init__(message)
        self.state = state
        self.signal_number = signal_number


# --- checkpoint files -----------------------------------------------------------------


class CheckpointError(Exception):
    """Any failure to read, verify or write a checkpoint."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """No checkpoint file at the path, or no valid checkpoint in the directory."""


class CorruptCheckpointError(CheckpointError):
    """A purenet checkpoint whose bytes do not match its digest: damaged or truncated."""


class NotACheckpointError(CheckpointError):
    """A file that is not a purenet checkpoint at all (text, pickle, another program's HDF5)."""


class UnsupportedCheckpointError(CheckpointError):
    """A checkpoint this purenet cannot read safely: a future format version, or HDF5
    links or external storage that could pull data from outside the file."""


class NewerCheckpointError(UnsupportedCheckpointError):
    """A checkpoint written by a newer purenet: a format version, a key or a name this
    version does not know (``docs/compatibility.md``)."""


class LegacyCheckpointError(UnsupportedCheckpointError):
    """A checkpoint of format 1 or 2 (purenet 0.1): read only by ``purenet upgrade``."""


class UnregisteredPieceError(CheckpointError):
    """A checkpoint of a run that used a piece a user registered (an activation, a loss,
    an initializer, an optimizer transform) which this process has not registered."""


class CheckpointLockedError(CheckpointError):
    """Another trainer holds the checkpoint directory's lock."""


class CheckpointMismatchError(CheckpointError, ValueError):
    """A valid checkpoint that belongs to a different run than the one requested."""


class CheckpointWarning(UserWarning):
    """A checkpoint was skipped, or a resume may not be bit-identical."""


# --- experiment files and run directories ---------------------------------------------


class ExperimentError(ValueError):
    """A bad experiment file or override: names the key, the file and the line.

    Attributes:
        key: the dotted key at fault (``optimizer.learning_rate``, ``layers[2].activation``),
            or None when the whole file is at fault.
        path: the experiment file, or None.
        line: the 1-based line of ``path`` holding the key, when it could be found.
    """

    def __init__(self, message: str, key: str | None = None, path: str | None = None,
                 line: int | None = None, where: str | None = None) -> None:
        self.key, self.path, self.line, self.problem = key, path, line, message
        location = where or (f"{path}, line {line}" if path and line else path)
        text = ": ".join(part for part in (location, key, message) if part)
        super().__init__(text)


class RunDirectoryError(ValueError):
    """A run directory that cannot be used as asked (holds another run, is not a run)."""


class MissingColumnError(ValueError):
    """A data file has no column (or array) of the requested name."""
