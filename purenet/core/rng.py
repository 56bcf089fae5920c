"""Randomness derived from ``(seed, purpose, ...)``, never carried and never global.

Every random draw in purenet comes from a fresh Generator keyed by the run's seed and
a path such as ``("dropout", step, layer)``. A training state therefore needs only its
counters to reproduce all randomness still to come, which is what makes resume exact.
"""

from __future__ import annotations

import numpy as np

from purenet.core.checks import check, integer

# Stable integer tags: the seed sequence hashes integers, and these must never change,
# or old checkpoints would resume with different data orders and masks.
PURPOSES = {"init": 1, "data": 2, "dropout": 3, "split": 4}


def check_seed(seed: object) -> int:
    """Return ``seed`` as an int, or raise a SettingError: a seed is an integer >= 0."""
    return int(check("seed", seed, integer(0)))


def derive(seed: int, purpose: str, *counters: int) -> np.random.Generator:
    """A Generator that depends on ``(seed, purpose, *counters)`` alone.

    Philox is counter-based, so streams for different keys are independent.
    """
    key = (PURPOSES[purpose], *(int(c) for c in counters))
    return np.random.Generator(np.random.Philox(np.random.SeedSequence(seed, spawn_key=key)))
