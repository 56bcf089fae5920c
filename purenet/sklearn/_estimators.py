"""PureNetClassifier and PureNetRegressor: purenet networks as scikit-learn estimators."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.metrics import accuracy_score, r2_score
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target

from purenet.sklearn._base import PureNetBase
from purenet.sklearn._settings import FULL_BATCH_SOLVERS
from purenet.sklearn._targets import (Targets, classes_of, classifier_targets, labels_of,
                                      regressor_targets)

Array = np.ndarray

PARAMETERS = """
    Parameters (MLPClassifier's names, meanings and defaults where it has one):
        hidden_layer_sizes: the width of each hidden layer, e.g. ``(100,)`` or ``(64, 32)``.
        activation: of the hidden layers: "relu", "tanh", "logistic" (or "sigmoid"),
            "identity", or any other name of ``purenet.ACTIVATIONS`` ("gelu", "elu", ...).
        layers: instead of the two above, the whole network in the tutorial's list-of-dicts
            form (``[{"input_dim": 4, "output_dim": 16, "activation": "relu"}, ...]``); its
            ends must fit the data and the task.
        dropout: dropout rate of every hidden layer (with ``hidden_layer_sizes``).
        optimizer: "adam" (default), "sgd" (with ``momentum``, Nesterov when
            ``nesterovs_momentum``; plain SGD when ``momentum=0``), "adamw", "rmsprop",
            "adagrad", "lbfgs" (full batch, ``purenet.optim.lbfgs``). MLPClassifier calls
            this ``solver``.
        learning_rate_init: the (initial) learning rate.
        schedule: None (a constant rate), or a learning-rate schedule in the form of an
            experiment file's ``[optimizer.learning_rate]`` table, e.g.
            ``{"schedule": "warmup_cosine_decay", "warmup_steps": 100, "decay_steps":
            5000}``; its starting or peak rate defaults to ``learning_rate_init``.
            (MLPClassifier's ``learning_rate`` names its sgd-only schedules.)
        beta_1, beta_2, epsilon: Adam's (and AdamW's) moment decays and epsilon.
        momentum, nesterovs_momentum: for ``optimizer="sgd"``.
        optimizer_params: other arguments of the purenet optimizer, e.g.
            ``{"weight_decay": 0.01}`` for adamw or ``{"decay": 0.99}`` for rmsprop.
        alpha: L2 strength as MLPClassifier defines it: ``alpha / (2 * batch_size) *
            sum(W**2)`` is added to each batch's mean loss (purenet's ``l2`` is then
            ``alpha / batch_size``); biases are not penalised.
        batch_size: samples per step; "auto" is ``min(200, n_samples)``.
        max_iter: epochs to train (MLPClassifier's name: ``GridSearchCV`` grids written for
            it carry over); with ``warm_start`` or ``partial_fit``, epochs added per call.
        shuffle: visit the samples in a new (seeded) order each epoch.
        tol, n_iter_no_change: stop once the training loss (the validation score with
            ``early_stopping``) failed to improve by ``tol`` for more than
            ``n_iter_no_change`` epochs in a row; ``n_iter_no_change=None`` never stops
            early (a purenet addition).
        early_stopping: hold out ``validation_fraction`` of the training data (stratified
            for single-label classifiers), watch the validation accuracy (classifier) or
            loss (regressor), and end with the parameters of the best epoch.
        validation_fraction: see ``early_stopping``.
        random_state: an int seed; it decides the initial parameters, the data order, the
            dropout masks and the validation split, so the same seed gives bit-identical
            predictions (with the same ``threads`` and BLAS build). None draws a fresh seed
            from the OS for each fresh fit (kept in ``seed_``).
        warm_start: ``fit`` continues from the fitted network, optimizer state included.
        init: purenet's initializer of fresh weights: "glorot_uniform" (MLPClassifier's
            choice, the default), "he_normal", "he_uniform", "glorot_normal".
        dtype: "float32" (default, faster) or "float64": the network's parameters and
            arithmetic.
        threads: BLAS threads during fit; None applies purenet's rule (1 for small
            networks). Part of the run: it decides the bits.
        checkpoint_dir: None, or a directory under which each fit checkpoints into
            ``fit-<key>/`` (every ``checkpoint_every`` epochs and at its end), the key a digest of the run's settings and data (so the
            candidates and folds of a GridSearchCV never share one); the same fit run again
            (after the job was killed) resumes from its newest checkpoint, bit for bit.
            Needs an int ``random_state``; warm-start and partial_fit calls are not
            checkpointed.
        checkpoint_every: epochs between checkpoints (a save costs a few tens of ms, for
            the fsyncs that make it safe: small data saves less often).
        verbose: show a progress bar during fit.

    Fitted attributes:
        n_features_in_, feature_names_in_ (DataFrame input only): as in scikit-learn.
        n_iter_: epochs trained (over all warm-start and partial_fit calls).
        loss_curve_: the training loss of each epoch (L2 penalty included).
        best_loss_: the smallest of ``loss_curve_``; None with ``early_stopping``.
        validation_scores_, best_validation_score_: with ``early_stopping``, the score
            (accuracy, R^2) on the held-out part after each epoch (after an early stop,
            the last entry scores the restored best parameters), and the best; else None.
        n_outputs_: units of the output layer.
        params_: the purenet ``Params`` (``params_.layers[i].W`` and ``.b``); also as
            MLPClassifier's ``coefs_`` and ``intercepts_`` lists.
        model_: the ``purenet.model.Model`` that predicts.
        history_: the purenet ``History`` (train/validation loss and accuracy per epoch).
        config_: the purenet ``RunConfig`` of the last fit.
        seed_: the seed the network was trained with.
        checkpoint_path_: the fit's checkpoint directory (with ``checkpoint_dir``).
