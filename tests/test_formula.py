"""The formula targets: pure Python, NumPy expression, Numba module, SymPy, LaTeX,
scaling folded in, the formula command and its picture."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, build_model
from mlpcodegen import runtime
from mlpcodegen.backends import emit
from mlpcodegen.backends.latex import emit_latex, latex_equations, rounding_error, sympy_equations
from mlpcodegen.backends.sympy import (MAX_NESTED_TERMS, evaluate_expressions, expression_strings,
                                       nested_terms, network_expressions)
from mlpcodegen.core.errors import UnsupportedError, ValidationError
from mlpcodegen.frontends.keras import load
from mlpcodegen.harness.report import compare
from mlpcodegen.harness.verify import verify
from nets import CORE_ACTIVATIONS as ACTIVATIONS
from mlpcodegen.core.ir import Activate, Activation, Dense, Network
from mlpcodegen.core.reference import evaluate, evaluate_magnitude
from mlpcodegen.core.scaling import Scaling, read_scaling_file, with_scaling

SEED = REPO / "generated" / "seed" / "seed.keras"


def small_net(activation: str, seed: int = 0, n_in: int = 2) -> Network:
    rng = np.random.default_rng(seed)
    return Network(n_in, (
        Dense(rng.normal(size=(n_in, 3)), rng.normal(size=3), Activation("tanh"), "a"),
        Dense(rng.normal(size=(3, 2)), rng.normal(size=2), Activation(activation), "b"),
    ))


# ---------------------------------------------------------------- pure Python


def test_python_module_runs_with_only_the_standard_library(tmp_path):
    net = small_net("sigmoid")
    (tmp_path / "pred.py").write_text(emit(net, "python", name="pred"))
    # -I -S: no site-packages, so importing numpy (or anything else) would fail.
    code = "import sys; sys.path.insert(0, '.'); import pred; print(pred.pred([0.5, -1.0])); print(pred.pred_batch([[0, 0], [1, 1]]))"
    result = subprocess.run([sys.executable, "-I", "-S", "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    first, batch = result.stdout.splitlines()
    np.testing.assert_allclose(eval(first), evaluate(net, np.array([0.5, -1.0])), rtol=1e-14)
    np.testing.assert_allclose(eval(batch), evaluate(net, np.array([[0, 0], [1, 1.0]])), rtol=1e-14)


def test_python_module_errors_point_at_the_generated_file():
    from mlpcodegen.backends.python import emit_python
    from mlpcodegen.runtime.pymodule import import_generated

    module = import_generated(emit_python(small_net("relu"), name="f"), "python")
    with pytest.raises(ValueError, match="f expects 2 inputs, got 3") as info:
        module.f([1.0, 2.0, 3.0])
    assert str(info.traceback[-1].path) == module.__file__
    assert "raise ValueError" in str(info.traceback[-1].statement)


# ---------------------------------------------------------------- NumPy expression


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_numpy_and_python_expressions_match_the_reference(activation):
    net = small_net(activation, seed=ACTIVATIONS.index(activation))
    x = np.random.default_rng(1).uniform(-3, 3, (200, 2))
    reference, scale = evaluate_magnitude(net, x)
    numpy_text = expression_strings(net, "numpy")
    got = np.column_stack([np.broadcast_to(eval(t, {"numpy": np, "x0": x[:, 0], "x1": x[:, 1]}), (200,))
                           for t in numpy_text])
    assert compare(got, reference, scale, "float64")[1] <= 1e-12
    inputs, exprs = network_expressions(net)
    assert compare(evaluate_expressions(exprs, inputs, x), reference, scale, "float64")[1] <= 1e-12
    python_text = expression_strings(net, "python")
    assert "numpy" not in "".join(python_text) and "math." in "".join(python_text) or activation == "linear"
    import math
    for row, expected in zip(x[:5], reference[:5]):
        values = [eval(t, {"math": math, "x0": row[0], "x1": row[1]}) for t in python_text]
        np.testing.assert_allclose(values, expected, rtol=1e-12, atol=1e-12 * max(scale.max(), 1.0))


def test_nested_expressions_refuse_networks_too_large_to_print():
    rng = np.random.default_rng(0)
    widths = [16, 16, 16, 16, 16]
    net = Network(16, tuple(Dense(rng.normal(size=(a, b)), None, Activation("tanh")) for a, b in zip(widths, widths[1:])))
    assert nested_terms(net) > MAX_NESTED_TERMS
    with pytest.raises(UnsupportedError, match="named"):
        expression_strings(net)
    assert len(latex_equations(net, digits=2)) == 64  # auto layout: one line per neuron


# ---------------------------------------------------------------- Numba


def test_numba_module_is_cached_for_a_second_process(tmp_path):
    net = small_net("tanh")
    (tmp_path / "nb.py").write_text(emit(net, "numba", dtype="float32", name="nb"))
    code = ("import sys, numpy as np; sys.path.insert(0, '.'); import nb; "
            "y = nb.nb(np.array([0.5, -1.0], dtype=np.float32)); Y = nb.nb_batch(np.ones((3, 2), dtype=np.float32)); "
            "print(y.dtype, Y.shape, len(nb.nb.stats.cache_hits), len(nb.nb_batch.stats.cache_hits))")
    first = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    second = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert first.stdout.split() == ["float32", "(3,", "2)", "0", "0"]
    assert second.stdout.split() == ["float32", "(3,", "2)", "1", "1"]  # loaded from the cache, not compiled
    assert any(p.suffix == ".nbi" for p in (tmp_path / "__pycache__").iterdir())


def test_numba_parallel_batch_agrees_and_shapes_are_checked():
    from mlpcodegen.backends.numba import emit_numba
    from mlpcodegen.runtime.pymodule import import_generated

    net = small_net("softmax")
    module = import_generated(emit_numba(net, dtype="float64", name="p"), "numba")
    x = np.random.default_rng(2).normal(size=(1000, 2))
    np.testing.assert_array_equal(module.p_batch_parallel(x), module.p_batch(x))
    with pytest.raises(ValueError, match="expects a 1-D array of 2 inputs"):
        module.p(np.ones(3))
    with pytest.raises(ValueError, match=r"expects an array of shape \(n, 2\)"):
        module.p_batch(np.ones((4, 3)))
    f = runtime.load(net, "numba", dtype="float64", name="p")
    with pytest.raises(ValueError, match="expected shape"):
        f(np.ones((2, 2, 2)))


# ---------------------------------------------------------------- SymPy


def test_sympy_module_defines_expr_inputs_and_outputs_and_differentiates():
    import sympy

    net = load(SEED)
    namespace = {}
    exec(emit(net, "sympy", name="seed"), namespace)
    x, = namespace["inputs"]
    expr = namespace["expr"]
    derivative = sympy.lambdify(x, sympy.diff(expr, x))
    value = sympy.lambdify(x, expr)
    for point in (-0.3, 0.2, 0.9):
        assert value(point) == pytest.approx(evaluate(net, np.array([point]))[0], rel=1e-13)
        h = 1e-6
        numeric = (evaluate(net, np.array([point + h])) - evaluate(net, np.array([point - h])))[0] / (2 * h)
        assert derivative(point) == pytest.approx(numeric, rel=1e-6)
    series = sympy.series(expr, x, 0.5, 2).removeO()
    assert series.free_symbols == {x}


def test_sympy_rational_weights_are_exact():
    import sympy
    from fractions import Fraction

    net = load(SEED)
    namespace = {}
    exec(emit(net, "sympy", name="seed", rational=True), namespace)
    rationals = namespace["h1_0"].atoms(sympy.Rational)
    assert sympy.Rational(Fraction(float(net.layers[0].kernel[0, 0]))) in rationals
    assert not namespace["expr"].atoms(sympy.Float)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_sympy_expression_evaluates_to_the_reference(activation):
    import sympy

    net = small_net(activation, seed=3)
    inputs, outputs = network_expressions(net)
    f = sympy.lambdify(inputs, outputs, modules="numpy")
    x = np.random.default_rng(0).uniform(-2, 2, (50, 2))
    got = np.column_stack([np.broadcast_to(c, (50,)) for c in f(*x.T)])
    reference, scale = evaluate_magnitude(net, x)
    assert compare(got, reference, scale, "float64")[1] <= 1e-12


#: Parameters an activation needs (threshold has no default) or whose other branch should show.
PARAMS = {"relu": {"negative_slope": 0.1, "max_value": 2.0, "threshold": 0.25}, "elu": {"alpha": 0.5},
          "gelu": {"approximate": 1.0}, "threshold": {"threshold": 0.1, "default_value": -1.0}}


def placed_net(activation: str, seed: int) -> Network:
    """2-3 Dense layers of random widths, 1-3 inputs, ``activation`` on a random one
    (the others tanh or linear), an Affine step or an Activate layer sometimes."""
    from mlpcodegen.core.activations import REGISTRY
    from mlpcodegen.core.ir import Affine

    rng = np.random.default_rng(seed)
    depth, n_in = int(rng.integers(2, 4)), int(rng.integers(1, 4))
    place, layers, n = int(rng.integers(0, depth)), [], n_in
    for i in range(depth):
        name = activation if i == place else str(rng.choice(["tanh", "linear"]))
        spec = REGISTRY[name]
        units = int(rng.integers(1, 4)) * (2 if spec.halves else 1)
        params = {"alpha": tuple(rng.uniform(0.1, 0.3, units))} if spec.per_unit else PARAMS.get(name, {})
        kernel = rng.normal(scale=1.0 / np.sqrt(n), size=(n, units))
        bias = rng.normal(scale=0.3, size=units) if rng.random() < 0.8 else None
        layers.append(Dense(kernel, bias, Activation(name, params), f"d{i}"))
        n = layers[-1].n_out
    extra = rng.integers(0, 3)
    if extra == 1:
        layers.append(Affine(rng.uniform(0.5, 1.5, n), rng.normal(scale=0.1, size=n), "scale"))
    elif extra == 2:
        layers.append(Activate(n, Activation("tanh"), "squash"))
    return Network(n_in, tuple(layers), name=f"random_{activation}")


def _every_activation():
    from mlpcodegen.core.activations import REGISTRY

    return sorted(REGISTRY)


@pytest.mark.parametrize("activation", _every_activation())
def test_in_process_sympy_and_the_emitted_module_agree(activation):
    """One graph, two readings: the module ``convert --target sympy`` writes (run here by
    the test; the package never runs generated text) defines exactly the objects
    :func:`network_expressions` interprets from the graph, and both, like the numeric
    load ``runtime.load(net, "sympy")`` that ``verify`` checks, compute the float64
    reference (relative 1e-12 of its magnitude)."""
    import sympy

    for seed in range(2):
        net = placed_net(activation, seed=1000 * _every_activation().index(activation) + seed)
        x = np.random.default_rng(seed).uniform(-2, 2, (200, net.n_inputs))
        reference, scale = evaluate_magnitude(net, x)
        assert compare(runtime.load(net, "sympy")(x), reference, scale, "float64")[1] <= 1e-12, net.describe()
        namespace: dict = {}
        exec(compile(emit(net, "sympy"), "<sympy module>", "exec"), namespace)  # noqa: S102 - the test runs it
        inputs, outputs = network_expressions(net)
        assert inputs == namespace["inputs"]
        assert outputs == [sympy.sympify(o) for o in namespace["outputs"]], net.describe()
        module = evaluate_expressions([sympy.sympify(o) for o in namespace["outputs"]], namespace["inputs"], x)
        assert compare(module, reference, scale, "float64")[1] <= 1e-12, net.describe()
    exact: dict = {}
    exec(compile(emit(net, "sympy", rational=True), "<sympy module>", "exec"), exact)  # noqa: S102
    assert network_expressions(net, rational=True)[1] == [sympy.sympify(o) for o in exact["outputs"]]


def _exact_sparsemax(z):
    """Sparsemax of exact numbers by its definition (Martins & Astudillo): sort, the
    largest k with 1 + k z_(k) > sum of the k largest, tau = (that sum - 1) / k."""
    ordered = sorted(z, reverse=True)
    k = max(k for k in range(1, len(z) + 1) if 1 + k * ordered[k - 1] > sum(ordered[:k]))
    tau = (sum(ordered[:k]) - 1) / k
    return [max(v - tau, 0) for v in z]


def test_sympy_sparsemax_survives_sympys_rewriting_and_stays_exact():
    """Sparsemax compares two computed values, z_i >= z_j: SymPy rebuilds a Piecewise until
    its conditions stop changing, and the canonical form of a relation between two sums
    alternated between two spellings until RecursionError, on import of the module (both
    modes, these nets) and again in ``diff``.  Written ``z_i - z_j >= 0`` they settle; the
    rational module is still exact: at a rational point it is sparsemax of exact numbers."""
    import sympy
    from fractions import Fraction

    net = placed_net("sparsemax", seed=6)  # 2-3-2 (tanh, sparsemax, tanh): recursed in both modes
    x = np.random.default_rng(6).uniform(-2, 2, (50, net.n_inputs))
    reference, scale = evaluate_magnitude(net, x)
    for rational in (False, True):
        namespace: dict = {}
        exec(compile(emit(net, "sympy", rational=rational), "<sympy module>", "exec"), namespace)  # noqa: S102
        outputs = [sympy.sympify(o) for o in namespace["outputs"]]
        assert network_expressions(net, rational=rational)[1] == outputs
        assert compare(evaluate_expressions(outputs, namespace["inputs"], x), reference, scale, "float64")[1] <= 1e-12
        slopes = [o.diff(namespace["inputs"][0]) for o in outputs]  # rebuilds every Piecewise
        assert all(s.has(namespace["inputs"][0]) for s in slopes)

    rng = np.random.default_rng(0)  # 2 -> 3 sparsemax: its float module recursed
    net = Network(2, (Dense(rng.normal(size=(2, 3)), rng.normal(size=3), Activation("sparsemax"), "s"),))
    kernel, bias = net.layers[0].kernel, net.layers[0].bias  # the weights as the network holds them
    exact: dict = {}
    exec(compile(emit(net, "sympy", rational=True), "<sympy module>", "exec"), exact)  # noqa: S102
    for point in ([Fraction(1, 2), Fraction(-3, 4)], [Fraction(0), Fraction(0)], [Fraction(-2), Fraction(7, 5)]):
        z = [sum(Fraction(float(kernel[i, j])) * point[i] for i in range(2)) + Fraction(float(bias[j]))
             for j in range(3)]
        at = dict(zip(exact["inputs"], map(sympy.Rational, point)))
        got = [sympy.Rational(o.subs(at)) for o in exact["outputs"]]
        assert got == [sympy.Rational(v) for v in _exact_sparsemax(z)], point
        assert sum(got) == 1


def test_sympy_loads_a_polynomial_network_as_the_reference():
    """``simplify``'s Polynomial layer (Clenshaw, Horner, products of basis values) in the
    SymPy target: built from the same graph every target prints (it raised KeyError when
    SymPy had a lowering of its own), bit for bit the graph's float64 interpreter."""
    from mlpcodegen.core.graph_eval import evaluate_network
    from mlpcodegen.core.ir import Polynomial

    rng = np.random.default_rng(3)
    rows = [[0, 0], [1, 0], [0, 1], [2, 1], [3, 2]]
    nets = [Network(1, (Polynomial(np.arange(7)[:, None], rng.normal(size=(2, 7)), [0.25], [1.5], "chebyshev"),)),
            Network(2, (Polynomial(rows, rng.normal(size=(1, 5)), [0.1, -0.2], [2.0, 0.5], "chebyshev"),)),
            Network(1, (Polynomial(np.arange(5)[:, None], rng.normal(size=(1, 5)), [0.0], [2.0], "monomial"),
                        Dense(rng.normal(size=(1, 2)), rng.normal(size=2), Activation("tanh"))))]
    for net in nets:
        x = rng.uniform(-1, 1, (100, net.n_inputs))
        got = runtime.load(net, "sympy", name="approx")(x)
        reference, scale = evaluate_magnitude(net, x)
        assert compare(got, reference, scale, "float64")[1] <= 1e-12
        np.testing.assert_array_equal(got, evaluate_network(net, x))
        assert np.asarray(runtime.load(net, "sympy")(x[0])).shape == (net.n_outputs,)


