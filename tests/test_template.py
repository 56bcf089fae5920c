"""Saves patch a template (purenet/checkpoint/layout.py): the HDF5 image of a layout is
built with h5py once, and each save writes the state's arrays and JSON texts into a copy
of it. The patched file must be the file h5py builds from scratch, byte for byte, and read
back (with ``read_checkpoint`` and with plain h5py) to the same arrays and metadata."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from _checkpoint_common import moons
from test_checkpoint import ARCH, EARLY, OPTIMIZERS

import purenet as pn
from purenet.checkpoint import layout, sealed
from purenet.checkpoint.format import read_checkpoint, write_checkpoint
from purenet.core.records import params_digest
from purenet.train.config import RunConfig

try:
    from purenet.testing import assert_records_equal
except ImportError:   # pragma: no cover
    assert_records_equal = None

def experiment(spec) -> dict:
    """An experiment record of ``spec``'s run, with text of every kind in its data table."""
    return {"name": "template", "data": {"notes": "ünïcode ✓", "tags": [1, 2.5, None]},
            "checkpoint": {}, **spec.to_dict()}
DATA = {"x": {"shape": [96, 2], "dtype": "<f4", "xxh3_128": "0123abcd" * 4},
        "y": {"shape": [96, 1], "dtype": "<f4", "xxh3_128": "4567cdef" * 4},
        "x_val": {"shape": [32, 2], "dtype": "<f4", "xxh3_128": "89ab0123" * 4},
        "y_val": {"shape": [32, 1], "dtype": "<f4", "xxh3_128": "cdef4567" * 4}}


class Every(pn.Callback):
    def __init__(self) -> None:
        self.states: dict[int, pn.TrainState] = {}

    def on_step_end(self, state, metrics) -> None:
        self.states[state.step] = state


def run(optimizer_name: str, early: bool):
    """Every step's state of a short run (6 steps an epoch, 3 epochs) and its RunConfig."""
    (x, y), val = moons(96, 32)
    optimizer = OPTIMIZERS[optimizer_name]()
    every = Every()
    pn.fit(ARCH, x, y, optimizer=optimizer, epochs=3, batch_size=16, seed=3, l2=1e-3,
           validation_data=val, early_stopping=EARLY if early else None, progress=False,
           callbacks=[every])
    spec = RunConfig(pn.Architecture.from_dicts(ARCH), optimizer, loss="binary_crossentropy",
                     seed=3, batch_size=16, l2=1e-3, early_stopping=EARLY if early else None)
    return every.states, spec


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch):
    """One creation time, so that two builds of a state can be compared byte for byte."""
    monkeypatch.setattr(layout, "_now", lambda: "2026-01-02T03:04:05.678901+00:00")
    layout.clear_templates()
    yield
    layout.clear_templates()


def count_builds(monkeypatch) -> list[int]:
    builds, real = [], layout._build

    def build(*args, **kwargs):
        builds.append(1)
        return real(*args, **kwargs)
    monkeypatch.setattr(layout, "_build", build)
    return builds


def template_of(state, spec, record=None, data=DATA):
    """The cached template a save of ``state`` uses (its JSON capacities, its user block)."""
    record = experiment(spec) if record is None else record
    layout.body_chunks(state, spec, record, data)
    arrays, texts = layout._contents(state, spec, record, data)
    return layout._template_for(arrays, texts, 0)


def capacities_of(state, spec, record=None, data=DATA):
    return template_of(state, spec, record, data).capacities


def h5_contents(path) -> tuple[dict, dict]:
    """Every dataset and JSON attribute of a file, read with plain h5py and json."""
    datasets, attributes = {}, {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: datasets.__setitem__(name, obj[()])
                     if isinstance(obj, h5py.Dataset) else None)
        for key in f.attrs:
            text = f.attrs[key]
            assert isinstance(text, str) and text == text.rstrip() + " " * (
                len(text) - len(text.rstrip()))   # padded with spaces, nothing else
            attributes[key] = json.loads(text)   # trailing spaces parse
    return datasets, attributes


