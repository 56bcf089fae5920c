"""Optimizers as plain data and back: ``to_config`` (``Optimizer.config()``) and its
inverse ``from_config``."""

from __future__ import annotations

import inspect
from typing import Any, Mapping, Sequence

from purenet.core.checks import check, describe, one_of
from purenet.errors import SettingError, SettingTypeError, UnknownKeyError
from purenet.optim.lbfgs import OBJECTIVE_OPTIMIZERS
from purenet.optim.objective import ObjectiveOptimizer
from purenet.optim.base import Optimizer
from purenet.optim.optimizers import OPTIMIZERS, TRANSFORMS, chain
from purenet.optim.schedules import constant, schedule_from_config


def to_config(optimizer: Optimizer) -> dict[str, Any]:
    """The optimizer as plain data (``from_config`` is the inverse).

    The canonical flat form: ``{"name": "adam", "learning_rate": 0.001, "b1": 0.9, ...}``,
    a schedule as its config dict, a constant learning rate as a float. A chain of
    built-in gradient transforms, each at most once and in ``TRANSFORMS`` order, followed by
    one optimizer is that optimizer's form plus one key per transform
    (``"clip_by_global_norm": 1.0``); any other chain is
    ``{"name": "chain", "transforms": [config, ...]}``.
    """
    if optimizer.name != "chain":
        return {"name": optimizer.name,
                **{k: _plain(v) for k, v in optimizer.hyperparams.items()}}
    *transforms, last = optimizer.hyperparams["transforms"] or [None]
    names = [t.name for t in transforms]
    if last is not None and last.name in OPTIMIZERS and all(map(TRANSFORMS.is_builtin, names)) \
            and names == [n for n in TRANSFORMS if n in names]:
        flat = to_config(last)
        for t in transforms:
            (flat[t.name],) = t.hyperparams.values()
        return flat
    return {"name": "chain",
            "transforms": [to_config(t) for t in optimizer.hyperparams["transforms"]]}


def _plain(value: Any) -> Any:
    if isinstance(value, constant):
        return float(value.value)
    if hasattr(value, "config"):
        return value.config()
    return value


def from_config(config: Mapping[str, Any]) -> Optimizer | ObjectiveOptimizer:
    """The optimizer described by ``config``, the inverse of ``Optimizer.config()``.

    Also reads purenet 0.1's form (format_version 1 checkpoints): a constant learning rate
    as ``{"schedule": "constant", "value": x}``, and ``{"name": "chain", "transforms":
    [...]}`` with each transform a full config (``{"name": "clip_by_value", "max_value":
    0.5}``). Values must have their own type: no numbers as strings, no bools as numbers.

    Raises:
        SettingError: with ``.path`` relative to the optimizer's table, e.g. ``("name",)``,
            ``("b1",)`` or ``("learning_rate", "warmup_steps")``.
    """
    if not isinstance(config, Mapping):
        raise SettingTypeError((), f"an optimizer config must be a table (dict), got "
                               f"{describe(config)}")
    names = [*OPTIMIZERS, *OBJECTIVE_OPTIMIZERS, *TRANSFORMS, "chain"]
    if "name" not in config:
        raise SettingError("name", f"is missing; expected one of {sorted(names)}")
    name = check("name", config["name"], one_of(names))
    if name == "chain":
        return _chain_from_config(config)
    factory = {**OPTIMIZERS, **OBJECTIVE_OPTIMIZERS, **TRANSFORMS}[name]
    signature = inspect.signature(factory).parameters
    flat = [t for t in TRANSFORMS if TRANSFORMS.is_builtin(t)] if name in OPTIMIZERS else []
    allowed = [*signature, *flat]
    for key in config:
        if key in TRANSFORMS and name in OBJECTIVE_OPTIMIZERS:
            raise UnknownKeyError((key,), f"cannot be used with {name}: its line search needs "
                                  "the objective's own gradient, so it takes no gradient "
                                  f"transforms; remove {key}")
        if key != "name" and key not in allowed:
            raise UnknownKeyError((key,), f"is not an argument of {name}; expected one of "
                               f"{sorted(allowed)}")
    missing = [k for k, p in signature.items() if p.default is p.empty and k not in config]
    if missing:
        raise SettingError(missing[0], f"is missing; {name} needs {missing}")
    kwargs = {k: config[k] for k in signature if k in config}
    if isinstance(kwargs.get("learning_rate"), Mapping):
        try:
            kwargs["learning_rate"] = schedule_from_config(kwargs["learning_rate"])
        except SettingError as error:
            raise error.within("learning_rate") from None
    optimizer = factory(**kwargs)
    transforms = []
    for t in flat:   # applied in the table's order, whatever the keys' order
        if t in config:
            try:
                transforms.append(TRANSFORMS[t](config[t]))
            except SettingError as error:
                raise type(error)(t, error.problem) from None
    return chain(*transforms, optimizer) if transforms else optimizer


def _chain_from_config(config: Mapping[str, Any]) -> Optimizer:
    for key in config:
        if key not in ("name", "transforms"):
            raise UnknownKeyError((key,), "is not an argument of chain; expected one of "
                               "['name', 'transforms']")
    transforms = config.get("transforms")
    if isinstance(transforms, (str, bytes, Mapping)) or not isinstance(transforms, Sequence) \
            or not transforms:
        raise SettingTypeError("transforms", f"must be a non-empty list of optimizer configs, "
                               f"got {describe(transforms)}")
    built = []
    for i, transform in enumerate(transforms):
        try:
            built.append(from_config(transform))
        except SettingError as error:
            raise error.within("transforms", i) from None
    return chain(*built)
