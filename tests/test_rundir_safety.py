"""Run directories are contained: a run name is a name, ``--force`` deletes only what
purenet made, paths are resolved before they are checked, one trainer per directory, and
a run that fails before training leaves nothing behind that would need ``--force``."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from purenet.checkpoint.lock import DirectoryLock
from purenet.cli import commands as cli
from purenet.errors import CheckpointError, ExperimentError, RunDirectoryError
from purenet.experiment.config import load_experiment
from purenet.experiment.rundir import MARKER
from purenet.experiment.runner import run_experiment

EXPERIMENT = """\
seed = 1
epochs = 2
batch_size = 32

[data]
source = "make_moons"
test_size = 0.2

[data.args]
n_samples = 120

[[layers]]
input_dim = 2
output_dim = 4
activation = "relu"

[[layers]]
input_dim = 4
output_dim = 1
activation = "sigmoid"

[optimizer]
name = "adam"
learning_rate = 0.01
"""


def write(tmp_path: pathlib.Path, text: str = EXPERIMENT, name: str = "exp.toml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def train(*args: str) -> int:
    return cli.main(["train", *args, "--no-progress"])


@pytest.mark.parametrize("name", ["../../escaped", "a/b", "..", ".", "", " ", ".hidden",
                                  "a\\b", "x\0y"])
def test_a_run_name_is_a_plain_name(tmp_path, name):
    with pytest.raises(ExperimentError, match="plain directory name") as info:
        load_experiment(write(tmp_path, f"name = {json.dumps(name)}\n" + EXPERIMENT))
    assert info.value.key == "name"
    assert not (tmp_path.parent / "escaped").exists()


def test_a_hidden_file_stem_needs_a_name(tmp_path):
    with pytest.raises(ExperimentError, match="name: must be a plain directory name"):
        load_experiment(write(tmp_path, name=".exp.toml"))
    load_experiment(write(tmp_path, 'name = "ok"\n' + EXPERIMENT, name=".exp.toml"))


def test_every_run_directory_gets_the_marker(tmp_path):
    run_experiment(load_experiment(write(tmp_path)), tmp_path / "run", progress=False)
    assert (tmp_path / "run" / MARKER).is_file()


def test_force_deletes_only_a_directory_purenet_marked(tmp_path):
    # A directory someone else made, holding files with a run's names: never emptied.
    other = tmp_path / "theirs"
    (other / "checkpoints").mkdir(parents=True)
    for name in ("config.toml", "summary.json", "checkpoints/step-00000001.h5"):
        (other / name).write_text("precious")
    experiment = load_experiment(write(tmp_path))
    with pytest.raises(RunDirectoryError, match=f"no {MARKER} marker"):
        run_experiment(experiment, other, force=True, progress=False)
    assert sorted(p.read_text() for p in other.rglob("*") if p.is_file()) == ["precious"] * 3
    # purenet's own run: --force replaces it.
    first = run_experiment(experiment, tmp_path / "mine", progress=False)
    again = run_experiment(experiment, tmp_path / "mine", force=True, progress=False)
    assert again["params_digest"] == first["params_digest"]


def test_the_run_dir_is_resolved_before_it_is_checked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path)
    assert train("exp.toml", "--run-dir", "RUN") == 0
    before = (tmp_path / "RUN" / "summary.json").read_text()
    # "missing" does not exist: missing/../RUN is RUN, which holds a finished run.
    assert train("exp.toml", "--run-dir", "missing/../RUN", "--epochs", "3") == 1
    assert (tmp_path / "RUN" / "summary.json").read_text() == before
    os.symlink(tmp_path / "RUN", tmp_path / "link")
    assert train("exp.toml", "--run-dir", "link", "--epochs", "3") == 1
    assert (tmp_path / "RUN" / "summary.json").read_text() == before


def test_a_second_trainer_is_refused_before_it_writes_anything(tmp_path):
    run_dir = tmp_path / "run"
    lock = DirectoryLock(str(run_dir / "checkpoints"))
    lock.acquire()          # the lock a trainer of this directory holds
    try:
        done = subprocess.run([sys.executable, "-m", "purenet", "train", write(tmp_path),
                               "--run-dir", str(run_dir), "--no-progress"],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 1 and "in use by another trainer" in done.stderr
        assert "Traceback" not in done.stderr
        assert os.listdir(run_dir) == ["checkpoints"]
        assert os.listdir(run_dir / "checkpoints") == [".lock"]
        with pytest.raises(CheckpointError, match="in use"):
            run_experiment(load_experiment(write(tmp_path)), run_dir, resume=True,
                           progress=False)
    finally:
        lock.release()
    run_experiment(load_experiment(write(tmp_path)), run_dir, progress=False)


def _nan_csv(tmp_path: pathlib.Path, bad: bool, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(60, 2)), (rng.random(60) > 0.5).astype(float)
    if bad:
        x[7, 1] = np.nan
    path = tmp_path / "data.csv"
    np.savetxt(path, np.column_stack([x, y]), delimiter=",", header="a,b,label", comments="")
    text = EXPERIMENT.replace('source = "make_moons"', 'path = "data.csv"\ntarget = "label"')
    return write(tmp_path, text[:text.index("[data.args]")] + text[text.index("[[layers]]"):])


def test_a_run_that_fails_before_training_leaves_nothing_to_force(tmp_path):
    experiment = load_experiment(_nan_csv(tmp_path, bad=True))
    with pytest.raises(ExperimentError, match=r"data.csv, line 9, column 2 \('b'\): 'nan'"):
        run_experiment(experiment, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()   # not even its lock: nothing behind
    fixed = load_experiment(_nan_csv(tmp_path, bad=False))
    assert run_experiment(fixed, tmp_path / "run", progress=False)["epoch"] == 2


def test_a_refused_resume_leaves_the_run_files_as_they_were(tmp_path):
    run_dir = tmp_path / "run"
    run_experiment(load_experiment(_nan_csv(tmp_path, bad=False)), run_dir, progress=False)
    before = {name: (run_dir / name).read_text() for name in ("config.toml", "scaler.json")}
    # The same config over other data: fit refuses to resume (the data's fingerprint).
    other_data = load_experiment(_nan_csv(tmp_path, bad=False, seed=1))
    with pytest.raises(CheckpointError, match="refusing to resume it with other settings or data"):
        run_experiment(other_data, run_dir, resume=True, epochs=4, progress=False)
    assert {name: (run_dir / name).read_text() for name in before} == before


def test_force_keeps_the_old_run_until_training_starts(tmp_path):
    run_dir = tmp_path / "run"
    experiment = load_experiment(write(tmp_path))
    run_experiment(experiment, run_dir, progress=False)
    kept = {p.name: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    # fit itself refuses this one: 2 sigmoid outputs for 1-D labels.
    two_outputs = experiment.with_settings(**{"layers[1].output_dim": 2})
    with pytest.raises(ValueError, match="output layer has 2 unit"):
        run_experiment(two_outputs, run_dir, force=True, progress=False)
    assert {p.name: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == kept


def test_resume_of_a_missing_directory_says_it_starts_fresh(tmp_path, capsys):
    assert train(write(tmp_path), "--run-dir", str(tmp_path / "new"), "--resume") == 0
    out = capsys.readouterr().out
    assert out.startswith(f"no checkpoint to resume from in {tmp_path / 'new'}: training "
                          "'exp' from the start\nmodel: 2-4-1")
    assert train(write(tmp_path), "--run-dir", str(tmp_path / "new"), "--resume",
                 "--epochs", "3") == 0
    assert capsys.readouterr().out.startswith(f"resuming 'exp' in {tmp_path / 'new'}\n")


def test_a_file_in_the_way_of_the_run_dir_is_a_sentence(tmp_path, capsys):
    (tmp_path / "afile").write_text("")
    assert train(write(tmp_path), "--run-dir", str(tmp_path / "afile")) == 1
    err = capsys.readouterr().err
    assert "is a file, not a directory" in err and "Errno" not in err
    assert train(write(tmp_path), "--run-dir", str(tmp_path / "afile" / "x")) == 1
    err = capsys.readouterr().err
    assert "a part of this path is a file, not a directory" in err and "Errno" not in err


def test_two_trainers_on_one_directory_the_second_is_refused(tmp_path):
    path = write(tmp_path, EXPERIMENT.replace("epochs = 2", "epochs = 100000"))
    command = [sys.executable, "-m", "purenet", "train", path, "--run-dir",
               str(tmp_path / "run"), "--no-progress", "--checkpoint-every", "100000000"]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        assert first.stdout.readline().startswith("training 'exp' in ")   # holds the lock
        second = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert second.returncode == 1 and "Traceback" not in second.stderr
        assert "in use by another trainer (pid " in second.stderr
        assert first.poll() is None
    finally:
        first.terminate()
        first.communicate(timeout=120)
    assert first.returncode == 143    # SIGTERM: checkpointed and stopped, as usual


@pytest.mark.parametrize("error, text", [
    (FileExistsError(17, "File exists", "afile"),
     "afile already exists and is a file, where a directory is needed"),
    (NotADirectoryError(20, "Not a directory", "afile/x"),
     "afile/x: a part of this path is a file, not a directory"),
    (FileNotFoundError(2, "No such file or directory", "/d/.out.csv.tmp-4472-0f12ba26"),
     "no such file or directory: /d/out.csv"),
    (PermissionError(13, "Permission denied", "/root/x"), "permission denied: /root/x"),
    (OSError(5, "Input/output error", "/x"), "Input/output error: /x"),
    (FileNotFoundError("no such file: a.csv"), "no such file: a.csv"),
])
def test_os_errors_are_sentences_that_name_the_real_file(error, text):
    assert cli.error_text(error).startswith(text) and "Errno" not in cli.error_text(error)
