"""C99 backend: the network as an unrolled closed form.

Every neuron is one statement with its weights as exact literals; no loops, no weight
arrays, no globals, no allocation.  The file needs ``<math.h>`` and the freestanding
``<stddef.h>`` only, and compiles warning-free with
``gcc -std=c99 -Wall -Wextra -Wpedantic -Wconversion -Wdouble-promotion -Werror``.

>>> import numpy as np
>>> from mlpcodegen.ir import Network, Dense, Activation
>>> net = Network(1, (Dense(np.array([[0.5]]), np.array([0.25]), Activation("tanh")),))
>>> print(emit_c(net, dtype="float32", name="f").splitlines()[-11])
    const float h1_0 = tanhf(0.5f*x[0] + 0.25f);
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from ..activations import REGISTRY
from ..ir import Activation, Dense, Layer, Network
from . import c_math
from ..errors import ValidationError
from ._closed_form import Language, TextOps, activate_statements, emit_layer, layer_comment, strip_parens
from ._text import HEADER, Lines, check_identifier, float_digits, quote_name
from .c_names import reserved_by

#: dtype -> C spelling of the type, literal suffix and libm function suffix.
C_TYPES: dict[str, dict[str, str]] = {
    "float32": {"T": "float", "suffix": "f", "f": "f"},
    "float64": {"T": "double", "suffix": "", "f": ""},
}

#: primitive -> C text over ``{a}``; ``{f}`` is the libm suffix (tanhf / tanh),
#: ``{zero}``/``{one}`` literals of the type.  sigmoid: exp(-a) overflows to inf for
#: very negative a, and 1/(1+inf) is the correct 0.
C_FUNCTIONS: dict[str, str] = {
    "abs": "fabs{f}({{a}})", "exp": "exp{f}({{a}})", "expm1": "expm1{f}({{a}})", "log": "log{f}({{a}})",
    "log1p": "log1p{f}({{a}})", "tanh": "tanh{f}({{a}})", "erf": "erf{f}({{a}})", "sqrt": "sqrt{f}({{a}})",
    "sigmoid": "({one} / ({one} + exp{f}(-{{a}})))",
    "softplus": "(log1p{f}(exp{f}(-fabs{f}({{a}}))) + fmax{f}({{a}}, {zero}))",
}

DTYPES = tuple(C_TYPES)
#: Names a function may not take: the parameters, the libm functions used, and
#: (by pattern) the locals h1_0, z1_0, e1_0, m1, s1.
_TAKEN = frozenset({"x", "y", "n", "i", "main", "j", "k", "l", "u", "acc", "wk",
                    "memcpy", "size_t", "int32_t", "uint32_t"} | {  # <string.h>, <stdint.h> with fast math
    name + suffix for name in ("fabs", "exp", "expm1", "log", "log1p", "tanh", "erf", "sqrt", "fmax", "fmin")
    for suffix in ("", "f")})
_LOCALS = r"[a-z]\d+(_\d+)?|hk|zj"
#: Names the generated file derives from NAME (W1/B1 stand for every layer's arrays).
DERIVED_SUFFIXES = ("_batch", "_scalar", "_block", "_dense", "_dense_rows", "_W1", "_B1", "_vwheref") + tuple(
    f"_{flavour}{key}f" for key in ("exp", "expm1", "tanh", "sigmoid") for flavour in ("", "v"))


def literal(value: float, dtype: str) -> str:
    """An exact C floating constant (float32 with an ``f`` suffix)."""
    return float_digits(value, dtype) + C_TYPES[dtype]["suffix"]


def _nan_extremum(op: str, where: str) -> Callable[[str, str], str]:
    """max (``op`` ">") or min ("<") that propagates NaN from either side, as TensorFlow's
    Maximum/Minimum and Keras' relu do (C's fmax(NaN, 0) is 0, and so is a bare
    ``a > b ? a : b``).  The arguments are pure expressions: writing one twice changes
    no result (compilers compute it once)."""
    return lambda a, b: where.format(c=f"isnan({a}) | ({a} {op} {b})", a=a, b=b)


def language(dtype: str, math: str = "libm", name: str = "mlp", vector: bool = False) -> Language:
    """The C spelling of the closed form for ``dtype``; ``math="fast"`` calls the inline
    functions of :mod:`c_math` (prefixed ``name``; ``vector``: their flavour for the
    batch block loops) where ``dtype`` has them."""
    t, f = C_TYPES[dtype]["T"], C_TYPES[dtype]["f"]
    zero, one = literal(0.0, dtype), literal(1.0, dtype)
    functions = {key: text.format(f=f, zero=zero, one=one) for key, text in C_FUNCTIONS.items()}
    where = "({c} ? {a} : {b})"
    if math == "fast":
        functions.update(c_math.fast_functions(dtype, name, vector))
        where = (c_math.fast_where(dtype, name) if vector else None) or where
    return Language(
        literal=lambda value: literal(value, dtype),
        functions=functions,
        where=where,
        max2=_nan_extremum(">", where),
        min2=_nan_extremum("<", where),
        max_statement=lambda m, zs: [f"{t} {m} = {zs[0]};"] + [f"if ({z} > {m}) {m} = {z};" for z in zs[1:]],
        declare=f"const {t} ",
        end=";",
    )


def signature(net: Network, dtype: str, name: str) -> list[str]:
    """The prototypes (without ``;``) the C output defines: one sample, a batch and,
    for one-input one-output networks, ``T NAME_scalar(T x)`` (no arrays to pass)."""
    t = C_TYPES[dtype]["T"]
    prototypes = [
        f"void {name}(const {t} *x, {t} *y)",
        f"void {name}_batch(const {t} *x, {t} *y, size_t n)",
    ]
    if net.n_inputs == net.n_outputs == 1:
        prototypes.append(f"{t} {name}_scalar({t} x)")
    return prototypes


#: ``--unroll auto`` writes a Dense layer as the unrolled closed form when it has at
#: most UNROLL_MAX_WEIGHTS weights and at most UNROLL_MAX_INPUTS inputs (or at most
#: UNROLL_ANY_SHAPE_WEIGHTS weights), and fewer than UNROLL_MIN_LOOP_UNITS units; as
#: loops over ``static const`` arrays otherwise.  Set from bench/UNROLL.md (python
#: bench/unroll_threshold.py): see :func:`unrolled_by_default`.
UNROLL_MAX_WEIGHTS = 256
UNROLL_MAX_INPUTS = 16
UNROLL_ANY_SHAPE_WEIGHTS = 32
UNROLL_MIN_LOOP_UNITS = 32
UNROLL_MODES = ("auto", "always", "never")
#: Samples per block in the batch function (one SIMD-friendly row of lanes per value),
#: and units per register tile of a loop layer; measured best on AVX2/AVX-512 with gcc.
LANES = {"float32": 32, "float64": 16}
TILE_UNITS = 8


def unrolled_by_default(n_in: int, units: int) -> bool:
    """Whether ``--unroll auto`` writes a Dense layer of this shape unrolled.

    Measured (bench/UNROLL.md): loops win from UNROLL_MIN_LOOP_UNITS units on (the
    sums vectorise across units: 1 x 64 takes 4 ns as loops, 24 ns unrolled); below
    that the unrolled form wins while the layer is small or has few inputs (8 x 8:
    14 ns against 27), and loses on long dot products feeding several units (64 x 2:
    137 against 67).  A lone 64 x 1 output layer measures faster unrolled on its own
    but slower inside mid 8-64-64-1 (162 against 140 ns for the network), so long
    dot products are loops."""
    if units >= UNROLL_MIN_LOOP_UNITS:
        return False
    weights = n_in * units
    return (weights <= UNROLL_MAX_WEIGHTS and n_in <= UNROLL_MAX_INPUTS) or weights <= UNROLL_ANY_SHAPE_WEIGHTS


def _loops(layer: Layer, unroll: str) -> bool:
    """Whether ``layer`` is written as loops (Dense layers without per-unit parameters)."""
    if not isinstance(layer, Dense) or _per_unit(layer):
        return False
    return unroll == "never" or (unroll == "auto" and not unrolled_by_default(layer.n_in, layer.units))


def _array(name: str, values: np.ndarray, dtype: str, t: str) -> list[str]:
    """``static const T name[..] = {...};``, a few literals per line (row per unit for 2-D)."""
    if values.ndim == 1:
        return [f"static const {t} {name}[{len(values)}] = {{{', '.join(literal(v, dtype) for v in values)}}};"]
    body = [f"    {{{', '.join(literal(v, dtype) for v in row)}}}" for row in values]
    return [f"static const {t} {name}[{values.shape[0]}][{values.shape[1]}] = {{"] + \
           [line + ("," if i < len(body) - 1 else "") for i, line in enumerate(body)] + ["};"]


def _kernel_names(index: int, name: str) -> tuple[str, str]:
    """The ``static const`` kernel and bias arrays of loop layer ``index``."""
    return f"{name}_W{index}", f"{name}_B{index}"


def _kernel_arrays(net: Network, dtype: str, name: str, unroll: str) -> list[str]:
    """Declarations of every loop layer's kernel (and bias): shared by the one-sample
    function and the batch block."""
    t, out = C_TYPES[dtype]["T"], []
    for index, layer in enumerate(net.layers, start=1):
        if _loops(layer, unroll):
            w, b = _kernel_names(index, name)
            out += _array(w, layer.kernel, dtype, t)
            if layer.bias is not None:
                out += _array(b, layer.bias, dtype, t)
    return out


def _emit_loop_layer(layer: Dense, index: int, sources: list[str], dtype: str, name: str,
                     lines: Lines, math: str) -> list[str]:
    """z = b + h W as loops over an input-major ``static const`` kernel (the IR's
    layout).  The inner loop runs over units: independent sums the compiler vectorises
    without reordering any sum, each z[j] = ((b[j] + h0 w0j) + h1 w1j) + ...  Starting
    from the bias (not adding it last) lets gcc keep the sums in registers across k:
    mid 8-64-64-1 one sample 163 ns against 249 ns, measured at -O3 -march=native.
    The activation writes a second array: in place, cls 16-64-64-10 took 2x longer
    (gcc then reloads the sums), measured."""
    t, lang = C_TYPES[dtype]["T"], language(dtype, math, name)
    (w, b), z = _kernel_names(index, name), f"z{index}"
    source = _array_source(sources)
    if source is None:  # the inputs are scalars from an unrolled layer: gather them
        source = f"v{index}"
        lines.add(f"const {t} {source}[{len(sources)}] = {{{', '.join(sources)}}};")
    zero, units = literal(0.0, dtype), f"{layer.units}u"
    start = f"{b}[j]" if layer.bias is not None else zero  # the bias first: see the docstring
    lines.add(f"{t} {z}[{layer.units}];", "{", "    size_t j, k;",
              f"    for (j = 0; j < {units}; ++j) {z}[j] = {start};",
              f"    for (k = 0; k < {layer.n_in}u; ++k) {{", f"        const {t} hk = {source}[k];",
              f"        for (j = 0; j < {units}; ++j) {z}[j] += {w}[k][j] * hk;", "    }", "}")
    if layer.activation.is_vector:
        return activate_statements(lang, layer, index, [[f"{z}[{j}]"] for j in range(layer.units)], lines)
    if not layer.activation.is_identity:
        h = f"h{index}"
        lines.add(f"{t} {h}[{layer.units}];")
        _activation_loop(lang, layer, z, dtype, lines, out=h)
        z = h
    return [f"{z}[{j}]" for j in range(layer.units)]


def _array_source(sources: list[str]) -> str | None:
    """``a`` when ``sources`` are exactly ``a[0], a[1], ...`` (an array to read in a loop)."""
    head = sources[0].split("[")[0]
    return head if sources == [f"{head}[{i}]" for i in range(len(sources))] else None


def _activation_loop(lang: Language, layer: Layer, z: str, dtype: str, lines: Lines, lanes: int | None = None,
                     out: str | None = None) -> None:
    """``out = f(z)`` (default: in place) for an element-wise activation without per-unit
    parameters: one loop over the units (and the lanes, in a batch block)."""
    t, spec = C_TYPES[dtype]["T"], layer.activation
    text = strip_parens(REGISTRY[spec.name].formula(TextOps(lang), "zj", spec.unit_params(0)))
    loop, at = f"for (j = 0; j < {layer.n_out}u; ++j)", "[j]"
    if lanes is not None:
        loop, at = loop + f" for (l = 0; l < {lanes}u; ++l)", "[j][l]"
    lines.add("{", "    size_t j" + (", l;" if lanes is not None else ";"), f"    {loop} {{",
              f"        const {t} zj = {z}{at};", f"        {out or z}{at} = {text};", "    }", "}")


def _emit_body(net: Network, dtype: str, name: str, unroll: str, math: str, lines: Lines) -> None:
    lang = language(dtype, math, name)
    sources = [f"x[{i}]" for i in range(net.n_inputs)]
    for index, layer in enumerate(net.layers, start=1):
        shape = "loops" if _loops(layer, unroll) else "unrolled"
        lines.add(f"/* {layer_comment(layer, index)}; {shape} */")
        if shape == "loops":
            sources = _emit_loop_layer(layer, index, sources, dtype, name, lines, math)
        else:
            sources = emit_layer(lang, layer, index, sources, lines)
    # Outputs are stored only after every input has been read: y may be x.
    for j, source in enumerate(sources):
        lines.add(f"y[{j}] = {source};")


#: Bytes the two buffers of a batch block may take.  Wide layers get fewer lanes (down
#: to one sample per block) to stay within it: a block then fits a 512 KiB thread stack
#: (musl's default, macOS's secondary threads) many times over.  Only a layer wider
#: than BLOCK_BUFFER_BYTES / (2 x value size) values (8192 float32) exceeds it, by
#: what its two rows of values need.
BLOCK_BUFFER_BYTES = 64 * 1024


@dataclass(frozen=True)
class BlockPlan:
    """How ``NAME_batch`` lays out its blocks for one network."""

    lanes: int  # samples per block
    width: int  # rows of each of the two ping-pong buffers
    transpose: bool  # the block's inputs are copied into a buffer first; else layer 1 reads x's rows
    backwards: bool  # rows from the last one back: more outputs than inputs, and y may be x


def block_plan(net: Network, dtype: str) -> BlockPlan:
    """Lanes: LANES[dtype], halved while the two buffers (as wide as the widest layer)
    exceed BLOCK_BUFFER_BYTES.  An input wider than that is read from x's rows instead of
    being copied into a buffer (a 70000-input model keeps 32 lanes)."""
    size, widest = np.dtype(dtype).itemsize, max(layer.units for layer in net.layers)
    lanes = LANES[dtype]
    while lanes > 1 and 2 * widest * lanes * size > BLOCK_BUFFER_BYTES:
        lanes //= 2
    transpose = net.n_inputs <= widest or 2 * net.n_inputs * lanes * size <= BLOCK_BUFFER_BYTES
    width = max(widest, net.n_inputs) if transpose else widest
    return BlockPlan(lanes, width, transpose, net.n_outputs > net.n_inputs)


def _tile(t: str, lanes: int, tile: int, zero: str, indent: str, h_at: str) -> list[str]:
    """Units j .. j + tile - 1 over all lanes: ``tile`` x lanes accumulators."""
    body = [
        f"{t} acc[{tile}][{lanes}];",
        f"for (u = 0; u < {tile}u; ++u) for (l = 0; l < {lanes}u; ++l) acc[u][l] = b ? b[j + u] : {zero};",
        "for (k = 0; k < n_in; ++k) {",
        f"    for (u = 0; u < {tile}u; ++u) {{",
        f"        const {t} wk = w[k * units + j + u];",
        f"        for (l = 0; l < {lanes}u; ++l) acc[u][l] += wk * {h_at};",
        "    }",
        "}",
        f"for (u = 0; u < {tile}u; ++u) for (l = 0; l < {lanes}u; ++l) z[(j + u) * {lanes}u + l] = acc[u][l];",
    ]
    return [indent + line for line in body]


#: helper suffix -> how it reads input k of lane l: a block buffer h[k][lane], or the
#: rows of x (an input too wide to copy into the block).
_DENSE_READS = {"dense": "h[k * {lanes}u + l]", "dense_rows": "h[l * n_in + k]"}


def _dense_helper(dtype: str, name: str, lanes: int, kind: str) -> list[str]:
    """``static void NAME_dense``: z = h W + b for a block of samples, ``z[unit][lane]``.

    Register tiles of TILE_UNITS units x lanes samples are accumulated over the inputs:
    each weight is read once per tile and each input row once per unit, the lanes
    vectorise, and every sum keeps the single-sample order ((b + h0 w0) + h1 w1) + ...
    The units left over are done in tiles of 4, 2 and 1, each a set of independent
    sums (one unit at a time would be a chain of dependent FMAs: cls 16-64-64-10's
    10-unit output layer cost 3x more that way, measured).  Sizes are arguments, not
    constants: gcc then keeps the tile in registers (with constant sizes it unrolls
    differently and spills the tile to the stack, ~2.5x slower, measured)."""
    t, tile, zero = C_TYPES[dtype]["T"], TILE_UNITS, literal(0.0, dtype)
    h_at = _DENSE_READS[kind].format(lanes=lanes)
    lines = [
        f"static void {name}_{kind}(const {t} *h, size_t n_in, const {t} *w, const {t} *b, size_t units, {t} *z)",
        "{",
        f"    const size_t tiled = units - units % {tile}u;",
        "    size_t j, k, l, u;",
        f"    for (j = 0; j < tiled; j += {tile}u) {{",
        *_tile(t, lanes, tile, zero, "        ", h_at),
        "    }",
    ]
    rest = tile // 2
    while rest:
        lines += [f"    if (units - j >= {rest}u) {{", *_tile(t, lanes, rest, zero, "        ", h_at),
                  f"        j += {rest}u;", "    }"]
        rest //= 2
    return lines + ["}", ""]


def _dense_kinds(net: Network, unroll: str, plan: BlockPlan) -> list[str]:
    """The dense helpers the block calls (none without loop layers)."""
    loops = [_loops(layer, unroll) for layer in net.layers]
    kinds = ["dense_rows"] if loops[0] and not plan.transpose else []
    return (["dense"] if any(loops[1:]) or (loops[0] and plan.transpose) else []) + kinds


def _block_dense(layer: Dense, index: int, src: str | None, dst: str, name: str, lines: Lines) -> None:
    """``dst = src W + b`` through the shared dense helper (``src`` None: x's rows)."""
    (w, b), bias = _kernel_names(index, name), _kernel_names(index, name)[1] if layer.bias is not None else "0"
    call = f"{name}_dense(&{src}[0][0]" if src else f"{name}_dense_rows(x"
    lines.add(f"{call}, {layer.n_in}u, &{w}[0][0], {bias}, {layer.units}u, &{dst}[0][0]);")


def _block_lane_loop(lines: Lines, out: str, lanes: int, write: Callable[[Lines], list[str]]) -> None:
    """``out[j][l]`` set lane by lane from the scalar statements ``write`` adds (all of a
    lane's statements read before its outputs are stored: ``out`` may be their input)."""
    lines.add("{", "    size_t l;", f"    for (l = 0; l < {lanes}u; ++l) {{")
    inner = Lines()
    inner.level = lines.level + 2
    results = write(inner)
    lines.extend(inner)
    lines.level += 2
    lines.add(*(f"{out}[{j}][l] = {value};" for j, value in enumerate(results)))
    lines.level -= 2
    lines.add("    }", "}")


def _per_unit(layer: Layer) -> bool:
    return any(isinstance(v, tuple) for _, v in layer.activation.params)


@dataclass(frozen=True)
class _Block:
    """What every layer of one block shares."""

    dtype: str
    name: str
    unroll: str
    math: str
    lanes: int


def _block_layer(layer: Layer, index: int, src: str | None, dst: str, block: _Block, lines: Lines) -> None:
    """One layer over a block: reads ``src`` (a ``[width][lanes]`` buffer, or None: the
    rows of x) and writes ``dst[n_out][lanes]``.

    An element-wise activation is applied by one loop over units and lanes after the
    sums, in place, so its (inline) function has a single call site the compiler vectorises."""
    lang, spec = language(block.dtype, block.math, block.name, vector=True), layer.activation
    inputs = [f"{src}[{j}][l]" if src else f"x[l * {layer.n_in}u + {j}u]" for j in range(layer.n_in)]
    if _loops(layer, block.unroll):
        _block_dense(layer, index, src, dst, block.name, lines)
    elif spec.is_vector or spec.is_identity or _per_unit(layer):
        _block_lane_loop(lines, dst, block.lanes, lambda inner: emit_layer(lang, layer, index, inputs, inner))
        return
    else:
        sums = replace(layer, activation=Activation("linear"))
        _block_lane_loop(lines, dst, block.lanes, lambda inner: emit_layer(lang, sums, index, inputs, inner))
    if spec.is_vector:  # after loop sums; glu reads twice n_out
        named = [[f"{dst}[{j}][l]"] for j in range(layer.units)]
        _block_lane_loop(lines, dst, block.lanes, lambda inner: activate_statements(lang, layer, index, named, inner))
    elif not spec.is_identity:
        _activation_loop(lang, layer, dst, block.dtype, lines, block.lanes)


def _emit_block(net: Network, block: _Block, plan: BlockPlan, lines: Lines) -> None:
    """``static void NAME_block(x, y)``: ``lanes`` samples at once, every value a row of
    lanes, so the compiler vectorises across samples (transcendentals included, with
    ``math="fast"``).  Two buffers take turns as a layer's input and output; every
    input of the block is read before any output is written."""
    t, lanes, buffers = C_TYPES[block.dtype]["T"], plan.lanes, ("p0", "p1")
    writes = len(net.layers) + plan.transpose
    lines.add(f"static void {block.name}_block(const {t} *x, {t} *y)", "{")
    lines.level = 1
    lines.add(f"{t} " + ", ".join(f"{b}[{plan.width}][{lanes}]" for b in buffers[:min(writes, 2)]) + ";")
    src: str | None = None
    if plan.transpose:
        lines.add("{", "    size_t j, l;", f"    for (l = 0; l < {lanes}u; ++l) for (j = 0; j < {net.n_inputs}u; ++j) "
                  f"p0[j][l] = x[l * {net.n_inputs}u + j];", "}")
        src = "p0"
    for index, layer in enumerate(net.layers, start=1):
        dst = buffers[(index - 1 + plan.transpose) % 2]
        lines.add(f"/* {layer_comment(layer, index)}; {'loops' if _loops(layer, block.unroll) else 'unrolled'} */")
        _block_layer(layer, index, src, dst, block, lines)
        src = dst
    lines.add("{", "    size_t j, l;", f"    for (l = 0; l < {lanes}u; ++l) for (j = 0; j < {net.n_outputs}u; ++j) "
              f"y[l * {net.n_outputs}u + j] = {src}[j][l];", "}")
    lines.level = 0
    lines.add("}")


def _batch_function(net: Network, dtype: str, name: str, plan: BlockPlan) -> list[str]:
    """``NAME_batch``: whole blocks, then the rows left one at a time.  With more outputs
    than inputs per row, from the last row back: row i's outputs then overwrite only
    rows >= i of x, already read, so ``y == x`` works in place for every shape."""
    lanes, step = plan.lanes, f"(x + i * {net.n_inputs}u, y + i * {net.n_outputs}u);"
    body = [f"size_t i = 0;", f"for (; i + {lanes}u <= n; i += {lanes}u) {name}_block{step}",
            f"for (; i < n; ++i) {name}{step}"]
    if plan.backwards:
        body = ["/* from the last row back: with y == x, no row is overwritten before it is read */",
                "size_t i = n;", f"while (i % {lanes}u != 0u) {{", "    --i;", f"    {name}{step}", "}",
                "while (i > 0u) {", f"    i -= {lanes}u;", f"    {name}_block{step}", "}"]
    return [signature(net, dtype, name)[1], "{", *("    " + line for line in body), "}"]


#: Bytes added to every function's stated stack for saved registers, alignment and
#: spills (checked with gcc -fstack-usage at -O0, -O2 and -O3 by the tests).
FRAME_OVERHEAD = 512


def _scalar_locals(layer: Layer, loops: bool) -> int:
    """At most how many scalar locals one layer's statements declare (gcc -O0 gives each
    its own slot): a loop over an element-wise activation needs two; written out, a sum
    and an output per unit, and for the vector activations up to three more per unit
    and a few per layer."""
    if layer.activation.is_vector:
        return 5 * layer.units + 8
    return 4 if loops else 3 * layer.units + 4


def _materialised_weights(layer: Layer, loops: bool) -> int:
    """Weights gcc's SLP vectoriser may copy to the stack: seen for unrolled layers
    larger than ``--unroll auto`` writes (64 x 64 with ``always``: 16 KiB), never below."""
    return layer.kernel.size if isinstance(layer, Dense) and not loops and layer.kernel.size > UNROLL_MAX_WEIGHTS else 0


def stack_bytes(net: Network, dtype: str, unroll: str = "auto") -> dict[str, int]:
    """An upper bound of the stack each generated function uses, its calls included:
    ``one`` (NAME), ``scalar``, ``block`` (the dense helpers inlined or called) and
    ``batch``.  The arrays are exact; scalars and spills are bounded generously."""
    size, plan = np.dtype(dtype).itemsize, block_plan(net, dtype)
    loops = [_loops(layer, unroll) for layer in net.layers]
    arrays = sum(layer.units * (1 if layer.activation.is_identity or layer.activation.is_vector else 2)
                 for layer, looped in zip(net.layers, loops) if looped)
    gathers = sum(layer.n_in for i, layer in enumerate(net.layers) if loops[i] and i and (
        not loops[i - 1] or net.layers[i - 1].activation.is_vector))
    scalars = sum(_scalar_locals(layer, looped) + _materialised_weights(layer, looped)
                  for layer, looped in zip(net.layers, loops))
    one = (arrays + gathers + scalars) * size + 8 * 4 * len(net.layers) + FRAME_OVERHEAD
    widest_lane_loop = max(_scalar_locals(layer, looped) for layer, looped in zip(net.layers, loops))
    tile = TILE_UNITS * plan.lanes * size + FRAME_OVERHEAD if any(loops) else 0
    buffers = min(len(net.layers) + plan.transpose, 2) * plan.width * plan.lanes * size
    block = buffers + scalars * size + widest_lane_loop * 64 + 8 * 4 * len(net.layers) + FRAME_OVERHEAD + tile
    return {"one": one, "scalar": one + FRAME_OVERHEAD, "block": block, "batch": max(block, one) + FRAME_OVERHEAD}


def _note_lines(net: Network) -> list[str]:
    """``net.notes`` (what was folded in) as comment lines: quoted, a bounded number of
    short lines each."""
    out = []
    for note in net.notes:
        chunks = [note[i:i + 100] for i in range(0, min(len(note), 800), 100)] or [""]
        out += [f" * note: {quote_name(chunk)}" for chunk in chunks] + ([" *   ..."] if len(note) > 800 else [])
    return out


def _file_comment(net: Network, dtype: str, name: str, math: str, unroll: str) -> list[str]:
    plan, stack = block_plan(net, dtype), stack_bytes(net, dtype, unroll)
    maths = "inline exp/expm1/tanh/sigmoid (see c_math: <= 2 ULP)" if math == "fast" and dtype == "float32" else "libm"
    scalar = f", {name}_scalar {stack['scalar']}" if net.n_inputs == net.n_outputs == 1 else ""
    return [
        f"/* {HEADER}",
        f" * network {quote_name(net.name)}: {net.describe()}, {net.weight_dtype} weights",
        *_note_lines(net),
        f" * {name}(x, y): one sample, x[{net.n_inputs}] -> y[{net.n_outputs}], {C_TYPES[dtype]['T']}",
        f" * {name}_batch(x, y, n): n samples, row-major x[n][{net.n_inputs}] -> y[n][{net.n_outputs}],",
        f" *   in blocks of {plan.lanes} samples computed side by side (two buffers of {plan.width} x {plan.lanes} values)",
        " * In place: y may be x (the same array) in every function; other overlaps are not supported.",
        f" * Stack, at most (bytes, calls included): {name} {stack['one']}, {name}_batch {stack['batch']}{scalar}",
        f" * Math: {maths}; NaN and infinities propagate as in Keras.",
        " * Build with optimisation (-O3; -march=native to use the host's SIMD).",
        " * Reentrant: no mutable globals, no allocation.  Needs <math.h> (link with -lm). */",
    ]


def check_name(name: str) -> str:
    """``name`` if the generated functions may take it: an identifier, no keyword of C
    or C++, none of the names the generated code uses itself, and neither it nor a name
    derived from it (NAME_batch, NAME_W1...) reserved by the C99 library headers
    (see :mod:`c_names`).  Raises ValidationError saying why otherwise."""
    why = reserved_by(name) if isinstance(name, str) else None
    if why is not None:
        raise ValidationError(f"{name!r} {why}; choose another name such as predict")
    check_identifier(name, _TAKEN, _LOCALS)
    for suffix in DERIVED_SUFFIXES:
        why = reserved_by(name + suffix)
        if why is not None:
            raise ValidationError(f"name {name!r} would make {name + suffix!r}, which {why}; "
                                  "choose another name such as predict")
    return name


def usable_name(name: str) -> bool:
    """Whether :func:`check_name` accepts ``name`` (for a caller choosing a default)."""
    try:
        check_name(name)
    except ValidationError:
        return False
    return True


def emit_c(net: Network, *, dtype: str = "float32", name: str = "mlp", unroll: str = "auto",
           math: str = "fast") -> str:
    """C99 source defining ``name`` (one sample) and ``name_batch`` (row-major batch).

    ``unroll``: ``"always"`` writes every layer as the closed form, ``"never"`` writes
    Dense layers as loops over ``static const`` arrays, ``"auto"`` unrolls layers of at
    most :data:`UNROLL_MAX_WEIGHTS` weights.  ``math``: ``"fast"`` (default) uses the
    inline float32 exp/expm1/tanh/sigmoid of :mod:`c_math` (measured <= 2 ULP), ``"libm"``
    calls the C library; float64 always calls libm."""
    _check_options(name, dtype, unroll, math)
    plan = block_plan(net, dtype)
    body, arrays = Lines(), _kernel_arrays(net, dtype, name, unroll)
    body.level = 1
    _emit_body(net, dtype, name, unroll, math, body)
    block = Lines()
    _emit_block(net, _Block(dtype, name, unroll, math, plan.lanes), plan, block)
    helpers = [line for kind in _dense_kinds(net, unroll, plan) for line in _dense_helper(dtype, name, plan.lanes, kind)]
    code = Lines().add(signature(net, dtype, name)[0], "{").extend(body).add("}", "", *helpers, *str(block).splitlines(),
                                                                            "", *_batch_function(net, dtype, name, plan))
    if net.n_inputs == net.n_outputs == 1:
        t = C_TYPES[dtype]["T"]
        code.add("", signature(net, dtype, name)[2], "{", f"    {t} y;", f"    {name}(&x, &y);", "    return y;", "}")
    inline = c_math.definitions(str(code), dtype, name) if math == "fast" else []
    lines = Lines().add(*_file_comment(net, dtype, name, math, unroll), "#include <math.h>", "#include <stddef.h>")
    if inline:
        lines.add("#include <stdint.h>", "#include <string.h>", "", *inline[:-1])
    lines.add("")
    if arrays:
        lines.add("/* weights of the layers written as loops: [input][unit] (the IR kernel layout), read-only */", *arrays, "")
    return str(lines.extend(code))


def _check_options(name: str, dtype: str, unroll: str, math: str) -> None:
    check_name(name)
    if dtype not in C_TYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    if unroll not in UNROLL_MODES:
        raise ValueError(f"unroll must be one of {UNROLL_MODES}, got {unroll!r}")
    if math not in c_math.MATH_MODES:
        raise ValueError(f"math must be one of {c_math.MATH_MODES}, got {math!r}")


def emit_c_header(net: Network, *, dtype: str = "float32", name: str = "mlp", unroll: str = "auto",
                  math: str = "fast") -> str:
    """A header declaring the functions :func:`emit_c` defines (it takes the same
    options), usable from C and C++ (``extern "C"``)."""
    _check_options(name, dtype, unroll, math)
    guard = f"MLPCODEGEN_{name}_H"  # case kept: predict and PREDICT get different guards
    lines = Lines().add(*_file_comment(net, dtype, name, math, unroll), f"#ifndef {guard}", f"#define {guard}", "")
    lines.add("#include <stddef.h>", "", "#ifdef __cplusplus", 'extern "C" {', "#endif", "")
    lines.add(*(proto + ";" for proto in signature(net, dtype, name)))
    lines.add("", "#ifdef __cplusplus", "}", "#endif", "", f"#endif /* {guard} */")
    return str(lines)


def cdef(net: Network, dtype: str, name: str) -> str:
    """Declarations for cffi's ``ffi.cdef``."""
    return "\n".join(proto + ";" for proto in signature(net, dtype, name)) + "\n"


def load(net: Network, *, dtype: str = "float32", name: str = "mlp", unroll: str = "auto", math: str = "fast"):
    """Emit, compile through cffi (cached) and return a :class:`CompiledNetwork`."""
    from ..harness.cffi_build import CompiledNetwork, build_module

    module = build_module(emit_c(net, dtype=dtype, name=name, unroll=unroll, math=math), cdef(net, dtype, name))
    return CompiledNetwork(module, name, net.n_inputs, net.n_outputs, dtype)
