"""Keras' values of every activation at NaN, +-inf, +-0 and huge inputs: the table of
/work/notes/nan_semantics.md (Keras 3 on TensorFlow, float32; measured with TF 2.21 /
keras 3.15), typed in here, independent of the reference evaluator.  One table for
test_special_values.py (the reference and every target) and test_c_safety.py (every C
variant); exact values where Keras' are exact (ln 2, selu's scale * alpha)."""
from __future__ import annotations

import math

from mlpcodegen.core.ir import Activation

NAN, INF = math.nan, math.inf
Z = [NAN, INF, -INF, 0.0, -0.0, 1e30, -1e30, 3.4e38, -3.4e38]
LN2, SELU_NEG = math.log(2.0), -1.0507009873554805 * 1.6732632423543772

#: activation (default parameters) -> Keras' float32 values at Z.
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
#: Activations with parameters -> (the activation, Keras' float32 values at Z).
PARAMETRISED: dict[str, tuple[Activation, list[float]]] = {
    # keras.layers.ReLU(max_value=6, threshold=0.5, negative_slope=0.1)
    "relu/max6-threshold-slope": (
        Activation("relu", (("max_value", 6.0), ("negative_slope", 0.1), ("threshold", 0.5))),
        [NAN, 6.0, -INF, -0.05, -0.05, 6.0, -1e29, 6.0, -3.4e37]),
    # threshold(z, 0.5, -2.0)
    "threshold": (Activation("threshold", (("default_value", -2.0), ("threshold", 0.5))),
                  [-2.0, INF, -2.0, -2.0, -2.0, 1e30, -2.0, 3.4e38, -2.0]),
    # keras.layers.PReLU(alpha=0.25), measured the same way
    "prelu": (Activation("prelu", (("alpha", (0.25,)),)), [NAN, INF, -INF, 0.0, 0.0, 1e30, -2.5e29, 3.4e38, -8.5e37]),
    "gelu/approximate": (Activation("gelu", (("approximate", 1.0),)),
                         [NAN, INF, NAN, 0.0, -0.0, 1e30, -0.0, 3.4e38, -0.0]),
}
#: Where float64 arithmetic does not overflow as float32 does (scale * z or z * z):
#: activation -> {index in Z: float64 value}.
_Z64 = 3.4e38
FLOAT64: dict[str, dict[int, float]] = {
    "selu": {7: 1.0507009873554805 * _Z64},
    "squareplus": {i: (z + math.sqrt(z * z + 4.0)) / 2.0 for i, z in ((5, 1e30), (6, -1e30), (7, _Z64), (8, -_Z64))},
}

E = math.e
#: row -> (Keras' softmax, log_softmax), float32.
SOFTMAX_ROWS = [
    ([0.0, -INF, 1.0], [1 / (1 + E), 0.0, E / (1 + E)], [-math.log1p(E), -INF, -math.log1p(1 / E)]),
    ([-INF, -INF, -INF], [NAN] * 3, [NAN] * 3),
    ([INF, 0.0, 1.0], [NAN] * 3, [NAN] * 3),
    ([NAN, 0.0, 1.0], [NAN] * 3, [NAN] * 3),
    ([1e30, 0.0, -1e30], [1.0, 0.0, 0.0], [0.0, -1e30, -2e30]),
]
#: glu of one row (halves: a * sigmoid(b)).
GLU_ROW, GLU_VALUES = [NAN, 1.0, 0.0, INF], [NAN, 1.0]


def activation(key: str) -> Activation:
    """The activation of a TABLE or PARAMETRISED key."""
    return PARAMETRISED[key][0] if key in PARAMETRISED else Activation(key)


def expected(key: str, dtype: str) -> list[float]:
    """Keras' values at Z for ``key``, with the float64 differences for float64."""
    values = list(TABLE[key]) if key in TABLE else list(PARAMETRISED[key][1])
    for index, value in (FLOAT64.get(key, {}).items() if dtype == "float64" else ()):
        values[index] = value
    return values
