"""Comparing records, arrays and containers of them: bit for bit, or within tolerances,
with the path of every difference (records hold arrays, so ``==`` cannot compare them)."""

from __future__ import annotations

from typing import Any, Iterator

import attrs
import numpy as np

Array = np.ndarray



def _join(path: str, part: str) -> str:
    return f"{path}.{part}" if path and not part.startswith("[") else path + part


def differences(a: Any, b: Any, path: str = "", rtol: float = 0.0,
                atol: float = 0.0) -> Iterator[str]:
    """Describe every place where ``a`` and ``b`` differ: bit for bit by default, or by more
    than ``atol + rtol * |b|`` for numbers and floating-point arrays.

    Recurses through attrs records, tuples, lists and dicts; arrays must agree in dtype,
    shape and values (NaN equal to NaN); floats must agree or both be NaN.
    """
    where = path or "the value"
    if type(a) is not type(b):
        yield f"{where}: type {type(a).__name__} != {type(b).__name__}"
    elif isinstance(a, np.ndarray):
        yield from _array_differences(a, b, where, rtol, atol)
    elif attrs.has(type(a)):
        for field in attrs.fields(type(a)):
            yield from differences(getattr(a, field.name), getattr(b, field.name),
                                   _join(path, field.name), rtol, atol)
    elif isinstance(a, (tuple, list)):
        if len(a) != len(b):
            yield f"{where}: length {len(a)} != {len(b)}"
        else:
            for i, (x, y) in enumerate(zip(a, b)):
                yield from differences(x, y, _join(path, f"[{i}]"), rtol, atol)
    elif isinstance(a, dict):
        if a.keys() != b.keys():
            yield f"{where}: keys {sorted(map(repr, a))} != {sorted(map(repr, b))}"
        else:
            for key in a:
                yield from differences(a[key], b[key], _join(path, f"[{key!r}]"), rtol, atol)
    elif isinstance(a, (float, np.floating)):
        if a != b and not (np.isnan(a) and np.isnan(b)) and not (
                np.isfinite(a) and np.isfinite(b) and abs(a - b) <= atol + rtol * abs(b)):
            yield f"{where}: {a!r} != {b!r}"
    elif a != b:
        yield f"{where}: {a!r} != {b!r}"


def _array_differences(a: Array, b: Array, where: str, rtol: float,
                       atol: float) -> Iterator[str]:
    if a.dtype != b.dtype:
        yield f"{where}: dtype {a.dtype} != {b.dtype}"
    elif a.shape != b.shape:
        yield f"{where}: shape {a.shape} != {b.shape}"
    elif a.dtype.kind in "fc":
        both_nan = np.isnan(a) & np.isnan(b)
        with np.errstate(invalid="ignore", over="ignore"):
            near = np.isfinite(a) & np.isfinite(b) & (np.abs(a - b) <= atol + rtol * np.abs(b))
            differ = ~both_nan & ~near & (a != b)
        if differ.any():
            first = tuple(int(i) for i in np.argwhere(differ)[0])
            within = "" if not (rtol or atol) else f" (rtol={rtol:g}, atol={atol:g})"
            yield (f"{where}: {int(differ.sum())} of {a.size} entries differ{within}, the "
                   f"first at {first}: {a[first]!r} != {b[first]!r}")
    elif not np.array_equal(a, b):
        first = tuple(int(i) for i in np.argwhere(a != b)[0])
        yield (f"{where}: {int((a != b).sum())} of {a.size} entries differ, the first at "
               f"{first}: {a[first]!r} != {b[first]!r}")


def assert_records_equal(a: Any, b: Any) -> None:
    """Assert that two records (or arrays, or containers of them) are bit-identical.

    Raises:
        AssertionError: naming the path of each differing field, e.g. ``layers[1].b``.
    """
    found = list(differences(a, b))
    if found:
        raise AssertionError("records differ:\n  " + "\n  ".join(found))


def assert_trees_equal(a: Any, b: Any) -> None:
    """Assert that two trees (records, arrays, containers of them) are bit-identical:
    ``assert_records_equal`` under chex's name."""
    assert_records_equal(a, b)


def assert_trees_close(a: Any, b: Any, rtol: float = 1e-7, atol: float = 0.0) -> None:
    """Assert that two trees agree within ``atol + rtol * |b|`` entry by entry (and
    exactly in their structure, types, dtypes and shapes).

    Raises:
        AssertionError: naming the path of each difference and its first entry.
    """
    if not (rtol >= 0 and atol >= 0):
        raise ValueError(f"rtol and atol must be numbers >= 0, got {rtol!r} and {atol!r}")
    found = list(differences(a, b, rtol=rtol, atol=atol))
    if found:
        raise AssertionError(f"trees differ beyond rtol={rtol:g}, atol={atol:g}:\n  "
                             + "\n  ".join(found))


def _leaves_with_paths(tree: Any, path: str = "") -> Iterator[tuple[str, Array]]:
    if isinstance(tree, np.ndarray):
        yield path or "the array", tree
    elif attrs.has(type(tree)):
        for field in attrs.fields(type(tree)):
            yield from _leaves_with_paths(getattr(tree, field.name), _join(path, field.name))
    elif isinstance(tree, (tuple, list)):
        for i, item in enumerate(tree):
            yield from _leaves_with_paths(item, _join(path, f"[{i}]"))
    elif isinstance(tree, dict):
        for key, item in tree.items():
            yield from _leaves_with_paths(item, _join(path, f"[{key!r}]"))


def assert_shape(tree: Any, shape: tuple[int | None, ...]) -> None:
    """Assert that an array (or every array of a tree) has ``shape``; None in ``shape``
    matches any length (``(None, 3)``: any number of rows of 3)."""
    wrong = [f"{where}: shape {array.shape}" for where, array in _leaves_with_paths(tree)
             if len(array.shape) != len(shape)
             or any(want is not None and got != want for got, want in zip(array.shape, shape))]
    if wrong:
        raise AssertionError(f"expected shape {shape}:\n  " + "\n  ".join(wrong))


def assert_dtype(tree: Any, dtype: Any) -> None:
    """Assert that an array (or every array of a tree) has ``dtype``."""
    dtype = np.dtype(dtype)
    wrong = [f"{where}: {array.dtype}" for where, array in _leaves_with_paths(tree)
             if array.dtype != dtype]
    if wrong:
        raise AssertionError(f"expected dtype {dtype}:\n  " + "\n  ".join(wrong))
