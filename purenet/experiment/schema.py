"""Reading, checking and writing experiment files: the machinery under ``experiment.py``.

A check is a small function ``value -> value`` that raises ``Invalid`` with what was
expected; ``Source.take`` applies a table of them (``name -> Field``) to one TOML table and
turns every problem into an ``ExperimentError`` that names the dotted key, the file, and the
line of the file where the key sits (or the ``--set`` option that gave it).
"""

from __future__ import annotations

import difflib

from purenet.errors import ExperimentError
import json
import math
import re
import tomllib
from typing import Any, Callable, Iterable, Mapping, NamedTuple, Sequence

REQUIRED = object()
Check = Callable[[Any], Any]


class Invalid(Exception):
    """Raised by a check; ``Source`` adds the key and where it is."""


# --- checks ---------------------------------------------------------------------------

_TOML_TYPES = {bool: "boolean", int: "integer", float: "float", str: "string",
               dict: "table", list: "array"}


def describe(value: Any) -> str:
    """``value`` with its TOML type, for messages: ``string 'fast'``."""
    return f"{_TOML_TYPES.get(type(value), type(value).__name__)} {value!r}"


def integer(low: int | None = None) -> Check:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise Invalid(f"must be an integer{_bound(low)}, got {describe(value)}")
        if low is not None and value < low:
            raise Invalid(f"must be an integer{_bound(low)}, got {value}")
        return value
    return check


def number(low: float | None = None, high: float | None = None) -> Check:
    """A finite int or float in ``[low, high)``, returned as a float."""
    span = (f" in [{low}, {high})" if high is not None else _bound(low))

    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise Invalid(f"must be a number{span}, got {describe(value)}")
        if not math.isfinite(value) or (low is not None and value < low) or \
                (high is not None and value >= high):
            raise Invalid(f"must be a number{span}, got {value!r}")
        return float(value)
    return check


def _bound(low: float | None) -> str:
    return "" if low is None else f" >= {low}"


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"must be true or false, got {describe(value)}")
    return value


def string(value: Any) -> str:
    if not isinstance(value, str):
        raise Invalid(f"must be a string, got {describe(value)}")
    return value


def choice(names: Iterable[str]) -> Check:
    names = sorted(names)

    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise Invalid(f"must be one of {names}, got {describe(value)}")
        if value not in names:
            raise Invalid(f"unknown value {value!r}; expected one of {names}{_hint(value, names)}")
        return value
    return check


def table(value: Any) -> dict:
    if not isinstance(value, dict):
        raise Invalid(f"must be a table, got {describe(value)}")
    return value


def either(*checks: Check) -> Check:
    """The first check that accepts the value; else the last one's complaint."""
    def check(value: Any) -> Any:
        for inner in checks[:-1]:
            try:
                return inner(value)
            except Invalid:
                pass
        return checks[-1](value)
    return check


def literal(word: str, description: str) -> Check:
    def check(value: Any) -> str:
        if value != word:
            raise Invalid(f"must be {description}, got {describe(value)}")
        return word
    return check


def _hint(name: str, names: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, names, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class Field(NamedTuple):
    check: Check
    default: Any = REQUIRED


# --- where a key is -------------------------------------------------------------------


def key_parts(key: str) -> list[str]:
    """``"layers[2].activation"`` -> ``["layers", "2", "activation"]``."""
    return [p for p in re.split(r"[.\[\]]+", key) if p]


def _toml_key(text: str) -> list[str]:
    return [p.strip().strip("\"'") for p in text.split(".")]


_ARRAY_HEADER = re.compile(r"^\s*\[\[\s*([^\[\]]+?)\s*\]\]")
_TABLE_HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]")
_ASSIGNMENT = re.compile(r"""^\s*([A-Za-z0-9_\-."' ]+?)\s*=""")


def find_line(text: str, key: str) -> int | None:
    """The line of ``text`` that sets ``key``, or else the nearest enclosing table's header.

    A line-based reading of TOML, good for the files people write (one key per line,
    ``[table]`` and ``[[array]]`` headers); it only ever points at a line.
    """
    target = key_parts(key)
    best_depth, best_line = 0, None
    current: list[str] = []
    counts: dict[tuple[str, ...], int] = {}
    for number_, line in enumerate(text.splitlines(), start=1):
        if match := _ARRAY_HEADER.match(line):
            name = tuple(_toml_key(match.group(1)))
            counts[name] = counts.get(name, -1) + 1
            path = current = [*name, str(counts[name])]
        elif match := _TABLE_HEADER.match(line):
            path = current = _toml_key(match.group(1))
        elif match := _ASSIGNMENT.match(line):
            path = [*current, *_toml_key(match.group(1))]
        else:
            continue
        if path == target[:len(path)] and len(path) > best_depth:
            best_depth, best_line = len(path), number_
            if len(path) == len(target):
                break
    return best_line


