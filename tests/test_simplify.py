"""Simpler formulas with a certified error (issue 14): mlpcodegen.core.simplify, the
Polynomial layer in every target, and `mlpcodegen simplify`."""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import REPO, STRICT_FLAGS
from mlpcodegen.backends import emit
from mlpcodegen.app.cli import main
from mlpcodegen.core.errors import ValidationError
from mlpcodegen.core.ir import Activation, Dense, Network, Polynomial
from mlpcodegen.core.reference import evaluate
from mlpcodegen.core.scaling import read_scaling_file, with_scaling
from mlpcodegen.core.simplify import error_report, for_tolerance, interpolant
from mlpcodegen.core.simplify.check import check_certificate
from mlpcodegen.core.simplify.exact import activity, piecewise_linear, simplify_exact
from mlpcodegen.core.simplify.saturation import saturate
from mlpcodegen.core.simplify.taylor import series, taylor
from nets import dense_chain

SEED = REPO / "generated" / "seed" / "seed.keras"
SCALING = REPO / "generated" / "seed" / "scaling.json"
PROPERTY = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def seed_network() -> Network:
    import mlpcodegen

    return with_scaling(mlpcodegen.load(SEED), *read_scaling_file(SCALING))


def chain(rng, sizes, hidden="tanh", output="linear") -> Network:
    return dense_chain(sizes, [hidden] * (len(sizes) - 2) + [output], rng, kernel_scale=1.5, bias_scale=0.5,
                       weight_dtype="float64")


def random_box(rng, d):
    centre, half = rng.uniform(-1, 1, d), rng.uniform(0.05, 1.0, d)
    return centre - half, centre + half


# --------------------------------------------------------------------------- certificates


@PROPERTY
@given(seed=st.integers(0, 2**31), inputs=st.integers(1, 2), act=st.sampled_from(["tanh", "sigmoid", "relu"]),
       degree=st.integers(1, 7))
def test_certified_bound_is_never_below_the_measured_error(seed, inputs, act, degree):
    rng = np.random.default_rng(seed)
    net = chain(rng, [inputs, 3, 2, 1], act)
    lower, upper = random_box(rng, inputs)
    approx = interpolant(net, lower, upper, degree if inputs == 1 else min(degree, 4))
    report = error_report(net, approx, lower, upper, samples=501, max_boxes=2048)
    points = lower + rng.random((20000, inputs)) * (upper - lower)  # other points than the report's
    worst = np.abs(evaluate(net, points) - evaluate(approx, points)).max()
    assert report.certified >= worst >= 0 and report.certified >= report.measured
    assert check_certificate(net, approx, lower, upper, report.certified, samples=2000).ok


def test_seed_tolerance_target_degree_and_certificate():
    net = seed_network()
    approx = for_tolerance(net, [-1.0], [1.0], 2e-3)
    assert approx.network.layers[0].degree <= 11
    assert approx.errors.measured <= approx.errors.certified <= 2e-3
    assert approx.errors.certified <= 3 * approx.errors.measured


def test_saturated_units_are_replaced_within_the_certified_error():
    net = Network(1, (Dense([[8.0, 1.0, -9.0]], [12.0, 0.0, -11.0], Activation("tanh")),
                      Dense([[1.0], [1.0], [0.5]], [0.0], Activation("linear"))), "float64")
    result = saturate(net, [-0.5], [0.5], 1e-3)
    assert result.replaced == 2 and result.network.layers[0].units == 1
    x = np.linspace(-0.5, 0.5, 5001)[:, None]
    assert np.abs(evaluate(net, x) - evaluate(result.network, x)).max() <= result.errors.certified <= 1e-3


# --------------------------------------------------------------------------- budgets

