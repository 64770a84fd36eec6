"""The network as an ONNX graph, built from the IR with ``onnx``, run by ONNX Runtime:
a peer for the benchmark (what a user would otherwise deploy), not a target.

Dense -> MatMul (+ Add), with the activations ONNX has as single operators; anything
else raises :class:`UnsupportedError` naming the layer, and the benchmark lists the
peer as not applicable.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import UnsupportedError
from ..ir import Activate, Affine, Dense, Network

#: IR activation -> ONNX operator (None: identity).
ONNX_ACTIVATIONS = {"linear": None, "relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid", "softmax": "Softmax",
                    "elu": "Elu", "softplus": "Softplus", "softsign": "Softsign", "exponential": "Exp"}
OPSET = 17


def onnx_model(net: Network, dtype: str = "float32"):
    """An ``onnx.ModelProto`` computing ``net`` on a (n, n_inputs) input named ``x``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    elem = {"float32": TensorProto.FLOAT, "float64": TensorProto.DOUBLE}[dtype]
    nodes, weights, current = [], [], "x"
    for index, layer in enumerate(net.layers, start=1):
        name = layer.activation.name
        if name not in ONNX_ACTIVATIONS or (name == "elu" and layer.activation.param("alpha") != 1.0):
            raise UnsupportedError(f"layer {layer.name!r}: activation {name!r} has no single ONNX operator here; "
                                   f"supported: {', '.join(ONNX_ACTIVATIONS)}")
        if isinstance(layer, Dense) and layer.activation.name != "glu":
            weights.append(numpy_helper.from_array(np.asarray(layer.kernel, dtype), f"W{index}"))
            nodes.append(helper.make_node("MatMul", [current, f"W{index}"], [f"m{index}"]))
            current = f"m{index}"
            if layer.bias is not None:
                weights.append(numpy_helper.from_array(np.asarray(layer.bias, dtype), f"B{index}"))
                nodes.append(helper.make_node("Add", [current, f"B{index}"], [f"a{index}"]))
                current = f"a{index}"
        elif isinstance(layer, Affine):
            weights += [numpy_helper.from_array(np.asarray(layer.scale, dtype), f"S{index}"),
                        numpy_helper.from_array(np.asarray(layer.shift, dtype), f"T{index}")]
            nodes += [helper.make_node("Mul", [current, f"S{index}"], [f"s{index}"]),
                      helper.make_node("Add", [f"s{index}", f"T{index}"], [f"t{index}"])]
            current = f"t{index}"
        elif not isinstance(layer, Activate):
            raise UnsupportedError(f"layer {layer.name!r} ({type(layer).__name__}) has no ONNX form here")
        operator = ONNX_ACTIVATIONS[name]
        if operator is not None:
            extra = {"axis": -1} if operator == "Softmax" else {}
            nodes.append(helper.make_node(operator, [current], [f"h{index}"], **extra))
            current = f"h{index}"
    nodes.append(helper.make_node("Identity", [current], ["y"]))
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", elem, ["n", net.n_inputs])],
                              [helper.make_tensor_value_info("y", elem, ["n", net.n_outputs])], initializer=weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="mlpcodegen")
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
