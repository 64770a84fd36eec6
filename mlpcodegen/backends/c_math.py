"""Inline float32 transcendentals for the C backend (``--math fast``).

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
halves so that subnormal results and overflow to infinity come out right.  tanh uses
an odd polynomial below |x| = 0.625 (no cancellation) and (1 - e)/(1 + e), e = exp(-2|x|),
above (numerator and denominator in parallel: a shorter dependency chain);
sigmoid is e/(1 + e) or 1/(1 + e) with e = exp(-|x|); expm1 is 2^k expm1(r) + (2^k - 1).  NaN propagates, ±0 and ±inf map as libm maps them.
"""
from __future__ import annotations


MATH_MODES = ("fast", "libm")

#: Max error in float32 ULPs against the correctly rounded result (the double-precision
#: libm value rounded to float), over every float32 input; measured by bench/math_ulp.py
#: (see bench/MATH.md) and asserted on a dense sample by the tests.
ULP_BOUND = {"exp": 1, "tanh": 2, "sigmoid": 2, "expm1": 2}

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
_TANH_CORE = """\
    /* odd polynomial below 0.625 (no cancellation), (1 - e) / (1 + e) with e = exp(-2|x|)
       above; below 2^-12 tanh(x) rounds to x: x itself, which keeps the sign of -0.0 */
    uint32_t bits, magnitude;
    float a, small, e, big;
    memcpy(&bits, &x, sizeof bits);
    magnitude = bits & 0x7FFFFFFFu;
    memcpy(&a, &magnitude, sizeof a);
    {{
        const float z = x * x;
        small = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z
                  + 1.33314422036e-1f) * z - 3.33332819422e-1f) * z * x + x;
    }}
    e = {p}_{v}expf(-2.0f * a);
    big = (1.0f - e) / (1.0f + e); /* >= 0: takes the sign of x */
"""
_TANH_PICK = {
    "": "    return a < 2.44140625e-4f ? x : (a < 0.625f ? small : (x < 0.0f ? -big : big));\n",
    "v": """\
    {{
        const uint32_t use_small = 0u - (uint32_t)(a < 0.625f), use_x = 0u - (uint32_t)(a < 2.44140625e-4f);
        uint32_t small_bits, big_bits, out;
        float y;
        memcpy(&small_bits, &small, sizeof small_bits);
        memcpy(&big_bits, &big, sizeof big_bits);
        out = (small_bits & use_small) | ((big_bits | (bits & 0x80000000u)) & ~use_small);
        out = (out & ~use_x) | (bits & use_x);
        memcpy(&y, &out, sizeof y);
        return y;
    }}
""",
}
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
_EXPM1_PICK = {
    # below 2^-25 in magnitude expm1(x) rounds to x: x itself, which keeps the sign of -0.0
    "": """\
    if (x > -2.98023224e-8f && x < 2.98023224e-8f) return x;
    return x > 88.0f ? (x > 88.72283f ? HUGE_VALF : big) : (x < -87.0f ? -1.0f : y); /* NaN stays NaN */
""",
    "v": """\
    {{
        const uint32_t above = 0u - (uint32_t)(x > 88.0f), overflow = 0u - (uint32_t)(x > 88.72283f);
        const uint32_t below = 0u - (uint32_t)(x < -87.0f);
        const uint32_t tiny = 0u - ((uint32_t)(x > -2.98023224e-8f) & (uint32_t)(x < 2.98023224e-8f));
        uint32_t out, big_bits, x_bits;
        memcpy(&out, &y, sizeof out);
        memcpy(&big_bits, &big, sizeof big_bits);
        memcpy(&x_bits, &x, sizeof x_bits);
        out = (out & ~above) | (big_bits & above);
        out = (out & ~(overflow | below)) | (overflow & 0x7F800000u) | (below & 0xBF800000u);
        out = (out & ~tiny) | (x_bits & tiny);
        memcpy(&y, &out, sizeof y);
    }}
    return y;
""",
}
# where(c, a, b) in the block loops: both sides computed, one chosen by a bit mask, so
# an activation like elu (z > 0 ? z : expm1(z)) keeps its expm1 unconditional.
_WHERE = """\
static inline float {p}_vwheref(int c, float a, float b)
{{
    const uint32_t mask = 0u - (uint32_t)(c != 0);
    uint32_t a_bits, b_bits;
    float y;
    memcpy(&a_bits, &a, sizeof a_bits);
    memcpy(&b_bits, &b, sizeof b_bits);
    a_bits = (a_bits & mask) | (b_bits & ~mask);
    memcpy(&y, &a_bits, sizeof y);
    return y;
}}
"""
_SIGMOID = """\
    /* e / (1 + e) with e = exp(-|x|) <= 1 for x < 0: no overflow, subnormal results kept */
    const float e = {p}_{v}expf(x < 0.0f ? x : -x);
    return (x < 0.0f ? e : 1.0f) / (1.0f + e);
"""

