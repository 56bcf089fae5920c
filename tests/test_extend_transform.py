"""A user's own optimizer transforms, in Optax's shape: registration refuses what it can
check on a small network (signature, purity, shapes, dtypes, determinism, a state record a
checkpoint can hold), and a registered transform composes with the built-ins through
``chain``, ``fit``, experiment files, checkpoints, resume after kill -9, and rewind, bit
for bit; a process without it refuses its files in one line."""

from __future__ import annotations

import inspect
import json
import os
import random
import signal
import subprocess
import sys
import time

import attrs
import numpy as np
import pytest
from _checkpoint_common import child_env, moons, script, step_files

import purenet as pn
from purenet import extend, optim
from purenet.core.records import Grads, tree_map
from purenet.testing import assert_records_equal, assert_resumes_exactly

from _hostile_files import Crafted, craft



@pytest.fixture
def forget():
    names: list[str] = []
    yield names
    for name in names:
        extend.unregister("transform", name)


def _sign_only():
    return (lambda params: pn.optim.EmptyState(),
            lambda grads, state, params=None: (tree_map(np.sign, grads), state))


# --- registration ---------------------------------------------------------------------


def test_a_registered_transform_is_a_constructor_that_chains_and_round_trips(pieces):
    clip = pieces.clip
    assert list(inspect.signature(clip).parameters) == ["ratio", "decay"]
    made = optim.chain(clip(1.5), optim.adam(0.01))
    config = made.config()
    assert config == {"name": "chain", "transforms": [
        {"name": "clip_by_running_norm", "ratio": 1.5, "decay": 0.9},
        {"name": "adam", "learning_rate": 0.01, "b1": 0.9, "b2": 0.999, "eps": 1e-08}]}
    assert optim.from_config(config).config() == config
    # the flat form is for built-in transforms only
    with pytest.raises(pn.SettingError, match="is not an argument of adam"):
        optim.from_config({"name": "adam", "clip_by_running_norm": 1.5})
    with pytest.raises(pn.SettingError, match="ratio"):
        clip(ratio=[1.0])


def test_a_transform_may_be_an_object_with_init_and_update(forget):
    class Transformation:   # the shape of optax.GradientTransformation
        def __init__(self):
            self.init, self.update = _sign_only()

    forget.append("sign_of")
    sign = optim.register_transform("sign_of", lambda: Transformation())
    params = pn.init_params([{"input_dim": 2, "output_dim": 1, "activation": "sigmoid"}], 0)
    grads = Grads(tuple(pn.Dense(-layer.W - 1, layer.b + 1) for layer in params.layers))
    updates, _ = sign().update(grads, sign().init(params), params)
    assert np.array_equal(updates.layers[0].b, np.ones(1))


@attrs.define
class _Mutable:
    count: int


@attrs.frozen
class _ListState:
    values: list


@attrs.frozen
class _Counter:
    count: int


def _bad(init, update):
    return lambda: (init, update)


def _wrong_shape(grads, state, params=None):
    return Grads(tuple(pn.Dense(g.W[:1], g.b) for g in grads.layers)), state


def _in_place(grads, state, params=None):
    grads.layers[0].W.setflags(write=True)
    grads.layers[0].W[0, 0] += 1
    return grads, state


@pytest.mark.parametrize("factory, problem", [
    (_bad(lambda p: _Mutable(0), lambda g, s, p=None: (g, s)),
     "must return a frozen attrs record"),
    (_bad(lambda p: _ListState([]), lambda g, s, p=None: (g, s)),
     "field 'values' of _ListState is annotated 'list'"),
    (_bad(lambda p: _Counter(-1), lambda g, s, p=None: (g, s)),
     "_Counter.count is a int -1; its annotation asks for int from 0 to 2\\*\\*63-1"),
    (_bad(lambda p: _Counter(0), _wrong_shape), "must hold arrays of the parameters' shapes"),
    (_bad(lambda p: _Counter(0), _in_place), "changed its argument in place"),
    (_bad(lambda p: _Counter(0),
          lambda g, s, p=None: (tree_map(lambda a: a * np.random.random(), g), s)),
     "gave two results for the same inputs"),
    (_bad(lambda p: _Counter(0), lambda g, s, p=None: (g, _Mutable(1))),
     "update must return \\(Grads, _Counter\\), got \\(a Grads, a _Mutable\\)"),
    (_bad(lambda p: _Counter(0), lambda g, s, p=None: (tree_map(lambda a: a.astype(np.float32), g), s)),
     "float32"),
    (lambda: "not a pair", "must return \\(init, update\\)"),
    (lambda *scales: _sign_only(), "every hyperparameter must have a name"),
    (lambda scale=np.ones(2): _sign_only(), "is not a number, bool or string"),
    (lambda limit: _sign_only(), "needs values for \\['limit'\\] to be checked"),
])
def test_a_transform_that_breaks_the_contract_is_refused(factory, problem, forget):
    with pytest.raises(pn.SettingError, match=problem):
        optim.register_transform("broken", factory)
    assert "broken" not in optim.TRANSFORMS


