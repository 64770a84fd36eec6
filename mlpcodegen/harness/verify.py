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

from typing import Any, Optional, Sequence

import numpy as np

from ..core.ir import Network
from ..core.numeric import numeric_type
from ..core.passes import fold_affine
from ..core.reference import evaluate_magnitude
from ..core.scaling import as_scaling, with_scaling
from ..runtime import load
from .inputs import draw_inputs, input_domain
from .peers import as_peer
from .report import (MODEL_UNITS, ORIGINAL_UNITS, PRECISION_ORDER, Comparison, VerifyReport, check, fixed_checks,
                     peer_network, peer_outputs, within_domain)


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
    / ``.csv`` path (see :func:`~mlpcodegen.harness.inputs.read_inputs`).  Both are in
    the units the target takes: original units when input scaling is given, else the model's.  ``options`` are the
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
    computed_net = network if network is not None else peer_network(peer)
    model_net = network if network is not None else fold_affine(computed_net)
    inputs, outputs = as_scaling(input_scaling), as_scaling(output_scaling)
    net = with_scaling(model_net, inputs, outputs)
    fixed = numeric_type(dtype).is_fixed
    planned = None  # fixed point with data and a domain: the domain plans, the data tests
    if fixed and data is not None and domain is not None:
        planned, domain = input_domain(net.n_inputs, domain), None
    x, (lo, hi), source = draw_inputs(net.n_inputs, n, domain, sample, data, seed)  # bad inputs: refused before TF
    if planned is not None:
        lo, hi = planned
    # Magnitudes of the unfolded chain: the scaled inputs the peer sees are rounded too.
    reference, scale = evaluate_magnitude(with_scaling(computed_net, inputs, outputs, fold=False), x)
    predicted, predict_dtype = peer_outputs(peer, x, inputs, outputs)
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
        report.comparisons.append(check(f"{label} one-sample calls vs batch", singles, batch[: len(singles)],
                                         scale[: len(singles)], "float32"))
        return report
    # Compared with the peer, the coarser of the two types sets the unit.
    worst = max(dtype, predict_dtype, key=PRECISION_ORDER.index)
    report.comparisons += [
        check(f"{label} vs reference (float64)", batch, reference, scale, dtype),
        check(f"{label} vs {peer.label}", batch, predicted, scale, worst, floor=peer.magnitude_floor),
        check(f"{label} one-sample calls vs batch", singles, batch[: len(singles)], scale[: len(singles)], dtype),
        check(f"{peer.label} vs reference", predicted, reference, scale, predict_dtype, checked=False,
               floor=peer.magnitude_floor),
    ]
    return report
