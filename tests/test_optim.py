"""Tests for purenet.optim.optimizers: hand-worked update rules, PyTorch as an oracle, an Optax-style
convergence table, purity, dtypes, validation and configs."""

from __future__ import annotations

import copy
import json
import math

import attrs
import numpy as np
import pytest

import purenet as pn
from purenet import optim
from purenet.optim import schedules
from purenet.core.records import Architecture, Batch, Dense, Grads, Params, tree_leaves
from purenet.errors import SettingError

try:
    from purenet.testing import assert_pure
except ImportError:   # pragma: no cover - purenet.testing is written alongside these tests
    assert_pure = None


# --- helpers --------------------------------------------------------------------------


def make_params(W, b, dtype="float64", activation="identity") -> Params:
    W, b = np.asarray(W, dtype=dtype), np.asarray(b, dtype=dtype)
    arch = Architecture.from_dicts(
        [{"input_dim": W.shape[0], "output_dim": W.shape[1], "activation": activation}])
    return Params((Dense(W, b),), arch)


def make_grads(W, b, dtype="float64") -> Grads:
    return Grads((Dense(np.asarray(W, dtype=dtype), np.asarray(b, dtype=dtype)),))


def state_arrays(value) -> list[np.ndarray]:
    """Every array inside an optimizer state (records, Grads, tuples), in a fixed order."""
    if isinstance(value, np.ndarray):
        return [value]
    if isinstance(value, (Grads, Params)):
        return tree_leaves(value)
    if isinstance(value, (tuple, list)):
        return [a for item in value for a in state_arrays(item)]
    if attrs.has(type(value)):
        return [a for f in attrs.fields(type(value)) for a in state_arrays(getattr(value, f.name))]
    return []


def run(opt: optim.Optimizer, params: Params, grads_seq) -> list[Params]:
    """Apply ``opt`` to ``params`` with a fixed gradient sequence; the params after each step."""
    state = opt.init(params)
    path = []
    for grads in grads_seq:
        updates, state = opt.update(grads, state, params)
        params = optim.apply_updates(params, updates)
        path.append(params)
    return path


def flat(params: Params) -> np.ndarray:
    return np.concatenate([a.ravel() for a in tree_leaves(params)])


# --- hand-worked values ---------------------------------------------------------------
#
# One Dense layer with a 2x1 W and a 1-vector b: three scalars (w0, w1, b0). The references
# below run each optimizer's update equations on one scalar at a time, in plain Python
# floats, written out from the papers / torch.optim docs rather than from purenet.

P0 = (1.0, -2.0, 0.5)                     # w0, w1, b0
GRADS = ((0.5, -1.0, 2.0),                # step 1: dL/dw0, dL/dw1, dL/db0
         (-0.25, 0.75, 1.0),
         (1.5, 0.1, -0.3),
         (0.2, -0.4, 0.6))


def tiny_params(dtype="float64") -> Params:
    return make_params([[P0[0]], [P0[1]]], [P0[2]], dtype)


def tiny_grads(dtype="float64") -> list[Grads]:
    return [make_grads([[g[0]], [g[1]]], [g[2]], dtype) for g in GRADS]


def sgd_by_hand(p, gs, lr):
    rates = lr if isinstance(lr, list) else [lr] * len(gs)
    path = []
    for g, rate in zip(gs, rates):
        p = p - rate * g
        path.append(p)
    return path


def momentum_by_hand(p, gs, lr, mu, nesterov):
    buf, path = 0.0, []
    for g in gs:
        buf = mu * buf + g
        direction = g + mu * buf if nesterov else buf
        p = p - lr * direction
        path.append(p)
    return path


def adam_by_hand(p, gs, lr, b1, b2, eps, weight_decay=0.0):
    m = v = 0.0
    path = []
    for t, g in enumerate(gs, start=1):
        p = p - lr * weight_decay * p            # AdamW: decoupled decay, before the step
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat = m / (1 - b1 ** t)
        v_hat = v / (1 - b2 ** t)
        p = p - lr * m_hat / (math.sqrt(v_hat) + eps)   # eps outside the root (PyTorch)
        path.append(p)
    return path


def rmsprop_by_hand(p, gs, lr, decay, eps):
    s, path = 0.0, []
    for g in gs:
        s = decay * s + (1 - decay) * g * g
        p = p - lr * g / (math.sqrt(s) + eps)
        path.append(p)
    return path


def adagrad_by_hand(p, gs, lr, eps):
    s, path = 0.0, []
    for g in gs:
        s = s + g * g
        p = p - lr * g / (math.sqrt(s) + eps)
        path.append(p)
    return path


