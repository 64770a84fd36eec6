"""Keras files of every format since 2.0 (issue 11, item 1), read without TensorFlow.

Each file is built here with h5py / zipfile / json in the layout that Keras version
wrote (read from its saving code; no TensorFlow 1 or Keras 2 is installed):

* Keras <= 2.2.4 legacy ``.h5``: a Sequential's ``config`` is the bare list of its
  layers, the first layer carries ``batch_input_shape``; root attributes
  ``keras_version``/``backend``/``model_config``/``training_config`` as UTF-8 bytes;
  ``model_weights`` with ``layer_names``, and per layer a group with ``weight_names``
  (``dense_1/kernel:0``) and the datasets at ``model_weights/dense_1/dense_1/kernel:0``;
  an ``optimizer_weights`` group beside it.
* ``model.to_json()`` + ``model.save_weights('w.h5')`` of tf.keras 2.x (an InputLayer
  ``dense_input`` and ``batch_input_shape`` on the Dense layer too, ``keras_version`` in
  the JSON; the weights file's root holds ``layer_names``/``backend``/``keras_version``)
  and of Keras 3 (its own ``to_json`` and ``.weights.h5``, ``layers/dense/vars/0``).
* tf.keras 2.13-2.15 ``.keras`` archives: modules ``keras.src.engine.functional`` etc.;
  weights under ``layers/dense/vars`` or, as tf.keras 2.13 wrote them, numbered dense,
  dense_2, dense_4 (:func:`tf_keras213_groups`), under ``_layer_checkpoint_dependencies/``
  or in root groups literally named ``_layer_checkpoint_dependencies\\dense_2`` (Windows
  joins); also Keras 3 archives rewritten into that layout, checked against the model
  they were saved from.
* Multi-axis inputs flattened by Flatten/Reshape (Keras 3 in memory, .keras, .h5; Keras 2
  with the input shape on the Flatten layer), the C checked against model.predict.

Every file holds a random architecture (depth 1-3, widths 1-8, several activations,
Dropout / Activation layers in between) and is checked against the float64 reference
and against a Keras 3 model built from the same weights with ``set_weights``.
"""
from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from typing import Callable

import h5py
import numpy as np
import pytest

from conftest import REPO
from mlpcodegen import load
from mlpcodegen.core.errors import ModelFormatError, UnsupportedError
from mlpcodegen.harness.keras_model import load_keras_model
from mlpcodegen.core.reference import evaluate

#: Activations a Keras 2 file may name, with Keras 2's meaning (hard_sigmoid: 0.2 x + 0.5).
ACTIVATIONS = ("linear", "relu", "tanh", "sigmoid", "softmax", "elu", "selu", "softplus", "softsign",
               "hard_sigmoid")
SEEDS = (0, 1, 2)


# ------------------------------------------------------------------ random models


@dataclass
class Step:
    """One layer: Dense (kernel, bias, activation), Dropout or Activation."""

    kind: str
    activation: str = "linear"
    kernel: np.ndarray | None = None
    bias: np.ndarray | None = None
    rate: float = 0.5

    def weights(self) -> list[np.ndarray]:
        return [] if self.kernel is None else [self.kernel] + ([] if self.bias is None else [self.bias])


@dataclass
class Spec:
    n_inputs: int
    steps: list[Step] = field(default_factory=list)


def random_spec(seed: int) -> Spec:
    """Depth 1-3, widths 1-8, any activation, bias or not, Dropout/Activation between."""
    rng = np.random.default_rng(seed)
    depth = int(rng.integers(1, 4))
    widths = [int(w) for w in rng.integers(1, 9, size=depth + 1)]
    spec = Spec(widths[0])
    for n_in, n_out in zip(widths, widths[1:]):
        scale = 1.5 * np.sqrt(2.0 / (n_in + n_out))
        bias = rng.normal(0, 0.5, n_out).astype("f4") if rng.integers(0, 2) else None
        spec.steps.append(Step("Dense", ACTIVATIONS[rng.integers(len(ACTIVATIONS))],
                               rng.normal(0, scale, (n_in, n_out)).astype("f4"), bias))
        if rng.random() < 0.4:
            spec.steps.append(Step("Dropout", rate=0.25))
        if rng.random() < 0.3:
            spec.steps.append(Step("Activation", ACTIVATIONS[rng.integers(len(ACTIVATIONS))]))
    return spec


def names(spec: Spec, first: int) -> list[str]:
    """Keras' automatic layer names: dense_1, dense_2 (Keras 2.2: first=1) or dense,
    dense_1 (tf.keras 2.x and Keras 3: first=0)."""
    counts: dict[str, int] = {}
    out = []
    for step in spec.steps:
        base = step.kind.lower()
        index = counts.get(base, first - 1) + 1
        counts[base] = index
        out.append(base if index == 0 else f"{base}_{index}")
    return out


def keras2_hard_sigmoid(keras):
    return lambda z: keras.ops.clip(0.2 * z + 0.5, 0.0, 1.0)  # Keras 2's definition


def keras3_peer(keras, spec: Spec):
    """The same network as a Keras 3 model, weights by set_weights (Keras 2 semantics)."""
    def act(name):
        return keras2_hard_sigmoid(keras) if name == "hard_sigmoid" else name

    layers, weights = [keras.Input((spec.n_inputs,))], []
    for step in spec.steps:
        if step.kind == "Dense":
            layers.append(keras.layers.Dense(step.kernel.shape[1], activation=act(step.activation),
                                             use_bias=step.bias is not None))
        elif step.kind == "Dropout":
            layers.append(keras.layers.Dropout(step.rate))
        else:
            layers.append(keras.layers.Activation(act(step.activation)))
        weights.append(step.weights())
    model = keras.Sequential(layers)
    for layer, arrays in zip(model.layers, weights):
        layer.set_weights(arrays)
    return model


