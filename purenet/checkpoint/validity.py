"""A checkpoint is data until proven a valid state.

A correct digest proves that the bytes are the ones written, not that what was written is a
state purenet could have reached (a buggy writer, a hand-edited and resealed file, a hostile
one). Every load checks the state against its own run record, and its counters against the
batches per epoch of the data it records, before anything uses it; a resume checks them
again against the data the run is given.
"""

from __future__ import annotations

import math
from typing import Any

from purenet.checkpoint.state_arrays import non_finite_arrays
from purenet.errors import CorruptCheckpointError
from purenet.train.config import RunConfig
from purenet.train.data import batches_per_epoch, check_batch_size, progress_problems
from purenet.train.loop import state_mismatches
from purenet.train.state import HISTORY_COLUMNS, TrainState


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
    not known)."""
    if n_samples is None:
        return None
    return batches_per_epoch(n_samples, check_batch_size(config.batch_size, n_samples),
                             config.drop_last)


def check_state(state: TrainState, config: RunConfig, path: str,
                n_samples: int | None = None) -> None:
    """Refuse a state that its run could not have reached, naming the field.
    ``n_samples``: the training samples the run had, when known."""
    problems = []
    if not isinstance(state.stopped, bool):
        problems.append(f"stopped must be true or false, not {state.stopped!r:.40}")
    try:
        per_epoch = batches_of(config, n_samples)
    except ValueError as error:   # a recorded sample count no batch of the run fits
        problems.append(f"its data cannot be trained on by its run: {error}")
    else:
        problems += progress_problems(state.step, state.epoch, state.batch_index, per_epoch)
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
