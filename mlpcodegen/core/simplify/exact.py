"""Exact simplification of a network on a box: rewrites that never change an output on
the box (beyond float rounding), each proven by the sound interval bounds of
:func:`mlpcodegen.core.graph_eval.network_bounds`.

* a ReLU unit (plain ``relu``) whose pre-activation is <= 0 everywhere on the box is
  never active: it is removed (its output is exactly 0);
* a unit whose pre-activation is >= 0 everywhere (``relu``, ``leaky_relu``, ``prelu``)
  is always active, i.e. linear; a layer whose remaining units are all linear is folded
  into the next Dense layer (``W = W1 W2``, ``b = b1 W2 + b2``);
* a unit whose outgoing weights are all 0 is removed; units with the same weights, bias
  and activation are merged (their outgoing weights added).

Whole-box intervals are loose (a layer's sums of the units before it vary together, and
intervals forget it).  Two remedies, combined: **linear bounds** (for chains of plain
ReLU Dense layers: each unit's pre-activation bounded by back-substituting linear
relaxations of the ReLUs below down to the inputs, DeepPoly/CROWN style, which keeps
those dependencies), and **cutting** the box into sub-boxes (``cuts`` per input) where
a unit is proven dead when it is dead on every one.
:func:`activity` also counts the units a dense random sample finds inactive, the ceiling
any proof can reach.

For one-input networks of piecewise-linear units, :func:`piecewise_linear` computes the
exact breakpoints and slopes and writes the same function as
``a x + b + sum_k d_k relu(x - x_k)`` on the domain: a 1-(K+1)-1 ReLU network, i.e. a
formula of K + 1 pieces for K breakpoints, that every target prints.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..errors import UnsupportedError, ValidationError
from ..graph_eval import network_bounds
from ..ir import Activation, Dense, Network
from .certify import check_box, sample_points

#: Sub-boxes bounded per call of the interval evaluator.
CHUNK = 2048
#: Largest number of sub-boxes a proof may cut the domain into.
MAX_BOXES = 1 << 16
ACTIVE_LINEAR = ("relu", "leaky_relu", "prelu")


def _plain_relu(act: Activation) -> bool:
    return act.name == "relu" and act.params == Activation("relu").params


def cut_boxes(lower: np.ndarray, upper: np.ndarray, cuts: int) -> tuple[np.ndarray, np.ndarray]:
    """The box cut into ``cuts`` pieces per input (fewer when that exceeds :data:`MAX_BOXES`)."""
    d = len(lower)
    while cuts > 1 and cuts ** d > MAX_BOXES:
        cuts -= 1
    edges = [np.linspace(lower[i], upper[i], cuts + 1) for i in range(d)]
    index = np.array(np.meshgrid(*[np.arange(cuts)] * d, indexing="ij")).reshape(d, -1).T
    lo = np.stack([edges[i][index[:, i]] for i in range(d)], axis=-1)
    hi = np.stack([edges[i][index[:, i] + 1] for i in range(d)], axis=-1)
    return lo, hi


def preactivation_bounds(net: Network, lower, upper, cuts: int = 1,
                         linear: bool = True) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per layer, (lowest, highest) pre-activation of every unit over the box, proven
    by intervals over ``cuts`` pieces per input and, for chains of Dense layers with
    plain ReLU or linear hidden units (``linear``), by linear bounds on each piece too
    (:func:`linear_bounds`; the tighter of the two is kept)."""
    lower, upper = check_box(net, lower, upper)
    lo, hi = cut_boxes(lower, upper, cuts)
    result = [(np.full(layer.units, np.inf), np.full(layer.units, -np.inf)) for layer in net.layers]
    symbolic = linear and _linear_chain(net)
    for start in range(0, len(lo), CHUNK):
        piece_lo, piece_hi = lo[start:start + CHUNK], hi[start:start + CHUNK]
        named = network_bounds(net, piece_lo, piece_hi).named
        shape = (len(piece_lo),)
        layers = [(np.stack([np.broadcast_to(named[f"z{i}_{j}"].lo, shape) for j in range(layer.units)], axis=1),
                   np.stack([np.broadcast_to(named[f"z{i}_{j}"].hi, shape) for j in range(layer.units)], axis=1))
                  for i, layer in enumerate(net.layers, start=1)]
        if symbolic:
            for k in range(0, len(piece_lo), LINEAR_CHUNK):
                part = slice(k, k + LINEAR_CHUNK)
                tighter = linear_bounds(net, piece_lo[part], piece_hi[part], [(low[part], high[part])
                                                                              for low, high in layers])
                for (low, high), (tight_low, tight_high) in zip(layers, tighter):
                    low[part], high[part] = tight_low, tight_high
        for index, (low, high) in enumerate(layers):
            result[index] = (np.minimum(result[index][0], low.min(axis=0)), np.maximum(result[index][1], high.max(axis=0)))
    return result


