"""Where an experiment's data comes from, and how it is split and standardised.

``SOURCES`` maps a name to a scikit-learn generator or bundled dataset; ``FILE_LOADERS``
maps a file extension to a reader of the user's own data. Everything is deterministic from
the experiment's seed: generators without a ``random_state`` get the seed, the test split is
``train_test_split(random_state=seed)``, the validation split ``data.train_validation_split``.
So a resumed run, ``purenet evaluate`` and ``purenet plot`` all rebuild the same split.
"""

from __future__ import annotations

import importlib
import inspect
import os
from typing import Any, Callable, Mapping, NamedTuple

import attrs

from purenet.core import checks
from purenet.errors import MissingColumnError, SettingError, SettingTypeError
import numpy as np

from purenet.experiment import limits
from purenet.experiment.csvfile import check_names, read_csv
from purenet.experiment.npzfile import declared_arrays, read_npz
from purenet.experiment.scaler import Scaler
from purenet.train.data import train_validation_split

Array = np.ndarray


class DataSource(NamedTuple):
    function: str        # in sklearn.datasets
    bundled: bool        # a dataset scikit-learn ships (load_*), else a generator (make_*)

    def load(self) -> Callable[..., Any]:
        return getattr(importlib.import_module("sklearn.datasets"), self.function)


SOURCES: dict[str, DataSource] = {
    **{name: DataSource(name, False) for name in (
        "make_circles", "make_moons", "make_classification", "make_regression", "make_blobs",
        "make_gaussian_quantiles", "make_friedman1", "make_friedman2", "make_friedman3")},
    **{name: DataSource(name, True) for name in (
        "load_digits", "load_iris", "load_breast_cancer", "load_diabetes", "load_wine")},
}
# Arguments that would change what the function returns: purenet sets or forbids them.
RESERVED_ARGS = ("return_X_y", "as_frame", "return_centers", "coef")


def _sorted_table(args: Any) -> Any:
    return dict(sorted(args.items())) if isinstance(args, Mapping) else args


def _table(instance: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, dict):
        raise SettingTypeError(attribute.name, f"must be a table, got {checks.describe(value)}")


@attrs.frozen
class DataSpec:
    """The ``[data]`` table: one of ``source`` (with ``args``) or ``path`` (with ``target``).

    Attributes:
        source: a scikit-learn generator or bundled dataset (``SOURCES``).
        path: a CSV or NPZ file (relative paths are resolved against the experiment file).
        target: the file's column (CSV) or array (NPZ) holding the targets.
        args: the source function's arguments.
        test_size, validation_size: fractions held out (validation: of what remains).
        standardize, standardize_target: standardise x (and regression y) on the
            training part.
    """

    source: str | None = attrs.field(default=None,
                                     validator=checks.optional(checks.one_of(SOURCES)))
    path: str | None = attrs.field(default=None, validator=checks.optional(checks.string))
    target: str | None = attrs.field(default=None, validator=checks.optional(checks.string))
    args: dict[str, Any] = attrs.field(factory=dict, converter=_sorted_table, validator=_table)
    test_size: float = checks.field(checks.number(0, 1), default=0.2)
    validation_size: float = checks.field(checks.number(0, 1), default=0.0)
    standardize: bool = attrs.field(default=False, validator=checks.boolean)
    standardize_target: bool = attrs.field(default=False, validator=checks.boolean)

    def __attrs_post_init__(self) -> None:
        if (self.source is None) == (self.path is None):
            raise SettingError((), "give exactly one of source = \"<scikit-learn name>\" "
                               f"(one of {sorted(SOURCES)}) or path = \"<file.csv|.npz>\"")
        if self.source is not None:
            if self.target is not None:
                raise SettingError("target", "only applies to data read from a file (path)")
            _check_source_args(self.source, self.args)
            return
        if self.args:
            raise SettingError("args", "only applies to data.source")
        extension = os.path.splitext(self.path)[1].lower()
        if extension not in FILE_LOADERS:
            raise SettingError("path", f"has the unsupported file type {extension!r}; "
                               f"expected one of {sorted(FILE_LOADERS)}")
        try:   # only regular files: a FIFO would block, /dev/zero would fill memory
            limits.check_regular_file(self.path, "a data file")
        except (OSError, ValueError) as error:
            raise SettingError("path", str(error)) from None
        if self.target is None:
            raise SettingError("target", "is missing; name the column (CSV) or array (NPZ) "
                               "that holds the targets")

    def config(self) -> dict[str, Any]:
        plain = attrs.asdict(self)
        if self.source is None:
            del plain["args"]
        return {k: v for k, v in plain.items() if v is not None}


