#!/usr/bin/env python3
"""Regression gate for generated code and its runtime: this checkout against a named
earlier commit, the batch paths of seven networks, interleaved in one process.

    python bench/regression_gate.py --against e28f8d9 [--also 7f30c94] [--isa native avx2] \
        [--rows 20000] [--rounds 7] [--append "HEADING"]

Run it before any change to generated code or its runtime lands, and say what it showed.
Each earlier commit is taken with ``git archive`` into a temporary folder; a child process
with that folder on its path emits its C for the same networks (and, when it has the
native runtime, builds its predictor with the same flags).  This process then builds every
version's C and loads every version's library, and each round times, in turn: NAME_batch
called from C (cffi, preallocated buffers) and ``predict(X)`` (one thread) of every version,
on the same rows (each figure of a round the best of two timings).  The one-sample
function is timed in C too (NAME called 20,000 times by a loop appended to each version's
C).  The noise gauge is this checkout's in-C call timed a second time at the end of every
round (the same code: its ratio to the first is the sitting's noise).
Verdicts follow bench/compare_results.py: slower when the median per-round ratio is worse
than 10% and more than 10% worse than the gauge.  Networks: seed 1-3-2-1, mid 8-64-64-1,
cls 16-64-64-10, 64-256-256-10, 32-1024-1024-1 and 784-512-512-10 (bench/batch.py's).
Writes a section to bench/REGRESSION.md (``--append HEADING``) or prints it.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO), str(HERE)]

import numpy as np  # noqa: E402

from batch import ISAS, ONE_SAMPLE_CALLS, in_c_call, networks, predictor, rounds_of  # noqa: E402
from compare_results import verdict  # noqa: E402
from mlpcodegen.core.ir import Network  # noqa: E402
from mlpcodegen.runtime import cffi_build  # noqa: E402

#: The networks gated: bench/batch.py's but 10-16-8-1.
GATED = ("seed 1-3-2-1", "10-16-8-1 tanh", "mid 8-64-64-1", "cls 16-64-64-10", "64-256-256-10", "32-1024-1024-1",
         "784-512-512-10")

#: Run in the earlier commit's checkout: its IR and emitter, and its runtime when it has one.
_CHILD = r"""
import json, sys
import numpy as np
folder, flags = sys.argv[1], tuple(json.loads(sys.argv[2]))
import importlib, os
import mlpcodegen
# the commit's own IR: before issue 23's folders it was mlpcodegen.ir (an editable install of
# this checkout would otherwise answer mlpcodegen.core.ir with the new classes)
_layered = os.path.isdir(os.path.join(mlpcodegen.__path__[0], "core"))
_ir = importlib.import_module("mlpcodegen." + ("core.ir" if _layered else "ir"))
Activation, Dense, Network = _ir.Activation, _ir.Dense, _ir.Network
from mlpcodegen.backends.c import emit_c
try:
    from mlpcodegen.runtime import cffi_build, compile_c
    cffi_build.build_network.__defaults__ = (flags,)  # this commit's defaults, bound at definition
except ImportError:
    compile_c = None
out = {}
for i, label in enumerate(json.loads(open(folder + "/labels.json").read())):
    data = np.load(f"{folder}/{i}.npz")
    acts = [str(a) for a in data["acts"]]
    net = Network(int(data["n_in"]), tuple(Dense(data[f"k{j}"], data[f"b{j}"], Activation(a), f"dense_{j}")
                                           for j, a in enumerate(acts)))
    open(f"{folder}/{i}.c", "w").write(emit_c(net, dtype="float32", name="net"))
    entry = {}
    if compile_c is not None:
        f = compile_c(net, dtype="float32", name="net")
        entry = {"library": f.library, "module": getattr(f, "_library_name", None)}
    out[label] = entry
