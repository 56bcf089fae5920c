"""Each kind of bad input fails before any computation, with a message that names what was
expected and what was found."""

import numpy as np
import pytest

import purenet as pn
from purenet.core.validate import check_targets, check_x

BINARY = pn.Architecture.from_dicts([
    {"input_dim": 2, "output_dim": 4, "activation": "relu"},
    {"input_dim": 4, "output_dim": 1, "activation": "sigmoid"},
])
THREE_WAY = pn.Architecture.from_dicts([
    {"input_dim": 2, "output_dim": 4, "activation": "relu"},
    {"input_dim": 4, "output_dim": 3, "activation": "softmax"},
])
F64 = np.dtype("float64")
X = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]])


def test_valid_input_passes_and_is_cast():
    x = check_x(X.astype(np.float32), BINARY, F64)
    assert x.dtype == np.float64 and x.shape == (3, 2)
    y = check_targets([0, 1, 1], 3, "binary_crossentropy", BINARY, F64)
    assert y.shape == (3, 1) and y.dtype == np.float64
    ids = check_targets(np.array([0.0, 2.0, 1.0]), 3, "categorical_crossentropy", THREE_WAY, F64)
    assert ids.dtype == np.intp
    np.testing.assert_array_equal(ids, [0, 2, 1])


def test_nan_in_x():
    x = X.copy()
    x[1, 0] = np.nan
    with pytest.raises(ValueError, match=r"x holds 1 NaN or inf value\(s\), the first at index "
                                         r"\(1, 0\); remove or impute them"):
        pn.predict(pn.init_params(BINARY), x)


def test_inf_in_y():
    params = pn.init_params(BINARY)
    with pytest.raises(ValueError, match=r"y holds 1 NaN or inf value\(s\), the first at index "
                                         r"\(2,\)"):
        pn.loss_and_grads(params, pn.Batch(X, np.array([0.0, 1.0, np.inf])))


def test_x_not_2d():
    with pytest.raises(ValueError, match=r"x must be 2-D \(n_samples, n_features\), got shape "
                                         r"\(3,\); for a single feature use x.reshape\(-1, 1\)"):
        check_x(np.zeros(3), BINARY, F64)
    with pytest.raises(ValueError, match=r"got shape \(1, 3, 2\)"):
        check_x(np.zeros((1, 3, 2)), BINARY, F64)


def test_no_samples():
    with pytest.raises(ValueError, match=r"x has no samples \(shape \(0, 2\)\)"):
        check_x(np.zeros((0, 2)), BINARY, F64)


def test_wrong_feature_count():
    with pytest.raises(ValueError, match=r"x has 3 features but the network's first layer "
                                         r"expects 2 \(input_dim=2\)"):
        pn.predict(pn.init_params(BINARY), np.zeros((4, 3)))


def test_y_with_the_wrong_number_of_samples():
    with pytest.raises(ValueError, match=r"y must have one row per sample of x \(3\), got "
                                         r"shape \(2,\)"):
        check_targets([0, 1], 3, "binary_crossentropy", BINARY, F64)


def test_y_of_the_wrong_width():
    with pytest.raises(ValueError, match=r"y has shape \(3, 2\) but the output layer has 1 "
                                         r"unit\(s\); expected \(3, 1\)"):
        check_targets(np.zeros((3, 2)), 3, "binary_crossentropy", BINARY, F64)
    with pytest.raises(ValueError, match=r"expected \(3, 3\) or class ids of shape "
                                         r"\(n_samples,\)"):
        check_targets(np.zeros((3, 2)), 3, "categorical_crossentropy", THREE_WAY, F64)


def test_class_seven_for_a_three_way_softmax():
    with pytest.raises(ValueError, match=r"y holds label 7 but a 3-way softmax output can only "
                                         r"produce the integer classes 0..2"):
        pn.loss_and_grads(pn.init_params(THREE_WAY), pn.Batch(X, [0, 7, 1]))


def test_fractional_and_negative_class_ids():
    with pytest.raises(ValueError, match=r"y holds label 1.5 but a 3-way softmax"):
        check_targets(np.array([0.0, 1.5, 1.0]), 3, "categorical_crossentropy", THREE_WAY, F64)
    with pytest.raises(ValueError, match=r"y holds label -1 but"):
        check_targets(np.array([0, -1, 1]), 3, "categorical_crossentropy", THREE_WAY, F64)
    # Too large for an int: rejected by value, without a cast warning.
    with pytest.raises(ValueError, match=r"y holds label 1e\+30 but"):
        check_targets(np.array([0, 1e30, 1]), 3, "categorical_crossentropy", THREE_WAY, F64)


def test_half_a_label_for_binary_crossentropy():
    with pytest.raises(ValueError, match=r"binary_crossentropy needs labels 0 or 1, got 0.5"):
        pn.loss_and_grads(pn.init_params(BINARY), pn.Batch(X, [0.0, 0.5, 1.0]))


def test_one_hot_rows_must_be_distributions():
    with pytest.raises(ValueError, match=r"each row summing to 1"):
        check_targets(np.ones((3, 3)), 3, "categorical_crossentropy", THREE_WAY, F64)


@pytest.mark.parametrize("bad, found", [
    (np.array([["a", "b"], ["c", "d"]]), "dtype <U1"),
    (np.array([[1.0, None], [2.0, 3.0]], dtype=object), "dtype object"),
    (np.array([[1 + 2j, 0], [0, 1]]), "dtype complex128"),
])
def test_non_numeric_x(bad, found):
    with pytest.raises(TypeError, match=rf"x must hold numbers \(int or float\), got {found}"):
        check_x(bad, BINARY, F64)


def test_non_numeric_y():
    with pytest.raises(TypeError, match=r"y must hold numbers \(int or float\), got dtype <U3"):
        check_targets(np.array(["cat", "dog", "cat"]), 3, "binary_crossentropy", BINARY, F64)


def test_ragged_x():
    with pytest.raises(TypeError, match="x must be a numeric array, could not convert it"):
        check_x([[1.0, 2.0], [3.0]], BINARY, F64)


@pytest.mark.parametrize("call, message", [
    (lambda: pn.Architecture.from_dicts([{"input_dim": 2, "output_dim": 1,
                                          "activation": "sigmod"}]),
     r"activation is unknown: 'sigmod'; expected one of \['elu', .*'sigmoid'"),
    (lambda: pn.loss_and_grads(pn.init_params(BINARY), pn.Batch(X, [0, 1, 1]), loss="bce"),
     r"unknown loss 'bce'; expected one of \['binary_crossentropy', "),
    (lambda: pn.init_params(BINARY, init="kaiming"),
     r"unknown initializer 'kaiming'; expected one of \[.*'he_normal'"),
])
def test_unknown_names(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_bad_input_changes_nothing():
    params = pn.init_params(BINARY, seed=0)
    before = [a.copy() for a in pn.tree_leaves(params)]
    with pytest.raises(ValueError):
        pn.loss_and_grads(params, pn.Batch(X, [0.0, 0.5, 1.0]))
    for a, b in zip(before, pn.tree_leaves(params)):
        np.testing.assert_array_equal(a, b)
