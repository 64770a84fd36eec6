"""Inline float32 and float64 transcendentals for the C backend (``--math fast``).

libm's ``expf``/``tanhf`` are calls the compiler cannot vectorise (without
``-ffast-math`` and a vector math library), so a batch of tanh units runs one sample at
a time.  These are ``static inline`` functions in plain C99 that GCC and Clang inline and
vectorise across samples (``inline``: GCC otherwise declines to inline a function this
size at several call sites, and a call blocks vectorisation).  Their accuracy is measured, not assumed:
``python bench/math_ulp.py`` sweeps every float32 and writes bench/MATH.md, and
tests/test_c_math.py checks a dense sample against the bounds below.

Method (after Cephes' ``expf``/``tanhf``): exp(x) = 2^k exp(r) with k = round(x/ln 2)
by the 1.5*2^23 trick (no call to ``rintf``), r = x - k ln 2 in two parts (Cody-Waite),
exp(r) by a degree-7 minimax polynomial, and 2^k built from exponent bits in two
halves so that subnormal results and overflow to infinity come out right.  tanh(|x|) is
(1 - e)/(1 + e) with e = exp(-2|x|) = 2^k (1 + m), m = expm1(r), written as
((1 - 2^k) - 2^k m) / ((1 + 2^k) + 2^k m): no cancellation from 0 up, so one branch-free
formula (no polynomial below a cut-off, no select) for the one-sample and block flavours;
sigmoid is e/(1 + e) or 1/(1 + e) with e = exp(-|x|); expm1 is 2^k expm1(r) + (2^k - 1).  NaN propagates, ±0 and ±inf map as libm maps them.

float64 has the same design in binary64 (a degree-12 exp polynomial; tanh(|x|) as
-e/(2 + e) with e = expm1(-2|x|)), so a float64 batch vectorises too (bench/FLOAT64.md:
0.46-0.52x float32 throughput, against 0.02-0.06x with libm).  Every float64 cannot be
enumerated: ``python bench/math_ulp.py --float64-only`` measures it over a sample (random
bit patterns, random values over the working range, dense sweeps at the reduction
boundaries, near 0 and the subnormals, at the overflow, underflow and saturation
thresholds, and the specials) and the tests run a smaller one.
"""
from __future__ import annotations

from string import Template


MATH_MODES = ("fast", "libm")

#: Max error in float32 ULPs against the correctly rounded result (the double-precision
#: libm value rounded to float), over every float32 input; measured by bench/math_ulp.py
#: (see bench/MATH.md) and asserted on a dense sample by the tests.
ULP_BOUND = {"exp": 1, "tanh": 2, "sigmoid": 2, "expm1": 2}
#: The float64 functions' bounds in float64 ULPs against the correctly rounded result
#: (long double libm rounded to double), over a sample (every float64 cannot be
#: enumerated): random bit patterns, random values over each function's domain, dense
#: sweeps at the reduction boundaries, near 0, the subnormal results, the overflow and
#: underflow thresholds, the saturation points and the specials; bench/math_ulp.py
#: --float64 (bench/MATH.md) says how many of each, tests/test_c_math.py checks a bounded sample.
ULP_BOUND64 = {"exp": 1, "tanh": 2, "sigmoid": 2, "expm1": 2}
#: numeric type -> primitive -> bound in ULPs of that type.
ULP_BOUNDS = {"float32": ULP_BOUND, "float64": ULP_BOUND64}

# Each function in two flavours with the same arithmetic (so both give the same bits):
# "v" (block loops) picks between precomputed results with bit masks, which gcc
# vectorises on any SIMD level; the one-sample flavour picks with ?:, which gcc compiles
# to branches that skip the unused side (seed 1-3-2-1 one sample: 38 ns against 48 ns).
# A ?: does not do for the loops: gcc threads a ?: with a constant arm into separate
# paths and then will not if-convert the (possibly trapping) arithmetic left on one
# path, so without AVX-512 masking the loop would not vectorise.

