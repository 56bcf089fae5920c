"""A trained network ready to use: ``Model``, the one prediction side of purenet.

``Model`` turns a network's outputs into what its user asked for: class labels and
probabilities for a classifier, values in the target's own units for a regression. The
scikit-learn estimators (``purenet.sklearn``) predict through it, and so does a run loaded
from its directory (``pn.load_run``), so a network predicts the same way wherever it was
trained.

The task follows from the loss:

=========================  ==============  =====================================================
loss                       output          task
=========================  ==============  =====================================================
categorical_crossentropy   K softmax       multi-class: one of K classes
binary_crossentropy        1 sigmoid       binary: two classes
binary_crossentropy        k sigmoid       multi-label: k yes/no labels per sample
any regression loss        k identity      regression with k outputs
=========================  ==============  =====================================================
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence, runtime_checkable

import attrs
import numpy as np

from purenet.core import checks
from purenet.core.losses import CLASSIFICATION_LOSSES, LOSSES, target_kind
from purenet.core.network import forward
from purenet.core.records import Params, readonly
from purenet.core.validate import check_targets, check_x
from purenet.train.metrics import score

Array = np.ndarray


@runtime_checkable
class Scaling(Protocol):
    """What a model's scaler does (``purenet.experiment.datasets.Scaler`` is one): inputs
    to the scale the network was trained on, and (regression) targets to and from it."""

    def transform_x(self, x: Array) -> Array: ...

    def transform_y(self, y: Array) -> Array: ...

    def inverse_y(self, y: Array) -> Array: ...


def _is_params(instance: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, Params):
        raise TypeError(f"params must be a purenet Params, got {checks.describe(value)}")


def _is_scaler(instance: Any, attribute: Any, value: Any) -> None:
    if value is not None and not isinstance(value, Scaling):
        raise TypeError("scaler must be None or have transform_x, transform_y and inverse_y "
                        f"(like purenet.experiment.datasets.Scaler), got "
                        f"{type(value).__name__}")


def _labels(value: Any) -> Array | None:
    if value is None:
        return None
    classes = np.asarray(value)
    if classes.ndim != 1:
        raise ValueError(f"classes must be 1-D (one label per class), got shape {classes.shape}")
    return readonly(classes)


def _names(value: Any) -> tuple[str, ...] | None:
    return None if value is None else tuple(str(name) for name in value)


@attrs.frozen(eq=False)
class Model:
    """A trained network with what it needs to answer in its user's terms.

    Args:
        params: the network's parameters (``result.state.params`` of a fit, or a
            checkpoint's).
        loss: the loss it was trained with; it decides the task (see the module's table).
        classes: classifiers only: the label of each class, in the order of the network's
            outputs (K labels for a K-way softmax; 2 for a single sigmoid output, the
            negative class first; k for k multi-label outputs, naming each output). None
            means the labels are the class ids themselves (0..K-1; 0 and 1).
        scaler: None, or the scaling of the training data (``transform_x`` applied to the
            inputs before the network, ``inverse_y`` to regression outputs after it).
        feature_names: the names of the input features, checked against a DataFrame's
            columns when one is passed.

    Every method takes ``x`` of shape (n_samples, n_features) (a NumPy array, a list of
    rows, or a pandas DataFrame) and refuses, before computing, an ``x`` that is not 2-D,
    has another number of features, holds NaN or inf, or names its columns differently.

    Example::

        model = Model(result.state.params, "categorical_crossentropy",
                      classes=["setosa", "versicolor", "virginica"])
        model.predict(x)            # array(['setosa', 'virginica', ...])
        model.predict_proba(x)      # (n_samples, 3), rows summing to 1
        model.evaluate(x, labels)   # {'loss': 0.21, 'accuracy': 0.95}
    """

    params: Params = attrs.field(validator=_is_params)
    loss: str = attrs.field(validator=checks.one_of(LOSSES))
    classes: Array | None = attrs.field(default=None, converter=_labels)
    scaler: Scaling | None = attrs.field(default=None, validator=_is_scaler)
    feature_names: tuple[str, ...] | None = attrs.field(default=None, converter=_names)

    def __repr__(self) -> str:
        """The network at a glance, not its weights (``model.params`` holds those)."""
        arch = self.params.architecture
        parts = [arch.describe(), f"{arch.parameter_count:,} parameters",
                 str(self.params.dtype), f"task {self.task!r}"]
        if self.classes is not None:
            parts.append(f"classes {self.classes.tolist()[:10]}")
        if self.feature_names is not None:
            parts.append(f"features {list(self.feature_names)[:10]}")
        return f"Model({', '.join(parts)})"

    def __attrs_post_init__(self) -> None:
        arch = self.params.architecture
        expected = {"categorical": ("softmax", arch.output_dim),
                    "binary": ("sigmoid", 2 if arch.output_dim == 1
                               else arch.output_dim)}.get(target_kind(self.loss))
        if expected is None:
            if self.classes is not None:
                raise ValueError(f"classes are for classifiers, and this model's loss is "
                                 f"{self.loss!r}; pass classes=None")
        elif arch.output_activation != expected[0]:
            raise ValueError(f"loss {self.loss!r} needs a {expected[0]} output layer, this "
                             f"network's is {arch.output_activation!r}")
        elif self.classes is not None and len(self.classes) != expected[1]:
            raise ValueError(f"this network has {arch.output_dim} output unit(s), so its "
                             f"{self.task} task has {expected[1]} labels, but {len(self.classes)}"
                             f" classes were given: {list(self.classes)}")
        if self.feature_names is not None and len(self.feature_names) != arch.input_dim:
            raise ValueError(f"{len(self.feature_names)} feature names were given but the "
                             f"network takes {arch.input_dim} features")

    # -- what the model is --

    @property
    def task(self) -> str:
        """"multiclass", "binary", "multilabel" or "regression"."""
        kind = target_kind(self.loss)
        if kind == "categorical":
            return "multiclass"
        if kind == "binary":
            return "binary" if self.params.architecture.output_dim == 1 else "multilabel"
        return "regression"

    @property
    def is_classifier(self) -> bool:
        return self.loss in CLASSIFICATION_LOSSES

    @property
    def n_features(self) -> int:
        return self.params.architecture.input_dim

    @property
    def labels(self) -> Array:
        """The label of each class (or multi-label output): ``classes``, or the ids."""
        if not self.is_classifier:
            raise ValueError(f"a regression model (loss {self.loss!r}) has no class labels")
        if self.classes is not None:
            return self.classes
        n = self.params.architecture.output_dim
        return np.arange(2 if n == 1 else n)

    # -- predicting --

    def decision_function(self, x: Any) -> Array:
        """The output layer's pre-activation (the logits): (n_samples,) for a binary
        classifier (positive means the second class), else (n_samples, n_outputs)."""
        self._need_classifier("decision_function")
        Z = self._outputs(x)[1]
        return Z[:, 0] if self.task == "binary" else Z

    def predict_proba(self, x: Any) -> Array:
        """Class probabilities: (n_samples, n_classes) rows summing to 1 for multi-class and
        binary (columns in ``labels`` order, as scikit-learn gives them); for multi-label,
        each output's own probability, (n_samples, n_outputs)."""
        self._need_classifier("predict_proba")
        A = self._outputs(x)[0]
        if self.task == "binary":
            return np.column_stack([1 - A[:, 0], A[:, 0]])
        return A

    def predict(self, x: Any) -> Array:
        """Labels (n_samples,) for multi-class and binary; a 0/1 indicator matrix
        (n_samples, n_outputs) for multi-label; for regression the values in the target's
        units, (n_samples,) for one output, else (n_samples, n_outputs).

        The class is the largest logit (multi-class) or a positive logit (binary,
        multi-label), so ``predict`` agrees with ``decision_function`` in every case, even
        where a probability rounds to exactly 0.5."""
        A, Z = self._outputs(x)
        if self.task == "multiclass":
            return self.labels[Z.argmax(axis=1)]
        if self.task == "binary":
            return self.labels[(Z[:, 0] > 0).astype(np.intp)]
        if self.task == "multilabel":
            return (Z > 0).astype(np.intp)
        y = np.asarray(A, np.float64)   # values in float64 whatever the network computes in
        if self.scaler is not None:
            y = self.scaler.inverse_y(y)
        return y[:, 0] if y.shape[1] == 1 else y

    def evaluate(self, x: Any, y: Any) -> dict[str, float]:
        """``{"loss": ..., "accuracy": ...}`` on ``(x, y)`` (accuracy for classifiers only;
        for multi-label the share of correct labels). ``y`` holds labels as ``predict``
        gives them. The loss is measured where the network computes: on scaled targets for
        a regression with a scaler, so it compares with the training history."""
        xs = self._inputs(x)
        targets = self.encode(y)
        if self.scaler is not None and not self.is_classifier:
            targets = self.scaler.transform_y(np.asarray(targets, np.float64))
        targets = check_targets(targets, len(xs), self.loss, self.params.architecture,
                                self.params.dtype)
        loss, accuracy = score(self.params, xs, targets, self.loss)
        return {"loss": loss, "accuracy": accuracy} if self.is_classifier else {"loss": loss}

    def encode(self, y: Any) -> Array:
        """Targets as the network computes with them: labels -> class ids (multi-class),
        labels -> 0/1 (binary); multi-label indicators and regression values unchanged.

        Raises:
            ValueError: a label that is not one of ``labels``, naming it.
        """
        if self.task not in ("multiclass", "binary"):
            return np.asarray(y)
        return encode_labels(y, self.labels)

    # -- the shared path --

    def _need_classifier(self, method: str) -> None:
        if not self.is_classifier:
            raise ValueError(f"{method} is for classifiers, and this model is a regression "
                             f"(loss {self.loss!r}); use predict")

    def _inputs(self, x: Any) -> Array:
        self._check_columns(x)
        arch, dtype = self.params.architecture, self.params.dtype
        if self.scaler is None:
            return check_x(x, arch, dtype)
        scaled = self.scaler.transform_x(check_x(x, arch, np.dtype(np.float64)))
        return np.asarray(scaled, dtype=dtype)

    def _outputs(self, x: Any) -> tuple[Array, Array]:
        """``(A, Z)``: the network's output and the output layer's pre-activation."""
        A, cache = forward(self.params, self._inputs(x))
        return A, cache.pre_activations[-1]

    def _check_columns(self, x: Any) -> None:
        columns = getattr(x, "columns", None)
        if columns is None or self.feature_names is None:
            return
        names = tuple(str(c) for c in columns)
        if names != self.feature_names:
            raise ValueError(f"x's columns {list(names)} are not the features the model was "
                             f"trained on, {list(self.feature_names)}; select and order "
                             "them as in training (x[model.feature_names])")


def encode_labels(y: Any, classes: Sequence[Any] | Array) -> Array:
    """The position of each label of ``y`` (n_samples,) in ``classes``, as intp ids.

    Raises:
        ValueError: ``y`` is not 1-D, or holds a label not in ``classes`` (the message names
            the first few unknown ones and the known ones).
    """
    y, classes = np.asarray(y), np.asarray(classes)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"class labels must be 1-D (n_samples,), got shape {y.shape}")
    order = np.argsort(classes, kind="stable")
    sorted_classes = classes[order]
    where = np.searchsorted(sorted_classes, y).clip(0, len(classes) - 1)
    unknown = sorted_classes[where] != y
    if np.any(unknown):
        bad = list(dict.fromkeys(y[unknown].tolist()))
        raise ValueError(f"y holds label(s) {bad[:5]} that the model does not know; its "
                         f"classes are {classes.tolist()}")
    return order[where]
