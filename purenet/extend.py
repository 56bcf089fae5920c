"""Registration of a user's own pieces: activations, losses and initializers.

A registered piece is a name in purenet's tables (``purenet.core.registry``), usable
wherever a built-in one is: layer dicts, ``fit``, experiment files, estimators, and
checkpoints, which hold its name only (``purenet.checkpoint.pieces``). Each registration
checks at once what can be checked on a few points: the signature, shapes and dtypes kept,
inputs left unchanged, finite values, and each derivative against central differences,
naming the worst point. Optimizer transforms register with
``purenet.optim.register_transform``.

User code reaches the command line only through ``purenet --import MODULE``: nothing is
ever imported or run because a file names it.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
from typing import Any, Callable, Sequence

import numpy as np

from purenet.core.activations import ACTIVATIONS, Activation
from purenet.core.initializers import INITIALIZERS
from purenet.core.losses import LOSSES, Loss, Weights, _mean
from purenet.errors import SettingError

Array = np.ndarray

# Probe points: off every round number, where kinks of relu-like functions sit.
_POINTS = np.array([[-3.1, -2.2, -1.3, -0.7], [-0.35, -0.05, 0.05, 0.3],
                    [0.65, 1.2, 1.9, 2.7]])
_OUTPUTS = np.array([[0.15, 0.55, 0.9], [0.3, 0.05, 0.7], [0.6, 0.85, 0.2],
                     [0.45, 0.35, 0.95]])
_TARGETS = np.array([[0.0, 1.0, 1.0], [0.25, 0.0, 0.5], [1.0, 1.0, 0.0], [0.5, 0.75, 1.0]])
_STEP = 1e-6          # of the central differences, relative to max(1, |x|)
TOLERANCE = 1e-5      # |derivative - differences| / max(1, |differences|)


def register_activation(name: str, forward: Callable[[Array], Array],
                        derivative: Callable[[Array, Array], Array], *,
                        replace: bool = False) -> None:
    """Make ``name`` an activation, as ``"relu"`` is.

    Args:
        name: a lowercase identifier that no built-in activation has.
        forward: ``forward(Z) -> A``, elementwise, keeping ``Z``'s shape and dtype.
        derivative: ``derivative(Z, A) -> dA/dZ``, elementwise, where ``A = forward(Z)``.
        replace: register ``name`` anew if it is registered already.

    Raises:
        SettingError: a bad name, a function that cannot be called so, changes its input,
            changes the shape or dtype, is not elementwise, or whose derivative disagrees
            with central differences of ``forward`` (the message names the worst point).
    """
    ACTIVATIONS.check_new(name, replace)
    what = f"activation {name!r}"
    _callable(forward, 1, f"{what}: forward(Z)")
    _callable(derivative, 2, f"{what}: derivative(Z, A)")
    for dtype in (np.float64, np.float32):
        Z = _POINTS.astype(dtype)
        A = _call(forward, (Z,), Z.shape, dtype, f"{what}: forward(Z)")
        _call(derivative, (Z, A), Z.shape, dtype, f"{what}: derivative(Z, A)")
    transposed = _call(forward, (_POINTS.T.copy(),), _POINTS.T.shape, np.float64,
                       f"{what}: forward(Z)")
    if not np.allclose(transposed.T, forward(_POINTS), rtol=1e-12, atol=0):
        raise SettingError(f"{what}: forward(Z)", "must be elementwise (each output entry a function "
                           "of its own input entry alone); rows or columns of Z changed it")
    analytic = derivative(_POINTS, forward(_POINTS))
    h = _STEP * np.maximum(1, np.abs(_POINTS))
    numeric = (forward(_POINTS + h) - forward(_POINTS - h)) / (2 * h)
    _agree(analytic, numeric, _POINTS, f"{what}: derivative(Z, A)", "Z")

    def backward(dA: Array, Z: Array, A: Array) -> Array:
        return dA * derivative(Z, A)

    ACTIVATIONS.add(name, Activation(forward, backward), replace=replace)


def register_loss(name: str, loss: Callable[[Array, Array], Array],
                  gradient: Callable[[Array, Array], Array], *, replace: bool = False) -> None:
    """Make ``name`` a loss, as ``"mean_squared_error"`` is.

    Training minimises the mean over samples of ``loss`` (weighted by ``sample_weight``,
    when given); its targets are numbers in the shape of the network's output.

    Args:
        name: a lowercase identifier that no built-in loss has.
        loss: ``loss(A, y) -> (n_samples,)``, each sample's loss from its row of the
            output ``A`` and of the targets ``y`` (both (n_samples, n_outputs)).
        gradient: ``gradient(A, y) -> (n_samples, n_outputs)``: the derivative of each
            sample's loss by its row of ``A``, in ``A``'s dtype.
        replace: register ``name`` anew if it is registered already.

    Raises:
        SettingError: as ``register_activation``'s, for these two functions.
    """
    LOSSES.check_new(name, replace)
    what = f"loss {name!r}"
    _callable(loss, 2, f"{what}: loss(A, y)")
    _callable(gradient, 2, f"{what}: gradient(A, y)")
    n = len(_OUTPUTS)
    for dtype in (np.float64, np.float32):
        A, y = _OUTPUTS.astype(dtype), _TARGETS.astype(dtype)
        _call(loss, (A, y), (n,), None, f"{what}: loss(A, y)")
        _call(gradient, (A, y), A.shape, dtype, f"{what}: gradient(A, y)")
    numeric = np.empty(_OUTPUTS.shape)
    for i in np.ndindex(_OUTPUTS.shape):
        h = _STEP * max(1.0, abs(_OUTPUTS[i]))
        up, down = _OUTPUTS.copy(), _OUTPUTS.copy()
        up[i] += h
        down[i] -= h
        numeric[i] = (loss(up, _TARGETS).sum() - loss(down, _TARGETS).sum()) / (2 * h)
    _agree(gradient(_OUTPUTS, _TARGETS), numeric, _OUTPUTS, f"{what}: gradient(A, y)", "A")

    def value(A: Array, y: Array, weights: Weights = None) -> float:
        return _mean(loss(A, y), weights)

    def mean_gradient(A: Array, y: Array) -> Array:
        return gradient(A, y) / A.dtype.type(len(A))

    LOSSES.add(name, Loss(value, mean_gradient), replace=replace)


def register_initializer(name: str,
                         init: Callable[[np.random.Generator, int, int], tuple[Array, Array]],
                         *, replace: bool = False) -> None:
    """Make ``name`` an initializer, as ``"he_normal"`` is.

    Args:
        name: a lowercase identifier that no built-in initializer has.
        init: ``init(rng, fan_in, fan_out) -> (W, b)``: ``W`` (fan_in, fan_out) and ``b``
            (fan_out,), finite floats, drawn from ``rng`` (a ``numpy.random.Generator``)
            alone, so that a seed makes the same parameters in every run.
        replace: register ``name`` anew if it is registered already.

    Raises:
        SettingError: a bad name, a function that cannot be called so, arrays of other
            shapes, non-finite or non-float values, or two draws from one seed that differ.
    """
    INITIALIZERS.check_new(name, replace)
    what = f"initializer {name!r}"
    _callable(init, 3, f"{what}: init(rng, fan_in, fan_out)")
    for fan_in, fan_out in ((3, 2), (1, 1)):
        draws = []
        for _ in range(2):
            made = init(np.random.default_rng(1234), fan_in, fan_out)
            if not (isinstance(made, tuple) and len(made) == 2):
                raise SettingError(f"{what}: init(rng, {fan_in}, {fan_out})", "must return a "
                                   f"pair (W, b), got {_kind(made)}")
            for array, shape, label in zip(made, ((fan_in, fan_out), (fan_out,)), "Wb"):
                _array(array, shape, None, f"{what}: init(rng, {fan_in}, {fan_out})'s {label}")
            draws.append(made)
        if not all(np.array_equal(a, b) for a, b in zip(*draws)):
            raise SettingError(f"{what}: init(rng, fan_in, fan_out)", "two calls with generators of one seed made different "
                               "parameters; draw only from the rng argument (no global "
                               "state), so that a seed reproduces a run")
    INITIALIZERS.add(name, init, replace=replace)


def unregister(kind: str, name: str) -> None:
    """Forget the registered ``kind`` ("activation", "loss", "initializer", "transform")
    ``name``."""
    from purenet.optim.registration import forget_transform

    forgets = {table.kind: table.remove for table in (ACTIVATIONS, LOSSES, INITIALIZERS)}
    forgets["transform"] = forget_transform
    if kind not in forgets:
        raise SettingError("kind", f"must be one of {sorted(forgets)}, got {kind!r}")
    forgets[kind](name)


# The modules ``import_pieces`` imported, in order: what a child process must import too.
IMPORTED: list[str] = []


def import_pieces(modules: Sequence[str]) -> None:
    """Import each of ``modules`` (``purenet --import``; a sweep's workers): a module name
    (the current directory is searched last) or the path of a ``.py`` file, whose
    registrations then hold in this process (``IMPORTED`` lists them).

    Raises:
        ImportError: a module that cannot be found or fails to import, named.
    """
    for module in modules:
        if module in IMPORTED:   # a file would run again, and register twice
            continue
        try:
            if module.endswith(".py"):
                _import_file(module)
            else:
                if os.getcwd() not in sys.path:
                    sys.path.append(os.getcwd())
                importlib.import_module(module)
        except Exception as error:
            raise ImportError(f"--import {module}: {type(error).__name__}: {error} (give a "
                              "module on the Python path, or the path of a .py file)") from error
        if module not in IMPORTED:
            IMPORTED.append(module)


def _import_file(path: str) -> None:
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None or not os.path.isfile(path):
        raise FileNotFoundError(f"no Python file {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise


# --- the checks -----------------------------------------------------------------------


def _kind(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    return f"a {type(value).__name__}"


def _callable(function: Any, positional: int, what: str) -> None:
    """``function`` can be called with ``positional`` positional arguments (more, with
    defaults or ``*args``, are fine)."""
    if not callable(function):
        raise SettingError(what, f"must be a function, got {_kind(function)}")
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):   # a ufunc or a builtin: its call below tells
        return
    try:
        signature.bind(*range(positional))
    except TypeError as error:
        raise SettingError(what, f"must take {positional} positional argument"
                           f"{'s' if positional > 1 else ''} (more only with defaults); "
                           f"{signature} does not: {error}") from None


def _call(function: Callable, args: tuple, shape: tuple, dtype: Any, what: str) -> Array:
    """``function(*args)``, checked: it left its arguments unchanged and returned an
    array of ``shape`` (and ``dtype``, unless None) with finite values."""
    before = [a.copy() for a in args]
    try:
        with np.errstate(all="ignore"):   # a NaN or inf is named below
            out = function(*args)
    except Exception as error:
        raise SettingError(what, f"failed on {_kind(args[0])}: "
                           f"{type(error).__name__}: {error}") from error
    for a, b in zip(args, before):
        if not np.array_equal(a, b):
            raise SettingError(what, "changed its argument in place; a pure function returns "
                               "a new array and leaves its inputs as they are")
    return _array(out, shape, dtype, what, given=args[0].dtype)


def _array(out: Any, shape: tuple, dtype: Any, what: str, given: Any = None) -> Array:
    if not isinstance(out, np.ndarray) or out.shape != shape:
        raise SettingError(what, f"must return an array of shape {shape}, got {_kind(out)}")
    if out.dtype.kind != "f" or (dtype is not None and out.dtype != dtype):
        expected = f"dtype {np.dtype(dtype)}" if dtype is not None else "floats"
        hint = f" for a {np.dtype(given)} input (keep constants as Z.dtype.type(c))" \
            if given is not None and dtype is not None else ""
        raise SettingError(what, f"must return {expected}{hint}, got {out.dtype}")
    if not np.isfinite(out).all():
        raise SettingError(what, "returned NaN or inf on finite inputs, at the entries "
                           f"{np.argwhere(~np.isfinite(out))[:3].tolist()}")
    return out


def _agree(analytic: Array, numeric: Array, at: Array, what: str, variable: str) -> None:
    """Refuse unless ``analytic`` matches the central differences ``numeric``."""
    errors = np.abs(analytic - numeric) / np.maximum(1, np.abs(numeric))
    worst = tuple(int(i) for i in np.unravel_index(np.argmax(errors), errors.shape))
    if errors[worst] > TOLERANCE:
        raise SettingError(what, f"disagrees with central differences: worst at "
                           f"{variable}{list(worst)} = {at[worst]:.6g}, where it gives "
                           f"{analytic[worst]:.6g} and the differences {numeric[worst]:.6g} "
                           f"(error {errors[worst]:.2g} > {TOLERANCE:g}); check its formula")
