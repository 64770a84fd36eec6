"""Command line for ``mlpcodegen simplify``: a simpler formula for a network on a domain
with its certified error (issue 14; the work is done by :mod:`mlpcodegen.core.simplify`)."""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from typing import Optional

from . import common

MODES = ("exact", "taylor", "chebyshev", "tolerance", "saturate")


def add_simplify(sub) -> None:
    """Add the ``simplify`` command to the subparsers ``sub``."""
    from ..backends import BACKENDS

    p = sub.add_parser("simplify", help="a simpler formula for a model on a domain, with a certified error",
                       description="Write a simpler formula for a model on an input box: exact simplification "
                                   "(--exact), a Chebyshev interpolant (--chebyshev N or --tolerance T), a Taylor "
                                   "polynomial (--taylor N --at X) or saturated units (--saturate --tolerance T), "
                                   "with the certified and the measured max error on the domain.")
    common.add_model_options(p)
    common.add_scaling_options(p)
    p.add_argument("--domain", nargs=2, type=common.floats, metavar=("LOW", "HIGH"),
                   help="the input box, in the units the formula takes (one number for all inputs or one per input, "
                        "comma-separated); default: the input scaling's min/max")
    mode = p.add_argument_group("method (one)")
    mode.add_argument("--exact", action="store_true", help="remove what the domain proves unused: dead ReLU units, "
                      "zero weights, duplicates, always-active layers; one-input ReLU networks become their exact "
                      "piecewise-linear form")
    mode.add_argument("--taylor", type=common.positive_int, metavar="N", help="Taylor polynomial of order N")
    mode.add_argument("--at", type=common.finite, metavar="X", help="the Taylor point (default: the domain's centre)")
    mode.add_argument("--chebyshev", type=_degree(), metavar="N", help="Chebyshev interpolant of degree N")
    mode.add_argument("--tolerance", type=_positive(), metavar="T",
                      help="alone: the lowest-degree Chebyshev interpolant whose certified error is <= T; with "
                           "--taylor: also report where the Taylor polynomial meets T; with --saturate: the budget")
    mode.add_argument("--saturate", action="store_true", help="replace tanh/sigmoid units the domain keeps within "
                      "--tolerance of their limits by constants")
    mode.add_argument("--total-degree", action="store_true", help="several inputs: Chebyshev terms of total degree "
                      "<= N only (default: every degree <= N in each input)")
    p.add_argument("--target", default="python", choices=sorted(BACKENDS), metavar="TARGET",
                   help=common.target_help(BACKENDS, "python", "the language of the simplified formula"))
    p.add_argument("--dtype", default=None, help="the target's number type (default: its first)")
    p.add_argument("--name", help="function name (default: from the model file's name)")
    p.add_argument("-o", "--output", metavar="FILE", help="the simplified formula in the target (default: stdout)")
    p.add_argument("--digits", type=common.digits, default=4,
                   help="significant digits of the printed formula, at least (default 4; more when its certified "
                        "bound needs them; 0 = exact)")
    p.add_argument("--png", metavar="PNG", help="one-input models: network vs simplified formula and the error")
    p.add_argument("--check", type=common.positive_int, metavar="N", help="run the written target on N random "
                   "points of the domain and check its error against the original network is within the "
                   "certified bound plus the target's rounding (exit 1 if not); c, numba, numpy, python")
    common.add_mkdir_option(p)
    p.set_defaults(run=lambda args: run_simplify(args))


def _positive():
    def parse(text: str) -> float:
        value = common.finite(text)
        if not value > 0:
            raise argparse.ArgumentTypeError("must be a positive number")
        return value
    return parse


def _degree():
    def parse(text: str) -> int:
        from ..core.ir import MAX_POLYNOMIAL_DEGREE

        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if not 0 <= value <= MAX_POLYNOMIAL_DEGREE:
            raise argparse.ArgumentTypeError(f"must be in [0, {MAX_POLYNOMIAL_DEGREE}]")
        return value
    return parse