#: primitive -> (flavour -> body, primitives it calls).
_FLOAT32: dict[str, tuple[dict[str, str], tuple[str, ...]]] = {
    "exp": ({v: _EXP_CORE + pick for v, pick in _EXP_PICK.items()}, ()),
    "tanh": ({**{v: _TANH_CORE + pick for v, pick in _TANH_PICK.items()}, "s": _TANH_CORE + _TANH_PICK[""]},
             ("exp",)),
    "sigmoid": ({"": _SIGMOID, "v": _SIGMOID, "s": _SIGMOID}, ("exp",)),
    "expm1": ({**{v: _EXPM1_CORE + pick for v, pick in _EXPM1_PICK.items()}, "s": _EXPM1_CORE + _EXPM1_PICK[""]},
              ()),
    "where": ({"v": _WHERE}, ()),  # a complete definition (not a float -> float function)
}
PRIMITIVES = ("exp", "tanh", "sigmoid", "expm1")  # what fast_functions replaces
#: "": one sample; "v": the batch block loops; "s": one sample, fewest bytes (the embedded
#: profile's --optimize size): the one-sample arithmetic, so the same bits as "".
FLAVOURS = ("", "v", "s")


def _definition(key: str, flavour: str, prefix: str) -> list[str]:
    body = _FLOAT32[key][0][flavour].format(p=prefix, v=flavour)
    if body.startswith("static"):
        return body.rstrip("\n").splitlines() + [""]
    return [f"static inline float {prefix}_{flavour}{key}f(float x)", "{", *body.rstrip("\n").splitlines(), "}", ""]


def fast_functions(prefix: str, vector: bool = False, size: bool = False) -> dict[str, str]:
    """primitive -> C call template over ``{a}`` for the inline float32 functions
    (``vector``: the flavour for the batch block loops; ``size``: the smallest one-sample flavour)."""
    flavour = "v" if vector else "s" if size else ""
    return {key: f"{prefix}_{flavour}{key}f({{a}})" for key in PRIMITIVES}


def fast_needs(vector: bool = False, size: bool = False) -> dict[str, tuple[str, str]]:
    """primitive (and ``where``, ``max``, ``min`` in the block loops) -> the definition its template
    calls, as :func:`definitions` takes it: the printer collects them while printing."""
    flavour = "v" if vector else "s" if size else ""
    needs = {key: (key, flavour) for key in PRIMITIVES}
    if vector:  # max and min are written with where (NaN-propagating)
        needs.update(dict.fromkeys(("where", "max", "min"), ("where", "v")))
    return needs


def fast_where(prefix: str) -> str:
    """The block loops' ``where`` template over ``{c} {a} {b}``."""
    return f"{prefix}_vwheref({{c}}, {{a}}, {{b}})"


def definitions(used: set[tuple[str, str]], prefix: str) -> list[str]:
    """The definitions of the inline functions ``used`` ((primitive, flavour) pairs, as
    :func:`fast_needs` names them) and of those they call, in dependency order; unused
    ones are left out (``-Wunused-function``)."""
    used = {(key, v) for key, v in used if v in _FLOAT32.get(key, ({}, ()))[0]}
    for key, v in list(used):
        used.update((dependency, v) for dependency in _FLOAT32[key][1])
    out: list[str] = []
    for v in FLAVOURS:
        for key in _FLOAT32:  # exp first: the others call it
            if (key, v) in used:
                out += _definition(key, v, prefix)
    return out
