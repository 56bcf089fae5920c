"""Sweep files -> trials (purenet.sweep.spec), results.csv, the sweep plot, and the
`purenet sweep` message without Dask. No cluster is started here."""

import os
import sys

import pytest

from purenet.errors import ExperimentError, RunDirectoryError
from purenet.sweep.spec import load_sweep, trial_id
from _sweep_common import write_experiment

RANGES = """
[sweep]
seed = [0, 1]
n_random = 3
random_seed = 7

[sweep.ranges]
"layers[0].output_dim,layers[1].input_dim" = { low = 4, high = 32, integer = true }
"optimizer.learning_rate" = { low = 1e-4, high = 1e-1, log = true }
"layers[0].activation" = { choices = ["relu", "tanh"] }
"""


def test_a_grid_gives_every_combination_with_ids_from_the_settings(tmp_path):
    sweep = load_sweep(write_experiment(tmp_path))
    assert sweep.name == "tiny"
    assert sweep.keys == ("seed", "optimizer.learning_rate")
    assert [t.settings for t in sweep.trials] == [
        {"seed": s, "optimizer.learning_rate": lr} for s in (0, 1) for lr in (0.003, 0.01, 0.03)]
    ids = [t.id for t in sweep.trials]
    assert len(set(ids)) == 6 and ids[0].startswith("seed=0_learning_rate=0.003-")
    trial = sweep.trials[4]
    assert trial.experiment.run.seed == 1
    assert trial.experiment.run.optimizer.config()["learning_rate"] == 0.01
    assert trial.experiment.name == f"tiny-{trial.id}"


def test_trial_ids_are_stable_and_depend_on_the_settings_only(tmp_path):
    first = [t.id for t in load_sweep(write_experiment(tmp_path, epochs=20)).trials]
    again = [t.id for t in load_sweep(write_experiment(tmp_path, epochs=40)).trials]
    assert first == again
    assert trial_id({"seed": 0, "l2": 0.001}) == trial_id({"seed": 0, "l2": 1e-3})
    assert trial_id({"seed": 0, "l2": 0.001}) != trial_id({"seed": 0, "l2": 0.002})


def test_random_draws_are_seeded_within_their_ranges_and_crossed_with_the_grid(tmp_path):
    sweep = load_sweep(write_experiment(tmp_path, sweep=RANGES))
    assert len(sweep.trials) == 6
    assert [t.settings for t in load_sweep(sweep.path).trials] == [t.settings for t in sweep.trials]
    draws = {tuple((k, v) for k, v in t.settings.items() if k != "seed") for t in sweep.trials}
    assert len(draws) == 3                      # each draw is run with both seeds
    for trial in sweep.trials:
        width = trial.settings["layers[0].output_dim,layers[1].input_dim"]
        assert isinstance(width, int) and 4 <= width <= 32
        assert 1e-4 <= trial.settings["optimizer.learning_rate"] <= 1e-1
        assert trial.settings["layers[0].activation"] in ("relu", "tanh")
        assert trial.experiment.architecture.layers[0].output_dim == width
    other = load_sweep(write_experiment(tmp_path, sweep=RANGES.replace("= 7", "= 8")))
    assert [t.settings for t in other.trials] != [t.settings for t in sweep.trials]


@pytest.mark.parametrize("table, key, words", [
    ("", None, "has no [sweep] table"),
    ("[sweep]\nseed = 3\n", "sweep.seed", "non-empty list"),
    ("[sweep]\nseed = []\n", "sweep.seed", "non-empty list"),
    ("[sweep]\n", "sweep", "sweeps nothing"),
    ("[sweep]\nn_random = 2\n", "sweep.n_random", "needs [sweep.ranges]"),
    ("[sweep]\n[sweep.ranges]\nl2 = { low = 0.1, high = 0.2 }\n", "sweep.n_random", "n_random"),
    ("[sweep]\nn_random = 2\n[sweep.ranges]\nl2 = { low = 0.2, high = 0.1 }\n",
     "sweep.ranges.l2", "low < high"),
    ("[sweep]\nn_random = 2\n[sweep.ranges]\nl2 = { low = 0, high = 0.1, log = true }\n",
     "sweep.ranges.l2", "low > 0"),
    ("[sweep]\nn_random = 2\n[sweep.ranges]\nl2 = { low = 0, hi = 0.1 }\n",
     "sweep.ranges.l2", "unknown key"),
    ("[sweep]\nl2 = [0.1]\nn_random = 1\n[sweep.ranges]\nl2 = { low = 0.1, high = 0.2 }\n",
     "sweep", "both a grid axis and a range"),
    ("[sweep]\nseed = [0, 0]\n", "sweep", "twice"),
    ("[sweep]\nname = [\"a\", \"b\"]\n", "sweep.name", "cannot be swept"),
    ("[sweep]\nn_random = -1\n[sweep.ranges]\nl2 = { low = 0.1, high = 0.2 }\n",
     "sweep.n_random", "integer >= 0"),
])
def test_a_bad_sweep_table_is_refused_naming_the_key(tmp_path, table, key, words):
    with pytest.raises(ExperimentError) as caught:
        load_sweep(write_experiment(tmp_path, sweep=table))
    assert caught.value.key == key
    assert words in str(caught.value)


