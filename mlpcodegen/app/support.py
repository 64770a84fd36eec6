"""The supported formats, layers and activations tables of docs/supported.md (written by
generated/regenerate.py, which adds the target x activation matrix), generated from the
frontends' and the IR's own registries so they cannot drift."""
from __future__ import annotations

from ..core.activations import ALIASES, REGISTRY
from ..backends import BACKENDS
from ..frontends import FORMATS
from ..frontends import keras as frontend

START, END = "<!-- supported:start -->", "<!-- supported:end -->"


def supported_markdown() -> str:
    targets = ", ".join(f"`{t}`" for t in BACKENDS)
    lines = [START, "", "`mlpcodegen.load(source)` and every command find the format from the content "
             "(the first bytes of a file, the module of an object), not from the name.", "",
             "| format | reads | needs |", "|---|---|---|"]
    lines += [f"| {fmt.title} | {fmt.reads} | {fmt.needs} |" for fmt in FORMATS]
    lines += ["", *(f"* {fmt.details()}" for fmt in FORMATS if fmt.details is not None)]
    # Not every target writes every activation (q15 and int8 take a few; some languages lack
    # some): the page's matrix, found by asking each target, says which.
    lines += ["", f"Targets: {targets}. Which of them writes each activation (and so each layer that becomes "
              "one): the matrix at the end of this page.", "",
              "| Keras layer | becomes |", "|---|---|"]
    lines += [f"| `{name}` | {frontend.layer_description(name)} |" for name in frontend.SUPPORTED_LAYERS]
    aliases = {target: alias for alias, target in ALIASES.items()}
    lines += ["", "| activation | parameters (defaults) | kind |", "|---|---|---|"]
    for name, spec in REGISTRY.items():
        params = ", ".join(f"{k}={v}" for k, v in spec.defaults.items()) or "—"
        kind = "vector (feature axis)" if spec.vector else "element-wise"
        if name in frontend.LAYER_ONLY_ACTIVATIONS:
            kind += "; from normalisation layers"
        if name == "sparsemax":
            kind += "; refused from Keras models (see note)"
        alias = f" (Keras also: `{aliases[name]}`)" if name in aliases else ""
        lines.append(f"| `{name}`{alias} | {params} | {kind} |")
    lines += ["", END]
    return "\n".join(lines)
