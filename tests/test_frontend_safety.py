"""Model files are untrusted input (issue 9: S2, S3, item 2 and the config/HDF5 tracebacks).

The files are built by hand with h5py and zipfile in Keras' two layouts (no TensorFlow),
so each hostile variant is one small change to a valid model.
"""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import zipfile

import h5py
import numpy as np
import pytest

from conftest import REPO
from mlpcodegen.core.errors import MlpCodegenError, ModelFormatError, UnsupportedError
from mlpcodegen.frontends import _sandbox
from mlpcodegen.frontends.keras import load
from mlpcodegen.core.limits import DEFAULT_LIMITS, LimitExceeded, ReadLimits

SECRET = np.array([1234.5678, 8765.4321, 1111.2222, 3333.4444], dtype="<f8")

# ------------------------------------------------------------------ model builders


def sequential_config(activation="tanh") -> dict:
    """A 3-4-2 Sequential model in Keras 3's config format."""
    def dense(name, units, act):
        return {"module": "keras.layers", "class_name": "Dense", "registered_name": None,
                "config": {"name": name, "trainable": True, "dtype": "float32", "units": units,
                           "activation": act, "use_bias": True, "kernel_initializer": None}}
    return {"module": "keras", "class_name": "Sequential", "registered_name": None, "config": {
        "name": "tiny", "layers": [
            {"module": "keras.layers", "class_name": "InputLayer", "registered_name": None,
             "config": {"batch_shape": [None, 3], "dtype": "float32", "sparse": False, "name": "input"}},
            dense("hidden", 4, activation), dense("out", 2, "linear")]}}


def functional_config() -> dict:
    config = sequential_config()
    config["class_name"] = "Functional"
    layers = config["config"]["layers"]
    for previous, entry in zip(layers, layers[1:]):
        entry["inbound_nodes"] = [{"args": [{"class_name": "__keras_tensor__", "config": {
            "shape": [None, 3], "dtype": "float32", "keras_history": [previous["config"]["name"], 0, 0]}}],
            "kwargs": {}}]
    layers[0]["inbound_nodes"] = []
    for entry in layers:
        entry["name"] = entry["config"]["name"]
    config["config"]["input_layers"] = [["input", 0, 0]]
    config["config"]["output_layers"] = [["out", 0, 0]]
    return config


def default_weights() -> dict[str, list[np.ndarray]]:
    rng = np.random.default_rng(0)
    return {"hidden": [rng.normal(size=(3, 4)).astype("f4"), rng.normal(size=4).astype("f4")],
            "out": [rng.normal(size=(4, 2)).astype("f4"), rng.normal(size=2).astype("f4")]}


def keras_bytes(config=None, weights=None, hook=None, extra_members=()) -> bytes:
    """A .keras archive: config.json + model.weights.h5 (groups layers/dense, dense_1)."""
    config = sequential_config() if config is None else config
    weights = default_weights() if weights is None else weights
    blob = io.BytesIO()
    with h5py.File(blob, "w") as h5:
        for group, arrays in zip(("dense", "dense_1"), weights.values()):
            variables = h5.create_group(f"layers/{group}/vars")
            for i, values in enumerate(arrays):
                variables[str(i)] = values
        if hook:
            hook(h5)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        archive.writestr("config.json", json.dumps(config) if not isinstance(config, bytes) else config)
        archive.writestr("model.weights.h5", blob.getvalue())
        for name, data in extra_members:
            archive.writestr(name, data)
    return out.getvalue()


def h5_bytes(config=None, weights=None, hook=None) -> bytes:
    """A legacy .h5 file in Keras' layout: model_config + model_weights/<layer>/..."""
    config = sequential_config() if config is None else config
    weights = default_weights() if weights is None else weights
    blob = io.BytesIO()
    with h5py.File(blob, "w") as h5:
        h5.attrs["model_config"] = config if isinstance(config, (str, bytes, int)) else json.dumps(config)
        root = h5.create_group("model_weights")
        for layer, arrays in weights.items():
            group = root.create_group(layer)
            names = [f"{layer}/{k}" for k in ("kernel", "bias")[: len(arrays)]]
            group.attrs["weight_names"] = names
            for name, values in zip(names, arrays):
                group[name] = values
        if hook:
            hook(h5)
    return blob.getvalue()


