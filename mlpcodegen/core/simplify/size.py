"""How big a formula is: terms and operations of a network's expression graph (each
shared node counted once, as the targets write it)."""
from __future__ import annotations

from dataclasses import dataclass

from ..graph import Builder, Call, Op, Sum, Where, walk
from ..ir import Network
from ..network_graph import input_nodes, network_program


@dataclass(frozen=True)
class Size:
    """``terms``: numbers in the formula (weights, biases, coefficients); ``ops``:
    arithmetic operations (+ - * /, comparisons, selections) and ``functions`` calls
    (tanh, exp...) one evaluation performs."""

    terms: int
    ops: int
    functions: int

    def line(self) -> str:
        return f"{self.terms} terms, {self.ops} arithmetic operations, {self.functions} function calls"


def formula_size(net: Network) -> Size:
    b = Builder()
    program = network_program(net, input_nodes(b, net), b)
    terms = ops = functions = 0
    for node in walk(program.outputs):
        kind = type(node)
        if kind is Sum:
            count = len(node.terms) + (node.bias is not None)
            terms += count
            ops += count - 1 + sum(t.coefficient is not None for t in node.terms)
        elif kind is Op or kind is Where:
            ops += 1
        elif kind is Call:
            functions += 1
    return Size(terms, ops, functions)
