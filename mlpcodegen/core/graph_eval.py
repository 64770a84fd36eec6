"""Interpreters of the expression graph (:mod:`mlpcodegen.core.graph`): float64 values and
interval bounds of every node (and :func:`interpret`, the walk other interpreters,
such as SymPy's, run their own table over).

Both walk the graph in :func:`mlpcodegen.core.graph.walk` order (children first, no
recursion: a network has thousands of nodes), compute each node once (memoised by
identity) and dispatch through tables keyed by node type, operation and function name.

**Values** (:func:`evaluate`) follow the special-value contract of
:mod:`mlpcodegen.core.activations` in float64 NumPy, vectorised over samples (every input
is an array; all arrays broadcast):

* ``max``/``min``/:class:`~mlpcodegen.core.graph.Largest` propagate NaN;
* a comparison is the number ``1.0`` or ``0.0`` (as in C), false when either side is
  NaN; :class:`~mlpcodegen.core.graph.Where` picks ``a`` where its condition is non-zero,
  else ``b``; both branches are computed, but only the chosen one reaches the result;
* ``exp``/``expm1`` overflow to inf and division follows IEEE, without warnings;
  ``sigmoid`` and ``softplus`` use the formulas that are finite for every input;
  ``quotient`` is a division and ``square`` is ``a*a``;
* a :class:`~mlpcodegen.core.graph.Sum` adds its terms left to right (``-`` first term
  negated, then ``+``/``-`` each ``coefficient*node``), then its bias: the rounding
  every target keeps.

**Bounds** (:func:`bounds`) give, for inputs anywhere in boxes, an interval
``[lo, hi]`` that holds every value a node can take (vectorised over many boxes at
once).  What they promise:

* *Sound*: they enclose both the exact real value and the float64 value
  :func:`evaluate` computes.  Every endpoint that was rounded is moved outward:
  by one ULP (``np.nextafter`` toward -inf/+inf) after a correctly rounded
  operation (``+ - * /``, ``sqrt``); by :data:`LIBRARY_ULPS` ULPs after a library
  function, whose accuracy NumPy does not document (a few ULPs, as glibc's, is the
  assumption); a ``Sum``'s ends are added left to right as :func:`evaluate` adds
  (rounding is monotone, so they bound its values), then moved out by the classic
  bound on the rounding error of the sum and one ULP.  ``outward=False`` turns
  this off (then bounds of monotone cases equal the float64 values at the box's
  corners, bit for bit: used by the tests).
* *NaN apart*: ``lo``/``hi`` bound the values that are numbers; ``Interval.nan``
  says whether the node may be NaN.  Boxes hold numbers (finite or infinite), so
  a NaN can only be made inside: inf - inf, 0 * inf, 0 / 0, inf / inf, or a
  ``log``/``log1p``/``sqrt`` argument out of its domain (:data:`NAN_MAKERS`,
  :data:`NAN_FUNCTIONS`), and it spreads as arithmetic spreads it.  A comparison
  with NaN is false, a number: one with an operand that may be NaN is never sure
  to hold, and a select's other branch is narrowed only in boxes where neither
  operand may be NaN.  Endpoints that come out NaN are replaced by -inf/+inf.
* *Tight where cheap*: monotone functions (exp, expm1, log, log1p, tanh, erf, sqrt,
  sigmoid, softplus) map endpoints; ``abs``, ``square`` and ``x*x`` handle the sign
  cases exactly; ``max``/``min`` are exact; a comparison of a node with itself is
  decided.  A comparison gives a three-valued truth as an interval of numbers:
  ``[1, 1]`` surely true, ``[0, 0]`` surely false, ``[0, 1]`` either.  A ``Where``
  whose condition is decided takes one branch; otherwise the hull of both, each
  branch evaluated knowing its condition: under ``x > y`` (or ``x >= y``), ``x``
  is at least ``y``'s lower bound and ``y`` at most ``x``'s upper bound (and the
  converse in the other branch).  That makes relu, leaky_relu, elu, selu, celu,
  sparse_plus, soft_shrink, ... exact for a single unit.  Division by an interval
  that holds 0 is [-inf, inf].  Two dependencies of the stable softmax are known:
  ``v - max(..., v, ...)`` is at most 0, and ``a / (a + values >= 0)`` lies in
  [0, 1].  Others are not tracked (``z*sigmoid(z)``; a layer's sums of the units
  before it, which vary together): cutting a box into smaller ones, which
  vectorise, narrows those (measured in tests/test_graph.py's tightness test).
"""
from __future__ import annotations

import math
from typing import Callable, Mapping, NamedTuple, Optional, Sequence, Union

import numpy as np

from .errors import ValidationError
from .graph import (Builder, Call, Item, Largest, Let, Node, Num, Op, Program, Ref, Sum, Where, children,
                    walk)
