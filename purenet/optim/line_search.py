"""The strong-Wolfe line search of L-BFGS, as a pure function of a 1-D objective.

A port of PyTorch's ``torch.optim.lbfgs._strong_wolfe`` (itself from minFunc's and
Torch7's ``lswolfe.lua``; Nocedal & Wright, *Numerical Optimization*, algorithms 3.5 and
3.6): bracket a step satisfying the strong Wolfe conditions

    f(x + t d) <= f(x) + c1 t g.d        (sufficient decrease)
    |g(x + t d).d| <= c2 |g.d|           (curvature)

then zoom into the bracket by safeguarded cubic interpolation. Every branch and every
comparison is PyTorch's, in its order, so the steps chosen are the same up to rounding
(tests/test_lbfgs.py compares them). Vectors are never written: each trial's gradient is
a new array, so nothing needs the clones PyTorch makes.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import numpy as np

Array = np.ndarray
# phi(t) -> (f(x + t d), gradient at x + t d as a flat vector)
Directional = Callable[[float], tuple[float, Array]]


class Trial(NamedTuple):
    """One evaluated step: its length, loss, flat gradient, directional derivative, and
    which evaluation of the search made it (0-based; -1 for the start point, t = 0)."""

    t: float
    f: float
    g: Array
    gtd: float
    index: int


class SearchResult(NamedTuple):
    """The step taken: its trial, and how many evaluations the search made."""

    step: Trial
    evals: int


def cubic_minimum(x1: float, f1: float, g1: float, x2: float, f2: float, g2: float,
                  bounds: tuple[float, float] | None = None) -> float:
    """The minimiser of the cubic through two points with values and slopes, clipped to
    ``bounds`` (default: the interval between the points); the bounds' middle when the
    cubic has no real minimiser (PyTorch's ``_cubic_interpolate``)."""
    low, high = bounds if bounds is not None else ((x1, x2) if x1 <= x2 else (x2, x1))
    if x1 == x2:   # PyTorch's tensors would give NaN here, and then the same middle
        return (low + high) / 2.0
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1 ** 2 - g1 * g2
    if not d2_square >= 0:
        return (low + high) / 2.0
    d2 = math.sqrt(d2_square)
    if x1 <= x2:
        min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    else:
        min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    return min(max(min_pos, low), high)


class _Counter:
    """Evaluations of ``phi`` made so far, each a Trial."""

    def __init__(self, phi: Directional, d: Array) -> None:
        self.phi, self.d, self.evals = phi, d, 0

    def __call__(self, t: float) -> Trial:
        f, g = self.phi(t)
        self.evals += 1
        return Trial(t, float(f), g, float(np.dot(g, self.d)), self.evals - 1)


def strong_wolfe(phi: Directional, d: Array, start: Trial, t: float, c1: float = 1e-4,
                 c2: float = 0.9, tolerance_change: float = 1e-9, max_ls: int = 25
                 ) -> SearchResult:
    """A step along ``d`` from ``start`` (t = 0: the loss, gradient and ``g.d`` there)
    meeting the strong Wolfe conditions, trying ``t`` first; at most ``max_ls`` + 1
    evaluations of ``phi``.

    Returns the best trial found (lowest loss of the final bracket) and the evaluations
    made. ``tolerance_change``: the bracket is abandoned once ``|t_hi - t_lo| * max|d|``
    falls below it.
    """
    evaluate = _Counter(phi, d)
    d_norm = float(np.max(np.abs(d)))
    gtd = start.gtd
    new, prev = evaluate(t), start
    bracket: list[Trial] | None = None
    ls_iter = 0
    while ls_iter < max_ls:
        if new.f > start.f + c1 * new.t * gtd or (ls_iter > 1 and new.f >= prev.f):
            bracket = [prev, new]
            break
        if abs(new.gtd) <= -c2 * gtd:
            return SearchResult(new, evaluate.evals)
        if new.gtd >= 0:
            bracket = [prev, new]
            break
        min_step = new.t + 0.01 * (new.t - prev.t)
        max_step = new.t * 10
        t = cubic_minimum(prev.t, prev.f, prev.gtd, new.t, new.f, new.gtd,
                          bounds=(min_step, max_step))
        prev, new = new, evaluate(t)
        ls_iter += 1
    if ls_iter == max_ls:
        bracket = [start, new]
    return SearchResult(_zoom(evaluate, bracket, start, gtd, d_norm, c1, c2,
                              tolerance_change, max_ls - ls_iter), evaluate.evals)


def _zoom(evaluate: _Counter, bracket: list[Trial], start: Trial, gtd: float, d_norm: float,
          c1: float, c2: float, tolerance_change: float, budget: int) -> Trial:
    """Narrow ``bracket`` (two trials around a step meeting the conditions) with at most
    ``budget`` evaluations; the trial of its lowest loss."""
    low, high = (0, 1) if bracket[0].f <= bracket[-1].f else (1, 0)
    insufficient = False
    for _ in range(budget):
        lo_t, hi_t = min(bracket[0].t, bracket[1].t), max(bracket[0].t, bracket[1].t)
        if abs(bracket[1].t - bracket[0].t) * d_norm < tolerance_change:
            break
        a, b = bracket
        t = cubic_minimum(a.t, a.f, a.gtd, b.t, b.f, b.gtd)
        # Too close to an end of the bracket: after two such trials in a row, or at or
        # beyond an end, try 0.1 of the bracket's length inside it instead.
        eps = 0.1 * (hi_t - lo_t)
        if min(hi_t - t, t - lo_t) < eps:
            if insufficient or t >= hi_t or t <= lo_t:
                t = hi_t - eps if abs(t - hi_t) < abs(t - lo_t) else lo_t + eps
                insufficient = False
            else:
                insufficient = True
        else:
            insufficient = False
        new = evaluate(t)
        if new.f > start.f + c1 * t * gtd or new.f >= bracket[low].f:
            bracket[high] = new   # not low enough: the new high end
            low, high = (0, 1) if bracket[0].f <= bracket[1].f else (1, 0)
            continue
        if abs(new.gtd) <= -c2 * gtd:
            bracket[low] = new
            return new
        if new.gtd * (bracket[high].t - bracket[low].t) >= 0:
            bracket[high] = bracket[low]   # the old low becomes the high end
        bracket[low] = new
    return bracket[low]
