"""ONNX frontend: a ``.onnx`` file (or an in-memory ``onnx.ModelProto``) that is a chain
of dense layers, read into the IR with the ``onnx`` package only (no ONNX Runtime).

Two halves:

* :func:`~._proto.read_model_file` (run in the child process of :mod:`.._sandbox`) reads the
  bounded file, parses the protobuf, refuses external data, runs ONNX's checker (a
  graph it refuses -- two nodes writing one value, nodes out of order -- is refused)
  and describes the graph as JSON plus float64 arrays.  The parse runs in the sandbox
  because protobuf expands what it parses (a packed repeated ``int64`` of one-byte varints is eight times its
  bytes), so a 256 MiB file could ask for gigabytes: the child's memory and time limits
  cap that, and the caller never holds an untrusted ``ModelProto`` at all.
* :func:`~._walk._build` (in the caller) walks that description from the one graph input to
  the one floating-point output, node by node, through the table :data:`~._ops._OPS` keyed by
  operator type (and the multi-node forms of :mod:`._patterns`), and builds the
  :class:`~mlpcodegen.core.ir.Network`.

One job a module: :mod:`._proto` (the protobuf: parse, check, describe its nodes and
initializers as JSON plus float64 arrays, decode that description), :mod:`._chain` (the
walk's state and node accessors), :mod:`._ops` (one reader per operator, the table),
:mod:`._patterns` (the multi-node forms exporters write for one step), :mod:`._walk`
(from the input to the output: constants folded, the graph's input and output, each step).

What is read: Gemm (alpha, beta, transB; not transA), MatMul by a constant with an Add
of a constant (either order: the bias), Sub/Mul by a constant and Div by one (x / c),
the activation operators (:data:`SUPPORTED_OPS`; Clip, and Min/Max by one constant, become relu/relu6/hard_tanh or a
shifted relu, a non-standard HardSigmoid or Selu a scale step and relu/elu),
BatchNormalization in inference mode (an affine step, folded), LayerNormalization and
RMSNormalization over the feature axis (layer_norm / rms_norm with the stored epsilon,
then an affine step), Flatten/Reshape/Squeeze/Unsqueeze that keep one sample per row, Identity, Dropout and
Cast to a float type (identities at inference), constants from initializers and Constant
nodes (a Cast of a constant is applied as ONNX does: :mod:`.._onnx_cast`; a Transpose of one
too), and the
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
GELU below opset 20 (``x * (Erf(x / sqrt(2)) + 1) * 0.5`` and its tanh form, in either exporter's
order), torch's Hardshrink and Softshrink
(``Where`` of ``Greater``/``Less`` by the threshold), torch's LayerNorm below opset 17
(``x - ReduceMean(x)`` over ``Sqrt(ReduceMean(Pow(., 2)) + eps)``, its Mul/Add by weight
and bias as ordinary steps), tf2onnx's Keras LayerNormalization (``x * m + (Neg(mean) * m + beta)``,
``m = Reciprocal(Sqrt(variance + eps)) * gamma``), skl2onnx's classifier ``Concat(1 - p, p)`` and torch's
``x.view(x.size(0), -1)`` with a dynamic batch (a Reshape by a shape computed from
``Shape(x)``: Gather, Unsqueeze, Concat...).  Each is
read only when every node of it is as the exporter writes it (constants included), and a
form must account for every reader of the value it starts from.

torch's ``Softplus(beta, threshold)`` is exported by the TorchScript exporter as
``Softplus(beta x) / beta`` without the threshold: the file computes the exact softplus, and
that is what is converted (a scale, softplus, a scale by 1 / beta; the torch frontend
computes the same, refusing thresholds small enough to matter -- such a file cannot say it
had one).  The dynamo exporter (torch.onnx.export's default) keeps the threshold,
``Where(beta x > threshold, x, Softplus(beta x) / beta)``: read as the same exact softplus,
and a threshold below 15 refused as the torch frontend refuses it.

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

from pathlib import Path
from typing import Any

from ...core.errors import MlpCodegenError, ModelFormatError
from ...core.ir import Network
from ...core.limits import DEFAULT_LIMITS, ReadLimits
from ...core.untrusted import quote_name
from .. import _sandbox
from .._preflight import preflight
from ._ops import DECOMPOSED_FORMS, ML_OPS, SUPPORTED_OPS
from ._proto import _check, _decode, _describe, read_model_file
from ._walk import MIN_OPSET, _build

__all__ = ["load_file", "load_object", "read_model_file", "SUPPORTED_OPS", "DECOMPOSED_FORMS", "ML_OPS", "MIN_OPSET"]


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
