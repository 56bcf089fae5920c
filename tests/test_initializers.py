"""Initializers: the right distributions, deterministic per seed, independent per layer,
and never touching numpy's global RNG."""

import math

import numpy as np
import pytest

import purenet as pn
from purenet.core.initializers import INITIALIZERS, get_initializer
from purenet.core.records import tree_leaves
from purenet.testing import assert_pure, assert_records_equal

FAN_IN, FAN_OUT = 400, 300
# (expected standard deviation of W, half-width of its support or None for a normal)
EXPECTED = {
    "he_normal": (math.sqrt(2 / FAN_IN), None),
    "he_uniform": (math.sqrt(2 / FAN_IN), math.sqrt(6 / FAN_IN)),
    "glorot_normal": (math.sqrt(2 / (FAN_IN + FAN_OUT)), None),
    "glorot_uniform": (math.sqrt(2 / (FAN_IN + FAN_OUT)), math.sqrt(6 / (FAN_IN + FAN_OUT))),
    "tutorial": (0.1, None),
}
ARCH = [
    {"input_dim": 5, "output_dim": 5, "activation": "relu"},
    {"input_dim": 5, "output_dim": 5, "activation": "relu"},
    {"input_dim": 5, "output_dim": 1, "activation": "sigmoid"},
]


def test_every_initializer_is_tested():
    assert sorted(EXPECTED) == sorted(INITIALIZERS)


@pytest.mark.parametrize("name", sorted(INITIALIZERS))
def test_statistics(name):
    W, b = INITIALIZERS[name](np.random.default_rng(0), FAN_IN, FAN_OUT)
    std, limit = EXPECTED[name]
    assert W.shape == (FAN_IN, FAN_OUT) and b.shape == (FAN_OUT,)
    assert W.dtype == b.dtype == np.float64
    # 120 000 draws: the sample mean and std are within a few percent of the truth.
    assert abs(W.mean()) < 0.02 * std
    assert W.std() == pytest.approx(std, rel=0.02)
    if limit is not None:
        assert -limit <= W.min() < -0.99 * limit and 0.99 * limit < W.max() <= limit
    if name == "tutorial":
        assert b.std() == pytest.approx(0.1, rel=0.15)
    else:
        np.testing.assert_array_equal(b, 0.0)


@pytest.mark.parametrize("name", sorted(INITIALIZERS))
def test_deterministic_for_a_seed_and_different_across_seeds(name):
    first = assert_pure(pn.init_params, ARCH, seed=3, init=name)
    assert_records_equal(first, pn.init_params(ARCH, seed=3, init=name))
    other = pn.init_params(ARCH, seed=4, init=name)
    assert not np.array_equal(first.layers[0].W, other.layers[0].W)


@pytest.mark.parametrize("name", sorted(INITIALIZERS))
def test_layers_of_one_shape_draw_different_values(name):
    params = pn.init_params(ARCH, seed=0, init=name)
    assert not np.array_equal(params.layers[0].W, params.layers[1].W)


def test_adding_a_layer_keeps_the_earlier_ones():
    shorter = pn.init_params([ARCH[0], {**ARCH[2]}], seed=7)
    longer = pn.init_params(ARCH, seed=7)
    np.testing.assert_array_equal(shorter.layers[0].W, longer.layers[0].W)


def test_global_rng_untouched():
    np.random.seed(123)
    expected = np.random.random(3)
    np.random.seed(123)
    for name in INITIALIZERS:
        pn.init_params(ARCH, seed=0, init=name)
    np.testing.assert_array_equal(np.random.random(3), expected)


def test_float32_is_the_float64_draw_rounded():
    p64 = pn.init_params(ARCH, seed=5, dtype="float64")
    p32 = pn.init_params(ARCH, seed=5, dtype="float32")
    for a32, a64 in zip(tree_leaves(p32), tree_leaves(p64)):
        assert a32.dtype == np.float32
        np.testing.assert_array_equal(a32, a64.astype(np.float32))


def test_unknown_initializer_and_bad_seed():
    with pytest.raises(ValueError, match=r"unknown initializer 'xavier'; expected one of "
                                         r"\['glorot_normal', "):
        get_initializer("xavier")
    with pytest.raises(TypeError, match="seed must be an integer >= 0, got float 1.5"):
        pn.init_params(ARCH, seed=1.5)
    with pytest.raises(ValueError, match="seed must be an integer >= 0, got -1"):
        pn.init_params(ARCH, seed=-1)
