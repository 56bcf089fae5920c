"""Tests for purenet.train.data: deterministic epoch order, batch counts, splits."""

from __future__ import annotations

import numpy as np
import pytest

from purenet.train.data import (batch_indices, batches_per_epoch, check_batch_size, epoch_order,
                          gather, train_validation_split)

# --- epoch order ----------------------------------------------------------------------


def test_epoch_order_is_a_permutation():
    order = epoch_order(0, 0, 100)
    assert order.shape == (100,)
    assert np.issubdtype(order.dtype, np.integer)
    np.testing.assert_array_equal(np.sort(order), np.arange(100))
    assert not np.array_equal(order, np.arange(100))


def test_epoch_order_is_deterministic_from_seed_and_epoch():
    np.testing.assert_array_equal(epoch_order(7, 3, 50), epoch_order(7, 3, 50))
    np.testing.assert_array_equal(epoch_order(7, 3, 50), epoch_order(np.int64(7), np.int64(3), 50))


def test_epoch_order_differs_across_epochs_and_seeds():
    orders = {(seed, epoch): tuple(epoch_order(seed, epoch, 50))
              for seed in range(3) for epoch in range(4)}
    assert len(set(orders.values())) == len(orders)


def test_epoch_order_ignores_global_rng_and_call_history():
    expected = epoch_order(1, 5, 40)
    np.random.seed(123)           # the global RNG must neither matter nor move
    state = np.random.get_state()
    for epoch in range(5):
        epoch_order(1, epoch, 40)
    np.testing.assert_array_equal(epoch_order(1, 5, 40), expected)
    after = np.random.get_state()
    assert state[0] == after[0] and np.array_equal(state[1], after[1]) and state[2:] == after[2:]


def test_batch_computed_directly_equals_batch_reached_by_iterating():
    seed, n_samples, batch_size = 11, 23, 5
    n_batches = batches_per_epoch(n_samples, batch_size)
    reached = {}
    for epoch in range(3):
        order = epoch_order(seed, epoch, n_samples)
        for batch in range(n_batches):
            reached[epoch, batch] = batch_indices(order, batch, batch_size).copy()
    for (epoch, batch), indices in reversed(list(reached.items())):
        direct = batch_indices(epoch_order(seed, epoch, n_samples), batch, batch_size)
        np.testing.assert_array_equal(direct, indices)


def test_batches_of_an_epoch_cover_every_sample_once():
    order = epoch_order(0, 2, 23)
    batches = [batch_indices(order, b, 5) for b in range(batches_per_epoch(23, 5))]
    assert [len(b) for b in batches] == [5, 5, 5, 5, 3]
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(23))


def test_no_shuffle_is_arange():
    for epoch in range(3):
        np.testing.assert_array_equal(epoch_order(5, epoch, 17, shuffle=False), np.arange(17))


# --- batches --------------------------------------------------------------------------


@pytest.mark.parametrize("n_samples, batch_size, drop_last, expected", [
    (10, 3, False, 4), (10, 3, True, 3), (9, 3, False, 3), (9, 3, True, 3),
    (10, 10, False, 1), (10, 10, True, 1), (10, 1, False, 10), (5, 8, False, 1),
    (np.int64(10), np.int64(3), False, 4),
])
def test_batches_per_epoch(n_samples, batch_size, drop_last, expected):
    assert batches_per_epoch(n_samples, batch_size, drop_last) == expected


def test_drop_last_leaving_no_batch_raises():
    with pytest.raises(ValueError, match="batch_size=8 with drop_last=True leaves no batch for "
                                         "5 samples"):
        batches_per_epoch(5, 8, drop_last=True)


@pytest.mark.parametrize("n_samples, batch_size, match", [
    (10, 0, "batch_size must be an integer >= 1, got 0"),
    (10, -2, "batch_size"),
    (10, 2.0, "batch_size"),
    (0, 4, "at least one sample"),
])
def test_batches_per_epoch_rejects_bad_sizes(n_samples, batch_size, match):
    with pytest.raises(ValueError, match=match):
        batches_per_epoch(n_samples, batch_size)


@pytest.mark.parametrize("batch_size, n_samples, expected", [
    (None, 37, 37), (8, 37, 8), (64, 37, 37), (37, 37, 37), (1, 37, 1), (np.int32(4), 37, 4)])
def test_check_batch_size(batch_size, n_samples, expected):
    result = check_batch_size(batch_size, n_samples)
    assert result == expected and type(result) is int


@pytest.mark.parametrize("batch_size", [0, -1, 2.0, "8", True])
def test_check_batch_size_rejects(batch_size):
    with pytest.raises(ValueError, match=r"batch_size must be an integer >= 1, got .* "
                                         r"\(or None for the full batch\)"):
        check_batch_size(batch_size, 10)


def test_gather():
    x = np.arange(12.0).reshape(6, 2)
    assert gather(x, np.arange(6)) is x                    # the whole set in order: no copy
    np.testing.assert_array_equal(gather(x, np.array([4, 0])), x[[4, 0]])
    np.testing.assert_array_equal(gather(x, np.array([5, 4, 3, 2, 1, 0])), x[::-1])
    assert gather(np.zeros((0, 2)), np.arange(0)).shape == (0, 2)


# --- train/validation split -----------------------------------------------------------


def id_data(n_samples=50, n_classes=None):
    """x whose first column is each sample's index, so a split can be traced back."""
    x = np.stack([np.arange(n_samples, dtype=float), np.ones(n_samples)], axis=1)
    y = np.arange(n_samples) % (n_classes or n_samples)
    return x, y


