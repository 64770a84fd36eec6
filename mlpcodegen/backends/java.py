"""Java backend: one class, nothing imported (``java.lang`` only): ``public static void
NAME(T[] x, T[] y)``, ``NAMEBatch(T[] x, T[] y, int n)`` (row-major rows) and, for one
input and one output, ``NAMEScalar(T x)``; the class is NAME with a capital letter.

Laid out as C's (:mod:`._ported`), with C's own exp/expm1/tanh/sigmoid ported: Java's
float and double arithmetic is IEEE with no contraction (strict since Java 17), so
float/double give the bits of C's float32/float64 built with ``-ffp-contract=off``.
Loop layers of 8 units or more run C's input-major loops, 8 inputs a step, over
``T[][]`` weights (from 16 units, chunk s: inputs 8s ... 8s + 7, each indexed by j as
the sums are; below, a row per input), so HotSpot vectorises them; narrower ones, 4
units' sums side by side (C's order either way).  max/min against a constant are
``Math.max``/``Math.min`` (the same value; C2 writes no branch).  Per call the function
allocates only its loop layers' sums: an elementwise activation overwrites them
(``z[j] = f(z[j])``) and a first loop layer reads ``x[o + k]`` itself, not a copy (the
sums must be fresh arrays: C2's escape analysis then puts them in a memory slice of their
own, which is what lets it vectorise loads of weights beside stores of sums; measured,
CPU time, heap pre-touched, interleaved: cls 16-64-64-10 float64 861 -> 750 ns, mid
8-64-64-1 float64 587 -> 520; float32 unchanged, 560-575 and 390-400).  The batch calls the
one-sample function per row (blocks of rows side by side were measured: no faster on
C2; see bench/languages.py).  The weights of loop
layers are stored as hexadecimal bit patterns in string constants
(decoded once when the class loads): a class's static initialiser is limited to 64 KiB
of bytecode, a string constant to 65535 bytes.  log, log1p and erf are not spelled (C
takes them from libm): softplus, mish, exact gelu, log_sigmoid, log_softmax are refused.
"""
from __future__ import annotations

import struct

from ..core.errors import UnsupportedError, ValidationError
from ..core.ir import Network
from ..core.numeric import numeric_type
from ._ported import PORTED, Body, loop_values, Dialect, Frame, check_name, extremum, math_definitions
from ._text import HEADER, Lines, quote_name
from .printer import Language, Printer, top

DTYPES = ("float32", "float64")
KEYWORDS = frozenset(
    "abstract assert boolean break byte case catch char class const continue default do double else enum extends "
    "final finally float for goto if implements import instanceof int interface long native new package private "
    "protected public return short static strictfp super switch synchronized this throw throws transient try void "
    "volatile while true false null var yield record sealed permits non_sealed _".split())
_T = {"float32": "float", "float64": "double"}
_HEX_PER_STRING = 4000  # values per string constant (16 hex digits each: < 65535 bytes)
#: inputs per step of the loop layers (2-16 tried: 8 fastest; from 10 on, C2 stops vectorising)
STEP = 8
#: from this many units a step's weights are one array (chunks of STEP inputs), below, a row per input
CHUNKS_FROM = 16


def literal(dtype: str):
    kind = numeric_type(dtype)
    return (lambda value: kind.float_text(value) + "f") if dtype == "float32" else kind.float_text


def _extremum(op: str, where: str, dtype: str):
    """C's max (``op`` ">") or min ("<") against a constant as ``Math.max``/``Math.min``
    (C2 writes them without a branch, and vectorises them; C's select is a branch, taken
    at random by a relu's sums: half of mid 8-64-64-1's time), else as C writes it.
    The same value for every ``a``: NaN -> NaN; equal values -> the constant, which
    Math.max/min also give unless both are zeros of opposite signs: so not against -0
    (max) or +0 (min), the language's own literals."""
    fallback, zero = extremum(op, where), literal(dtype)(0.0)
    unsafe = f"(-{zero})" if op == ">" else zero
    function = "Math.max" if op == ">" else "Math.min"

    def write(a, b) -> str:
        if not getattr(b, "number", False) or str(b) == unsafe:
            return fallback(a, b)
        return f"{function}({top(a)}, {top(b)})"

    return write


