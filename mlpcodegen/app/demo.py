"""``mlpcodegen demo``: the whole pipeline on one model (the bundled seed by default).

It converts the model to C (and a header and the LaTeX formula) in a folder, compiles
and verifies the C against the float64 reference and ``model.predict``, times one
sample against ``model.predict``, eager ``model(x)`` and LiteRT (the fair peers for one
sample: ``predict`` pays for a whole batch pipeline) and prints a short summary: what
was done, the files, the errors, the speed and, for a small network, the formula, with
the units stated.  Without ``-o DIR`` the files go to a temporary folder that is
removed when the demo ends.  When the model's folder holds the ``scaling.json`` used in training, the
scaling is folded in: every file and number is in the original units.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core._files import write_atomic
from ..core.errors import MlpCodegenError
from ..core.ir import Dense, Network

#: A formula with more weights, or longer, is not printed (it is in the .tex file).
MAX_FORMULA_WEIGHTS = 100
MAX_FORMULA_CHARS = 600
DIGITS = 3


@dataclass
class _Run:
    """What the demo did, for the summary."""
    model_path: Path
    net: Network  # in the units the files use
    name: str
    units: str
    folder: Path
    read_ms: float
    domain: tuple[np.ndarray, np.ndarray] = (np.zeros(0), np.zeros(0))
    files: list[tuple[Path, str]] = field(default_factory=list)
    checks: list[Any] = field(default_factory=list)  # VerifyReport per dtype
    speed: dict[str, float] = field(default_factory=dict)  # what -> seconds per sample
    sources: dict[str, str] = field(default_factory=dict)  # file kind -> text (for --verbose)
    keep: bool = True  # False: the folder is temporary, removed at the end

    @property
    def ok(self) -> bool:
        return all(report.ok for report in self.checks)


def run_demo(model_path: Any, *, verbosity: int = 1, out_dir: Any = None) -> int:
    """Run the demo on ``model_path``; write the files into ``out_dir`` (default: a new
    temporary folder).  ``verbosity``: 0 one line, 1 a short summary, 2 also the
    generated C.  Returns the exit code (1 when a verification fails)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before the first TensorFlow import
    from ..frontends.keras import load
    from ..harness.keras_model import load_keras_model
    from ..core.scaling import with_scaling

    model_path = Path(model_path)
    started = time.perf_counter()
    model_net = load(model_path)
    read_ms = (time.perf_counter() - started) * 1e3
    inputs, outputs, units = _scaling(model_path)
    net = with_scaling(model_net, inputs, outputs) if inputs or outputs else model_net
    run = _Run(model_path, net, "", units, _folder(out_dir), read_ms, keep=out_dir is not None)
    try:
        run.name = _write_files(run)
        keras_model = load_keras_model(model_path)
        run.domain = _domain(net.n_inputs, inputs)
        run.checks = [_verify(keras_model, model_net, run, inputs, outputs, dtype)
                      for dtype in ("float32", "float64")]
        run.speed = _speed(run, keras_model, inputs)
        lines = {0: _quiet_line, 1: _summary, 2: _verbose}[min(max(verbosity, 0), 2)](run)
    finally:
        if not run.keep:  # the temporary folder: nothing left behind
            shutil.rmtree(run.folder, ignore_errors=True)
    print("\n".join(lines))
    return 0 if run.ok else 1


def _scaling(model_path: Path):
    """(input scaling, output scaling, units text) from ``scaling.json`` beside the model."""
    from ..core.scaling import read_scaling_file

    scaling_file = model_path.parent / "scaling.json"
    if not scaling_file.is_file():
        return None, None, "model units (no scaling.json beside the model)"
    inputs, outputs = read_scaling_file(scaling_file)
    sides = " and ".join(side for side, s in (("input", inputs), ("output", outputs)) if s is not None)
    return inputs, outputs, f"original units ({sides} scaling from {scaling_file} folded in)"


def _folder(out_dir: Any) -> Path:
    """``out_dir`` (created if missing, its parent must exist) or a new temporary folder."""
    if out_dir is None:
        return Path(tempfile.mkdtemp(prefix="mlpcodegen-demo-"))
    folder = Path(out_dir)
    try:
        folder.mkdir(exist_ok=True)
    except OSError as exc:
        raise MlpCodegenError(f"cannot use {folder} for the demo's files: {exc.strerror}") from None
    if not folder.is_dir():
        raise MlpCodegenError(f"cannot use {folder} for the demo's files: not a folder")
    return folder


def function_name(stem: str) -> str:
    """A C identifier from a model file's stem: ``my-model (2)`` -> ``my_model_2``."""
    name = re.sub(r"_+", "_", re.sub(r"[^0-9A-Za-z_]", "_", stem)).strip("_")[:40].rstrip("_")
    return name if name and not name[0].isdigit() else f"mlp_{name}".rstrip("_")