def check_against_peers(net, spec: Spec, peer, seed: int) -> None:
    """The network read equals the weights written, and agrees with the float64
    reference and with the Keras 3 peer's model.predict."""
    dense = [s for s in spec.steps if s.kind == "Dense"]
    assert net.n_inputs == spec.n_inputs and net.n_outputs == dense[-1].kernel.shape[1]
    x = np.random.default_rng(100 + seed).uniform(-2, 2, (64, spec.n_inputs)).astype("f4")
    reference = evaluate(net, x)
    expected = peer.predict(x, verbose=0)
    # model.predict computes in float32: each output is off by a few float32 roundings
    # of the sums it is made of (width <= 8, depth <= 3), so rtol 1e-5 plus an atol of
    # 1e-5 times the largest output (an output near zero may come from cancelling sums).
    np.testing.assert_allclose(reference, expected, rtol=1e-5, atol=1e-5 * max(1.0, float(np.abs(expected).max())))


# ------------------------------------------------------------------ Keras 2 configs


def k2_dense(name: str, step: Step, input_shape: int | None = None, dtype="float32") -> dict:
    config = {"name": name, "trainable": True}
    if input_shape is not None:
        config["batch_input_shape"] = [None, input_shape]
    config.update({
        "dtype": dtype, "units": int(step.kernel.shape[1]), "activation": step.activation,
        "use_bias": step.bias is not None,
        "kernel_initializer": {"class_name": "VarianceScaling",
                               "config": {"scale": 1.0, "mode": "fan_avg", "distribution": "uniform", "seed": None}},
        "bias_initializer": {"class_name": "Zeros", "config": {}},
        "kernel_regularizer": None, "bias_regularizer": None, "activity_regularizer": None,
        "kernel_constraint": None, "bias_constraint": None})
    return {"class_name": "Dense", "config": config}


def k2_layer(name: str, step: Step, input_shape: int | None = None, dtype="float32", old_dropout=False) -> dict:
    if step.kind == "Dense":
        return k2_dense(name, step, input_shape, dtype)
    config = {"name": name, "trainable": True}
    if input_shape is not None:
        config["batch_input_shape"] = [None, input_shape]
    if step.kind == "Dropout":
        config.update({"p": step.rate} if old_dropout else {"rate": step.rate, "noise_shape": None, "seed": None})
    else:
        config["activation"] = step.activation
    return {"class_name": step.kind, "config": config}


def keras22_list_config(spec: Spec) -> dict:
    """Keras <= 2.2.4 Sequential.get_config(): a bare list, the input shape on layer 0."""
    layer_names = names(spec, first=1)
    return {"class_name": "Sequential", "config": [
        k2_layer(name, step, spec.n_inputs if i == 0 else None, old_dropout=True)
        for i, (name, step) in enumerate(zip(layer_names, spec.steps))]}


def tf_keras2_json(spec: Spec, functional: bool = False) -> dict:
    """tf.keras 2.x model.to_json(): an InputLayer 'dense_input' (Sequential) or
    'input_1' (functional), batch_input_shape on the first Dense too, dtype policies
    as Policy objects, keras_version and backend at the top."""
    layer_names = names(spec, first=0)
    policy = {"class_name": "Policy", "config": {"name": "float32"}}
    input_name = "input_1" if functional else f"{layer_names[0]}_input"
    layers = [{"class_name": "InputLayer", "config": {
        "batch_input_shape": [None, spec.n_inputs], "dtype": "float32", "sparse": False, "ragged": False,
        "name": input_name}}]
    for i, (name, step) in enumerate(zip(layer_names, spec.steps)):
        layers.append(k2_layer(name, step, spec.n_inputs if i == 0 and not functional else None, policy))
    config = {"name": "model" if functional else "sequential", "layers": layers}
    if functional:
        for previous, entry in zip(layers, layers[1:]):
            entry["name"] = entry["config"]["name"]
            entry["inbound_nodes"] = [[[previous["config"]["name"], 0, 0, {}]]]
        layers[0].update(name=input_name, inbound_nodes=[])
        config.update(input_layers=[[input_name, 0, 0]], output_layers=[[layer_names[-1], 0, 0]])
    return {"class_name": "Functional" if functional else "Sequential", "config": config,
            "keras_version": "2.13.1", "backend": "tensorflow"}


# ------------------------------------------------------------------ Keras 2 HDF5


def write_layer_groups(root, layer_names: list[str], steps: list, version: str, suffix=":0") -> None:
    """save_weights_to_hdf5_group: layer_names/backend/keras_version on the root, per
    layer a group with weight_names and the datasets at those (nested) names."""
    root.attrs["layer_names"] = np.array([n.encode("utf8") for n in layer_names])
    root.attrs["backend"] = b"tensorflow"
    root.attrs["keras_version"] = version.encode("utf8")
    for name, step in zip(layer_names, steps):
        group = root.create_group(name)
        arrays = step.weights() if step is not None else []
        weight_names = [f"{name}/{k}{suffix}".encode("utf8") for k in ("kernel", "bias")[: len(arrays)]]
        group.attrs["weight_names"] = np.array(weight_names) if weight_names else np.asarray([])
        for weight_name, values in zip(weight_names, arrays):
            dataset = group.create_dataset(weight_name.decode(), values.shape, dtype=values.dtype)
            dataset[:] = values


def keras22_h5(path, spec: Spec) -> None:
    """A whole model as Keras 2.2.4 saved it (compiled: training_config and optimizer_weights)."""
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = b"2.2.4"
        f.attrs["backend"] = b"tensorflow"
        f.attrs["model_config"] = json.dumps(keras22_list_config(spec)).encode("utf8")
        f.attrs["training_config"] = json.dumps({
            "optimizer_config": {"class_name": "Adam", "config": {"lr": 0.001, "beta_1": 0.9}},
            "loss": "mean_squared_error", "metrics": [], "sample_weight_mode": None,
            "loss_weights": None}).encode("utf8")
        write_layer_groups(f.create_group("model_weights"), names(spec, first=1), spec.steps, "2.2.4")
        optimizer = f.create_group("optimizer_weights")
        optimizer.attrs["weight_names"] = np.array([b"Adam/iterations:0"])
        optimizer.create_dataset("Adam/iterations:0", data=np.int64(7))


