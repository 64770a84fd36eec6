"""The dependency-free languages (js, rust, go, java, wasm) against C: the same bits,
and their speed.

Bits: on seed 1-3-2-1 (generated/seed), mid 8-64-64-1, cls 16-64-64-10 and random
networks whose activations cycle through every activation the language writes, each
language's float64 (float32) outputs are compared bit for bit with the C target's
float64 (float32) built with ``gcc -O2 -ffp-contract=off`` (own math: ``--math fast``),
one-sample calls and the batch function alike; NaN counts as equal to NaN.  Inputs:
uniform in [-4, 4] with specials in the first rows (+-0, +-inf, NaN, huge, tiny).

Speed: each program times itself (its own loop, after a warm-up, in CPU time): ns per
one-sample call (a row of the inputs in turn) and batch rows per second, float32 and
float64, against the C target built as the runtime builds it (``-O3 -march=native``), in
the same run.

    python bench/languages.py                # the full matrix (10^4 inputs, 20 random networks) + speed
    python bench/languages.py --quick        # 1000 inputs, 4 random networks
Writes bench/LANGUAGES.md.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import numpy as np  # noqa: E402

from mlpcodegen.core.activations import REGISTRY  # noqa: E402
from mlpcodegen.backends import emit  # noqa: E402
from mlpcodegen.core.errors import UnsupportedError  # noqa: E402
from mlpcodegen.core.ir import Activation, Dense, Network  # noqa: E402
from nets import dense_chain  # noqa: E402
from mlpcodegen.core.numeric import numeric_type  # noqa: E402
from mlpcodegen.runtime import subprocess_peer as sp  # noqa: E402

LANGUAGES = tuple(target for target in sp.TOOLCHAINS if target != "c")  # a new language: its toolchain entry
DTYPES = ("float64", "float32")
PARAMS = {"relu": {"negative_slope": 0.1, "max_value": 2.0, "threshold": 0.25}, "elu": {"alpha": 0.5},
          "gelu": {"approximate": 1.0}, "threshold": {"threshold": 0.1, "default_value": -1.0}}
TARGETS = {"rust": 1.2, "wasm": 2.0, "go": 2.0, "java": 2.0, "js": 3.0}


def random_net(widths, activations, seed) -> Network:
    """tests/nets.py's chain (kernels N(0, 1/fan-in), biases N(0, 0.01)), as the tests build it."""
    return dense_chain(widths, activations, seed, names="dense_{i}")


def fixed_networks() -> dict[str, Network]:
    from mlpcodegen.frontends import load

    return {"seed 1-3-2-1": load(REPO / "generated/seed/seed.keras"),
            "mid 8-64-64-1": random_net([8, 64, 64, 1], ["relu", "relu", "linear"], 1),
            "cls 16-64-64-10": random_net([16, 64, 64, 10], ["relu", "relu", "softmax"], 2)}


def _layer(rng, name: str, n_in: int, units: int, index: int) -> Dense:
    spec = REGISTRY[name]
    params = {"alpha": tuple(rng.uniform(0.1, 0.3, 2 * units if spec.halves else units))} if spec.per_unit \
        else PARAMS.get(name, {})
    width = 2 * units if spec.halves else units
    return Dense(rng.normal(size=(n_in, width)) * (1.2 / np.sqrt(n_in)), rng.normal(size=width) * 0.2,
                 Activation(name, params), f"{name}_{index}")


def writes(target: str, name: str) -> bool:
    """Whether ``target`` writes activation ``name`` (it refuses log, log1p, erf...)."""
    net = Network(2, (_layer(np.random.default_rng(0), name, 2, 3, 0),))
    try:
        emit(net, target, dtype="float64")
    except UnsupportedError:
        return False
    return True


