"""Weight initializers as a table: ``(rng, fan_in, fan_out) -> (W, b)`` in float64.

The network casts the result to its dtype, so float32 and float64 parameters made from one
seed hold the same values up to rounding. Normal initializers use the plain (not
truncated) normal, as PyTorch's ``kaiming_normal_`` and ``xavier_normal_`` do.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from purenet.core.registry import Registry, lookup

Array = np.ndarray
# A string, so that numpy.random (27 ms to import) loads with the first draw, not with purenet.
Initializer = Callable[["np.random.Generator", int, int], tuple[Array, Array]]


def _zeros_bias(draw_W: Callable[["np.random.Generator", int, int], Array]) -> Initializer:
    def init(rng: np.random.Generator, fan_in: int, fan_out: int) -> tuple[Array, Array]:
        return draw_W(rng, fan_in, fan_out), np.zeros(fan_out)

    init.__name__ = draw_W.__name__
    init.__doc__ = draw_W.__doc__
    return init


@_zeros_bias
def he_normal(rng: np.random.Generator, fan_in: int, fan_out: int) -> Array:
    """N(0, 2 / fan_in): keeps the variance of relu activations from layer to layer."""
    return rng.standard_normal((fan_in, fan_out)) * math.sqrt(2 / fan_in)


@_zeros_bias
def he_uniform(rng: np.random.Generator, fan_in: int, fan_out: int) -> Array:
    """U(-sqrt(6 / fan_in), sqrt(6 / fan_in))."""
    limit = math.sqrt(6 / fan_in)
    return rng.uniform(-limit, limit, (fan_in, fan_out))


@_zeros_bias
def glorot_normal(rng: np.random.Generator, fan_in: int, fan_out: int) -> Array:
    """N(0, 2 / (fan_in + fan_out)): for tanh and sigmoid layers."""
    return rng.standard_normal((fan_in, fan_out)) * math.sqrt(2 / (fan_in + fan_out))


@_zeros_bias
def glorot_uniform(rng: np.random.Generator, fan_in: int, fan_out: int) -> Array:
    """U(-sqrt(6 / (fan_in + fan_out)), sqrt(6 / (fan_in + fan_out))), Keras's default."""
    limit = math.sqrt(6 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, (fan_in, fan_out))


def tutorial(rng: np.random.Generator, fan_in: int, fan_out: int) -> tuple[Array, Array]:
    """0.1 x N(0, 1) for W and b alike, as the seed document initialises."""
    return rng.standard_normal((fan_in, fan_out)) * 0.1, rng.standard_normal(fan_out) * 0.1


INITIALIZERS: Registry[Initializer] = Registry("initializer", "register_initializer", {
    "he_normal": he_normal,
    "he_uniform": he_uniform,
    "glorot_normal": glorot_normal,
    "glorot_uniform": glorot_uniform,
    "tutorial": tutorial,
})


def get_initializer(name: str) -> Initializer:
    """The table entry for ``name``; a ValueError listing the valid names otherwise."""
    return lookup(INITIALIZERS, name, "initializer")
