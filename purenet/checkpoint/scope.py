"""The scope of bit identity, and the record of a run that crossed out of it.

A run's bits are reproducible within one numerics version (``core/numerics.py``), one numpy
build and the SIMD targets it dispatches to on the CPU (``X86_V3 X86_V4 AVX512_ICL``: its exp
and tanh differ in the last bits under AVX-512), and one BLAS library, version and core type
(``machine.environment()['blas']``, e.g. ``openblas 0.3.31.188.0 (Haswell)``). The BLAS
thread count is a setting of the run and is applied again on resume, so it is not part of
the scope. A field a file did not record (numpy's SIMD targets, before 0.3) differs from
every value: nothing can be promised about it. Resuming, rewinding or verifying
under another scope goes on, with one ``CheckpointWarning`` naming what changed; the
checkpoints written afterwards list the step where the run crossed (a ``Crossing``), so a
mixed run is never taken for a bit-exact one.
"""

from __future__ import annotations

import warnings
from typing import Any, Mapping

import attrs

from purenet.checkpoint import machine
from purenet.core import numerics
from purenet.errors import CheckpointWarning

FIELDS = ("numerics", "numpy", "numpy_simd", "blas")


def scope_of(version: int, environment: Mapping[str, Any]) -> dict[str, Any]:
    """The scope a state was computed in: its numerics version and its environment's
    numpy, numpy's SIMD targets and BLAS (None for what the environment does not record)."""
    return {"numerics": version, **{name: environment.get(name) for name in FIELDS[1:]}}


def here() -> dict[str, Any]:
    """The scope this process computes in."""
    return scope_of(numerics.NUMERICS_VERSION, machine.environment())


@attrs.frozen
class Crossing:
    """The run went on from ``step`` under another scope: ``changes`` holds
    ``(field, before, after)`` for each field of ``FIELDS`` that changed."""

    step: int
    changes: tuple[tuple[str, Any, Any], ...]

    def describe(self) -> str:
        """``at step 7: blas openblas ... (Haswell) -> openblas ... (SkylakeX)``."""
        return describe_plain(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """As files and ``--json`` hold it: ``{"step", "changed": {field: [before, after]}}``."""
        return {"step": self.step,
                "changed": {name: [before, after] for name, before, after in self.changes}}


def describe_plain(data: Mapping[str, Any]) -> str:
    """``Crossing.to_dict()``'s form described, as ``Crossing.describe`` does."""
    return f"at step {data['step']}: " + "; ".join(
        f"{name} {_shown(before)} -> {_shown(after)}"
        for name, (before, after) in data["changed"].items())


def _shown(value: Any) -> str:
    return "(not recorded)" if value is None else str(value)


def crossing(step: int, before: Mapping[str, Any], after: Mapping[str, Any]) -> Crossing | None:
    """The crossing from scope ``before`` to ``after`` at ``step``, or None when they agree."""
    changes = tuple((name, before.get(name), after.get(name)) for name in FIELDS
                    if before.get(name) != after.get(name))
    return Crossing(step, changes) if changes else None


def scope_after(scope: Mapping[str, Any], crossings: tuple[Crossing, ...],
                step: int) -> dict[str, Any]:
    """The scope a run computed the steps after ``step`` in, given the scope of its newest
    steps and its crossings: every crossing after ``step`` undone."""
    found = dict(scope)
    for later in reversed(crossings):
        if later.step > step:
            found.update((name, before) for name, before, _ in later.changes)
    return found


def warn(path: str, doing: str, found: Crossing, stacklevel: int = 3) -> None:
    """The one warning for going on under another scope: ``doing`` (``resuming``,
    ``replaying``) ``path`` and what changed."""
    quoted = lambda value: "(not recorded)" if value is None else repr(value)
    changes = "; ".join(f"{name}: saved with {quoted(before)}, now {quoted(after)}"
                        for name, before, after in found.changes)
    warnings.warn(
        f"{doing} {path} under another numerics version, numpy or BLAS ({changes}): the run "
        "goes on, but is bit-identical to an uninterrupted run only within one scope; later "
        f"checkpoints record that it crossed at step {found.step}", CheckpointWarning,
        stacklevel=stacklevel)


def go_on(path: str, doing: str, step: int, then: Mapping[str, Any],
          stacklevel: int = 4) -> Crossing | None:
    """Going on, in this process, from ``path``'s ``step``, whose run computed in scope
    ``then``: the crossing, warned of, when the scopes differ; None when they agree."""
    own = crossing(step, then, here())
    if own is not None:
        warn(path, doing, own, stacklevel=stacklevel + 1)
    return own
