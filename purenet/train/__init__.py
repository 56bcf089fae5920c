"""Training: the run record, the train state, data order, metrics, the loop, interrupts."""

from purenet.train.loop import Callback, NonFiniteError, StepMetrics, fit, train_step
from purenet.train.metrics import evaluate
from purenet.train.state import EarlyStopping, FitResult, History, RunSpec, TrainState

__all__ = ["Callback", "EarlyStopping", "FitResult", "History", "NonFiniteError", "RunSpec",
           "StepMetrics", "TrainState", "evaluate", "fit", "train_step"]