BIG_MODEL = """
import sys
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
rng = np.random.default_rng(0)
d, h = 20, 64
weights = [numpy_helper.from_array((rng.normal(size=s) / np.sqrt(s[0])).astype(np.float32), n)
           for s, n in (((d, h), "W1"), ((h, h), "W2"), ((h, 1), "W3"))]
nodes = [helper.make_node("MatMul", ["x", "W1"], ["a"]), helper.make_node("Tanh", ["a"], ["b"]),
         helper.make_node("MatMul", ["b", "W2"], ["c"]), helper.make_node("Tanh", ["c"], ["e"]),
         helper.make_node("MatMul", ["e", "W3"], ["y"])]
graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, d])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])], weights)
onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), sys.argv[1])
"""

CAPPED = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
from mlpcodegen.app.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_twenty_input_network_is_refused_or_certified_within_a_memory_cap(tmp_path):
    import sys

    model = tmp_path / "big.onnx"
    subprocess.run([sys.executable, "-c", BIG_MODEL, str(model)], check=True, timeout=60)
    run = subprocess.run([sys.executable, "-c", CAPPED, "simplify", str(model), "--domain", "-1", "1",
                          "--tolerance", "1e-2", "-o", str(tmp_path / "out.py")],
                         capture_output=True, text=True, timeout=120, cwd=REPO)
    assert "Traceback" not in run.stderr and "MemoryError" not in run.stderr and "out of memory" not in run.stderr
    assert run.returncode in (0, 1), run.stderr
    if run.returncode == 1:
        assert len(run.stderr.strip().splitlines()) == 1
        assert "20 inputs" in run.stderr and "20-64-64-1" in run.stderr and "fewer inputs" in run.stderr
    # a loose tolerance: the constant is certified under the cap, by plain intervals (20 gradient graphs skipped)
    run = subprocess.run([sys.executable, "-c", CAPPED, "simplify", str(model), "--domain", "-1", "1",
                          "--tolerance", "10", "-o", str(tmp_path / "out.py")],
                         capture_output=True, text=True, timeout=120, cwd=REPO)
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr
    assert "degree 0" in run.stdout and "no mean-value form" in run.stdout


def test_work_budgets_loosen_or_refuse_but_never_lower_a_certificate(monkeypatch):
    from mlpcodegen.core.simplify import certify

    net = seed_network()
    approx = interpolant(net, [-1.0], [1.0], 11)
    full = error_report(net, approx, [-1.0], [1.0], goal=2e-3)
    monkeypatch.setattr(certify, "WORK_BYTES", 1 << 18)  # chunks of 33 boxes: the same bounds
    assert error_report(net, approx, [-1.0], [1.0], goal=2e-3) == full
    monkeypatch.undo()
    monkeypatch.setattr(certify, "MAX_GRADIENT_SIZE", 1)  # plain intervals only: sound, looser
    plain = error_report(net, approx, [-1.0], [1.0], goal=2e-3, max_boxes=4096)
    assert plain.certified >= full.certified >= full.measured and "no mean-value form" in plain.method
    monkeypatch.setattr(certify, "MAX_WORK", 20000)  # refinement cut short: the bound stays sound
    cut = error_report(net, approx, [-1.0], [1.0], goal=2e-3)
    assert cut.certified >= plain.certified and cut.boxes < plain.boxes
    monkeypatch.setattr(certify, "MAX_WORK", 2_000_000)  # plain intervals need ~3.5e6 here
    with pytest.raises(ValidationError, match="no Chebyshev interpolant"):
        for_tolerance(net, [-1.0], [1.0], 2e-3, max_degree=11)  # no certificate claimed on a looser bound
    monkeypatch.setattr(certify, "MAX_WORK", 10)
    with pytest.raises(ValidationError, match=r"on its 1 input needs .*fewer inputs"):
        error_report(net, approx, [-1.0], [1.0])


# --------------------------------------------------------------------------- exact passes


