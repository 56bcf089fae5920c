"""Optimizers as pure ``(init, update)`` pairs, gradient transforms, and learning-rate
schedules (``purenet.optim.schedules``)."""

from purenet.optim import schedules
from purenet.optim.optimizers import (OPTIMIZERS, TRANSFORMS, Optimizer, adagrad, adam, adamw,
                                      apply_updates, chain, clip_by_global_norm, clip_by_value,
                                      global_norm, momentum, rmsprop, sgd)
from purenet.optim.plain import from_config
from purenet.optim.registration import register_transform
from purenet.optim.states import (AdagradState, AdamState, ChainState, EmptyState,
                                  MomentumState, RmspropState, SgdState)

__all__ = [
    "OPTIMIZERS", "TRANSFORMS", "AdagradState", "AdamState", "ChainState", "EmptyState",
    "MomentumState", "Optimizer", "RmspropState", "SgdState", "adagrad", "adam", "adamw",
    "apply_updates", "chain", "clip_by_global_norm", "clip_by_value", "from_config",
    "global_norm", "momentum", "register_transform", "rmsprop", "schedules", "sgd",
]
