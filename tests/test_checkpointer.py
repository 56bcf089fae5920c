"""The checkpoint policy (purenet/checkpointer.py) against real trouble: a full disk, two
processes saving into one directory, a run that diverges, and retention that must never
delete before the new checkpoint is verified."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
from _checkpoint_common import (
    ARCH,
    FileProxy,
    child_env,
    load_in_child,
    moons,
    script,
    small_spec,
    snapshot,
    state_at,
    step_files,
    temp_files,
)

import purenet as pn
from purenet.checkpoint import atomic, sealed
from purenet.checkpoint import format as checkpoint
from purenet.checkpoint import policy as checkpointer
from purenet import optim
from purenet.checkpoint.format import read_checkpoint


def steps_in(directory) -> list[int]:
    return [int(name[5:13]) for name in step_files(directory)]


# --- a full disk ----------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A 512 KiB tmpfs mounted inside the test's directory (root only; skipped otherwise)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)
        if os.path.ismount(mount):
            subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(directory) -> str:
    """Fill the file system of ``directory`` up to its last byte."""
    path = os.path.join(directory, "filler")
    with open(path, "wb", buffering=0) as fh:
        for size in (65536, 4096, 1):
            try:
                while True:
                    fh.write(b"\0" * size)
            except OSError as error:
                assert error.errno == errno.ENOSPC
    return path


def test_a_full_disk_gives_a_clear_error_and_keeps_the_last_checkpoint(small_disk):
    spec = small_spec()
    ck = pn.Checkpointer(small_disk / "ck", every_steps=1, keep=1)
    ck.save(state_at(spec, 1), spec)
    before = snapshot(ck.directory)
    filler = fill(small_disk)
    with pytest.raises(pn.CheckpointError, match=r"could not write checkpoint .*step-00000002\.h5"
                                                 r".*No space left on device.*temp file was removed"):
        ck.save(state_at(spec, 2), spec)
    assert snapshot(ck.directory) == before   # no temp, no torn file, the old one untouched
    assert pn.load_checkpoint(ck.directory).state.step == 1
    os.remove(filler)
    ck.save(state_at(spec, 2), spec)   # with space again, saving works again
    assert steps_in(ck.directory) == [2]


def test_a_full_disk_during_fit_stops_it_with_the_checkpoint_error(small_disk):
    (x, y), _ = moons(64, 0)
    directory = small_disk / "run"
    pn.fit(ARCH, x, y, epochs=1, batch_size=16, progress=False,
           checkpointer=pn.Checkpointer(directory, every_steps=1))
    fill(small_disk)
    with pytest.raises(pn.CheckpointError, match="No space left on device"):
        pn.fit(ARCH, x, y, epochs=2, batch_size=16, progress=False, resume=True,
               checkpointer=pn.Checkpointer(directory, every_steps=1))
    assert temp_files(directory) == []
    assert pn.load_checkpoint(directory).state.step == 4


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device (injected)")


def test_an_injected_enospc_in_fsync_removes_the_temp_file(tmp_path, monkeypatch):
    spec = small_spec()
    ck = pn.Checkpointer(tmp_path, every_steps=1, keep=2)
    ck.save(state_at(spec, 1), spec)
    before = snapshot(tmp_path)
    monkeypatch.setattr(atomic.os, "fsync", _enospc)
    with pytest.raises(pn.CheckpointError, match=r"No space left on device \(injected\).*free "
                                                 r"disk space or choose another directory"):
        ck.save(state_at(spec, 2), spec)
    monkeypatch.undo()
    assert snapshot(tmp_path) == before
    assert ck.last_saved_step == 1


class _HalfWriter(FileProxy):
    """A file whose writes stop half-way with ENOSPC, leaving a torn temp file behind."""

    def write(self, data) -> int:
        self.fh.write(bytes(data)[:len(data) // 2])
        self.fh.flush()
        _enospc()


def test_an_injected_enospc_mid_write_removes_the_torn_temp_file(tmp_path, monkeypatch):
    spec = small_spec()
    ck = pn.Checkpointer(tmp_path, every_steps=1, keep=2)
    ck.save(state_at(spec, 1), spec)
    before = snapshot(tmp_path)
    torn = []

    def half_open(path, mode="r", *args, **kwargs):
        torn.append(path)
        return _HalfWriter(open(path, mode, *args, **kwargs))
    monkeypatch.setattr(atomic, "open", half_open, raising=False)
    with pytest.raises(pn.CheckpointError, match="No space left"):
        ck.save(state_at(spec, 2), spec)
    monkeypatch.undo()
    assert torn and ".tmp-" in torn[0] and not os.path.exists(torn[0])
    assert snapshot(tmp_path) == before


# --- two processes, one directory -----------------------------------------------------


def test_two_processes_saving_into_one_directory_never_tear_a_file(tmp_path):
    directory, go = str(tmp_path / "shared"), str(tmp_path / "go")
    shared = list(range(1, 16))   # both save these, in the same order, at the same moments
    own = {1: list(range(1001, 1009)), 2: list(range(2001, 2009))}
    plans = {seed: [s for pair in zip(shared, steps) for s in pair] + shared[len(steps):]
             for seed, steps in own.items()}
    procs = {seed: subprocess.Popen(script("_save_child.py") + [directory, str(seed), go]
                                    + [str(s) for s in steps], env=child_env(),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for seed, steps in plans.items()}
    for proc in procs.values():
        assert proc.stdout.readline().strip() == "ready"
    open(go, "w").close()
    digests = {}
    for seed, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
        digests[seed] = {int(k): v for k, v in json.loads(out.splitlines()[-1]).items()}

    names = step_files(directory)
    assert len(names) == len(set(plans[1]) | set(plans[2]))
    assert temp_files(directory) == []
    paths = [os.path.join(directory, name) for name in names]
    for path, report in zip(paths, load_in_child(paths)):
        assert report["error"] is None, report   # every file is whole
    winners = set()
    for path in paths:
        found = read_checkpoint(path)
        step = found.state.step
        writers = {digests[seed][step]: seed for seed in digests if step in digests[seed]}
        assert found.params_digest in writers   # entirely one writer's file, never a mix
        if step in shared:
            winners.add(writers[found.params_digest])
    print(f"\nshared steps last written by processes {sorted(winners)}")


# --- divergence -----------------------------------------------------------------------


RELU_ARCH = [{"input_dim": 2, "output_dim": 16, "activation": "relu"},
             {"input_dim": 16, "output_dim": 1, "activation": "sigmoid"}]


def _diverging_fit(directory, every_steps):
    (x, y), _ = moons(300, 0)
    with np.errstate(all="ignore"):   # the guard, not numpy's overflow warning, reports it
        return pn.fit(RELU_ARCH, x, y, optimizer=optim.sgd(1e8), epochs=5, batch_size=32,
                      dtype="float64", seed=0, progress=False,
                      checkpointer=pn.Checkpointer(directory, every_steps=every_steps))


def _all_finite(found) -> bool:
    state = found.state
    return checkpoint.non_finite_arrays(state) == []


@pytest.mark.parametrize("every_steps", [1, 1000])
def test_divergence_raises_naming_the_step_and_the_last_good_step_is_saved(tmp_path,
                                                                          every_steps):
    with pytest.raises(pn.NonFiniteError, match=r"training diverged in step (\d+)") as info:
        _diverging_fit(tmp_path, every_steps)
    step = int(re.search(r"diverged in step (\d+)", str(info.value)).group(1))
    found = pn.load_checkpoint(tmp_path)
    assert found.state.step == step - 1 > 0   # the state before the step that diverged
    assert f"The state after step {step - 1}, before it, is intact" in str(info.value)
    assert _all_finite(found)
    assert temp_files(tmp_path) == []


def test_divergence_into_the_parameters_is_also_reported_as_non_finite(tmp_path):
    (x, y), _ = moons(240, 0)
    with np.errstate(all="ignore"):
        with pytest.raises(pn.NonFiniteError):
            pn.fit(RELU_ARCH, x * 100, y, optimizer=optim.sgd(1e37), epochs=5, batch_size=32,
                   dtype="float32", progress=False,
                   checkpointer=pn.Checkpointer(tmp_path, every_steps=1))
    assert all(_all_finite(read_checkpoint(os.path.join(tmp_path, n)))
               for n in step_files(tmp_path))


# --- retention ------------------------------------------------------------------------

VAL_LOSSES = [0.5, 0.2, 0.9, 0.3, 0.8, 0.7, 0.6]   # of the checkpoints of steps 1..7


def save_steps(ck, spec, values, first_step=1):
    for i, value in enumerate(values):
        ck.save(state_at(spec, first_step + i, tuple(VAL_LOSSES[:first_step + i - 1]) + (value,)),
                spec)


def test_keep_n_keeps_the_n_newest(tmp_path):
    spec = small_spec()
    ck = pn.Checkpointer(tmp_path, every_steps=1, keep=3)
    save_steps(ck, spec, VAL_LOSSES)
    assert steps_in(tmp_path) == [5, 6, 7]
    ck_all = pn.Checkpointer(tmp_path / "all", every_steps=1, keep=None)
    save_steps(ck_all, spec, VAL_LOSSES)
    assert steps_in(tmp_path / "all") == [1, 2, 3, 4, 5, 6, 7]


def test_keep_best_also_keeps_the_best_by_val_loss(tmp_path):
    spec = small_spec()
    ck = pn.Checkpointer(tmp_path, every_steps=1, keep=2, keep_best=2)
    save_steps(ck, spec, VAL_LOSSES)
    assert steps_in(tmp_path) == [2, 4, 6, 7]   # best 0.2 and 0.3, newest 6 and 7
    # a new process (no memory of the values) ranks the files by reading them
    again = pn.Checkpointer(tmp_path, every_steps=1, keep=2, keep_best=2)
    save_steps(again, spec, [0.1], first_step=8)
    assert steps_in(tmp_path) == [2, 7, 8]     # best 0.1 and 0.2, newest 7 and 8


def test_keep_best_by_a_maximised_monitor(tmp_path):
    spec = small_spec()
    ck = pn.Checkpointer(tmp_path, every_steps=1, keep=1, keep_best=1, monitor="val_accuracy")
    save_steps(ck, spec, VAL_LOSSES)   # val_accuracy = 1 - val_loss: best 0.8 at step 2
    assert steps_in(tmp_path) == [2, 7]


def test_keep_best_ties_keep_the_oldest(tmp_path):
    spec = small_spec()
    ck = pn.Checkpointer(tmp_path, every_steps=1, keep=1, keep_best=1, monitor="train_loss")
    save_steps(ck, spec, VAL_LOSSES)   # train_loss is 1.0 in every checkpoint
    assert steps_in(tmp_path) == [1, 7]


def test_nothing_is_deleted_when_the_new_checkpoint_does_not_verify(tmp_path, monkeypatch):
    spec = small_spec()
    ck = pn.Checkpointer(tmp_path, every_steps=1, keep=1)
    ck.save(state_at(spec, 1), spec)
    before = snapshot(tmp_path)
    real = checkpointer.verify_checkpoint

    def failing(path):
        if os.path.basename(path) == "step-00000002.h5":
            raise pn.CorruptCheckpointError(f"{path} is corrupt (injected)")
        return real(path)
    monkeypatch.setattr(checkpointer, "verify_checkpoint", failing)
    with pytest.raises(pn.CorruptCheckpointError, match="does not verify, so no older checkpoint "
                                                        "was deleted.*injected"):
        ck.save(state_at(spec, 2), spec)
    after = snapshot(tmp_path)
    assert after["step-00000001.h5"] == before["step-00000001.h5"]
    assert ck.last_saved_step == 1


def test_old_checkpoints_are_deleted_only_after_the_new_one_is_read_back(tmp_path, monkeypatch):
    spec = small_spec()
    ck = pn.Checkpointer(tmp_path, every_steps=1, keep=1)
    ck.save(state_at(spec, 1), spec)
    events = []
    real_verify, real_remove = checkpointer.verify_checkpoint, os.remove

    def verify(path):
        with open(path, "rb") as fh:   # what it checks is the file on disk
            assert fh.read(len(sealed.MAGIC)) == sealed.MAGIC
        found = real_verify(path)
        events.append(("verified", os.path.basename(path)))
        return found

    def remove(path, *args, **kwargs):
        events.append(("deleted", os.path.basename(path)))
        return real_remove(path, *args, **kwargs)
    monkeypatch.setattr(checkpointer, "verify_checkpoint", verify)
    monkeypatch.setattr(checkpointer.os, "remove", remove)
    ck.save(state_at(spec, 2), spec)
    monkeypatch.undo()
    assert events == [("verified", "step-00000002.h5"), ("deleted", "step-00000001.h5")]


def test_stale_temps_of_dead_processes_are_removed_but_live_ones_kept(tmp_path):
    dead = _dead_pid()
    stale = tmp_path / f".step-00000003.h5.tmp-{dead}-abcd1234"
    live = tmp_path / f".step-00000003.h5.tmp-{os.getppid()}-abcd1234"
    other = tmp_path / "notes.tmp-1-2"
    for path in (stale, live, other):
        path.write_bytes(b"partial")
    pn.Checkpointer(tmp_path).start()
    left = [name for name in os.listdir(tmp_path) if name != ".lock"]   # the directory's lock
    assert sorted(left) == sorted([live.name, other.name])


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid
