"""L-BFGS really killed: a training child (tests/_train_child.py --optimizer lbfgs,
checkpointing every iteration) is stopped with SIGKILL at random moments and resumed each
time; every checkpoint left verifies, and the resumed run ends with the parameters and
L-BFGS state (curvature pairs, counters) of a run never interrupted, bit for bit."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time

import numpy as np
import pytest
from _checkpoint_common import child_env, moons, script, step_files

import purenet as pn
from purenet.checkpoint.format import read_checkpoint
from purenet.testing import assert_records_equal

KILLS = 8
FINAL_STEPS = 400   # where both runs end, unless L-BFGS stops before


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> str:
    (x, y), _ = moons(240, 0)
    path = str(tmp_path_factory.mktemp("data") / "moons.npz")
    np.savez(path, x=x, y=y)
    return path


def command(data: str, directory: str, *args: str) -> list[str]:
    return script("_train_child.py") + [data, directory, "--optimizer", "lbfgs",
                                        "--epochs", str(FINAL_STEPS), *args]


def run_to_end(data: str, directory: str, *args: str) -> dict:
    proc = subprocess.run(command(data, directory, *args), env=child_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


def test_sigkill_mid_run_then_resume_equals_the_uninterrupted_run(data, tmp_path):
    rng = random.Random(22)
    directory, reference = str(tmp_path / "killed"), str(tmp_path / "reference")
    kills, newest = 0, 0
    for _ in range(KILLS):
        proc = subprocess.Popen(command(data, directory, "--resume", "--every-steps", "1"),
                                env=child_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        line = proc.stdout.readline()
        if not line.startswith("started"):   # the run had ended: nothing left to train
            proc.communicate()
            break
        time.sleep(rng.uniform(0.0, 0.3))
        if proc.poll() is not None:
            proc.communicate()
            break
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        kills += 1
        found = pn.load_checkpoint(directory)
        for name in step_files(directory):
            read_checkpoint(os.path.join(directory, name))
        assert found.state.step >= newest
        newest = found.state.step
    print(f"\n{kills} SIGKILLs, newest step before the final resume {newest}")
    assert kills >= 2 and 0 < newest
    final = run_to_end(data, directory, "--resume")
    ref = run_to_end(data, reference)
    assert final == ref
    got, want = pn.load_checkpoint(directory), pn.load_checkpoint(reference)
    assert got.state.opt_state.count == got.state.step > newest
    assert_records_equal(got.state, want.state)
