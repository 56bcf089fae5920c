"""Learning-rate schedules: frozen records called with the 0-based update count.

Each is a record rather than a closure so that a checkpoint can store it (``config()``)
and a resumed run can check it is the one it started with.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Union

import attrs

from purenet._registry import lookup


def _non_negative(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"{attribute.name} must be a number >= 0, got {value!r}")


def _positive_int(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attribute.name} must be an int >= 1, got {value!r}")


class _Schedule:
    def config(self) -> dict[str, Any]:
        """The schedule as plain data: its name and arguments."""
        return {"schedule": SCHEDULE_NAMES[type(self)], **attrs.asdict(self)}


@attrs.frozen
class constant(_Schedule):
    """``value`` at every step."""

    value: float = attrs.field(validator=_non_negative)

    def __call__(self, count: int) -> float:
        return float(self.value)


@attrs.frozen
class step_decay(_Schedule):
    """``init_value * decay_rate ** (count // step_size)``: drops by ``decay_rate`` every
    ``step_size`` updates (PyTorch's StepLR)."""

    init_value: float = attrs.field(validator=_non_negative)
    decay_rate: float = attrs.field(validator=_non_negative)
    step_size: int = attrs.field(validator=_positive_int)

    def __call__(self, count: int) -> float:
        return self.init_value * self.decay_rate ** (count // self.step_size)


@attrs.frozen
class exponential_decay(_Schedule):
    """``init_value * decay_rate ** (count / transition_steps)`` (Optax's), with
    ``staircase`` rounding the exponent down."""

    init_value: float = attrs.field(validator=_non_negative)
    decay_rate: float = attrs.field(validator=_non_negative)
    transition_steps: int = attrs.field(validator=_positive_int)
    staircase: bool = False

    def __call__(self, count: int) -> float:
        exponent = count / self.transition_steps
        return self.init_value * self.decay_rate ** (math.floor(exponent) if self.staircase
                                                     else exponent)


@attrs.frozen
class warmup_cosine_decay(_Schedule):
    """Linear warm-up from ``init_value`` to ``peak_value`` over ``warmup_steps``, then a
    cosine decay to ``end_value`` at ``decay_steps`` (counted from 0, warm-up included, as
    Optax's ``warmup_cosine_decay_schedule``); ``end_value`` after that."""

    peak_value: float = attrs.field(validator=_non_negative)
    warmup_steps: int = attrs.field(validator=_non_negative)
    decay_steps: int = attrs.field(validator=_positive_int)
    init_value: float = attrs.field(default=0.0, validator=_non_negative)
    end_value: float = attrs.field(default=0.0, validator=_non_negative)

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
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"{name} must be a float or a schedule from purenet.schedules, got "
            f"{type(value).__name__} {value!r}"
        )
    return constant(float(value))


def schedule_from_config(config: dict[str, Any]) -> Schedule:
    """Inverse of ``config()``."""
    config = dict(config)
    return lookup(SCHEDULES, config.pop("schedule", None), "schedule")(**config)
