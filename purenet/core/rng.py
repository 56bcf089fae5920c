"""Randomness derived from ``(seed, purpose, ...)``, never carried and never global.

Every random draw in purenet comes from a fresh Generator keyed by the run's seed and
a path such as ``("dropout", step, layer)``. A training state therefore needs only its
counters to reproduce all randomness still to come, which is what makes resume exact.
"""

from __future__ import annotations

import numpy as np

# Stable integer tags: the seed sequence hashes integers, and these must never change,
# or old checkpoints would resume with different data orders and masks.
PURPOSES = {"init": 1, "data": 2, "dropout": 3, "split": 4}


def check_seed(seed: object) -> int:
    """Return ``seed`` as an int, or raise: a seed is a non-negative integer."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be a non-negative int, got {type(seed).__name__} {seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed}")
    return int(seed)


def derive(seed: int, purpose: str, *counters: int) -> np.random.Generator:
    """A Generator that depends on ``(seed, purpose, *counters)`` alone.

    Philox is counter-based, so streams for different keys are independent.
    """
    key = (PURPOSES[purpose], *(int(c) for c in counters))
    return np.random.Generator(np.random.Philox(np.random.SeedSequence(seed, spawn_key=key)))
