"""Bounded before verified: a checkpoint's header sizes are checked against the file before
anything is read, the manifest is read and planned before the body is allocated, and a file
larger than its manifest accounts for is refused unread. Peak memory is measured in a child
process (its own high-water RSS, VmHWM), on 2 GB sparse files that cost no disk."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from _checkpoint_common import child_env
from _hostile_files import Crafted

import purenet as pn
from purenet.checkpoint import sealed
from purenet.checkpoint.format import read_checkpoint
from purenet.checkpoint.sealed import USERBLOCK_SIZE

BIG = 2 * 10**9
PEAK_MB = 300
ARCH = [{"input_dim": 2, "output_dim": 4, "activation": "relu"},
        {"input_dim": 4, "output_dim": 1, "activation": "sigmoid"}]

MEASURE = r"""
import json, sys
how, path = sys.argv[1], sys.argv[2]


def high_water_mb():   # this process's own peak RSS (ru_maxrss may be the parent's, after exec)
    with open("/proc/self/status") as fh:
        return next(int(l.split()[1]) for l in fh if l.startswith("VmHWM:")) / 1024


import purenet
import purenet.checkpoint   # h5py and the readers: imports, not the load
from purenet.cli.commands import main
before = high_water_mb()
if how == "load":
    try:
        purenet.load_checkpoint(path)
        outcome = "loaded"
    except purenet.CheckpointError as error:
        outcome = type(error).__name__ + ": " + str(error)
else:
    outcome = f"exit {main(['inspect', path, '--json'])}"
print(json.dumps({"outcome": outcome, "imports_mb": before, "peak_mb": high_water_mb()}))
"""


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    directory = tmp_path_factory.mktemp("ck")
    x = np.random.default_rng(0).normal(size=(40, 2))
    pn.fit(ARCH, x, (x[:, 0] > 0).astype(int), optimizer=pn.optim.adam(1e-2), epochs=3,
           batch_size=16, progress=False, max_steps=8,
           checkpointer=pn.Checkpointer(directory, every_steps=4, keep=1))
    (path,) = directory.glob("step-*.h5")
    return str(path)


def measured(how: str, path: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", MEASURE, how, path], env=child_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


def sparse(original: str, path, digest: str | None = None) -> str:
    """``original`` grown to a sparse 2 GB file behind a header that says so (its manifest
    length kept; its digest ``digest``, by default one of the wrong body)."""
    with open(original, "rb") as fh:
        data = fh.read()
    fields = sealed.parse_header(original, data[:USERBLOCK_SIZE])
    with open(path, "wb") as fh:
        fh.write(sealed.header(3, int(fields["manifest_length"]), BIG - USERBLOCK_SIZE,
                               digest or fields["body_xxh3_128"]))
        fh.write(data[USERBLOCK_SIZE:])
        fh.truncate(BIG)
    return str(path)


def padded_digest(original: str) -> str:
    """The digest of ``sparse(original)``'s body: ``original``'s, then zeros to 2 GB."""
    with open(original, "rb") as fh:
        body = fh.read()[USERBLOCK_SIZE:]
    digest, zeros = sealed.DIGESTS[3][1](), bytes(1 << 24)
    digest.update(body)
    left = BIG - USERBLOCK_SIZE - len(body)
    while left:
        digest.update(zeros[:min(left, len(zeros))])
        left -= min(left, len(zeros))
    return digest.hexdigest()


@pytest.mark.parametrize("how", ["load", "inspect"])
def test_a_2_gb_sparse_file_with_a_valid_looking_header_is_refused_in_little_memory(
        original, tmp_path, how):
    path = sparse(original, tmp_path / "step-00000008.h5")
    found = measured(how, path)
    if how == "load":
        assert found["outcome"].startswith("CorruptCheckpointError") and path in found["outcome"]
        assert "more than the" in found["outcome"] and "padded" in found["outcome"]
    else:
        assert found["outcome"] == "exit 1"
    assert found["peak_mb"] < PEAK_MB, found


def test_a_2_gb_sparse_file_whose_manifest_is_damaged_is_streamed_in_little_memory(original,
                                                                                  tmp_path):
    """No plan to bound the file by: its digest is streamed, chunk by chunk, to report it
    as damaged."""
    path = sparse(original, tmp_path / "step-00000008.h5")
    with open(path, "r+b") as fh:
        fh.seek(USERBLOCK_SIZE)
        fh.write(b"[")
    found = measured("load", path)
    assert found["outcome"].startswith("CorruptCheckpointError") and "digest" in found["outcome"]
    assert found["peak_mb"] < PEAK_MB, found


def streamed_digest_matches(path: str) -> bool:
    return sealed.verify_sealed(path) == 3   # the whole file read, in chunks


def test_a_2_gb_file_resealed_with_its_right_digest_is_refused_as_padded_unread(original,
                                                                                 tmp_path):
    path = sparse(original, tmp_path / "step-00000008.h5", padded_digest(original))
    assert streamed_digest_matches(path)
    found = measured("load", path)
    assert found["outcome"].startswith("CorruptCheckpointError") and "padded" in found["outcome"]
    assert found["peak_mb"] < PEAK_MB, found


def test_a_valid_file_padded_by_a_little_is_refused_and_the_original_loads(original, tmp_path):
    crafted = Crafted(original)
    crafted.tail += b"\0" * (1 << 20)
    path = crafted.save(str(tmp_path / "step-00000008.h5"))
    with pytest.raises(pn.CorruptCheckpointError, match=r"more than the .* its manifest "
                                                        r"accounts for \(padded"):
        read_checkpoint(path)
    assert read_checkpoint(Crafted(original).save(str(tmp_path / "same.h5"))).state.step == 8


def test_a_damaged_manifest_is_reported_as_damage_not_as_what_it_became(original, tmp_path):
    """The manifest is planned before the digest is known; a plan that fails on damaged
    bytes is reported once the digest says they are damaged."""
    path = str(tmp_path / "step-00000008.h5")
    with open(original, "rb") as fh:
        data = bytearray(fh.read())
    data[USERBLOCK_SIZE + 3] ^= 0x40   # inside the manifest's first key, not resealed
    with open(path, "wb") as fh:
        fh.write(data)
    with pytest.raises(pn.CorruptCheckpointError, match="digest of its contents does not match"):
        read_checkpoint(path)


def test_a_valid_file_costs_its_size_and_little_more(tmp_path):
    """A large valid state (a 2000x2000 float64 network with Adam: ~96 MB) loads within its
    size plus a few MiB beyond what the imports hold."""
    arch = [{"input_dim": 2000, "output_dim": 2000, "activation": "relu"},
            {"input_dim": 2000, "output_dim": 1, "activation": "sigmoid"}]
    x = np.random.default_rng(0).normal(size=(4, 2000))
    pn.fit(arch, x, [0, 1, 0, 1], dtype="float64", epochs=1, batch_size=4, progress=False,
           checkpointer=pn.Checkpointer(tmp_path, keep=1))
    (path,) = tmp_path.glob("step-*.h5")
    size_mb = os.path.getsize(path) / 2**20
    found = measured("load", str(path))
    assert found["outcome"] == "loaded"
    assert found["peak_mb"] - found["imports_mb"] < size_mb + 16, (found, size_mb)
