"""The checkpoint file: one HDF5 file per saved step, sealed by a digest in its user block.

Layout of a format 2 file (readable with h5py, h5dump or HDFView alone):

- bytes 0-511, the HDF5 user block: ``sealed.py``'s header (format version, length and
  xxh3-128 digest of the HDF5 body, a CRC-32 of the header). It is checked before HDF5
  parses a single byte, so a flipped bit anywhere or a truncated file is an error, never a
  crash or a wrong number. It covers every byte of the body, so the arrays carry no CRC of
  their own (format 1 gave each a ``crc32`` attribute).
- ``/`` JSON attributes: ``meta`` (format, versions, creation time, progress, seed, the
  architecture, epoch totals, early-stopping scalars, the optimizer's state record with its
  scalar fields, the environment), ``config`` (the run record, ``RunConfig.to_dict()``),
  ``experiment`` and ``data`` (plain data or null).
- Datasets, layer ``i`` of a tree as ``W<i>`` and ``b<i>``: ``/params/W0``, ``/params/b0``,
  ...; the optimizer state's trees under ``/optimizer/<field>/`` (a chain's records under
  ``/optimizer/states/<k>/<field>/``); ``/early_stopping/best_params/``; and one float64
  dataset per History column, ``/history/<column>``.

Every read checks the digest first, then refuses any object but the expected ones (no
links, no external or virtual storage), then rebuilds the records, whose constructors check
shapes and dtypes against the architecture. Format 1 files are read by ``format_v1.py``.
``format*.py`` are the only modules that import h5py (format 2's layout both ways is
in ``format_v2.py``). Nothing is ever unpickled.
"""

from __future__ import annotations

import io
import os
from typing import Any

import attrs
import h5py

from purenet.checkpoint import format_v1
from purenet.checkpoint.validity import check_state
from purenet.checkpoint.format_v2 import FORMAT_NAME, body_chunks, non_finite_arrays
from purenet.checkpoint.read_v2 import read_v2
from purenet.checkpoint.sealed import (FORMAT_VERSION, USERBLOCK_SIZE,
                                      read_sealed, verify_sealed, write_sealed)
from purenet.core.records import params_digest
from purenet.errors import CheckpointError, CorruptCheckpointError, NotACheckpointError, SettingError
from purenet.train.config import RunConfig
from purenet.train.state import TrainState

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "USERBLOCK_SIZE", "Checkpoint", "non_finite_arrays",
           "read_checkpoint", "summarize", "verify_checkpoint", "write_checkpoint"]


@attrs.frozen(eq=False)
class Checkpoint:
    """A verified checkpoint, as read back. ``data``: the training data's fingerprint
    (None when absent, and for format 1 files)."""

    path: str
    state: TrainState
    config: RunConfig
    experiment: dict[str, Any] | None
    environment: dict[str, Any]
    format_version: int
    purenet_version: str
    created: str
    data: dict[str, Any] | None = None

    @property
    def params_digest(self) -> str:
        """SHA-256 of the parameters (``records.params_digest``)."""
        return params_digest(self.state.params)


def write_checkpoint(path: str | os.PathLike, state: TrainState, config: RunConfig,
                     experiment: dict[str, Any] | None = None,
                     data: dict[str, Any] | None = None) -> str:
    """Write ``state`` to ``path`` atomically: temp file, fsync, rename, fsync directory.

    A crash at any instant leaves either the old file or the complete new one. ``data``
    (plain data, e.g. a fingerprint of the training data) is stored as it is.

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
    # The layout's template with the state's arrays and JSON in place (``format_v2``):
    # written piece by piece, never joined into one buffer.
    return write_sealed(path, body_chunks(state, config, experiment, data))


# --- reading --------------------------------------------------------------------------


def _run_config(data: Any) -> RunConfig:
    try:
        return RunConfig.from_dict(data)
    except SettingError as error:
        raise CorruptCheckpointError(f"the run config stored in the checkpoint is not valid: "
                                     f"{error}") from None


def read_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read and fully verify one checkpoint file (format 1 or 2).

    Raises:
        CheckpointError (a subclass naming the problem): missing, empty, truncated,
        corrupt, foreign, future-version or link-bearing files, FIFOs and devices.
    """
    path = os.fspath(path)
    version, image = read_sealed(path)
    try:
        # Parse the very bytes that were verified, not the file again.
        with h5py.File(io.BytesIO(image), "r") as f:
            if version == 1:
                if f.attrs.get("format") != FORMAT_NAME:
                    raise NotACheckpointError(f"{path} does not say it is a {FORMAT_NAME}")
                parts = format_v1.read_v1(f, path)
            else:
                parts = read_v2(f, image, path)
    except CheckpointError:
        raise
    except Exception as error:   # a sealed file HDF5 cannot make sense of
        raise CorruptCheckpointError(f"{path} passed its digest check but its contents are "
                                     f"not a readable checkpoint: {error}") from error
    config = _run_config(parts["config"])
    check_state(parts["state"], config, path)
    return Checkpoint(path, parts["state"], config, parts["experiment"],
                      parts["environment"], version, parts["purenet_version"], parts["created"],
                      parts.get("data"))


def verify_checkpoint(path: str | os.PathLike) -> int:
    """Check a checkpoint's header and digest from disk, in chunks, without parsing it;
    the check a save does on the file it just wrote. Returns its format version."""
    return verify_sealed(os.fspath(path))


def summarize(path: str | os.PathLike) -> dict[str, Any]:
    """A verified checkpoint's key facts, as plain data (for ``purenet inspect``)."""
    ckpt = read_checkpoint(path)
    state = ckpt.state
    history = state.history
    loss = history.train_loss[-1] if len(history) else (
        state.totals.loss_sum / state.totals.samples if state.totals.samples else float("nan"))
    return {"path": ckpt.path, "step": state.step, "epoch": state.epoch,
            "batch_index": state.batch_index, "loss": loss,
            "val_loss": history.val_loss[-1] if len(history) else float("nan"),
            "params_digest": ckpt.params_digest, "format": FORMAT_NAME,
            "format_version": ckpt.format_version, "purenet_version": ckpt.purenet_version,
            "created": ckpt.created, "seed": state.seed, "stopped": state.stopped,
            "optimizer": ckpt.config.optimizer.name, "dtype": ckpt.config.dtype,
            "threads": ckpt.config.threads, "data": ckpt.data,
            "architecture": state.params.architecture.to_dicts(),
            "environment": ckpt.environment, "integrity": "ok"}
