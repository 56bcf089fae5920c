"""The pure maths of a dense network: init, forward, backward, loss and gradients, predict.

Layout: samples-major. ``x`` is (n_samples, n_features), ``W`` is (input_dim, output_dim)
and a layer computes ``Z = A_prev @ W + b``; so the bias broadcasts along contiguous rows and
the batch is the leading (contiguous) axis, which gathering minibatches keeps cheap.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import numpy as np

from purenet.core.activations import ACTIVATIONS, IN_PLACE, identity
from purenet.core.initializers import get_initializer
from purenet.core.losses import FUSED, LOSSES, Weights, normalised_weights, resolve_loss
from purenet.core.records import (Architecture, Batch, Cache, Dense, Grads, Params, as_architecture,
                                  check_dtype, freeze)
from purenet.core.rng import check_seed, derive
from purenet.core.sparse import product, transposed_product
from purenet.core.validate import check_targets, check_x
from purenet.core.workspace import FRESH, Workspace

Array = np.ndarray
DropoutKey = tuple[int, int]    # (seed, step): masks come from (seed, "dropout", step, layer)


def init_params(architecture: Architecture | Sequence[dict], seed: int = 0,
                init: str = "he_normal", dtype: Any = "float64") -> Params:
    """Fresh parameters for ``architecture``.

    Layer ``i`` draws from ``(seed, "init", i)`` alone, so adding a layer leaves the
    layers before it unchanged.

    Args:
        architecture: an Architecture or the tutorial's list of layer dicts.
        seed: a non-negative int.
        init: a name from ``purenet.core.initializers.INITIALIZERS``.
        dtype: "float32" or "float64".
    """
    architecture = as_architecture(architecture)
    initializer = get_initializer(init)
    dtype = check_dtype(dtype)
    seed = check_seed(seed)
    layers = []
    for i, spec in enumerate(architecture.layers):
        W, b = initializer(derive(seed, "init", i), spec.input_dim, spec.output_dim)
        layers.append(Dense(W.astype(dtype), b.astype(dtype)))
    return Params(tuple(layers), architecture)


def _dropout_mask(key: DropoutKey, layer: int, rate: float, shape: tuple[int, int],
                  dtype: np.dtype, workspace: Workspace = FRESH) -> Array:
    # Inverted dropout: kept units are scaled by 1/keep so predict needs no rescaling.
    keep = 1 - rate
    draws = workspace.scratch(("draws", layer), shape, np.dtype(np.float64))
    derive(key[0], "dropout", key[1], layer).random(shape, dtype=np.float64, out=draws)
    kept = np.less(draws, keep, out=workspace.scratch(("kept", layer), shape, np.dtype(bool)))
    return np.multiply(kept, dtype.type(1 / keep),
                       out=workspace.scratch(("mask", layer), shape, dtype))


class Trace(NamedTuple):
    """The engine's Cache: the same fields, over its own (writeable, reused) arrays."""

    inputs: list
    pre_activations: list
    outputs: list
    masks: list


def _forward(params: Params, x: Array, dropout_key: DropoutKey | None = None,
             workspace: Workspace = FRESH) -> tuple[Array, Cache | Trace]:
    """``forward`` on a validated ``x``, every array from ``workspace``.

    Bias and activation are applied in place on the product's output; with an in-place
    workspace, an ``IN_PLACE`` activation of a hidden layer also overwrites its
    pre-activation (its derivative reads the output), so Z and A of that layer are one
    array. The output layer keeps both: the fused losses take their value from Z."""
    inputs, pre_activations, outputs, masks = [], [], [], []
    A = x
    n, dtype = len(x), params.dtype
    last = len(params.layers) - 1
    for i, (spec, layer) in enumerate(zip(params.architecture.layers, params.layers)):
        inputs.append(A)
        shape = (n, spec.output_dim)
        Z = product(A, layer.W, workspace.scratch(("Z", i), shape, dtype))
        Z += layer.b
        activation = ACTIVATIONS[spec.activation]
        if activation.forward is identity:
            A = Z
        elif activation.forward_into is None:
            A = activation.forward(Z)
        elif workspace.in_place and spec.activation in IN_PLACE and i < last:
            A = activation.forward_into(Z, Z)
        else:
            A = activation.forward_into(Z, workspace.scratch(("A", i), shape, dtype))
        pre_activations.append(Z)
        outputs.append(A)
        mask = None
        if spec.dropout and dropout_key is not None:
            mask = _dropout_mask(dropout_key, i, spec.dropout, shape, dtype, workspace)
            A = np.multiply(A, mask, out=workspace.scratch(("dropped", i), shape, dtype))
        masks.append(mask)
    if workspace.reuses:
        return A, Trace(inputs, pre_activations, outputs, masks)
    # The engine's own arrays are frozen in place; the caller's input and the output it
    # receives (shared by Z and A for an identity output) stay writeable for the caller,
    # and the Cache stores read-only views of them.
    for arrays, first, end in ((inputs, 1, None), (pre_activations, 0, -1), (outputs, 0, -1),
                               (masks, 0, None)):
        for array in arrays[first:end]:
            if array is not None and array is not x:
                freeze(array)
    return A, Cache(inputs, pre_activations, outputs, masks)


