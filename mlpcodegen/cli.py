"""Command line: ``mlpcodegen convert|verify|formula|bench|demo|size|simplify``.

Exit codes: 0 success, 1 a conversion or verification that failed (the model, an input
or an output file), 2 bad usage.  Every error is one line,
``mlpcodegen COMMAND: error: ...``; never a traceback (set ``MLPCODEGEN_TRACEBACK=1``
to see one for an unexpected error).
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import time
import unicodedata
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, Optional, Sequence

from . import __version__
from .errors import MlpCodegenError
from .runtime.cores import CORES as CORE_TABLE

SEED_MODEL = Path(__file__).resolve().parent.parent / "generated" / "seed" / "seed.keras"


class UsageError(Exception):
    """Bad usage found after parsing (flags that contradict each other or the model):
    reported through the command's parser, exit 2."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line, as every other error:
    ``mlpcodegen COMMAND: error: MESSAGE (see: mlpcodegen COMMAND --help)``, exit 2
    (argparse's own prints the whole usage block first).  Subcommands' parsers are made
    of this class too (``add_subparsers`` uses the parent's class)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see: {self.prog} --help)\n")


# ------------------------------------------------------------------- TensorFlow

#: Start-up lines TensorFlow's C++ writes to stderr while it loads; they say nothing
#: about the user's model.  (Some TensorFlow versions print the absl line whatever
#: TF_CPP_MIN_LOG_LEVEL says, because absl logs before TensorFlow reads the variable.)
_TF_BANNERS = re.compile(
    r"absl::InitializeLog\(\)|oneDNN custom operations|TF_ENABLE_ONEDNN_OPTS|cpu_feature_guard|"
    r"This TensorFlow binary is optimized|To enable the following instructions|rebuild TensorFlow|"
    r"Unable to register cu(DNN|FFT|BLAS)|Could not find cuda drivers|computation placer|"
    r"^[IW]\d{4} \d\d:\d\d:\d\d")


def _quiet_tensorflow() -> None:
    """Set before anything imports TensorFlow (main() calls it first): the C++ logger
    reads the variable once, when the shared library loads.  A value the user set is kept."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _import_tensorflow_quietly() -> None:
    """Import TensorFlow with file descriptor 2 captured, then pass on every line that
    is not a start-up banner.  Not when the user asked for all of TensorFlow's logs
    (TF_CPP_MIN_LOG_LEVEL=0): absl logs before it is initialised whatever the level says."""
    if "tensorflow" in sys.modules or os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        return
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        except ImportError:
            pass  # verify reports a missing TensorFlow itself, clearly
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [line for line in capture.read().decode("utf-8", "replace").splitlines()
                    if line.strip() and not _TF_BANNERS.search(line)]
    if kept:
        print("\n".join(kept), file=sys.stderr)


# ------------------------------------------------------------------- names


def _default_name(model: str, target: str) -> str:
    """A function name the target accepts, from the model file's stem: the stem made an
    ASCII identifier, else ``predict_STEM`` (m1, class, NAN clash with the generated
    code, C or Python), else ``predict``.  The user did not choose it: never refuse it."""
    from .backends import name_is_usable

    ascii_stem = unicodedata.normalize("NFKD", Path(model).stem).encode("ascii", "ignore").decode()
    stem = re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9_]", "_", ascii_stem)).strip("_")[:48]
    candidates = [stem, f"predict_{stem}"] if stem else []
    return next((c for c in candidates if name_is_usable(target, c)), "predict")


# ------------------------------------------------------------------- commands


def _target_options(args: argparse.Namespace, backend, load: bool = False) -> dict:
    """The target's emit options the command line sets (``--unroll`` for c, ...).
    ``load``: only those that change what runs (LaTeX digits are emit-only)."""
    from .runtime import run_options

    keys = [key for key in backend.options if hasattr(args, key)]
    if load:
        keys = [key for key in keys if key in run_options(backend.name)]
    return {key: getattr(args, key) for key in keys}


def _load(args: argparse.Namespace):
    """The model's network, read within ``--max-size``; with ``--calibrate FILE``, quantised
    to int8 from those rows (post-training, as TFLite's converter)."""
    from .frontends import load
    from .limits import ReadLimits

    net = load(args.model, weights=args.weights, limits=ReadLimits.for_size(args.max_size))
    if getattr(args, "calibrate", None):
        from .errors import ValidationError
        from .harness.verify import read_inputs
        from .ptq import calibrate

        if getattr(net, "int8", None) is not None:
            raise ValidationError(f"{args.model} is already quantised to int8: drop --calibrate (its scales are "
                                  "the file's)")
        net = calibrate(net, read_inputs(args.calibrate, net.n_inputs))
    return net


def _header_path(args: argparse.Namespace) -> Optional[Path]:
    if not args.header:
        return None
    from .backends import get_backend

    header = Path(get_backend(args.target).header_file(args.output))
    if os.path.realpath(header) == os.path.realpath(args.output):
        raise UsageError(f"--header would overwrite the output {args.output} (the header is the output's name "
                         f"with {header.name[len(Path(args.output).stem):]}): name the output "
                         f"{get_backend(args.target).suffix}")
    return header


def cmd_convert(args: argparse.Namespace) -> int:
    from . import backends
    from ._files import check_outputs, write_all

    started = time.perf_counter()
    backend = backends.get_backend(args.target)
    to_stdout = args.output in (None, "-")
    header = None if to_stdout else _header_path(args)
    if not to_stdout:  # a bad path fails before any work, and nothing is written
        check_outputs([args.output] + ([header] if header else []), mkdir=args.mkdir)
    net = _scaled(_load(args), args)
    name = args.name or _default_name(args.model, args.target)
    dtype = args.dtype or backend.dtypes[0]
    if args.core or args.arduino:  # C for a microcontroller core, or an Arduino library (cli_embedded)
        from .cli_embedded import convert_for_core

        return convert_for_core(args, net, name, dtype, COMMON)
    options = _target_options(args, backend)
    if "domain" in options:  # the input domain fixed-point formats are planned for
        options["domain"] = _fixed_domain(args, net.n_inputs, dtype)
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


def _domain(args: argparse.Namespace, n_inputs: int):
    """``--domain LOW HIGH``: each side one number for every input or one per input."""
    if not args.domain:
        return None
    lo, hi = args.domain
    for side, values in (("LOW", lo), ("HIGH", hi)):
        if len(values) not in (1, n_inputs):
            raise UsageError(f"--domain {side} has {len(values)} values; the model has {n_inputs} inputs: "
                             f"give one number for all or {n_inputs} comma-separated")
    if len(lo) == 1:
        lo = lo * n_inputs
    if len(hi) == 1:
        hi = hi * n_inputs
    for i, (low, high) in enumerate(zip(lo, hi)):
        if not low <= high:
            raise UsageError(f"--domain of input {i}: LOW {low:g} is above HIGH {high:g}")
    return lo, hi


def _scaling_box(args: argparse.Namespace, n_inputs: int):
    """(low, high) per input from a min/max input scaling (--scaling or --input-min/max):
    the range the original inputs were scaled from; None for any other scaling."""
    inputs, _ = _scalings(args)
    spec = getattr(inputs, "spec", None) or {}
    if spec.get("kind") != "minmax":
        return None
    lo, hi = spec["min"], spec["max"]
    return ([float(v) for v in (lo * n_inputs if len(lo) == 1 else lo)],
            [float(v) for v in (hi * n_inputs if len(hi) == 1 else hi)])


def _is_fixed(dtype: Optional[str]) -> bool:
    """Whether ``dtype`` is a fixed-point type planned for an input domain (q15); int8 is not:
    its scales come from the .tflite file or from --calibrate's rows."""
    from .numeric import FIXED_TYPES

    return dtype in FIXED_TYPES and FIXED_TYPES[dtype].plans_domain


def _check_int8(args: argparse.Namespace) -> None:
    """Usage of --dtype int8 and --calibrate (convert, verify, size): --calibrate quantises to
    int8; int8 plans nothing for --domain (verify draws its inputs there) nor takes a scaling."""
    int8 = args.dtype == "int8"
    if getattr(args, "rounding", None) and not int8:
        raise UsageError("--rounding is int8's requantisation: it goes with --dtype int8")
    if getattr(args, "calibrate", None) and not int8:
        raise UsageError("--calibrate quantises the model to int8: it goes with --dtype int8")
    if not int8:
        return
    if args.domain and args.command != "verify":
        raise UsageError("--domain plans q15 formats; int8's scales are the .tflite file's or --calibrate's: "
                         "drop --domain")
    given = [f"--{side}-{stat}" for side in ("input", "output") for stat in ("min", "max", "mean", "std")
             if getattr(args, f"{side}_{stat}".replace("-", "_"), None) is not None]
    if args.scaling or given:
        raise UsageError("--dtype int8 takes no input/output scaling (its quantisation is the model's own): "
                         "quantise the model that includes the scaling")


def _fixed_domain(args: argparse.Namespace, n_inputs: int, dtype: Optional[str], data: bool = False):
    """The input domain a fixed-point ``dtype`` is planned for: --domain, else a min/max
    input scaling's range; never a silent [-1, 1].  None for a float dtype (and, with
    ``data``, when --data gives it: its range)."""
    if not _is_fixed(dtype):
        return None
    domain = _domain(args, n_inputs) or _scaling_box(args, n_inputs)
    if domain is None and not data:
        also = ", or --data FILE: its range" if args.command == "verify" else ""
        raise UsageError(f"--dtype {dtype} plans its fixed-point formats for the inputs' range, and saturates "
                         f"outside it: give --domain LOW HIGH (or a min/max input scaling{also})")
    return domain


def _require_fixed_domain(args: argparse.Namespace, dtype: Optional[str], data: bool = False) -> None:
    """Before any work: a fixed-point ``dtype`` has a domain (--domain, a min/max input
    scaling or, with ``data``, --data)."""
    if _is_fixed(dtype) and not args.domain and not data:
        _fixed_domain(args, 1, dtype)


def _check_data(args: argparse.Namespace, n_inputs: int) -> None:
    """``--data``: read and checked (columns, numbers, shape) before any work; bad data is exit 1."""
    if args.data:
        from .harness.verify import read_inputs

        read_inputs(args.data, n_inputs)


def cmd_verify(args: argparse.Namespace) -> int:
    from .backends import get_backend

    net = _load(args)  # bounded read (and clear errors) before TensorFlow opens the file
    backend = get_backend(args.target)
    dtype = args.dtype or backend.dtypes[0]
    if dtype == "int8":  # bit for bit against LiteRT's reference kernels (or the plan's mirror)
        return _verify_int8(args, net)
    domain = _fixed_domain(args, net.n_inputs, dtype, data=bool(args.data)) or _domain(args, net.n_inputs)
    inputs, outputs = _scalings(args)
    _check_data(args, net.n_inputs)  # a bad file is refused before TensorFlow loads
    if args.core:  # on an emulated Cortex-M core (qemu), not in this process
        from .cli_embedded import verify_on_core

        return verify_on_core(args, net, domain, COMMON)
    from .frontends import file_format

    if file_format(args.model).name == "keras":  # its peer is model.predict
        _import_tensorflow_quietly()
    from .harness.verify import verify
    from .limits import ReadLimits

    report = verify(args.model, args.target, dtype, n=args.n, domain=domain,
                    data=args.data, seed=args.seed, input_scaling=inputs, output_scaling=outputs,
                    options=_target_options(args, backend, load=True), weights=args.weights,
                    limits=ReadLimits.for_size(args.max_size))
    print(report.table(), end="")
    if not report.ok:
        print("verification FAILED: an error exceeds its bound", file=sys.stderr)
        return 1
    return 0


def _verify_int8(args: argparse.Namespace, net) -> int:
    from .harness.verify_int8 import verify_int8
    from .limits import ReadLimits

    if args.core:  # the same checks as every verify --core, before any work
        from .cli_embedded import MAX_CORE_ROWS, _ready
        from .runtime.cores import core as core_entry

        if args.n > MAX_CORE_ROWS:
            raise UsageError(f"--core runs at most {MAX_CORE_ROWS} inputs (-n): they are compiled into the image")
        if not core_entry(args.core).emulated:
            raise UsageError(f"{args.core} has no emulator: use mlpcodegen size --core {args.core}")
        _ready(args.core, emulator=True)
    _check_data(args, net.n_inputs)
    peer = None
    if getattr(args, "calibrate", None):  # the float model's own framework, for information
        from .frontends import file_format
        from .harness.peers import as_peer

        if file_format(args.model).name == "keras":
            _import_tensorflow_quietly()
        peer = as_peer(args.model, weights=args.weights, limits=ReadLimits.for_size(args.max_size))
    report, instructions = verify_int8(args.model, net, n=args.n, domain=_domain(args, net.n_inputs),
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
    from ._files import check_outputs

    if args.png and args.png != "-":
        check_outputs([args.png], mkdir=args.mkdir)
    net = _scaled(_load(args), args)
    if args.png != "-":  # with --png -, standard output is the picture alone
        _print_formula(net, args)
    lo, hi = args.domain or (-1.0, 1.0)
    if not lo <= hi:
        raise UsageError(f"--domain: LOW {lo:g} is above HIGH {hi:g}")
    if args.digits is not None:
        import numpy as np

        from .backends.latex import rounding_error
        from .backends.sympy import input_names
        from .harness.verify import random_inputs

        grid = random_inputs(net.n_inputs, 4000, np.full(net.n_inputs, lo), np.full(net.n_inputs, hi))
        error = rounding_error(net, args.digits, grid)
        print(f"% rounding every weight to {args.digits} significant digits changes the output by at most "
              f"{error:.3g} on [{lo:g}, {hi:g}]^{net.n_inputs} ({', '.join(input_names(net))})", file=sys.stderr)
    if args.png:
        _write_png(net, args, (lo, hi))
    return 0


def _print_formula(net, args: argparse.Namespace) -> None:
    from .backends.latex import emit_latex
    from .backends.sympy import emit_sympy, expression_strings

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
    _import_tensorflow_quietly()
    from .demo import run_demo

    return run_demo(Path(args.model) if args.model else SEED_MODEL, verbosity=args.verbosity, out_dir=args.out)


def cmd_bench(args: argparse.Namespace) -> int:
    from ._files import check_outputs

    model_file = Path(args.model)
    out = Path(args.out or f"{model_file.stem}_bench.md")
    check_outputs([out] if args.target else [out, out.with_suffix(".png")], mkdir=args.mkdir)  # before the timing
    net = _load(args)
    if args.target:  # the languages run as subprocesses, against C, any model format
        return _bench_languages(args, net, out)
    from .frontends import file_format

    fmt = file_format(model_file)
    if fmt.name != "keras":
        raise UsageError(f"bench times a Keras model beside model.predict, LiteRT and ONNX Runtime; {model_file} "
                         f"is a {fmt.title} file (verify checks it against its framework)")
    _import_tensorflow_quietly()
    from .frontends.keras import load_keras_model
    from .harness.bench import bench_model
    from .harness.bench_report import summary_lines, write_report

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
    from ._files import write_all
    from .numeric import numeric_type
    import numpy as np

    from .runtime.subprocess_peer import C_NATIVE, C_PORTABLE, time_targets

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


def _floats(text: str) -> list[float]:
    import math

    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected finite numbers, got {text!r}")
    return values


def _scalings(args: argparse.Namespace):
    """(input, output) Scaling from --scaling FILE and/or --input-*/--output-* flags.
    A bad file is exit 1 (its content is data); contradicting flags are bad usage."""
    from .errors import ValidationError
    from .scaling import Scaling, read_scaling_file

    found = list(read_scaling_file(args.scaling)) if args.scaling else [None, None]
    for i, side in enumerate(("input", "output")):
        minimum, maximum = getattr(args, f"{side}_min"), getattr(args, f"{side}_max")
        mean, std = getattr(args, f"{side}_mean"), getattr(args, f"{side}_std")
        if (minimum is None) != (maximum is None) or (mean is None) != (std is None):
            raise UsageError(f"give --{side}-min with --{side}-max, and --{side}-mean with --{side}-std")
        if minimum is not None and mean is not None:
            raise UsageError(f"give either min/max or mean/std scaling for the {side}, not both")
        if (minimum is not None or mean is not None) and found[i] is not None:
            raise UsageError(f"the {side} scaling is given twice: by --scaling and by --{side}-* flags")
        try:
            if minimum is not None:
                found[i] = Scaling.minmax(minimum, maximum)
            elif mean is not None:
                found[i] = Scaling.standard(mean, std)
        except ValidationError as exc:
            raise UsageError(f"--{side}-{'min/max' if minimum is not None else 'mean/std'}: {exc}") from None
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
                       '{"kind": "minmax", "min": [..], "max": [..]} or {"kind": "standard", "mean": [..], '
                       '"std": [..]} (mlpcodegen.scaling.write_scaling_file writes it from sklearn scalers)')
    for side in ("input", "output"):
        for stat in ("min", "max", "mean", "std"):
            group.add_argument(f"--{side}-{stat}", type=_floats, metavar="V[,V...]")


# ------------------------------------------------------------------- usage checks


def _check_dtype(args: argparse.Namespace) -> None:
    from .backends import get_backend

    dtypes = get_backend(args.target).supported
    if args.dtype is not None and args.dtype not in dtypes:
        raise UsageError(f"target {args.target!r} supports --dtype {' or '.join(dtypes)}, not {args.dtype}")


def _check_convert(args: argparse.Namespace) -> None:
    from .backends import BACKENDS, get_backend

    _check_dtype(args)
    _check_int8(args)
    fixed = get_backend(args.target).fixed_dtypes
    if args.domain and args.dtype not in fixed:
        raise UsageError(f"--domain plans fixed-point formats: it goes with --dtype {' or '.join(fixed) or '(none)'} "
                         f"(target {args.target!r})")
    _require_fixed_domain(args, args.dtype)
    if args.header:
        with_header = [name for name, backend in BACKENDS.items() if backend.header is not None]
        if BACKENDS[args.target].header is None:
            raise UsageError(f"target {args.target!r} has no header; --header is for {', '.join(with_header)}")
        if args.output in (None, "-"):
            raise UsageError("--header needs -o FILE (the header is written next to it, as FILE's name with .h; "
                             "js: .d.ts, .d.mts for a .mjs)")
    if args.mkdir and args.output in (None, "-"):
        raise UsageError("--mkdir needs -o FILE")


def _check_verify(args: argparse.Namespace) -> None:
    _check_dtype(args)
    _check_int8(args)
    if args.dtype == "int8" and args.target != "c":
        raise UsageError("--dtype int8 is the C target's")
    if args.domain and args.data and not _is_fixed(args.dtype):
        raise UsageError("--domain draws random inputs and --data gives them: choose one (both only with a "
                         "fixed-point --dtype: the domain plans its formats, the data tests them)")
    if args.domain and args.data and args.core:
        raise UsageError("--core tests on --domain or on --data, not both")
    _require_fixed_domain(args, args.dtype, data=bool(args.data))
    if not args.core and (args.profile != "desktop" or args.optimize != "speed"):
        raise UsageError("the embedded profile has no batch function to call here: verify it on an emulated "
                         "core with --core m0plus|m4f|m7")


def _check_bench(args: argparse.Namespace) -> None:
    if args.target:  # the languages with a subprocess toolchain (the runtime's table, not a list kept here)
        from .runtime.subprocess_peer import TOOLCHAINS

        unknown = [target for target in args.target if target not in TOOLCHAINS]
        if unknown:
            raise UsageError(f"bench --target times {', '.join(TOOLCHAINS)}, not {', '.join(unknown)}")
    elif args.dtype:
        raise UsageError("--dtype goes with --target (the Keras bench times every dtype)")


_USAGE_CHECKS: dict[str, Callable[[argparse.Namespace], None]] = {
    "convert": _check_convert,
    "verify": _check_verify,
    "bench": _check_bench,
}


# ------------------------------------------------------------------- parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


def _finite(text: str) -> float:
    values = _floats(text)
    if len(values) != 1:
        raise argparse.ArgumentTypeError(f"expected one number, got {text!r}")
    return values[0]


def _mebibytes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size in MiB, got {text!r}") from None
    if not 0 < value < float(1 << 30):
        raise argparse.ArgumentTypeError("must be a positive number of MiB")
    return value


def _add_c_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--unroll", choices=("auto", "always", "never"), default="auto",
                        help="c: closed form per neuron (always), loops over const arrays (never), or "
                             "by layer shape as measured in bench/UNROLL.md (auto, the default)")
    parser.add_argument("--math", choices=("fast", "libm"), default="fast",
                        help="c: inline exp/expm1/tanh/sigmoid that vectorise, <= 2 ULP from the correctly "
                             "rounded result (fast, the default; float32) or the C library's (libm)")
    parser.add_argument("--profile", choices=("desktop", "embedded"), default="desktop",
                        help="c: desktop (batch functions, unrolled for SIMD; the default) or embedded "
                             "(one-sample function only, no library calls, stack and flash stated)")
    parser.add_argument("--optimize", choices=("speed", "size"), default="speed",
                        help="c, embedded profile: layer shapes chosen for fewer instructions (speed, the "
                             "default) or fewer bytes of flash (size)")


#: Cores the embedded commands build for: the table of mlpcodegen.runtime.cores (cli_embedded knows them).
CORES = tuple(CORE_TABLE)


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="model file: .keras, legacy .h5, Keras architecture .json (with --weights) "
                                      "or .onnx; the format is found from the content")
    parser.add_argument("--weights", metavar="H5", help="weights file (model.save_weights) for a Keras "
                                                       "architecture JSON given as the model")
    parser.add_argument("--max-size", type=_mebibytes, default=256, metavar="MIB",
                        help="largest model to read, in MiB; the limits on what it declares scale with it "
                             "(default 256)")


def _add_calibrate_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--calibrate", metavar="DATA", help="with --dtype int8, a float model: quantise it "
                        "(post-training, as TFLite's converter: per-channel int8 weights, int8 activations) from "
                        "the ranges its tensors take on these rows (.npy or .csv, as --data)")


