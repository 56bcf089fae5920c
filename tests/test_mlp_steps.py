"""One SGD step of the estimators' loss and alpha equals MLPClassifier's / MLPRegressor's
from the same weights (float64, <= 1e-12 relative), for binary, multiclass and multilabel
targets and regressions of 1 and 3 outputs; the invscaling and adaptive rates."""

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.datasets import load_digits  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPClassifier, MLPRegressor  # noqa: E402

import purenet as pn  # noqa: E402
from purenet.core.records import Dense, Params  # noqa: E402
from purenet.sklearn import PureNetClassifier, PureNetRegressor  # noqa: E402
from purenet.sklearn import _settings as settings  # noqa: E402
from purenet.sklearn._targets import (TASKS, REGRESSION_LOSSES, classes_of,  # noqa: E402
                                      classifier_targets)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

X, DIGITS = load_digits(return_X_y=True)
X = X[:120] / 16
RNG = np.random.default_rng(0)
TARGETS = {
    "binary": DIGITS[:120] % 2,
    "multiclass": DIGITS[:120] % 5,
    "multilabel": np.stack([DIGITS[:120] % 2, DIGITS[:120] > 4, DIGITS[:120] % 3 == 0],
                           axis=1).astype(int),
    "regression 1": X[:, 20:30].sum(axis=1),
    "regression 3": X[:, 20:23] * 2 + RNG.normal(size=(120, 3)),
}
STEP = dict(hidden_layer_sizes=(7,), solver="sgd", momentum=0.0, shuffle=False, alpha=0.3,
            batch_size=120, max_iter=1, random_state=0, activation="tanh")
RATE = 0.1


def _sklearn_weights(estimator, y, rate):
    model = estimator(**STEP, learning_rate_init=rate).fit(X, y)
    return model.coefs_ + model.intercepts_


def _purenet_step(case, start):
    """The step purenet's estimator takes: its loss and l2 for these targets, from the
    weights ``start`` (scikit-learn's initial ones)."""
    y = TARGETS[case]
    if case.startswith("regression"):
        loss, output = REGRESSION_LOSSES["squared_error"]
        targets = np.asarray(y, float).reshape(len(y), -1)
    else:
        classes, task = classes_of(y if y.ndim == 2 else y)
        loss, output = TASKS[task]
        targets = classifier_targets(y, classes, task).y
    n_out = start[1].shape[1]
    arch = pn.Architecture.from_dicts([
        {"input_dim": X.shape[1], "output_dim": 7, "activation": "tanh"},
        {"input_dim": 7, "output_dim": n_out, "activation": output}])
    params = Params((Dense(start[0], start[2]), Dense(start[1], start[3])), arch)
    config = settings.run_config(
        PureNetRegressor(**STEP).get_params(), arch, loss, len(X), 1, 0, None, "float64")
    _, grads = pn.loss_and_grads(params, pn.Batch(X, targets), loss=loss, l2=config.l2)
    return [params.layers[0].W - RATE * grads.layers[0].W,
            params.layers[1].W - RATE * grads.layers[1].W,
            params.layers[0].b - RATE * grads.layers[0].b,
            params.layers[1].b - RATE * grads.layers[1].b]


@pytest.mark.parametrize("case", sorted(TARGETS))
def test_one_sgd_step_equals_scikit_learns(case):
    estimator = MLPRegressor if case.startswith("regression") else MLPClassifier
    y = TARGETS[case]
    # A rate of 1e-300 leaves every weight as it was drawn: scikit-learn's initial ones.
    start = _sklearn_weights(estimator, y, 1e-300)
    expected = _sklearn_weights(estimator, y, RATE)
    for got, want, before in zip(_purenet_step(case, start), expected, start):
        np.testing.assert_allclose(got - before, want - before, rtol=1e-12, atol=1e-17)


def test_invscaling_rates_are_mlps_per_epoch():
    from purenet.optim.schedules import schedule_from_config

    params = PureNetClassifier(solver="sgd", learning_rate="invscaling", power_t=0.25,
                               learning_rate_init=0.1).get_params()
    config = settings.optimizer(params, n_batches=3, n_samples=8).config()
    schedule = schedule_from_config(config["learning_rate"])
    rates = [schedule(step) for step in range(9)]
    # Constant within an epoch, then init / (t + 1) ** power_t with t the samples seen:
    # what scikit-learn's test_learning_rate_warmstart reads from _optimizer.
    assert rates[:3] == [0.1] * 3
    assert rates[3:6] == [0.1 / 9 ** 0.25] * 3 and rates[6] == 0.1 / 17 ** 0.25


def test_adaptive_divides_the_rate_by_5_until_it_is_below_1e_6():
    X2, y2 = [[3, 2], [1, 6]], [1, 0]
    model = PureNetClassifier(tol=0.5, max_iter=3000, solver="sgd", learning_rate="adaptive",
                              random_state=0).fit(X2, y2)
    assert model.n_iter_ < 3000
    # The public record of the rate: the run's optimizer after the last division.
    rate = model.config_.optimizer.config()["learning_rate"]
    # 1e-3 / 5**5 = 3.2e-7 is the first rate at most 1e-6; the stall after it stops.
    assert rate < 1e-6 and rate == pytest.approx(0.001 / 5 ** 5, rel=1e-15)


def test_warnings_stay_quiet_without_max_iter_ending():
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(2\) reached"):
        PureNetClassifier(max_iter=2, random_state=0).fit(X, TARGETS["binary"])
