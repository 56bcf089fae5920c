"""A user's own activations, losses and initializers: registration refuses what it can
check at once (names, signatures, shapes, dtypes, purity, derivatives against central
differences), and a registered piece works wherever a built-in does, checkpoints and the
command line included; a process without the registration refuses the files in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import purenet as pn
from purenet import extend
from purenet.testing import check_grads

from _hostile_files import Crafted, craft
from conftest import PIECES_FILE

ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


@pytest.fixture
def forget():
    """Names a test registers, unregistered after it."""
    names: list[tuple[str, str]] = []
    yield names
    for kind, name in names:
        extend.unregister(kind, name)


def _swish(Z):
    return Z / (1 + np.exp(-Z))


def _swish_derivative(Z, A):
    s = 1 / (1 + np.exp(-Z))
    return s + A * (1 - s)


ARCH = [{"input_dim": 2, "output_dim": 8, "activation": "swish"},
        {"input_dim": 8, "output_dim": 1, "activation": "sigmoid"}]


def _moons(n=200):
    from sklearn.datasets import make_moons

    x, y = make_moons(n_samples=n, noise=0.2, random_state=0)
    return x, y.reshape(-1, 1).astype(float)


# --- registration refuses -------------------------------------------------------------


@pytest.mark.parametrize("name, problem", [
    ("relu", "is purenet's built-in activation"),
    ("Swish", "must be a lowercase identifier"),
    ("2x", "must be a lowercase identifier"),
    ("a" * 65, "must be a lowercase identifier"),
    (3, "must be a lowercase identifier"),
])
def test_a_bad_or_built_in_name_is_refused(name, problem):
    with pytest.raises(pn.SettingError, match=problem):
        pn.register_activation(name, _swish, _swish_derivative)
    assert "relu" in pn.ACTIVATIONS and pn.ACTIVATIONS["relu"].forward is not _swish


@pytest.mark.parametrize("register, name", [
    (lambda n: pn.register_loss(n, lambda A, y: (A - y).sum(1), lambda A, y: np.ones_like(A)),
     "huber"),
    (lambda n: pn.register_initializer(n, lambda rng, i, o: (np.zeros((i, o)), np.zeros(o))),
     "he_normal"),
])
def test_no_built_in_can_be_shadowed(register, name):
    with pytest.raises(pn.SettingError, match="built-in"):
        register(name)


def test_a_name_registers_once_unless_replaced(forget):
    pn.register_activation("swish", _swish, _swish_derivative)
    forget.append(("activation", "swish"))
    with pytest.raises(pn.SettingError, match="already registered; pass replace=True"):
        pn.register_activation("swish", _swish, _swish_derivative)
    pn.register_activation("swish", _swish, _swish_derivative, replace=True)


def test_a_wrong_derivative_is_refused_naming_the_worst_point():
    def wrong(Z, A):   # swish's derivative without its second term
        return 1 / (1 + np.exp(-Z))

    with pytest.raises(pn.SettingError) as caught:
        pn.register_activation("swish", _swish, wrong)
    message = str(caught.value)
    assert "derivative(Z, A) disagrees with central differences: worst at Z[0, 2] = -1.3" \
        in message, message
    assert "swish" not in pn.ACTIVATIONS


def test_a_wrong_loss_gradient_is_refused_naming_the_worst_point():
    with pytest.raises(pn.SettingError, match=r"gradient\(A, y\) disagrees .* worst at A\["):
        pn.register_loss("sq", lambda A, y: ((A - y) ** 2).sum(axis=1), lambda A, y: A - y)
    assert "sq" not in pn.LOSSES


@pytest.mark.parametrize("forward, derivative, problem", [
    (lambda Z, beta: Z, _swish_derivative, r"must take 1 positional argument"),
    (lambda: 0, _swish_derivative, r"must take 1 positional argument"),
    (_swish, lambda Z: Z, r"must take 2 positional arguments"),
    ("swish", _swish_derivative, "must be a function"),
    (lambda Z: Z.astype(np.float64), lambda Z, A: np.ones_like(Z),
     "must return dtype float32 for a float32 input"),
    (lambda Z: Z[:, :1], lambda Z, A: np.ones_like(Z), r"must return an array of shape"),
    (lambda Z: np.cumsum(Z, axis=1), lambda Z, A: np.ones_like(Z), "must be elementwise"),
    (lambda Z: np.log(Z), lambda Z, A: 1 / Z, "returned NaN or inf"),
    (lambda Z: np.exp(Z, out=Z), lambda Z, A: A, "changed its argument in place"),
    (lambda Z: 1 / 0, lambda Z, A: Z, "failed on an array .*ZeroDivisionError"),
])
def test_a_function_that_breaks_the_contract_is_refused(forward, derivative, problem):
    with pytest.raises(pn.SettingError, match=problem):
        pn.register_activation("mine", forward, derivative)
    assert "mine" not in pn.ACTIVATIONS


def test_functions_with_extra_positional_arguments_are_accepted(forget):
    def beta_swish(Z, beta=1.5, *rest):
        return Z / (1 + np.exp(-beta * Z))

    def beta_swish_derivative(Z, A, beta=1.5):
        s = 1 / (1 + np.exp(-beta * Z))
        return beta * A * (1 - s) + s

    pn.register_activation("beta_swish", beta_swish, beta_swish_derivative)
    forget.append(("activation", "beta_swish"))
    assert "beta_swish" in pn.ACTIVATIONS


@pytest.mark.parametrize("init, problem", [
    (lambda rng, i, o: (np.random.standard_normal((i, o)), np.zeros(o)),
     "different parameters; draw only from the rng"),
    (lambda rng, i, o: (rng.standard_normal((o, i)), np.zeros(o)), r"W must return an array "
     r"of shape \(3, 2\)"),
    (lambda rng, i, o: rng.standard_normal((i, o)), "must return a pair"),
    (lambda rng, i, o: (np.full((i, o), np.inf), np.zeros(o)), "NaN or inf"),
    (lambda rng, i, o: (np.zeros((i, o), int), np.zeros(o)), "must return floats"),
    (lambda rng, fan_in: None, "must take 3 positional arguments"),
])
def test_an_initializer_that_breaks_the_contract_is_refused(init, problem):
    with pytest.raises(pn.SettingError, match=problem):
        pn.register_initializer("mine", init)
    assert "mine" not in pn.INITIALIZERS


def test_an_unknown_name_says_how_to_register_one():
    with pytest.raises(pn.SettingError, match=r"'swich'.*register one \(purenet"
                                              r"\.register_activation in Python, run by "
                                              r"purenet --import MODULE"):
        pn.init_params([{"input_dim": 2, "output_dim": 1, "activation": "swich"}])


# --- a registered piece works where a built-in does -----------------------------------


def test_registered_pieces_have_correct_gradients_through_the_network(pieces):
    arch = [{"input_dim": 3, "output_dim": 5, "activation": "swish"},
            {"input_dim": 5, "output_dim": 2, "activation": "identity"}]
    params = pn.init_params(arch, seed=1, init="small_normal")
    rng = np.random.default_rng(0)
    batch = pn.Batch(rng.normal(size=(6, 3)), rng.normal(size=(6, 2)))
    errors = check_grads(params, batch, loss="log_cosh")
    assert max(errors.values()) < 1e-6, errors


def test_a_registered_loss_is_the_mean_of_its_per_sample_values_weighted(pieces):
    A = np.array([[0.2, 1.0], [0.5, -1.0], [2.0, 0.0]])
    y = np.zeros((3, 2))
    per = pieces.log_cosh(A, y)
    value = pn.LOSSES["log_cosh"].value
    assert value(A, y) == pytest.approx(per.mean())
    w = np.array([2.0, 0.5, 0.5])
    assert value(A, y, w) == pytest.approx((per * w).mean())
    assert np.array_equal(pn.LOSSES["log_cosh"].gradient(A, y), np.tanh(A - y) / 3)


def test_fit_trains_with_registered_pieces_and_two_runs_agree_bit_for_bit(pieces):
    x, y = _moons()
    runs = [pn.fit(ARCH, x, y, epochs=5, batch_size=32, seed=3, init="small_normal",
                   optimizer=pn.optim.adam(0.05), progress=False) for _ in range(2)]
    history = runs[0].history
    assert history.train_loss[-1] < history.train_loss[0]
    assert all(np.array_equal(a, b) for a, b in zip(pn.tree_leaves(runs[0].state.params),
                                                    pn.tree_leaves(runs[1].state.params)))


def test_a_registered_loss_trains_a_regression(pieces):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 3))
    y = x @ np.array([[1.0], [-2.0], [0.5]]) + 0.1 * rng.normal(size=(256, 1))
    arch = [{"input_dim": 3, "output_dim": 16, "activation": "swish"},
            {"input_dim": 16, "output_dim": 1, "activation": "identity"}]
    result = pn.fit(arch, x, y, loss="log_cosh", epochs=30, batch_size=32, seed=0,
                    optimizer=pn.optim.adam(0.01), progress=False)
    assert result.history.train_loss[-1] < 0.1 * result.history.train_loss[0]


def test_estimators_take_a_registered_activation(pieces):
    from purenet.sklearn import PureNetClassifier

    x, y = _moons()
    model = PureNetClassifier(hidden_layer_sizes=(16,), activation="swish", max_iter=200,
                              learning_rate_init=0.01, random_state=0).fit(x, y.ravel())
    assert "(swish, sigmoid)" in repr(model.model_)
    assert model.score(x, y.ravel()) > 0.8


# --- checkpoints name the pieces; a process without them refuses ---------------------


def _checkpointed_run(tmp_path):
    x, y = _moons()
    directory = str(tmp_path / "ckpt")
    pn.fit(ARCH, x, y, epochs=3, batch_size=50, seed=0, init="small_normal",
           checkpointer=pn.Checkpointer(directory, every_epochs=1), progress=False)
    return directory


def _load_in_a_fresh_process(path, imports=()):
    code = ("import sys, purenet as pn\n"
            "from purenet.extend import import_pieces\n"
            f"import_pieces({list(imports)!r})\n"
            "try:\n"
            f"    print('loaded', pn.load_checkpoint({path!r}).state.step)\n"
            "except pn.CheckpointError as error:\n"
            "    print(type(error).__name__, error)\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=ENV, check=True).stdout.strip()


def test_a_checkpoint_lists_the_user_pieces_its_run_uses(pieces, tmp_path):
    directory = _checkpointed_run(tmp_path)
    meta = Crafted(os.path.join(directory, "step-00000012.h5")).meta
    assert meta["pieces"] == [{"kind": "activation", "name": "swish"},
                              {"kind": "initializer", "name": "small_normal"}]
    x, y = _moons()
    plain = str(tmp_path / "plain")
    pn.fit([{**ARCH[0], "activation": "relu"}, ARCH[1]], x, y, epochs=1, batch_size=50,
           checkpointer=pn.Checkpointer(plain), progress=False)
    assert Crafted(os.path.join(plain, "step-00000004.h5")).meta["pieces"] == []


def _forged(tmp_path, original, edit):
    return craft(original, tmp_path / "forged.h5", edit)


@pytest.mark.parametrize("edit, error, message", [
    # a user piece of a built-in's name: this purenet cannot tell which one the run had
    (lambda c: c.meta["pieces"].append({"kind": "activation", "name": "sigmoid"}),
     pn.UnregisteredPieceError, "a built-in activation of that name"),
    # a piece of a kind this version does not know: a newer purenet's
    (lambda c: c.meta["pieces"].append({"kind": "schedule", "name": "swish"}),
     pn.NewerCheckpointError, "of the kind 'schedule'"),
    # the run uses swish as purenet's own (a later purenet's built-in), not as the user's
    (lambda c: c.meta["pieces"].pop(0), pn.NewerCheckpointError,
     "its run uses the built-in activation 'swish'; here that is only a registered one"),
    # a piece listed that the run does not use
    (lambda c: c.meta["pieces"].append({"kind": "loss", "name": "log_cosh"}),
     pn.CorruptCheckpointError, "lists the loss 'log_cosh', which its run does not use"),
    (lambda c: c.meta.update(pieces={"activation": "swish"}), pn.CorruptCheckpointError,
     "meta.pieces must be a list"),
    (lambda c: c.meta["pieces"][0].update(extra=1), pn.NewerCheckpointError,
     "meta.pieces\\[0\\] has the key 'extra'"),
    (lambda c: c.meta["pieces"][0].update(name="Swish!"), pn.CorruptCheckpointError,
     "must be a lowercase identifier"),
    (lambda c: c.meta["pieces"].__setitem__(slice(None), [{"kind": "activation",
                                                            "name": "swish"}] * 1001),
     pn.CorruptCheckpointError, "at most 1000 pieces"),
])
def test_a_forged_list_of_pieces_is_refused(pieces, tmp_path, edit, error, message):
    original = os.path.join(_checkpointed_run(tmp_path), "step-00000012.h5")
    with pytest.raises(error, match=message):
        pn.load_checkpoint(_forged(tmp_path, original, edit))


def test_a_file_without_the_list_reads_as_listing_none(tmp_path):
    x, y = _moons()
    directory = str(tmp_path / "plain")
    pn.fit([{**ARCH[0], "activation": "relu"}, ARCH[1]], x, y, epochs=1, batch_size=50,
           checkpointer=pn.Checkpointer(directory), progress=False)
    path = craft(os.path.join(directory, "step-00000004.h5"), tmp_path / "old.h5",
                 lambda c: c.meta.pop("pieces"))
    assert pn.load_checkpoint(path).state.step == 4


def test_a_process_without_the_registration_refuses_in_one_line(pieces, tmp_path):
    directory = _checkpointed_run(tmp_path)
    for path in (directory, os.path.join(directory, "step-00000008.h5")):
        answer = _load_in_a_fresh_process(path)
        assert answer.startswith("UnregisteredPieceError "), answer
        assert "\n" not in answer
        assert "was trained with the activation 'swish', which a user registered and this " \
            "process has not: register it before loading (purenet.register_activation(" \
            "'swish', ...)" in answer
        assert "purenet --import MODULE" in answer
    assert _load_in_a_fresh_process(directory, [PIECES_FILE]) == "loaded 12"


# --- the command line: pieces only through --import -----------------------------------

EXPERIMENT = """\
seed = 1
epochs = 4
batch_size = 40
init = "small_normal"

