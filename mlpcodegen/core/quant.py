"""int8 quantised networks as LiteRT (TensorFlow Lite) runs them: small immutable data.

A full-integer TFLite model stores every tensor as int8 codes ``q`` standing for
``scale * (q - zero_point)``; weights are int8 with zero point 0 (one scale per tensor or
one per output channel), biases int32 codes of scale ``input_scale * weight_scale``.  A
fully connected layer sums in int32 and brings the sum to the output's scale with a
fixed-point multiplier and shift per channel (:func:`quantize_multiplier`, as LiteRT's
``QuantizeMultiplier`` computes them from the float scales), then adds the output zero
point and clamps (the fused activation is only a clamp range).

Every number an int8 predictor uses is computed here, once, from the file's scales, so
the printer (:mod:`mlpcodegen.backends.c_int8`) only prints and :func:`run_int8` (the
NumPy mirror the tests use) only runs:

* :class:`QDense`   -- FULLY_CONNECTED: int8 weights, int32 bias, multiplier/shift per channel, clamp.
* :class:`QTable`   -- LOGISTIC and TANH: a 256-entry int8 table, built as LiteRT's ``PopulateLookupTable``
  does (float32 steps: dequantise, transform, ``round(v / output_scale)`` + zero point, clamp).
* :class:`QRelu`    -- RELU, RELU6, RELU_N1_TO_1 on their own: requantise (multiplier/shift), clamp.
* :class:`QSoftmax` -- SOFTMAX: LiteRT's float kernel on int8 codes: a 256-entry float32 table of
  ``exp(-input_scale * beta * d)``, a float32 sum in order, ``round(p / output_scale)``.

Knows no file format and no language.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional, Union

import numpy as np

from .errors import ValidationError
from .untrusted import quote_name
from .ir import Network

INT8_MIN, INT8_MAX = -128, 127

#: How a requantisation rounds (chosen per use, :meth:`Int8Plan.rounded`):
#: ``"single"``: ``(x * m + 2**(30 - shift)) >> (31 - shift)``, one rounding (halves up): the pip LiteRT
#: interpreter (built with TFLITE_SINGLE_ROUNDING), CMSIS-NN with CMSIS_NN_USE_SINGLE_ROUNDING;
#: ``"double"``: SaturatingRoundingDoublingHighMul (``x << max(shift, 0)`` times m, halves up, the high
#: 32 bits doubled) then RoundingDivideByPOT by ``max(-shift, 0)`` (halves away from zero): TensorFlow
#: Lite Micro's reference kernels and CMSIS-NN by default (arm_nn_requantize).
ROUNDINGS = ("single", "double")


def _f32(value: float) -> np.float32:
    return np.float32(value)


def round_half_away(value: float) -> float:
    """C's ``round``/``roundf`` (LiteRT's TfLiteRound): halves away from zero."""
    return math.copysign(math.floor(abs(value) + 0.5), value)


@dataclass(frozen=True)
class QParams:
    """One tensor's quantisation: ``real = scale * (code - zero_point)``, int8 codes."""

    scale: float
    zero_point: int

    def __post_init__(self) -> None:
        scale = float(self.scale)
        if not (math.isfinite(scale) and scale > 0 and float(np.float32(scale)) == scale):
            raise ValidationError(f"quantisation scale {self.scale!r} must be a positive finite float32")
        if not (isinstance(self.zero_point, (int, np.integer)) and INT8_MIN <= int(self.zero_point) <= INT8_MAX):
            raise ValidationError(f"int8 zero point {self.zero_point!r} must be an integer in [-128, 127]")
        object.__setattr__(self, "scale", scale)
        object.__setattr__(self, "zero_point", int(self.zero_point))

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """LiteRT's QUANTIZE (float32 -> int8): ``round(x / scale)`` in float32, halves
        away from zero, plus the zero point, saturated.  NaN and quotients beyond int32 as
        LiteRT's x86 build maps them: its cast gives INT32_MIN, which the zero point takes
        to -128 (zero point >= 0) or, wrapping, to 127."""
        x = np.asarray(x, dtype=np.float32)
        with np.errstate(all="ignore"):
            ratio = (x / np.float32(self.scale)).astype(np.float64)
        wild = ~((ratio > -2.0 ** 31) & (ratio < 2.0 ** 31))  # -2**31 itself: INT32_MIN + zero point
        ratio = np.where(wild, 0.0, np.clip(ratio, -512.0, 512.0))
        rounded = np.where(ratio < 0, -np.floor(-ratio + 0.5), np.floor(ratio + 0.5))
        codes = np.clip(rounded + self.zero_point, INT8_MIN, INT8_MAX)
        return np.where(wild, INT8_MAX if self.zero_point < 0 else INT8_MIN, codes).astype(np.int8)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        """LiteRT's DEQUANTIZE: ``scale * (q - zero_point)`` rounded once to float32."""
        return (np.float32(self.scale) * (np.asarray(q, dtype=np.int32) - self.zero_point).astype(np.float32))


