"""One training step: the pure ``train_step`` and the guard against NaN and inf."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import attrs
import numpy as np

from purenet.core.network import backward_unchecked, forward_unchecked, l2_penalty, loss_value
from purenet.core.records import Batch, tree_leaves
from purenet.core.validate import check_targets, check_x
from purenet.errors import NonFiniteError
from purenet.optim import apply_updates
from purenet.train.metrics import count_correct
from purenet.train.state import EpochTotals, TrainState
from purenet.train.config import RunConfig

Array = np.ndarray


class StepMetrics(NamedTuple):
    loss: float       # mean loss of the batch, L2 penalty included
    correct: float    # correctly classified samples of the batch (0 for regression)
    samples: int


def _non_finite(what: str, tree: Any) -> list[str]:
    """Where ``tree`` holds NaN/inf (or sums to it), as phrases for the error."""
    problems = []
    for i, layer in enumerate(tree.layers):
        for name in ("W", "b"):
            array = getattr(layer, name)
            if not np.isfinite(array.sum()):
                kind = "NaN/inf" if not np.isfinite(array).all() else "values too large to sum"
                problems.append(f"{what} of layer {i} {name} holds {kind}")
    return problems


def _all_finite(tree: Any) -> bool:
    # A reduction per array is far cheaper than isfinite over it (NaN and inf survive
    # it); vdot is the fastest one, and the sum decides when vdot alone overflows.
    return all(np.isfinite(np.vdot(a, a)) or np.isfinite(a.sum()) for a in tree_leaves(tree))


def _diverged(step: int, problems: list[str]) -> NonFiniteError:
    return NonFiniteError(
        f"training diverged at step {step}: {'; '.join(problems)}. The state before this "
        "step is intact; lower the learning rate, add gradient clipping "
        "(optim.clip_by_global_norm) or standardise the inputs")


def train_step_unchecked(state: TrainState, x: Array, y: Array, spec: RunConfig
                         ) -> tuple[TrainState, StepMetrics]:
    """``train_step`` on validated arrays (``fit``'s hot path)."""
    params = state.params
    dropout_key = (state.seed, state.step)
    A, cache = forward_unchecked(params, x, dropout_key)
    last = len(params.layers) - 1
    value = loss_value(spec.loss, params.architecture.output_activation,
                       cache.pre_activations[last], cache.outputs[last], y) \
        + l2_penalty(params, spec.l2)
    grads = backward_unchecked(params, cache, y, spec.loss, spec.l2)
    if not (math.isfinite(value) and _all_finite(grads)):
        raise _diverged(state.step, ([] if math.isfinite(value) else [f"the loss is {value}"])
                        + _non_finite("the gradient", grads))
    updates, opt_state = spec.optimizer.update(grads, state.opt_state, params)
    new_params = apply_updates(params, updates)
    if not _all_finite(new_params):   # finite gradients, but a step too large to represent
        raise _diverged(state.step, _non_finite("the updated parameters", new_params))
    metrics = StepMetrics(value, count_correct(spec.loss, A, y), len(x))
    totals = state.totals
    new = attrs.evolve(
        state, step=state.step + 1, batch_index=state.batch_index + 1,
        params=new_params, opt_state=opt_state,
        totals=EpochTotals(totals.loss_sum + value * len(x), totals.correct + metrics.correct,
                           totals.samples + len(x)))
    return new, metrics


def train_step(state: TrainState, batch: Batch, spec: RunConfig) -> tuple[TrainState, StepMetrics]:
    """One optimizer update on ``batch``: a pure function of its arguments.

    Dropout masks come from ``(state.seed, state.step)``; the new state has ``step`` and
    ``batch_index`` advanced and the batch added to the epoch's running sums.

    Raises:
        NonFiniteError: the loss, a gradient or an updated parameter is NaN or inf
            (naming the step and layer).
    """
    arch = state.params.architecture
    x = check_x(batch.x, arch, state.params.dtype)
    y = check_targets(batch.y, len(x), spec.loss, arch, state.params.dtype)
    return train_step_unchecked(state, x, y, spec)