def test_hyperparameters_without_defaults_are_probed_with_an_example(forget):
    forget.append("scaled_sign")
    scaled = optim.register_transform(
        "scaled_sign", lambda scale: (lambda p: pn.optim.EmptyState(),
                                      lambda g, s, p=None: (tree_map(lambda a: np.sign(a) * a.dtype.type(scale), g), s)),
        example={"scale": 0.5})
    assert scaled(2.0).hyperparams == {"scale": 2.0}


def test_built_in_names_and_records_are_never_shadowed(forget):
    with pytest.raises(pn.SettingError, match="is purenet's built-in transform"):
        optim.register_transform("clip_by_value", _sign_only)

    @attrs.frozen
    class AdamState:   # the built-in record's name
        count: int

    with pytest.raises(pn.SettingError, match="'AdamState' is purenet's built-in optimizer "
                       "state record"):
        optim.register_transform("fake_adam", lambda: (lambda p: AdamState(0),
                                                        lambda g, s, p=None: (g, AdamState(s.count + 1))))


def test_a_state_record_name_belongs_to_one_class(pieces, forget):
    @attrs.frozen
    class RunningNormState:   # as tests/_pieces.py's, another class
        count: int

    forget.append("other")
    with pytest.raises(pn.SettingError, match="has a state record named .RunningNormState."):
        optim.register_transform("other", lambda: (lambda p: RunningNormState(0),
                                                    lambda g, s, p=None: (g, s)))


# --- training, checkpoints, resume -----------------------------------------------------

ARCH = [{"input_dim": 2, "output_dim": 12, "activation": "swish"},
        {"input_dim": 12, "output_dim": 1, "activation": "sigmoid"}]


def _config(clip, **changes):
    return pn.RunConfig(pn.Architecture.from_dicts(ARCH),
                        optim.chain(clip(1.2), optim.adam(0.03)), loss="binary_crossentropy",
                        seed=4, batch_size=32, epochs=4, **changes)


def test_fit_trains_through_a_user_transform_and_resumes_exactly(pieces):
    (x, y), _ = moons(200, 0)
    first, second = (pn.fit(_config(pieces.clip), x, y, progress=False) for _ in range(2))
    assert_records_equal(first.state, second.state)
    state = first.state.opt_state.states[0]
    assert type(state).__name__ == "RunningNormState" and state.count == first.state.step
    assert first.history.train_loss[-1] < first.history.train_loss[0]
    for at_step in (5, 7, 14):   # mid-epoch, the end of the first one, the second
        assert_resumes_exactly(_config(pieces.clip), x, y, at_step)


def _checkpoints(pieces, tmp_path):
    (x, y), _ = moons(200, 0)
    directory = str(tmp_path / "ckpt")
    pn.fit(_config(pieces.clip), x, y, checkpointer=pn.Checkpointer(directory, every_epochs=1),
           progress=False)
    return directory


def test_a_checkpoint_holds_the_transform_state_and_names_it(pieces, tmp_path):
    directory = _checkpoints(pieces, tmp_path)
    path = os.path.join(directory, "step-00000014.h5")
    meta = Crafted(path).meta
    assert {"kind": "transform", "name": "clip_by_running_norm"} in meta["pieces"]
    record = meta["optimizer_state"]["states"][0]
    assert record["record"] == "RunningNormState" and record["count"] == 14
    assert record["peak"] == "/optimizer/states/0/peak"
    loaded = pn.load_checkpoint(path).state.opt_state.states[0]
    assert loaded.count == 14 and loaded.mean_norm == record["mean_norm"]


