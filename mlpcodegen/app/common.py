"""What the command modules share (cli, cli_embedded, cli_simplify): the parser class,
the usage error, the model-loading and option helpers and the option groups several
commands add.  Each command module imports what it uses from here, by name."""
from __future__ import annotations

import argparse
import os
import re
import sys
import unicodedata
from pathlib import Path
from typing import Optional, Sequence

from ..runtime.cores import CORES as CORE_TABLE


class UsageError(Exception):
    """Bad usage found after parsing (flags that contradict each other or the model):
    reported through the command's parser, exit 2."""


_NUMBER = r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?"
_NEGATIVE_NUMBERS = re.compile(rf"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?(,{_NUMBER})*$")
#: A number argparse would take for an option flag once written with a leading space: a
#: string that does not start with "-" is a value to it, and int()/float() skip the space.
_AS_VALUE = " "


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line, as every other error:
    ``mlpcodegen COMMAND: error: MESSAGE (see: mlpcodegen COMMAND --help)``, exit 2
    (argparse's own prints the whole usage block first).  Subcommands' parsers are made
    of this class too (``add_subparsers`` uses the parent's class)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see: {self.prog} --help)\n")

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        """argparse knows only "-1" and "-.5" as negative numbers and takes "-1,-2" or
        "-1e-3" for an option flag: every list of numbers is passed as a value (with
        :data:`_AS_VALUE` before it, removed again from what stays text)."""
        if args is None:
            args = sys.argv[1:]
        given = list(args)
        end = given.index("--") if "--" in given else len(given)
        marked = [_AS_VALUE + arg if i < end and _NEGATIVE_NUMBERS.match(arg) else arg for i, arg in enumerate(given)]
        parsed, extra = super().parse_known_args(marked, namespace)
        for key, value in vars(parsed).items():
            setattr(parsed, key, _unmarked(value))
        return parsed, [_unmarked(arg) for arg in extra]


def _unmarked(value):
    """``value`` (text, or a list of it) without the mark :meth:`Parser.parse_known_args` added."""
    if isinstance(value, list):
        return [_unmarked(v) for v in value]
    if isinstance(value, str) and value.startswith(_AS_VALUE) and _NEGATIVE_NUMBERS.match(value[1:]):
        return value[1:]
    return value


#: Start-up lines TensorFlow's C++ writes to stderr while it loads; they say nothing
#: about the user's model.  (Some TensorFlow versions print the absl line whatever
#: TF_CPP_MIN_LOG_LEVEL says, because absl logs before TensorFlow reads the variable.)
_TF_BANNERS = re.compile(
    r"absl::InitializeLog\(\)|oneDNN custom operations|TF_ENABLE_ONEDNN_OPTS|cpu_feature_guard|"
    r"This TensorFlow binary is optimized|To enable the following instructions|rebuild TensorFlow|"
    r"Unable to register cu(DNN|FFT|BLAS)|Could not find cuda drivers|computation placer|"
    r"^[IW]\d{4} \d\d:\d\d:\d\d")


def quiet_tensorflow() -> None:
    """Set before anything imports TensorFlow (main() calls it first): the C++ logger
    reads the variable once, when the shared library loads.  A value the user set is kept."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def import_tensorflow_quietly() -> None:
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


def default_name(model: str, target: str) -> str:
    """A function name the target accepts, from the model file's stem: the stem made an
    ASCII identifier, else ``predict_STEM`` (m1, class, NAN clash with the generated
    code, C or Python), else ``predict``.  The user did not choose it: never refuse it."""
    from ..backends import name_is_usable

    ascii_stem = unicodedata.normalize("NFKD", Path(model).stem).encode("ascii", "ignore").decode()
    stem = re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9_]", "_", ascii_stem)).strip("_")[:48]
    candidates = [stem, f"predict_{stem}"] if stem else []
    return next((c for c in candidates if name_is_usable(target, c)), "predict")


def function_name(args: argparse.Namespace, target: str) -> str:
    """The function name: ``--name`` as given, checked by the target now, before the model
    is read (a refused name costs no work; an empty one is refused, never replaced by the
    default), else :func:`default_name`.  A Java class must sit in a file of its name: an
    ``-o`` that is not is bad usage, said before any work too."""
    from ..backends import check_name

    given = getattr(args, "name", None)
    name = default_name(args.model, target) if given is None else check_name(target, given)
    output = getattr(args, "output", None)
    if target == "java" and output not in (None, "-"):
        from ..backends.java import class_name

        expected = f"{class_name(name)}.java"
        if Path(output).name != expected:
            stem = Path(output).stem
            fix = f" or pass --name {stem}" if stem.isidentifier() and stem.isascii() else ""
            raise UsageError(f"-o {output}: Java needs the public class {class_name(name)} (from the function name "
                             f"{name!r}) in a file named {expected}: name the output {expected}{fix}")
    return name


def check_c_shape_options(args: argparse.Namespace) -> None:
    """Bad usage: C options that would be ignored.  ``--optimize`` chooses the embedded
    profile's layer shapes (the desktop C has none to choose); ``--arduino`` writes a
    folder (an ``-o`` file would not be written).  Another target's use of them is
    :func:`check_target_options`'s to say."""
    if getattr(args, "target", "c") != "c":
        return
    embedded = getattr(args, "core", None) or getattr(args, "arduino", None)
    if getattr(args, "profile", "desktop") == "desktop" and getattr(args, "optimize", "speed") != "speed" \
            and not embedded:
        raise UsageError("--optimize chooses the embedded profile's layer shapes: add --profile embedded (or "
                         "--core CORE)")
    if getattr(args, "arduino", None) and getattr(args, "header", False):
        raise UsageError(f"--arduino writes its header itself ({args.arduino}/src/NAME.h): drop --header")
    if getattr(args, "arduino", None) and getattr(args, "output", None) not in (None, "-"):
        raise UsageError(f"--arduino writes a library folder ({args.arduino}/src/NAME.c, ...): drop -o "
                         f"{args.output}, or use --core atmega328p -o FILE for the C file alone")


def target_options(args: argparse.Namespace, backend, load: bool = False) -> dict:
    """The target's emit options the command line sets (``--unroll`` for c, ...).
    ``load``: only those that change what runs (LaTeX digits are emit-only)."""
    from ..runtime import run_options

    keys = [key for key in backend.options if hasattr(args, key)]
    if load:
        keys = [key for key in keys if key in run_options(backend.name)]
    return {key: getattr(args, key) for key in keys}


def check_target_options(args: argparse.Namespace, not_target: Sequence[str] = ()) -> None:
    """Bad usage: a target's option set (to other than its default) with a target that does
    not take it (``--target python --unroll never``), named with the targets that do, from
    each backend's ``options``.  ``not_target``: the command's own options of the same name
    (verify's ``--domain`` draws the inputs)."""
    from ..backends import BACKENDS

    takes: dict[str, list[str]] = {}
    for backend in BACKENDS.values():
        for option in backend.options:
            takes.setdefault(option, []).append(backend.name)
    chosen = BACKENDS[args.target].options
    stray = [option for option in takes if option not in chosen and option not in not_target
             and getattr(args, option, None) is not None and getattr(args, option) != args.parser.get_default(option)]
    if stray:
        named = ", ".join(f"--{option.replace('_', '-')} (an option of --target {' or '.join(takes[option])})"
                          for option in stray)
        raise UsageError(f"target {args.target!r} takes no {named}")


def load(args: argparse.Namespace):
    """The model's network, read within ``--max-size``; with ``--calibrate FILE``, quantised
    to int8 from those rows (post-training, as TFLite's converter)."""
    from ..frontends import load
    from ..core.limits import ReadLimits

    net = load(args.model, weights=args.weights, limits=ReadLimits.for_size(args.max_size))
    if getattr(args, "calibrate", None):
        from ..core.errors import ValidationError
        from ..harness.inputs import read_inputs
        from ..core.ptq import calibrate

        if getattr(net, "int8", None) is not None:
            raise ValidationError(f"{args.model} is already quantised to int8: drop --calibrate (its scales are "
                                  "the file's)")
        net = calibrate(net, read_inputs(args.calibrate, net.n_inputs))
    return net


def header_path(args: argparse.Namespace) -> Optional[Path]:
    if not args.header:
        return None
    from ..backends import get_backend

    backend = get_backend(args.target)
    header = Path(backend.header_file(args.output))
    if os.path.realpath(header) == os.path.realpath(args.output):
        raise UsageError(f"--header would overwrite the output {args.output} (the header is the output's name "
                         f"with {header.name[len(Path(args.output).stem):]}): name the output {backend.suffix}")
    return header


#: the options that name files a command reads (a model, its weights, scaling, data)
INPUT_OPTIONS = (("model", "the model file"), ("weights", "--weights"), ("scaling", "--scaling"),
                 ("data", "--data"), ("calibrate", "--calibrate"))


def refuse_overwriting_inputs(args: argparse.Namespace, outputs) -> None:
    """An output path that is one of the files the command reads (the same file, through a
    link too: ``convert m.onnx -o m.onnx``) is refused before any work: writing it would
    replace the model with the generated text."""
    for output in outputs:
        if output is None or str(output) == "-" or not os.path.exists(output):
            continue
        for option, what in INPUT_OPTIONS:
            given = getattr(args, option, None)
            if isinstance(given, (str, os.PathLike)) and os.path.exists(given) and os.path.samefile(given, output):
                raise UsageError(f"output {output} is {what} ({given}) this command reads: writing it would replace "
                                 "it; give another output path")


def given_domain(args: argparse.Namespace, n_inputs: int):
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


def scaling_box(args: argparse.Namespace, n_inputs: int):
    """(low, high) per input from a min/max input scaling (--scaling or --input-min/max):
    the range the original inputs were scaled from; None for any other scaling."""
    inputs, _ = scalings(args)
    spec = getattr(inputs, "spec", None) or {}
    if spec.get("kind") != "minmax":
        return None
    lo, hi = spec["min"], spec["max"]
    return ([float(v) for v in (lo * n_inputs if len(lo) == 1 else lo)],
            [float(v) for v in (hi * n_inputs if len(hi) == 1 else hi)])


def is_fixed(dtype: Optional[str]) -> bool:
    """Whether ``dtype`` is a fixed-point type planned for an input domain (q15); int8 is not:
    its scales come from the .tflite file or from --calibrate's rows."""
    from ..core.numeric import FIXED_TYPES

    return dtype in FIXED_TYPES and FIXED_TYPES[dtype].plans_domain


def check_int8(args: argparse.Namespace) -> None:
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


def fixed_domain(args: argparse.Namespace, n_inputs: int, dtype: Optional[str], data: bool = False):
    """The input domain a fixed-point ``dtype`` is planned for: --domain, else a min/max
    input scaling's range; never a silent [-1, 1].  None for a float dtype (and, with
    ``data``, when --data gives it: its range)."""
    if not is_fixed(dtype):
        return None
    domain = given_domain(args, n_inputs) or scaling_box(args, n_inputs)
    if domain is None and not data:
        also = ", or --data FILE: its range" if args.command == "verify" else ""
        raise UsageError(f"--dtype {dtype} plans its fixed-point formats for the inputs' range, and saturates "
                         f"outside it: give --domain LOW HIGH (or a min/max input scaling{also})")
    return domain


def require_fixed_domain(args: argparse.Namespace, dtype: Optional[str], data: bool = False) -> None:
    """Before any work: a fixed-point ``dtype`` has a domain (--domain, a min/max input
    scaling or, with ``data``, --data)."""
    if is_fixed(dtype) and not args.domain and not data:
        fixed_domain(args, 1, dtype)


def check_data(args: argparse.Namespace, n_inputs: int) -> None:
    """``--data``: read and checked (columns, numbers, shape) before any work; bad data is exit 1."""
    if args.data:
        from ..harness.inputs import read_inputs

        read_inputs(args.data, n_inputs)


def floats(text: str) -> list[float]:
    text = text.strip()  # a number Parser marked as a value
    import math

    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected finite numbers, got {text!r}")
    return values


def scalings(args: argparse.Namespace):
    """(input, output) Scaling from --scaling FILE and/or --input-*/--output-* flags.
    A bad file is exit 1 (its content is data); contradicting flags are bad usage."""
    from ..core.errors import ValidationError
    from ..core.scaling import Scaling, read_scaling_file

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


def scaled(net, args: argparse.Namespace):
    from ..core.scaling import with_scaling

    inputs, outputs = scalings(args)
    return with_scaling(net, inputs, outputs) if inputs or outputs else net


def add_scaling_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "scaling", "fold the scaling used in training into the output, so it takes and returns "
                   "original units (min/max scale to [0, 1]; lists are per feature or one value for all)")
    group.add_argument("--scaling", metavar="JSON", help='file with {"input": {...}, "output": {...}}, each '
                       '{"kind": "minmax", "min": [..], "max": [..]} or {"kind": "standard", "mean": [..], '
                       '"std": [..]} (mlpcodegen.core.scaling.write_scaling_file writes it from sklearn scalers)')
    for side in ("input", "output"):
        for stat in ("min", "max", "mean", "std"):
            group.add_argument(f"--{side}-{stat}", type=floats, metavar="V[,V...]")


def positive_int(text: str) -> int:
    text = text.strip()  # a number Parser marked as a value
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


def finite(text: str) -> float:
    text = text.strip()  # a number Parser marked as a value
    values = floats(text)
    if len(values) != 1:
        raise argparse.ArgumentTypeError(f"expected one number, got {text!r}")
    return values[0]


def mebibytes(text: str) -> float:
    text = text.strip()  # a number Parser marked as a value
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size in MiB, got {text!r}") from None
    if not 0 < value < float(1 << 30):
        raise argparse.ArgumentTypeError("must be a positive number of MiB")
    return value


def add_c_options(parser: argparse.ArgumentParser) -> None:
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


def formats_read() -> str:
    """The frameworks the frontends read, from their table: ``Keras, ONNX, ...``."""
    from ..frontends import FORMATS

    return ", ".join(fmt.title for fmt in FORMATS)


def model_file_help() -> str:
    """What the model argument takes, from the frontends' table: each file format's usual
    names, then the frameworks read only as Python objects."""
    from ..frontends import FORMATS

    files = "; ".join(f"{fmt.title} {', '.join(fmt.suffixes)}" + (" (+ --weights)" if fmt.takes_weights else "")
                      for fmt in FORMATS if fmt.suffixes)
    objects = [fmt.title for fmt in FORMATS if not fmt.suffixes]
    also = f" ({' and '.join(objects)} models: export them to .onnx)" if objects else ""
    return f"model file: {files}; the format is found from the content{also}"


def add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help=model_file_help())
    parser.add_argument("--weights", metavar="H5", help="weights file (model.save_weights) for a Keras "
                                                       "architecture JSON given as the model")
    parser.add_argument("--max-size", type=mebibytes, default=256, metavar="MIB",
                        help="largest model to read, in MiB; the limits on what it declares scale with it "
                             "(default 256)")


