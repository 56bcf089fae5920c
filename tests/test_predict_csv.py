"""``purenet predict`` and ``evaluate --data`` read the user's columns by name (or, with
``--no-header``, by position, explicitly), never lose a row, and refuse what they cannot
read, saying which column, line or file."""

from __future__ import annotations

import json
import os
import pathlib

import numpy as np
import pytest

from purenet.cli import commands as cli
from purenet.experiment.config import load_experiment
from purenet.experiment.csvfile import read_csv
from purenet.experiment.readrun import read_run
from purenet.experiment.runner import run_experiment

EXPERIMENT = """\
seed = 2
epochs = 3

[data]
path = "train.csv"
target = "label"
standardize = true

[[layers]]
input_dim = 3
output_dim = 8
activation = "relu"

[[layers]]
input_dim = 8
output_dim = 1
activation = "sigmoid"

[optimizer]
name = "adam"
learning_rate = 0.01
"""
ROWS = np.array([[0.1, 5.0, -3.0], [2.0, -1.0, 0.5], [-0.7, 0.0, 9.0]])


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 3)) * [1, 10, 100]
    y = (x[:, 0] > 0).astype(float)
    np.savetxt(root / "train.csv", np.column_stack([x[:, 0], y, x[:, 1:]]), delimiter=",",
               header="alpha,label,beta,gamma", comments="")
    (root / "exp.toml").write_text(EXPERIMENT)
    run_experiment(load_experiment(root / "exp.toml"), root / "run", progress=False)
    return root


def expected(root: pathlib.Path, x: np.ndarray) -> list[float]:
    return read_run(root / "run").model().predict_proba(x)[:, 1].tolist()


def predict(root: pathlib.Path, text: str, *options: str, capsys) -> tuple[int, str, str]:
    path = root / "input.csv"
    path.write_text(text)
    code = cli.main(["predict", str(root / "run"), str(path), *options])
    out, err = capsys.readouterr()
    return code, out, err


def probabilities(out: str) -> list[float]:
    lines = out.splitlines()
    assert lines[0] == "p_1,class"
    return [float(line.split(",")[0]) for line in lines[1:]]


def csv_text(header: str | None, rows: np.ndarray) -> str:
    body = "".join(",".join(repr(float(v)) for v in row) + "\n" for row in rows)
    return (header + "\n" if header else "") + body


def test_columns_are_matched_by_name_in_any_order(run, capsys):
    code, out, _ = predict(run, csv_text("gamma,alpha,beta", ROWS[:, [2, 0, 1]]),
                           capsys=capsys)
    assert code == 0 and probabilities(out) == expected(run, ROWS)


def test_the_target_column_may_be_present_and_is_ignored(run, capsys):
    rows = np.column_stack([ROWS, [1, 0, 1]])
    code, out, _ = predict(run, csv_text("alpha,beta,gamma,label", rows), capsys=capsys)
    assert code == 0 and probabilities(out) == expected(run, ROWS)


def test_no_header_takes_every_row_by_position(run, capsys):
    code, out, _ = predict(run, csv_text(None, ROWS), "--no-header", capsys=capsys)
    assert code == 0 and probabilities(out) == expected(run, ROWS)   # 3 rows in, 3 out


def test_a_headerless_file_without_the_option_is_refused_not_shortened(run, capsys):
    code, out, err = predict(run, csv_text(None, ROWS), capsys=capsys)
    assert code == 1 and out == ""
    assert "holds numbers, not column names" in err and "--no-header" in err


@pytest.mark.parametrize("header, words", [
    ("alpha,beta", "missing ['gamma']"),
    ("alpha,beta,gamma,delta", "unknown ['delta']"),
    ("alpha,beta,beta", "names the column(s) ['beta'] more than once"),
    ("a,b,c", "missing ['alpha', 'beta', 'gamma']; unknown ['a', 'b', 'c']"),
])
def test_missing_unknown_and_repeated_columns_are_named(run, capsys, header, words):
    n = len(header.split(","))
    code, out, err = predict(run, csv_text(header, np.ones((2, n))), capsys=capsys)
    assert code == 1 and out == "" and words in err, err


def test_no_header_with_the_wrong_number_of_columns_is_refused(run, capsys):
    code, _, err = predict(run, "1,2\n3,4\n", "--no-header", capsys=capsys)
    assert code == 1 and "has 2 columns; the network takes 3" in err


def test_a_bad_value_names_its_line_and_column(run, capsys):
    code, _, err = predict(run, "alpha,beta,gamma\n1,2,3\n4,five,6\n", capsys=capsys)
    assert code == 1 and "line 3, column 2 ('beta'): 'five' is not a finite number" in err
    code, _, err = predict(run, "alpha,beta,gamma\n1,2,3\n4,5,nan\n", capsys=capsys)
    assert code == 1 and "line 3, column 3 ('gamma'): 'nan'" in err


def test_a_field_over_the_csv_limit_is_an_error_not_a_traceback(run, capsys):
    code, _, err = predict(run, "alpha," + "b" * 200_000 + ",gamma\n1,2,3\n", capsys=capsys)
    assert code == 1 and "line 1: not a valid CSV row: field larger than field limit" in err


