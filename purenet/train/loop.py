"""The ``fit`` loop around the pure training step.

``fit`` validates the data once, then walks ``(epoch, batch)`` in the deterministic order of
``purenet.train.data``; each step is a pure function of the state and a batch. A state taken
after any step, passed back as ``initial_state`` (or restored from a checkpoint), continues
to the same parameters bit for bit. The loop knows callbacks and interrupts only.
"""

from __future__ import annotations

import contextlib
import math
import signal
from typing import Any, Iterator, Sequence

import attrs
import numpy as np

from purenet.core import checks
from purenet.core.losses import normalised_weights, target_kind
from purenet.core.network import init_params
from purenet.core.records import Architecture, Dense, Params
from purenet.core.validate import check_targets, check_x
from purenet.errors import SettingError, TrainingInterrupted
from purenet.train.callbacks import Callback, Checkpointing, ProgressBar
from purenet.train.config import RunConfig
from purenet.train.fingerprint import Fingerprint, fingerprint
from purenet.train.data import (batches_per_epoch, check_batch_size, epoch_order,
                                progress_problems)
from purenet.train.engine import StepEngine
from purenet.train.interrupts import DeferredInterrupts
from purenet.train.metrics import WATCHED, score
from purenet.train.state import EarlyStopping, EpochTotals, FitResult, TrainState

Array = np.ndarray


@attrs.frozen(eq=False)
class _Data:
    """The training and validation arrays, validated once per fit."""

    x: Array
    y: Array
    weights: Array | None     # per-sample, mean 1 over x (losses.normalised_weights)
    x_val: Array | None
    y_val: Array | None
    batch_size: int
    n_batches: int
    full_batch: bool


def initial_state_for(config: RunConfig) -> TrainState:
    """The state before the first step of the run ``config`` describes."""
    params = init_params(config.architecture, config.seed, config.init, config.dtype)
    early = None if config.early_stopping is None else config.early_stopping.initial()
    return TrainState(step=0, epoch=0, batch_index=0, seed=config.seed, params=params,
                      opt_state=config.optimizer.init(params), early_stopping=early)


def _end_epoch(state: TrainState, config: RunConfig, data: _Data) -> TrainState:
    """Close the epoch: its history row, early stopping, counters moved to the next."""
    totals = state.totals
    row = {"epoch": state.epoch + 1, "train_loss": totals.loss_sum / totals.samples,
           "train_accuracy": totals.correct / totals.samples if config.classifier else math.nan,
           "val_loss": math.nan, "val_accuracy": math.nan}
    watched = None if config.early_stopping is None else config.early_stopping.monitor
    if data.x_val is not None:
        # Some scores are watched, never recorded: the history's columns are the checkpoint's.
        extra = watched if watched in WATCHED else None
        scores = score(state.params, data.x_val, data.y_val, config.loss, config.l2, extra)
        row["val_loss"], row["val_accuracy"] = scores[:2]
        watched_value = scores[2] if extra else None
    early, stopped, params = state.early_stopping, False, state.params
    if config.early_stopping is not None:
        value = row[watched] if watched in row else watched_value
        early, stopped = _early_stopping(config.early_stopping, early, value, state.epoch,
                                         params)
        if stopped and config.early_stopping.restore_best and early.best_params is not None:
            params = early.best_params
    return attrs.evolve(state, epoch=state.epoch + 1, batch_index=0, totals=EpochTotals(),
                        history=state.history.append(**row), early_stopping=early,
                        stopped=stopped or state.stopped, params=params)


def _early_stopping(config: EarlyStopping, early: Any, value: float, epoch: int, params: Any):
    moves, resets = config.judge(value, early.best)
    if moves:
        early = attrs.evolve(early, best=value, best_epoch=epoch,
                             best_params=params if config.restore_best else None)
    early = attrs.evolve(early, wait=0 if resets else early.wait + 1)
    return early, early.wait >= config.patience