from .activations import REGISTRY
from .ir import Layer, Network
from .network_graph import activate, input_nodes, named_values, network_program

#: Overflow, inf - inf and x / 0 are intended IEEE results here, not warnings.
_IEEE = np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore")


class Interval(NamedTuple):
    """Lower and upper bounds (arrays over boxes, or scalars) of the values that are
    numbers, and whether the value may be NaN (:func:`bounds` fills it in)."""

    lo: np.ndarray
    hi: np.ndarray
    nan: np.ndarray = np.False_


# --------------------------------------------------------------------------- results


class Values:
    """What an interpreter computed for every node it walked: ``values[node]``, the
    ``outputs`` in order and the ``named`` values (``Let`` names and ``Sum`` names:
    ``h1_0``, ``z1_0``...)."""

    def __init__(self, by_id: dict[int, object], order: list[Node], outputs: tuple[Node, ...],
                 names: dict[str, Node]) -> None:
        self._by_id, self._order = by_id, order  # the order keeps the nodes (and their ids) alive
        self._outputs, self._names = outputs, names

    def __getitem__(self, node: Node):
        return self._by_id[id(node)]

    def __contains__(self, node: object) -> bool:
        return id(node) in self._by_id

    @property
    def outputs(self) -> tuple:
        return tuple(self[node] for node in self._outputs)

    @property
    def named(self) -> dict[str, object]:
        return {name: self[node] for name, node in self._names.items()}


def _parts(program_or_nodes: Union[Program, Sequence[Node]]) -> tuple[tuple[Node, ...], tuple[Node, ...],
                                                                    dict[str, Node]]:
    """(roots to walk, output nodes, Let-named nodes) of a program or of bare nodes.
    A program's every ``Let`` is walked, used by an output or not."""
    if isinstance(program_or_nodes, Program):
        lets = [s for s in program_or_nodes.statements if type(s) is Let]
        outputs = program_or_nodes.outputs
        return tuple(s.node for s in lets) + outputs, outputs, {s.name: s.node for s in lets}
    nodes = tuple(program_or_nodes)
    return nodes, nodes, {}


def _walk_all(program_or_nodes, run: Callable[[list[Node]], dict[int, object]]) -> Values:
    roots, outputs, lets = _parts(program_or_nodes)
    order = list(walk(roots))
    # Sum names (z1_0) first: a Let of the same name (a vector layer's z1_0) is the same node
    names = {node.name: node for node in order if type(node) is Sum and node.name}
    names.update(lets)
    return Values(run(order), order, outputs, names)


def _input(inputs: Mapping, node: Node, column: Callable):
    """What ``inputs`` gives for a leaf: ``inputs[name]`` for a ``Ref``; for an
    ``Item`` ``inputs[(array, i)]``, or ``column(inputs[array], i)``."""
    key, what = _LEAF_KEYS[type(node)](node)
    if key in inputs:
        return inputs[key]
    if type(key) is tuple and key[0] in inputs:
        return column(inputs[key[0]], key[1])
    raise ValidationError(f"no input given for {what}; pass it as {key!r}"
                          + (f" or as the array {key[0]!r}" if type(key) is tuple else ""))


#: leaf type -> (its key in the inputs, what to call it in an error).
_LEAF_KEYS = {Ref: lambda n: (n.name, f"input {n.name!r}"),
              Item: lambda n: ((n.array, n.index), f"input {n.array}[{n.index}]")}


# --------------------------------------------------------------------------- float64 values


def _sigmoid(z):
    e = np.exp(-np.abs(z))  # exp of a non-positive number: never overflows
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _softplus(z):
    return np.log1p(np.exp(-np.abs(z))) + np.maximum(z, 0.0)


def _compare(test):
    return lambda a, b: np.where(test(a, b), 1.0, 0.0)


#: operation -> float64 NumPy function of its arguments.
POINT_OPS: dict[str, Callable] = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide, "quotient": np.divide,
    "gt": _compare(np.greater), "ge": _compare(np.greater_equal),
    "max": np.maximum, "min": np.minimum,  # both propagate NaN, as the contract asks
    "neg": np.negative, "square": lambda a: a * a,
}

#: function -> float64 NumPy function.
POINT_FUNCTIONS: dict[str, Callable] = {
    "abs": np.abs, "exp": np.exp, "expm1": np.expm1, "log": np.log, "log1p": np.log1p, "tanh": np.tanh,
    "erf": np.vectorize(math.erf, otypes=[np.float64]), "sqrt": np.sqrt,
    "sigmoid": _sigmoid, "softplus": _softplus,
}


def _coefficients(node: Sum) -> np.ndarray:
    """Each term's coefficient (1 for none) as a column, ``-`` taken in: ``(-c)*x`` is
    ``-(c*x)`` exactly in IEEE arithmetic, and ``1*x`` is ``x``."""
    return np.array([(-1.0 if t.negative else 1.0) * (1.0 if t.coefficient is None else t.coefficient)
                     for t in node.terms])


