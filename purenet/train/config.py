"""The run record: every setting that decides a run's result, in one frozen record.

``RunConfig`` is the one place a setting lives. ``fit`` takes it (or builds it from its
keyword arguments), checkpoints store its plain form (``to_dict``) and rebuild it
(``from_dict``), resume compares two of them (``differences``), and an experiment file is
this record plus data and a checkpoint policy. Adding a setting is one field here, with
its validator; the TOML key, the checkpoint and the resume check follow.
"""

from __future__ import annotations

import contextvars
import functools
from typing import Any, Mapping

import attrs
import numpy as np

from purenet.core import checks
from purenet.core.initializers import INITIALIZERS
from purenet.core.losses import CLASSIFICATION_LOSSES, DEFAULT_LOSS, LOSSES, resolve_loss
from purenet.core.records import DTYPES, Architecture, LayerSpec, as_architecture
from purenet.errors import SettingError, SettingTypeError, UnknownKeyError
from purenet.optim import ObjectiveOptimizer, Optimizer, adam, from_config
from purenet.train.state import EarlyStopping

# A field with this metadata may change when a run is continued (``epochs`` may grow); the
# others decide the arithmetic and must match.
RESUMABLE = "resumable"
# Fields whose name in the plain form (TOML, JSON) differs: the seed's "layers".
PLAIN_NAMES = {"architecture": "layers"}
# A new run trains at least one epoch; a stored record of 0.2 may say 0 (it still loads).
MIN_EPOCHS = 1
# True while a stored record is read back (``RunConfig.from_stored``).
_STORED = contextvars.ContextVar("purenet_reading_a_stored_run_record", default=False)


def _epochs_check(instance: Any, attribute: Any, value: Any) -> None:
    checks.integer(0 if _STORED.get() else MIN_EPOCHS)(instance, attribute, value)


def _dtype_name(value: Any) -> Any:
    if isinstance(value, str):
        return value
    try:
        return np.dtype(value).name
    except TypeError:
        return value    # the validator says what is wrong


def _resolved_loss(value: str | None, config: "RunConfig") -> str:
    checks.check("loss", value, checks.optional(checks.one_of(LOSSES)))
    output = config.architecture.output_activation
    if value is None and output not in DEFAULT_LOSS:
        raise SettingError("loss", f"has no default for a {output!r} output layer; set it to "
                           f"one of {sorted(LOSSES)}")
    return resolve_loss(value, output)


def _is_optimizer(instance: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, (Optimizer, ObjectiveOptimizer)):
        raise SettingTypeError(attribute.name, "must come from purenet.optim (e.g. "
                               f"purenet.optim.adam(1e-3)), got {checks.describe(value)}")


def _objective_problems(config: "RunConfig") -> None:
    """An optimizer that takes the objective (lbfgs) searches along lines of one fixed
    function: the whole training set, and no dropout (a mask per evaluation would make
    each trial of the line search a different function)."""
    name = config.optimizer.name
    if config.batch_size is not None:
        raise SettingError("batch_size", f'must be "full" with {name} (None in Python): it '
                           "evaluates the objective on the whole training set, got "
                           f"{config.batch_size}; set batch_size = \"full\", or pick a "
                           "gradient optimizer (adam, sgd, ...) for mini-batches")
    for i, layer in enumerate(config.architecture.layers):
        if layer.dropout:
            raise SettingError(("layers", i, "dropout"), f"must be 0 with {name}, got "
                               f"{layer.dropout}: its line search needs the same objective "
                               "at every evaluation; remove the dropout or pick a gradient "
                               "optimizer")


def _is_early_stopping(instance: Any, attribute: Any, value: Any) -> None:
    if value is not None and not isinstance(value, EarlyStopping):
        raise SettingTypeError(attribute.name, "must be a purenet.EarlyStopping or None, got "
                               f"{checks.describe(value)}")


def _batch_size_check(instance: Any, attribute: Any, value: Any) -> None:
    try:
        checks.optional(checks.integer(1))(instance, attribute, value)
    except SettingError as error:
        raise type(error)("batch_size", 'must be an integer >= 1, or "full" for the full '
                          f'batch (None in Python), got {checks.describe(value)}') from None


# A step's largest matrix product (batch x fan-in x fan-out) from which a second BLAS thread
# pays; below it, threads cost more in hand-offs than they save (see default_threads).
# Measured (issue 14, 2-vCPU VM): whole fits at load ~1 ran 1.31x faster on 2 threads for
# 784-512-512-10 at batch 256 and 1.17x (minima: 1.00x) for 100-256-256-1 at batch 64;
# single float32 products, best of 15: 1.9x from 256x512x512 up, 0.8-1.2x at 1.6-4.2M.
# A full batch (batch_size None) always gets 1: the rule cannot see the sample count (the
# full-batch seed network gained 1.39x; pass threads=2 for such runs). On a busy machine
# 2 threads made every fit 4-10x slower. Re-measure on an idle machine with
# `python scripts/benchmark.py --scaling --repeats 5`.
TWO_THREADS_FROM = 256 * 512 * 512


