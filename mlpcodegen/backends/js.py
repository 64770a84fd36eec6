"""JavaScript backend: an ES module with no imports, ``export function NAME(x)`` (one
sample: an array of inputs -> a Float64Array, float32: a Float32Array), ``NAMEBatch(x)``
(row-major rows -> rows) and, for one input and one output, ``NAMEScalar(x)``; an
optional second argument ``out`` receives the outputs instead of a new array.

The body is laid out as C's (:mod:`._ported`): the same sums in the same order, C's own
exp/expm1/tanh/sigmoid ported (never ``Math.exp``), so float64 gives the bits of C's
float64 built with ``-ffp-contract=off``.  float32: every operation rounded by
``Math.fround`` (exact: see :mod:`._ported`), the bits of C's float32; its loop
layers' arrays are Float64Arrays of float32 values (V8 has no float32 arithmetic:
each Math.fround is two conversions, and a Float32Array read would add a third).
The loop arrays live at module level and the function reads them through local
consts (a module binding is reloaded and hole-checked at every read in a loop).  log, log1p and
erf are not spelled (C takes them from libm): softplus, mish, exact gelu, log_softmax
are refused by name.  :func:`emit_js_types` writes the TypeScript declarations.
"""
from __future__ import annotations

from pathlib import Path

from ..core.errors import UnsupportedError
from ..core.ir import Network
from ._ported import (PORTED, Body, loop_values, Dialect, Frame, RoundingPrinter, check_name, chunks, exact_double, extremum,
                      math_definitions)
from ._text import HEADER, Lines, quote_name
from .printer import Language, Printer

DTYPES = ("float64", "float32")
KEYWORDS = frozenset(
    "await break case catch class const continue debugger default delete do else enum export extends false "
    "finally for function if implements import in instanceof interface let new null package private protected "
    "public return static super switch this throw true try typeof var void while with yield arguments eval "
    "undefined NaN Infinity Math Object Array Number".split())
_ARRAY = {"float64": "Float64Array", "float32": "Float32Array"}


def literal(dtype: str):
    """The exact binary64 value of the constant in ``dtype`` (float32: the float32's value)."""
    return lambda value: repr(exact_double(value, dtype))


def language(dtype: str, name: str) -> Language:
    f32 = dtype == "float32"
    where = "({c} ? {a} : {b})"
    functions = {key: f"{name}_{key}({{a}})" for key in PORTED}
    functions.update({"abs": "Math.abs({a})", "sqrt": "Math.fround(Math.sqrt({a}))" if f32 else "Math.sqrt({a})"})
    return Language(
        literal=literal(dtype), functions=functions, where=where,
        max2=extremum(">", where), min2=extremum("<", where),
        max_statement=lambda m, zs: [f"let {m} = {zs[0]};"] + [f"if ({z} > {m}) {m} = {z};" for z in zs[1:]],
        declare="const ", end=";", needs={key: key for key in PORTED}, comment=lambda text: f"// {text}",
    )


def dialect(dtype: str) -> Dialect:
    lit = literal(dtype)
    table = f"P2_{dtype}"
    offset = 1022 if dtype == "float64" else 126
    return Dialect(
        literal=lit, let=lambda n, e: f"const {n} = {e};", let_int=lambda n, e: f"const {n} = {e};",
        int_of=lambda e: f"({e} | 0)",  # an int32: a typed array's index
        pow2=lambda i: f"{{p}}_{table}[{i} + {offset}]", ret=lambda e: f"return {e};",
        if_return=lambda c, e: f"if ({c}) return {e};",
        function=lambda n, body: [f"function {n}(x) {{", *("    " + line for line in body), "}"],
        infinity="Infinity", abs=lambda a: f"Math.abs({a})", rounded="Math.fround({})" if dtype == "float32" else "")


def _powers(name: str, dtype: str) -> list[str]:
    """2^i for every normal exponent i, built by exact doublings (no Math.pow)."""
    low, high = (-1022, 1023) if dtype == "float64" else (-126, 127)
    return [f"const {name}_P2_{dtype} = new Float64Array({high - low + 1});",
            f"for (let i = 0, v = 1.0; i <= {high}; i++, v *= 2.0) {name}_P2_{dtype}[i + {-low}] = v;",
            f"for (let i = -1, v = 0.5; i >= {low}; i--, v *= 0.5) {name}_P2_{dtype}[i + {-low}] = v;"]


#: suffix of the module-level arrays; the function body reads them through function-local
#: consts of the plain name (a module-level binding is a context slot TurboFan reloads and
#: hole-checks at every read in a loop: 1.2-2x slower loops)
_MODULE = "$"


def _frame(dtype: str) -> Frame:
    # float32 values are stored as the doubles they are (Float64Array): a Float32Array's
    # read costs a conversion V8 cannot fold into the arithmetic (each Math.fround is
    # already two: the loops are bound by conversions); the sums and activations stored
    # are Math.fround results, so every stored value is a float32 exactly
    array, lit = "Float64Array", literal(dtype)
    fround = dtype == "float32"
    return Frame(
        language=language(dtype, "_"),
        array=lambda n, size: f"const {n}{_MODULE} = new {array}({size});",
        gather=lambda n, values: f"const {n} = [{', '.join(values)}];",
        loop=lambda v, n: f"for (let {v} = 0; {v} < {n}; {v}++) {{",
        store=lambda target, value: f"{target} = {value};",
        accumulate=(lambda z, w, h: f"{z} = Math.fround({z} + Math.fround({w} * {h}));") if fround
        else (lambda z, w, h: f"{z} += {w} * {h};"),
        tile=8, mutable=lambda n, value: f"let {n} = {value};", module_arrays=True,
        step_loop=lambda v, n, step: f"for (let {v} = 0; {v} < {n}; {v} += {step}) {{",
        weights=lambda n, values: [f"const {n}{_MODULE} = new {array}(["] +
        ["    " + line for line in chunks([lit(v) for v in values], 8)] + ["]);"],
    )