def add_calibrate_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--calibrate", metavar="DATA", help="with --dtype int8, a float model: quantise it "
                        "(post-training, as TFLite's converter: per-channel int8 weights, int8 activations) from "
                        "the ranges its tensors take on these rows (.npy or .csv, as --data)")


def add_mkdir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mkdir", action="store_true", help="create the output's folder if it does not exist")


def add_formula_options(parser: argparse.ArgumentParser, default_digits: int) -> None:
    group = parser.add_argument_group("formula", "LaTeX and formula output")
    group.add_argument("--digits", type=digits, default=default_digits,
                       help=f"significant digits of the weights (default {default_digits}; 0 = exact)")
    group.add_argument("--expand", action="store_true", help="write activations in exponentials, not by name")
    group.add_argument("--layout", choices=("auto", "nested", "named"), default="auto",
                       help="one nested expression, or a line per neuron (auto: nested for small networks)")


def digits(text: str) -> Optional[int]:
    text = text.strip()  # a number Parser marked as a value
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value or None


def target_help(targets: Sequence[str], default: str, what: str = "the language to emit") -> str:
    """``--target``'s help: every target of the backends registry in ``targets``, its
    file suffix and number types, and the default."""
    from ..backends import BACKENDS

    listed = "; ".join(f"{name} ({BACKENDS[name].suffix}: {', '.join(BACKENDS[name].supported)})"
                       for name in sorted(targets))
    return f"{what}: {listed} (default: {default})"


