"""Learning-rate schedules: frozen records called with the 0-based update count.

Each is a record rather than a closure so that a checkpoint can store it (``config()``)
and a resumed run can check it is the one it started with.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Union

import attrs
import numpy as np

from purenet.core.checks import boolean, check, describe, field, integer, number, one_of
from purenet.errors import SettingError, SettingTypeError, UnknownKeyError

_rate = number(0)          # a finite number >= 0
_positive_int = integer(1)
_non_negative_int = integer(0)


class _Schedule:
    def config(self) -> dict[str, Any]:
        """The schedule as plain data: its name and arguments."""
        return {"schedule": SCHEDULE_NAMES[type(self)], **attrs.asdict(self)}


@attrs.frozen
class constant(_Schedule):
    """``value`` at every step."""

    value: float = field(_rate)

    def __call__(self, count: int) -> float:
        return float(self.value)


@attrs.frozen
class step_decay(_Schedule):
    """``init_value * decay_rate ** (count // step_size)``: drops by ``decay_rate`` every
    ``step_size`` updates (PyTorch's StepLR)."""

    init_value: float = field(_rate)
    decay_rate: float = field(_rate)
    step_size: int = field(_positive_int)

    def __call__(self, count: int) -> float:
        return self.init_value * self.decay_rate ** (count // self.step_size)


@attrs.frozen
class exponential_decay(_Schedule):
    """``init_value * decay_rate ** (count / transition_steps)`` (Optax's), with
    ``staircase`` rounding the exponent down."""

    init_value: float = field(_rate)
    decay_rate: float = field(_rate)
    transition_steps: int = field(_positive_int)
    staircase: bool = attrs.field(default=False, validator=boolean)

    def __call__(self, count: int) -> float:
        exponent = count / self.transition_steps
        return self.init_value * self.decay_rate ** (math.floor(exponent) if self.staircase
                                                     else exponent)


@attrs.frozen
class warmup_cosine_decay(_Schedule):
    """Linear warm-up from ``init_value`` to ``peak_value`` over ``warmup_steps``, then a
    cosine decay to ``end_value`` at ``decay_steps`` (counted from 0, warm-up included, as
    Optax's ``warmup_cosine_decay_schedule``); ``end_value`` after that."""

    peak_value: float = field(_rate)
    warmup_steps: int = field(_non_negative_int)
    decay_steps: int = field(_positive_int)
    init_value: float = field(_rate, default=0.0)
    end_value: float = field(_rate, default=0.0)

    def __attrs_post_init__(self) -> None:
        if self.decay_steps <= self.warmup_steps:
            raise SettingError(
                "decay_steps", f"must exceed warmup_steps ({self.warmup_steps}), got "
                f"{self.decay_steps}: decay_steps counts the warm-up too")

    def __call__(self, count: int) -> float:
        if count < self.warmup_steps:
            return self.init_value + (self.peak_value - self.init_value) * count / self.warmup_steps
        progress = min(count - self.warmup_steps, self.decay_steps - self.warmup_steps)
        cosine = (1 + math.cos(math.pi * progress / (self.decay_steps - self.warmup_steps))) / 2
        return self.end_value + (self.peak_value - self.end_value) * cosine


@attrs.frozen
class invscaling(_Schedule):
    """scikit-learn's ``learning_rate="invscaling"``: ``init_value / (t + 1) ** power_t``,
    ``t`` the samples seen at the end of the last finished epoch (constant within an
    epoch, as MLPClassifier sets it at each epoch's end)."""

    init_value: float = field(_rate)
    power_t: float = field(_rate)
    steps_per_epoch: int = field(_positive_int)
    samples_per_epoch: int = field(_positive_int)

    def __call__(self, count: int) -> float:
        seen = (count // self.steps_per_epoch) * self.samples_per_epoch
        return self.init_value / (seen + 1) ** self.power_t


Schedule = Union[constant, step_decay, exponential_decay, warmup_cosine_decay, invscaling]
ScalarOrSchedule = Union[float, Schedule]
SCHEDULES: dict[str, type] = {cls.__name__: cls for cls in
                              (constant, step_decay, exponential_decay, warmup_cosine_decay,
                               invscaling)}
SCHEDULE_NAMES = {cls: name for name, cls in SCHEDULES.items()}


def as_schedule(value: ScalarOrSchedule, name: str = "learning_rate") -> Callable[[int], float]:
    """A schedule for ``value``: a number becomes ``constant(value)``.

    Raises:
        SettingError: ``value`` is neither a schedule nor a finite number >= 0; its
            ``.path`` is ``(name,)``.
    """
    if isinstance(value, _Schedule):
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer,
                                                                      np.floating)):
        raise SettingTypeError(name, "must be a number >= 0 or a schedule from "
                               f"purenet.optim.schedules, got {describe(value)}")
    return constant(float(check(name, value, _rate)))


def schedule_from_config(config: Mapping[str, Any]) -> Schedule:
    """Inverse of ``config()``.

    Raises:
        SettingError: with ``.path`` relative to the schedule's table: ``("schedule",)`` for
            a missing or unknown name, the argument's name for a bad or unknown argument.
    """
    if not isinstance(config, Mapping):
        raise SettingTypeError((), f"a schedule config must be a table (dict), got "
                               f"{describe(config)}")
    if "schedule" not in config:
        raise SettingError("schedule", f"is missing: a schedule config names one of "
                           f"{sorted(SCHEDULES)}; got keys {sorted(config)}")
    name = check("schedule", config["schedule"], one_of(SCHEDULES))
    cls = SCHEDULES[name]
    arguments = [a.name for a in attrs.fields(cls)]
    for key in config:
        if key != "schedule" and key not in arguments:
            raise UnknownKeyError((key,), f"is not an argument of {name}; expected one of "
                               f"{arguments}")
    missing = [a.name for a in attrs.fields(cls)
               if a.default is attrs.NOTHING and a.name not in config]
    if missing:
        raise SettingError(missing[0], f"is missing; {name} needs {missing}")
    return cls(**{k: v for k, v in config.items() if k != "schedule"})