def _in_order(rows, bias: Optional[float]) -> np.ndarray:
    """``rows[0] + rows[1] + ... + bias`` added left to right (``np.sum`` is pairwise,
    which rounds differently)."""
    total = rows[0]
    for row in rows[1:]:
        total = total + row
    return total if bias is None else total + bias


def _point_sum(node: Sum, get: Callable) -> np.ndarray:
    if not node.terms:
        return np.float64(node.bias)
    values = np.stack(np.broadcast_arrays(*(get(t.node) for t in node.terms)))
    products = _coefficients(node).reshape((-1,) + (1,) * (values.ndim - 1)) * values
    return _in_order(list(products), node.bias)


def _largest(values: list) -> np.ndarray:
    """NaN-propagating maximum of arrays of any (broadcastable) shapes."""
    result = values[0]
    for value in values[1:]:
        result = np.maximum(result, value)
    return result


def _point_input(node: Node, get: Callable, inputs: Mapping) -> np.ndarray:
    return np.asarray(_input(inputs, node, lambda array, i: np.asarray(array)[..., i]), dtype=np.float64)


#: node type -> its float64 value, given ``get`` (the value of a child) and the inputs.
_POINT: dict[type, Callable] = {
    Num: lambda n, get, inputs: np.float64(n.value),
    Ref: _point_input, Item: _point_input,
    Op: lambda n, get, inputs: POINT_OPS[n.op](*map(get, n.args)),
    Call: lambda n, get, inputs: POINT_FUNCTIONS[n.function](get(n.arg)),
    Where: lambda n, get, inputs: np.where(get(n.cond) != 0.0, get(n.a), get(n.b)),
    Sum: lambda n, get, inputs: _point_sum(n, get),
    Largest: lambda n, get, inputs: _largest([get(arg) for arg in n.args]),
}


@_IEEE
def evaluate(program_or_nodes: Union[Program, Sequence[Node]], inputs: Mapping) -> Values:
    """float64 value of every node of a program (or of the graph under some nodes).

    ``inputs`` maps a :class:`~mlpcodegen.core.graph.Ref`'s name, or an
    :class:`~mlpcodegen.core.graph.Item`'s ``(array, index)``, to an array of samples;
    an item may also be taken from ``inputs[array][..., index]``.
    """
    return interpret(program_or_nodes, _POINT, inputs)


def interpret(program_or_nodes: Union[Program, Sequence[Node]], table: Mapping[type, Callable],
              inputs: Mapping) -> Values:
    """Every node's value under an interpreter given as a table: node type ->
    ``f(node, get, inputs)``, with ``get(child)`` a child's value (already computed).
    The float64 values here and the SymPy objects of :mod:`mlpcodegen.backends.sympy`
    are two such tables over the same walk."""
    def run(order: list[Node]) -> dict[int, object]:
        values: dict[int, object] = {}
        get = lambda child: values[id(child)]  # noqa: E731
        for node in order:
            values[id(node)] = table[type(node)](node, get, inputs)
        return values

    return _walk_all(program_or_nodes, run)


