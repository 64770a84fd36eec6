"""Simpler formulas for a network on a domain, each with a certified error (issue 14).

* :mod:`.chebyshev` -- Chebyshev interpolants (degree given or from a tolerance);
* :mod:`.taylor` -- Taylor polynomials by Taylor-mode automatic differentiation over the
  expression graph, with the radius of convergence;
* :mod:`.saturation` -- tanh/sigmoid units replaced by their limits where the domain
  keeps them there;
* :mod:`.exact` -- passes that never change an output on the domain (proven by interval
  bounds): dead and always-active ReLU units, zero outgoing weights, duplicates, and the
  exact piecewise-linear form of one-input ReLU networks;
* :mod:`.certify` -- measured and certified errors;  :mod:`.size` -- formula sizes.

Approximations are networks of one :class:`~mlpcodegen.core.ir.Polynomial` layer, so every
target prints them.
"""
from __future__ import annotations

from .certify import ErrorReport, certified_error, error_report
from .chebyshev import Approximation, chebyshev, for_tolerance, interpolant

__all__ = ["Approximation", "ErrorReport", "certified_error", "chebyshev", "error_report", "for_tolerance",
           "interpolant"]