def _mode(args) -> str:
    chosen = [m for m in ("exact", "taylor", "chebyshev", "saturate") if getattr(args, m) not in (None, False)]
    if len(chosen) > 1:
        raise common.UsageError(f"choose one method, not {' and '.join('--' + m for m in chosen)}")
    if args.at is not None and "taylor" not in chosen:
        raise common.UsageError("--at is the Taylor point: give it with --taylor N")
    if not chosen:
        if args.tolerance is None:
            raise common.UsageError("choose a method: --exact, --taylor N, --chebyshev N, --tolerance T or "
                                    "--saturate --tolerance T")
        return "tolerance"
    if chosen[0] in ("exact", "chebyshev") and args.tolerance is not None:
        raise common.UsageError(f"--tolerance does not go with --{chosen[0]}")
    if chosen[0] == "saturate" and args.tolerance is None:
        raise common.UsageError("--saturate needs --tolerance T (how far from its limit a unit may be)")
    return chosen[0]


def _box(args, net) -> tuple[list[float], list[float]]:
    domain = common.given_domain(args, net.n_inputs)
    if domain is not None:
        return [float(v) for v in domain[0]], [float(v) for v in domain[1]]
    box = common.scaling_box(args, net.n_inputs)
    if box is not None:
        return box
    raise common.UsageError("simplify needs the domain: --domain LOW HIGH (or a min/max input scaling)")


def _check_png(args, net) -> None:
    if args.png and net.n_inputs != 1:
        raise common.UsageError(f"--png draws one-input models; this one has {net.n_inputs} inputs")


def run_simplify(args) -> int:
    from ..core._files import check_outputs, write_all
    from ..backends import emit, get_backend

    mode = _mode(args)
    from ..runtime import LOADERS  # the targets that run in this process: --check runs one

    if args.check and args.target not in LOADERS:
        raise common.UsageError(f"--check runs the target: use one of {', '.join(LOADERS)}, not {args.target}")
    backend = get_backend(args.target)
    dtype = args.dtype or backend.dtypes[0]
    if dtype not in backend.dtypes:
        raise common.UsageError(f"target {args.target!r} supports --dtype {' or '.join(backend.dtypes)}, not {dtype}")
    to_stdout = args.output in (None, "-")
    outputs = ([] if to_stdout else [args.output]) + ([args.png] if args.png else [])
    if outputs:
        common.refuse_overwriting_inputs(args, outputs)
        check_outputs(outputs, mkdir=args.mkdir)
    name = common.function_name(args, args.target)  # a bad --name: said before any work
    net = common.scaled(common.load(args), args)
    _check_png(args, net)
    lower, upper = _box(args, net)
    result = _SIMPLIFY[mode](args, net, lower, upper)
    code = emit(result.network, args.target, dtype=dtype, name=name)
    report = sys.stderr if to_stdout else sys.stdout
    print(_summary(net, result, lower, upper, args.digits), file=report)
    if args.png:
        from .plot import write_simplify_png

        write_simplify_png(net, result.network, lower[0], upper[0], result.title, args.png, mkdir=args.mkdir,
                           bound=result.certified)
    if to_stdout:
        sys.stdout.write(code)
    else:
        write_all({args.output: code}, mkdir=args.mkdir)
    return _check(args, net, result, lower, upper, dtype, name, report)


def _check(args, net, result: "Simplified", lower, upper, dtype: str, name: str, report) -> int:
    """``--check N``: the target against the original network (certified bound + rounding)."""
    if not args.check:
        return 0
    from ..harness.approximation import verify_target

    checked = verify_target(net, result.network, args.target, dtype, lower, upper, result.certified or 0.0,
                            samples=args.check, name=name)
    print(checked.line(), file=report)
    if not checked.ok:
        print("check FAILED: the target errs more than its certificate allows", file=sys.stderr)
        return 1
    return 0


class Simplified:
    """What a method produced: the network to emit, a title, and lines of report."""

    def __init__(self, network, title: str, lines: list[str], certified: Optional[float] = None) -> None:
        self.network, self.title, self.lines, self.certified = network, title, lines, certified