def forward(params: Params, x: Any, dropout_key: DropoutKey | None = None
            ) -> tuple[Array, Cache]:
    """Run the network on ``x``.

    Args:
        params: the network's parameters.
        x: (n_samples, n_features); cast to the parameters' dtype.
        dropout_key: ``(seed, step)`` to apply training-time dropout; None turns it off.

    Returns:
        ``(y_hat, cache)``: the output (n_samples, output_dim) and what backward needs.
    """
    return _forward(params, check_x(x, params.architecture, params.dtype), dropout_key)


def predict(params: Params, x: Any) -> Array:
    """The network's output for ``x`` (probabilities for sigmoid and softmax outputs),
    without dropout."""
    return forward(params, x)[0]


def output_gradient(loss: str, activation: str, Z: Array, A: Array, y: Array,
                    weights: Weights = None) -> Array:
    """dL/dZ of the output layer: fused and exact where the pair allows, else chained;
    with per-sample ``weights``, row ``i`` scaled by ``weights[i]``."""
    fused = FUSED.get((loss, activation))
    if fused is not None:
        dZ = fused.gradient(Z, A, y)
    else:
        dZ = ACTIVATIONS[activation].backward(LOSSES[loss].gradient(A, y), Z, A)
    # Each sample's loss enters the weighted mean linearly, so its gradient row scales.
    return dZ if weights is None else dZ * weights[:, None]


def loss_value(loss: str, activation: str, Z: Array, A: Array, y: Array,
               weights: Weights = None) -> float:
    """The mean loss of the output layer (weighted by ``weights`` when given), from the
    logits where the pair allows."""
    fused = FUSED.get((loss, activation))
    if fused is not None:
        return fused.value(Z, y, weights)
    return LOSSES[loss].value(A, y, weights)


def _backward(params: Params, cache: Cache | Trace, y: Array, loss: str, l2: float = 0.0,
              weights: Weights = None, workspace: Workspace = FRESH) -> Grads:
    """``backward`` on a validated ``y`` (already in the loss's form); the gradients are
    a ``workspace.tree``, everything else ``workspace.scratch``."""
    specs = params.architecture.layers
    last = len(specs) - 1
    dZ = output_gradient(loss, specs[last].activation, cache.pre_activations[last],
                         cache.outputs[last], y, weights)
    dtype = params.dtype
    new = workspace.tree(params)
    out = new.leaves
    for i in range(last, -1, -1):
        W = params.layers[i].W
        dW = transposed_product(cache.inputs[i], dZ, out[2 * i])
        if l2:
            dW += np.multiply(W, W.dtype.type(l2), out=workspace.scratch(("l2", i), W.shape, dtype))
        # add.reduce is what dZ.sum(axis=0) runs, without its Python wrapper.
        np.add.reduce(dZ, axis=0, out=out[2 * i + 1])
        if i == 0:
            break   # the gradient of the input data is never needed
        # Through a one-unit layer the product is an outer product: broadcasting gives the
        # same numbers as BLAS without its per-call cost.
        dA = workspace.scratch(("dA", i - 1), (len(dZ), W.shape[0]), dtype)
        if W.shape[1] == 1:
            np.multiply(dZ, W.T, out=dA)
        else:
            np.matmul(dZ, W.T, out=dA)
        if cache.masks[i - 1] is not None:
            dA *= cache.masks[i - 1]
        activation = ACTIVATIONS[specs[i - 1].activation]
        # dA was made just above, so the derivative may overwrite it.
        Z, A = cache.pre_activations[i - 1], cache.outputs[i - 1]
        dZ = (activation.backward(dA, Z, A) if activation.backward_into is None else
              activation.backward_into(dA, Z, A, workspace))
    return new.record()


