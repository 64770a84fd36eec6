"""What the C-family output languages (JavaScript, Rust, Go, Java) share: C's own
transcendentals (:mod:`.c_math`) ported operation for operation, and the one-sample
function body laid out as C lays it out (the same layers written out or as loops, the
same sums in the same order), so that every language gives C's bits.

The math is written once here as small expression trees (:class:`X`) and printed by a
:class:`Dialect` (how a language declares a local, returns, builds 2^k from an
integer); each function keeps the C text's operations and their order (the one-sample
flavour: the polynomial in Estrin's scheme, Cody-Waite reduction, 2^k in one factor in
the normal range and two factors at its ends).  Where C computes both sides of a
select and picks one, the ports compute only the side they return: the arithmetic is
pure, so the bits are the same.  JavaScript's float32 rounds every operation with
``Math.fround`` (a float32 +, -, *, / or sqrt computed in binary64 and rounded once to
binary32 is the correctly rounded binary32 result: 53 >= 2 x 24 + 2).
"""
from __future__ import annotations

import math

from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np

from ..core.errors import ValidationError
from ..core.graph import Builder, Node, Op, Sum
from ..core.ir import Dense, Network
from ..core.network_graph import array_of, named_values
from ..core.activations import REGISTRY
from ._closed_form import activate_statements, emit_layer, layer_comment
from ._text import Lines, check_identifier
from .c_language import _LOCALS, _TAKEN
from .c_policy import _loops, tiled_kernel
from .printer import Language, Printed, Printer, fill, top

#: The primitives ported (C's c_math.PRIMITIVES); every other function a language
#: spells is exact in IEEE arithmetic (abs, sqrt) or not spelled at all (log, log1p,
#: erf: C takes them from libm, whose bits no port can promise).
PORTED = ("exp", "expm1", "tanh", "sigmoid")


# --------------------------------------------------------------------------- expressions
@dataclass(frozen=True)
class X:
    """An arithmetic expression of the ported math: a local (``name``), a constant
    (``value``) or ``op`` over ``args``."""

    op: str
    args: tuple = ()
    name: str = ""
    value: float = 0.0

    def __add__(self, other: "X | float") -> "X":
        return X("+", (self, _x(other)))

    def __sub__(self, other: "X | float") -> "X":
        return X("-", (self, _x(other)))

    def __mul__(self, other: "X | float") -> "X":
        return X("*", (self, _x(other)))

    def __truediv__(self, other: "X | float") -> "X":
        return X("/", (self, _x(other)))

    def __neg__(self) -> "X":
        return X("neg", (self,))


def _x(value: "X | float") -> X:
    return value if isinstance(value, X) else X("num", value=float(value))


def V(name: str) -> X:
    return X("var", name=name)


def C(value: float) -> X:
    return X("num", value=float(value))


@dataclass(frozen=True)
class Dialect:
    """How one language writes the ported math for one numeric type."""

    literal: Callable[[float], str]  # any finite value (a negative one parenthesised by the caller)
    let: Callable[[str, str], str]  # float local
    let_int: Callable[[str, str], str]  # integer local
    int_of: Callable[[str], str]  # an integer-valued float (in range, or NaN) as an integer expression
    pow2: Callable[[str], str]  # 2^i for an integer expression i in the normal range
    ret: Callable[[str], str]
    if_return: Callable[[str, str], str]
    function: Callable[[str, list[str]], list[str]]  # definition of name(x) from body lines
    infinity: str
    abs: Callable[[str], str]
    #: every operation's result written inside this (JavaScript's float32:
    #: ``Math.fround({})``; Go: ``float64({})``, which the spec says rounds and never fuses)
    rounded: str = ""

    def show(self, e: X) -> str:
        if e.op == "var":
            return e.name
        if e.op == "num":
            text = self.literal(abs(e.value))
            return f"(-{text})" if np.signbit(e.value) else text
        if e.op == "neg":
            return f"(-{self.show(e.args[0])})"
        a, b = (self.show(arg) for arg in e.args)
        return self.rounded.format(f"{a} {e.op} {b}") if self.rounded else f"({a} {e.op} {b})"


