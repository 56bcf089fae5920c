"""The estimators' parameters as purenet's run record: one ``RunConfig`` per fit.

The parameters keep MLPClassifier's names and meanings wherever it has one; the tables here
say how each becomes a field of the run record, so the estimators stay thin.
"""

from __future__ import annotations

import inspect
import numbers
import secrets
import warnings
from typing import Any, Callable, Mapping

import numpy as np

from purenet import optim
from purenet.core.activations import ACTIVATIONS
from purenet.core.records import Architecture, as_architecture
from purenet.errors import SettingError
from purenet.optim.schedules import SCHEDULES, constant, invscaling, schedule_from_config
from purenet.train.config import RunConfig
from purenet.train.state import EarlyStopping

# MLPClassifier's activation names that purenet spells otherwise.
ACTIVATION_NAMES = {"logistic": "sigmoid"}
# The run record's fields named otherwise by the estimators, for error messages.
PARAMETER_OF_FIELD = {"epochs": "max_iter", "seed": "random_state", "l2": "alpha",
                      "architecture": "layers"}
# MLPClassifier's full-batch solvers, which need the whole objective rather than a batch's
# gradient: a solver lands here as one entry, with the fit that drives it.
FULL_BATCH_SOLVERS = ("lbfgs",)
LEARNING_RATES = ("constant", "invscaling", "adaptive")
ADAPTIVE_DIVISOR = 5.0    # MLPClassifier's "adaptive": the rate / 5 when training stalls
ADAPTIVE_FLOOR = 1e-6     # ... and it stops once the rate is at most this
# The argument of each schedule that learning_rate_init fills when the schedule omits it.
RATE_ARGUMENT = {"constant": "value", "step_decay": "init_value",
                 "exponential_decay": "init_value", "warmup_cosine_decay": "peak_value"}
AUTO_BATCH = 200   # MLPClassifier's batch_size="auto": min(200, n_samples)
SCIPY_HISTORY = 10   # scipy's L-BFGS-B maxcor, which MLPClassifier leaves at its default


def _adam(p: Mapping[str, Any], rate: Any, extra: dict) -> optim.Optimizer:
    return optim.adam(rate, b1=p["beta_1"], b2=p["beta_2"], eps=p["epsilon"], **extra)


def _adamw(p: Mapping[str, Any], rate: Any, extra: dict) -> optim.Optimizer:
    return optim.adamw(rate, b1=p["beta_1"], b2=p["beta_2"], eps=p["epsilon"], **extra)


def _sgd(p: Mapping[str, Any], rate: Any, extra: dict) -> optim.Optimizer:
    # MLPClassifier's solver="sgd" is SGD with (Nesterov) momentum 0.9 unless momentum=0.
    if p["momentum"]:
        return optim.momentum(rate, momentum=p["momentum"], nesterov=p["nesterovs_momentum"])
    return optim.sgd(rate)


def _lbfgs(p: Mapping[str, Any], rate: Any, extra: dict) -> optim.ObjectiveOptimizer:
    # scipy's L-BFGS-B as MLPClassifier calls it: 10 curvature pairs (maxcor), the gradient
    # tolerance tol (gtol), max_fun evaluations (maxfun); learning_rate_init is not used.
    # Steps and loss changes stop it only below float64's resolution: scipy has no such
    # test, and PyTorch's 1e-9 ends fits that scipy takes on to max_fun.
    named = {"history_size": SCIPY_HISTORY, "tolerance_grad": float(p["tol"]),
             "tolerance_change": float(np.finfo(np.float64).eps),
             "max_eval": int(p["max_fun"])}
    return optim.lbfgs(**{**named, **extra})


# optimizer name -> (builder, the purenet factory whose extra arguments optimizer_params
# may set: those MLPClassifier has no name for).
OPTIMIZERS: dict[str, tuple[Callable, Callable]] = {
    "adam": (_adam, optim.adam),
    "adamw": (_adamw, optim.adamw),
    "sgd": (_sgd, optim.sgd),
    "rmsprop": (lambda p, rate, extra: optim.rmsprop(rate, **extra), optim.rmsprop),
    "adagrad": (lambda p, rate, extra: optim.adagrad(rate, **extra), optim.adagrad),
    "lbfgs": (_lbfgs, optim.lbfgs),
}
# Arguments set through the estimator's own parameters, so not through optimizer_params.
_NAMED = {"learning_rate", "b1", "b2", "eps"}


def solver(p: Mapping[str, Any]) -> str:
    """The solver's name: ``solver``, or the older ``optimizer`` where that is given."""
    name = p["solver"] if p.get("optimizer") is None else p["optimizer"]
    if name not in OPTIMIZERS:
        raise ValueError(f"solver={name!r} is unknown; expected one of {sorted(OPTIMIZERS)}")
    return name


def full_batch(p: Mapping[str, Any]) -> bool:
    """Whether the solver takes the whole objective (lbfgs): one iteration an epoch, on
    the full batch, with its own stopping rule and no early stopping (MLPClassifier's)."""
    return solver(p) in FULL_BATCH_SOLVERS


