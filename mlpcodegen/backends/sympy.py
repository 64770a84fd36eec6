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

from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable, Optional

import numpy as np

from ..errors import UnsupportedError
from ..ir import Activate, Affine, Dense, Network
from ..graph import Builder
from ._closed_form import emit_statements
from .printer import Language, Printer
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
    b, printer = Builder(), Printer(_language(rational))
    outputs = emit_statements(net, printer, b, [b.ref(v) for v in names], lines, printer.lang.comment)
    lines.add("", f"inputs = ({', '.join(names)}{',' if len(names) == 1 else ''})")
    lines.add(f"outputs = [{', '.join(outputs)}]")
    lines.add("expr = outputs[0]" if len(outputs) == 1 else "expr = sympy.Matrix(outputs)")
    return str(lines)


class SympyOps:
    """The :class:`mlpcodegen.activations.Ops` over SymPy expressions: the same formulas
    every other target writes as text, built as SymPy objects (nothing is parsed or
    executed).  Mirrors :data:`SYMPY_FUNCTIONS`, so the objects equal what the module
    written by :func:`emit_sympy` defines."""

    def __init__(self, rational: bool = False, display: Optional["Display"] = None, evaluate: bool = True) -> None:
        import sympy

        self.sympy, self.rational, self.display = sympy, rational, display
        self.evaluate = evaluate and display is None  # SymPy's simplification of Piecewise, Max, Min
        # The numeric load (unevaluated, not for display): nodes made as written, nothing
        # sorted, simplified or asked of its arguments (see _raw); display keeps SymPy's order.
        self.raw = not evaluate and display is None
        if self.raw:
            self.functions = self._raw_functions()
        elif display is None:
            self.functions: dict[str, Callable[[Any], Any]] = {
                "abs": sympy.Abs, "exp": sympy.exp, "expm1": lambda a: sympy.exp(a) - 1, "log": sympy.log,
                "log1p": lambda a: sympy.log(1 + a), "tanh": sympy.tanh, "erf": sympy.erf, "sqrt": sympy.sqrt,
                "sigmoid": lambda a: 1 / (1 + sympy.exp(-a)),
                "softplus": lambda a: sympy.log(1 + sympy.exp(-sympy.Abs(a))) + sympy.Max(a, 0),
            }
        else:
            self.functions = display.functions()

    def _raw_functions(self) -> dict[str, Callable[[Any], Any]]:
        """The same formulas, unevaluated: evaluating tanh or exp of a deep subtree asks
        questions of every term of its written-out (exponentially larger) tree."""
        sympy, one = self.sympy, self.num(1.0)

        def call(function: Any) -> Callable[[Any], Any]:
            return lambda a: function(a, evaluate=False)

        exp = call(sympy.exp)
        return {
            "abs": call(sympy.Abs), "exp": exp, "expm1": lambda a: self.sub(exp(a), one), "log": call(sympy.log),
            "log1p": lambda a: sympy.log(self.add(one, a), evaluate=False), "tanh": call(sympy.tanh),
            "erf": call(sympy.erf), "sqrt": call(sympy.sqrt),
            "sigmoid": lambda a: self.div(one, self.add(one, exp(self.neg(a)))),
            "softplus": lambda a: self.add(sympy.log(self.add(one, exp(self.neg(sympy.Abs(a, evaluate=False)))),
                                                     evaluate=False), self.max(a, self.num(0.0))),
        }

    def num(self, value: float) -> Any:
        return self.display.number(value) if self.display else _number(value, self.rational)

    # Unevaluated (``evaluate=False``, the numeric load): plain trees.  SymPy's own
    # evaluation asks assumption questions of every subterm, which for a softmax of a
    # softmax takes minutes.
    def add(self, a: Any, b: Any) -> Any:
        return a + b if self.evaluate else self.sympy.Add(a, b, evaluate=False)

    def sub(self, a: Any, b: Any) -> Any:
        if self.evaluate:
            return a - b
        # An unevaluated ``-1*0`` makes SymPy's assumption system contradict itself
        # (InconsistentAssumptions, depending on what its cache already holds).
        return a if b == 0 else self.sympy.Add(a, self.neg(b), evaluate=False)

    def mul(self, a: Any, b: Any) -> Any:
        return a * b if self.evaluate else self.sympy.Mul(a, b, evaluate=False)

    def div(self, a: Any, b: Any) -> Any:
        return a / b if self.evaluate else self.mul(a, self.sympy.Pow(b, -1, evaluate=False))

    def neg(self, a: Any) -> Any:
        return -a if self.evaluate or getattr(a, "is_Number", False) else self.sympy.Mul(-1, a, evaluate=False)

    def total(self, terms: list[Any]) -> Any:
        return self.sympy.Add(*terms, evaluate=self.evaluate)

    def gt(self, a: Any, b: Any) -> Any:
        return self.sympy.StrictGreaterThan(a, b, **self._unevaluated())

    def ge(self, a: Any, b: Any) -> Any:
        return self.sympy.GreaterThan(a, b, **self._unevaluated())

    def where(self, cond: Any, a: Any, b: Any) -> Any:
        if self.raw:
            pair = self.sympy.functions.elementary.piecewise.ExprCondPair
            return _raw(self.sympy.Piecewise, _raw(pair, a, cond), _raw(pair, b, self.sympy.true))
        return self.sympy.Piecewise((a, cond), (b, True), evaluate=self.evaluate)

    def max(self, a: Any, b: Any) -> Any:
        return self.largest(self.sympy.Max, [a, b])

    def min(self, a: Any, b: Any) -> Any:
        return self.largest(self.sympy.Min, [a, b])

    def largest(self, kind: Any, args: list[Any]) -> Any:
        """``Max``/``Min`` of ``args``; raw: as written (SymPy's unevaluated ``Max`` still
        sorts its arguments, which compares whole subtrees: minutes for a deep network)."""
        if self.raw:
            return _raw(kind, *args) if len(args) > 1 else args[0]
        return kind(*args, evaluate=self.evaluate)

    def _unevaluated(self) -> dict[str, bool]:
        # Evaluating a comparison asks the assumption system about both sides: for a
        # comparison of a deep subtree, what most of the numeric load's time went to.
        return {"evaluate": False} if self.raw else {}

    def call(self, function: str, a: Any) -> Any:
        return self.functions[function](a)


