"""Measure the inline float32 functions of :mod:`mlpcodegen.backends.c_math` against
the correctly rounded result, in C (Python is far too slow for 2^32 inputs).

The reference is the double-precision libm function rounded to float32: glibc's double
exp/tanh are accurate to well under one double ULP, so after rounding to float they are
the correctly rounded float32 result except in cases too rare to matter at 2-ULP bounds.
Errors are counted in float32 ULPs as the distance between the two results in the
ordered integer representation of floats (so 1 ULP is one representable step, also
across powers of two and for subnormals).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..backends import c_math
from ..core.errors import CompileError

#: primitive -> the double-precision reference expression over ``d``.
REFERENCE = {"exp": "exp(d)", "tanh": "tanh(d)", "sigmoid": "1.0 / (1.0 + exp(-d))", "expm1": "expm1(d)"}

_PROGRAM = r"""
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

%(definitions)s

static int64_t ordered(float f)
{
    int32_t i;
    memcpy(&i, &f, sizeof i);
    return i < 0 ? -(int64_t)(i & 0x7fffffff) : (int64_t)i;
}

int main(int argc, char **argv)
{
    const uint64_t stride = strtoull(argv[1], 0, 10);
    uint64_t bits, count = 0;
    int64_t worst = 0;
    float worst_x = 0.0f;
    (void)argc;
    for (bits = 0; bits < 0x100000000ull; bits += stride) {
        const uint32_t b = (uint32_t)bits;
        float x, got, want;
        double d;
        int64_t err;
        memcpy(&x, &b, sizeof x);
        if (x != x) continue;
        d = (double)x;
        got = fast_%(key)s(x);
        want = (float)(%(reference)s);
        if (want != want || got != got) {
            if ((want != want) != (got != got)) { worst = 1 << 30; worst_x = x; }
            continue;
        }
        err = llabs(ordered(got) - ordered(want));
        ++count;
        if (err > worst) { worst = err; worst_x = x; }
    }
    printf("%%lld %%.9g %%llu\n", (long long)worst, (double)worst_x, (unsigned long long)count);
    return 0;
}
"""


@dataclass(frozen=True)
class UlpResult:
    function: str
    max_ulp: int
    worst_input: float
    inputs: int  # how many float32 inputs were checked


def max_ulp(function: str, stride: int = 1, flags: tuple[str, ...] = ("-O2",), vector: bool = False) -> UlpResult:
    """Largest error of the fast ``function`` over every ``stride``-th float32 bit pattern
    (``vector``: the flavour the batch blocks use)."""
    if function not in REFERENCE:
        raise ValueError(f"no fast function {function!r}; have {sorted(REFERENCE)}")
    compiler = shutil.which(os.environ.get("CC", "gcc"))
    if compiler is None:
        raise CompileError("measuring the fast math functions needs a C compiler (gcc or $CC)")
    key = ("v" if vector else "") + function + "f"
    source = "\n".join(["#include <stdint.h>", "#include <string.h>"] + c_math.definitions({(function, "v" if vector else "")}, "fast"))
    program = _PROGRAM % {"definitions": source, "key": key, "reference": REFERENCE[function]}
    with tempfile.TemporaryDirectory() as folder:
        src, exe = Path(folder) / "check.c", Path(folder) / "check"
        src.write_text(program)
        subprocess.run([compiler, "-std=c99", *flags, str(src), "-o", str(exe), "-lm"], check=True,
                       capture_output=True)
        worst, x, count = subprocess.run([str(exe), str(stride)], check=True, capture_output=True,
                                         text=True).stdout.split()
    return UlpResult(function, int(worst), float(x), int(count))
