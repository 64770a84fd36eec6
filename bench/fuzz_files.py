"""A longer fuzzing campaign of the model-file reader (issue 9).

Runs the mutators of tests/test_fuzz_files.py over many seeds for a given time and
writes bench/FUZZ.md: outcomes by kind, and every mutant that escaped as something else
than an MlpCodegenError or a valid network (none, when the reader is right).

    python bench/fuzz_files.py --minutes 5
"""
from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import test_fuzz_files as fuzz  # noqa: E402


def campaign(minutes: float, first_seed: int) -> tuple[collections.Counter, list[str], int, float]:
    counts: collections.Counter = collections.Counter()
    escapes: list[str] = []
    slowest = 0.0
    deadline = time.monotonic() + 60 * minutes
    seed = first_seed
    with tempfile.TemporaryDirectory() as folder:
        while time.monotonic() < deadline:
            for index, (what, data) in enumerate(fuzz.all_mutants(seed)):
                path = Path(folder) / f"m{index}{fuzz.suffix(data)}"
                path.write_bytes(data)
                started = time.monotonic()
                try:
                    counts[fuzz.outcome(path)] += 1
                except Exception as exc:  # noqa: BLE001 - what the campaign looks for
                    counts["ESCAPED"] += 1
                    escapes.append(f"seed {seed}: {what}: {type(exc).__name__}: {str(exc)[:200]}")
                slowest = max(slowest, time.monotonic() - started)
                path.unlink()
                if time.monotonic() > deadline:
                    break
            for what, text, weights in fuzz.pair_mutants(seed):
                model, weights_path = Path(folder) / "m.json", Path(folder) / "w.h5"
                model.write_bytes(text)
                weights_path.write_bytes(weights)
                started = time.monotonic()
                try:
                    counts[fuzz.outcome(model, weights=weights_path)] += 1
                except Exception as exc:  # noqa: BLE001 - what the campaign looks for
                    counts["ESCAPED"] += 1
                    escapes.append(f"seed {seed}: {what}: {type(exc).__name__}: {str(exc)[:200]}")
                slowest = max(slowest, time.monotonic() - started)
                if time.monotonic() > deadline:
                    break
            for index, (what, data) in enumerate(fuzz.tflite_mutants(seed)):
                path = Path(folder) / f"t{index}.tflite"
                path.write_bytes(data)
                started = time.monotonic()
                try:
                    counts[fuzz.tflite_outcome(path)] += 1
                except Exception as exc:  # noqa: BLE001 - what the campaign looks for
                    counts["ESCAPED"] += 1
                    escapes.append(f"seed {seed}: {what}: {type(exc).__name__}: {str(exc)[:200]}")
                slowest = max(slowest, time.monotonic() - started)
                path.unlink()
                if time.monotonic() > deadline:
                    break
            seed += 1
    return counts, escapes, seed - first_seed, slowest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--out", default=str(REPO / "bench" / "FUZZ.md"))
    args = parser.parse_args()
    started = time.monotonic()
    counts, escapes, seeds, slowest = campaign(args.minutes, args.seed)
    total = sum(counts.values())
    lines = ["# Fuzzing the model-file reader", "",
             f"`python bench/fuzz_files.py --minutes {args.minutes:g} --seed {args.seed}`: {total} mutated files "
             f"({seeds} seeds of truncations, byte flips, config-structure, zip and HDF5 mutations of valid "
             f".keras and .h5 files of Keras 2.2 to 3, of architecture JSON + weights pairs, and truncations, byte flips and forged 32-bit words of converter-made .tflite files) in {time.monotonic() - started:.0f} s; slowest file {slowest:.2f} s "
             f"(time limit {fuzz.LIMITS.seconds:g} s).", "",
             "| outcome | files |", "|---|---:|"]
    lines += [f"| {kind} | {n} |" for kind, n in counts.most_common()]
    lines += ["", "Escapes (anything but an MlpCodegenError or a valid network):", ""]
    lines += [f"- {e}" for e in escapes] or ["none"]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 1 if escapes else 0


if __name__ == "__main__":
    sys.exit(main())