# float64 and float32 constants of C's reduction (c_math._REDUCTION64 / _REDUCTION)
_K64 = dict(log2e=1.4426950408889634, shift=6755399441055744.0, hi=0.6931471803691238, lo=1.9082149292705877e-10,
            q=(0.5, 0.1666666666666667, 0.04166666666666667, 0.008333333333326136, 0.0013888888888883748,
               0.00019841269874820627, 2.4801587325547743e-05, 2.7557255400206422e-06, 2.75572736431103e-07,
               2.5105217004720745e-08, 2.0914686968086876e-09),
            exp_lo=-708.0, exp_hi=709.0, over=709.8, under=-746.0, bias=1023,
            high=709.0, low=-708.0, tiny=5.551115123125783e-17)
_K32 = dict(log2e=1.44269504, shift=12582912.0, hi=0.693359375, lo=2.12194440e-4,
            q=(5.0000001201e-1, 1.6666665459e-1, 4.1665795894e-2, 8.3334519073e-3, 1.3981999507e-3,
               1.9875691500e-4),
            exp_lo=-87.0, exp_hi=88.0, over=88.72283, under=-104.0, bias=127,
            high=88.0, low=-87.0, tiny=2.98023224e-8)
_CONSTANTS = {"float64": _K64, "float32": _K32}


def _reduction(d: Dialect, dtype: str, argument: str = "x") -> list[str]:
    """t, k, r, r2 (r4) and q of c_math's reduction of ``argument``, the same operations in the same order."""
    k = _CONSTANTS[dtype]
    x, t, kk, r, r2 = V(argument), V("t"), V("k"), V("r"), V("r2")
    c = [C(v) for v in k["q"]]
    if dtype == "float64":
        r4 = V("r4")
        q = ((c[0] + c[1] * r) + r2 * (c[2] + c[3] * r)) + r4 * (((c[4] + c[5] * r) + r2 * (c[6] + c[7] * r))
                                                                 + r4 * ((c[8] + c[9] * r) + r2 * c[10]))
        reduced = (x - kk * C(k["hi"])) - kk * C(k["lo"])
        powers = [d.let("r2", d.show(r * r)), d.let("r4", d.show(r2 * r2))]
    else:
        q = (c[0] + c[1] * r) + r2 * ((c[2] + c[3] * r) + r2 * (c[4] + c[5] * r))
        reduced = (x - kk * C(k["hi"])) + kk * C(k["lo"])
        powers = [d.let("r2", d.show(r * r))]
    return [d.let("t", d.show(x * C(k["log2e"]) + C(k["shift"]))), d.let("k", d.show(t - C(k["shift"]))),
            d.let("r", d.show(reduced)), *powers, d.let("q", d.show(q)), d.let_int("ki", d.int_of("k"))]


def _exp(d: Dialect, dtype: str) -> list[str]:
    k, x, p = _CONSTANTS[dtype], "x", V("p")
    lit = d.literal
    return _reduction(d, dtype) + [
        d.let("p", d.show((V("r") + V("r2") * V("q")) + C(1.0))),
        d.if_return(f"{x} >= (-{lit(-k['exp_lo'])}) && {x} <= {lit(k['exp_hi'])}",
                    d.show(p * X("var", name=d.pow2("ki")))),
        d.if_return(f"{x} > {lit(k['over'])}", d.infinity),
        d.if_return(f"{x} < (-{lit(-k['under'])})", lit(0.0)),
        d.let_int("k1", "ki >> 1"), d.let_int("k2", "ki - k1"),
        d.ret(d.show(p * X("var", name=d.pow2("k1")) * X("var", name=d.pow2("k2")))),
    ]


def _expm1(d: Dialect, dtype: str) -> list[str]:
    k, lit, m = _CONSTANTS[dtype], d.literal, V("m")
    s, h = X("var", name=d.pow2("ki")), X("var", name=d.pow2("ki - 1"))
    return _reduction(d, dtype) + [
        d.let("m", d.show(V("r") + V("r2") * V("q"))),
        d.if_return(f"x > (-{lit(k['tiny'])}) && x < {lit(k['tiny'])}", "x"),
        d.if_return(f"x > {lit(k['over'])}", d.infinity),
        d.if_return(f"x > {lit(k['high'])}", d.show(h * (m + C(1.0)) * C(2.0))),
        d.if_return(f"x < (-{lit(-k['low'])})", f"(-{lit(1.0)})"),
        d.let("s", s.name),
        d.ret(d.show(V("s") * m + (V("s") - C(1.0)))),
    ]


