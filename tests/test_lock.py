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


HOLD_FOR = """
import sys, time
from purenet.checkpoint.lock import DirectoryLock
lock = DirectoryLock(sys.argv[1])
lock.acquire()
print("held", flush=True)
time.sleep(float(sys.argv[2]))
lock.release()
time.sleep(60)
"""


def test_a_waiting_trainer_gets_the_lock_when_its_live_holder_lets_go(tmp_path):
    process = subprocess.Popen([sys.executable, "-c", HOLD_FOR, str(tmp_path), "0.5"],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "held"
        with pytest.raises(pn.CheckpointLockedError):
            DirectoryLock(str(tmp_path)).acquire()          # no wait: refused at once
        lock = DirectoryLock(str(tmp_path))
        lock.acquire(timeout=30)
        assert lock.held and process.poll() is None          # the holder is still alive
        lock.release()
    finally:
        process.kill()
        process.wait()
        process.stdout.close()


def test_waiting_for_a_holder_that_keeps_the_lock_ends_at_the_timeout(tmp_path):
    import time

    process = holder(tmp_path)
    try:
        start = time.monotonic()
        with pytest.raises(pn.CheckpointLockedError,
                           match=f"pid {process.pid} on .* after waiting 0.3 s"):
            DirectoryLock(str(tmp_path)).acquire(timeout=0.3, poll=0.05)
        assert time.monotonic() - start >= 0.3
    finally:
        process.kill()
        process.wait()
        process.stdout.close()


def test_a_waiting_trainer_takes_over_when_the_holder_is_killed(tmp_path):
    import threading

    process = holder(tmp_path)
    threading.Timer(0.3, lambda: os.kill(process.pid, signal.SIGKILL)).start()
    lock = DirectoryLock(str(tmp_path))
    lock.acquire(timeout=30)
    process.wait()
    process.stdout.close()
    assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    lock.release()


def test_the_lock_is_a_context_manager_and_checks_its_timeout(tmp_path):
    with DirectoryLock(str(tmp_path)) as lock:
        assert lock.held
        with pytest.raises(pn.CheckpointLockedError):
            DirectoryLock(str(tmp_path)).acquire()
    assert not lock.held
    with pytest.raises(ValueError, match="timeout must be a number of seconds >= 0 or None"):
        DirectoryLock(str(tmp_path)).acquire(timeout=-1)


def test_a_filesystem_without_locks_gets_a_clear_error(tmp_path, monkeypatch):
    import errno
    import fcntl

    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with pytest.raises(OSError, match="has no working file locks .No locks available.; "
                                      "train on a local disk"):
        DirectoryLock(str(tmp_path)).acquire()
