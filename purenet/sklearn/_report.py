"""What a fit tells its user while it runs, in MLPClassifier's words: the validation score
of each epoch (``validation_scores_``) and, with ``verbose``, its printed lines."""

from __future__ import annotations

from typing import Any, Callable

from purenet.train.callbacks import Callback
from purenet.train.state import TrainState

# Why a fit stopped, by whether it watched a validation score: MLPClassifier's words.
STALLED = {False: "Training loss did not improve more than tol={tol:f} for {n} "
                  "consecutive epochs.",
           True: "Validation score did not improve more than tol={tol:f} for {n} "
                 "consecutive epochs."}
# What learning_rate="adaptive" does about a stall (None: it stops).
ADAPTIVE = {"stop": " Stopping.", "floor": " Learning rate too small. Stopping.",
            "divide": " Setting learning rate to {rate:f}"}


class EpochReport(Callback):
    """After each epoch: the estimator's own score (accuracy, R^2) on the validation part
    when ``score`` is given, and with ``verbose`` MLPClassifier's lines (``Iteration N,
    loss = ...``, ``Validation score: ...``), N counting this fit's epochs."""

    def __init__(self, score: Callable[[Any], float] | None, verbose: bool,
                 first_epoch: int) -> None:
        self.score, self.verbose, self.first_epoch = score, verbose, first_epoch
        self.scores: list[float] = []
        self.last: TrainState | None = None   # the state after the last finished epoch

    def on_epoch_end(self, state: TrainState) -> None:
        self.last = state
        if self.verbose:
            loss = state.history.train_loss[-1]
            print("Iteration %d, loss = %.8f" % (state.epoch - self.first_epoch, loss))
        if self.score is not None:
            self.scores.append(self.score(state.params))
            if self.verbose:
                print("Validation score: %f" % self.scores[-1])


def stall_message(validation: bool, tol: float, n: int, outcome: str, rate: float = 0.0
                  ) -> str:
    """The line MLPClassifier prints when training stalls; ``outcome`` a key of
    ``ADAPTIVE``."""
    return STALLED[validation].format(tol=tol, n=n) + ADAPTIVE[outcome].format(rate=rate)