"""


def _stochastic(estimator: Any) -> bool:
    """partial_fit exists for the minibatch solvers only, as MLPClassifier's."""
    return estimator.solver not in FULL_BATCH_SOLVERS


class PureNetClassifier(ClassifierMixin, PureNetBase):
    __doc__ = """A purenet network as a scikit-learn classifier.

    Two classes train one sigmoid output, more classes a softmax, a 0/1 indicator matrix
    (multi-label) one sigmoid per label; labels may be strings or integers. ``fit`` takes
    ``sample_weight`` (the weighted mean loss is minimised) and ``class_weight`` (a dict
    ``{label: weight}`` or "balanced") multiplies into it.
    """ + PARAMETERS

    _monitor = "val_subset_accuracy"   # MLPClassifier's validation score: accuracy_score
    _data_checks = {"multi_output": True}

    def __init__(self, hidden_layer_sizes: Any = (100,), activation: str = "relu", *,
                 solver: str = "adam", alpha: float = 0.0001, batch_size: Any = "auto",
                 learning_rate: str = "constant", learning_rate_init: float = 0.001,
                 power_t: float = 0.5, max_iter: int = 200, shuffle: bool = True,
                 random_state: Any = None, tol: float = 1e-4, verbose: bool = False,
                 warm_start: bool = False, momentum: float = 0.9,
                 nesterovs_momentum: bool = True, early_stopping: bool = False,
                 validation_fraction: float = 0.1, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-8, n_iter_no_change: Any = 10,
                 max_fun: int = 15000, layers: Any = None, dropout: float = 0.0,
                 optimizer: str | None = None, schedule: Any = None,
                 optimizer_params: dict | None = None, init: str = "glorot_uniform",
                 dtype: str | None = None, threads: int | None = None,
                 checkpoint_dir: Any = None, checkpoint_every: int = 10,
                 class_weight: Any = None) -> None:
        self._keep_parameters(locals())

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> "PureNetClassifier":
        """Train on ``X`` (n_samples, n_features) and labels ``y`` (n_samples,) or a 0/1
        indicator matrix (n_samples, n_labels)."""
        return self._fit(X, y, sample_weight, incremental=False)

    @available_if(_stochastic)
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None, classes: Any = None
                    ) -> "PureNetClassifier":
        """One epoch over ``(X, y)``, continuing the fitted network. The first call needs
        ``classes`` (every label there will be), unless ``y`` is multi-label."""
        if not hasattr(self, "_state") and classes is None \
                and type_of_target(y) != "multilabel-indicator":
            raise ValueError("classes must be passed on the first call to partial_fit.")
        if hasattr(self, "_state") and classes is not None \
                and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(f"`classes={list(np.unique(classes))}` is not the same as on the "
                             f"first call to partial_fit, which was {list(self.classes_)}")
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    def predict(self, X: Any) -> Array:
        """Labels (n_samples,), or an indicator matrix (n_samples, n_labels) for
        multi-label."""
        x = self._predict_input(X)
        return self.model_.predict(x)

    def predict_proba(self, X: Any) -> Array:
        """(n_samples, n_classes) probabilities in ``classes_`` order; per-label
        probabilities (n_samples, n_labels) for multi-label."""
        x = self._predict_input(X)
        return self._in_fit_dtype(self.model_.predict_proba(x))

    def predict_log_proba(self, X: Any) -> Array:
        return np.log(self.predict_proba(X))

    def decision_function(self, X: Any) -> Array:
        """The logits: (n_samples,) for two classes (> 0 means ``classes_[1]``), else
        (n_samples, n_classes)."""
        x = self._predict_input(X)
        return self.model_.decision_function(x)

    # -- what PureNetBase asks of a subclass --

    def _targets(self, y: Any, continuing: bool, classes: Any,
                 incremental: bool = False) -> Targets:
        labels = labels_of(y)
        if not continuing:
            self.classes_, self._task = classes_of(labels, classes)
        elif not incremental and self._task != "multilabel":
            found = np.unique(labels)
            if not np.array_equal(found, self.classes_):   # MLPClassifier's rule and words
                raise ValueError("warm_start can only be used where `y` has the same classes "
                                 f"as in the previous call to fit. Previously got "
                                 f"{self.classes_}, `y` has {found}")
        return classifier_targets(labels, self.classes_, self._task)

    def _weights(self, sample_weight: Array | None, y: Any, targets: Targets,
                 incremental: bool) -> Array | None:
        if self.class_weight is not None:
            if targets.strata is None:
                raise ValueError("class_weight applies to single-label targets; for "
                                 "multi-label y pass sample_weight instead")
            if incremental and isinstance(self.class_weight, str):
                raise ValueError("class_weight='balanced' needs all the data at once, so "
                                 "partial_fit cannot use it; pass a dict computed with "
                                 "sklearn.utils.class_weight.compute_class_weight")
            by_class = compute_sample_weight(self.class_weight, self.classes_[targets.strata])
            sample_weight = by_class if sample_weight is None else sample_weight * by_class
        if sample_weight is not None and targets.strata is not None and not incremental:
            weighted = np.unique(targets.strata[sample_weight > 0])
            if len(weighted) < 2:
                raise ValueError("PureNetClassifier needs samples of at least 2 classes with "
                                 "a positive weight to train; only class "
                                 f"{self.classes_[weighted].tolist()} has any")
        return sample_weight

    def _labels_of(self, y: Array) -> Array:
        if self._task == "multilabel":
            return y.astype(np.intp)
        return self.classes_[y.astype(np.intp)]

    @staticmethod
    def _score_function(truth: Array, predicted: Array, weights: Array | None) -> float:
        return float(accuracy_score(truth, predicted, sample_weight=weights))

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class PureNetRegressor(RegressorMixin, PureNetBase):
    _monitor = "val_r2"      # MLPRegressor's validation score
    __doc__ = """A purenet network as a scikit-learn regressor (identity outputs, one per
    column of ``y``). ``fit`` takes ``sample_weight``: the weighted mean loss is minimised.

    Besides the parameters below, ``loss`` is "squared_error" (default),
    "absolute_error" or "huber" (delta 1).
    """ + PARAMETERS

    def __init__(self, hidden_layer_sizes: Any = (100,), activation: str = "relu", *,
                 loss: str = "squared_error", solver: str = "adam", alpha: float = 0.0001,
                 batch_size: Any = "auto", learning_rate: str = "constant",
                 learning_rate_init: float = 0.001, power_t: float = 0.5,
                 max_iter: int = 200, shuffle: bool = True, random_state: Any = None,
                 tol: float = 1e-4, verbose: bool = False, warm_start: bool = False,
                 momentum: float = 0.9, nesterovs_momentum: bool = True,
                 early_stopping: bool = False, validation_fraction: float = 0.1,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-8,
                 n_iter_no_change: Any = 10, max_fun: int = 15000, layers: Any = None,
                 dropout: float = 0.0, optimizer: str | None = None, schedule: Any = None,
                 optimizer_params: dict | None = None, init: str = "glorot_uniform",
                 dtype: str | None = None, threads: int | None = None,
                 checkpoint_dir: Any = None, checkpoint_every: int = 10) -> None:
        self._keep_parameters(locals())

    _data_checks = {"multi_output": True, "y_numeric": True}

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> "PureNetRegressor":
        """Train on ``X`` (n_samples, n_features) and ``y`` (n_samples,) or
        (n_samples, n_outputs)."""
        return self._fit(X, y, sample_weight, incremental=False)

    @available_if(_stochastic)
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> "PureNetRegressor":
        """One epoch over ``(X, y)``, continuing the fitted network."""
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X: Any) -> Array:
        """(n_samples,) for one output, else (n_samples, n_outputs), in the dtype of the
        fitted parameters."""
        x = self._predict_input(X)
        return self._in_fit_dtype(self.model_.predict(x))

    def _targets(self, y: Any, continuing: bool, classes: Any,
                 incremental: bool = False) -> Targets:
        targets = regressor_targets(y, self.loss)
        if continuing and targets.n_outputs != self.n_outputs_:
            raise ValueError(f"this regressor was fitted with {self.n_outputs_} output(s), "
                             f"y has {targets.n_outputs}")
        return targets

    def _weights(self, sample_weight: Array | None, y: Any, targets: Targets,
                 incremental: bool) -> Array | None:
        return sample_weight

    @staticmethod
    def _labels_of(y: Array) -> Array:
        return y[:, 0] if y.shape[1] == 1 else y

    @staticmethod
    def _score_function(truth: Array, predicted: Array, weights: Array | None) -> float:
        return float(r2_score(truth, predicted, sample_weight=weights))
