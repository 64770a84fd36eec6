"""Numerical verification: a target against the float64 reference evaluator and
against ``model.predict``.

How errors are measured
-----------------------
A plain relative error is meaningless where an output crosses zero or where a sum
cancels: any rounding difference there is "infinitely" wrong.  So errors are taken
against the *reference magnitude* ``S`` of each output
(:func:`mlpcodegen.reference.evaluate_magnitude`): a running first-order bound on how
large rounding errors of any evaluation order can get, ``|W|^T m + |b|`` through each
Dense layer, scaled by each activation's derivative.  Then, per output value,

* ``rel = |actual - expected| / S``
* ``ulp = |actual - expected| / spacing(S)`` in the float type being checked, where
  ``spacing`` is the gap to the next float (and at least the smallest normal number:
  underflow to zero counts as under one ULP).

A correct float32 evaluation in any summation order is then a few ULPs away from the
float64 reference, whatever the weights; a wrong weight, sign or activation is
thousands of ULPs away.

Tolerances (measured, then a margin)
------------------------------------
* float64 targets vs the reference: ``rel <= 1e-12``.
* float32 targets vs the reference and vs ``model.predict``: ``ulp <= 8``.

Measured by ``python bench/accuracy.py`` (80 random architectures, depth 1-4,
widths 1-16, all activations, with and without bias, inputs in [-1, 1], [-2, 2] and
[-50, 50]): TensorFlow's float32 ``predict`` vs the reference at most 2.4 ULP, our
float32 C at most 2.4 ULP, C vs ``predict`` at most 3.0 ULP; float64 C vs the
reference at most 2.7e-16 relative.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np

from ..backends import get_backend
from ..errors import ValidationError
from ..ir import Network
from ..passes import fold_affine
from ..reference import evaluate_magnitude
from ..scaling import as_scaling, with_scaling

F64_REL_BOUND = 1e-12
F32_ULP_BOUND = 8.0


@dataclass(frozen=True)
class Comparison:
    """Errors of ``actual`` against ``expected`` and whether they are within bound."""

    label: str
    max_abs: float
    max_rel: float
    max_ulp: float
    ulp_dtype: str
    bound: str
    passed: Optional[bool]  # None: reported for information, not checked


def _finfo(dtype: str) -> np.finfo:
    # bfloat16 has float32's range and 8 significant bits; NumPy has no such type.
    return np.finfo("float32" if dtype == "bfloat16" else dtype)


def _spacing(values: np.ndarray, dtype: str) -> np.ndarray:
    """Gap to the next float of ``dtype`` at each value (bfloat16: 2^16 float32 gaps)."""
    if dtype == "bfloat16":
        return np.spacing(values.astype(np.float32)).astype(np.float64) * 2.0**16
    with np.errstate(over="ignore"):
        return np.spacing(values.astype(dtype)).astype(np.float64)


def compare(actual: np.ndarray, expected: np.ndarray, scale: np.ndarray, dtype: str) -> tuple[float, float, float]:
    """(max abs, max rel, max ULP) of ``actual`` against ``expected``, where rel and
    ULP are taken at ``scale`` (the reference magnitude, see module docstring)."""
    actual = np.asarray(actual, dtype=np.float64).reshape(len(expected), -1)
    expected = np.asarray(expected, dtype=np.float64).reshape(len(expected), -1)
    # Beyond the type's range the correctly rounded result is an infinity of the same sign.
    overflow = (np.abs(expected) > float(_finfo(dtype).max)) & (actual == np.sign(expected) * np.inf)
    actual = np.where(overflow, expected, actual)
    if not np.all(np.isfinite(actual)):
        return float("inf"), float("inf"), float("inf")
    error = np.abs(actual - expected)
    info = _finfo(dtype)
    tiny = float(info.tiny)
    scale = np.maximum(np.asarray(scale, dtype=np.float64).reshape(error.shape), tiny)
    # Underflow is absolute: below the smallest normal number a ULP is that number.
    ulp = np.maximum(_spacing(scale, dtype), tiny)
    return float(error.max(initial=0.0)), float((error / scale).max(initial=0.0)), float((error / ulp).max(initial=0.0))


def _check(label: str, actual: np.ndarray, expected: np.ndarray, scale: np.ndarray, dtype: str,
           checked: bool = True) -> Comparison:
    max_abs, max_rel, max_ulp = compare(actual, expected, scale, dtype)
    if dtype == "float64":
        bound, passed = f"rel <= {F64_REL_BOUND:g}", max_rel <= F64_REL_BOUND
    elif dtype in ("float16", "bfloat16"):  # half precision: Keras rounds every op to it
        bound, passed = f"ulp <= {F32_ULP_BOUND:g}", max_ulp <= F32_ULP_BOUND
    else:
        bound, passed = f"ulp <= {F32_ULP_BOUND:g}", max_ulp <= F32_ULP_BOUND
    return Comparison(label, max_abs, max_rel, max_ulp, dtype, bound if checked else "(information)",
                      passed if checked else None)


@dataclass
class VerifyReport:
    network: str
    target: str
    dtype: str
    n_samples: int
    domain: tuple[np.ndarray, np.ndarray]
    comparisons: list[Comparison] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.passed is not False for c in self.comparisons)

    def table(self) -> str:
        lo, hi = self.domain
        head = (
            f"network {self.network}; target {self.target} {self.dtype}; {self.n_samples} inputs "
            f"in [{_fmt_bounds(lo)}, {_fmt_bounds(hi)}]\n"
            "rel and ulp are taken at the reference magnitude of each output (see mlpcodegen.harness.verify)\n"
        )
        rows = [("comparison", "max abs", "max rel", "max ulp", "bound", "result")]
        for c in self.comparisons:
            verdict = {True: "ok", False: "FAIL", None: "-"}[c.passed]
            rows.append((c.label, f"{c.max_abs:.3g}", f"{c.max_rel:.3g}",
                         f"{c.max_ulp:.3g} ({c.ulp_dtype})", c.bound, verdict))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
        return head + "\n".join(lines) + "\n"


def _fmt_bounds(values: np.ndarray) -> str:
    unique = np.unique(values)
    return f"{unique[0]:g}" if len(unique) == 1 else "per-feature"


def input_domain(n_inputs: int, domain: Any = None, sample: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature (low, high): from ``domain`` (a pair of scalars or arrays), else the
    range seen in ``sample``, else [-1, 1]."""
    if domain is not None:
        lo, hi = (np.broadcast_to(np.asarray(v, dtype=np.float64), (n_inputs,)) for v in domain)
    elif sample is not None:
        sample = np.asarray(sample, dtype=np.float64).reshape(-1, n_inputs)
        lo, hi = sample.min(axis=0), sample.max(axis=0)
    else:
        lo, hi = np.full(n_inputs, -1.0), np.full(n_inputs, 1.0)
    if np.any(~np.isfinite(lo)) or np.any(~np.isfinite(hi)) or np.any(lo > hi):
        raise ValidationError(f"input domain must be finite with low <= high, got {lo} .. {hi}")
    return lo, hi


