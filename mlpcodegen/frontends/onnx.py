"""ONNX frontend: a ``.onnx`` file (or an in-memory ``onnx.ModelProto``) that is a chain
of dense layers, read into the IR with the ``onnx`` package only (no ONNX Runtime).

Two halves:

* :func:`read_model_file` (run in the child process of :mod:`._sandbox`) reads the
  bounded file, parses the protobuf, refuses external data, runs ONNX's checker (a
  graph it refuses -- two nodes writing one value, nodes out of order -- is refused)
  and describes the graph as JSON plus float64 arrays.  The parse runs in the sandbox
  because protobuf expands what it parses (a packed repeated ``int64`` of one-byte varints is eight times its
  bytes), so a 256 MiB file could ask for gigabytes: the child's memory and time limits
  cap that, and the caller never holds an untrusted ``ModelProto`` at all.
* :func:`_build` (in the caller) walks that description from the one graph input to
  the one floating-point output, node by node, through the table :data:`_OPS` keyed by
  operator type, and builds the :class:`~mlpcodegen.core.ir.Network`.

What is read: Gemm (alpha, beta, transB; not transA), MatMul by a constant with an Add
of a constant (either order: the bias), Sub/Mul by a constant and Div by one (x / c),
the activation operators (:data:`SUPPORTED_OPS`; Clip becomes relu/relu6/hard_tanh or a
shifted relu, a non-standard HardSigmoid or Selu a scale step and relu/elu),
BatchNormalization in inference mode (an affine step, folded), LayerNormalization and
RMSNormalization over the feature axis (layer_norm / rms_norm with the stored epsilon,
then an affine step), Flatten/Reshape/Squeeze/Unsqueeze that keep one sample per row, Identity, Dropout and
Cast to a float type (identities at inference), constants from initializers and Constant
nodes (a Cast of a constant is applied as ONNX does: :mod:`._onnx_cast`), and the
affine ``ai.onnx.ml`` steps skl2onnx writes in front of a network (Scaler, as
``(x - offset) * scale``; LinearRegressor without post_transform), folded into the first
layer as the scikit-learn frontend folds a scaler, the notes saying so.

Shapes: the input is (batch, features...) -- any batch, fixed or not, each row one
sample -- or a vector [n] (one sample, as NNet converters write, with ``MatMul(W, x)``:
the weights on the left).  Element-wise steps work on a sample of any shape; a dense
layer needs it flat, so before the first one only steps that keep one sample per row
(Flatten, Reshape, Squeeze, Unsqueeze and element-wise ones) may come; the generated
function takes each sample's values flattened in C (row-major) order, and the notes say
so.

The multi-node forms exporters write for one step are recognised
(:data:`DECOMPOSED_FORMS`): ``x * g(x)`` / ``x / g(x)`` / ``x - g(x)`` (silu, hard_silu,
mish, softsign below the opsets that have them as operators; torch's Tanhshrink),
torch's GLU (``Split`` into halves a, b, then ``a * Sigmoid(b)``), torch's exact and tanh
GELU below opset 20 (``x * (Erf(x / sqrt(2)) + 1) * 0.5`` and its tanh form), torch's Hardshrink and Softshrink
(``Where`` of ``Greater``/``Less`` by the threshold), torch's LayerNorm below opset 17
(``x - ReduceMean(x)`` over ``Sqrt(ReduceMean(Pow(., 2)) + eps)``, its Mul/Add by weight
and bias as ordinary steps), skl2onnx's classifier ``Concat(1 - p, p)`` and torch's
``x.view(x.size(0), -1)`` with a dynamic batch (a Reshape by a shape computed from
``Shape(x)``: Gather, Unsqueeze, Concat...).  Each is
read only when every node of it is as the exporter writes it (constants included), and a
form must account for every reader of the value it starts from.

torch's ``Softplus(beta, threshold)`` is exported as ``Softplus(beta x) / beta`` without
the threshold: the file computes the exact softplus, and that is what is converted (a
scale, softplus, a scale by 1 / beta; the torch frontend computes the same, refusing
thresholds small enough to matter -- a file cannot say it had one).

Of several outputs the one floating-point output is converted (a classifier's integer
label is named in the network's notes); without one, the probability tensor feeding
skl2onnx's ``ZipMap`` (a sequence of maps), and the notes say so.  Anything else is
refused naming the first node no dense network has and its operator (before any shape
is looked at), with the supported list; opsets newer than the onnx package knows are
refused (ONNX's checker accepts them; ONNX Runtime does not).

Names from the file are data: they travel in the IR and in error messages (quoted).
Only the graph's nodes are read: the producer's metadata, docs and functions are not.
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from ..core.activations import REGISTRY, SELU_ALPHA, SELU_SCALE
from ..core.errors import MlpCodegenError, ModelFormatError, UnsupportedError, ValidationError
from ..core.ir import Activate, Activation, Affine, Dense, Network
from ..core.limits import DEFAULT_LIMITS, LimitExceeded, ReadLimits
from ..core.passes import fold_affine, fuse_activations
from ..core.scaling import summarise
from ..core.untrusted import quote_name
from . import _sandbox
from ._clamp import clamp_layers
from ._onnx_cast import cast_constant, type_name
from ._preflight import preflight
from ._untrusted_h5 import read_regular_file

try:  # imported here, not in the job: the fork server's children then inherit it (0.3 s each otherwise)
    import onnx as _onnx
except ImportError:  # pragma: no cover - the [onnx] extra is not installed
    _onnx = None

MIN_OPSET = 9
#: TensorProto element types read as weights, and integer types read for shapes and axes.
_FLOAT_TYPES = {1: "float32", 10: "float16", 11: "float64", 16: "bfloat16"}
_INT_TYPES = {2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64", 9: "bool", 12: "uint32",
              13: "uint64"}
_EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL
_ATTRIBUTE_VALUE = {1: "f", 2: "i", 3: "s", 6: "floats", 7: "ints"}  # AttributeProto types read as values
_ATTRIBUTE_TENSOR = 4


# ======================================================================= public


def load_file(path: Any, *, fold: bool = True, limits: ReadLimits | None = None) -> Network:
    """Read a ``.onnx`` file (untrusted: bounded, parsed in the sandbox, no external data)."""
    limits = DEFAULT_LIMITS if limits is None else limits
    label = str(Path(path))
    preflight(label, limits)
    payload = _sandbox.run(read_model_file, (label, limits), limits, label)
    return _build(_decode(payload, label), label, fold, limits)


def load_object(model: Any, *, fold: bool = True) -> Network:
    """Read an in-memory ``onnx.ModelProto`` (already parsed by the caller: no sandbox)."""
    if type(model).__name__ != "ModelProto":
        raise ModelFormatError(f"cannot read an ONNX {type(model).__name__}: pass an onnx.ModelProto "
                               "(onnx.load(path)) or the path of the .onnx file")
    label = f"in-memory ONNX model {quote_name(model.graph.name)!r}"
    try:
        described = _describe(model, DEFAULT_LIMITS)
        _check(model)
    except MlpCodegenError as exc:
        raise type(exc)(f"{label}: {exc}") from None
    except Exception as exc:  # a tensor whose data does not match its shape, ...
        raise ModelFormatError(f"{label} is malformed ({type(exc).__name__}: {exc})") from None
    return _build(_decode(described, label), label, fold)


# ================================================================ child: parse


def read_model_file(label: str, limits: ReadLimits) -> bytes:
    """The sandbox job: the file's graph as :func:`_describe` bytes."""
    if _onnx is None:  # pragma: no cover - depends on what is installed
        raise UnsupportedError("reading .onnx files needs the onnx package: pip install 'mlpcodegen[onnx]'")
    data = read_regular_file(label, limits)
    model = _onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as exc:  # protobuf's DecodeError, or a RuntimeError of the C parser
        raise ModelFormatError(f"{label} is a truncated or corrupt ONNX file ({type(exc).__name__}: {exc})") from None
    described = _describe(model, limits)  # first: external data is refused with its own message
    _check(data)
    return described


def _check(model: Any) -> None:
    """ONNX's own checker (single static assignment, topological order, each node
    against its operator's schema, IR version): a graph it refuses is refused, as ONNX
    Runtime refuses it.  (It accepts an opset newer than any it knows: see _opsets.)"""
    try:
        _onnx.checker.check_model(model)
    except Exception as exc:  # onnx.checker.ValidationError, or a C++ error on a malformed graph
        raise ModelFormatError(f"ONNX's checker refuses the graph: {_one_line(str(exc))}") from None


def _one_line(text: str, limit: int = 300) -> str:
    """A message holding file text as one bounded line of printable ASCII."""
    text = "".join(c if " " <= c <= "~" else f"<U+{ord(c):04X}>" for c in " ".join(text.split()))
    return text if len(text) <= limit else text[:limit] + "..."


class _Tensors:
    """Tensors converted to float64 (within the weight budget), as (key, array, dtype)."""

    def __init__(self, limits: ReadLimits) -> None:
        self.limit = self.left = limits.max_weight_values
        self.items: list[tuple[str, Optional[np.ndarray], str]] = []

    def add(self, tensor: Any, where: str) -> str:
        from onnx import numpy_helper  # imported with onnx at the top

        if tensor.data_location == _EXTERNAL or len(tensor.external_data):
            raise UnsupportedError(f"{where}: tensor {quote_name(tensor.name)!r} keeps its data in an external "
                                   "file; only self-contained .onnx files are read (save with "
                                   "save_as_external_data=False)")
        dims = [int(d) for d in tensor.dims]
        if any(d < 0 for d in dims):
            raise ModelFormatError(f"{where}: tensor {quote_name(tensor.name)!r} has negative dimensions {dims}")
        count = math.prod(dims)
        if count > self.left:
            raise LimitExceeded(f"{where}: the weight tensors declare more than the {self.limit:,}"
                                " numbers read; if the model is genuine, raise the limit (--max-size MIB)")
        self.left -= count
        key = str(len(self.items))
        dtype = _FLOAT_TYPES.get(tensor.data_type) or _INT_TYPES.get(tensor.data_type)
        if dtype is None:  # strings, complex numbers...: refused if a node on the chain uses them
            self.items.append((key, None, f"type {tensor.data_type}"))
            return key
        array = np.asarray(numpy_helper.to_array(tensor)).astype(np.float64).reshape(dims)
        self.items.append((key, array, dtype))
        return key


