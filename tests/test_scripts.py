"""Every script in scripts/ runs: the experiment files through ``python -m purenet train``
(few epochs), the Python scripts with small arguments. The full-length runs and the
accuracies the experiment files promise are checked under ``-m slow``."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

SCRIPTS = pathlib.Path(__file__).resolve().parent.parent / "scripts"
ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
       "MKL_NUM_THREADS": "1"}

# Arguments that make each script quick; every file in scripts/ must be listed here.
FAST = {
    "circles.toml": ["--epochs", "20"],
    "moons.toml": ["--epochs", "2"],
    "digits.toml": ["--epochs", "2"],
    "diabetes.toml": ["--epochs", "5"],
    "functional_api.py": ["--steps", "20"],
    "tutorial_circles.py": ["--epochs", "20"],
    "benchmark.py": None,   # a benchmark run by hand (DESIGN.md); its --quick takes ~1 min
    "benchmark_estimators.py": None,   # its estimator section (benchmark.py --only sklearn)
}
# What the experiment files promise at full length (scripts/*.toml comments, the report).
PROMISES = {
    "circles.toml": lambda s: s["test_accuracy"] == 1.0,
    "moons.toml": lambda s: s["test_accuracy"] >= 0.97,
    "digits.toml": lambda s: s["test_accuracy"] >= 0.95,
    "diabetes.toml": lambda s: s["test_mse"] < 0.8 * s["test_variance"],
}


def run(args: list[str], cwd) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, *args], cwd=cwd, env=ENV, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done


def test_every_script_has_fast_arguments():
    assert sorted(p.name for p in SCRIPTS.iterdir() if p.suffix in (".py", ".toml")) \
        == sorted(FAST)


@pytest.mark.parametrize("name", sorted(n for n in FAST if n.endswith(".toml")))
def test_experiment_file_trains(name, tmp_path):
    done = run(["-m", "purenet", "train", str(SCRIPTS / name), "--run-dir", "run",
                "--no-progress", *FAST[name]], tmp_path)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["epoch"] == int(FAST[name][1])
    assert "test_loss" in done.stdout and summary["test_loss"] is not None
    assert ("test_accuracy" in summary) == (name != "diabetes.toml")


@pytest.mark.parametrize("name", sorted(n for n in FAST if n.endswith(".py") and FAST[n]))
def test_python_script_runs(name, tmp_path):
    extra = ["--dir", str(tmp_path)] if name == "functional_api.py" else []
    done = run([str(SCRIPTS / name), *FAST[name], *extra], tmp_path)
    if name == "functional_api.py":
        assert "equal to the saved params: True" in done.stdout


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PROMISES))
def test_experiment_file_keeps_its_promise_at_full_length(name, tmp_path):
    run(["-m", "purenet", "train", str(SCRIPTS / name), "--run-dir", "run", "--no-progress"],
        tmp_path)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert PROMISES[name](summary), summary
