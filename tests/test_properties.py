"""Property-based: random chains of supported layers, widths and activations, through
the C and Numba backends, against the reference evaluator."""
import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mlpcodegen import runtime
from mlpcodegen.activations import REGISTRY
from mlpcodegen.harness.verify import F32_ULP_BOUND, F64_REL_BOUND, compare
from mlpcodegen.ir import Activate, Activation, Affine, Dense, Network
from mlpcodegen.passes import fold_affine
from mlpcodegen.reference import evaluate_magnitude

#: parameter values to draw for activations that have parameters
PARAMS = {
    "relu": st.fixed_dictionaries({"negative_slope": st.sampled_from([0.0, 0.1]),
                                   "max_value": st.sampled_from([None, 1.5, 6.0]),
                                   "threshold": st.sampled_from([0.0, 0.25])}),
    "leaky_relu": st.fixed_dictionaries({"negative_slope": st.floats(0.01, 0.5)}),
    "elu": st.fixed_dictionaries({"alpha": st.floats(0.1, 2.0)}),
    "celu": st.fixed_dictionaries({"alpha": st.floats(0.2, 2.0)}),
    "gelu": st.fixed_dictionaries({"approximate": st.sampled_from([0.0, 1.0])}),
    "hard_shrink": st.fixed_dictionaries({"threshold": st.floats(0.1, 1.0)}),
    "soft_shrink": st.fixed_dictionaries({"threshold": st.floats(0.1, 1.0)}),
    "squareplus": st.fixed_dictionaries({"b": st.floats(0.5, 8.0)}),
    "threshold": st.fixed_dictionaries({"threshold": st.floats(-1, 1), "default_value": st.floats(-2, 2)}),
    "layer_norm": st.fixed_dictionaries({"epsilon": st.sampled_from([1e-3, 0.1])}),
    "rms_norm": st.fixed_dictionaries({"epsilon": st.sampled_from([1e-6, 0.1])}),
    "variance_scale": st.fixed_dictionaries({"epsilon": st.sampled_from([1e-3, 0.1])}),
}
NAMES = sorted(REGISTRY)


@st.composite
def activations(draw, width: int):
    name = draw(st.sampled_from(NAMES))
    if name == "glu" and width % 2:
        name = "tanh"
    if name == "prelu":
        return Activation(name, (("alpha", tuple(draw(st.lists(st.floats(-0.5, 0.5), min_size=width, max_size=width)))),))
    params = draw(PARAMS[name]) if name in PARAMS else {}
    return Activation(name, tuple(params.items()))


@st.composite
def networks(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    width = n_inputs = draw(st.integers(1, 6))
    layers = []
    for position in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["dense", "dense", "activate", "affine"])) if position else "dense"
        if kind == "dense":
            units = draw(st.integers(1, 8))
            act = draw(activations(units))
            bias = rng.normal(0, 0.5, units) if draw(st.booleans()) else None
            layers.append(Dense(rng.normal(0, 1.0 / np.sqrt(width), (width, units)), bias, act, f"d{position}"))
        elif kind == "activate":
            layers.append(Activate(width, draw(activations(width)), f"a{position}"))
        else:
            layers.append(Affine(rng.uniform(0.5, 2.0, width) * rng.choice([-1, 1], width), rng.normal(0, 1, width), f"n{position}"))
        width = layers[-1].n_out
    return Network(n_inputs, tuple(layers))


def check(net: Network, target: str, dtype: str) -> None:
    x = np.random.default_rng(0).uniform(-4, 4, (64, net.n_inputs)).astype(np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        reference, scale = evaluate_magnitude(net, x)
    assume(np.all(np.isfinite(scale)) and scale.max() < 1e30)  # exp(exp(...)) overflows in any precision
    folded = fold_affine(net)
    got = runtime.load(folded, target, dtype=dtype, name="p")(x)
    error = compare(got, reference, scale, dtype)
    assert (error[1] <= F64_REL_BOUND) if dtype == "float64" else (error[2] <= F32_ULP_BOUND), (net.describe(), error)


SETTINGS = dict(deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])


@settings(max_examples=100, **SETTINGS)
@given(networks(), st.sampled_from(["float32", "float64"]))
def test_random_chains_in_c(net, dtype):
    check(net, "c", dtype)


@settings(max_examples=40, **SETTINGS)
@given(networks(), st.sampled_from(["float32", "float64"]))
def test_random_chains_in_numba(net, dtype):
    check(net, "numba", dtype)