def evaluate_network(net: Network, x: np.ndarray, stable: bool = True) -> np.ndarray:
    """``net``'s output for samples ``x`` (shape ``(n, n_inputs)`` -> ``(n, n_outputs)``,
    or one sample), computed through its expression graph."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim not in (1, 2) or x.shape[-1] != net.n_inputs:
        raise ValidationError(f"expected input of shape ({net.n_inputs},) or (n, {net.n_inputs}), got {x.shape}")
    b = Builder()
    program = network_program(net, input_nodes(b, net), b, stable=stable)
    outputs = evaluate(program, {"x": x}).outputs
    return np.stack([np.broadcast_to(o, x.shape[:-1]) for o in outputs], axis=-1)  # constants broadcast


# --------------------------------------------------------------------------- interval bounds

#: ULPs a library function's result is widened by (NumPy does not document its
#: accuracy; glibc's are within 1-3 ULPs; the composed sigmoid/softplus round more).
LIBRARY_ULPS: dict[str, int] = {
    "abs": 0, "sqrt": 1, "exp": 4, "expm1": 4, "log": 4, "log1p": 4, "tanh": 4, "erf": 4,
    "sigmoid": 8, "softplus": 8,
}

#: function -> the range of its values (bounds are clipped to it: widening must not
#: push tanh past 1 or exp below 0).
RANGES: dict[str, tuple[float, float]] = {
    "abs": (0.0, math.inf), "exp": (0.0, math.inf), "expm1": (-1.0, math.inf), "sqrt": (0.0, math.inf),
    "tanh": (-1.0, 1.0), "erf": (-1.0, 1.0), "sigmoid": (0.0, 1.0), "softplus": (0.0, math.inf),
    "log": (-math.inf, math.inf), "log1p": (-math.inf, math.inf),
}


def _clean(lo, hi) -> Interval:
    """NaN endpoints (inf - inf, inf / inf) become -inf/+inf: sound for every number."""
    return Interval(np.where(np.isnan(lo), -np.inf, lo), np.where(np.isnan(hi), np.inf, hi))


def _hull(a: Interval, b: Interval) -> Interval:
    return Interval(np.minimum(a.lo, b.lo), np.maximum(a.hi, b.hi))


def _products(a: Interval, b: Interval) -> list[np.ndarray]:
    # 0 * inf at a corner stands for 0 * (finite) = 0: the non-NaN products it bounds
    return [np.where(np.isnan(p), 0.0, p) for p in (a.lo * b.lo, a.lo * b.hi, a.hi * b.lo, a.hi * b.hi)]


def _span(values: list[np.ndarray]) -> Interval:
    values = np.broadcast_arrays(*values)  # an interval's ends may differ in shape
    return Interval(np.minimum.reduce(values), np.maximum.reduce(values))


def _mul(a: Interval, b: Interval) -> Interval:
    return _span(_products(a, b))


def _square_like(a: Interval, low, high) -> Interval:
    """The image of ``[a.lo, a.hi]`` under an even function that grows with ``|x|``,
    given its values at the ends: 0 at the bottom when the interval holds 0."""
    straddles = (a.lo < 0) & (a.hi > 0)
    return Interval(np.where(straddles, 0.0, np.minimum(low, high)), np.maximum(low, high))


def _square(a: Interval) -> Interval:
    return _square_like(a, a.lo * a.lo, a.hi * a.hi)


def _abs(a: Interval) -> Interval:
    return _square_like(a, np.abs(a.lo), np.abs(a.hi))


def _div(a: Interval, b: Interval) -> Interval:
    quotients = [a.lo / b.lo, a.lo / b.hi, a.hi / b.lo, a.hi / b.hi]
    # a divisor that may be 0 gives +-inf; inf / inf may be any size
    unknown = (b.lo <= 0) & (b.hi >= 0)
    for q in quotients:
        unknown = unknown | np.isnan(q)
    span = _span([np.where(np.isnan(q), 0.0, q) for q in quotients])
    return Interval(np.where(unknown, -np.inf, span.lo), np.where(unknown, np.inf, span.hi))


def _truth(sure: np.ndarray, never: np.ndarray) -> Interval:
    """Three-valued truth as numbers: [1, 1] sure, [0, 0] never, [0, 1] either."""
    return Interval(np.where(sure, 1.0, 0.0), np.where(never, 0.0, 1.0))


#: operation -> (interval function, whether its endpoints are rounded).
INTERVAL_OPS: dict[str, tuple[Callable, bool]] = {
    "add": (lambda a, b: Interval(a.lo + b.lo, a.hi + b.hi), True),
    "sub": (lambda a, b: Interval(a.lo - b.hi, a.hi - b.lo), True),
    "mul": (_mul, True),
    "div": (_div, True),
    "quotient": (_div, True),
    "gt": (lambda a, b: _truth(a.lo > b.hi, a.hi <= b.lo), False),
    "ge": (lambda a, b: _truth(a.lo >= b.hi, a.hi < b.lo), False),
    "max": (lambda a, b: Interval(np.maximum(a.lo, b.lo), np.maximum(a.hi, b.hi)), False),
    "min": (lambda a, b: Interval(np.minimum(a.lo, b.lo), np.minimum(a.hi, b.hi)), False),
    "neg": (lambda a: Interval(-a.hi, -a.lo), False),
    "square": (_square, True),
}


def _constant(a: Interval, value: float) -> Interval:
    value = np.full(np.broadcast_shapes(np.shape(a.lo), np.shape(a.hi)), value)
    return Interval(value, value)


#: Operations on one node twice, which its interval decides better than two
#: independent operands would: ``x*x`` is a square, ``x > x`` never holds, ``x >= x``
#: always does (for every number), ``x - x`` is 0; (function, whether it rounds).
SAME_ARGUMENT_OPS: dict[str, tuple[Callable[[Interval], Interval], bool]] = {
    "mul": (_square, True), "gt": (lambda a: _constant(a, 0.0), False), "ge": (lambda a: _constant(a, 1.0), False),
    "max": (lambda a: a, False), "min": (lambda a: a, False), "sub": (lambda a: _constant(a, 0.0), False),
}


def _monotone(function: str) -> Callable[[Interval], Interval]:
    f = POINT_FUNCTIONS[function]
    return lambda a: Interval(f(a.lo), f(a.hi))


#: function -> interval function (before widening and clipping to its range).
INTERVAL_FUNCTIONS: dict[str, Callable[[Interval], Interval]] = {
    **{name: _monotone(name) for name in ("exp", "expm1", "log", "log1p", "tanh", "erf", "sqrt",
                                           "sigmoid", "softplus")},
    "abs": _abs,
}


def _refinements(cond: Node, get: Callable, holds: bool) -> dict[int, Interval]:
    """Narrower intervals of a comparison's operands where it holds (``holds``) or not:
    under ``x > y``, ``x >= y.lo`` and ``y <= x.hi``; otherwise ``x <= y.hi`` and
    ``y >= x.lo``, except in boxes where an operand may be NaN (the comparison fails
    then, whatever the other operand).  Where it holds, neither is NaN."""
    if getattr(cond, "op", None) not in COMPARISONS or cond.args[0] is cond.args[1]:
        return {}
    big, small = cond.args if holds else cond.args[::-1]
    x, y = get(big), get(small)
    keep = np.False_ if holds else x.nan | y.nan
    narrowed = {}
    if type(big) is not Num:  # constants are points already
        narrowed[id(big)] = Interval(np.where(keep, x.lo, np.maximum(x.lo, y.lo)), x.hi, x.nan & keep)
    if type(small) is not Num:
        narrowed[id(small)] = Interval(y.lo, np.where(keep, y.hi, np.minimum(y.hi, x.hi)), y.nan & keep)
    return narrowed


class _IntervalWalk:
    """Bounds of every node, in walk order; ``position`` is each node's place in that
    order (a node can only depend on nodes before it)."""

    def __init__(self, order: list[Node], boxes: Mapping, outward: bool) -> None:
        self.position = {id(node): i for i, node in enumerate(order)}
        self.boxes, self.outward = boxes, outward
        self.values: dict[int, Interval] = {}

    def run(self, order: list[Node]) -> dict[int, Interval]:
        get = lambda child: self.values[id(child)]  # noqa: E731
        for node in order:
            self.values[id(node)] = self.compute(node, get)
        return self.values

    def compute(self, node: Node, get: Callable[[Node], Interval]) -> Interval:
        """Bounds of ``node`` and whether it may be NaN, given its children's (``get``)."""
        result = _INTERVAL[type(node)](self, node, get)
        return Interval(result.lo, result.hi, _MAY_BE_NAN[type(node)](node, result, get))

    def widen(self, a: Interval, ulps: int = 1) -> Interval:
        """``a`` moved outward by ``ulps`` ULPs (when ``outward``), NaN ends made infinite."""
        lo, hi, _ = _clean(a.lo, a.hi)
        for _ in range(ulps if self.outward else 0):
            lo, hi = np.nextafter(lo, -np.inf), np.nextafter(hi, np.inf)
        return Interval(lo, hi)

    def branch(self, node: Node, cond: Node, holds: bool, get: Callable) -> Interval:
        """Bounds of a ``Where`` branch, knowing whether its condition holds."""
        narrowed = _refinements(cond, get, holds)
        if not narrowed:
            return get(node)
        local = dict(narrowed)
        local_get = lambda child: local[id(child)] if id(child) in local else get(child)  # noqa: E731
        for inner in self._cone(node, min(self.position[key] for key in narrowed), local):
            local[id(inner)] = self.compute(inner, local_get)
        return local_get(node)

    def _cone(self, root: Node, floor: int, known: Mapping[int, Interval]) -> list[Node]:
        """The nodes under ``root`` (children first) that may depend on a node at
        position ``floor`` or later: those after it in walk order, but not ``known``."""
        order, seen, stack = [], set(), [(root, False)]
        while stack:
            node, expanded = stack.pop()
            key = id(node)
            if key in seen or key in known or self.position[key] <= floor:
                continue
            if expanded:
                seen.add(key)
                order.append(node)
            else:
                stack.append((node, True))
                stack.extend((child, False) for child in reversed(children(node)))
        return order


