"""The reference evaluator: the IR computed in float64 NumPy, layer by layer, with
the same formulas Keras uses.  Every backend is tested against it.

>>> import numpy as np
>>> from mlpcodegen.ir import Network, Dense, Activation
>>> net = Network(1, (Dense(np.array([[2.0]]), np.array([1.0]), Activation("relu")),))
>>> evaluate(net, np.array([[-1.0], [1.0]])).tolist()
[[0.0], [3.0]]
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .errors import ValidationError
from .ir import Activation, Affine, Dense, Network


def _sigmoid(z: np.ndarray) -> np.ndarray:
    # exp of a non-positive number only: finite for every z.
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


#: activation name -> float64 NumPy implementation over the last axis.
REFERENCE_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": lambda z: z,
    "relu": lambda z: np.maximum(z, 0.0),
    "tanh": np.tanh,
    "sigmoid": _sigmoid,
    "softmax": _softmax,
}


def activate(activation: Activation, z: np.ndarray) -> np.ndarray:
    return REFERENCE_ACTIVATIONS[activation.name](z)


def evaluate(net: Network, x: np.ndarray) -> np.ndarray:
    """Output of ``net`` for one sample (1-D) or a batch (2-D, rows are samples)."""
    h = np.asarray(x, dtype=np.float64)
    if h.ndim not in (1, 2) or h.shape[-1] != net.n_inputs:
        raise ValidationError(
            f"expected input of shape ({net.n_inputs},) or (n, {net.n_inputs}), got {h.shape}"
        )
    for layer in net.layers:
        if isinstance(layer, Dense):
            h = h @ layer.kernel
            if layer.bias is not None:
                h = h + layer.bias
        elif isinstance(layer, Affine):
            h = h * layer.scale + layer.shift
        h = activate(layer.activation, h)
    return h


#: activation -> first-order propagation of a magnitude ``m`` of possible error in z
#: to the output y (the size of dy/dz times m; relu uses its Lipschitz bound 1 because
#: rounding can move z across the kink).
REFERENCE_SENSITIVITY: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "linear": lambda y, m: m,
    "relu": lambda y, m: m,
    "tanh": lambda y, m: (1.0 - y * y) * m,
    "sigmoid": lambda y, m: y * (1.0 - y) * m,
    "softmax": lambda y, m: y * (m + (y * m).sum(axis=-1, keepdims=True)),
}


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
        if isinstance(layer, Dense):
            h = h @ layer.kernel
            m = m @ np.abs(layer.kernel)
            if layer.bias is not None:
                h = h + layer.bias
                m = m + np.abs(layer.bias)
        elif isinstance(layer, Affine):
            h = h * layer.scale + layer.shift
            m = m * np.abs(layer.scale) + np.abs(layer.shift)
        h = activate(layer.activation, h)
        m = np.abs(h) + REFERENCE_SENSITIVITY[layer.activation.name](h, m)
    return h, m