@pytest.mark.parametrize("activation", _every_activation())
def test_the_formula_shown_computes_the_network(activation):
    """What LaTeX prints is the network: the display expressions (exact weights, every
    activation written out, softmax as e^z / sum e^z) evaluate to the reference, nested
    and layer by layer."""
    import sympy

    from mlpcodegen.backends.sympy import layer_expressions

    net = placed_net(activation, seed=7 + _every_activation().index(activation))
    x = np.random.default_rng(2).uniform(-2, 2, (100, net.n_inputs))
    reference, scale = evaluate_magnitude(net, x)
    symbols, layers = layer_expressions(net, expand=True, nested=True)
    assert compare(evaluate_expressions(layers[-1], tuple(symbols), x), reference, scale, "float64")[1] <= 1e-9
    symbols, layers = layer_expressions(net, expand=True)  # in h_{l,j}: substitute layer by layer
    values = x
    for index, exprs in enumerate(layers):
        inputs = tuple(symbols) if index == 0 else tuple(sympy.Symbol(f"h_{{{index},{j}}}", real=True)
                                                         for j in range(values.shape[1]))
        values = evaluate_expressions(exprs, inputs, values)
    assert compare(values, reference, scale, "float64")[1] <= 1e-9


# ---------------------------------------------------------------- LaTeX


