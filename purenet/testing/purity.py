"""Checking that a function behaves as a pure one: its inputs unchanged bit for bit, no
use of numpy's global RNG, the same result for the same arguments."""

from __future__ import annotations

import copy
from typing import Any, Callable

import numpy as np

from purenet.testing.trees import differences



def assert_pure(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``fn(*args, **kwargs)`` twice and check that it behaved as a pure function.

    Checks that the arguments (arrays inside records included) are unchanged after each
    call, that numpy's global RNG was not used, and that the two results are bit-identical.

    Returns:
        The result of the first call.

    Raises:
        AssertionError: saying which argument changed, or where the results differ.
    """
    before = copy.deepcopy((args, kwargs))
    results = []
    for call in ("first", "second"):
        rng_state = np.random.get_state()
        results.append(fn(*args, **kwargs))
        changed = [*differences(before[0], args, "args"),
                   *differences(before[1], kwargs, "kwargs")]
        if changed:
            raise AssertionError(f"{_name(fn)} changed its arguments on the {call} call:\n  "
                                 + "\n  ".join(changed))
        if list(differences(rng_state, np.random.get_state())):
            raise AssertionError(f"{_name(fn)} used numpy's global RNG on the {call} call")
    unequal = list(differences(results[0], results[1], "result"))
    if unequal:
        raise AssertionError(f"{_name(fn)} gave different results for the same arguments:\n  "
                             + "\n  ".join(unequal))
    return results[0]


def _name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", repr(fn))
