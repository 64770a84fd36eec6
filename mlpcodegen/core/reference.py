"""The reference evaluator: the IR computed in float64 NumPy, layer by layer, with
the same formulas Keras uses.  Every backend is tested against it.

>>> import numpy as np
>>> from mlpcodegen.core.ir import Network, Dense, Activation
>>> net = Network(1, (Dense(np.array([[2.0]]), np.array([1.0]), Activation("relu")),))
>>> evaluate(net, np.array([[-1.0], [1.0]])).tolist()
[[0.0], [3.0]]
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .activations import SELU_ALPHA, SELU_SCALE
from .errors import ValidationError
from .ir import Activate, Activation, Affine, Dense, Network, Polynomial


_erf = np.vectorize(math.erf, otypes=[np.float64])


def _sigmoid(z: np.ndarray) -> np.ndarray:
    # exp of a non-positive number only: finite for every z.
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _softplus(z: np.ndarray) -> np.ndarray:
    return np.log1p(np.exp(-np.abs(z))) + np.maximum(z, 0.0)


def _relu(z: np.ndarray, negative_slope: float, max_value: float | None, threshold: float) -> np.ndarray:
    """Keras ``ReLU.static_call``: NaN stays NaN through max and clip, but a threshold is
    a select (NaN -> 0); the negative part is added only when there is one (0 * inf)."""
    y = np.where(z > threshold, z, 0.0) if threshold else np.maximum(z, 0.0)
    if max_value is not None:
        y = np.clip(y, 0.0, max_value)
    return y - negative_slope * np.maximum(threshold - z, 0.0) if negative_slope else y


def _elu(z: np.ndarray, alpha: float) -> np.ndarray:
    return np.where(z > 0, z, alpha * np.expm1(np.minimum(z, 0.0)))


def _hard_sigmoid(z: np.ndarray) -> np.ndarray:
    return np.clip(z + 3.0, 0.0, 6.0) / 6.0


def _gelu(z: np.ndarray, approximate: float) -> np.ndarray:
    if approximate:
        return 0.5 * z * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (z + 0.044715 * z**3)))
    return 0.5 * z * (1.0 + _erf(z / math.sqrt(2.0)))


#: activation name -> float64 NumPy implementation of one unit's value, ``f(z, **params)``.
REFERENCE_ACTIVATIONS: dict[str, Callable[..., np.ndarray]] = {
    "linear": lambda z: z,
    "relu": _relu,
    "relu6": lambda z: np.clip(z, 0.0, 6.0),
    "leaky_relu": lambda z, negative_slope: np.where(z > 0, z, negative_slope * z),
    "prelu": lambda z, alpha: np.maximum(z, 0.0) - alpha * np.maximum(-z, 0.0),
    "elu": _elu,
    "selu": lambda z: SELU_SCALE * _elu(z, SELU_ALPHA),
    "celu": lambda z, alpha: np.maximum(z, 0.0) + alpha * np.expm1(np.minimum(z, 0.0) / alpha),
    "gelu": _gelu,
    "silu": lambda z: z * _sigmoid(z),
    "hard_sigmoid": _hard_sigmoid,
    "hard_silu": lambda z: z * _hard_sigmoid(z),
    "sigmoid": _sigmoid,
    "log_sigmoid": lambda z: -_softplus(-z),
    "tanh": np.tanh,
    "hard_tanh": lambda z: np.clip(z, -1.0, 1.0),
    "tanh_shrink": lambda z: z - np.tanh(z),
    "hard_shrink": lambda z, threshold: np.where(np.abs(z) > threshold, z, 0.0),
    "soft_shrink": lambda z, threshold: np.where(z > threshold, z - threshold,
                                                 np.where(z < -threshold, z + threshold, 0.0)),
    "softplus": _softplus,
    "softsign": lambda z: z / (1.0 + np.abs(z)),
    "sparse_plus": lambda z: np.where(z <= -1, 0.0, np.where(z < 1, 0.25 * (z + 1) ** 2, z)),
    "squareplus": lambda z, b: (z + np.sqrt(z * z + b)) / 2.0,
    "mish": lambda z: z * np.tanh(_softplus(z)),
    "exponential": np.exp,
    "threshold": lambda z, threshold, default_value: np.where(z > threshold, z, default_value),
    "sparse_sigmoid": lambda z: np.clip(0.5 * (z + 1.0), 0.0, 1.0),
}


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _log_softmax(z: np.ndarray) -> np.ndarray:
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _sparsemax(z: np.ndarray) -> np.ndarray:
    """Euclidean projection onto the simplex (Martins & Astudillo 2016), by sorting."""
    ordered = -np.sort(-z, axis=-1)
    cumulative = np.cumsum(ordered, axis=-1)
    k = np.arange(1, z.shape[-1] + 1)
    support = ordered - (cumulative - 1.0) / k > 0
    size = np.maximum(support.sum(axis=-1, keepdims=True), 1)  # the largest z is always in (rounding aside)
    tau = (np.take_along_axis(cumulative, size - 1, axis=-1) - 1.0) / size
    return np.maximum(z - tau, 0.0)


def _glu(z: np.ndarray) -> np.ndarray:
    a, b = np.split(z, 2, axis=-1)
    return a * _sigmoid(b)


def _layer_norm(z: np.ndarray, epsilon: float) -> np.ndarray:
    centred = z - z.mean(axis=-1, keepdims=True)
    return centred / np.sqrt((centred**2).mean(axis=-1, keepdims=True) + epsilon)


#: vector activation -> implementation over the last axis.
REFERENCE_VECTOR_ACTIVATIONS: dict[str, Callable[..., np.ndarray]] = {
    "softmax": _softmax,
    "log_softmax": _log_softmax,
    "sparsemax": _sparsemax,
    "glu": _glu,
    "layer_norm": _layer_norm,
    "rms_norm": lambda z, epsilon: z / np.sqrt((z**2).mean(axis=-1, keepdims=True) + epsilon),
    "variance_scale": lambda z, epsilon: z / np.sqrt(z.var(axis=-1, keepdims=True) + epsilon),
    "unit_norm": lambda z, epsilon: z / np.maximum(np.sqrt((z**2).sum(axis=-1, keepdims=True)), epsilon),
}


def activate(activation: Activation, z: np.ndarray) -> np.ndarray:
    if activation.is_vector:
        return REFERENCE_VECTOR_ACTIVATIONS[activation.name](z, **dict(activation.params))
    params = {k: (np.asarray(v) if isinstance(v, tuple) else v) for k, v in activation.params}
    return REFERENCE_ACTIVATIONS[activation.name](z, **params)


#: NaN, infinite and huge inputs give Keras' IEEE results (overflow to inf, inf - inf =
#: NaN...) without NumPy's warnings: here they are the intended values.
_IEEE = np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore")


@_IEEE
def evaluate(net: Network, x: np.ndarray) -> np.ndarray:
    """Output of ``net`` for one sample (1-D) or a batch (2-D, rows are samples)."""
    h = np.asarray(x, dtype=np.float64)
    if h.ndim not in (1, 2) or h.shape[-1] != net.n_inputs:
        raise ValidationError(
            f"expected input of shape ({net.n_inputs},) or (n, {net.n_inputs}), got {h.shape}"
        )
    for layer in net.layers:
        h = activate(layer.activation, _PREACTIVATION[type(layer)](layer, h))
    return h


def _dense(layer: Dense, h: np.ndarray) -> np.ndarray:
    h = h @ layer.kernel
    return h if layer.bias is None else h + layer.bias


def _dense_magnitude(layer: Dense, m: np.ndarray) -> np.ndarray:
    m = m @ np.abs(layer.kernel)
    return m if layer.bias is None else m + np.abs(layer.bias)


def _basis(layer: Polynomial, t: np.ndarray) -> list[np.ndarray]:
    """For each input i, ``B_0(t_i) ... B_n(t_i)`` stacked on a last axis."""
    out = []
    for i in range(layer.n_in):
        ti, n = t[..., i], int(layer.exponents[:, i].max())
        values = [np.ones_like(ti), ti]
        for _ in range(2, n + 1):
            values.append(ti * values[-1] if layer.basis == "monomial" else 2.0 * ti * values[-1] - values[-2])
        out.append(np.stack(values[: n + 1], axis=-1))
    return out


def _terms(layer: Polynomial, t: np.ndarray) -> np.ndarray:
    """Every term's basis product, on a last axis (one per exponent row)."""
    basis = _basis(layer, t)
    terms = np.ones(t.shape[:-1] + (len(layer.exponents),))
    for i, values in enumerate(basis):
        terms = terms * values[..., layer.exponents[:, i].astype(int)]
    return terms


