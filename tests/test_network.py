"""The network's maths: gradients checked by central differences for every hidden
activation with every loss, against PyTorch's autograd, dtypes kept, inputs untouched,
and dropout deterministic."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import purenet as pn
from purenet.core.activations import ACTIVATIONS
from purenet.core.records import tree_leaves, tree_map
from purenet.testing import assert_pure, assert_records_equal, check_grads

N_SAMPLES, N_FEATURES = 7, 3
# (output activation, output units, loss, kind of target): every loss with the outputs it
# pairs with, fused (sigmoid + binary, softmax + categorical) and chained.
HEADS = [
    ("sigmoid", 1, "binary_crossentropy", "binary"),
    ("softmax", 3, "categorical_crossentropy", "ids"),
    ("softmax", 3, "categorical_crossentropy", "one-hot"),
    ("identity", 2, "mean_squared_error", "real"),
    ("identity", 2, "mean_absolute_error", "real"),
    ("identity", 2, "huber", "real"),
    ("sigmoid", 1, "mean_squared_error", "binary"),
    ("tanh", 2, "huber", "real"),
    ("sigmoid", 3, "multilabel_log_loss", "labels"),
    ("identity", 3, "half_squared_error", "real"),
    ("exp", 2, "poisson", "counts"),
]
# The smallest |Z| of a hidden unit, and |A - y| of an MAE output, that the checks allow:
# far beyond the difference step, so no difference quotient straddles a kink.
KINK_MARGIN = 1e-3


def architecture(hidden, head):
    output, units = head[0], head[1]
    return [
        {"input_dim": N_FEATURES, "output_dim": 5, "activation": hidden},
        {"input_dim": 5, "output_dim": 4, "activation": hidden},
        {"input_dim": 4, "output_dim": units, "activation": output},
    ]


def targets(kind, units, rng):
    if kind == "binary":
        return rng.integers(0, 2, size=(N_SAMPLES, 1)).astype(float)
    if kind == "ids":
        return rng.integers(0, units, size=N_SAMPLES)
    if kind == "one-hot":
        return np.eye(units)[rng.integers(0, units, size=N_SAMPLES)]
    if kind == "labels":
        return rng.integers(0, 2, size=(N_SAMPLES, units)).astype(float)
    if kind == "counts":
        return rng.poisson(1.0, size=(N_SAMPLES, units)).astype(float)
    return rng.normal(size=(N_SAMPLES, units))


def problem(hidden, head, seed=0):
    rng = np.random.default_rng(seed)
    params = pn.init_params(architecture(hidden, head), seed=seed, init="glorot_normal")
    # Biases away from zero, so that the checks also cover db.
    params = tree_map(lambda a: a + 0.1 * rng.normal(size=a.shape), params)
    return params, pn.Batch(rng.normal(size=(N_SAMPLES, N_FEATURES)),
                            targets(head[3], head[1], rng))


def distance_to_kinks(params, batch, loss):
    _, cache = pn.forward(params, batch.x)
    distance = min(np.abs(Z).min() for Z in cache.pre_activations[:-1])
    if loss == "mean_absolute_error":
        distance = min(distance, np.abs(cache.outputs[-1] - batch.y).min())
    return distance


@pytest.mark.parametrize("head", HEADS, ids=lambda h: f"{h[0]}-{h[2]}-{h[3]}")
@pytest.mark.parametrize("hidden", sorted(ACTIVATIONS))
def test_gradients_match_central_differences(hidden, head):
    params, batch = problem(hidden, head)
    assert distance_to_kinks(params, batch, head[2]) > KINK_MARGIN
    # A step of 1e-5, near the optimal cube root of the float64 epsilon: at the default
    # 1e-6, rounding in the loss dominates for the small first-layer gradients behind
    # saturating layers (errors up to 4e-7 instead of 3e-8).
    errors = check_grads(params, batch, loss=head[2], eps=1e-5)
    assert max(errors.values()) < 1e-6, errors


def test_gradients_with_l2_and_dropout():
    arch = architecture("tanh", HEADS[1])
    arch[0]["dropout"] = 0.5
    arch[1]["dropout"] = 0.25
    params, batch = problem("tanh", HEADS[1], seed=1)
    params = pn.Params(params.layers, pn.Architecture.from_dicts(arch))
    errors = check_grads(params, batch, l2=0.05, dropout_key=(3, 11))
    assert max(errors.values()) < 1e-6, errors


def test_float32_in_float32_out():
    params, batch = problem("relu", HEADS[1])
    params32 = tree_map(lambda a: a.astype(np.float32), params)
    y_hat, cache = pn.forward(params32, batch.x)           # x is float64: cast down
    assert y_hat.dtype == np.float32
    assert all(a.dtype == np.float32 for a in (*cache.pre_activations, *cache.outputs))
    loss, grads = pn.loss_and_grads(params32, batch)
    assert isinstance(loss, float)
    assert all(a.dtype == np.float32 for a in tree_leaves(grads))
    # float32 agrees with float64 to float32's precision.
    loss64, grads64 = pn.loss_and_grads(params, batch)
    assert loss == pytest.approx(loss64, rel=1e-5)
    for g32, g64 in zip(tree_leaves(grads), tree_leaves(grads64)):
        np.testing.assert_allclose(g32, g64, rtol=1e-3, atol=1e-6)


TORCH_CASES = [("relu", HEADS[0]), ("tanh", HEADS[1]), ("gelu", HEADS[2]), ("elu", HEADS[3]),
               ("leaky_relu", HEADS[4]), ("softplus", HEADS[5])]


def torch_loss_and_grads(params, batch, hidden, head):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    act = {"relu": F.relu, "tanh": torch.tanh, "gelu": F.gelu, "elu": F.elu,
           "leaky_relu": F.leaky_relu, "softplus": lambda z: F.softplus(z, threshold=1e4)}
    tensors = [torch.tensor(a, requires_grad=True) for a in tree_leaves(params)]
    A = torch.tensor(batch.x)
    for i in range(0, len(tensors) - 2, 2):
        A = act[hidden](A @ tensors[i] + tensors[i + 1])
    Z = A @ tensors[-2] + tensors[-1]
    y = torch.tensor(batch.y)
    loss = {
        "binary_crossentropy": lambda: F.binary_cross_entropy_with_logits(Z, y),
        "categorical_crossentropy": lambda: F.cross_entropy(Z, y),
        "mean_squared_error": lambda: F.mse_loss(Z, y),
        "mean_absolute_error": lambda: F.l1_loss(Z, y),
        "huber": lambda: F.huber_loss(Z, y, delta=1.0),
    }[head[2]]()
    loss.backward()
    return loss.item(), [t.grad.numpy() for t in tensors]


@pytest.mark.parametrize("hidden, head", TORCH_CASES, ids=[c[0] for c in TORCH_CASES])
def test_gradients_match_pytorch_autograd(hidden, head):
    params, batch = problem(hidden, head)
    expected_loss, expected_grads = torch_loss_and_grads(params, batch, hidden, head)
    loss, grads = pn.loss_and_grads(params, batch, loss=head[2])
    assert loss == pytest.approx(expected_loss, rel=1e-12)
    for ours, theirs in zip(tree_leaves(grads), expected_grads):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-14)


def test_forward_shapes_and_cache():
    params, batch = problem("relu", HEADS[1])
    y_hat, cache = pn.forward(params, batch.x)
    assert y_hat.shape == (N_SAMPLES, 3)
    np.testing.assert_allclose(y_hat.sum(axis=1), 1.0, rtol=1e-14)
    assert [a.shape[1] for a in cache.inputs] == [N_FEATURES, 5, 4]
    assert cache.masks == (None, None, None)
    np.testing.assert_array_equal(pn.predict(params, batch.x), y_hat)
    assert_records_equal(cache.outputs[-1], y_hat)


def test_loss_needs_a_name_for_outputs_without_a_default():
    params, batch = problem("relu", HEADS[7])
    with pytest.raises(ValueError, match="no default loss for a 'tanh' output"):
        pn.loss_and_grads(params, batch)


def test_backward_equals_loss_and_grads():
    params, batch = problem("elu", HEADS[0])
    _, cache = pn.forward(params, batch.x)
    assert_records_equal(pn.backward(params, cache, batch.y),
                         pn.loss_and_grads(params, batch)[1])


# --- dropout --------------------------------------------------------------------------


def dropout_problem():
    arch = architecture("relu", HEADS[1])
    arch[0]["dropout"] = 0.5
    params = pn.init_params(arch, seed=2)
    x = np.random.default_rng(2).normal(size=(50, N_FEATURES))
    return params, x


def test_dropout_masks_are_deterministic_for_a_key():
    params, x = dropout_problem()
    _, cache1 = pn.forward(params, x, dropout_key=(0, 5))
    _, cache2 = pn.forward(params, x, dropout_key=(0, 5))
    assert_records_equal(cache1, cache2)
    mask = cache1.masks[0]
    assert set(np.unique(mask)) == {0.0, 2.0}             # inverted dropout: kept x 1/keep
    assert 0.3 < (mask == 0).mean() < 0.7
    assert cache1.masks[1] is None
    for other_key in [(0, 6), (1, 5)]:
        other = pn.forward(params, x, dropout_key=other_key)[1].masks[0]
        assert not np.array_equal(mask, other)


def test_dropout_is_off_without_a_key():
    params, x = dropout_problem()
    plain = pn.Params(params.layers, pn.Architecture.from_dicts(architecture("relu", HEADS[1])))
    y_hat, cache = pn.forward(params, x)
    assert cache.masks == (None, None, None)
    np.testing.assert_array_equal(y_hat, pn.predict(plain, x))
    np.testing.assert_array_equal(pn.predict(params, x), y_hat)
    assert not np.array_equal(pn.forward(params, x, dropout_key=(0, 0))[0], y_hat)


# --- purity and dtypes, over arbitrary inputs ------------------------------------------

PURE_ARCH = [
    {"input_dim": 2, "output_dim": 4, "activation": "relu", "dropout": 0.2},
    {"input_dim": 4, "output_dim": 3, "activation": "softmax"},
]


@settings(max_examples=25, deadline=None)
@given(dtype=st.sampled_from(["float32", "float64"]),
       x=hnp.arrays(np.float64, st.tuples(st.integers(1, 6), st.just(2)),
                    elements=st.floats(-100, 100)),
       seed=st.integers(0, 2**32), step=st.integers(0, 1000))
def test_public_functions_are_pure_and_keep_the_dtype(dtype, x, seed, step):
    params = assert_pure(pn.init_params, PURE_ARCH, seed=seed, dtype=dtype)
    y = np.arange(len(x)) % 3
    x_before = x.copy()
    y_hat, cache = assert_pure(pn.forward, params, x, dropout_key=(seed, step))
    assert y_hat.dtype == dtype
    assert assert_pure(pn.predict, params, x).dtype == dtype
    grads = assert_pure(pn.backward, params, cache, y)
    loss, grads2 = assert_pure(pn.loss_and_grads, params, pn.Batch(x, y),
                               dropout_key=(seed, step))
    assert np.isfinite(loss)
    assert_records_equal(grads, grads2)
    assert all(a.dtype == dtype for a in tree_leaves(grads))
    np.testing.assert_array_equal(x, x_before)
    assert x.flags.writeable                   # the caller's array stays the caller's


@pytest.mark.parametrize("output", ["identity", "sigmoid"])
def test_forward_freezes_its_own_arrays_and_leaves_the_callers_writable(output):
    arch = [{"input_dim": 2, "output_dim": 3, "activation": "relu", "dropout": 0.5},
            {"input_dim": 3, "output_dim": 1, "activation": output}]
    params = pn.init_params(arch, seed=0)
    x = np.array([[1.0, -2.0], [0.5, 0.25]])
    y_hat, cache = pn.forward(params, x, dropout_key=(0, 0))
    assert x.flags.writeable and y_hat.flags.writeable   # the caller's input and output
    arrays = [*cache.inputs, *cache.pre_activations, *cache.outputs,
              *(m for m in cache.masks if m is not None)]
    assert len(arrays) == 7 and not any(a.flags.writeable for a in arrays)
    x[0, 0] = 7.0                                          # the cache holds views of x
    assert cache.inputs[0][0, 0] == 7.0
    with pytest.raises(ValueError, match="read-only"):
        cache.pre_activations[0][0, 0] = 1.0


def test_the_training_kernel_returns_value_outputs_and_grads():
    from purenet.core.network import objective
    params = pn.init_params([{"input_dim": 2, "output_dim": 4, "activation": "tanh"},
                             {"input_dim": 4, "output_dim": 1, "activation": "sigmoid"}], seed=3)
    x = np.array([[1.0, -2.0], [0.5, 0.25], [0.0, 1.0]])
    y = np.array([[1.0], [0.0], [1.0]])
    value, outputs, grads = objective(params, x, y, "binary_crossentropy", l2=0.1)
    loss, expected = pn.loss_and_grads(params, pn.Batch(x, y), l2=0.1)
    assert value == loss
    assert_records_equal(grads, expected)
    np.testing.assert_array_equal(outputs, pn.predict(params, x))
    assert objective(params, x, y, "binary_crossentropy", grads=False).grads is None
