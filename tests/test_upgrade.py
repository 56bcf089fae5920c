"""``purenet upgrade`` and ``purenet.checkpoint.upgrade_checkpoint``: format 1 and 2 files
rewritten as format 3, verified before they replace anything; a failure changes nothing."""

from __future__ import annotations

import os
import shutil

import pytest

import purenet as pn
from purenet.checkpoint import upgrade_checkpoint
from purenet.checkpoint.sealed import header_version
from purenet.cli.commands import main

DATA = os.path.join(os.path.dirname(__file__), "data")
V1, V2 = (os.path.join(DATA, f"v{v}-step-00000007.h5") for v in (1, 2))


def copied(source: str, directory) -> str:
    path = os.path.join(directory, "step-00000007.h5")
    shutil.copy(source, path)
    return path


def contents(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


# What the fixtures hold (tests/test_format_v1.py and test_format_v2.py say how they were
# made): the same run's step 7, written at these times.
CREATED = {V1: "2026-11-29T04:06:27", V2: "2026-11-29T06:03:36"}


@pytest.mark.parametrize("source", [V1, V2], ids=["v1", "v2"])
def test_an_old_file_is_refused_by_load_and_rewritten_in_place_as_format_3(tmp_path, source):
    path = copied(source, tmp_path)
    version = header_version(path)
    with pytest.raises(pn.LegacyCheckpointError,
                       match=rf"format {version} \(purenet 0.1\).*`purenet upgrade {path}`"):
        pn.load_checkpoint(path)
    done = upgrade_checkpoint(path)
    assert done.written and (done.from_version, done.to_version, done.step) == (version, 3, 7)
    assert header_version(path) == 3
    after = pn.load_checkpoint(path)
    assert after.format_version == 3 and after.state.step == 7
    assert after.created.startswith(CREATED[source])
    assert after.upgraded_from == {"format_version": version, "purenet_version": "0.1.0"}
    assert after.numerics == 1 and after.crossings == ()   # 0.1's kernels: numerics 1
    assert after.environment["blas"].startswith("openblas")   # the original's, kept
    assert sorted(os.listdir(tmp_path)) == ["step-00000007.h5"]   # no temp file left


def test_both_old_formats_upgrade_to_the_same_state(tmp_path):
    one, two = (pn.load_checkpoint(upgrade_checkpoint(source, tmp_path / f"{i}.h5").output)
                for i, source in enumerate((V1, V2)))
    assert one.params_digest == two.params_digest
    assert one.config.differences(two.config) == []   # v1 did not record epochs


def test_a_directory_of_old_files_is_refused_with_the_command_for_all_of_them(tmp_path):
    copied(V2, tmp_path)
    for load in (pn.load_checkpoint, lambda d: pn.fit(
            [{"input_dim": 3, "output_dim": 1, "activation": "sigmoid"}], [[0, 0, 0]], [1],
            checkpointer=pn.Checkpointer(d), resume=True, progress=False)):
        with pytest.raises(pn.LegacyCheckpointError,
                           match=rf"`purenet upgrade {tmp_path}` converts every checkpoint"):
            load(str(tmp_path))
    assert contents(os.path.join(tmp_path, "step-00000007.h5")) == contents(V2)


def test_output_dry_run_and_current_files(tmp_path):
    output = str(tmp_path / "new.h5")
    done = upgrade_checkpoint(V1, output)
    assert done.output == output and header_version(output) == 3 and header_version(V1) == 1
    with pytest.raises(pn.CheckpointError, match="exists already"):
        upgrade_checkpoint(V2, output)
    again = upgrade_checkpoint(output)   # current already: verified, left alone
    assert not again.written and again.from_version == again.to_version == 3
    path = copied(V2, tmp_path)
    before = contents(path)
    assert not upgrade_checkpoint(path, dry_run=True).written
    assert contents(path) == before and sorted(os.listdir(tmp_path)) == ["new.h5", "step-00000007.h5"]


def test_a_damaged_file_is_refused_and_left_as_it_was(tmp_path):
    path = copied(V2, tmp_path)
    with open(path, "r+b") as fh:
        fh.seek(os.path.getsize(path) // 2)
        byte = fh.read(1)
        fh.seek(-1, 1)
        fh.write(bytes([byte[0] ^ 1]))
    before = contents(path)
    with pytest.raises(pn.CorruptCheckpointError, match="digest"):
        upgrade_checkpoint(path)
    assert contents(path) == before and os.listdir(tmp_path) == ["step-00000007.h5"]


def test_the_command_upgrades_a_directory_and_reports_failures(tmp_path, capsys):
    copied(V2, tmp_path)
    shutil.copy(V1, tmp_path / "step-00000003.h5")
    assert main(["upgrade", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "step-00000003.h5: format 1 -> 3 (step 7), rewritten and verified" in out
    assert "step-00000007.h5: format 2 -> 3 (step 7), rewritten and verified" in out
    (tmp_path / "step-00000009.h5").write_bytes(b"not a checkpoint")
    assert main(["upgrade", str(tmp_path / "step-00000007.h5"),
                 str(tmp_path / "step-00000009.h5")]) == 1
    captured = capsys.readouterr()
    assert "format 3 already" in captured.out
    assert "purenet: error:" in captured.err and "step-00000009.h5" in captured.err


def test_every_reader_of_a_run_refuses_old_checkpoints_in_one_line_naming_upgrade(tmp_path,
                                                                                  capsys):
    from _sweep_common import write_experiment
    from purenet.experiment.config import load_experiment
    from purenet.experiment.runner import run_experiment

    run_dir = str(tmp_path / "run")
    run_experiment(load_experiment(write_experiment(tmp_path, name="run", epochs=1, sweep=None)),
                   run_dir, progress=False)
    checkpoints = os.path.join(run_dir, "checkpoints")
    for name in os.listdir(checkpoints):
        if name.startswith("step-"):
            os.remove(os.path.join(checkpoints, name))
    copied(V2, checkpoints)
    points = tmp_path / "points.csv"
    points.write_text("x0,x1\n0.5,0.5\n")
    capsys.readouterr()
    for command in (["inspect", run_dir], ["inspect", run_dir, "--json"],
                    ["evaluate", run_dir], ["predict", run_dir, str(points)],
                    ["plot", run_dir], ["rewind", run_dir, "--step", "3"],
                    ["verify", run_dir]):   # (diff reads checkpoints only to replay)
        assert main(command) == 1, command
        err = [line for line in capsys.readouterr().err.strip().splitlines()
               if not line.startswith("purenet: plot: ")]   # plot's progress lines
        assert len(err) == 1 and "format 2 (purenet 0.1)" in err[0], (command, err)
        assert "run `purenet upgrade " in err[0]
    assert contents(os.path.join(checkpoints, "step-00000007.h5")) == contents(V2)
