"""The checkpoint file: one HDF5 file per saved step, sealed by a digest in its user block.

Layout of a format 3 file (readable with h5py, h5dump or HDFView alone, and by purenet
without libhdf5):

- bytes 0-511: ``sealed.py``'s header (format version, the manifest's length, the length
  and xxh3-128 digest of everything after the header, a CRC-32 of the header). It is
  checked before anything else is read, so a flipped bit anywhere or a truncated file is
  an error, never a crash or a wrong number.
- from byte 512 to the end of the HDF5 user block (a power of two, 1 KiB or more): the
  manifest (``manifest.py``), JSON that HDF5 never interprets: the ``meta``, ``config``,
  ``experiment`` and ``data`` records and a table of every array's name, dtype, shape and
  byte offset; then NUL bytes.
- the HDF5 file proper, after the user block: ``/`` JSON attributes ``meta`` (format,
  versions, creation time, progress, seed, the architecture, epoch totals, early-stopping
  scalars, the optimizer's state record with its scalar fields, the environment),
  ``config`` (the run record, ``RunConfig.to_dict()``), ``experiment`` and ``data`` (plain
  data or null), the same texts as the manifest's; datasets, layer ``i`` of a tree as
  ``W<i>`` and ``b<i>``: ``/params/W0``, ``/params/b0``, ...; the optimizer state's trees
  under ``/optimizer/<field>/`` (a chain's records under ``/optimizer/states/<k>/<field>/``);
  ``/early_stopping/best_params/``; one float64 dataset per History column,
  ``/history/<column>``. Each dataset is contiguous and 64-byte aligned, at the offset the
  manifest gives.

``meta`` also records the numerics version the state was computed with and the steps at
which its run crossed into another scope (``scope.py``); which keys a file may lack and
which refuse it as newer is ``contract.py``'s.

purenet reads a format 3 file through its manifest alone (``read_v3.py``): the arrays are
views of the verified bytes, checked against the architecture before any is looked at.
Formats 1 and 2 have no manifest; every reader refuses them with the ``purenet upgrade``
command, and only ``upgrade.py`` reads them, through libhdf5 in a child process with a
time and memory limit (``legacy.py``), to rewrite them as format 3. Only ``layout.py``,
``hdf5_bounds.py``, ``read_v2.py``, ``format_v1.py`` and ``legacy_child.py`` import h5py.
Nothing is ever unpickled.
"""

from __future__ import annotations

import os
import shlex
from typing import Any

import attrs

from purenet.checkpoint.layout import FORMAT_NAME, body_chunks
from purenet.checkpoint.read_v3 import plan, read_v3
from purenet.checkpoint.scope import Crossing, here, scope_of
from purenet.checkpoint.sealed import (FORMAT_VERSION, USERBLOCK_SIZE, header_version,
                                      read_sealed, verify_sealed, write_sealed)
from purenet.checkpoint.state_arrays import non_finite_arrays
from purenet.checkpoint.validity import check_state
from purenet.core.numerics import NUMERICS_VERSION
from purenet.core.records import params_digest
from purenet import __version__
from purenet.errors import CheckpointError, CorruptCheckpointError, LegacyCheckpointError
from purenet.train.config import RunConfig, optimizer_text
from purenet.train.state import TrainState

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "USERBLOCK_SIZE", "Checkpoint", "non_finite_arrays",
           "read_checkpoint", "summarize", "verify_checkpoint", "write_checkpoint"]


@attrs.frozen(eq=False)
class Checkpoint:
    """A verified checkpoint, as read back. ``data``: the training data's fingerprint
    (None when absent). ``numerics``: the numerics version its state was computed with;
    ``crossings``: the steps at which its run went on under another scope (``scope.py``);
    ``upgraded_from``: the format and purenet version of the file ``purenet upgrade``
    rewrote as this one, or None."""

    path: str
    state: TrainState
    config: RunConfig
    experiment: dict[str, Any] | None
    environment: dict[str, Any]
    format_version: int
    purenet_version: str
    created: str
    data: dict[str, Any] | None = None
    numerics: int = NUMERICS_VERSION
    crossings: tuple[Crossing, ...] = ()
    upgraded_from: dict[str, Any] | None = None

    @property
    def params_digest(self) -> str:
        """SHA-256 of the parameters (``records.params_digest``)."""
        return params_digest(self.state.params)

    @property
    def scope(self) -> dict[str, Any]:
        """The scope its newest steps were computed in: numerics version, numpy and its
        SIMD targets, BLAS (``scope.py``)."""
        return scope_of(self.numerics, self.environment)


