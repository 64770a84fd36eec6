"""Running a language that does not load into this process (JavaScript, Rust, Go, Java,
WebAssembly; and C built as a plain program, the bit reference) as a subprocess.

The generated source and a small driver are built with the language's real toolchain
into a cache folder keyed on their text (a hit builds nothing); the driver reads rows of
float64 inputs (little-endian) on stdin, converts them to the numeric type as the
language's caller would, and writes the outputs' bytes on stdout.  Modes: ``one`` (the
one-sample function per row), ``batch`` (the batch function), ``time`` (its own timing
loop after a warm-up: nanoseconds per one-sample call and batch rows per second, so
process start and pipes are not timed; CPU time of the timing thread, Node's process, so
that on a shared host the time others' processes hold the core is not counted).  The generated text is compiled or loaded by the
toolchain, never evaluated here.
"""
from __future__ import annotations

import hashlib
import os
import sys
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from ..backends import emit
from ..core.errors import MlpCodegenError, UnsupportedError
from ..core.ir import Network
from ..core.numeric import NumericType
from .cache import cache_folder

_REMEMBERED = 256  # rows of a batch call whose one-sample outputs are kept
BUILD_TIMEOUT = 600.0
RUN_TIMEOUT = 600.0


@dataclass(frozen=True)
class Toolchain:
    """How one language's program is laid out, built and run.

    ``files(source, net, numeric, name)`` -> relative path -> text (the generated source
    included); ``build(folder, name)`` -> the commands run in the folder; ``run`` -> the command that
    reads stdin (the mode is appended); ``tools``: the commands it needs (Debian packages
    named by tests/toolchains.py)."""

    files: Callable[[str, Network, NumericType, str], dict[str, str]]
    build: Callable[[Path, str], list[list[str]]]
    run: Callable[[Path], list[str]]
    tools: tuple[str, ...]
    env: Callable[[Path], dict] = lambda folder: {}


def _cache_root() -> Path:
    return cache_folder("languages")


def missing_tools(toolchain: Toolchain) -> list[str]:
    return [tool for tool in toolchain.tools if shutil.which(tool) is None]


class SubprocessNetwork:
    """A built program of one network: ``predict(x)`` (or calling it) gives the outputs of
    one sample (1-D) or of rows (2-D) in the numeric type; :meth:`time` measures inside."""

    def __init__(self, folder: Path, toolchain: Toolchain, n_inputs: int, n_outputs: int, numeric: NumericType,
                 mode: str = "one") -> None:
        self.folder, self.toolchain, self.mode = folder, toolchain, mode
        self.n_inputs, self.n_outputs, self.numeric = n_inputs, n_outputs, numeric
        self._singles: dict[bytes, np.ndarray] = {}

    def _run(self, arguments: list[str], x: np.ndarray) -> bytes:
        command = self.toolchain.run(self.folder) + arguments
        done = subprocess.run(command, input=np.ascontiguousarray(x, dtype="<f8").tobytes(), capture_output=True,
                              timeout=RUN_TIMEOUT, cwd=self.folder, env={**os.environ, **self.toolchain.env(self.folder)})
        if done.returncode != 0:
            tail = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
            raise MlpCodegenError(f"the {self.folder.name} program failed (exit {done.returncode}): {' / '.join(tail)}")
        return done.stdout

    def predict(self, x: object, mode: Optional[str] = None) -> np.ndarray:
        """Rows (2-D) through the batch function (``mode`` "one": the one-sample function
        per row); one sample (1-D) through the one-sample function.  Rows given as a
        batch are also run through the one-sample function in a second process, and a
        later 1-D call of one of them answers with that output (the program's own, not a
        launch per row: a harness checks 64 single calls)."""
        array = np.asarray(x, dtype=np.float64)
        rows = array.reshape(1, -1) if array.ndim == 1 else array
        if rows.ndim != 2 or rows.shape[1] != self.n_inputs:
            raise ValueError(f"expected rows of {self.n_inputs} inputs, got shape {array.shape}")
        if array.ndim == 1 and mode is None and rows.tobytes() in self._singles:
            return self._singles[rows.tobytes()].copy()
        if len(rows) == 0:
            return np.zeros((0, self.n_outputs), dtype=self.numeric.np_dtype)
        out = self._outputs(rows, mode or ("one" if array.ndim == 1 else "batch"))
        if array.ndim == 2 and mode is None:
            singles = self._outputs(rows[:_REMEMBERED], "one")
            self._singles = {row.tobytes(): value for row, value in zip(rows[:_REMEMBERED], singles)}
        return out[0] if array.ndim == 1 else out

    def _outputs(self, rows: np.ndarray, mode: str) -> np.ndarray:
        raw = self._run([mode], rows)
        out = np.frombuffer(raw, dtype=self.numeric.np_dtype.newbyteorder("<")).astype(self.numeric.np_dtype)
        if out.size != len(rows) * self.n_outputs:
            raise MlpCodegenError(f"the {self.folder.name} program wrote {out.size} values, not "
                                  f"{len(rows) * self.n_outputs}")
        return out.reshape(len(rows), self.n_outputs)

    __call__ = predict

    def time(self, x: np.ndarray, calls: int = 200000, passes: int = 20) -> tuple[float, float]:
        """(nanoseconds per one-sample call, batch rows per second), timed by the program."""
        text = self._run(["time", str(calls), str(passes)], np.asarray(x, dtype=np.float64)).decode().split()
        return float(text[0]), float(text[1])


