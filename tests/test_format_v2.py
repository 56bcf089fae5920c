"""Checkpoints of format 2 (written before the manifest of format 3) are refused by every
reader with the ``purenet upgrade`` command; upgraded, in a child process with a time and
memory limit, they load and resume as the contract says (``test_format_v1.py``).
tests/data/v2-step-00000007.h5 was written by commit 5315503 with the run of
test_format_v1.py (the same settings, so both files hold the same state)."""

import os
import shutil

import pytest
from test_format_v1 import ARCH, assert_resumes_as_the_contract_says, settings, upgraded

import purenet as pn
from purenet.checkpoint import legacy
from purenet.checkpoint.upgrade import upgrade_checkpoint

FILE = os.path.join(os.path.dirname(__file__), "data", "v2-step-00000007.h5")
V1_FILE = os.path.join(os.path.dirname(__file__), "data", "v1-step-00000007.h5")


def test_a_version_2_file_upgraded_loads_with_its_own_facts(tmp_path):
    with pytest.raises(pn.LegacyCheckpointError, match="format 2.*purenet upgrade"):
        pn.load_checkpoint(FILE)
    checkpoint = pn.load_checkpoint(upgraded(FILE, tmp_path / "a"))
    assert checkpoint.upgraded_from == {"format_version": 2, "purenet_version": "0.1.0"}
    assert checkpoint.state.step == 7
    assert checkpoint.created.startswith("2026-11-29T06:03")
    x, y, run = settings()
    assert checkpoint.config.differences(pn.RunConfig(ARCH, **run)) == []
    assert checkpoint.params_digest == pn.load_checkpoint(upgraded(V1_FILE, tmp_path / "b")
                                                          ).params_digest


def test_resuming_an_upgraded_version_2_file_holds_the_contract(tmp_path):
    assert_resumes_as_the_contract_says(FILE, tmp_path)


def test_a_reader_that_runs_out_of_time_is_stopped(monkeypatch, tmp_path):
    path = shutil.copy(FILE, tmp_path / "step-00000007.h5")
    monkeypatch.setattr(legacy, "SECONDS", 0.01)   # less than the child needs to start
    with pytest.raises(pn.CorruptCheckpointError, match=r"took more than 0 s and was stopped"):
        upgrade_checkpoint(path)


def test_a_reader_that_runs_out_of_memory_is_refused(monkeypatch, tmp_path):
    path = str(shutil.copy(FILE, tmp_path / "step-00000007.h5"))
    monkeypatch.setattr(legacy, "MEMORY", 1 << 20)   # 1 MiB beyond its own: not enough
    with pytest.raises(pn.CorruptCheckpointError, match=path):
        upgrade_checkpoint(path)


def test_only_upgrade_starts_a_reader_process(monkeypatch, tmp_path):
    """Every other reader refuses a legacy file at its header, spawning nothing."""
    def no_child(*args, **kwargs):
        raise AssertionError("a reader process was started")
    monkeypatch.setattr(legacy.subprocess, "run", no_child)
    with pytest.raises(pn.LegacyCheckpointError):
        pn.load_checkpoint(FILE)
    with pytest.raises(pn.LegacyCheckpointError):
        pn.summarize_checkpoint(FILE)