def tf_keras2_weights(path, spec: Spec, functional: bool = False) -> None:
    """tf.keras 2.x model.save_weights('w.h5'): model.layers (a functional model's
    include its InputLayer, with no weights)."""
    layer_names, steps = names(spec, first=0), list(spec.steps)
    if functional:
        layer_names, steps = ["input_1"] + layer_names, [None] + steps
    with h5py.File(path, "w") as f:
        write_layer_groups(f, layer_names, steps, "2.13.1")


# ------------------------------------------------------------------ tf.keras 2.13 .keras


def tf_keras213_groups(classes: list[str], weighted: list[bool]) -> list[str]:
    """The group each layer's variables get in a .keras file of tf.keras 2.13.

    Its saving_lib walked ``dir(model)`` in sorted order, so it met
    ``_layer_checkpoint_dependencies`` before ``layers``: an OrderedDict that lists each
    layer of ``model.layers`` as ``layer-i`` and, when it has weights, first as
    ``layer_with_weights-k`` too.  ``_save_container_state`` named the values after their
    class, counting every entry, and saved a layer the first time only (visited_trackables):
    a Sequential of Dense, Dropout, Dense stores dense, dropout, dense_2 (keras-team/tf-keras
    saving_lib.py and functional.py of 2.13)."""
    counts: dict[str, int] = {}
    groups = []
    for kind, has_weights in zip(classes, weighted):
        base = re.sub("([a-z])([A-Z])", r"\1_\2", re.sub("(.)([A-Z][a-z]+)", r"\1_\2", kind)).lower()
        names = []
        for _ in range(2 if has_weights else 1):
            counts[base] = counts.get(base, -1) + 1
            names.append(base if counts[base] == 0 else f"{base}_{counts[base]}")
        groups.append(names[0])
    return groups


def keras3_groups(classes: list[str]) -> list[str]:
    """Keras 3's (and tf.keras 2.14's) groups under layers/: one count per layer."""
    return tf_keras213_groups(classes, [False] * len(classes))


def tf_keras213_archive(path, spec: Spec, layout: str, functional: bool = False) -> None:
    """A tf.keras 2.13-2.15 .keras archive: the new serialisation (module entries,
    keras.src.engine.* for the model classes), weights by class-named groups under
    ``layout``: "layers" (layers/dense_1), "nested" (tf.keras 2.13 on Linux:
    _layer_checkpoint_dependencies/dense_2, numbered as :func:`tf_keras213_groups` says) or
    "backslash" (on Windows: one root group named _layer_checkpoint_dependencies\\dense_2)."""
    config = tf_keras2_json(spec, functional)
    for key in ("keras_version", "backend"):
        del config[key]
    config["module"] = "keras.src.engine.functional" if functional else "keras.engine.sequential"
    config.update(registered_name="Functional" if functional else None, build_config={
        "input_shape": [None, spec.n_inputs]}, compile_config=None)
    for entry in config["config"]["layers"]:
        entry.update(module="keras.layers", registered_name=None)
        entry["config"].pop("batch_input_shape", None) if entry["class_name"] != "InputLayer" else None
    steps = ([Step("InputLayer")] if functional else []) + spec.steps  # model.layers
    classes = [step.kind for step in steps]
    groups = keras3_groups(classes) if layout == "layers" else \
        tf_keras213_groups(classes, [bool(step.weights()) for step in steps])
    blob = io.BytesIO()
    with h5py.File(blob, "w") as h5:
        h5.create_group("vars")  # the model's own (none)
        for step, group in zip(steps, groups):
            where = {"layers": f"layers/{group}", "nested": f"_layer_checkpoint_dependencies/{group}",
                     "backslash": f"_layer_checkpoint_dependencies\\{group}"}[layout]
            variables = h5.create_group(where).create_group("vars")
            for i, values in enumerate(step.weights()):
                variables.create_dataset(str(i), data=values)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "2.13.1", "date_saved": "2023-08-01@10:00:00"}))
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("model.weights.h5", blob.getvalue())


# ------------------------------------------------------------------ tests: every layout


@pytest.mark.parametrize("seed", SEEDS)
def test_keras22_list_config_h5(tmp_path, keras_module, seed):
    spec = random_spec(seed)
    keras22_h5(tmp_path / "m.h5", spec)
    net = load(tmp_path / "m.h5")
    check_against_peers(net, spec, keras3_peer(keras_module, spec), seed)
    assert net.name == "sequential"


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("functional", [False, True], ids=["sequential", "functional"])
def test_tf_keras2_json_with_weights_h5(tmp_path, keras_module, seed, functional):
    spec = random_spec(seed)
    (tmp_path / "m.json").write_text(json.dumps(tf_keras2_json(spec, functional)))
    tf_keras2_weights(tmp_path / "w.h5", spec, functional)
    net = load(tmp_path / "m.json", weights=tmp_path / "w.h5")
    check_against_peers(net, spec, keras3_peer(keras_module, spec), seed)


@pytest.mark.parametrize("seed", SEEDS[:2])
@pytest.mark.parametrize("layout", ["layers", "nested", "backslash"])
def test_tf_keras213_archive(tmp_path, keras_module, seed, layout):
    spec = random_spec(seed)
    tf_keras213_archive(tmp_path / "m.keras", spec, layout, functional=seed == 1)
    check_against_peers(load(tmp_path / "m.keras"), spec, keras3_peer(keras_module, spec), seed)