def _tanh32(d: Dialect, prefix: str) -> list[str]:
    """C's ((1 - 2^k) - 2^k m) / ((1 + 2^k) + 2^k m) with exp(-2|x|) = 2^k (1 + m): C clamps
    |x| at 43.5, where the quotient rounds to 1 (so do the ports, above it); the sign of x
    put back (C's sign bit: -y, or x itself for +-0 and NaN)."""
    s, m = V("s"), V("m")
    return [
        d.if_return(f"x > {d.literal(43.5)}", d.literal(1.0)),
        d.if_return(f"x < (-{d.literal(43.5)})", f"(-{d.literal(1.0)})"),
        d.let("xc", d.show(C(-2.0) * X("var", name=d.abs("x")))),
        *_reduction(d, "float32", "xc"),
        d.let("m", d.show(V("r") + V("r2") * V("q"))),
        d.let("s", d.pow2("ki")),
        d.let("y", d.show(((C(1.0) - s) - s * m) / ((C(1.0) + s) + s * m))),
        d.if_return(f"x < {d.literal(0.0)}", "(-y)"),
        d.if_return(f"x > {d.literal(0.0)}", "y"),
        d.ret("x"),  # +-0 (the sign kept) and NaN
    ]


def _tanh64(d: Dialect, prefix: str) -> list[str]:
    e = V("e")
    return [
        d.let("e", f"{prefix}_expm1({d.show(C(-2.0) * X('var', name=d.abs('x')))})"),
        d.let("v", d.show(-e / (C(2.0) + e))),
        d.if_return(f"x < {d.literal(0.0)}", "(-v)"),
        d.if_return(f"x > {d.literal(0.0)}", "v"),
        d.ret("x"),  # +-0 (the sign kept) and NaN
    ]


def _sigmoid(d: Dialect, prefix: str) -> list[str]:
    """C's e / (1 + e) for x < 0, 1 / (1 + e) otherwise, with e = exp(-|x|) (the same
    argument as C's ``x < 0 ? x : -x`` for every x, -0 and NaN included)."""
    e = V("e")
    return [
        d.let("e", f"{prefix}_exp({d.show(-X('var', name=d.abs('x')))})"),
        d.if_return(f"x < {d.literal(0.0)}", d.show(e / (C(1.0) + e))),
        d.ret(d.show(C(1.0) / (C(1.0) + e))),
    ]


def math_definitions(d: Dialect, dtype: str, prefix: str, used: set[str]) -> list[str]:
    """The definitions of the ported primitives ``used`` and those they call, callees first."""
    wanted = set(used)
    if "tanh" in wanted and dtype == "float64":  # float32's tanh has its own reduction
        wanted.add("expm1")
    if "sigmoid" in wanted:
        wanted.add("exp")
    bodies = {"exp": lambda: _exp(d, dtype), "expm1": lambda: _expm1(d, dtype),
              "tanh": lambda: _tanh32(d, prefix) if dtype == "float32" else _tanh64(d, prefix),
              "sigmoid": lambda: _sigmoid(d, prefix)}
    out: list[str] = []
    for key in ("exp", "expm1", "tanh", "sigmoid"):
        if key in wanted:
            out += d.function(f"{prefix}_{key}", bodies[key]()) + [""]
    return out


