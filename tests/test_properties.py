"""Properties of purenet's core, driven by its own strategies (purenet.testing.strategies):
shapes of forward and backward, purity, save -> load -> equal, resume == uninterrupted."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import purenet as pn
from purenet.checkpoint.format import read_checkpoint, write_checkpoint
from purenet.testing import (assert_dtype, assert_pure, assert_records_equal,
                             assert_resumes_exactly, assert_shape)
from purenet.testing import strategies as pst

SOME = settings(max_examples=25, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=20, deadline=None, derandomize=True,
               suppress_health_check=[HealthCheck.too_slow])


@SOME
@given(pst.problems())
def test_forward_and_backward_keep_the_shapes_and_dtype_of_the_network(problem):
    params, batch = problem
    y_hat, cache = pn.forward(params, batch.x)
    arch = params.architecture
    assert_shape(y_hat, (len(batch.x), arch.output_dim))
    grads = pn.backward(params, cache, batch.y)
    for layer, spec in zip(grads.layers, arch.layers):
        assert_shape(layer.W, (spec.input_dim, spec.output_dim))
        assert_shape(layer.b, (spec.output_dim,))
    assert_dtype(grads, params.dtype)


@SOME
@given(pst.problems())
def test_loss_and_grads_is_pure(problem):
    params, batch = problem
    loss, grads = assert_pure(pn.loss_and_grads, params, batch)
    assert np.isfinite(loss)


@FEW
@given(pst.run_configs(), st.integers(0, 2**16))
def test_a_state_saved_and_loaded_is_the_same_state(config, data_seed):
    x, y = _data(config, data_seed)
    state = pn.fit(config, x, y, max_steps=3, progress=False).state
    with tempfile.TemporaryDirectory() as directory:
        path = write_checkpoint(os.path.join(directory, f"step-{state.step:08d}.h5"), state,
                                config)
        loaded = read_checkpoint(path)
    assert_records_equal(loaded.state, state)
    assert loaded.config.to_dict() == config.to_dict()


@FEW
@given(pst.run_configs(), st.integers(0, 2**16), st.integers(1, 6))
def test_a_run_resumed_after_any_step_equals_the_uninterrupted_one(config, data_seed, at):
    x, y = _data(config, data_seed)
    assert_resumes_exactly(config, x, y, at)


def _data(config, seed):
    """Inputs and targets for ``config``'s network: 12 samples of its output's kind."""
    arch = config.architecture
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(12, arch.input_dim))
    if arch.output_activation == "softmax":
        y = rng.integers(0, arch.output_dim, 12)
        y[:arch.output_dim] = np.arange(arch.output_dim)   # every class present
    elif arch.output_activation == "sigmoid":
        y = rng.integers(0, 2, (12, arch.output_dim))
    else:
        y = rng.normal(size=(12, arch.output_dim))
    return x, y
