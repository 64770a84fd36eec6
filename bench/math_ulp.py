#!/usr/bin/env python3
"""The inline functions of ``--math fast``: float32 over every input, float64 over a sample.

    python bench/math_ulp.py [--stride N] [--samples N]     # writes bench/MATH.md
    python bench/math_ulp.py --float64-only [--samples N]   # the float64 table only (printed)

For exp, expm1, tanh and sigmoid, both flavours (the one-sample functions and the ones the
batch blocks vectorise), compiled as the harness compiles them: the largest error in
float32 ULPs against the correctly rounded result (double-precision libm, rounded to
float) and the input where it occurs.  The bounds stated in
mlpcodegen/backends/c_math.py (ULP_BOUND) come from this table; the tests check a dense
sample against them.

float64 cannot be enumerated: :func:`float64_max_ulp` runs the float64 functions over
samples of several kinds (see FLOAT64_SAMPLES) and measures the error in float64 ULPs
against the long double libm result rounded to double (x87 80-bit here: 11 bits more
than double, so the reference is the correctly rounded double except in cases too rare to
matter at these bounds).  The bounds in c_math.ULP_BOUND64 come from its table; the tests
run a smaller sample of the same kinds.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from mlpcodegen.backends import c_math  # noqa: E402
from mlpcodegen.backends.c_math import ULP_BOUND, ULP_BOUND64  # noqa: E402
from mlpcodegen.runtime.cffi_build import DEFAULT_FLAGS  # noqa: E402
from mlpcodegen.harness.math_check import max_ulp  # noqa: E402


#: How the float64 sample is drawn (each kind over both signs where the function has them).
FLOAT64_SAMPLES = {
    "random bits": "uniformly random 64-bit patterns (every exponent; NaN patterns skipped)",
    "random domain": "uniform over the function's working range (exp -746..710, expm1 -40..710, "
                     "tanh -20..20, sigmoid -746..40)",
    "reduction boundaries": "every x = (k + 1/2) ln 2 in the range (tanh: (k + 1/2) ln(2) / 2, where its "
                            "expm1 argument is), +-SWEEP steps of one ULP around each",
    "near 0": "+-2^e (1 + j/64) for every exponent e from -1074 to 3 and j < 64 (subnormals included)",
    "thresholds": "+-SWEEP ULP steps and a 1e-6-relative sweep around each cut-off: overflow, the "
                  "subnormal-result and underflow-to-0 thresholds, the code's range tests, the "
                  "tanh/sigmoid saturation points (tanh = 1, sigmoid = 1 and sigmoid subnormal)",
    "specials": "+-0, +-inf, NaN, the smallest subnormal, the smallest normal, the largest finite",
}
#: function -> (working range, code reference over long double d, reduction step, cut-offs).
_F64 = {
    "exp": ((-746.0, 710.0), "expl(d)", "0.6931471805599453",
            (709.0, 709.782712893384, 709.8, -708.0, -708.3964185322641, -745.1332191019412, -746.0)),
    "expm1": ((-40.0, 710.0), "expm1l(d)", "0.6931471805599453",
              (709.0, 709.782712893384, 709.8, -708.0, -37.42994775023705, 5.551115123125783e-17,
               -5.551115123125783e-17)),
    "tanh": ((-20.0, 20.0), "tanhl(d)", "0.34657359027997264", (19.061547465398498, 0.625, 22.0, 3.725290298461914e-09)),
    "sigmoid": ((-746.0, 40.0), "1.0L / (1.0L + expl(-d))", "0.6931471805599453",
                (36.7368005696771, -708.3964185322641, -745.1332191019412, -709.0, 37.5)),
}

_PROGRAM64 = r"""
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

%(definitions)s

static uint64_t state = 0x9E3779B97F4A7C15u;
static uint64_t next(void) { state ^= state << 13; state ^= state >> 7; state ^= state << 17; return state; }
static double uniform(double lo, double hi) { return lo + (hi - lo) * (double)(next() >> 11) * 0x1p-53; }
static int64_t ordered(double f) { int64_t i; memcpy(&i, &f, sizeof i); return i < 0 ? -(i & INT64_MAX) : i; }

