"""Cross-compiling generated C for microcontroller cores and running it on emulators.

The cores, their toolchains and emulators are one table (:mod:`mlpcodegen.runtime.cores`);
this module runs the tools it names: ``PREFIXgcc`` to compile and link (our bare-metal
start-up code and linker script from the family's runtime folder, the C library's libm
and libgcc for what the predictor calls), then QEMU (semihosting output into a file) or
simavr (the UART it echoes).  A missing tool is a :class:`~mlpcodegen.core.errors.CompileError`
that names the Debian packages.

On Cortex-M: ``cortex_m/startup.c`` (vector table, reset handler, ARM semihosting),
``cortex_m/link.ld`` (the memory of QEMU's MPS2 boards) and ``cortex_m/driver.c`` (a table
of inputs through the predictor, outputs printed as bits, instructions counted with
SysTick under ``-icount shift=0``: one instruction is one nanosecond of virtual time, and
SysTick counts the boards' 25 MHz clock, 40 instructions a tick).  RISC-V: ``riscv/`` (the
same semihosting, minstret under ``-icount shift=0``); AVR: ``avr/board.c`` (UART,
Timer1 cycles, sleep with interrupts off to end simavr).

Imports nothing of the backends: it compiles and runs C text it is given.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Optional, Sequence

from ..core.errors import CompileError
from .cores import CORES as ALL_CORES
from .cores import FAMILIES, Core, of_family
from .cores import core as _core

DATA = Path(__file__).with_name("cortex_m")

#: The Cortex-M entries of the one table (what arm-none-eabi-gcc builds for).
CORES: dict[str, Core] = of_family("cortex-m")
OPT_LEVELS = ("-Os", "-O2")
#: Flags of every Cortex-M build: C99, Thumb, a section per function and object (so the
#: linker drops what is unused and the predictor's sizes can be read per function), no
#: contraction of a*b+c (the results must be those of the host build).
BASE_FLAGS = FAMILIES["cortex-m"].flags
#: SysTick ticks per instruction under -icount shift=0 (1 ns an instruction, a 25 MHz clock).
INSTRUCTIONS_PER_TICK = FAMILIES["cortex-m"].emulator.per_tick


def _packages(name: str) -> str:
    """The Debian packages of a cross tool or emulator, from the families' table."""
    for family in FAMILIES.values():
        if name.startswith(family.prefix) or (family.emulator and family.emulator.command == name):
            return family.packages
    return name


#: tool -> the Debian packages that provide it (every family's compiler, binutils and emulator).
PACKAGES = {f"{family.prefix}{tool}": family.packages for family in FAMILIES.values()
            for tool in ("gcc", "g++", "size", "nm")}
PACKAGES.update({family.emulator.command: family.packages for family in FAMILIES.values() if family.emulator})


def core(name: str) -> Core:
    return _core(name)


def tool(name: str) -> str:
    """The path of ``name`` on PATH, or a CompileError saying what to install."""
    found = shutil.which(name)
    if found is None:
        packages = PACKAGES.get(name, _packages(name))
        raise CompileError(f"{name} not found on PATH: install the Debian packages {packages} "
                           f"(apt-get install {packages})")
    return found


def run(command: Sequence[str], what: str, timeout: float = 120.0) -> str:
    """Run a tool; its stdout, or a CompileError with the end of its messages."""
    return run_in(command, what, None, timeout)


def run_in(command: Sequence[str], what: str, cwd: Optional[Path], timeout: float = 120.0) -> str:
    """:func:`run` in the folder ``cwd``."""
    try:
        done = subprocess.run(list(command), capture_output=True, text=True, timeout=timeout, cwd=cwd)
    except subprocess.TimeoutExpired:
        raise CompileError(f"{what} took longer than {timeout:g} s") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-12:]
        raise CompileError(f"{what} failed (exit {done.returncode}): " + " | ".join(tail))
    return done.stdout


