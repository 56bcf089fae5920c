"""A run directory read back, and checked to hang together, as a ``Model`` to use.

``config.toml`` and ``scaler.json`` are plain files anyone can edit or copy; the newest
checkpoint is sealed and records the experiment it was trained by. So both files are
checked against the checkpoint before use: an edited seed or test size would otherwise
report metrics on another split as the model's, and a scaler of another run would
standardise with the wrong numbers. ``purenet evaluate``, ``purenet predict`` and
``pn.load_run`` all go through ``read_run``.
"""

from __future__ import annotations

import os

import attrs
import numpy as np

from purenet.core.records import Params
from purenet.core.validate import check_x
from purenet.errors import RunDirectoryError
from purenet.experiment.config import Experiment, load_experiment
from purenet.experiment.rundir import (CHECKPOINTS, CONFIG, SCALER, check_written,
                                       config_mismatches, read_run_file, read_run_text)
from purenet.experiment.scaler import Scaler
from purenet.train.config import comparable, differences
from purenet.train.fingerprint import fingerprint
from purenet.model import Model



@attrs.frozen(eq=False)
class Run:
    """A run directory read back: its experiment, newest valid checkpoint and scaler,
    checked against each other."""

    run_dir: str
    experiment: Experiment
    checkpoint: object          # purenet.checkpoint.format.Checkpoint
    scaler: Scaler

    @property
    def params(self) -> Params:
        return self.checkpoint.state.params

    def model(self) -> Model:
        """The run's network with its scaler: predicts from raw features, as in its data
        file, and (regression) answers in the target's own units."""
        return Model(self.params, self.experiment.loss, scaler=self.scaler,
                     feature_names=self.scaler.feature_names)


def read_scaler(run_dir: str) -> tuple[Scaler, str]:
    """The run's ``scaler.json`` (bounded and checked) and its text, whose digest the caller
    checks once the more telling checks are done (``rundir.check_written``)."""
    path = os.path.join(run_dir, SCALER)
    try:
        text = read_run_text(run_dir, SCALER)
    except FileNotFoundError:
        raise RunDirectoryError(f"{path} is missing; the run directory is incomplete (train "
                                "the run again to rewrite it)") from None
    return Scaler.from_json(text, path), text


def read_run(run_dir: str | os.PathLike) -> Run:
    """Read ``run_dir``: ``config.toml``, ``scaler.json`` and the newest valid checkpoint,
    and check that the two files belong to the checkpoint's run.

    Raises:
        RunDirectoryError: not a run directory, or files that do not match the checkpoint
            (each difference listed).
        ExperimentError, ValueError, CheckpointError: a file that cannot be read.
    """
    run_dir = os.fspath(run_dir)
    if not os.path.isdir(run_dir):
        raise RunDirectoryError(f"no run directory at {run_dir}")
    config = os.path.join(run_dir, CONFIG)
    if not os.path.isfile(config):
        raise RunDirectoryError(f"{run_dir} is not a run directory (it has no {CONFIG}); "
                                "make one with `purenet train CONFIG.toml`")
    from purenet.checkpoint.policy import load_checkpoint

    # The checkpoint first: it says which registered pieces the run needs, and refuses
    # in one line when one is missing, before config.toml names it as unknown.
    checkpoint = load_checkpoint(os.path.join(run_dir, CHECKPOINTS))
    experiment = load_experiment(config)
    scaler, scaler_text = read_scaler(run_dir)
    problems = differences(comparable(experiment.run), comparable(checkpoint.config),
                           CONFIG + ": {key} is {expected!r}, the checkpoint's {found!r}")
    if checkpoint.experiment is not None and not problems:
        problems = config_mismatches(experiment.resolved_config(), checkpoint.experiment,
                                     CONFIG + ": {key} is {expected!r}, the checkpoint's "
                                     "{found!r}")
    arch, data = checkpoint.state.params.architecture, experiment.data
    problems += [f"{SCALER}: {line}" for line in scaler.mismatches(
        arch.input_dim, arch.output_dim, data.standardize, data.standardize_target)]
    if problems:
        raise RunDirectoryError(
            f"the files of {run_dir} do not belong to the run of its checkpoint "
            f"{os.path.basename(checkpoint.path)}:\n  " + "\n  ".join(problems)
            + "\nwere they edited or copied from another run? Restore them, or train again")
    # An edit the comparisons cannot see (other numbers in the scaler, a comment): the
    # digests purenet recorded when it wrote the files.
    check_written(run_dir, SCALER, scaler_text)
    read_run_file(run_dir, CONFIG)
    return Run(run_dir, experiment, checkpoint, scaler)


def check_training_data(run: Run, x_train: np.ndarray) -> None:
    """Refuse when the training features, rebuilt from the data and scaled by
    ``scaler.json``, are not those the checkpoint's fingerprint records: the data file
    changed since the run, or ``scaler.json`` is not the run's. (Checkpoints without a
    fingerprint, format 1, are taken as they are.)"""
    recorded = (run.checkpoint.data or {}).get("x")
    if recorded is None:
        return
    arch, dtype = run.params.architecture, run.checkpoint.config.np_dtype
    found = fingerprint({"x": check_x(run.scaler.transform_x(x_train), arch, dtype)})["x"]
    if found != recorded:
        source = run.experiment.data.path or run.experiment.data.source
        raise RunDirectoryError(
            f"the training data of {run.run_dir} is not what its checkpoint was trained on "
            f"(features {found['shape']} with digest {found['xxh3_128'][:12]}, the checkpoint "
            f"recorded {recorded.get('shape')} {str(recorded.get('xxh3_128'))[:12]}): "
            f"{source} changed since, or {SCALER} is not the run's; metrics on it would not "
            "be the run's")


def load_run(run_dir: str | os.PathLike) -> Model:
    """The trained network of a run directory (``purenet train``'s), ready to use.

    It applies the run's standardisation to inputs and, for a regression, gives values
    in the target's units::

        model = pn.load_run("runs/moons")
        model.predict([[0.5, -0.2]])          # class labels, e.g. array([1])
        model.predict_proba([[0.5, -0.2]])    # (1, 2): P(class 0), P(class 1)
        model.evaluate(x, y)                  # {'loss': ..., 'accuracy': ...}

    Raises:
        RunDirectoryError: not a run directory, or files that do not match the run's
            checkpoint. CheckpointError: no valid checkpoint.
    """
    return read_run(run_dir).model()
