"""The one step that applies an optimizer: ``optimizer_step`` runs ``update`` and
``apply_updates`` as one, in a workspace's arrays, through the optimizer's kernel where it
has one (the protocol is in ``purenet.optim.base``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from purenet.core.records import Grads, Params, tree_leaves
from purenet.core.workspace import FRESH, Trees, Workspace, state_trees

from purenet.optim.base import Optimizer


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
