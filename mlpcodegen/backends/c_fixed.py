"""C99 printer of a Q15 fixed-point plan (:mod:`mlpcodegen.core.fixed`): for cores without an FPU.

The file defines

* ``void NAME_q15(const int16_t *x, int16_t *y)``: integer only (no float, no libm, no
  division): int16 codes in, int16 codes out, with the formats as macros in the header
  (``x = code * 2**-NAME_Q15_IN_FRAC``, ``y = code * 2**-NAME_Q15_OUT_FRAC``);
* ``void NAME(const float *x, float *y)``: the float wrapper (round to nearest, saturate,
  call ``NAME_q15``, scale back; softmax's normalisation for a softmax network);
* for a softmax network ``uint32_t NAME_q15_argmax(const int16_t *x)``: the class.

No undefined behaviour whatever the inputs: sums are bounded for any int16 codes (the plan
picks int32 or int64 from the worst case), and the rounding shift ``floor((a + 2**(s-1)) /
2**s)`` is computed on the value offset by 2**31 (or 2**63) in an unsigned type, so no
negative value is ever shifted and no signed operation overflows; magnitudes are taken as
unsigned (``0u - (uint32_t)z``).  Every shift count is below the shifted type's width: the
plan keeps each layer's shift within 1..31 (int32) or 1..63 (int64) and the tanh argument's
format within Q0..Q51 (int32: ``m >> (f - 20)``, ``m << (20 - f)``), coarsening the weights'
format when tiny weights on a tiny domain would need more (:class:`mlpcodegen.core.fixed.FixedLayer`
refuses a layer that breaks it).

On a core with the DSP extension (Cortex-M4/M7: ``__ARM_FEATURE_DSP``) the dense layers' sums
go through ACLE's ``__smlad`` (int32 sums) and ``__smlald`` (int64), two products an
instruction; the sums are exact integers, so the outputs are the portable loops' bit for bit
(tests/test_fixed.py runs it on qemu M4F; bench/q15_dsp.py measures it against float32).

With flash tables (AVR: ``storage="progmem"``) and ReLU hidden layers, the layers after the
first multiply their nonzero inputs only: a ReLU's zero code adds nothing, and every partial
sum is within the plan's bound for any codes, so the sums are the same integers.  The nonzero
outputs are packed as (byte offset, code) and a row's sum walks them in inline assembly
(int32 sums, or int64 ones added in 40 bits and widened once a row); a ReLU's sum is shifted
as unsigned.  tests/test_cores.py compares the outputs on simavr with fixed.run_codes.
"""
from __future__ import annotations

import numpy as np

from ..core.fixed import TABLE_POSITION, FixedLayer, FixedPlan, describe_bound, plan, tanh_table
from ..core.ir import Network
from ..core.numeric import FLOAT32
from ._text import HEADER, Lines, quote_name
from .c import _note_lines
from .c_language import check_name
from .c_storage import Storage
from .c_storage import storage as table_storage

DTYPES = ("q15",)
#: Names derived from NAME (checked against the C library's reserved names).
SUFFIXES = ("_q15", "_q15_argmax", "_shr32", "_shr64", "_sat", "_sat64", "_clip32", "_tanh", "_T", "_quantise",
            "_batch", "_dot", "_dotc", "_dotcw", "_dotcws", "_pack", "_ld", "_dot4", "_dot1", "_dot2w", "_dot1w") + \
    tuple(f"_{kind}{i}" for kind in "wb" for i in range(1, 10))
#: Bytes added to the stated stack for saved registers, alignment and spills (checked
#: with -fstack-usage by tests/test_fixed.py).
FRAME_OVERHEAD = 160
#: Bytes added for the DSP path (Cortex-M4/M7): four int64 sums and the frame of a dot helper.
DSP_FRAMES = 96
#: The DSP path (SMLAD/SMLALD through ACLE) where the core has the DSP extension (Cortex-M4/M7/M33...);
#: a build may define MLPC_Q15_DSP to 0 to get the portable loops (bench/q15_dsp.py measures both).
DSP_INCLUDES = ("#ifndef MLPC_Q15_DSP",
                "#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && defined(__ARM_FEATURE_SIMD32)",
                "#define MLPC_Q15_DSP 1", "#else", "#define MLPC_Q15_DSP 0", "#endif", "#endif",
                "#if MLPC_Q15_DSP", "#include <arm_acle.h>", "#include <string.h>", "#endif")


def checked_name(name: str) -> str:
    return check_name(name, SUFFIXES)


def signature(net: Network, dtype: str, name: str, profile: str = "desktop") -> list[str]:
    """The prototypes (without ``;``) of the float API cffi calls, then the integer one
    (a softmax network's logits are int32 codes)."""
    out = "int32_t" if net.layers[-1].activation.name == "softmax" else "int16_t"
    return [f"void {name}(const float *x, float *y)", f"void {name}_q15(const int16_t *x, {out} *y)"]


#: Flash-table targets (AVR), packed inputs with int64 sums: bytes the 64-bit sums and their shifts
#: spill beyond the storage's frame overhead (cls 16-64-64-10: a 379-byte frame for 320 of buffers).
WIDE_SPILLS = 40


