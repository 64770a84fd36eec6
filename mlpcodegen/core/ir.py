"""The intermediate representation: a feed-forward network as small, frozen,
validated data.  Nothing here knows about Keras or about any output language.

A :class:`Network` is an input width and a chain of layers.  Four layer kinds exist:

* :class:`Dense`    -- ``activation(x @ kernel + bias)``
* :class:`Activate` -- an activation on its own (e.g. a Keras ``Activation`` layer
  after a Dense layer that already has a non-linear activation).
* :class:`Affine`   -- ``x * scale + shift`` per feature (input/output scaling and
  normalisations that cannot be folded into a Dense layer).
* :class:`Polynomial` -- a polynomial of the inputs: an approximation of a network on a
  domain (:mod:`mlpcodegen.core.simplify`), which every target prints as it prints a layer.

Weights are stored as read-only float64 arrays.  Converting float16/bfloat16/float32
weights to float64 is exact, so the arrays hold the trained values bit for bit;
``Network.weight_dtype`` records the precision they were trained in.

>>> import numpy as np
>>> layer = Dense(kernel=np.array([[2.0]]), bias=np.array([1.0]), activation=Activation("tanh"))
>>> Network(n_inputs=1, layers=(layer,)).n_outputs
1
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Union

import numpy as np

from .errors import ValidationError
from .untrusted import quote_name

from .activations import REGISTRY

#: Element-wise activations: y_i depends on z_i only.
ELEMENTWISE_ACTIVATIONS = tuple(name for name, spec in REGISTRY.items() if not spec.vector)
#: Vector activations: y_i depends on the whole pre-activation vector of the layer.
VECTOR_ACTIVATIONS = tuple(name for name, spec in REGISTRY.items() if spec.vector)
ACTIVATIONS = ELEMENTWISE_ACTIVATIONS + VECTOR_ACTIVATIONS

WEIGHT_DTYPES = ("float16", "bfloat16", "float32", "float64")


ParamValue = Union[float, None, tuple]


@dataclass(frozen=True)
class Activation:
    """A named activation function, with parameters for the families that have them.

    ``params`` is a sorted tuple of ``(name, value)`` pairs, every parameter of the
    activation present (defaults filled in), so equal activations compare equal and
    the object stays hashable.  A value is a float, ``None`` where Keras allows it
    (relu's ``max_value``), or a tuple with one float per unit (prelu's ``alpha``).

    >>> Activation("leaky_relu").param("negative_slope")
    0.2
    """

    name: str
    params: tuple[tuple[str, ParamValue], ...] = ()

    def __post_init__(self) -> None:
        spec = REGISTRY.get(self.name)
        if spec is None:
            raise ValidationError(
                f"unknown activation {self.name!r}; supported: {', '.join(ACTIVATIONS)}"
            )
        given = dict(self.params)
        unknown = set(given) - set(spec.defaults)
        if unknown:
            raise ValidationError(
                f"activation {self.name!r} has no parameter(s) {sorted(unknown)}; it takes "
                f"{sorted(spec.defaults) or 'none'}"
            )
        values = {key: _param(self.name, key, given.get(key, default), key in spec.per_unit)
                  for key, default in spec.defaults.items()}
        for key, value in values.items():
            if value is None and not (self.name == "relu" and key == "max_value"):
                raise ValidationError(f"activation {self.name!r} needs a value for {key!r}")
        object.__setattr__(self, "params", tuple(sorted(values.items())))

    def param(self, key: str) -> ParamValue:
        return dict(self.params)[key]

    @property
    def parameter_count(self) -> int:
        """Numbers stored per unit (prelu's alpha); scalar parameters are not counted."""
        return sum(len(value) for _key, value in self.params if isinstance(value, tuple))

    def __str__(self) -> str:
        """``tanh``, ``leaky_relu(negative_slope=0.1)``, ``prelu(alpha=[8 values])``: the
        parameters that differ from the defaults."""
        defaults = REGISTRY[self.name].defaults
        shown = [f"{key}={_param_text(value)}" for key, value in self.params if value != defaults.get(key)]
        return self.name + (f"({', '.join(shown)})" if shown else "")

    def unit_params(self, unit: int) -> dict[str, ParamValue]:
        """Parameters for one unit: per-unit tuples indexed, scalars as they are."""
        return {k: (v[unit] if isinstance(v, tuple) else v) for k, v in self.params}

    @property
    def is_vector(self) -> bool:
        """True when an output depends on every pre-activation of the layer."""
        return REGISTRY[self.name].vector

    @property
    def is_identity(self) -> bool:
        return self.name == "linear"

    def out_width(self, width: int) -> int:
        """Outputs for ``width`` pre-activations (glu halves them)."""
        return width // 2 if REGISTRY[self.name].halves else width

    def check_width(self, width: int, layer: str) -> None:
        if REGISTRY[self.name].halves and width % 2:
            raise ValidationError(f"layer {layer!r}: {self.name} needs an even number of units, got {width}")
        for key, value in self.params:
            if isinstance(value, tuple) and len(value) != width:
                raise ValidationError(
                    f"layer {layer!r}: {self.name} parameter {key!r} has {len(value)} values for {width} units"
                )


def _param_text(value: ParamValue) -> str:
    if isinstance(value, tuple):
        return f"[{len(value)} values]"
    return "None" if value is None else f"{value:g}"


def _param(activation: str, key: str, value: object, per_unit: bool) -> ParamValue:
    if value is None:
        return None
    try:
        if per_unit:
            values = tuple(float(v) for v in np.ravel(np.asarray(value, dtype=np.float64)))
            if not values:
                raise ValueError("empty")
        else:
            values = (float(value),)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValidationError(f"activation {activation!r}: parameter {key!r} must be a number, got {value!r}") from None
    if not all(math.isfinite(v) for v in values):
        raise ValidationError(f"activation {activation!r}: parameter {key!r} must be finite, got {value!r}")
    return values if per_unit else values[0]


LINEAR = Activation("linear")


def _frozen_array(values: object, what: str) -> np.ndarray:
    try:
        array = np.array(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{what} is not a numeric array: {exc}") from None
    array.setflags(write=False)
    return array


def _check_finite(array: np.ndarray, what: str) -> None:
    bad = np.argwhere(~np.isfinite(array))
    if len(bad):
        index = tuple(int(i) for i in bad[0])
        raise ValidationError(
            f"{what} has {len(bad)} non-finite value(s), first {array[index]!r} at index "
            f"{index}; retrain or fix the weights before converting"
        )


@dataclass(frozen=True, eq=False)
class Dense:
    """``activation(x @ kernel + bias)`` with ``kernel`` of shape (n_in, n_out)."""

    kernel: np.ndarray
    bias: np.ndarray | None
    activation: Activation = LINEAR
    name: str = "dense"

    def __post_init__(self) -> None:
        kernel = _frozen_array(self.kernel, f"layer {self.name!r} kernel")
        if kernel.ndim != 2 or 0 in kernel.shape:
            raise ValidationError(
                f"layer {self.name!r}: kernel must be a non-empty 2-D (inputs, units) "
                f"array, got shape {kernel.shape}"
            )
        _check_finite(kernel, f"layer {self.name!r} kernel")
        object.__setattr__(self, "kernel", kernel)
        if self.bias is not None:
            bias = _frozen_array(self.bias, f"layer {self.name!r} bias")
            if bias.shape != (kernel.shape[1],):
                raise ValidationError(
                    f"layer {self.name!r}: bias shape {bias.shape} does not match "
                    f"{kernel.shape[1]} units"
                )
            _check_finite(bias, f"layer {self.name!r} bias")
            object.__setattr__(self, "bias", bias)
        if not isinstance(self.activation, Activation):
            raise ValidationError(f"layer {self.name!r}: activation must be an Activation")
        self.activation.check_width(self.units, self.name)

    @property
    def n_in(self) -> int:
        return int(self.kernel.shape[0])

    @property
    def units(self) -> int:
        """Pre-activations computed (= outputs, except for glu)."""
        return int(self.kernel.shape[1])

    @property
    def n_out(self) -> int:
        return self.activation.out_width(self.units)

    @property
    def parameter_count(self) -> int:
        return self.kernel.size + (0 if self.bias is None else self.bias.size) + self.activation.parameter_count

    def __repr__(self) -> str:  # the arrays are in .kernel/.bias; the summary fits a line
        return f"Dense({self.name!r}, {self.n_in} -> {self.n_out}, {self.activation}" \
               f"{', no bias' if self.bias is None else ''})"

    def _key(self) -> tuple:
        bias = None if self.bias is None else self.bias.tobytes()
        return ("dense", self.name, self.kernel.shape, self.kernel.tobytes(), bias, self.activation)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Dense) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


@dataclass(frozen=True)
class Activate:
    """An activation applied on its own to a vector of ``width`` values."""

    width: int
    activation: Activation
    name: str = "activation"

    def __post_init__(self) -> None:
        if not isinstance(self.width, int) or self.width < 1:
            raise ValidationError(f"layer {self.name!r}: width must be a positive int")
        if not isinstance(self.activation, Activation):
            raise ValidationError(f"layer {self.name!r}: activation must be an Activation")
        self.activation.check_width(self.width, self.name)

    @property
    def n_in(self) -> int:
        return self.width

    @property
    def units(self) -> int:
        return self.width

    @property
    def n_out(self) -> int:
        return self.activation.out_width(self.width)

    @property
    def parameter_count(self) -> int:
        return self.activation.parameter_count

    def __repr__(self) -> str:
        return f"Activate({self.name!r}, {self.width} -> {self.n_out}, {self.activation})"


@dataclass(frozen=True, eq=False)
class Affine:
    """``x * scale + shift`` element-wise: a scaling or normalisation that could not be
    folded into a neighbouring Dense layer."""

    scale: np.ndarray
    shift: np.ndarray
    name: str = "affine"
    activation: Activation = LINEAR

    def __post_init__(self) -> None:
        scale = _frozen_array(self.scale, f"layer {self.name!r} scale")
        shift = _frozen_array(self.shift, f"layer {self.name!r} shift")
        if scale.ndim != 1 or scale.shape != shift.shape or scale.size == 0:
            raise ValidationError(
                f"layer {self.name!r}: scale and shift must be 1-D of the same length, got "
                f"{scale.shape} and {shift.shape}"
            )
        _check_finite(scale, f"layer {self.name!r} scale")
        _check_finite(shift, f"layer {self.name!r} shift")
        object.__setattr__(self, "scale", scale)
        object.__setattr__(self, "shift", shift)
        if not self.activation.is_identity:
            raise ValidationError(f"layer {self.name!r}: an Affine step has no activation")

    @property
    def n_in(self) -> int:
        return int(self.scale.shape[0])

    @property
    def units(self) -> int:
        return self.n_in

    @property
    def n_out(self) -> int:
        return self.n_in

    @property
    def parameter_count(self) -> int:
        return self.scale.size + self.shift.size

    def __repr__(self) -> str:
        return f"Affine({self.name!r}, {self.n_in} -> {self.n_out})"

    def _key(self) -> tuple:
        return ("affine", self.name, self.scale.tobytes(), self.shift.tobytes())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Affine) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


