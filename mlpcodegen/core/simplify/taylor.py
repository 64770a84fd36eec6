"""Taylor polynomials of a network by Taylor-mode automatic differentiation over its
expression graph, and the radius of convergence of the series.

**Coefficients.**  Every node's truncated power series in ``s = x - a`` (one input) is
propagated through the graph (:mod:`mlpcodegen.core.graph`), children first: sums and + - * /
by the series rules, functions by their recurrences (``exp``: ``e_k = (1/k) sum j u_j
e_{k-j}``; ``tanh``: ``t' = (1 - t^2) u'``; ``sigmoid``: ``s' = s (1 - s) u'``; ``log``,
``log1p``, ``sqrt``, ``softplus``, ``erf`` likewise).  Selections, comparisons, max/min
and abs take the branch that holds at ``a`` (the series of a piecewise function on the
piece that holds ``a``; :attr:`TaylorSeries.kinks` says when ``a`` is on a switch).
Cost: O(order^2) per node, no symbolic algebra (SymPy's ``series`` took 123 s for three
terms of the seed; this takes milliseconds for 40).

**Radius.**  Two estimates, and the smaller is reported:

* *singularities*: for networks of Dense layers with tanh / sigmoid / softplus / linear /
  exp units (analytic except at the poles of tanh, ``z = i pi (k + 1/2)``, and of
  sigmoid/softplus, ``z = i pi (2k + 1)``), the complex ``x`` where some unit's
  pre-activation reaches a pole, found by Newton's method in the complex plane (forward
  derivatives) from a grid of starts; the nearest to ``a`` bounds the radius;
* *root test* (Cauchy-Hadamard): ``1 / limsup |c_k|^(1/k)`` fitted on the upper half of
  the coefficients (a straight line through the envelope of ``log |c_k|``).

A series is claimed to converge on a domain only when the whole domain lies inside the
radius; otherwise the tool says it diverges there and gives the interval around ``a``
where the requested tolerance is met.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from ..errors import UnsupportedError, ValidationError
from ..graph import Builder, Call, Item, Largest, Node, Num, Op, Ref, Sum, Where, walk
from ..ir import Dense, Network, Polynomial
from ..network_graph import input_nodes, network_program

#: Highest order a Taylor polynomial may have.
MAX_ORDER = 64


@dataclass(frozen=True)
class TaylorSeries:
    """Coefficients ``c[j, k]`` of output j in ``(x - at)**k``; ``kinks``: switches
    (selections, max/min, abs) that sit exactly at ``at`` (the series is one-sided there)."""

    at: float
    coefficients: np.ndarray
    kinks: int

    def network(self, net: Network) -> Network:
        """The Taylor polynomial as a one-layer network (monomial basis, Horner's rule)."""
        order = self.coefficients.shape[1] - 1
        layer = Polynomial(np.arange(order + 1)[:, None], self.coefficients, [self.at], [1.0], "monomial",
                           f"taylor_{order}")
        return Network(1, (layer,), "float64", net.name,
                       notes=net.notes + (f"taylor_{order}: Taylor polynomial of the network at x = {self.at!r}",))


# --------------------------------------------------------------------------- series arithmetic


def _mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.convolve(a, b)[: len(a)]


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    q = np.zeros_like(a)
    for k in range(len(a)):
        q[k] = (a[k] - np.dot(b[1:k + 1], q[k - 1::-1][:k])) / b[0] if k else a[0] / b[0]
    return q


def _integrate(u: np.ndarray, slope: Callable[[int], float], start: float, out: np.ndarray) -> np.ndarray:
    """``f_k = (1/k) sum_{j=1..k} j u_j g_{k-j}`` where ``g_m = slope(m)`` may read
    ``out`` up to m (the recurrence of f' = g u')."""
    out[0] = start
    for k in range(1, len(u)):
        out[k] = sum(j * u[j] * slope(k - j) for j in range(1, k + 1)) / k
    return out


def _exp(u: np.ndarray) -> np.ndarray:
    e = np.zeros_like(u)
    return _integrate(u, lambda m: e[m], math.exp(u[0]) if u[0] < 709 else math.inf, e)


def _tanh(u: np.ndarray) -> np.ndarray:
    t = np.zeros_like(u)
    return _integrate(u, lambda m: (1.0 if m == 0 else 0.0) - np.dot(t[: m + 1], t[m::-1]), math.tanh(u[0]), t)


def _sigmoid(u: np.ndarray) -> np.ndarray:
    s = np.zeros_like(u)
    start = 1.0 / (1.0 + math.exp(-u[0])) if u[0] >= 0 else math.exp(u[0]) / (1.0 + math.exp(u[0]))
    return _integrate(u, lambda m: s[m] - np.dot(s[: m + 1], s[m::-1]), start, s)


def _softplus(u: np.ndarray) -> np.ndarray:
    s = _sigmoid(u)
    return _integrate(u, lambda m: s[m], math.log1p(math.exp(-abs(u[0]))) + max(u[0], 0.0), np.zeros_like(u))


def _erf(u: np.ndarray) -> np.ndarray:
    g = _exp(-_mul(u, u)) * (2.0 / math.sqrt(math.pi))
    return _integrate(u, lambda m: g[m], math.erf(u[0]), np.zeros_like(u))


def _log(u: np.ndarray) -> np.ndarray:
    if not u[0] > 0:
        raise ValidationError("the Taylor point is outside the domain of a log in the network")
    d = _div(_derivative(u), u)
    return np.concatenate([[math.log(u[0])], d[:-1] / np.arange(1, len(u))])


def _sqrt(u: np.ndarray) -> np.ndarray:
    if not u[0] > 0:
        raise ValidationError("the Taylor point is at or below 0 under a square root in the network")
    r = np.zeros_like(u)
    r[0] = math.sqrt(u[0])
    for k in range(1, len(u)):
        r[k] = (u[k] - np.dot(r[1:k], r[k - 1:0:-1])) / (2 * r[0])
    return r


def _derivative(u: np.ndarray) -> np.ndarray:
    return np.concatenate([u[1:] * np.arange(1, len(u)), [0.0]])


def _one(u: np.ndarray) -> np.ndarray:
    e = np.zeros_like(u)
    e[0] = 1.0
    return e


#: function -> its series given the argument's series.
SERIES_FUNCTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "exp": _exp, "expm1": lambda u: _exp(u) - _one(u), "tanh": _tanh, "sigmoid": _sigmoid,
    "softplus": _softplus, "erf": _erf, "log": _log, "log1p": lambda u: _log(u + _one(u)), "sqrt": _sqrt,
    "abs": lambda u: u if u[0] >= 0 else -u,
}


