"""The embedded profile on Cortex-M (issue 12): strict compiles for the host and the
cores from C and C++, stated stack against gcc -fstack-usage, outputs on QEMU for
M0+/M4F/M7 against the reference and bit for bit against the host build, the ``size``
and ``verify --core`` commands and the missing-toolchain message (the examples: test_examples.py).

The toolchain (gcc-arm-none-eabi, libnewlib-arm-none-eabi, qemu-system-arm) is the
``arm_toolchain`` fixture's (tests/toolchains.py): installed when missing as root with
apt-get, else those tests skip with one line; under CI=true they never skip."""
from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from mlpcodegen import load
from mlpcodegen.backends.c import (CODE_PER_SCALAR, CRenderer, embedded_code_bytes, embedded_stack_bytes, emit_c,
                                   emit_c_header)
from mlpcodegen.app.cli import main
from mlpcodegen.harness import cortex
from mlpcodegen.harness.report import F32_ULP_BOUND, compare
from mlpcodegen.core.ir import Activation, Dense, Network
from mlpcodegen.core.reference import evaluate_magnitude
from mlpcodegen.runtime import cross

from conftest import REPO, STRICT_FLAGS
from nets import dense_chain, inputs

SEED = REPO / "generated" / "seed" / "seed.keras"
WARNINGS = ["-Wall", "-Wextra", "-Wpedantic", "-Wconversion", "-Wdouble-promotion", "-Werror"]
CORE_FLAGS = {name: list(core.flags) for name, core in cross.CORES.items()}


def mixed_net(seed: int = 5) -> Network:
    """Written out and looped layers (remainder passes too), fast math (tanh, sigmoid, softmax)."""
    return dense_chain([6, 3, 19, 21, 5], ["tanh", "relu", "sigmoid", "softmax"], seed, names=None)


def sine_net() -> Network:
    return dense_chain([1, 16, 16, 1], ["relu", "relu", "linear"], 1, names=None)


def table_net() -> Network:
    """--optimize size runs it as a table: several element-wise kinds, no bias in layer 1, a softmax last."""
    return dense_chain([20, 24, 24, 24, 4], ["elu", "tanh", "relu", "softmax"], 11, bias=[False, True, True, True],
                       names=None)


NETS = {"seed": lambda: load(SEED), "random": mixed_net, "sine": sine_net, "table": table_net}


def test_embedded_profile_has_no_batch_and_states_stack_and_flash():
    net = mixed_net()
    for optimize in ("size", "speed"):
        source = emit_c(net, name="net", profile="embedded", optimize=optimize)
        header = emit_c_header(net, name="net", profile="embedded", optimize=optimize)
        assert "_batch" not in source and "_batch" not in header and "_block" not in source
        assert "-march=native" not in source and "memcpy(z" not in source
        stack = embedded_stack_bytes(net, "float32", CRenderer(net, name="net", profile="embedded",
                                                               optimize=optimize).shapes)
        assert f"Stack, at most (bytes, calls included): net {stack['one']}" in source
        assert "bytes of weights (static const arrays) and at most" in source
        assert 'extern "C" {' in header
    desktop = emit_c(net, name="net")
    assert "net_batch" in desktop and desktop == emit_c(net, name="net", profile="desktop", optimize="size")
    assert 'extern "C" {' in emit_c_header(net, name="net")
    with pytest.raises(ValueError, match="profile"):
        emit_c(net, profile="tiny")


def test_optimize_chooses_shapes_for_a_scalar_core():
    sine = sine_net()
    size = CRenderer(sine, name="s", profile="embedded", optimize="size").shapes
    speed = CRenderer(sine, name="s", profile="embedded", optimize="speed").shapes
    assert [s.label for s in size] == ["table, output-major"] * 3  # 8.7 weights a unit: one loop nest
    assert [s.label for s in speed] == ["unrolled"] * 3
    forced = CRenderer(sine, name="s", profile="embedded", optimize="speed", unroll="never").shapes
    assert [s.label for s in forced] == ["loops, 8 units per pass"] * 3