[data]
source = "make_moons"
test_size = 0.2

[data.args]
n_samples = 300
noise = 0.2
random_state = 0

[[layers]]
input_dim = 2
output_dim = 12
activation = "swish"

[[layers]]
input_dim = 12
output_dim = 1
activation = "sigmoid"

[optimizer]
name = "chain"

[[optimizer.transforms]]
name = "clip_by_running_norm"
ratio = 1.5

[[optimizer.transforms]]
name = "adam"
learning_rate = 0.02
"""


def _purenet(tmp_path, *args):
    return subprocess.run([sys.executable, "-m", "purenet", *args], cwd=tmp_path, env=ENV,
                          capture_output=True, text=True)


def test_the_command_line_takes_pieces_only_through_import(tmp_path):
    (tmp_path / "exp.toml").write_text(EXPERIMENT)
    refused = _purenet(tmp_path, "train", "exp.toml", "--no-progress")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "'swish'" in refused.stderr and "purenet --import MODULE" in refused.stderr
    assert not (tmp_path / "runs").exists()

    trained = _purenet(tmp_path, "--import", PIECES_FILE, "train", "exp.toml",
                       "--no-progress", "--epochs", "2", "--checkpoint-every", "5")
    assert trained.returncode == 0, trained.stderr
    for command in (["inspect", "runs/exp"], ["verify", "runs/exp"], ["evaluate", "runs/exp"],
                    ["rewind", "runs/exp", "--step", "7", "--output", "seven.h5"],
                    ["train", "exp.toml", "--resume", "--no-progress"]):
        without = _purenet(tmp_path, *command)
        assert without.returncode == 1, (command, without.stdout)
        assert without.stderr.count("\n") == 1, without.stderr
        expected = ("layers[0].activation: is unknown: 'swish'" if command[0] == "train"
                    else "was trained with the activation 'swish', which a user registered")
        assert expected in without.stderr, without.stderr
        assert "Traceback" not in without.stderr

    for command in (["inspect", "--deep", "runs/exp"], ["verify", "runs/exp"],
                    ["rewind", "runs/exp", "--step", "7", "--output", "seven.h5"],
                    ["train", "exp.toml", "--resume", "--no-progress"]):
        done = _purenet(tmp_path, "--import", PIECES_FILE, *command)
        assert done.returncode == 0, (command, done.stderr)
    resumed = json.loads(_purenet(tmp_path, "--import", PIECES_FILE, "inspect", "--json",
                                  "runs/exp").stdout)

    # the same run in one go, in a fresh directory: the resumed one is bit-identical
    straight = _purenet(tmp_path, "--import", PIECES_FILE, "train", "exp.toml",
                        "--no-progress", "--run-dir", "straight")
    assert straight.returncode == 0, straight.stderr
    reference = json.loads(_purenet(tmp_path, "--import", PIECES_FILE, "inspect", "--json",
                                    "straight").stdout)
    assert resumed["step"] == reference["step"] == 24
    assert resumed["params_digest"] == reference["params_digest"]


@pytest.mark.parametrize("module, problem", [
    ("no_such_module", "--import no_such_module: ModuleNotFoundError"),
    ("missing.py", "--import missing.py: FileNotFoundError: no Python file missing.py"),
])
def test_an_import_that_fails_is_one_clear_line(tmp_path, module, problem):
    done = _purenet(tmp_path, "--import", module, "inspect", "nothing")
    assert done.returncode == 1 and problem in done.stderr and "Traceback" not in done.stderr


def test_a_module_whose_registration_fails_names_it(tmp_path):
    (tmp_path / "bad_pieces.py").write_text(
        "import numpy as np, purenet as pn\n"
        "pn.register_activation('twice', lambda Z: 2 * Z, lambda Z, A: np.ones_like(Z))\n")
    done = _purenet(tmp_path, "--import", "bad_pieces", "inspect", "nothing")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "--import bad_pieces: SettingError: activation 'twice': derivative(Z, A) " \
        "disagrees with central differences" in done.stderr, done.stderr
