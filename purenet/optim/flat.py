"""A tree as one flat vector and back: the space L-BFGS works in (``purenet.optim.lbfgs``).

The order is ``tree_leaves``' (W0, b0, W1, b1, ...), each array in C order: PyTorch's
``torch.optim.LBFGS`` flattens a model's parameters the same way, so a network whose
parameters are registered in that order gives the same vectors.
"""

from __future__ import annotations

import numpy as np

from purenet.core.records import Params, freeze, tree_leaves, tree_of

Array = np.ndarray


def flatten(tree) -> Array:
    """The leaves of ``tree`` (Params or Grads) in one new read-only vector."""
    return freeze(np.concatenate([leaf.ravel() for leaf in tree_leaves(tree)]))


def size_of(params: Params) -> int:
    """The length of ``flatten(params)``."""
    return sum(leaf.size for leaf in tree_leaves(params))


def unflatten(vector: Array, like: Params) -> Params:
    """Params shaped like ``like`` whose arrays are read-only views of ``vector``."""
    if vector.shape != (size_of(like),):
        raise ValueError(f"a vector of shape {vector.shape} does not fit parameters of "
                         f"{size_of(like)}; pass the vector flatten() made of these parameters")
    leaves, at = [], 0
    for leaf in tree_leaves(like):
        leaves.append(vector[at:at + leaf.size].reshape(leaf.shape))
        at += leaf.size
    return tree_of(Params, leaves, like.architecture)