def _linear_chain(net: Network) -> bool:
    return all(isinstance(layer, Dense) for layer in net.layers) and all(
        layer.activation.is_identity or _plain_relu(layer.activation) for layer in net.layers[:-1])


def _relaxation(low: np.ndarray, high: np.ndarray):
    """ReLU between the bounds: (upper slope, upper intercept, lower slope) with
    ``relu(z) <= s z + t`` and ``relu(z) >= a z`` on [low, high] (the triangle)."""
    dead, active = high <= 0, low >= 0
    unstable = ~(dead | active)
    span = np.where(unstable, high - low, 1.0)
    s = np.where(active, 1.0, np.where(unstable, high / span, 0.0))
    t = np.where(unstable, -high * low / span, 0.0)
    a = np.where(active, 1.0, np.where(unstable & (high > -low), 1.0, 0.0))
    return s, t, a


def _largest(net: Network, index: int, rows: np.ndarray, lower: np.ndarray, upper: np.ndarray,
             proven: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Upper bounds of ``rows @ z_index`` over each box (``lower``/``upper``: (boxes,
    inputs)) by back-substitution through the layers below, each ReLU replaced by its
    linear relaxation from ``proven`` ((boxes, units) pairs); widened for the rounding of
    this float64 computation.  Shapes: ``a`` is (boxes, rows, units of the layer reached)."""
    layer = net.layers[index]
    bias = layer.bias if layer.bias is not None else np.zeros(layer.units)
    a = np.broadcast_to(rows, (len(lower),) + rows.shape)
    c, size = a @ bias, np.abs(a) @ np.abs(bias)
    a = a @ layer.kernel.T
    for k in range(index - 1, -1, -1):
        below = net.layers[k]
        if not below.activation.is_identity:
            s, t, slope = _relaxation(*proven[k])
            positive = np.maximum(a, 0.0)
            c = c + np.einsum("bmu,bu->bm", positive, t)
            size = size + np.einsum("bmu,bu->bm", positive, np.abs(t))
            a = positive * s[:, None, :] + np.minimum(a, 0.0) * slope[:, None, :]
        bias = below.bias if below.bias is not None else np.zeros(below.units)
        c, size = c + a @ bias, size + np.abs(a) @ np.abs(bias)
        a = a @ below.kernel.T
    best = c + np.maximum(a * lower[:, None, :], a * upper[:, None, :]).sum(axis=2)
    size = size + (np.abs(a) * np.maximum(np.abs(lower), np.abs(upper))[:, None, :]).sum(axis=2)
    return best + 1e-12 * (1.0 + size)  # >> the rounding of these sums (n u size, n < 1e4)


#: Boxes back-substituted at once (memory: boxes x units x units floats).
LINEAR_CHUNK = 128


def linear_bounds(net: Network, lower: np.ndarray, upper: np.ndarray,
                  proven: list[tuple[np.ndarray, np.ndarray]]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Pre-activation bounds of a Dense chain with plain ReLU hidden layers over boxes
    (``lower``/``upper``: (boxes, inputs)) by linear relaxation and back-substitution
    (DeepPoly/CROWN style), intersected with ``proven`` ((boxes, units) pairs, e.g.
    interval bounds): layer by layer, each using the bounds below."""
    out = []
    for index, layer in enumerate(net.layers):
        eye = np.eye(layer.units)
        high = _largest(net, index, eye, lower, upper, out)
        low = -_largest(net, index, -eye, lower, upper, out)
        out.append((np.maximum(low, proven[index][0]), np.minimum(high, proven[index][1])))
    return out


def _sampled_preactivations(net: Network, points: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    from ..reference import _PREACTIVATION, activate

    h, out = points, []
    for layer in net.layers:
        z = _PREACTIVATION[type(layer)](layer, h)
        out.append((z.min(axis=0), z.max(axis=0)))
        h = activate(layer.activation, z)
    return out


@dataclass(frozen=True)
class Activity:
    """Counts over the ReLU units of the hidden layers: ``proven_dead`` per cut setting,
    ``sampled_dead`` (a dense sample sees no activity: the most any proof can show),
    likewise for always-active units."""

    units: int
    proven_dead: dict[int, int]
    proven_active: dict[int, int]
    sampled_dead: int
    sampled_active: int
    samples: int


def activity(net: Network, lower, upper, cuts=(1, 4, 16), samples: int = 100_000, linear: bool = True) -> Activity:
    """How many ReLU units each method proves never / always active on the box
    (``linear``: interval and linear bounds, else intervals alone)."""
    lower, upper = check_box(net, lower, upper)
    hidden = [i for i, layer in enumerate(net.layers[:-1]) if isinstance(layer, Dense)
              and layer.activation.name in ACTIVE_LINEAR]
    sampled = _sampled_preactivations(net, sample_points(lower, upper, samples))
    dead, active = {}, {}
    for c in cuts:
        proven = preactivation_bounds(net, lower, upper, c, linear)
        dead[c] = sum(int((proven[i][1] <= 0).sum()) for i in hidden if _plain_relu(net.layers[i].activation))
        active[c] = sum(int((proven[i][0] >= 0).sum()) for i in hidden)
    return Activity(sum(net.layers[i].units for i in hidden), dead, active,
                    sum(int((sampled[i][1] <= 0).sum()) for i in hidden if _plain_relu(net.layers[i].activation)),
                    sum(int((sampled[i][0] >= 0).sum()) for i in hidden), samples)


# --------------------------------------------------------------------------- the passes


def _keep_units(net: Network, index: int, keep: np.ndarray, extra_bias: np.ndarray | None = None) -> Network:
    """Layer ``index`` with only the units ``keep``; the next Dense layer loses the rows
    of the others (their outputs were 0, or are accounted for in ``extra_bias``)."""
    layers = list(net.layers)
    layer, following = layers[index], layers[index + 1]
    params = tuple((k, tuple(np.asarray(v)[keep]) if isinstance(v, tuple) else v) for k, v in layer.activation.params)
    layers[index] = replace(layer, kernel=layer.kernel[:, keep], bias=None if layer.bias is None else layer.bias[keep],
                            activation=Activation(layer.activation.name, params))
    bias = following.bias if following.bias is not None else np.zeros(following.units)
    if extra_bias is not None:
        bias = bias + extra_bias
    layers[index + 1] = replace(following, kernel=following.kernel[keep], bias=bias)
    return replace(net, layers=tuple(layers))


def _foldable(net: Network, index: int) -> bool:
    return (index + 1 < len(net.layers) and isinstance(net.layers[index], Dense)
            and isinstance(net.layers[index + 1], Dense) and not net.layers[index].activation.is_vector)


def _fold_linear(net: Network, index: int) -> Network:
    """Layer ``index`` (linear on the box) folded into the next Dense layer."""
    first, second = net.layers[index], net.layers[index + 1]
    kernel = first.kernel @ second.kernel
    bias = (first.bias if first.bias is not None else np.zeros(first.units)) @ second.kernel
    bias = bias + (second.bias if second.bias is not None else 0.0)
    layers = list(net.layers)
    layers[index: index + 2] = [replace(second, kernel=kernel, bias=bias)]
    return replace(net, layers=tuple(layers))


@dataclass(frozen=True)
class ExactResult:
    network: Network
    removed_dead: int
    removed_zero: int
    merged: int
    folded_layers: int
    units_before: int
    units_after: int

    def line(self) -> str:
        return (f"hidden units {self.units_before} -> {self.units_after}: {self.removed_dead} never active on the "
                f"domain (proven), {self.removed_zero} with zero outgoing weights, {self.merged} duplicates merged, "
                f"{self.folded_layers} always-active layers folded")


def _hidden_units(net: Network) -> int:
    return sum(layer.units for layer in net.layers[:-1])


def _duplicates(layer: Dense) -> list[int]:
    """For each unit, the first unit with the same weights, bias and parameters."""
    seen: dict[tuple, int] = {}
    first = []
    for j in range(layer.units):
        key = (layer.kernel[:, j].tobytes(), None if layer.bias is None else layer.bias[j].tobytes(),
               tuple(sorted(layer.activation.unit_params(j).items())))
        first.append(seen.setdefault(key, j))
    return first


def simplify_exact(net: Network, lower, upper, cuts: int = 16) -> ExactResult:
    """Every exact pass (see the module docstring).  The bounds are computed once: no
    pass changes the function, so every unit's pre-activation keeps its bounds; a
    removal only drops rows of the next kernel, and a fold keeps the next layer's sums."""
    lower, upper = check_box(net, lower, upper)
    before = _hidden_units(net)
    proven = [list(pair) for pair in preactivation_bounds(net, lower, upper, cuts)]
    counts = {"dead": 0, "zero": 0, "merged": 0, "folded": 0}

    def keep_only(index: int, keep: np.ndarray, what: str) -> None:
        nonlocal net
        counts[what] += int((~keep).sum())
        net = _keep_units(net, index, keep)
        proven[index] = [proven[index][0][keep], proven[index][1][keep]]

    for index in range(len(net.layers) - 1):
        if not _foldable(net, index):
            continue
        dead = proven[index][1] <= 0
        if _plain_relu(net.layers[index].activation) and dead.any() and not dead.all():
            keep_only(index, ~dead, "dead")
        zero = ~net.layers[index + 1].kernel.any(axis=1)
        if zero.any() and not zero.all():
            keep_only(index, ~zero, "zero")
        first = _duplicates(net.layers[index])
        if any(f != j for j, f in enumerate(first)):
            net = _add_rows(net, index, first)
            keep_only(index, np.array([f == j for j, f in enumerate(first)]), "merged")
    index = 0
    while index < len(net.layers) - 1:
        act = net.layers[index].activation
        if _foldable(net, index) and (act.is_identity or (act.name in ACTIVE_LINEAR and (proven[index][0] >= 0).all())):
            net = _fold_linear(net, index)
            del proven[index]
            counts["folded"] += 1
        else:
            index += 1
    return ExactResult(net, counts["dead"], counts["zero"], counts["merged"], counts["folded"], before,
                       _hidden_units(net))


def _add_rows(net: Network, index: int, first: list[int]) -> Network:
    """The next layer's rows of duplicate units added into the first of each group."""
    following = net.layers[index + 1]
    kernel = np.zeros_like(following.kernel)
    for j, f in enumerate(first):
        kernel[f] += following.kernel[j]
    layers = list(net.layers)
    layers[index + 1] = replace(following, kernel=kernel)
    return replace(net, layers=tuple(layers))


# --------------------------------------------------------------------------- piecewise-linear form


def _local(name: str, params: dict):
    """Activation -> (knots, function giving (slope, offset) of the piece holding z)."""
    if name == "linear":
        return (), lambda z, p: (np.ones_like(z), np.zeros_like(z))
    if name == "relu" and _plain_relu(Activation("relu", tuple(params.items()))):
        return (0.0,), lambda z, p: (np.where(z > 0, 1.0, 0.0), np.zeros_like(z))
    if name == "leaky_relu":
        return (0.0,), lambda z, p: (np.where(z > 0, 1.0, p["negative_slope"]), np.zeros_like(z))
    if name == "prelu":
        return (0.0,), lambda z, p: (np.where(z > 0, 1.0, np.asarray(p["alpha"])), np.zeros_like(z))
    if name == "relu6":
        return (0.0, 6.0), lambda z, p: (np.where((z > 0) & (z < 6), 1.0, 0.0), np.where(z >= 6, 6.0, 0.0))
    if name == "hard_tanh":
        return (-1.0, 1.0), lambda z, p: (np.where(np.abs(z) < 1, 1.0, 0.0), np.where(np.abs(z) >= 1, np.sign(z), 0.0))
    raise UnsupportedError(f"the exact piecewise-linear form covers linear, relu (plain), leaky_relu, prelu, "
                           f"relu6 and hard_tanh units, not {name}")


#: Most pieces the exact piecewise-linear form may have.
MAX_PIECES = 100_000


@dataclass(frozen=True)
class PiecewiseLinear:
    """The breakpoints ``x_1 < ... < x_K`` inside [lower, upper] and, per piece, the
    slope and intercept of every output (``slopes[k]``: on the piece before x_{k+1})."""

    lower: float
    upper: float
    breakpoints: np.ndarray
    slopes: np.ndarray
    intercepts: np.ndarray

    def network(self, net: Network) -> Network:
        """``y = a0 x + b0 + sum_k (a_k - a_{k-1}) relu(x - x_k)`` on [lower, upper], as a
        1-(K+1)-n ReLU network (``a0 x`` is ``a0 relu(x - lower) + a0 lower`` there)."""
        knots = np.concatenate([[self.lower], self.breakpoints])
        first = Dense(np.ones((1, len(knots))), -knots, Activation("relu"), "pieces")
        jumps = np.vstack([self.slopes[:1], np.diff(self.slopes, axis=0)])
        bias = self.intercepts[0] + self.slopes[0] * self.lower
        second = Dense(jumps, bias, Activation("linear"), "sum")
        return Network(1, (first, second), "float64", net.name, notes=net.notes + (
            f"exact piecewise-linear form on [{self.lower!r}, {self.upper!r}]: {len(self.breakpoints)} breakpoints, "
            f"{len(knots)} pieces",))


def piecewise_linear(net: Network, lower: float, upper: float) -> PiecewiseLinear:
    """The exact breakpoints and slopes of a one-input piecewise-linear network."""
    if net.n_inputs != 1 or not all(isinstance(layer, Dense) for layer in net.layers):
        raise UnsupportedError("the exact piecewise-linear form is computed for one-input networks of Dense layers")
    (lo,), (hi,) = check_box(net, lower, upper)
    edges = np.array([lo, hi])
    a, b = np.ones((1, 1)), np.zeros((1, 1))  # per piece: h = a x + b
    for layer in net.layers:
        params = {k: v for k, v in layer.activation.params}
        knots, local = _local(layer.activation.name, params)
        a, b = a @ layer.kernel, b @ layer.kernel + (0.0 if layer.bias is None else layer.bias)
        edges, a, b = _split(edges, a, b, knots)
        mid = 0.5 * (edges[:-1] + edges[1:])[:, None]
        slope, offset = local(a * mid + b, params)
        a, b = slope * a, slope * b + offset
    keep = np.r_[True, ~(np.isclose(a[1:], a[:-1], rtol=1e-9, atol=1e-12).all(axis=1)
                         & np.isclose(b[1:], b[:-1], rtol=1e-9, atol=1e-12).all(axis=1))]
    starts = edges[:-1][keep]
    return PiecewiseLinear(lo, hi, starts[1:], a[keep], b[keep])


def _split(edges: np.ndarray, a: np.ndarray, b: np.ndarray, knots) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pieces cut where some unit's z = a x + b crosses a knot."""
    new_edges, new_a, new_b = [edges[0]], [], []
    for k in range(len(edges) - 1):
        left, right = edges[k], edges[k + 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            cross = np.concatenate([(knot - b[k]) / a[k] for knot in knots]) if knots else np.array([])
        inside = np.unique(cross[np.isfinite(cross) & (cross > left) & (cross < right)])
        for point in list(inside) + [right]:
            new_edges.append(point)
            new_a.append(a[k])
            new_b.append(b[k])
        if len(new_edges) > MAX_PIECES:
            raise ValidationError(f"the network has more than {MAX_PIECES:,} linear pieces on the domain")
    return np.array(new_edges), np.array(new_a), np.array(new_b)
