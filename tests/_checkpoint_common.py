"""Shared pieces of the checkpoint tests: the run they train, the child processes they
start, and small helpers. Not a test module (pytest collects only ``test_*.py``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any


import purenet as pn
from purenet import optim
from purenet.optim import schedules
from purenet.train.state import EpochTotals, History
from purenet.train.config import RunConfig
from purenet.train.loop import initial_state_for

TESTS = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(TESTS)

ARCH = [
    {"input_dim": 2, "output_dim": 16, "activation": "relu", "dropout": 0.2},
    {"input_dim": 16, "output_dim": 16, "activation": "tanh"},
    {"input_dim": 16, "output_dim": 1, "activation": "sigmoid"},
]


def moons(n: int = 240, n_val: int = 80, random_state: int = 0):
    """Fixed make_moons data: ((x, y), (x_val, y_val))."""
    from sklearn.datasets import make_moons

    x, y = make_moons(n + n_val, noise=0.2, random_state=random_state)
    return (x[:n], y[:n]), (x[n:], y[n:])


def child_env() -> dict[str, str]:
    """The environment of every child process: one BLAS thread everywhere, so results are
    comparable bit for bit between processes, and purenet importable from the checkout."""
    env = dict(os.environ)
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONHASHSEED="0", PYTHONWARNINGS="error",
               PYTHONPATH=os.pathsep.join(p for p in (REPO, env.get("PYTHONPATH")) if p))
    return env


def script(name: str) -> list[str]:
    return [sys.executable, os.path.join(TESTS, name)]


def load_in_child(paths: list[str], timeout: float = 120) -> list[dict[str, Any]]:
    """Load each path with ``purenet.load_checkpoint`` in ONE child process and return its
    report per path: ``{"path", "error", "checkpoint_error", "message", "step",
    "unpickled"}``. A crash of the child (say, in HDF5's C code) fails the caller's test
    with the child's output instead of killing pytest."""
    proc = subprocess.run(script("_load_child.py"), input="\n".join(paths), env=child_env(),
                          capture_output=True, text=True, timeout=timeout)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or len(lines) != len(paths):
        done = len(lines)
        raise AssertionError(
            f"the loading child exited with {proc.returncode} after {done} of {len(paths)} "
            f"paths (next: {paths[done] if done < len(paths) else None}); stderr:\n"
            f"{proc.stderr[-3000:]}")
    return lines


def snapshot(directory: str) -> dict[str, bytes]:
    """Every file in ``directory`` with its bytes."""
    found = {}
    for name in sorted(os.listdir(directory)):
        with open(os.path.join(directory, name), "rb") as fh:
            found[name] = fh.read()
    return found


def temp_files(directory: str) -> list[str]:
    return [name for name in os.listdir(directory) if ".tmp-" in name]


def step_files(directory: str) -> list[str]:
    return sorted(name for name in os.listdir(directory)
                  if name.startswith("step-") and name.endswith(".h5"))


def small_spec(seed: int = 0, dtype: str = "float64", optimizer=None,
               hidden: int = 8) -> RunConfig:
    arch = pn.Architecture.from_dicts([
        {"input_dim": 2, "output_dim": hidden, "activation": "relu"},
        {"input_dim": hidden, "output_dim": 1, "activation": "sigmoid"}])
    return RunConfig(arch, optimizer or optim.adam(schedules.exponential_decay(1e-2, 0.5, 50)),
                     loss="binary_crossentropy", dtype=dtype, seed=seed, batch_size=16)


def state_at(spec: RunConfig, step: int, val_losses: tuple[float, ...] = ()):
    """The initial state of ``spec`` relabelled as ``step``, with one history row per
    value of ``val_losses`` (and ``val_accuracy = 1 - val_loss``), for retention tests that
    need no training. ``step`` must be a multiple of ``len(val_losses)``."""
    import attrs

    history = History()
    for i, value in enumerate(val_losses):
        history = history.append(epoch=i + 1, train_loss=1.0, train_accuracy=0.5,
                                 val_loss=value, val_accuracy=1 - value)
    # A state its run could reach: counters that add up (all steps in the first epoch, or
    # whole epochs of equal length), an optimizer that counted every step, the sums of the
    # batches done in the epoch in progress.
    state = initial_state_for(spec)
    batch_index = 0 if val_losses else step
    samples = batch_index * spec.batch_size
    return attrs.evolve(state, step=step, epoch=len(val_losses), batch_index=batch_index,
                        history=history, opt_state=counted(state.opt_state, step),
                        totals=EpochTotals(0.5 * samples, 0.0, samples))


def counted(record, count: int):
    """An optimizer state record with ``count`` updates made, at every depth of a chain."""
    import attrs

    names = {field.name for field in attrs.fields(type(record))}
    if "states" in names:
        return attrs.evolve(record, states=tuple(counted(r, count) for r in record.states))
    return attrs.evolve(record, count=count) if "count" in names else record


class FileProxy:
    """A file object passed through, for tests that intercept writes (subclass ``write``)."""

    def __init__(self, fh) -> None:
        self.fh = fh

    def __getattr__(self, name):
        return getattr(self.fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.fh.close()
