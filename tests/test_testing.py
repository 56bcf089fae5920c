"""The test helpers catch what they are meant to catch."""

import attrs
import numpy as np
import pytest

import purenet as pn
from purenet.core import network
from purenet.core.records import Dense, tree_map
from purenet.testing import assert_pure, assert_records_equal, check_grads, differences

ARCH = [
    {"input_dim": 3, "output_dim": 4, "activation": "tanh"},
    {"input_dim": 4, "output_dim": 2, "activation": "softmax"},
]


@pytest.fixture
def problem():
    rng = np.random.default_rng(0)
    params = pn.init_params(ARCH, seed=1, init="glorot_normal")
    return params, pn.Batch(rng.normal(size=(6, 3)), rng.integers(0, 2, size=6))


def test_check_grads_names_every_array_and_passes_the_engine(problem):
    errors = check_grads(*problem)
    assert list(errors) == ["layers[0].W", "layers[0].b", "layers[1].W", "layers[1].b"]
    assert max(errors.values()) < 1e-7


def test_check_grads_upcasts_float32(problem):
    params, batch = problem
    params32 = tree_map(lambda a: a.astype(np.float32), params)
    assert max(check_grads(params32, batch).values()) < 1e-7
    assert params32.dtype == np.float32


def test_check_grads_passes_keywords_on(problem):
    assert max(check_grads(*problem, l2=0.1).values()) < 1e-7


def test_check_grads_catches_a_wrong_gradient(problem, monkeypatch):
    true_backward = network._backward

    def off_by_ten_percent_in_the_last_bias(params, cache, y, loss, l2=0.0, weights=None):
        grads = true_backward(params, cache, y, loss, l2, weights)
        last = grads.layers[-1]
        layers = (*grads.layers[:-1], Dense(last.W, last.b * 1.1))
        return attrs.evolve(grads, layers=layers)

    monkeypatch.setattr(network, "_backward", off_by_ten_percent_in_the_last_bias)
    errors = check_grads(*problem)
    assert errors["layers[1].b"] == pytest.approx(0.1 / 1.1, rel=1e-4)
    assert errors["layers[0].W"] < 1e-7


def test_assert_pure_returns_the_result(problem):
    params, batch = problem
    loss, _ = assert_pure(pn.loss_and_grads, params, batch)
    assert loss == pn.loss_and_grads(params, batch)[0]


def test_assert_pure_catches_writing_into_an_argument():
    def normalise_in_place(x):
        x /= x.sum()
        return x

    with pytest.raises(AssertionError, match=r"changed its arguments.*\n  args\[0\]: 2 of 2"):
        assert_pure(normalise_in_place, np.array([1.0, 3.0]))


def test_assert_pure_catches_a_change_inside_a_dict_keyword():
    def pop_it(*, options):
        options.pop("a")

    with pytest.raises(AssertionError, match=r"kwargs\['options'\]: keys"):
        assert_pure(pop_it, options={"a": 1})


def test_assert_pure_catches_hidden_state():
    calls = []

    def counter(x):
        calls.append(x)
        return float(len(calls))

    with pytest.raises(AssertionError, match=r"different results.*\n  result: 1.0 != 2.0"):
        assert_pure(counter, 0)


def test_assert_pure_catches_the_global_rng():
    with pytest.raises(AssertionError, match="global RNG"):
        assert_pure(lambda n: np.random.standard_normal(n), 2)


def test_assert_records_equal_accepts_copies(problem):
    params, _ = problem
    assert_records_equal(params, tree_map(np.copy, params))
    assert_records_equal({"x": (np.array([np.nan]), 1.5)}, {"x": (np.array([np.nan]), 1.5)})


def test_assert_records_equal_names_the_field(problem):
    params, _ = problem
    changed = tree_map(np.copy, params)
    b = changed.layers[1].b.copy()
    b[1] += 1e-12
    changed = attrs.evolve(changed, layers=(changed.layers[0], Dense(changed.layers[1].W, b)))
    with pytest.raises(AssertionError, match=r"layers\[1\]\.b: 1 of 2 entries differ, the first "
                                             r"at \(1,\)"):
        assert_records_equal(params, changed)


def test_assert_records_equal_compares_dtypes_and_types(problem):
    params, _ = problem
    with pytest.raises(AssertionError, match=r"layers\[0\]\.W: dtype float64 != float32"):
        assert_records_equal(params, tree_map(lambda a: a.astype(np.float32), params))
    with pytest.raises(AssertionError, match="type Params != Grads"):
        assert_records_equal(params, pn.Grads(params.layers))
    assert list(differences([1, 2], [1, 2, 3])) == ["the value: length 2 != 3"]


