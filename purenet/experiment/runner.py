"""Running an experiment in a run directory (``purenet.experiment.rundir``): data, training, metrics.

The data split is rebuilt from the resolved config and its seed, so a resumed run,
``purenet evaluate`` and ``purenet plot`` see exactly the data the run was trained on.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from typing import Any, Callable

import attrs
import numpy as np

from purenet.errors import MissingColumnError
from purenet.experiment.datasets import Splits, declared_rows, split
from purenet.experiment.scaler import Scaler
from purenet.experiment.config import Experiment
from purenet.model import Model
from purenet.core.records import Params, params_digest
from purenet.experiment import limits
from purenet.experiment.rundir import (CHECKPOINTS, CONFIG, HISTORY, SCALER, SUMMARY,
                                       check_run_dir, claim, clear_run,
                                       default_run_dir,
                                       history_csv, resolve, shown, write_marker,
                                       write_run_file)
from purenet.checkpoint.lock import LOCK_NAME
from purenet.experiment.digests import DigestLog
from purenet.experiment.schema import dump_toml
from purenet.train.callbacks import Callback, EpochLog, ProgressBar
from purenet.train.loop import fit


# --- data -----------------------------------------------------------------------------


def prepare_data(experiment: Experiment) -> Splits:
    """The experiment's data, split and with its scaler; checked against the network."""
    data = experiment.data
    try:
        splits = split(data, experiment.run.seed, experiment.loss)
    except MissingColumnError as error:
        raise experiment.error("data.target", str(error)) from None
    except (ValueError, TypeError, OSError) as error:
        key = "data.path" if data.path else ("data.args" if data.args else "data.source")
        # scikit-learn names the argument: "The 'noise' parameter of make_moons must be ..."
        named = re.match(r"The '(\w+)' parameter", str(error))
        if named and named.group(1) in data.args:
            key = f"data.args.{named.group(1)}"
        raise experiment.error(key, f"could not load the data: {error}") from None
    _check_shapes(experiment, splits)
    return splits


def _check_shapes(experiment: Experiment, splits: Splits) -> None:
    arch, n_features = experiment.architecture, splits.x_train.shape[1]
    what = experiment.data.source or os.path.basename(experiment.data.path)
    if arch.input_dim != n_features:
        raise experiment.error("layers[0].input_dim", f"is {arch.input_dim} but the data "
                               f"({what}) has {n_features} features")
    last = f"layers[{len(arch.layers) - 1}].output_dim"
    ys = [y for y in (splits.y_train, splits.y_val, splits.y_test) if y is not None]
    if experiment.loss == "categorical_crossentropy" and splits.y_train.ndim == 1:
        n_classes = int(max(np.max(y) for y in ys)) + 1
        if n_classes > arch.output_dim:
            raise experiment.error(last, f"is {arch.output_dim} but the data ({what}) has "
                                   f"{n_classes} classes; a softmax output needs one unit each")
    elif splits.y_train.ndim > 1 and splits.y_train.shape[1] != arch.output_dim:
        raise experiment.error(last, f"is {arch.output_dim} but the data ({what}) has "
                               f"{splits.y_train.shape[1]} target columns")


def measure(model: Model, x: np.ndarray, y: np.ndarray, prefix: str = "") -> dict[str, float]:
    """Loss and accuracy (classifiers) or loss, MSE, MAE, R^2 and the target's variance in
    the data's own units (regression) of ``model`` (``Run.model()``) on raw ``(x, y)``."""
    if model.task == "multiclass" and np.ndim(y) == 2:
        y = np.asarray(y).argmax(axis=1)    # one-hot rows -> the class ids predict gives
    result = model.evaluate(x, y)
    out = {f"{prefix}{name}": value for name, value in result.items()}
    if model.is_classifier:
        return out
    y_hat = np.asarray(model.predict(x), np.float64)
    y = np.asarray(y, np.float64).reshape(y_hat.shape)
    variance = float(np.mean((y - y.mean(axis=0)) ** 2))   # the MSE of predicting the mean
    mse = float(np.mean((y_hat - y) ** 2))
    out.update({f"{prefix}mse": mse, f"{prefix}mae": float(np.mean(np.abs(y_hat - y))),
                f"{prefix}r2": 1 - mse / variance if variance else math.nan,
                f"{prefix}variance": variance})
    return out


