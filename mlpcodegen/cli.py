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


def cmd_convert(args: argparse.Namespace) -> int:
    from . import backends
    from ._files import write_atomic
    from .frontends.keras import load

    started = time.perf_counter()
    net = load(args.model)
    name = args.name or _default_name(args.model)
    backend = backends.get_backend(args.target)
    source = backends.emit(net, args.target, dtype=args.dtype, name=name)
    if args.output in (None, "-"):
        sys.stdout.write(source)
        return 0
    write_atomic(args.output, source)
    written = [args.output]
    if args.header:
        if backend.header is None:
            raise MlpCodegenError(f"target {args.target!r} has no header")
        header = str(Path(args.output).with_suffix(".h"))
        write_atomic(header, backend.header(net, dtype=args.dtype, name=name))
        written.append(header)
    elapsed = time.perf_counter() - started
    print(f"{net.describe()} -> {', '.join(written)} ({elapsed * 1e3:.0f} ms)", file=sys.stderr)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    _quiet_tensorflow()
    from .harness.verify import verify

    domain = tuple(args.domain) if args.domain else None
    report = verify(args.model, args.target, args.dtype, n=args.n, domain=domain, seed=args.seed)
    print(report.table(), end="")
    if not report.ok:
        print("verification FAILED: an error exceeds its bound", file=sys.stderr)
        return 1
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    _quiet_tensorflow()
    from .demo import run_demo

    return run_demo(Path(args.model) if args.model else SEED_MODEL)


# ------------------------------------------------------------------- parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


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
    convert.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    convert.add_argument("--name", help="function name (default: the model file's stem)")
    convert.add_argument("-o", "--output", help="output file (default: standard output)")
    convert.add_argument("--header", action="store_true", help="also write a header next to the output")
    convert.set_defaults(run=cmd_convert)

    verify = sub.add_parser("verify", help="check a target against model.predict",
                            description="Compare a compiled target against the float64 reference "
                                        "and model.predict; exit 1 when a tolerance is exceeded.")
    verify.add_argument("model", help="path of a .keras or legacy .h5 model")
    verify.add_argument("--target", default="c", choices=sorted(BACKENDS))
    verify.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    verify.add_argument("-n", type=_positive_int, default=1000, help="number of random inputs")
    verify.add_argument("--domain", nargs=2, type=float, metavar=("LOW", "HIGH"),
                        help="input range for every feature (default [-1, 1])")
    verify.add_argument("--seed", type=int, default=0)
    verify.set_defaults(run=cmd_verify)

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