def _noted(network, lines: list[str]):
    return replace(network, notes=network.notes + tuple(lines))


def _approximation(approx, extra: Optional[list[str]] = None) -> Simplified:
    lines = (extra or []) + [approx.method, approx.errors.line()]
    note = (f"certified max error {approx.errors.certified:.6g} on the box {list(approx.lower)} .. "
            f"{list(approx.upper)} (measured {approx.errors.measured:.6g})")
    return Simplified(_noted(approx.network, [note]), approx.method, lines, approx.errors.certified)


def _chebyshev(args, net, lower, upper) -> Simplified:
    from ..core.simplify import chebyshev

    return _approximation(chebyshev(net, lower, upper, args.chebyshev, args.total_degree))


def _tolerance(args, net, lower, upper) -> Simplified:
    from ..core.simplify import for_tolerance

    return _approximation(for_tolerance(net, lower, upper, args.tolerance, total=args.total_degree))


def _taylor(args, net, lower, upper) -> Simplified:
    from ..core.simplify.chebyshev import Approximation
    from ..core.simplify.certify import error_report
    from ..core.simplify.taylor import taylor, tolerance_interval

    at = args.at if args.at is not None else (lower[0] + upper[0]) / 2
    result = taylor(net, at, args.taylor, lower[0], upper[0])
    errors = error_report(net, result.network, lower, upper)
    lines = [result.claim]
    if args.tolerance is not None:
        lines.append(tolerance_interval(net, result, args.tolerance, lower[0], upper[0]))
    approx = Approximation(result.network, tuple(lower), tuple(upper), errors,
                           f"Taylor polynomial of order {args.taylor} at x = {at:g}")
    return _approximation(approx, lines)


def _saturate(args, net, lower, upper) -> Simplified:
    from ..core.simplify.saturation import saturate

    result = saturate(net, lower, upper, args.tolerance)
    note = f"certified max error {result.errors.certified:.6g} on the box {lower} .. {upper}"
    return Simplified(_noted(result.network, [note]), "saturated units", [result.line(), result.errors.line()],
                      result.errors.certified)


def _exact(args, net, lower, upper) -> Simplified:
    from ..core.errors import UnsupportedError
    from ..core.simplify.exact import piecewise_linear, simplify_exact

    result = simplify_exact(net, lower, upper)
    lines = [result.line()]
    simplified = result.network
    if net.n_inputs == 1:
        try:
            pieces = piecewise_linear(net, lower[0], upper[0])
        except UnsupportedError as error:
            lines.append(f"no piecewise-linear form: {error}")
        else:
            simplified = pieces.network(net)
            lines.append(f"exact piecewise-linear form: {len(pieces.breakpoints)} breakpoints, "
                         f"{len(pieces.breakpoints) + 1} pieces")
    note = f"exact on the box {lower} .. {upper} (same outputs up to float rounding)"
    return Simplified(_noted(simplified, [note]), "exact simplification", lines)


_SIMPLIFY = {"exact": _exact, "taylor": _taylor, "chebyshev": _chebyshev, "tolerance": _tolerance,
             "saturate": _saturate}


def _summary(net, result: Simplified, lower, upper, digits: int) -> str:
    from ..core.errors import MlpCodegenError
    from ..core.simplify.size import formula_size

    before, after = formula_size(net), formula_size(result.network)
    lines = [f"{net.describe()} on {lower} .. {upper}"] + result.lines
    lines += [f"size: {before.line()} -> {after.line()}"]
    try:
        from ..backends.latex import latex_equations

        shown, heading = _shown_digits(net, result, lower, upper, digits)
        equations = latex_equations(result.network, digits=shown)
        lines += [heading] + [f"  {left} = {right}" for left, right in equations]
    except MlpCodegenError as error:
        lines.append(f"(formula not printed: {error})")
    return "\n".join(lines)


#: The printed formula's own certified error may exceed the method's by this factor
#: before more digits are printed.
SHOWN_SLACK = 1.05
#: Most significant digits printed (float64 round-trips with 17).
MAX_DIGITS = 17