def _leaf_interval(w: _IntervalWalk, node: Node, get: Callable) -> Interval:
    lo, hi = _input(w.boxes, node, lambda box, i: (np.asarray(box[0])[..., i], np.asarray(box[1])[..., i]))
    return Interval(np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64))


def _truths(cond: Interval, nan) -> tuple[np.ndarray, np.ndarray]:
    """(surely true, surely false) of a condition: non-zero is true, NaN too (C's rule)."""
    return (cond.lo > 0) | (cond.hi < 0), (cond.lo == 0) & (cond.hi == 0) & ~nan


def _op_interval(w: _IntervalWalk, node: Op, get: Callable) -> Interval:
    args = node.args
    same = len(args) == 2 and args[0] is args[1] and node.op in SAME_ARGUMENT_OPS
    function, rounded = SAME_ARGUMENT_OPS[node.op] if same else INTERVAL_OPS[node.op]
    result = w.widen(function(*map(get, args[:1] if same else args)), 1 if rounded else 0)
    if node.op in COMPARISONS:  # a comparison with NaN is false: never sure to hold then
        unsure = _either([get(arg).nan for arg in args])
        result = Interval(np.where(unsure, 0.0, result.lo), result.hi)
    if node.op in ("div", "quotient"):
        result = _share_of_sum(node, result, get)
    return result


