"""Command line for microcontrollers: ``mlpcodegen size``, ``verify --core`` and
``convert --core`` / ``convert --arduino``.

They build the C of the embedded profile (``--profile embedded`` is implied) for a core
of the table (:mod:`mlpcodegen.runtime.cores`: Cortex-M, RISC-V, AVR, Xtensa) with its
cross compiler and, for ``verify --core``, run it on its emulator (QEMU, simavr;
:mod:`mlpcodegen.runtime.cross`, :mod:`mlpcodegen.harness.cortex`).  ``convert --arduino
DIR`` writes an Arduino library (the Uno's C: weights in flash) with an example sketch.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import common

#: Optimisation levels ``size`` reports by default, and the one ``verify --core`` builds with.
OPT_CHOICES = ("Os", "O2", "O3", "O1")
#: Most inputs ``verify --core`` puts in an image (16 inputs: 256 KiB of flash).
MAX_CORE_ROWS = 4096


def _options(args: argparse.Namespace, net):
    from ..backends.c import check_name
    from ..harness.cortex import Options

    name = common.function_name(args, "c")
    check_name(name)
    dtype = args.dtype or "float32"
    # size plans q15 for --domain here; verify --core for the inputs it draws (harness.cortex)
    domain = common.fixed_domain(args, net.n_inputs, dtype) if args.command == "size" else None
    return Options(dtype=dtype, name=name, math=args.math, unroll=args.unroll, optimize=args.optimize,
                   domain=domain)


def require_toolchain(core: str, emulator: bool) -> None:
    """The core's compiler (and emulator) on PATH: a missing one said before any work."""
    from ..runtime import cross

    target = cross.core(core)
    cross.tool(target.toolchain.compiler)
    if emulator and target.emulated:
        cross.tool(target.toolchain.emulator.command)


def count_line(core: str, instructions: float) -> str:
    """What the core's emulator counted per inference, with how (verify --core's last line)."""
    from ..runtime.cores import core as core_entry

    emulator = core_entry(core).toolchain.emulator
    return (f"{emulator.counts} per inference on {core} (-Os, {emulator.how}; mean of the timed rows, an empty "
            f"call subtracted): {instructions:.0f}")


def add_size(sub) -> None:
    """Add the ``size`` command to the subparsers ``sub``."""
    from ..backends import get_backend

    size = sub.add_parser("size", help="flash, RAM and stack of the embedded C on microcontroller cores",
                          description="Cross-compile the embedded profile's C with each core's gcc "
                                      "(arm-none-eabi, riscv64-unknown-elf, avr, xtensa-lx106-elf) and report "
                                      "text/rodata/data/bss of the predictor alone, what math functions and "
                                      "soft-float helpers add, the stack of each function, and flash and RAM "
                                      "against the core's memory, per core and optimisation level.")
    common.add_model_options(size)
    size.add_argument("--core", nargs="+", choices=common.CORES, default=list(CORTEX_M),
                      help=f"cores to build for (default: {' '.join(CORTEX_M)})")
    size.add_argument("--opt", nargs="+", choices=OPT_CHOICES, default=["Os", "O2"],
                      help="gcc optimisation levels, without the dash (default: Os O2)")
    size.add_argument("--dtype", choices=get_backend("c").supported, default="float32",
                      help="q15: the fixed-point C (integer predictor and its float wrapper)")
    size.add_argument("--name", help="function name (default: from the model file's name)")
    size.add_argument("--domain", nargs=2, type=common.floats, metavar=("LOW", "HIGH"),
                      help="with --dtype q15 (required, unless a min/max input scaling gives it): the inputs' "
                           "range the fixed-point formats are planned for (one number for every input or one "
                           "per input, comma-separated)")
    common.add_c_options(size)
    common.add_scaling_options(size)
    common.add_calibrate_option(size)
    size.set_defaults(run=lambda args: cmd_size(args))


def cmd_size(args: argparse.Namespace) -> int:
    from ..harness.cortex import measure_sizes, size_table

    started = time.perf_counter()
    common.check_int8(args)
    if args.domain and args.dtype == "float32":
        raise common.UsageError("--domain plans fixed-point formats: it goes with --dtype q15")
    common.require_fixed_domain(args, args.dtype)
    common.function_name(args, "c")  # a bad --name: said before any work
    for core in args.core:
        require_toolchain(core, emulator=False)
    net = common.scaled(common.load(args), args)
    options = _options(args, net)
    rows = measure_sizes(net, options, args.core, [f"-{level}" for level in args.opt])
    print(size_table(net, options, rows), end="")
    print(memory_lines(net, options, rows), end="")
    print(f"({time.perf_counter() - started:.1f} s)", file=sys.stderr)
    return 0


