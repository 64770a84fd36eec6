"""Q15 fixed point against the float build on Cortex-M0+ (issue 13), in one run.

    python bench/fixed.py [--out bench/FIXED.md] [--inputs 100000] [--networks 40]

For seed 1-3-2-1 tanh (generated/seed/seed.keras), sine 1-16-16-1 relu (fitted to sin on
[-pi, pi] with scikit-learn's L-BFGS, fixed seed; and bench/embedded.py's random-weight one
on [-1, 1]) and cls 16-64-64-10 softmax (bench/embedded.py's random weights):

* on QEMU mps2-an385 (-icount shift=0, arm-none-eabi-gcc -Os, Cortex-M0+ soft float):
  instructions per inference and bytes of the integer predictor NAME_q15 (code, weights,
  table: its object file without the float wrapper), of the float wrapper path (NAME: the
  same plus the float conversions, soft-float helpers apart), and of the float32 embedded
  C (optimize size and speed);
* the integer outputs of the core equal, bit for bit, those of mlpcodegen.core.fixed.run_codes
  (the mirror the accuracy figures use);
* accuracy on ``--inputs`` random inputs of the domain: max abs error vs the float64
  reference, as a share of the output range, the stated bound and its ratio to the
  measured error; next to it the worst error a hill-climbing search (from the 16 worst
  random inputs, on the bit-exact mirror) finds; for cls the argmax agreement on 1,000
  inputs (and on all), and the same figures on the logits;
* the property: on ``--networks`` random networks (depth 1-3, widths 1-16, every supported
  element-wise activation, random scales and domains) the stated bound is never exceeded
  on ``--inputs`` inputs each;
* the tanh table's error, measured at every position the code can reach.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from mlpcodegen import load  # noqa: E402
from mlpcodegen.core.fixed import TANH_ERROR, measure_tanh_error, plan, quantise_inputs, run_codes, run_fixed  # noqa: E402
from mlpcodegen.harness import cortex  # noqa: E402
from mlpcodegen.core.ir import Dense, Network  # noqa: E402
from mlpcodegen.core.reference import evaluate  # noqa: E402
from mlpcodegen.runtime import cross  # noqa: E402

from bench.embedded import mlpcodegen_row  # noqa: E402
from bench.native_call import random_net  # noqa: E402

CORE, OPT = "m0plus", "-Os"
#: Inputs the limit of a bound from the formats is computed on (cls: ~1 s per 1,000).
LIMIT_INPUTS = 10_000
#: Partitions (pieces per input) whose share of undecided relus the report gives.
PIECES = (2, 10, 20, 100)
#: Issue 13's targets: (instructions, bytes, max abs error as a share of the output range).
TARGETS = {"sine 1-16-16-1 (fitted)": (6000, 1100, 5e-4), "seed 1-3-2-1": (None, None, 5e-3),
           "cls 16-64-64-10": (None, 13 * 1024, None)}


def fitted_sine() -> Network:
    """1-16-16-1 relu fitted to sin on [-pi, pi] (as tests/test_fixed.py)."""
    from sklearn.neural_network import MLPRegressor

    x = np.linspace(-np.pi, np.pi, 512)[:, None]
    fit = MLPRegressor(hidden_layer_sizes=(16, 16), activation="relu", solver="lbfgs", random_state=0,
                       max_iter=2000, tol=1e-9).fit(x, np.sin(x[:, 0]))
    return dataclasses.replace(load(fit), name="sine")  # the scikit-learn frontend reads it


def models() -> dict:
    return {"seed 1-3-2-1": (load(REPO / "generated/seed/seed.keras"), (-1.0, 1.0)),
            "sine 1-16-16-1 (fitted)": (fitted_sine(), (-np.pi, np.pi)),
            "sine 1-16-16-1 (random, bench/embedded.py)": (random_net([1, 16, 16, 1], ["relu", "relu", "linear"], 1),
                                                           (-1.0, 1.0)),
            "cls 16-64-64-10": (random_net([16, 64, 64, 10], ["relu", "relu", "softmax"], 2), (-1.0, 1.0))}


def integer_row(net: Network, domain, x: np.ndarray) -> dict:
    """NAME_q15 alone on the core: instructions, bytes, and its codes vs the mirror.  A
    softmax network's NAME_q15 writes int32 logits: the driver (one type for x and y) then
    calls it through a shim that copies int32 inputs to int16 (counted: a few instructions
    per input)."""
    fixed = plan(net, domain)
    codes = quantise_inputs(fixed, x)
    options = cortex.Options(dtype="q15", name="net", domain=domain)
    kind = "int32" if fixed.softmax else "int16"
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source = cortex.write_predictor(net, options, folder)
        size = cortex.measure_source(folder, source, cross.core(CORE), OPT)  # the object's sections, per function
        sources = [source]
        function = "net_q15"
        if fixed.softmax:
            (folder / "shim.c").write_text("\n".join([
                '#include "net.h"', "void net_shim(const int32_t *x, int32_t *y);",
                "void net_shim(const int32_t *x, int32_t *y)", "{", f"    int16_t q[{net.n_inputs}];",
                "    unsigned i;",
                f"    for (i = 0u; i < {net.n_inputs}u; ++i) q[i] = (int16_t)x[i];", "    net_q15(q, y);", "}", ""]))
            sources.append(folder / "shim.c")
            function = "net_shim"
        header = ['#include "net.h"', f"#define MLPC_T {kind}_t", f"#define MLPC_NAME {function}",
                  f"#define MLPC_INPUTS {net.n_inputs}u", f"#define MLPC_OUTPUTS {net.n_outputs}u"]
        if fixed.softmax:
            header.insert(1, f"void {function}(const int32_t *x, int32_t *y);")
        (folder / "mlpc_net.h").write_text("\n".join(header + [""]))
        rows = ["    {" + ", ".join(str(int(v)) for v in row) + "}" for row in codes]
        (folder / "mlpc_table.h").write_text("\n".join([
            f"#define MLPC_ROWS {len(x)}u", f"#define MLPC_TIMED {len(x)}u", "#define MLPC_REPEAT 1u",
            f"static const MLPC_T mlpc_x[{len(x)}][MLPC_INPUTS] = {{", ",\n".join(rows), "};", ""]))
        run = cortex.run_prepared(folder, sources, CORE, OPT, len(x), net.n_outputs, kind, len(x))
    wrapper = sum(code for name, (code, _) in size.functions.items() if name in ("net", "net_quantise"))
    same = np.array_equal(run.outputs.astype(np.int64), run_codes(fixed, codes))
    return {"bytes": size.predictor - wrapper, "instructions": run.instructions, "bit_exact": same,
            "stack": size.functions.get("net_q15", (0, 0))[1], "rodata": size.rodata}


def wrapper_row(net: Network, domain, x: np.ndarray) -> dict:
    """The float API (NAME: conversions + NAME_q15) on the core."""
    return mlpcodegen_row(net, x, CORE, OPT, cortex.Options(dtype="q15", name="net", domain=domain))


def search_worst(error_of, x: np.ndarray, errors: np.ndarray, domain, seed: int = 5, starts: int = 16,
                 steps: int = 60, batch: int = 256) -> float:
    """The largest error found by hill-climbing (on the bit-exact mirror) from the ``starts``
    worst of the random inputs ``x``: each step tries ``batch`` Gaussian moves per start at
    log-uniform scales (1e-4 to 0.3 of the half-width), clipped to the domain, and keeps the worst."""
    rng = np.random.default_rng(seed)
    lo, hi = domain
    current = x[np.argsort(-errors)[:starts]].copy()
    best = error_of(current)
    for _ in range(steps):
        scale = 10 ** rng.uniform(-4, -0.5, (starts, batch, 1)) * (hi - lo) / 2
        moves = np.clip(current[:, None, :] + rng.normal(0, 1, (starts, batch, x.shape[1])) * scale, lo, hi)
        moves = moves.astype(np.float32)
        found = error_of(moves.reshape(-1, x.shape[1])).reshape(starts, batch)
        pick = found.argmax(axis=1)
        value = found[np.arange(starts), pick]
        better = value > best
        current[better], best = moves[np.arange(starts), pick][better], np.maximum(best, value)
    return float(max(best.max(), errors.max()))


def pointwise_bounds(net: Network, fixed, x: np.ndarray, chunk: int = 200) -> np.ndarray:
    """Per input and output: the planner's affine error bound on a box of that one input, so
    every relu is decided as it is at the input (the formats and weights of ``fixed``).  No
    bound over the domain computed from the formats (each rounding anywhere within its
    1/2 LSB) can be smaller than this at any input: the limit of the kind of bound stated."""
    from mlpcodegen.core import fixed as planner

    out = []
    for start in range(0, len(x), chunk):
        points = x[start:start + chunk].astype(np.float64)
        original = planner._boxes
        planner._boxes = lambda *_: (points, points)  # sub-boxes of one point each
        try:
            spans = planner.layer_bounds(net, points[0], points[0])
        finally:
            planner._boxes = original
        error = np.full(points.shape, 2.0 ** -(fixed.in_frac + 1))
        form = planner._input_form(spans[0][4], fixed.in_frac)
        for index, (layer, step, span) in enumerate(zip(net.layers, fixed.layers, spans)):
            z_lo, z_hi, _, _, boxes = span
            dz = planner._sum_error(layer, step.weights * 2.0 ** -step.weight_frac, step.bias * 2.0 ** -step.acc_frac,
                                    boxes, error)
            rounding = 2.0 ** -(step.out_frac + 1) if step.shift > 0 else 0.0
            off = (z_hi + dz < 0) if step.kind == "relu" else np.zeros(z_hi.shape, dtype=bool)
            form, tight = planner._affine_step(form, layer, step, span, index == 0)
            error = np.minimum(np.where(off, 0.0, dz + rounding), tight)
        out.append(error)
    return np.concatenate(out)


def softmax_corners(logits: np.ndarray, bound: np.ndarray) -> np.ndarray:
    """max |softmax_i(z + d) - softmax_i(z)| over |d_j| <= bound_j, exactly: softmax_i rises
    with z_i and falls with every other z_j, so the extremes are two corners of the box."""
    def softmax(z: np.ndarray) -> np.ndarray:
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    p, out = softmax(logits), np.zeros(logits.shape)
    for i in range(logits.shape[1]):
        sign = -np.ones(logits.shape[1])
        sign[i] = 1.0
        out[:, i] = np.maximum(softmax(logits + bound * sign)[:, i] - p[:, i], p[:, i] - softmax(logits - bound * sign)[:, i])
    return out


def undecided(net: Network, domain, pieces: int, boxes: int = 500, seed: int = 3) -> float:
    """Share of the hidden relus undecided (on for some inputs of the box, off for others) on
    ``boxes`` random boxes of the domain cut in ``pieces`` per input: how fine a partition
    of the domain a bound needs before it knows which relus pass their errors."""
    from mlpcodegen.core import fixed as planner

    lo, hi = domain
    half = (hi - lo) / pieces / 2
    center = np.random.default_rng(seed).uniform(lo + half, hi - half, (boxes, net.n_inputs))
    original = planner._boxes
    planner._boxes = lambda *_: (center - half, center + half)
    try:
        spans = planner.layer_bounds(net, center[0] - half, center[0] + half)
    finally:
        planner._boxes = original
    hidden = [(z_lo < 0) & (z_hi > 0) for (z_lo, z_hi, *_), layer in zip(spans, net.layers)
              if layer.activation.name == "relu"]
    return float(np.mean(np.concatenate(hidden, axis=1)))


def relu_limit(net: Network, fixed, x: np.ndarray, logits: np.ndarray, logit_errors: np.ndarray,
               errors: np.ndarray) -> dict:
    """The limit above on ``x`` (logits; probabilities through softmax_corners) against the
    measured errors there; checks it holds at every input."""
    bound = pointwise_bounds(net, fixed, x)
    probabilities = softmax_corners(logits, bound)
    if np.any(logit_errors > bound) or np.any(errors > probabilities + 1e-6):  # + the wrapper's float32
        raise SystemExit("a pointwise bound is exceeded: the planner's bound is unsound")
    return {"limit_logits": float(bound.max() / logit_errors.max()),
            "limit_probabilities": float(probabilities.max() / errors.max())}


def accuracy(net: Network, domain, n: int) -> dict:
    fixed = plan(net, domain)
    x = np.random.default_rng(1).uniform(*domain, (n, net.n_inputs)).astype(np.float32)
    reference = evaluate(net, x.astype(np.float64))
    y = run_fixed(fixed, x)
    errors = np.abs(y - reference).max(axis=1)
    error = float(errors.max())
    out = {"error": error, "range": float(np.ptp(reference)), "bound": float(fixed.bound.max()),
           "formats": fixed, "searched": search_worst(
               lambda v: np.abs(run_fixed(fixed, v) - evaluate(net, v.astype(np.float64))).max(axis=1),
               x, errors, domain)}
    q7 = plan(net, domain, weight_bits=8)  # the q7 question: int8 weights, int16 activations
    y7 = run_fixed(q7, x)
    out["q7_error"], out["q7_bound"] = float(np.abs(y7 - reference).max()), float(q7.bound.max())
    out["q7_agree"] = float(np.mean(y7.argmax(1) == reference.argmax(1))) if fixed.softmax else None
    if fixed.softmax:
        out["agree_1000"] = float(np.mean(y[:1000].argmax(1) == reference[:1000].argmax(1)))
        out["agree_all"] = float(np.mean(y.argmax(1) == reference.argmax(1)))
        last = net.layers[-1]
        logits_net = Network(net.n_inputs, net.layers[:-1] + (Dense(last.kernel, last.bias, name=last.name),))
        top2 = np.sort(evaluate(logits_net, x.astype(np.float64)), axis=1)[:, -2:]
        gap = top2[:, 1] - top2[:, 0]
        differ = y.argmax(1) != reference.argmax(1)
        out["largest_gap_missed"] = float(gap[differ].max(initial=0.0))
        out["certified"] = float(np.mean(gap > 2 * fixed.layers[-1].logit_error))
        out["logit_bound"] = fixed.layers[-1].logit_error

        def logit_errors(v: np.ndarray) -> np.ndarray:
            codes = run_codes(fixed, quantise_inputs(fixed, v))
            return np.abs(codes * 2.0 ** -fixed.out_frac - evaluate(logits_net, v.astype(np.float64))).max(axis=1)

        errors = logit_errors(x)
        out["logit_error"], out["logit_searched"] = float(errors.max()), search_worst(logit_errors, x, errors, domain)
        sample = x[:LIMIT_INPUTS]
        codes = run_codes(fixed, quantise_inputs(fixed, sample)) * 2.0 ** -fixed.out_frac
        logits = evaluate(logits_net, sample.astype(np.float64))
        out.update(relu_limit(net, fixed, sample, logits, np.abs(codes - logits),
                              np.abs(y[:LIMIT_INPUTS] - reference[:LIMIT_INPUTS])))
        out["undecided"] = {pieces: undecided(net, domain, pieces) for pieces in PIECES}
    return out


def property_check(networks: int, n: int) -> tuple[int, float, float]:
    """(networks, worst error/bound ratio, smallest bound/error ratio) over random networks."""
    rng = np.random.default_rng(13)
    worst, tightest = 0.0, np.inf
    for case in range(networks):
        depth = int(rng.integers(1, 4))
        widths = [int(rng.integers(1, 17)) for _ in range(depth + 1)]
        acts = [str(rng.choice(["relu", "tanh", "sigmoid", "linear", "relu6", "hard_tanh"])) for _ in range(depth)]
        net = random_net(widths, acts, 100 + case)
        half = float(rng.uniform(0.1, 8))
        fixed = plan(net, (-half, half))
        x = rng.uniform(-half, half, (n, net.n_inputs)).astype(np.float32)
        error = np.abs(run_fixed(fixed, x) - evaluate(net, x.astype(np.float64))).max(axis=0)
        worst = max(worst, float(np.max(error / fixed.bound)))
        tightest = min(tightest, float(np.max(fixed.bound) / max(np.max(error), 1e-300)))
    return networks, worst, tightest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "bench/FIXED.md"))
    parser.add_argument("--inputs", type=int, default=100_000)
    parser.add_argument("--networks", type=int, default=40)
    args = parser.parse_args()
    started = time.perf_counter()
    rows = []
    for label, (net, domain) in models().items():
        x = np.random.default_rng(0).uniform(*domain, (64, net.n_inputs)).astype(np.float32)
        float_rows = {mode: mlpcodegen_row(net, x, CORE, OPT, cortex.Options(name="net", optimize=mode))
                      for mode in ("size", "speed")}
        rows.append((label, net, integer_row(net, domain, x), wrapper_row(net, domain, x), float_rows,
                     accuracy(net, domain, args.inputs)))
        print(label, "done", file=sys.stderr)
    prop = property_check(args.networks, args.inputs)
    table = measure_tanh_error()
    text = report(rows, prop, table, args.inputs, time.perf_counter() - started)
    Path(args.out).write_text(text)
    print(text)


def report(rows, prop, table: float, n: int, seconds: float) -> str:
    lines = ["# Fixed point (Q15) on Cortex-M0+ against the float build (issue 13)", "",
             f"Written by `python bench/fixed.py` ({seconds:.0f} s). arm-none-eabi-gcc {' '.join(cross.BASE_FLAGS)} "
             f"{' '.join(cross.core(CORE).flags)} {OPT}; QEMU {cross.core(CORE).machine} -icount shift=0; "
             "instructions: mean over 64 random inputs of the domain, an empty call subtracted. "
             "q15 integer = `NAME_q15` (int16 codes in and out, int32 logits for softmax: the predictor, its helpers, "
             "weights, tanh table and, for softmax, `NAME_q15_argmax`; the float wrapper's functions apart); "
             "q15 float API = `NAME` (rounding and scaling "
             "in soft float around `NAME_q15`); float32 = the embedded profile's C (`--profile embedded`). "
             "Bytes: the object file's code + constants (soft-float helpers and libm apart: the float "
             "builds link ~3-6 KB of them, the q15 integer predictor none).", "",
             "| model | build | bytes | instructions / inference | stack |", "|---|---|---|---|---|"]
    for label, net, integer, wrapper, floats, _ in rows:
        lines.append(f"| {label} | **q15 integer (NAME_q15)** | {integer['bytes']:,} | "
                     f"{integer['instructions']:,.0f} | {integer['stack']} |")
        lines.append(f"| {label} | q15 float API (NAME) | {wrapper['bytes']:,} | {wrapper['instructions']:,.0f} | "
                     f"{wrapper['stack']} |")
        for mode, row in floats.items():
            lines.append(f"| {label} | float32 embedded, optimize {mode} | {row['bytes']:,} | "
                         f"{row['instructions']:,.0f} | {row['stack']} |")
    lines += ["", f"## Accuracy ({n:,} random inputs of the domain, the integer mirror: bit-exact with the core)", "",
              "| model | domain | formats | max abs error | output range | error / range | stated bound | "
              "bound / error | max abs error, searched | bound / searched | classes agree | core bits = mirror |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for label, net, integer, _, _, acc in rows:
        fixed = acc["formats"]
        formats = f"in Q{fixed.in_frac}; " + ", ".join(
            f"W Q{layer.weight_frac}/int{layer.acc_bits}/out Q{layer.out_frac}" for layer in fixed.layers)
        agree = f"{100 * acc['agree_1000']:.1f}% of 1,000 ({100 * acc['agree_all']:.2f}% of all)" \
            if "agree_1000" in acc else "-"
        lo, hi = fixed.domain
        lines.append(f"| {label} | [{lo[0]:.4g}, {hi[0]:.4g}] | {formats} | {acc['error']:.3g} | {acc['range']:.3g} | "
                     f"{acc['error'] / acc['range']:.2e} | {acc['bound']:.3g} | {acc['bound'] / acc['error']:.1f} | "
                     f"{acc['searched']:.3g} | {acc['bound'] / acc['searched']:.1f} | {agree} | "
                     f"{'yes' if integer['bit_exact'] else 'NO'} |")
    lines += ["", "## int8 weights (q7 question): the same plan with 8-bit weights, 16-bit activations", "",
              "| model | max abs error | error / range | stated bound | classes agree |", "|---|---|---|---|---|"]
    for label, net, integer, _, _, acc in rows:
        agree = "-" if acc["q7_agree"] is None else f"{100 * acc['q7_agree']:.2f}%"
        lines.append(f"| {label} | {acc['q7_error']:.3g} | {acc['q7_error'] / acc['range']:.2e} | "
                     f"{acc['q7_bound']:.3g} | {agree} |")
    lines += ["", "int8 weights miss the accuracy targets above by more than 10x (and halve only the weights' bytes: "
              "Cortex-M0+ has no SIMD to use them faster): not offered.", ""]
    networks, worst, tightest = prop
    lines += ["## Targets", ""]
    for label, net, integer, _, floats, acc in rows:
        target = TARGETS.get(label)
        if target is None:
            continue
        ins, size, share = target
        checks = []
        if ins:
            checks.append(f"instructions {integer['instructions']:,.0f} <= {ins:,} "
                          f"({'met' if integer['instructions'] <= ins else 'MISSED'}; float32: "
                          f"{floats['speed']['instructions']:,.0f})")
        if size:
            checks.append(f"bytes {integer['bytes']:,} <= {size:,} ({'met' if integer['bytes'] <= size else 'MISSED'})")
        if share:
            value = acc["error"] / acc["range"]
            checks.append(f"error/range {value:.2e} <= {share:g} ({'met' if value <= share else 'MISSED'})")
        if "agree_1000" in acc:
            checks.append(f"argmax agreement on 1,000 inputs {100 * acc['agree_1000']:.1f}% "
                          f"({'met' if acc['agree_1000'] == 1.0 else 'MISSED'}; {100 * acc['agree_all']:.2f}% of "
                          f"{n:,}; every input whose class differs has a reference top-2 logit gap of at most "
                          f"{acc['largest_gap_missed']:.2g}; the stated logit bound {acc['logit_bound']:.3g} certifies "
                          f"the class of the {100 * acc['certified']:.1f}% of inputs whose gap exceeds twice it)")
        ratio = acc["bound"] / acc["error"]
        searched = f"; {acc['bound'] / acc['searched']:.1f}x of the worst error found by search"
        if "logit_bound" in acc:
            searched += (f"; on the logits NAME_q15 returns: bound {acc['logit_bound']:.3g}, "
                         f"{acc['logit_bound'] / acc['logit_error']:.1f}x the random sample's "
                         f"{acc['logit_error']:.2g}, {acc['logit_bound'] / acc['logit_searched']:.1f}x the searched "
                         f"{acc['logit_searched']:.2g}")
        checks.append(f"bound within 10x of the measured error: {ratio:.1f}x ({'met' if ratio <= 10 else 'MISSED'}"
                      f"{searched})")
        if "limit_logits" in acc:
            checks.append(f"why: the same affine bound at each input alone, every relu decided as it is there "
                          f"(the least a bound from the formats can state at that input: each rounding anywhere "
                          f"in its 1/2 LSB; probabilities through softmax's exact corners), at the worst of "
                          f"{LIMIT_INPUTS:,} inputs, is {acc['limit_logits']:.1f}x the measured error on the logits "
                          f"and {acc['limit_probabilities']:.1f}x on the probabilities: a bound for the whole "
                          f"domain can only approach that with every relu's state known region by region, and "
                          f"on each of the planner's sub-boxes all 128 relus are undecided; on boxes of "
                          + ", ".join(f"{k} pieces per input ({k}^{net.n_inputs} boxes) "
                                      f"{100 * v:.0f}%" for k, v in acc["undecided"].items()) +
                          " of them still are")
        lines.append(f"- {label}: " + "; ".join(checks))
    lines += [f"- Property: {networks} random networks x {n:,} inputs: the largest error / bound ratio is "
              f"{worst:.3f} ({'never exceeded' if worst <= 1 else 'EXCEEDED'}); the tightest bound is "
              f"{tightest:.1f}x its measured error.",
              f"- tanh table (257 entries over [0, 8], linear interpolation, Q15): error {table:.4g} measured at "
              f"every reachable position (+ 2^-20 for the argument's truncation); the constant the planner uses: "
              f"{TANH_ERROR:.4g} ({'equal' if table == TANH_ERROR else 'DIFFERENT'}).", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
