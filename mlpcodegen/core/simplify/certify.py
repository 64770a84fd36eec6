"""Certified and measured errors of an approximation of a network on a box.

The **measured** error is the largest ``|network(x) - approximation(x)|`` over a dense
sample of the box (a grid for one or two inputs, random points and the corners for
more): a lower bound of the true maximum, nothing more.

The **certified** error is proven: the graph of ``network - approximation`` (both
programs over the same input nodes, :mod:`mlpcodegen.core.network_graph`) is bounded by the
sound interval evaluator :func:`mlpcodegen.core.graph_eval.bounds` over sub-boxes that cover
the box; sub-boxes whose bound is above the goal are halved along their widest side
(vectorised, a few rounds) until every bound is below the goal or the budget of boxes
is spent.  The result is the largest bound of the final cover.  When the budget runs out
the bound is still sound, only looser: it is never lowered to the measured error.

Per box, two sound bounds are taken and the smaller kept: the plain interval of the
difference (it holds for the exact real functions *and* their float64 evaluation through
the graph: the evaluator rounds outward), and, for smooth graphs (tanh, sigmoid, ...:
:mod:`.derivative`), the **mean-value form** ``d(c) + sum_i d_i'(box) [lo_i - c_i, hi_i -
c_i]``, with the derivative's graph bounded by the same evaluator: it holds for the exact
real functions (the float64 evaluation adds its own rounding, ~1e-16 relative, which
``verify`` measures).  Plain intervals lose the dependency between the two programs
(both move with x): about ``(Lipschitz constants) * width`` per box; the mean-value form
loses only ``|d'| * width``, second order near a peak of the error, so a few hundred
boxes certify the seed's degree-11 interpolant within 5% of its measured error where
plain intervals took 60,000.  The boxes still multiply per input, which is where this
stops paying (more than two or three inputs).

Memory and work are budgeted by the graph's **size** (nodes plus sum terms: the interval
evaluator keeps two float64 ends per node and box, and a sum's terms side by side):
boxes are bounded in chunks of at most :data:`WORK_BYTES` of arrays; the mean-value form
is skipped when inputs times size exceeds :data:`MAX_GRADIENT_SIZE` (one derivative graph
per input; the plain bound stays sound, only looser); refinement stops (a sound, looser
bound) when the next round would take the node-box evaluations past :data:`MAX_WORK`; and
a certification whose first round alone is beyond these budgets is refused up front with
a :class:`~mlpcodegen.core.errors.ValidationError`.  No budget ever lowers a bound.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..errors import ValidationError
from ..graph import Builder, Sum, walk
from ..graph_eval import bounds
from ..ir import Network
from ..network_graph import input_nodes, network_program
from ..reference import evaluate
from .derivative import derivatives, is_smooth

#: Most sub-boxes one certification may hold at once (memory: every graph node holds an
#: interval per box).
MAX_BOXES = 1 << 17
#: Most boxes bounded per call of the interval evaluator (fewer for large graphs: WORK_BYTES).
CHUNK = 1 << 14
#: Bytes of work arrays one call of the interval evaluator may hold (all chunks are sized to it).
WORK_BYTES = 256 << 20
#: Bytes per box and unit of graph size: two float64 ends and a NaN flag per node, and a
#: sum's terms side by side with their magnitudes (temporaries included, generously).
BYTES_PER_SIZE = 40
#: The mean-value form is skipped when inputs x size of the difference graph exceeds this
#: (one derivative graph per input: memory and time grow with their product).
MAX_GRADIENT_SIZE = 1 << 16
#: Most node-box evaluations (graph size x boxes, summed over rounds) one certification does
#: (about a minute; bench/SIMPLIFY.md's largest table row, 3 inputs, takes 3.7e8).
MAX_WORK = 1 << 29
#: Points the measured error is taken on by default.
SAMPLES = 20001


@dataclass(frozen=True)
class ErrorReport:
    """``certified``: a proven bound on ``|network - approximation|`` over the box (inf
    when none could be proven); ``measured``: the largest error over ``samples`` points;
    ``boxes``: sub-boxes of the final cover; ``method``: how the bound was proven."""

    certified: float
    measured: float
    samples: int
    boxes: int
    method: str = "interval arithmetic and the mean-value form over sub-boxes"

    def line(self) -> str:
        ratio = f" ({self.certified / self.measured:.2f}x the measured)" if self.measured > 0 else ""
        return (f"certified max error {self.certified:.3g}{ratio}, proven by {self.method} with "
                f"{self.boxes:,} sub-boxes; measured max error {self.measured:.3g} on {self.samples:,} points")


def check_box(net: Network, lower, upper) -> tuple[np.ndarray, np.ndarray]:
    """``lower``/``upper`` as float64 vectors of the network's width, finite, lower <= upper."""
    lower, upper = (np.broadcast_to(np.asarray(v, dtype=np.float64), (net.n_inputs,)).copy() for v in (lower, upper))
    if not (np.isfinite(lower).all() and np.isfinite(upper).all()) or (lower > upper).any():
        raise ValidationError(f"the domain must be finite numbers with LOW <= HIGH for each of the "
                              f"{net.n_inputs} inputs, got {lower.tolist()} and {upper.tolist()}")
    return lower, upper


