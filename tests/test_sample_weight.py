"""Sample weights: the weighted mean loss ``sum(w * loss) / sum(w)`` and its gradients
(against PyTorch and central differences), the checks of the weights, and fit with them:
equal weights change no bit, zero weights drop samples, the data fingerprint records them."""

import numpy as np
import pytest

import purenet as pn
from purenet.core.losses import normalised_weights
from purenet.core.records import tree_leaves
from purenet.testing import check_grads
from purenet.train.metrics import count_correct

N = 9
# (output activation, units, loss, kind of target)
HEADS = [
    ("sigmoid", 1, "binary_crossentropy", "binary"),
    ("sigmoid", 3, "binary_crossentropy", "multilabel"),
    ("softmax", 3, "categorical_crossentropy", "ids"),
    ("softmax", 3, "categorical_crossentropy", "one-hot"),
    ("identity", 2, "mean_squared_error", "real"),
    ("identity", 2, "mean_absolute_error", "real"),
    ("identity", 2, "huber", "real"),
    ("tanh", 2, "mean_squared_error", "real"),   # chained, not fused
]


def problem(head, seed=0):
    rng = np.random.default_rng(seed)
    output, units, loss, kind = head
    arch = [{"input_dim": 4, "output_dim": 5, "activation": "tanh"},
            {"input_dim": 5, "output_dim": units, "activation": output}]
    params = pn.init_params(arch, seed=seed, init="glorot_normal")
    y = {"binary": lambda: rng.integers(0, 2, (N, 1)).astype(float),
         "multilabel": lambda: rng.integers(0, 2, (N, units)).astype(float),
         "ids": lambda: rng.integers(0, units, N),
         "one-hot": lambda: np.eye(units)[rng.integers(0, units, N)],
         "real": lambda: 2 * rng.normal(size=(N, units))}[kind]()
    weights = rng.uniform(0.1, 3.0, N)
    weights[2] = 0.0
    return params, pn.Batch(rng.normal(size=(N, 4)), y), weights


def torch_weighted(params, batch, weights, head):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    output, units, loss, kind = head
    W0, b0, W1, b1 = [torch.tensor(a, requires_grad=True) for a in tree_leaves(params)]
    Z = torch.tanh(torch.tensor(batch.x) @ W0 + b0) @ W1 + b1
    y = torch.tensor(batch.y)
    per_sample = {
        "binary_crossentropy": lambda: F.binary_cross_entropy_with_logits(
            Z, y, reduction="none").mean(dim=1),
        "categorical_crossentropy": lambda: F.cross_entropy(Z, y, reduction="none"),
        "mean_squared_error": lambda: F.mse_loss(
            torch.tanh(Z) if output == "tanh" else Z, y, reduction="none").mean(dim=1),
        "mean_absolute_error": lambda: F.l1_loss(Z, y, reduction="none").mean(dim=1),
        "huber": lambda: F.huber_loss(Z, y, reduction="none", delta=1.0).mean(dim=1),
    }[loss]()
    w = torch.tensor(weights)
    value = (w * per_sample).sum() / w.sum()
    value.backward()
    return value.item(), [t.grad.numpy() for t in (W0, b0, W1, b1)]


@pytest.mark.parametrize("head", HEADS, ids=lambda h: f"{h[0]}-{h[2]}-{h[3]}")
def test_weighted_loss_and_gradients_match_pytorch(head):
    params, batch, weights = problem(head)
    value, grads = pn.loss_and_grads(params, batch, loss=head[2], sample_weight=weights)
    expected_value, expected_grads = torch_weighted(params, batch, weights, head)
    assert value == pytest.approx(expected_value, rel=1e-12)
    for ours, theirs in zip(tree_leaves(grads), expected_grads):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("head", HEADS[:5], ids=lambda h: f"{h[0]}-{h[2]}-{h[3]}")
def test_weighted_gradients_match_central_differences(head):
    params, batch, weights = problem(head, seed=1)
    errors = check_grads(params, batch, loss=head[2], eps=1e-5, sample_weight=weights,
                         l2=0.01)
    assert max(errors.values()) < 1e-6, errors


def test_integer_weights_equal_repeated_samples_and_zero_weights_dropped_samples():
    params, batch, _ = problem(HEADS[2])
    weights = np.array([2, 1, 0, 3, 1, 1, 0, 1, 2])
    repeated = np.repeat(np.arange(N), weights)
    value, grads = pn.loss_and_grads(params, batch, sample_weight=weights)
    value_r, grads_r = pn.loss_and_grads(params, pn.Batch(batch.x[repeated],
                                                          batch.y[repeated]))
    assert value == pytest.approx(value_r, rel=1e-14)
    for ours, theirs in zip(tree_leaves(grads), tree_leaves(grads_r)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)


