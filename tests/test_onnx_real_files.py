"""Real MLP files that must convert (issue 21, section A, ONNX): each made here by the
real exporter -- torch.onnx.export (both exporters), tf2onnx, skl2onnx with its
defaults -- or, for NNet-style graphs and Cast chains, built as those tools write them;
each compared with ONNX Runtime on the same file (and the framework where there is one).

Tolerance (as tests/test_onnx_frontend.py): 8 ULP of float32 at each output's reference
magnitude, for ONNX Runtime at that magnitude or 1, whichever is larger.  The Cast
chains are compared with the compiled C (float32) at the same bound.
"""
from __future__ import annotations

import io
import warnings

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, load_from_string, numpy_helper

import mlpcodegen
from mlpcodegen.core.errors import ModelFormatError, UnsupportedError
from mlpcodegen.core.ir import Affine, Dense
from mlpcodegen.core.reference import evaluate
from nets import inputs
from test_onnx_frontend import ORT_FLOOR, assert_agrees


def ort_rows(model_bytes: bytes, x: np.ndarray) -> np.ndarray:
    """ONNX Runtime on the file, ``x`` one flat row per sample: each row reshaped in C
    order to the input's shape (a fixed batch: that many rows per run; a rank-1 input:
    one row per run), the first float output flattened per sample."""
    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    source = session.get_inputs()[0]
    shape = source.shape
    if len(shape) == 1:
        batch, sample = 1, [shape[0]]
    else:
        batch, sample = (shape[0] if isinstance(shape[0], int) else len(x)), shape[1:]
    name = next(o.name for o in session.get_outputs() if o.type == "tensor(float)")
    rows = []
    for start in range(0, len(x), batch):
        chunk = x[start:start + batch].reshape([-1, *sample] if len(shape) > 1 else sample)
        rows.append(np.asarray(session.run([name], {source.name: chunk})[0], np.float64).reshape(len(chunk)
                                                                                                 if len(shape) > 1
                                                                                                 else 1, -1))
    return np.concatenate(rows)


def check_bytes(data: bytes, n_inputs: int, seed: int = 0, n: int = 16):
    """Load ``data`` as a file would be, and compare ONNX Runtime with the reference."""
    net = mlpcodegen.load(load_from_string(data))
    assert net.n_inputs == n_inputs
    x = inputs(n_inputs, seed, n=n)
    assert_agrees(net, ort_rows(data, x), x, floor=ORT_FLOOR)
    return net, x


def _torch_bytes(module, example, dynamo: bool, **kwargs) -> bytes:
    import torch

    stream = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (example,), stream, dynamo=dynamo, **kwargs)
    return stream.getvalue()


# ------------------------------------------------------------ A2: inputs of rank > 2, fixed batches


@pytest.mark.parametrize("dynamo", [False, True])
def test_torch_flatten_of_an_image_shaped_input(tmp_path, dynamo):
    """[1, 20, 28, 1] -> Flatten (Reshape [1, 560] by the dynamo exporter) -> Gemm: the
    function takes the 560 values flattened in C order, and says so."""
    import torch
    import torch.nn as nn

    torch.manual_seed(1)
    module = nn.Sequential(nn.Flatten(), nn.Linear(560, 6), nn.ReLU(), nn.Linear(6, 3)).eval()
    data = _torch_bytes(module, torch.zeros(1, 20, 28, 1), dynamo)
    path = tmp_path / "image.onnx"
    path.write_bytes(data)
    net, x = check_bytes(data, 560)
    assert net == mlpcodegen.load(path)
    assert any("[1, 20, 28, 1]" in note and "C (row-major) order" in note for note in net.notes), net.notes
    with torch.no_grad():
        assert_agrees(net, module(torch.from_numpy(x.reshape(-1, 20, 28, 1))).double().numpy(), x)


@pytest.mark.parametrize("opset", [9, 13])
def test_torch_flatten_and_view_with_a_dynamic_batch(opset):
    """[N, 5, 4] -> nn.Flatten (a Flatten node); and forward's x.view(x.size(0), -1),
    which the TorchScript exporter writes as Reshape(x, Concat(Unsqueeze(Gather(Shape(x),
    0)), [-1])) with a dynamic batch."""
    import torch
    import torch.nn as nn

    class Viewed(nn.Module):
        def __init__(self):
            super().__init__()
            self.first, self.second = nn.Linear(20, 4), nn.Linear(4, 2)

        def forward(self, x):
            return self.second(torch.tanh(self.first(x.view(x.size(0), -1))))

    torch.manual_seed(2)
    flat = nn.Sequential(nn.Flatten(), nn.Linear(20, 4), nn.Tanh(), nn.Linear(4, 2)).eval()
    for module in (flat, Viewed().eval()):
        data = _torch_bytes(module, torch.zeros(2, 5, 4), False, input_names=["x"], dynamic_axes={"x": {0: "n"}},
                            opset_version=opset)
        assert ("Shape" in [n.op_type for n in load_from_string(data).graph.node]) == (module is not flat)
        net, x = check_bytes(data, 20)
        assert net.describe() == "20-4-2 (tanh, linear)"
        with torch.no_grad():
            assert_agrees(net, module(torch.from_numpy(x.reshape(-1, 5, 4))).double().numpy(), x)


