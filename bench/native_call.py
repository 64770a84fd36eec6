#!/usr/bin/env python3
"""The compiled predictor's Python paths, side by side in one run: the native call,
``scalar``, cache hits and threads.

    python bench/native_call.py [--quick] [--out bench/NATIVE.md]

Models: seed 1-3-2-1 tanh/tanh/linear (generated/seed/seed.keras), mid 8-64-64-1
relu/relu/linear and cls 16-64-64-10 relu/relu/softmax (normal weights scaled by
1/sqrt(fan-in), fixed seeds, built as IR), float32, default options; the cache hit on
784-512-512-10 relu/relu/softmax.  Every table gives medians over rounds; ratios are
taken within each round (the paths of a round run back to back) and their median is
reported.  The machine's load (``os.getloadavg``) is printed before and after: the
thread figures need an otherwise idle machine.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import timeit
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import numpy as np  # noqa: E402

from mlpcodegen.frontends import load  # noqa: E402
from mlpcodegen.core.ir import Network  # noqa: E402
from nets import dense_chain  # noqa: E402
from mlpcodegen.runtime import compile_c  # noqa: E402
from mlpcodegen.runtime import CompiledNetwork  # noqa: E402
from mlpcodegen.runtime.cffi_build import _LOADED  # noqa: E402


def random_net(widths, activations, seed) -> Network:
    """tests/nets.py's chain (kernels N(0, 1/fan-in), biases N(0, 0.01)), as the tests build it."""
    return dense_chain(widths, activations, seed, names="dense_{i}")


def models() -> dict[str, Network]:
    return {"seed 1-3-2-1": load(REPO / "generated/seed/seed.keras"),
            "mid 8-64-64-1": random_net([8, 64, 64, 1], ["relu", "relu", "linear"], 1),
            "cls 16-64-64-10": random_net([16, 64, 64, 10], ["relu", "relu", "softmax"], 2)}


def per_call(stmt: str, env: dict, number: int) -> float:
    """ns per call: the best of 3 repeats of ``number`` calls (the least disturbed)."""
    return min(timeit.Timer(stmt, globals=env).repeat(3, number)) / number * 1e9


