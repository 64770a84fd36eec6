"""The inline float32 transcendentals (--math fast): accuracy against the correctly
rounded result, special values, and that they vectorise and stay warning-free."""
import platform
import re
import subprocess

import numpy as np
import pytest

from conftest import STRICT_FLAGS
from mlpcodegen.backends import c_math
from mlpcodegen.backends.c import cdef, emit_c
from mlpcodegen.harness.math_check import max_ulp
from mlpcodegen.core.ir import Activation, Dense, Network
from mlpcodegen.runtime import CompiledNetwork
from mlpcodegen.runtime.cffi_build import DEFAULT_FLAGS, build_module


@pytest.mark.parametrize("function", sorted(c_math.ULP_BOUND))
@pytest.mark.parametrize("flags", [("-O2",), DEFAULT_FLAGS], ids=["O2", "harness"])
@pytest.mark.parametrize("vector", [False, True], ids=["one-sample", "block"])
def test_fast_function_is_within_its_ulp_bound(gcc, function, flags, vector):
    """Every 251st float32 bit pattern (17 million inputs, all exponents and signs,
    subnormals, ±0, ±inf): the error is within the stated bound (bench/MATH.md has the
    exhaustive sweep)."""
    result = max_ulp(function, stride=251, flags=flags, vector=vector)
    assert result.inputs > 16_000_000
    assert result.max_ulp <= c_math.ULP_BOUND[function], result


def identity_net(activation: str) -> Network:
    return Network(1, (Dense(np.ones((1, 1)), None, Activation(activation)),))  # no bias: keeps -0.0


SPECIALS = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 88.0, 88.01, 88.7, 88.72283, 88.8, 89.0, -87.0, -87.01,
                     -103.0, -104.5, 1e-30, -1e-30, 0.625, -0.625, 0.62499994, 0.35, -0.35, 9.0, -9.0, 17.0, -17.5,
                     20.0, -20.0, 1e-45, 43.5, 43.500004, -43.6, 1e30, -1e30], dtype=np.float32)


@pytest.mark.parametrize("activation,libm", [("exponential", np.exp), ("tanh", np.tanh),
                                             ("sigmoid", lambda v: 1.0 / (1.0 + np.exp(-v))),
                                             ("elu", lambda v: np.where(v > 0, v, np.expm1(v)))])
def test_special_values_map_as_the_math_does(gcc, activation, libm):
    """Overflow to inf, underflow through the subnormals to 0, signed zeros, NaN in ->
    NaN out, saturation of tanh and sigmoid; the one-sample and block paths alike."""
    net = identity_net(activation)
    module = build_module(emit_c(net, dtype="float32", name="f"), cdef(net, "float32", "f"))
    function = CompiledNetwork(module, "f", 1, 1, "float32")
    with np.errstate(all="ignore"):
        want = libm(SPECIALS.astype(np.float64)).astype(np.float32)
    block = np.repeat(SPECIALS, 4)[:, None]  # > 32 rows: through the vectorised block
    for got in (np.array([function.scalar(float(v)) for v in SPECIALS], np.float32), function(block)[::4, 0]):
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        finite = ~np.isnan(want)
        assert np.all(np.signbit(got[finite]) == np.signbit(want[finite]))
        np.testing.assert_allclose(got[finite], want[finite], rtol=3e-7, atol=3e-45)


@pytest.mark.parametrize("activation,call", [("tanh", "net_vtanhf(zj)"), ("elu", "net_vexpm1f(zj)")])
def test_fast_math_vectorises_and_compiles_warning_free(gcc, tmp_path, activation, call):
    """A batch of tanh (or elu) units: gcc vectorises the block loop that applies the
    inline function (no libm call left) on AVX2, and the file passes the strict flags."""
    net = Network(2, (Dense(np.ones((2, 3)), np.zeros(3), Activation(activation)),
                      Dense(np.ones((3, 2)), None, Activation("sigmoid"))))
    source = tmp_path / "net.c"
    source.write_text(emit_c(net, dtype="float32", name="net"))
    subprocess.run([gcc, *STRICT_FLAGS, "-O2", "-c", str(source), "-o", str(tmp_path / "net.o")], check=True)
    arch = ["-march=x86-64-v3"] if platform.machine() in ("x86_64", "AMD64") else []  # AVX2, no AVX-512 masking
    report = subprocess.run([gcc, "-std=c99", "-O3", *arch, "-fopt-info-vec-optimized", "-c", str(source),
                             "-o", str(tmp_path / "v.o")], capture_output=True, text=True, check=True).stderr
    tanh_loop = next(i for i, line in enumerate(source.read_text().splitlines(), 1) if call in line)
    assert f"net.c:{tanh_loop - 2}" in report or f"net.c:{tanh_loop - 1}" in report, report
    assert "expm1f(" not in source.read_text().replace("net_expm1f(", "").replace("net_vexpm1f(", "")