@pytest.mark.parametrize("kind, words", [("device", "is a device"), ("fifo", "is a FIFO")])
def test_only_regular_files_are_read(run, capsys, tmp_path, kind, words):
    path = tmp_path / "input.csv"
    os.symlink("/dev/zero", path) if kind == "device" else os.mkfifo(path)
    assert cli.main(["predict", str(run / "run"), str(path)]) == 1
    assert words in capsys.readouterr().err


def test_an_input_over_the_size_bound_is_refused(run, capsys, monkeypatch):
    from purenet.cli import readers

    monkeypatch.setattr(readers, "MAX_PREDICT_BYTES", 10)
    code, _, err = predict(run, csv_text("alpha,beta,gamma", ROWS), capsys=capsys)
    assert code == 1 and "more than the 10 bytes purenet reads as a CSV file" in err


def test_output_into_a_missing_directory_names_the_output_not_a_temp_file(run, capsys):
    code, _, err = predict(run, csv_text("alpha,beta,gamma", ROWS), "--output",
                           str(run / "nodir" / "out.csv"), capsys=capsys)
    assert code == 1 and "out.csv" in err and ".tmp-" not in err
    assert "does not exist" in err


def test_evaluate_data_matches_columns_by_name(run, capsys, tmp_path):
    path = tmp_path / "more.csv"
    path.write_text(csv_text("gamma,label,alpha,beta", np.column_stack(
        [ROWS[:, 2], [1, 0, 0], ROWS[:, 0], ROWS[:, 1]])))
    assert cli.main(["evaluate", str(run / "run"), "--data", str(path), "--target",
                     "label", "--json"]) == 0
    assert '"samples": 3' in capsys.readouterr().out
    path.write_text(csv_text("alpha,label,beta,delta", np.ones((2, 4))))
    assert cli.main(["evaluate", str(run / "run"), "--data", str(path), "--target",
                     "label"]) == 1
    assert "missing ['gamma']; unknown ['delta']" in capsys.readouterr().err


# --- training data files ----------------------------------------------------------------


def test_a_training_file_with_a_repeated_target_column_is_refused(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,label,b,label\n1,0,2,1\n3,1,4,0\n")
    with pytest.raises(ValueError, match=r"names the column\(s\) \['label'\] more than once"):
        read_csv(str(path))
    experiment = (tmp_path / "exp.toml")
    experiment.write_text(EXPERIMENT.replace("train.csv", "d.csv").replace(
        "input_dim = 3", "input_dim = 2"))
    assert cli.main(["train", str(experiment), "--run-dir", str(tmp_path / "r")]) == 1


def test_a_regression_file_meeting_a_sigmoid_says_the_targets_are_not_labels(tmp_path, capsys):
    rng = np.random.default_rng(1)
    values = rng.normal(size=(300, 4))
    np.savetxt(tmp_path / "train.csv", values, delimiter=",",
               header="alpha,label,beta,gamma", comments="")
    (tmp_path / "exp.toml").write_text(EXPERIMENT)
    assert cli.main(["train", str(tmp_path / "exp.toml"), "--run-dir",
                     str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert "are not class labels: 300 of 300 are not labels 0 and 1" in err
    assert 'loss = "mean_squared_error"' in err and 'activation = "linear"' in err
    assert len(err) < 900 and "least populated" not in err
    assert not (tmp_path / "r" / "config.toml").exists()    # failed before training


def test_evaluate_refuses_data_or_scaler_changed_since_training(tmp_path, capsys):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(60, 3))
    table = np.column_stack([x[:, 0], (x[:, 0] > 0).astype(float), x[:, 1:]])
    header = dict(delimiter=",", header="alpha,label,beta,gamma", comments="")
    np.savetxt(tmp_path / "train.csv", table, **header)
    (tmp_path / "exp.toml").write_text(EXPERIMENT)
    run_experiment(load_experiment(tmp_path / "exp.toml"), tmp_path / "run", progress=False)
    assert cli.main(["evaluate", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    # A valid scaler, but not the run's: same shapes, other numbers.
    scaler = (tmp_path / "run" / "scaler.json").read_text()
    plain = json.loads(scaler)
    plain["x_mean"] = [m + 0.5 for m in plain["x_mean"]]
    (tmp_path / "run" / "scaler.json").write_text(json.dumps(plain))
    for command in (["evaluate"], ["predict"]):   # the digest the marker records: any reader
        argv = [*command, str(tmp_path / "run")] + ([str(tmp_path / "train.csv")]
                                                    if command == ["predict"] else [])
        assert cli.main(argv) == 1
        assert "scaler.json was changed after purenet wrote it" in capsys.readouterr().err
    # Without that digest (a run of purenet 0.2), evaluate still sees it from the data.
    marker_path = tmp_path / "run" / ".purenet-run"
    marker = json.loads(marker_path.read_text())
    del marker["files"]["scaler.json"]
    marker_path.write_text(json.dumps(marker))
    assert cli.main(["evaluate", str(tmp_path / "run")]) == 1
    assert "scaler.json is not the run's" in capsys.readouterr().err
    (tmp_path / "run" / "scaler.json").write_text(scaler)
    # The data file edited after training: the split would hold other rows.
    table[5, 0] += 1.0
    np.savetxt(tmp_path / "train.csv", table, **header)
    assert cli.main(["evaluate", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert "is not what its checkpoint was trained on" in err and "train.csv changed" in err
