"""Input/output scaling folded into the network, so formulas and generated code take
and return values in the user's original units.

A :class:`Scaling` maps raw values to the model's space, per feature:
``scaled = raw * scale + offset``.  MinMax and standard scaling are both of this form,
as are scikit-learn's ``MinMaxScaler``, ``StandardScaler``, ``RobustScaler`` and
``MaxAbsScaler``.  A constant feature (max == min, std == 0) gets scale 1, as in
scikit-learn.  Every scaling folded in is recorded in the network's ``notes``, which the
targets print in the generated file.

>>> s = Scaling.minmax([-1.0], [1.0])         # [-1, 1] -> [0, 1]
>>> float(s.scale[0]), float(s.offset[0])
(0.5, 0.5)
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Optional, Sequence

import numpy as np

from .errors import ValidationError
from .ir import Affine, Network
from .passes import fold_affine

#: A scaling file is a few vectors of numbers: refuse anything larger unread.
MAX_SCALING_FILE_BYTES = 16 << 20


def _vector(values: Any, what: str) -> np.ndarray:
    try:
        array = np.atleast_1d(np.asarray(values, dtype=np.float64))
    except (TypeError, ValueError):
        raise ValidationError(f"{what} must be a number or a list of numbers, got {_short(values)}") from None
    if array.ndim != 1:
        raise ValidationError(f"{what} must be a number or a flat list of numbers, got {_short(values)}")
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise ValidationError(f"{what} of feature {bad[0]} is {array[bad[0]]}; every value must be finite")
    return array


def _short(values: Any, limit: int = 60) -> str:
    text = repr(values)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _pair(first: np.ndarray, second: np.ndarray, names: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """Two per-feature vectors of one length (a single value applies to every feature)."""
    if len(first) != len(second) and 1 not in (len(first), len(second)):
        raise ValidationError(f"{names[0]} has {len(first)} values and {names[1]} {len(second)}; "
                              "give one value per feature (or one for all) in both")
    return tuple(array.copy() for array in np.broadcast_arrays(first, second))  # type: ignore[return-value]


def summarise(values: Any, shown: int = 3) -> str:
    """A short one-line form of a vector for notes and messages: ``[1, 2, 3, ..., 9] (9 values)``."""
    array = np.atleast_1d(np.asarray(values, dtype=np.float64))
    text = [f"{v:.6g}" for v in array]
    if len(text) <= shown + 1:
        return "[" + ", ".join(text) + "]"
    return "[" + ", ".join(text[:shown]) + f", ..., {text[-1]}] ({len(text)} values)"


@dataclass(frozen=True, eq=False)
class Scaling:
    """``scaled = raw * scale + offset`` per feature; ``spec`` is the JSON form it was
    built from (for the scaling file and the network's notes)."""

    scale: np.ndarray
    offset: np.ndarray
    spec: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        scale, offset = _pair(_vector(self.scale, "scale"), _vector(self.offset, "offset"), ("scale", "offset"))
        zero = np.flatnonzero(scale == 0)
        if zero.size:
            raise ValidationError(f"the scaling factor of feature {zero[0]} is zero; it cannot be inverted")
        object.__setattr__(self, "scale", scale)
        object.__setattr__(self, "offset", offset)
        if not self.spec:
            object.__setattr__(self, "spec", {"kind": "affine", "scale": _floats(scale), "offset": _floats(offset)})

    @classmethod
    def minmax(cls, minimum: Any, maximum: Any, feature_range: Sequence[float] = (0.0, 1.0)) -> "Scaling":
        """``MinMaxScaler``: [minimum, maximum] -> feature_range (a constant feature: scale 1)."""
        lo, hi = _pair(_vector(minimum, "min"), _vector(maximum, "max"), ("min", "max"))
        below = np.flatnonzero(hi < lo)
        if below.size:
            i = below[0]
            raise ValidationError(f"min-max scaling of feature {i}: max {hi[i]:g} is below min {lo[i]:g}")
        a, b = _feature_range(feature_range)
        span = hi - lo
        scale = (b - a) / np.where(span == 0, 1.0, span)  # as scikit-learn's _handle_zeros_in_scale
        spec = {"kind": "minmax", "min": _floats(lo), "max": _floats(hi), "feature_range": [a, b]}
        return cls(scale, a - lo * scale, spec)

    @classmethod
    def standard(cls, mean: Any, std: Any) -> "Scaling":
        """``StandardScaler``: (raw - mean) / std (std == 0: scale 1, as scikit-learn)."""
        mean, std = _pair(_vector(mean, "mean"), _vector(std, "std"), ("mean", "std"))
        negative = np.flatnonzero(std < 0)
        if negative.size:
            i = negative[0]
            raise ValidationError(f"standard scaling of feature {i}: std {std[i]:g} is negative")
        std = np.where(std == 0, 1.0, std)
        return cls(1.0 / std, -mean / std, {"kind": "standard", "mean": _floats(mean), "std": _floats(std)})

    @classmethod
    def from_sklearn(cls, scaler: Any) -> "Scaling":
        """A fitted scikit-learn ``MinMaxScaler``, ``StandardScaler``, ``RobustScaler``
        or ``MaxAbsScaler`` (recognised by class name, so sklearn is not imported)."""
        reader = next((_SKLEARN[k.__name__] for k in type(scaler).__mro__ if k.__name__ in _SKLEARN), None)
        if reader is None:
            raise ValidationError(f"cannot read a scaling from a {type(scaler).__name__}; pass a fitted "
                                  f"{', '.join(_SKLEARN)} or a mlpcodegen.core.scaling.Scaling")
        try:
            return reader(scaler)
        except AttributeError as exc:
            raise ValidationError(f"the {type(scaler).__name__} is not fitted ({exc}); call fit() first") from None

    @classmethod
    def from_dict(cls, spec: Any, where: str = "scaling") -> "Scaling":
        """``{"kind": "minmax", "min": [...], "max": [...], "feature_range": [0, 1]}``,
        ``{"kind": "standard", "mean": [...], "std": [...]}`` or
        ``{"kind": "affine", "scale": [...], "offset": [...]}``."""
        if not isinstance(spec, dict):
            raise ValidationError(f"{where} must be an object such as "
                                  f'{{"kind": "minmax", "min": [..], "max": [..]}}, got {_short(spec)}')
        kind = spec.get("kind")
        builders: dict[Any, Callable[[dict], Scaling]] = {
            "minmax": lambda s: cls.minmax(s["min"], s["max"], s.get("feature_range", (0.0, 1.0))),
            "standard": lambda s: cls.standard(s["mean"], s["std"]),
            "affine": lambda s: cls(s["scale"], s["offset"]),
        }
        if kind not in builders:
            raise ValidationError(f"{where}: kind must be one of {', '.join(builders)}, got {_short(kind)}")
        try:
            return builders[kind](spec)
        except KeyError as exc:
            raise ValidationError(f"{where}: {kind} scaling needs {exc}") from None
        except ValidationError as exc:
            raise ValidationError(f"{where}: {exc}") from None

    def to_dict(self) -> dict:
        """The JSON form (:func:`write_scaling_file`); floats round-trip exactly."""
        return dict(self.spec)

    def describe(self) -> str:
        """One short line: the kind and its (summarised) parameters."""
        words = [str(self.spec.get("kind", "affine"))]
        for key, value in self.spec.items():
            if key != "kind" and not (key == "feature_range" and list(value) == [0.0, 1.0]):
                words.append(f"{key} {summarise(value)}")
        return " ".join(words)

    def inverse(self) -> "Scaling":
        """The map back from the model's space to raw values."""
        return Scaling(1.0 / self.scale, -self.offset / self.scale)

    def apply(self, raw: Any) -> np.ndarray:
        return np.asarray(raw, dtype=np.float64) * self.scale + self.offset

    def affine(self, width: int, name: str) -> Affine:
        if self.scale.shape[0] not in (1, width):
            raise ValidationError(f"{name} has {self.scale.shape[0]} features, the network {width}")
        return Affine(np.broadcast_to(self.scale, (width,)), np.broadcast_to(self.offset, (width,)), name)


def _floats(values: np.ndarray) -> list[float]:
    return [float(v) for v in values]


def _feature_range(feature_range: Any) -> tuple[float, float]:
    values = _vector(feature_range, "feature_range")
    if len(values) != 2 or not values[0] < values[1]:
        raise ValidationError(f"feature_range must be two numbers, low < high, got {_short(feature_range)}")
    return float(values[0]), float(values[1])


def _from_minmax(scaler: Any) -> Scaling:
    if getattr(scaler, "clip", False):
        raise ValidationError("a MinMaxScaler with clip=True cannot be folded in (clipping is not affine); "
                              "refit it with clip=False")
    return Scaling.minmax(scaler.data_min_, scaler.data_max_, scaler.feature_range)


def _from_standard(scaler: Any) -> Scaling:
    # transform() only uses what with_mean / with_std switch on (mean_ is fitted either way).
    mean = scaler.mean_ if getattr(scaler, "with_mean", True) and scaler.mean_ is not None else 0.0
    std = scaler.scale_ if getattr(scaler, "with_std", True) and scaler.scale_ is not None else 1.0
    return Scaling.standard(*np.broadcast_arrays(np.asarray(mean, dtype=float), np.asarray(std, dtype=float)))


def _from_robust(scaler: Any) -> Scaling:
    center = scaler.center_ if scaler.center_ is not None else 0.0
    scale = scaler.scale_ if scaler.scale_ is not None else 1.0
    return Scaling.standard(*np.broadcast_arrays(np.asarray(center, dtype=float), np.asarray(scale, dtype=float)))


def _from_maxabs(scaler: Any) -> Scaling:
    scale = np.asarray(scaler.scale_, dtype=float)
    return Scaling.standard(np.zeros_like(scale), scale)


_SKLEARN: dict[str, Callable[[Any], Scaling]] = {
    "MinMaxScaler": _from_minmax, "StandardScaler": _from_standard,
    "RobustScaler": _from_robust, "MaxAbsScaler": _from_maxabs,
}


def read_scaling_file(path: "str | os.PathLike[str]") -> tuple[Optional[Scaling], Optional[Scaling]]:
    """(input, output) scalings from a JSON file with optional ``input``/``output`` keys."""
    from ._files import read_input

    raw = read_input(path, MAX_SCALING_FILE_BYTES, "scaling file")
    try:
        spec = json.loads(raw.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ValidationError(f"scaling file {path} is not valid JSON: {exc}") from None
    if not isinstance(spec, dict):
        raise ValidationError(f"scaling file {path} needs an 'input' and/or 'output' object")
    # Other keys may document the file (e.g. "target": "y = ..."); an object under another
    # key is a misspelt scaling, which would otherwise be silently left out.
    misspelt = sorted(k for k, v in spec.items() if k not in ("input", "output") and isinstance(v, dict))
    if misspelt:
        raise ValidationError(f"scaling file {path}: unknown scaling {misspelt[0]!r}; "
                              "the scalings are 'input' and 'output'")
    if not {"input", "output"} & set(spec):
        raise ValidationError(f"scaling file {path} needs an 'input' and/or 'output' object")
    return tuple(  # type: ignore[return-value]
        None if spec.get(k) is None else Scaling.from_dict(spec[k], f"scaling file {path}, {k}")
        for k in ("input", "output"))


def write_scaling_file(path: "str | os.PathLike[str]", input: Any = None, output: Any = None) -> "os.PathLike[str]":
    """Write the scaling JSON (``--scaling FILE``) from fitted scikit-learn scalers or
    :class:`Scaling` objects; ``output`` is the scaler the targets were scaled with."""
    from ._files import write_atomic

    spec = {side: as_scaling(value).to_dict()  # type: ignore[union-attr]
            for side, value in (("input", input), ("output", output)) if value is not None}
    if not spec:
        raise ValidationError("write_scaling_file needs an input and/or an output scaling")
    return write_atomic(path, json.dumps(spec, indent=2) + "\n")


def with_scaling(net: Network, inputs: Optional[Any] = None, outputs: Optional[Any] = None,
                 fold: bool = True) -> Network:
    """``net`` taking raw inputs and returning raw outputs.

    ``inputs``/``outputs`` are :class:`Scaling` objects or fitted scikit-learn scalers;
    the output scaling is the one the targets were scaled with during training, so its
    inverse is applied.  Affine steps are folded into Dense layers where that is exact.
    Each scaling is recorded in the network's ``notes``.
    """
    inputs = as_scaling(inputs)
    outputs = as_scaling(outputs)
    layers, notes = list(net.layers), list(net.notes)
    if inputs is not None:
        layers.insert(0, inputs.affine(net.n_inputs, "input scaling"))
        notes.append(f"input scaling folded in: {inputs.describe()} (takes raw inputs)")
    if outputs is not None:
        layers.append(outputs.inverse().affine(net.n_outputs, "output scaling"))
        notes.append(f"output scaling folded in, inverted: {outputs.describe()} (returns raw outputs)")
    scaled = replace(net, layers=tuple(layers), notes=tuple(notes))
    return fold_affine(scaled) if fold else scaled


def as_scaling(value: Any) -> Optional[Scaling]:
    if value is None or isinstance(value, Scaling):
        return value
    return Scaling.from_sklearn(value)