def test_math_option_is_validated():
    with pytest.raises(ValueError, match="math must be one of"):
        emit_c(identity_net("tanh"), math="approximate")
    assert "tanhf(" in emit_c(identity_net("tanh"), math="libm")
    assert "#include <string.h>" not in emit_c(identity_net("linear"))  # nothing inline to define


SIZE_FLAVOUR_CHECK = r"""
#include <math.h>
#include <stdio.h>
FUNCTIONS
int main(void)
{
    unsigned long bad = 0, i;
    for (i = 0; i <= 0xFFFFFFFFul; i += 251u) {
        uint32_t bits = (uint32_t)i, a_bits, b_bits;
        float x, a, b;
        memcpy(&x, &bits, sizeof x);
        if (NONPOSITIVE && x > 0.0f) continue;
        a = t_KEYf(x);
        b = t_FLAVOURKEYf(x);
        memcpy(&a_bits, &a, sizeof a);
        memcpy(&b_bits, &b, sizeof b);
        bad += a_bits != b_bits;
    }
    printf("%lu\n", bad);
    return 0;
}
"""


@pytest.mark.parametrize("function,flavour", [("exp", "s"), ("tanh", "s"), ("exp", "n")])
def test_size_flavour_gives_the_one_sample_bits(gcc, tmp_path, function, flavour):
    """The embedded --optimize size flavour ("s": exp without its single-factor branch, 244
    bytes against 296 on Cortex-M4F -Os) returns the same bits as the one-sample flavour on
    every 251st float32 pattern, so it has its ULP bound (bench/MATH.md); tanh through it
    (sigmoid's "s" is its "" text calling the "s" exp, expm1's is the "" text).  Softmax's
    exp for non-positive arguments ("n") gives the one-sample bits on every x <= 0 (and NaN)."""
    functions = c_math.definitions({(function, ""), (function, flavour)}, "t")
    source = tmp_path / "check.c"
    source.write_text("#include <stdint.h>\n#include <string.h>\n" + SIZE_FLAVOUR_CHECK.replace(
        "FUNCTIONS", "\n".join(functions)).replace("FLAVOUR", flavour).replace("KEY", function).replace(
        "NONPOSITIVE", "1" if flavour == "n" else "0"))
    program = tmp_path / "check"
    subprocess.run([gcc, *STRICT_FLAGS, "-ffp-contract=off", str(source), "-o", str(program), "-lm"], check=True)
    assert subprocess.run([str(program)], capture_output=True, text=True, check=True).stdout.strip() == "0"


# -- float64 (--math fast with dtype float64): every float64 cannot be enumerated, so a
# bounded sample of each kind bench/math_ulp.py --float64-only draws (bench/MATH.md: 4 M
# random inputs per kind and 256-ULP sweeps there)
def _math_ulp_bench():
    import importlib.util
    import sys
    from pathlib import Path

    if "math_ulp_bench" not in sys.modules:  # registered first: its dataclass looks its module up
        path = Path(__file__).resolve().parent.parent / "bench" / "math_ulp.py"
        spec = importlib.util.spec_from_file_location("math_ulp_bench", path)
        sys.modules["math_ulp_bench"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules["math_ulp_bench"])
    return sys.modules["math_ulp_bench"]


@pytest.mark.parametrize("function", sorted(c_math.ULP_BOUND64))
def test_float64_function_is_within_its_ulp_bound_on_a_sample(gcc, function):
    """100k random bit patterns and 100k random inputs over the working range, 8-ULP sweeps
    at every reduction boundary and cut-off, 2^e (1 + j/64) from the smallest subnormal
    up, and the specials: the block flavour with the harness flags within ULP_BOUND64 (NaN
    where libm gives NaN, the sign of 0 kept; bench/MATH.md has both flavours at -O2 too,
    and the specials test below checks the one-sample flavour gives the block's bits)."""
    bench = _math_ulp_bench()
    results = bench.float64_max_ulp(function, DEFAULT_FLAGS, True, random_count=100_000, sweep=8)
    assert [r.kind for r in results] == list(bench.FLOAT64_SAMPLES)
    assert all(r.inputs > 0 for r in results)
    assert max(r.max_ulp for r in results) <= c_math.ULP_BOUND64[function], results


SPECIALS64 = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 709.0, 709.01, 709.78, 709.782712893384, 709.8, 710.0,
                       -708.0, -708.01, -708.4, -745.0, -745.2, -746.5, 1e-300, -1e-300, 5e-324, -5e-324, 1e-17,
                       -1e-17, 0.34657359027997264, -0.34657359027997264, 19.0, -19.0, 19.1, 22.0, -40.0, 36.8,
                       -36.8, 1.0, -1.0])


@pytest.mark.parametrize("activation,libm", [("exponential", np.exp), ("tanh", np.tanh),
                                             ("sigmoid", lambda v: 1.0 / (1.0 + np.exp(-v))),
                                             ("elu", lambda v: np.where(v > 0, v, np.expm1(v)))])
