"""Optimizers as pure ``(init, update)`` pairs over immutable state, Optax-shaped.

``opt.init(params) -> state`` and ``opt.update(grads, state, params) -> (updates, state)``;
``apply_updates(params, updates)`` adds them. SGD, momentum, Adam and AdamW are built on one
kernel each, ``update_into`` (``purenet.optim.kernel``): ``update`` hands it fresh arrays,
``fit``'s step engine its own, with the same numbers bit for bit. Update rules are
PyTorch's ``torch.optim`` rules (no dampening, no AMSGrad), so a purenet run and a PyTorch run of the same network
follow the same path up to rounding. ``learning_rate`` is a float or a schedule of the
0-based update count (``purenet.optim.schedules``).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from purenet.core.checks import boolean, check, number
from purenet.core.records import Grads, Params, tree_leaves, tree_map, zeros_like
from purenet.core.registry import Registry
from purenet.core.workspace import Trees
from purenet.optim.base import Optimizer, UpdateInto, pure_update
from purenet.optim.schedules import ScalarOrSchedule, as_schedule
from purenet.optim.states import (AdagradState, AdamState, ChainState, EmptyState, MomentumState,
                                  RmspropState, SgdState)

Array = np.ndarray


def _check_rate(name: str, value: float, low: float = 0, high: float | None = None) -> float:
    # numpy scalars are numbers too (np.float32(0.9) is a fine b1); a str or bool is not.
    return float(check(name, value, number(low, high)))


def apply_updates(params: Params, updates: Grads) -> Params:
    """``params + updates``, leaf by leaf, as a new Params."""
    return tree_map(lambda p, u: p + u, params, updates)



# --- algorithms -----------------------------------------------------------------------


def _optimizer(name: str, hyperparams: dict[str, Any], init: Callable,
               update_into: UpdateInto) -> Optimizer:
    return Optimizer(name, hyperparams, init, pure_update(update_into), update_into)


def sgd(learning_rate: ScalarOrSchedule) -> Optimizer:
    """Plain gradient descent: ``p <- p - lr * g``."""
    lr = as_schedule(learning_rate)

    def update_into(grads: Grads, state: SgdState, params: Params | None, out: list,
                    trees: Trees) -> SgdState:
        rate = -lr(state.count)
        for g, u in zip(trees.leaves(grads), out):
            np.multiply(g, rate, out=u)
        return SgdState(state.count + 1)

    return _optimizer("sgd", {"learning_rate": lr}, lambda params: SgdState(0), update_into)


def momentum(learning_rate: ScalarOrSchedule, momentum: float = 0.9,
             nesterov: bool = False) -> Optimizer:
    """Heavy-ball momentum (PyTorch SGD, dampening 0): ``buf <- momentum * buf + g``;
    ``p <- p - lr * buf``, or ``p <- p - lr * (g + momentum * buf)`` with ``nesterov``."""
    lr = as_schedule(learning_rate)
    beta = _check_rate("momentum", momentum, 0.0, 1.0)
    nesterov = bool(check("nesterov", nesterov, _boolean))

    def update_into(grads: Grads, state: MomentumState, params: Params | None, out: list,
                    trees: Trees) -> MomentumState:
        rate = -lr(state.count)
        trace, traces = trees.new(state.trace)
        for g, t, u, new in zip(trees.leaves(grads), trees.leaves(state.trace), out, traces):
            np.multiply(t, beta, out=new)
            new += g                                 # t * beta + g
            if nesterov:
                np.multiply(new, beta, out=u)
                np.add(g, u, out=u)                  # g + t * beta
                u *= rate
            else:
                np.multiply(new, rate, out=u)
        return MomentumState(state.count + 1, trace.record())

    return _optimizer("momentum",
                      {"learning_rate": lr, "momentum": beta, "nesterov": nesterov},
                      lambda params: MomentumState(0, zeros_like(params)), update_into)


def _adam_update(lr: Callable[[int], float], b1: float, b2: float, eps: float,
                 weight_decay: float) -> UpdateInto:
    # Each line is one operation of m + (g - m) * (1 - b1); v * b2 + g * g * (1 - b2);
    # (mu / (sqrt(nu) / correction + eps)) * -step_size; u - p * (rate * weight_decay),
    # in that order, so a run gives the same bits as the expressions would.
    def update_into(grads: Grads, state: AdamState, params: Params | None, out: list,
                    trees: Trees) -> AdamState:
        if weight_decay and params is None:
            raise ValueError("adamw needs params in update(grads, state, params)")
        t = state.count + 1
        rate = lr(state.count)
        step_size = -(rate / (1 - b1 ** t))
        correction = math.sqrt(1 - b2 ** t)
        decay = rate * weight_decay
        p_leaves = trees.leaves(params) if weight_decay else out
        mu_tree, mus = trees.new(state.mu)
        nu_tree, nus = trees.new(state.nu)
        for i, (g, m, v, u, p, mu, nu) in enumerate(zip(
                trees.leaves(grads), trees.leaves(state.mu), trees.leaves(state.nu), out,
                p_leaves, mus, nus)):
            np.subtract(g, m, out=mu)
            mu *= 1 - b1
            np.add(m, mu, out=mu)
            np.multiply(g, g, out=nu)
            nu *= 1 - b2
            np.multiply(v, b2, out=u)
            np.add(u, nu, out=nu)
            np.sqrt(nu, out=u)
            u /= correction
            u += eps
            np.divide(mu, u, out=u)
            u *= step_size
            if weight_decay:
                # Decoupled decay (Loshchilov & Hutter): shrink p by lr * wd, apart from Adam.
                u -= np.multiply(p, decay, out=trees.scratch(("decay", i), p.shape, p.dtype))
        return AdamState(t, mu_tree.record(), nu_tree.record())

    return update_into


def adam(learning_rate: ScalarOrSchedule = 1e-3, b1: float = 0.9, b2: float = 0.999,
         eps: float = 1e-8) -> Optimizer:
    """Adam (Kingma & Ba, 2015), PyTorch's form: bias-corrected moments, ``eps`` added
    to the corrected ``sqrt(nu)``."""
    lr = as_schedule(learning_rate)
    b1, b2 = _check_rate("b1", b1, 0.0, 1.0), _check_rate("b2", b2, 0.0, 1.0)
    eps = _check_rate("eps", eps)
    return _optimizer("adam", {"learning_rate": lr, "b1": b1, "b2": b2, "eps": eps},
                      _adam_init, _adam_update(lr, b1, b2, eps, 0.0))


def adamw(learning_rate: ScalarOrSchedule = 1e-3, b1: float = 0.9, b2: float = 0.999,
          eps: float = 1e-8, weight_decay: float = 0.01) -> Optimizer:
    """AdamW: Adam plus decoupled weight decay ``p <- p - lr * weight_decay * p``."""
    lr = as_schedule(learning_rate)
    b1, b2 = _check_rate("b1", b1, 0.0, 1.0), _check_rate("b2", b2, 0.0, 1.0)
    eps, wd = _check_rate("eps", eps), _check_rate("weight_decay", weight_decay)
    return _optimizer("adamw", {"learning_rate": lr, "b1": b1, "b2": b2, "eps": eps,
                                "weight_decay": wd},
                      _adam_init, _adam_update(lr, b1, b2, eps, wd))


def _adam_init(params: Params) -> AdamState:
    return AdamState(0, zeros_like(params), zeros_like(params))


def rmsprop(learning_rate: ScalarOrSchedule = 1e-2, decay: float = 0.9,
            eps: float = 1e-8) -> Optimizer:
    """RMSprop (PyTorch's, ``decay`` is its ``alpha``):
    ``s <- decay * s + (1 - decay) * g^2``; ``p <- p - lr * g / (sqrt(s) + eps)``."""
    lr = as_schedule(learning_rate)
    decay, eps = _check_rate("decay", decay, 0.0, 1.0), _check_rate("eps", eps)

    def update(grads: Grads, state: RmspropState, params: Params | None = None):
        rate = lr(state.count)
        square_avg = tree_map(lambda s, g: s * decay + g * g * (1 - decay), state.square_avg, grads)
        updates = tree_map(lambda g, s: (g / (np.sqrt(s) + eps)) * -rate, grads, square_avg)
        return updates, RmspropState(state.count + 1, square_avg)

    return Optimizer("rmsprop", {"learning_rate": lr, "decay": decay, "eps": eps},
                     lambda params: RmspropState(0, zeros_like(params)), update)


def adagrad(learning_rate: ScalarOrSchedule = 1e-2, eps: float = 1e-10) -> Optimizer:
    """Adagrad (PyTorch's, no lr decay): ``s <- s + g^2``; ``p <- p - lr * g / (sqrt(s) + eps)``."""
    lr = as_schedule(learning_rate)
    eps = _check_rate("eps", eps)

    def update(grads: Grads, state: AdagradState, params: Params | None = None):
        rate = lr(state.count)
        sums = tree_map(lambda s, g: s + g * g, state.sum_of_squares, grads)
        updates = tree_map(lambda g, s: (g / (np.sqrt(s) + eps)) * -rate, grads, sums)
        return updates, AdagradState(state.count + 1, sums)

    return Optimizer("adagrad", {"learning_rate": lr, "eps": eps},
                     lambda params: AdagradState(0, zeros_like(params)), update)


# --- composable transforms ------------------------------------------------------------


def global_norm(tree: Grads) -> float:
    """The L2 norm of all arrays of ``tree`` taken together."""
    return math.sqrt(sum(float(np.vdot(a, a)) for a in tree_leaves(tree)))


def clip_by_global_norm(max_norm: float) -> Optimizer:
    """Scale all gradients by ``max_norm / norm`` when their global norm exceeds it
    (``torch.nn.utils.clip_grad_norm_``, without its 1e-6 in the denominator)."""
    max_norm = _check_rate("max_norm", max_norm)

    def update(grads: Grads, state: EmptyState, params: Params | None = None):
        norm = global_norm(grads)
        if norm <= max_norm:
            return grads, state
        return tree_map(lambda g: g * (max_norm / norm), grads), state

    return Optimizer("clip_by_global_norm", {"max_norm": max_norm},
                     lambda params: EmptyState(), update)


def clip_by_value(max_value: float) -> Optimizer:
    """Clip every gradient entry into ``[-max_value, max_value]``."""
    max_value = _check_rate("max_value", max_value)

    def update(grads: Grads, state: EmptyState, params: Params | None = None):
        return tree_map(lambda g: np.clip(g, -max_value, max_value), grads), state

    return Optimizer("clip_by_value", {"max_value": max_value},
                     lambda params: EmptyState(), update)


def chain(*transforms: Optimizer) -> Optimizer:
    """Apply ``transforms`` in order, each to the previous one's output, e.g.
    ``chain(clip_by_global_norm(1.0), adam(1e-3))``."""
    for t in transforms:
        if not isinstance(t, Optimizer):
            raise TypeError(f"chain takes optimizers and transforms, got {type(t).__name__}")

    def init(params: Params) -> ChainState:
        return ChainState(tuple(t.init(params) for t in transforms))

    def update(grads: Grads, state: ChainState, params: Params | None = None):
        states = []
        for t, inner in zip(transforms, state.states):
            grads, inner = t.update(grads, inner, params)
            states.append(inner)
        return grads, ChainState(tuple(states))

    return Optimizer("chain", {"transforms": list(transforms)}, init, update)


OPTIMIZERS: dict[str, Callable[..., Optimizer]] = {
    "sgd": sgd, "momentum": momentum, "adam": adam, "adamw": adamw,
    "rmsprop": rmsprop, "adagrad": adagrad,
}
TRANSFORMS: Registry[Callable[..., Optimizer]] = Registry("transform", "optim.register_transform", {
    "clip_by_global_norm": clip_by_global_norm, "clip_by_value": clip_by_value,
})


def _boolean(instance: Any, attribute: Any, value: Any) -> None:
    # numpy's bool is a fine flag too.
    if not isinstance(value, np.bool_):
        boolean(instance, attribute, value)