def write_checkpoint(path: str | os.PathLike, state: TrainState, config: RunConfig,
                     experiment: dict[str, Any] | None = None,
                     data: dict[str, Any] | None = None,
                     crossings: tuple[Crossing, ...] = ()) -> str:
    """Write ``state`` to ``path`` atomically: temp file, fsync, rename, fsync directory.

    A crash at any instant leaves either the old file or the complete new one. ``data``
    (plain data, e.g. a fingerprint of the training data) is stored as it is;
    ``crossings``: where the run went on under another scope, if it did.

    Raises:
        CheckpointError: a non-finite array (nothing is written), or an OS error such as
            a full disk (the temp file is removed; earlier checkpoints are untouched).
    """
    path = os.fspath(path)
    bad = non_finite_arrays(state)
    if bad:
        raise CheckpointError(
            f"refusing to write checkpoint {path} of step {state.step}: "
            f"{', '.join(bad)} {'holds' if len(bad) == 1 else 'hold'} NaN or inf; nothing was "
            "written, so the newest checkpoint already there (if any) is the last good state")
    # The manifest, then the layout's template with the state's arrays and JSON in place
    # (``layout``): written piece by piece, never joined into one buffer.
    provenance = {"crossings": [c.to_dict() for c in crossings]}
    chunks, manifest_length = body_chunks(state, config, experiment, data, provenance)
    return write_sealed(path, chunks, manifest_length)


# --- reading --------------------------------------------------------------------------


def read_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read and fully verify one checkpoint file of format 3, in this process, through its
    manifest (never through libhdf5, never in another process).

    Raises:
        CheckpointError (a subclass naming the problem): missing, empty, truncated,
        corrupt, foreign or padded files, FIFOs and devices, states no run could reach;
        ``NewerCheckpointError`` for a file of a newer purenet, ``LegacyCheckpointError``
        for formats 1 and 2, with the ``purenet upgrade`` command that converts them.
    """
    path = os.fspath(path)
    version = header_version(path)
    if version != FORMAT_VERSION:
        raise legacy_refusal(path, version)
    image = read_sealed(path, lambda raw, size: _checked(plan, path, raw, size, path))
    parts = _checked(read_v3, path, image.data, image.plan, path)
    state, config = parts["state"], parts["config"]
    _checked(check_state, path, state, config, path, parts["data"])
    return Checkpoint(path, state, config, parts["experiment"], parts["environment"],
                      version, parts["purenet_version"], parts["created"], parts["data"],
                      parts["numerics"], parts["crossings"], parts["upgraded_from"])


# What a check that missed a case could raise on a value of the wrong kind. Each is a bug
# of the checks (tests/test_fuzz.py and test_manifest_property.py look for them), but never
# a traceback for the user: a file that reaches one is refused like any other.
_UNFORESEEN = (TypeError, ValueError, KeyError, AttributeError, IndexError, OverflowError,
               RecursionError, ZeroDivisionError)


def _checked(step: Any, path: str, *args: Any) -> Any:
    """``step(*args)``, an unforeseen exception refused as a damaged file."""
    try:
        return step(*args)
    except CheckpointError:
        raise
    except _UNFORESEEN as error:
        raise CorruptCheckpointError(
            f"{path} is not a checkpoint purenet could have written (a check of purenet "
            f"{__version__} met {type(error).__name__}: {str(error)[:120]}); use an earlier "
            "checkpoint, and please report the file") from error


def legacy_refusal(path: str, version: int) -> LegacyCheckpointError:
    """The one line for a format 1 or 2 file: what it is, and the command that converts it."""
    return LegacyCheckpointError(
        f"{path} is a checkpoint of format {version} (purenet 0.1), which this purenet reads "
        f"only to convert it: run `purenet upgrade {shlex.quote(path)}` (it verifies the "
        "rewritten file before it replaces this one)")


def verify_checkpoint(path: str | os.PathLike) -> int:
    """Check a checkpoint's header and digest from disk, in chunks, without parsing it;
    the check a save does on the file it just wrote. Returns its format version."""
    return verify_sealed(os.fspath(path))


def summarize(path: str | os.PathLike | Checkpoint) -> dict[str, Any]:
    """A verified checkpoint's key facts, as plain data (for ``purenet inspect``): of the
    file ``path``, or of a checkpoint already read."""
    ckpt = path if isinstance(path, Checkpoint) else read_checkpoint(path)
    state = ckpt.state
    history = state.history
    loss = history.train_loss[-1] if len(history) else (
        state.totals.loss_sum / state.totals.samples if state.totals.samples else float("nan"))
    return {"path": ckpt.path, "step": state.step, "epoch": state.epoch,
            "batch_index": state.batch_index, "loss": loss,
            "val_loss": history.val_loss[-1] if len(history) else float("nan"),
            "params_digest": ckpt.params_digest, "format": FORMAT_NAME,
            "format_version": ckpt.format_version, "purenet_version": ckpt.purenet_version,
            "created": ckpt.created, "upgraded_from": ckpt.upgraded_from, "seed": state.seed,
            "stopped": state.stopped,
            "optimizer": optimizer_text(ckpt.config.optimizer), "dtype": ckpt.config.dtype,
            "threads": ckpt.config.threads, "data": ckpt.data,
            "architecture": state.params.architecture.to_dicts(),
            "numerics": ckpt.numerics, "environment": ckpt.environment,
            "crossings": [c.to_dict() for c in ckpt.crossings], "scope_here": here(),
            "integrity": "ok"}
