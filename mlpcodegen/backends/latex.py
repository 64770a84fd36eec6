"""LaTeX backend: the network as a formula, printed by SymPy's LaTeX printer.

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

from ..ir import Dense, Network
from ._text import HEADER, check_identifier, quote_name

DTYPES = ("float64",)
NESTED_MAX_UNITS = 6
LAYOUTS = ("auto", "nested", "named")


def _expand(expr: Any, expand: bool) -> Any:
    import sympy

    if not expand:
        return expr

    def exp(z: Any) -> Any:  # unevaluated, so e^{a x + b} is not split into e^{b} e^{a x}
        return sympy.exp(z, evaluate=False)

    def ratio(top: Any, bottom: Any) -> Any:
        return sympy.Mul(top, sympy.Pow(bottom, -1, evaluate=False), evaluate=False)

    def tanh(z: Any) -> Any:
        minus = sympy.Mul(-1, exp(-z), evaluate=False)
        return ratio(sympy.Add(exp(z), minus, evaluate=False), sympy.Add(exp(z), exp(-z), evaluate=False))

    sigma = sympy.Function("sigma")
    expr = expr.replace(lambda e: isinstance(e, sympy.core.function.AppliedUndef) and e.func == sigma,
                        lambda e: ratio(1, sympy.Add(1, exp(-e.args[0]), evaluate=False)))
    return expr.replace(sympy.tanh, tanh)


def _hidden_units(net: Network) -> int:
    return sum(layer.n_out for layer in net.layers[:-1] if isinstance(layer, Dense))


def _output_name(net: Network, j: int) -> str:
    return "y" if net.n_outputs == 1 else f"y_{{{j + 1}}}"


def resolve_layout(net: Network, layout: str) -> str:
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if layout == "auto":
        return "nested" if _hidden_units(net) <= NESTED_MAX_UNITS else "named"
    return layout


def sympy_equations(net: Network, *, digits: Optional[int] = None, expand: bool = False,
                    layout: str = "auto") -> list[tuple[Any, Any]]:
    """(left symbol, right expression) pairs of the formula, rounded as asked."""
    import sympy

    from .sympy import check_nested_size, layer_expressions, round_weights

    layout = resolve_layout(net, layout)
    if layout == "nested":
        check_nested_size(net)
    symbols, layers = layer_expressions(net, named=not expand)
    outputs = [sympy.Symbol(_output_name(net, j)) for j in range(net.n_outputs)]
    if layout == "nested":
        current = layers[0]
        for index, exprs in enumerate(layers[1:], start=1):
            names = [sympy.Symbol(f"h_{{{index},{j + 1}}}", real=True) for j in range(len(current))]
            current = [e.xreplace(dict(zip(names, current))) for e in exprs]
        pairs = list(zip(outputs, current))
    else:
        pairs = []
        for index, exprs in enumerate(layers[:-1], start=1):
            pairs += [(sympy.Symbol(f"h_{{{index},{j + 1}}}"), e) for j, e in enumerate(exprs)]
        pairs += list(zip(outputs, layers[-1]))
    return [(left, _expand(round_weights(right, digits), expand)) for left, right in pairs]  # round, then expand


def latex_equations(net: Network, **options: Any) -> list[tuple[str, str]]:
    """(left, right) LaTeX strings, one pair per equation."""
    import sympy

    return [(sympy.latex(left), sympy.latex(right)) for left, right in sympy_equations(net, **options)]


def emit_latex(net: Network, *, dtype: str = "float64", name: str = "mlp", digits: Optional[int] = 4,
               expand: bool = False, layout: str = "auto") -> str:
    """The formula as an ``align*`` environment, with a comment header."""
    check_identifier(name)
    equations = latex_equations(net, digits=digits, expand=expand, layout=layout)
    body = [f"{left} &= {right}" for left, right in equations]
    rounding = "exact weights" if digits is None else f"weights rounded to {digits} significant digits"
    lines = [f"% {HEADER}", f"% network {quote_name(net.name)}: {net.describe()}; {rounding}", "\\begin{align*}"]
    lines += [line + (" \\\\" if i < len(body) - 1 else "") for i, line in enumerate(body)]
    lines.append("\\end{align*}")
    return "\n".join(lines) + "\n"


def rounding_error(net: Network, digits: int, x: Any) -> float:
    """Max |formula with weights rounded to ``digits`` - network| over the inputs ``x``."""
    import numpy as np

    from ..reference import evaluate
    from .sympy import expression_function, expression_strings

    rounded = expression_function(expression_strings(net, "numpy", digits=digits), net.n_inputs)
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    return float(np.max(np.abs(rounded(x) - evaluate(net, x))))
