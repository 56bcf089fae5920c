"""Training: the run record, the train state, data order, metrics, the loop, interrupts."""

from purenet.errors import NonFiniteError, TrainingInterrupted
from purenet.train.loop import Callback, fit
from purenet.train.step import StepMetrics, train_step
from purenet.train.metrics import evaluate
from purenet.train.state import EarlyStopping, FitResult, History, TrainState
from purenet.train.config import RunConfig

__all__ = ["Callback", "EarlyStopping", "FitResult", "History", "NonFiniteError", "RunConfig",
           "StepMetrics", "TrainState", "TrainingInterrupted", "evaluate", "fit", "train_step"]