def _call_interval(w: _IntervalWalk, node: Call, get: Callable) -> Interval:
    lo, hi, _ = w.widen(INTERVAL_FUNCTIONS[node.function](get(node.arg)), LIBRARY_ULPS[node.function])
    bottom, top = RANGES[node.function]
    return Interval(np.clip(lo, bottom, top), np.clip(hi, bottom, top))


def _where_interval(w: _IntervalWalk, node: Where, get: Callable) -> Interval:
    surely, never = _truths(get(node.cond), get(node.cond).nan)
    a, b = w.branch(node.a, node.cond, True, get), w.branch(node.b, node.cond, False, get)
    both = _hull(a, b)
    return Interval(np.where(surely, a.lo, np.where(never, b.lo, both.lo)),
                    np.where(surely, a.hi, np.where(never, b.hi, both.hi)),
                    (~never & a.nan) | (~surely & b.nan))


def _term_bounds(node: Sum, get: Callable) -> Interval:
    """Bounds of every term (rows), sign and coefficient applied."""
    terms = [get(t.node) for t in node.terms]
    ends = np.broadcast_arrays(*(t.lo for t in terms), *(t.hi for t in terms))
    lo, hi = np.stack(ends[:len(terms)]), np.stack(ends[len(terms):])
    c = _coefficients(node).reshape((-1,) + (1,) * (lo.ndim - 1))
    # 0 * inf stands for 0 * (finite): 0
    low, high = np.where(c == 0, 0.0, np.abs(c) * lo), np.where(c == 0, 0.0, np.abs(c) * hi)
    return Interval(np.where(c < 0, -high, low), np.where(c < 0, -low, high))


def _sum_interval(w: _IntervalWalk, node: Sum, get: Callable) -> Interval:
    """The sums of the lower and of the upper ends, left to right as :func:`evaluate`
    adds (rounding is monotone, so they bound its results), then widened by the
    classic bound on the rounding error of a sum of k terms and k products,
    ``2k u sum|terms|`` (u = 2**-53, twice gamma_k for the rounding of the bound
    itself) plus ``k`` smallest subnormals for underflow, and one ULP."""
    if not node.terms:
        return Interval(np.float64(node.bias), np.float64(node.bias))
    terms = _term_bounds(node, get)
    highs = list(terms.hi)
    if _less_its_largest(node):  # v - max(..., v, ...) <= 0, whatever the bounds of v and the max
        highs = [np.minimum(highs[0] + highs[1], 0.0)] + highs[2:]
    total = Interval(_in_order(list(terms.lo), node.bias), _in_order(highs, node.bias))
    if not w.outward:
        return _clean(total.lo, total.hi)
    k = len(node.terms) + 2
    bias = 0.0 if node.bias is None else abs(node.bias)
    slack_lo = _sum_slack(k, np.abs(terms.lo).sum(axis=0) + bias)
    slack_hi = _sum_slack(k, np.abs(terms.hi).sum(axis=0) + bias)
    return w.widen(Interval(total.lo - slack_lo, total.hi + slack_hi))


def _sum_slack(k: int, magnitude):
    """The classic bound on the rounding error of a sum of ``k`` terms and their products,
    in any order, whose absolute values add up to ``magnitude``: ``2k u magnitude`` (u =
    2**-53, twice gamma_k for the rounding of the bound itself) plus ``k`` smallest
    subnormals for underflow."""
    return 2 * k * 2.0**-53 * magnitude + k * 2.0**-1074


def _less_its_largest(node: Sum) -> bool:
    """Whether ``node`` starts ``v - m`` with ``m`` the largest of values including
    ``v`` (a stable softmax's shift): that partial sum is never positive."""
    if len(node.terms) < 2:
        return False
    first, second = node.terms[:2]
    plain = first.coefficient is None and second.coefficient is None and not first.negative and second.negative
    return plain and type(second.node) is Largest and any(arg is first.node for arg in second.node.args)


def _share_of_sum(node: Op, result: Interval, get: Callable) -> Interval:
    """``a / s`` where ``s`` adds ``a`` to other values, all of them at least 0 (a
    softmax's ``e_j / sum e``) lies in [0, 1]: in floats too, since adding a number
    >= 0 never makes a sum smaller."""
    a, s = node.args
    if type(s) is not Sum or not (s.bias is None or s.bias >= 0) or not np.all(get(a).lo >= 0):
        return result
    holds_a = any(t.node is a and t.coefficient is None and not t.negative for t in s.terms)
    if not holds_a or any(t.negative or not np.all(get(t.node).lo >= 0) for t in s.terms):
        return result
    return Interval(np.clip(result.lo, 0.0, 1.0), np.clip(result.hi, 0.0, 1.0))


