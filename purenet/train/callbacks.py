"""What ``fit`` tells the world while it trains: one callback protocol.

``fit`` knows callbacks and interrupts only. A progress bar, a checkpointer and a user's
logger are all ``Callback``s, called in the order given. Callbacks observe: the state is
immutable, so none can change the run.
"""

from __future__ import annotations

import math
import sys
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:   # annotations only: the loop imports this module, not the reverse
    from purenet.train.config import RunConfig
    from purenet.train.fingerprint import Fingerprint
    from purenet.train.state import TrainState
    from purenet.train.step import StepMetrics


class Callback:
    """Hooks ``fit`` calls; override any of them."""

    def on_fit_start(self, state: TrainState, config: RunConfig, total_steps: int,
                     data: Fingerprint) -> None:
        """Before the first step of this call (``state`` may be a resumed one); ``data`` is
        the fingerprint of the training data (``purenet.train.fingerprint``)."""

    def on_step_end(self, state: TrainState, metrics: StepMetrics) -> None:
        """After every optimizer step."""

    def on_epoch_end(self, state: TrainState) -> None:
        """After every epoch, once its history row is in ``state.history``."""

    def on_fit_end(self, state: TrainState | None, error: BaseException | None) -> None:
        """When ``fit`` ends, however it ends once it has begun (after checking its data),
        with the last complete state (None when it failed before it had one, e.g. a
        refused resume). ``error`` is None after a normal end, else what ends it
        (``NonFiniteError``, ``TrainingInterrupted``, or any other exception on its way
        out)."""


@runtime_checkable
class Checkpointing(Protocol):
    """A callback that can also give back the state to resume from (``purenet.Checkpointer``
    is one); ``fit(checkpointer=..., resume=True)`` uses it."""

    directory: str

    def restore(self, config: RunConfig, data: Fingerprint) -> TrainState | None:
        """The newest saved state of the run ``config`` describes, trained on ``data``, or
        None."""

    def on_fit_start(self, state: TrainState, config: RunConfig, total_steps: int,
                     data: Fingerprint) -> None: ...

    def on_step_end(self, state: TrainState, metrics: StepMetrics) -> None: ...

    def on_epoch_end(self, state: TrainState) -> None: ...

    def on_fit_end(self, state: TrainState, error: BaseException | None) -> None: ...


class ProgressBar(Callback):
    """A tqdm bar over the steps, with the epoch and the latest loss."""

    def __init__(self) -> None:
        self._bar: Any = None

    @staticmethod
    def wanted(progress: bool | None) -> bool:
        """``progress``, or (None) whether stderr is a terminal."""
        return sys.stderr.isatty() if progress is None else bool(progress)

    def on_fit_start(self, state: TrainState, config: RunConfig, total_steps: int,
                     data: Fingerprint) -> None:
        from tqdm.auto import tqdm

        self._bar = tqdm(total=total_steps, initial=min(state.step, total_steps), unit="step",
                         dynamic_ncols=True, leave=True)

    def on_step_end(self, state: TrainState, metrics: StepMetrics) -> None:
        self._bar.update(1)
        if state.batch_index == 0 or state.step % 20 == 0:
            self._bar.set_postfix(epoch=state.epoch, loss=f"{metrics.loss:.4g}", refresh=False)

    def on_fit_end(self, state: TrainState, error: BaseException | None) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class EpochLog(Callback):
    """A line per finished epoch for the logs of batch jobs, where a progress bar is noise,
    at most ``lines`` of them a run: every k-th epoch (k chosen from the run's epochs) and
    the last. ``purenet train`` uses it whenever it shows no bar."""

    def __init__(self, stream: Any = None, lines: int = 100) -> None:
        self.stream, self.lines = stream, lines
        self._epochs, self._every = 0, 1

    def on_fit_start(self, state: TrainState, config: RunConfig, total_steps: int,
                     data: Fingerprint) -> None:
        self._epochs = config.epochs
        self._every = max(1, math.ceil(config.epochs / self.lines))

    def on_epoch_end(self, state: TrainState) -> None:
        if state.epoch % self._every and state.epoch != self._epochs and not state.stopped:
            return
        history = state.history
        parts = [f"epoch {state.epoch}/{self._epochs}", f"step {state.step}"]
        for column in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
            value = getattr(history, column)[-1]
            if value == value:   # NaN: the metric does not apply
                parts.append(f"{column} {value:.6g}")
        print("purenet: " + ", ".join(parts), file=self.stream or sys.stderr, flush=True)
