"""The checkpoint file (purenet/checkpoint.py): save -> load is bit for bit, the file is
plain HDF5 with named groups, non-finite states are refused, future versions and links are
refused, and ``summarize`` reports what ``purenet inspect`` shows."""

from __future__ import annotations

import json
import math
import os

import attrs
import h5py
import numpy as np
import pytest
from _checkpoint_common import moons, small_spec, state_at

import purenet as pn
from purenet import optim
from purenet.optim import schedules
from purenet.checkpoint import sealed
from purenet.checkpoint.upgrade import upgrade_checkpoint
from purenet.checkpoint.format import (
    FORMAT_NAME,
    FORMAT_VERSION,
    USERBLOCK_SIZE,
    read_checkpoint,
    summarize,
    write_checkpoint,
)
from purenet.core.records import params_digest, tree_leaves, tree_unflatten
from purenet.train.state import EarlyStopping
from purenet.train.config import RunConfig

try:
    from purenet.testing import assert_records_equal
except ImportError:   # pragma: no cover - purenet.testing is written alongside these tests
    assert_records_equal = None

ARCH = [
    {"input_dim": 2, "output_dim": 8, "activation": "relu", "dropout": 0.1},
    {"input_dim": 8, "output_dim": 6, "activation": "tanh"},
    {"input_dim": 6, "output_dim": 1, "activation": "sigmoid"},
]
OPTIMIZERS = {
    "sgd": lambda: optim.sgd(schedules.step_decay(0.1, 0.5, 10)),
    "momentum": lambda: optim.momentum(0.05, 0.9),
    "nesterov": lambda: optim.momentum(0.05, 0.9, nesterov=True),
    "adam": lambda: optim.adam(schedules.exponential_decay(1e-2, 0.5, 20)),
    "adamw": lambda: optim.adamw(1e-2, weight_decay=0.05),
    "rmsprop": lambda: optim.rmsprop(1e-2),
    "adagrad": lambda: optim.adagrad(5e-2),
    "chain(clip, adam)": lambda: optim.chain(optim.clip_by_global_norm(0.5),
                                             optim.adam(schedules.warmup_cosine_decay(
                                                 1e-2, 5, 40))),
}
EARLY = EarlyStopping(monitor="val_loss", patience=3)


def assert_equal_records(a, b) -> None:
    if assert_records_equal is not None:
        assert_records_equal(a, b)
        return
    leaves = lambda s: tree_leaves(s.params)
    assert all(np.array_equal(p, q) for p, q in zip(leaves(a), leaves(b)))


def trained(optimizer_name: str, dtype: str, max_steps: int = 11):
    """A realistic state (mid-epoch, with history, totals, early stopping and its best
    parameters) and the RunConfig that made it."""
    (x, y), val = moons(96, 32)
    optimizer = OPTIMIZERS[optimizer_name]()
    result = pn.fit(ARCH, x, y, optimizer=optimizer, epochs=5, batch_size=16, seed=3,
                    dtype=dtype, l2=1e-3, validation_data=val, early_stopping=EARLY,
                    max_steps=max_steps, progress=False)
    spec = RunConfig(pn.Architecture.from_dicts(ARCH), optimizer, loss="binary_crossentropy",
                     dtype=dtype, seed=3, batch_size=16, l2=1e-3, early_stopping=EARLY)
    return result.state, spec


def stopped_without_validation(optimizer_name: str, dtype: str):
    """A state whose history holds NaN (no validation data: NaN validation metrics) and
    that early stopping ended (train_loss must improve by 10: it stops after 2 epochs,
    restoring the first epoch's parameters)."""
    (x, y), _ = moons(96, 32)
    optimizer = OPTIMIZERS[optimizer_name]()
    early = EarlyStopping(monitor="train_loss", patience=1, min_delta=10.0)
    result = pn.fit(ARCH, x, y, optimizer=optimizer, epochs=5, batch_size=16, seed=3,
                    dtype=dtype, early_stopping=early, progress=False)
    spec = RunConfig(pn.Architecture.from_dicts(ARCH), optimizer, loss="binary_crossentropy",
                     dtype=dtype, seed=3, batch_size=16, early_stopping=early, epochs=5)
    return result.state, spec


