"""Tests for purenet.optim.lbfgs and optim.line_search: PyTorch's LBFGS(line_search_fn=
"strong_wolfe") as the oracle of the iterates, the minimum of a least-squares problem,
every stopping rule, the curvature memory, purity, dtypes and refusals."""

from __future__ import annotations

import numpy as np
import pytest

import purenet as pn
from purenet import optim
from purenet.core.records import tree_leaves
from purenet.errors import SettingError, UnknownKeyError
from purenet.optim.flat import flatten, unflatten
from purenet.optim.line_search import Trial, cubic_minimum, strong_wolfe
from purenet.testing import assert_pure

CLASSIFIER = [{"input_dim": 4, "output_dim": 8, "activation": "tanh"},
              {"input_dim": 8, "output_dim": 3, "activation": "softmax"}]
REGRESSOR = [{"input_dim": 3, "output_dim": 6, "activation": "tanh"},
             {"input_dim": 6, "output_dim": 2, "activation": "linear"}]


def problem(arch, n=40, seed=0, dtype="float64"):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, arch[0]["input_dim"]))
    if arch[-1]["activation"] == "softmax":
        y = rng.integers(0, arch[-1]["output_dim"], size=n)
    else:
        y = np.sin(x @ rng.normal(size=(x.shape[1], arch[-1]["output_dim"])))
    params = pn.init_params(pn.Architecture.from_dicts(arch), seed=seed, dtype=dtype)
    batch = pn.Batch(x.astype(dtype), y.astype(dtype) if y.dtype.kind == "f" else y)
    return params, batch, (lambda p: pn.loss_and_grads(p, batch))


def our_iterates(opt, params, objective, steps):
    state, path, infos = opt.init(params), [], []
    for _ in range(steps):
        params, state, info = opt.step(objective, params, state)
        path.append(flatten(params))
        infos.append(info)
    return path, state, infos


# --- PyTorch as the oracle ----------------------------------------------------------------


def torch_model(arch, params, batch):
    torch = pytest.importorskip("torch")
    leaves = [torch.tensor(np.array(a), dtype=torch.float64, requires_grad=True)
              for a in tree_leaves(params)]
    x = torch.tensor(np.asarray(batch.x), dtype=torch.float64)
    y = torch.tensor(np.asarray(batch.y))
    hidden = {"tanh": torch.tanh}[arch[0]["activation"]]

    def loss():
        h = hidden(x @ leaves[0] + leaves[1])
        z = h @ leaves[2] + leaves[3]
        if arch[-1]["activation"] == "softmax":
            return torch.nn.functional.cross_entropy(z, y)
        return torch.mean((z - y) ** 2)   # purenet's: the mean over samples and outputs

    return torch, leaves, loss


def torch_iterates(arch, params, batch, steps, **settings):
    """PyTorch's iterates, one ``step`` call of one iteration each (its state carries over
    between calls, so these are the iterates of one long run)."""
    torch, leaves, loss = torch_model(arch, params, batch)
    opt = torch.optim.LBFGS(leaves, max_iter=1, max_eval=26, line_search_fn="strong_wolfe",
                            **settings)

    def closure():
        opt.zero_grad()
        value = loss()
        value.backward()
        return value

    path = []
    for _ in range(steps):
        opt.step(closure)
        path.append(torch.cat([p.detach().reshape(-1) for p in leaves]).numpy().copy())
    return path


@pytest.mark.parametrize("arch, settings", [
    (CLASSIFIER, {}),
    (REGRESSOR, {"history_size": 4}),
    # A long first step: line searches that bracket and zoom.
    (REGRESSOR, {"lr": 40.0, "history_size": 3}),
], ids=["softmax", "regression-m4", "regression-zooming"])
def test_iterates_agree_with_pytorch_lbfgs_strong_wolfe(arch, settings):
    params, batch, objective = problem(arch)
    ours = dict(settings)
    ours["learning_rate"] = ours.pop("lr", 1.0)
    path, state, infos = our_iterates(optim.lbfgs(**ours), params, objective, 20)
    theirs = torch_iterates(arch, params, batch, 20, **settings)
    for k, (a, b) in enumerate(zip(path, theirs)):
        assert np.max(np.abs(a - b)) <= 1e-10, f"iteration {k + 1}"
    assert state.iterations == 20 and not any(info.stopped for info in infos)
    if "lr" in settings:   # the zoom phase was reached
        assert max(info.evals for info in infos) >= 3


