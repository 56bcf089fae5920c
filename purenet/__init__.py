"""purenet: a functional, pure-state NumPy engine for dense neural networks.

The functional core (records, activations, losses, initializers, forward and backward) is
imported with the package. Training, checkpointing and experiment files are loaded on first
use (PEP 562), so ``import purenet`` stays fast and never pulls in h5py or scikit-learn.
"""

__version__ = "0.3.0"

import importlib

from purenet.core.activations import ACTIVATIONS
from purenet.errors import (CheckpointError, CheckpointMismatchError, CheckpointNotFoundError,
                            CheckpointLockedError, CheckpointWarning, CorruptCheckpointError,
                            ExperimentError, LegacyCheckpointError, NewerCheckpointError,
                            NonFiniteError, NotACheckpointError, SettingError,
                            TrainingInterrupted, UnregisteredPieceError,
                            UnsupportedCheckpointError)
from purenet.core.numerics import NUMERICS_VERSION
from purenet.core.initializers import INITIALIZERS
from purenet.core.losses import LOSSES
from purenet.core.network import backward, forward, init_params, loss_and_grads, predict
from purenet.core.records import (Architecture, Batch, Cache, Dense, Grads, LayerSpec, Params,
                             tree_leaves, tree_map)

# name -> (module, attribute in it); attribute None means the module itself.
_LAZY = {
    "optim": ("purenet.optim", None),
    "schedules": ("purenet.optim.schedules", None),
    "fit": ("purenet.train.loop", "fit"),
    "train_step": ("purenet.train.step", "train_step"),
    "Callback": ("purenet.train.loop", "Callback"),
    "StepMetrics": ("purenet.train.step", "StepMetrics"),
    "evaluate": ("purenet.train.metrics", "evaluate"),
    "EarlyStopping": ("purenet.train.state", "EarlyStopping"),
    "FitResult": ("purenet.train.state", "FitResult"),
    "History": ("purenet.train.state", "History"),
    "RunConfig": ("purenet.train.config", "RunConfig"),
    "RunSpec": ("purenet.train.config", "RunSpec"),
    "TrainState": ("purenet.train.state", "TrainState"),
    "Checkpointer": ("purenet.checkpoint.policy", "Checkpointer"),
    "load_checkpoint": ("purenet.checkpoint.policy", "load_checkpoint"),
    "state_at": ("purenet.checkpoint.rewind", "state_at"),
    "summarize_checkpoint": ("purenet.checkpoint.format", "summarize"),
    "load_experiment": ("purenet.experiment.config", "load_experiment"),
    "run_experiment": ("purenet.experiment.runner", "run_experiment"),
    "load_run": ("purenet.experiment.readrun", "load_run"),
    "Model": ("purenet.model", "Model"),
    "register_activation": ("purenet.extend", "register_activation"),
    "register_loss": ("purenet.extend", "register_loss"),
    "register_initializer": ("purenet.extend", "register_initializer"),
    "register_transform": ("purenet.optim.registration", "register_transform"),
}

# A literal list, so that tools see the re-exports; tests/test_package.py checks it
# resolves name by name.
__all__ = [
    "ACTIVATIONS", "Architecture", "Batch", "Cache", "Callback", "CheckpointError",
    "CheckpointLockedError",
    "CheckpointMismatchError", "CheckpointNotFoundError", "CheckpointWarning", "Checkpointer",
    "CorruptCheckpointError", "Dense", "EarlyStopping", "ExperimentError", "FitResult", "Grads",
    "History", "INITIALIZERS", "LOSSES", "LayerSpec", "LegacyCheckpointError", "Model",
    "NUMERICS_VERSION", "NewerCheckpointError", "NonFiniteError", "NotACheckpointError",
    "Params", "RunConfig", "RunSpec", "SettingError", "StepMetrics", "TrainState", "TrainingInterrupted",
    "UnregisteredPieceError", "UnsupportedCheckpointError", "backward", "evaluate", "fit", "forward", "init_params",
    "load_checkpoint", "load_experiment", "load_run", "loss_and_grads", "optim", "predict",
    "register_activation", "register_initializer", "register_loss", "register_transform",
    "run_experiment", "schedules", "state_at", "summarize_checkpoint", "train_step", "tree_leaves",
    "tree_map",
]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'purenet' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value   # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return __all__