def reseal(path: str, format_version: int = FORMAT_VERSION) -> None:
    """Seal ``path`` again after editing its HDF5 body, the way write_checkpoint does."""
    with open(path, "rb") as fh:
        data = fh.read()
    body, fields = data[USERBLOCK_SIZE:], sealed.parse_header(path, data[:USERBLOCK_SIZE])
    length = fields.get("manifest_length")
    with open(path, "wb") as fh:
        fh.write(sealed.seal(body, format_version,
                             None if length is None else int(length)) + body)


# --- round trip -----------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_save_load_round_trip_is_bit_for_bit(tmp_path, name, dtype):
    for state, spec in (trained(name, dtype), stopped_without_validation(name, dtype)):
        assert state.early_stopping.best_params is not None
        path = write_checkpoint(tmp_path / f"step-{state.step:08d}.h5", state, spec)
        loaded = read_checkpoint(path)
        assert_equal_records(loaded.state, state)
        # the fallback comparison, always: every array, dtype included, and the digest
        for a, b in zip(tree_leaves(loaded.state.params), tree_leaves(state.params)):
            assert a.dtype == np.dtype(dtype) and np.array_equal(a, b)
        assert loaded.params_digest == params_digest(state.params)
        assert loaded.config.to_dict() == spec.to_dict()
    assert trained(name, dtype)[0].totals.samples > 0   # the first: mid-epoch
    assert loaded.state.stopped is True and loaded.state.step == 12   # the second: stopped
    assert math.isnan(loaded.state.history.val_loss[-1])
    assert loaded.format_version == FORMAT_VERSION
    assert not loaded.state.params.layers[0].W.flags.writeable   # read-only, like all records


def test_round_trip_of_a_fresh_state_without_early_stopping(tmp_path):
    spec = small_spec(optimizer=optim.sgd(0.1))
    state = state_at(spec, 0)
    loaded = read_checkpoint(write_checkpoint(tmp_path / "a.h5", state, spec))
    assert_equal_records(loaded.state, state)
    assert loaded.state.early_stopping is None and len(loaded.state.history) == 0


def test_fit_with_a_checkpointer_saves_its_final_state(tmp_path):
    (x, y), val = moons(96, 32)
    result = pn.fit(ARCH, x, y, optimizer=OPTIMIZERS["chain(clip, adam)"](), epochs=2,
                    batch_size=16, validation_data=val, early_stopping=EARLY,
                    checkpointer=pn.Checkpointer(tmp_path, every_steps=4), progress=False)
    loaded = pn.load_checkpoint(tmp_path)
    assert loaded.state.step == result.state.step == 12
    assert_equal_records(loaded.state, result.state)


# --- plain HDF5 -----------------------------------------------------------------------


