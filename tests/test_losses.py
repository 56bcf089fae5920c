"""Losses: hand values, PyTorch's values and gradients, the fused shortcuts, and extreme
logits."""

import numpy as np
import pytest

from purenet.core.activations import sigmoid, softmax
from purenet.core.losses import FUSED, LOSSES, get_loss, resolve_loss
from purenet.testing import assert_pure

RNG = np.random.default_rng(0)
Z2 = RNG.normal(scale=2.0, size=(5, 3))            # logits of a 3-way softmax, 5 samples
IDS = np.array([0, 2, 1, 2, 0])
ONE_HOT = np.eye(3)[IDS]
Z1 = RNG.normal(scale=2.0, size=(6, 1))            # logits of one sigmoid unit
Y01 = np.array([[0.0], [1.0], [1.0], [0.0], [1.0], [0.0]])
A_REG = RNG.normal(size=(4, 2)) * 2
Y_REG = RNG.normal(size=(4, 2))


def test_hand_values():
    # The seed document's cost: -(log .8 + log .9 + log .4) / 3.
    A = np.array([[0.8], [0.9], [0.4]])
    assert LOSSES["binary_crossentropy"].value(A, np.ones((3, 1))) == pytest.approx(
        0.41493159961539694, rel=1e-14)
    A, y = np.array([[1.0, 2.0], [0.0, -1.0]]), np.array([[0.5, 2.0], [3.0, -1.0]])
    assert LOSSES["mean_squared_error"].value(A, y) == pytest.approx((0.25 + 9) / 4)
    assert LOSSES["mean_absolute_error"].value(A, y) == pytest.approx((0.5 + 3) / 4)
    # Huber with delta 1: 0.5 * 0.5**2 inside, 1 * (3 - 0.5) outside.
    assert LOSSES["huber"].value(A, y) == pytest.approx((0.125 + 2.5) / 4)
    P = np.array([[0.25, 0.75], [0.5, 0.5]])
    assert LOSSES["categorical_crossentropy"].value(P, np.array([1, 0])) == pytest.approx(
        -(np.log(0.75) + np.log(0.5)) / 2)


def torch_loss_and_grad(fn, A, y):
    torch = pytest.importorskip("torch")
    a = torch.tensor(A, requires_grad=True)
    value = fn(a, torch.tensor(y))
    value.backward()
    return value.item(), a.grad.numpy()


def torch_cases():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    P2, P1 = softmax(Z2), sigmoid(Z1)
    return {
        "binary_crossentropy": (F.binary_cross_entropy, P1, Y01),
        "categorical_crossentropy ids": (lambda a, y: F.nll_loss(torch.log(a), y), P2, IDS),
        "categorical_crossentropy one-hot": (
            lambda a, y: -(y * torch.log(a)).sum(dim=1).mean(), P2, ONE_HOT),
        "mean_squared_error": (F.mse_loss, A_REG, Y_REG),
        "mean_absolute_error": (F.l1_loss, A_REG, Y_REG),
        "huber": (lambda a, y: F.huber_loss(a, y, delta=1.0), A_REG, Y_REG),
    }


@pytest.mark.parametrize("case", ["binary_crossentropy", "categorical_crossentropy ids",
                                  "categorical_crossentropy one-hot", "mean_squared_error",
                                  "mean_absolute_error", "huber"])