def verify_on_core(args: argparse.Namespace, net, domain) -> int:
    """``mlpcodegen verify --core CORE``: run the embedded C on an emulated core; exit code."""
    from ..harness.cortex import verify_on_core as run

    if args.target != "c":
        raise common.UsageError("--core runs the C target: drop --target or use --target c")
    if args.n > MAX_CORE_ROWS:
        raise common.UsageError(f"--core runs at most {MAX_CORE_ROWS} inputs (-n): they are compiled into the "
                                "image, with the outputs printed through semihosting")
    from ..runtime.cores import core as core_entry

    if not core_entry(args.core).emulated:
        raise common.UsageError(f"{args.core} cannot be run here ({core_entry(args.core).runs_on}): "
                                f"use mlpcodegen size --core {args.core}")
    require_toolchain(args.core, emulator=True)  # a missing toolchain: said before any work
    inputs, outputs = common.scalings(args)
    scaled = common.scaled(net, args)
    options = _options(args, scaled)
    options.for_core(args.core)  # e.g. float64 on AVR: refused before the peer is loaded
    peer = _peer(args)
    report, instructions = run(scaled, args.core, options, peer=peer, n=args.n, domain=domain, data=args.data,
                               seed=args.seed, input_scaling=inputs, output_scaling=outputs)
    print(report.table(), end="")
    print(count_line(args.core, instructions))
    if not report.ok:
        print("verification FAILED: an error exceeds its bound", file=sys.stderr)
        return 1
    return 0


def _peer(args: argparse.Namespace):
    """The model file's own framework, for every format (Keras ``model.predict``, ONNX
    Runtime, ...), read under the ``--max-size`` limits."""
    from ..frontends import file_format
    from ..harness.peers import as_peer
    from ..core.limits import DEFAULT_LIMITS, ReadLimits

    size = getattr(args, "max_size", None)
    limits = DEFAULT_LIMITS if size is None else ReadLimits.for_size(size)
    if file_format(args.model).name == "keras":
        common.import_tensorflow_quietly()
    return as_peer(args.model, weights=args.weights, limits=limits)


#: The cores ``size`` builds for by default (those of issue 12; the others on request).
CORTEX_M = ("m0plus", "m4f", "m7")


def memory_lines(net, options, rows) -> str:
    """Per core and level: flash (the predictor and the library code it links) and RAM
    (data + bss + the stated stack bound) against the core's memory; no emulator said."""
    from ..harness.cortex import stated_stack
    from ..runtime.cores import core as core_entry

    lines = []
    for row in rows:
        target = core_entry(row.core)
        flash = row.predictor + sum(row.math.values()) + sum(row.soft_float.values())
        function, stack = stated_stack(net, options.for_core(row.core))
        ram = row.data + row.bss + stack
        emulator = "" if target.emulated else "; no emulator: sizes only"
        emulator += f"; {target.toolchain.note}" if target.toolchain.note else ""
        lines.append(f"{row.core} {row.opt} memory: flash {flash:,} of {target.flash:,} B (predictor {row.predictor:,}"
                     f" + library {flash - row.predictor:,}); RAM {ram:,} of {target.ram:,} B (data {row.data} + bss "
                     f"{row.bss} + stated stack of {function} {stack}; stack: {target.stack}){emulator}")
    return "\n".join(lines) + "\n"


def convert_for_core(args: argparse.Namespace, net, name: str, dtype: str) -> int:
    """``convert --core CORE`` (the embedded C for that core: its table storage) and
    ``convert --arduino DIR`` (an Arduino library for the Uno: library.properties,
    library.json, src/NAME.h, src/NAME.c, examples/NAME/NAME.ino)."""
    from ..core._files import check_outputs, write_all
    from ..backends.c import check_name
    from ..harness.cortex import Options

    if args.target != "c":
        raise common.UsageError("--core and --arduino write C: drop --target or use --target c")
    core = args.core or "atmega328p"
    check_name(name)
    domain = common.given_domain(args, net.n_inputs)
    options = Options(dtype=dtype, name=name, math=args.math, unroll=args.unroll, optimize=args.optimize,
                      domain=domain).for_core(core)
    source, header = options.source(net)
    if args.arduino:
        files = arduino_library(net, options, Path(args.arduino), source, header, core)
        common.refuse_overwriting_inputs(args, list(files))
        check_outputs(list(files), mkdir=True)
        written = write_all(files, mkdir=True)
        print(f"{net.describe()} -> Arduino library {args.arduino} ({len(written)} files, {core})", file=sys.stderr)
        return 0
    if args.output in (None, "-"):
        sys.stdout.write(source)
        return 0
    files = {args.output: source}
    if args.header:
        files[common.header_path(args)] = header
    written = write_all(files, mkdir=args.mkdir)
    print(f"{net.describe()} -> {', '.join(map(str, written))} ({core})", file=sys.stderr)
    return 0