def test_file_is_plain_hdf5_with_named_groups(tmp_path):
    state, spec = trained("adam", "float32")
    path = write_checkpoint(tmp_path / "step-00000011.h5", state, spec)
    with open(path, "rb") as fh:
        assert fh.read(len(sealed.MAGIC)) == sealed.MAGIC
    with h5py.File(path, "r") as f:   # nothing but h5py (and json)
        block = f.userblock_size   # the header and the manifest
        assert block >= 2 * USERBLOCK_SIZE and block & (block - 1) == 0
        assert sorted(f.attrs) == ["config", "data", "experiment", "meta"]
        meta = json.loads(f.attrs["meta"])
        assert meta["format"] == FORMAT_NAME and meta["format_version"] == FORMAT_VERSION == 3
        manifest = _manifest(path)
        assert manifest["meta"] == meta and manifest["config"] == json.loads(f.attrs["config"])
        for name, dtype, shape, offset in manifest["arrays"]:   # where HDF5 has them too
            assert f[name].dtype.str == dtype and list(f[name].shape) == shape
            assert f[name].id.get_offset() == offset and offset % 64 == 0
        assert meta["step"] == 11 and meta["epoch"] == state.epoch
        assert meta["batch_index"] == state.batch_index and meta["seed"] == 3
        for i, layer in enumerate(state.params.layers):
            assert np.array_equal(f[f"params/W{i}"][()], layer.W)
            assert np.array_equal(f[f"params/b{i}"][()], layer.b)
            assert f[f"params/W{i}"].dtype == np.float32
            assert meta["architecture"][i]["activation"] == ARCH[i]["activation"]
        assert np.array_equal(f["optimizer/mu/W2"][()], state.opt_state.mu.layers[2].W)
        assert np.array_equal(f["optimizer/nu/b1"][()], state.opt_state.nu.layers[1].b)
        assert meta["optimizer_state"] == {"record": "AdamState", "count": state.opt_state.count,
                                           "mu": "/optimizer/mu", "nu": "/optimizer/nu"}
        assert json.loads(f.attrs["config"])["optimizer"]["name"] == "adam"
        assert json.loads(f.attrs["config"])["dtype"] == "float32"
        assert json.loads(f.attrs["data"]) is None
        assert list(f["history/val_loss"][()]) == list(state.history.val_loss)
        assert np.array_equal(f["early_stopping/best_params/W0"][()],
                              state.early_stopping.best_params.layers[0].W)
        assert meta["environment"]["numpy"] == np.__version__
        assert meta["totals"]["samples"] == state.totals.samples
        assert meta["early_stopping"]["wait"] == state.early_stopping.wait
        # Few objects: no per-array attributes, one group per tree.
        objects = []
        f.visit(objects.append)
        assert len(objects) == 3 * 6 + 2 + 3 + 6 + len(f["history"]) + 1 + 1
        assert all(len(f[name].attrs) == 0 for name in objects)


def test_the_data_fingerprint_is_stored_as_is(tmp_path):
    spec = small_spec()
    data = {"x": {"shape": [240, 2], "dtype": "<f8", "xxh3_128": "ab" * 16},
            "y": {"shape": [240], "dtype": "<i8", "xxh3_128": "cd" * 16},
            "x_val": None, "y_val": None}
    experiment = {"name": "moons", "data": {"source": "make_moons"}, "checkpoint": {},
                  **spec.to_dict()}
    state = attrs.evolve(state_at(spec, 2), batch_index=2)   # 240 samples: 15 batches an epoch
    loaded = read_checkpoint(write_checkpoint(tmp_path / "a.h5", state, spec,
                                              experiment=experiment, data=data))
    assert loaded.data == data and loaded.experiment == experiment
    assert read_checkpoint(write_checkpoint(tmp_path / "b.h5", state_at(spec, 2), spec)).data is None


def _manifest(path) -> dict:
    with open(path, "rb") as fh:
        data = fh.read()
    length = int(sealed.parse_header(str(path), data[:USERBLOCK_SIZE])["manifest_length"])
    return json.loads(data[USERBLOCK_SIZE:USERBLOCK_SIZE + length])


def test_a_format_3_file_is_read_without_libhdf5(tmp_path, monkeypatch):
    spec = small_spec()
    state = state_at(spec, 4, (0.5, 0.4))
    path = write_checkpoint(tmp_path / "step-00000004.h5", state, spec)

    def refuse(*args, **kwargs):
        raise AssertionError("libhdf5 was called")
    for target in (h5py, h5py.h5d, h5py.h5o, h5py.h5f):
        for name in ("File", "open", "open_file"):
            if hasattr(target, name):
                monkeypatch.setattr(target, name, refuse)
    loaded = read_checkpoint(path)
    assert_equal_records(loaded.state, state)
    assert not loaded.state.params.layers[0].W.flags.owndata   # a view of the file's bytes


# --- refusing to write ----------------------------------------------------------------


