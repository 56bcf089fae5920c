"""The scope of bit identity (purenet/checkpoint/scope.py): a run resumed, rewound or verified
under another numerics version, numpy or BLAS goes on with one warning naming what changed,
and every later checkpoint records the step where it crossed; inspect and verify show it."""

from __future__ import annotations

import json
import os
import warnings

import pytest
from _sweep_common import write_experiment

import purenet as pn
from purenet.checkpoint import machine, scope
from purenet.cli import main
from purenet.core import numerics
from purenet.experiment.config import load_experiment
from purenet.experiment.runner import run_experiment
from purenet.sweep import verify

OTHER_BLAS = "openblas 0.0.1 (Prescott)"


def elsewhere(monkeypatch, blas=OTHER_BLAS):
    """This process, as if its BLAS were another."""
    real = machine.environment()
    monkeypatch.setattr(machine, "environment", lambda: {**real, "blas": blas})


def train(tmp_path, epochs, resume=False):
    path = write_experiment(tmp_path, name="a", epochs=4, every=10, sweep=None)
    run_dir = str(tmp_path / "a")
    run_experiment(load_experiment(path), run_dir, resume=resume, epochs=epochs,
                   progress=False)
    return run_dir


@pytest.fixture
def crossed(tmp_path, monkeypatch):
    """A run of 40 steps trained here to step 20, then resumed to its end under another BLAS."""
    run_dir = train(tmp_path, 2)
    elsewhere(monkeypatch)
    with pytest.warns(pn.CheckpointWarning) as caught:
        train(tmp_path, 4, resume=True)
    monkeypatch.undo()
    return run_dir, [str(w.message) for w in caught]


def test_a_resume_under_another_blas_warns_once_and_later_checkpoints_record_the_crossing(
        crossed):
    run_dir, messages = crossed
    assert len(messages) == 1
    assert f"blas: saved with '{machine.environment()['blas']}', now '{OTHER_BLAS}'" in messages[0]
    assert "crossed at step 20" in messages[0]
    newest = pn.load_checkpoint(os.path.join(run_dir, "checkpoints"))
    assert newest.state.step == 40
    assert [c.to_dict() for c in newest.crossings] == [
        {"step": 20, "changed": {"blas": [machine.environment()["blas"], OTHER_BLAS]}}]
    assert newest.scope["blas"] == OTHER_BLAS


