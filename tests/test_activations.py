"""Activations: values and derivatives against PyTorch and finite differences, stability
at extreme inputs, dtypes kept, inputs untouched."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from purenet.core.activations import ACTIVATIONS, get_activation
from purenet.testing import assert_pure

NAMES = sorted(ACTIVATIONS)
# Points on both sides of every kink, the kinks themselves, and the saturated tails.
Z_POINTS = np.array([[-30.0, -3.0, -1.0, -0.5, -1e-3, 0.0],
                     [1e-3, 0.25, 0.5, 1.0, 3.0, 30.0]])


def torch_function(name):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    return {
        "identity": lambda z: z, "linear": lambda z: z, "relu": F.relu,
        "leaky_relu": lambda z: F.leaky_relu(z, negative_slope=0.01),
        "elu": lambda z: F.elu(z, alpha=1.0), "tanh": torch.tanh, "sigmoid": torch.sigmoid,
        "softmax": lambda z: F.softmax(z, dim=1), "gelu": lambda z: F.gelu(z),
            "exp": torch.exp,
        # PyTorch returns z itself past threshold=20; a larger one keeps its exact form.
        "softplus": lambda z: F.softplus(z, threshold=1e4),
    }[name]


def forward_and_grad_torch(name, Z, dA):
    torch = pytest.importorskip("torch")
    z = torch.tensor(Z, requires_grad=True)
    a = torch_function(name)(z)
    a.backward(torch.tensor(dA))
    return a.detach().numpy(), z.grad.numpy()


@pytest.mark.parametrize("name", NAMES)
def test_forward_and_backward_match_pytorch(name):
    dA = np.random.default_rng(0).normal(size=Z_POINTS.shape)
    expected_A, expected_dZ = forward_and_grad_torch(name, Z_POINTS, dA)
    act = ACTIVATIONS[name]
    A = act.forward(Z_POINTS)
    np.testing.assert_allclose(A, expected_A, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(act.backward(dA, Z_POINTS, A), expected_dZ, rtol=1e-12,
                               atol=1e-15)


@pytest.mark.parametrize("name", NAMES)
def test_float32_matches_pytorch_in_float64(name):
    # The reference is float64: PyTorch's own float32 GELU is off by 1e-4 at z = -3.
    Z = Z_POINTS.astype(np.float32)
    dA = np.ones_like(Z)
    expected_A, expected_dZ = forward_and_grad_torch(name, Z.astype(np.float64),
                                                     dA.astype(np.float64))
    act = ACTIVATIONS[name]
    A = act.forward(Z)
    np.testing.assert_allclose(A, expected_A, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(act.backward(dA, Z, A), expected_dZ, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", NAMES)
def test_derivative_matches_finite_differences(name):
    rng = np.random.default_rng(1)
    # Kept at least 0.05 from 0 so that no difference quotient straddles a kink.
    Z = rng.uniform(0.05, 3.0, size=(4, 5)) * rng.choice([-1.0, 1.0], size=(4, 5))
    dA = rng.normal(size=Z.shape)
    act = ACTIVATIONS[name]
    analytic = act.backward(dA, Z, act.forward(Z))
    # d/dZ of sum(dA * f(Z)), entry by entry: softmax's rows couple, the others do not.
    numeric = np.empty_like(Z)
    h = 1e-6
    for index in np.ndindex(Z.shape):
        up, down = Z.copy(), Z.copy()
        up[index] += h
        down[index] -= h
        numeric[index] = np.sum(dA * (act.forward(up) - act.forward(down))) / (2 * h)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", NAMES)
def test_finite_without_warnings_at_extreme_inputs(name, dtype):
    Z = np.array([[-1e4, -50.0, 0.0, 50.0, 1e4], [1e4, 1e4, -1e4, -1e4, 0.0]], dtype=dtype)
    act = ACTIVATIONS[name]
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        A = act.forward(Z)
        dZ = act.backward(np.ones_like(Z), Z, A)
    assert np.isfinite(A).all() and np.isfinite(dZ).all()
    assert A.dtype == dZ.dtype == dtype


def test_saturated_values_are_exact():
    Z = np.array([[-1e4, 1e4]])
    np.testing.assert_array_equal(ACTIVATIONS["sigmoid"].forward(Z), [[0.0, 1.0]])
    np.testing.assert_array_equal(ACTIVATIONS["softplus"].forward(Z), [[0.0, 1e4]])
    np.testing.assert_array_equal(ACTIVATIONS["softmax"].forward(Z), [[0.0, 1.0]])


@pytest.mark.parametrize("name", NAMES)
def test_pure_and_dtype_kept(name):
    act = ACTIVATIONS[name]
    Z = Z_POINTS.astype(np.float32)
    A = assert_pure(act.forward, Z)
    dZ = assert_pure(act.backward, np.ones_like(Z), Z, A)
    assert A.dtype == dZ.dtype == np.float32
    assert A.shape == dZ.shape == Z.shape


@settings(max_examples=50, deadline=None)
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, max_side=6),
                  elements=st.floats(-1e4, 1e4)))
def test_softmax_rows_are_distributions(Z):
    A = ACTIVATIONS["softmax"].forward(Z)
    assert ((A >= 0) & (A <= 1)).all()
    np.testing.assert_allclose(A.sum(axis=1), 1.0, rtol=1e-12)


@settings(max_examples=50, deadline=None)
@given(hnp.arrays(np.float32, (3, 4), elements=st.floats(-1e4, 1e4, width=32)))
def test_sigmoid_in_unit_interval_and_symmetric(Z):
    sigmoid = ACTIVATIONS["sigmoid"].forward
    A = sigmoid(Z)
    assert ((A >= 0) & (A <= 1)).all()
    np.testing.assert_allclose(A + sigmoid(-Z), 1.0, rtol=1e-6)


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown activation 'relux'; expected one of "
                                         r"\['elu', 'exp', 'gelu', 'identity', "):
        get_activation("relux")
    with pytest.raises(TypeError, match="activation must be a name"):
        get_activation(None)


@pytest.mark.parametrize("shape", [(900, 200), (256, 512), (64, 256), (5000, 3), (3, 70000),
                                   (1, 1), (0, 5)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_relu_against_a_zeros_block_is_the_scalar_maximum_byte_for_byte(shape, dtype):
    # relu takes its maximum against cached zeros, a slab of rows at a time (NumPy's SIMD
    # loop); every byte must be np.maximum(Z, 0)'s, NaN, infinities and -0 included.
    rng = np.random.default_rng(sum(shape))
    Z = rng.normal(size=shape).astype(dtype)
    if Z.size:
        flat = Z.reshape(-1)
        flat[::7] = -0.0
        flat[1::11] = np.nan
        flat[2::13] = -np.inf
        flat[3::17] = np.inf
    want = np.maximum(Z, 0)
    relu = ACTIVATIONS["relu"]
    assert relu.forward(Z).tobytes() == want.tobytes()
    out = np.empty_like(Z)
    assert relu.forward_into(Z, out) is out and out.tobytes() == want.tobytes()
    inplace = Z.copy()
    relu.forward_into(inplace, inplace)
    assert inplace.tobytes() == want.tobytes()
    assert relu.forward(Z.T).tobytes() == np.maximum(Z.T, 0).tobytes()   # not contiguous


def test_relu_backward_into_writes_the_mask_into_the_workspace_only():
    from purenet.core.workspace import FRESH, Pool
    rng = np.random.default_rng(0)
    Z, dA = rng.normal(size=(2, 64, 8))
    want = dA * (Z > 0)
    for workspace in (FRESH, Pool()):
        got = ACTIVATIONS["relu"].backward_into(dA.copy(), Z, np.maximum(Z, 0), workspace)
        assert got.tobytes() == want.tobytes()
