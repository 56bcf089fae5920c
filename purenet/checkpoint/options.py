"""When to save and what to keep: the one record of a checkpointer's options.

``Checkpointer(directory, every_steps=, every_epochs=, keep=, keep_best=, monitor=)`` builds
it, an experiment file's ``[checkpoint]`` table is it, and ``due`` is the one rule of when a
state is saved. Units are in the names: ``every_steps`` counts optimizer steps,
``every_epochs`` epochs.
"""

from __future__ import annotations

from typing import Any

import attrs

from purenet.core import checks
from purenet.train.state import MONITORS


def _every_epochs_default(options: "CheckpointOptions") -> int | None:
    return None if options.every_steps else 1   # neither given: every epoch


@attrs.frozen
class CheckpointOptions:
    """A checkpointer's options.

    Attributes:
        every_steps: save every this many optimizer steps.
        every_epochs: save at the end of every this many epochs; with neither, every epoch.
        keep: how many of the newest checkpoints to keep (None: all).
        keep_best: also keep this many checkpoints with the best ``monitor`` value.
        monitor: the History column ``keep_best`` ranks by; None: ``val_loss`` when the run
            has validation data, else ``train_loss``.
    """

    every_steps: int | None = checks.field(checks.optional(checks.integer(1)), default=None)
    every_epochs: int | None = checks.field(
        checks.optional(checks.integer(1)),
        default=attrs.Factory(_every_epochs_default, takes_self=True))
    keep: int | None = checks.field(checks.optional(checks.integer(1)), default=3)
    keep_best: int | None = checks.field(checks.optional(checks.integer(1)), default=None)
    monitor: str | None = attrs.field(default=None,
                                      validator=checks.optional(checks.one_of(MONITORS)))

    def due(self, state: Any, epoch_end: bool) -> bool:
        """Whether ``state``, just reached (at the end of an epoch or not), is saved."""
        if self.every_steps and state.step % self.every_steps == 0:
            return True
        return bool(epoch_end and self.every_epochs and state.epoch % self.every_epochs == 0)

    def monitor_for(self, validated: bool) -> str:
        """The column ``keep_best`` ranks by, for a run with validation data or not."""
        return self.monitor or ("val_loss" if validated else "train_loss")
