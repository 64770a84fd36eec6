"""Wide layers in the Python-source targets and the formula (issue 9 item 7): a
3000-input layer used to make `import` fail with RecursionError (one expression of 3000
terms), and LaTeX of a 3000-16-1 network worked for minutes before anything came out."""
import io
from contextlib import redirect_stderr, redirect_stdout

import numpy as np
import pytest

from conftest import build_model
from mlpcodegen import runtime
from mlpcodegen.backends import emit
from mlpcodegen.backends import sympy as sympy_backend
from mlpcodegen.backends._python_family import MAX_TERMS
from mlpcodegen.backends.latex import MAX_FORMULA_TERMS, emit_latex, latex_equations
from mlpcodegen.app.cli import main
from mlpcodegen.core.errors import UnsupportedError
from mlpcodegen.core.ir import Network
from mlpcodegen.app.plot import render_png
from mlpcodegen.core.reference import evaluate
from nets import dense_chain


def wide(widths=(3000, 16, 1), seed=0) -> Network:
    return dense_chain(widths, ["tanh"] * (len(widths) - 2) + ["linear"], seed, bias_scale=1.0, names=None)


@pytest.fixture(scope="module")
def net():
    return wide()


@pytest.mark.parametrize("target,dtype", [("python", "float64"), ("numpy", "float64"), ("numpy", "float32"),
                                          ("numba", "float64")])
def test_a_3000_input_layer_imports_and_computes(net, target, dtype):
    x = np.random.default_rng(1).normal(size=(5, 3000))
    got = runtime.load(net, target, dtype=dtype, name="wide")(x)
    np.testing.assert_allclose(got, evaluate(net, x), rtol=1e-4 if dtype == "float32" else 1e-12, atol=1e-5)


def test_long_sums_are_split_in_order(net):
    """No statement holds more than MAX_TERMS terms, and the split sum is the same
    left-to-right sum: the python target equals a plain loop bit for bit, and the Numba
    loops (past numba.LOOP_WEIGHTS weights) equal the closed form."""
    source = emit(net, "python", name="wide")
    statements = source.split(" = ")
    assert max(s.count("*x") + s.count("*h") for s in statements) <= MAX_TERMS
    line = wide((3000, 1))
    x = np.random.default_rng(2).normal(size=3000)
    total = 0.0
    for i in range(3000):
        total = x[i] * line.layers[0].kernel[i, 0] if i == 0 else total + x[i] * line.layers[0].kernel[i, 0]
    total += line.layers[0].bias[0]
    assert runtime.load(line, "python", name="line")(x)[0] == total
    rows = np.random.default_rng(3).normal(size=(4, 3000))
    np.testing.assert_array_equal(runtime.load(net, "numba", dtype="float64", name="wide")(rows),
                                  runtime.load(net, "python", name="wide")(rows))


def test_latex_and_formula_refuse_early_from_the_sizes(net, monkeypatch, tmp_path):
    def no_sympy(*args, **kwargs):
        raise AssertionError("SymPy expressions were built before the size check")

    monkeypatch.setattr(sympy_backend, "layer_expressions", no_sympy)
    monkeypatch.setattr(sympy_backend, "network_expressions", no_sympy)
    for call in (lambda: latex_equations(net), lambda: emit_latex(net, layout="named"),
                 lambda: render_png(net, tmp_path / "wide.png")):
        with pytest.raises(UnsupportedError) as info:
            call()
        message = str(info.value)
        assert "48,033" in message and f"{MAX_FORMULA_TERMS:,}" in message and "--target" in message
    with pytest.raises(UnsupportedError, match="named"):
        sympy_backend.expression_strings(net)
    assert not (tmp_path / "wide.png").exists()


def test_formula_command_on_a_3000_16_1_model_answers_with_exit_1(keras_module, tmp_path):
    path = tmp_path / "wide.keras"
    build_model([3000, 16, 1], ["tanh", "linear"], [True, True], seed=1).save(path)
    for style in ([], ["--numpy"], ["--png", str(tmp_path / "w.png")]):
        stdout, stderr = io.StringIO(), io.StringIO()
        with redirect_stdout(stdout), redirect_stderr(stderr):
            code = main(["formula", str(path), *style])
        assert code == 1 and "too many" in stderr.getvalue() and "Traceback" not in stderr.getvalue(), style
    assert not (tmp_path / "w.png").exists()
