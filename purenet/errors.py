"""purenet's exception and warning classes for checkpoint files (imported without h5py)."""

from __future__ import annotations


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


class CheckpointMismatchError(CheckpointError, ValueError):
    """A valid checkpoint that belongs to a different run than the one requested."""


class CheckpointWarning(UserWarning):
    """A checkpoint was skipped, or a resume may not be bit-identical."""