def build(net: Network, target: str, toolchain: Toolchain, numeric: NumericType, name: str,
          source: Optional[str] = None, mode: str = "one", tag: str = "") -> SubprocessNetwork:
    """``net`` emitted for ``target`` (or ``source``), built with ``toolchain`` (cached)."""
    absent = missing_tools(toolchain)
    if absent:
        raise UnsupportedError(f"target {target!r} needs {', '.join(absent)} on PATH (Debian: see tests/toolchains.py)")
    source = emit(net, target, dtype=numeric.name, name=name) if source is None else source
    files = toolchain.files(source, net, numeric, name)
    digest = hashlib.sha256(repr((target, tag, sorted(files.items()))).encode()).hexdigest()[:24]
    folder = _cache_root() / f"{target}-{digest}"
    done = folder / ".built"
    if not done.is_file():
        work = folder.with_name(folder.name + f".tmp{os.getpid()}")
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        for relative, text in files.items():
            path = work / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        env = {**os.environ, **toolchain.env(work)}
        for command in toolchain.build(work, name):
            result = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=BUILD_TIMEOUT, env=env)
            if result.returncode != 0:
                tail = (result.stderr or result.stdout).strip().splitlines()[-5:]
                raise MlpCodegenError(f"building the {target} program failed ({command[0]}): {' / '.join(tail)}")
        (work / ".built").write_text("ok\n")
        shutil.rmtree(folder, ignore_errors=True)
        try:
            work.rename(folder)
        except OSError:  # another process built it meanwhile
            shutil.rmtree(work, ignore_errors=True)
    return SubprocessNetwork(folder, toolchain, net.n_inputs, net.n_outputs, numeric, mode)


