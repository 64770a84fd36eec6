"""SymPy backend: the network as a SymPy expression, to ``simplify``, differentiate
or expand in a series.

Everything here starts from the network's expression graph (:mod:`mlpcodegen.core.network_graph`,
the one lowering of the IR that every target shares):

* :func:`emit_sympy` prints it (:mod:`.printer`) as a module defining the input symbols,
  ``outputs`` (one expression per output), ``expr`` (the single output, or a column
  ``Matrix``) and ``inputs``; one statement per neuron, weights as exact literals.
* :func:`network_expressions` interprets it (:func:`mlpcodegen.core.graph_eval.interpret`
  with a node type -> SymPy table, as ``graph_eval`` computes float64 values): the
  objects that module defines, in-process; or, unevaluated, what the SymPy target's
  numeric load (:mod:`mlpcodegen.runtime`) runs.
* :func:`layer_expressions` interprets it for reading: each layer in terms of the
  previous layer's symbols (``h_{1,2} = tanh(...)``) or nested, numbers rounded,
  activations by name; :mod:`mlpcodegen.backends.latex` prints it.

How SymPy writes each graph function (sigmoid as ``1/(1 + exp(-z))``...) is written once,
in :data:`SPELLINGS`, over a builder: text for the module, objects for the interpreters.
Weights become SymPy ``Float`` (53-bit, the exact binary value) or, with
``rational=True``, exact ``Rational`` numbers.
"""
from __future__ import annotations

from fractions import Fraction
from typing import Any, Callable, Mapping, Optional

import numpy as np

from ..core.activations import REGISTRY
from ..core.errors import UnsupportedError
from ..core.graph import BINARY, UNARY, Builder, Call, Item, Largest, Node, Num, Op, Ref, Sum, Where
from ..core.graph_eval import interpret
from ..core.ir import Dense, Network
from ..core.network_graph import LAYER_WRITERS, activate, layer_statements, network_program, preactivations
from ._closed_form import emit_statements
from .printer import Language, Printer, top, wrap
from ._python_family import module_header
from ._text import Lines, check_identifier

DTYPES = ("float64",)
_TAKEN = frozenset({"sympy", "expr", "outputs", "inputs"})
_LOCALS = r"[a-z]\d+(_\d+)?|x"


# --------------------------------------------------------------------------- the functions, once

#: graph function -> how SymPy writes it, over a builder ``s`` (``s.call`` a SymPy
#: function by its SymPy name, ``s.add``, ``s.sub``, ``s.div``, ``s.minus``, ``s.one``,
#: ``s.zero``): the module's text and the interpreters' objects come from this one table.
#: softplus keeps the stable form (exact, and finite when evaluated numerically).
SPELLINGS: dict[str, Callable[[Any, Any], Any]] = {
    "abs": lambda s, a: s.call("Abs", a),
    "exp": lambda s, a: s.call("exp", a),
    "expm1": lambda s, a: s.sub(s.call("exp", a), s.one),
    "log": lambda s, a: s.call("log", a),
    "log1p": lambda s, a: s.call("log", s.add(s.one, a)),
    "tanh": lambda s, a: s.call("tanh", a),
    "erf": lambda s, a: s.call("erf", a),
    "sqrt": lambda s, a: s.call("sqrt", a),
    "sigmoid": lambda s, a: s.div(s.one, s.add(s.one, s.call("exp", s.minus(a)))),
    "softplus": lambda s, a: s.add(s.call("log", s.add(s.one, s.call("exp", s.minus(s.call("Abs", a))))),
                                   s.call("Max", a, s.zero)),
}


class _Text:
    """The spelling builder of the module's text: templates over ``{a}``."""

    one, zero = "1", "0"

    def call(self, name: str, *args: str) -> str:
        return f"sympy.{name}({', '.join(top(a) for a in args)})"  # sympy.log(1 + {a})

    def add(self, a: str, b: str) -> str:
        return wrap(f"{a} + {b}")

    def sub(self, a: str, b: str) -> str:
        return wrap(f"{a} - {b}")

    def div(self, a: str, b: str) -> str:
        return wrap(f"{a} / {b}")

    def minus(self, a: str) -> str:
        return f"-{a}"