def _render(math_text: str) -> None:
    """Lay the formula out with matplotlib's mathtext: the parse and layout raise ValueError
    on LaTeX it cannot read.  (``math_to_image`` does this, then parses the text a second
    time to draw it: twice the time, nothing more checked; the formula pictures are drawn
    by the --png tests below.)"""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.mathtext import MathTextParser

    width, height, _, _, _ = MathTextParser("path").parse(f"${math_text}$", dpi=72)
    assert width > 0 and height > 0


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("options", [dict(digits=None), dict(digits=2, expand=True),
                                     dict(digits=3, layout="named"), dict(digits=3, layout="nested", expand=True)])
def test_latex_renders_for_every_activation_and_option(activation, options):
    net = small_net(activation, seed=1)
    net = Network(2, net.layers + (Activate(2, Activation(activation), "again"),))
    equations = latex_equations(net, **options)
    assert equations
    for left, right in equations:
        _render(f"{left} = {right}")  # raises ValueError on invalid LaTeX
    text = emit_latex(net, **options)
    assert text.startswith("% generated by mlpcodegen — do not edit")
    assert text.count("\\begin{align*}") == 1 and text.rstrip().endswith("\\end{align*}")


def test_activation_by_name_or_expanded():
    net = small_net("sigmoid")
    named = emit_latex(net, digits=3, layout="named")
    expanded = emit_latex(net, digits=3, layout="named", expand=True)
    assert "\\tanh" in named and "\\sigma" in named
    assert "\\tanh" not in expanded and "\\sigma" not in expanded and "e^{" in expanded
    assert "h_{1,0} &=" in named and "h_{1,3}" not in named  # units numbered from 0, as x_{0}