#: Bases a :class:`Polynomial` may be written in.
POLYNOMIAL_BASES = ("monomial", "chebyshev")
#: Highest degree a :class:`Polynomial` may have in one variable (a simpler formula, not a
#: substitute for the network: past this an interpolant of a network is ill-conditioned).
MAX_POLYNOMIAL_DEGREE = 64


@dataclass(frozen=True, eq=False)
class Polynomial:
    """An approximation of a network (or of part of one) as a polynomial in each input,
    with :mod:`mlpcodegen.core.simplify`'s certified error stated in ``Network.notes``.

    ``y_j = sum_k coefficients[j, k] * prod_i B(exponents[k, i], t_i)`` with
    ``t_i = (x_i - center_i) * scale_i`` (the domain mapped to [-1, 1]) and ``B(n, t)``
    ``t**n`` (``basis="monomial"``, written by Horner's rule for one input) or the
    Chebyshev polynomial ``T_n(t)`` (``"chebyshev"``, Clenshaw's recurrence for one input).
    ``exponents`` has one row per term (distinct rows), ``coefficients`` one row per output.
    """

    exponents: np.ndarray
    coefficients: np.ndarray
    center: np.ndarray
    scale: np.ndarray
    basis: str = "chebyshev"
    name: str = "polynomial"
    activation: Activation = LINEAR

    def __post_init__(self) -> None:
        what = f"layer {self.name!r}"
        exponents = _frozen_array(self.exponents, f"{what} exponents")
        coefficients, center, scale = (_frozen_array(getattr(self, key), f"{what} {key}")
                                       for key in ("coefficients", "center", "scale"))
        if exponents.ndim != 2 or 0 in exponents.shape or coefficients.ndim != 2 \
                or coefficients.shape[1] != exponents.shape[0] or coefficients.shape[0] == 0:
            raise ValidationError(f"{what}: exponents must be (terms, inputs) and coefficients (outputs, terms), "
                                  f"got {exponents.shape} and {coefficients.shape}")
        if center.shape != (exponents.shape[1],) or scale.shape != center.shape:
            raise ValidationError(f"{what}: center and scale need one value per input ({exponents.shape[1]})")
        for array, key in ((exponents, "exponents"), (coefficients, "coefficients"), (center, "center"),
                           (scale, "scale")):
            _check_finite(array, f"{what} {key}")
        if (exponents != np.round(exponents)).any() or (exponents < 0).any() \
                or (exponents > MAX_POLYNOMIAL_DEGREE).any():
            raise ValidationError(f"{what}: exponents must be whole numbers in [0, {MAX_POLYNOMIAL_DEGREE}]")
        if len({tuple(row) for row in exponents.tolist()}) != len(exponents):
            raise ValidationError(f"{what}: the exponent rows (terms) must be distinct")
        if (scale == 0).any():
            raise ValidationError(f"{what}: every input scale must be non-zero")
        if self.basis not in POLYNOMIAL_BASES:
            raise ValidationError(f"{what}: basis {self.basis!r} unknown; use one of {POLYNOMIAL_BASES}")
        if not isinstance(self.activation, Activation) or not self.activation.is_identity:
            raise ValidationError(f"{what}: a Polynomial has no activation")
        for key, array in (("exponents", exponents), ("coefficients", coefficients), ("center", center),
                           ("scale", scale)):
            object.__setattr__(self, key, array)

    @property
    def n_in(self) -> int:
        return int(self.exponents.shape[1])

    @property
    def units(self) -> int:
        return int(self.coefficients.shape[0])

    @property
    def n_out(self) -> int:
        return self.units

    @property
    def degree(self) -> int:
        """The highest exponent of any one input."""
        return int(self.exponents.max())

    @property
    def parameter_count(self) -> int:
        return self.coefficients.size + self.center.size + self.scale.size

    def __repr__(self) -> str:
        return (f"Polynomial({self.name!r}, {self.n_in} -> {self.n_out}, {self.basis} of degree {self.degree}, "
                f"{len(self.exponents)} terms)")

    def _key(self) -> tuple:
        return ("polynomial", self.name, self.basis, self.exponents.shape, self.exponents.tobytes(),
                self.coefficients.shape, self.coefficients.tobytes(), self.center.tobytes(), self.scale.tobytes())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Polynomial) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


