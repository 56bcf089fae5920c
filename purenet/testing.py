"""Helpers for testing code built on purenet: gradient checks, purity checks, and
bitwise comparison of records (which hold arrays, so ``==`` cannot compare them)."""

from __future__ import annotations

import copy
from typing import Any, Callable, Iterator

import attrs
import numpy as np

from purenet.core.network import loss_and_grads
from purenet.core.records import Batch, Params, tree_leaves, tree_map, tree_unflatten

Array = np.ndarray


# --- gradient checks --------------------------------------------------------------------


def _leaf_names(params: Params) -> list[str]:
    return [f"layers[{i}].{name}" for i in range(len(params.layers)) for name in ("W", "b")]


def check_grads(params: Params, batch: Batch, loss: str | None = None, eps: float = 1e-6,
                **kwargs: Any) -> dict[str, float]:
    """Compare ``loss_and_grads`` with central differences, in float64.

    Every parameter is nudged by ``+-eps`` in turn, so keep the network small. Float32
    parameters are upcast to float64 copies first: in float32 the differences would be
    rounding noise.

    The error of an array is ``max|analytic - numeric| / max(|analytic|, |numeric|)`` over
    its entries: relative to the array's largest gradient, since an entry near zero cannot
    be resolved relatively by a difference quotient (its absolute error is about
    ``1e-16 * loss / eps``).

    Args:
        params: the parameters to check at.
        batch: the inputs and targets.
        loss: a loss name, or None for the output activation's default.
        eps: the step of the central difference.
        **kwargs: passed on to ``loss_and_grads`` (``l2``, ``dropout_key``).

    Returns:
        ``{"layers[0].W": error, "layers[0].b": error, ...}``.
    """
    params = tree_map(lambda a: a.astype(np.float64), params)
    _, grads = loss_and_grads(params, batch, loss, **kwargs)
    leaves = tree_leaves(params)
    errors = {}
    for k, (name, analytic) in enumerate(zip(_leaf_names(params), tree_leaves(grads))):
        numeric = np.empty_like(analytic)
        for j in range(analytic.size):
            numeric.flat[j] = (_nudged_loss(params, leaves, k, j, eps, batch, loss, kwargs)
                               - _nudged_loss(params, leaves, k, j, -eps, batch, loss, kwargs)
                               ) / (2 * eps)
        scale = max(np.abs(analytic).max(), np.abs(numeric).max())
        errors[name] = float(np.abs(analytic - numeric).max() / scale) if scale else 0.0
    return errors


def _nudged_loss(params: Params, leaves: list[Array], k: int, j: int, step: float,
                 batch: Batch, loss: str | None, kwargs: dict[str, Any]) -> float:
    nudged = leaves[k].copy()
    nudged.flat[j] += step
    return loss_and_grads(tree_unflatten(params, [*leaves[:k], nudged, *leaves[k + 1:]]),
                          batch, loss, **kwargs)[0]


# --- comparisons ------------------------------------------------------------------------


def _join(path: str, part: str) -> str:
    return f"{path}.{part}" if path and not part.startswith("[") else path + part


def differences(a: Any, b: Any, path: str = "") -> Iterator[str]:
    """Describe every place where ``a`` and ``b`` are not bit-identical.

    Recurses through attrs records, tuples, lists and dicts; arrays must agree in dtype,
    shape and values (NaN equal to NaN); floats must be equal or both NaN.
    """
    where = path or "the value"
    if type(a) is not type(b):
        yield f"{where}: type {type(a).__name__} != {type(b).__name__}"
    elif isinstance(a, np.ndarray):
        yield from _array_differences(a, b, where)
    elif attrs.has(type(a)):
        for field in attrs.fields(type(a)):
            yield from differences(getattr(a, field.name), getattr(b, field.name),
                                   _join(path, field.name))
    elif isinstance(a, (tuple, list)):
        if len(a) != len(b):
            yield f"{where}: length {len(a)} != {len(b)}"
        else:
            for i, (x, y) in enumerate(zip(a, b)):
                yield from differences(x, y, _join(path, f"[{i}]"))
    elif isinstance(a, dict):
        if a.keys() != b.keys():
            yield f"{where}: keys {sorted(map(repr, a))} != {sorted(map(repr, b))}"
        else:
            for key in a:
                yield from differences(a[key], b[key], _join(path, f"[{key!r}]"))
    elif isinstance(a, (float, np.floating)):
        if not (a == b or (np.isnan(a) and np.isnan(b))):
            yield f"{where}: {a!r} != {b!r}"
    elif a != b:
        yield f"{where}: {a!r} != {b!r}"


def _array_differences(a: Array, b: Array, where: str) -> Iterator[str]:
    if a.dtype != b.dtype:
        yield f"{where}: dtype {a.dtype} != {b.dtype}"
    elif a.shape != b.shape:
        yield f"{where}: shape {a.shape} != {b.shape}"
    elif not np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"):
        differ = (a != b) & ~(np.isnan(a) & np.isnan(b)) if a.dtype.kind in "fc" else a != b
        first = tuple(int(i) for i in np.argwhere(differ)[0])
        yield (f"{where}: {int(differ.sum())} of {a.size} entries differ, the first at "
               f"{first}: {a[first]!r} != {b[first]!r}")


def assert_records_equal(a: Any, b: Any) -> None:
    """Assert that two records (or arrays, or containers of them) are bit-identical.

    Raises:
        AssertionError: naming the path of each differing field, e.g. ``layers[1].b``.
    """
    found = list(differences(a, b))
    if found:
        raise AssertionError("records differ:\n  " + "\n  ".join(found))


# --- purity -----------------------------------------------------------------------------


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
