"""Rust backend: a module of ``core`` only (``#![no_std]``-compatible: no std, no
crate), ``pub fn NAME(x: &[T; N], y: &mut [T; M])``, ``NAME_batch(x: &[T], y: &mut [T])``
(row-major rows) and, for one input and one output, ``NAME_scalar(x: T) -> T``.

Laid out as C's (:mod:`._ported`), with C's own exp/expm1/tanh/sigmoid ported and |x|
by the sign bit: f32 and f64 give the bits of C's float32/float64 built with
``-ffp-contract=off`` (rustc never contracts a*b + c).  ``core`` has no sqrt, log,
log1p or erf: the normalisations, squareplus, softplus, mish, log_sigmoid, log_softmax
and exact gelu are refused by name.
"""
from __future__ import annotations

from ..core.errors import UnsupportedError
from ..core.ir import Network
from ..core.numeric import numeric_type
from .c_estimates import stack_bytes
from ._ported import PORTED, Body, Dialect, Frame, chunks, check_name, extremum, math_definitions
from ._text import HEADER, Lines, quote_name
from .printer import Language, Printer

DTYPES = ("float32", "float64")
KEYWORDS = frozenset(
    "as async await break const continue crate dyn else enum extern false fn for if impl in let loop match mod "
    "move mut pub ref return self Self static struct super trait true type unsafe use where while abstract become "
    "box final macro override priv typeof unsized virtual yield try gen core std".split())
_T = {"float32": "f32", "float64": "f64"}
_BITS = {"float32": ("u32", "0x7fff_ffff", 127, 23), "float64": ("u64", "0x7fff_ffff_ffff_ffff", 1023, 52)}


def literal(dtype: str):
    kind, suffix = numeric_type(dtype), _T[dtype]
    return lambda value: kind.float_text(value) + suffix


def language(dtype: str, name: str) -> Language:
    where = "(if {c} {{ {a} }} else {{ {b} }})"
    functions = {key: f"{name}_{key}({{a}})" for key in PORTED}
    functions["abs"] = f"{name}_abs({{a}})"
    return Language(
        literal=literal(dtype), functions=functions, where=where,
        max2=extremum(">", where), min2=extremum("<", where),
        max_statement=lambda m, zs: [f"let mut {m} = {zs[0]};"] + [f"if {z} > {m} {{ {m} = {z}; }}" for z in zs[1:]],
        declare="let ", end=";", needs={key: key for key in (*PORTED, "abs")}, comment=lambda text: f"// {text}",
    )


def dialect(dtype: str, name: str) -> Dialect:
    t, (u, _, bias, shift) = _T[dtype], _BITS[dtype]
    return Dialect(
        literal=literal(dtype), let=lambda n, e: f"let {n} = {e};", let_int=lambda n, e: f"let {n} = {e};",
        int_of=lambda e: f"({e} as i32)",  # NaN -> 0 (saturating): only in a NaN result
        pow2=lambda i: f"{t}::from_bits((({i} + {bias}) as {u}) << {shift})", ret=lambda e: f"return {e};",
        if_return=lambda c, e: f"if {c} {{ return {e}; }}",
        function=lambda n, body: ["#[inline]", "#[allow(unused_parens)]", f"fn {n}(x: {t}) -> {t} {{",
                                  *("    " + line for line in body), "}"],
        infinity=f"{t}::INFINITY", abs=lambda a: f"{name}_abs({a})")


def _frame(dtype: str, name: str) -> Frame:
    t, lit = _T[dtype], literal(dtype)
    return Frame(
        language=language(dtype, name),
        array=lambda n, size: f"let mut {n} = [0.0{t}; {size}];",
        gather=lambda n, values: f"let {n} = [{', '.join(values)}];",
        loop=lambda v, n: f"for {v} in 0..{n} {{",
        store=lambda target, value: f"{target} = {value};",
        accumulate=lambda z, w, h: f"{z} += {w} * {h};",
        weights=lambda n, values: ["#[allow(non_upper_case_globals)]", f"static {n}: [{t}; {len(values)}] = ["] +
        ["    " + line for line in chunks([lit(v) for v in values], 6)] + ["];"],
    )


def check(name: str) -> str:
    return check_name(name, KEYWORDS, "Rust")


def emit_rust(net: Network, *, dtype: str = "float32", name: str = "mlp") -> str:
    check(name)
    if dtype not in DTYPES:
        raise UnsupportedError(f"the rust target writes {DTYPES}, not {dtype!r}")
    t, (u, mask, _, _) = _T[dtype], _BITS[dtype]
    frame = _frame(dtype, name)
    printer = Printer(frame.language)
    body = Body(net, frame, name, printer)
    body.lines.level = 1
    body.write()
    math = math_definitions(dialect(dtype, name), dtype, name, printer.needed)
    abs_fn = ["#[inline]", f"fn {name}_abs(x: {t}) -> {t} {{", f"    {t}::from_bits(x.to_bits() & {mask})", "}", ""] \
        if printer.needed & {"abs", "tanh", "sigmoid"} else []  # |x| by the sign bit (core has no abs)
    n_in, n_out = net.n_inputs, net.n_outputs
    out = Lines()
    out.add(f"// {HEADER}", f"// network {quote_name(net.name)}: {net.describe()}, {net.weight_dtype} weights",
            *(f"// note: {quote_name(note)[:200]}" for note in net.notes),
            f"// {name}(x, y): one sample, [{t}; {n_in}] -> [{t}; {n_out}]; {name}_batch(x, y): row-major rows",
            "// core only (#![no_std]-compatible): no allocation, no globals but read-only weights.",
            "// Math: mlpcodegen's own exp/expm1/tanh/sigmoid (the C target's, the same bits).",
            f"// Stack: at most {stack_bytes(net, dtype)['one']} bytes for {name} (the C target's bound for the same "
            "layout); no heap.", "")
    out.add(*body.arrays, *([""] if body.arrays else []), *abs_fn, *math)
    out.add("#[allow(unused_parens, clippy::all)]", f"pub fn {name}(x: &[{t}; {n_in}], y: &mut [{t}; {n_out}]) {{")
    out.extend(body.lines).add("}", "")
    out.add(f"/// Rows of {n_in} inputs (row-major) -> rows of {n_out} outputs; stops at the shorter of x and y.",
            f"pub fn {name}_batch(x: &[{t}], y: &mut [{t}]) {{",
            f"    for (xi, yi) in x.chunks_exact({n_in}).zip(y.chunks_exact_mut({n_out})) {{",
            f"        {name}(xi.try_into().unwrap(), yi.try_into().unwrap());", "    }", "}")
    if n_in == n_out == 1:
        out.add("", f"pub fn {name}_scalar(x: {t}) -> {t} {{", f"    let mut y = [0.0{t}; 1];",
                f"    {name}(&[x], &mut y);", "    y[0]", "}")
    return str(out)
