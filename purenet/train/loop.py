"""The ``fit`` loop around the pure ``train_step``.

``fit`` validates everything once, then walks ``(epoch, batch)`` in the deterministic order
of ``purenet.train.data``; each step is ``train_step``, a pure function of the state and a batch.
A state taken after any step, passed back as ``initial_state`` (or restored from a
checkpoint), continues to the same parameters bit for bit.
"""

from __future__ import annotations

import math
import signal
import sys
from typing import Any, Sequence

import attrs
import numpy as np

from purenet.core.losses import CLASSIFICATION_LOSSES, resolve_loss
from purenet.core.network import init_params
from purenet.core.records import Architecture, Params, as_architecture, check_dtype
from purenet.core.rng import check_seed
from purenet.core.validate import check_targets, check_x
from purenet.errors import NonFiniteError, TrainingInterrupted
from purenet.optim.optimizers import Optimizer, adam
from purenet.train.data import (batch_indices, batches_per_epoch, check_batch_size, epoch_order,
                                gather)
from purenet.train.interrupts import DeferredInterrupts
from purenet.train.metrics import evaluate_unchecked
from purenet.train.state import EarlyStopping, EpochTotals, FitResult, TrainState
from purenet.train.config import RunConfig
from purenet.train.step import StepMetrics, train_step_unchecked

Array = np.ndarray


# --- the loop -------------------------------------------------------------------------


class Callback:
    """Hooks ``fit`` calls with the state; override either. Callbacks observe, they do not
    change the state (it is immutable)."""

    def on_step_end(self, state: TrainState, metrics: StepMetrics) -> None:
        """After every optimizer step."""

    def on_epoch_end(self, state: TrainState) -> None:
        """After every epoch, once its history row is in ``state.history``."""


@attrs.frozen(eq=False)
class _Data:
    """The training and validation arrays, validated once per fit."""

    x: Array
    y: Array
    x_val: Array | None
    y_val: Array | None
    batch_size: int
    n_batches: int
    full_batch: bool


def initial_state_for(spec: RunConfig) -> TrainState:
    """The state before the first step of a run described by ``spec``."""
    params = init_params(spec.architecture, spec.seed, spec.init, spec.dtype)
    early = None if spec.early_stopping is None else spec.early_stopping.initial()
    return TrainState(step=0, epoch=0, batch_index=0, seed=spec.seed, params=params,
                      opt_state=spec.optimizer.init(params), early_stopping=early)


def _end_epoch(state: TrainState, spec: RunConfig, data: _Data) -> TrainState:
    """Close the epoch: its history row, early stopping, counters moved to the next."""
    totals = state.totals
    classifier = spec.loss in CLASSIFICATION_LOSSES
    row = {"epoch": state.epoch + 1, "train_loss": totals.loss_sum / totals.samples,
           "train_accuracy": totals.correct / totals.samples if classifier else math.nan,
           "val_loss": math.nan, "val_accuracy": math.nan}
    if data.x_val is not None:
        row["val_loss"], row["val_accuracy"] = evaluate_unchecked(
            state.params, data.x_val, data.y_val, spec.loss, spec.l2)
    early, stopped, params = state.early_stopping, False, state.params
    if spec.early_stopping is not None:
        early, stopped = _early_stopping(spec.early_stopping, early, row[spec.early_stopping.monitor],
                                         state.epoch, params)
        if stopped and spec.early_stopping.restore_best and early.best_params is not None:
            params = early.best_params
    return attrs.evolve(state, epoch=state.epoch + 1, batch_index=0, totals=EpochTotals(),
                        history=state.history.append(**row), early_stopping=early,
                        stopped=stopped, params=params)


def _early_stopping(config: EarlyStopping, early, value: float, epoch: int, params: Params):
    if config.improved(value, early.best):
        best_params = params if config.restore_best else None
        return attrs.evolve(early, best=value, best_epoch=epoch, wait=0,
                            best_params=best_params), False
    early = attrs.evolve(early, wait=early.wait + 1)
    return early, early.wait >= config.patience


def _progress_bar(progress: bool | None, total: int, initial: int):
    if progress is None:
        progress = sys.stderr.isatty()
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, leave=True)