# Large eps and small b2 on purpose: they make the placement of eps and the bias
# corrections visible in the numbers instead of lost in rounding.
HAND_CASES = {
    "sgd": (lambda: optim.sgd(0.1), lambda p, gs: sgd_by_hand(p, gs, 0.1)),
    "sgd_step_decay": (lambda: optim.sgd(schedules.step_decay(0.1, 0.5, 2)),
                       lambda p, gs: sgd_by_hand(p, gs, [0.1, 0.1, 0.05, 0.05])),
    "momentum": (lambda: optim.momentum(0.1, 0.9),
                 lambda p, gs: momentum_by_hand(p, gs, 0.1, 0.9, False)),
    "nesterov": (lambda: optim.momentum(0.1, 0.8, nesterov=True),
                 lambda p, gs: momentum_by_hand(p, gs, 0.1, 0.8, True)),
    "adam": (lambda: optim.adam(0.1, b1=0.8, b2=0.9, eps=0.1),
             lambda p, gs: adam_by_hand(p, gs, 0.1, 0.8, 0.9, 0.1)),
    "adamw": (lambda: optim.adamw(0.1, b1=0.8, b2=0.9, eps=0.1, weight_decay=0.5),
              lambda p, gs: adam_by_hand(p, gs, 0.1, 0.8, 0.9, 0.1, weight_decay=0.5)),
    "rmsprop": (lambda: optim.rmsprop(0.1, decay=0.7, eps=0.1),
                lambda p, gs: rmsprop_by_hand(p, gs, 0.1, 0.7, 0.1)),
    "adagrad": (lambda: optim.adagrad(0.1, eps=0.1),
                lambda p, gs: adagrad_by_hand(p, gs, 0.1, 0.1)),
}


@pytest.mark.parametrize("name", sorted(HAND_CASES))
def test_update_matches_equations_worked_by_hand(name):
    make_opt, by_hand = HAND_CASES[name]
    path = run(make_opt(), tiny_params(), tiny_grads())
    # Each scalar's own path, from its own gradients alone: the update is elementwise.
    expected = np.array([by_hand(P0[i], [g[i] for g in GRADS]) for i in range(3)]).T
    assert len(path) == len(GRADS)
    for step, (params, want) in enumerate(zip(path, expected), start=1):
        np.testing.assert_allclose(flat(params), want, rtol=1e-14, atol=1e-15,
                                   err_msg=f"{name}, step {step}")


def test_sgd_first_steps_literal():
    path = run(optim.sgd(0.1), tiny_params(), tiny_grads())
    np.testing.assert_allclose(flat(path[0]), [0.95, -1.9, 0.3], rtol=1e-15)
    np.testing.assert_allclose(flat(path[1]), [0.975, -1.975, 0.2], rtol=1e-15)


def test_momentum_first_steps_literal():
    path = run(optim.momentum(0.1, 0.9), tiny_params(), tiny_grads())
    # buf1 = g1, buf2 = 0.9 * g1 + g2 = (0.2, -0.15, 2.8)
    np.testing.assert_allclose(flat(path[0]), [0.95, -1.9, 0.3], rtol=1e-15)
    np.testing.assert_allclose(flat(path[1]), [0.93, -1.885, 0.02], rtol=1e-14)


def test_adam_first_step_is_lr_times_sign_without_eps():
    # After one step m_hat = g and v_hat = g**2, so the update is -lr * g / |g|.
    path = run(optim.adam(0.01, eps=0.0), tiny_params(), tiny_grads()[:1])
    np.testing.assert_allclose(flat(path[0]), np.array(P0) - 0.01 * np.sign(GRADS[0]),
                               rtol=1e-15)


def test_adam_state_holds_raw_moments_and_count():
    opt = optim.adam(0.1, b1=0.8, b2=0.9)
    params = tiny_params()
    state = opt.init(params)
    assert state.count == 0
    for grads in tiny_grads()[:2]:
        _, state = opt.update(grads, state, params)
    assert state.count == 2
    g1, g2 = np.array(GRADS[0]), np.array(GRADS[1])
    np.testing.assert_allclose(flat(state.mu), 0.8 * 0.2 * g1 + 0.2 * g2, rtol=1e-15)
    np.testing.assert_allclose(flat(state.nu), 0.9 * 0.1 * g1 ** 2 + 0.1 * g2 ** 2, rtol=1e-15)


def test_adamw_without_params_raises():
    opt = optim.adamw(0.1)
    state = opt.init(tiny_params())
    with pytest.raises(ValueError, match="adamw needs params"):
        opt.update(tiny_grads()[0], state, None)


# --- PyTorch as an oracle -------------------------------------------------------------


def least_squares(n_samples=12, seed=3):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_samples, 3))
    y = rng.normal(size=(n_samples, 2))
    params = pn.init_params([{"input_dim": 3, "output_dim": 2, "activation": "identity"}],
                            seed=0, dtype="float64")
    return x, y, params