def test_float64_special_values_map_as_the_math_does(gcc, activation, libm):
    """float64: overflow to inf, subnormal results, underflow to 0, signed zeros, NaN,
    saturation; the one-sample function and the vectorised block give the same bits."""
    net = identity_net(activation)
    module = build_module(emit_c(net, dtype="float64", name="f"), cdef(net, "float64", "f"))
    function = CompiledNetwork(module, "f", 1, 1, "float64")
    with np.errstate(all="ignore"):
        want = libm(SPECIALS64)
    one = np.array([function.scalar(float(v)) for v in SPECIALS64])
    block = function(np.repeat(SPECIALS64, 4)[:, None])[::4, 0]  # > 16 rows: through the vectorised block
    np.testing.assert_array_equal(one.view(np.uint64), block.view(np.uint64))
    np.testing.assert_array_equal(np.isnan(one), np.isnan(want))
    finite = ~np.isnan(want)
    assert np.all(np.signbit(one[finite]) == np.signbit(want[finite]))
    np.testing.assert_allclose(one[finite], want[finite], rtol=5e-16, atol=1e-323)


def test_float64_network_batch_one_sample_and_reference_agree(gcc):
    """A float64 network through every fast function (tanh, sigmoid, elu, softmax) and a
    loop layer (the float64 dense helper): batch rows (blocks and the rows left over),
    one-sample calls and the float64 reference agree to float64 rounding."""
    from mlpcodegen.core.reference import evaluate

    rng = np.random.default_rng(7)
    widths, activations = [5, 40, 6, 7, 9, 3], ["tanh", "sigmoid", "elu", "exponential", "softmax"]
    net = Network(5, tuple(Dense(rng.normal(size=(a, b)) / np.sqrt(a), rng.normal(size=b) * 0.1, Activation(f))
                           for a, b, f in zip(widths, widths[1:], activations)))
    source = emit_c(net, dtype="float64", name="g", unroll="never")
    assert "tanh(" not in source.replace("g_tanh(", "").replace("g_vtanh(", "")  # no libm call left
    module = build_module(source, cdef(net, "float64", "g"))
    function = CompiledNetwork(module, "g", 5, 3, "float64")
    x = rng.normal(size=(37, 5)) * 3
    batch = function(x)
    one = np.array([function(row) for row in x])
    want = evaluate(net, x)
    np.testing.assert_allclose(batch, one, rtol=1e-14, atol=0)
    np.testing.assert_allclose(batch, want, rtol=1e-13, atol=0)


def test_float64_block_vectorises_and_compiles_warning_free(gcc, tmp_path):
    """float64 tanh units over a block: the lane loop applying the inline tanh vectorises on
    AVX2, the dense tile is packed vector arithmetic there (GCC vectors), the plain
    tile's lane loop (other compilers and targets) vectorises by itself, and the strict flags pass."""
    net = Network(2, (Dense(np.ones((2, 40)), np.zeros(40), Activation("tanh")),
                      Dense(np.ones((40, 2)), None, Activation("sigmoid"))))
    source = tmp_path / "net.c"
    source.write_text(emit_c(net, dtype="float64", name="net"))
    subprocess.run([gcc, *STRICT_FLAGS, "-O2", "-c", str(source), "-o", str(tmp_path / "net.o")], check=True)
    x86 = platform.machine() in ("x86_64", "AMD64")
    arch = ["-march=x86-64-v3"] if x86 else []

    def vectorised(*flags: str) -> set[int]:
        report = subprocess.run([gcc, "-std=c99", "-O3", *flags, "-fopt-info-vec-optimized", "-c", str(source),
                                 "-o", str(tmp_path / "v.o")], capture_output=True, text=True, check=True).stderr
        return {int(n) for n in re.findall(r"net\.c:(\d+):", report)}

    lines = source.read_text().splitlines()
    tanh_loop = next(i for i, line in enumerate(lines, 1) if "net_vtanh(zj)" in line)
    assert {tanh_loop - 2, tanh_loop - 1} & vectorised(*arch)
    if x86:
        dump = subprocess.run(["objdump", "-d", str(tmp_path / "v.o")], capture_output=True, text=True).stdout
        assert re.search(r"v(mul|fmadd\w*)pd\s+.*%ymm", dump), "no packed float64 arithmetic in the AVX2 tile"
        # no __AVX2__, __AVX512F__ nor __SSE2__ (whose 16-byte tiles x86-64 takes): the plain loops
        portable = vectorised("-march=x86-64", "-U__SSE2__")
    else:
        portable = vectorised("-U__ARM_NEON")
    lane_loop = next(i for i, line in enumerate(lines, 1) if "acc[u][l] += wk * h[k * 16u + l]" in line)
    assert set(range(lane_loop - 3, lane_loop + 1)) & portable
