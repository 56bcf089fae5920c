"""Property: every field of a real checkpoint's manifest, replaced by a value of every other
JSON type (and a few edge values), and every array by one of another shape or dtype, sealed
again: each file loads as a valid state equal to the original, or is refused with a
CheckpointError naming the file that no check left to chance; and every reader gives the
same verdict (load, summarize/inspect, a directory's newest, upgrade, resume).

The checkpoint is a run directory's (``purenet train``): it records its data and its
experiment, chains clipping and Adam, and stops early with its best parameters; and the
same problem's under full-batch L-BFGS, whose state is stored by kinds of its own."""

from __future__ import annotations

import copy
import math
import os
import shutil
import warnings
from typing import Any, Iterator

import numpy as np
import pytest
from _hostile_files import Crafted

import purenet as pn
from purenet.checkpoint.format import read_checkpoint, summarize
from purenet.checkpoint.policy import newest_valid
from purenet.checkpoint.upgrade import upgrade_checkpoint
from purenet.testing import assert_records_equal

EXPERIMENT = """\
name = "prop"
seed = 0
epochs = 3
batch_size = 16

[data]
source = "make_moons"
validation_size = 0.2
test_size = 0.2

[data.args]
n_samples = 80
noise = 0.2

[[layers]]
input_dim = 2
output_dim = 4
activation = "relu"

[[layers]]
input_dim = 4
output_dim = 1
activation = "sigmoid"

[optimizer]
name = "adam"
learning_rate = 0.01
clip_by_global_norm = 1.0

[early_stopping]
monitor = "val_loss"
patience = 5

[checkpoint]
every_steps = 5
keep = "all"
"""
# A value of each JSON type, and edges: the one each field is replaced by, in turn.
VALUES = {"null": None, "true": True, "int": 7, "big int": 2**70, "negative": -1,
          "float": 0.5, "NaN": math.nan, "string": "x", "list": [1], "object": {"a": 1}}
UNFORESEEN = "purenet could have written"   # the words of format._checked's safety net
# The only fields whose replacement may load (the state unchanged): records a file may do
# without, and the experiment's data and checkpoint tables, which no reader takes from the
# checkpoint (each reader of a run compares them with its config.toml).
OPTIONAL = {("data",), ("experiment",), ("meta", "environment", "numpy_simd")}   # as null
LOOSE = {("experiment", "data"), ("experiment", "checkpoint")}


def json_type(value: Any) -> str:
    return {type(None): "null", bool: "true", int: "int", float: "float", str: "string",
            list: "list", dict: "object"}[type(value)]


# The same problem trained by full-batch L-BFGS: its state's fields have storage kinds of
# their own (counters, numbers, a stop reason, flat vectors, stacked curvature pairs).
LBFGS_EXPERIMENT = EXPERIMENT.replace("batch_size = 16", 'batch_size = "full"').replace(
    'name = "adam"\nlearning_rate = 0.01\nclip_by_global_norm = 1.0',
    'name = "lbfgs"\nhistory_size = 2').replace("epochs = 3", "epochs = 5").replace(
    "every_steps = 5", "every_steps = 4")


# L-BFGS's file in the slow soak: its every field is also refused by name in
# test_lbfgs_checkpoint.py.
@pytest.fixture(scope="module", params=["adam", pytest.param("lbfgs", marks=pytest.mark.slow)])
def original(request, tmp_path_factory) -> str:
    from purenet.experiment.config import load_experiment
    from purenet.experiment.runner import run_experiment

    root = tmp_path_factory.mktemp("prop")
    text = EXPERIMENT if request.param == "adam" else LBFGS_EXPERIMENT
    (root / "prop.toml").write_text(text)
    run_experiment(load_experiment(str(root / "prop.toml")), str(root / "run"), progress=False)
    files = sorted((root / "run" / "checkpoints").glob("step-*.h5"))
    if request.param == "lbfgs":   # a full batch: every checkpoint falls between epochs
        state = read_checkpoint(files[0]).state
        assert state.step == 4 and len(state.opt_state.s) == 2
        return str(files[0])
    middle = [f for f in files if read_checkpoint(f).state.batch_index][0]   # mid-epoch
    return str(middle)


