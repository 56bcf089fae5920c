"""Fault tolerance of sweeps: a worker process SIGKILLed mid-trial, and the whole sweep
SIGKILLed and resumed. Both end with every trial's digest equal to its experiment trained
alone."""

import glob
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

distributed = pytest.importorskip("distributed")

from purenet.sweep import load_sweep, run_sweep
from purenet.sweep.trial import TRIAL_LOCK
from _sweep_common import summary, write_experiment

pytestmark = pytest.mark.slow
# Long enough trials (~1 s, a checkpoint every 50 of ~1000 steps) to be caught mid-way.
LONG = dict(epochs=50, samples=400, every=50)


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory):
    return write_experiment(str(tmp_path_factory.mktemp("sweep")), **LONG)


@pytest.fixture(scope="module")
def alone(sweep_file, tmp_path_factory):
    """Each trial's digest when its experiment is trained alone, by trial id."""
    directory = tmp_path_factory.mktemp("alone")
    sweep = load_sweep(sweep_file)
    digests = {}
    for trial in sweep.trials:
        trial_dir = directory / "trials" / trial.id
        os.makedirs(trial_dir)
        from purenet.experiment.runner import run_experiment

        digests[trial.id] = run_experiment(trial.experiment, str(trial_dir),
                                           progress=False)["params_digest"]
    return digests


def wait_for(condition, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError("timed out")


def training_now(sweep_dir, pids):
    """(trial dir, worker pid) of a trial that has a checkpoint, no summary yet, and a lock
    held by one of ``pids``."""
    for trial_dir in glob.glob(os.path.join(sweep_dir, "*", "")):
        if os.path.exists(os.path.join(trial_dir, "summary.json")):
            continue
        if not glob.glob(os.path.join(trial_dir, "checkpoints", "step-*.h5")):
            continue
        try:
            with open(os.path.join(trial_dir, TRIAL_LOCK)) as fh:
                pid = json.load(fh)["pid"]
        except (OSError, ValueError, KeyError):
            continue
        if pid in pids:
            return trial_dir.rstrip("/"), pid
    return None


def test_a_worker_killed_mid_trial_is_replaced_and_its_trial_resumes(sweep_file, alone, tmp_path):
    sweep_dir = str(tmp_path / "runs")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        pids = set(client.run(os.getpid).values())
        result = {}
        runner = threading.Thread(target=lambda: result.update(
            report=run_sweep(sweep_file, sweep_dir=sweep_dir, client=client)))
        runner.start()
        trial_dir, pid = wait_for(lambda: training_now(sweep_dir, pids))
        os.kill(pid, signal.SIGKILL)
        runner.join(timeout=180)
        assert not runner.is_alive()
    report = result["report"]
    assert not report.failures
    killed = next(o for o in report.outcomes if o.trial.id == os.path.basename(trial_dir))
    assert killed.start_step > 0          # the retry resumed from a checkpoint
    with open(os.path.join(trial_dir, "train.log")) as fh:
        sessions = [line for line in fh if line.startswith("purenet sweep:")]
    assert len(sessions) == 2 and f"(pid {pid})" in sessions[0]
    for outcome in report.outcomes:
        assert outcome.summary["params_digest"] == alone[outcome.trial.id], outcome.trial.id


def test_resume_after_the_whole_sweep_was_killed_runs_only_the_unfinished_trials(
        sweep_file, alone, tmp_path):
    sweep_dir = str(tmp_path / "runs")
    command = [sys.executable, "-m", "purenet", "sweep", sweep_file, "--sweep-dir", sweep_dir,
               "--workers", "2", "--no-progress"]
    process = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: len(glob.glob(os.path.join(sweep_dir, "*", "summary.json"))) >= 2,
                 timeout=120)
    finally:
        os.killpg(process.pid, signal.SIGKILL)     # the command and its cluster's processes
        process.wait()
    finished = {os.path.basename(os.path.dirname(p)): os.stat(p).st_mtime_ns
                for p in glob.glob(os.path.join(sweep_dir, "*", "summary.json"))}
    assert 2 <= len(finished) < 6
    report = run_sweep(sweep_file, sweep_dir=sweep_dir, workers=2, resume=True,
                       lock_timeout=30)
    assert sorted(report.skipped) == sorted(finished)
    assert not report.failures
    for outcome in report.outcomes:
        assert outcome.trained == (outcome.trial.id not in finished)
        assert outcome.summary["params_digest"] == alone[outcome.trial.id]
    for ident, mtime in finished.items():
        assert os.stat(os.path.join(sweep_dir, ident, "summary.json")).st_mtime_ns == mtime
        assert summary(os.path.join(sweep_dir, ident))["params_digest"] == alone[ident]
