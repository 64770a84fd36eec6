"""LaTeX backend: the network as a formula, printed by SymPy's LaTeX printer from the
SymPy objects :func:`mlpcodegen.backends.sympy.layer_expressions` interprets from the
network's expression graph (the graph every target prints; a one-layer polynomial from
``simplify`` is shown in its own basis instead: ``sum c_k T_k(t)``).

Options:

* ``digits``: significant digits of every weight (``None``: the exact value);
* ``expand``: activations written out in exponentials
  (``\\tanh z = \\frac{e^{z}-e^{-z}}{e^{z}+e^{-z}}``, ``\\sigma(z) = \\frac{1}{1+e^{-z}}``)
  instead of by name;
* ``layout``: ``"nested"`` (one expression per output) or ``"named"`` (a line per
  neuron, ``h_{1,2} = \\tanh(...)``); ``"auto"`` nests networks of at most
  :data:`NESTED_MAX_UNITS` hidden units.

The text is an ``align*`` environment; :func:`latex_equations` gives the
``(left, right)`` pairs, each a valid math-mode string (tests render every one with
matplotlib's mathtext).
"""
from __future__ import annotations

from typing import Any, Optional

from ..core.errors import UnsupportedError
from ..core.ir import Dense, Network, Polynomial
from ._text import HEADER, check_identifier, quote_name
from .sympy import check_nested_size

DTYPES = ("float64",)
NESTED_MAX_UNITS = 6
#: Largest formula, in weights and biases (SymPy builds and prints about 300 a second).
MAX_FORMULA_TERMS = 2000
LAYOUTS = ("auto", "nested", "named")


def _hidden_units(net: Network) -> int:
    return sum(layer.n_out for layer in net.layers[:-1] if isinstance(layer, Dense))


def output_symbol(net: Network, j: int) -> Any:
    """``y`` for one output, else ``y_{j}``, 0-based as the inputs ``x_{0}`` and hidden
    units ``h_{1,0}`` (and the code targets' ``x[0]``, ``h1_0``, ``y0``)."""
    import sympy

    return sympy.Symbol("y" if net.n_outputs == 1 else f"y_{{{j}}}")


def resolve_layout(net: Network, layout: str) -> str:
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if layout == "auto":
        return "nested" if _hidden_units(net) <= NESTED_MAX_UNITS else "named"
    return layout


def formula_terms(net: Network) -> int:
    """Terms of the named layout (a weight, a bias or a value per term): what printing
    costs, known from the IR before any SymPy object is built."""
    return sum(layer.kernel.size + layer.units if isinstance(layer, Dense) else 2 * layer.n_in
               for layer in net.layers)


def check_formula_size(net: Network, layout: str) -> None:
    """Refuse early (from the IR's sizes) a formula too large to print in reasonable time
    or to read, with the size, the limit and what to do instead."""
    if layout == "nested":
        check_nested_size(net)
    terms = formula_terms(net)
    if terms > MAX_FORMULA_TERMS:
        raise UnsupportedError(
            f"network {quote_name(net.name)} ({net.describe()}) has {terms:,} weights and biases, too many for a "
            f"formula (limit {MAX_FORMULA_TERMS:,}: SymPy takes seconds per thousand and nobody could "
            "read it); convert it to a code target instead (--target c, numpy, numba, python, sympy), "
            "or use a smaller model"
        )


def _ordered_printer(rank: dict[Any, tuple[int, int]]) -> Any:
    """SymPy's LaTeX printer with the terms of every sum in network order: x_{0}, x_{1},
    x_{2} ... x_{10} (SymPy sorts symbols by name: x_{10} before x_{2}), hidden units by
    index, the bias last.  ``rank`` maps input symbols, hidden symbols and hidden units'
    expressions (nested layout) to their (layer, unit)."""
    import sympy
    from sympy.printing.latex import LatexPrinter

    def key(term: Any) -> tuple:
        ranks = [rank[f] for f in sympy.Mul.make_args(term) if f in rank]  # w * h or w * tanh(...)
        ranks = ranks or [rank[s] for s in term.free_symbols if s in rank]
        return (0, min(ranks)) if ranks else (1,)

    class OrderedPrinter(LatexPrinter):
        def _as_ordered_terms(self, expr: Any, order: Any = None) -> list[Any]:
            return sorted(sympy.Add.make_args(expr), key=key)  # stable: the order as built breaks ties

    return OrderedPrinter()