# --------------------------------------------------------------------------- the toolchains
def _js_files(source: str, net: Network, numeric: NumericType, name: str) -> dict[str, str]:
    array = "Float32Array" if numeric.name == "float32" else "Float64Array"
    driver = f"""\
import * as m from "./model.mjs";
import {{ readFileSync }} from "node:fs";
const raw = readFileSync(0);
const x = new Float64Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
const nIn = {net.n_inputs}, nOut = {net.n_outputs}, n = x.length / nIn;
const mode = process.argv[2];
function one() {{
    const out = new {array}(n * nOut);
    for (let i = 0; i < n; i++) out.set(m.{name}(x.subarray(i * nIn, (i + 1) * nIn)), i * nOut);
    return out;
}}
// CPU time (user + system) in ns: on a shared host a preempted process's wall time is not its cost
const cpu = () => {{ const u = process.cpuUsage(); return (u.user + u.system) * 1000; }};
if (mode === "time") {{
    const calls = Number(process.argv[3]), passes = Number(process.argv[4]);
    const rows = [];
    for (let i = 0; i < n; i++) rows.push(x.slice(i * nIn, (i + 1) * nIn));
    let sink = 0;
    // the outputs written into caller-owned arrays (the out argument): no allocation per call
    const o = new {array}(nOut), ys = new {array}(n * nOut);
    // the loops are functions, warmed up by the same calls that are then timed: a second loop
    // written at top level would start again in the interpreter and be on-stack replaced
    // partway (seed: 95 ns per call over 10^5 calls, 64 ns in the optimised code)
    function ones(count) {{ let s = 0; for (let i = 0; i < count; i++) s += m.{name}(rows[i % n], o)[0]; return s; }}
    function batches(count) {{ let s = 0; for (let p = 0; p < count; p++) s += m.{name}Batch(x, ys)[0]; return s; }}
    for (let r = 0; r < 3; r++) sink += ones(calls);
    let t0 = cpu();
    sink += ones(calls);
    const one_ns = (cpu() - t0) / calls;
    for (let r = 0; r < 3; r++) sink += batches(passes);
    t0 = cpu();
    sink += batches(passes);
    const rate = n * passes / ((cpu() - t0) / 1e9);
    process.stdout.write(`${{one_ns}} ${{rate}} ${{sink}}\\n`);
}} else {{
    const out = mode === "batch" ? m.{name}Batch(x) : one();
    process.stdout.write(Buffer.from(out.buffer, out.byteOffset, out.byteLength));
}}
"""
    return {"model.mjs": source, "driver.mjs": driver}


JS = Toolchain(files=_js_files, build=lambda folder, name: [["node", "--check", "model.mjs"]],
               run=lambda folder: ["node", str(folder / "driver.mjs")], tools=("node",))

_C_TYPES = {"float32": "float", "float64": "double"}


def c_driver(net: Network, numeric: NumericType, name: str, include: str = '#include "model.c"') -> str:
    """A C program around the generated C: the same protocol as every driver."""
    t = _C_TYPES[numeric.name]
    return f"""\
{include}
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* the thread's CPU time: on a shared host a preempted program's wall time is not its cost */
static double now(void) {{ struct timespec s; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &s); return (double)s.tv_sec * 1e9 + (double)s.tv_nsec; }}

int main(int argc, char **argv)
{{
    size_t cap = 1 << 16, len = 0, got, n, i, p;
    unsigned char *raw = malloc(cap);
    {t} *x, *y;
    while ((got = fread(raw + len, 1, cap - len, stdin)) > 0) {{ len += got; if (len == cap) raw = realloc(raw, cap *= 2); }}
    n = len / 8 / {net.n_inputs}u;
    x = malloc((n * {net.n_inputs}u + 1) * sizeof *x);
    y = malloc((n * {net.n_outputs}u + 1) * sizeof *y);
    for (i = 0; i < n * {net.n_inputs}u; ++i) {{ double v; memcpy(&v, raw + 8 * i, 8); x[i] = ({t})v; }}
    if (argc > 1 && strcmp(argv[1], "time") == 0) {{
        size_t calls = (size_t)atol(argv[2]), passes = (size_t)atol(argv[3]);
        double t0, one, sink = 0.0;
        for (i = 0; i < calls; ++i) {{ {name}(x + (i % n) * {net.n_inputs}u, y); sink += (double)y[0]; }}
        t0 = now();
        for (i = 0; i < calls; ++i) {{ {name}(x + (i % n) * {net.n_inputs}u, y); sink += (double)y[0]; }}
        one = (now() - t0) / (double)calls;
        t0 = now();
        for (p = 0; p < passes; ++p) {{ {name}_batch(x, y, n); sink += (double)y[0]; }}
        printf("%.6g %.6g %g\\n", one, (double)(n * passes) / ((now() - t0) / 1e9), sink);
        return 0;
    }}
    if (argc > 1 && strcmp(argv[1], "batch") == 0) {name}_batch(x, y, n);
    else for (i = 0; i < n; ++i) {name}(x + i * {net.n_inputs}u, y + i * {net.n_outputs}u);
    fwrite(y, sizeof *y, n * {net.n_outputs}u, stdout);
    return 0;
}}
"""


