"""An AVX2 view of an AVX-512 host for the peers of bench/batch.py's AVX2 column.

LiteRT's XNNPACK and ONNX Runtime's MLAS pick their kernels from CPUID, so on an AVX-512 host
they run AVX-512 kernels whatever we compile for.  ``cpuid_view.c``, preloaded into a child
python, hides AVX-512 from CPUID (Linux CPUID faulting), so both peers run their AVX2 + FMA
kernels beside our ``-march=haswell -mno-avx512f`` build: the AVX2 machine the issue names,
emulated on this one.  Only for benchmarks; nothing mlpcodegen ships uses it.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: Set in the child that runs under the view (the child checks the view took).
ENV = "MLPC_CPUID_VIEW"


def cpu_flags() -> set[str]:
    """/proc/cpuinfo's flags of the first processor (empty where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def needed() -> bool:
    """The host has AVX-512, so the peers would use it unless hidden."""
    return "avx512f" in cpu_flags()


def possible() -> bool:
    """The kernel offers CPUID faulting on this CPU (Intel since Ivy Bridge, KVM guests included)."""
    return "cpuid_fault" in cpu_flags()


def build(folder: Path) -> Path:
    """Compile cpuid_view.c into ``folder`` (a shared object for LD_PRELOAD)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "cpuid_view.so"
    subprocess.run(["gcc", "-O2", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
                    str(HERE / "cpuid_view.c"), "-o", str(target)], check=True)
    return target


def environment(library: Path) -> dict[str, str]:
    """os.environ for a child python under the view."""
    preload = " ".join(p for p in (str(library), os.environ.get("LD_PRELOAD", "")) if p)
    env = {**os.environ, "LD_PRELOAD": preload, ENV: "avx2"}
    env.pop("PYTHONFAULTHANDLER", None)  # its SIGSEGV handler would take the CPUID traps
    return env


def active() -> bool:
    """This process sees no AVX-512 and AVX2 + FMA (numpy's own CPUID-based dispatch table)."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as features
    except ImportError:  # numpy < 2
        from numpy.core._multiarray_umath import __cpu_features__ as features
    return not features.get("AVX512F") and bool(features.get("AVX2")) and bool(features.get("FMA3"))
