"""TFLite frontend and the int8 C (issue 25), against LiteRT on models made by TensorFlow's converter.

Tolerances: the int8 C is compared for equality (bit for bit) with LiteRT's reference kernels
(``OpResolverType.BUILTIN_REF``: the integer semantics TFLite Micro and CMSIS-NN share); a
float32 .tflite through the float C within 1e-5 absolute + 1e-5 relative of LiteRT (float32
sums in another order, libm vs LiteRT's tanh/exp).  Models are few and small here (a few
converter runs); bench/int8.py runs >= 20 random models on 10^4 inputs and writes bench/INT8.md.
"""
from __future__ import annotations

import re
import struct
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("ai_edge_litert")

from conftest import REPO, STRICT_FLAGS  # noqa: E402
from tflite_models import convert, keras_model, litert, operators, random_spec  # noqa: E402

from mlpcodegen.backends import emit, get_backend  # noqa: E402
from mlpcodegen.core.errors import ModelFormatError, UnsupportedError, ValidationError  # noqa: E402
from mlpcodegen.frontends import file_format, load  # noqa: E402
from mlpcodegen.frontends.tflite import parse  # noqa: E402
from mlpcodegen.core.quant import QParams, QuantizedNetwork, quantize_multiplier, run_int8  # noqa: E402
from mlpcodegen.runtime import compile_c  # noqa: E402

#: every operator the frontend reads, fused and alone (RELU6 after a Dense is fused into it)
RICH = [("dense", 6, "clip1"), ("alone", "relu"), ("dense", 5, None), ("alone", "relu6"), ("reshape",),
        ("dense", 4, "tanh"), ("alone", "clip1"), ("alone", "sigmoid"), ("dense", 3, "relu6"), ("dense", 3, None),
        ("alone", "softmax")]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """name -> .tflite bytes, all made by the converter from two Keras models."""
    rich = keras_model(5, RICH, seed=0)
    n_inputs, steps = random_spec(7)
    other = keras_model(n_inputs, steps, seed=7)
    return {"float": convert(rich, 5, int8=False), "int8 float I/O": convert(rich, 5),
            "int8 int8 I/O": convert(rich, 5, int_io=True), "per-tensor": convert(other, n_inputs, per_tensor=True)}


def _codes(n_inputs: int, rows: int, seed: int) -> np.ndarray:
    """Random int8 codes, every code on the first input, and the extremes."""
    codes = np.random.default_rng(seed).integers(-128, 128, (rows, n_inputs)).astype(np.int8)
    codes[:256, 0] = np.arange(-128, 128)
    codes[256:260] = [[-128], [127], [0], [-1]]
    return codes


def _floats(net, rows: int, seed: int) -> np.ndarray:
    """Random inputs over the calibrated range and past it, exact rounding ties of the input
    scale, signed zeros, tiny values, values beyond int32 codes, infinities and NaN."""
    scale = net.int8.input.scale
    x = np.random.default_rng(seed).uniform(-4, 4, (rows, net.n_inputs)).astype(np.float32)
    edge = np.array([0.0, -0.0, 1e-30, -1e-30, np.inf, -np.inf, np.nan, 1e30, -1e30, 2.0 ** 31 * scale,
                     -2.0 ** 31 * scale, 0.5 * scale, -0.5 * scale], dtype=np.float32)
    x[:len(edge)] = edge[:, None]
    x[len(edge):len(edge) + 64, 0] = (np.arange(-32, 32) + 0.5) * np.float32(scale)
    return x