def _describe(model: Any, limits: ReadLimits) -> bytes:
    """The graph as bytes: 8-byte length, JSON (nodes, inputs, outputs, opset, tensors'
    keys, shapes and types), then every tensor's float64 values."""
    graph, tensors = model.graph, _Tensors(limits)
    if len(graph.sparse_initializer):
        raise UnsupportedError("the graph has sparse initializers; only dense weights are supported")
    info = {
        "opset": {d.domain or "ai.onnx": int(d.version) for d in model.opset_import},
        "known": {"ai.onnx": int(_onnx.defs.onnx_opset_version()),
                  "ai.onnx.ml": int(_onnx.defs.onnx_ml_opset_version())},
        "name": graph.name,
        "inputs": [_value_info(v) for v in graph.input],
        "outputs": [_value_info(v) for v in graph.output],
        "initializers": {t.name: tensors.add(t, "initializer") for t in graph.initializer},
        "nodes": [_node(node, tensors) for node in graph.node],
    }
    arrays = [a for _, a, _ in tensors.items if a is not None]
    info["tensors"] = [[key, dtype, None if a is None else list(a.shape)] for key, a, dtype in tensors.items]
    head = json.dumps(info, ensure_ascii=True).encode("ascii")
    return len(head).to_bytes(8, "little") + head + b"".join(np.ascontiguousarray(a, "<f8").tobytes() for a in arrays)


def _value_info(value: Any) -> dict:
    kind = value.type.WhichOneof("value")
    if kind != "tensor_type":
        return {"name": value.name, "type": None, "dims": None}
    tensor = value.type.tensor_type
    dims = None if not tensor.HasField("shape") else [
        int(d.dim_value) if d.HasField("dim_value") else None for d in tensor.shape.dim]
    return {"name": value.name, "type": int(tensor.elem_type), "dims": dims}


def _node(node: Any, tensors: _Tensors) -> dict:
    where = f"node {quote_name(node.name)!r} ({quote_name(node.op_type)})"
    attrs: dict[str, Any] = {}
    for attribute in node.attribute:
        if attribute.type in _ATTRIBUTE_VALUE:
            value = getattr(attribute, _ATTRIBUTE_VALUE[attribute.type])
            if attribute.type == 3:
                value = value.decode("utf-8", "replace")
            elif attribute.type in (6, 7):
                value = list(value)
            attrs[attribute.name] = value
        elif attribute.type == _ATTRIBUTE_TENSOR:
            attrs[attribute.name] = {"tensor": tensors.add(attribute.t, where)}
        else:
            attrs[attribute.name] = {"unsupported": int(attribute.type)}
    return {"op": node.op_type, "name": node.name, "domain": node.domain, "inputs": list(node.input),
            "outputs": list(node.output), "attrs": attrs}


# ============================================================= caller: decode


def _decode(payload: bytes, label: str) -> dict:
    try:
        size = int.from_bytes(payload[:8], "little")
        info = json.loads(payload[8:8 + size].decode("ascii"))
        offset, arrays = 8 + size, {}
        for key, dtype, shape in info["tensors"]:
            if shape is None:
                arrays[key] = (None, dtype)
                continue
            count = math.prod(shape)
            values = np.frombuffer(payload, "<f8", count, offset).reshape(shape)
            arrays[key], offset = (values, dtype), offset + 8 * count
        info["tensors"] = arrays
        return info
    except (ValueError, KeyError, TypeError, IndexError):
        raise ModelFormatError(f"{label}: the file reader returned a malformed answer (corrupt file?)") from None


# ============================================================== caller: build


@dataclass
class _Chain:
    """The walk's state: constants by value name, the shape of the current value, the
    opset, the IR parts built so far, the weights' stored types and notes.

    ``dims`` is the current value's whole shape; when ``batched`` its first axis counts
    samples (``None``: any number) and the rest is one sample, else (a rank-1 graph
    input, NNet style) the value is one sample.  Element-wise steps work on a sample of
    any shape, flattened in C order (``width`` values); a dense layer needs it flat."""

    opset: int
    dims: tuple
    batched: bool = True
    constants: dict = field(default_factory=dict)  # value name -> (array, dtype)
    layers: list = field(default_factory=list)
    dtypes: set = field(default_factory=set)
    current: str = ""
    notes: list = field(default_factory=list)

    @property
    def sample(self) -> tuple:
        return self.dims[1:] if self.batched else self.dims

    @property
    def width(self) -> int:
        return math.prod(self.sample)

    @width.setter
    def width(self, units: int) -> None:
        """The value becomes flat: (batch, units) or (units,)."""
        self.dims = (self.dims[0], units) if self.batched else (units,)

    @property
    def single(self) -> bool:
        """The value holds one sample (no batch axis, or a batch of exactly 1)."""
        return not self.batched or self.dims[0] == 1

    def is_feature_axis(self, axis: Any) -> bool:
        """``axis`` is the last one of a flat sample (1 or -1 of (batch, features))."""
        rank = len(self.dims)
        return (isinstance(axis, int) and len(self.sample) == 1 and -rank <= axis < rank
                and axis % rank == rank - 1)

    def rows(self, node: dict) -> None:
        """Refuse unless the value is (batch, features): what Gemm and the ai.onnx.ml
        operators read."""
        if not self.batched or len(self.dims) != 2:
            raise UnsupportedError(f"{_where(node)}: reads a value of shape {_shape(self.dims)}; it is read on a "
                                   f"(batch, features) value{_FLATTEN_FIRST}")

    def const(self, node: dict, index: int, what: str, optional: bool = False) -> Optional[np.ndarray]:
        names = node["inputs"]
        if index >= len(names) or names[index] == "":
            if optional:
                return None
            raise ModelFormatError(f"{_where(node)}: input #{index} ({what}) is missing")
        found = self.constants.get(names[index])
        if found is None:
            raise UnsupportedError(f"{_where(node)}: input #{index} ({what}) is not a constant (an initializer or "
                                   "a Constant node); only constant weights are supported, from one graph input")
        array, dtype = found
        if array is None:
            raise UnsupportedError(f"{_where(node)}: input #{index} ({what}) is of {dtype}, not numbers")
        if not np.all(np.isfinite(array)):
            raise ValidationError(f"{_where(node)}: input #{index} ({what}) has non-finite values; fix the "
                                  "weights before converting")
        if dtype in _FLOAT_TYPES.values():
            self.dtypes.add(dtype)
        return array

    def vector(self, node: dict, index: int, what: str, optional: bool = False) -> Optional[np.ndarray]:
        """A constant broadcast over one sample (numpy's rules: one value per feature, or
        one for all...), flattened in C order; refused if it would vary across samples or
        grow the value."""
        array = self.const(node, index, what, optional)
        if array is None:
            return None
        template = (1, *self.sample) if self.batched else self.sample
        try:
            fits = np.broadcast_shapes(template, array.shape) == template
        except ValueError:
            fits = False
        if not fits:
            raise UnsupportedError(f"{_where(node)}: {what} has shape {list(array.shape)}; expected one value per "
                                   f"feature ({_shape(self.sample)}) or one for all")
        return np.broadcast_to(array, template).reshape(-1).copy()


def _where(node: dict) -> str:
    return f"node {quote_name(node['name'])!r} ({quote_name(node['op'])})"


def _attr(node: dict, key: str, default: Any, kind: type = float, finite: bool = True) -> Any:
    value = node["attrs"].get(key, default)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is float and (math.isnan(value) or finite and math.isinf(value))):
        raise ModelFormatError(f"{_where(node)}: attribute {quote_name(key)!r} is not a {kind.__name__}: "
                               f"{quote_name(value)}")
    return value


def _chain_input(node: dict, chain: _Chain, index: int = 0) -> None:
    """The node reads the chain's value as input ``index`` (and no other non-constant)."""
    if index >= len(node["inputs"]) or node["inputs"][index] != chain.current:
        raise UnsupportedError(f"{_where(node)}: the network's value must be input #{index}; supported: "
                               f"{_supported()}")


# -- layers


_FLATTEN_FIRST = " (a Flatten or Reshape to (batch, features) before it is read)"


def _gemm(node: dict, chain: _Chain) -> list:
    """Y = alpha * A @ B' + beta * C, with B' = B or B^T (transB)."""
    _chain_input(node, chain)
    chain.rows(node)
    if _attr(node, "transA", 0, int):
        raise UnsupportedError(f"{_where(node)}: transA=1 (the input transposed) is not a dense layer")
    kernel = chain.const(node, 1, "B")
    if kernel.ndim != 2:
        raise UnsupportedError(f"{_where(node)}: B has shape {list(kernel.shape)}, not 2-D")
    kernel = kernel.T if _attr(node, "transB", 0, int) else kernel
    alpha, beta = _attr(node, "alpha", 1.0), _attr(node, "beta", 1.0)
    return _dense_parts(node, chain, kernel * alpha if alpha != 1.0 else kernel,
                        lambda: _scaled(chain.vector(node, 2, "C", optional=True), beta))


def _scaled(values: Optional[np.ndarray], factor: float) -> Optional[np.ndarray]:
    return values if values is None or factor == 1.0 else values * factor


