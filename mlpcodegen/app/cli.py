"""Command line: ``mlpcodegen convert|verify|formula|bench|demo|size|simplify``.

Exit codes: 0 success, 1 a conversion or verification that failed (the model, an input
or an output file), 2 bad usage.  Every error is one line,
``mlpcodegen COMMAND: error: ...``; never a traceback (set ``MLPCODEGEN_TRACEBACK=1``
to see one for an unexpected error).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

from .. import __version__
from ..core.errors import MlpCodegenError
from . import common

SEED_MODEL = Path(__file__).resolve().parents[2] / "generated" / "seed" / "seed.keras"


# ------------------------------------------------------------------- TensorFlow


# ------------------------------------------------------------------- names


# ------------------------------------------------------------------- commands


def cmd_convert(args: argparse.Namespace) -> int:
    from .. import backends
    from ..core._files import check_outputs, write_all

    started = time.perf_counter()
    backend = backends.get_backend(args.target)
    to_stdout = args.output in (None, "-")
    header = None if to_stdout else common.header_path(args)
    if not to_stdout:  # a bad path fails before any work, and nothing is written
        common.refuse_overwriting_inputs(args, [args.output, header])
        check_outputs([args.output] + ([header] if header else []), mkdir=args.mkdir)
    name = common.function_name(args, args.target)  # a bad --name too
    net = common.scaled(common.load(args), args)
    dtype = args.dtype or backend.dtypes[0]
    if args.core or args.arduino:  # C for a microcontroller core, or an Arduino library (cli_embedded)
        from .cli_embedded import convert_for_core

        return convert_for_core(args, net, name, dtype)
    options = common.target_options(args, backend)
    if "domain" in options:  # the input domain fixed-point formats are planned for
        options["domain"] = common.fixed_domain(args, net.n_inputs, dtype)
    files = {args.output: backends.emit(net, args.target, dtype=dtype, name=name, **options)}
    if header is not None:
        files[header] = backend.header(net, dtype=dtype, name=name, **options)
    if to_stdout:
        sys.stdout.write(files[args.output])
        sys.stdout.flush()
        return 0
    written = write_all(files, mkdir=args.mkdir)
    elapsed = time.perf_counter() - started
    print(f"{net.describe()} -> {', '.join(map(str, written))} ({elapsed * 1e3:.0f} ms)", file=sys.stderr)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from ..backends import get_backend

    net = common.load(args)  # bounded read (and clear errors) before TensorFlow opens the file
    backend = get_backend(args.target)
    dtype = args.dtype or backend.dtypes[0]
    if dtype == "int8":  # bit for bit against LiteRT's reference kernels (or the plan's mirror)
        return _verify_int8(args, net)
    domain = common.fixed_domain(args, net.n_inputs, dtype, data=bool(args.data)) or common.given_domain(args, net.n_inputs)
    inputs, outputs = common.scalings(args)
    common.check_data(args, net.n_inputs)  # a bad file is refused before TensorFlow loads
    if args.core:  # on an emulated Cortex-M core (qemu), not in this process
        from .cli_embedded import verify_on_core

        return verify_on_core(args, net, domain)
    from ..frontends import file_format

    if file_format(args.model).name == "keras":  # its peer is model.predict
        common.import_tensorflow_quietly()
    from ..harness.verify import verify
    from ..core.limits import ReadLimits

    report = verify(args.model, args.target, dtype, n=args.n, domain=domain,
                    data=args.data, seed=args.seed, input_scaling=inputs, output_scaling=outputs,
                    options=common.target_options(args, backend, load=True), weights=args.weights,
                    limits=ReadLimits.for_size(args.max_size))
    print(report.table(), end="")
    if not report.ok:
        print("verification FAILED: an error exceeds its bound", file=sys.stderr)
        return 1
    return 0


def _verify_int8(args: argparse.Namespace, net) -> int:
    from ..harness.verify_int8 import verify_int8
    from ..core.limits import ReadLimits

    if args.core:  # the same checks as every verify --core, before any work
        from .cli_embedded import MAX_CORE_ROWS, require_toolchain
        from ..runtime.cores import core as core_entry

        if args.n > MAX_CORE_ROWS:
            raise common.UsageError(f"--core runs at most {MAX_CORE_ROWS} inputs (-n): they are compiled into the image")
        if not core_entry(args.core).emulated:
            raise common.UsageError(f"{args.core} has no emulator: use mlpcodegen size --core {args.core}")
        require_toolchain(args.core, emulator=True)
    common.check_data(args, net.n_inputs)
    peer = None
    if getattr(args, "calibrate", None):  # the float model's own framework, for information
        from ..frontends import file_format
        from ..harness.peers import as_peer

        if file_format(args.model).name == "keras":
            common.import_tensorflow_quietly()
        peer = as_peer(args.model, weights=args.weights, limits=ReadLimits.for_size(args.max_size))
    report, instructions = verify_int8(args.model, net, n=args.n, domain=common.given_domain(args, net.n_inputs),
                                       data=args.data, seed=args.seed, limits=ReadLimits.for_size(args.max_size),
                                       core=args.core, peer=peer)
    print(report.table(), end="")
    if instructions is not None:
        from .cli_embedded import count_line

        print(count_line(args.core, instructions))
    if not report.ok:
        print("verification FAILED: an output differs from what defines its bits", file=sys.stderr)
        return 1
    return 0


def cmd_formula(args: argparse.Namespace) -> int:
    from ..core._files import check_outputs

    if args.png and args.png != "-":
        common.refuse_overwriting_inputs(args, [args.png])
        check_outputs([args.png], mkdir=args.mkdir)
    lo, hi = args.domain or (-1.0, 1.0)
    if not lo <= hi:  # bad usage: said before any work
        raise common.UsageError(f"--domain: LOW {lo:g} is above HIGH {hi:g}")
    net = common.scaled(common.load(args), args)
    if args.png:  # a formula too large to draw: refused before the text is printed
        from .plot import check_drawable

        check_drawable(net, args.digits, args.expand, args.layout)
    if args.png != "-":  # with --png -, standard output is the picture alone
        _print_formula(net, args)
    if args.digits is not None:
        import numpy as np

        from ..backends.latex import rounding_error
        from ..backends.sympy import input_names
        from ..harness.inputs import random_inputs

        grid = random_inputs(net.n_inputs, 4000, np.full(net.n_inputs, lo), np.full(net.n_inputs, hi))
        error = rounding_error(net, args.digits, grid)
        print(f"% rounding every weight to {args.digits} significant digits changes the output by at most "
              f"{error:.3g} on [{lo:g}, {hi:g}]^{net.n_inputs} ({', '.join(input_names(net))})", file=sys.stderr)
    if args.png:
        _write_png(net, args, (lo, hi))
    return 0


def _print_formula(net, args: argparse.Namespace) -> None:
    from ..backends.latex import emit_latex
    from ..backends.sympy import emit_sympy, expression_strings

    if args.style in ("numpy", "python"):
        names = ["y"] if net.n_outputs == 1 else [f"y{j}" for j in range(net.n_outputs)]
        for left, right in zip(names, expression_strings(net, args.style, digits=args.digits)):
            print(f"{left} = {right}")
    elif args.style == "sympy":
        print(emit_sympy(net, name="formula"), end="")
    else:
        print(emit_latex(net, digits=args.digits, expand=args.expand, layout=args.layout), end="")


def _write_png(net, args: argparse.Namespace, domain: tuple[float, float]) -> None:
    """``--png PATH`` (written atomically by render_png through _files), or ``--png -``:
    the picture's bytes on standard output."""
    import tempfile

    from .plot import render_png

    options = dict(digits=args.digits, expand=args.expand, layout=args.layout, domain=domain)
    if args.png != "-":
        render_png(net, args.png, **options)
        print(f"wrote {args.png}", file=sys.stderr)
        return
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "formula.png"
        render_png(net, path, **options)
        sys.stdout.flush()
        sys.stdout.buffer.write(path.read_bytes())
        sys.stdout.buffer.flush()