def stack_bytes(net: Network, dtype: str, unroll: str = "auto", storage: str = "plain",
                domain: object = None) -> dict[str, int]:
    """Bound of the stack of ``NAME_q15`` (two int16 buffers as wide as the widest layer)
    and of the float wrapper (its codes, then NAME_q15): ``one`` and ``batch``.  A
    storage's targets may state their own frame overhead (AVR: tests/test_cores.py).  On those
    targets a network with ReLU hidden layers packs their nonzero outputs (one int16 buffer and
    3 bytes an input), and its plan on ``domain`` says whether int64 sums spill (no domain: they may)."""
    overhead = table_storage(storage).frame_overhead or FRAME_OVERHEAD
    width = max([net.n_inputs] + [layer.n_out for layer in net.layers])
    buffers = 2 * 2 * width
    if sparse_shape(net, table_storage(storage)):
        hidden, packed = packed_widths(net)
        wide = domain is None or any(layer.acc_bits == 64 for layer in plan(net, domain).layers)
        buffers = 2 * hidden + 3 * packed + (WIDE_SPILLS if wide else 0)
    q15 = buffers + overhead + (DSP_FRAMES if table_storage(storage).plain else 0)
    one = q15 + 2 * (net.n_inputs + net.n_outputs) + overhead
    return {"q15": q15, "one": one, "batch": one + overhead}


#: Activations whose outputs are >= 0 with exact zeros (the clamp at 0 before the shift).
_ZERO_FLOOR = ("relu", "relu6")
#: Packed inputs address a row's weights by a byte offset (uint8): at most this many inputs.
PACKED_INPUTS = 127


def sparse_shape(net: Network, storage: Storage) -> bool:
    """Whether a flash-table file (AVR) packs the nonzero outputs of its hidden layers: every
    hidden activation a ReLU (outputs >= 0, often exactly 0) and every later layer narrow
    enough for a byte offset.  The stack is stated from this (the plan may still fall back to
    the unpacked loops, which need less: int64 sums)."""
    hidden = net.layers[:-1]
    return (not storage.plain and bool(hidden) and all(layer.activation.name in _ZERO_FLOOR for layer in hidden)
            and all(layer.n_in <= PACKED_INPUTS for layer in net.layers[1:]))


def packed_widths(net: Network) -> tuple[int, int]:
    """(int16 outputs of the widest hidden layer, entries of the packed buffer: those, or the
    inputs when x may be packed)."""
    hidden = max(layer.n_out for layer in net.layers[:-1])
    return hidden, max(hidden, net.n_inputs if net.n_inputs <= PACKED_INPUTS else 0)


def emit_c_fixed(net: Network, *, dtype: str = "q15", name: str = "mlp", domain: object = None,
                 storage: str = "plain", **ignored: object) -> str:
    """The C of ``net`` in Q15 for inputs in ``domain`` (default [-1, 1] each).  The float
    C's options (unroll, math, profile, optimize) are accepted and mean nothing here: one
    loop per layer is both the smallest and, on a scalar core, about the fastest form (with a
    DSP branch for Cortex-M4/M7 where the tables are plain arrays)."""
    return _Printer(net, plan(net, domain), checked_name(name), table_storage(storage), domain).source()


def emit_c_fixed_header(net: Network, *, dtype: str = "q15", name: str = "mlp", domain: object = None,
                        storage: str = "plain", **ignored: object) -> str:
    return _Printer(net, plan(net, domain), checked_name(name), table_storage(storage), domain).header()


def _int_lines(values: np.ndarray, per_line: int = 16, wide: bool = False) -> list[str]:
    text = [f"INT64_C({int(v)})" if wide else str(int(v)) for v in values.reshape(-1)]
    return ["    " + ", ".join(text[i:i + per_line]) + "," for i in range(0, len(text), per_line)]