def _matmul(node: dict, chain: _Chain) -> list:
    """x @ W on (batch, features) or on a one-sample vector; W @ x (the weights on the
    left, as NNet converters write) on a one-sample vector: kernel W^T."""
    left = _other_input(node, chain) == 0
    kernel = chain.const(node, 0 if left else 1, "the weight matrix")
    if kernel.ndim != 2:
        raise UnsupportedError(f"{_where(node)}: the weight matrix has shape {list(kernel.shape)}, not 2-D")
    if left and (chain.batched or len(chain.dims) != 1):
        raise UnsupportedError(f"{_where(node)}: W @ x reads a value of shape {_shape(chain.dims)}; the weights "
                               "on the left are read for a one-sample vector input (shape [n]) only")
    if len(chain.sample) != 1:
        raise UnsupportedError(f"{_where(node)}: reads a value of shape {_shape(chain.dims)}; a dense layer reads "
                               f"one flat vector per sample{_FLATTEN_FIRST}")
    return _dense_parts(node, chain, kernel.T if left else kernel, lambda: None)


def _dense_parts(node: dict, chain: _Chain, kernel: np.ndarray, bias: Callable[[], Any]) -> list:
    """A Dense layer; ``bias()`` reads the bias once the width is the layer's units."""
    if kernel.shape[0] != chain.width:
        raise UnsupportedError(f"{_where(node)}: the weights have {kernel.shape[0]} rows for {chain.width} "
                               "inputs")
    chain.width = int(kernel.shape[1])
    return [Dense(kernel, bias(), name=node["name"] or node["op"])]


def _add(node: dict, chain: _Chain) -> list:
    """x + c or c + x: a bias (merged into the Dense layer before it when it has none)."""
    return _shift(node, chain, chain.vector(node, _other_input(node, chain), "the added constant"))


def _shift(node: dict, chain: _Chain, shift: np.ndarray) -> list:
    """A bias merged into the linear Dense layer before it when that has none, or into the
    scale step before it when that adds nothing (x * s + 0 + c rounds as x * s + c: a Mul
    then an Add); else its own step: (xW + b) + c is not xW + (b + c) in floating point."""
    previous = chain.layers[-1] if chain.layers else None
    if isinstance(previous, Dense) and previous.activation.is_identity and previous.bias is None:
        chain.layers[-1] = Dense(previous.kernel, shift, previous.activation, previous.name)
        return []
    if isinstance(previous, Affine) and previous.activation.is_identity and not np.any(previous.shift):
        chain.layers[-1] = Affine(previous.scale, shift, previous.name)
        return []
    return [Affine(np.ones(chain.width), shift, name=node["name"] or node["op"])]


def _other_input(node: dict, chain: _Chain) -> int:
    """The index of the constant operand of a binary node that reads the chain's value."""
    inputs = node["inputs"]
    if len(inputs) != 2 or inputs.count(chain.current) != 1:
        raise UnsupportedError(f"{_where(node)}: a binary operation must combine the network's value with a "
                               "constant")
    return 1 - inputs.index(chain.current)


def _sub(node: dict, chain: _Chain) -> list:
    """x - c (a bias -c, exact) or c - x (a scale of -1 and a shift)."""
    index = _other_input(node, chain)
    value = chain.vector(node, index, "the subtracted constant")
    if index == 1:
        return _shift(node, chain, -value)
    return [Affine(-np.ones(chain.width), value, name=node["name"] or "Sub")]


def _mul(node: dict, chain: _Chain) -> list:
    scale = chain.vector(node, _other_input(node, chain), "the factor")
    return [Affine(scale, np.zeros(chain.width), name=node["name"] or "Mul")]


def _div(node: dict, chain: _Chain) -> list:
    """x / c: a scale by 1 / c (torch's Softplus(beta) writes Softplus(beta x) / beta); the
    same rounding when c is a power of two, within an ulp otherwise; c / x is refused."""
    if _other_input(node, chain) != 1:
        raise UnsupportedError(f"{_where(node)}: a constant divided by the network's value is not supported; "
                               "only x / c")
    divisor = chain.vector(node, 1, "the divisor")
    if not np.all(divisor != 0):
        raise ValidationError(f"{_where(node)}: the divisor is 0 for some feature")
    return [Affine(1.0 / divisor, np.zeros(chain.width), name=node["name"] or "Div")]


def _batch_norm(node: dict, chain: _Chain) -> list:
    """Inference mode: (x - mean) / sqrt(var + epsilon) * scale + B, one Affine step."""
    _chain_input(node, chain)
    chain.rows(node)
    if _attr(node, "training_mode", 0, int):
        raise UnsupportedError(f"{_where(node)}: training_mode=1; export the model in inference (eval) mode")
    scale, bias, mean, var = (chain.vector(node, i, what) for i, what in
                              enumerate(("scale", "B", "mean", "var"), start=1))
    denominator = np.sqrt(var + _attr(node, "epsilon", 1e-5))
    if not np.all(denominator > 0):
        raise ValidationError(f"{_where(node)}: var + epsilon is not positive for every feature")
    factor = scale / denominator
    return [Affine(factor, bias - mean * factor, name=node["name"] or "BatchNormalization")]


def _normalization(activation: str) -> Callable[[dict, _Chain], list]:
    """LayerNormalization (opset 17) -> layer_norm, RMSNormalization (opset 23) -> rms_norm,
    over the feature axis, with epsilon as stored; Scale and B an Affine step (folded)."""
    def read(node: dict, chain: _Chain) -> list:
        _chain_input(node, chain)
        if not chain.is_feature_axis(_attr(node, "axis", -1, int)):
            raise UnsupportedError(f"{_where(node)}: the axis must be the feature axis (the last of a flat value)")
        epsilon = _attr(node, "epsilon", 1e-5)
        scale = chain.vector(node, 1, "Scale")
        bias = chain.vector(node, 2, "B", optional=True) if activation == "layer_norm" else None
        name = node["name"] or node["op"]
        step = Activate(chain.width, Activation(activation, (("epsilon", epsilon),)), name=name)
        return [step, Affine(scale, np.zeros(chain.width) if bias is None else bias, name=f"{name} (scale)")]
    return read


def _identity(node: dict, chain: _Chain) -> list:
    _chain_input(node, chain)
    return []


def _dropout(node: dict, chain: _Chain) -> list:
    """Identity at inference; a training_mode input (opset 12) must be a constant false."""
    _chain_input(node, chain)
    training = chain.const(node, 2, "training_mode", optional=True)
    if training is not None and np.any(training):
        raise UnsupportedError(f"{_where(node)}: training_mode is true; export in inference mode")
    return []


def _cast(node: dict, chain: _Chain) -> list:
    """A cast to a floating type: the target's dtype decides the precision instead."""
    _chain_input(node, chain)
    if _attr(node, "to", 1, int) not in _FLOAT_TYPES:
        raise UnsupportedError(f"{_where(node)}: casts to a non-floating type")
    return []


def _flatten(node: dict, chain: _Chain) -> list:
    """(d0 * ... * d(axis-1), d(axis) * ... ): nothing to compute when it keeps one
    sample per row (axis 1 of a batch), or the value is one sample."""
    _chain_input(node, chain)
    rank, axis = len(chain.dims), _attr(node, "axis", 1, int)
    if not -rank <= axis <= rank:
        raise ModelFormatError(f"{_where(node)}: axis {axis} is outside the value's {rank} axes")
    axis += rank if axis < 0 else 0
    if chain.single:  # the sizes agree by construction
        known = [1 if d is None else d for d in chain.dims]
        _reshaped(chain, [math.prod(known[:axis]), math.prod(known[axis:])])
    elif axis != 1:
        raise UnsupportedError(f"{_where(node)}: Flatten with axis {axis} of a {_shape(chain.dims)} value mixes "
                               "samples; axis 1 keeps one sample per row")
    else:
        chain.width = chain.width
    return []


def _reshape(node: dict, chain: _Chain) -> list:
    """Nothing to compute when the new shape keeps one sample per row (its first entry
    is the batch: 0, -1 or its size) or the value is one sample; the sample's values
    keep their C order."""
    _chain_input(node, chain)
    _reshape_to(node, chain, [int(v) for v in np.reshape(chain.const(node, 1, "the shape"), -1)])  # an input
    return []                                                                                     # since opset 5


def _reshape_to(node: dict, chain: _Chain, spec: list) -> None:
    """Reshape to ``spec`` (ONNX's: 0 copies an axis unless allowzero, one -1 is inferred;
    None, from a Shape of the value, is the batch's own size)."""
    allowzero, numbers = bool(_attr(node, "allowzero", 0, int)), [v for v in spec if v is not None]
    if (any(v < -1 for v in numbers) or numbers.count(-1) > 1 or (allowzero and 0 in numbers) or None in spec[1:]
            or any(v == 0 and i >= len(chain.dims) for i, v in enumerate(spec))):
        raise UnsupportedError(f"{_where(node)}: reshapes to {_shape(spec)}, not a shape of the same values")
    shape = [chain.dims[i] if v == 0 or v is None else v for i, v in enumerate(spec)]
    if chain.single:
        done = _reshaped(chain, shape)
    elif shape[:1] == [-1]:  # every other entry given: the batch is what is left
        done = -1 not in shape[1:] and math.prod(shape[1:]) == chain.width and _reshaped(chain, [chain.dims[0],
                                                                                                 *shape[1:]])
    else:  # the batch's own size, or 1 for a batch of any size (the graph then runs one row at a time)
        batch = bool(shape) and (shape[0] == chain.dims[0] or shape[0] == 1 and chain.dims[0] is None)
        done = batch and _reshaped(chain, [chain.dims[0], *shape[1:]])
    if not done:
        raise UnsupportedError(f"{_where(node)}: reshapes a {_shape(chain.dims)} value to {_shape(spec)}; only "
                               "shapes that keep one sample per row (the first entry the batch: 0, -1 or its size) "
                               "are supported")