# --- the kit: trees, shapes, dtypes, a user's objective, replay ---------------------------


def test_assert_trees_close_within_and_beyond_the_tolerances(problem):
    from purenet.testing import assert_trees_close, assert_trees_equal

    params, _ = problem
    near = tree_map(lambda a: a * (1 + 1e-9), params)
    assert_trees_close(near, params, rtol=1e-8)
    with pytest.raises(AssertionError, match=r"layers\[0\].W: \d+ of \d+ entries differ "
                                             r"\(rtol=1e-10, atol=0\), the first at \(0, 0\)"):
        assert_trees_close(near, params, rtol=1e-10)
    with pytest.raises(AssertionError, match="records differ"):
        assert_trees_equal(near, params)
    with pytest.raises(ValueError, match="rtol and atol must be numbers >= 0"):
        assert_trees_close(near, params, rtol=-1)


def test_assert_shape_and_dtype_name_the_leaf(problem):
    from purenet.testing import assert_dtype, assert_shape

    params, _ = problem
    assert_shape(params.layers[0].W, (None, params.layers[0].W.shape[1]))
    with pytest.raises(AssertionError, match=r"\n  \[1\].b: shape \(2,\)"):
        assert_shape(params.layers, (None, None))
    assert_dtype(params, params.dtype)
    with pytest.raises(AssertionError, match=r"expected dtype float16:\n  layers\[0\].W"):
        assert_dtype(params, "float16")


def test_check_objective_checks_a_user_s_own_objective(problem):
    from purenet.testing import check_objective

    params, batch = problem

    def objective(p):   # purenet's loss plus a penalty of the user's, with its gradient
        loss, grads = pn.loss_and_grads(p, batch)
        penalty = sum(float((layer.W ** 2).sum()) for layer in p.layers)
        layers = [Dense(g.W + 2 * layer.W, g.b) for g, layer in zip(grads.layers, p.layers)]
        return loss + penalty, attrs.evolve(grads, layers=tuple(layers))
    assert max(check_objective(objective, params).values()) < 1e-6

    def wrong(p):       # forgets the penalty's gradient
        loss, grads = pn.loss_and_grads(p, batch)
        return loss + sum(float((layer.W ** 2).sum()) for layer in p.layers), grads
    assert check_objective(wrong, params)["layers[0].W"] > 1e-3


def test_assert_resumes_exactly_passes_purenet_and_catches_an_inexact_resume(monkeypatch):
    from purenet.checkpoint.policy import Checkpointer
    from purenet.testing import assert_resumes_exactly

    x = np.random.default_rng(0).normal(size=(20, 2))
    y = (x[:, 0] > 0).astype(int)
    config = pn.RunConfig([{"input_dim": 2, "output_dim": 4, "activation": "relu"},
                           {"input_dim": 4, "output_dim": 1, "activation": "sigmoid"}],
                          pn.optim.adam(1e-2), epochs=3, batch_size=8, seed=1)
    assert assert_resumes_exactly(config, x, y, 4).step == 9
    real = Checkpointer.restore

    def drifting(self, *args, **kwargs):   # a resume that is off in one bit of one weight
        state = real(self, *args, **kwargs)
        if state is None:
            return None
        W = state.params.layers[0].W.copy()
        W.flat[0] = np.nextafter(W.flat[0], np.inf)
        layers = (Dense(W, state.params.layers[0].b), *state.params.layers[1:])
        return attrs.evolve(state, params=attrs.evolve(state.params, layers=layers))
    monkeypatch.setattr(Checkpointer, "restore", drifting)
    with pytest.raises(AssertionError, match=r"(?s)resuming after step 4 did not reach .*params"):
        assert_resumes_exactly(config, x, y, 4)


def test_the_kit_loads_hypothesis_only_with_its_strategies():
    import subprocess
    import sys

    code = ("import sys, purenet, purenet.testing; assert 'hypothesis' not in sys.modules; "
            "assert 'purenet.testing' not in __import__('purenet').__dict__.get('_LAZY', {}); "
            "from purenet.testing import strategies; assert 'hypothesis' in sys.modules")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_infinities_and_nans_compare_as_equal_to_themselves():
    inf, nan = float("inf"), float("nan")
    assert list(differences(inf, inf)) == [] and list(differences(nan, nan)) == []
    assert list(differences(np.array([inf, nan]), np.array([inf, nan]), rtol=1e-3)) == []
    assert list(differences(inf, -inf)) and list(differences(1.0, inf, rtol=1.0))
