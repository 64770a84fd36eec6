#!/usr/bin/env python3
"""Write everything under generated/ (the one script that does).

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

from mlpcodegen._files import write_atomic  # noqa: E402
from mlpcodegen.backends.c import emit_c, emit_c_header  # noqa: E402
from mlpcodegen.frontends.keras import load  # noqa: E402

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
    """Every generated file (path -> text), derived from the committed models."""
    net = load(SEED_MODEL)
    scaling = {"input": {"kind": "minmax", "min": [X_MIN], "max": [X_MAX], "feature_range": [0.0, 1.0]},
               "target": "y = sin(3x)*x"}
    files = {SEED / "scaling.json": json.dumps(scaling, indent=2) + "\n"}
    for dtype, name in (("float32", "seed"), ("float64", "seed_f64")):
        files[SEED / f"{name}.c"] = emit_c(net, dtype=dtype, name=name)
        files[SEED / f"{name}.h"] = emit_c_header(net, dtype=dtype, name=name)
    return files


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
    if stale:
        print("stale generated files (run python generated/regenerate.py):", *stale, sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