Layer = Union[Dense, Activate, Affine, Polynomial]
#: Layers that compute from weights (a network needs at least one).
WEIGHTED_LAYERS = (Dense, Polynomial)


@dataclass(frozen=True)
class Network:
    """A chain of layers mapping ``n_inputs`` values to ``n_outputs`` values."""

    n_inputs: int
    layers: tuple[Layer, ...]
    weight_dtype: str = "float32"
    name: str = "mlp"
    #: What was folded into the network besides the model's own layers (e.g. the input
    #: scaling), one short line each, for the generated files to state.
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "notes", tuple(self.notes))
        if not all(isinstance(note, str) for note in self.notes):
            raise ValidationError("network notes must be strings")
        if not isinstance(self.n_inputs, (int, np.integer)) or self.n_inputs < 1:
            raise ValidationError(f"n_inputs must be a positive integer, got {self.n_inputs!r}")
        object.__setattr__(self, "n_inputs", int(self.n_inputs))
        if self.weight_dtype not in WEIGHT_DTYPES:
            raise ValidationError(
                f"weight dtype {self.weight_dtype!r} not supported; use one of {WEIGHT_DTYPES}"
            )
        if not any(isinstance(layer, WEIGHTED_LAYERS) for layer in self.layers):
            raise ValidationError("a network needs at least one Dense layer (or a Polynomial)")
        width = self.n_inputs
        for position, layer in enumerate(self.layers):
            if not isinstance(layer, (Dense, Activate, Affine, Polynomial)):
                raise ValidationError(f"layer {position} is a {type(layer).__name__}, not a Layer")
            if layer.n_in != width:
                raise ValidationError(
                    f"layer {position} ({layer.name!r}) expects {layer.n_in} inputs but the "
                    f"previous layer gives {width}"
                )
            width = layer.n_out

    @property
    def n_outputs(self) -> int:
        return self.layers[-1].n_out

    @property
    def dense_layers(self) -> tuple[Dense, ...]:
        return tuple(layer for layer in self.layers if isinstance(layer, Dense))

    def describe(self) -> str:
        """One line such as ``1-3-2-1 (tanh, tanh, linear)``."""
        widths = [str(self.n_inputs)] + [str(l.n_out) for l in self.layers if isinstance(l, WEIGHTED_LAYERS)]
        acts = [f"{layer.basis} polynomial of degree {layer.degree}" if isinstance(layer, Polynomial)
                else layer.activation.name for layer in self.layers]
        return f"{'-'.join(widths)} ({', '.join(acts)})"

    @property
    def parameter_count(self) -> int:
        """Numbers the layers store (weights, biases, scales, per-unit activation parameters)."""
        return sum(layer.parameter_count for layer in self.layers)

    def __repr__(self) -> str:
        """One line; ``print(net)`` gives the table of :meth:`summary`.  The arrays stay in
        the layers (``net.layers[0].kernel``)."""
        return (f"<Network {quote_name(self.name)!r}: {self.describe()}, {self.parameter_count:,} parameters, "
                f"{self.weight_dtype} weights>")

    def __str__(self) -> str:
        return self.summary()

    def summary(self) -> str:
        """A table like Keras' ``model.summary()``: each layer's name, kind, inputs ->
        outputs, activation and parameter count; the total; the notes.  Names from a model
        file are shown inert (``quote_name``)."""
        rows = [("#", "layer", "kind", "shape", "activation", "parameters")]
        rows += [(str(i), quote_name(layer.name)[:32], type(layer).__name__, f"{layer.n_in} -> {layer.n_out}",
                  _activation_text(layer)[:40], f"{layer.parameter_count:,}") for i, layer in enumerate(self.layers)]
        widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
        right = {0, 5}
        lines = [f"Network {quote_name(self.name)!r}: {self.n_inputs} inputs -> {self.n_outputs} outputs, "
                 f"{self.weight_dtype} weights"]
        lines += ["  ".join(cell.rjust(w) if k in right else cell.ljust(w)
                            for k, (cell, w) in enumerate(zip(row, widths))).rstrip() for row in rows]
        lines.append(f"Total parameters: {self.parameter_count:,}")
        lines += [f"note: {quote_name(note)}" for note in self.notes]
        return "\n".join(lines)


def _activation_text(layer: Layer) -> str:
    if isinstance(layer, Polynomial):
        return f"{layer.basis}, degree {layer.degree}, {len(layer.exponents)} terms"
    return "-" if isinstance(layer, Affine) else str(layer.activation)
