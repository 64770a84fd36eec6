"""What a verification reports and how it measures: the errors of one set of outputs
against another (:func:`compare`, at the reference magnitude of each output, explained in
:mod:`mlpcodegen.harness.verify`), the tolerances, a fixed-point target's checks against
its stated bound, a peer's outputs in the target's units, and the report itself.

Shared by :mod:`~mlpcodegen.harness.verify`, :mod:`~mlpcodegen.harness.verify_int8` and
:mod:`~mlpcodegen.harness.cortex` (the embedded cores), which import it and not each other.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from ..core.errors import ValidationError
from ..core.ir import Network
from ..core.numeric import FIXED_TYPES, NUMERIC_TYPES
from .peers import Peer

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
        return _spacing(values, "float32") * 2.0**16
    # At and beyond the type's largest float a ULP is the gap just below it (no overflow).
    below_max = float(np.nextafter(np.finfo(dtype).max, np.zeros(1, dtype))[0])
    return np.spacing(np.minimum(np.abs(values), below_max).astype(dtype)).astype(np.float64)


def compare(actual: np.ndarray, expected: np.ndarray, scale: np.ndarray, dtype: str) -> tuple[float, float, float]:
    """(max abs, max rel, max ULP) of ``actual`` against ``expected``, where rel and
    ULP are taken at ``scale`` (the reference magnitude, see module docstring)."""
    actual = np.asarray(actual, dtype=np.float64).reshape(len(expected), -1)
    expected = np.asarray(expected, dtype=np.float64).reshape(len(expected), -1)
    # Beyond the type's range the correctly rounded result is an infinity of the same sign.
    overflow = (np.abs(expected) > float(_finfo(dtype).max)) & (actual == np.copysign(np.inf, expected))
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


def _bound_by_rel(dtype: str) -> bool:
    """Whether ``dtype`` is held to the relative bound (binary64) rather than to ULPs:
    the target types by their record; a peer's half types (Keras' float16, bfloat16,
    rounded at every op) are counted in their own ULPs."""
    numeric = NUMERIC_TYPES.get(dtype)
    return numeric is not None and not numeric.is_float32


def floored(scale: np.ndarray, floor: float) -> np.ndarray:
    """``scale`` raised to at least ``floor`` times each output's (column's) largest
    magnitude over the batch (:attr:`~mlpcodegen.harness.peers.Peer.magnitude_floor`)."""
    scale = np.asarray(scale, dtype=np.float64)
    if not floor or not scale.size:
        return scale
    return np.maximum(scale, floor * np.abs(scale).max(axis=0, keepdims=True))


def check(label: str, actual: np.ndarray, expected: np.ndarray, scale: np.ndarray, dtype: str,
           checked: bool = True, floor: float = 0.0) -> Comparison:
    """``floor``: errors are measured at no less than this fraction of each output's
    largest magnitude over the batch (a peer accurate in absolute, not relative, terms:
    see :attr:`~mlpcodegen.harness.peers.Peer.magnitude_floor`)."""
    max_abs, max_rel, max_ulp = compare(actual, expected, floored(scale, floor), dtype)
    if _bound_by_rel(dtype):
        bound, passed = f"rel <= {F64_REL_BOUND:g}", max_rel <= F64_REL_BOUND
    else:
        bound, passed = f"ulp <= {F32_ULP_BOUND:g}", max_ulp <= F32_ULP_BOUND
    bound += f" (magnitude >= {floor:g} x output's largest)" if floor else ""
    return Comparison(label, max_abs, max_rel, max_ulp, dtype, bound if checked else "(information)",
                      passed if checked else None)


#: What the inputs of a report are measured in.
MODEL_UNITS = "model units"
ORIGINAL_UNITS = "original units: input scaling folded in"


@dataclass
class VerifyReport:
    network: str
    target: str
    dtype: str
    n_samples: int
    domain: tuple[np.ndarray, np.ndarray]
    comparisons: list[Comparison] = field(default_factory=list)
    units: str = MODEL_UNITS
    source: str = "random"  # "random": uniform in the domain; else where the inputs came from
    #: fixed point: rows outside the planned domain (saturated there; None: not a fixed-point check)
    outside: Optional[int] = None

    @property
    def ok(self) -> bool:
        return all(c.passed is not False for c in self.comparisons)

    def table(self) -> str:
        where = "random inputs" if self.source == "random" else f"inputs from {self.source}"
        head = (
            f"network {self.network}; target {self.target} {self.dtype}; {self.n_samples} {where} "
            f"{'formats planned for' if self.outside is not None else 'in'} {format_domain(*self.domain)} "
            f"({self.units})\n"
            "rel and ulp are taken at the reference magnitude of each output (see mlpcodegen.harness.verify)\n"
        )
        if self.outside is not None:
            head += (f"rows outside the planned domain (clipped: the fixed-point C saturates there, its stated "
                     f"bound does not hold): {self.outside} of {self.n_samples}\n")
        rows = [("comparison", "max abs", "max rel", "max ulp", "bound", "result")]
        for c in self.comparisons:
            verdict = {True: "ok", False: "FAIL", None: "-"}[c.passed]
            if c.ulp_dtype in FIXED_TYPES:  # fixed point: abs error against a stated bound, no rel/ULP
                rel, ulp = "-", f"- ({c.ulp_dtype})"
            else:
                rel, ulp = f"{c.max_rel:.3g}", f"{c.max_ulp:.3g} ({c.ulp_dtype})"
            rows.append((c.label, f"{c.max_abs:.3g}", rel, ulp, c.bound, verdict))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
        return head + "\n".join(lines) + "\n"



def format_domain(lo: np.ndarray, hi: np.ndarray) -> str:
    """``[-1, 1]`` when every input has the same range, else the range of each input
    (the first three and the last of a long list)."""
    if np.all(lo == lo[0]) and np.all(hi == hi[0]):
        return f"[{lo[0]:g}, {hi[0]:g}]" + (f" for each of the {len(lo)} inputs" if len(lo) > 1 else "")
    ranges = [f"x{i} in [{a:g}, {b:g}]" for i, (a, b) in enumerate(zip(lo, hi))]
    return ", ".join(ranges if len(ranges) <= 4 else ranges[:3] + ["...", ranges[-1]])



def within_domain(x: np.ndarray, domain: tuple) -> np.ndarray:
    """Which rows of ``x`` lie in the fixed-point ``domain`` (as planned: widened outward
    to float32, :func:`mlpcodegen.core.fixed.as_domain`); outside it the C saturates."""
    from ..core.fixed import as_domain

    lo, hi = as_domain(x.shape[1], domain)
    x = np.asarray(x, dtype=np.float64)
    return np.all((x >= lo) & (x <= hi), axis=1)


def fixed_checks(label: str, net: Network, domain: tuple, actual: np.ndarray, reference: np.ndarray,
                 predicted: Optional[np.ndarray] = None, peer_label: str = "") -> list[Comparison]:
    """A fixed-point target against the error bound its plan states for ``domain``
    (:mod:`mlpcodegen.core.fixed`): the max abs error vs the float64 reference within the
    bound; vs the peer within the bound plus the peer's own distance to the reference;
    for a softmax network the share of inputs whose class (argmax) agrees (information:
    near-ties may differ, a tie closer than twice the logits' bound is not decided)."""
    from ..core.fixed import plan

    bound = plan(net, domain).bound
    actual, reference = np.asarray(actual, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    error = np.abs(actual - reference).max(axis=0)
    stated = f"abs <= {float(bound.max()):.3g} (stated bound)"
    checks = [Comparison(f"{label} vs reference (float64)", float(error.max()), float("nan"), float("nan"), "q15",
                         stated, bool(np.all(error <= bound)))]
    if predicted is not None:
        predicted = np.asarray(predicted, dtype=np.float64).reshape(reference.shape)
        peer_error = np.abs(predicted - reference).max(axis=0)
        versus = np.abs(actual - predicted).max(axis=0)
        checks.append(Comparison(f"{label} vs {peer_label}", float(versus.max()), float("nan"), float("nan"), "q15",
                                 "abs <= stated bound + the peer's distance to the reference",
                                 bool(np.all(versus <= bound + peer_error))))
    if net.layers[-1].activation.name == "softmax":
        agree = float(np.mean(actual.argmax(axis=1) == reference.argmax(axis=1)))
        checks.append(Comparison(f"{label} classes (argmax) agree with the reference: {100 * agree:.2f}%",
                                 1.0 - agree, float("nan"), float("nan"), "q15", "(information)", None))
    return checks



#: Finest to coarsest: the types a target or a peer computes in.
PRECISION_ORDER = ["float64", "float32", "float16", "bfloat16"]


def peer_network(peer: Peer) -> Network:
    found = peer.network()
    if found is None:
        raise ValidationError(f"verify needs the network the peer {peer.label!r} computes: pass network=... "
                              "(a Keras model, a model file, reference_peer and target_peer know theirs)")
    return found


def peer_outputs(peer: Peer, x: np.ndarray, inputs: Any, outputs: Any) -> tuple[np.ndarray, str]:
    """(the peer's outputs on ``x`` in the target's units, the type it computed in):
    the peer takes model units, so the input scaling is applied before and the output
    scaling undone after."""
    model_x = x if inputs is None else inputs.apply(x).astype(peer.input_dtype)
    predicted = np.asarray(peer.predict(model_x))
    predict_dtype = peer.computes_in or (predicted.dtype.name if predicted.dtype.name in PRECISION_ORDER
                                         else "float32")
    if outputs is not None:
        predicted = outputs.inverse().apply(predicted)
    return predicted, predict_dtype
