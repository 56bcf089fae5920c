"""Hardening II: a sealed file is a valid state or a CheckpointError, checked in depth.

Each case is a real checkpoint (step 8 of a chain(clip, adam) run with early stopping, its
data recorded) edited the way a hostile or hand-edited file would be and sealed again, so
only its content decides. Each is refused with a CheckpointError naming the file and the
field; in a directory, every reader falls back to the older valid checkpoint alike."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from _hostile_files import Crafted, craft

import purenet as pn
from purenet.checkpoint import sealed
from purenet.checkpoint.format import read_checkpoint, summarize
from purenet.checkpoint.sealed import USERBLOCK_SIZE
from purenet.cli import main

ARCH = [{"input_dim": 2, "output_dim": 4, "activation": "relu"},
        {"input_dim": 4, "output_dim": 1, "activation": "sigmoid"}]


def data():
    x = np.random.default_rng(0).normal(size=(40, 2))
    return x, (x[:, 0] > 0).astype(int)


RUN = dict(optimizer=pn.optim.chain(pn.optim.clip_by_global_norm(1.0), pn.optim.adam(1e-2)),
           epochs=3, batch_size=16, progress=False, early_stopping=pn.EarlyStopping(patience=5))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A directory with the checkpoints of steps 4 and 8 (epoch 2, batch_index 2)."""
    directory = tmp_path_factory.mktemp("ck")
    x, y = data()
    pn.fit(ARCH, x, y, validation_data=(x[:8], y[:8]), max_steps=8,
           checkpointer=pn.Checkpointer(directory, every_steps=4, keep=None), **RUN)
    return directory


@pytest.fixture
def original(run):
    return str(run / "step-00000008.h5")


def refused(path, words, kind=pn.CheckpointError):
    with pytest.raises(kind, match=words) as info:
        read_checkpoint(path)
    message = str(info.value)
    assert str(path) in message and "purenet could have written" not in message, message
    return message


def momentum_inside_the_chain(f):
    f.meta["optimizer_state"]["states"][1] = {"record": "MomentumState", "count": 8,
                                              "trace": "/optimizer/states/1/trace"}
    rows = []
    for row in f.manifest["arrays"]:
        if row[0].startswith("/optimizer/states/1/nu/"):
            continue
        rows.append([row[0].replace("/mu/", "/trace/"), *row[1:]])
    f.manifest["arrays"] = rows


