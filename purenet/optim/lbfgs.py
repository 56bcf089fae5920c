"""L-BFGS with a strong-Wolfe line search, full batch, as a pure resumable optimizer.

PyTorch's ``torch.optim.LBFGS(line_search_fn="strong_wolfe")`` step by step (Nocedal &
Wright, *Numerical Optimization*, algorithm 7.4; Liu & Nocedal, 1989), in NumPy over the
parameters as one flat vector (``purenet.optim.flat``). Iteration k:

    d = -H_k g_k        the two-loop recursion over the last ``history_size`` pairs
                        (s_i, y_i), H_0 = (y.s / y.y of the newest pair) I; d = -g at first
    t                   a strong-Wolfe step along d (``line_search``), first tried at
                        ``learning_rate`` (at min(1, 1 / |g|_1) * learning_rate at first)
    x_{k+1} = x_k + t d;  s = t d, y = g_{k+1} - g_k kept when y.s > 1e-10

One ``step`` is one iteration; PyTorch's ``step(closure)`` runs up to ``max_iter`` of them
and evaluates the objective again at its start, which this one does not: the state keeps
the loss and gradient at its parameters, so a step costs only its line search's
evaluations. Checkpoints fall between iterations. The stopping tests are PyTorch's, in its
order, each a reason in ``STOP_REASONS``; unlike PyTorch's per-call ``max_eval``,
``max_eval`` here bounds the evaluations of the whole run (scikit-learn's ``max_fun``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import attrs
import numpy as np

from purenet.core import checks
from purenet.core.records import Grads, Params, freeze
from purenet.errors import SettingError
from purenet.optim.flat import flatten, size_of, unflatten
from purenet.optim.line_search import Trial, strong_wolfe
from purenet.optim.objective import ObjectiveFn, ObjectiveOptimizer, StepInfo
from purenet.optim.states import LbfgsState

Array = np.ndarray

STOP_REASONS = {
    "gradient": "the gradient's largest entry is at most tolerance_grad",
    "descent": "the direction's slope g.d is above -tolerance_change (no descent left)",
    "step": "the step's largest entry is at most tolerance_change",
    "loss": "the loss changed by less than tolerance_change",
    "max_eval": "max_eval evaluations of the objective were made",
}
# PyTorch's constants: the sufficient decrease and curvature of the Wolfe conditions, the
# curvature a pair must show to be kept, and the line search's own tolerance (PyTorch
# does not pass tolerance_change on to it).
C1, C2, MIN_CURVATURE, SEARCH_TOLERANCE = 1e-4, 0.9, 1e-10, 1e-9


class _Evaluations:
    """The objective at points ``x + t d`` of the flat space, counted."""

    def __init__(self, objective: ObjectiveFn, like: Params) -> None:
        self.objective, self.like, self.count = objective, like, 0

    def __call__(self, x: Array) -> tuple[float, Array]:
        value, grads = self.objective(unflatten(freeze(x), self.like))
        if not isinstance(grads, Grads):
            raise TypeError(f"the objective must return (loss, Grads), got a "
                            f"{type(grads).__name__} for the gradient")
        self.count += 1
        return float(value), flatten(grads)


def _largest(vector: Array) -> float:
    return float(np.max(np.abs(vector)))


def _direction(g: Array, state: LbfgsState) -> Array:
    """``-H g`` by the two-loop recursion, in PyTorch's order of operations."""
    alpha = [0.0] * len(state.s)
    q = -g
    for i in range(len(state.s) - 1, -1, -1):
        alpha[i] = float(np.dot(state.s[i], q)) * state.rho[i]
        q -= alpha[i] * state.y[i]
    r = q * state.h_diag
    for i in range(len(state.s)):
        beta = float(np.dot(state.y[i], r)) * state.rho[i]
        r += (alpha[i] - beta) * state.s[i]
    return freeze(r)


def _remembered(state: LbfgsState, s: Array, y: Array, history_size: int) -> dict[str, Any]:
    """The memory with the pair (s, y) added when it shows enough curvature, the oldest
    pair dropped when full."""
    ys = float(np.dot(y, s))
    if not ys > MIN_CURVATURE:
        return {}
    keep = slice(1, None) if len(state.s) == history_size else slice(None)
    return {"s": (*state.s[keep], freeze(s)), "y": (*state.y[keep], freeze(y)),
            "rho": (*state.rho[keep], 1.0 / ys), "h_diag": ys / float(np.dot(y, y))}


def _check_state(state: Any, x: Array) -> None:
    if not isinstance(state, LbfgsState):
        raise TypeError(f"lbfgs steps from an LbfgsState (opt.init(params)), got "
                        f"{type(state).__name__}")
    if state.grad.shape != x.shape or state.grad.dtype != x.dtype:
        raise ValueError(f"the state belongs to {state.grad.size} {state.grad.dtype} "
                         f"parameters, these are {x.size} {x.dtype}; start from "
                         "opt.init(params)")


class _Settings(NamedTuple):
    learning_rate: float
    history_size: int
    tolerance_grad: float
    tolerance_change: float
    max_ls: int
    max_eval: int | None


def _init(params: Params) -> LbfgsState:
    zeros = freeze(np.zeros(size_of(params), params.dtype))
    return LbfgsState(0, 0, 0, 0.0, zeros, (), (), (), 1.0)


