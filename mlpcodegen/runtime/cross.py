"""Cross-compiling generated C for Cortex-M cores and running it on QEMU.

The tools are the Debian packages ``gcc-arm-none-eabi`` + ``libnewlib-arm-none-eabi``
(compiler, newlib's libm for the math functions a model may call) and
``qemu-system-arm``; a missing one is a :class:`~mlpcodegen.errors.CompileError` that
names the package.  The bare-metal image is the project's own: ``cortex_m/startup.c``
(vector table, reset handler, ARM semihosting), ``cortex_m/link.ld`` (the memory of
QEMU's MPS2 boards) and ``cortex_m/driver.c`` (a table of inputs through the
predictor, outputs printed as bits, instructions counted with SysTick under
``-icount shift=0``: one instruction is one nanosecond of virtual time, and SysTick
counts the boards' 25 MHz clock, 40 instructions a tick).

Imports nothing of the backends: it compiles and runs C text it is given.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from ..errors import CompileError

DATA = Path(__file__).with_name("cortex_m")


@dataclass(frozen=True)
class Core:
    """One Cortex-M core: its gcc flags and the QEMU board that runs its code."""

    name: str
    title: str
    flags: tuple[str, ...]
    machine: str  # qemu-system-arm -M
    runs_on: str  # the core QEMU emulates for that board


CORES: dict[str, Core] = {
    "m0plus": Core("m0plus", "Cortex-M0+ (soft float)", ("-mcpu=cortex-m0plus", "-mfloat-abi=soft"),
                   "mps2-an385", "Cortex-M3 (runs ARMv6-M code)"),
    "m4f": Core("m4f", "Cortex-M4F (single-precision FPU)",
                ("-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"), "mps2-an386", "Cortex-M4F"),
    "m7": Core("m7", "Cortex-M7 (double-precision FPU)",
               ("-mcpu=cortex-m7", "-mfpu=fpv5-d16", "-mfloat-abi=hard"), "mps2-an500", "Cortex-M7"),
}
OPT_LEVELS = ("-Os", "-O2")
#: Flags of every cross build: C99, Thumb, a section per function and object (so the
#: linker drops what is unused and the predictor's sizes can be read per function), no
#: contraction of a*b+c (the results must be those of the host build).
BASE_FLAGS = ("-std=c99", "-mthumb", "-ffunction-sections", "-fdata-sections", "-ffp-contract=off")
#: SysTick ticks per instruction under -icount shift=0 (1 ns an instruction, a 25 MHz clock).
INSTRUCTIONS_PER_TICK = 40

#: tool -> the Debian package that provides it.
PACKAGES = {"arm-none-eabi-gcc": "gcc-arm-none-eabi libnewlib-arm-none-eabi",
            "arm-none-eabi-g++": "gcc-arm-none-eabi libstdc++-arm-none-eabi-newlib",
            "arm-none-eabi-size": "binutils-arm-none-eabi", "arm-none-eabi-nm": "binutils-arm-none-eabi",
            "qemu-system-arm": "qemu-system-arm"}


def core(name: str) -> Core:
    try:
        return CORES[name]
    except KeyError:
        raise CompileError(f"unknown core {name!r}; cores: {', '.join(CORES)}") from None


def tool(name: str) -> str:
    """The path of ``name`` on PATH, or a CompileError saying what to install."""
    found = shutil.which(name)
    if found is None:
        raise CompileError(f"{name} not found on PATH: install the Debian packages {PACKAGES.get(name, name)} "
                           f"(apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm)")
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
                    include: Optional[Path] = None) -> list[Path]:
    """``sources`` compiled for ``target`` at ``opt`` in one gcc run, with
    ``-fstack-usage``: ``folder/STEM.o`` and ``folder/STEM.su`` for each."""
    folder.mkdir(parents=True, exist_ok=True)
    command = [tool("arm-none-eabi-gcc"), *BASE_FLAGS, *target.flags, opt, "-fstack-usage", "-c",
               *(str(Path(source).resolve()) for source in sources)]
    if include is not None:
        command.insert(1, f"-I{Path(include).resolve()}")
    run_in(command, f"arm-none-eabi-gcc ({target.name} {opt})", folder)
    return [folder / (Path(source).stem + ".o") for source in sources]


def link(objects: Sequence[Path], target: Core, opt: str, out: Path) -> Path:
    """A bare-metal image: the objects (our start-up code among them: ``DATA/startup.c``)
    with our linker script, and newlib's libm and libgcc for what the predictor calls
    (nothing else from a C library)."""
    run([tool("arm-none-eabi-gcc"), *BASE_FLAGS, *target.flags, opt, "-nostartfiles", "-nostdlib",
         "-Wl,--gc-sections", f"-T{DATA / 'link.ld'}", *map(str, objects),
         "-lm", "-lc", "-lgcc", "-lm", "-o", str(out)], f"linking {out.name} ({target.name} {opt})")
    return out


def qemu(image: Path, target: Core, timeout: float = 60.0) -> str:
    """Run ``image`` on ``target``'s board; what it wrote through semihosting (into a
    file next to the image: QEMU's stdio chardev may still be writing when it exits).
    A non-zero exit (a fault exits 3) is a CompileError."""
    output = image.with_suffix(".out")
    command = [tool("qemu-system-arm"), "-M", target.machine, "-nographic", "-monitor", "none", "-serial", "none",
               "-chardev", f"file,id=semihosting,path={output}",
               "-semihosting-config", "enable=on,target=native,chardev=semihosting", "-icount", "shift=0",
               "-kernel", str(image)]
    run(command, f"qemu-system-arm -M {target.machine}", timeout)
    return output.read_text()


def host_compiler() -> str:
    for name in (os.environ.get("CC") or "", "gcc", "cc", "clang"):
        if name and shutil.which(name):
            return name
    raise CompileError("no host C compiler (gcc, cc or clang) on PATH: install gcc")
