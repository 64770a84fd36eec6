"""TensorFlow Lite frontend: ``.tflite`` flatbuffers (float32 and full-integer int8).

A ``.tflite`` file is a FlatBuffer with the identifier ``TFL3``.  It is read with the
``flatbuffers`` runtime (the package TensorFlow's own generated readers are built on,
installed with TensorFlow and LiteRT; the ``tflite`` package's generated schema would be one
more dependency and checks nothing either): no TensorFlow, no LiteRT.  The runtime
follows offsets without checking them, so every read goes through :class:`_Table`, which
checks, before the runtime touches them, that each table, vtable, field, vector and string
lies inside the file; a count is bounded by the bytes left, so a corrupt file is one
:class:`ModelFormatError` line, never an exception from ``struct``, a loop over a forged
length or a giant allocation.  The parse is pure Python over checked positions (no C
parser reads the bytes), so it runs in this process: nothing to isolate.

Read: one subgraph that is a chain of FULLY_CONNECTED (float32 weights, or int8 weights
with one scale per tensor or per output channel and int32 biases; fused NONE, RELU, RELU6,
RELU_N1_TO_1), RELU, RELU6, RELU_N1_TO_1, LOGISTIC, TANH, SOFTMAX, RESHAPE (a no-op on a
vector; a RESHAPE whose new shape is computed from SHAPE(x) by STRIDED_SLICE/PACK, as Keras'
Flatten is converted with a dynamic batch: the integer shape arithmetic is skipped, the
RESHAPE must keep the batch axis and the sample's size; a RESHAPE only SHAPE reads is
skipped too), QUANTIZE (float32 -> int8, first)
and DEQUANTIZE (int8 -> float32, last; or of a float16 constant).  Float32 models may also
have the activations the converter writes as operators of their own (LEAKY_RELU, PRELU, ELU,
HARD_SWISH, GELU, EXP, LOG_SOFTMAX, and swish as LOGISTIC then MUL(x, LOGISTIC(x))) and ADD/SUB/MUL/DIV
by a constant (Keras' Normalization and Rescaling; folded into the next Dense), MINIMUM/MAXIMUM
by one constant (clips: Keras' ReLU(max_value)).  Anything
else is refused by its operator name and output tensor.

A float32 model becomes a :class:`~mlpcodegen.core.ir.Network`.  An int8 model becomes a
:class:`~mlpcodegen.core.quant.QuantizedNetwork`: the dequantised float network (for every
float target) carrying the :class:`~mlpcodegen.core.quant.Int8Plan` that ``--dtype int8`` prints.
"""
from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..core.errors import ModelFormatError, UnsupportedError
from ..core.ir import Activate, Activation, Affine, Dense, Network
from ..core.passes import fold_affine, fuse_activations
from ..core.limits import DEFAULT_LIMITS, LimitExceeded, ReadLimits
from ..core.quant import Int8Plan, QDense, QParams, QRelu, QSoftmax, QTable, QuantizedNetwork
from ..core.untrusted import quote_name
from ._clamp import clamp_layers
from ._preflight import preflight
from ._untrusted_h5 import read_regular_file

try:
    import flatbuffers.number_types as _N
    import flatbuffers.table as _fb_table
except ImportError:  # pragma: no cover - depends on what is installed
    _N = _fb_table = None

IDENTIFIER = b"TFL3"
#: Operators, tensors or buffers one model may declare (an MLP has a few dozen).
MAX_ITEMS = 100_000
#: The longest name kept from the file (longer ones are cut; names are data).
MAX_NAME = 256

