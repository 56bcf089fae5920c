"""purenet: a functional, pure-state NumPy engine for dense neural networks."""

__version__ = "0.1.0"

from purenet.activations import ACTIVATIONS
from purenet.initializers import INITIALIZERS
from purenet.losses import LOSSES
from purenet.network import backward, forward, init_params, loss_and_grads, predict
from purenet.records import (Architecture, Batch, Cache, Dense, Grads, LayerSpec, Params,
                             tree_leaves, tree_map)

__all__ = [
    "ACTIVATIONS", "Architecture", "Batch", "Cache", "Dense", "Grads", "INITIALIZERS",
    "LOSSES", "LayerSpec", "Params", "backward", "forward", "init_params", "loss_and_grads",
    "predict", "tree_leaves", "tree_map",
]
