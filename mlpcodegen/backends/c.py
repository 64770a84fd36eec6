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

from dataclasses import replace
from typing import Callable

import numpy as np

from ..activations import REGISTRY
from ..ir import Activation, Dense, Layer, Network
from . import c_math
from ._closed_form import Language, TextOps, activate_statements, emit_layer, is_atom, layer_comment, strip_parens
from ._text import HEADER, Lines, check_identifier, float_digits, quote_name

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


def literal(value: float, dtype: str) -> str:
    """An exact C floating constant (float32 with an ``f`` suffix)."""
    return float_digits(value, dtype) + C_TYPES[dtype]["suffix"]


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

    def extremum(op: str, libm: str) -> Callable[[str, str], str]:
        # A ternary on names and literals compiles to one instruction; fmax is a call.
        return lambda a, b: f"({a} {op} {b} ? {a} : {b})" if is_atom(a) and is_atom(b) else f"{libm}{f}({a}, {b})"

    return Language(
        literal=lambda value: literal(value, dtype),
        functions=functions,
        where=where,
        max2=extremum(">", "fmax"),
        min2=extremum("<", "fmin"),
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
    mid 8-64-64-1 one sample 163 ns against 249 ns, measured at -O3 -march=native."""
    t, lang = C_TYPES[dtype]["T"], language(dtype, math, name)
    (w, b), z = _kernel_names(index, name), f"z{index}"
    source = sources[0].split("[")[0] if all(s == f"{sources[0].split('[')[0]}[{i}]" for i, s in enumerate(sources)) else None
    if source is None:  # the inputs are scalars from an unrolled layer: gather them
        source = f"v{index}"
        lines.add(f"const {t} {source}[{len(sources)}] = {{{', '.join(sources)}}};")
    zero, units = literal(0.0, dtype), f"{layer.units}u"
    start = f"{b}[j]" if layer.bias is not None else zero  # the bias first: see the docstring
    lines.add(f"{t} {z}[{layer.units}];", "{", "    size_t j, k;",
              f"    for (j = 0; j < {units}; ++j) {z}[j] = {start};",
              f"    for (k = 0; k < {layer.n_in}u; ++k) {{", f"        const {t} hk = {source}[k];",
              f"        for (j = 0; j < {units}; ++j) {z}[j] += {w}[k][j] * hk;", "    }", "}")
    if layer.activation.is_identity:
        return [f"{z}[{j}]" for j in range(layer.units)]
    if layer.activation.is_vector:
        return activate_statements(lang, layer, index, [[f"{z}[{j}]"] for j in range(layer.units)], lines)
    h = _activation_loop(lang, layer, z, f"h{index}", dtype, lines)
    return [f"{h}[{j}]" for j in range(layer.units)]


def _activation_loop(lang: Language, layer: Layer, z: str, out: str, dtype: str, lines: Lines,
                     lanes: int | None = None) -> str:
    """``out = f(z)`` for an element-wise activation without per-unit parameters: one
    loop over the units (and the lanes, in a batch block)."""
    t, spec = C_TYPES[dtype]["T"], layer.activation
    text = strip_parens(REGISTRY[spec.name].formula(TextOps(lang), "zj", spec.unit_params(0)))
    loop, shape, at = f"for (j = 0; j < {layer.n_out}u; ++j)", f"[{layer.n_out}]", "[j]"
    if lanes is not None:
        loop, shape, at = loop + f" for (l = 0; l < {lanes}u; ++l)", shape + f"[{lanes}]", "[j][l]"
    lines.add(f"{t} {out}{shape};", "{", "    size_t j" + (", l;" if lanes is not None else ";"), f"    {loop} {{",
              f"        const {t} zj = {z}{at};", f"        {out}{at} = {text};", "    }", "}")
    return out


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
    # Outputs are stored only after every input has been read: x and y may overlap.
    for j, source in enumerate(sources):
        lines.add(f"y[{j}] = {source};")


def _tile(t: str, lanes: int, tile: int, zero: str, indent: str) -> list[str]:
    """Units j .. j + tile - 1 over all lanes: ``tile`` x LANES accumulators."""
    body = [
        f"{t} acc[{tile}][{lanes}];",
        f"for (u = 0; u < {tile}u; ++u) for (l = 0; l < {lanes}u; ++l) acc[u][l] = b ? b[j + u] : {zero};",
        "for (k = 0; k < n_in; ++k) {",
        f"    for (u = 0; u < {tile}u; ++u) {{",
        f"        const {t} wk = w[k * units + j + u];",
        f"        for (l = 0; l < {lanes}u; ++l) acc[u][l] += wk * h[k * {lanes}u + l];",
        "    }",
        "}",
        f"for (u = 0; u < {tile}u; ++u) for (l = 0; l < {lanes}u; ++l) z[(j + u) * {lanes}u + l] = acc[u][l];",
    ]
    return [indent + line for line in body]


def _dense_helper(dtype: str, name: str) -> list[str]:
    """``static void NAME_dense``: z = h W + b for a block of samples, ``z[unit][lane]``.

    Register tiles of TILE_UNITS units x LANES samples are accumulated over the inputs:
    each weight is read once per tile and each input row once per unit, the lanes
    vectorise, and every sum keeps the single-sample order ((b + h0 w0) + h1 w1) + ...
    The units left over are done in tiles of 4, 2 and 1, each a set of independent
    sums (one unit at a time would be a chain of dependent FMAs: cls 16-64-64-10's
    10-unit output layer cost 3x more that way, measured).  Sizes are arguments, not
    constants: gcc then keeps the tile in registers (with constant sizes it unrolls
    differently and spills the tile to the stack, ~2.5x slower, measured)."""
    t, lanes, tile, zero = C_TYPES[dtype]["T"], LANES[dtype], TILE_UNITS, literal(0.0, dtype)
    lines = [
        f"static void {name}_dense(const {t} *h, size_t n_in, const {t} *w, const {t} *b, size_t units, {t} *z)",
        "{",
        f"    const size_t tiled = units - units % {tile}u;",
        "    size_t j, k, l, u;",
        f"    for (j = 0; j < tiled; j += {tile}u) {{",
        *_tile(t, lanes, tile, zero, "        "),
        "    }",
    ]
    rest = tile // 2
    while rest:
        lines += [f"    if (units - j >= {rest}u) {{", *_tile(t, lanes, rest, zero, "        "), f"        j += {rest}u;",
                  "    }"]
        rest //= 2
    return lines + ["}", ""]


def _block_dense(layer: Dense, index: int, src: str, dtype: str, name: str, lines: Lines) -> str:
    """``T z[units][LANES]`` from the shared dense helper."""
    t, lanes = C_TYPES[dtype]["T"], LANES[dtype]
    (w, b), z = _kernel_names(index, name), f"z{index}"
    bias = b if layer.bias is not None else "0"
    lines.add(f"{t} {z}[{layer.units}][{lanes}];",
              f"{name}_dense(&{src}[0][0], {layer.n_in}u, &{w}[0][0], {bias}, {layer.units}u, &{z}[0][0]);")
    return z


def _block_lane_loop(lines: Lines, out: str, width: int, dtype: str, write: Callable[[Lines], list[str]]) -> str:
    """``T out[width][LANES]`` set lane by lane from the scalar statements ``write`` adds."""
    t, lanes = C_TYPES[dtype]["T"], LANES[dtype]
    lines.add(f"{t} {out}[{width}][{lanes}];", "{", "    size_t l;", f"    for (l = 0; l < {lanes}u; ++l) {{")
    inner = Lines()
    inner.level = lines.level + 2
    results = write(inner)
    lines.extend(inner)
    lines.level += 2
    lines.add(*(f"{out}[{j}][l] = {value};" for j, value in enumerate(results)))
    lines.level -= 2
    lines.add("    }", "}")
    return out


def _per_unit(layer: Layer) -> bool:
    return any(isinstance(v, tuple) for _, v in layer.activation.params)


def _block_layer(layer: Layer, index: int, src: str, dtype: str, name: str, unroll: str, math: str,
                 lines: Lines) -> str:
    """One layer over a block; returns the name of its ``[n_out][LANES]`` output array.

    An element-wise activation is applied by one loop over units and lanes after the
    sums, so its (inline) function has a single call site the compiler vectorises."""
    lang, out, spec = language(dtype, math, name, vector=True), f"b{index}", layer.activation
    inputs = [f"{src}[{j}][l]" for j in range(layer.n_in)]
    if _loops(layer, unroll):
        z = _block_dense(layer, index, src, dtype, name, lines)
    elif spec.is_vector or spec.is_identity or _per_unit(layer):
        return _block_lane_loop(lines, out, layer.n_out, dtype, lambda inner: emit_layer(lang, layer, index, inputs, inner))
    else:
        sums = replace(layer, activation=Activation("linear"))
        z = _block_lane_loop(lines, f"z{index}", layer.n_out, dtype, lambda inner: emit_layer(lang, sums, index, inputs, inner))
    if spec.is_identity:
        return z
    if spec.is_vector:
        named = [[f"{z}[{j}][l]"] for j in range(layer.units)]  # glu: twice n_out
        return _block_lane_loop(lines, out, layer.n_out, dtype,
                                lambda inner: activate_statements(lang, layer, index, named, inner))
    return _activation_loop(lang, layer, z, out, dtype, lines, LANES[dtype])


def _emit_block(net: Network, dtype: str, name: str, unroll: str, math: str, lines: Lines) -> None:
    """``static void NAME_block(x, y)``: LANES samples at once.  Every value is a row of
    LANES lanes, so the compiler vectorises across samples (transcendentals included,
    with ``math="fast"``).  The block is read whole before any output is written."""
    t, lanes = C_TYPES[dtype]["T"], LANES[dtype]
    lines.add(f"static void {name}_block(const {t} *x, {t} *y)", "{")
    lines.level = 1
    lines.add(f"{t} b0[{net.n_inputs}][{lanes}];", "{", "    size_t j, l;",
              f"    for (l = 0; l < {lanes}u; ++l) for (j = 0; j < {net.n_inputs}u; ++j) "
              f"b0[j][l] = x[l * {net.n_inputs}u + j];", "}")
    src = "b0"
    for index, layer in enumerate(net.layers, start=1):
        shape = "loops" if _loops(layer, unroll) else "unrolled"
        lines.add(f"/* {layer_comment(layer, index)}; {shape} */")
        src = _block_layer(layer, index, src, dtype, name, unroll, math, lines)
    lines.add("{", "    size_t j, l;", f"    for (l = 0; l < {lanes}u; ++l) for (j = 0; j < {net.n_outputs}u; ++j) "
              f"y[l * {net.n_outputs}u + j] = {src}[j][l];", "}")
    lines.level = 0
    lines.add("}")


def block_stack_bytes(net: Network, dtype: str) -> int:
    """Stack the batch function's block needs (at most): sums and outputs of every
    layer, one ``[width][LANES]`` array each, and one register tile."""
    rows = net.n_inputs + TILE_UNITS
    for layer in net.layers:
        rows += layer.n_in + layer.n_out  # the sums (as wide as the inputs for glu) and outputs
    return rows * LANES[dtype] * np.dtype(dtype).itemsize


def _file_comment(net: Network, dtype: str, name: str, math: str) -> list[str]:
    lanes = LANES[dtype]
    maths = "inline exp/expm1/tanh/sigmoid (see c_math: <= 2 ULP)" if math == "fast" and dtype == "float32" else "libm"
    return [
        f"/* {HEADER}",
        f" * network {quote_name(net.name)}: {net.describe()}, {net.weight_dtype} weights",
        f" * {name}(x, y): one sample, x[{net.n_inputs}] -> y[{net.n_outputs}], {C_TYPES[dtype]['T']}",
        f" * {name}_batch(x, y, n): n samples, row-major x[n][{net.n_inputs}] -> y[n][{net.n_outputs}],",
        f" *   in blocks of {lanes} samples computed side by side "
        f"({block_stack_bytes(net, dtype)} bytes of stack)",
        f" * Math: {maths}.  Build with optimisation (-O3; -march=native to use the host's SIMD).",
        " * Reentrant: no mutable globals, no allocation.  Needs <math.h> (link with -lm). */",
    ]


def emit_c(net: Network, *, dtype: str = "float32", name: str = "mlp", unroll: str = "auto",
           math: str = "fast") -> str:
    """C99 source defining ``name`` (one sample) and ``name_batch`` (row-major batch).

    ``unroll``: ``"always"`` writes every layer as the closed form, ``"never"`` writes
    Dense layers as loops over ``static const`` arrays, ``"auto"`` unrolls layers of at
    most :data:`UNROLL_MAX_WEIGHTS` weights.  ``math``: ``"fast"`` (default) uses the
    inline float32 exp/expm1/tanh/sigmoid of :mod:`c_math` (measured <= 2 ULP), ``"libm"``
    calls the C library; float64 always calls libm."""
    check_identifier(name, _TAKEN, _LOCALS)
    if dtype not in C_TYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    if unroll not in UNROLL_MODES:
        raise ValueError(f"unroll must be one of {UNROLL_MODES}, got {unroll!r}")
    if math not in c_math.MATH_MODES:
        raise ValueError(f"math must be one of {c_math.MATH_MODES}, got {math!r}")
    single, batch = signature(net, dtype, name)[:2]
    body, arrays = Lines(), _kernel_arrays(net, dtype, name, unroll)
    body.level = 1
    _emit_body(net, dtype, name, unroll, math, body)
    block = Lines()
    _emit_block(net, dtype, name, unroll, math, block)
    helper = _dense_helper(dtype, name) if any(_loops(layer, unroll) for layer in net.layers) else []
    code = Lines().add(single, "{").extend(body).add("}", "", *helper, *str(block).splitlines(), "", batch, "{")
    lanes = LANES[dtype]
    code.add("    size_t i = 0;",
             f"    for (; i + {lanes}u <= n; i += {lanes}u) {name}_block(x + i * {net.n_inputs}u, y + i * {net.n_outputs}u);",
             f"    for (; i < n; ++i) {name}(x + i * {net.n_inputs}u, y + i * {net.n_outputs}u);", "}")
    if net.n_inputs == net.n_outputs == 1:
        t = C_TYPES[dtype]["T"]
        code.add("", signature(net, dtype, name)[2], "{", f"    {t} y;", f"    {name}(&x, &y);", "    return y;", "}")
    inline = c_math.definitions(str(code), dtype, name) if math == "fast" else []
    lines = Lines().add(*_file_comment(net, dtype, name, math), "#include <math.h>", "#include <stddef.h>")
    if inline:
        lines.add("#include <stdint.h>", "#include <string.h>", "", *inline[:-1])
    lines.add("")
    if arrays:
        lines.add("/* weights of the layers written as loops: [input][unit] (the IR kernel layout), read-only */", *arrays, "")
    return str(lines.extend(code))


def emit_c_header(net: Network, *, dtype: str = "float32", name: str = "mlp", unroll: str = "auto",
                  math: str = "fast") -> str:
    """A header declaring the functions :func:`emit_c` defines (it takes the same
    options; ``unroll`` does not change the declarations)."""
    del unroll
    check_identifier(name, _TAKEN, _LOCALS)
    guard = f"{name.upper()}_H"
    lines = Lines().add(*_file_comment(net, dtype, name, math), f"#ifndef {guard}", f"#define {guard}", "")
    lines.add("#include <stddef.h>", "")
    lines.add(*(proto + ";" for proto in signature(net, dtype, name)))
    lines.add("", f"#endif /* {guard} */")
    return str(lines)


def cdef(net: Network, dtype: str, name: str) -> str:
    """Declarations for cffi's ``ffi.cdef``."""
    return "\n".join(proto + ";" for proto in signature(net, dtype, name)) + "\n"



def load(net: Network, *, dtype: str = "float32", name: str = "mlp", unroll: str = "auto", math: str = "fast"):
    """Emit, compile through cffi (cached) and return a :class:`CompiledNetwork`."""
    from ..harness.cffi_build import CompiledNetwork, build_module

    module = build_module(emit_c(net, dtype=dtype, name=name, unroll=unroll, math=math), cdef(net, dtype, name))
    return CompiledNetwork(module, name, net.n_inputs, net.n_outputs, dtype)
