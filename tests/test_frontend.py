import json
import re
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from conftest import REPO, build_model
from mlpcodegen.core.errors import ModelFormatError, UnsupportedError, ValidationError
from mlpcodegen.frontends.keras import load


@pytest.fixture(scope="module")
def saved(tmp_path_factory, keras_module):
    """One model with every layer kind this issue supports, saved both ways."""
    keras = keras_module
    folder = tmp_path_factory.mktemp("models")
    model = build_model([3, 5, 4, 2], ["relu", "linear", "softmax"], [True, False, True], seed=3)
    # Insert Dropout and a separate Activation to exercise those readers.
    layers = [keras.Input((3,))] + [model.layers[0], keras.layers.Dropout(0.5),
                                    model.layers[1], keras.layers.Activation("tanh"), model.layers[2]]
    model = keras.Sequential(layers, name="mixed")
    model.save(folder / "m.keras")
    model.save(folder / "m.h5")
    return model, folder


def test_in_memory_keras_and_h5_give_the_same_ir(saved):
    model, folder = saved
    from_memory = load(model)
    assert from_memory == load(folder / "m.keras") == load(str(folder / "m.h5"))
    assert from_memory.describe() == "3-5-4-2 (relu, tanh, softmax)"  # Activation fused into linear Dense
    assert from_memory.layers[1].bias is None
    assert from_memory.weight_dtype == "float32"
    x = np.random.default_rng(0).uniform(-1, 1, (50, 3)).astype(np.float32)
    from mlpcodegen.core.reference import evaluate
    np.testing.assert_allclose(evaluate(from_memory, x), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_activation_after_nonlinear_dense_stays_a_separate_step(keras_module, tmp_path):
    keras = keras_module
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3, activation="tanh"),
                              keras.layers.Activation("relu"), keras.layers.Dense(1)])
    model.save(tmp_path / "a.keras")
    net = load(tmp_path / "a.keras")
    assert [type(layer).__name__ for layer in net.layers] == ["Dense", "Activate", "Dense"]


def test_functional_chain_reads_like_sequential(keras_module, tmp_path):
    functional = build_model([4, 6, 3], ["tanh", "sigmoid"], [True, True], seed=5, functional=True)
    sequential = build_model([4, 6, 3], ["tanh", "sigmoid"], [True, True], seed=5)
    functional.save(tmp_path / "f.keras")
    functional.save(tmp_path / "f.h5")
    nets = [load(functional), load(tmp_path / "f.keras"), load(tmp_path / "f.h5")]
    for net in nets:
        assert [(l.kernel.tobytes(), l.activation) for l in net.layers] == \
               [(l.kernel.tobytes(), l.activation) for l in load(sequential).layers]


def test_unsupported_layer_is_named_with_class_and_supported_list(keras_module, tmp_path):
    keras = keras_module
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3),
                              keras.layers.Masking(name="mask"), keras.layers.Dense(1)])
    model.save(tmp_path / "u.keras")
    for source in (model, tmp_path / "u.keras"):
        with pytest.raises(UnsupportedError, match=r"layer 'mask' of class Masking is not "
                                                    r"supported; supported layers: .*InputLayer.*Dense"):
            load(source)


