"""L-BFGS through fit and its checkpoints: a run resumed mid-way (from a state or a
checkpoint; under another BLAS thread count in test_threads.py, after SIGKILL in
test_kill.py) is the uninterrupted run bit for bit, and a
checkpoint whose L-BFGS state was forged is refused, naming what is wrong
(tests/_hostile_files.py edits real files and seals them again)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from _hostile_files import craft, reseal_body

import purenet as pn
from purenet.checkpoint.format import read_checkpoint
from purenet.core.records import tree_leaves
from purenet.testing import assert_pure, assert_records_equal

ARCH = [{"input_dim": 2, "output_dim": 6, "activation": "tanh"},
        {"input_dim": 6, "output_dim": 1, "activation": "sigmoid"}]
N_PARAMS = 2 * 6 + 6 + 6 + 1
RUN = dict(optimizer=pn.optim.lbfgs(history_size=3), batch_size=None, epochs=40,
           dtype="float64", l2=1e-3, progress=False)


def data():
    x = np.random.default_rng(0).normal(size=(80, 2))
    return x, (x[:, 0] * x[:, 1] > 0).astype(int)


@pytest.fixture(scope="module")
def uninterrupted():
    return pn.fit(ARCH, *data(), **RUN)


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    directory = tmp_path_factory.mktemp("ck")
    pn.fit(ARCH, *data(), checkpointer=pn.Checkpointer(directory, every_steps=4, keep=1),
           max_steps=8, **RUN)
    (path,) = directory.glob("step-*.h5")
    return path


def test_a_run_continued_from_any_state_is_the_uninterrupted_run(uninterrupted):
    assert 8 < uninterrupted.state.step <= RUN["epochs"]
    first = pn.fit(ARCH, *data(), max_steps=5, **RUN)
    rest = pn.fit(ARCH, *data(), initial_state=first.state, **RUN)
    assert_records_equal(rest.state, uninterrupted.state)


def test_a_run_resumed_from_a_mid_run_checkpoint_is_the_uninterrupted_run(tmp_path,
                                                                          uninterrupted):
    directory = tmp_path / "ck"
    pn.fit(ARCH, *data(), checkpointer=pn.Checkpointer(directory, every_steps=3), max_steps=7,
           **RUN)
    saved = pn.load_checkpoint(directory).state
    assert saved.step == 7 and len(saved.opt_state.s) == 3   # memory full: pairs dropped
    resumed = pn.fit(ARCH, *data(), checkpointer=pn.Checkpointer(directory, every_steps=3),
                     resume=True, **RUN)
    for a, b in zip(tree_leaves(resumed.state.params), tree_leaves(uninterrupted.state.params)):
        assert np.array_equal(a, b)
    assert_records_equal(resumed.state, uninterrupted.state)
    assert_records_equal(pn.load_checkpoint(directory).state, uninterrupted.state)


def test_a_stopped_run_stays_stopped_when_given_more_epochs(tmp_path):
    run = dict(RUN, optimizer=pn.optim.lbfgs(tolerance_grad=3e-2))
    directory = tmp_path / "ck"
    done = pn.fit(ARCH, *data(), checkpointer=pn.Checkpointer(directory), **run)
    assert done.state.stopped and done.state.opt_state.stopped in pn.optim.STOP_REASONS
    assert done.state.step < RUN["epochs"] and len(done.history) == done.state.step
    again = pn.fit(ARCH, *data(), checkpointer=pn.Checkpointer(directory), resume=True,
                   **dict(run, epochs=100))
    assert again.state.step == done.state.step


def test_a_training_step_of_it_is_pure_and_fits_own():
    config = pn.RunConfig(ARCH, **{k: v for k, v in RUN.items() if k != "progress"})
    state = pn.fit(config, *data(), max_steps=3, progress=False).state
    new, metrics = assert_pure(pn.train_step, state, pn.Batch(*data()), config)
    assert new.step == 4 and new.opt_state.count == 4 and metrics.loss == new.opt_state.loss
    # fit evaluates in its engine's arrays, train_step in fresh ones: the same numbers
    fitted = pn.fit(config, *data(), max_steps=4, progress=False).state
    assert_records_equal((new.params, new.opt_state), (fitted.params, fitted.opt_state))


def test_a_step_that_leaves_nan_is_refused_and_the_state_before_kept():
    real = pn.optim.lbfgs(history_size=3)

    def poisoned(objective, params, state):
        params, state, info = real.step(objective, params, state)
        if state.count == 3:
            params = pn.optim.apply_updates(params, pn.optim.flat.unflatten(
                np.full(N_PARAMS, np.nan), params))
        return params, state, info

    run = dict(RUN, optimizer=pn.optim.ObjectiveOptimizer("lbfgs", real.hyperparams,
                                                          real.init, poisoned))
    with pytest.raises(pn.NonFiniteError, match="training diverged in step 3: the updated "
                                                "parameters of layer 0 W holds NaN/inf"):
        pn.fit(ARCH, *data(), **run)


def test_the_history_reports_the_loss_where_each_iteration_ends(uninterrupted):
    state = uninterrupted.state
    assert uninterrupted.history.train_loss[-1] == state.opt_state.loss
    assert list(uninterrupted.history.train_loss) == sorted(uninterrupted.history.train_loss,
                                                            reverse=True)


def test_early_stopping_works_beside_it():
    x, y = data()
    result = pn.fit(ARCH, x, y, validation_data=(x[:20], y[:20]),
                    early_stopping=pn.EarlyStopping("val_loss", patience=1, min_delta=1.0),
                    **RUN)
    assert result.state.stopped and result.state.opt_state.stopped == ""
    assert result.state.step == 2


# --- refusals by the run record -------------------------------------------------------------


def test_mini_batches_and_dropout_are_refused_with_what_to_do():
    with pytest.raises(pn.SettingError, match='batch_size must be "full" with lbfgs .*got 32'):
        pn.RunConfig(ARCH, optimizer=pn.optim.lbfgs(), batch_size=32)
    with pytest.raises(pn.SettingError, match='batch_size must be "full"'):
        pn.fit(ARCH, *data(), optimizer=pn.optim.lbfgs(), progress=False)   # default 64
    dropped = [dict(ARCH[0], dropout=0.5), ARCH[1]]
    with pytest.raises(pn.SettingError, match=r"layers\[0\].dropout must be 0 with lbfgs, got "
                                              "0.5: its line search needs the same objective"):
        pn.RunConfig(dropped, optimizer=pn.optim.lbfgs(), batch_size=None)


def test_the_run_record_round_trips_with_lbfgs():
    config = pn.RunConfig(ARCH, optimizer=pn.optim.lbfgs(history_size=3, max_eval=50),
                          batch_size=None)
    back = pn.RunConfig.from_dict(config.to_dict())
    assert back.optimizer.config() == config.optimizer.config()
    assert back.differences(config) == []
    other = pn.RunConfig(ARCH, optimizer=pn.optim.lbfgs(history_size=4), batch_size=None)
    assert "optimizer.history_size: this run has 4, the checkpoint 3" in \
        other.differences(config)[0] + "".join(other.differences(config))


# --- forged checkpoints -----------------------------------------------------------------------


def edited(original, tmp_path, edit):
    return craft(original, tmp_path / "step-00000008.h5", edit)


def read_edited(original, tmp_path, edit):
    return read_checkpoint(edited(original, tmp_path, edit))


def test_the_unedited_file_resealed_is_valid(original, tmp_path):
    state = read_edited(original, tmp_path, lambda f: None).state
    assert state.step == 8 and state.opt_state.count == 8 and len(state.opt_state.s) == 3


def record_edit(**changes):
    return lambda f: f.meta["optimizer_state"].update(changes)


@pytest.mark.parametrize("changes, words", [
    ({"count": -1}, r"/optimizer/count is -1; expected an integer from 0"),
    ({"count": 7}, r"/optimizer/count is 7, but 8 updates were made"),
    ({"evals": -3}, r"/optimizer/evals is -3; expected an integer from 0"),
    ({"iterations": 9}, "holds 3 pairs after 9 iterations in 8 steps"),
    ({"iterations": 2}, "holds 3 pairs after 2 iterations"),
    ({"evals": 0}, "counts 0 evaluations in 8 steps"),
    ({"loss": "0.5"}, r"/optimizer/loss is '0.5'; expected a finite number"),
    ({"h_diag": -1.0}, r"h_diag -1.0; expected each rho in \(0, 1e\+10\) and h_diag > 0"),
    ({"rho": [1.0, 2.0]}, "holds 3 steps s, 3 gradient changes y and 2 rho"),
    ({"rho": [1.0, 0.0, 2.0]}, r"expected each rho in \(0, 1e\+10\)"),
    ({"rho": [1.0, "x", 2.0]}, "/optimizer/rho is .*; expected a list of finite numbers"),
    ({"stopped": "bored"}, r"/optimizer/stopped is 'bored'; expected '' or one of"),
    ({"stopped": "gradient"}, r"says it stopped \(gradient\), but the run went on"),
    ({"grad": "/optimizer/s"}, "/optimizer/grad is '/optimizer/s'; expected its own path"),
    ({"s": {"array": "/optimizer/s", "rows": -1}}, "/optimizer/s is .*rows.*expected"),
    ({"unknown": 1}, "written by a newer purenet"),
])
def test_a_forged_lbfgs_state_is_refused(original, tmp_path, changes, words):
    with pytest.raises(pn.CheckpointError, match=words):
        read_edited(original, tmp_path, record_edit(**changes))


def test_a_history_longer_than_history_size_is_refused(original, tmp_path):
    def longer(f):
        for name in ("s", "y"):
            rows = f.array(f"/optimizer/{name}")
            f.put(f"/optimizer/{name}", np.vstack([rows, rows[:1]]))
            f.meta["optimizer_state"][name]["rows"] = 4
        f.meta["optimizer_state"]["rho"].append(1.0)
        f.meta["optimizer_state"]["iterations"] = 8
    with pytest.raises(pn.CorruptCheckpointError,
                       match="holds 4 curvature pairs, more than the run's history_size 3"):
        read_edited(original, tmp_path, longer)


def replace(name, value):
    return lambda f: f.put(name, value(f.array(name)))


@pytest.mark.parametrize("name, value, words", [
    ("/optimizer/grad", lambda a: a + np.nan, "/optimizer/grad holds NaN or inf"),
    ("/optimizer/s", lambda a: np.where(a > 0, np.inf, a), "/optimizer/s holds NaN or inf"),
    ("/optimizer/grad", lambda a: a[:-1],
     rf"/optimizer/grad is float64 of shape \({N_PARAMS - 1},\); expected float64 of shape "
     rf"\({N_PARAMS},\)"),
    ("/optimizer/y", lambda a: a[:2], rf"/optimizer/y is float64 of shape \(2, {N_PARAMS}\); "
                                      rf"expected float64 of shape \(3, {N_PARAMS}\)"),
    ("/optimizer/s", lambda a: a.astype(np.float32), r"/optimizer/s is float32"),
])
def test_forged_lbfgs_arrays_are_refused(original, tmp_path, name, value, words):
    with pytest.raises(pn.CorruptCheckpointError, match=words):
        read_edited(original, tmp_path, replace(name, value))


def test_a_format_1_file_naming_the_lbfgs_record_is_refused_by_upgrade(tmp_path):
    """purenet 0.1 never wrote L-BFGS's state: a format 1 file naming it is not one of its."""
    from purenet.checkpoint.upgrade import upgrade_checkpoint

    source = os.path.join(os.path.dirname(__file__), "data", "v1-step-00000007.h5")

    def rename(body):   # its chain's record, renamed in place (same length)
        at = body.find(b"ChainState")
        body[at:at + 10] = b"LbfgsState"
    forged = reseal_body(source, str(tmp_path / "step-00000007.h5"), rename)
    with pytest.raises(pn.CheckpointError, match="unknown optimizer state record 'LbfgsState'"):
        upgrade_checkpoint(forged, dry_run=True)


def test_a_stop_nobody_made_is_refused(original, tmp_path):
    with pytest.raises(pn.CorruptCheckpointError, match="it stopped early, but early stopping "
                                                        "is off"):
        read_edited(original, tmp_path, lambda f: f.meta.update(stopped=True))


def test_the_memory_estimate_counts_its_curvature_pairs():
    from purenet.experiment.limits import PARAM_COPIES, training_memory

    config = pn.RunConfig(ARCH, optimizer=pn.optim.lbfgs(history_size=10), batch_size=None,
                          dtype="float64")
    assert training_memory(config, 80, 2)["params"] == N_PARAMS * 8 * (PARAM_COPIES + 23)
    adam = pn.RunConfig(ARCH, dtype="float64")
    assert training_memory(adam, 80, 2)["params"] == N_PARAMS * 8 * (PARAM_COPIES + 2)