def default_threads(architecture: Architecture, batch_size: int | None) -> int:
    """purenet's choice of BLAS threads for a run: 2 when its largest product is at least
    ``TWO_THREADS_FROM`` multiply-adds (the 784-512-512-10 network at batch 256), else 1.
    It depends on the run alone, never on the machine, so the same run gets the same bits
    wherever it is started."""
    largest = max(layer.input_dim * layer.output_dim for layer in architecture.layers)
    return 2 if (batch_size or 0) * largest >= TWO_THREADS_FROM else 1


def _default_threads(value: int | None, config: "RunConfig") -> int:
    if value is None:
        return default_threads(config.architecture, config.batch_size)
    return checks.check("threads", checks.plain_number(value), checks.integer(1, 256))


@attrs.frozen(eq=False)
class RunConfig:
    """Everything that decides a run's result.

    Attributes:
        architecture: the layers (an Architecture or the tutorial's list of dicts).
        optimizer: from ``purenet.optim``, schedule and clipping included; ``lbfgs`` (an
            ``ObjectiveOptimizer``) needs the full batch and no dropout.
        epochs: how many epochs the whole run lasts; may grow when a run is continued.
        batch_size: samples per step; None for the full batch.
        seed: decides the initial parameters, the data order and the dropout masks.
        dtype: "float32" or "float64", for parameters and computation.
        loss: a loss name; None takes the default for the output activation.
        init: the initializer of fresh parameters.
        l2: L2 penalty on the weights (``l2/2 * sum(W**2)``, PyTorch's weight_decay).
        label_smoothing: for the cross-entropy losses, train on targets
            ``y * (1 - label_smoothing) + label_smoothing / K`` (K classes; 2 for binary).
        shuffle: visit the samples in a new order each epoch.
        drop_last: skip the last, partial batch of each epoch.
        early_stopping: an ``EarlyStopping``, or None.
        threads: the BLAS threads the run computes with (OpenBLAS may sum a product in
            another order with another count, so it decides the bits). ``fit`` applies it
            for the run's duration; None chooses by ``default_threads``.
    """

    architecture: Architecture = attrs.field(converter=as_architecture)
    optimizer: Optimizer | ObjectiveOptimizer = attrs.field(factory=adam,
                                                            validator=_is_optimizer)
    epochs: int = checks.field(_epochs_check, default=10, metadata={RESUMABLE: True})
    batch_size: int | None = checks.field(_batch_size_check, default=64)
    seed: int = checks.field(checks.integer(0, 2**63 - 1), default=0)
    dtype: str = attrs.field(default="float32", converter=_dtype_name,
                             validator=checks.one_of(DTYPES))
    loss: str = attrs.field(default=None, converter=attrs.Converter(_resolved_loss,
                                                                    takes_self=True))
    init: str = attrs.field(default="he_normal", validator=checks.one_of(INITIALIZERS))
    l2: float = checks.field(checks.number(0), default=0.0)
    label_smoothing: float = checks.field(checks.number(0, 1), default=0.0)
    shuffle: bool = attrs.field(default=True, validator=checks.boolean)
    drop_last: bool = attrs.field(default=False, validator=checks.boolean)
    early_stopping: EarlyStopping | None = attrs.field(default=None,
                                                       validator=_is_early_stopping)
    threads: int = attrs.field(default=None, converter=attrs.Converter(_default_threads,
                                                                       takes_self=True))

    def __attrs_post_init__(self) -> None:
        if isinstance(self.optimizer, ObjectiveOptimizer):
            _objective_problems(self)
        if self.label_smoothing and self.loss not in CLASSIFICATION_LOSSES:
            raise SettingError("label_smoothing", f"only applies to {list(CLASSIFICATION_LOSSES)}"
                               f", and this run's loss is {self.loss!r}; set it to 0")

    @property
    def np_dtype(self) -> np.dtype:
        return np.dtype(self.dtype)

    @property
    def classifier(self) -> bool:
        return self.loss in CLASSIFICATION_LOSSES

    def to_dict(self) -> dict[str, Any]:
        """The record as plain data (JSON- and TOML-able); ``from_dict`` reverses it."""
        return converter().unstructure(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RunConfig":
        """The record from ``to_dict``'s form (missing settings take their defaults).

        Raises:
            SettingError: naming the setting (``optimizer.b1``) and what is wrong with it.
        """
        return structure(data, cls)

    @classmethod
    def from_stored(cls, data: Mapping[str, Any]) -> "RunConfig":
        """The record as a checkpoint stored it: ``from_dict``, with the bounds that only new
        runs must meet left out (a run of ``epochs = 0``, which purenet 0.2 accepted)."""
        token = _STORED.set(True)
        try:
            return structure(data, cls)
        finally:
            _STORED.reset(token)

    def differences(self, other: "RunConfig") -> list[str]:
        """Every setting but the resumable ones on which ``other`` differs from this run."""
        return differences(comparable(self), comparable(other))


def optimizer_text(optimizer: Optimizer | ObjectiveOptimizer) -> str:
    """The optimizer as people name it: ``adam + clip_by_global_norm`` (not ``chain``), and a
    chain in its form as its transforms in order, ``clip_by_running_norm + adam``."""
    plain = optimizer.config()
    if plain["name"] == "chain":
        return " + ".join(optimizer_text(t) for t in optimizer.hyperparams["transforms"])
    clips = "".join(f" + {key}" for key in plain if key.startswith("clip_"))
    return f"{plain['name']}{clips}"


def comparable(config: RunConfig) -> dict[str, Any]:
    """``config.to_dict()`` without the settings that may change when a run continues."""
    skip = {f.name for f in attrs.fields(RunConfig) if f.metadata.get(RESUMABLE)}
    return {k: v for k, v in config.to_dict().items() if k not in skip}


# --- plain data <-> records -----------------------------------------------------------------


def _strict(kind: type, name: str) -> Any:
    def structure(value: Any, _: Any) -> Any:
        ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not ok:
            raise SettingTypeError((), f"must be {name}, got {checks.describe(value)}")
        return value
    return structure


def _batch_size(value: Any, _: Any) -> int | None:
    if value is None or value == "full":
        return None
    return _strict(int, 'an integer >= 1 or "full"')(value, int)


def _architecture(value: Any, _: Any) -> Architecture:
    if not isinstance(value, list) or not value:
        raise SettingTypeError((), "must be a non-empty list of layers (one [[layers]] table "
                               f"each, with input_dim, output_dim and activation), got "
                               f"{checks.describe(value)}")
    layers = converter().structure(value, tuple[LayerSpec, ...])
    try:
        return Architecture(layers)
    except SettingError as error:   # its path starts at "layers", where cattrs already is
        raise type(error)(error.path[1:], error.problem) from None


def _optimizer(value: Any, _: Any) -> Optimizer | ObjectiveOptimizer:
    if not isinstance(value, Mapping):
        raise SettingTypeError((), "must be a table with a name (e.g. name = \"adam\"), got "
                               f"{checks.describe(value)}")
    return from_config(value)


@functools.cache
def converter() -> Any:
    """The cattrs converter between records and plain data (strict: no "1" for 1)."""
    import cattrs
    from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

    conv = cattrs.Converter(forbid_extra_keys=True)
    for kind, name in ((int, "an integer"), (float, "a number"), (bool, "true or false"),
                       (str, "a string")):
        conv.register_structure_hook(kind, _strict(kind, name))
    conv.register_structure_hook(Architecture, _architecture)
    conv.register_unstructure_hook(Architecture, Architecture.to_dicts)
    conv.register_unstructure_hook(LayerSpec, LayerSpec.to_dict)
    conv.register_structure_hook(Optimizer | ObjectiveOptimizer, _optimizer)
    conv.register_unstructure_hook(Optimizer | ObjectiveOptimizer, lambda o: o.config())
    renames = {field: override(rename=name) for field, name in PLAIN_NAMES.items()}
    conv.register_structure_hook(RunConfig, make_dict_structure_fn(
        RunConfig, conv, **renames, batch_size=override(struct_hook=_batch_size)))
    conv.register_unstructure_hook(RunConfig, make_dict_unstructure_fn(
        RunConfig, conv, **renames,
        batch_size=override(unstruct_hook=lambda b: "full" if b is None else b)))
    return conv


def _part(note: Any) -> str | int:
    """A cattrs note as a part of a setting's path: a plain-form name, or a list index."""
    if hasattr(note, "name"):
        return PLAIN_NAMES.get(note.name, note.name)
    return note.index


def setting_errors(error: BaseException, path: tuple = ()) -> list[SettingError]:
    """The problems inside a cattrs structuring error, each a SettingError with the full
    path of its setting (``("layers", 2, "activation")``)."""
    from cattrs.errors import (ClassValidationError, ForbiddenExtraKeysError,
                               IterableValidationError)

    if isinstance(error, (ClassValidationError, IterableValidationError)):
        noted, other = error.group_exceptions()
        found = [e for sub, note in noted
                 for e in setting_errors(sub, (*path, _part(note)))]
        return found + [e for sub in other for e in setting_errors(sub, path)]
    if isinstance(error, ForbiddenExtraKeysError):
        allowed = sorted(PLAIN_NAMES.get(f.name, f.name) for f in attrs.fields(error.cl))
        return [UnknownKeyError((*path, key), "unknown key; expected one of "
                             f"{allowed}{checks.did_you_mean(key, allowed)}")
                for key in sorted(error.extra_fields)]
    if isinstance(error, KeyError):
        return [SettingError(path, "is missing; this setting is required")]
    if isinstance(error, SettingError):
        return [error.within(*path)]
    return [SettingError(path, str(error))]


def setting_names() -> list[str]:
    """The run record's settings as the plain form (an experiment file) names them."""
    return [PLAIN_NAMES.get(f.name, f.name) for f in attrs.fields(RunConfig)]


def structure(data: Any, cls: type, conv: Any = None) -> Any:
    """``cls`` from plain ``data`` through the converter ``conv`` (default: the run
    record's); the first problem found is raised as a SettingError naming its path."""
    try:
        return (conv or converter()).structure(data, cls)
    except Exception as error:   # cattrs groups them; unpack to the settings at fault
        problems = setting_errors(error)
        if not problems:
            raise
        raise problems[0] from None


# --- comparing ----------------------------------------------------------------------------


def flatten(config: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts and lists as one level of dotted keys (list entries by position), so a
    difference is named down to the entry (``layers.1.activation``). An empty dict or list
    is a value of its own, so a setting set to ``[]`` is not lost."""
    if isinstance(config, dict) and config:
        items = config.items()
    elif isinstance(config, (list, tuple)) and config:
        items = enumerate(config)
    else:
        return {prefix[:-1]: config}
    flat: dict[str, Any] = {}
    for key, value in items:
        flat.update(flatten(value, f"{prefix}{key}."))
    return flat


MAX_DIFFERENCES_SHOWN = 10
GROUPED_FROM = 3   # a table with more differences than this shows as one line, when many


def listed(lines: list[str], limit: int = MAX_DIFFERENCES_SHOWN) -> str:
    """``lines`` indented one a line, at most ``limit`` of them and then how many more
    (``purenet diff`` lists every difference of two run directories)."""
    more = len(lines) - limit
    tail = [f"... {more} more: `purenet diff` lists them all"] if more > 0 else []
    return "".join(f"\n  {line}" for line in [*lines[:limit], *tail])


def differences(expected: Mapping[str, Any], found: Mapping[str, Any],
                line: str = "{key}: this run has {expected!r}, the checkpoint {found!r}"
                ) -> list[str]:
    """Every setting on which two plain configs differ, one ``line`` each, formatted with
    ``key`` (dotted), ``expected`` and ``found``; the most telling first (``telling``)."""
    expected, found = flatten(dict(expected)), flatten(dict(found))
    absent = "(not set)"
    keys = [k for k in sorted(set(expected) | set(found), key=telling)
            if expected.get(k, absent) != found.get(k, absent)]
    tables: dict[str, list[str]] = {}
    for key in keys:
        tables.setdefault(key.partition(".")[0], []).append(key)
    shown = lambda k: line.format(key=k, expected=expected.get(k, absent),
                                  found=found.get(k, absent))
    # Too many to show, across several tables: the tables differing most, one line each.
    grouped: set[str] = set()
    for top in sorted(tables, key=lambda t: -len(tables[t])):
        count = sum(1 if t in grouped else len(tables[t]) for t in tables)
        if count <= MAX_DIFFERENCES_SHOWN or len(tables) < 2 or len(tables[top]) <= GROUPED_FROM:
            break
        grouped.add(top)
    lines = []
    for top, inside in tables.items():
        if top in grouped:
            lines.append(f"{top}: {len(inside)} settings differ, the first {shown(inside[0])}")
        else:
            lines += [shown(k) for k in inside]
    return lines


# What a difference says most about which run a directory holds, first: the experiment's
# name, the network, the loss and optimizer, then the rest of the run record in its order.
_TELLING = ("name", "layers", "loss", "optimizer", "dtype", "seed", "data", "batch_size")


def telling(key: str) -> tuple:
    """The sort key of a dotted setting: its table's place in ``_TELLING`` (then the run
    record's own order), names before the settings beside them (``optimizer.name``)."""
    top, _, rest = key.partition(".")
    order = [*_TELLING, *(n for n in setting_names() if n not in _TELLING)]
    rank = order.index(top) if top in order else len(order)
    return rank, not rest.endswith("name"), key


RunSpec = RunConfig   # its name in purenet 0.1
