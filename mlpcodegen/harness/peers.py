"""What a target is compared with or timed against: anything with a ``predict(x)``.

A :class:`Peer` is a label, a ``predict(x) -> outputs`` over a float32 (rows, inputs)
array, and, when the peer knows it, the network it computes (as it computes it:
normalisation layers unfolded), so :func:`~mlpcodegen.harness.verify.verify` needs no
other description of the model.  :func:`as_peer` turns what a user passes into one,
through one table: a Keras model, a model file (read by the Keras frontend, run by
Keras only when first called), a :class:`Peer` already built (the reference evaluator,
another target, ONNX Runtime), an object with ``predict`` or a plain callable.

This module is the harness's one door to the Keras frontend (and to TensorFlow's
LiteRT converter): verify and the benchmark import it, never the frontend.
"""
from __future__ import annotations

import functools
import os
import sys
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from ..errors import ValidationError
from ..ir import Network
from ..numeric import numeric_type

Predict = Callable[[np.ndarray], Any]


@dataclass(frozen=True)
class Peer:
    """``label`` names it in reports (``model.predict`` for Keras, as before);
    ``read_network`` (None: unknown) returns the network it computes, unfolded;
    ``input_dtype``: the type its inputs are rounded to when verify scales them (Keras,
    LiteRT and ONNX Runtime take float32; the reference and a user's function float64)."""

    label: str
    predict: Predict
    read_network: Optional[Callable[[], Network]] = None
    input_dtype: str = "float64"

    def network(self) -> Optional[Network]:
        return None if self.read_network is None else self.read_network()


# ------------------------------------------------------------------ Keras


def keras_peer(model: Any) -> Peer:
    """``model.predict`` of a ``keras.Model``, the whole batch at once, silently."""
    from ..frontends import keras as frontend

    def predict(x: np.ndarray) -> np.ndarray:
        return np.asarray(model.predict(x, batch_size=len(x), verbose=0))

    return Peer("model.predict", predict, lambda: frontend.load(model, fold=False), "float32")


def file_peer(path: Any) -> Peer:
    """A ``.keras``/``.h5`` file: its network read without TensorFlow; Keras loads it
    (once) only when ``predict`` is first called."""
    from ..frontends import keras as frontend

    @functools.lru_cache(maxsize=1)
    def model() -> Any:
        return frontend.load_keras_model(path)

    def predict(x: np.ndarray) -> np.ndarray:
        return np.asarray(model().predict(x, batch_size=len(x), verbose=0))

    return Peer("model.predict", predict, lambda: frontend.load(path, fold=False), "float32")


def litert_runner(model: Any, threads: int = 1) -> Predict:
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


def litert_peer(model: Any, threads: int = 1) -> Peer:
    """A Keras model converted to LiteRT and run by its interpreter."""
    from ..frontends import keras as frontend

    return Peer("LiteRT", litert_runner(model, threads), lambda: frontend.load(model, fold=False), "float32")


# ------------------------------------------------------------------ built from the IR


def reference_peer(net: Network) -> Peer:
    """The float64 reference evaluator (:func:`mlpcodegen.reference.evaluate`) on ``net``."""
    from ..reference import evaluate

    return Peer("reference evaluator", lambda x: evaluate(net, np.asarray(x, dtype=np.float64)), lambda: net)


def target_peer(net: Network, target: str, dtype: Optional[str] = None, *, name: str = "mlp",
                **options: object) -> Peer:
    """Another target's predictor (built now: a bad target or dtype fails here)."""
    from ..backends import get_backend
    from ..runtime import load

    dtype = dtype or get_backend(target).dtypes[0]
    predict = load(net, target, dtype=dtype, name=name, **options)
    return Peer(f"{target} {dtype}", predict, lambda: net, numeric_type(dtype or get_backend(target).dtypes[0]).numpy)


def onnx_runtime_peer(net: Network, threads: int = 1) -> Peer:
    """ONNX Runtime on the graph :mod:`.onnx_peer` builds from ``net``."""
    from .onnx_peer import onnx_runtime_session

    session = onnx_runtime_session(net, threads)
    return Peer("ONNX Runtime", lambda x: session(np.asarray(x, dtype=np.float32)), lambda: net, "float32")


# ------------------------------------------------------------------ anything with predict


def predict_peer(thing: Any) -> Peer:
    """An object with ``predict(x)`` (a scikit-learn regressor, a wrapper, ...)."""
    return Peer(f"{type(thing).__name__}.predict", thing.predict)


def callable_peer(function: Callable[[np.ndarray], Any]) -> Peer:
    """A plain function of the (rows, inputs) array."""
    return Peer(getattr(function, "__name__", type(function).__name__), function)


def _is_path(thing: Any) -> bool:
    return isinstance(thing, (str, bytes, os.PathLike))


def _is_keras_model(thing: Any) -> bool:
    """A ``keras.Model`` (Keras 3 or tf_keras); Keras is loaded already if it is one."""
    return any(module is not None and isinstance(thing, module.Model)
               for module in (sys.modules.get("keras"), sys.modules.get("tf_keras")))


#: (test, how to make it a peer), first match wins: the order is the precedence (a
#: Keras model has ``predict`` but takes batch_size/verbose; a Peer is callable-free).
_PEER_KINDS: tuple[tuple[Callable[[Any], bool], Callable[[Any], Peer]], ...] = (
    (lambda thing: isinstance(thing, Peer), lambda peer: peer),
    (_is_path, file_peer),
    (_is_keras_model, keras_peer),
    (lambda thing: callable(getattr(thing, "predict", None)), predict_peer),
    (callable, callable_peer),
)


def as_peer(thing: Any) -> Peer:
    """``thing`` as a :class:`Peer` (see the module docstring for what is accepted)."""
    for test, make in _PEER_KINDS:
        if test(thing):
            return make(thing)
    raise ValidationError(f"cannot compare with a {type(thing).__name__}: pass a keras.Model, a .keras/.h5 "
                          "path, a Peer (reference_peer, target_peer, ...), an object with predict(x) or a "
                          "function of x")