def quantize_multiplier(real: float) -> tuple[int, int]:
    """(multiplier, shift) with ``real ~= multiplier * 2**(shift - 31)``, as LiteRT's
    ``QuantizeMultiplier``: ``frexp``, the mantissa times 2**31 rounded half away from zero,
    a mantissa that rounds up to 2**31 halved, a multiplier below 2**-31 flushed to 0 and
    shifts past 30 saturated (LiteRT clamps them there too)."""
    if real == 0.0:
        return 0, 0
    if not (math.isfinite(real) and real > 0):
        raise ValidationError(f"a requantisation multiplier must be positive and finite, got {real!r}")
    mantissa, shift = math.frexp(real)
    fixed = int(round_half_away(mantissa * (1 << 31)))
    if fixed == 1 << 31:
        fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if shift > 30:
        return (1 << 31) - 1, 30
    return fixed, shift


def _frozen(values: object, dtype: str, what: str) -> np.ndarray:
    array = np.array(values, dtype=dtype)
    array.setflags(write=False)
    return array


def activation_range(kind: str, out: QParams) -> tuple[int, int]:
    """The int8 clamp of a fused activation (LiteRT's CalculateActivationRangeQuantized:
    ``zero_point + (int)round(limit / scale)`` in float32, within [-128, 127])."""
    def code(limit: float) -> int:
        return out.zero_point + int(round_half_away(float(np.float32(limit) / np.float32(out.scale))))

    low, high = {"none": (None, None), "relu": (0.0, None), "relu6": (0.0, 6.0),
                 "relu_n1_to_1": (-1.0, 1.0)}[kind]
    return (INT8_MIN if low is None else max(INT8_MIN, code(low)),
            INT8_MAX if high is None else min(INT8_MAX, code(high)))


@dataclass(frozen=True, eq=False)
class QDense:
    """FULLY_CONNECTED on int8: ``clamp(zp_out + MBQM(bias + sum((x - zp_in) * w)))``."""

    weights: np.ndarray        # int8 (units, n_in), zero point 0
    bias: np.ndarray           # int32 (units,)
    multipliers: np.ndarray    # int32 (units,)
    shifts: np.ndarray         # int (units,): left shift if > 0, right shift if < 0
    input: QParams
    output: QParams
    low: int
    high: int
    fused: str = "none"
    name: str = "fully_connected"

    def __post_init__(self) -> None:
        weights = _frozen(self.weights, "int8", "weights")
        units = weights.shape[0] if weights.ndim == 2 else 0
        if weights.ndim != 2 or 0 in weights.shape:
            raise ValidationError(f"layer {quote_name(self.name)!r}: int8 weights must be (units, inputs), got {weights.shape}")
        for key, dtype in (("bias", "int32"), ("multipliers", "int32"), ("shifts", "int32")):
            array = _frozen(getattr(self, key), dtype, key)
            if array.shape != (units,):
                raise ValidationError(f"layer {quote_name(self.name)!r}: {key} needs {units} values, got shape {array.shape}")
            object.__setattr__(self, key, array)
        object.__setattr__(self, "weights", weights)
        if (self.multipliers < 0).any() or (self.shifts > 30).any() or (self.shifts < -31).any():
            raise ValidationError(f"layer {quote_name(self.name)!r}: multipliers must be >= 0 and shifts in [-31, 30]")
        if not INT8_MIN <= self.low <= self.high <= INT8_MAX:
            raise ValidationError(f"layer {quote_name(self.name)!r}: clamp [{self.low}, {self.high}] not within int8")

    @classmethod
    def build(cls, weights: np.ndarray, weight_scales: tuple[float, ...], bias: Optional[np.ndarray],
              input: QParams, output: QParams, fused: str, name: str) -> "QDense":
        """The layer from the file's codes and scales: one multiplier per channel,
        ``input_scale * weight_scale / output_scale`` in double as LiteRT computes it."""
        units = int(np.shape(weights)[0])
        scales = list(weight_scales) * (units if len(weight_scales) == 1 else 1)
        if len(scales) != units:
            raise ValidationError(f"layer {quote_name(name)!r}: {len(weight_scales)} weight scales for {units} channels")
        pairs = [quantize_multiplier(float(input.scale) * float(s) / float(output.scale)) for s in scales]
        low, high = activation_range(fused, output)
        return cls(weights, np.zeros(units, np.int32) if bias is None else bias, [m for m, _ in pairs],
                   [s for _, s in pairs], input, output, low, high, fused, name)

    @property
    def n_in(self) -> int:
        return int(self.weights.shape[1])

    @property
    def units(self) -> int:
        return int(self.weights.shape[0])


