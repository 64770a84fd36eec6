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
from .ir import Activate, Activation, Dense, Network


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
        h = activate(layer.activation, h)
    return h
