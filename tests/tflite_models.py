"""TFLite models made by TensorFlow's converter, for tests/test_tflite.py, the fuzzing test
and bench/int8.py: a small spec -> a Keras model -> ``TFLiteConverter.from_keras_model``
(float32, or full-integer int8 with a representative dataset, float or int8 I/O, per-channel
or per-tensor weights).  Imports TensorFlow: callers skip when it is missing."""
from __future__ import annotations

import os
import random
from typing import Sequence

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

#: what a spec step may be: a Dense layer with a Keras activation, or an activation on its own
#: (Keras layers the converter turns into standalone RELU/RELU6/RELU_N1_TO_1/LOGISTIC/TANH/SOFTMAX)
DENSE_ACTIVATIONS = (None, "relu", "relu6", "sigmoid", "tanh", "clip1")
ALONE = ("relu", "relu6", "sigmoid", "tanh", "clip1", "softmax")


def keras_model(n_inputs: int, steps: Sequence[tuple], seed: int):
    """``steps``: ("dense", units, activation) or ("alone", activation) or ("reshape",)."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((n_inputs,))
    x = inputs
    for step in steps:
        if step[0] == "dense":
            activation = step[2]
            x = keras.layers.Dense(step[1], activation=None if activation == "clip1" else activation)(x)
            if activation == "clip1":
                x = keras.layers.Lambda(lambda t: keras.ops.clip(t, -1.0, 1.0))(x)
        elif step[0] == "reshape":
            x = keras.layers.Reshape((int(x.shape[-1]),))(x)
        else:
            x = _alone(keras, step[1])(x)
    return keras.Model(inputs, x)


def _alone(keras, name: str):
    if name == "relu":
        return keras.layers.ReLU()
    if name == "relu6":
        return keras.layers.ReLU(max_value=6.0)
    if name == "clip1":
        return keras.layers.Lambda(lambda t: keras.ops.clip(t, -1.0, 1.0))
    return keras.layers.Activation(name)


def convert(model, n_inputs: int | tuple, *, int8: bool = True, int_io: bool = False, per_tensor: bool = False,
            seed: int = 0, spread: float = 2.0) -> bytes:
    """The .tflite bytes of ``model`` (int8: calibrated on 200 uniform rows in [-spread, spread];
    ``n_inputs`` a tuple: the shape of one sample)."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if int8:
        rng = np.random.default_rng(seed)

        def representative():
            for _ in range(200):
                yield [rng.uniform(-spread, spread, (1, *np.atleast_1d(n_inputs))).astype(np.float32)]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if int_io:
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
        if per_tensor:
            converter._experimental_disable_per_channel = True
    return converter.convert()


def random_spec(seed: int, max_inputs: int = 64, max_layers: int = 4) -> tuple[int, list[tuple]]:
    """Random shapes (1..max_inputs inputs, 1..max_layers Dense layers of 1..32 units), every
    activation fused or alone; a softmax (alone or as the Dense's activation) only last."""
    rng = random.Random(seed)
    n_inputs = rng.randint(1, max_inputs)
    steps: list[tuple] = []
    layers = rng.randint(1, max_layers)
    for index in range(layers):
        last = index == layers - 1
        steps.append(("dense", rng.randint(2 if last else 1, 32 if not last else 8), rng.choice(DENSE_ACTIVATIONS)))
        if rng.random() < 0.3:
            steps.append(("alone", rng.choice(ALONE[:-1])))
        if rng.random() < 0.1:
            steps.append(("reshape",))
    if rng.random() < 0.5:
        steps.append(("alone", "softmax"))
    return n_inputs, steps


def litert(model: bytes, x: np.ndarray, resolver: str = "BUILTIN_REF") -> np.ndarray:
    """LiteRT's outputs for the rows ``x`` (its reference kernels by default)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_content=model, experimental_op_resolver_type=getattr(OpResolverType, resolver))
    given, taken = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    interpreter.resize_tensor_input(given["index"], (len(x), x.shape[1]))
    interpreter.allocate_tensors()
    interpreter.set_tensor(given["index"], np.asarray(x).astype(given["dtype"]))
    interpreter.invoke()
    return interpreter.get_tensor(taken["index"]).reshape(len(x), -1)


def operators(model: bytes) -> list[str]:
    """The operator names LiteRT sees in ``model`` (in order)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_content=model, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    return [op["op_name"] for op in interpreter._get_ops_details()]
