"""purenet's testing kit, for purenet's own tests and for yours.

- Trees (records, arrays, containers): ``assert_trees_equal`` (bit for bit; also as
  ``assert_records_equal``), ``assert_trees_close(rtol, atol)``, ``assert_shape``,
  ``assert_dtype``, each naming the path of every difference.
- Gradients: ``check_grads`` (purenet's objective, with any registered activation or loss)
  and ``check_objective`` (a user's own ``params -> (loss, grads)``), against central
  differences in float64.
- Purity: ``assert_pure`` (inputs unchanged bit for bit, no global RNG, the same result
  twice).
- Replay: ``assert_resumes_exactly(config, x, y, at_step)``.
- ``purenet.testing.strategies``: Hypothesis strategies for architectures, parameters,
  batches, optimizers and run records (imported on first use: Hypothesis stays optional).
"""

from __future__ import annotations

import importlib

from purenet.testing.grads import check_grads, check_objective
from purenet.testing.purity import assert_pure
from purenet.testing.replay import assert_resumes_exactly
from purenet.testing.trees import (assert_dtype, assert_records_equal, assert_shape,
                                   assert_trees_close, assert_trees_equal, differences)

__all__ = ["assert_dtype", "assert_pure", "assert_records_equal", "assert_resumes_exactly",
           "assert_shape", "assert_trees_close", "assert_trees_equal", "check_grads",
           "check_objective", "differences", "strategies"]


def __getattr__(name: str):
    if name == "strategies":   # imports Hypothesis: only when asked for
        return importlib.import_module("purenet.testing.strategies")
    raise AttributeError(f"module 'purenet.testing' has no attribute {name!r}")