def _c_int8(tmp_path, net, codes, name="m", rounding=None):
    """NAME_int8 built with the strict flags and UBSan (any undefined behaviour aborts), on ``codes``."""
    (tmp_path / f"{name}.c").write_text(emit(net, "c", dtype="int8", name=name, rounding=rounding))
    (tmp_path / f"{name}.h").write_text(get_backend("c").header(net, dtype="int8", name=name, rounding=rounding))
    m = net.n_outputs
    (tmp_path / "drive.c").write_text("\n".join([
        "#include <stdio.h>", f'#include "{name}.h"', "int main(void)", "{",
        f"    int8_t x[{net.n_inputs}], y[{m}];", "    unsigned k;",
        "    while (fread(x, sizeof x, 1, stdin) == 1) {", f"        {name}_int8(x, y);",
        f'        for (k = 0u; k < {m}u; ++k) printf("%d\\n", (int)y[k]);', "    }", "    return 0;", "}", ""]))
    flags = [f for f in STRICT_FLAGS if f != "-O2"]
    subprocess.run(["gcc", *flags, "-O1", "-fsanitize=undefined", "-fno-sanitize-recover=all",
                    str(tmp_path / f"{name}.c"), str(tmp_path / "drive.c"), "-o", str(tmp_path / name)],
                   check=True, cwd=tmp_path)
    run = subprocess.run([str(tmp_path / name)], input=np.asarray(codes, np.int8).tobytes(), capture_output=True,
                         check=True)
    return np.array(run.stdout.split(), dtype=np.int64).reshape(len(codes), m)


# ------------------------------------------------------------------ reading


def test_read_by_content_without_tensorflow(models, tmp_path):
    path = tmp_path / "model.bin"  # no .tflite extension: found by content
    path.write_bytes(models["int8 float I/O"])
    assert file_format(path).name == "tflite"
    code = ("import sys; from mlpcodegen.frontends import load; net = load(sys.argv[1]); "
            "assert 'tensorflow' not in sys.modules and 'ai_edge_litert' not in sys.modules; print(net.describe())")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, cwd=REPO,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, check=True)
    assert out.stdout.strip() == "5-6-5-4-3-3 (hard_tanh, relu, relu6, tanh, hard_tanh, sigmoid, relu6, softmax)"
    net = load(path)
    assert isinstance(net, QuantizedNetwork) and net.int8.float_input and net.int8.float_output
    kinds = [type(layer).__name__ for layer in net.int8.layers]
    assert kinds == ["QDense", "QRelu", "QDense", "QDense", "QTable", "QRelu", "QTable", "QDense", "QDense",
                     "QSoftmax"]
    assert {"RELU", "RELU_N1_TO_1", "LOGISTIC", "TANH", "SOFTMAX", "QUANTIZE", "DEQUANTIZE"} <= \
        set(operators(models["int8 float I/O"]))
    assert not isinstance(load(models["float"]), QuantizedNetwork)


def test_quantize_multiplier_as_litert():
    assert quantize_multiplier(0.0) == (0, 0)
    assert quantize_multiplier(0.5) == (1 << 30, 0)
    assert quantize_multiplier(1.0) == (1 << 30, 1)
    assert quantize_multiplier(1.0 - 2.0 ** -40) == (1 << 30, 1)  # the mantissa rounds up to 2^31: halved
    assert quantize_multiplier(2.0 ** -40) == (0, 0)  # below 2^-31: flushed
    assert quantize_multiplier(0.0012345) == (1357347104, -9)
    with pytest.raises(ValidationError):
        QParams(0.0, 0)
    with pytest.raises(ValidationError):
        QParams(0.1, 200)


# ------------------------------------------------------------------ int8 bit for bit


def test_int8_c_bit_exact_with_litert_reference(models, tmp_path):
    """The integer entry point (strict flags, UBSan) equals LiteRT's reference kernels and the
    NumPy mirror on 4000 rows: random codes, every code on input 0, the extremes."""
    for key in ("int8 int8 I/O", "per-tensor"):
        net = load(models[key])
        codes = _codes(net.n_inputs, 4000, seed=len(key))
        mine = _c_int8(tmp_path, net, codes)
        assert (mine == run_int8(net.int8, codes)).all(), key
        if key == "int8 int8 I/O":
            expected = litert(models[key], codes)
        else:  # a float-I/O model: LiteRT's int8 core is the same once the input is quantised
            expected = net.int8.output.quantize(litert(models[key], net.int8.input.dequantize(codes)))
        assert (mine == expected).all(), (key, int((mine != expected).any(axis=1).sum()))


