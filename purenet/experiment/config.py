"""Experiment files: a TOML file -> a frozen ``Experiment`` record.

An experiment file names everything a run needs (keys, defaults and meaning in
``scripts/*.toml`` and the tables below)::

    name = "moons"          # default: the file's stem; the run goes to runs/<name>
    seed = 0                # init, data order, dropout, splits, generators' random_state
    dtype = "float32"
    epochs = 200
    batch_size = 32         # or "full"
    loss = "binary_crossentropy"   # default: from the output activation
    l2 = 0.0
    init = "he_normal"

    [data]                  # source = "<scikit-learn generator or dataset>" + [data.args],
    source = "make_moons"   # or path = "file.csv|.npz" (relative to this file) + target
    test_size = 0.2         # held out, stratified for classifiers
    validation_size = 0.1   # of what remains
    standardize = true      # x, fitted on the training part alone (standardize_target: y)
    [data.args]
    n_samples = 2000

    [[layers]]              # the tutorial's list of dicts, one table per layer
    input_dim = 2
    output_dim = 32
    activation = "relu"     # dropout = 0.1 optional

    [optimizer]             # name + the factory's arguments (purenet.optim.optimizers)
    name = "adam"
    clip_by_global_norm = 1.0      # optional, any of optim.TRANSFORMS
    [optimizer.schedule]    # optional learning-rate schedule (purenet.optim.schedules)
    name = "warmup_cosine_decay"
    peak_value = 0.01

    [early_stopping]        # optional: monitor, patience, min_delta, restore_best
    [checkpoint]            # every_steps, every_epochs, keep (or "all"), keep_best, monitor

Every problem (unknown key, wrong type, bad value, missing file) is an ``ExperimentError``
naming the dotted key, the file and its line.
"""

from __future__ import annotations

import copy
import inspect
import os
import re
from typing import Any, Mapping, Sequence

import attrs

from purenet.core.activations import ACTIVATIONS
from purenet.experiment.datasets import DataSpec, parse_data
from purenet.core.initializers import INITIALIZERS
from purenet.core.losses import CLASSIFICATION_LOSSES, LOSSES, resolve_loss
from purenet.optim.optimizers import OPTIMIZERS, TRANSFORMS, Optimizer, chain
from purenet.core.records import DTYPES, Architecture, LayerSpec
from purenet.optim.schedules import SCHEDULES
from purenet.errors import ExperimentError
from purenet.experiment.schema import (REQUIRED, Field, Source, boolean, choice, either,
                            integer, literal, number, parse_override, read_toml, set_dotted,
                            string, table)
from purenet.train.state import MONITORS, EarlyStopping

__all__ = ["Experiment", "ExperimentError", "load_experiment", "parse_experiment"]

TOP_FIELDS = {
    "name": Field(string, None), "seed": Field(integer(0), 0),
    "dtype": Field(choice(DTYPES), "float32"), "epochs": Field(integer(1)),
    "batch_size": Field(either(integer(1), literal("full", 'an integer >= 1 or "full"')), 32),
    "loss": Field(choice(LOSSES), None), "l2": Field(number(0), 0.0),
    "init": Field(choice(INITIALIZERS), "he_normal"), "shuffle": Field(boolean, True),
    "drop_last": Field(boolean, False),
}
SECTIONS = ("data", "layers", "optimizer", "early_stopping", "checkpoint")
LAYER_FIELDS = {
    "input_dim": Field(integer(1)), "output_dim": Field(integer(1)),
    "activation": Field(choice(ACTIVATIONS)), "dropout": Field(number(0, 1), 0.0),
}
EARLY_STOPPING_FIELDS = {
    "monitor": Field(choice(MONITORS), "val_loss"), "patience": Field(integer(1), 5),
    "min_delta": Field(number(0), 0.0), "restore_best": Field(boolean, True),
}
CHECKPOINT_FIELDS = {
    "every_steps": Field(integer(1), None), "every_epochs": Field(integer(1), None),
    "keep": Field(either(integer(1), literal("all", 'an integer >= 1 or "all"')), 3),
    "keep_best": Field(integer(1), None), "monitor": Field(choice(MONITORS), None),
}
# The check for an optimizer argument, by the type of its default (no default: a rate).
_ARG_CHECKS = {bool: boolean, float: number(), int: number()}
# The check for a schedule field, by its annotation (a string: the module uses
# ``from __future__ import annotations``).
_SCHEDULE_CHECKS = {"int": integer(0), "bool": boolean, "float": number(0)}