def test_one_pytorch_call_of_many_iterations_is_the_same_run_with_the_same_evaluations():
    """PyTorch's max_eval bounds the evaluations of one ``step`` call, its line searches
    cut short to stay within it; ours bounds a run's the same way."""
    params, batch, objective = problem(REGRESSOR)
    torch, leaves, loss = torch_model(REGRESSOR, params, batch)
    opt = torch.optim.LBFGS(leaves, max_iter=15, max_eval=18, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        value = loss()
        value.backward()
        return value

    opt.step(closure)
    theirs = torch.cat([p.detach().reshape(-1) for p in leaves]).numpy()
    final, state, info = optim.minimize(optim.lbfgs(max_eval=18, max_ls=10**6), objective,
                                        params, 15)
    assert np.max(np.abs(flatten(final) - theirs)) <= 1e-10
    assert state.evals == opt.state[leaves[0]]["func_evals"]
    assert state.iterations == opt.state[leaves[0]]["n_iter"]


# --- the algorithm on its own ------------------------------------------------------------


def test_it_finds_the_least_squares_solution_of_a_linear_network():
    rng = np.random.default_rng(3)
    x, w = rng.normal(size=(50, 3)), np.array([[1.5], [-2.0], [0.5]])
    y = x @ w + 0.25
    arch = pn.Architecture.from_dicts([{"input_dim": 3, "output_dim": 1,
                                        "activation": "linear"}])
    params = pn.init_params(arch, seed=0, dtype="float64")
    objective = lambda p: pn.loss_and_grads(p, pn.Batch(x, y))
    final, state, info = optim.minimize(optim.lbfgs(tolerance_grad=1e-12, tolerance_change=0.0),
                                        objective, params, 100)
    solution = np.linalg.lstsq(np.c_[x, np.ones(len(x))], y, rcond=None)[0]
    np.testing.assert_allclose(final.layers[0].W, solution[:3], atol=1e-9)
    np.testing.assert_allclose(final.layers[0].b, solution[3], atol=1e-9)
    assert info.stopped == "gradient" and state.iterations < 20


def test_the_memory_keeps_the_newest_history_size_pairs():
    params, _, objective = problem(REGRESSOR)
    opt = optim.lbfgs(history_size=3)
    state, pairs = opt.init(params), []
    for _ in range(8):
        params, state, _ = opt.step(objective, params, state)
        pairs.append(state.s)
    assert [len(s) for s in pairs] == [1, 2, 3, 3, 3, 3, 3, 3]
    assert pairs[-1][:2] == pairs[-2][1:]   # shifted by one: the oldest dropped, shared
    assert len(state.y) == len(state.rho) == 3
    assert all(rho == 1 / float(np.dot(y, s)) for s, y, rho in zip(state.s, state.y, state.rho))


def test_the_state_keeps_the_loss_and_gradient_of_its_parameters():
    params, _, objective = problem(CLASSIFIER)
    opt = optim.lbfgs()
    state = opt.init(params)
    for _ in range(3):
        params, state, info = opt.step(objective, params, state)
        loss, grads = objective(params)
        assert state.loss == info.loss == loss
        assert np.array_equal(state.grad, flatten(grads))
    assert state.count == state.iterations == 3 and state.evals >= 4


@pytest.mark.parametrize("settings, reason", [
    ({"tolerance_grad": 1e3}, "gradient"),
    ({"max_eval": 5}, "max_eval"),
    ({"tolerance_change": 1e-2}, "loss"),
    ({"tolerance_change": 1e-3}, "descent"),
    # Steps of 1e-6, grown at most tenfold by a search of one more evaluation: too short.
    ({"tolerance_change": 1e-3, "learning_rate": 1e-6, "max_ls": 1}, "step"),
])
def test_each_stopping_rule_says_why(settings, reason):
    params, _, objective = problem(CLASSIFIER)
    final, state, info = optim.minimize(optim.lbfgs(**settings), objective, params, 200)
    assert info.stopped == state.stopped == reason
    assert reason in optim.STOP_REASONS
    if reason == "max_eval":
        assert state.evals == 5


def test_a_step_at_a_minimum_stays_and_costs_no_evaluation():
    params, _, objective = problem(CLASSIFIER)
    opt = optim.lbfgs(tolerance_grad=1e3)
    params1, state1, info1 = opt.step(objective, params, opt.init(params))
    assert params1 is params and info1 == optim.StepInfo(state1.loss, 1, 0, "gradient")
    params2, state2, info2 = opt.step(objective, params1, state1)
    assert params2 is params and info2.evals == 0 and info2.accepted == -1
    assert state2.count == 2 and state2.evals == 1 and state2.iterations == 0


def test_a_step_is_pure():
    params, _, objective = problem(CLASSIFIER)
    opt = optim.lbfgs()
    state = opt.init(params)
    for _ in range(2):   # from a state with memory too
        params, state, _ = assert_pure(opt.step, objective, params, state)
    for array in (state.grad, *state.s, *state.y, *tree_leaves(params)):
        assert not array.flags.writeable


def test_float32_parameters_keep_a_float32_state():
    params, _, objective = problem(CLASSIFIER, dtype="float32")
    final, state, _ = optim.minimize(optim.lbfgs(), objective, params, 5)
    assert final.dtype == np.float32
    assert state.grad.dtype == np.float32 and all(s.dtype == np.float32 for s in state.s)


def test_flat_vectors_round_trip_in_pytorchs_order():
    params, _, _ = problem(CLASSIFIER)
    vector = flatten(params)
    assert np.array_equal(vector, np.concatenate([a.ravel() for a in tree_leaves(params)]))
    back = unflatten(vector, params)
    assert all(np.array_equal(a, b) for a, b in zip(tree_leaves(back), tree_leaves(params)))
    with pytest.raises(ValueError, match="does not fit parameters of 67"):
        unflatten(vector[:-1], params)


def test_the_line_search_returns_the_first_step_meeting_the_wolfe_conditions():
    d = np.array([1.0])
    phi = lambda t: ((t - 1.0) ** 2, np.array([2 * (t - 1.0)]))
    start = Trial(0.0, 1.0, np.array([-2.0]), -2.0, -1)
    found = strong_wolfe(phi, d, start, 1.0)
    assert found.step.t == 1.0 and found.evals == 1
    assert cubic_minimum(0.0, 1.0, -2.0, 2.0, 1.0, 2.0) == 1.0
    assert cubic_minimum(1.0, 0.0, 0.0, 1.0, 0.0, 0.0) == 1.0   # one point: the middle


# --- refusals -----------------------------------------------------------------------------


@pytest.mark.parametrize("settings, words", [
    ({"learning_rate": 0.0}, "learning_rate must be a number > 0"),
    ({"learning_rate": "1"}, "learning_rate must be a number"),
    ({"history_size": 0}, "history_size must be an integer >= 1"),
    ({"history_size": 2.5}, "history_size must be an integer"),
    ({"tolerance_grad": -1.0}, "tolerance_grad must be a finite number >= 0"),
    ({"tolerance_change": float("nan")}, "tolerance_change must be a finite number"),
    ({"max_ls": 0}, "max_ls must be an integer >= 1"),
    ({"max_eval": 0}, "max_eval must be an integer >= 1"),
])
def test_bad_settings_are_refused_by_name(settings, words):
    with pytest.raises(SettingError, match=words):
        optim.lbfgs(**settings)


def test_a_state_of_other_parameters_or_another_optimizer_is_refused():
    params, _, objective = problem(CLASSIFIER)
    other, _, _ = problem(REGRESSOR)
    opt = optim.lbfgs()
    with pytest.raises(ValueError, match="the state belongs to 38 float64 parameters, these "
                                         "are 67 float64; start from opt.init"):
        opt.step(objective, params, opt.init(other))
    with pytest.raises(TypeError, match="lbfgs steps from an LbfgsState"):
        opt.step(objective, params, optim.adam().init(params))


def test_an_objective_must_return_the_loss_and_grads():
    params, _, _ = problem(CLASSIFIER)
    opt = optim.lbfgs()
    with pytest.raises(TypeError, match=r"must return \(loss, Grads\), got a ndarray"):
        opt.step(lambda p: (1.0, np.zeros(3)), params, opt.init(params))


def test_minimize_takes_an_objective_optimizer_and_a_count():
    params, _, objective = problem(CLASSIFIER)
    with pytest.raises(TypeError, match="takes an optimizer that takes the objective"):
        optim.minimize(optim.adam(), objective, params, 3)
    with pytest.raises(SettingError, match="max_iter must be an integer >= 0"):
        optim.minimize(optim.lbfgs(), objective, params, -1)
    same, state, info = optim.minimize(optim.lbfgs(), objective, params, 0)
    assert same is params and info is None and state.count == 0


def test_lbfgs_is_refused_in_a_chain():
    with pytest.raises(TypeError, match="chain takes optimizers and transforms, got "
                                        "ObjectiveOptimizer"):
        optim.chain(optim.clip_by_value(1.0), optim.lbfgs())


# --- as plain data ------------------------------------------------------------------------


def test_its_config_round_trips_and_leaves_out_an_unset_max_eval():
    opt = optim.lbfgs(history_size=7, max_ls=9)
    assert opt.config() == {"name": "lbfgs", "learning_rate": 1.0, "history_size": 7,
                            "tolerance_grad": 1e-7, "tolerance_change": 1e-9, "max_ls": 9}
    assert optim.from_config(opt.config()).config() == opt.config()
    bounded = optim.lbfgs(max_eval=30).config()
    assert bounded["max_eval"] == 30 and optim.from_config(bounded).config() == bounded


@pytest.mark.parametrize("config, error, words", [
    ({"name": "lbfgs", "clip_by_global_norm": 1.0}, UnknownKeyError,
     "clip_by_global_norm cannot be used with lbfgs"),
    ({"name": "lbfgs", "histroy_size": 3}, UnknownKeyError,
     "histroy_size is not an argument of lbfgs"),
    ({"name": "lbfgs", "history_size": "3"}, SettingError, "history_size must be an integer"),
    ({"name": "lbfsg"}, SettingError, "did you mean 'lbfgs'"),
])
def test_bad_configs_are_refused_by_key(config, error, words):
    with pytest.raises(error, match=words):
        optim.from_config(config)


# --- properties -----------------------------------------------------------------------------


def test_every_step_of_a_convex_quadratic_decreases_it_sufficiently():
    """Property: on random convex quadratics, from any start and first trial length, the
    line search's step meets the Armijo condition (sufficient decrease)."""
    pytest.importorskip("hypothesis")
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=40, deadline=None, derandomize=True)
    @given(st.integers(0, 2**32 - 1), st.integers(2, 6), st.floats(1e-2, 1e2))
    def check(seed, n, learning_rate):
        rng = np.random.default_rng(seed)
        root = rng.normal(size=(n, n))
        A, b = root @ root.T + 0.1 * np.eye(n), rng.normal(size=n)
        phi_of = lambda x: (lambda t, d: (0.5 * (x + t * d) @ A @ (x + t * d) - b @ (x + t * d),
                                          A @ (x + t * d) - b))
        x = rng.normal(size=n)
        g = A @ x - b
        d = -g
        start = Trial(0.0, float(0.5 * x @ A @ x - b @ x), g, float(g @ d), -1)
        phi = phi_of(x)
        found = strong_wolfe(lambda t: phi(t, d), d, start, learning_rate).step
        assert found.f <= start.f + 1e-4 * found.t * start.gtd + 1e-12 * abs(start.f)
        assert found.f <= start.f

    check()