TORCH_CASES = {
    "sgd": (lambda: optim.sgd(0.1), lambda t, ps: t.optim.SGD(ps, lr=0.1)),
    "momentum": (lambda: optim.momentum(0.05, 0.9),
                 lambda t, ps: t.optim.SGD(ps, lr=0.05, momentum=0.9)),
    "nesterov": (lambda: optim.momentum(0.05, 0.8, nesterov=True),
                 lambda t, ps: t.optim.SGD(ps, lr=0.05, momentum=0.8, nesterov=True)),
    "adam": (lambda: optim.adam(0.05, b1=0.85, b2=0.95, eps=1e-3),
             lambda t, ps: t.optim.Adam(ps, lr=0.05, betas=(0.85, 0.95), eps=1e-3)),
    "adamw": (lambda: optim.adamw(0.05, b1=0.85, b2=0.95, eps=1e-3, weight_decay=0.2),
              lambda t, ps: t.optim.AdamW(ps, lr=0.05, betas=(0.85, 0.95), eps=1e-3,
                                          weight_decay=0.2)),
    "rmsprop": (lambda: optim.rmsprop(0.02, decay=0.8, eps=1e-4),
                lambda t, ps: t.optim.RMSprop(ps, lr=0.02, alpha=0.8, eps=1e-4)),
    "adagrad": (lambda: optim.adagrad(0.1, eps=1e-6),
                lambda t, ps: t.optim.Adagrad(ps, lr=0.1, eps=1e-6)),
}


def compare_with_torch(torch, opt, make_torch_opt, make_scheduler=None, lr_of=None,
                       steps=12):
    """Train the least-squares layer in both frameworks, gradients recomputed by each; the
    parameters (and learning rates, when ``lr_of`` is given) must agree after every step."""
    x, y, params = least_squares()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    Wt = torch.tensor(np.array(params.layers[0].W), requires_grad=True)
    bt = torch.tensor(np.array(params.layers[0].b), requires_grad=True)
    torch_opt = make_torch_opt(torch, [Wt, bt])
    scheduler = make_scheduler(torch, torch_opt) if make_scheduler else None
    state = opt.init(params)
    for step in range(steps):
        if lr_of is not None:
            assert lr_of(step) == pytest.approx(torch_opt.param_groups[0]["lr"], rel=1e-12)
        loss, grads = pn.loss_and_grads(params, Batch(x, y), loss="mean_squared_error")
        updates, state = opt.update(grads, state, params)
        params = optim.apply_updates(params, updates)

        torch_opt.zero_grad()
        torch_loss = ((xt @ Wt + bt - yt) ** 2).mean()
        torch_loss.backward()
        torch_opt.step()
        if scheduler is not None:
            scheduler.step()

        assert loss == pytest.approx(torch_loss.item(), rel=1e-12)
        np.testing.assert_allclose(params.layers[0].W, Wt.detach().numpy(), rtol=1e-10,
                                   atol=1e-13, err_msg=f"W after step {step + 1}")
        np.testing.assert_allclose(params.layers[0].b, bt.detach().numpy(), rtol=1e-10,
                                   atol=1e-13, err_msg=f"b after step {step + 1}")


@pytest.mark.parametrize("name", sorted(TORCH_CASES))
def test_matches_torch_optim(name):
    torch = pytest.importorskip("torch")
    make_opt, make_torch_opt = TORCH_CASES[name]
    compare_with_torch(torch, make_opt(), make_torch_opt, steps=15)


SCHEDULE_CASES = {   # name: (schedule, torch scheduler); torch's base lr is the peak
    "step_decay": (
        schedules.step_decay(0.1, 0.5, 3),
        lambda t, o: t.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5)),
    "exponential_staircase": (
        schedules.exponential_decay(0.1, 0.25, 4, staircase=True),
        lambda t, o: t.optim.lr_scheduler.StepLR(o, step_size=4, gamma=0.25)),
    "exponential": (
        schedules.exponential_decay(0.1, 0.5, 2),
        lambda t, o: t.optim.lr_scheduler.ExponentialLR(o, gamma=0.5 ** 0.5)),
    "warmup_cosine_decay": (
        schedules.warmup_cosine_decay(0.1, warmup_steps=4, decay_steps=12, init_value=0.02,
                                      end_value=0.01),
        lambda t, o: t.optim.lr_scheduler.SequentialLR(o, [
            t.optim.lr_scheduler.LinearLR(o, start_factor=0.2, end_factor=1.0, total_iters=4),
            t.optim.lr_scheduler.CosineAnnealingLR(o, T_max=8, eta_min=0.01)], milestones=[4])),
}


@pytest.mark.parametrize("name", sorted(SCHEDULE_CASES))
@pytest.mark.parametrize("algorithm", ["sgd", "adam"])
def test_schedule_matches_torch_lr_scheduler(name, algorithm):
    torch = pytest.importorskip("torch")
    schedule, make_scheduler = SCHEDULE_CASES[name]
    base = getattr(schedule, "peak_value", None) or schedule.init_value
    if algorithm == "sgd":
        opt = optim.sgd(schedule)
        make_torch_opt = lambda t, ps: t.optim.SGD(ps, lr=base)   # noqa: E731
    else:
        opt = optim.adam(schedule, b1=0.9, b2=0.99, eps=1e-6)
        make_torch_opt = lambda t, ps: t.optim.Adam(ps, lr=base, betas=(0.9, 0.99),  # noqa: E731
                                                     eps=1e-6)
    # 13 steps: torch's CosineAnnealingLR climbs again after T_max, purenet holds end_value.
    compare_with_torch(torch, opt, make_torch_opt, make_scheduler, lr_of=schedule, steps=13)


