"""The dependency-free languages give C's bits (a sample of bench/languages.py's matrix).

Each language's float64 (float32) outputs, one-sample calls and the batch function, are
compared bit for bit (NaN equal to NaN) with the C target's float64 (float32) built with
``gcc -O2 -ffp-contract=off`` and its own math, on seed 1-3-2-1, cls 16-64-64-10 (loop
layers and softmax), mid 8-64-64-1 (float32) and one random network per language whose
activations come from every activation it writes (a different sample per language and
dtype); 300 inputs with the specials (+-0, +-inf, NaN, huge, tiny, exp's range ends).
The full matrix (10^4 inputs, 20 random networks, both dtypes everywhere) is
``python bench/languages.py`` (bench/LANGUAGES.md).  Also: what each generated file may
use (no imports, core only, java.lang only, math only), names each language refuses.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from languages import check_bits, fixed_networks, inputs, random_net, random_networks, writes  # noqa: E402
from toolchains import require  # noqa: E402

from mlpcodegen.backends import emit  # noqa: E402
from mlpcodegen.core.errors import ValidationError  # noqa: E402
from mlpcodegen.core.ir import Activation, Dense, Network  # noqa: E402
from mlpcodegen.runtime.subprocess_peer import TOOLCHAINS  # noqa: E402

LANGUAGES = tuple(TOOLCHAINS)


def _networks(target: str, dtype: str) -> dict[str, Network]:
    fixed = fixed_networks()
    nets = {label: net for label, net in fixed.items() if dtype == "float32" or not label.startswith("mid")}
    random = random_networks(target, 6, seed=LANGUAGES.index(target))
    label = sorted(random)[DTYPE_INDEX[dtype] + 2 * LANGUAGES.index(target) % 4]
    nets[label] = random[label]
    # every layer loops: the batches run blocks of rows side by side (300 rows: blocks and a rest);
    # 11 and 43 inputs: java's steps of 8 inputs and the rest one by one
    nets["all loops 11-40-43-9"] = random_net([11, 40, 43, 9], ["tanh", "elu" if dtype == "float64" else "sigmoid",
                                                                "softmax"], 4)
    if dtype == "float64" and writes(target, "layer_norm"):  # its local a1 beside loop accumulators
        nets["layer_norm then loops 3-40-2"] = random_net([3, 40, 2], ["layer_norm", "tanh"], 3)
    return nets


DTYPE_INDEX = {"float64": 0, "float32": 1}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("target", LANGUAGES)
def test_the_same_bits_as_c(target, dtype):
    require("gcc", *TOOLCHAINS[target].tools)
    for label, net in _networks(target, dtype).items():
        values, one, batch = check_bits(target, net, dtype, inputs(net.n_inputs, 300, seed=7))
        assert values == 300 * net.n_outputs
        assert one == 0 and batch == 0, f"{target} {dtype} {label}: {one} one-sample, {batch} batch values differ"


def _net() -> Network:
    rng = np.random.default_rng(0)
    return Network(2, (Dense(rng.normal(size=(2, 40)), rng.normal(size=40), Activation("tanh"), "h"),
                       Dense(rng.normal(size=(40, 3)), rng.normal(size=3), Activation("softmax"), "out")))


@pytest.mark.parametrize("target", LANGUAGES)
def test_what_the_generated_file_may_use(target):
    """No dependency: JS and the wasm loader import nothing, Rust names nothing from std,
    Java imports nothing (java.lang), Go imports math only; never the language's exp."""
    for dtype in ("float32", "float64"):
        text = emit(_net(), target, dtype=dtype)
        code = [line for line in text.splitlines() if not line.lstrip().startswith("//")]
        joined = "\n".join(code)
        assert "Math.exp" not in joined and "math.Exp" not in joined and ".exp()" not in joined
        if target in ("js", "wasm"):
            assert not any(line.startswith("import") for line in code)
            assert "export function" in joined or "export async function" in joined
        elif target == "rust":
            assert "std::" not in joined and "extern crate" not in joined and "use " not in joined
        elif target == "java":  # nothing imported, nothing named outside java.lang (System.arraycopy is java.lang)
            assert not any(line.startswith("import") for line in code) and "java.util" not in joined
        else:
            assert [line for line in code if "import" in line] == ['import "math"']


@pytest.mark.parametrize("target, word", [("js", "await"), ("rust", "fn"), ("go", "func"), ("java", "synchronized"),
                                          ("wasm", "yield"), ("js", "z2"), ("go", "hk")])
def test_reserved_and_own_names_are_refused(target, word):
    with pytest.raises(ValidationError):
        emit(_net(), target, name=word)


