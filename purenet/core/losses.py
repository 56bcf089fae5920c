"""Loss functions as a table: value and gradient, fused with the output activation where
that is exact.

Conventions: ``A`` (n_samples, n_outputs) is the network's output, ``Z`` the output
layer's pre-activation, ``y`` the targets in the form ``validate.check_targets`` gives
(for categorical cross-entropy either integer class ids of shape (n_samples,) or class
probabilities of shape (n_samples, n_classes); for every other loss, the shape of ``A``).
The original losses are means: over samples for categorical cross-entropy, over samples and
outputs for the others, as PyTorch's and Keras's defaults are. scikit-learn's MLP sums over
the outputs and averages over the samples: ``half_squared_error``, ``multilabel_log_loss``
and ``poisson`` (with an ``exp`` output) are its losses, so that its learning rates and
``alpha`` carry over.

Every value takes optional per-sample ``weights`` (n_samples,): the mean is then over
``weights[i] * loss[i]``. The training loop passes weights scaled to mean 1 over the whole
training set, which makes each batch's value an unbiased part of the weighted mean loss
``sum(w * loss) / sum(w)``; the gradients are the unweighted ones with row ``i`` scaled by
``weights[i]`` (see ``network.output_gradient``), since each sample's loss enters linearly.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

import numpy as np

from purenet.core.registry import Registry, lookup

Array = np.ndarray


Weights = Optional[Array]    # per-sample weights (n_samples,), or None for equal ones


class Loss(NamedTuple):
    value: Callable[[Array, Array, Weights], float]   # (A, y, weights) -> mean loss
    gradient: Callable[[Array, Array], Array]         # (A, y) -> dL/dA, unweighted


class FusedLoss(NamedTuple):
    value: Callable[[Array, Array, Weights], float]   # (Z, y, weights) -> mean, from logits
    gradient: Callable[[Array, Array, Array], Array]  # (Z, A, y) -> dL/dZ; A = output(Z)


def _mean(values: Array, weights: Weights) -> float:
    """The mean of ``values`` (one row, or one entry, per sample), each sample's part
    scaled by its weight when ``weights`` is given."""
    if weights is not None:
        values = values * (weights if values.ndim == 1 else weights[:, None])
    # np.mean's own two operations for a float array, without its Python wrapper.
    return float(np.add.reduce(values, axis=None) / values.size)


def _clip_probability(A: Array) -> Array:
    eps = np.finfo(A.dtype).eps
    return np.clip(A, eps, 1 - eps)


# --- binary cross-entropy -------------------------------------------------------------


def bce_value(A: Array, y: Array, weights: Weights = None) -> float:
    P = _clip_probability(A)
    return -_mean(y * np.log(P) + (1 - y) * np.log1p(-P), weights)


def bce_gradient(A: Array, y: Array) -> Array:
    P = _clip_probability(A)
    return (P - y) / (P * (1 - P)) / A.size


def bce_logits_value(Z: Array, y: Array, weights: Weights = None) -> float:
    # -[y log s(Z) + (1-y) log(1-s(Z))] = max(Z,0) - Z*y + log1p(exp(-|Z|)): no log(0).
    return _mean(np.maximum(Z, 0) - Z * y + np.log1p(np.exp(-np.abs(Z))), weights)


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


def cce_value(A: Array, y: Array, weights: Weights = None) -> float:
    return -_mean(_picked(np.log(_clip_probability(A)), y), weights)


def cce_gradient(A: Array, y: Array) -> Array:
    P = _clip_probability(A)
    if y.ndim == 1:
        D = np.zeros_like(A)
        D[np.arange(len(y)), y] = -1 / P[np.arange(len(y)), y]
        return D / len(y)
    return -y / P / len(y)


def cce_logits_value(Z: Array, y: Array, weights: Weights = None) -> float:
    return -_mean(_picked(_log_softmax(Z), y), weights)


def cce_logits_gradient(Z: Array, A: Array, y: Array) -> Array:
    # With a softmax output, d(loss)/dZ collapses exactly to (y_hat - y) / n_samples,
    # provided each target row sums to one (validate.check_targets ensures it).
    D = _minus_target(A, y)
    D /= len(Z)
    return D


# --- regression -----------------------------------------------------------------------


def mse_value(A: Array, y: Array, weights: Weights = None) -> float:
    return _mean(np.square(A - y), weights)


def mse_gradient(A: Array, y: Array) -> Array:
    return (A - y) * A.dtype.type(2 / A.size)


def mae_value(A: Array, y: Array, weights: Weights = None) -> float:
    return _mean(np.abs(A - y), weights)


def mae_gradient(A: Array, y: Array) -> Array:
    # The subgradient at A == y is 0, as PyTorch takes it.
    return np.sign(A - y) / A.dtype.type(A.size)


HUBER_DELTA = 1.0


def huber_value(A: Array, y: Array, weights: Weights = None) -> float:
    d = np.abs(A - y)
    return _mean(np.where(d <= HUBER_DELTA, d * d / 2, HUBER_DELTA * (d - HUBER_DELTA / 2)),
                 weights)


def huber_gradient(A: Array, y: Array) -> Array:
    return np.clip(A - y, -HUBER_DELTA, HUBER_DELTA) / A.dtype.type(A.size)


# --- scikit-learn's MLP losses: summed over outputs, averaged over samples ----------------


def _row_sums(values: Array) -> Array:
    return np.add.reduce(values, axis=1)


def multilabel_value(A: Array, y: Array, weights: Weights = None) -> float:
    P = _clip_probability(A)
    return -_mean(_row_sums(y * np.log(P) + (1 - y) * np.log1p(-P)), weights)


def multilabel_gradient(A: Array, y: Array) -> Array:
    P = _clip_probability(A)
    return (P - y) / (P * (1 - P)) / len(A)


def multilabel_logits_value(Z: Array, y: Array, weights: Weights = None) -> float:
    return _mean(_row_sums(np.maximum(Z, 0) - Z * y + np.log1p(np.exp(-np.abs(Z)))), weights)


def _per_sample_residual(Z: Array, A: Array, y: Array) -> Array:
    # The canonical pairs (sigmoid, log-loss) and (exp, Poisson deviance) both collapse
    # to (y_hat - y); summed over outputs, so divided by the samples only.
    return (A - y) / A.dtype.type(len(Z))


def half_squared_error_value(A: Array, y: Array, weights: Weights = None) -> float:
    return _mean(_row_sums(np.square(A - y)), weights) / 2


def half_squared_error_gradient(A: Array, y: Array) -> Array:
    return (A - y) / A.dtype.type(len(A))


def _xlogy(y: Array, ratio: Array) -> Array:
    # y * log(ratio), 0 where y == 0 (scipy's xlogy), without scipy.
    safe = np.where(y > 0, ratio, 1)
    return y * np.log(safe)


def poisson_value(A: Array, y: Array, weights: Weights = None) -> float:
    """Half the Poisson deviance, ``y log(y / A) - y + A``, as scikit-learn's."""
    return _mean(_row_sums(_xlogy(y, y / A) - y + A), weights)


