"""C99 backend: the renderer, and the backend's public entry (:func:`emit_c`,
:func:`emit_c_header`, :func:`cdef`, and the names of its helper modules importable from
here as before).

:class:`CRenderer` writes one translation unit from the decisions the other modules make:
:mod:`.c_language` (how C spells the graph, literals, the prototypes, which names a
function may take), :mod:`.c_policy` (per layer: written out or loops, tiles, the
embedded table form), :mod:`.c_estimates` (the stack, code and flash bounds its file
comment states).  Written out, every neuron is one statement with its weights as exact
literals; as loops, ``static const`` arrays; never globals that change, never allocation.  The file needs ``<math.h>`` and the freestanding
``<stddef.h>`` only, and compiles warning-free with
``gcc -std=c99 -Wall -Wextra -Wpedantic -Wconversion -Wdouble-promotion -Werror``.

>>> import numpy as np
>>> from mlpcodegen.core.ir import Network, Dense, Activation
>>> net = Network(1, (Dense(np.array([[0.5]]), np.array([0.25]), Activation("tanh")),))
>>> print(emit_c(net, dtype="float32", name="f").splitlines()[-11])
    const float h1_0 = tanhf(0.5f*x[0] + 0.25f);
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable, Optional, Sequence

import numpy as np

from ..core.activations import REGISTRY
from ..core.graph import Builder, Node
from ..core.ir import Activation, Dense, Layer, Network
from ..core.network_graph import array_of, named_values
from ..core.numeric import NUMERIC_TYPES, NumericType, numeric_type
from . import c_batch, c_math, c_softfloat
from ._closed_form import activate_statements, emit_layer, layer_comment
from ._text import HEADER, Lines, quote_name
from .c_batch import BlockPlan, block_plan
from .c_estimates import CODE_PER_SCALAR, embedded_code_bytes, embedded_stack_bytes, stack_bytes, weight_bytes
from .c_language import DTYPES, check_name, language, literal, signature
from .c_policy import (LayerShape, OPTIMIZE_MODES, PROFILES, UNROLL_MODES, _dense_kinds, _loops, _per_unit, _table_type,
                       embedded_shape, table_buffer, table_form, table_width, tiled_kernel)
from .c_storage import storage as table_storage
from .printer import Printer, top

#: the helper modules' public names, importable from here as before the split
from .c_language import C_FUNCTIONS, DERIVED_SUFFIXES, usable_name  # noqa: F401  (re-exported)
from .c_policy import OPTIONS, unrolled_by_default  # noqa: F401  (re-exported)
from .c_estimates import FRAME_OVERHEAD  # noqa: F401  (re-exported)
from .c_batch import BLOCK_BUFFER_BYTES  # noqa: F401  (re-exported)


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


def _block_dense(layer: Dense, index: int, src: str | None, dst: str, name: str, plan: BlockPlan,
                 lines: Lines) -> None:
    """``dst = src W + b`` through the block's dense helper (``src`` None: x's rows)."""
    w, bias = _kernel_names(index, name)[0], _kernel_names(index, name)[1] if layer.bias is not None else "0"
    if plan.rows:
        a, lda = (f"&{src}[0][0]", f"{plan.width}u") if src else ("x", f"{layer.n_in}u")
        lines.add(f"{name}_gemm({a}, {lda}, rows, {layer.n_in}u, {w}, {bias}, {layer.units}u, "
                  f"&{dst}[0][0], {plan.width}u);")
        return
    lines.add(f"{name}_dense(&{src}[0][0], {layer.n_in}u, &{w}[0][0], {bias}, {layer.units}u, &{dst}[0][0]);")


def _count(lanes: "int | str") -> str:
    """A block's samples in C: a constant (lanes layout) or the rows function's ``rows``."""
    return lanes if isinstance(lanes, str) else f"{lanes}u"


def _block_lane_loop(lines: Lines, out: Callable[[int], str], lanes: "int | str",
                     write: Callable[[Lines], list[str]]) -> None:
    """``out[j][l]`` set lane by lane from the scalar statements ``write`` adds (all of a
    lane's statements read before its outputs are stored: ``out`` may be their input)."""
    lines.add("{", "    size_t l;", f"    for (l = 0; l < {_count(lanes)}; ++l) {{")
    inner = Lines()
    inner.level = lines.level + 2
    results = write(inner)
    lines.extend(inner)
    lines.level += 2
    lines.add(*(f"{out(j)} = {value};" for j, value in enumerate(results)))
    lines.level -= 2
    lines.add("    }", "}")


def _work_function(net: Network, dtype: str, name: str, plan: BlockPlan) -> list[str]:
    """``NAME_batch_ws`` (rows layout): blocks of :func:`~.c_batch.work_rows` rows in the
    caller's workspace, the last block what is left (the rows function takes any count:
    each row's sums are the same whatever the block).  Backwards as ``NAME_batch`` when
    there are more outputs than inputs (y may be x)."""
    t, width, rows = numeric_type(dtype).c_type, plan.width, c_batch.work_rows(net, dtype)
    at = f"x + i * {net.n_inputs}u, y + i * {net.n_outputs}u"
    buffers = f"{t} (*p0)[{width}] = ({t} (*)[{width}])work" + (", (*p1)[{width}] = p0 + {rows}u".format(
        width=width, rows=rows) if len(net.layers) > 1 else "")
    call = f"{name}_rows({at}, count, p0" + (", p1);" if len(net.layers) > 1 else ");")
    if plan.backwards:
        body = ["/* from the last row back: with y == x, no row is overwritten before it is read */",
                "size_t i = n;", "while (i > 0u) {",
                f"    const size_t count = i % {rows}u != 0u ? i % {rows}u : {rows}u;", "    i -= count;",
                f"    {call}", "}"]
    else:
        body = ["size_t i = 0;", "while (i < n) {", f"    const size_t count = n - i < {rows}u ? n - i : {rows}u;",
                f"    {call}", "    i += count;", "}"]
    return [*work_macro(net, dtype, name), signature(net, dtype, name)[2], "{", f"    {buffers};",
            *("    " + line for line in body), "}"]


def work_macro(net: Network, dtype: str, name: str) -> list[str]:
    """``#define NAME_BATCH_WORK``: the bytes of ``NAME_batch_ws``'s workspace (none
    without that entry); the header and the source define it alike."""
    size = c_batch.work_bytes(net, dtype)
    return [f"#define {name}_BATCH_WORK ((size_t){size})"] if size else []


#: The rows left after the whole lanes blocks go through one block (its other lanes zeros; a
#: row's bits do not depend on its lane) from lanes / TAIL_BLOCK_ROWS of them on, else one at
#: a time: 10-16-8-1 tanh (AVX2), a block of 32 rows ~0.6 us, one row through NAME ~0.2 us
#: (10,000 rows leave 16: 1.5% of the batch).
TAIL_BLOCK_ROWS = 8


def _batch_function(net: Network, dtype: str, name: str, plan: BlockPlan) -> list[str]:
    """``NAME_batch``: whole blocks, then the rows left (lanes layout: as one more block from
    lanes / TAIL_BLOCK_ROWS of them on), else one at a time.  With more outputs than inputs
    per row, from the last row back: row i's outputs then overwrite only rows >= i of x,
    already read, so ``y == x`` works in place for every shape."""
    lanes, at = plan.lanes, f"x + i * {net.n_inputs}u, y + i * {net.n_outputs}u"
    block, count = f"{name}_block({at}{'' if plan.rows else f', {lanes}u'});", "" if plan.rows else ", n - i"
    body = ["size_t i = 0;", f"for (; i + {lanes}u <= n; i += {lanes}u) {block}", f"for (; i < n; ++i) {name}({at});"]
    if not plan.rows:
        body[2] = (f"if (n - i >= {max(1, lanes // TAIL_BLOCK_ROWS)}u) {name}_block({at}{count});\n"
                   f"else {body[2]}")
    if plan.backwards:
        body = ["/* from the last row back: with y == x, no row is overwritten before it is read */",
                "size_t i = n;", f"while (i % {lanes}u != 0u) {{", "    --i;", f"    {name}({at});", "}",
                "while (i > 0u) {", f"    i -= {lanes}u;", f"    {block}", "}"]
    out = [signature(net, dtype, name)[1], "{", *("    " + line for text in body for line in text.split("\n")), "}"]
    return out + ["", *_work_function(net, dtype, name, plan)] if plan.rows else out


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
        *(_work_comment(net, dtype, name) if plan.rows else []),
        " * In place: y may be x (the same array) in every function; other overlaps are not supported.",
        f" * Stack, at most (bytes, calls included): {name} {stack['one']}, {name}_batch {stack['batch']}{scalar}"
        + (f", {name}_batch_ws {stack['batch_ws']}" if plan.rows else ""),
        f" * Math: {maths}; NaN and infinities propagate as in Keras.",
        " * Build with optimisation (-O3; -march=native to use the host's SIMD).",
        " * Reentrant: no mutable globals, no allocation.  Needs <math.h> (link with -lm). */",
    ]