def _rational_literal(value: float) -> str:
    fraction = Fraction(float(value))
    if fraction.denominator == 1:
        return f"sympy.Integer({fraction.numerator})"
    return f"sympy.Rational({fraction.numerator}, {fraction.denominator})"


def _language(rational: bool) -> Language:
    literal = _rational_literal if rational else (lambda value: repr(float(value)))
    return Language(
        literal=literal,
        functions={name: str(spell(_Text(), "{a}")) for name, spell in SPELLINGS.items()},
        where="sympy.Piecewise(({a}, {c}), ({b}, True))",
        max2=lambda a, b: f"sympy.Max({a}, {b})",
        min2=lambda a, b: f"sympy.Min({a}, {b})",
        max_statement=lambda m, zs: [f"{m} = " + (f"sympy.Max({', '.join(zs)})" if len(zs) > 1 else zs[0])],
        wrap_in_parens=True,
    )


class _Comparisons(Builder):
    """The graph as SymPy evaluates it: a comparison of two computed values (sparsemax's
    ``z_i >= z_j``) made against 0 as their difference, ``z_i - z_j >= 0`` (the same
    condition over the reals: exact).

    SymPy's ``Piecewise`` rewrites each condition (``Piecewise.eval``:
    ``_piecewise_collapse_arguments`` -> ``relational._canonical_coeff`` ->
    ``Relational.canonical``) and rebuilds itself until nothing changes.  With a sum on
    each side ``canonical`` is not idempotent (SymPy 1.14: it swaps the sides into
    sorted order, then negates both when the left one "could extract a minus sign",
    and the result is unsorted again), so ``Piecewise((1, z1 >= z0), (0, True))`` with
    ``z0 = 0.26 - 0.039*x``, ``z1 = 0.011*x - 0.075`` alternates between two forms
    until RecursionError; any later rebuild (``diff``, ``subs``, ``simplify``) did the
    same.  Against a number the canonical form is reached in a step or two."""

    def gt(self, a: Node, b: Node) -> Node:
        return super().gt(*self._against_zero(a, b))

    def ge(self, a: Node, b: Node) -> Node:
        return super().ge(*self._against_zero(a, b))

    def _against_zero(self, a: Node, b: Node) -> tuple[Node, Node]:
        if a is b or isinstance(a, Num) or isinstance(b, Num):  # z >= z is True; z > 0 is canonical
            return a, b
        return self.sub(a, b), self.num(0.0)


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
    b, printer = _Comparisons(), Printer(_language(rational))
    outputs = emit_statements(net, printer, b, [b.ref(v) for v in names], lines, printer.lang.comment)
    lines.add("", f"inputs = ({', '.join(names)}{',' if len(names) == 1 else ''})")
    lines.add(f"outputs = [{', '.join(outputs)}]")
    lines.add("expr = outputs[0]" if len(outputs) == 1 else "expr = sympy.Matrix(outputs)")
    return str(lines)


# --------------------------------------------------------------------------- the graph as SymPy objects
# Three kinds of SymPy objects, each the node type -> SymPy table's builder (its methods
# are the graph's operations, ``function``, ``where``, ``largest`` and ``sum``):
#
# * _Module: what the module's text makes when Python runs it (numbers are Python floats
#   there, so they are here; operators evaluate as SymPy does);
# * _Raw: the same formulas as plain trees, nothing evaluated, sorted or cached, for the
#   numeric load (SymPy's evaluation of tanh or Max of a deep subtree asks assumption
#   questions of every term: minutes for a softmax of a softmax; its cache compares
#   equal-looking trees term by term on every rebuild);
# * _Display: for reading, numbers rounded to ``digits``, functions unevaluated (e^{a x + b}
#   is not split into e^{b} e^{a x}), tanh and sigma by name or written in exponentials.


def _number(value: float, rational: bool) -> Any:
    import sympy

    return sympy.Rational(Fraction(float(value))) if rational else sympy.Float(float(value))


def _raw(kind: Any, *args: Any) -> Any:
    """A SymPy node of ``kind`` with exactly ``args``, as written: no sorting, no
    deduplication, no simplification, no cache (every argument is already a SymPy object
    or a Python number)."""
    import sympy

    return sympy.Basic.__new__(kind, *(sympy.sympify(a) for a in args))


