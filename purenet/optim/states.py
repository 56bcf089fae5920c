"""The optimizers' state records: one small frozen record per algorithm, rebuilt every step.

A checkpoint may only name these and the records of registered transforms
(``STATE_RECORDS``), so loading can only ever build plain records; each field is of one of
the ``FIELD_KINDS``, which say how a file holds it.
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from purenet.core.records import Grads
from purenet.core.registry import Registry


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


STATE_RECORDS: Registry[type] = Registry(
    "optimizer state record", "optim.register_transform",
    {cls.__name__: cls for cls in (EmptyState, SgdState, MomentumState, AdamState, RmspropState,
                                   AdagradState, ChainState)},
    (re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}"), "a Python class name of at most 64 characters"))

# A field's type -> how a checkpoint holds it: a counter (a JSON integer >= 0), a number (a
# JSON number), a tree of the parameters' shapes and dtype (arrays), or nested records.
FIELD_KINDS: dict[Any, str] = {int: "counter", float: "number", Grads: "tree",
                               tuple: "records"}


def field_kinds(cls: type) -> dict[str, str]:
    """Each field of the state record ``cls`` and its kind (``FIELD_KINDS``).

    Raises:
        TypeError: a field without one of the types of ``FIELD_KINDS``.
    """
    attrs.resolve_types(cls)
    kinds = {}
    for field in attrs.fields(cls):
        if field.type not in FIELD_KINDS:
            raise TypeError(f"field {field.name!r} of {cls.__name__} is annotated "
                            f"{getattr(field.type, '__name__', field.type)!r}; a state "
                            "record's fields must be int, float or Grads")
        kinds[field.name] = FIELD_KINDS[field.type]
    return kinds