@pytest.mark.parametrize("seed", SEEDS[1:])
def test_keras3_json_with_weights_h5(tmp_path, keras_module, seed):
    """Keras 3's own to_json (DTypePolicy objects, batch_shape) and .weights.h5."""
    spec = random_spec(seed)
    for step in spec.steps:  # Keras 3 writes its own hard_sigmoid: keep to names it shares
        step.activation = "tanh" if step.activation == "hard_sigmoid" else step.activation
    model = keras3_peer(keras_module, spec)
    (tmp_path / "m.json").write_text(model.to_json())
    model.save_weights(tmp_path / "w.weights.h5")
    net = load(tmp_path / "m.json", weights=tmp_path / "w.weights.h5")
    check_against_peers(net, spec, model, seed)
    reloaded = load_keras_model(tmp_path / "m.json", weights=tmp_path / "w.weights.h5")
    check_against_peers(net, spec, reloaded, seed)


def test_keras2_layer_variants_read_alike(tmp_path, keras_module):
    """InputLayer with batch_input_shape / batch_shape / input_shape, input_dtype, old
    and new dtype policies, Dropout with rate or p: the same network."""
    spec = Spec(3, [Step("Dense", "relu", np.arange(12, dtype="f4").reshape(3, 4) / 10, np.ones(4, "f4")),
                    Step("Dropout"), Step("Dense", "linear", np.ones((4, 2), "f4"), None)])
    peer = keras3_peer(keras_module, spec)
    variants = [{"batch_input_shape": [None, 3]}, {"batch_shape": [None, 3]}, {"input_shape": [3]},
                {"batch_input_shape": [None, 3], "input_dtype": "float32"}]
    policies = ["float32", {"class_name": "Policy", "config": {"name": "float32"}},
                {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"},
                 "registered_name": None}]
    for index, (shape, policy) in enumerate(zip(variants, policies + policies[:1])):
        config = tf_keras2_json(spec)
        layers = config["config"]["layers"]
        layers[0]["config"] = {"name": "in", "dtype": "float32", "sparse": False, **shape}
        layers[2]["config"] = {"name": "dropout", "trainable": True, **({"p": 0.5} if index % 2 else {"rate": 0.5})}
        for entry in layers[1:]:
            entry["config"]["dtype"] = policy
        (tmp_path / f"m{index}.json").write_text(json.dumps(config))
        tf_keras2_weights(tmp_path / f"w{index}.h5", spec)
        check_against_peers(load(tmp_path / f"m{index}.json", weights=tmp_path / f"w{index}.h5"), spec, peer, index)


def test_keras2_hard_sigmoid_keeps_its_slope(tmp_path, keras_module):
    """Keras 2's hard_sigmoid is clip(0.2 x + 0.5), Keras 3's clip(x / 6 + 0.5): a file
    saved by Keras 2 keeps Keras 2's meaning, and the generated files say so."""
    spec = Spec(1, [Step("Dense", "hard_sigmoid", np.array([[2.0]], "f4"), np.array([0.5], "f4"))])
    keras22_h5(tmp_path / "m.h5", spec)
    net = load(tmp_path / "m.h5")
    assert evaluate(net, np.array([[1.0]]))[0, 0] == pytest.approx(0.2 * 2.5 + 0.5)
    assert any("Keras 2 hard_sigmoid" in note for note in net.notes)
    check_against_peers(net, spec, keras3_peer(keras_module, spec), 0)
    tf_keras213_archive(tmp_path / "m.keras", spec, "layers")
    from_archive = load(tmp_path / "m.keras")  # its metadata.json says 2.13.1
    assert from_archive.notes == net.notes and from_archive.layers[0].kernel == net.layers[0].kernel
    # Keras 3 would run a tf.keras 2.13 archive with its own hard_sigmoid: the peer is rebuilt
    check_against_peers(net, spec, load_keras_model(tmp_path / "m.keras"), 0)


def test_keras2_weights_of_renamed_layers_pair_by_order(tmp_path, keras_module):
    """Keras 2's load_weights pairs the file's layers with the model's in order (the
    names of a model built again differ); a file of another model is refused."""
    spec = random_spec(0)
    config = tf_keras2_json(spec)
    for entry in config["config"]["layers"][1:]:
        entry["config"]["name"] = "again_" + entry["config"]["name"]
    (tmp_path / "m.json").write_text(json.dumps(config))
    tf_keras2_weights(tmp_path / "w.h5", spec)
    check_against_peers(load(tmp_path / "m.json", weights=tmp_path / "w.h5"), spec, keras3_peer(keras_module, spec), 0)
    width = [s for s in spec.steps if s.kind == "Dense"][-1].kernel.shape[1]
    bigger = Spec(spec.n_inputs, spec.steps + [Step("Dense", "linear", np.ones((width, 1), "f4"))])
    tf_keras2_weights(tmp_path / "w2.h5", bigger)
    (tmp_path / "m2.json").write_text(json.dumps(tf_keras2_json(spec)))
    with pytest.raises(ModelFormatError, match="holds weights for layers the model does not have"):
        load(tmp_path / "m2.json", weights=tmp_path / "w2.h5")


@pytest.mark.parametrize("kind", ["list-config h5", "tf.keras 2 json"])
def test_load_keras_model_rebuilds_what_keras3_cannot_load(tmp_path, keras_module, kind):
    """Keras 3 refuses these files: the peer is rebuilt from the network read."""
    spec = random_spec(2)
    weights = None
    if kind == "list-config h5":
        model = tmp_path / "m.h5"
        keras22_h5(model, spec)
    else:
        model, weights = tmp_path / "m.json", tmp_path / "w.h5"
        model.write_text(json.dumps(tf_keras2_json(spec)))
        tf_keras2_weights(weights, spec)
    peer = load_keras_model(model, weights=weights)
    check_against_peers(load(model, weights=weights), spec, peer, 2)


# ------------------------------------------------------------------ tf.keras 2.13 checkpoint-path groups


