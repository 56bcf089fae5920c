"""purenet: a functional, pure-state NumPy engine for dense neural networks."""

__version__ = "0.1.0"

from purenet import optim, schedules
from purenet.activations import ACTIVATIONS
from purenet.errors import (CheckpointError, CheckpointMismatchError, CheckpointNotFoundError,
                            CorruptCheckpointError, NotACheckpointError,
                            UnsupportedCheckpointError)
from purenet.initializers import INITIALIZERS
from purenet.interrupts import TrainingInterrupted
from purenet.losses import LOSSES
from purenet.metrics import evaluate
from purenet.network import backward, forward, init_params, loss_and_grads, predict
from purenet.records import (
                             Architecture,
                             Batch,
                             Cache,
                             Dense,
                             Grads,
                             LayerSpec,
                             Params,
                             tree_leaves,
                             tree_map,
)
from purenet.state import EarlyStopping, FitResult, History, RunSpec, TrainState
from purenet.train import Callback, NonFiniteError, StepMetrics, fit, train_step

__all__ = [
    "CheckpointError", "CheckpointMismatchError", "CheckpointNotFoundError", "Checkpointer",
    "CorruptCheckpointError", "NotACheckpointError", "UnsupportedCheckpointError",
    "load_checkpoint", "summarize_checkpoint",
    "ExperimentError", "load_experiment", "run_experiment",
    "ACTIVATIONS", "Architecture", "Batch", "Cache", "Callback", "Dense", "EarlyStopping",
    "FitResult", "Grads", "History", "INITIALIZERS", "LOSSES", "LayerSpec", "NonFiniteError",
    "Params", "RunSpec", "StepMetrics", "TrainState", "TrainingInterrupted", "backward",
    "evaluate", "fit", "forward", "init_params", "loss_and_grads", "optim", "predict",
    "schedules", "train_step", "tree_leaves", "tree_map",
]

# Checkpointing needs h5py, which is slow to import: load it on first use.
_LAZY = {"Checkpointer": "purenet.checkpointer", "load_checkpoint": "purenet.checkpointer",
         "summarize_checkpoint": "purenet.checkpoint",
         # Experiment files: loaded on first use too (they reach for scikit-learn).
         "ExperimentError": "purenet.schema", "load_experiment": "purenet.experiment",
         "run_experiment": "purenet.runner"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module = importlib.import_module(_LAZY[name])
        return getattr(module, "summarize" if name == "summarize_checkpoint" else name)
    raise AttributeError(f"module 'purenet' has no attribute {name!r}")