def backward(params: Params, cache: Cache, y: Any, loss: str | None = None) -> Grads:
    """Gradients of the mean loss with respect to every W and b.

    Args:
        params: the parameters ``forward`` ran with.
        cache: the cache ``forward`` returned.
        y: targets for the samples of the cache (see ``purenet.core.losses`` for the forms).
        loss: a name from ``purenet.core.losses.LOSSES``; None infers it from the output.
    """
    arch = params.architecture
    loss = resolve_loss(loss, arch.output_activation)
    y = check_targets(y, cache.inputs[0].shape[0], loss, arch, params.dtype)
    return _backward(params, cache, y, loss)


def l2_penalty(params: Params, l2: float) -> float:
    """``l2 / 2 * sum(W**2)`` over the weights (not the biases): its gradient is ``l2 * W``,
    PyTorch's ``weight_decay``."""
    if not l2:
        return 0.0
    return l2 / 2 * sum(float(np.vdot(layer.W, layer.W)) for layer in params.layers)


class Objective(NamedTuple):
    """What one evaluation of the training objective gives."""

    value: float            # the mean loss plus the L2 penalty
    outputs: Array          # the network's output (n_samples, output_dim), dropout applied
    grads: Grads | None     # the gradients of ``value``; None when not asked for


def objective(params: Params, x: Array, y: Array, loss: str, l2: float = 0.0,
              dropout_key: DropoutKey | None = None, grads: bool = True,
              weights: Weights = None, workspace: Workspace = FRESH) -> Objective:
    """The one kernel behind ``loss_and_grads``, ``train_step``, ``evaluate`` and ``fit``'s
    step engine: forward, the loss value and, with ``grads``, backward, on arrays already
    validated (``x`` by ``check_x``, ``y`` by ``check_targets`` for ``loss``, ``weights`` by
    ``losses.normalised_weights``: (n_samples,) in the parameters' dtype). With
    ``weights``, the loss is the mean of ``weights[i] * loss[i]``.

    ``workspace`` gives every array the kernel writes: ``FRESH`` (the pure functions) new
    ones, an engine's ``Pool`` its own, reused; the numbers are the same bit for bit. With
    a Pool, ``outputs`` is the engine's buffer, overwritten by its next step."""
    A, cache = _forward(params, x, dropout_key, workspace)
    last = len(params.layers) - 1
    value = loss_value(loss, params.architecture.output_activation,
                       cache.pre_activations[last], cache.outputs[last], y, weights) \
        + l2_penalty(params, l2)
    if not grads:
        return Objective(value, A, None)
    # The pure path calls _backward exactly as before (tests patch it by that signature).
    gradients = (_backward(params, cache, y, loss, l2, weights) if workspace is FRESH else
                 _backward(params, cache, y, loss, l2, weights, workspace))
    return Objective(value, A, gradients)


def loss_and_grads(params: Params, batch: Batch, loss: str | None = None, l2: float = 0.0,
                   dropout_key: DropoutKey | None = None, sample_weight: Any = None
                   ) -> tuple[float, Grads]:
    """The pure function ``(params, batch) -> (loss, grads)``.

    Args:
        params: the network's parameters.
        batch: ``Batch(x, y)``.
        loss: a loss name; None infers it from the output activation.
        l2: the L2 penalty coefficient (see ``l2_penalty``).
        dropout_key: ``(seed, step)`` for training-time dropout; None turns it off.
        sample_weight: (n_samples,) non-negative weights, not all zero: the loss becomes
            the weighted mean ``sum(w * loss) / sum(w)``; None weighs samples equally.

    Returns:
        ``(loss, grads)``: the mean loss (plus penalty) as a float, and its gradients.
    """
    arch = params.architecture
    loss = resolve_loss(loss, arch.output_activation)
    x = check_x(batch.x, arch, params.dtype)
    y = check_targets(batch.y, x.shape[0], loss, arch, params.dtype)
    weights = normalised_weights(sample_weight, x.shape[0], params.dtype)
    value, _, grads = objective(params, x, y, loss, l2, dropout_key, weights=weights)
    return value, grads
