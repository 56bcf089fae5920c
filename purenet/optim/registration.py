"""Registration of a user's own gradient transforms, in Optax's shape.

A transform is a factory of hyperparameters that returns a pair of pure functions,
``init(params) -> state`` and ``update(grads, state, params) -> (updates, state)`` (a
tuple, or anything with ``.init`` and ``.update``, as an ``optax.GradientTransformation``),
whose state is a small frozen attrs record with fields of the kinds a checkpoint can hold
(``purenet.optim.states.FIELD_KINDS``: ``int`` counters, finite ``float`` numbers,
``Grads`` trees). ``register_transform`` checks it on a small network in float64 and float32 and
returns a constructor that ``chain`` composes with the built-ins; experiment files and
checkpoints name it, with its hyperparameters as plain data.
"""

from __future__ import annotations

import inspect
import math
from typing import Any, Callable, Mapping

import attrs
import numpy as np

from purenet.core.records import Architecture, Dense, Grads, LayerSpec, Params, tree_leaves
from purenet.errors import SettingError
from purenet.optim.base import Optimizer
from purenet.optim.optimizers import TRANSFORMS
from purenet.optim.states import COUNT, NUMBER, STATE_RECORDS, TREE, field_kinds

# What a hyperparameter may be: what a TOML value and a checkpoint's JSON carry.
_PLAIN = (bool, int, float, str)
_USER_KINDS = {COUNT: int, NUMBER: float, TREE: Grads}   # what a user's state record holds
_PROBE_LAYERS = (LayerSpec(3, 2, "relu"), LayerSpec(2, 1, "sigmoid"))


def register_transform(name: str, factory: Callable[..., Any], *,
                       example: Mapping[str, Any] | None = None,
                       replace: bool = False) -> Callable[..., Optimizer]:
    """Make ``name`` a gradient transform, as ``"clip_by_value"`` is, and return its
    constructor (``clip = register_transform("my_clip", my_clip); chain(clip(0.5), adam())``).

    Args:
        name: a lowercase identifier that no built-in transform has.
        factory: ``factory(**hyperparams)`` returning ``(init, update)`` or an object with
            ``.init`` and ``.update``; its parameters are named, with numbers, bools or
            strings as values.
        example: hyperparameters to probe it with, for those without a default.
        replace: register ``name`` anew if it is registered already.

    Raises:
        SettingError: a bad name or signature, or an ``init``/``update`` that fails on a
            small network, changes its inputs, gives arrays of other shapes or dtypes,
            another state record, a state record a checkpoint cannot hold, or other results
            for the same inputs.
    """
    TRANSFORMS.check_new(name, replace)
    what = f"transform {name!r}"
    signature = _signature(factory, what)
    constructor = _constructor(name, factory, signature)
    probe = {k: p.default for k, p in signature.parameters.items() if p.default is not p.empty}
    probe.update(example or {})
    missing = [k for k in signature.parameters if k not in probe]
    if missing:
        raise SettingError(what, f"needs values for {missing} to be checked: give them "
                           "defaults, or pass example={...} to register_transform")
    try:
        transform = constructor(**probe)
    except SettingError:
        raise
    except Exception as error:
        raise SettingError(what, f"{name}(**{probe}) failed: {type(error).__name__}: "
                           f"{error}") from error
    state_class = _probe(transform, what)
    record = state_class.__name__
    if STATE_RECORDS.get(record) is not state_class:
        if STATE_RECORDS.is_user(record) and not replace:
            raise SettingError(what, f"has a state record named {record!r}, as another "
                               "transform's is; checkpoints name records by class name, so "
                               "rename the class (or pass replace=True)")
        STATE_RECORDS.add(record, state_class, replace=True)   # never a built-in's name
    constructor.state_record = state_class
    TRANSFORMS.add(name, constructor, replace=replace)
    return constructor


