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
from typing import Any

import attrs
import numpy as np

from purenet.errors import MissingColumnError
from purenet.experiment.datasets import Scaler, Splits, split
from purenet.experiment.config import Experiment
from purenet.train.metrics import evaluate
from purenet.core.network import predict
from purenet.core.records import Params, params_digest
from purenet.experiment.rundir import (CHECKPOINTS, CONFIG, HISTORY, SCALER, SUMMARY, claim,
                            default_run_dir, history_csv, write_atomic)
from purenet.experiment.schema import dump_toml
from purenet.train.callbacks import EpochLog, ProgressBar
from purenet.train.loop import fit


# --- data -----------------------------------------------------------------------------


def prepare_data(experiment: Experiment) -> Splits:
    """The experiment's data, split and with its scaler; checked against the network."""
    data = experiment.data
    try:
        splits = split(data, experiment.run.seed, experiment.classifier)
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


def measure(experiment: Experiment, params: Params, scaler: Scaler, x: np.ndarray,
            y: np.ndarray, prefix: str = "") -> dict[str, float]:
    """Loss and accuracy (classifiers) or loss, MSE, MAE, R^2 and the target's variance in
    the data's own units (regression) of ``params`` on raw ``(x, y)``."""
    xs = scaler.transform_x(x)
    result = evaluate(params, xs, _target(experiment, scaler, y), loss=experiment.loss)
    out = {f"{prefix}loss": result["loss"]}
    if experiment.classifier:
        out[f"{prefix}accuracy"] = result["accuracy"]
        return out
    y_hat = scaler.inverse_y(np.asarray(predict(params, xs), np.float64))
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
                   progress: bool | None = None) -> dict[str, Any]:
    """Train ``experiment`` in ``run_dir`` (default ``runs/<name>``) and write its outputs.

    Args:
        experiment: from ``load_experiment``.
        run_dir: the run directory (created if missing).
        resume: continue the run in ``run_dir`` from its newest valid checkpoint (a fresh
            start when it has none); its config must match, but for epochs and checkpoints.
        force: delete the run already in ``run_dir`` and start again.
        epochs, seed, checkpoint_every: override ``epochs``, ``seed`` and
            ``checkpoint.every_steps`` (which then replaces ``every_epochs``).
        progress: show a progress bar (None: when stderr is a terminal); without one, a
            line per epoch goes to stderr.

    Returns:
        The summary (also written to ``summary.json``).

    Raises:
        ExperimentError, RunDirectoryError: before anything is written.
        TrainingInterrupted: SIGINT/SIGTERM; the newest state is checkpointed.
    """
    experiment = experiment.with_settings(
        **{"epochs": epochs, "seed": seed, "checkpoint.every_steps": checkpoint_every})
    if checkpoint_every is not None:   # "every N steps", not "and at every epoch end"
        experiment = attrs.evolve(experiment, checkpoint=attrs.evolve(
            experiment.checkpoint, every_epochs=None))
    run_dir = os.fspath(run_dir) if run_dir is not None else default_run_dir(experiment)
    splits = prepare_data(experiment)
    config = experiment.resolved_config()
    claim(run_dir, config, resume, force)
    os.makedirs(run_dir, exist_ok=True)
    write_atomic(os.path.join(run_dir, CONFIG),
                 f"# the resolved experiment {experiment.name!r} (from "
                 f"{experiment.path}); load it with purenet.load_experiment\n"
                 + dump_toml(config) + "\n")
    write_atomic(os.path.join(run_dir, SCALER), splits.scaler.to_json())

    from purenet.checkpoint.policy import Checkpointer

    policy = experiment.checkpoint
    checkpointer = Checkpointer(os.path.join(run_dir, CHECKPOINTS), policy.every_steps,
                                policy.every_epochs, policy.keep, policy.keep_best,
                                policy.monitor, experiment=config)
    x, y, validation = fit_arrays(experiment, splits)
    start = time.perf_counter()
    bar = ProgressBar.wanted(progress)
    result = fit(experiment.run, x, y, validation_data=validation, checkpointer=checkpointer,
                 resume=resume, progress=bar, callbacks=() if bar else (EpochLog(),))
    seconds = time.perf_counter() - start
    summary = summarize_run(experiment, result.state.params, splits, run_dir)
    summary.update(step=result.state.step, epoch=result.state.epoch,
                   stopped_early=result.state.stopped, seconds=round(seconds, 3))
    write_atomic(os.path.join(run_dir, HISTORY), history_csv(result.history))
    write_atomic(os.path.join(run_dir, SUMMARY), json.dumps(summary, indent=2) + "\n")
    return summary


def fit_arrays(experiment: Experiment, splits: Splits) -> tuple[Any, Any, Any]:
    """``(x, y, validation_data)`` as ``fit`` gets them: standardised by the run's scaler."""
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
    for prefix, x, y in parts:
        if x is not None:
            summary.update(measure(experiment, params, splits.scaler, x, y, prefix))
        else:
            summary[f"{prefix}loss"] = None
    summary["params_digest"] = params_digest(params)
    return {k: _json_safe(v) for k, v in summary.items()}
