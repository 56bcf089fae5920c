"""The optimizers' state records: one small frozen record per algorithm, rebuilt every step.

A checkpoint may only name these (``purenet.checkpoint.format``), so loading can only ever
build plain records.
"""

from __future__ import annotations

import attrs

from purenet.core.records import Grads


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


STATE_RECORDS = {cls.__name__: cls for cls in (
    EmptyState, SgdState, MomentumState, AdamState, RmspropState, AdagradState, ChainState)}
