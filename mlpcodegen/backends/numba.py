"""Numba backend: the closed form as Python source, compiled with ``numba.njit``.

The module defines ``NAME(x)`` (1-D array -> 1-D array) and ``NAME_batch(X)`` (2-D,
rows are samples -> 2-D), both jitted with ``cache=True``, plus
``NAME_batch_parallel(X)`` spreading rows over threads with ``prange``.  Written to a
file (see :func:`mlpcodegen.runtime.pymodule.import_generated`) so a second process
reuses the compiled code and tracebacks point at the generated line.

float32 arithmetic stays float32: every literal is written ``f32(...)`` because Numba
types a bare Python float as float64.  ``error_model="numpy"``: a division by zero is
inf or NaN, as in every other target, not ZeroDivisionError.
"""
from __future__ import annotations


import numpy as np

from ..activations import REGISTRY
from ..ir import Dense, Network
from ..graph import Builder, Node
from ..network_graph import array_of, named_values
from ._closed_form import activate_statements, emit_layer, layer_comment
from .printer import Printer, top
from ..numeric import numeric_type
from ._python_family import module_header, python_literal, scalar_language
from ._text import Lines, check_identifier

DTYPES = ("float32", "float64")
#: NumPy dtype -> how a literal is written so Numba types it so (a bare Python float is
#: float64: in a float32 function it would promote every operation it meets).
_TYPED_LITERAL = {"float32": "f32({})", "float64": "{}"}
_TAKEN = frozenset({"x", "y", "X", "Y", "i", "j", "n", "acc", "math", "np", "numba", "f32"})
_LOCALS = r"[a-z]\d+(_\d+)?|_.*"


def _language(dtype: str):
    digits, typed = python_literal(dtype), _TYPED_LITERAL[numeric_type(dtype).numpy]
    return scalar_language(lambda value: typed.format(digits(value)))


#: A Dense layer with more weights than this is written as loops over a module-level
#: weight array: Numba compiles the closed form at about 15 ms per weight (64-16-1: 14 s,
#: 256-16-1: 63 s), loops in well under a second whatever the size.  The loop adds the
#: terms in the closed form's order (w0*x0 + w1*x1 + ... + b), so results are the same.
LOOP_WEIGHTS = 256


def _array_text(name: str, values: np.ndarray, dtype: str) -> list[str]:
    literal = python_literal(dtype)
    flat = ", ".join(literal(float(v)) for v in values.ravel())
    return [f"{name} = np.array([{flat}], dtype=np.{numeric_type(dtype).numpy}).reshape({values.shape})"]


def _loop_layer(printer: Printer, b: Builder, layer: Dense, index: int, sources: list[Node], lines: Lines,
                dtype: str, arrays: dict[str, list[str]]) -> list[Node]:
    """A large Dense layer as loops over ``_W{index}`` (and ``_B{index}``)."""
    weights, bias, z = f"_W{index}", f"_B{index}", f"z{index}"
    arrays[weights] = _array_text(weights, layer.kernel, dtype)
    values = array_of(sources)
    if values is None:
        values = f"v{index}"
        lines.add(f"{values} = np.array([{', '.join(printer.expr(s) for s in sources)}], dtype=np.{numeric_type(dtype).numpy})")
    lines.add(f"{z} = np.empty({layer.units}, dtype=np.{numeric_type(dtype).numpy})", f"for j in range({layer.units}):",
              f"    acc = {values}[0] * {weights}[0, j]", f"    for i in range(1, {layer.n_in}):",
              f"        acc += {values}[i] * {weights}[i, j]")
    if layer.bias is not None:
        arrays[bias] = _array_text(bias, layer.bias, dtype)
        lines.add(f"    acc += {bias}[j]")
    lines.add(f"    {z}[j] = acc")
    spec = REGISTRY[layer.activation.name]
    sums = [b.item(z, j) for j in range(layer.units)]
    if layer.activation.is_identity:
        return sums
    if spec.vector or spec.per_unit:
        return activate_statements(printer, b, layer, index, named_values(b, index, sums), lines)
    h = f"h{index}"
    formula = top(printer.expr(spec.formula(b, b.ref(f"{z}[j]"), layer.activation.unit_params(0))))
    lines.add(f"{h} = np.empty({layer.units}, dtype=np.{numeric_type(dtype).numpy})", f"for j in range({layer.units}):",
              f"    {h}[j] = {formula}")
    return [b.item(h, j) for j in range(layer.units)]