def cmd_demo(args: argparse.Namespace) -> int:
    common.import_tensorflow_quietly()
    from .demo import run_demo

    return run_demo(Path(args.model) if args.model else SEED_MODEL, verbosity=args.verbosity, out_dir=args.out)


def cmd_bench(args: argparse.Namespace) -> int:
    from ..core._files import check_outputs

    model_file = Path(args.model)
    out = Path(args.out or f"{model_file.stem}_bench.md")
    outputs = [out] if args.target else [out, out.with_suffix(".png")]
    common.refuse_overwriting_inputs(args, outputs)
    check_outputs(outputs, mkdir=args.mkdir)  # before the timing
    net = common.load(args)
    if args.target:  # the languages run as subprocesses, against C, any model format
        return _bench_languages(args, net, out)
    from ..frontends import file_format

    fmt = file_format(model_file)
    if fmt.name != "keras":
        raise common.UsageError(f"bench times a Keras model beside model.predict, LiteRT and ONNX Runtime; {model_file} "
                                f"is read as {fmt.title}: time its C beside the languages with --target js rust go java "
                                "wasm (any format), or check it against its framework with verify")
    common.import_tensorflow_quietly()
    from ..harness.keras_model import load_keras_model
    from ..harness.bench import bench_model
    from ..harness.bench_report import summary_lines, write_report

    keras_model = load_keras_model(model_file, weights=args.weights)
    bench = bench_model(keras_model, net, model_file.stem, rows=tuple(args.rows), quick=args.quick,
                        model_file=model_file)
    command = "mlpcodegen bench " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["bench"] else "mlpcodegen bench"
    png = write_report([bench], tuple(args.rows), out, command)
    for line in summary_lines(bench):
        print(line)
    print(f"wrote {out} and {png}", file=sys.stderr)
    return 0


