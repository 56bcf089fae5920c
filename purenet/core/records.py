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

from purenet.core.activations import get_activation

Array = np.ndarray
DTYPES = ("float32", "float64")


def readonly(value: Any) -> Array:
    """``value`` as an array that cannot be written to (a view when it already is one)."""
    array = np.asarray(value)
    if array.flags.writeable:
        array = array.view()
        array.flags.writeable = False
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


def _positive_int(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{attribute.name} must be an int, got {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"{attribute.name} must be at least 1, got {value}")


def _known_activation(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    get_activation(value)


def _dropout_rate(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"dropout must be a rate in [0, 1), got {value!r}")


@attrs.frozen
class LayerSpec:
    """One dense layer: ``A = activation(A_prev @ W + b)``, then dropout when training."""

    input_dim: int = attrs.field(validator=_positive_int)
    output_dim: int = attrs.field(validator=_positive_int)
    activation: str = attrs.field(validator=_known_activation)
    dropout: float = attrs.field(default=0.0, validator=_dropout_rate)

    @classmethod
    def from_dict(cls, layer: Mapping[str, Any], index: int = 0) -> "LayerSpec":
        """A layer from the tutorial's dict form, e.g. ``{"input_dim": 2, "output_dim": 50,
        "activation": "relu"}``; ``"dropout"`` is optional."""
        if not isinstance(layer, Mapping):
            raise TypeError(f"layer {index} must be a dict, got {type(layer).__name__}")
        unknown = sorted(set(layer) - set(_LAYER_KEYS))
        missing = [k for k in _LAYER_KEYS[:3] if k not in layer]
        if unknown or missing:
            raise ValueError(
                f"layer {index} has unknown keys {unknown} and missing keys {missing}; "
                f"a layer dict takes {list(_LAYER_KEYS)} (dropout optional)"
            )
        try:
            return cls(**layer)
        except (TypeError, ValueError) as error:
            raise type(error)(f"layer {index}: {error}") from None

    def to_dict(self) -> dict[str, Any]:
        layer = {"input_dim": self.input_dim, "output_dim": self.output_dim,
                 "activation": self.activation}
        if self.dropout:
            layer["dropout"] = self.dropout
        return layer


def _chained(instance: Any, attribute: attrs.Attribute, layers: tuple[LayerSpec, ...]) -> None:
    if not layers:
        raise ValueError("an architecture needs at least one layer, got an empty list")
    for index, (before, layer) in enumerate(zip(layers, layers[1:]), start=1):
        if layer.input_dim != before.output_dim:
            raise ValueError(
                f"layer {index} has input_dim={layer.input_dim} but layer {index - 1} has "
                f"output_dim={before.output_dim}; a layer's input_dim must equal the "
                "previous layer's output_dim"
            )
    if layers[-1].dropout:
        raise ValueError("the output layer cannot have dropout; put it on a hidden layer")


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

    @classmethod
    def trusted(cls, W: Array, b: Array) -> "Dense":
        """Build from arrays the engine made itself: read-only, no shape checks (hot path)."""
        W.flags.writeable = False
        b.flags.writeable = False
        dense = object.__new__(cls)
        object.__setattr__(dense, "W", W)
        object.__setattr__(dense, "b", b)
        return dense


def _dense_tuple(layers: Iterable[Dense]) -> tuple[Dense, ...]:
    layers = tuple(layers)
    for i, layer in enumerate(layers):
        if not isinstance(layer, Dense):
            raise TypeError(f"layer {i} must be a Dense, got {type(layer).__name__}")
    return layers


def _match_architecture(instance: "Params", attribute: attrs.Attribute, arch: Architecture) -> None:
    if len(arch.layers) != len(instance.layers):
        raise ValueError(
            f"the architecture has {len(arch.layers)} layers but {len(instance.layers)} "
            "were given"
        )
    dtypes = {layer.W.dtype for layer in instance.layers}
    if len(dtypes) != 1 or next(iter(dtypes)).name not in DTYPES:
        raise TypeError(f"all layers must share one dtype of {list(DTYPES)}, got {dtypes}")
    for i, (spec, layer) in enumerate(zip(arch.layers, instance.layers)):
        if layer.W.shape != (spec.input_dim, spec.output_dim):
            raise ValueError(
                f"layer {i}: W has shape {layer.W.shape} but the architecture says "
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

    @classmethod
    def trusted(cls, layers: tuple[Dense, ...]) -> "Grads":
        """Build from Dense records the engine made (hot path): no checks."""
        grads = object.__new__(cls)
        object.__setattr__(grads, "layers", layers)
        return grads


def _freeze_own(arrays: Iterable[Array | None]) -> tuple[Array | None, ...]:
    """Mark arrays the engine made itself read-only, in place (no views)."""
    for array in arrays:
        if array is not None:
            array.flags.writeable = False
    return tuple(arrays)


@attrs.frozen(eq=False)
class Cache:
    """What ``backward`` needs from ``forward``: per layer, its input ``A_prev``, its
    pre-activation ``Z`` and its output ``A`` (after dropout), plus the dropout masks
    (``None`` for layers without one)."""

    inputs: tuple[Array, ...] = attrs.field(converter=lambda xs: tuple(map(readonly, xs)))
    pre_activations: tuple[Array, ...] = attrs.field(converter=lambda xs: tuple(map(readonly, xs)))
    outputs: tuple[Array, ...] = attrs.field(converter=lambda xs: tuple(map(readonly, xs)))
    masks: tuple[Array | None, ...] = attrs.field(
        converter=lambda xs: tuple(None if m is None else readonly(m) for m in xs))

    @classmethod
    def trusted(cls, inputs: list[Array], pre_activations: list[Array], outputs: list[Array],
                masks: list[Array | None]) -> "Cache":
        """Build from ``forward``'s own arrays (hot path): frozen in place, except the
        arrays the caller also holds (its input, and the output ``forward`` returns, which
        an identity output layer shares with its pre-activation): those get read-only
        views."""
        cache = object.__new__(cls)
        for name, arrays, shared in (("inputs", inputs, 0), ("pre_activations", pre_activations, -1),
                                     ("outputs", outputs, -1), ("masks", masks, None)):
            frozen = list(arrays)
            if shared is not None:
                frozen[shared] = readonly(frozen[shared])
            object.__setattr__(cache, name, _freeze_own(frozen))
        return cache


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
    layers = tuple(
        Dense.trusted(fn(layer.W, *(o.W for o in others)), fn(layer.b, *(o.b for o in others)))
        for layer, *others in zip(tree.layers, *(r.layers for r in rest))
    )
    return _with_layers(tree, layers)


def _with_layers(tree: Tree, layers: tuple[Dense, ...]) -> Tree:
    # Skips validation: the layers came from a tree already known to fit.
    new = object.__new__(type(tree))
    object.__setattr__(new, "layers", layers)
    if isinstance(tree, Params):
        object.__setattr__(new, "architecture", tree.architecture)
    return new


def tree_unflatten(tree: Tree, leaves: Sequence[Array]) -> Tree:
    """A tree shaped like ``tree`` holding ``leaves`` (in ``tree_leaves`` order)."""
    if len(leaves) != 2 * len(tree.layers):
        raise ValueError(f"expected {2 * len(tree.layers)} arrays, got {len(leaves)}")
    layers = tuple(Dense.trusted(leaves[i], leaves[i + 1]) for i in range(0, len(leaves), 2))
    return _with_layers(tree, layers)


def zeros_like(tree: Params | Grads) -> Grads:
    """A Grads of zeros shaped like ``tree`` (optimizer state starts here)."""
    return Grads(tuple(Dense.trusted(np.zeros_like(l.W), np.zeros_like(l.b)) for l in tree.layers))
