"""Where an experiment's data comes from, and how it is split and standardised.

``SOURCES`` maps a name to a scikit-learn generator or bundled dataset; ``FILE_LOADERS``
maps a file extension to a reader of the user's own data. Everything is deterministic from
the experiment's seed: generators without a ``random_state`` get the seed, the test split is
``train_test_split(random_state=seed)``, the validation split ``data.train_validation_split``.
So a resumed run, ``purenet evaluate`` and ``purenet plot`` all rebuild the same split.
"""

from __future__ import annotations

import csv
import importlib
import inspect
import json
import os
from typing import Any, Callable, Mapping, NamedTuple

import attrs

from purenet.core import checks
from purenet.errors import MissingColumnError, SettingError, SettingTypeError
import numpy as np

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
        if not os.path.isfile(self.path):
            raise SettingError("path", f"no such file: {self.path}")
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


def read_csv(path: str) -> tuple[list[str], Array]:
    """``(column_names, values)`` of a CSV file of numbers with a header row."""
    try:
        with open(path, newline="") as fh:
            header = next(csv.reader(fh), None)
    except FileNotFoundError:
        raise FileNotFoundError(f"no such file: {path}") from None
    if not header:
        raise ValueError(f"{path} is empty; a CSV file needs a header row of column names")
    names = [h.strip() for h in header]
    try:
        values = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2, dtype=np.float64)
    except ValueError as error:
        raise ValueError(f"{path}: every value after the header must be a number: "
                         f"{error}") from None
    if values.size and values.shape[1] != len(names):
        raise ValueError(f"{path} has {len(names)} header columns but {values.shape[1]} "
                         "values per row")
    if not values.size:
        raise ValueError(f"{path} has a header but no rows of data")
    return names, values


def _read_csv(path: str, target: str) -> tuple[list[str], Array, Array, str]:
    return _columns(path, *read_csv(path), target)


def _columns(path: str, names: list[str], values: Array, target: str):
    if target not in names:
        raise MissingColumnError(f"{path} has no column {target!r}; its columns are {names}")
    t = names.index(target)
    features = [n for i, n in enumerate(names) if i != t]
    return features, np.delete(values, t, axis=1), values[:, t], target


def _read_npz(path: str, target: str) -> tuple[list[str], Array, Array, str]:
    """Features are every array but ``target``, in the file's order (a 1-D array is one
    column, a 2-D array several)."""
    with np.load(path, allow_pickle=False) as f:
        arrays = {name: f[name] for name in f.files}
    if target not in arrays:
        raise MissingColumnError(f"{path} has no array {target!r}; its arrays are {list(arrays)}")
    names, columns = [], []
    for name, array in arrays.items():
        if name == target:
            continue
        array = array.reshape(len(array), -1)
        names += [name] if array.shape[1] == 1 else [f"{name}{j}" for j in range(array.shape[1])]
        columns.append(array.astype(np.float64))
    if not columns:
        raise ValueError(f"{path} holds only the target array {target!r}, no features")
    return names, np.hstack(columns), arrays[target], target


FILE_LOADERS: dict[str, Callable[[str, str], tuple[list[str], Array, Array, str]]] = {
    ".csv": _read_csv, ".npz": _read_npz,
}


def read_file(path: str, target: str) -> tuple[list[str], Array, Array, str]:
    """``(feature_names, x, y, target)`` from a CSV or NPZ file with a target column."""
    extension = os.path.splitext(path)[1].lower()
    if extension not in FILE_LOADERS:
        raise ValueError(f"unsupported file type {extension!r} for {path}; expected one of "
                         f"{sorted(FILE_LOADERS)}")
    return FILE_LOADERS[extension](path, target)


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
class Scaler:
    """Per-feature ``(x - x_mean) / x_scale`` (and the same for regression targets), with
    the names of the features and the target. Means and scales come from the training
    part alone; a constant feature gets scale 1."""

    feature_names: tuple[str, ...] = attrs.field(converter=tuple)
    target: str
    x_mean: Array | None = None
    x_scale: Array | None = None
    y_mean: Array | None = None
    y_scale: Array | None = None

    def transform_x(self, x: Array) -> Array:
        return x if self.x_mean is None else (x - self.x_mean) / self.x_scale

    def transform_y(self, y: Array) -> Array:
        return y if self.y_mean is None else (y - self.y_mean) / self.y_scale

    def inverse_y(self, y: Array) -> Array:
        return y if self.y_mean is None else y * self.y_scale + self.y_mean

    def to_json(self) -> str:
        plain = {f.name: getattr(self, f.name) for f in attrs.fields(Scaler)}
        return json.dumps({k: v.tolist() if isinstance(v, np.ndarray) else v
                           for k, v in plain.items()}, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "Scaler":
        plain = json.loads(text)
        arrays = {k: None if plain.get(k) is None else np.asarray(plain[k], dtype=np.float64)
                  for k in ("x_mean", "x_scale", "y_mean", "y_scale")}
        return cls(plain["feature_names"], plain["target"], **arrays)


def _moments(a: Array) -> tuple[Array, Array]:
    scale = a.std(axis=0)
    return a.mean(axis=0), np.where(scale > 0, scale, 1.0)


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


def split(spec: DataSpec, seed: int, classifier: bool) -> Splits:
    """Load the data and split it: test part, then validation part, then fit the scaler."""
    names, x, y, target = load_arrays(spec)
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


def select_features(names: list[str], x: Array, scaler: Scaler, path: str) -> Array:
    """The columns of a user's file that the network takes, in the training order: by name
    when the file has them all; else every column but the target's, when the count fits."""
    wanted = list(scaler.feature_names)
    if all(n in names for n in wanted):
        return x[:, [names.index(n) for n in wanted]]
    if scaler.target in names:
        x = np.delete(x, names.index(scaler.target), axis=1)
    if x.shape[1] == len(wanted):
        return x
    raise ValueError(f"{path} has columns {names}; the network takes {len(wanted)} features "
                     f"({', '.join(wanted[:8])}{', ...' if len(wanted) > 8 else ''})")
