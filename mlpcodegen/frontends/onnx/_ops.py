"""One reader per ONNX operator, ``reader(node, chain) -> IR layers``, and the table
:data:`_OPS` keyed by operator type (:data:`_ML_OPS` for ``ai.onnx.ml``).  Beside it the
names of everything the frontend reads (:data:`SUPPORTED_OPS`, :data:`DECOMPOSED_FORMS`),
kept here so that every refusal, a reader's included, lists all of it."""
from __future__ import annotations

import math
from typing import Any, Callable, Optional

import numpy as np

from ...core.activations import REGISTRY, SELU_ALPHA, SELU_SCALE
from ...core.errors import ModelFormatError, UnsupportedError, ValidationError
from ...core.ir import Activate, Activation, Affine, Dense
from ...core.scaling import summarise
from ...core.untrusted import quote_name
from .._clamp import clamp_layers
from ._chain import _Chain, _FLATTEN_FIRST, _attr, _shape, _where
from ._proto import _FLOAT_TYPES


# -- layers


def _chain_input(node: dict, chain: _Chain, index: int = 0) -> None:
    """The node reads the chain's value as input ``index`` (and no other non-constant)."""
    if index >= len(node["inputs"]) or node["inputs"][index] != chain.current:
        raise UnsupportedError(f"{_where(node)}: the network's value must be input #{index}; supported: "
                               f"{_supported()}")


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


def _neg(node: dict, chain: _Chain) -> list:
    """-x: a scale by -1 (exact; torch's Softmin is Softmax(Neg(x)))."""
    _chain_input(node, chain)
    return [Affine(-np.ones(chain.width), np.zeros(chain.width), name=node["name"] or "Neg")]


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
    if chain.opset < 14 and any(node["outputs"][1:]):  # before opset 14 these outputs mean training mode
        raise UnsupportedError(f"{_where(node)}: has the running-statistics outputs that mean training mode before "
                               "opset 14 (it normalises by each batch's statistics); export the model in inference "
                               "mode (model.eval(), torch.onnx.export's training=TrainingMode.EVAL)")
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


def _bound(upper: bool) -> Callable[[dict, _Chain], list]:
    """Min(x, c) / Max(x, c) with one constant number: a clip from above / below (tf2onnx
    writes Keras' ReLU(max_value) as Relu, Min, Max); more operands, or one per feature, refused."""
    def read(node: dict, chain: _Chain) -> list:
        if len(node["inputs"]) != 2:
            raise UnsupportedError(f"{_where(node)}: only {node['op']} of the value and one constant is supported")
        index = _other_input(node, chain)
        bound = _scalar(node, chain, index, "the bound", math.nan)
        if not math.isfinite(bound):
            raise UnsupportedError(f"{_where(node)}: the bound must be one finite number")
        value_first = {**node, "inputs": [chain.current, node["inputs"][index]]}  # Min/Max commute
        return _clip_parts(value_first, chain, -math.inf if upper else bound, bound if upper else math.inf)
    return read


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
    "Gemm": _gemm, "MatMul": _matmul, "Add": _add, "Sub": _sub, "Mul": _mul, "Div": _div, "Neg": _neg,
    "Min": _bound(upper=True), "Max": _bound(upper=False),
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
                       "Neg", "Reciprocal",
                       "Abs", "Shape", "Gather", "Slice"})


#: The multi-node forms exporters write for one step, as the README and messages name them.
DECOMPOSED_FORMS = ("x*Sigmoid(x)", "x*HardSigmoid(x)", "x*(Clip(x+3, 0, 6)*(1/6)) (tf2onnx's Keras hard_silu)",
                    "Relu(x)+Relu(Neg(x))*c (tf2onnx's Keras PReLU)", "x*Tanh(Softplus(x))", "x/(1+Abs(x))", "x-Tanh(x)",
                    "Split(x) -> a*Sigmoid(b) (GLU)",
                    "x-ReduceMean(x) over Sqrt(ReduceMean(Pow(., 2))+eps) (torch's LayerNorm below opset 17)",
                    "x*Reciprocal(Sqrt(ReduceMean(Pow(x,2))+eps)) (the dynamo exporter's RMSNorm before opset 23)",
                    "x*m+(Neg(ReduceMean(x))*m+beta), m=Reciprocal(Sqrt(ReduceMean(d*d)+eps))*gamma (tf2onnx's "
                    "Keras LayerNormalization)",
                    "x*(Erf(x/sqrt(2))+1)*0.5 (torch's exact GELU below opset 20, either exporter)",
                    "x*(Tanh(sqrt(2/pi)*(x+0.044715*x*(x*x)))+1)*0.5 (torch's tanh GELU below opset 20)",
                    "x*(0.5*(Tanh(sqrt(2/pi)*(x+0.044715*Pow(x,3)))+1)) (the dynamo exporter's tanh GELU)",
                    "Where(b*x>t, x, Softplus(b*x)/b) (the dynamo exporter's Softplus, t >= 15)",
                    "Where(Or(x>l, x<-l), x, 0) (torch's Hardshrink)",
                    "Where(x>l, x-l, 0)+Where(x<-l, x+l, 0) (torch's Softshrink)",
                    "skl2onnx's Concat(1-p, p)",
                    "Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), [-1])) (torch's x.view(x.size(0), -1))")


def _supported() -> str:
    return ", ".join(SUPPORTED_OPS) + " (and " + ", ".join(DECOMPOSED_FORMS) + ")"
