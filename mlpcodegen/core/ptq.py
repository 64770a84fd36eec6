"""Post-training int8 quantisation of a float network, as TFLite's converter does it.

``calibrate(net, rows)`` runs the float network on the calibration rows, takes each
tensor's observed range, and builds the :class:`~mlpcodegen.core.quant.Int8Plan` the
converter's full-integer quantisation would: activations per tensor, asymmetric, the range
widened to hold 0 (``scale = (max - min) / 255``, the zero point ``-128 - min / scale``
rounded); weights per output channel, symmetric (``scale = max|w| / 127``); biases int32 of
scale ``input_scale * weight_scale``; LOGISTIC's and SOFTMAX's outputs at 1/256 with zero
point -128 and TANH's at 1/128 with 0 (the scales LiteRT's kernels require).  The result is a
:class:`~mlpcodegen.core.quant.QuantizedNetwork` with float input and output (QUANTIZE first,
DEQUANTIZE last), whose float layers are the network's own.
"""
from __future__ import annotations

import math

import numpy as np

from .errors import UnsupportedError, ValidationError
from .ir import Activate, Dense, Network
from .quant import Int8Plan, QDense, QParams, QRelu, QSoftmax, QTable, QuantizedNetwork
from .reference import activate
from .untrusted import quote_name

#: IR activation -> the clamp TFLite fuses (or runs alone as RELU/RELU6/RELU_N1_TO_1)
CLAMPS = {"linear": "none", "relu": "relu", "relu6": "relu6", "hard_tanh": "relu_n1_to_1"}
#: IR activation -> (int8 op, its fixed output quantisation)
FIXED_OUTPUTS = {"sigmoid": ("logistic", QParams(1.0 / 256, -128)), "tanh": ("tanh", QParams(1.0 / 128, 0)),
                 "softmax": ("softmax", QParams(1.0 / 256, -128))}
SUPPORTED = ", ".join([*CLAMPS, *FIXED_OUTPUTS])


def range_params(values: np.ndarray) -> QParams:
    """Asymmetric int8 quantisation of the observed range of ``values`` (0 always inside):
    the converter's float32 ``(max - min) / 255`` (measured identical on its models)."""
    low = np.float32(min(float(np.min(values)), 0.0))
    high = np.float32(max(float(np.max(values)), 0.0))
    if not high > low or not math.isfinite(float(high - low)):
        return QParams(1.0, 0)
    scale = float((high - low) / np.float32(255.0))  # in float32, as the converter computes it
    zero = -128.0 - float(low) / scale
    return QParams(scale, int(min(127, max(-128, math.floor(zero + 0.5)))))


def _clamp_kind(activation) -> str | None:
    name = activation.name
    if name == "relu":
        params = dict(activation.params)
        if params["negative_slope"] or params["threshold"]:
            return None
        return {None: "relu", 6.0: "relu6"}.get(params["max_value"])
    return CLAMPS.get(name)


def _weights(layer: Dense, inputs: QParams) -> tuple[np.ndarray, tuple[float, ...], np.ndarray]:
    """Per-channel symmetric int8 weights (units, n_in), their scales, the int32 bias."""
    kernel = layer.kernel.T.astype(np.float32).astype(np.float64)
    peaks = np.abs(kernel).max(axis=1)
    scales = tuple(float(np.float32(p / 127.0)) if p > 0 else 1.0 for p in peaks)
    per = np.array(scales)[:, None]
    codes = np.clip(np.sign(kernel) * np.floor(np.abs(kernel) / per + 0.5), -127, 127).astype(np.int8)
    bias = np.zeros(len(scales)) if layer.bias is None else layer.bias.astype(np.float32).astype(np.float64)
    bias_scale = inputs.scale * np.array(scales)
    bias_codes = np.clip(np.sign(bias) * np.floor(np.abs(bias) / bias_scale + 0.5), -2.0 ** 31, 2.0 ** 31 - 1)
    return codes, scales, bias_codes.astype(np.int32)


def _activate32(activation, z: np.ndarray) -> np.ndarray:
    return activate(activation, z.astype(np.float64)).astype(np.float32)


def calibrate(net: Network, rows: np.ndarray) -> QuantizedNetwork:
    """``net`` quantised to int8 from the ranges its tensors take on ``rows`` (calibration data)."""
    x = np.asarray(rows, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != net.n_inputs or len(x) == 0 or not np.isfinite(x).all():
        raise ValidationError(f"calibration rows must be a finite (rows, {net.n_inputs}) array")
    current = range_params(x)
    first = current
    h, layers = x, []
    for layer in net.layers:
        name = layer.name
        if isinstance(layer, Dense):
            # float32 like the converter's calibration run (a range a float64 run would widen by an ULP)
            z = h @ layer.kernel.astype(np.float32) + (0 if layer.bias is None else layer.bias.astype(np.float32))
            codes, scales, bias = _weights(layer, current)
            clamp = _clamp_kind(layer.activation)
            y = _activate32(layer.activation, z)
            if clamp is not None:
                out = range_params(y)
                layers.append(QDense.build(codes, scales, bias, current, out, clamp, name))
                current, h = out, y
                continue
            if layer.activation.name not in FIXED_OUTPUTS:
                raise UnsupportedError(f"layer {quote_name(name)!r}: int8 quantisation of {layer.activation.name}; "
                                       f"supported: {SUPPORTED}")
            out = range_params(z)
            layers.append(QDense.build(codes, scales, bias, current, out, "none", name))
            current, h = out, z
        elif not isinstance(layer, Activate):
            raise UnsupportedError(f"layer {quote_name(name)!r} ({type(layer).__name__}): int8 quantisation reads Dense "
                                   f"layers and activations ({SUPPORTED})")
        y = _activate32(layer.activation, h)
        kind = layer.activation.name
        if kind in FIXED_OUTPUTS:
            op, out = FIXED_OUTPUTS[kind]
            width = h.shape[1]
            layers.append(QSoftmax.build(current, out, 1.0, width, name) if op == "softmax"
                          else QTable.build(op, current, out, width, name))
        elif isinstance(layer, Activate):
            clamp = _clamp_kind(layer.activation)
            if clamp is None or clamp == "none":
                if clamp == "none":
                    h = y
                    continue
                raise UnsupportedError(f"layer {quote_name(name)!r}: int8 quantisation of {kind}; supported: {SUPPORTED}")
            out = range_params(y)
            layers.append(QRelu.build(clamp, current, out, h.shape[1], name))
        else:
            continue
        current, h = layers[-1].output, y
    plan = Int8Plan(tuple(layers), first, current, True, True)
    notes = (*net.notes, f"int8: post-training quantisation on {len(x)} calibration rows (per-channel weights)")
    return QuantizedNetwork(net.n_inputs, net.layers, net.weight_dtype, net.name, notes, int8=plan)