def _write_files(run: _Run) -> str:
    """Write NAME.c, NAME.h and NAME.tex; return the function name used."""
    from ..backends.c import emit_c, emit_c_header
    from ..backends.latex import emit_latex

    name = function_name(run.model_path.stem)
    try:
        source = emit_c(run.net, dtype="float32", name=name)
    except MlpCodegenError:  # a stem that is a C keyword or library name (int, exp, ...)
        name = f"mlp_{name}"
        source = emit_c(run.net, dtype="float32", name=name)
    run.sources["c"] = source
    run.files += [(write_atomic(run.folder / f"{name}.c", source), f"C99, float32, {len(source.encode()):,} bytes"),
                  (write_atomic(run.folder / f"{name}.h", emit_c_header(run.net, dtype="float32", name=name)),
                   "its header")]
    try:
        tex = write_atomic(run.folder / f"{name}.tex", emit_latex(run.net, name=name, digits=4))
        run.files.append((tex, "the formula in LaTeX, weights to 4 digits"))
    except MlpCodegenError:  # too large to write out as a formula
        run.files.append((run.folder / f"{name}.tex", f"not written: too large for a formula "
                                                      f"({_weights(run.net):,} weights)"))
    return name


def _weights(net: Network) -> int:
    """Weights and biases of the Dense layers."""
    return sum(layer.kernel.size + (0 if layer.bias is None else layer.bias.size)
               for layer in net.layers if isinstance(layer, Dense))


def _domain(n_inputs: int, inputs: Any) -> tuple[np.ndarray, np.ndarray]:
    """Where to check: the training range in original units for min-max scaling,
    otherwise [-1, 1] in the units the function takes."""
    spec = getattr(inputs, "spec", None) or {}
    if spec.get("kind") == "minmax":
        lo, hi = (np.broadcast_to(np.asarray(spec[k], dtype=np.float64), (n_inputs,)) for k in ("min", "max"))
        if np.all(lo < hi):
            return lo, hi
    return np.full(n_inputs, -1.0), np.full(n_inputs, 1.0)


def _verify(keras_model, model_net: Network, run: _Run, inputs, outputs, dtype: str):
    from ..harness.verify import verify

    return verify(keras_model, "c", dtype, network=model_net, name=run.name, input_scaling=inputs,
                  output_scaling=outputs, domain=run.domain)


#: The peers one sample is timed against, in the order the summary names them.
PEERS = ("model.predict", "model(x) eager", "LiteRT")


def _speed(run: _Run, keras_model, inputs) -> dict[str, float]:
    """Seconds for one sample: model.predict, eager model(x), LiteRT (when it loads) and
    the C function's entries."""
    from ..harness.bench import median_seconds
    from ..runtime import compile_c

    function = compile_c(run.net, dtype="float32", name=run.name)
    row = ((run.domain[0] + run.domain[1]) / 2).astype(np.float32)
    model_row = row[None] if inputs is None else inputs.apply(row[None]).astype(np.float32)
    bound = function.bind()
    bound.x[:] = row
    times = {"model.predict": median_seconds(lambda: keras_model.predict(model_row, verbose=0), repeats=15),
             "model(x) eager": median_seconds(lambda: keras_model(model_row), repeats=15, inner=20)}
    lite = _litert(keras_model, model_row)
    if lite is not None:
        times["LiteRT"] = median_seconds(lambda: lite(model_row), repeats=15, inner=200)
    times |= {"array call": median_seconds(lambda: function(row), repeats=50, inner=2000),
             "bound call": median_seconds(bound.run, repeats=50, inner=2000)}
    if function.scalar is not None:
        value = float(row[0])
        times["scalar entry"] = median_seconds(lambda: function.scalar(value), repeats=50, inner=2000)
    return times


def _litert(keras_model, model_row: np.ndarray):
    """LiteRT's one-sample call (XNNPACK, one thread), its start-up log kept off the
    screen; None when TensorFlow's converter or the interpreter is not there or fails."""
    from ..harness.bench import LITERT_LOG, native_output_filtered
    from ..harness.peers import litert_runner

    try:
        with native_output_filtered(LITERT_LOG):
            lite = litert_runner(keras_model)
            lite(model_row)
    except Exception:  # no LiteRT, or its converter refuses the model: the other peers are still timed
        return None
    return lite


def format_seconds(seconds: float) -> str:
    for unit, factor in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= factor:
            return f"{seconds / factor:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def _times(ratio: float) -> str:
    """``1,625,818`` -> ``1,630,000x``: three significant digits are what a timing holds."""
    return f"{float(f'{ratio:.3g}'):,.0f}x" if ratio >= 100 else f"{ratio:.3g}x"


def _measure(comparison, dtype: str) -> str:
    """``0.51 ulp`` or ``2.7e-16 rel``: the figure the comparison's bound is on."""
    if comparison.bound.startswith("rel"):
        return f"{comparison.max_rel:.2g} rel"
    unit = "ulp" if comparison.ulp_dtype == dtype else f"{comparison.ulp_dtype} ulp"
    return f"{comparison.max_ulp:.2g} {unit}"