@pytest.mark.parametrize("dynamo", [False, True])
def test_torch_fixed_batch_sizes(dynamo):
    """A fixed batch ([4, 2]; and [4, 2, 3] flattened, the dynamo exporter's literal
    Reshape [4, 6]): each row is one sample, the function computes one."""
    import torch
    import torch.nn as nn

    torch.manual_seed(3)
    plain = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 1)).eval()
    net, x = check_bytes(_torch_bytes(plain, torch.zeros(4, 2), dynamo), 2)
    with torch.no_grad():
        assert_agrees(net, plain(torch.from_numpy(x)).double().numpy(), x)
    flat = nn.Sequential(nn.Flatten(), nn.Linear(6, 3), nn.Sigmoid()).eval()
    net, x = check_bytes(_torch_bytes(flat, torch.zeros(4, 2, 3), dynamo), 6)
    with torch.no_grad():
        assert_agrees(net, flat(torch.from_numpy(x.reshape(-1, 2, 3))).double().numpy(), x)


@pytest.mark.parametrize("opset", [9, 11, 13])
def test_torch_batch_norm_exported_in_training_mode_is_refused(opset):
    """torch.onnx.export(training=TrainingMode.TRAINING) before opset 14 marks BatchNormalization's
    training mode by its running-statistics outputs (unused): ONNX Runtime then normalises by
    each batch's own statistics, so reading it as inference would give another function."""
    import torch
    import torch.nn as nn

    torch.manual_seed(7)
    module = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.BatchNorm1d(6), nn.Linear(6, 2))
    data = _torch_bytes(module.train(), torch.zeros(3, 4), False, opset_version=opset,
                        training=torch.onnx.TrainingMode.TRAINING)
    with pytest.raises(UnsupportedError, match=r"\(BatchNormalization\): has the running-statistics outputs that "
                                               r"mean training mode"):
        mlpcodegen.load(load_from_string(data))
    check_bytes(_torch_bytes(module.eval(), torch.zeros(1, 4), False, opset_version=opset), 4)


@pytest.mark.parametrize("opset", [9, 13, 17])
def test_torch_export_without_constant_folding(opset):
    """do_constant_folding=False leaves a bias-free Linear's weights behind a Transpose node
    (and LayerNorm, GELU, BatchNorm1d unfolded): the Transpose of a constant is applied."""
    import torch
    import torch.nn as nn

    torch.manual_seed(8)
    module = nn.Sequential(nn.Linear(5, 6, bias=False), nn.GELU(), nn.LayerNorm(6), nn.Linear(6, 4),
                           nn.BatchNorm1d(4), nn.Tanh(), nn.Linear(4, 2, bias=False)).eval()
    data = _torch_bytes(module, torch.zeros(1, 5), False, opset_version=opset, do_constant_folding=False,
                        input_names=["x"], dynamic_axes={"x": {0: "n"}})
    assert "Transpose" in [n.op_type for n in load_from_string(data).graph.node]
    net, x = check_bytes(data, 5, n=64)
    with torch.no_grad():
        assert_agrees(net, module(torch.from_numpy(x)).double().numpy(), x)


def test_torch_default_export_to_a_data_file_is_refused_saying_how_to_export(tmp_path):
    """torch.onnx.export's default (dynamo) writes the weights of a network of any size to
    model.onnx.data: external storage is refused (security.md), the message naming the
    option that keeps them inside; with external_data=False the file converts."""
    import torch
    import torch.nn as nn

    torch.manual_seed(10)
    module = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.zeros(1, 64),), tmp_path / "split.onnx")
        torch.onnx.export(module, (torch.zeros(1, 64),), tmp_path / "whole.onnx", external_data=False)
    assert (tmp_path / "split.onnx.data").stat().st_size > 0
    with pytest.raises(UnsupportedError, match=r"keeps its data in an external file.*external_data=False"):
        mlpcodegen.load(tmp_path / "split.onnx")
    net = mlpcodegen.load(tmp_path / "whole.onnx")
    x = inputs(64, 11, n=1)
    with torch.no_grad():
        assert_agrees(net, module(torch.from_numpy(x)).double().numpy(), x)


# ------------------------------------------------------------ the dynamo exporter's written-out activations


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_dynamo_gelu_below_opset_20(approximate):
    """The dynamo exporter writes GELU out below opset 20 in its own order:
    x * (0.5 * (Erf(x / sqrt(2)) + 1)) and x * (0.5 * (Tanh(sqrt(2/pi) * (x + 0.044715 * Pow(x, 3))) + 1))."""
    import torch
    import torch.nn as nn

    torch.manual_seed(4)
    module = nn.Sequential(nn.Linear(5, 8), nn.GELU(approximate=approximate), nn.Linear(8, 3)).eval()
    data = _torch_bytes(module, torch.zeros(2, 5), True, opset_version=18)
    assert "Gelu" not in [n.op_type for n in load_from_string(data).graph.node]
    net, x = check_bytes(data, 5, n=64)
    assert net.describe() == "5-8-3 (gelu, linear)"
    with torch.no_grad():
        assert_agrees(net, module(torch.from_numpy(x)).double().numpy(), x)


