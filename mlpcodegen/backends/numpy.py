"""NumPy backend: a module whose ``NAME(X)`` evaluates the closed form over the
columns of a 2-D array (rows are samples), element-wise with ``np.tanh``, ``np.exp``...

float32 keeps every operation in float32: the literals are the float32 values'
shortest digits, and NumPy casts Python scalars to the array's type (NEP 50).
"""
from __future__ import annotations

from ..core.ir import Network
from ..core.numeric import numeric_type
from ..core.graph import Builder
from ._closed_form import emit_statements
from ._python_family import array_language, module_header
from ._text import Lines, check_identifier
from .printer import Printer

DTYPES = ("float32", "float64")
_TAKEN = frozenset({"X", "np"})
_LOCALS = r"[a-z]\d+(_\d+)?"


def emit_numpy(net: Network, *, dtype: str = "float64", name: str = "mlp") -> str:
    """Source of a module defining ``name(X)``: (n, inputs) array -> (n, outputs) array."""
    check_identifier(name, _TAKEN, _LOCALS)
    body = Lines()
    body.level = 1
    inputs = [f"x{i}" for i in range(net.n_inputs)]
    b, printer = Builder(), Printer(array_language(dtype))
    outputs = emit_statements(net, printer, b, [b.ref(v) for v in inputs], body, printer.lang.comment)
    imports = ["import numpy as np"] + sorted(printer.needed)
    lines = Lines().add(*module_header(net, [
        "",
        f"{name}(X): X of shape (n, {net.n_inputs}), rows are samples -> array of shape (n, {net.n_outputs}), {dtype}",
        _memory_line(net, dtype),
    ]), *imports, "", "")
    # Both branches of np.where are computed: an unused exp may overflow harmlessly; NaN
    # and inf inputs give IEEE results (Keras' values), not warnings.
    lines.add('@np.errstate(over="ignore", invalid="ignore", divide="ignore")', f"def {name}(X):")
    lines.level = 1
    lines.add(f"X = np.asarray(X, dtype=np.{numeric_type(dtype).numpy})")
    lines.add(f"if X.ndim != 2 or X.shape[1] != {net.n_inputs}:")
    lines.add(f'    raise ValueError(f"{name} expects an array of shape (n, {net.n_inputs}), got {{X.shape}}")')
    lines.add(*(f"{v} = X[:, {i}]" for i, v in enumerate(inputs)))
    lines.extend(body)
    lines.add(f"return np.stack([{', '.join(outputs)}], axis=1)")
    return str(lines)


def _memory_line(net: Network, dtype: str) -> str:
    """What a call holds, per row, as a bound: every unit's column (and its pre-activation,
    where the activation names it) is a local array kept until the call returns, with the
    input converted once and the stacked result (tests/test_output_usage.py measures it)."""
    units = sum(layer.n_out for layer in net.layers)
    widest = max(layer.n_out for layer in net.layers)  # a layer's temporaries (softmax's exps, a where's sides)
    per_row = (2 * units + widest + 2 * net.n_inputs + 2 * net.n_outputs) * numeric_type(dtype).np_dtype.itemsize
    return (f"Memory: at most about {per_row} bytes a row of X ({per_row} x n for n rows): each unit's column and "
            "pre-activation, kept until the call returns, temporaries, the converted input and the result.")
