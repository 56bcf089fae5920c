"""The immutable records that hold all of purenet's state.

Records are frozen attrs classes; every array they hold is made read-only on the way in,
so ``params.layers[0].W[0, 0] = 1`` raises instead of silently changing a model. A change
is a new record (``attrs.evolve``). Records holding arrays use ``eq=False``: compare their
contents with ``purenet.testing.assert_records_equal``.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Sequence, TypeVar

import attrs
import numpy as np

from purenet.core.activations import ACTIVATIONS
from purenet.core.checks import field, integer, number, one_of
from purenet.errors import SettingError, UnknownKeyError

Array = np.ndarray
DTYPES = ("float32", "float64")


def readonly(value: Any) -> Array:
    """``value`` as an array that cannot be written to: itself when it already is one,
    else a read-only view, so an array the caller still holds stays writeable for it."""
    array = value if type(value) is np.ndarray else np.asarray(value)
    if array.flags.writeable:
        array = array.view()
        array.setflags(write=False)
    return array


def freeze(array: Array) -> Array:
    """Mark an array the engine just made (and nobody else holds) read-only, in place.

    Records built from frozen arrays keep them as they are: no view is made, which is
    what keeps the training step's records cheap to build.
    """
    array.setflags(write=False)   # setflags: half the cost of assigning flags.writeable
    return array


def check_dtype(dtype: Any) -> np.dtype:
    """``dtype`` as a numpy float dtype purenet computes in (float32 or float64)."""
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved is None or resolved.name not in DTYPES:
        raise ValueError(f"dtype must be one of {list(DTYPES)}, got {dtype!r}")
    return resolved


# --- architecture ---------------------------------------------------------------------

_LAYER_KEYS = ("input_dim", "output_dim", "activation", "dropout")


@attrs.frozen
class LayerSpec:
    """One dense layer: ``A = activation(A_prev @ W + b)``, then dropout when training."""

    input_dim: int = field(integer(1))
    output_dim: int = field(integer(1))
    activation: str = attrs.field(validator=one_of(ACTIVATIONS))
    dropout: float = field(number(0, 1), default=0.0)

    @classmethod
    def from_dict(cls, layer: Mapping[str, Any], index: int = 0) -> "LayerSpec":
        """A layer from the tutorial's dict form, e.g. ``{"input_dim": 2, "output_dim": 50,
        "activation": "relu"}``; ``"dropout"`` is optional."""
        if not isinstance(layer, Mapping):
            raise TypeError(f"layer {index} must be a dict, got {type(layer).__name__}")
        unknown = sorted(set(layer) - set(_LAYER_KEYS))
        missing = [k for k in _LAYER_KEYS[:3] if k not in layer]
        if unknown or missing:
            problem = (f"layer {index} has unknown keys {unknown} and missing keys {missing}; "
                       f"a layer dict takes {list(_LAYER_KEYS)} (dropout optional)")
            raise UnknownKeyError((), problem) if unknown else ValueError(problem)
        try:
            return cls(**layer)
        except SettingError as error:
            raise error.within("layers", index) from None

    def to_dict(self) -> dict[str, Any]:
        layer = {"input_dim": self.input_dim, "output_dim": self.output_dim,
                 "activation": self.activation}
        if self.dropout:
            layer["dropout"] = self.dropout
        return layer


def _chained(instance: Any, attribute: attrs.Attribute, layers: tuple[LayerSpec, ...]) -> None:
    if not layers:
        raise SettingError("layers", "an architecture needs at least one layer, got an empty list")
    for index, (before, layer) in enumerate(zip(layers, layers[1:]), start=1):
        if layer.input_dim != before.output_dim:
            raise SettingError(
                ("layers", index, "input_dim"), f"is {layer.input_dim} but layer {index - 1} has "
                f"output_dim = {before.output_dim}; a layer's input_dim must equal the "
                "previous layer's output_dim")
    if layers[-1].dropout:
        raise SettingError(("layers", len(layers) - 1, "dropout"), "cannot be set on the output layer; "
                           "put dropout on a hidden layer")


@attrs.frozen
class Architecture:
    """A chain of dense layers, each one's input the previous one's output."""

    layers: tuple[LayerSpec, ...] = attrs.field(converter=tuple, validator=_chained)

    @classmethod
    def from_dicts(cls, layers: Sequence[Mapping[str, Any]]) -> "Architecture":
        """The architecture described by the tutorial's list of layer dicts."""
        if isinstance(layers, (str, bytes, Mapping)) or not isinstance(layers, Iterable):
            raise TypeError(f"expected a list of layer dicts, got {type(layers).__name__}")
        return cls(tuple(LayerSpec.from_dict(layer, i) for i, layer in enumerate(layers)))

    def to_dicts(self) -> list[dict[str, Any]]:
        return [layer.to_dict() for layer in self.layers]

    @property
    def input_dim(self) -> int:
        return self.layers[0].input_dim

    @property
    def output_dim(self) -> int:
        return self.layers[-1].output_dim

    @property
    def output_activation(self) -> str:
        return self.layers[-1].activation

    @property
    def parameter_count(self) -> int:
        """Weights and biases of every layer."""
        return sum(l.input_dim * l.output_dim + l.output_dim for l in self.layers)

    def describe(self) -> str:
        """The network at a glance: ``2-50-100-1 (relu, relu, sigmoid)``."""
        sizes = "-".join(str(n) for n in [self.input_dim, *(l.output_dim for l in self.layers)])
        return f"{sizes} ({', '.join(l.activation for l in self.layers)})"