#: BuiltinOperator codes 0..209 by name ("-": no operator), for messages.
OPERATOR_NAMES = (
    "ADD AVERAGE_POOL_2D CONCATENATION CONV_2D DEPTHWISE_CONV_2D DEPTH_TO_SPACE DEQUANTIZE "
    "EMBEDDING_LOOKUP FLOOR FULLY_CONNECTED HASHTABLE_LOOKUP L2_NORMALIZATION L2_POOL_2D "
    "LOCAL_RESPONSE_NORMALIZATION LOGISTIC LSH_PROJECTION LSTM MAX_POOL_2D MUL RELU RELU_N1_TO_1 RELU6 "
    "RESHAPE RESIZE_BILINEAR RNN SOFTMAX SPACE_TO_DEPTH SVDF TANH CONCAT_EMBEDDINGS SKIP_GRAM CALL CUSTOM "
    "EMBEDDING_LOOKUP_SPARSE PAD UNIDIRECTIONAL_SEQUENCE_RNN GATHER BATCH_TO_SPACE_ND SPACE_TO_BATCH_ND "
    "TRANSPOSE MEAN SUB DIV SQUEEZE UNIDIRECTIONAL_SEQUENCE_LSTM STRIDED_SLICE BIDIRECTIONAL_SEQUENCE_RNN "
    "EXP TOPK_V2 SPLIT LOG_SOFTMAX DELEGATE BIDIRECTIONAL_SEQUENCE_LSTM CAST PRELU MAXIMUM ARG_MAX "
    "MINIMUM LESS NEG PADV2 GREATER GREATER_EQUAL LESS_EQUAL SELECT SLICE SIN TRANSPOSE_CONV "
    "SPARSE_TO_DENSE TILE EXPAND_DIMS EQUAL NOT_EQUAL LOG SUM SQRT RSQRT SHAPE POW ARG_MIN FAKE_QUANT "
    "REDUCE_PROD REDUCE_MAX PACK LOGICAL_OR ONE_HOT LOGICAL_AND LOGICAL_NOT UNPACK REDUCE_MIN FLOOR_DIV "
    "REDUCE_ANY SQUARE ZEROS_LIKE FILL FLOOR_MOD RANGE RESIZE_NEAREST_NEIGHBOR LEAKY_RELU "
    "SQUARED_DIFFERENCE MIRROR_PAD ABS SPLIT_V UNIQUE CEIL REVERSE_V2 ADD_N GATHER_ND COS WHERE RANK ELU "
    "REVERSE_SEQUENCE MATRIX_DIAG QUANTIZE MATRIX_SET_DIAG ROUND HARD_SWISH IF WHILE "
    "NON_MAX_SUPPRESSION_V4 NON_MAX_SUPPRESSION_V5 SCATTER_ND SELECT_V2 DENSIFY SEGMENT_SUM BATCH_MATMUL "
    "PLACEHOLDER_FOR_GREATER_OP_CODES CUMSUM CALL_ONCE BROADCAST_TO RFFT2D CONV_3D IMAG REAL COMPLEX_ABS "
    "HASHTABLE HASHTABLE_FIND HASHTABLE_IMPORT HASHTABLE_SIZE REDUCE_ALL CONV_3D_TRANSPOSE VAR_HANDLE "
    "READ_VARIABLE ASSIGN_VARIABLE BROADCAST_ARGS RANDOM_STANDARD_NORMAL BUCKETIZE RANDOM_UNIFORM "
    "MULTINOMIAL GELU DYNAMIC_UPDATE_SLICE RELU_0_TO_1 UNSORTED_SEGMENT_PROD UNSORTED_SEGMENT_MAX "
    "UNSORTED_SEGMENT_SUM ATAN2 UNSORTED_SEGMENT_MIN SIGN BITCAST BITWISE_XOR RIGHT_SHIFT "
    "STABLEHLO_LOGISTIC STABLEHLO_ADD STABLEHLO_DIVIDE STABLEHLO_MULTIPLY STABLEHLO_MAXIMUM "
    "STABLEHLO_RESHAPE STABLEHLO_CLAMP STABLEHLO_CONCATENATE STABLEHLO_BROADCAST_IN_DIM "
    "STABLEHLO_CONVOLUTION STABLEHLO_SLICE STABLEHLO_CUSTOM_CALL STABLEHLO_REDUCE STABLEHLO_ABS "
    "STABLEHLO_AND STABLEHLO_COSINE STABLEHLO_EXPONENTIAL STABLEHLO_FLOOR STABLEHLO_LOG STABLEHLO_MINIMUM "
    "STABLEHLO_NEGATE STABLEHLO_OR STABLEHLO_POWER STABLEHLO_REMAINDER STABLEHLO_RSQRT STABLEHLO_SELECT "
    "STABLEHLO_SUBTRACT STABLEHLO_TANH STABLEHLO_SCATTER STABLEHLO_COMPARE STABLEHLO_CONVERT "
    "STABLEHLO_DYNAMIC_SLICE STABLEHLO_DYNAMIC_UPDATE_SLICE STABLEHLO_PAD STABLEHLO_IOTA "
    "STABLEHLO_DOT_GENERAL STABLEHLO_REDUCE_WINDOW STABLEHLO_SORT STABLEHLO_WHILE STABLEHLO_GATHER "
    "STABLEHLO_TRANSPOSE DILATE STABLEHLO_RNG_BIT_GENERATOR REDUCE_WINDOW STABLEHLO_COMPOSITE "
    "STABLEHLO_SHIFT_LEFT STABLEHLO_CBRT STABLEHLO_CASE ").split()

FLOAT32, FLOAT16, INT32, UINT8, INT8 = 0, 1, 2, 3, 9
TENSOR_TYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 5: "string", 6: "bool",
                7: "int16", 8: "complex64", 9: "int8", 10: "float64"}
_NUMPY = {FLOAT32: "<f4", FLOAT16: "<f2", INT32: "<i4", INT8: "i1", UINT8: "u1"}
FUSED = {0: "none", 1: "relu", 2: "relu_n1_to_1", 3: "relu6"}
FUSED_NAMES = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}
#: float IR activation of each clamp
IR_ACTIVATION = {"none": Activation("linear"), "relu": Activation("relu"), "relu6": Activation("relu6"),
                 "relu_n1_to_1": Activation("hard_tanh")}
ACTIVATION_OPS = {"RELU": "relu", "RELU6": "relu6", "RELU_N1_TO_1": "relu_n1_to_1", "LOGISTIC": "logistic",
                  "TANH": "tanh", "SOFTMAX": "softmax"}
