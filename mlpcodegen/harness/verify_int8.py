"""``verify --dtype int8``: the int8 C against what defines its bits.

* An int8 ``.tflite``: LiteRT's interpreter with its reference kernels (``BUILTIN_REF``, the
  integer semantics the int8 C implements) on the same rows; a float-I/O model is compared
  through the float wrapper, an int8-I/O model on the codes the wrapper's QUANTIZE makes
  (LiteRT takes those codes; its output codes are dequantised as the wrapper does).  Equal
  bit for bit, or the check fails.
* A float model quantised by ``--calibrate`` (:func:`mlpcodegen.core.ptq.calibrate`): no file
  defines its bits, so the C is compared bit for bit with the NumPy mirror of its plan
  (:func:`mlpcodegen.core.quant.run_int8`), and with the float model's framework and the float64
  reference for information (quantisation error, argmax agreement).

On a core (``--core``) the same comparisons run on the core's outputs, plus the host build
of the same C bit for bit.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

from ..core.ir import Network
from ..core.quant import int8_plan, run_int8
from .inputs import draw_inputs
from .report import MODEL_UNITS, Comparison, VerifyReport

INT8_LIMIT_WIDENING = 1.25  # random inputs reach a quarter past the input codes' range: saturation is tested


def expected_outputs(model: Any, net: Network, limits: Any = None) -> tuple[str, Callable[[np.ndarray], np.ndarray]]:
    """(label, ``f(float rows) -> float32 outputs``): what the float wrapper must return bit
    for bit: LiteRT's reference kernels on an int8 .tflite, else the plan's NumPy mirror."""
    from .peers import int8_tflite_peer

    plan = int8_plan(net)
    peer = None if _calibrated(net) else int8_tflite_peer(model, net, limits)
    if peer is not None:
        return peer.label, peer.predict
    return "the int8 plan's NumPy mirror", lambda x: plan.output.dequantize(run_int8(plan, plan.input.quantize(x)))


def _calibrated(net: Network) -> bool:
    return any(note.startswith("int8: post-training quantisation") for note in net.notes)


def default_domain(net: Network) -> tuple[list[float], list[float]]:
    """The real range the input codes cover, widened by a quarter (saturation tested too)."""
    p = int8_plan(net).input
    low, high = p.scale * (-128 - p.zero_point), p.scale * (127 - p.zero_point)
    middle, half = (low + high) / 2, (high - low) / 2 * INT8_LIMIT_WIDENING
    return [middle - half] * net.n_inputs, [middle + half] * net.n_inputs


def _bits(label: str, actual: np.ndarray, expected: np.ndarray) -> Comparison:
    actual, expected = np.asarray(actual, np.float32), np.asarray(expected, np.float32).reshape(np.shape(actual))
    differing = int(np.any(actual.view(np.uint32) != expected.view(np.uint32), axis=1).sum())
    error = float(np.abs(actual.astype(np.float64) - expected).max(initial=0.0))
    note = f" ({differing} rows differ)" if differing else ""
    return Comparison(label + note, error, float("nan"), float("nan"), "int8", "bit-identical", differing == 0)


def _information(label: str, actual: np.ndarray, expected: np.ndarray, softmax: bool) -> list[Comparison]:
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64).reshape(np.shape(actual))
    rows = [Comparison(label, float(np.abs(actual - expected).max()), float("nan"), float("nan"), "int8",
                       "(information: quantisation error)", None)]
    if softmax or actual.shape[1] > 1:
        agree = float(np.mean(actual.argmax(axis=1) == expected.argmax(axis=1)))
        rows.append(Comparison(f"{label.split(' vs ')[0]} classes (argmax) agree with it: {100 * agree:.2f}%",
                               1.0 - agree, float("nan"), float("nan"), "int8", "(information)", None))
    return rows


def verify_int8(model: Any, net: Network, *, n: int = 1000, domain: Any = None, data: Any = None, seed: int = 0,
                name: str = "mlp", limits: Any = None, core: Optional[str] = None,
                peer: Any = None) -> tuple[VerifyReport, Optional[float]]:
    """(report, instructions per inference on ``core`` or None): the int8 C of ``net`` (read
    from ``model``, or quantised by --calibrate) on ``n`` rows of ``data`` or random in ``domain``
    (default: the input codes' range, a quarter past it) against :func:`expected_outputs`."""
    from ..core.reference import evaluate

    if domain is None and data is None:
        domain = default_domain(net)
    x, (lo, hi), source = draw_inputs(net.n_inputs, n, domain, None, data, seed)
    label, expected = expected_outputs(model, net, limits)
    want = expected(x)
    instructions = None
    if core is None:
        from ..runtime import compile_c

        function = compile_c(net, dtype="int8", name=name)
        outputs = np.asarray(function(x))
        singles = np.stack([np.asarray(function(row)) for row in x[: min(len(x), 64)]])
        where = "c int8"
        checks = [_bits(f"{where} vs {label}", outputs, want),
                  _bits(f"{where} one-sample calls vs batch", singles, outputs[: len(singles)])]
    else:
        from concurrent.futures import ThreadPoolExecutor

        from .cortex import Options, run_on_core, run_on_host
        from ..runtime import cross

        options = Options(dtype="int8", name=name)
        with ThreadPoolExecutor(max_workers=2) as pool:
            ran, host = pool.submit(run_on_core, net, x, core, options), pool.submit(run_on_host, net, x, options)
            ran, host = ran.result(), host.result()
        outputs, instructions = ran.outputs, ran.instructions
        where = f"c int8 on {core} ({cross.core(core).machine})"
        checks = [_bits(f"{where} vs {label}", outputs, want),
                  _bits(f"{where} vs host build", outputs, host.outputs)]
    softmax = net.layers[-1].activation.name == "softmax"
    checks += _information(f"{where} vs reference (float64)", outputs, evaluate(net, x.astype(np.float64)), softmax)
    if peer is not None:
        from .peers import as_peer

        found = as_peer(peer)
        checks += _information(f"{where} vs {found.label}", outputs, np.asarray(found.predict(x)), softmax)[:1]
    report = VerifyReport(net.describe(), "c" if core is None else f"c (embedded, {core})", "int8", len(x),
                          (lo, hi), checks, units=MODEL_UNITS, source=source)
    return report, instructions
