"""The manifest of a format 3 file: the JSON records and the table of the arrays' places.

It opens the body, right after the 512-byte header, in the HDF5 user block, which HDF5
never interprets; the header gives its length and the body's digest covers it. It is

    {"meta": {...}, "config": {...}, "experiment": ..., "data": ...,
     "arrays": [["/params/W0", "<f4", [784, 512], 8192], ...]}

the same four records as the HDF5 file's JSON attributes, and for every array its name,
dtype, shape and byte offset in the file (null for an array of no bytes). purenet reads a
format 3 file through the manifest alone: libhdf5 never parses a file purenet loads, so a
file that would make it loop or allocate without bound cannot. Everything here is checked
before a byte of array data is looked at.
"""

from __future__ import annotations

import json
import math
from typing import Any, NamedTuple

import numpy as np

from purenet.checkpoint.sealed import MAX_MANIFEST_BYTES
from purenet.errors import CheckpointError, CorruptCheckpointError

KEYS = ("meta", "config", "experiment", "data", "arrays")
MAX_BYTES = MAX_MANIFEST_BYTES
MAX_DEPTH = 64          # JSON nesting: purenet's own records nest 6 deep
MAX_ARRAYS = 100_000
ALIGNMENT = 64          # every array starts on a 64-byte boundary of the file
DTYPES = {np.dtype(name).str: np.dtype(name) for name in ("float32", "float64")}


# --- writing --------------------------------------------------------------------------


def table(arrays: list[tuple[str, np.ndarray]], offsets: list[int | None]) -> list[list]:
    """The rows of the arrays table: name, dtype, shape, offset in the file."""
    return [[path, array.dtype.str, list(array.shape), offset]
            for (path, array), offset in zip(arrays, offsets)]


def encode(texts: list[bytes], rows: list[list]) -> bytes:
    """The manifest, from the four records' JSON texts (``meta``, ``config``,
    ``experiment``, ``data``, as the HDF5 attributes hold them) and the table.

    Raises:
        CheckpointError: it would exceed ``MAX_BYTES`` (a reader would refuse it).
    """
    parts = [b'{"%s": %s' % (KEYS[0].encode(), texts[0])]
    parts += [b', "%s": %s' % (key.encode(), text) for key, text in zip(KEYS[1:], texts[1:])]
    parts.append(b', "arrays": %s}' % json.dumps(rows, separators=(",", ":")).encode())
    text = b"".join(parts)
    if len(text) > MAX_BYTES:
        sizes = ", ".join(f"{key} {len(t):,}" for key, t in zip(KEYS, texts))
        raise CheckpointError(
            f"the checkpoint's manifest would be {len(text):,} bytes, over the {MAX_BYTES:,} "
            f"a checkpoint may hold (records: {sizes} bytes); keep the experiment and data "
            "records small")
    return text


# --- reading --------------------------------------------------------------------------


def _depth(value: Any) -> int:
    """How deeply ``value`` nests lists and dicts (iteratively: no recursion to bound)."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            if depth <= MAX_DEPTH:
                todo += [(v, depth + 1) for v in (item.values() if isinstance(item, dict) else item)]
    return deepest


class DuplicateKeyError(ValueError):
    """A JSON object that gives a key twice."""


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads``'s ``object_pairs_hook`` for objects whose keys are each given once:
    ``json.loads`` keeps the last of two, another parser may keep the first, and the two
    would read two different values (every JSON file purenet reads goes through it)."""
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        twice = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise DuplicateKeyError(f"the key {twice[:40]!r} is given twice in one object")
    return found


def parse(raw: bytes, path: str) -> dict[str, Any]:
    """The manifest ``raw``: a JSON object at most ``MAX_BYTES`` long and ``MAX_DEPTH``
    deep, no key twice in an object (its keys are the contract's to check)."""
    if len(raw) > MAX_BYTES:
        raise CorruptCheckpointError(f"{path}: its manifest is {len(raw):,} bytes, over the "
                                     f"{MAX_BYTES:,} a checkpoint's may be")
    try:
        found = json.loads(raw.decode("utf-8"), object_pairs_hook=unique_keys)
    except RecursionError:
        raise CorruptCheckpointError(f"{path}: its manifest nests deeper than {MAX_DEPTH} "
                                     "levels") from None
    except DuplicateKeyError as error:
        raise CorruptCheckpointError(f"{path}: its manifest is ambiguous: {error}") from None
    except ValueError as error:   # also bad UTF-8, and integers of over 4300 digits
        raise CorruptCheckpointError(f"{path}: its manifest is not valid JSON ({error})"
                                     ) from None
    if _depth(found) > MAX_DEPTH:
        raise CorruptCheckpointError(f"{path}: its manifest nests deeper than {MAX_DEPTH} levels")
    return found


