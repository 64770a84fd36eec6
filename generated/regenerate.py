#!/usr/bin/env python3
"""Write everything under generated/, the supported tables of docs/supported.md and their
summary in README.md (the one script that does).

    python generated/regenerate.py            # rewrite generated files from the committed models
    python generated/regenerate.py --check    # exit 1 if a committed file is stale
    python generated/regenerate.py --retrain  # also retrain the seed model (needs TensorFlow)

The seed model is 1-3-2-1 (tanh, tanh, linear), trained with fixed seeds to
approximate y = sin(3x)·x for x in [-1, 1], on inputs MinMax-scaled to [0, 1].
Retraining is deterministic on one machine but TensorFlow does not promise the same
weights across CPUs, so --check never retrains: it regenerates from the committed
seed.keras and compares.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from mlpcodegen.core._files import write_atomic  # noqa: E402
from mlpcodegen.backends import BACKENDS, emit  # noqa: E402
from mlpcodegen.backends.c import emit_c, emit_c_header  # noqa: E402
from mlpcodegen.frontends.keras import load  # noqa: E402
from mlpcodegen.core.scaling import Scaling, read_scaling_file, with_scaling  # noqa: E402


SEED = HERE / "seed"
SEED_MODEL = SEED / "seed.keras"
X_MIN, X_MAX = -1.0, 1.0


def seed_target(x):
    import numpy as np

    return np.sin(3.0 * x) * x


def train_seed_model(path: Path = SEED_MODEL) -> None:
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np

    keras.utils.set_random_seed(20261124)
    x = np.linspace(X_MIN, X_MAX, 256).reshape(-1, 1)
    scaled = (x - X_MIN) / (X_MAX - X_MIN)
    model = keras.Sequential(
        [
            keras.Input((1,), name="x_scaled"),
            keras.layers.Dense(3, activation="tanh", name="hidden_1"),
            keras.layers.Dense(2, activation="tanh", name="hidden_2"),
            keras.layers.Dense(1, activation="linear", name="y"),
        ],
        name="seed",
    )
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="mse")
    model.fit(scaled, seed_target(x), epochs=3000, batch_size=256, verbose=0)
    loss = float(model.evaluate(scaled, seed_target(x), verbose=0))
    print(f"seed model trained: mse {loss:.3g}")
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_suffix(".tmp.keras")
    model.save(temp)
    temp.replace(path)


def outputs() -> dict[Path, str]:
    """Every generated file (path -> content), derived from the committed models."""
    net = load(SEED_MODEL)
    scaling = {"input": {"kind": "minmax", "min": [X_MIN], "max": [X_MAX], "feature_range": [0.0, 1.0]},
               "target": "y = sin(3x)*x"}
    files: dict[Path, str] = {SEED / "scaling.json": json.dumps(scaling, indent=2) + "\n"}
    for dtype, name in (("float32", "seed"), ("float64", "seed_f64")):
        files[SEED / f"{name}.c"] = emit_c(net, dtype=dtype, name=name)
        files[SEED / f"{name}.h"] = emit_c_header(net, dtype=dtype, name=name)
    # The formula in every form, in the original units (the MinMax input scaling folded in).
    raw = with_scaling(net, Scaling.from_dict(scaling["input"]))
    for target in ("python", "numpy", "numba", "sympy"):
        files[SEED / f"seed_{target}.py"] = emit(raw, target, dtype=BACKENDS[target].dtypes[-1], name="seed")
    files[SEED / "seed.tex"] = emit(raw, "latex", name="seed", digits=3)
    files[SEED / "seed_exact_named.tex"] = emit(raw, "latex", name="seed", digits=None, layout="named")
    files[SEED / "seed_expanded.tex"] = emit(raw, "latex", name="seed", digits=3, expand=True, layout="named")
    files[SEED / "README.md"] = SEED_README
    # The supported formats, layers and activations, from the registries: in full in the docs,
    # summed up in the README.
    support = activation_support()
    files[DOCS_SUPPORTED] = supported_page(support)
    readme = HERE.parent / "README.md"
    files[readme] = replace_block(readme.read_text(encoding="utf-8"), README_BLOCK, readme_summary(support))
    return files


DOCS_SUPPORTED = HERE.parent / "docs" / "supported.md"
README_BLOCK = ("<!-- summary:start -->", "<!-- summary:end -->")
#: Activations probed in more than one form, or with parameters they need: (label, parameters).
VARIANTS = {"gelu": (("gelu (tanh)", {"approximate": 1.0}), ("gelu (exact, erf)", {"approximate": 0.0})),
            "threshold": (("threshold", {"threshold": 0.1, "default_value": -1.0}),)}


def _probe_network(name: str, params: dict):
    """One Dense layer of 2 inputs with the activation (last layer: softmax's q15 form needs it)."""
    import numpy as np

    from mlpcodegen.core.activations import REGISTRY
    from mlpcodegen.core.ir import Activation, Dense, Network

    spec = REGISTRY[name]
    units = 4 if spec.halves else 2
    if spec.per_unit:
        params = {key: (0.2,) * units for key in spec.per_unit}
    kernel = np.array([[0.5, -0.25, 0.75, -1.0], [0.25, 0.5, -0.5, 1.0]])[:, :units]
    return Network(2, (Dense(kernel, np.zeros(units), Activation(name, params), "probe"),), name="probe")


def _emits(net, target: str, dtype: str) -> bool:
    """Whether ``target`` writes ``net`` in ``dtype`` (a refusal is an UnsupportedError naming
    the layer); q15 is planned for [-1, 1], int8 calibrated on rows of it."""
    import numpy as np

    from mlpcodegen.core import ptq
    from mlpcodegen.core.errors import MlpCodegenError

    try:
        if dtype == "int8":
            net = ptq.calibrate(net, np.random.default_rng(0).uniform(-1.0, 1.0, (64, net.n_inputs)))
        emit(net, target, dtype=dtype, name="probe", **({"domain": (-1.0, 1.0)} if dtype == "q15" else {}))
    except MlpCodegenError:
        return False
    return True


def activation_support() -> dict[str, dict[str, bool]]:
    """activation label -> {"target dtype": whether the target writes it}, by asking each
    target to emit a one-layer network with it (default parameters): no list kept by hand."""
    from mlpcodegen.core.activations import REGISTRY

    columns = [(target, dtype) for target, backend in BACKENDS.items() for dtype in backend.supported]
    probes = {label: _probe_network(name, dict(params)) for name in REGISTRY
              for label, params in VARIANTS.get(name, ((name, {}),))}
    found = {column: tuple(_emits(net, *column) for net in probes.values()) for column in columns}
    # A target's dtypes that write the same activations share one column ("c float32/float64").
    merged: dict[tuple[str, tuple[bool, ...]], list[str]] = {}
    for (target, dtype), answers in found.items():
        merged.setdefault((target, answers), []).append(dtype)
    table: dict[str, dict[str, bool]] = {label: {} for label in probes}
    for (target, answers), dtypes in merged.items():
        for label, answer in zip(probes, answers):
            table[label][f"{target} {'/'.join(dtypes)}"] = answer
    return table


def _targets_of(support: dict[str, dict[str, bool]]) -> dict[str, list[str]]:
    """column -> the activations it writes."""
    columns = next(iter(support.values()))
    return {column: [label for label, row in support.items() if row[column]] for column in columns}


def readme_summary(support: dict[str, dict[str, bool]]) -> str:
    """Formats and, per target, the activations it lacks: the README's short form of docs/supported.md."""
    from mlpcodegen.frontends import FORMATS

    every = list(support)
    by_column = _targets_of(support)
    lines = [README_BLOCK[0], "", "| format | reads | needs |", "|---|---|---|"]
    lines += [f"| {fmt.title} | {fmt.reads} | {fmt.needs} |" for fmt in FORMATS]
    lines += ["", f"Activations ({len(every)}): {', '.join(f'`{label}`' for label in every)}.", ""]
    groups: dict[tuple[str, ...], list[str]] = {}
    for column, labels in by_column.items():
        missing = tuple(label for label in every if label not in labels)
        groups.setdefault(missing, []).append(column)
    for missing, columns in groups.items():
        where = ", ".join(f"`{column}`" for column in columns)
        if not missing:
            lines.append(f"* {where}: every activation.")
        elif len(missing) * 2 > len(every):
            kept = [label for label in every if label not in missing]
            lines.append(f"* {where}: only {', '.join(f'`{label}`' for label in kept)}.")
        else:
            lines.append(f"* {where}: all but {', '.join(f'`{label}`' for label in missing)}.")
    lines += ["", README_BLOCK[1]]
    return "\n".join(lines)


def supported_page(support: dict[str, dict[str, bool]]) -> str:
    """docs/supported.md: the registries' tables and the target x activation matrix."""
    from mlpcodegen.app.support import supported_markdown

    columns = list(next(iter(support.values())))
    tables = supported_markdown()
    lines = ["<!-- generated by generated/regenerate.py — do not edit -->", "# Supported formats, layers and "
             "activations", "", "Written by `python generated/regenerate.py` from the code's registries (the "
             "frontends' tables, the activation registry); `tests/test_generated.py` fails when this page is "
             "stale.", "", tables, "", "## Which target writes which activation", "",
             "Found by asking each target to write a one-layer network with the activation (default "
             "parameters; q15 planned for inputs in [-1, 1], int8 calibrated on rows of it). A refusal is "
             "an error naming the layer and what the target supports.", "",
             "| activation | " + " | ".join(f"`{column}`" for column in columns) + " |",
             "|---|" + "---|" * len(columns)]
    for label, row in support.items():
        lines.append(f"| `{label}` | " + " | ".join("yes" if row[column] else "—" for column in columns) + " |")
    return "\n".join(lines) + "\n"


def replace_block(text: str, markers: tuple[str, str], block: str) -> str:
    """``text`` with the part from the first marker to the second replaced by ``block``."""
    head, found, rest = text.partition(markers[0])
    _, found_end, tail = rest.partition(markers[1])
    if not (found and found_end):
        raise SystemExit(f"regenerate.py: the markers {markers} are missing from the README")
    return head + block + tail


def pictures() -> dict[Path, bytes]:
    from mlpcodegen.app.plot import render_png

    raw = with_scaling(load(SEED_MODEL), read_scaling_file(SEED / "scaling.json")[0])
    path = SEED / "seed.png"  # written atomically by render_png
    render_png(raw, path, digits=3, domain=(X_MIN, X_MAX))
    return {path: path.read_bytes()}


SEED_README = """<!-- generated by mlpcodegen — do not edit -->
# The seed model

`seed.keras`: 1-3-2-1 (tanh, tanh, linear), trained with fixed seeds to approximate
y = sin(3x)·x for x in [-1, 1], on inputs MinMax-scaled to [0, 1] (`scaling.json`).
Everything else here is written by `python generated/regenerate.py`.

| file | what |
|---|---|
| `seed.c`, `seed.h` | C99, float32, model units (input already scaled to [0, 1]) |
| `seed_f64.c`, `seed_f64.h` | the same in float64 |
| `seed_python.py` | pure Python (needs only `math`), original units (x in [-1, 1]) |
| `seed_numpy.py`, `seed_numba.py` | NumPy / Numba modules, original units |
| `seed_sympy.py` | SymPy expression `expr` in `x`, original units |
| `seed.tex` | the formula, weights rounded to 3 digits |
| `seed_exact_named.tex` | exact weights, one line per neuron |
| `seed_expanded.tex` | tanh written with exponentials, 3 digits |
| `seed.png` | the formula and the network against the 3-digit formula |
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail if a committed file is stale")
    parser.add_argument("--retrain", action="store_true", help="retrain the seed model first")
    args = parser.parse_args(argv)
    if args.retrain:
        train_seed_model()
    stale = []
    for path, text in outputs().items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(path.relative_to(HERE.parent))
        else:
            write_atomic(path, text)
            print(f"wrote {path.relative_to(HERE.parent)}")
    if args.check:  # a picture depends on matplotlib's version and fonts: only check it is there
        stale += [p.relative_to(HERE.parent) for p in (SEED / "seed.png",) if not p.exists()]
    else:
        for path in pictures():
            print(f"wrote {path.relative_to(HERE.parent)}")
    if stale:
        print("stale generated files (run python generated/regenerate.py):", *stale, sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
