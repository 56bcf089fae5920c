"""The newcomer's rough edges: what `purenet` says and leaves behind when a first try goes
wrong (a directory that is not a run's, a run that fails at once, a busy directory, a
resume of another experiment) and the small words that confuse."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest
from _sweep_common import write_experiment

import purenet as pn
from purenet.checkpoint.lock import DirectoryLock
from purenet.cli import main


def edited(path, change) -> str:
    """The experiment file ``path`` rewritten by ``change`` (text -> text)."""
    import pathlib

    file = pathlib.Path(path)
    file.write_text(change(file.read_text()))
    return str(file)


def from_csv(text: str, csv: str) -> str:
    """An experiment text whose data is the CSV file ``csv`` (target column y)."""
    text = text.replace('source = "make_moons"', f'path = "{csv}"\ntarget = "y"')
    return re.sub(r"\[data.args\][^\[]*", "", text)


def open_text(path) -> str:
    import pathlib

    return pathlib.Path(path).read_text()


def train(*argv):
    return main(["train", *map(str, argv), "--no-progress"])


@pytest.fixture
def exp(tmp_path):
    return write_experiment(tmp_path, name="exp", epochs=2, sweep=None)


def test_a_directory_purenet_did_not_make_is_refused_before_anything_is_written(tmp_path,
                                                                               exp, capsys):
    project = tmp_path / "project"
    project.mkdir()
    (project / "notes.txt").write_text("mine\n")
    for flags in ([], ["--force"], ["--resume"]):
        assert train(exp, "--run-dir", project, *flags) == 1
        err = capsys.readouterr().err
        assert "is not empty and purenet did not make it" in err and err.count("\n") == 1
    assert sorted(os.listdir(project)) == ["notes.txt"]


def test_a_run_inside_another_run_is_refused(tmp_path, exp, capsys):
    assert train(exp, "--run-dir", tmp_path / "outer") == 0
    for inner in ("inner", "checkpoints/inner"):
        assert train(exp, "--run-dir", tmp_path / "outer" / inner) == 1
        assert "lies inside the run directory" in capsys.readouterr().err
        assert not (tmp_path / "outer" / inner).exists()


def test_a_run_that_fails_at_once_leaves_nothing_and_says_nothing_of_training(tmp_path,
                                                                             capsys):
    (tmp_path / "data.csv").write_text("a,b,y\n1,2,0\n3,nan,1\n")
    path = edited(write_experiment(tmp_path, name="bad", epochs=1, sweep=None),
                  lambda text: from_csv(text, "data.csv"))
    assert train(path, "--run-dir", tmp_path / "run") == 1
    out, err = capsys.readouterr()
    assert "line 3, column 2" in err and out == ""   # no "training ...", no model line
    assert not (tmp_path / "run").exists()           # not even checkpoints/.lock


def test_a_busy_directory_is_refused_before_its_data_is_touched(tmp_path, exp, capsys,
                                                             monkeypatch):
    """At once: before the memory estimate, the data and their imports (which took a second
    trainer 7 s on a busy machine)."""
    from purenet.experiment import runner

    assert train(exp, "--run-dir", tmp_path / "run") == 0
    capsys.readouterr()

    def touched(*args, **kwargs):
        raise AssertionError("the data of a busy directory's run were touched")
    monkeypatch.setattr(runner, "check_memory", touched)
    monkeypatch.setattr(runner, "prepare_data", touched)
    holder = DirectoryLock(str(tmp_path / "run" / "checkpoints"))
    holder.acquire()
    try:
        assert train(exp, "--run-dir", tmp_path / "run", "--resume", "--epochs", "3") == 1
        assert "is in use by another trainer" in capsys.readouterr().err
    finally:
        holder.release()


def test_a_resume_of_another_experiment_leads_with_what_the_directory_holds(tmp_path, capsys):
    moons = write_experiment(tmp_path, name="moons", epochs=1, sweep=None)
    assert train(moons, "--run-dir", tmp_path / "run") == 0
    path = tmp_path / "other.toml"
    path.write_text(open_text(moons).replace('name = "moons"', 'name = "other"').replace(
        "output_dim = 16", "output_dim = 32").replace("input_dim = 16", "input_dim = 32")
        .replace('name = "adam"', 'name = "sgd"').replace("seed = 0", "seed = 3"))
    capsys.readouterr()
    assert train(path, "--run-dir", tmp_path / "run", "--resume") == 1
    lines = capsys.readouterr().err.splitlines()
    assert "holds the run of 'moons', not of 'other'" in lines[0]
    assert 1 < len(lines) <= 12
    assert all(": this run has " in line for line in lines[1:] if "more:" not in line)
    assert lines[1].startswith("  layers")   # the most telling first


def test_small_words(tmp_path, exp, capsys):
    with pytest.raises(pn.SettingError, match=r"did you mean 'relu'\?"):
        pn.Architecture.from_dicts([{"input_dim": 2, "output_dim": 1, "activation": "ReLU"}])
    assert main(["diff", str(tmp_path / "nothere"), str(tmp_path / "nothere")]) == 1
    assert "no run directory at" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["upgrade", str(tmp_path / "empty")]) == 1
    assert "nothing to upgrade" in capsys.readouterr().err


def test_inspect_names_the_optimizer_as_train_does(tmp_path, capsys):
    path = edited(write_experiment(tmp_path, name="clip", epochs=1, sweep=None),
                  lambda text: text.replace('name = "adam"',
                                            'name = "adam"\nclip_by_global_norm = 1.0'))
    assert train(path, "--run-dir", tmp_path / "run") == 0
    assert "adam + clip_by_global_norm" in capsys.readouterr().out
    assert main(["inspect", str(tmp_path / "run"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["optimizer"] == "adam + clip_by_global_norm"


def test_a_model_prints_in_a_line_not_its_weights(tmp_path, exp):
    assert train(exp, "--run-dir", tmp_path / "run") == 0
    text = repr(pn.load_run(tmp_path / "run"))
    assert text.startswith("Model(2-16-1 (relu, sigmoid), 65 parameters") and "\n" not in text


def test_a_divergence_names_the_step_that_failed_and_the_one_kept(tmp_path):
    x = np.random.default_rng(0).normal(size=(16, 2)) * 1e3
    with pytest.raises(pn.NonFiniteError, match=r"diverged in step (\d+): .*The state after "
                                                r"step \d+, before it, is intact") as info:
        pn.fit([{"input_dim": 2, "output_dim": 1, "activation": "identity"}], x, x[:, :1] * 1e6,
               loss="mean_squared_error", optimizer=pn.optim.sgd(10.0), epochs=50,
               batch_size=None, progress=False)
    failed, kept = map(int, re.findall(r"step (\d+)", str(info.value))[:2])
    assert failed == kept + 1


def test_a_resume_past_the_run_s_end_says_so(tmp_path, exp, capsys):
    assert train(exp, "--run-dir", tmp_path / "run", "--epochs", "3") == 0
    capsys.readouterr()
    assert train(exp, "--run-dir", tmp_path / "run", "--resume", "--epochs", "2") == 0
    assert "it is at epoch 3 already and epochs = 2 is no more than that, so nothing is " \
           "trained" in capsys.readouterr().out


def test_plot_says_what_it_does_while_it_works(tmp_path, exp, capsys):
    assert train(exp, "--run-dir", tmp_path / "run") == 0
    capsys.readouterr()
    assert main(["plot", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err
    assert "purenet: plot: reading the run" in err and "drawing decision_boundary.png" in err