def _step(settings: _Settings, objective: ObjectiveFn, params: Params, state: LbfgsState
          ) -> tuple[Params, LbfgsState, StepInfo]:
    """One iteration: the tests at its start, a direction, its line search."""
    x = flatten(params)
    _check_state(state, x)
    evaluate = _Evaluations(objective, params)
    loss, g = state.loss, state.grad
    if state.evals == 0:   # the first step evaluates where it starts
        loss, g = evaluate(x)
    at_start = evaluate.count - 1   # the evaluation at the start, if made here

    def stay(reason: str, iterated: int = 0) -> tuple[Params, LbfgsState, StepInfo]:
        new = attrs.evolve(state, count=state.count + 1, evals=state.evals + evaluate.count,
                           iterations=state.iterations + iterated, loss=loss, grad=g,
                           stopped=reason)
        return params, new, StepInfo(loss, evaluate.count, at_start, reason)

    if _largest(g) <= settings.tolerance_grad:
        return stay("gradient")
    budget = settings.max_ls if settings.max_eval is None else min(
        settings.max_ls, settings.max_eval - state.evals - evaluate.count)
    if budget <= 0:
        return stay("max_eval")
    first = state.iterations == 0
    d = freeze(-g) if first else _direction(g, state)
    t = settings.learning_rate * (min(1.0, 1.0 / float(np.sum(np.abs(g)))) if first else 1.0)
    gtd = float(np.dot(g, d))
    if gtd > -settings.tolerance_change:
        return stay("descent", 1)
    before = evaluate.count
    found = strong_wolfe(lambda t: evaluate(x + t * d), d, Trial(0.0, loss, g, gtd, -1), t,
                         C1, C2, SEARCH_TOLERANCE, budget).step
    accepted = at_start if found.index < 0 else before + found.index
    return _moved(settings, params, x, d, state, loss, g, found, evaluate.count, accepted)


def _moved(settings: _Settings, params: Params, x: Array, d: Array, state: LbfgsState,
           loss: float, g: Array, found: Trial, evals: int, accepted: int
           ) -> tuple[Params, LbfgsState, StepInfo]:
    """The iteration's end at the line search's trial ``found``: its parameters, the
    stopping tests in PyTorch's order, the memory with the new pair."""
    # The trial's own point, computed again the same way (the same bits); t = 0 is the
    # start itself (x + 0 d could turn a -0.0 into 0.0).
    new_params = params if found.index < 0 else unflatten(freeze(x + found.t * d), params)
    total = state.evals + evals
    s = d * found.t
    reason = ("max_eval" if settings.max_eval is not None and total >= settings.max_eval else
              "gradient" if _largest(found.g) <= settings.tolerance_grad else
              "step" if _largest(s) <= settings.tolerance_change else
              "loss" if abs(found.f - loss) < settings.tolerance_change else "")
    new = attrs.evolve(state, count=state.count + 1, iterations=state.iterations + 1,
                       evals=total, loss=found.f, grad=found.g, stopped=reason,
                       **_remembered(state, s, found.g - g, settings.history_size))
    return new_params, new, StepInfo(found.f, evals, accepted, reason)


def lbfgs(learning_rate: float = 1.0, history_size: int = 100, tolerance_grad: float = 1e-7,
          tolerance_change: float = 1e-9, max_ls: int = 25,
          max_eval: int | None = None) -> ObjectiveOptimizer:
    """Full-batch L-BFGS with PyTorch's strong-Wolfe line search (its defaults too).

    Args:
        learning_rate: the first step length tried by each line search (PyTorch's lr).
        history_size: the curvature pairs kept (m).
        tolerance_grad: stop once the gradient's largest entry is at most this.
        tolerance_change: stop once a step, or the loss's change, is below this.
        max_ls: evaluations of one line search after its first (PyTorch's max_ls).
        max_eval: stop once the run has evaluated the objective this often (None: no
            bound). A line search is cut short for it as PyTorch cuts it (to
            ``max_eval - evals`` evaluations after its first), so the run's last one may
            overshoot it by one.

    Returns:
        An ``ObjectiveOptimizer``: ``init(params) -> LbfgsState``, ``step(objective,
        params, state) -> (params, state, StepInfo)``.
    """
    lr = float(checks.check("learning_rate", learning_rate, checks.number(0)))
    if not lr > 0:
        raise SettingError("learning_rate", f"must be a number > 0, got {lr!r}")
    settings = _Settings(
        lr, checks.check("history_size", history_size, checks.integer(1)),
        float(checks.check("tolerance_grad", tolerance_grad, checks.number(0))),
        float(checks.check("tolerance_change", tolerance_change, checks.number(0))),
        checks.check("max_ls", max_ls, checks.integer(1)),
        checks.check("max_eval", max_eval, checks.optional(checks.integer(1))))
    # An unset max_eval is left out: the plain form (TOML) has no null.
    hyperparams = {k: v for k, v in settings._asdict().items() if v is not None}

    # A closure, as every optimizer's update is (a copied closure is the same function).
    def step(objective: ObjectiveFn, params: Params, state: LbfgsState
             ) -> tuple[Params, LbfgsState, StepInfo]:
        return _step(settings, objective, params, state)

    return ObjectiveOptimizer("lbfgs", hyperparams, _init, step)


# The optimizers that take the objective, by name (``from_config`` and experiment files
# look them up here; ``OPTIMIZERS`` holds the gradient ones).
OBJECTIVE_OPTIMIZERS = {"lbfgs": lbfgs}