def test_float_wrapper_bit_exact_with_litert(models):
    """compile_c(load(m.tflite), dtype="int8")(X) is LiteRT's float output bit for bit: random
    rows, rounding ties, zeros, values past int32 codes, infinities, NaN."""
    for key in ("int8 float I/O", "per-tensor"):
        net = load(models[key])
        x = _floats(net, 10_000, seed=3)
        mine = compile_c(net, dtype="int8")(x)
        expected = litert(models[key], x)
        assert mine.dtype == np.float32
        assert np.array_equal(mine.view(np.int32), expected.view(np.int32)), \
            (key, int((mine != expected).any(axis=1).sum()))


def test_bit_exact_on_cortex_m_cores_under_qemu(models, tmp_path):
    """The same C cross-compiled (arm-none-eabi-gcc -Os) on M0+ (no FPU: soft-float QUANTIZE)
    and M4F under QEMU: LiteRT's float outputs bit for bit, edge values included."""
    from mlpcodegen.harness.cortex import Options, run_on_core

    net = load(models["int8 float I/O"])
    x = _floats(net, 160, seed=11)
    expected = litert(models["int8 float I/O"], x)
    for core in ("m0plus", "m4f"):
        run = run_on_core(net, x, core, Options(dtype="int8", name="predict"))
        assert np.array_equal(run.outputs.view(np.int32), expected.view(np.int32)), core
        assert run.instructions > 0
    # 42 inputs, 26 units: the DSP path's four-row blocks, its word loop and tails (M4F), pairs (M0+)
    wide = load(models["per-tensor"])
    x = _floats(wide, 96, seed=12)
    expected = litert(models["per-tensor"], x)
    for core in ("m0plus", "m4f"):
        run = run_on_core(wide, x, core, Options(dtype="int8", name="predict"))
        assert np.array_equal(run.outputs.view(np.int32), expected.view(np.int32)), core
    # `size --dtype int8` reads the .tflite and cross-compiles the int8 C
    path = tmp_path / "rich.tflite"
    path.write_bytes(models["int8 float I/O"])
    result = subprocess.run([sys.executable, "-m", "mlpcodegen", "size", str(path), "--dtype", "int8"],
                            capture_output=True, text=True, cwd=REPO, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0 and "int8" in result.stdout and "m0plus" in result.stdout, result.stderr[-500:]


def test_int8_source_strict_deterministic_and_stated(models, tmp_path):
    net = load(models["int8 float I/O"])
    source = emit(net, "c", dtype="int8", name="net")
    assert source == emit(load(models["int8 float I/O"]), "c", dtype="int8", name="net")
    assert source.startswith("/* generated by mlpcodegen — do not edit")
    assert "Stack, at most (bytes): net_int8" in source and "float" not in source.split("void net_int8(const int8_t")[-1].split("/* LiteRT's QUANTIZE")[0]
    (tmp_path / "net.c").write_text(source)
    (tmp_path / "net.h").write_text(get_backend("c").header(net, dtype="int8", name="net"))
    subprocess.run(["gcc", *STRICT_FLAGS, "-c", "net.c", "-o", "net.o"], check=True, cwd=tmp_path)
    from mlpcodegen.backends.c_int8 import stack_bytes

    stated = stack_bytes(net, "int8")
    for compiler, flags in (("gcc", ["-O0"]), ("arm-none-eabi-gcc", ["-O0", "-mthumb", "-mcpu=cortex-m0plus"]),
                            ("arm-none-eabi-gcc", ["-O0", "-mthumb", "-mcpu=cortex-m4"])):  # M4: the DSP path
        subprocess.run([compiler, "-std=c99", *flags, "-fstack-usage", "-c", "net.c", "-o", "su.o"], check=True,
                       cwd=tmp_path)
        frames = {line.split()[0].rsplit(":", 1)[-1]: int(line.split()[1])
                  for line in (tmp_path / "su.su").read_text().splitlines()}
        assert sum(v for k, v in frames.items() if k != "net") <= stated["int8"], (compiler, frames, stated)
        assert sum(frames.values()) <= stated["one"], (compiler, frames, stated)
    subprocess.run(["g++", "-std=c++11", *STRICT_FLAGS[1:], "-x", "c++", "-fsyntax-only", "net.c"], check=True,
                   cwd=tmp_path)


# ------------------------------------------------------------------ float models


def test_float_tflite_matches_litert_on_every_float_target(models):
    net = load(models["float"])
    x = np.random.default_rng(5).uniform(-3, 3, (2000, net.n_inputs)).astype(np.float32)
    expected = litert(models["float"], x, "AUTO")
    for dtype in ("float32", "float64"):
        got = compile_c(net, dtype=dtype)(x.astype(dtype))
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5, err_msg=dtype)


