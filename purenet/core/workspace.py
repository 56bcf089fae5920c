"""Where the kernels put their arrays: fresh ones for the pure functions, reused ones for
``fit``'s step engine.

The kernels (``network.objective``, the optimizers' ``update_into``) never allocate an
array themselves; they ask a workspace for it. Two kinds of array are asked for:

- *scratch*: activations, pre-activations, dropout masks, back-propagated gradients, the
  gathered batch: arrays that never leave the kernel's caller. ``fit`` keeps one per name
  and shape and writes over it every step.
- *trees*: the arrays of a new record (gradients, new parameters, a new moment estimate),
  which a callback, a checkpoint being written in the background, early stopping or the
  caller may go on holding. ``tree(like)`` gives a ``NewTree``: arrays to write, one per
  leaf, then the frozen record over them.

``FRESH`` is the pure functions' workspace: every request is a new array, every record a
new one. An engine's ``Pool`` keeps each tree's leaves as views of one flat array, and its
record built once over read-only views of them; it hands a tree out again only when
nothing but the pool refers to the record, its layers, its arrays or the flat array (their
reference counts say so: a view, a record, a list, a pending checkpoint all hold one), so
no array a record can reach is ever written again. Trees made by the pool are also one
array each to the optimizers (``Trees``): an update is a few calls over whole flat arrays
instead of a few calls per leaf, with the same numbers, since each is elementwise.
"""

from __future__ import annotations

import math
import sys
from typing import Any, Hashable

import numpy as np

from purenet.core.records import Grads, Params, freeze, tree_leaves, tree_of

Array = np.ndarray
Tree = Params | Grads

# Trees of one kind the pool keeps track of; beyond it, trees held elsewhere are forgotten
# (their holders keep them alive) so that a callback keeping every state does not make
# each request scan a long list.
_POOL_LIMIT = 8
# Reference counts mean "who holds it" on CPython only; elsewhere nothing is recycled.
_RECYCLES = sys.implementation.name == "cpython"


class NewTree:
    """The arrays of one new record before the record exists.

    Attributes:
        leaves: writeable arrays, one per leaf of the record in ``tree_leaves`` order.
        flat: all of ``leaves`` as one writeable 1-D array, or None where they are
            separate arrays (``FRESH``).
    """

    flat: Array | None = None

    def __init__(self, like: Tree, kind: type) -> None:
        self.leaves = [np.empty_like(a) for a in tree_leaves(like)]
        self.kind = kind
        self.architecture = like.architecture if kind is Params else None

    def record(self) -> Tree:
        """The frozen record over ``leaves``; call it once they are written."""
        return tree_of(self.kind, [freeze(a) for a in self.leaves], self.architecture)


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

    def tree(self, like: Tree, kind: type = Grads) -> NewTree:
        """Arrays for a new record of ``kind`` (Grads, or Params of ``like``'s
        architecture) shaped like ``like``; nothing else holds them."""
        return NewTree(like, kind)

    def flat_of(self, tree: Tree) -> Array | None:
        """All arrays of ``tree`` as one 1-D array, when this workspace made it so."""
        return None


FRESH = Workspace()


def _reference_counts(objects: tuple) -> list[int]:
    return [sys.getrefcount(o) for o in objects]


class _PooledTree(NewTree):
    """A tree of the pool: views of one flat array, and the record over them, kept."""

    def __init__(self, key: tuple, registry: dict) -> None:
        self.key = key
        self.kind, shapes, dtype = key
        self.architecture = None
        self._registry = registry   # the pool's id(record) -> tree
        sizes = [math.prod(shape) for shape in shapes]
        owner = np.empty(sum(sizes), dtype)
        self.flat = owner[:]   # private and writeable: kernels write through it
        self.leaves, self.readonly = [], []
        start = 0
        for shape, size in zip(shapes, sizes):
            for views in (self.leaves, self.readonly):
                views.append(owner[start:start + size].reshape(shape))
            start += size
        # Views made before this stay writeable; the record's own views, and the array
        # under them (a view's ``base``), can never be made so.
        owner.setflags(write=False)
        for view in self.readonly:
            view.setflags(write=False)
        self._owner = owner
        self.built: Tree | None = None   # the record over these arrays, once asked for
        self._watched: tuple = ()        # what a holder of the record would hold
        self._at_rest: list[int] = []    # their reference counts when nobody does
        self.busy = False                # handed out, record not yet asked for

    def record(self) -> Tree:
        self.busy = False
        built = self.built
        if built is not None and (self.kind is Grads or built.architecture is self.architecture):
            return built
        self._registry.pop(id(built), None)
        self.built = tree_of(self.kind, self.readonly, self.architecture)
        self._registry[id(self.built)] = self
        layers = self.built.layers
        self._watched = (self._owner, *self.readonly, *layers, layers, self.built)
        del layers, built    # counted as they stand when the record is not handed out
        self._at_rest = _reference_counts(self._watched)
        return self.built

    def free(self) -> bool:
        return not self.busy and _reference_counts(self._watched) == self._at_rest


