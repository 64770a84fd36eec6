"""Flash bytes and instructions per inference on Cortex-M4F, side by side (issue 12), then a
section per other core (issue 26: AVR ATmega328P on simavr, RISC-V rv32imc/rv32imafc on
QEMU virt, Xtensa lx106 sizes only) against emlearn with the same compiler and flags.

    python bench/embedded.py [--core m4f] [--opt -Os] [--cores atmega328p rv32imc ...] [--out bench/EMBEDDED.md]

For seed 1-3-2-1 tanh (generated/seed/seed.keras), sine 1-16-16-1 relu and cls
16-64-64-10 softmax (fixed-seed weights: sizes and instruction counts depend on the
shapes, not on training), every variant is built with arm-none-eabi-gcc at the same flags
(mlpcodegen.runtime.cross.BASE_FLAGS, -Os by default) and run on QEMU (-icount shift=0)
through the same driver: mlpcodegen's embedded profile (optimize size and speed), its
desktop profile's one-sample function, and emlearn (its "loadable" C, eml_net.h, from
the installed Python package).  Predictor bytes are the predictor's own object file
(code, constants and weights; mutable buffers, bss, apart): the one-sample function and
what it calls, not NAME_scalar (a wrapper the linker drops when unused) nor the desktop
C's NAME_batch and its helpers.
onnx2c does not install here: its figures are quoted from issue 12 (same compiler and
method), marked as quoted.
"""
from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from mlpcodegen import load  # noqa: E402
from mlpcodegen.backends import c_int8  # noqa: E402
from mlpcodegen.backends.c import CRenderer  # noqa: E402
from mlpcodegen.harness import cortex  # noqa: E402
from mlpcodegen.core.ir import Network  # noqa: E402
from mlpcodegen.runtime import cross  # noqa: E402

from bench.native_call import random_net  # noqa: E402  (the benches' one way to make a network)

#: onnx2c's figures quoted from issue 12 (M4F -Os): bytes, instructions.
ONNX2C = {"sine 1-16-16-1": (1544, 2781), "cls 16-64-64-10": (24008, 44085)}
#: Targets of issue 12 as (bytes factor, instructions factor) of onnx2c's figures.
TARGETS = {("size", "sine 1-16-16-1"): (0.9, 0.7), ("size", "cls 16-64-64-10"): (1.0, 0.75),
           ("speed", "sine 1-16-16-1"): (None, 0.3), ("speed", "cls 16-64-64-10"): (None, 0.4)}
_DESKTOP_ONLY = ("_batch", "_block", "_dense", "_dense_rows")
_EMLEARN_ACTIVATIONS = {"linear": "identity", "relu": "relu", "tanh": "tanh", "sigmoid": "logistic",
                        "softmax": "softmax"}


def models() -> dict[str, Network]:
    return {"seed 1-3-2-1": load(REPO / "generated/seed/seed.keras"),
            "sine 1-16-16-1": random_net([1, 16, 16, 1], ["relu", "relu", "linear"], 1),
            "cls 16-64-64-10": random_net([16, 64, 64, 10], ["relu", "relu", "softmax"], 2)}


def _bytes(row: cortex.SizeRow, desktop: bool) -> int:
    """Code of the one-sample function and what it calls (not NAME_scalar, a wrapper the
    linker drops when unused, nor the desktop batch path) plus constants and weights."""
    skipped = _DESKTOP_ONLY + ("_vexpf", "_vexpm1f", "_vtanhf", "_vsigmoidf") if desktop else ()
    dropped = sum(size for name, (size, _) in row.functions.items() if name.endswith(skipped + ("_scalar",)))
    return row.predictor - dropped


def mlpcodegen_row(net: Network, x: np.ndarray, core: str, opt: str, options: cortex.Options) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source = cortex.write_predictor(net, options, folder)
        timed, repeat = cortex.write_table(x, options.dtype, folder)
        size = cortex.measure_source(folder, source, cross.core(core), opt)
        run = cortex.run_prepared(folder, [source], core, opt, len(x), net.n_outputs, options.dtype, timed * repeat)
    stack = size.functions.get(options.name, (0, 0))[1]
    form = "loops" if options.profile == "desktop" else CRenderer(
        net, name=options.name, profile="embedded", optimize=options.optimize, math=options.math).shapes[0].label
    return {"bytes": _bytes(size, options.profile == "desktop"), "bss": size.bss, "instructions": run.instructions,
            "stack": stack, "outputs": run.outputs, "library": sum(size.math.values()), "rodata": size.rodata,
            "form": form}