#: activations of float32 models only (no int8 kernel is printed for them)
FLOAT_ACTIVATION_OPS = ("LEAKY_RELU", "PRELU", "ELU", "HARD_SWISH", "GELU", "EXP", "LOG_SOFTMAX")
#: x op c by a constant (Keras' Normalization and Rescaling): float32 models, folded into a Dense
AFFINE_OPS = ("ADD", "SUB", "MUL", "DIV")
#: MINIMUM/MAXIMUM of the value and one constant number: clips (Keras' ReLU(max_value))
BOUND_OPS = ("MINIMUM", "MAXIMUM")
#: integer shape arithmetic whose only use is a RESHAPE's new shape (Keras' Flatten with a
#: dynamic batch: RESHAPE(x, PACK(STRIDED_SLICE(SHAPE(x)), -1))): the RESHAPE keeps each sample
SHAPE_OPS = ("SHAPE", "STRIDED_SLICE", "PACK", "CONCATENATION")
SUPPORTED_OPS = ("FULLY_CONNECTED", *ACTIVATION_OPS, "RESHAPE", "QUANTIZE", "DEQUANTIZE")
KNOWN_OPS = frozenset(SUPPORTED_OPS + FLOAT_ACTIVATION_OPS + AFFINE_OPS + BOUND_OPS)
_VARIABLES = (" (the weights were left as resource variables, as from_concrete_functions does with a Keras 3 "
              "model: convert with TFLiteConverter.from_keras_model or from_saved_model)")
_HINTS = {"VAR_HANDLE": _VARIABLES, "READ_VARIABLE": _VARIABLES, "ASSIGN_VARIABLE": _VARIABLES,
          "CALL_ONCE": _VARIABLES}
SUPPORTED = ("supported: " + ", ".join(SUPPORTED_OPS) + " (FULLY_CONNECTED fused NONE, RELU, RELU6, RELU_N1_TO_1), "
             "float32 or full-integer int8; in float32 models also " + ", ".join(FLOAT_ACTIVATION_OPS) + ", "
             "LOGISTIC then MUL (swish), " + ", ".join(AFFINE_OPS + BOUND_OPS) + " by a constant")


def is_tflite(head: bytes) -> bool:
    """A TFLite flatbuffer: the file identifier ``TFL3`` after the root offset."""
    return head[4:8] == IDENTIFIER


def operator_name(code: int) -> str:
    return OPERATOR_NAMES[code] if 0 <= code < len(OPERATOR_NAMES) and OPERATOR_NAMES[code] != "-" \
        else f"builtin operator {code}"


# ================================================================ checked flatbuffer reads


class _File:
    """The file's bytes and the one bounds check every read goes through."""

    def __init__(self, data: bytes, label: str) -> None:
        self.data, self.label, self.size = data, label, len(data)

    def corrupt(self, what: str) -> ModelFormatError:
        return ModelFormatError(f"{self.label}: not a valid TFLite file (truncated or corrupt): {what}")

    def need(self, position: int, length: int, what: str) -> None:
        if position < 0 or length < 0 or position + length > self.size:
            raise self.corrupt(f"{what} at byte {position} (+{length}) lies outside the file's {self.size} bytes")

    def uoffset(self, position: int, what: str) -> int:
        self.need(position, 4, what)
        return position + struct.unpack_from("<I", self.data, position)[0]


class _Table:
    """A flatbuffer table read through ``flatbuffers.table.Table``, each position checked first."""

    def __init__(self, file: _File, position: int, what: str) -> None:
        file.need(position, 4, what)
        vtable = position - struct.unpack_from("<i", file.data, position)[0]
        file.need(vtable, 4, f"the vtable of {what}")
        vtable_bytes, object_bytes = struct.unpack_from("<HH", file.data, vtable)
        if vtable_bytes < 4 or vtable_bytes % 2:
            raise file.corrupt(f"the vtable of {what} has a length of {vtable_bytes} bytes")
        file.need(vtable, vtable_bytes, f"the vtable of {what}")
        file.need(position, max(object_bytes, 4), what)
        self.file, self.what, self.object_bytes = file, what, object_bytes
        self.table = _fb_table.Table(file.data, position)

    def _field(self, slot: int, width: int) -> int:
        """The field's position in the file (0: absent), its ``width`` bytes inside the object."""
        offset = self.table.Offset(4 + 2 * slot)  # the vtable was checked whole
        if not offset:
            return 0
        if offset + width > self.object_bytes:
            raise self.file.corrupt(f"field {slot} of {self.what} runs past the object")
        return self.table.Pos + offset

    def scalar(self, slot: int, flags: Any, default: Any) -> Any:
        position = self._field(slot, flags.bytewidth)
        return self.table.Get(flags, position) if position else default

    def _target(self, slot: int, what: str) -> Optional[int]:
        position = self._field(slot, 4)
        return None if not position else self.file.uoffset(position, what)

    def table_at(self, slot: int, what: str) -> Optional["_Table"]:
        target = self._target(slot, what)
        return None if target is None else _Table(self.file, target, what)

    def vector(self, slot: int, width: int, what: str) -> tuple[int, int]:
        """(first element's position, count) of a vector field, all of it inside the file."""
        target = self._target(slot, what)
        if target is None:
            return 0, 0
        self.file.need(target, 4, what)
        count = self.table.Get(_N.UOffsetTFlags, target)
        if count * width > self.file.size - target - 4:
            raise self.file.corrupt(f"{what} declares {count:,} elements, more than the file holds")
        return target + 4, count

    def tables(self, slot: int, what: str) -> list["_Table"]:
        start, count = self.vector(slot, 4, what)
        if count > MAX_ITEMS:
            raise LimitExceeded(f"{self.file.label}: {what}: {count:,} entries, more than {MAX_ITEMS:,}")
        return [_Table(self.file, self.file.uoffset(start + 4 * i, what), f"{what} {i}") for i in range(count)]

    def array(self, slot: int, dtype: str, what: str) -> np.ndarray:
        kind = np.dtype(dtype)
        start, count = self.vector(slot, kind.itemsize, what)
        return np.frombuffer(self.file.data, dtype=kind, count=count, offset=start).copy() if count else \
            np.zeros(0, kind)

    def string(self, slot: int, what: str) -> str:
        start, count = self.vector(slot, 1, what)
        return self.file.data[start:start + min(count, MAX_NAME)].decode("utf-8", "replace")


