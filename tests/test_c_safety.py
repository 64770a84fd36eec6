"""The generated C under hostile or extreme conditions (issue 9): special input values
(NaN, infinities, signed zeros, huge values) give what Keras gives; names from a model
file stay inert text; function names reserved by the C library or C++ are refused; the
batch function's stack is bounded and stated; ``NAME_batch(x, x, n)`` works in place;
the header is usable from C++."""
from __future__ import annotations

import math
import subprocess
import threading

import numpy as np
import pytest

from conftest import STRICT_FLAGS
from mlpcodegen.backends.c import cdef, emit_c, emit_c_header, load
from mlpcodegen.harness.cffi_build import CompiledNetwork, build_module
from mlpcodegen.ir import Activate, Activation, Dense, Network

# ---------------------------------------------------------------------------------------
# Special values: the table of /work/notes/nan_semantics.md (Keras 3 on TensorFlow,
# float32), typed in here, independent of the reference evaluator.
NAN, INF = math.nan, math.inf
Z = [NAN, INF, -INF, 0.0, -0.0, 1e30, -1e30, 3.4e38, -3.4e38]
LN2, SELU_NEG = math.log(2.0), -1.0507009873554805 * 1.6732632423543772
TABLE: dict[str, list[float]] = {
    "relu": [NAN, INF, 0.0, 0.0, 0.0, 1e30, 0.0, 3.4e38, 0.0],
    "relu6": [NAN, 6.0, 0.0, 0.0, 0.0, 6.0, 0.0, 6.0, 0.0],
    "leaky_relu": [NAN, INF, -INF, 0.0, -0.0, 1e30, -2e29, 3.4e38, -6.8e37],
    "elu": [NAN, INF, -1.0, 0.0, -0.0, 1e30, -1.0, 3.4e38, -1.0],
    "selu": [NAN, INF, SELU_NEG, 0.0, -0.0, 1.0507009873554805e30, SELU_NEG, INF, SELU_NEG],
    "celu": [NAN, INF, -1.0, 0.0, 0.0, 1e30, -1.0, 3.4e38, -1.0],
    "gelu": [NAN, INF, NAN, 0.0, -0.0, 1e30, -0.0, 3.4e38, -0.0],
    "silu": [NAN, INF, NAN, 0.0, -0.0, 1e30, -0.0, 3.4e38, -0.0],
    "hard_sigmoid": [NAN, 1.0, 0.0, 0.5, 0.5, 1.0, 0.0, 1.0, 0.0],
    "hard_silu": [NAN, INF, NAN, 0.0, -0.0, 1e30, -0.0, 3.4e38, -0.0],
    "sigmoid": [NAN, 1.0, 0.0, 0.5, 0.5, 1.0, 0.0, 1.0, 0.0],
    "log_sigmoid": [NAN, -0.0, -INF, -LN2, -LN2, -0.0, -1e30, -0.0, -3.4e38],
    "tanh": [NAN, 1.0, -1.0, 0.0, -0.0, 1.0, -1.0, 1.0, -1.0],
    "hard_tanh": [NAN, 1.0, -1.0, 0.0, -0.0, 1.0, -1.0, 1.0, -1.0],
    "tanh_shrink": [NAN, INF, -INF, 0.0, 0.0, 1e30, -1e30, 3.4e38, -3.4e38],
    "hard_shrink": [0.0, INF, -INF, 0.0, 0.0, 1e30, -1e30, 3.4e38, -3.4e38],
    "soft_shrink": [0.0, INF, -INF, 0.0, 0.0, 1e30, -1e30, 3.4e38, -3.4e38],
    "softplus": [NAN, INF, 0.0, LN2, LN2, 1e30, 0.0, 3.4e38, 0.0],
    "softsign": [NAN, NAN, NAN, 0.0, -0.0, 1.0, -1.0, 1.0, -1.0],
    "sparse_plus": [NAN, INF, 0.0, 0.25, 0.25, 1e30, 0.0, 3.4e38, 0.0],
    "squareplus": [NAN, INF, NAN, 1.0, 1.0, INF, INF, INF, INF],
    "mish": [NAN, INF, NAN, 0.0, -0.0, 1e30, -0.0, 3.4e38, -0.0],
    "exponential": [NAN, INF, 0.0, 1.0, 1.0, INF, 0.0, INF, 0.0],
    "sparse_sigmoid": [NAN, 1.0, 0.0, 0.5, 0.5, 1.0, 0.0, 1.0, 0.0],
    "linear": [NAN, INF, -INF, 0.0, -0.0, 1e30, -1e30, 3.4e38, -3.4e38],
}
#: Activations with parameters, as Keras' ReLU layer and threshold activation.
PARAMETRISED = {
    "relu_layer": (Activation("relu", (("max_value", 6.0), ("negative_slope", 0.1), ("threshold", 0.5))),
                   [NAN, 6.0, -INF, -0.05, -0.05, 6.0, -1e29, 6.0, -3.4e37]),
    "threshold": (Activation("threshold", (("default_value", -2.0), ("threshold", 0.5))),
                  [-2.0, INF, -2.0, -2.0, -2.0, 1e30, -2.0, 3.4e38, -2.0]),
}
#: Where float64 arithmetic does not overflow as float32 does (the table is float32).
_Z64 = 3.4e38
FLOAT64 = {
    "selu": {7: 1.0507009873554805 * _Z64},
    "squareplus": {i: (z + math.sqrt(z * z + 4.0)) / 2.0 for i, z in ((5, 1e30), (6, -1e30), (7, _Z64), (8, -_Z64))},
}
E = math.e
#: row -> (softmax, log_softmax)
ROWS = [
    ([0.0, -INF, 1.0], [1 / (1 + E), 0.0, E / (1 + E)], [-math.log1p(E), -INF, -math.log1p(1 / E)]),
    ([-INF, -INF, -INF], [NAN] * 3, [NAN] * 3),
    ([INF, 0.0, 1.0], [NAN] * 3, [NAN] * 3),
    ([NAN, 0.0, 1.0], [NAN] * 3, [NAN] * 3),
    ([1e30, 0.0, -1e30], [1.0, 0.0, 0.0], [0.0, -1e30, -2e30]),
]
VARIANTS = [("float32", "fast", "always"), ("float32", "fast", "never"), ("float32", "libm", "always"),
            ("float32", "libm", "never"), ("float64", "libm", "always"), ("float64", "libm", "never")]