def small_model(keras, layers, seed: int = 0):
    """A Keras 3 model with every weight drawn from a seeded generator (variances positive)."""
    model = keras.Sequential(layers) if isinstance(layers, list) else layers
    rng = np.random.default_rng(seed)
    for layer in (layer for layer in model.layers if type(layer).__name__ != "Normalization"):  # adapted
        layer.set_weights([np.abs(rng.normal(1.0, 0.3, w.shape)).astype("f4") if "variance" in v.path else
                           rng.normal(0.0, 0.6, w.shape).astype("f4")
                           for w, v in zip(layer.get_weights(), layer.weights)])
    return model


def assert_c_matches_keras(net, model, n: int = 200) -> None:
    """The float32 C of ``net`` against ``model.predict`` and the float64 reference,
    within the project's bound: 8 float32 ULPs of each output's reference magnitude
    (mlpcodegen.harness.verify)."""
    from mlpcodegen.harness.verify import verify

    report = verify(model, "c", "float32", n=n, domain=(-2, 2), network=net)
    assert report.ok and len(report.comparisons) == 4, report.table()


def as_tf_keras213(source, target, model, layout: str = "nested", edit=None) -> None:
    """The .keras archive Keras 3 wrote at ``source``, its weight groups moved where tf.keras
    2.13 put them (:func:`tf_keras213_groups`), ``edit(h5)`` applied last."""
    classes = [type(layer).__name__ for layer in model.layers]
    moves = zip(keras3_groups(classes), tf_keras213_groups(classes, [bool(layer.weights) for layer in model.layers]))
    with zipfile.ZipFile(source) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    blob = io.BytesIO()
    with h5py.File(io.BytesIO(files["model.weights.h5"]), "r") as old, h5py.File(blob, "w") as new:
        new.create_group("vars")
        for keras3, tf213 in moves:
            join = "/" if layout == "nested" else "\\"
            variables = new.create_group(f"_layer_checkpoint_dependencies{join}{tf213}").create_group("vars")
            for key, values in old[f"layers/{keras3}/vars"].items():
                variables.create_dataset(key, data=values[()])
        if edit is not None:
            edit(new)
    files["model.weights.h5"] = blob.getvalue()
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)


def checkpoint_model(keras, functional: bool = False):
    """Three Dense layers, a Dropout and a BatchNormalization between: tf.keras 2.13 stores
    dense, dropout, batch_normalization, dense_2, dense_4."""
    L = keras.layers
    layers = [L.Dense(4, activation="tanh", name="hidden"), L.Dropout(0.2, name="drop"),
              L.BatchNormalization(name="norm"), L.Dense(3, activation="elu", name="mid"),
              L.Dense(2, activation="softmax", name="out")]
    if not functional:
        return small_model(keras, [keras.Input((5,))] + layers, seed=4)
    x = inputs = keras.Input((5,))
    for layer in layers:
        x = layer(x)
    return small_model(keras, keras.Model(inputs, x), seed=4)


@pytest.mark.parametrize("layout", ["nested", "backslash"])
@pytest.mark.parametrize("functional", [False, True], ids=["sequential", "functional"])
def test_tf_keras213_checkpoint_groups_pair_in_order(tmp_path, keras_module, layout, functional):
    """tf.keras 2.13's numbering (dense, dense_2, dense_4) in either separator: converted,
    and the float32 C agrees with the model the archive was written from."""
    model = checkpoint_model(keras_module, functional)
    model.save(tmp_path / "k3.keras")
    as_tf_keras213(tmp_path / "k3.keras", tmp_path / "m.keras", model, layout)
    with zipfile.ZipFile(tmp_path / "m.keras") as archive, \
            h5py.File(io.BytesIO(archive.read("model.weights.h5"))) as h5:
        root = h5["_layer_checkpoint_dependencies"] if layout == "nested" else h5
        stored = sorted(name.split("\\")[-1] for name in root if name != "vars")
    assert stored == ["batch_normalization", "dense", "dense_2", "dense_4", "dropout"] + \
        (["input_layer"] if functional else [])
    net = load(tmp_path / "m.keras")
    assert net == load(model) and net.describe() == "5-4-3-2 (tanh, elu, softmax)"
    assert_c_matches_keras(net, model)


def checkpoint_edits() -> dict[str, tuple]:
    """name -> (edit of the rewritten weights file, what the one-line refusal says)."""
    prefix = "_layer_checkpoint_dependencies"

    def drop(h5):
        del h5[f"{prefix}/dense_4"]

    def extra(h5):
        h5.copy(h5[f"{prefix}/dense_4"], f"{prefix}/dense_6")

    def swapped(h5):
        h5.move(f"{prefix}/dense_2", f"{prefix}/tmp")
        h5.move(f"{prefix}/dense_4", f"{prefix}/dense_2")
        h5.move(f"{prefix}/tmp", f"{prefix}/dense_4")

    def stranger(h5):
        h5.copy(h5[f"{prefix}/dense_4"], f"{prefix}/conv2d")

    def both_separators(h5):
        h5.copy(h5[f"{prefix}/dense"], f"{prefix}\\dense")

    def both_layouts(h5):
        h5.copy(h5[f"{prefix}/dense"], "layers/dense")

    return {
        "a group missing": (drop, r"holds 2 group\(s\) of Dense weights under _layer_checkpoint_dependencies/ "
                                  r"\('dense', 'dense_2'\) for the model's 3 Dense layer\(s\) \('hidden', 'mid', "
                                  r"'out'\): cannot pair them unambiguously"),
        "a group too many": (extra, r"holds 4 group\(s\) of Dense weights .*'dense_6'.*cannot pair"),
        "shapes swapped": (swapped, r"_layer_checkpoint_dependencies/dense_2 holds arrays of shapes \(3, 2\), \(2,\), "
                                    r"which do not fit Dense layer 'mid' \(3 units, with bias\)"),
        "a group of no layer": (stranger, r"weights under _layer_checkpoint_dependencies/conv2d, which no layer of "
                                          r"the model takes"),
        "both separators": (both_separators, r"stores layer group '_layer_checkpoint_dependencies/dense' twice"),
        "both layouts": (both_layouts, r"both under layers/ \('dense'\) and under _layer_checkpoint_dependencies/"),
    }