def _polynomial(layer: Polynomial, h: np.ndarray) -> np.ndarray:
    return _terms(layer, (h - layer.center) * layer.scale) @ layer.coefficients.T


def _polynomial_magnitude(layer: Polynomial, m: np.ndarray) -> np.ndarray:
    """A first-order bound on the rounding of the polynomial and on how it carries the
    errors ``m`` of its inputs (|x| for exact inputs).  Horner's rule (monomial basis)
    rounds by at most ``2n u sum |a_k t^k|``; Clenshaw's recurrence by about
    ``n^2 u sum |c_k|`` (|T_k| <= max(1, |t|)^k); an input error ``m_i`` moves the value by
    at most ``|dp/dt_i| |scale_i| m_i`` with ``|dT_k/dt| <= k^2`` on [-1, 1] (Markov)."""
    reach = np.abs(m * layer.scale) + np.abs(layer.center * layer.scale)  # |t| at most this
    e = layer.exponents.astype(int)
    n = max(layer.degree, 1)
    if layer.basis == "monomial":
        powers = np.stack([reach ** k for k in range(layer.degree + 1)], axis=-1)  # (..., inputs, degree)
        rounding = 2 * n
    else:
        powers = np.stack([np.maximum(1.0, reach) ** k for k in range(layer.degree + 1)], axis=-1)
        rounding = (n + 1) ** 2
    size = np.ones(m.shape[:-1] + (len(e),))
    for i in range(layer.n_in):
        size = size * powers[..., i, :][..., e[:, i]]
    coefficients = np.abs(layer.coefficients.T)
    slope = np.zeros(m.shape[:-1] + (layer.units,))
    for i in range(layer.n_in):
        factor = e[:, i] if layer.basis == "monomial" else e[:, i] ** 2  # d/dt_i: k t^(k-1), or Markov
        scaled = size * factor / np.maximum(reach[..., i : i + 1], 1e-300) if layer.basis == "monomial" else size * factor
        slope = slope + (scaled @ coefficients) * np.abs(layer.scale[i]) * m[..., i : i + 1]
    return rounding * (size @ coefficients) + slope


