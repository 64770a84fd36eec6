"""Random architectures -> Keras -> IR -> C (float32, float64) -> compared with the
reference evaluator and model.predict at the documented bounds."""
import numpy as np
import pytest

from conftest import build_model
from nets import architecture
from mlpcodegen import runtime
from mlpcodegen.backends import BACKENDS
from mlpcodegen.backends.sympy import MAX_NESTED_TERMS, nested_terms
from mlpcodegen.frontends.keras import load
from mlpcodegen.harness.inputs import random_inputs
from mlpcodegen.harness.report import F32_ULP_BOUND, F64_REL_BOUND, compare
from mlpcodegen.harness.verify import verify
from mlpcodegen.core.ir import Activation, Dense, Network
from mlpcodegen.core.reference import evaluate_magnitude

SEEDS = range(24)


@pytest.fixture(scope="module")
def models():
    return {seed: build_model(*architecture(seed), seed=seed) for seed in SEEDS}


def test_architectures_cover_every_activation_and_both_bias_settings():
    seen_acts, seen_bias, depths, widths = set(), set(), set(), set()
    for seed in SEEDS:
        w, acts, biases = architecture(seed)
        seen_acts.update(acts), seen_bias.update(biases), depths.add(len(acts)), widths.update(w)
    assert seen_acts == {"linear", "relu", "tanh", "sigmoid", "softmax"}
    assert seen_bias == {True, False}
    assert depths == {1, 2, 3, 4} and min(widths) == 1 and max(widths) >= 14


#: every target that runs in-process, with each dtype it supports
TARGETS = [(name, dtype) for name in runtime.LOADERS for dtype in BACKENDS[name].dtypes]


#: Every seed in every target, SymPy included: its numeric load builds the expressions
#: unevaluated, as written (seed 7, 519,000 terms written out, took two minutes when
#: SymPy sorted Max's arguments and evaluated tanh of whole subtrees; now well under a second).
#: Numba compiles every seed once (about 1 s + 12 ms per unrolled weight: 48 compiles were
#: half of this file's time), in float32 and float64 on alternate seeds: its two dtypes differ
#: only in how literals and arrays are spelt, which test_languages checks per activation in
#: both and test_properties on random chains of both;
#: test_numba_seeds_of_each_dtype_cover_the_architectures checks what each half holds.
NUMBA_DTYPE = {seed: ("float32", "float64")[seed % 2] for seed in SEEDS}
CASES = [(seed, target, dtype) for seed in SEEDS for target, dtype in TARGETS
         if target != "numba" or NUMBA_DTYPE[seed] == dtype]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_numba_seeds_of_each_dtype_cover_the_architectures(dtype):
    acts, biases, depths = set(), set(), set()
    for seed in (s for s in SEEDS if NUMBA_DTYPE[s] == dtype):
        _, a, b = architecture(seed)
        acts.update(a), biases.update(b), depths.add(len(a))
    assert acts == {"linear", "relu", "tanh", "sigmoid", "softmax"} and biases == {True, False}
    assert depths == {1, 2, 3, 4}


def test_architectures_include_formulas_too_large_to_print():
    """The SymPy cases reach past what the formula printers accept (MAX_NESTED_TERMS), and
    seed 4 is a softmax of a softmax: the cases the unevaluated numeric load exists for."""
    widths, acts, biases = architecture(7)
    net = Network(widths[0], tuple(Dense(np.ones((a, b)), np.ones(b) if bias else None, Activation(act))
                                   for a, b, act, bias in zip(widths, widths[1:], acts, biases)))
    assert nested_terms(net) > 20 * MAX_NESTED_TERMS
    assert architecture(4)[1][:2] == ["softmax", "softmax"]


@pytest.fixture(scope="module")
def evaluations(models):
    """Inputs, reference, magnitude and model.predict for every model, computed once."""
    out = {}
    for seed, model in models.items():
        net = load(model)
        x = random_inputs(net.n_inputs, 400, np.full(net.n_inputs, -50.0), np.full(net.n_inputs, 50.0), seed)
        x[2:200] /= 25.0  # half the inputs in [-2, 2], where the activations are not saturated
        reference, scale = evaluate_magnitude(net, x)
        out[seed] = (net, x, reference, scale, model.predict(x, batch_size=len(x), verbose=0))
    return out


@pytest.mark.parametrize("seed,target,dtype", CASES)
def test_target_matches_reference_and_predict(evaluations, target, dtype, seed):
    net, x, reference, scale, predicted = evaluations[seed]
    function = runtime.load(net, target, dtype=dtype, name="net")
    got = function(x)
    assert got.shape == reference.shape and got.dtype == np.dtype(dtype)
    if dtype == "float64":
        assert compare(got, reference, scale, "float64")[1] <= F64_REL_BOUND
    else:
        assert compare(got, reference, scale, "float32")[2] <= F32_ULP_BOUND
    assert compare(got, predicted, scale, "float32")[2] <= F32_ULP_BOUND
    one = function(x[3])
    if target == "c":  # FMA contraction may round the one-sample and block paths differently
        assert compare(one[None], reference[3:4], scale[3:4], dtype)[2 if dtype == "float32" else 1] \
            <= (F32_ULP_BOUND if dtype == "float32" else F64_REL_BOUND)
    else:
        np.testing.assert_array_equal(one, got[3])  # one-sample path agrees bit for bit


@pytest.mark.parametrize("seed", [0, 7])
def test_verify_reports_every_comparison_and_passes(models, seed, tmp_path):
    model = models[seed]
    model.save(tmp_path / "m.keras")
    for dtype in ("float32", "float64"):
        report = verify(str(tmp_path / "m.keras"), "c", dtype, n=300, domain=(-3, 3))
        assert report.ok, report.table()
        labels = [c.label for c in report.comparisons]
        assert labels == [f"c {dtype} vs reference (float64)", f"c {dtype} vs model.predict",
                          f"c {dtype} one-sample calls vs batch", "model.predict vs reference"]
        assert report.comparisons[2].passed and report.comparisons[2].max_ulp <= 1  # FMA rounding at most
        assert "max ulp" in report.table()


def test_verify_detects_a_wrong_translation(models):
    """A perturbed network must fail verification: the check is not vacuous."""
    from dataclasses import replace

    model = models[1]
    net = load(model)
    first = net.layers[0]
    kernel = np.array(first.kernel)
    kernel[0, 0] += 1e-3
    broken = replace(net, layers=(replace(first, kernel=kernel),) + net.layers[1:])
    report = verify(model, "c", "float32", n=200, network=broken)
    assert not report.ok
    assert report.comparisons[1].passed is False


def test_verify_domain_from_a_sample(models):
    model = models[2]
    net = load(model)
    sample = np.random.default_rng(0).uniform(5, 6, (50, net.n_inputs))
    report = verify(model, "c", "float32", n=100, sample=sample)
    assert report.ok
    assert np.all(report.domain[0] >= 5) and np.all(report.domain[1] <= 6)