@pytest.mark.parametrize("beta,threshold", [(1.0, 20.0), (2.0, 15.0)])
def test_dynamo_softplus_with_its_threshold(beta, threshold):
    """torch.onnx.export's default (dynamo) writes Softplus(beta, threshold) as
    Where(beta x > threshold, x, Softplus(beta x) / beta) at every opset: read as the exact
    softplus, as the torch frontend reads the module; inputs reach past the threshold."""
    import torch
    import torch.nn as nn

    torch.manual_seed(5)
    module = nn.Sequential(nn.Linear(3, 6), nn.Softplus(beta, threshold), nn.Linear(6, 2)).eval()
    with torch.no_grad():
        module[0].weight.mul_(12.0)
    data = _torch_bytes(module, torch.zeros(2, 3), True)
    assert "Where" in [n.op_type for n in load_from_string(data).graph.node]
    net = mlpcodegen.load(load_from_string(data))
    x = inputs(3, 6, n=256, domain=(-4.0, 4.0))
    assert_agrees(net, ort_rows(data, x), x, floor=ORT_FLOOR)
    with torch.no_grad():
        hidden = module[0](torch.from_numpy(x)).numpy() * beta
        assert (hidden > threshold).any() and (hidden < threshold).any()
        assert_agrees(net, module(torch.from_numpy(x)).double().numpy(), x)


@pytest.mark.parametrize("eps", [None, 1e-3])
def test_dynamo_rms_norm_and_softmin(eps):
    """The dynamo exporter writes RMSNorm before opset 23 as x * Reciprocal(Sqrt(ReduceMean(Pow(x, 2)) + eps))
    (eps None: float32's machine epsilon), then Mul by its weight; Softmin as Softmax(Neg(x))."""
    import torch
    import torch.nn as nn

    torch.manual_seed(9)
    module = nn.Sequential(nn.Linear(4, 8), nn.RMSNorm(8, eps=eps), nn.Linear(8, 3), nn.Softmin(-1)).eval()
    with torch.no_grad():
        module[1].weight.uniform_(0.5, 2.0)
    for opset in (18, 20):
        data = _torch_bytes(module, torch.zeros(2, 4), True, opset_version=opset)
        assert {"Reciprocal", "Neg"} <= {n.op_type for n in load_from_string(data).graph.node}
        net, x = check_bytes(data, 4, n=64)
        with torch.no_grad():
            assert_agrees(net, module(torch.from_numpy(x)).double().numpy(), x)


def test_dynamo_softplus_with_a_small_threshold_is_refused():
    import torch
    import torch.nn as nn

    module = nn.Sequential(nn.Linear(3, 4), nn.Softplus(threshold=5.0), nn.Linear(4, 1)).eval()
    data = _torch_bytes(module, torch.zeros(1, 3), True)
    with pytest.raises(UnsupportedError, match=r"\(Where\): torch's Softplus with threshold=5 .* threshold >= 15"):
        mlpcodegen.load(load_from_string(data))


def test_tf2onnx_keras_flatten_after_a_multi_dimensional_input(keras_module):
    """Keras Input((4, 5, 2)) -> Flatten -> Dense: tf2onnx writes Reshape [-1, 40]
    (from_function: tf2onnx 1.17's from_keras fails on Keras 3)."""
    import keras
    import tensorflow as tf
    import tf2onnx

    keras.utils.set_random_seed(4)
    model = keras.Sequential([keras.Input((4, 5, 2)), keras.layers.Flatten(),
                              keras.layers.Dense(6, activation="relu", bias_initializer="random_normal"),
                              keras.layers.Dense(3, activation="softmax")])
    spec = (tf.TensorSpec((None, 4, 5, 2), tf.float32, name="x"),)
    proto, _ = tf2onnx.convert.from_function(tf.function(lambda x: model(x)), input_signature=spec, opset=13)
    net, x = check_bytes(proto.SerializeToString(), 40)
    assert net.describe() == "40-6-3 (relu, softmax)"
    assert_agrees(net, np.asarray(model.predict(x.reshape(-1, 4, 5, 2), verbose=0), np.float64), x)


@pytest.mark.parametrize("opset,scale,center,first", [(13, True, True, False), (18, True, True, False),
                                                      (9, False, True, False), (13, True, False, True),
                                                      (18, False, False, False)])
def test_tf2onnx_keras_layer_normalization(keras_module, opset, scale, center, first):
    """Keras' LayerNormalization, which tf2onnx writes out as TensorFlow computes it:
    x * m + (Neg(mean) * m + beta), m = Reciprocal(Sqrt(variance + eps)) * gamma (each of
    gamma and beta only when the layer has it); after a Dense's activation or on the input."""
    import keras
    import tensorflow as tf
    import tf2onnx

    keras.utils.set_random_seed(opset)
    norm = keras.layers.LayerNormalization(epsilon=1e-2, scale=scale, center=center)
    layers = [keras.Input((5,))] + ([norm] if first else [keras.layers.Dense(7, activation="tanh"), norm])
    model = keras.Sequential(layers + [keras.layers.Dense(6, activation="relu"), keras.layers.Dense(2)])
    norm.set_weights([np.random.default_rng(opset).uniform(0.5, 2.0, w.shape) for w in norm.get_weights()])
    spec = (tf.TensorSpec((None, 5), tf.float32, name="x"),)
    proto, _ = tf2onnx.convert.from_function(tf.function(lambda x: model(x)), input_signature=spec, opset=opset)
    assert "Reciprocal" in [n.op_type for n in proto.graph.node]
    net, x = check_bytes(proto.SerializeToString(), 5, n=64)
    assert any(getattr(layer, "activation", None) and layer.activation.name == "layer_norm" for layer in net.layers)
    assert_agrees(net, np.asarray(model.predict(x, verbose=0), np.float64), x)


