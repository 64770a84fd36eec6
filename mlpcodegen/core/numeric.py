"""Numeric types a target computes in: one record each, one table.

Every place that needs to know something about a type (its C spelling, how a literal
is written so it reads back exactly, the libm suffix, how many SIMD lanes a batch
block uses, the NumPy dtype a compiled predictor takes) reads it from here, so adding
a type (a fixed-point format, say) is one entry, not a string check in each module.
Knows no framework and no language beyond the spellings it records.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .errors import UnsupportedError


@dataclass(frozen=True)
class NumericType:
    """One number format a predictor computes in.

    ``digits``: how a literal keeps its exact value (``"repr"`` for binary64,
    ``"float32"`` for the shortest text that reads back as the same binary32).
    ``fraction_bits`` is for fixed-point formats (None for floating point);
    ``plans_domain``: its formats are planned for an input domain the caller gives (q15),
    rather than read from the model (int8's scales)."""

    name: str
    c_type: str  # "float", "double"
    literal_suffix: str  # "f" on a C float constant
    math_suffix: str  # tanhf / tanh
    lanes: int  # samples per block in a batch loop (SIMD width x unroll, measured)
    numpy: str  # the NumPy dtype name of a predictor's inputs and outputs
    digits: str
    fraction_bits: Optional[int] = None
    plans_domain: bool = False

    def __post_init__(self) -> None:
        if self.digits not in _DIGITS:
            raise ValueError(f"numeric type {self.name!r}: digits must be one of {sorted(_DIGITS)}")
        if self.lanes < 1:
            raise ValueError(f"numeric type {self.name!r}: lanes must be positive")

    @property
    def np_dtype(self) -> np.dtype:
        return np.dtype(self.numpy)

    @property
    def is_float32(self) -> bool:
        """Rounds like IEEE binary32 (outputs compared at float32 tolerances)."""
        return self.np_dtype == np.float32 and self.fraction_bits is None

    @property
    def is_fixed(self) -> bool:
        """A fixed-point format (compared against its stated error bound)."""
        return self.fraction_bits is not None

    def float_text(self, value: float) -> str:
        """The shortest decimal text that reads back as exactly ``value`` in this type:
        positional between 1e-4 and 1e16 (as Python's ``repr``), scientific elsewhere,
        always with a ``.`` or an exponent so C reads a floating constant.

        >>> FLOAT32.float_text(0.1), FLOAT32.float_text(1e-45), FLOAT64.float_text(2.0)
        ('0.1', '1e-45', '2.0')
        """
        return _DIGITS[self.digits](value)

    def c_literal(self, value: float) -> str:
        """An exact C floating constant (float32 with an ``f`` suffix)."""
        return self.float_text(value) + self.literal_suffix


def _binary64_text(value: float) -> str:
    return repr(float(value))


def _binary32_text(value: float) -> str:
    single = np.float32(value)
    magnitude = abs(float(single))
    if magnitude == 0.0 or 1e-4 <= magnitude < 1e16:
        return np.format_float_positional(single, unique=True, trim="0")
    return np.format_float_scientific(single, unique=True, trim="-")


_DIGITS = {"repr": _binary64_text, "float32": _binary32_text}

FLOAT32 = NumericType("float32", "float", "f", "f", lanes=32, numpy="float32", digits="float32")
FLOAT64 = NumericType("float64", "double", "", "", lanes=16, numpy="float64", digits="repr")

#: Q15 fixed point (mlpcodegen.core.fixed): int16 codes inside; a predictor's inputs and
#: outputs are float32 (its float wrapper), so ``c_type``/``numpy`` describe those.
Q15 = NumericType("q15", "float", "f", "f", lanes=1, numpy="float32", digits="float32", fraction_bits=15,
                  plans_domain=True)

#: int8 (mlpcodegen.core.quant, LiteRT's kernels): int8 codes inside, float32 through the float wrapper.
INT8 = NumericType("int8", "float", "f", "f", lanes=1, numpy="float32", digits="float32", fraction_bits=0)

#: name -> type; the order is the order targets list them (the first is the default).
#: Floating point only: the float C backend computes in each of them.
NUMERIC_TYPES: dict[str, NumericType] = {t.name: t for t in (FLOAT32, FLOAT64)}
#: Fixed-point types: printed by their own backends (backends/c_fixed.py), never by the float C.
FIXED_TYPES: dict[str, NumericType] = {t.name: t for t in (Q15, INT8)}


def numeric_type(name: "str | NumericType") -> NumericType:
    """The record of ``name`` (a record is returned as it is)."""
    if isinstance(name, NumericType):
        return name
    found = NUMERIC_TYPES.get(name) if isinstance(name, str) else None
    found = found or (FIXED_TYPES.get(name) if isinstance(name, str) else None)
    if found is None:
        raise UnsupportedError(f"unknown dtype {name!r}; supported: {', '.join([*NUMERIC_TYPES, *FIXED_TYPES])}")
    return found
