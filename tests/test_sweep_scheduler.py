"""`purenet sweep --scheduler`: a sweep submitted to a running cluster (dask-scheduler and
two dask-worker processes on 127.0.0.1, on free ports)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

distributed = pytest.importorskip("distributed")

from purenet.cli import main
from purenet.sweep import load_sweep, read_results
from _sweep_common import alone_digest, write_experiment


def start(*args):
    """A process in its own group, so that it can be stopped with all its children."""
    return subprocess.Popen([sys.executable, "-m", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def stop(process):
    os.killpg(process.pid, signal.SIGKILL)     # a nanny and its worker: no state to save
    process.wait()


@pytest.fixture
def scheduler(tmp_path):
    """The address of a scheduler with two one-thread workers, all on 127.0.0.1."""
    file = str(tmp_path / "scheduler.json")
    processes = [start("distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
                       "--no-dashboard", "--scheduler-file", file)]
    try:
        deadline = time.monotonic() + 60
        while not os.path.exists(file) and time.monotonic() < deadline:
            time.sleep(0.05)
        for _ in range(2):
            processes.append(start("distributed.cli.dask_worker", "--scheduler-file", file,
                                   "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard"))
        with open(file) as fh:
            address = json.load(fh)["address"]
        with distributed.Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for process in reversed(processes):
            stop(process)


def test_a_sweep_submitted_to_a_running_scheduler_matches_its_trials_run_alone(
        tmp_path, scheduler, capsys):
    assert scheduler.startswith("tcp://127.0.0.1:")
    path = write_experiment(tmp_path, epochs=4)
    sweep_dir = tmp_path / "runs"
    assert main(["sweep", path, "--scheduler", scheduler, "--sweep-dir", str(sweep_dir),
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"on {scheduler}" in out and "6 trial(s) to run on 2 worker(s)" in out
    assert "6 of 6 trials finished" in out
    _, rows = read_results(sweep_dir)
    for trial, row in zip(load_sweep(path).trials, rows):
        assert row["trial"] == trial.id
        assert row["params_digest"] == alone_digest(str(sweep_dir / trial.id),
                                                    str(tmp_path / "alone" / trial.id))