def test_tf_keras213_checkpoint_groups_refuse_any_ambiguity(tmp_path, keras_module):
    model = checkpoint_model(keras_module)
    model.save(tmp_path / "k3.keras")
    for name, (edit, message) in checkpoint_edits().items():
        path = tmp_path / f"{name.replace(' ', '_')}.keras"
        as_tf_keras213(tmp_path / "k3.keras", path, model, edit=edit)
        with pytest.raises(ModelFormatError, match=message) as caught:
            load(path)
        assert "\n" not in str(caught.value) and str(caught.value).startswith(str(path)), name


def test_tf_keras213_archive_with_a_conv2d_names_the_layer(tmp_path, keras_module):
    """The Conv2D's group is no ambiguity: the layer itself is refused by name and class."""
    L = keras_module.layers
    model = keras_module.Sequential([keras_module.Input((6, 6, 1)), L.Conv2D(2, 3, name="conv"), L.Flatten(),
                                     L.Dense(2, name="d")])
    model.save(tmp_path / "k3.keras")
    as_tf_keras213(tmp_path / "k3.keras", tmp_path / "m.keras", model)
    with pytest.raises(UnsupportedError, match=r"m.keras: layer 'conv' of class Conv2D is not supported; "
                                               r"supported layers: InputLayer, Dense"):
        load(tmp_path / "m.keras")


def test_tf_keras213_weights_file_with_checkpoint_groups(tmp_path, keras_module):
    """model.save_weights of tf.keras 2.13 wrote the same groups into a .weights.h5."""
    model = checkpoint_model(keras_module)
    model.save(tmp_path / "k3.keras")
    as_tf_keras213(tmp_path / "k3.keras", tmp_path / "m.keras", model, "backslash")
    with zipfile.ZipFile(tmp_path / "m.keras") as archive:
        (tmp_path / "w.weights.h5").write_bytes(archive.read("model.weights.h5"))
    (tmp_path / "m.json").write_text(model.to_json())
    assert load(tmp_path / "m.json", weights=tmp_path / "w.weights.h5") == load(model)


REAL_TF213 = REPO / "tests" / "data" / "tf_keras_2_13"


def test_the_simulated_tf_keras213_numbering_is_the_real_one():
    """tf_keras213_groups (used to write the test archives) names the groups as tf.keras
    2.13.1 itself did, for a Sequential (no InputLayer in model.layers) and a functional model."""
    expected = {"sequential": (["Dense", "Dropout", "BatchNormalization", "Dense", "Dense"], [1, 0, 1, 1, 1]),
                "functional": (["InputLayer", "Dense", "Dense", "Dense"], [0, 1, 1, 1]),
                "flatten": (["Flatten", "Dense", "Dense"], [0, 1, 1])}
    for name, (classes, weighted) in expected.items():
        with zipfile.ZipFile(REAL_TF213 / f"{name}.keras") as archive, \
                h5py.File(io.BytesIO(archive.read("model.weights.h5"))) as h5:
            assert sorted(h5["_layer_checkpoint_dependencies"]) == sorted(tf_keras213_groups(classes, weighted))


@pytest.mark.parametrize("name, source", [("sequential", "sequential.keras"), ("functional", "functional.keras"),
                                          ("flatten", "flatten.keras"), ("flatten", "flatten.h5"),
                                          ("sequential", "sequential.json")])
def test_files_of_the_real_tf_keras_213(name, source):
    """Files tf.keras 2.13.1 wrote (tests/data/tf_keras_2_13/make_files.py): checkpoint
    groups dense, dense_2, dense_4 (and a Flatten with the input shape on it); the float32
    C agrees with tf.keras 2.13's own model.predict within 8 ULP of the reference magnitude."""
    from mlpcodegen import compile_c
    from mlpcodegen.harness.report import F32_ULP_BOUND, compare
    from mlpcodegen.core.reference import evaluate_magnitude

    with zipfile.ZipFile(REAL_TF213 / f"{name}.keras") as archive, \
            h5py.File(io.BytesIO(archive.read("model.weights.h5"))) as h5:
        assert {"dense", "dense_2"} <= set(h5["_layer_checkpoint_dependencies"]) and "layers" not in h5
    weights = REAL_TF213 / f"{name}.weights.h5" if source.endswith(".json") else None
    net = load(REAL_TF213 / source, weights=weights)
    with np.load(REAL_TF213 / f"{name}_io.npz", allow_pickle=False) as io_arrays:
        x, expected = io_arrays["x"].reshape(len(io_arrays["x"]), -1), io_arrays["y"]
    reference, magnitude = evaluate_magnitude(net, x)
    actual = np.asarray(compile_c(net, dtype="float32", name="real213")(x))
    for versus in (expected, reference):
        assert compare(actual, versus, magnitude, "float32")[2] <= F32_ULP_BOUND
    assert (name == "flatten") == (net.notes == ("input: (4, 5) per sample, flattened in row-major (C) order: "
                                                 "x.reshape(len(x), -1)",))


# ------------------------------------------------------------------ multi-axis inputs, flattened


def flatten_models(keras) -> dict[str, Callable[[], object]]:
    """Multi-axis inputs a Flatten (or a flat Reshape) turns into the Dense layers' vector."""
    L = keras.layers
    return {
        "(6, 7) rescaled per column": lambda: small_model(keras, [
            keras.Input((6, 7)), L.Rescaling(np.linspace(0.5, 2.0, 7), offset=0.25), L.Flatten(),
            L.Dense(5, activation="relu"), L.Dense(3, activation="softmax")], seed=1),
        "(4, 5, 1) leaky, prelu": lambda: small_model(keras, [
            keras.Input((4, 5, 1)), L.LeakyReLU(0.1), L.PReLU(shared_axes=[1]), L.Dropout(0.3), L.Flatten(),
            L.Dense(4, activation="tanh"), L.Dense(2)], seed=2),
        "(3, 4) reshaped": lambda: small_model(keras, [
            keras.Input((3, 4)), L.Reshape((-1,)), L.Dense(3, activation="sigmoid"), L.Dense(1)], seed=3),
        "(2, 3, 4) normalised per channel": lambda: small_model(keras, [
            keras.Input((2, 3, 4)), adapted(L.Normalization(), (2, 3, 4)), L.BatchNormalization(), L.Flatten(),
            L.Dense(3, activation="relu"), L.Dense(2)], seed=4),
    }