class Source:
    """An experiment file's text and overrides: turns a check's complaint into an
    ``ExperimentError`` located in the file or in the ``--set`` option."""

    def __init__(self, path: str | None, text: str = "", overrides: Mapping[str, str] = ()):
        self.path, self.text, self.overrides = path, text, dict(overrides)

    def error(self, key: str | None, message: str) -> ExperimentError:
        if key is not None:
            parts = key_parts(key)
            for given, option in self.overrides.items():
                if key_parts(given) == parts[:len(key_parts(given))]:
                    return ExperimentError(message, key, self.path, where=f"{option!r}")
        line = find_line(self.text, key) if key is not None else None
        return ExperimentError(message, key, self.path, line)

    def check(self, key: str, value: Any, check: Check) -> Any:
        try:
            return check(value)
        except Invalid as problem:
            raise self.error(key, str(problem)) from None

    def take(self, raw: Any, prefix: str, fields: Mapping[str, Field],
             extra: Iterable[str] = ()) -> dict[str, Any]:
        """Check the table ``raw`` (at dotted ``prefix``) against ``fields``: unknown keys,
        missing required keys and bad values are errors. Keys in ``extra`` pass unchecked
        (the caller handles them). Absent keys get their defaults."""
        raw = self.check(prefix.rstrip("."), raw, table) if prefix else raw
        allowed = [*fields, *extra]
        for name in raw:
            if name not in allowed:
                raise self.error(f"{prefix}{name}", f"unknown key; expected one of "
                                 f"{sorted(allowed)}{_hint(name, allowed)}")
        out = {}
        for name, field in fields.items():
            if name in raw:
                out[name] = self.check(f"{prefix}{name}", raw[name], field.check)
            elif field.default is REQUIRED:
                raise self.error(f"{prefix}{name}", "missing; this key is required")
            else:
                out[name] = field.default
        return out


# --- reading, overriding, writing ------------------------------------------------------


def read_toml(path: str) -> tuple[str, dict[str, Any]]:
    """The text and the parsed contents of the TOML file ``path``."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise ExperimentError("no such experiment file", path=path) from None
    except IsADirectoryError:
        raise ExperimentError("is a directory, not an experiment file (.toml)",
                              path=path) from None
    try:
        text = raw.decode("utf-8")
        return text, tomllib.loads(text)
    except UnicodeDecodeError as error:
        raise ExperimentError(f"is not UTF-8 text: {error}", path=path) from None
    except tomllib.TOMLDecodeError as error:
        raise ExperimentError(f"is not valid TOML: {error}", path=path) from None


def parse_override(text: str) -> tuple[str, Any]:
    """``"optimizer.learning_rate=0.01"`` -> ``("optimizer.learning_rate", 0.01)``; the
    value is read as a TOML value, or taken as a plain string when it is not one."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key or not all(re.fullmatch(r"[A-Za-z0-9_\-]+", p) for p in key_parts(key)):
        raise ExperimentError(f"an override must look like key=value (e.g. "
                              f"optimizer.learning_rate=0.01), got {text!r}")
    try:
        parsed = tomllib.loads(f"v = {value.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value.strip()
    return key, parsed


def set_dotted(config: dict[str, Any], key: str, value: Any, option: str) -> None:
    """Set ``key`` (``a.b.c`` or ``layers[0].output_dim``) in the nested ``config``."""
    parts = key_parts(key)
    node: Any = config
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ExperimentError(f"{'.'.join(parts[:i])} has {len(node)} entries; "
                                      f"there is no entry {part}", where=repr(option))
            part = int(part)
        elif not isinstance(node, dict):
            raise ExperimentError(f"{'.'.join(parts[:i])} is not a table, so it has no key "
                                  f"{part!r}", where=repr(option))
        if last:
            node[part] = value
        else:
            if isinstance(node, dict) and part not in node:
                node[part] = {}
            node = node[part]


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if not isinstance(value, float) or math.isfinite(value) else \
            {math.inf: "inf", -math.inf: "-inf"}.get(value, "nan")
    if isinstance(value, str):
        return json.dumps(value)   # JSON's escapes are valid in TOML basic strings
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_bare(k)} = {_scalar(v)}" for k, v in value.items()
                               if v is not None) + "}"
    raise TypeError(f"cannot write {type(value).__name__} {value!r} as TOML")


def _bare(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_\-]+", key) else json.dumps(key)


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def dump_toml(config: Mapping[str, Any], prefix: str = "") -> str:
    """``config`` (plain data; None values left out) as TOML text."""
    lines, tables = [], []
    for key, value in config.items():
        if value is None:
            continue
        if isinstance(value, dict) or _is_table_array(value):
            tables.append((key, value))
        else:
            lines.append(f"{_bare(key)} = {_scalar(value)}")
    for key, value in tables:
        name = f"{prefix}{_bare(key)}"
        items = value if isinstance(value, list) else [value]
        header = f"[[{name}]]" if isinstance(value, list) else f"[{name}]"
        for item in items:
            body = dump_toml(item, f"{name}.")
            lines += ["", header, *([body] if body else [])]
    return "\n".join(lines).lstrip("\n")