def _bench_languages(args: argparse.Namespace, net, out: Path) -> int:
    from ..core._files import write_all
    from ..core.numeric import numeric_type
    import numpy as np

    from ..runtime.subprocess_peer import C_NATIVE, C_PORTABLE, time_targets

    numeric = numeric_type(args.dtype or "float32")
    rows = min(args.rows[0], 10_000)
    x = np.random.default_rng(0).uniform(-1.0, 1.0, (rows, net.n_inputs))
    calls, rounds = (20_000, 1) if args.quick else (200_000, 5)
    times = time_targets(net, tuple(args.target), x, numeric, calls=calls, rounds=rounds)
    lines = [f"# {Path(args.model).name}: {net.describe()}, {numeric.name}", "",
             f"Each program times itself (after a warm-up; median of {rounds} interleaved rounds): one sample = ns per "
             f"call over {rows} rows in turn, batch = rows/s of the batch function. C native: "
             f"`gcc {' '.join(C_NATIVE)}`; C portable: `gcc {' '.join(C_PORTABLE)}` (x86-64 baseline).", "",
             "| program | one sample ns | ÷ C native | ÷ C portable | batch rows/s |", "|---|---|---|---|---|"]
    for key, (one, rate) in times.items():
        lines.append(f"| {key} | {one:.1f} | {one / times['c'][0]:.2f} | {one / times['c portable'][0]:.2f} | "
                     f"{rate:.3g} |")
    write_all({out: "\n".join(lines) + "\n"}, mkdir=args.mkdir)
    print("\n".join(lines[4:]))
    print(f"wrote {out}", file=sys.stderr)
    return 0


# ------------------------------------------------------------------- scaling flags


# ------------------------------------------------------------------- usage checks


def _check_dtype(args: argparse.Namespace) -> None:
    from ..backends import get_backend

    dtypes = get_backend(args.target).supported
    if args.dtype is not None and args.dtype not in dtypes:
        raise common.UsageError(f"target {args.target!r} supports --dtype {' or '.join(dtypes)}, not {args.dtype}")


def _check_convert(args: argparse.Namespace) -> None:
    from ..backends import BACKENDS, get_backend

    _check_dtype(args)
    common.check_int8(args)
    common.check_c_shape_options(args)
    fixed = get_backend(args.target).fixed_dtypes
    if args.domain and args.dtype not in fixed:
        with_fixed = [f"--target {name} --dtype {' or '.join(b.fixed_dtypes)}" for name, b in BACKENDS.items() if b.fixed_dtypes]
        raise common.UsageError(f"--domain plans fixed-point formats: it goes with {' or '.join(with_fixed)}, not "
                                f"--target {args.target} --dtype {args.dtype or get_backend(args.target).dtypes[0]}")
    common.require_fixed_domain(args, args.dtype)
    if args.header:
        with_header = [name for name, backend in BACKENDS.items() if backend.header is not None]
        if BACKENDS[args.target].header is None:
            raise common.UsageError(f"target {args.target!r} has no header; --header is for {', '.join(with_header)}")
        if args.output in (None, "-"):
            raise common.UsageError("--header needs -o FILE (the header is written next to it, as FILE's name with "
                                    ".h; js: .d.ts, .d.mts for a .mjs)")
    if args.mkdir and args.output in (None, "-"):
        raise common.UsageError("--mkdir needs -o FILE")
    common.check_target_options(args)


