"""The embedded C on microcontroller cores (Cortex-M, RISC-V, AVR, Xtensa: the table of
:mod:`mlpcodegen.runtime.cores`): cross-compiled sizes and stack (``mlpcodegen size``) and
outputs and instruction or cycle counts on an emulator (``mlpcodegen verify --core``):
QEMU for Cortex-M and RISC-V, simavr for AVR, none for Xtensa (sizes only).

Sizes are read from the predictor's own object file (``-ffunction-sections
-fdata-sections``: a section per function and per weight array) and ``-fstack-usage``;
what the library adds (math functions, soft-float helpers) from the symbols a minimal
program that calls the predictor links in (``--gc-sections``, our start-up code, no C
library start-up).  Verification builds :mod:`mlpcodegen.runtime.cross`'s driver around
the predictor for the core and for this machine (same C, ``-ffp-contract=off``), runs
a table of inputs through both and compares the core's outputs bit for bit with the
host's and within the usual tolerances with the float64 reference and the peer
(``model.predict``).
"""
from __future__ import annotations

import math
import re
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from ..backends import get_backend
from ..backends.c import literal
from ..core.errors import CompileError
from ..core.ir import Network
from ..core.numeric import numeric_type
from ..runtime import cross


def _soft_float(target: cross.Core) -> "re.Pattern[str]":
    """Library symbols that are soft-float helpers on ``target`` (libgcc's, avr-libc's):
    __aeabi_f*/d*, __addsf3, __fp_*..."""
    return re.compile(target.toolchain.soft_float)


@dataclass(frozen=True)
class Options:
    """How the predictor is emitted (embedded profile)."""

    dtype: str = "float32"
    name: str = "predict"
    math: str = "fast"
    unroll: str = "auto"
    optimize: str = "size"
    profile: str = "embedded"  # desktop: for comparison (its one-sample function runs the same way)
    domain: Any = None  # fixed-point dtypes: the input domain the formats are planned for
    storage: str = "plain"  # tables as plain arrays or in flash (a core's: cores.Core.storage)

    def for_core(self, core: str) -> "Options":
        """These options with ``core``'s table storage (AVR: PROGMEM); float64 refused on a
        core whose double has 32 bits."""
        target = cross.core(core)
        if numeric_type(self.dtype).name == "float64" and target.double_bits < 64:
            raise CompileError(f"float64 is not available on {core}: {target.toolchain.compiler}'s double is "
                               f"{target.double_bits} bits; use float32 or q15")
        return replace(self, storage=target.storage)

    def source(self, net: Network) -> tuple[str, str]:
        """(source, header): the registry picks the C printer by dtype (a fixed-point dtype's
        ignores the float options, a float dtype's the domain)."""
        backend = get_backend("c")
        kwargs = dict(dtype=self.dtype, name=self.name, math=self.math, unroll=self.unroll, profile=self.profile,
                      optimize=self.optimize, domain=self.domain, storage=self.storage)
        return backend.emit(net, **kwargs), backend.header(net, **kwargs)


def write_predictor(net: Network, options: Options, folder: Path) -> Path:
    """NAME.c, NAME.h and mlpc_net.h (what the drivers include) in ``folder``; the .c path."""
    source, header = options.source(net)
    (folder / f"{options.name}.c").write_text(source)
    (folder / f"{options.name}.h").write_text(header)
    (folder / "mlpc_net.h").write_text("\n".join([
        f'#include "{options.name}.h"', f"#define MLPC_T {numeric_type(options.dtype).c_type}",
        f"#define MLPC_NAME {options.name}", f"#define MLPC_INPUTS {net.n_inputs}u",
        f"#define MLPC_OUTPUTS {net.n_outputs}u", ""]))
    return folder / f"{options.name}.c"


# ------------------------------------------------------------------- sizes


