"""The run record: every setting that decides a run's result, in one frozen record."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from purenet.core.records import Architecture
from purenet.optim.optimizers import Optimizer
from purenet.train.state import EarlyStopping


@attrs.frozen(eq=False)
class RunConfig:
    """Everything that decides a run's arithmetic, checked on resume. ``epochs`` may
    change between an interrupted run and its resumption; nothing else may."""

    architecture: Architecture
    optimizer: Optimizer
    loss: str
    dtype: np.dtype
    seed: int
    batch_size: int | None
    init: str = "he_normal"
    l2: float = 0.0
    shuffle: bool = True
    drop_last: bool = False
    early_stopping: EarlyStopping | None = None

    def config(self) -> dict[str, Any]:
        """The spec as plain data (JSON-able)."""
        return {
            "architecture": self.architecture.to_dicts(),
            "optimizer": self.optimizer.config(),
            "loss": self.loss, "dtype": self.dtype.name, "seed": self.seed,
            "batch_size": self.batch_size, "init": self.init, "l2": self.l2,
            "shuffle": self.shuffle, "drop_last": self.drop_last,
            "early_stopping": None if self.early_stopping is None
            else attrs.asdict(self.early_stopping),
        }


RunSpec = RunConfig   # its name in purenet 0.1
