"""Checkpoints of format 2 (written before the manifest of format 3) still load, in a child
process with a time and memory limit, and resume bit for bit.
tests/data/v2-step-00000007.h5 was written by commit 5315503 with the run of
test_format_v1.py (the same settings, so both files hold the same state)."""

import os
import shutil

import pytest
from test_format_v1 import ARCH, StartStep, settings

import purenet as pn
from purenet.checkpoint import legacy
from purenet.core.records import params_digest

FILE = os.path.join(os.path.dirname(__file__), "data", "v2-step-00000007.h5")
V1_FILE = os.path.join(os.path.dirname(__file__), "data", "v1-step-00000007.h5")


def test_a_version_2_file_loads_with_its_own_facts():
    checkpoint = pn.load_checkpoint(FILE)
    assert checkpoint.format_version == 2 and checkpoint.state.step == 7
    assert checkpoint.purenet_version == "0.1.0"
    assert checkpoint.created.startswith("2026-11-29T06:03")
    x, y, run = settings()
    assert checkpoint.config.differences(pn.RunConfig(ARCH, **run)) == []
    assert checkpoint.params_digest == pn.load_checkpoint(V1_FILE).params_digest


def test_resuming_a_version_2_file_equals_the_uninterrupted_run(tmp_path):
    directory = tmp_path / "ck"
    directory.mkdir()
    shutil.copy(FILE, directory / "step-00000007.h5")
    x, y, run = settings()
    start = StartStep()
    resumed = pn.fit(ARCH, x, y, validation_data=(x[:10], y[:10]), progress=False,
                     checkpointer=pn.Checkpointer(directory), resume=True, callbacks=[start],
                     **run)
    assert start.step == 7
    whole = pn.fit(ARCH, x, y, validation_data=(x[:10], y[:10]), progress=False, **run)
    assert params_digest(resumed.state.params) == params_digest(whole.state.params)
    assert resumed.history.val_loss == whole.history.val_loss


def test_a_reader_that_runs_out_of_time_is_stopped(monkeypatch):
    monkeypatch.setattr(legacy, "SECONDS", 0.01)   # less than the child needs to start
    with pytest.raises(pn.CorruptCheckpointError, match=r"took more than 0 s and was stopped"):
        pn.load_checkpoint(FILE)


def test_a_reader_that_runs_out_of_memory_is_refused(monkeypatch):
    monkeypatch.setattr(legacy, "MEMORY", 1 << 20)   # 1 MiB beyond its own: not enough
    with pytest.raises(pn.CorruptCheckpointError, match=FILE):
        pn.load_checkpoint(FILE)