static double *xs, *ys;
static size_t n, cap;
static void add(double x) { if (n < cap) xs[n++] = x; }
static void sweep(double x0, int steps) {
    double up = x0, down = x0; int i;
    add(x0);
    for (i = 0; i < steps; ++i) { up = nextafter(up, INFINITY); down = nextafter(down, -INFINITY); add(up); add(down); }
    for (i = -steps; i <= steps; ++i) add(x0 * (1.0 + 1e-6 * i / steps));
}
static void report(const char *kind, size_t from) {
    int64_t worst = 0; double worst_x = 0.0; size_t i, count = 0;
    for (i = from; i < n; ++i) ys[i] = %(key)s(xs[i]); /* a loop the compiler may vectorise */
    for (i = from; i < n; ++i) {
        const long double d = xs[i];
        const double want = (double)(%(reference)s), got = ys[i];
        int64_t err;
        if (xs[i] != xs[i] || want != want || got != got) {
            if ((want != want) != (got != got)) { worst = 1 << 30; worst_x = xs[i]; }
            continue;
        }
        err = llabs(ordered(got) - ordered(want));
        if (want == 0.0 && signbit(want) != signbit(got)) err = 1 << 29;
        ++count;
        if (err > worst) { worst = err; worst_x = xs[i]; }
    }
    printf("%%s|%%llu|%%lld|%%.17g\n", kind, (unsigned long long)count, (long long)worst, worst_x);
}

