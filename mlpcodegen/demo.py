"""``mlpcodegen demo``: the whole pipeline on the bundled seed model."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .backends.c import emit_c, load as compile_c
from .frontends.keras import load, load_keras_model
from .harness.bench import median_seconds
from .harness.verify import verify


def _format_seconds(seconds: float) -> str:
    for unit, factor in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= factor:
            return f"{seconds / factor:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def _print_formulas(net, model_path: Path) -> None:
    """The formula in LaTeX, NumPy and pure Python, in the original units when the
    model's folder has the scaling used in training."""
    from .backends.latex import emit_latex, rounding_error
    from .backends.sympy import expression_strings
    from .scaling import read_scaling_file, with_scaling

    scaling_file = model_path.parent / "scaling.json"
    units = "model units"
    if scaling_file.exists():
        net = with_scaling(net, *read_scaling_file(scaling_file))
        units = f"original units (scaling from {scaling_file.name} folded in)"
    print(f"The network as a formula, {units}, weights rounded to 3 digits:\n")
    print(emit_latex(net, digits=3))
    for style in ("numpy", "python"):
        print(f"{style}:  y = {expression_strings(net, style, digits=3)[0]}\n")
    grid = np.linspace(-1.0, 1.0, 2001)[:, None].repeat(net.n_inputs, axis=1)
    print(f"rounding the weights to 3 digits changes the output by at most "
          f"{rounding_error(net, 3, grid):.3g} on [-1, 1]\n")


def run_demo(model_path: Path) -> int:
    started = time.perf_counter()
    net = load(model_path)
    print(f"read {model_path} without TensorFlow in {(time.perf_counter() - started) * 1e3:.1f} ms: "
          f"{net.describe()}\n")
    print(emit_c(net, dtype="float32", name="seed"))
    keras_model = load_keras_model(model_path)
    ok = True
    for dtype in ("float32", "float64"):
        report = verify(keras_model, "c", dtype, network=net, name="seed")
        print(report.table())
        ok = ok and report.ok
    _print_formulas(net, model_path)
    function = compile_c(net, dtype="float32", name="seed")
    sample = np.zeros((1, net.n_inputs), dtype=np.float32)
    row = sample[0]
    c_time = median_seconds(lambda: function(row), repeats=50, inner=2000)
    bound = function.bind()
    bound_time = median_seconds(bound.run, repeats=50, inner=2000)
    predict_time = median_seconds(lambda: keras_model.predict(sample, verbose=0), repeats=15)
    scalar = ""
    if function.scalar is not None:
        scalar_time = median_seconds(lambda: function.scalar(0.5), repeats=50, inner=2000)
        scalar = f", scalar entry {_format_seconds(scalar_time)} ({predict_time / scalar_time:,.0f}x)"
    print(f"one sample: model.predict {_format_seconds(predict_time)}; C via cffi: array call "
          f"{_format_seconds(c_time)} ({predict_time / c_time:,.0f}x faster), bound call "
          f"{_format_seconds(bound_time)} ({predict_time / bound_time:,.0f}x){scalar}")
    print("every path side by side: mlpcodegen bench MODEL (bench/RESULTS.md for the reference models)")
    if not ok:
        print("verification FAILED")
    return 0 if ok else 1