def _write_emlearn(net: Network, folder: Path) -> None:
    """emlearn's loadable C for the network's weights (emlnet.c, with an emlnet(x, y) wrapper
    around eml_net_regress), the driver's mlpc_net.h and emlearn's headers, into ``folder``."""
    import emlearn
    from emlearn.net import c_generate_net_loadable

    activations = [_EMLEARN_ACTIVATIONS[layer.activation.name] for layer in net.layers]
    code = c_generate_net_loadable(activations, [layer.kernel.astype(np.float32) for layer in net.layers],
                                   [layer.bias.astype(np.float32) for layer in net.layers], prefix="emlnet_model")
    (folder / "emlnet.h").write_text("void emlnet(const float *x, float *y);\n")
    (folder / "emlnet.c").write_text(code + f"""
#include "emlnet.h"
void emlnet(const float *x, float *y)
{{
    (void)eml_net_regress(&emlnet_model, x, {net.n_inputs}, y, {net.n_outputs});
}}
""")
    (folder / "mlpc_net.h").write_text('#include "emlnet.h"\n#define MLPC_T float\n#define MLPC_NAME emlnet\n'
                                       f"#define MLPC_INPUTS {net.n_inputs}u\n#define MLPC_OUTPUTS {net.n_outputs}u\n")
    for header in Path(emlearn.__file__).parent.glob("eml_*.h"):  # found through the folder's -I
        shutil.copy(header, folder / header.name)