class Entry(NamedTuple):
    """One array of the table, checked: where its bytes are in the file."""

    dtype: np.dtype
    shape: tuple[int, ...]
    offset: int | None
    nbytes: int


def _entry(row: Any, path: str) -> tuple[str, Entry]:
    bad = CorruptCheckpointError(f"{path}: an arrays entry of its manifest is {row!r:.100}; "
                                 "expected [name, dtype, shape, offset]")
    if not isinstance(row, list) or len(row) != 4 or not isinstance(row[0], str):
        raise bad
    name, dtype, shape, offset = row
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise CorruptCheckpointError(f"{path}: the array {name} has dtype {dtype!r:.20}; "
                                     f"expected one of {sorted(DTYPES)}")
    if not isinstance(shape, list) or not 1 <= len(shape) <= 2 or not all(
            type(n) is int and 0 <= n < 2**62 for n in shape):
        raise CorruptCheckpointError(f"{path}: the array {name} has shape {shape!r:.60}; "
                                     "expected 1 or 2 non-negative integers")
    nbytes = math.prod(shape) * DTYPES[dtype].itemsize   # exact: Python integers
    if (offset is None) != (nbytes == 0) or not (offset is None or type(offset) is int):
        raise CorruptCheckpointError(f"{path}: the array {name} has offset {offset!r:.30}; "
                                     "expected an integer (null for an empty array)")
    return name, Entry(DTYPES[dtype], tuple(shape), offset, nbytes)


def checked_table(rows: Any, image_size: int, start: int, path: str) -> dict[str, Entry]:
    """The arrays table by name, after checking every row: a known dtype, a 1- or 2-D
    shape, an offset aligned, past ``start`` (the manifest's end) and with all its bytes
    inside the file, no name twice, no two arrays overlapping."""
    if not isinstance(rows, list) or len(rows) > MAX_ARRAYS:
        raise CorruptCheckpointError(f"{path}: the manifest's arrays must be a list of at most "
                                     f"{MAX_ARRAYS:,} entries")
    entries: dict[str, Entry] = {}
    for row in rows:
        name, entry = _entry(row, path)
        if name in entries:
            raise CorruptCheckpointError(f"{path}: the manifest lists the array {name} twice")
        if entry.offset is not None and (entry.offset % ALIGNMENT or entry.offset < start
                                         or entry.offset + entry.nbytes > image_size):
            raise CorruptCheckpointError(
                f"{path}: the array {name} ({entry.nbytes:,} bytes at offset {entry.offset:,}) "
                f"is not {ALIGNMENT}-byte aligned inside the file's {image_size:,} bytes "
                f"after its manifest")
        entries[name] = entry
    placed = sorted((e.offset, e.nbytes, name) for name, e in entries.items() if e.offset)
    for (at, size, name), (next_at, _, other) in zip(placed, placed[1:]):
        if at + size > next_at:
            raise CorruptCheckpointError(f"{path}: the arrays {name} and {other} overlap")
    return entries


# The HDF5 structure after the last array: object headers, the JSON attributes' heap (each
# text at most twice its length in the manifest, at least 1 KiB) and free-space records;
# measured at 3.7 KB for 9 arrays and 13 KB for 341 (with a 22 KB manifest).
_TAIL_FIXED = 64 << 10
_TAIL_PER_MANIFEST_BYTE = 4


def allowed_size(entries: dict[str, Entry], manifest_length: int) -> int:
    """The largest file the manifest accounts for: its arrays' extent, then the HDF5
    structure a writer puts after them. A larger file is padded, and refused unread."""
    extent = max((e.offset + e.nbytes for e in entries.values() if e.offset is not None),
                 default=0)
    return extent + _TAIL_FIXED + _TAIL_PER_MANIFEST_BYTE * manifest_length


def view(image: bytearray, entry: Entry) -> np.ndarray:
    """The array of a checked entry: a view of the verified bytes, not a copy."""
    if entry.offset is None:
        return np.zeros(entry.shape, entry.dtype)
    count = entry.nbytes // entry.dtype.itemsize
    return np.frombuffer(image, entry.dtype, count, entry.offset).reshape(entry.shape)
