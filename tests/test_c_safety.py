"""The generated C under hostile or extreme conditions (issue 9): special input values
(NaN, infinities, signed zeros, huge values) give what Keras gives; names from a model
file stay inert text; function names reserved by the C library or C++ are refused; the
batch function's stack is bounded and stated; ``NAME_batch(x, x, n)`` works in place;
the header is usable from C++."""
from __future__ import annotations

import re
import subprocess
import threading

import numpy as np
import pytest

from conftest import REPO, STRICT_FLAGS, build_flags
from mlpcodegen.backends.c import cdef, emit_c, emit_c_header
from mlpcodegen.core.ir import Activate, Activation, Dense, Network
from mlpcodegen.runtime import compile_c as load
from mlpcodegen.runtime import CompiledNetwork
from mlpcodegen.runtime.cffi_build import build_module
from nets import dense_chain, inputs, random_net
from toolchains import require

# ---------------------------------------------------------------------------------------
# Special values: Keras' table (tests/special_values.py, shared with test_special_values.py).
from special_values import (GLU_ROW, GLU_VALUES, INF, NAN, PARAMETRISED, TABLE,  # noqa: E402
                            Z, activation, expected)
from special_values import SOFTMAX_ROWS as ROWS  # noqa: E402

VARIANTS = [("float32", "fast", "always"), ("float32", "fast", "never"), ("float32", "libm", "always"),
            ("float32", "libm", "never"), ("float64", "libm", "always"), ("float64", "libm", "never")]


def assert_special(got, want, dtype: str, what: str) -> None:
    """NaN == NaN, infinities exactly, zeros of either sign equal, finite values close."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    rtol = 2e-6 if dtype == "float32" else 1e-12
    same = (np.isnan(got) & np.isnan(want)) | (got == want) | np.isclose(got, want, rtol=rtol, atol=0.0)
    assert same.all(), f"{what}: got {got.tolist()}, want {want.tolist()}"


def _activation_only(width: int, activation: str) -> Network:
    """The activation applied straight to the inputs: a network needs a Dense layer, which
    would mix a NaN or an infinity into every unit (0 * inf), so one is built and dropped
    (the C backend needs none)."""
    net = Network(width, (Activate(width, Activation(activation), "act"),
                          Dense(np.eye(width // 2 if activation == "glu" else width), None, Activation("linear"))))
    object.__setattr__(net, "layers", net.layers[:1])
    return net


def _module(nets: dict[str, Network], dtype: str, math_mode: str, unroll: str, flags=None):
    """Every network in one compiled module: one compile per variant."""
    source = "\n".join(emit_c(net, dtype=dtype, name=name, unroll=unroll, math=math_mode) for name, net in nets.items())
    declarations = "".join(cdef(net, dtype, name) for name, net in nets.items())
    module = build_module(source, declarations, flags or build_flags())
    return {name: CompiledNetwork(module, name, net.n_inputs, net.n_outputs, dtype) for name, net in nets.items()}


#: C function name -> the table's key (keys such as "gelu/approximate" are no identifiers)
ELEMENTWISE_KEYS = {f"a_{i}": key for i, key in enumerate([*TABLE, *PARAMETRISED])}


def _elementwise_nets() -> dict[str, Network]:
    return {name: Network(1, (Dense(np.ones((1, 1)), None, activation(key), f"a{i}"),))
            for i, (name, key) in enumerate(ELEMENTWISE_KEYS.items())}


@pytest.mark.parametrize("dtype,math_mode,unroll", VARIANTS)
def test_special_values_follow_keras_in_every_variant(gcc, dtype, math_mode, unroll):
    """Every element-wise activation, fused into a Dense layer (unrolled or loops), on
    NaN, ±inf, ±0, ±1e30 and ±3.4e38: the one-sample, scalar and batch (blocks and the
    rows after them) paths all give the table's values."""
    functions = _module(_elementwise_nets(), dtype, math_mode, unroll)
    z = np.array(Z, dtype=dtype)
    rows = np.tile(z, 8)[:, None]  # 72 rows: two whole blocks of 32 and a tail
    for key, function in functions.items():
        name = ELEMENTWISE_KEYS[key]
        want = expected(name, dtype)
        what = f"{name} {dtype} {math_mode} {unroll}"
        assert_special([function(np.array([v], dtype=dtype))[0] for v in z], want, dtype, what + " one sample")
        assert_special([function.scalar(float(v)) for v in z], want, dtype, what + " scalar")
        assert_special(function(rows)[:, 0].reshape(8, len(Z)), np.tile(want, (8, 1)), dtype, what + " batch")


