"""The optimizer record and the kernel protocol, which every algorithm and the step that
applies them share (``optimizers``, ``kernel``, ``plain``, ``registration``).

An optimizer with a kernel has ``update_into(grads, state, params, out, trees) -> new
state``: the updates written into ``out``, arrays nothing else reads until it returns, one
per entry of ``trees.leaves(...)`` (``purenet.core.workspace.Trees``: the leaves one by
one, or each tree as one flat array when the engine made them all so); every tree of the
new state from ``trees.new``, scratch from ``trees.scratch``; its arguments never written.
Every operation is elementwise, so the numbers are the same either way. ``pure_update``
makes the pure ``update`` of a kernel (fresh arrays).
"""

from __future__ import annotations

from typing import Any, Callable

import attrs

from purenet.core.records import Grads, Params
from purenet.core.workspace import FRESH, Trees

UpdateInto = Callable[[Grads, Any, "Params | None", list, Trees], Any]


@attrs.frozen(eq=False)
class Optimizer:
    """A named pair of pure functions, with the hyperparameters that made it.

    Attributes:
        name: the algorithm ("adam", "chain", ...).
        hyperparams: plain data (floats, schedule configs, nested configs), stored in
            checkpoints and compared on resume.
        init: ``params -> state``.
        update: ``(grads, state, params) -> (updates, state)``.
        update_into: the kernel ``update`` is made of, writing into given arrays
            (``purenet.optim.kernel``); None for an optimizer without one (``fit`` then
            calls ``update``).
    """

    name: str
    hyperparams: dict[str, Any]
    init: Callable[[Params], Any]
    update: Callable[[Grads, Any, Params | None], tuple[Grads, Any]]
    update_into: UpdateInto | None = None

    def config(self) -> dict[str, Any]:
        """The optimizer as plain data: ``purenet.optim.plain.to_config``, whose inverse
        is ``from_config``."""
        from purenet.optim.plain import to_config   # plain reads the tables of optimizers

        return to_config(self)


def pure_update(update_into: UpdateInto) -> Callable:
    """The pure ``update`` of a kernel: fresh arrays for the updates and the new state."""
    def update(grads: Grads, state: Any, params: Params | None = None):
        trees = Trees(FRESH)
        updates, out = trees.new(grads)
        new_state = update_into(grads, state, params, out, trees)
        return updates.record(), new_state

    return update