def _poisoned(state, leaf: int, value: float):
    leaves = [a.copy() for a in tree_leaves(state.params)]
    leaves[leaf].flat[0] = value
    return attrs.evolve(state, params=tree_unflatten(state.params, leaves))


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_params_are_refused_and_nothing_is_written(tmp_path, value):
    spec = small_spec()
    state = _poisoned(state_at(spec, 5), 2, value)   # leaf 2 = layer 1's W
    with pytest.raises(pn.CheckpointError, match=r"/params/W1 holds NaN or inf") as info:
        write_checkpoint(tmp_path / "step-00000005.h5", state, spec)
    assert "step 5" in str(info.value) and "nothing was written" in str(info.value)
    assert os.listdir(tmp_path) == []
    with pytest.raises(pn.CheckpointError, match="/params/W1"):
        pn.Checkpointer(tmp_path / "ck").save(state, spec)
    assert os.listdir(tmp_path / "ck") == []


def test_non_finite_optimizer_state_is_named(tmp_path):
    spec = small_spec()
    state = state_at(spec, 2)
    mu = state.opt_state.mu
    leaves = [a.copy() for a in tree_leaves(mu)]
    leaves[1][0] = math.nan
    bad = attrs.evolve(state, opt_state=attrs.evolve(state.opt_state, mu=tree_unflatten(mu, leaves)))
    with pytest.raises(pn.CheckpointError, match=r"/optimizer/mu/b0"):
        write_checkpoint(tmp_path / "x.h5", bad, spec)
    assert os.listdir(tmp_path) == []


# --- refusing to read -----------------------------------------------------------------


@pytest.fixture
def saved(tmp_path):
    spec = small_spec()
    state = attrs.evolve(state_at(spec, 4, (0.5, 0.4)), stopped=False)
    return write_checkpoint(tmp_path / "step-00000004.h5", state, spec), state


def test_resealing_an_unchanged_file_keeps_it_valid(saved):
    path, state = saved
    reseal(path)
    assert_equal_records(read_checkpoint(path).state, state)


def test_a_future_format_version_is_refused(saved):
    path, _ = saved
    reseal(path, FORMAT_VERSION + 1)
    with pytest.raises(pn.UnsupportedCheckpointError,
                       match=rf"format version {FORMAT_VERSION + 1}.*upgrade purenet"):
        read_checkpoint(path)


V2_FILE = os.path.join(os.path.dirname(__file__), "data", "v2-step-00000007.h5")


@pytest.fixture
def saved_v2(tmp_path):
    """A copy of the format 2 fixture: older formats are the ones read through HDF5 (in the
    child process of ``purenet upgrade``), so HDF5-level tricks only matter there."""
    path = str(tmp_path / "step-00000007.h5")
    with open(V2_FILE, "rb") as src, open(path, "wb") as dst:
        dst.write(src.read())
    return path


def _edit(path: str, edit) -> None:
    with h5py.File(path, "r+") as f:
        edit(f)
    reseal(path, 2)


def test_a_soft_link_is_refused(saved_v2):
    path = saved_v2
    _edit(path, lambda f: f.__setitem__("params/alias", h5py.SoftLink("/params/W0")))
    with pytest.raises(pn.UnsupportedCheckpointError, match=r"SoftLink at /params/alias"):
        upgrade_checkpoint(path)


def test_an_external_link_is_refused(saved_v2, tmp_path):
    path = saved_v2
    other = str(tmp_path / "other.h5")
    with h5py.File(other, "w") as f:   # a real target, which must never be read
        f["W1"] = np.ones((8, 1))

    def swap(f):
        del f["params/W1"]
        f["params/W1"] = h5py.ExternalLink(other, "/W1")
    _edit(path, swap)
    with pytest.raises(pn.UnsupportedCheckpointError, match=r"ExternalLink at /params/W1"):
        upgrade_checkpoint(path)


