"""Exact clipping ``min(max(x, low), high)`` as IR layers, shared by the frontends
(scikit-learn's ``MinMaxScaler(clip=True)``, torch's ``Hardtanh``/``ReLU6``, ONNX ``Clip``).

Only comparisons and negations, never a shift: ``low + relu(x - low)`` would round
``x - low`` (Clip(-1e6, 5) of 0.001 gives 0 in float32)."""
from __future__ import annotations

import math

import numpy as np

from ..core.errors import ValidationError
from ..core.ir import Activate, Activation, Affine, Layer


def clamp_layers(width: int, low: float, high: float, name: str) -> list[Layer]:
    """``min(max(x, low), high)`` per feature, exactly (no rounding: only comparisons
    and negations): relu6 / hard_tanh / relu(max_value) when they fit, else
    ``threshold(low, low)`` for the lower bound and ``-threshold(-high, -high)(-x)`` for
    the upper.  An infinite bound is no bound."""
    low, high = float(low), float(high)
    if not low <= high:
        raise ValidationError(f"{name}: clipping range [{low}, {high}] is empty")
    special = {(0.0, 6.0): Activation("relu6"), (-1.0, 1.0): Activation("hard_tanh")}
    if (low, high) in special:
        return [Activate(width, special[(low, high)], name)]
    if low == 0.0 and math.isfinite(high):
        return [Activate(width, Activation("relu", (("max_value", high),)), name)]
    layers: list[Layer] = []
    if math.isfinite(low):
        layers.append(Activate(width, Activation("threshold", (("threshold", low), ("default_value", low))),
                               f"{name} (low)"))
    if math.isfinite(high):
        negate = Affine(np.full(width, -1.0), np.zeros(width), f"{name} (negate)")
        upper = Activation("threshold", (("threshold", -high), ("default_value", -high)))
        layers += [negate, Activate(width, upper, f"{name} (high)"),
                   Affine(np.full(width, -1.0), np.zeros(width), f"{name} (negate back)")]
    return layers