def check(name: str) -> str:
    return check_name(name, KEYWORDS, "JavaScript")


def _camel(name: str, suffix: str) -> str:
    return name + suffix


def emit_js(net: Network, *, dtype: str = "float64", name: str = "mlp") -> str:
    check(name)
    if dtype not in DTYPES:
        raise UnsupportedError(f"the js target writes {DTYPES}, not {dtype!r}")
    lang = language(dtype, name)
    frame = _frame(dtype)
    frame = Frame(**{**frame.__dict__, "language": lang})
    printer = RoundingPrinter(lang, "Math.fround({})") if dtype == "float32" else Printer(lang)
    body = Body(net, frame, name, printer)
    body.lines.level = 1
    n_in, n_out, array = net.n_inputs, net.n_outputs, _ARRAY[dtype]
    if dtype == "float32":  # inputs rounded to float32 once, as C's float32 receives them
        body.lines.add(*(f"const i{i} = Math.fround(x[o + {i}]);" for i in range(n_in)))
        inputs = lambda b: [b.ref(f"i{i}") for i in range(n_in)]  # noqa: E731
    else:
        inputs = lambda b: [b.ref(f"x[o + {i}]") for i in range(n_in)]  # noqa: E731
    body.write(inputs, lambda j: f"y[p + {j}]")
    math = [line.replace("{p}", name) for line in math_definitions(dialect(dtype), dtype, name, printer.needed)]
    powers = _powers(name, dtype) + [""] if math else []
    out = Lines()
    out.add(f"// {HEADER}", f"// network {quote_name(net.name)}: {net.describe()}, {net.weight_dtype} weights",
            *(f"// note: {quote_name(note)[:200]}" for note in net.notes),
            f"// {name}(x): one sample, {n_in} inputs -> {array} of {n_out} outputs, {dtype}"
            + (" (every operation rounded by Math.fround)" if dtype == "float32" else ""),
            f"// {name}Batch(x): rows x[n * {n_in}] (row-major) -> {array}(n * {n_out})",
            "// Math: mlpcodegen's own exp/expm1/tanh/sigmoid (the C target's, the same bits), no Math.exp.",
            f"// No imports.  Memory: the returned array per call (none when out is given), and {loop_values(net)} "
            "values of module-level scratch "
            "for the loop layers (every call writes them: JavaScript runs one call at a time).",
            *(["// The loop layers' weights and scratch are Float64Arrays holding float32 values exactly (8 bytes "
               "each): V8 reads them without a conversion."] if dtype == "float32" and body.arrays else []),
            "")
    out.add(*body.arrays, *([""] if body.arrays else []), *powers, *math)
    local = [line.split()[1] for line in body.arrays if line.startswith("const ") and line.split()[1].endswith(_MODULE)]
    out.add(f"function {name}_row(x, o, y, p) {{",
            *(f"    const {n[:-len(_MODULE)]} = {n};" for n in local))
    out.extend(body.lines).add("}", "")
    out.add(f"// {name}(x, out): out, when given (any array of {n_out} or more), receives the outputs and is "
            f"returned; else a new {array}.",
            f"export function {name}(x, out) {{", f"    const y = out === undefined ? new {array}({n_out}) : out;",
            f"    {name}_row(x, 0, y, 0);", "    return y;", "}", "")
    out.add(f"export function {_camel(name, 'Batch')}(x, out) {{", f"    const n = Math.floor(x.length / {n_in});",
            f"    const y = out === undefined ? new {array}(n * {n_out}) : out;",
            f"    for (let i = 0; i < n; i++) {name}_row(x, i * {n_in}, y, i * {n_out});", "    return y;", "}")
    if n_in == n_out == 1:
        out.add("", f"export function {_camel(name, 'Scalar')}(x) {{", f"    const y = new {array}(1);",
                f"    {name}_row([x], 0, y, 0);", "    return y[0];", "}")
    return str(out)


def types_file(output: str) -> str:
    """Where ``convert --header`` writes the declarations of the module ``output``: the
    name TypeScript looks for beside it (a ``.mjs`` module's are ``.d.mts``)."""
    path = Path(output)
    return str(path.with_name(path.stem + (".d.mts" if path.suffix == ".mjs" else ".d.ts")))


def emit_js_types(net: Network, *, dtype: str = "float64", name: str = "mlp") -> str:
    """The TypeScript declarations (``.d.ts``) of what :func:`emit_js` exports."""
    check(name)
    array = _ARRAY[dtype]
    lines = [f"// {HEADER}", f"// network {quote_name(net.name)}: {net.describe()}",
             f"/** One sample: {net.n_inputs} inputs -> {net.n_outputs} outputs ({dtype}). */",
             f"/** With ``out``: the outputs written into it, and it returned (no allocation). */",
             f"export declare function {name}(x: ArrayLike<number>, out?: {array}): {array};",
             f"/** Rows, row-major: x[n * {net.n_inputs}] -> n * {net.n_outputs} outputs. */",
             f"export declare function {_camel(name, 'Batch')}(x: ArrayLike<number>, out?: {array}): {array};"]
    if net.n_inputs == net.n_outputs == 1:
        lines.append(f"export declare function {_camel(name, 'Scalar')}(x: number): number;")
    return "\n".join(lines) + "\n"