def random_networks(target: str, count: int, seed: int = 0) -> dict[str, Network]:
    """``count`` networks of 2-3 layers whose activations cycle through every activation
    ``target`` writes; every third has a 40-unit layer (written as loops, as C does)."""
    names = [name for name in sorted(REGISTRY) if writes(target, name)]
    rng, nets, at = np.random.default_rng(seed), {}, 0
    for i in range(count):
        depth = 2 + i % 2
        widths = [int(rng.integers(1, 9))] + [int(rng.integers(2, 12)) if (i % 3 or j) else 40 for j in range(depth)]
        layers, n = [], widths[0]
        for j in range(depth):
            name = names[at % len(names)]
            at += 1
            layers.append(_layer(rng, name, n, widths[j + 1], j))
            n = layers[-1].n_out
        net = Network(widths[0], tuple(layers), name=f"random_{i}")
        nets[f"random {i}: {net.describe()}"] = net
    return nets


def inputs(n_inputs: int, n: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).uniform(-4.0, 4.0, (n, n_inputs))
    specials = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e30, -1e30, 1e-30, 5e-324, 700.0, -700.0, 90.0, -90.0]
    for i, value in enumerate(specials[: n]):
        x[i] = value
    x[len(specials):len(specials) + 20] *= 30.0  # saturation and the exp ranges' ends
    return x


def mismatches(a: np.ndarray, b: np.ndarray) -> int:
    """Values whose bits differ (NaN equals NaN)."""
    bits = np.uint32 if a.dtype == np.float32 else np.uint64
    same = (a.view(bits) == b.view(bits)) | (np.isnan(a) & np.isnan(b))
    return int(np.size(same) - np.count_nonzero(same))


def c_reference(net: Network, dtype: str) -> sp.SubprocessNetwork:
    return sp.build(net, "c", sp.c_toolchain(), numeric_type(dtype), "mlp")


def check_bits(target: str, net: Network, dtype: str, x: np.ndarray) -> tuple[int, int, int]:
    """(values compared, one-sample mismatches, batch mismatches) against C."""
    numeric = numeric_type(dtype)
    expected = c_reference(net, dtype)(x)
    program = sp.build(net, target, sp.TOOLCHAINS[target], numeric, "mlp")
    one, batch = program.predict(x, "one"), program.predict(x, "batch")
    return expected.size, mismatches(expected, one), mismatches(expected, batch)


def bits_table(n: int, count: int) -> tuple[list[str], bool]:
    lines = [f"| language | dtype | networks | values compared | one-sample mismatches | batch mismatches |",
             "|---|---|---|---|---|---|"]
    ok = True
    for target in LANGUAGES:
        nets = {**fixed_networks(), **random_networks(target, count)}
        for dtype in DTYPES:
            total = bad_one = bad_batch = 0
            for label, net in nets.items():
                values, one, batch = check_bits(target, net, dtype, inputs(net.n_inputs, n))
                total, bad_one, bad_batch = total + values, bad_one + one, bad_batch + batch
                if one or batch:
                    print(f"{target} {dtype} {label}: {one} / {batch} mismatches", flush=True)
            ok &= bad_one == bad_batch == 0
            lines.append(f"| {target} | {dtype} | {len(nets)} | {total} | {bad_one} | {bad_batch} |")
            print(lines[-1], flush=True)
    return lines, ok


#: The C builds timed beside the languages: as the runtime builds it (the ratio's reference), the same
#: without contraction (the build whose bits the languages give), and the portable x86-64 baseline.
C_BUILDS = {"c": sp.C_NATIVE, "c no-contract": sp.C_NATIVE + ("-ffp-contract=off",), "c portable": sp.C_PORTABLE}


