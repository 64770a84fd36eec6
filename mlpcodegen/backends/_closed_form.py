"""The closed form of a network as statements, one per neuron, for any language: the
layers as an expression graph (:mod:`mlpcodegen.core.network_graph`) printed by a
:class:`~.printer.Printer`.  A backend supplies the printer and wraps the statements
in its own function boilerplate; nothing here knows which language it writes.
"""
from __future__ import annotations

from typing import Callable, Sequence

from ..core.errors import UnsupportedError
from ..core.graph import Builder, Node
from ..core.ir import Affine, Dense, Layer, Network, Polynomial
from ..core.network_graph import activate, layer_statements
from ._text import Lines, quote_name
from .printer import Printer


def layer_comment(layer: Layer, index: int) -> str:
    kind = {Dense: "dense", Affine: "affine", Polynomial: "polynomial"}.get(type(layer), "activation")
    return f"layer {index} ({quote_name(layer.name)}): {kind} {layer.n_in} -> {layer.n_out}, {layer.activation.name}"


def activate_statements(printer: Printer, b: Builder, layer: Layer, index: int, z: list[Node],
                        lines: Lines) -> list[Node]:
    """Statements applying ``layer``'s activation to pre-activations ``z``."""
    statements, outputs = activate(b, layer, index, z, printer.lang.stable)
    _print(printer, statements, lines, layer, index)
    return outputs


def emit_layer(printer: Printer, b: Builder, layer: Layer, index: int, sources: Sequence[Node],
               lines: Lines) -> list[Node]:
    """One layer as statements, one per neuron; returns the nodes of its outputs."""
    statements, outputs = layer_statements(b, layer, index, sources, printer.lang.stable)
    _print(printer, statements, lines, layer, index)
    return outputs


def _print(printer: Printer, statements: list, lines: Lines, layer: Layer, index: int) -> None:
    try:
        printer.statements(statements, lines)
    except UnsupportedError as error:  # say which layer needs what the language lacks (the same class)
        raise type(error)(f"layer {index} ({quote_name(layer.name)}, {activation_label(layer.activation)}): "
                          f"{error}") from None


def activation_label(activation) -> str:
    """The activation as docs/supported.md names it where a parameter changes what a
    target must write (gelu: the tanh form or the exact one with erf)."""
    if activation.name == "gelu":
        return "gelu (tanh)" if activation.param("approximate") else "gelu (exact, erf)"
    return activation.name


def emit_statements(net: Network, printer: Printer, b: Builder, inputs: Sequence[Node], lines: Lines,
                    comment: Callable[[str], str]) -> list[str]:
    """Statements computing every layer; returns the printed outputs (their names)."""
    sources = list(inputs)
    for index, layer in enumerate(net.layers, start=1):
        lines.add(comment(layer_comment(layer, index)))
        sources = emit_layer(printer, b, layer, index, sources, lines)
    return [printer.expr(s) for s in sources]