def split_ids(x_train, x_val):
    return x_train[:, 0].astype(int), x_val[:, 0].astype(int)


def test_split_is_deterministic():
    x, y = id_data()
    first = train_validation_split(x, y, 0.2, seed=3)
    second = train_validation_split(x, y, 0.2, seed=3)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    other = train_validation_split(x, y, 0.2, seed=4)
    assert not np.array_equal(first[2], other[2])


@pytest.mark.parametrize("fraction, n_val", [(0.2, 10), (0.5, 25), (0.1, 5), (0.33, 16),
                                             (0.98, 49)])
def test_split_is_disjoint_covers_everything_and_has_the_right_size(fraction, n_val):
    x, y = id_data()
    x_train, y_train, x_val, y_val = train_validation_split(x, y, fraction, seed=0)
    train, val = split_ids(x_train, x_val)
    assert len(val) == n_val == round(50 * fraction) and len(train) == 50 - n_val
    assert not set(train) & set(val)
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(50))
    np.testing.assert_array_equal(y_train, y[train])     # rows stay paired with their targets
    np.testing.assert_array_equal(y_val, y[val])


def test_split_leaves_its_inputs_alone():
    x, y = id_data(n_classes=5)
    x_copy, y_copy = x.copy(), y.copy()
    train_validation_split(x, y, 0.3, seed=1, stratify=True)
    np.testing.assert_array_equal(x, x_copy)
    np.testing.assert_array_equal(y, y_copy)


def test_split_accepts_lists():
    x, y = id_data(10)
    x_train, y_train, x_val, y_val = train_validation_split(x.tolist(), y.tolist(), 0.3, seed=0)
    assert isinstance(x_val, np.ndarray) and x_val.shape == (3, 2) and y_train.shape == (7,)


@pytest.mark.parametrize("loader", ["load_iris", "load_digits"])
def test_stratified_split_keeps_class_proportions(loader):
    datasets = pytest.importorskip("sklearn.datasets")
    x, y = getattr(datasets, loader)(return_X_y=True)
    fraction = 0.3
    x_train, y_train, x_val, y_val = train_validation_split(x, y, fraction, seed=0,
                                                            stratify=True)
    assert len(x_train) + len(x_val) == len(x)
    for label in np.unique(y):
        total = int((y == label).sum())
        in_val = int((y_val == label).sum())
        assert abs(in_val - total * fraction) <= 1, (label, in_val, total)
        assert int((y_train == label).sum()) == total - in_val


def test_stratified_split_with_one_hot_matches_labels():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3))
    labels = np.repeat([0, 1, 2], [30, 20, 10])
    by_label = train_validation_split(x, labels, 0.2, seed=5, stratify=True)
    by_one_hot = train_validation_split(x, np.eye(3)[labels], 0.2, seed=5, stratify=True)
    np.testing.assert_array_equal(by_label[2], by_one_hot[2])
    np.testing.assert_array_equal(by_one_hot[3].argmax(axis=1), by_label[3])
    assert np.bincount(by_label[3]).tolist() == [6, 4, 2]


def test_stratified_split_of_binary_column_targets():
    # y of shape (n_samples, 1), as for a sigmoid output: the column holds the labels.
    x = np.arange(40.0).reshape(-1, 1)
    y = (np.arange(40) < 8).astype(float).reshape(-1, 1)        # 8 positives, 32 negatives
    _, y_train, _, y_val = train_validation_split(x, y, 0.25, seed=0, stratify=True)
    assert y_val.shape == (10, 1)
    assert int(y_val.sum()) == 2 and int(y_train.sum()) == 6


def test_stratified_split_differs_from_plain_on_imbalanced_classes():
    x = np.arange(100.0).reshape(-1, 1)
    y = (np.arange(100) < 10).astype(int)
    for seed in range(5):
        _, _, _, y_val = train_validation_split(x, y, 0.2, seed=seed, stratify=True)
        assert int(y_val.sum()) == 2


@pytest.mark.parametrize("fraction, error, match", [
    (0.0, ValueError, r"validation_fraction must be in \(0, 1\)"),
    (1.0, ValueError, "validation_fraction"),
    (-0.1, ValueError, "validation_fraction"),
    (1.5, ValueError, "validation_fraction"),
    (float("nan"), ValueError, "validation_fraction"),
    ("0.2", TypeError, "validation_fraction must be a number"),
    (None, TypeError, "validation_fraction"),
    (True, TypeError, "validation_fraction"),
])
def test_split_rejects_bad_fractions(fraction, error, match):
    x, y = id_data()
    with pytest.raises(error, match=match):
        train_validation_split(x, y, fraction, seed=0)


def test_split_rejects_an_empty_part():
    x, y = id_data(3)
    with pytest.raises(ValueError, match="leaves an empty part"):
        train_validation_split(x, y, 0.1, seed=0)           # round(0.3) = 0 samples
    with pytest.raises(ValueError, match="leaves an empty part"):
        train_validation_split(x, y, 0.9, seed=0)           # round(2.7) = 3 = all of them


def test_split_rejects_mismatched_lengths_and_bad_seeds():
    x, y = id_data()
    with pytest.raises(ValueError, match="x has 50 samples but y has 49"):
        train_validation_split(x, y[:-1], 0.2, seed=0)
    with pytest.raises(ValueError, match="seed"):
        train_validation_split(x, y, 0.2, seed=-1)
    with pytest.raises(TypeError, match="seed"):
        train_validation_split(x, y, 0.2, seed=1.5)