def _lut(transform, input: QParams, output: QParams) -> np.ndarray:
    """LiteRT's PopulateLookupTable in float32 steps, indexed by the code + 128."""
    codes = np.arange(INT8_MIN, INT8_MAX + 1)
    dequantized = np.float32(input.scale) * (codes - input.zero_point).astype(np.float32)
    transformed = transform(dequantized).astype(np.float32)
    inverse = np.float32(1.0) / np.float32(output.scale)
    scaled = (transformed * inverse).astype(np.float64)
    rounded = np.where(scaled < 0, -np.floor(-scaled + 0.5), np.floor(scaled + 0.5))
    return np.clip(rounded + output.zero_point, INT8_MIN, INT8_MAX).astype(np.int8)


def _expf(x: np.ndarray) -> np.ndarray:
    """float32 exp, correctly rounded (through float64): what a libm's expf returns
    except in the rarest halfway cases."""
    return np.exp(np.asarray(x, dtype=np.float64)).astype(np.float32)


def _logistic(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return np.float32(1.0) / (np.float32(1.0) + _expf(-x))


def _tanh(x: np.ndarray) -> np.ndarray:
    return np.tanh(np.asarray(x, dtype=np.float64)).astype(np.float32)


TABLE_FUNCTIONS = {"logistic": _logistic, "tanh": _tanh}


@dataclass(frozen=True, eq=False)
class QTable:
    """LOGISTIC or TANH on int8: ``y = table[x + 128]``."""

    kind: str
    table: np.ndarray  # int8 (256,)
    input: QParams
    output: QParams
    width: int
    name: str = "activation"

    def __post_init__(self) -> None:
        if self.kind not in TABLE_FUNCTIONS:
            raise ValidationError(f"table activation {self.kind!r}: one of {sorted(TABLE_FUNCTIONS)}")
        table = _frozen(self.table, "int8", "table")
        if table.shape != (256,):
            raise ValidationError(f"layer {quote_name(self.name)!r}: a table has 256 entries")
        object.__setattr__(self, "table", table)

    @classmethod
    def build(cls, kind: str, input: QParams, output: QParams, width: int, name: str) -> "QTable":
        return cls(kind, _lut(TABLE_FUNCTIONS[kind], input, output), input, output, width, name)

    @property
    def n_in(self) -> int:
        return self.width

    units = n_in


@dataclass(frozen=True, eq=False)
class QRelu:
    """RELU / RELU6 / RELU_N1_TO_1 on int8 (LiteRT's ReluX): requantise, then clamp."""

    kind: str
    multiplier: int
    shift: int
    input: QParams
    output: QParams
    low: int
    high: int
    width: int
    name: str = "relu"

    @classmethod
    def build(cls, kind: str, input: QParams, output: QParams, width: int, name: str) -> "QRelu":
        multiplier, shift = quantize_multiplier(float(input.scale) / float(output.scale))
        low, high = activation_range(kind, output)
        return cls(kind, multiplier, shift, input, output, low, high, width, name)

    @property
    def n_in(self) -> int:
        return self.width

    units = n_in


#: gemmlowp's fixed-point softmax: the integer bits of the scaled differences (Q5.26) and of the sum (Q12.19).
SCALED_DIFF_BITS, ACCUMULATION_BITS = 5, 12
#: The widest int8 softmax: the sum of exps stays in Q12.19 and every rounding shift below 32.
MAX_SOFTMAX_WIDTH = 256


@dataclass(frozen=True, eq=False)
class QSoftmax:
    """SOFTMAX on int8 as LiteRT's reference kernel (and TFLite Micro's, and CMSIS-NN's
    ``arm_softmax_s8``) computes it, integers only: ``d = x - max(x)``; ``d`` below
    ``diff_min`` gives -128; else ``d * multiplier << shift`` (Q5.26) into gemmlowp's
    ``exp_on_negative_values`` (Q0.31), summed in Q12.19, the sum's reciprocal by
    Newton-Raphson, and the probability rounded to 1/256 with zero point -128."""

    multiplier: int
    shift: int
    diff_min: int
    input: QParams
    output: QParams
    width: int
    name: str = "softmax"
    beta: float = 1.0
    rounding: str = "single"

    def __post_init__(self) -> None:
        if self.rounding not in ROUNDINGS:
            raise ValidationError(f"rounding {self.rounding!r}: one of {', '.join(ROUNDINGS)}")
        if self.output != QParams(1.0 / 256, -128):
            raise ValidationError(f"layer {quote_name(self.name)!r}: an int8 softmax outputs scale 1/256, zero point -128 "
                                  f"(as TFLite's converter writes it), not {self.output}")
        if not 1 <= self.width <= MAX_SOFTMAX_WIDTH:
            raise ValidationError(f"layer {quote_name(self.name)!r}: int8 softmax over {self.width} values; at most "
                                  f"{MAX_SOFTMAX_WIDTH}")
        if not (0 <= self.multiplier < 1 << 31 and 0 <= self.shift <= 30 and self.diff_min <= 0):
            raise ValidationError(f"layer {quote_name(self.name)!r}: softmax scaling out of range")

    @classmethod
    def build(cls, input: QParams, output: QParams, beta: float, width: int, name: str,
              rounding: str = "single") -> "QSoftmax":
        """LiteRT's PreprocessSoftmaxScaling (the real multiplier capped at 2**30 - 1 with single
        rounding, 2**31 - 1 with double) and CalculateInputRadius, in double."""
        if not (math.isfinite(beta) and beta > 0):
            raise ValidationError(f"layer {quote_name(name)!r}: softmax beta must be positive and finite, got {beta!r}")
        cap = (1 << (30 if rounding == "single" else 31)) - 1.0
        real = min(float(np.float32(beta)) * input.scale * float(1 << (31 - SCALED_DIFF_BITS)), cap)
        multiplier, shift = quantize_multiplier(real)
        if shift < 0:
            raise ValidationError(f"layer {quote_name(name)!r}: input scale {input.scale} too small for LiteRT's softmax")
        radius = ((1 << SCALED_DIFF_BITS) - 1) * float(1 << (31 - SCALED_DIFF_BITS)) / float(1 << shift)
        return cls(multiplier, shift, -int(math.floor(radius)), input, output, width, name, float(beta), rounding)

    @property
    def n_in(self) -> int:
        return self.width

    units = n_in


QLayer = Union[QDense, QTable, QRelu, QSoftmax]


@dataclass(frozen=True, eq=False)
class Int8Plan:
    """The int8 layers in order, the input's and the output's quantisation, and whether the
    model itself takes and returns float (a QUANTIZE first, a DEQUANTIZE last)."""

    layers: tuple
    input: QParams
    output: QParams
    float_input: bool = False
    float_output: bool = False
    rounding: str = "single"

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        if self.rounding not in ROUNDINGS:
            raise ValidationError(f"int8 rounding {self.rounding!r}: one of {', '.join(ROUNDINGS)}")
        if not self.layers or not isinstance(self.layers[0], QDense):
            raise ValidationError("an int8 plan starts with a fully connected layer")
        width = self.layers[0].n_in
        previous = self.input
        for layer in self.layers:
            if not isinstance(layer, (QDense, QTable, QRelu, QSoftmax)):
                raise ValidationError(f"{type(layer).__name__} is not an int8 layer")
            if layer.n_in != width:
                raise ValidationError(f"int8 layer {quote_name(layer.name)!r} takes {layer.n_in} values, gets {width}")
            if layer.input != previous:
                raise ValidationError(f"int8 layer {quote_name(layer.name)!r}: its input's quantisation differs from "
                                      "the previous output's")
            width, previous = layer.units, layer.output
        if previous != self.output:
            raise ValidationError("the int8 plan's output quantisation differs from its last layer's")

    def rounded(self, rounding: str) -> "Int8Plan":
        """The same model requantised with ``rounding`` (:data:`ROUNDINGS`): the multipliers
        are the same; a softmax's input scaling is rebuilt (its cap differs)."""
        if rounding == self.rounding:
            return self
        if rounding not in ROUNDINGS:
            raise ValidationError(f"int8 rounding {rounding!r}: one of {', '.join(ROUNDINGS)}")
        layers = [QSoftmax.build(layer.input, layer.output, layer.beta, layer.width, layer.name, rounding)
                  if isinstance(layer, QSoftmax) else layer for layer in self.layers]
        return Int8Plan(tuple(layers), self.input, self.output, self.float_input, self.float_output, rounding)

    @property
    def n_inputs(self) -> int:
        return self.layers[0].n_in

    @property
    def n_outputs(self) -> int:
        return self.layers[-1].units

    @property
    def width(self) -> int:
        return max([self.n_inputs] + [layer.units for layer in self.layers])


@dataclass(frozen=True)
class QuantizedNetwork(Network):
    """A :class:`~mlpcodegen.core.ir.Network` (the dequantised float model, which every float
    target prints) that also carries the int8 plan the ``int8`` C prints."""

    int8: Optional[Int8Plan] = field(default=None)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.int8, Int8Plan):
            raise ValidationError("a QuantizedNetwork carries an Int8Plan")
        if (self.int8.n_inputs, self.int8.n_outputs) != (self.n_inputs, self.n_outputs):
            raise ValidationError("the int8 plan's widths differ from the network's")