def sample_points(lower: np.ndarray, upper: np.ndarray, n: int = SAMPLES, seed: int = 0) -> np.ndarray:
    """A dense sample of the box: a grid for 1 or 2 inputs, else random points and the corners."""
    d = len(lower)
    if d == 1:
        return np.linspace(lower, upper, n)
    if d == 2:
        side = int(math.sqrt(n)) + 1
        grid = np.meshgrid(*(np.linspace(lower[i], upper[i], side) for i in range(2)), indexing="ij")
        return np.stack([g.ravel() for g in grid], axis=-1)
    rng = np.random.default_rng(seed)
    corners = np.array(np.meshgrid(*[[0.0, 1.0]] * min(d, 12), indexing="ij")).reshape(min(d, 12), -1).T
    corners = np.hstack([corners, np.zeros((len(corners), d - corners.shape[1]))])
    unit = np.vstack([rng.random((n, d)), corners])
    return lower + unit * (upper - lower)


def measured_error(net: Network, approximation: Network, points: np.ndarray) -> float:
    """Largest |net - approximation| over ``points`` (every output), in chunks of points
    whose widest layer (a polynomial's terms) stays within :data:`WORK_BYTES`."""
    rows = max(1, WORK_BYTES // (4 * 8 * max(widest_layer(net), widest_layer(approximation))))
    worst = 0.0
    for start in range(0, len(points), rows):
        part = points[start:start + rows]
        with np.errstate(all="ignore"):
            difference = np.abs(evaluate(net, part) - evaluate(approximation, part))
        worst = max(worst, float(np.max(np.where(np.isnan(difference), np.inf, difference))))
    return worst


def widest_layer(net: Network) -> int:
    """Most values one layer of ``net`` holds per point (a polynomial: its terms)."""
    widths = [net.n_inputs]
    for layer in net.layers:
        exponents = getattr(layer, "exponents", None)
        if exponents is not None:  # every term's product, and each input's basis values
            widths.append(len(exponents) + net.n_inputs * (int(np.max(exponents, initial=0)) + 1))
        else:
            widths.append(int(getattr(layer, "units", 0) or 0))
    return max(widths)


def graph_size(roots) -> int:
    """Nodes plus sum terms under ``roots``: what the interval evaluator holds per box."""
    return sum(1 + (len(node.terms) if type(node) is Sum else 0) for node in walk(list(roots)))


def _chunk_rows(size: int) -> int:
    """Boxes per call of the evaluator for a graph of ``size``: the byte budget, at most CHUNK."""
    return max(1, min(CHUNK, WORK_BYTES // (BYTES_PER_SIZE * max(size, 1))))


class _Difference:
    """The graph of ``net - approximation`` (one node per output) and, when the graph is
    smooth, its derivative in every input (:mod:`.derivative`), for the mean-value form."""

    def __init__(self, net: Network, approximation: Network) -> None:
        if approximation.n_inputs != net.n_inputs or approximation.n_outputs != net.n_outputs:
            raise ValidationError("the approximation must have the network's inputs and outputs")
        b = Builder()
        x = input_nodes(b, net)
        one = network_program(net, x, b).outputs
        other = network_program(approximation, x, b).outputs
        self.nodes = [b.sum([b.term(p), b.term(q, negative=True)]) for p, q in zip(one, other)]
        self.size = graph_size(self.nodes)
        self.gradients: Optional[list[list]] = None
        # the mean-value form only while its derivative graphs (one per input) stay affordable
        self.method = ErrorReport.method
        if len(x) * self.size > MAX_GRADIENT_SIZE:
            self.method = (f"interval arithmetic over sub-boxes (no mean-value form: {len(x)} inputs x "
                           f"{self.size:,} graph nodes is beyond {MAX_GRADIENT_SIZE:,})")
        elif is_smooth(self.nodes):
            self.gradients = [[g if g is not None else b.num(0.0) for g in derivatives(b, self.nodes, xi)] for xi in x]
        gradient_size = graph_size([g for row in self.gradients for g in row]) if self.gradients else 0
        #: graph sizes evaluated per box (the plain bound, and the centre and slopes of the form)
        self.work = self.size + (self.size + gradient_size if self.gradients else 0)
        self.rows = _chunk_rows(self.size + gradient_size)

    def bound(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """max |difference| over each box (inf where it may be NaN or is unbounded)."""
        rows = self.rows
        return np.concatenate([self._chunk(lo[s:s + rows], hi[s:s + rows]) for s in range(0, len(lo), rows)])

    def _chunk(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        values = bounds(self.nodes, {"x": (lo, hi)})
        worst = np.stack([_magnitude(values[node], len(lo)) for node in self.nodes]).max(axis=0)
        if self.gradients is None:
            return worst
        # mean-value form: d(box) in d(c) + sum_i d_i(box) [lo_i - c_i, hi_i - c_i]
        centre = 0.5 * (lo + hi)
        radius = np.maximum(hi - centre, centre - lo)
        at_centre = bounds(self.nodes, {"x": (centre, centre)})
        slopes = bounds([g for row in self.gradients for g in row], {"x": (lo, hi)})
        best = []
        for j, node in enumerate(self.nodes):
            spread = sum(_magnitude(slopes[row[j]], len(lo)) * radius[:, i] for i, row in enumerate(self.gradients))
            form = (_magnitude(at_centre[node], len(lo)) + spread) * (1.0 + 2.0**-40)  # covers this sum's rounding
            best.append(np.minimum(_magnitude(values[node], len(lo)), form))
        return np.stack(best).max(axis=0)


def _magnitude(iv, n: int) -> np.ndarray:
    """max(|lo|, |hi|) per box; inf where the value may be NaN."""
    size = np.maximum(np.abs(np.broadcast_to(iv.lo, (n,))), np.abs(np.broadcast_to(iv.hi, (n,))))
    return np.where(np.broadcast_to(iv.nan, (n,)), np.inf, size)


def _initial_boxes(lower: np.ndarray, upper: np.ndarray, pieces: int) -> tuple[np.ndarray, np.ndarray]:
    per = max(1, int(round(pieces ** (1.0 / len(lower)))))
    edges = [np.linspace(lower[i], upper[i], per + 1) for i in range(len(lower))]
    index = np.array(np.meshgrid(*[np.arange(per)] * len(lower), indexing="ij")).reshape(len(lower), -1).T
    lo = np.stack([edges[i][index[:, i]] for i in range(len(lower))], axis=-1)
    hi = np.stack([edges[i][index[:, i] + 1] for i in range(len(lower))], axis=-1)
    return lo, hi


def _halve(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each box cut in two across its widest side."""
    axis = np.argmax(hi - lo, axis=1)
    rows = np.arange(len(lo))
    middle = 0.5 * (lo[rows, axis] + hi[rows, axis])
    lo2, hi1 = lo.copy(), hi.copy()
    hi1[rows, axis] = middle
    lo2[rows, axis] = middle
    return np.vstack([lo, lo2]), np.vstack([hi1, hi])


def certified_error(net: Network, approximation: Network, lower, upper, goal: float,
                    max_boxes: int = MAX_BOXES, rounds: int = 48) -> tuple[float, int]:
    """(a proven bound on |net - approximation| over the box, sub-boxes used): boxes
    above ``goal`` are halved until none is, or ``max_boxes``/``rounds``/:data:`MAX_WORK`
    run out (then the bound is the largest of the boxes left: sound, only looser)."""
    lower, upper = check_box(net, lower, upper)
    return _refine(net, _Difference(net, approximation), lower, upper, goal, max_boxes, rounds)


def _refine(net: Network, nodes: "_Difference", lower: np.ndarray, upper: np.ndarray, goal: float,
            max_boxes: int, rounds: int) -> tuple[float, int]:
    lo, hi = _initial_boxes(lower, upper, 64)
    _check_work(net, nodes, len(lo))
    proven, finished, work = 0.0, 0, 0
    for _ in range(rounds):
        work += nodes.work * len(lo)
        worst = nodes.bound(lo, hi)
        done = worst <= goal
        proven, finished = max(proven, float(worst[done].max()) if done.any() else 0.0), finished + int(done.sum())
        lo, hi, worst = lo[~done], hi[~done], worst[~done]
        if not len(lo):
            return proven, finished
        # a budget spent: the bounds of the boxes left stand (sound, only looser)
        if finished + 2 * len(lo) > max_boxes or work + 2 * nodes.work * len(lo) > MAX_WORK or (hi - lo).max() <= 0:
            return max(proven, float(worst.max())), finished + len(lo)
        lo, hi = _halve(lo, hi)
    return max(proven, float(nodes.bound(lo, hi).max())), finished + len(lo)


def _check_work(net: Network, nodes: _Difference, boxes: int) -> None:
    """Refuse a certification whose first round alone is beyond the budgets."""
    if nodes.work * boxes > MAX_WORK or BYTES_PER_SIZE * nodes.work > WORK_BYTES:
        raise ValidationError(_beyond(net, f"{nodes.work:,} graph nodes per sub-box x {boxes:,} sub-boxes"))


def check_polynomial_budget(net: Network, terms: int, degree: int, samples: int = SAMPLES) -> None:
    """Refuse, before it is built, a polynomial of ``terms`` terms whose measured error
    (``samples`` points) or first round of certification would be beyond :data:`MAX_WORK`
    (its graph: about two nodes per term, plus the network's)."""
    b = Builder()
    size = graph_size(network_program(net, input_nodes(b, net), b).outputs) + 2 * terms + net.n_inputs * (degree + 2)
    points = samples + (2 ** min(net.n_inputs, 12) if net.n_inputs > 2 else 0)
    boxes = len(_initial_boxes(np.zeros(net.n_inputs), np.ones(net.n_inputs), 64)[0])
    if size * max(points, boxes) > MAX_WORK or BYTES_PER_SIZE * size > WORK_BYTES:
        raise ValidationError(_beyond(net, f"a polynomial of {terms:,} terms (degree {degree}), {size:,} graph nodes "
                                           f"evaluated on {points:,} sample points and {boxes:,} sub-boxes"))


def _beyond(net: Network, what: str) -> str:
    return (f"certifying an approximation of this {net.describe()} network on its {net.n_inputs} input{'s' if net.n_inputs != 1 else ''} needs {what}, "
            f"beyond the certification budget ({MAX_WORK:,} node evaluations, {WORK_BYTES >> 20} MiB of arrays): "
            "use fewer inputs (fix some), a smaller box, a lower degree (or --total-degree) or a smaller network")


def error_report(net: Network, approximation: Network, lower, upper, goal: Optional[float] = None,
                 samples: int = SAMPLES, max_boxes: int = MAX_BOXES) -> ErrorReport:
    """Measured and certified errors of ``approximation`` on the box; the certification
    aims at ``goal`` (default: 5% above the measured error)."""
    lower, upper = check_box(net, lower, upper)
    points = sample_points(lower, upper, samples)
    measured = measured_error(net, approximation, points)
    target = goal if goal is not None else measured * 1.05 + 1e-300
    nodes = _Difference(net, approximation)
    certified, boxes = _refine(net, nodes, lower, upper, max(target, measured * 1.0001), max_boxes, 48)
    return ErrorReport(max(certified, measured), measured, len(points), boxes, nodes.method)
