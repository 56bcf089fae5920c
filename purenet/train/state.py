"""The records of a training run: its progress, its history, and its early-stopping state.

Kept apart from ``train.py`` (which runs a fit) so that the checkpoint module can read and
write them without the training loop.
"""

from __future__ import annotations

import math
from typing import Any

import attrs

from purenet.core import checks
from purenet.core.records import Params

HISTORY_COLUMNS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy")
# val_r2 (R^2 on the validation data) and val_subset_accuracy (every label right: for
# multi-label targets stricter than val_accuracy) are watched, never recorded.
MONITORS = {"val_loss": "min", "val_accuracy": "max", "train_loss": "min",
            "train_accuracy": "max", "val_r2": "max", "val_subset_accuracy": "max"}


@attrs.frozen(eq=False)
class History:
    """Per-epoch metrics, one tuple per column; NaN where a metric does not apply (accuracy
    of a regression, validation metrics without validation data)."""

    epoch: tuple[int, ...] = ()
    train_loss: tuple[float, ...] = ()
    train_accuracy: tuple[float, ...] = ()
    val_loss: tuple[float, ...] = ()
    val_accuracy: tuple[float, ...] = ()

    def append(self, **row: float) -> "History":
        """A new History with one more epoch; ``row`` gives every column."""
        if set(row) != set(HISTORY_COLUMNS):
            raise ValueError(f"a history row needs exactly {list(HISTORY_COLUMNS)}, got {sorted(row)}")
        return History(**{c: getattr(self, c) + (row[c],) for c in HISTORY_COLUMNS})

    def as_dict(self) -> dict[str, list[float]]:
        return {c: list(getattr(self, c)) for c in HISTORY_COLUMNS}

    def __len__(self) -> int:
        return len(self.epoch)


@attrs.frozen
class EpochTotals:
    """Running sums over the batches done so far in the current epoch (so that a run
    resumed mid-epoch reports the same epoch metrics as one never stopped)."""

    loss_sum: float = 0.0    # sum of batch loss x batch size
    correct: float = 0.0     # correctly classified samples (fractional for multi-label)
    samples: int = 0


# Each rule compares as its original does, for a monitor to minimise (a maximised one is
# negated, which is exact), so that the float rounding of its thresholds is theirs too.
def _min_delta_rule(value: float, best: float, min_delta: float) -> tuple[bool, bool]:
    # Keras's rule: only a gain larger than min_delta counts, for the best and the wait.
    improved = value < best - min_delta
    return improved, improved


def _sklearn_rule(value: float, best: float, tol: float) -> tuple[bool, bool]:
    # MLPClassifier's rule: the best (and its parameters) moves on any gain, the count of
    # epochs without improvement resets unless value > best - tol. A NaN value (a
    # diverged epoch) resets the count, as scikit-learn's comparison does.
    return value < best, not value > best - tol


# rule name -> (value, best, threshold) -> (the best moves, the wait resets)
STOPPING_RULES = {"min_delta": _min_delta_rule, "sklearn": _sklearn_rule}


@attrs.frozen
class EarlyStopping:
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience``
    epochs; with ``restore_best``, end with the parameters of the best epoch.

    ``rule="sklearn"`` is MLPClassifier's: the best value and parameters follow any gain,
    while the wait resets only on a gain of at least ``min_delta`` (its ``tol``)."""

    monitor: str = attrs.field(default="val_loss", validator=checks.one_of(MONITORS))
    patience: int = checks.field(checks.integer(1), default=5)
    min_delta: float = checks.field(checks.number(0), default=0.0)
    restore_best: bool = attrs.field(default=True, validator=checks.boolean)
    rule: str = attrs.field(default="min_delta", validator=checks.one_of(STOPPING_RULES))

    def improved(self, value: float, best: float) -> bool:
        return self.judge(value, best)[0]

    def judge(self, value: float, best: float) -> tuple[bool, bool]:
        """``(the best moves to value, the wait resets)`` after an epoch scoring ``value``."""
        if MONITORS[self.monitor] == "max":
            value, best = -value, -best
        return STOPPING_RULES[self.rule](value, best, self.min_delta)

    def initial(self) -> "EarlyStoppingState":
        worst = math.inf if MONITORS[self.monitor] == "min" else -math.inf
        return EarlyStoppingState(best=worst, best_epoch=-1, wait=0, best_params=None)


@attrs.frozen(eq=False)
class EarlyStoppingState:
    best: float
    best_epoch: int
    wait: int
    best_params: Params | None


@attrs.frozen(eq=False)
class TrainState:
    """Everything a run needs to continue exactly: counters, parameters, optimizer state,
    the partial epoch's sums, the history so far, and early stopping.

    Randomness is not stored: it is derived from ``seed`` and the counters.

    Attributes:
        step: updates done so far.
        epoch: the current epoch (0-based); equals the number of finished epochs.
        batch_index: batches of the current epoch done so far.
        seed: the run's seed.
        params: the current parameters.
        opt_state: the optimizer's state.
        totals: sums over the current epoch's batches.
        history: one row per finished epoch.
        early_stopping: state of early stopping, or None when it is off.
        stopped: True once early stopping has ended the run.
    """

    step: int
    epoch: int
    batch_index: int
    seed: int
    params: Params
    opt_state: Any
    totals: EpochTotals = EpochTotals()
    history: History = History()
    early_stopping: EarlyStoppingState | None = None
    stopped: bool = False


@attrs.frozen(eq=False)
class FitResult:
    """What ``fit`` returns: the final state and the per-epoch history."""

    state: TrainState
    history: History
