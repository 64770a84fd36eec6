"""Embedded float32 loops for cores without an FPU (AVR, rv32imc, Cortex-M0+, lx106): a
product whose input is zero is skipped.

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


def nonzero_lines(name: str) -> list[str]:
    """``NAME_nz(v)``: v is neither +0 nor -0, from its bits (a float compare would be a
    soft-float call); memcpy of 4 bytes is a register move at -Os on every core we build."""
    return ["/* v is not +-0, read from its bits (no soft-float compare): products of a zero input are skipped,",
            "   exactly (finite weights: a + w * (+-0) is a for every nonzero a) */",
            f"static int {name}_nz(float v)", "{", "    uint32_t u;", "    memcpy(&u, &v, sizeof u);",
            "    return (u << 1) != 0u;", "}"]


def table_step(name: str, weight: str) -> str:
    """The inner loop of the table form (one unit's sum over its inputs ``p``, weights
    ``w``): ``weight`` the C reading the weight at ``w`` (a flash read on AVR)."""
    return (f"do {{ const float hk = *p++; if ({name}_nz(hk)) a += {weight} * hk; ++w; {name}_keep(w); }} "
            "while (--k); /* zero inputs skipped: c_softfloat */")


def pass_products(name: str, products: list[str]) -> list[str]:
    """The body of a tiled pass's input loop, ``hk`` the input: its products only when
    hk is not zero."""
    return [f"    if ({name}_nz(hk)) {{", *("    " + line for line in products), "    }"]