@dataclass(frozen=True)
class SizeRow:
    """One core at one optimisation level."""

    core: str
    opt: str
    text: int  # the predictor's code
    rodata: int  # its weights and constants
    data: int
    bss: int
    functions: dict  # name -> (code bytes, stack bytes)
    math: dict  # library function -> bytes (libm, libc)
    soft_float: dict  # libgcc helper -> bytes

    @property
    def predictor(self) -> int:
        return self.text + self.rodata + self.data


def _sections(obj: Path, target: Optional[cross.Core] = None) -> dict[str, int]:
    prefix = (target or cross.core("m4f")).toolchain.prefix
    out = cross.run([cross.tool(prefix + "size"), "-A", str(obj)], prefix + "size")
    sizes: dict[str, int] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].startswith(".") and parts[1].isdigit():
            sizes[parts[0]] = int(parts[1])
    return sizes


def _kind(section: str) -> Optional[str]:
    for kind in ("text", "rodata", "data", "bss"):
        if section == f".{kind}" or section.startswith(f".{kind}."):
            return kind
    if section.startswith((".progmem", ".srodata")):  # AVR's PROGMEM tables (flash), RISC-V's small constants
        return "rodata"
    if section.startswith((".sdata", ".sbss")):
        return "data" if section.startswith(".sdata") else "bss"
    return None


def stack_usage(su: Path) -> dict[str, int]:
    """function -> bytes, from a gcc ``-fstack-usage`` file."""
    usage = {}
    for line in su.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) >= 2 and parts[1].strip().isdigit():
            usage[parts[0].rsplit(":", 1)[-1]] = int(parts[1])
    return usage


def _symbols(paths: Sequence[Path], target: cross.Core) -> dict[Path, dict[str, int]]:
    """Each file's defined code and data symbols -> size (one nm run)."""
    nm = target.toolchain.prefix + "nm"
    out = cross.run([cross.tool(nm), "-S", "--defined-only", *map(str, paths)], nm)
    symbols: dict[Path, dict[str, int]] = {path: {} for path in paths}
    names = {str(path): path for path in paths}
    current = paths[0]
    for line in out.splitlines():
        if line.endswith(":") and line[:-1] in names:
            current = names[line[:-1]]
            continue
        parts = line.split()
        if len(parts) == 4 and parts[2] in "TtDdBbRrWw":
            symbols[current][parts[3]] = int(parts[1], 16)
    return symbols


def measure_source(folder: Path, source: Path, target: cross.Core, opt: str) -> SizeRow:
    """Sizes of the predictor ``source`` (``folder`` holds its mlpc_net.h)."""
    return _measure(folder, source, target, opt)


def _measure(folder: Path, source: Path, target: cross.Core, opt: str) -> SizeRow:
    work = folder / f"{target.name}{opt}"
    obj, main, *startup = cross.compile_objects([source, cross.DATA / "size_main.c", *cross.startup(target)],
                                                target, opt, work, include=folder)
    image = cross.link([obj, main, *startup], target, opt, work / "image.elf")
    totals = {"text": 0, "rodata": 0, "data": 0, "bss": 0}
    sections = _sections(obj, target)
    for section, size in sections.items():
        kind = _kind(section)
        if kind:
            totals[kind] += size
    stack = stack_usage(obj.with_suffix(".su"))
    functions = {name: (sections.get(f".text.{name}", 0), bytes_) for name, bytes_ in stack.items()}
    symbols = _symbols([obj, main, *startup, image], target)
    ours = set(symbols[obj]) | set(symbols[main]) | {name for path in startup for name in symbols[path]}
    library = {name: size for name, size in symbols[image].items() if name not in ours and size}
    if target.family == "avr":  # avr-libc's start-up and vectors: not what the predictor needs
        library = {name: size for name, size in library.items()
                   if not name.startswith(("__vector", "__do_", "__ctors", "__init", "__bad_", "exit", "_exit"))}
    soft = {name: size for name, size in library.items() if _soft_float(target).match(name)}
    maths = {name: size for name, size in library.items() if name not in soft}
    return SizeRow(target.name, opt, totals["text"], totals["rodata"], totals["data"], totals["bss"],
                   functions, maths, soft)


