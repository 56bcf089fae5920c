"""Experiment files: a TOML file -> a frozen ``Experiment`` record.

An experiment file is the run record (``purenet.RunConfig``: its fields are the file's
top-level keys, ``[[layers]]``, ``[optimizer]`` and ``[early_stopping]``) plus a name, the
data and the checkpoint policy::

    name = "moons"          # default: the file's stem; the run goes to runs/<name>
    seed = 0                # init, data order, dropout, splits, generators' random_state
    epochs = 200
    batch_size = 32         # or "full"

    [data]                  # source = "<scikit-learn generator or dataset>" + [data.args],
    source = "make_moons"   # or path = "file.csv|.npz" (relative to this file) + target
    test_size = 0.2

    [[layers]]              # the tutorial's list of dicts, one table per layer
    input_dim = 2
    output_dim = 32
    activation = "relu"

    [optimizer]             # name + the factory's arguments (purenet.optim)
    name = "adam"
    clip_by_global_norm = 1.0
    [optimizer.learning_rate]       # a number, or a schedule (purenet.optim.schedules)
    schedule = "warmup_cosine_decay"
    peak_value = 0.01

    [checkpoint]            # every_steps, every_epochs, keep (or "all"), keep_best, monitor

cattrs structures the file into the records and their validators check it; every problem
is an ``ExperimentError`` naming the dotted key, the file and its line.
"""

from __future__ import annotations

import copy
import functools
import os
from typing import Any, Mapping, Sequence

import attrs

from purenet.checkpoint.options import CheckpointOptions
from purenet.core import checks
from purenet.errors import ExperimentError, SettingError
from purenet.experiment.datasets import DataSpec, with_defaults
from purenet.experiment.schema import Source, parse_override, read_toml, set_dotted
from purenet.train.config import RunConfig, setting_names, structure
from purenet.train.config import converter as run_converter

__all__ = ["Experiment", "ExperimentError", "load_experiment", "parse_experiment"]

# The keys an experiment file has besides the run record's.
EXPERIMENT_KEYS = ("name", "data", "checkpoint")
# What an experiment file must say, though Python has defaults for some.
REQUIRED_KEYS = {"epochs": "epochs = N (how long it trains)",
                 "layers": "one [[layers]] table per layer", "data": "a [data] table"}
# Settings that may change when a run is resumed: they do not touch its arithmetic.
RESUMABLE_KEYS = ("name", "epochs", "checkpoint")


def run_name(instance: Any, attribute: Any, name: Any) -> None:
    """A run's name names a directory under ``runs/``: one plain path component. Only
    ``--run-dir`` (``run_dir=``) chooses a path."""
    checks.string(instance, attribute, name)
    bad = [c for c in ("/", "\\", os.sep, os.altsep or "/", "\0") if c in name]
    if not name.strip() or name in (".", "..") or name.startswith(".") or bad:
        raise SettingError("name", f"must be a plain directory name (not empty or hidden, "
                           f"without path separators or '..'), got {name!r}; "
                           "to choose where the run goes, pass --run-dir DIR")
    if len(name.encode("utf-8")) > 200:
        raise SettingError("name", f"is {len(name)} characters long; a directory name "
                           "must be shorter (at most 200 bytes)")


def _policy_for(policy: CheckpointOptions, experiment: "Experiment") -> CheckpointOptions:
    """The ``[checkpoint]`` table with its monitor resolved, as the file is written back."""
    return attrs.evolve(policy, monitor=policy.monitor_for(experiment.data.validation_size > 0))


@attrs.frozen(eq=False)
class Experiment:
    """A checked experiment: the run record, its name, its data and checkpoint policy."""

    name: str = attrs.field(validator=run_name)
    run: RunConfig
    data: DataSpec
    checkpoint: CheckpointOptions = attrs.field(
        factory=CheckpointOptions, converter=attrs.Converter(_policy_for, takes_self=True))
    source: Source = attrs.field(factory=lambda: Source(None), repr=False)
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False)   # overrides applied

    def __attrs_post_init__(self) -> None:
        validation = self.data.validation_size > 0
        early = self.run.early_stopping
        if early is not None and early.monitor.startswith("val_") and not validation:
            raise SettingError(("early_stopping", "monitor"), f"{early.monitor!r} needs a "
                               "validation split: set data.validation_size (e.g. 0.1) or "
                               "monitor \"train_loss\"")
        policy = self.checkpoint
        if policy.keep_best and policy.monitor.startswith("val_") and not validation:
            raise SettingError(("checkpoint", "monitor"), f"{policy.monitor!r} needs a "
                               "validation split (data.validation_size)")
        if self.data.standardize_target and self.classifier:
            raise SettingError(("data", "standardize_target"), "only applies to regression; "
                               "a classifier's targets are class labels")

    @property
    def path(self) -> str | None:
        return self.source.path

    @property
    def classifier(self) -> bool:
        return self.run.classifier

    @property
    def architecture(self) -> Any:
        return self.run.architecture

    @property
    def loss(self) -> str:
        return self.run.loss

    def error(self, key: str | None, message: str) -> ExperimentError:
        """An ``ExperimentError`` at ``key``, located in this experiment's file."""
        return self.source.error(key, message)

    def resolved_config(self) -> dict[str, Any]:
        """Every setting, defaults filled in, as plain data (TOML- and JSON-able; absent
        optional settings are None). Loading its TOML form gives this experiment back."""
        return experiment_converter().unstructure(self)

    def with_settings(self, **settings: Any) -> "Experiment":
        """This experiment with dotted keys set (None values skipped), checked again, e.g.
        ``with_settings(epochs=10, **{"checkpoint.every_steps": 50})``."""
        settings = {k: v for k, v in settings.items() if v is not None}
        if not settings:
            return self
        raw = copy.deepcopy(dict(self.raw))
        options = dict(self.source.overrides)
        for key, value in settings.items():
            option = f"{key}={value}"
            set_dotted(raw, key, value, option)
            options[key] = option
        return parse_experiment(raw, Source(self.source.path, self.source.text, options))


