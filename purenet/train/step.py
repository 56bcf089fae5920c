"""One training step: the pure ``train_step`` (``take_step`` on validated arrays) and the
guard against NaN and inf. A step of an optimizer that takes the objective (lbfgs) is one
of its iterations on the full batch (``objective_step``)."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import attrs
import numpy as np

from purenet.core.network import objective
from purenet.core.records import Batch, tree_leaves
from purenet.core.validate import check_targets, check_x
from purenet.errors import NonFiniteError
from purenet.core.workspace import FRESH, Workspace
from purenet.optim.kernel import optimizer_step
from purenet.optim.objective import ObjectiveOptimizer
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
    with np.errstate(over="ignore", invalid="ignore"):   # inf + -inf: what is looked for
        for i, layer in enumerate(tree.layers):
            for name in ("W", "b"):
                array = getattr(layer, name)
                if not np.isfinite(array.sum()):
                    kind = ("NaN/inf" if not np.isfinite(array).all() else
                            "values too large to sum")
                    problems.append(f"{what} of layer {i} {name} holds {kind}")
    return problems


def _all_finite(tree: Any, workspace: Workspace = FRESH) -> bool:
    # A reduction per array is far cheaper than isfinite over it (NaN and inf survive
    # it); vdot is the fastest one, and the sum decides when vdot alone overflows. One
    # total over all arrays (the engine's flat one, where it made the tree) makes the
    # common case a single test.
    flat = workspace.flat_of(tree)
    leaves = tree_leaves(tree) if flat is None else [flat]
    if math.isfinite(sum(float(np.vdot(a, a)) for a in leaves)):
        return True
    with np.errstate(over="ignore", invalid="ignore"):   # inf + -inf: what is looked for
        return all(math.isfinite(np.vdot(a, a)) or math.isfinite(a.sum()) for a in leaves)


def _diverged(step: int, problems: list[str]) -> NonFiniteError:
    """The error of the step after ``step`` (the last good state's step)."""
    return NonFiniteError(
        f"training diverged in step {step + 1}: {'; '.join(problems)}. The state after step "
        f"{step}, before it, is intact; lower the learning rate, add gradient clipping "
        "(optim.clip_by_global_norm) or standardise the inputs")


def take_step(state: TrainState, x: Array, y: Array, config: RunConfig,
              weights: Array | None = None, workspace: Workspace = FRESH
              ) -> tuple[TrainState, StepMetrics]:
    """``train_step`` on arrays already validated, its arrays from ``workspace``: fresh
    ones for ``train_step``, the step engine's own for ``fit`` (``purenet.train.engine``).

    Args:
        state: the state before the step.
        x: (n_samples, input_dim) from ``check_x``.
        y: targets from ``check_targets`` for ``config.loss``.
        config: the run's settings; uses ``loss``, ``l2`` and ``optimizer``.
        weights: the batch's sample weights, scaled to mean 1 over the training set
            (``losses.normalised_weights``), or None.
        workspace: where the kernels write (``purenet.core.workspace``).
    """
    if isinstance(config.optimizer, ObjectiveOptimizer):
        return objective_step(state, x, y, config, weights, workspace)
    params = state.params
    value, A, grads = objective(params, x, y, config.loss, config.l2, (state.seed, state.step),
                                weights=weights, workspace=workspace)
    # An update_into kernel turns every NaN or inf gradient entry into a NaN or inf
    # parameter (inf * 0 is NaN; clip_by_value, which could hide one, has no kernel), so
    # with one the gradients need a look only when the new parameters fail the check.
    # Either way the step's new arrays are its own: the state before it stays intact.
    optimizer = config.optimizer
    if not (math.isfinite(value) and (optimizer.update_into or _all_finite(grads, workspace))):
        raise _diverged(state.step, ([] if math.isfinite(value) else [f"the loss is {value}"])
                        + _non_finite("the gradient", grads))
    with np.errstate(over="ignore", invalid="ignore"):   # reported below, by layer
        new_params, opt_state = optimizer_step(optimizer, grads, state.opt_state, params,
                                               workspace)
    if not _all_finite(new_params, workspace):
        # Non-finite gradients first (as the check before the update reports them), else
        # finite ones but a step too large to represent.
        raise _diverged(state.step, _non_finite("the gradient", grads)
                        or _non_finite("the updated parameters", new_params))
    metrics = StepMetrics(value, count_correct(config.loss, A, y, weights), len(x))
    totals = state.totals
    new = attrs.evolve(
        state, step=state.step + 1, batch_index=state.batch_index + 1,
        params=new_params, opt_state=opt_state,
        totals=EpochTotals(totals.loss_sum + value * len(x), totals.correct + metrics.correct,
                           totals.samples + len(x)))
    return new, metrics


def objective_step(state: TrainState, x: Array, y: Array, config: RunConfig,
                   weights: Array | None = None, workspace: Workspace = FRESH
                   ) -> tuple[TrainState, StepMetrics]:
    """One iteration of ``config.optimizer`` (an ``ObjectiveOptimizer``) on the batch
    ``x, y`` (the full training set). Each evaluation computes in ``workspace``'s arrays
    (the same numbers; 40% faster per evaluation than fresh ones, measured on a 20-64-64-3
    network at 2000 samples): the optimizer copies the gradient out at once, and the hits
    are counted before the next evaluation writes over the outputs.

    Its metrics are the loss and hits at the parameters the iteration ends with (where its
    line search accepted), and the new state is ``stopped`` when the optimizer says so.
    """
    hits: list[float] = []

    def evaluate(params: Any) -> tuple[float, Any]:
        # No dropout key: the run record refuses dropout with these optimizers.
        value, A, grads = objective(params, x, y, config.loss, config.l2, None,
                                    weights=weights, workspace=workspace)
        hits.append(count_correct(config.loss, A, y, weights))
        return value, grads

    params, opt_state, info = config.optimizer.step(evaluate, state.params, state.opt_state)
    problems = ([] if math.isfinite(info.loss) else [f"the loss is {info.loss}"]) + (
        [] if np.isfinite(opt_state.grad).all() else ["the gradient holds NaN/inf"])
    if problems or not _all_finite(params):
        raise _diverged(state.step, problems or _non_finite("the updated parameters", params))
    if info.accepted >= 0:
        correct = hits[info.accepted]
    else:   # the parameters it was given, evaluated by an earlier step
        A = objective(params, x, y, config.loss, config.l2, None, grads=False).outputs
        correct = count_correct(config.loss, A, y, weights)
    totals = state.totals
    new = attrs.evolve(
        state, step=state.step + 1, batch_index=state.batch_index + 1, params=params,
        opt_state=opt_state, stopped=bool(info.stopped),
        totals=EpochTotals(totals.loss_sum + info.loss * len(x), totals.correct + correct,
                           totals.samples + len(x)))
    return new, StepMetrics(info.loss, correct, len(x))


def train_step(state: TrainState, batch: Batch, config: RunConfig
               ) -> tuple[TrainState, StepMetrics]:
    """One optimizer update on ``batch``: a pure function of its arguments.

    Dropout masks come from ``(state.seed, state.step)``; the new state has ``step`` and
    ``batch_index`` advanced and the batch added to the epoch's running sums.

    Raises:
        NonFiniteError: the loss, a gradient or an updated parameter is NaN or inf
            (naming the step and layer).
    """
    arch = state.params.architecture
    x = check_x(batch.x, arch, state.params.dtype)
    y = check_targets(batch.y, len(x), config.loss, arch, state.params.dtype)
    return take_step(state, x, y, config)


