"""NaN, +-inf, +-0 and huge inputs (issue 9 item 3): every activation gives what Keras'
own activation functions give (TensorFlow backend, float32; /work/notes/nan_semantics.md,
measured with TF 2.21 / keras 3.15), in the reference evaluator and in every target.

Values compare with +-0 equal, NaN == NaN, +-inf exactly and finite values to the
table's printed digits.  Where float32 and float64 arithmetic give different answers
(selu(3.4e38) overflows only in float32), the float64 value is listed separately.
"""
import math
import warnings

import numpy as np
import pytest

from mlpcodegen import runtime
from mlpcodegen.activations import REGISTRY
from mlpcodegen.ir import Activate, Activation, Dense, Network
from mlpcodegen.reference import evaluate

nan, inf = math.nan, math.inf
Z = [nan, inf, -inf, 0.0, -0.0, 1e30, -1e30, 3.4e38, -3.4e38]

#: activation (and parameters) -> Keras' float32 values at Z.
TABLE = {
    "relu": [nan, inf, 0.0, 0.0, 0.0, 1e30, 0.0, 3.4e38, 0.0],
    "relu6": [nan, 6.0, 0.0, 0.0, 0.0, 6.0, 0.0, 6.0, 0.0],
    "leaky_relu": [nan, inf, -inf, 0.0, -0.0, 1e30, -2e29, 3.4e38, -6.8e37],
    "elu": [nan, inf, -1.0, 0.0, -0.0, 1e30, -1.0, 3.4e38, -1.0],
    "selu": [nan, inf, -1.758, 0.0, -0.0, 1.0507e30, -1.758, inf, -1.758],
    "celu": [nan, inf, -1.0, 0.0, 0.0, 1e30, -1.0, 3.4e38, -1.0],
    "gelu": [nan, inf, nan, 0.0, -0.0, 1e30, -0.0, 3.4e38, -0.0],
    "silu": [nan, inf, nan, 0.0, -0.0, 1e30, -0.0, 3.4e38, -0.0],
    "hard_sigmoid": [nan, 1.0, 0.0, 0.5, 0.5, 1.0, 0.0, 1.0, 0.0],
    "hard_silu": [nan, inf, nan, 0.0, -0.0, 1e30, -0.0, 3.4e38, -0.0],
    "sigmoid": [nan, 1.0, 0.0, 0.5, 0.5, 1.0, 0.0, 1.0, 0.0],
    "log_sigmoid": [nan, -0.0, -inf, -0.693, -0.693, -0.0, -1e30, -0.0, -3.4e38],
    "tanh": [nan, 1.0, -1.0, 0.0, -0.0, 1.0, -1.0, 1.0, -1.0],
    "hard_tanh": [nan, 1.0, -1.0, 0.0, -0.0, 1.0, -1.0, 1.0, -1.0],
    "tanh_shrink": [nan, inf, -inf, 0.0, 0.0, 1e30, -1e30, 3.4e38, -3.4e38],
    "hard_shrink": [0.0, inf, -inf, 0.0, 0.0, 1e30, -1e30, 3.4e38, -3.4e38],
    "soft_shrink": [0.0, inf, -inf, 0.0, 0.0, 1e30, -1e30, 3.4e38, -3.4e38],
    "softplus": [nan, inf, 0.0, 0.693, 0.693, 1e30, 0.0, 3.4e38, 0.0],
    "softsign": [nan, nan, nan, 0.0, -0.0, 1.0, -1.0, 1.0, -1.0],
    "sparse_plus": [nan, inf, 0.0, 0.25, 0.25, 1e30, 0.0, 3.4e38, 0.0],
    "squareplus": [nan, inf, nan, 1.0, 1.0, inf, inf, inf, inf],
    "mish": [nan, inf, nan, 0.0, -0.0, 1e30, -0.0, 3.4e38, -0.0],
    "exponential": [nan, inf, 0.0, 1.0, 1.0, inf, 0.0, inf, 0.0],
    "sparse_sigmoid": [nan, 1.0, 0.0, 0.5, 0.5, 1.0, 0.0, 1.0, 0.0],
    "linear": [nan, inf, -inf, 0.0, -0.0, 1e30, -1e30, 3.4e38, -3.4e38],
    # keras.layers.ReLU(max_value=6, threshold=0.5, negative_slope=0.1)
    "relu/max6-threshold-slope": [nan, 6.0, -inf, -0.05, -0.05, 6.0, -1e29, 6.0, -3.4e37],
    "threshold": [-2.0, inf, -2.0, -2.0, -2.0, 1e30, -2.0, 3.4e38, -2.0],  # threshold(z, 0.5, -2.0)
    # keras.layers.PReLU(alpha=0.25), measured the same way
    "prelu": [nan, inf, -inf, 0.0, 0.0, 1e30, -2.5e29, 3.4e38, -8.5e37],
    "gelu/approximate": [nan, inf, nan, 0.0, -0.0, 1e30, -0.0, 3.4e38, -0.0],
}
PARAMS = {
    "relu/max6-threshold-slope": ("relu", {"max_value": 6.0, "threshold": 0.5, "negative_slope": 0.1}),
    "threshold": ("threshold", {"threshold": 0.5, "default_value": -2.0}),
    "prelu": ("prelu", {"alpha": (0.25,)}),
    "gelu/approximate": ("gelu", {"approximate": 1.0}),
}
#: Where float64 arithmetic differs from float32 (no overflow of scale * z or z * z).
FLOAT64 = {
    ("selu", 7): 1.0507009873554805 * 3.4e38,
    ("squareplus", 5): 1e30, ("squareplus", 6): 0.0, ("squareplus", 7): 3.4e38, ("squareplus", 8): 0.0,
}

