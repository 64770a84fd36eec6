"""Certified and measured errors of an approximation of a network on a box.

The **measured** error is the largest ``|network(x) - approximation(x)|`` over a dense
sample of the box (a grid for one or two inputs, random points and the corners for
more): a lower bound of the true maximum, nothing more.

The **certified** error is proven: the graph of ``network - approximation`` (both
programs over the same input nodes, :mod:`mlpcodegen.network_graph`) is bounded by the
sound interval evaluator :func:`mlpcodegen.graph_eval.bounds` over sub-boxes that cover
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
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..errors import ValidationError
from ..graph import Builder
from ..graph_eval import bounds
from ..ir import Network
from ..network_graph import input_nodes, network_program
from ..reference import evaluate
from .derivative import derivatives, is_smooth

#: Most sub-boxes one certification may hold at once (memory: every graph node holds an
#: interval per box).
MAX_BOXES = 1 << 17
#: Boxes bounded per call of the interval evaluator (its arrays stay small).
CHUNK = 1 << 14


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


def sample_points(lower: np.ndarray, upper: np.ndarray, n: int = 20001, seed: int = 0) -> np.ndarray:
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
    """Largest |net - approximation| over ``points`` (every output)."""
    with np.errstate(all="ignore"):
        difference = np.abs(evaluate(net, points) - evaluate(approximation, points))
    return float(np.max(np.where(np.isnan(difference), np.inf, difference)))


class _Difference:
    """The graph of ``net - approximation`` (one node per output) and, when the graph is
    smooth, its derivative in every input (:mod:`.derivative`), for the mean-value form."""

    def __init__(self, net: Network, approximation: Network) -> None:
        b = Builder()
        x = input_nodes(b, net)
        one = network_program(net, x, b).outputs
        other = network_program(approximation, x, b).outputs
        self.nodes = [b.sum([b.term(p), b.term(q, negative=True)]) for p, q in zip(one, other)]
        self.gradients: Optional[list[list]] = None
        if is_smooth(self.nodes):
            self.gradients = [[g if g is not None else b.num(0.0) for g in derivatives(b, self.nodes, xi)] for xi in x]

    def bound(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """max |difference| over each box (inf where it may be NaN or is unbounded)."""
        return np.concatenate([self._chunk(lo[s:s + CHUNK], hi[s:s + CHUNK]) for s in range(0, len(lo), CHUNK)])

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
    above ``goal`` are halved until none is, or ``max_boxes``/``rounds`` run out."""
    lower, upper = check_box(net, lower, upper)
    if approximation.n_inputs != net.n_inputs or approximation.n_outputs != net.n_outputs:
        raise ValidationError("the approximation must have the network's inputs and outputs")
    nodes = _Difference(net, approximation)
    lo, hi = _initial_boxes(lower, upper, 64)
    proven, finished = 0.0, 0
    for _ in range(rounds):
        worst = nodes.bound(lo, hi)
        done = worst <= goal
        proven, finished = max(proven, float(worst[done].max()) if done.any() else 0.0), finished + int(done.sum())
        lo, hi, worst = lo[~done], hi[~done], worst[~done]
        if not len(lo):
            return proven, finished
        if finished + 2 * len(lo) > max_boxes or (hi - lo).max() <= 0:
            return max(proven, float(worst.max())), finished + len(lo)
        lo, hi = _halve(lo, hi)
    return max(proven, float(nodes.bound(lo, hi).max())), finished + len(lo)


def error_report(net: Network, approximation: Network, lower, upper, goal: Optional[float] = None,
                 samples: int = 20001, max_boxes: int = MAX_BOXES) -> ErrorReport:
    """Measured and certified errors of ``approximation`` on the box; the certification
    aims at ``goal`` (default: 5% above the measured error)."""
    lower, upper = check_box(net, lower, upper)
    points = sample_points(lower, upper, samples)
    measured = measured_error(net, approximation, points)
    target = goal if goal is not None else measured * 1.05 + 1e-300
    certified, boxes = certified_error(net, approximation, lower, upper, max(target, measured * 1.0001), max_boxes)
    return ErrorReport(max(certified, measured), measured, len(points), boxes)
