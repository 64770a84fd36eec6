"""Every way to run one model, timed side by side in one process:
``mlpcodegen bench MODEL`` and ``python bench/bench_speed.py``.

Paths: the runtimes a user would otherwise pick (``model.predict``, eager ``model(x)``,
a NumPy forward pass, ONNX Runtime on a graph built from the IR, LiteRT with XNNPACK),
every mlpcodegen target that runs in-process (C via cffi: the array call, the bound
call with preallocated buffers, the scalar entry; Numba; NumPy; pure Python), the floor
of a cffi call and of a Numba call, and the generated C timed inside C next to a plain
C loop kernel.  Single-sample latency is the median over repeats of back-to-back calls;
batch throughput the median (best, for C inside C) over repeats of one call on n rows.
Before it is timed, every path's output on 256 rows is compared with the float64
reference (max error in float32 ULPs at the reference magnitude): a fast wrong answer
is reported as such.  Ratios are taken within the run.
"""
from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ..core.errors import MlpCodegenError
from ..core.ir import Network
from ..core.reference import evaluate_magnitude
from ..runtime import load
from .report import compare

ROWS = (10_000, 1_000_000)


@dataclass
class Timing:
    """One way to run the model: latency of one sample, throughput per row count."""
    name: str
    kind: str  # "peer", "mlpcodegen", "floor" or "in C"
    one: Optional[float] = None  # seconds per call
    rates: dict[int, float] = field(default_factory=dict)  # rows -> samples per second
    ulp: Optional[float] = None  # max error vs the reference, float32 ULPs
    note: str = ""


@dataclass
class ModelBench:
    label: str
    describe: str
    paths: list[Timing]
    facts: dict[str, float] = field(default_factory=dict)  # conversion/compile seconds, code bytes

    def get(self, name: str) -> Optional[Timing]:
        return next((p for p in self.paths if p.name == name), None)


def median_seconds(call: Callable[[], object], repeats: int, inner: int = 1) -> float:
    """Median over ``repeats`` timings of ``inner`` back-to-back calls, per call."""
    call()  # warm up: first calls pay for imports, tracing and page faults
    times = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        for _ in range(inner):
            call()
        times.append((time.perf_counter_ns() - start) / inner)
    return float(np.median(times)) * 1e-9


def _inner(seconds_guess: float) -> int:
    """Back-to-back calls per timing: about 2 ms worth, at least 1."""
    return max(1, min(20_000, int(2e-3 / max(seconds_guess, 1e-9))))


class _Runner:
    def __init__(self, net: Network, rows: Sequence[int], quick: bool, progress: Callable[[str], None]):
        self.net, self.rows, self.quick, self.progress = net, tuple(rows), quick, progress
        rng = np.random.default_rng(0)
        self.data = {n: rng.uniform(-1, 1, (n, net.n_inputs)).astype(np.float32) for n in self.rows}
        self.check_x = self.data[min(self.rows)][:256]
        self.reference, self.scale = evaluate_magnitude(net, self.check_x.astype(np.float64))
        self.one = self.check_x[:1].copy()
        self.paths: list[Timing] = []

    def ulp(self, batch: Callable[[np.ndarray], Any]) -> float:
        got = np.asarray(batch(self.check_x), dtype=np.float64).reshape(self.reference.shape)
        return compare(got, self.reference, self.scale, "float32")[2]

    def add(self, name: str, kind: str, one: Optional[Callable[[], object]] = None,
            batch: Optional[Callable[[np.ndarray], Any]] = None, max_rows: Optional[int] = None,
            check: Optional[Callable[[np.ndarray], Any]] = None, note: str = "") -> Timing:
        path = Timing(name, kind, note=note)
        try:
            checker = check or batch
            if checker is not None:
                path.ulp = self.ulp(checker)
            if one is not None:
                guess = median_seconds(one, 3)
                path.one = median_seconds(one, 5 if self.quick else 15, _inner(guess))
            for n in self.rows if batch is not None else ():
                if max_rows is not None and n > max_rows:
                    continue
                x = self.data[n]
                repeats = 3 if (self.quick or n >= 1_000_000) else 7
                path.rates[n] = n / median_seconds(lambda: batch(x), repeats)
        except Exception as exc:  # a peer that cannot run this model is reported, not fatal
            path.note = f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
        return self.record(path)

    def record(self, path: Timing) -> Timing:
        """Keep ``path`` and show it on the progress stream."""
        self.paths.append(path)
        one_text = f"{path.one * 1e9:12,.0f} ns" if path.one else " " * 15
        rates = "  ".join(f"{n:,} rows {r:10.3g}/s" for n, r in path.rates.items())
        self.progress(f"  {path.name:34} {one_text}  {rates} {path.note}")
        return path


