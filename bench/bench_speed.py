#!/usr/bin/env python3
"""Side-by-side speed of every path, in one process, for the three reference models.

    python bench/bench_speed.py [--quick]     # writes bench/RESULTS.md and bench/RESULTS.png

Models: seed 1-3-2-1 tanh/tanh/linear (the committed generated/seed/seed.keras),
mid 8-64-64-1 relu/relu/linear, cls 16-64-64-10 relu/relu/softmax (weights from fixed
seeds, saved as .keras so the conversion is timed from a file).  The paths, the timing
method and the correctness check are described in mlpcodegen/harness/bench.py; the
same code runs for one model as ``mlpcodegen bench MODEL``.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from conftest import build_model  # noqa: E402
from mlpcodegen.frontends.keras import load
from mlpcodegen.harness.keras_model import load_keras_model  # noqa: E402
from mlpcodegen.harness.bench import ROWS, bench_model  # noqa: E402
from mlpcodegen.harness.bench_report import write_report  # noqa: E402

SEED = "seed 1-3-2-1"


def models(folder: Path) -> dict:
    """label -> (keras model, .keras file)."""
    out = {SEED: (load_keras_model(REPO / "generated/seed/seed.keras"), REPO / "generated/seed/seed.keras")}
    for label, sizes, acts, seed in (("mid 8-64-64-1", [8, 64, 64, 1], ["relu", "relu", "linear"], 1),
                                     ("cls 16-64-64-10", [16, 64, 64, 10], ["relu", "relu", "softmax"], 2)):
        model = build_model(sizes, acts, [True] * 3, seed=seed)
        path = folder / f"{label.split()[0]}.keras"
        model.save(path)
        out[label] = (model, path)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--rows", type=int, nargs="+", default=list(ROWS))
    parser.add_argument("--out", default=str(HERE / "RESULTS.md"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        benches = [bench_model(model, load(path), label, rows=args.rows, quick=args.quick, model_file=path)
                   for label, (model, path) in models(Path(folder)).items()]
    command = "python bench/bench_speed.py" + (" --quick" if args.quick else "")
    png = write_report(benches, args.rows, Path(args.out), command, seed_labels=[SEED], goals=True)
    print(Path(args.out).read_text())
    print(f"wrote {args.out} and {png}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