# ================================================================ the model


@dataclass(frozen=True)
class _Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    type: int
    buffer: int
    scales: tuple[float, ...]
    zero_points: tuple[int, ...]
    axis: int

    @property
    def type_name(self) -> str:
        return TENSOR_TYPES.get(self.type, f"type {self.type}")

    @property
    def size(self) -> int:
        return math.prod(self.shape)  # Python ints: a forged shape cannot wrap around

    @property
    def params(self) -> Optional[QParams]:
        return QParams(self.scales[0], self.zero_points[0]) if len(self.scales) == 1 else None


@dataclass(frozen=True)
class _Op:
    index: int
    code: int
    name: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: Optional[_Table]


class _Model:
    """What the chain builder needs from the file: tensors, constant data, operators."""

    def __init__(self, data: bytes, label: str, limits: ReadLimits) -> None:
        if _fb_table is None:  # pragma: no cover - depends on what is installed
            raise UnsupportedError("reading .tflite files needs the flatbuffers package: pip install 'mlpcodegen[tflite]'")
        file = self.file = _File(data, label)
        self.label, self.limits = label, limits
        if file.size < 8 or data[4:8] != IDENTIFIER:
            raise file.corrupt("no TFL3 identifier")
        root = _Table(file, file.uoffset(0, "the root offset"), "the model")
        version = root.scalar(0, _N.Uint32Flags, 0)
        if version != 3:
            raise ModelFormatError(f"{label}: TFLite schema version {version}; mlpcodegen reads version 3")
        self.codes = [self._code(t) for t in root.tables(1, "operator code")]
        subgraphs = root.tables(2, "subgraph")
        if len(subgraphs) != 1:
            raise UnsupportedError(f"{label}: {len(subgraphs)} subgraphs (control flow or several signatures); "
                                   f"mlpcodegen reads one. {SUPPORTED}")
        self.buffers = root.tables(4, "buffer")
        graph = subgraphs[0]
        name = graph.string(4, "the subgraph name")
        self.name = Path(label).stem if name in ("", "main") else name  # "main": the converter's default
        self.tensors = [self._tensor(i, t) for i, t in enumerate(graph.tables(0, "tensor"))]
        self.inputs = tuple(int(v) for v in graph.array(1, "<i4", "the subgraph inputs"))
        self.outputs = tuple(int(v) for v in graph.array(2, "<i4", "the subgraph outputs"))
        self.ops = [self._op(i, t) for i, t in enumerate(graph.tables(3, "operator"))]
        self.values = 0

    def _code(self, table: _Table) -> tuple[int, str]:
        deprecated = table.scalar(0, _N.Int8Flags, 0)
        code = max(int(deprecated), int(table.scalar(3, _N.Int32Flags, 0)))
        custom = table.string(1, "a custom operator's name")
        return code, (f"custom operator {quote_name(custom)!r}" if custom else operator_name(code))

    def _tensor(self, index: int, table: _Table) -> _Tensor:
        what = f"tensor {index}"
        shape = tuple(int(v) for v in table.array(0, "<i4", f"{what} shape"))
        if any(v < 0 for v in shape) or len(shape) > 8:
            raise self.file.corrupt(f"{what} has shape {shape}")
        quant = table.table_at(4, f"{what} quantization")
        scales, zeros, axis = (), (), 0
        if quant is not None:
            scales = tuple(float(v) for v in quant.array(2, "<f4", f"{what} scales"))
            zeros = tuple(int(v) for v in quant.array(3, "<i8", f"{what} zero points"))
            axis = int(quant.scalar(6, _N.Int32Flags, 0))
            if quant.table_at(5, f"{what} quantization details") is not None:
                raise UnsupportedError(f"{self.label}: tensor {self._quoted_name(table)}: custom quantization "
                                       f"details are not read. {SUPPORTED}")
        if table.table_at(6, f"{what} sparsity") is not None:
            raise UnsupportedError(f"{self.label}: tensor {self._quoted_name(table)} is sparse; mlpcodegen reads "
                                   f"dense tensors. {SUPPORTED}")
        return _Tensor(index, table.string(3, f"{what} name"), shape, int(table.scalar(1, _N.Int8Flags, 0)),
                       int(table.scalar(2, _N.Uint32Flags, 0)), scales, zeros, axis)

    @staticmethod
    def _quoted_name(table: _Table) -> str:
        return repr(quote_name(table.string(3, "a tensor name")))

    def _op(self, index: int, table: _Table) -> _Op:
        what = f"operator {index}"
        opcode = int(table.scalar(0, _N.Uint32Flags, 0))
        if opcode >= len(self.codes):
            raise self.file.corrupt(f"{what} uses operator code {opcode} of {len(self.codes)}")
        code, name = self.codes[opcode]
        inputs = tuple(int(v) for v in table.array(1, "<i4", f"{what} inputs"))
        outputs = tuple(int(v) for v in table.array(2, "<i4", f"{what} outputs"))
        for tensor in inputs + outputs:
            if not -1 <= tensor < len(self.tensors):
                raise self.file.corrupt(f"{what} names tensor {tensor} of {len(self.tensors)}")
        return _Op(index, code, name, inputs, outputs, table.table_at(4, f"{what} options"))

    def tensor(self, index: int) -> _Tensor:
        if not 0 <= index < len(self.tensors):
            raise self.file.corrupt(f"tensor {index} of {len(self.tensors)}")
        return self.tensors[index]

    def constant(self, tensor: _Tensor) -> Optional[np.ndarray]:
        """The tensor's data (None: computed at run time), its size checked against its shape."""
        if tensor.buffer == 0:
            return None
        if tensor.buffer >= len(self.buffers):
            raise self.file.corrupt(f"tensor {tensor.index} uses buffer {tensor.buffer} of {len(self.buffers)}")
        buffer = self.buffers[tensor.buffer]
        if buffer.scalar(1, _N.Uint64Flags, 0) > 1:
            raise ModelFormatError(f"{self.label}: tensor {quote_name(tensor.name)!r} keeps its data outside the "
                                   "flatbuffer (a model over 2 GB); not read")
        raw = buffer.array(0, "u1", f"buffer {tensor.buffer}")
        if raw.size == 0:
            return None
        kind = _NUMPY.get(tensor.type)
        if kind is None:
            raise UnsupportedError(f"{self.label}: tensor {quote_name(tensor.name)!r} holds {tensor.type_name} "
                                   f"constants. {SUPPORTED}")
        if raw.size != tensor.size * np.dtype(kind).itemsize:
            raise self.file.corrupt(f"tensor {quote_name(tensor.name)!r} has {raw.size} bytes of data for shape "
                                    f"{tensor.shape}")
        self.values += tensor.size
        if self.values > self.limits.max_weight_values:
            raise LimitExceeded(f"{self.label}: more than {self.limits.max_weight_values:,} weight values "
                                "(raise the limit with --max-size)")
        return raw.view(kind).reshape(tensor.shape)