def as_architecture(architecture: Architecture | Sequence[Mapping[str, Any]]) -> Architecture:
    """Accept an Architecture or the tutorial's list of dicts wherever one is needed."""
    if isinstance(architecture, Architecture):
        return architecture
    return Architecture.from_dicts(architecture)


# --- arrays ---------------------------------------------------------------------------


def _dense_shapes(instance: "Dense", attribute: attrs.Attribute, b: Array) -> None:
    W = instance.W
    if W.ndim != 2 or b.shape != (W.shape[1],):
        raise ValueError(
            f"a dense layer needs W of shape (input_dim, output_dim) and b of shape "
            f"(output_dim,), got W {W.shape} and b {b.shape}"
        )
    if W.dtype != b.dtype:
        raise TypeError(f"W and b must share a dtype, got {W.dtype} and {b.dtype}")


@attrs.frozen(eq=False)
class Dense:
    """The arrays of one dense layer: ``W`` (input_dim, output_dim) and ``b`` (output_dim,).

    Also the shape of its gradients and of per-parameter optimizer state.
    """

    W: Array = attrs.field(converter=readonly)
    b: Array = attrs.field(converter=readonly, validator=_dense_shapes)


def _dense_tuple(layers: Iterable[Dense]) -> tuple[Dense, ...]:
    layers = tuple(layers)
    for i, layer in enumerate(layers):
        if not isinstance(layer, Dense):
            raise TypeError(f"layer {i} must be a Dense, got {type(layer).__name__}")
    return layers


def _match_architecture(instance: "Params", attribute: attrs.Attribute, arch: Architecture) -> None:
    # Runs on every Params the optimizer makes, so it is kept to attribute comparisons.
    layers = instance.layers
    if len(arch.layers) != len(layers):
        raise ValueError(
            f"the architecture has {len(arch.layers)} layers but {len(layers)} were given"
        )
    dtype = layers[0].W.dtype
    for i, (spec, layer) in enumerate(zip(arch.layers, layers)):
        W = layer.W
        if W.dtype is not dtype and W.dtype != dtype or dtype.char not in "fd":
            dtypes = sorted({layer.W.dtype.name for layer in layers})
            raise TypeError(f"all layers must share one dtype of {list(DTYPES)}, got {dtypes}")
        if W.shape != (spec.input_dim, spec.output_dim):
            raise ValueError(
                f"layer {i}: W has shape {W.shape} but the architecture says "
                f"({spec.input_dim}, {spec.output_dim})"
            )


@attrs.frozen(eq=False)
class Params:
    """A network's parameters, one Dense per layer, with their (static) architecture."""

    layers: tuple[Dense, ...] = attrs.field(converter=_dense_tuple)
    architecture: Architecture = attrs.field(validator=_match_architecture)

    @property
    def dtype(self) -> np.dtype:
        return self.layers[0].W.dtype


