"""The ``purenet`` command end to end, in subprocesses (``python -m purenet``) in temporary
directories: train, interrupt and resume bit for bit, inspect, plot, evaluate, predict, and
clear errors (never a traceback) for bad input."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from purenet.checkpoint.format import FORMAT_VERSION
from purenet.cli import commands as cli

# One BLAS thread: bit identity across processes needs the same thread count.
ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
       "MKL_NUM_THREADS": "1"}
CONFIG = """\
seed = 3
epochs = 40
batch_size = 32

[data]
source = "make_moons"
test_size = 0.2
validation_size = 0.1
standardize = true

[data.args]
n_samples = 600
noise = 0.15

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

[optimizer.learning_rate]
schedule = "warmup_cosine_decay"
peak_value = 0.01
warmup_steps = 20
decay_steps = 560
"""
TRAIN = ["train", "exp.toml", "--no-progress", "--checkpoint-every", "100"]


def purenet(*args: str, cwd, expect: int | None = 0) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "purenet", *args], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=300)
    assert "Traceback" not in done.stderr, done.stderr
    if expect is not None:
        assert done.returncode == expect, done.stderr
    return done


def digest(run_dir, cwd) -> str:
    return json.loads(purenet("inspect", str(run_dir), "--json", cwd=cwd).stdout)["params_digest"]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A directory with the experiment file and one uninterrupted run of it."""
    root = tmp_path_factory.mktemp("cli")
    (root / "exp.toml").write_text(CONFIG)
    done = purenet(*TRAIN, "--run-dir", "run", cwd=root)
    assert "test_accuracy" in done.stdout
    return root


def test_train_writes_the_run_directory(work):
    run = work / "run"
    for name in ("config.toml", "scaler.json", "history.csv", "summary.json"):
        assert (run / name).stat().st_size > 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["step"] == 40 * 14 and summary["epoch"] == 40
    assert summary["test_accuracy"] > 0.9
    assert summary["params_digest"] == digest(run, work)


@pytest.mark.parametrize("number, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)],
                         ids=["SIGTERM", "SIGINT"])