def _short_units(run: _Run) -> str:
    return run.units.split(" (")[0]


def _check_lines(run: _Run) -> list[str]:
    from ..harness.report import format_domain

    first = run.checks[0]
    lines = [f"verified  {first.n_samples} random inputs in {format_domain(*run.domain)} ({_short_units(run)}) "
             f"against the float64 reference and model.predict (bounds: float32 8 ulp, float64 rel 1e-12):"]
    for report in run.checks:
        reference, predict = report.comparisons[:2]
        lines.append(f"          C {report.dtype}: {_measure(reference, report.dtype)} vs reference, "
                     f"{_measure(predict, report.dtype)} vs model.predict: {'ok' if report.ok else 'FAILED'}")
    return lines


def _speed_lines(run: _Run) -> list[str]:
    peers = [(k, run.speed[k]) for k in PEERS if k in run.speed]
    c_calls = sorted((v, k) for k, v in run.speed.items() if k not in PEERS)
    best = c_calls[0][0]
    calls = ", ".join(f"{format_seconds(v)} {k}" for v, k in c_calls)
    return [f"speed     one sample: {'; '.join(f'{k} {format_seconds(v)}' for k, v in peers)}",
            f"          C via cffi {calls}: " + ", ".join(f"{_times(v / best)} faster than {k}" for k, v in peers)]


def _formula_lines(run: _Run) -> list[str]:
    """The formula rounded to DIGITS, with what the rounding costs, when it is short."""
    from ..backends.latex import rounding_error
    from ..backends.sympy import expression_strings
    from ..harness.inputs import random_inputs
    from ..harness.report import format_domain

    too_large = [f"formula   not shown for {_weights(run.net):,} weights (mlpcodegen formula MODEL --layout named "
                 f"writes one line per neuron)"]
    if _weights(run.net) > MAX_FORMULA_WEIGHTS:
        return too_large
    formulas = [text.replace("math.", "") for text in expression_strings(run.net, "python", digits=DIGITS)]
    if sum(map(len, formulas)) > MAX_FORMULA_CHARS:
        return too_large
    grid = random_inputs(run.net.n_inputs, 2000, *run.domain)
    error = rounding_error(run.net, DIGITS, grid)
    names = ["y"] if len(formulas) == 1 else [f"y{j}" for j in range(len(formulas))]
    return ([f"formula   in {_short_units(run)}, weights rounded to {DIGITS} digits (changes the output by at "
             f"most {error:.2g} on {format_domain(*run.domain)}):"]
            + [f"          {left} = {right}" for left, right in zip(names, formulas)])


def _summary(run: _Run) -> list[str]:
    shown = [(str(path) if run.keep else path.name, what) for path, what in run.files]
    width = max(len(path) for path, _ in shown)
    files = [f"{path:{width}}  {what}" for path, what in shown]
    if not run.keep:
        files.append("(in a temporary folder, removed when the demo ends: -o DIR keeps the files)")
    return ([f"mlpcodegen demo: {run.model_path}",
             f"model     {run.net.describe()}, read without TensorFlow in {run.read_ms:.0f} ms",
             f"units     {run.units}",
             f"function  {run.name}(x, y), {run.name}_batch(x, y, n)"
             + (f", {run.name}_scalar(x)" if "scalar entry" in run.speed else ""),
             f"wrote     {files[0]}"] + [f"          {line}" for line in files[1:]]
            + _check_lines(run) + _speed_lines(run) + _formula_lines(run)
            + [_next_line(run), "result    " + ("ok" if run.ok else "verification FAILED")])


def _next_line(run: _Run) -> str:
    scaling = run.model_path.parent / "scaling.json"
    options = f" --scaling {scaling}" if run.units.startswith("original") else ""
    return (f"next      mlpcodegen convert {run.model_path}{options} -o {run.name}.c --header  "
            f"(also: verify, formula, bench)")


def _verbose(run: _Run) -> list[str]:
    return [f"// ---- {run.folder / run.name}.c", run.sources["c"].rstrip("\n"), ""] + _summary(run)


def _quiet_line(run: _Run) -> list[str]:
    errors = ", ".join(f"{r.dtype} {_measure(r.comparisons[0], r.dtype)}" for r in run.checks)
    best = min(v for k, v in run.speed.items() if k not in PEERS)
    faster = ", ".join(f"{_times(run.speed[k] / best)} faster than {k}" for k in PEERS if k in run.speed)
    where = run.folder / f"{run.name}.c" if run.keep else f"{run.name}.c (temporary: -o DIR keeps it)"
    return [f"{'ok' if run.ok else 'FAILED'}: {run.model_path.name} ({run.net.describe()}) -> {where}; "
            f"errors {errors}; one sample {format_seconds(best)}, {faster}"]