def _largest_interval(w: _IntervalWalk, node: Largest, get: Callable) -> Interval:
    args = [get(arg) for arg in node.args]
    return Interval(_largest([a.lo for a in args]), _largest([a.hi for a in args]))


#: node type -> its bounds, given ``get`` (the bounds of a child).
_INTERVAL: dict[type, Callable] = {
    Num: lambda w, n, get: Interval(np.float64(n.value), np.float64(n.value)),
    Ref: _leaf_interval, Item: _leaf_interval,
    Op: _op_interval, Call: _call_interval, Where: _where_interval,
    Sum: _sum_interval, Largest: _largest_interval,
}


# --------------------------------------------------------------------------- may a node be NaN?


def _infinite(a: Interval):
    return (a.lo == -np.inf) | (a.hi == np.inf)


def _holds_zero(a: Interval):
    return (a.lo <= 0) & (a.hi >= 0)


#: operation -> whether it may make a NaN of numbers (given their bounds).
NAN_MAKERS: dict[str, Callable[..., np.ndarray]] = {
    "add": lambda a, b: ((a.hi == np.inf) & (b.lo == -np.inf)) | ((a.lo == -np.inf) & (b.hi == np.inf)),
    "sub": lambda a, b: ((a.hi == np.inf) & (b.hi == np.inf)) | ((a.lo == -np.inf) & (b.lo == -np.inf)),
    "mul": lambda a, b: (_holds_zero(a) & _infinite(b)) | (_infinite(a) & _holds_zero(b)),
    "div": lambda a, b: (_holds_zero(a) & _holds_zero(b)) | (_infinite(a) & _infinite(b)),
    "quotient": lambda a, b: (_holds_zero(a) & _holds_zero(b)) | (_infinite(a) & _infinite(b)),
    "square": lambda a: np.False_, "neg": lambda a: np.False_,
    "max": lambda a, b: np.False_, "min": lambda a, b: np.False_,
}
COMPARISONS = ("gt", "ge")  # never NaN: false

#: function -> whether it may make a NaN of a number in ``a`` (outside its domain).
NAN_FUNCTIONS: dict[str, Callable[[Interval], np.ndarray]] = {
    "log": lambda a: a.lo < 0, "sqrt": lambda a: a.lo < 0, "log1p": lambda a: a.lo < -1,
    **{name: (lambda a: np.False_) for name in ("abs", "exp", "expm1", "tanh", "erf", "sigmoid", "softplus")},
}


def _either(flags: list) -> np.ndarray:
    """Logical or of flags of any (broadcastable) shapes."""
    result = np.False_
    for flag in flags:
        result = result | flag
    return result


def _any_nan(nodes, get: Callable) -> np.ndarray:
    return _either([get(node).nan for node in nodes])


def _op_may_be_nan(node: Op, result: Interval, get: Callable) -> np.ndarray:
    if node.op in COMPARISONS:
        return np.False_
    return _any_nan(node.args, get) | NAN_MAKERS[node.op](*map(get, node.args))


def _sum_may_be_nan(node: Sum, result: Interval, get: Callable) -> np.ndarray:
    """A NaN term, 0 * inf, or +inf and -inf met (a term or an overflowed partial sum:
    then the sum's own bounds reach both)."""
    zero_times_inf = [_infinite(get(t.node)) for t in node.terms if t.coefficient == 0.0]
    both = (result.lo == -np.inf) & (result.hi == np.inf) if len(node.terms) > 1 else np.False_
    return _any_nan([t.node for t in node.terms], get) | _either([both] + zero_times_inf)


#: node type -> whether it may be NaN, given its bounds and ``get`` (a child's bounds).
_MAY_BE_NAN: dict[type, Callable] = {
    Num: lambda n, result, get: np.isnan(n.value),
    Ref: lambda n, result, get: np.False_, Item: lambda n, result, get: np.False_,  # boxes hold no NaN
    Op: _op_may_be_nan,
    Call: lambda n, result, get: get(n.arg).nan | NAN_FUNCTIONS[n.function](get(n.arg)),
    Where: lambda n, result, get: result.nan,  # from its branches, each knowing its condition
    Sum: _sum_may_be_nan,
    Largest: lambda n, result, get: _any_nan(n.args, get),
}


def _check_boxes(boxes: Mapping) -> None:
    for key, (lo, hi) in boxes.items():
        lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
        if np.isnan(lo).any() or np.isnan(hi).any() or (lo > hi).any():
            raise ValidationError(f"box for input {key!r}: bounds must be numbers with lower <= upper")


