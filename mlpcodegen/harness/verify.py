"""Numerical verification: a target against the float64 reference evaluator and
against a peer: the model's own framework (``model.predict`` of a Keras model or file,
ONNX Runtime on an ``.onnx`` file, a scikit-learn estimator's ``predict_proba`` /
``predict``, a PyTorch module's forward pass), or any other
:class:`~mlpcodegen.harness.peers.Peer` (another target, the reference, a function).

How errors are measured
-----------------------
A plain relative error is meaningless where an output crosses zero or where a sum
cancels: any rounding difference there is "infinitely" wrong.  So errors are taken
against the *reference magnitude* ``S`` of each output
(:func:`mlpcodegen.core.reference.evaluate_magnitude`): a running first-order bound on how
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
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from ..core.errors import ValidationError
from ..core.ir import Network
from ..core.numeric import FIXED_TYPES, NUMERIC_TYPES, numeric_type
from ..core.passes import fold_affine
from ..core.reference import evaluate_magnitude
from ..runtime import load
from ..core.scaling import as_scaling, with_scaling
from .peers import Peer, as_peer

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


def _check(label: str, actual: np.ndarray, expected: np.ndarray, scale: np.ndarray, dtype: str,
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


def _per_feature(values: Any, n_inputs: int, what: str) -> np.ndarray:
    """A scalar or one number per input, as ``n_inputs`` float64s."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValidationError(f"{what} must be a number or one number per input, got {values!r}") from None
    if array.ndim == 0 or array.shape == (1,):
        return np.full(n_inputs, float(array.reshape(-1)[0]))
    if array.shape != (n_inputs,):
        raise ValidationError(f"{what} has {array.size} values but the network has {n_inputs} inputs: "
                              f"give one number for every input, or one per input")
    return array


