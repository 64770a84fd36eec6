"""Command line: ``mlpcodegen convert|verify|demo``.

Exit codes: 0 success, 1 a conversion or verification that failed, 2 bad usage.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

from .errors import MlpCodegenError

SEED_MODEL = Path(__file__).resolve().parent.parent / "generated" / "seed" / "seed.keras"


def _quiet_tensorflow() -> None:
    # TensorFlow prints start-up banners on stderr; keep the tool's output readable.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _default_name(model: str) -> str:
    name = re.sub(r"\W", "_", Path(model).stem) or "mlp"
    return "mlp_" + name if name[0].isdigit() else name


# ------------------------------------------------------------------- commands


def _target_options(args: argparse.Namespace, backend, load: bool = False) -> dict:
    """The target's emit options the command line sets (``--unroll`` for c, ...).
    ``load``: only those its loader takes too (LaTeX digits are emit-only)."""
    import inspect

    keys = [key for key in backend.options if hasattr(args, key)]
    if load and backend.load is not None:
        keys = [key for key in keys if key in inspect.signature(backend.load).parameters]
    return {key: getattr(args, key) for key in keys}


def cmd_convert(args: argparse.Namespace) -> int:
    from . import backends
    from ._files import write_atomic
    from .frontends.keras import load

    started = time.perf_counter()
    net = _scaled(load(args.model), args)
    name = args.name or _default_name(args.model)
    backend = backends.get_backend(args.target)
    options = _target_options(args, backend)
    source = backends.emit(net, args.target, dtype=args.dtype, name=name, **options)
    if args.output in (None, "-"):
        sys.stdout.write(source)
        return 0
    write_atomic(args.output, source)
    written = [args.output]
    if args.header:
        if backend.header is None:
            raise MlpCodegenError(f"target {args.target!r} has no header")
        header = str(Path(args.output).with_suffix(".h"))
        write_atomic(header, backend.header(net, dtype=args.dtype or backend.dtypes[0], name=name, **options))
        written.append(header)
    elapsed = time.perf_counter() - started
    print(f"{net.describe()} -> {', '.join(written)} ({elapsed * 1e3:.0f} ms)", file=sys.stderr)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    _quiet_tensorflow()
    from .harness.verify import verify

    from .backends import get_backend

    domain = tuple(args.domain) if args.domain else None
    inputs, outputs = _scalings(args)
    dtype = args.dtype or get_backend(args.target).dtypes[0]
    report = verify(args.model, args.target, dtype, n=args.n, domain=domain, seed=args.seed,
                    input_scaling=inputs, output_scaling=outputs,
                    options=_target_options(args, get_backend(args.target), load=True))
    print(report.table(), end="")
    if not report.ok:
        print("verification FAILED: an error exceeds its bound", file=sys.stderr)
        return 1
    return 0


def cmd_formula(args: argparse.Namespace) -> int:
    import numpy as np

    from .backends.latex import emit_latex, rounding_error
    from .backends.sympy import emit_sympy, expression_strings, input_names
    from .frontends.keras import load
    from .harness.verify import random_inputs

    net = _scaled(load(args.model), args)
    if args.style in ("numpy", "python"):
        names = ["y"] if net.n_outputs == 1 else [f"y{j}" for j in range(net.n_outputs)]
        for left, right in zip(names, expression_strings(net, args.style, digits=args.digits)):
            print(f"{left} = {right}")
    elif args.style == "sympy":
        print(emit_sympy(net, name="formula"), end="")
    else:
        print(emit_latex(net, digits=args.digits, expand=args.expand, layout=args.layout), end="")
    lo, hi = args.domain or (-1.0, 1.0)
    if args.digits is not None:
        grid = random_inputs(net.n_inputs, 4000, np.full(net.n_inputs, lo), np.full(net.n_inputs, hi))
        error = rounding_error(net, args.digits, grid)
        print(f"% rounding every weight to {args.digits} significant digits changes the output by at most "
              f"{error:.3g} on [{lo:g}, {hi:g}]^{net.n_inputs} ({', '.join(input_names(net))})", file=sys.stderr)
    if args.png:
        from .plot import render_png

        render_png(net, args.png, digits=args.digits, expand=args.expand, layout=args.layout, domain=(lo, hi))
        print(f"wrote {args.png}", file=sys.stderr)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    _quiet_tensorflow()
    from .demo import run_demo

    return run_demo(Path(args.model) if args.model else SEED_MODEL)


def cmd_bench(args: argparse.Namespace) -> int:
    _quiet_tensorflow()
    from .frontends.keras import load, load_keras_model
    from .harness.bench import bench_model
    from .harness.bench_report import targets, write_report

    model_file = Path(args.model)
    net, model = load(model_file), load_keras_model(model_file)
    rows = tuple(args.rows)
    bench = bench_model(model, net, model_file.stem, rows=rows, quick=args.quick, model_file=model_file)
    out = Path(args.out or f"{model_file.stem}_bench.md")
    command = "mlpcodegen bench " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["bench"] else "mlpcodegen bench"
    png = write_report([bench], rows, out, command, seed_labels=[model_file.stem] if args.tiny else [])
    for what, measured, needed, met in targets(bench, args.tiny):
        print(f"{'ok ' if met else '-- ' if met is None else 'NO '} {what}: {measured} (needed {needed})")
    print(f"wrote {out} and {png}", file=sys.stderr)
    return 0


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _scalings(args: argparse.Namespace):
    """(input, output) Scaling from --scaling FILE and/or --input-*/--output-* flags."""
    from .errors import ValidationError
    from .scaling import Scaling, read_scaling_file

    found = list(read_scaling_file(args.scaling)) if args.scaling else [None, None]
    for i, side in enumerate(("input", "output")):
        minimum, maximum = getattr(args, f"{side}_min"), getattr(args, f"{side}_max")
        mean, std = getattr(args, f"{side}_mean"), getattr(args, f"{side}_std")
        if (minimum is None) != (maximum is None) or (mean is None) != (std is None):
            raise ValidationError(f"give --{side}-min with --{side}-max, and --{side}-mean with --{side}-std")
        if minimum is not None and mean is not None:
            raise ValidationError(f"give either min/max or mean/std scaling for the {side}, not both")
        if minimum is not None:
            found[i] = Scaling.minmax(minimum, maximum)
        elif mean is not None:
            found[i] = Scaling.standard(mean, std)
    return found[0], found[1]


def _scaled(net, args: argparse.Namespace):
    from .scaling import with_scaling

    inputs, outputs = _scalings(args)
    return with_scaling(net, inputs, outputs) if inputs or outputs else net


def _add_scaling_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "scaling", "fold the scaling used in training into the output, so it takes and returns "
                   "original units (min/max scale to [0, 1]; lists are per feature or one value for all)")
    group.add_argument("--scaling", metavar="JSON", help='file with {"input": {...}, "output": {...}}, each '
                       '{"kind": "minmax", "min": [..], "max": [..]} or {"kind": "standard", "mean": [..], "std": [..]}')
    for side in ("input", "output"):
        for stat in ("min", "max", "mean", "std"):
            group.add_argument(f"--{side}-{stat}", type=_floats, metavar="V[,V...]")


# ------------------------------------------------------------------- parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


def _add_c_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--unroll", choices=("auto", "always", "never"), default="auto",
                        help="c: closed form per neuron (always), loops over const arrays (never), or "
                             "by layer shape as measured in bench/UNROLL.md (auto, the default)")
    parser.add_argument("--math", choices=("fast", "libm"), default="fast",
                        help="c: inline exp/expm1/tanh/sigmoid that vectorise, <= 2 ULP from the correctly "
                             "rounded result (fast, the default; float32) or the C library's (libm)")


def _add_formula_options(parser: argparse.ArgumentParser, default_digits: int) -> None:
    group = parser.add_argument_group("formula", "LaTeX and formula output")
    group.add_argument("--digits", type=_digits, default=default_digits,
                       help=f"significant digits of the weights (default {default_digits}; 0 = exact)")
    group.add_argument("--expand", action="store_true", help="write activations in exponentials, not by name")
    group.add_argument("--layout", choices=("auto", "nested", "named"), default="auto",
                       help="one nested expression, or a line per neuron (auto: nested for small networks)")


def _digits(text: str) -> Optional[int]:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value or None


def build_parser() -> argparse.ArgumentParser:
    from .backends import BACKENDS

    parser = argparse.ArgumentParser(
        prog="mlpcodegen", description="Compile trained Keras MLPs into native functions."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    convert = sub.add_parser("convert", help="emit source code for a model",
                             description="Emit source code for a .keras or .h5 model (no TensorFlow needed).")
    convert.add_argument("model", help="path of a .keras or legacy .h5 model")
    convert.add_argument("--target", default="c", choices=sorted(BACKENDS))
    convert.add_argument("--dtype", choices=("float32", "float64"),
                         help="arithmetic type (default: float32 for c, numba, numpy; float64 otherwise)")
    convert.add_argument("--name", help="function name (default: the model file's stem)")
    convert.add_argument("-o", "--output", help="output file (default: standard output)")
    convert.add_argument("--header", action="store_true", help="also write a header next to the output (c)")
    _add_c_options(convert)
    _add_formula_options(convert, default_digits=4)
    convert.add_argument("--rational", action="store_true", help="exact rational weights (sympy)")
    _add_scaling_options(convert)
    convert.set_defaults(run=cmd_convert)

    verify = sub.add_parser("verify", help="check a target against model.predict",
                            description="Compare a compiled target against the float64 reference "
                                        "and model.predict; exit 1 when a tolerance is exceeded.")
    verify.add_argument("model", help="path of a .keras or legacy .h5 model")
    verify.add_argument("--target", default="c", choices=sorted(n for n, b in BACKENDS.items() if b.load))
    verify.add_argument("--dtype", choices=("float32", "float64"), help="default: the target's first")
    verify.add_argument("-n", type=_positive_int, default=1000, help="number of random inputs")
    verify.add_argument("--domain", nargs=2, type=float, metavar=("LOW", "HIGH"),
                        help="input range for every feature (default [-1, 1])")
    verify.add_argument("--seed", type=int, default=0)
    _add_c_options(verify)
    _add_scaling_options(verify)
    verify.set_defaults(run=cmd_verify)

    formula = sub.add_parser("formula", help="print the network as a formula",
                             description="Print the network as a closed-form formula (LaTeX by default) "
                                         "and report what rounding the weights costs.")
    formula.add_argument("model", help="path of a .keras or legacy .h5 model")
    style = formula.add_mutually_exclusive_group()
    for flag in ("latex", "numpy", "python", "sympy"):
        style.add_argument(f"--{flag}", dest="style", action="store_const", const=flag,
                           help=f"print the {flag} form" + (" (default)" if flag == "latex" else ""))
    _add_formula_options(formula, default_digits=3)
    formula.add_argument("--png", metavar="PATH", help="render the formula (and, for one input, a plot) to PNG")
    formula.add_argument("--domain", nargs=2, type=float, metavar=("LOW", "HIGH"),
                         help="input range for the rounding error and the plot (default -1 1)")
    _add_scaling_options(formula)
    formula.set_defaults(run=cmd_formula, style="latex")

    bench = sub.add_parser("bench", help="time every way to run a model, side by side",
                           description="Time model.predict, ONNX Runtime, LiteRT, NumPy and every mlpcodegen "
                                       "target on one model in one process; write a Markdown report and a PNG.")
    bench.add_argument("model", help="path of a .keras or legacy .h5 model")
    bench.add_argument("--out", help="report path (default: MODEL_bench.md; the plot goes next to it as .png)")
    bench.add_argument("--rows", type=_positive_int, nargs="+", default=[10_000, 1_000_000],
                       help="batch sizes for the throughput columns (default: 10000 1000000)")
    bench.add_argument("--quick", action="store_true", help="fewer repeats")
    bench.add_argument("--tiny", action="store_true",
                       help="judge the in-C target as for a tiny network (<= 0.6x the plain C loops)")
    bench.set_defaults(run=cmd_bench)

    demo = sub.add_parser("demo", help="convert, compile, verify and time the bundled seed model",
                          description="Run the whole pipeline on the bundled 1-3-2-1 seed model.")
    demo.add_argument("--model", help=f"model to use instead of {SEED_MODEL.name}")
    demo.set_defaults(run=cmd_demo)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except MlpCodegenError as exc:
        print(f"mlpcodegen {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
