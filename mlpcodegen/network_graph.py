"""The network as an expression graph: one statement per neuron, as every target
writes it, with no language in sight.

A layer's pre-activations are :class:`~mlpcodegen.graph.Sum` nodes named
``z{layer}_{unit}``; element-wise activations apply their formula
(:mod:`mlpcodegen.activations`) over the :class:`~mlpcodegen.graph.Builder`; vector
activations (softmax, sparsemax, the normalisations) are written here, statement by
statement, by their ``writer`` in :mod:`mlpcodegen.activations`.  Layers are numbered from 1, units from 0: ``h1_0`` is the first output of
the first layer.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

from .activations import REGISTRY
from .graph import Builder, Comment, Item, Let, Node, Program, Statement
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
    """Statements of one layer's activation (what a vector activation's ``writer`` in
    :mod:`mlpcodegen.activations` writes with); ``stable``: softmax subtracts the max
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


def activate(b: Builder, layer: Layer, index: int, z: list[Node],
             stable: bool = True) -> tuple[list[Statement], list[Node]]:
    """Statements applying ``layer``'s activation to its pre-activations ``z``, and the
    nodes of its outputs."""
    w = _Writer(b, index, stable)
    write = REGISTRY[layer.activation.name].writer or _elementwise
    outputs = write(w, layer, z)
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


def array_of(sources: Sequence[Node]) -> Optional[str]:
    """``a`` when ``sources`` are exactly the items ``a[0], a[1], ...`` of one array (a
    loop may then read the array itself), else None."""
    first = sources[0]
    if not isinstance(first, Item):
        return None
    cells = [(getattr(s, "array", None), getattr(s, "index", None)) for s in sources]
    return first.array if cells == [(first.array, i) for i in range(len(sources))] else None


def input_nodes(b: Builder, net: Network, array: str = "x") -> list[Node]:
    """``x[0] ... x[n-1]``: the inputs of ``net`` as items of one array."""
    return [b.item(array, i) for i in range(net.n_inputs)]
