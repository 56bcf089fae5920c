"""fit and train_step: determinism, resume, convergence on real datasets, purity, the guard."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_digits, make_moons
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import purenet as pn
from purenet import optim
from purenet.optim import schedules
from purenet.train.config import RunConfig
from purenet.train.loop import initial_state_for
from purenet.train.step import train_step

MOONS_ARCH = [
    {"input_dim": 2, "output_dim": 32, "activation": "relu"},
    {"input_dim": 32, "output_dim": 32, "activation": "relu", "dropout": 0.1},
    {"input_dim": 32, "output_dim": 1, "activation": "sigmoid"},
]


@pytest.fixture(scope="module")
def moons():
    x, y = make_moons(1000, noise=0.15, random_state=0)
    return train_test_split(x, y, test_size=0.3, random_state=0)


def leaves_equal(a, b) -> bool:
    return all(np.array_equal(p, q) for p, q in zip(pn.tree_leaves(a), pn.tree_leaves(b)))


def adam_run(moons, **overrides):
    x_train, x_test, y_train, y_test = moons
    kwargs = dict(optimizer=optim.adam(schedules.warmup_cosine_decay(1e-2, 20, 400)),
                  epochs=4, batch_size=32, seed=3, progress=False, l2=1e-4,
                  validation_data=(x_test, y_test))
    kwargs.update(overrides)
    return pn.fit(MOONS_ARCH, x_train, y_train, **kwargs)


# --- determinism ----------------------------------------------------------------------


def test_same_seed_gives_bit_identical_params(moons):
    a, b = adam_run(moons), adam_run(moons)
    assert leaves_equal(a.state.params, b.state.params)
    assert a.history.train_loss == b.history.train_loss


def test_another_seed_gives_different_params(moons):
    a, b = adam_run(moons), adam_run(moons, seed=4)
    assert not leaves_equal(a.state.params, b.state.params)


@pytest.mark.parametrize("k", [1, 13, 22, 44, 59])   # 22 steps an epoch: mid-epoch and edges
def test_max_steps_then_initial_state_equals_uninterrupted(moons, k):
    whole = adam_run(moons)
    first = adam_run(moons, max_steps=k)
    assert first.state.step == k
    rest = adam_run(moons, initial_state=first.state)
    assert leaves_equal(rest.state.params, whole.state.params)
    assert leaves_equal(rest.state.opt_state.mu, whole.state.opt_state.mu)
    assert leaves_equal(rest.state.opt_state.nu, whole.state.opt_state.nu)
    for column, values in whole.history.as_dict().items():   # exact; NaN equals NaN
        np.testing.assert_array_equal(rest.history.as_dict()[column], values)


def test_initial_state_from_another_run_is_refused(moons):
    first = adam_run(moons, max_steps=5)
    with pytest.raises(ValueError, match="seed: this run has 9, the state 3"):
        adam_run(moons, initial_state=first.state, seed=9)
    with pytest.raises(ValueError, match="optimizer state"):
        adam_run(moons, initial_state=first.state, optimizer=optim.sgd(0.1))


def test_dropout_changes_training_but_not_predict(moons):
    x_train, x_test, y_train, _ = moons
    with_dropout = adam_run(moons)
    without = pn.fit([{**layer, "dropout": 0.0} for layer in MOONS_ARCH], x_train, y_train,
                     optimizer=optim.adam(schedules.warmup_cosine_decay(1e-2, 20, 400)),
                     epochs=4, batch_size=32, seed=3, progress=False, l2=1e-4)
    assert not leaves_equal(with_dropout.state.params, without.state.params)
    params = with_dropout.state.params
    np.testing.assert_array_equal(pn.predict(params, x_test), pn.predict(params, x_test))


# --- convergence ----------------------------------------------------------------------


def test_moons_reaches_97_percent_with_adam(moons):
    x_train, x_test, y_train, y_test = moons
    result = pn.fit(MOONS_ARCH, x_train, y_train, optimizer=optim.adam(1e-2), epochs=30,
                    batch_size=32, progress=False)
    assert pn.evaluate(result.state.params, x_test, y_test)["accuracy"] >= 0.97


def test_digits_reaches_95_percent_with_softmax():
    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0,
                                                        stratify=y)
    scaler = StandardScaler().fit(x_train)
    arch = [{"input_dim": 64, "output_dim": 128, "activation": "relu"},
            {"input_dim": 128, "output_dim": 10, "activation": "softmax"}]
    result = pn.fit(arch, scaler.transform(x_train), y_train, optimizer=optim.adam(1e-3),
                    epochs=20, batch_size=32, progress=False,
                    validation_data=(scaler.transform(x_test), y_test))
    assert result.history.val_accuracy[-1] >= 0.95
    assert result.history.train_loss[-1] < result.history.train_loss[0]


def test_diabetes_regression_beats_the_mean_predictor():
    x, y = load_diabetes(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0)
    scaler = StandardScaler().fit(x_train)
    mean, std = y_train.mean(), y_train.std()
    arch = [{"input_dim": 10, "output_dim": 32, "activation": "relu"},
            {"input_dim": 32, "output_dim": 1, "activation": "identity"}]
    result = pn.fit(arch, scaler.transform(x_train), (y_train - mean) / std,
                    optimizer=optim.adam(1e-2), epochs=30, batch_size=32, l2=1e-3,
                    progress=False)
    mse = pn.evaluate(result.state.params, scaler.transform(x_test), (y_test - mean) / std)["loss"]
    baseline = float(np.mean(((y_test - mean) / std) ** 2))   # always predicting the mean
    assert mse < 0.8 * baseline
    assert math.isnan(result.history.train_accuracy[0])


# --- train_step -----------------------------------------------------------------------


def small_spec(optimizer=None) -> RunConfig:
    arch = pn.Architecture.from_dicts(MOONS_ARCH)
    return RunConfig(arch, optimizer or optim.adam(1e-2), loss="binary_crossentropy",
                     dtype="float64", seed=0, batch_size=16, l2=1e-3)


def test_train_step_is_pure(moons):
    from purenet.testing import assert_pure

    x_train, _, y_train, _ = moons
    spec = small_spec()
    state = initial_state_for(spec)
    assert_pure(train_step, state, pn.Batch(x_train[:16], y_train[:16]), spec)


def test_train_step_advances_counters_and_totals(moons):
    x_train, _, y_train, _ = moons
    spec = small_spec()
    state, metrics = train_step(initial_state_for(spec), pn.Batch(x_train[:16], y_train[:16]), spec)
    assert (state.step, state.batch_index, state.epoch) == (1, 1, 0)
    assert state.totals.samples == 16 and metrics.samples == 16
    assert state.totals.loss_sum == pytest.approx(metrics.loss * 16)
    assert 0 <= metrics.correct <= 16


# --- the non-finite guard -------------------------------------------------------------


def test_exploding_learning_rate_stops_with_the_step_named():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)) * 100
    y = x @ np.array([1.0, -2.0, 3.0])
    arch = [{"input_dim": 3, "output_dim": 16, "activation": "relu"},
            {"input_dim": 16, "output_dim": 1, "activation": "identity"}]
    with np.errstate(over="ignore", invalid="ignore"):
        with pytest.raises(pn.NonFiniteError, match=r"diverged in step \d+: .*(loss|gradient of layer)"):
            pn.fit(arch, x, y, optimizer=optim.sgd(10.0), epochs=50, batch_size=8,
                   dtype="float64", progress=False)


# --- early stopping, callbacks, history ------------------------------------------------


def test_early_stopping_restores_the_best_params(moons):
    x_train, x_test, y_train, y_test = moons
    seen = []

    class Recorder(pn.Callback):
        def on_epoch_end(self, state):
            seen.append((state.epoch, pn.evaluate(state.params, x_test, y_test)["loss"]))

    # A learning rate high enough to overshoot, so validation loss rises again.
    result = pn.fit(MOONS_ARCH, x_train, y_train, optimizer=optim.sgd(0.5), epochs=200,
                    batch_size=16, progress=False, validation_data=(x_test, y_test),
                    early_stopping=pn.EarlyStopping(patience=3), callbacks=[Recorder()])
    state = result.state
    assert state.stopped and state.epoch < 200
    best = state.early_stopping
    assert state.epoch == best.best_epoch + 1 + 3
    assert min(result.history.val_loss) == best.best
    final = pn.evaluate(state.params, x_test, y_test)["loss"]
    assert final == pytest.approx(best.best, rel=1e-5)
    assert [e for e, _ in seen] == list(range(1, state.epoch + 1))


def test_early_stopping_on_validation_needs_validation_data(moons):
    x_train, _, y_train, _ = moons
    with pytest.raises(ValueError, match="no validation_data"):
        pn.fit(MOONS_ARCH, x_train, y_train, early_stopping=pn.EarlyStopping(), progress=False)


def test_callbacks_see_every_step(moons):
    x_train, _, y_train, _ = moons
    steps = []

    class Steps(pn.Callback):
        def on_step_end(self, state, metrics):
            steps.append(state.step)

    pn.fit(MOONS_ARCH, x_train, y_train, epochs=2, batch_size=100, progress=False,
           callbacks=[Steps()])
    assert steps == list(range(1, 15))


def test_history_has_one_row_per_epoch(moons):
    result = adam_run(moons)
    history = result.history
    assert history.epoch == (1, 2, 3, 4)
    assert all(0 <= a <= 1 for a in history.train_accuracy + history.val_accuracy)
    assert result.state.epoch == 4 and result.state.batch_index == 0


def test_full_batch_uses_every_sample_each_step(moons):
    x_train, _, y_train, _ = moons
    result = pn.fit(MOONS_ARCH, x_train, y_train, epochs=3, batch_size=None, progress=False)
    assert result.state.step == 3


@pytest.mark.parametrize("bad, message", [
    (dict(epochs=-1), "epochs must be an int"),
    (dict(max_steps=1.5), "max_steps must be an int"),
    (dict(batch_size=0), "batch_size must be an int"),
    (dict(optimizer="adam"), "optimizer must come from purenet.optim"),
    (dict(dtype="float16"), "dtype is unknown: 'float16'; expected one of"),
    (dict(validation_data=[1, 2, 3]), "validation_data must be a pair"),
])
def test_bad_fit_arguments_are_refused(moons, bad, message):
    x_train, _, y_train, _ = moons
    with pytest.raises((ValueError, TypeError), match=message):
        pn.fit(MOONS_ARCH, x_train, y_train, progress=False, **bad)


def test_progress_bar_can_be_forced_on(moons, capsys):
    x_train, _, y_train, _ = moons
    pn.fit(MOONS_ARCH, x_train, y_train, epochs=1, batch_size=100, progress=True)
    assert "step" in capsys.readouterr().err
