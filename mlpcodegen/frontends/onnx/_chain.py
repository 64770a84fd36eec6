"""The walk's state (:class:`_Chain`: constants, the current value's shape, the layers
built) and the accessors every reader shares: a node's name for messages, its checked
attributes, a shape as text."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from ...core.errors import ModelFormatError, UnsupportedError, ValidationError
from ...core.untrusted import quote_name
from ._proto import _FLOAT_TYPES


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


_FLATTEN_FIRST = " (a Flatten or Reshape to (batch, features) before it is read)"


def _shape(dims: Any) -> str:
    return "unknown" if dims is None else "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"