def adapted(layer, shape: tuple[int, ...]):
    layer.adapt(np.random.default_rng(6).normal(1.0, 2.0, (64, *shape)).astype("f4"))
    return layer


@pytest.mark.parametrize("case", ["(6, 7) rescaled per column", "(4, 5, 1) leaky, prelu", "(3, 4) reshaped",
                                  "(2, 3, 4) normalised per channel"])
def test_flatten_after_a_multi_axis_input(tmp_path, keras_module, case):
    """In memory, .keras and .h5 read alike; the C takes x.reshape(len(x), -1) (row-major)
    and agrees with model.predict on the unflattened samples (verify reshapes them)."""
    from mlpcodegen.harness.verify import verify

    model = flatten_models(keras_module)[case]()
    model.save(tmp_path / "m.keras")
    model.save(tmp_path / "m.h5")
    net = load(model)
    assert net == load(tmp_path / "m.keras") == load(tmp_path / "m.h5")
    shape = tuple(model.inputs[0].shape[1:])
    assert net.n_inputs == int(np.prod(shape))
    assert net.notes == (f"input: {shape} per sample, flattened in row-major (C) order: x.reshape(len(x), -1)",)
    x = np.random.default_rng(5).uniform(-2, 2, (16, *shape)).astype("f4")
    np.testing.assert_allclose(evaluate(net, x.reshape(len(x), -1)), model.predict(x, verbose=0), rtol=1e-5,
                               atol=1e-6)
    assert_c_matches_keras(net, model)
    assert verify(tmp_path / "m.keras", "c", "float32", n=100).ok  # the file peer reshapes too


def keras2_flatten_spec() -> Spec:
    rng = np.random.default_rng(7)
    return Spec(20, [Step("Dense", "tanh", rng.normal(0, 0.4, (20, 6)).astype("f4"), rng.normal(0, 0.3, 6).astype("f4")),
                     Step("Dense", "linear", rng.normal(0, 0.5, (6, 2)).astype("f4"), rng.normal(0, 0.3, 2).astype("f4"))])


@pytest.mark.parametrize("kind", ["keras 2.2 h5", "tf.keras 2 json"])
def test_keras2_flatten_with_the_input_shape(tmp_path, keras_module, kind):
    """Keras 2 put a multi-axis input shape on the Flatten layer itself (2.2: no
    InputLayer; tf.keras 2: an InputLayer 'flatten_input' too)."""
    spec = keras2_flatten_spec()
    flatten = {"class_name": "Flatten", "config": {"name": "flatten", "trainable": True, "dtype": "float32",
                                                   "batch_input_shape": [None, 4, 5], "data_format": "channels_last"}}
    if kind == "keras 2.2 h5":
        config = keras22_list_config(spec)
        for entry in config["config"]:
            entry["config"].pop("batch_input_shape", None)
        config["config"].insert(0, flatten)
        with h5py.File(tmp_path / "m.h5", "w") as f:
            f.attrs["keras_version"] = b"2.2.4"
            f.attrs["backend"] = b"tensorflow"
            f.attrs["model_config"] = json.dumps(config).encode("utf8")
            write_layer_groups(f.create_group("model_weights"), ["flatten"] + names(spec, first=1),
                               [None] + spec.steps, "2.2.4")
        net = load(tmp_path / "m.h5")
    else:
        config = tf_keras2_json(spec)
        layers = config["config"]["layers"]
        layers[0]["config"].update(name="flatten_input", batch_input_shape=[None, 4, 5])
        layers[1]["config"].pop("batch_input_shape")
        layers.insert(1, flatten)
        (tmp_path / "m.json").write_text(json.dumps(config))
        with h5py.File(tmp_path / "w.h5", "w") as f:
            write_layer_groups(f, ["flatten_input", "flatten"] + names(spec, first=0), [None, None] + spec.steps,
                               "2.13.1")
        net = load(tmp_path / "m.json", weights=tmp_path / "w.h5")
    L = keras_module.layers
    peer = keras_module.Sequential([keras_module.Input((4, 5)), L.Flatten(), L.Dense(6, activation="tanh"), L.Dense(2)])
    for layer, step in zip(peer.layers[1:], spec.steps):
        layer.set_weights(step.weights())
    assert net.n_inputs == 20 and net.notes[0].startswith("input: (4, 5) per sample")
    assert_c_matches_keras(net, peer)


# ------------------------------------------------------------------ corrupt files


