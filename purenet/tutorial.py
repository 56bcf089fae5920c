"""The seed document's functions, with its signatures and its layout, on top of the engine.

Layout here is the document's, samples as columns: ``X`` is (n_features, n_samples), a
layer's ``W`` is (output_dim, input_dim) and ``b`` is (output_dim, 1), and a layer computes
``Z = W @ A_prev + b``. Parameters are a dict ``{"W1": ..., "b1": ..., ...}`` numbered from 1;
the forward pass keeps ``"A0", "Z1", "A1", ...`` in a memory dict; gradients are
``{"dW1": ..., "db1": ..., ...}``.

The activations and the cost come from the engine's tables (``purenet.core.activations``,
``purenet.core.losses``), which are samples-major; each is handed the transpose, a free view, so
that softmax normalises over the right axis and element-wise functions are unaffected.
Unlike the document, nothing here writes into its arguments or seeds numpy's global RNG.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from purenet.core.activations import get_activation
from purenet.core.losses import bce_value
from purenet.core.records import Architecture, as_architecture

Array = np.ndarray
LayerDicts = Sequence[Mapping[str, Any]] | Architecture
__all__ = [
    "activate", "activate_backward", "cost_gradient", "full_backward_propagation",
    "full_forward_propagation", "get_cost_value", "init_layers", "relu", "relu_backward",
    "sigmoid", "sigmoid_backward", "single_layer_backward_propagation",
    "single_layer_forward_propagation", "train", "update",
]


# The seed document's network: 2 inputs, five relu layers, one sigmoid output.
NN_ARCHITECTURE = [
    {"input_dim": 2, "output_dim": 50, "activation": "relu"},
    {"input_dim": 50, "output_dim": 100, "activation": "relu"},
    {"input_dim": 100, "output_dim": 200, "activation": "relu"},
    {"input_dim": 200, "output_dim": 100, "activation": "relu"},
    {"input_dim": 100, "output_dim": 50, "activation": "relu"},
    {"input_dim": 50, "output_dim": 1, "activation": "sigmoid"},
]


def init_layers(nn_architecture: LayerDicts, seed: int = 99) -> dict[str, Array]:
    """Parameters drawn as the document draws them: ``0.1 * N(0, 1)`` for every W and b.

    A local ``RandomState(seed)`` gives the same numbers as the document's
    ``np.random.seed(seed)`` followed by ``np.random.randn``, without touching the global RNG.

    Args:
        nn_architecture: the list of layer dicts or an Architecture (checked to chain).
        seed: the seed of the RandomState.

    Returns:
        ``{"W1": (output_dim, input_dim), "b1": (output_dim, 1), "W2": ..., ...}``.
    """
    architecture = as_architecture(nn_architecture)
    rng = np.random.RandomState(seed)
    params_values = {}
    for index, layer in enumerate(architecture.layers, start=1):
        params_values[f"W{index}"] = rng.randn(layer.output_dim, layer.input_dim) * 0.1
        params_values[f"b{index}"] = rng.randn(layer.output_dim, 1) * 0.1
    return params_values


def _activations(nn_architecture: LayerDicts) -> list[str]:
    # Only the activations: the document's own forward example has sizes that do not
    # chain, so the list is not validated as an Architecture here.
    if isinstance(nn_architecture, Architecture):
        return [layer.activation for layer in nn_architecture.layers]
    return [layer["activation"] for layer in nn_architecture]


# --- activations, in the document's signatures ----------------------------------------


def activate(Z: Array, activation: str) -> Array:
    """``activation`` applied to ``Z`` (units, n_samples), by the engine's table."""
    return get_activation(activation).forward(Z.T).T


def activate_backward(dA: Array, Z: Array, activation: str) -> Array:
    """dL/dZ from dL/dA for ``activation`` at ``Z`` (units, n_samples)."""
    entry = get_activation(activation)
    # The document passes only Z; the engine's derivatives may want A as well.
    return entry.backward(dA.T, Z.T, entry.forward(Z.T)).T


