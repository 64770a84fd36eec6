"""Time generated C inside C (no Python): a small driver program, and the plain-C-loops
kernel it is measured against side by side.

The plain kernel is what a C programmer writes by hand for an MLP: the weights in
``static const`` arrays, each layer ``z = b; for k: for j: z[j] += W[k][j] * h[k]``
(input-major, the inner loop vectorises over units), libm for tanh/exp.  Both are
compiled with the same flags and timed in the same process run.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..backends.c import emit_c, emit_c_header
from ..core.errors import CompileError, UnsupportedError
from ..core.ir import Dense, Network
from ..core.numeric import FLOAT32
from ..runtime.cffi_build import DEFAULT_FLAGS

#: activation -> C over ``s`` for the plain kernel (element-wise); softmax is a pass.
_PLAIN = {"linear": "s", "relu": "s > 0.0f ? s : 0.0f", "tanh": "tanhf(s)", "sigmoid": "1.0f / (1.0f + expf(-s))",
          "softmax": "s"}

_DRIVER = r"""
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <stddef.h>
void net(const float *x, float *y);
void net_batch(const float *x, float *y, size_t n);
void plain(const float *x, float *y);
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec; }
static void plain_batch(const float *x, float *y, size_t n) { size_t i; for (i = 0; i < n; ++i) plain(x + i * N_IN, y + i * N_OUT); }
typedef void (*one_fn)(const float *, float *);
typedef void (*many_fn)(const float *, float *, size_t);
static volatile float sink;
static double time_one(one_fn f, float *x, float *y, int calls, int repeats)
{
    double best = 1e30;
    int r, i;
    for (r = 0; r < repeats; ++r) {
        double t0 = now();
        for (i = 0; i < calls; ++i) { x[0] = (float)i * 1e-6f; f(x, y); sink += y[0]; }
        t0 = now() - t0;
        if (t0 < best) best = t0;
    }
    return best / calls;
}
static double time_many(many_fn f, const float *x, float *y, size_t n, int repeats)
{
    double best = 1e30;
    int r;
    for (r = 0; r < repeats; ++r) {
        double t0 = now();
        f(x, y, n);
        t0 = now() - t0;
        sink += y[n - 1];
        if (t0 < best) best = t0;
    }
    return best;
}
int main(int argc, char **argv)
{
    size_t rows[8], i, k, most = 0;
    int count = argc - 1, j;
    float one_x[N_IN > 0 ? N_IN : 1], one_y[N_OUT];
    float *x, *y;
    for (j = 0; j < count; ++j) { rows[j] = (size_t)strtoull(argv[j + 1], 0, 10); if (rows[j] > most) most = rows[j]; }
    x = malloc(most * N_IN * sizeof *x);
    y = malloc(most * N_OUT * sizeof *y);
    if (!x || !y) return 1;
    for (i = 0; i < most * N_IN; ++i) x[i] = (float)((i * 7919u) % 2001u) / 1000.0f - 1.0f;
    for (k = 0; k < N_IN; ++k) one_x[k] = x[k];
    printf("one %.6e %.6e\n", time_one(net, one_x, one_y, 200000, 7), time_one(plain, one_x, one_y, 200000, 7));
    for (j = 0; j < count; ++j) {
        int repeats = rows[j] >= 1000000u ? 3 : 9;
        printf("rows %lu %.6e %.6e\n", (unsigned long)rows[j], time_many(net_batch, x, y, rows[j], repeats),
               time_many(plain_batch, x, y, rows[j], repeats));
    }
    free(x);
    free(y);
    return 0;
}
"""


def plain_kernel(net: Network) -> str:
    """The hand-written-style C loop kernel ``void plain(const float *x, float *y)``."""
    arrays, body, prev = ["#include <math.h>", "#include <stddef.h>"], ["    size_t j, k;"], "x"
    for i, layer in enumerate(net.layers):
        name = layer.activation.name
        if not isinstance(layer, Dense) or name not in _PLAIN:
            raise UnsupportedError(f"the plain C kernel covers Dense layers with {', '.join(_PLAIN)}; "
                                   f"layer {layer.name!r} is {type(layer).__name__} {name}")
        n_in, units = layer.kernel.shape
        bias = layer.bias if layer.bias is not None else np.zeros(units)
        arrays.append(f"static const float W{i}[{n_in * units}] = {{{', '.join(map(FLOAT32.c_literal, layer.kernel.ravel()))}}};")
        arrays.append(f"static const float B{i}[{units}] = {{{', '.join(map(FLOAT32.c_literal, bias))}}};")
        body += [f"    float h{i}[{units}];",
                 f"    for (j = 0; j < {units}u; ++j) h{i}[j] = B{i}[j];",
                 f"    for (k = 0; k < {n_in}u; ++k) for (j = 0; j < {units}u; ++j) h{i}[j] += W{i}[k * {units}u + j] * {prev}[k];",
                 f"    for (j = 0; j < {units}u; ++j) {{ const float s = h{i}[j]; h{i}[j] = {_PLAIN[name]}; }}"]
        if name == "softmax":
            body.append(f"    {{ float m = h{i}[0], t = 0.0f; for (j = 1; j < {units}u; ++j) if (h{i}[j] > m) m = h{i}[j]; "
                        f"for (j = 0; j < {units}u; ++j) {{ h{i}[j] = expf(h{i}[j] - m); t += h{i}[j]; }} "
                        f"for (j = 0; j < {units}u; ++j) h{i}[j] /= t; }}")
        prev = f"h{i}"
    body.append(f"    for (j = 0; j < {net.n_outputs}u; ++j) y[j] = {prev}[j];")
    return "\n".join(arrays + ["void plain(const float *x, float *y)", "{", *body, "}", ""])


@dataclass(frozen=True)
class InC:
    """Seconds per sample (one call) and per batch of each row count, generated and plain."""
    one: float
    plain_one: float
    batch: dict[int, float]  # rows -> seconds for one net_batch call
    plain_batch: dict[int, float]


def time_in_c(net: Network, rows: Sequence[int], flags: Sequence[str] = DEFAULT_FLAGS,
              folder: Optional[Path] = None) -> InC:
    """Compile the generated float32 C (default options), the plain kernel and the driver
    with ``flags``; run it once."""
    compiler = shutil.which(os.environ.get("CC", "gcc"))
    if compiler is None:
        raise CompileError("timing C inside C needs a C compiler (gcc or $CC)")
    with tempfile.TemporaryDirectory() as temp:
        work = Path(folder or temp)
        (work / "net.c").write_text(emit_c(net, dtype="float32", name="net"))
        (work / "net.h").write_text(emit_c_header(net, dtype="float32", name="net"))
        (work / "plain.c").write_text(plain_kernel(net))
        (work / "main.c").write_text(_DRIVER.replace("N_IN", f"{net.n_inputs}u").replace("N_OUT", f"{net.n_outputs}u"))
        exe = work / "driver"
        subprocess.run([compiler, "-std=c99", *flags, *(str(work / f) for f in ("net.c", "plain.c", "main.c")), "-o",
                        str(exe), "-lm"], check=True, capture_output=True)
        out = subprocess.run([str(exe), *map(str, rows)], check=True, capture_output=True, text=True).stdout
    one = plain_one = 0.0
    batch, plain_batch = {}, {}
    for line in out.splitlines():
        parts = line.split()
        if parts[0] == "one":
            one, plain_one = float(parts[1]), float(parts[2])
        else:
            batch[int(parts[1])], plain_batch[int(parts[1])] = float(parts[2]), float(parts[3])
    return InC(one, plain_one, batch, plain_batch)
