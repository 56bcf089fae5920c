"""Reading and writing experiment files, and finding where a key sits in one.

The checking itself is done by the records' validators (``purenet.core.checks``) while
cattrs structures the file; ``Source.error`` turns a problem at a dotted key into an
``ExperimentError`` that names the key, the file and the line where the key sits (or the
``--set`` option that gave it).
"""

from __future__ import annotations

import re
import tomllib
from typing import Any, Mapping

from purenet.errors import ExperimentError, SettingError, key_text
from purenet.experiment import limits


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

    def setting_error(self, error: SettingError) -> ExperimentError:
        """A validator's complaint about a setting, located in the file."""
        return self.error(key_text(error.path) or None, error.problem)


# --- reading, overriding, writing ------------------------------------------------------


def read_toml(path: str) -> tuple[str, dict[str, Any]]:
    """The text and the parsed contents of the TOML file ``path`` (a regular file of at
    most ``limits.MAX_EXPERIMENT_BYTES``, nested at most ``limits.MAX_TOML_DEPTH`` deep)."""
    try:
        raw = limits.read_regular(path, "an experiment file (.toml)",
                                  limits.MAX_EXPERIMENT_BYTES)
    except FileNotFoundError:
        raise ExperimentError("no such experiment file", path=path) from None
    except ValueError as error:
        raise ExperimentError(str(error).replace(f"{path} ", "", 1), path=path) from None
    try:
        text = raw.decode("utf-8")
        return text, loads_toml(text)
    except UnicodeDecodeError as error:
        raise ExperimentError(f"is not UTF-8 text: {error}", path=path) from None
    except (tomllib.TOMLDecodeError, ValueError) as error:
        raise ExperimentError(f"is not valid TOML: {error}", path=path) from None


def loads_toml(text: str) -> dict[str, Any]:
    """``tomllib.loads``, refusing first what would exhaust its recursion.

    Raises:
        ValueError: too deep, or not valid TOML (``tomllib.TOMLDecodeError`` is one).
    """
    depth = limits.toml_depth(text)
    if depth > limits.MAX_TOML_DEPTH:
        raise ValueError(f"arrays or tables nest {depth} deep; an experiment nests at most "
                         f"{limits.MAX_TOML_DEPTH} deep")
    try:
        return tomllib.loads(text)
    except RecursionError:   # the depth count is an upper bound, so only as a last resort
        raise ValueError("arrays or tables nest too deep") from None


def parse_override(text: str) -> tuple[str, Any]:
    """``"optimizer.learning_rate=0.01"`` -> ``("optimizer.learning_rate", 0.01)``; the
    value is read as a TOML value, or taken as a plain string when it is not one."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key or not all(re.fullmatch(r"[A-Za-z0-9_\-]+", p) for p in key_parts(key)):
        raise ExperimentError(f"an override must look like key=value (e.g. "
                              f"optimizer.learning_rate=0.01), got {text!r}")
    value = value.strip()
    if "\n" in value or "\r" in value:
        raise ExperimentError(f"an override's value is one TOML value on one line; "
                              f"{text!r} holds a line break (give each setting its own --set)")
    try:
        parsed = loads_toml(f"v = {value}")
    except tomllib.TOMLDecodeError:
        return key, value
    except ValueError as error:
        raise ExperimentError(f"{error}", where=repr(f"--set {text}")) from None
    return key, parsed["v"]


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


def dump_toml(config: Mapping[str, Any]) -> str:
    """``config`` (plain data) as TOML text; None values are left out (TOML has no null)."""
    import tomli_w

    return tomli_w.dumps(without_none(config))


def without_none(config: Any) -> Any:
    if isinstance(config, Mapping):
        return {k: without_none(v) for k, v in config.items() if v is not None}
    if isinstance(config, (list, tuple)):
        return [without_none(v) for v in config]
    return config