def test_value_and_gradient_match_pytorch(case):
    torch_fn, A, y = torch_cases()[case]
    expected_value, expected_grad = torch_loss_and_grad(torch_fn, A, y)
    loss = LOSSES[case.split()[0]]
    assert loss.value(A, y) == pytest.approx(expected_value, rel=1e-12)
    np.testing.assert_allclose(loss.gradient(A, y), expected_grad, rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("y", [IDS, ONE_HOT], ids=["ids", "one-hot"])
def test_fused_softmax_crossentropy_matches_pytorch(y):
    torch = pytest.importorskip("torch")
    expected_value, expected_grad = torch_loss_and_grad(
        torch.nn.functional.cross_entropy, Z2, y)
    fused = FUSED[("categorical_crossentropy", "softmax")]
    assert fused.value(Z2, y) == pytest.approx(expected_value, rel=1e-12)
    np.testing.assert_allclose(fused.gradient(Z2, softmax(Z2), y), expected_grad, rtol=1e-10, atol=1e-15)


def test_fused_sigmoid_crossentropy_matches_pytorch():
    torch = pytest.importorskip("torch")
    expected_value, expected_grad = torch_loss_and_grad(
        torch.nn.functional.binary_cross_entropy_with_logits, Z1, Y01)
    fused = FUSED[("binary_crossentropy", "sigmoid")]
    assert fused.value(Z1, Y01) == pytest.approx(expected_value, rel=1e-12)
    np.testing.assert_allclose(fused.gradient(Z1, sigmoid(Z1), Y01), expected_grad, rtol=1e-10, atol=1e-15)


def test_fused_gradients_are_y_hat_minus_y_over_the_reduction():
    np.testing.assert_allclose(FUSED[("binary_crossentropy", "sigmoid")].gradient(Z1, sigmoid(Z1), Y01),
                               (sigmoid(Z1) - Y01) / Y01.size, rtol=1e-15)
    for y in (IDS, ONE_HOT):
        np.testing.assert_allclose(
            FUSED[("categorical_crossentropy", "softmax")].gradient(Z2, softmax(Z2), y),
            (softmax(Z2) - ONE_HOT) / len(Z2), rtol=1e-15, atol=1e-17)


@pytest.mark.parametrize("pair", sorted(FUSED))
def test_fused_equals_the_chain_rule_where_both_are_finite(pair):
    from purenet.core.activations import ACTIVATIONS

    loss_name, activation = pair
    Z, y = {"sigmoid": (Z1, Y01), "softmax": (Z2, IDS),
            "exp": (Z2 / 2, np.abs(Z2).round())}[activation]
    act, loss, fused = ACTIVATIONS[activation], LOSSES[loss_name], FUSED[pair]
    A = act.forward(Z)
    assert fused.value(Z, y) == pytest.approx(loss.value(A, y), rel=1e-12)
    np.testing.assert_allclose(fused.gradient(Z, A, y), act.backward(loss.gradient(A, y), Z, A),
                               rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_logits_stay_finite_without_warnings(dtype):
    Z_bin = np.array([[1e4], [-1e4], [1e4], [-1e4]], dtype=dtype)
    y_bin = np.array([[1], [0], [0], [1]], dtype=dtype)     # two right, two confidently wrong
    Z_cat = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]], dtype=dtype)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        values = [FUSED[("binary_crossentropy", "sigmoid")].value(Z_bin, y_bin),
                  FUSED[("categorical_crossentropy", "softmax")].value(Z_cat, np.array([1, 0]))]
        grads = [FUSED[("binary_crossentropy", "sigmoid")].gradient(Z_bin, sigmoid(Z_bin), y_bin),
                 FUSED[("categorical_crossentropy", "softmax")].gradient(
                     Z_cat, softmax(Z_cat), np.array([1, 0]))]
    # Two of four binary samples are wrong by 1e4 nats; the categorical ones by 2e4 and by
    # 2e4 + log 2 (the second row ties two classes).
    assert values[0] == pytest.approx(2 * 1e4 / 4, rel=1e-6)
    assert values[1] == pytest.approx(2e4 + np.log(2) / 2, rel=1e-7)
    for grad in grads:
        assert np.isfinite(grad).all() and grad.dtype == dtype


@pytest.mark.parametrize("name", ["binary_crossentropy", "categorical_crossentropy"])
def test_saturated_probabilities_are_clipped_not_infinite(name):
    A = np.array([[0.0, 1.0], [1.0, 0.0]])
    y = np.array([[1.0, 0.0], [1.0, 0.0]])
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        value = LOSSES[name].value(A, y)
        grad = LOSSES[name].gradient(A, y)
    assert np.isfinite(value) and value > 10
    assert np.isfinite(grad).all()


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_pure_and_dtype_kept(name):
    y = (IDS if name == "categorical_crossentropy" else
         np.ones((5, 3), dtype=np.float32) * (name == "binary_crossentropy"))
    A = softmax(Z2).astype(np.float32)
    value = assert_pure(LOSSES[name].value, A, y)
    grad = assert_pure(LOSSES[name].gradient, A, y)
    assert isinstance(value, float)
    assert grad.dtype == np.float32 and grad.shape == A.shape


def test_default_losses_and_unknown_names():
    assert resolve_loss(None, "sigmoid") == "binary_crossentropy"
    assert resolve_loss(None, "softmax") == "categorical_crossentropy"
    assert resolve_loss(None, "identity") == "mean_squared_error"
    assert resolve_loss("huber", "tanh") == "huber"
    with pytest.raises(ValueError, match="no default loss for a 'tanh' output; pass loss="):
        resolve_loss(None, "tanh")
    with pytest.raises(ValueError, match=r"unknown loss 'mse'; expected one of "
                                         r"\['binary_crossentropy', "):
        get_loss("mse")
