"""One trainer per checkpoint directory (purenet.checkpoint.lock)."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

import purenet as pn
from purenet.checkpoint.lock import LOCK_NAME, DirectoryLock

HOLD = """
import sys, time
from purenet.checkpoint.lock import DirectoryLock
DirectoryLock(sys.argv[1]).acquire()
print("held", flush=True)
time.sleep(60)
"""


def holder(directory):
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(directory)],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    return process


def test_a_second_trainer_is_refused_naming_the_holder(tmp_path):
    process = holder(tmp_path)
    try:
        x = np.random.default_rng(0).normal(size=(20, 2))
        with pytest.raises(pn.CheckpointLockedError, match=f"pid {process.pid} on "):
            pn.fit([{"input_dim": 2, "output_dim": 1, "activation": "sigmoid"}], x,
                   (x[:, 0] > 0).astype(int), checkpointer=pn.Checkpointer(tmp_path),
                   progress=False)
    finally:
        process.kill()
        process.wait()
        process.stdout.close()


def test_the_lock_of_a_killed_trainer_is_taken_over(tmp_path):
    process = holder(tmp_path)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    process.stdout.close()
    lock = DirectoryLock(str(tmp_path))
    lock.acquire()
    mine = json.loads((tmp_path / LOCK_NAME).read_text())
    assert mine["pid"] == os.getpid()
    lock.release()


def test_two_checkpointers_in_one_process_exclude_each_other(tmp_path):
    first = DirectoryLock(str(tmp_path))
    first.acquire()
    with pytest.raises(pn.CheckpointLockedError, match=f"pid {os.getpid()}"):
        DirectoryLock(str(tmp_path)).acquire()
    first.release()
    DirectoryLock(str(tmp_path)).acquire()


def test_fit_releases_the_lock_when_it_ends_however_it_ends(tmp_path):
    x = np.random.default_rng(0).normal(size=(20, 2))
    arch = [{"input_dim": 2, "output_dim": 1, "activation": "sigmoid"}]
    pn.fit(arch, x, (x[:, 0] > 0).astype(int), checkpointer=pn.Checkpointer(tmp_path),
           progress=False, epochs=2)
    with pytest.raises(ValueError):
        pn.fit(arch, x, np.full(20, 7), checkpointer=pn.Checkpointer(tmp_path), progress=False)
    with pytest.raises(pn.NonFiniteError):
        pn.fit(arch, x * 1e30, (x[:, 0] > 0).astype(int), optimizer=pn.optim.sgd(1e30),
               checkpointer=pn.Checkpointer(tmp_path / "nan"), progress=False, dtype="float32")
    for directory in (tmp_path, tmp_path / "nan"):
        DirectoryLock(str(directory)).acquire()   # free again


def test_a_refused_resume_releases_the_lock(tmp_path):
    x = np.random.default_rng(0).normal(size=(20, 2))
    y = (x[:, 0] > 0).astype(int)
    arch = [{"input_dim": 2, "output_dim": 1, "activation": "sigmoid"}]
    pn.fit(arch, x, y, checkpointer=pn.Checkpointer(tmp_path), progress=False, epochs=2)
    with pytest.raises(pn.CheckpointMismatchError):
        pn.fit(arch, x, y, checkpointer=pn.Checkpointer(tmp_path), progress=False, epochs=3,
               resume=True, seed=1)
    resumed = pn.fit(arch, x, y, checkpointer=pn.Checkpointer(tmp_path), progress=False,
                     epochs=3, resume=True)
    assert resumed.state.epoch == 3