def random_inputs(n_inputs: int, n: int, lo: np.ndarray, hi: np.ndarray, seed: int = 0) -> np.ndarray:
    """``n`` float32-representable inputs: the domain's two corners, then uniform draws."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(lo, hi, size=(max(n, 2), n_inputs))
    x[0], x[1] = lo, hi
    return x.astype(np.float32)


def verify(
    model: Any,
    target: str = "c",
    dtype: str = "float32",
    *,
    n: int = 1000,
    domain: Optional[Sequence] = None,
    sample: Any = None,
    seed: int = 0,
    name: str = "mlp",
    network: Optional[Network] = None,
    input_scaling: Any = None,
    output_scaling: Any = None,
    options: Optional[dict] = None,
) -> VerifyReport:
    """Run ``n`` random inputs through ``model.predict``, the reference and ``target``.

    ``model`` is a ``keras.Model`` or a path to a ``.keras``/``.h5`` file.  With
    ``input_scaling``/``output_scaling`` (:class:`mlpcodegen.scaling.Scaling` or fitted
    scikit-learn scalers) the target takes raw inputs and returns raw outputs, and is
    compared with ``output_scaler⁻¹(model.predict(input_scaler(x)))``; ``domain`` is
    then in raw units.  ``options`` are the target's emit options (``unroll``, ``math``).

    >>> report = verify("generated/seed/seed.keras", "c", "float32")   # doctest: +SKIP
    >>> report.ok                                                       # doctest: +SKIP
    True
    """
    from ..frontends import keras as frontend

    # Keras computes normalisation layers unfolded: measure rounding on that form, and
    # fold it (as frontend.load does) for the target.  One read of the model.
    computed_net = network if network is not None else frontend.load(model, fold=False)
    model_net = network if network is not None else fold_affine(computed_net)
    keras_model = frontend.load_keras_model(model) if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__") else model
    inputs, outputs = as_scaling(input_scaling), as_scaling(output_scaling)
    net = with_scaling(model_net, inputs, outputs)
    lo, hi = input_domain(net.n_inputs, domain, sample)
    x = random_inputs(net.n_inputs, n, lo, hi, seed)
    # Magnitudes of the unfolded chain: the scaled inputs model.predict sees are rounded too.
    reference, scale = evaluate_magnitude(with_scaling(computed_net, inputs, outputs, fold=False), x)
    model_x = x if inputs is None else inputs.apply(x).astype(np.float32)
    predicted = np.asarray(keras_model.predict(model_x, batch_size=len(x), verbose=0))
    predict_dtype = {"float64": "float64", "float16": "float16", "bfloat16": "bfloat16"}.get(
        np.dtype(predicted.dtype).name, "float32")
    if outputs is not None:
        predicted = outputs.inverse().apply(predicted)
    function = get_backend(target).load(net, dtype=dtype, name=name, **(options or {}))
    batch = np.asarray(function(x))
    singles = np.stack([np.asarray(function(row)) for row in x[: min(len(x), 64)]])
    label = f"{target} {dtype}"
    # Compared with model.predict, the coarser of the two types sets the unit.
    order = ["float64", "float32", "float16", "bfloat16"]
    worst = max(dtype, predict_dtype, key=order.index)
    report = VerifyReport(net.describe(), target, dtype, len(x), (lo, hi))
    report.comparisons += [
        _check(f"{label} vs reference (float64)", batch, reference, scale, dtype),
        _check(f"{label} vs model.predict", batch, predicted, scale, worst),
        _check(f"{label} one-sample calls vs batch", singles, batch[: len(singles)], scale[: len(singles)], dtype),
        _check("model.predict vs reference", predicted, reference, scale, predict_dtype, checked=False),
    ]
    return report
