"""C99 backend: the network as an unrolled closed form.

Every neuron is one statement with its weights as exact literals; no loops, no weight
arrays, no globals, no allocation.  The file needs ``<math.h>`` and the freestanding
``<stddef.h>`` only, and compiles warning-free with
``gcc -std=c99 -Wall -Wextra -Wpedantic -Wconversion -Wdouble-promotion -Werror``.

>>> import numpy as np
>>> from mlpcodegen.core.ir import Network, Dense, Activation
>>> net = Network(1, (Dense(np.array([[0.5]]), np.array([0.25]), Activation("tanh")),))
>>> print(emit_c(net, dtype="float32", name="f").splitlines()[-11])
    const float h1_0 = tanhf(0.5f*x[0] + 0.25f);
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Optional, Sequence

import numpy as np

from ..core.activations import REGISTRY
from ..core.errors import ValidationError
from ..core.graph import Builder, Node
from ..core.ir import Activation, Dense, Layer, Network
from ..core.network_graph import array_of, named_values
from ..core.numeric import NUMERIC_TYPES, NumericType, numeric_type
from . import c_batch, c_math, c_softfloat
from ._closed_form import activate_statements, emit_layer, layer_comment
from ._text import HEADER, Lines, check_identifier, quote_name
from .c_batch import BLOCK_BUFFER_BYTES, BlockPlan, block_plan  # noqa: F401  (re-exported)
from .c_names import reserved_by
from .c_storage import storage as table_storage
from .printer import Language, Printed, Printer, fill, top

#: primitive -> C text over ``{a}``; ``{f}`` is the libm suffix (tanhf / tanh),
#: ``{zero}``/``{one}`` literals of the type.  sigmoid: exp(-a) overflows to inf for
#: very negative a, and 1/(1+inf) is the correct 0.
C_FUNCTIONS: dict[str, str] = {
    "abs": "fabs{f}({{a}})", "exp": "exp{f}({{a}})", "expm1": "expm1{f}({{a}})", "log": "log{f}({{a}})",
    "log1p": "log1p{f}({{a}})", "tanh": "tanh{f}({{a}})", "erf": "erf{f}({{a}})", "sqrt": "sqrt{f}({{a}})",
    "sigmoid": "({one} / ({one} + exp{f}(-{{a}})))",
    "softplus": "(log1p{f}(exp{f}(-fabs{f}({{a}}))) + fmax{f}({{a}}, {zero}))",
}

DTYPES = tuple(NUMERIC_TYPES)
#: Names a function may not take: the parameters, the libm functions used, and
#: (by pattern) the locals h1_0, z1_0, e1_0, m1, s1.
_TAKEN = frozenset({"x", "y", "n", "i", "main", "j", "k", "l", "u", "acc", "wk",
                    "memcpy", "size_t", "int32_t", "uint32_t"} | {  # <string.h>, <stdint.h> with fast math
    name + suffix for name in ("fabs", "exp", "expm1", "log", "log1p", "tanh", "erf", "sqrt", "fmax", "fmin")
    for suffix in ("", "f")})
_LOCALS = r"[a-z]\d+(_\d+)?|hk|zj"
#: Names the generated file derives from NAME (W1/B1 stand for every layer's arrays).
DERIVED_SUFFIXES = ("_batch", "_scalar", "_block", "_dense", "_dense_rows", "_gemm", "_v", "_W1", "_B1", "_vwheref",
                    "_vwhere", "_nz", "_mul") + \
    tuple(f"_{flavour}{key}{suffix}" for key in ("exp", "expm1", "tanh", "sigmoid") for flavour in c_math.FLAVOURS
          for suffix in ("f", "")) + ("_P", "_L", "_N", "_keep")


def literal(value: float, dtype: str) -> str:
    """An exact C floating constant (float32 with an ``f`` suffix)."""
    return numeric_type(dtype).c_literal(value)


def _nan_extremum(op: str, where: str) -> Callable[[Printed, Printed], str]:
    """max (``op`` ">") or min ("<") that propagates NaN from either side, as TensorFlow's
    Maximum/Minimum and Keras' relu do (C's fmax(NaN, 0) is 0, and so is a bare
    ``a > b ? a : b``).  The arguments are pure expressions: writing one twice changes
    no result (compilers compute it once)."""
    return lambda a, b: fill(where, c=f"isnan({a}) | ({a} {op} {b})", a=a, b=b)


def _nan_extremum_short(op: str, where: str) -> Callable[[Printed, Printed], str]:
    """:func:`_nan_extremum` in one comparison when ``b`` is a constant (never NaN):
    ``!(a <= b) ? a : b`` is max(a, b) with a NaN ``a`` kept, ±0 as before.  relu's isnan
    test and second compare cost 4 of its 8 instructions per unit on Cortex-M4F (sine
    1-16-16-1: 888 -> ~760 instructions); on x86-64 gcc -O3 both spellings time the same
    (bench/REGRESSION.md): one spelling for every profile."""
    negated = {">": "<=", "<": ">="}[op]
    full = _nan_extremum(op, where)
    return lambda a, b: fill(where, c=f"!({a} {negated} {b})", a=a, b=b) if getattr(b, "number", False) \
        else full(a, b)


def language(dtype: str, math: str = "libm", name: str = "mlp", vector: bool = False,
             size: bool = False) -> Language:
    """The C spelling of the graph for ``dtype``; ``math="fast"`` calls the inline
    functions of :mod:`c_math` (prefixed ``name``; ``vector``: their flavour for the
    batch block loops, ``size``: their smallest one-sample flavour) where ``dtype`` has them."""
    kind = numeric_type(dtype)
    zero, one = kind.c_literal(0.0), kind.c_literal(1.0)
    functions = {key: text.format(f=kind.math_suffix, zero=zero, one=one) for key, text in C_FUNCTIONS.items()}
    where, needs = "({c} ? {a} : {b})", {}
    if math == "fast" and c_math.has_fast(kind.name):
        functions.update(c_math.fast_functions(name, vector, size, kind.name))
        needs = c_math.fast_needs(vector, size)
        where = c_math.fast_where(name, kind.name) if vector else where
    return Language(
        literal=kind.c_literal,
        functions=functions,
        where=where,
        max2=_nan_extremum_short(">", where),
        min2=_nan_extremum_short("<", where),
        max_statement=lambda m, zs: [f"{kind.c_type} {m} = {zs[0]};"] + [f"if ({z} > {m}) {m} = {z};" for z in zs[1:]],
        declare=f"const {kind.c_type} ",
        end=";",
        needs=needs,
        comment=lambda text: f"/* {text} */",
    )


def signature(net: Network, dtype: str, name: str, profile: str = "desktop") -> list[str]:
    """The prototypes (without ``;``) the C output defines: one sample, a batch (desktop
    profile only) and, for one-input one-output networks, ``T NAME_scalar(T x)`` (no
    arrays to pass)."""
    t = numeric_type(dtype).c_type
    prototypes = [f"void {name}(const {t} *x, {t} *y)"]
    if profile == "desktop":
        prototypes.append(f"void {name}_batch(const {t} *x, {t} *y, size_t n)")
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


PROFILES = ("desktop", "embedded")
OPTIMIZE_MODES = ("speed", "size")
#: The keyword options of :func:`emit_c` / :func:`emit_c_header` (the backend registry's ``options``).
OPTIONS = ("unroll", "math", "profile", "optimize", "storage")
#: Embedded profile, ``--optimize speed``: a Dense layer of at most this many weights is
#: written out (a literal load and a multiply-add per weight: the fewest instructions,
#: about 12 bytes of flash per weight on Cortex-M4F), a larger one as tiled loops.  sine
#: 1-16-16-1 unrolled: 4.2 KB, ~760 instructions; cls 16-64-64-10 unrolled would be 88 KB.
EMBEDDED_SPEED_UNROLL_MAX_WEIGHTS = 256
#: Embedded ``--optimize size``: written out only up to this many weights (a loop costs
#: a few dozen bytes of code, a written-out weight about three times its 4 bytes).
EMBEDDED_SIZE_UNROLL_MAX_WEIGHTS = 4
#: Units summed side by side per pass of an embedded ``speed`` loop: each input is
#: loaded once per tile and the accumulators stay in FPU registers (M4F has 32).
EMBEDDED_TILE_UNITS = 8


def embedded_shape(layer: Layer, unroll: str, optimize: str, soft_tile: int = 0) -> tuple[bool, int]:
    """(loops, units per pass) of ``layer`` in the embedded profile: the choice is made
    for a scalar core (flash bytes, instructions), not by the x86 timings of
    :func:`unrolled_by_default`; ``unroll`` always/never still forces it.  ``soft_tile``
    (a core without an FPU, :func:`c_softfloat.speed_tile`): speed takes loops of that
    many units per pass, never written out unless ``unroll`` is always."""
    if not isinstance(layer, Dense) or _per_unit(layer):
        return False, 1
    if optimize == "speed" and soft_tile:
        return unroll != "always", soft_tile
    limit = EMBEDDED_SPEED_UNROLL_MAX_WEIGHTS if optimize == "speed" else EMBEDDED_SIZE_UNROLL_MAX_WEIGHTS
    loops = unroll == "never" or (unroll == "auto" and layer.kernel.size > limit)
    return loops, (EMBEDDED_TILE_UNITS if optimize == "speed" else 1)


def tiled_kernel(kernel: np.ndarray, tile: int) -> np.ndarray:
    """The kernel (IR layout [input][unit]) in the order an embedded loop reads it: for
    each pass of ``tile`` units (the last one narrower), for each input, the pass's
    units.  ``tile`` 1 is the output-major [unit][input] layout."""
    n_in, units = kernel.shape
    parts = [kernel[:, j:j + tile].reshape(-1) for j in range(0, units, tile)]
    return np.concatenate(parts) if parts else kernel.reshape(-1)


def _flat_array(name: str, values: np.ndarray, dtype: str, t: str, per_line: int, after: str = "") -> list[str]:
    """``static const T name[n] = {...};`` with ``per_line`` literals per line (``after``: a
    storage qualifier after the declarator, see c_storage)."""
    texts = [literal(v, dtype) for v in values]
    body = [", ".join(texts[i:i + per_line]) for i in range(0, len(texts), per_line)]
    return [f"static const {t} {name}[{len(texts)}]{after} = {{"] + \
           [f"    {line}" + ("," if i < len(body) - 1 else "") for i, line in enumerate(body)] + ["};"]


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


def _dense_kinds(net: Network, unroll: str, plan: BlockPlan) -> list[str]:
    """The dense helper the batch (and, rows layout, the one-sample function) calls: none
    without loop layers."""
    if not any(_loops(layer, unroll) for layer in net.layers):
        return []
    return ["gemm"] if plan.rows else ["dense"]


def _block_dense(layer: Dense, index: int, src: str | None, dst: str, name: str, plan: BlockPlan,
                 lines: Lines) -> None:
    """``dst = src W + b`` through the block's dense helper (``src`` None: x's rows)."""
    w, bias = _kernel_names(index, name)[0], _kernel_names(index, name)[1] if layer.bias is not None else "0"
    if plan.rows:
        a, lda = (f"&{src}[0][0]", f"{plan.width}u") if src else ("x", f"{layer.n_in}u")
        lines.add(f"{name}_gemm({a}, {lda}, {plan.lanes}u, {layer.n_in}u, {w}, {bias}, {layer.units}u, "
                  f"&{dst}[0][0], {plan.width}u);")
        return
    lines.add(f"{name}_dense(&{src}[0][0], {layer.n_in}u, &{w}[0][0], {bias}, {layer.units}u, &{dst}[0][0]);")


def _block_lane_loop(lines: Lines, out: Callable[[int], str], lanes: int, write: Callable[[Lines], list[str]]) -> None:
    """``out[j][l]`` set lane by lane from the scalar statements ``write`` adds (all of a
    lane's statements read before its outputs are stored: ``out`` may be their input)."""
    lines.add("{", "    size_t l;", f"    for (l = 0; l < {lanes}u; ++l) {{")
    inner = Lines()
    inner.level = lines.level + 2
    results = write(inner)
    lines.extend(inner)
    lines.level += 2
    lines.add(*(f"{out(j)} = {value};" for j, value in enumerate(results)))
    lines.level -= 2
    lines.add("    }", "}")


def _per_unit(layer: Layer) -> bool:
    return any(isinstance(v, tuple) for _, v in layer.activation.params)


def _batch_function(net: Network, dtype: str, name: str, plan: BlockPlan) -> list[str]:
    """``NAME_batch``: whole blocks, then the rows left one at a time.  With more outputs
    than inputs per row, from the last row back: row i's outputs then overwrite only
    rows >= i of x, already read, so ``y == x`` works in place for every shape."""
    lanes, step = plan.lanes, f"(x + i * {net.n_inputs}u, y + i * {net.n_outputs}u);"
    body = ["size_t i = 0;", f"for (; i + {lanes}u <= n; i += {lanes}u) {name}_block{step}",
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
    size, plan = numeric_type(dtype).np_dtype.itemsize, block_plan(net, dtype)
    loops = [_loops(layer, unroll) for layer in net.layers]
    arrays = sum(layer.units * (1 if layer.activation.is_identity or layer.activation.is_vector else 2)
                 for layer, looped in zip(net.layers, loops) if looped)
    gathers = sum(layer.n_in for i, layer in enumerate(net.layers) if loops[i] and i and (
        not loops[i - 1] or net.layers[i - 1].activation.is_vector))
    scalars = sum(_scalar_locals(layer, looped) + _materialised_weights(layer, looped)
                  for layer, looped in zip(net.layers, loops))
    tile = c_batch.tile_bytes(dtype) + FRAME_OVERHEAD if any(loops) else 0  # a dense helper's frame
    one = (arrays + gathers + scalars) * size + 8 * 4 * len(net.layers) + FRAME_OVERHEAD + (tile if plan.rows else 0)
    widest_lane_loop = max(_scalar_locals(layer, looped) for layer, looped in zip(net.layers, loops))
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


def _maths_text(dtype: str, math: str) -> str:
    """How the file computes exp/tanh/...: the inline functions and their bound ("" for libm)."""
    if math != "fast" or not c_math.has_fast(dtype):
        return ""
    return f"inline exp/expm1/tanh/sigmoid (see c_math: <= {max(c_math.ULP_BOUNDS[dtype].values())} ULP)"


def _file_comment(net: Network, dtype: str, name: str, math: str, unroll: str) -> list[str]:
    plan, stack = block_plan(net, dtype), stack_bytes(net, dtype, unroll)
    maths = _maths_text(dtype, math) or "libm"
    scalar = f", {name}_scalar {stack['scalar']}" if net.n_inputs == net.n_outputs == 1 else ""
    return [
        f"/* {HEADER}",
        f" * network {quote_name(net.name)}: {net.describe()}, {net.weight_dtype} weights",
        *_note_lines(net),
        f" * {name}(x, y): one sample, x[{net.n_inputs}] -> y[{net.n_outputs}], {numeric_type(dtype).c_type}",
        f" * {name}_batch(x, y, n): n samples, row-major x[n][{net.n_inputs}] -> y[n][{net.n_outputs}],",
        f" *   in blocks of {plan.lanes} samples computed side by side (two buffers of {plan.width} x {plan.lanes} values)"
        if not plan.rows else f" *   in blocks of {plan.lanes} samples' rows (two buffers of {plan.lanes} x {plan.width} values; "
        f"register tiles by ISA)",
        " * In place: y may be x (the same array) in every function; other overlaps are not supported.",
        f" * Stack, at most (bytes, calls included): {name} {stack['one']}, {name}_batch {stack['batch']}{scalar}",
        f" * Math: {maths}; NaN and infinities propagate as in Keras.",
        " * Build with optimisation (-O3; -march=native to use the host's SIMD).",
        " * Reentrant: no mutable globals, no allocation.  Needs <math.h> (link with -lm). */",
    ]


#: Bytes added to every embedded function's stated stack: saved core and FPU registers
#: (r4-r11, lr and s16-s31 take 100 bytes on Cortex-M4F), alignment, spills and the frames of
#: the fast-math functions when not inlined (-O0); checked with -fstack-usage by the tests.
EMBEDDED_FRAME_OVERHEAD = 256


#: A written-out layer of more weights than this may have them copied to the stack by gcc
#: -O2 (sine 1-16-16-1's 16 x 16 layer: 920 bytes on Cortex-M4F, 808 on x86-64): counted.
EMBEDDED_COPIED_WEIGHTS = 64


def embedded_stack_bytes(net: Network, dtype: str, shapes: tuple[LayerShape, ...]) -> dict[str, int]:
    """An upper bound of the stack of the embedded profile's functions, calls included:
    ``one`` (NAME) and ``scalar`` (NAME_scalar): each loop layer's sums array (the
    activation is applied in place), the gathers of scalar inputs into an array, the
    locals of the written-out statements, and :data:`EMBEDDED_FRAME_OVERHEAD`."""
    size = numeric_type(dtype).np_dtype.itemsize
    if shapes and shapes[0].table:  # the buffer, softmax's m and s, 32 bytes a layer (its activation's
        # locals and calls: at -O0 the fast-math helpers keep their own frames)
        one = (table_buffer(shapes)[0] + 2) * size + EMBEDDED_FRAME_OVERHEAD + 32 * len(shapes)
        return {"one": one, "scalar": one + 32}
    arrays = sum(shape.layer.units for shape in shapes if shape.loops)
    gathers = sum(shape.layer.n_in for i, shape in enumerate(shapes) if shape.loops and i and (
        not shapes[i - 1].loops or shapes[i - 1].layer.activation.is_vector))
    scalars = sum(_scalar_locals(shape.layer, shape.loops) + (shape.tile if shape.loops else 0) for shape in shapes)
    copies = sum(shape.layer.kernel.size for shape in shapes if not shape.loops and isinstance(shape.layer, Dense)
                 and shape.layer.kernel.size > EMBEDDED_COPIED_WEIGHTS)
    one = (arrays + gathers + scalars + copies) * size + EMBEDDED_FRAME_OVERHEAD
    return {"one": one, "scalar": one + 32}


#: Bounds of the machine code of the embedded profile on Cortex-M0+/M4F/M7 (gcc 12, -Os and
#: -O2; checked by tests/test_embedded.py): per written-out weight and unit, per loop layer
#: and per pass unit, and per call site of a fast-math function (gcc -O2 inlines each: a
#: soft-float tanh on M0+ takes ~540 bytes).
CODE_PER_WEIGHT, CODE_PER_UNIT, CODE_PER_LOOP, CODE_PER_PASS_UNIT, CODE_PER_MATH_CALL = 40, 64, 256, 48, 640
CODE_PER_SCALAR = 48
#: The table form's loop nest, softmax's loops included (measured 100-300 bytes).
CODE_TABLE = 512


#: The table form reads its shapes from memory at every unit (a few instructions more
#: per unit than per-layer loops, whose counts are constants): used from this many weights
#: per unit on.  Measured on Cortex-M4F -Os (bench/EMBEDDED.md): sine 1-16-16-1 (8.7 per
#: unit) 1,388 B and 1,867 instructions against 1,452 B and 1,712 as per-layer loops.
TABLE_MIN_WEIGHTS_PER_UNIT = 8


def table_form(shapes: tuple[LayerShape, ...]) -> bool:
    """Whether ``--optimize size`` runs the whole network as one loop nest over a layer
    table (:meth:`CRenderer._table_body`): at least two layers (the last one then reads a
    buffer, never x, and may write y even when y is x), every one an output-major loop
    layer, element-wise activations without per-unit parameters (a softmax on the last
    layer is applied to y after the nest), widths below 65536, and at least
    :data:`TABLE_MIN_WEIGHTS_PER_UNIT` weights per unit."""
    if len(shapes) < 2 or not all(shape.loops and shape.tile == 1 for shape in shapes):
        return False
    units = sum(shape.layer.units for shape in shapes)
    if sum(shape.layer.kernel.size for shape in shapes) < TABLE_MIN_WEIGHTS_PER_UNIT * units:
        return False
    if any(shape.layer.activation.is_vector for shape in shapes[:-1]):
        return False
    last = shapes[-1].layer.activation
    return (not last.is_vector or last.name == "softmax") and _table_type(shapes)[1] > 0


def _table_type(shapes: tuple[LayerShape, ...]) -> tuple[str, int]:
    """The C type of the layer table's entries and its bytes (0: too wide for a table)."""
    widest = max(max(shape.layer.n_in, shape.layer.units) for shape in shapes)
    return ("unsigned char", 1) if widest < 256 else ("unsigned short", 2) if widest < 65536 else ("", 0)


def table_width(shapes: tuple[LayerShape, ...]) -> int:
    """Values per buffer of the table form: the widest layer output but the last's (written to y)."""
    return max(shape.layer.units for shape in shapes[:-1])


def table_buffer(shapes: tuple[LayerShape, ...]) -> tuple[int, bool]:
    """(values, chained) of the table form's buffer s: each hidden layer's outputs after
    the previous one's (no pointer arithmetic between layers) when that takes no more
    than two buffers of :func:`table_width` taking turns (at most two hidden layers)."""
    hidden = sum(shape.layer.units for shape in shapes[:-1])
    width = table_width(shapes)
    return (hidden, True) if hidden <= 2 * width else (2 * width, False)


def _keep_macro(name: str) -> list[str]:
    """NAME_keep(v): an empty asm that may change ``v``, for gcc and clang, so that the
    pointer stays one register stepped in place: without it gcc -Os recomputes the blob
    pointer from the loop counts (sine 1-16-16-1: 20 more bytes of code, 4 more
    registers saved, Cortex-M4F).  Other compilers: nothing."""
    return ["", "/* an empty asm: the pointer stays one register stepped in place, not recomputed from the counts */",
            "#if defined(__GNUC__)", f'#define {name}_keep(v) __asm__("" : "+r"(v))', "#else",
            f"#define {name}_keep(v) ((void)0)", "#endif"]


def embedded_code_bytes(shapes: tuple[LayerShape, ...], math_calls: Sequence[bool]) -> int:
    """An upper bound of NAME's machine code (its inline functions included), without the
    weight arrays: generous, to hold on every core and level, for a linker map's budget.
    ``math_calls``: whether each layer's activation calls a fast-math function."""
    if shapes and shapes[0].table:  # one loop nest; an activation's math at one call site per layer at most
        return CODE_TABLE + CODE_PER_UNIT * len(shapes) + CODE_PER_MATH_CALL * sum(map(bool, math_calls))
    total = 0
    for shape, uses_math in zip(shapes, math_calls):
        layer, spec = shape.layer, shape.layer.activation
        calls = 0 if not uses_math else (layer.units if not shape.loops or spec.is_vector else 1 + (shape.tile > 1))
        if shape.loops:
            total += CODE_PER_LOOP + CODE_PER_PASS_UNIT * 2 * max(shape.tile, 1)
            total += CODE_PER_UNIT * layer.units if spec.is_vector else 0
        else:
            total += CODE_PER_WEIGHT * (layer.kernel.size if isinstance(layer, Dense) else layer.n_in)
            total += CODE_PER_UNIT * layer.units
        total += CODE_PER_MATH_CALL * calls
    return total


def weight_bytes(net: Network, dtype: str, shapes: tuple[LayerShape, ...]) -> int:
    """Bytes of the ``static const`` arrays (read-only data, flash on a microcontroller)."""
    size = numeric_type(dtype).np_dtype.itemsize
    if shapes and shapes[0].table:  # every bias stored (0 when absent), after the layer table (padded)
        blob = sum(shape.layer.kernel.size + shape.layer.units for shape in shapes) * size
        return blob + -(-(len(shapes) + 1) * _table_type(shapes)[1] // size) * size
    return sum((shape.layer.kernel.size + (shape.layer.units if shape.layer.bias is not None else 0)) * size
               for shape in shapes if shape.loops)


#: ``-mcpu`` flags a user would give for each core in the embedded file comment.
_BUILD_HINT = ("arm-none-eabi-gcc -Os|-O2 -mthumb -mcpu=cortex-m4 -mfpu=fpv4-sp-d16 -mfloat-abi=hard "
               "(or -mcpu=cortex-m0plus, -mcpu=cortex-m7 ...) -ffunction-sections -fdata-sections")


def _embedded_comment(net: Network, dtype: str, name: str, math: str, shapes: tuple[LayerShape, ...],
                      optimize: str, math_calls: Sequence[bool]) -> list[str]:
    stack, t = embedded_stack_bytes(net, dtype, shapes), numeric_type(dtype).c_type
    code = embedded_code_bytes(shapes, math_calls)
    wrapper = f"; {name}_scalar at most {CODE_PER_SCALAR} bytes of code" if net.n_inputs == net.n_outputs == 1 else ""
    fast = _maths_text(dtype, math)
    maths = f"{fast}, no libm call for them" if fast else "libm"
    scalar = f", {name}_scalar {stack['scalar']}" if net.n_inputs == net.n_outputs == 1 else ""
    shown = "; ".join(f"{shape.index}: {shape.label}" for shape in shapes)
    return [
        f"/* {HEADER}",
        f" * network {quote_name(net.name)}: {net.describe()}, {net.weight_dtype} weights",
        *_note_lines(net),
        f" * Embedded profile (optimize {optimize}): {name}(x, y): one sample, x[{net.n_inputs}] -> "
        f"y[{net.n_outputs}], {t}" + (f"; {name}_scalar(x): 1 -> 1" if scalar else ""),
        f" * Layers: {shown}",
        " * In place: y may be x (the same array); other overlaps are not supported.",
        f" * Flash: {name} {weight_bytes(net, dtype, shapes)} bytes of weights (static const arrays) and at most "
        f"{code} bytes of code{wrapper}",
        " *   (Cortex-M0+/M4F/M7, gcc -Os or -O2; measured per core: mlpcodegen size MODEL --core m0plus m4f m7)",
        f" * Stack, at most (bytes, calls included): {name} {stack['one']}{scalar}",
        f" * Math: {maths}; NaN and infinities propagate as in Keras.",
        f" * Build for the target core, e.g. {_BUILD_HINT}.",
        " * Reentrant: no mutable globals, no allocation, no library call but the math named above. */",
    ]


def check_name(name: str, suffixes: tuple[str, ...] = ()) -> str:
    """``name`` if the generated functions may take it: an identifier, no keyword of C
    or C++, none of the names the generated code uses itself, and neither it nor a name
    derived from it (NAME_batch, NAME_W1..., and NAME + each of a printer's own
    ``suffixes``) reserved by the C99 library headers (see :mod:`c_names`).  Raises
    ValidationError saying why otherwise."""
    why = reserved_by(name) if isinstance(name, str) else None
    if why is not None:
        raise ValidationError(f"{name!r} {why}; choose another name such as predict")
    check_identifier(name, _TAKEN, _LOCALS)
    for suffix in (*DERIVED_SUFFIXES, *suffixes):
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


@dataclass(frozen=True)
class LayerShape:
    """The planning step's decision for one layer, as data: written out (``unrolled``)
    or as loops over ``static const`` arrays."""

    index: int
    layer: Layer
    loops: bool
    tile: int = 0  # embedded loops: units summed per pass (1: output-major); 0: the desktop layout
    table: bool = False  # embedded size: one loop nest over a layer table runs every layer (see table_form)

    @property
    def label(self) -> str:
        if not self.loops:
            return "unrolled"
        if self.table:
            return "table, output-major"
        if not self.tile:
            return "loops"
        return "loops, output-major" if self.tile == 1 else f"loops, {self.tile} units per pass"


class CRenderer:
    """One C translation unit for one network, its options held once: the numeric type,
    the function name, ``unroll`` and ``math``.  The per-layer choice (loops or written
    out) and the batch block layout are planned once, as data (:attr:`shapes`,
    :attr:`plan`); the fast-math definitions a file needs are collected while its
    expressions are printed (:attr:`needed`), never found in the printed text."""

    def __init__(self, net: Network, *, dtype: str = "float32", name: str = "mlp", unroll: str = "auto",
                 math: str = "fast", profile: str = "desktop", optimize: str = "speed", storage: str = "plain") -> None:
        _check_options(name, dtype, unroll, math, profile, optimize)
        self.net, self.dtype, self.name, self.unroll, self.math = net, dtype, name, unroll, math
        self.profile, self.optimize = profile, optimize
        self.kind: NumericType = numeric_type(dtype)
        self.storage = table_storage(storage)  # embedded tables: plain, or in flash (AVR's PROGMEM)
        if not self.storage.plain and not self.embedded:
            raise ValueError(f"storage {storage!r} is for the embedded profile (its batch path keeps plain arrays)")
        self.storage.check(self.t)
        self.shapes = tuple(self._shape(i, layer) for i, layer in enumerate(net.layers, start=1))
        if self.embedded and optimize == "size" and table_form(self.shapes):
            self.shapes = tuple(replace(shape, table=True) for shape in self.shapes)
        self.plan = block_plan(net, dtype)
        self.needed: set = set()
        self.builder = Builder()
        self._languages = {vector: language(dtype, math, name, vector, size=profile == "embedded" and optimize == "size")
                           for vector in (False, True)}

    @property
    def t(self) -> str:
        return self.kind.c_type

    def printer(self, vector: bool = False) -> Printer:
        """A printer of this file's language (``vector``: the block loops' flavour) with
        fresh names; what it needs is collected in :attr:`needed`."""
        return Printer(self._languages[vector], self.needed)

    @property
    def embedded(self) -> bool:
        return self.profile == "embedded"

    def _shape(self, index: int, layer: Layer) -> LayerShape:
        if self.embedded:
            return LayerShape(index, layer, *embedded_shape(layer, self.unroll, self.optimize,
                                                            c_softfloat.speed_tile(self.storage, self.t)))
        return LayerShape(index, layer, _loops(layer, self.unroll))

    def _comment(self) -> list[str]:
        if self.embedded:
            return _embedded_comment(self.net, self.dtype, self.name, self.math, self.shapes, self.optimize,
                                     self.math_calls())
        return _file_comment(self.net, self.dtype, self.name, self.math, self.unroll)

    def math_calls(self) -> tuple[bool, ...]:
        """Whether each layer's activation calls a fast-math function (vector activations:
        assumed); found by printing its formula, not by looking at the printed text."""
        found = []
        for layer in self.net.layers:
            spec, needed = layer.activation, set()
            if spec.is_identity or not (self.math == "fast" and c_math.has_fast(self.dtype)):
                found.append(False)
                continue
            if not spec.is_vector:
                formula = REGISTRY[spec.name].formula(Builder(), Builder().ref("v"), spec.unit_params(0))
                Printer(self._languages[False], needed).expr(formula)
            found.append(spec.is_vector or bool(needed))
        return tuple(found)

    # -- the file
    def source(self) -> str:
        return self._embedded_source() if self.embedded else self._desktop_source()

    def _embedded_source(self) -> str:
        """One-sample function (and NAME_scalar) only: no batch blocks, no helpers."""
        body = Lines()
        body.level = 1
        if self.shapes[0].table:
            self._table_body(body)
        else:
            self._body(body)
        prototypes = signature(self.net, self.dtype, self.name, self.profile)
        code = Lines().add(prototypes[0], "{").extend(body).add("}")
        if self.net.n_inputs == self.net.n_outputs == 1:
            code.add("", prototypes[-1], "{", f"    {self.t} y;", f"    {self.name}(&x, &y);", "    return y;", "}")
        return str(self._preamble().extend(code))

    def _preamble(self) -> Lines:
        """File comment, includes, the fast-math definitions used and the weight arrays."""
        inline = c_math.definitions(self.needed, self.name, self.dtype)  # every NUMERIC_TYPES entry has them
        tiles = not self.embedded and bool(_dense_kinds(self.net, self.unroll, self.plan))
        lines = Lines().add(*self._comment(), "#include <math.h>", "#include <stddef.h>")
        skip = self.embedded and c_softfloat.skips(self.storage, self.t) and any(s.loops for s in self.shapes)
        if inline or tiles or skip:
            lines.add("#include <stdint.h>", "#include <string.h>")
        macros = self.storage.macros(self.name, self._stored_types())  # none for plain arrays
        lines.add(*(["", *macros[:-1]] if macros else []))
        if tiles:
            lines.add(*c_batch.preamble(self.name, self.t))
        if inline:
            lines.add("", *inline[:-1])
        lines.add(*(["", *c_softfloat.nonzero_lines(self.name)] if skip else []))
        lines.add("")
        arrays = self._kernel_arrays()
        if arrays:
            layout = "in the order the loops read them (see each layer)" if self.embedded else \
                f"in panels of {c_batch.PANEL} units ([panel][input][unit], the last one padded with zeros; " \
                "biases padded alike)" if self.plan.rows else "[input][unit] (the IR kernel layout)"
            lines.add(f"/* weights of the layers written as loops: {layout}, read-only */", *arrays, "")
        return lines

    def _stored_types(self) -> tuple[str, ...]:
        """The C types of the tables the embedded code reads (their read macros)."""
        if not any(shape.loops for shape in self.shapes):
            return ()
        return (self.t, _table_type(self.shapes)[0]) if self.shapes[0].table else (self.t,)

    def _read(self, c_type: str, lvalue: str) -> str:
        return self.storage.read(self.name, c_type, lvalue)

    def _desktop_source(self) -> str:
        body = Lines()
        body.level = 1
        self._body(body)
        block = Lines()
        self._block(block)
        helpers = {"gemm": lambda: c_batch.gemm_helper(self.dtype, self.name),
                   "dense": lambda: c_batch.dense_helper(self.dtype, self.name, self.plan.lanes)}
        prototypes = signature(self.net, self.dtype, self.name)
        code = Lines().add(*(line for kind in _dense_kinds(self.net, self.unroll, self.plan) for line in helpers[kind]()))
        code.add(prototypes[0], "{").extend(body).add(
            "}", "", *str(block).splitlines(), "", *_batch_function(self.net, self.dtype, self.name, self.plan))
        if self.net.n_inputs == self.net.n_outputs == 1:
            code.add("", prototypes[-1], "{", f"    {self.t} y;", f"    {self.name}(&x, &y);", "    return y;", "}")
        return str(self._preamble().extend(code))

    def header(self) -> str:
        guard = f"MLPCODEGEN_{self.name}_H"  # case kept: predict and PREDICT get different guards
        lines = Lines().add(*self._comment(), f"#ifndef {guard}", f"#define {guard}", "")
        lines.add("#include <stddef.h>", "", "#ifdef __cplusplus", 'extern "C" {', "#endif", "")
        lines.add(*(proto + ";" for proto in signature(self.net, self.dtype, self.name, self.profile)))
        lines.add("", "#ifdef __cplusplus", "}", "#endif", "", f"#endif /* {guard} */")
        return str(lines)

    def _kernel_arrays(self) -> list[str]:
        """Declarations of every loop layer's kernel (and bias): shared by the one-sample
        function and the batch block."""
        out: list[str] = []
        if self.shapes[0].table:
            return self._table_arrays()
        for shape in self.shapes:
            if shape.loops and shape.tile:
                w, b = _kernel_names(shape.index, self.name)
                after = self.storage.after_declarator(self.name)
                out += _flat_array(w, tiled_kernel(shape.layer.kernel, shape.tile), self.dtype, self.t,
                                   max(4, min(16, shape.layer.n_in * shape.tile)), after)
                if shape.layer.bias is not None:
                    out += _flat_array(b, shape.layer.bias, self.dtype, self.t, 16, after)
            elif shape.loops and self.plan.rows:  # packed for NAME_gemm
                w, b = _kernel_names(shape.index, self.name)
                after = self.storage.after_declarator(self.name)
                out += _flat_array(w, c_batch.packed_kernel(shape.layer.kernel), self.dtype, self.t, c_batch.PANEL,
                                   after)
                if shape.layer.bias is not None:
                    out += _flat_array(b, c_batch.packed_bias(shape.layer.bias), self.dtype, self.t, c_batch.PANEL,
                                       after)
            elif shape.loops:
                w, b = _kernel_names(shape.index, self.name)
                out += _array(w, shape.layer.kernel, self.dtype, self.t)
                if shape.layer.bias is not None:
                    out += _array(b, shape.layer.bias, self.dtype, self.t)
        return out

    # -- NAME(x, y): one sample
    def _body(self, lines: Lines) -> None:
        printer = self.printer()
        sources: list[Node] = [self.builder.item("x", i) for i in range(self.net.n_inputs)]
        for shape in self.shapes:
            lines.add(f"/* {layer_comment(shape.layer, shape.index)}; {shape.label} */")
            if shape.loops and shape.tile:
                sources = self._tiled_layer(shape, sources, printer, lines)
            elif shape.loops:
                sources = self._loop_layer(shape.layer, shape.index, sources, printer, lines)
            else:
                sources = emit_layer(printer, self.builder, shape.layer, shape.index, sources, lines)
        if array_of(sources) == "y":  # an embedded loop layer wrote y itself
            return
        # Outputs are stored only after every input has been read: y may be x.
        for j, source in enumerate(sources):
            lines.add(f"y[{j}] = {printer.expr(source)};")

    # -- NAME(x, y) as one loop nest over a layer table (optimize size)
    def _activation_kinds(self) -> list[Optional[str]]:
        """Per layer, the C text of its element-wise activation applied to ``a`` (None:
        identity, or the last layer's softmax, applied after the loop nest)."""
        kinds: list[Optional[str]] = []
        for shape in self.shapes:
            spec = shape.layer.activation
            if spec.is_identity or spec.is_vector:
                kinds.append(None)
                continue
            formula = REGISTRY[spec.name].formula(self.builder, self.builder.ref("a"), spec.unit_params(0))
            kinds.append(top(self.printer().expr(formula)))
        return kinds

    def _table_arrays(self) -> list[str]:
        """The layer table (the inputs of layer 1, then the units of every layer) and the
        weight blob (per layer, per unit: the bias, then the unit's weights in the order its
        sum reads them), one object: the code loads one address for both."""
        parts = []
        for shape in self.shapes:
            layer = shape.layer
            bias = layer.bias if layer.bias is not None else np.zeros(layer.units)
            parts.append(np.concatenate([bias[:, None], layer.kernel.T], axis=1).reshape(-1))
        values = np.concatenate(parts)
        blob = _flat_array("P", values, self.dtype, self.t, 16)[1:-1]  # the literal lines
        entries = [self.shapes[0].layer.n_in] + [shape.layer.units for shape in self.shapes]
        struct = f"struct {{ {_table_type(self.shapes)[0]} L[{len(entries)}]; {self.t} P[{len(values)}]; }}"
        return [f"static const {struct} {self.name}_N{self.storage.after_declarator(self.name)} = {{",
                f"    {{{', '.join(map(str, entries))}}}, /* L: the inputs of layer 1, then each layer's units */",
                "    { /* P: per layer, per unit: the bias, then its weights in the order the sum reads them */",
                *("    " + line for line in blob), "    }", "};", *_keep_macro(self.name)]

    def _table_conditions(self) -> list[tuple[str, str]]:
        """(condition on l, the layers left, or "" for every layer; activation text) per
        distinct element-wise activation of the nest."""
        n, found = len(self.shapes), {}
        for i, kind in enumerate(self._activation_kinds()):
            if kind is not None:
                found.setdefault(kind, []).append(n - i)
        out = []
        for kind, left in found.items():
            if len(left) == n:
                out.append(("", kind))
            elif left == list(range(n, 1, -1)):
                out.append(("l != 1u", kind))
            else:
                out.append((" || ".join(f"l == {v}u" for v in left), kind))
        return out

    def _table_body(self, lines: Lines) -> None:
        """Every layer by one loop nest reading the table: each sum in a register from the
        bias on, ((b + w0 h0) + w1 h1) + ..., as the output-major loops; one pointer walks
        the blob, count-down loops, the outputs of a layer follow the previous one's in s
        (or two halves take turns when that is smaller), and the last layer writes y (it
        reads a buffer, never x: y may be x).  sine 1-16-16-1 on Cortex-M4F -Os: 100
        bytes of code, 1,867 instructions."""
        t, name, index_type = self.t, self.name, _table_type(self.shapes)[0]
        floats, chained = table_buffer(self.shapes)
        first, last = self.shapes[0].index, self.shapes[-1].index
        apply = [f"            {'if (' + cond + ') ' if cond else ''}a = {text};"
                 for cond, text in self._table_conditions()]
        width = table_width(self.shapes)
        turn = "o = z;" if chained else f"o = o == s ? s + {width}u : s;"
        lines.add(f"/* layers {first}-{last}: one loop nest over {name}_N, output-major */",
                  f"{t} s[{floats}];", f"const {t} *w = {name}_N.P, *h = x;",
                  f"const {_table_type(self.shapes)[0]} *t = {name}_N.L;", f"{t} *o = s;",
                  f"unsigned l = {len(self.shapes)}u; /* layers left */",
                  "do {", f"    unsigned j = {self._read(index_type, 't[1]')};", f"    {t} *z = l == 1u ? y : o;",
                  "    do {", f"        {t} a = {self._read(t, '*w++')};", f"        const {t} *p = h;",
                  f"        unsigned k = {self._read(index_type, 't[0]')}; "
                  "/* read at every unit: a register fewer to save */",
                  f"        {c_softfloat.table_step(name, self._read(t, '*w'))}"
                  if c_softfloat.skips(self.storage, t) else
                  f"        do {{ a += {self._read(t, '*w++')} * *p++; {name}_keep(w); }} while (--k); "
                  "/* 5 instructions a weight on M4F */",
                  *(line[4:] for line in apply),
                  "        *z++ = a;", f"        {name}_keep(z);", "    } while (--j);",
                  "    h = o;", f"    {turn}", "    ++t;", "} while (--l);")
        if self.shapes[-1].layer.activation.name == "softmax":
            self._softmax_loops("y", self.shapes[-1].layer.units, lines)

    def _loop_layer(self, layer: Dense, index: int, sources: list[Node], printer: Printer,
                    lines: Lines) -> list[Node]:
        """z = b + h W as loops over an input-major ``static const`` kernel (the IR's
        layout).  The inner loop runs over units: independent sums the compiler vectorises
        without reordering any sum, each z[j] = ((b[j] + h0 w0j) + h1 w1j) + ...  Starting
        from the bias (not adding it last) lets gcc keep the sums in registers across k:
        mid 8-64-64-1 one sample 163 ns against 249 ns, measured at -O3 -march=native.
        The activation writes a second array: in place, cls 16-64-64-10 took 2x longer
        (gcc then reloads the sums), measured."""
        t, b = self.t, self.builder
        (w, bias), z = _kernel_names(index, self.name), f"z{index}"
        source = array_of(sources)
        if source is None:  # the inputs are scalars from an unrolled layer: gather them
            source = f"v{index}"
            lines.add(f"const {t} {source}[{len(sources)}] = {{{', '.join(printer.expr(s) for s in sources)}}};")
        units = f"{layer.units}u"
        start = f"{bias}[j]" if layer.bias is not None else literal(0.0, self.dtype)  # the bias first: see above
        if self.plan.rows:  # packed weights: one row through the batch's helper (the same sums, same order)
            lines.add(f"{t} {z}[{layer.units}];", f"{self.name}_gemm({source}, {layer.n_in}u, 1u, {layer.n_in}u, {w}, "
                      f"{bias if layer.bias is not None else '0'}, {units}, {z}, {units});")
        else:
            lines.add(f"{t} {z}[{layer.units}];", "{", "    size_t j, k;",
                      f"    for (j = 0; j < {units}; ++j) {z}[j] = {start};",
                      f"    for (k = 0; k < {layer.n_in}u; ++k) {{", f"        const {t} hk = {source}[k];",
                      f"        for (j = 0; j < {units}; ++j) {z}[j] += {w}[k][j] * hk;", "    }", "}")
        sums = [b.item(z, j) for j in range(layer.units)]
        if layer.activation.is_vector:
            return activate_statements(printer, b, layer, index, named_values(b, index, sums), lines)
        if not layer.activation.is_identity:
            h = f"h{index}"
            lines.add(f"{t} {h}[{layer.units}];")
            self._activation_loop(layer, z, lines, out=h)
            z = h
        return [b.item(z, j) for j in range(layer.units)]

    def _tiled_layer(self, shape: LayerShape, sources: list[Node], printer: Printer, lines: Lines) -> list[Node]:
        """Embedded loops: z = b + h W, ``shape.tile`` units per pass, each sum in a local
        the compiler keeps in a register (the desktop loop's z[j] += ... is a load and a
        store per multiply-add on a scalar core), summed in the order
        ((b + h0 w0) + h1 w1) + ...; one pointer walks the kernel in its stored order.
        Output-major passes (tile 1) apply an element-wise activation to the sum at once."""
        layer, index, b = shape.layer, shape.index, self.builder
        source, z = array_of(sources), f"z{index}"
        if source is None:  # the inputs are scalars from an unrolled layer: gather them
            source = f"v{index}"
            lines.add(f"const {self.t} {source}[{len(sources)}] = {{{', '.join(printer.expr(s) for s in sources)}}};")
        fused = shape.tile == 1 and not layer.activation.is_vector
        full = layer.units - layer.units % shape.tile
        softmax_loops = layer.activation.name == "softmax" and self.optimize == "size"
        # The last layer writes y itself when it reads only locals (not x: y may be x) and
        # needs no statements after the loops: no copy of the sums, no array on the stack.
        if index == len(self.net.layers) > 1 and source != "x" and (softmax_loops or not layer.activation.is_vector):
            z = "y"
        else:
            lines.add(f"{self.t} {z}[{layer.units}];")
        lines.add("{")
        lines.level += 1
        lines.add(f"const {self.t} *w = {_kernel_names(index, self.name)[0]};",
                  "size_t " + ("j, k;" if full else "k;"))
        if full:
            step = "++j" if shape.tile == 1 else f"j += {shape.tile}u"
            lines.add(f"for (j = 0; j < {full}u; {step}) {{")
            self._pass(shape, source, z, "j", shape.tile, fused, lines)
            lines.add("}")
        if layer.units > full:
            lines.add("{")
            self._pass(shape, source, z, f"{full}u", layer.units - full, fused, lines)
            lines.add("}")
        lines.level -= 1
        lines.add("}")
        sums = [b.item(z, j) for j in range(layer.units)]
        if softmax_loops:
            self._softmax_loops(z, layer.units, lines)
            return sums
        if layer.activation.is_vector:
            return activate_statements(printer, b, layer, index, named_values(b, index, sums), lines)
        if not fused and not layer.activation.is_identity:
            self._activation_loop(layer, z, lines)
        return sums

    def _softmax_loops(self, z: str, units: int, lines: Lines) -> None:
        """Softmax over ``z`` in place as loops (``--optimize size``: one exp call site
        instead of one per unit): the same operations in the same order as the graph's
        statements (max by ``>``, exp(z - max), the sum from the first term on (0 + e0 is
        e0 exactly), each quotient), so the same bits; the sum in the exp loop (14 bytes less);
        with ``--math fast`` the exp for non-positive arguments (c_math's "n" flavour: 60
        bytes less on Cortex-M4F, the same bits)."""
        b, t = self.builder, self.t
        argument = b.sum([b.term(b.ref("zj")), b.term(b.ref("m"), negative=True)])
        if self.math == "fast" and self.dtype == "float32":  # zj - m <= 0: the smaller exp, same bits
            template, need = c_math.nonpositive_exp(self.name)
            exp = template.format(a=top(self.printer().expr(argument)))
            self.needed.add(need)
        else:
            exp = top(self.printer().expr(b.call("exp", argument)))
        zero = literal(0.0, self.dtype)
        lines.add("{", "    size_t j;", f"    {t} m = {z}[0], s = {zero};",
                  f"    for (j = 1; j < {units}u; ++j) if ({z}[j] > m) m = {z}[j];",
                  f"    for (j = 0; j < {units}u; ++j) {{", f"        const {t} zj = {z}[j];", f"        {z}[j] = {exp};",
                  f"        s += {z}[j];", "    }",
                  f"    for (j = 0; j < {units}u; ++j) {z}[j] = {z}[j] / s;", "}")

    def _pass(self, shape: LayerShape, source: str, z: str, j: str, width: int, fused: bool, lines: Lines) -> None:
        """One pass of an embedded loop: ``width`` sums from unit ``j`` on, over every
        input, into ``z``."""
        layer, t = shape.layer, self.t
        at = [j if u == 0 else f"{j} + {u}u" for u in range(width)]
        bias = _kernel_names(shape.index, self.name)[1]
        starts = [self._read(t, f"{bias}[{a}]") if layer.bias is not None else literal(0.0, self.dtype) for a in at]
        lines.level += 1
        lines.add(f"{t} " + ", ".join(f"a{u} = {start}" for u, start in enumerate(starts)) + ";",
                  f"for (k = 0; k < {layer.n_in}u; ++k) {{", f"    const {t} hk = {source}[k];")
        soft = c_softfloat.skips(self.storage, t)  # no FPU: zero inputs skipped, NAME_mul
        products = [c_softfloat.pass_product(self.name, f"a{u}", self._read(t, f"w[{u}]")) if soft else
                    f"    a{u} += {self._read(t, f'w[{u}]')} * hk;" for u in range(width)]
        lines.add(*(c_softfloat.pass_products(self.name, products) if soft else products),
                  f"    w += {width};", "}")
        for u, a in enumerate(at):
            value = f"a{u}"
            if fused and not layer.activation.is_identity:
                spec = layer.activation
                formula = REGISTRY[spec.name].formula(self.builder, self.builder.ref(value), spec.unit_params(0))
                value = top(self.printer().expr(formula))
            lines.add(f"{z}[{a}] = {value};")
        lines.level -= 1

    def _activation_loop(self, layer: Layer, z: str, lines: Lines, lanes: Optional[int] = None,
                         out: Optional[str] = None, rows: bool = False) -> None:
        """``out = f(z)`` (default: in place) for an element-wise activation without per-unit
        parameters: one loop over the units (and the lanes, in a batch block, with the
        block flavour of the fast functions)."""
        spec = layer.activation
        formula = REGISTRY[spec.name].formula(self.builder, self.builder.ref("zj"), spec.unit_params(0))
        text = top(self.printer(vector=lanes is not None).expr(formula))
        loop, at = f"for (j = 0; j < {layer.n_out}u; ++j)", "[j]"
        if lanes is not None and rows:  # rows layout: a sample's units side by side
            loop, at = f"for (l = 0; l < {lanes}u; ++l) " + loop, "[l][j]"
        elif lanes is not None:
            loop, at = loop + f" for (l = 0; l < {lanes}u; ++l)", "[j][l]"
        lines.add("{", "    size_t j" + (", l;" if lanes is not None else ";"), f"    {loop} {{",
                  f"        const {self.t} zj = {z}{at};", f"        {out or z}{at} = {text};", "    }", "}")

    # -- NAME_block: a block of samples side by side
    def _block(self, lines: Lines) -> None:
        """``static void NAME_block(x, y)``: ``lanes`` samples at once.  Lanes layout: every
        value a row of lanes, so the compiler vectorises across samples (transcendentals
        included, with ``math="fast"``); rows layout: each sample's values a row (wide
        networks: see :mod:`c_batch`).  Two buffers take turns as a layer's input and
        output; every input of the block is read before any output is written."""
        net, plan, t, buffers = self.net, self.plan, self.t, ("p0", "p1")
        lanes, writes = plan.lanes, len(net.layers) + plan.transpose
        shape = f"[{lanes}][{plan.width}]" if plan.rows else f"[{plan.width}][{lanes}]"
        lines.add(*c_batch.block_attributes(net), f"static void {self.name}_block(const {t} *x, {t} *y)", "{")
        lines.level = 1
        lines.add(f"{t} " + ", ".join(f"{b}{shape}" for b in buffers[:min(writes, 2)]) + ";")
        src: Optional[str] = None
        if plan.transpose:
            lines.add("{", "    size_t j, l;", f"    for (l = 0; l < {lanes}u; ++l) for (j = 0; j < {net.n_inputs}u; ++j) "
                      f"p0[j][l] = x[l * {net.n_inputs}u + j];", "}")
            src = "p0"
        for layer_shape in self.shapes:
            dst = buffers[(layer_shape.index - 1 + plan.transpose) % 2]
            lines.add(f"/* {layer_comment(layer_shape.layer, layer_shape.index)}; {layer_shape.label} */")
            self._block_layer(layer_shape, src, dst, lines)
            src = dst
        lines.add("{", "    size_t j, l;", f"    for (l = 0; l < {lanes}u; ++l) for (j = 0; j < {net.n_outputs}u; ++j) "
                  f"y[l * {net.n_outputs}u + j] = {self._at(src, 'j')};", "}")
        lines.level = 0
        lines.add("}")

    def _at(self, buffer: str, j: object) -> str:
        """Value ``j`` of lane ``l`` in a block buffer, in the plan's layout."""
        return f"{buffer}[l][{j}]" if self.plan.rows else f"{buffer}[{j}][l]"

    def _block_layer(self, shape: LayerShape, src: Optional[str], dst: str, lines: Lines) -> None:
        """One layer over a block: reads ``src`` (a block buffer, or None: the rows of x)
        and writes ``dst``'s first n_out values of every lane.

        An element-wise activation is applied by one loop over units and lanes after the
        sums, in place, so its (inline) function has a single call site the compiler vectorises."""
        layer, index, b, spec = shape.layer, shape.index, self.builder, shape.layer.activation
        inputs = [b.ref(self._at(src, j) if src else f"x[l * {layer.n_in}u + {j}u]") for j in range(layer.n_in)]
        if shape.loops:
            _block_dense(layer, index, src, dst, self.name, self.plan, lines)
        elif spec.is_vector or spec.is_identity or _per_unit(layer):
            self._lane_loop(lines, dst, lambda p, inner: emit_layer(p, b, layer, index, inputs, inner))
            return
        else:
            sums = replace(layer, activation=Activation("linear"))
            self._lane_loop(lines, dst, lambda p, inner: emit_layer(p, b, sums, index, inputs, inner))
        if spec.is_vector:  # after loop sums; glu reads twice n_out
            named = named_values(b, index, [b.ref(self._at(dst, j)) for j in range(layer.units)])
            self._lane_loop(lines, dst, lambda p, inner: activate_statements(p, b, layer, index, named, inner))
        elif not spec.is_identity:
            self._activation_loop(layer, dst, lines, self.plan.lanes, rows=self.plan.rows)

    def _lane_loop(self, lines: Lines, out: str, write: Callable[[Printer, Lines], list[Node]]) -> None:
        """``out[j][l]`` set lane by lane from the statements ``write`` prints (its own
        printer: each lane loop is a C block, its names are not seen outside)."""
        printer = self.printer(vector=True)
        _block_lane_loop(lines, lambda j: self._at(out, j), self.plan.lanes,
                         lambda inner: [printer.expr(n) for n in write(printer, inner)])


def emit_c(net: Network, *, dtype: str = "float32", name: str = "mlp", unroll: str = "auto",
           math: str = "fast", profile: str = "desktop", optimize: str = "speed", storage: str = "plain") -> str:
    """C99 source defining ``name`` (one sample) and ``name_batch`` (row-major batch).

    ``profile="embedded"``: for microcontrollers: the one-sample function (and
    ``name_scalar``) only, layer shapes chosen for a scalar core by ``optimize``
    (``"speed"``: fewest instructions, ``"size"``: fewest flash bytes; see
    :func:`embedded_shape`), loops that keep their sums in registers, and a file comment
    stating the weights' flash and each function's stack.  ``optimize`` is ignored by the
    desktop profile.

    ``unroll``: ``"always"`` writes every layer as the closed form, ``"never"`` writes
    Dense layers as loops over ``static const`` arrays, ``"auto"`` unrolls layers of at
    most :data:`UNROLL_MAX_WEIGHTS` weights.  ``math``: ``"fast"`` (default) uses the
    inline float32 or float64 exp/expm1/tanh/sigmoid of :mod:`c_math` (measured <= 2 and
    <= 3 ULP), ``"libm"`` calls the C library."""
    return CRenderer(net, dtype=dtype, name=name, unroll=unroll, math=math, profile=profile,
                     optimize=optimize, storage=storage).source()


def _check_options(name: str, dtype: str, unroll: str, math: str, profile: str = "desktop",
                   optimize: str = "speed") -> None:
    check_name(name)
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    if optimize not in OPTIMIZE_MODES:
        raise ValueError(f"optimize must be one of {OPTIMIZE_MODES}, got {optimize!r}")
    if dtype not in NUMERIC_TYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    if unroll not in UNROLL_MODES:
        raise ValueError(f"unroll must be one of {UNROLL_MODES}, got {unroll!r}")
    if math not in c_math.MATH_MODES:
        raise ValueError(f"math must be one of {c_math.MATH_MODES}, got {math!r}")


def emit_c_header(net: Network, *, dtype: str = "float32", name: str = "mlp", unroll: str = "auto",
                  math: str = "fast", profile: str = "desktop", optimize: str = "speed", storage: str = "plain") -> str:
    """A header declaring the functions :func:`emit_c` defines (it takes the same
    options), usable from C and C++ (``extern "C"``)."""
    return CRenderer(net, dtype=dtype, name=name, unroll=unroll, math=math, profile=profile,
                     optimize=optimize, storage=storage).header()


def cdef(net: Network, dtype: str, name: str) -> str:
    """Declarations for cffi's ``ffi.cdef``."""
    return "\n".join(proto + ";" for proto in signature(net, dtype, name)) + "\n"
