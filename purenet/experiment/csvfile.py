"""CSV data files: a header row of unique column names, then rows of finite numbers.

Every complaint names the file, its line (1-based, as an editor shows it, the header being
line 1) and the column (1-based, with its name), so the user can go straight to the value.
A file is read only when it is a regular file that fits in memory (``limits``).
"""

from __future__ import annotations

import collections
import csv
import io
import math
import re
import warnings
from typing import Sequence

import numpy as np

from purenet.experiment import limits

# A run of more characters than a line may hold, none of them a line end.
_LONG_LINE = re.compile(r"[^\n]{%d}" % (limits.MAX_LINE_BYTES + 1))


def _text(path: str, max_bytes: int) -> str:
    """The file's text, its lines ended by "\\n" (classic Mac files end them by "\\r"
    alone), none longer than ``limits.MAX_LINE_BYTES``."""
    data = limits.read_regular(path, "a CSV file", max_bytes)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path} is not UTF-8 text: {error}") from None
    del data
    if "\r" in text and "\n" not in text:
        text = text.replace("\r", "\n")
    long = _LONG_LINE.search(text)
    if long is not None:
        line = text.count("\n", 0, long.start()) + 1
        raise ValueError(f"{path}, line {line}: longer than {limits.human(limits.MAX_LINE_BYTES)}"
                         "; a line of a data file holds a few numbers per column")
    return text


def _data_lines(text: str, first: int):
    """``(line, fields)`` of each non-blank line from line ``first`` on (1-based)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        for fields in reader:
            if reader.line_num >= first and any(f.strip() for f in fields):
                yield reader.line_num, [f.strip() for f in fields]
    except csv.Error as error:   # e.g. "field larger than field limit (131072)"
        raise ValueError(f"line {max(reader.line_num, 1)}: not a valid CSV row: {error} (a value "
                         "of a data file is a number of a few characters)") from None


def _first_row(path: str, text: str) -> tuple[int, list[str]] | None:
    try:
        return next(_data_lines(text, 1), None)
    except ValueError as error:
        raise ValueError(f"{path}, {error}") from None


def _count(n: int, noun: str) -> str:
    """``1 column``, ``2 columns``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _problem(path: str, names: Sequence[str], text: str, first: int) -> ValueError:
    """The first value from line ``first`` on that is not a finite number, or the first
    row of the wrong length, as an error naming its line and column."""
    try:
        for line, fields in _data_lines(text, first):
            if len(fields) != len(names):
                return ValueError(f"{path}, line {line}: {_count(len(fields), 'value')}, but "
                                  f"the file has {_count(len(names), 'column')}")
            for column, (name, field) in enumerate(zip(names, fields), start=1):
                if not _is_number(field) or not math.isfinite(float(field)):
                    return ValueError(f"{path}, line {line}, column {column} ({name!r}): "
                                      f"{field[:40]!r} is not a finite number; every value "
                                      "after the header must be one")
    except ValueError as error:
        return ValueError(f"{path}, {error}")
    return ValueError(f"{path}: the values after the header are not a table of numbers")


def _numbers(path: str, names: Sequence[str], text: str, first: int) -> np.ndarray:
    """The values from line ``first`` on, as a float64 array with a column per name."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # "input contained no data": handled below
            values = np.loadtxt(io.StringIO(text), delimiter=",", skiprows=first - 1,
                                ndmin=2, dtype=np.float64, comments=None, quotechar='"')
    except ValueError:
        raise _problem(path, names, text, first) from None
    if values.shape[0] == 0:
        raise ValueError(f"{path} has a header but no rows of data" if first > 1
                         else f"{path} has no rows of data")
    if values.shape[1] != len(names) or not np.isfinite(values).all():
        raise _problem(path, names, text, first)
    return values


def read_csv(path: str, max_bytes: int = 2 ** 40) -> tuple[list[str], np.ndarray]:
    """``(column_names, values)`` of a CSV file of numbers with a header row.

    Raises:
        ValueError: not a regular file or too big, no header, repeated or empty column
            names, ragged rows, a value that is not a finite number (naming line and
            column), or no data rows.
    """
    text = _text(path, max_bytes)
    first = _first_row(path, text)
    if first is None:
        raise ValueError(f"{path} is empty; a CSV file needs a header row of column names")
    line, names = first
    check_names(path, names)
    return names, _numbers(path, names, text, line + 1)


def check_names(path: str, names: Sequence[str]) -> None:
    """Column names are non-empty and unique."""
    for column, name in enumerate(names, start=1):
        if not name:
            raise ValueError(f"{path}: column {column} of the header has no name")
    repeated = sorted(name for name, count in collections.Counter(names).items() if count > 1)
    if repeated:
        raise ValueError(f"{path} names the column(s) {repeated} more than once; each column "
                         "needs its own name")


def read_features(path: str, features: Sequence[str], target: str | None = None,
                  header: bool = True, max_bytes: int = 2 ** 40) -> np.ndarray:
    """The columns ``features`` of the CSV file ``path``, in that order, for predicting.

    With ``header``, the first row names the columns: each feature must appear once, and
    no other column but ``target`` (which is ignored) may. Without it, every row is data
    and the columns are taken in the order of ``features``.

    Raises:
        ValueError: naming the missing, repeated or unknown columns, or a row and column
            that is not a number.
    """
    text = _text(path, max_bytes)
    features = list(features)
    first = _first_row(path, text)
    if first is None:
        raise ValueError(f"{path} is empty; expected the columns {features}")
    line, names = first
    if not header:
        if len(names) != len(features):
            raise ValueError(f"{path} has {_count(len(names), 'column')}; the network takes "
                             f"{len(features)}, in this order: {features}")
        return _numbers(path, features, text, line)
    if all(_is_number(n) for n in names) and not set(names) & set(features):
        raise ValueError(f"the first row of {path} holds numbers, not column names; if the "
                         "file has no header row, pass --no-header (its columns are then "
                         f"taken in the training order: {features})")
    check_names(path, names)
    columns = feature_columns(path, names, features, target, " (rename the header, or pass "
                              "--no-header to take the columns by position)")
    return _numbers(path, names, text, line + 1)[:, columns]


def feature_columns(path: str, names: Sequence[str], features: Sequence[str],
                    ignored: str | None = None, hint: str = "") -> list[int]:
    """Where each of ``features`` sits among the columns ``names`` of ``path``, in the
    order of ``features``: every feature must be there, and no other column but
    ``ignored``.

    Raises:
        ValueError: naming the missing and the unknown columns (then ``hint``).
    """
    features, names = list(features), list(names)
    known, wanted = set(names), set(features)   # sets: 10^6 columns in linear time
    missing = [f for f in features if f not in known]
    unknown = [n for n in names if n not in wanted and n != ignored]
    if missing or unknown:
        raise ValueError(f"the columns of {path} do not match the features the network was "
                         f"trained on, {features}: "
                         + "; ".join(part for part in (
                             missing and f"missing {missing}",
                             unknown and f"unknown {unknown}") if part) + hint)
    where = {name: index for index, name in enumerate(names)}
    return [where[f] for f in features]
