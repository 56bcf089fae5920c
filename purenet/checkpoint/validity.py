"""A checkpoint is data until proven a valid state: the one validation every reader uses.

A correct digest proves that the bytes are the ones written, not that what was written is a
state purenet could have reached (a buggy writer, a hand-edited and resealed file, a hostile
one). ``check_state`` refuses, naming the field, any state its own run record and the data
it records could not have produced: counters that do not add up to the batches of that data,
a history that is not one row per finished epoch of the run's metrics, an optimizer state
of another algorithm at any depth of a chain or whose count is not the number of updates
made, epoch sums the batches done could not give, an early-stopping state its own history
contradicts, and arrays that are not finite. A resume checks the counters again against the
data the run is given.
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import numpy as np

from purenet.checkpoint.state_arrays import non_finite_arrays
from purenet.optim.lbfgs import MIN_CURVATURE
from purenet.optim.states import KIND, LbfgsState
from purenet.errors import CorruptCheckpointError
from purenet.optim.states import STATE_RECORDS
from purenet.train.config import RunConfig
from purenet.train.data import batches_per_epoch, check_batch_size, progress_problems
from purenet.train.loop import optimizer_template, state_mismatches
from purenet.train.state import HISTORY_COLUMNS, TrainState

MAX_PROBLEMS = 5


def samples_of(data: Any) -> int | None:
    """The number of training samples a data fingerprint records, or None when it records
    none (format 1 files, states saved outside ``fit``, or a malformed record)."""
    x = data.get("x") if isinstance(data, dict) else None
    shape = x.get("shape") if isinstance(x, dict) else None
    if isinstance(shape, list) and shape and type(shape[0]) is int and shape[0] > 0:
        return shape[0]
    return None


def batches_of(config: RunConfig, n_samples: int | None) -> int | None:
    """The batches an epoch of ``config``'s run has on ``n_samples`` samples (None when
    not known; 1 for a full batch, whatever the samples)."""
    if config.batch_size is None:
        return 1
    if n_samples is None:
        return None
    return batches_per_epoch(n_samples, check_batch_size(config.batch_size, n_samples),
                             config.drop_last)


def _in(value: float, low: float, high: float = math.inf) -> bool:
    return low <= value <= high   # False for NaN


def _history_problems(state: TrainState, config: RunConfig, data: Any) -> list[str]:
    """One row per finished epoch, each column what the run's metrics can be: a finite
    training loss >= 0, accuracies in [0, 1] for a classifier and NaN otherwise, validation
    metrics exactly when the run had validation data."""
    history = state.history
    lengths = {len(getattr(history, column)) for column in HISTORY_COLUMNS}
    if len(lengths) != 1:
        return [f"the history's columns have different lengths {sorted(lengths)}"]
    if len(history) != state.epoch:
        return [f"the history has {len(history)} rows for {state.epoch} finished epochs"]
    if history.epoch != tuple(range(1, state.epoch + 1)):
        return ["the history's epoch column is not 1, 2, ..., epoch"]
    weighted = isinstance(data, dict) and data.get("sample_weight") is not None
    validated = None if not isinstance(data, dict) else data["x_val"] is not None
    for row, values in enumerate(zip(*(getattr(history, c) for c in HISTORY_COLUMNS[1:]))):
        train_loss, train_accuracy, val_loss, val_accuracy = values
        where = f"the history's epoch {row + 1}"
        if not (math.isfinite(train_loss) and train_loss >= 0):
            return [f"{where} has train_loss {train_loss!r}; expected a finite number >= 0"]
        if config.classifier != _in(train_accuracy, 0, math.inf if weighted else 1) or (
                not config.classifier and not math.isnan(train_accuracy)):
            return [f"{where} has train_accuracy {train_accuracy!r}; expected "
                    + ("a number in [0, 1]" if config.classifier else "NaN (a regression)")]
        has_val = not math.isnan(val_loss)
        if validated is not None and has_val != validated:
            return [f"{where} has val_loss {val_loss!r}, but the run had "
                    f"{'' if validated else 'no '}validation data"]
        if has_val and not val_loss >= 0:
            return [f"{where} has val_loss {val_loss!r}; expected a number >= 0"]
        if (has_val and config.classifier) != _in(val_accuracy, 0, 1) or (
                not (has_val and config.classifier) and not math.isnan(val_accuracy)):
            return [f"{where} has val_accuracy {val_accuracy!r}; expected "
                    + ("a number in [0, 1]" if has_val and config.classifier else "NaN")]
    return []


def _record_problems(found: Any, expected: Any, at: str, step: int) -> list[str]:
    """Where the optimizer state ``found`` is not of the records ``expected`` (the run's
    optimizer's, at every depth of a chain), or counts other than ``step`` updates."""
    if type(found) is not type(expected):
        return [f"the optimizer state at {at} is a {type(found).__name__}; this run's "
                f"optimizer keeps a {type(expected).__name__} there"]
    problems = []
    counts_steps = STATE_RECORDS.is_builtin(type(expected).__name__)   # a user's may not
    for field in attrs.fields(type(expected)):
        value, template = getattr(found, field.name), getattr(expected, field.name)
        where = f"{at}/{field.name}"
        if field.name == "count" and counts_steps and value != step:
            problems.append(f"the optimizer state's {where} is {value}, but {step} updates "
                            "were made (one a step)")
        elif isinstance(template, tuple) and KIND not in field.metadata:   # a chain's
            if len(value) != len(template):
                problems.append(f"the optimizer state's {where} holds {len(value)} records; "
                                f"this run's optimizer chains {len(template)}")
            else:
                problems += [p for i, (v, t) in enumerate(zip(value, template))
                             for p in _record_problems(v, t, f"{where}/{i}", step)]
    return problems


def _totals_problems(state: TrainState, config: RunConfig, data: Any) -> list[str]:
    """The sums of the epoch in progress, as the batches done give them."""
    totals, done = state.totals, state.batch_index
    if not (math.isfinite(totals.loss_sum) and totals.loss_sum >= 0
            and math.isfinite(totals.correct) and totals.correct >= 0
            and type(totals.samples) is int and totals.samples >= 0):
        return ["the sums of the epoch in progress are not finite counts >= 0 (loss_sum "
                f"{totals.loss_sum!r}, correct {totals.correct!r}, samples {totals.samples!r})"]
    n = samples_of(data)
    batch = None if n is None else check_batch_size(config.batch_size, n)
    if done == 0:
        right = totals == type(totals)()
    elif batch is not None:
        right = totals.samples == done * batch
    else:   # a batch is at most batch_size samples, each batch of an epoch but the last full
        right = (config.batch_size is not None and totals.samples % done == 0
                 and 1 <= totals.samples // done <= config.batch_size)
    if not right:
        expected = "none" if done == 0 else (f"{done * batch}" if batch else f"{done} equal batches")
        return [f"the epoch in progress sums {totals.samples} samples over {done} batches; "
                f"expected {expected}"]
    weighted = not isinstance(data, dict) or data.get("sample_weight") is not None
    if not config.classifier and totals.correct != 0:
        return [f"the epoch in progress counts {totals.correct!r} correct of a regression"]
    if not weighted and totals.correct > totals.samples:
        return [f"the epoch in progress counts {totals.correct!r} correct of "
                f"{totals.samples} samples"]
    return []


def _early_problems(state: TrainState, config: RunConfig) -> list[str]:
    """Early stopping's state as the run's history and settings make it; a stop is early
    stopping's or the optimizer's (``stopped`` in its state, L-BFGS's)."""
    early, rule = state.early_stopping, config.early_stopping
    by_optimizer = bool(getattr(state.opt_state, "stopped", ""))
    if by_optimizer and not state.stopped:
        return [f"its optimizer state says it stopped ({state.opt_state.stopped}), but the "
                "run went on"]
    if early is None or rule is None:
        return ["it stopped early, but early stopping is off"] \
            if state.stopped and not by_optimizer else []
    initial = rule.initial().best
    if early.best_epoch < 0:
        if early.best != initial or early.best_params is not None:
            return [f"early_stopping.best is {early.best!r} before any epoch improved; "
                    f"expected {initial!r} and no best parameters"]
    else:
        # A watched value the history does not record (val_r2) is checked for finiteness.
        recorded = getattr(state.history, rule.monitor, None)
        recorded = early.best if recorded is None else recorded[early.best_epoch]
        if not math.isfinite(early.best) or early.best != recorded:
            return [f"early_stopping.best is {early.best!r}, but the history's "
                    f"{rule.monitor} at its best epoch {early.best_epoch + 1} is {recorded!r}"]
        if (early.best_params is not None) != rule.restore_best:
            return [f"early_stopping {'lacks' if rule.restore_best else 'holds'} the best "
                    "epoch's parameters, and the run's restore_best is "
                    f"{str(rule.restore_best).lower()}"]
        # Under scikit-learn's rule the best moves without resetting the wait.
        if rule.rule == "min_delta" and early.wait > state.epoch - 1 - early.best_epoch:
            return [f"early_stopping.wait is {early.wait}, more than the epochs since its best "
                    f"({state.epoch - 1 - early.best_epoch})"]
    stopped_early = early.wait == rule.patience
    if early.wait > rule.patience or stopped_early and not state.stopped or (
            state.stopped and not stopped_early and not by_optimizer):
        return [f"early_stopping.wait is {early.wait} of patience {rule.patience}, and the run "
                f"{'stopped' if state.stopped else 'went on'}"]
    if state.stopped and state.batch_index:
        return ["it stopped early in the middle of an epoch"]
    if stopped_early and rule.restore_best and early.best_params is not None and not all(
            np.array_equal(a, b) for layer, best in zip(state.params.layers,
                                                        early.best_params.layers)
            for a, b in ((layer.W, best.W), (layer.b, best.b))):
        return ["it stopped early with restore_best, but its parameters are not the best "
                "epoch's"]
    return []


def _lbfgs_problems(found: LbfgsState, config: RunConfig) -> list[str]:
    """L-BFGS's memory and counters as its iterations can leave them."""
    m, pairs = config.optimizer.hyperparams["history_size"], len(found.s)
    where = "the optimizer state (L-BFGS)"
    if len(found.y) != pairs or len(found.rho) != pairs:
        return [f"{where} holds {pairs} steps s, {len(found.y)} gradient changes y and "
                f"{len(found.rho)} rho; expected one of each per curvature pair"]
    if pairs > m:
        return [f"{where} holds {pairs} curvature pairs, more than the run's history_size {m}"]
    if not found.iterations <= found.count or pairs > found.iterations:
        return [f"{where} holds {pairs} pairs after {found.iterations} iterations in "
                f"{found.count} steps; expected at most one pair an iteration, one iteration "
                "a step"]
    if (found.count == 0) != (found.evals == 0):
        return [f"{where} counts {found.evals} evaluations in {found.count} steps; a run has "
                "evaluated exactly when it has taken a step (the first evaluates at its start)"]
    if not all(0 < rho < 1 / MIN_CURVATURE for rho in found.rho) or not found.h_diag > 0 \
            or (pairs == 0 and found.h_diag != 1.0):
        return [f"{where} has rho {list(found.rho)[:5]} and h_diag {found.h_diag!r}; expected "
                f"each rho in (0, {1 / MIN_CURVATURE:g}) and h_diag > 0 (1.0 with no pairs)"]
    return []


# Rules of a state record beyond its kind and count, by record.
_RECORD_RULES = {LbfgsState: _lbfgs_problems}


def check_state(state: TrainState, config: RunConfig, path: str, data: Any = None) -> None:
    """Refuse a state that its run could not have reached, naming the field. ``data``:
    the checked fingerprint of the data the run was trained on, when the file records one
    (``side_records.data_record``)."""
    problems = []
    try:
        per_epoch = batches_of(config, samples_of(data))
    except ValueError as error:   # a recorded sample count no batch of the run fits
        problems.append(f"its data cannot be trained on by its run: {error}")
        per_epoch = None
    problems += progress_problems(state.step, state.epoch, state.batch_index, per_epoch)
    problems += state_mismatches(state, config)   # the run record is the file's own
    if not problems:   # the records below are the run's own kinds
        problems += _record_problems(state.opt_state, optimizer_template(config),
                                     "/optimizer", state.step)
        rules = _RECORD_RULES.get(type(state.opt_state))
        problems += rules(state.opt_state, config) if rules and not problems else []
        problems += _history_problems(state, config, data)
        problems += _totals_problems(state, config, data)
        problems += _early_problems(state, config)
    problems += [f"{name} holds NaN or inf" for name in non_finite_arrays(state)]
    if problems:
        raise CorruptCheckpointError(f"{path} does not hold a valid training state: "
                                     + "; ".join(problems[:MAX_PROBLEMS]))
