"""Resume equals uninterrupted: for every optimizer, a run stopped mid-epoch with a
checkpointer and resumed by a fresh ``fit(..., resume=True)`` ends bit for bit where one
uninterrupted run ends. A checkpoint of another run is refused before anything changes,
listing every difference; another BLAS environment gives a warning."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from _checkpoint_common import ARCH, moons, snapshot, step_files

import purenet as pn
from purenet.checkpoint import machine
from purenet import optim
from purenet.optim import schedules
from purenet.checkpoint.policy import CheckpointWarning
from purenet.core.records import params_digest

try:
    from purenet.testing import assert_records_equal
except ImportError:   # pragma: no cover - purenet.testing is written alongside these tests
    assert_records_equal = None

EPOCHS, BATCH = 8, 32   # 240 samples: 8 batches an epoch, 64 steps
OPTIMIZERS = {
    "sgd": lambda: optim.sgd(schedules.step_decay(0.2, 0.5, 16)),
    "momentum": lambda: optim.momentum(schedules.exponential_decay(0.05, 0.5, 32), 0.9),
    "nesterov": lambda: optim.momentum(schedules.exponential_decay(0.05, 0.5, 32), 0.9,
                                       nesterov=True),
    "adam": lambda: optim.adam(schedules.warmup_cosine_decay(2e-2, 8, 64)),
    "adamw": lambda: optim.adamw(schedules.exponential_decay(2e-2, 0.5, 32), weight_decay=0.05),
    "rmsprop": lambda: optim.rmsprop(schedules.step_decay(1e-2, 0.5, 20)),
    "adagrad": lambda: optim.adagrad(schedules.exponential_decay(5e-2, 0.7, 16)),
    "chain(clip, adam)": lambda: optim.chain(optim.clip_by_global_norm(0.5), optim.adam(
        schedules.warmup_cosine_decay(2e-2, 8, 64))),
}


@pytest.fixture(scope="module")
def data():
    return moons(240, 80, random_state=5)


def run(data, optimizer_name, **overrides):
    (x, y), val = data
    kwargs = dict(optimizer=OPTIMIZERS[optimizer_name](), epochs=EPOCHS, batch_size=BATCH,
                  seed=11, dtype="float32", l2=1e-3, validation_data=val, progress=False,
                  early_stopping=pn.EarlyStopping(patience=2, min_delta=0.01))
    architecture = overrides.pop("architecture", ARCH)
    kwargs.update(overrides)
    return pn.fit(architecture, x, y, **kwargs)


class FirstStep(pn.Callback):
    def __init__(self) -> None:
        self.first = None

    def on_step_end(self, state, metrics) -> None:
        self.first = state.step if self.first is None else self.first


def assert_same_state(got, want) -> None:
    for a, b in zip(pn.tree_leaves(got.params), pn.tree_leaves(want.params)):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    if assert_records_equal is not None:   # optimizer state, history, totals, early stopping
        assert_records_equal(got, want)
    else:   # pragma: no cover
        for column, values in want.history.as_dict().items():
            np.testing.assert_array_equal(got.history.as_dict()[column], values)


# --- every optimizer ------------------------------------------------------------------


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_resume_from_a_checkpoint_equals_the_uninterrupted_run(data, tmp_path, name):
    whole = run(data, name)
    k = 19   # epoch 2, batch 3 of 8
    first = run(data, name, max_steps=k,
                checkpointer=pn.Checkpointer(tmp_path, every_steps=5, keep=2))
    assert first.state.step == k and first.state.batch_index == 3
    assert step_files(tmp_path) == ["step-00000015.h5", "step-00000019.h5"]
    seen = FirstStep()
    resumed = run(data, name, checkpointer=pn.Checkpointer(tmp_path, every_steps=5, keep=2),
                  resume=True, callbacks=[seen])
    assert seen.first == k + 1   # it continued; it did not start over
    assert_same_state(resumed.state, whole.state)
    assert resumed.state.step == whole.state.step
    for column, values in whole.history.as_dict().items():   # exact; NaN equals NaN
        np.testing.assert_array_equal(resumed.history.as_dict()[column], values)
    final = pn.load_checkpoint(tmp_path)   # the final state was saved
    assert final.state.step == whole.state.step
    assert final.params_digest == params_digest(whole.state.params)


def test_early_stopping_fires_in_some_resumed_runs(data):
    """The table above is only worth its name if early stopping acts in it."""
    stopped = [name for name in OPTIMIZERS if run(data, name).state.stopped]
    assert stopped, "no optimizer stopped early; tighten EarlyStopping in this file"


@pytest.mark.parametrize("k", [1, 8, 30, 63])   # first step, epoch edge, mid-epoch, last
def test_resume_at_any_step_float64(data, tmp_path, k):
    whole = run(data, "adam", dtype="float64")
    run(data, "adam", dtype="float64", max_steps=k,
        checkpointer=pn.Checkpointer(tmp_path, every_steps=1000))
    resumed = run(data, "adam", dtype="float64", resume=True,
                  checkpointer=pn.Checkpointer(tmp_path, every_steps=1000))
    assert_same_state(resumed.state, whole.state)


def test_resume_from_an_empty_directory_starts_fresh(data, tmp_path):
    whole = run(data, "sgd")
    fresh = run(data, "sgd", resume=True, checkpointer=pn.Checkpointer(tmp_path / "new"))
    assert_same_state(fresh.state, whole.state)


def test_resuming_a_finished_run_changes_nothing(data, tmp_path):
    ck = pn.Checkpointer(tmp_path, every_epochs=1)
    done = run(data, "adam", checkpointer=ck)
    before = snapshot(tmp_path)
    again = run(data, "adam", checkpointer=pn.Checkpointer(tmp_path, every_epochs=1), resume=True)
    assert_same_state(again.state, done.state)
    assert snapshot(tmp_path) == before


# --- a checkpoint of another run ------------------------------------------------------


@pytest.fixture
def saved_run(data, tmp_path):
    run(data, "adam", max_steps=13, checkpointer=pn.Checkpointer(tmp_path, every_steps=4))
    return tmp_path


OTHER_ARCH = [dict(layer) for layer in ARCH]
OTHER_ARCH[0]["output_dim"] = 24          # a layer size
OTHER_ARCH[1]["input_dim"] = 24
OTHER_ARCH[1]["activation"] = "relu"      # an activation


@pytest.mark.parametrize("change, expected", [
    ({"architecture": OTHER_ARCH}, ["layers.0.output_dim: this run has 24, the checkpoint 16",
                                    "layers.1.input_dim: this run has 24, the checkpoint 16",
                                    "layers.1.activation: this run has 'relu', the checkpoint 'tanh'"]),
    ({"dtype": "float64"}, ["dtype: this run has 'float64', the checkpoint 'float32'"]),
    ({"optimizer": optim.sgd(0.1)}, ["optimizer.name: this run has 'sgd', the checkpoint 'adam'"]),
    ({"optimizer": optim.adam(schedules.warmup_cosine_decay(3e-2, 8, 64))},
     ["optimizer.learning_rate.peak_value: this run has 0.03, the checkpoint 0.02"]),
    ({"seed": 12}, ["seed: this run has 12, the checkpoint 11"]),
    ({"l2": 0.0}, ["l2: this run has 0.0, the checkpoint 0.001"]),
])
def test_a_mismatching_resume_is_refused_before_anything_changes(data, saved_run, change,
                                                                  expected):
    before = snapshot(saved_run)
    with pytest.raises(pn.CheckpointMismatchError, match="refusing to resume") as info:
        run(data, "adam", resume=True, checkpointer=pn.Checkpointer(saved_run, every_steps=4),
            **change)
    for line in expected:
        assert line in str(info.value)
    assert snapshot(saved_run) == before   # same files, same bytes


def test_a_mismatch_lists_every_difference_at_once(data, saved_run):
    before = snapshot(saved_run)
    with pytest.raises(pn.CheckpointMismatchError) as info:
        run(data, "adam", resume=True, checkpointer=pn.Checkpointer(saved_run, every_steps=4),
            architecture=OTHER_ARCH, dtype="float64", seed=12,
            optimizer=optim.adam(schedules.warmup_cosine_decay(3e-2, 8, 64)))
    message = str(info.value)
    for key in ("layers.0.output_dim", "layers.1.input_dim",
                "layers.1.activation", "dtype", "seed",
                "optimizer.learning_rate.peak_value"):
        assert f"\n  {key}: this run has" in message, (key, message)
    assert "use another directory" in message
    assert snapshot(saved_run) == before


def test_another_optimizer_is_refused_with_each_setting_named(data, saved_run):
    with pytest.raises(pn.CheckpointMismatchError) as info:
        run(data, "adam", resume=True, checkpointer=pn.Checkpointer(saved_run),
            optimizer=optim.chain(optim.clip_by_global_norm(1.0), optim.sgd(0.1)))
    message = str(info.value)
    assert "optimizer.name: this run has 'sgd', the checkpoint 'adam'" in message
    assert "optimizer.clip_by_global_norm: this run has 1.0, the checkpoint '(not set)'" \
        in message


def test_a_different_blas_library_warns_about_bit_identity(data, saved_run, monkeypatch):
    real = machine.environment()
    monkeypatch.setattr(machine, "environment",
                        lambda: {**real, "blas": "OpenBLAS 0.0.1 (Prescott)"})
    with pytest.warns(CheckpointWarning, match=r"blas: saved with .*, now 'OpenBLAS 0.0.1.*"
                                               r"bit-identical to an uninterrupted run only "
                                               r"within one scope"):
        resumed = run(data, "adam", resume=True,
                      checkpointer=pn.Checkpointer(saved_run, every_steps=4))
    assert resumed.state.step > 13   # a warning, not a refusal


def test_another_thread_count_in_the_environment_does_not_warn(data, saved_run, monkeypatch):
    """The thread count is the run's own setting, applied again on resume."""
    real = machine.environment()
    monkeypatch.setattr(machine, "environment",
                        lambda: {**real, "blas_threads": real["blas_threads"] + 3})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run(data, "adam", resume=True, checkpointer=pn.Checkpointer(saved_run))


def test_an_unchanged_environment_does_not_warn(data, saved_run):
    resumed = run(data, "adam", resume=True, checkpointer=pn.Checkpointer(saved_run))
    assert resumed.state.step > 13 and not math.isnan(resumed.history.train_loss[-1])