@attrs.frozen(eq=False)
class Grads:
    """Gradients of the loss, one Dense per layer; also the shape of optimizer updates
    and moment estimates."""

    layers: tuple[Dense, ...] = attrs.field(converter=_dense_tuple)


def _readonly_tuple(arrays: Iterable[Array | None]) -> tuple[Array | None, ...]:
    return tuple(None if a is None else readonly(a) for a in arrays)


@attrs.frozen(eq=False)
class Cache:
    """What ``backward`` needs from ``forward``: per layer, its input ``A_prev``, its
    pre-activation ``Z`` and its output ``A`` (after dropout), plus the dropout masks
    (``None`` for layers without one)."""

    inputs: tuple[Array, ...] = attrs.field(converter=_readonly_tuple)
    pre_activations: tuple[Array, ...] = attrs.field(converter=_readonly_tuple)
    outputs: tuple[Array, ...] = attrs.field(converter=_readonly_tuple)
    masks: tuple[Array | None, ...] = attrs.field(converter=_readonly_tuple)


@attrs.frozen(eq=False)
class Batch:
    """Inputs ``x`` (n_samples, n_features) and targets ``y``."""

    x: Array = attrs.field(converter=readonly)
    y: Array = attrs.field(converter=readonly)


# --- tree helpers ---------------------------------------------------------------------

Tree = TypeVar("Tree", Params, Grads)


def tree_leaves(tree: Params | Grads) -> list[Array]:
    """The arrays of a tree in a fixed order: W0, b0, W1, b1, ..."""
    return [array for layer in tree.layers for array in (layer.W, layer.b)]


def params_digest(tree: Params | Grads) -> str:
    """SHA-256 over the arrays of ``tree`` in ``tree_leaves`` order, each preceded by its
    position, dtype and shape, so equal digests mean bit-identical parameters."""
    import hashlib   # here, not at the top: it is the slowest import of the package's core

    digest = hashlib.sha256()
    for i, array in enumerate(tree_leaves(tree)):
        digest.update(f"{i}:{array.dtype.str}:{array.shape}\n".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def tree_map(fn: Callable[..., Array], tree: Tree, *rest: Params | Grads) -> Tree:
    """Apply ``fn`` leaf by leaf over trees of one structure; the result has the type
    (and, for Params, the architecture) of the first tree.

    ``fn`` must return new arrays; they are made read-only in place.
    """
    layers = []
    for layer, *others in zip(tree.layers, *(r.layers for r in rest)):
        W = fn(layer.W, *(o.W for o in others))
        b = fn(layer.b, *(o.b for o in others))
        W.setflags(write=False)   # fresh arrays: frozen in place, so Dense keeps them as they are
        b.setflags(write=False)
        layers.append(Dense(W, b))
    return _rebuild(tree, tuple(layers))


def _rebuild(tree: Tree, layers: tuple[Dense, ...]) -> Tree:
    """A tree of ``tree``'s type (and architecture) holding ``layers``, validated as any."""
    if isinstance(tree, Params):
        return Params(layers, tree.architecture)
    return Grads(layers)


def tree_of(kind: type, leaves: Sequence[Array], architecture: Architecture | None = None
            ) -> Params | Grads:
    """A Grads, or a Params of ``architecture`` (``kind``), holding ``leaves`` in
    ``tree_leaves`` order; leaves still writeable are stored as read-only views."""
    layers = tuple(Dense(leaves[i], leaves[i + 1]) for i in range(0, len(leaves), 2))
    return Params(layers, architecture) if kind is Params else Grads(layers)


def tree_unflatten(tree: Tree, leaves: Sequence[Array]) -> Tree:
    """A tree shaped like ``tree`` holding ``leaves`` (in ``tree_leaves`` order); leaves
    still writeable are stored as read-only views."""
    if len(leaves) != 2 * len(tree.layers):
        raise ValueError(f"expected {2 * len(tree.layers)} arrays, got {len(leaves)}")
    if isinstance(tree, Params):
        return tree_of(Params, leaves, tree.architecture)
    return tree_of(Grads, leaves)


def zeros_like(tree: Params | Grads) -> Grads:
    """A Grads of zeros shaped like ``tree`` (optimizer state starts here)."""
    return Grads(tuple(Dense(freeze(np.zeros_like(layer.W)), freeze(np.zeros_like(layer.b)))
                       for layer in tree.layers))