def assert_special(got, want, dtype: str, what: str) -> None:
    """NaN == NaN, infinities exactly, zeros of either sign equal, finite values close."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    rtol = 2e-6 if dtype == "float32" else 1e-12
    same = (np.isnan(got) & np.isnan(want)) | (got == want) | np.isclose(got, want, rtol=rtol, atol=0.0)
    assert same.all(), f"{what}: got {got.tolist()}, want {want.tolist()}"


def expected(name: str, dtype: str) -> list[float]:
    values = list(TABLE[name]) if name in TABLE else list(PARAMETRISED[name][1])
    for index, value in (FLOAT64.get(name, {}).items() if dtype == "float64" else ()):
        values[index] = value
    return values


def _activation_only(width: int, activation: str) -> Network:
    """The activation applied straight to the inputs: a network needs a Dense layer, which
    would mix a NaN or an infinity into every unit (0 * inf), so one is built and dropped
    (the C backend needs none)."""
    net = Network(width, (Activate(width, Activation(activation), "act"),
                          Dense(np.eye(width // 2 if activation == "glu" else width), None, Activation("linear"))))
    object.__setattr__(net, "layers", net.layers[:1])
    return net


def _module(nets: dict[str, Network], dtype: str, math_mode: str, unroll: str, flags=None):
    """Every network in one compiled module: one compile per variant."""
    source = "\n".join(emit_c(net, dtype=dtype, name=name, unroll=unroll, math=math_mode) for name, net in nets.items())
    declarations = "".join(cdef(net, dtype, name) for name, net in nets.items())
    module = build_module(source, declarations, *([flags] if flags else []))
    return {name: CompiledNetwork(module, name, net.n_inputs, net.n_outputs, dtype) for name, net in nets.items()}


def _elementwise_nets() -> dict[str, Network]:
    activations = {name: Activation(name) for name in TABLE} | {name: a for name, (a, _) in PARAMETRISED.items()}
    return {f"a_{name}": Network(1, (Dense(np.ones((1, 1)), None, activation, name),))
            for name, activation in activations.items()}


@pytest.mark.parametrize("dtype,math_mode,unroll", VARIANTS)
def test_special_values_follow_keras_in_every_variant(gcc, dtype, math_mode, unroll):
    """Every element-wise activation, fused into a Dense layer (unrolled or loops), on
    NaN, ±inf, ±0, ±1e30 and ±3.4e38: the one-sample, scalar and batch (blocks and the
    rows after them) paths all give the table's values."""
    functions = _module(_elementwise_nets(), dtype, math_mode, unroll)
    z = np.array(Z, dtype=dtype)
    rows = np.tile(z, 8)[:, None]  # 72 rows: two whole blocks of 32 and a tail
    for key, function in functions.items():
        name, want = key[2:], expected(key[2:], dtype)
        what = f"{name} {dtype} {math_mode} {unroll}"
        assert_special([function(np.array([v], dtype=dtype))[0] for v in z], want, dtype, what + " one sample")
        assert_special([function.scalar(float(v)) for v in z], want, dtype, what + " scalar")
        assert_special(function(rows)[:, 0].reshape(8, len(Z)), np.tile(want, (8, 1)), dtype, what + " batch")


