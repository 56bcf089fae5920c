"""The optimizers' state records: one small frozen record per algorithm, rebuilt every step.

A checkpoint may only name these (``purenet.checkpoint.format``), so loading can only ever
build plain records.
"""

from __future__ import annotations

import attrs
import numpy as np

from purenet.core.records import Grads, readonly

# How a checkpoint stores each field of a record that says (attrs metadata "kind"); the
# records without one hold counts, trees and nested records (``purenet.checkpoint``).
KIND = "kind"
COUNT, NUMBER, REASON, VECTOR, ROWS, VALUES = ("count", "number", "reason", "vector", "rows",
                                              "values")


def _kind(kind: str, **more) -> dict:
    return {KIND: kind, **more}


def _vectors(values) -> tuple:
    return tuple(readonly(v) for v in values)


def _floats(values) -> tuple:
    return tuple(float(v) for v in values)


@attrs.frozen
class EmptyState:
    """State of a stateless transform."""


@attrs.frozen(eq=False)
class SgdState:
    count: int


@attrs.frozen(eq=False)
class MomentumState:
    count: int
    trace: Grads


@attrs.frozen(eq=False)
class AdamState:
    count: int
    mu: Grads
    nu: Grads


@attrs.frozen(eq=False)
class RmspropState:
    count: int
    square_avg: Grads


@attrs.frozen(eq=False)
class AdagradState:
    count: int
    sum_of_squares: Grads


@attrs.frozen(eq=False)
class ChainState:
    states: tuple


@attrs.frozen(eq=False)
class LbfgsState:
    """L-BFGS between two iterations (``purenet.optim.lbfgs``): everything the next one
    needs, so a run resumed from it takes the same steps bit for bit. A checkpoint falls
    between iterations, never inside a line search.

    Attributes:
        count: steps taken (``step`` calls; one a training step).
        iterations: iterations run (steps that computed a direction).
        evals: evaluations of the objective so far (scikit-learn's ``max_fun`` counts these).
        loss: the objective at the current parameters (0.0 before the first evaluation).
        grad: (n,) its gradient there, flat in ``tree_leaves`` order (zeros before).
        s: the last pairs' steps ``x_{k+1} - x_k``, oldest first, each (n,).
        y: their gradient changes ``g_{k+1} - g_k``, each (n,).
        rho: ``1 / (y . s)`` of each pair.
        h_diag: the scale of the initial inverse Hessian, ``y.s / y.y`` of the newest pair.
        stopped: why the last step ended the run ("" while it goes on; ``STOP_REASONS``).
    """

    count: int = attrs.field(metadata=_kind(COUNT))
    iterations: int = attrs.field(metadata=_kind(COUNT))
    evals: int = attrs.field(metadata=_kind(COUNT))
    loss: float = attrs.field(converter=float, metadata=_kind(NUMBER))
    grad: np.ndarray = attrs.field(converter=readonly, metadata=_kind(VECTOR))
    s: tuple = attrs.field(converter=_vectors, metadata=_kind(ROWS, like="grad"))
    y: tuple = attrs.field(converter=_vectors, metadata=_kind(ROWS, like="grad"))
    rho: tuple = attrs.field(converter=_floats, metadata=_kind(VALUES))
    h_diag: float = attrs.field(converter=float, metadata=_kind(NUMBER))
    stopped: str = attrs.field(default="", metadata=_kind(REASON))


STATE_RECORDS = {cls.__name__: cls for cls in (
    EmptyState, SgdState, MomentumState, AdamState, RmspropState, AdagradState, ChainState,
    LbfgsState)}