CASES = {
    # exceptions that were not CheckpointErrors
    "a list for a dtype": (lambda f: f.entry("/params/W0").__setitem__(1, ["<f4"]),
                           r"the array /params/W0 has dtype \['<f4'\]"),
    "a list for a record name": (
        lambda f: f.meta["optimizer_state"].update(record=["ChainState"]),
        "the optimizer state at /optimizer must be an object naming its record"),
    # state checked at every depth
    "a Momentum state inside an Adam chain": (
        momentum_inside_the_chain, "the optimizer state at /optimizer/states/1 is a "
                                   "MomentumState; this run's optimizer keeps a AdamState"),
    "Adam's count 0 at step 8": (
        lambda f: f.meta["optimizer_state"]["states"][1].update(count=0),
        r"/optimizer/states/1/count is 0, but 8 updates were made"),
    "more correct than seen": (lambda f: f.meta["totals"].update(correct=33.0),
                               "counts 33.0 correct of 32 samples"),
    "a negative loss sum": (lambda f: f.meta["totals"].update(loss_sum=-1.0),
                            "not finite counts >= 0"),
    "samples the batches done cannot give": (lambda f: f.meta["totals"].update(samples=31),
                                             "sums 31 samples over 2 batches; expected 32"),
    "a NaN best": (lambda f: f.meta["early_stopping"].update(best=float("nan")),
                   "early_stopping.best is nan"),
    "a best its history does not hold": (lambda f: f.meta["early_stopping"].update(best=0.01),
                                         "but the history's val_loss at its best epoch"),
    "a wait longer than the epochs since the best": (
        lambda f: f.meta["early_stopping"].update(wait=1), "wait is 1, more than the epochs"),
    "stopped without reaching the patience": (lambda f: f.meta.update(stopped=True),
                                              "wait is 0 of patience 5, and the run stopped"),
    # parts once checked by their readers' luck
    "experiment = true": (lambda f: f.manifest.update(experiment=True),
                          "experiment must be null or an object"),
    "an experiment of another run": (
        lambda f: f.manifest.update(experiment={"name": "x", "data": {}, "checkpoint": {},
                                                **f.manifest["config"], "seed": 5}),
        "experiment.seed is 5, the run record's 0"),
    "a data entry without its hash": (lambda f: f.manifest["data"]["x"].pop("xxh3_128"),
                                      r"data.x must be null or \{shape"),
    "data of another network": (lambda f: f.manifest["data"]["x"].update(shape=[40, 3]),
                                "x has 3 features, the network takes 2"),
    "a history of accuracies over 1": (
        lambda f: f.put("/history/train_accuracy", f.array("/history/train_accuracy") + 2),
        r"train_accuracy 2\.\d+; expected a number in \[0, 1\]"),
    # booleans are never integers
    "true for a batch index": (lambda f: f.meta.update(batch_index=True),
                               "batch_index must be an integer"),
    "true for a format version": (lambda f: f.meta.update(format_version=True),
                                  "does not say it is a purenet-checkpoint, version 3"),
    "true in a shape": (lambda f: f.entry("/params/b1").__setitem__(2, [True]),
                        "/params/b1 has shape"),
    "true for a count": (lambda f: f.meta["optimizer_state"]["states"][1].update(count=True),
                         "/optimizer/states/1/count is True"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_each_class_is_refused_with_a_checkpoint_error_naming_the_field(original, tmp_path, name):
    edit, words = CASES[name]
    refused(craft(original, tmp_path / "step-00000008.h5", edit), words)


@pytest.mark.parametrize("name", ["a Momentum state inside an Adam chain",
                                  "Adam's count 0 at step 8", "experiment = true",
                                  "a data entry without its hash"])
def test_every_reader_of_a_directory_falls_back_to_the_older_checkpoint_alike(
        run, tmp_path, name, capsys):
    directory = tmp_path / "ck"
    directory.mkdir()
    shutil.copy(run / "step-00000004.h5", directory)
    path = craft(str(run / "step-00000008.h5"), directory / "step-00000008.h5", CASES[name][0])
    with pytest.warns(pn.CheckpointWarning, match=f"skipping checkpoint {path}: "):
        assert pn.load_checkpoint(directory).state.step == 4
    x, y = data()
    with pytest.warns(pn.CheckpointWarning, match="skipping checkpoint"):
        assert pn.state_at(directory, 6, x, y, validation_data=(x[:8], y[:8])).step == 6
    with pytest.warns(pn.CheckpointWarning, match="skipping checkpoint"):
        resumed = pn.fit(ARCH, x, y, validation_data=(x[:8], y[:8]), max_steps=9,
                         checkpointer=pn.Checkpointer(directory, keep=None), resume=True, **RUN)
    assert resumed.state.step == 9
    assert main(["inspect", str(directory)]) == 0
    out = capsys.readouterr().out
    assert "step-00000008.h5: bad:" in out and "step-00000004.h5: ok" in out


def test_inspect_and_load_agree_on_which_is_the_newest(original, tmp_path, capsys):
    """A copy of step 4 named step-00000008.h5: skipped by every reader, inspect too."""
    directory = tmp_path / "ck"
    directory.mkdir()
    shutil.copy(os.path.join(os.path.dirname(original), "step-00000004.h5"),
                directory / "step-00000008.h5")
    shutil.copy(os.path.join(os.path.dirname(original), "step-00000004.h5"), directory)
    with pytest.warns(pn.CheckpointWarning, match="named for step 8 but holds step 4"):
        assert pn.load_checkpoint(directory).path.endswith("step-00000004.h5")
    assert main(["inspect", str(directory), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["step"] == 4 and info["path"].endswith("step-00000004.h5")
    assert [s["integrity"].split(":")[0] for s in info["checkpoints"]] == ["ok", "bad"]


def test_a_header_field_given_twice_is_refused(original, tmp_path):
    with open(original, "rb") as fh:
        data = fh.read()
    text = data[:USERBLOCK_SIZE].rstrip(b"\0")
    crc_at = text.rfind(b"header_crc32=")
    lines = text[:crc_at]
    doubled = lines + lines.splitlines(keepends=True)[2]   # manifest_length twice
    import zlib
    head = (doubled + f"header_crc32={zlib.crc32(doubled):08x}\n".encode()).ljust(
        USERBLOCK_SIZE, b"\0")
    path = tmp_path / "step-00000008.h5"
    path.write_bytes(head + data[USERBLOCK_SIZE:])
    refused(str(path), "is given twice", pn.CorruptCheckpointError)


def test_a_json_object_with_a_key_twice_is_refused(original, tmp_path):
    f = Crafted(original)
    text = json.dumps(f.manifest)
    f.manifest = text.replace('"seed": 0,', '"seed": 0, "seed": 0,', 1).encode()
    refused(f.save(str(tmp_path / "step-00000008.h5")), "the key 'seed' is given twice",
            pn.CorruptCheckpointError)


def test_the_valid_file_resealed_still_loads(original, tmp_path):
    state = read_checkpoint(craft(original, tmp_path / "step-00000008.h5", lambda f: None)).state
    assert (state.step, state.epoch, state.batch_index) == (8, 2, 2)
    assert summarize(original)["integrity"] == "ok"


@pytest.mark.filterwarnings("default::purenet.errors.CheckpointWarning")   # the CLI prints it
def test_cli_readers_of_a_run_show_one_line_never_a_traceback(tmp_path, capsys):
    from _sweep_common import write_experiment
    from purenet.experiment.config import load_experiment
    from purenet.experiment.runner import run_experiment

    run_dir = str(tmp_path / "run")
    run_experiment(load_experiment(write_experiment(tmp_path, name="run", epochs=1, sweep=None)),
                   run_dir, progress=False)
    checkpoints = os.path.join(run_dir, "checkpoints")
    (newest,) = [n for n in os.listdir(checkpoints) if n.startswith("step-")]
    for edit in (lambda f: f.manifest.update(experiment=True),
                 lambda f: f.manifest["data"]["x"].pop("xxh3_128")):
        path = os.path.join(checkpoints, newest)
        shutil.copy(path, tmp_path / "kept.h5")
        craft(str(tmp_path / "kept.h5"), path, edit)
        capsys.readouterr()
        for command in (["evaluate", run_dir], ["plot", run_dir], ["inspect", path]):
            assert main(command) == 1, command
            err = capsys.readouterr().err
            assert "Traceback" not in err and err.count("purenet: error:") == 1, err
        shutil.copy(tmp_path / "kept.h5", path)


def resealed_after(path, edit):
    """``path`` edited through h5py (the manifest left as it was) and sealed again."""
    import h5py

    with h5py.File(path, "r+") as f:
        edit(f)
    with open(path, "rb") as fh:
        data = fh.read()
    fields = sealed.parse_header(str(path), data[:USERBLOCK_SIZE])
    body = data[USERBLOCK_SIZE:]
    with open(path, "wb") as fh:
        fh.write(sealed.seal(body, 3, int(fields["manifest_length"])) + body)
    return str(path)


def test_two_views_of_one_file_are_compared_on_request(original, tmp_path, capsys):
    """purenet reads the manifest alone, by design; `inspect --deep` shows whether libhdf5
    (h5py, h5dump, HDFView) would read the same."""
    same = str(tmp_path / "same.h5")
    shutil.copy(original, same)
    assert main(["inspect", same, "--deep"]) == 0
    assert "HDF5 view: the same as the manifest's" in capsys.readouterr().out

    def edit(f):
        meta = json.loads(f.attrs["meta"])
        meta["step"] = 9
        f.attrs["meta"] = json.dumps(meta).ljust(len(f.attrs["meta"]))
        del f["params/b1"]   # another dataset: the manifest's offset keeps the old bytes
        f["params/b1"] = np.full(1, 42.0, np.float64)
    other = resealed_after(shutil.copy(original, tmp_path / "other.h5"), edit)
    assert read_checkpoint(other).state.step == 8   # purenet's view: the manifest's
    assert main(["inspect", other, "--deep", "--json"]) == 1
    info = json.loads(capsys.readouterr().out)
    assert info["views"]["same"] is False
    assert "the HDF5 attribute 'meta' is not the manifest's meta" in info["views"]["differences"]
    assert "/params/b1: HDF5 has float64 (1,), the manifest float32 (1,)" in \
        info["views"]["differences"]