def _write(folder: Path, net: Network, optimize: str, name: str = "net") -> tuple[Path, Path]:
    kwargs = dict(name=name, profile="embedded", optimize=optimize)
    (folder / f"{name}.c").write_text(emit_c(net, **kwargs))
    (folder / f"{name}.h").write_text(emit_c_header(net, **kwargs))
    return folder / f"{name}.c", folder / f"{name}.h"


CPP_USER = """#include "net.h"
extern "C" int use(const float *x, float *y);
int use(const float *x, float *y) { net(x, y); return 0; }
"""


@pytest.mark.parametrize("optimize", ["size", "speed"])
def test_strict_compiles_host_and_cores_from_c_and_cpp(tmp_path, gcc, arm_toolchain, optimize):
    source, _ = _write(tmp_path, mixed_net(), optimize)
    (tmp_path / "user.cpp").write_text(CPP_USER)
    subprocess.run([gcc, *STRICT_FLAGS, "-c", str(source), "-o", str(tmp_path / "host.o")], check=True)
    subprocess.run(["g++", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{tmp_path}", "-c", str(tmp_path / "user.cpp"),
                    "-o", str(tmp_path / "user.o")], check=True)
    subprocess.run(["g++", "-shared", str(tmp_path / "host.o"), str(tmp_path / "user.o"), "-o",
                    str(tmp_path / "lib.so")], check=True)  # the C++ caller links: extern "C" names
    for core, flags in CORE_FLAGS.items():
        for compiler, file in (("arm-none-eabi-gcc", source), ("arm-none-eabi-g++", tmp_path / "user.cpp")):
            std = ["-std=c99", *WARNINGS] if file.suffix == ".c" else ["-Wall", "-Wextra", "-Werror"]
            subprocess.run([compiler, *std, "-Os", "-mthumb", *flags, f"-I{tmp_path}", "-c", str(file), "-o",
                            str(tmp_path / f"{core}{file.suffix}.o")], check=True)
        # no library call but soft-float helpers (M0+): no memcpy, no libm with fast math
        undefined = subprocess.run(["arm-none-eabi-nm", "-u", str(tmp_path / f"{core}.c.o")], capture_output=True,
                                   text=True, check=True).stdout.split()
        assert [u for u in undefined if u != "U" and not u.startswith("__aeabi_")] == [], (core, undefined)


def sections_of(sizes: dict, kind: str):
    return [(section, size) for section, size in sizes.items() if section == kind or section.startswith(kind + ".")]


def _host_stack(gcc: str, source: Path, level: str, folder: Path) -> dict[str, int]:
    obj = folder / f"host{level}.o"
    subprocess.run([gcc, "-std=c99", level, "-fstack-usage", "-c", str(source), "-o", str(obj)], check=True)
    return cortex.stack_usage(obj.with_suffix(".su"))


