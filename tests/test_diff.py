"""digests.csv (purenet.experiment.digests) and `purenet diff` (purenet.sweep.rundiff)."""

import os

import pytest

from purenet.cli import main
from purenet.checkpoint.rewind import state_at
from purenet.core.records import params_digest
from purenet.errors import RunDirectoryError
from purenet.experiment.config import load_experiment
from purenet.experiment import digests
from purenet.experiment.digests import DIGESTS, DigestLog, read_digests
from purenet.experiment.runner import fit_arrays, prepare_data, run_experiment
from purenet.sweep import diff
from _sweep_common import write_experiment

# The same decay until step 23, then another: two runs that part in the middle.
DECAY = """
[optimizer.learning_rate]
schedule = "exponential_decay"
init_value = 0.01
transition_steps = 23
staircase = true
decay_rate = {rate}
"""


def train(tmp_path, name, *overrides, epochs=3):
    path = write_experiment(tmp_path, name=name, epochs=epochs, sweep=None)
    run_dir = str(tmp_path / "runs" / name)
    run_experiment(load_experiment(path, overrides), run_dir, progress=False)
    return run_dir


def decayed(tmp_path, name, rate):
    path = write_experiment(tmp_path, name=name, epochs=4, every=10, sweep=None)
    with open(path) as fh:
        text = fh.read().replace("learning_rate = 0.01\n", "")
    with open(path, "w") as fh:
        fh.write(text + DECAY.format(rate=rate))
    run_dir = str(tmp_path / "runs" / name)
    run_experiment(load_experiment(path), run_dir, progress=False)
    return run_dir


def test_a_run_records_its_digest_every_ten_steps_and_at_its_end(tmp_path):
    run_dir = train(tmp_path, "a", epochs=3)         # 10 steps an epoch: 30 steps
    digests = read_digests(run_dir)
    assert sorted(digests) == [0, 10, 20, 30]
    experiment = load_experiment(os.path.join(run_dir, "config.toml"))
    x, y, validation = fit_arrays(experiment, prepare_data(experiment))
    for step in (0, 20):
        assert digests[step] == params_digest(state_at(run_dir, step, x, y, validation).params)


def test_a_resumed_run_drops_rows_past_its_checkpoint_and_keeps_one_trajectory(tmp_path):
    run_dir = train(tmp_path, "a", epochs=3)
    whole = read_digests(run_dir)
    path = os.path.join(run_dir, DIGESTS)
    with open(path, "a") as fh:           # rows a killed run wrote past its checkpoint,
        fh.write(digests._row(40, 4, "f" * 64) + "\n41,4,ab")   # and a torn last line
    experiment = load_experiment(os.path.join(run_dir, "config.toml"))
    run_experiment(experiment.with_settings(epochs=5), run_dir, resume=True, progress=False)
    resumed = read_digests(run_dir)
    assert sorted(resumed) == [0, 10, 20, 30, 40, 50]
    assert {s: resumed[s] for s in whole} == whole and resumed[40] != "f" * 64
    assert read_digests(train(tmp_path, "b", epochs=5)) == resumed


def test_two_runs_of_one_experiment_do_not_differ(tmp_path):
    result = diff(train(tmp_path, "a"), train(tmp_path, "b"))
    assert result.identical and result.compared_steps == 4 and result.last_equal_step == 30


def test_runs_of_other_seeds_differ_from_the_start(tmp_path, capsys):
    a, b = train(tmp_path, "a"), train(tmp_path, "b", "seed=1")
    result = diff(a, b)
    assert result.settings == (("seed", 0, 1),)
    assert result.first_divergent_step == 0 and result.exact and result.last_equal_step is None
    assert main(["diff", a, b]) == 0
    out = capsys.readouterr().out
    assert "seed: 0 vs 1" in out and "first divergent step: 0" in out


def test_a_divergence_between_recorded_steps_is_narrowed_to_the_exact_step(tmp_path, capsys):
    a, b = decayed(tmp_path, "a", 0.5), decayed(tmp_path, "b", 0.9)
    bracket = diff(a, b, replay=False)
    assert (bracket.last_equal_step, bracket.first_divergent_step, bracket.exact) == (20, 30, False)
    exact = diff(a, b)
    assert exact.exact and 20 < exact.first_divergent_step <= 30
    assert exact.settings == (("optimizer.learning_rate.decay_rate", 0.5, 0.9),)
    digests = []
    for run_dir in (a, b):
        experiment = load_experiment(os.path.join(run_dir, "config.toml"))
        x, y, validation = fit_arrays(experiment, prepare_data(experiment))
        digests.append([params_digest(state_at(run_dir, step, x, y, validation).params)
                        for step in (exact.first_divergent_step - 1, exact.first_divergent_step)])
    assert digests[0][0] == digests[1][0] and digests[0][1] != digests[1][1]
    assert main(["diff", a, b, "--no-replay"]) == 0
    assert "after 20, at or before 30" in capsys.readouterr().out


def test_diff_of_runs_without_digests_says_so_and_of_a_non_run_refuses(tmp_path, capsys):
    a, b = train(tmp_path, "a"), train(tmp_path, "b")
    os.remove(os.path.join(b, DIGESTS))
    assert diff(a, b).compared_steps == 0
    assert main(["diff", a, b]) == 0
    assert "no step recorded by both" in capsys.readouterr().out
    with pytest.raises(RunDirectoryError, match="not a run directory"):
        diff(a, str(tmp_path))
    assert main(["diff", a, str(tmp_path)]) == 1


def test_digest_log_checks_its_interval():
    with pytest.raises(ValueError, match="every must be an integer >= 1"):
        DigestLog("runs/x", every=0)


def test_an_edited_row_of_digests_csv_is_refused_by_every_reader(tmp_path, capsys):
    a, b = train(tmp_path, "a"), train(tmp_path, "b")
    path = os.path.join(a, DIGESTS)
    with open(path) as fh:
        lines = fh.read().split("\n")
    step, epoch, digest, check = lines[2].split(",")
    lines[2] = ",".join([step, epoch, "0" * 64, check])   # another digest, the old check
    with open(path, "w") as fh:
        fh.write("\n".join(lines))
    with pytest.raises(RunDirectoryError, match=r"digests.csv, line 3: .* is not a row purenet "
                                                r"wrote"):
        read_digests(a)
    assert main(["diff", a, b]) == 1
    assert "line 3" in capsys.readouterr().err
    experiment = load_experiment(os.path.join(a, "config.toml"))
    with pytest.raises(RunDirectoryError, match="line 3"):   # the resume, which keeps rows
        run_experiment(experiment.with_settings(epochs=6), a, resume=True, progress=False)


def test_a_recorded_divergence_the_replay_contradicts_is_refused(tmp_path):
    """A row rewritten whole, check and all: diff's replay sees that the run's digest at
    that step is not the recorded one, and says so instead of announcing a divergence."""
    a, b = train(tmp_path, "a"), train(tmp_path, "b")
    path = os.path.join(a, DIGESTS)
    with open(path) as fh:
        lines = fh.read().split("\n")
    step, epoch, *_ = lines[3].split(",")
    lines[3] = digests._row(int(step), int(epoch), "0" * 64)
    with open(path, "w") as fh:
        fh.write("\n".join(lines))
    with pytest.raises(RunDirectoryError, match=f"digests.csv records .* at step {step}, but a "
                                                "replay of the run gives"):
        diff(a, b)