def test_seed_formula_rounded_to_two_digits_is_short_and_its_error_is_reported():
    net = load(SEED)
    text = emit_latex(net, digits=2, layout="nested")
    body = text.split("\\begin{align*}")[1]
    assert len(body) < 500
    grid = np.linspace(-1, 1, 501)[:, None]
    errors = [rounding_error(net, d, grid) for d in (2, 3, 4)]
    assert errors[0] > errors[1] > errors[2] > 0  # rounding costs something, less with more digits
    assert errors[0] < 0.5


# ---------------------------------------------------------------- scaling


@pytest.fixture(scope="module")
def scaled_model():
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    rng = np.random.default_rng(4)
    raw_x = rng.uniform([10, -500], [20, 500], (300, 2))
    raw_y = np.column_stack([raw_x[:, 0] * 3 + 100, np.sin(raw_x[:, 1] / 100)])
    x_scaler, y_scaler = MinMaxScaler().fit(raw_x), StandardScaler().fit(raw_y)
    model = build_model([2, 5, 2], ["tanh", "linear"], [True, True], seed=4)
    return model, x_scaler, y_scaler, raw_x


@pytest.mark.parametrize("target,dtype", [("c", "float32"), ("c", "float64"), ("numba", "float32"),
                                          ("numpy", "float64"), ("python", "float64"), ("sympy", "float64")])