def input_domain(n_inputs: int, domain: Any = None, sample: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature (low, high): from ``domain`` (a pair whose sides are each a scalar or
    one number per input), else the range seen in ``sample``, else [-1, 1]."""
    if domain is not None:
        if isinstance(domain, (str, bytes)) or len(domain) != 2:
            raise ValidationError(f"the domain is a pair (low, high), got {domain!r}")
        lo, hi = (_per_feature(v, n_inputs, f"the domain's {side}") for v, side in zip(domain, ("low", "high")))
    elif sample is not None:
        sample = as_inputs(sample, n_inputs, "the sample")
        lo, hi = sample.min(axis=0), sample.max(axis=0)
    else:
        lo, hi = np.full(n_inputs, -1.0), np.full(n_inputs, 1.0)
    bad = np.flatnonzero(~np.isfinite(lo) | ~np.isfinite(hi) | (lo > hi))
    if bad.size:
        i = int(bad[0])
        raise ValidationError(f"the domain of input x{i} is [{lo[i]:g}, {hi[i]:g}]: it must be finite with "
                              f"low <= high")
    return lo, hi


def random_inputs(n_inputs: int, n: int, lo: np.ndarray, hi: np.ndarray, seed: int = 0) -> np.ndarray:
    """``n`` float32-representable inputs: the domain's two corners, then uniform draws."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(lo, hi, size=(max(n, 2), n_inputs))
    x[0], x[1] = lo, hi
    return x.astype(np.float32)


#: Largest inputs file read_inputs reads (raise it with ``max_bytes``).
MAX_INPUT_BYTES = 256 * 2**20


def as_inputs(data: Any, n_inputs: Optional[int], what: str = "the data") -> np.ndarray:
    """``data`` as a finite float64 (rows, n_inputs) array (a 1-D array is one column
    when the network has one input), or a ValidationError that says what is wrong."""
    array = np.asarray(data)
    if array.dtype.kind not in "fiu":
        raise ValidationError(f"{what} must be numbers, got an array of {array.dtype}")
    if array.ndim == 1 and n_inputs == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise ValidationError(f"{what} must be a 2-D array (one row per sample, one column per input), "
                              f"got shape {array.shape}")
    if array.shape[0] == 0:
        raise ValidationError(f"{what} has no rows")
    if n_inputs is not None and array.shape[1] != n_inputs:
        raise ValidationError(f"{what} has {array.shape[1]} columns but the network has {n_inputs} inputs")
    array = array.astype(np.float64)
    with np.errstate(over="ignore"):
        bad = np.flatnonzero(~np.all(np.isfinite(array.astype(np.float32)), axis=1))
    if bad.size:
        rows = ", ".join(map(str, bad[:5])) + (", ..." if bad.size > 5 else "")
        raise ValidationError(f"{what}: {bad.size} row(s) hold NaN, an infinity or a value beyond the float32 "
                              f"range (rows {rows}, counting from 0): remove them")
    return array


def read_inputs(path: Any, n_inputs: Optional[int] = None, *, max_bytes: int = MAX_INPUT_BYTES) -> np.ndarray:
    """Inputs from a ``.npy`` array or a ``.csv`` file (comma-separated, one row per
    sample, an optional header row) as a float64 (rows, n_inputs) array."""
    path = Path(path)
    reader = _INPUT_READERS.get(path.suffix.lower())
    if reader is None:
        raise ValidationError(f"{path}: inputs must be a .npy or .csv file")
    import io

    from ..core._files import read_input

    data = read_input(path, max_bytes, "inputs file")
    array = reader(io.BytesIO(data), len(data), path)
    return as_inputs(array, n_inputs, str(path))


def _read_npy(stream, size: int, path: Path) -> np.ndarray:
    """A plain numeric .npy array; its declared size is checked against the file before
    anything is allocated."""
    try:
        version = np.lib.format.read_magic(stream)
        header = {(1, 0): np.lib.format.read_array_header_1_0,
                  (2, 0): np.lib.format.read_array_header_2_0}.get(version)
        if header is None:
            raise ValueError(f"unsupported .npy version {version}")
        shape, _, dtype = header(stream)
        if dtype.hasobject or dtype.kind not in "fiu":
            raise ValueError(f"the array holds {dtype}, not numbers")
        if int(np.prod(shape, dtype=np.float64)) * dtype.itemsize > size - stream.tell():
            raise ValueError(f"the header declares shape {shape}, more than the file holds")
        stream.seek(0)
        return np.load(stream, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ValidationError(f"{path} is not a readable .npy array: {exc}") from None


def _read_csv(stream, size: int, path: Path) -> np.ndarray:
    """Comma-separated numbers, one sample per line; a first line that is not numbers is a header."""
    try:
        lines = [line for line in stream.read(size).decode("utf-8").splitlines() if line.strip()]
    except UnicodeDecodeError:
        raise ValidationError(f"{path} is not UTF-8 text") from None
    if lines and not _numeric_line(lines[0]):
        lines = lines[1:]
    if not lines:
        raise ValidationError(f"{path} has no rows of numbers")
    try:
        return np.loadtxt(lines, delimiter=",", ndmin=2, dtype=np.float64)
    except ValueError as exc:
        raise ValidationError(f"{path}: {exc} (counting data rows from 0, after any header)") from None


def _numeric_line(line: str) -> bool:
    try:
        [float(cell) for cell in line.split(",")]
    except ValueError:
        return False
    return True


_INPUT_READERS = {".npy": _read_npy, ".csv": _read_csv}


def _inputs(n_inputs: int, n: int, domain: Any, sample: Any, data: Any, seed: int):
    """(x as float32, (lo, hi), source): ``n`` rows of ``data``, or random in the domain."""
    if data is None:
        lo, hi = input_domain(n_inputs, domain, sample)
        return random_inputs(n_inputs, n, lo, hi, seed), (lo, hi), "random"
    if domain is not None or sample is not None:
        raise ValidationError("give either the user's inputs (data) or a domain to draw from, not both")
    source = "the given data"
    if isinstance(data, (str, bytes)) or hasattr(data, "__fspath__"):
        source, data = str(data), read_inputs(data, n_inputs)
    rows = as_inputs(data, n_inputs)
    if n < len(rows):  # an even spread of the file, in its order
        rows = rows[np.sort(np.random.default_rng(seed).choice(len(rows), n, replace=False))]
    x = rows.astype(np.float32)
    return x, (x.min(axis=0).astype(np.float64), x.max(axis=0).astype(np.float64)), source


def verify(
    model: Any,
    target: str = "c",
    dtype: str = "float32",
    *,
    n: int = 1000,
    domain: Optional[Sequence] = None,
    data: Any = None,
    sample: Any = None,
    seed: int = 0,
    name: str = "mlp",
    network: Optional[Network] = None,
    input_scaling: Any = None,
    output_scaling: Any = None,
    options: Optional[dict] = None,
    weights: Any = None,
    limits: Any = None,
) -> VerifyReport:
    """Run ``n`` inputs through the peer ``model``, the reference and ``target``.

    ``model`` is anything :func:`~mlpcodegen.harness.peers.as_peer` takes: a model file
    of any format the frontends read (found by content) or a framework's model object,
    each compared with its own framework (Keras ``model.predict``, ONNX Runtime on the
    original ``.onnx``, scikit-learn ``predict_proba``/``predict``, the PyTorch forward
    pass), a :class:`~mlpcodegen.harness.peers.Peer` (``reference_peer(net)``,
    ``target_peer(net, "numba", "float64")``, ...), an object with ``predict(x)`` or a
    function of ``x``; ``network`` is needed when the peer does not know its network.
    ``weights``: the weights file of a Keras architecture JSON ``model``; ``limits``: the
    :class:`~mlpcodegen.core.limits.ReadLimits` a model file is read under (None: the defaults).
    With ``input_scaling``/``output_scaling`` (:class:`mlpcodegen.core.scaling.Scaling` or
    fitted scikit-learn scalers) the target takes original inputs and returns original
    outputs, and is compared with ``output_scaler⁻¹(peer.predict(input_scaler(x)))``.

    The inputs are random in ``domain`` = (low, high), each side a number for every
    input or one number per input (default [-1, 1]; or the range of ``sample``), or
    ``n`` rows of ``data``: the user's own inputs, an (rows, inputs) array or a ``.npy``
    / ``.csv`` path (see :func:`read_inputs`).  Both are in the units the target takes:
    original units when input scaling is given, else the model's.  ``options`` are the
    target's run options (``unroll``, ``math``).

    >>> report = verify("generated/seed/seed.keras", "c", "float32")   # doctest: +SKIP
    >>> report.ok                                                       # doctest: +SKIP
    True
    """
    if dtype == "int8":  # bit for bit against LiteRT's reference kernels: its own module
        from .peers import model_network
        from .verify_int8 import verify_int8

        net = network if network is not None else model_network(model, weights, limits)
        return verify_int8(model, net, n=n, domain=domain, data=data, seed=seed, name=name, limits=limits)[0]
    peer = as_peer(model, weights=weights, limits=limits)
    # A Keras model computes normalisation layers unfolded: measure rounding on that
    # form, and fold it (as the frontend's load does) for the target.  One read of the model.
    computed_net = network if network is not None else _peer_network(peer)
    model_net = network if network is not None else fold_affine(computed_net)
    inputs, outputs = as_scaling(input_scaling), as_scaling(output_scaling)
    net = with_scaling(model_net, inputs, outputs)
    fixed = numeric_type(dtype).is_fixed
    planned = None  # fixed point with data and a domain: the domain plans, the data tests
    if fixed and data is not None and domain is not None:
        planned, domain = input_domain(net.n_inputs, domain), None
    x, (lo, hi), source = _inputs(net.n_inputs, n, domain, sample, data, seed)  # bad inputs: refused before TF
    if planned is not None:
        lo, hi = planned
    # Magnitudes of the unfolded chain: the scaled inputs the peer sees are rounded too.
    reference, scale = evaluate_magnitude(with_scaling(computed_net, inputs, outputs, fold=False), x)
    predicted, predict_dtype = _peer_outputs(peer, x, inputs, outputs)
    if fixed:  # the formats are planned for the domain the inputs come from
        options = {**(options or {}), "domain": (lo, hi)}
    function = load(net, target, dtype=dtype, name=name, **(options or {}))
    batch = np.asarray(function(x))
    singles = np.stack([np.asarray(function(row)) for row in x[: min(len(x), 64)]])
    label = f"{target} {dtype}"
    report = VerifyReport(net.describe(), target, dtype, len(x), (lo, hi),
                          units=MODEL_UNITS if inputs is None else ORIGINAL_UNITS, source=source)
    if fixed:
        inside = within_domain(x, (lo, hi))
        report.outside = int(np.count_nonzero(~inside))
        if inside.any():
            report.comparisons += fixed_checks(label, net, (lo, hi), batch[inside], reference[inside],
                                               predicted[inside], peer.label)
        if report.outside:  # saturated at the domain's edge: beyond the stated bound, shown, not checked
            error = float(np.abs(np.asarray(batch, dtype=np.float64)[~inside] - reference[~inside]).max())
            report.comparisons.append(Comparison(
                f"{label} on the {report.outside} row(s) outside the planned domain (clipped)", error,
                float("nan"), float("nan"), dtype, "(information)", None))
        report.comparisons.append(_check(f"{label} one-sample calls vs batch", singles, batch[: len(singles)],
                                         scale[: len(singles)], "float32"))
        return report
    # Compared with the peer, the coarser of the two types sets the unit.
    worst = max(dtype, predict_dtype, key=_PRECISION_ORDER.index)
    report.comparisons += [
        _check(f"{label} vs reference (float64)", batch, reference, scale, dtype),
        _check(f"{label} vs {peer.label}", batch, predicted, scale, worst, floor=peer.magnitude_floor),
        _check(f"{label} one-sample calls vs batch", singles, batch[: len(singles)], scale[: len(singles)], dtype),
        _check(f"{peer.label} vs reference", predicted, reference, scale, predict_dtype, checked=False,
               floor=peer.magnitude_floor),
    ]
    return report


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
_PRECISION_ORDER = ["float64", "float32", "float16", "bfloat16"]


def _peer_network(peer: Peer) -> Network:
    found = peer.network()
    if found is None:
        raise ValidationError(f"verify needs the network the peer {peer.label!r} computes: pass network=... "
                              "(a Keras model, a model file, reference_peer and target_peer know theirs)")
    return found


def _peer_outputs(peer: Peer, x: np.ndarray, inputs: Any, outputs: Any) -> tuple[np.ndarray, str]:
    """(the peer's outputs on ``x`` in the target's units, the type it computed in):
    the peer takes model units, so the input scaling is applied before and the output
    scaling undone after."""
    model_x = x if inputs is None else inputs.apply(x).astype(peer.input_dtype)
    predicted = np.asarray(peer.predict(model_x))
    predict_dtype = peer.computes_in or (predicted.dtype.name if predicted.dtype.name in _PRECISION_ORDER
                                         else "float32")
    if outputs is not None:
        predicted = outputs.inverse().apply(predicted)
    return predicted, predict_dtype