def _states(state: TrainState, config: RunConfig, data: _Data, limit: int,
            callbacks: Sequence[Callback], resume_hint: str) -> Iterator[TrainState]:
    """Train from ``state``, yielding every new state before the callbacks hear of it."""
    order, order_epoch = None, None
    shuffled = config.shuffle and not data.full_batch
    engine = StepEngine(config, data.x, data.y, data.weights, data.batch_size, shuffled)
    # Overflow inside a diverging step is reported by the non-finite guard, by step and
    # layer, rather than as numpy warnings.
    with DeferredInterrupts() as interrupts, np.errstate(over="ignore", invalid="ignore",
                                                         divide="ignore"):
        while state.epoch < config.epochs and not state.stopped and state.step < limit:
            if order_epoch != state.epoch:
                order = epoch_order(state.seed, state.epoch, len(data.x), shuffled)
                order_epoch = state.epoch
            state, metrics = engine.step(state, order)
            epoch_done = state.batch_index == data.n_batches
            if epoch_done:
                state = _end_epoch(state, config, data)
            yield state
            for callback in callbacks:
                callback.on_step_end(state, metrics)
                if epoch_done:
                    callback.on_epoch_end(state)
            if interrupts.received is not None:
                name = signal.Signals(interrupts.received).name
                raise TrainingInterrupted(f"{name} received: stopped after step {state.step}; "
                                          f"{resume_hint.format(step=state.step)}", state,
                                          interrupts.received)


def smooth_labels(y: Array, config: RunConfig) -> Array:
    """Targets pulled towards the uniform distribution by ``config.label_smoothing``: each
    of K classes (K = 2 for each sigmoid output) gets ``label_smoothing / K``."""
    if not config.label_smoothing:
        return y
    k = config.architecture.output_dim
    if y.ndim == 1:   # class ids of a softmax output, as one-hot rows
        y = np.eye(k, dtype=config.np_dtype)[y]
    if target_kind(config.loss) == "binary":
        k = 2
    amount = config.label_smoothing
    return y * config.np_dtype.type(1 - amount) + config.np_dtype.type(amount / k)


def _check_memory(config: RunConfig, x: Any) -> None:
    """Refuse, before allocating anything, a run whose estimate (the command line's,
    ``experiment.limits``) exceeds the memory available."""
    from purenet.experiment import limits

    shape = getattr(x, "shape", None)
    rows = shape[0] if shape else len(x)
    parts = limits.training_memory(config, rows, config.architecture.input_dim,
                                   getattr(x, "nnz", None))   # a scipy sparse x: its entries
    problem = limits.memory_problem(parts, limits.available_memory())
    if problem is not None:
        heaviest = max(parts, key=parts.__getitem__)
        raise SettingError("layers" if heaviest == "params" else "x", problem)


def _validated_data(config: RunConfig, x: Any, y: Any, validation_data: Any,
                    sample_weight: Any = None) -> _Data:
    arch, dtype = config.architecture, config.np_dtype
    x = check_x(x, arch, dtype)
    y = smooth_labels(check_targets(y, len(x), config.loss, arch, dtype), config)
    weights = normalised_weights(sample_weight, len(x), dtype)
    x_val = y_val = None
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise TypeError("validation_data must be a pair (x_val, y_val)")
        x_val = check_x(validation_data[0], arch, dtype)
        y_val = check_targets(validation_data[1], len(x_val), config.loss, arch, dtype)
    early = config.early_stopping
    if early is not None and early.monitor.startswith("val_") and x_val is None:
        raise ValueError(f"early stopping monitors {early.monitor!r} but no validation_data "
                         "was given; pass it or monitor 'train_loss'")
    batch_size = check_batch_size(config.batch_size, len(x))
    return _Data(x, y, weights, x_val, y_val, batch_size,
                 batches_per_epoch(len(x), batch_size, config.drop_last), batch_size >= len(x))