def learning_rate_mode(p: Mapping[str, Any]) -> str:
    """``learning_rate`` checked; it shapes the rate of solver="sgd" only, as in
    MLPClassifier."""
    mode = p["learning_rate"]
    if mode not in LEARNING_RATES:
        raise ValueError(f"learning_rate={mode!r} is unknown; expected one of "
                         f"{list(LEARNING_RATES)}")
    return mode if solver(p) == "sgd" else "constant"


def adaptive_rate(p: Mapping[str, Any], divisions: int) -> float:
    """The rate of learning_rate="adaptive" after ``divisions`` stalls."""
    return float(p["learning_rate_init"]) / ADAPTIVE_DIVISOR ** divisions


def _learning_rate(p: Mapping[str, Any], n_batches: int, n_samples: int,
                   divisions: int) -> Any:
    schedule, rate = p["schedule"], p["learning_rate_init"]
    mode = learning_rate_mode(p)
    if schedule is None and mode == "invscaling":
        return invscaling(rate, p["power_t"], n_batches, n_samples)
    if schedule is None:
        return constant(adaptive_rate(p, divisions)) if mode == "adaptive" else rate
    if not isinstance(schedule, Mapping):
        raise TypeError("schedule must be None or a dict in the form of an experiment file's "
                        "[optimizer.learning_rate] table, e.g. {'schedule': "
                        "'exponential_decay', 'decay_rate': 0.5, 'transition_steps': 1000}; got "
                        f"{type(schedule).__name__}")
    key = RATE_ARGUMENT.get(schedule.get("schedule"))
    plain = {key: rate, **schedule} if key else dict(schedule)
    try:
        return schedule_from_config(plain)
    except SettingError as error:
        raise ValueError(f"schedule: {error}; schedules are {sorted(SCHEDULES)}") from None


def optimizer(p: Mapping[str, Any], n_batches: int = 1, n_samples: int = 1,
              divisions: int = 0) -> optim.Optimizer | optim.ObjectiveOptimizer:
    """The optimizer the parameters describe, for epochs of ``n_batches`` steps over
    ``n_samples`` samples; ``divisions``: the stalls learning_rate="adaptive" met so far."""
    name = solver(p)
    build, factory = OPTIMIZERS[name]
    extra = dict(p["optimizer_params"] or {})
    allowed = sorted(set(inspect.signature(factory).parameters) - _NAMED)
    unknown = sorted(set(extra) - set(allowed))
    if unknown:
        raise ValueError(f"optimizer_params {unknown} are not arguments of {name}; it takes "
                         f"{allowed} there (the learning rate, betas and epsilon have their "
                         "own parameters)")
    try:
        return build(p, _learning_rate(p, n_batches, n_samples, divisions), extra)
    except SettingError as error:
        raise ValueError(f"optimizer {name}: {error}") from None


def hidden_sizes(value: Any) -> tuple[int, ...]:
    """``hidden_layer_sizes`` as a tuple of ints >= 1 (one int means one layer)."""
    sizes = (value,) if isinstance(value, numbers.Integral) else value
    try:
        sizes = tuple(sizes)
    except TypeError:
        sizes = None
    if sizes is None or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool)
                                and s >= 1 for s in sizes):
        raise ValueError(f"hidden_layer_sizes must be an int >= 1 or a tuple of them, got "
                         f"{value!r}")
    return tuple(int(s) for s in sizes)


def architecture(p: Mapping[str, Any], n_features: int, n_outputs: int, output: str
                 ) -> Architecture:
    """The network: ``layers`` as given (checked against the data), or
    ``hidden_layer_sizes`` layers of ``activation`` with ``dropout``, then the output."""
    if p["layers"] is not None:
        return _given_layers(p["layers"], n_features, n_outputs, output)
    activation = ACTIVATION_NAMES.get(p["activation"], p["activation"])
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation={p['activation']!r} is unknown; expected one of "
                         f"{sorted([*ACTIVATIONS, *ACTIVATION_NAMES])}")
    sizes = [n_features, *hidden_sizes(p["hidden_layer_sizes"])]
    layers = [{"input_dim": a, "output_dim": b, "activation": activation,
               "dropout": p["dropout"]} for a, b in zip(sizes, sizes[1:])]
    layers.append({"input_dim": sizes[-1], "output_dim": n_outputs, "activation": output})
    try:
        return Architecture.from_dicts(layers)
    except SettingError as error:
        raise ValueError(f"{'dropout' if 'dropout' in error.path else 'layers'}: "
                         f"{error}") from None