def _negative(value: float) -> bool:
    return np.copysign(1.0, value) < 0  # -0.0 is written -0.0


class _Module:
    """The objects the module's statements make (Python's operators on Python floats
    and SymPy objects, in the order the text writes them)."""

    def __init__(self, rational: bool = False) -> None:
        import sympy

        self.sympy, self.rational = sympy, rational
        self.one, self.zero = 1, 0

    def num(self, value: float) -> Any:
        return _number(value, True) if self.rational else float(value)

    def add(self, a: Any, b: Any) -> Any:
        return a + b

    def sub(self, a: Any, b: Any) -> Any:
        return a - b

    def mul(self, a: Any, b: Any) -> Any:
        return a * b

    def div(self, a: Any, b: Any) -> Any:
        return a / b

    quotient = div

    def gt(self, a: Any, b: Any) -> Any:
        return a > b

    def ge(self, a: Any, b: Any) -> Any:
        return a >= b

    def max(self, a: Any, b: Any) -> Any:
        return self.sympy.Max(a, b)

    def min(self, a: Any, b: Any) -> Any:
        return self.sympy.Min(a, b)

    def neg(self, a: Any) -> Any:
        return -a

    minus = neg

    def square(self, a: Any) -> Any:
        return a * a

    def call(self, name: str, *args: Any) -> Any:
        return getattr(self.sympy, name)(*args)

    def function(self, name: str, a: Any) -> Any:
        return SPELLINGS[name](self, a)

    def where(self, cond: Any, a: Any, b: Any) -> Any:
        return self.sympy.Piecewise((a, cond), (b, True))

    def largest(self, args: list[Any]) -> Any:
        return self.sympy.Max(*args) if len(args) > 1 else args[0]

    def sum(self, node: Sum, get: Callable[[Node], Any]) -> Any:
        """``w0*x0 + w1*x1 - ... + b`` as the printer writes it and Python adds it: left
        to right, a leading ``-`` on the first coefficient (``-0.5*x`` is ``(-0.5)*x``)."""
        parts = [(t.negative, get(t.node), t.coefficient) for t in node.terms]
        if node.bias is not None:
            parts.append((_negative(node.bias), self.num(abs(node.bias)), None))
        negative, value, coefficient = parts[0]
        if coefficient is not None:
            total = self.num(-coefficient if negative else coefficient) * value
        else:
            total = -value if negative else value
        for negative, value, coefficient in parts[1:]:
            term = value if coefficient is None else self.num(coefficient) * value
            total = total - term if negative else total + term
        return total


class _Raw(_Module):
    """The module's formulas as plain trees (see above): what the numeric load evaluates."""

    def __init__(self, rational: bool = False) -> None:
        super().__init__(rational)
        self.one, self.zero = self.sympy.S.One, self.sympy.S.Zero

    def num(self, value: float) -> Any:
        return _number(value, self.rational)

    def add(self, a: Any, b: Any) -> Any:
        return _raw(self.sympy.Add, a, b)

    def sub(self, a: Any, b: Any) -> Any:
        return a if b == 0 else _raw(self.sympy.Add, a, self.neg(b))  # a - 0 is a, -0 included

    def mul(self, a: Any, b: Any) -> Any:
        return _raw(self.sympy.Mul, a, b)

    def div(self, a: Any, b: Any) -> Any:
        return _raw(self.sympy.Mul, a, _raw(self.sympy.Pow, b, -1))  # evaluated as a / b

    quotient = div

    def gt(self, a: Any, b: Any) -> Any:
        return _raw(self.sympy.StrictGreaterThan, a, b)

    def ge(self, a: Any, b: Any) -> Any:
        return _raw(self.sympy.GreaterThan, a, b)

    def max(self, a: Any, b: Any) -> Any:
        return _raw(self.sympy.Max, a, b)

    def min(self, a: Any, b: Any) -> Any:
        return _raw(self.sympy.Min, a, b)

    def neg(self, a: Any) -> Any:
        return -a if a.is_Number else _raw(self.sympy.Mul, -1, a)

    minus = neg

    def square(self, a: Any) -> Any:
        return _raw(self.sympy.Mul, a, a)

    def call(self, name: str, *args: Any) -> Any:
        if name == "sqrt":  # sympy.sqrt is a function making a Pow
            return _raw(self.sympy.Pow, args[0], self.sympy.S.Half)
        return _raw(getattr(self.sympy, name), *args)

    def where(self, cond: Any, a: Any, b: Any) -> Any:
        pair = self.sympy.functions.elementary.piecewise.ExprCondPair
        return _raw(self.sympy.Piecewise, _raw(pair, a, cond), _raw(pair, b, self.sympy.true))

    def largest(self, args: list[Any]) -> Any:
        return _raw(self.sympy.Max, *args) if len(args) > 1 else args[0]

    def sum(self, node: Sum, get: Callable[[Node], Any]) -> Any:
        """The terms then the bias, in order (the numeric load adds them left to right)."""
        parts = [get(t.node) if t.coefficient is None and not t.negative
                 else self.neg(get(t.node)) if t.coefficient is None
                 else self.mul(self.num(-t.coefficient if t.negative else t.coefficient), get(t.node))
                 for t in node.terms]
        parts += [] if node.bias is None else [self.num(node.bias)]
        return _raw(self.sympy.Add, *parts) if len(parts) > 1 else parts[0]


