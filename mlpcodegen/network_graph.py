"""The network as an expression graph: one statement per neuron, as every target
writes it, with no language in sight.

A layer's pre-activations are :class:`~mlpcodegen.graph.Sum` nodes named
``z{layer}_{unit}``; element-wise activations apply their formula
(:mod:`mlpcodegen.activations`) over the :class:`~mlpcodegen.graph.Builder`; vector
activations (softmax, sparsemax, the normalisations) are written here, statement by
statement.  Layers are numbered from 1, units from 0: ``h1_0`` is the first output of
the first layer.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

from .activations import REGISTRY
from .graph import Builder, Comment, Let, Node, Program, Statement
from .ir import Activate, Affine, Dense, Layer, Network


def _dense_sums(b: Builder, layer: Dense, index: int, sources: Sequence[Node]) -> list[Node]:
    biases = layer.bias if layer.bias is not None else [None] * layer.units
    return [b.sum([b.term(s, w) for w, s in zip(layer.kernel[:, j], sources)], biases[j], f"z{index}_{j}")
            for j in range(layer.units)]


def _affine_sums(b: Builder, layer: Affine, index: int, sources: Sequence[Node]) -> list[Node]:
    return [b.sum([b.term(s, layer.scale[j])], layer.shift[j], f"z{index}_{j}") for j, s in enumerate(sources)]


def _plain_sums(b: Builder, layer: Layer, index: int, sources: Sequence[Node]) -> list[Node]:
    return [b.sum([b.term(s)], name=f"z{index}_{j}") for j, s in enumerate(sources)]


#: layer kind -> its pre-activations.
PREACTIVATIONS: dict[type, Callable[[Builder, Layer, int, Sequence[Node]], list[Node]]] = {
    Dense: _dense_sums, Affine: _affine_sums, Activate: _plain_sums,
}


def preactivations(b: Builder, layer: Layer, index: int, sources: Sequence[Node]) -> list[Node]:
    """For each unit of ``layer``, its pre-activation sum of ``sources``."""
    return PREACTIVATIONS[type(layer)](b, layer, index, sources)


def named_values(b: Builder, index: int, values: Sequence[Node]) -> list[Node]:
    """``values`` as one-term sums named ``z{index}_{j}`` (a loop's ``z1[j]``, read into
    a scalar before a vector activation)."""
    return [b.sum([b.term(v)], name=f"z{index}_{j}") for j, v in enumerate(values)]


class _Writer:
    """Statements of one layer's activation; ``stable``: softmax subtracts the max
    before exp (every numeric target), else the formula as usually written (SymPy)."""

    def __init__(self, b: Builder, index: int, stable: bool) -> None:
        self.b, self.index, self.stable = b, index, stable
        self.statements: list[Statement] = []

    def let(self, name: str, node: Node) -> Node:
        self.statements.append(Let(name, node))
        return node

    def lets(self, prefix: str, nodes: Sequence[Node]) -> list[Node]:
        return [self.let(f"{prefix}{self.index}_{j}", n) for j, n in enumerate(nodes)]

    def outputs(self, nodes: Sequence[Node]) -> list[Node]:
        return self.lets("h", nodes)


def _elementwise(w: _Writer, layer: Layer, z: list[Node]) -> list[Node]:
    formula = REGISTRY[layer.activation.name].formula
    return w.outputs([formula(w.b, zj, layer.activation.unit_params(j)) for j, zj in enumerate(z)])


def _exp_shifted(w: _Writer, z: list[Node]) -> tuple[list[Node], Optional[Node], Node]:
    """``e_j = exp(z_j - max z)`` (or ``exp(z_j)`` when not ``stable``), the max
    subtracted (None) and the sum of the exponentials."""
    b, shift = w.b, None
    if w.stable:  # subtract the max: exp never overflows
        shift = w.let(f"m{w.index}", b.largest(z))
    shifted = [b.sum([b.term(v), b.term(shift, negative=True)]) if shift else v for v in z]
    exps = w.lets("e", [b.call("exp", v) for v in shifted])
    return exps, shift, w.let(f"s{w.index}", b.total(exps))


def _softmax(w: _Writer, layer: Layer, z: list[Node]) -> list[Node]:
    exps, _, total = _exp_shifted(w, w.lets("z", z))
    return w.outputs([w.b.op("quotient", e, total) for e in exps])


def _log_softmax(w: _Writer, layer: Layer, z: list[Node]) -> list[Node]:
    b, z = w.b, w.lets("z", z)
    _, shift, total = _exp_shifted(w, z)
    log = w.let(f"l{w.index}", b.call("log", total))
    tail = ([b.term(shift, negative=True)] if shift else []) + [b.term(log, negative=True)]
    return w.outputs([b.sum([b.term(v)] + tail) for v in z])


def _glu(w: _Writer, layer: Layer, z: list[Node]) -> list[Node]:
    b, z = w.b, w.lets("z", z)
    half = len(z) // 2
    return w.outputs([b.mul(z[j], b.call("sigmoid", z[j + half])) for j in range(half)])


def _sparsemax(w: _Writer, layer: Layer, z: list[Node]) -> list[Node]:
    """tau = max over j of (S_j - 1) / k_j, where k_j counts and S_j sums the z_i >= z_j;
    this is the sorted-prefix threshold of Martins & Astudillo without sorting."""
    b, z = w.b, w.lets("z", z)
    one, zero = b.num(1.0), b.num(0.0)
    taus = []
    for j, zj in enumerate(z):
        count = w.let(f"k{w.index}_{j}", b.total([b.where(b.ge(zi, zj), one, zero) for zi in z]))
        top = w.let(f"c{w.index}_{j}", b.total([b.where(b.ge(zi, zj), zi, zero) for zi in z]))
        taus.append(w.let(f"t{w.index}_{j}", b.div(b.sub(top, one), count)))
    tau = w.let(f"m{w.index}", b.largest(taus))
    return w.outputs([b.max(b.sub(zj, tau), zero) for zj in z])


def _normalise(w: _Writer, layer: Layer, z: list[Node]) -> list[Node]:
    """layer_norm: (z - mean) / sqrt(var + eps); variance_scale: z / sqrt(var + eps);
    rms_norm: z / sqrt(mean(z^2) + eps); unit_norm: z / max(|z|, eps)."""
    name, epsilon = layer.activation.name, float(layer.activation.param("epsilon"))
    b, z = w.b, w.lets("z", z)
    count, spread = b.num(float(len(z))), z
    if name in ("layer_norm", "variance_scale"):
        mean = w.let(f"a{w.index}", b.div(b.total(z), count))
        spread = w.lets("c", [b.sum([b.term(v), b.term(mean, negative=True)]) for v in z])
        z = spread if name == "layer_norm" else z
    squares = w.let(f"q{w.index}", b.total([b.op("square", v) for v in spread]))
    if name == "unit_norm":
        norm = b.max(b.call("sqrt", squares), b.num(epsilon))
    else:
        norm = b.call("sqrt", b.add(b.div(squares, count), b.num(epsilon)))
    norm = w.let(f"r{w.index}", norm)
    return w.outputs([b.div(v, norm) for v in z])


#: vector activation -> statement writer; element-wise ones use their formula.
VECTOR_WRITERS = {"softmax": _softmax, "log_softmax": _log_softmax, "glu": _glu, "sparsemax": _sparsemax,
                  "layer_norm": _normalise, "rms_norm": _normalise, "unit_norm": _normalise,
                  "variance_scale": _normalise}


def activate(b: Builder, layer: Layer, index: int, z: list[Node],
             stable: bool = True) -> tuple[list[Statement], list[Node]]:
    """Statements applying ``layer``'s activation to its pre-activations ``z``, and the
    nodes of its outputs."""
    w = _Writer(b, index, stable)
    outputs = VECTOR_WRITERS.get(layer.activation.name, _elementwise)(w, layer, z)
    return w.statements, outputs


def layer_statements(b: Builder, layer: Layer, index: int, sources: Sequence[Node],
                     stable: bool = True) -> tuple[list[Statement], list[Node]]:
    """One layer as statements, one per neuron, and its output nodes."""
    return activate(b, layer, index, preactivations(b, layer, index, sources), stable)


def network_program(net: Network, sources: Sequence[Node], b: Optional[Builder] = None, stable: bool = True,
                    comment: Optional[Callable[[Layer, int], str]] = None) -> Program:
    """Every layer of ``net`` as statements over the input nodes ``sources``
    (``comment(layer, index)``: a comment before each layer)."""
    b = b or Builder()
    statements: list[Statement] = []
    outputs = list(sources)
    for index, layer in enumerate(net.layers, start=1):
        if comment is not None:
            statements.append(Comment(comment(layer, index)))
        more, outputs = layer_statements(b, layer, index, outputs, stable)
        statements += more
    return Program(tuple(statements), tuple(outputs))


def input_nodes(b: Builder, net: Network, array: str = "x") -> list[Node]:
    """``x[0] ... x[n-1]``: the inputs of ``net`` as items of one array."""
    return [b.item(array, i) for i in range(net.n_inputs)]