def _work_comment(net: Network, dtype: str, name: str) -> list[str]:
    rows, size = c_batch.work_rows(net, dtype), c_batch.work_bytes(net, dtype)
    return [f" * {name}_batch_ws(x, y, n, work): as {name}_batch (the same results, bit for bit), in blocks of {rows} rows",
            f" *   in the caller's workspace: work points to {name}_BATCH_WORK ({size}) bytes aligned for "
            f"{numeric_type(dtype).c_type},",
            " *   not used by another call at the same time (each thread its own); the weights are read once a block."]


def _keep_macro(name: str) -> list[str]:
    """NAME_keep(v): an empty asm that may change ``v``, for gcc and clang, so that the
    pointer stays one register stepped in place: without it gcc -Os recomputes the blob
    pointer from the loop counts (sine 1-16-16-1: 20 more bytes of code, 4 more
    registers saved, Cortex-M4F).  Other compilers: nothing."""
    return ["", "/* an empty asm: the pointer stays one register stepped in place, not recomputed from the counts */",
            "#if defined(__GNUC__)", f'#define {name}_keep(v) __asm__("" : "+r"(v))', "#else",
            f"#define {name}_keep(v) ((void)0)", "#endif"]


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

    def _packed(self) -> bool:
        """Whether a layer's arrays are packed for ``NAME_gemm``."""
        return not self.shapes[0].table and self.plan.rows and any(s.loops and not s.tile for s in self.shapes)

    def _preamble(self) -> Lines:
        """File comment, includes, the fast-math definitions used and the weight arrays."""
        inline = c_math.definitions(self.needed, self.name, self.dtype)  # every NUMERIC_TYPES entry has them
        tiles = not self.embedded and bool(_dense_kinds(self.net, self.unroll, self.plan))
        lines = Lines().add(*self._comment(), "#include <math.h>", "#include <stddef.h>")
        skip = self.embedded and c_softfloat.skips(self.storage, self.t) and any(s.loops for s in self.shapes)
        if inline or tiles or skip:
            lines.add("#include <stdint.h>", "#include <string.h>")
        # the prototypes, as the header's (and the q15 and int8 files') give them: a caller's
        # -Wmissing-prototypes build of this file alone stays clean
        lines.add("", *(proto + ";" for proto in signature(self.net, self.dtype, self.name, self.profile)))
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
            packed = c_batch.packed_alignment(self.name) if self._packed() else []
            lines.add(f"/* weights of the layers written as loops: {layout}, read-only */", *packed, *arrays, "")
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
        if not self.embedded:
            lines.add(*work_macro(self.net, self.dtype, self.name))
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
                after = self.storage.after_declarator(self.name) + f" {self.name}_PACKED"
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

    def _activation_loop(self, layer: Layer, z: str, lines: Lines, lanes: "int | str | None" = None,
                         out: Optional[str] = None, rows: bool = False) -> None:
        """``out = f(z)`` (default: in place) for an element-wise activation without per-unit
        parameters: one loop over the units (and the lanes, in a batch block, with the
        block flavour of the fast functions)."""
        spec = layer.activation
        formula = REGISTRY[spec.name].formula(self.builder, self.builder.ref("zj"), spec.unit_params(0))
        text = top(self.printer(vector=lanes is not None).expr(formula))
        loop, at = f"for (j = 0; j < {layer.n_out}u; ++j)", "[j]"
        if lanes is not None and rows:  # rows layout: a sample's units side by side
            loop, at = f"for (l = 0; l < {_count(lanes)}; ++l) " + loop, "[l][j]"
        elif lanes is not None:
            loop, at = loop + f" for (l = 0; l < {_count(lanes)}; ++l)", "[j][l]"
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
        used = buffers[:min(writes, 2)]
        count = ", size_t m" if plan.transpose else ""  # lanes: the rows in x (<= lanes), the other lanes zeros
        if plan.rows:  # the rows function, on the caller's buffers; NAME_block gives it the stack's
            lines.add(*c_batch.block_attributes(net), f"static void {self.name}_rows(const {t} *x, {t} *y, size_t rows, "
                      + ", ".join(f"{t} (*{b})[{plan.width}]" for b in used) + ")", "{")
            lines.level = 1
        else:
            lines.add(*c_batch.block_attributes(net), f"static void {self.name}_block(const {t} *x, {t} *y{count})", "{")
            lines.level = 1
            lines.add(f"{t} " + ", ".join(f"{b}{shape}" for b in buffers[:min(writes, 2)]) + ";")
        src: Optional[str] = None
        if plan.transpose:
            lines.add("{", "    size_t j, l;", f"    for (l = 0; l < m; ++l) for (j = 0; j < {net.n_inputs}u; ++j) "
                      f"p0[j][l] = x[l * {net.n_inputs}u + j];",
                      f"    for (; l < {lanes}u; ++l) for (j = 0; j < {net.n_inputs}u; ++j) p0[j][l] = ({t})0;", "}")
            src = "p0"
        for layer_shape in self.shapes:
            dst = buffers[(layer_shape.index - 1 + plan.transpose) % 2]
            lines.add(f"/* {layer_comment(layer_shape.layer, layer_shape.index)}; {layer_shape.label} */")
            self._block_layer(layer_shape, src, dst, lines)
            src = dst
        lines.add("{", "    size_t j, l;", f"    for (l = 0; l < {'m' if plan.transpose else _count(self._lanes)}; ++l) "
                  f"for (j = 0; j < {net.n_outputs}u; ++j) y[l * {net.n_outputs}u + j] = {self._at(src, 'j')};", "}")
        lines.level = 0
        lines.add("}")
        if plan.rows:
            lines.add("", f"static void {self.name}_block(const {t} *x, {t} *y)", "{",
                      f"    {t} " + ", ".join(f"{b}{shape}" for b in used) + ";",
                      f"    {self.name}_rows(x, y, {lanes}u, {', '.join(used)});", "}")

    @property
    def _lanes(self) -> "int | str":
        """A block's samples: the lanes layout's constant, the rows function's ``rows``."""
        return "rows" if self.plan.rows else self.plan.lanes

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
            self._activation_loop(layer, dst, lines, self._lanes, rows=self.plan.rows)

    def _lane_loop(self, lines: Lines, out: str, write: Callable[[Printer, Lines], list[Node]]) -> None:
        """``out[j][l]`` set lane by lane from the statements ``write`` prints (its own
        printer: each lane loop is a C block, its names are not seen outside)."""
        printer = self.printer(vector=True)
        _block_lane_loop(lines, lambda j: self._at(out, j), self._lanes,
                         lambda inner: [printer.expr(n) for n in write(printer, inner)])


