"""Every example in examples/ built and run with the commands its own comment gives, and
the values it prints compared with the model (issue 21, item 11).

* examples/desktop: the `mlpcodegen convert` and `cc` lines of main.c's comment, run as
  written; ``./demo 0.5`` prints x and seed(x) with every float32 digit.
* examples/cortex-m: the same for its convert and arm-none-eabi-gcc lines (M4F), linked
  with a board of the test's (board.h: a table of inputs in, each output printed as its
  bits through semihosting) and the project's start-up code, run on QEMU; M0+ and M7 too.
* examples/dask: the script run as its docstring says; the rows it prints.

Tolerances (at the reference magnitude, mlpcodegen.harness.verify.compare): the printed
float32 outputs within F32_ULP_BOUND (8 ULP) of the float64 reference of the network in
original units, and within 16 ULP (8 each side) of Keras' model.predict fed the inputs
scaled by hand from scaling.json (the fold of --scaling is thereby checked too); the
three cores give the same bits.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mlpcodegen import load
from mlpcodegen.harness.report import F32_ULP_BOUND, compare
from mlpcodegen.core.reference import evaluate_magnitude
from mlpcodegen.runtime import cross
from mlpcodegen.core.scaling import read_scaling_file, with_scaling

from conftest import REPO, STRICT_FLAGS

EXAMPLES = REPO / "examples"
SEED = REPO / "generated" / "seed" / "seed.keras"
SCALING = REPO / "generated" / "seed" / "scaling.json"
PEER_ULP = 2 * F32_ULP_BOUND
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
WARNINGS = ["-Wall", "-Wextra", "-Wpedantic", "-Wconversion", "-Wdouble-promotion", "-Werror"]


def documented(source: Path, first_words: tuple[str, ...]) -> list[str]:
    """The shell lines of ``source``'s first comment that start with one of
    ``first_words`` (continuations joined, `# ...` remarks dropped), in order."""
    comment = source.read_text().split("*/", 1)[0]
    lines, current = [], ""
    for raw in comment.splitlines():
        text = re.sub(r"^\s*(/\*|\*)?\s*", "", raw).split("  #", 1)[0].rstrip()
        current = f"{current} {text}".strip() if current else text
        if current.endswith("\\"):
            current = current[:-1].rstrip()
            continue
        if current.split(" ", 1)[0] in first_words:
            lines.append(current)
        current = ""
    return lines


def convert(line: str, folder: Path) -> None:
    """A documented `mlpcodegen convert` line, run in ``folder`` as a user would (a new
    process: this one's cwd stays put), with the repository's files."""
    words = shlex.split(line)
    assert words[:2] == ["mlpcodegen", "convert"] and "--scaling" in words, line  # issue 21: --scaling
    args = [str(REPO / w) if w.startswith("generated/") else w for w in words[1:]]
    done = subprocess.run([sys.executable, "-m", "mlpcodegen", *args], cwd=folder, env=ENV, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, (line, done.stderr)


def run_shell_line(line: str, folder: Path) -> str:
    """A documented `a && b` line, each part as written; the stdout of the last."""
    out = ""
    for part in line.split("&&"):
        out = subprocess.run(shlex.split(part), cwd=folder, capture_output=True, text=True, check=True).stdout
    return out


def seed_model_units(x: np.ndarray) -> np.ndarray:
    """x in original units -> the Keras model's inputs, from scaling.json by hand (min-max)."""
    spec = json.loads(SCALING.read_text())["input"]
    assert spec["kind"] == "minmax"
    low, high = np.array(spec["min"]), np.array(spec["max"])
    a, b = spec["feature_range"]
    return (x.astype(np.float64) - low) / (high - low) * (b - a) + a


@pytest.fixture(scope="module")
def seed_model():
    import keras

    return keras.saving.load_model(SEED, compile=False)


def check_seed(x: np.ndarray, y: np.ndarray, model) -> None:
    """Printed y against the float64 reference (original units) and model.predict."""
    net = with_scaling(load(SEED), *read_scaling_file(SCALING))
    reference, scale = evaluate_magnitude(net, x.astype(np.float64).reshape(-1, 1))
    assert compare(y, reference, scale, "float32")[2] <= F32_ULP_BOUND, (x, y, reference)
    predicted = model.predict(seed_model_units(x.reshape(-1, 1)).astype(np.float32), verbose=0)
    assert compare(y, predicted, scale, "float32")[2] <= PEER_ULP, (x, y, predicted)


def test_desktop_example_prints_the_model(tmp_path, gcc, seed_model):
    folder = EXAMPLES / "desktop"
    mlpcodegen_line, build = documented(folder / "main.c", ("mlpcodegen", "cc"))
    shutil.copy(folder / "main.c", tmp_path)
    convert(mlpcodegen_line, tmp_path)
    out = run_shell_line(build, tmp_path)
    pairs = re.findall(r"^seed\((\S+)\) = (\S+)$", out, flags=re.M)
    assert [x for x, _ in pairs] == ["0.5", "-1", "0", "1"], out
    x, y = (np.array([float(v) for v in column], np.float32) for column in zip(*pairs))
    check_seed(x, y, seed_model)
    assert abs(float(y[0]) - 0.5005) < 1e-3  # the figure: seed(0.5) as the model gives it
    # and the strict warnings, from C
    subprocess.run([gcc, *STRICT_FLAGS, f"-I{tmp_path}", "main.c", "seed.c", "-o", "strict", "-lm"], cwd=tmp_path,
                   check=True)


QEMU_BOARD = """/* The test's board for examples/cortex-m: inputs from a table, each output printed as
   its bits through the start-up code's semihosting; the image exits after the table. */
#include <stdint.h>
#include "board.h"

void mlpc_write(const char *text);
void mlpc_exit(int status);

static const float inputs[] = {INPUTS};
static unsigned next;

float read_sensor(void)
{
    if (next == sizeof inputs / sizeof inputs[0]) mlpc_exit(0);
    return inputs[next++];
}

void write_actuator(float value)
{
    union { float f; uint32_t u; } bits;
    char line[10];
    int i;
    bits.f = value;
    for (i = 0; i < 8; ++i) line[i] = "0123456789abcdef"[(bits.u >> (28 - 4 * i)) & 0xFu];
    line[8] = '\\n';
    line[9] = '\\0';
    mlpc_write(line);
}
"""


def _run_image(objects: list[Path], core: str, out: Path) -> np.ndarray:
    image = cross.link(objects, cross.core(core), "-Os", out)
    text = cross.qemu(image, cross.core(core))
    return np.array([int(word, 16) for word in text.split()], np.uint32).view(np.float32)


def test_cortex_m_example_runs_on_qemu(tmp_path, arm_toolchain, seed_model):
    folder = EXAMPLES / "cortex-m"
    mlpcodegen_line, build = documented(folder / "main.c", ("mlpcodegen", "arm-none-eabi-gcc"))
    for name in ("main.c", "board.h", "board.c"):
        shutil.copy(folder / name, tmp_path)
    convert(mlpcodegen_line, tmp_path)
    assert "-mcpu=cortex-m4" in build
    run_shell_line(build, tmp_path)  # seed.o main.o board.o, for the M4F, as documented
    for core, c in cross.CORES.items():  # and every core, under the strict warnings
        for source in ("main.c", "board.c", "seed.c"):
            subprocess.run(["arm-none-eabi-gcc", "-std=c99", *WARNINGS, "-Os", "-mthumb", *c.flags, "-c", source,
                            "-o", f"{core}-{source}.o"], cwd=tmp_path, check=True)

    x = np.concatenate([[-1.0, 0.0, 0.5, 1.0], np.random.default_rng(21).uniform(-1, 1, 20)]).astype(np.float32)
    (tmp_path / "qemu_board.c").write_text(QEMU_BOARD.replace("INPUTS", ", ".join(f"{float(v).hex()}f" for v in x)))
    board = [tmp_path / "qemu_board.c", cross.DATA / "startup.c"]
    m4f = cross.compile_objects(board, cross.core("m4f"), "-Os", tmp_path / "m4f", include=tmp_path)
    outputs = {"m4f": _run_image([tmp_path / "main.o", tmp_path / "seed.o", *m4f], "m4f", tmp_path / "m4f.elf")}
    for core in ("m0plus", "m7"):
        objects = cross.compile_objects([tmp_path / "main.c", tmp_path / "seed.c", *board], cross.core(core), "-Os",
                                        tmp_path / core, include=tmp_path)
        outputs[core] = _run_image(objects, core, tmp_path / f"{core}.elf")
    assert len(outputs["m4f"]) == len(x)
    check_seed(x, outputs["m4f"], seed_model)
    for core in ("m0plus", "m7"):
        np.testing.assert_array_equal(outputs[core].view(np.uint32), outputs["m4f"].view(np.uint32), err_msg=core)


def test_dask_example_prints_the_model(tmp_path, seed_model):
    script = EXAMPLES / "dask" / "score.py"
    assert "python examples/dask/score.py" in script.read_text()
    done = subprocess.run([sys.executable, str(script.relative_to(REPO))], cwd=REPO, env=ENV, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = re.findall(r"^  x = (.+) -> y = (.+)$", done.stdout, flags=re.M)
    assert len(rows) == 3 and "equal to compile_c(net)(rows) bit for bit" in done.stdout, done.stdout
    x = np.array([[float(v) for v in row.split()] for row, _ in rows], np.float32)
    y = np.array([[float(v) for v in out.split()] for _, out in rows], np.float32)
    net = load(SEED)  # the script scores the model's own units (no scaling)
    reference, scale = evaluate_magnitude(net, x.astype(np.float64))
    assert compare(y, reference, scale, "float32")[2] <= F32_ULP_BOUND, (x, y, reference)
    assert compare(y, seed_model.predict(x, verbose=0), scale, "float32")[2] <= PEER_ULP
