"""What a run was trained on, in a few bytes: the data's fingerprint.

A checkpoint records the fingerprint of its run's training and validation arrays, as the
run saw them (cast to its dtype, targets in the loss's form), so resuming or rewinding with
other data is refused instead of silently continuing as if it were the same run.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import xxhash

from purenet.core.sparse import SparseRows
from purenet.train.config import differences

Fingerprint = dict[str, Any]    # name -> {"shape": [...], "dtype": "...", "xxh3_128": "..."}


def _digest(array: np.ndarray) -> str:
    # xxh3-128 guards against accidents, not adversaries, at ~15 GB/s: under a millisecond
    # for 8 MB (BLAKE2b took 12 ms, as long as 15 training steps of a small network).
    if isinstance(array, SparseRows):   # its CSR arrays, one digest over all three
        hasher = xxhash.xxh3_128()
        for part in array.parts():
            hasher.update(np.ascontiguousarray(part).data)
        return hasher.hexdigest()
    return xxhash.xxh3_128_hexdigest(np.ascontiguousarray(array).data)


def fingerprint(arrays: Mapping[str, np.ndarray | None]) -> Fingerprint:
    """Shape, dtype and digest of each array given (None for an absent one), as plain data."""
    return {name: None if array is None else {
        "shape": list(array.shape), "dtype": array.dtype.str, "xxh3_128": _digest(array)}
        for name, array in arrays.items()}


def data_differences(expected: Fingerprint, found: Fingerprint) -> list[str]:
    """Which arrays differ, and how (shape, dtype or contents)."""
    return differences(expected, found,
                       "{key}: this run's data has {expected!r}, the checkpoint's {found!r}")