# k = round(x / ln 2) read from the low bits of t, r = x - k ln 2 (|r| <= ln(2) / 2), and
# q(r) with exp(r) = 1 + r + r^2 q(r): shared by exp and expm1.
_REDUCTION = """\
    const float t = x * 1.44269504f + 12582912.0f;
    const float k = t - 12582912.0f;
    const float r = (x - k * 0.693359375f) + k * 2.12194440e-4f;
    /* the polynomial in Estrin's scheme: half the dependency chain of Horner's */
    const float r2 = r * r;
    const float q = (5.0000001201e-1f + 1.6666665459e-1f * r)
                    + r2 * ((4.1665795894e-2f + 8.3334519073e-3f * r) + r2 * (1.3981999507e-3f + 1.9875691500e-4f * r));
"""
_EXP_CORE = """\
    /* exp(x) = 2^k * exp(r), k = round(x / ln 2), |r| <= ln(2) / 2 */
""" + _REDUCTION + """\
    const float p = (r + r2 * q) + 1.0f;
    uint32_t bits, k1, k2;
    float s1, s2, y;
    memcpy(&bits, &t, sizeof bits);
    bits -= 0x4B400000u; /* k, two's complement: unsigned arithmetic, no undefined behaviour for any x */
"""
# 2^k = 2^k1 * 2^k2 with k1 = floor(k / 2): each factor normal, so 2^-150 .. 2^128 are
# reachable; in the normal range p * 2^k1 * 2^k2 == p * 2^k exactly.
_TWO_FACTORS = """\
    k1 = (bits >> 1) | (bits & 0x80000000u);
    k2 = bits - k1;
    k1 = (k1 + 127u) << 23;
    k2 = (k2 + 127u) << 23;
    memcpy(&s1, &k1, sizeof s1);
    memcpy(&s2, &k2, sizeof s2);
    y = p * s1 * s2;
"""
_EXP_PICK = {
    # one sample: the common case with a single scale factor (one multiply less on the
    # dependency chain); a predictable branch to the two factors, +inf or +0 elsewhere
    "": """\
    if (x >= -87.0f && x <= 88.0f) {{
        k1 = (bits + 127u) << 23;
        memcpy(&s1, &k1, sizeof s1);
        return p * s1;
    }}
""" + _TWO_FACTORS + """\
    return x > 88.72283f ? HUGE_VALF : (x < -104.0f ? 0.0f : y); /* NaN stays NaN */
""",
    # --optimize size: the two factors always (the same product in the normal range, so
    # the same bits as ""), no single-factor branch: 244 bytes of code on Cortex-M4F -Os
    # against 296
    "s": _TWO_FACTORS + """    return x > 88.72283f ? HUGE_VALF : (x < -104.0f ? 0.0f : y); /* NaN stays NaN */
""",
    "v": _TWO_FACTORS + """\
    /* out of range: +inf above, +0 below; NaN stays NaN */
    {{
        const uint32_t above = 0u - (uint32_t)(x > 88.72283f), below = 0u - (uint32_t)(x < -104.0f);
        uint32_t out;
        memcpy(&out, &y, sizeof out);
        out = (out & ~(above | below)) | (above & 0x7F800000u);
        memcpy(&y, &out, sizeof y);
    }}
    return y;
""",
}
# "n": exp of a non-positive argument (or NaN) only: softmax's exp(z - max) in the embedded
# --optimize size loops.  The same arithmetic as "", so the same bits for every x <= 0 (a
# test checks), in fewer bytes: no overflow test, a clamp instead of the underflow branch
# (exp rounds to +0 below -103.98, and so does the arithmetic from -110 on), and 2^k as
# 2^(k + 64) 2^-64 (one rounding of the exact p 2^k, as the two factors give) instead of
# splitting k: cls 16-64-64-10 on Cortex-M4F -Os 400 bytes of code against 460.
_NEXP = """\
    /* exp(x) for x <= 0 or NaN only (softmax's exp(z - max)) */
    if (x < -110.0f) x = -110.0f; /* below -103.98 exp rounds to +0: so does the arithmetic from here */
""" + _REDUCTION + """\
    const float p = (r + r2 * q) + 1.0f;
    uint32_t bits;
    float s;
    memcpy(&bits, &t, sizeof bits);
    bits = (bits - 0x4B400000u + 191u) << 23; /* 2^(k + 64): normal for -190 <= k <= 0 */
    memcpy(&s, &bits, sizeof s);
    return p * s * 5.421011e-20f; /* times 2^-64: one rounding, of the exact p 2^k */
"""
# tanh(|x|) = (1 - e) / (1 + e) with e = exp(-2|x|) = 2^k (1 + m), m = expm1(r) = r + r^2 q(r):
# the numerator (1 - 2^k) - 2^k m and the denominator (1 + 2^k) + 2^k m have no
# cancellation anywhere (2^k m is exact where it counts; for k = 0 the numerator is -m), so one
# formula serves from 0 up: no polynomial below a cut-off, no select (24 operations against
# 40-odd, the batch's tanh units 1.35x on AVX2).  |x| is clamped at 43.5 (2^k normal,
# k >= -126; tanh rounds to 1 from 9.01 on), the sign of x put back by its bit (so -0.0
# keeps it).  The same text in every flavour: branch-free, so it vectorises as it is.
_TANH = """\
    /* tanh(|x|) = ((1 - 2^k) - 2^k m) / ((1 + 2^k) + 2^k m), exp(-2|x|) = 2^k (1 + m) */
    uint32_t bits, magnitude, scale, out;
    float c, s, y;
    memcpy(&bits, &x, sizeof bits);
    magnitude = bits & 0x7FFFFFFFu;
    magnitude = magnitude < 0x422E0000u ? magnitude : 0x422E0000u; /* min(|x|, 43.5); a NaN's bits are above */
    memcpy(&c, &magnitude, sizeof c);
    {{
        const float xc = -2.0f * c;
""" + "".join("    " + line + "\n" for line in _REDUCTION.replace("x * 1.44269504f", "xc * 1.44269504f")
                                                  .replace("(x - k *", "(xc - k *").splitlines()) + """\
        const float m = r + r2 * q;
        memcpy(&scale, &t, sizeof scale);
        scale = (scale - 0x4B400000u + 127u) << 23; /* 2^k */
        memcpy(&s, &scale, sizeof s);
        y = ((1.0f - s) - s * m) / ((1.0f + s) + s * m); /* >= 0 */
    }}
    memcpy(&out, &y, sizeof out);
    out |= (bits & 0x80000000u) | (0u - (uint32_t)(x != x)); /* the sign of x; NaN in: a NaN (all bits set) out */
    memcpy(&y, &out, sizeof y);
    return y;
"""
_EXPM1_CORE = """\
    /* expm1(x) = 2^k expm1(r) + (2^k - 1), k = round(x / ln 2), |r| <= ln(2) / 2: no
       cancellation near 0 (k = 0 leaves expm1(r) itself), and 2^k - 1 is exact for
       |k| <= 24.  expm1(r) = r + r^2 q(r) is the exp polynomial without its 1. */
""" + _REDUCTION + """\
    const float m = r + r2 * q;
    uint32_t bits, scale, half_scale;
    float s, h, y, big;
    memcpy(&bits, &t, sizeof bits);
    bits -= 0x4B400000u; /* k, two's complement */
    scale = (bits + 127u) << 23; /* 2^k: right for -126 <= k <= 127, that is -87 <= x <= 88 */
    half_scale = (bits + 126u) << 23; /* 2^(k-1): above 88 (k = 128), where expm1 = exp */
    memcpy(&s, &scale, sizeof s);
    memcpy(&h, &half_scale, sizeof h);
    y = s * m + (s - 1.0f);
    big = h * (m + 1.0f) * 2.0f;
"""