def _check_verify(args: argparse.Namespace) -> None:
    _check_dtype(args)
    common.check_int8(args)
    common.check_target_options(args, not_target=("domain",))  # verify's --domain draws the inputs
    if args.dtype == "int8" and args.target != "c":
        raise common.UsageError("--dtype int8 is the C target's")
    if args.domain and args.data and not common.is_fixed(args.dtype):
        raise common.UsageError("--domain draws random inputs and --data gives them: choose one (both only with a "
                         "fixed-point --dtype: the domain plans its formats, the data tests them)")
    if args.domain and args.data and args.core:
        raise common.UsageError("--core tests on --domain or on --data, not both")
    common.require_fixed_domain(args, args.dtype, data=bool(args.data))
    if not args.core and (args.profile != "desktop" or args.optimize != "speed"):
        raise common.UsageError("the embedded profile has no batch function to call here: verify it on an emulated "
                         "core with --core m0plus|m4f|m7")


def _check_bench(args: argparse.Namespace) -> None:
    if args.target:  # the languages with a subprocess toolchain (the runtime's table, not a list kept here)
        from ..runtime.subprocess_peer import TOOLCHAINS

        unknown = [target for target in args.target if target not in TOOLCHAINS]
        if unknown:
            raise common.UsageError(f"bench --target times {', '.join(TOOLCHAINS)}, not {', '.join(unknown)}")
    elif args.dtype:
        raise common.UsageError("--dtype goes with --target (the Keras bench times every dtype)")


_USAGE_CHECKS: dict[str, Callable[[argparse.Namespace], None]] = {
    "convert": _check_convert,
    "verify": _check_verify,
    "bench": _check_bench,
}


# ------------------------------------------------------------------- parser


def _add_convert(sub, backends: dict, dtypes: Sequence[str]) -> None:
    from ..frontends import FORMATS

    files = ", ".join(fmt.title for fmt in FORMATS if fmt.suffixes)
    convert = sub.add_parser("convert", help="emit source code for a model",
                             description=f"Emit source code for a model file ({files}; reading it needs no "
                                         "TensorFlow or torch).")
    common.add_model_options(convert)
    convert.add_argument("--target", default="c", choices=sorted(backends), metavar="TARGET",
                         help=common.target_help(backends, "c"))
    convert.add_argument("--dtype", choices=dtypes,
                         help="arithmetic type: one the target lists under --target (default: its first)")
    convert.add_argument("--name", help="function name (default: from the model file's name, made a usable "
                                        "identifier, e.g. predict_m1 for m1.keras)")
    convert.add_argument("-o", "--output", help="output file, replaced atomically (default or '-': standard "
                                                "output); a symbolic link's target is written")
    convert.add_argument("--header", action="store_true", help="also write a header next to the output, "
                                                               "named as it with .h (c), or TypeScript declarations "
                                                               "(js: .d.mts beside a .mjs, else .d.ts); needs -o")
    common.add_mkdir_option(convert)
    common.add_c_options(convert)
    convert.add_argument("--domain", nargs=2, type=common.floats, metavar=("LOW", "HIGH"),
                         help="with --dtype q15 (required, unless a min/max input scaling gives it): the inputs' "
                              "range the fixed-point formats are planned for (one number for every input, or one "
                              "per input, comma-separated); outside it values saturate")
    common.add_calibrate_option(convert)
    convert.add_argument("--rounding", choices=("single", "double"), help="with --dtype int8: how requantisation "
                         "rounds: single (default; the pip LiteRT interpreter's) or double (TensorFlow Lite Micro's "
                         "and CMSIS-NN's)")
    common.add_formula_options(convert, default_digits=4)
    convert.add_argument("--rational", action="store_true", help="exact rational weights (sympy)")
    convert.add_argument("--core", choices=common.CORES, help="c: the embedded C for this core (atmega328p: weights in flash)")
    convert.add_argument("--arduino", metavar="DIR", help="c: write an Arduino library to DIR (atmega328p by default)")
    common.add_scaling_options(convert)
    convert.set_defaults(run=cmd_convert)


