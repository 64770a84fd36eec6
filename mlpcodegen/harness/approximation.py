"""Verifying a simplified formula: the compiled approximation against the *original*
network, with the certified bound (plus the target's own rounding) as the limit — not
ULPs against the approximation itself.  ``mlpcodegen simplify --check N`` runs it."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.ir import Network
from ..core.numeric import numeric_type
from ..core.reference import evaluate, evaluate_magnitude
from ..runtime import load
from ..core.simplify.certify import check_box


@dataclass(frozen=True)
class TargetCheck:
    """The compiled approximation against the *original* network: ``measured`` is its
    largest error, ``allowed`` the certified bound plus the target's own rounding
    (``ulps`` units of its precision times the reference's rounding magnitude, which
    already counts the operations: :func:`mlpcodegen.core.reference.evaluate_magnitude`)."""

    target: str
    dtype: str
    measured: float
    certified: float
    allowed: float
    samples: int

    @property
    def ok(self) -> bool:
        return self.measured <= self.allowed

    def line(self) -> str:
        verdict = "within" if self.ok else "ABOVE"
        return (f"{self.target} {self.dtype}: max |target - network| {self.measured:.3g} on {self.samples:,} random "
                f"points, {verdict} the certified {self.certified:.3g} plus the target's rounding "
                f"(allowed {self.allowed:.3g})")


def verify_target(network: Network, approximation: Network, target: str, dtype: str, lower, upper,
                  certified: float, samples: int = 10_000, seed: int = 0, ulps: float = 4.0,
                  name: str = "approx") -> TargetCheck:
    """Run the approximation as ``target`` (compiled/loaded by :mod:`mlpcodegen.runtime`)
    on random points of the box and check its error against the original network's
    float64 reference: what ``verify`` should do for a simplified formula (the measured
    error against the certified bound, not ULPs against the approximation itself)."""
    lower, upper = check_box(network, lower, upper)
    rng = np.random.default_rng(seed)
    points = np.vstack([lower + rng.random((samples, network.n_inputs)) * (upper - lower), lower, upper])
    run = load(approximation, target, dtype=dtype, name=name)
    got = np.array([run(row) for row in points]) if target == "python" else np.asarray(run(points))
    got = np.asarray(got, dtype=np.float64).reshape(len(points), -1)
    measured = float(np.max(np.abs(got - evaluate(network, points))))
    _, magnitude = evaluate_magnitude(approximation, points)
    epsilon = float(np.finfo(numeric_type(dtype).np_dtype).eps)
    allowed = float(certified) + ulps * epsilon * float(np.max(magnitude))
    return TargetCheck(target, dtype, measured, float(certified), allowed, len(points))
