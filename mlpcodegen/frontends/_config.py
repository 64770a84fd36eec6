"""Typed access to an untrusted Keras config: every value the frontend uses is checked
for its type where it is read, and every entry it does not understand is refused by
name unless it cannot change what the layer computes at inference.

A config comes from JSON in a model file, so any value can be any JSON type.  The
readers in keras.py go through ``get`` instead of ``dict.get``; ``check_entries``
refuses config entries the frontend does not know.
"""
from __future__ import annotations

import math
import numbers
import re
from typing import Any

from ..core.errors import ModelFormatError, UnsupportedError

_MISSING = object()


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


#: kind -> (test, what the message says was expected)
KINDS = {
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "int": (_is_int, "an integer"),
    "number": (_is_number, "a finite number"),
    "str": (lambda v: isinstance(v, str), "a string"),
    "list": (lambda v: isinstance(v, (list, tuple)), "a list"),
    "dict": (lambda v: isinstance(v, dict), "an object"),
    "axis": (lambda v: _is_int(v) or (isinstance(v, (list, tuple)) and all(_is_int(a) for a in v)),
             "an axis (an integer or a list of integers)"),
}


def get(config: dict, key: str, kind: str, default: Any, where: str, nullable: bool = False) -> Any:
    """``config[key]`` checked to be of ``kind`` (``default`` when absent; ``None`` kept
    only when ``nullable``); a ModelFormatError naming ``where`` and the key otherwise."""
    value = config.get(key, _MISSING)
    if value is _MISSING:
        return default
    if value is None and nullable:
        return None
    test, expected = KINDS[kind]
    if not test(value):
        raise ModelFormatError(f"{where}: config entry {key!r} is {describe(value)}; expected {expected}")
    return value


def describe(value: Any) -> str:
    """A short, inert description of an untrusted JSON value for a message."""
    if value is None:
        return "null"
    text = repr(value)
    kind = type(value).__name__
    return f"{kind} {text}" if len(text) <= 40 else f"a {kind} ({text[:37]}...)"


# ------------------------------------------------------------------ known entries

#: Entries of every layer that do not change what it computes at inference.
#: (Keras 2 put the input shape and, as ``input_dtype``, its type on the first layer.)
_COMMON = {"name", "trainable", "dtype", "batch_input_shape", "batch_shape", "input_dim", "input_shape",
           "input_dtype", "batch_size"}
_HARMLESS = re.compile(r".*_(initializer|regularizer|constraint)\Z")

#: Class -> the entries its reader understands (besides the common ones): any other
#: entry that is set is refused, since it may change the computation.
KNOWN: dict[str, set[str]] = {
    "InputLayer": {"sparse", "ragged", "optional", "input_tensor"},
    "Dense": {"units", "activation", "use_bias", "lora_rank", "lora_alpha", "quantization_config"},
    "Activation": {"activation"},
    "ReLU": {"max_value", "negative_slope", "threshold"},
    "LeakyReLU": {"negative_slope", "alpha"},
    "PReLU": {"shared_axes"},
    "ELU": {"alpha"},
    "Softmax": {"axis"},
    "BatchNormalization": {"axis", "epsilon", "center", "scale", "momentum", "synchronized", "fused", "renorm",
                           "renorm_clipping", "renorm_momentum", "virtual_batch_size", "adjustment"},
    "Normalization": {"axis", "mean", "variance", "invert"},
    "Rescaling": {"scale", "offset"},
    "LayerNormalization": {"axis", "epsilon", "center", "scale", "rms_scaling"},
    "RMSNormalization": {"axis", "epsilon"},
    "UnitNormalization": {"axis"},
    "Dropout": {"rate", "p", "noise_shape", "seed"},  # p: Keras 1's name of rate
    "AlphaDropout": {"rate", "noise_shape", "seed"},
    "GaussianNoise": {"stddev", "seed"},
    "GaussianDropout": {"rate", "seed"},
    "SpatialDropout1D": {"rate", "seed", "noise_shape"},
    "ActivityRegularization": {"l1", "l2"},
    "Flatten": {"data_format"},
    "Reshape": {"target_shape"},
}

#: Entries understood only at one value (anything else changes the computation).
FIXED = {
    ("InputLayer", "sparse"): (False, None),
    ("InputLayer", "ragged"): (False, None),
    ("Dense", "quantization_config"): (None,),
    ("BatchNormalization", "renorm"): (False, None),
    ("BatchNormalization", "virtual_batch_size"): (None,),
    ("BatchNormalization", "adjustment"): (None,),
}


def check_entries(class_name: str, config: dict, where: str) -> None:
    """Refuse an entry the reader does not understand, unless it is unset (null)."""
    known = KNOWN.get(class_name, set()) | _COMMON
    for key, value in config.items():
        if not isinstance(key, str) or (key not in known and not _HARMLESS.match(key)):
            if value is None:
                continue
            raise UnsupportedError(
                f"{where} has config entry {key!r} ({describe(value)}), which mlpcodegen does not understand "
                f"and which may change what the layer computes; understood entries: {', '.join(sorted(known))}"
            )
        allowed = FIXED.get((class_name, key))
        if allowed is not None and not any(value is a or (value == a and type(value) is type(a)) for a in allowed):
            raise UnsupportedError(
                f"{where} has {key} = {describe(value)}; only {' or '.join(describe(a) for a in allowed)} "
                f"can be converted{_why(class_name, key)}"
            )
    check_dtype_policy(config.get("dtype"), where)
    check_dtype_policy(config.get("input_dtype"), f"{where} (input_dtype)")


def _why(class_name: str, key: str) -> str:
    if key == "quantization_config":
        return " (a quantised layer stores integer weights and scales; convert the float model before quantising)"
    return ""


#: Float dtype policies: the layer computes in floating point from its float weights.
_FLOAT_POLICIES = {"float16", "float32", "float64", "bfloat16", "mixed_float16", "mixed_bfloat16"}
_POLICY_CLASSES = {"DTypePolicy", "FloatDTypePolicy", "Policy"}


def check_dtype_policy(value: Any, where: str) -> None:
    """A layer's ``dtype``: a float policy (a name or {"class_name": "DTypePolicy", ...});
    quantised policies (int8, int4, float8) are refused."""
    if value is None:
        return
    name = value
    if isinstance(value, dict):
        class_name = value.get("class_name")
        inner = value.get("config")
        if not isinstance(class_name, str) or class_name not in _POLICY_CLASSES or not isinstance(inner, dict):
            raise UnsupportedError(
                f"{where} has dtype policy {class_name!r}: quantised layers (int8, int4, float8) cannot "
                f"be converted; supported policies: {', '.join(sorted(_FLOAT_POLICIES))}"
            )
        name = inner.get("name")
    if not isinstance(name, str) or name not in _FLOAT_POLICIES:
        raise UnsupportedError(
            f"{where} has dtype {describe(name)}; supported: {', '.join(sorted(_FLOAT_POLICIES))}"
        )