def leaves(value: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    """Every node of a JSON value with its path, containers included."""
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from leaves(item, (*path, index))


def replaced(manifest: dict, path: tuple, value: Any) -> dict:
    found = copy.deepcopy(manifest)
    target = found
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return found


def verdicts(path: str, tmp_path) -> dict[str, str]:
    """Each reader's verdict on the file: ``ok`` or the CheckpointError's class; anything
    else fails the test where it happens."""
    found: dict[str, str] = {}
    directory = tmp_path / "dir"
    directory.mkdir(exist_ok=True)
    for name in os.listdir(directory):
        os.remove(directory / name)
    named = str(directory / os.path.basename(path))
    shutil.copy(path, named)
    readers = {
        "load": lambda: read_checkpoint(path),
        "inspect": lambda: summarize(path),
        "upgrade": lambda: upgrade_checkpoint(path, dry_run=True),
        "directory": lambda: newest_valid(directory) or (_ for _ in ()).throw(
            pn.CheckpointError("skipped")),
    }
    for reader, read in readers.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", pn.CheckpointWarning)
                read()
            found[reader] = "ok"
        except pn.CheckpointError as error:
            assert UNFORESEEN not in str(error), f"{reader}: {error}"
            found[reader] = "refused"
    return found


def check(original_state, path: str, tmp_path, what: str, must_refuse: bool) -> str:
    outcome = verdicts(path, tmp_path)
    assert len(set(outcome.values())) == 1, f"{what}: readers disagree: {outcome}"
    verdict = outcome["load"]
    if verdict == "refused":
        with pytest.raises(pn.CheckpointError, match=path.replace(".", r"\.")):
            read_checkpoint(path)
        return verdict
    assert not must_refuse, f"{what}: loaded"
    assert_records_equal(read_checkpoint(path).state, original_state)   # the same state
    return verdict


def test_every_manifest_field_replaced_by_every_json_type(original, tmp_path):
    crafted = Crafted(original)
    manifest = copy.deepcopy(crafted.manifest)
    state = read_checkpoint(original).state
    counts = {"refused": 0, "ok": 0}
    for where, old in list(leaves(manifest)):
        if not where:
            continue
        for name, value in VALUES.items():
            if name == json_type(old) or (name in ("big int", "negative") and isinstance(old, int)
                                          and not isinstance(old, bool)):
                continue   # another value of its own type may be another valid state
            if isinstance(old, float) and isinstance(value, int) and not isinstance(value, bool):
                continue   # an integer where a number belongs reads as that number
            crafted.manifest = replaced(manifest, where, value)
            path = crafted.save(str(tmp_path / os.path.basename(original)))
            may_load = where[:2] in LOOSE or (value is None and where in OPTIONAL)
            counts[check(state, path, tmp_path, f"{where} = {value!r}", not may_load)] += 1
    print(f"\n{sum(counts.values())} manifest replacements: {counts}")
    assert counts["refused"] > 2000


def test_every_array_replaced_by_one_of_another_shape_or_dtype(original, tmp_path):
    base = Crafted(original)
    state = read_checkpoint(original).state
    names = [row[0] for row in base.manifest["arrays"]]
    tried = 0
    for name in names:
        array = base.array(name)
        other = np.float64 if array.dtype == np.float32 else np.float32
        for make in (lambda a: a.astype(other), lambda a: np.concatenate([a, a[:1]]),
                     lambda a: a.reshape(-1) if a.ndim == 2 else a.reshape(1, -1),
                     lambda a: a.T.copy() if a.ndim == 2 and a.shape[0] != a.shape[1]
                     else np.zeros((0,), a.dtype)):
            crafted = Crafted(original)
            crafted.put(name, make(array))
            path = crafted.save(str(tmp_path / os.path.basename(original)))
            check(state, path, tmp_path, f"{name} replaced", True)
            tried += 1
    assert tried == 4 * len(names)
