"""Keras frontend: the only module that knows Keras.

Reads a Keras 3 model into the IR from

* an in-memory ``keras.Model`` (``Sequential`` or a functional model that is one chain),
* a ``.keras`` archive (zip of ``config.json`` + ``model.weights.h5``) of Keras 3 or
  tf.keras 2.13-2.15 (whose weights may sit under ``_layer_checkpoint_dependencies``),
* a legacy ``.h5`` file (``model_config`` attribute + ``model_weights`` group) of
  Keras 2.0 and later (Keras <= 2.2 stored a Sequential's config as a bare list),
* an architecture JSON (``model.to_json()``, Keras 2 or 3) with the weights file
  ``model.save_weights`` wrote (Keras 2's ``layer_names``/``weight_names`` HDF5 layout
  or the ``.weights.h5`` of Keras 3).

A file saved by Keras 2 keeps Keras 2's meaning where Keras 3 changed it
(``hard_sigmoid``: 0.2 x + 0.5 instead of x / 6 + 0.5).

Files are parsed with ``zipfile``/``json``/``h5py`` only: reading a file never
imports TensorFlow, so converting a saved model takes milliseconds.  A file is
untrusted input: it is parsed in a child process under time and memory limits
(``_sandbox``), only self-contained HDF5 data is read (``_untrusted_h5``), declared
sizes are checked against ``ReadLimits`` before anything is read, and every config
value is type-checked where it is used, every entry not understood refused (``_config``).

>>> net = load("generated/seed/seed.keras")          # doctest: +SKIP
>>> net.describe()                                    # doctest: +SKIP
'1-3-2-1 (tanh, tanh, linear)'
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Union

import numpy as np

from ..core.errors import MlpCodegenError, ModelFormatError, UnsupportedError
from ..core.limits import DEFAULT_LIMITS, LimitExceeded, ReadLimits  # noqa: F401 - LimitExceeded: re-exported
from . import _config, _sandbox, _untrusted_h5
from ._preflight import preflight
from ..core.activations import ALIASES, REGISTRY
from ..core.ir import ACTIVATIONS, Activate, Activation, Affine, Dense, Layer, Network
from ..core.passes import fold_affine, fuse_activations
from ..core.untrusted import quote_name

PathLike = Union[str, "os.PathLike[str]"]

_MODEL_CLASSES = ("Sequential", "Functional", "Model")


@dataclass(frozen=True)
class _LayerEntry:
    """One layer of the chain as Keras serialises it, with its weight arrays."""

    class_name: str
    name: str
    config: dict
    weights: tuple[np.ndarray, ...]


# --------------------------------------------------------------------------- public


def load(source: Any, fold: bool = True, *, limits: ReadLimits | None = None,
         weights: PathLike | None = None) -> Network:
    """Read a Keras model (object, ``.keras`` path, ``.h5`` path, or architecture
    ``.json`` path with its ``weights`` file) into a Network.

    ``fold=False`` keeps normalisation and rescaling layers as separate affine steps,
    as Keras computes them (verification measures rounding on that form).  ``limits``
    bounds what reading a file may cost (default: ``DEFAULT_LIMITS``)."""
    if isinstance(source, (str, os.PathLike)):
        return load_file(source, fold, limits=limits, weights=weights)
    if weights is not None:
        raise ModelFormatError("a separate weights file goes with a Keras architecture JSON path, not an object")
    if hasattr(source, "get_config") and hasattr(source, "layers"):
        return load_model_object(source, fold)
    raise ModelFormatError(
        f"cannot read a model from a {type(source).__name__}; pass a keras.Model or the "
        "path of a .keras / .h5 file (or of a .json with its weights file)"
    )


def load_file(path: PathLike, fold: bool = True, *, limits: ReadLimits | None = None,
              weights: PathLike | None = None) -> Network:
    """Read a ``.keras`` archive, a legacy ``.h5`` file, or an architecture JSON
    (``model.to_json()``) with the ``weights`` file ``model.save_weights`` wrote, all
    without importing TensorFlow.

    Every file is untrusted: it must be a regular file within ``limits``; it is parsed
    in a child process under a time and memory limit (see ``_sandbox``), and only
    hard-linked, self-contained HDF5 datasets of numbers are read (``_untrusted_h5``)."""
    limits = DEFAULT_LIMITS if limits is None else limits
    label = str(Path(path))
    preflight(label, limits)
    if weights is None:
        payload = _sandbox.run(_untrusted_h5.read_model_file, (label, limits), limits, label)
    else:
        weights_label = str(Path(weights))
        preflight(weights_label, limits, "weights file")
        payload = _sandbox.run(_untrusted_h5.read_json_with_weights, (label, weights_label, limits), limits, label)
    try:
        layout, config_text, groups, version = _untrusted_h5.decode(payload)
    except (ValueError, KeyError, TypeError, IndexError):
        raise ModelFormatError(f"{label}: the file reader returned a malformed answer (corrupt file?)") from None
    what = label if weights is not None else f"{label}: {'config.json' if layout == 'keras' else 'model_config'}"
    config = _parse_config(config_text, what)
    try:
        config = _normalised(config)
        version = _json_version(config) or version
        found = _weights_by_layer(config, groups, layout,
                                  "model.weights.h5" if weights is None else f"weights file {weights_label}")
        if weights is not None:
            found = _match_weights_file(config, groups, found, layout, f"weights file {weights_label}")
        return _build_network(config, found, source=label, fold=fold, keras_version=version, limits=limits)
    except RecursionError:
        raise ModelFormatError(f"{label}: the model config nests too deeply to be a Keras model") from None
    except MlpCodegenError as exc:
        if str(exc).startswith(label):
            raise
        raise type(exc)(f"{label}: {exc}") from None


def _normalised(config: Any) -> Any:
    """Keras <= 2.2 saved a Sequential's config as the bare list of its layers (and
    named the model nowhere); later versions as {"name": ..., "layers": [...]}."""
    if isinstance(config, dict) and config.get("class_name") == "Sequential" and \
            isinstance(config.get("config"), list):
        return {**config, "config": {"name": "sequential", "layers": config["config"]}}
    return config


def _json_version(config: Any) -> str | None:
    """``keras_version`` of a ``model.to_json()`` text (Keras 2 wrote it; Keras 3 does not)."""
    value = config.get("keras_version") if isinstance(config, dict) else None
    return value if isinstance(value, str) else None


def _parse_config(text: str, what: str) -> Any:
    return _untrusted_h5.parse_json(text, what)


def _weights_by_layer(config: Any, groups: dict, layout: str, what: str = "the weights file"
                      ) -> dict[str, tuple[np.ndarray, ...]]:
    """Layer name -> weight arrays: a .keras file names its groups after the layer
    classes (tf.keras 2.13's checkpoint groups are paired in order), a legacy .h5 file
    after the layers."""
    if layout == "keras" and any(name.startswith(_CHECKPOINT) and arrays for name, arrays in groups.items()):
        return _checkpoint_weights(config, groups, what)
    names = _keras3_weight_paths(config) if layout == "keras" else {
        _layer_name(entry): _layer_name(entry) for entry in _model_layers(config)}
    return {name: _group_weights(groups[group], layout) for name, group in names.items() if group in groups}


_CHECKPOINT = _untrusted_h5.CHECKPOINT_PREFIX


def _checkpoint_weights(config: Any, groups: dict, what: str) -> dict[str, tuple[np.ndarray, ...]]:
    """The weights of a tf.keras 2.13 file, stored as ``_layer_checkpoint_dependencies/<group>``.

    Its saver named each layer's group after its class, counting the entries of the
    model's ``_layer_checkpoint_dependencies``, which lists a layer with weights twice
    (``layer_with_weights-i`` and ``layer-j``) and saves it once: a Sequential of three
    Dense layers stores ``dense``, ``dense_2``, ``dense_4``.  So the groups are paired, per
    class and in the order of their numbers, with the config's layers that have weights,
    in order; the counts must agree, the shapes fit, and no weights may be left over."""
    stored = {name[len(_CHECKPOINT):]: arrays for name, arrays in groups.items()
              if name.startswith(_CHECKPOINT) and arrays}
    plain = [name for name, arrays in groups.items() if not name.startswith(_CHECKPOINT) and arrays]
    if plain:
        raise ModelFormatError(
            f"{what} holds layer weights both under layers/ ({_quoted_list(plain)}) and under "
            f"_layer_checkpoint_dependencies/ ({_quoted_list(list(stored))}): cannot tell which are the model's")
    wanted: dict[str, list[dict]] = {}
    for entry in _weighted_layers(config):
        wanted.setdefault(_snake_case(entry["class_name"]), []).append(entry)
    numbered: dict[str, list[tuple[int, str]]] = {base: [] for base in wanted}
    others = {_snake_case(entry["class_name"]) for entry in _model_layers(config)} - set(wanted)
    for name in stored:
        base, number = _numbered_group(name, wanted)
        if base is None and _numbered_group(name, others)[0] is not None:
            continue  # a layer mlpcodegen does not read (Conv2D): refused by name when the chain is read
        if base is None:
            raise ModelFormatError(
                f"{what} holds weights under _layer_checkpoint_dependencies/{quote_name(name)}, which no layer of "
                f"the model takes (its layers with weights: {_quoted_list(_weighted_names(config))})")
        numbered[base].append((number, name))
    found = {}
    for base, entries in wanted.items():
        names = [name for _number, name in sorted(numbered[base])]
        if len(names) != len(entries):
            raise ModelFormatError(
                f"{what} holds {len(names)} group(s) of {entries[0]['class_name']} weights under "
                f"_layer_checkpoint_dependencies/ ({_quoted_list(names)}) for the model's {len(entries)} "
                f"{entries[0]['class_name']} layer(s) ({_quoted_list([_layer_name(e) for e in entries])}): "
                "cannot pair them unambiguously")
        for entry, name in zip(entries, names):
            found[_layer_name(entry)] = arrays = _group_weights(stored[name], "keras")
            _check_paired(entry, arrays, f"{what}: _layer_checkpoint_dependencies/{quote_name(name)}")
    return found


def _weighted_names(config: Any) -> list[str]:
    return [_layer_name(entry) for entry in _weighted_layers(config)]


def _numbered_group(name: str, bases: dict) -> tuple[str | None, int]:
    """``dense_2`` -> ("dense", 2), ``dense`` -> ("dense", 0), for the bases given."""
    for base in bases:
        match = re.fullmatch(re.escape(base) + r"(?:_(\d{1,9}))?", name)
        if match:
            return base, int(match.group(1) or 0)
    return None, 0


def _check_paired(entry: dict, arrays: tuple[np.ndarray, ...], where: str) -> None:
    """A Dense layer's group must hold a kernel of its units (and a bias when it has one)."""
    if entry["class_name"] != "Dense":
        return  # the other layers' readers check their arrays against the width
    config, name = entry.get("config", {}), _layer_name(entry)
    units = _config.get(config, "units", "int", None, f"Dense layer {name!r}", nullable=True)
    use_bias = _config.get(config, "use_bias", "bool", True, f"Dense layer {name!r}")
    shapes = [tuple(np.shape(a)) for a in arrays]
    fits = len(shapes) == 1 + use_bias and len(shapes[0]) == 2 and units in (None, shapes[0][1]) and \
        (not use_bias or shapes[1] == (shapes[0][1],))
    if not fits:
        raise ModelFormatError(
            f"{where} holds arrays of shapes {', '.join(map(str, shapes)) or 'none'}, which do not fit Dense layer "
            f"{name!r} ({units} units, {'with' if use_bias else 'no'} bias) it pairs with in order: weights of "
            "another model?")


def _group_weights(arrays: list, layout: str) -> tuple[np.ndarray, ...]:
    arrays = _in_keras_order(arrays) if layout == "h5" else arrays
    return tuple(_as_weights(values, source) for _key, values, source in arrays)


#: Layer classes that store weight arrays (Normalization only when its config has no mean).
_WEIGHTED = {"Dense", "PReLU", "BatchNormalization", "LayerNormalization", "RMSNormalization", "Normalization"}


def _weighted_layers(config: Any) -> list[dict]:
    return [entry for entry in _model_layers(config) if entry["class_name"] in _WEIGHTED and not (
        entry["class_name"] == "Normalization" and entry.get("config", {}).get("mean") is not None)]


def _match_weights_file(config: Any, groups: dict, found: dict, layout: str, what: str
                        ) -> dict[str, tuple[np.ndarray, ...]]:
    """The weights of a separate weights file, checked to be those of this model: every
    layer that has weights finds them (by layer name; for Keras 2's layout, as Keras'
    own ``load_weights`` does, by order when the names differ but the counts agree), and
    the file holds no weights of layers the model lacks."""
    if layout == "keras" and any(name.startswith(_CHECKPOINT) and arrays for name, arrays in groups.items()):
        return found  # paired by _checkpoint_weights, which refused missing and extra groups
    layers = _weighted_layers(config)
    stored = [name for name, arrays in groups.items() if arrays]
    missing = [entry for entry in layers if not found.get(_layer_name(entry))]
    if missing and layout == "h5" and len(stored) == len(layers):
        return {_layer_name(entry): _group_weights(groups[name], layout) for entry, name in zip(layers, stored)}
    if missing:
        entry = missing[0]
        where = "layer group " if layout == "h5" else "group layers/"
        group = _layer_name(entry) if layout == "h5" else _keras3_weight_paths(config)[_layer_name(entry)]
        raise ModelFormatError(
            f"{what} has no weights for {entry['class_name']} layer {_layer_name(entry)!r} ({where}{group} is "
            f"missing or empty); it holds weights for: {_quoted_list(stored)}. Give the weights saved from "
            "this model (model.save_weights)")
    used = {_layer_name(e) for e in layers} if layout == "h5" else set(_keras3_weight_paths(config).values())
    extra = [name for name in stored if name not in used]
    if extra:
        raise ModelFormatError(f"{what} holds weights for layers the model does not have ({_quoted_list(extra)}): "
                               "it was saved from another model")
    return found


def _quoted_list(names: list[str]) -> str:
    shown = ", ".join(repr(quote_name(n)) for n in names[:8])
    return (shown + f", ... ({len(names)} in all)" if len(names) > 8 else shown) or "no layer"


#: A legacy .h5 file of a LoRA-enabled Dense lists bias, lora_kernel_a, lora_kernel_b,
#: kernel; the readers take Dense weights in the order of ``layer.weights``.
_DENSE_ORDER = ("kernel", "bias", "lora_kernel_a", "lora_kernel_b")


def _in_keras_order(arrays: list) -> list:
    base = [key.rsplit("/", 1)[-1].split(":")[0] for key, _values, _source in arrays]
    if "lora_kernel_a" not in base or not set(base) <= set(_DENSE_ORDER) or len(set(base)) != len(base):
        return arrays
    return sorted(arrays, key=lambda item: _DENSE_ORDER.index(item[0].rsplit("/", 1)[-1].split(":")[0]))


def _as_weights(values: np.ndarray, source: str) -> np.ndarray:
    if source == "bfloat16":
        decoded = values.view(_Weights)
        decoded.source_dtype = "bfloat16"
        return decoded
    return values


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


def load_object(model: Any, *, fold: bool = True) -> Network:
    """The frontend-table entry for an in-memory ``keras.Model``."""
    return load_model_object(model, fold)


@dataclass(frozen=True)
class VettedFile:
    """A Keras model file vetted for Keras itself to load (:func:`vet_for_keras`)."""

    network: Network | None  # as mlpcodegen reads it (unfolded); None: mlpcodegen refuses it
    keras2_meaning: bool  # Keras 3 would give a name of the file another meaning (Keras 2's hard_sigmoid)
    json_text: str | None  # an architecture JSON's text, read through the safe opener (else None)


def vet_for_keras(path: PathLike, weights: PathLike | None = None, *,
                  limits: ReadLimits | None = None) -> VettedFile:
    """Vet a model file (and its ``weights`` file) before Keras parses it in this process
    -- Keras reads with no limits and follows HDF5 links and external storage -- with the
    sandboxed reader, under ``limits``; and read it as mlpcodegen does, for a harness that
    rebuilds what Keras cannot load (mlpcodegen.harness.keras_model)."""
    path = Path(path)
    label = str(path)
    limits = DEFAULT_LIMITS if limits is None else limits
    if weights is None:
        _sandbox.run(_untrusted_h5.read_model_file, (label, limits), limits, label)
    else:
        _sandbox.run(_untrusted_h5.read_json_with_weights, (label, str(weights), limits), limits, label)
    try:
        net = load_file(path, fold=False, weights=weights, limits=limits)
    except MlpCodegenError:
        net = None  # a model mlpcodegen refuses (a branching graph...): Keras may still run it
    text = None if weights is None else _untrusted_h5.read_regular_file(label, limits).decode("utf-8-sig")
    return VettedFile(net, net is not None and _KERAS2_NOTE in net.notes, text)


# ------------------------------------------------------------------ file formats


class _Weights(np.ndarray):
    """A weight array decoded from a type NumPy lacks, remembering that type."""

    source_dtype = "float32"


def _snake_case(class_name: str) -> str:
    """Keras' own ``naming.to_snake_case``, which names the weight groups of a .keras file."""
    name = re.sub(r"\W+", "", class_name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _keras3_weight_paths(config: Any) -> dict[str, str]:
    """Layer name -> group under ``layers/`` in model.weights.h5.

    Keras 3 names each layer's group after its *class* (``dense``, ``dense_1``, ...),
    counting in the order of ``model.layers``, which leaves out the InputLayer of a
    Sequential model but keeps it in a functional one.
    """
    entries = _model_layers(config)
    if config.get("class_name") == "Sequential":
        entries = [e for e in entries if e["class_name"] != "InputLayer"]
    used: dict[str, int] = {}
    paths = {}
    for entry in entries:
        base = _snake_case(entry["class_name"])
        used[base] = used.get(base, -1) + 1
        paths[_layer_name(entry)] = base if used[base] == 0 else f"{base}_{used[base]}"
    return paths


# ------------------------------------------------------------------ the graph


def _model_layers(config: Any) -> list[dict]:
    """The model's layer entries, each checked to be an object with a class name, a
    config object and a unique name (everything later code relies on)."""
    if not isinstance(config, dict):
        raise ModelFormatError(f"the model config is {_config.describe(config)}, not an object with "
                               "class_name and config: not a Keras model")
    inner = config.get("config")
    layers = inner.get("layers") if isinstance(inner, dict) else None
    if not isinstance(layers, (list, tuple)):
        raise ModelFormatError("the model config has no list of layers: not a Keras model")
    seen: set[str] = set()
    for index, entry in enumerate(layers):
        where = f"layer #{index} of the model config"
        if not isinstance(entry, dict):
            raise ModelFormatError(f"{where} is {_config.describe(entry)}, not an object with class_name and config")
        if not isinstance(entry.get("class_name"), str):
            raise ModelFormatError(f"{where} has no class_name (found {_config.describe(entry.get('class_name'))})")
        if not isinstance(entry.get("config", {}), dict):
            raise ModelFormatError(f"{where} ({entry['class_name']}) has a config that is "
                                   f"{_config.describe(entry['config'])}, not an object")
        name = _layer_name(entry)
        if not name or name in seen:
            raise ModelFormatError(f"{where} ({entry['class_name']}) has "
                                   f"{'a duplicate name ' + repr(name) if name else 'no name'}")
        seen.add(name)
    return layers


def _layer_name(entry: dict) -> str:
    name = entry.get("name")
    if name is None and isinstance(entry.get("config"), dict):
        name = entry["config"].get("name")
    return name if isinstance(name, str) else ""


def _chain(config: Any) -> list[dict]:
    """The layers in order of computation; a clear error unless they form one chain."""
    layers = _model_layers(config)
    model_class = config.get("class_name")
    if model_class not in _MODEL_CLASSES:
        raise UnsupportedError(
            f"top-level object is a {_config.describe(model_class)}; expected one of {', '.join(_MODEL_CLASSES)}"
        )
    if model_class == "Sequential":
        return layers
    return _functional_chain(config["config"], layers)


def _inbound_names(entry: dict, name: str) -> list[list[str]]:
    """For each call of the layer, the names of the layers whose outputs it takes."""
    nodes = entry.get("inbound_nodes", [])
    if not isinstance(nodes, (list, tuple)):
        raise ModelFormatError(f"layer {name!r}: inbound_nodes is {_config.describe(nodes)}, not a list")
    calls = []
    for node in nodes:
        if isinstance(node, dict):  # Keras 3: {"args": [...], "kwargs": {...}}
            tensors = _find_tensors([node.get("args", []), node.get("kwargs", {})], name)
        elif isinstance(node, (list, tuple)):  # Keras 2: [[name, node_index, tensor_index, kwargs], ...]
            tensors = [_history_name(item, name) for item in node]
        else:
            raise ModelFormatError(f"layer {name!r}: an inbound node is {_config.describe(node)}")
        calls.append(tensors)
    return calls


def _history_name(item: Any, layer: str) -> str:
    """The source layer of ``[name, node_index, tensor_index, ...]`` (keras_history)."""
    if not isinstance(item, (list, tuple)) or not item or not isinstance(item[0], str):
        raise ModelFormatError(f"layer {layer!r}: an input reference is {_config.describe(item)}, not "
                               "[layer name, node index, tensor index]")
    return item[0]


def _find_tensors(value: Any, layer: str) -> list[str]:
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            inner = value.get("config")
            history = inner.get("keras_history") if isinstance(inner, dict) else None
            if history is None:
                raise ModelFormatError(f"layer {layer!r}: an input tensor has no keras_history (which layer "
                                       "made it): corrupt model config")
            return [_history_name(history, layer)]
        return [n for v in value.values() for n in _find_tensors(v, layer)]
    if isinstance(value, (list, tuple)):
        return [n for v in value for n in _find_tensors(v, layer)]
    return []


def _functional_chain(model_config: dict, layers: list[dict]) -> list[dict]:
    by_name = {_layer_name(entry): entry for entry in layers}
    inputs = _endpoint_names(model_config.get("input_layers"), "input_layers")
    outputs = _endpoint_names(model_config.get("output_layers"), "output_layers")
    if len(inputs) != 1 or len(outputs) != 1:
        raise UnsupportedError(
            f"the model has {len(inputs)} inputs and {len(outputs)} outputs; only a single "
            "chain from one input to one output can be converted"
        )
    for end in inputs + outputs:
        if end not in by_name:
            raise ModelFormatError(f"the model's input or output names layer {end!r}, which is not among its layers")
    consumers = _consumers(by_name)
    chain, current, visited = [], inputs[0], set()
    while True:
        if current in visited:  # a corrupt config may loop; Keras graphs never do
            raise ModelFormatError(f"the layer graph has a cycle through layer {current!r}: corrupt model config")
        visited.add(current)
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


def _consumers(by_name: dict[str, dict]) -> dict[str, list[str]]:
    """Layer name -> the layers that take its output; a clear error for shared layers,
    layers with several inputs and inputs from layers that do not exist."""
    consumers: dict[str, list[str]] = {name: [] for name in by_name}
    for name, entry in by_name.items():
        calls = _inbound_names(entry, name)
        if len(calls) > 1:
            raise UnsupportedError(f"layer {name!r} is shared (called {len(calls)} times); "
                                   "only a single chain can be converted")
        sources = calls[0] if calls else []
        if len(sources) > 1:
            raise UnsupportedError(
                f"layer {name!r} ({entry['class_name']}) takes {len(sources)} inputs "
                f"({', '.join(sources)}): the graph branches; only a single chain can be converted"
            )
        for source in sources:
            if source not in by_name:
                raise ModelFormatError(f"layer {name!r} takes its input from {source!r}, which is not a layer "
                                       "of the model: corrupt model config")
            consumers[source].append(name)
    return consumers


def _endpoint_names(value: Any, key: str) -> list[str]:
    """``input_layers`` is ``[name, 0, 0]`` for one input or a list of such triples."""
    if value is None or (isinstance(value, (list, tuple)) and not value):
        return []
    if not isinstance(value, (list, tuple)):
        raise ModelFormatError(f"the model's {key} is {_config.describe(value)}, not a list of layer references")
    if isinstance(value[0], str):
        return [value[0]]
    return [_history_name(item, key) for item in value]


# ------------------------------------------------------------------ layers -> IR


def _activation(value: Any, layer: str) -> Activation:
    """A Keras activation by name.  Keras serialises its own functions as their name;
    a custom function or a lambda becomes an object (a lambda's bytecode under
    ``value``): refused by name, never read as something else."""
    name = "linear" if value is None else _activation_name(value, layer)
    name = ALIASES.get(name, name)
    if name == "sparsemax":
        raise UnsupportedError(
            f"layer {layer!r} uses sparsemax, which Keras' TensorFlow backend does not compute as defined: "
            "its threshold sums the cumulative sums of the whole support instead of taking the last one, so "
            "the outputs need not sum to 1 (keras/src/backend/tensorflow/nn.py). mlpcodegen refuses rather than "
            "reproduce or silently correct it; the IR's 'sparsemax' activation is the true projection"
        )
    if name not in ACTIVATIONS or REGISTRY[name].per_unit or name in LAYER_ONLY_ACTIVATIONS:
        raise UnsupportedError(
            f"layer {layer!r} uses activation {name!r}, which is not supported; supported "
            f"activations: {_supported_activations()}"
        )
    return Activation(str(name))


def _supported_activations() -> str:
    return ", ".join(sorted((set(ACTIVATIONS) - LAYER_ONLY_ACTIVATIONS - {"prelu"}) | set(ALIASES)))


def _activation_name(value: Any, layer: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        module, name = value.get("module"), value.get("config")
        # {"module": "keras.activations", "class_name": "function", "config": "relu", ...}
        if value.get("class_name") == "function" and isinstance(name, str) and isinstance(module, str) \
                and module.split(".")[0] == "keras":
            return name
        what = ("a Python lambda (saved as bytecode)" if "value" in value else
                f"custom function {name!r} from module {module!r}" if value.get("class_name") == "function" else
                f"object {value.get('class_name')!r}")
        raise UnsupportedError(
            f"layer {layer!r} uses {_config.describe(what) if not isinstance(what, str) else what} as its "
            f"activation, which mlpcodegen cannot read; use a Keras activation by name ({_supported_activations()})"
        )
    raise ModelFormatError(f"layer {layer!r}: activation is {_config.describe(value)}, not an activation name")


#: Vector steps that come from normalisation layers, never from an activation= string.
LAYER_ONLY_ACTIVATIONS = frozenset({"layer_norm", "rms_norm", "unit_norm", "variance_scale"})


def _where(entry: "_LayerEntry") -> str:
    return f"{entry.class_name} layer {entry.name!r}"


def _input_shape(config: dict, layer: str, class_name: str = "InputLayer",
                 max_width: int = DEFAULT_LIMITS.max_weight_values) -> tuple[int, ...] | None:
    """The shape of one sample an InputLayer (or, in Keras 2, the first layer) declares:
    ``batch_shape`` (Keras 3), ``batch_input_shape`` (Keras 2), ``input_shape`` (no batch
    axis) or ``input_dim``; None when it declares none.  A shape of several axes is read
    when a Flatten (or a Reshape) makes it a flat vector before the first Dense layer.
    Bounded like the weights: the steps before the first Dense (a Rescaling) would
    otherwise allocate that width."""
    where = f"input layer {layer!r}" if class_name == "InputLayer" else f"{class_name} layer {layer!r}"
    shape = None
    for key in ("batch_shape", "batch_input_shape"):
        shape = shape if shape is not None else _config.get(config, key, "list", None, where, nullable=True)
    if shape is None:
        single = _config.get(config, "input_shape", "list", None, where, nullable=True)
        dim = _config.get(config, "input_dim", "int", None, where, nullable=True)
        shape = [None, *single] if single is not None else [None, dim] if dim is not None else None
    if shape is None:
        return None
    if len(shape) < 2 or len(shape) > _MAX_INPUT_RANK or \
            not all(_config.KINDS["int"][0](n) and n >= 1 for n in shape[1:]):
        raise UnsupportedError(
            f"{where} has shape {_config.describe(shape)}; only inputs of a fixed shape (batch, features) "
            "can be converted (or (batch, d1, d2, ...) flattened by a Flatten layer)"
        )
    size = _size(shape[1:])
    if size > max_width:
        raise LimitExceeded(f"{where} declares {size:,} input features, more than the {max_width:,} numbers "
                            "read; if the model is genuine, raise the limit (--max-size MIB)")
    return tuple(int(n) for n in shape[1:])


#: Axes of an input, batch included (images with channels have 4; more is no MLP input).
_MAX_INPUT_RANK = 8


def _size(shape: Any) -> int:
    size = 1
    for n in shape:
        size *= int(n)
    return size


def _shape_text(shape: tuple[int, ...]) -> str:
    return "(batch, " + ", ".join(str(n) for n in shape) + ")"


def _read_dense(entry: _LayerEntry, width: int = 0) -> list[Layer]:
    """activation(x @ kernel + bias), with or without bias (a LoRA adapter merged in)."""
    c, where = entry.config, _where(entry)
    use_bias = _config.get(c, "use_bias", "bool", True, where)
    units = _config.get(c, "units", "int", None, where, nullable=True)
    activation = _activation(c.get("activation"), entry.name)
    expected = 2 if use_bias else 1
    weights = _merge_lora(entry, expected)
    if len(weights) != expected:
        raise ModelFormatError(
            f"Dense layer {entry.name!r} should have {expected} weight array(s) "
            f"(kernel{', bias' if use_bias else ''}), found {len(weights)}"
        )
    kernel = weights[0]
    if kernel.ndim != 2 or (units is not None and kernel.shape[1] != units):
        raise ModelFormatError(
            f"Dense layer {entry.name!r}: kernel shape {kernel.shape} does not match {units} units"
        )
    if width and kernel.shape[0] != width:
        raise ModelFormatError(f"Dense layer {entry.name!r}: kernel shape {kernel.shape} takes {kernel.shape[0]} "
                               f"inputs but the layer before gives {width} (weights of another model?)")
    if use_bias and np.shape(weights[1]) != (kernel.shape[1],):
        raise ModelFormatError(f"Dense layer {entry.name!r}: bias shape {np.shape(weights[1])} does not match "
                               f"kernel shape {kernel.shape}")
    return [Dense(kernel=kernel, bias=weights[1] if use_bias else None, activation=activation, name=entry.name)]


def _merge_lora(entry: _LayerEntry, expected: int) -> tuple[np.ndarray, ...]:
    """A LoRA-enabled Dense computes with kernel + (lora_alpha / lora_rank) * A @ B.  A
    .keras file stores that sum as its kernel; a legacy .h5 file stores kernel, (bias,)
    A and B: merged here, as Keras' Dense.kernel does."""
    where = _where(entry)
    rank = _config.get(entry.config, "lora_rank", "int", None, where, nullable=True)
    weights = entry.weights
    if not rank or len(weights) != expected + 2:
        return weights
    alpha = _config.get(entry.config, "lora_alpha", "number", rank, where, nullable=True)
    kernel, a, b = (np.asarray(w, dtype=np.float64) for w in (weights[0], weights[-2], weights[-1]))
    if kernel.ndim != 2 or a.shape != (kernel.shape[0], rank) or b.shape != (rank, kernel.shape[1]):
        raise ModelFormatError(f"{where}: LoRA weights of shapes {a.shape}, {b.shape} do not fit kernel "
                               f"{kernel.shape} and rank {rank}")
    merged = (kernel + (float(rank if alpha is None else alpha) / rank) * (a @ b)).astype(weights[0].dtype)
    return (merged,) + tuple(weights[1:expected])


def _read_activation(entry: _LayerEntry, width: int) -> list[Layer]:
    """The activation (fused into the Dense layer before it when that one is linear)."""
    if "activation" not in entry.config:
        raise ModelFormatError(f"{_where(entry)} has no activation entry")
    return [Activate(width, _activation(entry.config["activation"], entry.name), entry.name)]


def _weights(entry: _LayerEntry, names: list[str]) -> dict[str, np.ndarray]:
    """The layer's weight arrays by name, flattened; a clear error when any is missing."""
    if len(entry.weights) != len(names):
        raise ModelFormatError(
            f"{entry.class_name} layer {entry.name!r} should have {len(names)} weight array(s) "
            f"({', '.join(names) or 'none'}), found {len(entry.weights)}"
        )
    return {name: np.ravel(np.asarray(w, dtype=np.float64)) for name, w in zip(names, entry.weights)}


def _per_feature(values: Any, width: int, what: str) -> np.ndarray:
    try:
        array = np.ravel(np.asarray(values, dtype=np.float64))
    except (TypeError, ValueError):
        raise ModelFormatError(f"{what} is {_config.describe(values)}, not numbers") from None
    if array.size not in (1, width):
        raise ModelFormatError(f"{what} has {array.size} values for {width} features")
    return np.broadcast_to(array, (width,)).copy()


def _check_feature_axis(entry: _LayerEntry) -> None:
    axis = _config.get(entry.config, "axis", "axis", -1, _where(entry))
    axes = list(axis) if isinstance(axis, (list, tuple)) else [axis]
    if axes not in ([-1], [1]):
        raise UnsupportedError(
            f"{entry.class_name} layer {entry.name!r} normalises over axis {axis}; only the feature "
            "axis (-1) of flat inputs can be converted"
        )


def _number(entry: _LayerEntry, key: str, default: float | None, nullable: bool = False) -> float | None:
    """A numeric config entry; ``null`` means ``default`` unless ``nullable``."""
    value = _config.get(entry.config, key, "number", default, _where(entry), nullable=True)
    return value if value is not None or nullable else default


def _flag(entry: _LayerEntry, key: str, default: bool) -> bool:
    return _config.get(entry.config, key, "bool", default, _where(entry))


def _read_relu(entry: _LayerEntry, width: int) -> list[Layer]:
    """relu with the layer's max_value, negative_slope and threshold."""
    params = {"max_value": _number(entry, "max_value", None, nullable=True),
              "negative_slope": _number(entry, "negative_slope", 0.0) or 0.0,
              "threshold": _number(entry, "threshold", 0.0) or 0.0}
    return [Activate(width, Activation("relu", tuple(params.items())), entry.name)]


def _read_leaky_relu(entry: _LayerEntry, width: int) -> list[Layer]:
    """leaky_relu with the layer's negative_slope."""
    slope = _number(entry, "negative_slope", _number(entry, "alpha", 0.3))
    return [Activate(width, Activation("leaky_relu", (("negative_slope", slope),)), entry.name)]


def _read_prelu(entry: _LayerEntry, width: int) -> list[Layer]:
    """prelu: relu(x) - alpha * relu(-x), alpha per unit or shared."""
    alpha = _per_feature(_weights(entry, ["alpha"])["alpha"], width, f"PReLU {entry.name!r} alpha")
    return [Activate(width, Activation("prelu", (("alpha", tuple(alpha)),)), entry.name)]


def _read_elu(entry: _LayerEntry, width: int) -> list[Layer]:
    """elu with the layer's alpha."""
    return [Activate(width, Activation("elu", (("alpha", _number(entry, "alpha", 1.0)),)), entry.name)]


def _read_softmax(entry: _LayerEntry, width: int) -> list[Layer]:
    """softmax over the feature axis."""
    _check_feature_axis(entry)
    return [Activate(width, Activation("softmax"), entry.name)]


def _read_batch_norm(entry: _LayerEntry, width: int) -> list[Layer]:
    """Inference mode: (x - moving_mean) / sqrt(moving_variance + eps) * gamma + beta, folded."""
    _check_feature_axis(entry)
    epsilon = float(_number(entry, "epsilon", 1e-3))
    names = (["gamma"] if _flag(entry, "scale", True) else []) + (["beta"] if _flag(entry, "center", True) else [])
    w = _weights(entry, names + ["moving_mean", "moving_variance"])
    gamma = w.get("gamma", np.ones(width))
    scale = gamma / np.sqrt(w["moving_variance"] + epsilon)
    return [Affine(scale, w.get("beta", np.zeros(width)) - w["moving_mean"] * scale, entry.name)]


def _read_normalization(entry: _LayerEntry, width: int) -> list[Layer]:
    """(x - mean) / max(sqrt(variance), 1e-7), or its inverse (invert=True), folded."""
    c = entry.config
    _check_feature_axis(entry)
    if c.get("mean") is not None:
        if c.get("variance") is None:
            raise ModelFormatError(f"{_where(entry)} has a mean but no variance in its config")
        mean, variance = c["mean"], c["variance"]
    else:
        w = _weights(entry, ["mean", "variance", "count"][: max(len(entry.weights), 2)])
        mean, variance = w["mean"], w["variance"]
    mean = _per_feature(mean, width, f"Normalization {entry.name!r} mean")
    spread = np.maximum(np.sqrt(_per_feature(variance, width, f"Normalization {entry.name!r} variance")), 1e-7)
    if _flag(entry, "invert", False):
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
        inner = value.get("config")
        return inner.get("value") if isinstance(inner, dict) else value.get("value")
    return value


def _read_layer_norm(entry: _LayerEntry, width: int) -> list[Layer]:
    """(x - mean) / sqrt(var + eps) * gamma + beta; rms_scaling=True: x / sqrt(var + eps) * gamma."""
    _check_feature_axis(entry)
    rms = _flag(entry, "rms_scaling", False)
    epsilon = _number(entry, "epsilon", 1e-3)
    names = (["gamma"] if _flag(entry, "scale", True) else []) + \
        (["beta"] if _flag(entry, "center", True) and not rms else [])
    w = _weights(entry, names)
    # rms_scaling=True divides x by sqrt(variance + eps) (Keras warns it is not RMS).
    step = Activation("variance_scale" if rms else "layer_norm", (("epsilon", epsilon),))
    affine = Affine(w.get("gamma", np.ones(width)), w.get("beta", np.zeros(width)), f"{entry.name} (scale)")
    return [Activate(width, step, entry.name), affine]


def _read_rms_norm(entry: _LayerEntry, width: int) -> list[Layer]:
    """x / sqrt(mean(x^2) + eps) * scale."""
    _check_feature_axis(entry)
    step = Activation("rms_norm", (("epsilon", _number(entry, "epsilon", 1e-6) or 1e-6),))
    w = _weights(entry, ["scale"])
    return [Activate(width, step, entry.name), Affine(w["scale"], np.zeros(width), f"{entry.name} (scale)")]


def _read_unit_norm(entry: _LayerEntry, width: int) -> list[Layer]:
    """x / max(norm(x), 1e-12), the Euclidean norm."""
    _check_feature_axis(entry)
    return [Activate(width, Activation("unit_norm", (("epsilon", 1e-12),)), entry.name)]


def _read_reshape(entry: _LayerEntry, width: int) -> list[Layer]:
    """Nothing to compute: a multi-axis input (Input((28, 28)), element-wise layers, then
    Flatten or a flat Reshape) is read flattened in row-major (C) order, x.reshape(len(x), -1),
    as Keras' Flatten (channels_last) does."""
    return []


def _reshaped(entry: _LayerEntry, shape: tuple[int, ...]) -> tuple[list[Layer], tuple[int, ...]]:
    """A Flatten or Reshape layer: the new sample shape (``()``: still unknown)."""
    if entry.class_name == "Flatten":
        data_format = _config.get(entry.config, "data_format", "str", "channels_last", _where(entry),
                                  nullable=True)
        if len(shape) > 1 and data_format == "channels_first":
            raise UnsupportedError(
                f"{_where(entry)} has data_format channels_first, which moves the second axis of its "
                f"{_shape_text(shape)} input last before flattening; only channels_last (row-major order) "
                "can be converted")
        return [], (_size(shape),) if shape else ()
    target = _config.get(entry.config, "target_shape", "list", None, _where(entry), nullable=True)
    if target is None or not target or not all(_config.KINDS["int"][0](n) and (n >= 1 or n == -1) for n in target) \
            or list(target).count(-1) > 1:
        raise ModelFormatError(f"{_where(entry)} has target_shape {_config.describe(target)}, not a shape")
    if not shape:
        return [], () if -1 in target else tuple(int(n) for n in target)
    known = _size(n for n in target if n != -1)
    size = _size(shape)
    resolved = tuple(int(n) if n != -1 else size // max(known, 1) for n in target)
    if _size(resolved) != size:
        raise ModelFormatError(f"{_where(entry)} reshapes its {_shape_text(shape)} input to {_config.describe(target)}, "
                               f"which does not hold {size} values")
    return [], resolved


def _elementwise(reader: Callable[[_LayerEntry, int], list[Layer]]
                 ) -> Callable[[_LayerEntry, tuple[int, ...]], tuple[list[Layer], tuple[int, ...]]]:
    """A reader of an activation layer, on a multi-axis input: the same step on the
    flattened values when the activation is element-wise (not softmax over the last axis)."""
    def read(entry: _LayerEntry, shape: tuple[int, ...]) -> tuple[list[Layer], tuple[int, ...]]:
        new = reader(entry, _size(shape))
        for layer in new:
            activation = getattr(layer, "activation", LINEAR_ACTIVATION)
            if activation.is_vector or activation.out_width(layer.n_in) != layer.n_in:
                raise UnsupportedError(
                    f"{_where(entry)} applies {activation.name} over the last axis of a {_shape_text(shape)} "
                    "input; only element-wise steps can come before the Flatten layer")
        return new, shape
    return read


def _broadcast(values: Any, shape: tuple[int, ...], what: str) -> np.ndarray:
    """Values Keras broadcasts over a (batch, *shape) input, one per feature, flattened
    in row-major order."""
    try:
        array = np.asarray(values, dtype=np.float64)
        return np.broadcast_to(array, (1, *shape)).ravel().copy()
    except (TypeError, ValueError):
        raise ModelFormatError(f"{what} ({_config.describe(values)}) does not broadcast over the "
                               f"{_shape_text(shape)} input") from None


def _read_rescaling_shaped(entry: _LayerEntry, shape: tuple[int, ...]) -> tuple[list[Layer], tuple[int, ...]]:
    c = entry.config
    scale = _broadcast(_config_number(c.get("scale", 1.0)), shape, f"Rescaling {entry.name!r} scale")
    offset = _broadcast(_config_number(c.get("offset", 0.0)), shape, f"Rescaling {entry.name!r} offset")
    return [Affine(scale, offset, entry.name)], shape


def _read_prelu_shaped(entry: _LayerEntry, shape: tuple[int, ...]) -> tuple[list[Layer], tuple[int, ...]]:
    alpha = _broadcast(_weights(entry, ["alpha"])["alpha"].reshape(np.shape(entry.weights[0])), shape,
                       f"PReLU {entry.name!r} alpha")
    return [Activate(_size(shape), Activation("prelu", (("alpha", tuple(alpha)),)), entry.name)], shape


def _per_channel(entry: _LayerEntry, shape: tuple[int, ...]) -> tuple[list[Layer], tuple[int, ...]]:
    """BatchNormalization or Normalization over the last axis of a multi-axis input: the
    flat reader's affine step for one channel, repeated over the other axes (row-major)."""
    axis = _config.get(entry.config, "axis", "axis", -1, _where(entry))
    axes = list(axis) if isinstance(axis, (list, tuple)) else [axis]
    if axes not in ([-1], [len(shape)]):
        raise UnsupportedError(
            f"{_where(entry)} normalises over axis {axis} of a {_shape_text(shape)} input; only the last axis "
            "(one mean and scale per channel) can be converted before the Flatten layer")
    steps = _READERS[entry.class_name](replace(entry, config={**entry.config, "axis": -1}), shape[-1])
    repeat = _size(shape[:-1])
    return [Affine(np.tile(step.scale, repeat), np.tile(step.shift, repeat), step.name) for step in steps], shape


def _keep_shape(entry: _LayerEntry, shape: tuple[int, ...]) -> tuple[list[Layer], tuple[int, ...]]:
    return [], shape


def _identity(entry: _LayerEntry, width: int) -> list[Layer]:
    """Identity at inference."""
    return []


#: Keras class name -> reader.  Readers get the entry and the current width and
#: return IR layers; folding and fusing happen afterwards, in mlpcodegen.core.passes.
_READERS: dict[str, Callable[[_LayerEntry, int], list[Layer]]] = {
    "InputLayer": _identity,
    "Dense": lambda entry, width: _read_dense(entry, width),  # (docstring: _read_dense)
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


def layer_description(name: str) -> str:
    """What the Keras layer ``name`` (one of :data:`SUPPORTED_LAYERS`) becomes: the first
    paragraph of its reader's docstring, on one line (the README's table)."""
    reader = _READERS[name]
    doc = reader.__doc__ or (_read_dense.__doc__ if name == "Dense" else "")
    return " ".join((doc or "").split("\n\n")[0].split())

#: Layers that may act on a multi-axis input (before its Flatten), and Flatten/Reshape
#: themselves: class name -> reader of (entry, sample shape) -> (IR layers, new shape).
_SHAPED_READERS: dict[str, Callable[[_LayerEntry, tuple[int, ...]], tuple[list[Layer], tuple[int, ...]]]] = {
    **{name: _keep_shape for name, reader in _READERS.items() if reader is _identity},
    **{name: _elementwise(_READERS[name]) for name in ("Activation", "ReLU", "LeakyReLU", "ELU")},
    "Rescaling": _read_rescaling_shaped,
    "PReLU": _read_prelu_shaped,
    "BatchNormalization": _per_channel,
    "Normalization": _per_channel,
    "Flatten": _reshaped,
    "Reshape": _reshaped,
}


def _read_entry(entry: _LayerEntry, shape: tuple[int, ...]) -> tuple[list[Layer], tuple[int, ...]]:
    """The layer's IR steps and the sample shape after it (``()`` while unknown)."""
    if len(shape) > 1 or entry.class_name in ("Flatten", "Reshape"):
        reader = _SHAPED_READERS.get(entry.class_name)
        if reader is None:
            before = ", ".join(sorted(set(_SHAPED_READERS) - {"Flatten", "Reshape", "InputLayer"}))
            raise UnsupportedError(
                f"{_where(entry)} gets a {_shape_text(shape)} input (it would act on the last axis alone); "
                "a dense network takes flat (batch, features) inputs: add a Flatten layer before it (layers "
                f"that may come before the Flatten: {before})")
        return reader(entry, shape)
    new = _READERS[entry.class_name](entry, _size(shape) if shape else 0)
    return new, ((new[-1].n_out,) if new else shape)


def _build_network(config: Any, weights: dict[str, tuple[np.ndarray, ...]], source: str,
                   fold: bool = True, keras_version: str | None = None,
                   limits: ReadLimits = DEFAULT_LIMITS) -> Network:
    """``keras_version``: the version that saved a file, when it says (None: Keras 3's
    meaning of every name); ``limits.max_weight_values`` bounds the declared input width."""
    try:
        keras2 = _major(keras_version) < 3
        n_inputs, layers, weight_dtypes, notes = _read_layers(_chain(config), weights, keras2,
                                                              limits.max_weight_values)
        if n_inputs is None:
            raise ModelFormatError("cannot tell the input width (no InputLayer, no Dense)")
        notes += (_KERAS2_NOTE,) if keras2 and _has_keras2_hard_sigmoid(layers) else ()
        net = Network(n_inputs, tuple(layers), _weight_dtype(weight_dtypes), _model_name(config), notes)
    except MlpCodegenError as exc:
        raise type(exc)(f"{source}: {exc}") from None
    if not fold:
        return fuse_activations(net)
    folded = fold_affine(fuse_activations(net))
    # the Keras 2 hard_sigmoid slope folded: the activation fuses again
    return fuse_activations(folded) if _KERAS2_NOTE in notes else folded


def _major(version: str | None) -> int:
    match = re.match(r"\s*(\d+)\.", version or "")
    return int(match.group(1)) if match else 3


def _read_layers(chain: list[dict], weights: dict[str, tuple[np.ndarray, ...]], keras2: bool = False,
                 max_width: int = DEFAULT_LIMITS.max_weight_values
                 ) -> tuple[int | None, list[Layer], set[str], tuple[str, ...]]:
    """The input width, the IR layers of the chain, the weights' stored types and the
    notes on how the input is read (a multi-axis input, flattened)."""
    input_shape: tuple[int, ...] | None = None
    layers: list[Layer] = []
    weight_dtypes: set[str] = set()
    shape: tuple[int, ...] = ()  # of one sample, after the layers read so far; () while unknown
    for raw in chain:
        entry = _entry(raw, weights)
        if entry.class_name == "InputLayer" or (input_shape is None and not shape):
            # Keras 2 puts the input shape on the first layer itself (no InputLayer)
            input_shape = _input_shape(entry.config, entry.name, entry.class_name, max_width)
            shape = input_shape or ()
        weight_dtypes.update(getattr(w, "source_dtype", np.dtype(w.dtype).name) for w in entry.weights)
        if not shape and entry.class_name == "Dense" and entry.weights and entry.weights[0].ndim == 2:
            input_shape = shape = (int(entry.weights[0].shape[0]),)
        try:
            new, shape = _read_entry(entry, shape)
        except (TypeError, ValueError) as exc:  # a malformed value no check above foresaw
            if isinstance(exc, MlpCodegenError):
                raise
            raise ModelFormatError(f"{_where(entry)}: malformed config or weights ({exc})") from None
        new = [step for layer in new for step in _keras2_steps(layer)] if keras2 else new
        layers.extend(new)
    if len(shape) > 1:
        raise UnsupportedError(f"the model's output has shape {_shape_text(shape)}; only a flat output "
                               "(batch, outputs) can be converted")
    n_inputs = _size(input_shape) if input_shape else None
    notes = (_flatten_note(input_shape),) if input_shape and len(input_shape) > 1 else ()
    return n_inputs, layers, weight_dtypes, notes


def _flatten_note(shape: tuple[int, ...]) -> str:
    """One short comment line for every target (the safe characters of quote_name)."""
    return f"input: {tuple(shape)} per sample, flattened in row-major (C) order: x.reshape(len(x), -1)"


#: Keras 2 (to tf.keras 2.15) defined hard_sigmoid as clip(0.2 x + 0.5, 0, 1); Keras 3
#: (and the IR) as clip(x / 6 + 0.5, 0, 1), which is the Keras 2 one at 1.2 x.
_KERAS2_HARD_SIGMOID_SCALE = 1.2
_KERAS2_NOTE = "Keras 2 hard_sigmoid clip(0.2 x + 0.5, 0, 1) read as hard_sigmoid(1.2 x)"


def _keras2_steps(layer: Layer) -> list[Layer]:
    """A layer of a Keras 2 file in the IR's terms: its hard_sigmoid becomes the IR's
    at 1.2 x (a scaling the folding pass moves into the Dense weights)."""
    activation = getattr(layer, "activation", None)
    if activation is None or activation.name != "hard_sigmoid":
        return [layer]
    scale = Affine(np.full(layer.n_out, _KERAS2_HARD_SIGMOID_SCALE), np.zeros(layer.n_out),
                   f"{layer.name} (Keras 2 hard_sigmoid slope)")
    step = Activate(layer.n_out, activation, layer.name)
    if isinstance(layer, Dense):
        return [Dense(kernel=layer.kernel, bias=layer.bias, activation=Activation("linear"), name=layer.name),
                scale, step]
    return [scale, step]


def _has_keras2_hard_sigmoid(layers: list[Layer]) -> bool:
    return any(getattr(layer, "activation", LINEAR_ACTIVATION).name == "hard_sigmoid" for layer in layers)


LINEAR_ACTIVATION = Activation("linear")


def _entry(raw: dict, weights: dict[str, tuple[np.ndarray, ...]]) -> _LayerEntry:
    """The layer's class, name, checked config and weights; refused when the class or a
    config entry is not understood, or when its weights are not floats."""
    class_name, name = raw["class_name"], _layer_name(raw)
    if class_name not in _READERS:
        raise _unsupported_layer(class_name, name)
    entry = _LayerEntry(class_name, name, raw.get("config", {}), weights.get(name, ()))
    _config.check_entries(class_name, entry.config, _where(entry))
    for index, w in enumerate(entry.weights):
        if np.dtype(w.dtype).kind != "f" and np.dtype(w.dtype).name != "bfloat16" and not (class_name == "Normalization" and index == 2):
            raise UnsupportedError(
                f"{_where(entry)} stores weight #{index} as {np.dtype(w.dtype).name} (a quantised model?); "
                "only floating-point weights can be converted"
            )
    return entry


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
    name = config["config"].get("name")
    return re.sub(r"\W", "_", name) if isinstance(name, str) and name else "mlp"