def assert_same_files(a, b, state) -> None:
    got, want = read_checkpoint(a), read_checkpoint(b)
    for ckpt in (got, want):
        if assert_records_equal is not None:
            assert_records_equal(ckpt.state, state)
        assert ckpt.params_digest == params_digest(state.params)
        assert ckpt.state.step == state.step and ckpt.state.epoch == state.epoch
        assert ckpt.experiment == experiment(ckpt.config) and ckpt.data == DATA
        assert ckpt.config.to_dict() == want.config.to_dict()
        assert ckpt.created == "2026-01-02T03:04:05.678901+00:00"
    (da, aa), (db, ab) = h5_contents(a), h5_contents(b)
    assert aa == ab and sorted(aa) == ["config", "data", "experiment", "meta"]
    assert sorted(da) == sorted(db)
    for name in da:
        assert da[name].dtype == db[name].dtype and np.array_equal(da[name], db[name])
    assert np.array_equal(da["params/W0"], state.params.layers[0].W)


@pytest.mark.parametrize("early", [True, False], ids=["early-stopping", "no-early-stopping"])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_a_patched_template_is_the_file_h5py_builds(tmp_path, monkeypatch, name, early):
    states, spec = run(name, early)
    builds = count_builds(monkeypatch)
    # Steps 1-5: epoch 0, no history; 7-11: epoch 1, one history row; 13, 17: epoch 2.
    for first, then in ((1, 4), (2, 5), (7, 11), (8, 9), (13, 17)):
        if then not in states:   # early stopping ended the run
            continue
        layout.clear_templates()
        write_checkpoint(tmp_path / "first.h5", states[first], spec, experiment(spec), DATA)
        assert len(builds) == 1   # the template of this layout
        state = states[then]
        path = write_checkpoint(tmp_path / f"patched-{then}.h5", state, spec, experiment(spec), DATA)
        assert len(builds) == 1   # patched, not built
        template = template_of(state, spec)
        body = layout.full_image(state, spec, experiment(spec), DATA, template.capacities,
                                 template.userblock)
        assert len(builds) == 2
        assert layout.image_of(state, spec, experiment(spec), DATA) == body   # byte for byte
        chunks, manifest_length = layout.body_chunks(state, spec, experiment(spec), DATA)
        full = tmp_path / f"full-{then}.h5"
        sealed.write_sealed(str(full), [chunks[0], body], manifest_length)
        with open(path, "rb") as fh:
            assert fh.read() == full.read_bytes()
        assert_same_files(path, full, state)
        builds.clear()


def test_a_new_layout_or_a_longer_json_text_builds_a_new_template(tmp_path, monkeypatch):
    states, spec = run("adam", True)
    builds = count_builds(monkeypatch)
    write_checkpoint(tmp_path / "a.h5", states[1], spec, experiment(spec), DATA)
    write_checkpoint(tmp_path / "b.h5", states[2], spec, experiment(spec), DATA)
    assert len(builds) == 1
    write_checkpoint(tmp_path / "c.h5", states[7], spec, experiment(spec), DATA)   # history grew
    assert len(builds) == 2
    small = capacities_of(states[8], spec)
    big = {**experiment(spec), "data": {"notes": "x" * 5000}}   # over the experiment text's capacity
    path = write_checkpoint(tmp_path / "d.h5", states[8], spec, big, DATA)
    assert len(builds) == 3
    grown = capacities_of(states[8], spec, big)
    assert grown[2] == 8192 > small[2] and grown[:2] == small[:2]
    assert read_checkpoint(path).experiment == big
    # The larger template serves the shorter text too (no rebuild back and forth).
    path = write_checkpoint(tmp_path / "e.h5", states[9], spec, experiment(spec), DATA)
    assert len(builds) == 3
    assert read_checkpoint(path).experiment == experiment(spec)
    body = layout.full_image(states[9], spec, experiment(spec), DATA, grown,
                             template_of(states[9], spec).userblock)
    assert layout.image_of(states[9], spec, experiment(spec), DATA) == body


def test_json_capacities_are_powers_of_two_of_at_least_1_kib():
    assert [layout._capacity(n) for n in (0, 1, 1024, 1025, 5000)] == \
        [1024, 1024, 1024, 2048, 8192]


def test_patching_does_not_touch_the_template_or_the_state(tmp_path):
    states, spec = run("momentum", False)
    write_checkpoint(tmp_path / "a.h5", states[1], spec, experiment(spec), DATA)
    (template,) = layout._templates.values()
    before = bytes(template.image)
    leaves = [a.copy() for a in pn.tree_leaves(states[2].params)]
    write_checkpoint(tmp_path / "b.h5", states[2], spec, experiment(spec), DATA)
    assert template.image == before
    assert all(np.array_equal(a, b) for a, b in zip(leaves, pn.tree_leaves(states[2].params)))
    assert read_checkpoint(tmp_path / "a.h5").state.step == 1
