"""Numba backend: Python source compiled with ``numba.njit``.

The module defines ``NAME(x)`` (1-D array -> 1-D array), ``NAME_into(x, y)`` and
``NAME_batch(X)`` (2-D, rows are samples -> 2-D), all jitted with ``cache=True``, plus
``NAME_batch_parallel(X, threads=None)`` spreading rows over threads with ``prange``
when the batch is large enough (a plain function choosing the parts: Numba cannot cache
a function that calls ``numba.get_num_threads()``).  Written to a
file (see :func:`mlpcodegen.runtime.pymodule.import_generated`, which puts it in the
project's cache folder) so a second process loads the compiled code from Numba's cache
beside it, and tracebacks point at the generated line.

Two code shapes, per layer: small layers are the closed form (one statement per neuron,
weights as literals); a Dense layer with more than :data:`LOOP_WEIGHTS` weights is loops
over a module-level input-major weight array (``_W1[i, j]``: input i to unit j), which
Numba freezes as a constant.  The inner loop runs over units, so LLVM vectorises it
without reordering any sum: each unit still adds ``w0*x0 + w1*x1 + ... + b`` in the
closed form's order, so both shapes give the same bits.  The loop layers write into one
scratch array ``t`` that the caller allocates once (per call, or once per batch: an
allocation per row cost more than the row).  The batch is a loop over rows calling the
same row function: in a prototype on mid 8-64-64-1, lanes across units ran 14x faster in
Numba than lanes across samples (blocks of samples side by side, as the C batch does:
LLVM did not vectorise those), and every row gives the same bits whatever the batch,
part or thread it is computed in.

float32 arithmetic stays float32: every literal is written ``f32(...)`` because Numba
types a bare Python float as float64.  ``error_model="numpy"``: a division by zero is
inf or NaN, as in every other target, not ZeroDivisionError.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ..core.activations import REGISTRY
from ..core.ir import Dense, Network
from ..core.graph import Builder, Node
from ..core.network_graph import named_values
from ._closed_form import activate_statements, emit_layer, layer_comment
from .printer import Printer, top
from ..core.numeric import numeric_type
from ._python_family import module_header, python_literal, scalar_language
from ._text import Lines, check_identifier

DTYPES = ("float32", "float64")
#: NumPy dtype -> how a literal is written so Numba types it so (a bare Python float is
#: float64: in a float32 function it would promote every operation it meets).
_TYPED_LITERAL = {"float32": "f32({})", "float64": "{}"}
_TAKEN = frozenset({"x", "y", "X", "Y", "i", "j", "n", "t", "v", "z", "acc", "math", "np", "numba", "f32",
                    "start", "stop", "part", "parts", "size", "first", "xs", "ys"})
_LOCALS = r"[a-z]\d+(_\d+)?|_.*"
_JIT = "@numba.njit(cache=True, nogil=True, error_model=\"numpy\"{})"

#: A Dense layer with more weights than this is written as loops (see the module's
#: docstring).  Numba compiles the closed form at about 15 ms per weight (64-16-1: 14 s),
#: loops in a fraction of a second whatever the size; see bench/NUMBA.md for the
#: run-time cost of loops on small layers, which set this value.
LOOP_WEIGHTS = 32

#: NAME_batch_parallel gives each thread at least this many multiply-adds and
#: activations (rows x work per row); below it the batch runs on the calling thread.
#: Eight times the C predictor's rule (4 Mi, measured on an idle machine): on a busy
#: machine two Numba threads (OpenMP layer) on 4096 rows of mid/cls (20-24 Mi) ran at
#: 0.2-0.4x one thread where C's threads held 1.1x (bench/NUMBA.md).
WORK_PER_THREAD = 1 << 25
#: Rows a thread copies at a time (see _part_function).
_CHUNK = 256


def _language(dtype: str):
    digits, typed = python_literal(dtype), _TYPED_LITERAL[numeric_type(dtype).numpy]
    return scalar_language(lambda value: typed.format(digits(value)))


def _array_text(name: str, values: np.ndarray, dtype: str) -> list[str]:
    literal = python_literal(dtype)
    flat = ", ".join(literal(float(v)) for v in values.ravel())
    return [f"{name} = np.array([{flat}], dtype=np.{numeric_type(dtype).numpy}).reshape({values.shape})"]


class _Scratch:
    """The regions of the scratch array ``t`` (one per loop layer, never reused, so a
    layer never reads the region it writes)."""

    def __init__(self) -> None:
        self.size = 0

    def take(self, count: int) -> int:
        self.size += count
        return self.size - count


def _region(sources: Sequence[Node]) -> Optional[tuple[str, int]]:
    """``(a, k)`` when ``sources`` are the items ``a[k], a[k+1], ...`` of one array."""
    first = sources[0]
    array, start = getattr(first, "array", None), getattr(first, "index", None)
    if array is None:
        return None
    cells = [(getattr(s, "array", None), getattr(s, "index", None)) for s in sources]
    return (array, start) if cells == [(array, start + k) for k in range(len(sources))] else None


def _at(array: str, offset: int, index: str) -> str:
    return f"{array}[{offset} + {index}]" if offset else f"{array}[{index}]"


def _loop_layer(printer: Printer, b: Builder, layer: Dense, index: int, sources: list[Node], lines: Lines,
                dtype: str, arrays: dict[str, list[str]], scratch: _Scratch) -> list[Node]:
    """A large Dense layer as input-major loops over ``_W{index}`` into a region of ``t``."""
    weights, units, n_in = f"_W{index}", layer.units, layer.n_in
    arrays[weights] = _array_text(weights, layer.kernel, dtype)
    region = _region(sources)
    if region is None:  # values of closed-form statements: gathered into the scratch first
        region = ("t", scratch.take(n_in))
        lines.add(*(f"{_at('t', region[1], str(k))} = {top(printer.expr(s))}" for k, s in enumerate(sources)))
    out = scratch.take(units)
    dst = _at("t", out, "j")
    lines.add(f"for j in range({units}):", f"    {dst} = {_at(*region, '0')} * {weights}[0, j]")
    if n_in > 1:
        lines.add(f"for i in range(1, {n_in}):", f"    v = {_at(*region, 'i')}", f"    for j in range({units}):",
                  f"        {dst} += v * {weights}[i, j]")
    _bias_and_activation(printer, b, layer, index, dst, lines, dtype, arrays)
    items = [b.item("t", out + j) for j in range(units)]
    spec = REGISTRY[layer.activation.name]
    if layer.activation.is_identity or not (spec.vector or spec.per_unit):
        return items
    return activate_statements(printer, b, layer, index, named_values(b, index, items), lines)


def _bias_and_activation(printer: Printer, b: Builder, layer: Dense, index: int, dst: str, lines: Lines,
                         dtype: str, arrays: dict[str, list[str]]) -> None:
    """``dst = f(dst + b[j])`` in one loop over units, for the bias and an elementwise
    activation (a vector or per-unit activation is written as statements afterwards)."""
    spec = REGISTRY[layer.activation.name]
    elementwise = not (layer.activation.is_identity or spec.vector or spec.per_unit)
    z = dst
    if layer.bias is not None:
        arrays[f"_B{index}"] = _array_text(f"_B{index}", layer.bias, dtype)
        z = f"{dst} + _B{index}[j]"
    if elementwise:
        formula = top(printer.expr(spec.formula(b, b.ref("z"), layer.activation.unit_params(0))))
        lines.add(f"for j in range({layer.units}):", f"    z = {z}", f"    {dst} = {formula}")
    elif layer.bias is not None:
        lines.add(f"for j in range({layer.units}):", f"    {dst} = {z}")


def _statements(net: Network, dtype: str, b: Builder, inputs: list[Node], lines: Lines,
                arrays: dict[str, list[str]], scratch: _Scratch) -> list[str]:
    """Every layer as statements (closed form, or loops for large Dense layers); the
    printed outputs."""
    printer, sources = Printer(_language(dtype)), list(inputs)
    for index, layer in enumerate(net.layers, start=1):
        lines.add(f"# {layer_comment(layer, index)}")
        if isinstance(layer, Dense) and layer.kernel.size > LOOP_WEIGHTS:
            sources = _loop_layer(printer, b, layer, index, sources, lines, dtype, arrays, scratch)
        else:
            sources = emit_layer(printer, b, layer, index, sources, lines)
    return [printer.expr(s) for s in sources]


def work_per_row(net: Network) -> int:
    """Multiply-adds and activations one sample costs (sets the rows per thread)."""
    return sum(int(getattr(layer, "kernel", np.empty(0)).size) + layer.units for layer in net.layers)


def emit_numba(net: Network, *, dtype: str = "float64", name: str = "mlp") -> str:
    """Source of a module with jitted ``name``, ``name_into``, ``name_batch`` and
    ``name_batch_parallel`` (and ``name_scalar`` for one input and one output)."""
    check_identifier(name, _TAKEN, _LOCALS)
    arrays: dict[str, list[str]] = {}
    row, scratch = _row_function(net, dtype, name, arrays)
    scalar = _scalar_function(net, dtype, name, arrays)
    lines = Lines().add(*_header(net, dtype, name, scratch))
    weights = [line for text in arrays.values() for line in text]
    lines.add(*(["", "# weights of the layers written as loops (input-major: _W1[i, j] is input i's weight "
                 "to unit j)"] + weights if weights else []))
    lines.add("", "").extend(row)
    lines.extend(_callers(net, dtype, name, scratch))
    return str(lines.extend(scalar))


def _header(net: Network, dtype: str, name: str, scratch: int) -> list[str]:
    n_in, n_out = net.n_inputs, net.n_outputs
    size = np.dtype(dtype).itemsize
    work = f"a scratch of {scratch} values ({scratch * size} bytes)" if scratch else "no scratch"
    doc = [
        "",
        f"{name}(x): 1-D array of {n_in} -> 1-D array of {n_out}, {dtype}",
        f"{name}_into(x, y): one sample into a preallocated y (the lowest call overhead)",
        f"{name}_batch(X): (n, {n_in}) array, rows are samples -> (n, {n_out}) array",
        f"{name}_batch_parallel(X, threads=None): the same, rows split over threads (numba.prange) when the",
        f"    batch has {WORK_PER_THREAD} multiply-adds and activations per thread; the same bits either way",
    ] + ([f"{name}_scalar(v): float -> float (one input, one output)"] if n_in == n_out == 1 else []) + [
        f"Memory: each call allocates {work} for the loop layers ({name}, {name}_into; the batch functions once per",
        f"    part, beside their staging rows) and {name}/{name}_batch their result; no globals but the weights",
    ]
    return module_header(net, doc) + ["import math", "", "import numba", "import numpy as np", "",
                                      "f32 = np.float32"]


def _row_function(net: Network, dtype: str, name: str, arrays: dict[str, list[str]]) -> tuple[Lines, int]:
    """``_NAME_row(x, y[, t])``: one sample; ``t`` is the scratch of the loop layers."""
    body, scratch, b = Lines(), _Scratch(), Builder()
    body.level = 1
    outputs = _statements(net, dtype, b, [b.item("x", i) for i in range(net.n_inputs)], body, arrays, scratch)
    body.add(*(f"y[{j}] = {source}" for j, source in enumerate(outputs)))
    head = Lines().add(_JIT.format(""), f"def _{name}_row(x, y{', t' if scratch.size else ''}):")
    return head.extend(body), scratch.size


def _callers(net: Network, dtype: str, name: str, scratch: int) -> Lines:
    """The public functions around ``_NAME_row``, and ``_NAME_rows`` (a range of rows
    sharing one scratch array)."""
    n_in, n_out, numpy = net.n_inputs, net.n_outputs, numeric_type(dtype).numpy
    t, new_t = (", t", [f"    t = np.empty({scratch}, dtype=np.{numpy})"]) if scratch else ("", [])
    lines = Lines()
    lines.add("", "", _JIT.format(""), f"def {name}(x):",
              f"    if x.ndim != 1 or x.shape[0] != {n_in}:",
              f'        raise ValueError("{name} expects a 1-D array of {n_in} inputs")',
              f"    y = np.empty({n_out}, dtype=np.{numpy})", *new_t, f"    _{name}_row(x, y{t})", "    return y")
    lines.add("", "", _JIT.format(""), f"def {name}_into(x, y):",
              f"    if x.shape[0] != {n_in} or y.shape[0] != {n_out}:",
              f'        raise ValueError("{name}_into expects arrays of {n_in} inputs and {n_out} outputs")',
              *new_t, f"    _{name}_row(x, y{t})")
    lines.add("", "", _JIT.format(""), f"def _{name}_rows(X, Y, start, stop):", *new_t,
              "    for i in range(start, stop):", f"        _{name}_row(X[i], Y[i]{t})")
    lines.add("", "", _JIT.format(""), f"def {name}_batch(X):", *_batch_start(name, "batch", n_in, n_out, numpy),
              f"    _{name}_rows(X, Y, 0, X.shape[0])", "    return Y")
    lines.add("", "", _JIT.format(", parallel=True"), f"def _{name}_batch_parts(X, parts):",
              *_batch_start(name, "batch_parallel", n_in, n_out, numpy),
              "    n = X.shape[0]", "    size = (n + parts - 1) // parts",
              "    for part in numba.prange(parts):",
              f"        _{name}_part(X, Y, min(n, part * size), min(n, (part + 1) * size))", "    return Y")
    return lines.add(*_part_function(name, n_in, n_out, numpy), *_parallel_wrapper(name, work_per_row(net)))


def _part_function(name: str, n_in: int, n_out: int, numpy: str) -> list[str]:
    """``_NAME_part``: one thread's rows, through private copies of chunks of rows.  A
    row view ``X[i]`` updates the reference count of ``X`` (an atomic add): from two
    threads on the same counter at every row, that made two threads slower than one."""
    return ["", "", _JIT.format(""), f"def _{name}_part(X, Y, start, stop):",
            f"    xs = np.empty(({_CHUNK}, {n_in}), dtype=np.{numpy})",
            f"    ys = np.empty(({_CHUNK}, {n_out}), dtype=np.{numpy})",
            f"    for first in range(start, stop, {_CHUNK}):",
            f"        size = min({_CHUNK}, stop - first)",
            "        for i in range(size):",
            f"            for j in range({n_in}):",
            "                xs[i, j] = X[first + i, j]",
            f"        _{name}_rows(xs, ys, 0, size)",
            "        for i in range(size):",
            f"            for j in range({n_out}):",
            "                Y[first + i, j] = ys[i, j]"]


def _batch_start(name: str, function: str, n_in: int, n_out: int, numpy: str) -> list[str]:
    return [f"    if X.ndim != 2 or X.shape[1] != {n_in}:",
            f'        raise ValueError("{name}_{function} expects an array of shape (n, {n_in})")',
            f"    Y = np.empty((X.shape[0], {n_out}), dtype=np.{numpy})"]


def _parallel_wrapper(name: str, work: int) -> list[str]:
    """``NAME_batch_parallel``: a plain function, because Numba cannot cache a function
    calling ``numba.get_num_threads()``; it picks the parts, so a small batch runs on
    the calling thread (and never compiles the parallel function)."""
    return ["", "", f"def {name}_batch_parallel(X, threads=None):",
            '    """Rows split into equal parts over threads (default numba.get_num_threads()), with at least',
            f'    {WORK_PER_THREAD} multiply-adds and activations per part ({work} per row); a row gives the same',
            '    bits whatever its part."""',
            "    threads = numba.get_num_threads() if threads is None else int(threads)",
            f"    parts = min(threads, X.shape[0] * {work} // {WORK_PER_THREAD}) if X.ndim == 2 else 1",
            f"    return _{name}_batch_parts(X, parts) if parts > 1 else {name}_batch(X)"]


def _scalar_function(net: Network, dtype: str, name: str, arrays: dict[str, list[str]]) -> Lines:
    """``NAME_scalar(v)`` for one-input one-output networks (no arrays to pass)."""
    lines = Lines()
    if net.n_inputs == net.n_outputs == 1:
        body, scratch, b = Lines(), _Scratch(), Builder()
        body.level = 1
        outputs = _statements(net, dtype, b, [b.ref("x0")], body, arrays, scratch)
        numpy = numeric_type(dtype).numpy
        lines.add("", "", _JIT.format(""), f"def {name}_scalar(v):", f"    x0 = np.{numpy}(v)")
        lines.add(*([f"    t = np.empty({scratch.size}, dtype=np.{numpy})"] if scratch.size else []))
        lines.extend(body).add(f"    return {outputs[0]}")
    return lines