def test_typescript_declarations_name_the_exports():
    from mlpcodegen.backends.js import emit_js_types

    one = Network(1, (Dense(np.ones((1, 1)), np.zeros(1), Activation("tanh"), "t"),))
    text = emit_js_types(one, dtype="float32", name="predict")
    for line in ("export declare function predict(x: ArrayLike<number>, out?: Float32Array): Float32Array;",
                 "export declare function predictBatch(x: ArrayLike<number>, out?: Float32Array): Float32Array;",
                 "export declare function predictScalar(x: number): number;"):
        assert line in text
    source = emit(one, "js", dtype="float32", name="predict")
    for name in ("predict", "predictBatch", "predictScalar"):
        assert f"export function {name}(" in source


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_js_out_argument_receives_the_same_outputs(tmp_path, dtype):
    """NAME(x, out) / NAMEBatch(x, out) write into out and return it, with the values
    NAME(x) / NAMEBatch(x) return in a new array."""
    import subprocess

    require("node")
    net = random_net([5, 40, 3], ["tanh", "softmax"], 5)
    (tmp_path / "m.mjs").write_text(emit(net, "js", dtype=dtype, name="mlp"))
    (tmp_path / "t.mjs").write_text("""import { mlp, mlpBatch } from "./m.mjs";
const x = [0.5, -1.25, 2.0, 0.0, -3.5, 1.0, 1.5, -0.25, 4.0, -2.0];
const out = new Float64Array(3), rows = new Float64Array(6);
const same = (a, b) => a.length === b.length && a.every((v, i) => Object.is(v, b[i]));
const one = mlp(x, out), fresh = mlp(x), batch = mlpBatch(x, rows), freshBatch = mlpBatch(x);
console.log(one === out, same(out, fresh), batch === rows, same(rows, freshBatch), same(rows.subarray(0, 3), fresh));
""")
    done = subprocess.run(["node", str(tmp_path / "t.mjs")], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["true"] * 5, done.stderr


def test_java_allocates_only_the_sums_of_its_loop_layers():
    """An elementwise activation overwrites its layer's sums and a first loop layer reads
    x[o + k] itself: mid 8-64-64-1's row function allocates z1, z2 and z3 and nothing else
    (the bits: test_the_same_bits_as_c, whose networks chain tanh, elu and sigmoid loops)."""
    source = emit(fixed_networks()["mid 8-64-64-1"], "java", dtype="float64", name="mlp")
    row = source[source.index("private static void mlp_row("):source.index("public static void mlp(")]
    assert [line.split("=")[0].strip() for line in row.splitlines() if "new double[" in line] == \
        ["final double[] z1", "final double[] z2", "final double[] z3"]
    assert "final double hk0 = x[o + 0];" in row and "z1[j] = Math.max(zj, 0.0);" in row
    assert "allocates its loop layers' sums per call (129 values" in source


def test_wasm_constants_pass_leaves_no_constant_in_the_code(tmp_path):
    """The built module reads every floating-point constant but +0 from memory (the bits:
    test_the_same_bits_as_c, built the same way); the pass finds nothing left to do in its
    own output; a file that is not a module is refused, one line, exit 1."""
    import subprocess

    from mlpcodegen.backends import wasm, wasm_pool
    from mlpcodegen.core.numeric import numeric_type
    from mlpcodegen.runtime.subprocess_peer import build

    require("gcc", *TOOLCHAINS["wasm"].tools)
    for label in ("seed 1-3-2-1", "cls 16-64-64-10"):
        program = build(fixed_networks()[label], "wasm", TOOLCHAINS["wasm"], numeric_type("float64"), "mlp")
        module = (program.folder / "model.wasm").read_bytes()
        left: list[bytes] = []
        wasm_pool._code(dict(wasm_pool._sections(module)), lambda value: left.append(value) if any(value) else None)
        assert left == [], f"{label}: {len(left)} constants left in the code"
        assert wasm_pool.pool_constants(module) == module
    (tmp_path / "not.wasm").write_bytes(b"\0asn not a module")
    done = subprocess.run([sys.executable, *wasm.POOL_COMMAND[:2], str(tmp_path / "not.wasm")], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "not a wasm module" in done.stderr


def test_wasm_constants_pass_refuses_what_it_cannot_read():
    """A module with imports (imported globals would shift the index of __heap_base) or cut
    short is a ValueError, which leaves the module as built; never another exception."""
    from mlpcodegen.backends.wasm_pool import pool_constants

    header = b"\0asm\1\0\0\0"
    # a type, an import of a global (env.g: i32, immutable), memory, global, export and code sections
    imports = b"\x02\x0a\x01\x03env\x01g\x03\x7f\x00"
    module = (header + b"\x01\x04\x01\x60\x00\x00" + imports + b"\x05\x03\x01\x00\x01"
              + b"\x06\x06\x01\x7f\x00\x41\x10\x0b" + b"\x07\x0f\x01\x0b__heap_base\x03\x01"
              + b"\x0a\x04\x01\x02\x00\x0b")
    with pytest.raises(ValueError, match="imports"):
        pool_constants(module)
    for cut in (len(module) - 3, 12, 9):
        with pytest.raises(ValueError):
            pool_constants(module.replace(imports, b"")[:cut] + b"\x0a\x05\x01\x03\x00\x02")
