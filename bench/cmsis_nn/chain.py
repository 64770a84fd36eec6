"""A bench-only peer: an int8 plan (mlpcodegen.core.quant) as a chain of CMSIS-NN calls, the way
TensorFlow Lite Micro runs a full-integer model on Cortex-M: ``arm_fully_connected_per_channel_s8``
(``arm_fully_connected_s8`` for one scale per tensor) and ``arm_softmax_s8``, with the model's own
int8 weights, int32 biases, multipliers and shifts (LiteRT's convention: left if > 0; the softmax's
for double rounding, the CMSIS-NN default).

CMSIS-NN itself is never copied into this repository: it is compiled from its source tree
(``CMSIS_NN`` in the environment, else ../shared/peers/CMSIS-NN beside the repository), to
measure against (tests/test_tflite.py, bench/int8.py).  Only FULLY_CONNECTED (any fused clamp)
and SOFTMAX are chained: what those two kernels compute.
"""
from __future__ import annotations

import os
from pathlib import Path

from mlpcodegen.core.quant import Int8Plan, QDense, QSoftmax

HERE = Path(__file__).resolve().parent
#: The CMSIS-NN sources the chain links (their own dependencies inside the tree).
SOURCES = ("Source/FullyConnectedFunctions/arm_fully_connected_s8.c",
           "Source/FullyConnectedFunctions/arm_fully_connected_per_channel_s8.c",
           "Source/NNSupportFunctions/arm_nn_vec_mat_mult_t_s8.c",
           "Source/NNSupportFunctions/arm_nn_vec_mat_mult_t_per_ch_s8.c",
           "Source/SoftmaxFunctions/arm_softmax_s8.c", "Source/SoftmaxFunctions/arm_nn_softmax_common_s8.c")


def cmsis_nn_root() -> Path | None:
    """The CMSIS-NN source tree, or None when it is not on this machine."""
    candidates = [os.environ.get("CMSIS_NN")] + [str(p / "shared" / "peers" / "CMSIS-NN")
                                                  for p in HERE.parents[2:4]]
    for candidate in candidates:
        if candidate and (Path(candidate) / "Include" / "arm_nnfunctions.h").is_file():
            return Path(candidate)
    return None


def chainable(plan: Int8Plan) -> bool:
    return all(isinstance(layer, (QDense, QSoftmax)) for layer in plan.layers)


def _ints(values) -> str:
    return ", ".join(str(int(v)) for v in values)


def chain_source(plan: Int8Plan, name: str = "chain") -> str:
    """C defining ``void NAME(const int8_t *x, int8_t *y)``: the plan as CMSIS-NN calls."""
    if not chainable(plan):
        raise ValueError("the CMSIS-NN chain takes FULLY_CONNECTED and SOFTMAX layers only")
    plan = plan.rounded("double")
    width = plan.width
    lines = ["/* bench-only: an int8 plan as a chain of CMSIS-NN calls (bench/cmsis_nn/chain.py) */",
             "#include <stddef.h>", "#include <stdint.h>", '#include "arm_nnfunctions.h"', ""]
    body = [f"void {name}(const int8_t *x, int8_t *y)", "{", f"    static int8_t h[2][{width}];",
            "    const cmsis_nn_context ctx = {NULL, 0};", "    cmsis_nn_dims in, filter, bias, out;",
            "    const int8_t *source = x;", "    int8_t *target;"]
    for index, layer in enumerate(plan.layers, 1):
        last = index == len(plan.layers)
        target = "y" if last else f"h[{index % 2}]"
        if isinstance(layer, QDense):
            per_channel = len(set(zip(layer.multipliers.tolist(), layer.shifts.tolist()))) > 1
            lines += [f"static const int8_t {name}_w{index}[{layer.weights.size}] = {{{_ints(layer.weights.ravel())}}};",
                      f"static const int32_t {name}_b{index}[{layer.units}] = {{{_ints(layer.bias)}}};"]
            if per_channel:
                lines += [f"static int32_t {name}_m{index}[{layer.units}] = {{{_ints(layer.multipliers)}}};",
                          f"static int32_t {name}_s{index}[{layer.units}] = {{{_ints(layer.shifts)}}};"]
            body += ["    {", f"        const cmsis_nn_fc_params fc = {{{-layer.input.zero_point}, 0, "
                     f"{layer.output.zero_point}, {{{layer.low}, {layer.high}}}}};",  # TFLM: output_offset = +zp
                     f"        in.n = 1; in.h = 1; in.w = 1; in.c = {layer.n_in};",
                     f"        filter.n = {layer.n_in}; filter.h = 1; filter.w = 1; filter.c = {layer.units};",
                     f"        bias.n = 1; bias.h = 1; bias.w = 1; bias.c = {layer.units};",
                     f"        out.n = 1; out.h = 1; out.w = 1; out.c = {layer.units};",
                     f"        target = {target};"]
            if per_channel:
                body += [f"        {{ const cmsis_nn_per_channel_quant_params q = {{{name}_m{index}, {name}_s{index}}};",
                         "          arm_fully_connected_per_channel_s8(&ctx, &fc, &q, &in, source, &filter, "
                         f"{name}_w{index}, &bias, {name}_b{index}, &out, target); }}"]
            else:
                body += [f"        {{ const cmsis_nn_per_tensor_quant_params q = {{{int(layer.multipliers[0])}, "
                         f"{int(layer.shifts[0])}}};",
                         "          arm_fully_connected_s8(&ctx, &fc, &q, &in, source, &filter, "
                         f"{name}_w{index}, &bias, {name}_b{index}, &out, target); }}"]
            body += ["    }"]
        else:
            body += [f"    target = {target};",
                     f"    arm_softmax_s8(source, 1, {layer.width}, {layer.multiplier}, {layer.shift}, "
                     f"{layer.diff_min}, target);"]
        body += ["    source = target;"]
    body += ["}", ""]
    return "\n".join(lines + [""] + body)