# --- gradient clipping ----------------------------------------------------------------


def big_grads() -> Grads:
    # global norm sqrt(9 + 16 + 144) = 13
    return make_grads([[3.0], [-4.0]], [12.0])


def test_global_norm_by_hand():
    assert optim.global_norm(big_grads()) == 13.0


def test_clip_by_global_norm_by_hand():
    clip = optim.clip_by_global_norm(6.5)
    clipped, _ = clip.update(big_grads(), clip.init(tiny_params()), tiny_params())
    np.testing.assert_allclose(flat(clipped), [1.5, -2.0, 6.0], rtol=1e-15)
    assert optim.global_norm(clipped) == pytest.approx(6.5, rel=1e-15)


def test_clip_by_global_norm_leaves_small_gradients_alone():
    clip = optim.clip_by_global_norm(13.0)
    grads = big_grads()
    clipped, _ = clip.update(grads, clip.init(tiny_params()), tiny_params())
    np.testing.assert_array_equal(flat(clipped), flat(grads))


@pytest.mark.parametrize("max_norm", [0.5, 5.0, 100.0])
def test_clip_by_global_norm_matches_torch(max_norm):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    W, b = rng.normal(size=(4, 3)), rng.normal(size=3)
    clip = optim.clip_by_global_norm(max_norm)
    params = make_params(np.zeros((4, 3)), np.zeros(3))
    clipped, _ = clip.update(make_grads(W, b), clip.init(params), params)
    tensors = [torch.zeros(4, 3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)]
    tensors[0].grad, tensors[1].grad = torch.tensor(W), torch.tensor(b)
    torch_norm = torch.nn.utils.clip_grad_norm_(tensors, max_norm)
    assert optim.global_norm(make_grads(W, b)) == pytest.approx(torch_norm.item(), rel=1e-14)
    # torch scales by max_norm / (norm + 1e-6), purenet by max_norm / norm: they differ
    # by a relative 1e-6 / norm when clipping, not at all otherwise.
    np.testing.assert_allclose(clipped.layers[0].W, tensors[0].grad.numpy(), rtol=1e-6)
    np.testing.assert_allclose(clipped.layers[0].b, tensors[1].grad.numpy(), rtol=1e-6)


def test_clip_by_value_by_hand_and_against_torch():
    clip = optim.clip_by_value(2.5)
    clipped, _ = clip.update(big_grads(), clip.init(tiny_params()), tiny_params())
    np.testing.assert_array_equal(flat(clipped), [2.5, -2.5, 2.5])
    small = make_grads([[0.5], [-1.0]], [2.0])
    np.testing.assert_array_equal(flat(clip.update(small, clip.init(tiny_params()))[0]),
                                  [0.5, -1.0, 2.0])
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(8)
    W, b = rng.normal(scale=3.0, size=(4, 3)), rng.normal(scale=3.0, size=3)
    clipped, _ = clip.update(make_grads(W, b), clip.init(tiny_params()))
    tensors = [torch.zeros(4, 3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)]
    tensors[0].grad, tensors[1].grad = torch.tensor(W), torch.tensor(b)
    torch.nn.utils.clip_grad_value_(tensors, 2.5)
    np.testing.assert_array_equal(clipped.layers[0].W, tensors[0].grad.numpy())
    np.testing.assert_array_equal(clipped.layers[0].b, tensors[1].grad.numpy())


def test_chain_clip_then_adam_equals_clipping_then_adam_by_hand():
    max_norm = 1.0
    grads_seq = [make_grads(np.array([[g[0]], [g[1]]]) * 3, np.array([g[2]]) * 3)
                 for g in GRADS]
    chained = run(optim.chain(optim.clip_by_global_norm(max_norm),
                              optim.adam(0.1, b1=0.8, b2=0.9, eps=0.1)),
                  tiny_params(), grads_seq)
    clipped_by_hand = []
    for g in GRADS:
        g = np.array(g) * 3
        norm = math.sqrt(sum(v * v for v in g))
        clipped_by_hand.append(g * min(1.0, max_norm / norm))
    expected = np.array([adam_by_hand(P0[i], [g[i] for g in clipped_by_hand], 0.1, 0.8, 0.9,
                                      0.1) for i in range(3)]).T
    for params, want in zip(chained, expected):
        np.testing.assert_allclose(flat(params), want, rtol=1e-14, atol=1e-15)


