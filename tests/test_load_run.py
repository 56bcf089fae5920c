"""``pn.load_run``: a CLI run as a model that applies the run's scaler; ``evaluate``,
``predict`` and ``load_run`` refuse run files that no longer match the checkpoint; the
example experiments ship inside the package."""

from __future__ import annotations

import json
import pathlib
import shutil
import tomllib

import numpy as np
import pytest

import purenet as pn
from purenet.cli import commands as cli
from purenet.errors import RunDirectoryError
from purenet.experiment.config import load_experiment
from purenet.experiment.examples import example_names, example_text
from purenet.experiment.readrun import read_run
from purenet.experiment.runner import prepare_data, run_experiment
from purenet.experiment.scaler import Scaler

CLASSIFIER = """\
seed = 4
epochs = 5

[data]
source = "make_moons"
test_size = 0.25
standardize = true

[data.args]
n_samples = 200
noise = 0.1

[[layers]]
input_dim = 2
output_dim = 8
activation = "tanh"

[[layers]]
input_dim = 8
output_dim = 1
activation = "sigmoid"

[optimizer]
name = "adam"
learning_rate = 0.02
"""
REGRESSION = """\
epochs = 3
dtype = "float64"

[data]
source = "make_regression"
standardize = true
standardize_target = true

[data.args]
n_samples = 100
n_features = 2
noise = 1.0

[[layers]]
input_dim = 2
output_dim = 1
activation = "linear"

[optimizer]
name = "sgd"
learning_rate = 0.1
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("load_run")
    for name, text in (("clf", CLASSIFIER), ("reg", REGRESSION)):
        (root / f"{name}.toml").write_text(text)
        run_experiment(load_experiment(root / f"{name}.toml"), root / name, progress=False)
    return root


def copy_run(runs: pathlib.Path, name: str, tmp_path: pathlib.Path) -> pathlib.Path:
    return pathlib.Path(shutil.copytree(runs / name, tmp_path / name))


def test_load_run_applies_the_scaler_and_matches_the_run_summary(runs):
    model = pn.load_run(runs / "clf")
    run = read_run(runs / "clf")
    splits = prepare_data(run.experiment)
    x = np.array([[0.5, -0.2], [1.5, 0.4]])
    expected = pn.predict(run.params, run.scaler.transform_x(x).astype(np.float32))[:, 0]
    np.testing.assert_array_equal(model.predict_proba(x)[:, 1], expected)
    assert not np.allclose(model.predict_proba(x)[:, 1],     # the scaler matters here
                           pn.predict(run.params, x.astype(np.float32))[:, 0])
    np.testing.assert_array_equal(model.predict(x), (expected > 0.5).astype(int))
    summary = json.loads((runs / "clf" / "summary.json").read_text())
    metrics = model.evaluate(splits.x_test, splits.y_test)
    assert metrics == {"loss": summary["test_loss"], "accuracy": summary["test_accuracy"]}
    assert model.feature_names == ("x0", "x1")


def test_load_run_of_a_regression_answers_in_the_target_units(runs):
    model = pn.load_run(runs / "reg")
    run = read_run(runs / "reg")
    splits = prepare_data(run.experiment)
    raw = pn.predict(run.params, run.scaler.transform_x(splits.x_test))[:, 0]
    np.testing.assert_allclose(model.predict(splits.x_test),
                               raw * run.scaler.y_scale + run.scaler.y_mean)
    summary = json.loads((runs / "reg" / "summary.json").read_text())
    assert model.evaluate(splits.x_test, splits.y_test)["loss"] == summary["test_loss"]


@pytest.mark.parametrize("edit, words", [
    (lambda c: c.update(seed=5), "config.toml: seed is 5, the checkpoint's 4"),
    (lambda c: c["data"].update(test_size=0.5), "config.toml: data.test_size is 0.5, the checkpoint's 0.25"),
    (lambda c: c["layers"][0].update(activation="relu"), "activation"),
])
def test_an_edited_config_is_refused_by_every_reader(runs, tmp_path, capsys, edit, words):
    import tomli_w

    run_dir = copy_run(runs, "clf", tmp_path)
    config = tomllib.loads((run_dir / "config.toml").read_text())
    edit(config)
    (run_dir / "config.toml").write_text(tomli_w.dumps(config))
    with pytest.raises(RunDirectoryError, match="do not belong to the run of its checkpoint"):
        pn.load_run(run_dir)
    (tmp_path / "in.csv").write_text("x0,x1\n1,2\n")
    for argv in (["evaluate", str(run_dir)], ["predict", str(run_dir), str(tmp_path / "in.csv")]):
        assert cli.main(argv) == 1
        out, err = capsys.readouterr()
        assert out == "" and words in err, err


@pytest.mark.parametrize("scaler, words", [
    ("", "scaler.json is empty"),
    ("{not json", "is not valid JSON"),
    ("[1, 2]", "must be a JSON object with the keys"),
    (lambda s: s.update(x_mean=[0.5]), r"x_mean has shape (1,); expected (2,)"),
    (lambda s: s.update(x_scale=[1.0, -1.0]), "x_scale must hold finite numbers above 0"),
    (lambda s: s.update(x_mean=[0.5, float("nan")]), "x_mean must hold finite numbers"),
    (lambda s: s.update(x_mean=None), "x_mean and x_scale go together"),
    (lambda s: s.update(x_mean=None, x_scale=None), "data.standardize is true but the scaler "
                                                    "lacks x_mean and x_scale"),
    (lambda s: s.update(feature_names=["a", "b", "c"], x_mean=[0, 0, 0], x_scale=[1, 1, 1]),
     "it names 3 features but the network takes 2"),
    (lambda s: s.update(extra=1), "must be a JSON object with the keys"),
    (lambda s: s.update(feature_names=["a", "a"]), "distinct names"),
])
def test_a_bad_scaler_is_a_clear_error(runs, tmp_path, capsys, scaler, words):
    run_dir = copy_run(runs, "clf", tmp_path)
    path = run_dir / "scaler.json"
    if callable(scaler):
        plain = json.loads(path.read_text())
        scaler(plain)
        scaler = json.dumps(plain)
    path.write_text(scaler)
    assert cli.main(["evaluate", str(run_dir)]) == 1
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err, err


def test_a_missing_scaler_says_the_run_is_incomplete(runs, tmp_path):
    run_dir = copy_run(runs, "clf", tmp_path)
    (run_dir / "scaler.json").unlink()
    with pytest.raises(RunDirectoryError, match="scaler.json is missing"):
        pn.load_run(run_dir)


def test_the_scaler_round_trips_through_its_json():
    scaler = Scaler(["a", "b"], "y", np.array([1.0, 2.0]), np.array([3.0, 4.0]),
                    np.float64(0.5), np.float64(2.0))
    back = Scaler.from_json(scaler.to_json())
    assert back.feature_names == ("a", "b") and back.target == "y"
    np.testing.assert_array_equal(back.x_scale, [3.0, 4.0])
    assert float(back.y_mean) == 0.5


# --- the shipped examples -------------------------------------------------------------


def test_the_examples_are_package_data_and_the_scripts_are_the_same_files():
    root = pathlib.Path(__file__).resolve().parent.parent
    assert example_names() == ["circles", "diabetes", "digits", "moons"]
    for name in example_names():
        assert (root / "scripts" / f"{name}.toml").read_text() == example_text(name)
    with open(root / "pyproject.toml", "rb") as fh:
        package_data = tomllib.load(fh)["tool"]["setuptools"]["package-data"]["purenet"]
    assert "examples/*.toml" in package_data


def test_purenet_example_prints_a_file_that_trains(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["example", "moons"]) == 0
    (tmp_path / "moons.toml").write_text(capsys.readouterr().out)
    experiment = load_experiment(tmp_path / "moons.toml")
    assert experiment.name == "moons" and experiment.data.source == "make_moons"
    assert cli.main(["example"]) == 0
    assert capsys.readouterr().out.split() == example_names()
    assert cli.main(["example", "moon"]) == 1
    assert "did you mean 'moons'?" in capsys.readouterr().err


@pytest.mark.slow
def test_the_built_wheel_carries_the_examples(tmp_path):
    """``purenet example`` from a wheel (what ``pip install purenet`` unpacks)."""
    import subprocess
    import sys
    import zipfile

    root = pathlib.Path(__file__).resolve().parent.parent
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(root)], check=True, timeout=600)
    (wheel,) = tmp_path.glob("purenet-*.whl")
    zipfile.ZipFile(wheel).extractall(tmp_path / "site")
    done = subprocess.run([sys.executable, "-m", "purenet", "example", "circles"],
                          cwd=tmp_path, env={"PYTHONPATH": str(tmp_path / "site")},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (root / "purenet" / "examples" / "circles.toml").read_text()
    where = subprocess.run([sys.executable, "-c", "import purenet; print(purenet.__file__)"],
                           cwd=tmp_path, env={"PYTHONPATH": str(tmp_path / "site")},
                           capture_output=True, text=True, timeout=120).stdout
    assert where.startswith(str(tmp_path / "site"))     # the wheel's, not the checkout's
