"""A user's own pieces, as a module: what tests register in-process and what children and
the command line import with ``purenet --import tests/_pieces.py``."""

from __future__ import annotations

import attrs
import numpy as np

import purenet as pn
from purenet.core.records import Grads, tree_map, zeros_like


def swish(Z):
    return Z / (1 + np.exp(-Z))


def swish_derivative(Z, A):
    s = 1 / (1 + np.exp(-Z))
    return s + A * (1 - s)


def log_cosh(A, y):
    d = A - y
    # log(cosh(d)) = |d| + log1p(exp(-2|d|)) - log 2: finite for any d.
    return (np.abs(d) + np.log1p(np.exp(-2 * np.abs(d))) - np.log(2)).sum(axis=1)


def log_cosh_gradient(A, y):
    return np.tanh(A - y)


def small_normal(rng, fan_in, fan_out):
    return rng.standard_normal((fan_in, fan_out)) * 0.05, np.zeros(fan_out)


@attrs.frozen(eq=False)
class RunningNormState:
    count: int
    mean_norm: float
    peak: Grads


def clip_by_running_norm(ratio: float = 2.0, decay: float = 0.9):
    """Scale the gradients down to ``ratio`` times their running mean norm; keep the
    largest magnitude seen of each entry (state of every kind a record may hold)."""
    def init(params):
        return RunningNormState(0, 0.0, zeros_like(params))

    def update(grads, state, params=None):
        norm = pn.optim.global_norm(grads)
        mean = norm if state.count == 0 else decay * state.mean_norm + (1 - decay) * norm
        scale = min(1.0, ratio * mean / norm) if norm > 0 else 1.0
        clipped = tree_map(lambda g: g * g.dtype.type(scale), grads)
        peak = tree_map(lambda p, g: np.maximum(p, np.abs(g)), state.peak, grads)
        return clipped, RunningNormState(state.count + 1, float(mean), peak)

    return init, update


PIECES = [("activation", "swish"), ("loss", "log_cosh"), ("initializer", "small_normal"),
          ("transform", "clip_by_running_norm")]

pn.register_activation("swish", swish, swish_derivative)
pn.register_loss("log_cosh", log_cosh, log_cosh_gradient)
pn.register_initializer("small_normal", small_normal)
clip = pn.optim.register_transform("clip_by_running_norm", clip_by_running_norm)
