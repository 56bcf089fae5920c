"""Name -> entry tables: purenet's own entries, and the ones a user registers.

A ``Registry`` reads like a dict (``name in ACTIVATIONS``, ``ACTIVATIONS[name]``,
``sorted(ACTIVATIONS)``) and holds two parts: the built-ins, fixed when purenet is
imported, and the entries of ``purenet.register_*`` (``purenet.extend``), which may add
names but never replace one. Every "unknown name" error reads the same (``lookup``).
"""

from __future__ import annotations

import re
from typing import Iterator, Mapping, TypeVar

from purenet.errors import SettingError

T = TypeVar("T")

# A user's name: what a TOML key, a CLI argument and a checkpoint carry unchanged.
NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
NAME_WORDS = "a lowercase identifier (a letter, then letters, digits or _; at most 64)"


class Registry(Mapping[str, T]):
    """The table of one kind of piece ("activation", "loss", ...).

    Attributes:
        kind: what an entry is, for messages.
        register_with: the public function that adds one (``purenet.register_activation``).
    """

    def __init__(self, kind: str, register_with: str, builtins: Mapping[str, T],
                 name_rule: tuple[re.Pattern, str] = (NAME, NAME_WORDS)) -> None:
        self.kind = kind
        self.register_with = register_with
        self.name_rule = name_rule
        self._builtins = dict(builtins)
        self._user: dict[str, T] = {}

    def __getitem__(self, name: str) -> T:
        try:
            return self._builtins[name]
        except KeyError:
            return self._user[name]

    def __iter__(self) -> Iterator[str]:
        yield from self._builtins
        yield from list(self._user)

    def __len__(self) -> int:
        return len(self._builtins) + len(self._user)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {sorted(self)})"

    def is_builtin(self, name: str) -> bool:
        return name in self._builtins

    def is_user(self, name: str) -> bool:
        """Whether ``name`` is a piece registered in this process (not a built-in)."""
        return name in self._user

    def check_new(self, name: str, replace: bool = False) -> None:
        """Refuse ``name`` for a new entry.

        Raises:
            SettingError: ``name`` is not a lowercase identifier of at most 64 characters,
                is a built-in's, or is already registered (unless ``replace``).
        """
        pattern, words = self.name_rule
        if not isinstance(name, str) or not pattern.fullmatch(name):
            raise SettingError(self.kind, f"name must be {words}, got {name!r}")
        if name in self._builtins:
            raise SettingError(self.kind, f"name {name!r} is purenet's built-in {self.kind}, "
                               "which a registration cannot replace; choose another name")
        if name in self._user and not replace:
            raise SettingError(self.kind, f"{name!r} is already registered; pass replace=True "
                               "to register it anew (runs and checkpoints hold only its name)")

    def add(self, name: str, entry: T, *, replace: bool = False) -> None:
        """Register ``entry`` as ``name`` (``check_new``'s refusals)."""
        self.check_new(name, replace)
        self._user[name] = entry

    def remove(self, name: str) -> None:
        """Forget the user piece ``name`` (tests, notebooks); built-ins stay."""
        if name in self._builtins:
            raise SettingError(self.kind, f"{name!r} is a built-in {self.kind}; only "
                               "registered pieces can be removed")
        self._user.pop(name, None)


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