def language(dtype: str, name: str) -> Language:
    t, where = _T[dtype], "({c} ? {a} : {b})"
    functions = {key: f"{name}_{key}({{a}})" for key in PORTED}
    functions.update({"abs": "Math.abs({a})",
                      "sqrt": "((float) Math.sqrt({a}))" if dtype == "float32" else "Math.sqrt({a})"})
    return Language(
        literal=literal(dtype), functions=functions, where=where,
        max2=_extremum(">", where, dtype), min2=_extremum("<", where, dtype),
        max_statement=lambda m, zs: [f"{t} {m} = {zs[0]};"] + [f"if ({z} > {m}) {m} = {z};" for z in zs[1:]],
        declare=f"final {t} ", end=";", needs={key: key for key in PORTED}, comment=lambda text: f"// {text}",
    )


def dialect(dtype: str) -> Dialect:
    t = _T[dtype]
    pow2 = (lambda i: f"Float.intBitsToFloat(({i} + 127) << 23)") if dtype == "float32" else \
        (lambda i: f"Double.longBitsToDouble((long) ({i} + 1023) << 52)")
    return Dialect(
        literal=literal(dtype), let=lambda n, e: f"final {t} {n} = {e};", let_int=lambda n, e: f"final int {n} = {e};",
        int_of=lambda e: f"((int) {e})",  # NaN -> 0: only in a NaN result
        pow2=pow2, ret=lambda e: f"return {e};", if_return=lambda c, e: f"if ({c}) return {e};",
        function=lambda n, body: [f"private static {t} {n}(final {t} x) {{", *("    " + line for line in body), "}"],
        infinity=f"{'Float' if dtype == 'float32' else 'Double'}.POSITIVE_INFINITY", abs=lambda a: f"Math.abs({a})")


def _hex(values, dtype: str) -> list[str]:
    """Each value's bit pattern in hexadecimal, big-endian digits (8 for float, 16 for double)."""
    if dtype == "float32":
        return [struct.pack(">f", float(v)).hex() for v in values]
    return [struct.pack(">d", float(v)).hex() for v in values]


def _frame(dtype: str, name: str) -> Frame:
    t = _T[dtype]

    def weights(n: str, values) -> list[str]:
        digits = _hex(values, dtype)
        parts = ["".join(digits[i:i + _HEX_PER_STRING]) for i in range(0, len(digits), _HEX_PER_STRING)]
        return [f"private static final {t}[] {n} = {name}_decode(new String[] {{"] + \
            [f'    "{part}"' + ("," if i < len(parts) - 1 else "") for i, part in enumerate(parts)] + \
            [f"}}, {len(values)});"]

    def rows(n: str, kernel) -> list[str]:  # chunk s: inputs s * STEP ... (or row s: input s), C's order
        lines = weights(n, kernel.reshape(-1))
        return [lines[0].replace(f"{t}[] {n} = ", f"{t}[][] {n} = {name}_rows(", 1)] + lines[1:-1] + \
            [lines[-1][:-1] + f", {kernel.shape[1] * (STEP if kernel.shape[1] >= CHUNKS_FROM else 1)});"]

    return Frame(
        language=language(dtype, name),
        array=lambda n, size: f"final {t}[] {n} = new {t}[{size}];",
        gather=lambda n, values: f"final {t}[] {n} = {{{', '.join(values)}}};",
        loop=lambda v, n: f"for (int {v} = 0; {v} < {n}; {v}++) {{",
        store=lambda target, value: f"{target} = {value};",
        accumulate=lambda z, w, h: f"{z} += {w} * {h};",
        row=lambda w, local="wk", at="k": f"final {t}[] {local} = {w}[{at}];", rows=rows,
        weights=weights, tile=4, rows_from=8, row_unroll=STEP, chunks_from=CHUNKS_FROM,
        mutable=lambda n, value: f"{t} {n} = {value};",
        step_loop=lambda v, n, step: f"for (int {v} = 0; {v} < {n}; {v} += {step}) {{",
        loop_from=lambda v, first, n: f"for (int {v} = {first}; {v} < {n}; {v}++) {{",
        loop_step_from=lambda v, first, n, step: f"for (int {v} = {first}; {v} < {n}; {v} += {step}) {{",
        in_place=True,
    )


