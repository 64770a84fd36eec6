"""Property-based: random chains of supported layers, widths and activations, through
the C and Numba backends, against the reference evaluator."""
import numpy as np
from conftest import build_flags
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mlpcodegen import runtime
from mlpcodegen.core.activations import REGISTRY
from mlpcodegen.harness.report import F32_ULP_BOUND, F64_REL_BOUND, compare
from mlpcodegen.core.ir import Activate, Activation, Affine, Dense, Network
from mlpcodegen.core.passes import fold_affine
from mlpcodegen.core.reference import evaluate_magnitude

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


def _reference(net: Network):
    """(inputs, reference, scale), or None where the reference overflows."""
    x = np.random.default_rng(0).uniform(-4, 4, (64, net.n_inputs)).astype(np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        reference, scale = evaluate_magnitude(net, x)
    if not (np.all(np.isfinite(scale)) and scale.max() < 1e30):  # exp(exp(...)) overflows in any precision
        return None
    return x, reference, scale


def _assert_close(net: Network, got, reference, scale, dtype: str) -> None:
    error = compare(got, reference, scale, dtype)
    assert (error[1] <= F64_REL_BOUND) if dtype == "float64" else (error[2] <= F32_ULP_BOUND), (net.describe(), error)


def check(net: Network, target: str, dtype: str) -> None:
    case = _reference(net)
    assume(case is not None)
    check_case(net, case, target, dtype)


def check_case(net: Network, case, target: str, dtype: str) -> None:
    x, reference, scale = case
    got = runtime.load(fold_affine(net), target, dtype=dtype, name="p")(x)
    _assert_close(net, got, reference, scale, dtype)


def check_in_one_c_module(nets: list[Network], dtype: str) -> None:
    """Every network's C (as runtime.load emits it: unroll and math by default) in one
    file, compiled once (the harness's flags, no debug information): one gcc run per
    example instead of one per network."""
    cases = [(f"chain_{i}", net, fold_affine(net), _reference(net)) for i, net in enumerate(nets)]
    cases = [case for case in cases if case[3] is not None]
    assume(cases)
    run_in_one_c_module(cases, dtype)


def run_in_one_c_module(cases, dtype: str) -> None:
    """``cases`` (C name, network, folded network, reference case) compiled in one file."""
    from mlpcodegen.backends.c import cdef, emit_c
    from mlpcodegen.runtime import CompiledNetwork
    from mlpcodegen.runtime.cffi_build import build_module

    module = build_module("\n".join(emit_c(folded, dtype=dtype, name=name) for name, _, folded, _ in cases),
                          "".join(cdef(folded, dtype, name) for name, _, folded, _ in cases), build_flags())
    for name, net, folded, (x, reference, scale) in cases:
        got = CompiledNetwork(module, name, folded.n_inputs, folded.n_outputs, dtype)(x)
        _assert_close(net, got, reference, scale, dtype)


SETTINGS = dict(deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])


#: 25 examples of 4 networks: 100 random chains (as before, when each was compiled alone) in 25 compiles.
@settings(max_examples=25, **SETTINGS)
@given(st.lists(networks(), min_size=4, max_size=4), st.sampled_from(["float32", "float64"]))
def test_random_chains_in_c(nets, dtype):
    check_in_one_c_module(nets, dtype)


def test_one_c_module_runs_what_runtime_load_runs():
    """The batched property check compiles what runtime.load compiles: same text, same results."""
    from mlpcodegen.backends import emit
    from mlpcodegen.backends.c import emit_c

    net = Network(2, (Dense(np.array([[1.0, -2.0], [0.5, 0.25]]), None, Activation("tanh"), "d0"),))
    assert emit(net, "c", dtype="float32", name="chain_0") == emit_c(net, dtype="float32", name="chain_0")
    case = _reference(net)
    assert case is not None  # outside a property test: no assume
    check_case(net, case, "c", "float32")
    run_in_one_c_module([(f"chain_{i}", net, net, case) for i in range(2)], "float32")


#: each example compiles a Numba module (~1 s): 20 examples keep the property's reach.
@settings(max_examples=20, **SETTINGS)
@given(networks(), st.sampled_from(["float32", "float64"]))
def test_random_chains_in_numba(net, dtype):
    check(net, "numba", dtype)
