"""The activation registry: every activation's name, parameters and formula.

Formulas are written once, over an abstract algebra ``o`` (:class:`Ops`): ``o.add``,
``o.where``, ``o.exp``...  The expression graph's Builder (:mod:`mlpcodegen.core.graph`) is
the ``Ops`` every target is printed from, and SymPy's ``Ops`` builds objects directly,
so a formula cannot drift between targets.  They
follow Keras' TensorFlow implementations (``keras/src/backend/tensorflow/nn.py``)
operation for operation where that matters numerically (e.g. ``expm1`` in elu,
``relu6(x + 3) / 6`` in hard_sigmoid).  The float64 reference evaluator in
:mod:`mlpcodegen.core.reference` is written independently, as the oracle.

Element-wise formulas take ``(o, z, p)`` where ``p`` maps parameter names to values
for this unit.  Vector activations (softmax, ...) have a ``writer`` that writes the
whole layer as statements over the expression graph (:mod:`mlpcodegen.core.network_graph`).

Special values (NaN, +-inf, huge z) follow Keras' TensorFlow kernels (the table in
``tests/test_special_values.py``).  The formulas rely on this contract, which every
``Ops`` must keep:

* ``max(a, b)`` and ``min(a, b)`` are NaN when either argument is NaN (TensorFlow's
  Maximum/Minimum and ``tf.nn.relu`` propagate NaN; C's ``fmax`` and Python's builtin
  ``max(0.0, nan)`` do not).  In the formulas ``b`` is always a constant.
* ``where(c, a, b)`` is ``b`` whenever ``c`` is false, and a comparison with NaN is
  false: ``hard_shrink``, ``soft_shrink`` and ``threshold`` map NaN to their other
  branch, as Keras' selects do.  Only the chosen branch's value may reach the result
  (an overflow in the other one must not raise).
* ``call("exp", a)`` (and ``expm1``) overflow to ``inf``, never raise; ``div`` follows
  IEEE (x / 0 is +-inf or NaN).
* Arithmetic rounds in the target's dtype: in float32, ``selu(3.4e38)`` is inf and
  ``squareplus(-1e30)`` is inf (``z*z`` overflows), as in Keras; in float64 they are finite.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Protocol

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
GELU_TANH_C = math.sqrt(2.0 / math.pi)


class Ops(Protocol):  # pragma: no cover - a type, not code
    def num(self, value: float) -> Any: ...
    def add(self, a: Any, b: Any) -> Any: ...
    def sub(self, a: Any, b: Any) -> Any: ...
    def mul(self, a: Any, b: Any) -> Any: ...
    def div(self, a: Any, b: Any) -> Any: ...
    def neg(self, a: Any) -> Any: ...
    def gt(self, a: Any, b: Any) -> Any: ...
    def ge(self, a: Any, b: Any) -> Any: ...
    def where(self, cond: Any, a: Any, b: Any) -> Any: ...
    def max(self, a: Any, b: Any) -> Any: ...
    def min(self, a: Any, b: Any) -> Any: ...
    def call(self, function: str, a: Any) -> Any: ...  # abs exp expm1 log log1p tanh erf sqrt sigmoid softplus


@dataclass(frozen=True)
class ActivationSpec:
    """One activation and its facets: what each part of the pipeline needs to know of it."""

    name: str
    defaults: Mapping[str, Optional[float]] = field(default_factory=dict)
    formula: Optional[Callable[[Any, Any, Mapping[str, Any]], Any]] = None  # element-wise
    writer: Optional[Callable[[Any, Any, list], list]] = None  # vector: statements over the layer
    halves: bool = False  # output width is half the input (glu)
    per_unit: tuple[str, ...] = ()  # parameters with one value per unit (prelu alpha)
    onnx: Optional[str] = None  # the ONNX operator that computes it, where one does
    display: Optional[str] = None  # in a formula for reading: "formula", or the symbol it is shown as

    @property
    def vector(self) -> bool:
        """Computed over the whole layer (softmax, the normalisations), not unit by unit."""
        return self.writer is not None


def _relu(o: Any, z: Any, p: Mapping[str, Any]) -> Any:
    """Keras ``ReLU.static_call``: threshold, max_value and negative_slope, in its order."""
    slope, top, threshold = p["negative_slope"], p["max_value"], p["threshold"]
    if slope and top is None and not threshold:
        return o.where(o.gt(z, o.num(0.0)), z, o.mul(o.num(slope), z))
    y = o.where(o.gt(z, o.num(threshold)), z, o.num(0.0)) if threshold else o.max(z, o.num(0.0))
    if top is not None:
        y = o.min(o.max(y, o.num(0.0)), o.num(top))
    if slope:
        y = o.sub(y, o.mul(o.num(slope), o.max(o.sub(o.num(threshold), z), o.num(0.0))))
    return y


def _hard_sigmoid(o: Any, z: Any) -> Any:
    return o.div(o.min(o.max(o.add(z, o.num(3.0)), o.num(0.0)), o.num(6.0)), o.num(6.0))


def _elu(o: Any, z: Any, alpha: float, scale: float = 1.0) -> Any:
    negative = o.call("expm1", z) if alpha == 1.0 else o.mul(o.num(alpha), o.call("expm1", z))
    y = o.where(o.gt(z, o.num(0.0)), z, negative)
    return y if scale == 1.0 else o.mul(o.num(scale), y)


def _gelu(o: Any, z: Any, p: Mapping[str, Any]) -> Any:
    half_z = o.mul(o.num(0.5), z)
    if p["approximate"]:
        cube = o.mul(o.num(0.044715), o.mul(z, o.mul(z, z)))
        inner = o.call("tanh", o.mul(o.num(GELU_TANH_C), o.add(z, cube)))
    else:
        inner = o.call("erf", o.div(z, o.num(math.sqrt(2.0))))
    return o.mul(half_z, o.add(o.num(1.0), inner))


def _where_chain(o: Any, z: Any, low: float, high: float, middle: Any, below: Any, above: Any) -> Any:
    return o.where(o.ge(o.num(low), z), below, o.where(o.ge(z, o.num(high)), above, middle))


_ELEMENTWISE: dict[str, tuple[dict, Callable]] = {
    "linear": ({}, lambda o, z, p: z),
    "relu": ({"negative_slope": 0.0, "max_value": None, "threshold": 0.0}, _relu),
    "relu6": ({}, lambda o, z, p: o.min(o.max(z, o.num(0.0)), o.num(6.0))),
    "leaky_relu": ({"negative_slope": 0.2},
                   lambda o, z, p: o.where(o.gt(z, o.num(0.0)), z, o.mul(o.num(p["negative_slope"]), z))),
    "prelu": ({"alpha": None},  # Keras PReLU: relu(x) - alpha * relu(-x)
              lambda o, z, p: o.sub(o.max(z, o.num(0.0)), o.mul(o.num(p["alpha"]), o.max(o.neg(z), o.num(0.0))))),
    "elu": ({"alpha": 1.0}, lambda o, z, p: _elu(o, z, p["alpha"])),
    "selu": ({}, lambda o, z, p: _elu(o, z, SELU_ALPHA, SELU_SCALE)),
    "celu": ({"alpha": 1.0}, lambda o, z, p: o.add(
        o.max(z, o.num(0.0)), o.mul(o.num(p["alpha"]), o.call("expm1", o.div(o.min(z, o.num(0.0)), o.num(p["alpha"])))))),
    "gelu": ({"approximate": 0.0}, _gelu),
    "silu": ({}, lambda o, z, p: o.mul(z, o.call("sigmoid", z))),
    "hard_sigmoid": ({}, lambda o, z, p: _hard_sigmoid(o, z)),
    "hard_silu": ({}, lambda o, z, p: o.mul(z, _hard_sigmoid(o, z))),
    "sigmoid": ({}, lambda o, z, p: o.call("sigmoid", z)),
    "log_sigmoid": ({}, lambda o, z, p: o.neg(o.call("softplus", o.neg(z)))),
    "tanh": ({}, lambda o, z, p: o.call("tanh", z)),
    "hard_tanh": ({}, lambda o, z, p: o.min(o.max(z, o.num(-1.0)), o.num(1.0))),
    "tanh_shrink": ({}, lambda o, z, p: o.sub(z, o.call("tanh", z))),
    "hard_shrink": ({"threshold": 0.5},
                    lambda o, z, p: o.where(o.gt(o.call("abs", z), o.num(p["threshold"])), z, o.num(0.0))),
    "soft_shrink": ({"threshold": 0.5}, lambda o, z, p: o.where(
        o.gt(z, o.num(p["threshold"])), o.sub(z, o.num(p["threshold"])),
        o.where(o.gt(o.num(-p["threshold"]), z), o.add(z, o.num(p["threshold"])), o.num(0.0)))),
    "softplus": ({}, lambda o, z, p: o.call("softplus", z)),
    "softsign": ({}, lambda o, z, p: o.div(z, o.add(o.num(1.0), o.call("abs", z)))),
    "sparse_plus": ({}, lambda o, z, p: _where_chain(
        o, z, -1.0, 1.0, o.mul(o.num(0.25), o.mul(o.add(z, o.num(1.0)), o.add(z, o.num(1.0)))), o.num(0.0), z)),
    "squareplus": ({"b": 4.0}, lambda o, z, p: o.div(
        o.add(z, o.call("sqrt", o.add(o.mul(z, z), o.num(p["b"])))), o.num(2.0))),
    "mish": ({}, lambda o, z, p: o.mul(z, o.call("tanh", o.call("softplus", z)))),
    "exponential": ({}, lambda o, z, p: o.call("exp", z)),
    "threshold": ({"threshold": None, "default_value": None},
                  lambda o, z, p: o.where(o.gt(z, o.num(p["threshold"])), z, o.num(p["default_value"]))),
    "sparse_sigmoid": ({}, lambda o, z, p: _where_chain(
        o, z, -1.0, 1.0, o.mul(o.num(0.5), o.add(z, o.num(1.0))), o.num(0.0), o.num(1.0))),
}

# -- vector activations: written as statements over the whole layer, with ``w`` the
# statement writer of :mod:`mlpcodegen.core.network_graph` (``w.b`` its graph Builder,
# ``w.let(name, node)``, ``w.lets(prefix, nodes)``, ``w.outputs(nodes)``).

def _exp_shifted(w: Any, z: list[Any]) -> tuple[list[Any], Optional[Any], Any]:
    """``e_j = exp(z_j - max z)`` (or ``exp(z_j)`` when not ``stable``), the max
    subtracted (None) and the sum of the exponentials."""
    b, shift = w.b, None
    if w.stable:  # subtract the max: exp never overflows
        shift = w.let(f"m{w.index}", b.largest(z))
    shifted = [b.sum([b.term(v), b.term(shift, negative=True)]) if shift else v for v in z]
    exps = w.lets("e", [b.call("exp", v) for v in shifted])
    return exps, shift, w.let(f"s{w.index}", b.total(exps))


def _softmax(w: Any, layer: Any, z: list[Any]) -> list[Any]:
    exps, _, total = _exp_shifted(w, w.lets("z", z))
    return w.outputs([w.b.op("quotient", e, total) for e in exps])


def _log_softmax(w: Any, layer: Any, z: list[Any]) -> list[Any]:
    b, z = w.b, w.lets("z", z)
    _, shift, total = _exp_shifted(w, z)
    log = w.let(f"l{w.index}", b.call("log", total))
    tail = ([b.term(shift, negative=True)] if shift else []) + [b.term(log, negative=True)]
    return w.outputs([b.sum([b.term(v)] + tail) for v in z])


def _glu(w: Any, layer: Any, z: list[Any]) -> list[Any]:
    b, z = w.b, w.lets("z", z)
    half = len(z) // 2
    return w.outputs([b.mul(z[j], b.call("sigmoid", z[j + half])) for j in range(half)])


def _sparsemax(w: Any, layer: Any, z: list[Any]) -> list[Any]:
    """tau = max over j of (S_j - 1) / k_j, where k_j counts and S_j sums the z_i >= z_j;
    this is the sorted-prefix threshold of Martins & Astudillo without sorting."""
    b, z = w.b, w.lets("z", z)
    one, zero = b.num(1.0), b.num(0.0)
    taus = []
    for j, zj in enumerate(z):
        count = w.let(f"k{w.index}_{j}", b.total([b.where(b.ge(zi, zj), one, zero) for zi in z]))
        top = w.let(f"c{w.index}_{j}", b.total([b.where(b.ge(zi, zj), zi, zero) for zi in z]))
        taus.append(w.let(f"t{w.index}_{j}", b.div(b.sub(top, one), count)))
    tau = w.let(f"m{w.index}", b.largest(taus))
    return w.outputs([b.max(b.sub(zj, tau), zero) for zj in z])


def _normalise(w: Any, layer: Any, z: list[Any]) -> list[Any]:
    """layer_norm: (z - mean) / sqrt(var + eps); variance_scale: z / sqrt(var + eps);
    rms_norm: z / sqrt(mean(z^2) + eps); unit_norm: z / max(|z|, eps)."""
    name, epsilon = layer.activation.name, float(layer.activation.param("epsilon"))
    b, z = w.b, w.lets("z", z)
    count, spread = b.num(float(len(z))), z
    if name in ("layer_norm", "variance_scale"):
        mean = w.let(f"a{w.index}", b.div(b.total(z), count))
        spread = w.lets("c", [b.sum([b.term(v), b.term(mean, negative=True)]) for v in z])
        z = spread if name == "layer_norm" else z
    squares = w.let(f"q{w.index}", b.total([b.op("square", v) for v in spread]))
    if name == "unit_norm":
        norm = b.max(b.call("sqrt", squares), b.num(epsilon))
    else:
        norm = b.call("sqrt", b.add(b.div(squares, count), b.num(epsilon)))
    norm = w.let(f"r{w.index}", norm)
    return w.outputs([b.div(v, norm) for v in z])


#: Vector activations over the feature axis: parameters as Keras names them, writer.
_VECTOR: dict[str, tuple[dict, Callable]] = {
    "softmax": ({}, _softmax),
    "log_softmax": ({}, _log_softmax),
    "sparsemax": ({}, _sparsemax),
    "glu": ({}, _glu),
    "layer_norm": ({"epsilon": 1e-3}, _normalise),  # (x - mean) / sqrt(var + eps); gamma/beta: an Affine step
    "rms_norm": ({"epsilon": 1e-6}, _normalise),  # x / sqrt(mean(x^2) + eps)
    "variance_scale": ({"epsilon": 1e-3}, _normalise),  # x / sqrt(var + eps): LayerNormalization(rms_scaling=True)
    "unit_norm": ({"epsilon": 1e-12}, _normalise),  # x / max(||x||, eps)
}

#: The single ONNX operator computing the activation as Keras does, for those that have
#: one (elu only with alpha 1: ONNX's Elu takes alpha as an attribute we do not set).
_ONNX = {"linear": "Identity", "relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid", "softmax": "Softmax",
         "elu": "Elu", "softplus": "Softplus", "softsign": "Softsign", "exponential": "Exp"}
#: How a formula for reading shows the activation by name (the "named" LaTeX layout):
#: "formula" writes it out (tanh, max(0, z)), a name is a function symbol (sigma);
#: unlisted activations are shown by their own name.
_DISPLAY = {"linear": "formula", "relu": "formula", "tanh": "formula", "softmax": "formula",
            "log_softmax": "formula", "sigmoid": "sigma"}

REGISTRY: dict[str, ActivationSpec] = {
    **{name: ActivationSpec(name, defaults, formula, per_unit=("alpha",) if name == "prelu" else (),
                            onnx=_ONNX.get(name), display=_DISPLAY.get(name, name))
       for name, (defaults, formula) in _ELEMENTWISE.items()},
    **{name: ActivationSpec(name, defaults, writer=writer, halves=name == "glu", onnx=_ONNX.get(name),
                            display=_DISPLAY.get(name, name))
       for name, (defaults, writer) in _VECTOR.items()},
}

#: Keras spellings that are the same function under another name.
ALIASES = {"swish": "silu", "hard_swish": "hard_silu"}
