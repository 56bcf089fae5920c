"""The run directory: its layout, claiming it for a run, its files, reading it back.

A run directory holds::

    config.toml     the resolved experiment (every default filled in); loads as is
    scaler.json     feature names and the standardisation fitted on the training part
    checkpoints/    step-NNNNNNNN.h5, written by purenet.Checkpointer
    history.csv     one row per epoch: epoch, train_loss, train_accuracy, val_loss, val_accuracy
    summary.json    the final metrics (train/val/test), step, epoch, params_digest, seconds
    *.png           figures, from ``purenet plot``
"""

from __future__ import annotations

import os
import tomllib
from typing import Any, Mapping

import attrs

from purenet.errors import RunDirectoryError

from purenet.checkpoint import atomic
from purenet.experiment.datasets import Scaler
from purenet.experiment.schema import without_none
from purenet.experiment.config import RESUMABLE_KEYS, Experiment, load_experiment
from purenet.core.records import Params
from purenet.train.config import differences as config_differences
from purenet.train.state import HISTORY_COLUMNS, History

CONFIG, SCALER, HISTORY, SUMMARY, CHECKPOINTS = (
    "config.toml", "scaler.json", "history.csv", "summary.json", "checkpoints")
PLOTS = ("loss.png", "accuracy.png", "decision_boundary.png")


def default_run_dir(experiment: Experiment) -> str:
    return os.path.join("runs", experiment.name)


def write_atomic(path: str, data: str | bytes) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` through a temp file and a rename, then
    sync the directory: never half a file."""
    data = data.encode("utf-8") if isinstance(data, str) else data
    atomic.fsync_directory(os.path.dirname(atomic.write_atomic(path, data)))


def existing_run(run_dir: str) -> list[str]:
    """What of a run ``run_dir`` already holds (empty: nothing)."""
    found = [name for name in (CONFIG, SUMMARY) if os.path.exists(os.path.join(run_dir, name))]
    checkpoints = os.path.join(run_dir, CHECKPOINTS)
    if os.path.isdir(checkpoints):
        count = sum(name.endswith(".h5") for name in os.listdir(checkpoints))
        if count:
            found.append(f"{count} checkpoint(s)")
    return found


def clear_run(run_dir: str) -> None:
    """Delete a run's files (and only those) from ``run_dir``."""
    for name in (CONFIG, SCALER, HISTORY, SUMMARY, *PLOTS):
        path = os.path.join(run_dir, name)
        if os.path.exists(path):
            os.remove(path)
    checkpoints = os.path.join(run_dir, CHECKPOINTS)
    if os.path.isdir(checkpoints):
        for name in os.listdir(checkpoints):
            if name.endswith(".h5") or atomic.temp_of(name):
                os.remove(os.path.join(checkpoints, name))


def _comparable(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in without_none(config).items() if k not in RESUMABLE_KEYS}


def claim(run_dir: str, config: Mapping[str, Any], resume: bool, force: bool) -> None:
    """Check that ``run_dir`` may hold this run; with ``force``, empty it of an old run."""
    if resume and force:
        raise RunDirectoryError("resume and force exclude each other: resume continues the "
                                "run in the directory, force deletes it")
    existing = existing_run(run_dir)
    if not existing:
        return
    if resume:
        path = os.path.join(run_dir, CONFIG)
        if os.path.exists(path):
            with open(path, "rb") as fh:
                previous = tomllib.load(fh)
            differences = config_differences(_comparable(config), _comparable(previous),
                                             "{key}: now {expected!r}, the run has {found!r}")
            if differences:
                raise RunDirectoryError(
                    f"cannot resume the run in {run_dir}: its config differs from this one "
                    "(only epochs and the checkpoint policy may change):\n  "
                    + "\n  ".join(differences))
        return
    if not force:
        raise RunDirectoryError(
            f"{run_dir} already holds a run ({', '.join(existing)}); resume it (--resume), "
            "delete it and start again (--force), or choose another directory (--run-dir)")
    clear_run(run_dir)


def history_csv(history: History) -> str:
    """``history`` as CSV text, one row per epoch (NaN where a metric does not apply)."""
    rows = [",".join(HISTORY_COLUMNS)]
    for i in range(len(history)):
        rows.append(",".join(repr(getattr(history, c)[i]) for c in HISTORY_COLUMNS))
    return "\n".join(rows) + "\n"


@attrs.frozen(eq=False)
class Run:
    """A run directory read back: its experiment, final checkpoint and scaler."""

    run_dir: str
    experiment: Experiment
    checkpoint: Any          # purenet.checkpoint.format.Checkpoint
    scaler: Scaler

    @property
    def params(self) -> Params:
        return self.checkpoint.state.params


def load_run(run_dir: str | os.PathLike) -> Run:
    """Read ``run_dir``: ``config.toml``, ``scaler.json`` and the newest valid checkpoint."""
    run_dir = os.fspath(run_dir)
    config = os.path.join(run_dir, CONFIG)
    if not os.path.isdir(run_dir):
        raise RunDirectoryError(f"no run directory at {run_dir}")
    if not os.path.isfile(config):
        raise RunDirectoryError(f"{run_dir} is not a run directory (it has no {CONFIG}); "
                                "make one with `purenet train CONFIG.toml`")
    from purenet.checkpoint.policy import load_checkpoint

    experiment = load_experiment(config)
    with open(os.path.join(run_dir, SCALER), encoding="utf-8") as fh:
        scaler = Scaler.from_json(fh.read())
    return Run(run_dir, experiment, load_checkpoint(os.path.join(run_dir, CHECKPOINTS)), scaler)