def forget_transform(name: str) -> None:
    """Forget the registered transform ``name``, and its state record unless another
    registered transform keeps one of that name (``purenet.extend.unregister``)."""
    constructor = TRANSFORMS.get(name)
    TRANSFORMS.remove(name)
    record = getattr(constructor, "state_record", None)
    if record is not None and STATE_RECORDS.is_user(record.__name__) and not any(
            getattr(TRANSFORMS[t], "state_record", None) is record for t in TRANSFORMS):
        STATE_RECORDS.remove(record.__name__)


def _signature(factory: Any, what: str) -> inspect.Signature:
    if not callable(factory):
        raise SettingError(what, f"factory must be a function, got a {type(factory).__name__}")
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError) as error:
        raise SettingError(what, f"factory has no signature to read: {error}") from None
    for p in signature.parameters.values():
        if p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            raise SettingError(what, f"factory{signature}: every hyperparameter must have a "
                               f"name (experiment files and checkpoints give them by name); "
                               f"{p} has none")
        if p.default is not p.empty and not isinstance(p.default, _PLAIN):
            raise SettingError(what, f"factory's default {p.name}={p.default!r} is not a "
                               "number, bool or string")
    return signature


def _constructor(name: str, factory: Callable[..., Any],
                 signature: inspect.Signature) -> Callable[..., Optimizer]:
    def constructor(*args: Any, **kwargs: Any) -> Optimizer:
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as error:
            raise SettingError(name, f"{error}; {name} takes {signature}") from None
        bound.apply_defaults()
        hyperparams = {k: _plain(name, k, v) for k, v in bound.arguments.items()}
        init, update = _pair(factory(**hyperparams), name)
        return Optimizer(name, hyperparams, init, _checked(update, name))

    constructor.__signature__ = signature
    constructor.__name__ = constructor.__qualname__ = name
    constructor.__doc__ = factory.__doc__
    return constructor


def _plain(name: str, key: str, value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if not isinstance(value, _PLAIN):
        raise SettingError((name, key), f"must be a number, bool or string (what a "
                           f"checkpoint records), got a {type(value).__name__}")
    return value


def _pair(made: Any, name: str) -> tuple[Callable, Callable]:
    if hasattr(made, "init") and hasattr(made, "update"):
        made = (made.init, made.update)
    if not (isinstance(made, tuple) and len(made) == 2 and all(map(callable, made))):
        raise SettingError(name, "its factory must return (init, update) or an object with "
                           f".init and .update, got a {type(made).__name__}")
    return made


def _checked(update: Callable, name: str) -> Callable:
    # Cheap checks every step: a wrong return surfaces here, named, not at the next save.
    def checked_update(grads: Grads, state: Any, params: Params | None = None):
        result = update(grads, state, params)
        if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], Grads)
                and type(result[1]) is type(state)):
            found = f"({', '.join(map(_described, result))})" if isinstance(result, tuple) \
                else _described(result)
            raise TypeError(f"transform {name!r}: update must return (Grads, "
                            f"{type(state).__name__}), got {found}")
        return result

    return checked_update


# --- the probe ------------------------------------------------------------------------


def _probe_network(dtype: Any) -> tuple[Params, Grads]:
    rng = np.random.default_rng(0)
    shapes = [(s.input_dim, s.output_dim) for s in _PROBE_LAYERS]
    layers = lambda scale: tuple(Dense((rng.standard_normal(s) * scale).astype(dtype),
                                       (rng.standard_normal(s[1]) * scale).astype(dtype))
                                 for s in shapes)
    return Params(layers(1.0), Architecture(_PROBE_LAYERS)), Grads(layers(3.0))


def _probe(transform: Optimizer, what: str) -> type:
    """Run ``transform`` on a small network; return its state record's class."""
    classes = set()
    for dtype in (np.float64, np.float32):
        params, grads = _probe_network(dtype)
        state = _pure(transform.init, (params,), f"{what}: init(params)")
        _state_record(state, params, f"{what}: init(params)")
        for _ in range(2):
            updates, new = _pure(transform.update, (grads, state, params),
                                 f"{what}: update(grads, state, params)")
            _same_tree(updates, params, f"{what}: update's updates")
            _state_record(new, params, f"{what}: update's state")
            state, grads = new, updates
        classes.add(type(state))
    return classes.pop()