# -- float64: the same design in binary64 (--math fast with dtype float64).  exp(r) for
# |r| <= ln(2) / 2 is 1 + r + r^2 q(r) with q of degree 10, a Chebyshev fit (mpmath
# chebyfit, 2.4e-19 relative error of exp(r), far below the 1.1e-16 of a rounding);
# ln 2 in two parts as fdlibm splits it (k * ln2_hi is exact for |k| < 2^21).
_REDUCTION64 = """\
    const double t = x * 1.4426950408889634 + 6755399441055744.0; /* 1.5 * 2^52: k in the low bits */
    const double k = t - 6755399441055744.0;
    const double r = (x - k * 0.6931471803691238) - k * 1.9082149292705877e-10;
    /* the polynomial in Estrin's scheme: half the dependency chain of Horner's */
    const double r2 = r * r, r4 = r2 * r2;
    const double q = ((0.5 + 0.1666666666666667 * r) + r2 * (0.04166666666666667 + 0.008333333333326136 * r))
                     + r4 * (((0.0013888888888883748 + 0.00019841269874820627 * r)
                              + r2 * (2.4801587325547743e-05 + 2.7557255400206422e-06 * r))
                             + r4 * ((2.75572736431103e-07 + 2.5105217004720745e-08 * r) + r2 * 2.0914686968086876e-09));
"""
_EXP64_CORE = """\
    /* exp(x) = 2^k * exp(r), k = round(x / ln 2), |r| <= ln(2) / 2 */
""" + _REDUCTION64 + """\
    const double p = (r + r2 * q) + 1.0;
    uint64_t bits, k1, k2;
    double s1, s2, y;
    memcpy(&bits, &t, sizeof bits);
    bits -= 0x4338000000000000u; /* k, two's complement: unsigned arithmetic, no undefined behaviour */
"""
# 2^k = 2^k1 * 2^k2, k1 = floor(k / 2): each factor normal for -2044 <= k <= 2046, so
# subnormal results (down to 2^-1075) round once, in the last product.
_TWO_FACTORS64 = """\
    k1 = (bits >> 1) | (bits & 0x8000000000000000u);
    k2 = bits - k1;
    k1 = (k1 + 1023u) << 52;
    k2 = (k2 + 1023u) << 52;
    memcpy(&s1, &k1, sizeof s1);
    memcpy(&s2, &k2, sizeof s2);
    y = p * s1 * s2;
"""
_EXP64_OUT = "    return x > 709.8 ? HUGE_VAL : (x < -746.0 ? 0.0 : y); /* NaN stays NaN */\n"
_EXP64_PICK = {
    "": """\
    if (x >= -708.0 && x <= 709.0) {{
        k1 = (bits + 1023u) << 52;
        memcpy(&s1, &k1, sizeof s1);
        return p * s1;
    }}
""" + _TWO_FACTORS64 + _EXP64_OUT,
    "v": _TWO_FACTORS64 + """\
    /* out of range: +inf above, +0 below; NaN stays NaN */
    {{
        const uint64_t above = 0u - (uint64_t)(x > 709.8), below = 0u - (uint64_t)(x < -746.0);
        uint64_t out;
        memcpy(&out, &y, sizeof out);
        out = (out & ~(above | below)) | (above & 0x7FF0000000000000u);
        memcpy(&y, &out, sizeof y);
    }}
    return y;
""",
}
_EXPM164_CORE = """\
    /* expm1(x) = 2^k expm1(r) + (2^k - 1), k = round(x / ln 2), |r| <= ln(2) / 2: no
       cancellation near 0, and 2^k - 1 is exact for |k| <= 53 */
""" + _REDUCTION64 + """\
    const double m = r + r2 * q;
    uint64_t bits, scale, half_scale;
    double s, h, y, big;
    memcpy(&bits, &t, sizeof bits);
    bits -= 0x4338000000000000u; /* k, two's complement */
    scale = (bits + 1023u) << 52; /* 2^k: right for -1022 <= k <= 1023, that is -708 <= x <= 709 */
    half_scale = (bits + 1022u) << 52; /* 2^(k-1): above 709 (k = 1024), where expm1 = exp */
    memcpy(&s, &scale, sizeof s);
    memcpy(&h, &half_scale, sizeof h);
    y = s * m + (s - 1.0);
    big = h * (m + 1.0) * 2.0;
"""
# tanh(|x|) = -e / (2 + e) with e = expm1(-2|x|) in [-1, 0]: one expm1, no cancellation
# anywhere (near 0, e = -2|x| to within its ULPs), saturating to 1 as e reaches -1; the
# sign of x put back by its bit (so -0.0 and NaN keep theirs).
_TANH64 = """\
    uint64_t bits, magnitude;
    double a, e;
    memcpy(&bits, &x, sizeof bits);
    magnitude = bits & 0x7FFFFFFFFFFFFFFFu;
    memcpy(&a, &magnitude, sizeof a);
    e = {p}_{v}expm1(-2.0 * a);
    a = -e / (2.0 + e);
    memcpy(&magnitude, &a, sizeof magnitude);
    magnitude |= bits & 0x8000000000000000u;
    memcpy(&a, &magnitude, sizeof a);
    return a;
"""


