"""Chebyshev interpolants of a network over a box, degree given or chosen from a
tolerance, as a :class:`~mlpcodegen.core.ir.Polynomial` network with its errors.

One input: the interpolant at the n + 1 Chebyshev points of the first kind (near-best
in the max norm: within a factor ``2 + (2/pi) log n`` of the best polynomial of its
degree).  Several inputs: the tensor interpolant on the product grid, ``(n + 1)**d``
network evaluations, optionally truncated to total degree <= n (fewer terms; the
truncation adds the dropped coefficients' size to the error, which the certificate
covers).  It stops paying fast: terms grow as (n + 1)**d and the certificate's
sub-boxes as (1/width)**d, so beyond 2 or 3 inputs a polynomial is rarely smaller or
cheaper than the network.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
from numpy.polynomial import chebyshev as C

from ..errors import ValidationError
from ..ir import MAX_POLYNOMIAL_DEGREE, Network, Polynomial
from ..reference import evaluate
from .certify import (WORK_BYTES, ErrorReport, check_box, check_polynomial_budget, error_report, measured_error,
                      sample_points, widest_layer)

#: Largest tensor grid (network evaluations) an interpolant may take.
MAX_GRID = 1 << 20
#: One input: an interpolant up to this degree is written in powers of t (Horner's rule,
#: half the operations of Clenshaw's recurrence) when the power coefficients stay within
#: MONOMIAL_GROWTH times the Chebyshev ones: Horner's rounding on [-1, 1] is at most about
#: (n + 1) u sum |a_k| (float32: u = 2**-24, so 1000 * sum |c_k| costs < 1e-3 relative
#: of the coefficients' size at degree 16; the seed's degree 11 has sum |a_k| = 88, about
#: 6e-6 in float32).  The certificate is computed on the form written (float64).
MONOMIAL_MAX_DEGREE = 16
MONOMIAL_GROWTH = 1000.0


@dataclass(frozen=True)
class Approximation:
    """An approximating network (one :class:`~mlpcodegen.core.ir.Polynomial` layer), the box it
    approximates on, its errors and how it was made."""

    network: Network
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    errors: ErrorReport
    method: str


def _nodes(n: int) -> np.ndarray:
    """Chebyshev points of the first kind on [-1, 1], n + 1 of them."""
    return np.cos(np.pi * (np.arange(n + 1) + 0.5) / (n + 1))


def _transform(values: np.ndarray, n: int, axis: int) -> np.ndarray:
    """Values at the n + 1 points along ``axis`` -> Chebyshev coefficients along it."""
    vander = C.chebvander(_nodes(n), n)
    moved = np.moveaxis(values, axis, 0)
    coefficients = np.linalg.solve(vander, moved.reshape(n + 1, -1)).reshape(moved.shape)
    return np.moveaxis(coefficients, 0, axis)


def _polynomial_network(net: Network, exponents: np.ndarray, coefficients: np.ndarray, lower: np.ndarray,
                        upper: np.ndarray, name: str) -> Network:
    center, half = (lower + upper) / 2.0, (upper - lower) / 2.0
    scale = np.where(half > 0, 1.0 / np.where(half > 0, half, 1.0), 1.0)
    basis = "chebyshev"
    if len(lower) == 1 and int(exponents.max()) <= MONOMIAL_MAX_DEGREE:
        # Horner's rule: n fused multiply-adds, against 2n operations for Clenshaw's
        monomial = np.stack([C.cheb2poly(row) for row in coefficients])
        if np.abs(monomial).sum() <= MONOMIAL_GROWTH * max(np.abs(coefficients).sum(), 1e-300):
            coefficients, exponents, basis = monomial, np.arange(monomial.shape[1])[:, None], "monomial"
    layer = Polynomial(exponents, coefficients, center, scale, basis, name)
    return Network(net.n_inputs, (layer,), "float64", net.name,
                   notes=net.notes + (f"{name}: Chebyshev approximation of the network on the box "
                                      f"{_floats(lower)} .. {_floats(upper)}" + (", in powers of t (Horner)"
                                                                                 if basis == "monomial" else ""),))


def _floats(values) -> list[float]:
    return [float(v) for v in values]


def interpolant(net: Network, lower, upper, degree: int, total: bool = False) -> Network:
    """The Chebyshev interpolant of ``net`` of ``degree`` in each input (``total``: terms
    of total degree <= degree only) on the box, as a one-layer network."""
    lower, upper = check_box(net, lower, upper)
    d = net.n_inputs
    if not 0 <= degree <= MAX_POLYNOMIAL_DEGREE:
        raise ValidationError(f"degree must be in [0, {MAX_POLYNOMIAL_DEGREE}], got {degree}")
    if (degree + 1) ** d > MAX_GRID:
        raise ValidationError(f"a degree-{degree} interpolant of {d} inputs needs {(degree + 1) ** d:,} network "
                              f"evaluations (limit {MAX_GRID:,}): lower the degree or shrink the number of inputs")
    terms = math.comb(degree + d, d) if total else (degree + 1) ** d
    check_polynomial_budget(net, terms, degree)  # before the grid: its error could not be certified
    values = _grid_values(net, lower, upper, _nodes(degree))
    for axis in range(d):
        values = _transform(values, degree, axis)
    index = np.array(np.meshgrid(*[np.arange(degree + 1)] * d, indexing="ij")).reshape(d, -1).T
    if total:
        index = index[index.sum(axis=1) <= degree]
    coefficients = np.stack([values[tuple(index.T)][:, j] for j in range(net.n_outputs)])
    return _polynomial_network(net, index, coefficients, lower, upper, f"chebyshev_{degree}")


def _grid_values(net: Network, lower: np.ndarray, upper: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The network on the product grid of the points ``t`` mapped to the box, shape
    ``(len(t),) * d + (outputs,)``, evaluated in chunks of rows within WORK_BYTES."""
    d, shape = net.n_inputs, (len(t),) * net.n_inputs
    count = len(t) ** d
    rows = max(1, WORK_BYTES // (4 * 8 * max(widest_layer(net), d)))
    values = np.empty((count, net.n_outputs))
    for start in range(0, count, rows):
        index = np.unravel_index(np.arange(start, min(count, start + rows)), shape)  # C order: meshgrid "ij"
        points = np.stack([(lower[i] + upper[i]) / 2 + (upper[i] - lower[i]) / 2 * t[index[i]] for i in range(d)],
                          axis=-1)
        values[start:start + len(points)] = evaluate(net, points)
    return values.reshape(shape + (net.n_outputs,))


def chebyshev(net: Network, lower, upper, degree: int, total: bool = False,
              goal: Optional[float] = None) -> Approximation:
    """The degree-``degree`` interpolant with its measured and certified errors."""
    lower, upper = check_box(net, lower, upper)
    approx = interpolant(net, lower, upper, degree, total)
    report = error_report(net, approx, lower, upper, goal)
    return Approximation(approx, tuple(_floats(lower)), tuple(_floats(upper)), report,
                         f"Chebyshev interpolant of degree {degree}" + (" (total degree)" if total else ""))


def for_tolerance(net: Network, lower, upper, tolerance: float, max_degree: int = MAX_POLYNOMIAL_DEGREE,
                  total: bool = False) -> Approximation:
    """The lowest-degree interpolant whose *certified* error is at most ``tolerance``:
    degrees are tried upward on a cheap sample; the first whose measured error is within
    2% of the tolerance is certified (goal: the tolerance), and the next one tried if the
    proof falls short.  Raises when no degree up to ``max_degree`` is proven."""
    lower, upper = check_box(net, lower, upper)
    if not tolerance > 0:
        raise ValidationError(f"the tolerance must be positive, got {tolerance}")
    check_estimate(net, lower, upper, tolerance, total)
    probe = sample_points(lower, upper, 4001)
    for degree in range(0, max_degree + 1):
        if (degree + 1) ** net.n_inputs > MAX_GRID:
            break
        approx = interpolant(net, lower, upper, degree, total)
        if measured_error(net, approx, probe) > tolerance / 1.02:
            continue
        report = error_report(net, approx, lower, upper, goal=tolerance)
        if report.certified <= tolerance:
            return Approximation(approx, tuple(_floats(lower)), tuple(_floats(upper)), report,
                                 f"Chebyshev interpolant of degree {degree}, the lowest whose certified error "
                                 f"is within {tolerance:g}" + (" (total degree)" if total else ""))
    raise ValidationError(f"no Chebyshev interpolant up to degree {max_degree} is proven within {tolerance:g} on "
                          "this domain: raise the tolerance, shrink the domain, or convert the network itself")


#: Several inputs: most terms a polynomial may be estimated to need before ``for_tolerance``
#: refuses up front (degree 11 on 2 inputs, 4 on 3).  Certifying one costs minutes at
#: about 100 terms on 2 or 3 inputs (bench/SIMPLIFY.md section 4: 81 terms on 2 inputs took
#: 83 s, 125 on 3 took 30 s; a 2-8-1 tanh network's 121 terms at 1e-3, 3 CPU minutes) and
#: grows with the terms and the sub-boxes: 1,089 terms on 2 inputs ran past 7 minutes.
MAX_ESTIMATED_TERMS = 144
#: Degree of the 1-D interpolants the estimate reads its coefficients from.
PROBE_DEGREE = 128
#: Lines through the box per input the estimate takes (the centre's and random ones).
PROBE_LINES = 5


def estimate_degree(net: Network, lower, upper, tolerance: float, lines: int = PROBE_LINES,
                    seed: int = 0) -> list[Optional[int]]:
    """Per input, the degree a Chebyshev interpolant needs for ``tolerance``, estimated on
    lines through the box along that input (the centre's and ``lines - 1`` random ones):
    the lowest degree whose tail of Chebyshev coefficients (an interpolant of that degree
    errs between about one and two times the tail: the estimate is on the low side, so a
    refusal is not premature) is within ``tolerance`` on every line; None: beyond
    :data:`PROBE_DEGREE`.  An estimate (a tensor interpolant restricted to a line is about
    the line's interpolant), cheap: ``inputs x lines x 129`` network evaluations."""
    lower, upper = check_box(net, lower, upper)
    d, n = net.n_inputs, PROBE_DEGREE
    rng = np.random.default_rng(seed)
    starts = np.vstack([(lower + upper) / 2, lower + rng.random((lines - 1, d)) * (upper - lower)])
    t = _nodes(n)
    degrees: list[Optional[int]] = []
    for axis in range(d):
        points = np.repeat(starts, n + 1, axis=0)
        points[:, axis] = np.tile((lower[axis] + upper[axis]) / 2 + (upper[axis] - lower[axis]) / 2 * t, lines)
        with np.errstate(all="ignore"):
            values = evaluate(net, points).reshape(lines, n + 1, -1)
        coefficients = np.abs(_transform(np.moveaxis(values, 1, 0), n, 0))  # (n + 1, lines, outputs)
        tails = np.cumsum(coefficients[::-1], axis=0)[::-1]  # tails[k] = sum of |c_j| for j >= k
        worst = np.nan_to_num(tails.reshape(n + 1, -1).max(axis=1), nan=np.inf)
        fits = np.flatnonzero(np.append(worst[1:], 0.0) <= tolerance)
        degrees.append(int(fits[0]) if fits.size else None)
    return degrees


def check_estimate(net: Network, lower, upper, tolerance: float, total: bool = False) -> None:
    """Refuse, before any interpolant is built or certified, a tolerance whose estimated
    polynomial (:func:`estimate_degree`) has more than :data:`MAX_ESTIMATED_TERMS` terms
    on several inputs (one input: any degree certifies in seconds)."""
    d = net.n_inputs
    if d < 2:
        return
    degrees = estimate_degree(net, lower, upper, tolerance)
    known = [g for g in degrees if g is not None]
    degree = max(known) if len(known) == d else None
    if degree is None:
        terms_text, terms = f"a degree above {PROBE_DEGREE} in some input", math.inf
    else:
        # one degree for every input (the interpolants this module builds): the largest
        terms = math.comb(degree + d, d) if total else (degree + 1) ** d
        kind = "total degree" if total else "degree"
        terms_text = f"about {kind} {degree} (per input: {', '.join(map(str, degrees))}; {terms:,} terms)"
    if terms > MAX_ESTIMATED_TERMS:
        raise ValidationError(
            f"--tolerance {tolerance:g} needs {terms_text} on the box of this {net.describe()} network's {d} "
            f"inputs (estimated from Chebyshev coefficients along lines through it), beyond the "
            f"{MAX_ESTIMATED_TERMS} terms whose error can be certified in minutes: raise the tolerance, use fewer "
            "inputs (fix some), shrink the domain, or try --chebyshev N with a low N (its certified error is "
            "reported)")