@PROPERTY
@given(seed=st.integers(0, 2**31), inputs=st.integers(1, 3), width=st.integers(3, 10))
def test_exact_passes_never_change_an_output_on_the_domain(seed, inputs, width):
    rng = np.random.default_rng(seed)
    net = chain(rng, [inputs, width, width, 1], "relu")
    first = net.layers[0]  # a duplicate unit and one with zero outgoing weights
    kernel = np.hstack([first.kernel, first.kernel[:, :1]])
    second = net.layers[1]
    rows = np.vstack([second.kernel, rng.normal(size=(1, width))])
    rows[1] = 0.0
    net = Network(inputs, (Dense(kernel, np.r_[first.bias, first.bias[0]], first.activation),
                           Dense(rows, second.bias, second.activation), net.layers[2]), "float64")
    lower, upper = random_box(rng, inputs)
    result = simplify_exact(net, lower, upper, cuts=4)
    assert result.units_after <= result.units_before - 2  # the duplicate and the zero-weight unit at least
    points = lower + rng.random((20000, inputs)) * (upper - lower)
    before, after = evaluate(net, points), evaluate(result.network, points)
    np.testing.assert_allclose(after, before, rtol=1e-12, atol=1e-12 * (1 + np.abs(before).max()))


def test_linear_bounds_and_cut_boxes_prove_more_units_than_whole_box_intervals():
    rng = np.random.default_rng(5)
    net = chain(rng, [2, 16, 16, 1], "relu")
    counts = activity(net, [-1, -1], [1, 1], cuts=(1, 16), samples=20000)
    intervals = activity(net, [-1, -1], [1, 1], cuts=(1,), samples=100, linear=False)
    assert intervals.proven_dead[1] <= counts.proven_dead[1] <= counts.proven_dead[16] <= counts.sampled_dead
    assert intervals.proven_active[1] <= counts.proven_active[1] <= counts.proven_active[16] <= counts.sampled_active
    assert counts.proven_dead[16] > intervals.proven_dead[1]


def test_piecewise_linear_form_is_the_same_function_in_breakpoints_plus_one_pieces():
    rng = np.random.default_rng(2)
    net = chain(rng, [1, 16, 16, 1], "relu")
    form = piecewise_linear(net, -1.0, 1.0)
    simple = form.network(net)
    assert simple.layers[0].units == len(form.breakpoints) + 1
    assert np.all(np.diff(form.breakpoints) > 0)
    x = np.linspace(-1, 1, 100001)[:, None]
    np.testing.assert_allclose(evaluate(simple, x), evaluate(net, x), rtol=0, atol=1e-12)


# --------------------------------------------------------------------------- Taylor


@pytest.mark.parametrize("act", ["tanh", "sigmoid", "softplus", "elu", "silu", "gelu"])
def test_taylor_coefficients_of_one_unit_match_high_precision_derivatives(act):
    import mpmath

    mpmath.mp.dps = 40
    formulas = {"tanh": mpmath.tanh, "sigmoid": lambda z: 1 / (1 + mpmath.exp(-z)),
                "softplus": lambda z: mpmath.log(1 + mpmath.exp(z)), "elu": lambda z: mpmath.expm1(z),
                "silu": lambda z: z / (1 + mpmath.exp(-z)), "gelu": lambda z: z / 2 * (1 + mpmath.erf(z / mpmath.sqrt(2)))}
    bias = -0.75 if act == "elu" else 0.5  # elu: on its exponential side
    want = [float(c) for c in mpmath.taylor(lambda x: formulas[act](2 * x + mpmath.mpf(bias)), 0, 7)]
    net = Network(1, (Dense([[2.0]], [bias], Activation(act)),), "float64")
    got = series(net, 0.0, 7).coefficients[0]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_taylor_coefficients_match_finite_differences():
    rng = np.random.default_rng(1)
    net = chain(rng, [1, 3, 2, 1], "tanh")
    c = series(net, 0.3, 3).coefficients[0]
    h = 1e-3
    f = lambda v: float(evaluate(net, np.array([[v]]))[0, 0])  # noqa: E731
    assert c[0] == pytest.approx(f(0.3), rel=1e-14)
    assert c[1] == pytest.approx((f(0.3 + h) - f(0.3 - h)) / (2 * h), rel=1e-5)
    assert c[2] == pytest.approx((f(0.3 + h) - 2 * f(0.3) + f(0.3 - h)) / (2 * h * h), rel=1e-4, abs=1e-6)