# -- what float32 and float64 write alike, but for the type's spellings and constants
# ($-placeholders, string.Template: the {p} and {v} the definitions are formatted with
# later stay as they are).  expm1's thresholds: above `high` expm1 = exp (2^(k-1) * 2),
# above `over` +inf, below `low` -1, within `tiny` of 0 x itself (expm1(x) rounds to x
# below 2^-25 (float32) / 2^-54 (float64) in magnitude, and -0.0 keeps its sign).
_BINARY = {
    "float32": {"f": "float", "u": "uint32_t", "s": "f", "inf": "0x7F800000u", "minus_one": "0xBF800000u",
                "huge": "HUGE_VALF", "high": "88.0f", "over": "88.72283f", "low": "-87.0f",
                "tiny": "2.98023224e-8f"},
    "float64": {"f": "double", "u": "uint64_t", "s": "", "inf": "0x7FF0000000000000u",
                "minus_one": "0xBFF0000000000000u", "huge": "HUGE_VAL", "high": "709.0", "over": "709.8",
                "low": "-708.0", "tiny": "5.551115123125783e-17"},
}
_EXPM1_PICK_ANY = {
    "": """\
    if (x > -$tiny && x < $tiny) return x;
    return x > $high ? (x > $over ? $huge : big) : (x < $low ? -1.0$s : y); /* NaN stays NaN */
""",
    "v": """\
    {{
        const $u above = 0u - ($u)(x > $high), overflow = 0u - ($u)(x > $over);
        const $u below = 0u - ($u)(x < $low);
        const $u tiny = 0u - (($u)(x > -$tiny) & ($u)(x < $tiny));
        $u out, big_bits, x_bits;
        memcpy(&out, &y, sizeof out);
        memcpy(&big_bits, &big, sizeof big_bits);
        memcpy(&x_bits, &x, sizeof x_bits);
        out = (out & ~above) | (big_bits & above);
        out = (out & ~(overflow | below)) | (overflow & $inf) | (below & $minus_one);
        out = (out & ~tiny) | (x_bits & tiny);
        memcpy(&y, &out, sizeof y);
    }}
    return y;
""",
}
# where(c, a, b) in the block loops: both sides computed, one chosen by a bit mask, so
# an activation like elu (z > 0 ? z : expm1(z)) keeps its expm1 unconditional.
_WHERE_ANY = """\
static inline $f {p}_vwhere$s(int c, $f a, $f b)
{{
    const $u mask = 0u - ($u)(c != 0);
    $u a_bits, b_bits;
    $f y;
    memcpy(&a_bits, &a, sizeof a_bits);
    memcpy(&b_bits, &b, sizeof b_bits);
    a_bits = (a_bits & mask) | (b_bits & ~mask);
    memcpy(&y, &a_bits, sizeof y);
    return y;
}}
"""
_SIGMOID_ANY = """\
    /* e / (1 + e) with e = exp(-|x|) <= 1 for x < 0: no overflow, subnormal results kept */
    const $f e = {p}_{v}exp$s(x < 0.0$s ? x : -x);
    return (x < 0.0$s ? e : 1.0$s) / (1.0$s + e);
"""