class Pool(Workspace):
    """An engine's workspace: scratch arrays kept per name and shape; trees recycled once
    no one else refers to them."""

    reuses = True
    in_place = True

    def __init__(self) -> None:
        self._scratch: dict[tuple, Array] = {}
        self._trees: dict[tuple, list[_PooledTree]] = {}
        self._by_record: dict[int, _PooledTree] = {}   # id(record) -> the tree it is over
        self.made = 0    # trees allocated so far (the rest were recycled)

    def scratch(self, name: Hashable, shape: tuple[int, ...], dtype: np.dtype) -> Array:
        key = (name, shape, dtype)
        array = self._scratch.get(key)
        if array is None:
            array = self._scratch[key] = np.empty(shape, dtype)
        return array

    def _pooled(self, tree: Tree) -> _PooledTree | None:
        pooled = self._by_record.get(id(tree))
        return pooled if pooled is not None and pooled.built is tree else None

    def tree(self, like: Tree, kind: type = Grads) -> NewTree:
        if not _RECYCLES:
            return NewTree(like, kind)
        pooled = self._pooled(like)
        shapes = pooled.key[1] if pooled is not None else tuple(
            a.shape for a in tree_leaves(like))
        key = (kind, shapes, like.layers[0].W.dtype)
        trees = self._trees.setdefault(key, [])
        tree = next((t for t in trees if t.free()), None)
        if tree is None:
            if len(trees) >= _POOL_LIMIT:   # all held elsewhere: their holders keep them
                for old in trees:
                    self._by_record.pop(id(old.built), None)
                    old._registry = {}   # one still being written must not come back
                trees.clear()
            tree = _PooledTree(key, self._by_record)
            self.made += 1
        else:
            trees.remove(tree)
        # Least recently handed out first: that one is the likeliest to be free next time
        # (double buffering finds it at the first look).
        trees.append(tree)
        tree.busy = True
        tree.architecture = like.architecture if kind is Params else None
        return tree

    def flat_of(self, tree: Tree) -> Array | None:
        pooled = self._pooled(tree)
        return None if pooled is None else pooled.flat


class Trees:
    """One optimizer update's view of a workspace: whole flat arrays when every tree it
    reads is flat, else the leaves one by one. ``leaves`` and ``new`` give lists that zip
    together either way."""

    def __init__(self, workspace: Workspace, *trees: Tree) -> None:
        """``trees``: every tree the update will read."""
        self.workspace = workspace
        # Looked up once: the pool may forget a tree while the update asks for new ones.
        self._flats = {id(tree): workspace.flat_of(tree) for tree in trees}
        self.flat = bool(trees) and all(f is not None for f in self._flats.values())

    def leaves(self, tree: Tree) -> list[Array]:
        """The arrays of ``tree`` (one of the trees given) to read."""
        return [self._flats[id(tree)]] if self.flat else tree_leaves(tree)

    def new(self, like: Tree, kind: type = Grads) -> tuple[NewTree, list[Array]]:
        """A new tree shaped like ``like`` and the arrays to write it through."""
        tree = self.workspace.tree(like, kind)
        return tree, [tree.flat] if self.flat else tree.leaves

    def scratch(self, name: Hashable, shape: tuple[int, ...], dtype: np.dtype) -> Array:
        return self.workspace.scratch(name, shape, dtype)


def state_trees(state: Any) -> list[Tree]:
    """The trees an optimizer state record holds (its moment estimates)."""
    fields = getattr(type(state), "__attrs_attrs__", ())
    return [value for value in (getattr(state, f.name) for f in fields)
            if isinstance(value, Grads)]
