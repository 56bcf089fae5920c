"""Real processes, really stopped: a training child (tests/_train_child.py) is killed with
SIGKILL at many random moments and resumed each time, or stopped with SIGTERM/SIGINT;
every checkpoint left behind verifies, and resuming to the end gives the parameters of a
run that was never interrupted, bit for bit. The same holds for a full-batch L-BFGS run
(``--optimizer lbfgs``): its curvature pairs and counters too.

All children run with one BLAS thread (tests/_checkpoint_common.child_env), the reference
run included, since BLAS results depend on the thread count.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time

import numpy as np
import pytest
from _checkpoint_common import child_env, moons, script, step_files, temp_files

import purenet as pn
from purenet.checkpoint.format import read_checkpoint

try:
    from purenet.testing import assert_records_equal
except ImportError:   # pragma: no cover - purenet.testing is written alongside these tests
    assert_records_equal = None

KILL_SEED = 1234
STEPS_PER_EPOCH = 15   # 240 samples, batches of 16


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> str:
    (x, y), _ = moons(240, 0)
    path = str(tmp_path_factory.mktemp("data") / "moons.npz")
    np.savez(path, x=x, y=y)
    return path


def spawn(data: str, directory: str, *args: str) -> subprocess.Popen:
    # A child started from a background job inherits SIGINT ignored (and purenet keeps an
    # ignored signal ignored); give it the default, as a terminal would.
    return subprocess.Popen(script("_train_child.py") + [data, str(directory), *args],
                            env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def run_to_end(data: str, directory: str, *args: str) -> dict:
    proc = subprocess.run(script("_train_child.py") + [data, str(directory), *args],
                          env=child_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


def assert_same_run(directory: str, reference: str) -> None:
    """The newest checkpoints of two directories hold the same state, bit for bit."""
    got, want = pn.load_checkpoint(directory), pn.load_checkpoint(reference)
    assert got.state.step == want.state.step
    for a, b in zip(pn.tree_leaves(got.state.params), pn.tree_leaves(want.state.params)):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert got.params_digest == want.params_digest
    if assert_records_equal is not None:   # optimizer state, history, totals too
        assert_records_equal(got.state, want.state)


def wait_started(proc: subprocess.Popen) -> None:
    line = proc.stdout.readline()
    if not line.startswith("started"):
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError(f"the child did not start (exit {proc.returncode}): {line}{err[-3000:]}")


# --- SIGKILL --------------------------------------------------------------------------


# The killed run is given more epochs than any machine gets through between the kills;
# after them, it is resumed to a fixed number of steps past its newest checkpoint, and so
# is the reference, so a faster machine needs no other numbers.
ENDLESS_EPOCHS = 10**6
STEPS_AFTER_KILLS = 300


@pytest.mark.parametrize("kills", [30, pytest.param(300, marks=pytest.mark.slow)])
def test_sigkill_at_random_moments_then_resume_equals_uninterrupted(data, tmp_path, kills):
    rng = random.Random(KILL_SEED)
    directory, reference = str(tmp_path / "killed"), str(tmp_path / "reference")
    epochs = str(ENDLESS_EPOCHS)

    newest, done_kills, temps_seen, early_kills = 0, 0, 0, 0
    while done_kills < kills:
        proc = spawn(data, directory, "--epochs", epochs, "--resume", "--every-steps", "1")
        if rng.random() < 0.25:   # anywhere in start-up: imports, restore, stale-temp cleanup
            time.sleep(rng.uniform(0.3, 1.2))
            early_kills += 1
        else:                     # while training, saving every step
            wait_started(proc)
            time.sleep(rng.uniform(0.0, 0.35))
        if proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(f"the child ended by itself (exit {proc.returncode}) after "
                        f"{done_kills} kills: {err[-3000:]}")
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        assert proc.returncode == -signal.SIGKILL
        done_kills += 1
        temps_seen += len(temp_files(directory)) if os.path.isdir(directory) else 0
        names = step_files(directory) if os.path.isdir(directory) else []
        if not names:
            continue   # killed before its first save
        # The newest checkpoint loads (a skipped newer file would warn: an error here) ...
        found = pn.load_checkpoint(directory)
        assert found.path.endswith(names[-1])
        # ... every other one verifies too, and progress never goes backwards.
        for name in names[:-1]:
            read_checkpoint(os.path.join(directory, name))
        assert found.state.step >= newest
        newest = found.state.step

    print(f"\n{done_kills} SIGKILLs ({early_kills} during start-up), newest step before the "
          f"final resume {newest}, temp files left by kills mid-save: {temps_seen}")
    assert newest > 0
    end = str(newest + STEPS_AFTER_KILLS)
    final = run_to_end(data, directory, "--epochs", epochs, "--resume", "--every-steps", "100",
                       "--max-steps", end)
    ref = run_to_end(data, reference, "--epochs", epochs, "--max-steps", end)
    assert final["done"] == ref["done"] == int(end) and final["digest"] == ref["digest"]
    assert_same_run(directory, reference)
    assert temp_files(directory) == []   # Checkpointer.start removed the killed saves' temps


LBFGS_KILLS = 8
LBFGS_STEPS = 400   # where the L-BFGS runs end; the kills come long before


def test_sigkill_of_lbfgs_mid_run_then_resume_equals_uninterrupted(data, tmp_path):
    rng = random.Random(22)
    directory, reference = str(tmp_path / "killed"), str(tmp_path / "reference")
    run = ("--optimizer", "lbfgs", "--epochs", str(LBFGS_STEPS))
    newest = 0
    for _ in range(LBFGS_KILLS):
        proc = spawn(data, directory, *run, "--resume", "--every-steps", "1")
        wait_started(proc)
        time.sleep(rng.uniform(0.0, 0.3))
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        found = pn.load_checkpoint(directory)
        for name in step_files(directory):
            read_checkpoint(os.path.join(directory, name))
        assert LBFGS_STEPS > found.state.step >= newest
        newest = found.state.step
    print(f"\n{LBFGS_KILLS} SIGKILLs of L-BFGS, newest step before the final resume {newest}")
    assert newest > 0
    final = run_to_end(data, directory, *run, "--resume")
    assert final == run_to_end(data, reference, *run)
    assert_same_run(directory, reference)
    assert pn.load_checkpoint(directory).state.opt_state.count == LBFGS_STEPS


# --- SIGTERM and SIGINT ----------------------------------------------------------------

INTERRUPT_EPOCHS = 100   # 1500 steps: the signal arrives long before the end


@pytest.fixture(scope="module")
def interrupt_reference(data, tmp_path_factory) -> str:
    directory = str(tmp_path_factory.mktemp("reference"))
    run_to_end(data, directory, "--epochs", str(INTERRUPT_EPOCHS))
    return directory


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_saves_the_step_and_says_how_to_resume(data, tmp_path, interrupt_reference,
                                                         number):
    directory = str(tmp_path / "run")
    proc = spawn(data, directory, "--epochs", str(INTERRUPT_EPOCHS))
    wait_started(proc)
    proc.send_signal(number)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 3, err[-3000:]
    assert err == ""   # a message, not a traceback
    report = json.loads(out.splitlines()[-1])
    message, step = report["interrupted"], report["step"]
    assert message.startswith(f"{signal.Signals(number).name} received: stopped after step {step}")
    assert f"checkpoint of step {step} is in {directory}" in message
    assert "resume=True" in message
    assert 0 < step < INTERRUPT_EPOCHS * STEPS_PER_EPOCH
    assert step_files(directory)[-1] == f"step-{step:08d}.h5"
    assert pn.load_checkpoint(directory).state.step == step
    assert temp_files(directory) == []

    final = run_to_end(data, directory, "--epochs", str(INTERRUPT_EPOCHS), "--resume")
    assert final["done"] == INTERRUPT_EPOCHS * STEPS_PER_EPOCH
    assert_same_run(directory, interrupt_reference)


# --- SIGKILL at each point of the save protocol ---------------------------------------

PAUSE_STEP = 6   # saves of steps 1-5 done; keep=3 holds steps 3, 4, 5


@pytest.fixture(scope="module")
def short_reference(data, tmp_path_factory) -> str:
    directory = str(tmp_path_factory.mktemp("short-reference"))
    run_to_end(data, directory, "--epochs", "1")
    return directory


@pytest.mark.parametrize("point, newest", [("write", 5), ("replace", 5), ("fsync-dir", 6),
                                           ("read-back", 6), ("delete", 6), ("in-flight", 5)])
def test_sigkill_at_each_point_of_a_save(data, tmp_path, short_reference, point, newest):
    directory = str(tmp_path / "run")
    proc = spawn(data, directory, "--epochs", "1", "--every-steps", "1",
                 "--pause-at", point, "--pause-step", str(PAUSE_STEP))
    wait_started(proc)
    line = proc.stdout.readline()
    assert line.strip() == f"paused {point}", line + proc.stderr.read()
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    names = step_files(directory)
    assert names[-1] == f"step-{newest:08d}.h5"
    assert names[0] == "step-00000003.h5"   # nothing was deleted before the new file verified
    for name in names:   # no torn or half-verified file under a checkpoint's name
        read_checkpoint(os.path.join(directory, name))
    assert pn.load_checkpoint(directory).state.step == newest
    assert bool(temp_files(directory)) == (point in ("write", "replace"))
    final = run_to_end(data, directory, "--epochs", "1", "--every-steps", "1", "--resume")
    assert final["done"] == STEPS_PER_EPOCH
    assert_same_run(directory, short_reference)
    assert temp_files(directory) == []
