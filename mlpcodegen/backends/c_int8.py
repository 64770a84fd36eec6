"""C99 printer of an int8 plan (:mod:`mlpcodegen.core.quant`): a full-integer TFLite model as
LiteRT's reference kernels compute it, bit for bit, with no interpreter.

The file defines

* ``void NAME_int8(const int8_t *x, int8_t *y)``: integer only (no float, no libm, no
  division): the model's int8 input codes in, its int8 output codes out, with the scales and
  zero points as macros in the header (``real = SCALE * (code - ZERO_POINT)``);
* ``void NAME(const float *x, float *y)``: the float wrapper: LiteRT's QUANTIZE (``x / scale``
  in float, rounded half away from zero, plus the zero point, saturated; NaN and quotients
  beyond int32 as LiteRT's x86 build maps them), ``NAME_int8``, then
  DEQUANTIZE (``scale * (code - zero_point)`` in float).  On a float-I/O model this is what
  LiteRT returns; on an int8-I/O model it uses the same input and output quantisation.

What each layer computes (LiteRT's reference kernels, as measured bit-exact by tests/test_tflite.py):

* FULLY_CONNECTED: ``acc = bias + sum((x - zp_in) * w)`` in int32 (the zero point folded into
  the bias at generation time: the same integer), then the requantisation
  ``(acc * multiplier + 2**(30 - shift)) >> (31 - shift)`` in int64 (LiteRT's single-rounding
  MultiplyByQuantizedMultiplier, one multiplier and shift per output channel), ``+ zp_out``,
  clamped to the fused activation's range;
* RELU/RELU6/RELU_N1_TO_1: the same requantisation of ``x - zp_in``, then the clamp;
* LOGISTIC/TANH: a 256-entry table built at generation time as LiteRT's PopulateLookupTable;
* SOFTMAX: gemmlowp's fixed-point exp of the scaled differences, their sum in Q12.19, its
  reciprocal by Newton-Raphson, as LiteRT's reference int8 softmax (and TFLite Micro's).

No undefined behaviour for any input codes: sums are bounded (at most 255 * 128 per weight,
checked against int32 when the plan is printed), every shift count is below its type's width,
the floor of a signed shift is taken on an offset unsigned value, saturations are explicit.
"""
from __future__ import annotations

import numpy as np

from ..core.errors import ValidationError
from ..core.ir import Network
from ..core.numeric import FLOAT32
from ..core.quant import Int8Plan, QDense, QRelu, QSoftmax, QTable, int8_plan
from ._text import HEADER, Lines, quote_name
from .c import _note_lines
from .c_language import check_name
from .c_storage import Storage
from .c_storage import storage as table_storage

DTYPES = ("int8",)
SUFFIXES = ("_int8", "_rq", "_rq2", "_clamp", "_ld", "_dot4", "_dot8", "_dot2", "_dot1", "_srdhm", "_rdbp", "_shl", "_exp", "_recip", "_softmax", "_quantize",
            "_batch") + tuple(f"_{kind}{i}" for kind in "wbmst" for i in range(1, 10))
#: Bytes added to the stated stack for saved registers, alignment and spills.
FRAME_OVERHEAD = 160
#: Bytes added for the DSP path's helpers (dot4: 4 accumulators, 4 row loads; dot1).
DSP_FRAMES = 320


def checked_name(name: str) -> str:
    return check_name(name, SUFFIXES)


def signature(net: Network, dtype: str, name: str, profile: str = "desktop") -> list[str]:
    """The float API cffi calls, then the integer one."""
    return [f"void {name}(const float *x, float *y)", f"void {name}_int8(const int8_t *x, int8_t *y)"]


def stack_bytes(net: Network, dtype: str, unroll: str = "auto", storage: str = "plain") -> dict[str, int]:
    """Bound of the stack of ``NAME_int8`` (two int8 buffers as wide as the widest layer, and a
    frame per level of helper calls: softmax -> exp -> srdhm is three deep; a softmax's int32
    exps) and of the float
    wrapper (its codes, then NAME_int8).  Checked with -fstack-usage by tests/test_tflite.py
    (flash-table targets, AVR: their own frame overhead and no DSP path, tests/test_cores.py)."""
    plan = int8_plan(net)
    scratch = _softmax_width(plan)
    depth = 3 if scratch else 1
    tables = table_storage(storage)
    overhead = tables.frame_overhead or FRAME_OVERHEAD
    # the DSP path (M4/M7): its 4 sums and the frames of dot4 and dot1 (measured 296 bytes at -O0)
    int8 = 2 * plan.width + 4 * scratch + overhead * (1 + depth) + (DSP_FRAMES if tables.plain else 0)
    one = int8 + plan.n_inputs + plan.n_outputs + overhead
    return {"int8": int8, "one": one, "batch": one + FRAME_OVERHEAD}