def _pure(function: Callable, args: tuple, what: str) -> Any:
    """``function(*args)`` twice: the same result both times, the arguments unchanged."""
    from purenet.testing.trees import differences   # the kit imports the training loop

    before = [_copy(a) for a in args]
    results = []
    for _ in range(2):
        try:
            with np.errstate(all="ignore"):
                results.append(function(*args))
        except SettingError:
            raise
        except Exception as error:
            raise SettingError(what, f"failed on a small network: {type(error).__name__}: "
                               f"{error}") from error
    for a, b in zip(args, before):
        if next(differences(a, b), None) is not None:
            raise SettingError(what, "changed its argument in place; a pure function returns "
                               "new arrays and leaves its inputs as they are")
    first = next(differences(results[0], results[1]), None)
    if first is not None:
        raise SettingError(what, f"gave two results for the same inputs ({first}); resume "
                           "and replay need the same numbers every time")
    return results[0]


def _copy(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.copy()
    if attrs.has(type(value)):
        return attrs.evolve(value, **{f.name: _copy(getattr(value, f.name))
                                      for f in attrs.fields(type(value)) if f.init})
    if isinstance(value, tuple):
        return tuple(map(_copy, value))
    return value


def _state_record(state: Any, params: Params, what: str) -> None:
    cls = type(state)
    if not attrs.has(cls) or not _frozen(state):
        raise SettingError(what, f"must return a frozen attrs record (@attrs.frozen), got "
                           f"{_described(state)}")
    try:
        kinds = field_kinds(cls)
    except (TypeError, NameError) as error:
        raise SettingError(what, f"{error}") from None
    odd = [f for f, kind in kinds.items() if kind not in _USER_KINDS]
    if odd:
        raise SettingError(what, f"{cls.__name__}.{odd[0]} is of a kind a user's state record "
                           "cannot hold; its fields are int, float and Grads only")
    for field, kind in kinds.items():
        value = getattr(state, field)
        expected = _USER_KINDS[kind]
        if type(value) is not expected or (kind == COUNT and not 0 <= value < 2**63) or (
                kind == NUMBER and not math.isfinite(value)):
            raise SettingError(what, f"{cls.__name__}.{field} is {_described(value)}; its "
                               f"annotation asks for {expected.__name__}"
                               + (" from 0 to 2**63-1" if kind == COUNT else "")
                               + (", finite" if kind == NUMBER else "")
                               + (" (purenet.core.records.zeros_like(params) is one)"
                                  if kind == TREE else ""))
        if kind == TREE:
            _same_tree(value, params, f"{what}: {cls.__name__}.{field}")


def _frozen(record: Any) -> bool:
    try:
        setattr(record, "_purenet_probe", None)
    except attrs.exceptions.FrozenInstanceError:
        return True
    except AttributeError:   # slots, but not frozen
        return False
    object.__delattr__(record, "_purenet_probe")
    return False


def _same_tree(tree: Any, params: Params, what: str) -> None:
    if not isinstance(tree, Grads):
        raise SettingError(what, f"must be a Grads, got {_described(tree)}")
    for leaf, like in zip(tree_leaves(tree), tree_leaves(params)):
        if not isinstance(leaf, np.ndarray) or leaf.shape != like.shape or leaf.dtype != like.dtype:
            raise SettingError(what, f"must hold arrays of the parameters' shapes and dtype "
                               f"({like.shape}, {like.dtype}), got {_described(leaf)}")
        if not np.isfinite(leaf).all():
            raise SettingError(what, "holds NaN or inf for finite gradients")


def _described(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    if attrs.has(type(value)) or isinstance(value, tuple):
        return f"a {type(value).__name__}"
    return f"a {type(value).__name__} {value!r:.60}"