def _given_layers(layers: Any, n_features: int, n_outputs: int, output: str) -> Architecture:
    try:
        arch = as_architecture(layers)
    except SettingError as error:
        raise ValueError(f"layers: {error}") from None
    expected = (n_features, n_outputs, output)
    found = (arch.input_dim, arch.output_dim, arch.output_activation)
    if found != expected:
        raise ValueError(f"layers: the network takes {found[0]} features and ends in "
                         f"{found[1]} {found[2]} unit(s), but this data needs input_dim="
                         f"{n_features} and an output layer of {n_outputs} {output} unit(s)")
    return arch


def batch_size(value: Any, n_samples: int) -> int:
    """``batch_size``: "auto" is min(200, n_samples); larger than the data is clipped,
    with MLPClassifier's warning."""
    if isinstance(value, str) and value == "auto":
        return min(AUTO_BATCH, n_samples)
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f'batch_size must be "auto" or an int >= 1, got {value!r}')
    if value > n_samples:
        warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going "
                      "to be clipped")
    return min(int(value), n_samples)


def max_iter(value: Any) -> int:
    """``max_iter``: the epochs one fit trains, an int >= 1."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"max_iter must be an int >= 1 (epochs to train), got {value!r}")
    return int(value)


def seed(random_state: Any) -> int:
    """An int seed from ``random_state``: itself; one draw from a ``np.random.RandomState``
    (so a shared RandomState gives each fit its own seed, as scikit-learn's do); or (None)
    a fresh one from the OS. Recorded in ``seed_``: purenet derives every random number
    of the fit from it."""
    if random_state is None:
        return secrets.randbits(63)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(np.iinfo(np.int32).max))
    if not isinstance(random_state, numbers.Integral) or isinstance(random_state, bool) \
            or not 0 <= random_state < 2**63:
        raise ValueError("random_state must be None, an int in [0, 2**63) or a "
                         f"numpy.random.RandomState, got {random_state!r}")
    return int(random_state)


def check_max_fun(value: Any) -> None:
    """``max_fun`` (objective evaluations of a full-batch solver): an int >= 1."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"max_fun must be an int >= 1, got {value!r}")


def float_dtype(requested: Any, input_dtype: np.dtype) -> str:
    """The network's dtype: ``dtype`` when given, else MLPClassifier's rule (float32
    input stays float32, any other float64)."""
    if requested is not None:
        return requested
    return "float32" if input_dtype == np.float32 else "float64"


def stopping(p: Mapping[str, Any], monitor: str) -> EarlyStopping | None:
    """MLPClassifier's stopping rule: stop once ``monitor`` (training loss, or a validation
    metric with ``early_stopping``) missed ``tol`` more than ``n_iter_no_change`` epochs in
    a row; None (never stop early) when ``n_iter_no_change`` is None, and for a full-batch
    solver, which stops by its own rule."""
    if full_batch(p):
        return None
    if p["n_iter_no_change"] is None or p["n_iter_no_change"] == float("inf"):
        if p["early_stopping"]:
            raise ValueError("early_stopping=True needs n_iter_no_change, an int >= 1")
        return None
    n, tol = p["n_iter_no_change"], p["tol"]
    if not isinstance(n, numbers.Integral) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n_iter_no_change must be an int >= 1 or None, got {n!r}")
    if not isinstance(tol, numbers.Real) or isinstance(tol, bool) or not tol >= 0:
        raise ValueError(f"tol must be a number >= 0, got {tol!r}")
    # MLPClassifier stops when its count of epochs without improvement exceeds
    # n_iter_no_change, i.e. at the (n_iter_no_change + 1)-th.
    return EarlyStopping(monitor=monitor, patience=int(n) + 1, min_delta=float(tol),
                         restore_best=bool(p["early_stopping"]), rule="sklearn")


def run_config(p: Mapping[str, Any], arch: Architecture, loss: str, n_samples: int,
               epochs: int, run_seed: int, early: EarlyStopping | None, dtype: str,
               divisions: int = 0) -> RunConfig:
    """The run record of one fit on ``n_samples`` training samples."""
    batch = n_samples if full_batch(p) else batch_size(p["batch_size"], n_samples)
    n_batches = -(-n_samples // batch)
    alpha = p["alpha"]
    if not isinstance(alpha, numbers.Real) or isinstance(alpha, bool) or not alpha >= 0:
        raise ValueError(f"alpha must be a number >= 0, got {alpha!r}")
    try:
        # MLPClassifier adds alpha/2 * sum(W**2) / batch_size to each batch's mean loss;
        # purenet's l2 is the coefficient on the mean loss itself.
        return RunConfig(arch, optimizer=optimizer(p, n_batches, n_samples, divisions),
                         epochs=epochs, batch_size=None if full_batch(p) else batch,
                         seed=run_seed, dtype=dtype, loss=loss, init=p["init"],
                         l2=float(alpha) / batch, shuffle=p["shuffle"], early_stopping=early,
                         threads=p["threads"])
    except SettingError as error:
        name = ("dropout" if "dropout" in error.path else
                PARAMETER_OF_FIELD.get(error.path[0], error.path[0]) if error.path else "")
        raise ValueError(f"{name}: {error.problem}" if name else str(error)) from None
