"""Checkpoints written by purenet 0.1 (format_version 1, before the run record), once
``purenet upgrade`` has rewritten them, load and resume: bit for bit where the scope they
were computed in is this machine's (numerics version, numpy, BLAS core), and elsewhere with
the warning and the crossing the contract promises. tests/data/v1-step-00000007.h5 was
written by commit 6e95694 (numpy 2.4.6, OpenBLAS 0.3.31's Haswell kernel):

    arch = [{"input_dim": 3, "output_dim": 8, "activation": "relu", "dropout": 0.1},
            {"input_dim": 8, "output_dim": 1, "activation": "sigmoid"}]
    x = default_rng(0).normal(size=(40, 3)); y = (x[:, 0] > 0).astype(int)
    fit(arch, x, y, optimizer=chain(clip_by_global_norm(1.0),
                                    adam(warmup_cosine_decay(0.01, 5, 50))),
        epochs=4, batch_size=16, seed=3, l2=1e-3, validation_data=(x[:10], y[:10]),
        early_stopping=EarlyStopping(patience=3), max_steps=7,
        checkpointer=Checkpointer(dir, every_steps=7, keep=1))
"""

import os
import shutil

import numpy as np
import pytest

import purenet as pn
from purenet import optim
from purenet.checkpoint import scope
from purenet.checkpoint.upgrade import upgrade_checkpoint
from purenet.core.records import params_digest

FILE = os.path.join(os.path.dirname(__file__), "data", "v1-step-00000007.h5")
ARCH = [{"input_dim": 3, "output_dim": 8, "activation": "relu", "dropout": 0.1},
        {"input_dim": 8, "output_dim": 1, "activation": "sigmoid"}]


def settings(**changes):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    y = (x[:, 0] > 0).astype(int)
    run = dict(optimizer=optim.chain(optim.clip_by_global_norm(1.0), optim.adam(
        optim.schedules.warmup_cosine_decay(0.01, 5, 50))), epochs=4, batch_size=16, seed=3,
        l2=1e-3, early_stopping=pn.EarlyStopping(patience=3))
    run.update(changes)
    return x, y, run


class StartStep(pn.Callback):
    def on_fit_start(self, state, config, total_steps, data):
        self.step = state.step


def upgraded(source, directory):
    """A copy of ``source`` rewritten as format 3, as ``directory``'s only checkpoint."""
    directory.mkdir(exist_ok=True)
    path = str(directory / "step-00000007.h5")
    shutil.copy(source, path)
    upgrade_checkpoint(path)
    return path


def resume(directory, **changes):
    """Resume the run from ``directory``; returns the result and the step it resumed from."""
    x, y, run = settings(**changes)
    start = StartStep()
    result = pn.fit(ARCH, x, y, validation_data=(x[:10], y[:10]), progress=False,
                    checkpointer=pn.Checkpointer(directory), resume=True, callbacks=[start],
                    **run)
    return result, start.step


def assert_resumes_as_the_contract_says(source, tmp_path):
    """Within the file's scope: the uninterrupted run's parameters and history, bit for bit.
    Outside it: one CheckpointWarning naming what changed, a finished run that records the
    crossing at step 7, and the same result from the same resume made twice."""
    checkpoint = pn.load_checkpoint(upgraded(source, tmp_path / "a"))
    if checkpoint.scope == scope.here():
        resumed, start = resume(tmp_path / "a")
        x, y, run = settings()
        whole = pn.fit(ARCH, x, y, validation_data=(x[:10], y[:10]), progress=False, **run)
        assert start == 7 and resumed.state.step == whole.state.step == 12
        assert params_digest(resumed.state.params) == params_digest(whole.state.params)
        assert resumed.history.val_loss == whole.history.val_loss
        return
    results = []
    for name in ("a", "b"):
        directory = tmp_path / name
        upgraded(source, directory)
        with pytest.warns(pn.CheckpointWarning, match="under another numerics version, numpy "
                                                      "or BLAS"):
            resumed, start = resume(directory)
        assert start == 7 and resumed.state.step == 12
        final = pn.load_checkpoint(directory)
        assert [c.step for c in final.crossings] == [7]
        results.append((params_digest(resumed.state.params), resumed.history.val_loss))
    assert results[0] == results[1]


def test_a_version_1_file_is_refused_until_upgraded_then_loads_into_the_run_record(tmp_path):
    with pytest.raises(pn.LegacyCheckpointError, match="purenet upgrade"):
        pn.load_checkpoint(FILE)
    checkpoint = pn.load_checkpoint(upgraded(FILE, tmp_path / "ck"))
    assert checkpoint.upgraded_from["format_version"] == 1 and checkpoint.state.step == 7
    x, y, run = settings()
    assert checkpoint.config.differences(pn.RunConfig(ARCH, **run)) == []
    assert checkpoint.config.optimizer.config()["clip_by_global_norm"] == 1.0


def test_resuming_an_upgraded_version_1_file_holds_the_contract(tmp_path):
    assert_resumes_as_the_contract_says(FILE, tmp_path)


def test_an_upgraded_version_1_file_of_another_run_is_refused(tmp_path):
    upgraded(FILE, tmp_path / "ck")
    with pytest.raises(pn.CheckpointMismatchError, match="l2: this run has 0.0, the checkpoint 0.001"):
        resume(tmp_path / "ck", l2=0.0)