def optimizer_template(config: RunConfig) -> Any:
    """The optimizer state ``config``'s optimizer keeps, for a network of the run's depth
    whose every layer is 1x1: its records and their nesting, at no cost in memory."""
    layers = tuple(attrs.evolve(spec, input_dim=1, output_dim=1)
                   for spec in config.architecture.layers)
    params = Params(tuple(Dense(np.zeros((1, 1), config.np_dtype), np.zeros(1, config.np_dtype))
                          for _ in layers), Architecture(layers))
    return config.optimizer.init(params)


def state_mismatches(state: TrainState, config: RunConfig) -> list[str]:
    """Where ``state`` does not belong to the run ``config`` describes, one phrase each:
    seed, architecture, dtype, the optimizer state's record, early stopping on or off."""
    problems = []
    if state.seed != config.seed:
        problems.append(f"seed: this run has {config.seed}, the state {state.seed}")
    if state.params.architecture != config.architecture:
        problems.append(f"architecture: this run has {config.architecture.to_dicts()}, the "
                        f"state {state.params.architecture.to_dicts()}")
    if state.params.dtype != config.np_dtype:
        problems.append(f"dtype: this run has {config.dtype}, the state {state.params.dtype}")
    template = optimizer_template(config)
    if type(template) is not type(state.opt_state):
        problems.append(f"optimizer state: this run's optimizer ({config.optimizer.name}) "
                        f"keeps {type(template).__name__}, the state holds "
                        f"{type(state.opt_state).__name__}")
    if (config.early_stopping is None) != (state.early_stopping is None):
        problems.append("early_stopping: on in one, off in the other")
    return problems


def check_resumable(state: TrainState, config: RunConfig) -> None:
    """Refuse a state that does not belong to the run ``config`` describes, listing every
    difference."""
    problems = state_mismatches(state, config)
    if problems:
        raise ValueError("initial_state does not match this run:\n  " + "\n  ".join(problems))


def _check_one_run(state: TrainState, data: _Data) -> None:
    """Refuse to checkpoint a continuation on other data: every checkpoint is a point of one
    run on the data it records, which is what lets a load check its counters."""
    problems = progress_problems(state.step, state.epoch, state.batch_index, data.n_batches)
    if problems:
        raise ValueError(f"initial_state is no point of a run on this data ({problems[0]}); "
                         "a checkpointed run trains on one data set. Continue it without a "
                         "checkpointer, or start a new run")


def _starting_state(config: RunConfig, checkpointer: Checkpointing | None,
                    state: TrainState | None, data: Fingerprint) -> TrainState:
    """The checkpointer's newest state, ``state``, or a fresh one; checked against the run."""
    if checkpointer is not None:
        state = checkpointer.restore(config, data)
    if state is None:
        return initial_state_for(config)
    check_resumable(state, config)
    return state


def _run_config(config: Any, settings: dict[str, Any]) -> RunConfig:
    if isinstance(config, RunConfig):
        return attrs.evolve(config, **settings) if settings else config
    names = [f.name for f in attrs.fields(RunConfig)]
    unknown = sorted(set(settings) - set(names))
    if unknown:
        raise TypeError(f"fit() got unknown setting(s) {unknown}; the settings of a run are "
                        f"{names[1:]} (see purenet.RunConfig)")
    return RunConfig(config, **settings)


def _end(callbacks: Sequence[Callback], state: TrainState, error: BaseException | None) -> None:
    """Tell every callback that fit ends, even when one of them fails; then raise the first
    failure."""
    failure = None
    for callback in callbacks:
        try:
            callback.on_fit_end(state, error)
        except Exception as problem:   # the others still get their turn
            failure = failure or problem
    if failure is not None:
        raise failure


