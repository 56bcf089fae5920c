"""What both estimators share: one fit (fresh, warm-started, partial or resumed from a
checkpoint) through ``purenet.fit``, and the fitted attributes it leaves."""

from __future__ import annotations

import json
import math
import os
from typing import Any, Callable

import attrs
import numpy as np
import xxhash
from sklearn.base import BaseEstimator
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from purenet.core.records import tree_map
from purenet.model import Model
from purenet.sklearn import _settings as settings
from purenet.sklearn._targets import Targets
from purenet.train.callbacks import Callback
from purenet.train.config import RunConfig
from purenet.train.data import train_validation_split
from purenet.train.fingerprint import fingerprint
from purenet.train.loop import fit as purenet_fit
from purenet.train.state import TrainState

Array = np.ndarray
CHECKPOINTS_KEPT = 2


class _ValidationScores(Callback):
    """The estimator's own score (accuracy, R^2) on the validation part after each epoch,
    as MLPClassifier's ``validation_scores_``."""

    def __init__(self, score: Callable[[Any], float]) -> None:
        self.score = score
        self.scores: list[float] = []

    def on_epoch_end(self, state: TrainState) -> None:
        self.scores.append(self.score(state.params))


def _continued(state: TrainState, config: RunConfig) -> TrainState:
    """``state`` ready to train on under ``config``: a new fit call counts its own epochs
    without improvement (as MLPClassifier does), and partial_fit never stops early."""
    early = None if config.early_stopping is None else config.early_stopping.initial()
    return attrs.evolve(state, stopped=False, early_stopping=early)


