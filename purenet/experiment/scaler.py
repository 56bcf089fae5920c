"""A run's standardisation: ``scaler.json`` in its run directory, and its checks.

The file is data until checked: ``Scaler.from_json`` refuses anything but the six keys it
writes, with arrays of the right length, finite, and scales above zero; ``check_against``
refuses a scaler that does not fit the run's network and data settings. A scaler with a
1-element mean would otherwise be broadcast over every feature without a word.
"""

from __future__ import annotations

import json
from typing import Any

import attrs
import numpy as np

from purenet.experiment import limits

Array = np.ndarray
FIELDS = ("feature_names", "target", "x_mean", "x_scale", "y_mean", "y_scale")


@attrs.frozen(eq=False)
class Scaler:
    """Per-feature ``(x - x_mean) / x_scale`` (and the same for regression targets), with
    the names of the features and the target. Means and scales come from the training
    part alone; a constant feature gets scale 1."""

    feature_names: tuple[str, ...] = attrs.field(converter=tuple)
    target: str
    x_mean: Array | None = None
    x_scale: Array | None = None
    y_mean: Array | None = None
    y_scale: Array | None = None

    def transform_x(self, x: Array) -> Array:
        return x if self.x_mean is None else (x - self.x_mean) / self.x_scale

    def transform_y(self, y: Array) -> Array:
        return y if self.y_mean is None else (y - self.y_mean) / self.y_scale

    def inverse_y(self, y: Array) -> Array:
        return y if self.y_mean is None else y * self.y_scale + self.y_mean

    def to_json(self) -> str:
        plain = {name: getattr(self, name) for name in FIELDS}
        return json.dumps({k: v.tolist() if isinstance(v, np.ndarray) else v
                           for k, v in plain.items()}, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, path: str = "scaler.json") -> "Scaler":
        """The scaler ``text`` holds, checked.

        Raises:
            ValueError: empty, not JSON, other keys, or values of the wrong kind, shape or
                range; the message names ``path`` and the key.
        """
        if not text.strip():
            raise ValueError(f"{path} is empty; it should hold the run's feature names and "
                             "standardisation (train the run again to rewrite it)")
        plain = limits.parse_json(text, path, "a scaler file (scaler.json)")
        if not isinstance(plain, dict) or sorted(plain) != sorted(FIELDS):
            found = sorted(plain) if isinstance(plain, dict) else type(plain).__name__
            raise ValueError(f"{path} must be a JSON object with the keys {list(FIELDS)}, "
                             f"got {found}")
        names, target = plain["feature_names"], plain["target"]
        if not isinstance(names, list) or not names or \
                not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
            raise ValueError(f"{path}: feature_names must be a non-empty list of distinct "
                             f"names, got {str(names)[:200]}")
        if not isinstance(target, str):
            raise ValueError(f"{path}: target must be a name, got {str(target)[:100]}")
        arrays = {k: _pair_array(path, k, plain[k], len(names) if k[0] == "x" else None)
                  for k in FIELDS[2:]}
        for a, b in (("x_mean", "x_scale"), ("y_mean", "y_scale")):
            if (arrays[a] is None) != (arrays[b] is None):
                raise ValueError(f"{path}: {a} and {b} go together; one of them is missing")
            if arrays[a] is not None and arrays[a].shape != arrays[b].shape:
                raise ValueError(f"{path}: {a} has shape {arrays[a].shape} but {b} "
                                 f"{arrays[b].shape}")
        return cls(names, target, **arrays)

    def mismatches(self, input_dim: int, output_dim: int, standardize: bool,
                   standardize_target: bool) -> list[str]:
        """How this scaler fails to fit a network (``input_dim`` features, ``output_dim``
        outputs) trained with the data settings ``standardize``, ``standardize_target``."""
        found = []
        if len(self.feature_names) != input_dim:
            found.append(f"it names {len(self.feature_names)} features but the network takes "
                         f"{input_dim}")
        for key, wanted, present, pair in (
                ("data.standardize", standardize, self.x_mean, "x_mean and x_scale"),
                ("data.standardize_target", standardize_target, self.y_mean,
                 "y_mean and y_scale")):
            if wanted != (present is not None):
                found.append(f"{key} is {str(wanted).lower()} but the scaler "
                             f"{'lacks' if wanted else 'has'} {pair}")
        if self.y_mean is not None and self.y_mean.size not in (1, output_dim):
            found.append(f"y_mean has {self.y_mean.size} values but the network has "
                         f"{output_dim} outputs")
        return found


def _pair_array(path: str, key: str, value: Any, length: int | None) -> Array | None:
    """A mean or scale: None, or finite numbers (scales > 0), ``length`` of them when
    given (x), a number or a list (y)."""
    if value is None:
        return None
    items = value if isinstance(value, list) else [value]
    if not all(type(v) in (int, float) for v in items):   # no "1", no true, no [[1]]
        raise ValueError(f"{path}: {key} must be a number or a list of numbers, got "
                         f"{str(value)[:100]}")
    array = np.asarray(value, dtype=np.float64)
    ok_shape = array.shape == (length,) if length is not None else array.ndim <= 1
    if not ok_shape:
        raise ValueError(f"{path}: {key} has shape {array.shape}; expected "
                         + (f"({length},), one value per feature" if length is not None
                            else "a number or a list, one value per output"))
    if not np.isfinite(array).all() or (key.endswith("scale") and (array <= 0).any()):
        raise ValueError(f"{path}: {key} must hold finite numbers"
                         + (" above 0" if key.endswith("scale") else "")
                         + f", got {array.tolist()[:8]}")
    return array
