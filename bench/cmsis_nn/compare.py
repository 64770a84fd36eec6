"""mlpcodegen's int8 C against a chain of CMSIS-NN calls on the same int8 models, on QEMU
(Cortex-M4F and M0+, ``-icount``): instructions per inference, bytes of code + weights, and the
outputs bit for bit (double rounding, what CMSIS-NN computes); writes its table into bench/INT8.md.

Models: TensorFlow's converter (full-integer int8, int8 I/O, per-channel weights) on Keras
MLPs of Dense(relu) layers and a softmax or linear output: the FULLY_CONNECTED/SOFTMAX models
CMSIS-NN's two kernels run.  Both sides are compiled by the same arm-none-eabi-gcc with the same
flags (the project's cross flags, -Os by default) and linked into the same driver
(mlpcodegen/runtime/cortex_m/driver.c): each times 64 calls on 64 rows of random int8 codes by
SysTick under -icount (40 instructions a tick), an empty call's cost subtracted.  Bytes: the
sizes (arm-none-eabi-nm -S) of every function and array the linked image holds besides the
driver and start-up code: the predictor, its weights, and what it pulls from libgcc.  CMSIS-NN's
multipliers and shifts live in .data (its API takes non-const pointers): counted as flash too.
Its activations buffer (static, bss) and ours (stack) are RAM: not counted.

    python bench/cmsis_nn/compare.py [--opt -Os]
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "bench")]

from cmsis_nn.chain import SOURCES, chain_source, chainable, cmsis_nn_root  # noqa: E402

from mlpcodegen.backends import emit, get_backend  # noqa: E402
from mlpcodegen.frontends import load  # noqa: E402
from mlpcodegen.core.quant import run_int8  # noqa: E402
from mlpcodegen.runtime import cross  # noqa: E402

#: (label, inputs, Keras steps): Dense(relu) layers, a softmax or a linear output.
MODELS = (
    ("cls 4-32-32-3 softmax", 4, [("dense", 32, "relu"), ("dense", 32, "relu"), ("dense", 3, None), ("alone", "softmax")]),
    ("10-64-64-64-1 relu", 10, [("dense", 64, "relu"), ("dense", 64, "relu"), ("dense", 64, "relu"), ("dense", 1, None)]),
    ("16-48-24-5 softmax", 16, [("dense", 48, "relu6"), ("dense", 24, "relu"), ("dense", 5, None), ("alone", "softmax")]),
    ("33-17-9 relu", 33, [("dense", 17, "relu"), ("dense", 9, None)]),
    ("784-128-64-10 softmax", 784, [("dense", 128, "relu"), ("dense", 64, "relu"), ("dense", 10, None),
                                    ("alone", "softmax")]),
)
ROWS = 64
CORES = ("m4f", "m0plus")
MARK_BEGIN, MARK_END = "<!-- cmsis-nn: begin (bench/cmsis_nn/compare.py) -->", "<!-- cmsis-nn: end -->"


def _net_header(folder: Path, include: str, function: str, n: int, m: int, prototype: str) -> None:
    (folder / "mlpc_net.h").write_text("\n".join([
        "#include <stdint.h>", include, prototype, "#define MLPC_T int8_t", f"#define MLPC_NAME {function}",
        f"#define MLPC_INPUTS {n}u", f"#define MLPC_OUTPUTS {m}u", ""]))


def _table(folder: Path, codes: np.ndarray) -> None:
    rows = [" {" + ", ".join(str(int(v)) for v in row) + "}" for row in codes]
    (folder / "mlpc_table.h").write_text("\n".join([
        f"#define MLPC_ROWS {len(codes)}u", f"#define MLPC_TIMED {len(codes)}u", "#define MLPC_REPEAT 1u",
        f"static const MLPC_T mlpc_x[{len(codes)}][MLPC_INPUTS] = {{", ",\n".join(rows), "};", ""]))


def _symbols(path: Path) -> dict[str, tuple[str, int]]:
    out = cross.run(["arm-none-eabi-nm", "-S", str(path)], "nm")
    found = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4:
            found[parts[3]] = (parts[2], int(parts[1], 16))
    return found


def _build_and_run(folder: Path, sources: list[Path], core: str, opt: str, include: list[Path], m: int,
                   rows: int) -> tuple[np.ndarray, float, int]:
    target = cross.core(core)
    driver = [cross.DATA / "driver.c", cross.DATA / "startup.c"]
    command = ["arm-none-eabi-gcc", *cross.BASE_FLAGS, *target.flags, opt, f"-I{folder}",
               *(f"-I{path}" for path in include), "-c", *map(str, sources + driver)]
    subprocess.run(command, cwd=folder, check=True)
    objects = [folder / (p.stem + ".o") for p in sources + driver]
    image = cross.link(objects, target, opt, folder / "image.elf")
    text = cross.qemu(image, target, 300.0)
    lines = text.splitlines()
    outputs = np.array([[int(v, 16) & 0xFF for v in line.split()] for line in lines if line and not
                        line.startswith("ticks")], dtype=np.uint8).view(np.int8).reshape(rows, m)
    ticks = [int(v, 16) for line in lines if line.startswith("ticks") for v in line.split()[1:]]
    instructions = (ticks[0] - ticks[1]) * cross.INSTRUCTIONS_PER_TICK / rows
    image_symbols = _symbols(image)
    runtime = set()
    for obj in objects[-2:]:
        runtime |= {name for name, (kind, _) in _symbols(obj).items() if kind.upper() in "TDRB"}
    size = sum(n for name, (kind, n) in image_symbols.items()
               if kind.upper() in "TDR" and name not in runtime and not name.startswith("mlpc_"))
    return outputs, instructions, size


def measure(label: str, model: bytes, core: str, opt: str, root: Path, seed: int) -> dict:
    from tflite_models import litert

    net = load(model)
    plan = net.int8
    assert chainable(plan), label
    codes = np.random.default_rng(seed).integers(-128, 128, (ROWS, plan.n_inputs)).astype(np.int8)
    n, m = plan.n_inputs, plan.n_outputs
    with tempfile.TemporaryDirectory(prefix="cmsis-nn-bench-") as tmp:
        ours_dir, theirs_dir = Path(tmp) / "ours", Path(tmp) / "cmsis"
        ours_dir.mkdir(), theirs_dir.mkdir()
        (ours_dir / "net.c").write_text(emit(net, "c", dtype="int8", name="net", rounding="double"))
        (ours_dir / "net.h").write_text(get_backend("c").header(net, dtype="int8", name="net", rounding="double"))
        _net_header(ours_dir, '#include "net.h"', "net_int8", n, m, "")
        _table(ours_dir, codes)
        (theirs_dir / "chain.c").write_text(chain_source(plan))
        _net_header(theirs_dir, "", "chain", n, m, "void chain(const int8_t *x, int8_t *y);")
        _table(theirs_dir, codes)
        ours, ours_n, ours_bytes = _build_and_run(ours_dir, [ours_dir / "net.c"], core, opt, [], m, ROWS)
        theirs, theirs_n, theirs_bytes = _build_and_run(
            theirs_dir, [theirs_dir / "chain.c", *(root / s for s in SOURCES)], core, opt, [root / "Include"], m, ROWS)
    mirror = run_int8(plan.rounded("double"), codes)
    single = run_int8(plan, codes)
    return {"label": label, "core": core, "ours": ours_n, "theirs": theirs_n, "ours_bytes": ours_bytes,
            "theirs_bytes": theirs_bytes, "same": int((ours != theirs).any(axis=1).sum()),
            "mirror": int((ours != mirror).any(axis=1).sum()),
            "litert_single": int((single != litert(model, codes)).any(axis=1).sum())}


def table(results: list[dict], opt: str) -> str:
    head = ["| model | core | ours instr. | CMSIS-NN instr. | ratio | ours bytes | CMSIS-NN bytes | ratio | "
            "rows differing (ours vs CMSIS-NN, of 64) |", "|---|---|---|---|---|---|---|---|---|"]
    rows = [f"| {r['label']} | {r['core']} | {r['ours']:.0f} | {r['theirs']:.0f} | {r['ours'] / r['theirs']:.2f}x | "
            f"{r['ours_bytes']} | {r['theirs_bytes']} | {r['ours_bytes'] / r['theirs_bytes']:.2f}x | {r['same']} |"
            for r in results]
    return "\n".join([MARK_BEGIN, "", f"## Against CMSIS-NN (arm_fully_connected_per_channel_s8 + arm_softmax_s8), "
                      f"QEMU -icount, arm-none-eabi-gcc {opt}", "", *head, *rows, "",
                      "Instructions per inference (64 calls on 64 rows of random int8 codes, an empty call "
                      "subtracted); bytes: code + weights + constants + libgcc helpers in the linked image (not "
                      "the driver). Our C with rounding=\"double\" (CMSIS-NN's); with rounding=\"single\" "
                      "(the default) it is LiteRT's instead: our NumPy mirror of single rounding vs LiteRT's "
                      f"reference kernels on the same rows: {sum(r['litert_single'] for r in results)} rows differ "
                      f"in all; our C vs the double mirror: {sum(r['mirror'] for r in results)} rows differ.",
                      "", "    python bench/cmsis_nn/compare.py", "", MARK_END, ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--opt", default="-Os")
    parser.add_argument("--models", type=int, default=len(MODELS))
    parser.add_argument("--write", default=str(REPO / "bench" / "INT8.md"))
    args = parser.parse_args()
    root = cmsis_nn_root()
    if root is None:
        sys.exit("CMSIS-NN's source tree is not here: set CMSIS_NN")
    from tflite_models import convert, keras_model

    results = []
    for seed, (label, n, steps) in enumerate(MODELS[: args.models]):
        model = convert(keras_model(n, steps, seed=seed), n, int_io=True, seed=seed)
        for core in CORES:
            results.append(measure(label, model, core, args.opt, root, seed))
            r = results[-1]
            print(f"{label} {core}: ours {r['ours']:.0f} CMSIS-NN {r['theirs']:.0f} ({r['ours'] / r['theirs']:.2f}x), "
                  f"bytes {r['ours_bytes']} vs {r['theirs_bytes']} ({r['ours_bytes'] / r['theirs_bytes']:.2f}x), "
                  f"differing rows {r['same']}, mirror {r['mirror']}, single vs LiteRT {r['litert_single']}",
                  flush=True)
    text = table(results, args.opt)
    path = Path(args.write)
    old = path.read_text() if path.exists() else ""
    if MARK_BEGIN in old:
        old = old[:old.index(MARK_BEGIN)] + old[old.index(MARK_END) + len(MARK_END):].lstrip("\n")
    path.write_text(old.rstrip("\n") + "\n\n" + text)
    print(text)


if __name__ == "__main__":
    main()
