"""PureNetClassifier and PureNetRegressor in scikit-learn's machinery (Pipeline,
GridSearchCV, cross_val_score, clone, pickle) and in their own right: tasks, labels,
DataFrames, determinism, warm starts, partial_fit, weights and bad input."""

import pickle

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.datasets import make_classification, make_multilabel_classification  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.class_weight import compute_sample_weight  # noqa: E402

import purenet as pn  # noqa: E402
from purenet.sklearn import PureNetClassifier, PureNetRegressor  # noqa: E402

# Short fits end at max_iter, which MLPClassifier (and so the estimators) warns of.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

FAST = dict(hidden_layer_sizes=(16,), max_iter=20, learning_rate_init=0.01, random_state=0)


def blobs(n=150, classes=3, seed=0):
    return make_classification(n_samples=n, n_features=6, n_informative=4, n_redundant=0,
                               n_classes=classes, n_clusters_per_class=1, class_sep=2.0,
                               random_state=seed)


def regression(n=120, outputs=1, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    Y = np.column_stack([X[:, 0] - 2 * X[:, 1], np.sin(X[:, 2])])[:, :outputs]
    return X, Y[:, 0] if outputs == 1 else Y


# --- scikit-learn's machinery -----------------------------------------------------------


def test_a_pipeline_with_a_scaler_learns_and_predicts_labels():
    X, y = blobs()
    labels = np.array(["cat", "dog", "eel"])[y]
    model = make_pipeline(StandardScaler(), PureNetClassifier(**FAST)).fit(X * 100, labels)
    assert model.score(X * 100, labels) > 0.9
    assert set(model.predict(X)) <= {"cat", "dog", "eel"}


def test_grid_search_in_two_processes_gives_each_fit_its_checkpoint_directory(tmp_path):
    X, y = blobs(n=80)
    search = GridSearchCV(PureNetClassifier(**FAST, checkpoint_dir=tmp_path),
                          {"hidden_layer_sizes": [(8,), (16,)]}, cv=2, n_jobs=2).fit(X, y)
    assert search.best_score_ > 0.8
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    # 2 candidates x 2 folds, and the refit on all the data: 5 runs, 5 directories.
    assert len([p for p in tmp_path.iterdir() if p.name.startswith("fit-")]) == 5


def test_cross_val_score_scores_each_fold():
    X, y = regression()
    scores = cross_val_score(PureNetRegressor(**dict(FAST, max_iter=60)), X, y, cv=3)
    assert scores.shape == (3,) and (scores > 0.5).all()


def test_clone_keeps_the_parameters_and_drops_the_fit():
    model = PureNetClassifier(**FAST, schedule={"schedule": "constant"}).fit(*blobs())
    copy = clone(model)
    assert copy.get_params() == model.get_params()
    assert not hasattr(copy, "params_")


def test_pickle_round_trip_predicts_the_same_bits():
    X, y = blobs()
    model = PureNetClassifier(**FAST).fit(X, y)
    back = pickle.loads(pickle.dumps(model))
    assert back.predict_proba(X).tobytes() == model.predict_proba(X).tobytes()
    assert (back.predict(X) == model.predict(X)).all()
    assert back.config_.to_dict() == model.config_.to_dict()


def test_the_same_random_state_gives_bit_identical_predictions_another_does_not():
    X, y = blobs()
    first = PureNetClassifier(**FAST, dropout=0.2).fit(X, y).predict_proba(X)
    again = PureNetClassifier(**FAST, dropout=0.2).fit(X, y).predict_proba(X)
    other = PureNetClassifier(**dict(FAST, random_state=1), dropout=0.2).fit(X, y)
    assert first.tobytes() == again.tobytes()
    assert not np.array_equal(first, other.predict_proba(X))


def test_random_state_none_draws_a_seed_and_records_it():
    X, y = blobs()
    model = PureNetClassifier(**dict(FAST, random_state=None)).fit(X, y)
    replay = PureNetClassifier(**dict(FAST, random_state=model.seed_)).fit(X, y)
    assert model.predict_proba(X).tobytes() == replay.predict_proba(X).tobytes()


# --- tasks and targets ------------------------------------------------------------------


def test_binary_labels_train_one_sigmoid_and_give_two_probability_columns():
    X, y = blobs(classes=2)
    labels = np.where(y == 1, "yes", "no")
    model = PureNetClassifier(**FAST).fit(X, labels)
    assert model.params_.architecture.output_activation == "sigmoid"
    assert model.n_outputs_ == 1 and list(model.classes_) == ["no", "yes"]
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    decision = model.decision_function(X)
    assert decision.shape == (len(X),)
    assert (model.predict(X) == model.classes_[(decision > 0).astype(int)]).all()


def test_multi_class_trains_a_softmax():
    X, y = blobs(classes=3)
    model = PureNetClassifier(**FAST).fit(X, y + 10)
    assert model.params_.architecture.output_activation == "softmax"
    assert list(model.classes_) == [10, 11, 12]
    assert model.predict_proba(X).shape == (len(X), 3)
    assert model.decision_function(X).shape == (len(X), 3)


def test_multi_label_trains_a_sigmoid_per_label():
    X, Y = make_multilabel_classification(n_samples=100, n_features=6, n_classes=4,
                                          random_state=0)
    model = PureNetClassifier(**FAST).fit(X, Y)
    assert model.predict(X).shape == Y.shape and set(np.unique(model.predict(X))) <= {0, 1}
    assert model.predict_proba(X).shape == Y.shape
    assert list(model.classes_) == [0, 1, 2, 3]


def test_multi_output_regression_predicts_one_column_per_target():
    X, Y = regression(outputs=2)
    model = PureNetRegressor(**dict(FAST, max_iter=60)).fit(X, Y)
    assert model.predict(X).shape == (len(X), 2) and model.predict(X).dtype == np.float64
    assert model.score(X, Y) > 0.5


@pytest.mark.parametrize("loss, purenet_loss", [("squared_error", "half_squared_error"),
                                                ("absolute_error", "mean_absolute_error"),
                                                ("huber", "huber")])
def test_regression_losses(loss, purenet_loss):
    model = PureNetRegressor(**FAST, loss=loss).fit(*regression())
    assert model.config_.loss == purenet_loss


def test_a_data_frame_gives_feature_names_and_other_columns_are_refused():
    pd = pytest.importorskip("pandas")
    X, y = blobs()
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    model = PureNetClassifier(**FAST).fit(frame, pd.Series(y))
    assert list(model.feature_names_in_) == list(frame.columns)
    assert model.model_.feature_names == tuple(frame.columns)
    assert (model.predict(frame) == model.model_.predict(X)).all()
    with pytest.raises(ValueError, match="feature names should match"):
        model.predict(frame[frame.columns[::-1]])


def test_nan_is_refused_with_scikit_learns_message():
    X, y = blobs()
    X[3, 2] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        PureNetClassifier(**FAST).fit(X, y)


def test_one_class_trains_and_predicts_it_as_mlp_classifier_does():
    X, _ = blobs()
    model = PureNetClassifier(**FAST).fit(X, np.full(len(X), 7))
    assert model.classes_.tolist() == [7] and model.out_activation_ == "logistic"
    assert (model.predict(X) == 7).all() and model.predict_proba(X).shape == (len(X), 2)


# --- the fitted attributes --------------------------------------------------------------


def test_fitted_attributes_describe_the_run():
    X, y = blobs()
    model = PureNetClassifier(**FAST, n_iter_no_change=None).fit(X, y)
    assert isinstance(model.params_, pn.Params)
    assert model.n_iter_ == 20 == len(model.loss_curve_) == len(model.history_)
    assert model.loss_curve_ == list(model.history_.train_loss)
    assert model.best_loss_ == min(model.loss_curve_)
    assert model.validation_scores_ is None and model.n_features_in_ == 6
    assert [w.shape for w in model.coefs_] == [(6, 16), (16, 3)]
    assert model.intercepts_[1] is model.params_.layers[1].b
    probabilities = pn.predict(model.params_, X)
    np.testing.assert_allclose(model.predict_proba(X), probabilities, rtol=1e-5, atol=1e-6)


def test_stopping_on_the_training_loss_ends_before_max_iter():
    X, y = blobs()
    model = PureNetClassifier(**dict(FAST, max_iter=500), tol=1e-2, n_iter_no_change=2)
    model.fit(X, y)
    assert model.n_iter_ < 500


def test_early_stopping_scores_a_held_out_part_and_keeps_the_best():
    X, y = blobs(n=200)
    model = PureNetClassifier(**dict(FAST, max_iter=200), early_stopping=True,
                              n_iter_no_change=3, validation_fraction=0.2).fit(X, y)
    assert model.n_iter_ < 200 and len(model.validation_scores_) == model.n_iter_
    assert model.best_validation_score_ == max(model.validation_scores_)
    assert model.best_loss_ is None
    assert model.history_.val_accuracy[:-1] == pytest.approx(model.validation_scores_[:-1])


# --- continuing ---------------------------------------------------------------------------


def test_warm_start_continues_the_run_bit_for_bit():
    X, y = blobs()
    settings = dict(FAST, n_iter_no_change=None)
    whole = PureNetClassifier(**dict(settings, max_iter=5)).fit(X, y)
    parts = PureNetClassifier(**dict(settings, max_iter=3), warm_start=True).fit(X, y)
    parts.set_params(max_iter=2).fit(X, y)
    # n_iter_ counts the epochs of the last fit, as MLPClassifier's; the curve all of them.
    assert parts.n_iter_ == 2 and len(parts.loss_curve_) == 5 and parts.t_ == 5 * len(X)
    assert parts.predict_proba(X).tobytes() == whole.predict_proba(X).tobytes()


def test_partial_fit_trains_one_epoch_per_call():
    X, y = blobs()
    model = PureNetClassifier(**FAST)
    with pytest.raises(ValueError, match="classes must be passed"):
        model.partial_fit(X, y)
    for _ in range(3):
        model.partial_fit(X[:50], y[:50], classes=[0, 1, 2])
    assert model.n_iter_ == 1 and len(model.loss_curve_) == 3 and model.t_ == 150
    with pytest.raises(ValueError, match="is not the same as on the first call"):
        model.partial_fit(X, y, classes=[0, 1])
    with pytest.raises(ValueError, match="does not support early_stopping"):
        PureNetRegressor(**FAST, early_stopping=True).partial_fit(*regression())


def test_a_killed_fit_resumes_from_its_checkpoint_bit_for_bit(tmp_path, monkeypatch):
    import purenet.sklearn._base as base

    X, y = blobs()
    settings = dict(FAST, n_iter_no_change=None, max_iter=6)
    whole = PureNetClassifier(**settings).fit(X, y)

    class Kill(pn.Callback):
        def on_epoch_end(self, state):
            if state.epoch == 3:
                raise RuntimeError("killed")

    starts = []

    class Start(pn.Callback):
        def on_fit_start(self, state, config, total_steps, data):
            starts.append(state.epoch)

    real_fit = base.purenet_fit
    monkeypatch.setattr(base, "purenet_fit", lambda *a, callbacks=(), **k: real_fit(
        *a, callbacks=(*callbacks, Start(), Kill()), **k))
    model = PureNetClassifier(**settings, checkpoint_dir=tmp_path, checkpoint_every=1)
    with pytest.raises(RuntimeError, match="killed"):
        model.fit(X, y)
    monkeypatch.setattr(base, "purenet_fit", lambda *a, callbacks=(), **k: real_fit(
        *a, callbacks=(*callbacks, Start()), **k))
    model.fit(X, y)
    # Killed at the end of epoch 3, before its checkpoint (callbacks run before the
    # checkpointer): the refit resumes after epoch 2, not from the start.
    assert starts == [0, 2]
    assert model.predict_proba(X).tobytes() == whole.predict_proba(X).tobytes()
    assert model.loss_curve_ == whole.loss_curve_


# --- weights ------------------------------------------------------------------------------


def test_class_weight_is_sample_weight_by_class():
    X, y = blobs()
    y = np.where(np.arange(len(y)) < 30, y, 0)   # class 0 dominates
    balanced = PureNetClassifier(**FAST, class_weight="balanced").fit(X, y)
    weighted = PureNetClassifier(**FAST).fit(X, y, compute_sample_weight("balanced", y))
    assert balanced.predict_proba(X).tobytes() == weighted.predict_proba(X).tobytes()
    by_dict = PureNetClassifier(**FAST, class_weight={0: 1.0, 1: 5.0, 2: 5.0}).fit(X, y)
    assert not np.array_equal(by_dict.predict_proba(X), balanced.predict_proba(X))


@pytest.mark.filterwarnings("ignore:Got `batch_size`")
def test_integer_sample_weights_fit_like_repeated_samples_in_full_batch():
    X, y = regression(n=40)
    w = np.random.default_rng(0).integers(1, 4, len(X))
    settings = dict(FAST, batch_size=1000, alpha=0.0, dtype="float64", n_iter_no_change=None)
    weighted = PureNetRegressor(**settings).fit(X, y, sample_weight=w)
    repeated = PureNetRegressor(**settings).fit(np.repeat(X, w, axis=0), np.repeat(y, w))
    np.testing.assert_allclose(weighted.predict(X), repeated.predict(X), rtol=1e-9)


def test_weights_leaving_one_class_are_refused():
    X, y = blobs(classes=2)
    with pytest.raises(ValueError, match="at least 2 classes with a positive weight"):
        PureNetClassifier(**FAST).fit(X, y, sample_weight=(y == 1).astype(float))


# --- settings -----------------------------------------------------------------------------


def test_layers_in_the_tutorial_form_replace_hidden_layer_sizes():
    X, y = blobs()
    layers = [{"input_dim": 6, "output_dim": 12, "activation": "tanh", "dropout": 0.1},
              {"input_dim": 12, "output_dim": 3, "activation": "softmax"}]
    model = PureNetClassifier(**FAST, layers=layers).fit(X, y)
    assert model.params_.architecture.to_dicts() == layers
    with pytest.raises(ValueError, match="input_dim=6 and an output layer of 3 softmax"):
        PureNetClassifier(**FAST, layers=layers[:1] + [dict(layers[1], activation="sigmoid")]
                          ).fit(X, y)


@pytest.mark.parametrize("optimizer, extra, expected", [
    ("sgd", {}, "momentum"), ("sgd", {"momentum": 0.0}, "sgd"), ("adam", {}, "adam"),
    ("adamw", {"optimizer_params": {"weight_decay": 0.1}}, "adamw"),
    ("rmsprop", {"optimizer_params": {"decay": 0.99}}, "rmsprop"), ("adagrad", {}, "adagrad"),
])
def test_each_optimizer_trains(optimizer, extra, expected):
    model = PureNetRegressor(**FAST, optimizer=optimizer, **extra).fit(*regression())
    assert model.config_.optimizer.name == expected
    assert np.isfinite(model.loss_curve_).all()


def test_a_schedule_starts_from_learning_rate_init():
    model = PureNetRegressor(**FAST, schedule={"schedule": "exponential_decay",
                                               "decay_rate": 0.5, "transition_steps": 10})
    model.fit(*regression())
    assert model.config_.optimizer.config()["learning_rate"]["init_value"] == 0.01


def test_alpha_is_mlp_alpha_over_the_batch_size():
    model = PureNetRegressor(**FAST, alpha=0.5, batch_size=50).fit(*regression())
    assert model.config_.l2 == 0.5 / 50


@pytest.mark.parametrize("setting, message", [
    ({"activation": "relux"}, "activation='relux' is unknown"),
    ({"solver": "lbfgs", "dropout": 0.2}, "dropout: must be 0 with lbfgs, got 0.2"),
    ({"solver": "newton"}, r"solver='newton' is unknown; expected one of \['adagrad'"),
    ({"optimizer": "newton"}, r"solver='newton' is unknown"),
    ({"solver": "sgd", "learning_rate": "cyclic"}, "learning_rate='cyclic' is unknown"),
    ({"max_fun": 0}, "max_fun must be an int >= 1"),
    ({"hidden_layer_sizes": (10, 0)}, "hidden_layer_sizes must be an int >= 1"),
    ({"random_state": "0"}, "random_state must be None, an int in"),
    ({"batch_size": 0}, "batch_size must be"),
    ({"max_iter": 0}, "max_iter must be an int >= 1"),
    ({"validation_fraction": 1.5, "early_stopping": True}, "validation_fraction must be in"),
    ({"alpha": -1.0}, "alpha must be a number >= 0"),
    ({"n_iter_no_change": 0}, "n_iter_no_change must be an int >= 1"),
    ({"dropout": 1.5}, "dropout"),
    ({"optimizer_params": {"b1": 0.5}}, r"optimizer_params \['b1'\] are not arguments"),
    ({"schedule": {"schedule": "cosine"}}, "schedule: schedule is unknown"),
    ({"dtype": "float16"}, "dtype"),
    ({"loss": "gamma"}, "loss='gamma' is unknown"),
    ({"loss": "poisson"}, "loss='poisson' needs y >= 0"),
    ({"early_stopping": True, "validation_fraction": 0.005}, "The validation set is too small"),
    ({"early_stopping": True, "validation_fraction": 0.01}, "The validation set is too small"),
    ({"random_state": None, "checkpoint_dir": "unused"}, "checkpoint_dir needs an int"),
    ({"solver": "sgd", "learning_rate": "adaptive", "checkpoint_dir": "unused"},
     "checkpoint_dir does not take learning_rate='adaptive' yet"),
])
def test_bad_settings_are_named(setting, message):
    with pytest.raises(ValueError, match=message):
        PureNetRegressor(**FAST).set_params(**setting).fit(*regression())
