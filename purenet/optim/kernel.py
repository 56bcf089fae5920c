"""The optimizers' kernels and the one step that applies them.

An optimizer with a kernel has ``update_into(grads, state, params, out, workspace) -> new
state``: the updates, leaf by leaf in ``tree_leaves`` order, written into ``out`` (arrays
nothing else reads until it returns); every array of the new state taken from
``workspace.exposed``, scratch from ``workspace.scratch``; its arguments never written.
``pure_update`` makes the pure ``update`` of a kernel (fresh arrays); ``optimizer_step``
runs update and ``apply_updates`` as one, in a workspace's arrays.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from purenet.core.records import Dense, Grads, Params, freeze, tree_leaves
from purenet.core.workspace import FRESH, Workspace

if TYPE_CHECKING:   # annotations only: optimizers.py imports this module
    from purenet.optim.optimizers import Optimizer

Array = np.ndarray
UpdateInto = Callable[[Grads, Any, "Params | None", list, Workspace], Any]


def frozen_grads(leaves: list[Array]) -> Grads:
    """A Grads over ``leaves`` (arrays nobody else holds, in ``tree_leaves`` order), frozen
    in place."""
    return Grads(tuple(Dense(freeze(leaves[i]), freeze(leaves[i + 1]))
                       for i in range(0, len(leaves), 2)))


def pure_update(update_into: UpdateInto) -> Callable:
    """The pure ``update`` of a kernel: fresh arrays for the updates and the new state."""
    def update(grads: Grads, state: Any, params: Params | None = None):
        out = [np.empty_like(g) for g in tree_leaves(grads)]
        new_state = update_into(grads, state, params, out, FRESH)
        return frozen_grads(out), new_state

    return update


def optimizer_step(optimizer: Optimizer, grads: Grads, state: Any, params: Params,
                   workspace: Workspace = FRESH) -> tuple[Params, Any]:
    """``update`` then ``apply_updates`` in one: the new parameters and optimizer state,
    their arrays from ``workspace.exposed`` where the optimizer has a kernel (which writes
    the updates straight into the new parameters' arrays; the old parameters are added
    after: ``u + p`` is ``p + u`` bit for bit, IEEE addition commutes)."""
    leaves = tree_leaves(params)
    if optimizer.update_into is None:
        updates, new_state = optimizer.update(grads, state, params)
        out = [np.add(p, u, out=workspace.exposed(p.shape, p.dtype))
               for p, u in zip(leaves, tree_leaves(updates))]
    else:
        out = [workspace.exposed(p.shape, p.dtype) for p in leaves]
        new_state = optimizer.update_into(grads, state, params, out, workspace)
        for u, p in zip(out, leaves):
            u += p
    return Params(frozen_grads(out).layers, params.architecture), new_state