def emit_c(net: Network, *, dtype: str = "float32", name: str = "mlp", unroll: str = "auto",
           math: str = "fast", profile: str = "desktop", optimize: str = "speed", storage: str = "plain") -> str:
    """C99 source defining ``name`` (one sample) and ``name_batch`` (row-major batch).

    ``profile="embedded"``: for microcontrollers: the one-sample function (and
    ``name_scalar``) only, layer shapes chosen for a scalar core by ``optimize``
    (``"speed"``: fewest instructions, ``"size"``: fewest flash bytes; see
    :func:`~.c_policy.embedded_shape`), loops that keep their sums in registers, and a file comment
    stating the weights' flash and each function's stack.  ``optimize`` is ignored by the
    desktop profile.

    ``unroll``: ``"always"`` writes every layer as the closed form, ``"never"`` writes
    Dense layers as loops over ``static const`` arrays, ``"auto"`` unrolls layers of at
    most :data:`~.c_policy.UNROLL_MAX_WEIGHTS` weights.  ``math``: ``"fast"`` (default) uses the
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


def cdef(net: Network, dtype: str, name: str, *, workspace: bool = False) -> str:
    """Declarations for cffi's ``ffi.cdef``: NAME, NAME_batch (and NAME_scalar), which
    every version's C defines (bench/regression_gate.py builds earlier commits' sources
    with it); ``workspace``: also ``NAME_batch_ws`` and ``NAME_BATCH_WORK`` (cffi reads its
    value from the source) when the network has them."""
    protos = [proto for proto in signature(net, dtype, name) if workspace or f"{name}_batch_ws(" not in proto]
    work = [f"#define {name}_BATCH_WORK ..."] if workspace and c_batch.work_bytes(net, dtype) else []
    return "".join(line + "\n" for line in [proto + ";" for proto in protos] + work)