def _softmax_width(plan: Int8Plan) -> int:
    """The widest softmax (its exps are kept in an int32 scratch array), 0 without one."""
    return max([layer.width for layer in plan.layers if isinstance(layer, QSoftmax)], default=0)


def _plan(net: Network, rounding: object) -> Int8Plan:
    plan = int8_plan(net)
    return plan if rounding is None else plan.rounded(str(rounding))


def emit_c_int8(net: Network, *, dtype: str = "int8", name: str = "mlp", domain: object = None,
                rounding: object = None, storage: str = "plain", **ignored: object) -> str:
    """The int8 C of a quantised network (a :class:`~mlpcodegen.core.quant.QuantizedNetwork`).
    ``rounding``: "single" (the pip LiteRT's requantisation) or "double" (TFLite Micro's and
    CMSIS-NN's), default the plan's (single for a .tflite: what LiteRT computes).
    ``storage``: how the tables are kept (c_storage; AVR's ``progmem``: in flash, read with
    pgm_read_*).  The float C's options (unroll, math, profile, optimize) and q15's domain mean
    nothing here."""
    return _Printer(net, _plan(net, rounding), checked_name(name), table_storage(storage)).source()


def emit_c_int8_header(net: Network, *, dtype: str = "int8", name: str = "mlp", domain: object = None,
                       rounding: object = None, storage: str = "plain", **ignored: object) -> str:
    return _Printer(net, _plan(net, rounding), checked_name(name), table_storage(storage)).header()


def _int_lines(values: np.ndarray, per_line: int = 16) -> list[str]:
    text = [str(int(v)) for v in np.asarray(values).reshape(-1)]
    return ["    " + ", ".join(text[i:i + per_line]) + "," for i in range(0, len(text), per_line)]


def folded_bias(layer: QDense) -> np.ndarray:
    """``bias - zp_in * sum(w)``: the input zero point folded into the bias (exact in
    integers), so the inner loop is ``s += w[i] * x[i]`` (one multiply-add per weight)."""
    return layer.bias.astype(np.int64) - layer.input.zero_point * layer.weights.astype(np.int64).sum(axis=1)


def _check_sums(plan: Int8Plan) -> None:
    """Every partial int32 sum of a layer stays in int32 for any int8 inputs (else refuse):
    ``|folded bias| + 128 * sum|w|`` below 2^31."""
    for layer in plan.layers:
        if isinstance(layer, QDense):
            worst = np.abs(folded_bias(layer)) + 128 * np.abs(layer.weights.astype(np.int64)).sum(axis=1)
            if worst.max() >= 2 ** 31:
                raise ValidationError(f"layer {quote_name(layer.name)!r}: its int32 sum could overflow "
                                      f"({int(worst.max())})")


