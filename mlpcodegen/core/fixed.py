"""Fixed-point planning (Q15): formats, quantised weights and a sound error bound.

For cores without an FPU (Cortex-M0/M0+, many RISC-V and 8/16-bit MCUs) a network runs in
integers: every value a layer passes on is an ``int16`` code ``q`` standing for
``q * 2**-f`` (a power-of-two format ``f`` per layer), weights are ``int16`` codes of a
per-layer format, sums are exact in an ``int32`` (or ``int64`` where the worst case of
*any* int16 inputs needs it) accumulator, and one round-to-nearest shift per unit brings a
sum to the next layer's format.  Knows no language: :mod:`mlpcodegen.backends.c_fixed`
prints a :class:`FixedPlan`, :func:`run_fixed` mirrors what it computes bit for bit.

Formats come from the input domain: sound interval bounds of every layer over the domain
cut into sub-boxes (up to 4096; beyond 12 inputs up to 8 of widest spread halved, fewer
when the symbolic bounds would pass 2**22 floats, the others whole: any number of inputs), so
that no value of the domain saturates.  Every shift count stays below its accumulator's
width (no undefined behaviour in the C): where tiny weights on a tiny domain would need
more, the weights take a coarser format.

The stated bound (:attr:`FixedPlan.bound`, one number per output) holds for every input
of the domain against the exact network (the float64 reference, to its rounding): the
input's rounding (1/2 LSB), each weight's and bias's quantisation error (known exactly),
each shift's rounding (1/2 LSB), the tanh table's error (measured exhaustively over every
position the integer code can reach) are propagated through ``|W|`` and each activation's
Lipschitz constant, per unit; through relu and linear layers also as affine forms over
one noise symbol per rounding (signed: errors shared by several units cancel), and each
unit's bound is the smaller of the two (both sound).

Activations: linear, relu (with ``max_value``), relu6 and hard_tanh exactly (clamped in the
accumulator before the shift; a clamp value beyond the accumulator's range is never reached
and that side is dropped); tanh by a 257-entry table over [0, 8] with linear
interpolation, sigmoid(z) = (1 + tanh(z/2)) / 2 from the same table; softmax on the last
layer only: the integer predictor returns the logits (their argmax is the class) and the
float wrapper normalises them.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, Optional, Sequence

import numpy as np

from .errors import UnsupportedError, ValidationError
from .graph_eval import activation_interval, affine_interval
from .ir import Dense, Network
from .untrusted import quote_name

#: Activations the fixed-point predictor computes, and how.
SUPPORTED = ("linear", "relu", "relu6", "hard_tanh", "tanh", "sigmoid", "softmax")
#: Codes of an int16 value.
Q_MAX, Q_MIN = 32767, -32768
#: tanh table: TABLE_STEPS intervals of 2**-TABLE_SHIFT over [0, TABLE_END].
TABLE_SHIFT, TABLE_STEPS = 5, 256
TABLE_END = TABLE_STEPS >> TABLE_SHIFT  # 8
#: The table's argument is |z| in Q(TABLE_POSITION) (15 bits of interpolation weight).
TABLE_POSITION = TABLE_SHIFT + 15
#: An int32 accumulator is used when the worst case of any input codes stays below this
#: (the rounding shift never adds to the sum: no room needed); int64 below 2**62.
INT32_LIMIT, INT64_LIMIT = 2 ** 31, 2 ** 62
#: int32 is kept (weights with fewer bits) while it costs at most this many weight bits.
INT32_BITS_GIVEN = 1
#: Formats (fraction bits) a value may take: beyond them the network's numbers do not fit Q15.
MIN_FRAC, MAX_FRAC = -8, 40
#: Input boxes the domain is cut into for the interval bounds (per input: 4096**(1/n)).
BOXES = 4096
#: More than 12 inputs: this many of them halved (2**8 sub-boxes), while the symbolic
#: bounds stay under WIDE_FLOATS float64s.
WIDE_SPLITS, WIDE_FLOATS = 8, 2 ** 22
#: The affine error forms (sub-boxes x symbols x units float64s) stay under this (128 MB).
AFFINE_FLOATS = 2 ** 24
#: Relative slack for the float64 rounding of the reference and of the interval bounds.
SLACK = 1e-9


@dataclass(frozen=True)
class FixedLayer:
    """One Dense layer in integers.  ``weights`` int16 codes (units, n_in) in Q(weight_frac),
    ``bias`` codes in Q(acc_frac) = Q(weight_frac + in_frac), accumulated in ``acc_bits``;
    ``kind`` is the activation as computed; ``low``/``high`` the clamp of the clamping
    kinds in accumulator codes (None: no clamp on that side); ``out_frac`` the format of
    the int16 outputs; ``error`` the bound of each output's error (its units' values)."""

    name: str
    kind: str
    weights: np.ndarray
    bias: np.ndarray
    weight_frac: int
    in_frac: int
    out_frac: int
    acc_bits: int
    low: Optional[int]
    high: Optional[int]
    error: np.ndarray
    logit_error: float = 0.0  # softmax: the bound on the logits (argmax is certain beyond twice this gap)
    out_bits: int = 16  # 32: a softmax layer's logits (int32 codes: the classes need their precision)

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValidationError(f"fixed layer {self.name!r}: kind {self.kind!r} unknown")
        if self.acc_bits not in (32, 64):
            raise ValidationError(f"fixed layer {self.name!r}: accumulator of {self.acc_bits} bits")
        if self.weights.dtype != np.int16 or self.weights.ndim != 2 or self.bias.shape != (self.units,):
            raise ValidationError(f"fixed layer {self.name!r}: int16 (units, inputs) weights and a bias per unit")
        if self.kind in _TABLE_KINDS:
            # the C shifts |z| (uint32) by frac - 20 or 20 - frac; an int64 sum by frac - 20 first
            frac = self.table_frac
            if not 0 <= frac <= (TABLE_POSITION + 31 if self.acc_bits == 32 else TABLE_POSITION + 63):
                raise ValidationError(f"fixed layer {self.name!r}: table argument in Q{frac}, outside "
                                      f"Q0..Q{TABLE_POSITION + 31} (int32) / Q{TABLE_POSITION + 63} (int64)")
        elif not 0 <= self.shift < self.acc_bits:
            raise ValidationError(f"fixed layer {self.name!r}: shift {self.shift} outside 0..{self.acc_bits - 1} "
                                  f"(int{self.acc_bits} sums)")
        for array in (self.weights, self.bias, self.error):
            array.setflags(write=False)

    @property
    def units(self) -> int:
        return int(self.weights.shape[0])

    @property
    def n_in(self) -> int:
        return int(self.weights.shape[1])

    @property
    def acc_frac(self) -> int:
        return self.weight_frac + self.in_frac

    @property
    def table_frac(self) -> int:
        """The format of the table's argument (tanh, sigmoid): the sum's, one bit more for
        sigmoid (its argument z / 2 is the same code)."""
        return self.acc_frac + (self.kind == "sigmoid")

    @property
    def codes(self) -> tuple[int, int]:
        """The range of the output codes whatever the inputs (bounds the next layer's sums)."""
        if self.kind == "tanh":
            return -Q_MAX, Q_MAX
        if self.kind == "sigmoid":
            return 0, Q_MAX
        ends = [Q_MIN if self.low is None else self.low, Q_MAX if self.high is None else self.high]
        shifted = [end if end in (Q_MIN, Q_MAX) and getattr(self, side) is None
                   else int(np.clip(_shift(np.int64(end), self.shift), Q_MIN, Q_MAX))
                   for end, side in zip(ends, ("low", "high"))]
        return shifted[0], shifted[1]

    @property
    def shift(self) -> int:
        """Right shift from the accumulator to the output format (clamping kinds)."""
        return self.acc_frac - self.out_frac


@dataclass(frozen=True)
class FixedPlan:
    """A network in Q15: the input format, the layers, and the stated error bound of
    each output (``bound``) on the input ``domain``.  ``softmax``: the last layer's
    outputs are logits, normalised by the float wrapper."""

    n_inputs: int
    in_frac: int
    layers: tuple[FixedLayer, ...]
    bound: np.ndarray
    domain: tuple[np.ndarray, np.ndarray]
    softmax: bool

    def __post_init__(self) -> None:
        if not self.layers:
            raise ValidationError("a fixed-point plan needs a layer")
        for array in (self.bound, *self.domain):
            array.setflags(write=False)

    @property
    def n_outputs(self) -> int:
        return self.layers[-1].units

    @property
    def out_frac(self) -> int:
        return self.layers[-1].out_frac

    @property
    def width(self) -> int:
        """The widest vector passed between layers (the buffers' size)."""
        return max([self.n_inputs] + [layer.units for layer in self.layers])

    @property
    def tanh_error(self) -> float:
        """The tanh table's error bound (:data:`TANH_ERROR`) when a layer uses it, else 0."""
        return TANH_ERROR if any(layer.kind in _TABLE_KINDS for layer in self.layers) else 0.0


_KINDS = ("linear", "relu", "clamp", "tanh", "sigmoid")
_TABLE_KINDS = ("tanh", "sigmoid")


# ------------------------------------------------------------------- the tanh table


@lru_cache(maxsize=1)
def tanh_table() -> np.ndarray:
    """round(tanh(k / 32) * 2**15) for k = 0..256, at most 32767 (int16)."""
    values = np.round(np.tanh(np.arange(TABLE_STEPS + 1) / 2.0 ** TABLE_SHIFT) * 32768.0)
    table = np.minimum(values, Q_MAX).astype(np.int16)
    table.setflags(write=False)
    return table


def table_tanh(position: np.ndarray) -> np.ndarray:
    """The table's value (Q15, int64) at ``position`` = |z| in Q20, 0 <= position < 8 * 2**20,
    exactly as the C computes it (interpolation weight 15 bits, rounded)."""
    table = tanh_table().astype(np.int64)
    index, weight = position >> 15, position & 0x7FFF
    return table[index] + (((table[index + 1] - table[index]) * weight + 0x4000) >> 15)


#: :func:`measure_tanh_error` (4 s: measured once, kept here; tests/test_fixed.py and
#: bench/fixed.py measure it again).
TANH_ERROR = 0.00011699721977043165


def measure_tanh_error(positions: Optional[np.ndarray] = None) -> float:
    """A bound of |table tanh - tanh| for every real argument: measured at every position
    the code can reach (all 2**23 of Q20 below 8; or at ``positions``), plus 2**-20 for the
    truncation of an argument to Q20 (tanh is 1-Lipschitz), and at least the saturated
    tail's 2**-15."""
    measured = 0.0
    chunks = [positions] if positions is not None else [
        np.arange(start, start + 2 ** 20, dtype=np.int64) for start in range(0, TABLE_END << TABLE_POSITION, 2 ** 20)]
    for position in chunks:
        measured = max(measured, float(np.max(np.abs(table_tanh(position) / 32768.0 -
                                                     np.tanh(position / 2.0 ** TABLE_POSITION)))))
    tail = max(1.0 - Q_MAX / 32768.0, abs(Q_MAX / 32768.0 - math.tanh(TABLE_END)))
    return float(max(measured, tail) + 2.0 ** -TABLE_POSITION)


# ------------------------------------------------------------------- planning


def check_supported(net: Network) -> None:
    """Every layer a Dense layer with an activation of :data:`SUPPORTED`; softmax last."""
    for position, layer in enumerate(net.layers):
        if not isinstance(layer, Dense):
            raise UnsupportedError(f"layer {position} ({layer.name!r}) is a {type(layer).__name__} step: the q15 "
                                   "predictor computes Dense layers only (load the model with fold=True, without "
                                   "a polynomial)")
        name = layer.activation.name
        if name not in SUPPORTED:
            raise UnsupportedError(f"layer {layer.name!r}: activation {name!r} has no fixed-point form; q15 "
                                   f"supports {', '.join(SUPPORTED)} (use --dtype float32 for this network)")
        if name == "relu" and (layer.activation.param("negative_slope") or layer.activation.param("threshold")):
            raise UnsupportedError(f"layer {layer.name!r}: relu with a negative_slope or threshold has no "
                                   f"fixed-point form; q15 supports {', '.join(SUPPORTED)}")
        if name == "softmax" and position != len(net.layers) - 1:
            raise UnsupportedError(f"layer {layer.name!r}: softmax is supported on the last layer only in q15")


def as_domain(n_inputs: int, domain: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) per input from ``domain`` (a pair whose sides are each a number or one
    per input), finite with low <= high, rounded outward to float32.  Required: formats
    planned for a range the inputs do not keep to saturate them, so none is assumed."""
    if domain is None:
        raise ValidationError("fixed point plans its formats for the inputs' range and saturates outside it: "
                              "give the domain, domain=(low, high) (each a number or one per input; the "
                              "command line's --domain LOW HIGH)")
    try:
        lo, hi = (np.broadcast_to(np.asarray(side, dtype=np.float64).reshape(-1), (n_inputs,)).copy()
                  for side in domain)
    except (TypeError, ValueError):
        raise ValidationError(f"the q15 domain is a pair (low, high), each a number or {n_inputs} numbers, "
                              f"got {domain!r}") from None
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)) and np.all(lo <= hi)):
        raise ValidationError("the q15 domain must be finite with low <= high for every input")
    return _float32_outward(lo, -np.inf), _float32_outward(hi, np.inf)


def _float32_outward(side: np.ndarray, direction: float) -> np.ndarray:
    """``side`` rounded outward to float32 (the wrapper takes float32: a float32 input
    rounded from a value of the domain stays within the widened one)."""
    with np.errstate(over="ignore"):
        single = side.astype(np.float32)
        inward = single > side if direction < 0 else single < side
        single = np.where(inward, np.nextafter(single, np.float32(direction)), single)
    return single.astype(np.float64)


def plan(net: Network, domain: Any = None, weight_bits: int = 16) -> FixedPlan:
    """The Q15 plan of ``net`` for inputs in ``domain`` (see :func:`as_domain`).  Errors are
    bounded on each sub-box of the domain (a relu off on a sub-box passes no error there;
    tanh's slope is taken on the sub-box) and the bound is their largest.  ``weight_bits``
    8 measures int8 weights (bench/fixed.py: the q7 question); the C stores int16."""
    if weight_bits not in (8, 16):
        raise ValidationError(f"weight_bits is 8 or 16, not {weight_bits!r}")
    check_supported(net)
    lo, hi = as_domain(net.n_inputs, domain)
    # + 0.0: -0.0 as 0.0 (equal keys of the cache: the plan must not depend on which came first)
    return _plan(net, tuple((lo + 0.0).tolist()), tuple((hi + 0.0).tolist()), weight_bits)


@lru_cache(maxsize=8)
def _plan(net: Network, low: tuple[float, ...], high: tuple[float, ...], weight_bits: int) -> FixedPlan:
    """:func:`plan` on a checked network and a normalised domain, kept: one command plans
    the same network up to five times (source, header, verify), 0.6 s each for a
    16-64-64-10 (the key hashes the network's content; the plan is immutable)."""
    lo, hi = np.array(low, dtype=np.float64), np.array(high, dtype=np.float64)
    spans = layer_bounds(net, lo, hi)
    in_frac = _frac_for(float(np.maximum(np.abs(lo), np.abs(hi)).max()))
    # the wrapper rounds to nearest: 1/2 LSB on every sub-box
    error = np.full((len(spans[0][4][0]), net.n_inputs), 2.0 ** -(in_frac + 1))
    count, n = len(spans[0][4][0]), net.n_inputs  # the form's size checked before it is built
    form = _input_form(spans[0][4], in_frac) if count * (1 + 2 * n) * n <= AFFINE_FLOATS else None
    layers, frac = [], in_frac
    for layer, span in zip(net.layers, spans):
        fixed, error = _plan_layer(layer, frac, span, error, layers[-1].codes if layers else (Q_MIN, Q_MAX),
                                   2 ** (weight_bits - 1) - 1)
        form, tight = _affine_step(form, layer, fixed, span, not layers)
        error = np.minimum(error, tight)
        if form is None and len(error) * (1 + layer.units) * layer.units <= AFFINE_FLOATS:
            # not propagated: one symbol per unit (its interval bound) from here
            form = np.concatenate([np.zeros((len(error), 1, layer.units)),
                                   np.eye(layer.units)[None, :, :] * error[:, None, :]], axis=1)
        if fixed.out_bits == 32:  # softmax: the logits' bound, then the probabilities'
            largest = np.maximum(np.abs(span[0]), np.abs(span[1]))
            fixed = replace(fixed, logit_error=float(error.max()))
            error = np.repeat((error.max(axis=1, keepdims=True) + 2.0 ** -23 * largest.max()) / 2
                              + (layer.units + 8) * 2.0 ** -23, layer.units, axis=1)
        layers.append(replace(fixed, error=error.max(axis=0)))
        frac = fixed.out_frac
    return FixedPlan(net.n_inputs, in_frac, tuple(layers), error.max(axis=0), (lo, hi),
                     net.layers[-1].activation.name == "softmax")


def _frac_for(magnitude: float, top: int = Q_MAX) -> int:
    """The most fraction bits f with magnitude * 2**f <= ``top`` (a value of 0: 15), at
    most :data:`MAX_FRAC` (a coarser format holds a tiny value too)."""
    if magnitude <= 0.0:
        return 15
    if magnitude * 2.0 ** MAX_FRAC <= top:  # tiny (top / magnitude may overflow)
        return MAX_FRAC
    frac = math.floor(math.log2(top / magnitude))
    while magnitude * 2.0 ** frac > top:
        frac -= 1
    while magnitude * 2.0 ** (frac + 1) <= top:
        frac += 1
    if frac < MIN_FRAC:
        raise UnsupportedError(f"a value of magnitude {magnitude:g} needs format Q{frac}, outside "
                               f"Q{MIN_FRAC}..Q{MAX_FRAC}: the network's numbers do not fit 16-bit fixed point")
    return min(frac, MAX_FRAC)


def _quantise(values: np.ndarray, frac: int) -> np.ndarray:
    scaled = np.round(np.asarray(values, dtype=np.float64) * 2.0 ** frac)
    if scaled.size and np.abs(scaled).max() >= INT64_LIMIT:
        raise UnsupportedError(f"a weight or bias needs more than 62 bits at Q{frac}: the network's numbers do "
                               "not fit 16-bit fixed point with 64-bit sums")
    return scaled.astype(np.int64)


def _weights(layer: Dense, in_frac: int, codes_in: tuple[int, int], top: int = Q_MAX,
             cap: Optional[int] = None) -> tuple[int, int, np.ndarray, np.ndarray]:
    """(weight format, accumulator bits, int weights (units, n_in), int bias): the finest
    int16 format (at most Q``cap``: the shifts must stay below the accumulator's bits),
    with int32 sums when the worst case of any input codes in ``codes_in`` (what the
    previous layer can output, whatever the inputs) fits for at most
    :data:`INT32_BITS_GIVEN` fewer weight bits, else int64."""
    kernel = layer.kernel.T
    bias = np.zeros(layer.units) if layer.bias is None else layer.bias
    finest = _frac_for(float(np.abs(kernel).max()), top)
    largest_bias = float(np.abs(bias).max(initial=0.0))
    if largest_bias > 0.0:  # a large bias with tiny weights and inputs: coarser weights keep it in int64
        finest = min(finest, math.floor(math.log2(2.0 ** 61 / largest_bias)) - in_frac)
    finest = finest if cap is None else min(finest, cap)
    for frac in range(finest, finest - INT32_BITS_GIVEN - 1, -1):
        weights, codes = _quantise(kernel, frac), _quantise(bias, frac + in_frac)
        if _worst(weights, codes, codes_in) < INT32_LIMIT:
            return frac, 32, weights, codes
    weights, codes = _quantise(kernel, finest), _quantise(bias, finest + in_frac)
    if _worst(weights, codes, codes_in) >= INT64_LIMIT:
        raise UnsupportedError(f"layer {layer.name!r}: its sums need more than 64 bits in Q15")
    return finest, 64, weights, codes


def _worst(weights: np.ndarray, bias: np.ndarray, codes_in: tuple[int, int]) -> int:
    """The largest |partial sum| of any unit, in any order, for any input codes within
    ``codes_in``: |b| plus the positive (or the negative) products' sum (exact in int64:
    under 2**30 * 2**32)."""
    low, high = (weights * codes_in[0]).astype(np.int64), (weights * codes_in[1]).astype(np.int64)
    up = np.maximum(0, np.maximum(low, high)).sum(axis=1)
    down = np.maximum(0, -np.minimum(low, high)).sum(axis=1)
    return int(np.max(np.maximum(up, down) + np.abs(bias)))


def _plan_layer(layer: Dense, in_frac: int, span: tuple, error: np.ndarray,
                codes_in: tuple[int, int], weight_top: int = Q_MAX) -> tuple[FixedLayer, np.ndarray]:
    """One layer: its codes and formats, and the error bound of its outputs on each
    sub-box, given the layer's bounds ``span`` (per sub-box: z_lo, z_hi, h_lo, h_hi and
    the inputs' boxes), the inputs' ``error`` bound per sub-box and the codes they can
    take (``codes_in``).  Tiny weights on a tiny domain make a fine accumulator format:
    when a shift would reach the accumulator's width (undefined in C), the weights take a
    coarser format (their rounding is counted) until every shift fits."""
    cap = None
    for _ in range(8):
        args, out = _layer_args(layer, in_frac, span, error, codes_in, weight_top, cap)
        excess = _excess(args)
        if excess <= 0:
            return _layer(layer, *args), out
        cap = args[3] - excess
    raise UnsupportedError(f"layer {layer.name!r}: no weight format keeps its shifts within the accumulator")


def _excess(args: tuple) -> int:
    """By how many bits the layer's largest shift (``_layer_args``' arguments) passes the
    limit :meth:`FixedLayer.__post_init__` checks; <= 0: every shift fits."""
    kind, acc_frac, out_frac, bits = args[0], args[3] + args[4], args[5], args[6]
    if kind in _TABLE_KINDS:
        return acc_frac + (kind == "sigmoid") - TABLE_POSITION - (bits - 1)
    return acc_frac - out_frac - (bits - 1)


def _layer_args(layer: Dense, in_frac: int, span: tuple, error: np.ndarray, codes_in: tuple[int, int],
                weight_top: int, cap: Optional[int]) -> tuple[tuple, np.ndarray]:
    """_layer's arguments (after ``layer``) and the outputs' error per sub-box, with weight
    formats at most Q``cap``."""
    z_lo, z_hi, h_lo, h_hi, boxes = span
    weight_frac, bits, weights, bias = _weights(layer, in_frac, codes_in, weight_top, cap)
    acc_frac = weight_frac + in_frac
    dz = _sum_error(layer, weights * 2.0 ** -weight_frac, bias * 2.0 ** -acc_frac, boxes, error)
    kind, low, high, clamp_error = _clamp(layer, acc_frac, bits)
    if kind in _TABLE_KINDS and acc_frac < 0:
        raise UnsupportedError(f"layer {layer.name!r}: its sums are too large for the q15 tanh table (Q{acc_frac})")
    if kind in _TABLE_KINDS:
        out = _table_error(kind, z_lo - dz, z_hi + dz, dz, acc_frac, bits)
        return (kind, weights, bias, weight_frac, in_frac, 15, bits, None, None, out), out
    softmax = layer.activation.name == "softmax"  # the predictor returns the logits
    largest = np.maximum(np.abs(z_lo), np.abs(z_hi)) if softmax else np.maximum(np.abs(h_lo), np.abs(h_hi))
    exact = dz + clamp_error
    top = 2 ** 31 - 1 if softmax else Q_MAX  # logits: int32 codes
    out_frac = min(acc_frac, _frac_for(float(np.max(largest.max(axis=0) + exact.max(axis=0))), top))
    rounding = 2.0 ** -(out_frac + 1) if out_frac < acc_frac else 0.0
    off = (z_hi + dz < 0) if low == 0 else np.zeros(z_hi.shape, dtype=bool)  # relu off: exactly 0 both ways
    out = np.where(off, 0.0, exact + rounding)
    # softmax: ``out`` bounds the logits; plan() turns it into the probabilities' bound:
    # |d softmax_i| <= max_j |d z_j| / 2 (the Jacobian's rows sum to <= 1/2), plus the
    # wrapper's float32 logits (2^-24 relative) and normalisation
    return (kind, weights, bias, weight_frac, in_frac, out_frac, bits, low, high, out, 0.0,
            32 if softmax else 16), out


def _input_form(boxes: tuple[np.ndarray, np.ndarray], in_frac: int) -> np.ndarray:
    """The inputs' error as an affine form per sub-box (boxes, symbols, n): symbol 0 is the
    constant 1, then one per input's rounding (1/2 LSB), then one per input's position in
    its sub-box (x = center + radius * xi: the first layer's weight rounding is exact in them)."""
    count, n = boxes[0].shape
    form = np.zeros((count, 1 + 2 * n, n))
    form[:, 1:1 + n, :] = np.eye(n) * 2.0 ** -(in_frac + 1)
    return form


def _small(form: np.ndarray, units: int) -> bool:
    """The next form fits :data:`AFFINE_FLOATS` (else the interval bounds alone)."""
    boxes, symbols, width = form.shape
    return boxes * (symbols + units) * max(width, units) <= AFFINE_FLOATS


def _affine_step(form: np.ndarray, layer: Dense, fixed: FixedLayer, span: tuple,
                 first: bool) -> tuple[np.ndarray, np.ndarray]:
    """The outputs' error as an affine form over noise symbols in [-1, 1] (each rounding, each
    weight's quantisation), and its bound per sub-box and unit: errors shared by several
    units cancel through the signed weights where |W| propagation adds them up.  A relu on
    (off) on the sub-box passes its error (nothing); undecided, it passes s * e with s in
    [0, 1]: e / 2 plus a fresh symbol of |e| / 2.  Other activations: a fresh symbol per unit
    of the interval bound (``_plan_layer``'s: here inf, no tightening; plan() restarts the
    form from it).  ``first``: ``form`` is :func:`_input_form`'s."""
    z_lo, z_hi, _, _, (in_lo, in_hi) = span
    if form is None or fixed.kind not in ("relu", "linear") or not _small(form, fixed.units):
        return None, np.full(z_lo.shape, np.inf)
    kernel_q, bias_q = fixed.weights * 2.0 ** -fixed.weight_frac, fixed.bias * 2.0 ** -fixed.acc_frac
    kernel, bias = layer.kernel.T, (np.zeros(layer.units) if layer.bias is None else layer.bias)
    d_kernel, center, radius = kernel_q - kernel, (in_lo + in_hi) / 2, (in_hi - in_lo) / 2
    z = form @ kernel_q.T
    z[:, 0, :] += center @ d_kernel.T + (bias_q - bias)
    n = in_lo.shape[1]
    fresh = np.zeros(z_lo.shape)
    if first:  # (W' - W)(x - center), exactly, in the position symbols
        z[:, 1 + n:, :] += radius[:, :, None] * d_kernel.T[None, :, :]
    else:
        fresh += radius @ np.abs(d_kernel).T
    magnitude, e_in, spread = np.maximum(np.abs(in_lo), np.abs(in_hi)), np.abs(form).sum(axis=1), np.abs(z).sum(axis=1)
    # float64 rounding, of the reference and of these sums, as _sum_error widens
    fresh = fresh + SLACK * (spread + fresh + (magnitude + e_in) @ np.abs(kernel).T + np.abs(bias)) + 1e-300
    dz = spread + fresh
    rounding = 2.0 ** -(fixed.out_frac + 1) if fixed.shift > 0 else 0.0
    if fixed.kind == "relu":
        on, off = z_lo - dz >= 0, z_hi + dz < 0
        scale = np.where(on, 1.0, np.where(off, 0.0, 0.5))
        z = z * scale[:, None, :]
        fresh = np.where(on, fresh + rounding, np.where(off, 0.0, (fresh + dz) / 2 + rounding))
    else:
        fresh = fresh + rounding
    width = fixed.units
    out = np.concatenate([z, np.eye(width)[None, :, :] * fresh[:, None, :]], axis=1)
    return out, np.abs(out).sum(axis=1)


def _table_error(kind: str, low: np.ndarray, high: np.ndarray, dz: np.ndarray, acc_frac: int,
                 bits: int) -> np.ndarray:
    """Error of the table's tanh (or sigmoid = (1 + tanh(z/2)) / 2, its halving truncated:
    1/2 LSB of Q15) on each sub-box: the table's own error plus the sum's error times the
    function's largest slope between ``low`` and ``high``."""
    half = 0.5 if kind == "sigmoid" else 1.0
    nearest = np.where((low <= 0) & (high >= 0), 0.0, np.minimum(np.abs(low), np.abs(high))) * half
    slope = 1.0 - np.tanh(nearest) ** 2
    frac = acc_frac + (kind == "sigmoid")
    narrowing = 2.0 ** -(TABLE_POSITION + 1) if bits == 64 and frac > TABLE_POSITION else 0.0
    table = TANH_ERROR + narrowing + slope * dz * half
    return table * half + (2.0 ** -16 if kind == "sigmoid" else 0.0)


def _sum_error(layer: Dense, kernel_q: np.ndarray, bias_q: np.ndarray, boxes: tuple[np.ndarray, np.ndarray],
               error: np.ndarray) -> np.ndarray:
    """Bound of |W'h' + b' - (Wh + b)| per sub-box and unit, h' = h + d with |d| <= ``error``:
    (W' - W)h + (b' - b) bounded on each sub-box of h (signed: the weights' rounding errors
    partly cancel), plus |W'| |d|; widened for float64 rounding."""
    kernel = layer.kernel.T
    true_bias = np.zeros(layer.units) if layer.bias is None else layer.bias
    d_kernel, d_bias = kernel_q - kernel, bias_q - true_bias
    center, radius = (boxes[0] + boxes[1]) / 2, (boxes[1] - boxes[0]) / 2
    quantised = np.abs(center @ d_kernel.T + d_bias) + radius @ np.abs(d_kernel).T
    magnitude = np.maximum(np.abs(boxes[0]), np.abs(boxes[1]))
    dz = quantised + error @ np.abs(kernel_q).T
    return dz * (1 + SLACK) + SLACK * ((magnitude + error) @ np.abs(kernel).T + np.abs(true_bias))


def _layer(layer: Dense, kind: str, weights: np.ndarray, bias: np.ndarray, weight_frac: int, in_frac: int,
           out_frac: int, bits: int, low: Optional[int], high: Optional[int], error: np.ndarray,
           logit_error: float = 0.0, out_bits: int = 16) -> FixedLayer:
    return FixedLayer(layer.name, kind, weights.astype(np.int16), bias, weight_frac, in_frac, out_frac, bits, low,
                      high, np.asarray(error, dtype=np.float64).max(axis=0), logit_error, out_bits)


def _clamp(layer: Dense, acc_frac: int, bits: int) -> tuple[str, Optional[int], Optional[int], float]:
    """(kind, low, high, error of the clamp bounds in accumulator codes): relu, relu6,
    hard_tanh and relu(max_value) clamp the sum before the shift (exact when the bound is
    a multiple of the accumulator's LSB: its rounding is counted otherwise).  A side beyond
    the accumulator's range (a fine format: 6 * 2**acc_frac >= 2**31) is dropped: no sum
    reaches it, so the activation is exact there."""
    name = layer.activation.name
    if name in ("tanh", "sigmoid", "linear"):
        return name, None, None, 0.0
    if name == "softmax":
        return "linear", None, None, 0.0
    bounds = {"relu": (0.0, layer.activation.param("max_value") if name == "relu" else None),
              "relu6": (0.0, 6.0), "hard_tanh": (-1.0, 1.0)}[name]
    # a side beyond what the accumulator can hold is never reached: dropped (exact)
    limit = 2 ** (bits - 1) - 1
    scaled = [None if b is None else b * 2.0 ** acc_frac for b in bounds]
    codes = [None if v is None or abs(v) > limit else int(round(v)) for v in scaled]
    error = max([abs(c * 2.0 ** -acc_frac - b) for c, b in zip(codes, bounds) if c is not None], default=0.0)
    kind = "relu" if name == "relu" and bounds[1] is None else "clamp"
    return kind, codes[0], codes[1], error


# ------------------------------------------------------------------- interval bounds


def layer_bounds(net: Network, lo: np.ndarray, hi: np.ndarray) -> list[tuple]:
    """(z_lo, z_hi, h_lo, h_hi, (input lows, input highs)) of every layer on each of up to
    :data:`BOXES` sub-boxes of [lo, hi] (rows): the intersection of the graph's interval
    bounds (:func:`~mlpcodegen.core.graph_eval.affine_interval` and
    :func:`~mlpcodegen.core.graph_eval.activation_interval`, the one interval engine) and
    symbolic intervals (linear lower and upper functions of the inputs through each layer,
    relu relaxed by its triangle: :func:`_symbolic`), all widened outward for float64 rounding."""
    box_lo, box_hi = _boxes(net, lo, hi)
    x_center, x_radius = (box_lo + box_hi) / 2, (box_hi - box_lo) / 2
    eye = np.concatenate([np.eye(net.n_inputs), np.zeros((1, net.n_inputs))])  # x_i as linear functions
    lower = upper = np.broadcast_to(eye, (len(box_lo),) + eye.shape)
    out = []
    for layer in net.layers:
        kernel = layer.kernel
        bias = np.zeros(layer.units) if layer.bias is None else layer.bias
        z = affine_interval(box_lo, box_hi, kernel, bias)
        z_lower, z_upper, s_lo, s_hi = _symbolic(lower, upper, kernel, bias, x_center, x_radius)
        # the symbolic ends are float64 sums too: moved out by SLACK of what they add
        slack = SLACK * (np.maximum(np.abs(box_lo), np.abs(box_hi)) @ np.abs(kernel) + np.abs(bias)) + 1e-300
        z_lo, z_hi = np.maximum(z.lo, s_lo - slack), np.minimum(z.hi, s_hi + slack)
        inputs = (box_lo, box_hi)
        h = activation_interval(layer, z_lo, z_hi)
        box_lo, box_hi = h.lo, h.hi
        lower, upper = _relax(layer, z_lower, z_upper, z_lo, z_hi, box_lo, box_hi)
        out.append((z_lo, z_hi, box_lo, box_hi, inputs))
    return out


def _boxes(net: Network, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sub-boxes (lows, highs): up to 12 inputs, each cut in BOXES**(1/n) pieces; more
    inputs: the :data:`WIDE_SPLITS` inputs of the widest first-layer spread (domain width
    times the sum of |weights|) halved (fewer when the symbolic bounds, boxes x inputs x
    units floats, would exceed :data:`WIDE_FLOATS`), the others whole: a 16-input network's
    hidden bounds tighten by a quarter (a finer format for its second layer)."""
    n = net.n_inputs
    if n <= 12:
        pieces = [max(1, int(round(BOXES ** (1.0 / n) + 1e-9)))] * n
    else:
        widest = max(layer.units for layer in net.layers)
        room = int(math.floor(math.log2(max(1.0, WIDE_FLOATS / ((n + 1) * widest)))))
        spread = (hi - lo) * np.abs(net.layers[0].kernel).sum(axis=1)
        chosen = set(np.argsort(-spread, kind="stable")[:max(0, min(WIDE_SPLITS, room))].tolist())
        pieces = [2 if i in chosen else 1 for i in range(n)]
    edges = [np.linspace(a, b, p + 1) for a, b, p in zip(lo, hi, pieces)]
    # the index over the split inputs only (np.meshgrid over all would stop at 32 inputs)
    split = [i for i in range(n) if pieces[i] > 1]
    combos = np.array(list(itertools.product(*[range(pieces[i]) for i in split])), dtype=np.int64)
    index = np.zeros((len(combos), n), dtype=np.int64)
    index[:, split] = combos.reshape(len(combos), len(split))
    return (np.stack([edges[i][index[:, i]] for i in range(n)], axis=1),
            np.stack([edges[i][index[:, i] + 1] for i in range(n)], axis=1))


def _concrete(function: np.ndarray, center: np.ndarray, radius: np.ndarray, sign: float) -> np.ndarray:
    """Max (``sign`` 1) or min (-1) over each box of linear functions (boxes, n_in + 1, units)."""
    value = np.einsum("bi,biu->bu", center, function[:, :-1]) + function[:, -1]
    return value + sign * np.einsum("bi,biu->bu", radius, np.abs(function[:, :-1]))


def _symbolic(lower, upper, kernel, bias, center, radius):
    """The sums' lower and upper linear functions of the inputs from the layer inputs' ones,
    and their bounds on each box."""
    positive, negative = np.maximum(kernel, 0.0), np.minimum(kernel, 0.0)
    z_lower = lower @ positive + upper @ negative
    z_upper = upper @ positive + lower @ negative
    z_lower[:, -1] += bias
    z_upper[:, -1] += bias
    return z_lower, z_upper, _concrete(z_lower, center, radius, -1.0), _concrete(z_upper, center, radius, 1.0)


def _relax(layer: Dense, z_lower, z_upper, z_lo, z_hi, h_lo, h_hi):
    """Linear bounds of the activation's outputs: for relu (without max_value) 0 where off,
    the sums' own where on, and between, the triangle relaxation: above by the chord
    u (z - l) / (u - l), below by z or 0 (the smaller area); for the other activations the
    constant bounds."""
    if layer.activation.name != "relu" or layer.activation.param("max_value") is not None:
        lower = np.zeros(z_lower.shape)
        upper = np.zeros(z_upper.shape)
        lower[:, -1], upper[:, -1] = h_lo, h_hi
        return lower, upper
    on, off = z_lo >= 0, z_hi <= 0
    between = ~on & ~off
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(between, z_hi / (z_hi - z_lo), 0.0)
    upper = z_upper * np.where(on, 1.0, slope)[:, None, :]
    upper[:, -1] -= np.where(between, slope * z_lo, 0.0)
    keep = on | (between & (z_hi > -z_lo))
    lower = z_lower * keep[:, None, :]
    return lower, upper


# ------------------------------------------------------------------- the integer mirror


def quantise_inputs(plan: FixedPlan, x: np.ndarray) -> np.ndarray:
    """What the float wrapper does: x * 2**in_frac in float32 (exact), rounded half away
    from zero, saturated to int16 (NaN: -32768)."""
    v = np.asarray(x, dtype=np.float32) * np.float32(2.0 ** plan.in_frac)
    with np.errstate(invalid="ignore"):
        rounded = np.trunc(np.where(v < 0, v - np.float32(0.5), v + np.float32(0.5)))
        q = np.where(v >= Q_MAX, Q_MAX, np.where(v > Q_MIN, rounded, Q_MIN))
    return q.astype(np.int64)


def run_codes(plan: FixedPlan, q: np.ndarray) -> np.ndarray:
    """The integer predictor on int16 input codes (rows): the output codes, as the C."""
    h = np.asarray(q, dtype=np.int64)
    for layer in plan.layers:
        acc = h @ layer.weights.T.astype(np.int64) + layer.bias  # exact: bounded by the plan
        h = _activate_codes(layer, acc)
    return h


def _shift(acc: np.ndarray, s: int) -> np.ndarray:
    """floor((acc + 2**(s-1)) / 2**s) as the C computes it: floor(acc / 2**s) plus the
    bit below (no addition that could overflow)."""
    return acc if s == 0 else (acc >> s) + ((acc >> (s - 1)) & 1)


def _activate_codes(layer: FixedLayer, acc: np.ndarray) -> np.ndarray:
    if layer.kind in _TABLE_KINDS:
        frac = layer.table_frac
        if layer.acc_bits == 64:
            acc, frac = _narrow(acc, frac)
        t = _tanh_codes(acc, frac)
        return t if layer.kind == "tanh" else (32768 + t) >> 1
    if layer.low is not None:
        acc = np.maximum(acc, layer.low)
    if layer.high is not None:
        acc = np.minimum(acc, layer.high)
    limit = 2 ** (layer.out_bits - 1)
    return np.clip(_shift(acc, layer.shift), -limit, limit - 1)


def _narrow(acc: np.ndarray, frac: int) -> tuple[np.ndarray, int]:
    """An int64 sum to int32 for the table: shifted to Q20 when finer, then saturated."""
    if frac > TABLE_POSITION:
        acc, frac = _shift(acc, frac - TABLE_POSITION), TABLE_POSITION
    return np.clip(acc, -(2 ** 31 - 1), 2 ** 31 - 1), frac


def _tanh_codes(z: np.ndarray, frac: int) -> np.ndarray:
    m = np.abs(z)
    big = m >= (TABLE_END << frac) if frac <= 28 else np.zeros(m.shape, dtype=bool)
    position = m >> (frac - TABLE_POSITION) if frac >= TABLE_POSITION else m << (TABLE_POSITION - frac)
    position = np.where(big, 0, position)
    t = np.where(big, Q_MAX, table_tanh(position))
    return np.where(z < 0, -t, t)


def run_fixed(plan: FixedPlan, x: np.ndarray) -> np.ndarray:
    """What ``compile_c(net, dtype="q15")`` returns for float inputs ``x`` (rows), in
    float64: the integer predictor's outputs scaled back (softmax applied, in float64:
    the C's float32 normalisation differs by a few ULP)."""
    codes = run_codes(plan, quantise_inputs(plan, np.atleast_2d(x)))
    y = codes * 2.0 ** -plan.out_frac
    if plan.softmax:
        e = np.exp(y - y.max(axis=1, keepdims=True))
        y = e / e.sum(axis=1, keepdims=True)
    return y


def describe_bound(plan: FixedPlan) -> list[str]:
    """Lines stating the formats and the bound (for generated files and reports): numbers,
    fixed words and quoted layer names only (no newline, no comment end: printed as they are)."""
    formats = ", ".join(f"{quote_name(layer.name)}: weights Q{layer.weight_frac}, int{layer.acc_bits} sums, out "
                        f"Q{layer.out_frac} ({layer.kind})" for layer in plan.layers)
    lines = [f"inputs Q{plan.in_frac} on the domain {_domain_text(plan.domain)}; {formats}",
             f"stated max abs error on the domain (vs the exact network): {float(plan.bound.max()):.3g}"]
    if plan.tanh_error:
        lines.append(f"tanh table (257 entries, [0, 8], interpolated): error at most {plan.tanh_error:.3g} (measured "
                     "at every reachable position)")
    if plan.softmax:
        lines.append(f"softmax: the integer predictor returns the logits as int32 codes (Q{plan.out_frac}, error at "
                     f"most {plan.layers[-1].logit_error:.3g}; their argmax is the class); the float wrapper "
                     "normalises them")
    return lines


def _domain_text(domain: Sequence[np.ndarray]) -> str:
    lo, hi = domain
    if np.all(lo == lo[0]) and np.all(hi == hi[0]):
        return f"[{lo[0]:g}, {hi[0]:g}]" + (" for each input" if len(lo) > 1 else "")
    return ", ".join(f"x{i} in [{a:g}, {b:g}]" for i, (a, b) in enumerate(zip(lo, hi)))