@pytest.mark.parametrize("which", ["seed", "random", "sine", "table"])
def test_stated_stack_and_code_bound_the_builds(tmp_path, gcc, arm_toolchain, which):
    """Every emitted function has a stated stack and code figure, and no build uses more
    (the fast-math functions, when gcc does not inline them, are counted in NAME's)."""
    net = NETS[which]()
    for optimize in ("size", "speed"):
        folder = tmp_path / optimize
        folder.mkdir()
        source, _ = _write(folder, net, optimize)
        stated = embedded_stack_bytes(net, "float32", CRenderer(net, name="net", profile="embedded",
                                                                optimize=optimize).shapes)
        builds = [(core, level) for core in ("m0plus", "m4f") for level in ("-Os", "-O2")]

        renderer = CRenderer(net, name="net", profile="embedded", optimize=optimize)
        code_bound = embedded_code_bytes(renderer.shapes, renderer.math_calls())

        def cross_stack(build):
            obj = cross.compile_objects([source], cross.core(build[0]), build[1], folder / "".join(build))[0]
            sizes = cortex._sections(obj)
            code = sum(size for section, size in sections_of(sizes, ".text") if section != ".text.net_scalar")
            assert code <= code_bound and sizes.get(".text.net_scalar", 0) <= CODE_PER_SCALAR, (build, sizes)
            assert f"at most {code_bound} bytes of code" in source.read_text()
            return cortex.stack_usage(obj.with_suffix(".su"))

        with ThreadPoolExecutor(max_workers=4) as pool:
            measured = list(pool.map(cross_stack, builds))
        measured += [_host_stack(gcc, source, level, folder) for level in ("-O0", "-O2")]
        for usage in measured:
            helpers = sum(v for k, v in usage.items() if k.startswith("net_") and k != "net_scalar")
            assert usage["net"] + helpers <= stated["one"], (optimize, usage, stated)
            if "net_scalar" in usage:
                assert usage["net_scalar"] + usage["net"] + helpers <= stated["scalar"]


def _ulps(actual, net, x) -> float:
    reference, scale = evaluate_magnitude(net, x)
    return compare(actual, reference, scale, "float32")[2]


@pytest.mark.parametrize("which", ["seed", "sine", "table"])  # size: the table form chained and taking turns
def test_outputs_on_three_cores_match_reference_and_host_bits(arm_toolchain, which):
    net = NETS[which]()
    x = inputs(net.n_inputs, 3, 24, domain=(-2, 2))
    options = cortex.Options(name="net", optimize="speed" if which == "seed" else "size")
    hosts = {}  # the host build of each core's C (M0+: the soft-float form, zero inputs skipped)
    for core in cross.CORES:
        storage = options.for_core(core).storage
        if storage not in hosts:
            hosts[storage] = cortex.run_on_host(net, x, options.for_core(core))
            assert _ulps(hosts[storage].outputs, net, x) <= F32_ULP_BOUND, storage
        host = hosts[storage]
        ran = cortex.run_on_core(net, x, core, options)
        np.testing.assert_array_equal(ran.outputs.view(np.uint32), host.outputs.view(np.uint32))
        assert 10 < ran.instructions < (1_000_000 if which == "table" else 200_000), (core, ran.instructions)


def test_instruction_counts_survive_systick_reloads(arm_toolchain, monkeypatch):
    """The count of a measurement longer than SysTick's period (2^24 ticks by default;
    here 65536, a table's MLPC_SYST_RELOAD) counts the reloads: the same figure, not a
    wrapped one; outputs unchanged."""
    net = mixed_net()
    x = inputs(net.n_inputs, 3, 8, domain=(-2, 2))
    options = cortex.Options(name="net")
    full = cortex.run_on_core(net, x, "m0plus", options)
    header = cortex._table_header
    monkeypatch.setattr(cortex, "_table_header", lambda *a: header(*a) + "#define MLPC_SYST_RELOAD 0xFFFFu\n")
    short = cortex.run_on_core(net, x, "m0plus", options)
    np.testing.assert_array_equal(short.outputs.view(np.uint32), full.outputs.view(np.uint32))
    calls = 64  # timed calls (8 rows, 8 times)
    assert full.instructions * calls > 65536 * cross.INSTRUCTIONS_PER_TICK * 3  # reloads in `short`
    assert full.instructions < 65536 * cross.INSTRUCTIONS_PER_TICK  # (each call within one period)
    assert abs(short.instructions - full.instructions) <= 0.001 * full.instructions, (short, full)