@functools.cache
def experiment_converter() -> Any:
    """The run record's converter, taught the experiment's own records."""
    from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

    conv = run_converter().copy()
    keep = {"keep": override(struct_hook=_keep, unstruct_hook=lambda k: "all" if k is None else k)}
    conv.register_structure_hook(CheckpointOptions, make_dict_structure_fn(
        CheckpointOptions, conv, **keep))
    conv.register_unstructure_hook(CheckpointOptions, make_dict_unstructure_fn(
        CheckpointOptions, conv, **keep))
    conv.register_structure_hook_func(lambda kind: kind == dict[str, Any],
                                      lambda value, _: _plain_table(value))
    conv.register_unstructure_hook(DataSpec, DataSpec.config)
    conv.register_unstructure_hook(Experiment, lambda e: {
        "name": e.name, **e.run.to_dict(), "data": e.data.config(),
        "checkpoint": conv.unstructure(e.checkpoint)})
    return conv


def _keep(value: Any, _: Any) -> int | None:
    return None if value == "all" else value


def _plain_table(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SettingError((), f"must be a table, got {checks.describe(value)}")
    return value


def load_experiment(path: str | os.PathLike, overrides: Sequence[str] = ()) -> Experiment:
    """Read and check the experiment file ``path``, with ``overrides`` such as
    ``"optimizer.learning_rate=0.01"`` (values read as TOML values) applied first.

    Raises:
        ExperimentError: naming the key, the file and the line of the problem.
    """
    path = os.fspath(path)
    text, raw = read_toml(path)
    options = {}
    for option in overrides:
        key, value = parse_override(option)
        set_dotted(raw, key, value, f"--set {option}")
        options[key] = f"--set {option}"
    return parse_experiment(raw, Source(path, text, options))


def _where_it_belongs(key: str, allowed: Sequence[str]) -> str:
    """A hint for a top-level key that belongs in a table (``learning_rate``)."""
    tables = {"learning_rate": "optimizer",
              **{f.name: "data" for f in attrs.fields(DataSpec)},
              **{f.name: "checkpoint" for f in attrs.fields(CheckpointOptions)}}
    if key in tables:
        return (f" ({key} belongs in the [{tables[key]}] table: {tables[key]}.{key}, e.g. "
                f"--set {tables[key]}.{key}=...)")
    return checks.did_you_mean(key, allowed)


def parse_experiment(raw: Mapping[str, Any], source: Source) -> Experiment:
    """An ``Experiment`` from the parsed contents of an experiment file."""
    conv = experiment_converter()
    run_keys = setting_names()
    allowed = sorted({*run_keys, *EXPERIMENT_KEYS})
    for key in raw:
        if key not in allowed:
            raise source.error(key, "unknown key; expected one of "
                               f"{allowed}{_where_it_belongs(key, allowed)}")
    for key, needs in REQUIRED_KEYS.items():
        if key not in raw:
            raise source.error(key, f"is missing; an experiment needs {needs}")
    name = raw.get("name", os.path.splitext(os.path.basename(source.path))[0]
                   if source.path else "experiment")
    base = os.path.dirname(os.path.abspath(source.path)) if source.path else os.getcwd()
    try:
        run = structure({k: v for k, v in raw.items() if k in run_keys}, RunConfig)
    except SettingError as error:
        raise source.setting_error(error) from None
    parts = {}
    for key, cls, value in (("data", DataSpec, with_defaults(raw["data"], run.seed, base)),
                            ("checkpoint", CheckpointOptions, raw.get("checkpoint", {}))):
        try:
            parts[key] = structure(value, cls, conv)
        except SettingError as error:
            raise source.setting_error(error.within(key)) from None
    try:
        return Experiment(name, run, parts["data"], parts["checkpoint"], source, raw)
    except SettingError as error:
        raise source.setting_error(error) from None