def test_scaling_folded_into_every_target(scaled_model, target, dtype):
    model, x_scaler, y_scaler, raw_x = scaled_model
    report = verify(model, target, dtype, n=300, sample=raw_x, input_scaling=x_scaler, output_scaling=y_scaler)
    assert report.ok, report.table()
    net = with_scaling(load(model), x_scaler, y_scaler)
    expected = y_scaler.inverse_transform(model.predict(x_scaler.transform(raw_x[:20]).astype(np.float32), verbose=0))
    got = runtime.load(net, target, dtype=dtype, name="scaled")(raw_x[:20])
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_scaling_is_folded_into_the_dense_weights(scaled_model):
    model, x_scaler, y_scaler, _ = scaled_model
    net = with_scaling(load(model), x_scaler, y_scaler)
    assert [type(layer).__name__ for layer in net.layers] == ["Dense", "Dense"]  # no separate affine steps
    raw = np.array([[15.0, 100.0]])
    np.testing.assert_allclose(evaluate(net, raw),
                               y_scaler.inverse_transform(evaluate(load(model), x_scaler.transform(raw))), rtol=1e-12)


def test_scaling_after_a_nonlinear_output_stays_an_affine_step():
    net = with_scaling(small_net("sigmoid"), None, Scaling.minmax([0, 0], [10, 20]))
    assert type(net.layers[-1]).__name__ == "Affine"
    x = np.array([[0.1, 0.2]])
    np.testing.assert_allclose(evaluate(net, x), evaluate(small_net("sigmoid"), x) * [10, 20], rtol=1e-15)
    for target in ("c", "numpy", "python", "numba", "sympy"):
        got = runtime.load(net, target, dtype="float64", name="aff")(x)
        np.testing.assert_allclose(got, evaluate(net, x), rtol=1e-13)


