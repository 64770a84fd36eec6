"""Flash bytes and instructions per inference on Cortex-M4F, side by side (issue 12).

    python bench/embedded.py [--core m4f] [--opt -Os] [--out bench/EMBEDDED.md]

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
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from mlpcodegen import load  # noqa: E402
from mlpcodegen.backends.c import CRenderer  # noqa: E402
from mlpcodegen.harness import cortex  # noqa: E402
from mlpcodegen.ir import Network  # noqa: E402
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


def emlearn_row(net: Network, x: np.ndarray, core: str, opt: str) -> dict:
    """emlearn's loadable C for the same weights, called through eml_net_regress."""
    import emlearn
    from emlearn.net import c_generate_net_loadable

    activations = [_EMLEARN_ACTIVATIONS[layer.activation.name] for layer in net.layers]
    code = c_generate_net_loadable(activations, [layer.kernel.astype(np.float32) for layer in net.layers],
                                   [layer.bias.astype(np.float32) for layer in net.layers], prefix="emlnet_model")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "emlnet.h").write_text("void emlnet(const float *x, float *y);\n")
        (folder / "emlnet.c").write_text(code + f"""
#include "emlnet.h"
void emlnet(const float *x, float *y)
{{
    (void)eml_net_regress(&emlnet_model, x, {net.n_inputs}, y, {net.n_outputs});
}}
""")
        (folder / "mlpc_net.h").write_text(f'#include "emlnet.h"\n#define MLPC_T float\n#define MLPC_NAME emlnet\n'
                                           f"#define MLPC_INPUTS {net.n_inputs}u\n#define MLPC_OUTPUTS {net.n_outputs}u\n")
        for header in Path(emlearn.__file__).parent.glob("eml_*.h"):  # found through the folder's -I
            shutil.copy(header, folder / header.name)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--core", default="m4f", choices=sorted(cross.CORES))
    parser.add_argument("--opt", default="-Os")
    parser.add_argument("--out", default=str(REPO / "bench" / "EMBEDDED.md"))
    args = parser.parse_args()
    started = time.perf_counter()
    results = measure(args.core, args.opt)
    text = report(results, args.core, args.opt, time.perf_counter() - started)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