@pytest.mark.parametrize("opset", [9, 13, 18])
def test_tf2onnx_keras_hard_silu(keras_module, opset):
    """Keras 3's hard_silu (hard_swish), which tf2onnx writes as x * (Clip(x + 3, 0, 6) * (1/6)):
    inputs reach both bends of the Clip."""
    import keras
    import tensorflow as tf
    import tf2onnx

    keras.utils.set_random_seed(opset)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="hard_silu"),
                              keras.layers.Dense(3, activation="hard_swish"), keras.layers.Dense(1)])
    model.layers[0].set_weights([w * 4 for w in model.layers[0].get_weights()])
    spec = (tf.TensorSpec((None, 4), tf.float32, name="x"),)
    proto, _ = tf2onnx.convert.from_function(tf.function(lambda x: model(x)), input_signature=spec, opset=opset)
    assert "Clip" in [n.op_type for n in proto.graph.node]
    net, x = check_bytes(proto.SerializeToString(), 4, n=128)
    assert net.describe() == "4-8-3-1 (hard_silu, hard_silu, linear)"
    assert_agrees(net, np.asarray(model.predict(x, verbose=0), np.float64), x)


@pytest.mark.parametrize("opset,shared", [(9, False), (15, True)])
def test_tf2onnx_keras_prelu(keras_module, opset, shared):
    """Keras' PReLU, which tf2onnx writes as Relu(x) + Relu(Neg(x)) * (-alpha): one alpha per
    unit, or one shared (shared_axes)."""
    import keras
    import tensorflow as tf
    import tf2onnx

    keras.utils.set_random_seed(opset)
    prelu = keras.layers.PReLU(alpha_initializer="random_uniform", shared_axes=[1] if shared else None)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(6), prelu, keras.layers.Dense(2)])
    spec = (tf.TensorSpec((None, 4), tf.float32, name="x"),)
    proto, _ = tf2onnx.convert.from_function(tf.function(lambda x: model(x)), input_signature=spec, opset=opset)
    assert "Neg" in [n.op_type for n in proto.graph.node]
    net, x = check_bytes(proto.SerializeToString(), 4, n=64)
    assert net.describe() == "4-6-2 (prelu, linear)"
    assert_agrees(net, np.asarray(model.predict(x, verbose=0), np.float64), x)


def test_tf2onnx_keras_relu_with_max_value(keras_module):
    """Keras' ReLU(max_value=3), which tf2onnx writes as Relu, Min(x, 3), Max(x, 0): inputs
    reach both bends."""
    import keras
    import tensorflow as tf
    import tf2onnx

    keras.utils.set_random_seed(5)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(6), keras.layers.ReLU(max_value=3.0),
                              keras.layers.Dense(2)])
    model.layers[0].set_weights([w * 3 for w in model.layers[0].get_weights()])
    spec = (tf.TensorSpec((None, 4), tf.float32, name="x"),)
    proto, _ = tf2onnx.convert.from_function(tf.function(lambda x: model(x)), input_signature=spec, opset=13)
    assert {"Min", "Max"} <= {n.op_type for n in proto.graph.node}
    net, x = check_bytes(proto.SerializeToString(), 4, n=128)
    assert_agrees(net, np.asarray(model.predict(x, verbose=0), np.float64), x)


