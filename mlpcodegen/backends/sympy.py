"""SymPy backend: the network as a SymPy expression, to ``simplify``, differentiate
or expand in a series.

* :func:`emit_sympy` writes a module defining the input symbols, ``outputs`` (one
  expression per output), ``expr`` (the single output, or a column ``Matrix``) and
  ``inputs``; one statement per neuron, weights as exact literals.
* :func:`network_expressions` gives the same expressions in-process.
* :func:`layer_expressions` gives each layer in terms of the previous layer's symbols
  (``h_{1,2} = tanh(...)``), which :mod:`mlpcodegen.backends.latex` prints.

Weights become SymPy ``Float`` (53-bit, the exact binary value) or, with
``rational=True``, exact ``Rational`` numbers.
"""
from __future__ import annotations

from fractions import Fraction
from typing import Any, Callable

import numpy as np

from ..ir import Affine, Dense, Network
from ._closed_form import Language, emit_statements
from ._python_family import module_header
from ._text import Lines, check_identifier

DTYPES = ("float64",)
_TAKEN = frozenset({"sympy", "expr", "outputs", "inputs"})
_LOCALS = r"[hzems]\d+(_\d+)?|x\d*"


def _rational_literal(value: float) -> str:
    fraction = Fraction(float(value))
    if fraction.denominator == 1:
        return f"sympy.Integer({fraction.numerator})"
    return f"sympy.Rational({fraction.numerator}, {fraction.denominator})"


def _language(rational: bool) -> Language:
    literal = _rational_literal if rational else (lambda value: repr(float(value)))
    return Language(
        literal=literal,
        words={"tanh": "sympy.tanh", "exp": "sympy.exp", "zero": "0", "one": "1"},
        activations={
            "linear": "{z}",
            "relu": "sympy.Max({z}, 0)",
            "tanh": "{tanh}({z})",
            "sigmoid": "1 / (1 + {exp}(-{z}))",
        },
        wrap_in_parens=True,
        softmax="plain",  # the formula; numerically safe forms live in the other targets
    )


def input_names(net: Network) -> list[str]:
    return ["x"] if net.n_inputs == 1 else [f"x{i}" for i in range(net.n_inputs)]


def emit_sympy(net: Network, *, dtype: str = "float64", name: str = "mlp", rational: bool = False) -> str:
    """Source of a module defining ``inputs``, ``outputs`` and ``expr``."""
    check_identifier(name, _TAKEN, _LOCALS)
    names = input_names(net)
    lines = Lines().add(*module_header(net, [
        "",
        f"inputs: the symbols {', '.join(names)}; outputs: {net.n_outputs} SymPy expression(s);",
        "expr: the single output, or a column Matrix of them.",
        f"Weights as exact {'rationals' if rational else 'binary floats (sympy.Float, 53 bits)'}.",
    ]), "import sympy", "")
    lines.add(*(f'{v} = sympy.Symbol("{v}", real=True)' for v in names))
    outputs = emit_statements(net, _language(rational), names, lines, lambda text: f"# {text}")
    lines.add("", f"inputs = ({', '.join(names)}{',' if len(names) == 1 else ''})")
    lines.add(f"outputs = [{', '.join(outputs)}]")
    lines.add("expr = outputs[0]" if len(outputs) == 1 else "expr = sympy.Matrix(outputs)")
    return str(lines)


def network_expressions(net: Network, rational: bool = False) -> tuple[tuple[Any, ...], list[Any]]:
    """(input symbols, one SymPy expression per output), as :func:`emit_sympy` defines."""
    namespace: dict[str, Any] = {}
    exec(compile(emit_sympy(net, rational=rational), "<mlpcodegen sympy>", "exec"), namespace)  # noqa: S102
    return namespace["inputs"], namespace["outputs"]


def _number(value: float, rational: bool) -> Any:
    import sympy

    return sympy.Rational(Fraction(float(value))) if rational else sympy.Float(float(value))


def _sigmoid(named: bool) -> Callable[[Any], Any]:
    import sympy

    if named:
        return lambda z: sympy.Function("sigma")(z)
    return lambda z: 1 / (1 + sympy.exp(-z))


def _apply(activation: str, z: list[Any], named: bool) -> list[Any]:
    import sympy

    if activation == "softmax":
        exps = [sympy.exp(v) for v in z]
        total = sympy.Add(*exps)
        return [e / total for e in exps]
    table: dict[str, Callable[[Any], Any]] = {
        "linear": lambda v: v,
        "relu": lambda v: sympy.Max(v, 0),
        "tanh": sympy.tanh,
        "sigmoid": _sigmoid(named),
    }
    return [table[activation](v) for v in z]


def layer_expressions(net: Network, rational: bool = False, named: bool = False) -> tuple[list[Any], list[list[Any]]]:
    """(input symbols, per layer the expressions of its units in the previous layer's
    symbols ``h_{l,j}``).  ``named`` writes sigmoid as ``sigma(z)`` for display."""
    import sympy

    symbols = [sympy.Symbol(v, real=True) for v in input_names(net)]
    previous, layers = symbols, []
    for index, layer in enumerate(net.layers, start=1):
        if isinstance(layer, Dense):
            z = [sympy.Add(*[_number(layer.kernel[i, j], rational) * previous[i] for i in range(layer.n_in)],
                           _number(layer.bias[j], rational) if layer.bias is not None else 0)
                 for j in range(layer.n_out)]
        elif isinstance(layer, Affine):
            z = [_number(s, rational) * v + _number(t, rational) for s, t, v in zip(layer.scale, layer.shift, previous)]
        else:
            z = list(previous)
        layers.append(_apply(layer.activation.name, z, named))
        previous = [sympy.Symbol(f"h_{{{index},{j + 1}}}", real=True) for j in range(layer.n_out)]
    return symbols, layers


