"""Optimizers that need the objective, not just a gradient: ``init`` and ``step``.

A gradient optimizer (``Optimizer``) is told a gradient and returns updates; one that
searches along a line, as L-BFGS does, must evaluate the loss at points of its own
choosing. It takes the objective, a pure function ``params -> (loss, grads)``:

    opt = purenet.optim.lbfgs()
    state = opt.init(params)
    params, state, info = opt.step(objective, params, state)   # one iteration

``minimize`` runs such steps to a stop. Like every optimizer's, the state is an immutable
record rebuilt each step, and ``config()`` is the optimizer as plain data
(``purenet.optim.from_config`` is its inverse).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import attrs

from purenet.core import checks
from purenet.core.records import Grads, Params

# The objective an ObjectiveOptimizer takes: deterministic, pure, params -> (loss, grads).
# A step copies what it keeps of each result before it evaluates again, so an objective may
# hand out arrays it writes over at its next call (an engine's workspace, for speed).
ObjectiveFn = Callable[[Params], tuple[float, Grads]]


class StepInfo(NamedTuple):
    """What one step did.

    Attributes:
        loss: the objective at the parameters the step returned.
        evals: evaluations of the objective the step made.
        accepted: which of them (0-based) was at the returned parameters; -1 when none
            was (they are the ones passed in, evaluated by an earlier step).
        stopped: why the run should stop here ("" to go on; ``lbfgs.STOP_REASONS``).
    """

    loss: float
    evals: int
    accepted: int
    stopped: str


@attrs.frozen(eq=False)
class ObjectiveOptimizer:
    """A named pair of pure functions that take the objective, with the hyperparameters
    that made it.

    Attributes:
        name: the algorithm ("lbfgs").
        hyperparams: plain data, stored in checkpoints and compared on resume.
        init: ``params -> state``.
        step: ``(objective, params, state) -> (params, state, StepInfo)``.
    """

    name: str
    hyperparams: dict[str, Any]
    init: Callable[[Params], Any]
    step: Callable[[ObjectiveFn, Params, Any], tuple[Params, Any, StepInfo]]

    def config(self) -> dict[str, Any]:
        """The optimizer as plain data: ``{"name": "lbfgs", "history_size": 100, ...}``."""
        return {"name": self.name, **self.hyperparams}


def minimize(optimizer: ObjectiveOptimizer, objective: ObjectiveFn, params: Params,
             max_iter: int, state: Any = None,
             callback: Callable[[Params, Any, StepInfo], Any] | None = None
             ) -> tuple[Params, Any, StepInfo | None]:
    """Steps of ``optimizer`` from ``params`` (and ``state``, default ``init(params)``)
    until one says stop or ``max_iter`` steps are done; ``callback`` hears of each.

    Returns the parameters, the state (pass it back to continue) and the last step's info
    (None when ``max_iter`` is 0).
    """
    checks.check("max_iter", max_iter, checks.integer(0))
    if not isinstance(optimizer, ObjectiveOptimizer):
        raise TypeError(f"minimize takes an optimizer that takes the objective (e.g. "
                        f"purenet.optim.lbfgs()), got {checks.describe(optimizer)}")
    state = optimizer.init(params) if state is None else state
    info = None
    for _ in range(max_iter):
        params, state, info = optimizer.step(objective, params, state)
        if callback is not None:
            callback(params, state, info)
        if info.stopped:
            break
    return params, state, info
