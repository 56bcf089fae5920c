"""purenet.tutorial reproduces every number the seed document prints.

The document seeds numpy's global RNG; here a local RandomState with the same seed draws
the same numbers in the same order, so the inputs are the document's own.
"""

import itertools

import numpy as np
import pytest

from purenet import tutorial as t
from purenet.testing import assert_pure, assert_records_equal

NN_ARCHITECTURE = t.NN_ARCHITECTURE
TWO_LAYERS = [
    {"input_dim": 4, "output_dim": 3, "activation": "relu"},
    {"input_dim": 3, "output_dim": 1, "activation": "sigmoid"},
]


def assert_printed(actual, printed):
    """``actual`` agrees with every digit numpy printed (8 decimals, rounded)."""
    np.testing.assert_allclose(actual, printed, rtol=0, atol=0.5e-8 + 1e-15)


def draw(seed, *shapes):
    rng = np.random.RandomState(seed)
    return [rng.randn(*shape) for shape in shapes]


@pytest.fixture(autouse=True)
def global_rng_untouched():
    state = np.random.get_state()
    yield
    assert_records_equal(np.random.get_state(), state)


def test_init_layers_shapes_and_document_draws():
    params = t.init_layers(NN_ARCHITECTURE)
    for i, layer in enumerate(NN_ARCHITECTURE, start=1):
        assert params[f"W{i}"].shape == (layer["output_dim"], layer["input_dim"])
        assert params[f"b{i}"].shape == (layer["output_dim"], 1)
    # np.random.seed(99); np.random.randn(50, 2) * 0.1 is the document's first draw.
    W1, b1 = draw(99, (50, 2), (50, 1))
    np.testing.assert_array_equal(params["W1"], W1 * 0.1)
    np.testing.assert_array_equal(params["b1"], b1 * 0.1)
    np.testing.assert_array_equal(t.init_layers(NN_ARCHITECTURE, 2)["W6"],
                                  t.init_layers(NN_ARCHITECTURE, 2)["W6"])


def test_init_layers_leaves_the_global_rng_alone():
    before = np.random.get_state()
    t.init_layers(NN_ARCHITECTURE, seed=1)
    assert_records_equal(np.random.get_state(), before)


def test_an_architecture_works_as_well_as_the_dicts():
    import purenet as pn

    X = np.random.RandomState(0).randn(2, 5)
    params = t.init_layers(pn.Architecture.from_dicts(NN_ARCHITECTURE), seed=2)
    from_dicts = t.full_forward_propagation(X, params, NN_ARCHITECTURE)
    from_arch = t.full_forward_propagation(X, params, pn.Architecture.from_dicts(NN_ARCHITECTURE))
    np.testing.assert_array_equal(from_dicts[0], from_arch[0])


def test_init_layers_rejects_a_broken_chain():
    with pytest.raises(ValueError, match=r"layers\[1\]\.input_dim is 4 but layer 0 has output_dim = 3"):
        t.init_layers([TWO_LAYERS[0], {**TWO_LAYERS[1], "input_dim": 4}])


def test_single_layer_forward():
    A_prev, W_curr, b_curr = draw(2, (3, 2), (1, 3), (1, 1))
    A_curr, Z_curr = assert_pure(t.single_layer_forward_propagation, A_prev, W_curr, b_curr,
                                 activation="relu")
    assert Z_curr.shape == A_curr.shape == (1, 2)
    assert_printed(Z_curr, [[3.43896131, -2.08938436]])
    assert_printed(A_curr, [[3.43896131, 0.0]])


