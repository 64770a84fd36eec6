"""Checking an approximation against its certificate in float64 (the compiled target is
checked by :func:`mlpcodegen.harness.approximation.verify_target`: the error is compared
with the certified bound, not with ULPs)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir import Network
from .certify import check_box, measured_error


@dataclass(frozen=True)
class CertificateCheck:
    """``measured``: the largest |network - approximation| over ``samples`` random points
    of the box (and its corners); ``ok``: it is within ``certified``."""

    measured: float
    certified: float
    samples: int

    @property
    def ok(self) -> bool:
        return self.measured <= self.certified

    def line(self) -> str:
        verdict = "within" if self.ok else "ABOVE"
        return (f"measured max error {self.measured:.3g} on {self.samples:,} random points, {verdict} the certified "
                f"bound {self.certified:.3g}")


def check_certificate(network: Network, approximation: Network, lower, upper, certified: float,
                      samples: int = 100_000, seed: int = 0) -> CertificateCheck:
    """Random points of the box (and its corners) through both networks' float64
    reference evaluators: the certificate holds when no point errs more than ``certified``."""
    lower, upper = check_box(network, lower, upper)
    rng = np.random.default_rng(seed)
    points = lower + rng.random((samples, network.n_inputs)) * (upper - lower)
    points = np.vstack([points, lower, upper])
    return CertificateCheck(measured_error(network, approximation, points), float(certified), len(points))
