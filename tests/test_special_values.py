"""NaN, +-inf, +-0 and huge inputs (issue 9 item 3): every activation gives what Keras'
own activation functions give (TensorFlow backend, float32; the table is
tests/special_values.py, shared with test_c_safety.py), in the reference evaluator and in
every target.

Values compare with +-0 equal, NaN == NaN, +-inf exactly and finite values within 2e-3.  Where float32 and float64 arithmetic give different answers
(selu(3.4e38) overflows only in float32), the float64 value is listed separately.
"""
import math
import warnings

import numpy as np
import pytest

from mlpcodegen import runtime
from mlpcodegen.core.activations import REGISTRY
from mlpcodegen.core.ir import Activate, Activation, Dense, Network
from mlpcodegen.core.reference import evaluate

from conftest import build_flags
from special_values import GLU_ROW, GLU_VALUES, PARAMETRISED, SOFTMAX_ROWS, TABLE as KERAS, Z, activation, expected

nan, inf = math.nan, math.inf

#: case -> its activation: every entry of the shared Keras table (tests/special_values.py).
CASES = {key: activation(key) for key in [*KERAS, *PARAMETRISED]}

#: softmax / log_softmax rows (Keras, float32).
ROWS = [row for row, _, _ in SOFTMAX_ROWS]
VECTOR_TABLE = {"softmax": [soft for _, soft, _ in SOFTMAX_ROWS], "log_softmax": [log for _, _, log in SOFTMAX_ROWS]}
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


ELEMENTWISE = {key: activation_network(1, act) for key, act in CASES.items()}
VECTOR = {name: activation_network(4 if name == "glu" else 3, Activation(name))
          for name, spec in REGISTRY.items() if spec.vector}


@pytest.fixture(scope="module")
def c_functions():
    """(dtype, math) -> {case: compiled network}: every case's C in one file per build
    (one gcc run instead of one per case; the functions have distinct names), the same
    text and calls as mlpcodegen.backends.c.load gives for each."""
    from mlpcodegen.backends import c
    from mlpcodegen.runtime import CompiledNetwork
    from mlpcodegen.runtime.cffi_build import build_module

    cases = {**ELEMENTWISE, **VECTOR}
    names = {key: f"special_{i}" for i, key in enumerate(cases)}
    built = {}
    for _, dtype, options in (t for t in TARGETS if t[0] == "c"):
        source = "".join(c.emit_c(cases[k], dtype=dtype, name=n, **options) for k, n in names.items())
        module = build_module(source, "".join(c.cdef(cases[k], dtype, n) for k, n in names.items()), build_flags())
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


@pytest.mark.parametrize("case", list(CASES))
def test_elementwise_special_values_in_the_reference_and_every_target(case, c_functions):
    x = np.array(Z)[:, None]
    want64 = expected(case, "float64")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_same(evaluate(ELEMENTWISE[case], x)[:, 0], want64, 2e-3, f"reference {case}")
    for target, dtype, options in TARGETS:
        want = expected(case, "float32") if dtype == "float32" else want64
        for got in outputs(case, target, dtype, options, x, c_functions):
            assert_same(got[:, 0], want, 2e-3, f"{target} {dtype} {options} {case}")


def test_every_elementwise_activation_is_in_the_table():
    covered = {act.name for act in CASES.values()}
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