@attrs.frozen
class OptimizerSpec:
    """The ``[optimizer]`` table: a name from ``optim.OPTIMIZERS`` with its arguments, an
    optional learning-rate schedule and optional gradient transforms (clipping)."""

    name: str
    hyperparams: Mapping[str, Any]
    schedule: Mapping[str, Any] | None = None       # {"name": ..., **arguments}
    transforms: Mapping[str, Any] = attrs.field(factory=dict)   # name -> number or table

    def build(self) -> Optimizer:
        """The optimizer: ``chain(*transforms, optimizer)`` when there are transforms."""
        kwargs = dict(self.hyperparams)
        if self.schedule is not None:
            args = {k: v for k, v in self.schedule.items() if k != "name"}
            kwargs["learning_rate"] = SCHEDULES[self.schedule["name"]](**args)
        optimizer = OPTIMIZERS[self.name](**kwargs)
        clips = [TRANSFORMS[n](**a) if isinstance(a, dict) else TRANSFORMS[n](a)
                 for n, a in self.transforms.items()]
        return chain(*clips, optimizer) if clips else optimizer

    def config(self) -> dict[str, Any]:
        schedule = None if self.schedule is None else dict(self.schedule)
        return {"name": self.name, **self.hyperparams, **self.transforms, "schedule": schedule}


@attrs.frozen
class CheckpointPolicy:
    """The ``[checkpoint]`` table: ``purenet.Checkpointer``'s arguments (keep None: all)."""

    every_steps: int | None
    every_epochs: int | None
    keep: int | None
    keep_best: int | None
    monitor: str

    def config(self) -> dict[str, Any]:
        plain = attrs.asdict(self)
        return {**plain, "keep": "all" if self.keep is None else self.keep}


@attrs.frozen(eq=False)
class Experiment:
    """A checked experiment: everything ``run_experiment`` needs, as records."""

    name: str
    seed: int
    dtype: str
    epochs: int
    batch_size: int | None          # None: the full batch
    loss: str
    l2: float
    init: str
    shuffle: bool
    drop_last: bool
    data: DataSpec
    architecture: Architecture
    optimizer: OptimizerSpec
    early_stopping: EarlyStopping | None
    checkpoint: CheckpointPolicy
    source: Source = attrs.field(repr=False)
    raw: Mapping[str, Any] = attrs.field(repr=False)   # the file's contents, overrides applied

    @property
    def path(self) -> str | None:
        return self.source.path

    @property
    def classifier(self) -> bool:
        return self.loss in CLASSIFICATION_LOSSES

    def error(self, key: str | None, message: str) -> ExperimentError:
        """An ``ExperimentError`` at ``key``, located in this experiment's file."""
        return self.source.error(key, message)

    def resolved_config(self) -> dict[str, Any]:
        """Every setting, defaults filled in, as plain data (TOML- and JSON-able; absent
        optional settings are None). Loading its TOML form gives this experiment back."""
        return {
            "name": self.name, "seed": self.seed, "dtype": self.dtype, "epochs": self.epochs,
            "batch_size": "full" if self.batch_size is None else self.batch_size,
            "loss": self.loss, "l2": self.l2, "init": self.init, "shuffle": self.shuffle,
            "drop_last": self.drop_last, "data": self.data.config(),
            "layers": self.architecture.to_dicts(), "optimizer": self.optimizer.config(),
            "early_stopping": None if self.early_stopping is None
            else attrs.asdict(self.early_stopping),
            "checkpoint": self.checkpoint.config(),
        }

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


def load_experiment(path: str | os.PathLike, overrides: Sequence[str] = ()) -> Experiment:
    """Read and check the experiment file ``path``, with ``overrides`` such as
    ``"optimizer.learning_rate=0.01"`` (values read as TOML values) applied first.

    Raises:
        ExperimentError: naming the key, the file and the line of every problem.
    """
    path = os.fspath(path)
    text, raw = read_toml(path)
    options = {}
    for option in overrides:
        key, value = parse_override(option)
        set_dotted(raw, key, value, f"--set {option}")
        options[key] = f"--set {option}"
    return parse_experiment(raw, Source(path, text, options))


def parse_experiment(raw: Mapping[str, Any], source: Source) -> Experiment:
    """An ``Experiment`` from the parsed contents of an experiment file."""
    top = source.take(raw, "", TOP_FIELDS, extra=SECTIONS)
    for section in ("data", "layers", "optimizer"):
        if section not in raw:
            raise source.error(section, f"missing; an experiment needs [{section}]"
                               if section != "layers" else "missing; an experiment needs "
                               "one [[layers]] table per layer")
    architecture = _architecture(source, raw["layers"])
    try:
        loss = resolve_loss(top["loss"], architecture.output_activation)
    except ValueError as error:
        raise source.error("loss", str(error)) from None
    classifier = loss in CLASSIFICATION_LOSSES
    data = parse_data(source, raw["data"], top["seed"], classifier)
    early = _early_stopping(source, raw.get("early_stopping"), data)
    name = top["name"] or (os.path.splitext(os.path.basename(source.path))[0]
                           if source.path else "experiment")
    return Experiment(
        name=name, seed=top["seed"], dtype=top["dtype"], epochs=top["epochs"],
        batch_size=None if top["batch_size"] == "full" else top["batch_size"], loss=loss,
        l2=top["l2"], init=top["init"], shuffle=top["shuffle"], drop_last=top["drop_last"],
        data=data, architecture=architecture, optimizer=_optimizer(source, raw["optimizer"]),
        early_stopping=early, checkpoint=_checkpoint(source, raw.get("checkpoint", {}), data),
        source=source, raw=raw)


