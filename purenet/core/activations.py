"""Activation functions and their derivatives, as a table keyed by name.

Each entry has ``forward(Z) -> A``, ``backward(dA, Z, A) -> dZ``, ``backward_into(dA, Z,
A, workspace)``, the same derivative allowed to overwrite ``dA`` (the kernel passes
gradients it made itself, which saves a full-size temporary per layer and step) and to
take any other temporary from ``workspace.scratch``, and ``forward_into(Z, out)``, the
same forward written into ``out`` (which may be ``Z`` itself for the activations of
``IN_PLACE``), with the same operations in the same order. ``backward`` gets both
the pre-activation ``Z`` and the output ``A`` so that each derivative uses whichever is
cheaper and exact (sigmoid from ``A``, relu from ``Z``). Shapes are (n_samples, units).
All functions are pure: they return new arrays (the ``out=`` forms write only into ``out``)
and keep the input dtype.
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import numpy as np

from purenet.core.registry import Registry, lookup

Array = np.ndarray


class Activation(NamedTuple):
    forward: Callable[[Array], Array]
    backward: Callable[[Array, Array, Array], Array]
    backward_into: Callable[[Array, Array, Array, Any], Array] | None = None   # None: backward
    forward_into: Callable[[Array, Array], Array] | None = None   # None: forward's new array


def identity(Z: Array) -> Array:
    return Z


def identity_backward(dA: Array, Z: Array, A: Array) -> Array:
    return dA


# np.maximum runs its SIMD loop only when both operands are contiguous arrays: against the
# scalar 0 it goes element by element, 2-5x slower (numpy 2.4). So relu takes the maximum
# with a matrix of zeros, a slab of rows at a time; the numbers are the same.
_ZEROS_BLOCK = 1 << 16     # elements: 256 KiB of float32, 512 KiB of float64
_zero_slabs: dict[tuple, Array] = {}    # (rows, width, dtype) -> read-only zeros


def _zero_slab(rows: int, width: int, dtype: np.dtype) -> Array:
    key = (rows, width, dtype)
    slab = _zero_slabs.get(key)
    if slab is None:
        if len(_zero_slabs) >= 64:   # bounded: shapes come and go with batch sizes
            _zero_slabs.clear()
        slab = _zero_slabs[key] = np.zeros((rows, width), dtype)
        slab.setflags(write=False)
    return slab


def relu(Z: Array, out: Array | None = None) -> Array:
    if Z.ndim != 2 or Z.dtype.kind != "f" or not Z.flags.c_contiguous:
        return np.maximum(Z, 0, out=out)
    n, width = Z.shape
    rows = min(n, max(1, _ZEROS_BLOCK // max(width, 1)))
    if rows == n:
        return np.maximum(Z, _zero_slab(n, width, Z.dtype), out=out)
    if out is None:
        out = np.empty_like(Z)
    zeros = _zero_slab(rows, width, Z.dtype)
    for start in range(0, n - rows + 1, rows):
        np.maximum(Z[start:start + rows], zeros, out=out[start:start + rows])
    rest = n % rows
    if rest:
        np.maximum(Z[n - rest:], zeros[:rest], out=out[n - rest:])
    return out


def relu_backward(dA: Array, Z: Array, A: Array) -> Array:
    # The derivative at exactly 0 is taken as 0, as PyTorch and the seed document do.
    # A product with the mask is several times faster than np.where here.
    return dA * (Z > 0)


_BOOL = np.dtype(bool)


def relu_backward_into(dA: Array, Z: Array, A: Array, workspace: Any) -> Array:
    mask = np.greater(Z, 0, out=workspace.scratch("relu mask", Z.shape, _BOOL))
    return np.multiply(dA, mask, out=dA)


LEAKY_SLOPE = 0.01


def leaky_relu(Z: Array) -> Array:
    return np.where(Z > 0, Z, Z * Z.dtype.type(LEAKY_SLOPE))


def leaky_relu_backward(dA: Array, Z: Array, A: Array) -> Array:
    return np.where(Z > 0, dA, dA * dA.dtype.type(LEAKY_SLOPE))


def elu(Z: Array) -> Array:
    # expm1 of min(Z, 0) never overflows and is exact near 0.
    return np.where(Z > 0, Z, np.expm1(np.minimum(Z, 0)))


def elu_backward(dA: Array, Z: Array, A: Array) -> Array:
    return np.where(Z > 0, dA, dA * (A + 1))


def tanh(Z: Array, out: Array | None = None) -> Array:
    return np.tanh(Z, out=out)


def tanh_backward(dA: Array, Z: Array, A: Array) -> Array:
    return dA * (1 - A * A)


def tanh_backward_into(dA: Array, Z: Array, A: Array, workspace: Any) -> Array:
    return np.multiply(dA, 1 - A * A, out=dA)


def sigmoid(Z: Array, out: Array | None = None) -> Array:
    # exp(-|Z|) is at most 1, so this stays finite for any Z; each branch is the
    # form of 1/(1+exp(-Z)) that does not overflow on its side of zero.
    E = np.exp(-np.abs(Z))
    numerator = np.where(Z >= 0, 1, E)   # read from Z before `out` (maybe Z) is written
    return np.divide(numerator, 1 + E, out=out)


def sigmoid_backward(dA: Array, Z: Array, A: Array) -> Array:
    return dA * A * (1 - A)


def sigmoid_backward_into(dA: Array, Z: Array, A: Array, workspace: Any) -> Array:
    np.multiply(dA, A, out=dA)   # the same operations, in the same order, as backward
    return np.multiply(dA, 1 - A, out=dA)


def softmax(Z: Array, out: Array | None = None) -> Array:
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return np.divide(E, E.sum(axis=1, keepdims=True), out=out)


def softmax_backward(dA: Array, Z: Array, A: Array) -> Array:
    # Jacobian-vector product of softmax: A * (dA - <dA, A>) row by row.
    return A * (dA - (dA * A).sum(axis=1, keepdims=True))


_SQRT_HALF = 1 / math.sqrt(2)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)


def _erf(X: Array) -> Array:
    # scipy ships with scikit-learn; imported here so `import purenet` stays light.
    from scipy.special import erf

    return erf(X)


def gelu(Z: Array) -> Array:
    # The exact, erf-based GELU (PyTorch's default, approximate='none').
    return Z * ((1 + _erf(Z * Z.dtype.type(_SQRT_HALF))) / 2)


def gelu_backward(dA: Array, Z: Array, A: Array) -> Array:
    cdf = (1 + _erf(Z * Z.dtype.type(_SQRT_HALF))) / 2
    pdf = np.exp(-(Z * Z) / 2) * Z.dtype.type(_INV_SQRT_2PI)
    return dA * (cdf + Z * pdf)


def softplus(Z: Array) -> Array:
    # log(1 + e^Z) = max(Z, 0) + log1p(e^-|Z|): finite for any Z.
    return np.maximum(Z, 0) + np.log1p(np.exp(-np.abs(Z)))


def softplus_backward(dA: Array, Z: Array, A: Array) -> Array:
    return dA * sigmoid(Z)


def exp(Z: Array) -> Array:
    # scikit-learn's output for the Poisson loss. Capped at log(max float) so that it
    # stays finite where numpy's would overflow (Z > ~709 in float64): equal below that.
    # (One step below the rounded log: float32's rounds up past the largest finite exp.)
    cap = np.nextafter(Z.dtype.type(np.log(np.finfo(Z.dtype).max)), Z.dtype.type(0))
    return np.exp(np.minimum(Z, cap))


def exp_backward(dA: Array, Z: Array, A: Array) -> Array:
    return dA * A


def identity_into(Z: Array, out: Array) -> Array:
    if out is not Z:
        np.copyto(out, Z)
    return out


ACTIVATIONS: Registry[Activation] = Registry("activation", "register_activation", {
    "identity": Activation(identity, identity_backward, None, identity_into),
    "linear": Activation(identity, identity_backward, None, identity_into),
    "relu": Activation(relu, relu_backward, relu_backward_into, relu),
    "leaky_relu": Activation(leaky_relu, leaky_relu_backward),
    "elu": Activation(elu, elu_backward),
    "tanh": Activation(tanh, tanh_backward, tanh_backward_into, tanh),
    "sigmoid": Activation(sigmoid, sigmoid_backward, sigmoid_backward_into, sigmoid),
    "softmax": Activation(softmax, softmax_backward, None, softmax),
    "gelu": Activation(gelu, gelu_backward),
    "softplus": Activation(softplus, softplus_backward),
    "exp": Activation(exp, exp_backward),
})


# Activations whose derivative needs only their output (relu's ``Z > 0`` is ``relu(Z) > 0``,
# NaN included): the engine computes them in place over the pre-activation, which it then
# no longer holds. Every other one keeps its pre-activation.
IN_PLACE = frozenset({"identity", "linear", "relu", "tanh", "sigmoid", "softmax"})


def get_activation(name: str) -> Activation:
    """The table entry for ``name``; a ValueError listing the valid names otherwise."""
    return lookup(ACTIVATIONS, name, "activation")