class _Display(_Module):
    """For reading (LaTeX, the picture): every number rounded to ``digits`` significant
    digits as it is made (decimal: the printed 0.41 is the number the rounded formula
    computes with), nothing evaluated (SymPy's evaluation of tanh of a long sum asks
    questions of every term: seconds per neuron), and with ``expand`` tanh and sigma
    written in exponentials."""

    def __init__(self, digits: Optional[int] = None, expand: bool = False) -> None:
        super().__init__()
        self.digits, self.expand = digits, expand
        self.one, self.zero = self.sympy.S.One, self.sympy.S.Zero

    def num(self, value: float) -> Any:
        return self.sympy.Float(float(value) if self.digits is None else f"{float(value):.{self.digits}g}")

    def add(self, a: Any, b: Any) -> Any:
        return self.sympy.Add(a, b, evaluate=False)

    def sub(self, a: Any, b: Any) -> Any:
        # no ``- 0``; and an unevaluated ``-1*0`` makes SymPy's assumption system
        # contradict itself (InconsistentAssumptions, depending on what its cache holds)
        return a if b == 0 else self.add(a, self.neg(b))

    def mul(self, a: Any, b: Any) -> Any:
        return self.sympy.Mul(a, b, evaluate=False)

    def div(self, a: Any, b: Any) -> Any:
        inverse = self.sympy.Pow(b, -1, evaluate=False)
        return inverse if a == 1 else self.mul(a, inverse)  # \frac{1}{...}, not 1 \frac{1}{...}

    quotient = div

    def gt(self, a: Any, b: Any) -> Any:
        return self.sympy.StrictGreaterThan(a, b)

    def ge(self, a: Any, b: Any) -> Any:
        return self.sympy.GreaterThan(a, b)

    def max(self, a: Any, b: Any) -> Any:
        return self.sympy.Max(a, b, evaluate=False)

    def min(self, a: Any, b: Any) -> Any:
        return self.sympy.Min(a, b, evaluate=False)

    def neg(self, a: Any) -> Any:
        return -a if a.is_Number else self.sympy.Mul(-1, a, evaluate=False)

    def square(self, a: Any) -> Any:
        return self.sympy.Pow(a, 2, evaluate=False)

    def function(self, name: str, a: Any) -> Any:
        shown = {"tanh": self._tanh, "sigmoid": self._sigmoid}.get(name)
        return shown(a) if shown else SPELLINGS[name](_DisplaySpelling(self), a)

    def _tanh(self, a: Any) -> Any:
        exp = lambda v: self.sympy.exp(v, evaluate=False)  # noqa: E731 - e^{a x + b}, not e^{b} e^{a x}
        if not self.expand:
            return self.sympy.tanh(a, evaluate=False)
        return self.div(self.add(exp(a), self.sympy.Mul(-1, exp(-a), evaluate=False)), self.add(exp(a), exp(-a)))

    def _sigmoid(self, a: Any) -> Any:
        return SPELLINGS["sigmoid"](_DisplaySpelling(self), a) if self.expand else self.sympy.Function("sigma")(a)

    def where(self, cond: Any, a: Any, b: Any) -> Any:
        return self.sympy.Piecewise((a, cond), (b, True), evaluate=False)

    def largest(self, args: list[Any]) -> Any:
        return self.sympy.Max(*args, evaluate=False) if len(args) > 1 else args[0]

    def sum(self, node: Sum, get: Callable[[Node], Any]) -> Any:
        """``w0 x0 + w1 x1 + b`` with each weight rounded, as written."""
        parts = [self.mul(self.num(-t.coefficient if t.negative else t.coefficient), get(t.node))
                 if t.coefficient is not None else self.neg(get(t.node)) if t.negative else get(t.node)
                 for t in node.terms]
        parts += [] if node.bias is None else [self.num(node.bias)]
        plain = len(parts) == 1 and node.bias is None and node.terms[0].coefficient is None
        return parts[0] if plain else self.sympy.Add(*parts, evaluate=False)

    def shorter(self) -> "_Display":
        """This display with SymPy's own arithmetic: sums merged and terms collected."""
        return _ShortDisplay(self.digits, self.expand)


