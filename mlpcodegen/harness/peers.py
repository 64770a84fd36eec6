"""What a target is compared with or timed against: anything with a ``predict(x)``.

A :class:`Peer` is a label, a ``predict(x) -> outputs`` over a (rows, inputs) array,
and, when the peer knows it, the network it computes (as it computes it: normalisation
layers unfolded), so :func:`~mlpcodegen.harness.verify.verify` needs no other
description of the model.  :func:`as_peer` turns what a user passes into one, through
tables: a model file or a framework object is run by its own framework, chosen by the
format :mod:`mlpcodegen.frontends` finds (by content and module name: no framework is
imported to detect one) --

* Keras file: ``model.predict`` (Keras loads it only when first called);
* ONNX file or ``ModelProto``: ONNX Runtime on the original graph (not our re-export);
* scikit-learn estimator: ``predict_proba`` for classifiers, else ``predict``;
* PyTorch module: its forward pass (eval mode, no gradients) in its parameters' type;
* Keras model: ``model.predict``;

-- or a :class:`Peer` already built (the reference evaluator, another target), an
object with ``predict`` or a plain callable.

This module is the harness's one door to the frontends (and to TensorFlow's LiteRT
converter): verify and the benchmark import it, never a frontend.
"""
from __future__ import annotations

import functools
import os
import sys
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from ..core.errors import ModelFormatError, ValidationError
from ..core.ir import Network
from ..core.numeric import numeric_type

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
    #: Errors are measured at no less than this fraction of the output's largest magnitude
    #: over the batch (0: at each value's own magnitude).  ONNX Runtime's vectorised
    #: float32 Sigmoid is accurate in absolute terms, not relative ones: off by up to
    #: 1.4e-7 everywhere on [-30, 30] (measured: 2e6 points, vs float64), e.g. 1.4e-7 where
    #: the true value is 7e-8, thousands of ULPs of a tail value; measured at the size of
    #: its output's largest value (0.5 or more for a sigmoid spanning its centre) that is
    #: <= 3 ULPs.  A fixed floor of 1 instead hid any error on an output small everywhere
    #: (1e-6 returned as 0 passed): relative to the output's own size, it is caught.
    #: (An output of Sigmoid's tail alone, under ~0.02 on the whole batch, is then beyond
    #: ONNX Runtime's accuracy and its comparison fails: a true statement about it.)
    magnitude_floor: float = 0.0
    #: The type it computes in when its outputs cannot say (a bfloat16 module's outputs
    #: come back as float64: NumPy has no bfloat16); None: the outputs' type.
    computes_in: Optional[str] = None

    def network(self) -> Optional[Network]:
        return None if self.read_network is None else self.read_network()


# ------------------------------------------------------------------ Keras


def keras_peer(model: Any) -> Peer:
    """``model.predict`` of a ``keras.Model``, the whole batch at once, silently."""

    def predict(x: np.ndarray) -> np.ndarray:
        return _keras_predict(model, x)

    return Peer("model.predict", predict, _network_of(model), "float32")


def _keras_predict(model: Any, x: np.ndarray) -> np.ndarray:
    """``model.predict`` on flat rows; a model with a multi-axis input (read flattened,
    row-major, by the frontend) gets each row in its own shape."""
    inputs = getattr(model, "inputs", None) or [None]
    shape = tuple(getattr(inputs[0], "shape", None) or ())[1:]
    x = x.reshape(len(x), *shape) if len(shape) > 1 and None not in shape else x
    return np.asarray(model.predict(x, batch_size=len(x), verbose=0))


def file_peer(path: Any, weights: Any = None, limits: Any = None) -> Peer:
    """A model file, run by its framework (see :data:`_FILE_PEERS`); ``limits``: the
    :class:`~mlpcodegen.core.limits.ReadLimits` every read of the file obeys (None: defaults)."""
    from ..frontends import file_format

    fmt = file_format(path)
    make = _FILE_PEERS.get(fmt.name)
    if make is None:  # a format only recognised to be refused (torch.save files): the frontend says why
        from ..frontends import load

        load(path, weights=weights)
        raise ModelFormatError(f"{path}: no framework to compare a {fmt.title} file with")
    return make(path, weights, limits)