print(json.dumps(out))
"""


def checkout(commit: str, folder: Path) -> Path:
    """The commit's files (git archive) in ``folder``."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", commit], check=True,
                             capture_output=True).stdout
    target = folder / commit
    target.mkdir()
    with tarfile.open(fileobj=__import__("io").BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target


def earlier(commit: str, nets: dict[str, Network], flags, folder: Path) -> tuple[dict, dict]:
    """(label -> C source, label -> {"library", "module"} or {}) of the commit."""
    tree = checkout(commit, folder)
    data = folder / f"{commit}-nets"
    data.mkdir()
    (data / "labels.json").write_text(json.dumps(list(nets)))
    for i, net in enumerate(nets.values()):
        arrays = {f"k{j}": layer.kernel for j, layer in enumerate(net.layers)}
        arrays.update({f"b{j}": layer.bias for j, layer in enumerate(net.layers)})
        np.savez(data / f"{i}.npz", n_in=net.n_inputs, acts=np.array([l.activation.name for l in net.layers]), **arrays)
    env = {**os.environ, "PYTHONPATH": str(tree)}
    run = subprocess.run([sys.executable, "-c", _CHILD, str(data), json.dumps(list(flags))], env=env, cwd=tree,
                         capture_output=True, text=True)
    if run.returncode:
        raise RuntimeError(f"{commit}: {run.stderr.strip().splitlines()[-1] if run.stderr.strip() else 'failed'}")
    built = json.loads(run.stdout.strip().splitlines()[-1])
    return {label: (data / f"{i}.c").read_text() for i, label in enumerate(nets)}, built


def native_predict(entry: dict):
    """The earlier build's native predict (its library loaded into this process), or None."""
    if not entry.get("library") or not entry.get("module"):
        return None
    module = cffi_build._import(entry["module"], Path(entry["library"]))  # the native module's own name
    return module.predict


def gate(nets: dict[str, Network], versions: dict, isa: str, rows: int, rounds: int) -> list[dict]:
    """versions: name -> (sources or None for this checkout, builds).  One row per network and path."""
    flags = ISAS[isa]
    results = []
    for label, net in nets.items():
        x = np.random.default_rng(0).uniform(-1, 1, (rows, net.n_inputs)).astype(np.float32)
        paths, outputs = {}, {}
        for name, (sources, builds) in versions.items():
            call, y, one = in_c_call(net, flags, x, sources[label] if sources else None, one=True)
            paths[(name, "in C")] = call
            paths[(name, "one sample in C")] = one
            outputs[(name, "in C")] = y
            if sources is None:
                f = predictor(net, flags)
                paths[(name, "predict(X)")] = lambda f=f: f(x, threads=1)
            else:
                native = native_predict(builds.get(label, {}))
                if native is not None:
                    paths[(name, "predict(X)")] = lambda native=native: native(x, threads=1)
        this = next(name for name, (sources, _) in versions.items() if sources is None)
        paths[("gauge", "in C")] = paths[(this, "in C")]
        for call in paths.values():
            call()
        same = {name: bool(np.array_equal(outputs[(name, "in C")], outputs[(this, "in C")])) for name in versions}
        times = rounds_of(paths, rounds)
        gauge = statistics.median(a / g for a, g in zip(times[(this, "in C")], times[("gauge", "in C")]))
        for name in versions:
            if name == this:
                continue
            for path in ("in C", "predict(X)", "one sample in C"):
                if (name, path) not in paths or (this, path) not in paths:
                    continue
                per_round = [o / n for o, n in zip(times[(name, path)], times[(this, path)])]  # > 1: this is faster
                count = ONE_SAMPLE_CALLS if path == "one sample in C" else rows
                results.append({"network": label, "path": path, "before": name, "isa": isa,
                                "before_rate": count / statistics.median(times[(name, path)]),
                                "after_rate": count / statistics.median(times[(this, path)]),
                                "ratio": statistics.median(per_round), "gauge": gauge, "same_bits": same[name]})
    return results


def rate(value: float, path: str) -> str:
    if path == "one sample in C":
        return f"{1e9 / value:.3g} ns per sample" if value > 1e5 else f"{1e6 / value:.3g} µs per sample"
    return f"{value / 1e6:.3g} M rows/s" if value >= 1e5 else f"{value / 1e3:.3g} k rows/s"


def table(results: list[dict], this: str) -> list[str]:
    lines = [f"| network | ISA | path | before | before: rate | {this}: rate | {this} ÷ before (median of "
             "per-round ratios; > 1 faster) | noise gauge | verdict | same bits as before |", "|" + "---|" * 10]
    for r in results:
        lines.append(f"| {r['network']} | {r['isa']} | {r['path']} | {r['before']} | {rate(r['before_rate'], r['path'])} | "
                     f"{rate(r['after_rate'], r['path'])} | {r['ratio']:.2f} | {r['gauge']:.2f} | "
                     f"{verdict(r['ratio'], r['gauge'], 'rate')} | {'yes' if r['same_bits'] else 'no'} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", required=True, help="the earlier commit (e.g. e28f8d9)")
    parser.add_argument("--also", nargs="*", default=[], help="more earlier commits, reported when they still build")
    parser.add_argument("--isa", nargs="+", default=list(ISAS), choices=list(ISAS))
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--only", nargs="*", choices=GATED, metavar="LABEL",
                        help=f"network labels (default all): {', '.join(GATED)}")
    parser.add_argument("--out", type=Path, default=HERE / "REGRESSION.md")
    parser.add_argument("--append", metavar="HEADING", help="add a section so named to --out (else print only)")
    args = parser.parse_args()
    nets = networks([label for label in GATED if not args.only or label in args.only])
    this = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip() + " (this checkout)"
    load, results, notes = [os.getloadavg()[0]], [], []
    for isa in args.isa:
        with tempfile.TemporaryDirectory() as temp:
            versions = {this: (None, {})}
            for commit in [args.against, *args.also]:
                try:
                    versions[commit] = earlier(commit, nets, ISAS[isa], Path(temp))
                except (RuntimeError, subprocess.CalledProcessError) as exc:
                    notes.append(f"{commit} ({isa}): not built: {exc}")
            print(f"timing {isa}: {', '.join(versions)}", file=sys.stderr)
            results += gate(nets, versions, isa, args.rows, args.rounds)
    load.append(os.getloadavg()[0])
    command = "python bench/regression_gate.py " + " ".join(sys.argv[1:])
    text = [f"`{command.strip()}`: {args.rows:,} rows, {args.rounds} rounds, "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average {load[0]:.1f} before, {load[1]:.1f} "
            "after.  Each ratio is this checkout's rate over the earlier commit's, per round, median; the gauge is "
            "this checkout's in-C call timed twice per round (its ratio is the sitting's noise).  A commit without "
            "the native runtime has no predict(X) row; \"one sample in C\" runs NAME 20,000 times from C per "
            "timing.", "", *(f"- {note}" for note in notes), "",
            *table(results, this), ""]
    if args.append:
        previous = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        args.out.write_text(previous.rstrip("\n") + "\n\n" + "\n".join([f"## {args.append}", "", *text]),
                            encoding="utf-8")
    print("\n".join(text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
