"""The README, followed as a newcomer would: its Python blocks run and print what they say,
and its own-CSV walk-through (the TOML block as written, a CSV of the shape it shows) trains,
resumes and predicts from a CSV with the columns in another order."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest
from _checkpoint_common import child_env

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def blocks(language: str) -> list[str]:
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as fh:
        return re.findall(rf"```{language}\n(.*?)```", fh.read(), re.S)


def run(args: list[str], cwd) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=child_env(), capture_output=True, text=True,
                          timeout=600)


def test_the_python_blocks_run_and_print_what_they_say(tmp_path):
    first, second = blocks("python")
    done = run([sys.executable, "-c", first], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert float(done.stdout.split()[0]) > 0.9          # "above 0.9"
    assert (tmp_path / "runs" / "xor" / "checkpoints").is_dir()
    done = run([sys.executable, "-c", second], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    score, epochs = done.stdout.split()
    # MLPClassifier's stopping rule ends it before max_iter=300 (and so without warning).
    assert float(score) > 0.95 and int(epochs) < 300


def test_the_own_csv_walk_through_trains_resumes_and_predicts(tmp_path):
    (toml,) = blocks("toml")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3))
    label = (x[:, 0] + x[:, 1] > 0).astype(int)
    with open(tmp_path / "flowers.csv", "w") as fh:
        fh.write("petal_length,petal_width,sepal_length,label\n")
        fh.writelines(f"{a:.4f},{b:.4f},{c:.4f},{y}\n" for (a, b, c), y in zip(x, label))
    (tmp_path / "flowers.toml").write_text(toml.replace("epochs = 200", "epochs = 20"))
    purenet = [sys.executable, "-m", "purenet"]
    done = run([*purenet, "train", "flowers.toml"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("training 'flowers' in runs/flowers\nmodel: 3-32-1")
    done = run([*purenet, "train", "flowers.toml", "--resume", "--epochs", "25"], tmp_path)
    assert done.returncode == 0 and "resuming 'flowers'" in done.stdout, done.stderr[-3000:]
    with open(tmp_path / "new.csv", "w") as fh:   # other order, no label: matched by name
        fh.write("sepal_length,petal_width,petal_length\n0.1,1.0,2.0\n0.3,-1.0,-2.0\n")
    done = run([*purenet, "predict", "runs/flowers", "new.csv", "--output",
                "predictions.csv"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = (tmp_path / "predictions.csv").read_text().splitlines()
    assert rows[0] == "p_1,class" and [r.split(",")[1] for r in rows[1:]] == ["1", "0"]


@pytest.mark.parametrize("command", ["inspect", "plot", "evaluate"])
def test_the_next_step_commands_run_on_a_trained_run(tmp_path, command):
    from _sweep_common import write_experiment

    path = write_experiment(tmp_path, name="circles", epochs=2, sweep=None)
    assert run([sys.executable, "-m", "purenet", "train", path], tmp_path).returncode == 0
    done = run([sys.executable, "-m", "purenet", command, "runs/circles"], tmp_path)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-3000:]
