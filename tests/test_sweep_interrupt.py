"""Ctrl-C during `purenet sweep`: a real SIGINT to a real sweep's process group (its Dask
workers included, as a terminal sends it), at start-up and mid-run. Only purenet's own lines
reach stderr, never a worker's traceback; the sweep exits 130, and --resume finishes it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from _checkpoint_common import child_env
from _sweep_common import write_experiment

pytest.importorskip("distributed")

SWEEP = "[sweep]\nseed = [0, 1, 2, 3]\n"


def start(path: str, sweep_dir: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "purenet", "sweep", path, "--sweep-dir", sweep_dir,
         "--no-progress"], env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True,   # its own process group, as a terminal's job
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def wait_for(proc: subprocess.Popen, words: str, limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if words in line:
            return
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"the sweep never printed {words!r}: {proc.communicate()}")


# Ctrl-C while the cluster starts is the slow soak's; while trials run, the fast suite's.
@pytest.mark.parametrize("moment", [pytest.param("starting", marks=pytest.mark.slow), "running"])
def test_ctrl_c_shows_purenet_s_lines_only_and_the_sweep_resumes(tmp_path, moment):
    path = write_experiment(tmp_path, name="int", epochs=400, samples=400, every=50,
                            sweep=SWEEP)
    sweep_dir = str(tmp_path / "sweep")
    proc = start(path, sweep_dir)
    # "starting": while the cluster starts (its line is printed before the cluster);
    # "running": once the first trial has finished and the others train.
    wait_for(proc, "on a local Dask cluster" if moment == "starting" else "trial ")
    time.sleep(0.3 if moment == "starting" else 0.5)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert all(line.startswith("purenet") for line in err.splitlines() if line.strip()), err
    done = subprocess.run([sys.executable, "-m", "purenet", "sweep", path, "--sweep-dir",
                           sweep_dir, "--no-progress", "--resume"], env=child_env(),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "4 of 4 trials finished" in done.stdout and "Traceback" not in done.stderr