#: Keras activations the converter writes as operators of their own (float models):
#: name -> (the Keras activation, the operator expected in the file)
OWN_OPERATORS = {"leaky_relu": ("leaky_relu", "LEAKY_RELU"), "elu": ("elu", "ELU"), "gelu": ("gelu", "GELU"),
                 "gelu_tanh": (lambda t: __import__("keras").activations.gelu(t, approximate=True), "GELU"),
                 "hard_silu": ("hard_silu", "HARD_SWISH"), "swish": ("swish", "MUL"),
                 "exponential": ("exponential", "EXP")}


@pytest.mark.parametrize("name", list(OWN_OPERATORS))
def test_float_activations_written_as_their_own_operators(name):
    """Dense layers with these activations, through TFLiteConverter (float32): LEAKY_RELU
    (its alpha), ELU, GELU (exact and tanh), HARD_SWISH, EXP and swish as LOGISTIC then
    MUL(x, LOGISTIC(x)); the float C within 1e-5 of LiteRT."""
    import keras

    activation, operator = OWN_OPERATORS[name]
    keras.utils.set_random_seed(11)
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(7, activation=activation)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3, activation=activation)(hidden))
    data = convert(model, 4, int8=False)
    assert operator in _operators(data)
    net = load(data)
    x = np.random.default_rng(6).uniform(-3, 3, (500, 4)).astype(np.float32)
    np.testing.assert_allclose(compile_c(net, dtype="float32")(x), litert(data, x, "AUTO"), rtol=1e-5, atol=1e-5)


def _operators(model: bytes) -> list[str]:
    """The operator names LiteRT's default resolver sees (its reference kernels lack ELU)."""
    from ai_edge_litert.interpreter import Interpreter

    return [op["op_name"] for op in Interpreter(model_content=model)._get_ops_details()]


def _litert_shaped(model: bytes, x: np.ndarray, sample: tuple, resolver: str = "BUILTIN_REF") -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_content=model, experimental_op_resolver_type=getattr(OpResolverType, resolver))
    given, taken = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    interpreter.resize_tensor_input(given["index"], (len(x), *sample))
    interpreter.allocate_tensors()
    interpreter.set_tensor(given["index"], x.reshape(len(x), *sample).astype(given["dtype"]))
    interpreter.invoke()
    return interpreter.get_tensor(taken["index"]).reshape(len(x), -1)