#: Rows of the example sketch (inputs in the model's domain, printed with their outputs).
ARDUINO_ROWS = 4


def example_inputs(net, domain=None) -> "numpy.ndarray":
    """The example sketch's inputs: evenly spread over the domain ([-1, 1] by default)."""
    import numpy as np

    lo, hi = domain or ([-1.0] * net.n_inputs, [1.0] * net.n_inputs)
    t = np.linspace(0.0, 1.0, ARDUINO_ROWS)[:, None]
    phase = (np.arange(net.n_inputs)[None, :] * 0.37) % 1.0
    spread = np.where(t + phase > 1.0, t + phase - 1.0, t + phase)  # the first input from LOW to HIGH
    return (np.asarray(lo) + spread * (np.asarray(hi) - np.asarray(lo))).astype(np.float32)


def arduino_library(net, options, folder: Path, source: str, header: str, core: str) -> dict:
    """The files of an Arduino library (1.5 layout) and a PlatformIO manifest."""
    from ..backends._text import quote_name
    from ..backends.c import literal

    name = options.name
    rows = example_inputs(net, options.domain)
    described = quote_name(net.describe())
    table = ",\n".join("    {" + ", ".join(literal(float(v), "float32") for v in row) + "}" for row in rows)
    sketch = f"""/* generated by mlpcodegen — do not edit
 * Example of the {name} library: a few predictions of {described} over Serial (9600 baud):
 * each output as a number and as the bits of its float (hex), to compare with a host build. */
#include <{name}.h>

static const float inputs[{len(rows)}][{net.n_inputs}] = {{
{table}
}};

void setup()
{{
    float y[{net.n_outputs}];
    unsigned r, j;
    Serial.begin(9600);
    for (r = 0; r < {len(rows)}u; ++r) {{
        {name}(inputs[r], y);
        for (j = 0; j < {net.n_outputs}u; ++j) {{
            union {{ float f; uint32_t u; }} bits;
            bits.f = y[j];
            Serial.print(y[j], 6);
            Serial.print(" 0x");
            Serial.print(bits.u, HEX);
            Serial.print(j + 1u < {net.n_outputs}u ? " " : "\\n");
        }}
    }}
    Serial.flush();
#if defined(MLPCODEGEN_STOP) /* for an emulator run: sleep with interrupts off (simavr then quits) */
    cli();
    SMCR = (uint8_t)(1u << SE);
    __asm__ volatile("sleep");
#endif
}}

void loop()
{{
}}
"""
    version = _version()
    properties = "\n".join([f"name={name}", f"version={version}", "author=mlpcodegen",
                             "maintainer=mlpcodegen",
                             f"sentence=The network {described} as C (generated by mlpcodegen).",
                             f"paragraph=Weights in flash (PROGMEM on AVR); {options.dtype}; no allocation.",
                             "category=Data Processing", "url=https://pypi.org/project/mlpcodegen/",
                             "architectures=*", f"includes={name}.h", ""])
    import json

    manifest = json.dumps({"name": name, "version": version, "description": f"The network {described} as C "
                           "(generated by mlpcodegen)", "keywords": ["neural network", "mlp"],
                           "frameworks": "*", "platforms": "*", "build": {"srcDir": "src"},
                           "examples": [f"examples/{name}/{name}.ino"]}, indent=2) + "\n"
    return {folder / "library.properties": properties, folder / "library.json": manifest,
            folder / "src" / f"{name}.h": header, folder / "src" / f"{name}.c": source,
            folder / "examples" / name / f"{name}.ino": sketch}


def _version() -> str:
    """Arduino wants MAJOR.MINOR.PATCH: mlpcodegen's version, its first three numbers."""
    import re

    from .. import __version__

    numbers = re.findall(r"\d+", __version__)[:3]
    return ".".join(numbers + ["0"] * (3 - len(numbers)))