def _batch(state: TrainState, data: _Data, order: Array) -> tuple[Array, Array]:
    if data.full_batch:
        return data.x, data.y    # no gather, no copy
    idx = batch_indices(order, state.batch_index, data.batch_size)
    return gather(data.x, idx), gather(data.y, idx)


def _run(state: TrainState, spec: RunConfig, data: _Data, limit: int, epochs: int,
         callbacks: Sequence[Callback], checkpointer: Any, bar: Any) -> TrainState:
    order, order_epoch = None, None
    # Overflow inside a diverging step is reported by the non-finite guard, by step and
    # layer, rather than as numpy warnings.
    with DeferredInterrupts() as interrupts, np.errstate(over="ignore", invalid="ignore",
                                                         divide="ignore"):
        while state.epoch < epochs and not state.stopped and state.step < limit:
            if order_epoch != state.epoch:
                order = epoch_order(state.seed, state.epoch, len(data.x),
                                    spec.shuffle and not data.full_batch)
                order_epoch = state.epoch
            try:
                state, metrics = train_step_unchecked(state, *_batch(state, data, order), spec)
            except NonFiniteError:
                if checkpointer is not None:
                    checkpointer.finish(state, spec)   # the last good step, if not saved yet
                raise
            epoch_done = state.batch_index == data.n_batches
            if epoch_done:
                state = _end_epoch(state, spec, data)
            for callback in callbacks:
                callback.on_step_end(state, metrics)
                if epoch_done:
                    callback.on_epoch_end(state)
            if checkpointer is not None:
                checkpointer.after_step(state, spec, epoch_done)
            if bar is not None:
                bar.update(1)
                if epoch_done or state.step % 20 == 0:
                    bar.set_postfix(epoch=state.epoch, loss=f"{metrics.loss:.4g}", refresh=False)
            if interrupts.received is not None:
                _interrupted(state, spec, checkpointer, interrupts.received)
    return state


def _interrupted(state: TrainState, spec: RunConfig, checkpointer: Any, number: int) -> None:
    name = signal.Signals(number).name
    if checkpointer is None:
        how = "pass the exception's .state as initial_state= to fit to continue"
    else:
        checkpointer.finish(state, spec)
        how = (f"checkpoint of step {state.step} is in {checkpointer.directory}; run fit again "
               "with the same checkpointer and resume=True to continue")
    raise TrainingInterrupted(f"{name} received: stopped after step {state.step}; {how}",
                              state, number)


def _validated_data(spec: RunConfig, x: Any, y: Any, validation_data: Any) -> _Data:
    arch, dtype = spec.architecture, spec.dtype
    x = check_x(x, arch, dtype)
    y = check_targets(y, len(x), spec.loss, arch, dtype)
    x_val = y_val = None
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise TypeError("validation_data must be a pair (x_val, y_val)")
        x_val = check_x(validation_data[0], arch, dtype)
        y_val = check_targets(validation_data[1], len(x_val), spec.loss, arch, dtype)
    batch_size = check_batch_size(spec.batch_size, len(x))
    return _Data(x, y, x_val, y_val, batch_size,
                 batches_per_epoch(len(x), batch_size, spec.drop_last), batch_size >= len(x))


def _check_count(name: str, value: Any, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be an int >= 0{' or None' if allow_none else ''}, "
                         f"got {value!r}")


def check_resumable(state: TrainState, spec: RunConfig) -> None:
    """Refuse a state that does not belong to the run ``spec`` describes, listing every
    difference."""
    problems = []
    if state.seed != spec.seed:
        problems.append(f"seed: this run has {spec.seed}, the state {state.seed}")
    if state.params.architecture != spec.architecture:
        problems.append(f"architecture: this run has {spec.architecture.to_dicts()}, the state "
                        f"{state.params.architecture.to_dicts()}")
    if state.params.dtype != spec.dtype:
        problems.append(f"dtype: this run has {spec.dtype}, the state {state.params.dtype}")
    template = spec.optimizer.init(state.params)
    if type(template) is not type(state.opt_state):
        problems.append(f"optimizer state: this run's optimizer ({spec.optimizer.name}) keeps "
                        f"{type(template).__name__}, the state holds "
                        f"{type(state.opt_state).__name__}")
    if (spec.early_stopping is None) != (state.early_stopping is None):
        problems.append("early_stopping: on in one, off in the other")
    if problems:
        raise ValueError("initial_state does not match this run:\n  " + "\n  ".join(problems))