def _statements(net: Network, dtype: str, b: Builder, inputs: list[Node], lines: Lines,
                arrays: dict[str, list[str]]) -> list[str]:
    """Every layer as statements (closed form, or loops for large Dense layers); the
    printed outputs."""
    printer, sources = Printer(_language(dtype)), list(inputs)
    for index, layer in enumerate(net.layers, start=1):
        lines.add(f"# {layer_comment(layer, index)}")
        if isinstance(layer, Dense) and layer.kernel.size > LOOP_WEIGHTS:
            sources = _loop_layer(printer, b, layer, index, sources, lines, dtype, arrays)
        else:
            sources = emit_layer(printer, b, layer, index, sources, lines)
    return [printer.expr(s) for s in sources]


def emit_numba(net: Network, *, dtype: str = "float64", name: str = "mlp") -> str:
    """Source of a module with jitted ``name``, ``name_batch`` and ``name_batch_parallel``."""
    check_identifier(name, _TAKEN, _LOCALS)
    n_in, n_out = net.n_inputs, net.n_outputs
    arrays: dict[str, list[str]] = {}
    body = Lines()
    body.add("@numba.njit(cache=True, nogil=True, error_model=\"numpy\")", f"def _{name}_row(x, y):")
    body.level = 1
    b = Builder()
    outputs = _statements(net, dtype, b, [b.item("x", i) for i in range(n_in)], body, arrays)
    body.add(*(f"y[{j}] = {source}" for j, source in enumerate(outputs)))
    body.level = 0
    lines = Lines().add(*module_header(net, [
        "",
        f"{name}(x): 1-D array of {n_in} -> 1-D array of {n_out}, {dtype}",
        f"{name}_batch(X): (n, {n_in}) array, rows are samples -> (n, {n_out}) array",
        f"{name}_batch_parallel(X): the same, rows spread over threads (numba.prange)",
        f"{name}_into(x, y): one sample into a preallocated y (the lowest call overhead)",
    ] + ([f"{name}_scalar(v): float -> float (one input, one output)"] if n_in == n_out == 1 else [])), "import math", "", "import numba", "import numpy as np", "", "f32 = np.float32")
    scalar = _scalar_function(net, dtype, name, arrays)
    weights = [line for text in arrays.values() for line in text]
    lines.add(*(["", "# weights of the layers written as loops (input-major)"] + weights if weights else []))
    lines.add("", "").extend(body)
    lines.add("", "", "@numba.njit(cache=True, nogil=True, error_model=\"numpy\")", f"def {name}(x):")
    lines.add(f"    if x.ndim != 1 or x.shape[0] != {n_in}:",
              f'        raise ValueError("{name} expects a 1-D array of {n_in} inputs")',
              f"    y = np.empty({n_out}, dtype=np.{numeric_type(dtype).numpy})", f"    _{name}_row(x, y)", "    return y")
    lines.add("", "", "@numba.njit(cache=True, nogil=True, error_model=\"numpy\")", f"def {name}_into(x, y):")
    lines.add(f"    if x.shape[0] != {n_in} or y.shape[0] != {n_out}:",
              f'        raise ValueError("{name}_into expects arrays of {n_in} inputs and {n_out} outputs")',
              f"    _{name}_row(x, y)")
    lines.extend(scalar)
    for suffix, parallel, loop in (("batch", "", "range"), ("batch_parallel", ", parallel=True", "numba.prange")):
        lines.add("", "", f"@numba.njit(cache=True, nogil=True, error_model=\"numpy\"{parallel})", f"def {name}_{suffix}(X):")
        lines.add(f"    if X.ndim != 2 or X.shape[1] != {n_in}:",
                  f'        raise ValueError("{name}_{suffix} expects an array of shape (n, {n_in})")',
                  f"    Y = np.empty((X.shape[0], {n_out}), dtype=np.{numeric_type(dtype).numpy})",
                  f"    for i in {loop}(X.shape[0]):", f"        _{name}_row(X[i], Y[i])", "    return Y")
    return str(lines)


def _scalar_function(net: Network, dtype: str, name: str, arrays: dict[str, list[str]]) -> Lines:
    """``NAME_scalar(v)`` for one-input one-output networks (no arrays to pass)."""
    lines = Lines()
    if net.n_inputs == net.n_outputs == 1:
        lines.add("", "", "@numba.njit(cache=True, nogil=True, error_model=\"numpy\")", f"def {name}_scalar(v):")
        lines.level = 1
        lines.add(f"x0 = np.{numeric_type(dtype).numpy}(v)")
        b = Builder()
        outputs = _statements(net, dtype, b, [b.ref("x0")], lines, arrays)
        lines.add(f"return {outputs[0]}")
    return lines