# --------------------------------------------------------------------------- the function body
@dataclass(frozen=True)
class Frame:
    """What a C-family language writes around the printed statements of the one-sample function."""

    language: Language
    array: Callable[[str, int], str]  # a local array of n zeros
    gather: Callable[[str, list[str]], str]  # a local array of these values
    loop: Callable[[str, int], str]  # "for j in 0..n {" (closed by "}")
    store: Callable[[str, str], str]  # "target = value;"
    accumulate: Callable[[str, str, str], str]  # z[j] += w * h, the product rounded first
    weights: Callable[[str, np.ndarray], list[str]]  # a module-level read-only array of the values
    weight_name: Callable[[str, int, str], str] = lambda name, index, kind: f"{name}_{kind}{index}"
    #: units summed side by side in a loop layer, output-major (each sum in a local, its
    #: inputs in order: the same rounding as C's input-major loops); 0: C's input-major
    #: loops (Rust: LLVM vectorises them across units as gcc does C's)
    tile: int = 0
    mutable: Callable[[str, str], str] = lambda name, value: ""  # a scalar local set again later
    step_loop: Callable[[str, str, int], str] = lambda v, n, step: ""  # for v from 0 below n by step
    #: where the loop layers' arrays are declared: False, in the function; True, once at
    #: module level (JavaScript: a typed array allocation per call costs more than the layer)
    module_arrays: bool = False
    #: input-major loops over rows of 2-D weights (Java: ``float[][]``, row k a float[]
    #: indexed by j like z, so HotSpot's C2 vectorises z[j] += wk[j] * hk): the row's
    #: local ``wk`` declared from the weights' name, and the 2-D weights' declaration
    row: Optional[Callable[[str], str]] = None
    rows: Optional[Callable[[str, np.ndarray], list[str]]] = None
    #: a tile pass reads its ``width`` weights of step k through a local ``wk`` declared
    #: from (weights, first index, width) (Go: a full slice expression, so the compiler
    #: checks bounds once per step, not per weight); None: read ``w[first + u]``
    tile_row: Optional[Callable[[str, str, int], str]] = None
    #: with ``row`` and ``tile`` both set: layers of fewer units than this are tiled (a
    #: row of one or two weights per input costs more than it saves)
    rows_from: int = 0
    #: with ``row``: inputs taken this many at a time in the input-major loops,
    #: z[j] = ((z[j] + wk0[j] * hk0) + wk1[j] * hk1) + ... (the same sums, added in the
    #: same order; a sum read and written once per step, not once per input)
    row_unroll: int = 1
    #: with ``row_unroll``: layers of this many units or more keep a step's weights in one
    #: array (``rows`` gives chunks of ``row_unroll`` inputs), narrower ones a row per input
    chunks_from: int = 0
    loop_from: Callable[[str, int, int], str] = lambda v, first, n: ""  # for v from first below n
    loop_step_from: Callable[[str, int, int, int], str] = lambda v, first, n, step: ""  # ... by step
    #: an elementwise activation of a loop layer overwrites its sums (z[j] = f(z[j])) instead
    #: of filling an array of its own (Java: one array fewer allocated and zeroed per layer)
    in_place: bool = False


