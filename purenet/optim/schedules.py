"""Learning-rate schedules: frozen records called with the 0-based update count.

Each is a record rather than a closure so that a checkpoint can store it (``config()``)
and a resumed run can check it is the one it started with.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Union

import attrs
import numpy as np

from purenet.core.registry import lookup


def _plain_number(value: Any) -> Any:
    # numpy scalars become Python numbers, so that config() stays JSON-able.
    if isinstance(value, np.generic) and not isinstance(value, np.bool_):
        return value.item()
    return value


def _non_negative(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{attribute.name} must be a number >= 0, got "
                        f"{type(value).__name__} {value!r}")
    if not 0 <= value < math.inf:
        raise ValueError(f"{attribute.name} must be a finite number >= 0, got {value!r}")


def _int_at_least(low: int) -> Callable[[Any, attrs.Attribute, Any], None]:
    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{attribute.name} must be an int >= {low}, got "
                            f"{type(value).__name__} {value!r}")
        if value < low:
            raise ValueError(f"{attribute.name} must be an int >= {low}, got {value!r}")
    return check


_positive_int = _int_at_least(1)
_non_negative_int = _int_at_least(0)


def _number_field(**kwargs: Any) -> Any:
    return attrs.field(converter=_plain_number, validator=_non_negative, **kwargs)


def _int_field(validator: Callable) -> Any:
    return attrs.field(converter=_plain_number, validator=validator)


class _Schedule:
    def config(self) -> dict[str, Any]:
        """The schedule as plain data: its name and arguments."""
        return {"schedule": SCHEDULE_NAMES[type(self)], **attrs.asdict(self)}


@attrs.frozen
class constant(_Schedule):
    """``value`` at every step."""

    value: float = _number_field()

    def __call__(self, count: int) -> float:
        return float(self.value)


@attrs.frozen
class step_decay(_Schedule):
    """``init_value * decay_rate ** (count // step_size)``: drops by ``decay_rate`` every
    ``step_size`` updates (PyTorch's StepLR)."""

    init_value: float = _number_field()
    decay_rate: float = _number_field()
    step_size: int = _int_field(_positive_int)

    def __call__(self, count: int) -> float:
        return self.init_value * self.decay_rate ** (count // self.step_size)


@attrs.frozen
class exponential_decay(_Schedule):
    """``init_value * decay_rate ** (count / transition_steps)`` (Optax's), with
    ``staircase`` rounding the exponent down."""

    init_value: float = _number_field()
    decay_rate: float = _number_field()
    transition_steps: int = _int_field(_positive_int)
    staircase: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))

    def __call__(self, count: int) -> float:
        exponent = count / self.transition_steps
        return self.init_value * self.decay_rate ** (math.floor(exponent) if self.staircase
                                                     else exponent)


@attrs.frozen
class warmup_cosine_decay(_Schedule):
    """Linear warm-up from ``init_value`` to ``peak_value`` over ``warmup_steps``, then a
    cosine decay to ``end_value`` at ``decay_steps`` (counted from 0, warm-up included, as
    Optax's ``warmup_cosine_decay_schedule``); ``end_value`` after that."""

    peak_value: float = _number_field()
    warmup_steps: int = _int_field(_non_negative_int)
    decay_steps: int = _int_field(_positive_int)
    init_value: float = _number_field(default=0.0)
    end_value: float = _number_field(default=0.0)

    def __attrs_post_init__(self) -> None:
        if self.decay_steps <= self.warmup_steps:
            raise ValueError(
                f"decay_steps ({self.decay_steps}) must exceed warmup_steps "
                f"({self.warmup_steps}): decay_steps counts the warm-up too"
            )

    def __call__(self, count: int) -> float:
        if count < self.warmup_steps:
            return self.init_value + (self.peak_value - self.init_value) * count / self.warmup_steps
        progress = min(count - self.warmup_steps, self.decay_steps - self.warmup_steps)
        cosine = (1 + math.cos(math.pi * progress / (self.decay_steps - self.warmup_steps))) / 2
        return self.end_value + (self.peak_value - self.end_value) * cosine


Schedule = Union[constant, step_decay, exponential_decay, warmup_cosine_decay]
ScalarOrSchedule = Union[float, Schedule]
SCHEDULES: dict[str, type] = {cls.__name__: cls for cls in
                              (constant, step_decay, exponential_decay, warmup_cosine_decay)}
SCHEDULE_NAMES = {cls: name for name, cls in SCHEDULES.items()}


def as_schedule(value: ScalarOrSchedule, name: str = "learning_rate") -> Callable[[int], float]:
    """A schedule for ``value``: a float becomes ``constant(value)``."""
    if isinstance(value, _Schedule):
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer,
                                                                      np.floating)):
        raise TypeError(
            f"{name} must be a float or a schedule from purenet.optim.schedules, got "
            f"{type(value).__name__} {value!r}"
        )
    if not 0 <= value < math.inf:   # checked here so that the message names the argument
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return constant(float(value))


def schedule_from_config(config: dict[str, Any]) -> Schedule:
    """Inverse of ``config()``."""
    if not isinstance(config, Mapping):
        raise TypeError(f"a schedule config must be a dict, got {type(config).__name__}")
    if "schedule" not in config:
        raise ValueError(
            f"a schedule config needs a 'schedule' key naming one of {sorted(SCHEDULES)}; "
            f"got keys {sorted(config)}"
        )
    config = dict(config)
    name = config.pop("schedule")
    cls = lookup(SCHEDULES, name, "schedule")
    try:
        return cls(**config)
    except TypeError as error:
        raise TypeError(f"bad arguments for schedule {name!r}: {error}") from None
