"""Exact rewrites of a Network.  Each pass returns a new, validated Network that
computes the same function bit for bit."""
from __future__ import annotations

from dataclasses import replace

from .ir import Activate, Dense, Layer, Network


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