def test_special_values_as_the_desktop_profile():
    """The embedded profile's one-comparison max/min (a constant side) keeps NaN, ±0 and
    ±inf as the desktop profile's (tested against Keras in test_special_values)."""
    specials = np.array([[np.nan], [np.inf], [-np.inf], [0.0], [-0.0], [1e30], [-1e30], [0.5], [-0.5]], np.float32)
    for activation in ("relu", "relu6", "hard_tanh"):  # max/min against constants
        net = Network(1, (Dense(np.array([[1.0, -1.0, 0.5]]), np.zeros(3), Activation(activation)),))
        embedded = cortex.run_on_host(net, specials, cortex.Options(name="net", optimize="speed"))
        desktop = cortex.run_on_host(net, specials, cortex.Options(name="net", profile="desktop"))
        np.testing.assert_array_equal(embedded.outputs.view(np.uint32), desktop.outputs.view(np.uint32),
                                      err_msg=activation)
    # loops in both profiles (same sums), softmax as loops (size) against the graph's statements
    net = mixed_net()
    rows = inputs(6, 4, 12)
    rows[0], rows[1, 0], rows[2, 3], rows[3] = np.nan, np.inf, -np.inf, 1e30
    embedded = cortex.run_on_host(net, rows, cortex.Options(name="net", optimize="size", unroll="never"))
    desktop = cortex.run_on_host(net, rows, cortex.Options(name="net", profile="desktop", unroll="never"))
    np.testing.assert_array_equal(embedded.outputs.view(np.uint32), desktop.outputs.view(np.uint32))


IN_PLACE = """#include <string.h>
#include "net.h"
int main(void)
{
    float a[SIZE], b[SIZE], y[OUT];
    int i;
    for (i = 0; i < SIZE; ++i) a[i] = b[i] = (float)(i % 7) * 0.3f - 1.0f;
    net(a, y);
    net(b, b);
    return memcmp(y, b, sizeof y) != 0;
}
"""


def test_in_place_y_may_be_x(tmp_path, gcc):
    """The last loop layer writes y itself: only when it does not read x."""
    nets = {"one": dense_chain([12, 12], ["relu"], 9, names=None), "random": mixed_net()}
    for label, net in nets.items():
        for optimize in ("size", "speed"):
            folder = tmp_path / f"{label}{optimize}"
            folder.mkdir()
            source, _ = _write(folder, net, optimize)
            (folder / "main.c").write_text(IN_PLACE.replace("SIZE", str(max(net.n_inputs, net.n_outputs)))
                                           .replace("OUT", str(net.n_outputs)))
            subprocess.run([gcc, "-std=c99", "-O2", f"-I{folder}", str(folder / "main.c"), str(source), "-o",
                            str(folder / "program"), "-lm"], check=True)
            assert subprocess.run([str(folder / "program")]).returncode == 0, (label, optimize)