def test_full_forward_memory():
    X, W1, b1, W2, b2, W3, b3 = draw(6, (5, 4), (4, 5), (4, 1), (3, 4), (3, 1), (1, 3), (1, 1))
    params = {"W1": W1, "b1": b1, "W2": W2, "b2": b2, "W3": W3, "b3": b3}
    # The document's own sizes, which do not match its arrays: only activations are read.
    arch = [
        {"input_dim": 4, "output_dim": 5, "activation": "relu"},
        {"input_dim": 4, "output_dim": 3, "activation": "relu"},
        {"input_dim": 3, "output_dim": 1, "activation": "sigmoid"},
    ]
    Y_hat, memory = assert_pure(t.full_forward_propagation, X, params, arch)
    assert sorted(memory) == ["A0", "A1", "A2", "Z1", "Z2", "Z3"]
    assert_printed(memory["A0"], [
        [-0.31178367, 0.72900392, 0.21782079, -0.8990918],
        [-2.48678065, 0.91325152, 1.12706373, -1.51409323],
        [1.63929108, -0.4298936, 2.63128056, 0.60182225],
        [-0.33588161, 1.23773784, 0.11112817, 0.12915125],
        [0.07612761, -0.15512816, 0.63422534, 0.810655],
    ])
    assert_printed(memory["A1"], [
        [0.0, 3.18040136, 0.4074501, 0.0],
        [0.0, 0.0, 3.18141623, 0.0],
        [4.18500916, 0.0, 0.0, 2.72141638],
        [5.05850802, 0.0, 0.0, 3.82321852],
    ])
    assert_printed(memory["A2"], [
        [2.2644603, 1.09971298, 0.0, 1.54036335],
        [6.33722569, 0.0, 0.0, 4.48582383],
        [10.37508342, 0.0, 1.63635185, 8.17870169],
    ])
    assert_printed(memory["Z1"], [
        [-5.23825714, 3.18040136, 0.4074501, -1.88612721],
        [-2.77358234, -0.56177316, 3.18141623, -0.99209432],
        [4.18500916, -1.78006909, -0.14502619, 2.72141638],
        [5.05850802, -1.25674082, -3.54566654, 3.82321852],
    ])
    # The document's print stops at Z1; the rest must at least hang together.
    np.testing.assert_array_equal(memory["A2"], np.maximum(memory["Z2"], 0))
    np.testing.assert_allclose(Y_hat, 1 / (1 + np.exp(-memory["Z3"])), rtol=1e-15)


def test_get_cost_value():
    cost = assert_pure(t.get_cost_value, np.array([[0.8, 0.9, 0.4]]), np.asarray([[1, 1, 1]]))
    assert_printed(cost, 0.4149316)


def test_single_layer_backward():
    dA_curr, A_prev, W_curr, b_curr, Z_curr = draw(2, (1, 2), (3, 2), (1, 3), (1, 1), (1, 2))
    dA_prev, dW_curr, db_curr = assert_pure(
        t.single_layer_backward_propagation, dA_curr, W_curr, b_curr, Z_curr, A_prev,
        activation="relu")
    assert_printed(dA_prev, [[0.44090989, 0.0], [0.37883606, 0.0],
                                         [-0.2298228, 0.0]])
    assert_printed(dW_curr, [[0.44513824, 0.37371418, -0.10478989]])
    assert_printed(db_curr, [[-0.20837892]])


def test_full_backward():
    Y_hat, A0, W1, b1, Z1, A1, W2, b2, Z2 = draw(
        3, (1, 2), (4, 2), (3, 4), (3, 1), (3, 2), (3, 2), (1, 3), (1, 1), (1, 2))
    params = {"W1": W1, "b1": b1, "W2": W2, "b2": b2}
    memory = {"A0": A0, "Z1": Z1, "A1": A1, "Z2": Z2}
    grads = assert_pure(t.full_backward_propagation, Y_hat, np.array([[1, 0]]), memory, params,
                        TWO_LAYERS)
    assert sorted(grads) == ["dW1", "dW2", "db1", "db2"]
    assert_printed(grads["dW1"], [
        [0.41010002, 0.07807203, 0.13798444, 0.10502167],
        [0.0, 0.0, 0.0, 0.0],
        [0.05283652, 0.01005865, 0.01777766, 0.0135308],
    ])
    assert_printed(grads["dW2"], [[-0.39202432, -0.13325855, -0.04601089]])
    assert_printed(grads["db1"], [[-0.22007063], [0.0], [-0.02835349]])
    assert_printed(grads["db2"], [[0.15187861]])


