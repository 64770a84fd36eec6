"""Numba backend: the closed form as Python source, compiled with ``numba.njit``.

The module defines ``NAME(x)`` (1-D array -> 1-D array) and ``NAME_batch(X)`` (2-D,
rows are samples -> 2-D), both jitted with ``cache=True``, plus
``NAME_batch_parallel(X)`` spreading rows over threads with ``prange``.  Written to a
file (see :func:`mlpcodegen.harness.pymodule.import_generated`) so a second process
reuses the compiled code and tracebacks point at the generated line.

float32 arithmetic stays float32: every literal is written ``f32(...)`` because Numba
types a bare Python float as float64.  ``error_model="numpy"``: a division by zero is
inf or NaN, as in every other target, not ZeroDivisionError.
"""
from __future__ import annotations

from ..ir import Network
from ._closed_form import emit_statements
from ._python_family import module_header, python_literal, scalar_language
from ._text import Lines, check_identifier

DTYPES = ("float32", "float64")
_TAKEN = frozenset({"x", "y", "X", "Y", "i", "n", "math", "np", "numba", "f32"})
_LOCALS = r"[a-z]\d+(_\d+)?|_.*"


def _language(dtype: str):
    if dtype == "float64":
        return scalar_language(python_literal(dtype))
    digits = python_literal("float32")
    return scalar_language(lambda value: f"f32({digits(value)})")


def emit_numba(net: Network, *, dtype: str = "float64", name: str = "mlp") -> str:
    """Source of a module with jitted ``name``, ``name_batch`` and ``name_batch_parallel``."""
    check_identifier(name, _TAKEN, _LOCALS)
    n_in, n_out = net.n_inputs, net.n_outputs
    lines = Lines().add(*module_header(net, [
        "",
        f"{name}(x): 1-D array of {n_in} -> 1-D array of {n_out}, {dtype}",
        f"{name}_batch(X): (n, {n_in}) array, rows are samples -> (n, {n_out}) array",
        f"{name}_batch_parallel(X): the same, rows spread over threads (numba.prange)",
        f"{name}_into(x, y): one sample into a preallocated y (no allocation: the lowest call overhead)",
    ] + ([f"{name}_scalar(v): float -> float (one input, one output)"] if n_in == n_out == 1 else [])), "import math", "", "import numba", "import numpy as np", "", "f32 = np.float32", "", "")
    lines.add("@numba.njit(cache=True, nogil=True, error_model=\"numpy\")", f"def _{name}_row(x, y):")
    lines.level = 1
    inputs = [f"x{i}" for i in range(n_in)]
    lines.add(*(f"{v} = x[{i}]" for i, v in enumerate(inputs)))
    outputs = emit_statements(net, _language(dtype), inputs, lines, lambda text: f"# {text}")
    lines.add(*(f"y[{j}] = {source}" for j, source in enumerate(outputs)))
    lines.level = 0
    lines.add("", "", "@numba.njit(cache=True, nogil=True, error_model=\"numpy\")", f"def {name}(x):")
    lines.add(f"    if x.ndim != 1 or x.shape[0] != {n_in}:",
              f'        raise ValueError("{name} expects a 1-D array of {n_in} inputs")',
              f"    y = np.empty({n_out}, dtype=np.{dtype})", f"    _{name}_row(x, y)", "    return y")
    lines.add("", "", "@numba.njit(cache=True, nogil=True, error_model=\"numpy\")", f"def {name}_into(x, y):")
    lines.add(f"    if x.shape[0] != {n_in} or y.shape[0] != {n_out}:",
              f'        raise ValueError("{name}_into expects arrays of {n_in} inputs and {n_out} outputs")',
              f"    _{name}_row(x, y)")
    if n_in == n_out == 1:
        lines.add("", "", "@numba.njit(cache=True, nogil=True, error_model=\"numpy\")", f"def {name}_scalar(v):")
        lines.level = 1
        lines.add(f"x0 = np.{dtype}(v)")
        outputs = emit_statements(net, _language(dtype), ["x0"], lines, lambda text: f"# {text}")
        lines.add(f"return {outputs[0]}")
        lines.level = 0
    for suffix, parallel, loop in (("batch", "", "range"), ("batch_parallel", ", parallel=True", "numba.prange")):
        lines.add("", "", f"@numba.njit(cache=True, nogil=True, error_model=\"numpy\"{parallel})", f"def {name}_{suffix}(X):")
        lines.add(f"    if X.ndim != 2 or X.shape[1] != {n_in}:",
                  f'        raise ValueError("{name}_{suffix} expects an array of shape (n, {n_in})")',
                  f"    Y = np.empty((X.shape[0], {n_out}), dtype=np.{dtype})",
                  f"    for i in {loop}(X.shape[0]):", f"        _{name}_row(X[i], Y[i])", "    return Y")
    return str(lines)


def load(net: Network, *, dtype: str = "float64", name: str = "mlp"):
    import numpy as np

    from ..harness.pymodule import import_generated

    module = import_generated(emit_numba(net, dtype=dtype, name=name), "numba")
    single, batch = getattr(module, name), getattr(module, name + "_batch")
    np_dtype = np.dtype(dtype)

    def call(x):
        x = np.ascontiguousarray(x, dtype=np_dtype)
        if x.ndim not in (1, 2) or x.shape[-1] != net.n_inputs:
            raise ValueError(f"expected shape ({net.n_inputs},) or (n, {net.n_inputs}), got {x.shape}")
        return single(x) if x.ndim == 1 else batch(x)

    call.into = getattr(module, name + "_into")  # (x, y): no checks beyond shapes, no allocation
    call.scalar = getattr(module, name + "_scalar", None)
    return call