def _numpy_forward(net: Network) -> Callable[[np.ndarray], np.ndarray]:
    """A float32 NumPy forward pass over the IR's Dense layers (what a user writes)."""
    from ..core.ir import Dense

    acts = {"linear": lambda z: z, "relu": lambda z: np.maximum(z, 0), "tanh": np.tanh,
            "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
            "softmax": lambda z: (lambda e: e / e.sum(-1, keepdims=True))(np.exp(z - z.max(-1, keepdims=True)))}
    layers = []
    for layer in net.layers:
        if not isinstance(layer, Dense) or layer.activation.name not in acts:
            raise MlpCodegenError(f"the NumPy forward pass covers Dense layers with {', '.join(acts)}")
        layers.append((layer.kernel.astype(np.float32),
                       None if layer.bias is None else layer.bias.astype(np.float32), acts[layer.activation.name]))

    def forward(x: np.ndarray) -> np.ndarray:
        for kernel, bias, act in layers:
            x = x @ kernel
            if bias is not None:
                x = x + bias
            x = act(x)
        return x

    return forward


def _numba_floor() -> tuple[Callable, Callable]:
    import numba

    @numba.njit(cache=False, nogil=True)
    def floor_into(x, y):  # the least a jitted call with two arrays can cost
        pass

    @numba.njit(cache=False, nogil=True)
    def floor_scalar(v):
        return v

    return floor_into, floor_scalar


def _cffi_floor(n_in: int, n_out: int) -> Callable[[], None]:
    """An empty C function called with two preallocated pointers: the cffi floor."""
    from ..runtime.cffi_build import build_module

    module = build_module("void empty(const float *x, float *y) { (void)x; (void)y; }\n",
                          "void empty(const float *x, float *y);\n")
    ffi, lib = module.ffi, module.lib
    # the same shape of call as CompiledNetwork.bind(): a partial holding the pointers
    return functools.partial(lib.empty, ffi.new("float[]", n_in), ffi.new("float[]", n_out))


#: What LiteRT's C++ prints (to file descriptor 2, past Python's sys.stderr) when an
#: interpreter first runs: "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
LITERT_LOG = r"^INFO: Created TensorFlow Lite XNNPACK delegate"


@contextlib.contextmanager
def native_output_filtered(pattern: str):
    """File descriptors 1 and 2 captured while the block runs (native code writes there,
    not through sys.stdout/stderr), then every captured line not matching ``pattern``
    passed on to stderr: a library's start-up log does not land among the progress lines
    and the table."""
    import re

    sys.stdout.flush(), sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 1), os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush(), sys.stderr.flush()
            for fd, copy in zip((1, 2), saved):
                os.dup2(copy, fd)
                os.close(copy)
            capture.seek(0)
            kept = [line for line in capture.read().decode("utf-8", "replace").splitlines()
                    if line.strip() and not re.search(pattern, line)]
    if kept:
        print("\n".join(kept), file=sys.stderr)


def _peers(run: _Runner, model: Any) -> None:
    net, one = run.net, run.one
    if model is not None:
        run.add("model.predict", "peer", lambda: model.predict(one, verbose=0),
                lambda x: model.predict(x, batch_size=len(x), verbose=0), max_rows=min(run.rows),
                note="batch_size = all rows; timed on the smaller batch")
        run.add("model(x) eager", "peer", lambda: model(one), check=lambda x: np.asarray(model(x)))
    try:
        forward = _numpy_forward(net)
        run.add("NumPy forward pass (float32)", "peer", lambda: forward(one), forward)
    except MlpCodegenError as exc:
        run.record(Timing("NumPy forward pass (float32)", "peer", note=str(exc)))
    try:
        from .onnx_peer import onnx_runtime_session

        ort_one, ort_many = onnx_runtime_session(net), onnx_runtime_session(net)
        run.add("ONNX Runtime (1 thread)", "peer", lambda: ort_one(one), ort_many)
    except (ImportError, MlpCodegenError) as exc:
        run.record(Timing("ONNX Runtime (1 thread)", "peer", note=f"not run: {exc}"))
    if model is not None:
        try:
            from .peers import litert_runner

            with native_output_filtered(LITERT_LOG):  # its C logs to fd 2 on the first call
                lite_one, lite_many = litert_runner(model), litert_runner(model)
                lite_one(one), lite_many(one)
            run.add("LiteRT, XNNPACK (1 thread)", "peer", lambda: lite_one(one), lite_many)
        except Exception as exc:  # no LiteRT, or its converter refuses the model: the other paths still run
            run.record(Timing("LiteRT, XNNPACK (1 thread)", "peer", note=f"not run: {exc}"))