class _ShortDisplay(_Display):
    """A display whose arithmetic SymPy evaluates (numbers still rounded, functions,
    max, min and selections still as written): the vector activations written out only
    with ``expand`` (glu, sparsemax, the normalisations) read shorter so, their sums of
    the layer's sums merged into one."""

    add, sub, mul, div, quotient, neg, square, sum = (_Module.add, _Module.sub, _Module.mul, _Module.div,
                                                      _Module.quotient, _Module.neg, _Module.square, _Module.sum)


class _DisplaySpelling:
    """How a display writes a function (:data:`SPELLINGS`): calls unevaluated, sums and
    negations by SymPy (``log(e^{-|z|} + 1) + max(0, z)``, ``e^{z} - 1``)."""

    def __init__(self, display: _Display) -> None:
        self.display, self.one, self.zero = display, display.one, display.zero

    def call(self, name: str, *args: Any) -> Any:
        return getattr(self.display.sympy, name)(*args, evaluate=False)

    def add(self, a: Any, b: Any) -> Any:
        return a + b

    def sub(self, a: Any, b: Any) -> Any:
        return a - b

    def div(self, a: Any, b: Any) -> Any:
        return self.display.div(a, b)

    def minus(self, a: Any) -> Any:
        return -a


def _table(kind: _Module) -> dict[type, Callable[..., Any]]:
    """node type -> its SymPy object, for :func:`mlpcodegen.core.graph_eval.interpret` (the
    inputs map a ``Ref``'s name to the SymPy object it stands for)."""
    ops = {op: getattr(kind, op) for op in BINARY + UNARY}  # every operation of the graph, or an error here
    return {
        Num: lambda n, get, leaves: kind.num(n.value),
        Ref: lambda n, get, leaves: leaves[n.name],
        Item: lambda n, get, leaves: leaves[(n.array, n.index)],
        Op: lambda n, get, leaves: ops[n.op](*map(get, n.args)),
        Call: lambda n, get, leaves: kind.function(n.function, get(n.arg)),
        Where: lambda n, get, leaves: kind.where(get(n.cond), get(n.a), get(n.b)),
        Sum: lambda n, get, leaves: kind.sum(n, get),
        Largest: lambda n, get, leaves: kind.largest([get(arg) for arg in n.args]),
    }


def _objects(nodes: list[Node], kind: _Module, leaves: Mapping[str, Any]) -> list[Any]:
    """The SymPy objects of ``nodes`` (each shared subexpression built once)."""
    import sympy

    values = interpret(nodes, _table(kind), leaves)
    return [sympy.sympify(values[node]) for node in nodes]  # a constant output is a Python float


def input_symbols(net: Network) -> tuple[Any, ...]:
    import sympy

    return tuple(sympy.Symbol(v, real=True) for v in input_names(net))


