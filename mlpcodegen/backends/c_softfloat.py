"""Embedded float32 loops for cores without an FPU (AVR, rv32imc, Cortex-M0+, lx106): a
product whose input is zero is skipped; on rv32imc and M0+ the others are multiplied in integers.

Without an FPU every multiply-add is two calls into the soft-float library (avr-libc's
__mulsf3/__addsf3, libgcc's on RISC-V), ~100-300 cycles where a loop step costs a few;
after a ReLU about half the activations are 0.0 (sine 1-16-16-1 and cls 16-64-64-10 on
bench/embedded.py's inputs: 46-70% per hidden layer).  The loops of the embedded profile
test each input's bits (no call: NAME_nz) and skip ``a += w * h`` when h is +0 or -0.

Exact, as IEEE 754 round-to-nearest defines the sum: the weights are finite (the IR checks
it), so ``w * (+-0)`` is +-0, and ``a + (+-0)`` is ``a`` for every a but a zero: the sums
the skipping loops make are the ones the plain loops make, bit for bit, except the sign
of a sum that is exactly zero (-0 where the plain loop may give +0: equal as numbers;
ReLU maps both to +0).  The C is the same on the host and on the core, so the core's bits
equal the host build's (tests/test_cores.py); the reference comparison is unchanged.

The products that remain go through ``NAME_mul``: on rv32imc and Cortex-M0+ the IEEE
product computed in integers where both operands and the result are normal (the library
otherwise), elsewhere ``*`` (see :data:`MUL_TARGETS`): the same bits either way, so the
host build (``*``) is what the cores are compared with.

Speed on these cores takes loops, never written-out layers (:func:`speed_tile`).

The cores that take this form are the ones whose table storage says so
(:attr:`c_storage.Storage.skip_zeros`: ``progmem`` on AVR, ``softfloat`` elsewhere, from
runtime/cores.py); float64, q15 and int8 are unchanged.
"""
from __future__ import annotations

from .c_storage import Storage


def skips(storage: Storage, c_type: str) -> bool:
    """Whether the embedded loops of a ``c_type`` file for ``storage``'s cores skip zero inputs."""
    return storage.skip_zeros and c_type == "float"


def speed_tile(storage: Storage, c_type: str) -> int:
    """Units per pass of ``optimize speed``'s loops on these cores (0: not a soft-float
    file: the FPU cores' choice, small layers written out).  Written out, a product
    cannot be skipped and costs ~12 bytes a weight; a call dominates a loop step, so loops
    are as fast (measured, bench/embedded.py: sine 1-16-16-1 on AVR 64,423 cycles and 12.6 KB
    written out, 51,285 and 2.6 KB as loops).  AVR: one unit a pass (32 8-bit registers
    hold one float sum and the pointers; wider passes measured slower and bigger); 32-bit
    cores: 4 (rv32imc cls 16-64-64-10: 663,046 instructions against 690,907 for 1, sine
    1-16-16-1 4,610 bytes against 6,884 for 8)."""
    return storage.speed_tile if skips(storage, c_type) else 0


#: The soft-float cores whose multiply NAME_mul does in integers (gcc's macros): RISC-V without
#: an FPU (mul/mulhu: a 32 x 32 -> 64 product in two instructions) and ARMv6-M (Cortex-M0/M0+).
#: Elsewhere (AVR: avr-libc's assembly; lx106: the SDK's, no emulator to measure it; the host)
#: NAME_mul is ``*``: the host build of the same C is then IEEE's own multiply, and the cores'
#: bits equal it (tests/test_cores.py, and a million operand pairs on the host).
MUL_TARGETS = "(defined(__riscv) && !defined(__riscv_flen)) || defined(__ARM_ARCH_6M__)"