class _Printer:
    def __init__(self, net: Network, plan: Int8Plan, name: str, storage: Storage = table_storage("plain")) -> None:
        _check_sums(plan)
        self.net, self.plan, self.name, self.storage = net, plan, name, storage

    def read(self, c_type: str, lvalue: str) -> str:
        """A table element (flash-table targets: through the storage's read macro)."""
        return self.storage.read(self.name, c_type, lvalue)

    def const(self) -> str:
        """Text after a table's declarator (AVR: NAME_CONST, PROGMEM there)."""
        return self.storage.after_declarator(self.name)

    def comment(self) -> list[str]:
        p, n = self.plan, self.name
        stack = stack_bytes(self.net, "int8", storage=self.storage.name)
        kinds = ", ".join(_describe(layer) for layer in p.layers)
        return [f"/* {HEADER}",
                f" * network {quote_name(self.net.name)}: {self.net.describe()}, int8 (TFLite full-integer "
                "quantisation), bit-exact with LiteRT's reference kernels",
                *_note_lines(self.net),
                f" * layers: {kinds}; requantisation: {p.rounding} rounding ("
                f"{'the pip LiteRT' if p.rounding == 'single' else 'TFLite Micro, CMSIS-NN'})",
                f" * {n}_int8(x, y): integer only (no float, no libm, no division): int8 codes "
                f"x[{p.n_inputs}] -> y[{p.n_outputs}], real = {n}_INT8_{{IN,OUT}}_SCALE * (code - "
                f"{n}_INT8_{{IN,OUT}}_ZERO_POINT)",
                f" * {n}(x, y): float in and out: LiteRT's QUANTIZE, {n}_int8, DEQUANTIZE "
                f"(the model {'takes' if p.float_input else 'does not take'} float inputs and "
                f"{'returns' if p.float_output else 'does not return'} float outputs itself)",
                f" * Stack, at most (bytes): {n}_int8 {stack['int8']}, {n} {stack['one']}.  RAM: nothing else (no "
                f"globals); constant data (flash): {self.table_bytes()} bytes of weights, biases, multipliers, tables.",
                " * In place: y may be x.  Reentrant: no mutable globals. */"]

    def table_bytes(self) -> int:
        total = 0
        for layer in self.plan.layers:
            if isinstance(layer, QDense):
                total += layer.weights.size + 4 * 3 * layer.units
            elif isinstance(layer, QTable):
                total += 256
        return total

    def header(self) -> str:
        p, n = self.plan, self.name
        guard = f"MLPCODEGEN_{n}_H"
        lines = Lines().add(*self.comment(), f"#ifndef {guard}", f"#define {guard}", "", "#include <stdint.h>", "")
        lines.add(f"#define {n}_INT8_INPUTS {p.n_inputs}u", f"#define {n}_INT8_OUTPUTS {p.n_outputs}u",
                  f"#define {n}_INT8_IN_SCALE {FLOAT32.c_literal(p.input.scale)}",
                  f"#define {n}_INT8_IN_ZERO_POINT ({p.input.zero_point})",
                  f"#define {n}_INT8_OUT_SCALE {FLOAT32.c_literal(p.output.scale)}",
                  f"#define {n}_INT8_OUT_ZERO_POINT ({p.output.zero_point})", "")
        lines.add("#ifdef __cplusplus", 'extern "C" {', "#endif", "")
        lines.add(*(proto + ";" for proto in signature(self.net, "int8", n)))
        lines.add("", "#ifdef __cplusplus", "}", "#endif", "", f"#endif /* {guard} */")
        return str(lines)

    def source(self) -> str:
        lines = Lines().add(*self.comment(), "#include <stddef.h>", "#include <stdint.h>", *DSP_INCLUDES, "")
        lines.add(*self.storage.macros(self.name, ("int8_t", "uint8_t", "int32_t")))
        lines.add(*(proto + ";" for proto in signature(self.net, "int8", self.name)), "")
        for index, layer in enumerate(self.plan.layers, 1):
            lines.add(*self.arrays(index, layer))
        lines.add(*self.helpers(), *self.dsp_helpers(), *self.flash_dot())
        lines.add(*self.int8_function(), *self.wrapper())
        return str(lines)

    # ------------------------------------------------------------------ data

    def arrays(self, index: int, layer) -> list[str]:
        n = self.name
        if isinstance(layer, QDense):
            uniform = len(set(zip(layer.multipliers.tolist(), layer.shifts.tolist()))) == 1
            head = [f"/* layer {index} {quote_name(layer.name)}: FULLY_CONNECTED {layer.n_in} -> {layer.units}, "
                    f"fused {layer.fused}, input zero point {layer.input.zero_point}, output zero point "
                    f"{layer.output.zero_point}, clamp [{layer.low}, {layer.high}], "
                    f"{'one scale' if uniform else 'a scale per channel'} */",
                    f"static const int8_t {n}_w{index}[{layer.weights.size}]{self.const()} = {{",
                    *_int_lines(layer.weights), "};",
                    f"static const int32_t {n}_b{index}[{layer.units}]{self.const()} = {{ /* bias - input zero point "
                    "* sum(w) */",
                    *_int_lines(folded_bias(layer), 8), "};"]
            if uniform:
                return head + [""]
            single = self.plan.rounding == "single"
            return head + [f"static const int32_t {n}_m{index}[{layer.units}]{self.const()} = {{",
                           *_int_lines(layer.multipliers, 8), "};",
                           f"static const {'uint8_t' if single else 'int8_t'} {n}_s{index}[{layer.units}]{self.const()} = {{",
                           *_int_lines(31 - layer.shifts if single else layer.shifts), "};", ""]
        if isinstance(layer, QTable):
            return [f"/* layer {index} {quote_name(layer.name)}: {layer.kind.upper()} by table, indexed by "
                    "code + 128 (LiteRT's PopulateLookupTable) */",
                    f"static const int8_t {n}_t{index}[256]{self.const()} = {{", *_int_lines(layer.table), "};", ""]
        return []

    def needed(self) -> set[str]:
        kinds = {type(layer) for layer in self.plan.layers}
        single = self.plan.rounding == "single"
        names = ({"rq", "clamp"} if single else {"rq2", "rdbp", "clamp"}) if kinds & {QDense, QRelu} else set()
        if QSoftmax in kinds:
            names |= {"srdhm", "rdbp", "shl", "exp", "recip", "softmax"} | ({"rq"} if single else set())
        return names

    def helpers(self) -> list[str]:
        n, needed = self.name, self.needed()
        parts = {
            "rq": ["/* floor((a * m + 2^(t-1)) / 2^t) for |a| < 2^31, 0 <= m < 2^31, 1 <= t <= 62: LiteRT's",
                   "   MultiplyByQuantizedMultiplier (single rounding, halves up).  The floor is taken on the",
                   "   value offset by 2^63 in uint64 (no signed shift); |a * m| < 2^62, nothing overflows. */",
                   f"static int64_t {n}_rq(int32_t a, int32_t m, uint32_t t)", "{",
                   "    const int64_t p = (int64_t)a * m + ((int64_t)1 << (t - 1u));",
                   "    const uint64_t u = (uint64_t)p + UINT64_C(0x8000000000000000);",
                   "    return (int64_t)(u >> t) - (int64_t)(UINT64_C(0x8000000000000000) >> t);", "}", ""],
            "rq2": ["/* TFLite Micro's MultiplyByQuantizedMultiplier (double rounding, CMSIS-NN's default): a << left",
                    "   (wrapping in int32, as their x * (1 << left) does on a core), the doubling high multiply",
                    "   floor((x * m + 2^30) / 2^31) (m >= 0: never saturates; the floor on the value offset by 2^63",
                    "   in uint64), then the rounding divide by 2^right (halves away from zero). */",
                    f"static int32_t {n}_rq2(int32_t a, int32_t m, int32_t shift)", "{",
                    "    const uint32_t left = shift > 0 ? (uint32_t)shift : 0u;",
                    "    const uint32_t right = shift > 0 ? 0u : (uint32_t)-shift;",
                    "    const int32_t x = (int32_t)((uint32_t)a << left);",
                    "    const uint64_t u = (uint64_t)((int64_t)x * m + ((int64_t)1 << 30)) + UINT64_C(0x8000000000000000);",
                    "    const int32_t h = (int32_t)((int64_t)(u >> 31) - (int64_t)(UINT64_C(0x8000000000000000) >> 31));",
                    f"    return {n}_rdbp(h, right);", "}", ""],
            "clamp": [f"static int8_t {n}_clamp(int64_t v, int32_t lo, int32_t hi)", "{",
                      "    return (int8_t)(v < lo ? lo : v > hi ? hi : v);", "}", ""],
            "srdhm": ["/* gemmlowp's SaturatingRoundingDoublingHighMul: (a * b + nudge) / 2^31 toward zero. */",
                      f"static int32_t {n}_srdhm(int32_t a, int32_t b)", "{",
                      "    const int64_t p = (int64_t)a * b;",
                      "    if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX;",
                      "    return (int32_t)((p + (p >= 0 ? (INT32_C(1) << 30) : 1 - (INT32_C(1) << 30))) / ((int64_t)1 << 31));",
                      "}", ""],
            "rdbp": ["/* gemmlowp's RoundingDivideByPOT (halves away from zero), 0 <= e <= 31: the floor from",
                     "   the value offset by 2^31 in uint32, the remainder from its two's complement bits. */",
                     f"static int32_t {n}_rdbp(int32_t x, uint32_t e)", "{",
                     "    const uint32_t u = (uint32_t)x, mask = (uint32_t)((UINT64_C(1) << e) - 1u);",
                     "    int32_t q;",
                     "    if (e == 0u) return x;",
                     "    q = (int32_t)((u + 0x80000000u) >> e) - (int32_t)(0x80000000u >> e);",
                     "    return q + (int32_t)((u & mask) > (mask >> 1) + (x < 0 ? 1u : 0u));", "}", ""],
            "shl": ["/* gemmlowp's SaturatingRoundingMultiplyByPOT for a positive exponent. */",
                    f"static int32_t {n}_shl(int32_t x, uint32_t e)", "{",
                    "    const int32_t limit = (int32_t)((UINT32_C(1) << (31u - e)) - 1u);",
                    "    return x > limit ? INT32_MAX : x < -limit ? INT32_MIN : x * (int32_t)(UINT32_C(1) << e);", "}", ""],
            "exp": ["/* gemmlowp's exp_on_negative_values: a <= 0 in Q5.26, exp(a) in Q0.31. */",
                    f"static int32_t {n}_exp(int32_t a)", "{",
                    f"    static const int32_t f[7]{self.const()} = {{1672461947, 1302514674, 790015084, 290630308, 39332535, "
                    "720401, 242};",
                    "    const int32_t r = (int32_t)((uint32_t)a & 0xffffffu) - (INT32_C(1) << 24); /* in [-1/4, 0) */",
                    "    const int32_t x = r * 32 + (INT32_C(1) << 28), x2 = " + n + "_srdhm(x, x);",
                    "    const int32_t x3 = " + n + "_srdhm(x2, x), x4 = " + n + "_srdhm(x2, x2);",
                    "    const int32_t p = " + n + "_rdbp(" + n + "_srdhm(" + n + "_rdbp(x4, 2u) + x3, 715827883) + x2, 1u);",
                    "    const int32_t rest = r - a;",
                    "    int32_t y = 1895147668 + " + n + "_srdhm(1895147668, x + p);",
                    "    uint32_t k;",
                    "    for (k = 0u; k < 7u; ++k) if ((uint32_t)rest & (UINT32_C(1) << (24u + k))) y = " + n + "_srdhm(y, " + self.read("int32_t", "f[k]") + ");",
                    "    return a == 0 ? INT32_MAX : y;", "}", ""],
            "recip": ["/* gemmlowp's one_over_one_plus_x_for_x_in_0_1: 0 <= a < 2^31 in Q0.31, three",
                      "   Newton-Raphson steps in Q2.29. */",
                      f"static int32_t {n}_recip(int32_t a)", "{",
                      "    const int32_t h = (int32_t)(((int64_t)a + INT32_MAX + 1) / 2);",
                      f"    int32_t x = 1515870810 + {n}_srdhm(h, -1010580540);",
                      "    uint32_t k;",
                      f"    for (k = 0u; k < 3u; ++k) x = x + {n}_shl({n}_srdhm(x, (INT32_C(1) << 29) - {n}_srdhm(h, x)), 2u);",
                      f"    return {n}_shl(x, 1u);", "}", ""],
            "softmax": ["/* LiteRT's reference int8 softmax (output scale 1/256, zero point -128). */",
                        "/* ex: width int32 of scratch, each exp computed once (-1: below diff_min). */",
                        f"static void {n}_softmax(const int8_t *x, int8_t *y, int32_t *ex, uint32_t width, int32_t m, "
                        "uint32_t s, int32_t diff_min)", "{",
                        "    int32_t top = -128, sum = 0, scale, e;", "    uint32_t i, headroom = 0u, sumbits;",
                        "    for (i = 0u; i < width; ++i) if (x[i] > top) top = x[i];",
                        "    for (i = 0u; i < width; ++i) {",
                        "        const int32_t d = x[i] - top;",
                        f"        ex[i] = d >= diff_min ? {n}_exp({self.softmax_scaled()}) : -1;",
                        f"        if (ex[i] >= 0) sum += {n}_rdbp(ex[i], 12u);",
                        "    }",
                        "    sumbits = (uint32_t)sum;",
                        "    while (!(sumbits & 0x80000000u)) { sumbits <<= 1; ++headroom; }",
                        f"    scale = {n}_recip((int32_t)(sumbits - 0x80000000u));",
                        "    for (i = 0u; i < width; ++i) {",
                        "        if (ex[i] < 0) { y[i] = -128; continue; }",
                        f"        e = {n}_rdbp({n}_srdhm(scale, ex[i]), 12u - headroom + 23u) - 128;",
                        "        y[i] = (int8_t)(e > 127 ? 127 : e < -128 ? -128 : e);", "    }", "}", ""],
        }
        if not self.storage.plain:  # AVR: 64-bit shifts are library loops; past the product, 32-bit steps
            parts["rq"][5:5] = [
                "#if defined(__AVR__)",
                "    if (t >= 33u) { /* q = floor(u / 2^(t-1)) < 2^32 (u = a m + 2^63): (q + 1) >> 1 is the rounded",
                "                       value plus 2^(63-t), below 2^30 (|a m| < 2^62): as the lines below */",
                "        const uint64_t u = (uint64_t)((int64_t)a * m) + UINT64_C(0x8000000000000000);",
                "        const uint32_t q = (uint32_t)(u >> 32) >> (t - 33u);",
                "        return (int32_t)(q >> 1) - (int32_t)(UINT32_C(1) << (63u - t)) + (int32_t)(q & 1u);",
                "    }", "#endif"]
        order = ("rq", "rdbp", "rq2", "clamp", "srdhm", "shl", "exp", "recip", "softmax")
        return [line for key in order if key in needed for line in parts[key]]

    def softmax_scaled(self) -> str:
        """The scaled difference: single rounding as the pip LiteRT, or TFLite Micro's
        MultiplyByQuantizedMultiplierGreaterThanOne (d << s stays in int32 for d >= diff_min)."""
        n = self.name
        if self.plan.rounding == "single":
            return f"(int32_t){n}_rq(d, m, 31u - s)"
        return f"{n}_srdhm(d * (int32_t)(UINT32_C(1) << s), m)"

    # ------------------------------------------------------------------ code

    def flash_dot(self) -> list[str]:
        """Flash-table targets (AVR): a row's int32 sum in one loop of assembly, the weight read
        from flash (lpm Z+), the input from RAM (ld X+), their product in one MULS and its sign
        from the carry it leaves (avr-gcc calls __mulhisi3 a product); elsewhere the loop in C."""
        if self.storage.plain or not any(isinstance(layer, QDense) for layer in self.plan.layers):
            return []
        n = self.name
        return ["/* s + w[0] x[0] + ... + w[k-1] x[k-1] for k >= 1 (w in flash on AVR) */",
                "#if defined(__AVR_HAVE_MUL__) && defined(__GNUC__)",
                f"__attribute__((always_inline)) static inline int32_t {n}_dot8(int32_t s, const int8_t *w, "
                "const int8_t *x, uint16_t k)", "{", "    uint8_t a, b, t;",
                '    __asm__("1:\\n\\tlpm %[a], Z+\\n\\tld %[b], X+\\n\\tmuls %[a], %[b]\\n\\tsbc %[t], %[t]\\n\\t"',
                '            "add %A0, r0\\n\\tadc %B0, r1\\n\\tadc %C0, %[t]\\n\\tadc %D0, %[t]\\n\\t"',
                '            "cp %A[x], %A[end]\\n\\tcpc %B[x], %B[end]\\n\\tbrne 1b\\n\\tclr __zero_reg__"',
                '            : "+&r"(s), "+&z"(w), [x] "+&x"(x), [a] "=&d"(a), [b] "=&d"(b), [t] "=&r"(t)',
                '            : [end] "r"(x + k) : "r0", "memory");', "    return s;", "}", "#else",
                f"static int32_t {n}_dot8(int32_t s, const int8_t *w, const int8_t *x, uint16_t k)", "{",
                "    do {", f"        s += (int32_t){self.read('int8_t', 'w[0]')} * (int32_t)x[0];",
                "        ++w; ++x;", "    } while (--k);", "    return s;", "}", "#endif", ""]

    def dsp_helpers(self) -> list[str]:
        """Cortex-M4/M7 (DSP extension): dot products of int8 rows two products per SMLAD, the
        bytes of four weights and four inputs unpacked by SXTB16 (even, and rotated: odd bytes)
        into int16 pairs; weights stay int8, in the file's order (the pairing is the same for
        both operands).  Four rows at once share each input word.  Integer sums are exact, so
        the order does not change a bit; the portable loop is used elsewhere (M0+, hosts)."""
        n = self.name
        dense = [layer for layer in self.plan.layers if isinstance(layer, QDense)]
        four, one = any(d.units >= 4 for d in dense), any(d.units % 4 for d in dense)

        def pair(acc: str, w: str) -> list[str]:
            return [f"            {acc} = __smlad(__sxtb16((int32_t){w}), xe, {acc});",
                    f"            {acc} = __smlad(__sxtb16((int32_t)(({w} >> 8) | ({w} << 24))), xo, {acc});"]
        load = ["#if MLPC_INT8_DSP",
                f"static uint32_t {n}_ld(const int8_t *p) /* four bytes, any alignment (M4/M7 load unaligned) */",
                "{", "    uint32_t v;", "    memcpy(&v, p, sizeof v);", "    return v;", "}", ""]
        dot4 = [f"/* s[r] += sum(w[r * n + i] * x[i]) for rows r < 4, i < n */",
                 f"static void {n}_dot4(const int8_t *w, uint32_t n, const int8_t *x, int32_t *s)", "{",
                 "    int32_t a0 = s[0], a1 = s[1], a2 = s[2], a3 = s[3];", "    uint32_t i;",
                 "    for (i = 0u; i + 4u <= n; i += 4u) {",
                 f"        const uint32_t xv = {n}_ld(x + i);",
                 "        const int32_t xe = __sxtb16((int32_t)xv), xo = __sxtb16((int32_t)((xv >> 8) | (xv << 24)));",
                 "        {",
                 f"            const uint32_t w0 = {n}_ld(w + i), w1 = {n}_ld(w + n + i);",
                 *pair("a0", "w0"), *pair("a1", "w1"), "        }", "        {",
                 f"            const uint32_t w2 = {n}_ld(w + 2u * n + i), w3 = {n}_ld(w + 3u * n + i);",
                 *pair("a2", "w2"), *pair("a3", "w3"), "        }", "    }",
                 "    for (; i < n; ++i) {", "        const int32_t v = x[i];",
                 "        a0 += w[i] * v; a1 += w[n + i] * v; a2 += w[2u * n + i] * v; a3 += w[3u * n + i] * v;",
                 "    }", "    s[0] = a0; s[1] = a1; s[2] = a2; s[3] = a3;", "}", ""]
        dot1 = [f"static int32_t {n}_dot1(const int8_t *w, uint32_t n, const int8_t *x, int32_t a)", "{",
                 "    uint32_t i;", "    for (i = 0u; i + 4u <= n; i += 4u) {",
                 f"        const uint32_t xv = {n}_ld(x + i), wv = {n}_ld(w + i);",
                 "        a = __smlad(__sxtb16((int32_t)wv), __sxtb16((int32_t)xv), a);",
                 "        a = __smlad(__sxtb16((int32_t)((wv >> 8) | (wv << 24))), __sxtb16((int32_t)((xv >> 8) | "
                 "(xv << 24))), a);", "    }",
                 "    for (; i < n; ++i) a += w[i] * x[i];", "    return a;", "}", ""]
        dot2 = ["#if MLPC_INT8_PAIRS", "/* s[r] += sum(w[r * n + i] * x[i]) for rows r < 2, i < n */",
                f"static void {n}_dot2(const int8_t *w, uint32_t n, const int8_t *x, int32_t *s)", "{",
                "    const int8_t *w1 = w + n;", "    int32_t a = s[0], b = s[1];", "    uint32_t i;",
                "    for (i = 0u; i < n; ++i) {", "        const int32_t v = x[i];", "        a += w[i] * v;",
                "        b += w1[i] * v;", "    }", "    s[0] = a; s[1] = b;", "}", "#endif", ""]
        pairs = dot2 if any(d.units >= 2 for d in dense) else []
        return load + (dot4 if four else []) + (dot1 if one else []) + ["#endif", ""] + pairs

    def int8_function(self) -> list[str]:
        p, n = self.plan, self.name
        scratch = _softmax_width(p)
        dsp = any(isinstance(layer, QDense) and layer.units >= 4 for layer in p.layers)  # dot4's scratch
        pairs = any(isinstance(layer, QDense) and layer.units >= 2 for layer in p.layers)  # dot2's
        lines = [f"void {n}_int8(const int8_t *x, int8_t *y)", "{", f"    int8_t h[2][{p.width}];",
                 *([f"    int32_t ex[{scratch}];"] if scratch else []), "    uint32_t i, j;",
                 *(["#if MLPC_INT8_DSP", "    int32_t s4[4];", "    uint32_t k;", "#endif"] if dsp else []),
                 *(["#if MLPC_INT8_PAIRS", "    int32_t s4[2];", "    uint32_t k;", "#endif"] if pairs else [])]
        source = "x"
        for index, layer in enumerate(p.layers, 1):
            target = f"h[{index % 2}]"
            lines += self.layer(index, layer, source, target)
            source = target
        lines += [f"    for (i = 0u; i < {p.n_outputs}u; ++i) y[i] = {source}[i];", "}", ""]
        return lines

    def layer(self, index: int, layer, source: str, target: str) -> list[str]:
        n = self.name
        if isinstance(layer, QDense):
            uniform = len(set(zip(layer.multipliers.tolist(), layer.shifts.tolist()))) == 1

            def store(row: str, value: str) -> str:
                m = str(int(layer.multipliers[0])) if uniform else self.read("int32_t", f"{n}_m{index}[{row}]")
                kind = "uint8_t" if self.plan.rounding == "single" else "int8_t"  # as arrays() declares it
                shift = int(layer.shifts[0]) if uniform else self.read(kind, f"{n}_s{index}[{row}]")
                return (f"{target}[{row}] = {n}_clamp({self.requantize(value, m, shift)} + "
                        f"({layer.output.zero_point}), {layer.low}, {layer.high});")

            portable = [f"    for (j = 0u; j < {layer.units}u; ++j) {{",
                        f"        const int8_t *w = {n}_w{index} + j * {layer.n_in}u;",
                        f"        int32_t s = {self.read('int32_t', f'{n}_b{index}[j]')};",
                        f"        s = {n}_dot8(s, w, {source}, {layer.n_in}u);" if not self.storage.plain else
                        f"        for (i = 0u; i < {layer.n_in}u; ++i) s += (int32_t){self.read('int8_t', 'w[i]')} * "
                        f"(int32_t){source}[i];",
                        f"        {store('j', 's')}", "    }"]
            full = layer.units - layer.units % 4
            dsp = [f"    for (j = 0u; j < {full}u; j += 4u) {{",
                   f"        for (k = 0u; k < 4u; ++k) s4[k] = {n}_b{index}[j + k];",
                   f"        {n}_dot4({n}_w{index} + j * {layer.n_in}u, {layer.n_in}u, {source}, s4);",
                   f"        for (k = 0u; k < 4u; ++k) {store('j + k', 's4[k]')}", "    }"] if full else ["    j = 0u;"]
            if full < layer.units:
                dot = f"{n}_dot1({n}_w{index} + j * {layer.n_in}u, {layer.n_in}u, {source}, {n}_b{index}[j])"
                dsp += [f"    for (; j < {layer.units}u; ++j) {store('j', dot)}"]
            even = layer.units - layer.units % 2
            pairs = [f"    for (j = 0u; j < {even}u; j += 2u) {{",
                     f"        s4[0] = {n}_b{index}[j]; s4[1] = {n}_b{index}[j + 1u];",
                     f"        {n}_dot2({n}_w{index} + j * {layer.n_in}u, {layer.n_in}u, {source}, s4);",
                     f"        for (k = 0u; k < 2u; ++k) {store('j + k', 's4[k]')}", "    }"] if even else ["    j = 0u;"]
            if even < layer.units:
                pairs += [f"    for (; j < {layer.units}u; ++j) {{", *portable[1:]]
            return ["#if MLPC_INT8_DSP", *dsp, "#elif MLPC_INT8_PAIRS", *pairs, "#else", *portable, "#endif"]
        if isinstance(layer, QTable):
            return [f"    for (i = 0u; i < {layer.width}u; ++i) {target}[i] = "
                    f"{self.read('int8_t', f'{n}_t{index}[{source}[i] + 128]')};"]
        if isinstance(layer, QRelu):
            value = f"(int32_t){source}[i] - ({layer.input.zero_point})"
            return [f"    for (i = 0u; i < {layer.width}u; ++i) {target}[i] = {n}_clamp("
                    f"{self.requantize(value, str(layer.multiplier), layer.shift)} + ({layer.output.zero_point}), "
                    f"{layer.low}, {layer.high});"]
        return [f"    {n}_softmax({source}, {target}, ex, {layer.width}u, {layer.multiplier}, {layer.shift}u, "
                f"{layer.diff_min});"]

    def requantize(self, value: str, m: str, shift) -> str:
        """The requantisation call: ``shift`` an int (LiteRT's: left if > 0) or a per-channel
        array element (single rounding: 31 - shift stored; double: the shift)."""
        n = self.name
        if self.plan.rounding == "single":
            t = f"{31 - shift}u" if isinstance(shift, int) else shift
            return f"{n}_rq({value}, {m}, {t})"
        return f"(int64_t){n}_rq2({value}, {m}, {shift})"

    def wrapper(self) -> list[str]:
        p, n = self.plan, self.name
        scale_in, scale_out = FLOAT32.c_literal(p.input.scale), FLOAT32.c_literal(p.output.scale)
        zp_in, zp_out = p.input.zero_point, p.output.zero_point
        overflow = 127 if zp_in < 0 else -128
        return [f"/* LiteRT's QUANTIZE: x / {scale_in} in float, rounded half away from zero, + {zp_in},",
                "   saturated.  NaN and quotients at or beyond int32 give what LiteRT's x86 build gives: its cast",
                f"   to int32 returns INT32_MIN there, which {zp_in} then takes to {overflow}. */",
                f"static int8_t {n}_quantize(float x)", "{",
                f"    const float r = x / {scale_in};",
                "    int32_t q;", "    float f;",
                f"    if (!(r > -2147483648.0f && r < 2147483648.0f)) return {overflow};",
                "    if (r >= 512.0f) q = 512;", "    else if (r <= -512.0f) q = -512;",
                "    else {", "        q = (int32_t)r; /* toward zero, exact: |r| < 512 */",
                "        f = r - (float)q;", "        if (f >= 0.5f) ++q;", "        else if (f <= -0.5f) --q;", "    }",
                f"    q += {zp_in};",
                "    return (int8_t)(q > 127 ? 127 : q < -128 ? -128 : q);", "}", "",
                f"void {n}(const float *x, float *y)", "{",
                f"    int8_t q[{p.n_inputs}], r[{p.n_outputs}];", "    uint32_t i;",
                f"    for (i = 0u; i < {p.n_inputs}u; ++i) q[i] = {n}_quantize(x[i]);",
                f"    {n}_int8(q, r);",
                f"    for (i = 0u; i < {p.n_outputs}u; ++i) y[i] = {scale_out} * (float)((int32_t)r[i] - ({zp_out}));",
                "}", ""]


