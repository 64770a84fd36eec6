"""The seeded networks and inputs the tests share (bench/ scripts import them too): one
recipe each, so that a seed means the same network in every file that uses it.

- :func:`dense_chain`: Dense layers of given widths and activations, kernels N(0, 1/fan-in).
- :func:`architecture` and :func:`random_net`: a random architecture from a seed (depth,
  widths, activations, biases), and that architecture with seeded weights.
- :func:`inputs`: seeded rows drawn uniformly from a box.

Weights come from NumPy's default generator in a fixed order (for each layer: the per-unit
parameters, the kernel, then the bias), so changing a recipe changes every network built
from it: tests that compare with stored figures (test_fixed's ``cls`` plan) rely on it.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mlpcodegen.core.activations import REGISTRY
from mlpcodegen.core.ir import Activation, Dense, Network

#: The five activations of the core issue's random architectures (full coverage is
#: tested in test_coverage.py).
CORE_ACTIVATIONS = ("linear", "relu", "tanh", "sigmoid", "softmax")


def _generator(seed: int | np.random.Generator) -> np.random.Generator:
    """A generator from a seed; a generator passed in is used (and advanced) as it is."""
    return np.random.default_rng(seed)


def _layer(rng: np.random.Generator, n_in: int, units: int, activation: str, *, bias: bool, bias_scale: float,
           scaled: bool, kernel_scale: float, dtype, name: str | None, alpha: tuple[float, float]) -> Dense:
    """One Dense layer: ``units`` (twice as many for an activation that halves, glu), a
    per-unit parameter drawn for the activations that have one (prelu's alpha)."""
    spec = REGISTRY[activation]
    units = 2 * units if spec.halves else units
    params = {"alpha": tuple(float(a) for a in rng.uniform(*alpha, units))} if spec.per_unit else {}
    kernel = rng.normal(size=(n_in, units))
    kernel = (kernel / np.sqrt(n_in) * kernel_scale if scaled else kernel).astype(dtype)
    biases = rng.normal(size=units).astype(dtype) * bias_scale if bias else None
    named = {} if name is None else {"name": name}
    return Dense(kernel, biases, Activation(activation, params), **named)


def dense_chain(widths: Sequence[int], activations: Sequence[str], seed: int | np.random.Generator = 0, *,
                bias: bool | Sequence[bool] = True, bias_scale: float = 0.1, kernel_scale: float = 1.0,
                dtype=np.float64, names: str | None = "d{i}", alpha: tuple[float, float] = (0.1, 0.3),
                weight_dtype: str = "float32", name: str = "mlp") -> Network:
    """Dense layers ``widths[0] -> widths[1] -> ...`` with ``activations``: kernels
    N(0, 1) / sqrt(fan-in) * ``kernel_scale``, biases N(0, 1) * ``bias_scale`` (``bias``:
    all, none, or one flag per layer), cast to ``dtype``; layer ``i`` named
    ``names.format(i=i)`` (None: Dense's default name)."""
    rng = _generator(seed)
    flags = [bias] * (len(widths) - 1) if isinstance(bias, bool) else list(bias)
    layers, n_in = [], widths[0]
    for i, (units, activation, has_bias) in enumerate(zip(widths[1:], activations, flags)):
        layers.append(_layer(rng, n_in, units, activation, bias=has_bias, bias_scale=bias_scale, scaled=True,
                             kernel_scale=kernel_scale, dtype=dtype, name=None if names is None else names.format(i=i),
                             alpha=alpha))
        n_in = layers[-1].n_out
    return Network(widths[0], tuple(layers), weight_dtype, name)


def architecture(seed: int, activations: Sequence[str] = CORE_ACTIVATIONS, depth: tuple[int, int] = (1, 5),
                 width: tuple[int, int] = (1, 17)) -> tuple[list[int], list[str], list[bool]]:
    """Depth and widths drawn from the half-open ranges (by default depth 1-4, widths
    1-16), each layer's activation one of ``activations``, a bias or not."""
    rng = np.random.default_rng(seed)
    layers = int(rng.integers(*depth))
    widths = [int(w) for w in rng.integers(*width, size=layers + 1)]
    chosen = [activations[i] for i in rng.integers(0, len(activations), size=layers)]
    biases = [bool(b) for b in rng.integers(0, 2, size=layers)]
    return widths, chosen, biases


def random_net(seed: int, activations: Sequence[str] = CORE_ACTIVATIONS, *, depth: tuple[int, int] = (1, 5),
               width: tuple[int, int] = (1, 17), bias: bool | None = None, scaled: bool = False,
               dtype=np.float32, weight_dtype: str = "float32") -> Network:
    """The :func:`architecture` of ``seed`` with weights from a generator of the same seed:
    kernels N(0, 1) (``scaled``: / sqrt(fan-in)), biases N(0, 1) where the architecture
    has one (``bias``: on every layer or none), both cast to ``dtype``."""
    widths, chosen, biases = architecture(seed, activations, depth, width)
    rng, layers, n_in = np.random.default_rng(seed), [], widths[0]
    for i, (units, activation, has_bias) in enumerate(zip(widths[1:], chosen, biases)):
        layers.append(_layer(rng, n_in, units, activation, bias=has_bias if bias is None else bias, bias_scale=1.0,
                             scaled=scaled, kernel_scale=1.0, dtype=dtype, name=f"d{i}", alpha=(0.1, 0.3)))
        n_in = layers[-1].n_out
    return Network(widths[0], tuple(layers), weight_dtype)


def inputs(n_inputs: int, seed: int = 0, n: int = 64, *, domain: tuple[float, float] = (-3.0, 3.0),
           dtype=np.float32) -> np.ndarray:
    """``n`` rows of ``n_inputs`` values uniform in ``domain``, as ``dtype``."""
    return np.random.default_rng(seed).uniform(*domain, (n, n_inputs)).astype(dtype)