def sigmoid(Z: Array) -> Array:
    return activate(Z, "sigmoid")


def relu(Z: Array) -> Array:
    return activate(Z, "relu")


def sigmoid_backward(dA: Array, Z: Array) -> Array:
    return activate_backward(dA, Z, "sigmoid")


def relu_backward(dA: Array, Z: Array) -> Array:
    return activate_backward(dA, Z, "relu")


# --- forward ----------------------------------------------------------------------------


def single_layer_forward_propagation(A_prev: Array, W_curr: Array, b_curr: Array,
                                     activation: str = "relu") -> tuple[Array, Array]:
    """One layer: ``Z = W @ A_prev + b``, ``A = activation(Z)``.

    Args:
        A_prev: (input_dim, n_samples).
        W_curr: (output_dim, input_dim).
        b_curr: (output_dim, 1).
        activation: any name in ``purenet.core.activations.ACTIVATIONS``.

    Returns:
        ``(A_curr, Z_curr)``, both (output_dim, n_samples).
    """
    Z_curr = W_curr @ A_prev + b_curr
    return activate(Z_curr, activation), Z_curr


def full_forward_propagation(X: Array, params_values: Mapping[str, Array],
                             nn_architecture: LayerDicts) -> tuple[Array, dict[str, Array]]:
    """Run every layer of the network on ``X``.

    Only each layer's ``"activation"`` is read from ``nn_architecture``; the sizes come from
    the arrays (the document's own example has sizes that do not match its arrays).

    Args:
        X: (n_features, n_samples).
        params_values: ``{"W1": ..., "b1": ..., ...}`` as ``init_layers`` makes.
        nn_architecture: the list of layer dicts, or an Architecture.

    Returns:
        ``(Y_hat, memory)``: the output (output_dim, n_samples) and
        ``{"A0": X, "Z1": ..., "A1": ..., "Z2": ..., ...}`` (each layer's input and Z).
    """
    memory = {}
    A_curr = X
    for index, activation in enumerate(_activations(nn_architecture), start=1):
        memory[f"A{index - 1}"] = A_curr
        A_curr, Z_curr = single_layer_forward_propagation(
            A_curr, params_values[f"W{index}"], params_values[f"b{index}"], activation)
        memory[f"Z{index}"] = Z_curr
    return A_curr, memory


def get_cost_value(Y_hat: Array, Y: Array) -> float:
    """The binary cross-entropy, averaged over samples.

    Args:
        Y_hat: predicted probabilities (1, n_samples).
        Y: labels 0 or 1, (1, n_samples) or (n_samples,).
    """
    return bce_value(Y_hat, np.reshape(Y, Y_hat.shape))


# --- backward ---------------------------------------------------------------------------


def single_layer_backward_propagation(dA_curr: Array, W_curr: Array, b_curr: Array,
                                      Z_curr: Array, A_prev: Array, activation: str = "relu"
                                      ) -> tuple[Array, Array, Array]:
    """Gradients of one layer, for a cost that averages over the samples.

    Args:
        dA_curr: d(summed cost)/dA of this layer's output, (output_dim, n_samples).
        W_curr: (output_dim, input_dim).
        b_curr: (output_dim, 1); unused, kept for the document's signature.
        Z_curr: this layer's pre-activation, (output_dim, n_samples).
        A_prev: this layer's input, (input_dim, n_samples).
        activation: the layer's activation name.

    Returns:
        ``(dA_prev, dW_curr, db_curr)`` shaped like ``A_prev``, ``W_curr`` and ``b_curr``.
    """
    m = A_prev.shape[1]
    dZ_curr = activate_backward(dA_curr, Z_curr, activation)
    dW_curr = dZ_curr @ A_prev.T / m
    db_curr = dZ_curr.sum(axis=1, keepdims=True) / m
    dA_prev = W_curr.T @ dZ_curr
    return dA_prev, dW_curr, db_curr


