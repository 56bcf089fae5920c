"""Hardening III: every file purenet reads is bounded, every file it writes is its own.

Hostile inputs against the surfaces around checkpoints: locks that are symlinks, outputs
onto a run's own files, devices and FIFOs, run files that are huge, deep, endless or edited,
sweep files that describe absurd work. Each must be refused in one line naming the file and
what to do, with nothing a user owns changed, no traceback, no hang."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from _checkpoint_common import child_env
from _sweep_common import write_experiment

import purenet as pn
from purenet.checkpoint.lock import DirectoryLock
from purenet.cli import main
from purenet.errors import ExperimentError, RunDirectoryError
from purenet.experiment import limits
from purenet.experiment.config import load_experiment
from purenet.experiment.csvfile import check_names, read_csv
from purenet.experiment.runner import run_experiment


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    run_dir = root / "run"
    run_experiment(load_experiment(write_experiment(root, name="run", epochs=2, sweep=None)),
                   str(run_dir), progress=False)
    return run_dir


@pytest.fixture
def copy(run, tmp_path):
    target = tmp_path / "run"
    shutil.copytree(run, target)
    return target


def one_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("purenet: error:") == 1, err
    return err


# --- writes that are not purenet's to make ------------------------------------------------


@pytest.mark.parametrize("name", [".lock", ".trial.lock"])
def test_a_lock_that_is_a_symlink_is_refused_and_the_file_it_names_untouched(tmp_path, name):
    mine = tmp_path / "precious.txt"
    mine.write_text("a user's file\n")
    directory = tmp_path / "ck"
    directory.mkdir()
    os.symlink(mine, directory / name)
    with pytest.raises(pn.CheckpointLockedError, match=f"{name} is a symlink"):
        DirectoryLock(str(directory), name).acquire()
    assert mine.read_text() == "a user's file\n"


def test_a_lock_that_is_a_fifo_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / ".lock")
    with pytest.raises(pn.CheckpointLockedError, match="is a FIFO, not the lock file"):
        DirectoryLock(str(tmp_path)).acquire()


@pytest.mark.parametrize("target", ["checkpoints/NEWEST", "config.toml", "summary.json",
                                    "scaler.json", ".purenet-run"])
def test_rewind_never_writes_over_the_run_s_own_files(copy, capsys, target):
    newest = sorted((copy / "checkpoints").glob("step-*.h5"))[-1].name
    path = copy / target.replace("NEWEST", newest)
    before = path.read_bytes()
    assert main(["rewind", str(copy), "--step", "2", "--output", str(path)]) == 1
    assert "an output never replaces the run's own files" in one_error(capsys)
    assert path.read_bytes() == before


def test_predict_never_writes_over_the_run_s_own_files(copy, tmp_path, capsys):
    points = tmp_path / "points.csv"
    points.write_text("x0,x1\n0.1,0.2\n")
    before = (copy / "summary.json").read_bytes()
    assert main(["predict", str(copy), str(points), "--output", str(copy / "summary.json")]) == 1
    assert "an output never replaces the run's own files" in one_error(capsys)
    assert (copy / "summary.json").read_bytes() == before


@pytest.mark.parametrize("command", ["predict", "rewind"])
def test_an_output_onto_a_fifo_a_device_or_a_symlink_is_refused(copy, tmp_path, capsys,
                                                               command):
    points = tmp_path / "points.csv"
    points.write_text("x0,x1\n0.1,0.2\n")
    os.mkfifo(tmp_path / "fifo")
    os.symlink(points, tmp_path / "link")
    args = [str(copy), str(points)] if command == "predict" else [str(copy), "--step", "2"]
    for output, words in ((tmp_path / "fifo", "is a FIFO"), ("/dev/null", "is a device"),
                          (tmp_path / "link", "is a symlink")):
        assert main([command, *args, "--output", str(output)]) == 1
        assert words in one_error(capsys)
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")
    assert os.path.islink(tmp_path / "link") and points.read_text() == "x0,x1\n0.1,0.2\n"


def test_upgrade_names_the_directory_it_cannot_write(tmp_path, capsys):
    source = os.path.join(os.path.dirname(__file__), "data", "v2-step-00000007.h5")
    missing = tmp_path / "nowhere" / "out.h5"
    assert main(["upgrade", source, "--output", str(missing)]) == 1
    err = one_error(capsys)
    assert f"the directory {tmp_path / 'nowhere'} does not exist" in err and ".tmp-" not in err
    if os.geteuid() != 0:   # root writes into a read-only directory anyway
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        assert main(["upgrade", source, "--output", str(locked / "out.h5")]) == 1
        assert "is not writable" in one_error(capsys)


# --- reads without bounds ----------------------------------------------------------------


def test_a_run_file_linked_to_dev_zero_or_a_fifo_is_refused_at_once(copy, capsys):
    (copy / "summary.json").unlink()
    os.symlink("/dev/zero", copy / "summary.json")
    with pytest.raises(ValueError, match="summary.json is a device, not a summary file"):
        from purenet.sweep.trial import finished_summary
        finished_summary(str(copy), load_experiment(str(copy / "config.toml")))
    (copy / "config.toml").unlink()
    os.mkfifo(copy / "config.toml")
    assert main(["diff", str(copy), str(copy)]) == 1
    assert "config.toml is a FIFO" in one_error(capsys)


def test_deeply_nested_run_files_are_an_error_not_a_recursion(copy, capsys):
    (copy / "scaler.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match="nests 100000 levels deep"):
        pn.load_run(copy)
    for command in (["evaluate", str(copy)], ["predict", str(copy), str(copy / "config.toml")]):
        assert main(command) == 1
        assert "nests 100000 levels deep" in one_error(capsys)
    (copy / "config.toml").write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")
    assert main(["diff", str(copy), str(copy)]) == 1
    assert "nest" in one_error(capsys)


def sparse_file(path, size):
    with open(path, "wb") as fh:
        fh.truncate(size)


def test_a_3_gb_digests_csv_is_refused_before_it_is_read(copy, capsys):
    sparse_file(copy / "digests.csv", 3 * 2**30)
    assert main(["diff", str(copy), str(copy)]) == 1
    assert "more than the 256.0 MiB purenet reads as a digests file" in one_error(capsys)
    experiment = load_experiment(str(copy / "config.toml"))
    with pytest.raises(RunDirectoryError, match="delete it to start the trail afresh"):
        run_experiment(experiment.with_settings(epochs=3), str(copy), resume=True,
                       progress=False)


MEASURE_CSV = r"""
import json, sys
from purenet.experiment.csvfile import read_csv
def high_water_mb():
    with open("/proc/self/status") as fh:
        return next(int(l.split()[1]) for l in fh if l.startswith("VmHWM:")) / 1024