def test_external_storage_is_refused(saved_v2, tmp_path):
    path = saved_v2
    with h5py.File(path, "r") as f:
        b = f["params/b0"][()]
    raw = tmp_path / "b.raw"
    raw.write_bytes(b.tobytes())

    def swap(f):
        del f["params/b0"]
        f.create_dataset("params/b0", shape=b.shape, dtype=b.dtype,
                         external=[(str(raw), 0, b.nbytes)])
    _edit(path, swap)
    with pytest.raises(pn.UnsupportedCheckpointError, match=r"/params/b0 is stored outside the file"):
        upgrade_checkpoint(path)


def test_a_virtual_dataset_is_refused(saved_v2):
    path = saved_v2

    def swap(f):
        layout = h5py.VirtualLayout(shape=(2,), dtype="f8")
        layout[:] = h5py.VirtualSource(".", "history/train_loss", shape=(2,))
        del f["history/val_loss"]
        f.create_virtual_dataset("history/val_loss", layout)
    _edit(path, swap)
    with pytest.raises(pn.UnsupportedCheckpointError,
                       match=r"/history/val_loss is stored outside the file"):
        upgrade_checkpoint(path)


def test_missing_file_and_directory_errors(tmp_path):
    with pytest.raises(pn.CheckpointNotFoundError, match="no checkpoint file at"):
        read_checkpoint(tmp_path / "step-00000001.h5")
    with pytest.raises(pn.CheckpointNotFoundError, match="no valid checkpoint"):
        pn.load_checkpoint(tmp_path)
    with pytest.raises(pn.CheckpointError, match="is a directory"):
        read_checkpoint(tmp_path)


# --- summarize ------------------------------------------------------------------------


def test_summarize_reports_what_inspect_shows(tmp_path):
    state, spec = trained("adamw", "float64", max_steps=14)
    path = write_checkpoint(tmp_path / "step-00000014.h5", state, spec)
    facts = summarize(path)
    assert facts["step"] == 14 and facts["epoch"] == state.epoch == 2
    assert facts["loss"] == state.history.train_loss[-1]
    assert facts["val_loss"] == state.history.val_loss[-1]
    assert facts["params_digest"] == params_digest(state.params)
    assert facts["format_version"] == FORMAT_VERSION and facts["format"] == FORMAT_NAME
    assert facts["integrity"] == "ok"
    assert facts["optimizer"] == "adamw" and facts["dtype"] == "float64"
    assert facts["architecture"] == pn.Architecture.from_dicts(ARCH).to_dicts()
    json.dumps(facts)   # plain data
    assert pn.summarize_checkpoint(path) == facts
    assert read_checkpoint(path).state.step == 14


def test_summarize_before_the_first_epoch_uses_the_running_loss(tmp_path):
    state, spec = trained("sgd", "float64", max_steps=3)
    path = write_checkpoint(tmp_path / "step-00000003.h5", state, spec)
    facts = summarize(path)
    assert facts["loss"] == state.totals.loss_sum / state.totals.samples
    assert math.isnan(facts["val_loss"])


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_fifo_or_a_device_is_refused_before_anything_is_read(tmp_path, kind):
    if kind == "fifo":
        path = str(tmp_path / "step-00000001.h5")
        os.mkfifo(path)   # opening it for reading must not wait for a writer
    else:
        path = "/dev/zero"   # reading it would never end
        if not os.path.exists(path):
            pytest.skip("no /dev/zero")
    with pytest.raises(pn.CheckpointError, match="not a regular file"):
        read_checkpoint(path)


def test_a_header_that_promises_more_than_the_file_holds_is_refused_before_reading(saved):
    path, _ = saved
    size = os.path.getsize(path)
    with open(path, "r+b") as fh:   # the file shorter than its header says
        fh.truncate(size - 1)
    with pytest.raises(pn.CorruptCheckpointError, match=r"truncated or padded.*promises"):
        read_checkpoint(path)
    with pytest.raises(pn.CorruptCheckpointError, match=r"truncated or padded"):
        sealed.verify_sealed(path)
