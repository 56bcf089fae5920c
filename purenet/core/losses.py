"""Loss functions as a table: value and gradient, fused with the output activation where
that is exact.

Conventions: ``A`` (n_samples, n_outputs) is the network's output, ``Z`` the output
layer's pre-activation, ``y`` the targets in the form ``validate.check_targets`` gives
(for categorical cross-entropy either integer class ids of shape (n_samples,) or class
probabilities of shape (n_samples, n_classes); for every other loss, the shape of ``A``).
All losses are means: over samples for categorical cross-entropy, over samples and
outputs for the others, as PyTorch's and Keras's defaults are.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

from purenet.core.registry import lookup

Array = np.ndarray


class Loss(NamedTuple):
    value: Callable[[Array, Array], float]        # (A, y) -> mean loss
    gradient: Callable[[Array, Array], Array]     # (A, y) -> dL/dA


class FusedLoss(NamedTuple):
    value: Callable[[Array, Array], float]          # (Z, y) -> mean loss, from logits
    gradient: Callable[[Array, Array, Array], Array]  # (Z, A, y) -> dL/dZ; A = output(Z)


def _clip_probability(A: Array) -> Array:
    eps = np.finfo(A.dtype).eps
    return np.clip(A, eps, 1 - eps)


# --- binary cross-entropy -------------------------------------------------------------


def bce_value(A: Array, y: Array) -> float:
    P = _clip_probability(A)
    return float(-np.mean(y * np.log(P) + (1 - y) * np.log1p(-P)))


def bce_gradient(A: Array, y: Array) -> Array:
    P = _clip_probability(A)
    return (P - y) / (P * (1 - P)) / A.size


def bce_logits_value(Z: Array, y: Array) -> float:
    # -[y log s(Z) + (1-y) log(1-s(Z))] = max(Z,0) - Z*y + log1p(exp(-|Z|)): no log(0).
    return float(np.mean(np.maximum(Z, 0) - Z * y + np.log1p(np.exp(-np.abs(Z)))))


def bce_logits_gradient(Z: Array, A: Array, y: Array) -> Array:
    # With a sigmoid output, d(loss)/dZ collapses exactly to (y_hat - y) / size.
    return (A - y) / Z.size


# --- categorical cross-entropy --------------------------------------------------------


def _log_softmax(Z: Array) -> Array:
    shifted = Z - Z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _picked(log_P: Array, y: Array) -> Array:
    """Per-sample log-probability of the target: class ids pick, probabilities weigh."""
    if y.ndim == 1:
        return log_P[np.arange(len(y)), y]
    return (y * log_P).sum(axis=1)


def _minus_target(P: Array, y: Array) -> Array:
    """``P - onehot(y)`` for class ids, ``P - y`` for probabilities; a new array."""
    if y.ndim == 1:
        D = P.copy()
        D[np.arange(len(y)), y] -= 1
        return D
    return P - y


def cce_value(A: Array, y: Array) -> float:
    return float(-np.mean(_picked(np.log(_clip_probability(A)), y)))


def cce_gradient(A: Array, y: Array) -> Array:
    P = _clip_probability(A)
    if y.ndim == 1:
        D = np.zeros_like(A)
        D[np.arange(len(y)), y] = -1 / P[np.arange(len(y)), y]
        return D / len(y)
    return -y / P / len(y)


def cce_logits_value(Z: Array, y: Array) -> float:
    return float(-np.mean(_picked(_log_softmax(Z), y)))


def cce_logits_gradient(Z: Array, A: Array, y: Array) -> Array:
    # With a softmax output, d(loss)/dZ collapses exactly to (y_hat - y) / n_samples,
    # provided each target row sums to one (validate.check_targets ensures it).
    D = _minus_target(A, y)
    D /= len(Z)
    return D


# --- regression -----------------------------------------------------------------------


def mse_value(A: Array, y: Array) -> float:
    return float(np.mean(np.square(A - y)))


def mse_gradient(A: Array, y: Array) -> Array:
    return (A - y) * A.dtype.type(2 / A.size)


def mae_value(A: Array, y: Array) -> float:
    return float(np.mean(np.abs(A - y)))


def mae_gradient(A: Array, y: Array) -> Array:
    # The subgradient at A == y is 0, as PyTorch takes it.
    return np.sign(A - y) / A.dtype.type(A.size)


HUBER_DELTA = 1.0


def huber_value(A: Array, y: Array) -> float:
    d = np.abs(A - y)
    return float(np.mean(np.where(d <= HUBER_DELTA, d * d / 2, HUBER_DELTA * (d - HUBER_DELTA / 2))))


def huber_gradient(A: Array, y: Array) -> Array:
    return np.clip(A - y, -HUBER_DELTA, HUBER_DELTA) / A.dtype.type(A.size)


LOSSES: dict[str, Loss] = {
    "binary_crossentropy": Loss(bce_value, bce_gradient),
    "categorical_crossentropy": Loss(cce_value, cce_gradient),
    "mean_squared_error": Loss(mse_value, mse_gradient),
    "mean_absolute_error": Loss(mae_value, mae_gradient),
    "huber": Loss(huber_value, huber_gradient),
}

# (loss, output activation) pairs computed from the pre-activation: exact, and free of
# log(0) and of the 0/0 that the chain rule through a saturated output would produce.
FUSED: dict[tuple[str, str], FusedLoss] = {
    ("binary_crossentropy", "sigmoid"): FusedLoss(bce_logits_value, bce_logits_gradient),
    ("categorical_crossentropy", "softmax"): FusedLoss(cce_logits_value, cce_logits_gradient),
}

# The loss used when none is given, from the output activation.
DEFAULT_LOSS: dict[str, str] = {
    "sigmoid": "binary_crossentropy",
    "softmax": "categorical_crossentropy",
    "identity": "mean_squared_error",
    "linear": "mean_squared_error",
}

CLASSIFICATION_LOSSES = ("binary_crossentropy", "categorical_crossentropy")


def get_loss(name: str) -> Loss:
    """The table entry for ``name``; a ValueError listing the valid names otherwise."""
    return lookup(LOSSES, name, "loss")


def resolve_loss(loss: str | None, output_activation: str) -> str:
    """The loss name to use: ``loss`` itself (checked), or the default for the output."""
    if loss is None:
        if output_activation not in DEFAULT_LOSS:
            raise ValueError(
                f"no default loss for a {output_activation!r} output; pass loss= one of "
                f"{sorted(LOSSES)}"
            )
        return DEFAULT_LOSS[output_activation]
    get_loss(loss)
    return loss
