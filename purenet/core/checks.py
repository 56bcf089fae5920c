"""The checks every setting goes through, written once.

Each check is an attrs validator ``(instance, attribute, value)`` and raises a
``SettingError`` that names the setting, so the message reads the same whether the value came
from Python, a TOML experiment file or a checkpoint. Outside attrs records (an optimizer
factory's argument), call ``check(name, value, validator)``.
"""

from __future__ import annotations

import difflib
import math
import numbers
from typing import Any, Callable, Iterable, Sequence

from purenet.core.registry import Registry
from purenet.errors import SettingError, SettingTypeError, UnknownNameError

import attrs

Validator = Callable[[Any, Any, Any], None]


def _name(attribute: Any) -> str:
    return attribute if isinstance(attribute, str) else attribute.name


def describe(value: Any) -> str:
    """``value`` with its type, for messages: ``str 'fast'``."""
    return f"{type(value).__name__} {value!r}"


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def integer(low: int | None = None, high: int | None = None) -> Validator:
    """An int (numpy ints too, not bool) in ``[low, high]``."""
    span = "" if low is None else (f" >= {low}" if high is None else f" in [{low}, {high}]")

    def validate(instance: Any, attribute: Any, value: Any) -> None:
        if not _is_int(value):
            raise SettingTypeError(_name(attribute), f"must be an integer{span}, got "
                                   f"{describe(value)}")
        if (low is not None and value < low) or (high is not None and value > high):
            raise SettingError(_name(attribute), f"must be an integer{span}, got {value}")
    return validate


def number(low: float | None = None, high: float | None = None,
           include_high: bool = False) -> Validator:
    """A finite real number in ``[low, high)`` (``[low, high]`` with ``include_high``)."""
    span = "" if low is None else (
        f" >= {low}" if high is None else f" in [{low}, {high}{']' if include_high else ')'}")

    def validate(instance: Any, attribute: Any, value: Any) -> None:
        if not _is_number(value):
            raise SettingTypeError(_name(attribute), f"must be a number{span}, got "
                                   f"{describe(value)}")
        too_high = high is not None and (value > high if include_high else value >= high)
        if not math.isfinite(value) or (low is not None and value < low) or too_high:
            raise SettingError(_name(attribute), f"must be a finite number{span}, got {value!r}")
    return validate


def boolean(instance: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, bool):
        raise SettingTypeError(_name(attribute), f"must be true or false, got {describe(value)}")


def string(instance: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, str):
        raise SettingTypeError(_name(attribute), f"must be a string, got {describe(value)}")


def one_of(names: Iterable[str]) -> Validator:
    """A name from ``names`` (a table's keys, read at each check: a registry may grow);
    the message lists them and the closest, and how to add one to a registry."""
    growing = isinstance(names, Registry)
    hint = (f"; or register one (purenet.{names.register_with} in Python, run by purenet "
            "--import MODULE on the command line)") if growing else ""
    fixed = None if growing else sorted(names)

    def validate(instance: Any, attribute: Any, value: Any) -> None:
        known = fixed if fixed is not None else sorted(names)
        if not isinstance(value, str):
            raise SettingTypeError(_name(attribute), f"must be one of {known}, got "
                                   f"{describe(value)}")
        if value not in known:
            raise UnknownNameError(_name(attribute), f"is unknown: {value!r}; expected one of "
                                   f"{known}{did_you_mean(value, known)}{hint}")
    return validate


def optional(validator: Validator) -> Validator:
    """None, or what ``validator`` accepts."""
    def validate(instance: Any, attribute: Any, value: Any) -> None:
        if value is not None:
            validator(instance, attribute, value)
    return validate


def did_you_mean(name: str, names: Sequence[str]) -> str:
    """`` (did you mean 'relu'?)`` for ``ReLU`` or ``rleu``, or nothing."""
    same_letters = [n for n in names if n.lower() == name.lower()]
    close = same_letters or difflib.get_close_matches(name, names, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check(name: str, value: Any, validator: Validator) -> Any:
    """Run ``validator`` on an argument outside a record; returns ``value``."""
    validator(None, name, value)
    return value


def plain_number(value: Any) -> Any:
    """A converter: numpy scalars become Python numbers (records stay JSON-able)."""
    # type(), not isinstance: np.float64 subclasses float but should not reach a config.
    if _is_number(value) and type(value) not in (int, float):
        return value.item() if hasattr(value, "item") else value
    return value


def field(validator: Validator, **kwargs: Any) -> Any:
    """An attrs field of a plain setting: numpy scalars converted, then ``validator``."""
    return attrs.field(converter=plain_number, validator=validator, **kwargs)