def test_unsupported_activation_is_named(keras_module, tmp_path):
    keras = keras_module
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3, activation="tanh", name="hid")])
    model.save(tmp_path / "a.keras")
    with zipfile.ZipFile(tmp_path / "a.keras") as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    files["config.json"] = files["config.json"].replace(b'"activation": "tanh"', b'"activation": "mystery"')
    with zipfile.ZipFile(tmp_path / "b.keras", "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    with pytest.raises(UnsupportedError, match=r"layer 'hid' uses activation 'mystery'.*supported activations: .*linear.*tanh"):
        load(tmp_path / "b.keras")


def test_branching_graph_is_rejected(keras_module, tmp_path):
    keras = keras_module
    inputs = keras.Input((3,))
    a = keras.layers.Dense(4, name="left")(inputs)
    b = keras.layers.Dense(4, name="right")(inputs)
    model = keras.Model(inputs, keras.layers.Add(name="join")([a, b]))
    model.save(tmp_path / "b.keras")
    for source in (model, tmp_path / "b.keras"):
        with pytest.raises(UnsupportedError, match="branches"):
            load(source)


def test_two_outputs_are_rejected(keras_module):
    keras = keras_module
    inputs = keras.Input((3,))
    model = keras.Model(inputs, [keras.layers.Dense(1)(inputs), keras.layers.Dense(2)(inputs)])
    with pytest.raises(UnsupportedError, match="1 inputs and 2 outputs"):
        load(model)


def test_a_layer_outside_a_dense_network_is_named_not_the_input_shape(keras_module, tmp_path, capsys):
    """Conv2D after a 4-D input: the refusal names the layer and its class and lists what
    is supported, whichever way the model comes (in memory, .keras, .h5, the CLI)."""
    from mlpcodegen.app.cli import main

    keras = keras_module
    L = keras.layers
    inputs = keras.Input((8, 8, 1))
    functional = keras.Model(inputs, L.Dense(1)(L.Flatten()(L.Conv2D(2, 3, name="conv")(inputs))))
    sequential = keras.Sequential([keras.Input((8, 8, 1)), L.Conv2D(2, 3, name="conv"), L.Flatten(), L.Dense(1)])
    sequential.save(tmp_path / "conv.keras")
    functional.save(tmp_path / "conv.h5")
    message = r"layer 'conv' of class Conv2D is not supported; supported layers: InputLayer, Dense, .*Flatten"
    for source in (sequential, functional, tmp_path / "conv.keras", tmp_path / "conv.h5"):
        with pytest.raises(UnsupportedError, match=message) as caught:
            load(source)
        assert "has shape" not in str(caught.value) and "(None, 8, 8, 1)" not in str(caught.value)
    assert main(["convert", str(tmp_path / "conv.keras"), "-o", str(tmp_path / "conv.c")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.search(message, err[0]) and not (tmp_path / "conv.c").exists()


def multi_axis_refusals(keras) -> dict[str, tuple[list, str]]:
    """name -> (layers, what the refusal says)."""
    L = keras.layers
    return {
        "Dense on a 3-D input": ([keras.Input((4, 2)), L.Dense(3, name="d")],
                                 r"Dense layer 'd' gets a \(batch, 4, 2\) input \(it would act on the last axis "
                                 r"alone\); .*add a Flatten layer before it \(layers that may come before the "
                                 r"Flatten: Activation, .*Rescaling"),
        "softmax before the Flatten": ([keras.Input((4, 2)), L.Activation("softmax", name="s"), L.Flatten(), L.Dense(1)],
                                       r"Activation layer 's' applies softmax over the last axis of a \(batch, 4, 2\) "
                                       r"input; only element-wise steps"),
        "LayerNormalization over a row": ([keras.Input((4, 2)), L.LayerNormalization(name="ln"), L.Flatten(),
                                           L.Dense(1)], r"LayerNormalization layer 'ln' gets a \(batch, 4, 2\) input"),
        "BatchNormalization over rows": ([keras.Input((4, 2)), L.BatchNormalization(axis=1, name="bn"), L.Flatten(),
                                          L.Dense(1)], r"BatchNormalization layer 'bn' normalises over axis 1 of a "
                                                       r"\(batch, 4, 2\) input; only the last axis"),
        "channels_first": ([keras.Input((4, 2)), L.Flatten(data_format="channels_first", name="f"), L.Dense(1)],
                           r"Flatten layer 'f' has data_format channels_first, which moves the second axis of its "
                           r"\(batch, 4, 2\) input last"),
        "a multi-axis output": ([keras.Input((3,)), L.Dense(6), L.Reshape((2, 3))],
                                r"the model's output has shape \(batch, 2, 3\); only a flat output"),
    }


@pytest.mark.parametrize("case", ["Dense on a 3-D input", "softmax before the Flatten", "LayerNormalization over a row",
                                  "BatchNormalization over rows", "channels_first", "a multi-axis output"])
def test_multi_axis_data_only_through_element_wise_steps_to_a_flatten(keras_module, case):
    layers, message = multi_axis_refusals(keras_module)[case]
    with pytest.raises(UnsupportedError, match=message):
        load(keras_module.Sequential(layers))


def test_nan_weights_name_the_layer(keras_module, tmp_path):
    model = build_model([2, 3, 1], ["tanh", "linear"], [True, True], seed=1)
    kernel, bias = model.layers[1].get_weights()
    kernel[2, 0] = np.nan
    model.layers[1].set_weights([kernel, bias])
    model.save(tmp_path / "nan.keras")
    with pytest.raises(ValidationError, match=r"layer 'dense_\d+' kernel has 1 non-finite value"):
        load(tmp_path / "nan.keras")


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ModelFormatError, match="model file not found"):
        load(tmp_path / "nope.keras")
    with pytest.raises(ModelFormatError, match="is a directory"):
        load(tmp_path)


def test_garbage_and_truncated_files(saved, tmp_path):
    _, folder = saved
    (tmp_path / "text.keras").write_text("not a model")
    with pytest.raises(ModelFormatError, match="neither a .keras archive nor an HDF5"):
        load(tmp_path / "text.keras")
    for name in ("m.keras", "m.h5"):
        data = (folder / name).read_bytes()
        for cut in (len(data) // 2, len(data) - 100):
            truncated = tmp_path / f"cut_{cut}_{name}"
            truncated.write_bytes(data[:cut])
            with pytest.raises(ModelFormatError, match="truncated or corrupt"):
                load(truncated)


def test_archive_without_weights_or_with_bad_config(saved, tmp_path):
    _, folder = saved
    with zipfile.ZipFile(folder / "m.keras") as archive:
        config = archive.read("config.json")
    with zipfile.ZipFile(tmp_path / "noweights.keras", "w") as archive:
        archive.writestr("config.json", config)
    with pytest.raises(ModelFormatError, match="missing .*model.weights.h5"):
        load(tmp_path / "noweights.keras")
    with zipfile.ZipFile(tmp_path / "badjson.keras", "w") as archive:
        archive.writestr("config.json", b"{nope")
        archive.writestr("model.weights.h5", b"")
    with pytest.raises(ModelFormatError, match="not valid JSON"):
        load(tmp_path / "badjson.keras")
    with zipfile.ZipFile(tmp_path / "notamodel.keras", "w") as archive:
        archive.writestr("config.json", json.dumps({"class_name": "Adam", "config": {}}))
        archive.writestr("model.weights.h5", b"")
    with pytest.raises(ModelFormatError):
        load(tmp_path / "notamodel.keras")


def test_weights_only_h5_is_explained(saved, tmp_path):
    model, _ = saved
    model.save_weights(tmp_path / "w.weights.h5")
    with pytest.raises(ModelFormatError, match="weights only"):
        load(tmp_path / "w.weights.h5")


def test_reading_a_file_does_not_import_tensorflow():
    code = (
        "import sys, time; t = time.perf_counter();"
        "from mlpcodegen.frontends.keras import load;"
        f"net = load({str(REPO / 'generated/seed/seed.keras')!r});"
        "assert net.describe() == '1-3-2-1 (tanh, tanh, linear)', net.describe();"
        "bad = [m for m in ('tensorflow', 'keras', 'jax', 'torch') if m in sys.modules];"
        "assert not bad, bad; print(time.perf_counter() - t)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert float(result.stdout) < 5.0  # generous: this is a correctness check, bench/ times it


def test_load_rejects_other_objects():
    with pytest.raises(ModelFormatError, match="cannot read a model from a int"):
        load(42)