def test_a_second_resume_in_the_same_scope_keeps_the_record_without_a_warning(
        crossed, tmp_path, monkeypatch):
    run_dir, _ = crossed
    elsewhere(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train(tmp_path, 5, resume=True)
    newest = pn.load_checkpoint(os.path.join(run_dir, "checkpoints"))
    assert newest.state.step == 50 and [c.step for c in newest.crossings] == [20]


def test_inspect_shows_the_numerics_the_environment_and_the_crossings(crossed, capsys):
    run_dir, _ = crossed
    assert main(["inspect", run_dir, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["numerics"] == numerics.NUMERICS_VERSION
    assert info["environment"]["blas"] == OTHER_BLAS
    assert info["crossings"] == [{"step": 20, "changed": {
        "blas": [machine.environment()["blas"], OTHER_BLAS]}}]
    assert info["scope_here"] == scope.here()
    assert main(["inspect", run_dir]) == 0
    out = capsys.readouterr().out
    assert f"the run crossed scopes at step 20: blas {machine.environment()['blas']} -> " \
           f"{OTHER_BLAS}" in out
    assert "scope here" in out and f"other: blas {machine.environment()['blas']}" in out


@pytest.mark.filterwarnings("default::purenet.errors.CheckpointWarning")   # the CLI prints it
def test_verify_replays_from_after_the_crossing_and_says_a_mismatch_proves_nothing(
        crossed, capsys):
    """Here, the steps after the crossing were computed 'elsewhere': the replay is no
    witness, and verify says so rather than calling resume inexact."""
    run_dir, _ = crossed
    with pytest.warns(pn.CheckpointWarning, match="replaying .* under another"):
        result = verify(run_dir)
    assert result.from_step == 30 and result.to_step == 40   # after the crossing at 20
    assert result.replay_crossing == {"step": 30, "changed": {
        "blas": [OTHER_BLAS, machine.environment()["blas"]]}}
    assert not result.comparable
    main(["verify", run_dir])
    out, err = capsys.readouterr()
    assert "purenet: warning: replaying" in err
    assert "under another numerics version, numpy or BLAS" in err
    assert "this replay runs in another scope than the run did at step 30" in out
    assert "ok: bit-identical" in out or "MISMATCH, as may be" in out


def test_verify_in_the_run_s_own_scope_is_a_witness(crossed, monkeypatch):
    run_dir, _ = crossed
    elsewhere(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = verify(run_dir)
    assert result.comparable and result.ok


@pytest.mark.filterwarnings("default::purenet.errors.CheckpointWarning")
def test_rewind_under_another_scope_warns_and_the_rewound_file_records_it(tmp_path, monkeypatch,
                                                                          capsys):
    run_dir = train(tmp_path, 4)
    elsewhere(monkeypatch)
    output = str(tmp_path / "rewound.h5")
    assert main(["rewind", run_dir, "--step", "35", "--output", output]) == 0
    assert "purenet: warning: replaying" in capsys.readouterr().err
    rewound = pn.load_checkpoint(output)
    assert rewound.state.step == 35
    assert [(c.step, c.changes[0][0]) for c in rewound.crossings] == [(30, "blas")]


def test_a_file_of_an_older_numerics_version_resumes_with_its_warning(tmp_path, monkeypatch):
    """The next numerics version, simulated: a file of today's kernels resumes, warns, and
    the run records that it crossed from numerics 1 to 2."""
    run_dir = train(tmp_path, 2)
    monkeypatch.setattr(numerics, "NUMERICS_VERSION", numerics.NUMERICS_VERSION + 1)
    with pytest.warns(pn.CheckpointWarning, match=r"numerics: saved with 1, now 2"):
        train(tmp_path, 4, resume=True)
    newest = pn.load_checkpoint(os.path.join(run_dir, "checkpoints"))
    assert newest.numerics == 2
    assert [c.to_dict() for c in newest.crossings] == [{"step": 20,
                                                         "changed": {"numerics": [1, 2]}}]
    monkeypatch.undo()   # and this version refuses the file of the next one
    with pytest.raises(pn.NewerCheckpointError, match="numerics version 2"):
        pn.load_checkpoint(newest.path)


def test_the_scope_after_a_step_undoes_the_later_crossings():
    now = {"numerics": 2, "numpy": "b", "blas": "z"}
    crossings = (scope.Crossing(10, (("blas", "x", "y"),)),
                 scope.Crossing(20, (("numerics", 1, 2), ("blas", "y", "z"))))
    assert scope.scope_after(now, crossings, 25) == now
    assert scope.scope_after(now, crossings, 20) == now
    assert scope.scope_after(now, crossings, 15) == {"numerics": 1, "numpy": "b", "blas": "y"}
    assert scope.scope_after(now, crossings, 5) == {"numerics": 1, "numpy": "b", "blas": "x"}
    assert scope.crossing(3, now, now) is None


def test_numpy_s_simd_targets_are_recorded_and_a_file_without_them_warns(tmp_path):
    """numpy's exp and tanh differ in the last bits with AVX-512: its dispatch targets are
    part of the scope. A file of 0.2 did not record them, so nothing can be promised."""
    from test_format_v1 import resume

    assert machine.environment()["numpy_simd"] and scope.here()["numpy_simd"]
    directory = tmp_path / "ck"
    directory.mkdir()
    v021 = os.path.join(os.path.dirname(__file__), "data", "v3-0.2.1-step-00000007.h5")
    with open(v021, "rb") as src, open(directory / "step-00000007.h5", "wb") as dst:
        dst.write(src.read())
    simd = machine.environment()["numpy_simd"]
    with pytest.warns(pn.CheckpointWarning,
                      match=rf"numpy_simd: saved with \(not recorded\), now '{simd}'"):
        resume(directory)
    newest = pn.load_checkpoint(directory)
    assert newest.environment["numpy_simd"] == simd
    assert newest.crossings[0].changes[0] == ("numpy_simd", None, simd)