def corrupt_cases(tmp_path) -> dict[str, tuple[list, str]]:
    """name -> (load arguments, what the error must say)."""
    spec = Spec(3, [Step("Dense", "tanh", np.ones((3, 4), "f4"), np.zeros(4, "f4")),
                    Step("Dense", "linear", np.ones((4, 2), "f4"), np.zeros(2, "f4"))])
    keras22_h5(tmp_path / "good.h5", spec)
    tf_keras213_archive(tmp_path / "good.keras", spec, "nested")
    (tmp_path / "m.json").write_text(json.dumps(tf_keras2_json(spec)))
    tf_keras2_weights(tmp_path / "w.h5", spec)
    data = (tmp_path / "good.keras").read_bytes()
    (tmp_path / "cut.keras").write_bytes(data[: len(data) // 2])
    (tmp_path / "garbage.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 8)
    (tmp_path / "broken.json").write_text(json.dumps(tf_keras2_json(spec))[:-40])
    with h5py.File(tmp_path / "missing.h5", "w") as f:
        write_layer_groups(f, ["dense"], spec.steps[:1], "2.13.1")
    wrong = Spec(3, [spec.steps[0], Step("Dense", "linear", np.ones((5, 2), "f4"), np.zeros(2, "f4"))])
    tf_keras2_weights(tmp_path / "wrong.h5", wrong)
    with h5py.File(tmp_path / "good.h5", "a") as f:
        del f["model_weights/dense_2"]
    tf_keras213_archive(tmp_path / "ckpt.keras", spec, "backslash")  # tf.keras 2.13: dense, dense_2
    with zipfile.ZipFile(tmp_path / "ckpt.keras") as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    blob = io.BytesIO(members["model.weights.h5"])
    with h5py.File(blob, "a") as f:
        del f["_layer_checkpoint_dependencies\\dense_2"]
    members["model.weights.h5"] = blob.getvalue()
    with zipfile.ZipFile(tmp_path / "ckpt.keras", "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with h5py.File(tmp_path / "k3missing.weights.h5", "w") as f:  # Keras 3 layout, dense_1 lost
        for i, values in enumerate(spec.steps[0].weights()):
            f[f"layers/dense/vars/{i}"] = values
    return {
        "truncated zip": ([tmp_path / "cut.keras"], "truncated or corrupt"),
        "garbage h5": ([tmp_path / "garbage.h5"], "truncated or corrupt"),
        "broken json": ([tmp_path / "broken.json", tmp_path / "w.h5"], "not valid JSON"),
        "json without weights": ([tmp_path / "m.json"], "--weights"),
        "weights missing a layer": ([tmp_path / "m.json", tmp_path / "missing.h5"],
                                    "no weights for Dense layer 'dense_1'"),
        "keras 3 weights missing a layer": ([tmp_path / "m.json", tmp_path / "k3missing.weights.h5"],
                                            "no weights for Dense layer 'dense_1' \\(group layers/dense_1 is"),
        "weights shape mismatch": ([tmp_path / "m.json", tmp_path / "wrong.h5"],
                                   "Dense layer 'dense_1': kernel shape \\(5, 2\\) takes 5 inputs"),
        "h5 missing a layer": ([tmp_path / "good.h5"], "Dense layer 'dense_2' should have 2 weight array"),
        "tf.keras 2.13 groups missing one": ([tmp_path / "ckpt.keras"],
                                             r"holds 1 group\(s\) of Dense weights under "
                                             r"_layer_checkpoint_dependencies/ \('dense'\) for the model's 2"),
        "weights file is garbage": ([tmp_path / "m.json", tmp_path / "garbage.h5"], "truncated or corrupt"),
        "weights for a .keras": ([tmp_path / "good.keras", tmp_path / "w.h5"], "architecture JSON"),
    }


def test_a_huge_declared_input_width_is_refused_before_anything_is_made(tmp_path):
    """An InputLayer declaring 2**27 features (then a Rescaling-like step) made the parent
    allocate gigabytes before refusing: the width is bounded like the weights."""
    from mlpcodegen.core.limits import LimitExceeded

    spec = Spec(1, [Step("Dense", "linear", np.ones((1, 1), "f4"))])
    config = tf_keras2_json(spec, functional=True)
    config["config"]["layers"][0]["config"]["batch_input_shape"] = [None, 2 ** 27]
    (tmp_path / "m.json").write_text(json.dumps(config))
    tf_keras2_weights(tmp_path / "w.h5", spec, functional=True)
    with pytest.raises(LimitExceeded, match=r"input layer 'input_1' declares 134,217,728 input features, more "
                                            r"than the 67,108,864 numbers read; .*\(--max-size MIB\)"):
        load(tmp_path / "m.json", weights=tmp_path / "w.h5")


def test_corrupt_files_give_clear_errors(tmp_path):
    for name, (args, message) in corrupt_cases(tmp_path).items():
        with pytest.raises(ModelFormatError, match=message):
            load(args[0], weights=args[1] if len(args) > 1 else None)


CLI_SCRIPT = r"""
import contextlib, io, json, sys
from mlpcodegen.app.cli import main
cases = json.loads(sys.argv[1])
out = {}
for name, args in cases.items():
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            code = main(args)
        except BaseException as exc:
            code = "escaped " + type(exc).__name__
    out[name] = [code, err.getvalue()]
out["frameworks"] = [m for m in ("tensorflow", "keras", "jax", "torch") if m in sys.modules]
print(json.dumps(out))
"""


def test_cli_json_with_weights_and_corrupt_files_never_import_tensorflow(tmp_path):
    """One process: a JSON + weights conversion writes the module; every corrupt file
    exits 1 with one line and no file; TensorFlow is never imported."""
    cases = {name: ["convert", str(args[0]), *(["--weights", str(args[1])] if len(args) > 1 else []),
                    "--target", "python", "-o", str(tmp_path / f"out_{i}.py")]
             for i, (name, (args, _)) in enumerate(corrupt_cases(tmp_path).items())}
    spec = random_spec(1)
    (tmp_path / "ok.json").write_text(json.dumps(tf_keras2_json(spec)))
    tf_keras2_weights(tmp_path / "ok.h5", spec)
    cases["ok"] = ["convert", str(tmp_path / "ok.json"), "--weights", str(tmp_path / "ok.h5"),
                   "--target", "python", "-o", str(tmp_path / "ok.py")]
    result = subprocess.run([sys.executable, "-c", CLI_SCRIPT, json.dumps(cases)], capture_output=True,
                            text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.splitlines()[-1])
    assert out.pop("frameworks") == []
    assert out.pop("ok")[0] == 0 and (tmp_path / "ok.py").read_text().startswith('# generated by mlpcodegen')
    for i, (name, (code, err)) in enumerate(out.items()):
        lines = err.strip().splitlines()
        assert code == 1 and len(lines) == 1 and lines[0].startswith("mlpcodegen convert: error: "), (name, err)
        assert "Traceback" not in err and not (tmp_path / f"out_{i}.py").exists(), name
