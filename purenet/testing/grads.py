"""Gradient checks against central differences, in float64: of purenet's own
``loss_and_grads``, and of any objective a user writes (``check_objective``)."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from purenet.core.network import loss_and_grads
from purenet.core.records import Batch, Params, tree_leaves, tree_map, tree_unflatten

Array = np.ndarray


def _leaf_names(params: Params) -> list[str]:
    return [f"layers[{i}].{name}" for i in range(len(params.layers)) for name in ("W", "b")]


def check_grads(params: Params, batch: Batch, loss: str | None = None, eps: float = 1e-6,
                **kwargs: Any) -> dict[str, float]:
    """Compare ``loss_and_grads`` with central differences, in float64 (``check_objective``
    of purenet's own objective). A registered activation or loss is checked the same way,
    by naming it in the architecture or as ``loss``.

    Args:
        params: the parameters to check at.
        batch: the inputs and targets.
        loss: a loss name, or None for the output activation's default.
        eps: the step of the central difference.
        **kwargs: passed on to ``loss_and_grads`` (``l2``, ``dropout_key``).

    Returns:
        ``{"layers[0].W": error, "layers[0].b": error, ...}``.
    """
    return check_objective(lambda p: loss_and_grads(p, batch, loss, **kwargs), params, eps)


def check_objective(objective: Callable[[Params], tuple[float, Any]], params: Params,
                    eps: float = 1e-6) -> dict[str, float]:
    """Compare the gradients a user's ``objective(params) -> (loss, grads)`` returns with
    central differences of its loss, in float64.

    Every parameter is nudged by ``+-eps`` in turn, so keep the network small. Float32
    parameters are upcast to float64 copies first: in float32 the differences would be
    rounding noise. ``grads`` is any tree with the parameters' leaves in their order (a
    ``Grads`` record, a ``Params``).

    The error of an array is ``max|analytic - numeric| / max(|analytic|, |numeric|)`` over
    its entries: relative to the array's largest gradient, since an entry near zero cannot
    be resolved relatively by a difference quotient (its absolute error is about
    ``1e-16 * loss / eps``).

    Returns:
        ``{"layers[0].W": error, "layers[0].b": error, ...}``.
    """
    params = tree_map(lambda a: a.astype(np.float64), params)
    _, grads = objective(params)
    leaves = tree_leaves(params)
    errors = {}
    for k, (name, analytic) in enumerate(zip(_leaf_names(params), tree_leaves(grads))):
        numeric = np.empty(analytic.shape)
        for j in range(analytic.size):
            numeric.flat[j] = (_nudged(objective, params, leaves, k, j, eps)
                               - _nudged(objective, params, leaves, k, j, -eps)) / (2 * eps)
        scale = max(np.abs(analytic).max(), np.abs(numeric).max())
        errors[name] = float(np.abs(analytic - numeric).max() / scale) if scale else 0.0
    return errors


def _nudged(objective: Callable[[Params], tuple[float, Any]], params: Params,
            leaves: list[Array], k: int, j: int, step: float) -> float:
    nudged = leaves[k].copy()
    nudged.flat[j] += step
    return float(objective(tree_unflatten(params, [*leaves[:k], nudged, *leaves[k + 1:]]))[0])