def test_interrupt_then_resume_gives_the_uninterrupted_params(work, number, code):
    run_dir = f"run-{number.name}"
    child = subprocess.Popen(
        [sys.executable, "-m", "purenet", *TRAIN, "--run-dir", run_dir], cwd=work, env=ENV,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    checkpoints = work / run_dir / "checkpoints"
    deadline = time.monotonic() + 120
    while not (checkpoints.is_dir() and any(checkpoints.glob("step-*.h5"))):
        assert child.poll() is None, child.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    child.send_signal(number)
    _, err = child.communicate(timeout=120)
    assert child.returncode == code, err
    assert "Traceback" not in err
    steps = sorted(int(p.name[5:13]) for p in checkpoints.glob("step-*.h5"))
    assert steps[-1] < 560, "the run was not interrupted midway"
    assert f"{number.name} received: stopped after step {steps[-1]}" in err
    command = re.search(r"to resume, run: (.+)", err).group(1)
    assert command == ("python -m purenet train exp.toml --no-progress --checkpoint-every 100 "
                       f"--run-dir {run_dir} --resume")
    resumed = purenet(*shlex.split(command)[3:], cwd=work)
    assert f"resuming 'exp' in {run_dir}" in resumed.stdout
    assert digest(run_dir, work) == digest("run", work)
    assert json.loads((work / run_dir / "summary.json").read_text())["step"] == 560


def test_train_refuses_to_overwrite_a_run_without_force(work):
    done = purenet(*TRAIN, "--run-dir", "run", cwd=work, expect=1)
    assert done.stderr.startswith("purenet: error: run already holds a run")
    assert "--force" in done.stderr and "--resume" in done.stderr


def test_resume_refuses_a_different_config(work):
    done = purenet(*TRAIN, "--run-dir", "run", "--resume", "--set", "l2=0.1", cwd=work, expect=1)
    assert "l2: this run has 0.1, the run's config.toml 0.0" in done.stderr


def test_inspect_text_json_and_every_kind_of_path(work):
    text = purenet("inspect", "run", cwd=work).stdout
    for word in ("step", "epoch", "loss", "params_digest", "format_version", "integrity"):
        assert re.search(rf"^{word}\s", text, re.M), text
    summary = json.loads((work / "run" / "summary.json").read_text())
    newest = sorted((work / "run" / "checkpoints").glob("step-*.h5"))[-1]
    for path in ("run", "run/checkpoints", str(newest)):
        info = json.loads(purenet("inspect", path, "--json", cwd=work).stdout)
        assert {"step", "epoch", "loss", "params_digest", "format_version"} <= set(info)
        assert info["step"] == summary["step"] == 560
        assert info["params_digest"] == summary["params_digest"]
        assert isinstance(info["loss"], float) and info["format_version"] == FORMAT_VERSION
        assert info["threads"] == 1 and info["data"]["x"]["shape"][1] == 2
    assert re.search(r"^threads\s+1 ", text, re.M) and re.search(r"^data\s+x \d+x2 ", text, re.M)


def test_inspect_fails_clearly_on_corrupt_and_missing_files(work, tmp_path):
    newest = sorted((work / "run" / "checkpoints").glob("step-*.h5"))[-1]
    corrupt = tmp_path / "corrupt.h5"
    data = bytearray(newest.read_bytes())
    data[len(data) // 2] ^= 0xFF
    corrupt.write_bytes(bytes(data))
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(newest.read_bytes()[:2000])
    for path, words in ((corrupt, "corrupt"), (truncated, "truncated"),
                        (tmp_path / "missing.h5", "no checkpoint file")):
        for extra in ((), ("--json",)):
            done = purenet("inspect", str(path), *extra, cwd=work, expect=1)
            assert done.stderr.startswith("purenet: error:") and words in done.stderr
            assert done.stdout == ""


def test_plot_writes_png_files(work):
    shutil.copytree(work / "run", work / "plot-run")
    done = purenet("plot", "plot-run", cwd=work)
    names = {os.path.basename(line) for line in done.stdout.split()}
    assert names == {"loss.png", "accuracy.png", "decision_boundary.png"}
    for name in names:
        data = (work / "plot-run" / name).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 5000


def test_evaluate_on_the_test_split_and_on_a_file(work, tmp_path):
    summary = json.loads((work / "run" / "summary.json").read_text())
    metrics = json.loads(purenet("evaluate", "run", "--json", cwd=work).stdout)
    assert metrics["accuracy"] == summary["test_accuracy"]
    assert metrics["loss"] == summary["test_loss"] and metrics["samples"] == 120
    from sklearn.datasets import make_moons

    x, y = make_moons(200, noise=0.15, random_state=9)
    path = tmp_path / "new.csv"
    np.savetxt(path, np.column_stack([y, x]), delimiter=",", header="label,x0,x1", comments="")
    metrics = json.loads(purenet("evaluate", "run", "--data", str(path), "--target", "label",
                                 "--json", cwd=work).stdout)
    assert metrics["samples"] == 200 and metrics["accuracy"] > 0.9
    done = purenet("evaluate", "run", "--data", str(path), "--target", "nope", cwd=work,
                   expect=1)
    assert "no column 'nope'" in done.stderr


def test_predict_applies_the_run_standardisation(work, tmp_path):
    from purenet.experiment.readrun import read_run as load_run

    x = np.array([[0.0, 0.5], [1.0, -0.4], [2.0, 0.3], [-1.0, 0.2]])
    path = tmp_path / "in.csv"
    np.savetxt(path, x, delimiter=",", header="x0,x1", comments="")
    lines = purenet("predict", "run", str(path), cwd=work).stdout.splitlines()
    assert lines[0] == "p_1,class" and len(lines) == 5
    run = load_run(work / "run")
    import purenet as pn

    expected = pn.predict(run.params, run.scaler.transform_x(x))[:, 0]
    got = np.array([float(line.split(",")[0]) for line in lines[1:]])
    np.testing.assert_array_equal(got, expected.astype(np.float64))
    assert [int(line.split(",")[1]) for line in lines[1:]] == [int(p > 0.5) for p in expected]
    out = tmp_path / "out.csv"
    purenet("predict", "run", str(path), "--output", str(out), cwd=work)
    assert out.read_text().splitlines() == lines


def test_bad_config_from_the_command_line_names_key_file_and_line(work, tmp_path):
    (tmp_path / "bad.toml").write_text(CONFIG.replace("seed = 3", "seed = 3\nlerning_rate = 1"))
    done = purenet("train", "bad.toml", cwd=tmp_path, expect=1)
    assert done.stderr == ("purenet: error: bad.toml, line 2: lerning_rate: unknown key; "
                           "expected one of ['batch_size', 'checkpoint', 'data', 'drop_last', "
                           "'dtype', 'early_stopping', 'epochs', 'init', 'l2', 'label_smoothing', "
                           "'layers', 'loss', 'name', 'optimizer', 'seed', 'shuffle', "
                           "'threads']\n")
    assert not (tmp_path / "runs").exists()


# In process (same code path as the console script), to keep the suite fast.

@pytest.mark.parametrize("args, words", [
    (["train", "missing.toml"], "missing.toml: no such experiment file"),
    (["train", "exp.toml", "--set", "epochs=lots"], "epochs: must be an integer, got str "
                                                    "'lots'"),
    (["train", "exp.toml", "--set", "optimizer.b1=2.0"], "optimizer.b1: must be a finite number "
                                                         "in [0.0, 1.0), got 2.0"),
    (["train", "exp.toml", "--set", "data.path=nowhere.csv"], "data: give exactly one of"),
    (["evaluate", "nowhere"], "no run directory at nowhere"),
    (["predict", "run", "nowhere.csv"], "no such file: nowhere.csv"),
    (["inspect", "exp.toml"], "is not a purenet checkpoint"),
])
def test_bad_input_is_one_error_line(work, capsys, monkeypatch, args, words):
    monkeypatch.chdir(work)
    assert cli.main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("purenet: error:") and words in err and err.count("\n") == 1


def test_bad_arguments_are_usage_errors(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["train", "exp.toml", "--epochs", "0"])
    assert info.value.code == 2
    assert "--epochs: must be an integer >= 1" in capsys.readouterr().err


def test_version_is_printed():
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0


def test_a_set_value_is_exactly_one_toml_value(work):
    done = purenet("train", "exp.toml", "--set", "seed=1\nepochs=2", cwd=work, expect=1)
    assert "one TOML value on one line" in done.stderr and "--set" in done.stderr


def test_train_shows_the_model_and_logs_each_epoch_when_stderr_is_not_a_terminal(work):
    done = purenet("train", "exp.toml", "--run-dir", "logged", "--epochs", "2",
                   "--no-progress", cwd=work)
    assert re.search(r"^model: 2-\d+(-\d+)*-1 \(.*sigmoid\), [\d,]+ parameters, float\w+, "
                     r"\w+.*, 1 BLAS thread$", done.stdout, re.M), done.stdout
    epochs = re.findall(r"^purenet: epoch (\d)/2, step \d+, train_loss ", done.stderr, re.M)
    assert epochs == ["1", "2"], done.stderr


def test_a_long_run_logs_at_most_about_100_lines_every_kth_epoch_and_the_last():
    import io

    import numpy as np

    import purenet as pn
    from purenet.train.callbacks import EpochLog

    x = np.random.default_rng(0).normal(size=(20, 2))
    stream = io.StringIO()
    pn.fit([{"input_dim": 2, "output_dim": 1, "activation": "sigmoid"}], x,
           (x[:, 0] > 0).astype(int), epochs=1234, batch_size=None, progress=False,
           optimizer=pn.optim.sgd(0.1), callbacks=[EpochLog(stream)])
    epochs = [int(m) for m in re.findall(r"^purenet: epoch (\d+)/1234,", stream.getvalue(), re.M)]
    assert len(epochs) <= 101 and epochs[-1] == 1234
    assert epochs[:3] == [13, 26, 39]   # every 13th epoch: ceil(1234 / 100)
