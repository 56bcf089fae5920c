"""Model: a network's outputs as labels, probabilities and values, for every task; its
scaler applied both ways; bad input refused before anything is computed."""

import numpy as np
import pytest

import purenet as pn
from purenet.model import Model, encode_labels

rng = np.random.default_rng(0)
X = rng.normal(size=(12, 3))


def network(output, units, seed=0):
    return pn.init_params([{"input_dim": 3, "output_dim": 6, "activation": "tanh"},
                           {"input_dim": 6, "output_dim": units, "activation": output}],
                          seed=seed, dtype="float64")


class AffineScaler:
    """x -> (x - 1) / 2; y -> (y - 10) / 5, and back."""

    def transform_x(self, x):
        return (x - 1.0) / 2.0

    def transform_y(self, y):
        return (y - 10.0) / 5.0

    def inverse_y(self, y):
        return y * 5.0 + 10.0


def test_multi_class_labels_follow_the_largest_output():
    params = network("softmax", 3)
    model = Model(params, "categorical_crossentropy", classes=["a", "b", "c"])
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba, pn.predict(params, X))
    assert (model.predict(X) == np.array(["a", "b", "c"])[proba.argmax(axis=1)]).all()
    assert model.decision_function(X).shape == (12, 3)
    assert model.task == "multiclass" and model.is_classifier


def test_binary_gives_two_probability_columns_and_labels_from_the_logit_sign():
    params = network("sigmoid", 1)
    model = Model(params, "binary_crossentropy")
    p = pn.predict(params, X)[:, 0]
    np.testing.assert_allclose(model.predict_proba(X), np.column_stack([1 - p, p]))
    decision = model.decision_function(X)
    assert decision.shape == (12,)
    assert (model.predict(X) == (decision > 0)).all()
    assert list(model.labels) == [0, 1] and model.task == "binary"


def test_multi_label_gives_an_indicator_matrix():
    model = Model(network("sigmoid", 4), "binary_crossentropy")
    assert model.task == "multilabel"
    predicted = model.predict(X)
    assert predicted.shape == (12, 4)
    assert (predicted == (model.predict_proba(X) > 0.5)).all()


def test_regression_goes_through_the_scaler_both_ways():
    params = network("identity", 1)
    model = Model(params, "mean_squared_error", scaler=AffineScaler())
    raw = pn.predict(params, (X - 1.0) / 2.0)[:, 0]
    np.testing.assert_allclose(model.predict(X), raw * 5.0 + 10.0)
    assert model.predict(X).shape == (12,) and model.predict(X).dtype == np.float64
    y = rng.normal(size=12) * 5 + 10
    expected = pn.evaluate(params, (X - 1.0) / 2.0, (y - 10.0) / 5.0)["loss"]
    assert model.evaluate(X, y) == {"loss": pytest.approx(expected)}


def test_multi_output_regression_keeps_its_columns():
    model = Model(network("identity", 2), "huber")
    assert model.predict(X).shape == (12, 2)


def test_evaluate_gives_loss_and_accuracy_on_labels():
    params = network("softmax", 3)
    model = Model(params, "categorical_crossentropy", classes=[10, 20, 30])
    y = np.array([10, 20, 30] * 4)
    result = model.evaluate(X, y)
    assert result["accuracy"] == pytest.approx(np.mean(model.predict(X) == y))
    assert result["loss"] == pytest.approx(pn.evaluate(params, X, y // 10 - 1)["loss"])


def test_float32_networks_predict_from_float32():
    params = pn.init_params([{"input_dim": 3, "output_dim": 2, "activation": "softmax"}],
                            dtype="float32")
    assert Model(params, "categorical_crossentropy").predict_proba(X).dtype == np.float32


def test_encode_labels_maps_labels_to_their_positions():
    assert encode_labels(["b", "a", "b"], ["b", "a"]).tolist() == [0, 1, 0]
    with pytest.raises(ValueError, match=r"label\(s\) \['z'\] that the model does not know"):
        encode_labels(["a", "z"], ["a", "b"])


# --- refused -------------------------------------------------------------------------------


def test_inputs_of_another_width_or_with_nan_are_refused():
    model = Model(network("softmax", 3), "categorical_crossentropy")
    with pytest.raises(ValueError, match="x has 2 features but the network's first layer "
                                         "expects 3"):
        model.predict(X[:, :2])
    bad = X.copy()
    bad[1, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        model.predict_proba(bad)


def test_a_data_frame_with_other_columns_is_refused():
    pd = pytest.importorskip("pandas")
    model = Model(network("softmax", 3), "categorical_crossentropy",
                  feature_names=["a", "b", "c"])
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    assert (model.predict(frame) == model.predict(X)).all()
    with pytest.raises(ValueError, match=r"columns \['c', 'b', 'a'\] are not the features"):
        model.predict(frame[["c", "b", "a"]])


@pytest.mark.parametrize("build, message", [
    (lambda: Model(network("softmax", 3), "categorical_crossentropy", classes=[1, 2]),
     "3 output unit.*3 labels, but 2 classes"),
    (lambda: Model(network("identity", 1), "mean_squared_error", classes=[0, 1]),
     "classes are for classifiers"),
    (lambda: Model(network("identity", 3), "categorical_crossentropy"),
     "needs a softmax output layer"),
    (lambda: Model(network("softmax", 3), "categorical_crossentropy", feature_names=["a"]),
     "1 feature names were given but the network takes 3"),
    (lambda: Model(network("softmax", 3), "hinge"), "loss is unknown"),
])
def test_inconsistent_models_are_refused(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_wrong_types_are_refused():
    with pytest.raises(TypeError, match="params must be a purenet Params"):
        Model("weights", "mean_squared_error")
    with pytest.raises(TypeError, match="scaler must be None or have transform_x"):
        Model(network("identity", 1), "mean_squared_error", scaler=object())


def test_classifier_methods_on_a_regression_say_so():
    model = Model(network("identity", 1), "mean_squared_error")
    for method in (model.predict_proba, model.decision_function):
        with pytest.raises(ValueError, match="is for classifiers.*use predict"):
            method(X)