def _equations(net: Network, digits: Optional[int], expand: bool,
               layout: str) -> tuple[list[tuple[Any, Any]], dict[Any, tuple[int, int]]]:
    """(left, right) pairs and the rank of every symbol and hidden expression."""
    import sympy

    from .sympy import hidden_symbol, layer_expressions

    if any(isinstance(layer, Polynomial) for layer in net.layers):
        return _polynomial_equations(net, digits)
    nested = layout == "nested"
    symbols, layers = layer_expressions(net, named=not expand, digits=digits, expand=expand, nested=nested)
    rank = {s: (0, i) for i, s in enumerate(symbols)}
    outputs = [output_symbol(net, j) for j in range(net.n_outputs)]
    if nested:
        for index, exprs in enumerate(layers[:-1], start=1):
            for j, e in enumerate(exprs):  # e and its factors: -tanh(u) is a Mul
                rank.update({f: (index, j) for f in (e, *sympy.Mul.make_args(e)) if not f.is_Number})
        return list(zip(outputs, layers[-1])), rank
    pairs = []
    for index, exprs in enumerate(layers, start=1):
        lefts = [hidden_symbol(index, j) for j in range(len(exprs))] if index < len(layers) else outputs
        rank.update({left: (index, j) for j, left in enumerate(lefts)})
        pairs += list(zip(lefts, exprs))
    return pairs, rank


def _polynomial_equations(net: Network, digits: Optional[int]) -> tuple[list[tuple[Any, Any]], dict]:
    """A network that is one :class:`~mlpcodegen.core.ir.Polynomial`: ``t_{i} = s x_{i} - c``
    (the domain mapped to [-1, 1]), then each output as ``sum c_k t^k`` or
    ``sum c_k T_{k}(t)`` (Chebyshev polynomials), lowest degree first."""
    import sympy

    if len(net.layers) != 1:
        raise UnsupportedError("a formula of a polynomial approximation is printed for the polynomial alone; "
                               f"this network has {len(net.layers)} layers: convert it to a code target instead")
    layer = net.layers[0]
    number = (lambda v: sympy.Float(v)) if digits is None else (lambda v: sympy.Float(float(f"{v:.{digits}g}"), digits))
    xs = [sympy.Symbol(f"x_{{{i}}}") for i in range(net.n_inputs)]
    ts = [sympy.Symbol(f"t_{{{i}}}") if net.n_inputs > 1 else sympy.Symbol("t") for i in range(net.n_inputs)]
    pairs: list[tuple[Any, Any]] = []
    for i, t in enumerate(ts):
        scale, shift = float(layer.scale[i]), float(-layer.center[i] * layer.scale[i])
        mapped = xs[i] if scale == 1.0 else sympy.Mul(number(scale), xs[i], evaluate=False)
        pairs.append((t, sympy.Add(mapped, number(shift), evaluate=False) if shift else mapped))
    chebyshev = layer.basis == "chebyshev"

    def basis(k: int, t: Any) -> Any:
        if k == 0:
            return sympy.Integer(1)
        if chebyshev:
            return sympy.Function(f"T_{{{k}}}")(t)
        return t if k == 1 else sympy.Pow(t, k, evaluate=False)

    order = sorted(range(len(layer.exponents)), key=lambda k: (int(layer.exponents[k].sum()), list(layer.exponents[k])))
    for j in range(net.n_outputs):
        terms = [sympy.Mul(number(layer.coefficients[j, k]),
                           *[basis(int(e), ts[i]) for i, e in enumerate(layer.exponents[k]) if e], evaluate=False)
                 for k in order if layer.coefficients[j, k] != 0]
        pairs.append((output_symbol(net, j), sympy.Add(*terms, evaluate=False) if terms else sympy.Integer(0)))
    return pairs, {x: (0, i) for i, x in enumerate(xs)}


