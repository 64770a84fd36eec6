"""Input/output scaling folded into the network, so formulas and generated code take
and return values in the user's original units.

A :class:`Scaling` maps raw values to the model's space, per feature:
``scaled = raw * scale + offset``.  MinMax and standard scaling are both of this form,
as are scikit-learn's ``MinMaxScaler`` (``scale_``, ``min_``) and ``StandardScaler``
(``mean_``, ``scale_``).

>>> s = Scaling.minmax([-1.0], [1.0])         # [-1, 1] -> [0, 1]
>>> float(s.scale[0]), float(s.offset[0])
(0.5, 0.5)
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from typing import Any, Optional, Sequence

import numpy as np

from .errors import ValidationError
from .ir import Affine, Network
from .passes import fold_affine


def _vector(values: Any, what: str) -> np.ndarray:
    try:
        array = np.atleast_1d(np.asarray(values, dtype=np.float64))
    except (TypeError, ValueError):
        raise ValidationError(f"{what} must be a number or a list of numbers, got {values!r}") from None
    if array.ndim != 1 or not np.all(np.isfinite(array)):
        raise ValidationError(f"{what} must be a finite 1-D list of numbers, got {values!r}")
    return array


@dataclass(frozen=True, eq=False)
class Scaling:
    """``scaled = raw * scale + offset`` per feature."""

    scale: np.ndarray
    offset: np.ndarray

    def __post_init__(self) -> None:
        scale, offset = _vector(self.scale, "scale"), _vector(self.offset, "offset")
        scale, offset = np.broadcast_arrays(scale, offset)
        if np.any(scale == 0):
            raise ValidationError("a scaling factor is zero (a constant feature?); it cannot be inverted")
        object.__setattr__(self, "scale", scale.copy())
        object.__setattr__(self, "offset", offset.copy())

    @classmethod
    def minmax(cls, minimum: Any, maximum: Any, feature_range: Sequence[float] = (0.0, 1.0)) -> "Scaling":
        """``MinMaxScaler``: [minimum, maximum] -> feature_range."""
        lo, hi = _vector(minimum, "min"), _vector(maximum, "max")
        if np.any(hi <= lo):
            raise ValidationError(f"min-max scaling needs max > min for every feature, got {lo} and {hi}")
        a, b = (float(v) for v in feature_range)
        scale = (b - a) / (hi - lo)
        return cls(scale, a - lo * scale)

    @classmethod
    def standard(cls, mean: Any, std: Any) -> "Scaling":
        """``StandardScaler``: (raw - mean) / std."""
        mean, std = _vector(mean, "mean"), _vector(std, "std")
        if np.any(std <= 0):
            raise ValidationError(f"standard scaling needs std > 0 for every feature, got {std}")
        return cls(1.0 / std, -mean / std)

    @classmethod
    def from_sklearn(cls, scaler: Any) -> "Scaling":
        """A fitted scikit-learn ``MinMaxScaler`` or ``StandardScaler`` (duck-typed)."""
        if hasattr(scaler, "min_") and hasattr(scaler, "scale_"):
            return cls(scaler.scale_, scaler.min_)
        if hasattr(scaler, "scale_") or hasattr(scaler, "mean_"):
            mean = getattr(scaler, "mean_", None)
            std = getattr(scaler, "scale_", None)
            mean = np.zeros_like(std) if mean is None else mean
            std = np.ones_like(mean) if std is None else std
            return cls.standard(mean, std)
        raise ValidationError(
            f"cannot read a scaling from a {type(scaler).__name__}; pass a fitted MinMaxScaler "
            "or StandardScaler"
        )

    @classmethod
    def from_dict(cls, spec: dict) -> "Scaling":
        """``{"kind": "minmax", "min": [...], "max": [...], "feature_range": [0, 1]}`` or
        ``{"kind": "standard", "mean": [...], "std": [...]}``."""
        kind = spec.get("kind")
        try:
            if kind == "minmax":
                return cls.minmax(spec["min"], spec["max"], spec.get("feature_range", (0.0, 1.0)))
            if kind == "standard":
                return cls.standard(spec["mean"], spec["std"])
        except KeyError as exc:
            raise ValidationError(f"{kind} scaling needs {exc}") from None
        raise ValidationError(f"scaling kind must be 'minmax' or 'standard', got {kind!r}")

    def inverse(self) -> "Scaling":
        """The map back from the model's space to raw values."""
        return Scaling(1.0 / self.scale, -self.offset / self.scale)

    def apply(self, raw: Any) -> np.ndarray:
        return np.asarray(raw, dtype=np.float64) * self.scale + self.offset

    def affine(self, width: int, name: str) -> Affine:
        if self.scale.shape[0] not in (1, width):
            raise ValidationError(f"{name} has {self.scale.shape[0]} features, the network {width}")
        return Affine(np.broadcast_to(self.scale, (width,)), np.broadcast_to(self.offset, (width,)), name)


def read_scaling_file(path: "str | os.PathLike[str]") -> tuple[Optional[Scaling], Optional[Scaling]]:
    """(input, output) scalings from a JSON file with optional ``input``/``output`` keys."""
    try:
        with open(path, encoding="utf-8") as handle:
            spec = json.load(handle)
    except FileNotFoundError:
        raise ValidationError(f"scaling file not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValidationError(f"scaling file {path} is not valid JSON: {exc}") from None
    if not isinstance(spec, dict) or not ({"input", "output"} & set(spec)):
        raise ValidationError(f"scaling file {path} needs an 'input' and/or 'output' object")
    return tuple(Scaling.from_dict(spec[k]) if spec.get(k) else None for k in ("input", "output"))  # type: ignore[return-value]


def with_scaling(net: Network, inputs: Optional[Any] = None, outputs: Optional[Any] = None,
                 fold: bool = True) -> Network:
    """``net`` taking raw inputs and returning raw outputs.

    ``inputs``/``outputs`` are :class:`Scaling` objects or fitted scikit-learn scalers;
    the output scaling is the one the targets were scaled with during training, so its
    inverse is applied.  Affine steps are folded into Dense layers where that is exact.
    """
    inputs = as_scaling(inputs)
    outputs = as_scaling(outputs)
    layers = list(net.layers)
    if inputs is not None:
        layers.insert(0, inputs.affine(net.n_inputs, "input scaling"))
    if outputs is not None:
        layers.append(outputs.inverse().affine(net.n_outputs, "output scaling"))
    scaled = replace(net, layers=tuple(layers))
    return fold_affine(scaled) if fold else scaled


def as_scaling(value: Any) -> Optional[Scaling]:
    if value is None or isinstance(value, Scaling):
        return value
    return Scaling.from_sklearn(value)
