"""Checkpoints written by purenet 0.1 (format_version 1, before the run record) still load
and resume bit for bit. tests/data/v1-step-00000007.h5 was written by commit 6e95694:

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


def test_a_version_1_file_loads_into_the_run_record():
    checkpoint = pn.load_checkpoint(FILE)
    assert checkpoint.format_version == 1 and checkpoint.state.step == 7
    x, y, run = settings()
    assert checkpoint.config.differences(pn.RunConfig(ARCH, **run)) == []
    assert checkpoint.config.optimizer.config()["clip_by_global_norm"] == 1.0


def test_resuming_a_version_1_file_equals_the_uninterrupted_run(tmp_path):
    directory = tmp_path / "ck"
    directory.mkdir()
    shutil.copy(FILE, directory / "step-00000007.h5")
    x, y, run = settings()
    start = StartStep()
    resumed = pn.fit(ARCH, x, y, validation_data=(x[:10], y[:10]), progress=False,
                     checkpointer=pn.Checkpointer(directory), resume=True, callbacks=[start],
                     **run)
    assert start.step == 7   # it really resumed
    whole = pn.fit(ARCH, x, y, validation_data=(x[:10], y[:10]), progress=False, **run)
    assert resumed.state.step == whole.state.step == 12
    assert params_digest(resumed.state.params) == params_digest(whole.state.params)
    assert resumed.history.val_loss == whole.history.val_loss


def test_a_version_1_file_of_another_run_is_refused(tmp_path):
    directory = tmp_path / "ck"
    directory.mkdir()
    shutil.copy(FILE, directory / "step-00000007.h5")
    x, y, run = settings(l2=0.0)
    with pytest.raises(pn.CheckpointMismatchError, match="l2: this run has 0.0, the checkpoint 0.001"):
        pn.fit(ARCH, x, y, validation_data=(x[:10], y[:10]), progress=False,
               checkpointer=pn.Checkpointer(directory), resume=True, **run)
