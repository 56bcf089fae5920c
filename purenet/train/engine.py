"""``fit``'s step engine: the pure training step run over arrays the engine owns.

Every array a step makes comes from one ``Pool`` (``purenet.core.workspace``): the gathered
batch, activations, pre-activations, dropout masks and back-propagated gradients are
allocated once per batch shape and written over every step, since they never leave the
step; gradients, new parameters and new optimizer state go into records, each record
over one flat array, recycled with its record only once no record, layer, array, view or
pending checkpoint refers to it any more (in a plain run that makes them double-buffered:
the step writes the new parameters over the ones of two steps back), and the optimizer
updates those flat arrays whole. The kernels are the pure functions' own
(``network.objective``, the optimizers' ``update_into``), so the engine's states are the
pure ``train_step``'s, bit for bit.
"""

from __future__ import annotations

import numpy as np

from purenet.core.sparse import SparseRows
from purenet.core.workspace import Pool
from purenet.train.config import RunConfig
from purenet.train.data import batch_indices, gather
from purenet.train.state import TrainState
from purenet.train.step import StepMetrics, take_step

Array = np.ndarray


class StepEngine:
    """Runs the steps of one fit over its own arrays.

    Not thread-safe, and for one fit only: its arrays are that fit's."""

    def __init__(self, config: RunConfig, x: Array, y: Array, weights: Array | None,
                 batch_size: int, shuffled: bool = True) -> None:
        """``x``, ``y`` and ``weights`` (per sample, or None) validated for ``config``;
        ``batch_size`` at most ``len(x)``; ``shuffled``: False when every epoch's order is
        0, 1, 2, ... (no shuffling, or the full batch)."""
        self.config = config
        self.arrays = (("x", x), ("y", y), ("weights", weights))
        self.batch_size = batch_size
        self.shuffled = shuffled
        self.pool = Pool()

    def batch(self, state: TrainState, order: Array) -> tuple[Array, Array, Array | None]:
        """Batch ``state.batch_index`` of the epoch whose sample order is ``order``, in the
        engine's arrays, or the data's own when the batch is all of it, in order."""
        idx = batch_indices(order, state.batch_index, self.batch_size)
        if not self.shuffled and len(idx) == len(self.arrays[0][1]):
            return tuple(array for _, array in self.arrays)
        x, y, weights = (None if array is None else gather(array, idx, self._buffer(
            name, array, len(idx))) for name, array in self.arrays)
        return x, y, weights

    def _buffer(self, name: str, array: Array, n: int) -> Array | None:
        if isinstance(array, SparseRows):
            return None   # a sparse batch is its own new matrix
        return self.pool.scratch(("batch", name), (n, *array.shape[1:]), array.dtype)

    def step(self, state: TrainState, order: Array) -> tuple[TrainState, StepMetrics]:
        """The state after the next batch of the epoch ordered by ``order``."""
        x, y, weights = self.batch(state, order)
        return take_step(state, x, y, self.config, weights, self.pool)
