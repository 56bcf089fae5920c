"""A checkpoint is data until proven a valid state.

A correct digest proves that the bytes are the ones written, not that what was written is a
state purenet could have reached (a buggy writer, a hand-edited and resealed file, a hostile
one). Every load checks the state against its own run record before anything uses it.
"""

from __future__ import annotations

import math

from purenet.checkpoint.format_v2 import non_finite_arrays
from purenet.errors import CorruptCheckpointError
from purenet.train.config import RunConfig
from purenet.train.loop import state_mismatches
from purenet.train.state import HISTORY_COLUMNS, TrainState


def check_state(state: TrainState, config: RunConfig, path: str) -> None:
    """Refuse a state that its run could not have reached, naming the field."""
    problems = []
    if not isinstance(state.stopped, bool):
        problems.append(f"stopped must be true or false, not {state.stopped!r:.40}")
    if state.batch_index > state.step or state.epoch > state.step:
        problems.append(f"step {state.step} is smaller than its epoch ({state.epoch}) or "
                        f"batch_index ({state.batch_index})")
    lengths = {len(getattr(state.history, column)) for column in HISTORY_COLUMNS}
    if len(lengths) != 1:
        problems.append(f"the history's columns have different lengths {sorted(lengths)}")
    elif len(state.history) != state.epoch:
        problems.append(f"the history has {len(state.history)} rows for {state.epoch} "
                        "finished epochs")
    elif state.history.epoch != tuple(range(1, state.epoch + 1)):
        problems.append("the history's epoch column is not 1, 2, ..., epoch")
    problems += state_mismatches(state, config)   # the run record is the file's own
    totals = state.totals
    if not (math.isfinite(totals.loss_sum) and math.isfinite(totals.correct)
            and isinstance(totals.samples, int) and totals.samples >= 0):
        problems.append("the running sums of the epoch in progress are not finite counts")
    problems += [f"{name} holds NaN or inf" for name in non_finite_arrays(state)]
    if problems:
        raise CorruptCheckpointError(f"{path} does not hold a valid training state: "
                                     + "; ".join(problems[:5]))