int main(int argc, char **argv)
{
    const long random_count = atol(argv[1]);
    const int steps = atoi(argv[2]);
    const double lo = %(lo)s, hi = %(hi)s, step = %(step)s, cuts[] = {%(cuts)s};
    long i; int s, e, j; size_t from; double k;
    (void)argc;
    cap = (size_t)random_count * 2u + 3000000u;
    xs = malloc(cap * sizeof *xs); ys = malloc(cap * sizeof *ys);
    from = n;
    for (i = 0; i < random_count; ++i) { uint64_t b = next(); double x; memcpy(&x, &b, sizeof x); if (x == x) add(x); }
    report("random bits", from);
    from = n;
    for (i = 0; i < random_count; ++i) add(uniform(lo, hi));
    report("random domain", from);
    from = n;
    for (k = floor(lo / step); k * step <= hi; k += 1.0) sweep((k + 0.5) * step, steps);
    report("reduction boundaries", from);
    from = n;
    for (s = -1; s <= 1; s += 2) for (e = -1074; e <= 3; ++e) for (j = 0; j < 64; ++j) add(s * ldexp(1.0 + j / 64.0, e));
    report("near 0", from);
    from = n;
    for (j = 0; j < (int)(sizeof cuts / sizeof cuts[0]); ++j) { sweep(cuts[j], steps); sweep(-cuts[j], steps); }
    report("thresholds", from);
    from = n;
    add(0.0); add(-0.0); add(INFINITY); add(-INFINITY); add(NAN); add(0x1p-1074); add(-0x1p-1074);
    add(DBL_MIN); add(-DBL_MIN); add(DBL_MAX); add(-DBL_MAX);
    report("specials", from);
    return 0;
}
"""


@dataclass(frozen=True)
class SampleResult:
    kind: str  # a key of FLOAT64_SAMPLES
    inputs: int
    max_ulp: int
    worst_input: float


def float64_max_ulp(function: str, flags=("-O2",), vector: bool = False, random_count: int = 1_000_000,
                    sweep: int = 64) -> list[SampleResult]:
    """The largest error in float64 ULPs of the fast float64 ``function`` over each kind of
    FLOAT64_SAMPLES (``random_count`` per random kind, ``sweep`` ULP steps each side of each
    boundary), compiled with ``flags`` (``vector``: the batch blocks' flavour)."""
    (lo, hi), reference, step, cuts = _F64[function]
    flavour = "v" if vector else ""
    source = "\n".join(c_math.definitions({(function, flavour)}, "fast", "float64"))
    program = _PROGRAM64 % {"definitions": source, "key": f"fast_{flavour}{function}", "reference": reference,
                            "lo": repr(lo), "hi": repr(hi), "step": step, "cuts": ", ".join(map(repr, cuts))}
    compiler = shutil.which(os.environ.get("CC", "gcc")) or "gcc"
    with tempfile.TemporaryDirectory() as folder:
        src, exe = Path(folder) / "check.c", Path(folder) / "check"
        src.write_text(program)
        subprocess.run([compiler, "-std=gnu99", *flags, str(src), "-o", str(exe), "-lm"], check=True,
                       capture_output=True)
        out = subprocess.run([str(exe), str(random_count), str(sweep)], check=True, capture_output=True,
                             text=True).stdout
    results = []
    for line in out.splitlines():
        kind, count, worst, x = line.split("|")
        results.append(SampleResult(kind, int(count), int(worst), float(x)))
    return results


def float64_table(random_count: int, sweep: int) -> list[str]:
    lines = ["| function | flavour | flags | sample kind | inputs | max error (ULP) | at x | stated bound |",
             "|---|---|---|---|---|---|---|---|"]
    for function in ULP_BOUND64:
        for vector in (False, True):
            for flags in (DEFAULT_FLAGS, ("-O2",)):
                started = time.perf_counter()
                flavour = "batch block" if vector else "one sample"
                for r in float64_max_ulp(function, flags, vector, random_count, sweep):
                    lines.append(f"| {function} | {flavour} | `{' '.join(flags)}` | {r.kind} | {r.inputs:,} | "
                                 f"{r.max_ulp} | {r.worst_input:.17g} | {ULP_BOUND64[function]} |")
                print(f"{function:8} {flavour:12} {' '.join(flags):36} ({time.perf_counter() - started:.0f} s)",
                      file=sys.stderr)
    return lines


FLOAT64_TITLE = "# Fast float64 functions against the correctly rounded result (a sample)"


def float64_section(random_count: int, sweep: int) -> list[str]:
    kinds = [f"- **{kind}**: {how}" for kind, how in FLOAT64_SAMPLES.items()]
    return [FLOAT64_TITLE, "",
            f"Generated by `python bench/math_ulp.py --float64-only --samples {random_count} --sweep {sweep}`; every "
            "float64 cannot be enumerated, so each function runs over these samples (SWEEP = "
            f"{sweep}; {random_count:,} inputs per random kind), against the long double libm result "
            "(x87, 64-bit significand) rounded to double, with the float32 table's flags:", "", *kinds, "",
            *float64_table(random_count, sweep), ""]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stride", type=int, default=1, help="check every N-th bit pattern (1: all 2^32)")
    parser.add_argument("--samples", type=int, default=4_000_000, help="float64: inputs per random kind")
    parser.add_argument("--sweep", type=int, default=256, help="float64: ULP steps each side of each boundary")
    parser.add_argument("--float64-only", action="store_true",
                        help="rerun the float64 section only (the float32 table of bench/MATH.md is kept)")
    args = parser.parse_args()
    section = float64_section(args.samples, args.sweep)
    if args.float64_only:
        old = (HERE / "MATH.md").read_text() if (HERE / "MATH.md").exists() else ""
        kept = old.split(FLOAT64_TITLE)[0].rstrip("\n")
        (HERE / "MATH.md").write_text((kept + "\n\n" if kept else "") + "\n".join(section))
        print("\n".join(section))
        return 0
    lines = ["# Fast float32 functions against the correctly rounded result", "",
             f"Generated by `python bench/math_ulp.py{'' if args.stride == 1 else f' --stride {args.stride}'}`; "
             f"every {'' if args.stride == 1 else f'{args.stride}-th '}float32 bit pattern except NaNs "
             f"(NaN inputs are checked to give NaN), compiled with `{' '.join(DEFAULT_FLAGS)}` and with `-O2`.", "",
             "| function | flavour | flags | inputs | max error (ULP) | at x | stated bound |", "|---|---|---|---|---|---|---|"]
    for function in ULP_BOUND:
        for vector in (False, True):
            for flags in (DEFAULT_FLAGS, ("-O2",)):
                started = time.perf_counter()
                result = max_ulp(function, args.stride, flags, vector)
                flavour = "batch block" if vector else "one sample"
                print(f"{function:8} {flavour:12} {' '.join(flags):36} {result.max_ulp} ULP at {result.worst_input:.9g} "
                      f"({time.perf_counter() - started:.0f} s)", file=sys.stderr)
                lines.append(f"| {function} | {flavour} | `{' '.join(flags)}` | {result.inputs:,} | {result.max_ulp} | "
                             f"{result.worst_input:.9g} | {ULP_BOUND[function]} |")
    (HERE / "MATH.md").write_text("\n".join(lines + [""] + section))
    print("\n".join(lines + [""] + section))
    return 0


if __name__ == "__main__":
    sys.exit(main())
