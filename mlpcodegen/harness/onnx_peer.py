"""The network as an ONNX graph, built from the IR with ``onnx``, run by ONNX Runtime:
a peer for the benchmark (what a user would otherwise deploy), not a target.

Dense -> MatMul (+ Add), with the activations ONNX has as single operators; anything
else raises :class:`UnsupportedError` naming the layer, and the benchmark lists the
peer as not applicable.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..core.errors import UnsupportedError
from ..core.activations import REGISTRY
from ..core.ir import Activate, Affine, Dense, Layer, Network
from ..core.untrusted import quote_name

OPSET = 17


def _operator(layer: Layer) -> str:
    """The activation's ONNX operator (its spec's ``onnx`` facet), or a clear refusal."""
    spec = REGISTRY[layer.activation.name]
    if spec.onnx is None or (spec.name == "elu" and layer.activation.param("alpha") != 1.0):
        have = ", ".join(name for name, s in REGISTRY.items() if s.onnx)
        raise UnsupportedError(f"layer {quote_name(layer.name)!r}: activation {spec.name!r} has no single ONNX "
                               f"operator here; supported: {have}")
    return spec.onnx


def _dense(layer: Dense, index: int, current: str, dtype: str) -> tuple[list, list, str]:
    from onnx import helper, numpy_helper

    weights = [numpy_helper.from_array(np.asarray(layer.kernel, dtype), f"W{index}")]
    nodes = [helper.make_node("MatMul", [current, f"W{index}"], [f"m{index}"])]
    if layer.bias is None:
        return nodes, weights, f"m{index}"
    weights.append(numpy_helper.from_array(np.asarray(layer.bias, dtype), f"B{index}"))
    return nodes + [helper.make_node("Add", [f"m{index}", f"B{index}"], [f"a{index}"])], weights, f"a{index}"


def _affine(layer: Affine, index: int, current: str, dtype: str) -> tuple[list, list, str]:
    from onnx import helper, numpy_helper

    weights = [numpy_helper.from_array(np.asarray(layer.scale, dtype), f"S{index}"),
               numpy_helper.from_array(np.asarray(layer.shift, dtype), f"T{index}")]
    nodes = [helper.make_node("Mul", [current, f"S{index}"], [f"s{index}"]),
             helper.make_node("Add", [f"s{index}", f"T{index}"], [f"t{index}"])]
    return nodes, weights, f"t{index}"


#: layer kind -> (nodes, initializers, output name) of its pre-activation.
_LAYERS = {Dense: _dense, Affine: _affine, Activate: lambda layer, index, current, dtype: ([], [], current)}


def onnx_model(net: Network, dtype: str = "float32", opset: int = OPSET):
    """An ``onnx.ModelProto`` computing ``net`` on a (n, n_inputs) input named ``x``
    (``opset``: the operator set imported, 11 or later: Softmax's axis -1)."""
    import onnx
    from onnx import TensorProto, helper

    elem = {"float32": TensorProto.FLOAT, "float64": TensorProto.DOUBLE}[dtype]
    nodes, weights, current = [], [], "x"
    for index, layer in enumerate(net.layers, start=1):
        operator = _operator(layer)
        more_nodes, more_weights, current = _LAYERS[type(layer)](layer, index, current, dtype)
        nodes, weights = nodes + more_nodes, weights + more_weights
        if operator != "Identity":
            extra = {"axis": -1} if operator == "Softmax" else {}
            nodes.append(helper.make_node(operator, [current], [f"h{index}"], **extra))
            current = f"h{index}"
    nodes.append(helper.make_node("Identity", [current], ["y"]))
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", elem, ["n", net.n_inputs])],
                              [helper.make_tensor_value_info("y", elem, ["n", net.n_outputs])], initializer=weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="mlpcodegen")
    model.ir_version = min(model.ir_version, 9)  # readable by older ONNX Runtime releases too
    onnx.checker.check_model(model)
    return model


def onnx_runtime_session(net: Network, threads: int = 1) -> Callable[[np.ndarray], np.ndarray]:
    """``f(x) -> y`` through an ONNX Runtime session on ``threads`` threads (CPU)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(onnx_model(net).SerializeToString(), options, providers=["CPUExecutionProvider"])
    run = session.run

    def call(x: np.ndarray) -> np.ndarray:
        return run(["y"], {"x": x})[0]

    return call
