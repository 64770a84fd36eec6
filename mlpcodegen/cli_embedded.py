"""Command line for microcontrollers: ``mlpcodegen size`` and ``verify --core``.

Both build the C of the embedded profile (``--profile embedded`` is implied) with
``arm-none-eabi-gcc`` and, for ``verify --core``, run it on ``qemu-system-arm``
(:mod:`mlpcodegen.runtime.cross`, :mod:`mlpcodegen.harness.cortex`).
"""
from __future__ import annotations

import argparse
import sys
import time

#: Optimisation levels ``size`` reports by default, and the one ``verify --core`` builds with.
OPT_CHOICES = ("Os", "O2", "O3", "O1")
#: Most inputs ``verify --core`` puts in an image (16 inputs: 256 KiB of flash).
MAX_CORE_ROWS = 4096


def _options(args: argparse.Namespace, net, common):
    from .backends.c import check_name
    from .harness.cortex import Options

    name = getattr(args, "name", None) or common.default_name(args.model, "c")
    check_name(name)
    dtype = args.dtype or "float32"
    # size plans q15 for --domain here; verify --core for the inputs it draws (harness.cortex)
    domain = common.fixed_domain(args, net.n_inputs, dtype) if args.command == "size" else None
    return Options(dtype=dtype, name=name, math=args.math, unroll=args.unroll, optimize=args.optimize,
                   domain=domain)


def add_size(sub, common) -> None:
    """Add the ``size`` command to the subparsers ``sub``."""
    from .backends import get_backend

    size = sub.add_parser("size", help="flash and stack of the embedded C on Cortex-M cores",
                          description="Cross-compile the embedded profile's C with arm-none-eabi-gcc and report "
                                      "text/rodata/data/bss of the predictor alone, what math functions and "
                                      "soft-float helpers add, and the stack of each function, per core and "
                                      "optimisation level.")
    common.add_model_options(size)
    size.add_argument("--core", nargs="+", choices=common.cores, default=list(common.cores),
                      help="cores to build for (default: all)")
    size.add_argument("--opt", nargs="+", choices=OPT_CHOICES, default=["Os", "O2"],
                      help="gcc optimisation levels, without the dash (default: Os O2)")
    size.add_argument("--dtype", choices=get_backend("c").supported, default="float32",
                      help="q15: the fixed-point C (integer predictor and its float wrapper)")
    size.add_argument("--name", help="function name (default: from the model file's name)")
    size.add_argument("--domain", nargs=2, type=common.floats, metavar=("LOW", "HIGH"),
                      help="with --dtype q15 (required, unless a min/max input scaling gives it): the inputs' "
                           "range the fixed-point formats are planned for (one number for every input or one "
                           "per input, comma-separated)")
    common.add_c_options(size)
    common.add_scaling_options(size)
    common.add_calibrate_option(size)
    size.set_defaults(run=lambda args: cmd_size(args, common))


def cmd_size(args: argparse.Namespace, common) -> int:
    from .harness.cortex import measure_sizes, size_table

    started = time.perf_counter()
    common.check_int8(args)
    if args.domain and args.dtype == "float32":
        raise common.UsageError("--domain plans fixed-point formats: it goes with --dtype q15")
    common.require_fixed_domain(args, args.dtype)
    net = common.scaled(common.load(args), args)
    options = _options(args, net, common)
    rows = measure_sizes(net, options, args.core, [f"-{level}" for level in args.opt])
    print(size_table(net, options, rows), end="")
    print(f"({time.perf_counter() - started:.1f} s)", file=sys.stderr)
    return 0


def verify_on_core(args: argparse.Namespace, net, domain, common) -> int:
    """``mlpcodegen verify --core CORE``: run the embedded C on an emulated core; exit code."""
    from .harness.cortex import verify_on_core as run
    from .runtime.cross import tool

    if args.target != "c":
        raise common.UsageError("--core runs the C target: drop --target or use --target c")
    if args.n > MAX_CORE_ROWS:
        raise common.UsageError(f"--core runs at most {MAX_CORE_ROWS} inputs (-n): they are compiled into the "
                                "image, with the outputs printed through semihosting")
    tool("arm-none-eabi-gcc"), tool("qemu-system-arm")  # a missing toolchain: said before any work
    inputs, outputs = common.scalings(args)
    scaled = common.scaled(net, args)
    options = _options(args, scaled, common)
    peer = _peer(args, common)
    report, instructions = run(scaled, args.core, options, peer=peer, n=args.n, domain=domain, data=args.data,
                               seed=args.seed, input_scaling=inputs, output_scaling=outputs)
    print(report.table(), end="")
    print(f"instructions per inference on {args.core} (-Os, QEMU -icount, mean of the timed rows): "
          f"{instructions:.0f}")
    if not report.ok:
        print("verification FAILED: an error exceeds its bound", file=sys.stderr)
        return 1
    return 0


def _peer(args: argparse.Namespace, common):
    """The model file's own framework, for every format (Keras ``model.predict``, ONNX
    Runtime, ...), read under the ``--max-size`` limits."""
    from .frontends import file_format
    from .harness.peers import as_peer
    from .limits import DEFAULT_LIMITS, ReadLimits

    size = getattr(args, "max_size", None)
    limits = DEFAULT_LIMITS if size is None else ReadLimits.for_size(size)
    if file_format(args.model).name == "keras":
        common.import_tensorflow_quietly()
    return as_peer(args.model, weights=args.weights, limits=limits)