def measure_sizes(net: Network, options: Options, cores: Sequence[str],
                  opts: Sequence[str] = cross.OPT_LEVELS) -> list[SizeRow]:
    """A :class:`SizeRow` for every core and optimisation level (built in parallel)."""
    targets = [cross.core(name) for name in cores]
    for target in targets:  # a missing toolchain or a refused dtype: said before any work
        cross.tool(target.toolchain.compiler)
        options.for_core(target.name)
    with tempfile.TemporaryDirectory(prefix="mlpcodegen-size-") as tmp:
        sources = {}
        for storage in dict.fromkeys(target.storage for target in targets):  # the C of each table storage
            folder = Path(tmp) / storage
            folder.mkdir()
            sources[storage] = (folder, write_predictor(net, replace(options, storage=storage), folder))
        jobs = [(target, opt) for target in targets for opt in opts]
        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(lambda job: _measure(*sources[job[0].storage], *job), jobs))


def _listing(entries: dict) -> str:
    return ", ".join(f"{name} {size}" for name, size in sorted(entries.items(), key=lambda e: -e[1])) or "-"


def size_table(net: Network, options: Options, rows: Sequence[SizeRow]) -> str:
    """The report of ``mlpcodegen size``: one line per core and level, then what each
    function takes and what the libraries add."""
    families = dict.fromkeys(cross.core(row.core).toolchain for row in rows)
    compilers = "; ".join(f"{family.compiler} {' '.join(family.compile_flags())}" for family in families)
    head = [f"network {net.describe()}; C embedded profile, optimize {options.optimize}, {options.dtype}, "
            f"math {options.math}; {compilers}",
            "bytes of the predictor alone (its object file); library: what linking adds for it"]
    table = [("core", "opt", "text", "rodata", "data", "bss", "predictor", "math lib", "soft-float",
              "stack " + options.name)]
    for row in rows:
        table.append((row.core, row.opt, str(row.text), str(row.rodata), str(row.data), str(row.bss),
                      str(row.predictor), str(sum(row.math.values())), str(sum(row.soft_float.values())),
                      str(row.functions.get(options.name, (0, 0))[1])))
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    lines = head + ["  ".join(c.rjust(w) if i > 1 else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
                    for r in table]
    for row in rows:
        functions = ", ".join(f"{name} {code} B code, {stack} B stack" for name, (code, stack) in
                              sorted(row.functions.items()))
        lines.append(f"{row.core} {row.opt}: {functions}; math: {_listing(row.math)}; "
                     f"soft-float: {_listing(row.soft_float)}")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------- running


@dataclass
class CoreRun:
    """Outputs of a table of inputs on one core (or the host) and, on a core, the
    instructions one inference takes (mean over the timed rows, an empty call's cost
    subtracted)."""

    outputs: np.ndarray
    instructions: Optional[float] = None
    extra: dict = field(default_factory=dict)


def _value(v: float, dtype: str) -> str:
    """A C constant expression for ``v`` (NaN and infinities by <math.h>'s macros)."""
    if np.isnan(v):
        return "NAN"
    if np.isinf(v):
        return "INFINITY" if v > 0 else "-INFINITY"
    return literal(v, dtype)


def _table_header(x: np.ndarray, dtype: str, timed: int, repeat: int) -> str:
    rows = [" {" + ", ".join(_value(v, dtype) for v in row) + "}" for row in x]
    return "\n".join(["#include <math.h>", f"#define MLPC_ROWS {len(x)}u", f"#define MLPC_TIMED {timed}u", f"#define MLPC_REPEAT {repeat}u",
                      f"static const MLPC_T mlpc_x[{len(x)}][MLPC_INPUTS] MLPC_TABLE_STORAGE = {{", ",\n".join(rows), "};", ""])


def _parse(text: str, n_rows: int, n_outputs: int, dtype: str) -> tuple[np.ndarray, list[int]]:
    lines = text.splitlines()
    rows = [line.split() for line in lines if line and not line.startswith("ticks")]
    ticks = [int(v, 16) for line in lines if line.startswith("ticks") for v in line.split()[1:]]
    if len(rows) != n_rows or any(len(r) != n_outputs for r in rows):
        raise CompileError(f"the program printed {len(rows)} rows, expected {n_rows} of {n_outputs} outputs: "
                           + " | ".join(lines[-3:]))
    np_dtype = np.dtype(dtype) if dtype in _CODES else numeric_type(dtype).np_dtype
    bits = np.array([[int(v, 16) for v in r] for r in rows], dtype=np.uint64 if np_dtype.itemsize == 8 else np.uint32)
    if np_dtype.itemsize == 2:  # int16 codes of the q15 integer predictor: the low half of each word
        bits = bits.astype(np.uint16)
    return bits.view(np_dtype).reshape(n_rows, n_outputs), ticks


#: Integer types a driver's table may hold (the q15 integer predictor's codes), besides the dtypes.
_CODES = ("int16", "int32")


def _prepare(net: Network, x: np.ndarray, options: Options, folder: Path) -> tuple[Path, int, int]:
    source = write_predictor(net, options, folder)
    return (source, *write_table(x, options.dtype, folder))


def write_table(x: np.ndarray, dtype: str, folder: Path) -> tuple[int, int]:
    """``folder/mlpc_table.h``: the inputs, and how many rows are timed how many times
    (at least 64 calls: a SysTick tick is 40 instructions)."""
    timed = min(len(x), 64)
    repeat = max(1, math.ceil(64 / timed))
    (folder / "mlpc_table.h").write_text(_table_header(x, dtype, timed, repeat))
    return timed, repeat


def run_on_core(net: Network, x: np.ndarray, core: str, options: Options, opt: str = "-Os",
                timeout: float = 120.0) -> CoreRun:
    """``x`` through the predictor on ``core`` under its emulator (QEMU, simavr)."""
    options = options.for_core(core)
    with tempfile.TemporaryDirectory(prefix="mlpcodegen-core-") as tmp:
        folder = Path(tmp)
        source, timed, repeat = _prepare(net, x, options, folder)
        return run_prepared(folder, [source], core, opt, len(x), net.n_outputs, options.dtype, timed * repeat,
                            timeout)


def run_prepared(folder: Path, sources: Sequence[Path], core: str, opt: str, rows: int, n_outputs: int,
                 dtype: str, timed_calls: int, timeout: float = 120.0) -> CoreRun:
    """The driver over ``folder``'s mlpc_net.h / mlpc_table.h (any predictor with the
    signature ``void NAME(const T *x, T *y)``: also the peers of bench/embedded.py) and
    ``sources``, built for ``core`` and run on its emulator.  ``instructions`` is what the
    core's emulator counts (instructions on QEMU, cycles on simavr: ``extra["counts"]``)."""
    target = cross.core(core)
    if not target.emulated:
        raise CompileError(f"{core} has no emulator ({target.runs_on}): mlpcodegen size --core {core} gives its sizes")
    emulator = target.toolchain.emulator
    cross.tool(emulator.command)
    defines = () if target.family == "cortex-m" else ("-DMLPC_COUNTER",)  # Cortex-M: SysTick in the driver
    objects = cross.compile_objects([*sources, cross.DATA / "driver.c", *cross.startup(target)], target, opt,
                                    folder / f"build{core}{opt}", include=folder, defines=defines)
    image = cross.link(objects, target, opt, folder / f"image{core}{opt}.elf")
    outputs, ticks = _parse(cross.emulate(image, target, timeout), rows, n_outputs, dtype)
    if len(ticks) != 2:
        raise CompileError(f"the program on the core did not report its {emulator.counts} count")
    if not 0 < ticks[1] < ticks[0]:  # the driver counts SysTick reloads: never a wrapped figure printed
        raise CompileError(f"the program on the core reported an implausible count ({ticks[0]} ticks for the "
                           f"predictor, {ticks[1]} for an empty call): not printed; please report it")
    return CoreRun(outputs, (ticks[0] - ticks[1]) * emulator.per_tick / timed_calls,
                   {"library": library_calls(objects[:len(sources)], target), "counts": emulator.counts})


def library_calls(objects: Sequence[Path], target: Optional[cross.Core] = None) -> list[str]:
    """The C library functions the objects call (soft-float helpers apart): libm's results
    may differ between newlib/picolibc/avr-libc and the host's C library in the last bit."""
    target = target or cross.core("m4f")
    nm = target.toolchain.prefix + "nm"
    out = cross.run([cross.tool(nm), "-u", *map(str, objects)], nm)
    names = {line.split()[-1] for line in out.splitlines() if line.strip() and not line.endswith(":")}
    return sorted(name for name in names if not _soft_float(target).match(name))


#: Host build of the same C: no contraction (as the cross builds), so the bits agree.
HOST_FLAGS = ("-std=c99", "-O2", "-ffp-contract=off", "-g0")


def run_on_host(net: Network, x: np.ndarray, options: Options, timeout: float = 120.0) -> CoreRun:
    """``x`` through the same predictor and driver compiled for this machine."""
    with tempfile.TemporaryDirectory(prefix="mlpcodegen-host-") as tmp:
        folder = Path(tmp)
        source, _, _ = _prepare(net, x, options, folder)
        program = folder / "program"
        cross.run([cross.host_compiler(), *HOST_FLAGS, f"-I{folder}", str(source), str(cross.DATA / "driver.c"),
                   str(cross.DATA / "host.c"), "-o", str(program), "-lm"], "host build of the driver")
        try:
            done = subprocess.run([str(program)], capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise CompileError(f"the host program took longer than {timeout:g} s") from None
        if done.returncode != 0:
            raise CompileError(f"the host program failed (exit {done.returncode})")
        return CoreRun(_parse(done.stdout, len(x), net.n_outputs, options.dtype)[0])


# ------------------------------------------------------------------- verification


def verify_on_core(net: Network, core: str, options: Options, *, peer: Any = None, n: int = 1000,
                   domain: Any = None, data: Any = None, seed: int = 0, input_scaling: Any = None,
                   output_scaling: Any = None, opt: str = "-Os") -> tuple[Any, float]:
    """(a :class:`~mlpcodegen.harness.report.VerifyReport`, instructions per inference):
    the core's outputs against the float64 reference and ``peer`` (e.g. a model file:
    ``model.predict``) within the usual tolerances, and against the host build of the
    same C bit for bit.  ``net`` is the network with any scaling folded in."""
    from ..core.reference import evaluate_magnitude
    from .inputs import draw_inputs
    from .peers import as_peer
    from .report import (F32_ULP_BOUND, F64_REL_BOUND, MODEL_UNITS, ORIGINAL_UNITS, Comparison, VerifyReport,
                         compare, fixed_checks, floored, peer_outputs)

    options = options.for_core(core)  # the core's table storage; float64 refused where double is 32 bits
    x, (lo, hi), source = draw_inputs(net.n_inputs, n, domain, None, data, seed)
    x = x.astype(numeric_type(options.dtype).np_dtype)
    fixed = numeric_type(options.dtype).is_fixed
    if fixed:  # formats planned for the domain the inputs come from
        options = replace(options, domain=(lo, hi))
    reference, scale = evaluate_magnitude(net, x)
    with ThreadPoolExecutor(max_workers=2) as pool:
        on_core = pool.submit(run_on_core, net, x, core, options, opt)
        on_host = pool.submit(run_on_host, net, x, options)
        ran, host = on_core.result(), on_host.result()
    target = cross.core(core)
    label = f"c {options.dtype} on {core} ({target.toolchain.emulator.command} {target.machine})"
    f32 = numeric_type(options.dtype).is_float32

    def check(what: str, actual, expected, dtype: str, checked: bool = True, floor: float = 0.0) -> Comparison:
        max_abs, max_rel, max_ulp = compare(actual, expected, floored(scale, floor), dtype)
        bound = f"ulp <= {F32_ULP_BOUND:g}" if dtype != "float64" else f"rel <= {F64_REL_BOUND:g}"
        passed = (max_ulp <= F32_ULP_BOUND) if dtype != "float64" else (max_rel <= F64_REL_BOUND)
        return Comparison(what, max_abs, max_rel, max_ulp, dtype, bound if checked else "(information)",
                          passed if checked else None)

    report = VerifyReport(net.describe(), f"c (embedded, {core})", options.dtype, len(x), (lo, hi),
                          units=MODEL_UNITS if input_scaling is None else ORIGINAL_UNITS, source=source)
    if fixed:
        predicted, found = None, None
        if peer is not None:
            found = as_peer(peer)
            predicted, _ = peer_outputs(found, x.astype(np.float32), input_scaling, output_scaling)
        report.comparisons += fixed_checks(label, net, (lo, hi), ran.outputs, reference, predicted,
                                           found.label if found else "")
    else:
        report.comparisons.append(check(f"{label} vs reference (float64)", ran.outputs, reference, options.dtype))
    if peer is not None and not fixed:
        found = as_peer(peer)
        predicted, predict_dtype = peer_outputs(found, x.astype(np.float32), input_scaling, output_scaling)
        worst = "float32" if f32 or predict_dtype != "float64" else "float64"
        report.comparisons.append(check(f"{label} vs {found.label}", ran.outputs, predicted, worst,
                                        floor=found.magnitude_floor))
    differing = int(np.sum(np.any(ran.outputs.view(np.uint8).reshape(len(x), -1) !=
                                  host.outputs.view(np.uint8).reshape(len(x), -1), axis=1)))
    note = "" if not differing else f" ({differing} rows differ)"
    library = ran.extra.get("library", [])
    # With a libm call the C libraries may round differently: the bits are information then;
    # so with a soft float that is not IEEE's to the last bit (avr-libc: no subnormals).
    bound, passed = ("bit-identical", differing == 0)
    if library:
        bound, passed = f"(information: calls {', '.join(library[:3])})", None
    elif not target.ieee_float and not fixed:
        bound, passed = f"(information: {target.toolchain.compiler}'s soft float)", None
    bits = numeric_type(options.dtype).np_dtype.name  # q15: its float32 wrapper's outputs
    report.comparisons.append(Comparison(f"{label} vs host build (-ffp-contract=off){note}", *compare(
        ran.outputs, host.outputs, scale, bits), bits, bound, passed))
    return report, ran.instructions


def stated_stack(net: Network, options: Options) -> tuple[str, int]:
    """(function, bytes): the stack bound the generated file states for its predictor on
    the options' storage: NAME (float), NAME_q15 / NAME_int8 (the integer predictor of a q15 /
    int8 file: each by its own printer's bound, as the file states it)."""
    from ..backends import c, c_fixed, c_int8

    if options.dtype in c_int8.DTYPES:
        return f"{options.name}_int8", c_int8.stack_bytes(net, options.dtype, storage=options.storage)["int8"]
    if numeric_type(options.dtype).is_fixed:
        return f"{options.name}_q15", c_fixed.stack_bytes(net, options.dtype, storage=options.storage,
                                                          domain=options.domain)["q15"]
    shapes = c.CRenderer(net, dtype=options.dtype, name=options.name, unroll=options.unroll, math=options.math,
                         profile="embedded", optimize=options.optimize, storage=options.storage).shapes
    return options.name, c.embedded_stack_bytes(net, options.dtype, shapes)["one"]
