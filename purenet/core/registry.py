"""Name -> entry tables with one lookup helper, so every 'unknown name' error reads the same."""

from __future__ import annotations

from typing import Mapping, TypeVar

T = TypeVar("T")


def lookup(table: Mapping[str, T], name: str, kind: str) -> T:
    """Return ``table[name]``, or raise a ValueError that lists the valid names.

    Args:
        table: the registry, e.g. ``ACTIVATIONS``.
        name: the requested entry.
        kind: what an entry is, for the message ("activation", "loss", ...).
    """
    if not isinstance(name, str):
        raise TypeError(f"{kind} must be a name (str), got {type(name).__name__} {name!r}")
    try:
        return table[name]
    except KeyError:
        raise ValueError(
            f"unknown {kind} {name!r}; expected one of {sorted(table)}"
        ) from None