class _Walk:
    def __init__(self, order: int, at: np.ndarray) -> None:
        self.order, self.at, self.kinks = order, at, 0

    def leaf(self, node: Node) -> np.ndarray:
        s = np.zeros(self.order + 1)
        s[0] = self.at[node.index] if type(node) is Item else math.nan
        if type(node) is Item and node.index == 0:
            s[1:2] = 1.0
        return s

    def pick(self, first: bool, tie: bool) -> bool:
        self.kinks += tie
        return first

    def op(self, node: Op, args: list[np.ndarray]) -> np.ndarray:
        a = args[0]
        b = args[1] if len(args) > 1 else None
        table = {
            "add": lambda: a + b, "sub": lambda: a - b, "mul": lambda: _mul(a, b), "square": lambda: _mul(a, a),
            "div": lambda: _div(a, b), "quotient": lambda: _div(a, b), "neg": lambda: -a,
            "gt": lambda: _one(a) * float(self.pick(a[0] > b[0], a[0] == b[0])),
            "ge": lambda: _one(a) * float(self.pick(a[0] >= b[0], a[0] == b[0])),
            "max": lambda: a if self.pick(a[0] >= b[0], a[0] == b[0]) else b,
            "min": lambda: a if self.pick(a[0] <= b[0], a[0] == b[0]) else b,
        }
        return table[node.op]()


