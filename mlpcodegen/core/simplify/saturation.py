"""Saturation: tanh and sigmoid units that the domain keeps close to their limits (±1 for
tanh, 0/1 for sigmoid) replaced by those constants, folded into the next layer's bias.

A unit's distance to its limit is proven by the interval bounds of its pre-activation
(:func:`.exact.preactivation_bounds`, box cut into pieces): ``1 - tanh(z_lo)`` when
``z >= z_lo > 0``, and so on.  The error of the whole replacement is then certified as
for any approximation (:mod:`.certify`); when it exceeds the tolerance, the units that
cost most (distance times outgoing weights) are put back until it fits.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..ir import Dense, Network
from .certify import ErrorReport, check_box, error_report
from .exact import _keep_units, preactivation_bounds

#: activation -> (lower limit, upper limit, value at a pre-activation).
LIMITS = {
    "tanh": (-1.0, 1.0, math.tanh),
    "sigmoid": (0.0, 1.0, lambda z: 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))),
}


@dataclass(frozen=True)
class Saturated:
    network: Network
    replaced: int
    candidates: int
    errors: ErrorReport

    def line(self) -> str:
        rest = self.candidates - self.replaced
        why = (f"; replacing the other {rest} would take the certified error past the tolerance (the layers after "
               "them amplify their distance)") if rest else ""
        return (f"{self.replaced} of the tanh/sigmoid units replaced by their limits ({self.candidates} within the "
                f"tolerance of a limit on the whole domain{why})")


def _candidates(net: Network, proven, tolerance: float) -> list[tuple[float, int, int, float]]:
    """(cost, layer, unit, limit) of every unit within ``tolerance`` of a limit."""
    out = []
    for index, layer in enumerate(net.layers[:-1]):
        following = net.layers[index + 1]
        if not (isinstance(layer, Dense) and isinstance(following, Dense) and layer.activation.name in LIMITS):
            continue
        bottom, top, f = LIMITS[layer.activation.name]
        low, high = proven[index]
        for j in range(layer.units):
            if low[j] > 0 and top - f(low[j]) <= tolerance:
                distance, limit = top - f(low[j]), top
            elif high[j] < 0 and f(high[j]) - bottom <= tolerance:
                distance, limit = f(high[j]) - bottom, bottom
            else:
                continue
            out.append((distance * float(np.abs(following.kernel[j]).sum()), index, j, limit))
    return sorted(out)


def _replace(net: Network, chosen) -> Network:
    """The chosen units removed, their constant outputs added to the next biases (from
    the last layer back, so indices stay valid)."""
    for index in sorted({c[1] for c in chosen}, reverse=True):
        units = {c[2]: c[3] for c in chosen if c[1] == index}
        following = net.layers[index + 1]
        extra = sum(limit * following.kernel[j] for j, limit in units.items())
        keep = np.array([j not in units for j in range(net.layers[index].units)])
        if not keep.any():  # a layer is never emptied: keep its first unit
            keep[0] = True
            extra = extra - units.get(0, 0.0) * following.kernel[0]
        net = _keep_units(net, index, keep, extra_bias=extra)
    return net


def saturate(net: Network, lower, upper, tolerance: float, cuts: int = 16) -> Saturated:
    """Replace the saturated units whose total certified error stays within ``tolerance``."""
    lower, upper = check_box(net, lower, upper)
    candidates = _candidates(net, preactivation_bounds(net, lower, upper, cuts), tolerance)
    chosen = list(candidates)
    while True:
        simpler = _replace(net, chosen) if chosen else net
        report = error_report(net, simpler, lower, upper, goal=tolerance)
        if report.certified <= tolerance or not chosen:
            return Saturated(simpler, len(chosen), len(candidates), report)
        chosen = chosen[: len(chosen) // 2]
