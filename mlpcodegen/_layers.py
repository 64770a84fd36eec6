"""The layer map of the package, as data: which folder (or module) belongs to which layer,
which layers each may import, and the few finer rules.  tests/test_layering.py checks
every import of the package against it; :func:`render_markdown` writes
docs/architecture.md from it (a test fails when that page is stale).

Imports nothing: reading the map costs nothing and depends on nothing.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Layer:
    name: str
    members: tuple[str, ...]  # folders (``core``) or modules (``__main__``) under mlpcodegen/
    may_import: tuple[str, ...]  # the layers its modules may import (itself included)
    role: str  # one line for the docs


#: Lowest first.  The import direction: frontends -> core <- backends <- runtime <- harness <- app.
LAYERS = (
    Layer("core", ("core",), ("core",),
          "the IR, the expression graph and its evaluators, passes, fixed-point planning, simplification; "
          "knows no framework and no language"),
    Layer("frontends", ("frontends",), ("core", "frontends"),
          "read a model file (Keras, ONNX, TFLite, scikit-learn, PyTorch) into the IR; each knows its framework"),
    Layer("backends", ("backends",), ("core", "backends"),
          "print the expression graph in a language (C, Numba, NumPy, Python, SymPy, LaTeX, ...); "
          "they only emit"),
    Layer("runtime", ("runtime",), ("core", "backends", "runtime"),
          "compile and load what the backends emit (cffi, Python modules, cross-compilers, Dask)"),
    Layer("harness", ("harness",), ("core", "frontends", "backends", "runtime", "harness"),
          "compare every target with the float64 reference and the original framework; benchmark"),
    Layer("app", ("app", "__init__", "__main__", "_layers"),
          ("core", "frontends", "backends", "runtime", "harness", "app"),
          "wire the layers: the command line, the demo, the plot, the public API (mlpcodegen/__init__.py)"),
)

#: layer -> the core modules it may import (a layer not listed: any).  ``*graph*``: any
#: module whose name holds "graph".
CORE_FOR = {
    "frontends": ("ir", "errors", "limits", "_files", "numeric", "activations", "scaling", "passes", "untrusted",
                  "quant"),
    "backends": ("ir", "errors", "numeric", "activations", "scaling", "passes", "reference", "limits", "*graph*",
                 "untrusted", "fixed", "quant"),
}

#: the modules outside the harness that may import it (dotted, under mlpcodegen)
HARNESS_IMPORTERS = ("", "app.cli", "app.common", "app.cli_embedded", "app.cli_simplify", "app.demo")

#: the harness modules that may import a frontend (the rest reach frameworks through them)
FRONTEND_GATES = ("harness.peers", "harness.keras_model")

#: the ML frameworks, and the layers that may import them
FRAMEWORKS = ("tensorflow", "keras", "tf_keras")
FRAMEWORK_LAYERS = ("frontends", "harness", "app")

#: Import cycles between modules that exist today and are being broken (issue 23 item 2):
#: each entry is the set of modules of one cycle.  The test fails on any other cycle, and on
#: an entry that is no longer a cycle: empty it as they go.
KNOWN_CYCLES: tuple[frozenset[str], ...] = (
)

BY_NAME = {layer.name: layer for layer in LAYERS}


def layer_of(module: str) -> str:
    """The layer of a module named relative to the package (``core.ir``, ``app.cli``, ``""``
    for the package itself)."""
    first = module.split(".")[0] if module else "__init__"
    for layer in LAYERS:
        if first in layer.members:
            return layer.name
    raise KeyError(f"mlpcodegen.{module} belongs to no layer of mlpcodegen/_layers.py")


def render_markdown() -> str:
    """docs/architecture.md, from the map above."""
    lines = ["# Architecture", "",
             "<!-- written by mlpcodegen._layers.render_markdown(); tests/test_layering.py fails when stale -->", "",
             "The package is layered, one folder per layer; an import may only go to a layer listed",
             "for it (tests/test_layering.py reads every import, lazy ones included, and checks it",
             "against `mlpcodegen/_layers.py`, the map this page is written from).", "",
             "Direction: frontends → core ← backends ← runtime ← harness ← app.", "",
             "| layer | where (under `mlpcodegen/`) | may import | what it does |",
             "|---|---|---|---|"]
    for layer in LAYERS:
        where = ", ".join(f"`{m}/`" if m in ("core", "frontends", "backends", "runtime", "harness", "app")
                          else f"`{m}.py`" for m in layer.members)
        lines.append(f"| {layer.name} | {where} | {', '.join(layer.may_import)} | {layer.role} |")
    lines += ["", "Finer rules:", ""]
    for name, modules in CORE_FOR.items():
        lines.append(f"- {name} import only these core modules: {', '.join(f'`{m}`' for m in modules)}.")
    importers = ", ".join(f"`mlpcodegen{'.' + m if m else ''}`" for m in HARNESS_IMPORTERS)
    lines.append(f"- Outside the harness only {importers} import the harness.")
    lines.append(f"- Of the harness only {', '.join(f'`{m}`' for m in FRONTEND_GATES)} imports a frontend.")
    lines.append(f"- {', '.join(FRAMEWORKS)} are imported only by {', '.join(FRAMEWORK_LAYERS)}.")
    lines.append("- No import cycle between modules (lazy imports count)"
                 + (", except these, being broken:" if KNOWN_CYCLES else "."))
    for cycle in KNOWN_CYCLES:
        lines.append(f"  - {', '.join(f'`{m}`' for m in sorted(cycle))}")
    lines += ["", "Extending the package (a target, an activation, an input format): see [extending](extending.md).",
              ""]
    return "\n".join(lines)