def test_reshapes_that_mix_samples_are_refused():
    """[N, 6] -> Reshape [-1, 3] makes two rows of each sample; [4, 6] -> Reshape [1, 24]
    (or Flatten axis 0) makes one row of four samples: refused, naming the node."""
    weights = {"W": np.ones((3, 2), np.float32), "s": np.array([-1, 3], np.int64)}
    model = _graph([helper.make_node("Reshape", ["x", "s"], ["r"], name="halves"),
                    helper.make_node("MatMul", ["r", "W"], ["y"])], weights, [None, 6], [None, 2])
    with pytest.raises(UnsupportedError, match=r"node 'halves' \(Reshape\): reshapes a \[\?, 6\] value to \[-1, 3\]"):
        mlpcodegen.load(model)
    weights = {"W": np.ones((24, 2), np.float32), "s": np.array([1, 24], np.int64)}
    model = _graph([helper.make_node("Reshape", ["x", "s"], ["r"], name="all"),
                    helper.make_node("MatMul", ["r", "W"], ["y"])], weights, [4, 6], [1, 2])
    with pytest.raises(UnsupportedError, match=r"node 'all' \(Reshape\): reshapes a \[4, 6\] value to \[1, 24\]"):
        mlpcodegen.load(model)
    model = _graph([helper.make_node("Flatten", ["x"], ["r"], name="flat", axis=0),
                    helper.make_node("MatMul", ["r", "W"], ["y"])], {"W": weights["W"]}, [4, 6], [1, 2])
    with pytest.raises(UnsupportedError, match=r"node 'flat' \(Flatten\): Flatten with axis 0 .* mixes samples"):
        mlpcodegen.load(model)
    shape_nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Gather", ["s", "two"], ["g"], axis=0),
                   helper.make_node("Unsqueeze", ["g", "zero"], ["u"]),
                   helper.make_node("Concat", ["minus", "u"], ["spec"], axis=0),
                   helper.make_node("Reshape", ["x", "spec"], ["r"], name="by_shape"),
                   helper.make_node("MatMul", ["r", "W"], ["y"])]
    weights = {"two": np.array(2, np.int64), "zero": np.array([0], np.int64), "minus": np.array([-1], np.int64),
               "W": np.ones((4, 2), np.float32)}
    with pytest.raises(UnsupportedError, match=r"node 'by_shape' \(Reshape\): reshapes a \[\?, 3, 4\] value to "
                                               r"\[-1, 4\]"):
        mlpcodegen.load(_graph(shape_nodes, weights, [None, 3, 4], [None, 2]))
    model = _graph([helper.make_node("MatMul", ["x", "W"], ["y"], name="rows")], {"W": np.ones((4, 2), np.float32)},
                   [None, 3, 4], [None, 3, 2])
    with pytest.raises(UnsupportedError, match=r"node 'rows' \(MatMul\): reads a value of shape \[\?, 3, 4\]; a dense "
                                               r"layer reads one flat vector per sample \(a Flatten"):
        mlpcodegen.load(model)


@pytest.mark.parametrize("opset,in_dims,out_dims,op,axes", [
    (11, [None, 1, 5], [None, 2], "Squeeze", [1]), (13, [None, 1, 5], [None, 2], "Squeeze", [1]),
    (13, [1, 1, 1, 5], [2], "Squeeze", None), (11, [5], [1, 2], "Unsqueeze", [0]),
    (13, [None, 5, 1], [None, 2], "Squeeze", [-1])])
def test_squeeze_and_unsqueeze_of_sample_axes(opset, in_dims, out_dims, op, axes):
    """Squeeze/Unsqueeze (axes an attribute before opset 13, an input from 13) reshape
    the sample; [1, 1, 1, 5] squeezed whole is one sample [5]."""
    weights = {"W": np.random.default_rng(9).normal(size=(5, 2)).astype(np.float32)}
    if axes is not None and opset >= 13:
        weights["axes"], inputs_, attrs = np.array(axes, np.int64), ["x", "axes"], {}
    else:
        inputs_, attrs = ["x"], ({} if axes is None else {"axes": axes})
    model = _graph([helper.make_node(op, inputs_, ["s"], **attrs), helper.make_node("MatMul", ["s", "W"], ["y"])],
                   weights, in_dims, out_dims, opset)
    check_bytes(model.SerializeToString(), 5)


def test_squeezing_the_batch_axis_is_refused():
    model = _graph([helper.make_node("Squeeze", ["x"], ["s"], axes=[0], name="sq"),
                    helper.make_node("MatMul", ["s", "W"], ["y"])], {"W": np.ones((5, 2), np.float32)},
                   [None, 1, 5], [None, 2], 11)
    with pytest.raises(UnsupportedError, match=r"node 'sq' \(Squeeze\): moves the batch axis of a \[\?, 1, 5\] value"):
        mlpcodegen.load(model)


# ------------------------------------------------------------ A3: NNet style


def _graph(nodes, weights, in_dims, out_dims, opset=13, extra_opsets=()):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_dims)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_dims)],
                              [numpy_helper.from_array(np.asarray(v), k) for k, v in weights.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset),
                                                    *(helper.make_opsetid(*o) for o in extra_opsets)])
    model.ir_version = 8
    return model


def nnet_style(seed: int, widths=(5, 8, 8, 5)):
    """What NNet converters and verification tools write: x of shape [n] normalised by
    Sub(means) / Div(ranges), then per layer MatMul(W, x) + Add(b) (W: out x in), Relu
    between, the output de-normalised by Mul(range) + Add(mean)."""
    rng = np.random.default_rng(seed)
    f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
    weights = {"means": f32(rng.uniform(-1, 1, widths[0])), "ranges": f32(rng.uniform(0.5, 4, widths[0])),
               "out_range": f32([7.5]), "out_mean": f32([1.25])}
    nodes = [helper.make_node("Sub", ["x", "means"], ["centred"]), helper.make_node("Div", ["centred", "ranges"],
                                                                                  ["v0"])]
    for index, (n_in, n_out) in enumerate(zip(widths, widths[1:])):
        weights[f"W{index}"] = f32(rng.normal(0, 1 / np.sqrt(n_in), (n_out, n_in)))
        weights[f"B{index}"] = f32(rng.normal(0, 0.3, n_out))
        nodes += [helper.make_node("MatMul", [f"W{index}", f"v{index}"], [f"m{index}"]),
                  helper.make_node("Add", [f"m{index}", f"B{index}"], [f"a{index}"])]
        last = index == len(widths) - 2
        nodes.append(helper.make_node("Identity" if last else "Relu", [f"a{index}"], [f"v{index + 1}"]))
    nodes += [helper.make_node("Mul", [f"v{len(widths) - 1}", "out_range"], ["scaled"]),
              helper.make_node("Add", ["scaled", "out_mean"], ["y"])]
    return _graph(nodes, weights, [widths[0]], [widths[-1]])


