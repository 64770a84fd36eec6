"""q15 on Cortex-M4F with and without the DSP path (SMLAD/SMLALD, issue 25), against float32.

    python bench/q15_dsp.py [--rows 64] [--out bench/INT8.md]

For cls 16-64-64-10 softmax and 10-64-64-64-1 relu (fixed-seed random weights: instruction
counts depend on the shapes), built with arm-none-eabi-gcc -Os for m4f and run on QEMU
(-icount shift=0) through the driver of mlpcodegen.harness.cortex: instructions per
inference of the float32 embedded C (float API), of q15's float API NAME (quantise, NAME_q15,
scale back; softmax in float) and of q15's integer API NAME_q15 alone, each q15 build with
the DSP path (the default on M4F) and with it switched off (-DMLPC_Q15_DSP=0 in the file:
the portable loops, what M4F ran before).  The q15 outputs on the core are checked bit for
bit against the host mirror (mlpcodegen.core.fixed.run_codes) and between the two builds.  The
table replaces the "q15 on M4F" section of --out.
"""
from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from mlpcodegen.core.fixed import plan, quantise_inputs, run_codes  # noqa: E402
from mlpcodegen.harness import cortex  # noqa: E402
from mlpcodegen.runtime import cross  # noqa: E402

from bench.native_call import random_net  # noqa: E402

CORE, OPT = "m4f", "-Os"
BEGIN, END = "<!-- q15-dsp: begin (bench/q15_dsp.py) -->", "<!-- q15-dsp: end -->"


def models():
    return {"cls 16-64-64-10 softmax": random_net([16, 64, 64, 10], ["relu", "relu", "softmax"], 2),
            "10-64-64-64-1 relu": random_net([10, 64, 64, 64, 1], ["relu", "relu", "relu", "linear"], 3)}