def emlearn_row(net: Network, x: np.ndarray, core: str, opt: str) -> dict:
    """emlearn's loadable C for the same weights, called through eml_net_regress."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _write_emlearn(net, folder)
        timed, repeat = cortex.write_table(x, "float32", folder)
        size = cortex.measure_source(folder, folder / "emlnet.c", cross.core(core), opt)
        run = cortex.run_prepared(folder, [folder / "emlnet.c"], core, opt, len(x), net.n_outputs, "float32",
                                  timed * repeat)
    return {"bytes": size.predictor, "bss": size.bss, "instructions": run.instructions,
            "stack": max((s for _, s in size.functions.values()), default=0), "outputs": run.outputs,
            "library": sum(size.math.values())}


def measure(core: str, opt: str) -> list[tuple[str, str, dict]]:
    results = []
    for model, net in models().items():
        x = np.random.default_rng(0).uniform(-1, 1, (64, net.n_inputs)).astype(np.float32)
        for label, options in (("mlpcodegen embedded, optimize size", cortex.Options(name="net", optimize="size")),
                               ("mlpcodegen embedded, optimize size, --math libm (exp outside, as onnx2c's)",
                                cortex.Options(name="net", optimize="size", math="libm")),
                               ("mlpcodegen embedded, optimize speed", cortex.Options(name="net", optimize="speed")),
                               ("mlpcodegen desktop (default, one-sample function)",
                                cortex.Options(name="net", profile="desktop"))):
            results.append((model, label, mlpcodegen_row(net, x, core, opt, options)))
        if all(layer.activation.name in _EMLEARN_ACTIVATIONS and layer.bias is not None for layer in net.layers):
            results.append((model, "emlearn " + _emlearn_version(), emlearn_row(net, x, core, opt)))
    return results


def _emlearn_version() -> str:
    import emlearn

    return getattr(emlearn, "__version__", "")


def report(results, core: str, opt: str, seconds: float) -> str:
    lines = [f"# Embedded: flash and instructions per inference ({core}, {opt})", "",
             "Written by `python bench/embedded.py` (arm-none-eabi-gcc "
             f"{' '.join(cross.BASE_FLAGS)} {' '.join(cross.core(core).flags)} {opt}; QEMU "
             f"{cross.core(core).machine}, -icount shift=0; {seconds:.0f} s). Predictor bytes: its object file's code, "
             "constants and weights, bss apart; the one-sample function and what it calls, not NAME_scalar nor the desktop "
             "batch path. Instructions: mean "
             "over 64 random inputs in [-1, 1], an empty call subtracted. onnx2c rows are **quoted from issue 12** "
             "(same compiler, flags and method), not measured here.", "",
             "| model | implementation | predictor bytes | bss | library bytes linked | instructions / inference "
             "| stack of the predictor | vs onnx2c (bytes, instructions) |",
             "|---|---|---|---|---|---|---|---|"]
    for model, label, row in results:
        ratio = ""
        if model in ONNX2C:
            b, i = ONNX2C[model]
            ratio = f"{row['bytes'] / b:.2f}x, {row['instructions'] / i:.2f}x"
        lines.append(f"| {model} | {label} | {row['bytes']:,} | {row['bss']:,} | {row['library']:,} | "
                     f"{row['instructions']:,.0f} | {row['stack']:,} | {ratio} |")
        if label.startswith("mlpcodegen desktop") and model in ONNX2C:
            b, i = ONNX2C[model]
            lines.append(f"| {model} | onnx2c (quoted from issue 12) | {b:,} | | | {i:,} | | 1.00x, 1.00x |")
    lines += ["", "## Targets of issue 12", "", "| profile | model | target | measured | met |", "|---|---|---|---|---|"]
    for (optimize, model), (fb, fi) in TARGETS.items():
        row = next(r for m, label, r in results if m == model and label.endswith(f"optimize {optimize}"))
        b, i = ONNX2C[model]
        libm = next(r for m, label, r in results if m == model and "libm" in label)
        checks = [("bytes", fb, row["bytes"], b), ("instructions", fi, row["instructions"], i)]
        for what, factor, value, base in checks:
            if factor is None:
                continue
            lines.append(f"| {optimize} | {model} | {what} <= {factor} x {base:,} = {factor * base:,.0f} | "
                         f"{value:,.0f} ({value / base:.2f}x) | {'yes' if value <= factor * base else 'no'} |")
            if optimize == "size" and what == "bytes":
                value = libm["bytes"]
                lines.append(f"| size, --math libm | {model} | {what} <= {factor} x {base:,} = {factor * base:,.0f} | "
                             f"{value:,.0f} ({value / base:.2f}x) | {'yes' if value <= factor * base else 'no'} |")
    for optimize in ("size", "speed"):
        row = next(r for m, label, r in results if m == "cls 16-64-64-10" and label.endswith(f"optimize {optimize}"))
        lines.append(f"| {optimize} | cls 16-64-64-10 | stack <= 1,228 B | {row['stack']:,} B | "
                     f"{'yes' if row['stack'] <= 1228 else 'no'} |")
    lines += ["", "## Optimize size: bytes per part", "",
              "Read-only data: the weights (biases included) and, in the table form, the layer table; code: NAME "
              "itself (literal pools and inlined fast-math functions included). The code budget is what the "
              "bytes target leaves after the read-only data.", "",
              "| model | form | read-only data | code of NAME | bytes | target | code budget | over by |",
              "|---|---|---|---|---|---|---|---|"]
    for model, label, row in results:
        if model in ONNX2C and label == "mlpcodegen embedded, optimize size":
            target = int(TARGETS[("size", model)][0] * ONNX2C[model][0])
            code = row["bytes"] - row["rodata"]
            lines.append(f"| {model} | {row['form']} | {row['rodata']:,} | {code:,} | {row['bytes']:,} | {target:,} | "
                         f"{target - row['rodata']:,} | {max(0, row['bytes'] - target):,} |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------- other cores (issue 26)

#: The cores with a section of their own (the table of mlpcodegen.runtime.cores).
OTHER_CORES = ("atmega328p", "rv32imc", "rv32imafc", "lx106")
#: Issue 26's targets against emlearn (bytes factor, count factor), on these cores and models.
EMLEARN_TARGETS = (0.9, 0.7)
EMLEARN_TARGET_CORES = ("atmega328p", "rv32imc")
#: The Uno: sine q15 (its integer predictor) <= 1.5 KB flash, <= 120 B RAM, >= 5x fewer cycles than float32.
UNO_SINE = (1536, 120, 5.0)


def _failure(error: Exception, core: str) -> str:
    """Why a build failed, in one cell: on AVR a RAM overflow as the bytes data + bss need
    (from the linker's end address of the section: RAM starts at 0x800100)."""
    text = str(error)
    found = re.findall(r"address (0x80[0-9a-f]{4}) of \S+ section `\.(?:data|bss)'", text)
    ends = [int(end, 16) - 0x800100 for end in found]
    if ends:
        return (f"does not fit: data + bss need {max(ends):,} B of the {cross.core(core).ram:,} B of RAM (its const "
                "tables are copied to RAM at start-up)")
    parts = text.split(" | ")
    reason = next((part for part in parts if "error" in part or "will not fit" in part or "not within" in part),
                  parts[0])
    return "does not build: " + reason.strip()[:200]


def _core_row(core: str, size: cortex.SizeRow, run, ram_stack: int, skipped_code: int = 0) -> dict:
    library = sum(size.math.values()) + sum(size.soft_float.values())
    predictor = size.predictor - skipped_code
    return {"predictor": predictor, "library": library, "flash": predictor + library,
            "ram": size.data + size.bss + ram_stack, "stack": ram_stack,
            "count": None if run is None else run.instructions, "outputs": None if run is None else run.outputs}


def _mlpcodegen_core(net: Network, x: np.ndarray, core: str, opt: str, options: cortex.Options) -> dict:
    options = options.for_core(core)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source = cortex.write_predictor(net, options, folder)
        timed, repeat = cortex.write_table(x, options.dtype, folder)
        size = cortex.measure_source(folder, source, cross.core(core), opt)
        run = cortex.run_prepared(folder, [source], core, opt, len(x), net.n_outputs, options.dtype,
                                  timed * repeat, timeout=900) if cross.core(core).emulated else None
    if options.dtype == "int8":  # the float wrapper's bound, as the file states it
        stack = c_int8.stack_bytes(net, "int8", storage=options.storage)["one"]
    else:
        stack = cortex.stated_stack(net, options)[1] if options.dtype != "q15" else \
            cortex.stated_stack(net, options)[1] + 2 * (net.n_inputs + net.n_outputs) + 40  # the float wrapper's
    skipped = size.functions.get(f"{options.name}_scalar", (0, 0))[0]
    return _core_row(core, size, run, stack, skipped)


def _q15_integer_core(net: Network, x: np.ndarray, core: str, opt: str, options: cortex.Options) -> dict:
    """The integer predictor NAME_q15 alone (int16 codes in and out), as an integer-input
    program calls it: the float wrapper's code is not counted (the linker drops it)."""
    from mlpcodegen.core.fixed import plan, quantise_inputs

    options = options.for_core(core)
    fixed = plan(net, options.domain)
    codes = quantise_inputs(fixed, x.astype(np.float64))
    out = "int32" if fixed.softmax else "int16"  # a softmax network's NAME_q15 writes int32 logits
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source = cortex.write_predictor(net, options, folder)
        (folder / "mlpc_net.h").write_text(f'#include "{options.name}.h"\n#define MLPC_T int16_t\n'
                                           f"#define MLPC_Y_T {out}_t\n"
                                           f"#define MLPC_NAME {options.name}_q15\n#define MLPC_INPUTS {net.n_inputs}u\n"
                                           f"#define MLPC_OUTPUTS {net.n_outputs}u\n")
        timed, repeat = min(len(x), 64), max(1, -(-64 // min(len(x), 64)))
        rows = [" {" + ", ".join(str(int(v)) for v in row) + "}" for row in codes]
        (folder / "mlpc_table.h").write_text("\n".join([
            f"#define MLPC_ROWS {len(x)}u", f"#define MLPC_TIMED {timed}u", f"#define MLPC_REPEAT {repeat}u",
            f"static const int16_t mlpc_x[{len(x)}][MLPC_INPUTS] MLPC_TABLE_STORAGE = {{", ",\n".join(rows), "};", ""]))
        size = cortex.measure_source(folder, source, cross.core(core), opt)
        run = cortex.run_prepared(folder, [source], core, opt, len(x), net.n_outputs, out, timed * repeat,
                                  timeout=900) if cross.core(core).emulated else None
    wrapper = sum(size.functions.get(f"{options.name}{suffix}", (0, 0))[0] for suffix in ("", "_quantise", "_scalar"))
    return _core_row(core, size, run, cortex.stated_stack(net, options)[1], wrapper)


def _emlearn_core(net: Network, x: np.ndarray, core: str, opt: str) -> dict:
    """emlearn's loadable C, same compiler and flags; its weights are plain const arrays
    (on AVR copied to RAM at start-up: .data)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _write_emlearn(net, folder)
        timed, repeat = cortex.write_table(x, "float32", folder)
        try:
            size = cortex.measure_source(folder, folder / "emlnet.c", cross.core(core), opt)
        except Exception as error:  # e.g. its weights overflow the Uno's RAM
            return {"error": _failure(error, core)}
        try:
            run = cortex.run_prepared(folder, [folder / "emlnet.c"], core, opt, len(x), net.n_outputs, "float32",
                                      timed * repeat, timeout=900) if cross.core(core).emulated else None
        except Exception as error:
            run = None
            size = size
            note = str(error)[:160]
        else:
            note = ""
    stack = max((s for _, s in size.functions.values()), default=0)
    row = _core_row(core, size, run, stack)
    row["note"] = note
    return row


def core_variants(model: str) -> list[tuple[str, object]]:
    variants = [("mlpcodegen float32, optimize size", cortex.Options(name="net", optimize="size")),
                ("mlpcodegen float32, optimize speed", cortex.Options(name="net", optimize="speed")),
                ("mlpcodegen q15 (float API: NAME)", cortex.Options(name="net", dtype="q15", domain=(-1, 1))),
                ("mlpcodegen q15 (integer API: NAME_q15)", cortex.Options(name="net", dtype="q15", domain=(-1, 1))),
                (INT8_LABEL, cortex.Options(name="net", dtype="int8"))]
    return variants


#: int8 rows: the float network quantised by mlpcodegen.core.ptq.calibrate on 256 other inputs in [-1, 1]
#: (per-channel weights, as TFLite's converter); NAME quantises, runs NAME_int8, dequantises.
INT8_LABEL = "mlpcodegen int8 (calibrated; float API: NAME)"


def _calibrated(net: Network):
    from mlpcodegen.core.ptq import calibrate

    return calibrate(net, np.random.default_rng(1).uniform(-1, 1, (256, net.n_inputs)))


def measure_core(core: str, opt: str) -> list[tuple[str, str, dict]]:
    results = []
    nets = models()
    for model in ("sine 1-16-16-1", "cls 16-64-64-10"):
        net = nets[model]
        x = np.random.default_rng(0).uniform(-1, 1, (16, net.n_inputs)).astype(np.float32)
        for label, options in core_variants(model):
            measure = _q15_integer_core if "integer" in label else _mlpcodegen_core
            try:
                results.append((model, label, measure(_calibrated(net) if options.dtype == "int8" else net, x, core,
                                                      opt, options)))
            except Exception as error:  # e.g. does not fit the core's flash
                results.append((model, label, {"error": _failure(error, core)}))
        results.append((model, "emlearn " + _emlearn_version() + " (float32)", _emlearn_core(net, x, core, opt)))
    return results


def _fmt(value, digits: int = 0) -> str:
    return "" if value is None else f"{value:,.{digits}f}"


def core_section(core: str, opt: str, results, seconds: float) -> list[str]:
    target = cross.core(core)
    family = target.toolchain
    emulator = family.emulator
    counts = emulator.counts if target.emulated else "instructions"
    how = f"{emulator.how} ({family.emulator.command} {target.machine})" if target.emulated else \
        "no emulator: sizes only"
    lines = [f"## {target.title}: `{core}`", "",
             f"{family.compiler} {' '.join(family.compile_flags()).replace(str(REPO) + '/', '')} {' '.join(target.flags)} "
             f"{opt}; {how}; "
             f"{seconds:.0f} s. Flash: the predictor's object (code, constants, weights; NAME_scalar and, for the integer "
             "API, the float wrapper not counted) plus the library code its link pulls in (soft float, libm, integer "
             f"helpers). RAM: data + bss + the stack the file states (emlearn: its measured frame). {counts.capitalize()}"
             " per inference: mean over 64 calls on 16 random inputs in [-1, 1], an empty call subtracted."
             + (f" {family.note}." if family.note else "")
             + (" Tables here are PROGMEM (flash, read with pgm_read_*); emlearn's weights are plain const arrays, "
                "which avr-gcc copies to RAM at start-up (data)." if target.storage == "progmem" else ""), "",
             f"| model | implementation | flash bytes (predictor + library) | RAM bytes | {counts} / inference | "
             "vs emlearn (flash, count) |", "|---|---|---|---|---|---|"]
    for model, label, row in results:
        if "error" in row:
            lines.append(f"| {model} | {label} | {row['error']} | | | |")
            continue
        base = next((r for m, lab, r in results if m == model and lab.startswith("emlearn") and "error" not in r),
                    None)
        ratio = ""
        if base and not label.startswith("emlearn"):
            ratio = f"{row['flash'] / base['flash']:.2f}x"
            if row["count"] and base.get("count"):
                ratio += f", {row['count'] / base['count']:.2f}x"
        lines.append(f"| {model} | {label} | {row['flash']:,} ({row['predictor']:,} + {row['library']:,}) | "
                     f"{row['ram']:,} | {_fmt(row['count'])} | {ratio} |")
    return lines


def _short(prefix: str) -> str:
    """A variant's label prefix without "mlpcodegen ", its parenthesis closed."""
    text = "int8 (float API)" if prefix == INT8_LABEL else prefix[len("mlpcodegen "):]
    return text + ")" if text.count("(") > text.count(")") else text


def core_targets(all_results: dict) -> list[str]:
    lines = ["## Targets of issue 26", "", "| core | model | target | measured | met |", "|---|---|---|---|---|"]

    def find(core, model, prefix):
        return next((r for m, label, r in all_results.get(core, []) if m == model and label.startswith(prefix)
                     and "error" not in r), None)

    uno = "atmega328p"
    if uno in all_results:
        q15 = find(uno, "sine 1-16-16-1", "mlpcodegen q15 (integer")
        # the fastest float32 build that runs (both profiles are in the core's table)
        builds = [(row["count"], profile) for profile in ("size", "speed")
                  for row in [find(uno, "sine 1-16-16-1", f"mlpcodegen float32, optimize {profile}")]
                  if row and row["count"]]
        f32 = {"count": min(builds)[0], "profile": min(builds)[1]} if builds else None
        flash, ram, speed = UNO_SINE
        if q15:
            lines.append(f"| {uno} | sine 1-16-16-1 q15 (NAME_q15) | flash <= {flash:,} B | {q15['flash']:,} B | "
                         f"{'yes' if q15['flash'] <= flash else 'no'} |")
            lines.append(f"| {uno} | sine 1-16-16-1 q15 (NAME_q15) | RAM <= {ram} B | {q15['ram']:,} B | "
                         f"{'yes' if q15['ram'] <= ram else 'no'} |")
        if q15 and f32 and q15["count"]:
            factor = f32["count"] / q15["count"]
            lines.append(f"| {uno} | sine 1-16-16-1 q15 (NAME_q15) | >= {speed:g}x fewer cycles than the fastest "
                         f"float32 (optimize {f32['profile']}: {f32['count']:,.0f}) | {q15['count']:,.0f} "
                         f"({factor:.2f}x) | {'yes' if factor >= speed else 'no'} |")
        qf = find(uno, "sine 1-16-16-1", "mlpcodegen q15 (float API")
        if qf and f32 and qf["count"]:
            factor = f32["count"] / qf["count"]
            lines.append(f"| {uno} | sine 1-16-16-1 q15 (float API NAME) | >= {speed:g}x fewer cycles than the "
                         f"fastest float32 (optimize {f32['profile']}: {f32['count']:,.0f}) | {qf['count']:,.0f} "
                         f"({factor:.2f}x) | {'yes' if factor >= speed else 'no'} |")
        for prefix in ("mlpcodegen q15 (float API", "mlpcodegen q15 (integer API", INT8_LABEL):
            cls = next((r for m, label, r in all_results.get(uno, []) if m == "cls 16-64-64-10"
                        and label.startswith(prefix)), None)
            what = _short(prefix)
            if cls is None:
                continue
            if "error" in cls:
                lines.append(f"| {uno} | cls 16-64-64-10 {what} | fits the Uno: flash <= 32,768 B, RAM <= 2,048 B | "
                             f"{cls['error']} | no |")
                continue
            fits = cls["flash"] <= 32 * 1024 and cls["ram"] <= 2 * 1024
            lines.append(f"| {uno} | cls 16-64-64-10 {what} | fits the Uno: flash <= 32,768 B, RAM <= 2,048 B | "
                         f"{cls['flash']:,} B, {cls['ram']:,} B | {'yes' if fits else 'no'} |")
    fb, fc = EMLEARN_TARGETS
    for core in EMLEARN_TARGET_CORES:
        for model in ("sine 1-16-16-1", "cls 16-64-64-10"):
            base = find(core, model, "emlearn")
            failed = next((r["error"] for m, label, r in all_results.get(core, []) if m == model
                           and label.startswith("emlearn") and "error" in r), "it does not build or run here")
            for prefix in ("mlpcodegen float32, optimize size", "mlpcodegen float32, optimize speed",
                           "mlpcodegen q15 (float API"):
                row = find(core, model, prefix)
                if row is None:
                    continue
                if base is None:
                    lines.append(f"| {core} | {model} {_short(prefix)} | <= {fb}x emlearn's bytes, <= {fc}x its count | "
                                 f"emlearn: {failed} | n/a |")
                    continue
                b = row["flash"] / base["flash"]
                lines.append(f"| {core} | {model} {_short(prefix)} | bytes <= {fb}x emlearn ({base['flash']:,}) | "
                             f"{row['flash']:,} ({b:.2f}x) | {'yes' if b <= fb else 'no'} |")
                if row["count"] and base.get("count"):
                    c = row["count"] / base["count"]
                    lines.append(f"| {core} | {model} {_short(prefix)} | count <= {fc}x emlearn ({base['count']:,.0f}) | "
                                 f"{row['count']:,.0f} ({c:.2f}x) | {'yes' if c <= fc else 'no'} |")
    return lines + ["", "Without an FPU a float32 inference is the soft-float library's multiply-adds (two calls each, "
                    "~100-300 cycles): with the same number of them mlpcodegen took 0.92-0.96x emlearn's count. On "
                    "these cores (no FPU: AVR, rv32imc, Cortex-M0+, lx106) its float32 loops skip the products of "
                    "zero inputs (after a ReLU: 52% and 70% of the sine's hidden activations on these inputs, 51% "
                    "and 46% of cls's), exactly (finite weights: a + w * (+-0) is a unless a is zero; only the sign "
                    "of an exactly-zero sum may differ, bit-identical to the host build of the same C: "
                    "backends/c_softfloat.py); on rv32imc (and Cortex-M0+) the remaining products are IEEE multiplies "
                    "done in integers where operands and product are normal (NAME_mul: 3 million operand pairs equal "
                    "the host's multiply, tests/test_cores.py), the library's __mulsf3 otherwise. The count "
                    "therefore depends on the inputs (the fraction of zero activations), unlike emlearn's; with no "
                    "zero at all the skipping costs a test per product (NAME_mul still saves on rv32imc). Speed on "
                    "these cores: loops (a call dominates a loop step; written-out layers cannot skip), one unit a "
                    "pass on AVR, four elsewhere. The Uno's q15 target (>= 5x fewer cycles than float32) is taken "
                    "against the faster of its two float32 builds (both skip zeros). On AVR the q15 layers after a "
                    "ReLU multiply their nonzero inputs only, exactly (an int16 zero adds nothing; every partial sum "
                    "stays within the plan's int32 bound): the nonzero outputs are packed as (byte offset, code) and "
                    "each row's sum walks them in assembly (weights read with lpm at the offset, four MULs a product, "
                    "the sum in registers), and a ReLU's sum is shifted as unsigned; the output codes equal "
                    "fixed.run_codes bit for bit (tests/test_cores.py); int64 sums (cls) are added in 40 bits in the "
                    "loop. int8 keeps every table in flash on AVR (PROGMEM, pgm_read_*), so cls 16-64-64-10 in int8 "
                    "fits the Uno; a row's sum is one MULS a weight in assembly, but LiteRT's requantisation is a "
                    "32 x 32 -> 64-bit product per unit (a library call on AVR) and the int8 file has no zero "
                    "skipping (a ReLU's zero is the output zero point, not the code 0), which is why int8 is slower "
                    "than q15 on AVR."]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--core", default="m4f", choices=sorted(cross.CORES))
    parser.add_argument("--opt", default="-Os")
    parser.add_argument("--cores", nargs="*", default=list(OTHER_CORES), choices=OTHER_CORES,
                        help="cores with a section of their own (default: all; none: the Cortex-M report only)")
    parser.add_argument("--out", default=str(REPO / "bench" / "EMBEDDED.md"))
    args = parser.parse_args()
    started = time.perf_counter()
    results = measure(args.core, args.opt)
    text = report(results, args.core, args.opt, time.perf_counter() - started)
    sections, per_core = [], {}
    for core in args.cores:
        began = time.perf_counter()
        per_core[core] = measure_core(core, args.opt)
        sections += [""] + core_section(core, args.opt, per_core[core], time.perf_counter() - began)
    if per_core:
        text += "\n".join(sections + [""] + core_targets(per_core)) + "\n"
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
