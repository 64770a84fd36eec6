"""The closed form of a network as statements, one per neuron, for any language
described by a :class:`Language` table (C, pure Python, NumPy, Numba, SymPy).

Activation formulas come from :mod:`mlpcodegen.activations`, evaluated over
:class:`TextOps`, which spells each operation in the target language.  A backend
supplies the table and wraps the statements in its own function boilerplate;
nothing here knows which language it writes.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Mapping, Optional, Sequence

import numpy as np

from ..activations import REGISTRY
from ..ir import Affine, Dense, Layer, Network
from ._text import Lines, quote_name

_TERMS_PER_LINE = 4
_ATOM = re.compile(r"-?[\w.\[\]]+\Z")
_Z = "__z__"  # placeholder for the pre-activation while a formula is built


@dataclass(frozen=True)
class Language:
    """How one target spells the closed form.

    ``functions`` maps ``abs exp expm1 log log1p tanh erf sqrt sigmoid softplus`` to a
    template over ``{a}``; ``where`` is a template over ``{c} {a} {b}``; ``max2`` and
    ``min2`` build a two-argument max/min; ``max_statement(name, values)`` writes
    statements setting ``name`` to the largest value.
    """

    literal: Callable[[float], str]  # a non-negative float -> exact literal text
    functions: Mapping[str, str]
    where: str
    max2: Callable[[str, str], str]
    min2: Callable[[str, str], str]
    max_statement: Callable[[str, Sequence[str]], list[str]]
    declare: str = ""  # prefix of an immutable local ("const float ")
    end: str = ""  # statement terminator (";")
    wrap_in_parens: bool = False  # Python continues a long line only inside (...)
    stable: bool = True  # subtract the max before exp in softmax; False: the plain formula
    #: Longest sum in one statement; longer ones continue as ``z = z + ...`` (same
    #: left-to-right order, so the same rounding).  CPython's compiler recurses once per
    #: ``+``: a 3000-term expression raises RecursionError on import.  None: no limit.
    max_terms: Optional[int] = None
    divide: Optional[Callable[[str, str], str]] = None  # a / b when b is computed (None: "(a / b)")


class TextOps:
    """The operations activation formulas use, as text in ``lang``."""

    def __init__(self, lang: Language) -> None:
        self.lang = lang

    def num(self, value: float) -> str:
        text = self.lang.literal(abs(value))
        return f"(-{text})" if np.signbit(value) else text

    def add(self, a: str, b: str) -> str:
        return f"({a} + {b})"

    def sub(self, a: str, b: str) -> str:
        return f"({a} - {b})"

    def mul(self, a: str, b: str) -> str:
        return f"({a}*{b})"

    def div(self, a: str, b: str) -> str:
        return self.lang.divide(a, b) if self.lang.divide else f"({a} / {b})"

    def neg(self, a: str) -> str:
        return f"(-{a})"

    def gt(self, a: str, b: str) -> str:
        return f"({a} > {b})"

    def ge(self, a: str, b: str) -> str:
        return f"({a} >= {b})"

    def where(self, cond: str, a: str, b: str) -> str:
        return self.lang.where.format(c=cond, a=a, b=b)

    def max(self, a: str, b: str) -> str:
        return self.lang.max2(a, b)

    def min(self, a: str, b: str) -> str:
        return self.lang.min2(a, b)

    def call(self, function: str, a: str) -> str:
        return self.lang.functions[function].format(a=a)


def is_atom(text: str) -> bool:
    """A name, literal or indexed name: safe to write twice."""
    return bool(_ATOM.match(text))


def strip_parens(text: str) -> str:
    """``(a + b)`` -> ``a + b`` when the outer parentheses enclose everything."""
    if not (text.startswith("(") and text.endswith(")")):
        return text
    depth = 0
    for i, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0 and i < len(text) - 1:
            return text
    return text[1:-1]


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
        biases = layer.bias if layer.bias is not None else [None] * layer.units
        return [affine_terms(layer.kernel[:, j], inputs, biases[j], literal) for j in range(layer.units)]
    return [[source] for source in inputs]


def _too_long(lang: Language, terms: Sequence[str]) -> bool:
    return lang.max_terms is not None and len(terms) > lang.max_terms


def _assign(lang: Language, lines: Lines, name: str, terms: list[str], head: str = "", tail: str = "") -> None:
    """``name = head terms... tail`` over lines of a few terms each; a sum longer than
    the language takes (no head or tail then) in statements ``name = name + ...``."""
    if _too_long(lang, terms):
        step = lang.max_terms - 1
        _statement(lang, lines, name, terms[:step])
        for start in range(step, len(terms), step):
            _statement(lang, lines, name, [name] + terms[start : start + step])
        return
    _statement(lang, lines, name, terms, head, tail)


def _statement(lang: Language, lines: Lines, name: str, terms: list[str], head: str = "", tail: str = "") -> None:
    prefix = lang.declare + f"{name} = " + head
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


def _set(lang: Language, lines: Lines, name: str, text: str) -> None:
    lines.add(lang.declare + f"{name} = {strip_parens(text)}" + lang.end)


def _elementwise(lang: Language, layer: Layer, index: int, sums: list[list[str]], lines: Lines) -> list[str]:
    spec, ops = REGISTRY[layer.activation.name], TextOps(lang)
    outputs = []
    for j, terms in enumerate(sums):
        out, z = f"h{index}_{j}", f"z{index}_{j}"
        text = spec.formula(ops, _Z, layer.activation.unit_params(j))
        if text == _Z:
            _assign(lang, lines, out, terms)
        elif text.count(_Z) == 1 and f"({_Z})" in text and not _too_long(lang, terms):  # f(sum): the sum inline
            head, tail = strip_parens(text).split(_Z)
            _assign(lang, lines, out, terms, head, tail)
        else:  # the sum is used more than once, or inside an operator: name it
            _assign(lang, lines, z, terms)
            _set(lang, lines, out, text.replace(_Z, z))
        outputs.append(out)
    return outputs


def _sum(names: Sequence[str]) -> list[str]:
    return [("+ " if i else "") + name for i, name in enumerate(names)]


def _named_sums(lang: Language, index: int, sums: list[list[str]], lines: Lines) -> list[str]:
    z = [f"z{index}_{j}" for j in range(len(sums))]
    for name, terms in zip(z, sums):
        _assign(lang, lines, name, terms)
    return z


def _exp_shifted(lang: Language, index: int, z: list[str], lines: Lines) -> list[str]:
    """``e_j = exp(z_j - max z)`` (or ``exp(z_j)`` where the language is symbolic)."""
    ops, shift = TextOps(lang), ""
    if lang.stable:  # subtract the max: exp never overflows
        lines.add(*lang.max_statement(f"m{index}", z))
        shift = f" - m{index}"
    exps = [f"e{index}_{j}" for j in range(len(z))]
    for name, value in zip(exps, z):
        _set(lang, lines, name, ops.call("exp", f"{value}{shift}"))
    _assign(lang, lines, f"s{index}", _sum(exps))
    return exps


def _softmax(lang: Language, layer: Layer, index: int, sums: list[list[str]], lines: Lines) -> list[str]:
    exps = _exp_shifted(lang, index, _named_sums(lang, index, sums, lines), lines)
    outputs = [f"h{index}_{j}" for j in range(len(exps))]
    for out, e in zip(outputs, exps):
        _set(lang, lines, out, f"{e} / s{index}")
    return outputs


def _log_softmax(lang: Language, layer: Layer, index: int, sums: list[list[str]], lines: Lines) -> list[str]:
    z = _named_sums(lang, index, sums, lines)
    _exp_shifted(lang, index, z, lines)
    _set(lang, lines, f"l{index}", TextOps(lang).call("log", f"s{index}"))
    outputs = [f"h{index}_{j}" for j in range(len(z))]
    shift = f" - m{index}" if lang.stable else ""
    for out, value in zip(outputs, z):
        _set(lang, lines, out, f"{value}{shift} - l{index}")
    return outputs


def _glu(lang: Language, layer: Layer, index: int, sums: list[list[str]], lines: Lines) -> list[str]:
    z, ops = _named_sums(lang, index, sums, lines), TextOps(lang)
    half = len(z) // 2
    outputs = [f"h{index}_{j}" for j in range(half)]
    for j, out in enumerate(outputs):
        _set(lang, lines, out, ops.mul(z[j], ops.call("sigmoid", z[j + half])))
    return outputs


def _sparsemax(lang: Language, layer: Layer, index: int, sums: list[list[str]], lines: Lines) -> list[str]:
    """tau = max over j of (S_j - 1) / k_j, where k_j counts and S_j sums the z_i >= z_j;
    this is the sorted-prefix threshold of Martins & Astudillo without sorting."""
    z, ops = _named_sums(lang, index, sums, lines), TextOps(lang)
    one, zero = ops.num(1.0), ops.num(0.0)
    candidates = []
    for j, zj in enumerate(z):
        _assign(lang, lines, f"k{index}_{j}", _sum([ops.where(ops.ge(zi, zj), one, zero) for zi in z]))
        _assign(lang, lines, f"c{index}_{j}", _sum([ops.where(ops.ge(zi, zj), zi, zero) for zi in z]))
        _set(lang, lines, f"t{index}_{j}", ops.div(ops.sub(f"c{index}_{j}", one), f"k{index}_{j}"))
        candidates.append(f"t{index}_{j}")
    lines.add(*lang.max_statement(f"m{index}", candidates))
    outputs = [f"h{index}_{j}" for j in range(len(z))]
    for out, zj in zip(outputs, z):
        _set(lang, lines, out, ops.max(ops.sub(zj, f"m{index}"), zero))
    return outputs


def _normalise(lang: Language, layer: Layer, index: int, sums: list[list[str]], lines: Lines) -> list[str]:
    """layer_norm: (z - mean) / sqrt(var + eps); variance_scale: z / sqrt(var + eps);
    rms_norm: z / sqrt(mean(z^2) + eps); unit_norm: z / max(|z|, eps)."""
    name, epsilon = layer.activation.name, float(layer.activation.param("epsilon"))
    z, ops = _named_sums(lang, index, sums, lines), TextOps(lang)
    count = ops.num(float(len(z)))
    spread = z
    if name in ("layer_norm", "variance_scale"):
        if _too_long(lang, z):  # the sum in statements first, then the mean
            _assign(lang, lines, f"a{index}", _sum(z))
            _set(lang, lines, f"a{index}", ops.div(f"a{index}", count))
        else:
            _set(lang, lines, f"a{index}", ops.div("(" + " ".join(_sum(z)) + ")", count))
        spread = [f"c{index}_{j}" for j in range(len(z))]
        for c, value in zip(spread, z):
            _set(lang, lines, c, f"{value} - a{index}")
        if name == "layer_norm":
            z = spread
    _assign(lang, lines, f"q{index}", _sum([f"{v}*{v}" for v in spread]))
    if name == "unit_norm":
        _set(lang, lines, f"r{index}", ops.max(ops.call("sqrt", f"q{index}"), ops.num(epsilon)))
    else:
        _set(lang, lines, f"r{index}", ops.call("sqrt", ops.add(ops.div(f"q{index}", count), ops.num(epsilon))))
    outputs = [f"h{index}_{j}" for j in range(len(z))]
    for out, value in zip(outputs, z):
        _set(lang, lines, out, ops.div(value, f"r{index}"))
    return outputs


#: vector activation -> statement writer; element-wise ones use their formula.
VECTOR_WRITERS = {"softmax": _softmax, "log_softmax": _log_softmax, "glu": _glu, "sparsemax": _sparsemax,
                  "layer_norm": _normalise, "rms_norm": _normalise, "unit_norm": _normalise,
                  "variance_scale": _normalise}


def layer_comment(layer: Layer, index: int) -> str:
    kind = {Dense: "dense", Affine: "affine"}.get(type(layer), "activation")
    return f"layer {index} ({quote_name(layer.name)}): {kind} {layer.n_in} -> {layer.n_out}, {layer.activation.name}"


def activate_statements(lang: Language, layer: Layer, index: int, sums: list[list[str]], lines: Lines) -> list[str]:
    """Statements applying ``layer``'s activation to pre-activation ``sums``."""
    write = VECTOR_WRITERS.get(layer.activation.name, _elementwise)
    return write(lang, layer, index, sums, lines)


def emit_layer(lang: Language, layer: Layer, index: int, sources: Sequence[str], lines: Lines) -> list[str]:
    """One layer as statements, one per neuron; returns the names of its outputs."""
    return activate_statements(lang, layer, index, preactivations(layer, sources, lang.literal), lines)


def emit_statements(net: Network, lang: Language, inputs: Sequence[str], lines: Lines,
                    comment: Callable[[str], str]) -> list[str]:
    """Statements computing every layer; returns the names holding the outputs."""
    sources = list(inputs)
    for index, layer in enumerate(net.layers, start=1):
        lines.add(comment(layer_comment(layer, index)))
        sources = emit_layer(lang, layer, index, sources, lines)
    return sources