def network_expressions(net: Network, rational: bool = False,
                        evaluate: bool = True) -> tuple[tuple[Any, ...], list[Any]]:
    """(input symbols, one SymPy expression per output): the objects the module written
    by :func:`emit_sympy` defines, interpreted from the same graph.  ``evaluate=False``
    gives the same formulas as plain trees, nothing evaluated or cached (the numeric
    load: SymPy's evaluation of deep networks takes minutes), comparisons as the graph
    writes them (``z_i >= z_j``, true for two infinities of one sign, where the evaluated
    objects' ``z_i - z_j >= 0`` (:class:`_Comparisons`) is NaN >= 0, false)."""
    symbols = input_symbols(net)
    b = _Comparisons() if evaluate else Builder()
    program = network_program(net, [b.ref(s.name) for s in symbols], b, stable=True)
    kind = _Module(rational) if evaluate else _Raw(rational)
    return symbols, _objects(list(program.outputs), kind, {s.name: s for s in symbols})


def round_weights(expr: Any, digits: Optional[int]) -> Any:
    """``expr`` with every float rounded to ``digits`` significant digits (None: as is)."""
    import sympy

    if digits is None:
        return expr
    # Decimal rounding: the printed 0.41 is the number the rounded formula computes with.
    return expr.xreplace({f: sympy.Float(f"{float(f):.{digits}g}") for f in expr.atoms(sympy.Float)})


def hidden_symbol(index: int, j: int) -> Any:
    """``h_{index,j}``: unit ``j`` (0-based, as ``x_{0}`` and the code's ``h1_0``) of layer ``index``."""
    import sympy

    return sympy.Symbol(f"h_{{{index},{j}}}", real=True)


def _by_name(shown: str, z: list[Any], width: int, vector: bool) -> list[Any]:
    """An activation written as its function symbol: ``elu(z)``, ``sparsemax_{j}(z_0, ...)``."""
    import sympy

    if vector:
        return [sympy.Function(f"{shown}_{{{j}}}")(*z) for j in range(width)]
    return [sympy.Function(shown)(v) for v in z]


def layer_expressions(net: Network, rational: bool = False, named: bool = False, *, digits: Optional[int] = None,
                      expand: bool = False, nested: bool = False) -> tuple[list[Any], list[list[Any]]]:
    """(input symbols, per layer the expressions of its units in the previous layer's
    symbols ``h_{l,j}``, or with ``nested`` in the previous layer's expressions), built
    for display (``digits``, ``expand``; ``rational``: exact weights, evaluated) from
    each layer's graph, the softmax as usually written (no max subtracted).  ``named``
    writes activations other than tanh and relu by name (``sigma(z)``, ``elu(z)``)."""
    symbols = list(input_symbols(net))
    kind = _Module(rational=True) if rational else _Display(digits, expand)
    b, previous, layers = (_Comparisons() if rational else Builder()), symbols, []
    for index, layer in enumerate(net.layers, start=1):
        # the previous layer's units enter as references standing for their symbols or expressions
        leaves = {f"h_{{{index - 1},{j}}}": value for j, value in enumerate(previous)}
        sources = [b.ref(name) for name in leaves]
        if type(layer) in LAYER_WRITERS:  # a layer of its own kind (a polynomial): its statements
            outputs = _objects(layer_statements(b, layer, index, sources, stable=False)[1], kind, leaves)
        else:
            z = _objects(preactivations(b, layer, index, sources), kind, leaves)
            outputs = _activation_shown(b, layer, index, z, kind, named)
        layers.append(outputs)
        previous = outputs if nested else [hidden_symbol(index, j) for j in range(layer.n_out)]
    return symbols, layers


