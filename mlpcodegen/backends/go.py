"""Go backend: a package (named NAME in lower case) of the standard library's ``math``
only: ``func Name(x, y []T)`` (one sample), ``NameBatch(x, y []T)`` (row-major rows)
and, for one input and one output, ``NameScalar(x T) T``; NAME's first letter is
capitalised so they are exported.

Laid out as C's (:mod:`._ported`), with C's own exp/expm1/tanh/sigmoid ported.  The Go
spec lets a compiler fuse x*y + z (gc does on arm64, ppc64, s390x) unless a conversion
rounds in between: every product and sum is written inside ``float64(...)`` /
``float32(...)`` (:class:`._ported.RoundingPrinter`), so float32/float64 give the bits
of C's built with ``-ffp-contract=off`` on every architecture.  gc does not vectorise:
loop layers run 8 units' sums side by side in registers (C's order for each), a step's
8 weights read through one full slice expression (one bounds check per step, none per
weight; inputs and sums are fixed-size arrays indexed below their constant length, so
those checks are proven away); a select picks between bit patterns (gc writes CMOV, not
a branch): at about one weight per cycle, the two FP ports' bound for scalar code (the
batch calls the one-sample function per row: rows side by side measured no faster).
log, log1p and erf are
not spelled (C takes them from libm): softplus, mish, exact gelu, log_sigmoid,
log_softmax are refused by name.
"""
from __future__ import annotations

from ..core.errors import UnsupportedError, ValidationError
from ..core.ir import Network
from ..core.numeric import numeric_type
from .c_estimates import stack_bytes
from ._ported import PORTED, Body, Dialect, Frame, RoundingPrinter, chunks, check_name, extremum, math_definitions
from ._text import HEADER, Lines, quote_name
from .printer import Language

DTYPES = ("float32", "float64")
KEYWORDS = frozenset(
    "break case chan const continue default defer else fallthrough for func go goto if import interface map "
    "package range return select struct switch type var math main init append cap close complex copy delete imag "
    "len make new panic print println real recover bool byte error float32 float64 int int32 int64 uint uint32 "
    "uint64 string true false nil iota any".split())
_T = {"float32": "float32", "float64": "float64"}


def literal(dtype: str):
    return numeric_type(dtype).float_text  # an untyped constant, rounded to the operand's type


def language(dtype: str, name: str) -> Language:
    t = _T[dtype]
    where = f"{name}_where({{c}}, {{a}}, {{b}})"
    functions = {key: f"{name}_{key}({{a}})" for key in PORTED}
    functions.update({"abs": f"{t}(math.Abs(float64({{a}})))" if dtype == "float32" else "math.Abs({a})",
                      "sqrt": f"{t}(math.Sqrt(float64({{a}})))" if dtype == "float32" else "math.Sqrt({a})"})
    return Language(
        literal=literal(dtype), functions=functions, where=where,
        max2=extremum(">", where), min2=extremum("<", where),
        max_statement=lambda m, zs: [f"{m} := {zs[0]}"] + [f"if {z} > {m} {{ {m} = {z} }}" for z in zs[1:]],
        declare="var ", end="",
        needs={**{key: key for key in (*PORTED, "abs", "sqrt")}, "where": "where", "max": "where", "min": "where"},
        comment=lambda text: f"// {text}",
    )


def dialect(dtype: str) -> Dialect:
    t = _T[dtype]
    pow2 = (lambda i: f"math.Float32frombits(uint32({i}+127) << 23)") if dtype == "float32" else \
        (lambda i: f"math.Float64frombits(uint64({i}+1023) << 52)")
    return Dialect(
        literal=literal(dtype), let=lambda n, e: f"{n} := {t}({e})", let_int=lambda n, e: f"{n} := {e}",
        int_of=lambda e: f"int32({e})",  # NaN: an unspecified integer, only in a NaN result
        pow2=pow2, ret=lambda e: f"return {e}", if_return=lambda c, e: f"if {c} {{ return {e} }}",
        function=lambda n, body: [f"func {n}(x {t}) {t} {{", *("\t" + line for line in body), "}"],
        infinity=f"{t}(math.Inf(1))",
        abs=(lambda a: f"{t}(math.Abs(float64({a})))") if dtype == "float32" else (lambda a: f"math.Abs({a})"),
        rounded=t + "({})")


