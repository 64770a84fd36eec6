"""The expression graph: the computation of a network between the IR and any language.

Nodes are small immutable objects (a number, a named value, an operation, a function
call, a selection, a sum); a :class:`Builder` makes them, and hands back the existing
node when the same one is asked for twice, so common subexpressions are shared and two
nodes are equal exactly when they are the same object.  A :class:`Program` is the
network as a list of statements binding names to nodes (one per neuron, as the
targets write them) and the output nodes.

The graph knows no language: printers (:mod:`mlpcodegen.backends.printer`) spell it,
and interpreters walk it (:mod:`mlpcodegen.core.graph_eval`: float64 values and interval
bounds).  It is built by :mod:`mlpcodegen.core.network_graph` from the IR and the
activation formulas of :mod:`mlpcodegen.core.activations` (the :class:`Builder` is an
``Ops``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator, Optional, Union

#: Binary operations: name -> arity 2.  ``quotient`` is a division whose divisor is
#: known to be positive (a softmax denominator): targets that guard division by zero
#: (pure Python) need not.  ``square`` is ``a*a``, written without parentheses inside a
#: sum.
BINARY = ("add", "sub", "mul", "div", "quotient", "gt", "ge", "max", "min")
UNARY = ("neg", "square")
#: Functions a :class:`Call` may name (what every printer must spell or rewrite).
FUNCTIONS = ("abs", "exp", "expm1", "log", "log1p", "tanh", "erf", "sqrt", "sigmoid", "softplus")


@dataclass(frozen=True, eq=False)
class Num:
    """A constant."""

    value: float


@dataclass(frozen=True, eq=False)
class Ref:
    """A value the program receives under a name its backend chose (an input ``x0``, a
    loop variable ``zj``)."""

    name: str


@dataclass(frozen=True, eq=False)
class Item:
    """Element ``index`` of a named array (``x[3]``, the loop sums ``z2[5]``)."""

    array: str
    index: int


@dataclass(frozen=True, eq=False)
class Op:
    """An arithmetic operation or comparison on one or two nodes."""

    op: str
    args: tuple["Node", ...]


@dataclass(frozen=True, eq=False)
class Call:
    """A function of one argument (one of :data:`FUNCTIONS`)."""

    function: str
    arg: "Node"


@dataclass(frozen=True, eq=False)
class Where:
    """``a`` where ``cond`` holds, else ``b`` (a comparison with NaN does not hold)."""

    cond: "Node"
    a: "Node"
    b: "Node"


@dataclass(frozen=True, eq=False)
class Term:
    """One term of a :class:`Sum`: ``-``/``+`` then ``coefficient*node`` (or ``node``)."""

    negative: bool
    coefficient: Optional[float]
    node: "Node"


@dataclass(frozen=True, eq=False)
class Sum:
    """``t0 + t1 - t2 ... + bias`` added left to right (the rounding every target keeps),
    e.g. a neuron's pre-activation ``w0*x0 + w1*x1 + b``.  ``name`` is what a printer
    calls it when it must be a statement of its own (``z1_0``)."""

    terms: tuple[Term, ...]
    bias: Optional[float] = None
    name: Optional[str] = None


@dataclass(frozen=True, eq=False)
class Largest:
    """The largest of ``args`` (NaN when one is NaN); always bound by a :class:`Let`,
    since languages write it as statements (``if (z > m) m = z;``)."""

    args: tuple["Node", ...]


Node = Union[Num, Ref, Item, Op, Call, Where, Sum, Largest]


@dataclass(frozen=True, eq=False)
class Let:
    """Statement: ``name = node`` (later uses of ``node`` print as ``name``)."""

    name: str
    node: Node


@dataclass(frozen=True, eq=False)
class Comment:
    text: str


Statement = Union[Let, Comment]


@dataclass(frozen=True)
class Program:
    """Statements in order and the nodes that are the outputs."""

    statements: tuple[Statement, ...]
    outputs: tuple[Node, ...]


class Builder:
    """Makes nodes, sharing equal ones; also the ``Ops`` the activation formulas are
    written over (:mod:`mlpcodegen.core.activations`)."""

    def __init__(self) -> None:
        self._nodes: dict[tuple, Node] = {}

    def _make(self, key: tuple, make) -> Node:
        node = self._nodes.get(key)
        if node is None:
            node = self._nodes[key] = make()
        return node

    # -- leaves
    def num(self, value: float) -> Node:
        value = float(value)
        # -0.0 and 0.0 are different constants (1/x tells them apart): key on the sign and
        # the digits (every NaN of one sign is one constant)
        return self._make(("num", math.copysign(1.0, value), repr(value)), lambda: Num(value))

    def ref(self, name: str) -> Node:
        return self._make(("ref", name), lambda: Ref(name))

    def item(self, array: str, index: int) -> Node:
        return self._make(("item", array, index), lambda: Item(array, index))

    # -- the Ops of the activation formulas
    def op(self, op: str, *args: Node) -> Node:
        if op not in BINARY + UNARY or len(args) != (2 if op in BINARY else 1):
            raise ValueError(f"no operation {op!r} of {len(args)} argument(s)")
        return self._make(("op", op, *map(id, args)), lambda: Op(op, args))

    def add(self, a: Node, b: Node) -> Node:
        return self.op("add", a, b)

    def sub(self, a: Node, b: Node) -> Node:
        return self.op("sub", a, b)

    def mul(self, a: Node, b: Node) -> Node:
        return self.op("mul", a, b)

    def div(self, a: Node, b: Node) -> Node:
        return self.op("div", a, b)

    def neg(self, a: Node) -> Node:
        return self.op("neg", a)

    def gt(self, a: Node, b: Node) -> Node:
        return self.op("gt", a, b)

    def ge(self, a: Node, b: Node) -> Node:
        return self.op("ge", a, b)

    def max(self, a: Node, b: Node) -> Node:
        return self.op("max", a, b)

    def min(self, a: Node, b: Node) -> Node:
        return self.op("min", a, b)

    def where(self, cond: Node, a: Node, b: Node) -> Node:
        return self._make(("where", id(cond), id(a), id(b)), lambda: Where(cond, a, b))

    def call(self, function: str, a: Node) -> Node:
        if function not in FUNCTIONS:
            raise ValueError(f"no function {function!r}; functions: {', '.join(FUNCTIONS)}")
        return self._make(("call", function, id(a)), lambda: Call(function, a))

    # -- sums
    def term(self, node: Node, coefficient: Optional[float] = None, negative: bool = False) -> Term:
        """``coefficient*node`` with the sign taken out of the coefficient (``a - w*x``
        is ``a + (-w)*x`` exactly in IEEE arithmetic)."""
        if coefficient is not None:
            negative, coefficient = negative ^ (math.copysign(1.0, coefficient) < 0), abs(float(coefficient))
        return Term(bool(negative), coefficient, node)

    def sum(self, terms: tuple[Term, ...] | list[Term], bias: Optional[float] = None,
            name: Optional[str] = None) -> Node:
        terms = tuple(terms)
        if not terms and bias is None:
            raise ValueError("a sum needs a term or a bias")
        key = ("sum", name, None if bias is None else repr(float(bias)),
               *((t.negative, None if t.coefficient is None else repr(t.coefficient), id(t.node)) for t in terms))
        return self._make(key, lambda: Sum(terms, None if bias is None else float(bias), name))

    def largest(self, nodes: list[Node]) -> Node:
        return self._make(("largest", *map(id, nodes)), lambda: Largest(tuple(nodes)))

    def total(self, nodes: list[Node], name: Optional[str] = None) -> Node:
        """``a + b + c ...`` of nodes."""
        return self.sum([self.term(n) for n in nodes], name=name)


def _softplus(b: Builder, a: Node) -> Node:
    return b.add(b.call("log1p", b.call("exp", b.neg(b.call("abs", a)))), b.max(a, b.num(0.0)))


def _sigmoid(b: Builder, a: Node) -> Node:
    # exp(min(a, 0)) / (1 + exp(-|a|)): exp never overflows, NaN stays NaN
    return b.div(b.call("exp", b.min(a, b.num(0.0))), b.add(b.num(1.0), b.call("exp", b.neg(b.call("abs", a)))))


def _tanh(b: Builder, a: Node) -> Node:
    # tanh|a| = -t / (2 + t), t = expm1(-2|a|) in (-1, 0]: no overflow, no cancellation near
    # 0 (1 - exp(-2|a|) loses all digits below 1e-16); signed by a; +-0 and NaN are a itself
    t = b.call("expm1", b.mul(b.num(-2.0), b.call("abs", a)))
    magnitude = b.div(b.neg(t), b.add(b.num(2.0), t))
    signed = b.where(b.gt(b.num(0.0), a), b.neg(magnitude), magnitude)
    return b.where(b.gt(b.call("abs", a), b.num(0.0)), signed, a)


#: function -> the same function written with others, for a language that lacks it
#: (a printer rewrites a call it has no spelling for; m2cgen's ``fallback_expressions``).
#: Accuracy: softplus, sigmoid and tanh keep the targets' bounds; expm1 and log1p lose
#: relative accuracy near 0 (absolute error stays ~1e-16), sqrt as exp(log(a)/2) is off
#: by up to ~15 ULP at 1e300 and gives +0 for -0: a language should spell those if it can.
FALLBACKS: dict[str, Callable[[Builder, Node], Node]] = {
    "softplus": _softplus,
    "sigmoid": _sigmoid,
    "tanh": _tanh,
    "expm1": lambda b, a: b.sub(b.call("exp", a), b.num(1.0)),
    "log1p": lambda b, a: b.call("log", b.add(b.num(1.0), a)),
    "sqrt": lambda b, a: b.call("exp", b.mul(b.num(0.5), b.call("log", a))),
}


def children(node: Node) -> tuple[Node, ...]:
    """The nodes ``node`` is computed from, in order."""
    return _CHILDREN[type(node)](node)


_CHILDREN = {
    Num: lambda n: (), Ref: lambda n: (), Item: lambda n: (),
    Op: lambda n: n.args, Call: lambda n: (n.arg,), Where: lambda n: (n.cond, n.a, n.b),
    Sum: lambda n: tuple(t.node for t in n.terms), Largest: lambda n: n.args,
}


def walk(roots: tuple[Node, ...] | list[Node]) -> Iterator[Node]:
    """Every node reachable from ``roots``, each once, children before parents (so an
    interpreter can evaluate them in this order); iterative, for deep graphs."""
    seen: set[int] = set()
    for root in roots:
        stack: list[tuple[Node, bool]] = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            if id(node) in seen:
                continue
            if expanded:
                seen.add(id(node))
                yield node
                continue
            stack.append((node, True))
            stack.extend((child, False) for child in reversed(children(node)) if id(child) not in seen)
