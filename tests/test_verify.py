"""`purenet verify` (purenet.sweep.verification): replaying a run between two checkpoints
gives the digest it saved."""

import os
import shutil

import pytest

from purenet.cli import main
from purenet.errors import CheckpointNotFoundError
from purenet.experiment.config import load_experiment
from purenet.experiment.runner import run_experiment
from purenet.sweep import verify
from _sweep_common import write_experiment


def train(tmp_path, name, *overrides, every=10):
    path = write_experiment(tmp_path, name=name, epochs=4, every=every, sweep=None)
    run_dir = str(tmp_path / name)
    run_experiment(load_experiment(path, overrides), run_dir, progress=False)
    return run_dir


def test_a_replay_from_the_older_checkpoint_gives_the_newest_digest(tmp_path, capsys):
    run_dir = train(tmp_path, "a")            # keep = 2: steps 30 and 40 remain
    result = verify(run_dir)
    assert (result.from_step, result.to_step) == (30, 40) and result.ok
    from_start = verify(run_dir, from_step=0)
    assert from_start.from_step == 0 and from_start.ok
    assert from_start.replayed_digest == result.expected_digest
    assert main(["verify", run_dir]) == 0
    out = capsys.readouterr().out
    assert "from step 30 to step 40" in out and "ok: bit-identical" in out


def test_a_checkpoint_that_is_not_the_replay_s_end_is_caught(tmp_path, capsys):
    run_dir, other = train(tmp_path, "a"), train(tmp_path, "b", "optimizer.learning_rate=0.02")
    # The older checkpoint swapped for another run's of the same step: valid on its own,
    # but its replay does not lead to the newest (as a resume that was not exact would not).
    older = os.path.join(run_dir, "checkpoints", "step-00000030.h5")
    shutil.copyfile(os.path.join(other, "checkpoints", "step-00000030.h5"), older)
    result = verify(run_dir)
    assert not result.ok and result.expected_digest != result.replayed_digest
    assert main(["verify", run_dir, "--json"]) == 1
    assert '"ok": false' in capsys.readouterr().out


def test_verify_names_the_checkpoints_it_could_start_from(tmp_path, capsys):
    run_dir = train(tmp_path, "a")
    with pytest.raises(CheckpointNotFoundError, match=r"no checkpoint of step 20 .*\[30\]"):
        verify(run_dir, from_step=20)
    assert main(["verify", run_dir, "--from-step", "20"]) == 1
    assert "purenet: error: no checkpoint of step 20" in capsys.readouterr().err


def test_a_run_with_one_checkpoint_is_replayed_from_its_start(tmp_path):
    run_dir = train(tmp_path, "a", every=1000)         # only the final checkpoint
    result = verify(run_dir)
    assert (result.from_step, result.to_step, result.ok) == (0, 40, True)