def _architecture(source: Source, raw: Any) -> Architecture:
    if not isinstance(raw, list) or not raw:
        raise source.error("layers", "must be a non-empty array of tables: one [[layers]] "
                           "table per layer, with input_dim, output_dim and activation")
    layers = [LayerSpec(**source.take(layer, f"layers[{i}].", LAYER_FIELDS))
              for i, layer in enumerate(raw)]
    for i in range(1, len(layers)):
        if layers[i].input_dim != layers[i - 1].output_dim:
            raise source.error(f"layers[{i}].input_dim", f"is {layers[i].input_dim} but the "
                               f"layer before has output_dim = {layers[i - 1].output_dim}; "
                               "they must be equal")
    if layers[-1].dropout:
        raise source.error(f"layers[{len(layers) - 1}].dropout", "the output layer cannot "
                           "have dropout; put it on a hidden layer")
    return Architecture(tuple(layers))


def _optimizer(source: Source, raw: Any) -> OptimizerSpec:
    raw = source.check("optimizer", raw, table)
    name = source.take({"name": raw.get("name")} if "name" in raw else {}, "optimizer.",
                       {"name": Field(choice(OPTIMIZERS))})["name"]
    parameters = inspect.signature(OPTIMIZERS[name]).parameters
    fields = {p.name: Field(_ARG_CHECKS.get(type(p.default), number(0)),
                            REQUIRED if p.default is inspect.Parameter.empty else p.default)
              for p in parameters.values()}
    if "schedule" in raw:
        fields.pop("learning_rate")
    fields.update({t: Field(either(number(0), table), None) for t in TRANSFORMS})
    checked = source.take(raw, "optimizer.", fields, extra=("name", "schedule"))
    hyperparams = {p: checked[p] for p in parameters if p in fields}
    transforms = {t: checked[t] for t in TRANSFORMS if checked[t] is not None}
    schedule = _schedule(source, raw["schedule"]) if "schedule" in raw else None
    spec = OptimizerSpec(name, hyperparams, schedule, transforms)
    try:
        spec.build()
    except (TypeError, ValueError) as error:
        raise _argument_error(source, spec, str(error)) from None
    return spec


def _schedule(source: Source, raw: Any) -> dict[str, Any]:
    raw = source.check("optimizer.schedule", raw, table)
    name = source.take({"name": raw["name"]} if "name" in raw else {}, "optimizer.schedule.",
                       {"name": Field(choice(SCHEDULES))})["name"]
    fields = {f.name: Field(_SCHEDULE_CHECKS.get(f.type, number(0)),
                            REQUIRED if f.default is attrs.NOTHING else f.default)
              for f in attrs.fields(SCHEDULES[name])}
    return {"name": name, **source.take(raw, "optimizer.schedule.", fields, extra=("name",))}


def _argument_error(source: Source, spec: OptimizerSpec, message: str) -> ExperimentError:
    """Point a factory's complaint ("b1 must be ...") at the key it names."""
    first = re.match(r"\w+", message)
    arg = first.group(0) if first else ""
    rest = message[len(arg):].strip()
    text = rest if rest.startswith("must") else message
    if spec.schedule is not None and arg in spec.schedule:
        return source.error(f"optimizer.schedule.{arg}", text)
    if arg in spec.hyperparams:
        return source.error(f"optimizer.{arg}", text)
    for name, args in spec.transforms.items():
        names = args if isinstance(args, dict) else inspect.signature(TRANSFORMS[name]).parameters
        if arg in names:
            return source.error(f"optimizer.{name}", text)
    return source.error("optimizer", message)


def _early_stopping(source: Source, raw: Any, data: DataSpec) -> EarlyStopping | None:
    if raw is None:
        return None
    checked = source.take(raw, "early_stopping.", EARLY_STOPPING_FIELDS)
    if checked["monitor"].startswith("val_") and not data.validation_size:
        raise source.error("early_stopping.monitor", f"{checked['monitor']!r} needs a "
                           "validation split: set data.validation_size (e.g. 0.1) or monitor "
                           "\"train_loss\"")
    return EarlyStopping(**checked)


def _checkpoint(source: Source, raw: Any, data: DataSpec) -> CheckpointPolicy:
    c = source.take(raw, "checkpoint.", CHECKPOINT_FIELDS)
    if c["every_steps"] is None and c["every_epochs"] is None:
        c["every_epochs"] = 1
    if c["monitor"] is None:
        c["monitor"] = "val_loss" if data.validation_size else "train_loss"
    if c["monitor"].startswith("val_") and c["keep_best"] and not data.validation_size:
        raise source.error("checkpoint.monitor", f"{c['monitor']!r} needs a validation split "
                           "(data.validation_size)")
    return CheckpointPolicy(c["every_steps"], c["every_epochs"],
                            None if c["keep"] == "all" else c["keep"], c["keep_best"],
                            c["monitor"])
