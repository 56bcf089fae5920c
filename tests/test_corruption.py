"""Damaged and foreign files: every flipped bit, every truncation, and every file that is
not a purenet checkpoint gives a CheckpointError naming the file, never a crash, a wrong
number, or an unpickled object.

Each damaged file is loaded in a child process (tests/_load_child.py, many files per
child), so a crash inside HDF5's C code fails the test instead of killing pytest.
"""

from __future__ import annotations

import os
import pickle
import random

import h5py
import numpy as np
import pytest
from _checkpoint_common import ARCH, load_in_child, moons, small_spec, state_at

import purenet as pn
from purenet import optim
from purenet.optim import schedules
from purenet.checkpoint.format import USERBLOCK_SIZE, write_checkpoint
from purenet.checkpoint.policy import CheckpointWarning

FLIP_SEED = 20240611
N_FLIPS_ANYWHERE = 120
N_FLIPS_IN_HEADER = 40


@pytest.fixture(scope="module")
def sealed(tmp_path_factory):
    """A real checkpoint (Adam state, history, early stopping with best params) as bytes."""
    (x, y), val = moons(96, 32)
    directory = tmp_path_factory.mktemp("sealed")
    pn.fit(ARCH, x, y, optimizer=optim.adam(schedules.exponential_decay(1e-2, 0.5, 20)),
           epochs=2, batch_size=16, seed=1, validation_data=val, l2=1e-4,
           early_stopping=pn.EarlyStopping(patience=2),
           checkpointer=pn.Checkpointer(directory, every_epochs=1), progress=False)
    path = pn.load_checkpoint(directory).path
    with open(path, "rb") as fh:
        return fh.read()


def _write(path, data: bytes) -> str:
    with open(path, "wb") as fh:
        fh.write(data)
    return str(path)


def test_the_untouched_file_loads_in_the_child(sealed, tmp_path):
    [report] = load_in_child([_write(tmp_path / "step-00000012.h5", sealed)])
    assert report["error"] is None and report["step"] == 12


def test_every_single_bit_flip_is_detected(sealed, tmp_path):
    rng = random.Random(FLIP_SEED)
    offsets = rng.sample(range(len(sealed)), N_FLIPS_ANYWHERE)
    offsets += rng.sample(range(USERBLOCK_SIZE), N_FLIPS_IN_HEADER)   # the header too
    paths, flips = [], []
    for i, offset in enumerate(offsets):
        bit = rng.randrange(8)
        damaged = bytearray(sealed)
        damaged[offset] ^= 1 << bit
        flips.append((offset, bit))
        paths.append(_write(tmp_path / f"flip-{i:03d}.h5", bytes(damaged)))
    reports = load_in_child(paths)
    undetected = [(flip, r) for flip, r in zip(flips, reports) if not r["checkpoint_error"]]
    assert not undetected, f"{len(undetected)} of {len(flips)} flips not refused: {undetected[:5]}"
    for report in reports:
        assert report["path"] in report["message"], report
        assert report["error"] in ("CorruptCheckpointError", "NotACheckpointError"), report
        assert not report["unpickled"]
    assert len(reports) >= 100


def test_every_bit_of_the_header_crc_line_counts(sealed, tmp_path):
    """Bit 5 turns a hex letter into its capital ("a" -> "A"), which int(..., 16) reads as
    the same number: each such flip in the CRC line, and a leading "+", is refused."""
    start = sealed.index(b"header_crc32=") + len(b"header_crc32=")
    letters = [i for i in range(start, start + 8) if chr(sealed[i]) in "abcdef"]
    variants = []
    for i in letters:
        damaged = bytearray(sealed)
        damaged[i] ^= 0x20
        variants.append(bytes(damaged))
    assert sealed[start + 8:start + 10] == b"\n\0"   # "+" in front, one NUL of padding less
    variants.append(sealed[:start] + b"+" + sealed[start:start + 9] + sealed[start + 10:])
    paths = [_write(tmp_path / f"crc-{k}.h5", data) for k, data in enumerate(variants)]
    for report in load_in_child(paths):
        assert report["error"] == "CorruptCheckpointError", report