@pytest.mark.parametrize("dtype,math_mode", [("float32", "fast"), ("float32", "libm"), ("float64", "libm")])
def test_special_rows_through_softmax_log_softmax_and_glu(gcc, dtype, math_mode):
    """A row with -inf gives 0 (softmax) and -inf (log_softmax) for that entry; rows of
    -inf only, or with +inf or NaN, give NaN everywhere; huge finite values saturate."""
    functions = _module({f"v_{a}": _activation_only(4 if a == "glu" else 3, a) for a in ("softmax", "log_softmax", "glu")},
                        dtype, math_mode, "auto")
    glu = functions["v_glu"]
    assert_special(glu(np.array(GLU_ROW, dtype=dtype)), GLU_VALUES, dtype, "glu")
    for row, soft, log_soft in ROWS:
        batch = np.tile(np.array(row, dtype=dtype), (40, 1))
        for key, want in (("v_softmax", soft), ("v_log_softmax", log_soft)):
            function = functions[key]
            what = f"{key} {row} {dtype} {math_mode}"
            assert_special(function(np.array(row, dtype=dtype)), want, dtype, what + " one sample")
            assert_special(function(batch), np.tile(want, (40, 1)), dtype, what + " batch")


def test_all_nan_input_through_relu_layers_is_nan(gcc):
    """The issue's case: an all-NaN input gave a finite 130.6 (relu turned NaN into 0)."""
    rng = np.random.default_rng(0)
    net = Network(4, (Dense(rng.normal(size=(4, 8)), rng.normal(size=8), Activation("relu"), "h"),
                      Dense(rng.normal(size=(8, 2)), np.array([130.6, 1.0]), Activation("linear"), "o")))
    for dtype in ("float32", "float64"):
        f = load(net, dtype=dtype, name="net")
        assert np.isnan(f(np.full(4, np.nan))).all() and np.isnan(f(np.full((40, 4), np.nan))).all()


# ---------------------------------------------------------------------------------------
# Reserved names (item 4)
from mlpcodegen.backends import c as c_backend  # noqa: E402
from mlpcodegen.backends.c_names import C99_HEADERS, RESERVED_NAMES  # noqa: E402
from mlpcodegen.core.errors import ValidationError  # noqa: E402

ISSUE_NAMES = ["NAN", "INFINITY", "HUGE_VALF", "HUGE_VAL", "isnan", "exp2f", "offsetof", "NULL", "bool", "abs", "errno"]
CXX_NAMES = ["class", "new", "delete", "this", "template", "namespace", "operator", "true", "false", "nullptr", "and",
             "or", "not", "typename", "char8_t", "co_await"]
BY_PATTERN = ["EFOO", "E2BIG", "isok", "tofoo", "strength", "memo", "wcsfoo", "SIG_X", "SIGFOO", "LC_X", "PRIx64",
              "SCNd", "myint_t", "int24_t", "INT24_MAX", "UINT_LEAST8_C", "FE_X", "FP_X", "FLT_TRUE_MIN", "M_PI", "_x",
              "_X", "a__b", "cerff", "clog2", "a_", "SIG", "FE", "M", "LC"]
ACCEPTED = ["predict", "mlp", "seed", "Predict", "PREDICT_PRICE", "classify_wine", "f", "net_a", "it", "E", "to"]


RELU = Network(1, (Dense(np.ones((1, 1)), None, Activation("relu"), "relu"),))


def test_every_name_of_the_table_is_refused_and_a_sample_stops_emit_and_header():
    """The whole table through the public check; the issue's, C++'s, the patterns' names and
    every 25th of the table through the C file and the header, each with its reason."""
    assert not [name for name in RESERVED_NAMES | set(BY_PATTERN) if c_backend.usable_name(name)]
    for name in ISSUE_NAMES + CXX_NAMES + BY_PATTERN + sorted(RESERVED_NAMES)[::25]:
        with pytest.raises(ValidationError, match="choose another|not a usable identifier|clashes"):
            emit_c(RELU, name=name)
        with pytest.raises(ValidationError):
            emit_c_header(RELU, name=name)


