"""Saves in the background (purenet/checkpoint/writer.py and ``Checkpointer``'s fit path):
one save at a time, in a worker thread, and a failed save is raised in the training thread,
never lost, with the previous checkpoint intact."""

from __future__ import annotations

import errno
import os
import threading
import time

import pytest
from _checkpoint_common import ARCH, FileProxy, moons, small_spec, state_at, step_files, temp_files

import purenet as pn
from purenet.checkpoint import atomic
from purenet.checkpoint import policy
from purenet.checkpoint.writer import BackgroundWriter
from purenet.core.records import params_digest

STEPS = 12   # 192 samples, batches of 16, 1 epoch


@pytest.fixture(scope="module")
def data():
    return moons(192, 0)[0]


def _fit(data, directory, **kwargs):
    x, y = data
    return pn.fit(ARCH, x, y, epochs=1, batch_size=16, seed=5, progress=False,
                  checkpointer=pn.Checkpointer(directory, every_steps=1, keep=None, **kwargs))


class Steps(pn.Callback):
    def __init__(self) -> None:
        self.seen: list[int] = []

    def on_step_end(self, state, metrics) -> None:
        self.seen.append(state.step)


def test_saves_run_in_the_background_one_at_a_time(data, tmp_path, monkeypatch):
    real, active, log = policy.write_checkpoint, [], []
    lock = threading.Lock()

    def slow_write(path, state, *args, **kwargs):
        with lock:
            active.append(state.step)
            log.append((len(active), threading.current_thread() is threading.main_thread()))
        time.sleep(0.01)   # long enough for the next step's save to be requested meanwhile
        try:
            return real(path, state, *args, **kwargs)
        finally:
            with lock:
                active.remove(state.step)
    monkeypatch.setattr(policy, "write_checkpoint", slow_write)
    result = _fit(data, tmp_path)
    assert len(log) == STEPS
    assert all(n == 1 for n, _ in log)               # never two saves at once
    assert not any(main for _, main in log)          # all in the writer thread
    assert step_files(tmp_path) == [f"step-{s:08d}.h5" for s in range(1, STEPS + 1)]
    assert pn.load_checkpoint(tmp_path).params_digest == params_digest(result.state.params)


def test_background_and_synchronous_saves_write_the_same_states(data, tmp_path):
    _fit(data, tmp_path / "async")
    _fit(data, tmp_path / "sync", asynchronous=False)
    for name in step_files(tmp_path / "sync"):
        a = pn.load_checkpoint(tmp_path / "async" / name)
        b = pn.load_checkpoint(tmp_path / "sync" / name)
        assert a.params_digest == b.params_digest and a.state.step == b.state.step


class _Enospc(FileProxy):
    def write(self, data) -> int:
        self.fh.write(bytes(data)[:len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device (injected)")


def _full_disk_at(monkeypatch, step: int) -> None:
    """The save of ``step`` runs out of disk half-way through its temp file."""
    def opener(path, mode="r", *args, **kwargs):
        fh = open(path, mode, *args, **kwargs)
        return _Enospc(fh) if os.path.basename(path).startswith(f".step-{step:08d}.h5.tmp-") \
            else fh
    monkeypatch.setattr(atomic, "open", opener, raising=False)


@pytest.mark.parametrize("failing", [5, STEPS], ids=["mid-run", "last-step"])
def test_a_failed_background_save_stops_fit_and_keeps_the_previous_checkpoint(
        data, tmp_path, monkeypatch, failing):
    _full_disk_at(monkeypatch, failing)
    steps = Steps()
    x, y = data
    with pytest.raises(pn.CheckpointError, match=rf"step-{failing:08d}\.h5.*No space left"):
        pn.fit(ARCH, x, y, epochs=1, batch_size=16, seed=5, progress=False, callbacks=[steps],
               checkpointer=pn.Checkpointer(tmp_path, every_steps=1, keep=2))
    # raised at the next step (or at the end), not later
    assert max(steps.seen) <= failing + 1
    assert temp_files(tmp_path) == []
    assert step_files(tmp_path) == [f"step-{s:08d}.h5" for s in (failing - 2, failing - 1)]
    assert pn.load_checkpoint(tmp_path).state.step == failing - 1


def test_wait_returns_the_path_then_raises_a_failure_once(tmp_path, monkeypatch):
    spec = small_spec()
    ck = pn.Checkpointer(tmp_path, every_steps=1, keep=1)
    ck._config = spec
    assert ck.wait() is None   # nothing in flight
    ck.on_step_end(state_at(spec, 1), None)
    assert ck.wait() == os.path.join(ck.directory, "step-00000001.h5")
    assert ck.last_saved_step == 1
    _full_disk_at(monkeypatch, 2)
    ck.on_step_end(state_at(spec, 2), None)
    with pytest.raises(pn.CheckpointError, match="No space left"):
        ck.wait()
    assert ck.wait() is None   # raised once, not twice
    assert ck.last_saved_step == 1 and step_files(tmp_path) == ["step-00000001.h5"]


def test_a_direct_save_is_synchronous_and_waits_for_the_one_in_flight(tmp_path):
    spec = small_spec()
    ck = pn.Checkpointer(tmp_path, every_steps=1, keep=None)
    ck._config = spec
    ck.on_step_end(state_at(spec, 1), None)          # in the background
    path = ck.save(state_at(spec, 2), spec)          # waits for step 1, then saves step 2
    assert os.path.exists(path) and ck.last_saved_step == 2
    assert step_files(tmp_path) == ["step-00000001.h5", "step-00000002.h5"]


def test_the_background_writer_keeps_one_call_in_flight():
    writer, order = BackgroundWriter(), []

    def work(i):
        order.append(("start", i))
        time.sleep(0.01)
        order.append(("end", i))
        return i
    writer.submit(work, 1)
    assert writer.busy
    writer.submit(work, 2)   # waits for 1 first
    assert writer.wait() == 2 and not writer.busy
    assert order == [("start", 1), ("end", 1), ("start", 2), ("end", 2)]

    def fail():
        raise pn.CheckpointError("injected")
    writer.submit(fail)
    while writer.busy:
        time.sleep(0.001)
    with pytest.raises(pn.CheckpointError, match="injected"):
        writer.raise_failure()
    writer.raise_failure()   # raised once
    writer.close()