def test_seed_taylor_series_is_refused_on_the_whole_domain_and_claimed_near_zero():
    net = seed_network()
    whole = taylor(net, 0.0, 12, -1.0, 1.0)
    assert not whole.converges and "does NOT converge" in whole.claim
    assert 0.5 < whole.radius < 0.8 and whole.singularity == pytest.approx(whole.root_test, rel=0.1)
    near = taylor(net, 0.0, 12, -0.2, 0.2)
    assert near.converges
    report = error_report(net, near.network, [-0.2], [0.2])
    assert report.measured <= report.certified < 1e-5


# --------------------------------------------------------------------------- the Polynomial layer in every target


def test_polynomial_layer_is_validated_and_immutable():
    good = dict(exponents=[[0], [1]], coefficients=[[1.0, 2.0]], center=[0.0], scale=[1.0])
    layer = Polynomial(**good)
    with pytest.raises(ValueError):
        layer.coefficients[0, 0] = 3.0
    for key, bad in (("exponents", [[0], [0]]), ("exponents", [[0], [-1]]), ("coefficients", [[1.0]]),
                     ("scale", [0.0]), ("coefficients", [[1.0, np.nan]])):
        with pytest.raises(ValidationError):
            Polynomial(**{**good, key: bad})
    with pytest.raises(ValidationError, match="basis"):
        Polynomial(**good, basis="legendre")


def _polynomials():
    rng = np.random.default_rng(3)
    one = Network(1, (Polynomial(np.arange(7)[:, None], rng.normal(size=(2, 7)), [0.25], [1.5], "chebyshev"),),
                  "float64")
    rows = [[0, 0], [1, 0], [0, 1], [2, 1], [3, 2]]
    two = Network(2, (Polynomial(rows, rng.normal(size=(1, 5)), [0.1, -0.2], [2.0, 0.5], "chebyshev"),), "float64")
    horner = Network(1, (Polynomial(np.arange(5)[:, None], rng.normal(size=(1, 5)), [0.0], [2.0], "monomial"),),
                     "float64")
    return one, two, horner


@pytest.mark.parametrize("target", ["c", "numpy", "python", "numba", "sympy"])
def test_polynomial_runs_in_every_target_as_the_reference(target):
    from mlpcodegen.runtime import load

    for net in _polynomials()[: 1 if target == "numba" else 3]:  # numba compiles slowly: one network
        x = np.random.default_rng(0).uniform(-1, 1, (50, net.n_inputs))
        f = load(net, target, dtype="float64", name="approx")
        got = np.array([f(row) for row in x]) if target == "python" else np.asarray(f(x))
        np.testing.assert_allclose(got, evaluate(net, x), rtol=1e-12, atol=1e-12)


