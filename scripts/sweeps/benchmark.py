"""Sweep throughput: trials one after another in one process, against the same trials on a
Dask LocalCluster (``purenet.sweep.run_sweep``), and the scheduling overhead per trial.

    python scripts/sweeps/benchmark.py --epochs 30 --workers 2

The trials are moons experiments (1000 points, a 2-16-1 network), ``--trials`` seeds x two
learning rates. Trials one after another are timed twice: in one warm process (its
imports done before the clock starts), and as one ``purenet train`` command each (paying
the imports every time, as a shell loop would). Each Dask worker imports purenet, h5py and
scikit-learn on its first trial, which is reported apart.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

EXPERIMENT = """
name = "bench"
epochs = {epochs}
batch_size = 16
[data]
source = "make_moons"
test_size = 0.2
[data.args]
n_samples = 1000
noise = 0.2
random_state = 0
[[layers]]
input_dim = 2
output_dim = 16
activation = "relu"
[[layers]]
input_dim = 16
output_dim = 1
activation = "sigmoid"
[optimizer]
name = "adam"
[checkpoint]
every_steps = 200
keep = 2
[sweep]
seed = {seeds}
"optimizer.learning_rate" = [0.003, 0.03]
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--trials", type=int, default=4, help="seeds (x 2 learning rates)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    from purenet.experiment.runner import run_experiment
    from purenet.sweep import load_sweep, run_sweep

    root = tempfile.mkdtemp(prefix="purenet-sweep-bench-")
    path = os.path.join(root, "bench.toml")
    with open(path, "w") as fh:
        fh.write(EXPERIMENT.format(epochs=args.epochs, seeds=list(range(args.trials))))
    sweep = load_sweep(path)
    n = len(sweep.trials)
    sys.stderr = open(os.devnull, "w")        # the trials' per-epoch lines
    run_experiment(sweep.trials[0].experiment, os.path.join(root, "warm"), progress=False)
    start = time.perf_counter()
    for trial in sweep.trials:
        run_experiment(trial.experiment, os.path.join(root, "alone", trial.id), progress=False)
    alone = time.perf_counter() - start
    start = time.perf_counter()
    for trial in sweep.trials:          # as a user would: one `purenet train` per trial
        subprocess.run([sys.executable, "-m", "purenet", "train", "--no-progress",
                        os.path.join(root, "alone", trial.id, "config.toml"),
                        "--run-dir", os.path.join(root, "cli", trial.id)],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    commands = time.perf_counter() - start

    start = time.perf_counter()
    report = run_sweep(sweep, sweep_dir=os.path.join(root, "sweep"), workers=args.workers)
    total = time.perf_counter() - start
    inside = [o.seconds for o in report.outcomes]
    fits = [o.summary["seconds"] for o in report.outcomes]
    first = sorted(inside, reverse=True)[:report.workers]
    rest = [o.seconds - o.summary["seconds"] for o in report.outcomes
            if o.seconds not in first]
    idle = (report.workers * report.seconds - sum(inside)) / n
    print(f"{n} trials of {args.epochs} epochs (os.cpu_count() = {os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.1f})")
    print(f"one after another: {alone:.2f} s, {n / alone * 60:.1f} trials/min "
          f"({alone / n:.2f} s a trial)")
    print(f"one `purenet train` command after another: {commands:.2f} s, "
          f"{n / commands * 60:.1f} trials/min")
    print(f"dask, {report.workers} workers: {total:.2f} s with the cluster's start "
          f"({report.startup_seconds:.2f} s), {n / total * 60:.1f} trials/min; submit to last "
          f"result {report.seconds:.2f} s, {n / report.seconds * 60:.1f} trials/min")
    print(f"fit inside a worker: median {statistics.median(fits):.2f} s; first trial on each "
          f"worker (imports) {', '.join(f'{s:.2f}' for s in first)} s")
    print(f"per trial outside fit on a warm worker (lock, data, files): median "
          f"{statistics.median(rest) if rest else 0:.3f} s; workers idle per trial "
          f"(scheduling, round trips, the tail): {idle:.3f} s")


if __name__ == "__main__":      # LocalCluster starts processes that import this file
    main()