@pytest.mark.parametrize("seed", [0, 1])
def test_nnet_style_rank_one_input_with_weights_on_the_left(seed):
    from mlpcodegen.runtime import load

    model = nnet_style(seed)
    data = model.SerializeToString()
    net, x = check_bytes(data, 5, seed, n=32)
    assert net.describe() == "5-8-8-5 (relu, relu, linear)"
    assert any("one sample, no batch axis" in note for note in net.notes)
    unfolded = mlpcodegen.load(model, fold=False)
    assert [type(layer) for layer in unfolded.layers][:2] == [Affine, Affine]  # Sub, Div kept as steps
    assert_agrees(unfolded, load(unfolded, "numpy", dtype="float32")(x).astype(np.float64), x)


def test_weights_on_the_left_of_a_batch_are_refused():
    model = _graph([helper.make_node("MatMul", ["W", "x"], ["y"], name="left")], {"W": np.ones((2, 3), np.float32)},
                   [None, 3], [None, 2])
    with pytest.raises(UnsupportedError, match=r"node 'left' \(MatMul\): W @ x reads a value of shape \[\?, 3\]; "
                                               r"the weights on the left are read for a one-sample vector"):
        mlpcodegen.load(model)


# ------------------------------------------------------------ A1, A4: skl2onnx defaults


