"""Experiment files (purenet.experiment.config, schema, datasets) and runs (purenet.experiment.runner),
in process: parsing, defaults, errors that name key, file and line, data, run directories."""

from __future__ import annotations

import json
import os
import pathlib
import tomllib

import numpy as np
import pytest

from purenet.experiment.datasets import read_file
from purenet.experiment.config import load_experiment
from purenet.errors import ExperimentError, RunDirectoryError
from purenet.experiment.readrun import read_run
from purenet.experiment.runner import prepare_data, run_experiment
from purenet.experiment.schema import dump_toml, find_line, parse_override

SCRIPTS = pathlib.Path(__file__).resolve().parent.parent / "scripts"

SMALL = """\
seed = 1
epochs = 3
batch_size = 32

[data]
source = "make_moons"
test_size = 0.2
validation_size = 0.1
standardize = true

[data.args]
n_samples = 300
noise = 0.1

[[layers]]
input_dim = 2
output_dim = 8
activation = "relu"

[[layers]]
input_dim = 8
output_dim = 1
activation = "sigmoid"

[optimizer]
name = "adam"
clip_by_global_norm = 1.0

[optimizer.learning_rate]
schedule = "warmup_cosine_decay"
peak_value = 0.01
warmup_steps = 5
decay_steps = 100
"""

REGRESSION = """\
epochs = 2
batch_size = "full"
dtype = "float64"

[data]
source = "make_regression"
standardize = true
standardize_target = true

[data.args]
n_samples = 200
n_features = 3
noise = 1.0

[[layers]]
input_dim = 3
output_dim = 1
activation = "identity"

[optimizer]
name = "sgd"
learning_rate = 0.1
"""


def write(tmp_path: pathlib.Path, text: str, name: str = "exp.toml") -> pathlib.Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(path: pathlib.Path, overrides=()) -> ExperimentError:
    with pytest.raises(ExperimentError) as info:
        experiment = load_experiment(path, overrides)
        prepare_data(experiment)
    return info.value


# --- loading --------------------------------------------------------------------------


@pytest.mark.parametrize("script", sorted(p.name for p in SCRIPTS.glob("*.toml")))
def test_every_script_loads_and_its_resolved_config_loads_back_the_same(tmp_path, script):
    experiment = load_experiment(SCRIPTS / script)
    config = experiment.resolved_config()
    json.dumps(config)    # plain data
    again = load_experiment(write(tmp_path, dump_toml(config)))
    assert again.resolved_config() == config


def test_defaults_are_filled_in_and_generators_get_the_seed(tmp_path):
    config = load_experiment(write(tmp_path, SMALL)).resolved_config()
    assert config["name"] == "exp"
    assert config["loss"] == "binary_crossentropy"
    assert config["dtype"] == "float32" and config["init"] == "he_normal"
    assert config["data"]["args"]["random_state"] == 1       # never the global RNG
    assert config["optimizer"]["b1"] == 0.9
    assert config["optimizer"]["learning_rate"]["end_value"] == 0.0
    assert config["checkpoint"] == {"every_steps": None, "every_epochs": 1, "keep": 3,
                                    "keep_best": None, "monitor": "val_loss"}
    assert config["early_stopping"] is None


def test_optimizer_with_schedule_and_clipping_builds_a_chain(tmp_path):
    optimizer = load_experiment(write(tmp_path, SMALL)).run.optimizer
    assert optimizer.name == "chain"
    names = [t.name for t in optimizer.hyperparams["transforms"]]
    assert names == ["clip_by_global_norm", "adam"]


def test_overrides_are_toml_values_or_plain_strings(tmp_path):
    assert parse_override("optimizer.b1=0.8") == ("optimizer.b1", 0.8)
    assert parse_override("data.args.n_samples=100") == ("data.args.n_samples", 100)
    assert parse_override("shuffle=false") == ("shuffle", False)
    assert parse_override("data.source=make_circles") == ("data.source", "make_circles")
    experiment = load_experiment(write(tmp_path, SMALL), [
        "optimizer.b1=0.8", "layers[0].output_dim=16", "layers.1.input_dim=16", "epochs=7"])
    assert experiment.run.optimizer.config()["b1"] == 0.8
    assert experiment.architecture.layers[0].output_dim == 16
    assert experiment.run.epochs == 7


def test_find_line_follows_tables_and_arrays_of_tables():
    text = SMALL
    lines = text.splitlines()
    assert lines[find_line(text, "optimizer.learning_rate.peak_value") - 1].startswith("peak_value")
    assert lines[find_line(text, "layers[1].output_dim") - 1] == "output_dim = 1"
    assert lines[find_line(text, "data.args.noise") - 1] == "noise = 0.1"
    assert lines[find_line(text, "data.args.missing") - 1] == "[data.args]"   # the table


# --- errors name the key, the file and the line ---------------------------------------