@pytest.mark.parametrize("field, value, problem", [
    ("mean_norm", "0.5", "/optimizer/states/0/mean_norm is '0.5'; expected a finite number"),
    ("mean_norm", True, "/optimizer/states/0/mean_norm is True; expected a finite number"),
    ("count", -1, "/optimizer/states/0/count is -1; expected an integer from 0"),
    ("peak", "/params", "/optimizer/states/0/peak is '/params'; expected the path of"),
])
def test_a_forged_transform_state_is_refused(pieces, tmp_path, field, value, problem):
    directory = _checkpoints(pieces, tmp_path)

    def edit(crafted):
        crafted.meta["optimizer_state"]["states"][0][field] = value

    path = craft(os.path.join(directory, "step-00000014.h5"), tmp_path / "forged.h5", edit)
    with pytest.raises(pn.CorruptCheckpointError, match=problem):
        pn.load_checkpoint(path)


def test_a_process_without_the_transform_refuses_in_one_line(pieces, tmp_path):
    directory = _checkpoints(pieces, tmp_path)
    code = ("import purenet as pn, numpy as np\n"
            "pn.register_activation('swish', lambda Z: Z / (1 + np.exp(-Z)), "
            "lambda Z, A: 1 / (1 + np.exp(-Z)) + A * (1 - 1 / (1 + np.exp(-Z))))\n"
            "try:\n"
            f"    pn.load_checkpoint({directory!r})\n"
            "except pn.CheckpointError as error:\n"
            "    print(type(error).__name__, error)\n")
    answer = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=child_env(), check=True).stdout.strip()
    assert answer.startswith("UnregisteredPieceError ") and "\n" not in answer
    assert "trained with the transform 'clip_by_running_norm', which a user registered" in answer
    assert "purenet.optim.register_transform('clip_by_running_norm', ...)" in answer


# --- kill -9, then rewind --------------------------------------------------------------


def _child(data, directory, *args, run=False):
    command = script("_train_child.py") + [data, str(directory), "--pieces", *args]
    if run:
        done = subprocess.run(command, env=child_env(), capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout.splitlines()[-1])
    return subprocess.Popen(command, env=child_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_killed_runs_with_user_pieces_resume_and_rewind_bit_for_bit(pieces, tmp_path):
    (x, y), _ = moons(240, 0)
    data = str(tmp_path / "moons.npz")
    np.savez(data, x=x, y=y)
    killed, reference = tmp_path / "killed", tmp_path / "reference"
    rng = random.Random(25)
    for _ in range(4):
        proc = _child(data, killed, "--resume", "--epochs", "1000", "--every-steps", "1")
        assert proc.stdout.readline().startswith("started"), proc.stderr.read()[-3000:]
        time.sleep(rng.uniform(0.05, 0.4))
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        assert proc.returncode == -signal.SIGKILL
    newest = pn.load_checkpoint(killed).state.step
    assert newest > 0 and step_files(str(killed))
    end = str(newest + 40)
    final = _child(data, killed, "--resume", "--epochs", "1000", "--every-steps", "10",
                   "--max-steps", end, run=True)
    straight = _child(data, reference, "--epochs", "1000", "--every-steps", "5", "--keep",
                      "1000", "--max-steps", end, run=True)
    assert final["done"] == straight["done"] == int(end)
    assert final["digest"] == straight["digest"]
    assert_records_equal(pn.load_checkpoint(killed).state, pn.load_checkpoint(reference).state)
    # any step by replay, from the killed run's checkpoints, is the straight run's
    step = 5 * (newest // 10) + 5
    want = pn.load_checkpoint(os.path.join(reference, f"step-{step:08d}.h5")).state
    assert_records_equal(pn.state_at(killed, step, x, y), want)


def test_a_state_whose_number_went_non_finite_is_never_written(pieces, tmp_path):
    import attrs as _attrs

    from purenet.checkpoint.format import write_checkpoint

    (x, y), _ = moons(200, 0)
    config = _config(pieces.clip)
    state = pn.fit(config, x, y, max_steps=3, progress=False).state
    inner = _attrs.evolve(state.opt_state.states[0], mean_norm=float("inf"))
    broken = _attrs.evolve(state, opt_state=_attrs.evolve(
        state.opt_state, states=(inner, *state.opt_state.states[1:])))
    path = tmp_path / "step-00000003.h5"
    with pytest.raises(pn.CheckpointError, match="/optimizer/states/0/mean_norm holds NaN or inf"):
        write_checkpoint(path, broken, config)
    assert not path.exists()