def _add_mkdir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mkdir", action="store_true", help="create the output's folder if it does not exist")


def _add_formula_options(parser: argparse.ArgumentParser, default_digits: int) -> None:
    group = parser.add_argument_group("formula", "LaTeX and formula output")
    group.add_argument("--digits", type=_digits, default=default_digits,
                       help=f"significant digits of the weights (default {default_digits}; 0 = exact)")
    group.add_argument("--expand", action="store_true", help="write activations in exponentials, not by name")
    group.add_argument("--layout", choices=("auto", "nested", "named"), default="auto",
                       help="one nested expression, or a line per neuron (auto: nested for small networks)")


def _digits(text: str) -> Optional[int]:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value or None


def _target_help(targets: Sequence[str], default: str, what: str = "the language to emit") -> str:
    """``--target``'s help: every target of the backends registry in ``targets``, its
    file suffix and number types, and the default."""
    from .backends import BACKENDS

    listed = "; ".join(f"{name} ({BACKENDS[name].suffix}: {', '.join(BACKENDS[name].supported)})"
                       for name in sorted(targets))
    return f"{what}: {listed} (default: {default})"


def _add_convert(sub, backends: dict, dtypes: Sequence[str]) -> None:
    convert = sub.add_parser("convert", help="emit source code for a model",
                             description="Emit source code for a model file (Keras, ONNX; no TensorFlow or torch needed).")
    _add_model_options(convert)
    convert.add_argument("--target", default="c", choices=sorted(backends), metavar="TARGET",
                         help=_target_help(backends, "c"))
    convert.add_argument("--dtype", choices=dtypes,
                         help="arithmetic type (default: float32 for c, numba, numpy; float64 otherwise; "
                              "python, sympy and latex are float64 only)")
    convert.add_argument("--name", help="function name (default: from the model file's name, made a usable "
                                        "identifier, e.g. predict_m1 for m1.keras)")
    convert.add_argument("-o", "--output", help="output file, replaced atomically (default or '-': standard "
                                                "output); a symbolic link's target is written")
    convert.add_argument("--header", action="store_true", help="also write a header next to the output, "
                                                               "named as it with .h (c), or TypeScript declarations "
                                                               "(js: .d.mts beside a .mjs, else .d.ts); needs -o")
    _add_mkdir_option(convert)
    _add_c_options(convert)
    convert.add_argument("--domain", nargs=2, type=_floats, metavar=("LOW", "HIGH"),
                         help="with --dtype q15 (required, unless a min/max input scaling gives it): the inputs' "
                              "range the fixed-point formats are planned for (one number for every input, or one "
                              "per input, comma-separated); outside it values saturate")
    _add_calibrate_option(convert)
    convert.add_argument("--rounding", choices=("single", "double"), help="with --dtype int8: how requantisation "
                         "rounds: single (default; the pip LiteRT interpreter's) or double (TensorFlow Lite Micro's "
                         "and CMSIS-NN's)")
    _add_formula_options(convert, default_digits=4)
    convert.add_argument("--rational", action="store_true", help="exact rational weights (sympy)")
    convert.add_argument("--core", choices=CORES, help="c: the embedded C for this core (atmega328p: weights in flash)")
    convert.add_argument("--arduino", metavar="DIR", help="c: write an Arduino library to DIR (atmega328p by default)")
    _add_scaling_options(convert)
    convert.set_defaults(run=cmd_convert)