def fit(architecture: Architecture | Sequence[dict], x: Any, y: Any,
        optimizer: Optimizer | None = None, epochs: int = 10, batch_size: int | None = 64,
        seed: int = 0, dtype: Any = "float32", loss: str | None = None,
        validation_data: tuple[Any, Any] | None = None, checkpointer: Any = None,
        resume: bool = False, initial_state: TrainState | None = None,
        max_steps: int | None = None, callbacks: Sequence[Callback] = (),
        progress: bool | None = None, *, init: str = "he_normal", l2: float = 0.0,
        shuffle: bool = True, drop_last: bool = False,
        early_stopping: EarlyStopping | None = None) -> FitResult:
    """Train a network from scratch, from ``initial_state``, or from a checkpoint.

    Args:
        architecture: an Architecture or the tutorial's list of layer dicts.
        x: (n_samples, n_features) training inputs.
        y: training targets (class ids, 0/1 labels, one-hot rows or regression values).
        optimizer: from ``purenet.optim.optimizers``; default ``adam(1e-3)``.
        epochs: the number of epochs the whole run lasts (not "more epochs").
        batch_size: samples per step; None for the full batch.
        seed: decides the initial parameters, the data order and the dropout masks.
        dtype: "float32" or "float64", for parameters and computation.
        loss: a loss name; None infers it from the output activation.
        validation_data: ``(x_val, y_val)``, evaluated after every epoch.
        checkpointer: a ``purenet.Checkpointer`` that saves as it is told to.
        resume: continue from the checkpointer's newest valid checkpoint, if any.
        initial_state: a ``TrainState`` to continue from (e.g. ``result.state``).
        max_steps: stop once ``state.step`` reaches this (the run can be continued).
        callbacks: ``Callback`` objects told of every step and epoch.
        progress: show a tqdm bar; None shows it when stderr is a terminal.
        init: the initializer name for fresh parameters.
        l2: L2 penalty coefficient on the weights (see ``network.l2_penalty``).
        shuffle: visit samples in a new order each epoch.
        drop_last: skip the last, partial batch of each epoch.
        early_stopping: an ``EarlyStopping`` config, or None.

    Returns:
        ``FitResult(state, history)``.

    Raises:
        NonFiniteError: the loss, a gradient or a parameter went NaN/inf (the state before
            is kept, and checkpointed when there is a checkpointer).
        TrainingInterrupted: SIGINT/SIGTERM arrived; the last full step is in ``.state``.
    """
    arch = as_architecture(architecture)
    if optimizer is None:
        optimizer = adam()
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must come from purenet.optim.optimizers, got {type(optimizer).__name__}")
    _check_count("epochs", epochs)
    _check_count("max_steps", max_steps, allow_none=True)
    spec = RunConfig(arch, optimizer, resolve_loss(loss, arch.output_activation),
                   check_dtype(dtype), check_seed(seed), batch_size, init, float(l2),
                   bool(shuffle), bool(drop_last), early_stopping)
    data = _validated_data(spec, x, y, validation_data)
    if early_stopping is not None and early_stopping.monitor.startswith("val_") \
            and data.x_val is None:
        raise ValueError(f"early stopping monitors {early_stopping.monitor!r} but no "
                         "validation_data was given; pass it or monitor 'train_loss'")
    if initial_state is not None and resume:
        raise ValueError("pass either initial_state or resume=True, not both")
    state = initial_state
    if checkpointer is not None:
        if resume:
            state = checkpointer.restore(spec)   # checks the run before anything changes
        checkpointer.start()
    if state is None:
        state = initial_state_for(spec)
    else:
        check_resumable(state, spec)
    limit = epochs * data.n_batches if max_steps is None else min(max_steps, epochs * data.n_batches)
    bar = _progress_bar(progress, limit, min(state.step, limit))
    try:
        state = _run(state, spec, data, limit, epochs, tuple(callbacks), checkpointer, bar)
    finally:
        if bar is not None:
            bar.close()
    if checkpointer is not None:
        checkpointer.finish(state, spec)
    return FitResult(state, state.history)