def _fit(estimator, seed=0, n_classes=3):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(60, 3)) * [1.0, 3.0, 0.5] + [0.0, 2.0, -1.0]
    y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 2) if n_classes == 3 else (x[:, 0] > 0).astype(int)
    if type(estimator).__name__ == "MLPRegressor" or getattr(estimator, "steps", [[0, 0]])[-1][1].__class__.__name__ \
            == "MLPRegressor":
        y = x[:, 0] - x[:, 1] * x[:, 2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return estimator.fit(x, y)


def ort_probabilities(data: bytes, x: np.ndarray, classes) -> np.ndarray:
    """ONNX Runtime's ZipMap output (a list of {class: probability}) as rows."""
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    maps = session.run(["output_probability"], {session.get_inputs()[0].name: x})[0]
    return np.array([[row[c] for c in classes] for row in maps], np.float64)


@pytest.mark.parametrize("n_classes,zipmap", [(3, True), (2, True), (3, False)])
def test_skl2onnx_classifier_defaults_end_in_zipmap(n_classes, zipmap):
    """skl2onnx's default classifier ends in ZipMap (a sequence of maps) beside the
    label: the probability tensor feeding it is converted, and the notes say so."""
    from skl2onnx import to_onnx
    from sklearn.neural_network import MLPClassifier

    estimator = _fit(MLPClassifier(hidden_layer_sizes=(5,), max_iter=60, random_state=n_classes), 0, n_classes)
    x = inputs(3, n_classes)
    data = to_onnx(estimator, x[:1], options=None if zipmap else {"zipmap": False}).SerializeToString()
    net = mlpcodegen.load(load_from_string(data))
    expected = ort_probabilities(data, x, estimator.classes_) if zipmap else ort_rows(data, x)
    assert_agrees(net, expected, x, floor=ORT_FLOOR)
    assert_agrees(net, estimator.predict_proba(x), x)
    assert net.describe() == mlpcodegen.load(estimator).describe()
    assert "label" in net.notes[0]
    zip_notes = [note for note in net.notes if "ZipMap" in note]
    if zipmap:
        assert len(zip_notes) == 1 and "ZipMap output output_probability: its input" in zip_notes[0], net.notes
        assert f"one output per class [{', '.join(str(c) for c in estimator.classes_)}]" in zip_notes[0]
    else:
        assert not zip_notes


@pytest.mark.parametrize("scaler,final", [("StandardScaler", "MLPRegressor"), ("MinMaxScaler", "MLPClassifier"),
                                          ("RobustScaler", "MLPRegressor")])
def test_skl2onnx_pipelines_fold_the_scaler_like_the_object_path(scaler, final):
    """Pipeline(scaler, MLP) with skl2onnx's defaults: StandardScaler/RobustScaler become
    an ai.onnx.ml Scaler, MinMaxScaler Mul/Add (and the classifier a ZipMap): folded into
    the first layer, as mlpcodegen.load(pipeline) folds it."""
    import sklearn.neural_network as nn
    import sklearn.preprocessing as pre
    from skl2onnx import to_onnx
    from sklearn.pipeline import Pipeline

    pipeline = _fit(Pipeline([("scale", getattr(pre, scaler)()),
                              ("mlp", getattr(nn, final)(hidden_layer_sizes=(6,), max_iter=60, random_state=1))]))
    x = inputs(3, 5) * np.float32(2)
    model = to_onnx(pipeline, x[:1])
    data = model.SerializeToString()
    assert (scaler != "MinMaxScaler") == any(n.op_type == "Scaler" for n in model.graph.node)
    net = mlpcodegen.load(model)
    from_object = mlpcodegen.load(pipeline)
    assert net.describe() == from_object.describe()
    assert all(isinstance(layer, Dense) for layer in net.layers)  # the scaler is folded in
    if final == "MLPClassifier":
        expected, own = ort_probabilities(data, x, pipeline.classes_), pipeline.predict_proba(x)
    else:
        expected, own = ort_rows(data, x), pipeline.predict(x).reshape(-1, 1)
    assert_agrees(net, expected, x, floor=ORT_FLOOR)
    assert_agrees(net, own, x)
    if scaler != "MinMaxScaler":
        assert any(note.startswith("input scaling folded in: ai.onnx.ml Scaler") and "(x - offset) * scale" in note
                   for note in net.notes), net.notes


def test_non_affine_ai_onnx_ml_steps_are_refused_by_name():
    from skl2onnx import to_onnx
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import Normalizer

    pipeline = _fit(Pipeline([("norm", Normalizer()), ("mlp", MLPRegressor(hidden_layer_sizes=(3,), max_iter=5))]))
    with pytest.raises(UnsupportedError, match=r"\(Normalizer\) of domain 'ai.onnx.ml' is not an affine step, so not "
                                               r"part of a dense network; supported ai.onnx.ml operators: "
                                               r"LinearRegressor \(post_transform NONE\), Scaler"):
        mlpcodegen.load(to_onnx(pipeline, inputs(3)[:1]))


def test_an_ai_onnx_ml_linear_regressor_is_a_dense_layer():
    """skl2onnx writes LinearRegression as an ai.onnx.ml LinearRegressor: read as a
    linear Dense layer (behind a Scaler here: both folded into one)."""
    from skl2onnx import to_onnx
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    pipeline = _fit(Pipeline([("s", StandardScaler()), ("lr", LinearRegression())]))
    x = inputs(3, 6)
    data = to_onnx(pipeline, x[:1]).SerializeToString()
    net = mlpcodegen.load(load_from_string(data))
    assert net.describe() == "3-1 (linear)"
    assert_agrees(net, ort_rows(data, x), x, floor=ORT_FLOOR)
    assert_agrees(net, pipeline.predict(x).reshape(-1, 1), x)


# ------------------------------------------------------------ A6: Cast of constants, ONNX's checker


def cast_chain(to: int, kernel: np.ndarray, opset: int = 19):
    """x -> Gemm(x, Cast(Cast(W, to), float), b): the weights as the cast leaves them."""
    nodes = [helper.make_node("Cast", ["W"], ["Wc"], to=to, name="narrow"),
             helper.make_node("Cast", ["Wc"], ["Wf"], to=TensorProto.FLOAT, name="widen"),
             helper.make_node("Gemm", ["x", "Wf", "B"], ["y"], name="dense")]
    return _graph(nodes, {"W": kernel, "B": np.array([0.5, -0.25, 1.0], np.float32)}, [None, 2], [None, 3], opset)


CASTS = {"int32": TensorProto.INT32, "int8": TensorProto.INT8, "uint8": TensorProto.UINT8,
         "bool": TensorProto.BOOL, "float16": TensorProto.FLOAT16, "bfloat16": TensorProto.BFLOAT16,
         "float64": TensorProto.DOUBLE}


@pytest.mark.parametrize("name", list(CASTS))
def test_a_constant_cast_is_applied_as_onnx_does(name):
    """The issue's reproduction (ONNX Runtime [-3, 4, 2], the C [-2.76, 5.37, 3.88]) and
    the other targets: the compiled C equals ONNX Runtime on the cast weights."""
    from mlpcodegen.runtime import load

    rng = np.random.default_rng(7)
    kernel = rng.uniform(-3.9, 3.9, (2, 3)).astype(np.float32)
    if name == "uint8":
        kernel = np.abs(kernel)
    kernel[0, 0] = np.float32(1.00390625)  # ties to even in bfloat16, rounds in float16 only below
    kernel[1, 2] = np.float32(0.1)
    data = cast_chain(CASTS[name], kernel).SerializeToString()
    net = mlpcodegen.load(load_from_string(data))
    x = np.vstack([[[1.0, 0.0], [0.0, 1.0]], inputs(2, 8, n=30)]).astype(np.float32)
    expected = ort_rows(data, x)
    if name in ("int32", "int8", "bool"):
        assert not np.allclose(expected, x.astype(np.float64) @ kernel + [0.5, -0.25, 1.0], atol=1e-3)
    compiled = load(net, "c", dtype="float32")
    assert_agrees(net, np.asarray(compiled(x), np.float64), x)
    assert_agrees(net, expected, x, floor=ORT_FLOOR)


def test_integer_constants_cast_wrap_around_as_onnx_runtime_does():
    """int64 -> int8 wraps (300 -> 44, -129 -> 127), -> bool is x != 0, -> float16 rounds:
    each agrees with ONNX Runtime exactly (small integers: every sum is exact)."""
    kernel = np.array([[300, -129, 5], [2049, 0, -7]], np.int64)
    x = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, -3.0]], np.float32)
    for to in (TensorProto.INT8, TensorProto.BOOL, TensorProto.FLOAT16, TensorProto.UINT8):
        data = cast_chain(to, kernel).SerializeToString()
        net = mlpcodegen.load(load_from_string(data))
        np.testing.assert_array_equal(evaluate(net, x.astype(np.float64)), ort_rows(data, x))


