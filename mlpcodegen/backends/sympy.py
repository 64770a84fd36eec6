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
from typing import Any, Callable, Optional

import numpy as np

from ..ir import Affine, Dense, Network
from ._closed_form import Language, emit_statements
from ._python_family import module_header
from ._text import Lines, check_identifier

DTYPES = ("float64",)
_TAKEN = frozenset({"sympy", "expr", "outputs", "inputs"})
_LOCALS = r"[a-z]\d+(_\d+)?|x"


def _rational_literal(value: float) -> str:
    fraction = Fraction(float(value))
    if fraction.denominator == 1:
        return f"sympy.Integer({fraction.numerator})"
    return f"sympy.Rational({fraction.numerator}, {fraction.denominator})"


#: primitive -> SymPy text.  softplus keeps the stable form (exact, and finite when the
#: module's statements are evaluated numerically).
SYMPY_FUNCTIONS = {
    "abs": "sympy.Abs({a})", "exp": "sympy.exp({a})", "expm1": "(sympy.exp({a}) - 1)", "log": "sympy.log({a})",
    "log1p": "sympy.log(1 + {a})", "tanh": "sympy.tanh({a})", "erf": "sympy.erf({a})", "sqrt": "sympy.sqrt({a})",
    "sigmoid": "(1 / (1 + sympy.exp(-{a})))",
    "softplus": "(sympy.log(1 + sympy.exp(-sympy.Abs({a}))) + sympy.Max({a}, 0))",
}


def _language(rational: bool) -> Language:
    literal = _rational_literal if rational else (lambda value: repr(float(value)))
    return Language(
        literal=literal,
        functions=SYMPY_FUNCTIONS,
        where="sympy.Piecewise(({a}, {c}), ({b}, True))",
        max2=lambda a, b: f"sympy.Max({a}, {b})",
        min2=lambda a, b: f"sympy.Min({a}, {b})",
        max_statement=lambda m, zs: [f"{m} = " + (f"sympy.Max({', '.join(zs)})" if len(zs) > 1 else zs[0])],
        wrap_in_parens=True,
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


def round_weights(expr: Any, digits: Optional[int]) -> Any:
    """``expr`` with every float rounded to ``digits`` significant digits (None: as is)."""
    import sympy

    if digits is None:
        return expr
    # Decimal rounding: the printed 0.41 is the number the rounded formula computes with.
    return expr.xreplace({f: sympy.Float(f"{float(f):.{digits}g}") for f in expr.atoms(sympy.Float)})


def _number(value: float, rational: bool) -> Any:
    import sympy

    return sympy.Rational(Fraction(float(value))) if rational else sympy.Float(float(value))


#: Shown by their usual names in the "named" LaTeX layout: tanh, max(0, z), sigma(z).
_SHOWN_AS_FORMULA = ("linear", "relu", "tanh")


def _activate(layer: Any, index: int, z: list[Any], named: bool) -> list[Any]:
    """The layer's outputs as SymPy expressions of its pre-activations ``z``: by name
    (``named``) or from the same formulas as every other target."""
    import sympy

    from ..activations import REGISTRY
    from ._closed_form import VECTOR_WRITERS, TextOps, strip_parens

    act = layer.activation
    if named and act.name == "sigmoid":
        return [sympy.Function("sigma")(v) for v in z]
    if act.name in ("softmax", "log_softmax"):  # shown as the mathematics, not the max-shifted numerics
        exps = [sympy.exp(v) for v in z]
        total = sympy.Add(*exps)
        return [e / total for e in exps] if act.name == "softmax" else [v - sympy.log(total) for v in z]
    if named and act.name not in _SHOWN_AS_FORMULA:
        if act.is_vector:
            return [sympy.Function(f"{act.name}_{{{j + 1}}}")(*z) for j in range(act.out_width(len(z)))]
        return [sympy.Function(act.name)(v) for v in z]
    lang = _language(False)
    if not act.is_vector:
        spec = REGISTRY[act.name]
        return [eval(strip_parens(spec.formula(TextOps(lang), "_z", act.unit_params(j))), {"sympy": sympy, "_z": v})
                for j, v in enumerate(z)]
    lines = Lines()
    names = VECTOR_WRITERS[act.name](lang, layer, index, [[f"_z{j}"] for j in range(len(z))], lines)
    namespace = {"sympy": sympy, **{f"_z{j}": v for j, v in enumerate(z)}}
    exec(str(lines), namespace)  # noqa: S102 - our own generated statements
    return [namespace[n] for n in names]


def layer_expressions(net: Network, rational: bool = False, named: bool = False) -> tuple[list[Any], list[list[Any]]]:
    """(input symbols, per layer the expressions of its units in the previous layer's
    symbols ``h_{l,j}``).  ``named`` writes activations other than tanh and relu by
    name (``sigma(z)``, ``elu(z)``) for display."""
    import sympy

    symbols = [sympy.Symbol(v, real=True) for v in input_names(net)]
    previous, layers = symbols, []
    for index, layer in enumerate(net.layers, start=1):
        if isinstance(layer, Dense):
            z = [sympy.Add(*[_number(layer.kernel[i, j], rational) * previous[i] for i in range(layer.n_in)],
                           _number(layer.bias[j], rational) if layer.bias is not None else 0)
                 for j in range(layer.units)]
        elif isinstance(layer, Affine):
            z = [_number(s, rational) * v + _number(t, rational) for s, t, v in zip(layer.scale, layer.shift, previous)]
        else:
            z = list(previous)
        layers.append(_activate(layer, index, z, named))
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
    check_nested_size(net)
    _, outputs = network_expressions(net)
    printer = _printer(style)
    return [printer.doprint(round_weights(e, digits)) for e in outputs]


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
        import math
        from functools import reduce

        self.Symbol = lambda name, real=True: columns[name]
        self.tanh, self.exp, self.log, self.sqrt, self.Abs = np.tanh, np.exp, np.log, np.sqrt, np.abs
        self.erf = np.vectorize(math.erf, otypes=[np.float64])
        self.Max = lambda *args: reduce(np.maximum, args)
        self.Min = lambda *args: reduce(np.minimum, args)
        self.Piecewise = lambda first, rest: np.where(first[1], first[0], rest[0])
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
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            exec(code, namespace)  # noqa: S102 - our own generated text
        result = np.column_stack([np.broadcast_to(c, (len(rows),)) for c in namespace["outputs"]])
        return result[0] if x.ndim == 1 else result

    return call
