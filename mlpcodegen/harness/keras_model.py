"""A Keras model to compare with, loaded by Keras itself (imports TensorFlow): the peer of
``verify``, ``bench`` and the demo.  The frontend only reads (mlpcodegen.frontends.keras
vets the file first, :func:`~mlpcodegen.frontends.keras.vet_for_keras`); building a Keras
model from the IR, where Keras cannot load the file, happens here."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..core.errors import MlpCodegenError, ModelFormatError, UnsupportedError
from ..core.ir import Activate, Activation, Affine, Dense, Network
from ..core.limits import ReadLimits
from ..frontends.keras import vet_for_keras


def load_keras_model(path: Any, weights: Any = None, *, limits: ReadLimits | None = None) -> Any:
    """Load the model with Keras itself (imports TensorFlow), e.g. to call ``predict``.

    ``limits``: what vetting the file may cost (``--max-size``).
    ``weights``: the ``model.save_weights`` file of an architecture JSON ``path``
    (``keras.models.model_from_json`` + ``load_weights``).  Both files are vetted by
    the sandboxed reader first.  Where Keras 3 cannot load a format mlpcodegen reads (a
    tf.keras 2 JSON with ``batch_input_shape`` on a Dense layer, a Keras <= 2.2
    list-config ``.h5``, ...), or would give a name another meaning than the Keras that
    saved the file (Keras 2's hard_sigmoid), the model returned is a
    ``keras.Sequential`` rebuilt from the network mlpcodegen read (Dense layers and
    activations, weights by ``set_weights``): then ``model.predict`` checks the
    arithmetic of the converted code, not the reading of the file, which only the
    reference built from the same reading checks."""
    import keras  # the one deliberate Keras import: needed only to run the model

    vetted = vet_for_keras(path, weights, limits=limits)
    if vetted.keras2_meaning:
        return rebuilt_model(keras, vetted.network)
    try:
        return _keras_load(keras, path, weights, vetted.json_text)
    except Exception as exc:  # Keras raises many types for a file it cannot load
        if vetted.network is None:
            raise ModelFormatError(f"Keras could not load {path}: {exc}") from None
        try:
            return rebuilt_model(keras, vetted.network)
        except MlpCodegenError:
            raise ModelFormatError(f"Keras could not load {path}: {exc}") from None


def _keras_load(keras: Any, path: Any, weights: Any, json_text: str | None) -> Any:
    if weights is None:
        return keras.models.load_model(path, compile=False)
    model = keras.models.model_from_json(json_text)
    model.load_weights(weights)
    return model


def rebuilt_model(keras: Any, net: Network) -> Any:
    """A ``keras.Sequential`` computing ``net`` (Dense layers, activations by name,
    an affine step as a Dense layer with a diagonal kernel)."""
    layers = [keras.Input((net.n_inputs,))]
    weights = []
    for layer in net.layers:
        kind, arrays = _KERAS_REBUILD[type(layer)](keras, layer)
        layers.append(kind)
        weights.append(arrays)
    model = keras.Sequential(layers, name=net.name)
    for layer, arrays in zip(model.layers, weights):
        layer.set_weights(arrays)
    return model


def _keras_activation(activation: Activation) -> str:
    if activation != Activation(activation.name):  # Keras' string form means the default parameters
        raise UnsupportedError(f"activation {activation.name} with parameters has no Keras name to rebuild")
    return activation.name


#: IR layer type -> (the Keras layer, its weights).
_KERAS_REBUILD: dict[type, Callable[[Any, Any], tuple[Any, list]]] = {
    Dense: lambda keras, d: (keras.layers.Dense(d.n_out, activation=_keras_activation(d.activation),
                                                use_bias=d.bias is not None),
                             [d.kernel] + ([d.bias] if d.bias is not None else [])),
    Activate: lambda keras, a: (keras.layers.Activation(_keras_activation(a.activation)), []),
    Affine: lambda keras, a: (keras.layers.Dense(a.n_out, activation=_keras_activation(a.activation)),
                              [np.diag(a.scale), a.shift]),
}