def test_polynomial_c_compiles_cleanly_and_formula_targets_print_it(tmp_path):
    net = for_tolerance(seed_network(), [-1.0], [1.0], 1e-2).network
    for dtype in ("float32", "float64"):
        source = tmp_path / f"p_{dtype}.c"
        source.write_text(emit(net, "c", dtype=dtype, name="approx"))
        result = subprocess.run([shutil.which("gcc") or "gcc", *STRICT_FLAGS, "-c", str(source), "-o",
                                 str(tmp_path / "p.o")], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
    latex = emit(net, "latex", name="approx")
    assert "t^{" in latex and "\\begin{align*}" in latex
    assert "h1_0 =" in emit(net, "sympy", name="approx")
    from mlpcodegen.app.plot import render_png

    assert render_png(net, tmp_path / "formula.png").read_bytes()[:4] == b"\x89PNG"  # formula --png, digits 3


# --------------------------------------------------------------------------- the command


def test_simplify_command_writes_the_approximation_and_reports_errors(tmp_path, capsys):
    out, png = tmp_path / "approx.py", tmp_path / "approx.png"
    assert main(["simplify", str(SEED), "--scaling", str(SCALING), "--domain", "-1", "1", "--tolerance", "5e-3",
                 "--target", "python", "--name", "approx", "-o", str(out), "--png", str(png), "--check", "500"]) == 0
    report = capsys.readouterr().out
    assert "certified max error" in report and "measured max error" in report and "size:" in report
    assert "within the certified" in report
    assert out.read_text().startswith('"""generated by mlpcodegen') or "generated by mlpcodegen" in out.read_text()
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert main(["simplify", str(SEED), "--scaling", str(SCALING), "--domain", "-1", "1", "--taylor", "8",
                 "--target", "numpy", "-o", str(tmp_path / "t.py")]) == 0
    assert "does NOT converge" in capsys.readouterr().out


def test_simplify_exact_on_a_tanh_model_removes_nothing_and_says_why(tmp_path, capsys):
    out = tmp_path / "same.c"
    assert main(["simplify", str(SEED), "--domain", "0", "1", "--exact", "--target", "c", "--name", "same",
                 "-o", str(out), "--check", "500"]) == 0
    report = capsys.readouterr().out
    assert "hidden units 5 -> 5" in report and "no piecewise-linear form" in report and "within the certified" in report
    assert "void same(const float *x, float *y)" in out.read_text()


@pytest.mark.parametrize("args", [[], ["--exact", "--tolerance", "1e-3"], ["--at", "0.5", "--chebyshev", "3"],
                                  ["--taylor", "3", "--chebyshev", "3"], ["--saturate"], ["--tolerance", "-1"],
                                  ["--chebyshev", "999"], ["--tolerance", "1e-3", "--target", "latex", "--check", "9"],
                                  ["--tolerance", "1e-3", "--digits", "-5"]])
def test_simplify_bad_usage_exits_2(args, tmp_path):
    assert main(["simplify", str(SEED), "--domain", "-1", "1", *args, "-o", str(tmp_path / "o.py")]) == 2
    assert not (tmp_path / "o.py").exists()


def test_simplify_bad_model_exits_1(tmp_path, capsys):
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a model")
    assert main(["simplify", str(bad), "--domain", "-1", "1", "--tolerance", "1e-3", "-o", str(tmp_path / "o.py")]) == 1
    assert "mlpcodegen simplify: error:" in capsys.readouterr().err and not (tmp_path / "o.py").exists()



# --------------------------------------------------------------------------- issue 21, B10 and B15


def _printed_polynomial(text: str):
    """(certified error printed, [(coefficient, power)]) of the printed one-input formula
    in powers of t = x_{0}, read back from its LaTeX."""
    import re

    heading = next(line for line in text.splitlines() if line.startswith("formula ("))
    error = float(re.search(r"certified max error: ([0-9.e+-]+)\):", heading).group(1))
    assert "  t = x_{0}" in text  # t is the input itself: the box is [-1, 1]
    right = next(line for line in text.splitlines() if line.startswith("  y = "))[len("  y = "):]
    right = re.sub(r"\s*\\cdot\s*10\^\{(-?\d+)\}", r"e\1", right).replace(" ", "")
    terms = re.findall(r"([+-]?[0-9.]+(?:e-?\d+)?)(t(?:\^\{(\d+)\})?)?", right)
    assert "".join(c + t for c, t, _ in terms) == right  # every character read
    return error, [(float(c), (int(p) if p else 1) if t else 0) for c, t, p in terms]


def test_the_printed_formula_is_within_the_error_printed_beside_it(tmp_path, capsys):
    """The seed at --tolerance 2e-3: 4 digits of its degree-11 polynomial err 7x the bound
    (issue 21); the digits printed are those the bound needs, and the printed formula's own
    certified error is printed: the printed coefficients, evaluated, keep to it."""
    assert main(["simplify", str(SEED), "--scaling", str(SCALING), "--tolerance", "2e-3",
                 "-o", str(tmp_path / "p.py")]) == 0
    text = capsys.readouterr().out
    error, terms = _printed_polynomial(text)
    assert len(terms) == 12 and error <= 2e-3 * 1.05 and "--digits 4 was not enough" in text
    x = np.linspace(-1.0, 1.0, 20001)
    printed = sum(c * x ** p for c, p in terms)
    assert np.abs(printed - evaluate(seed_network(), x[:, None])[:, 0]).max() <= error
    # what 4 digits would have cost: more than the bound (why the digits were raised)
    from mlpcodegen.backends.latex import rounding_error

    approx = for_tolerance(seed_network(), [-1.0], [1.0], 2e-3).network
    assert rounding_error(approx, 4, x[:, None]) > 2e-3


def _hard_two_input_network(scale: float) -> Network:
    rng = np.random.default_rng(1)
    sizes = (2, 16, 16, 1)
    return Network(2, tuple(Dense(rng.normal(0, scale / np.sqrt(a), (a, b)), rng.normal(0, 0.5, b),
                                  Activation("tanh" if i < 2 else "linear"), f"d{i}")
                            for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))))