def _shown_digits(net, result: Simplified, lower, upper, digits: Optional[int]) -> tuple[Optional[int], str]:
    """(digits to print, the heading naming them and what the printed formula errs by).

    The printed formula is the network with its numbers rounded to ``digits`` significant
    digits, which errs more than the certified approximation (a polynomial's large
    alternating coefficients cancel: 4 digits of the seed's degree-11 one cost 7x its
    bound).  With a certified bound, digits are added from ``digits`` up until the
    rounded formula's *own* certified error is within :data:`SHOWN_SLACK` of the bound,
    and that error is printed; else the rounding's measured cost is."""
    import numpy as np

    from ..backends.latex import rounded_network
    from ..core.simplify.certify import measured_error, sample_points

    if digits is None:
        return None, "formula (exact weights):"
    points = sample_points(*(np.asarray(side, dtype=np.float64) for side in (lower, upper)), 4001)
    if result.certified is None:
        error = measured_error(result.network, rounded_network(result.network, digits), points)
        return digits, (f"formula (weights to {digits} significant digits; rounding them changes the output by "
                        f"{error:.3g} at most on {len(points):,} points):")
    goal = result.certified * SHOWN_SLACK
    for shown in range(digits, MAX_DIGITS + 1):
        rounded = rounded_network(result.network, shown)
        if shown < MAX_DIGITS and measured_error(net, rounded, points) > goal:
            continue
        proven = _rounded_error(net, result, rounded, lower, upper, goal)
        if proven <= goal or shown == MAX_DIGITS:
            more = f" (--digits {digits} was not enough)" if shown > digits else ""
            return shown, (f"formula (coefficients to {shown} significant digits{more}; this printed formula's "
                           f"certified max error: {proven:.3g}):")
    raise AssertionError("unreachable: the last digits are always returned")  # pragma: no cover


def _rounded_error(net, result: Simplified, rounded, lower, upper, goal: float) -> float:
    """A proven bound on |network - rounded formula| over the box.  One input: certified
    directly (a few hundred sub-boxes).  Several inputs and a polynomial whose input
    mapping prints exactly: the method's bound plus the coefficients' rounding times the
    largest each basis term reaches on the box (interval arithmetic on the difference of
    two near-equal polynomials loses their dependency, and certifying against the network
    again costs as much as the method's own proof); else certified directly."""
    from ..core.simplify.certify import certified_error

    if net.n_inputs > 1:
        bound = _coefficient_bound(result.network, rounded, lower, upper)
        if bound is not None:
            return result.certified + bound
    return certified_error(net, rounded, lower, upper, goal)[0]


def _coefficient_bound(formula, rounded, lower, upper) -> Optional[float]:
    """sup over the box of |formula - rounded| when both are one Polynomial layer that
    differ in their coefficients only: sum over terms of |coefficient change| times the
    term's largest magnitude (|T_n(t)| <= 1 on [-1, 1], cosh(n arccosh m) beyond; |t|^n);
    None otherwise."""
    import numpy as np

    from ..core.ir import Polynomial

    if len(formula.layers) != 1 or len(rounded.layers) != 1:
        return None
    p, q = formula.layers[0], rounded.layers[0]
    if not (isinstance(p, Polynomial) and isinstance(q, Polynomial) and np.array_equal(p.center, q.center)
            and np.array_equal(p.scale, q.scale) and np.array_equal(p.exponents, q.exponents)):
        return None
    ends = (np.stack([np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)]) - p.center) * p.scale
    reach = np.abs(ends).max(axis=0) * (1 + 1e-12)  # |t| on the box, widened past float rounding
    n = p.exponents.astype(np.float64)
    if p.basis == "monomial":
        largest = reach ** n
    else:
        largest = np.where(reach <= 1.0, 1.0, np.cosh(n * np.arccosh(np.maximum(reach, 1.0))))
    change = np.abs(np.asarray(p.coefficients, dtype=np.float64) - np.asarray(q.coefficients, dtype=np.float64))
    return float((change * largest.prod(axis=1)).sum(axis=1).max() * (1 + 1e-12))
