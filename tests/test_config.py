"""The run record (purenet.train.config): one place for every setting."""

import numpy as np
import pytest

import purenet as pn
from purenet import optim
from purenet.errors import SettingError, SettingTypeError
from purenet.train.config import RunConfig
from purenet.train.loop import smooth_labels

ARCH = [{"input_dim": 2, "output_dim": 8, "activation": "relu"},
        {"input_dim": 8, "output_dim": 3, "activation": "softmax"}]


def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 2))
    return x, (x[:, 0] > 0).astype(int) + (x[:, 1] > 1).astype(int)


def full_config(**changes):
    settings = dict(optimizer=optim.chain(optim.clip_by_value(0.5), optim.adamw(
        optim.schedules.step_decay(0.01, 0.5, 10))), epochs=3, batch_size=None, seed=7,
        dtype="float64", l2=1e-3, label_smoothing=0.1, shuffle=False, drop_last=True,
        init="glorot_uniform", early_stopping=pn.EarlyStopping("train_loss", patience=2))
    settings.update(changes)
    return RunConfig(ARCH, **settings)


def test_plain_form_round_trips_and_names_the_layers_as_the_tutorial_does():
    config = full_config()
    plain = config.to_dict()
    assert plain["layers"] == ARCH and plain["batch_size"] == "full"
    assert plain["loss"] == "categorical_crossentropy"   # resolved from the output
    again = RunConfig.from_dict(plain)
    assert again.to_dict() == plain and again.differences(config) == []


def test_missing_settings_take_their_defaults():
    config = RunConfig.from_dict({"layers": ARCH})
    assert (config.epochs, config.batch_size, config.seed, config.dtype) == (10, 64, 0, "float32")
    assert config.optimizer.config() == optim.adam().config()


def test_epochs_may_differ_on_resume_and_nothing_else():
    assert full_config().differences(full_config(epochs=30)) == []
    assert full_config().differences(full_config(label_smoothing=0.2)) == [
        "label_smoothing: this run has 0.1, the checkpoint 0.2"]


@pytest.mark.parametrize("change, path, words", [
    ({"seed": "1"}, ("seed",), "must be an integer"),
    ({"l2": True}, ("l2",), "must be a number"),
    ({"label_smoothing": 1.0}, ("label_smoothing",), "in [0, 1)"),
    ({"bogus": 1}, ("bogus",), "unknown key"),
    ({"optimizer": {"name": "adam", "b2": 1.5}}, ("optimizer", "b2"), "in [0.0, 1.0)"),
    ({"layers": [ARCH[0], {**ARCH[1], "activation": "softmaxx"}]},
     ("layers", 1, "activation"), "did you mean 'softmax'"),
    ({"layers": [ARCH[0], {**ARCH[1], "input_dim": 9}]}, ("layers", 1, "input_dim"),
     "output_dim = 8"),
    ({"early_stopping": {"patience": 0}}, ("early_stopping", "patience"), ">= 1"),
    ({"batch_size": 0}, ("batch_size",), '"full"'),
])
def test_bad_plain_settings_name_their_path(change, path, words):
    with pytest.raises(SettingError) as info:
        RunConfig.from_dict({"layers": ARCH, **change})
    assert info.value.path == path and words in str(info.value)


def test_label_smoothing_only_applies_to_classification():
    regression = [{**ARCH[0]}, {**ARCH[1], "activation": "identity"}]
    with pytest.raises(SettingError, match="label_smoothing only applies to"):
        RunConfig(regression, label_smoothing=0.1)


def test_smoothed_targets_match_the_definition():
    config = full_config(label_smoothing=0.3)
    ids = np.array([0, 2])
    np.testing.assert_allclose(smooth_labels(ids, config), [[0.8, 0.1, 0.1], [0.1, 0.1, 0.8]],
                               rtol=1e-15)
    binary = RunConfig([{**ARCH[0]}, {**ARCH[1], "output_dim": 1, "activation": "sigmoid"}],
                       label_smoothing=0.2, dtype="float64")
    np.testing.assert_allclose(smooth_labels(np.array([[0.0], [1.0]]), binary),
                               [[0.1], [0.9]], rtol=1e-15)


def test_label_smoothing_trains_on_smoothed_targets_and_is_part_of_the_run(tmp_path):
    x, y = data()
    plain = pn.fit(full_config(label_smoothing=0.0), x, y, progress=False)
    smoothed = pn.fit(full_config(), x, y, progress=False)
    soft = smooth_labels(y, full_config())
    by_hand = pn.fit(full_config(label_smoothing=0.0), x, soft, progress=False)
    assert not np.array_equal(plain.state.params.layers[0].W, smoothed.state.params.layers[0].W)
    assert np.array_equal(smoothed.state.params.layers[0].W, by_hand.state.params.layers[0].W)
    pn.fit(full_config(), x, y, progress=False, checkpointer=pn.Checkpointer(tmp_path))
    with pytest.raises(pn.CheckpointMismatchError, match="label_smoothing: this run has 0.2"):
        pn.fit(full_config(label_smoothing=0.2), x, y, progress=False, resume=True,
               checkpointer=pn.Checkpointer(tmp_path))


def test_fit_takes_a_config_and_replaces_fields_given_as_keywords():
    x, y = data()
    a = pn.fit(full_config(), x, y, progress=False, seed=1)
    b = pn.fit(full_config(seed=1), x, y, progress=False)
    assert np.array_equal(a.state.params.layers[1].W, b.state.params.layers[1].W)


def test_fit_names_an_unknown_setting():
    x, y = data()
    with pytest.raises(TypeError, match=r"unknown setting\(s\) \['learning_rate'\]"):
        pn.fit(ARCH, x, y, learning_rate=0.1)


def test_python_values_are_checked_strictly_too():
    with pytest.raises(SettingTypeError, match="seed must be an integer"):
        RunConfig(ARCH, seed=1.5)
    assert RunConfig(ARCH, seed=np.int64(3), dtype=np.float64).to_dict()["dtype"] == "float64"