def cost_gradient(Y_hat: Array, Y: Array) -> Array:
    """d/dY_hat of the cross-entropy summed over samples, unclipped as the document has it.

    ``purenet.core.losses.bce_gradient`` clips Y_hat into (0, 1) first, which a sigmoid output
    always is; the document's own example feeds a Y_hat outside (0, 1), so its numbers only
    reproduce without the clip.
    """
    return -(Y / Y_hat - (1 - Y) / (1 - Y_hat))


def full_backward_propagation(Y_hat: Array, Y: Array, memory: Mapping[str, Array],
                              params_values: Mapping[str, Array], nn_architecture: LayerDicts
                              ) -> dict[str, Array]:
    """Gradients of ``get_cost_value`` with respect to every W and b.

    Args:
        Y_hat: the network's output (1, n_samples).
        Y: labels 0 or 1, (1, n_samples) or (n_samples,).
        memory: the memory ``full_forward_propagation`` returned.
        params_values: the parameters the forward pass ran with.
        nn_architecture: the list of layer dicts, or an Architecture.

    Returns:
        ``{"dW1": ..., "db1": ..., ...}`` shaped like the parameters.
    """
    grads_values = {}
    activations = _activations(nn_architecture)
    dA_prev = cost_gradient(Y_hat, np.reshape(Y, Y_hat.shape))
    for index in range(len(activations), 0, -1):
        dA_prev, dW_curr, db_curr = single_layer_backward_propagation(
            dA_prev, params_values[f"W{index}"], params_values[f"b{index}"],
            memory[f"Z{index}"], memory[f"A{index - 1}"], activations[index - 1])
        grads_values[f"dW{index}"] = dW_curr
        grads_values[f"db{index}"] = db_curr
    return grads_values


def update(params_values: Mapping[str, Array], grads_values: Mapping[str, Array],
           nn_architecture: LayerDicts, learning_rate: float) -> dict[str, Array]:
    """One step of gradient descent, ``W - learning_rate * dW``, as a new dict.

    The inputs are left as they were (the document subtracted in place).
    """
    new_values = dict(params_values)
    for index in range(1, len(_activations(nn_architecture)) + 1):
        for name in (f"W{index}", f"b{index}"):
            new_values[name] = params_values[name] - learning_rate * grads_values[f"d{name}"]
    return new_values


def train(X: Array, Y: Array, nn_architecture: LayerDicts, epochs: int, learning_rate: float,
          seed: int = 2, verbose: bool = False, print_every: int = 200
          ) -> tuple[dict[str, Array], list[float]]:
    """Full-batch gradient descent from ``init_layers(nn_architecture, seed)``.

    Args:
        X: (n_features, n_samples).
        Y: labels 0 or 1, (1, n_samples) or (n_samples,).
        nn_architecture: the list of layer dicts (or an Architecture), ending in one
            sigmoid unit.
        epochs: the number of gradient steps (each one over the whole of ``X``).
        learning_rate: the step size.
        seed: the initialisation seed; 2 is the document's.
        verbose: print the cost every ``print_every`` steps, as the document does.
        print_every: the printing interval, in steps.

    Returns:
        ``(params_values, costs)``: the trained parameters and the cost before each step.

    Like the document, the output gradient divides by ``Y_hat`` and ``1 - Y_hat``: an output
    saturated to exactly 0 or 1 (``|Z| > 37`` in float64) would give inf or NaN. The engine's
    own training avoids that with the fused gradient ``Y_hat - Y``.
    """
    params_values = init_layers(nn_architecture, seed)
    costs = []
    for i in range(epochs):
        Y_hat, memory = full_forward_propagation(X, params_values, nn_architecture)
        cost = get_cost_value(Y_hat, Y)
        costs.append(cost)
        if verbose and i % print_every == 0:
            print(f"Iteration: {i:5d} - cost: {cost:.5f}")
        grads_values = full_backward_propagation(Y_hat, Y, memory, params_values,
                                                 nn_architecture)
        params_values = update(params_values, grads_values, nn_architecture, learning_rate)
    return params_values, costs