@dataclass(frozen=True)
class Display:
    """How a formula is built for reading (LaTeX, the picture): every number rounded to
    ``digits`` significant digits as it is made, functions left unevaluated (SymPy's
    evaluation of tanh of a long sum asks questions of every term: seconds per neuron),
    and with ``expand``, tanh and sigma written in exponentials."""

    digits: Optional[int] = None
    expand: bool = False

    def number(self, value: float) -> Any:
        import sympy

        # Decimal rounding: the printed 0.41 is the number the rounded formula computes with.
        return sympy.Float(float(value) if self.digits is None else f"{float(value):.{self.digits}g}")

    def functions(self) -> dict[str, Callable[[Any], Any]]:
        import sympy

        def exp(a: Any) -> Any:  # unevaluated, so e^{a x + b} is not split into e^{b} e^{a x}
            return sympy.exp(a, evaluate=False)

        def ratio(top: Any, bottom: Any) -> Any:
            return sympy.Mul(top, sympy.Pow(bottom, -1, evaluate=False), evaluate=False)

        def call(function: Any) -> Callable[[Any], Any]:
            return lambda a: function(a, evaluate=False)

        tanh, sigmoid = call(sympy.tanh), lambda a: sympy.Function("sigma")(a)
        if self.expand:
            tanh = lambda a: ratio(sympy.Add(exp(a), sympy.Mul(-1, exp(-a), evaluate=False), evaluate=False),  # noqa: E731
                                   sympy.Add(exp(a), exp(-a), evaluate=False))
            sigmoid = lambda a: ratio(1, sympy.Add(1, exp(-a), evaluate=False))  # noqa: E731
        return {
            "abs": call(sympy.Abs), "exp": exp, "expm1": lambda a: exp(a) - 1, "log": call(sympy.log),
            "log1p": lambda a: sympy.log(1 + a, evaluate=False), "tanh": tanh, "erf": call(sympy.erf),
            "sqrt": lambda a: sympy.Pow(a, sympy.Rational(1, 2), evaluate=False), "sigmoid": sigmoid,
            "softplus": lambda a: sympy.log(1 + exp(-sympy.Abs(a, evaluate=False)), evaluate=False)
            + sympy.Max(a, 0, evaluate=False),
        }