#: softmax / log_softmax rows (Keras, float32).
ROWS = [[0.0, -inf, 1.0], [-inf, -inf, -inf], [inf, 0.0, 1.0], [nan, 0.0, 1.0], [1e30, 0.0, -1e30]]
VECTOR_TABLE = {
    "softmax": [[0.2689, 0.0, 0.7311], [nan] * 3, [nan] * 3, [nan] * 3, [1.0, 0.0, 0.0]],
    "log_softmax": [[-1.3133, -inf, -0.3133], [nan] * 3, [nan] * 3, [nan] * 3, [0.0, -1e30, -2e30]],
}
GLU_ROW, GLU_VALUES = [nan, 1.0, 0.0, inf], [nan, 1.0]
#: Vector activations Keras has no table entry for: every target must agree with the
#: reference (NaN where it has NaN, no exception, no warning) on these rows.
OTHER_ROWS = ROWS + [[-0.0, 0.0, 0.0], [3.4e38, -3.4e38, 3.4e38]]

#: (target, dtype, options) of every target that runs in-process; C in both math modes
#: (float64 "fast" is the libm text).
TARGETS = [("python", "float64", {}), ("numpy", "float32", {}), ("numpy", "float64", {}),
           ("numba", "float32", {}), ("numba", "float64", {}),
           ("c", "float32", {"math": "fast"}), ("c", "float32", {"math": "libm"}),
           ("c", "float64", {"math": "libm"})]


def activation_network(width: int, activation: Activation) -> Network:
    """A network that is only the activation, so z = x exactly, NaN and inf included
    (a Dense identity layer would turn inf * 0 into NaN).  The IR asks for a Dense layer;
    the backends do not: the check is bypassed for this test."""
    net = Network(width, (Dense(np.eye(width), None, Activation("linear"), "identity"),
                          Activate(width, activation, "act")))
    object.__setattr__(net, "layers", net.layers[1:])
    return net


ELEMENTWISE = {key: activation_network(1, Activation(*PARAMS.get(key, (key, {})))) for key in TABLE}
VECTOR = {name: activation_network(4 if name == "glu" else 3, Activation(name))
          for name, spec in REGISTRY.items() if spec.vector}


@pytest.fixture(scope="module")
def c_functions():
    """(dtype, math) -> {case: compiled network}: every case's C in one file per build
    (one gcc run instead of one per case; the functions have distinct names), the same
    text and calls as mlpcodegen.backends.c.load gives for each."""
    from mlpcodegen.backends import c
    from mlpcodegen.runtime.cffi_build import CompiledNetwork, build_module

    cases = {**ELEMENTWISE, **VECTOR}
    names = {key: f"special_{i}" for i, key in enumerate(cases)}
    built = {}
    for _, dtype, options in (t for t in TARGETS if t[0] == "c"):
        source = "".join(c.emit_c(cases[k], dtype=dtype, name=n, **options) for k, n in names.items())
        module = build_module(source, "".join(c.cdef(cases[k], dtype, n) for k, n in names.items()))
        built[dtype, options["math"]] = {k: CompiledNetwork(module, n, cases[k].n_inputs, cases[k].n_outputs, dtype)
                                         for k, n in names.items()}
    return built


def assert_same(got, want, rtol, label):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, label
    assert np.array_equal(np.isnan(got), np.isnan(want)), f"{label}: NaN at {np.isnan(got)}, want {want}: got {got}"
    finite = np.isfinite(want)
    assert np.array_equal(got[~finite & ~np.isnan(want)], want[~finite & ~np.isnan(want)]), f"{label}: {got}"
    assert np.all(np.isfinite(got[finite])), f"{label}: {got} want {want}"
    np.testing.assert_allclose(got[finite], want[finite], rtol=rtol, atol=1e-300, err_msg=label)