def test_chain_state_holds_each_transforms_state():
    opt = optim.chain(optim.clip_by_value(1.0), optim.momentum(0.1))
    state = opt.init(tiny_params())
    assert isinstance(state, optim.ChainState)
    assert isinstance(state.states[0], optim.EmptyState)
    assert isinstance(state.states[1], optim.MomentumState)
    _, state = opt.update(tiny_grads()[0], state, tiny_params())
    assert state.states[1].count == 1
    np.testing.assert_array_equal(flat(state.states[1].trace), [0.5, -1.0, 1.0])


# --- convergence table (Optax-style) --------------------------------------------------

W_STAR = np.array([[1.0, -2.0], [0.5, 0.3], [-1.5, 2.0]])
B_STAR = np.array([0.7, -0.4])

CONVERGENCE = {   # name: (optimizer, steps); tolerance 1e-4 on every W and b entry
    "sgd": (lambda: optim.sgd(0.5), 100),
    "momentum": (lambda: optim.momentum(0.1, 0.9), 300),
    "nesterov": (lambda: optim.momentum(0.1, 0.9, nesterov=True), 200),
    "adam": (lambda: optim.adam(schedules.exponential_decay(0.1, 0.1, 200)), 400),
    "adamw": (lambda: optim.adamw(schedules.exponential_decay(0.1, 0.1, 200),
                                  weight_decay=1e-5), 400),
    "rmsprop": (lambda: optim.rmsprop(schedules.exponential_decay(0.05, 0.01, 200)), 400),
    "adagrad": (lambda: optim.adagrad(0.5), 300),
    "clip_then_sgd": (lambda: optim.chain(optim.clip_by_global_norm(1.0), optim.sgd(0.5)),
                      150),
}


@pytest.mark.parametrize("name", sorted(CONVERGENCE))
def test_optimizer_reaches_least_squares_minimum(name):
    make_opt, steps = CONVERGENCE[name]
    x = np.random.default_rng(0).normal(size=(64, 3))
    batch = Batch(x, x @ W_STAR + B_STAR)
    params = make_params(np.zeros((3, 2)), np.zeros(2))
    opt = make_opt()
    state = opt.init(params)
    for _ in range(steps):
        _, grads = pn.loss_and_grads(params, batch, loss="mean_squared_error")
        updates, state = opt.update(grads, state, params)
        params = optim.apply_updates(params, updates)
    np.testing.assert_allclose(params.layers[0].W, W_STAR, atol=1e-4, rtol=0)
    np.testing.assert_allclose(params.layers[0].b, B_STAR, atol=1e-4, rtol=0)


# --- purity, dtypes -------------------------------------------------------------------

ALL_OPTIMIZERS = {
    "sgd": lambda: optim.sgd(0.1),
    "sgd_schedule": lambda: optim.sgd(schedules.warmup_cosine_decay(0.1, 2, 10)),
    "momentum": lambda: optim.momentum(0.1),
    "nesterov": lambda: optim.momentum(0.1, nesterov=True),
    "adam": lambda: optim.adam(0.1),
    "adamw": lambda: optim.adamw(0.1, weight_decay=0.1),
    "rmsprop": lambda: optim.rmsprop(0.1),
    "adagrad": lambda: optim.adagrad(0.1),
    "clip_by_global_norm": lambda: optim.clip_by_global_norm(1.0),
    "clip_by_value": lambda: optim.clip_by_value(1.0),
    "chain": lambda: optim.chain(optim.clip_by_global_norm(1.0), optim.adam(0.1)),
}


def two_layer(dtype="float64"):
    arch = [{"input_dim": 3, "output_dim": 4, "activation": "relu"},
            {"input_dim": 4, "output_dim": 2, "activation": "identity"}]
    params = pn.init_params(arch, seed=1, dtype=dtype)
    rng = np.random.default_rng(2)
    grads = [Grads(tuple(Dense(rng.normal(size=l.W.shape).astype(dtype),
                               rng.normal(size=l.b.shape).astype(dtype))
                         for l in params.layers)) for _ in range(3)]
    return params, grads


@pytest.mark.parametrize("name", sorted(ALL_OPTIMIZERS))
def test_update_is_pure_and_returns_read_only_arrays(name):
    opt = ALL_OPTIMIZERS[name]()
    params, grads_seq = two_layer()
    state = opt.init(params)
    assert all(not a.flags.writeable for a in state_arrays(state))
    for grads in grads_seq:   # later steps too: a state that has moved must stay untouched
        before = copy.deepcopy((grads, state, params))
        if assert_pure is not None:
            updates, new_state = assert_pure(opt.update, grads, state, params)
        else:
            updates, new_state = opt.update(grads, state, params)
        for old, now in zip(state_arrays(before), state_arrays((grads, state, params))):
            np.testing.assert_array_equal(old, now)
        for array in [*tree_leaves(updates), *state_arrays(new_state)]:
            assert not array.flags.writeable
        new_params = optim.apply_updates(params, updates)
        assert all(not a.flags.writeable for a in tree_leaves(new_params))
        assert new_params.architecture is params.architecture
        params, state = new_params, new_state
    with pytest.raises(ValueError, match="read-only"):
        tree_leaves(updates)[0][...] = 0.0