def write(tmp_path, data: bytes, name="m.keras"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def both(tmp_path, hook_keras=None, hook_h5=None, **kw):
    """The same model as .keras and as .h5, each with its HDF5 hook applied."""
    return [write(tmp_path, keras_bytes(hook=hook_keras, **kw), "m.keras"),
            write(tmp_path, h5_bytes(hook=hook_h5, **kw), "m.h5")]


# --------------------------------------------------------------- valid baseline


def test_hand_built_files_read_as_keras_writes_them(tmp_path):
    weights = default_weights()
    for path in both(tmp_path):
        net = load(path)
        assert net.describe() == "3-4-2 (tanh, linear)"
        np.testing.assert_array_equal(net.layers[0].kernel, weights["hidden"][0])
    assert load(write(tmp_path, keras_bytes(functional_config()), "f.keras")).describe() == "3-4-2 (tanh, linear)"


# ------------------------------------------------------------------ S2: links


def _replace(h5, path, maker):
    del h5[path]
    maker(h5, path)


@pytest.fixture
def secret_file(tmp_path):
    path = tmp_path / "secret.bin"
    path.write_bytes(SECRET.tobytes())
    return path


def test_external_raw_storage_is_refused_and_never_read(tmp_path, secret_file):
    """S2: a dataset whose values live in another file on disk."""
    def external(h5, path):
        h5.create_dataset(path, shape=(4,), dtype="<f8", external=[(str(secret_file), 0, SECRET.nbytes)])

    for model in both(tmp_path, hook_keras=lambda h5: _replace(h5, "layers/dense/vars/1", external),
                      hook_h5=lambda h5: _replace(h5, "model_weights/hidden/hidden/bias", external)):
        with pytest.raises(UnsupportedError, match=r"external raw storage") as info:
            load(model)
        assert "bias" in str(info.value) or "vars/1" in str(info.value)
        assert "1234.5678" not in str(info.value)


def test_external_and_soft_links_are_refused_before_being_followed(tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as h5:
        h5["secret"] = SECRET.astype("f4")
    links = {"external link": lambda h5, p: h5.__setitem__(p, h5py.ExternalLink(str(other), "/secret")),
             "SoftLink": lambda h5, p: h5.__setitem__(p, h5py.SoftLink("/model_weights/hidden/hidden/kernel"))}
    for what, maker in links.items():
        for model in both(tmp_path, hook_keras=lambda h5: _replace(h5, "layers/dense/vars/1", maker),
                          hook_h5=lambda h5: _replace(h5, "model_weights/hidden/hidden/bias", maker)):
            with pytest.raises(UnsupportedError, match=what):
                load(model)


def test_external_link_to_a_whole_group_is_refused(tmp_path, secret_file):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as h5:
        h5.create_group("vars")["0"] = SECRET.astype("f4")
    model = write(tmp_path, keras_bytes(hook=lambda h5: _replace(
        h5, "layers/dense", lambda f, p: f.__setitem__(p, h5py.ExternalLink(str(other), "/")))))
    with pytest.raises(UnsupportedError, match=r"external link .*other\.h5"):
        load(model)


def test_virtual_dataset_is_refused(tmp_path):
    def virtual(h5, path):
        h5["source"] = SECRET.astype("f4")
        layout = h5py.VirtualLayout(shape=(4,), dtype="f4")
        layout[:] = h5py.VirtualSource(h5["source"])
        h5.create_virtual_dataset(path, layout)

    for model in both(tmp_path, hook_keras=lambda h5: _replace(h5, "layers/dense/vars/1", virtual),
                      hook_h5=lambda h5: _replace(h5, "model_weights/hidden/hidden/bias", virtual)):
        with pytest.raises(UnsupportedError, match="virtual dataset"):
            load(model)


def test_user_defined_filter_is_refused_by_id(tmp_path):
    """An optional filter the library lacks is skipped when writing, so the file is
    readable here; a reader with the plugin installed would run it: refused by id."""
    def filtered(h5, path):
        plist = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        plist.set_chunk((4,))
        plist.set_filter(307, h5py.h5z.FLAG_OPTIONAL)
        space = h5py.h5s.create_simple((4,))
        dataset = h5py.h5d.create(h5.id, path.encode(), h5py.h5t.IEEE_F32LE, space, dcpl=plist)
        dataset.write(h5py.h5s.ALL, h5py.h5s.ALL, SECRET.astype("f4"))

    for model in both(tmp_path, hook_keras=lambda h5: _replace(h5, "layers/dense/vars/1", filtered),
                      hook_h5=lambda h5: _replace(h5, "model_weights/hidden/hidden/bias", filtered)):
        with pytest.raises(UnsupportedError, match="filter 307, a user-defined filter"):
            load(model)


def test_builtin_compression_is_read(tmp_path):
    def gzipped(h5, path):
        h5.create_dataset(path, data=default_weights()["hidden"][1], compression="gzip", shuffle=True,
                          fletcher32=True, chunks=(2,))

    for model in both(tmp_path, hook_keras=lambda h5: _replace(h5, "layers/dense/vars/1", gzipped),
                      hook_h5=lambda h5: _replace(h5, "model_weights/hidden/hidden/bias", gzipped)):
        np.testing.assert_array_equal(load(model, fold=False).layers[0].bias, default_weights()["hidden"][1])


# -------------------------------------------------------------- S3: bounded reading


def test_huge_declared_kernel_is_refused_before_allocation(tmp_path):
    """A 2 KiB file declaring a 4 x 2e8 kernel (NumPy tried 6 GiB)."""
    def huge(h5, path):
        h5.create_dataset(path, shape=(4, 200_000_000), dtype="f8")

    model = write(tmp_path, h5_bytes(hook=lambda h5: _replace(h5, "model_weights/out/out/kernel", huge)), "h.h5")
    assert model.stat().st_size < 20_000
    with pytest.raises(LimitExceeded, match=r"more than 67,108,864 numbers .*--max-size"):
        load(model)
    with pytest.raises(ModelFormatError, match="fill value"):  # within a raised limit: still not stored
        load(model, limits=ReadLimits.for_size(4096))


def test_fill_value_only_kernel_is_refused(tmp_path):
    """A 4 x 5e6 kernel of fill values took 67 s and 2 GiB."""
    def filled(h5, path):
        h5.create_dataset(path, shape=(4, 5_000_000), dtype="f4", chunks=(1, 1000), fillvalue=1.0)

    model = write(tmp_path, keras_bytes(hook=lambda h5: _replace(h5, "layers/dense_1/vars/0", filled)))
    started = time.monotonic()
    with pytest.raises(ModelFormatError, match="does not store them all"):
        load(model)
    assert time.monotonic() - started < 30  # a correctness bound, not a speed goal


def test_file_size_limit_names_the_limit(tmp_path):
    with pytest.raises(LimitExceeded, match=r"seed\.keras is [\d,]+ bytes, more than the limit of 1,024 bytes .*--max-size"):
        load(REPO / "generated/seed/seed.keras", limits=ReadLimits(max_file_bytes=1024))
    assert load(REPO / "generated/seed/seed.keras", limits=ReadLimits.for_size(1)).n_inputs == 1


def test_zip_bomb_member_is_stopped_at_the_limit(tmp_path):
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", b" " * (8 << 20) + json.dumps(sequential_config()).encode())
        archive.writestr("model.weights.h5", b"")
    model = write(tmp_path, bomb.getvalue())
    assert model.stat().st_size < 100_000
    with pytest.raises(LimitExceeded, match=r"config\.json inflates to more than 1\.0 MiB"):
        load(model, limits=ReadLimits(max_member_bytes=1 << 20))


def test_zip_member_lying_about_its_size_is_stopped(tmp_path):
    """The header says 100 bytes; the data inflates to 8 MiB: the read itself is capped."""
    data = bytearray(keras_bytes(config=b" " * (8 << 20) + json.dumps(sequential_config()).encode()))
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # local and central headers
        start = 0
        while (start := data.find(signature, start)) >= 0:
            name_length = int.from_bytes(data[start + offset + 4: start + offset + 6], "little")
            header = 30 if signature == b"PK\x03\x04" else 46
            if data[start + header: start + header + name_length] == b"config.json":
                data[start + offset: start + offset + 4] = (100).to_bytes(4, "little")
            start += 4
    with pytest.raises(ModelFormatError):
        load(write(tmp_path, bytes(data)), limits=ReadLimits(max_member_bytes=1 << 20))


def test_special_files_are_refused_without_blocking(tmp_path):
    """A FIFO given as the model hung forever; /dev/zero would never end."""
    fifo = tmp_path / "model.keras"
    os.mkfifo(fifo)
    code = ("from mlpcodegen.frontends.keras import load\nimport sys\n"
            "for path in sys.argv[1:]:\n"
            "    try: load(path)\n"
            "    except Exception as exc: print(type(exc).__name__, exc)\n")
    result = subprocess.run([sys.executable, "-c", code, str(fifo), "/dev/zero"], capture_output=True,
                            text=True, timeout=60, cwd=REPO)
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and all(line.startswith("ModelFormatError") for line in lines), result
    assert all("is not a regular file (a FIFO, socket or device)" in line for line in lines)


def test_functional_graph_with_a_cycle_is_refused(tmp_path):
    config = functional_config()
    layers = config["config"]["layers"]
    layers[1]["inbound_nodes"][0]["args"][0]["config"]["keras_history"][0] = "out"  # out -> hidden -> out
    config["config"]["output_layers"] = [["nowhere_else", 0, 0]]
    layers.append({"class_name": "Dense", "name": "nowhere_else", "config": {"name": "nowhere_else", "units": 1},
                   "inbound_nodes": [[["input", 0, 0, {}]]]})
    with pytest.raises(MlpCodegenError):
        load(write(tmp_path, keras_bytes(config)))
    config = functional_config()  # input -> hidden -> out -> hidden ...: no way out
    config["config"]["output_layers"] = [["input", 0, 0]]
    config["config"]["input_layers"] = [["hidden", 0, 0]]
    layers = config["config"]["layers"]
    layers[1]["inbound_nodes"][0]["args"][0]["config"]["keras_history"][0] = "out"
    layers[2]["inbound_nodes"][0]["args"][0]["config"]["keras_history"][0] = "hidden"
    with pytest.raises(ModelFormatError, match="cycle through layer 'hidden'"):
        load(write(tmp_path, keras_bytes(config)))


def test_complex_and_odd_weight_types_are_refused(tmp_path):
    cases = {"complex numbers": lambda h5, p: h5.__setitem__(p, SECRET.astype("c16")),
             "values of type": lambda h5, p: h5.__setitem__(p, np.array([b"a", b"b", b"c", b"d"]))}
    for what, maker in cases.items():
        for model in both(tmp_path, hook_keras=lambda h5: _replace(h5, "layers/dense/vars/1", maker),
                          hook_h5=lambda h5: _replace(h5, "model_weights/hidden/hidden/bias", maker)):
            with pytest.raises(UnsupportedError, match=what):
                load(model)
    int8 = lambda h5, p: h5.__setitem__(p, np.ones((3, 4), "i1"))  # noqa: E731
    model = write(tmp_path, keras_bytes(hook=lambda h5: _replace(h5, "layers/dense/vars/0", int8)))
    with pytest.raises(UnsupportedError, match=r"stores weight #0 as int8 \(a quantised model\?\)"):
        load(model)


def test_bfloat16_attribute_on_a_float32_dataset_is_refused(tmp_path):
    def mark(h5):
        h5["layers/dense/vars/0"].attrs["dtype"] = "bfloat16"

    with pytest.raises(ModelFormatError, match="marked bfloat16 but stores float32"):
        load(write(tmp_path, keras_bytes(hook=mark)))


# ----------------------------------------------------------------- the sandbox


def _run_modes():
    """The sandbox's ways of making a child, each forced (fork runs in a fresh
    interpreter in test_sandbox_in_a_fresh_process: this one has TensorFlow's threads)."""
    return ["server", None]


@pytest.mark.parametrize("mode", _run_modes())
def test_sandbox_limits_time_memory_and_crashes(monkeypatch, capfd, mode):
    monkeypatch.setattr(_sandbox, "_mode", lambda: mode)
    if mode is None:  # in-process: no time or memory limit, but errors still typed
        with pytest.raises(ModelFormatError, match=r"corrupt model file \(ValueError"):
            _sandbox.run(int, ("x",), DEFAULT_LIMITS, "f.h5")
        return
    started = time.monotonic()
    with pytest.raises(LimitExceeded, match=r"f\.h5: reading the file took longer than 1 s .*ReadLimits"):
        _sandbox.run(time.sleep, (60,), ReadLimits(seconds=1), "f.h5")
    assert time.monotonic() - started < 20
    with pytest.raises(LimitExceeded, match=r"more than the 256 MiB memory limit"):
        _sandbox.run(bytearray, (8 << 30,), ReadLimits(memory_bytes=256 << 20), "f.h5")
    with pytest.raises(ModelFormatError, match=r"killed by signal 6 .*corrupt"):
        _sandbox.run(os.abort, (), DEFAULT_LIMITS, "f.h5")
    with pytest.raises(ModelFormatError, match=r"corrupt model file \(ValueError"):
        _sandbox.run(int, ("x",), DEFAULT_LIMITS, "f.h5")
    assert "Traceback" not in capfd.readouterr().err


def test_sandbox_in_a_fresh_process():
    """What the command line does: fork (no TensorFlow loaded), limits enforced, nothing
    printed by the child, TensorFlow never imported."""
    code = r"""
import os, sys, time
from mlpcodegen.frontends import _sandbox
from mlpcodegen.frontends.keras import load
from mlpcodegen.core.limits import ReadLimits, DEFAULT_LIMITS
assert _sandbox._mode() == "fork", _sandbox._mode()
assert load("generated/seed/seed.keras").describe() == "1-3-2-1 (tanh, tanh, linear)"
for job, args, limits in ((time.sleep, (60,), ReadLimits(seconds=1)), (os.abort, (), DEFAULT_LIMITS),
                          (bytearray, (8 << 30,), ReadLimits(memory_bytes=256 << 20)), (int, ("x",), DEFAULT_LIMITS)):
    try:
        _sandbox.run(job, args, limits, "f.h5")
    except Exception as exc:
        print(type(exc).__name__, exc)
print([m for m in ("tensorflow", "keras") if m in sys.modules])
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    lines = result.stdout.splitlines()
    assert result.returncode == 0 and result.stderr == "", result
    assert lines[0].startswith("LimitExceeded f.h5: reading the file took longer than 1 s")
    assert lines[1].startswith("ModelFormatError f.h5: the file reader was killed by signal 6")
    assert lines[2].startswith("LimitExceeded f.h5: reading the file needed more than the 256 MiB memory limit")
    assert lines[3].startswith("ModelFormatError f.h5 is a truncated or corrupt model file (ValueError")
    assert lines[4] == "[]"


def test_inline_parse_gives_the_same_network(tmp_path):
    inline = ReadLimits(isolate=False)
    for path in both(tmp_path) + [REPO / "generated/seed/seed.keras"]:
        assert load(path, limits=inline) == load(path)


# ------------------------------------------------- item 2: refuse what is not understood


@pytest.mark.filterwarnings("ignore:The object being serialized includes a `lambda`")
def test_lambda_and_custom_activations_are_refused_by_name(keras_module, tmp_path):
    """Dense(2, activation=lambda x: 2.0 * x) was converted as linear."""
    keras = keras_module

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation=lambda x: 2.0 * x, name="odd")])
    model.save(tmp_path / "odd.keras")
    with pytest.raises(UnsupportedError, match="layer 'odd' uses a Python lambda .*use a Keras activation by name"):
        load(tmp_path / "odd.keras")
    # A module-level function is saved by name and module (a local one by its bare name,
    # which Keras itself then reads as its own activation of that name).
    config = sequential_config({"module": "__main__", "class_name": "function", "config": "relu",
                                "registered_name": "function"})
    with pytest.raises(UnsupportedError, match="layer 'hidden' uses custom function 'relu' from module '__main__'"):
        load(write(tmp_path, keras_bytes(config)))


def test_lora_dense_is_merged_from_either_file(keras_module, tmp_path):
    keras = keras_module
    from mlpcodegen.core.reference import evaluate

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, name="d")])
    model.layers[0].enable_lora(2)
    rng = np.random.default_rng(3)
    for weight in model.layers[0].weights:
        weight.assign(rng.normal(size=weight.shape).astype("float32"))
    x = rng.normal(size=(20, 3)).astype("float32")
    for name in ("lora.keras", "lora.h5"):
        model.save(tmp_path / name)
        np.testing.assert_allclose(evaluate(load(tmp_path / name), x), model.predict(x, verbose=0),
                                   rtol=1e-5, atol=1e-5)


@pytest.mark.filterwarnings("ignore:Layer InputLayer does not have a `quantize` method")
def test_int8_quantised_dense_is_refused(keras_module, tmp_path):
    keras = keras_module
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, name="q")])
    model.quantize("int8")
    model.save(tmp_path / "q.keras")
    with pytest.raises(UnsupportedError, match=r"Dense layer 'q' has (dtype policy|quantization_config)"):
        load(tmp_path / "q.keras")


def test_unknown_config_entries_are_refused_unless_unset(tmp_path):
    config = sequential_config()
    config["config"]["layers"][1]["config"]["some_new_switch"] = None
    assert load(write(tmp_path, keras_bytes(config))).describe() == "3-4-2 (tanh, linear)"
    config["config"]["layers"][1]["config"]["some_new_switch"] = 2
    with pytest.raises(UnsupportedError, match=r"Dense layer 'hidden' has config entry 'some_new_switch' "
                                               r"\(int 2\), which mlpcodegen does not understand"):
        load(write(tmp_path, keras_bytes(config)))


# --------------------------------------------- the tracebacks of issue 9, each clear


def _mutated(change):
    config = sequential_config()
    change(config)
    return config


def _set(path, value):
    def change(config):
        target = config
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return change


LAYERS = ("config", "layers")
CONFIG_CASES = {
    "config is a list": (lambda: [], r"model config is list \[\]"),
    "config is null": (lambda: None, "model config is null"),
    "config is a string": (lambda: "x", "model config is str 'x'"),
    "layer is a string": (_set(LAYERS + (1,), "dense"), r"layer #1 of the model config is str 'dense'"),
    "layer is a list": (_set(LAYERS + (1,), [1, 2]), r"layer #1 of the model config is list \[1, 2\]"),
    "batch_shape an int": (_set(LAYERS + (0, "config", "batch_shape"), 3), "'batch_shape' is int 3; expected a list"),
    "activation a list": (_set(LAYERS + (1, "config", "activation"), ["relu"]),
                          r"layer 'hidden': activation is list \['relu'\], not an activation name"),
    "missing class_name": (lambda c: c["config"]["layers"][1].pop("class_name"), "layer #1 .* no class_name"),
    "units a bool": (_set(LAYERS + (1, "config", "units"), True), "'units' is bool True; expected an integer"),
    "use_bias a string": (_set(LAYERS + (1, "config", "use_bias"), "no"), "'use_bias' is str 'no'"),
    "layer config a list": (_set(LAYERS + (1, "config"), []), r"has a config that is list \[\]"),
    "dtype policy int8": (_set(LAYERS + (1, "config", "dtype"), {"class_name": "QuantizedDTypePolicy",
                                                                 "config": {"mode": "int8"}}),
                          "dtype policy 'QuantizedDTypePolicy'"),
    "duplicate names": (_set(LAYERS + (2, "config", "name"), "hidden"), "duplicate name 'hidden'"),
}


@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_malformed_configs_are_named(tmp_path, case):
    change, message = CONFIG_CASES[case]
    text = json.dumps(change() if change.__code__.co_argcount == 0 else _mutated(change))
    for model in (write(tmp_path, keras_bytes(text.encode())), write(tmp_path, h5_bytes(text), "m.h5")):
        with pytest.raises(MlpCodegenError, match=message):
            load(model)


def test_batch_norm_epsilon_string_is_named(tmp_path):
    config = sequential_config()
    config["config"]["layers"].insert(2, {"class_name": "BatchNormalization", "config": {
        "name": "bn", "epsilon": "tiny"}})
    weights = default_weights()
    weights = {"hidden": weights["hidden"], "bn": [np.ones(4, "f4")] * 4, "out": weights["out"]}
    with pytest.raises(ModelFormatError, match="BatchNormalization layer 'bn': config entry 'epsilon' is str 'tiny'"):
        load(write(tmp_path, h5_bytes(config, weights), "m.h5"))


def test_functional_graph_errors_are_named(tmp_path):
    config = functional_config()
    config["config"]["layers"][2]["inbound_nodes"][0]["args"][0]["config"]["keras_history"][0] = "ghost"
    with pytest.raises(ModelFormatError, match="layer 'out' takes its input from 'ghost', which is not a layer"):
        load(write(tmp_path, keras_bytes(config)))
    config = functional_config()
    del config["config"]["layers"][2]["inbound_nodes"][0]["args"][0]["config"]["keras_history"]
    with pytest.raises(ModelFormatError, match="layer 'out': an input tensor has no keras_history"):
        load(write(tmp_path, keras_bytes(config)))
    config = functional_config()
    config["config"]["input_layers"] = [["ghost", 0, 0]]
    with pytest.raises(ModelFormatError, match="names layer 'ghost', which is not among its layers"):
        load(write(tmp_path, keras_bytes(config)))


def test_hdf5_structure_errors_are_named(tmp_path):
    def weight_group(h5):
        del h5["model_weights/hidden/hidden/kernel"]
        h5.create_group("model_weights/hidden/hidden/kernel")

    def weights_dataset(h5):
        del h5["model_weights"]
        h5["model_weights"] = np.zeros(3)

    cases = [(h5_bytes(hook=weight_group), "is a group, not an array"),
             (h5_bytes(config=7), "attribute model_config is a int64, not the model's JSON text"),
             (h5_bytes(hook=weights_dataset), "model_weights' is a dataset where a group was expected")]
    for data, message in cases:
        with pytest.raises(ModelFormatError, match=message):
            load(write(tmp_path, data, "m.h5"))


def test_surrogate_names_are_data(tmp_path):
    """A name the UTF-8 codec cannot encode (a byte-flipped heap gave UnicodeEncodeError)."""
    config = sequential_config()
    config["config"]["layers"][1]["config"]["name"] = "hid\udcffden"
    with pytest.raises(ModelFormatError, match=r"Dense layer 'hid\\udcffden' should have 2 weight array"):
        load(write(tmp_path, h5_bytes(json.dumps(config), {"out": default_weights()["out"]}), "m.h5"))


def test_deeply_nested_json_is_refused(tmp_path):
    deep = b"[" * 100_000 + b"]" * 100_000
    for model in (write(tmp_path, keras_bytes(config=deep)), write(tmp_path, h5_bytes(config=deep.decode()), "m.h5")):
        with pytest.raises(ModelFormatError, match="nests too deeply"):
            load(model)


def test_keras_itself_never_parses_a_refused_file(keras_module, tmp_path, secret_file):
    """verify/bench/demo also load the model with Keras, which would follow external storage."""
    from mlpcodegen.harness.keras_model import load_keras_model

    def external(h5, path):
        h5.create_dataset(path, shape=(4,), dtype="<f8", external=[(str(secret_file), 0, SECRET.nbytes)])

    model = write(tmp_path, keras_bytes(hook=lambda h5: _replace(h5, "layers/dense/vars/1", external)))
    with pytest.raises(UnsupportedError, match="external raw storage"):
        load_keras_model(model)
    assert load_keras_model(REPO / "generated/seed/seed.keras").count_params() > 0


def test_served_reads_resolve_relative_paths_in_the_callers_folder(monkeypatch, tmp_path):
    """The fork server keeps the folder it started in; a relative path given after the
    caller changed folder is still the caller's (it was "model file not found")."""
    import shutil
    from pathlib import Path

    import mlpcodegen

    monkeypatch.setattr(_sandbox, "_mode", lambda: "server")
    seed = Path(__file__).resolve().parent.parent / "generated" / "seed" / "seed.keras"
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    shutil.copy(seed, first / "m.keras")
    shutil.copy(seed, second / "n.keras")
    monkeypatch.chdir(first)
    net = mlpcodegen.load("m.keras")
    monkeypatch.chdir(second)
    assert mlpcodegen.load("n.keras").layers == net.layers


#: Calls that read a file, allowed outside the one safe opener (``_files.open_regular``):
#: module -> what each reads (none of them an input a user names).
_OWN_FILES = {
    "core/_files.py": "/proc/self/status (the umask); os.open is the opener itself",
    "app/cli.py": "the PNG this command just wrote to a temporary folder; os.devnull",
    "frontends/_sandbox.py": "os.devnull and /proc/self/statm",
    "frontends/_untrusted_h5.py": "archive members and HDF5 images already read into memory",
    "harness/bench_report.py": "/proc/cpuinfo",
    "harness/cortex.py": "gcc's own -fstack-usage files",
    "runtime/cache_key.py": "/proc/cpuinfo",
    "runtime/cffi_build.py": "the build cache's own libraries and stamps",
    "runtime/native.py": "the C templates shipped beside it (package data)",
    "runtime/cross.py": "the emulator's output file",
    "runtime/pymodule.py": "the module cache's own files",
    "harness/inputs.py": "np.load/np.loadtxt over bytes the opener read (io.BytesIO)",
    "backends/c_names.py": "the reserved-name data shipped beside it (package data)",
}


def test_every_input_file_is_opened_through_the_one_opener():
    """No module reads a file by itself (open, os.open, Path.read_*, np.load on a path,
    h5py.File on a path) except the listed ones, each reading only its own files."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "mlpcodegen"
    readers = {"open", "read_bytes", "read_text", "fromfile", "loadtxt", "File"}
    found = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "attr", getattr(node.func, "id", None))
                is_np_load = name == "load" and ast.unparse(node.func) == "np.load"
                if name in readers or is_np_load:
                    found.add(path.relative_to(root).as_posix())
    assert found <= set(_OWN_FILES), sorted(found - set(_OWN_FILES))