def multiply_lines(name: str) -> list[str]:
    """``NAME_mul(w, h)``: w * h rounded to nearest even, as IEEE 754 binary32 multiplies: in
    integers when both operands and the product are normal (the 24-bit significands' 48-bit
    product, its round bit and sticky bits), else by the library (zeros are skipped before;
    subnormals, infinities, NaN and products near the range's ends take its path).  rv32imc
    sine 1-16-16-1: 29,861 -> 19,259 instructions; libgcc's __mulsf3 unpacks, classifies and
    repacks both operands on every call.  Exponents: E = ea + eb - 127 (+1 when the product of
    the significands is >= 2, +1 more when rounding carries), normal for ea + eb in [128, 379]."""
    return [f"/* w * h, IEEE 754 binary32 round to nearest even: in integers where both and the product are normal,",
            "   on the cores whose soft-float multiply costs most (see c_softfloat.MUL_TARGETS); elsewhere w * h */",
            f"#if {MUL_TARGETS} || defined({name}_INTEGER_MUL)",
            f"static float {name}_mul(float w, float h)", "{", "    uint32_t a, b, e;", "    memcpy(&a, &w, sizeof a);",
            "    memcpy(&b, &h, sizeof b);", "    e = ((a >> 23) & 0xffu) + ((b >> 23) & 0xffu);",
            "    if (((a >> 23) & 0xffu) - 1u < 254u && ((b >> 23) & 0xffu) - 1u < 254u && e - 128u < 252u) {",
            "        const uint64_t q = (uint64_t)(((a & 0x7fffffu) | 0x800000u) << 8) *",
            "                           (uint64_t)(((b & 0x7fffffu) | 0x800000u) << 8); /* the product << 16 */",
            "        const uint32_t hi = (uint32_t)(q >> 32), sticky = (uint32_t)q != 0u ? 1u : 0u;",
            "        uint32_t m, r, half;",
            "        if ((hi >> 31) != 0u) { /* the product of the significands is >= 2 */",
            "            m = hi >> 8;", "            r = hi & 0xffu;", "            half = 0x80u;",
            "            e -= 126u;",
            "        } else {", "            m = hi >> 7;", "            r = hi & 0x7fu;", "            half = 0x40u;",
            "            e -= 127u;", "        }",
            "        if (r > half || (r == half && (sticky | (m & 1u)) != 0u)) ++m;",
            "        if ((m >> 24) != 0u) {", "            m >>= 1;", "            ++e;", "        }",
            "        a = ((a ^ b) & 0x80000000u) | (e << 23) | (m & 0x7fffffu);", "        memcpy(&w, &a, sizeof a);",
            "        return w;", "    }", "    return w * h;", "}", "#else", f"#define {name}_mul(w, h) ((w) * (h))",
            "#endif"]


def nonzero_lines(name: str) -> list[str]:
    """``NAME_nz(v)``: v is neither +0 nor -0, from its bits (a float compare would be a
    soft-float call); memcpy of 4 bytes is a register move at -Os on every core we build."""
    return ["/* v is not +-0, read from its bits (no soft-float compare): products of a zero input are skipped,",
            "   exactly (finite weights: a + w * (+-0) is a for every nonzero a) */",
            f"static int {name}_nz(float v)", "{", "    uint32_t u;", "    memcpy(&u, &v, sizeof u);",
            "    return (u << 1) != 0u;", "}", "", *multiply_lines(name)]


def table_step(name: str, weight: str) -> str:
    """The inner loop of the table form (one unit's sum over its inputs ``p``, weights
    ``w``): ``weight`` the C reading the weight at ``w`` (a flash read on AVR)."""
    return (f"do {{ const float hk = *p++; if ({name}_nz(hk)) a += {name}_mul({weight}, hk); ++w; {name}_keep(w); }} "
            "while (--k); /* zero inputs skipped: c_softfloat */")


def pass_product(name: str, sum_: str, weight: str) -> str:
    """One product of a tiled pass's input ``hk`` into ``sum_``."""
    return f"    {sum_} += {name}_mul({weight}, hk);"


def pass_products(name: str, products: list[str]) -> list[str]:
    """The body of a tiled pass's input loop, ``hk`` the input: its products only when
    hk is not zero."""
    return [f"    if ({name}_nz(hk)) {{", *("    " + line for line in products), "    }"]