def outputs(case: str, target: str, dtype: str, options: dict, x: np.ndarray, c_functions) -> list[np.ndarray]:
    """Every way to call ``target``: the batch (2-D) call and, row by row, the one-sample
    call (C, Python) or the one-input entry (Numba's NAME_scalar, C's NAME_scalar)."""
    net = ELEMENTWISE.get(case) or VECTOR[case]
    x = x.astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from generated code either
        if target == "c":
            f = c_functions[dtype, options["math"]][case]
        else:
            f = runtime.load(net, target, dtype=dtype, name="special")
        if target == "numba" and net.n_inputs == 1:  # one compiled function, the same statements
            return [np.array([[f.scalar(v)] for v in x[:, 0]])]
        results = [np.asarray(f(x))] if target != "python" else []
        if target in ("c", "python"):
            results.append(np.array([f(row) for row in x]))
        if target == "c" and f.scalar is not None:
            results.append(np.array([[f.scalar(float(v))] for v in x[:, 0]]))
    return results


@pytest.mark.parametrize("case", list(TABLE))
def test_elementwise_special_values_in_the_reference_and_every_target(case, c_functions):
    name = PARAMS.get(case, (case, {}))[0]
    x = np.array(Z)[:, None]
    want64 = [FLOAT64.get((name, i), v) for i, v in enumerate(TABLE[case])]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_same(evaluate(ELEMENTWISE[case], x)[:, 0], want64, 2e-3, f"reference {case}")
    for target, dtype, options in TARGETS:
        want = TABLE[case] if dtype == "float32" else want64
        for got in outputs(case, target, dtype, options, x, c_functions):
            assert_same(got[:, 0], want, 2e-3, f"{target} {dtype} {options} {case}")


def test_every_elementwise_activation_is_in_the_table():
    covered = {PARAMS.get(key, (key, {}))[0] for key in TABLE}
    assert covered == {name for name, spec in REGISTRY.items() if not spec.vector}


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "glu"])
def test_softmax_and_glu_rows_with_special_values(name, c_functions):
    x = np.array([GLU_ROW] if name == "glu" else ROWS)
    want = np.array([GLU_VALUES] if name == "glu" else VECTOR_TABLE[name])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_same(evaluate(VECTOR[name], x), want, 2e-3, f"reference {name}")
    for target, dtype, options in TARGETS:
        for got in outputs(name, target, dtype, options, x, c_functions):
            assert_same(got, want, 2e-3, f"{target} {dtype} {options} {name}")


@pytest.mark.parametrize("name", ["sparsemax", "layer_norm", "rms_norm", "variance_scale", "unit_norm"])
def test_other_vector_activations_agree_with_the_reference(name, c_functions):
    """No Keras table here (sparsemax is refused from Keras; the norms come from layers):
    NaN where the reference has NaN, the same infinities, no exception or warning.
    float32 targets skip the huge rows, whose squares overflow only in float32."""
    for target, dtype, options in TARGETS:
        x = np.array([row for row in OTHER_ROWS if dtype == "float64" or not 1e15 < np.nanmax(np.abs(row)) < inf])
        want = evaluate(VECTOR[name], x.astype(dtype))
        for got in outputs(name, target, dtype, options, x, c_functions):
            assert_same(got, want, 1e-5 if dtype == "float32" else 1e-12, f"{target} {dtype} {options} {name}")


def test_the_python_target_never_raises_for_a_float():
    """math.exp raises OverflowError, x / 0.0 ZeroDivisionError: the generated module
    gives inf and NaN instead (exponential(1e30) was an OverflowError)."""
    from mlpcodegen.backends.python import emit_python
    from mlpcodegen.runtime.pymodule import import_generated

    for name, params in [("exponential", {}), ("elu", {}), ("celu", {"alpha": -1.0})]:
        module = import_generated(emit_python(activation_network(1, Activation(name, params)), name="f"), "python")
        for z in Z + [1e3, -1e3, 710.0]:
            module.f([z])
    module = import_generated(emit_python(activation_network(3, Activation("sparsemax")), name="f"), "python")
    assert all(math.isnan(v) for v in module.f([nan, nan, nan]))


def test_every_vector_activation_is_tested():
    assert set(VECTOR) == {"softmax", "log_softmax", "glu", "sparsemax", "layer_norm", "rms_norm",
                           "variance_scale", "unit_norm"}
    assert [type(layer) for layer in VECTOR["softmax"].layers] == [Activate]