@pytest.mark.parametrize("dtype,math_mode", [("float32", "fast"), ("float32", "libm"), ("float64", "libm")])
def test_special_rows_through_softmax_log_softmax_and_glu(gcc, dtype, math_mode):
    """A row with -inf gives 0 (softmax) and -inf (log_softmax) for that entry; rows of
    -inf only, or with +inf or NaN, give NaN everywhere; huge finite values saturate."""
    functions = _module({f"v_{a}": _activation_only(4 if a == "glu" else 3, a) for a in ("softmax", "log_softmax", "glu")},
                        dtype, math_mode, "auto")
    glu = functions["v_glu"]
    assert_special(glu(np.array([NAN, 1.0, 0.0, INF], dtype=dtype)), [NAN, 1.0], dtype, "glu")
    for row, soft, log_soft in ROWS:
        batch = np.tile(np.array(row, dtype=dtype), (40, 1))
        for key, want in (("v_softmax", soft), ("v_log_softmax", log_soft)):
            function = functions[key]
            what = f"{key} {row} {dtype} {math_mode}"
            assert_special(function(np.array(row, dtype=dtype)), want, dtype, what + " one sample")
            assert_special(function(batch), np.tile(want, (40, 1)), dtype, what + " batch")


def test_all_nan_input_through_relu_layers_is_nan(gcc):
    """The issue's case: an all-NaN input gave a finite 130.6 (relu turned NaN into 0)."""
    rng = np.random.default_rng(0)
    net = Network(4, (Dense(rng.normal(size=(4, 8)), rng.normal(size=8), Activation("relu"), "h"),
                      Dense(rng.normal(size=(8, 2)), np.array([130.6, 1.0]), Activation("linear"), "o")))
    for dtype in ("float32", "float64"):
        f = load(net, dtype=dtype, name="net")
        assert np.isnan(f(np.full(4, np.nan))).all() and np.isnan(f(np.full((40, 4), np.nan))).all()
