"""Keras frontend: the only module that knows Keras.

Reads a Keras 3 model into the IR from

* an in-memory ``keras.Model`` (``Sequential`` or a functional model that is one chain),
* a ``.keras`` archive (zip of ``config.json`` + ``model.weights.h5``),
* a legacy ``.h5`` file (``model_config`` attribute + ``model_weights`` group).

Files are parsed with ``zipfile``/``json``/``h5py`` only: reading a file never
imports TensorFlow, so converting a saved model takes milliseconds.

>>> net = load("generated/seed/seed.keras")          # doctest: +SKIP
>>> net.describe()                                    # doctest: +SKIP
'1-3-2-1 (tanh, tanh, linear)'
"""
from __future__ import annotations

import io
import json
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Union

import numpy as np

from ..errors import ModelFormatError, UnsupportedError, ValidationError
from ..activations import ALIASES, REGISTRY
from ..ir import ACTIVATIONS, Activate, Activation, Affine, Dense, Layer, Network
from ..passes import fold_affine, fuse_activations

PathLike = Union[str, "os.PathLike[str]"]

_ZIP_MAGIC = b"PK\x03\x04"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_MODEL_CLASSES = ("Sequential", "Functional", "Model")


@dataclass(frozen=True)
class _LayerEntry:
    """One layer of the chain as Keras serialises it, with its weight arrays."""

    class_name: str
    name: str
    config: dict
    weights: tuple[np.ndarray, ...]


# --------------------------------------------------------------------------- public


def load(source: Any, fold: bool = True) -> Network:
    """Read a Keras model (object, ``.keras`` path or ``.h5`` path) into a Network.

    ``fold=False`` keeps normalisation and rescaling layers as separate affine steps,
    as Keras computes them (verification measures rounding on that form)."""
    if isinstance(source, (str, os.PathLike)):
        return load_file(source, fold)
    if hasattr(source, "get_config") and hasattr(source, "layers"):
        return load_model_object(source, fold)
    raise ModelFormatError(
        f"cannot read a model from a {type(source).__name__}; pass a keras.Model or the "
        "path of a .keras / .h5 file"
    )


def load_file(path: PathLike, fold: bool = True) -> Network:
    """Read a ``.keras`` or legacy ``.h5`` file without importing TensorFlow."""
    path = Path(path)
    magic = _read_magic(path)
    if magic.startswith(_ZIP_MAGIC):
        config, weights = _read_keras_archive(path)
    elif magic.startswith(_HDF5_MAGIC):
        config, weights = _read_legacy_h5(path)
    else:
        raise ModelFormatError(
            f"{path} is neither a .keras archive nor an HDF5 (.h5) file "
            "(save the model with model.save('model.keras'))"
        )
    return _build_network(config, weights, source=str(path), fold=fold)


def load_model_object(model: Any, fold: bool = True) -> Network:
    """Read an in-memory ``keras.Model``."""
    try:
        config = {"class_name": type(model).__name__, "config": model.get_config()}
    except NotImplementedError:
        raise UnsupportedError(
            f"{type(model).__name__} has no get_config(): subclassed models cannot be "
            "read; build the network as a Sequential or functional model"
        ) from None
    weights = {layer.name: tuple(np.asarray(w) for w in layer.get_weights()) for layer in model.layers}
    return _build_network(config, weights, source=f"in-memory model {model.name!r}", fold=fold)


def load_keras_model(path: PathLike) -> Any:
    """Load the model with Keras itself (imports TensorFlow), e.g. to call ``predict``."""
    import keras  # the one deliberate Keras import: needed only to run the model

    path = Path(path)
    _read_magic(path)
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:  # Keras raises many types for a bad file
        raise ModelFormatError(f"Keras could not load {path}: {exc}") from None


def litert_runner(model: Any, threads: int = 1) -> Any:
    """``f(x) -> y`` through the LiteRT (TFLite) interpreter with XNNPACK on ``threads``
    threads, for a Keras model converted by TensorFlow's converter: a peer for the
    benchmark.  Uses ``ai_edge_litert`` when installed, else ``tf.lite``."""
    import contextlib
    import io

    import tensorflow as tf

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        flatbuffer = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # pragma: no cover - depends on what is installed
        Interpreter = tf.lite.Interpreter
    interpreter = Interpreter(model_content=flatbuffer, num_threads=threads)
    source = interpreter.get_input_details()[0]["index"]
    target = interpreter.get_output_details()[0]["index"]
    shape: list = [None]

    def call(x: np.ndarray) -> np.ndarray:
        if shape[0] != x.shape:  # resizing re-plans the graph: only when the shape changes
            interpreter.resize_tensor_input(source, list(x.shape))
            interpreter.allocate_tensors()
            shape[0] = x.shape
        interpreter.set_tensor(source, x)
        interpreter.invoke()
        return interpreter.get_tensor(target)

    return call


