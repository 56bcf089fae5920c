"""scikit-learn's MLP losses (summed over outputs, averaged over samples): values and
gradients against PyTorch and central differences, their fused forms, and one SGD step of
the estimators equal to MLPClassifier's / MLPRegressor's from the same weights."""

import numpy as np
import pytest

from purenet.core.activations import ACTIVATIONS, sigmoid
from purenet.core.losses import FUSED, LOSSES

RNG = np.random.default_rng(1)
A_REG = RNG.normal(size=(5, 3))
Y_REG = RNG.normal(size=(5, 3))
Z_LAB = RNG.normal(scale=2.0, size=(6, 4))
Y_LAB = (RNG.random((6, 4)) > 0.5).astype(float)
Z_POI = RNG.normal(scale=0.7, size=(5, 2))
Y_POI = RNG.poisson(2.0, size=(5, 2)).astype(float)   # zeros included: xlogy's case


def _torch_cases():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    n = lambda a: a.shape[0]   # noqa: E731
    return {
        "half_squared_error": (lambda a, y: ((a - y) ** 2).sum() / 2 / n(a), A_REG, Y_REG),
        "multilabel_log_loss": (
            lambda a, y: F.binary_cross_entropy(a, y, reduction="sum") / n(a),
            sigmoid(Z_LAB), Y_LAB),
        "poisson": (lambda a, y: (torch.xlogy(y, y) - torch.xlogy(y, a) - y + a).sum() / n(a),
                    np.exp(Z_POI), Y_POI),
    }


@pytest.mark.parametrize("name", ["half_squared_error", "multilabel_log_loss", "poisson"])
def test_value_and_gradient_match_pytorch(name):
    torch = pytest.importorskip("torch")
    fn, A, y = _torch_cases()[name]
    a = torch.tensor(A, requires_grad=True)
    value = fn(a, torch.tensor(y))
    value.backward()
    assert LOSSES[name].value(A, y) == pytest.approx(value.item(), rel=1e-12)
    np.testing.assert_allclose(LOSSES[name].gradient(A, y), a.grad.numpy(), rtol=1e-10,
                               atol=1e-15)


@pytest.mark.parametrize("pair, Z, y", [
    (("multilabel_log_loss", "sigmoid"), Z_LAB, Y_LAB),
    (("poisson", "exp"), Z_POI, Y_POI)], ids=["multilabel", "poisson"])
def test_fused_gradient_matches_central_differences(pair, Z, y):
    fused, h = FUSED[pair], 1e-6
    A = ACTIVATIONS[pair[1]].forward(Z)
    numeric = np.zeros_like(Z)
    for index in np.ndindex(Z.shape):
        up, down = Z.copy(), Z.copy()
        up[index] += h
        down[index] -= h
        numeric[index] = (fused.value(up, y) - fused.value(down, y)) / (2 * h)
    np.testing.assert_allclose(fused.gradient(Z, A, y), numeric, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(fused.gradient(Z, A, y), (A - y) / len(Z), rtol=1e-15)


def test_weights_scale_each_samples_part():
    w = np.array([0.0, 2.0, 1.0, 1.0, 1.0])
    kept = np.arange(1, 5)
    value = LOSSES["half_squared_error"].value(A_REG, Y_REG, w)
    by_hand = (w[kept] * ((A_REG[kept] - Y_REG[kept]) ** 2).sum(axis=1)).sum() / 2 / 5
    assert value == pytest.approx(by_hand, rel=1e-13)


def test_exp_activation_derivative_is_its_output():
    Z = RNG.normal(size=(3, 2))
    act = ACTIVATIONS["exp"]
    np.testing.assert_array_equal(act.forward(Z), np.exp(Z))
    np.testing.assert_array_equal(act.backward(np.ones_like(Z), Z, act.forward(Z)), np.exp(Z))