def interleaved(statements: list[str], env: dict, number: int, slices: int = 100) -> list[float]:
    """ns per call of each statement: the best of ``slices`` runs of ``number // slices``
    calls, the statements taking turns slice by slice, so a burst of load from other work
    falls on all of them alike and the best slices are the undisturbed ones."""
    timers = [timeit.Timer(stmt, globals=env) for stmt in statements]
    calls = max(1, number // slices)
    best = [float("inf")] * len(timers)
    for _ in range(slices):
        for index, timer in enumerate(timers):
            best[index] = min(best[index], timer.timeit(calls))
    return [value / calls * 1e9 for value in best]


def call_table(nets: dict, rounds: int, number: int) -> list[str]:
    lines = ["| model | bound `b.run()` | `predict(x)` | ratio `predict(x)` ÷ bound (target ≤ 1.2) | "
             "`predict.native(x)` ÷ bound | Python-class dispatch ÷ bound | Python path (before) | "
             "ratio before ÷ bound |",
             "|---|---|---|---|---|---|---|---|"]
    scalar_line = ""
    for label, net in nets.items():
        f = compile_c(net, name="bench")
        module = _LOADED[Path(f.library).name.split(".")[0]]
        before = CompiledNetwork(module, "bench", net.n_inputs, net.n_outputs, "float32")  # the cffi __call__
        b = f.bind()
        env = {"run": b.run, "f": f, "before": before, "entry": f.native, "dispatch": python_class_kind(f),
               "x": np.random.default_rng(0).normal(size=net.n_inputs).astype(np.float32),
               "scalar": f.scalar, "cffi_scalar": getattr(module.lib, "bench_scalar", None)}
        statements = ["run()", "f(x)", "before(x)", "entry(x)", "dispatch(x)"]
        statements += ["scalar(0.3)", "cffi_scalar(0.3)"] if env["cffi_scalar"] else []
        rows = []
        for _ in range(rounds):
            bound, native, old, entry, dispatch, *extra = interleaved(statements, env, number)
            extra = extra or [np.nan, np.nan]
            rows.append((bound, native, native / bound, old, old / bound, *extra, extra[0] / extra[1], entry / bound,
                         dispatch / bound))
        m = [statistics.median(column) for column in zip(*rows)]
        lines.append(f"| {label} | {m[0]:.0f} ns | {m[1]:.0f} ns | **{m[2]:.2f}×** | {m[8]:.2f}× | {m[9]:.2f}× | "
                     f"{m[3]:.0f} ns | {m[4]:.1f}× |")
        if env["cffi_scalar"]:
            scalar_line = (f"`scalar(v)` on seed: native {m[5]:.0f} ns, today's cffi `predict.scalar` {m[6]:.0f} ns: "
                           f"**{m[7]:.2f}×** (target ≤ 0.7×)")
    return lines + ["", scalar_line]


def python_class_kind(f):
    """``f`` as the previous design made it: a class made in Python whose ``__call__`` is
    the library's ``predict`` (CPython's instance-call dispatch: ``__call__`` lookup and an
    argument tuple), to measure against the C type the library makes now."""
    kind = type("CompiledNetwork", (CompiledNetwork,), {"__call__": f.native})
    twin = object.__new__(kind)
    twin.__dict__.update(vars(f))
    return twin


HIT_CHILD = textwrap.dedent("""
    import json, pickle, sys, time
    import numpy as np
    sys.path.insert(0, {repo!r})
    from bench.native_call import random_net
    from mlpcodegen.runtime import compile_c
    from mlpcodegen.runtime import cache_key, cffi_build
    net = random_net([784, 512, 512, 10], ["relu", "relu", "softmax"], 3)
    wall, cpu = time.perf_counter(), time.process_time()
    f = compile_c(net, name="big")
    first = (time.perf_counter() - wall, time.process_time() - cpu)
    wall, cpu = time.perf_counter(), time.process_time()
    compile_c(net, name="big")
    again = (time.perf_counter() - wall, time.process_time() - cpu)
    cffi_build._LOADED.clear(); cache_key._MEMO.clear()
    wall, cpu = time.perf_counter(), time.process_time()
    compile_c(net, name="big")
    reload = (time.perf_counter() - wall, time.process_time() - cpu)
    with open({pickled!r}, "wb") as stream:  # for UNPICKLE_CHILD, run next (this process's cache key)
        pickle.dump(f, stream)
    print(json.dumps([first, again, reload]))
""")

#: A worker's first unpickle of a predictor (what Dask does): mlpcodegen imported, then
#: pickle.loads (the IR unpickled and revalidated, keyed, the stamp checked, the library loaded).
UNPICKLE_CHILD = textwrap.dedent("""
    import json, pickle, sys, time
    sys.path.insert(0, {repo!r})
    import mlpcodegen
    with open({pickled!r}, "rb") as stream:
        data = stream.read()
    times = []
    for _ in range(2):  # the first unpickle, then a later task's
        wall, cpu = time.perf_counter(), time.process_time()
        f = pickle.loads(data)
        times.append((time.perf_counter() - wall, time.process_time() - cpu))
    print(json.dumps(times))
""")


def hit_table(runs: int) -> list[str]:
    """compile_c of 784-512-512-10 in fresh processes: the first builds, the rest hit."""
    with tempfile.TemporaryDirectory(prefix="mlpcodegen-pickle-") as folder:
        pickled = os.path.join(folder, "big.pickle")
        results = []
        for run in range(runs + 1):
            for child in (HIT_CHILD, UNPICKLE_CHILD) if run else (HIT_CHILD,):
                done = subprocess.run([sys.executable, "-c", child.format(repo=str(REPO), pickled=pickled)],
                                      capture_output=True, text=True, timeout=900, cwd=str(REPO), check=True)
                results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        size = os.path.getsize(pickled)
    build, hits = results[0][0], [[*results[k], *results[k + 1]] for k in range(1, len(results), 2)]

    def ms(values):
        return f"{1e3 * statistics.median(values):.1f} ms"

    lines = ["| `compile_c(784-512-512-10)` | wall | CPU |", "|---|---|---|",
             f"| first build (empty cache: emit + gcc) | {build[0]:.1f} s | {build[1]:.1f} s |"]
    for index, what in enumerate(["hit in a fresh process (first call: toolchain + IR hash + stamp check + load)",
                                  "hit again in the same process (same Network object)",
                                  "hit in-process after clearing the memory caches (IR hashed, stamp checked, "
                                  "library reloaded)",
                                  f"`pickle.loads` of the predictor ({size / 1e6:.1f} MB: the IR and options) in a "
                                  f"fresh process that imported mlpcodegen (a Dask worker's first unpickle): IR "
                                  f"revalidated, hashed, stamp checked, library loaded",
                                  "a second `pickle.loads` in that process (a later task on the worker): a new "
                                  "instance of the predictor rebuilt first, nothing hashed"]):
        lines.append(f"| {what} | **{ms([h[index][0] for h in hits])}** | {ms([h[index][1] for h in hits])} |")
    return lines + ["", f"Medians of {runs} fresh processes (target ≤ 20 ms)."]


def thread_table(nets: dict, rows: int, rounds: int) -> list[str]:
    lines = [f"| model ({rows:,} rows) | `predict(X, threads=1)` | `threads=2` | ratio (target ≥ 1.7) | "
             "ratio with `out=` | default `predict(X)` |", "|---|---|---|---|---|---|"]
    for label, net in nets.items():
        f = compile_c(net, name="bench")
        x = np.random.default_rng(1).normal(size=(rows, net.n_inputs)).astype(np.float32)
        out = np.empty((rows, net.n_outputs), np.float32)
        samples = []
        for _ in range(rounds):
            times = []
            for threads, into in ((1, None), (2, None), (1, out), (2, out), (None, None)):
                start = time.perf_counter()
                f(x, out=into, threads=threads)
                times.append(time.perf_counter() - start)
            samples.append((times[0], times[1], times[0] / times[1], times[2] / times[3], times[4]))
        m = [statistics.median(column) for column in zip(*samples)]
        lines.append(f"| {label} | {rows / m[0] / 1e6:.1f} M rows/s | {rows / m[1] / 1e6:.1f} M rows/s | "
                     f"**{m[2]:.2f}×** | {m[3]:.2f}× | {rows / m[4] / 1e6:.1f} M rows/s |")
    return lines


def threshold_table(nets: dict, rounds: int) -> list[str]:
    """Two threads against one on small batches: where a second thread starts to pay."""
    sizes = [256, 1024, 4096, 16384, 65536]
    lines = ["| model | work/row | " + " | ".join(f"{n:,} rows" for n in sizes) + " |",
             "|---|---|" + "---|" * len(sizes)]
    for label, net in nets.items():
        f = compile_c(net, name="bench")
        work = sum(int(getattr(layer, "kernel", np.empty(0)).size) + layer.units for layer in net.layers)
        cells = []
        for n in sizes:
            x = np.random.default_rng(2).normal(size=(n, net.n_inputs)).astype(np.float32)
            out = np.empty((n, net.n_outputs), np.float32)
            number = max(1, 200_000 // n)
            env = {"f": f, "x": x, "out": out}
            ratios = [per_call("f(x, out=out, threads=1)", env, number) /
                      per_call("f(x, out=out, threads=2)", env, number) for _ in range(rounds)]
            cells.append(f"{statistics.median(ratios):.2f}×")
        lines.append(f"| {label} | {work} | " + " | ".join(cells) + " |")
    return lines


def threads_section(threads: list[str], threshold: list[str], rows: int, rounds: int) -> list[str]:
    return ["## Batches over threads", "",
            f"`predict(X, threads=N)` on {rows:,} float32 rows (rows split in multiples of 64 over "
            f"pthreads that run without the GIL); median of {rounds} rounds.", "",
            *threads, "",
            "Two threads ÷ one on small batches (what sets `threads=None`: one thread per 4 M multiply-adds and "
            "activations of rows, WORK_PER_THREAD):", "",
            *threshold, ""]


def kept_threads(earlier: Path) -> list[str]:
    """The thread section of an earlier run's file, with the line saying when and under what
    load it was measured."""
    text = earlier.read_text()
    run = next(line for line in text.splitlines() if line.startswith("`python bench/native_call.py"))
    section = text[text.index("## Batches over threads"):text.index("## Cache hits")].rstrip("\n").splitlines()
    if any(line.startswith("Kept from an earlier run") for line in section):  # kept already: as it is
        return [*section, ""]
    note = (f"Kept from an earlier run (`--keep-threads`: they need an idle machine, which this run did not "
            f"have): {run}")
    return [section[0], "", note, *section[1:], ""]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer rounds and calls")
    parser.add_argument("--out", default=str(HERE / "NATIVE.md"))
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep-threads", metavar="NATIVE.md",
                        help="copy the thread tables from this earlier run instead of measuring them (they "
                             "need an idle machine; the call and cache tables do not)")
    args = parser.parse_args()
    rounds, number, runs = (3, 20_000, 2) if args.quick else (7, 200_000, 5)
    os.environ.setdefault("MLPCODEGEN_CACHE", tempfile.mkdtemp(prefix="mlpcodegen-native-"))
    nets = models()
    load_before = os.getloadavg()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    calls = call_table(nets, rounds, number)
    if args.keep_threads:
        thread_section = kept_threads(Path(args.keep_threads))
    else:
        thread_section = threads_section(thread_table(nets, args.rows, rounds), threshold_table(nets, rounds),
                                         args.rows, rounds)
    hits = hit_table(runs)
    load_after = os.getloadavg()
    keep = f" --keep-threads {args.keep_threads}" if args.keep_threads else ""
    text = "\n".join([
        "# The native call path, cache hits and threads",
        "",
        f"`python bench/native_call.py{' --quick' if args.quick else ''}{keep}` ({started}; {os.cpu_count()} CPUs; "
        f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}: the machine "
        f"{'was shared with other work, so absolute times are inflated' if max(load_before[0], load_after[0]) > 0.5 else 'was idle'}).",
        "",
        "## One float32 sample from Python",
        "",
        "`predict(x)` with `x` a float32 array of the inputs, against the bound call `b = predict.bind(); b.run()` "
        "(the same C, no conversion); the predictor is an instance of a C type its library makes, called "
        "through vectorcall straight into the library's `predict`; `predict.native(x)` is that entry point "
        "called as a function; *Python-class dispatch* is the design before it (a class made in Python "
        "whose `__call__` is the entry point: CPython's instance-call dispatch, a `__call__` lookup and an "
        "argument tuple, on top); *Python path (before)* is the predictor without native entry points "
        f"(the `__call__` over cffi).  Median of {rounds} rounds; in each round the paths take turns in 100 "
        f"slices of {number // 100:,} calls and each path's best slice counts; ratios within each round.",
        "",
        *calls,
        "",
        *thread_section,
        "## Cache hits",
        "",
        *hits,
        "",
        "## How it is built (and why)",
        "",
        "The native entry points are C appended to the network's own source in the one cffi (API mode) "
        "library: cffi's module `_mlpcodegen_KEY` and a second module `_mlpcodegen_KEY_native` with its own "
        "`PyInit_` function live in the same shared object (CPython loads several modules from one file when "
        "each has its own init function; the loader imports it under the second name).  So `predict` calls "
        "`NAME`/`NAME_batch` directly (no function pointer, no second library), a cache entry stays one file "
        "and one stamp, and the bound call (cffi) keeps working on the same library.  The alternative, one "
        "generic extension built once and handed the C functions' addresses, would save the wrapper's "
        "compile time per network (about 0.1 s of gcc CPU at -O1, measured on a 2-3-1 network: 0.28 s "
        "without it, 0.39–0.44 s with it; 0.49–0.54 s at -O3) but calls through pointers and is a second "
        "thing to cache and keep in step.  The entry point reads arrays through the NumPy C API (a float32 "
        "contiguous sample is used in place, anything else converted once as `np.ascontiguousarray` does).  "
        "The predictor's class is made by the library too (`predictor_type`, `PyType_FromSpecWithBases` "
        "with `CompiledNetwork` as the base and `Py_TPFLAGS_HAVE_VECTORCALL`): calling an instance goes "
        "straight into `predict`, while the instance keeps the Python class's attributes and methods "
        "(`bind()`, `scalar`, `native`, repr, pickling).  A class made in Python cannot do that on "
        "Python 3.11 (vectorcall is not inherited into it; its call is `__call__` looked up and given an "
        "argument tuple).",
        "",
        "A predictor pickles as its recipe (the IR and the options, `CompiledNetwork.__reduce__` → "
        "`rebuild_predictor`), never its library: unpickling builds it through the same cache as "
        "`compile_c` (the first unpickle on a machine compiles, later ones load the cached library).",
        "",
    ])
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