def sympy_equations(net: Network, *, digits: Optional[int] = None, expand: bool = False,
                    layout: str = "auto") -> list[tuple[Any, Any]]:
    """(left symbol, right expression) pairs of the formula, rounded as asked."""
    layout = resolve_layout(net, layout)
    check_formula_size(net, layout)
    return _equations(net, digits, expand, layout)[0]


def latex_equations(net: Network, *, digits: Optional[int] = None, expand: bool = False,
                    layout: str = "auto") -> list[tuple[str, str]]:
    """(left, right) LaTeX strings, one pair per equation, sums in network order."""
    layout = resolve_layout(net, layout)
    check_formula_size(net, layout)
    pairs, rank = _equations(net, digits, expand, layout)
    printer = _ordered_printer(rank)
    return [(printer.doprint(left), printer.doprint(right)) for left, right in pairs]


def emit_latex(net: Network, *, dtype: str = "float64", name: str = "mlp", digits: Optional[int] = 4,
               expand: bool = False, layout: str = "auto") -> str:
    """The formula as an ``align*`` environment, with a comment header."""
    check_identifier(name)
    equations = latex_equations(net, digits=digits, expand=expand, layout=layout)
    body = [f"{left} &= {right}" for left, right in equations]
    rounding = "exact weights" if digits is None else f"weights rounded to {digits} significant digits"
    lines = [f"% {HEADER}", f"% network {quote_name(net.name)}: {net.describe()}; {rounding}"]
    lines += [f"% {quote_name(note)}" for note in net.notes]
    lines += ["% inputs x_{0}, x_{1}, ...; h_{l,j}: unit j of layer l; units and outputs numbered from 0",
              "\\begin{align*}"]
    lines += [line + (" \\\\" if i < len(body) - 1 else "") for i, line in enumerate(body)]
    lines.append("\\end{align*}")
    return "\n".join(lines) + "\n"


def _round(values: Any, digits: int) -> Any:
    import numpy as np

    return np.array([float(f"{v:.{digits}g}") for v in np.ravel(values)]).reshape(np.shape(values))


def rounded_network(net: Network, digits: int) -> Network:
    """``net`` with every weight, bias, scale and shift rounded to ``digits`` significant
    digits (decimal, as the formula prints them)."""
    from dataclasses import replace

    from ..core.ir import Activate, Affine

    def dense(layer: Dense) -> Dense:
        bias = None if layer.bias is None else _round(layer.bias, digits)
        return replace(layer, kernel=_round(layer.kernel, digits), bias=bias)

    # layer kind -> the layer with its numbers rounded
    round_layer = {Dense: dense, Activate: lambda layer: layer,
                   Affine: lambda layer: replace(layer, scale=_round(layer.scale, digits),
                                                 shift=_round(layer.shift, digits)),
                   Polynomial: lambda layer: replace(layer, coefficients=_round(layer.coefficients, digits),
                                                     scale=_round(layer.scale, digits),
                                                     center=_round(layer.center, digits))}

    def rounded(layer: Any) -> Any:
        return round_layer[type(layer)](layer)

    return replace(net, layers=tuple(rounded(layer) for layer in net.layers))


def rounding_error(net: Network, digits: int, x: Any) -> float:
    """Max |network with its weights rounded to ``digits`` - network| over the inputs
    ``x``: what rounding the printed formula's weights costs.  Computed from the IR
    (the reference evaluator), so it costs the same for any size of formula."""
    import numpy as np

    from ..core.reference import evaluate

    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    return float(np.max(np.abs(evaluate(rounded_network(net, digits), x) - evaluate(net, x))))