def _network_of(source: Any, weights: Any = None, limits: Any = None) -> Callable[[], Network]:
    """The network ``source`` computes, unfolded, read by its frontend (cached)."""
    from ..frontends import load

    return functools.lru_cache(maxsize=1)(lambda: load(source, weights=weights, fold=False, limits=limits))


def keras_file_peer(path: Any, weights: Any = None, limits: Any = None) -> Peer:
    """A ``.keras``/``.h5``/architecture ``.json`` (+ ``weights``) file: its network read
    without TensorFlow; Keras loads it (once) only when ``predict`` is first called."""
    from .keras_model import load_keras_model

    extra = {} if weights is None else {"weights": weights}
    if limits is not None:
        extra["limits"] = limits

    @functools.lru_cache(maxsize=1)
    def model() -> Any:
        return load_keras_model(path, **extra)

    def predict(x: np.ndarray) -> np.ndarray:
        return _keras_predict(model(), x)

    return Peer("model.predict", predict, _network_of(path, weights, limits), "float32")


def _onnx_session_peer(serialized: bytes, network: Callable[[], Network], source_name: str = "the model") -> Peer:
    """ONNX Runtime on a serialized graph, pruned to the nodes its one floating-point
    output depends on (:func:`_pruned_model`), its input in the type the graph declares.
    ONNX Runtime's failures (it refuses, or would abort on, graphs the frontend never had
    to read) become :class:`ModelFormatError` naming ``source_name``."""
    import onnxruntime as ort

    from ..core.errors import ModelFormatError

    options = ort.SessionOptions()
    # Basic optimisations only (constant folding, no-op removal): the extended ones fuse
    # subgraphs into kernels with approximations of their own (FastGelu).
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    try:  # (a model ONNX Runtime's own reader refuses: the same error)
        session = ort.InferenceSession(_pruned_model(serialized), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's own exception types, not importable stably
        raise ModelFormatError(_ort_failure(source_name, exc)) from None
    source = session.get_inputs()[0]
    floats = [o.name for o in session.get_outputs() if o.type in _ORT_FLOATS]
    dtype = _ORT_FLOATS.get(source.type, "float32")

    def predict(x: np.ndarray) -> np.ndarray:
        try:
            return _run_rows(session, floats[:1], source.name, list(source.shape), np.asarray(x, dtype=dtype))
        except Exception as exc:
            raise ModelFormatError(_ort_failure(source_name, exc)) from None

    return Peer("ONNX Runtime", predict, network, dtype, magnitude_floor=ORT_MAGNITUDE_FLOOR)


def _run_rows(session: Any, outputs: list, name: str, shape: list, rows: np.ndarray) -> np.ndarray:
    """The graph on one flat row per sample, as the ONNX frontend reads it: each row
    reshaped in C order to the input's sample shape; a fixed batch B run B rows at a time
    (the last run padded with zeros), a vector input [n] one row at a time; the output
    flattened per sample."""
    if len(shape) == 2 and not isinstance(shape[0], int):  # (batch, features): as it is
        return np.asarray(session.run(outputs, {name: rows})[0])
    batch = 1 if len(shape) == 1 else shape[0] if isinstance(shape[0], int) else max(len(rows), 1)
    sample, results = shape[1:] if len(shape) > 1 else shape, []
    for start in range(0, len(rows), batch):
        chunk = rows[start:start + batch]
        padded = np.concatenate([chunk, np.zeros((batch - len(chunk), *chunk.shape[1:]), rows.dtype)])
        feed = padded.reshape(sample if len(shape) == 1 else [batch, *sample])
        results.append(np.asarray(session.run(outputs, {name: feed})[0]).reshape(batch, -1)[:len(chunk)])
    return np.concatenate(results)


#: ONNX Runtime's errors are measured at its outputs' own size (see :attr:`Peer.magnitude_floor`).
ORT_MAGNITUDE_FLOOR = 1.0

_ORT_FLOATS = {"tensor(float)": "float32", "tensor(double)": "float64", "tensor(float16)": "float16"}


def _ort_failure(source_name: str, exc: BaseException) -> str:
    from ..core.untrusted import quote_name

    return f"ONNX Runtime cannot run {quote_name(str(source_name))}: {quote_name(str(exc))[:300]}"


def _pruned_model(serialized: bytes) -> bytes:
    """The model holding only the nodes its floating-point output depends on (the ones
    the frontend read and vetted): ONNX Runtime builds kernels for every node, dead ones
    too, and aborts the process on some malformed ones (a Split with contradicting
    ``num_outputs``) or refuses unknown domains."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.ModelProto()
    model.ParseFromString(serialized)
    graph = model.graph
    floats = (TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16)
    outputs = ([v for v in graph.output if v.type.tensor_type.elem_type in floats][:1] or _zipmap_input(graph)
               or list(graph.output[:1]))
    needed = {v.name for v in outputs}
    kept = []
    for node in reversed(graph.node):  # a valid graph is topologically sorted
        if needed.intersection(node.output):
            kept.append(node)
            needed.update(_node_inputs(node))
    initializers = {t.name for t in graph.initializer}
    data_inputs = [v for v in graph.input if v.name not in initializers]
    inputs = [v for i, v in enumerate(data_inputs) if i == 0 or v.name in needed]
    pruned = helper.make_graph(
        kept[::-1], graph.name, inputs, outputs,
        initializer=[t for t in graph.initializer if t.name in needed],
        value_info=[v for v in graph.value_info if v.name in needed])
    result = onnx.ModelProto()
    result.CopyFrom(model)
    result.graph.CopyFrom(pruned)
    used = {node.domain for node in kept} | {""}
    del result.opset_import[:]
    result.opset_import.extend(o for o in model.opset_import if o.domain in used or o.domain == "ai.onnx")
    del result.functions[:]
    return result.SerializeToString()


def _zipmap_input(graph: Any) -> list:
    """skl2onnx's default classifier output is a ZipMap (a sequence of maps) of the
    probability tensor: that tensor, which the ONNX frontend converts."""
    from onnx import TensorProto, helper

    names = {v.name for v in graph.output}
    return [helper.make_tensor_value_info(node.input[0], TensorProto.FLOAT, None) for node in graph.node
            if node.op_type == "ZipMap" and node.domain == "ai.onnx.ml" and node.input and node.output
            and node.output[0] in names][:1]


def _node_inputs(node: Any) -> set:
    """The names ``node`` reads, with those its subgraphs (If/Loop bodies) read."""
    names = {name for name in node.input if name}
    for attribute in node.attribute:
        for graph in ([attribute.g] if attribute.HasField("g") else []) + list(attribute.graphs):
            for inner in graph.node:
                names |= _node_inputs(inner)
    return names


def onnx_file_peer(path: Any, weights: Any = None, limits: Any = None) -> Peer:
    """ONNX Runtime on the original file (pruned to what the output depends on).  The
    frontend reads (and vets) the file first: external data is refused there, and ONNX
    Runtime gets bytes, not the path, so it cannot open any other file."""
    from ..core._files import read_regular
    from ..core.limits import DEFAULT_LIMITS

    network = _network_of(path, weights, limits)
    network()  # refuses what mlpcodegen cannot read before ONNX Runtime parses the file
    serialized = read_regular(path, (limits or DEFAULT_LIMITS).max_file_bytes, "model file", error=ModelFormatError)
    return _onnx_session_peer(serialized, network, os.fspath(path))


def onnx_object_peer(model: Any) -> Peer:
    """ONNX Runtime on an in-memory ``onnx.ModelProto``."""
    network = _network_of(model)
    network()
    return _onnx_session_peer(model.SerializeToString(), network)


def sklearn_peer(estimator: Any) -> Peer:
    """A scikit-learn estimator: ``predict_proba`` for a classifier (what the frontend's
    network computes), else ``predict``, as (rows, outputs)."""
    method = getattr(estimator, "predict_proba", None) or estimator.predict
    label = f"{type(estimator).__name__}.{method.__name__}"

    def predict(x: np.ndarray) -> np.ndarray:
        out = np.asarray(method(np.asarray(x, dtype=np.float64)))
        return out.reshape(len(x), -1)

    return Peer(label, predict, _network_of(estimator), "float64")


def torch_peer(module: Any) -> Peer:
    """A PyTorch module's forward pass, in eval mode without gradients, in the type of
    its parameters (float32 unless converted)."""
    torch = sys.modules["torch"]  # loaded: the module is a torch object
    parameter = next(iter(module.parameters()), None)
    dtype = torch.float32 if parameter is None else parameter.dtype

    def predict(x: np.ndarray) -> np.ndarray:
        modes = [(m, m.training) for m in module.modules()]  # train() would give every submodule the root's
        module.eval()
        try:
            with torch.no_grad():
                y = module(torch.as_tensor(np.asarray(x), dtype=dtype))
            return y.detach().cpu().to(torch.float64).numpy()  # numpy has no bfloat16: computes_in says it
        finally:
            for m, training in modes:
                m.training = training

    computes_in = str(dtype).split(".")[-1]
    input_dtype = "float64" if computes_in == "float64" else "float32"
    return Peer(f"{type(module).__name__} forward", predict, _network_of(module), input_dtype,
                computes_in=computes_in)


def litert_runner(model: Any, threads: int = 1) -> Predict:
    """``f(x) -> y`` through the LiteRT (TFLite) interpreter with XNNPACK on ``threads``
    threads, for a Keras model converted by TensorFlow's converter: a peer for the
    benchmark.  Uses ``ai_edge_litert`` when installed, else ``tf.lite``."""
    import contextlib
    import io

    import tensorflow as tf

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        flatbuffer = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    return litert_bytes_runner(flatbuffer, threads)


def litert_bytes_runner(flatbuffer: bytes, threads: int = 1) -> Predict:
    """``f(x) -> y`` through the LiteRT interpreter (XNNPACK, ``threads`` threads) on a .tflite's bytes."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # pragma: no cover - depends on what is installed
        import tensorflow as tf

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


def tflite_file_peer(path: Any, weights: Any = None, limits: Any = None) -> Peer:
    """LiteRT on a float32 .tflite file (its bytes, read after the frontend vetted the file).
    An int8 model is refused here: its float targets compute the dequantised weights, which
    LiteRT does not; its ``--dtype int8`` C is compared with LiteRT bit for bit by
    tests/test_tflite.py and bench/int8.py."""
    from ..core._files import read_regular
    from ..core.errors import UnsupportedError
    from ..core.limits import DEFAULT_LIMITS

    network = _network_of(path, weights, limits)
    if getattr(network(), "int8", None) is not None:
        raise UnsupportedError(f"{path}: an int8 .tflite is checked bit for bit against LiteRT by verify --dtype "
                               "int8 (its float targets run the dequantised weights)")
    flatbuffer = read_regular(path, (limits or DEFAULT_LIMITS).max_file_bytes, "model file", error=ModelFormatError)
    return Peer("LiteRT", litert_bytes_runner(flatbuffer), network, "float32")


def model_network(path: Any, weights: Any = None, limits: Any = None) -> Network:
    """The network a model file holds, as ``mlpcodegen.load`` reads it (folded; an int8
    .tflite with its int8 plan)."""
    from ..frontends import load

    return load(path, weights=weights, limits=limits)


def int8_tflite_peer(path: Any, network: Network, limits: Any = None) -> Optional[Peer]:
    """What ``--dtype int8``'s C computes bit for bit, on float rows: LiteRT's interpreter with
    its reference kernels (``BUILTIN_REF``) on the int8 .tflite ``path`` (``network`` read from
    it): float I/O as the model takes it, int8 I/O through the plan's QUANTIZE and DEQUANTIZE
    (as the C's float wrapper).  None when ``path`` is not a .tflite file (a float model
    quantised by ``--calibrate``: no file defines its bits)."""
    from ..core._files import read_regular
    from ..frontends import file_format
    from ..core.limits import DEFAULT_LIMITS

    plan = getattr(network, "int8", None)
    if plan is None or not isinstance(path, (str, os.PathLike)) or file_format(path).name != "tflite":
        return None
    flatbuffer = read_regular(path, (limits or DEFAULT_LIMITS).max_file_bytes, "model file", error=ModelFormatError)
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_content=flatbuffer, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    given, taken = interpreter.get_input_details()[0], interpreter.get_output_details()[0]

    def predict(x: np.ndarray) -> np.ndarray:
        rows = np.asarray(x, dtype=np.float32)
        interpreter.resize_tensor_input(given["index"], (len(rows), rows.shape[1]))
        interpreter.allocate_tensors()
        fed = rows if plan.float_input else plan.input.quantize(rows)
        interpreter.set_tensor(given["index"], np.ascontiguousarray(fed, dtype=given["dtype"]))
        interpreter.invoke()
        out = interpreter.get_tensor(taken["index"]).reshape(len(rows), -1)
        return out.astype(np.float32) if plan.float_output else plan.output.dequantize(out)

    return Peer("LiteRT (reference kernels)", predict, lambda: network, "float32")


def litert_peer(model: Any, threads: int = 1) -> Peer:
    """A Keras model converted to LiteRT and run by its interpreter."""
    return Peer("LiteRT", litert_runner(model, threads), _network_of(model), "float32")


# ------------------------------------------------------------------ built from the IR


def reference_peer(net: Network) -> Peer:
    """The float64 reference evaluator (:func:`mlpcodegen.core.reference.evaluate`) on ``net``."""
    from ..core.reference import evaluate

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
    return Peer("ONNX Runtime", lambda x: session(np.asarray(x, dtype=np.float32)), lambda: net, "float32",
                magnitude_floor=ORT_MAGNITUDE_FLOOR)


# ------------------------------------------------------------------ anything with predict


def predict_peer(thing: Any) -> Peer:
    """An object with ``predict(x)`` (a scikit-learn regressor, a wrapper, ...)."""
    return Peer(f"{type(thing).__name__}.predict", thing.predict)


def callable_peer(function: Callable[[np.ndarray], Any]) -> Peer:
    """A plain function of the (rows, inputs) array."""
    return Peer(getattr(function, "__name__", type(function).__name__), function)


def _is_keras_model(thing: Any) -> bool:
    """A ``keras.Model`` (Keras 3 or tf_keras); Keras is loaded already if it is one."""
    return any(module is not None and isinstance(thing, module.Model)
               for module in (sys.modules.get("keras"), sys.modules.get("tf_keras")))


def _is_path(thing: Any) -> bool:
    return isinstance(thing, (str, os.PathLike))


#: File format (``frontends.FORMATS`` name) -> peer(path, weights).
_FILE_PEERS: dict[str, Callable[[Any, Any, Any], Peer]] = {
    "keras": keras_file_peer,
    "onnx": onnx_file_peer,
    "tflite": tflite_file_peer,
}

#: Object format -> peer(object).
_OBJECT_PEERS: dict[str, Callable[[Any], Peer]] = {
    "keras": keras_peer,
    "onnx": onnx_object_peer,
    "sklearn": sklearn_peer,
    "torch": torch_peer,
}


def _framework(thing: Any) -> Optional[str]:
    """The object format of ``thing`` (by module name, nothing imported), or None."""
    from ..frontends import FORMATS

    return next((fmt.name for fmt in FORMATS if fmt.owns is not None and fmt.owns(thing)), None)


def _framework_peer(thing: Any) -> Peer:
    return _OBJECT_PEERS[_framework(thing)](thing)


#: (test, how to make it a peer), first match wins: the order is the precedence (a
#: Keras model or scikit-learn estimator has ``predict`` but is run its own way).
_PEER_KINDS: tuple[tuple[Callable[[Any], bool], Callable[[Any], Peer]], ...] = (
    (lambda thing: isinstance(thing, Peer), lambda peer: peer),
    (_is_path, file_peer),
    (lambda thing: _framework(thing) in _OBJECT_PEERS, _framework_peer),
    (_is_keras_model, keras_peer),  # a keras.Model subclass defined outside Keras (in __main__, ...)
    (lambda thing: callable(getattr(thing, "predict", None)), predict_peer),
    (callable, callable_peer),
)


def as_peer(thing: Any, weights: Any = None, limits: Any = None) -> Peer:
    """``thing`` as a :class:`Peer` (see the module docstring for what is accepted);
    ``weights``: the weights file of a Keras architecture JSON path; ``limits``: the
    :class:`~mlpcodegen.core.limits.ReadLimits` a model file is read under (None: defaults)."""
    if weights is not None and not _is_path(thing):
        raise ValidationError("a separate weights file goes with a model file path (a Keras architecture "
                              "JSON), not with an object")
    if _is_path(thing):
        return file_peer(thing, weights, limits)
    for test, make in _PEER_KINDS:
        if test(thing):
            return make(thing)
    raise ValidationError(f"cannot compare with a {type(thing).__name__}: pass a model file (.keras, .h5, .json, "
                          ".onnx), a Keras, scikit-learn, PyTorch or ONNX model object, a Peer (reference_peer, "
                          "target_peer, ...), an object with predict(x) or a function of x")