def calibrated_network(sizes, seed: int = 0, softmax: bool = True, rows: int = 500):
    """A random float network (relu hidden layers, a softmax last or linear) quantised by
    mlpcodegen.core.ptq.calibrate on uniform rows in [-2, 2]: the converter's per-channel int8 model
    without TensorFlow (ptq's weights are the converter's, tests/test_tflite.py)."""
    import numpy as np

    from mlpcodegen.core.ir import Activation, Dense, Network
    from mlpcodegen.core.ptq import calibrate

    rng = np.random.default_rng(seed)
    layers = []
    for index, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = index == len(sizes) - 2
        activation = Activation("softmax" if softmax else "linear") if last else Activation("relu")
        layers.append(Dense(rng.normal(0, 1 / np.sqrt(n_in), (n_in, n_out)).astype(np.float32),
                            rng.normal(0, 0.1, n_out).astype(np.float32), activation, f"dense{index}"))
    net = Network(int(sizes[0]), tuple(layers), name="net")
    return calibrate(net, rng.uniform(-2, 2, (rows, sizes[0])).astype(np.float32))


def host_outputs(net, codes, folder: Path, name: str = "net"):
    """(ours, CMSIS-NN's) int8 outputs on the rows ``codes``: mlpcodegen's int8 C with double
    rounding and the CMSIS-NN chain, both compiled for this machine with gcc (CMSIS-NN's plain C
    paths) and run on the same rows."""
    import subprocess

    import numpy as np

    from mlpcodegen.backends import emit, get_backend

    root = cmsis_nn_root()
    if root is None:
        raise FileNotFoundError("CMSIS-NN's source tree (set CMSIS_NN)")
    folder = Path(folder)
    plan = net.int8
    (folder / f"{name}.c").write_text(emit(net, "c", dtype="int8", name=name, rounding="double"))
    (folder / f"{name}.h").write_text(get_backend("c").header(net, dtype="int8", name=name, rounding="double"))
    (folder / "chain.c").write_text(chain_source(plan))
    n, m = plan.n_inputs, plan.n_outputs
    (folder / "main.c").write_text("\n".join([
        "#include <stdio.h>", f'#include "{name}.h"', "void chain(const int8_t *x, int8_t *y);",
        "int main(void)", "{", f"    int8_t x[{n}], a[{m}], b[{m}];",
        "    while (fread(x, sizeof x, 1, stdin) == 1) {", f"        {name}_int8(x, a);", "        chain(x, b);",
        "        fwrite(a, sizeof a, 1, stdout);", "        fwrite(b, sizeof b, 1, stdout);", "    }", "    return 0;",
        "}", ""]))
    sources = [folder / f"{name}.c", folder / "chain.c", folder / "main.c", *(root / s for s in SOURCES)]
    subprocess.run(["gcc", "-std=gnu99", "-O1", f"-I{root / 'Include'}", f"-I{folder}", *map(str, sources), "-o",
                    str(folder / "compare")], check=True)
    out = subprocess.run([str(folder / "compare")], input=np.ascontiguousarray(codes, np.int8).tobytes(),
                         capture_output=True, check=True).stdout
    both = np.frombuffer(out, np.int8).reshape(len(codes), 2, m)
    return both[:, 0], both[:, 1]
