"""scikit-learn's stopping rule (EarlyStopping(rule="sklearn")), fed MLPClassifier's own
loss curves and validation scores, stops at the epoch MLPClassifier stopped at, with its
best value; and the rule's edge cases (a gain of exactly tol, NaN)."""

import math
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.datasets import load_breast_cancer, load_digits, load_iris  # noqa: E402
from sklearn.neural_network import MLPClassifier, MLPRegressor  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from purenet.sklearn import _settings as settings  # noqa: E402
from purenet.train.loop import _early_stopping  # noqa: E402
from purenet.train.state import EarlyStopping  # noqa: E402


def _stop_epoch(rule: EarlyStopping, values) -> tuple[int | None, float]:
    """The 1-based epoch the rule stops at over ``values`` (None: never), and its best."""
    early = rule.initial()
    for epoch, value in enumerate(values):
        early, stopped = _early_stopping(rule, early, value, epoch, None)
        if stopped:
            return epoch + 1, early.best
    return None, early.best


def _rule(estimator, monitor: str) -> EarlyStopping:
    # The rule the estimators build from the same parameters.
    return settings.stopping(estimator.get_params(), monitor)


def _data(load):
    X, y = load(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.mark.parametrize("load", [load_iris, load_breast_cancer], ids=["iris", "cancer"])
@pytest.mark.parametrize("tol, n", [(1e-4, 10), (1e-2, 3)])
def test_the_rule_on_mlp_loss_curves_stops_where_mlp_did(load, tol, n):
    mlp = MLPClassifier(hidden_layer_sizes=(20,), random_state=0, max_iter=2000, tol=tol,
                        n_iter_no_change=n).fit(*_data(load))
    assert mlp.n_iter_ < 2000   # it stopped by its rule
    stop, best = _stop_epoch(_rule(mlp, "train_loss"), mlp.loss_curve_)
    assert stop == mlp.n_iter_ == len(mlp.loss_curve_)
    assert best == mlp.best_loss_


@pytest.mark.parametrize("estimator, load", [(MLPClassifier, load_digits),
                                             (MLPRegressor, None)], ids=["digits", "r2"])
def test_the_rule_on_mlp_validation_scores_stops_where_mlp_did(estimator, load):
    if load is None:
        X, _ = _data(load_digits)
        y = X[:, :5].sum(axis=1) + np.sin(X[:, 10])
    else:
        X, y = _data(load)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlp = estimator(hidden_layer_sizes=(20,), random_state=0, max_iter=2000,
                        early_stopping=True, tol=1e-3).fit(X, y)
    assert mlp.n_iter_ < 2000
    stop, best = _stop_epoch(_rule(mlp, "val_accuracy"), mlp.validation_scores_)
    assert stop == mlp.n_iter_ and best == mlp.best_validation_score_


def test_best_moves_on_any_gain_but_the_count_resets_only_on_tol():
    rule = EarlyStopping(monitor="train_loss", patience=3, min_delta=0.1, rule="sklearn")
    early = rule.initial()
    for epoch, value in enumerate([1.0, 0.95, 0.9, 0.85]):   # gains of 0.05: below tol
        early, stopped = _early_stopping(rule, early, value, epoch, None)
    assert early.best == 0.85 and early.best_epoch == 3 and early.wait == 3 and stopped
    early, _ = _early_stopping(rule, rule.initial(), 1.0, 0, None)
    early, _ = _early_stopping(rule, early, 0.95, 1, None)
    assert early.wait == 1
    early, _ = _early_stopping(rule, early, 0.95 - 0.1, 2, None)   # a gain of exactly tol
    assert early.wait == 0


def test_a_nan_epoch_resets_the_count_as_scikit_learns_comparisons_do():
    rule = EarlyStopping(monitor="val_accuracy", patience=2, min_delta=0.0, rule="sklearn")
    early, _ = _early_stopping(rule, rule.initial(), 0.5, 0, None)
    early, _ = _early_stopping(rule, early, 0.5, 1, None)
    early, stopped = _early_stopping(rule, early, math.nan, 2, None)
    assert early.wait == 0 and early.best == 0.5 and not stopped


def test_the_default_rule_is_unchanged():
    rule = EarlyStopping(monitor="train_loss", patience=2, min_delta=0.1)
    early, _ = _early_stopping(rule, rule.initial(), 1.0, 0, None)
    early, _ = _early_stopping(rule, early, 0.95, 1, None)   # a gain below min_delta
    assert early.best == 1.0 and early.wait == 1


def test_default_fits_on_iris_train_within_a_quarter_of_mlps_epochs():
    from sklearn.model_selection import train_test_split

    from purenet.sklearn import PureNetClassifier

    X, y = _data(load_iris)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0, stratify=y)
    mlp = MLPClassifier(random_state=0, max_iter=3000).fit(X_train, y_train)
    ours = PureNetClassifier(random_state=0, max_iter=3000).fit(X_train, y_train)
    assert abs(ours.n_iter_ - mlp.n_iter_) <= 0.25 * mlp.n_iter_
    assert ours.score(X_test, y_test) >= mlp.score(X_test, y_test) - 1 / len(y_test)


def test_a_random_state_instance_gives_each_fit_one_recorded_seed():
    from purenet.sklearn import PureNetClassifier

    X, y = _data(load_iris)
    shared = np.random.RandomState(0)
    first = PureNetClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=shared,
                              n_iter_no_change=None).fit(X, y)
    second = PureNetClassifier(**first.get_params()).fit(X, y)   # the same, drawn on
    assert first.seed_ != second.seed_
    again = PureNetClassifier(**dict(first.get_params(), random_state=first.seed_)).fit(X, y)
    assert np.array_equal(again.coefs_[0], first.coefs_[0])


def test_float32_input_trains_and_predicts_in_float32_other_input_in_float64():
    from purenet.sklearn import PureNetRegressor

    X, y = _data(load_iris)
    for dtype, expected in ((np.float32, np.float32), (np.float64, np.float64),
                            (np.int64, np.float64)):
        model = PureNetRegressor(hidden_layer_sizes=(5,), max_iter=3, random_state=0,
                                 n_iter_no_change=None).fit((X * 10).astype(dtype), y)
        assert model.coefs_[0].dtype == expected
        assert model.predict((X * 10).astype(dtype)).dtype == expected


def test_the_watched_validation_scores_are_scikit_learns():
    from sklearn.metrics import accuracy_score, r2_score

    from purenet.train.metrics import WATCHED

    rng = np.random.default_rng(0)
    A, y = rng.random((40, 3)), (rng.random((40, 3)) > 0.5).astype(float)
    assert WATCHED["val_subset_accuracy"](A, y, "multilabel_log_loss") == accuracy_score(
        y.astype(int), (A > 0.5).astype(int))
    P, ids = rng.random((40, 4)), rng.integers(0, 4, 40)
    assert WATCHED["val_subset_accuracy"](P, ids, "categorical_crossentropy") == \
        accuracy_score(ids, P.argmax(axis=1))
    Y, F = rng.normal(size=(40, 2)), rng.normal(size=(40, 2))
    assert WATCHED["val_r2"](F, Y, "half_squared_error") == pytest.approx(r2_score(Y, F),
                                                                          rel=1e-12)
    constant = np.ones((40, 1))
    assert WATCHED["val_r2"](constant, constant, "half_squared_error") == 1.0
    assert WATCHED["val_r2"](F[:, :1], constant, "half_squared_error") == r2_score(
        constant, F[:, :1]) == 0.0
