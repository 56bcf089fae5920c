"""Tests for purenet.optim.schedules: values worked out by hand, validation, configs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from purenet.errors import SettingError
from purenet.optim.schedules import (SCHEDULES, as_schedule, constant, exponential_decay,
                               invscaling,
                               schedule_from_config, step_decay, warmup_cosine_decay)


def test_constant():
    schedule = constant(0.1)
    assert [schedule(k) for k in (0, 1, 10, 10_000)] == [0.1] * 4
    assert isinstance(constant(1)(0), float)


@pytest.mark.parametrize("count, expected", [
    (0, 1.0), (1, 1.0), (2, 1.0), (3, 0.5), (5, 0.5), (6, 0.25), (9, 0.125), (30, 0.5 ** 10)])
def test_step_decay(count, expected):
    assert step_decay(1.0, 0.5, 3)(count) == expected


@pytest.mark.parametrize("count, expected", [
    (0, 2.0),
    (1, 2.0 * 0.5 ** 0.25),
    (2, math.sqrt(2.0)),       # 2 * 0.5 ** (2 / 4)
    (4, 1.0),
    (6, 1 / math.sqrt(2.0)),   # 2 * 0.5 ** 1.5
    (8, 0.5),
])
def test_exponential_decay(count, expected):
    assert exponential_decay(2.0, 0.5, 4)(count) == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize("count, expected", [
    (0, 2.0), (2, 2.0), (3, 2.0), (4, 1.0), (5, 1.0), (7, 1.0), (8, 0.5), (12, 0.25)])
def test_exponential_decay_staircase(count, expected):
    assert exponential_decay(2.0, 0.5, 4, staircase=True)(count) == expected


def test_exponential_decay_agrees_with_staircase_on_the_stairs():
    smooth = exponential_decay(0.3, 0.7, 5)
    stairs = exponential_decay(0.3, 0.7, 5, staircase=True)
    for count in range(0, 50, 5):
        assert smooth(count) == pytest.approx(stairs(count), rel=1e-14)
    assert smooth(7) < stairs(7)


# peak 1.0, warm-up over 4 steps from 0.2, cosine down to 0.1 at step 12.
WARMUP_COSINE = warmup_cosine_decay(peak_value=1.0, warmup_steps=4, decay_steps=12,
                                    init_value=0.2, end_value=0.1)


@pytest.mark.parametrize("count, expected", [
    (0, 0.2),                                          # start: init_value
    (1, 0.4),
    (2, 0.6),                                          # mid-warm-up: halfway to the peak
    (3, 0.8),
    (4, 1.0),                                          # peak
    (6, 0.1 + 0.9 * (1 + math.cos(math.pi / 4)) / 2),  # a quarter of the way down the cosine
    (8, 0.55),                                         # mid-decay: halfway from peak to end
    (12, 0.1),                                         # end
    (13, 0.1),                                         # after the end: end_value
    (1000, 0.1),
])
def test_warmup_cosine_decay(count, expected):
    assert WARMUP_COSINE(count) == pytest.approx(expected, rel=1e-15, abs=1e-16)


def test_warmup_cosine_decay_defaults_and_no_warmup():
    schedule = warmup_cosine_decay(0.5, warmup_steps=0, decay_steps=10)
    assert schedule(0) == 0.5
    assert schedule(5) == pytest.approx(0.25, rel=1e-15)
    assert schedule(10) == 0.0
    assert warmup_cosine_decay(0.5, 2, 10)(0) == 0.0     # init_value defaults to 0


def test_warmup_cosine_decay_rises_then_falls():
    values = [WARMUP_COSINE(k) for k in range(20)]
    assert all(a < b for a, b in zip(values[:4], values[1:5]))
    assert all(a > b for a, b in zip(values[4:12], values[5:13]))
    assert values[12:] == [0.1] * 8


def test_numpy_counts_work():
    assert step_decay(1.0, 0.5, 3)(np.int64(3)) == 0.5
    assert WARMUP_COSINE(np.int64(2)) == pytest.approx(0.6, rel=1e-15)


# --- validation -----------------------------------------------------------------------


@pytest.mark.parametrize("make, error, match", [
    (lambda: constant(-0.1), ValueError, "value must be a finite number >= 0"),
    (lambda: constant(float("nan")), ValueError, "value"),
    (lambda: constant(float("inf")), ValueError, "value"),
    (lambda: constant("0.1"), TypeError, "value must be a number"),
    (lambda: constant(True), TypeError, "value"),
    (lambda: step_decay(-1.0, 0.5, 3), ValueError, "init_value"),
    (lambda: step_decay(1.0, -0.5, 3), ValueError, "decay_rate"),
    (lambda: step_decay(1.0, 0.5, 0), ValueError, "step_size must be an integer >= 1, got 0"),
    (lambda: step_decay(1.0, 0.5, 1.5), TypeError, "step_size must be an integer >= 1, got float 1.5"),
    (lambda: step_decay(1.0, 0.5, True), TypeError, "step_size"),
    (lambda: exponential_decay(1.0, 0.5, 0), ValueError, "transition_steps"),
    (lambda: exponential_decay(1.0, 0.5, 3, staircase="yes"), TypeError, "staircase"),
    (lambda: warmup_cosine_decay(1.0, 10, 10), ValueError,
     r"decay_steps must exceed warmup_steps \(10\), got 10"),
    (lambda: warmup_cosine_decay(1.0, 12, 10), ValueError, "decay_steps"),
    (lambda: warmup_cosine_decay(1.0, -1, 10), ValueError, "warmup_steps must be an integer >= 0, got -1"),
    (lambda: warmup_cosine_decay(1.0, 2.5, 10), TypeError, "warmup_steps must be an integer >= 0, got float 2.5"),
    (lambda: warmup_cosine_decay(1.0, 2, 0), ValueError, "decay_steps"),
    (lambda: warmup_cosine_decay(-1.0, 2, 10), ValueError, "peak_value"),
    (lambda: warmup_cosine_decay(1.0, 2, 10, end_value=-0.1), ValueError, "end_value"),
])
def test_bad_arguments_raise(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_numpy_scalars_are_stored_as_python_numbers():
    schedule = step_decay(np.float32(0.5), np.float64(0.25), np.int64(3))
    assert type(schedule.init_value) is float and type(schedule.step_size) is int
    assert schedule == step_decay(0.5, 0.25, 3)
    json.dumps(schedule.config())


def test_as_schedule():
    assert as_schedule(0.1) == constant(0.1)
    assert as_schedule(1) == constant(1.0)
    schedule = step_decay(1.0, 0.5, 3)
    assert as_schedule(schedule) is schedule
    with pytest.raises(TypeError, match="learning_rate must be a number >= 0 or a schedule"):
        as_schedule("0.1")
    with pytest.raises(TypeError, match="momentum"):
        as_schedule(None, name="momentum")
    with pytest.raises(ValueError, match="learning_rate must be a finite number >= 0"):
        as_schedule(-0.1)


# --- configs --------------------------------------------------------------------------

EXAMPLES = [
    constant(0.1),
    step_decay(0.1, 0.5, 10),
    exponential_decay(0.1, 0.9, 5),
    exponential_decay(0.1, 0.9, 5, staircase=True),
    warmup_cosine_decay(0.1, 5, 50, init_value=0.01, end_value=0.001),
    invscaling(0.1, 0.5, steps_per_epoch=3, samples_per_epoch=40),
]


def test_invscaling_holds_each_epoch_at_init_over_samples_seen_plus_one():
    schedule = invscaling(0.1, 0.5, steps_per_epoch=3, samples_per_epoch=40)
    assert [schedule(k) for k in (0, 2)] == [0.1, 0.1]
    assert [schedule(k) for k in (3, 5, 6)] == [0.1 / 41 ** 0.5] * 2 + [0.1 / 81 ** 0.5]


@pytest.mark.parametrize("schedule", EXAMPLES, ids=repr)
def test_config_round_trips_through_json(schedule):
    config = schedule.config()
    assert config["schedule"] == type(schedule).__name__
    restored = schedule_from_config(json.loads(json.dumps(config)))
    assert restored == schedule
    assert [restored(k) for k in range(60)] == [schedule(k) for k in range(60)]


def test_config_contents():
    assert step_decay(0.1, 0.5, 10).config() == {
        "schedule": "step_decay", "init_value": 0.1, "decay_rate": 0.5, "step_size": 10}


def test_every_schedule_has_an_example():
    assert {type(s).__name__ for s in EXAMPLES} == set(SCHEDULES)


@pytest.mark.parametrize("config, error, path, match", [
    ({"schedule": "cosine", "value": 1.0}, ValueError, ("schedule",),
     r"schedule is unknown: 'cosine'; expected one of \['constant', "),
    ({"value": 1.0}, ValueError, ("schedule",), r"schedule is missing: .* got keys \['value'\]"),
    ({"schedule": 3}, TypeError, ("schedule",), r"schedule must be one of \[.*got int 3"),
    ({"schedule": "constant", "rate": 1.0}, ValueError, ("rate",),
     r"rate is not an argument of constant; expected one of \['value'\]"),
    ({"schedule": "step_decay", "init_value": 1.0}, ValueError, ("decay_rate",),
     r"decay_rate is missing; step_decay needs \['decay_rate', 'step_size'\]"),
    ({"schedule": "step_decay", "init_value": 1.0, "decay_rate": "0.5", "step_size": 2},
     TypeError, ("decay_rate",), "decay_rate must be a number >= 0, got str '0.5'"),
    ([("schedule", "constant")], TypeError, (), "must be a table"),
])
def test_schedule_from_bad_config_raises(config, error, path, match):
    with pytest.raises(error, match=match) as info:
        schedule_from_config(config)
    assert isinstance(info.value, SettingError) and info.value.path == path


def test_schedule_from_config_leaves_its_argument_alone():
    config = {"schedule": "constant", "value": 0.5}
    schedule_from_config(config)
    assert config == {"schedule": "constant", "value": 0.5}