def test_keras_layers_the_converter_writes_as_operators():
    """PReLU (PRELU with one alpha per unit), Reshape then Flatten (the converter leaves a
    RESHAPE only a SHAPE reads, and reshapes the input itself), 2 - x (SUB of the value from a
    constant: folded), a log_softmax output (LOG_SOFTMAX): the float C within 1e-5 of LiteRT."""
    import keras

    keras.utils.set_random_seed(13)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Reshape((2, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(5), keras.layers.PReLU(alpha_initializer="random_uniform"),
                              keras.layers.Lambda(lambda t: 2.0 - t), keras.layers.Dense(3, activation="log_softmax")])
    data = convert(model, 6, int8=False)
    assert {"PRELU", "LOG_SOFTMAX", "SHAPE", "SUB"} <= set(_operators(data))
    net = load(data)
    assert net.describe() == "6-5-3 (prelu, log_softmax)"
    x = np.random.default_rng(9).uniform(-3, 3, (500, 6)).astype(np.float32)
    np.testing.assert_allclose(compile_c(net, dtype="float32")(x), litert(data, x, "AUTO"), rtol=1e-5, atol=1e-5)


def test_relu_with_max_value_as_minimum_then_relu():
    """Keras' ReLU(max_value=3), which the converter writes as MINIMUM(x, 3) then RELU: a clip;
    inputs reach both bends; in an int8 model MINIMUM is refused by name."""
    import keras

    keras.utils.set_random_seed(14)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(6), keras.layers.ReLU(max_value=3.0),
                              keras.layers.Dense(2)])
    model.layers[0].set_weights([w * 4 for w in model.layers[0].get_weights()])
    data = convert(model, 4, int8=False)
    assert "MINIMUM" in _operators(data)
    x = np.random.default_rng(10).uniform(-3, 3, (500, 4)).astype(np.float32)
    net = load(data)
    np.testing.assert_allclose(compile_c(net, dtype="float32")(x), litert(data, x, "AUTO"), rtol=1e-5, atol=1e-5)
    with pytest.raises(UnsupportedError, match=r"MINIMUM .*: is read in float32 models only"):
        load(convert(model, 4))


def test_normalization_and_flatten_of_a_dynamic_batch():
    """Keras' Normalization (SUB, MUL by constants: folded into the first Dense) on an
    Input((1, 4)), then Flatten, which the converter writes with a dynamic batch as
    RESHAPE(x, PACK(STRIDED_SLICE(SHAPE(x)), -1)): the float C within 1e-5 of LiteRT; the
    int8 model (no Normalization: SUB has no int8 kernel here, and is refused by name) bit for
    bit LiteRT's reference kernels."""
    import keras

    keras.utils.set_random_seed(12)
    norm = keras.layers.Normalization()
    norm.adapt(np.random.default_rng(1).normal(2.0, 3.0, (64, 1, 4)).astype(np.float32))
    inputs = keras.Input((1, 4))
    flat = keras.layers.Flatten()(norm(inputs))
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Dense(6, activation="tanh")(flat)))
    data = convert(model, 4, int8=False)
    assert {"SHAPE", "STRIDED_SLICE", "PACK", "RESHAPE", "SUB", "MUL"} <= set(_operators(data))
    net = load(data)
    assert net.describe() == "4-6-3 (tanh, linear)"
    x = np.random.default_rng(7).uniform(-8, 12, (500, 4)).astype(np.float32)
    np.testing.assert_allclose(compile_c(net, dtype="float32")(x), _litert_shaped(data, x, (1, 4), "AUTO"),
                               rtol=1e-5, atol=1e-5)
    with pytest.raises(UnsupportedError, match=r"SUB .*: is read in float32 models only"):
        load(convert(model, (1, 4)))
    plain = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Dense(6, activation="tanh")(
        keras.layers.Flatten()(inputs))))
    quantised = convert(plain, (1, 4))
    net = load(quantised)
    x = np.random.default_rng(8).uniform(-3, 3, (2000, 4)).astype(np.float32)
    mine, expected = compile_c(net, dtype="int8")(x), _litert_shaped(quantised, x, (1, 4))
    assert np.array_equal(mine.view(np.int32), expected.view(np.int32))


# ------------------------------------------------------------------ quantising a float model