def _check_source_args(name: str, args: dict[str, Any]) -> None:
    parameters = inspect.signature(SOURCES[name].load()).parameters
    allowed = sorted(p for p in parameters if p not in RESERVED_ARGS)
    for key in args:
        if key not in allowed:
            raise SettingError(("args", key), f"is not an argument of {name}; expected one of "
                               f"{allowed}{checks.did_you_mean(key, allowed)}")


def with_defaults(data: Any, seed: int, base: str) -> Any:
    """The raw ``[data]`` table with what the file leaves implicit made explicit: a
    generator's ``random_state`` (the run's seed: never numpy's global RNG), and ``path``
    resolved against the experiment file's directory ``base``."""
    if not isinstance(data, Mapping):
        return data
    data = dict(data)
    source = data.get("source")
    if source in SOURCES and isinstance(data.get("args", {}), Mapping):
        parameters = inspect.signature(SOURCES[source].load()).parameters
        if "random_state" in parameters and "random_state" not in data.get("args", {}):
            data["args"] = {**data.get("args", {}), "random_state": seed}
    if isinstance(data.get("path"), str):
        data["path"] = os.path.normpath(os.path.join(base, os.path.expanduser(data["path"])))
    return data


# --- arrays ---------------------------------------------------------------------------


def _read_csv(path: str, target: str, max_bytes: int) -> tuple[list[str], Array, Array]:
    names, values = read_csv(path, max_bytes)
    if target not in names:
        raise MissingColumnError(f"{path} has no column {target!r}; its columns are {names}")
    t = names.index(target)
    return [n for n in names if n != target], np.delete(values, t, axis=1), values[:, t]


def _read_npz(path: str, target: str, max_bytes: int) -> tuple[list[str], Array, Array]:
    names, x, y = read_npz(path, target, max_bytes)
    check_names(path, [*names, target])   # "a" of 2 columns is a0, a1: a 1-D "a0" collides
    for what, columns, array in (("feature", names, x), ("target", [target], y)):
        table = array.reshape(len(array), -1)
        if table.dtype.kind in "biuf" and not np.isfinite(table).all():
            row, column = np.argwhere(~np.isfinite(table))[0]
            name = repr(columns[column]) if table.shape[1] == len(columns) \
                else f"{target!r} (column {column + 1})"
            raise ValueError(f"{path}: {what} {name} holds {table[row, column]} in row "
                             f"{row + 1} (rows and columns counted from 1); the data must be "
                             "finite numbers")
    return names, x, y


FILE_LOADERS: dict[str, Callable[[str, str, int], tuple[list[str], Array, Array]]] = {
    ".csv": _read_csv, ".npz": _read_npz,
}


def read_file(path: str, target: str, max_bytes: int | None = None
              ) -> tuple[list[str], Array, Array, str]:
    """``(feature_names, x, y, target)`` from a CSV or NPZ file with a target column,
    refused when it would take more than ``max_bytes`` (default: the memory available)."""
    extension = os.path.splitext(path)[1].lower()
    if extension not in FILE_LOADERS:
        raise ValueError(f"unsupported file type {extension!r} for {path}; expected one of "
                         f"{sorted(FILE_LOADERS)}")
    if max_bytes is None:
        max_bytes = limits.available_memory() or 2 ** 62
    return (*FILE_LOADERS[extension](path, target, max_bytes), target)


def declared_rows(spec: DataSpec, width: int) -> int:
    """How many rows the data of ``spec`` will have (or an upper bound), known before it is
    loaded, for rows of ``width`` values (features and targets): from a generator's
    arguments, an NPZ file's array headers, or a CSV file's size (a value takes at least
    2 bytes, a digit and a comma)."""
    if spec.path is not None:
        if spec.path.lower().endswith(".npz"):
            elements = sum(limits.total_elements(a.shape) for a in declared_arrays(spec.path))
        else:
            elements = limits.check_regular_file(spec.path, "a data file (.csv)") // 2
        return elements // max(width, 1)
    entry = SOURCES[spec.source]
    if entry.bundled:
        return 0    # a few thousand rows at most, shipped with scikit-learn
    n_samples = spec.args.get(
        "n_samples", inspect.signature(entry.load()).parameters["n_samples"].default)
    if isinstance(n_samples, (list, tuple)):
        n_samples = sum(n for n in n_samples if isinstance(n, int))
    return n_samples if isinstance(n_samples, int) else 0