def test_the_issue_names_are_refused_with_a_clear_message():
    for name in ISSUE_NAMES + CXX_NAMES:
        assert name in RESERVED_NAMES and not c_backend.usable_name(name), name
    with pytest.raises(ValidationError, match=r"^'NAN' is a macro of <math.h>; choose another name such as predict$"):
        c_backend.check_name("NAN")
    with pytest.raises(ValidationError, match=r"'SIG' would make 'SIG_W1', which is reserved for <signal.h>"):
        c_backend.check_name("SIG")
    assert all(c_backend.usable_name(name) for name in ACCEPTED)


# The table against the headers themselves: what a compiler sees after including them.
_ALL_HEADERS = "".join(f"#include {header}\n" for header in C99_HEADERS)
_COLLISION = re.compile(r"^probe\.(?:c|cpp):(\d+):\d+: error", re.MULTILINE)


def _probe(compiler: list[str], folder, names, headers: str, suffix: str = "c") -> set[str]:
    """Which of ``names`` a file-scope ``static int NAME;`` after ``headers`` breaks: one
    compile, each name on a line of its own, the compiler's errors read by line."""
    (folder / f"probe.{suffix}").write_text(headers + "".join(f"static int {name};\n" for name in names))
    result = subprocess.run([*compiler, "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-Wno-unused-variable",
                             "-fmax-errors=0", "-fsyntax-only", f"probe.{suffix}"], cwd=folder, capture_output=True,
                            text=True)
    first = headers.count("\n") + 1
    lines = {int(line) for line in _COLLISION.findall(result.stderr)}
    assert result.returncode == (1 if lines else 0) and min(lines, default=first) >= first, result.stderr[:2000]
    return {names[line - first] for line in lines}


def _header_names(compiler: list[str], folder, headers: str, suffix: str = "c") -> tuple[set[str], set[str], set[str]]:
    """(every macro, the identifiers declared at file scope, the other identifiers) of
    ``headers`` under ``compiler``: macros from ``-dM -E``; every other word of the
    preprocessed text is probed (struct members and parameter names collide with nothing)
    but those with a leading underscore, all refused by their pattern."""
    (folder / f"headers.{suffix}").write_text(headers)

    def run(*flags):
        return subprocess.run([*compiler, *flags, f"headers.{suffix}"], cwd=folder, capture_output=True, text=True,
                              check=True).stdout

    macros = set(re.findall(r"^#define (\w+)", run("-dM", "-E"), re.MULTILINE))
    words = sorted(set(re.findall(r"\b[A-Za-z]\w*", run("-E", "-P"))) - macros)
    declared = _probe(compiler, folder, words, headers, suffix)
    return macros, declared, set(words) - declared


def test_the_table_refuses_every_name_the_c99_headers_define(gcc, tmp_path):
    """gcc -std=c99 after all 24 C99 headers (those the generated code includes among
    them: math, stddef, stdint, string): every macro they define (gcc -dM -E) and every
    identifier a file-scope ``static int NAME;`` collides with is refused, by the table or
    its patterns; every name that does not collide (members, parameters) compiles next to
    the headers in one file, so the probe's reading of the errors misses nothing."""
    assert {"<math.h>", "<stddef.h>", "<stdint.h>", "<string.h>"} <= set(C99_HEADERS)
    macros, declared, others = _header_names([gcc, "-std=c99"], tmp_path, _ALL_HEADERS)
    assert len(macros) > 1000 and {"NAN", "EOF", "INT8_MAX", "assert", "errno", "sin"} <= macros  # sin: <tgmath.h>
    assert len(declared) > 400 and {"sinf", "size_t", "FILE", "printf", "int", "wctype_t"} <= declared
    assert not sorted(name for name in macros | declared if c_backend.usable_name(name))
    assert not c_backend.usable_name("_Exit") and not c_backend.usable_name("__x")  # the underscore rule
    assert {"quot", "tm_sec"} <= others and c_backend.usable_name("quot") and c_backend.usable_name("tm_sec")
    assert not _probe([gcc, "-std=c99"], tmp_path, sorted(others | set(ACCEPTED)), _ALL_HEADERS)


