"""L-BFGS from an experiment file and the ``purenet`` command: ``[optimizer] name =
"lbfgs"`` with its settings trains on the full batch, a run continued with ``--resume`` is
the uninterrupted run bit for bit, and bad settings are one clear error line naming the
key and its line."""

from __future__ import annotations

import json

import pytest

from purenet.cli import commands as cli

CONFIG = """\
seed = 3
epochs = 30
batch_size = "full"
dtype = "float64"

[data]
source = "make_moons"
test_size = 0.2
standardize = true

[data.args]
n_samples = 400
noise = 0.15

[[layers]]
input_dim = 2
output_dim = 12
activation = "tanh"

[[layers]]
input_dim = 12
output_dim = 1
activation = "sigmoid"

[optimizer]
name = "lbfgs"
history_size = 6
tolerance_grad = 0.0
tolerance_change = 0.0
"""


def train(work, capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(["train", "exp.toml", "--no-progress", *args])
    out, err = capsys.readouterr()
    return code, out, err


def inspect(work, capsys, run: str) -> dict:
    assert cli.main(["inspect", run, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def work(tmp_path, monkeypatch):
    (tmp_path / "exp.toml").write_text(CONFIG)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_train_then_resume_with_more_epochs_is_the_uninterrupted_run(work, capsys):
    code, out, err = train(work, capsys, "--run-dir", "whole")
    assert code == 0, err
    summary = json.loads((work / "whole" / "summary.json").read_text())
    assert summary["step"] == summary["epoch"] == 30 and summary["test_accuracy"] > 0.9
    assert train(work, capsys, "--run-dir", "part", "--epochs", "12")[0] == 0
    assert inspect(work, capsys, "part")["step"] == 12
    code, out, err = train(work, capsys, "--run-dir", "part", "--resume")
    assert code == 0, err
    whole, part = inspect(work, capsys, "whole"), inspect(work, capsys, "part")
    assert part["step"] == 30 and part["optimizer"] == "lbfgs"
    assert part["params_digest"] == whole["params_digest"]


@pytest.mark.parametrize("edit, words", [
    (('batch_size = "full"', "batch_size = 32"),
     'line 3: batch_size: must be "full" with lbfgs'),
    (("history_size = 6", "history_size = 0"),
     "line 27: optimizer.history_size: must be an integer >= 1, got 0"),
    (("history_size = 6", "histroy_size = 6"),
     "optimizer.histroy_size: is not an argument of lbfgs"),
    (("history_size = 6", "clip_by_value = 1.0"),
     "optimizer.clip_by_value: cannot be used with lbfgs"),
    (('activation = "tanh"', 'activation = "tanh"\ndropout = 0.5'),
     "layers[0].dropout: must be 0 with lbfgs"),
])
def test_bad_lbfgs_settings_are_one_error_line(work, capsys, edit, words):
    (work / "exp.toml").write_text(CONFIG.replace(*edit))
    code, out, err = train(work, capsys)
    assert code == 1 and err.startswith("purenet: error: exp.toml") and err.count("\n") == 1
    assert words in err, err
    assert not (work / "runs").exists()


def test_a_setting_given_on_the_command_line_is_checked_too(work, capsys):
    code, out, err = train(work, capsys, "--set", "optimizer.max_eval=0")
    assert code == 1 and "optimizer.max_eval: must be an integer >= 1, got 0" in err