def c_toolchain(flags: tuple[str, ...] = ("-O2", "-ffp-contract=off")) -> Toolchain:
    """C as a plain program: with the default flags, the bit reference of the other
    languages (no contraction: a*b + c rounds twice, as every language here rounds it)."""
    return Toolchain(
        files=lambda source, net, numeric, name: {"model.c": source, "driver.c": c_driver(net, numeric, name)},
        build=lambda folder, name: [["gcc", "-std=gnu99", *flags, "-o", "run", "driver.c", "-lm"]],
        run=lambda folder: [str(folder / "run")], tools=("gcc",))


_RUST_T = {"float32": "f32", "float64": "f64"}


def _rust_files(source: str, net: Network, numeric: NumericType, name: str) -> dict[str, str]:
    t, n_in, n_out = _RUST_T[numeric.name], net.n_inputs, net.n_outputs
    driver = f"""\
mod model;
use std::io::{{Read, Write}};
use std::hint::black_box;

// the thread's CPU time (clock_gettime from the C library std links on Linux): on a shared
// host a preempted program's wall time is not its cost
#[repr(C)]
struct Timespec {{ s: i64, ns: i64 }}
extern "C" {{ fn clock_gettime(clock: i32, t: *mut Timespec) -> i32; }}
fn cpu() -> f64 {{
    let mut t = Timespec {{ s: 0, ns: 0 }};
    unsafe {{ clock_gettime(3, &mut t); }}  // CLOCK_THREAD_CPUTIME_ID
    t.s as f64 * 1e9 + t.ns as f64
}}

fn main() {{
    let args: Vec<String> = std::env::args().collect();
    let mut raw = Vec::new();
    std::io::stdin().read_to_end(&mut raw).unwrap();
    let x: Vec<{t}> = raw.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap()) as {t}).collect();
    let n = x.len() / {n_in};
    let mut y: Vec<{t}> = vec![0.0; n * {n_out}];
    if args[1] == "time" {{
        let calls: usize = args[2].parse().unwrap();
        let passes: usize = args[3].parse().unwrap();
        let mut sink = 0.0f64;
        let mut one = [0.0{t}; {n_out}];
        for round in 0..2 {{
            let t0 = cpu();
            for i in 0..calls {{
                let row: &[{t}; {n_in}] = x[(i % n) * {n_in}..(i % n + 1) * {n_in}].try_into().unwrap();
                model::{name}(black_box(row), &mut one);
                sink += one[0] as f64;
            }}
            if round == 1 {{ print!("{{}} ", (cpu() - t0) / calls as f64); }}
        }}
        let t0 = cpu();
        for _ in 0..passes {{ model::{name}_batch(black_box(&x), &mut y); sink += y[0] as f64; }}
        println!("{{}} {{}}", (n * passes) as f64 / ((cpu() - t0) / 1e9), sink);
        return;
    }}
    if args[1] == "batch" {{
        model::{name}_batch(&x, &mut y);
    }} else {{
        for i in 0..n {{
            let row: &[{t}; {n_in}] = x[i * {n_in}..(i + 1) * {n_in}].try_into().unwrap();
            let out: &mut [{t}; {n_out}] = (&mut y[i * {n_out}..(i + 1) * {n_out}]).try_into().unwrap();
            model::{name}(row, out);
        }}
    }}
    let mut bytes = Vec::with_capacity(y.len() * 8);
    for v in &y {{ bytes.extend_from_slice(&v.to_le_bytes()); }}
    std::io::stdout().write_all(&bytes).unwrap();
}}
"""
    no_std = "#![no_std]\npub mod model;\n"  # the module builds with core alone, warnings denied
    return {"model.rs": source, "main.rs": driver, "nostd.rs": no_std}