def _add_verify(sub, runnable: Sequence[str], dtypes: Sequence[str]) -> None:
    verify = sub.add_parser("verify", help="check a target against the model's framework",
                            description="Compare a compiled target against the float64 reference and the "
                                        "model's own framework (model.predict, ONNX Runtime, ...); exit 1 "
                                        "when a tolerance is exceeded.")
    common.add_model_options(verify)
    verify.add_argument("--target", default="c", choices=sorted(runnable), metavar="TARGET",
                        help=common.target_help(runnable, "c", "the target to compile and check (those that run in "
                                                         "this process)"))
    verify.add_argument("--dtype", choices=dtypes, help="default: the target's first")
    verify.add_argument("-n", type=common.positive_int, default=1000, help="number of inputs")
    inputs = verify.add_argument_group("inputs", "random inputs in --domain, or --data (both only with --dtype "
                                                 "q15: the domain plans the fixed-point formats, the data tests "
                                                 "them; rows outside the domain are counted)")
    inputs.add_argument("--domain", nargs=2, type=common.floats, metavar=("LOW", "HIGH"),
                        help="random inputs in [LOW, HIGH]: one number for every input, or one per input, "
                             "comma-separated (e.g. --domain 0,10 1,2000); in original units when scaling "
                             "is given, else the model's (default -1 1; q15: required, or a min/max scaling's "
                             "range, or --data's)")
    inputs.add_argument("--data", metavar="FILE", help="check on your own inputs: a .npy array or a .csv file "
                        "(a row per sample, a column per input, optional header), in the units the converted "
                        "function takes; -n rows are used (all when fewer)")
    verify.add_argument("--seed", type=int, default=0)
    common.add_calibrate_option(verify)
    verify.add_argument("--core", choices=common.CORES, help="run the C on an emulated Cortex-M core (qemu-system-arm, "
                                                      "arm-none-eabi-gcc) instead of this machine")
    common.add_c_options(verify)
    common.add_scaling_options(verify)
    verify.set_defaults(run=cmd_verify)


def _add_formula(sub) -> None:
    formula = sub.add_parser("formula", help="print the network as a formula",
                             description="Print the network as a closed-form formula (LaTeX by default) "
                                         "and report what rounding the weights costs.")
    common.add_model_options(formula)
    style = formula.add_mutually_exclusive_group()
    for flag in ("latex", "numpy", "python", "sympy"):
        style.add_argument(f"--{flag}", dest="style", action="store_const", const=flag,
                           help=f"print the {flag} form" + (" (default)" if flag == "latex" else ""))
    common.add_formula_options(formula, default_digits=3)
    formula.add_argument("--png", metavar="PATH", help="render the formula (and, for one input, a plot) to PNG "
                                                       "('-': standard output, instead of the formula text)")
    common.add_mkdir_option(formula)
    formula.add_argument("--domain", nargs=2, type=common.finite, metavar=("LOW", "HIGH"),
                         help="input range for the rounding error and the plot (default -1 1)")
    common.add_scaling_options(formula)
    formula.set_defaults(run=cmd_formula, style="latex")


def _add_bench(sub) -> None:
    bench = sub.add_parser("bench", help="time every way to run a model, side by side",
                           description="Time model.predict, ONNX Runtime, LiteRT, NumPy and every mlpcodegen "
                                       "target on one model in one process; write a Markdown report and a PNG.")
    common.add_model_options(bench)
    bench.add_argument("--out", help="report path (default: MODEL_bench.md; the plot goes next to it as .png)")
    common.add_mkdir_option(bench)
    bench.add_argument("--rows", type=common.positive_int, nargs="+", default=[10_000, 1_000_000],
                       help="batch sizes for the throughput columns (default: 10000 1000000)")
    bench.add_argument("--quick", action="store_true", help="fewer repeats")
    bench.add_argument("--target", nargs="+", metavar="TARGET",
                       help="time these languages (rust, js, wasm, go, java) beside C, each built with its "
                            "toolchain and timing itself in a subprocess (any model format; no TensorFlow)")
    bench.add_argument("--dtype", choices=("float32", "float64"), help="with --target: the numeric type "
                                                                      "(default float32)")
    bench.set_defaults(run=cmd_bench)


