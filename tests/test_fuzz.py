"""Seeded fuzzing of real checkpoint files: byte flips, truncations and inserted bytes in
the header, the manifest and the body of a format 3 file, and in the body of a format 2
file, each file sealed again so that its digest is right. Every load runs in a child
process (many loads per child, a watchdog per load, a memory limit; format 2 files through
``upgrade_checkpoint``, their only reader): every outcome must be a valid state or a
CheckpointError, never a hang, a crash or another exception.
``-m slow`` runs ten times as many."""

from __future__ import annotations

import collections
import json
import os
import random
import shutil
import subprocess

import numpy as np
import pytest
from _checkpoint_common import child_env, script

import purenet as pn
from purenet.checkpoint import sealed
from purenet.checkpoint.sealed import USERBLOCK_SIZE

SEED = 20261129
V2 = os.path.join(os.path.dirname(__file__), "data", "v2-step-00000007.h5")
SECONDS_PER_LOAD = 20
MEMORY = 1 << 30
COUNTS = {"fast": (300, 10), "slow": (3000, 160)}   # format 3 cases, format 2 cases
CHECKPOINT_ERRORS = {"CheckpointError", "CorruptCheckpointError", "NotACheckpointError",
                     "UnsupportedCheckpointError", "CheckpointNotFoundError",
                     "NewerCheckpointError"}


@pytest.fixture(scope="module")
def v3_file(tmp_path_factory):
    directory = tmp_path_factory.mktemp("fuzz")
    x = np.random.default_rng(0).normal(size=(40, 2))
    pn.fit([{"input_dim": 2, "output_dim": 4, "activation": "relu"},
            {"input_dim": 4, "output_dim": 1, "activation": "sigmoid"}], x,
           (x[:, 0] > 0).astype(int), optimizer=pn.optim.adam(1e-2), epochs=3, batch_size=16,
           validation_data=(x[:8], (x[:8, 0] > 0).astype(int)), progress=False,
           early_stopping=pn.EarlyStopping(patience=5), max_steps=8,
           checkpointer=pn.Checkpointer(directory, every_steps=4, keep=1))
    (path,) = directory.glob("step-*.h5")
    return str(path)


def _parts(data: bytes) -> tuple[dict, int]:
    fields = sealed.parse_header("fuzz", data[:USERBLOCK_SIZE])
    return fields, int(fields.get("manifest_length", 0))


def mutate(data: bytes, rng: random.Random) -> tuple[str, bytes, int | None]:
    """One mutation of a sealed file's body, and the manifest length to seal it with:
    ``(description, new body, manifest length)``."""
    fields, length = _parts(data)
    body = bytearray(data[USERBLOCK_SIZE:])
    region = rng.choice(["manifest", "body", "anywhere"] if length else ["body", "anywhere"])
    low, high = {"manifest": (0, length), "body": (length, len(body)),
                 "anywhere": (0, len(body))}[region]
    at = rng.randrange(low, max(high, low + 1))
    kind = rng.choice(["flip", "byte", "truncate", "insert", "delete", "manifest_length"]
                      if length else ["flip", "byte", "truncate", "insert", "delete"])
    if kind == "flip":
        body[at] ^= 1 << rng.randrange(8)
    elif kind == "byte":
        body[at] = rng.randrange(256)
    elif kind == "truncate":
        del body[at:]
    elif kind == "insert":
        body[at:at] = bytes(rng.randrange(256) for _ in range(rng.choice([1, 3, 8, 64])))
    elif kind == "delete":
        del body[at:at + rng.choice([1, 4, 64])]
    if kind == "manifest_length":
        length = rng.choice([0, 1, length - 1, length + 1, rng.randrange(len(body) + 1)])
    elif region == "manifest" and kind in ("insert", "delete") and rng.random() < 0.5:
        length = max(0, min(len(body), length + (len(body) - len(data) + USERBLOCK_SIZE)))
    return f"{kind} in {region} at {at}", bytes(body), length or None


def run_loads(paths: list[str]) -> list[dict]:
    """Load ``paths`` in one child; a child that dies mid-way is a failure at that path."""
    proc = subprocess.run(script("_fuzz_child.py") + [str(SECONDS_PER_LOAD), str(MEMORY)],
                          input="\n".join(paths), env=child_env(), capture_output=True,
                          text=True, timeout=SECONDS_PER_LOAD * len(paths) + 60)
    reports = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or len(reports) != len(paths):
        stuck = paths[len(reports)] if len(reports) < len(paths) else None
        raise AssertionError(f"the fuzz child died (status {proc.returncode}) at {stuck}: "
                             f"a hang, a crash or a memory bomb; stderr:\n{proc.stderr[-3000:]}")
    return reports


def fuzz(source: str, count: int, seed: int, directory) -> collections.Counter:
    with open(source, "rb") as fh:
        data = fh.read()
    version = int(_parts(data)[0]["format_version"])
    rng = random.Random(seed)
    paths, what = [], {}
    for i in range(count):
        description, body, length = mutate(data, rng)
        path = str(directory / f"step-{i:08d}.h5")
        with open(path, "wb") as fh:
            fh.write(sealed.seal(body, version, manifest_length=length) + body)
        paths.append(path)
        what[path] = description
    outcomes = collections.Counter()
    bad = []
    for report in run_loads(paths):
        outcome = report["outcome"]
        outcomes[outcome] += 1
        if outcome != "ok" and outcome not in CHECKPOINT_ERRORS:
            bad.append((what[report["path"]], outcome, report["message"]))
        elif outcome != "ok" and report["path"] not in report["message"]:
            bad.append((what[report["path"]], "message names no file", report["message"]))
    assert not bad, f"{len(bad)} of {count} mutations ended badly: {bad[:5]}"
    print(f"\nformat {version}: {count} resealed mutations: {dict(outcomes)}")
    return outcomes


def _check(outcomes: collections.Counter, count: int) -> None:
    assert sum(outcomes.values()) == count
    assert sum(n for o, n in outcomes.items() if o != "ok") > count // 2   # most are refused


def test_resealed_mutations_of_a_format_3_file(v3_file, tmp_path):
    count = COUNTS["fast"][0]
    _check(fuzz(v3_file, count, SEED, tmp_path), count)


def test_resealed_mutations_of_a_format_2_file(tmp_path):
    count = COUNTS["fast"][1]
    _check(fuzz(V2, count, SEED + 1, tmp_path), count)


@pytest.mark.slow
@pytest.mark.parametrize("which", ["v3", "v2"])
def test_many_more_resealed_mutations(v3_file, tmp_path, which):
    count = COUNTS["slow"][0 if which == "v3" else 1]
    source = v3_file if which == "v3" else V2
    for batch in range(0, count, 500):   # a few children, each a fresh process
        sub = tmp_path / str(batch)
        sub.mkdir()
        _check(fuzz(source, min(500, count - batch), SEED + 7 + batch, sub), min(500, count - batch))
        shutil.rmtree(sub)