RUST = Toolchain(files=_rust_files,
                 build=lambda folder, name: [["rustc", "--edition", "2021", "--crate-type", "lib", "-D", "warnings",
                                              "-o", "libnostd.rlib", "nostd.rs"],
                                       ["rustc", "--edition", "2021", "-O", "-C", "target-cpu=native", "-o", "run",
                                        "main.rs"]],
                 run=lambda folder: [str(folder / "run")], tools=("rustc",))


def _java_files(source: str, net: Network, numeric: NumericType, name: str) -> dict[str, str]:
    from ..backends.java import class_name

    f32 = numeric.name == "float32"
    t, cls, n_in, n_out = ("float" if f32 else "double"), class_name(name), net.n_inputs, net.n_outputs
    driver = f"""\
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;

public final class MlpcodegenDriver {{
    public static void main(String[] args) throws Exception {{
        final ByteBuffer in = ByteBuffer.wrap(System.in.readAllBytes()).order(ByteOrder.LITTLE_ENDIAN);
        final int n = in.remaining() / 8 / {n_in};
        final {t}[] x = new {t}[n * {n_in}];
        for (int i = 0; i < x.length; i++) x[i] = {"(float) " if f32 else ""}in.getDouble();
        final {t}[] y = new {t}[n * {n_out}];
        if (args[0].equals("time")) {{
            // the thread's CPU time: on a shared host a preempted program's wall time is not its cost
            final ThreadMXBean cpu = ManagementFactory.getThreadMXBean();
            final long calls = Long.parseLong(args[1]);
            final int passes = Integer.parseInt(args[2]);
            final {t}[][] rows = new {t}[n][{n_in}];
            for (int i = 0; i < n; i++) System.arraycopy(x, i * {n_in}, rows[i], 0, {n_in});
            final {t}[] one = new {t}[{n_out}];
            double sink = 0.0, ns = 0.0;
            // six rounds, the last one timed: C2's code settles after 200-300 thousand calls (cls: 1390 ns
            // per call measured after 200 thousand, 1060 after 500 thousand or more)
            for (int round = 0; round < 6; round++) {{
                final long t0 = cpu.getCurrentThreadCpuTime();
                for (long i = 0; i < calls; i++) {{ {cls}.{name}(rows[(int) (i % n)], one); sink += one[0]; }}
                ns = (cpu.getCurrentThreadCpuTime() - t0) / (double) calls;
            }}
            // the batch warmed up on 300 thousand rows: C2 compiles its block method after some
            // hundreds of calls (before that it runs C1's profiling code, 5-10x slower)
            for (int p = 0; p < Math.max(3, 300000 / Math.max(n, 1)); p++) {{ {cls}.{name}Batch(x, y, n); sink += y[0]; }}
            final long t0 = cpu.getCurrentThreadCpuTime();
            for (int p = 0; p < passes; p++) {{ {cls}.{name}Batch(x, y, n); sink += y[0]; }}
            final double rate = (double) n * passes / ((cpu.getCurrentThreadCpuTime() - t0) / 1e9);
            System.out.println(ns + " " + rate + " " + sink);
            return;
        }}
        if (args[0].equals("batch")) {cls}.{name}Batch(x, y, n);
        else {{
            final {t}[] row = new {t}[{n_in}], out = new {t}[{n_out}];
            for (int i = 0; i < n; i++) {{
                System.arraycopy(x, i * {n_in}, row, 0, {n_in});
                {cls}.{name}(row, out);
                System.arraycopy(out, 0, y, i * {n_out}, {n_out});
            }}
        }}
        final ByteBuffer out = ByteBuffer.allocate(y.length * {4 if f32 else 8}).order(ByteOrder.LITTLE_ENDIAN);
        for (final {t} v : y) out.put{"Float" if f32 else "Double"}(v);
        System.out.write(out.array());
        System.out.flush();
    }}
}}
"""
    return {f"{cls}.java": source, "MlpcodegenDriver.java": driver}


