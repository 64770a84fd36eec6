"""The microcontroller cores mlpcodegen builds for, in one table (:data:`CORES`).

A core is one :class:`Core` entry: its compiler flags, its memory (flash and RAM, for the
budgets of ``mlpcodegen size``), how its read-only tables are stored (``storage``: a name
the C printers know, e.g. ``progmem`` on AVR), what "stack" means there and, when one
exists, the emulator that runs it.  What the cores of one architecture share (the
cross toolchain and its Debian packages, the base and link flags, the bare-metal runtime
folder, the emulator's command and what it counts) is one :class:`Family` entry of
:data:`FAMILIES`.  Adding a core of a known family is one :class:`Core` line; a new
architecture is a family line and a runtime folder (start-up code, linker script).

Imports nothing of the backends: the printers read ``Core.storage`` by name.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

RUNTIME = Path(__file__).parent


@dataclass(frozen=True)
class Emulator:
    """How an image runs: ``kind`` picks the runner in :mod:`mlpcodegen.runtime.cross`
    (``qemu``: semihosting output in a file; ``simavr``: the UART echoed by simavr)."""

    kind: str
    command: str  # the program
    counts: str  # what the driver's ticks count: "instructions" or "cycles"
    per_tick: int  # counted units per tick of the driver's counter
    how: str  # for reports: how the count is taken


@dataclass(frozen=True)
class Family:
    """What the cores of one architecture share."""

    name: str
    prefix: str  # of the cross tools: PREFIXgcc, PREFIXsize, PREFIXnm
    packages: str  # Debian packages of the toolchain (and emulator): for the missing-tool message
    flags: tuple[str, ...]  # every compile and link ({runtime}: the runtime folder)
    link: tuple[str, ...]  # link only, before the objects
    libraries: tuple[str, ...]  # link only, after the objects
    runtime: Optional[Path]  # folder with the start-up code and linker script (None: the C library's)
    startup: tuple[str, ...]  # files of ``runtime`` linked into every image
    emulator: Optional[Emulator]
    soft_float: str  # regular expression of the toolchain's soft-float helper names (library symbols)
    note: str = ""  # what the size report should say about this toolchain

    @property
    def compiler(self) -> str:
        return self.prefix + "gcc"

    def compile_flags(self) -> list[str]:
        return [flag.format(runtime=self.runtime) for flag in self.flags]


@dataclass(frozen=True)
class Core:
    """One core: its flags, memory and conventions."""

    name: str
    title: str
    family: str  # a FAMILIES key
    flags: tuple[str, ...]
    machine: Optional[str]  # the emulator's board or MCU (qemu -M, simavr -m); None: no emulator
    runs_on: str  # what the emulator runs the core's code on
    flash: int  # bytes of code memory
    ram: int  # bytes of RAM
    stack: str  # what the stack figure means on this core
    storage: str = "plain"  # how tables are declared and read (backends.c_storage; softfloat: no FPU, zeros skipped)
    double_bits: int = 64  # the compiler's double
    ieee_float: bool = True  # float arithmetic rounds as IEEE 754 binary32, subnormals included (the host's bits)

    @property
    def toolchain(self) -> Family:
        return FAMILIES[self.family]

    @property
    def emulated(self) -> bool:
        return self.machine is not None and self.toolchain.emulator is not None


_ARM_SOFT = (r"^__(aeabi_[a-z0-9]*[fd][a-z0-9]*|[a-z]+[sd]f\d?|[a-z]+[sd]f[a-z0-9]*|"
             r"(unord|fix|float|extend|trunc)[a-z0-9]+|clzsi2|aeabi_[a-z0-9]+)$")
#: libgcc's names (RISC-V, Xtensa): __addsf3, __fixsfsi, __floatsisf, __clzsi2 ...; avr-libc's too
_GCC_SOFT = r"^__([a-z]+[sd]f\d?|[a-z]+[sd]f[a-z0-9]*|(unord|fix|float|extend|trunc)[a-z0-9]+|clzsi2|fp_[a-z0-9_]+)$"

#: Cortex-M under QEMU: SysTick counts the boards' 25 MHz clock, one instruction a
#: nanosecond under -icount shift=0: 40 instructions a tick.
_SYSTICK = Emulator("qemu", "qemu-system-arm", "instructions", 40,
                    "QEMU -icount shift=0, SysTick (40 instructions a tick)")

FAMILIES: dict[str, Family] = {family.name: family for family in (
    Family("cortex-m", "arm-none-eabi-", "gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm",
           ("-std=c99", "-mthumb", "-ffunction-sections", "-fdata-sections", "-ffp-contract=off"),
           ("-nostartfiles", "-nostdlib", "-Wl,--gc-sections", "-T{runtime}/link.ld"), ("-lm", "-lc", "-lgcc", "-lm"),
           RUNTIME / "cortex_m", ("startup.c",), _SYSTICK, _ARM_SOFT),
    # picolibc (libm) for rv32; -misa-spec=2.2: csr instructions in the base ISA and gcc's
    # rv32im/rv32imafc multilibs still chosen (rv32imc code links rv32im's libraries)
    Family("riscv", "riscv64-unknown-elf-", "gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf qemu-system-misc",
           ("-std=c99", "-misa-spec=2.2", "-ffunction-sections", "-fdata-sections", "-ffp-contract=off",
            "--specs=picolibc.specs"),
           ("-nostartfiles", "-Wl,--gc-sections", "-Wl,--no-warn-rwx-segments", "-T{runtime}/link.ld"),
           ("-lm", "-lc", "-lgcc"), RUNTIME / "riscv", ("startup.c",),
           Emulator("qemu", "qemu-system-riscv32", "instructions", 1, "QEMU -icount shift=0, the minstret CSR"),
           _GCC_SOFT),
    # avr-libc's start-up (vectors, .data copy, .bss) and our board file (UART, Timer1, exit on simavr)
    Family("avr", "avr-", "gcc-avr avr-libc simavr",
           ("-std=c99", "-ffunction-sections", "-fdata-sections", "-ffp-contract=off"),
           ("-Wl,--gc-sections",), ("-lm",), RUNTIME / "avr", ("board.c",),
           Emulator("simavr", "simavr", "cycles", 1, "simavr, Timer1 at the CPU clock (its overflow interrupt: "
                    "about 30 cycles each 65,536 counted)"), _GCC_SOFT),
    # no C library in Debian's toolchain: our few headers (xtensa/include), libgcc only, no emulator
    Family("xtensa", "xtensa-lx106-elf-", "gcc-xtensa-lx106",
           ("-std=c99", "-mlongcalls", "-ffunction-sections", "-fdata-sections", "-ffp-contract=off",
            "-isystem", "{runtime}/include"),
           # Debian's libgcc for lx106 has no soft-float routines (the ESP8266 SDK and ROM provide them):
           # the size image leaves them unresolved, and the report says they are not counted
           ("-nostdlib", "-nostartfiles", "-Wl,--gc-sections", "-Wl,-e,main", "-Wl,--unresolved-symbols=ignore-all"),
           ("-lgcc",), RUNTIME / "xtensa", (), None, _GCC_SOFT,
           "soft-float routines: the ESP8266 SDK's (not in Debian's libgcc), not counted"),
)}

_FRAME = "each function's frame from gcc -fstack-usage (calls included in the stated bound)"

CORES: dict[str, Core] = {core.name: core for core in (
    Core("m0plus", "Cortex-M0+ (soft float)", "cortex-m", ("-mcpu=cortex-m0plus", "-mfloat-abi=soft"),
         "mps2-an385", "Cortex-M3 (runs ARMv6-M code)", 256 * 1024, 64 * 1024, _FRAME, storage="softfloat"),
    Core("m4f", "Cortex-M4F (single-precision FPU)", "cortex-m",
         ("-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"), "mps2-an386", "Cortex-M4F",
         256 * 1024, 64 * 1024, _FRAME),
    Core("m7", "Cortex-M7 (double-precision FPU)", "cortex-m",
         ("-mcpu=cortex-m7", "-mfpu=fpv5-d16", "-mfloat-abi=hard"), "mps2-an500", "Cortex-M7",
         256 * 1024, 64 * 1024, _FRAME),
    Core("rv32imc", "RISC-V rv32imc (soft float)", "riscv", ("-march=rv32imc", "-mabi=ilp32"), "virt",
         "QEMU virt rv32 (RAM at 0x80000000)", 4 * 1024 * 1024, 4 * 1024 * 1024, _FRAME, storage="softfloat"),
    Core("rv32imafc", "RISC-V rv32imafc (single-precision FPU)", "riscv", ("-march=rv32imafc", "-mabi=ilp32f"),
         "virt", "QEMU virt rv32 (RAM at 0x80000000)", 4 * 1024 * 1024, 4 * 1024 * 1024, _FRAME),
    Core("atmega328p", "AVR ATmega328P, Arduino Uno (8-bit, soft float, 16 MHz)", "avr", ("-mmcu=atmega328p",),
         "atmega328p", "simavr atmega328p at 16 MHz", 32 * 1024, 2 * 1024,
         "each function's frame from gcc -fstack-usage (saved registers included) plus 2 bytes of return address "
         "a call", storage="progmem", double_bits=32, ieee_float=False),
    Core("lx106", "Xtensa lx106, ESP8266 (soft float)", "xtensa", ("-mtext-section-literals",), None,
         "no emulator (sizes only)", 1024 * 1024, 80 * 1024, _FRAME, storage="softfloat"),
)}


def core(name: str) -> Core:
    from ..core.errors import CompileError

    try:
        return CORES[name]
    except KeyError:
        raise CompileError(f"unknown core {name!r}; cores: {', '.join(CORES)}") from None


def of_family(family: str) -> dict[str, Core]:
    """The cores of one family, in table order."""
    return {name: entry for name, entry in CORES.items() if entry.family == family}
