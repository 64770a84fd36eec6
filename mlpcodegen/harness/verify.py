"""Numerical verification: a target against the float64 reference evaluator and
against ``model.predict``.

How errors are measured
-----------------------
Outputs that cross zero make a plain relative error meaningless (any rounding
difference near zero is "infinitely" wrong), so every error is taken relative to the
*scale* of its output column, ``S_j = max_i |expected_ij|`` over the test inputs:

* ``rel = |actual - expected| / S_j``
* ``ulp = |actual - expected| / spacing(S_j)`` in the float type being checked
  (``numpy.spacing``: the distance from S_j to the next representable number).

Tolerances (what we measured, then a margin)
--------------------------------------------
* float64 targets vs the reference: ``rel <= 1e-12``.  (Measured on 40 random
  architectures, depth 1-4, widths 1-16, all activations: at most 5.3e-13 relative
  even when measured against 1e-3 of the scale.)
* float32 targets vs the reference and vs ``model.predict``: ``ulp <= 32``.
  TensorFlow's own float32 ``predict`` is up to 12.2 ULP from the float64
  reference on the same architectures, our float32 C up to 13.7, and the two
  differ from each other by up to 15 ULP (different summation orders and libm).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np

from ..backends import get_backend
from ..errors import ValidationError
from ..ir import Network
from ..reference import evaluate

F64_REL_BOUND = 1e-12
F32_ULP_BOUND = 32.0


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


def compare(actual: np.ndarray, expected: np.ndarray, dtype: str) -> tuple[float, float, float]:
    """(max abs, max rel-to-scale, max ULP-at-scale) of ``actual`` against ``expected``."""
    actual = np.asarray(actual, dtype=np.float64).reshape(len(expected), -1)
    expected = np.asarray(expected, dtype=np.float64).reshape(len(expected), -1)
    error = np.abs(actual - expected)
    if not np.all(np.isfinite(actual)):
        return float("inf"), float("inf"), float("inf")
    scale = np.maximum(np.abs(expected).max(axis=0), np.finfo(dtype).tiny)
    ulp = np.spacing(scale.astype(dtype)).astype(np.float64)
    return float(error.max()), float((error / scale).max()), float((error / ulp).max())


def _check(label: str, actual: np.ndarray, expected: np.ndarray, dtype: str, checked: bool = True) -> Comparison:
    max_abs, max_rel, max_ulp = compare(actual, expected, dtype)
    if dtype == "float64":
        bound, passed = f"rel <= {F64_REL_BOUND:g}", max_rel <= F64_REL_BOUND
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
            "errors relative to each output's scale S = max|expected| (see mlpcodegen.harness.verify)\n"
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
) -> VerifyReport:
    """Run ``n`` random inputs through ``model.predict``, the reference and ``target``.

    ``model`` is a ``keras.Model`` or a path to a ``.keras``/``.h5`` file.

    >>> report = verify("generated/seed/seed.keras", "c", "float32")   # doctest: +SKIP
    >>> report.ok                                                       # doctest: +SKIP
    True
    """
    from ..frontends import keras as frontend

    net = network if network is not None else frontend.load(model)
    keras_model = frontend.load_keras_model(model) if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__") else model
    lo, hi = input_domain(net.n_inputs, domain, sample)
    x = random_inputs(net.n_inputs, n, lo, hi, seed)
    reference = evaluate(net, x)
    predicted = np.asarray(keras_model.predict(x, batch_size=len(x), verbose=0))
    predict_dtype = "float64" if predicted.dtype == np.float64 else "float32"
    function = get_backend(target).load(net, dtype=dtype, name=name)
    batch = np.asarray(function(x))
    singles = np.stack([np.asarray(function(row)) for row in x[: min(len(x), 64)]])
    label = f"{target} {dtype}"
    worst = "float32" if "float32" in (dtype, predict_dtype) else "float64"
    report = VerifyReport(net.describe(), target, dtype, len(x), (lo, hi))
    report.comparisons += [
        _check(f"{label} vs reference (float64)", batch, reference, dtype),
        _check(f"{label} vs model.predict", batch, predicted, worst),
        _check(f"{label} one-sample calls vs batch", singles, batch[: len(singles)], dtype),
        _check("model.predict vs reference", predicted, reference, predict_dtype, checked=False),
    ]
    return report