def speed_table(dtype: str, calls: int, passes: int, rounds: int, records: list[dict]) -> list[str]:
    """The table's lines; one record per (model, language) appended to ``records`` for the summary."""
    numeric = numeric_type(dtype)
    lines = ["| model | program | one sample ns | ÷ C native | target | ÷ C no-contract | ÷ C portable | batch rows/s | "
             "C native ÷ it (batch) | C no-contract ÷ it (batch) | C portable ÷ it (batch) | source bytes |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for label, net in fixed_networks().items():
        x = np.random.default_rng(1).uniform(-2, 2, (1000, net.n_inputs))
        programs = {key: sp.build(net, "c", sp.c_toolchain(flags), numeric, "mlp", tag=key)
                    for key, flags in C_BUILDS.items()}
        programs.update({t: sp.build(net, t, sp.TOOLCHAINS[t], numeric, "mlp") for t in LANGUAGES})
        times: dict[str, list[tuple[float, float]]] = {t: [] for t in programs}
        for _ in range(rounds):  # interleaved rounds: a burst of load falls on all alike
            for t, program in programs.items():
                times[t].append(program.time(x, calls, passes))
        one = {t: statistics.median(v[0] for v in values) for t, values in times.items()}
        rate = {t: statistics.median(v[1] for v in values) for t, values in times.items()}
        for t in programs:
            size = len(emit(net, "c" if t in C_BUILDS or t == "wasm" else t, dtype=dtype, name="mlp").encode())
            ratio = one[t] / one["c"]
            goal = TARGETS.get(t)
            lines.append(f"| {label} | {t} | {one[t]:.1f} | {ratio:.2f} | "
                         f"{'-' if goal is None else f'≤ {goal} ' + ('met' if ratio <= goal else 'missed')} | "
                         f"{one[t] / one['c no-contract']:.2f} | {one[t] / one['c portable']:.2f} | {rate[t]:.3g} | "
                         f"{rate['c'] / rate[t]:.2f} | {rate['c no-contract'] / rate[t]:.2f} | "
                         f"{rate['c portable'] / rate[t]:.2f} | {size} |")
            if goal is not None:
                records.append({"dtype": dtype, "model": label.split()[0], "language": t, "ratio": ratio,
                                "goal": goal, "batch": rate["c"] / rate[t]})
            print(lines[-1], flush=True)
    return lines


SPEED_NOTES = [
    "## Reading it",
    "",
    "The ratio the issue targets is to C native, the C as the runtime builds it: gcc -O3 -march=native, which",
    "vectorises the one-sample loops and contracts a*b + c into FMA (so its bits are not the languages' bits: c",
    "no-contract is the same build without contraction, the bits every language gives), and whose batch runs",
    "blocks of rows side by side. C portable is the x86-64 baseline (SSE2, 4 float lanes, no FMA). A multiply",
    "and an add per weight (mid: 4672 weights, cls: 5760) bound what each language can do: without vectors a",
    "core does at most one product and one sum per cycle, one weight per cycle; C native does 8 lanes with FMA.",
    "",
    "* rust: LLVM vectorises C's input-major loops but never contracts, so it sits at c no-contract (float32",
    "  mid 1.03x, cls 0.80x it; float64 1.04-1.05x, cls 0.95x): met on seed and cls float32; mid and float64",
    "  miss by what FMA gives C (c no-contract itself is 1.21-1.42x C native). Its code is already the",
    "  arithmetic and nothing else (mid's 64x64 layer: 8 ymm sums in registers, per input one broadcast, 8",
    "  vmulps with the weights from memory, 8 vaddps; the 64 -> 1 layer one dependent chain of 64 adds, as in",
    "  C), so explicit core::arch SIMD in C's order has nothing to remove: no FMA is what it lacks. 512-bit",
    "  vectors (-C target-feature=-prefer-256-bit): one sample slower (mid float32 160 -> 173 ns). Its batch",
    "  runs blocks of 16 rows layer by layer.",
    "* java: C2 vectorises C's input-major loops, 8 inputs a step: z[j] = ((z[j] + w[j] * hk0) + w[64 + j] * hk1)",
    "  + ... (C's order, the same bits). This round (one interleaved run each, CPU time, float32): max/min against",
    "  a constant are written Math.max/Math.min (the same value, signed zeros and NaN included; C2 writes them",
    "  without a branch, where C's `!(z <= 0) ? z : 0` was a branch taken at random by a relu's sums): mid",
    "  820 -> 455 ns, cls 1045 -> 620; a layer's first step starts from the bias (no loop copying it): 425 / 595;",
    "  from 16 units a step's 8 weight rows are one array read at constant offsets (one bounds check per step,",
    "  not 8): 397 / 567. Why the rest is missed, read from C2's code (-XX:CompileCommand=print; Debian's hsdis",
    "  does not load in JDK 17, so its hex dump through objdump): C2's vectors follow the loop's trip count, its",
    "  unroll policy keeping several main-loop passes: a 64-unit loop gets 128-bit vectors (xmm, 4 floats) on",
    "  this AVX-512 host (128 units: ymm; 256: zmm; seen in the code). 4 lanes, a multiply and an add per product",
    "  (no FMA: the bits) on two FP ports: 4 products per cycle, 14 per ns at 3.52 GHz (measured by a chain of",
    "  1-cycle adds); a 64x64 layer alone runs at 13.4 per ns. C native does 8 lanes with FMA: 16 per cycle, 4x.",
    "  Tried, no faster: steps of 2, 4, 6, 10-16 (from 10 C2 stops vectorising: 3-7x slower); one flat array",
    "  per layer (w[k * 64 + j], a variable offset: not vectorised, 3x slower); j unrolled by hand (C2 packs only its own",
    "  copies: 3x slower); static scratch arrays (C2 no longer proves z is not a weight row: 5x slower); the",
    "  activation in the last step (550 ns: Math.max is not vectorised, so that loop stays scalar); tiles of 4, 5",
    "  or 10 units for the 64->10 layer (640-700 vs 595 ns); JDK 25 (temurin) slower than 17 (480 vs 425 ns).",
    "  A block batch (rows side by side: each unit's sums over float[BLOCK] rows, weights read once per block)",
    "  was written and measured: 64 rows (xmm) 1.93-2.04e6 rows/s, 256 rows (zmm) 2.5e6, 1000 rows 2.35-2.59e6,",
    "  against 1.78-2.51e6 row by row (the spread of the runs); cls 1.52e6 against 1.69e6. With zmm the rows",
    "  of all inputs (64 KB for 256 rows) exceed L1 (32 KB), so each unit reads them again from L2 (likely; no",
    "  counters in this VM); sums kept in registers, as rust's blocks do, are not C2's to choose. So not kept:",
    "  the batch calls the one-sample function per row. The driver warms the batch on 300 thousand rows (C2",
    "  compiles a method after some hundreds of calls; before, C1's profiling code is 5-10x slower).",
    "  Next round (interleaved, CPU time): an elementwise activation overwrites its layer's sums and a first loop",
    "  layer reads x[o + k] itself, so a call allocates only the sums (they must be fresh arrays: escape analysis",
    "  then gives them a memory slice of their own, which is what lets C2 vectorise stores of sums beside loads of",
    "  weights): mid float64 587 -> 520 ns, cls 861 -> 750; float32 unchanged (560-575, 390-400). The driver runs",
    "  java with -XX:+AlwaysPreTouch: first-touch page faults of the growing heap are kernel time of the timed",
    "  thread (allocating less per call, cls float32 measured 560 -> 627 ns without it: its timed round fell on",
    "  them). Read from perf's cpu-clock samples matched to C2's code: each unit loop is a pre-loop, the vector",
    "  loop and a post-loop; the pre-loop aligns the store to the fresh sums array, whose address varies call to",
    "  call, so 4-8 of a 64-unit loop's units run scalar at ~4x the cost (20% of mid float64's time), and the",
    "  64->10 layer's loops, mostly scalar, are 16% of cls float32's. Tried, no faster: the relu applied where",
    "  the next layer reads (mid float64 594 vs 550 ns, cls float32 654 vs 570), allocations padded to 64-byte",
    "  multiples (pre-loop counts constant within a TLAB: no change), the softmax's max as a Math.max tree (762",
    "  vs 773 ns, noise), the 64->10 layer as 10 sums in locals over 64 inputs (590 vs 560), z3 in z1's array.",
    "* wasm: clang's 128-bit simd (4 lanes, no FMA: a quarter of C native's lanes x FMA). A call of an empty",
    "  export costs 14 ns in the same loop (the loader's copies ~1-2 ns more than calling the export itself):",
    "  seed float32 met (57 ns); float64 at 2.04-2.06x (94 ns; the same C built natively by clang without",
    "  contraction: 62 ns; passing x and y as f64 arguments: no faster; V8 builds each",
    "  f64 constant in a general register, 2 instructions). Earlier runs timed part of the calls in the",
    "  interpreter (the driver's second top-level loop was on-stack replaced partway; seed float32 95 ns then):",
    "  the JS and wasm drivers now time a warmed-up function. Mid and cls: the same C built natively by clang",
    "  for SSE2 (4 lanes, no FMA) takes 328 ns on mid float32 (2.6x C native): the lanes bound 2x out of",
    "  reach; V8 adds the rest (566 ns): clang keeps a 64-unit layer's sums in 16 v128 locals and TurboFan,",
    "  with 16 xmm registers, spills them every input (~20 stack stores per input of the 64x64 layer). The C",
    "  loops in strips of 32 units (8 v128 sums, C's order, the same bits) measured 569 -> 445 ns (a change",
    "  to C's printer, not made here); clang flags (-O2, unroll limits, -fno-slp-vectorize) change nothing",
    "  beyond noise. Its batch is C's block batch with the 16-byte (v128) tiles: 9-12% more rows/s than",
    "  C's plain loops (mid and cls, both dtypes, one interleaved run each). Next round: a constants pass after",
    "  the link (backends/wasm_pool.py) reads every f64/f32 constant but +0 from a pool in memory, one load (or",
    "  an operand) for V8's two instructions: seed float64 95 -> 82 ns (1.77x C native), the same bits; float32,",
    "  mid and cls unchanged. The C with its functions' literals read from a global array (by hand: C's printer)",
    "  measured 66 ns: clang then loads each constant once per function.",
    "* go: gc does not vectorise. This round a select picks between bit patterns (math.Float32bits; `if c",
    "  { ub = ua }`), which gc writes as CMOV; a float select was a branch taken at random by a relu's sums: mid",
    "  float32 1663 -> 1285 ns, cls 1987 -> 1591. That is the scalar bound: each weight is a MULSS and an ADDSS,",
    "  two FP ports do two a cycle, so one weight per cycle: mid 4672 weights / (1271 ns x 3.52 GHz) = 1.04 per",
    "  cycle, a 64x64 layer alone 1016 ns = 1.15 (both dtypes alike); 2x C native (mid 250 ns) would need 5.3.",
    "  Bounds checks left (-gcflags=-d=ssa/check_bce): the step's slice expression (one per 8 weights) and the",
    "  bias loads outside the inner loop: integer work beside the FP ports, not the bound. Rows side by side,",
    "  measured on a 64x64 layer (ns per row, CPU time): one row 1016, two rows sharing each weight load 1014,",
    "  four rows 1285 (16 sums spill from the 16 xmm registers): no block beats the FP ports, so the batch",
    "  calls the one-sample function per row.",
    "* js: TurboFan optimises the row function (no deopt: --trace-opt/--trace-deopt) but JavaScript has no",
    "  SIMD. This round: the loop arrays, module-level consts (context slots TurboFan reloaded and hole-checked",
    "  at every read), are read through function-local consts; float32's are Float64Arrays of float32 values;",
    "  8 sums side by side: mid float64 3230 -> 2220 ns, float32 7950 -> 6110 (cls 4000 -> 2840, 10100 ->",
    "  7730); seed 119 -> 89 and 279 -> 251 ns from the driver fix (see wasm). float64 now runs a 64x64 layer",
    "  at 0.36 ns per weight (1.3 cycles at 3.55 GHz: a bounds-checked load, a product, a sum): 3x C native",
    "  on mid needs 4672 / (3 x 217 ns) = 7.2 weights per ns, twice the scalar bound of one product and",
    "  one sum per cycle. float32: V8 has no float32 arithmetic; each Math.fround compiles to cvtsd2ss +",
    "  cvtss2sd, 4 conversions per weight (the product and the sum rounded, as C rounds them), 1.15 ns per",
    "  weight whatever the layout (4 or 8 sums, input-major: within 5%), so 30-50x (java's layout, 8 inputs",
    "  a step over rows of Float64Arrays: 1.5x slower, mid float64 2220 -> 3390 ns); seed float32's tanh",
    "  chains are latency-bound, each rounded operation adding two conversions to the chain. Rows side by",
    "  side (2 rows x 4 units, each weight read once per 2 rows): float64 20% faster per row on a 64x64 layer",
    "  (1480 -> 1180 ns), float32 no faster (conversion-bound), 4 rows x 4 units 5% (spills): not written,",
    "  the batch target (3x C's 32-row FMA blocks) being 5x away. The route to SIMD from JavaScript is wasm.",
    "",
    "The summary above (met, missed, batch gaps) is computed from this run's tables. Times are CPU time, so",
    "the ratios repeat within a few percent from run to run on this shared host.",
    "",
]

NOTES = [
    "## What the bits rest on",
    "",
    "* Every language computes the same operations in the same order as the C target: the printers share C's",
    "  expression graph and C's layer layout (written out or loops, by C's own rule; loop sums from the bias on,",
    "  inputs in order), and C's own exp/expm1/tanh/sigmoid are ported operation for operation",
    "  (`mlpcodegen/backends/_ported.py`), never the language's `exp`.",
    "* No contraction anywhere: C is built with `-ffp-contract=off`; rustc and javac never fuse; wasm has no FMA;",
    "  Go may fuse `x*y + z` on arm64/ppc64/s390x, so every Go product and sum is written inside a conversion",
    "  (`float64(...)`), which the Go spec says rounds; JavaScript's float32 rounds every operation with",
    "  `Math.fround` (a binary32 +, -, *, /, sqrt computed in binary64 and rounded once is the correctly rounded",
    "  binary32 result).  So bit-identity is promised on every architecture, not only x86-64; no ULP bound needed.",
    "* Not promised, hence refused by layer: anything needing log, log1p or erf (softplus, mish, log_sigmoid,",
    "  log_softmax, exact gelu): C takes them from libm, whose bits differ between libms; Rust's `core` has no",
    "  sqrt (layer_norm, rms_norm, variance_scale, unit_norm, squareplus refused in rust).",
    "* NaN outputs compare equal whatever their payload or sign.",
    "",
    "## sklearn-porter",
    "",
    "sklearn-porter 0.7.4 (the latest on PyPI) does not import on Python 3.11 with today's scikit-learn as it",
    "is: six scikit-learn module paths it imports were removed in scikit-learn 0.24, and its `__init__.py`",
    "calls `json.load(f, encoding='utf-8')`, a keyword Python 3.9 removed. `python bench/porter.py` mends",
    "both in a child process before importing it (the modules aliased to their packages, `json.load` wrapped",
    "to drop the keyword; none of its files changed) and times its Java and JavaScript against ours on three",
    "scikit-learn MLPs: [bench/PORTER.md](PORTER.md). 0.7.4 has no MLP template for Go (nor MLPRegressor for",
    "Java), so those have no comparison.",
    "",
    "## What adding a language touched (outside tests)",
    "",
    "| language | files | which |",
    "|---|---|---|",
    "| js | 3 | `backends/js.py` (new), one line in `backends/__init__.py`, its toolchain in `runtime/subprocess_peer.py` |",
    "| rust | 3 | `backends/rust.py` (new), one line in `backends/__init__.py`, its toolchain in "
    "`runtime/subprocess_peer.py` |",
    "| go | 3 | `backends/go.py` (new), one line in `backends/__init__.py`, its toolchain in `runtime/subprocess_peer.py` |",
    "| java | 3 | `backends/java.py` (new), one line in `backends/__init__.py`, its toolchain in "
    "`runtime/subprocess_peer.py` |",
    "| wasm | 3 | `backends/wasm.py` (new), one line in `backends/__init__.py`, its toolchain in "
    "`runtime/subprocess_peer.py` |",
    "",
    "Shared once by all five: `backends/_ported.py` (the ported math, C's layout), `runtime/subprocess_peer.py`",
    "(new), the loader table (`runtime/loaders.py`: a second table and one lookup), `verify --target` choices",
    "(`cli.py`: one lookup), README.  None of them edits C's printer.",
    "",
]


def summary(records: list[dict]) -> list[str]:
    """What this run met and missed, and the batch gaps, from its own figures."""
    met = [f"{r['language']} {r['model']} {r['dtype']}" for r in records if r["ratio"] <= r["goal"]]
    missed = [f"{r['language']} {r['model']} {r['dtype']} ({r['ratio']:.2f} of ≤ {r['goal']})"
              for r in records if r["ratio"] > r["goal"]]
    gaps = []
    for language in dict.fromkeys(r["language"] for r in records):
        batch = [r["batch"] for r in records if r["language"] == language and r["model"] != "seed"]
        if batch:
            gaps.append(f"{language} {min(batch):.1f}-{max(batch):.1f}x")
    return ["## This run, one sample against C native", "",
            f"* met ({len(met)}): {', '.join(met) or 'none'}",
            f"* missed ({len(missed)}): {', '.join(missed) or 'none'}",
            f"* batch, mid and cls: C native's batch is {', '.join(gaps)} the language's.", ""]


def machine() -> str:
    """The CPU model and the clock measured by bench/batch.py's chain of dependent adds."""
    from batch import clock_hz
    from cpuid_view import cpu_flags

    model = next((line.partition(":")[2].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown CPU")
    isa = "AVX-512" if "avx512f" in cpu_flags() else "AVX2" if "avx2" in cpu_flags() else "SSE"
    return f"Machine: {model}, {isa}, clock {clock_hz() / 1e9:.2f} GHz (a chain of dependent register adds)."


def main() -> int:
    global LANGUAGES
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1000 inputs, 4 random networks, fewer timing rounds")
    parser.add_argument("--no-speed", action="store_true", help="the bits only")
    parser.add_argument("--no-bits", action="store_true", help="the speed only")
    parser.add_argument("--output", default=str(HERE / "LANGUAGES.md"))
    parser.add_argument("--languages", nargs="+", choices=LANGUAGES, default=LANGUAGES,
                        help="only these languages (default all; the C builds are always timed)")
    args = parser.parse_args()
    LANGUAGES = tuple(args.languages)
    n, count, rounds = (1000, 4, 3) if args.quick else (10_000, 20, 5)
    started = time.time()
    bits, ok = ([], True) if args.no_bits else bits_table(n, count)
    records: list[dict] = []
    speed = {} if args.no_speed else {dtype: speed_table(dtype, 100_000, 20, rounds, records)
                                      for dtype in ("float32", "float64")}
    load = os.getloadavg()
    text = [
        "# The dependency-free languages against C",
        "",
        f"Written by `python bench/languages.py{' --quick' if args.quick else ''}` ({time.time() - started:.0f} s).",
        "",
        f"## The same bits ({n} inputs per network, specials included)",
        "",
        "Against the C target built with `gcc -O2 -ffp-contract=off` (own math), per dtype; networks: seed, mid, cls "
        f"and {count} random ones cycling through every activation the language writes.",
        "",
        *bits,
        "",
    ]
    for dtype, table in speed.items():
        text += [f"## Speed, {dtype} (timed inside each program after a warm-up, in CPU time; median of {rounds} "
                 "interleaved rounds)",
                 "", f"C native: `gcc {' '.join(C_BUILDS['c'])}` (as the runtime builds it: AVX-512 host, gcc's "
                 "256-bit vectors, FMA contraction on); c no-contract: the same with `-ffp-contract=off` (the bits the "
                 f"languages give); C portable: `gcc {' '.join(C_BUILDS['c portable'])}` (x86-64 baseline: SSE2, "
                 "4 float lanes, no FMA). Times are CPU time of the timing thread (Node: of its process), so the time "
                 "other processes hold the core is not counted (the same program's wall time varied 1.5-3x on this "
                 "shared host). One sample: ns per call over 1000 rows in turn (JS and WASM: into the caller's `out` "
                 "array). Batch: rows per second of "
                 f"the batch function over the 1000 rows. Load average during the run: {load[0]:.1f} / {load[1]:.1f} / "
                 f"{load[2]:.1f} on {os.cpu_count()} cores.", "", *table, ""]
    if speed:
        text += [machine(), "", *summary(records), *SPEED_NOTES]
    text += NOTES
    Path(args.output).write_text("\n".join(text))
    print(f"wrote {args.output}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