@pytest.mark.parametrize("name", sorted(ALL_OPTIMIZERS))
def test_float32_params_stay_float32(name):
    opt = ALL_OPTIMIZERS[name]()
    params, grads_seq = two_layer("float32")
    state = opt.init(params)
    for grads in grads_seq:
        updates, state = opt.update(grads, state, params)
        params = optim.apply_updates(params, updates)
        assert {a.dtype for a in tree_leaves(updates)} == {np.dtype(np.float32)}
        assert {a.dtype for a in state_arrays(state)} <= {np.dtype(np.float32)}
        assert params.dtype == np.float32
        assert {a.dtype for a in tree_leaves(params)} == {np.dtype(np.float32)}


def test_update_with_schedule_uses_the_step_count():
    opt = optim.sgd(schedules.step_decay(1.0, 0.5, 1))
    params, grads = tiny_params(), tiny_grads()[0]
    state = opt.init(params)
    for count in range(4):
        updates, state = opt.update(grads, state, params)
        np.testing.assert_allclose(flat(updates), -(0.5 ** count) * np.array(GRADS[0]))


# --- validation -----------------------------------------------------------------------


@pytest.mark.parametrize("make, error, match", [
    (lambda: optim.sgd(-0.1), ValueError, "learning_rate"),
    (lambda: optim.sgd(float("nan")), ValueError, "learning_rate"),
    (lambda: optim.sgd(float("inf")), ValueError, "learning_rate"),
    (lambda: optim.sgd("0.1"), TypeError,
     "learning_rate must be a number >= 0 or a schedule from purenet.optim.schedules, "
     "got str '0.1'"),
    (lambda: optim.sgd(True), TypeError, "learning_rate"),
    (lambda: optim.sgd(None), TypeError, "learning_rate"),
    (lambda: optim.adam(b1=1.0), ValueError, r"b1 must be a finite number in \[0.0, 1.0\), got 1.0"),
    (lambda: optim.adam(b1=1.5), ValueError, "b1"),
    (lambda: optim.adam(b2=-0.1), ValueError, "b2"),
    (lambda: optim.adam(b1="0.9"), TypeError, "b1"),
    (lambda: optim.adam(eps=-1e-8), ValueError, "eps"),
    (lambda: optim.adamw(weight_decay=-0.01), ValueError, "weight_decay"),
    (lambda: optim.momentum(0.1, momentum=1.0), ValueError, "momentum"),
    (lambda: optim.momentum(-0.1), ValueError, "learning_rate"),
    (lambda: optim.rmsprop(0.1, decay=1.0), ValueError, "decay"),
    (lambda: optim.adagrad(0.1, eps=-1.0), ValueError, "eps"),
    (lambda: optim.clip_by_global_norm(-1.0), ValueError, "max_norm"),
    (lambda: optim.clip_by_value("big"), TypeError, "max_value"),
    (lambda: optim.chain(optim.adam(), "sgd"), TypeError, "chain takes optimizers"),
    (lambda: optim.chain(optim.adam, optim.sgd(0.1)), TypeError, "chain takes optimizers"),
    (lambda: optim.sgd(schedules.constant(-1.0)), ValueError, "value"),
])
def test_bad_hyperparameters_raise(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_numpy_scalar_hyperparameters_are_accepted():
    opt = optim.adam(np.float32(0.01), b1=np.float32(0.9), b2=np.float64(0.99))
    assert isinstance(opt.hyperparams["b1"], float)
    assert opt.hyperparams["b2"] == 0.99
    json.dumps(opt.config())


# --- configs --------------------------------------------------------------------------

SCHEDULE_EXAMPLES = [
    schedules.constant(0.1),
    schedules.step_decay(0.1, 0.5, 10),
    schedules.exponential_decay(0.1, 0.9, 5, staircase=True),
    schedules.warmup_cosine_decay(0.1, 5, 50, init_value=0.01, end_value=0.001),
]


@pytest.mark.parametrize("name", sorted(ALL_OPTIMIZERS))
def test_config_is_plain_json_data(name):
    opt = ALL_OPTIMIZERS[name]()
    config = opt.config()
    assert json.loads(json.dumps(config)) == config
    assert optim.from_config(config).config() == config


def test_config_contents():
    assert optim.adam().config() == {"name": "adam", "learning_rate": 0.001, "b1": 0.9,
                                     "b2": 0.999, "eps": 1e-08}
    assert optim.momentum(schedules.constant(0.1), 0.8, nesterov=True).config() == {
        "name": "momentum", "learning_rate": 0.1, "momentum": 0.8, "nesterov": True}
    assert optim.sgd(schedules.step_decay(0.1, 0.5, 10)).config() == {
        "name": "sgd", "learning_rate": {"schedule": "step_decay", "init_value": 0.1,
                                         "decay_rate": 0.5, "step_size": 10}}


def test_a_chain_of_transforms_then_one_optimizer_is_flat():
    chained = optim.chain(optim.clip_by_global_norm(1.0), optim.clip_by_value(0.5),
                          optim.adam(0.01)).config()
    assert chained == {"name": "adam", "learning_rate": 0.01, "b1": 0.9, "b2": 0.999,
                       "eps": 1e-08, "clip_by_global_norm": 1.0, "clip_by_value": 0.5}
    assert optim.chain(optim.clip_by_value(1.0), optim.sgd(0.1)).config() == {
        "name": "sgd", "learning_rate": 0.1, "clip_by_value": 1.0}


@pytest.mark.parametrize("make", [
    # the flat form fixes the transforms' order (TRANSFORMS'), so any other order, a
    # repeated transform or two optimizers keep the general form
    lambda: optim.chain(optim.clip_by_value(0.5), optim.clip_by_global_norm(1.0), optim.sgd(0.1)),
    lambda: optim.chain(optim.clip_by_value(0.5), optim.clip_by_value(0.2), optim.sgd(0.1)),
    lambda: optim.chain(optim.sgd(0.1), optim.adam(0.1)),
    lambda: optim.chain(optim.clip_by_value(0.5)),
], ids=["reordered", "repeated", "two_optimizers", "no_optimizer"])
def test_other_chains_keep_the_general_form(make):
    opt = make()
    config = opt.config()
    assert config["name"] == "chain"
    assert config["transforms"] == [t.config() for t in opt.hyperparams["transforms"]]
    assert optim.from_config(config).config() == config


@pytest.mark.parametrize("schedule", SCHEDULE_EXAMPLES, ids=lambda s: type(s).__name__)
def test_schedule_in_optimizer_config_round_trips(schedule):
    config = json.loads(json.dumps(optim.adamw(schedule).config()))
    if isinstance(schedule, schedules.constant):
        assert config["learning_rate"] == schedule.value
    else:
        assert schedules.schedule_from_config(config["learning_rate"]) == schedule


# --- from_config ----------------------------------------------------------------------

LEARNING_RATES = [0.05, *SCHEDULE_EXAMPLES]
CLIPS = {
    "no_clip": [],
    "global_norm": [lambda: optim.clip_by_global_norm(0.5)],
    "value": [lambda: optim.clip_by_value(0.3)],
    "both": [lambda: optim.clip_by_global_norm(0.5), lambda: optim.clip_by_value(0.3)],
}
FACTORIES = {
    "sgd": optim.sgd,
    "momentum": lambda lr: optim.momentum(lr, momentum=0.8),
    "nesterov": lambda lr: optim.momentum(lr, nesterov=True),
    "adam": lambda lr: optim.adam(lr, b1=0.8),
    "adamw": lambda lr: optim.adamw(lr, weight_decay=0.1),
    "rmsprop": lambda lr: optim.rmsprop(lr, decay=0.95),
    "adagrad": lambda lr: optim.adagrad(lr, eps=1e-9),
}


def run_updates(opt, steps=5):
    params, grads = two_layer()
    state = opt.init(params)
    for k in range(steps):
        updates, state = opt.update(grads[k % len(grads)], state, params)
        params = optim.apply_updates(params, updates)
    return tree_leaves(params)


@pytest.mark.parametrize("clip", sorted(CLIPS))
@pytest.mark.parametrize("lr", LEARNING_RATES, ids=lambda v: type(v).__name__)
@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_from_config_inverts_config(name, lr, clip):
    made = FACTORIES[name](lr)
    opt = optim.chain(*(t() for t in CLIPS[clip]), made) if CLIPS[clip] else made
    config = json.loads(json.dumps(opt.config()))
    rebuilt = optim.from_config(config)
    assert rebuilt.config() == opt.config()
    for a, b in zip(run_updates(rebuilt), run_updates(opt)):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()


def test_from_config_reads_the_version_1_shapes():
    v1 = {"name": "chain", "transforms": [
        {"name": "clip_by_global_norm", "max_norm": 1.0},
        {"name": "clip_by_value", "max_value": 0.5},
        {"name": "momentum", "learning_rate": {"schedule": "constant", "value": 0.1},
         "momentum": 0.9, "nesterov": True}]}
    opt = optim.from_config(v1)
    assert opt.config() == {"name": "momentum", "learning_rate": 0.1, "momentum": 0.9,
                            "nesterov": True, "clip_by_global_norm": 1.0, "clip_by_value": 0.5}
    reference = optim.chain(optim.clip_by_global_norm(1.0), optim.clip_by_value(0.5),
                            optim.momentum(0.1, nesterov=True))
    for a, b in zip(run_updates(opt), run_updates(reference)):
        assert a.tobytes() == b.tobytes()
    warm = {"name": "adam", "learning_rate": {"schedule": "warmup_cosine_decay",
            "peak_value": 0.1, "warmup_steps": 2, "decay_steps": 10, "init_value": 0.0,
            "end_value": 0.0}, "b1": 0.9, "b2": 0.999, "eps": 1e-08}
    assert optim.from_config(warm).config() == warm


def test_from_config_leaves_its_argument_alone():
    config = {"name": "adam", "learning_rate": {"schedule": "step_decay", "init_value": 0.1,
              "decay_rate": 0.5, "step_size": 10}, "clip_by_value": 1.0}
    before = copy.deepcopy(config)
    optim.from_config(config)
    assert config == before


def test_from_config_fills_in_defaults():
    assert optim.from_config({"name": "adam"}).config() == optim.adam().config()


@pytest.mark.parametrize("config, error, path, match", [
    ({"learning_rate": 0.1}, ValueError, ("name",),
     r"name is missing; expected one of \['adagrad', 'adam', .*'sgd'\]"),
    ({"name": "adamm"}, ValueError, ("name",),
     r"name is unknown: 'adamm'; expected one of \[.*\(did you mean 'adam'\?\)"),
    ({"name": 3}, TypeError, ("name",), r"name must be one of \[.*got int 3"),
    ({"name": "adam", "beta1": 0.9}, ValueError, ("beta1",),
     r"beta1 is not an argument of adam; expected one of \['b1', 'b2', 'clip_by_global_norm'"),
    ({"name": "clip_by_value", "max_value": 1.0, "clip_by_global_norm": 1.0}, ValueError,
     ("clip_by_global_norm",), "is not an argument of clip_by_value; expected one of "
                               r"\['max_value'\]"),
    ({"name": "sgd"}, ValueError, ("learning_rate",), "learning_rate is missing; sgd needs"),
    ({"name": "adam", "b1": 1.5}, ValueError, ("b1",),
     r"b1 must be a finite number in \[0.0, 1.0\), got 1.5"),
    ({"name": "adam", "b1": "0.9"}, TypeError, ("b1",), "b1 must be a number .*got str '0.9'"),
    ({"name": "adam", "eps": True}, TypeError, ("eps",), "eps must be a number .*got bool True"),
    ({"name": "sgd", "learning_rate": "0.1"}, TypeError, ("learning_rate",),
     "learning_rate must be a number >= 0 or a schedule"),
    ({"name": "sgd", "learning_rate": -0.1}, ValueError, ("learning_rate",),
     "learning_rate must be a finite number >= 0, got -0.1"),
    ({"name": "momentum", "learning_rate": 0.1, "nesterov": "yes"}, TypeError, ("nesterov",),
     "nesterov must be true or false, got str 'yes'"),
    ({"name": "sgd", "learning_rate": {"schedule": "warmup_cosine_decay", "peak_value": 0.1,
                                       "warmup_steps": -2, "decay_steps": 10}},
     ValueError, ("learning_rate", "warmup_steps"),
     r"learning_rate.warmup_steps must be an integer >= 0, got -2"),
    ({"name": "sgd", "learning_rate": {"schedule": "cosine", "value": 0.1}}, ValueError,
     ("learning_rate", "schedule"), r"learning_rate.schedule is unknown: 'cosine'"),
    ({"name": "sgd", "learning_rate": {"schedule": "constant", "value": 0.1, "x": 1}},
     ValueError, ("learning_rate", "x"), "is not an argument of constant"),
    ({"name": "adam", "clip_by_value": -1.0}, ValueError, ("clip_by_value",),
     r"clip_by_value must be a finite number >= 0, got -1.0"),
    ({"name": "adam", "clip_by_global_norm": "1"}, TypeError, ("clip_by_global_norm",),
     "clip_by_global_norm must be a number"),
    ({"name": "chain", "transforms": [{"name": "clip_by_value", "max_value": 1.0},
                                      {"name": "adam", "b2": 2.0}]},
     ValueError, ("transforms", 1, "b2"), r"transforms\[1\].b2 must be a finite number"),
    ({"name": "chain", "transforms": []}, TypeError, ("transforms",),
     "transforms must be a non-empty list"),
    ({"name": "chain", "transforms": [{"name": "sgd", "learning_rate": 0.1}], "lr": 1},
     ValueError, ("lr",), "lr is not an argument of chain"),
    ("adam", TypeError, (), "an optimizer config must be a table"),
])
def test_from_config_names_the_bad_setting(config, error, path, match):
    with pytest.raises(error, match=match) as info:
        optim.from_config(config)
    assert isinstance(info.value, SettingError)
    assert info.value.path == path


def test_registries_name_every_factory():
    assert set(optim.OPTIMIZERS) == {"sgd", "momentum", "adam", "adamw", "rmsprop", "adagrad"}
    for name, factory in {**optim.OPTIMIZERS, **optim.TRANSFORMS}.items():
        assert factory.__name__ == name