def _squeeze(node: dict, chain: _Chain) -> list:
    """Squeeze / Unsqueeze: a reshape (axes an attribute before opset 13, an input from
    13); the batch axis stays first."""
    _chain_input(node, chain)
    found = chain.const(node, 1, "the axes", optional=True) if len(node["inputs"]) > 1 else None
    axes = [int(v) for v in found.reshape(-1)] if found is not None else node["attrs"].get("axes")
    dims, squeeze = list(chain.dims), node["op"] == "Squeeze"
    rank = len(dims) if squeeze else len(dims) + len(axes or [])  # the axes count in the input, the output
    if axes is None and squeeze:
        axes = [i for i, d in enumerate(dims) if d == 1]
    if not isinstance(axes, list) or any(not -rank <= a < rank for a in axes if isinstance(a, int)) or \
            len({a % max(rank, 1) for a in axes}) != len(axes):
        raise ModelFormatError(f"{_where(node)}: the axes {axes} do not fit a {_shape(chain.dims)} value")
    axes = sorted(a % max(rank, 1) for a in axes)
    if not chain.single and 0 in axes:
        raise UnsupportedError(f"{_where(node)}: moves the batch axis of a {_shape(chain.dims)} value; only the "
                               "sample's axes may be squeezed or added")
    if squeeze:
        if any(dims[a] != 1 for a in axes):
            raise ModelFormatError(f"{_where(node)}: squeezes an axis of {_shape(chain.dims)} that is not 1")
        shape = [d for i, d in enumerate(dims) if i not in axes]
    else:
        shape = dims
        for axis in axes:
            shape = shape[:axis] + [1] + shape[axis:]
    if not _reshaped(chain, shape):
        raise UnsupportedError(f"{_where(node)}: makes a {_shape(chain.dims)} value {_shape(shape)}: no values per "
                               "sample left")
    return []