def _softmax(o: SympyOps, z: list[Any], stable: bool, log: bool = False) -> list[Any]:
    """softmax / log_softmax; ``stable`` subtracts the max first, as the module does (and
    its numeric evaluation needs), otherwise the mathematics as usually written."""
    shift = o.largest(o.sympy.Max, z) if stable else 0
    exps = [o.sympy.exp(o.sub(v, shift), evaluate=o.evaluate) for v in z]
    total = o.total(exps)
    if log:
        return [o.sub(o.sub(v, shift), o.sympy.log(total, evaluate=o.evaluate)) for v in z]
    return [o.div(e, total) for e in exps]


def _sparsemax(o: SympyOps, z: list[Any]) -> list[Any]:
    """As the sparsemax writer of :mod:`mlpcodegen.activations` writes it, in SymPy's
    evaluated arithmetic (the formula display reads better so)."""
    one, zero = o.num(1.0), o.num(0.0)
    taus = []
    for zj in z:
        count = o.sympy.Add(*[o.where(o.ge(zi, zj), one, zero) for zi in z])
        total = o.sympy.Add(*[o.where(o.ge(zi, zj), zi, zero) for zi in z])
        taus.append((total - one) / count)
    tau = o.largest(o.sympy.Max, taus)
    return [o.max(zj - tau, zero) for zj in z]


def _normalise(o: SympyOps, z: list[Any], name: str, epsilon: float) -> list[Any]:
    """As the normalisation writer of :mod:`mlpcodegen.activations` writes it, in SymPy's
    evaluated arithmetic."""
    count, spread = o.num(float(len(z))), z
    if name in ("layer_norm", "variance_scale"):
        mean = o.sympy.Add(*z) / count
        spread = [v - mean for v in z]
        z = spread if name == "layer_norm" else z
    squares = o.sympy.Add(*[v * v for v in spread])
    if name == "unit_norm":
        norm = o.max(o.sympy.sqrt(squares), o.num(epsilon))
    else:
        norm = o.sympy.sqrt(squares / count + o.num(epsilon))
    return [v / norm for v in z]


def _vector(o: SympyOps, act: Any, z: list[Any], stable: bool) -> list[Any]:
    name = act.name
    if name in ("softmax", "log_softmax"):
        return _softmax(o, z, stable, log=name == "log_softmax")
    if name == "glu":
        half = len(z) // 2
        return [z[j] * o.call("sigmoid", z[j + half]) for j in range(half)]
    if name == "sparsemax":
        return _sparsemax(o, z)
    return _normalise(o, z, name, float(act.param("epsilon")))


def _dense_inputs(ops: SympyOps, layer: Dense, previous: list[Any]) -> list[Any]:
    return [ops.total([ops.mul(ops.num(layer.kernel[i, j]), previous[i]) for i in range(layer.n_in)]
                      + ([ops.num(layer.bias[j])] if layer.bias is not None else []))
            for j in range(layer.units)]


def _affine_inputs(ops: SympyOps, layer: Affine, previous: list[Any]) -> list[Any]:
    return [ops.add(ops.mul(ops.num(s), v), ops.num(t)) for s, t, v in zip(layer.scale, layer.shift, previous)]


#: layer kind -> its pre-activations as SymPy expressions of the previous layer's.
_LAYER_INPUTS = {Dense: _dense_inputs, Affine: _affine_inputs, Activate: lambda ops, layer, previous: list(previous)}