def _frame(dtype: str, name: str) -> Frame:
    t, lit = _T[dtype], literal(dtype)
    return Frame(
        language=language(dtype, name),
        array=lambda n, size: f"var {n} [{size}]{t}",
        gather=lambda n, values: f"{n} := [...]{t}{{{', '.join(values)}}}",
        loop=lambda v, n: f"for {v} := 0; {v} < {n}; {v}++ {{",
        store=lambda target, value: f"{target} = {value}",
        accumulate=lambda z, w, h: f"{z} = {t}({z} + {t}({w}*{h}))",
        tile=8, mutable=lambda n, value: f"{n} := {t}({value})",
        tile_row=lambda w, first, width: f"wk := {w}[{first} : {first} + {width} : {first} + {width}]",
        step_loop=lambda v, n, step: f"for {v} := 0; {v} < {n}; {v} += {step} {{",
        weights=lambda n, values: [f"var {n} = [{len(values)}]{t}{{"] +
        ["\t" + line.rstrip(",") + "," for line in chunks([lit(v) for v in values], 6)] + ["}"],
    )


def exported(name: str) -> str:
    return name[0].upper() + name[1:]


def package(name: str) -> str:
    return name.lower()


def check(name: str) -> str:
    check_name(name, KEYWORDS, "Go")
    if not name[0].isalpha():
        raise ValidationError(f"function name {name!r} cannot be exported by Go (it must start with a letter)")
    if package(name) in KEYWORDS:
        raise ValidationError(f"function name {name!r} would name the Go package {package(name)!r}, a reserved name")
    return name


def emit_go(net: Network, *, dtype: str = "float32", name: str = "mlp") -> str:
    check(name)
    if dtype not in DTYPES:
        raise UnsupportedError(f"the go target writes {DTYPES}, not {dtype!r}")
    t, n_in, n_out, public = _T[dtype], net.n_inputs, net.n_outputs, exported(name)
    frame = _frame(dtype, name)
    printer = RoundingPrinter(frame.language, t + "({})")
    body = Body(net, frame, name, printer)
    body.lines = Lines("\t")
    body.lines.level = 1
    body.write()
    math = math_definitions(dialect(dtype), dtype, name, printer.needed)
    out = Lines("\t")
    out.add(f"// {HEADER}", "// Code generated by mlpcodegen. DO NOT EDIT.",
            f"// network {quote_name(net.name)}: {net.describe()}, {net.weight_dtype} weights",
            *(f"// note: {quote_name(note)[:200]}" for note in net.notes),
            f"// {public}(x, y): one sample, x[{n_in}] -> y[{n_out}], {t}; {public}Batch(x, y): row-major rows.",
            "// Standard library only (math: bit casts, |x|, sqrt); no mutable globals; y may be x.",
            f"// Stack: at most {stack_bytes(net, dtype)['one']} bytes for {public} (the C target's bound for the same "
            "layout: fixed-size local arrays); no heap.",
            "// Math: mlpcodegen's own exp/expm1/tanh/sigmoid (the C target's, the same bits).",
            f"package {package(name)}", "")
    if math or printer.needed & {"abs", "sqrt", "where"}:  # bit casts, |x|, sqrt
        out.add('import "math"', "")
    if "where" in printer.needed:  # a select of bit patterns: gc writes CMOV (a float select is a branch,
        # taken at random by a relu's sums: a third of mid 8-64-64-1's time); the same value either way
        width = t[-2:]
        out.add(f"func {name}_where(c bool, a, b {t}) {t} {{",
                f"\tua, ub := math.Float{width}bits(a), math.Float{width}bits(b)", "\tif c {", "\t\tub = ua", "\t}",
                f"\treturn math.Float{width}frombits(ub)", "}", "")
    out.add(*body.arrays, *([""] if body.arrays else []), *math)
    out.add(f"// {public}: one sample, x[{n_in}] -> y[{n_out}].", f"func {public}(x, y []{t}) {{",
            f"\t_, _ = x[{n_in - 1}], y[{n_out - 1}]")
    out.extend(body.lines).add("}", "")
    out.add(f"// {public}Batch: rows of {n_in} inputs (row-major) -> rows of {n_out} outputs.",
            f"func {public}Batch(x, y []{t}) {{", f"\tfor i := 0; (i+1)*{n_in} <= len(x) && (i+1)*{n_out} <= len(y); i++ {{",
            f"\t\t{public}(x[i*{n_in}:(i+1)*{n_in}], y[i*{n_out}:(i+1)*{n_out}])", "\t}", "}")
    if n_in == n_out == 1:
        out.add("", f"// {public}Scalar: one input -> one output.", f"func {public}Scalar(x {t}) {t} {{",
                f"\tv := [1]{t}{{x}}", f"\t{public}(v[:], v[:])", "\treturn v[0]", "}")
    return str(out)