#: Largest nested formula (in terms, written out) that is printed as one expression.
MAX_NESTED_TERMS = 20000


def nested_terms(net: Network) -> int:
    """How many terms the fully nested formula has when written out: every neuron's
    expression is copied into each neuron of the next layer that uses it."""
    size = [1] * net.n_inputs
    for layer in net.layers:
        if isinstance(layer, Dense):
            one = sum(size) + layer.n_in + 1
            size = [one] * layer.n_out
        elif layer.activation.is_vector:
            size = [sum(size) * 2] * layer.n_out
        else:
            size = [s + 1 for s in size]
    return sum(size)


def check_nested_size(net: Network) -> None:
    from ..errors import UnsupportedError

    terms = nested_terms(net)
    if terms > MAX_NESTED_TERMS:
        raise UnsupportedError(
            f"the network written as one nested expression would have about {terms:,} terms, too many "
            f"to print (limit {MAX_NESTED_TERMS:,}); use the LaTeX 'named' layout (one line per neuron) "
            "or the python/numpy/numba/sympy module targets, which keep one statement per neuron"
        )


def _printer(style: str):
    """SymPy's NumPy / Python code printers, with floats printed so they round-trip."""
    from sympy.printing.numpy import NumPyPrinter
    from sympy.printing.pycode import PythonCodePrinter

    base = {"numpy": NumPyPrinter, "python": PythonCodePrinter}[style]

    class ExactPrinter(base):  # type: ignore[valid-type, misc]
        def _print_Float(self, expr: Any) -> str:
            return repr(float(expr))

        def _print_Max(self, expr: Any) -> str:
            if style == "python":
                return "max(" + ", ".join(self._print(a) for a in expr.args) + ")"
            text = self._print(expr.args[0])
            for arg in expr.args[1:]:
                text = f"numpy.maximum({text}, {self._print(arg)})"
            return text

    return ExactPrinter()


def expression_strings(net: Network, style: str = "numpy", digits: int | None = None) -> list[str]:
    """One expression string per output in the inputs ``x`` (or ``x0, x1, ...``), using
    ``numpy.tanh``... (``style="numpy"``, element-wise over arrays) or ``math.tanh``...
    (``style="python"``).  ``digits`` rounds every weight to that many significant digits.
    """
    from .latex import _round

    check_nested_size(net)
    _, outputs = network_expressions(net)
    printer = _printer(style)
    return [printer.doprint(_round(e, digits)) for e in outputs]


def expression_function(expressions: list[str], n_inputs: int) -> Callable[[Any], np.ndarray]:
    """A callable ``f(X)`` (rows are samples) evaluating NumPy expression strings."""
    import math

    names = ["x"] if n_inputs == 1 else [f"x{i}" for i in range(n_inputs)]
    code = [compile(text, "<mlpcodegen expression>", "eval") for text in expressions]

    def call(x: Any) -> np.ndarray:
        rows = np.atleast_2d(np.asarray(x, dtype=np.float64))
        if rows.shape[1] != n_inputs:
            raise ValueError(f"expected {n_inputs} input columns, got {rows.shape[1]}")
        scope = {"numpy": np, "math": math, **{n: rows[:, i] for i, n in enumerate(names)}}
        with np.errstate(over="ignore"):
            columns = [np.broadcast_to(eval(c, scope), (len(rows),)) for c in code]  # noqa: S307
        return np.column_stack(columns).astype(np.float64)

    return call


class _NumericSympy:
    """The few SymPy names a generated module uses, mapped to NumPy, so the module's
    own statements can be evaluated on arrays.  (Printing the expression as one
    tree for ``lambdify`` grows exponentially with depth; the statements do not.)"""

    def __init__(self, columns: dict[str, np.ndarray]) -> None:
        self.Symbol = lambda name, real=True: columns[name]
        self.tanh, self.exp, self.Max = np.tanh, np.exp, np.maximum
        self.Integer = float
        self.Rational = lambda p, q: p / q  # int / int is correctly rounded: the exact weight
        self.Matrix = list


def load(net: Network, *, dtype: str = "float64", name: str = "mlp"):
    """Evaluate the generated module's statements on NumPy arrays (for verify)."""
    source = emit_sympy(net, name=name).replace("import sympy\n", "", 1)
    code = compile(source, f"<mlpcodegen sympy module {name}>", "exec")
    names = input_names(net)

    def call(x):
        x = np.asarray(x, dtype=np.float64)
        rows = np.atleast_2d(x)
        namespace = {"sympy": _NumericSympy({n: rows[:, i] for i, n in enumerate(names)})}
        with np.errstate(over="ignore"):
            exec(code, namespace)  # noqa: S102 - our own generated text
        result = np.column_stack([np.broadcast_to(c, (len(rows),)) for c in namespace["outputs"]])
        return result[0] if x.ndim == 1 else result

    return call
