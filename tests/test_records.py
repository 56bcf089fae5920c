"""Records are immutable, validated at construction, and mapped leaf by leaf."""

import attrs
import numpy as np
import pytest

import purenet as pn
from purenet.core.records import (
    Dense,
    as_architecture,
    check_dtype,
    tree_leaves,
    tree_map,
    tree_unflatten,
    zeros_like,
)
from purenet.testing import assert_records_equal

ARCH = [
    {"input_dim": 2, "output_dim": 3, "activation": "relu"},
    {"input_dim": 3, "output_dim": 1, "activation": "sigmoid"},
]


@pytest.fixture
def params():
    return pn.init_params(ARCH, seed=0)


def test_arrays_in_params_are_read_only(params):
    with pytest.raises(ValueError, match="read-only"):
        params.layers[0].W[0, 0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        params.layers[1].b += 1


def test_fields_cannot_be_reassigned(params):
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        params.layers = ()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        params.layers[0].W = np.zeros((2, 3))


def test_dense_copies_nothing_but_never_writes_to_the_callers_array():
    W = np.ones((2, 3))
    layer = Dense(W, np.zeros(3))
    assert W.flags.writeable                # the caller's array is left writable
    assert np.shares_memory(layer.W, W)     # a read-only view, not a copy
    assert not layer.W.flags.writeable


def test_evolve_makes_a_new_record_and_keeps_the_old(params):
    new_layer = Dense(np.zeros((2, 3)), np.ones(3))
    changed = attrs.evolve(params, layers=(new_layer, params.layers[1]))
    assert changed is not params
    assert changed.architecture == params.architecture
    np.testing.assert_array_equal(changed.layers[0].W, 0)
    assert np.abs(params.layers[0].W).sum() > 0


def test_evolve_still_validates(params):
    with pytest.raises(ValueError, match=r"layer 0: W has shape \(3, 2\) but the architecture "
                                         r"says \(2, 3\)"):
        attrs.evolve(params, layers=(Dense(np.zeros((3, 2)), np.zeros(2)), params.layers[1]))


def test_from_dicts_round_trips():
    arch = pn.Architecture.from_dicts(ARCH)
    assert arch.to_dicts() == ARCH
    assert (arch.input_dim, arch.output_dim, arch.output_activation) == (2, 1, "sigmoid")
    assert as_architecture(ARCH) == arch and as_architecture(arch) is arch
    with_dropout = [{**ARCH[0], "dropout": 0.5}, ARCH[1]]
    assert pn.Architecture.from_dicts(with_dropout).to_dicts() == with_dropout


def test_from_dicts_broken_chain_names_the_layer_and_both_sizes():
    broken = [ARCH[0], {**ARCH[1], "input_dim": 5}]
    with pytest.raises(ValueError, match=r"layers\[1\]\.input_dim is 5 but layer 0 has "
                       r"output_dim = 3"):
        pn.Architecture.from_dicts(broken)


def test_from_dicts_unknown_and_missing_keys():
    with pytest.raises(ValueError, match=r"layer 1 has unknown keys \['units'\] and missing "
                                         r"keys \['output_dim'\]"):
        pn.Architecture.from_dicts([ARCH[0], {"input_dim": 3, "units": 1,
                                              "activation": "sigmoid"}])


@pytest.mark.parametrize("layer, error, message", [
    ({"input_dim": 0, "output_dim": 1, "activation": "relu"}, ValueError,
     r"layers\[0\]\.input_dim must be an integer >= 1, got 0"),
    ({"input_dim": 2.0, "output_dim": 1, "activation": "relu"}, TypeError,
     r"layers\[0\]\.input_dim must be an integer >= 1, got float 2.0"),
    ({"input_dim": 2, "output_dim": 1, "activation": "relux"}, ValueError,
     r"layers\[0\]\.activation is unknown: 'relux'; expected one of \[.*'relu'"),
    ({"input_dim": 2, "output_dim": 1, "activation": "relu", "dropout": 1.0}, ValueError,
     r"layers\[0\]\.dropout must be a finite number in \[0, 1\), got 1.0"),
])
def test_from_dicts_bad_values(layer, error, message):
    with pytest.raises(error, match=message):
        pn.Architecture.from_dicts([layer, {"input_dim": 1, "output_dim": 1,
                                            "activation": "sigmoid"}])


def test_from_dicts_rejects_empty_and_non_lists():
    with pytest.raises(ValueError, match="at least one layer"):
        pn.Architecture.from_dicts([])
    with pytest.raises(TypeError, match="expected a list of layer dicts, got dict"):
        pn.Architecture.from_dicts(ARCH[0])
    with pytest.raises(ValueError, match="dropout cannot be set on the output layer"):
        pn.Architecture.from_dicts([{**ARCH[0], "dropout": 0.2}, {**ARCH[1], "dropout": 0.2}])


def test_dense_checks_shapes_and_dtypes():
    with pytest.raises(ValueError, match=r"got W \(2, 3\) and b \(2,\)"):
        Dense(np.zeros((2, 3)), np.zeros(2))
    with pytest.raises(TypeError, match="W and b must share a dtype, got float64 and float32"):
        Dense(np.zeros((2, 3)), np.zeros(3, dtype=np.float32))


def test_check_dtype():
    assert check_dtype("float32") == np.float32
    with pytest.raises(ValueError, match=r"dtype must be one of \['float32', 'float64'\], "
                                         r"got 'int64'"):
        check_dtype("int64")
    with pytest.raises(ValueError, match="got 'floaty'"):
        check_dtype("floaty")


def test_tree_map_over_one_and_two_trees(params):
    doubled = tree_map(lambda a: a * 2, params)
    assert isinstance(doubled, pn.Params) and doubled.architecture is params.architecture
    for new, old in zip(tree_leaves(doubled), tree_leaves(params)):
        np.testing.assert_array_equal(new, old * 2)
        assert not new.flags.writeable
    grads = zeros_like(params)
    assert isinstance(grads, pn.Grads)
    summed = tree_map(np.add, grads, params)
    assert isinstance(summed, pn.Grads)
    assert_records_equal(tree_leaves(summed), tree_leaves(params))


def test_tree_leaves_order_and_unflatten(params):
    leaves = tree_leaves(params)
    assert [a.shape for a in leaves] == [(2, 3), (3,), (3, 1), (1,)]
    assert_records_equal(tree_unflatten(params, [a.copy() for a in leaves]), params)
    with pytest.raises(ValueError, match="expected 4 arrays, got 3"):
        tree_unflatten(params, leaves[:3])


def test_tree_helpers_build_validated_read_only_records():
    params = pn.init_params([{"input_dim": 2, "output_dim": 3, "activation": "relu"},
                             {"input_dim": 3, "output_dim": 1, "activation": "sigmoid"}])
    doubled = tree_map(lambda a: a * 2, params)
    assert doubled.architecture is params.architecture
    assert not any(a.flags.writeable for a in tree_leaves(doubled))
    with pytest.raises(ValueError, match="a dense layer needs W of shape"):
        tree_map(lambda a: a.ravel(), params)            # validated like any record
    with pytest.raises(TypeError, match="all layers must share one dtype"):
        tree_map(lambda a: a.astype(np.float16), params)
    leaves = [np.array(a) for a in tree_leaves(params)]
    rebuilt = tree_unflatten(params, leaves)
    assert all(a.flags.writeable for a in leaves)      # the caller's arrays stay writable
    assert not any(a.flags.writeable for a in tree_leaves(rebuilt))
    zeros = zeros_like(params)
    assert not any(a.flags.writeable or a.any() for a in tree_leaves(zeros))
