"""Hypothesis strategies that produce valid purenet records by construction.

    from hypothesis import given
    from purenet.testing import strategies as pst

    @given(pst.problems())
    def test_my_loss_is_pure(problem):
        params, batch = problem
        ...

Architectures chain their layer sizes, parameters come from ``init_params`` with a drawn
seed, batches hold finite inputs and targets of the form the output's default loss takes,
optimizers and run records are built through purenet's own constructors (so every drawn
value passes their validators). Requires Hypothesis (``pip install hypothesis``); importing
this module is the only place purenet imports it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from purenet.core.network import init_params
from purenet.core.records import Architecture, Batch, LayerSpec, Params
from purenet.optim.plain import from_config
from purenet.train.config import RunConfig

HIDDEN = ("relu", "tanh", "sigmoid", "leaky_relu", "elu", "gelu", "softplus", "identity")
# Output activations whose default loss fit and loss_and_grads take without being told.
OUTPUTS = ("sigmoid", "softmax", "identity")
DTYPES = ("float32", "float64")
# A finite input a network of small weights maps to finite outputs in float32 as well.
_VALUES = st.floats(-4.0, 4.0, allow_nan=False, allow_infinity=False, width=32)


@st.composite
def architectures(draw: Any, max_layers: int = 3, max_width: int = 6,
                  hidden: tuple[str, ...] = HIDDEN, outputs: tuple[str, ...] = OUTPUTS,
                  dropout: bool = False) -> Architecture:
    """Architectures of 1 to ``max_layers`` layers, each at most ``max_width`` wide, whose
    sizes chain; a softmax output has at least 2 units."""
    depth = draw(st.integers(1, max_layers))
    output = draw(st.sampled_from(outputs))
    sizes = [draw(st.integers(1, max_width)) for _ in range(depth)]
    sizes.append(draw(st.integers(2 if output == "softmax" else 1, max_width)))
    layers = []
    for i in range(depth):
        last = i == depth - 1
        rate = draw(st.sampled_from((0.0, 0.2))) if dropout and not last else 0.0
        layers.append(LayerSpec(sizes[i], sizes[i + 1],
                                output if last else draw(st.sampled_from(hidden)), rate))
    return Architecture(tuple(layers))


@st.composite
def params(draw: Any, architecture: Any = None, dtype: str | None = None) -> Params:
    """Parameters of ``architecture`` (drawn when None), from a drawn seed and initializer."""
    arch = draw(architectures()) if architecture is None else architecture
    return init_params(arch, seed=draw(st.integers(0, 2**32 - 1)),
                       init=draw(st.sampled_from(("he_normal", "glorot_uniform", "tutorial"))),
                       dtype=dtype or draw(st.sampled_from(DTYPES)))


@st.composite
def batches(draw: Any, architecture: Architecture, min_samples: int = 1,
            max_samples: int = 8, dtype: str = "float64") -> Batch:
    """A batch for ``architecture``: finite inputs of its width, and targets its output's
    default loss takes (0/1 labels for sigmoid, class ids for softmax, numbers else)."""
    n = draw(st.integers(min_samples, max_samples))
    x = draw(hnp.arrays(np.dtype(dtype), (n, architecture.input_dim), elements=_VALUES))
    k, output = architecture.output_dim, architecture.output_activation
    if output == "sigmoid":
        y = draw(hnp.arrays(np.int64, (n, k), elements=st.integers(0, 1)))
    elif output == "softmax":
        y = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, k - 1)))
    else:
        y = draw(hnp.arrays(np.dtype(dtype), (n, k), elements=_VALUES))
    return Batch(x, y)


@st.composite
def problems(draw: Any, max_layers: int = 3, max_width: int = 6,
             dtype: str | None = None) -> tuple[Params, Batch]:
    """``(params, batch)`` of one drawn architecture, in one dtype."""
    dtype = dtype or draw(st.sampled_from(DTYPES))
    arch = draw(architectures(max_layers, max_width))
    return draw(params(arch, dtype)), draw(batches(arch, dtype=dtype))


_RATES = st.sampled_from((1e-3, 1e-2, 0.1))


@st.composite
def optimizer_configs(draw: Any) -> dict[str, Any]:
    """An optimizer as plain data (``[optimizer]`` of an experiment file), clipping or not."""
    name = draw(st.sampled_from(("sgd", "momentum", "adam", "adamw", "rmsprop", "adagrad")))
    config: dict[str, Any] = {"name": name, "learning_rate": draw(_RATES)}
    if name == "momentum":
        config["nesterov"] = draw(st.booleans())
    if draw(st.booleans()):
        config["clip_by_global_norm"] = draw(st.sampled_from((0.5, 1.0, 5.0)))
    return config


def optimizers() -> st.SearchStrategy:
    """Optimizers from ``optimizer_configs``, built by ``purenet.optim.from_config``."""
    return optimizer_configs().map(from_config)


@st.composite
def run_configs(draw: Any, max_layers: int = 2, max_width: int = 6,
                max_epochs: int = 3) -> RunConfig:
    """Run records of a drawn architecture, optimizer, batch size, seed and dtype."""
    arch = draw(architectures(max_layers, max_width, dropout=True))
    return RunConfig(arch, draw(optimizers()), epochs=draw(st.integers(1, max_epochs)),
                     batch_size=draw(st.sampled_from((None, 2, 3, 8))),
                     seed=draw(st.integers(0, 2**32 - 1)), dtype=draw(st.sampled_from(DTYPES)),
                     shuffle=draw(st.booleans()), l2=draw(st.sampled_from((0.0, 1e-3))))