def int8_plan(net: Network) -> Int8Plan:
    """The int8 plan of ``net``, or a clear error for a float network."""
    plan = getattr(net, "int8", None)
    if not isinstance(plan, Int8Plan):
        raise ValidationError(f"network {quote_name(net.name)!r} has no int8 quantisation: --dtype int8 takes a "
                              "full-integer quantised .tflite model (TFLiteConverter with a representative "
                              "dataset and Optimize.DEFAULT), or a float model with --calibrate DATA (calibrate(net, rows))")
    return plan


# ---------------------------------------------------------------- the NumPy mirror


def rounding_divide_by_pot(x: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """gemmlowp's RoundingDivideByPOT: ``x / 2**exponent`` rounded to nearest, halves away from zero."""
    x = np.asarray(x, dtype=np.int64)
    exponent = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def multiply_by_quantized_multiplier(x: np.ndarray, multiplier, shift) -> np.ndarray:
    """LiteRT's MultiplyByQuantizedMultiplier as its interpreter computes it (the single
    rounding of ``TFLITE_SINGLE_ROUNDING``, measured bit-exact against LiteRT 2.x's
    reference and XNNPACK kernels): ``(x * multiplier + 2**(30 - shift)) >> (31 - shift)``
    in int64, an arithmetic (floor) shift: halves round up."""
    total = 31 - np.asarray(shift, dtype=np.int64)
    product = np.asarray(x, dtype=np.int64) * np.asarray(multiplier, dtype=np.int64)
    return (product + (np.int64(1) << (total - 1))) >> total


def _wrap32_array(x: np.ndarray) -> np.ndarray:
    return ((np.asarray(x, dtype=np.int64) + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def multiply_by_quantized_multiplier_double(x: np.ndarray, multiplier, shift) -> np.ndarray:
    """TensorFlow Lite Micro's (and CMSIS-NN's default) MultiplyByQuantizedMultiplier, double
    rounding: ``x << max(shift, 0)`` (wrapping in int32, as those kernels' multiply does on a
    core), SaturatingRoundingDoublingHighMul by ``multiplier`` (>= 0, so never saturating:
    ``floor((p + 2**30) / 2**31)``, halves up), then RoundingDivideByPOT by ``max(-shift, 0)``."""
    shift = np.asarray(shift, dtype=np.int64)
    scaled = _wrap32_array(np.asarray(x, dtype=np.int64) << np.maximum(shift, 0))
    high = (scaled * np.asarray(multiplier, dtype=np.int64) + (np.int64(1) << 30)) >> 31
    return rounding_divide_by_pot(high, np.maximum(-shift, 0))


REQUANTIZE = {"single": multiply_by_quantized_multiplier, "double": multiply_by_quantized_multiplier_double}


def _run_layer(layer: QLayer, q: np.ndarray, rounding: str = "single") -> np.ndarray:
    """One layer on a batch of int8 codes (rows)."""
    requantize = REQUANTIZE[rounding]
    if isinstance(layer, QDense):
        acc = (q.astype(np.int64) - layer.input.zero_point) @ layer.weights.astype(np.int64).T + layer.bias
        out = requantize(acc, layer.multipliers, layer.shifts) + layer.output.zero_point
        return np.clip(out, layer.low, layer.high).astype(np.int8)
    if isinstance(layer, QTable):
        return layer.table[q.astype(np.int64) + 128]
    if isinstance(layer, QRelu):
        out = requantize(q.astype(np.int64) - layer.input.zero_point, layer.multiplier,
                         layer.shift) + layer.output.zero_point
        return np.clip(out, layer.low, layer.high).astype(np.int8)
    return np.array([softmax_row(layer, row) for row in q.astype(np.int64)], dtype=np.int8).reshape(q.shape)


def run_int8(plan: Int8Plan, codes: np.ndarray) -> np.ndarray:
    """What the int8 C computes, in NumPy: int8 codes in (one row or a batch), int8 codes out."""
    q = np.atleast_2d(np.asarray(codes, dtype=np.int8))
    for layer in plan.layers:
        q = _run_layer(layer, q, plan.rounding)
    return q[0] if np.ndim(codes) == 1 else q


# ------------------------------------------------ gemmlowp fixed point, one value at a time


def _srdhm(a: int, b: int) -> int:
    if a == b == -(1 << 31):
        return (1 << 31) - 1
    total = a * b + ((1 << 30) if a * b >= 0 else 1 - (1 << 30))
    return (total >> 31) if total >= 0 else -((-total) >> 31)  # C's division: toward zero


def _rdbp(x: int, exponent: int) -> int:
    mask = (1 << exponent) - 1
    return (x >> exponent) + ((x & mask) > (mask >> 1) + (x < 0))


def _sat_shift_left(x: int, exponent: int) -> int:
    threshold = (1 << (31 - exponent)) - 1
    return (1 << 31) - 1 if x > threshold else -(1 << 31) if x < -threshold else x << exponent


def _wrap32(x: int) -> int:
    return ((x + (1 << 31)) % (1 << 32)) - (1 << 31)


def exp_on_negative_values(a: int) -> int:
    """gemmlowp's exp for a Q5.26 value <= 0, Q0.31 out."""
    quarter = 1 << 24
    reduced = (a & (quarter - 1)) - quarter
    x = _wrap32((reduced << 5) + (1 << 28))
    x2 = _srdhm(x, x)
    x3 = _srdhm(x2, x)
    x4 = _srdhm(x2, x2)
    poly = _rdbp(_wrap32(_srdhm(_wrap32(_rdbp(x4, 2) + x3), 715827883) + x2), 1)
    result = _wrap32(1895147668 + _srdhm(1895147668, _wrap32(x + poly)))
    remainder = _wrap32(reduced - a)
    for bit, factor in enumerate((1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242)):
        if remainder & (1 << (24 + bit)):
            result = _srdhm(result, factor)
    return (1 << 31) - 1 if a == 0 else result


def one_over_one_plus_x(a: int) -> int:
    """gemmlowp's 1 / (1 + x) for x in [0, 1) in Q0.31, by three Newton-Raphson steps in Q2.29."""
    half = (a + (1 << 31) - 1 + 1) >> 1  # RoundingHalfSum(a, 1.0): a >= 0, so (sum + 1) / 2
    x = _wrap32(1515870810 + _srdhm(half, -1010580540))
    for _ in range(3):
        x = _wrap32(x + _sat_shift_left(_srdhm(x, _wrap32((1 << 29) - _srdhm(half, x))), 2))
    return _sat_shift_left(x, 1)


def softmax_row(layer: QSoftmax, row: np.ndarray) -> np.ndarray:
    """LiteRT's reference int8 softmax of one row of codes."""
    codes = [int(v) for v in row]
    top = max(codes)
    exps = []
    for code in codes:
        diff = code - top
        if diff < layer.diff_min:
            exps.append(None)
            continue
        if layer.rounding == "single":
            scaled = (diff * layer.multiplier + (1 << (30 - layer.shift))) >> (31 - layer.shift)
        else:  # MultiplyByQuantizedMultiplierGreaterThanOne: |diff| << shift stays in int32 above diff_min
            scaled = (diff * (1 << layer.shift) * layer.multiplier + (1 << 30)) >> 31
        exps.append(exp_on_negative_values(scaled))
    total = sum(_rdbp(e, ACCUMULATION_BITS) for e in exps if e is not None)
    headroom = 32 - total.bit_length()
    over = ACCUMULATION_BITS - headroom
    scale = one_over_one_plus_x(_wrap32((total << headroom) - (1 << 31)))
    out = [-128 if e is None else max(-128, min(127, _rdbp(_srdhm(scale, e), over + 31 - 8) - 128)) for e in exps]
    return np.array(out, dtype=np.int64)