class _Printer:
    def __init__(self, net: Network, fixed: FixedPlan, name: str, storage: Storage = table_storage("plain"),
                 domain: object = None) -> None:
        self.net, self.plan, self.name, self.storage, self.domain = net, fixed, name, storage, domain
        self.out_type = "int32_t" if fixed.softmax else "int16_t"
        # AVR, ReLU hidden layers: the layers after the first read their nonzero inputs only
        self.sparse = sparse_shape(net, storage) and all(
            layer.low is not None and layer.low >= 0 and layer.out_bits == 16 for layer in fixed.layers[:-1])

    def comment(self) -> list[str]:
        p, n = self.plan, self.name
        stack = stack_bytes(self.net, "q15", storage=self.storage.name, domain=self.domain)
        return [f"/* {HEADER}",
                f" * network {quote_name(self.net.name)}: {self.net.describe()}, Q15 fixed point",
                *_note_lines(self.net),
                f" * {n}_q15(x, y): integer only (no float, no libm, no division): int16 codes, "
                f"x[{self.net.n_inputs}] = round(x * 2^{n}_Q15_IN_FRAC) -> y[{p.n_outputs}], "
                f"y = code * 2^-{n}_Q15_OUT_FRAC",
                f" * {n}(x, y): float in and out (rounds, saturates, calls {n}_q15, scales back)",
                *(f" * {line}" for line in describe_bound(p)),  # its names quoted
                " * Outside the domain values saturate (no overflow, no undefined behaviour); the bound holds inside.",
                f" * Stack, at most (bytes): {n}_q15 {stack['q15']}, {n} {stack['one']}.",
                " * In place: y may be x.  Reentrant: no mutable globals. */"]

    def header(self) -> str:
        p, n = self.plan, self.name
        guard = f"MLPCODEGEN_{n}_H"
        lines = Lines().add(*self.comment(), f"#ifndef {guard}", f"#define {guard}", "", "#include <stdint.h>", "")
        lines.add(f"#define {n}_Q15_INPUTS {self.net.n_inputs}u", f"#define {n}_Q15_OUTPUTS {p.n_outputs}u",
                  f"#define {n}_Q15_IN_FRAC {p.in_frac}", f"#define {n}_Q15_OUT_FRAC {p.out_frac}",
                  f"#define {n}_Q15_ERROR_BOUND {float(p.bound.max())!r} /* max abs error on the domain */", "")
        lines.add("#ifdef __cplusplus", 'extern "C" {', "#endif", "")
        lines.add(*(proto + ";" for proto in self.prototypes()))
        lines.add("", "#ifdef __cplusplus", "}", "#endif", "", f"#endif /* {guard} */")
        return str(lines)

    def prototypes(self) -> list[str]:
        extra = [f"uint32_t {self.name}_q15_argmax(const int16_t *x)"] if self.plan.softmax else []
        return signature(self.net, "q15", self.name) + extra

    def source(self) -> str:
        lines = Lines().add(*self.comment(), "#include <stddef.h>", "#include <stdint.h>")
        if self.dsp_kinds():
            lines.add(*DSP_INCLUDES)
        if self.plan.softmax:
            lines.add("#include <math.h>")
        lines.add("", *self.storage.macros(self.name, self.stored_types()))
        for proto in self.prototypes():
            lines.add(proto + ";")
        lines.add("")
        for index, layer in enumerate(self.plan.layers, 1):
            lines.add(*self.arrays(index, layer))
        lines.add(*self.helpers())
        lines.add(*self.q15_function(), *self.wrapper(), *self.argmax())
        return str(lines)

    def stored_types(self) -> tuple[str, ...]:
        """The C types of the tables (their read macros in flash storage)."""
        wide = [np.abs(layer.bias).max(initial=0) >= 2 ** 31 for layer in self.plan.layers]
        return ("int16_t",) + (("int32_t",) if not all(wide) else ()) + (("int64_t",) if any(wide) else ())

    def read(self, c_type: str, lvalue: str) -> str:
        return self.storage.read(self.name, c_type, lvalue)

    def arrays(self, index: int, layer: FixedLayer) -> list[str]:
        """The weights, and the biases as int32 when they fit (an int64 sum starts from them)."""
        n, wide = self.name, bool(np.abs(layer.bias).max(initial=0) >= 2 ** 31)
        after = self.storage.after_declarator(n)
        return [f"/* layer {index} {quote_name(layer.name)}: {layer.kind}, weights Q{layer.weight_frac}, "
                f"int{layer.acc_bits} sums in Q{layer.acc_frac}, outputs Q{layer.out_frac} */",
                f"static const int16_t {n}_w{index}[{layer.weights.size}]{after} = {{", *_int_lines(layer.weights),
                "};",
                f"static const int{64 if wide else 32}_t {n}_b{index}[{layer.units}]{after} = {{",
                *_int_lines(layer.bias, 8, wide), "};", ""]

    def needed(self) -> set[str]:
        """The helpers the layers call (an unused static function is a warning)."""
        names: set[str] = set()
        for layer in self.plan.layers:
            wide = layer.acc_bits == 64
            if layer.kind in ("tanh", "sigmoid"):
                frac = layer.table_frac
                names |= {"tanh"} | ({"clip32"} if wide else set()) | (
                    {"shr64"} if wide and frac > TABLE_POSITION else set())
            elif self.nonnegative(layer):
                continue  # shifted inline as unsigned
            elif layer.out_bits == 32:
                names |= ({"clip32"} if wide else set()) | ({f"shr{layer.acc_bits}"} if layer.shift else set())
            else:
                names |= {"sat64" if wide else "sat"} | ({f"shr{layer.acc_bits}"} if layer.shift else set())
        return names

    def helpers(self) -> list[str]:
        n, needed = self.name, self.needed()
        parts = {
            "sat": ["/* Saturated to int16: only values outside the domain reach the limits. */",
                    f"static int32_t {n}_sat(int32_t v)", "{",
                    "    return v > 32767 ? 32767 : v < -32768 ? -32768 : v;", "}", ""],
            "shr32": ["/* floor((a + 2^(s-1)) / 2^s) for 1 <= s <= 31 and any a: u = a + 2^31 (uint32, no wrap",
                      "   past 2^32), so no negative value is shifted; q = floor(u / 2^(s-1)): floor(u / 2^s) is",
                      "   q >> 1 and the bit below is q & 1 (one variable shift: AVR shifts a bit a step), which",
                      "   rounds to nearest (ties up), and 2^31 / 2^s is taken back off (nothing overflows). */",
                      f"static int32_t {n}_shr32(int32_t a, uint32_t s)", "{",
                      "    const uint32_t q = ((uint32_t)a + 0x80000000u) >> (s - 1u);",
                      "    return (int32_t)(q >> 1) - (int32_t)(0x80000000u >> s) + (int32_t)(q & 1u);",
                      "}", ""],
            "shr64": ["/* As _shr32 for int64 sums (1 <= s <= 63). */",
                      f"static int64_t {n}_shr64(int64_t a, uint32_t s)", "{",
                      "    const uint64_t u = (uint64_t)a + UINT64_C(0x8000000000000000);",
                      "    return (int64_t)(u >> s) - (int64_t)(UINT64_C(0x8000000000000000) >> s) +",
                      "           (int64_t)((u >> (s - 1u)) & 1u);", "}", ""],
            "sat64": [f"static int32_t {n}_sat64(int64_t v)", "{",
                      "    return v > 32767 ? 32767 : v < -32768 ? -32768 : (int32_t)v;", "}", ""],
            "clip32": [f"static int32_t {n}_clip32(int64_t v)", "{",
                       "    return v > 2147483647 ? 2147483647 : v < -2147483647 ? -2147483647 : (int32_t)v;", "}",
                       ""],
        }
        if not self.storage.plain:  # AVR shifts a bit a step: whole bytes first (register moves), each kept
            # apart by an empty asm so that gcc does not merge the shifts back into one loop of single steps
            parts["shr32"][5:7] = ["{", "    uint32_t q = (uint32_t)a + 0x80000000u, t = s - 1u;",
                                   "#if defined(__AVR__) && defined(__GNUC__)",
                                   '    if (t >= 16u) { q >>= 16; __asm__("" : "+r"(q)); t -= 16u; }',
                                   '    if (t >= 8u) { q >>= 8; __asm__("" : "+r"(q)); t -= 8u; }',
                                   "#endif", "    q >>= t;"]
        out = [line for key in ("sat", "shr32", "shr64", "sat64", "clip32") if key in needed for line in parts[key]]
        return out + (self.tanh_helper() if "tanh" in needed else []) + self.mac_helper() + self.packed_helpers() + \
            self.dsp_helpers()

    def uses_dsp(self, layer: FixedLayer) -> bool:
        """Whether the layer has a DSP branch (plain tables: ARM; AVR keeps its own)."""
        return self.storage.plain and layer.n_in >= 2

    @staticmethod
    def rows(layer: FixedLayer) -> int:
        """Rows per DSP group: four int32 sums or two int64 ones stay in registers (r0-r12)."""
        return 4 if layer.acc_bits == 32 else 2

    def dsp_kinds(self) -> set[tuple[int, int]]:
        """(accumulator bits, rows at once) of the DSP helpers the layers call."""
        kinds: set[tuple[int, int]] = set()
        for layer in self.plan.layers:
            if self.uses_dsp(layer):
                if layer.units >= self.rows(layer):
                    kinds.add((layer.acc_bits, self.rows(layer)))
                if layer.units % self.rows(layer):
                    kinds.add((layer.acc_bits, 1))
        return kinds

    def dsp_helpers(self) -> list[str]:
        """Cortex-M4/M7 (DSP extension): two 16 x 16 products per SMLAD (int32 sums) or SMLALD
        (int64 sums), the int16 pairs loaded as words (two per step); the rows of a group share
        each input word.  The sums are exact integers either way (an int32 layer's worst case
        is below 2^31 for any codes, and SMLAD's sum wraps modulo 2^32 like two's complement),
        so the order does not change a bit: the outputs are the portable loop's."""
        kinds, n = self.dsp_kinds(), self.name
        if not kinds:
            return []
        out = ["#if MLPC_Q15_DSP",
               f"static int32_t {n}_ld(const int16_t *p) /* two int16, any alignment (M4/M7 load unaligned) */",
               "{", "    int32_t v;", "    memcpy(&v, p, sizeof v);", "    return v;", "}", ""]
        for bits, rows in sorted(kinds):
            out += self.dot_helper(bits, rows)
        return out + ["#endif", ""]

    def dot_helper(self, bits: int, rows: int) -> list[str]:
        """NAME_dotR (int32) / NAME_dotRw (int64): s[r] += sum(w[r * n + i] * x[i]) for r < R."""
        n, t = self.name, f"int{bits}_t"
        op, name = ("__smlad" if bits == 32 else "__smlald"), f"{n}_dot{rows}{'' if bits == 32 else 'w'}"
        acc = [f"a{r}" for r in range(rows)]
        row = ["w"] + [f"w{r}" for r in range(1, rows)]

        def step(at: str, v: str) -> list[str]:
            return [f"        {a} = {op}({n}_ld({p}{at}), {v}, {a});" for a, p in zip(acc, row)]
        walk = "        x += 4; " + " ".join(f"{p} += 4;" for p in row)
        return [f"/* s[r] += sum(w[r * n + i] * x[i]) for rows r < {rows}, i < n (int{bits} sums); pointers that",
                "   walk and a count down: the sums, the pointers and the words stay in registers */",
                "#if defined(__GNUC__) /* one loop, called per group: inlined, gcc spills the sums */",
                "__attribute__((noinline))", "#endif",
                f"static void {name}(const int16_t *w, uint32_t n, const int16_t *x, {t} *s)", "{",
                f"    {t} " + ", ".join(f"{a} = s[{r}]" for r, a in enumerate(acc)) + ";",
                *([f"    const int16_t " + ", ".join(f"*{row[r]} = {row[r - 1]} + n" for r in range(1, rows)) + ";"]
                  if rows > 1 else []),
                "    uint32_t k;", "    for (k = n >> 2; k != 0u; --k) {",
                f"        const int32_t v = {n}_ld(x), u = {n}_ld(x + 2);",
                *step("", "v"), *step(" + 2", "u"), walk, "    }", "    if (n & 2u) {",
                f"        const int32_t v = {n}_ld(x);", *step("", "v"), "        x += 2; " +
                " ".join(f"{p} += 2;" for p in row), "    }",
                "    if (n & 1u) {", "        const int32_t v = *x;",
                *(f"        {a} += (int32_t)*{p} * v;" for a, p in zip(acc, row)), "    }",
                "    " + " ".join(f"s[{r}] = {a};" for r, a in enumerate(acc)), "}", ""]

    def mac_helper(self) -> list[str]:
        """Files for flash-table targets (AVR): the int32 multiply-add inline with the hardware
        multiplier (avr-gcc calls __mulhisi3 for it: about half the cycles of sine 1-16-16-1)."""
        if not any(self.uses_dot(layer) for layer in self.plan.layers):
            return []
        n = self.name
        return ["/* s + w[0] p[0] + ... + w[n-1] p[n-1], n >= 1, *wp stepped past the weights read.  On AVR with",
                "   MUL: the weights read from flash (lpm Z+), the inputs from RAM (ld X+) and the signed 16 x 16",
                "   -> 32 product of Atmel's AVR201, inline (avr-gcc calls __mulhisi3 for it). */",
                "#if defined(__AVR_HAVE_MUL__) && defined(__GNUC__)",
                f"__attribute__((always_inline)) static inline int32_t {n}_dot(int32_t s, const int16_t **wp, "
                "const int16_t *p, uint16_t n)", "{",
                "    const int16_t *w = *wp;", "    int16_t a, b;", "    do {",
                '        __asm__("lpm %A3, Z+\\n\\tlpm %B3, Z+\\n\\tld %A4, X+\\n\\tld %B4, X+\\n\\t"',
                '                "muls %B3, %B4\\n\\tadd %C0, r0\\n\\tadc %D0, r1\\n\\t"',
                '                "mul %A3, %A4\\n\\tadd %A0, r0\\n\\tadc %B0, r1\\n\\tadc %C0, %5\\n\\tadc %D0, %5\\n\\t"',
                '                "mulsu %B3, %A4\\n\\tsbc %D0, %5\\n\\tadd %B0, r0\\n\\tadc %C0, r1\\n\\tadc %D0, %5\\n\\t"',
                '                "mulsu %B4, %A3\\n\\tsbc %D0, %5\\n\\tadd %B0, r0\\n\\tadc %C0, r1\\n\\tadc %D0, %5\\n\\t"',
                '                "clr __zero_reg__"',
                '                : "+r"(s), "+z"(w), "+x"(p), "=&a"(a), "=&a"(b) : "r"((uint8_t)0) : "r0", "memory");',
                "    } while (--n);", "    *wp = w;", "    return s;", "}", "#else",
                f"static int32_t {n}_dot(int32_t s, const int16_t **wp, const int16_t *p, uint16_t n)", "{",
                "    const int16_t *w = *wp;", "    do {", "        s += (int32_t)*w++ * (int32_t)*p++;",
                "    } while (--n);", "    *wp = w;", "    return s;", "}", "#endif", ""]

    def packed_kinds(self) -> set[tuple[int, bool]]:
        """(sum bits, signed inputs) of the packed dot products the layers call: a later layer's
        inputs are a ReLU's (>= 0), the first layer's packed inputs (int64 sums only) any codes."""
        if not self.sparse:
            return set()
        kinds = {(layer.acc_bits, False) for layer in self.plan.layers[1:]}
        return kinds | ({(64, True)} if self.packs_inputs() else set())

    def packs_inputs(self) -> bool:
        """Whether layer 1 packs x too: int64 sums (the C's int64 loop costs a library multiply and
        a 64-bit add a product on AVR) and inputs few enough for a byte offset."""
        first = self.plan.layers[0]
        return self.sparse and first.acc_bits == 64 and first.n_in <= PACKED_INPUTS

    def packed_helpers(self) -> list[str]:
        """AVR, ReLU hidden layers: NAME_pack lists a layer's nonzero outputs (a ReLU's zeros are
        exact: their products add nothing, and every partial sum is within the plan's bound for
        any codes), NAME_dotc* multiply a row by them only (52% and 70% of the sine's hidden
        activations are zero on random inputs).  An entry is 3 bytes: the input's byte offset in
        a row of weights, then its int16 code."""
        kinds = self.packed_kinds()
        if not kinds:
            return []
        out = ["/* c[3k] = 2 i, c[3k + 1], c[3k + 2] = h[i] (little-endian) for each h[i] != 0; the count. */",
               f"static uint8_t {self.name}_pack(uint8_t *c, const int16_t *h, uint8_t n)", "{",
               "    uint8_t i, k = 0u;", "    for (i = 0u; i < n; ++i) {", "        const uint16_t v = (uint16_t)h[i];",
               "        if (v != 0u) {",
               "            c[0] = (uint8_t)(2u * i); c[1] = (uint8_t)v; c[2] = (uint8_t)(v >> 8);",
               "            c += 3; ++k;", "        }", "    }", "    return k;", "}", ""]
        out += ["#if defined(__AVR_HAVE_MUL__) && defined(__GNUC__)"]
        for bits, signed in sorted(kinds):
            out += self.packed_asm(bits, signed)
        out += ["#else"]
        for bits, signed in sorted(kinds):
            out += self.packed_portable(bits, signed)
        return out + ["#endif", ""]

    @staticmethod
    def packed_name(bits: int, signed: bool) -> str:
        return "_dotc" + ("w" if bits == 64 else "") + ("s" if signed else "")

    def packed_portable(self, bits: int, signed: bool) -> list[str]:
        n, t = self.name, f"int{bits}_t"
        ld = self.read("int16_t", "w[c[0] >> 1]")
        code = "((int32_t)c[1] | (int32_t)(c[2] & 0x7fu) << 8) - (int32_t)(c[2] & 0x80u) * 256" if signed else \
            "((int32_t)c[1] | (int32_t)c[2] << 8)"
        return [f"static {t} {n}{self.packed_name(bits, signed)}({t} s, const int16_t *w, const uint8_t *c, uint8_t n)",
                "{", "    do {", f"        s += ({t})((int32_t){ld} * ({code}));", "        c += 3;",
                "    } while (--n);", "    return s;", "}", ""]

    def packed_asm(self, bits: int, signed: bool) -> list[str]:
        """One loop in assembly: the row's weight read at its offset (lpm), the code (ld X+), the
        16 x 16 product in four MULs added into the sum (Atmel AVR201's signed product; inputs
        >= 0: their high byte is unsigned, two corrections fewer).  int64 sums: the products
        are added into 40 bits (E: the fifth byte; 127 products below 2^30 stay below 2^37),
        widened once a row."""
        n, wide = self.name, bits == 64

        def carry(first: str) -> str:  # the carry of an add at byte `first` up through the top byte
            order = ("%C0", "%D0", "%[e]")
            return "".join(f"adc {reg}, %[zero]\\n\\t" for reg in order[order.index(first):] if wide or reg != "%[e]")

        def signed_ext(at: str) -> str:  # the sign of a signed product (carry flag) into the bytes from `at` up
            regs = ("%D0", "%[e]") if at == "%D0" else ("%[e]",)
            return "".join(f"sbc {reg}, %[zero]\\n\\t" for reg in regs if wide or reg != "%[e]")
        steps = ["mul %[wl], %[xl]\\n\\tadd %A0, r0\\n\\tadc %B0, r1\\n\\t" + carry("%C0"),
                 ("muls" if signed else "mulsu") + " %[wh], %[xh]\\n\\t" + (signed_ext("%[e]") if wide else "") +
                 "add %C0, r0\\n\\tadc %D0, r1\\n\\t" + (carry("%[e]") if wide else ""),
                 "mulsu %[wh], %[xl]\\n\\t" + signed_ext("%D0") + "add %B0, r0\\n\\tadc %C0, r1\\n\\t" + carry("%D0"),
                 ("mulsu %[xh], %[wl]\\n\\t" + signed_ext("%D0") if signed else "mul %[xh], %[wl]\\n\\t") +
                 "add %B0, r0\\n\\tadc %C0, r1\\n\\t" + carry("%D0")]
        asm = ['"1:\\n\\tld %[o], X+\\n\\tmovw %[z], %[w]\\n\\tadd %A[z], %[o]\\n\\tadc %B[z], %[zero]\\n\\t"',
               '"lpm %[wl], Z+\\n\\tlpm %[wh], Z\\n\\tld %[xl], X+\\n\\tld %[xh], X+\\n\\t"',
               *(f'"{step}"' for step in steps), '"dec %[n]\\n\\tbrne 1b\\n\\tclr __zero_reg__"']
        t = f"int{bits}_t"
        sum_in = "lo" if wide else "s"
        # early-clobber in/out operands: no input shares their registers (gcc may give the zero input
        # the register of an in/out operand that also starts at 0: the 40-bit sum's lo and e)
        outputs = (f'"+&r"({sum_in}), ' + ('[e] "+&r"(e), ' if wide else "") +
                   '"+&x"(c), [n] "+&r"(n), [z] "=&z"(z), [o] "=&r"(o),')
        regs = (f'[wl] "=&{"a" if signed else "r"}"(wl), [wh] "=&a"(wh), [xl] "=&a"(xl), [xh] "=&a"(xh)')
        head = [f"__attribute__((always_inline)) static inline {t} {n}{self.packed_name(bits, signed)}({t} s, "
                "const int16_t *w, const uint8_t *c, uint8_t n)", "{", "    const int16_t *z;",
                "    uint8_t o, wl, wh, xl, xh;"] + (["    uint32_t lo = 0u;", "    uint8_t e = 0u;"] if wide else [])
        body = ["    __asm__(" + asm[0], *("            " + line for line in asm[1:]),
                f"            : {outputs}", f"              {regs}",
                '            : [w] "r"(w), [zero] "r"((uint8_t)0) : "r0", "memory");']
        # the 40-bit sum: e the signed fifth byte (its value: e - 256 when bit 7 is set)
        tail = ["    return s + ((int64_t)e - (int64_t)((e & 0x80u) << 1)) * INT64_C(4294967296) + (int64_t)lo;"] \
            if wide else ["    return s;"]
        return head + body + tail + ["}", ""]

    def tanh_helper(self) -> list[str]:
        n = self.name
        low, high = self.read("int16_t", f"{n}_T[i]"), self.read("int16_t", f"{n}_T[i + 1u]")
        return ["/* tanh(k / 32) in Q15 for k = 0..256 (at most 32767) */",
                f"static const int16_t {n}_T[257]{self.storage.after_declarator(n)} = {{", *_int_lines(tanh_table()),
                "};", "",
                f"/* tanh(z) in Q15 for z in Q(f), |z| < 2^31, f <= {TABLE_POSITION + 31} (every shift below 32):",
                f"   |z| in Q{TABLE_POSITION} indexes the table (15 bits of interpolation weight); beyond 8 the",
                "   table's last value.  Error: see the file comment. */",
                f"static int32_t {n}_tanh(int32_t z, uint32_t f)", "{",
                "    const uint32_t m = z < 0 ? 0u - (uint32_t)z : (uint32_t)z;",
                "    int32_t t = 32767;",
                "    if (f > 28u || m < (UINT32_C(8) << f)) { /* 8u << f: 16 bits wide on AVR */",
                f"        const uint32_t p = f >= {TABLE_POSITION}u ? m >> (f - {TABLE_POSITION}u) "
                f": m << ({TABLE_POSITION}u - f);",
                "        const uint32_t i = p >> 15, r = p & 0x7fffu;",
                f"        t = {low} + (int32_t)(((uint32_t)({high} - {low}) * r + 0x4000u) >> 15);",
                "    }", "    return z < 0 ? -t : t;", "}", ""]

    def sparse_function(self) -> list[str]:
        """Layer 1 as the unpacked loops into h (int64 sums: x packed too); then, per later layer,
        h packed into c (the count in k) and each row's sum over the packed inputs only; the last
        layer writes y (x is read by layer 1 only: y may be x)."""
        layers, n = self.plan.layers, self.name
        hidden, packed = packed_widths(self.net)
        body = [] if self.packs_inputs() else self.layer_loop(1, layers[0], "x", "h")
        for index, layer in enumerate(layers, 1):
            if index == 1 and not self.packs_inputs():
                continue
            target = "h" if index < len(layers) else "y"
            store = "r" if layer.out_bits == 32 else "(int16_t)r"
            t = f"int{layer.acc_bits}_t"
            bias = "int64_t" if np.abs(layer.bias).max(initial=0) >= 2 ** 31 else "int32_t"  # as arrays() declares it
            dot = n + self.packed_name(layer.acc_bits, index == 1)
            source, count = ("x", self.net.n_inputs) if index == 1 else ("h", layers[index - 2].units)
            body += [f"    k = {n}_pack(c, {source}, {count}u);", "    {",
                     f"        const int16_t *w = {n}_w{index};",
                     f"        for (j = 0u; j < {layer.units}u; ++j, w += {layer.n_in}) {{",
                     f"            {t} s = {self.read(bias, f'{n}_b{index}[j]')};",
                     f"            if (k != 0u) s = {dot}(s, w, c, k);",
                     *("            " + line for line in self.activation(layer)),
                     f"            {target}[j] = {store};", "        }", "    }"]
        return [f"void {n}_q15(const int16_t *x, {self.out_type} *y)", "{",
                f"    int16_t h[{hidden}];", f"    uint8_t c[{3 * packed}], k;",
                "    uint32_t j;" if self.packs_inputs() or self.uses_dot(layers[0]) else "    uint32_t i, j;",
                *body, "}", ""]

    def q15_function(self) -> list[str]:
        if self.sparse:
            return self.sparse_function()
        layers, n = self.plan.layers, self.name
        width = self.plan.width
        buffers = len(layers) > 1 or layers[0].out_bits == 16  # one softmax layer writes y directly
        body, source = [], "x"
        for index, layer in enumerate(layers, 1):
            last = index == len(layers)
            # one int16 layer writes a buffer first: y may be x
            target = "y" if last and (len(layers) > 1 or layer.out_bits == 32) else f"h[{index % 2}]"
            loop = self.layer_loop(index, layer, source, target)
            body += ["#if MLPC_Q15_DSP", *self.dsp_loop(index, layer, source, target), "#else", *loop,
                     "#endif"] if self.uses_dsp(layer) else loop
            source = target
        if source != "y":
            body += [f"    for (i = 0u; i < {layers[0].units}u; ++i) y[i] = {source}[i];"]
        # i counts inputs, but for the dot helper's layers (AVR), and the final copy
        uses_i = source != "y" or not all(self.uses_dot(layer) for layer in layers)
        # the DSP branch counts the rows of a group with i (a layer with fewer rows: only j)
        dsp_i = source != "y" or any(layer.units >= self.rows(layer) if self.uses_dsp(layer) else not self.uses_dot(layer)
                                     for layer in layers)
        declare = ["    uint32_t i, j;" if uses_i else "    uint32_t j;"]
        if dsp_i != uses_i:
            declare = ["#if MLPC_Q15_DSP", "    uint32_t i, j;" if dsp_i else "    uint32_t j;", "#else", *declare,
                       "#endif"]
        return [f"void {n}_q15(const int16_t *x, {self.out_type} *y)", "{",
                *([f"    int16_t h[2][{width}];"] if buffers else []), *declare, *body, "}", ""]

    def uses_dot(self, layer: FixedLayer) -> bool:
        """Whether the layer's sums are NAME_dot's (flash-table targets, int32 sums)."""
        return not self.storage.plain and layer.acc_bits == 32

    def layer_loop(self, index: int, layer: FixedLayer, source: str, target: str) -> list[str]:
        n, t = self.name, f"int{layer.acc_bits}_t"
        bias = "int64_t" if np.abs(layer.bias).max(initial=0) >= 2 ** 31 else "int32_t"  # as arrays() declares it
        if self.uses_dot(layer):  # AVR: pointers that walk (lpm Z+, ld X+), a count down
            return ["    {", f"        const int16_t *w = {n}_w{index};",
                    f"        for (j = 0u; j < {layer.units}u; ++j) {{",
                    f"            const int16_t *p = {source};",
                    f"            {t} s = {self.read(bias, f'{n}_b{index}[j]')};",
                    f"            s = {n}_dot(s, &w, p, {layer.n_in}u);",
                    *("            " + line for line in self.activation(layer)),
                    f"            {target}[j] = {'r' if layer.out_bits == 32 else '(int16_t)r'};", "        }", "    }"]
        return [f"    for (j = 0u; j < {layer.units}u; ++j) {{",
                f"        const int16_t *w = {n}_w{index} + j * {layer.n_in}u;",
                f"        {t} s = {self.read(bias, f'{n}_b{index}[j]')};",
                f"        for (i = 0u; i < {layer.n_in}u; ++i) s += (int32_t){self.read('int16_t', 'w[i]')} * "
                f"(int32_t){source}[i];",
                *("        " + line for line in self.activation(layer)),
                f"        {target}[j] = {'r' if layer.out_bits == 32 else '(int16_t)r'};", "    }"]

    def dsp_loop(self, index: int, layer: FixedLayer, source: str, target: str) -> list[str]:
        """R rows per call of NAME_dotR (i counts the rows of a group), the rest one by one."""
        n, t, rows = self.name, f"int{layer.acc_bits}_t", self.rows(layer)
        suffix = "" if layer.acc_bits == 32 else "w"
        full, store = layer.units - layer.units % rows, "r" if layer.out_bits == 32 else "(int16_t)r"
        lines = []
        if full:
            lines = ["    {", f"        {t} sr[{rows}];", f"        for (j = 0u; j < {full}u; j += {rows}u) {{",
                     f"            for (i = 0u; i < {rows}u; ++i) sr[i] = {n}_b{index}[j + i];",
                     f"            {n}_dot{rows}{suffix}({n}_w{index} + j * {layer.n_in}u, {layer.n_in}u, {source}, sr);",
                     f"            for (i = 0u; i < {rows}u; ++i) {{", f"                {t} s = sr[i];",
                     *("                " + line for line in self.activation(layer)),
                     f"                {target}[j + i] = {store};", "            }", "        }", "    }"]
        if full < layer.units:
            one = f"int{layer.acc_bits}_t s = {n}_b{index}[j];"
            lines += [f"    for (j = {full}u; j < {layer.units}u; ++j) {{", f"        {one}",
                      f"        {n}_dot1{suffix}({n}_w{index} + j * {layer.n_in}u, {layer.n_in}u, {source}, &s);",
                      *("        " + line for line in self.activation(layer)),
                      f"        {target}[j] = {store};", "    }"]
        return lines

    def activation(self, layer: FixedLayer) -> list[str]:
        """``r`` (int32, in int16's range) from the sum ``s``."""
        n, wide = self.name, layer.acc_bits == 64
        if layer.kind in ("tanh", "sigmoid"):
            frac = layer.table_frac  # sigmoid: tanh(z / 2)
            z = "s"
            if wide:
                z = f"{n}_clip32({n}_shr64(s, {frac - TABLE_POSITION}u))" if frac > TABLE_POSITION else f"{n}_clip32(s)"
                frac = min(frac, TABLE_POSITION)
            call = f"{n}_tanh({z}, {frac}u)"
            return [f"const int32_t r = {call};" if layer.kind == "tanh" else
                    f"const int32_t r = ((int32_t)32768 + {call}) >> 1; /* (1 + tanh(z / 2)) / 2, >= 0 */"]
        lines = []
        suffix = "INT64_C({})" if wide else "{}"
        if layer.low is not None:
            lines.append(f"if (s < {suffix.format(layer.low)}) s = {suffix.format(layer.low)};")
        if layer.high is not None:
            lines.append(f"if (s > {suffix.format(layer.high)}) s = {suffix.format(layer.high)};")
        if self.nonnegative(layer):
            return lines + self.nonnegative_shift(layer)
        shifted = f"{n}_shr{layer.acc_bits}(s, {layer.shift}u)" if layer.shift else "s"
        if layer.out_bits == 32:  # softmax's logits: int32 codes
            return lines + [f"const int32_t r = {f'{n}_clip32({shifted})' if wide else shifted};"]
        sat = f"{n}_sat64" if wide else f"{n}_sat"
        return lines + [f"const int32_t r = {sat}({shifted});"]

    def nonnegative(self, layer: FixedLayer) -> bool:
        """Flash-table targets (AVR): a sum clamped at a bound >= 0 (ReLU) is shifted as unsigned."""
        return (not self.storage.plain and layer.acc_bits == 32 and layer.out_bits == 16 and layer.shift > 0
                and layer.low is not None and layer.low >= 0)

    @staticmethod
    def nonnegative_shift(layer: FixedLayer) -> list[str]:
        """``r`` = sat(shr32(s, k)) for s >= 0: u = s + 2^(k-1) (uint32: no wrap below 2^31 + 2^30),
        u >> k, 32767 from u >= 32768 * 2^k; for 8 <= k <= 16 the 15 bits kept are the high
        half of u << (16 - k) (below 2^31 there: a few single shifts, then whole bytes on AVR)."""
        k = layer.shift
        shifted = f"(uint16_t)((u << {16 - k}u) >> 16)" if 8 <= k < 16 else \
            "(uint16_t)(u >> 16)" if k == 16 else f"(u >> {k}u)"
        lines = [f"const uint32_t u = (uint32_t)s + {2 ** (k - 1)}u; /* s >= 0 */"]
        if k + 15 >= 32:  # u >> k < 2^15: never saturates
            return lines + [f"const int32_t r = (int32_t){shifted};"]
        return lines + [f"const int32_t r = u >= {32768 << k}u ? 32767 : (int32_t){shifted};"]

    def wrapper(self) -> list[str]:
        p, n = self.plan, self.name
        scale_in, scale_out = FLOAT32.c_literal(2.0 ** p.in_frac), FLOAT32.c_literal(2.0 ** -p.out_frac)
        lines = [f"/* x * 2^{p.in_frac} (exact), rounded half away from zero, saturated (NaN: -32768) */",
                 f"static int16_t {n}_quantise(float x)", "{",
                 f"    const float v = x * {scale_in};",
                 "    if (v >= 32767.0f) return 32767;",
                 "    if (v > -32768.0f) return (int16_t)(v < 0.0f ? v - 0.5f : v + 0.5f);",
                 "    return -32768;", "}", "",
                 f"void {n}(const float *x, float *y)", "{",
                 f"    int16_t q[{self.net.n_inputs}];", f"    {self.out_type} r[{p.n_outputs}];", "    uint32_t i;",
                 f"    for (i = 0u; i < {self.net.n_inputs}u; ++i) q[i] = {n}_quantise(x[i]);",
                 f"    {n}_q15(q, r);",
                 f"    for (i = 0u; i < {p.n_outputs}u; ++i) y[i] = (float)r[i] * {scale_out};"]
        if p.softmax:
            lines += ["    {  /* softmax of the logits, in float */", "        float m = y[0], sum = 0.0f;",
                      f"        for (i = 1u; i < {p.n_outputs}u; ++i) if (y[i] > m) m = y[i];",
                      f"        for (i = 0u; i < {p.n_outputs}u; ++i) {{ y[i] = expf(y[i] - m); sum += y[i]; }}",
                      f"        for (i = 0u; i < {p.n_outputs}u; ++i) y[i] = y[i] / sum;", "    }"]
        return lines + ["}", ""]

    def argmax(self) -> list[str]:
        if not self.plan.softmax:
            return []
        n, p = self.name, self.plan
        return ["/* The class: the first largest logit (integer only). */",
                f"uint32_t {n}_q15_argmax(const int16_t *x)", "{",
                f"    int32_t z[{p.n_outputs}];", "    uint32_t i, best = 0u;", f"    {n}_q15(x, z);",
                f"    for (i = 1u; i < {p.n_outputs}u; ++i) if (z[i] > z[best]) best = i;",
                "    return best;", "}", ""]


#: (source, header): what the C registry calls for this printer's dtypes.
EMITTERS = (emit_c_fixed, emit_c_fixed_header)
