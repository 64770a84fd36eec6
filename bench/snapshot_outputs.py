#!/usr/bin/env python3
"""Write every target's output for a fixed set of random networks into a folder, so
two versions of the package can be compared byte for byte (the expression-graph
redesign promised identical outputs):

    python bench/snapshot_outputs.py /tmp/before      # on the old commit
    python bench/snapshot_outputs.py /tmp/after       # on the new one
    diff -r /tmp/before /tmp/after

The networks cover every activation (element-wise and vector, with non-default
parameters), every layer kind (Dense, Activate, Affine), both dtypes, every
``--unroll`` and ``--math`` option of C, and every formula option.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mlpcodegen.core.activations import REGISTRY  # noqa: E402
from mlpcodegen.backends import BACKENDS, emit  # noqa: E402
from mlpcodegen.core.errors import MlpCodegenError  # noqa: E402
from mlpcodegen.core.ir import Activate, Activation, Affine, Dense, Network  # noqa: E402

#: Non-default parameters, so every branch of a formula is written.
PARAMS = {
    "relu": [{}, {"negative_slope": 0.1}, {"max_value": 6.0}, {"threshold": 0.5},
             {"negative_slope": 0.1, "max_value": 2.0, "threshold": 0.25}],
    "elu": [{}, {"alpha": 0.5}], "celu": [{"alpha": 2.0}], "gelu": [{}, {"approximate": 1.0}],
    "leaky_relu": [{"negative_slope": 0.3}], "threshold": [{"threshold": 0.1, "default_value": -1.0}],
    "squareplus": [{"b": 2.0}], "hard_shrink": [{"threshold": 0.3}], "soft_shrink": [{"threshold": 0.3}],
}


def activations() -> list[tuple[str, Activation, int]]:
    """(label, activation, width) for every registered activation."""
    out = []
    for name, spec in sorted(REGISTRY.items()):
        width = 4 if spec.halves else 3
        if name == "prelu":
            out.append((name, Activation(name, {"alpha": (0.1, 0.2, 0.3)}), width))
            continue
        for i, params in enumerate(PARAMS.get(name, [{}])):
            out.append((f"{name}{i}", Activation(name, params), width))
    return out


def networks() -> dict[str, Network]:
    rng = np.random.default_rng(20261125)
    nets: dict[str, Network] = {}
    for label, act, width in activations():
        hidden = Dense(rng.normal(size=(2, width)), rng.normal(size=width), act, name="hidden")
        out = Dense(rng.normal(size=(act.out_width(width), 2)), rng.normal(size=2), Activation("linear"), "out")
        nets[f"dense_{label}"] = Network(2, (hidden, out), name=f"net_{label}")
        nets[f"activate_{label}"] = Network(
            2, (Dense(rng.normal(size=(2, width)), rng.normal(size=width), name="lin"),
                Affine(rng.normal(size=width), rng.normal(size=width), "scale"), Activate(width, act, "act")),
            name=f"act_{label}")
    widths = [5, 40, 40, 3]  # loops under --unroll auto
    layers = tuple(Dense(rng.normal(size=(a, b)), rng.normal(size=b), Activation(f), f"d{i}")
                   for i, (a, b, f) in enumerate(zip(widths, widths[1:], ("tanh", "relu", "softmax"))))
    nets["big_loops"] = Network(5, layers, name="big")
    nets["one_one"] = Network(1, (Dense(rng.normal(size=(1, 4)), rng.normal(size=4), Activation("sigmoid"), "h"),
                                  Dense(rng.normal(size=(4, 1)), rng.normal(size=1), Activation("linear"), "o")))
    return nets


def variants(target: str, net: Network) -> list[tuple[str, dict]]:
    if target == "c":
        return [(f"{dtype}_{unroll}_{math}", {"dtype": dtype, "unroll": unroll, "math": math})
                for dtype in ("float32", "float64") for unroll in ("auto", "always", "never")
                for math in ("libm", "fast")]
    if target == "latex":
        return [("plain", {}), ("d2", {"digits": 2}), ("expand", {"expand": True}),
                ("nested", {"layout": "nested"}), ("named", {"layout": "named"})]
    if target == "sympy":
        return [(dtype, {"dtype": dtype}) for dtype in BACKENDS[target].dtypes] + [("rational", {"rational": True})]
    return [(dtype, {"dtype": dtype}) for dtype in BACKENDS[target].dtypes]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    count = 0
    for label, net in networks().items():
        for target, backend in BACKENDS.items():
            for variant, options in variants(target, net):
                try:
                    text = emit(net, target, **options)
                    if target == "c":
                        text += "\n/* header */\n" + backend.header(net, dtype=options["dtype"], name="mlp")
                except MlpCodegenError as error:
                    text = f"refused: {error}\n"
                (args.folder / f"{label}.{target}.{variant}{backend.suffix}").write_text(text)
                count += 1
    print(f"{count} files in {args.folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
