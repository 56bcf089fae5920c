"""Where the kernels put their arrays: fresh ones for the pure functions, reused ones for
``fit``'s step engine.

The kernels (``network.objective``, the optimizers' ``update_into``) never allocate an
array themselves; they ask a workspace for it. Two kinds of array are asked for:

- *scratch*: activations, pre-activations, dropout masks, back-propagated gradients, the
  gathered batch: arrays that never leave the kernel's caller. ``fit`` keeps one per name
  and shape and writes over it every step.
- *exposed*: arrays that end up in a record (gradients, new parameters, new optimizer
  state), which a callback, a checkpoint being written in the background, early stopping
  or the caller may go on holding. ``fit`` recycles one only when nothing but its own pool
  refers to it (its reference count says so; a view of it, a record, a list or a pending
  checkpoint all hold a reference), so no array a record can reach is ever written again.

``FRESH`` is the pure functions' workspace: every request is a new array.
"""

from __future__ import annotations

import sys
from typing import Hashable

import numpy as np

Array = np.ndarray

# Arrays of one shape the pool keeps track of; beyond it, arrays held elsewhere are
# forgotten (their holders keep them alive) so that a callback keeping every state does not
# make each request scan a long list.
_POOL_LIMIT = 8


class Workspace:
    """The arrays a kernel writes into.

    Attributes:
        reuses: False for ``FRESH`` (every request a new array); True for an engine's own.
        in_place: whether an activation that its derivative can read back from its output
            (``activations.IN_PLACE``) may overwrite its pre-activation.
    """

    reuses = False
    in_place = False

    def scratch(self, name: Hashable, shape: tuple[int, ...], dtype: np.dtype) -> Array:
        """A writeable array for a value that never leaves the caller."""
        return np.empty(shape, dtype)

    def exposed(self, shape: tuple[int, ...], dtype: np.dtype) -> Array:
        """A writeable array for a value that goes into a record; nothing else holds it."""
        return np.empty(shape, dtype)


FRESH = Workspace()


def _alone_count() -> int:
    # The reference count `Pool.exposed` sees for an array only its pool list refers to
    # (list slot, loop variable, getrefcount's argument), measured the same way.
    arrays = [np.empty(0)]
    for i in range(len(arrays)):
        array = arrays[i]
        return sys.getrefcount(array)
    raise AssertionError("unreachable")


_ALONE = _alone_count()
# Reference counts mean "who holds it" on CPython only; elsewhere nothing is recycled.
_RECYCLES = sys.implementation.name == "cpython"


class Pool(Workspace):
    """An engine's workspace: scratch arrays kept per name and shape; exposed arrays
    recycled once no one else refers to them."""

    reuses = True
    in_place = True

    def __init__(self) -> None:
        self._scratch: dict[tuple, Array] = {}
        self._exposed: dict[tuple, list[Array]] = {}
        self.made = 0    # exposed arrays allocated so far (the rest were recycled)

    def scratch(self, name: Hashable, shape: tuple[int, ...], dtype: np.dtype) -> Array:
        key = (name, shape, dtype)
        array = self._scratch.get(key)
        if array is None:
            array = self._scratch[key] = np.empty(shape, dtype)
        return array

    def exposed(self, shape: tuple[int, ...], dtype: np.dtype) -> Array:
        if not _RECYCLES:
            return np.empty(shape, dtype)
        arrays = self._exposed.setdefault((shape, dtype), [])
        for i in range(len(arrays)):
            array = arrays[i]
            if sys.getrefcount(array) == _ALONE:   # no record, view or list holds it
                array.setflags(write=True)          # it owns its memory: always allowed
                # Least recently handed out first: that one is the likeliest to be free
                # next time (double buffering finds it at the first look).
                arrays.append(arrays.pop(i))
                return array
        if len(arrays) >= _POOL_LIMIT:
            arrays.clear()    # all held elsewhere: their holders keep them alive
        array = np.empty(shape, dtype)
        arrays.append(array)
        self.made += 1
        return array
