"""purenet: a functional, pure-state NumPy engine for dense neural networks."""

__version__ = "0.1.0"

from purenet import optim, schedules
from purenet.activations import ACTIVATIONS
from purenet.initializers import INITIALIZERS
from purenet.losses import LOSSES
from purenet.network import backward, forward, init_params, loss_and_grads, predict
from purenet.records import (Architecture, Batch, Cache, Dense, Grads, LayerSpec, Params,
                             tree_leaves, tree_map)
from purenet.state import EarlyStopping, FitResult, History, TrainState
from purenet.train import (Callback, NonFiniteError, RunSpec, StepMetrics, TrainingInterrupted,
                           evaluate, fit, train_step)

__all__ = [
    "ACTIVATIONS", "Architecture", "Batch", "Cache", "Callback", "Dense", "EarlyStopping",
    "FitResult", "Grads", "History", "INITIALIZERS", "LOSSES", "LayerSpec", "NonFiniteError",
    "Params", "RunSpec", "StepMetrics", "TrainState", "TrainingInterrupted", "backward",
    "evaluate", "fit", "forward", "init_params", "loss_and_grads", "optim", "predict",
    "schedules", "train_step", "tree_leaves", "tree_map",
]
