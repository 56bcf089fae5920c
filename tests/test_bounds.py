"""Bounds before allocation: every input that would take more memory (or time) than the
machine has is refused first, by a clear error naming the key or the file, with numbers."""

from __future__ import annotations

import io
import os
import pathlib
import zipfile

import numpy as np
import pytest

from purenet.cli import commands as cli
from purenet.errors import ExperimentError
from purenet.experiment import limits
from purenet.experiment.config import load_experiment
from purenet.experiment.datasets import read_file
from purenet.experiment.npzfile import declared_arrays
from purenet.experiment.runner import run_experiment

EXPERIMENT = """\
epochs = 1

[data]
source = "make_moons"

[data.args]
n_samples = 100

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
"""


def write(tmp_path: pathlib.Path, text: str, name: str = "exp.toml") -> str:
    (tmp_path / name).write_text(text)
    return str(tmp_path / name)


def refused(tmp_path: pathlib.Path, text: str) -> ExperimentError:
    with pytest.raises(ExperimentError) as info:
        run_experiment(load_experiment(write(tmp_path, text)), tmp_path / "run",
                       progress=False)
    assert not (tmp_path / "run").exists()      # refused before the directory was made
    return info.value


def test_a_layer_of_a_billion_units_is_refused_with_the_numbers(tmp_path):
    text = EXPERIMENT.replace("output_dim = 4", "output_dim = 1000000000").replace(
        "input_dim = 4", "input_dim = 1000000000")
    error = refused(tmp_path, text)
    assert error.key in ("layers[0].output_dim", "layers[1].output_dim")
    assert "needs about" in str(error) and "GiB" in str(error) and "available" in str(error)


def test_a_generator_of_a_trillion_samples_is_refused_before_it_runs(tmp_path):
    error = refused(tmp_path, EXPERIMENT.replace("n_samples = 100", "n_samples = 1000000000000"))
    assert error.key == "data.args.n_samples" and "TiB" in str(error)
    error = refused(tmp_path, EXPERIMENT.replace("n_samples = 100",
                                                 "n_samples = [1000000000000, 5]"))
    assert error.key == "data.args.n_samples"
    # Wider layers make the activations the heaviest part: the samples are still the cause.
    wide = EXPERIMENT.replace("output_dim = 4", "output_dim = 64").replace(
        "input_dim = 4", "input_dim = 64")
    error = refused(tmp_path, wide.replace("n_samples = 100", "n_samples = 1000000000000"))
    assert error.key == "data.args.n_samples" and "activations" in str(error)


def test_the_estimate_is_compared_with_the_memory_available(tmp_path, monkeypatch):
    monkeypatch.setattr(limits, "available_memory", lambda: 10 * 2 ** 20)   # 10 MiB
    error = refused(tmp_path, EXPERIMENT.replace("n_samples = 100", "n_samples = 200000"))
    assert "only 10.0 MiB is available" in str(error)
    monkeypatch.setattr(limits, "available_memory", lambda: None)   # unknown: no refusal
    run_experiment(load_experiment(write(tmp_path, EXPERIMENT)), tmp_path / "ok",
                   progress=False)


def test_fit_and_the_estimators_refuse_a_network_too_big_before_allocating_it(monkeypatch):
    import resource

    import numpy as np

    import purenet as pn
    from purenet.sklearn import PureNetClassifier

    monkeypatch.setattr(limits, "available_memory", lambda: 16 * 2 ** 30)   # any machine
    x = np.random.default_rng(0).normal(size=(50, 5))
    y = (x[:, :1] > 0).astype(float)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    huge = [{"input_dim": 5, "output_dim": 40000, "activation": "relu"},
            {"input_dim": 40000, "output_dim": 40000, "activation": "relu"},
            {"input_dim": 40000, "output_dim": 1, "activation": "sigmoid"}]
    with pytest.raises(pn.SettingError, match=r"^layers needs about 4\d\.\d GiB of memory "
                       r"\(params 4\d\.\d GiB"):
        pn.fit(huge, x, y, epochs=1, progress=False)
    with pytest.raises(ValueError, match="needs about .* GiB of memory"):
        PureNetClassifier(hidden_layer_sizes=(40000, 40000), max_iter=1).fit(x, y.ravel())
    # refused from the estimate: a 40000 x 40000 float64 matrix alone is 12.8 GB
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 2 * 2 ** 20   # KiB


def test_available_memory_is_positive_and_below_the_machine_total():
    available = limits.available_memory()
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert available is not None and 0 < available <= total


@pytest.mark.parametrize("where", ["file", "override"])
def test_a_deeply_nested_toml_array_is_an_error_not_a_recursion(tmp_path, where):
    deep = "[" * 100000 + "]" * 100000
    if where == "file":
        with pytest.raises(ExperimentError, match="nest 100000 deep"):
            load_experiment(write(tmp_path, f"x = {deep}\n" + EXPERIMENT))
    else:
        with pytest.raises(ExperimentError, match="nest 100000 deep") as info:
            load_experiment(write(tmp_path, EXPERIMENT), [f"epochs={deep}"])
        assert "--set epochs=" in str(info.value)


def test_an_experiment_file_must_be_a_small_regular_file(tmp_path):
    with pytest.raises(ExperimentError, match="is a device"):
        load_experiment("/dev/zero")
    os.mkfifo(tmp_path / "fifo.toml")
    with pytest.raises(ExperimentError, match="is a FIFO"):
        load_experiment(tmp_path / "fifo.toml")
    big = write(tmp_path, EXPERIMENT + "#" * (2 * 2 ** 20) + "\n", "big.toml")
    with pytest.raises(ExperimentError, match="more than the 1.0 MiB"):
        load_experiment(big)


