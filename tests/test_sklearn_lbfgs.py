"""solver="lbfgs" in the estimators: purenet's L-BFGS (purenet.optim.lbfgs) through fit, on
the full batch, with MLPClassifier's mapping of its parameters (tol, max_fun, max_iter) and
its warnings; the same bits as pn.fit with that optimizer."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.datasets import load_digits, make_regression  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402

import purenet as pn  # noqa: E402
from purenet import optim  # noqa: E402
from purenet.sklearn import PureNetClassifier, PureNetRegressor  # noqa: E402


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:400] / 16, y[:400]


def test_lbfgs_trains_to_its_own_stop_as_mlp_classifier_does(digits):
    X, y = digits
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        ours = PureNetClassifier(solver="lbfgs", hidden_layer_sizes=(30,), max_iter=300,
                                 random_state=0).fit(X[:300], y[:300])
        theirs = MLPClassifier(solver="lbfgs", hidden_layer_sizes=(30,), max_iter=300,
                               random_state=0).fit(X[:300], y[:300])
    state = ours._state.opt_state
    assert isinstance(state, optim.LbfgsState) and state.stopped in optim.STOP_REASONS
    assert ours.n_iter_ == state.iterations <= 300 and ours.t_ == ours.n_iter_ * 300
    assert ours.score(X[:300], y[:300]) == 1.0 == theirs.score(X[:300], y[:300])
    assert ours.score(X[300:], y[300:]) >= theirs.score(X[300:], y[300:]) - 0.05


def test_max_fun_and_max_iter_end_a_fit_with_a_convergence_warning(digits):
    X, y = digits
    with pytest.warns(ConvergenceWarning, match="after .* iteration.* max_fun was reached"):
        model = PureNetClassifier(solver="lbfgs", max_fun=8, random_state=0).fit(X, y)
    assert model._state.opt_state.evals <= 9 and model.n_iter_ <= 8
    with pytest.warns(ConvergenceWarning, match="max_iter was reached"):
        model = PureNetClassifier(solver="lbfgs", max_iter=3, random_state=0).fit(X, y)
    assert model.n_iter_ == 3


def test_the_estimator_runs_the_fit_that_pn_fit_runs_with_lbfgs(digits):
    X, y = digits
    X_reg, y_reg = make_regression(200, 6, noise=0.5, random_state=0)
    with pytest.warns(ConvergenceWarning):
        model = PureNetRegressor(solver="lbfgs", hidden_layer_sizes=(8,), alpha=1e-3,
                                 tol=1e-6, max_iter=40, random_state=3).fit(X_reg, y_reg)
    config = model.config_
    assert config.batch_size is None and config.early_stopping is None
    assert config.l2 == pytest.approx(1e-3 / 200)
    lbfgs = config.optimizer.config()
    assert (lbfgs["name"], lbfgs["history_size"], lbfgs["tolerance_grad"], lbfgs["max_eval"]) \
        == ("lbfgs", 10, 1e-6, 15000)
    direct = pn.fit(config, X_reg, y_reg.reshape(-1, 1), progress=False)
    for a, b in zip(pn.tree_leaves(direct.state.params), pn.tree_leaves(model.params_)):
        assert np.array_equal(a, b)


def test_early_stopping_and_learning_rate_are_ignored_by_lbfgs_as_by_mlp(digits):
    X, y = digits
    plain = PureNetClassifier(solver="lbfgs", max_iter=20, random_state=0)
    other = PureNetClassifier(solver="lbfgs", max_iter=20, random_state=0, early_stopping=True,
                              learning_rate_init=0.5, learning_rate="invscaling")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        plain.fit(X, y)
        other.fit(X, y)
    assert other.validation_scores_ is None
    assert all(np.array_equal(a, b) for a, b in zip(plain.coefs_, other.coefs_))
    assert not hasattr(plain, "partial_fit")