def test_size_command_reports_every_core_and_level(arm_toolchain, capsys):
    assert main(["size", str(SEED), "--core", "m0plus", "m4f", "--opt", "Os", "O2", "--optimize", "size"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    table = [line.split() for line in lines if line.split()[:1] in (["m0plus"], ["m4f"]) and "-O" in line[:12]]
    rows = [r for r in table if len(r) == 10]
    assert [(r[0], r[1]) for r in rows] == [("m0plus", "-Os"), ("m0plus", "-O2"), ("m4f", "-Os"), ("m4f", "-O2")]
    for r in rows:
        text, rodata, data, bss, predictor = map(int, r[2:7])
        assert predictor == text + rodata + data and bss == 0 and text > 0
    m0, m4 = rows[0], rows[2]
    assert int(m0[8]) > 0 and int(m4[8]) == 0  # soft-float helpers on M0+ only
    assert "seed " in out and "B stack" in out


def test_missing_toolchain_is_one_clear_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["size", str(SEED), "--core", "m4f"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "arm-none-eabi-gcc not found" in err[0] and "gcc-arm-none-eabi" in err[0]
    assert main(["verify", str(SEED), "--core", "m4f", "-n", "3"]) == 1
    assert "gcc-arm-none-eabi" in capsys.readouterr().err
    assert main(["verify", str(SEED), "--core", "m4f", "-n", "5000"]) == 2  # bad usage first
    assert main(["verify", str(SEED), "--core", "m4f", "--target", "numpy"]) == 2


def test_verify_core_command_on_the_seed_model(arm_toolchain, capsys):
    """The whole command: model.predict, the reference and the host bits (M7, float32)."""
    assert main(["verify", str(SEED), "--core", "m7", "-n", "40", "--optimize", "size"]) == 0
    out = capsys.readouterr().out
    assert "vs model.predict" in out and "vs host build" in out and "FAIL" not in out
    assert "instructions per inference on m7" in out


def test_verify_core_compares_an_onnx_file_with_onnx_runtime(tmp_path, arm_toolchain, capsys):
    """Every format's framework is the peer of --core too (not only Keras files)."""
    from mlpcodegen.harness.onnx_peer import onnx_model

    path = tmp_path / "sine.onnx"
    path.write_bytes(onnx_model(sine_net()).SerializeToString())
    assert main(["verify", str(path), "--core", "m4f", "-n", "16"]) == 0
    out = capsys.readouterr().out
    assert "on m4f (qemu" in out and "vs ONNX Runtime" in out and "FAIL" not in out


def test_table_form_is_chosen_only_where_it_runs_the_network():
    rng = np.random.default_rng(12)  # one generator for the four, in this order
    others = {"one layer": dense_chain([40, 12], ["relu"], rng, names=None),
              "hidden softmax": dense_chain([40, 20, 3], ["softmax", "linear"], rng, names=None),
              "few weights a unit": dense_chain([1, 16, 1], ["relu", "linear"], rng, names=None),
              "a written-out layer": dense_chain([40, 20, 1, 2], ["relu", "tanh", "linear"], rng, names=None)}
    for label, net in {"table": table_net(), **others}.items():
        shapes = CRenderer(net, name="net", profile="embedded", optimize="size").shapes
        assert all(shape.table for shape in shapes) == (label == "table"), label
    source = emit_c(table_net(), name="net", profile="embedded", optimize="size")
    assert "static const struct { unsigned char L[5]; float P[1804]; } net_N = {" in source
    assert "    {20, 24, 24, 24, 4}, /* L: the inputs of layer 1, then each layer's units */" in source
    assert "if (l == 4u) a = " in source and "if (l == 2u) a = !(a <= 0.0f) ? a : 0.0f;" in source
    # the size flavours (tanh has its own reduction: no exp of its own; softmax's exp is nexpf)
    assert "net_stanhf(" in source and "net_sexpm1f(" in source and "net_expf(" not in source
    assert not any(shape.table for shape in CRenderer(table_net(), name="net", profile="embedded",
                                                      optimize="speed").shapes)


@pytest.mark.parametrize("which", ["table", "sine"])
def test_table_form_bits_and_special_values(which):
    """The table form computes the same sums in the same order as the desktop loops: the
    same bits, NaN, infinities and -0.0 included, float32 and float64, its buffers taking
    turns (table) or chained (sine) (its stack: in test_stated_stack_and_code_bound_the_builds;
    on the cores: test_outputs_on_three_cores)."""
    net = NETS[which]()
    rows = inputs(net.n_inputs, 12, 10)
    rows[0], rows[1, 0], rows[2, -1], rows[3] = np.nan, np.inf, -np.inf, 1e30
    rows[4], rows[5] = -0.0, 0.0
    for dtype in ("float32", "float64"):
        x = rows.astype(dtype)
        table = cortex.run_on_host(net, x, cortex.Options(name="net", dtype=dtype))
        desktop = cortex.run_on_host(net, x, cortex.Options(name="net", dtype=dtype, profile="desktop", unroll="never"))
        view = np.uint32 if dtype == "float32" else np.uint64
        np.testing.assert_array_equal(table.outputs.view(view), desktop.outputs.view(view), err_msg=dtype)
        assert np.isnan(table.outputs[0]).all() and not np.isnan(table.outputs[4:]).any()