def test_a_bad_value_names_the_sweep_key_and_the_trial(tmp_path):
    path = write_experiment(tmp_path, sweep='[sweep]\n"optimizer.learning_rate" = [0.01, -1.0]\n')
    with pytest.raises(ExperimentError, match=r"\[sweep\] optimizer.learning_rate = -1.0 "
                                              r"\(trial learning_rate=-1.0-"):
        load_sweep(path)
    path = write_experiment(tmp_path, sweep='[sweep]\n"layers[5].output_dim" = [3]\n')
    with pytest.raises(ExperimentError, match="layers has 2 entries; there is no entry 5"):
        load_sweep(path)


def test_unquoted_dotted_keys_are_grid_axes_too(tmp_path):
    path = write_experiment(tmp_path, sweep="[sweep]\noptimizer.learning_rate = [0.1, 0.2]\n")
    assert load_sweep(path).keys == ("optimizer.learning_rate",)


def test_results_csv_round_trips_and_a_sweep_plot_has_error_bars(tmp_path):
    from purenet.sweep.plot import plot_sweep
    from purenet.sweep.results import read_results, result_rows, write_record, write_results

    sweep = load_sweep(write_experiment(tmp_path))
    sweep_dir = str(tmp_path / "runs")
    os.makedirs(sweep_dir)
    with pytest.raises(RunDirectoryError, match="not a sweep directory"):
        read_results(sweep_dir)
    write_record(sweep_dir, sweep)
    with pytest.raises(RunDirectoryError, match="no trial has finished"):
        plot_sweep(sweep_dir)
    done = [(t.id, t.settings, {"step": 10, "epoch": 1, "test_accuracy": 0.5 + i / 20,
                                "test_loss": None, "params_digest": "ab" * 32, "seconds": 1.5})
            for i, t in enumerate(sweep.trials)]
    write_results(sweep_dir, *result_rows(sweep.keys, done))
    keys, rows = read_results(sweep_dir)
    assert keys == ["seed", "optimizer.learning_rate"]
    assert rows[5] == {"trial": sweep.trials[5].id, "seed": 1, "optimizer.learning_rate": 0.03,
                       "step": 10, "epoch": 1, "test_accuracy": 0.75, "test_loss": None,
                       "params_digest": "ab" * 32, "seconds": 1.5}
    paths = plot_sweep(sweep_dir)
    assert [os.path.basename(p) for p in paths] == [
        "test_accuracy_vs_optimizer.learning_rate.png"]
    with open(paths[0], "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="no metric 'val_r2'"):
        plot_sweep(sweep_dir, metric="val_r2")


def test_purenet_sweep_without_dask_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    from purenet.cli import main

    monkeypatch.setitem(sys.modules, "distributed", None)     # import distributed fails
    assert main(["sweep", write_experiment(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["purenet: error: purenet sweep needs Dask: pip install 'purenet[dask]'"]
    from purenet.sweep import run_sweep

    with pytest.raises(ImportError, match=r"pip install 'purenet\[dask\]'"):
        run_sweep(write_experiment(tmp_path))


def test_the_example_sweep_file_loads():
    path = os.path.join(os.path.dirname(__file__), "..", "scripts", "sweeps", "moons.toml")
    sweep = load_sweep(path)
    assert len(sweep.trials) == 24 and sweep.name == "moons-sweep"
    widths = {t.experiment.architecture.layers[1].input_dim for t in sweep.trials}
    assert widths == {4, 16}


def test_default_workers_fit_the_trials_blas_threads_into_the_cores(tmp_path):
    from purenet.sweep.run import default_workers

    trials = list(load_sweep(write_experiment(tmp_path)).trials)
    assert default_workers(trials, cores=2) == 2
    assert default_workers(trials[:1], cores=8) == 1          # no more workers than trials
    two = list(load_sweep(write_experiment(
        tmp_path, sweep="[sweep]\nseed = [0, 1, 2, 3]\nthreads = [2]\n")).trials)
    assert default_workers(two, cores=2) == 1 and default_workers(two, cores=8) == 4
