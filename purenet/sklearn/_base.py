"""What both estimators share: one fit (fresh, warm-started, partial or resumed from a
checkpoint) through ``purenet.fit``, and the fitted attributes it leaves."""

from __future__ import annotations

import json
import math
import os
import warnings
from typing import Any, NamedTuple

import attrs
import numpy as np
import xxhash
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from purenet.core.records import tree_map
from purenet.errors import NonFiniteError
from purenet.model import Model
from purenet.sklearn import _settings as settings
from purenet.sklearn._targets import Targets
from purenet.sklearn._report import EpochReport, stall_message
from purenet.train.config import RunConfig
from purenet.train.data import train_validation_split
from purenet.train.fingerprint import fingerprint
from purenet.train.loop import fit as purenet_fit
from purenet.train.state import TrainState

Array = np.ndarray
CHECKPOINTS_KEPT = 2
OUTPUT_NAMES = {"sigmoid": "logistic"}   # MLPClassifier's name of purenet's activations


NON_FINITE = ("Solver produced non-finite parameter weights. The input data may contain "
              "large values and need to be preprocessed.")   # MLPClassifier's words
LBFGS_NO_CONVERGENCE = ("lbfgs failed to converge after {} iteration(s) and {} evaluations "
                        "of the loss: {}. Increase max_iter or max_fun, or scale the data")
# L-BFGS's stops that are not convergence, as scipy's L-BFGS-B warns of its maxfun.
LBFGS_UNCONVERGED = {"max_eval": "max_fun was reached"}
NO_CONVERGENCE = ("Stochastic Optimizer: Maximum iterations ({}) reached and the "
                  "optimization hasn't converged yet.")


def _check_validation_size(fraction: float, n_samples: int, n_validation: int) -> None:
    if n_validation < 2:
        raise ValueError("The validation set is too small. Increase 'validation_fraction' "
                         f"or the size of your dataset. (validation_fraction={fraction} of "
                         f"{n_samples} samples leaves {n_validation}; early stopping needs "
                         "at least 2)")


def _check_stratifiable(strata: Array, fraction: float) -> None:
    """Refuse, with scikit-learn's own errors, labels that MLPClassifier's stratified split
    refuses (a class of one sample, a validation part smaller than the classes): its split
    run on the labels as it binarizes them, for its checks only."""
    n_classes = int(strata.max()) + 1 if strata.size else 0
    binarized = ((strata == 1)[:, None] if n_classes <= 2
                 else np.eye(n_classes, dtype=bool)[strata])
    train_test_split(np.arange(len(strata)), test_size=fraction, stratify=binarized,
                     random_state=0)


def _continued(state: TrainState, config: RunConfig) -> TrainState:
    """``state`` ready to train on under ``config``. A warm-started fit keeps its count of
    epochs without improvement and its best (as MLPClassifier does); partial_fit never
    stops early."""
    early = state.early_stopping
    if config.early_stopping is None:
        early = None
    elif early is None:
        early = config.early_stopping.initial()
    return attrs.evolve(state, stopped=False, early_stopping=early)


class _Fit(NamedTuple):
    """One fit call's parts, as ``_train`` needs them."""

    config: RunConfig
    train: tuple
    validation: tuple | None
    state: TrainState | None
    targets: Targets
    incremental: bool