#: layer kind -> its pre-activation of h, and the same sum over magnitudes (|terms|).
_PREACTIVATION = {Dense: _dense, Affine: lambda layer, h: h * layer.scale + layer.shift, Activate: lambda layer, h: h,
                  Polynomial: _polynomial}
_MAGNITUDE = {Dense: _dense_magnitude, Affine: lambda layer, m: m * np.abs(layer.scale) + np.abs(layer.shift),
              Activate: lambda layer, m: m, Polynomial: _polynomial_magnitude}


def _vector_sensitivity(name: str, z: np.ndarray, y: np.ndarray, m: np.ndarray, epsilon: float = 0.0) -> np.ndarray:
    """First-order bound on |dy| for errors of size ``m`` in ``z`` (vector activations)."""
    n = z.shape[-1]
    total = m.sum(axis=-1, keepdims=True)
    if name == "softmax":
        return y * (m + (y * m).sum(axis=-1, keepdims=True))
    if name == "log_softmax":
        return m + (np.exp(y) * m).sum(axis=-1, keepdims=True)
    if name == "sparsemax":  # a projection: 1-Lipschitz in the 2-norm
        return np.broadcast_to(np.sqrt((m**2).sum(axis=-1, keepdims=True)), y.shape)
    if name == "glu":
        a, b = np.split(z, 2, axis=-1)
        ma, mb = np.split(m, 2, axis=-1)
        s = _sigmoid(b)
        return s * ma + np.abs(a) * s * (1 - s) * mb
    # layer_norm, rms_norm, unit_norm: y = c / r with c = z (minus its mean) and r a norm of c;
    # dy = dc / r - y (c . dc) / (k r^2), k = n for the mean-based norms and 1 for unit_norm.
    centred = z - z.mean(axis=-1, keepdims=True) if name in ("layer_norm", "variance_scale") else z
    dc = m + total / n if name in ("layer_norm", "variance_scale") else m
    if name == "unit_norm":
        r, k = np.maximum(np.sqrt((z**2).sum(axis=-1, keepdims=True)), epsilon), 1
    else:
        r, k = np.sqrt((centred**2).mean(axis=-1, keepdims=True) + epsilon), n
    numerator = m if name == "variance_scale" else dc
    return numerator / r + np.abs(y) * (np.abs(centred) * dc).sum(axis=-1, keepdims=True) / (k * r**2)