def series(net: Network, at: float, order: int) -> TaylorSeries:
    """The Taylor coefficients of every output of a one-input ``net`` at ``x = at``, up to ``order``."""
    if net.n_inputs != 1:
        raise UnsupportedError(f"Taylor polynomials are computed for one-input networks; this one has "
                               f"{net.n_inputs} inputs (use a Chebyshev interpolant)")
    if not 0 <= order <= MAX_ORDER or not math.isfinite(at):
        raise ValidationError(f"the order must be in [0, {MAX_ORDER}] and the point finite")
    b = Builder()
    program = network_program(net, input_nodes(b, net), b)
    w = _Walk(order, np.array([float(at)]))
    values: dict[int, np.ndarray] = {}
    get = lambda n: values[id(n)]  # noqa: E731
    with np.errstate(all="ignore"):
        for node in walk(program.outputs):
            values[id(node)] = _node_series(w, node, get)
    coefficients = np.stack([np.broadcast_to(get(o), (order + 1,)) for o in program.outputs])
    if not np.isfinite(coefficients).all():
        raise ValidationError(f"the Taylor coefficients at x = {at:g} overflow (the network is singular or "
                              "saturates to overflow there): choose another point or a lower order")
    return TaylorSeries(float(at), coefficients, w.kinks)


def _node_series(w: _Walk, node: Node, get: Callable) -> np.ndarray:
    kind = type(node)
    if kind is Num:
        return _one(np.zeros(w.order + 1)) * node.value
    if kind in (Item, Ref):
        return w.leaf(node)
    if kind is Sum:
        total = np.zeros(w.order + 1)
        for t in node.terms:
            total = total + (-1.0 if t.negative else 1.0) * (1.0 if t.coefficient is None else t.coefficient) * get(t.node)
        if node.bias is not None:
            total[0] += node.bias
        return total
    if kind is Op:
        return w.op(node, [get(a) for a in node.args])
    if kind is Call:
        return SERIES_FUNCTIONS[node.function](get(node.arg))
    if kind is Where:
        return get(node.a) if get(node.cond)[0] != 0.0 else get(node.b)
    if kind is Largest:
        args = [get(a) for a in node.args]
        return args[int(np.argmax([a[0] for a in args]))]
    raise UnsupportedError(f"no Taylor series for a {kind.__name__} node")


# --------------------------------------------------------------------------- radius of convergence