@pytest.mark.parametrize("old, new, key, words", [
    ("epochs = 3", 'epochs = "three"', "epochs", "must be an integer"),
    ("seed = 1", "seed = 1\nlearning_rate = 3", "learning_rate", "unknown key"),
    ("noise = 0.1", "nosie = 0.1", "data.args.nosie", "not an argument of make_moons"),
    ("noise = 0.1", "noise = -0.1", "data.args.noise", "parameter of make_moons must be"),
    ('activation = "relu"', 'activation = "relux"', "layers[0].activation", "did you mean 'relu'"),
    ("clip_by_global_norm = 1.0", "b1 = 1.5", "optimizer.b1", "in [0.0, 1.0)"),
    ("clip_by_global_norm = 1.0", 'b1 = "high"', "optimizer.b1", "got str 'high'"),
    ("clip_by_global_norm = 1.0", "lr = 0.1", "optimizer.lr", "not an argument of adam"),
    ("peak_value = 0.01", "peak_value = -1.0", "optimizer.learning_rate.peak_value", ">= 0"),
    ("decay_steps = 100", "decay_steps = 2", "optimizer.learning_rate.decay_steps", "must exceed"),
    ('name = "adam"', 'name = "adamm"', "optimizer.name", "did you mean 'adam'"),
    ("input_dim = 8", "input_dim = 9", "layers[1].input_dim", "output_dim = 8"),
    ("input_dim = 2", "input_dim = 5", "layers[0].input_dim", "has 2 features"),
    ("test_size = 0.2", "test_size = 1.5", "data.test_size", "in [0, 1)"),
    ("batch_size = 32", "batch_size = 0", "batch_size", '"full"'),
    ("standardize = true", "standardize = 1", "data.standardize", "true or false"),
])
def test_bad_values_name_key_file_and_line(tmp_path, old, new, key, words):
    text = SMALL.replace(old, new, 1)
    assert text != SMALL
    path = write(tmp_path, text)
    error = error_of(path)
    assert error.key == key
    assert words in str(error)
    assert str(path) in str(error)
    assert error.line is not None and f"line {error.line}" in str(error)
    line = text.splitlines()[error.line - 1]
    assert key.rsplit(".", 1)[-1].split("[")[0] in line or line.startswith("[")


def test_missing_required_keys_are_named(tmp_path):
    assert error_of(write(tmp_path, SMALL.replace("epochs = 3\n", ""))).key == "epochs"
    no_layers = SMALL[:SMALL.index("[[layers]]")] + SMALL[SMALL.index("[optimizer]"):]
    assert error_of(write(tmp_path, no_layers)).key == "layers"
    sgd = SMALL[:SMALL.index("[optimizer]")] + '[optimizer]\nname = "sgd"\n'
    assert error_of(write(tmp_path, sgd)).key == "optimizer.learning_rate"


def test_missing_files_are_named(tmp_path):
    error = error_of(tmp_path / "nowhere.toml")
    assert "nowhere.toml" in str(error) and "no such experiment file" in str(error)
    text = SMALL.replace('source = "make_moons"', 'path = "data/x.csv"\ntarget = "y"')
    text = text[:text.index("[data.args]")] + text[text.index("[[layers]]"):]
    error = error_of(write(tmp_path, text))
    assert error.key == "data.path" and "no such file" in str(error) and error.line == 6


def test_toml_syntax_error_names_the_file(tmp_path):
    error = error_of(write(tmp_path, "epochs = [1,\n"))
    assert "not valid TOML" in str(error) and "exp.toml" in str(error)


def test_errors_from_overrides_name_the_option(tmp_path):
    error = error_of(write(tmp_path, SMALL), ["optimizer.learning_rate.peak_value=fast"])
    assert error.key == "optimizer.learning_rate.peak_value"
    assert "--set optimizer.learning_rate.peak_value=fast" in str(error)
    with pytest.raises(ExperimentError, match="key=value"):
        load_experiment(write(tmp_path, SMALL), ["epochs"])


# --- data -----------------------------------------------------------------------------


def test_csv_and_npz_files_with_a_named_target(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(50, 2)), (rng.random(50) > 0.5).astype(float)
    (tmp_path / "d").mkdir()
    np.savetxt(tmp_path / "d" / "t.csv", np.column_stack([x[:, 0], y, x[:, 1]]),
               delimiter=",", header="a,label,b", comments="")
    np.savez(tmp_path / "d" / "t.npz", features=x, label=y)
    for name in ("t.csv", "t.npz"):
        _, xs, ys, _ = read_file(str(tmp_path / "d" / name), "label")
        np.testing.assert_allclose(xs, x)
        np.testing.assert_array_equal(ys, y)
        text = SMALL.replace('source = "make_moons"', f'path = "d/{name}"\ntarget = "label"')
        text = text[:text.index("[data.args]")] + text[text.index("[[layers]]"):]
        splits = prepare_data(load_experiment(write(tmp_path, text)))
        assert len(splits.x_train) + len(splits.x_val) + len(splits.x_test) == 50