#: Activations whose formula cancels internally: the size of the values it rounds,
#: added to the magnitude (Keras computes them the same way, with the same rounding).
INTERNAL_MAGNITUDE: dict[str, Callable[..., np.ndarray]] = {
    "squareplus": lambda z, b: (np.abs(z) + np.sqrt(z * z + b)) / 2.0,
    "tanh_shrink": lambda z: np.abs(z) + np.abs(np.tanh(z)),
    "soft_shrink": lambda z, threshold: np.abs(z) + threshold,
    "gelu": lambda z, approximate: np.abs(z),
    "log_sigmoid": lambda z: np.abs(z),
}


def _elementwise_sensitivity(activation: Activation, z: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Secant slope of the activation over z ± d, d a little wider than rounding can
    move z, times m: a first-order bound that also covers kinks and jumps."""
    d = np.maximum(m * 2.0**-16, 1e-300)
    y = activate(activation, z)
    with np.errstate(over="ignore", invalid="ignore"):
        up = np.abs(activate(activation, z + d) - y)
        down = np.abs(y - activate(activation, z - d))
    slope = np.nan_to_num(np.maximum(up, down) / d, nan=0.0, posinf=np.finfo(np.float64).max)
    internal = INTERNAL_MAGNITUDE.get(activation.name)
    return slope * m + (internal(z, **dict(activation.params)) if internal else 0.0)


@_IEEE
def evaluate_magnitude(net: Network, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Output and its *magnitude*: a first-order running bound on how large the
    rounding errors of any evaluation order can be, in units of the working precision.

    ``m`` starts as ``|x|``; a Dense layer gives ``|W|^T m + |b|`` (the sum of the
    absolute values of every term, which bounds rounding in the dot product and
    carries earlier errors through the weights); an activation scales it by its
    derivative and adds its own output ``|y|``.  An error of ``k`` ULPs *of m* is
    what ``k`` roundings of relative size eps can cause, however much the sum cancels,
    which is why :mod:`mlpcodegen.harness.verify` measures ULPs against it.
    """
    h = np.asarray(x, dtype=np.float64)
    evaluate(net, h[:1] if h.ndim == 2 else h)  # validates the shape
    m = np.abs(h)
    for layer in net.layers:
        h, m = _PREACTIVATION[type(layer)](layer, h), _MAGNITUDE[type(layer)](layer, m)
        act = layer.activation
        if act.is_vector:
            z, h = h, activate(act, h)
            m = np.abs(h) + _vector_sensitivity(act.name, z, h, m, *(v for _, v in act.params))
        else:
            m = np.abs(activate(act, h)) + _elementwise_sensitivity(act, h, m)
            h = activate(act, h)
    return h, m