def test_update_returns_new_values_and_leaves_inputs_alone():
    W1, b1, W2, b2 = draw(2, (3, 4), (3, 1), (1, 3), (1, 1))
    dW1, db1, dW2, db2 = draw(3, (3, 4), (3, 1), (1, 3), (1, 1))
    params = {"W1": W1, "b1": b1, "W2": W2, "b2": b2}
    grads = {"dW1": dW1, "db1": db1, "dW2": dW2, "db2": db2}
    kept = {k: v.copy() for k, v in params.items()}
    new = assert_pure(t.update, params, grads, TWO_LAYERS, 0.1)
    assert_printed(new["W1"], [
        [-0.59562069, -0.09991781, -2.14584584, 1.82662008],
        [-1.76569676, -0.80627147, 0.51115557, -1.18258802],
        [-1.0535704, -0.86128581, 0.68284052, 2.20374577],
    ])
    assert_printed(new["W2"], [[-0.55569196, 0.0354055, 1.32964895]])
    assert_printed(new["b1"], [[-0.04659241], [-1.28888275], [0.53405496]])
    assert_printed(new["b2"], [[-0.84610769]])
    assert new is not params
    for name, value in kept.items():
        np.testing.assert_array_equal(params[name], value)
        assert new[name] is not params[name]


def test_activations_in_the_documents_signatures():
    Z = np.array([[-2.0, 0.0, 3.0]])
    np.testing.assert_allclose(t.sigmoid(Z), 1 / (1 + np.exp(-Z)), rtol=1e-15)
    np.testing.assert_array_equal(t.relu(Z), [[0.0, 0.0, 3.0]])
    dA = np.array([[1.0, 2.0, 3.0]])
    np.testing.assert_array_equal(t.relu_backward(dA, Z), [[0.0, 0.0, 3.0]])
    s = 1 / (1 + np.exp(-Z))
    np.testing.assert_allclose(t.sigmoid_backward(dA, Z), dA * s * (1 - s), rtol=1e-14)


def test_softmax_normalises_over_units_in_the_column_layout():
    rng = np.random.RandomState(0)
    A, _ = t.single_layer_forward_propagation(rng.randn(4, 6), rng.randn(3, 4),
                                              rng.randn(3, 1), "softmax")
    np.testing.assert_allclose(A.sum(axis=0), np.ones(6), rtol=1e-14)


def test_unknown_activation_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown activation 'tanhh'; expected one of \["):
        t.single_layer_forward_propagation(np.ones((2, 1)), np.ones((1, 2)), np.ones((1, 1)),
                                           "tanhh")


# Gradient flow: the plateau-then-fall of the document's run (lr 0.01, falling after about
# 1500 steps) comes at the same lr * steps with lr 0.1, ten times sooner, so the test
# shows the same curve in 200 steps (2.5 s on an idle 2-core machine).
CIRCLES_STEPS = 200
CIRCLES_LR = 0.1


def test_training_on_circles_falls_like_the_document():
    from sklearn.datasets import make_circles
    from sklearn.model_selection import train_test_split

    X, y = make_circles(n_samples=1000, factor=0.3, noise=0.1, random_state=0)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.1, random_state=42)
    params, costs = assert_pure_once(t.train, X_train.T, y_train.reshape(1, -1),
                                     NN_ARCHITECTURE, CIRCLES_STEPS, CIRCLES_LR)
    assert len(costs) == CIRCLES_STEPS
    assert costs[0] == pytest.approx(np.log(2), abs=2e-3)       # the document: 0.69381
    checkpoints = costs[::50] + [costs[-1]]
    assert all(later < earlier for earlier, later in itertools.pairwise(checkpoints))
    assert costs[100] > 0.6 and costs[-1] < 0.05
    Y_hat, _ = t.full_forward_propagation(X_test.T, params, NN_ARCHITECTURE)
    assert np.mean((Y_hat[0] > 0.5) == y_test) >= 0.98


def assert_pure_once(fn, *args):
    # Training twice would double the test's time; one call and a before/after check.
    kept = [np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in args]
    result = fn(*args)
    for before, after in zip(kept, args):
        if isinstance(after, np.ndarray):
            np.testing.assert_array_equal(before, after)
    return result


def test_train_prints_like_the_document(capsys):
    X = np.array([[0.0, 1.0, 2.0, 3.0]])
    Y = np.array([[0, 0, 1, 1]])
    arch = [{"input_dim": 1, "output_dim": 1, "activation": "sigmoid"}]
    _, costs = t.train(X, Y, arch, epochs=5, learning_rate=0.1, verbose=True, print_every=2)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" - ")[0] for line in lines] == [
        "Iteration:     0", "Iteration:     2", "Iteration:     4"]
    assert lines[0].endswith(f"cost: {costs[0]:.5f}")
    assert t.train(X, Y, arch, epochs=5, learning_rate=0.1)[1] == costs