# ================================================================ the chain


class _Chain:
    """Walks the operators in order; each must take the previous one's output."""

    def __init__(self, model: _Model) -> None:
        self.model, self.label = model, model.label
        self.constants: dict[int, np.ndarray] = {}
        self.layers: list = []       # float IR
        self.qlayers: list = []      # int8 plan
        self.float_input = self.float_output = False
        self.int8 = False
        self.input_params: Optional[QParams] = None
        self.logistic: Optional[tuple[int, int]] = None  # (input, output) of a LOGISTIC just read

    def refuse(self, op: _Op, why: str) -> UnsupportedError:
        out = self.model.tensor(op.outputs[0]).name if op.outputs and op.outputs[0] >= 0 else "?"
        return UnsupportedError(f"{self.label}: operator {op.index} {op.name} (output {quote_name(out)!r}): "
                                f"{why}. {SUPPORTED}")

    def run(self) -> Network:
        model = self.model
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            raise UnsupportedError(f"{self.label}: {len(model.inputs)} inputs and {len(model.outputs)} outputs; "
                                   f"mlpcodegen reads one input vector and one output vector. {SUPPORTED}")
        current = model.tensor(model.inputs[0])
        self.n_inputs = current.size
        if current.type == INT8:
            self.int8, self.input_params = True, self._params(current, "the input")
        elif current.type != FLOAT32:
            raise UnsupportedError(f"{self.label}: input {quote_name(current.name)!r} is {current.type_name}. "
                                   f"{SUPPORTED}")
        shape_only = self._shape_only()
        for op in model.ops:
            if op.index in shape_only:
                continue
            if op.name not in KNOWN_OPS:
                raise self.refuse(op, "is not supported" + _HINTS.get(op.name, ""))
            if not op.inputs or not op.outputs or op.inputs[0] < 0 or op.outputs[0] < 0:
                raise self.refuse(op, "an operator without a data input or output")
            if self._swish(op, current):
                current = model.tensor(op.outputs[0])
                continue
            self.logistic = None
            takes = op.inputs[0] == current.index or (op.name in AFFINE_OPS + BOUND_OPS
                                                      and op.inputs[1:2] == (current.index,))
            if not takes:
                if op.name == "DEQUANTIZE" and self._constant_dequantize(op):
                    continue
                raise self.refuse(op, "does not take the previous operator's output (not a chain)")
            if self.float_output:
                raise self.refuse(op, "follows the final DEQUANTIZE")
            current = self._step(op, current, model.tensor(op.outputs[0]))
        if current.index != model.outputs[0]:
            raise UnsupportedError(f"{self.label}: the model's output is not the last operator's. {SUPPORTED}")
        if not self.layers:
            raise UnsupportedError(f"{self.label}: no FULLY_CONNECTED operator. {SUPPORTED}")
        return self._network(current)

    def _shape_only(self) -> set[int]:
        """The SHAPE_OPS operators whose int32 outputs are read only by one another or as a
        RESHAPE's new shape (each RESHAPE is still checked to keep the sample's size)."""
        readers: dict[int, list[tuple[_Op, int]]] = {}
        for op in self.model.ops:
            for position, tensor in enumerate(op.inputs):
                readers.setdefault(tensor, []).append((op, position))
        found: set[int] = set()
        for op in reversed(self.model.ops):  # the file lists operators in execution order
            if op.name not in SHAPE_OPS + ("RESHAPE",) or not op.outputs or any(
                    t < 0 or t in self.model.outputs or (op.name != "RESHAPE" and self.model.tensor(t).type != INT32)
                    for t in op.outputs):
                continue  # (a RESHAPE whose output only SHAPE reads, as two Keras reshapes merged leave one)
            uses = [use for t in op.outputs for use in readers.get(t, [])]
            if uses and all(reader.index in found or (reader.name == "RESHAPE" and position == 1)
                            for reader, position in uses):
                found.add(op.index)
        return found

    def _swish(self, op: _Op, current: _Tensor) -> bool:
        """MUL(x, LOGISTIC(x)) right after that LOGISTIC (Keras' swish/silu): the sigmoid
        just read becomes silu."""
        gate, self.logistic = self.logistic, None
        if (op.name != "MUL" or gate is None or gate[1] != current.index or len(op.inputs) != 2
                or sorted(op.inputs) != sorted(gate)):
            return False
        self._no_fused(op)
        last, silu = self.layers[-1], Activation("silu")
        self.layers[-1] = (Dense(last.kernel, last.bias, silu, name=last.name) if isinstance(last, Dense)
                           else Activate(last.width, silu, name=last.name))
        return True

    def _no_fused(self, op: _Op) -> None:
        code = int(op.options.scalar(0, _N.Int8Flags, 0)) if op.options is not None else 0
        if code:
            raise self.refuse(op, f"fused activation {FUSED_NAMES.get(code, code)}")

    def _params(self, tensor: _Tensor, what: str) -> QParams:
        if len(tensor.scales) != 1 or len(tensor.zero_points) != 1:
            raise UnsupportedError(f"{self.label}: {what} {quote_name(tensor.name)!r} is int8 without one scale "
                                   f"and zero point. {SUPPORTED}")
        try:
            return QParams(np.float32(tensor.scales[0]).item(), tensor.zero_points[0])
        except Exception as exc:  # ValidationError: a bad scale or zero point
            raise ModelFormatError(f"{self.label}: tensor {quote_name(tensor.name)!r}: {exc}") from None

    def _constant_dequantize(self, op: _Op) -> bool:
        """A float16 (or int8) constant dequantised to float32 weights: kept as a constant."""
        source = self.model.tensor(op.inputs[0])
        data = self.model.constant(source)
        if data is None or source.type != FLOAT16:
            return False
        self.constants[op.outputs[0]] = data.astype(np.float32)
        return True

    def _value(self, index: int) -> Optional[np.ndarray]:
        if index < 0:
            return None
        if index in self.constants:
            return self.constants[index]
        return self.model.constant(self.model.tensor(index))

    def _step(self, op: _Op, x: _Tensor, y: _Tensor) -> _Tensor:
        if y.size != x.size and op.name not in ("FULLY_CONNECTED",):
            raise self.refuse(op, f"changes the width from {x.size} to {y.size}")
        if op.name == "QUANTIZE":
            return self._quantize(op, x, y)
        if op.name == "DEQUANTIZE":
            if not (self.int8 and x.type == INT8 and y.type == FLOAT32):
                raise self.refuse(op, f"dequantises {x.type_name} to {y.type_name}; only int8 -> float32 at the end")
            self.float_output = True
            return y
        if x.type != y.type or x.type not in ((INT8,) if self.int8 else (FLOAT32,)):
            raise self.refuse(op, f"{x.type_name} in, {y.type_name} out ({'int8' if self.int8 else 'float32'} "
                                  "expected)")
        if op.name == "RESHAPE":
            if len(x.shape) > 1 and len(y.shape) > 1 and x.shape[0] != y.shape[0]:
                raise self.refuse(op, f"reshapes {list(x.shape)} to {list(y.shape)}: the first axis, the batch, "
                                      "must stay (one sample per row)")
            if self.int8 and self._params(x, "input") != self._params(y, "output"):
                raise self.refuse(op, "requantises")
            return y
        if op.name == "FULLY_CONNECTED":
            self._dense(op, x, y)
            return y
        if op.name in ACTIVATION_OPS:
            self._activation(op, ACTIVATION_OPS[op.name], x, y)
            if op.name == "LOGISTIC" and not self.int8:
                self.logistic = (x.index, y.index)
            return y
        if op.name in FLOAT_ACTIVATION_OPS + AFFINE_OPS + BOUND_OPS and self.int8:
            raise self.refuse(op, "is read in float32 models only (no int8 kernel for it)")
        if op.name in FLOAT_ACTIVATION_OPS:
            self.layers.append(Activate(x.size, self._float_activation(op, x), name=y.name or op.name.lower()))
            return y
        if op.name in AFFINE_OPS:
            self._affine(op, x, y)
            return y
        if op.name in BOUND_OPS:
            self._bound(op, x, y)
            return y
        raise self.refuse(op, "is not supported")

    def _float_activation(self, op: _Op, x: _Tensor) -> Activation:
        if op.name == "PRELU":
            alpha = self._value(op.inputs[1]) if len(op.inputs) == 2 else None
            if alpha is None or alpha.dtype != np.float32 or alpha.size not in (1, x.size):
                raise self.refuse(op, f"needs a constant float32 alpha of 1 or {x.size} values")
            values = np.broadcast_to(alpha.astype(np.float64).reshape(-1), (x.size,))
            return Activation("prelu", (("alpha", tuple(float(v) for v in values)),))
        if op.name == "LEAKY_RELU":
            alpha = float(op.options.scalar(0, _N.Float32Flags, 0.0)) if op.options is not None else 0.0
            return Activation("leaky_relu", (("negative_slope", float(np.float32(alpha))),))
        if op.name == "GELU":
            approximate = bool(op.options.scalar(0, _N.BoolFlags, False)) if op.options is not None else False
            return Activation("gelu", (("approximate", float(approximate)),))
        return Activation({"ELU": "elu", "HARD_SWISH": "hard_silu", "EXP": "exponential",
                           "LOG_SOFTMAX": "log_softmax"}[op.name])

    def _affine(self, op: _Op, x: _Tensor, y: _Tensor) -> None:
        """x + c, x - c, c - x, x * c, x / c with c constant: one value, or one per feature."""
        self._no_fused(op)
        position = 1 if op.inputs[0] == x.index else 0
        constant = self._value(op.inputs[position]) if len(op.inputs) == 2 else None
        if constant is None or constant.dtype != np.float32 or constant.size not in (1, x.size) or (
                op.name == "DIV" and position == 0):
            raise self.refuse(op, f"needs the previous output and a float32 constant of 1 or {x.size} values"
                                  + (" (x / c only)" if op.name == "DIV" else ""))
        c = np.broadcast_to(constant.astype(np.float64).reshape(-1), (x.size,))
        ones, zeros, name = np.ones(x.size), np.zeros(x.size), y.name or op.name.lower()
        if op.name == "DIV" and not np.all(c != 0):
            raise ModelFormatError(f"{self.label}: operator {op.index} DIV divides by 0")
        scale, shift = {"ADD": (ones, c), "MUL": (c, zeros), "DIV": (1.0 / np.where(c == 0, 1.0, c), zeros),
                        "SUB": (ones, -c) if position == 1 else (-ones, c)}[op.name]
        self.layers.append(Affine(scale, shift, name=name))

    def _bound(self, op: _Op, x: _Tensor, y: _Tensor) -> None:
        """MINIMUM(x, c) / MAXIMUM(x, c), c one constant number: a clip, exactly (comparisons)."""
        position = 1 if op.inputs[0] == x.index else 0
        constant = self._value(op.inputs[position]) if len(op.inputs) == 2 else None
        if constant is None or constant.dtype != np.float32 or constant.size != 1 or not np.isfinite(constant).all():
            raise self.refuse(op, "needs the previous output and one finite float32 constant")
        bound = float(constant.reshape(-1)[0])
        low, high = (-math.inf, bound) if op.name == "MINIMUM" else (bound, math.inf)
        self.layers.extend(clamp_layers(x.size, low, high, y.name or op.name.lower()))

    def _quantize(self, op: _Op, x: _Tensor, y: _Tensor) -> _Tensor:
        if x.type == FLOAT32 and y.type == INT8 and not self.layers and not self.int8:
            self.int8, self.float_input = True, True
            self.input_params = self._params(y, "the quantised input")
            return y
        if x.type == INT8 and y.type == INT8 and self._params(x, "input") == self._params(y, "output"):
            return y
        raise self.refuse(op, f"quantises {x.type_name} to {y.type_name}; only float32 -> int8 first")

    def _fused(self, op: _Op) -> str:
        code = int(op.options.scalar(0, _N.Int8Flags, 0)) if op.options is not None else 0
        if code not in FUSED:
            raise self.refuse(op, f"fused activation {FUSED_NAMES.get(code, code)}")
        return FUSED[code]

    def _dense(self, op: _Op, x: _Tensor, y: _Tensor) -> None:
        weights_tensor = self.model.tensor(op.inputs[1]) if len(op.inputs) > 1 and op.inputs[1] >= 0 else None
        weights = None if weights_tensor is None else self._value(weights_tensor.index)
        bias = self._value(op.inputs[2]) if len(op.inputs) > 2 else None
        if weights is None or weights.ndim != 2 or weights.shape[1] != x.size or weights.shape[0] != y.size:
            raise self.refuse(op, f"needs constant weights of shape ({y.size}, {x.size})")
        if len(op.inputs) > 2 and op.inputs[2] >= 0 and (bias is None or bias.shape != (y.size,)):
            raise self.refuse(op, f"needs a constant bias of {y.size} values")
        if op.options is not None and int(op.options.scalar(1, _N.Int8Flags, 0)) != 0:
            raise self.refuse(op, "shuffled weights format")
        fused, name = self._fused(op), y.name or f"fully_connected_{op.index}"  # raw: printers quote it
        if not self.int8:
            if weights.dtype != np.float32 or (bias is not None and bias.dtype != np.float32):
                raise self.refuse(op, f"{weights.dtype} weights on float32 values (dynamic-range quantisation); "
                                      "convert with a representative dataset for int8, or without optimisation")
            self.layers.append(Dense(weights.T.astype(np.float64), None if bias is None else bias.astype(np.float64),
                                     IR_ACTIVATION[fused], name=name))
            return
        self._dense_int8(op, x, y, weights_tensor, weights, bias, fused, name)

    def _dense_int8(self, op, x, y, weights_tensor, weights, bias, fused, name) -> None:
        if weights.dtype != np.int8 or (bias is not None and bias.dtype != np.int32):
            raise self.refuse(op, f"{weights.dtype} weights and {None if bias is None else bias.dtype} bias "
                                  "(int8 and int32 expected)")
        scales = weights_tensor.scales
        if len(scales) not in (1, y.size) or (len(scales) > 1 and weights_tensor.axis != 0) \
                or any(z != 0 for z in weights_tensor.zero_points):
            raise self.refuse(op, "weights need zero point 0 and one scale, or one per output channel")
        if not all(math.isfinite(s) and s > 0 for s in scales):
            raise ModelFormatError(f"{self.label}: weights of {quote_name(name)!r}: scales must be positive and finite")
        x_params, y_params = self._params(x, "input"), self._params(y, "output")
        try:
            layer = QDense.build(weights, tuple(scales), bias, x_params, y_params, fused, name)
        except Exception as exc:  # ValidationError from the plan's checks
            raise ModelFormatError(f"{self.label}: layer {quote_name(name)!r}: {exc}") from None
        self.qlayers.append(layer)
        per_channel = np.asarray(scales if len(scales) > 1 else scales * y.size, dtype=np.float64)
        kernel = (weights.astype(np.float64) * per_channel[:, None]).T
        real_bias = None if bias is None else bias.astype(np.float64) * x_params.scale * per_channel
        self.layers.append(Dense(kernel, real_bias, IR_ACTIVATION[fused], name=name))

    def _activation(self, op: _Op, kind: str, x: _Tensor, y: _Tensor) -> None:
        name = y.name or f"{kind}_{op.index}"
        if kind == "softmax":
            beta = float(op.options.scalar(0, _N.Float32Flags, 0.0)) if op.options is not None else 0.0
            if beta != 1.0:
                raise self.refuse(op, f"softmax with beta {beta}; mlpcodegen reads beta 1")
        if self.int8:
            self.qlayers.append(self._qactivation(op, kind, x, y, name))
        activation = {"logistic": Activation("sigmoid"), "tanh": Activation("tanh"),
                      "softmax": Activation("softmax")}.get(kind) or IR_ACTIVATION[kind]
        last = self.layers[-1] if self.layers else None
        if isinstance(last, Dense) and last.activation.is_identity:  # folded into the layer before
            self.layers[-1] = Dense(last.kernel, last.bias, activation, name=last.name)
        else:
            self.layers.append(Activate(x.size, activation, name=name))

    def _qactivation(self, op: _Op, kind: str, x: _Tensor, y: _Tensor, name: str):
        x_params, y_params = self._params(x, "input"), self._params(y, "output")
        try:
            if kind in ("logistic", "tanh"):
                return QTable.build(kind, x_params, y_params, x.size, name)
            if kind == "softmax":
                return QSoftmax.build(x_params, y_params, 1.0, x.size, name)
            return QRelu.build(kind, x_params, y_params, x.size, name)
        except Exception as exc:  # ValidationError
            raise ModelFormatError(f"{self.label}: layer {quote_name(name)!r}: {exc}") from None

    def _network(self, last: _Tensor) -> Network:
        model = self.model
        name = re.sub(r"\W", "_", model.name) or "tflite"
        if not self.int8:
            net = Network(self.n_inputs, tuple(self.layers), "float32", name)
            return fuse_activations(fold_affine(net) if any(isinstance(v, Affine) for v in self.layers) else net)
        if not self.qlayers or not isinstance(self.qlayers[0], QDense):
            raise UnsupportedError(f"{self.label}: an int8 model must start with FULLY_CONNECTED. {SUPPORTED}")
        output = self.qlayers[-1].output
        try:
            plan = Int8Plan(tuple(self.qlayers), self.input_params, output, self.float_input, self.float_output)
        except Exception as exc:  # ValidationError: inconsistent quantisation between layers
            raise ModelFormatError(f"{self.label}: {exc}") from None
        notes = (f"int8 model: the float targets compute the dequantised weights in float "
                 f"({'float' if self.float_input else 'int8'} input, {'float' if self.float_output else 'int8'} output "
                 "in the file)",)
        return QuantizedNetwork(self.n_inputs, tuple(self.layers), "float32", name, notes, int8=plan)


# ================================================================ entry points


def load_file(path: Any, *, fold: bool = True, limits: ReadLimits | None = None) -> Network:
    """Read a ``.tflite`` file (untrusted: size-checked before reading, every offset checked)."""
    limits = DEFAULT_LIMITS if limits is None else limits
    label = str(Path(path))
    preflight(label, limits)
    data = read_regular_file(label, limits)
    return parse(data, label, limits)


def parse(data: bytes, label: str = "<tflite>", limits: ReadLimits | None = None) -> Network:
    """The network in the bytes of a ``.tflite`` file."""
    limits = DEFAULT_LIMITS if limits is None else limits
    return _Chain(_Model(bytes(data), label, limits)).run()


def load_object(model: Any, *, fold: bool = True) -> Network:
    """The bytes of a ``.tflite`` model (as ``TFLiteConverter.convert()`` returns them)."""
    if isinstance(model, (bytes, bytearray, memoryview)) and is_tflite(bytes(model[:8])):
        return parse(bytes(model), "in-memory TFLite model")
    raise ModelFormatError("a TFLite model object is the bytes TFLiteConverter.convert() returns")
