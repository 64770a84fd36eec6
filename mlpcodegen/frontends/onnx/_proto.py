"""The protobuf side of the ONNX frontend: :func:`read_model_file` (the sandbox's job)
parses the bounded bytes, refuses external data and runs ONNX's checker, and
:func:`_describe` turns the graph (nodes, attributes, initializers converted to float64
within the weight budget) into JSON plus arrays; :func:`_decode` reads that description
back in the caller.  The only module of the frontend that touches the ``onnx`` package."""
from __future__ import annotations

import json
import math
from typing import Any, Optional

import numpy as np

from ...core.errors import ModelFormatError, UnsupportedError
from ...core.limits import LimitExceeded, ReadLimits
from ...core.untrusted import quote_name
from .._untrusted_h5 import read_regular_file

try:  # imported here, not in the job: the fork server's children then inherit it (0.3 s each otherwise)
    import onnx as _onnx
except ImportError:  # pragma: no cover - the [onnx] extra is not installed
    _onnx = None


#: TensorProto element types read as weights, and integer types read for shapes and axes.
_FLOAT_TYPES = {1: "float32", 10: "float16", 11: "float64", 16: "bfloat16"}
_INT_TYPES = {2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64", 9: "bool", 12: "uint32",
              13: "uint64"}
_EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL
_ATTRIBUTE_VALUE = {1: "f", 2: "i", 3: "s", 6: "floats", 7: "ints"}  # AttributeProto types read as values
_ATTRIBUTE_TENSOR = 4


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
                                   "file; only self-contained .onnx files are read: export with "
                                   "torch.onnx.export(..., external_data=False) (torch 2.9 and later write the weights "
                                   "of all but the smallest networks to a .data file by default), or re-save with "
                                   "onnx.save(onnx.load(PATH), NEW_PATH, save_as_external_data=False)")
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