def _activation_shown(b: Builder, layer: Any, index: int, z: list[Any], kind: _Module, named: bool) -> list[Any]:
    """``layer``'s activation of its pre-activations ``z`` (SymPy objects): by name
    (``named``, except those always written out: tanh, relu, softmax...) or from its
    graph over references standing for ``z``."""
    act = layer.activation
    shown = REGISTRY[act.name].display  # "formula", or the function symbol it is shown as
    if named and shown != "formula":
        return _by_name(shown, z, act.out_width(len(z)), act.is_vector)
    leaves = {f"z_{{{index},{j}}}": value for j, value in enumerate(z)}
    _, nodes = activate(b, layer, index, [b.ref(name) for name in leaves], stable=False)
    shorter = act.is_vector and shown != "formula" and isinstance(kind, _Display)
    return _objects(nodes, kind.shorter() if shorter else kind, leaves)


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
    from ..core.errors import UnsupportedError

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
    """SymPy class -> NumPy function of the expression and ``get`` (an argument's value)."""
    import math
    from functools import reduce

    import sympy

    def power(expr: Any, get: Callable[[Any], Any]) -> Any:
        base, exponent = (get(a) for a in expr.args)
        if exponent == 0.5:
            return np.sqrt(base)
        return 1.0 / base if exponent == -1 else base * base if exponent == 2 else np.power(base, exponent)

    def product(expr: Any, get: Callable[[Any], Any]) -> Any:
        """Left to right; a factor ``b**-1`` divides (``a / b`` rounds once, ``a * (1/b)`` twice)."""
        result = None
        for factor in expr.args:
            divisor = _reciprocal_of(factor)
            if result is None:
                result = get(factor)
            else:
                result = result / get(divisor) if divisor is not None else result * get(factor)
        return result

    def piecewise(expr: Any, get: Callable[[Any], Any]) -> Any:  # (value, condition) pairs, the last True
        pairs = [get(pair) for pair in expr.args]
        result = pairs[-1][0]
        for value, condition in reversed(pairs[:-1]):
            result = np.where(condition, value, result)
        return result

    def each(function: Callable[..., Any]) -> Callable[[Any, Callable[[Any], Any]], Any]:
        return lambda expr, get: function(*(get(a) for a in expr.args))

    def fold(function: Callable[[Any, Any], Any]) -> Callable[[Any, Callable[[Any], Any]], Any]:
        return lambda expr, get: reduce(function, (get(a) for a in expr.args))

    return {
        sympy.Add: fold(np.add), sympy.Mul: product, sympy.Pow: power,
        sympy.exp: each(np.exp), sympy.log: each(np.log), sympy.tanh: each(np.tanh), sympy.Abs: each(np.abs),
        sympy.erf: each(np.vectorize(math.erf, otypes=[np.float64])),
        sympy.Max: fold(np.maximum), sympy.Min: fold(np.minimum),
        sympy.Piecewise: piecewise, sympy.functions.elementary.piecewise.ExprCondPair: each(lambda v, c: (v, c)),
        sympy.StrictGreaterThan: each(np.greater), sympy.GreaterThan: each(np.greater_equal),
        sympy.StrictLessThan: each(np.less), sympy.LessThan: each(np.less_equal),
    }


def _reciprocal_of(expr: Any) -> Any:
    """``b`` when ``expr`` is ``b**-1``, else None."""
    import sympy

    return expr.args[0] if type(expr) is sympy.Pow and expr.args[1] == -1 else None


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
    float64 NumPy.  Walks each shared subexpression once (by identity: comparing
    equal-looking subtrees costs as much as the tree), without recursion, so deep and
    wide networks cost what their statements cost (printing the tree for ``lambdify``
    grows exponentially with depth), and nothing is compiled or executed."""
    rows = np.atleast_2d(np.asarray(x, dtype=np.float64))
    if rows.shape[1] != len(inputs):
        raise ValueError(f"expected {len(inputs)} input columns, got {rows.shape[1]}")
    table = _numeric_table()
    columns = {s: rows[:, i] for i, s in enumerate(inputs)}
    values: dict[int, Any] = {}
    get = lambda expr: values[id(expr)]  # noqa: E731
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        for output in outputs:
            stack = [output]
            while stack:
                expr = stack[-1]
                if id(expr) in values:
                    stack.pop()
                    continue
                function = table.get(type(expr))
                missing = [a for a in expr.args if id(a) not in values] if function else []
                if missing:
                    stack.extend(missing)
                    continue
                stack.pop()
                values[id(expr)] = function(expr, get) if function else _leaf(expr, columns)
        results = [np.broadcast_to(np.asarray(get(o), dtype=np.float64), (len(rows),)) for o in outputs]
    return np.column_stack(results)