def test_every_truncation_is_detected(sealed, tmp_path):
    lengths = [0, 1, USERBLOCK_SIZE, len(sealed) // 2, len(sealed) - 1]
    paths = [_write(tmp_path / f"cut-{n}.h5", sealed[:n]) for n in lengths]
    for n, report in zip(lengths, load_in_child(paths)):
        assert report["error"] == "CorruptCheckpointError", (n, report)
        assert report["path"] in report["message"]
        assert "truncated" in report["message"] or "empty" in report["message"], report


def test_padding_a_file_is_detected(sealed, tmp_path):
    [report] = load_in_child([_write(tmp_path / "padded.h5", sealed + b"\0" * 64)])
    assert report["error"] == "CorruptCheckpointError" and "padded" in report["message"]


class _Trap:
    """Unpickling this creates the file it names: proof that something unpickled."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_foreign_files_are_not_checkpoints(tmp_path):
    text = _write(tmp_path / "step-00000001.h5", b"step 1: loss 0.25\nnot a checkpoint\n")
    marker = str(tmp_path / "UNPICKLED")
    pickled = _write(tmp_path / "step-00000002.h5", pickle.dumps(
        {"params": [np.ones((2, 2))], "step": 2, "trap": _Trap(marker)}))
    foreign = str(tmp_path / "step-00000003.h5")
    with h5py.File(foreign, "w") as f:   # plain HDF5 from another program
        f["params/layer_00/W"] = np.ones((2, 8))
        f.attrs["format"] = "purenet-checkpoint"   # claims it, but has no sealed header
    foreign_block = str(tmp_path / "step-00000004.h5")
    with h5py.File(foreign_block, "w", userblock_size=512) as f:   # a user block of its own
        f["x"] = np.arange(3.0)
    reports = load_in_child([text, pickled, foreign, foreign_block])
    for report in reports:
        assert report["error"] == "NotACheckpointError", report
        assert report["path"] in report["message"]
        assert not report["unpickled"]
    assert "pickle" in reports[1]["message"] and "never unpickles" in reports[1]["message"]
    assert "HDF5 file but not a purenet checkpoint" in reports[2]["message"]
    assert not os.path.exists(marker)


def test_a_directory_of_foreign_files_has_no_valid_checkpoint(tmp_path):
    _write(tmp_path / "step-00000001.h5", b"hello")
    with pytest.warns(CheckpointWarning, match="step-00000001.h5"):
        with pytest.raises(pn.CheckpointNotFoundError, match="no valid checkpoint"):
            pn.load_checkpoint(tmp_path)


# --- falling back to the newest valid checkpoint ----------------------------------------


def _flip(path: str, offset: int) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)[0]
        fh.seek(offset)
        fh.write(bytes([byte ^ 0x10]))


def test_load_checkpoint_skips_a_corrupt_newest_file_with_a_warning(tmp_path):
    spec = small_spec()
    for step in (5, 10, 15):
        write_checkpoint(tmp_path / f"step-{step:08d}.h5", state_at(spec, step), spec)
    newest = str(tmp_path / "step-00000015.h5")
    _flip(newest, os.path.getsize(newest) // 2)
    with pytest.warns(CheckpointWarning, match=r"skipping checkpoint .*step-00000015\.h5.*corrupt"):
        found = pn.load_checkpoint(tmp_path)
    assert found.state.step == 10
    # the file itself still refuses, naming it
    with pytest.raises(pn.CorruptCheckpointError, match="step-00000015.h5"):
        pn.load_checkpoint(newest)


def test_resume_falls_back_past_corrupt_checkpoints_and_still_matches(tmp_path):
    (x, y), val = moons(96, 32)
    kwargs = dict(optimizer=optim.adam(schedules.exponential_decay(1e-2, 0.5, 20)), epochs=3,
                  batch_size=16, seed=2, l2=1e-4, validation_data=val, progress=False,
                  early_stopping=pn.EarlyStopping(patience=5))
    whole = pn.fit(ARCH, x, y, **kwargs)
    pn.fit(ARCH, x, y, max_steps=9, checkpointer=pn.Checkpointer(tmp_path, every_steps=1),
           **kwargs)
    for step, damage in ((9, "flip"), (8, "truncate")):   # the two newest are damaged
        path = str(tmp_path / f"step-{step:08d}.h5")
        if damage == "flip":
            _flip(path, 100)   # inside the header
        else:
            os.truncate(path, os.path.getsize(path) - 10)
    with pytest.warns(CheckpointWarning) as caught:
        resumed = pn.fit(ARCH, x, y, checkpointer=pn.Checkpointer(tmp_path, every_steps=1),
                         resume=True, **kwargs)
    skipped = [str(w.message) for w in caught]
    assert any("step-00000009.h5" in m for m in skipped)
    assert any("step-00000008.h5" in m for m in skipped)
    assert resumed.state.step == whole.state.step == 18
    for a, b in zip(pn.tree_leaves(resumed.state.params), pn.tree_leaves(whole.state.params)):
        assert np.array_equal(a, b)
    # the damaged files were overwritten by the resumed run's own saves of those steps
    assert pn.load_checkpoint(tmp_path).state.step == 18