def test_post_training_quantisation_as_accurate_as_the_converter(tmp_path):
    """calibrate(keras float network, rows) against TFLiteConverter's full-integer model made
    from the same rows: weights, biases and zero points the same, scales within an ULP (the
    converter's float32 calibration sums in another order), and on 4000 test rows the same
    argmax agreement and a max error within 1.1x of the converter's (measured: equal)."""
    from mlpcodegen.core.ptq import calibrate
    from mlpcodegen.core.reference import evaluate

    n = 6
    model = keras_model(n, [("dense", 16, "relu"), ("dense", 12, "tanh"), ("dense", 8, "sigmoid"), ("dense", 4, None),
                            ("alone", "softmax")], seed=3)
    converted = load(convert(model, n, seed=5))
    rows = np.random.default_rng(5).uniform(-2, 2, (200, n)).astype(np.float32)  # the converter's rows
    model.save(tmp_path / "m.keras")
    float_net = load(tmp_path / "m.keras")
    ours = calibrate(float_net, rows)
    for mine, theirs in zip(ours.int8.layers, converted.int8.layers, strict=True):
        assert type(mine) is type(theirs) and mine.input.zero_point == theirs.input.zero_point
        assert abs(mine.input.scale - theirs.input.scale) <= 2 * np.spacing(np.float32(theirs.input.scale))
        if hasattr(mine, "weights"):
            assert (mine.weights == theirs.weights).all() and np.abs(mine.bias - theirs.bias.astype(np.int64)).max() <= 1
    x = np.random.default_rng(9).uniform(-2, 2, (4000, n)).astype(np.float32)
    exact = evaluate(float_net, x)
    mine_y = compile_c(ours, dtype="int8")(x)
    theirs_y = compile_c(converted, dtype="int8")(x)
    mine_err, theirs_err = np.abs(mine_y - exact).max(), np.abs(theirs_y - exact).max()
    assert mine_err <= 1.1 * theirs_err, (mine_err, theirs_err)
    assert (mine_y.argmax(1) == exact.argmax(1)).mean() >= (theirs_y.argmax(1) == exact.argmax(1)).mean()
    with pytest.raises(ValidationError):
        calibrate(float_net, rows[:, :3])


# ------------------------------------------------------------------ refusals


