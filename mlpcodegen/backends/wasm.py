"""WebAssembly backend: the C target's output (its own printer, untouched, ``--math
fast``) compiled by clang ``--target=wasm32`` with no libc and linked by wasm-ld, its
floating-point constants then moved into memory (:mod:`.wasm_pool`), and this
module's text: a small ES-module loader, ``instantiate(bytes)`` -> ``{NAME(x),
NAMEBatch(x)}`` (and ``NAMEScalar``), taking arrays and returning Float32Array /
Float64Array as the js target does.

No libc: the C file's ``<math.h>`` and ``<string.h>`` are the two small headers of
:data:`HEADERS` (compiler builtins: |x|, sqrt, isnan, infinity, memcpy), given with
``-isystem``; bulk memory turns any block copy into ``memory.copy``.  wasm has no fused
multiply-add, so the bits are C's with ``-ffp-contract=off``.  log, log1p and erf would
need a libm: refused by name, as the js target refuses them.
"""
from __future__ import annotations

from ..core.errors import UnsupportedError
from ..core.ir import Network
from . import c, js
from ._text import HEADER, Lines, quote_name

DTYPES = ("float32", "float64")
_ARRAY = {"float32": "Float32Array", "float64": "Float64Array"}

#: The freestanding headers the C file is compiled against (``-isystem`` their folder).
HEADERS = {
    "math.h": """\
/* mlpcodegen: the part of <math.h> the generated C uses, as compiler builtins (no libm) */
#ifndef MLPCODEGEN_WASM_MATH_H
#define MLPCODEGEN_WASM_MATH_H
#define HUGE_VAL __builtin_huge_val()
#define HUGE_VALF __builtin_huge_valf()
#define isnan(x) __builtin_isnan(x)
static inline double fabs(double x) { return __builtin_fabs(x); }
static inline float fabsf(float x) { return __builtin_fabsf(x); }
static inline double sqrt(double x) { return __builtin_sqrt(x); }
static inline float sqrtf(float x) { return __builtin_sqrtf(x); }
#endif
""",
    "string.h": """\
/* mlpcodegen: memcpy as the compiler builtin (no libc) */
#ifndef MLPCODEGEN_WASM_STRING_H
#define MLPCODEGEN_WASM_STRING_H
#define memcpy(d, s, n) __builtin_memcpy(d, s, n)
#endif
""",
}


#: the constants pass (:mod:`.wasm_pool`), run on the linked module in its folder after
#: :func:`clang_command`: ``python`` and these arguments
POOL_COMMAND = ("-m", "mlpcodegen.app.wasm_pool", "model.wasm")


def clang_command(name: str, source: str = "model.c", output: str = "model.wasm", headers: str = "include") -> list[str]:
    """The clang command that builds the module the loader instantiates."""
    exports = [f"-Wl,--export={symbol}" for symbol in (name, f"{name}_batch", "__heap_base")]
    return ["clang", "--target=wasm32", "-std=c99", "-O3", "-msimd128", "-mbulk-memory", "-ffp-contract=off",
            "-nostdlib", "-isystem", headers, "-Wl,--no-entry", *exports, "-o", output, source]


def emit_wasm(net: Network, *, dtype: str = "float32", name: str = "mlp") -> str:
    """The loader of the module built from ``emit_c(net, dtype=dtype, name=name)``."""
    c.check_name(name)
    js.check(name)
    if dtype not in DTYPES:
        raise UnsupportedError(f"the wasm target writes {DTYPES}, not {dtype!r}")
    js.emit_js(net, dtype="float64", name=name)  # refuses, by layer, a function wasm has no libm for
    array, size, n_in, n_out = _ARRAY[dtype], 4 if dtype == "float32" else 8, net.n_inputs, net.n_outputs
    out = Lines()
    out.add(f"// {HEADER}", f"// network {quote_name(net.name)}: {net.describe()}, {net.weight_dtype} weights",
            f"// Loads the WebAssembly build of the C target ({dtype}, --math fast): the module from",
            f"//   mlpcodegen convert MODEL --target c --dtype {dtype} --name {name} -o model.c",
            f"//   {' '.join(clang_command(name))}",
            f"//   python {' '.join(POOL_COMMAND)}   (its floating-point constants read from memory: the same bits,",
            "//   V8 builds an f64.const in two instructions; optional)",
            "// (include/: the math.h and string.h of mlpcodegen.backends.wasm.HEADERS; no libc).",
            f"// instantiate(bytes) -> {{ {name}(x, out), {name}Batch(x, out) }}: arrays in, {array} out "
            "(out, when given, receives the outputs and is returned: no allocation).", "")
    out.add("export async function instantiate(bytes) {",
            "    const { instance } = await WebAssembly.instantiate(bytes, {});",
            "    const e = instance.exports, memory = e.memory;",
            "    const base = (e.__heap_base.value + 15) & ~15; // free memory after the stack and data",
            f"    let view = new {array}(memory.buffer);",
            "    function room(values) { // a grown memory detaches the old view: its length is then 0",
            f"        if (view.length >= base / {size} + values) return view;",
            f"        const need = base + values * {size} - memory.buffer.byteLength;",
            "        if (need > 0) memory.grow(Math.ceil(need / 65536));",
            f"        view = new {array}(memory.buffer);",
            "        return view;",
            "    }",
            f"    function {name}(x, out) {{",
            f"        const v = room({n_in + n_out}), at = base / {size};",
            f"        for (let i = 0; i < {n_in}; i++) v[at + i] = x[i];",
            f"        e.{name}(base, base + {n_in * size});",
            f"        if (out === undefined) return v.slice(at + {n_in}, at + {n_in + n_out});",
            f"        for (let j = 0; j < {n_out}; j++) out[j] = v[at + {n_in} + j];",
            "        return out;",
            "    }",
            f"    function {name}Batch(x, out) {{",
            f"        const n = Math.floor(x.length / {n_in}), v = room(n * {n_in + n_out}), at = base / {size};",
            f"        v.set(x.length === n * {n_in} ? x : Array.prototype.slice.call(x, 0, n * {n_in}), at);",
            f"        e.{name}_batch(base, base + n * {n_in * size}, n);",
            f"        const y = v.subarray(at + n * {n_in}, at + n * {n_in + n_out});",
            "        if (out === undefined) return y.slice();",
            "        out.set(y);",
            "        return out;",
            "    }")
    exported = [name, f"{name}Batch"]
    if n_in == n_out == 1:
        out.add(f"    function {name}Scalar(x) {{", f"        return {name}([x])[0];", "    }")
        exported.append(f"{name}Scalar")
    out.add(f"    return {{ {', '.join(exported)} }};", "}")
    return str(out)