@dataclass
class Body:
    """The one-sample function of ``net`` in a C-family language, as C's ``_body``
    writes it: per layer, the closed form (:func:`emit_layer`) or loops over read-only
    arrays, chosen by C's own rule (:func:`mlpcodegen.backends.c_policy._loops`, ``unroll``
    auto), the loop sums starting from the bias as C's do; outputs stored after every
    input is read.  ``printer.needed`` collects the ported primitives used."""

    net: Network
    frame: Frame
    name: str
    printer: Printer
    lines: Lines = field(default_factory=Lines)
    arrays: list[str] = field(default_factory=list)
    builder: Builder = field(default_factory=Builder)
    #: (array, offset): a first loop layer reads its inputs as array[offset + i] itself, not
    #: gathered into an array of their own first (set by :meth:`write`)
    input_array: Optional[tuple[str, str]] = None
    _inputs: Sequence[Node] = ()

    def write(self, inputs: Optional[Callable[[Builder], list[Node]]] = None,
              output: Callable[[int], str] = lambda j: f"y[{j}]",
              input_array: Optional[tuple[str, str]] = None) -> None:
        """The statements, reading the nodes ``inputs`` gives (default ``x[0] ...``) and
        storing output j at ``output(j)``; ``input_array`` (array, offset): the nodes
        ``inputs`` gives are array[offset + i], which a first loop layer then reads itself."""
        b, printer, lines = self.builder, self.printer, self.lines
        comment = self.frame.language.comment
        sources = inputs(b) if inputs else [b.item("x", i) for i in range(self.net.n_inputs)]
        self.input_array, self._inputs = input_array, sources
        for index, layer in enumerate(self.net.layers, start=1):
            loops = _loops(layer, "auto")
            lines.add(comment(f"{layer_comment(layer, index)}; {'loops' if loops else 'unrolled'}"))
            if loops:
                sources = self._loop_layer(b, layer, index, sources)
            else:
                sources = emit_layer(printer, b, layer, index, sources, lines)
        for j, source in enumerate(sources):
            lines.add(self.frame.store(output(j), top(printer.expr(source))))

    def _loop_layer(self, b: Builder, layer: Dense, index: int, sources: list[Node]) -> list[Node]:
        f, printer, lines = self.frame, self.printer, self.lines
        w = f.weight_name(self.name, index, "W")
        source = array_of(sources)
        if source is None and self.input_array and sources is self._inputs:
            source = self.input_array[0]
        if source is None:  # scalars of a written-out layer: gathered into an array
            source = f"v{index}"
            lines.add(f.gather(source, [top(printer.expr(s)) for s in sources]))
        z, units = f"z{index}", layer.units
        self._declare(f.array(z, units))
        bias = f.weight_name(self.name, index, "B") if layer.bias is not None else None
        if bias is not None:
            self.arrays += f.weights(bias, np.asarray(layer.bias, dtype=np.float64))
        if f.tile and not (f.row and units >= f.rows_from):
            self.arrays += f.weights(w, tiled_kernel(np.asarray(layer.kernel, dtype=np.float64), f.tile))
            self._tiles(source, z, w, bias, layer.n_in, units)
        else:
            kernel = np.asarray(layer.kernel, dtype=np.float64)
            self.arrays += f.rows(w, kernel) if f.row else f.weights(w, kernel.reshape(-1))
            stepped = f.row and f.row_unroll > 1
            if bias is not None and not (stepped and layer.n_in >= f.row_unroll):
                lines.add(f.loop("j", units), "    " + f.store(f"{z}[j]", f"{bias}[j]"), "}")
            if stepped:
                self._row_steps(source, z, w, bias, layer.n_in, units)
            else:
                row, weight = (["    " + f.row(w)], "wk[j]") if f.row else ([], f"{w}[k * {units} + j]")
                read = "    " + f.language.declare + f"hk = {self._at(source, 'k')}" + f.language.end
                lines.add(f.loop("k", layer.n_in), read,
                          *row, "    " + f.loop("j", units), "        " + f.accumulate(f"{z}[j]", weight, "hk"),
                          "    }", "}")
        sums = [b.item(z, j) for j in range(units)]
        spec = layer.activation
        if spec.is_vector:
            return activate_statements(printer, b, layer, index, named_values(b, index, sums), lines)
        if spec.is_identity:
            return sums
        h = z if f.in_place else f"h{index}"
        formula = REGISTRY[spec.name].formula(b, b.ref("zj"), spec.unit_params(0))
        if not f.in_place:
            self._declare(f.array(h, units))
        lines.add(f.loop("j", units), "    " + f.language.declare + f"zj = {z}[j]" + f.language.end,
                  "    " + f.store(f"{h}[j]", top(printer.expr(formula))), "}")
        return [b.item(h, j) for j in range(units)]


    def _row_steps(self, source: str, z: str, w: str, bias: Optional[str], n_in: int, units: int) -> None:
        """C's input-major loops, ``row_unroll`` inputs per step (the rest one by one):
        each z[j] gains its terms in input order, as C adds them.  The weights of a step
        are one array from ``chunks_from`` units (``rows``: chunk s holds inputs s * step
        ... in C's order), read at constant offsets: one array's bounds checked per step,
        not ``step`` rows' (mid 8-64-64-1 float32 425 -> 397 ns; for 10 units slower).
        The first step starts from the bias, not from a loop of its own that copies it
        (the same sums; one short loop fewer, each costing HotSpot a pre- and a post-loop
        around the vector one: 455 -> 425 ns; applying the activation in the last step
        as well was slower, 550 ns: C2 then leaves that loop scalar)."""
        f, lines, step = self.frame, self.lines, self.frame.row_unroll
        full = n_in - n_in % step
        declare, end = f.language.declare, f.language.end
        chunks = units >= f.chunks_from

        def one_step(at: str, start: str) -> list[str]:
            total = start
            for u in range(step):
                weight = f"ws[{f'{u * units} + ' if u else ''}j]" if chunks else f"wk{u}[j]"
                total = f"({total} + {weight} * hk{u})"
            index = (lambda u: str(int(at) + u)) if at.isdigit() else (lambda u: f"{at} + {u}")
            chunk = str(int(at) // step) if at.isdigit() else f"{at} / {step}"
            rows = ["    " + f.row(w, "ws", chunk)] if chunks else \
                ["    " + f.row(w, f"wk{u}", index(u)) for u in range(step)]
            return [*(f"    {declare}hk{u} = {self._at(source, index(u))}{end}" for u in range(step)), *rows,
                    "    " + f.loop("j", units), "        " + f.store(f"{z}[j]", total[1:-1]), "    }"]

        if full:
            lines.add("{", *one_step("0", f"{bias}[j]" if bias is not None else f.language.literal(0.0)), "}")
        if full > step:
            lines.add(f.loop_step_from("k", step, full, step), *one_step("k", f"{z}[j]"), "}")
        if n_in > full and not chunks:
            lines.add(f.loop_from("k", full, n_in),
                      f"    {declare}hk = {self._at(source, 'k')}{end}", "    " + f.row(w),
                      "    " + f.loop("j", units), "        " + f.accumulate(f"{z}[j]", "wk[j]", "hk"), "    }", "}")
        elif n_in > full:
            lines.add("{", "    " + f.row(w, "wr", str(full // step)), "    " + f.loop("r", n_in - full),
                      f"        {declare}hk = {self._at(source, f'{full} + r')}{end}", "        " + f.loop("j", units),
                      "            " + f.accumulate(f"{z}[j]", f"wr[r * {units} + j]", "hk"), "        }", "    }", "}")

    def _at(self, source: str, index: str) -> str:
        """``source[index]``, or ``array[offset + index]`` for the inputs read in place."""
        if self.input_array and source == self.input_array[0]:
            return f"{source}[{self.input_array[1]} + {index}]"
        return f"{source}[{index}]"

    def _declare(self, line: str) -> None:
        if self.frame.module_arrays:
            self.arrays.append(line)
        else:
            self.lines.add(line)

    def _tiles(self, source: str, z: str, w: str, bias: Optional[str], n_in: int, units: int) -> None:
        """z = b + h W, ``tile`` units per pass (the weights in c.tiled_kernel's order),
        each sum b + h0 w0 + h1 w1 + ... in a local: C's order, so C's rounding."""
        f, lines, tile = self.frame, self.lines, self.frame.tile
        full = units - units % tile
        if full:
            lines.add(f.step_loop("j", str(full), tile))
            self._pass(source, z, w, bias, n_in, "j", tile, f"j * {n_in}")
            lines.add("}")
        if units > full:
            lines.add("{")
            self._pass(source, z, w, bias, n_in, str(full), units - full, str(full * n_in))
            lines.add("}")

    def _pass(self, source: str, z: str, w: str, bias: Optional[str], n_in: int, at: str, width: int,
              base: str) -> None:
        f, lines = self.frame, self.lines
        zero = f.language.literal(0.0)
        cells = [at if u == 0 else f"{at} + {u}" for u in range(width)]
        first = f"{base} + k * {width}"
        row, weight = ((["    " + f.tile_row(w, first, width)], lambda u: f"wk[{u}]") if f.tile_row
                       else ([], lambda u: f"{w}[{first} + {u}]"))
        lines.level += 1
        # acc0, acc1...: not the graph's local pattern (a letter and digits: a1 is a normalisation's)
        lines.add(*(f.mutable(f"acc{u}", f"{bias}[{cell}]" if bias else zero) for u, cell in enumerate(cells)),
                  f.loop("k", n_in), f"    {f.language.declare}hk = {self._at(source, 'k')}{f.language.end}", *row,
                  *("    " + f.accumulate(f"acc{u}", weight(u), "hk") for u in range(width)),
                  "}", *(f.store(f"{z}[{cell}]", f"acc{u}") for u, cell in enumerate(cells)))
        lines.level -= 1


class RoundingPrinter(Printer):
    """A printer writing the result of every +, -, *, / inside ``rounded`` (a format
    over ``{}``): JavaScript's float32 (``Math.fround``), Go (an explicit conversion,
    which the Go spec says prevents fusing a*b + c).  A sum left to right, each product
    and each partial sum rounded, as C rounds them."""

    _ROUNDED = {"add": "+", "sub": "-", "mul": "*", "div": "/", "quotient": "/"}

    def __init__(self, lang: Language, rounded: str, needed: Optional[set] = None) -> None:
        super().__init__(lang, needed)
        self.rounded = rounded

    def expr(self, node: Node) -> Printed:
        if id(node) not in self.names and isinstance(node, Op) and (node.op in self._ROUNDED or node.op == "square"):
            self._need(node.op)
            a = self.expr(node.args[0])
            b = a if node.op == "square" else self.expr(node.args[1])
            return Printed.of(self.rounded.format(f"{a} {self._ROUNDED.get(node.op, '*')} {b}"))
        return super().expr(node)

    def terms(self, node: Sum) -> list[str]:
        total = None
        parts = [(t.negative, self.expr(t.node) if t.coefficient is None
                  else self.rounded.format(f"{self.lang.literal(t.coefficient)} * {self.expr(t.node)}"))
                 for t in node.terms]
        if node.bias is not None:
            parts.append((math.copysign(1.0, node.bias) < 0, self.lang.literal(abs(node.bias))))
        for negative, value in parts:
            if total is None:
                total = f"(-{value})" if negative else value
            else:
                total = self.rounded.format(f"{total} {'-' if negative else '+'} {value}")
        return [total]


def extremum(op: str, where: str, isnan: str = "{a} != {a}") -> Callable[[Printed, Printed], str]:
    """C's NaN-propagating max (``op`` ">") or min ("<"): one comparison against a
    constant (``!(a <= b) ? a : b``), else ``isnan(a) || a > b ? a : b``; the same
    selections as C, so the same bits (and the same sign of a zero)."""
    negated = {">": "<=", "<": ">="}[op]

    def write(a: Printed, b: Printed) -> str:
        if getattr(b, "number", False):
            return fill(where, c=f"!({a} {negated} {b})", a=a, b=b)
        return fill(where, c=f"({isnan.format(a=a)}) || ({a} {op} {b})", a=a, b=b)

    return write


def loop_values(net: Network, in_place: bool = False) -> int:
    """Values in the arrays of the loop layers (sums, activations, gathered inputs);
    ``in_place``: an elementwise activation overwrites the sums (:attr:`Frame.in_place`)."""
    total, previous_loops = 0, True
    for i, layer in enumerate(net.layers):
        loops = _loops(layer, "auto")
        if loops:
            spec = layer.activation
            total += layer.units * (1 if spec.is_identity or spec.is_vector or in_place else 2)
            total += layer.n_in if i and (not previous_loops or net.layers[i - 1].activation.is_vector) else 0
        previous_loops = loops
    return total


def check_name(name: str, keywords: frozenset[str], what: str) -> str:
    """``name`` if it is a usable identifier for C (the shared checks: our own locals and
    helpers) and not one of ``keywords`` of the language ``what``."""
    check_identifier(name, _TAKEN, _LOCALS)
    if name in keywords:
        raise ValidationError(f"function name {name!r} is a reserved word of {what}; choose another (e.g. predict)")
    return name


def chunks(texts: Sequence[str], per_line: int) -> list[str]:
    """Texts joined ``per_line`` to a line, with a comma after each line but the last."""
    rows = [", ".join(texts[i:i + per_line]) for i in range(0, len(texts), per_line)]
    return [row + ("," if i < len(rows) - 1 else "") for i, row in enumerate(rows)]


def exact_double(value: float, dtype: str) -> float:
    """``value`` in ``dtype``, as the binary64 number it is exactly."""
    return float(np.float32(value)) if dtype == "float32" else float(value)