try:
    read_csv(sys.argv[1])
    outcome = "read"
except ValueError as error:
    outcome = str(error)
print(json.dumps({"outcome": outcome, "peak_mb": high_water_mb()}))
"""


def test_a_100_mb_csv_line_is_refused_in_a_few_hundred_mb(tmp_path):
    path = tmp_path / "long.csv"
    with open(path, "w") as fh:
        fh.write("a,b\n1," + "1" * (100 * 2**20) + "\n")
    proc = subprocess.run([sys.executable, "-c", MEASURE_CSV, str(path)], env=child_env(),
                          capture_output=True, text=True, timeout=120)
    found = json.loads(proc.stdout.splitlines()[-1])
    assert "line 2: longer than 16.0 MiB" in found["outcome"]
    assert found["peak_mb"] < 400, found


def test_a_csv_of_classic_mac_line_ends_is_read(tmp_path):
    path = tmp_path / "mac.csv"
    path.write_bytes(b"a,b\r1,2\r3,4\r")
    names, values = read_csv(str(path))
    assert names == ["a", "b"] and values.tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_many_columns_are_checked_in_linear_time(tmp_path):
    names = [f"c{i}" for i in range(200_000)]
    check_names("wide.csv", names)   # 200,000 names: a quadratic check would take minutes
    with pytest.raises(ValueError, match=r"names the column\(s\) \['c7'\] more than once"):
        check_names("wide.csv", [*names, "c7"])


# --- work without bounds -------------------------------------------------------------------


GRID = """
[sweep]
"optimizer.learning_rate" = [{values}]
seed = [{values}]
"l2" = [{values}]
"layers[0].output_dim,layers[1].input_dim" = [{values}]
"""


@pytest.mark.parametrize("sweep, words", [
    (GRID.format(values=", ".join(str(i + 1) for i in range(1000))), "describes 1,000,000,000,000 "
                                                                    "trials, more than the 10,000"),
    ("[sweep]\nn_random = 1000000000000\n[sweep.ranges]\nl2 = { low = 0.0, high = 0.1 }\n",
     "describes 1,000,000,000,000 trials"),
    ('[sweep]\n"" = [1, 2]\n', "is not a setting's key"),
    ('[sweep]\n"." = [1, 2]\n', "is not a setting's key"),
    ('[sweep]\n"[]" = [1, 2]\n', "is not a setting's key"),
    ("[sweep]\nn_random = 2\n[sweep.ranges]\nl2 = { low = 0.0, high = inf }\n",
     "sweep.ranges.l2: needs finite numbers low < high"),
])
def test_sweep_files_that_describe_absurd_work_are_refused_at_once(tmp_path, sweep, words):
    from purenet.sweep.spec import load_sweep

    path = write_experiment(tmp_path, name="big", epochs=1, sweep=sweep)
    with pytest.raises(ExperimentError, match=words):
        load_sweep(path)


def test_workers_are_capped_at_the_trials_and_the_cores(tmp_path, capsys):
    from purenet.sweep.run import _cores, planned_workers
    from purenet.sweep.spec import load_sweep

    path = write_experiment(tmp_path, name="two", epochs=1, sweep="[sweep]\nseed = [0, 1]\n")
    trials = list(load_sweep(path).trials)
    assert planned_workers(32, trials) == min(2, _cores())
    with pytest.raises(ValueError, match="workers must be an integer from 1 to 1024"):
        planned_workers(10**20, trials)
    with pytest.raises(SystemExit):
        main(["sweep", path, "--workers", "99999999999999999999"])
    assert "must be an integer from 1 to 1024" in capsys.readouterr().err


def test_a_scheduler_that_is_not_one_is_refused_in_one_line(tmp_path, capsys):
    pytest.importorskip("distributed")
    path = write_experiment(tmp_path, name="s", epochs=1, sweep="[sweep]\nseed = [0, 1]\n")
    assert main(["sweep", path, "--scheduler", "inproc://nothing",
                 "--sweep-dir", str(tmp_path / "sw")]) == 1
    assert "could not connect to the Dask scheduler at 'inproc://nothing'" in one_error(capsys)


# --- a run's files trusted evenly -------------------------------------------------------------


@pytest.mark.parametrize("value", [["0.5", "1"], [True, 0.5], "1.5"])
def test_scaler_numbers_must_be_numbers(copy, value):
    plain = json.loads((copy / "scaler.json").read_text())
    plain["x_mean"] = value
    (copy / "scaler.json").write_text(json.dumps(plain))
    with pytest.raises(ValueError, match="x_mean must be a number or a list of numbers"):
        pn.load_run(copy)


def test_an_edited_scaler_is_refused_by_every_reader(copy, capsys, tmp_path):
    plain = json.loads((copy / "scaler.json").read_text())
    plain["feature_names"] = plain["feature_names"][::-1]   # valid, but not the run's
    (copy / "scaler.json").write_text(json.dumps(plain))
    points = tmp_path / "points.csv"
    points.write_text("x0,x1\n0.1,0.2\n")
    with pytest.raises(RunDirectoryError, match="scaler.json was changed after purenet wrote"):
        pn.load_run(copy)
    for command in (["predict", str(copy), str(points)], ["evaluate", str(copy)]):
        assert main(command) == 1
        assert "scaler.json was changed after purenet wrote it" in one_error(capsys)


def test_an_edited_summary_is_refused_by_a_resumed_sweep(copy):
    from purenet.sweep.trial import finished_summary

    summary = json.loads((copy / "summary.json").read_text())
    summary["test_accuracy"] = 1.0
    (copy / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(RunDirectoryError, match="summary.json was changed after purenet"):
        finished_summary(str(copy), load_experiment(str(copy / "config.toml")))


# --- tracebacks and wrong words ----------------------------------------------------------------


@pytest.mark.parametrize("argv", [["example"], ["example", "circles"], ["inspect", "RUN", "--json"]])
def test_a_closed_stdout_is_an_error_not_lost_output(run, argv):
    argv = [str(run) if a == "RUN" else a for a in argv]
    proc = subprocess.run(f"{sys.executable} -m purenet {' '.join(argv)} >&-", shell=True,
                          env=child_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "standard output is closed" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_the_caps_are_stated_for_every_kind_of_file():
    assert limits.MAX_BYTES["a digests file (digests.csv)"] == 256 * limits.MIB
    with open(os.path.join(os.path.dirname(__file__), "..", "docs", "files.md")) as fh:
        text = fh.read()
    for kind, cap in limits.MAX_BYTES.items():
        name = kind.split(" (")[0].split(" ", 1)[1]   # "an experiment file" -> "experiment file"
        assert limits.human(cap) in text and name in text, kind