def _typed(text: str, dtype: str) -> str:
    """``text`` with ``dtype``'s spellings and constants (:data:`_BINARY`) in its $-placeholders."""
    return Template(text).substitute(_BINARY[dtype])


_EXPM1_PICK = {v: _typed(text, "float32") for v, text in _EXPM1_PICK_ANY.items()}
_EXPM164_PICK = {v: _typed(text, "float64") for v, text in _EXPM1_PICK_ANY.items()}


#: primitive -> (flavour -> body, primitives it calls), per numeric type; a primitive comes
#: after the ones it calls (the order :func:`definitions` writes them in).
_FLOAT32: dict[str, tuple[dict[str, str], tuple[str, ...]]] = {
    "exp": ({**{v: _EXP_CORE + pick for v, pick in _EXP_PICK.items()}, "n": _NEXP}, ()),
    "tanh": (dict.fromkeys(("", "v", "s"), _TANH), ()),
    "sigmoid": (dict.fromkeys(("", "v", "s"), _typed(_SIGMOID_ANY, "float32")), ("exp",)),
    "expm1": ({**{v: _EXPM1_CORE + pick for v, pick in _EXPM1_PICK.items()}, "s": _EXPM1_CORE + _EXPM1_PICK[""]},
              ()),
    "where": ({"v": _typed(_WHERE_ANY, "float32")}, ()),  # a complete definition (not a float -> float function)
}
# float64 has no size flavour of its own ("s" is the one-sample text: the embedded
# profile's float64 is for hosts with a double FPU, not for flash budgets).
_FLOAT64: dict[str, tuple[dict[str, str], tuple[str, ...]]] = {
    "exp": ({**{v: _EXP64_CORE + pick for v, pick in _EXP64_PICK.items()}, "s": _EXP64_CORE + _EXP64_PICK[""]}, ()),
    "expm1": ({**{v: _EXPM164_CORE + pick for v, pick in _EXPM164_PICK.items()},
               "s": _EXPM164_CORE + _EXPM164_PICK[""]}, ()),
    "tanh": ({"": _TANH64, "v": _TANH64, "s": _TANH64}, ("expm1",)),
    "sigmoid": (dict.fromkeys(("", "v", "s"), _typed(_SIGMOID_ANY, "float64")), ("exp",)),
    "where": ({"v": _typed(_WHERE_ANY, "float64")}, ()),
}
#: numeric type -> (its table, C type, function-name suffix, as libm names them: expf / exp).
_TYPES = {"float32": (_FLOAT32, "float", "f"), "float64": (_FLOAT64, "double", "")}
#: The numeric types that have inline functions.
FAST_TYPES = tuple(_TYPES)
PRIMITIVES = ("exp", "tanh", "sigmoid", "expm1")  # what fast_functions replaces
#: "": one sample; "v": the batch block loops; "s": one sample, fewest bytes (the embedded
#: profile's --optimize size): the one-sample arithmetic, so the same bits as ""; "n": exp
#: of a non-positive argument only (float32; softmax in the --optimize size loops), the
#: same bits as "" there.
FLAVOURS = ("", "v", "s", "n")


