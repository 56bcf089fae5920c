"""A checkpoint whose seal is right can still hold a state no run could reach: every load
checks it against its own run record (purenet.checkpoint.validity). Each case below is a
real checkpoint whose manifest or arrays were edited and the file sealed again, as a
hand-edited or hostile file would be (tests/_hostile_files.py); test_hostile.py has many
more."""

import os

import numpy as np
import pytest
from _hostile_files import craft

import purenet as pn
from purenet.checkpoint.format import read_checkpoint

ARCH = [{"input_dim": 2, "output_dim": 4, "activation": "relu"},
        {"input_dim": 4, "output_dim": 1, "activation": "sigmoid"}]


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    directory = tmp_path_factory.mktemp("ck")
    x = np.random.default_rng(0).normal(size=(40, 2))
    pn.fit(ARCH, x, (x[:, 0] > 0).astype(int), epochs=3, batch_size=16, progress=False,
           checkpointer=pn.Checkpointer(directory, every_steps=4, keep=1), max_steps=8)
    (path,) = directory.glob("step-*.h5")
    return path


def edited(original, tmp_path, edit):
    return craft(original, tmp_path / "step-00000008.h5", edit)


def meta_edit(**changes):
    return lambda f: f.meta.update(changes)


def test_the_unedited_file_resealed_is_valid(original, tmp_path):
    assert read_checkpoint(edited(original, tmp_path, lambda f: None)).state.step == 8


@pytest.mark.parametrize("changes, words", [
    ({"step": -1}, "step must be an integer"),
    ({"step": "8"}, "step must be an integer"),
    ({"step": 8.5}, "step must be an integer"),
    ({"step": 2**63}, "step must be an integer"),
    ({"step": True}, "step must be an integer"),
    ({"epoch": -2}, "epoch must be an integer"),
    ({"batch_index": 99}, "batch_index 99 lies past the end of an epoch"),
    ({"seed": 5}, "seed: this run has 0, the state 5"),
    ({"stopped": "False"}, "stopped must be true or false"),
    ({"epoch": 1}, r"/history/epoch is float64 of shape \(2,\); expected float64 of shape \(1,\)"),
])
def test_impossible_counters_are_refused(original, tmp_path, changes, words):
    with pytest.raises(pn.CorruptCheckpointError, match=words):
        read_checkpoint(edited(original, tmp_path, meta_edit(**changes)))


def replace(name, value):
    return lambda f: f.put(name, value(f.array(name)))


@pytest.mark.parametrize("name, value, words", [
    ("/params/W0", lambda a: np.where(np.arange(a.size).reshape(a.shape) == 3, np.nan, a),
     "/params/W0 holds NaN or inf"),
    ("/optimizer/mu/b1", lambda a: a + np.inf, "/optimizer/mu/b1 holds NaN or inf"),
    ("/params/W0", lambda a: a.astype(np.float64), r"/params/W0 is float64 .* expected float32"),
    ("/history/epoch", lambda a: a + 0.5, "epoch column holds a fraction"),
    ("/history/val_loss", lambda a: a[:1], r"/history/val_loss .* shape \(1,\).* shape \(2,\)"),
    ("/history/epoch", lambda a: a[::-1], "not 1, 2, ..., epoch"),
])
def test_impossible_arrays_are_refused(original, tmp_path, name, value, words):
    with pytest.raises(pn.CorruptCheckpointError, match=words):
        read_checkpoint(edited(original, tmp_path, replace(name, value)))


def test_resume_refuses_such_a_file_before_anything_changes(original, tmp_path):
    path = edited(original, tmp_path, meta_edit(step=2**63))
    x = np.random.default_rng(0).normal(size=(40, 2))
    with pytest.warns(pn.checkpoint.policy.CheckpointWarning, match="skipping"):
        result = pn.fit(ARCH, x, (x[:, 0] > 0).astype(int), epochs=1, batch_size=16,
                        progress=False, checkpointer=pn.Checkpointer(tmp_path), resume=True)
    assert result.state.step == 3   # started afresh: the invalid file was never trusted
    assert os.path.exists(path)     # and nothing was deleted to make room


def test_fit_refuses_to_checkpoint_a_continuation_on_other_data(tmp_path):
    """Every checkpoint is a point of one run on the data it records, so that a load can
    check its counters; a state continued on other data may train, but not be saved."""
    rng = np.random.default_rng(0)
    x, x_other = rng.normal(size=(40, 2)), rng.normal(size=(24, 2))
    y, y_other = (x[:, 0] > 0).astype(int), (x_other[:, 0] > 0).astype(int)
    first = pn.fit(ARCH, x, y, epochs=3, batch_size=16, progress=False, max_steps=4)
    with pytest.raises(ValueError, match=r"initial_state is no point of a run on this data "
                                         r"\(step 4 is not epoch \* 2 \+ batch_index"):
        pn.fit(ARCH, x_other, y_other, epochs=3, batch_size=16, progress=False,
               initial_state=first.state, checkpointer=pn.Checkpointer(tmp_path / "ck"))
    assert not (tmp_path / "ck").exists() or not list((tmp_path / "ck").glob("step-*"))
    rest = pn.fit(ARCH, x_other, y_other, epochs=3, batch_size=16, progress=False,
                  initial_state=first.state)   # without a checkpointer: allowed
    assert rest.state.step > 4
    same = pn.fit(ARCH, x, y, epochs=3, batch_size=16, progress=False,
                  initial_state=first.state, checkpointer=pn.Checkpointer(tmp_path / "ok"))
    assert pn.load_checkpoint(tmp_path / "ok").state.step == same.state.step == 9