def _add_verify(sub, runnable: Sequence[str], dtypes: Sequence[str]) -> None:
    verify = sub.add_parser("verify", help="check a target against model.predict",
                            description="Compare a compiled target against the float64 reference "
                                        "and model.predict; exit 1 when a tolerance is exceeded.")
    _add_model_options(verify)
    verify.add_argument("--target", default="c", choices=sorted(runnable), metavar="TARGET",
                        help=_target_help(runnable, "c", "the target to compile and check (those that run in "
                                                         "this process)"))
    verify.add_argument("--dtype", choices=dtypes, help="default: the target's first")
    verify.add_argument("-n", type=_positive_int, default=1000, help="number of inputs")
    inputs = verify.add_argument_group("inputs", "random inputs in --domain, or --data (both only with --dtype "
                                                 "q15: the domain plans the fixed-point formats, the data tests "
                                                 "them; rows outside the domain are counted)")
    inputs.add_argument("--domain", nargs=2, type=_floats, metavar=("LOW", "HIGH"),
                        help="random inputs in [LOW, HIGH]: one number for every input, or one per input, "
                             "comma-separated (e.g. --domain 0,10 1,2000); in original units when scaling "
                             "is given, else the model's (default -1 1; q15: required, or a min/max scaling's "
                             "range, or --data's)")
    inputs.add_argument("--data", metavar="FILE", help="check on your own inputs: a .npy array or a .csv file "
                        "(a row per sample, a column per input, optional header), in the units the converted "
                        "function takes; -n rows are used (all when fewer)")
    verify.add_argument("--seed", type=int, default=0)
    _add_calibrate_option(verify)
    verify.add_argument("--core", choices=CORES, help="run the C on an emulated Cortex-M core (qemu-system-arm, "
                                                      "arm-none-eabi-gcc) instead of this machine")
    _add_c_options(verify)
    _add_scaling_options(verify)
    verify.set_defaults(run=cmd_verify)


