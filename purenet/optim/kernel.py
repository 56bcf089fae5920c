"""The optimizers' kernels and the one step that applies them.

An optimizer with a kernel has ``update_into(grads, state, params, out, trees) -> new
state``: the updates written into ``out``, arrays nothing else reads until it returns, one
per entry of ``trees.leaves(...)`` (``purenet.core.workspace.Trees``: the leaves one by
one, or each tree as one flat array when the engine made them all so); every tree of the
new state from ``trees.new``, scratch from ``trees.scratch``; its arguments never written.
Every operation is elementwise, so the numbers are the same either way. ``pure_update``
makes the pure ``update`` of a kernel (fresh arrays); ``optimizer_step`` runs update and
``apply_updates`` as one, in a workspace's arrays.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from purenet.core.records import Grads, Params, tree_leaves
from purenet.core.workspace import FRESH, Trees, Workspace, state_trees

if TYPE_CHECKING:   # annotations only: optimizers.py imports this module
    from purenet.optim.optimizers import Optimizer

Array = np.ndarray
UpdateInto = Callable[[Grads, Any, "Params | None", list, Trees], Any]


def pure_update(update_into: UpdateInto) -> Callable:
    """The pure ``update`` of a kernel: fresh arrays for the updates and the new state."""
    def update(grads: Grads, state: Any, params: Params | None = None):
        trees = Trees(FRESH)
        updates, out = trees.new(grads)
        new_state = update_into(grads, state, params, out, trees)
        return updates.record(), new_state

    return update


def optimizer_step(optimizer: Optimizer, grads: Grads, state: Any, params: Params,
                   workspace: Workspace = FRESH) -> tuple[Params, Any]:
    """``update`` then ``apply_updates`` in one: the new parameters and optimizer state,
    in ``workspace``'s trees where the optimizer has a kernel (which writes the updates
    straight into the new parameters' arrays; the old parameters are added after:
    ``u + p`` is ``p + u`` bit for bit, IEEE addition commutes)."""
    if optimizer.update_into is None:
        updates, new_state = optimizer.update(grads, state, params)
        new = workspace.tree(params, Params)
        for out, p, u in zip(new.leaves, tree_leaves(params), tree_leaves(updates)):
            np.add(p, u, out=out)
        return new.record(), new_state
    trees = Trees(workspace, grads, params, *state_trees(state))
    new, out = trees.new(params, Params)
    new_state = optimizer.update_into(grads, state, params, out, trees)
    for u, p in zip(out, trees.leaves(params)):
        u += p
    return new.record(), new_state