def root_test_radius(coefficients: np.ndarray) -> float:
    """Cauchy-Hadamard estimate ``1 / limsup |c_k|^(1/k)``: the slope of a line through
    the upper envelope of ``log |c_k|`` over the upper half of the orders (inf for a
    polynomial or an entire function whose coefficients vanish)."""
    c = np.abs(np.atleast_2d(coefficients)).max(axis=0)
    n = len(c) - 1
    k = np.arange(n // 2, n + 1)
    with np.errstate(divide="ignore"):
        logs = np.log(c[k])
    keep = np.isfinite(logs)
    if keep.sum() < 3:
        return math.inf
    k, logs = k[keep], logs[keep]
    # the local maxima: conjugate poles make the coefficients oscillate through near-zeros
    peak = np.r_[True, logs[1:] >= logs[:-1]] & np.r_[logs[:-1] >= logs[1:], True]
    if peak.sum() >= 2:
        k, logs = k[peak], logs[peak]
    slope = np.polyfit(k, logs, 1)[0]
    return math.inf if slope <= -700 else float(math.exp(-slope))


#: activation -> poles (pre-activations where it is singular) nearest the real axis.
POLES: dict[str, tuple[complex, ...]] = {
    "tanh": tuple(1j * math.pi * (k + 0.5) for k in (-2, -1, 0, 1)),
    "sigmoid": tuple(1j * math.pi * k for k in (-3, -1, 1, 3)),
    "softplus": tuple(1j * math.pi * k for k in (-3, -1, 1, 3)),
}
_ANALYTIC: dict[str, tuple[Callable, Callable]] = {  # value and derivative, complex
    "linear": (lambda z: z, lambda z: np.ones_like(z)),
    "tanh": (np.tanh, lambda z: 1.0 - np.tanh(z) ** 2),
    "sigmoid": (lambda z: 1.0 / (1.0 + np.exp(-z)), lambda z: np.exp(-z) / (1.0 + np.exp(-z)) ** 2),
    "softplus": (lambda z: np.log(1.0 + np.exp(z)), lambda z: 1.0 / (1.0 + np.exp(-z))),
    "exp": (np.exp, np.exp),
}


def _preactivations(net: Network, x: np.ndarray, last: int) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """Complex pre-activations of the Dense units of layers 0..last and their derivatives in x."""
    h, dh = x[:, None], np.ones((len(x), 1), dtype=complex)
    out = []
    for layer in net.layers[: last + 1]:
        z = h @ layer.kernel + (0.0 if layer.bias is None else layer.bias)
        dz = dh @ layer.kernel
        name = layer.activation.name
        out.append((z, dz, name))
        f, df = _ANALYTIC[name]
        h, dh = f(z), df(z) * dz
    return out


def singularity_radius(net: Network, at: float, reach: float = 4.0, starts: int = 20) -> Optional[float]:
    """Distance from ``at`` to the nearest complex ``x`` where a unit's pre-activation
    reaches a pole of its activation (Newton's method from a polar grid of starts within
    ``reach``); None when the network is not made of Dense layers with analytic
    activations (then only the root test applies).  inf when no pole is found."""
    if net.n_inputs != 1 or not all(isinstance(l, Dense) and l.activation.name in _ANALYTIC for l in net.layers):
        return None
    radii = np.linspace(0.02, reach, starts)[:, None]
    angles = np.linspace(0, 2 * np.pi, starts, endpoint=False)[None, :]
    x0 = (at + radii * np.exp(1j * angles)).ravel()
    nearest = math.inf
    with np.errstate(all="ignore"):
        for layer_index, layer in enumerate(net.layers):
            poles = np.array(POLES.get(layer.activation.name, ()))
            if len(poles):
                nearest = min(nearest, _newton(net, layer_index, poles, x0, at))
    return nearest


def _newton(net: Network, layer_index: int, poles: np.ndarray, x0: np.ndarray, at: float) -> float:
    """Nearest root to ``at`` of ``z_unit(x) = pole`` over every unit of the layer and
    pole, each solved from every start at once (the columns: unit-major, pole-minor)."""
    units = net.layers[layer_index].units
    x = np.repeat(x0[:, None], units * len(poles), axis=1)
    target = np.tile(poles, units)[None, :]
    column = np.repeat(np.arange(units), len(poles))
    for _ in range(40):
        z, dz, _ = _preactivations(net, x.ravel(), layer_index)[layer_index]
        z = z.reshape(x.shape + (units,))[..., column].diagonal(axis1=1, axis2=2)
        dz = dz.reshape(x.shape + (units,))[..., column].diagonal(axis1=1, axis2=2)
        step = (z - target) / dz
        x = x - np.where(np.isfinite(step), step, 0.0)
    z = _preactivations(net, x.ravel(), layer_index)[layer_index][0].reshape(x.shape + (units,))
    z = z[..., column].diagonal(axis1=1, axis2=2)
    found = np.isfinite(x) & (np.abs(z - target) < 1e-9)
    return float(np.min(np.abs(x[found] - at))) if found.any() else math.inf


# --------------------------------------------------------------------------- the approximation


@dataclass(frozen=True)
class TaylorResult:
    """A Taylor polynomial, its radius estimates and what may be claimed on the domain."""

    series: TaylorSeries
    network: Network
    radius: float
    singularity: Optional[float]
    root_test: float
    converges: bool
    claim: str


def taylor(net: Network, at: float, order: int, lower: float, upper: float) -> TaylorResult:
    """The Taylor polynomial of ``order`` at ``at`` and whether the series converges on
    [lower, upper]: only when the whole interval lies strictly inside the radius."""
    s = series(net, at, order)
    if piecewise_linear_units(net):
        return _local_piece(net, s, order, lower, upper)
    deep = series(net, at, max(2 * order, 40)).coefficients
    singular = singularity_radius(net, at)
    test = root_test_radius(deep)
    radius = min(test, singular) if singular is not None else test
    reach = max(abs(lower - at), abs(upper - at))
    converges = reach < radius
    how = (f"nearest complex singularity {singular:.4g} away, root test {test:.4g}" if singular is not None
           else f"root test on {deep.shape[1]} coefficients")
    if converges:
        claim = (f"the series converges on [{lower:g}, {upper:g}]: it lies within the radius {radius:.4g} "
                 f"of x = {at:g} ({how})")
    else:
        claim = (f"the Taylor series at x = {at:g} does NOT converge on [{lower:g}, {upper:g}]: its radius of "
                 f"convergence is {radius:.4g} ({how}) and the domain reaches {reach:.4g} away; raising the "
                 "order makes the polynomial worse there, use a Chebyshev interpolant (--tolerance)")
    return TaylorResult(s, s.network(net), radius, singular, test, converges, claim)


#: Activations whose networks are piecewise linear (every Taylor coefficient above the first is 0).
PIECEWISE_LINEAR = frozenset({"linear", "relu", "leaky_relu", "prelu", "relu6", "hard_tanh"})


def piecewise_linear_units(net: Network) -> bool:
    """Whether every layer of ``net`` is affine or a piecewise-linear activation (ReLU ...):
    the network is then piecewise linear, and its Taylor polynomial is the local piece."""
    names = [getattr(layer, "activation", None) for layer in net.layers]
    return not any(isinstance(layer, Polynomial) for layer in net.layers) and all(
        activation is None or activation.name in PIECEWISE_LINEAR for activation in names)


def _local_piece(net: Network, s: TaylorSeries, order: int, lower: float, upper: float) -> TaylorResult:
    """A piecewise-linear network's Taylor "series": the linear piece holding the point,
    exact on that piece only; no radius or convergence is claimed (the coefficients above
    the first are 0 whatever the order, so a root test would say 'infinite')."""
    where = " (the point sits on a kink: the piece on one side)" if s.kinks else ""
    claim = (f"this network is piecewise linear ({', '.join(sorted(_activations(net)))} units): its Taylor "
             f"polynomial at x = {s.at:g} is the linear piece that holds there{where}, exact on that piece only, and "
             f"order {order} adds nothing to it; it does not converge to the network on [{lower:g}, {upper:g}]. "
             "For the whole domain use --exact (the exact piecewise-linear form)")
    return TaylorResult(s, s.network(net), 0.0, None, 0.0, False, claim)


def _activations(net: Network) -> set[str]:
    return {layer.activation.name for layer in net.layers if getattr(layer, "activation", None) is not None}


def tolerance_interval(net: Network, result: TaylorResult, tolerance: float, lower: float, upper: float) -> str:
    """Where around the point the Taylor polynomial meets ``tolerance``: the widest
    [at - r, at + r] inside [lower, upper] whose measured error is within it (bisection on
    r), then certified there."""
    from .certify import error_report, measured_error

    at = result.series.at
    reach = max(0.0, min(at - lower, upper - at))

    def fits(r: float) -> bool:
        points = np.linspace(at - r, at + r, 2001)[:, None]
        return measured_error(net, result.network, points) <= tolerance / 1.02

    if reach == 0 or not fits(reach * 1e-6):
        return f"the Taylor polynomial misses the tolerance {tolerance:g} even next to x = {at:g}"
    low, high = reach * 1e-6, reach
    if fits(reach):
        low = reach
    else:
        for _ in range(30):
            middle = 0.5 * (low + high)
            low, high = (middle, high) if fits(middle) else (low, middle)
    report = error_report(net, result.network, [at - low], [at + low], goal=tolerance)
    proven = "proven" if report.certified <= tolerance else f"measured (certified only {report.certified:.3g})"
    return (f"the tolerance {tolerance:g} holds on [{at - low:.6g}, {at + low:.6g}]: {proven}, "
            f"certified {report.certified:.3g}, measured {report.measured:.3g}")
