"""Where the C printers put read-only tables and how they read them, per core (as data).

``plain``: ``static const`` arrays read as arrays (Cortex-M, RISC-V, Xtensa, the host:
const data stays in flash there).  ``progmem`` (AVR): a ``const`` array is copied to the
2 KiB of RAM at start-up, so tables get ``PROGMEM`` and every read goes through
``pgm_read_*``.  The file stays portable: its macros pick flash and ``pgm_read_*`` when
``__AVR__`` is defined and plain arrays elsewhere, so the host build of the same C gives
the bits the core is compared with.

The plain storage prints exactly what the printers printed before storage existed;
``softfloat`` is plain arrays for cores without an FPU, whose float32 loops skip zero
inputs (:mod:`c_softfloat`; AVR's ``progmem`` too).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..core.errors import ValidationError

#: C type -> suffix of its read macro (NAME_LD<suffix>).
_SUFFIXES = {"float": "F", "int16_t": "I16", "int32_t": "I32", "unsigned char": "U8", "unsigned short": "U16",
             "int8_t": "I8", "uint8_t": "UI8", "int64_t": "I64"}


@dataclass(frozen=True)
class Storage:
    """How one core stores tables: ``guard`` the macro that says the compiler targets it,
    ``include`` the header of the read functions, ``qualifier`` what follows a table's
    declarator, ``loads`` the read function of each C type."""

    name: str
    guard: str = ""
    include: str = ""
    qualifier: str = ""
    loads: tuple[tuple[str, str], ...] = ()
    #: lines after the include for what these targets' C library lacks
    compat: tuple[str, ...] = ()
    #: bytes a frame adds to its locals on these targets (saved registers, return address);
    #: None: the printer's own generic bound
    frame_overhead: Optional[int] = None
    #: the cores have no FPU: float32 loops skip the products of zero inputs (backends.c_softfloat)
    skip_zeros: bool = False
    #: those cores' float32 ``optimize speed``: units per pass of its loops (backends.c_softfloat)
    speed_tile: int = 0

    @property
    def plain(self) -> bool:
        return not self.qualifier

    def check(self, c_type: str) -> None:
        """A table of ``c_type`` can be stored: else a ValidationError naming what can."""
        if not self.plain and c_type not in dict(self.loads):
            raise ValidationError(f"{self.name} storage has no read for {c_type} tables (it reads "
                                  f"{', '.join(t for t, _ in self.loads)}); choose another dtype")

    def after_declarator(self, name: str) -> str:
        """Text after a table's declarator (before ``=``)."""
        return "" if self.plain else f" {name}_CONST"

    def read(self, name: str, c_type: str, lvalue: str) -> str:
        """The C expression reading the table element ``lvalue`` (e.g. ``w[3]``, ``*w++``)."""
        if self.plain:
            return lvalue
        self.check(c_type)
        return f"{name}_LD{_SUFFIXES[c_type]}(&{lvalue})"

    def macros(self, name: str, c_types: tuple[str, ...]) -> list[str]:
        """The file's definitions of NAME_CONST and the read macros of ``c_types``."""
        if self.plain:
            return []
        loads = dict(self.loads)
        for c_type in c_types:
            self.check(c_type)
        ours = [f"#define {name}_CONST {self.qualifier}"] + [
            f"#define {name}_LD{_SUFFIXES[t]}(p) (({t}){loads[t]}(p))" for t in c_types]
        elsewhere = [f"#define {name}_CONST"] + [f"#define {name}_LD{_SUFFIXES[t]}(p) (*(p))" for t in c_types]
        return [f"/* tables in flash on {self.name} targets (read through the macros), plain arrays elsewhere */",
                f"#if defined({self.guard})", f"#include {self.include}", *self.compat, *ours, "#else", *elsewhere,
                "#endif", ""]


STORAGES: dict[str, Storage] = {storage.name: storage for storage in (
    Storage("plain"),
    Storage("softfloat", skip_zeros=True, speed_tile=4),  # plain arrays, cores without an FPU (rv32imc, Cortex-M0+, lx106)
    Storage("progmem", "__AVR__", "<avr/pgmspace.h>", "PROGMEM",
            (("float", "pgm_read_float"), ("int16_t", "pgm_read_word"), ("int32_t", "pgm_read_dword"),
             ("unsigned char", "pgm_read_byte"), ("unsigned short", "pgm_read_word"), ("int8_t", "pgm_read_byte"),
             ("uint8_t", "pgm_read_byte"), ("int64_t", "mlpc_pgm_read_qword")),
            # avr-gcc: at most 18 call-saved registers and the frame pointer pushed, a 2-byte return
            # address, a few spills (measured with -fstack-usage: tests/test_cores.py)
            frame_overhead=40, skip_zeros=True, speed_tile=1,
            compat=("#ifndef HUGE_VALF /* avr-libc's <math.h> has INFINITY only */",
                    "#define HUGE_VALF __builtin_huge_valf()", "#endif",
                    "/* avr-libc reads at most 4 bytes at once: an int64 (q15 biases of 2^31 or more) as two */",
                    "#define mlpc_pgm_read_qword(p) ((uint64_t)pgm_read_dword((const uint8_t *)(p) + 4) << 32 | "
                    "(uint64_t)pgm_read_dword(p))")),
)}


def storage(name: str) -> Storage:
    try:
        return STORAGES[name]
    except KeyError:
        raise ValueError(f"storage must be one of {tuple(STORAGES)}, got {name!r}") from None