def test_a_tolerance_beyond_reach_is_refused_with_the_estimate_before_any_interpolant(monkeypatch):
    import importlib

    chebyshev = importlib.import_module("mlpcodegen.core.simplify.chebyshev")  # the module, not the function

    # the estimate from 1-D Chebyshev tails: the seed needs degree 11 for 2e-3 (its table row) and 22 on
    # its model-units box
    assert chebyshev.estimate_degree(seed_network(), [-1.0], [1.0], 2e-3)[0] in range(9, 14)
    net = _hard_two_input_network(2.0)
    monkeypatch.setattr(chebyshev, "interpolant", lambda *a, **k: pytest.fail("an interpolant was built"))
    with pytest.raises(ValidationError, match=r"--tolerance 0.01 needs about degree (2[4-9]|3\d) .*terms\) on the "
                                              r"box of this 2-16-16-1 .* beyond the 144 terms"):
        chebyshev.for_tolerance(net, [-1.0, -1.0], [1.0, 1.0], 1e-2)
    chebyshev.check_estimate(_hard_two_input_network(1.0), [-1.0, -1.0], [1.0, 1.0], 1e-2)  # 49 terms: let through


def test_taylor_of_a_piecewise_linear_network_is_its_local_piece(capsys):
    rng = np.random.default_rng(0)
    net = Network(1, (Dense(rng.normal(size=(1, 8)), rng.normal(size=8), Activation("relu"), "h"),
                      Dense(rng.normal(size=(8, 1)), np.zeros(1), name="y")))
    result = taylor(net, 0.0, 5, -1.0, 1.0)
    assert not result.converges and "converges on" not in result.claim and "radius" not in result.claim
    assert "piecewise linear" in result.claim and "the linear piece that holds there" in result.claim
    assert "--exact" in result.claim
    assert np.all(result.series.coefficients[:, 2:] == 0)
    x = np.array([[0.0], [1e-3]])
    np.testing.assert_allclose(evaluate(result.network, x), evaluate(net, x), atol=1e-12)  # the local piece


def test_the_coefficient_rounding_bound_of_a_two_input_polynomial_is_sound_and_close():
    """Several inputs: the printed formula's error is the method's bound plus this bound on
    rounding the coefficients (sum of |change| x the term's largest value on the box)."""
    from mlpcodegen.backends.latex import rounded_network
    from mlpcodegen.app.cli_simplify import _coefficient_bound

    rng = np.random.default_rng(2)
    net = chain(rng, [2, 4, 1])
    for lower, upper in (([-1.0, -1.0], [1.0, 1.0]), ([0.0, -2.0], [1.0, 2.0])):
        approx = interpolant(net, lower, upper, 5)
        for digits in (2, 3):
            rounded = rounded_network(approx, digits)
            bound = _coefficient_bound(approx, rounded, lower, upper)
            grid = np.stack(np.meshgrid(*(np.linspace(lo, hi, 201) for lo, hi in zip(lower, upper))), -1).reshape(-1, 2)
            actual = np.abs(evaluate(approx, grid) - evaluate(rounded, grid)).max()
            assert actual <= bound <= 40 * actual, (actual, bound)
