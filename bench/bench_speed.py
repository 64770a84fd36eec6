#!/usr/bin/env python3
"""Side-by-side speed of every path, in one process, for the three reference models.

    python bench/bench_speed.py [--quick]        # writes bench/RESULTS.md

Models: seed 1-3-2-1 tanh/tanh/linear (the committed generated/seed/seed.keras),
mid 8-64-64-1 relu/relu/linear, cls 16-64-64-10 relu/relu/softmax (weights from fixed
seeds).  Paths: model.predict, model(x) eager, a NumPy float32 forward pass, the C
target via cffi (default code shape, and fully unrolled), the C timed inside C by a
small driver (no Python), Numba, NumPy module and pure Python targets.  Single-sample
latency is the median over repeated calls of one sample; batch throughput is the
median over repeats of one call on 10^4 rows (samples per second).  Ratios are to
model.predict, taken in the same run.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import numpy as np  # noqa: E402

from conftest import build_model  # noqa: E402
from mlpcodegen.backends import BACKENDS  # noqa: E402
from mlpcodegen.backends.c import emit_c, emit_c_header  # noqa: E402
from mlpcodegen.demo import median_seconds  # noqa: E402
from mlpcodegen.frontends.keras import load, load_keras_model  # noqa: E402

BATCH = 10_000


def models() -> dict:
    out = {"seed 1-3-2-1": load_keras_model(REPO / "generated/seed/seed.keras")}
    out["mid 8-64-64-1"] = build_model([8, 64, 64, 1], ["relu", "relu", "linear"], [True] * 3, seed=1)
    out["cls 16-64-64-10"] = build_model([16, 64, 64, 10], ["relu", "relu", "softmax"], [True] * 3, seed=2)
    return out


DRIVER = r"""
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <time.h>
#include "net.h"
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec; }
int main(void)
{
    static float x[%(batch)d * %(n_in)d], y[%(batch)d * %(n_out)d];
    volatile float sink = 0.0f;
    double best_one = 1e9, best_batch = 1e9;
    int r, i;
    for (i = 0; i < %(batch)d * %(n_in)d; ++i) x[i] = (float)((i * 7919) %% 2001) / 1000.0f - 1.0f;
    for (r = 0; r < 7; ++r) {
        double t0 = now();
        for (i = 0; i < 100000; ++i) { x[0] = (float)i * 1e-6f; net(x, y); sink += y[0]; }
        double t1 = now();
        net_batch(x, y, %(batch)d);
        double t2 = now();
        sink += y[0];
        if ((t1 - t0) / 100000 < best_one) best_one = (t1 - t0) / 100000;
        if ((t2 - t1) < best_batch) best_batch = t2 - t1;
    }
    printf("%%.6e %%.6e\n", best_one, %(batch)d / best_batch);
    return sink == 12345.0f;
}
"""


def in_c(net, folder: Path) -> tuple[float, float]:
    """(seconds per sample, samples/s) timed inside C (best of 7 runs)."""
    (folder / "net.c").write_text(emit_c(net, dtype="float32", name="net"))
    (folder / "net.h").write_text(emit_c_header(net, dtype="float32", name="net"))
    (folder / "main.c").write_text(DRIVER % {"batch": BATCH, "n_in": net.n_inputs, "n_out": net.n_outputs})
    exe = folder / "driver"
    subprocess.run(["gcc", "-std=c99", "-O2", str(folder / "net.c"), str(folder / "main.c"), "-o", str(exe), "-lm"],
                   check=True)
    one, rate = subprocess.run([str(exe)], capture_output=True, text=True).stdout.split()
    return float(one), float(rate)


def numpy_forward(net):
    layers = [(np.asarray(l.kernel, np.float32), None if l.bias is None else np.asarray(l.bias, np.float32),
               l.activation.name) for l in net.layers]
    acts = {"relu": lambda z: np.maximum(z, 0), "tanh": np.tanh, "linear": lambda z: z,
            "softmax": lambda z: (lambda e: e / e.sum(-1, keepdims=True))(np.exp(z - z.max(-1, keepdims=True)))}

    def forward(x):
        for kernel, bias, act in layers:
            x = x @ kernel
            if bias is not None:
                x = x + bias
            x = acts[act](x)
        return x

    return forward


def measure(label: str, model, quick: bool, folder: Path) -> list[tuple[str, float, float]]:
    net = load(model)
    rng = np.random.default_rng(0)
    one = rng.uniform(-1, 1, (1, net.n_inputs)).astype(np.float32)
    batch = rng.uniform(-1, 1, (BATCH, net.n_inputs)).astype(np.float32)
    reps = 5 if quick else 15
    rows = []

    def add(path: str, single, many, inner: int, n_rows: int = BATCH):
        t_one = median_seconds(single, reps, inner) if single else float("nan")
        t_many = median_seconds(many, max(3, reps // 3)) if many else float("nan")
        rows.append((path, t_one, n_rows / t_many))
        print(f"  {label:16} {path:28} {t_one * 1e9:12.0f} ns {n_rows / t_many:14.3g} /s", file=sys.stderr)

    add("model.predict", lambda: model.predict(one, verbose=0), lambda: model.predict(batch, batch_size=BATCH, verbose=0), 1)
    add("model(x) eager", lambda: model(one), None, 1)
    forward = numpy_forward(net)
    add("NumPy forward (float32)", lambda: forward(one), lambda: forward(batch), 200)
    c_auto = BACKENDS["c"].load(net, dtype="float32", name="net")
    add("C via cffi (default)", lambda: c_auto(one[0]), lambda: c_auto(batch), 2000)
    if c_auto.scalar is not None:
        add("C scalar entry via cffi", lambda: c_auto.scalar(0.5), None, 2000)
    c_unrolled = BACKENDS["c"].load(net, dtype="float32", name="net", unroll="always")
    add("C via cffi (unrolled)", lambda: c_unrolled(one[0]), lambda: c_unrolled(batch), 2000)
    t_one, rate = in_c(net, folder)
    rows.append(("C timed inside C (default)", t_one, rate))
    nb = BACKENDS["numba"].load(net, dtype="float32", name="net")
    add("Numba", lambda: nb(one[0]), lambda: nb(batch), 2000)
    npm = BACKENDS["numpy"].load(net, dtype="float32", name="net")
    add("NumPy module target", lambda: npm(one[0]), lambda: npm(batch), 200)
    py = BACKENDS["python"].load(net, dtype="float64", name="net")
    small = batch[:500]  # pure Python is slow: time 500 rows
    add("pure Python target", lambda: py(one[0]), lambda: py(small), 50, n_rows=len(small))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--out", default=str(HERE / "RESULTS.md"))
    args = parser.parse_args()
    lines = ["# Speed, side by side (float32, medians, one process)", "",
             "Generated by `python bench/bench_speed.py`; this 2-core x86-64 machine. Single sample: median "
             "latency of one call with one sample; batch: samples/s for one call on 10^4 rows. "
             "C inside C: best of 7 runs of a C driver (gcc -O2), no Python.", ""]
    with tempfile.TemporaryDirectory() as folder:
        for label, model in models().items():
            print(label, file=sys.stderr)
            rows = measure(label, model, args.quick, Path(folder))
            base_one, base_rate = rows[0][1], rows[0][2]
            lines += [f"## {label}", "", "| path | 1 sample | × faster than predict | batch (samples/s) | × predict |",
                      "|---|---|---|---|---|"]
            for path, t_one, rate in rows:
                one = f"{t_one * 1e9:,.0f} ns" if t_one == t_one else "—"
                ratio = f"{base_one / t_one:,.0f}" if t_one == t_one else "—"
                batch = f"{rate:,.3g}" if rate == rate else "—"
                bratio = f"{rate / base_rate:,.2g}" if rate == rate else "—"
                lines.append(f"| {path} | {one} | {ratio} | {batch} | {bratio} |")
            lines.append("")
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