def _decoder(dtype: str, name: str) -> list[str]:
    t = _T[dtype]
    step, read = (8, "Float.intBitsToFloat(Integer.parseUnsignedInt(s.substring(at, at + 8), 16))") \
        if dtype == "float32" else (16, "Double.longBitsToDouble(Long.parseUnsignedLong(s.substring(at, at + 16), 16))")
    return [f"private static {t}[] {name}_decode(final String[] parts, final int n) {{",
            f"    final {t}[] out = new {t}[n];", "    int i = 0;",
            f"    for (final String s : parts) for (int at = 0; at < s.length(); at += {step}) out[i++] = {read};",
            "    return out;", "}", "",
            f"private static {t}[][] {name}_rows(final {t}[] flat, final int size) {{",
            f"    final {t}[][] out = new {t}[(flat.length + size - 1) / size][];",
            "    for (int s = 0; s < out.length; s++) {",
            f"        out[s] = new {t}[Math.min(size, flat.length - s * size)];",
            "        System.arraycopy(flat, s * size, out[s], 0, out[s].length);", "    }",
            "    return out;", "}", ""]


def class_name(name: str) -> str:
    return name[0].upper() + name[1:]


def check(name: str) -> str:
    check_name(name, KEYWORDS, "Java")
    if class_name(name) in KEYWORDS | {"String", "Math", "Float", "Double", "Integer", "Long", "Object", "System"}:
        raise ValidationError(f"function name {name!r} would name the class {class_name(name)!r}, "
                              "which java.lang or Java reserves; choose another (e.g. predict)")
    return name


def emit_java(net: Network, *, dtype: str = "float32", name: str = "mlp") -> str:
    check(name)
    if dtype not in DTYPES:
        raise UnsupportedError(f"the java target writes {DTYPES}, not {dtype!r}")
    t, n_in, n_out = _T[dtype], net.n_inputs, net.n_outputs
    frame = _frame(dtype, name)
    printer = Printer(frame.language)
    body = Body(net, frame, name, printer)
    body.lines.level = 2
    body.write(lambda b: [b.ref(f"x[o + {i}]") for i in range(n_in)], lambda j: f"y[p + {j}]",
               input_array=("x", "o"))
    math = math_definitions(dialect(dtype), dtype, name, printer.needed)
    out = Lines()
    out.add(f"// {HEADER}", f"// network {quote_name(net.name)}: {net.describe()}, {net.weight_dtype} weights",
            *(f"// note: {quote_name(note)[:200]}" for note in net.notes),
            f"// {class_name(name)}.{name}(x, y): one sample, {t}[{n_in}] -> {t}[{n_out}]; "
            f"{name}Batch(x, y, n): n row-major rows",
            "// java.lang only; no mutable state (thread-safe); y may be x.",
            f"// Memory: {name} allocates its loop layers' sums per call ({loop_values(net, in_place=True)} values, "
            "short-lived); "
            "the weights once, when the class loads.",
            "// Math: mlpcodegen's own exp/expm1/tanh/sigmoid (the C target's, the same bits).", "")
    out.add(f"public final class {class_name(name)} {{")
    out.level = 1
    out.add(f"private {class_name(name)}() {{", "}", "")
    if body.arrays:
        out.add(*_decoder(dtype, name), *body.arrays, "")
    out.add(*math)
    out.add(f"private static void {name}_row(final {t}[] x, final int o, final {t}[] y, final int p) {{")
    out.level = 0
    out.extend(body.lines)
    out.level = 1
    out.add("}", "", f"/** One sample: x[{n_in}] -> y[{n_out}]. */",
            f"public static void {name}(final {t}[] x, final {t}[] y) {{", f"    {name}_row(x, 0, y, 0);", "}", "",
            f"/** n rows, row-major: x[n * {n_in}] -> y[n * {n_out}]. */",
            f"public static void {name}Batch(final {t}[] x, final {t}[] y, final int n) {{",
            f"    for (int i = 0; i < n; i++) {name}_row(x, i * {n_in}, y, i * {n_out});", "}")
    if n_in == n_out == 1:
        out.add("", f"public static {t} {name}Scalar(final {t} x) {{", f"    final {t}[] y = new {t}[1];",
                f"    {name}_row(new {t}[] {{x}}, 0, y, 0);", "    return y[0];", "}")
    out.level = 0
    out.add("}")
    return str(out)
