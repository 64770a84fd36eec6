"""The closed form of a network as statements, one per neuron, for any language
described by a :class:`Language` table (C, pure Python, NumPy, Numba, SymPy).

A backend supplies the table and wraps the statements in its own function
boilerplate; nothing here knows which language it writes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

from ..ir import Affine, Dense, Layer, Network
from ._text import Lines

_TERMS_PER_LINE = 4


@dataclass(frozen=True)
class Language:
    """How one target spells the closed form.

    ``activations`` maps an element-wise activation to a template over ``{z}`` (the
    pre-activation) and ``words`` (function names, literals such as ``{zero}``).  The
    sum is written inline only where ``{z}`` appears once, as a whole argument ``f({z})``; anywhere
    else it is named first, so operator precedence can never bite.
    """

    literal: Callable[[float], str]  # a non-negative float -> exact literal text
    words: Mapping[str, str]
    activations: Mapping[str, str]
    declare: str = ""  # prefix of an immutable local ("const float ")
    declare_mutable: str = ""  # prefix of a mutable local ("float ")
    end: str = ""  # statement terminator (";")
    wrap_in_parens: bool = False  # Python continues a long line only inside (...)
    softmax: str = "stable"  # "stable": subtract the max first; "plain": exp(z)/sum exp(z)
    max_statement: Callable[[str, Sequence[str]], list[str]] = field(default=lambda m, zs: [])

    def word(self, template: str, **extra: str) -> str:
        return template.format(**self.words, **extra)


def affine_terms(weights: np.ndarray, inputs: Sequence[str], bias: float | None,
                 literal: Callable[[float], str]) -> list[str]:
    """``w0*x0``, ``+ w1*x1``, ..., ``+ b`` with signs pulled out of the literals.

    ``a - w*x`` equals ``a + (-w)*x`` exactly in IEEE arithmetic, so writing the sign
    as an operator changes no result, only readability.
    """
    terms = [f"{literal(abs(w))}*{source}" for w, source in zip(weights, inputs)]
    signs = [bool(np.signbit(w)) for w in weights]
    if bias is not None:
        terms.append(literal(abs(bias)))
        signs.append(bool(np.signbit(bias)))
    first = ("-" if signs[0] else "") + terms[0]
    return [first] + [("- " if s else "+ ") + t for s, t in zip(signs[1:], terms[1:])]


def preactivations(layer: Layer, inputs: Sequence[str], literal: Callable[[float], str]) -> list[list[str]]:
    """For each unit of ``layer``, the terms of its pre-activation sum."""
    if isinstance(layer, Affine):
        return [affine_terms(layer.scale[j : j + 1], [source], layer.shift[j], literal)
                for j, source in enumerate(inputs)]
    if isinstance(layer, Dense):
        biases = layer.bias if layer.bias is not None else [None] * layer.n_out
        return [affine_terms(layer.kernel[:, j], inputs, biases[j], literal) for j in range(layer.n_out)]
    return [[source] for source in inputs]


def _assign(lang: Language, lines: Lines, name: str, terms: list[str], head: str = "", tail: str = "",
            mutable: bool = False) -> None:
    """``name = head terms... tail`` over lines of a few terms each."""
    prefix = (lang.declare_mutable if mutable else lang.declare) + f"{name} = " + head
    chunks = [" ".join(terms[i : i + _TERMS_PER_LINE]) for i in range(0, len(terms), _TERMS_PER_LINE)]
    if len(chunks) > 1 and lang.wrap_in_parens and not head:
        prefix, tail = prefix + "(", ")" + tail
    if len(chunks) == 1:
        lines.add(prefix + chunks[0] + tail + lang.end)
        return
    lines.add(prefix + chunks[0])
    for chunk in chunks[1:-1]:
        lines.add(" " * len(prefix) + chunk)
    lines.add(" " * len(prefix) + chunks[-1] + tail + lang.end)


def _elementwise(lang: Language, layer: Layer, index: int, sums: list[list[str]], lines: Lines) -> list[str]:
    template = lang.activations[layer.activation.name]
    outputs = []
    for j, terms in enumerate(sums):
        out = f"h{index}_{j}"
        if template == "{z}":
            _assign(lang, lines, out, terms)
        elif "({z})" in template and template.count("{z}") == 1:
            head, tail = template.split("{z}")
            _assign(lang, lines, out, terms, lang.word(head), lang.word(tail))
        else:
            _assign(lang, lines, f"z{index}_{j}", terms)
            lines.add(lang.declare + f"{out} = " + lang.word(template, z=f"z{index}_{j}") + lang.end)
        outputs.append(out)
    return outputs


def _softmax(lang: Language, layer: Layer, index: int, sums: list[list[str]], lines: Lines) -> list[str]:
    z = [f"z{index}_{j}" for j in range(len(sums))]
    for name, terms in zip(z, sums):
        _assign(lang, lines, name, terms)
    shift = ""
    if lang.softmax == "stable":  # subtract the max: exp never overflows
        lines.add(*lang.max_statement(f"m{index}", z))
        shift = f" - m{index}"
    for j, name in enumerate(z):
        lines.add(lang.declare + f"e{index}_{j} = " + lang.word("{exp}", ) + f"({name}{shift})" + lang.end)
    _assign(lang, lines, f"s{index}", [("+ " if j else "") + f"e{index}_{j}" for j in range(len(z))])
    outputs = [f"h{index}_{j}" for j in range(len(z))]
    for j, out in enumerate(outputs):
        lines.add(lang.declare + f"{out} = e{index}_{j} / s{index}" + lang.end)
    return outputs


#: vector activation -> statement writer; everything else is element-wise.
VECTOR_ACTIVATIONS = {"softmax": _softmax}


def layer_comment(layer: Layer, index: int) -> str:
    kind = {Dense: "dense", Affine: "affine"}.get(type(layer), "activation")
    return f"layer {index} ({layer.name}): {kind} {layer.n_in} -> {layer.n_out}, {layer.activation.name}"


def emit_statements(net: Network, lang: Language, inputs: Sequence[str], lines: Lines,
                    comment: Callable[[str], str]) -> list[str]:
    """Statements computing every layer; returns the names holding the outputs."""
    sources = list(inputs)
    for index, layer in enumerate(net.layers, start=1):
        lines.add(comment(layer_comment(layer, index)))
        sums = preactivations(layer, sources, lang.literal)
        write = VECTOR_ACTIVATIONS.get(layer.activation.name, _elementwise)
        sources = write(lang, layer, index, sums, lines)
    return sources