@_IEEE
def bounds(program_or_nodes: Union[Program, Sequence[Node]], boxes: Mapping, outward: bool = True) -> Values:
    """Interval bounds of every node for inputs anywhere in ``boxes``.

    ``boxes`` maps an input (a ``Ref``'s name, an ``Item``'s ``(array, index)``, or an
    array's name, whose last axis is the index) to ``(lower, upper)``: scalars, or
    arrays over many boxes at once.  ``values[node]`` is an :class:`Interval`; see the
    module docstring for what is promised (soundness, outward rounding, NaN).
    """
    _check_boxes(boxes)
    return _walk_all(program_or_nodes, lambda order: _IntervalWalk(order, boxes, outward).run(order))


def network_bounds(net: Network, lower: np.ndarray, upper: np.ndarray, outward: bool = True) -> Values:
    """Bounds of every node of ``net``'s program for inputs in the box(es)
    ``lower <= x <= upper`` (shape ``(n_inputs,)`` or ``(n_boxes, n_inputs)``):
    ``.outputs`` and ``.named`` (``z{layer}_{unit}`` pre-activations, ``h{layer}_{unit}``
    outputs, and a vector layer's other statements)."""
    lower, upper = (np.asarray(v, dtype=np.float64) for v in (lower, upper))
    if lower.shape != upper.shape or lower.ndim not in (1, 2) or lower.shape[-1] != net.n_inputs:
        raise ValidationError(f"expected lower and upper of shape ({net.n_inputs},) or (n, {net.n_inputs}), "
                              f"got {lower.shape} and {upper.shape}")
    b = Builder()
    return bounds(network_program(net, input_nodes(b, net), b), {"x": (lower, upper)}, outward)


def interval_network(net: Network, lower: np.ndarray, upper: np.ndarray, outward: bool = True) -> Interval:
    """Bounds of ``net``'s outputs for inputs in the box(es) ``lower <= x <= upper``:
    ``lo``, ``hi`` and ``nan`` of shape ``(n_outputs,)`` or ``(n_boxes, n_outputs)``."""
    outputs = network_bounds(net, lower, upper, outward).outputs
    shape = np.shape(lower)[:-1]
    stack = lambda ends: np.stack([np.broadcast_to(v, shape) for v in ends], axis=-1)  # noqa: E731
    return Interval(*(stack([o[field] for o in outputs]) for field in range(3)))


# --------------------------------------------------------------------------- whole layers
# The same interval rules, a layer at a time over many boxes (fixed-point planning runs
# thousands of sub-boxes through wide layers): the affine sums as matrix products with
# the Sum rule's rounding bound, the activation through its own graph.


@_IEEE
def affine_interval(lower: np.ndarray, upper: np.ndarray, kernel: np.ndarray, bias: Optional[np.ndarray],
                    outward: bool = True) -> Interval:
    """Bounds of ``x @ kernel + bias`` for ``x`` in the boxes ``lower <= x <= upper``
    (rows): each term's ends by the sign of its weight, as a :class:`Sum`'s, added in any
    order (a matrix product), then moved out by the same rounding bound and one ULP."""
    lower, upper = np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)
    positive, negative = np.maximum(kernel, 0.0), np.minimum(kernel, 0.0)
    bias = np.zeros(kernel.shape[1]) if bias is None else np.asarray(bias, dtype=np.float64)
    lo = lower @ positive + upper @ negative + bias
    hi = upper @ positive + lower @ negative + bias
    if not outward:
        return _clean(lo, hi)
    magnitude = np.maximum(np.abs(lower), np.abs(upper)) @ np.abs(kernel) + np.abs(bias)
    slack = _sum_slack(kernel.shape[0] + 2, magnitude)
    lo, hi, _ = _clean(lo - slack, hi + slack)
    return Interval(np.nextafter(lo, -np.inf), np.nextafter(hi, np.inf))


def activation_interval(layer: Layer, lower: np.ndarray, upper: np.ndarray, outward: bool = True) -> Interval:
    """Bounds of ``layer``'s activation for pre-activations in ``[lower, upper]`` (boxes,
    units): its statements (:func:`~mlpcodegen.core.network_graph.activate`, as every
    target writes them) through :func:`bounds`, every box at once."""
    b = Builder()
    z = [b.item("z", j) for j in range(layer.units)]
    if REGISTRY[layer.activation.name].vector:
        z = named_values(b, 1, z)  # a vector writer reads its sums by name
    statements, outputs = activate(b, layer, 1, z)
    found = bounds(Program(tuple(statements), tuple(outputs)), {"z": (lower, upper)}, outward).outputs
    shape = np.shape(lower)[:-1]
    stack = lambda ends: np.stack([np.broadcast_to(v, shape) for v in ends], axis=-1)  # noqa: E731
    return Interval(*(stack([o[field] for o in found]) for field in range(3)))