def _layer_inputs(ops: SympyOps, layer: Any, previous: list[Any]) -> list[Any]:
    """The pre-activations of ``layer`` as SymPy expressions of ``previous``."""
    return _LAYER_INPUTS[type(layer)](ops, layer, previous)


def input_symbols(net: Network) -> tuple[Any, ...]:
    import sympy

    return tuple(sympy.Symbol(v, real=True) for v in input_names(net))


def network_expressions(net: Network, rational: bool = False,
                        evaluate: bool = True) -> tuple[tuple[Any, ...], list[Any]]:
    """(input symbols, one SymPy expression per output), the objects the module written
    by :func:`emit_sympy` defines, built directly (softmax max-shifted, as there).
    ``evaluate=False`` leaves Piecewise, Max and Min as written (SymPy's simplification of
    sparsemax's comparisons recurses past Python's limit)."""
    symbols = input_symbols(net)
    current: list[Any] = list(symbols)
    ops = SympyOps(rational, evaluate=evaluate)
    for layer in net.layers:
        current = _activate(ops, layer, _layer_inputs(ops, layer, current), named=False, stable=True)
    return symbols, current


def round_weights(expr: Any, digits: Optional[int]) -> Any:
    """``expr`` with every float rounded to ``digits`` significant digits (None: as is)."""
    import sympy

    if digits is None:
        return expr
    # Decimal rounding: the printed 0.41 is the number the rounded formula computes with.
    return expr.xreplace({f: sympy.Float(f"{float(f):.{digits}g}") for f in expr.atoms(sympy.Float)})


def _raw(kind: Any, *args: Any) -> Any:
    """A SymPy node of ``kind`` with exactly ``args``, as written: no sorting, no
    deduplication, no simplification (every argument is already a SymPy object)."""
    import sympy

    return sympy.Basic.__new__(kind, *(sympy.sympify(a) for a in args))


def _number(value: float, rational: bool) -> Any:
    import sympy

    return sympy.Rational(Fraction(float(value))) if rational else sympy.Float(float(value))


def _activate(ops: SympyOps, layer: Any, z: list[Any], named: bool, stable: bool = False) -> list[Any]:
    """The layer's outputs as SymPy expressions of its pre-activations ``z``: by name
    (``named``) or from the same formulas as every other target."""
    import sympy

    from ..activations import REGISTRY

    act = layer.activation
    shown = REGISTRY[act.name].display  # "formula", or the function symbol it is shown as
    if named and shown != "formula":
        if act.is_vector:
            return [sympy.Function(f"{shown}_{{{j}}}")(*z) for j in range(act.out_width(len(z)))]
        return [sympy.Function(shown)(v) for v in z]
    if act.is_vector:
        return _vector(ops, act, z, stable)
    formula = REGISTRY[act.name].formula
    return [formula(ops, v, act.unit_params(j)) for j, v in enumerate(z)]


def hidden_symbol(index: int, j: int) -> Any:
    """``h_{index,j}``: unit ``j`` (0-based, as ``x_{0}`` and the code's ``h1_0``) of layer ``index``."""
    import sympy

    return sympy.Symbol(f"h_{{{index},{j}}}", real=True)


def layer_expressions(net: Network, rational: bool = False, named: bool = False, *, digits: Optional[int] = None,
                      expand: bool = False, nested: bool = False) -> tuple[list[Any], list[list[Any]]]:
    """(input symbols, per layer the expressions of its units in the previous layer's
    symbols ``h_{l,j}``, or with ``nested`` in the previous layer's expressions), built
    for display (:class:`Display`: ``digits``, ``expand``).  ``named`` writes activations
    other than tanh and relu by name (``sigma(z)``, ``elu(z)``)."""
    symbols = list(input_symbols(net))
    previous, layers = symbols, []
    ops = SympyOps(rational, None if rational else Display(digits, expand))
    for index, layer in enumerate(net.layers, start=1):
        layers.append(_activate(ops, layer, _layer_inputs(ops, layer, previous), named))
        previous = layers[-1] if nested else [hidden_symbol(index, j) for j in range(layer.n_out)]
    return symbols, layers


