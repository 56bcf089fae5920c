"""Rewind (purenet.checkpoint.rewind): the exact state at any step, saved or not, and the
run's ownership of its data."""

import os
import subprocess
import sys

import numpy as np
import pytest

import purenet as pn
from purenet import optim
from purenet.testing import assert_records_equal

ARCH = [{"input_dim": 3, "output_dim": 16, "activation": "relu", "dropout": 0.2},
        {"input_dim": 16, "output_dim": 1, "activation": "sigmoid"}]
STEPS_PER_EPOCH = 5   # 76 samples, batch 16


def data():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(96, 3))
    y = (x[:, 0] - x[:, 2] > 0).astype(int)
    return x[:76], y[:76], (x[76:], y[76:])


def settings():
    return dict(optimizer=optim.adam(optim.schedules.exponential_decay(0.02, 0.5, 20)),
                epochs=8, batch_size=16, seed=5, l2=1e-3, progress=False,
                early_stopping=pn.EarlyStopping("val_loss", patience=50))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A whole run with a checkpoint every 7 steps, the oldest ones pruned (keep=3)."""
    directory = tmp_path_factory.mktemp("run") / "checkpoints"
    x, y, validation = data()
    result = pn.fit(ARCH, x, y, validation_data=validation,
                    checkpointer=pn.Checkpointer(directory, every_steps=7, keep=3), **settings())
    return directory, result


@pytest.mark.parametrize("step", [0, 3, 7, 13, 23, 28, 30, 35, 40])
def test_state_at_equals_fit_to_that_step(saved, step):
    """At (28, 35), between (30), before the oldest kept (3, 7, 13, 23: replayed from the
    start), mid-epoch (13, 23) and at the end (40) of a run with dropout, a schedule and
    early stopping."""
    directory, _ = saved
    x, y, validation = data()
    wanted = pn.fit(ARCH, x, y, validation_data=validation, max_steps=step, **settings())
    got = pn.state_at(directory, step, x, y, validation)
    assert got.step == step
    assert_records_equal(got, wanted.state)


def test_state_at_takes_a_run_directory_too(saved):
    directory, _ = saved
    x, y, validation = data()
    assert pn.state_at(directory.parent, 30, x, y, validation).step == 30


def test_a_step_past_the_end_is_refused(saved):
    directory, result = saved
    x, y, validation = data()
    assert result.state.step == 40
    with pytest.raises(ValueError, match="step 41 lies past the end of the run.*ends at step 40"):
        pn.state_at(directory, 41, x, y, validation)


@pytest.mark.parametrize("change", ["scaled", "flipped", "fewer", "validation"])
def test_other_data_is_refused(saved, change):
    directory, _ = saved
    x, y, validation = data()
    if change == "scaled":
        x = x * 2
    elif change == "flipped":
        y = 1 - y
    elif change == "fewer":
        x, y = x[:-1], y[:-1]
    else:
        validation = (validation[0] + 1, validation[1])
    with pytest.raises(pn.CheckpointMismatchError, match="data"):
        pn.state_at(directory, 30, x, y, validation)


def test_resuming_fit_with_other_data_is_refused_naming_the_array(tmp_path):
    x, y, validation = data()
    run = settings()
    pn.fit(ARCH, x, y, validation_data=validation, max_steps=9,
           checkpointer=pn.Checkpointer(tmp_path), **run)
    with pytest.raises(pn.CheckpointMismatchError, match=r"y\.xxh3_128: this run's data has"):
        pn.fit(ARCH, x, 1 - y, validation_data=validation, resume=True,
               checkpointer=pn.Checkpointer(tmp_path), **run)


def test_purenet_rewind_writes_the_state_as_a_checkpoint(tmp_path):
    config = os.path.join(os.path.dirname(__file__), os.pardir, "scripts", "moons.toml")
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}

    def purenet(*args):
        done = subprocess.run([sys.executable, "-m", "purenet", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return done

    purenet("train", config, "--epochs", "3", "--no-progress", "--run-dir", "run")
    done = purenet("rewind", "run", "--step", "100")
    assert "the state after step 100" in done.stdout
    rewound = pn.load_checkpoint(tmp_path / "run" / "rewound" / "step-00000100.h5")
    assert rewound.state.step == 100 and rewound.config.epochs == 3
