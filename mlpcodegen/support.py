"""The supported-layers and activations tables of the README, generated from the
frontend's and the IR's own registries so they cannot drift."""
from __future__ import annotations

from .activations import ALIASES, REGISTRY
from .backends import BACKENDS
from .frontends import FORMATS
from .frontends import keras as frontend

START, END = "<!-- supported:start -->", "<!-- supported:end -->"


def _reader_doc(name: str) -> str:
    reader = frontend._READERS[name]
    doc = reader.__doc__ or (frontend._read_dense.__doc__ if name == "Dense" else "")
    return " ".join((doc or "").split("\n\n")[0].split())


def _framework_lists() -> list[str]:
    """What each non-Keras frontend reads, from its own tables."""
    from .frontends import onnx, sklearn, torch

    def names(items) -> str:
        return ", ".join(f"`{item}`" for item in items)

    return [f"* ONNX operators: {names(onnx.SUPPORTED_OPS)}; and the multi-node forms exporters write: "
            f"{names(onnx.DECOMPOSED_FORMS)}.",
            f"* PyTorch modules: {names(torch.SUPPORTED)}.",
            f"* scikit-learn: {names(sklearn.ESTIMATORS)} (activations {names(sklearn.ACTIVATIONS)}), after "
            f"{names(sklearn.SCALERS)} in a `Pipeline`, or in a `TransformedTargetRegressor`."]


def supported_markdown() -> str:
    targets = ", ".join(f"`{t}`" for t in BACKENDS)
    lines = [START, "", "`mlpcodegen.load(source)` and every command find the format from the content "
             "(the first bytes of a file, the module of an object), not from the name.", "",
             "| format | reads | needs |", "|---|---|---|"]
    lines += [f"| {fmt.title} | {fmt.reads} | {fmt.needs} |" for fmt in FORMATS]
    lines += ["", *_framework_lists()]
    lines += ["", f"Every activation and layer below works in every target ({targets}).", "",
              "| Keras layer | becomes |", "|---|---|"]
    lines += [f"| `{name}` | {_reader_doc(name)} |" for name in frontend.SUPPORTED_LAYERS]
    aliases = {target: alias for alias, target in ALIASES.items()}
    lines += ["", "| activation | parameters (defaults) | kind |", "|---|---|---|"]
    for name, spec in REGISTRY.items():
        params = ", ".join(f"{k}={v}" for k, v in spec.defaults.items()) or "—"
        kind = "vector (feature axis)" if spec.vector else "element-wise"
        if name in frontend._LAYER_ONLY_ACTIVATIONS:
            kind += "; from normalisation layers"
        if name == "sparsemax":
            kind += "; refused from Keras models (see note)"
        alias = f" (Keras also: `{aliases[name]}`)" if name in aliases else ""
        lines.append(f"| `{name}`{alias} | {params} | {kind} |")
    lines += ["", END]
    return "\n".join(lines)


def update_readme(text: str) -> str:
    """``text`` with the block between the markers regenerated."""
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    return head + supported_markdown() + tail
