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

from purenet.errors import MissingColumnError
import numpy as np

from purenet.train.data import train_validation_split
from purenet.experiment.schema import Field, Source, boolean, choice, number, string, table

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


@attrs.frozen
class DataSpec:
    """The ``[data]`` table: one of ``source`` (with ``args``) or ``path`` (with ``target``)."""

    source: str | None
    path: str | None
    target: str | None
    args: Mapping[str, Any] = attrs.field(converter=lambda a: dict(sorted(a.items())))
    test_size: float = 0.2
    validation_size: float = 0.0
    standardize: bool = False
    standardize_target: bool = False

    def config(self) -> dict[str, Any]:
        plain = attrs.asdict(self)
        if self.source is None:
            del plain["args"]
        return {k: v for k, v in plain.items() if v is not None}


DATA_FIELDS = {
    "source": Field(choice(SOURCES), None), "path": Field(string, None),
    "target": Field(string, None), "args": Field(table, {}),
    "test_size": Field(number(0, 1), 0.2), "validation_size": Field(number(0, 1), 0.0),
    "standardize": Field(boolean, False), "standardize_target": Field(boolean, False),
}


def parse_data(source: Source, raw: Any, seed: int, classifier: bool) -> DataSpec:
    """The ``[data]`` table, checked: names, argument names, the file's existence."""
    d = source.take(raw, "data.", DATA_FIELDS)
    if (d["source"] is None) == (d["path"] is None):
        raise source.error("data", "give exactly one of source = \"<scikit-learn name>\" "
                           f"(one of {sorted(SOURCES)}) or path = \"<file.csv|.npz>\"")
    if d["source"] is not None:
        for key in ("target",):
            if d[key] is not None:
                raise source.error(f"data.{key}", "only applies to data read from a file "
                                   "(data.path)")
        d["args"] = _source_args(source, d["source"], d["args"], seed)
    else:
        if d["args"]:
            raise source.error("data.args", "only applies to data.source")
        base = os.path.dirname(os.path.abspath(source.path)) if source.path else os.getcwd()
        d["path"] = os.path.normpath(os.path.join(base, os.path.expanduser(d["path"])))
        extension = os.path.splitext(d["path"])[1].lower()
        if extension not in FILE_LOADERS:
            raise source.error("data.path", f"unsupported file type {extension!r}; expected "
                               f"one of {sorted(FILE_LOADERS)}")
        if not os.path.isfile(d["path"]):
            raise source.error("data.path", f"no such file: {d['path']}")
        if d["target"] is None:
            raise source.error("data.target", "missing; name the column (CSV) or array "
                               "(NPZ) that holds the targets")
    if d["standardize_target"] and classifier:
        raise source.error("data.standardize_target", "only applies to regression; a "
                           "classifier's targets are class labels")
    return DataSpec(**d)


def _source_args(source: Source, name: str, args: dict[str, Any], seed: int) -> dict[str, Any]:
    parameters = inspect.signature(SOURCES[name].load()).parameters
    allowed = sorted(p for p in parameters if p not in RESERVED_ARGS)
    for key in args:
        if key not in allowed:
            raise source.error(f"data.args.{key}", f"not an argument of {name}; expected one "
                               f"of {allowed}")
    if "random_state" in parameters and "random_state" not in args:
        args = {**args, "random_state": seed}   # never numpy's global RNG
    return args


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