def test_the_issue_reproduction_gives_onnx_runtime_values():
    kernel = np.array([[-2.76, 5.37, 3.88], [0.0, 0.0, 0.0]], np.float32)
    data = cast_chain(TensorProto.INT32, kernel).SerializeToString()
    net = mlpcodegen.load(load_from_string(data))
    x = np.array([[1.0, 0.0]], np.float32)
    np.testing.assert_array_equal(ort_rows(data, x), [[-1.5, 4.75, 4.0]])  # [-2, 5, 3] + b
    np.testing.assert_array_equal(evaluate(net, x.astype(np.float64)), [[-1.5, 4.75, 4.0]])


@pytest.mark.parametrize("name,values,match", [
    ("int32", [[1e10, 0, 0], [0, 0, 0]], r"node 'narrow' \(Cast\): casts a value outside int32's range"),
    ("uint8", [[-1.5, 0, 0], [0, 0, 0]], r"outside uint8's range \[0, 255\] \(undefined in ONNX\)"),
    ("int8", [[np.inf, 0, 0], [0, 0, 0]], r"casts a non-finite value to int8"),
])
def test_a_cast_onnx_leaves_undefined_is_refused(name, values, match):
    with pytest.raises(UnsupportedError, match=match):
        mlpcodegen.load(cast_chain(CASTS[name], np.array(values, np.float32)))


def test_an_unused_cast_that_cannot_be_folded_is_not_refused():
    model = cast_chain(TensorProto.INT32, np.ones((2, 3), np.float32))
    model.graph.initializer.append(numpy_helper.from_array(np.array([1e20], np.float32), "huge"))
    model.graph.node.insert(0, helper.make_node("Cast", ["huge"], ["dead"], to=TensorProto.INT32, name="dead"))
    assert mlpcodegen.load(model).describe() == "2-3 (linear)"


def test_graphs_onnx_refuses_are_refused(tmp_path):
    """An opset newer than onnx knows (ONNX's checker accepts it, ONNX Runtime does not),
    and two nodes writing one value (the checker's single static assignment)."""
    from onnx.defs import onnx_opset_version

    kernel = np.ones((2, 3), np.float32)
    with pytest.raises(UnsupportedError, match=rf"opset 99 of 'ai.onnx', newer than any the installed onnx package "
                                               rf"knows \(up to {onnx_opset_version()}\)"):
        mlpcodegen.load(cast_chain(TensorProto.FLOAT, kernel, opset=99))
    twice = cast_chain(TensorProto.FLOAT, kernel)
    twice.graph.node.insert(2, helper.make_node("Relu", ["x"], ["y"], name="second"))
    path = tmp_path / "twice.onnx"
    path.write_bytes(twice.SerializeToString())
    for source in (twice, path):
        with pytest.raises(ModelFormatError, match=r"ONNX's checker refuses the graph: Graph must be in single "
                                                   r"static assignment \(SSA\) form, however 'y' has been used"):
            mlpcodegen.load(source)


# ------------------------------------------------------------ A7: the first foreign node is named


def test_a_conv_after_an_image_input_is_named_not_the_input_shape():
    nodes = [helper.make_node("Conv", ["x", "K"], ["c"], name="conv1"), helper.make_node("Flatten", ["c"], ["f"]),
             helper.make_node("MatMul", ["f", "W"], ["y"])]
    weights = {"K": np.ones((2, 1, 3, 3), np.float32), "W": np.ones((8, 2), np.float32)}
    for in_dims in ([None, 1, 4, 4], [None, 1, None, None]):
        model = _graph(nodes, weights, in_dims, [None, 2])
        with pytest.raises(UnsupportedError, match=r"node 'conv1' \(Conv\) is not supported \(not part of a dense "
                                                   r"network\); supported operators: Add, .*Gemm"):
            mlpcodegen.load(model)


# ------------------------------------------------------------ verify on these files


def test_verify_runs_onnx_runtime_on_each_kind_of_file(tmp_path):
    """verify feeds ONNX Runtime each flat row reshaped to the input's shape (a fixed
    batch of 4 with 9 rows: the last run padded), and compares the ZipMap's tensor."""
    import torch
    import torch.nn as nn
    from skl2onnx import to_onnx
    from sklearn.neural_network import MLPClassifier

    torch.manual_seed(5)
    files = {"image": _torch_bytes(nn.Sequential(nn.Flatten(), nn.Linear(12, 3)).eval(), torch.zeros(1, 3, 4), False),
             "fixed": _torch_bytes(nn.Sequential(nn.Linear(2, 3), nn.Tanh()).eval(), torch.zeros(4, 2), False),
             "nnet": nnet_style(2).SerializeToString(),
             "zipmap": to_onnx(_fit(MLPClassifier(hidden_layer_sizes=(4,), max_iter=30)), inputs(3)[:1])
             .SerializeToString()}
    for name, data in files.items():
        path = tmp_path / f"{name}.onnx"
        path.write_bytes(data)
        report = mlpcodegen.verify(path, "numpy", "float32", n=9)
        assert report.ok and "vs ONNX Runtime" in report.table(), report.table()