def _targets(run: _Runner, facts: dict) -> None:
    net, row = run.net, run.one[0]
    started = time.perf_counter()
    c = load(net, "c", dtype="float32", name="net")
    facts["emit + cffi build, or load from the cache (s)"] = time.perf_counter() - started
    run.add("C via cffi: net(x)", "mlpcodegen", lambda: c(row), c)
    bound = c.bind()
    bound.x[:] = row
    run.add("C via cffi: bound call", "mlpcodegen", bound.run, check=c,
            note="preallocated x/y buffers, no conversion per call")
    if c.scalar is not None:
        value = float(row[0])
        run.add("C via cffi: scalar entry", "mlpcodegen", lambda: c.scalar(value), check=c)
    run.add("empty cffi call (2 pointers)", "floor", _cffi_floor(net.n_inputs, net.n_outputs))
    nb = load(net, "numba", dtype="float32", name="net")
    run.add("Numba: net(x)", "mlpcodegen", lambda: nb(row), nb)
    into, out = nb.into, np.empty(net.n_outputs, np.float32)
    run.add("Numba: net_into(x, y)", "mlpcodegen", lambda: into(row, out), check=nb)
    floor_into, floor_scalar = _numba_floor()
    run.add("empty Numba call (2 arrays)", "floor", lambda: floor_into(row, out))
    npm = load(net, "numpy", dtype="float32", name="net")
    run.add("NumPy module target", "mlpcodegen", lambda: npm(row), npm, max_rows=min(run.rows))
    py = load(net, "python", dtype="float64", name="net")
    run.add("pure Python target", "mlpcodegen", lambda: py(row), lambda x: py(x[:500]) if len(x) > 500 else py(x),
            max_rows=0, note="batch: not timed (one row at a time)")


def _in_c(run: _Runner) -> None:
    from .cdriver import time_in_c

    try:
        result = time_in_c(run.net, run.rows)
    except MlpCodegenError as exc:
        run.record(Timing("generated C, timed inside C", "in C", note=f"not run: {exc}"))
        return
    for name, one, batch in (("generated C, timed inside C", result.one, result.batch),
                             ("plain C loops, timed inside C", result.plain_one, result.plain_batch)):
        run.record(Timing(name, "in C", one, {n: n / t for n, t in batch.items()}))


def _facts(net: Network, model_file: Optional[Path], facts: dict) -> None:
    """Conversion time (a fresh process, no TensorFlow), C compile time and code size."""
    from ..backends import emit
    from ..runtime.cffi_build import DEFAULT_FLAGS

    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        if model_file is not None:
            command = [sys.executable, "-m", "mlpcodegen.app.cli", "convert", str(model_file), "-o", str(work / "m.c")]
            times = []
            for _ in range(3):
                started = time.perf_counter()
                subprocess.run(command, check=True, capture_output=True, env={**os.environ, "CI": ""})
                times.append(time.perf_counter() - started)
            facts["convert .keras -> C, fresh process (s)"] = float(np.median(times))
        source = emit(net, "c", dtype="float32", name="net")
        (work / "net.c").write_text(source)
        facts["generated C (bytes)"] = len(source.encode())
        compiler = shutil.which(os.environ.get("CC", "gcc"))
        if compiler is None:
            return
        started = time.perf_counter()
        subprocess.run([compiler, "-std=c99", *DEFAULT_FLAGS, "-c", str(work / "net.c"), "-o", str(work / "net.o")],
                       check=True)
        facts["compile C, gcc " + " ".join(DEFAULT_FLAGS) + " (s)"] = time.perf_counter() - started
        size = shutil.which("size")
        if size:
            text = subprocess.run([size, "-A", str(work / "net.o")], capture_output=True, text=True).stdout
            facts["machine code + constants (bytes)"] = sum(
                int(line.split()[1]) for line in text.splitlines()
                if line.startswith((".text", ".rodata")) and len(line.split()) > 1)


def bench_model(model: Any, net: Network, label: str, *, rows: Sequence[int] = ROWS, quick: bool = False,
                model_file: Optional[Path] = None,
                progress: Callable[[str], None] = lambda text: print(text, file=sys.stderr)) -> ModelBench:
    """Time every path for one model (``model``: the Keras model, or None to skip the
    Keras peers; ``net``: its IR, float32 weights as deployed)."""
    progress(f"{label}: {net.describe()}")
    run, facts = _Runner(net, rows, quick, progress), {}
    _peers(run, model)
    _targets(run, facts)
    _in_c(run)
    _facts(net, model_file, facts)
    return ModelBench(label, net.describe(), run.paths, facts)