def _json_safe(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


# --- running ------------------------------------------------------------------------


def run_experiment(experiment: Experiment, run_dir: str | os.PathLike | None = None,
                   resume: bool = False, force: bool = False, epochs: int | None = None,
                   seed: int | None = None, checkpoint_every: int | None = None,
                   progress: bool | None = None,
                   announce: Callable[[str], Any] = lambda line: None) -> dict[str, Any]:
    """Train ``experiment`` in ``run_dir`` (default ``runs/<name>``) and write its outputs.

    Args:
        experiment: from ``load_experiment``.
        run_dir: the run directory (created if missing).
        resume: continue the run in ``run_dir`` from its newest valid checkpoint (a fresh
            start when it has none, which ``announce`` says); its config must match, but
            for epochs and checkpoints.
        force: delete the run already in ``run_dir`` (only one purenet made: it holds the
            marker) and start again; the old run is deleted once training really starts.
        epochs, seed, checkpoint_every: override ``epochs``, ``seed`` and
            ``checkpoint.every_steps`` (which then replaces ``every_epochs``).
        progress: show a progress bar (None: when stderr is a terminal); without one, a
            line per epoch goes to stderr.
        announce: called with one line saying what starts (training, resuming, or
            nothing to resume: training from the start) once the directory is claimed.

    Returns:
        The summary (also written to ``summary.json``).

    Raises:
        ExperimentError, RunDirectoryError: before anything is written (but the lock file
            in ``run_dir/checkpoints``).
        CheckpointLockedError: another trainer is using ``run_dir``.
        TrainingInterrupted: SIGINT/SIGTERM; the newest state is checkpointed.
    """
    experiment = experiment.with_settings(
        **{"epochs": epochs, "seed": seed, "checkpoint.every_steps": checkpoint_every})
    if checkpoint_every is not None:   # "every N steps", not "and at every epoch end"
        experiment = attrs.evolve(experiment, checkpoint=attrs.evolve(
            experiment.checkpoint, every_epochs=None))
    run_dir = resolve(run_dir if run_dir is not None else default_run_dir(experiment))
    _refuse_if_in_use(run_dir)   # at once: before the data, the memory estimate, any import
    check_run_dir(run_dir)
    check_memory(experiment)
    config = experiment.resolved_config()
    claim(run_dir, config, resume, force)   # read only: a refused directory is untouched
    created = [path for path in (run_dir, os.path.join(run_dir, CHECKPOINTS),
                                 os.path.join(run_dir, CHECKPOINTS, LOCK_NAME))
               if not os.path.lexists(path)]
    checkpointer = _checkpointer(experiment, run_dir, config)
    # The checkpoint directory's lock (the one fit keeps), taken before anything is written:
    # a second trainer is refused at once. on_fit_end releases it, however the run ends.
    checkpointer.start()
    files = None
    try:
        clear = claim(run_dir, config, resume, force)   # again, now that it is ours
        splits = prepare_data(experiment)
        files = RunFiles(run_dir, experiment, config, splits.scaler, clear,
                         lambda state: announce(_start_line(experiment, run_dir, resume, state)))
        return _train(experiment, run_dir, splits, checkpointer, resume, files, progress)
    except BaseException as error:
        checkpointer.on_fit_end(None, error)   # a no-op but for the lock after fit's own
        if files is None or not files.started:   # nothing trained: leave nothing behind
            if created and created[-1].endswith(LOCK_NAME):
                checkpointer.forget_lock()
            for path in reversed(created):
                try:
                    os.rmdir(path)   # a directory this run made, only when empty
                except OSError:
                    pass
        raise


def _refuse_if_in_use(run_dir: str) -> None:
    """Raise ``CheckpointLockedError`` when a trainer holds the run's lock (a lock file that
    exists already, so nothing is created in a directory that is not purenet's)."""
    from purenet.checkpoint.lock import LOCK_NAME, DirectoryLock

    if os.path.isfile(os.path.join(run_dir, CHECKPOINTS, LOCK_NAME)):
        lock = DirectoryLock(os.path.join(run_dir, CHECKPOINTS))
        lock.acquire()
        lock.release()


def _checkpointer(experiment: Experiment, run_dir: str, config: dict[str, Any]) -> Any:
    from purenet.checkpoint.policy import Checkpointer

    return Checkpointer(os.path.join(run_dir, CHECKPOINTS), options=experiment.checkpoint,
                        experiment=config)


def _start_line(experiment: Experiment, run_dir: str, resume: bool, state: Any) -> str:
    where = shown(run_dir)
    if not resume:
        return f"training {experiment.name!r} in {where}"
    if state.step == 0:
        return (f"no checkpoint to resume from in {where}: training {experiment.name!r} "
                "from the start")
    if state.epoch >= experiment.run.epochs or state.stopped:
        why = ("early stopping ended it" if state.stopped else
               f"epochs = {experiment.run.epochs} is no more than that")
        return (f"resuming {experiment.name!r} in {where}: it is at epoch {state.epoch} "
                f"already and {why}, so nothing is trained (raise --epochs to go on)")
    return f"resuming {experiment.name!r} in {where}"


def _train(experiment: Experiment, run_dir: str, splits: Splits, checkpointer: Any,
           resume: bool, files: "RunFiles", progress: bool | None) -> dict[str, Any]:
    x, y, validation = fit_arrays(experiment, splits)
    start = time.perf_counter()
    bar = ProgressBar.wanted(progress)
    result = fit(experiment.run, x, y, validation_data=validation, checkpointer=checkpointer,
                 resume=resume, progress=bar,
                 callbacks=(files, DigestLog(run_dir), *(() if bar else (EpochLog(),))))
    seconds = time.perf_counter() - start
    summary = summarize_run(experiment, result.state.params, splits, shown(run_dir))
    summary.update(step=result.state.step, epoch=result.state.epoch,
                   stopped_early=result.state.stopped, seconds=round(seconds, 3))
    write_run_file(run_dir, HISTORY, history_csv(result.history))
    write_run_file(run_dir, SUMMARY, json.dumps(summary, indent=2) + "\n")
    return summary


class RunFiles(Callback):
    """Writes the run's own files once training really starts (``fit`` has checked the
    data and, on resume, the checkpoint): a run that fails before leaves nothing that
    would later need ``--force``. With ``clear``, the old run goes first (``--force``)."""

    def __init__(self, run_dir: str, experiment: Experiment, config: dict[str, Any],
                 scaler: Scaler, clear: bool, announce: Callable[[Any], Any]) -> None:
        self.run_dir, self.experiment, self.config = run_dir, experiment, config
        self.scaler, self.clear, self.announce = scaler, clear, announce
        self.started = False

    def on_fit_start(self, state: Any, config: Any, total_steps: int, data: Any) -> None:
        self.started = True
        self.announce(state)   # what starts, said only once it does
        if self.clear:
            clear_run(self.run_dir)
        write_marker(self.run_dir)
        write_run_file(self.run_dir, CONFIG,
                       f"# the resolved experiment {self.experiment.name!r} (from "
                       f"{self.experiment.path}); load it with purenet.load_experiment\n"
                       + dump_toml(self.config) + "\n")
        write_run_file(self.run_dir, SCALER, self.scaler.to_json())


def check_memory(experiment: Experiment) -> None:
    """Refuse, before any allocation, a run whose parameters and data would not fit in the
    memory available; the error names the setting that weighs most."""
    arch = experiment.architecture
    try:
        rows = declared_rows(experiment.data, arch.input_dim + arch.output_dim)
    except (ValueError, OSError) as error:
        raise experiment.error(_data_key(experiment), str(error)) from None
    parts = limits.training_memory(experiment.run, rows, arch.input_dim)
    problem = limits.memory_problem(parts, limits.available_memory())
    if problem is None:
        return
    heaviest = max(parts, key=parts.__getitem__)
    widths = sum(l.output_dim for l in arch.layers)
    # Activations grow with samples x widths: name whichever factor is the larger.
    if heaviest == "data" or (heaviest == "activations" and rows > widths):
        raise experiment.error(_data_key(experiment), problem)
    # Parameters grow with a layer's matrix, activations with its width.
    sizes = [l.input_dim * l.output_dim if heaviest == "params" else l.output_dim
             for l in arch.layers]
    raise experiment.error(f"layers[{sizes.index(max(sizes))}].output_dim", problem)


def _data_key(experiment: Experiment) -> str:
    data = experiment.data
    if data.path:
        return "data.path"
    return "data.args.n_samples" if "n_samples" in data.args else "data.source"


def fit_arrays(experiment: Experiment, splits: Splits | None = None) -> tuple[Any, Any, Any]:
    """``(x, y, validation_data)`` as ``fit`` gets them: standardised by the run's scaler;
    from ``splits``, or from the experiment's data split afresh (a replay of the run)."""
    splits = prepare_data(experiment) if splits is None else splits
    scaler = splits.scaler
    validation = None
    if splits.x_val is not None:
        validation = (scaler.transform_x(splits.x_val), _target(experiment, scaler, splits.y_val))
    return (scaler.transform_x(splits.x_train), _target(experiment, scaler, splits.y_train),
            validation)


def _target(experiment: Experiment, scaler: Scaler, y: np.ndarray) -> np.ndarray:
    return y if experiment.classifier else scaler.transform_y(np.asarray(y, np.float64))


def summarize_run(experiment: Experiment, params: Params, splits: Splits,
                  run_dir: str) -> dict[str, Any]:
    """The final metrics of ``params`` on each part of the data."""
    summary: dict[str, Any] = {"name": experiment.name, "run_dir": run_dir,
                               "task": "classification" if experiment.classifier
                               else "regression"}
    parts = (("train_", splits.x_train, splits.y_train), ("val_", splits.x_val, splits.y_val),
             ("test_", splits.x_test, splits.y_test))
    model = Model(params, experiment.loss, scaler=splits.scaler)
    for prefix, x, y in parts:
        if x is not None:
            summary.update(measure(model, x, y, prefix))
        else:
            summary[f"{prefix}loss"] = None
    summary["params_digest"] = params_digest(params)
    return {k: _json_safe(v) for k, v in summary.items()}
