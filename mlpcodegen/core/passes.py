"""Exact rewrites of a Network.  Each pass returns a new, validated Network that
computes the same function bit for bit."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from .ir import Activate, Affine, Dense, Layer, Network


def fuse_activations(net: Network) -> Network:
    """Merge an ``Activate`` into the preceding ``Dense`` when that one is linear.

    ``act(linear(z)) == act(z)`` exactly, so a Keras ``Dense`` + ``Activation`` pair
    becomes one layer and every backend emits one expression per neuron.
    """
    layers: list[Layer] = []
    for layer in net.layers:
        previous = layers[-1] if layers else None
        if (
            isinstance(layer, Activate)
            and isinstance(previous, Dense)
            and previous.activation.is_identity
        ):
            layers[-1] = replace(previous, activation=layer.activation)
        elif isinstance(layer, Activate) and layer.activation.is_identity:
            continue
        else:
            layers.append(layer)
    return replace(net, layers=tuple(layers))


def fold_affine(net: Network) -> Network:
    """Fold each ``Affine`` step into a neighbouring Dense layer where no non-linearity
    separates them: into the next Dense (``W' = diag(s) W``, ``b' = b + t W``) or else
    into a previous linear Dense (``W' = W diag(s)``, ``b' = b s + t``).  The result is
    the same function; weights are recomputed in float64.  Steps that cannot be folded
    stay as ``Affine`` layers.
    """
    layers = list(net.layers)
    changed = True
    while changed:
        changed = False
        for i, layer in enumerate(layers):
            if not isinstance(layer, Affine):
                continue
            following = layers[i + 1] if i + 1 < len(layers) else None
            previous = layers[i - 1] if i else None
            if isinstance(following, Dense):
                layers[i : i + 2] = [_fold_into_next(layer, following)]
            elif isinstance(previous, Dense) and previous.activation.is_identity:
                layers[i - 1 : i + 1] = [_fold_into_previous(previous, layer)]
            else:
                continue
            changed = True
            break
    return replace(net, layers=tuple(layers))


def _fold_into_next(step: Affine, dense: Dense) -> Dense:
    kernel = step.scale[:, None] * dense.kernel
    bias = step.shift @ dense.kernel + (dense.bias if dense.bias is not None else 0.0)
    return replace(dense, kernel=kernel, bias=bias)


def _fold_into_previous(dense: Dense, step: Affine) -> Dense:
    kernel = dense.kernel * step.scale[None, :]
    bias = (dense.bias * step.scale if dense.bias is not None else 0.0) + step.shift
    return replace(dense, kernel=kernel, bias=np.broadcast_to(bias, (dense.n_out,)))