#: Largest nested formula (in terms, written out) that is printed as one expression.
MAX_NESTED_TERMS = 20000


def nested_terms(net: Network) -> int:
    """How many terms the fully nested formula has when written out: every neuron's
    expression is copied into each neuron of the next layer that uses it."""
    size = [1] * net.n_inputs
    for layer in net.layers:
        if isinstance(layer, Dense):  # every unit reads every input
            size = [sum(size) + layer.n_in + 1] * layer.n_out
        elif layer.activation.is_vector:  # every output reads every input
            size = [sum(size) * 2] * layer.n_out
        else:  # element-wise
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


def _numeric_table() -> dict[type, Callable[..., Any]]:
    """SymPy class -> NumPy function of its evaluated arguments."""
    import math
    from functools import reduce

    import sympy

    def power(base: Any, exponent: Any) -> Any:
        if exponent == 0.5:
            return np.sqrt(base)
        return 1.0 / base if exponent == -1 else base * base if exponent == 2 else np.power(base, exponent)

    def piecewise(*pairs: Any) -> Any:  # pairs of (value, condition), the last condition True
        result = pairs[-1][0]
        for value, condition in reversed(pairs[:-1]):
            result = np.where(condition, value, result)
        return result

    return {
        sympy.Add: lambda *a: reduce(np.add, a), sympy.Mul: lambda *a: reduce(np.multiply, a),
        sympy.Pow: power, sympy.exp: np.exp, sympy.log: np.log, sympy.tanh: np.tanh, sympy.Abs: np.abs,
        sympy.erf: np.vectorize(math.erf, otypes=[np.float64]),
        sympy.Max: lambda *a: reduce(np.maximum, a), sympy.Min: lambda *a: reduce(np.minimum, a),
        sympy.Piecewise: piecewise, sympy.functions.elementary.piecewise.ExprCondPair: lambda v, c: (v, c),
        sympy.StrictGreaterThan: np.greater, sympy.GreaterThan: np.greater_equal,
        sympy.StrictLessThan: np.less, sympy.LessThan: np.less_equal,
    }


def _leaf(expr: Any, columns: dict[Any, np.ndarray]) -> Any:
    import sympy

    if expr in columns:
        return columns[expr]
    if expr is sympy.true or expr is sympy.false:
        return bool(expr)
    if isinstance(expr, sympy.Rational):
        return int(expr.p) / int(expr.q)  # int / int is correctly rounded: the exact weight
    if expr.is_Number:
        return float(expr)
    raise UnsupportedError(f"cannot evaluate {type(expr).__name__} numerically")


def evaluate_expressions(outputs: list[Any], inputs: tuple[Any, ...], x: Any) -> np.ndarray:
    """``outputs`` (SymPy expressions of the ``inputs`` symbols) on the rows of ``x``, in
    float64 NumPy.  Walks each shared subexpression once, without recursion, so deep and
    wide networks cost what their statements cost (printing the tree for ``lambdify``
    grows exponentially with depth), and nothing is compiled or executed."""
    rows = np.atleast_2d(np.asarray(x, dtype=np.float64))
    if rows.shape[1] != len(inputs):
        raise ValueError(f"expected {len(inputs)} input columns, got {rows.shape[1]}")
    table = _numeric_table()
    values: dict[Any, Any] = {s: rows[:, i] for i, s in enumerate(inputs)}
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        for output in outputs:
            stack = [output]
            while stack:
                expr = stack[-1]
                if expr in values:
                    stack.pop()
                    continue
                missing = [a for a in expr.args if a not in values]
                if missing and type(expr) in table:
                    stack.extend(missing)
                    continue
                stack.pop()
                function = table.get(type(expr))
                values[expr] = function(*(values[a] for a in expr.args)) if function else _leaf(expr, values)
        columns = [np.broadcast_to(np.asarray(values[o], dtype=np.float64), (len(rows),)) for o in outputs]
    return np.column_stack(columns)