def test_scaling_validation_and_json(tmp_path):
    # (constant features: scale 1 as sklearn does, tested with the scaling module)
    with pytest.raises(ValidationError, match="MinMaxScaler, StandardScaler"):
        Scaling.from_sklearn(object())
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValidationError, match="'input' and/or 'output'"):
        read_scaling_file(tmp_path / "bad.json")
    (tmp_path / "s.json").write_text(json.dumps({"output": {"kind": "standard", "mean": [1], "std": [2]}}))
    inputs, outputs = read_scaling_file(tmp_path / "s.json")
    assert inputs is None and outputs.inverse().apply([0.0]).tolist() == [1.0]
    with pytest.raises(ValidationError, match="2 features, the network 1"):
        with_scaling(load(SEED), Scaling.minmax([0, 0], [1, 1]))


# ---------------------------------------------------------------- CLI


def run_cli(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "mlpcodegen.app.cli", *args], capture_output=True, text=True, env=env)


def test_formula_command_forms_and_png(tmp_path):
    latex = run_cli("formula", str(SEED), "--digits", "2")
    assert latex.returncode == 0 and "\\tanh" in latex.stdout
    assert "changes the output by at most" in latex.stderr
    numpy_form = run_cli("formula", str(SEED), "--numpy", "--scaling", str(REPO / "generated/seed/scaling.json"))
    assert numpy_form.stdout.startswith("y = ") and "numpy.tanh" in numpy_form.stdout
    python_form = run_cli("formula", str(SEED), "--python", "--input-min", "-1", "--input-max", "1", "--digits", "0")
    assert "math.tanh" in python_form.stdout and numpy_form.stdout.replace("numpy.", "") != python_form.stdout
    png = tmp_path / "f.png"
    result = run_cli("formula", str(SEED), "--png", str(png), "--domain", "-1", "1")
    assert result.returncode == 0, result.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_formula_png_for_a_two_input_model(tmp_path, keras_module):
    model = build_model([2, 3, 1], ["relu", "sigmoid"], [True, True], seed=2)
    model.save(tmp_path / "two.keras")
    result = run_cli("formula", str(tmp_path / "two.keras"), "--png", str(tmp_path / "two.png"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "two.png").stat().st_size > 1000


@pytest.mark.parametrize("target", ["python", "numpy", "numba", "sympy", "latex"])
def test_convert_every_formula_target(tmp_path, target):
    out = tmp_path / f"seed_{target}.txt"
    result = run_cli("convert", str(SEED), "--target", target, "--name", "seed", "-o", str(out))
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert "generated by mlpcodegen — do not edit" in text.splitlines()[0]
    again = run_cli("convert", str(SEED), "--target", target, "--name", "seed", "-o", str(tmp_path / "again"))
    assert again.returncode == 0 and (tmp_path / "again").read_text() == text


def test_scaling_flag_errors_are_bad_usage():
    result = run_cli("convert", str(SEED), "--input-min", "0")
    assert result.returncode == 2 and "--input-min with --input-max" in result.stderr
    result = run_cli("convert", str(SEED), "--target", "python", "--dtype", "float32")
    assert result.returncode == 2 and "float64, not float32" in result.stderr


# ---------------------------------------------------------------- reading order and the picture


def test_latex_inputs_in_order_and_units_numbered_from_zero():
    rng = np.random.default_rng(5)
    net = Network(12, (Dense(rng.normal(size=(12, 7)), rng.normal(size=7), Activation("tanh")),
                       Dense(rng.normal(size=(7, 2)), rng.normal(size=2), Activation("linear"))))
    equations = latex_equations(net, digits=2, layout="named")
    first = equations[0][1]
    positions = [first.index(f"x_{{{i}}}") for i in range(12)]
    assert positions == sorted(positions)  # x_{0}, x_{1}, x_{2} ... x_{10}, x_{11}
    lefts = [left for left, _ in equations]
    assert lefts == [f"h_{{1,{j}}}" for j in range(7)] + ["y_{0}", "y_{1}"]
    output = equations[-1][1]
    assert [output.index(f"h_{{1,{j}}}") for j in range(7)] == sorted(output.index(f"h_{{1,{j}}}") for j in range(7))
    nested = latex_equations(Network(12, net.layers[:1] + (Dense(rng.normal(size=(7, 1)), None, Activation("linear")),)),
                             digits=2, layout="nested")[0][1]
    assert nested.index("x_{2}") < nested.index("x_{10}")
    assert "x_{0}, x_{1}" in emit_latex(net)  # the convention is stated in the file


def test_notes_on_scaling_are_stated_in_every_formula_target(scaled_model):
    model, x_scaler, y_scaler, _ = scaled_model
    net = with_scaling(load(model), x_scaler, y_scaler)
    assert net.notes
    for target in ("python", "numpy", "numba", "sympy", "latex"):
        text = emit(net, target, name="scaled")
        head = text.split("import")[0] if target != "latex" else text.split("\\begin")[0]
        for note in net.notes:
            from mlpcodegen.backends._text import quote_name
            assert quote_name(note) in head, (target, note)


def _ink_columns(png):
    import matplotlib.image

    image = matplotlib.image.imread(png)
    ink = image[..., :3].min(axis=2) < 0.6
    return image.shape, ink


def test_formula_png_is_laid_out_for_a_reader(tmp_path):
    from mlpcodegen.app.plot import DPI, WIDTH_INCHES, render_png

    scaled = with_scaling(load(SEED), *read_scaling_file(REPO / "generated/seed/scaling.json"))
    (height, width, _), ink = _ink_columns(render_png(scaled, tmp_path / "seed.png"))
    assert width == WIDTH_INCHES * DPI and 0.4 * width < height < 0.8 * width
    plot_rows = ink[height // 2 :]
    columns = np.flatnonzero(plot_rows.any(axis=0))
    assert columns[0] < 0.12 * width and columns[-1] > 0.9 * width  # the plot spans the page
    text_columns = np.flatnonzero(ink[: height // 4].any(axis=0))
    assert text_columns[-1] < width - 5  # the formula is wrapped, not cut at the edge
    rng = np.random.default_rng(0)
    widths = [2, 10, 10, 1]  # (2-16-16-1 is drawn the same way, 52 lines: mathtext takes ~20 s)
    net = Network(2, tuple(Dense(rng.normal(size=(a, b)), rng.normal(size=b), Activation(f))
                           for a, b, f in zip(widths, widths[1:], ["relu", "relu", "linear"])))
    (height, width, _), ink = _ink_columns(render_png(net, tmp_path / "wide.png"))
    assert width == WIDTH_INCHES * DPI and height > 0.8 * width  # one line per neuron, wrapped
    assert np.flatnonzero(ink.any(axis=0))[-1] < width - 5


def test_formula_png_refuses_a_formula_too_large_to_draw(tmp_path):
    from mlpcodegen.app.plot import MAX_LINES, render_png

    rng = np.random.default_rng(0)
    widths = [1, 40, 40, 1]
    net = Network(1, tuple(Dense(rng.normal(size=(a, b)), rng.normal(size=b), Activation(f))
                           for a, b, f in zip(widths, widths[1:], ["tanh", "tanh", "linear"])))
    with pytest.raises(UnsupportedError, match=f"limit {MAX_LINES}"):
        render_png(net, tmp_path / "big.png")
    assert not (tmp_path / "big.png").exists()  # no placeholder picture


def test_softmax_formula_as_written_has_no_zero_shift():
    """The display softmax is e^z / sum e^z: no ``- 0`` in the exponent, and no
    unevaluated ``-1*0`` (SymPy's assumptions contradict themselves on it, depending on
    what its cache holds: a CI failure)."""
    import sympy
    rng = np.random.default_rng(0)
    layers = (Dense(rng.normal(size=(2, 2)), rng.normal(size=2), Activation("tanh"), "a"),
              Dense(rng.normal(size=(2, 2)), rng.normal(size=2), Activation("softmax"), "b"))
    net = Network(2, layers, name="n")
    for options in ({}, {"expand": True}, {"layout": "nested"}):
        for _, right in latex_equations(net, **options):
            assert "- 0}" not in right and "-0}" not in right and "\\cdot 0" not in right
    for left, right in sympy_equations(net):
        zero_products = [m for m in right.atoms(sympy.Mul) if any(f == 0 for f in m.args)]
        assert zero_products == []