def has_fast(dtype: str) -> bool:
    """Whether ``dtype`` (a numeric type's name) has inline functions here."""
    return dtype in _TYPES


def _definition(key: str, flavour: str, prefix: str, dtype: str) -> list[str]:
    table, c_type, suffix = _TYPES[dtype]
    body = table[key][0][flavour].format(p=prefix, v=flavour)
    if body.startswith("static"):
        return body.rstrip("\n").splitlines() + [""]
    return [f"static inline {c_type} {prefix}_{flavour}{key}{suffix}({c_type} x)", "{",
            *body.rstrip("\n").splitlines(), "}", ""]


def fast_functions(prefix: str, vector: bool = False, size: bool = False, dtype: str = "float32") -> dict[str, str]:
    """primitive -> C call template over ``{a}`` for the inline functions of ``dtype``
    (``vector``: the flavour for the batch block loops; ``size``: the smallest one-sample flavour)."""
    flavour, suffix = "v" if vector else "s" if size else "", _TYPES[dtype][2]
    return {key: f"{prefix}_{flavour}{key}{suffix}({{a}})" for key in PRIMITIVES}


def fast_needs(vector: bool = False, size: bool = False) -> dict[str, tuple[str, str]]:
    """primitive (and ``where``, ``max``, ``min`` in the block loops) -> the definition its template
    calls, as :func:`definitions` takes it: the printer collects them while printing."""
    flavour = "v" if vector else "s" if size else ""
    needs = {key: (key, flavour) for key in PRIMITIVES}
    if vector:  # max and min are written with where (NaN-propagating)
        needs.update(dict.fromkeys(("where", "max", "min"), ("where", "v")))
    return needs


def nonpositive_exp(prefix: str) -> tuple[str, tuple[str, str]]:
    """The call template over ``{a}`` of exp for arguments <= 0 or NaN only (float32), and the
    definition it needs (as :func:`fast_needs` names them)."""
    return f"{prefix}_nexpf({{a}})", ("exp", "n")


def fast_where(prefix: str, dtype: str = "float32") -> str:
    """The block loops' ``where`` template over ``{c} {a} {b}``."""
    return f"{prefix}_vwhere{_TYPES[dtype][2]}({{c}}, {{a}}, {{b}})"


def definitions(used: set[tuple[str, str]], prefix: str, dtype: str = "float32") -> list[str]:
    """The definitions of the inline functions ``used`` ((primitive, flavour) pairs, as
    :func:`fast_needs` names them) for ``dtype`` and of those they call, in dependency
    order; unused ones are left out (``-Wunused-function``)."""
    table = _TYPES[dtype][0]
    used = {(key, v) for key, v in used if v in table.get(key, ({}, ()))[0]}
    for key, v in list(used):
        used.update((dependency, v) for dependency in table[key][1])
    out: list[str] = []
    for v in FLAVOURS:
        for key in table:  # a primitive after the ones it calls
            if (key, v) in used:
                out += _definition(key, v, prefix, dtype)
    return out
