"""purenet sweep on a real Dask LocalCluster of two worker processes: every trial's bits are
the bits of its experiment trained alone; a sweep run again finds its trials."""

import json
import os

import pytest

distributed = pytest.importorskip("distributed")

from purenet.cli import main
from purenet.errors import RunDirectoryError
from purenet.sweep import load_sweep, read_results, run_sweep
from _sweep_common import alone_digest, summary, write_experiment


@pytest.fixture(scope="module")
def client():
    """A LocalCluster of two worker processes, as `purenet sweep` starts (shared by the
    tests here; the slow tests in test_sweep_kill.py let run_sweep start its own)."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        with distributed.Client(cluster) as ours:
            yield ours


def test_six_trials_on_two_workers_match_the_same_experiments_run_alone(tmp_path, client):
    path = write_experiment(tmp_path, epochs=15)
    sweep_dir = tmp_path / "runs" / "tiny"
    seen = []
    report = run_sweep(path, sweep_dir=sweep_dir, client=client,
                       on_start=lambda trials, workers: seen.append((len(trials), workers)))
    assert seen == [(6, 2)]
    assert not report.failures and len(report.outcomes) == 6
    sweep = load_sweep(path)
    pids = set()
    for trial, outcome in zip(sweep.trials, report.outcomes):
        trial_dir = str(sweep_dir / trial.id)
        assert outcome.trained and outcome.summary == summary(trial_dir)
        alone = alone_digest(trial_dir, str(tmp_path / "alone" / trial.id))
        assert outcome.summary["params_digest"] == alone, trial.id
        with open(os.path.join(trial_dir, "train.log")) as fh:
            pids.add(int(fh.readline().split("(pid ")[1].split(")")[0]))
    assert os.getpid() not in pids and len(pids) == 2   # trained in the two worker processes

    # `purenet train` on the experiment file with the trial's settings: the same bits.
    base = write_experiment(tmp_path / "alone", name="base", epochs=15, sweep=None)
    assert main(["train", base, "--run-dir", str(tmp_path / "cli"), "--no-progress",
                 "--set", "seed=1", "--set", "optimizer.learning_rate=0.01"]) == 0
    trial = next(t for t in sweep.trials if t.settings == {"seed": 1,
                                                           "optimizer.learning_rate": 0.01})
    assert summary(tmp_path / "cli")["params_digest"] == summary(sweep_dir / trial.id)[
        "params_digest"]

    keys, rows = read_results(sweep_dir)
    assert keys == ["seed", "optimizer.learning_rate"]
    assert [r["trial"] for r in rows] == [t.id for t in sweep.trials]
    assert [r["params_digest"] for r in rows] == [o.summary["params_digest"]
                                                  for o in report.outcomes]
    assert all(r["step"] == 15 * 10 and r["test_accuracy"] is not None for r in rows)


def test_a_sweep_run_again_is_refused_without_resume_and_skips_finished_trials_with_it(
        tmp_path, client):
    path = write_experiment(tmp_path, epochs=5, sweep="[sweep]\nseed = [0, 1]\n")
    sweep_dir = tmp_path / "runs"
    first = run_sweep(path, sweep_dir=sweep_dir, client=client)
    with open(sweep_dir / "results.csv") as fh:
        results = fh.read()
    with pytest.raises(RunDirectoryError, match=r"already holds 2 of this sweep's 2 trial "
                                                r"runs \(2 finished\); finish the sweep with"):
        run_sweep(path, sweep_dir=sweep_dir, client=client)
    again = run_sweep(path, sweep_dir=sweep_dir, client=client, resume=True)
    assert sorted(again.skipped) == sorted(t.id for t in load_sweep(path).trials)
    assert [o.summary for o in again.outcomes] == [o.summary for o in first.outcomes]
    assert not any(o.trained for o in again.outcomes)
    with open(sweep_dir / "results.csv") as fh:
        assert fh.read() == results
    with open(sweep_dir / "sweep.json") as fh:
        assert json.load(fh)["keys"] == ["seed"]


def test_a_trial_that_fails_is_reported_and_the_others_finish(tmp_path, client):
    # A learning rate so large that the run goes NaN is not an error of the file: the trial
    # stops (NonFiniteError) on its worker, and the sweep reports it.
    path = write_experiment(tmp_path, epochs=3, sweep="[sweep]\n\"optimizer.learning_rate\" "
                                                      "= [0.01, 1e300]\n")
    outcomes = run_sweep(path, sweep_dir=tmp_path / "runs", client=client).outcomes
    assert outcomes[0].error is None and outcomes[0].summary is not None
    assert outcomes[1].summary is None and "NonFiniteError" in outcomes[1].error


def test_workers_register_the_pieces_this_process_imported(tmp_path, client, pieces):
    path = write_experiment(tmp_path, epochs=3, sweep='[sweep]\nseed = [0, 1]\n')
    with open(path) as fh:
        text = fh.read().replace('activation = "relu"', 'activation = "swish"')
    with open(path, "w") as fh:
        fh.write(text)
    report = run_sweep(path, sweep_dir=tmp_path / "runs" / "swish", client=client)
    assert not report.failures, [o.error for o in report.outcomes]
    assert all(o.trained for o in report.outcomes)
    with open(tmp_path / "runs" / "swish" / report.outcomes[0].trial.id / "config.toml") as fh:
        assert '"swish"' in fh.read()
