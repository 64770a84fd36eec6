"""Forward-mode derivatives of expression-graph nodes, as new graph nodes (so the sound
interval evaluator :func:`mlpcodegen.core.graph_eval.bounds` can bound them over a box: the
mean-value form of :mod:`.certify`).

Only *smooth* graphs are differentiated: sums, + - * /, squares and the functions that
are differentiable everywhere on their domain.  A graph with a selection, a comparison,
max/min, abs or a largest-of (ReLU-family units, hard_tanh...) is refused with None:
there the mean-value theorem needs generalised gradients, and a jump (threshold,
hard_shrink) breaks it altogether; certification then uses plain intervals.
"""
from __future__ import annotations

import math
from typing import Optional

from ..graph import Builder, Call, Item, Node, Num, Op, Ref, Sum, walk

_SMOOTH_OPS = ("add", "sub", "mul", "div", "quotient", "neg", "square")
_SMOOTH_FUNCTIONS = ("exp", "expm1", "log", "log1p", "tanh", "erf", "sqrt", "sigmoid", "softplus")


def is_smooth(roots) -> bool:
    """Whether every node under ``roots`` is one :func:`derivatives` differentiates."""
    for node in walk(list(roots)):
        kind = type(node)
        if kind in (Num, Ref, Item, Sum):
            continue
        if kind is Op and node.op in _SMOOTH_OPS or kind is Call and node.function in _SMOOTH_FUNCTIONS:
            continue
        return False
    return True


def _scaled(b: Builder, factor: Node, d: Optional[Node]) -> Optional[Node]:
    return None if d is None else b.mul(factor, d)


def _plus(b: Builder, p: Optional[Node], q: Optional[Node], negative: bool = False) -> Optional[Node]:
    if q is None:
        return p
    if p is None:
        return b.neg(q) if negative else q
    return b.sub(p, q) if negative else b.add(p, q)


def _call(b: Builder, node: Call, du: Optional[Node]) -> Optional[Node]:
    """d f(u) = f'(u) du."""
    if du is None:
        return None
    u, f = node.arg, node.function
    one = b.num(1.0)
    slopes = {
        "exp": lambda: node, "expm1": lambda: b.call("exp", u),
        "log": lambda: b.div(one, u), "log1p": lambda: b.div(one, b.add(one, u)),
        "tanh": lambda: b.sub(one, b.op("square", node)),
        "sigmoid": lambda: b.mul(node, b.sub(one, node)),
        "softplus": lambda: b.call("sigmoid", u),
        "erf": lambda: b.mul(b.num(2.0 / math.sqrt(math.pi)), b.call("exp", b.neg(b.op("square", u)))),
        "sqrt": lambda: b.div(b.num(0.5), node),
    }
    return b.mul(slopes[f](), du)


def _op(b: Builder, node: Op, d: list[Optional[Node]]) -> Optional[Node]:
    a = node.args
    if node.op == "add":
        return _plus(b, d[0], d[1])
    if node.op == "sub":
        return _plus(b, d[0], d[1], negative=True)
    if node.op == "neg":
        return None if d[0] is None else b.neg(d[0])
    if node.op == "square":
        return _scaled(b, b.mul(b.num(2.0), a[0]), d[0])
    if node.op == "mul":
        return _plus(b, _scaled(b, a[1], d[0]), _scaled(b, a[0], d[1]))
    # a / c: (da - (a/c) dc) / c
    top = _plus(b, d[0], _scaled(b, node, d[1]), negative=True)
    return None if top is None else b.div(top, a[1])


def _sum(b: Builder, node: Sum, d: list[Optional[Node]]) -> Optional[Node]:
    terms = [b.term(dt, t.coefficient, t.negative) for t, dt in zip(node.terms, d) if dt is not None]
    return b.sum(terms) if terms else None


def derivatives(b: Builder, roots, leaf: Node) -> list[Optional[Node]]:
    """d root / d leaf for each root (None: identically 0), built with ``b`` (the builder
    of the roots, or any: nodes are only read).  The graph must be smooth (:func:`is_smooth`)."""
    d: dict[int, Optional[Node]] = {}
    for node in walk(list(roots)):
        kind = type(node)
        if kind in (Num, Ref, Item):
            d[id(node)] = b.num(1.0) if node is leaf else None
        elif kind is Sum:
            d[id(node)] = _sum(b, node, [d[id(t.node)] for t in node.terms])
        elif kind is Op:
            d[id(node)] = _op(b, node, [d[id(arg)] for arg in node.args])
        else:
            d[id(node)] = _call(b, node, d[id(node.arg)])
    return [d[id(root)] for root in roots]