def test_unsupported_operator_refused_by_name(tmp_path):
    import keras

    keras.utils.set_random_seed(1)
    inputs = keras.Input((3,))
    outputs = keras.layers.Lambda(lambda t: keras.ops.sin(t))(keras.layers.Dense(2)(inputs))
    data = convert(keras.Model(inputs, outputs), 3, int8=False)
    with pytest.raises(UnsupportedError, match=r"operator 1 SIN \(output .*\): is not supported\. supported: "
                                               r"FULLY_CONNECTED"):
        parse(data, "m.tflite")
    path = tmp_path / "m.tflite"
    path.write_bytes(data)
    out = tmp_path / "m.c"
    result = subprocess.run([sys.executable, "-m", "mlpcodegen", "convert", str(path), "-o", str(out)],
                            capture_output=True, text=True, cwd=REPO, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 1 and "SIN" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_weights_left_as_resource_variables_are_refused_with_the_way_out():
    """from_concrete_functions on a Keras 3 model keeps the weights as resource variables
    (VAR_HANDLE, READ_VARIABLE, CALL_ONCE): refused by name, saying how to convert instead."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(2)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(1)])
    function = tf.function(lambda x: model(x)).get_concrete_function(tf.TensorSpec((None, 3), tf.float32))
    data = tf.lite.TFLiteConverter.from_concrete_functions([function], model).convert()
    with pytest.raises(UnsupportedError, match=r"operator 0 (VAR_HANDLE|CALL_ONCE) .*: is not supported \(the "
                                               r"weights were left as resource variables.*from_keras_model"):
        parse(data, "m.tflite")


def test_names_from_the_file_are_inert_text(models, tmp_path):
    """Tensor names patched (same length) into C comment closers, newlines and directives:
    the int8 C still compiles strictly and holds none of them raw."""
    data = models["int8 float I/O"]
    name = re.search(rb"\w+/\w+/MatMul", data).group(0)  # Keras numbers its names per process
    payload = (b'*/\n#error x\n"' + b"x" * len(name))[:len(name)]
    net = load(data.replace(name, payload))
    source = emit(net, "c", dtype="int8", name="m")
    assert "<U+002A>/<U+000A><U+0023>error" in source  # the name is there, inert
    assert not any(line.lstrip().startswith("#error") for line in source.splitlines())
    (tmp_path / "m.c").write_text(source)
    subprocess.run(["gcc", *STRICT_FLAGS, "-c", "m.c", "-o", "m.o"], check=True, cwd=tmp_path)


def test_float_model_is_not_int8(models):
    with pytest.raises(ValidationError, match="no int8 quantisation"):
        emit(load(models["float"]), "c", dtype="int8")


def _patched(data: bytes, position: int, value: int) -> bytes:
    blob = bytearray(data)
    struct.pack_into("<I", blob, position, value)
    return bytes(blob)


def test_forged_offsets_and_lengths_are_one_line_errors(models):
    """Forged offsets and counts (the flatbuffers runtime checks none): a ModelFormatError,
    never an IndexError, a struct.error, a hang or a giant allocation."""
    data = models["int8 float I/O"]
    cases = [data[:7], data[:64], _patched(data, 0, 0xFFFFFFF0), _patched(data, 0, len(data) - 2)]
    root = struct.unpack_from("<I", data, 0)[0]
    cases += [_patched(data, root, value) for value in (0x7FFFFFFF, 0x80000000, 1, root + 4)]
    rng = np.random.default_rng(0)
    for position in rng.choice(np.arange(8, len(data) - 4, 4), 60, replace=False):
        for value in (0xFFFFFFFF, 0x7FFFFFFF, len(data)):
            cases.append(_patched(data, int(position), value))
    outcomes = {}
    for case in cases:
        try:
            parse(case, "forged.tflite")
            kind = "ok"
        except (ModelFormatError, UnsupportedError, ValidationError) as exc:
            assert "\n" not in str(exc)
            kind = type(exc).__name__
        outcomes[kind] = outcomes.get(kind, 0) + 1
    assert outcomes.get("ModelFormatError", 0) >= 20, outcomes


# ------------------------------------------------------------------ command line


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "mlpcodegen", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd or REPO, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})


def test_cli_int8_verify_convert_calibrate(models, tmp_path):
    """verify --dtype int8 compares with LiteRT's reference kernels bit for bit (host and qemu
    M4F); convert --calibrate quantises a float model; --domain and --calibrate misuses refused."""
    for key in ("int8 int8 I/O", "int8 float I/O"):
        (tmp_path / "m.tflite").write_bytes(models[key])
        done = _cli("verify", tmp_path / "m.tflite", "--dtype", "int8", "-n", "3000", "--domain", "-3", "3")
        assert done.returncode == 0 and re.search(r"vs LiteRT \(reference kernels\) +0 .*bit-identical +ok",
                                                  done.stdout), (key, done.stdout, done.stderr[-300:])
    done = _cli("verify", tmp_path / "m.tflite", "--dtype", "int8", "--core", "m4f", "-n", "40")
    assert done.returncode == 0 and done.stdout.count("bit-identical") == 2 and "instructions per inference" \
        in done.stdout, done.stdout + done.stderr[-300:]
    assert _cli("convert", tmp_path / "m.tflite", "--dtype", "int8", "--domain", "-1", "1").returncode == 2
    assert _cli("convert", tmp_path / "m.tflite", "--calibrate", "x.npy").returncode == 2
    done = _cli("convert", tmp_path / "m.tflite", "--dtype", "int8", "--rounding", "double")
    assert done.returncode == 0 and "double rounding" in done.stdout and "_rq2(" in done.stdout, done.stderr
    net = load(models["float"])
    float_file = tmp_path / "f.tflite"  # a float model (the converter's float .tflite) quantised by --calibrate
    float_file.write_bytes(models["float"])
    np.save(tmp_path / "rows.npy", np.random.default_rng(1).uniform(-2, 2, (100, net.n_inputs)).astype(np.float32))
    done = _cli("convert", float_file, "--dtype", "int8", "--calibrate", tmp_path / "rows.npy", "-o", tmp_path / "q.c")
    assert done.returncode == 0 and "_int8(const int8_t *x" in (tmp_path / "q.c").read_text(), done.stderr
    done = _cli("size", float_file, "--dtype", "int8", "--calibrate", tmp_path / "rows.npy", "--core", "m4f",
                "--opt", "Os")
    assert done.returncode == 0 and "_dot4" in done.stdout, done.stdout + done.stderr[-300:]  # the DSP path on M4F
    done = _cli("verify", tmp_path / "m.tflite", "--dtype", "int8", "--calibrate", tmp_path / "rows.npy")
    assert done.returncode == 1 and "already quantised" in done.stderr


# ------------------------------------------------------------------ rounding


def test_double_rounding_bit_exact_with_cmsis_nn_and_single_with_litert(models, tmp_path):
    """rounding="double" (TFLite Micro, CMSIS-NN's default) equals a chain of CMSIS-NN's
    arm_fully_connected_per_channel_s8/arm_softmax_s8 compiled from its source on this machine
    bit for bit (and the NumPy mirror), where single rounding (LiteRT's, the default) differs;
    single stays LiteRT's on the .tflite (test_int8_c_bit_exact_with_litert_reference)."""
    sys.path.insert(0, str(REPO / "bench"))
    from cmsis_nn.chain import calibrated_network, cmsis_nn_root, host_outputs

    if cmsis_nn_root() is None:
        pytest.skip("CMSIS-NN's source tree is not on this machine (set CMSIS_NN)")
    for sizes, softmax in (([6, 16, 5], True), ([20, 24, 12, 1], False)):
        net = calibrated_network(sizes, softmax=softmax)
        codes = _codes(sizes[0], 5000, seed=sizes[0])
        ours, cmsis = host_outputs(net, codes, tmp_path)
        assert (ours == cmsis).all(), (sizes, int((ours != cmsis).any(axis=1).sum()))
        assert (ours == run_int8(net.int8.rounded("double"), codes)).all()
        assert (_c_int8(tmp_path, net, codes[:1000], rounding="double") == ours[:1000]).all()  # strict, UBSan
        assert (run_int8(net.int8, codes) != cmsis).any(axis=1).sum() > 50  # the two roundings differ
    net = load(models["int8 int8 I/O"])
    codes = _codes(net.n_inputs, 2000, seed=4)
    assert (run_int8(net.int8.rounded("single"), codes) == litert(models["int8 int8 I/O"], codes)).all()
    with pytest.raises(ValidationError):
        net.int8.rounded("nearest")


def test_int8_on_a_16_bit_int_core(models):
    """On AVR (16-bit int) the int8 C's constants are int32 (INT32_C): LiteRT's outputs bit
    for bit on the atmega328p under simavr (a plain 1 << 30 there overflowed: every row differed)."""
    from toolchains import require

    from mlpcodegen.harness.cortex import Options, run_on_core

    require("avr")
    net = load(models["int8 float I/O"])
    x = _floats(net, 80, seed=13)[:48]  # the edge values and some of the ties
    run = run_on_core(net, x, "atmega328p", Options(dtype="int8", name="predict"))
    assert np.array_equal(run.outputs.view(np.int32), litert(models["int8 float I/O"], x).view(np.int32))
