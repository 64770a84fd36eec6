"""Pure-Python backend: a module that needs nothing but ``math``.

``NAME(x)`` takes one sample (a sequence of floats) and returns a list of floats;
``NAME_batch(rows)`` maps it over a list of samples.  Computed in float64.
"""
from __future__ import annotations

from ..core.ir import Network
from ..core.graph import Builder
from ._closed_form import emit_statements
from ._python_family import PYTHON_HELPERS, module_header, python_literal, scalar_language
from ._text import Lines, check_identifier
from .printer import Printer

DTYPES = ("float64",)
LANGUAGE = scalar_language(python_literal("float64"), python=True)
_TAKEN = frozenset({"x", "rows", "row", "math", "v", "_exp", "_expm1", "_div"})
_LOCALS = r"[a-z]\d+(_\d+)?"


def emit_python(net: Network, *, dtype: str = "float64", name: str = "mlp") -> str:
    """Source of a dependency-free module defining ``name`` and ``name_batch``."""
    check_identifier(name, _TAKEN, _LOCALS)
    lines = Lines().add(*module_header(net, [
        "",
        f"{name}(x): one sample, a sequence of {net.n_inputs} floats -> a list of {net.n_outputs} floats",
        f"{name}_batch(rows): a list of samples -> a list of outputs",
        "Needs only the standard library (math).",
        f"Memory: a call holds about {sum(layer.n_out for layer in net.layers)} Python floats (one per unit) and "
        "the returned list.",
    ]), "import math", "", "", *PYTHON_HELPERS, "", "")
    lines.add(f"def {name}(x):")
    lines.level = 1
    lines.add(f"if len(x) != {net.n_inputs}:")
    lines.add(f'    raise ValueError(f"{name} expects {net.n_inputs} inputs, got {{len(x)}}")')
    inputs = [f"x{i}" for i in range(net.n_inputs)]
    lines.add(*(f"{v} = float(x[{i}])" for i, v in enumerate(inputs)))
    b = Builder()
    outputs = emit_statements(net, Printer(LANGUAGE), b, [b.ref(v) for v in inputs], lines, LANGUAGE.comment)
    lines.add(f"return [{', '.join(outputs)}]")
    lines.level = 0
    lines.add("", "", f"def {name}_batch(rows):")
    lines.add(f"    return [{name}(row) for row in rows]")
    return str(lines)