JAVA = Toolchain(files=_java_files,
                 build=lambda folder, name: [["javac", "-Xlint:all", "-Werror", "-d", ".",
                                        *sorted(p.name for p in folder.glob("*.java"))]],
                 # -XX:+AlwaysPreTouch: the heap's pages touched when committed, not on first use by the
                 # allocating thread (first-touch page faults of a growing heap are kernel time of the timed
                 # thread: cls float32 560 -> 627 ns per call when a round fell on them, 0.13 s per start)
                 run=lambda folder: ["java", "-Xss16m", "-XX:+AlwaysPreTouch", "-cp", str(folder), "MlpcodegenDriver"],
                 tools=("javac",))


def _go_files(source: str, net: Network, numeric: NumericType, name: str) -> dict[str, str]:
    from ..backends.go import exported, package

    t, n_in, n_out, public = numeric.name, net.n_inputs, net.n_outputs, exported(name)
    put = "PutUint32(out[i*4:], math.Float32bits(v))" if t == "float32" else "PutUint64(out[i*8:], math.Float64bits(v))"
    driver = f"""\
package main

import (
\t"encoding/binary"
\t"fmt"
\t"io"
\t"math"
\t"os"
\t"runtime"
\t"strconv"
\t"syscall"
\t"unsafe"

\tmodel "peer/{package(name)}"
)

// cpu: this thread's CPU time in ns (the goroutine locked to it; clock_gettime, not
// getrusage, whose per-thread time lags by up to a scheduler tick): on a shared host a
// preempted program's wall time is not its cost
func cpu() float64 {{
\tvar t syscall.Timespec
\tsyscall.Syscall(syscall.SYS_CLOCK_GETTIME, 3, uintptr(unsafe.Pointer(&t)), 0) // CLOCK_THREAD_CPUTIME_ID
\treturn float64(t.Nano())
}}

func main() {{
\truntime.LockOSThread()
\traw, _ := io.ReadAll(os.Stdin)
\tn := len(raw) / 8 / {n_in}
\tx := make([]{t}, n*{n_in})
\tfor i := range x {{
\t\tx[i] = {t}(math.Float64frombits(binary.LittleEndian.Uint64(raw[i*8:])))
\t}}
\ty := make([]{t}, n*{n_out})
\tswitch os.Args[1] {{
\tcase "time":
\t\tcalls, _ := strconv.Atoi(os.Args[2])
\t\tpasses, _ := strconv.Atoi(os.Args[3])
\t\tone := make([]{t}, {n_out})
\t\tsink := 0.0
\t\tvar ns float64
\t\tfor round := 0; round < 2; round++ {{
\t\t\tt0 := cpu()
\t\t\tfor i := 0; i < calls; i++ {{
\t\t\t\tr := (i % n) * {n_in}
\t\t\t\tmodel.{public}(x[r:r+{n_in}], one)
\t\t\t\tsink += float64(one[0])
\t\t\t}}
\t\t\tns = (cpu() - t0) / float64(calls)
\t\t}}
\t\tt0 := cpu()
\t\tfor p := 0; p < passes; p++ {{
\t\t\tmodel.{public}Batch(x, y)
\t\t\tsink += float64(y[0])
\t\t}}
\t\tfmt.Println(ns, float64(n*passes)/((cpu()-t0)/1e9), sink)
\t\treturn
\tcase "batch":
\t\tmodel.{public}Batch(x, y)
\tdefault:
\t\tfor i := 0; i < n; i++ {{
\t\t\tmodel.{public}(x[i*{n_in}:(i+1)*{n_in}], y[i*{n_out}:(i+1)*{n_out}])
\t\t}}
\t}}
\tout := make([]byte, len(y)*{numeric.np_dtype.itemsize})
\tfor i, v := range y {{
\t\tbinary.LittleEndian.{put}
\t}}
\tos.Stdout.Write(out)
}}
"""
    return {"go.mod": "module peer\n\ngo 1.18\n", f"{package(name)}/model.go": source, "main.go": driver}