def compile_objects(sources: Sequence[Path], target: Core, opt: str, folder: Path, *,
                    include: Optional[Path] = None, defines: Sequence[str] = ()) -> list[Path]:
    """``sources`` compiled for ``target`` at ``opt`` in one gcc run, with
    ``-fstack-usage``: ``folder/STEM.o`` and ``folder/STEM.su`` for each."""
    folder.mkdir(parents=True, exist_ok=True)
    family = target.toolchain
    command = [tool(family.compiler), *family.compile_flags(), *target.flags, opt, "-fstack-usage", *defines, "-c",
               *(str(Path(source).resolve()) for source in sources)]
    if include is not None:
        command.insert(1, f"-I{Path(include).resolve()}")
    run_in(command, f"{family.compiler} ({target.name} {opt})", folder)
    return [folder / (Path(source).stem + ".o") for source in sources]


def startup(target: Core) -> list[Path]:
    """The family's start-up files every image of ``target`` links."""
    family = target.toolchain
    return [family.runtime / name for name in family.startup] if family.runtime else []


def link(objects: Sequence[Path], target: Core, opt: str, out: Path) -> Path:
    """A bare-metal image: the objects (the family's start-up code among them, e.g.
    ``DATA/startup.c``) with its linker script, and the C library's libm and libgcc for
    what the predictor calls (nothing else from a C library)."""
    family = target.toolchain
    flags = [flag.format(runtime=family.runtime) for flag in family.link]
    run([tool(family.compiler), *family.compile_flags(), *target.flags, opt, *flags, *map(str, objects),
         *family.libraries,
         "-o", str(out)], f"linking {out.name} ({target.name} {opt})")
    return out


def emulate(image: Path, target: Core, timeout: float = 60.0) -> str:
    """Run ``image`` on ``target``'s emulator; what the program printed."""
    emulator = target.toolchain.emulator
    if not target.emulated or emulator is None:
        raise CompileError(f"{target.name}: no emulator ({target.runs_on}): sizes only (mlpcodegen size)")
    return _RUNNERS[emulator.kind](image, target, timeout)


def qemu(image: Path, target: Core, timeout: float = 60.0) -> str:
    """Run ``image`` on ``target``'s QEMU board; what it wrote through semihosting (into a
    file next to the image: QEMU's stdio chardev may still be writing when it exits).
    A non-zero exit (a fault exits 3) is a CompileError."""
    output = image.with_suffix(".out")
    command = [tool(target.toolchain.emulator.command), "-M", target.machine, "-nographic", "-monitor", "none",
               "-serial", "none", "-chardev", f"file,id=semihosting,path={output}",
               "-semihosting-config", "enable=on,target=native,chardev=semihosting", "-icount", "shift=0",
               "-kernel", str(image)]
    if target.family == "riscv":
        command[3:3] = ["-bios", "none"]  # virt: no firmware, the image runs from 0x80000000
    run(command, f"{target.toolchain.emulator.command} -M {target.machine}", timeout)
    return output.read_text()


#: simavr's echo of the UART: each line (or each 95 characters: its buffer) in green, the
#: newline that ended it shown as '.', then a newline of its own.
_SIMAVR_LINE = re.compile(r"\x1b\[32m(.*?)\n\x1b\[0m", re.S)
_SIMAVR_BUFFER = 95


def _uart_text(stderr: str) -> str:
    """What the program sent: the echoed segments joined, a final '.' of a segment shorter
    than simavr's buffer read back as the newline it stands for."""
    segments = _SIMAVR_LINE.findall(stderr)
    return "".join(seg[:-1] + "\n" if seg.endswith(".") and len(seg) < _SIMAVR_BUFFER else seg
                   for seg in segments)


def simavr(image: Path, target: Core, timeout: float = 600.0) -> str:
    """Run ``image`` on simavr at 16 MHz; what it wrote to the UART.  The program ends
    by sleeping with interrupts off (simavr then quits)."""
    command = [tool("simavr"), "-m", target.machine, "-f", "16000000", str(image)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise CompileError(f"simavr took longer than {timeout:g} s") from None
    if done.returncode != 0:
        raise CompileError(f"simavr failed (exit {done.returncode}): {done.stderr.strip()[-300:]}")
    return _uart_text(done.stderr)


_RUNNERS = {"qemu": qemu, "simavr": simavr}


def host_compiler() -> str:
    for name in (os.environ.get("CC") or "", "gcc", "cc", "clang"):
        if name and shutil.which(name):
            return name
    raise CompileError("no host C compiler (gcc, cc or clang) on PATH: install gcc")
