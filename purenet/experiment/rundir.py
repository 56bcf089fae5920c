"""The run directory: its layout, claiming it for a run, writing its files.

A run directory holds::

    .purenet-run    the marker: purenet made this directory (--force deletes only these)
    .lock           held by the trainer that is using the directory
    config.toml     the resolved experiment (every default filled in); loads as is
    scaler.json     feature names and the standardisation fitted on the training part
    checkpoints/    step-NNNNNNNN.h5, written by purenet.Checkpointer
    history.csv     one row per epoch: epoch, train_loss, train_accuracy, val_loss, val_accuracy
    summary.json    the final metrics (train/val/test), step, epoch, params_digest, seconds
    *.png           figures, from ``purenet plot``
"""

from __future__ import annotations

import datetime
import json
import os
from typing import Any, Mapping

from purenet.errors import RunDirectoryError

from purenet.checkpoint import atomic
from purenet.experiment.schema import without_none
from purenet.experiment.config import RESUMABLE_KEYS, Experiment
from purenet.train.config import differences as config_differences
from purenet.train.state import HISTORY_COLUMNS, History

CONFIG, SCALER, HISTORY, SUMMARY, CHECKPOINTS = (
    "config.toml", "scaler.json", "history.csv", "summary.json", "checkpoints")
# Written first into every run directory: --force deletes only where it finds one.
MARKER = ".purenet-run"
PLOTS = ("loss.png", "accuracy.png", "decision_boundary.png")
RUN_FILES = (CONFIG, SCALER, HISTORY, SUMMARY, "digests.csv", *PLOTS)


def default_run_dir(experiment: Experiment) -> str:
    return os.path.join("runs", experiment.name)


def resolve(run_dir: str | os.PathLike) -> str:
    """The real path of ``run_dir``: symlinks followed and ``missing/..`` taken away, so
    every check looks at the directory that will really be written."""
    path = os.path.realpath(os.fspath(run_dir))
    if os.path.exists(path) and not os.path.isdir(path):
        raise RunDirectoryError(f"{run_dir} is a file, not a directory; a run needs a "
                                "directory of its own: choose another --run-dir")
    return path


def shown(path: str) -> str:
    """``path`` as messages show it: relative to the working directory when inside it."""
    relative = os.path.relpath(path)
    return path if relative == ".." or relative.startswith(".." + os.sep) else relative


def write_atomic(path: str, data: str | bytes) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` through a temp file and a rename, then
    sync the directory: never half a file."""
    data = data.encode("utf-8") if isinstance(data, str) else data
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):   # else the error would name the hidden temp file
        raise FileNotFoundError(f"cannot write {path}: the directory {directory} does not "
                                "exist")
    atomic.fsync_directory(os.path.dirname(atomic.write_atomic(path, data)))


def write_marker(run_dir: str) -> None:
    """Mark ``run_dir`` as a purenet run directory (``--force`` deletes only those)."""
    from purenet import __version__

    path = os.path.join(run_dir, MARKER)
    if not os.path.exists(path):
        write_atomic(path, json.dumps({"purenet_version": __version__, "created": datetime
                                       .datetime.now(datetime.timezone.utc).isoformat()}) + "\n")


def existing_run(run_dir: str) -> list[str]:
    """What of a run ``run_dir`` already holds (empty: nothing)."""
    found = [name for name in (CONFIG, SUMMARY) if os.path.exists(os.path.join(run_dir, name))]
    count = len(checkpoint_names(run_dir))
    if count:
        found.append(f"{count} checkpoint(s)")
    return found


def checkpoint_names(run_dir: str) -> list[str]:
    checkpoints = os.path.join(run_dir, CHECKPOINTS)
    if not os.path.isdir(checkpoints):
        return []
    return [name for name in os.listdir(checkpoints) if name.endswith(".h5")]


def require_marker(run_dir: str) -> None:
    """Refuse to delete from ``run_dir`` unless purenet's marker is in it."""
    if not os.path.isfile(os.path.join(run_dir, MARKER)):
        raise RunDirectoryError(
            f"{shown(run_dir)} holds files of a run but no {MARKER} marker, so purenet did not "
            "make it (or an older purenet did); --force deletes only purenet's own run "
            "directories: delete its files yourself, or choose another --run-dir")


def clear_run(run_dir: str) -> None:
    """Delete a run's files (and only those) from ``run_dir``, which must hold purenet's
    marker: a directory purenet did not make is never emptied."""
    require_marker(run_dir)
    for name in RUN_FILES:
        path = os.path.join(run_dir, name)
        if os.path.isfile(path):
            os.remove(path)
    checkpoints = os.path.join(run_dir, CHECKPOINTS)
    for name in checkpoint_names(run_dir) + [
            n for n in (os.listdir(checkpoints) if os.path.isdir(checkpoints) else ())
            if atomic.temp_of(n)]:
        path = os.path.join(checkpoints, name)
        if os.path.isfile(path):
            os.remove(path)


def _comparable(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in without_none(config).items() if k not in RESUMABLE_KEYS}


def config_mismatches(config: Mapping[str, Any], recorded: Mapping[str, Any],
                      line: str = "{key}: now {expected!r}, the run has {found!r}") -> list[str]:
    """The settings (but those a resume may change) where ``config`` differs from the
    ``recorded`` one, one ``line`` each."""
    return config_differences(_comparable(config), _comparable(recorded), line)


def claim(run_dir: str, config: Mapping[str, Any], resume: bool, force: bool) -> bool:
    """Check that ``run_dir`` may hold this run; returns whether the old run in it must be
    cleared (``force``) before training starts. Deletes nothing itself."""
    if resume and force:
        raise RunDirectoryError("resume and force exclude each other: resume continues the "
                                "run in the directory, force deletes it")
    existing = existing_run(run_dir)
    if not existing:
        return False
    if resume:
        path = os.path.join(run_dir, CONFIG)
        if os.path.exists(path):
            differences = config_mismatches(config, read_config(path))
            if differences:
                raise RunDirectoryError(
                    f"cannot resume the run in {shown(run_dir)}: its config differs from this one "
                    "(only epochs and the checkpoint policy may change):\n  "
                    + "\n  ".join(differences))
        return False
    if not force:
        raise RunDirectoryError(
            f"{shown(run_dir)} already holds a run ({', '.join(existing)}); resume it (--resume), "
            "delete it and start again (--force), or choose another directory (--run-dir)")
    require_marker(run_dir)
    return True


def read_config(path: str) -> dict[str, Any]:
    """A run's ``config.toml`` as plain data (bounded: it is a file anyone may edit)."""
    from purenet.experiment.schema import read_toml

    return read_toml(path)[1]


def history_csv(history: History) -> str:
    """``history`` as CSV text, one row per epoch (NaN where a metric does not apply)."""
    rows = [",".join(HISTORY_COLUMNS)]
    for i in range(len(history)):
        rows.append(",".join(repr(getattr(history, c)[i]) for c in HISTORY_COLUMNS))
    return "\n".join(rows) + "\n"