#: The keywords of C++20 ([lex.key]) and its alternative tokens ([lex.digraph]); C99's (6.4.1).
CXX20_KEYWORDS = (
    "alignas alignof asm auto bool break case catch char char8_t char16_t char32_t class concept const consteval "
    "constexpr constinit const_cast continue co_await co_return co_yield decltype default delete do double "
    "dynamic_cast else enum explicit export extern false float for friend goto if inline int long mutable "
    "namespace new noexcept nullptr operator private protected public register reinterpret_cast requires return "
    "short signed sizeof static static_assert static_cast struct switch template this thread_local throw true try "
    "typedef typeid typename union unsigned using virtual void volatile wchar_t while "
    "and and_eq bitand bitor compl not not_eq or or_eq xor xor_eq").split()
C99_KEYWORDS = ("auto break case char const continue default do double else enum extern float for goto if inline int "
                "long register restrict return short signed sizeof static struct switch typedef union unsigned void "
                "volatile while _Bool _Complex _Imaginary").split()


def test_every_keyword_of_c99_and_cxx20_is_refused_and_breaks_a_declaration(gcc, tmp_path):
    """The header is included from C++: each keyword of the standards' lists breaks a
    file-scope ``static int NAME;`` (gcc -std=c99, g++ -std=c++20: the lists are right) and
    is refused."""
    import shutil

    gxx = shutil.which("g++")
    assert gxx, "g++ is needed to check the C++ keywords (apt-get install g++)"
    assert set(CXX_NAMES) <= set(CXX20_KEYWORDS)
    assert _probe([gxx, "-std=c++20"], tmp_path, CXX20_KEYWORDS, "", "cpp") == set(CXX20_KEYWORDS)
    assert _probe([gcc, "-std=c99"], tmp_path, C99_KEYWORDS, "") == set(C99_KEYWORDS)
    assert not [name for name in CXX20_KEYWORDS + C99_KEYWORDS if c_backend.usable_name(name)]


#: gcc's default GNU mode, g++ (which defines _GNU_SOURCE) and newlib: their headers define
#: ~1,700 names beyond the hand-kept table (acosf64, pthread_*, BIG_ENDIAN, PATH_MAX, gammaf,
#: infinity...), read from the compilers into c_reserved.txt by bench/c_reserved_names.py.
GNU_MODES = {"gcc default (GNU)": (["gcc"], "c"), "g++ -std=c++11 (_GNU_SOURCE)": (["g++", "-std=c++11"], "cpp"),
             "g++ default (gnu++17)": (["g++"], "cpp"), "arm-none-eabi-gcc (newlib)": (["arm-none-eabi-gcc"], "c")}


@pytest.mark.parametrize("mode", sorted(GNU_MODES))
def test_the_table_refuses_every_name_the_headers_define_in_gnu_modes(gcc, tmp_path, mode):
    compiler, suffix = GNU_MODES[mode]
    require(compiler[0])
    macros, declared, _ = _header_names(compiler, tmp_path, _ALL_HEADERS, suffix)
    missing = sorted(name for name in macros | declared if c_backend.usable_name(name))
    assert not missing, f"{len(missing)} names not refused, e.g. {missing[:20]} (python bench/c_reserved_names.py)"


def test_the_header_names_data_is_not_stale_where_its_compilers_are(gcc):
    """c_reserved.txt against the compilers present here (a mode whose compiler is missing
    is not checked: its names were read where it was): stale when they define other names."""
    import importlib.util
    import shutil

    spec = importlib.util.spec_from_file_location("c_reserved_names", REPO / "bench" / "c_reserved_names.py")
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    recorded = generator.read_sections()
    checked = 0
    for mode, (compiler, _) in generator.MODES.items():
        if shutil.which(compiler[0]) is None:
            continue
        found = generator.section(mode)
        assert set(found) == set(recorded[mode]), (
            f"c_reserved.txt is stale for {mode} ({' '.join(compiler)}): new {sorted(set(found) - set(recorded[mode]))[:10]}, "
            f"gone {sorted(set(recorded[mode]) - set(found))[:10]}: python bench/c_reserved_names.py")
        checked += 1
    assert checked >= 1  # gcc at least
    from mlpcodegen.backends.c_names import header_names, reserved_by

    assert reserved_by("acosf64") and "g++" in reserved_by("acosf64") and not reserved_by("predict")
    assert {"pthread_create", "asprintf", "BIG_ENDIAN", "PATH_MAX", "clock_gettime", "gammaf", "infinity",
            "CLOCK_REALTIME"} <= set(header_names())