#: The DSP path (SMLAD/SXTB16 through ACLE) where the core has the DSP extension (Cortex-M4/M7/M33...).
#: Other ARM cores (M0+, M3): two rows share each input load (gcc keeps Thumb-1 loops short that way).
DSP_INCLUDES = ("#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && defined(__ARM_FEATURE_SIMD32)",
                "#define MLPC_INT8_DSP 1", "#define MLPC_INT8_PAIRS 0", "#include <arm_acle.h>", "#include <string.h>",
                "#elif defined(__arm__)", "#define MLPC_INT8_DSP 0", "#define MLPC_INT8_PAIRS 1", "#else",
                "#define MLPC_INT8_DSP 0", "#define MLPC_INT8_PAIRS 0", "#endif")


def _describe(layer) -> str:
    if isinstance(layer, QDense):
        per = "per-channel" if len(set(layer.multipliers.tolist())) > 1 else "per-tensor"
        return f"FULLY_CONNECTED {layer.n_in}->{layer.units} ({per}, fused {layer.fused})"
    if isinstance(layer, QTable):
        return f"{layer.kind.upper()} (table)"
    if isinstance(layer, QRelu):
        return layer.kind.upper()
    return "SOFTMAX (gemmlowp fixed point)"


#: (source, header): what the C registry calls for this printer's dtypes.
EMITTERS = (emit_c_int8, emit_c_int8_header)