def test_scaling_all_weights_changes_nothing():
    params, batch, weights = problem(HEADS[4])
    a = pn.loss_and_grads(params, batch, sample_weight=weights)
    b = pn.loss_and_grads(params, batch, sample_weight=weights * 1000)
    assert a[0] == pytest.approx(b[0], rel=1e-14)


@pytest.mark.parametrize("weights, message", [
    (np.ones(N - 1), r"shape \(9,\)"),
    (np.full(N, -1.0), "finite and >= 0, got -1.0"),
    (np.r_[np.ones(N - 1), np.nan], "finite and >= 0, got nan"),
    (np.zeros(N), "zero for every sample"),
])
def test_bad_weights_are_refused_with_a_reason(weights, message):
    with pytest.raises(ValueError, match=message):
        normalised_weights(weights, N, np.dtype(np.float64))


def test_weights_that_are_not_numbers_are_refused():
    with pytest.raises(TypeError, match="sample_weight must be numbers"):
        normalised_weights(["a"] * N, N, np.dtype(np.float64))


def test_count_correct_counts_each_sample_as_its_weight():
    A = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    y = np.array([0, 0, 0])
    assert count_correct("categorical_crossentropy", A, y) == 2
    assert count_correct("categorical_crossentropy", A, y, np.array([0.5, 2.0, 0.5])) == 1.0
    P = np.array([[0.9, 0.1], [0.2, 0.3]])
    Y = np.array([[1.0, 1.0], [0.0, 0.0]])
    assert count_correct("binary_crossentropy", P, Y, np.array([2.0, 0.0])) == 1.0


# --- fit ------------------------------------------------------------------------------

ARCH = [{"input_dim": 3, "output_dim": 8, "activation": "relu", "dropout": 0.1},
        {"input_dim": 8, "output_dim": 3, "activation": "softmax"}]
PLAIN = [dict(ARCH[0], dropout=0.0), ARCH[1]]   # no dropout: full-batch fits comparable


def data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    return x, (x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5)


def test_equal_weights_give_the_bits_of_an_unweighted_fit():
    x, y = data()
    plain = pn.fit(ARCH, x, y, epochs=3, batch_size=16, seed=2, l2=1e-3, progress=False)
    ones = pn.fit(ARCH, x, y, epochs=3, batch_size=16, seed=2, l2=1e-3, progress=False,
                  sample_weight=np.ones(len(x)))
    for a, b in zip(tree_leaves(plain.state.params), tree_leaves(ones.state.params)):
        assert a.tobytes() == b.tobytes()
    assert plain.history.train_loss == ones.history.train_loss


def test_full_batch_fit_with_zero_weights_is_the_fit_without_those_samples():
    x, y = data()
    weights = np.where(np.arange(len(x)) % 3 == 0, 0.0, 1.0)
    kept = weights > 0
    settings = dict(epochs=5, batch_size=None, seed=0, dtype="float64", progress=False,
                    optimizer=pn.optim.sgd(0.1))
    weighted = pn.fit(PLAIN, x, y,
                      sample_weight=weights, **settings)
    dropped = pn.fit(PLAIN, x[kept], y[kept], **settings)
    for a, b in zip(tree_leaves(weighted.state.params), tree_leaves(dropped.state.params)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(weighted.history.train_loss, dropped.history.train_loss,
                               rtol=1e-12)


def test_history_reports_the_weighted_mean_loss_and_accuracy():
    x, y = data()
    weights = np.random.default_rng(1).uniform(0, 2, len(x))
    result = pn.fit(PLAIN, x, y, epochs=1, batch_size=None,
                    seed=0, dtype="float64", progress=False, sample_weight=weights,
                    optimizer=pn.optim.sgd(0.0))   # no update: the epoch's params are the start
    start = pn.init_params(PLAIN, seed=0)
    value, _ = pn.loss_and_grads(start, pn.Batch(x, y), sample_weight=weights)
    assert result.history.train_loss[0] == pytest.approx(value, rel=1e-12)
    correct = pn.predict(start, x).argmax(axis=1) == y
    assert result.history.train_accuracy[0] == pytest.approx(
        np.average(correct, weights=weights), rel=1e-12)


def test_checkpoints_resume_only_with_the_same_weights(tmp_path):
    x, y = data()
    weights = np.linspace(0.5, 1.5, len(x))
    ckpt = pn.Checkpointer(tmp_path, every_epochs=1)
    pn.fit(ARCH, x, y, epochs=2, seed=0, progress=False, checkpointer=ckpt,
           sample_weight=weights)
    again = pn.fit(ARCH, x, y, epochs=3, seed=0, progress=False,
                   checkpointer=pn.Checkpointer(tmp_path), resume=True, sample_weight=weights)
    assert again.state.epoch == 3
    with pytest.raises(pn.CheckpointMismatchError, match="sample_weight"):
        pn.fit(ARCH, x, y, epochs=4, seed=0, progress=False, checkpointer=pn.Checkpointer(
            tmp_path), resume=True, sample_weight=weights[::-1])
