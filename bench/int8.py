"""int8 C against LiteRT on many converter-made models (issue 25); writes bench/INT8.md.

For each random architecture (1-64 inputs, 1-4 Dense layers, every activation fused or on its
own, a softmax last half the time) TensorFlow's converter makes a full-integer int8 .tflite
(float or int8 I/O, per-channel or per-tensor weights, alternating) and a float32 one.  The
int8 C (``--dtype int8``) runs on 10^4 rows plus edge values and is compared bit for bit with
LiteRT's interpreter under its three op resolvers: BUILTIN_REF (reference kernels: the target),
AUTO (the default: XNNPACK where it takes the op) and BUILTIN_WITHOUT_DEFAULT_DELEGATES
(optimized builtin kernels).  The float32 .tflite goes through the float C and is compared
within float32 tolerance.  Times: median of 5 calls on the 10^4 rows, same process, same rows.

    python bench/int8.py --models 24
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from tflite_models import convert, keras_model, litert, operators, random_spec  # noqa: E402

from mlpcodegen.backends import emit, get_backend  # noqa: E402
from mlpcodegen.frontends import load  # noqa: E402
from mlpcodegen.runtime import compile_c  # noqa: E402

CMSIS_BEGIN = "<!-- cmsis-nn: begin"
RESOLVERS = ("BUILTIN_REF", "AUTO", "BUILTIN_WITHOUT_DEFAULT_DELEGATES")
#: Cortex-M cores (QEMU) the float-I/O models also run on, and how many rows each.
CORES, CORE_ROWS = ("m0plus", "m4f", "m7"), 256
STRICT = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Wpedantic", "-Wconversion", "-Wdouble-promotion", "-Werror"]


def variant(index: int) -> dict:
    """Alternate float / int8 I/O and per-channel / per-tensor weights."""
    return {"int_io": index % 2 == 1, "per_tensor": index % 4 >= 2}


def float_rows(net, rows: int, seed: int) -> np.ndarray:
    scale = net.int8.input.scale
    x = np.random.default_rng(seed).uniform(-4, 4, (rows, net.n_inputs)).astype(np.float32)
    edge = np.array([0.0, -0.0, 1e-30, np.inf, -np.inf, np.nan, 1e30, -1e30, 2.0 ** 31 * scale, -2.0 ** 31 * scale,
                     0.5 * scale, -0.5 * scale], dtype=np.float32)
    x[:len(edge)] = edge[:, None]
    x[len(edge):len(edge) + 64, 0] = (np.arange(-32, 32) + 0.5) * np.float32(scale)
    return x


def int_rows(n_inputs: int, rows: int, seed: int) -> np.ndarray:
    codes = np.random.default_rng(seed).integers(-128, 128, (rows, n_inputs)).astype(np.int8)
    for column in range(min(n_inputs, rows // 256)):
        codes[256 * column:256 * (column + 1), column] = np.arange(-128, 128)
    codes[-4:] = [[-128], [127], [0], [-1]]
    return codes


def int8_runner(net, folder: Path):
    """NAME_int8 built with the strict flags, fed int8 rows on stdin."""
    (folder / "m.c").write_text(emit(net, "c", dtype="int8", name="m"))
    (folder / "m.h").write_text(get_backend("c").header(net, dtype="int8", name="m"))
    (folder / "drive.c").write_text("\n".join([
        "#include <stdio.h>", '#include "m.h"', "int main(void)", "{",
        f"    int8_t x[{net.n_inputs}], y[{net.n_outputs}];",
        "    while (fread(x, sizeof x, 1, stdin) == 1) { m_int8(x, y); fwrite(y, sizeof y, 1, stdout); }",
        "    return 0;", "}", ""]))
    subprocess.run(["gcc", *STRICT, "m.c", "drive.c", "-o", "m"], check=True, cwd=folder)

    def run(codes: np.ndarray) -> np.ndarray:
        out = subprocess.run([str(folder / "m")], input=codes.tobytes(), capture_output=True, check=True).stdout
        return np.frombuffer(out, dtype=np.int8).reshape(len(codes), net.n_outputs)
    return run


def median_seconds(call, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def one_model(index: int, seed: int, rows: int, folder: Path) -> dict:
    n_inputs, steps = random_spec(seed)
    model = keras_model(n_inputs, steps, seed)
    options = variant(index)
    data = convert(model, n_inputs, seed=seed, **options)
    net = load(data)
    plan = net.int8
    if plan.float_input:
        x = float_rows(net, rows, seed)
        mine = compile_c(net, dtype="int8")(x)
        same = lambda ref: (mine.view(np.int32) == np.asarray(ref, np.float32).view(np.int32)).all(axis=1)  # noqa: E731
        predictor = compile_c(net, dtype="int8")
        mine_time = median_seconds(lambda: predictor(x))
    else:
        x = int_rows(n_inputs, rows, seed)
        runner = int8_runner(net, folder)
        mine = runner(x)
        same = lambda ref: (mine == ref).all(axis=1)  # noqa: E731
        mine_time = float("nan")
    differing = {r: int((~same(litert(data, x, r))).sum()) for r in RESOLVERS}
    times = {r: median_seconds(lambda r=r: litert(data, x, r)) for r in ("BUILTIN_REF", "AUTO")}
    float_data = convert(model, n_inputs, int8=False)
    float_net = load(float_data)
    xf = np.random.default_rng(seed + 1).uniform(-3, 3, (rows, n_inputs)).astype(np.float32)
    float_error = float(np.abs(compile_c(float_net)(xf) - litert(float_data, xf, "AUTO")).max())
    cores = {}
    if plan.float_input:  # the float wrapper cross-compiled (-Os), bit for bit against LiteRT's reference
        from mlpcodegen.harness.cortex import Options, run_on_core

        xc = float_rows(net, CORE_ROWS, seed + 2)
        expected = np.asarray(litert(data, xc), np.float32).view(np.int32)
        for core in CORES:
            run = run_on_core(net, xc, core, Options(dtype="int8", name="predict"))
            floats = run_on_core(float_net, xc[:64], core, Options(dtype="float32", name="predict"))
            cores[core] = (int((run.outputs.view(np.int32) != expected).any(axis=1).sum()), run.instructions,
                           floats.instructions)
    ops = [op for op in operators(data) if op not in ("QUANTIZE", "DEQUANTIZE")]
    return {"index": index, "seed": seed, "shape": net.describe(), "ops": ops, "rows": len(x),
            "io": "int8" if options["int_io"] else "float", "weights": "per-tensor" if options["per_tensor"]
            else "per-channel", "differ": differing, "float_error": float_error, "time": mine_time,
            "litert_time": times, "cores": cores}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=24)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("--out", default=str(REPO / "bench" / "INT8.md"))
    args = parser.parse_args()
    started = time.monotonic()
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for index in range(args.models):
            result = one_model(index, args.seed + index, args.rows, Path(folder))
            results.append(result)
            print(index, result["shape"], result["differ"], f"{result['float_error']:.2g}", flush=True)
    exact = {r: sum(res["differ"][r] == 0 for res in results) for r in RESOLVERS}
    rows = sum(res["rows"] for res in results)
    ops = sorted({op for res in results for op in res["ops"]})
    lines = ["# int8 C against LiteRT (issue 25)", "",
             f"`python bench/int8.py --models {args.models} --rows {args.rows} --seed {args.seed}` "
             f"({time.monotonic() - started:.0f} s): {args.models} models made by TensorFlow's converter "
             "(full-integer int8 with a representative dataset; float and int8 I/O, per-channel and per-tensor "
             f"weights alternating), {args.rows} rows each plus edge values ({rows} rows in all).  Operators "
             f"seen: {', '.join(ops)}.", "",
             "Rows whose int8 C output differs from LiteRT's, by LiteRT op resolver:", "",
             "| resolver | models bit-exact on every row | rows differing (all models) |", "|---|---:|---:|"]
    lines += [f"| {r} | {exact[r]} / {len(results)} | {sum(res['differ'][r] for res in results)} / {rows} |"
              for r in RESOLVERS]
    lines += ["", "BUILTIN_REF (LiteRT's reference kernels, the integer semantics TFLite Micro and CMSIS-NN "
              "share) is the target and is met bit for bit.  The other two round differently, by one code on "
              "ties: AUTO's QUANTIZE (XNNPACK) rounds the exact-tie rows to even; the optimized builtin kernels "
              "requantise fully connected sums with double rounding and compute softmax from a float table.  "
              "Their differences are counted, not chased.", "",
              "| # | network | ops | I/O | weights | differ REF | differ AUTO | differ OPT | float .tflite max abs err "
              "| int8 C / LiteRT REF / AUTO, 10^4 rows (ms) |", "|---:|---|---|---|---|---:|---:|---:|---:|---|"]
    for res in results:
        d = res["differ"]
        mine = "—" if res["time"] != res["time"] else f"{1e3 * res['time']:.2f}"
        lines.append(f"| {res['index']} | {res['shape']} | {' '.join(res['ops'])} | {res['io']} | {res['weights']} | "
                     f"{d['BUILTIN_REF']} | {d['AUTO']} | {d['BUILTIN_WITHOUT_DEFAULT_DELEGATES']} | "
                     f"{res['float_error']:.2g} | {mine} / {1e3 * res['litert_time']['BUILTIN_REF']:.2f} / "
                     f"{1e3 * res['litert_time']['AUTO']:.2f} |")
    on_cores = [res for res in results if res["cores"]]
    lines += ["", f"On Cortex-M under QEMU (arm-none-eabi-gcc -Os, the float wrapper: QUANTIZE, the int8 network, "
              f"DEQUANTIZE), {CORE_ROWS} rows per model incl. the edge values, against LiteRT's reference kernels "
              "on the host: rows differing, instructions per inference, and beside them the float32 embedded C's "
              "instructions on the float .tflite of the same Keras model (soft-float on M0+):", "",
              "| # | network | " + " | ".join(CORES) + " |", "|---:|---|" + "---|" * len(CORES)]
    lines += [f"| {res['index']} | {res['shape']} | " + " | ".join(
        f"{res['cores'][c][0]} differ, {res['cores'][c][1]:,.0f} instr. (float32: {res['cores'][c][2]:,.0f})"
        for c in CORES) + " |" for res in on_cores]
    lines += ["", f"Bit-exact on every core: {sum(all(v[0] == 0 for v in res['cores'].values()) for res in on_cores)}"
              f" / {len(on_cores)} models."]
    lines += ["", "Times: int8 C through its float wrapper (compile_c, one call over the rows) for float-I/O "
              "models (— for int8-I/O models, run as a separate program); LiteRT: interpreter built, tensors "
              "allocated, one invoke over the batch.  Medians of 5, same process, same rows.", "",
              "The C above is the default (single rounding, LiteRT's): on M4F and M7 its fully connected "
              "layers use the DSP path (SMLAD/SXTB16), on M0+ the two-row loop; the portable loop on the host. "
              "Against CMSIS-NN (double rounding, its own): the section below, from bench/cmsis_nn/compare.py."]
    out = Path(args.out)  # the CMSIS-NN section (bench/cmsis_nn/compare.py) is kept
    old = out.read_text() if out.exists() else ""
    kept = old[old.index(CMSIS_BEGIN):] if CMSIS_BEGIN in old else ""
    out.write_text("\n".join(lines) + "\n" + ("\n" + kept if kept else ""))
    print("\n".join(lines[:12]))
    cores_exact = all(v[0] == 0 for res in on_cores for v in res["cores"].values())
    return 0 if exact["BUILTIN_REF"] == len(results) and cores_exact else 1


if __name__ == "__main__":
    sys.exit(main())
