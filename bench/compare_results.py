#!/usr/bin/env python3
"""Did a change slow anything down?  bench/bench_speed.py's tables of two code versions,
run alternately on the same machine, side by side.

    git worktree add /tmp/before <commit>
    for i in 1 2; do
      (cd /tmp/before && python bench/bench_speed.py --out /tmp/before_$i.md)
      python bench/bench_speed.py --out /tmp/after_$i.md
    done
    python bench/compare_results.py --before /tmp/before_*.md --after /tmp/after_*.md

Absolute times on a shared virtual machine drift by 2x from one day to the next (the same
commit's bench/RESULTS.md rows, a day apart), so a regression is judged only between runs
taken in one sitting, alternating the versions.  For every model and every path timed in C
or over 10^6 rows (the rows issue 15 says must not regress), the table gives each run's
figure and the median over runs of after ÷ before, run i of one version against run i of the
other, taken in turn (time: < 1 is faster; throughput: > 1 is faster).  Writes the table to ``--out``.

For generated code and its runtime, bench/regression_gate.py is the gate: the batch and
one-sample rows of six networks (the wide ones included) against an earlier commit, loaded
into one process and timed interleaved, judged by :func:`verdict` below.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

#: (path row, column, what it is): the rows compared.  Columns as bench_speed writes them.
WATCHED = (("generated C, timed inside C", "1 sample", "time"),
           ("generated C, timed inside C", "1,000,000 rows", "rate"),
           ("plain C loops, timed inside C", "1 sample", "time"),
           ("plain C loops, timed inside C", "1,000,000 rows", "rate"),
           ("C via cffi: net(x)", "1,000,000 rows", "rate"),
           ("C via cffi: bound call", "1 sample", "time"),
           ("Numba: net(x)", "1,000,000 rows", "rate"))
#: Rows whose code is the same in every version (the hand-written reference loops): their
#: ratio is the noise of the sitting.
GAUGES = ("plain C loops, timed inside C",)
GAUGE = "noise gauge (the same C in both)"
UNITS = {"ns": 1e-9, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "/s": 1.0, "k/s": 1e3, "M/s": 1e6, "G/s": 1e9}


def tables(path: Path) -> dict[str, dict[str, dict[str, str]]]:
    """model -> path row -> column -> cell, from one RESULTS.md."""
    out: dict[str, dict[str, dict[str, str]]] = {}
    model, header = None, None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("## ") and ":" in line:
            model, header = line[3:].split(":")[0], None
        elif model and line.startswith("| path |"):
            header = [cell.strip() for cell in line.strip("|").split("|")]
        elif model and header and line.startswith("| ") and not line.startswith("|---"):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            out.setdefault(model, {})[cells[0]] = dict(zip(header, cells))
    return out


def value(cell: str) -> float:
    """'1,234 ns' -> 1.234e-06; '3.72 M/s' -> 3.72e6; nan when not a figure."""
    number, _, unit = cell.replace(",", "").partition(" ")
    try:
        return float(number) * UNITS[unit]
    except (ValueError, KeyError):
        return float("nan")


def _ratio(runs_before: list, runs_after: list, model: str, row: str, column: str) -> float:
    """Median over runs of after ÷ before, run i of one version against run i of the other
    (taken in turn); nan when a version lacks the row."""
    old = [value(run[model][row][column]) for run in runs_before if row in run.get(model, {})]
    new = [value(run[model][row][column]) for run in runs_after if row in run.get(model, {})]
    return statistics.median(n / o for o, n in zip(old, new)) if old and new else float("nan")


def verdict(ratio: float, gauge: float, kind: str) -> str:
    """Slower: worse by more than 10%, and by more than 10% beyond what the noise gauge (the
    same code, timed alongside) moved.  ``ratio`` and ``gauge`` are after ÷ before of a
    ``kind`` ("time": lower is better, "rate": higher is better)."""
    worse = ratio if kind == "time" else 1 / ratio
    drift = gauge if kind == "time" else 1 / gauge
    return "**slower**" if worse > 1.1 and worse > 1.1 * drift else "same or better, or within the noise"


def compare(before: list[Path], after: list[Path]) -> list[str]:
    runs_before, runs_after = [tables(p) for p in before], [tables(p) for p in after]
    lines = ["| model | path | figure | before (each run) | after (each run) | after ÷ before (median) | "
             "noise gauge (same figure) | verdict |", "|---|---|---|---|---|---|---|---|"]
    for model in runs_before[0]:
        for row, column, kind in WATCHED:
            ratio = _ratio(runs_before, runs_after, model, row, column)
            if ratio != ratio:  # nan: not in both versions
                continue
            gauge = _ratio(runs_before, runs_after, model, GAUGES[0], column)
            judged = GAUGE if row in GAUGES else verdict(ratio, gauge, kind)
            cells = [" / ".join(run[model][row][column] for run in runs if row in run.get(model, {}))
                     for runs in (runs_before, runs_after)]
            lines.append(f"| {model} | {row} | {column} ({'lower' if kind == 'time' else 'higher'} is "
                         f"better) | {cells[0]} | {cells[1]} | {ratio:.2f} | {gauge:.2f} | {judged} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", nargs="+", type=Path, required=True)
    parser.add_argument("--after", nargs="+", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "REGRESSION.md")
    parser.add_argument("--title", default="")
    parser.add_argument("--append", metavar="HEADING", help="add a section so named to --out instead of rewriting it")
    args = parser.parse_args()
    said = args.title or f"`python bench/compare_results.py` of {len(args.before)} + {len(args.after)} runs."
    table = [said, "", *compare(args.before, args.after), ""]
    if args.append:
        text = args.out.read_text(encoding="utf-8") + "\n".join([f"## {args.append}", "", *table])
    else:
        text = "\n".join(["# Before and after, side by side (bench/bench_speed.py runs, alternated)", "",
                          "Verdict: slower when the median ratio is worse than 10% and more than 10% worse than "
                          "the noise gauge: the hand-written loops, the same C in every version, timed in the same "
                          "runs (its 1-sample figure for 1-sample rows, its 10^6-row figure for those).", "",
                          *table])
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