def _add_demo(sub) -> None:
    demo = sub.add_parser("demo", help="convert, compile, verify and time the bundled seed model",
                          description="Run the whole pipeline on the bundled 1-3-2-1 seed model.")
    demo.add_argument("--model", help=f"model to use instead of {SEED_MODEL.name}")
    loudness = demo.add_mutually_exclusive_group()
    loudness.add_argument("-q", "--quiet", dest="verbosity", action="store_const", const=0, default=1,
                          help="print one line: the result and where the files are")
    loudness.add_argument("-v", "--verbose", dest="verbosity", action="store_const", const=2,
                          help="also print the generated C")
    demo.add_argument("-o", "--out", metavar="DIR",
                      help="folder for the generated files, kept (default: a temporary folder, removed when the "
                           "demo ends)")
    demo.set_defaults(run=cmd_demo)


def build_parser() -> argparse.ArgumentParser:
    from ..backends import BACKENDS
    from ..core.numeric import FIXED_TYPES, NUMERIC_TYPES
    from ..runtime import LOADERS
    from ..runtime.loaders import SUBPROCESS_LOADERS

    dtypes = tuple(NUMERIC_TYPES) + tuple(FIXED_TYPES)  # which ones a target supports: checked after parsing
    parser = common.Parser(
        prog="mlpcodegen", description=f"Compile trained MLPs ({common.formats_read()}) into native functions.")
    parser.add_argument("--version", action="version", version=f"mlpcodegen {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_convert(sub, BACKENDS, dtypes)
    _add_verify(sub, {**LOADERS, **SUBPROCESS_LOADERS}, dtypes)
    _add_formula(sub)
    _add_bench(sub)
    _add_demo(sub)
    from .cli_embedded import add_size
    from .cli_simplify import add_simplify

    add_size(sub)
    add_simplify(sub)
    for command in sub.choices.values():
        command.set_defaults(parser=command)
    return parser


def _fail(args: argparse.Namespace, message: str) -> int:
    print(f"mlpcodegen {args.command}: error: {message}", file=sys.stderr)
    return 1


def _run(args: argparse.Namespace) -> int:
    try:
        check = _USAGE_CHECKS.get(args.command)
        if check is not None:
            check(args)
        return args.run(args)
    except common.UsageError as exc:
        args.parser.error(str(exc))  # prints usage and the message, exits 2
        raise  # pragma: no cover (error() does not return)
    except MlpCodegenError as exc:
        return _fail(args, str(exc))
    except BrokenPipeError:  # e.g. `mlpcodegen convert m.keras | head`: the reader left
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except OSError as exc:  # an input or output file the system refused (permission, disk full)
        where = f"{exc.filename}: " if exc.filename else ""
        return _fail(args, f"{where}{exc.strerror or exc}")
    except MemoryError:
        return _fail(args, "out of memory")
    except KeyboardInterrupt:
        print(f"mlpcodegen {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: one line, not a traceback, unless asked for
        if os.environ.get("MLPCODEGEN_TRACEBACK"):
            raise
        return _fail(args, f"internal error ({type(exc).__name__}: {exc}); please report it "
                           "(MLPCODEGEN_TRACEBACK=1 shows the traceback)")


#: Options taking two values: ``--domain=LOW HIGH`` is read as ``--domain LOW HIGH``
#: (argparse gives an ``=`` exactly one value, then says "expected 2 arguments").
_TWO_VALUE_OPTIONS = ("--domain",)


def _split_equals(argv: Sequence[str]) -> list[str]:
    out: list[str] = []
    for i, arg in enumerate(argv):
        if arg == "--":
            return out + list(argv[i:])
        flag, equals, value = arg.partition("=")
        out += [flag, value] if equals and flag in _TWO_VALUE_OPTIONS else [arg]
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit code (argparse's exits included)."""
    common.quiet_tensorflow()
    try:
        argv = _split_equals(sys.argv[1:] if argv is None else argv)
        args = build_parser().parse_args(argv)
        return _run(args)
    except SystemExit as exc:  # usage errors (2), --help and --version (0)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