def load_arrays(spec: DataSpec) -> tuple[list[str], Array, Array, str]:
    """``(feature_names, x, y, target_name)`` of the whole dataset."""
    if spec.path is not None:
        return read_file(spec.path, spec.target)
    entry = SOURCES[spec.source]
    if entry.bundled:
        bunch = entry.load()(**spec.args)
        x, y = bunch.data, bunch.target
        names = list(getattr(bunch, "feature_names", None) or [f"x{j}" for j in range(x.shape[1])])
    else:
        x, y = entry.load()(**spec.args)
        names = [f"x{j}" for j in range(x.shape[1])]
    return [str(n) for n in names], np.asarray(x, dtype=np.float64), np.asarray(y), "y"


# --- splits and standardisation ---------------------------------------------------------


@attrs.frozen(eq=False)
class Splits:
    """The raw (unstandardised) parts of the dataset, and the scaler fitted on ``x_train``."""

    x_train: Array
    y_train: Array
    x_val: Array | None
    y_val: Array | None
    x_test: Array | None
    y_test: Array | None
    scaler: Scaler


def split(spec: DataSpec, seed: int, loss: str) -> Splits:
    """Load the data and split it: test part, then validation part, then fit the scaler.
    A classifier's (``loss``) targets must be class labels; its splits are stratified."""
    names, x, y, target = load_arrays(spec)
    classifier = loss in CLASS_LABELS
    if classifier:
        check_class_labels(y, loss, spec.path or spec.source)
    stratify = y if classifier and y.ndim == 1 else None
    x_test = y_test = x_val = y_val = None
    if spec.test_size:
        from sklearn.model_selection import train_test_split

        x, x_test, y, y_test = train_test_split(x, y, test_size=spec.test_size,
                                                random_state=seed, stratify=stratify)
    if spec.validation_size:
        x, y, x_val, y_val = train_validation_split(x, y, spec.validation_size, seed,
                                                    stratify=classifier)
    moments: dict[str, Any] = {}
    if spec.standardize:
        moments["x_mean"], moments["x_scale"] = _moments(x)
    if spec.standardize_target:
        moments["y_mean"], moments["y_scale"] = _moments(np.asarray(y, dtype=np.float64))
    return Splits(x, y, x_val, y_val, x_test, y_test, Scaler(names, target, **moments))


def _moments(a: Array) -> tuple[Array, Array]:
    scale = a.std(axis=0)
    return a.mean(axis=0), np.where(scale > 0, scale, 1.0)


# What each classification loss takes as 1-D targets, and the test of a value.
CLASS_LABELS: dict[str, tuple[str, Callable[[Array], Array]]] = {
    "binary_crossentropy": ("labels 0 and 1", lambda y: (y == 0) | (y == 1)),
    "categorical_crossentropy": ("integer class ids 0, 1, 2, ...",
                                 lambda y: (y >= 0) & (y % 1 == 0)),
}


def check_class_labels(y: Array, loss: str, what: str) -> None:
    """Refuse targets that are not class labels for ``loss`` (say a regression file met a
    sigmoid output), suggesting the regression setup instead. One-hot and multi-label
    matrices are checked later, by ``fit``."""
    if y.ndim != 1 and not (loss == "binary_crossentropy" and y.ndim == 2):
        return
    expected, test = CLASS_LABELS[loss]
    if y.dtype.kind not in "biuf":
        raise ValueError(f"the targets of {what} are {y.dtype} values, not numbers; "
                         f"{loss} needs {expected} (encode the labels as numbers)")
    bad = ~test(y)
    if bad.any():
        values = np.unique(y[bad])
        shown = ", ".join(f"{v:g}" for v in values[:5]) + (", ..." if len(values) > 5 else "")
        raise ValueError(
            f"the targets of {what} are not class labels: {int(bad.sum())} of {y.size} are "
            f"not {expected} ({len(values)} distinct such values: {shown}); {loss} needs "
            f"{expected}. For a regression, end with a linear output layer (activation = "
            "\"linear\") and set loss = \"mean_squared_error\"")
