"""The network as an expression graph: one statement per neuron, as every target
writes it, with no language in sight.

A layer's pre-activations are :class:`~mlpcodegen.core.graph.Sum` nodes named
``z{layer}_{unit}``; element-wise activations apply their formula
(:mod:`mlpcodegen.core.activations`) over the :class:`~mlpcodegen.core.graph.Builder`; vector
activations (softmax, sparsemax, the normalisations) are written here, statement by
statement, by their ``writer`` in :mod:`mlpcodegen.core.activations`.  Layers are numbered from 1, units from 0: ``h1_0`` is the first output of
the first layer.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

from .activations import REGISTRY
from .graph import Builder, Comment, Item, Let, Node, Num, Program, Statement, Term
from .ir import Activate, Affine, Dense, Layer, Network, Polynomial


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
    :mod:`mlpcodegen.core.activations` writes with); ``stable``: softmax subtracts the max
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
    own = LAYER_WRITERS.get(type(layer))
    if own is not None:
        return own(b, layer, index, sources)
    return activate(b, layer, index, preactivations(b, layer, index, sources), stable)


# --------------------------------------------------------------------------- polynomials
# A Polynomial is written as statements of its own: the mapped inputs t, the basis values
# or the Clenshaw recurrence (each used twice: a statement, never printed twice), then one
# output per unit.  Local names are a letter, the layer and a number (t1_0, b1_12, p1_3),
# the pattern every backend already reserves.


def _mapped_inputs(w: _Writer, layer: Polynomial, sources: Sequence[Node]) -> list[Node]:
    """``t_i = scale_i*x_i - center_i*scale_i``: the domain mapped to [-1, 1]."""
    out = []
    for i, x in enumerate(sources):
        scale, shift = float(layer.scale[i]), -float(layer.center[i]) * float(layer.scale[i])
        if scale == 1.0 and shift == 0.0:
            out.append(x)  # the input itself
            continue
        term = w.b.term(x) if scale == 1.0 else w.b.term(x, scale)
        out.append(w.let(f"t{w.index}_{i}", w.b.sum([term], shift or None, f"t{w.index}_{i}")))
    return out


def _dense_coefficients(layer: Polynomial, unit: int) -> list[float]:
    """One input: the coefficients of degrees 0..n (absent terms are 0)."""
    values = [0.0] * (layer.degree + 1)
    for k, row in enumerate(layer.exponents):
        values[int(row[0])] = float(layer.coefficients[unit, k])
    return values


def _horner(w: _Writer, t: Node, c: list[float]) -> Node:
    """``c0 + t*(c1 + t*(c2 + ...))``, one nested expression."""
    if len(c) == 1:
        return w.b.num(c[0])
    acc = w.b.sum([w.b.term(t, c[-1])], c[-2] or None)
    for value in reversed(c[:-2]):
        acc = w.b.sum([w.b.term(w.b.mul(t, acc))], value or None)
    return acc


def _clenshaw(w: _Writer, t: Node, two_t: Node, c: list[float], unit: int) -> Node:
    """``sum c_k T_k(t)`` by Clenshaw's recurrence ``b_k = c_k + 2t b_{k+1} - b_{k+2}``,
    ``y = c_0 + t b_1 - b_2``: stable for every degree (the monomial coefficients of a
    Chebyshev series grow like 2**n)."""
    b, n = w.b, len(c) - 1
    if n <= 1:
        return b.num(c[0]) if n == 0 else b.sum([b.term(t, c[1])], c[0] or None)
    after, after2 = b.num(c[n]), None  # b_{k+1} and b_{k+2} (b_n = c_n; None: zero)
    for k in range(n - 1, 0, -1):
        terms, bias = _minus(b, [_times(b, two_t, after)], after2, c[k])
        name = f"b{w.index}_{unit * (n + 1) + k}"
        after, after2 = w.let(name, b.sum(terms, bias or None, name)), after
    terms, bias = _minus(b, [_times(b, t, after)], after2, c[0])
    return b.sum(terms, bias or None)


def _minus(b: Builder, terms: list[Term], node: Optional[Node], bias: float) -> tuple[list[Term], float]:
    """``terms - node + bias``: a constant node goes into the bias, None is zero."""
    if node is None:
        return terms, bias
    if type(node) is Num:
        return terms, bias - node.value
    return terms + [b.term(node, negative=True)], bias


def _times(b: Builder, t: Node, node: Node) -> Term:
    """``t*node`` as a term; a constant node becomes the coefficient."""
    return b.term(t, node.value) if type(node) is Num else b.term(b.mul(t, node))


def _basis_values(w: _Writer, layer: Polynomial, t: Node, i: int) -> list[Node]:
    """``B_0(t) ... B_n(t)`` of one input, each a statement (used by many terms)."""
    b, n = w.b, int(layer.exponents[:, i].max())
    values: list[Node] = [b.num(1.0), t]
    for k in range(2, n + 1):
        name = f"p{w.index}_{i * (n + 1) + k}"
        if layer.basis == "monomial":
            node = b.sum([b.term(b.mul(t, values[-1]))], name=name)
        elif k == 2:
            node = b.sum([b.term(b.mul(t, t), 2.0)], -1.0, name)
        else:
            node = b.sum([b.term(b.mul(t, values[-1]), 2.0), b.term(values[-2], negative=True)], name=name)
        values.append(w.let(name, node))
    return values[: n + 1]


def _product(b: Builder, factors: list[Node]) -> Optional[Node]:
    if not factors:
        return None
    node = factors[0]
    for factor in factors[1:]:
        node = b.mul(node, factor)
    return node


def _general_polynomial(w: _Writer, layer: Polynomial, t: list[Node]) -> list[Node]:
    """Several inputs: each term the product of its inputs' basis values."""
    basis = [_basis_values(w, layer, ti, i) for i, ti in enumerate(t)]
    products = [_product(w.b, [basis[i][int(e)] for i, e in enumerate(row) if e]) for row in layer.exponents]
    outputs = []
    for j in range(layer.units):
        constant = sum(float(layer.coefficients[j, k]) for k, p in enumerate(products) if p is None)
        terms = [w.b.term(p, float(layer.coefficients[j, k])) for k, p in enumerate(products) if p is not None]
        outputs.append(w.b.sum(terms, constant) if terms else w.b.num(constant))
    return outputs


def polynomial_statements(b: Builder, layer: Polynomial, index: int,
                          sources: Sequence[Node]) -> tuple[list[Statement], list[Node]]:
    """A :class:`~mlpcodegen.core.ir.Polynomial` as statements: Horner's rule (monomial) or
    Clenshaw's recurrence (Chebyshev) for one input, basis values and products for more."""
    w = _Writer(b, index, True)
    t = _mapped_inputs(w, layer, sources)
    if layer.n_in == 1:
        two_t = None
        if layer.basis == "chebyshev" and layer.degree > 1:  # one statement for every output
            two_t = w.let(f"u{index}_0", b.sum([b.term(t[0], 2.0)], name=f"u{index}_0"))
        one = {"monomial": lambda j, c: _horner(w, t[0], c),
               "chebyshev": lambda j, c: _clenshaw(w, t[0], two_t, c, j)}
        values = [one[layer.basis](j, _dense_coefficients(layer, j)) for j in range(layer.units)]
    else:
        values = _general_polynomial(w, layer, t)
    return w.statements, w.outputs(values)


#: layer kind -> its statements, for layers that are not a sum then an activation.
LAYER_WRITERS: dict[type, Callable[..., tuple[list[Statement], list[Node]]]] = {
    Polynomial: polynomial_statements,
}


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