def fit(config: RunConfig | Any, x: Any, y: Any, *, validation_data: tuple[Any, Any] | None = None,
        checkpointer: Checkpointing | None = None, resume: bool = False,
        initial_state: TrainState | None = None, max_steps: int | None = None,
        callbacks: Sequence[Callback] = (), progress: bool | None = None,
        sample_weight: Any = None, **settings: Any) -> FitResult:
    """Train a network from scratch, from ``initial_state``, or from a checkpoint.

    Args:
        config: a ``RunConfig``; or an Architecture (or the tutorial's list of layer dicts),
            with the run's other settings as keyword arguments.
        x: (n_samples, n_features) training inputs.
        y: training targets (class ids, 0/1 labels, one-hot rows or regression values).
        validation_data: ``(x_val, y_val)``, evaluated after every epoch.
        checkpointer: a ``purenet.Checkpointer`` (a callback that also restores).
        resume: continue from the checkpointer's newest valid checkpoint, if any.
        initial_state: a ``TrainState`` to continue from (e.g. ``result.state``).
        max_steps: stop once ``state.step`` reaches this (the run can be continued).
        callbacks: ``Callback`` objects told of every step and epoch.
        progress: show a tqdm bar; None shows it when stderr is a terminal.
        sample_weight: (n_samples,) non-negative weights of the training samples: the
            loss becomes the weighted mean ``sum(w * loss) / sum(w)`` over the training
            set (each batch's loss scaled by the same constant, so a batch's gradient is
            an unbiased part of it), and the history's training metrics are weighted too.
            Validation metrics stay unweighted. None weighs every sample equally.
        **settings: fields of ``RunConfig`` (``optimizer``, ``epochs``, ``batch_size``,
            ``seed``, ``dtype``, ``loss``, ``l2``, ...): they build the run's config, or
            replace fields of a given one.

    Returns:
        ``FitResult(state, history)``.

    Raises:
        NonFiniteError: the loss, a gradient or a parameter went NaN/inf (the state before
            is kept, and checkpointed when there is a checkpointer).
        TrainingInterrupted: SIGINT/SIGTERM arrived; the last full step is in ``.state``.
    """
    config = _run_config(config, settings)
    checks.check("max_steps", max_steps, checks.optional(checks.integer(0)))
    _check_memory(config, x)
    data = _validated_data(config, x, y, validation_data, sample_weight)
    if initial_state is not None and resume:
        raise ValueError("pass either initial_state or resume=True, not both")
    if resume and checkpointer is None:
        raise ValueError("resume=True needs a checkpointer to resume from")
    if initial_state is not None and checkpointer is not None:
        _check_one_run(initial_state, data)
    arrays = {"x": data.x, "y": data.y, "x_val": data.x_val, "y_val": data.y_val}
    if data.weights is not None:   # only then: unweighted runs keep their old fingerprint
        arrays["sample_weight"] = data.weights
    data_print = fingerprint(arrays)
    limit = config.epochs * data.n_batches
    limit = limit if max_steps is None else min(max_steps, limit)
    hooks = [*callbacks, *([checkpointer] if checkpointer is not None else []),
             *([ProgressBar()] if ProgressBar.wanted(progress) else [])]
    hint = ("pass the exception's .state as initial_state= to fit to continue"
            if checkpointer is None else
            f"the checkpoint of step {{step}} is in {checkpointer.directory}; run fit again "
            "with the same checkpointer and resume=True to continue")
    state = initial_state
    with own_threads(config.threads):
        # From here on every hook hears of the end, whatever happens: a checkpointer that
        # took its directory's lock in restore() releases it even if the resume is refused.
        try:
            state = _starting_state(config, checkpointer if resume else None, state,
                                    data_print)
            for hook in hooks:
                hook.on_fit_start(state, config, limit, data_print)
            for state in _states(state, config, data, limit, hooks, hint):
                pass
        except BaseException as error:
            _end(hooks, state, error)
            raise
        _end(hooks, state, None)
    return FitResult(state, state.history)


@contextlib.contextmanager
def own_threads(threads: int) -> Iterator[None]:
    """The run's BLAS thread count for the duration of the block; the caller's after it.

    threadpoolctl's limit is process-wide: two fits in threads of one process share it, so
    run concurrent fits in processes (as sweeps do)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads, user_api="blas"):
        yield
