"""Optimizers as pure ``(init, update)`` pairs, gradient transforms, learning-rate
schedules (``purenet.optim.schedules``), and optimizers that take the objective
(``lbfgs``: ``init`` and ``step(objective, params, state)``)."""

from purenet.optim import schedules
from purenet.optim.optimizers import (OPTIMIZERS, TRANSFORMS, Optimizer, adagrad, adam, adamw,
                                      apply_updates, chain, clip_by_global_norm, clip_by_value,
                                      global_norm, momentum, rmsprop, sgd)
from purenet.optim.lbfgs import STOP_REASONS, lbfgs
from purenet.optim.objective import ObjectiveOptimizer, StepInfo, minimize
from purenet.optim.plain import from_config
from purenet.optim.registration import register_transform
from purenet.optim.states import (AdagradState, AdamState, ChainState, EmptyState,
                                  LbfgsState, MomentumState, RmspropState, SgdState)

__all__ = [
    "OPTIMIZERS", "STOP_REASONS", "TRANSFORMS", "AdagradState", "AdamState", "ChainState",
    "EmptyState", "LbfgsState", "MomentumState", "ObjectiveOptimizer", "Optimizer",
    "RmspropState", "SgdState", "StepInfo", "adagrad", "adam", "adamw", "apply_updates",
    "chain", "clip_by_global_norm", "clip_by_value", "from_config", "global_norm", "lbfgs",
    "minimize", "momentum", "register_transform", "rmsprop", "schedules", "sgd",
]
