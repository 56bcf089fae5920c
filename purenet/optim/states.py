"""The optimizers' state records: one small frozen record per algorithm, rebuilt every step.

A checkpoint may only name these and the records of registered transforms
(``STATE_RECORDS``), so loading can only ever build plain records; each field is of one of
the ``FIELD_KINDS``, which say how a file holds it.
"""

from __future__ import annotations

import re
from typing import Any

import attrs
import numpy as np

from purenet.core.records import Grads, readonly
from purenet.core.registry import Registry

# How a checkpoint stores each field of a state record: what its attrs metadata "kind"
# says, or else what its type gives (``FIELD_KINDS``); ``purenet.checkpoint`` reads and
# writes each kind.
KIND = "kind"
COUNT, NUMBER, REASON, VECTOR, ROWS, VALUES, TREE, RECORDS = (
    "count", "number", "reason", "vector", "rows", "values", "tree", "records")


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


STATE_RECORDS: Registry[type] = Registry(
    "optimizer state record", "optim.register_transform",
    {cls.__name__: cls for cls in (EmptyState, SgdState, MomentumState, AdamState, RmspropState,
                                   AdagradState, ChainState, LbfgsState)},
    (re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}"), "a Python class name of at most 64 characters"))

# A field's type -> its kind, for fields whose metadata names none: a counter (a JSON
# integer >= 0), a number (a JSON number), a tree of the parameters' shapes and dtype
# (arrays), or nested records.
FIELD_KINDS: dict[Any, str] = {int: COUNT, float: NUMBER, Grads: TREE, tuple: RECORDS}


def field_kinds(cls: type) -> dict[str, str]:
    """Each field of the state record ``cls`` and its kind.

    Raises:
        TypeError: a field whose metadata names no kind and whose type is none of
            ``FIELD_KINDS``'.
    """
    attrs.resolve_types(cls)
    kinds = {}
    for field in attrs.fields(cls):
        kind = field.metadata.get(KIND, FIELD_KINDS.get(field.type))
        if kind is None:
            raise TypeError(f"field {field.name!r} of {cls.__name__} is annotated "
                            f"{getattr(field.type, '__name__', field.type)!r}; a state "
                            "record's fields must be int, float or Grads")
        kinds[field.name] = kind
    return kinds
