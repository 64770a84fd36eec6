"""Rust backend: a module of ``core`` only (``#![no_std]``-compatible: no std, no
crate), ``pub fn NAME(x: &[T; N], y: &mut [T; M])``, ``NAME_batch(x: &[T], y: &mut [T])``
(row-major rows) and, for one input and one output, ``NAME_scalar(x: T) -> T``.

Laid out as C's (:mod:`._ported`), with C's own exp/expm1/tanh/sigmoid ported and |x|
by the sign bit: f32 and f64 give the bits of C's float32/float64 built with
``-ffp-contract=off`` (rustc never contracts a*b + c).  ``core`` has no sqrt, log,
log1p or erf: the normalisations, squareplus, softplus, mish, log_sigmoid, log_softmax
and exact gelu are refused by name.

``NAME_batch``, when every layer is C's loops, runs blocks of 16 rows layer by layer:
4 units' sums for the 16 rows in registers, each weight read once per block (C's
order for every sum, so the one-sample bits), its arrays at most 64 KiB of stack;
otherwise it calls ``NAME`` per row.
"""
from __future__ import annotations

from typing import Optional

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
        function=lambda n, body: ["#[inline]", "#[allow(unused_parens, clippy::all)]", f"fn {n}(x: {t}) -> {t} {{",
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


#: rows side by side in the batch's blocks, and units per pass: TILE x BLOCK sums in registers
#: (f32: 4 x 2 ymm), each in C's order (bias, then input 0, 1, ...), so the one-sample bits
BLOCK, TILE = 16, 4
BLOCK_STACK = 64 * 1024  # most stack a block's arrays take (a wider network's batch goes row by row)


def _block(net: Network, name: str, t: str, language: Language) -> Optional[Lines]:
    """``NAME_block``: BLOCK rows through the network layer by layer, a layer's weight read
    once for all the rows; only when every layer is C's loops (Dense, no per-unit
    parameters), else None (the batch calls the one-sample function per row)."""
    from ..core.activations import REGISTRY
    from ..core.graph import Builder
    from ..core.network_graph import named_values
    from ._closed_form import activate_statements
    from .c_policy import _loops

    values = net.n_inputs + sum(layer.units * (1 if layer.activation.is_identity else 2) for layer in net.layers)
    if not all(_loops(layer, "auto") for layer in net.layers) or values * BLOCK * (4 if t == "f32" else 8) > BLOCK_STACK:
        return None
    printer, b, lines = Printer(language), Builder(), Lines()
    lines.level = 1
    n_in, n_out = net.n_inputs, net.n_outputs
    lines.add(f"let mut h0 = [[0.0{t}; {BLOCK}]; {n_in}];",
              f"for l in 0..{BLOCK} {{", f"    for k in 0..{n_in} {{ h0[k][l] = x[l * {n_in} + k]; }}", "}")
    source = "h0"
    for index, layer in enumerate(net.layers, start=1):
        units, w, z = layer.units, f"{name}_W{index}", f"z{index}"
        start = (lambda u: f"[{name}_B{index}[j + {u}]; {BLOCK}]") if layer.bias is not None \
            else (lambda u: f"[0.0{t}; {BLOCK}]")
        lines.add(f"let mut {z} = [[0.0{t}; {BLOCK}]; {units}];", "let mut j = 0;")
        for width, test in ((TILE, f"j + {TILE} <= {units}"), (1, f"j < {units}")):
            lines.add(f"while {test} {{", f"    let mut acc = [{', '.join(start(u) for u in range(width))}];",
                      f"    for k in 0..{layer.n_in} {{", f"        let hk = &{source}[k];",
                      f"        for u in 0..{width} {{", f"            let wk = {w}[k * {units} + j + u];",
                      f"            for l in 0..{BLOCK} {{ acc[u][l] += wk * hk[l]; }}", "        }", "    }",
                      f"    for u in 0..{width} {{ {z}[j + u] = acc[u]; }}", f"    j += {width};", "}")
        spec = layer.activation
        if spec.is_identity:
            source = z
            continue
        h = f"h{index}"
        lines.add(f"let mut {h} = [[0.0{t}; {BLOCK}]; {units}];")
        if spec.is_vector:  # row by row
            lines.add(f"for l in 0..{BLOCK} {{")
            lines.level += 1
            sums = named_values(b, index, [b.ref(f"{z}[{j}][l]") for j in range(units)])
            outputs = activate_statements(printer, b, layer, index, sums, lines)
            lines.add(*(f"{h}[{j}][l] = {printer.expr(node)};" for j, node in enumerate(outputs)))
            lines.level -= 1
            lines.add("}")
        else:  # unit by unit, the rows contiguous (vectorised)
            formula = REGISTRY[spec.name].formula(b, b.ref("zj"), spec.unit_params(0))
            lines.add(f"for j in 0..{units} {{", f"    for l in 0..{BLOCK} {{", f"        let zj = {z}[j][l];",
                      f"        {h}[j][l] = {printer.expr(formula)};", "    }", "}")
        source = h
    lines.add(f"for l in 0..{BLOCK} {{", f"    for j in 0..{n_out} {{ y[l * {n_out} + j] = {source}[j][l]; }}", "}")
    return lines


def check(name: str) -> str:
    return check_name(name, KEYWORDS, "Rust")


def emit_rust(net: Network, *, dtype: str = "float32", name: str = "mlp") -> str:
    check(name)
    if dtype not in DTYPES:
        raise UnsupportedError(f"the rust target writes {DTYPES}, not {dtype!r}")
    t, (_, mask, _, _) = _T[dtype], _BITS[dtype]
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
    block = _block(net, name, t, frame.language)
    if block is not None:
        values = net.n_inputs + sum(layer.units * (1 if layer.activation.is_identity else 2) for layer in net.layers)
        out.add(f"// {name}_batch: blocks of {BLOCK} rows, their arrays {values * BLOCK * (4 if t == 'f32' else 8)} "
                "bytes of stack besides.")
        out.add("#[allow(unused_parens, clippy::all)]",
                f"fn {name}_block(x: &[{t}; {BLOCK * n_in}], y: &mut [{t}; {BLOCK * n_out}]) {{")
        out.extend(block).add("}", "")
    out.add(f"/// Rows of {n_in} inputs (row-major) -> rows of {n_out} outputs; stops at the shorter of x and y."
            + (f" Blocks of {BLOCK} rows side by side, then the rest one by one (the same bits)." if block else ""),
            f"pub fn {name}_batch(x: &[{t}], y: &mut [{t}]) {{")
    if block:
        out.add(f"    let rows = core::cmp::min(x.len() / {n_in}, y.len() / {n_out});",
                f"    let (xb, xr) = x[..rows * {n_in}].split_at(rows / {BLOCK} * {BLOCK * n_in});",
                f"    let (yb, yr) = y[..rows * {n_out}].split_at_mut(rows / {BLOCK} * {BLOCK * n_out});",
                f"    for (xi, yi) in xb.chunks_exact({BLOCK * n_in}).zip(yb.chunks_exact_mut({BLOCK * n_out})) {{",
                f"        {name}_block(xi.try_into().unwrap(), yi.try_into().unwrap());", "    }",
                f"    for (xi, yi) in xr.chunks_exact({n_in}).zip(yr.chunks_exact_mut({n_out})) {{",
                f"        {name}(xi.try_into().unwrap(), yi.try_into().unwrap());", "    }", "}")
    else:
        out.add(f"    for (xi, yi) in x.chunks_exact({n_in}).zip(y.chunks_exact_mut({n_out})) {{",
                f"        {name}(xi.try_into().unwrap(), yi.try_into().unwrap());", "    }", "}")
    if n_in == n_out == 1:
        out.add("", f"pub fn {name}_scalar(x: {t}) -> {t} {{", f"    let mut y = [0.0{t}; 1];",
                f"    {name}(&[x], &mut y);", "    y[0]", "}")
    return str(out)