class PureNetBase(BaseEstimator):
    """Fitting shared by PureNetClassifier and PureNetRegressor; the subclasses say how
    targets and weights are read (``_targets``, ``_weights``) and what they score."""

    _monitor = "val_loss"            # what early_stopping=True watches
    _data_checks: dict = {}          # validate_data's arguments for (X, y)

    def _fit(self, X: Any, y: Any, sample_weight: Any, incremental: bool,
             classes: Any = None) -> "PureNetBase":
        fitted = hasattr(self, "_state")
        continuing = fitted and (incremental or self.warm_start)
        if incremental and self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True (each call "
                             "trains one epoch on the data it is given); set "
                             "early_stopping=False")
        X, y = validate_data(self, X, y, reset=not continuing,
                             dtype=(np.float64, np.float32), **self._data_checks)
        targets = self._targets(y, continuing, classes)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64,
                                                 ensure_non_negative=True)
        weights = self._weights(sample_weight, y, targets, incremental)
        if not continuing:
            self.seed_ = settings.seed(self.random_state)
        train, validation = self._split(X, targets, weights)
        params = self.get_params()
        arch = settings.architecture(params, X.shape[1], targets.n_outputs, targets.output)
        early = None if incremental else settings.stopping(
            params, self._monitor if self.early_stopping else "train_loss")
        state = self._state if continuing else None
        epochs = (0 if state is None else state.epoch) + (
            1 if incremental else settings.max_iter(self.max_iter))
        config = settings.run_config(params, arch, targets.loss, len(train[0]), epochs,
                                     self.seed_, early)
        self._train(config, train, validation, None if state is None else
                    _continued(state, config), targets)
        return self

    def _split(self, X: Array, targets: Targets, weights: Array | None
               ) -> tuple[tuple, tuple | None]:
        """``(train, validation)``, each ``(x, y, weights)``; validation None unless
        early_stopping. The split is stratified for single-label classifiers and drawn
        from the run's seed, so a refit sees the same one."""
        if not self.early_stopping:
            return (X, targets.y, weights), None
        strata = targets.strata
        index = np.arange(len(X)).reshape(-1, 1)
        train_index, _, val_index, _ = train_validation_split(
            index, np.zeros(len(X)) if strata is None else strata,
            self.validation_fraction, self.seed_, stratify=strata is not None)
        if len(val_index) < 2:
            raise ValueError(f"validation_fraction={self.validation_fraction} of "
                             f"{len(X)} samples leaves a validation set of "
                             f"{len(val_index)}; early stopping needs at least 2: raise "
                             "validation_fraction or pass more data")
        parts = []
        for rows in (train_index[:, 0], val_index[:, 0]):
            parts.append((X[rows], targets.y[rows], None if weights is None else weights[rows]))
        return parts[0], parts[1]

    def _train(self, config: RunConfig, train: tuple, validation: tuple | None,
               state: TrainState | None, targets: Targets) -> None:
        scores = None
        if validation is not None:
            x_val, y_val, w_val = validation
            truth = self._labels_of(y_val)
            scores = _ValidationScores(lambda params: self._score_function(
                truth, self._model(params, targets.loss).predict(x_val), w_val))
        checkpointer = None
        if self.checkpoint_dir is not None and state is None:
            checkpointer = self._checkpointer(config, train, validation)
        result = purenet_fit(
            config, train[0], train[1], sample_weight=train[2],
            validation_data=None if validation is None else validation[:2],
            initial_state=state, checkpointer=checkpointer, resume=checkpointer is not None,
            callbacks=() if scores is None else (scores,), progress=bool(self.verbose))
        self._store(result.state, config, targets, scores, state is not None)

    def _checkpointer(self, config: RunConfig, train: tuple, validation: tuple | None) -> Any:
        """A Checkpointer in a subdirectory of checkpoint_dir named by this fit's settings
        and data: GridSearchCV's candidates and folds get their own, and the same fit run
        again finds (and resumes from) its own."""
        from purenet.checkpoint.policy import Checkpointer

        if self.random_state is None:
            raise ValueError("checkpoint_dir needs an int random_state: with None every fit "
                             "draws a new seed, so a refit could never find (and resume) its "
                             "checkpoints")
        arrays = dict(zip(("x", "y", "sample_weight"), train))
        if validation is not None:
            arrays.update(zip(("x_val", "y_val", "sample_weight_val"), validation))
        plain = {"config": config.to_dict(), "data": fingerprint(arrays),
                 "classes": None if not hasattr(self, "classes_") else repr(self.classes_)}
        key = xxhash.xxh3_128_hexdigest(json.dumps(plain, sort_keys=True).encode())[:20]
        self.checkpoint_path_ = os.path.join(os.fspath(self.checkpoint_dir), f"fit-{key}")
        return Checkpointer(self.checkpoint_path_, every_epochs=self.checkpoint_every,
                            keep=CHECKPOINTS_KEPT)

    def _store(self, state: TrainState, config: RunConfig, targets: Targets,
               scores: _ValidationScores | None, continued: bool) -> None:
        history = state.history
        self._state = state
        self._config = config.to_dict()   # plain data: a RunConfig's optimizer holds closures
        self.params_ = state.params
        # Predictions in float64 from the trained parameters: a float32 product's bits
        # depend on how many rows BLAS multiplies at once, and predict's must not.
        self.model_ = self._model(tree_map(lambda a: a.astype(np.float64), state.params),
                                  targets.loss)
        self.n_outputs_ = targets.n_outputs
        self.n_iter_ = state.epoch
        self.history_ = history
        self.loss_curve_ = list(history.train_loss)
        self.best_loss_ = None if self.early_stopping else min(self.loss_curve_, default=None)
        if scores is None:
            self.validation_scores_ = self.best_validation_score_ = None
            return
        earlier = self.validation_scores_ if continued and self.validation_scores_ else []
        # Epochs restored from a checkpoint were scored by the process that ran them.
        missing = len(history) - len(earlier) - len(scores.scores)
        self.validation_scores_ = [*earlier, *[math.nan] * missing, *scores.scores]
        self.best_validation_score_ = max((s for s in self.validation_scores_ if s == s),
                                          default=None)

    @property
    def coefs_(self) -> list[Array]:
        """MLPClassifier's view of the weights: ``W`` of each layer, (fan_in, fan_out)."""
        check_is_fitted(self, "_state")
        return [layer.W for layer in self.params_.layers]

    @property
    def intercepts_(self) -> list[Array]:
        """MLPClassifier's view of the biases: ``b`` of each layer."""
        check_is_fitted(self, "_state")
        return [layer.b for layer in self.params_.layers]

    @property
    def config_(self) -> RunConfig:
        """The purenet run record of the last fit."""
        check_is_fitted(self, "_state")
        return RunConfig.from_dict(self._config)

    def _model(self, params: Any, loss: str) -> Model:
        return Model(params, loss, getattr(self, "classes_", None),
                     feature_names=getattr(self, "feature_names_in_", None))

    def _predict_input(self, X: Any) -> Array:
        check_is_fitted(self, "_state")
        return validate_data(self, X, reset=False, dtype=(np.float64, np.float32))

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.non_deterministic = self.random_state is None
        return tags