def test_split_is_deterministic_stratified_and_standardised_on_train_only(tmp_path):
    experiment = load_experiment(write(tmp_path, SMALL))
    a, b = prepare_data(experiment), prepare_data(experiment)
    for part in ("x_train", "y_train", "x_val", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, part), getattr(b, part))
    assert len(a.x_test) == 60 and a.y_test.mean() == 0.5      # stratified: 30 of each
    np.testing.assert_allclose(a.scaler.transform_x(a.x_train).mean(axis=0), 0, atol=1e-12)
    assert abs(a.scaler.transform_x(a.x_test).mean()) > 1e-6   # not fitted on test
    other = prepare_data(experiment.with_settings(seed=2))
    assert not np.array_equal(other.x_test, a.x_test)


# --- running --------------------------------------------------------------------------


def test_run_writes_its_outputs_and_refuses_to_overwrite(tmp_path):
    experiment = load_experiment(write(tmp_path, SMALL))
    run_dir = tmp_path / "run"
    summary = run_experiment(experiment, run_dir, progress=False)
    for name in ("config.toml", "scaler.json", "history.csv", "summary.json"):
        assert (run_dir / name).stat().st_size > 0
    assert summary == json.loads((run_dir / "summary.json").read_text())
    assert {"train_loss", "val_loss", "test_loss", "test_accuracy", "step", "epoch",
            "params_digest", "seconds"} <= set(summary)
    assert summary["step"] == 3 * 7 and summary["epoch"] == 3
    with open(run_dir / "config.toml", "rb") as fh:
        assert tomllib.load(fh)["data"]["args"]["random_state"] == 1
    assert len((run_dir / "history.csv").read_text().splitlines()) == 4
    with pytest.raises(RunDirectoryError, match="already holds a run"):
        run_experiment(experiment, run_dir, progress=False)
    assert run_experiment(experiment, run_dir, force=True, progress=False)["params_digest"] \
        == summary["params_digest"]
    run = read_run(run_dir)
    assert run.checkpoint.state.step == 21 and run.experiment.name == "exp"


def test_resume_with_more_epochs_equals_one_longer_run(tmp_path):
    experiment = load_experiment(write(tmp_path, SMALL))
    run_experiment(experiment, tmp_path / "a", epochs=2, progress=False)
    resumed = run_experiment(experiment, tmp_path / "a", epochs=5, resume=True, progress=False)
    whole = run_experiment(experiment, tmp_path / "b", epochs=5, progress=False)
    assert resumed["params_digest"] == whole["params_digest"]
    assert resumed["test_loss"] == whole["test_loss"]


def test_resume_refuses_a_different_config_and_lists_the_differences(tmp_path):
    experiment = load_experiment(write(tmp_path, SMALL))
    run_experiment(experiment, tmp_path / "a", epochs=1, progress=False)
    changed = experiment.with_settings(**{"optimizer.b1": 0.8, "l2": 0.1})
    with pytest.raises(RunDirectoryError) as info:
        run_experiment(changed, tmp_path / "a", resume=True, progress=False)
    assert "optimizer.b1: this run has 0.8, the run's config.toml 0.9" in str(info.value)
    assert "l2: this run has 0.1, the run's config.toml 0.0" in str(info.value)


def test_regression_summary_compares_mse_with_the_variance(tmp_path):
    experiment = load_experiment(write(tmp_path, REGRESSION))
    summary = run_experiment(experiment, tmp_path / "r", progress=False)
    assert summary["task"] == "regression" and "test_accuracy" not in summary
    assert summary["test_mse"] > 0 and summary["test_variance"] > 0
    assert summary["val_loss"] is None
    scaler = json.loads((tmp_path / "r" / "scaler.json").read_text())
    assert scaler["y_mean"] is not None and len(scaler["x_mean"]) == 3


def test_checkpoint_every_replaces_the_epoch_policy(tmp_path):
    experiment = load_experiment(write(tmp_path, SMALL))
    run_experiment(experiment, tmp_path / "c", checkpoint_every=5, progress=False)
    steps = sorted(int(name[5:13]) for name in os.listdir(tmp_path / "c" / "checkpoints")
                   if name.endswith(".h5"))
    assert steps == [15, 20, 21]        # every 5 steps (keep 3), and the final one


def test_set_learning_rate_replaces_a_schedule(tmp_path):
    experiment = load_experiment(write(tmp_path, SMALL), ["optimizer.learning_rate=0.05"])
    assert experiment.resolved_config()["optimizer"]["learning_rate"] == 0.05
    run_experiment(experiment, tmp_path / "run", epochs=1, progress=False)
    peak = load_experiment(write(tmp_path, SMALL), ["optimizer.learning_rate.peak_value=0.05"])
    assert peak.resolved_config()["optimizer"]["learning_rate"]["peak_value"] == 0.05


@pytest.mark.parametrize("key, table", [("learning_rate", "optimizer"),
                                        ("test_size", "data"), ("keep", "checkpoint")])
def test_a_top_level_key_of_a_table_says_where_it_belongs(tmp_path, key, table):
    with pytest.raises(ExperimentError) as info:
        load_experiment(write(tmp_path, SMALL), [f"{key}=1"])
    assert f"{key} belongs in the [{table}] table: {table}.{key}" in str(info.value)