def _reshaped(chain: _Chain, shape: list) -> bool:
    """Give the value ``shape`` (entry 0 the batch when the value is a batch of several;
    one -1 inferred from the sample's size); False if the sizes do not agree."""
    batch = not chain.single
    rest = [1 if v is None else v for v in (shape[1:] if batch else shape)]
    known = math.prod(v for v in rest if v != -1)
    if -1 in rest:
        if known < 1 or chain.width % known:
            return False
        rest = [chain.width // known if v == -1 else v for v in rest]
    if math.prod(rest) != chain.width or any(v < 1 for v in rest) or not (rest or batch):
        return False
    if batch:
        chain.dims = (chain.dims[0], *rest)
    else:
        chain.batched = len(rest) >= 2 and rest[0] == 1
        chain.dims = tuple(rest)
    return True


# -- activations


def _activation(name: str, **params: Any) -> Callable[[dict, _Chain], list]:
    def read(node: dict, chain: _Chain) -> list:
        _chain_input(node, chain)
        return [Activate(chain.width, Activation(name, tuple(params.items())), name=node["name"] or node["op"])]
    return read


def _act(node: dict, chain: _Chain, name: str, **params: Any) -> list:
    return _activation(name, **params)(node, chain)


def _leaky_relu(node: dict, chain: _Chain) -> list:
    return _act(node, chain, "leaky_relu", negative_slope=_attr(node, "alpha", 0.01))


def _prelu(node: dict, chain: _Chain) -> list:
    return _act(node, chain, "prelu", alpha=tuple(chain.vector(node, 1, "slope")))


def _elu(node: dict, chain: _Chain) -> list:
    return _act(node, chain, "elu", alpha=_attr(node, "alpha", 1.0))


def _celu(node: dict, chain: _Chain) -> list:
    return _act(node, chain, "celu", alpha=_attr(node, "alpha", 1.0))


def _f32(value: float) -> float:
    return float(np.float32(value))


def _selu(node: dict, chain: _Chain) -> list:
    """gamma * elu_alpha(x): selu itself when alpha and gamma are its constants (as
    float32, ONNX's defaults), else elu followed by a scale."""
    alpha, gamma = _attr(node, "alpha", _f32(SELU_ALPHA)), _attr(node, "gamma", _f32(SELU_SCALE))
    if _f32(alpha) == _f32(SELU_ALPHA) and _f32(gamma) == _f32(SELU_SCALE):
        return _act(node, chain, "selu")
    return _act(node, chain, "elu", alpha=alpha) + [Affine(np.full(chain.width, gamma), np.zeros(chain.width),
                                                           name=node["name"] or "Selu")]


def _hard_sigmoid(node: dict, chain: _Chain) -> list:
    """max(0, min(1, alpha x + beta)): hard_sigmoid for alpha 1/6, beta 1/2 (as float32),
    else a scale and shift then relu capped at 1."""
    alpha, beta = _attr(node, "alpha", 0.2), _attr(node, "beta", 0.5)
    if _f32(alpha) == _f32(1 / 6) and beta == 0.5:
        return _act(node, chain, "hard_sigmoid")
    affine = Affine(np.full(chain.width, alpha), np.full(chain.width, beta), name=node["name"] or "HardSigmoid")
    return [affine] + _act(node, chain, "relu", max_value=1.0)


def _gelu(node: dict, chain: _Chain) -> list:
    approximate = _attr(node, "approximate", "none", str)
    if approximate not in ("none", "tanh"):
        raise UnsupportedError(f"{_where(node)}: approximate={quote_name(approximate)!r}; supported: none, tanh")
    return _act(node, chain, "gelu", approximate=float(approximate == "tanh"))


def _softmax_axis(node: dict, chain: _Chain) -> None:
    """The feature axis (1 or -1 of (batch, features)): there the opset < 13 semantics
    (coerced to 2-D at the axis) agree with the later ones."""
    if not chain.is_feature_axis(_attr(node, "axis", 1 if chain.opset < 13 else -1, int)):
        raise UnsupportedError(f"{_where(node)}: the axis must be the feature axis (the last of a flat value)")


def _softmax(node: dict, chain: _Chain) -> list:
    _softmax_axis(node, chain)
    return _act(node, chain, "softmax")


def _log_softmax(node: dict, chain: _Chain) -> list:
    _softmax_axis(node, chain)
    return _act(node, chain, "log_softmax")


def _clip(node: dict, chain: _Chain) -> list:
    """min/max attributes before opset 11, optional constant inputs from 11."""
    if chain.opset < 11:
        low, high = _attr(node, "min", -math.inf, finite=False), _attr(node, "max", math.inf, finite=False)
    else:
        low, high = (_scalar(node, chain, index, what, default) for index, what, default in
                     ((1, "min", -math.inf), (2, "max", math.inf)))
    _chain_input(node, chain)
    return _clip_parts(node, chain, float(low), float(high))


def _scalar(node: dict, chain: _Chain, index: int, what: str, default: float) -> float:
    value = chain.const(node, index, what, optional=True)
    if value is None:
        return default
    if value.size != 1:
        raise UnsupportedError(f"{_where(node)}: {what} must be one number")
    return float(value.reshape(-1)[0])


def _clip_parts(node: dict, chain: _Chain, low: float, high: float) -> list:
    """clip(x, low, high): relu(max_value) for low 0, hard_tanh for [-1, 1], else exactly
    with comparisons and negations (``clamp_layers``): a shift ``low + relu(x - low)``
    would round ``x - low`` where the file's Clip does not round."""
    big = float(np.finfo(np.float32).max)  # the opset < 11 defaults are the float32 extremes
    low, high = (-math.inf if low <= -big else low), (math.inf if high >= big else high)
    if low > high:
        raise UnsupportedError(f"{_where(node)}: min {low:g} is above max {high:g}")
    top = None if math.isinf(high) else high
    if math.isinf(low) and top is None:
        return []
    if low == 0.0:
        return _act(node, chain, "relu", max_value=top)
    if (low, high) == (-1.0, 1.0):
        return _act(node, chain, "hard_tanh")
    return clamp_layers(chain.width, low, high, node["name"] or "Clip")


def _thresholded_relu(node: dict, chain: _Chain) -> list:
    return _act(node, chain, "threshold", threshold=_attr(node, "alpha", 1.0), default_value=0.0)


def _shrink(node: dict, chain: _Chain) -> list:
    """Shrink(lambd, bias): soft_shrink when bias == lambd, hard_shrink when bias == 0."""
    lambd, bias = _attr(node, "lambd", 0.5), _attr(node, "bias", 0.0)
    if bias == lambd:
        return _act(node, chain, "soft_shrink", threshold=lambd)
    if bias == 0.0:
        return _act(node, chain, "hard_shrink", threshold=lambd)
    raise UnsupportedError(f"{_where(node)}: Shrink with bias {bias:g} (neither 0 nor lambd)")


# -- ai.onnx.ml: the affine steps skl2onnx writes in front of a network


def _ml_floats(node: dict, chain: _Chain, key: str, default: Optional[float] = None) -> np.ndarray:
    """A floats attribute with one value per feature or one for all."""
    values = node["attrs"].get(key)
    if values is None and default is not None:
        values = [default]
    if not isinstance(values, list) or not values or not all(isinstance(v, (int, float)) for v in values):
        raise ModelFormatError(f"{_where(node)}: the attribute {key!r} is missing or not a list of numbers")
    array = np.asarray(values, np.float64)
    if array.size not in (1, chain.width):
        raise UnsupportedError(f"{_where(node)}: {key} has {array.size} values for {chain.width} features")
    if not np.all(np.isfinite(array)):
        raise ValidationError(f"{_where(node)}: {key} has non-finite values")
    return np.broadcast_to(array, (chain.width,)).copy()


def _scaler(node: dict, chain: _Chain) -> list:
    """(x - offset) * scale per feature, in two steps as ONNX Runtime rounds it; folded
    into the first layer like a scikit-learn scaler (the notes say so)."""
    _chain_input(node, chain)
    chain.rows(node)
    offset, scale = _ml_floats(node, chain, "offset", 0.0), _ml_floats(node, chain, "scale", 1.0)
    name, zeros = node["name"] or "Scaler", np.zeros(chain.width)
    label = "" if name == "Scaler" else f" {quote_name(name)}"
    chain.notes.append(f"input scaling folded in: ai.onnx.ml Scaler{label}: (x - offset) * scale, offset "
                       f"{summarise(offset)}, scale {summarise(scale)}")
    return [Affine(np.ones(chain.width), -offset, name=name), Affine(scale, zeros, name=f"{name} (scale)")]


def _linear_regressor(node: dict, chain: _Chain) -> list:
    """x @ coefficients^T + intercepts (targets outputs): a linear Dense layer."""
    _chain_input(node, chain)
    chain.rows(node)
    transform = _attr(node, "post_transform", "NONE", str)
    if transform != "NONE":
        raise UnsupportedError(f"{_where(node)}: post_transform {quote_name(transform)!r}; only NONE (affine) is "
                               "read")
    targets = _attr(node, "targets", 1, int)
    values = node["attrs"].get("coefficients")
    if not isinstance(values, list) or targets < 1 or len(values) != targets * chain.width:
        raise ModelFormatError(f"{_where(node)}: coefficients must hold targets ({targets}) x features "
                               f"({chain.width}) numbers")
    kernel = np.asarray(values, np.float64).reshape(targets, chain.width).T
    intercepts = node["attrs"].get("intercepts")
    bias = None if intercepts is None else np.broadcast_to(np.asarray(intercepts, np.float64), (targets,)).copy()
    if not np.all(np.isfinite(kernel)) or bias is not None and not np.all(np.isfinite(bias)):
        raise ValidationError(f"{_where(node)}: non-finite coefficients or intercepts")
    return _dense_parts(node, chain, kernel, lambda: bias)


#: ai.onnx.ml operator -> reader: the affine ones (others are refused by name).
_ML_OPS: dict[str, Callable[[dict, _Chain], list]] = {"Scaler": _scaler, "LinearRegressor": _linear_regressor}
ML_OPS = ("LinearRegressor (post_transform NONE)", "Scaler")


#: ONNX operators that are one activation with its default parameters: the registry's
#: ``onnx`` facet (the same facts the ONNX exporter uses).
_PLAIN = {spec.onnx: _activation(name) for name, spec in REGISTRY.items()
          if spec.onnx and not spec.vector and spec.onnx != "Identity" and name != "elu"}

#: Operator type -> reader(node, chain) -> IR layers.
_OPS: dict[str, Callable[[dict, _Chain], list]] = {
    "Gemm": _gemm, "MatMul": _matmul, "Add": _add, "Sub": _sub, "Mul": _mul, "Div": _div,
    "BatchNormalization": _batch_norm, "LayerNormalization": _normalization("layer_norm"),
    "RMSNormalization": _normalization("rms_norm"), "Flatten": _flatten, "Reshape": _reshape, "Identity": _identity,
    "Dropout": _dropout, "Cast": _cast, "Squeeze": _squeeze, "Unsqueeze": _squeeze,
    **_PLAIN,
    "LeakyRelu": _leaky_relu, "PRelu": _prelu, "Elu": _elu, "Selu": _selu, "Celu": _celu,
    "HardSigmoid": _hard_sigmoid, "HardSwish": _activation("hard_silu"), "Gelu": _gelu, "Mish": _activation("mish"),
    "Softmax": _softmax, "LogSoftmax": _log_softmax, "Clip": _clip, "ThresholdedRelu": _thresholded_relu,
    "Shrink": _shrink,
}

SUPPORTED_OPS = tuple(sorted(_OPS)) + tuple(f"ai.onnx.ml {name}" for name in ML_OPS)

#: Operators read only inside the multi-node forms below.
_FORM_OPS = frozenset({"Split", "ReduceMean", "Pow", "Sqrt", "Erf", "Greater", "Less", "Or", "Where", "Concat",
                       "Abs", "Shape", "Gather", "Slice"})


#: The multi-node forms exporters write for one step, as the README and messages name them.
DECOMPOSED_FORMS = ("x*Sigmoid(x)", "x*HardSigmoid(x)", "x*Tanh(Softplus(x))", "x/(1+Abs(x))", "x-Tanh(x)",
                    "Split(x) -> a*Sigmoid(b) (GLU)",
                    "x-ReduceMean(x) over Sqrt(ReduceMean(Pow(., 2))+eps) (torch's LayerNorm below opset 17)",
                    "x*(Erf(x/sqrt(2))+1)*0.5 (torch's exact GELU below opset 20)",
                    "x*(Tanh(sqrt(2/pi)*(x+0.044715*x*(x*x)))+1)*0.5 (torch's tanh GELU below opset 20)",
                    "Where(Or(x>l, x<-l), x, 0) (torch's Hardshrink)",
                    "Where(x>l, x-l, 0)+Where(x<-l, x+l, 0) (torch's Softshrink)",
                    "skl2onnx's Concat(1-p, p)",
                    "Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), [-1])) (torch's x.view(x.size(0), -1))")


def _supported() -> str:
    return ", ".join(SUPPORTED_OPS) + " (and " + ", ".join(DECOMPOSED_FORMS) + ")"


# -- fan-outs: the only non-chain shapes read (what exporters write for one activation)


def _gated(users: list[dict], chain: _Chain, consumers: dict) -> Optional[tuple[list, dict, list]]:
    """x * g(x), x / g(x) or x - g(x), g a short chain of unary nodes: silu, hard_silu,
    mish, softsign and tanh_shrink as exporters decompose them.  Returns (layers, the node whose output is
    the result, nodes used)."""
    for gate, start in ((users[0], users[1]), (users[1], users[0])):
        inputs = gate["inputs"]
        if gate["op"] not in ("Mul", "Div", "Sub") or len(inputs) != 2 or inputs.count(chain.current) != 1:
            continue
        target, path = inputs[1 - inputs.index(chain.current)], [start]
        while path[-1]["outputs"][:1] != [target] and len(path) < 3:
            following = consumers.get(path[-1]["outputs"][0], [])
            if len(following) != 1:
                break
            path.append(following[0])
        name = _GATES.get((gate["op"], tuple(node["op"] for node in path)))
        if (name and path[-1]["outputs"][:1] == [target] and (gate["op"] == "Mul" or inputs[0] == chain.current)
                and _unary_chain(path, chain) and (name != "hard_silu" or _standard_hard_sigmoid(path[0]))):
            layer = Activate(chain.width, Activation(name), name=gate["name"] or name)
            return [layer], gate, path + [gate]
    return None


#: (combining operator, the unary chain g) -> activation: x * g(x), x / g(x), x - g(x).
_GATES = {("Mul", ("Sigmoid",)): "silu", ("Mul", ("HardSigmoid",)): "hard_silu",
          ("Mul", ("Softplus", "Tanh")): "mish", ("Div", ("Abs", "Add")): "softsign",
          ("Sub", ("Tanh",)): "tanh_shrink"}


def _unary_chain(path: list[dict], chain: _Chain) -> bool:
    """Each node reads the previous one's value (an Add: and the constant 1)."""
    value = chain.current
    for node in path:
        others = [name for name in node["inputs"] if name != value]
        if len(others) != len(node["inputs"]) - 1 or node["domain"] not in ("", "ai.onnx"):
            return False
        if others and not (node["op"] == "Add" and len(others) == 1 and _is_one(chain.constants.get(others[0]))):
            return False
        value = node["outputs"][0]
    return True


def _standard_hard_sigmoid(node: dict) -> bool:
    return _f32(_attr(node, "alpha", 0.2)) == _f32(1 / 6) and _attr(node, "beta", 0.5) == 0.5


def _is_one(found: Optional[tuple]) -> bool:
    return found is not None and found[0] is not None and found[0].size == 1 and float(found[0].reshape(-1)[0]) == 1.0


def _complement(users: list[dict], chain: _Chain, consumers: dict) -> Optional[tuple[list, dict, list]]:
    """Concat(c - p, p) of the value p (skl2onnx's binary and multi-label classifiers:
    [1 - p, p]): a linear Dense layer w -> 2w with weights -1 and 1 and biases c and 0
    (c - p rounds the same way; the zero weights add exact zeros)."""
    by_op = {node["op"]: node for node in users}
    sub, concat = by_op.get("Sub"), by_op.get("Concat")
    if sub is None or concat is None or sub["inputs"][1:] != [chain.current]:
        return None
    left = sub["outputs"][0]
    if sorted(concat["inputs"]) != sorted([left, chain.current]) or len(consumers.get(left, [])) != 1:
        return None
    if not chain.is_feature_axis(_attr(concat, "axis", 1, int)):
        return None
    constant = _scalar(sub, chain, 0, "the subtracted-from constant", 0.0)
    eye, zeros = np.eye(chain.width), np.zeros(chain.width)
    first = concat["inputs"][0] == left
    kernel = np.hstack([-eye, eye] if first else [eye, -eye])
    bias = np.concatenate([zeros + constant, zeros] if first else [zeros, zeros + constant])
    return [Dense(kernel, bias, name=concat["name"] or "Concat")], concat, [sub, concat]


def _layer_norm_written_out(users: list[dict], chain: _Chain, consumers: dict) -> Optional[tuple[list, dict, list]]:
    """torch's LayerNorm below opset 17: d = x - ReduceMean(x); d / Sqrt(ReduceMean(Pow(d, 2)) + eps)
    (its Mul by the weight and Add of the bias follow as ordinary steps)."""
    by_op = {node["op"]: node for node in users}
    mean, sub = by_op.get("ReduceMean"), by_op.get("Sub")
    if mean is None or sub is None or not _feature_mean(mean, chain, chain.current):
        return None
    if sub["inputs"] != [chain.current, mean["outputs"][0]] or consumers.get(mean["outputs"][0]) != [sub]:
        return None
    spread = sub["outputs"][0]
    after = {node["op"]: node for node in consumers.get(spread, [])}
    line = _line(after.get("Pow"), spread, ("Pow", "ReduceMean", "Add", "Sqrt"), consumers)
    if line is None or len(consumers[spread]) != 2 or "Div" not in after:
        return None
    power, second, add, root = line
    div, epsilon = after["Div"], _constant_operand(add, second["outputs"][0], chain)
    if (div["inputs"] != [spread, root["outputs"][0]] or consumers.get(root["outputs"][0]) != [div]
            or _constant_operand(power, spread, chain) != 2.0 or epsilon is None
            or not _feature_mean(second, chain, power["outputs"][0])):
        return None
    step = Activation("layer_norm", (("epsilon", epsilon),))
    return [Activate(chain.width, step, name=div["name"] or "LayerNorm")], div, [mean, sub, *line, div]


def _gelu_written_out(users: list[dict], chain: _Chain, consumers: dict) -> Optional[tuple[list, dict, list]]:
    """torch's exact GELU below opset 20: x * (Erf(x / sqrt(2)) + 1) * 0.5."""
    by_op = {node["op"]: node for node in users}
    line = _line(by_op.get("Div"), chain.current, ("Div", "Erf", "Add", "Mul", "Mul"), consumers)
    if line is None or by_op.get("Mul") is not line[3]:
        return None
    div, erf, add, gate, half = line
    if (_constant_operand(div, chain.current, chain) not in (_f32(math.sqrt(2)), math.sqrt(2))
            or _constant_operand(add, erf["outputs"][0], chain) != 1.0
            or sorted(gate["inputs"]) != sorted([chain.current, add["outputs"][0]])
            or _constant_operand(half, gate["outputs"][0], chain) != 0.5):
        return None
    return [Activate(chain.width, Activation("gelu"), name=half["name"] or "GELU")], half, line


def _gelu_tanh_written_out(users: list[dict], chain: _Chain, consumers: dict) -> Optional[tuple[list, dict, list]]:
    """torch's tanh GELU below opset 20: x * (Tanh(sqrt(2/pi) * (x + 0.044715 * x * (x * x))) + 1) * 0.5."""
    x = chain.current
    square = next((node for node in users if _is(node, "Mul") and node["inputs"] == [x, x]), None)
    readers = consumers.get(square["outputs"][0], []) if square and len(users) == 4 else []
    line = _line(readers[0] if len(readers) == 1 else None, square["outputs"][0] if square else "",
                 ("Mul", "Mul", "Add", "Mul", "Tanh", "Add", "Mul", "Mul"), consumers)
    if line is None:
        return None
    cube, scaled, inner, outer, tanh, shifted, gate, half = line
    reads_x = all(sorted(node["inputs"]) == sorted([x, value]) for node, value in
                  ((cube, square["outputs"][0]), (inner, scaled["outputs"][0]), (gate, shifted["outputs"][0])))
    constants = [_constant_operand(node, value["outputs"][0], chain) for node, value in
                 ((scaled, cube), (outer, inner), (shifted, tanh), (half, gate))]
    if not reads_x or constants[2:] != [1.0, 0.5] or constants[0] not in (_f32(0.044715), 0.044715) or \
            constants[1] not in (_f32(math.sqrt(2 / math.pi)), math.sqrt(2 / math.pi)):
        return None
    step = Activation("gelu", (("approximate", 1.0),))
    return [Activate(chain.width, step, name=half["name"] or "GELU")], half, [square, *line]


def _hard_shrink_written_out(users: list[dict], chain: _Chain, consumers: dict) -> Optional[tuple[list, dict, list]]:
    """torch's Hardshrink: Where(Or(x > l, x < -l), x, 0), the comparisons through Casts to bool."""
    by_op, x = {node["op"]: node for node in users}, chain.current
    greater, less = by_op.get("Greater"), by_op.get("Less")
    lambd = _constant_operand(greater, x, chain) if len(users) == 3 and greater and less else None
    if lambd is None or not lambd >= 0 or _constant_operand(less, x, chain) != -lambd:
        return None
    (above, casts), (below, more) = _past_casts(greater, consumers), _past_casts(less, consumers)
    either = consumers.get(above, [])
    if (len(either) != 1 or not _is(either[0], "Or") or consumers.get(below) != either
            or sorted(either[0]["inputs"]) != sorted([above, below])):
        return None
    where = _selected(either[0]["outputs"][0], x, chain, consumers)
    if where is None or by_op.get("Where") is not where:
        return None
    step = Activation("hard_shrink", (("threshold", lambd),))
    return [Activate(chain.width, step, name=where["name"] or "Hardshrink")], where, [*users, *casts, *more, either[0]]


def _soft_shrink_written_out(users: list[dict], chain: _Chain, consumers: dict) -> Optional[tuple[list, dict, list]]:
    """torch's Softshrink: Where(x > l, x - l, 0) + Where(x < -l, x + l, 0) (one term is 0: exact)."""
    by_op, x = {node["op"]: node for node in users}, chain.current
    if len(users) != 4 or any(op not in by_op for op in ("Greater", "Sub", "Less", "Add")):
        return None
    lambd = _constant_operand(by_op["Greater"], x, chain)
    if lambd is None or not lambd >= 0 or any(_constant_operand(by_op[op], x, chain) != value for op, value in
                                              (("Sub", lambd), ("Less", -lambd), ("Add", lambd))):
        return None
    upper = _selected(by_op["Greater"]["outputs"][0], by_op["Sub"]["outputs"][0], chain, consumers)
    lower = _selected(by_op["Less"]["outputs"][0], by_op["Add"]["outputs"][0], chain, consumers)
    if upper is None or lower is None:
        return None
    values = [upper["outputs"][0], lower["outputs"][0]]
    total = consumers.get(values[0], [])
    if len(total) != 1 or not _is(total[0], "Add") or consumers.get(values[1]) != total or sorted(
            total[0]["inputs"]) != sorted(values):
        return None
    step = Activation("soft_shrink", (("threshold", lambd),))
    return [Activate(chain.width, step, name=total[0]["name"] or "Softshrink")], total[0], [*users, upper, lower,
                                                                                          total[0]]


def _is(node: dict, op: str) -> bool:
    return node["op"] == op and node["domain"] in ("", "ai.onnx")


def _past_casts(node: dict, consumers: dict) -> tuple[str, list[dict]]:
    """The node's output after the Casts to bool that are its only readers (at most two)."""
    value, casts = node["outputs"][0], []
    while len(casts) < 2:
        readers = consumers.get(value, [])
        if len(readers) != 1 or not _is(readers[0], "Cast") or readers[0]["attrs"].get("to") != 9:
            break
        casts.append(readers[0])
        value = readers[0]["outputs"][0]
    return value, casts


def _selected(condition: str, chosen: str, chain: _Chain, consumers: dict) -> Optional[dict]:
    """Where(condition, chosen, 0), the only reader of ``condition``."""
    readers = consumers.get(condition, [])
    if len(readers) != 1 or not _is(readers[0], "Where") or readers[0]["inputs"][:2] != [condition, chosen]:
        return None
    where = readers[0]
    zero = chain.constants.get(where["inputs"][2]) if len(where["inputs"]) == 3 else None
    return where if zero is not None and zero[0] is not None and zero[0].size == 1 and not zero[0].any() else None


#: Operators read in a recognised form that take the one value only.
_UNARY = ("Sigmoid", "Sqrt", "Tanh", "Erf")


def _line(start: Optional[dict], value: str, ops: tuple, consumers: dict) -> Optional[list[dict]]:
    """Nodes of types ``ops`` from ``start``, each the only reader of the previous one's
    value (``start`` reads ``value``), in the default domain; None if the graph differs."""
    line, node = [], start
    for index, op in enumerate(ops):
        if (node is None or node["op"] != op or node["domain"] not in ("", "ai.onnx")
                or node["inputs"].count(value) != 1 or (op in _UNARY and len(node["inputs"]) != 1)):
            return None
        line.append(node)
        value = node["outputs"][0]
        following = consumers.get(value, [])
        node = following[0] if len(following) == 1 else None
    return line


#: Binary operators whose order matters: ``value`` must be their first operand.
_ORDERED = ("Pow", "Div", "Sub", "Greater", "Less")


def _constant_operand(node: Optional[dict], value: str, chain: _Chain) -> Optional[float]:
    """The one-number constant a binary node combines ``value`` with (the second operand of
    the operators in _ORDERED); None when it is not one."""
    inputs = [] if node is None else node["inputs"]
    if len(inputs) != 2 or inputs.count(value) != 1 or (node["op"] in _ORDERED and inputs[0] != value):
        return None
    found = chain.constants.get(inputs[1 - inputs.index(value)])
    if found is None or found[0] is None or found[0].size != 1 or not np.isfinite(found[0]).all():
        return None
    return float(found[0].reshape(-1)[0])


def _feature_mean(node: dict, chain: _Chain, value: str) -> bool:
    """ReduceMean of ``value`` over the feature axis only, keeping it (axes an attribute,
    or a constant input from opset 18)."""
    if node["inputs"][:1] != [value] or node["domain"] not in ("", "ai.onnx") or not _attr(node, "keepdims", 1, int):
        return False
    axes = node["attrs"].get("axes")
    if len(node["inputs"]) > 1 and node["inputs"][1]:
        found = chain.constants.get(node["inputs"][1])
        axes = None if found is None or found[0] is None else [int(v) for v in found[0].reshape(-1)]
    return isinstance(axes, list) and len(axes) == 1 and chain.is_feature_axis(axes[0])


def _glu(users: list[dict], chain: _Chain, consumers: dict) -> tuple[list, dict, list]:
    """Split(x) into halves a, b; a * Sigmoid(b): torch's GLU over the feature axis."""
    split = users[0]
    halves = _split_in_halves(split, chain)
    if halves:
        first, second = halves
        following = consumers.get(second, [])
        gate = _line(following[0], second, ("Sigmoid", "Mul"), consumers) if len(following) == 1 else None
        if gate and consumers.get(first) == [gate[1]] and len(gate[1]["inputs"]) == 2 and first != second:
            mul = gate[1]
            return [Activate(chain.width, Activation("glu"), name=mul["name"] or "GLU")], mul, [split, *gate]
    raise UnsupportedError(f"{_where(split)}: a Split is read only as GLU's: two equal halves a, b of the "
                           "feature axis, then a * Sigmoid(b)")


def _split_in_halves(split: dict, chain: _Chain) -> Optional[tuple[str, str]]:
    """The two outputs of a Split of the feature axis into equal halves (sizes as the
    'split' attribute before opset 13, an input after, or num_outputs from opset 18)."""
    outputs = split["outputs"]
    if (len(outputs) != 2 or "" in outputs or split["inputs"][:1] != [chain.current] or chain.width % 2
            or not chain.is_feature_axis(_attr(split, "axis", 0, int)) or split["attrs"].get("num_outputs", 2) != 2):
        return None
    sizes = split["attrs"].get("split")
    if len(split["inputs"]) > 1 and split["inputs"][1]:
        sizes = [int(v) for v in chain.const(split, 1, "split").reshape(-1)]
    if sizes is not None and list(sizes) != [chain.width // 2] * 2:
        return None
    return outputs[0], outputs[1]


def _reshape_by_own_shape(users: list[dict], chain: _Chain, consumers: dict) -> Optional[tuple[list, dict, list]]:
    """torch's ``x.view(x.size(0), -1)`` with a dynamic batch: Reshape(x, s), s computed
    from Shape(x) by Gather, Unsqueeze, Squeeze, Slice, Concat, Cast and constants (the
    batch's size stays a symbol: it may only be the new shape's first entry)."""
    by_op = {node["op"]: node for node in users}
    shape, reshape = by_op.get("Shape"), by_op.get("Reshape")
    if (len(users) != 2 or shape is None or reshape is None or not _is(shape, "Shape")
            or reshape["inputs"][:1] != [chain.current] or len(reshape["inputs"]) != 2):
        return None
    dims = chain.dims[_attr(shape, "start", 0, int):shape["attrs"].get("end", len(chain.dims))]
    values, used = {shape["outputs"][0]: (list(dims), False)}, [shape]
    while reshape["inputs"][1] not in values:
        done = {id(node) for node in used} | {id(reshape)}
        ready = [node for name in values for node in consumers.get(name, []) if id(node) not in done
                 and all(v in values or v in chain.constants for v in node["inputs"] if v)]
        if not ready or len(used) > 16:
            return None
        node = ready[0]
        result = _shape_step(node, [values.get(v) or _listed(chain.constants.get(v)) for v in node["inputs"] if v])
        if result is None or node["domain"] not in ("", "ai.onnx") or len(node["outputs"]) != 1:
            return None
        values[node["outputs"][0]] = result
        used.append(node)
    spec, scalar = values[reshape["inputs"][1]]
    inside = {id(node) for node in used} | {id(reshape)}
    if scalar or any(id(reader) not in inside for node in used for reader in consumers.get(node["outputs"][0], [])):
        return None
    _reshape_to(reshape, chain, spec)
    return [], reshape, used + [reshape]


def _listed(found: Optional[tuple]) -> Optional[tuple[list, bool]]:
    """A constant integer vector or scalar as (values, is a scalar)."""
    if found is None or found[0] is None or found[0].ndim > 1 or not np.all(found[0] == np.round(found[0])):
        return None
    return [int(v) for v in found[0].reshape(-1)], found[0].ndim == 0


def _shape_step(node: dict, operands: list) -> Optional[tuple[list, bool]]:
    """One integer operation of a shape computation on (values, is a scalar) operands;
    None for anything else."""
    if any(operand is None for operand in operands) or not operands:
        return None
    (data, scalar), op, attrs = operands[0], node["op"], node["attrs"]
    if op in ("Identity", "Cast") and attrs.get("to", 7) in (6, 7):
        return data, scalar
    if op == "Gather" and len(operands) == 2 and not scalar and attrs.get("axis", 0) == 0:
        indices, single = operands[1]
        if all(-len(data) <= i < len(data) for i in indices):
            return [data[i] for i in indices], single
    axes = attrs.get("axes", operands[1][0] if len(operands) > 1 else None)
    if op == "Unsqueeze" and scalar and axes in ([0], [-1]):
        return data, False
    if op == "Squeeze" and not scalar and len(data) == 1 and axes in (None, [0], [-1]):
        return data, True
    if op == "Concat" and attrs.get("axis") == 0 and not any(flag for _, flag in operands):
        return [v for values, _ in operands for v in values], False
    if op == "Slice" and not scalar:
        bounds = [attrs.get(key) for key in ("starts", "ends", "axes")] if "starts" in attrs else [
            operand[0] for operand in operands[1:4]]
        steps = operands[4][0] if len(operands) > 4 else [1]
        if all(b is None or len(b) == 1 for b in bounds) and bounds[2] in (None, [0], [-1]) and len(steps) == 1 \
                and steps[0] != 0:
            return data[bounds[0][0]:bounds[1][0]:steps[0]], False
    return None


#: Recognised forms starting where the value has several readers: each returns (layers,
#: the node whose output is the result, nodes used: all the readers) or None.
_FAN_OUTS = (_gated, _complement, _layer_norm_written_out, _gelu_written_out, _gelu_tanh_written_out,
             _hard_shrink_written_out, _soft_shrink_written_out, _reshape_by_own_shape)

#: Nodes with several used outputs that start one recognised activation: op -> reader
#: (users, chain, consumers) -> (layers, the node whose output is the result, nodes used).
_OPENERS = {"Split": _glu}

#: Said when a branch has a node of these types: what is read of them.
_HINTS = {"ReduceMean": "a layer normalisation is read as LayerNormalization (opset 17 or later: export with "
                        "opset_version=17) or as torch's exact written-out form"}


# -- the walk


def _build(info: dict, label: str, fold: bool, limits: ReadLimits = DEFAULT_LIMITS) -> Network:
    try:
        net = _network(info, limits)
    except MlpCodegenError as exc:
        raise type(exc)(f"{label}: {exc}") from None
    except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:  # a malformed value unforeseen
        raise ModelFormatError(f"{label}: malformed ONNX graph ({type(exc).__name__}: {exc})") from None
    # fused again after folding: a folded BatchNormalization leaves Dense, relu adjacent
    return fuse_activations(fold_affine(fuse_activations(net))) if fold else fuse_activations(net)


def _network(info: dict, limits: ReadLimits) -> Network:
    opset = _opset(info)
    constants = {name: info["tensors"][key] for name, key in info["initializers"].items()}
    source = _input_name(info, constants)
    output, notes = _graph_output(info)
    nodes, failed = _fold_constants(info["nodes"], constants, info["tensors"])
    live = _needed(nodes, output, constants, source)
    _refuse_foreign(live, failed)
    dims, batched, input_notes = _graph_input(info, source, limits)
    chain = _Chain(opset, dims, batched, constants, current=source)
    n_inputs = chain.width
    consumers: dict[str, list[dict]] = {}
    for node in live:
        for name in dict.fromkeys(node["inputs"]):
            consumers.setdefault(name, []).append(node)
    visited = _walk(chain, consumers, output)
    left = [node for node in live if id(node) not in visited]
    if left:
        raise UnsupportedError(f"{_where(left[0])} is not on the chain from the input to the output (a second "
                               "input or a branch); only chains of dense layers are supported")
    if len(chain.sample) != 1:
        notes += (f"ONNX output {quote_name(output)} {_shape(chain.dims)}: returns each sample as {chain.width} values "
                  "flattened in C (row-major) order",)
    name = re.sub(r"\W", "_", info["name"]) if isinstance(info["name"], str) and info["name"] else "mlp"
    return Network(n_inputs, tuple(chain.layers), _weight_dtype(chain.dtypes), name,
                   (*input_notes, *notes, *chain.notes))


def _opset(info: dict) -> int:
    """The default domain's opset (9 or later); no domain's newer than onnx knows: the
    operators' meaning there is not known (ONNX Runtime refuses it too)."""
    opset = info["opset"].get("ai.onnx")
    if not isinstance(opset, int) or opset < MIN_OPSET:
        raise UnsupportedError(f"the model imports ONNX opset {opset}; opset {MIN_OPSET} or later is supported "
                               "(re-export with a newer opset)")
    for domain, version in info["opset"].items():
        known = info.get("known", {}).get(domain)
        if isinstance(known, int) and isinstance(version, int) and version > known:
            raise UnsupportedError(f"the model imports opset {version} of {quote_name(domain)!r}, newer than any "
                                   f"the installed onnx package knows (up to {known}): re-export with opset {known} "
                                   "or earlier (or upgrade onnx, if a newer release has that opset)")
    return opset


def _walk(chain: _Chain, consumers: dict, output: str) -> set:
    """Follow the chain's value from the input to ``output``, node by node (or through
    one recognised fan-out); the ids of the nodes read."""
    visited: set = set()
    while chain.current != output:
        users = consumers.get(chain.current, [])
        layers, node, done = _step(users, chain, consumers)
        if any(id(n) in visited for n in done):  # a hostile file's cycle must not loop forever
            raise ModelFormatError(f"{_where(node)} is reached twice: the graph has a cycle")
        chain.layers.extend(layers)
        _single_output(node, consumers, output)
        visited.update(id(n) for n in done)
        chain.current = node["outputs"][0]
    return visited


def _step(users: list[dict], chain: _Chain, consumers: dict) -> tuple[list, dict, list]:
    """(IR layers, the node whose first output is the chain's next value, nodes read)."""
    opener = _OPENERS.get(users[0]["op"]) if len(users) == 1 and users[0]["domain"] in ("", "ai.onnx") else None
    if len(users) == 1 and opener is None:
        return _reader(users[0])(users[0], chain), users[0], users
    standard = all(node["domain"] in ("", "ai.onnx") for node in users)
    forms = (opener,) if opener else _FAN_OUTS if len(users) > 1 and standard else ()
    readers = {id(node) for node in users}
    found = next((hit for hit in (form(users, chain, consumers) for form in forms)
                  if hit and readers <= {id(node) for node in hit[2]}), None)
    if found is None:
        named = ", ".join(_where(node) for node in users) or "nothing"
        hints = "".join(f" ({_HINTS[op]})" for op in dict.fromkeys(node["op"] for node in users) if op in _HINTS)
        raise UnsupportedError(f"value {quote_name(chain.current)!r} feeds {named}: a branch{hints}; only chains "
                               f"are supported: {_supported()}")
    if found[0] and found[0][-1].n_out != chain.width:  # GLU, Concat: on a flat value
        chain.width = found[0][-1].n_out
    return found


def _reader(node: dict) -> Callable[[dict, _Chain], list]:
    standard = node["domain"] in ("", "ai.onnx")
    reader = (_OPS if standard else _ML_OPS if node["domain"] == "ai.onnx.ml" else {}).get(node["op"])
    if reader is None:
        if node["domain"] == "ai.onnx.ml":
            raise UnsupportedError(f"{_where(node)} of domain 'ai.onnx.ml' is not an affine step, so not part of a "
                                   f"dense network; supported ai.onnx.ml operators: {', '.join(ML_OPS)}")
        domain = "" if standard else f" of domain {quote_name(node['domain'])!r}"
        raise UnsupportedError(f"{_where(node)}{domain} is not supported (not part of a dense network); supported "
                               f"operators: {_supported()}")
    return reader


def _refuse_foreign(live: list[dict], failed: dict) -> None:
    """Before any shape is looked at, the first node the output depends on that no dense
    network has (a Conv after an image input is named, not the input's shape), or a
    constant Cast that cannot be folded."""
    for node in live:
        if id(node) in failed:
            raise failed[id(node)]
        if not (node["domain"] in ("", "ai.onnx") and node["op"] in _FORM_OPS):
            _reader(node)


def _single_output(node: dict, consumers: dict, output: str) -> None:
    """Only a node's first output may be used (Dropout's mask, BatchNormalization's
    running statistics are training outputs)."""
    for extra in node["outputs"][1:]:
        if extra and (extra in consumers or extra == output):
            raise UnsupportedError(f"{_where(node)}: its output {quote_name(extra)!r} is used; only the first "
                                   "output of a node can be")
    if not node["outputs"]:
        raise ModelFormatError(f"{_where(node)} has no output")


def _input_name(info: dict, constants: dict) -> str:
    """The one graph input that is not an initializer."""
    inputs = [v for v in info["inputs"] if v["name"] not in constants]
    if len(inputs) != 1:
        names = ", ".join(repr(quote_name(v["name"])) for v in inputs) or "none"
        raise UnsupportedError(f"the graph has {len(inputs)} inputs ({names}); exactly one is supported")
    return inputs[0]["name"]


def _graph_input(info: dict, source: str, limits: ReadLimits) -> tuple[tuple, bool, tuple[str, ...]]:
    """(dims, batched, notes) of the input: (batch, features...) with fixed feature
    sizes, the batch any size (a fixed one too: each row is one sample); or [n], one
    sample (NNet style).  The sample's size is bounded like the weights: a few bytes of
    file could otherwise make the steps before the first Dense (a Mul by a scalar)
    allocate gigabytes."""
    value = next(v for v in info["inputs"] if v["name"] == source)
    dims, name = value["dims"], quote_name(source)
    if value["type"] not in _FLOAT_TYPES:
        raise UnsupportedError(f"the input {name!r} is not a floating-point tensor")
    sample = dims[1:] if dims and len(dims) > 1 else dims
    if not sample or not all(isinstance(d, int) and d >= 1 for d in sample):
        raise UnsupportedError(f"the input {name!r} has shape {_shape(dims)}; a (batch, features...) input with "
                               "fixed feature sizes, or a vector [n], is supported")
    width = math.prod(sample)
    if width > limits.max_weight_values:
        raise LimitExceeded(f"the input {name!r} declares {width:,} features, more than the "
                            f"{limits.max_weight_values:,} numbers read; if the model is genuine, raise the limit "
                            "(--max-size MIB)")
    if len(dims) == 1:
        return tuple(dims), False, (f"ONNX input {name} {_shape(dims)}: one sample, no batch axis",)
    batch = dims[0] if isinstance(dims[0], int) and dims[0] >= 1 else None
    notes = () if len(dims) == 2 else (f"ONNX input {name} {_shape(dims)}: takes each sample as {width} values "
                                       "flattened in C (row-major) order",)
    return (batch, *sample), True, notes


def _shape(dims: Any) -> str:
    return "unknown" if dims is None else "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


def _graph_output(info: dict) -> tuple[str, tuple[str, ...]]:
    """The one floating-point output; others (a classifier's label) are noted and ignored.
    Without one, the tensor a ZipMap (skl2onnx's classifier probabilities, as a sequence
    of maps) reads is converted, and the notes say so."""
    outputs = info["outputs"]
    chosen = [v["name"] for v in outputs if v["type"] in _FLOAT_TYPES]
    notes: list[str] = []
    if not chosen:
        zipped = [node for node in info["nodes"] if node["op"] == "ZipMap" and node["domain"] == "ai.onnx.ml"
                  and node["outputs"][:1] in ([v["name"]] for v in outputs) and len(node["inputs"]) == 1]
        if len(zipped) == 1:
            chosen, notes = [zipped[0]["inputs"][0]], [_zipmap_note(zipped[0])]
    if len(chosen) != 1:
        kinds = ", ".join(f"{quote_name(v['name'])!r} ({_kind(v)})" for v in outputs) or "none"
        raise UnsupportedError(f"the graph has {len(chosen)} floating-point tensor outputs (outputs: {kinds}); "
                               "exactly one is supported (or, without one, one ZipMap of the probabilities)")
    described = {zipped[0]["outputs"][0]} if notes else set()
    ignored = [quote_name(v["name"]) for v in outputs if v["name"] not in chosen and v["name"] not in described]
    if ignored:
        notes.insert(0, f"ONNX output(s) not converted (not floating point): {', '.join(ignored)}")
    return chosen[0], tuple(notes)


def _kind(value: dict) -> str:
    if value["type"] is None:
        return "not a tensor"
    return f"a {type_name(value['type'])} tensor" if isinstance(value["type"], int) else "unknown"


def _zipmap_note(node: dict) -> str:
    labels = node["attrs"].get("classlabels_int64s", node["attrs"].get("classlabels_strings", []))
    labels = labels if isinstance(labels, list) else []
    shown = ", ".join(quote_name(label) for label in labels[:8]) + (f", ... ({len(labels)})" if len(labels) > 8 else "")
    return (f"ZipMap output {quote_name(node['outputs'][0])}: its input {quote_name(node['inputs'][0])} is "
            f"converted, one output per class [{shown}]")


def _fold_constants(nodes: list[dict], constants: dict, tensors: dict) -> tuple[list[dict], dict]:
    """Constant nodes (and Identity/Cast of constants) become constants; the rest stay.
    A Cast that cannot be folded stays a node, its error kept (raised if it is needed)."""
    rest, failed = [], {}
    for node in nodes:
        try:
            value = _constant_value(node, constants, tensors)
        except MlpCodegenError as exc:
            failed[id(node)], value = exc, None
        if value is None:
            rest.append(node)
        else:
            constants[node["outputs"][0]] = value
    return rest, failed


def _constant_value(node: dict, constants: dict, tensors: dict) -> Optional[tuple]:
    if node["domain"] not in ("", "ai.onnx") or len(node["outputs"]) != 1:
        return None
    if node["op"] in ("Identity", "Cast") and len(node["inputs"]) == 1 and node["inputs"][0] in constants:
        array, dtype = constants[node["inputs"][0]]
        return (array, dtype) if node["op"] == "Identity" else _cast(node, array, dtype)
    if node["op"] != "Constant":
        return None
    attrs = node["attrs"]
    if isinstance(attrs.get("value"), dict) and "tensor" in attrs["value"]:
        return tensors[attrs["value"]["tensor"]]
    for key, dtype in (("value_float", "float32"), ("value_floats", "float32"), ("value_int", "int64"),
                       ("value_ints", "int64")):
        if key in attrs:
            return np.asarray(attrs[key], dtype=np.float64), dtype
    raise UnsupportedError(f"{_where(node)}: a Constant of an unsupported kind ({', '.join(map(quote_name, attrs))})")


def _cast(node: dict, array: Optional[np.ndarray], dtype: str) -> tuple:
    """A Cast of a constant, as ONNX computes it (rounded, truncated, wrapped) or refused."""
    to = node["attrs"].get("to")
    if not isinstance(to, int) or isinstance(to, bool):
        raise ModelFormatError(f"{_where(node)}: the attribute 'to' is missing or not a type number")
    if array is None:
        raise UnsupportedError(f"{_where(node)}: casts a constant of {dtype}, not numbers, to {type_name(to)}")
    return cast_constant(array, dtype, to, _where(node))


def _needed(nodes: list[dict], output: str, constants: dict, source: str) -> list[dict]:
    """The nodes the output depends on, in file order (others compute ignored outputs)."""
    producer = {name: node for node in nodes for name in node["outputs"] if name}
    wanted, stack = set(), [output]
    while stack:
        name = stack.pop()
        node = producer.get(name)
        if node is None:
            if name not in constants and name != source and name:
                raise ModelFormatError(f"value {quote_name(name)!r} is used but nothing computes it")
            continue
        if id(node) not in wanted:
            wanted.add(id(node))
            stack.extend(node["inputs"])
    return [node for node in nodes if id(node) in wanted]


def _weight_dtype(found: set) -> str:
    return next((d for d in ("float64", "float32", "bfloat16", "float16") if d in found), "float32")