# ------------------------------------------------------------------ file formats


def _read_magic(path: Path) -> bytes:
    if path.is_dir():
        raise ModelFormatError(
            f"{path} is a directory (a TensorFlow SavedModel?); save the model as a "
            ".keras file with model.save('model.keras')"
        )
    try:
        with open(path, "rb") as handle:
            return handle.read(8)
    except FileNotFoundError:
        raise ModelFormatError(f"model file not found: {path}") from None
    except OSError as exc:
        raise ModelFormatError(f"cannot read {path}: {exc.strerror}") from None


def _read_keras_archive(path: Path) -> tuple[dict, dict[str, tuple[np.ndarray, ...]]]:
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
            weights_blob = archive.read("model.weights.h5")
    except KeyError as exc:
        raise ModelFormatError(f"{path} is not a complete .keras archive: missing {exc}") from None
    except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile, OSError) as exc:
        raise ModelFormatError(f"{path} is a truncated or corrupt .keras archive: {exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFormatError(f"{path}: config.json is not valid JSON: {exc}") from None
    weights = {}
    with _open_h5(io.BytesIO(weights_blob), f"{path}:model.weights.h5") as h5:
        for name, group_name in _keras3_weight_paths(config).items():
            group = h5.get(f"layers/{group_name}/vars")
            if group is not None:
                weights[name] = tuple(_read_dataset(group, str(i), path) for i in range(len(group)))
    return config, weights


def _read_legacy_h5(path: Path) -> tuple[dict, dict[str, tuple[np.ndarray, ...]]]:
    with _open_h5(path, str(path)) as h5:
        raw = h5.attrs.get("model_config")
        if raw is None:
            raise ModelFormatError(
                f"{path} holds weights only (no model_config); save the whole model with "
                "model.save('model.keras')"
            )
        try:
            config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelFormatError(f"{path}: model_config is not valid JSON: {exc}") from None
        root = h5["model_weights"] if "model_weights" in h5 else h5
        weights = {}
        for entry in _model_layers(config):
            group = root.get(_layer_name(entry))
            if group is not None:
                names = [_text(n) for n in group.attrs.get("weight_names", [])]
                weights[_layer_name(entry)] = tuple(_read_dataset(group, n, path) for n in names)
    return config, weights


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _open_h5(source: Any, label: str) -> Any:
    import h5py  # light (no TensorFlow); imported here so `import mlpcodegen` stays fast

    try:
        return h5py.File(source, "r")
    except OSError as exc:
        raise ModelFormatError(f"{label} is a truncated or corrupt HDF5 file: {exc}") from None


class _Weights(np.ndarray):
    """A weight array decoded from a type NumPy lacks, remembering that type."""

    source_dtype = "float32"


def _read_dataset(group: Any, key: str, path: Path) -> np.ndarray:
    try:
        dataset = group[key]
        values = np.asarray(dataset[()])
        if dataset.attrs.get("dtype") == "bfloat16":  # stored as opaque 2-byte values
            bits = np.frombuffer(values.tobytes(), dtype="<u2").astype(np.uint32) << 16
            decoded = bits.view(np.float32).reshape(values.shape).view(_Weights)
            decoded.source_dtype = "bfloat16"
            return decoded
        return values
    except (KeyError, OSError) as exc:
        raise ModelFormatError(
            f"{path}: cannot read weight {group.name}/{key}: {exc} (truncated file?)"
        ) from None


def _snake_case(class_name: str) -> str:
    """Keras' own ``naming.to_snake_case``, which names the weight groups of a .keras file."""
    name = re.sub(r"\W+", "", class_name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _keras3_weight_paths(config: dict) -> dict[str, str]:
    """Layer name -> group under ``layers/`` in model.weights.h5.

    Keras 3 names each layer's group after its *class* (``dense``, ``dense_1``, ...),
    counting in the order of ``model.layers``, which leaves out the InputLayer of a
    Sequential model but keeps it in a functional one.
    """
    model_class = config.get("class_name")
    entries = _model_layers(config)
    if model_class == "Sequential":
        entries = [e for e in entries if e.get("class_name") != "InputLayer"]
    used: dict[str, int] = {}
    paths = {}
    for entry in entries:
        base = _snake_case(str(entry.get("class_name", "")))
        used[base] = used.get(base, -1) + 1
        paths[_layer_name(entry)] = base if used[base] == 0 else f"{base}_{used[base]}"
    return paths


# ------------------------------------------------------------------ the graph


def _model_layers(config: dict) -> list[dict]:
    layers = config.get("config", {}).get("layers") if isinstance(config, dict) else None
    if not isinstance(layers, list):
        raise ModelFormatError("the model config has no list of layers: not a Keras model")
    return layers


def _layer_name(entry: dict) -> str:
    return str(entry.get("name") or entry.get("config", {}).get("name", ""))


def _chain(config: dict) -> list[dict]:
    """The layers in order of computation; a clear error unless they form one chain."""
    model_class = config.get("class_name")
    if model_class not in _MODEL_CLASSES:
        raise UnsupportedError(
            f"top-level object is a {model_class!r}; expected one of {', '.join(_MODEL_CLASSES)}"
        )
    layers = _model_layers(config)
    if model_class == "Sequential":
        return layers
    return _functional_chain(config["config"], layers)


def _inbound_names(entry: dict) -> list[list[str]]:
    """For each call of the layer, the names of the layers whose outputs it takes."""
    calls = []
    for node in entry.get("inbound_nodes", []):
        if isinstance(node, dict):  # Keras 3: {"args": [...], "kwargs": {...}}
            tensors = _find_tensors([node.get("args", []), node.get("kwargs", {})])
        else:  # Keras 2: [[name, node_index, tensor_index, kwargs], ...]
            tensors = [item[0] for item in node]
        calls.append(tensors)
    return calls


def _find_tensors(value: Any) -> list[str]:
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            return [value["config"]["keras_history"][0]]
        return [n for v in value.values() for n in _find_tensors(v)]
    if isinstance(value, (list, tuple)):
        return [n for v in value for n in _find_tensors(v)]
    return []


def _functional_chain(model_config: dict, layers: list[dict]) -> list[dict]:
    by_name = {_layer_name(entry): entry for entry in layers}
    inputs = _endpoint_names(model_config.get("input_layers"))
    outputs = _endpoint_names(model_config.get("output_layers"))
    if len(inputs) != 1 or len(outputs) != 1:
        raise UnsupportedError(
            f"the model has {len(inputs)} inputs and {len(outputs)} outputs; only a single "
            "chain from one input to one output can be converted"
        )
    consumers: dict[str, list[str]] = {name: [] for name in by_name}
    for name, entry in by_name.items():
        calls = _inbound_names(entry)
        if len(calls) > 1:
            raise UnsupportedError(f"layer {name!r} is shared (called {len(calls)} times); "
                                   "only a single chain can be converted")
        sources = calls[0] if calls else []
        if len(sources) > 1:
            raise UnsupportedError(
                f"layer {name!r} ({entry.get('class_name')}) takes {len(sources)} inputs "
                f"({', '.join(sources)}): the graph branches; only a single chain can be converted"
            )
        for source in sources:
            consumers.setdefault(source, []).append(name)
    chain, current = [], inputs[0]
    while True:
        chain.append(by_name[current])
        if current == outputs[0]:
            break
        following = consumers.get(current, [])
        if len(following) != 1:
            raise UnsupportedError(
                f"the output of layer {current!r} feeds {len(following)} layers "
                f"({', '.join(following) or 'none'}): the graph branches; only a single "
                "chain can be converted"
            )
        current = following[0]
    if len(chain) != len(by_name):
        unused = sorted(set(by_name) - {_layer_name(e) for e in chain})
        raise UnsupportedError(f"layers {unused} are not on the input-to-output chain")
    return chain


def _endpoint_names(value: Any) -> list[str]:
    """``input_layers`` is ``[name, 0, 0]`` for one input or a list of such triples."""
    if not value:
        return []
    if isinstance(value[0], str):
        return [value[0]]
    return [item[0] for item in value]


# ------------------------------------------------------------------ layers -> IR


def _activation(value: Any, layer: str) -> Activation:
    name = value
    if isinstance(value, dict):  # {"class_name": "function", "config": "relu", ...}
        name = value.get("config") if isinstance(value.get("config"), str) else value.get("class_name")
    if name is None:
        name = "linear"
    name = ALIASES.get(name, name)
    if name == "sparsemax":
        raise UnsupportedError(
            f"layer {layer!r} uses sparsemax, which Keras' TensorFlow backend does not compute as defined: "
            "its threshold sums the cumulative sums of the whole support instead of taking the last one, so "
            "the outputs need not sum to 1 (keras/src/backend/tensorflow/nn.py). mlpcodegen refuses rather than "
            "reproduce or silently correct it; the IR's 'sparsemax' activation is the true projection"
        )
    if name not in ACTIVATIONS or REGISTRY[name].per_unit or name in _LAYER_ONLY_ACTIVATIONS:
        raise UnsupportedError(
            f"layer {layer!r} uses activation {name!r}, which is not supported; supported "
            f"activations: {', '.join(sorted((set(ACTIVATIONS) - _LAYER_ONLY_ACTIVATIONS - {'prelu'}) | set(ALIASES)))}"
        )
    return Activation(str(name))


#: Vector steps that come from normalisation layers, never from an activation= string.
_LAYER_ONLY_ACTIVATIONS = {"layer_norm", "rms_norm", "unit_norm", "variance_scale"}


def _input_width(config: dict, layer: str) -> int | None:
    shape = config.get("batch_shape") or config.get("batch_input_shape")
    if shape is None:
        return None
    if len(shape) != 2 or not isinstance(shape[1], int):
        raise UnsupportedError(
            f"input layer {layer!r} has shape {shape}; only flat feature vectors "
            "(batch, features) can be converted"
        )
    return shape[1]


def _read_dense(entry: _LayerEntry) -> list[Layer]:
    """activation(x @ kernel + bias), with or without bias."""
    use_bias = entry.config.get("use_bias", True)
    expected = 2 if use_bias else 1
    if len(entry.weights) != expected:
        raise ModelFormatError(
            f"Dense layer {entry.name!r} should have {expected} weight array(s) "
            f"(kernel{', bias' if use_bias else ''}), found {len(entry.weights)}"
        )
    kernel = entry.weights[0]
    units = entry.config.get("units")
    if kernel.ndim != 2 or (units is not None and kernel.shape[1] != units):
        raise ModelFormatError(
            f"Dense layer {entry.name!r}: kernel shape {kernel.shape} does not match {units} units"
        )
    return [
        Dense(
            kernel=kernel,
            bias=entry.weights[1] if use_bias else None,
            activation=_activation(entry.config.get("activation"), entry.name),
            name=entry.name,
        )
    ]


def _read_activation(entry: _LayerEntry, width: int) -> list[Layer]:
    """The activation (fused into the Dense layer before it when that one is linear)."""
    return [Activate(width, _activation(entry.config.get("activation"), entry.name), entry.name)]


def _weights(entry: _LayerEntry, names: list[str]) -> dict[str, np.ndarray]:
    """The layer's weight arrays by name, flattened; a clear error when any is missing."""
    if len(entry.weights) != len(names):
        raise ModelFormatError(
            f"{entry.class_name} layer {entry.name!r} should have {len(names)} weight array(s) "
            f"({', '.join(names) or 'none'}), found {len(entry.weights)}"
        )
    return {name: np.ravel(np.asarray(w, dtype=np.float64)) for name, w in zip(names, entry.weights)}


def _per_feature(values: Any, width: int, what: str) -> np.ndarray:
    array = np.ravel(np.asarray(values, dtype=np.float64))
    if array.size not in (1, width):
        raise ModelFormatError(f"{what} has {array.size} values for {width} features")
    return np.broadcast_to(array, (width,)).copy()


def _check_feature_axis(entry: _LayerEntry) -> None:
    axis = entry.config.get("axis", -1)
    axes = axis if isinstance(axis, (list, tuple)) else [axis]
    if list(axes) not in ([-1], [1]):
        raise UnsupportedError(
            f"{entry.class_name} layer {entry.name!r} normalises over axis {axis}; only the feature "
            "axis (-1) of flat inputs can be converted"
        )


def _read_relu(entry: _LayerEntry, width: int) -> list[Layer]:
    """relu with the layer's max_value, negative_slope and threshold."""
    c = entry.config
    params = {"max_value": c.get("max_value"), "negative_slope": c.get("negative_slope", 0.0) or 0.0,
              "threshold": c.get("threshold", 0.0) or 0.0}
    return [Activate(width, Activation("relu", tuple(params.items())), entry.name)]


def _read_leaky_relu(entry: _LayerEntry, width: int) -> list[Layer]:
    """leaky_relu with the layer's negative_slope."""
    slope = entry.config.get("negative_slope", entry.config.get("alpha", 0.3))
    return [Activate(width, Activation("leaky_relu", (("negative_slope", slope),)), entry.name)]


def _read_prelu(entry: _LayerEntry, width: int) -> list[Layer]:
    """prelu: relu(x) - alpha * relu(-x), alpha per unit or shared."""
    alpha = _per_feature(_weights(entry, ["alpha"])["alpha"], width, f"PReLU {entry.name!r} alpha")
    return [Activate(width, Activation("prelu", (("alpha", tuple(alpha)),)), entry.name)]


def _read_elu(entry: _LayerEntry, width: int) -> list[Layer]:
    """elu with the layer's alpha."""
    return [Activate(width, Activation("elu", (("alpha", entry.config.get("alpha", 1.0)),)), entry.name)]


def _read_softmax(entry: _LayerEntry, width: int) -> list[Layer]:
    """softmax over the feature axis."""
    _check_feature_axis(entry)
    return [Activate(width, Activation("softmax"), entry.name)]


def _read_batch_norm(entry: _LayerEntry, width: int) -> list[Layer]:
    """Inference mode: (x - moving_mean) / sqrt(moving_variance + eps) * gamma + beta, folded."""
    _check_feature_axis(entry)
    c = entry.config
    names = (["gamma"] if c.get("scale", True) else []) + (["beta"] if c.get("center", True) else [])
    w = _weights(entry, names + ["moving_mean", "moving_variance"])
    gamma = w.get("gamma", np.ones(width))
    scale = gamma / np.sqrt(w["moving_variance"] + float(c.get("epsilon", 1e-3)))
    return [Affine(scale, w.get("beta", np.zeros(width)) - w["moving_mean"] * scale, entry.name)]


def _read_normalization(entry: _LayerEntry, width: int) -> list[Layer]:
    """(x - mean) / max(sqrt(variance), 1e-7), or its inverse (invert=True), folded."""
    c = entry.config
    _check_feature_axis(entry)
    if c.get("mean") is not None:
        mean, variance = c["mean"], c["variance"]
    else:
        w = _weights(entry, ["mean", "variance", "count"][: max(len(entry.weights), 2)])
        mean, variance = w["mean"], w["variance"]
    mean = _per_feature(mean, width, f"Normalization {entry.name!r} mean")
    spread = np.maximum(np.sqrt(_per_feature(variance, width, f"Normalization {entry.name!r} variance")), 1e-7)
    if c.get("invert", False):
        return [Affine(spread, mean, entry.name)]
    return [Affine(1.0 / spread, -mean / spread, entry.name)]


def _read_rescaling(entry: _LayerEntry, width: int) -> list[Layer]:
    """x * scale + offset, folded into a neighbouring Dense layer."""
    c = entry.config
    scale = _per_feature(_config_number(c.get("scale", 1.0)), width, f"Rescaling {entry.name!r} scale")
    offset = _per_feature(_config_number(c.get("offset", 0.0)), width, f"Rescaling {entry.name!r} offset")
    return [Affine(scale, offset, entry.name)]


def _config_number(value: Any) -> Any:
    """Keras serialises array-valued config entries as {"class_name": "__numpy__", ...}."""
    if isinstance(value, dict):
        return value.get("config", {}).get("value", value.get("value"))
    return value


def _read_layer_norm(entry: _LayerEntry, width: int) -> list[Layer]:
    """(x - mean) / sqrt(var + eps) * gamma + beta; rms_scaling=True: x / sqrt(var + eps) * gamma."""
    _check_feature_axis(entry)
    c = entry.config
    rms = bool(c.get("rms_scaling", False))
    names = (["gamma"] if c.get("scale", True) else []) + (["beta"] if c.get("center", True) and not rms else [])
    w = _weights(entry, names)
    # rms_scaling=True divides x by sqrt(variance + eps) (Keras warns it is not RMS).
    step = Activation("variance_scale" if rms else "layer_norm", (("epsilon", c.get("epsilon", 1e-3)),))
    affine = Affine(w.get("gamma", np.ones(width)), w.get("beta", np.zeros(width)), f"{entry.name} (scale)")
    return [Activate(width, step, entry.name), affine]


def _read_rms_norm(entry: _LayerEntry, width: int) -> list[Layer]:
    """x / sqrt(mean(x^2) + eps) * scale."""
    _check_feature_axis(entry)
    w = _weights(entry, ["scale"])
    step = Activation("rms_norm", (("epsilon", entry.config.get("epsilon", 1e-6) or 1e-6),))
    return [Activate(width, step, entry.name), Affine(w["scale"], np.zeros(width), f"{entry.name} (scale)")]


def _read_unit_norm(entry: _LayerEntry, width: int) -> list[Layer]:
    """x / max(norm(x), 1e-12), the Euclidean norm."""
    _check_feature_axis(entry)
    return [Activate(width, Activation("unit_norm", (("epsilon", 1e-12),)), entry.name)]


def _read_reshape(entry: _LayerEntry, width: int) -> list[Layer]:
    """Identity, when the input is already the flat vector asked for."""
    target = entry.config.get("target_shape")
    if entry.class_name == "Reshape" and list(target or []) not in ([width], [-1]):
        raise UnsupportedError(
            f"Reshape layer {entry.name!r} reshapes to {target}; only a flat vector of {width} can be converted"
        )
    return []


def _identity(entry: _LayerEntry, width: int) -> list[Layer]:
    """Identity at inference."""
    return []


#: Keras class name -> reader.  Readers get the entry and the current width and
#: return IR layers; folding and fusing happen afterwards, in mlpcodegen.passes.
_READERS: dict[str, Callable[[_LayerEntry, int], list[Layer]]] = {
    "InputLayer": _identity,
    "Dense": lambda entry, width: _read_dense(entry),  # (docstring: _read_dense)
    "Activation": _read_activation,
    "ReLU": _read_relu,
    "LeakyReLU": _read_leaky_relu,
    "PReLU": _read_prelu,
    "ELU": _read_elu,
    "Softmax": _read_softmax,
    "BatchNormalization": _read_batch_norm,
    "Normalization": _read_normalization,
    "Rescaling": _read_rescaling,
    "LayerNormalization": _read_layer_norm,
    "RMSNormalization": _read_rms_norm,
    "UnitNormalization": _read_unit_norm,
    # identity at inference
    "Dropout": _identity,
    "AlphaDropout": _identity,
    "GaussianNoise": _identity,
    "GaussianDropout": _identity,
    "SpatialDropout1D": _identity,
    "ActivityRegularization": _identity,
    "Flatten": _read_reshape,
    "Reshape": _read_reshape,
}

SUPPORTED_LAYERS = tuple(_READERS)


def _build_network(config: dict, weights: dict[str, tuple[np.ndarray, ...]], source: str,
                   fold: bool = True) -> Network:
    chain = _chain(config)
    n_inputs: int | None = None
    layers: list[Layer] = []
    weight_dtypes: set[str] = set()
    width = 0
    for raw in chain:
        class_name = str(raw.get("class_name"))
        name = _layer_name(raw)
        if class_name not in _READERS:
            raise _unsupported_layer(class_name, name)
        layer_config = raw.get("config", {})
        if class_name == "InputLayer":
            n_inputs = _input_width(layer_config, name)
            width = n_inputs or 0
        entry = _LayerEntry(class_name, name, layer_config, weights.get(name, ()))
        weight_dtypes.update(getattr(w, "source_dtype", np.dtype(w.dtype).name) for w in entry.weights)
        if width == 0 and class_name == "Dense" and entry.weights:
            n_inputs = width = int(entry.weights[0].shape[0])
        try:
            new = _READERS[class_name](entry, width)
        except ValidationError as exc:
            raise ValidationError(f"{source}: {exc}") from None
        layers.extend(new)
        width = new[-1].n_out if new else width
    if n_inputs is None:
        raise ModelFormatError(f"{source}: cannot tell the input width (no InputLayer, no Dense)")
    try:
        net = Network(n_inputs, tuple(layers), _weight_dtype(weight_dtypes), _model_name(config))
    except ValidationError as exc:
        raise ValidationError(f"{source}: {exc}") from None
    return fold_affine(fuse_activations(net)) if fold else fuse_activations(net)


def _unsupported_layer(class_name: str, name: str) -> UnsupportedError:
    if class_name in _MODEL_CLASSES:
        return UnsupportedError(
            f"layer {name!r} is a nested {class_name} model; flatten it into one model first"
        )
    return UnsupportedError(
        f"layer {name!r} of class {class_name} is not supported; supported layers: "
        f"{', '.join(SUPPORTED_LAYERS)}"
    )


def _weight_dtype(names: set[str]) -> str:
    for candidate in ("float64", "float32", "bfloat16", "float16"):
        if candidate in names:
            return candidate
    return "float32"


def _model_name(config: dict) -> str:
    name = str(config.get("config", {}).get("name") or "mlp")
    return re.sub(r"\W", "_", name)