GO = Toolchain(files=_go_files, build=lambda folder, name: [["go", "vet", "./..."], ["go", "build", "-o", "run", "."]],
               run=lambda folder: [str(folder / "run")], tools=("go",),
               env=lambda folder: {"GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local", "GOPROXY": "off"})


def _wasm_files(source: str, net: Network, numeric: NumericType, name: str) -> dict[str, str]:
    from ..backends.wasm import HEADERS

    c_source = emit(net, "c", dtype=numeric.name, name=name)
    driver = _js_files("", net, numeric, name)["driver.mjs"].replace(
        'import * as m from "./model.mjs";',
        f'import {{ instantiate }} from "./loader.mjs";\n'
        f'const m = await instantiate(readFileSync(new URL("./model.wasm", import.meta.url)));').replace(
        'import { readFileSync } from "node:fs";\n', "")
    driver = 'import { readFileSync } from "node:fs";\n' + driver
    return {"loader.mjs": source, "model.c": c_source, "driver.mjs": driver,
            **{f"include/{header}": text for header, text in HEADERS.items()}}


def _wasm_build(folder: Path, name: str) -> list[list[str]]:
    from ..backends.wasm import POOL_COMMAND, clang_command

    return [clang_command(name), [sys.executable, *POOL_COMMAND]]


WASM = Toolchain(files=_wasm_files,
                 build=_wasm_build, run=lambda folder: ["node", str(folder / "driver.mjs")],
                 tools=("clang", "ld.lld", "node"))  # lld brings wasm-ld


#: target -> its toolchain: adding a language here (and its printer in the backend
#: registry) is all the runtime, verify and bench/languages.py need.
TOOLCHAINS: dict[str, Toolchain] = {"js": JS, "rust": RUST, "go": GO, "java": JAVA, "wasm": WASM}


def loader(target: str) -> Callable[..., SubprocessNetwork]:
    """The :class:`~.loaders.Loader` run function of ``target``."""
    def run(net: Network, numeric: NumericType, name: str) -> SubprocessNetwork:
        return build(net, target, TOOLCHAINS[target], numeric, name)

    return run


#: C as the runtime builds it (the speed reference of ``bench --target``), and C for the
#: portable x86-64 baseline (SSE2, no FMA: the ISA every language here may assume).
C_NATIVE = ("-O3", "-march=native")
C_PORTABLE = ("-O3",)


def time_targets(net: Network, targets: tuple[str, ...], x: np.ndarray, numeric: NumericType, name: str = "mlp",
                 calls: int = 100_000, passes: int = 20, rounds: int = 3) -> dict[str, tuple[float, float]]:
    """target -> (median ns per one-sample call, median batch rows per second), each
    program timing itself; C native ("c") and C portable ("c portable") beside them,
    the programs interleaved round by round (a burst of load falls on all alike)."""
    import statistics

    programs = {"c": build(net, "c", c_toolchain(C_NATIVE), numeric, name, tag="native"),
                "c portable": build(net, "c", c_toolchain(C_PORTABLE), numeric, name, tag="portable")}
    programs.update({target: build(net, target, TOOLCHAINS[target], numeric, name) for target in targets})
    times: dict[str, list[tuple[float, float]]] = {key: [] for key in programs}
    for _ in range(rounds):
        for key, program in programs.items():
            times[key].append(program.time(x, calls, passes))
    return {key: (statistics.median(t[0] for t in values), statistics.median(t[1] for t in values))
            for key, values in times.items()}