class PureNetBase(BaseEstimator):
    """Fitting shared by PureNetClassifier and PureNetRegressor; the subclasses say how
    targets and weights are read (``_targets``, ``_weights``) and what they score."""

    _monitor = "val_loss"            # what early_stopping=True watches
    _data_checks: dict = {}          # validate_data's arguments for (X, y)

    def _keep_parameters(self, arguments: dict) -> None:
        """Each ``__init__`` argument as the attribute of its name, unchanged (scikit-learn
        asks ``__init__`` to do nothing else); one place for the two estimators' ~30."""
        for name in self._get_param_names():
            setattr(self, name, arguments[name])

    def _fit(self, X: Any, y: Any, sample_weight: Any, incremental: bool,
             classes: Any = None) -> "PureNetBase":
        params = self.get_params()
        settings.solver(params)              # refuses an unknown one before the data is read
        settings.learning_rate_mode(params)
        settings.check_max_fun(self.max_fun)
        fitted = hasattr(self, "_state")
        continuing = fitted and (incremental or self.warm_start)
        if incremental and self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True")
        X, y = validate_data(self, X, y, reset=not continuing, accept_sparse=["csr", "csc"],
                             dtype=(np.float64, np.float32), **self._data_checks)
        targets = self._targets(y, continuing, classes, incremental)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64,
                                                 ensure_non_negative=True)
        weights = self._weights(sample_weight, y, targets, incremental)
        if not continuing:
            self.seed_ = settings.seed(self.random_state)
            self._divisions = 0
        dtype = (str(self._state.params.dtype) if continuing
                 else settings.float_dtype(self.dtype, X.dtype))
        train, validation = self._split(X, targets, weights)
        arch = settings.architecture(params, X.shape[1], targets.n_outputs, targets.output)
        early = None if incremental else settings.stopping(
            params, self._monitor if self._early_stopping() else "train_loss")
        state = self._state if continuing else None
        epochs = (0 if state is None else state.epoch) + (
            1 if incremental else settings.max_iter(self.max_iter))
        config = settings.run_config(params, arch, targets.loss, train[0].shape[0], epochs,
                                     self.seed_, early, dtype, self._divisions)
        self._train(_Fit(config, train, validation, None if state is None else
                         _continued(state, config), targets, incremental))
        return self

    def _early_stopping(self) -> bool:
        """early_stopping, which (as in MLPClassifier) only the minibatch solvers take."""
        return bool(self.early_stopping) and not settings.full_batch(self.get_params())

    def _split(self, X: Array, targets: Targets, weights: Array | None
               ) -> tuple[tuple, tuple | None]:
        """``(train, validation)``, each ``(x, y, weights)``; validation None unless
        early_stopping. The split is stratified for single-label classifiers and drawn
        from the run's seed, so a refit sees the same one."""
        if not self._early_stopping():
            return (X, targets.y, weights), None
        strata = targets.strata
        if strata is not None:
            _check_stratifiable(strata, self.validation_fraction)
        # Checked before the split (with train_test_split's count, as MLPClassifier's
        # message comes before any other) and after it (purenet's split rounds).
        _check_validation_size(self.validation_fraction, X.shape[0],
                               math.ceil(self.validation_fraction * X.shape[0]))
        index = np.arange(X.shape[0]).reshape(-1, 1)
        train_index, _, val_index, _ = train_validation_split(
            index, np.zeros(X.shape[0]) if strata is None else strata,
            self.validation_fraction, self.seed_, stratify=strata is not None)
        _check_validation_size(self.validation_fraction, X.shape[0], len(val_index))
        parts = []
        for rows in (train_index[:, 0], val_index[:, 0]):
            parts.append((X[rows], targets.y[rows], None if weights is None else weights[rows]))
        return parts[0], parts[1]

    def _report(self, run: _Fit) -> EpochReport:
        score = None
        if run.validation is not None:
            x_val, y_val, w_val = run.validation
            truth = self._labels_of(y_val)
            score = (lambda params: self._score_function(   # noqa: E731
                truth, self._model(params, run.targets).predict(x_val), w_val))
        first = 0 if run.state is None else run.state.epoch
        return EpochReport(score, bool(self.verbose), first)

    def _train(self, run: _Fit) -> None:
        config, train, validation, state = run.config, run.train, run.validation, run.state
        checkpointer = None
        if self.checkpoint_dir is not None and state is None:
            checkpointer = self._checkpointer(config, train, validation)
        report = self._report(run)
        while True:
            try:
                result = purenet_fit(
                    config, train[0], train[1], sample_weight=train[2],
                    validation_data=None if validation is None else validation[:2],
                    initial_state=state, checkpointer=checkpointer,
                    resume=checkpointer is not None, callbacks=(report,), progress=False)
            except NonFiniteError as error:
                state = self._diverged(run, report, error)
                break
            state = result.state
            if not state.stopped or settings.full_batch(self.get_params()):
                break
            if not self._adapted(config):
                break
            self._divisions += 1
            n_train = train[0].shape[0]
            config = attrs.evolve(config, optimizer=settings.optimizer(
                self.get_params(), -(-n_train // config.batch_size), n_train, self._divisions))
            state = attrs.evolve(state, stopped=False, early_stopping=attrs.evolve(
                state.early_stopping, wait=0))
            checkpointer = None
        self._store(state, run, config, report)

    def _diverged(self, run: _Fit, report: EpochReport, error: NonFiniteError
                  ) -> TrainState:
        """The end of a fit whose training went non-finite. MLPClassifier trains on with
        NaN weights (its epochs score NaN) and fails only if the weights it ends with are
        not finite: with early stopping it ends with its best epoch's finite ones. So the
        diverged epoch scores NaN and the fit ends there, on its best weights."""
        last = report.last if report.last is not None else run.state
        best = None if last is None or last.early_stopping is None \
            else last.early_stopping.best_params
        if not self.early_stopping or best is None:
            raise ValueError(f"{NON_FINITE} ({error})") from None
        report.scores.append(math.nan)
        return attrs.evolve(last, stopped=True)

    def _adapted(self, config: RunConfig) -> bool:
        """After a stall: whether learning_rate="adaptive" divides the rate and trains on
        (MLPClassifier's rule), saying so with ``verbose``."""
        params = self.get_params()
        adaptive = settings.learning_rate_mode(params) == "adaptive"
        rate = settings.adaptive_rate(params, self._divisions)
        outcome = ("stop" if not adaptive else
                   "floor" if rate <= settings.ADAPTIVE_FLOOR else "divide")
        if self.verbose:
            print(stall_message(bool(self.early_stopping), self.tol, self.n_iter_no_change,
                                outcome, rate / settings.ADAPTIVE_DIVISOR))
        return outcome == "divide"

    def _checkpointer(self, config: RunConfig, train: tuple, validation: tuple | None) -> Any:
        """A Checkpointer in a subdirectory of checkpoint_dir named by this fit's settings
        and data: GridSearchCV's candidates and folds get their own, and the same fit run
        again finds (and resumes from) its own."""
        from purenet.checkpoint.policy import Checkpointer

        if settings.learning_rate_mode(self.get_params()) == "adaptive":
            raise ValueError("checkpoint_dir does not take learning_rate='adaptive' yet: the "
                             "rate's divisions are the estimator's, not the checkpoint's, so "
                             "a resumed fit could not adapt as the first did; use "
                             "'constant' or 'invscaling', or no checkpoint_dir")

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

    def _store(self, state: TrainState, run: _Fit, config: RunConfig,
               report: EpochReport) -> None:
        history = state.history
        continued = run.state is not None
        first = 0 if run.state is None else run.state.epoch
        early = state.early_stopping
        if self.early_stopping and early is not None and early.best_params is not None:
            # MLPClassifier ends an early-stopping fit with its best epoch's weights,
            # whether the stall or max_iter ended it.
            state = attrs.evolve(state, params=early.best_params)
        if not all(np.isfinite(layer.W).all() and np.isfinite(layer.b).all()
                   for layer in state.params.layers):
            raise ValueError(NON_FINITE)
        self._state = state
        self._config = config.to_dict()   # plain data: a RunConfig's optimizer holds closures
        self.params_ = state.params
        # Predictions computed in float64 from the trained parameters (a float32 product's
        # bits depend on how many rows BLAS multiplies at once, and predict's must not),
        # then given in the parameters' dtype, as MLPClassifier's.
        self.model_ = self._model(tree_map(lambda a: a.astype(np.float64), state.params),
                                  run.targets)
        self.n_outputs_ = run.targets.n_outputs
        self.n_layers_ = len(state.params.layers) + 1
        self.out_activation_ = OUTPUT_NAMES.get(run.targets.output, run.targets.output)
        self.n_iter_ = state.epoch - first
        self.t_ = (self.t_ if continued else 0) + self.n_iter_ * run.train[0].shape[0]
        self.history_ = history
        self.loss_curve_ = list(history.train_loss)
        self.loss_ = self.loss_curve_[-1] if self.loss_curve_ else None
        self.best_loss_ = None if self.early_stopping else (
            early.best if early is not None else min(self.loss_curve_, default=None))
        self._warn_unconverged(state, run)
        if report.score is None:
            self.validation_scores_ = self.best_validation_score_ = None
            return
        earlier = self.validation_scores_ if continued and self.validation_scores_ else []
        # Epochs restored from a checkpoint were scored by the process that ran them.
        missing = len(history) - len(earlier) - len(report.scores)
        self.validation_scores_ = [*earlier, *[math.nan] * missing, *report.scores]
        self.best_validation_score_ = max((s for s in self.validation_scores_ if s == s),
                                          default=None)

    def _warn_unconverged(self, state: TrainState, run: _Fit) -> None:
        """MLPClassifier's ConvergenceWarning: max_iter ended the fit, or (lbfgs) max_fun."""
        at_limit = self.n_iter_ == settings.max_iter(self.max_iter) and not state.stopped
        if settings.full_batch(self.get_params()):
            reason = state.opt_state.stopped
            if at_limit or reason in LBFGS_UNCONVERGED:
                warnings.warn(LBFGS_NO_CONVERGENCE.format(
                    self.n_iter_, state.opt_state.evals,
                    LBFGS_UNCONVERGED.get(reason, "max_iter was reached")), ConvergenceWarning)
        # n_iter_no_change=None (a purenet extra) asks for max_iter epochs: no warning.
        elif not run.incremental and at_limit and self.n_iter_no_change is not None:
            warnings.warn(NO_CONVERGENCE.format(self.max_iter), ConvergenceWarning)

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

    def _model(self, params: Any, targets: Targets) -> Model:
        classes = getattr(self, "classes_", None)
        if classes is not None and len(classes) == 1:
            classes = np.repeat(classes, 2)   # one class: its label on both sides of 0.5
        return Model(params, targets.loss, classes,
                     feature_names=getattr(self, "feature_names_in_", None))

    def _predict_input(self, X: Any) -> Array:
        check_is_fitted(self, "_state")
        return validate_data(self, X, reset=False, accept_sparse=["csr", "csc"],
                             dtype=(np.float64, np.float32))

    def _in_fit_dtype(self, values: Array) -> Array:
        """Predicted values in the dtype of the fitted parameters."""
        return values.astype(self.params_.dtype, copy=False)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.input_tags.sparse = True     # CSR and CSC, never densified
        tags.non_deterministic = self.random_state is None
        return tags