def test_seed_beyond_64_bits_is_refused_when_the_file_is_read(tmp_path):
    with pytest.raises(ExperimentError, match=r"seed: must be an integer in \[0, "):
        load_experiment(write(tmp_path, f"seed = {2 ** 64}\n" + EXPERIMENT))
    assert cli.main(["train", write(tmp_path, EXPERIMENT), "--seed", str(2 ** 64)]) == 1


# --- NPZ files ------------------------------------------------------------------------


def npy_bytes(shape: tuple[int, ...], dtype: str = "<f8", body: bytes = b"") -> bytes:
    """A .npy member whose header declares ``shape``, followed by ``body`` alone."""
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, {"descr": dtype, "fortran_order": False,
                                               "shape": shape})
    return out.getvalue() + body


def npz(tmp_path: pathlib.Path, members: dict[str, bytes], compressed: bool = True) -> str:
    path = tmp_path / "data.npz"
    method = zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return str(path)


def npz_experiment(tmp_path: pathlib.Path) -> str:
    text = EXPERIMENT.replace('source = "make_moons"', 'path = "data.npz"\ntarget = "y"')
    return text[:text.index("[data.args]")] + text[text.index("[[layers]]"):]


def test_an_npz_bomb_is_refused_from_its_headers(tmp_path):
    # 10^11 float64 zeros declared (800 GB), a few KB on disk: never decompressed.
    bomb = npy_bytes((10 ** 11,), body=bytes(4096))
    npz(tmp_path, {"x.npy": bomb, "y.npy": npy_bytes((10 ** 11,), body=bytes(64))})
    error = refused(tmp_path, npz_experiment(tmp_path))
    assert error.key == "data.path" and "needs about" in str(error)
    with pytest.raises(ValueError, match="declares arrays of"):
        read_file(str(tmp_path / "data.npz"), "y", max_bytes=2 ** 30)


def test_npz_members_must_be_numeric_arrays(tmp_path):
    x = io.BytesIO()
    np.save(x, np.zeros(5))
    npz(tmp_path, {"x.npy": x.getvalue(), "notes.txt": b"hello"})
    with pytest.raises(ValueError, match="member 'notes.txt' is not an array"):
        declared_arrays(str(tmp_path / "data.npz"))
    npz(tmp_path, {"x.npy": x.getvalue(), "y.npy": npy_bytes((5,), "|O", b"\x80")})
    with pytest.raises(ValueError, match="holds Python objects"):
        declared_arrays(str(tmp_path / "data.npz"))
    npz(tmp_path, {"x.npy": x.getvalue(), "y.npy": b"not an array at all"})
    with pytest.raises(ValueError, match="member 'y.npy' is not a readable array"):
        declared_arrays(str(tmp_path / "data.npz"))
    (tmp_path / "data.npz").write_bytes(b"PK not really a zip")
    with pytest.raises(ValueError, match="is not an NPZ file"):
        declared_arrays(str(tmp_path / "data.npz"))


def test_npz_arrays_of_other_shapes_or_lengths_are_refused(tmp_path):
    path = tmp_path / "data.npz"
    np.savez(path, x=np.zeros((5, 2, 2)), y=np.zeros(5))
    with pytest.raises(ValueError, match=r"array 'x' has shape \(5, 2, 2\)"):
        read_file(str(path), "y")
    np.savez(path, x=np.zeros((5, 2)), y=np.zeros(4))
    with pytest.raises(ValueError, match="different numbers of rows: x 5, y 4"):
        read_file(str(path), "y")


def test_npz_nan_names_the_array_and_the_row_counted_from_one(tmp_path):
    x = np.zeros((6, 2))
    x[3, 1] = np.nan
    np.savez(tmp_path / "data.npz", x=x, y=np.zeros(6))
    with pytest.raises(ValueError, match=r"feature 'x1' holds nan in row 4 \(rows and "
                                         r"columns counted from 1\)"):
        read_file(str(tmp_path / "data.npz"), "y")
    y = np.zeros((6, 3))
    y[5, 2] = np.inf
    np.savez(tmp_path / "data.npz", x=np.zeros((6, 2)), y=y)
    with pytest.raises(ValueError, match=r"target 'y' \(column 3\) holds inf in row 6"):
        read_file(str(tmp_path / "data.npz"), "y")


def test_npz_feature_names_that_collide_are_refused(tmp_path):
    np.savez(tmp_path / "data.npz", x=np.zeros((4, 2)), x0=np.zeros(4), y=np.zeros(4))
    with pytest.raises(ValueError, match=r"names the column\(s\) \['x0'\] more than once"):
        read_file(str(tmp_path / "data.npz"), "y")


@pytest.mark.parametrize("kind, match", [("device", "is a device"), ("fifo", "is a FIFO"),
                                         ("directory", "is a directory")])
def test_data_files_must_be_regular_files(tmp_path, kind, match):
    path = tmp_path / "data.csv"
    {"device": lambda: os.symlink("/dev/zero", path), "fifo": lambda: os.mkfifo(path),
     "directory": path.mkdir}[kind]()
    with pytest.raises(ValueError, match=match):
        read_file(str(path), "y")
    text = EXPERIMENT.replace('source = "make_moons"', 'path = "data.csv"\ntarget = "y"')
    text = text[:text.index("[data.args]")] + text[text.index("[[layers]]"):]
    with pytest.raises(ExperimentError, match=f"data.path: .*{match}"):
        load_experiment(write(tmp_path, text))