def poisson_gradient(A: Array, y: Array) -> Array:
    return (1 - y / A) / A.dtype.type(len(A))


def poisson_logits_value(Z: Array, y: Array, weights: Weights = None) -> float:
    # With A = exp(Z), log(y / A) = log(y) - Z: no division by an underflowed A.
    return _mean(_row_sums(_xlogy(y, y) - y * Z - y + np.exp(Z)), weights)


LOSSES: Registry[Loss] = Registry("loss", "register_loss", {
    "binary_crossentropy": Loss(bce_value, bce_gradient),
    "categorical_crossentropy": Loss(cce_value, cce_gradient),
    "mean_squared_error": Loss(mse_value, mse_gradient),
    "mean_absolute_error": Loss(mae_value, mae_gradient),
    "huber": Loss(huber_value, huber_gradient),
    "half_squared_error": Loss(half_squared_error_value, half_squared_error_gradient),
    "multilabel_log_loss": Loss(multilabel_value, multilabel_gradient),
    "poisson": Loss(poisson_value, poisson_gradient),
})

# (loss, output activation) pairs computed from the pre-activation: exact, and free of
# log(0) and of the 0/0 that the chain rule through a saturated output would produce.
FUSED: dict[tuple[str, str], FusedLoss] = {
    ("binary_crossentropy", "sigmoid"): FusedLoss(bce_logits_value, bce_logits_gradient),
    ("categorical_crossentropy", "softmax"): FusedLoss(cce_logits_value, cce_logits_gradient),
    ("multilabel_log_loss", "sigmoid"): FusedLoss(multilabel_logits_value,
                                                  _per_sample_residual),
    ("poisson", "exp"): FusedLoss(poisson_logits_value, _per_sample_residual),
}

# The loss used when none is given, from the output activation.
DEFAULT_LOSS: dict[str, str] = {
    "sigmoid": "binary_crossentropy",
    "softmax": "categorical_crossentropy",
    "identity": "mean_squared_error",
    "linear": "mean_squared_error",
}

# The form of the targets each classification loss takes: 0/1 columns ("binary") or
# class ids / probability rows ("categorical"); what validation, accuracy and the model's
# task follow.
TARGET_KINDS: dict[str, str] = {"binary_crossentropy": "binary",
                                "multilabel_log_loss": "binary",
                                "categorical_crossentropy": "categorical"}
CLASSIFICATION_LOSSES = tuple(TARGET_KINDS)


def target_kind(loss: str) -> str | None:
    """"binary", "categorical", or None for a regression loss."""
    return TARGET_KINDS.get(loss)


def normalised_weights(sample_weight: Any, n_samples: int, dtype: np.dtype) -> Weights:
    """``sample_weight`` checked and scaled to mean 1, as the ``weights`` of the loss values
    (None stays None: equal weights).

    Raises:
        TypeError: not numbers.
        ValueError: not of shape (n_samples,), or negative, NaN, inf or all zero.
    """
    if sample_weight is None:
        return None
    try:
        w = np.asarray(sample_weight, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(f"sample_weight must be numbers, one per sample: {error}") from None
    if w.shape != (n_samples,):
        raise ValueError(f"sample_weight must have shape ({n_samples},), one weight per "
                         f"sample, got shape {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any():
        bad = w[~np.isfinite(w) | (w < 0)][0].item()
        raise ValueError(f"sample_weight must be finite and >= 0, got {bad!r}; weigh a "
                         "sample you want to ignore with 0")
    total = w.sum()
    if total <= 0:
        raise ValueError("sample_weight is zero for every sample, so the weighted mean loss "
                         "is undefined; give at least one sample a positive weight")
    # Scaled in float64, then cast: the weights of equal samples stay equal in any dtype.
    return (w * (n_samples / total)).astype(dtype)


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
