"""ONNX ``Cast`` of a constant, with the operator's real semantics (issue 21 item 6).

A ``Cast(W, to=int32) -> Cast(to=float) -> Gemm`` chain computes with the truncated W;
reading it as an identity gave a silent wrong network.  :func:`cast_constant` returns
what ONNX Runtime computes, or refuses what ONNX leaves undefined:

* float -> integer: truncation toward zero; a non-finite value or one out of the
  target's range is undefined behaviour in ONNX (and C++): refused.
* integer/bool -> integer: two's complement wrap-around (``static_cast``).
* anything -> bool: ``x != 0`` (NaN is true).
* -> float32/float64: round to nearest even, overflow to +-inf (refused later as
  non-finite weights); -> float16/bfloat16 the same, from float32 values (a float64
  value -- a float64 or a large integer -- that is not a float32 would be rounded
  twice, and ONNX Runtime's path for that is not promised: refused).

Values arrive as float64 arrays (the file reader's form): int64/uint64 values of
2**53 or more were not exact there and are refused.  Only numpy is used.
"""
from __future__ import annotations

import numpy as np

from ..core.errors import UnsupportedError

#: TensorProto element type -> (name, numpy type) of the types a constant may be cast to.
_INTEGERS = {2: ("uint8", np.uint8), 3: ("int8", np.int8), 4: ("uint16", np.uint16), 5: ("int16", np.int16),
             6: ("int32", np.int32), 7: ("int64", np.int64), 12: ("uint32", np.uint32), 13: ("uint64", np.uint64)}
_FLOATS = {1: "float32", 10: "float16", 11: "float64", 16: "bfloat16"}
_BOOL = 9
#: Names of the element types refused as targets (ONNX's TensorProto.DataType).
_OTHER = {8: "string", 14: "complex64", 15: "complex128", 17: "float8e4m3fn", 18: "float8e4m3fnuz",
          19: "float8e5m2", 20: "float8e5m2fnuz", 21: "uint4", 22: "int4", 23: "float4e2m1"}
_EXACT = 2.0 ** 53


def type_name(code: int) -> str:
    if code in _INTEGERS:
        return _INTEGERS[code][0]
    return _FLOATS.get(code) or ("bool" if code == _BOOL else _OTHER.get(code, f"type {code}"))


def cast_constant(values: np.ndarray, source: str, target: int, where: str) -> tuple[np.ndarray, str]:
    """``Cast(values, to=target)`` of a constant stored as ``source`` (a type name):
    (the result as float64, the target's type name)."""
    if target not in _INTEGERS and target not in _FLOATS and target != _BOOL:
        raise UnsupportedError(f"{where}: a Cast of a constant to {type_name(target)} is not supported; "
                               "supported: float16, bfloat16, float32, float64, bool and the integer types")
    if source in ("int64", "uint64") and np.any(np.abs(values) >= _EXACT):
        raise UnsupportedError(f"{where}: casts {source} values of 2**53 or more, which are not read exactly")
    if target == _BOOL:
        return (values != 0).astype(np.float64), "bool"  # NaN != 0: true, as in C++
    if target in _INTEGERS:
        return _to_integer(values, source, target, where), _INTEGERS[target][0]
    return _to_float(values, source, target, where), _FLOATS[target]


def _to_integer(values: np.ndarray, source: str, target: int, where: str) -> np.ndarray:
    name, kind = _INTEGERS[target]
    info = np.iinfo(kind)
    if source in _FLOATS.values():
        if not np.all(np.isfinite(values)):
            raise UnsupportedError(f"{where}: casts a non-finite value to {name} (undefined in ONNX)")
        truncated = np.trunc(values)
        if np.any(truncated < info.min) or np.any(truncated > info.max):
            raise UnsupportedError(f"{where}: casts a value outside {name}'s range [{info.min}, {info.max}] "
                                   "(undefined in ONNX)")
        return truncated + 0.0  # -0.0 (from -0.5) is the integer 0
    wrapped = [int(v) % (1 << info.bits) for v in values.reshape(-1)]  # exact integers (checked above)
    if info.min < 0:
        wrapped = [v - (1 << info.bits) if v > info.max else v for v in wrapped]
    if any(abs(v) >= _EXACT for v in wrapped):
        raise UnsupportedError(f"{where}: the cast to {name} gives values of 2**53 or more, not representable here")
    return np.asarray(wrapped, np.float64).reshape(values.shape)


def _to_float(values: np.ndarray, source: str, target: int, where: str) -> np.ndarray:
    name = _FLOATS[target]
    if name == "float64":
        return values.copy()
    with np.errstate(over="ignore", invalid="ignore"):
        single = values.astype(np.float32)
    if name == "float32":
        return single.astype(np.float64)
    finite = np.isfinite(values)
    if np.any(single.astype(np.float64)[finite] != values[finite]):
        raise UnsupportedError(f"{where}: casts {source} values that are not float32 numbers to {name} (rounded "
                               "twice, and ONNX does not say how): store the constant as float32")
    with np.errstate(over="ignore", invalid="ignore"):
        rounded = single.astype(np.float16) if name == "float16" else _bfloat16(single)
    return rounded.astype(np.float64)


def _bfloat16(single: np.ndarray) -> np.ndarray:
    """Round float32 values to bfloat16 (nearest, ties to even; NaN stays NaN), as float32."""
    bits = np.ascontiguousarray(single, np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000).astype(np.uint32).view(np.float32)
    return np.where(np.isnan(single), single, rounded)