def _add_formula(sub) -> None:
    formula = sub.add_parser("formula", help="print the network as a formula",
                             description="Print the network as a closed-form formula (LaTeX by default) "
                                         "and report what rounding the weights costs.")
    _add_model_options(formula)
    style = formula.add_mutually_exclusive_group()
    for flag in ("latex", "numpy", "python", "sympy"):
        style.add_argument(f"--{flag}", dest="style", action="store_const", const=flag,
                           help=f"print the {flag} form" + (" (default)" if flag == "latex" else ""))
    _add_formula_options(formula, default_digits=3)
    formula.add_argument("--png", metavar="PATH", help="render the formula (and, for one input, a plot) to PNG "
                                                       "('-': standard output, instead of the formula text)")
    _add_mkdir_option(formula)
    formula.add_argument("--domain", nargs=2, type=_finite, metavar=("LOW", "HIGH"),
                         help="input range for the rounding error and the plot (default -1 1)")
    _add_scaling_options(formula)
    formula.set_defaults(run=cmd_formula, style="latex")


def _add_bench(sub) -> None:
    bench = sub.add_parser("bench", help="time every way to run a model, side by side",
                           description="Time model.predict, ONNX Runtime, LiteRT, NumPy and every mlpcodegen "
                                       "target on one model in one process; write a Markdown report and a PNG.")
    _add_model_options(bench)
    bench.add_argument("--out", help="report path (default: MODEL_bench.md; the plot goes next to it as .png)")
    _add_mkdir_option(bench)
    bench.add_argument("--rows", type=_positive_int, nargs="+", default=[10_000, 1_000_000],
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


#: What the command modules of other areas (cli_embedded, cli_simplify) use from here.
COMMON = SimpleNamespace(
    UsageError=UsageError, load=_load, scaled=_scaled, scalings=_scalings, domain=_domain,
    default_name=_default_name, target_options=_target_options, header_path=_header_path,
    add_model_options=_add_model_options, add_calibrate_option=_add_calibrate_option, check_int8=_check_int8,
    fixed_domain=_fixed_domain, require_fixed_domain=_require_fixed_domain, scaling_box=_scaling_box, add_scaling_options=_add_scaling_options,
    add_c_options=_add_c_options, add_mkdir_option=_add_mkdir_option, add_formula_options=_add_formula_options,
    floats=_floats, finite=_finite, positive_int=_positive_int, digits=_digits, cores=CORES,
    target_help=_target_help,
    import_tensorflow_quietly=_import_tensorflow_quietly,
)

_NUMBER = r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?"
_NEGATIVE_NUMBERS = re.compile(rf"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?(,{_NUMBER})*$")


def build_parser() -> argparse.ArgumentParser:
    from .backends import BACKENDS
    from .numeric import FIXED_TYPES, NUMERIC_TYPES
    from .runtime import LOADERS
    from .runtime.loaders import SUBPROCESS_LOADERS

    dtypes = tuple(NUMERIC_TYPES) + tuple(FIXED_TYPES)  # which ones a target supports: checked after parsing
    parser = Parser(
        prog="mlpcodegen", description="Compile trained MLPs (Keras, ONNX, scikit-learn, PyTorch) into native functions."
    )
    parser.add_argument("--version", action="version", version=f"mlpcodegen {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_convert(sub, BACKENDS, dtypes)
    _add_verify(sub, {**LOADERS, **SUBPROCESS_LOADERS}, dtypes)
    _add_formula(sub)
    _add_bench(sub)
    _add_demo(sub)
    from .cli_embedded import add_size
    from .cli_simplify import add_simplify

    add_size(sub, COMMON)
    add_simplify(sub, COMMON)
    for command in sub.choices.values():
        command.set_defaults(parser=command)
        # argparse takes "-1,-2" or "-1e-3" for an option flag (it only knows "-1" and
        # "-.5" as negative numbers): let every list of numbers be a value.
        command._negative_number_matcher = _NEGATIVE_NUMBERS
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
    except UsageError as exc:
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
    _quiet_tensorflow()
    try:
        argv = _split_equals(sys.argv[1:] if argv is None else argv)
        args = build_parser().parse_args(argv)
        return _run(args)
    except SystemExit as exc:  # usage errors (2), --help and --version (0)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