def test_accepted_names_compile_next_to_every_c99_header_in_c_and_cxx(gcc, tmp_path):
    """The generated files for several accepted names, with a program that includes all
    24 C99 headers and every generated header: gcc in strict C99 and in its default GNU
    mode, and g++ (C++11) for the headers."""
    import shutil

    net = Network(2, (Dense(np.array([[1.0, -1.0], [0.5, 2.0]]), np.array([0.1, 0.2]), Activation("tanh"), "d"),
                      Dense(np.array([[1.0], [1.0]]), None, Activation("sigmoid"), "o")))
    assert len(C99_HEADERS) == 24
    sources, includes, calls = [], "", ""
    for name in ACCEPTED:
        (tmp_path / f"{name}.c").write_text(_ALL_HEADERS + emit_c(net, name=name))
        (tmp_path / f"{name}.h").write_text(emit_c_header(net, name=name))
        sources.append(str(tmp_path / f"{name}.c"))
        includes += f'#include "{name}.h"\n'
        calls += f"    {name}(x, y); {name}_batch(x, y, 1u); s += y[0];\n"
    main = _ALL_HEADERS + includes + f"int main(void)\n{{\n    float x[2] = {{0.5f, -0.5f}}, y[1], s = 0.0f;\n{calls}" \
                                     "    return s > 0.0f ? 0 : 1;\n}\n"
    (tmp_path / "main.c").write_text(main)
    for flags in (STRICT_FLAGS, ["-O2", "-Wall", "-Wextra", "-Werror"]):  # ISO C99, then gcc's GNU default
        build = subprocess.run([gcc, *flags, *sources, str(tmp_path / "main.c"), "-o", str(tmp_path / "prog"), "-lm"],
                               capture_output=True, text=True)
        assert build.returncode == 0, build.stderr
        assert subprocess.run([str(tmp_path / "prog")]).returncode == 0
    gxx = shutil.which("g++")
    assert gxx, "g++ is needed to check the header from C++ (apt-get install g++)"
    (tmp_path / "main.cpp").write_text(main)
    build = subprocess.run([gxx, "-std=c++11", "-Wall", "-Wextra", "-Werror", "-fsyntax-only", str(tmp_path / "main.cpp")],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr


# ---------------------------------------------------------------------------------------
# In place: NAME_batch(x, x, n) and NAME(x, x) (item 6)
def _random_net(seed: int) -> Network:
    """1-3 layers of 1-23 units (glu's twice), unscaled weights, a bias everywhere."""
    return random_net(seed, ("linear", "relu", "tanh", "softmax", "glu", "elu"), depth=(1, 4), width=(1, 24), bias=True,
                      dtype=np.float64)


def _in_place(module, name: str, net: Network, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NAME_batch(buf, buf, n) and NAME(row, row) for every row, on copies of x."""
    ctype, n = ("float[]" if x.dtype == np.float32 else "double[]"), x.shape[0]
    buffer = np.zeros(n * max(net.n_inputs, net.n_outputs), x.dtype)
    buffer[:x.size] = x.ravel()
    pointer = module.ffi.from_buffer(ctype, buffer, require_writable=True)
    getattr(module.lib, name + "_batch")(pointer, pointer, n)
    rows = []
    for row in x:
        one = np.zeros(max(net.n_inputs, net.n_outputs), x.dtype)
        one[:net.n_inputs] = row
        p = module.ffi.from_buffer(ctype, one, require_writable=True)
        getattr(module.lib, name)(p, p)
        rows.append(one[:net.n_outputs].copy())
    return buffer[:n * net.n_outputs].reshape(n, net.n_outputs), np.array(rows)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_batch_in_place_equals_out_of_place_bit_for_bit(gcc, dtype):
    """16 random networks (fixed seeds; most have a layer wider than the input, or more
    outputs than inputs), unrolled and as loops, plus a wide layer that cuts the lanes:
    y == x gives the out-of-place rows exactly, for whole blocks and the rows after."""
    nets = {f"r{seed}_{unroll}": (_random_net(seed), unroll) for seed in range(8) for unroll in ("always", "never")}
    rng = np.random.default_rng(7)
    nets["wide"] = (Network(3, (Dense(rng.normal(size=(3, 3000)), None, Activation("relu"), "w"),
                                Dense(rng.normal(size=(3000, 5)), None, Activation("linear"), "o"))), "auto")
    source = "\n".join(emit_c(net, dtype=dtype, name=name, unroll=unroll) for name, (net, unroll) in nets.items())
    module = build_module(source, "".join(cdef(net, dtype, name) for name, (net, _) in nets.items()), build_flags())
    wider = 0
    for name, (net, _) in nets.items():
        x = inputs(net.n_inputs, len(name), 2 * 32 + 7, domain=(-2, 2), dtype=dtype)
        expected = CompiledNetwork(module, name, net.n_inputs, net.n_outputs, dtype)(x)
        batch, rows = _in_place(module, name, net, x)
        assert batch.tobytes() == expected.tobytes(), name
        assert rows.tobytes() == np.stack([CompiledNetwork(module, name, net.n_inputs, net.n_outputs, dtype)(r)
                                            for r in x]).tobytes(), name
        wider += max(layer.units for layer in net.layers) > net.n_inputs
    assert wider >= 8  # the issue's failing case: a layer wider than the input


# ---------------------------------------------------------------------------------------
# Bounded, stated stack (item 5)
from mlpcodegen.backends.c import BLOCK_BUFFER_BYTES, block_plan, stack_bytes  # noqa: E402
from mlpcodegen.runtime.cffi_build import DEFAULT_FLAGS  # noqa: E402


def _chain(widths: list[int], activation: str = "relu", seed: int = 0) -> Network:
    return dense_chain(widths, [activation] * (len(widths) - 2) + ["linear"], seed, bias_scale=1.0, dtype=np.float32)


def _frames(gcc: str, source: str, flags, folder) -> dict[str, int]:
    """Function -> frame bytes, from gcc -fstack-usage."""
    (folder / "net.c").write_text(source)
    subprocess.run([gcc, "-std=c99", *flags, "-fstack-usage", "-c", "net.c", "-o", "net.o"], cwd=folder, check=True)
    frames = {}
    for line in (folder / "net.su").read_text().splitlines():
        where, size, _ = line.split("\t")
        frames[where.rsplit(":", 1)[-1]] = int(size)
    return frames


STACK_CASES = {"cls": ([16, 64, 64, 10], "auto"), "unrolled": ([16, 40, 10], "always"), "deep": ([8] * 41, "auto"), "input70000": ([70000, 1], "auto"), "hidden2048": ([4, 2048, 1], "auto"),
               "hidden9000": ([2, 9000, 1], "auto"), "seed": ([1, 3, 2, 1], "never")}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", sorted(STACK_CASES))
def test_stated_stack_bounds_the_real_frames(gcc, tmp_path, case, dtype):
    """The figures in the file comment are upper bounds of every frame gcc reports
    (-fstack-usage), callees added along the call chain, unoptimised and as the harness
    builds; and the file states them."""
    widths, unroll = STACK_CASES[case]
    net = _chain(widths, "tanh" if case == "hidden2048" else "relu")
    source, stated = emit_c(net, dtype=dtype, name="net", unroll=unroll), stack_bytes(net, dtype, unroll)
    assert f"net {stated['one']}, net_batch {stated['batch']}" in source
    for flags in (["-O0"], list(DEFAULT_FLAGS)):
        frames = _frames(gcc, source, flags, tmp_path)
        rows = frames.get("net_rows", 0) + frames.get("net_gemm", 0)  # the rows layout's chain (0: inlined)
        block = frames.get("net_block", 0) + frames.get("net_dense", 0) + frames.get("net_dense_rows", 0) + rows
        assert frames["net"] <= stated["one"] and block <= stated["block"], (flags, frames, stated)
        assert frames["net_batch"] + max(block, frames["net"]) <= stated["batch"], (flags, frames, stated)
        if "net_batch_ws" in frames:  # the caller's workspace holds the buffers: the rest is bounded alike
            assert f"net_batch_ws {stated['batch_ws']}" in source
            assert frames["net_batch_ws"] + rows <= stated["batch_ws"], (flags, frames, stated)


@pytest.mark.parametrize("widths", [[70000, 1], [64, 2048, 2048, 1], [784, 512, 512, 10], [8] * 301, [16, 64, 64, 10]])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_block_buffers_stay_within_the_budget(widths, dtype):
    """The issue's networks (8.7 MiB, 1 MiB, 454 KiB, 600 KiB of stack before): two
    buffers within BLOCK_BUFFER_BYTES, all of NAME_batch (a generous bound) within 256
    KiB (the reference models keep their lanes)."""
    net = Network(widths[0], tuple(Dense(np.zeros((a, b), np.float32), None, Activation("relu"))
                                   for a, b in zip(widths[:-1], widths[1:])))
    plan, size = block_plan(net, dtype), np.dtype(dtype).itemsize
    assert 2 * plan.width * plan.lanes * size <= BLOCK_BUFFER_BYTES
    assert stack_bytes(net, dtype)["batch"] <= 256 * 1024
    if widths == [16, 64, 64, 10]:
        assert plan.lanes == (32 if dtype == "float32" else 16)


def test_wide_and_deep_networks_run_in_a_512_kib_thread():
    """A 70000-input model, 300 layers of 8 and a 2048-unit layer, batch and one
    sample, in a thread with a 512 KiB stack (musl's default; they needed 8.7 MiB,
    600 KiB and 1 MiB before)."""
    results = {}

    def run(key, net):
        # The deep chain as loops (300 unrolled layers take gcc -O3 about 100 s to compile)
        # and at -O1 without debug information: even its loops take -O3 ~30 s.  What is checked is the stack the code
        # needs, which the source fixes (block buffers within BLOCK_BUFFER_BYTES); the frames
        # at the default flags are checked against the stated bound in
        # test_stated_stack_bounds_the_real_frames.
        if key == "deep":
            f = _module({"net": net}, "float32", "fast", "never", flags=("-O1", "-g0"))["net"]
        else:
            f = load(net, dtype="float32", name="net")
        x = inputs(net.n_inputs, 0, 70, domain=(-1, 1))
        results[key] = (f(x), np.stack([f(row) for row in x[::10]]), x)

    previous = threading.stack_size(512 * 1024)
    try:
        for key, widths in {"input": [70000, 1], "deep": [8] * 301, "hidden": [4, 2048, 1]}.items():
            thread = threading.Thread(target=run, args=(key, _chain(widths)))
            thread.start()
            thread.join()
    finally:
        threading.stack_size(previous)
    for key, (batch, rows, x) in results.items():
        assert batch.shape[0] == 70 and np.isfinite(batch).all(), key
        np.testing.assert_allclose(batch[::10], rows, rtol=1e-5, atol=1e-5)
    assert len(results) == 3


# ---------------------------------------------------------------------------------------
# Names from a model file are inert text (S1); notes; the header from C++ (item 14)
PAYLOADS = ["*/ int evil; /*", 'x\nimport os; os.system("touch CANARY")', "nul\0byte", "cr\rlf\r\n",
            "\n#include <stdio.h>\n", "back\\", "splice \\\nint evil;", "tri ??/", "??/\n??=define evil",
            "ünï cødé ☃ \u202e", "long " * 200, "%s%n{0}{}", "// line comment", '"quoted" \'q\'']


def _payload_net(plain: bool) -> Network:
    names = ["layer"] * len(PAYLOADS) if plain else PAYLOADS
    rng = np.random.default_rng(3)
    layers = [Dense(rng.normal(size=(3, 3)), rng.normal(size=3), Activation("tanh"), names[0])]
    layers += [Dense(rng.normal(size=(3, 3)) / 2, None, Activation("relu" if i % 2 else "linear"), names[i])
               for i in range(1, len(names))]
    return Network(3, tuple(layers), name="plain" if plain else "*/ evil(); /* ??/\n#define x", notes=(
        "input scaling folded in" if plain else "scaling */ #include <evil.h> \\\n??/ \0 ☃ " + "x" * 1000,))


def _assert_inert(text: str) -> None:
    assert "\0" not in text and "\r" not in text and "\\" not in text and "??" not in text
    assert all(line.lstrip().startswith(("* ", "/* ")) for line in text.splitlines() if "evil" in line)
    comments = [line for line in text.splitlines() if "*/" in line]
    assert all(line.rstrip().endswith("*/") and line.count("*/") == 1 for line in comments), comments
    assert [line for line in text.splitlines() if line.startswith("#include")] == \
        [line for line in text.splitlines() if line.startswith("#include <") and line.split("<")[1].split(".")[0]
         in ("math", "stddef", "stdint", "string")]
    assert all(ord(c) < 128 for c in text.replace("—", ""))
    assert "import os" not in text or "import os; os.system(<U+0022>" in text


def test_payload_names_stay_inert_and_change_nothing(gcc, tmp_path):
    """Model and layer names and notes that try to end a comment, splice lines (a
    backslash or the ??/ trigraph at a line's end), inject directives, NULs, CR/LF or
    unicode: the C and the header hold them as quoted text only, compile with the strict
    flags (-std=c99 enables trigraphs) and as C++, and compute what plain names compute."""
    import shutil

    evil, plain = _payload_net(False), _payload_net(True)
    for dtype in ("float32", "float64"):
        source, header = emit_c(evil, dtype=dtype, name="net"), emit_c_header(evil, dtype=dtype, name="net")
        _assert_inert(source)
        _assert_inert(header)
        assert "note: scaling <U+002A>/ <U+0023>include <U+003C>evil.h<U+003E>" in source and "note: " in header
        (tmp_path / "net.c").write_text(source)
        (tmp_path / "net.h").write_text(header)
        (tmp_path / "main.c").write_text('#include "net.h"\nint main(void) { return 0; }\n')
        build = subprocess.run([gcc, *STRICT_FLAGS, "-Wtrigraphs", str(tmp_path / "net.c"), str(tmp_path / "main.c"),
                                "-o", str(tmp_path / "a.out"), "-lm"], capture_output=True, text=True)
        assert build.returncode == 0, build.stderr
        (tmp_path / "main.cpp").write_text('#include "net.h"\nint main() { return 0; }\n')
        build = subprocess.run([shutil.which("g++"), "-std=c++11", "-Wall", "-Wextra", "-Werror", "-trigraphs",
                                "-fsyntax-only", str(tmp_path / "main.cpp")], capture_output=True, text=True)
        assert build.returncode == 0, build.stderr
        x = inputs(3, 0, 45, domain=(-2, 2), dtype=np.float64)
        got, want = load(evil, dtype=dtype, name="net")(x), load(plain, dtype=dtype, name="net")(x)
        assert got.tobytes() == want.tobytes()


def test_header_links_from_cxx(gcc, tmp_path):
    """extern "C": a C++11 caller (strict warnings) includes the header, links against
    the C object and gets the C results."""
    import shutil

    gxx = shutil.which("g++")
    assert gxx, "g++ is needed (apt-get install g++)"
    net = _chain([3, 5, 2], "tanh")
    (tmp_path / "net.c").write_text(emit_c(net, name="predict"))
    (tmp_path / "net.h").write_text(emit_c_header(net, name="predict"))
    (tmp_path / "main.cpp").write_text("""#include <cstdio>
#include <vector>
#include "net.h"
int main()
{
    std::vector<float> x(3 * 40), y(2 * 40);
    float one[2];
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 7) * 0.25f - 0.75f;
    predict_batch(x.data(), y.data(), 40u);
    predict(x.data() + 3, one);
    for (std::size_t i = 0; i < y.size(); ++i) std::printf("%.9g\\n", static_cast<double>(y[i]));
    return one[0] == y[2] && one[1] == y[3] ? 0 : 3;
}
""")
    subprocess.run([gcc, *STRICT_FLAGS, "-ffp-contract=off", "-c", str(tmp_path / "net.c"), "-o", str(tmp_path / "net.o")],
                   check=True)
    build = subprocess.run([gxx, "-std=c++11", "-Wall", "-Wextra", "-Wpedantic", "-Werror", str(tmp_path / "main.cpp"),
                            str(tmp_path / "net.o"), "-o", str(tmp_path / "prog"), "-lm"], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(tmp_path / "prog")], capture_output=True, text=True)
    assert run.returncode == 0
    x = (np.arange(120) % 7 * 0.25 - 0.75).reshape(40, 3)
    got = np.array([float(v) for v in run.stdout.split()]).reshape(40, 2)
    np.testing.assert_allclose(got, load(net, name="predict")(x), rtol=1e-5, atol=1e-6)