def _run(net, x, options, dsp: bool, integer: bool):
    """(outputs, instructions per inference) of one build on the core."""
    options = options.for_core(CORE)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source = cortex.write_predictor(net, options, folder)
        if not dsp:
            source.write_text("#define MLPC_Q15_DSP 0 /* bench: the portable loops */\n" + source.read_text())
        if integer:
            codes = quantise_inputs(plan(net, options.domain), x.astype(np.float64))
            softmax = net.layers[-1].activation.name == "softmax"
            # the driver has one type: a softmax network's int32 logits through a copy (a few
            # instructions, counted) into int16 words that the parse below puts back together
            call = [f"#define MLPC_NAME {options.name}_q15"] if not softmax else [
                "#include <string.h>", "#define MLPC_NAME mlpc_logits",
                "static void mlpc_logits(const int16_t *x, int16_t *y)",
                f"{{ int32_t z[{net.n_outputs}]; {options.name}_q15(x, z); memcpy(y, z, sizeof z); }}"]
            (folder / "mlpc_net.h").write_text("\n".join([
                f'#include "{options.name}.h"', "#define MLPC_T int16_t", *call,
                f"#define MLPC_INPUTS {net.n_inputs}u",
                f"#define MLPC_OUTPUTS {net.n_outputs * (2 if softmax else 1)}u", ""]))
            timed, repeat = min(len(x), 64), max(1, -(-64 // min(len(x), 64)))
            rows = [" {" + ", ".join(str(int(v)) for v in row) + "}" for row in codes]
            (folder / "mlpc_table.h").write_text("\n".join([
                f"#define MLPC_ROWS {len(x)}u", f"#define MLPC_TIMED {timed}u", f"#define MLPC_REPEAT {repeat}u",
                f"static const int16_t mlpc_x[{len(x)}][MLPC_INPUTS] MLPC_TABLE_STORAGE = {{", ",\n".join(rows),
                "};", ""]))
            out_type, outputs = "int16", net.n_outputs * (2 if softmax else 1)
        else:
            outputs = net.n_outputs
            timed, repeat = cortex.write_table(x, options.dtype, folder)
            out_type = options.dtype
        text = source.read_text()
        run = cortex.run_prepared(folder, [source], CORE, OPT, len(x), outputs, out_type, timed * repeat,
                                  timeout=900)
    out = run.outputs
    if integer and outputs != net.n_outputs:  # little-endian int16 halves back into int32 logits
        out = np.ascontiguousarray(out).view(np.int32)
    return out, run.instructions, text


def measure(rows: int) -> list[dict]:
    results = []
    rng = np.random.default_rng(0)
    for label, net in models().items():
        x = rng.uniform(-1, 1, (rows, net.n_inputs)).astype(np.float32)
        f32 = cortex.Options(name="net", dtype="float32")
        q15 = cortex.Options(name="net", dtype="q15", domain=(-1, 1))
        row = {"model": label}
        row["float32"] = _run(net, x, f32, True, False)[1]
        fixed = plan(net, (-1, 1))
        mirror = run_codes(fixed, quantise_inputs(fixed, x.astype(np.float64)))
        for dsp in (False, True):
            key = "dsp" if dsp else "scalar"
            out_f, row[f"{key} float API"], _ = _run(net, x, q15, dsp, False)
            out_i, row[f"{key} NAME_q15"], text = _run(net, x, q15, dsp, True)
            row[f"{key} outputs"] = out_f
            row[f"{key} differ"] = int(np.sum(np.any(out_i.astype(np.int64) != mirror, axis=1)))
            if dsp:
                row["smlad"] = sorted(set(re.findall(r"__smlal?d\b", text)))
        row["float API differ"] = int(np.sum(np.any(row["dsp outputs"] != row["scalar outputs"], axis=1)))
        results.append(row)
    return results


def report(results: list[dict], rows: int, seconds: float) -> str:
    lines = [BEGIN, "", "## q15 on M4F: the DSP path (SMLAD/SMLALD) against float32", "",
             f"arm-none-eabi-gcc {OPT}, Cortex-M4F on QEMU (-icount shift=0), instructions per inference "
             f"({rows} rows of inputs uniform in [-1, 1], an empty call subtracted; {seconds:.0f} s). "
             "float32: the embedded float C (float API).  q15 float API: NAME (quantise, NAME_q15, scale back; "
             "softmax in float); NAME_q15: the integer predictor alone.  Scalar: the same file with "
             "MLPC_Q15_DSP 0: the portable loops M4F ran before (the same counts as the code before the DSP "
             "path, measured on its parent commit).  Target (issue 25): q15 <= 0.6x float32 on M4F.", "",
             "| network | float32 | q15 NAME_q15 scalar | q15 NAME_q15 DSP | ratio to float32 | "
             "q15 float API scalar | q15 float API DSP | ratio to float32 | intrinsics | rows differing from "
             "the host mirror (scalar / DSP) |", "|---|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for r in results:
        f = r["float32"]
        lines.append(f"| {r['model']} | {f:,.0f} | {r['scalar NAME_q15']:,.0f} | {r['dsp NAME_q15']:,.0f} | "
                     f"{r['dsp NAME_q15'] / f:.2f}x (was {r['scalar NAME_q15'] / f:.2f}x) | "
                     f"{r['scalar float API']:,.0f} | {r['dsp float API']:,.0f} | "
                     f"{r['dsp float API'] / f:.2f}x (was {r['scalar float API'] / f:.2f}x) | "
                     f"{', '.join(r['smlad'])} | {r['scalar differ']} / {r['dsp differ']} of {rows} |")
    lines += ["", "The float API's outputs of the two builds agree bit for bit on "
              f"{sum(rows - r['float API differ'] for r in results)} / {rows * len(results)} rows.", "",
              "    python bench/q15_dsp.py", "", END]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "INT8.md")
    args = parser.parse_args()
    cross.tool(cross.core(CORE).toolchain.emulator.command)
    start = time.perf_counter()
    results = measure(args.rows)
    text = report(results, args.rows, time.perf_counter() - start)
    print(text)
    old = args.out.read_text() if args.out.exists() else ""
    if BEGIN in old and END in old:
        new = old[:old.index(BEGIN)] + text + old[old.index(END) + len(END) + 1:]
    else:
        new = old.rstrip("\n") + "\n\n" + text
    args.out.write_text(new)


if __name__ == "__main__":
    main()
