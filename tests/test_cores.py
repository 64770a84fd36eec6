"""Cores beyond Cortex-M (issue 26): the one table, RISC-V rv32imc/rv32imafc on QEMU virt,
the AVR ATmega328P (Arduino Uno) on simavr with its tables in flash, Xtensa lx106 sizes,
and the Arduino library built with the real Arduino core and run on simavr.

A sample per core (sine 1-16-16-1 and a small random network, float32 and q15); the full
matrix (cls 16-64-64-10, emlearn, both levels) is bench/embedded.py's.  Tolerances: q15
bit-identical to the host build of the same C (the integer code and its float wrapper);
float32 bit-identical on RISC-V (IEEE soft float / FPU, our own math), within the ULP bound
of the reference on AVR (avr-libc's soft float has no subnormals: its bits are
information); float64 is refused on AVR (its double is 32 bits).

Tools (tests/toolchains.py): gcc-riscv64-unknown-elf, picolibc-riscv64-unknown-elf,
qemu-system-misc; gcc-avr, avr-libc, simavr; gcc-xtensa-lx106; arduino-core-avr,
arduino-mk: installed when missing as root, else the tests skip with one line (CI: fail)."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from mlpcodegen.backends.c import emit_c
from mlpcodegen.backends.c_fixed import emit_c_fixed, stack_bytes
from mlpcodegen.app.cli import main
from mlpcodegen.harness import cortex
from mlpcodegen.harness.onnx_peer import onnx_model
from mlpcodegen.harness.report import F32_ULP_BOUND
from mlpcodegen.core.ir import Activation, Dense, Network
from mlpcodegen.runtime import cores, cross

from conftest import STRICT_FLAGS, _say
from nets import dense_chain, inputs
from test_embedded import _ulps, mixed_net, sine_net
from toolchains import GROUPS, TOOLS, require


@pytest.fixture(scope="session")
def riscv(request) -> None:
    require("riscv", say=_say(request.config))


@pytest.fixture(scope="session")
def avr(request) -> None:
    require("avr", say=_say(request.config))


@pytest.fixture(scope="session")
def xtensa(request) -> None:
    require("xtensa", say=_say(request.config))


@pytest.fixture(scope="session")
def arduino(request) -> None:
    require("arduino", say=_say(request.config))


def test_one_table_of_cores():
    """Every core names a family; a family's tools are in the tests' install table with the
    packages its error message names; cross.CORES is the table's Cortex-M part."""
    assert list(cross.CORES) == ["m0plus", "m4f", "m7"]
    assert {"rv32imc", "rv32imafc", "atmega328p", "lx106"} <= set(cores.CORES)
    installed = {package for tool in TOOLS.values() for package in tool.packages}
    for core in cores.CORES.values():
        family = core.toolchain
        assert set(family.packages.split()) <= installed, core.name
        assert family.compiler in {tool for group in GROUPS.values() for tool in group} | {"arm-none-eabi-gcc"}
        assert all(path.is_file() for path in cross.startup(core)), core.name
        if core.emulated:  # a runtime folder: start-up code and linker script, or the C library's start-up
            assert family.startup and (family.runtime / family.startup[0]).is_file(), core.name
        assert core.emulated == (core.name != "lx106")
    assert cores.CORES["atmega328p"].storage == "progmem" and cores.CORES["atmega328p"].double_bits == 32
    assert cores.CORES["atmega328p"].flash == 32 * 1024 and cores.CORES["atmega328p"].ram == 2 * 1024
    # plain storage prints what the printers printed before storage existed
    net = sine_net()
    for optimize in ("size", "speed"):
        assert emit_c(net, name="nn", profile="embedded", optimize=optimize) == \
            emit_c(net, name="nn", profile="embedded", optimize=optimize, storage="plain")
    with pytest.raises(ValueError, match="embedded profile"):
        emit_c(net, name="nn", storage="progmem")


def _x(net: Network, rows: int = 12) -> np.ndarray:
    return inputs(net.n_inputs, 3, rows, domain=(-1, 1))


def _bits(outputs: np.ndarray) -> np.ndarray:
    return outputs.view(np.uint32 if outputs.dtype.itemsize == 4 else np.uint16)


@pytest.mark.parametrize("core,dtype,optimize", [("rv32imc", "float32", "size"), ("rv32imc", "q15", "size"),
                                                 ("rv32imafc", "float32", "speed")])
def test_riscv_on_qemu_matches_host_bits(riscv, core, dtype, optimize):
    net = sine_net() if dtype == "q15" else mixed_net()
    x = _x(net)
    options = cortex.Options(name="net", dtype=dtype, optimize=optimize, domain=(-1, 1) if dtype == "q15" else None)
    host = cortex.run_on_host(net, x, options)
    ran = cortex.run_on_core(net, x, core, options)
    np.testing.assert_array_equal(_bits(ran.outputs), _bits(host.outputs))
    if dtype == "float32":
        assert _ulps(ran.outputs, net, x) <= F32_ULP_BOUND
    assert ran.extra["counts"] == "instructions" and 50 < ran.instructions < 500_000, ran.instructions


def _relu_net() -> Network:
    """Half its hidden activations zero on _x's inputs; a 10-unit remainder pass at speed."""
    return dense_chain([5, 24, 10, 3], ["relu", "relu", "softmax"], 7)


@pytest.mark.parametrize("optimize", ["size", "speed"])
def test_soft_float_cores_skip_zero_inputs_exactly(riscv, optimize):
    """Cores without an FPU (c_softfloat): float32 loops skip the products of zero inputs
    (NAME_nz, from the bits); the sums equal the plain loops' (same order) as numbers (the sign of an
    exact zero aside: -0 == +0), every nonzero output bit for bit; within the ULP bound of
    the float64 reference; rv32imc under QEMU bit-identical to the host build of the same C.
    q15 and float64 files are unchanged."""
    for net in (sine_net(), _relu_net()):
        x = np.concatenate([_x(net, 16), np.zeros((1, net.n_inputs), np.float32),
                            np.full((1, net.n_inputs), -0.0, np.float32)])
        options = cortex.Options(name="net", optimize=optimize, unroll="never")  # plain speed: the same sums, as loops
        soft = options.for_core("rv32imc")
        assert soft.storage == "softfloat" and options.for_core("atmega328p").storage == "progmem"
        source, plain = soft.source(net)[0], options.source(net)[0]
        assert "net_nz(" in source and "net_nz(" not in plain
        skipped, full = cortex.run_on_host(net, x, soft).outputs, cortex.run_on_host(net, x, options).outputs
        np.testing.assert_array_equal(skipped, full)
        np.testing.assert_array_equal(_bits(skipped)[full != 0], _bits(full)[full != 0])
        assert _ulps(skipped, net, x) <= F32_ULP_BOUND
        ran = cortex.run_on_core(net, x, "rv32imc", options)
        np.testing.assert_array_equal(_bits(ran.outputs), _bits(skipped))
    net = sine_net()
    for dtype in ("q15", "float64"):
        same = [cortex.Options(name="net", dtype=dtype, optimize=optimize, domain=(-1, 1), storage=storage).source(net)
                for storage in ("plain", "softfloat")]
        assert same[0] == same[1], dtype


_MUL_CHECK = r"""
#include <stdio.h>
#include "net.c"
static uint32_t state = 2463534242u;
static uint32_t next(void) { state ^= state << 13; state ^= state >> 17; state ^= state << 5; return state; }
static float as_float(uint32_t u) { float f; memcpy(&f, &u, sizeof f); return f; }
static uint32_t bits(float f) { uint32_t u; memcpy(&u, &f, sizeof u); return u; }
int main(void)
{
    unsigned long wrong = 0, i, fast = 0;
    for (i = 0; i < 3000000ul; ++i) {
        uint32_t a = next(), b = next();
        const uint32_t kind = i % 4u;
        if (kind == 1u) { /* normal operands, exponent sums around both ends of the fast path */
            const uint32_t ea = 1u + next() % 254u, lo = ea < 128u ? 128u - ea : 1u;
            const uint32_t eb = (next() & 1u) ? lo + next() % 3u : 379u - ea - next() % 3u;
            if (eb < 1u || eb > 254u) continue;
            a = (a & 0x807fffffu) | (ea << 23); b = (b & 0x807fffffu) | (eb << 23);
        } else if (kind == 2u) { /* few significand bits: exact products and ties */
            a = (a & 0x80000000u) | ((100u + next() % 50u) << 23) | ((a & 0x7fffffu) & (0x7fffffu << (next() % 23u)));
            b = (b & 0x80000000u) | ((100u + next() % 50u) << 23) | ((b & 0x7fffffu) & (0x7fffffu << (next() % 23u)));
        } else if (kind == 3u) { /* significands near 2 and 1: products that round up to the next power of 2 */
            a = (a & 0x80000000u) | ((100u + next() % 50u) << 23) | (0x7fffffu - next() % 4u);
            b = (b & 0x80000000u) | ((100u + next() % 50u) << 23) |
                ((next() & 1u) ? next() % 8u : 0x7fffffu - next() % 8u);
        }
        {
            volatile float w = as_float(a), h = as_float(b);
            const float p = w * h, q = net_mul(w, h);
            if (bits(p) != bits(q) && !(p != p && q != q)) ++wrong;
            fast += (((a >> 23) & 0xffu) + ((b >> 23) & 0xffu)) - 128u < 252u;
        }
    }
    printf("%lu %lu\n", wrong, fast);
    return 0;
}
"""


def test_integer_multiply_of_soft_float_cores_is_ieee(tmp_path, gcc):
    """NAME_mul (rv32imc and Cortex-M0+: the product in integers where both operands and it are
    normal) against the host's IEEE multiply, bit for bit (NaN: any NaN), on 3 million operand
    pairs: random bits, exponent sums at both ends of the integer path, significands with
    few bits (exact products and ties to even), and products rounding up to a power of 2.
    Forced on the host by NAME_INTEGER_MUL; the host build without it multiplies with ``*``."""
    source = emit_c(sine_net(), name="net", profile="embedded", optimize="size", storage="softfloat")
    assert "#define net_mul(w, h) ((w) * (h))" in source
    (tmp_path / "net.c").write_text(source)
    (tmp_path / "check.c").write_text(_MUL_CHECK)
    program = tmp_path / "check"
    subprocess.run([cross.host_compiler(), *cortex.HOST_FLAGS, "-Dnet_INTEGER_MUL", f"-I{tmp_path}",
                    str(tmp_path / "check.c"), "-o", str(program), "-lm"], check=True)
    wrong, fast = map(int, subprocess.run([str(program)], capture_output=True, text=True, check=True,
                                          timeout=120).stdout.split())
    assert wrong == 0 and fast > 1_000_000, (wrong, fast)


def test_driver_reads_int32_logits_of_the_q15_integer_predictor(tmp_path, riscv, gcc):
    """A softmax network's NAME_q15 writes int32 logits from int16 codes: the driver's output
    buffer has its own type (MLPC_Y_T; bench/embedded.py's integer rows had an int16 one, which
    NAME_q15 overran).  The host build under AddressSanitizer and rv32imc on QEMU give the same
    logits, which rank the classes as the float API's probabilities do."""
    from mlpcodegen.core.fixed import plan, quantise_inputs

    net = dense_chain([4, 8, 3], ["relu", "softmax"], 9)
    x = _x(net, 8)
    options = cortex.Options(name="net", dtype="q15", domain=(-1, 1))
    source = cortex.write_predictor(net, options, tmp_path)
    (tmp_path / "mlpc_net.h").write_text('#include "net.h"\n#define MLPC_T int16_t\n#define MLPC_Y_T int32_t\n'
                                         "#define MLPC_NAME net_q15\n#define MLPC_INPUTS 4u\n#define MLPC_OUTPUTS 3u\n")
    codes = quantise_inputs(plan(net, (-1, 1)), x.astype(np.float64))
    rows = ",\n".join(" {" + ", ".join(str(int(v)) for v in row) + "}" for row in codes)
    (tmp_path / "mlpc_table.h").write_text(f"#define MLPC_ROWS {len(x)}u\n#define MLPC_TIMED {len(x)}u\n"
                                           "#define MLPC_REPEAT 8u\n"
                                           f"static const int16_t mlpc_x[{len(x)}][MLPC_INPUTS] MLPC_TABLE_STORAGE = "
                                           f"{{\n{rows}\n}};\n")
    program = tmp_path / "host"
    subprocess.run([cross.host_compiler(), *cortex.HOST_FLAGS, "-fsanitize=address", f"-I{tmp_path}", str(source),
                    str(cross.DATA / "driver.c"), str(cross.DATA / "host.c"), "-o", str(program), "-lm"], check=True)
    done = subprocess.run([str(program)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-1000:]
    host = cortex._parse(done.stdout, len(x), 3, "int32")[0]
    ran = cortex.run_prepared(tmp_path, [source], "rv32imc", "-Os", len(x), 3, "int32", 8 * len(x))
    np.testing.assert_array_equal(ran.outputs, host)
    probabilities = cortex.run_on_host(net, x, options).outputs
    assert (host.argmax(axis=1) == probabilities.argmax(axis=1)).all() and len(set(host.ravel())) > 3


@pytest.mark.parametrize("dtype,optimize", [("q15", "size"), ("float32", "size"), ("float32", "speed")])
def test_avr_on_simavr_tables_in_flash(avr, dtype, optimize):
    """ATmega328P: q15 bit-identical to the host build, float32 within the ULP bound; the
    weights in flash (.progmem: no .data to copy into the 2 KiB of RAM); cycles counted."""
    net = sine_net()
    x = _x(net)
    options = cortex.Options(name="net", dtype=dtype, optimize=optimize, domain=(-1, 1) if dtype == "q15" else None)
    host = cortex.run_on_host(net, x, options.for_core("atmega328p"))  # the same C (PROGMEM macros: plain here)
    ran = cortex.run_on_core(net, x, "atmega328p", options)
    if dtype == "q15":
        np.testing.assert_array_equal(_bits(ran.outputs), _bits(host.outputs))
    else:
        assert _ulps(ran.outputs, net, x) <= F32_ULP_BOUND
    assert ran.extra["counts"] == "cycles" and 1_000 < ran.instructions < 500_000, ran.instructions
    [row] = cortex.measure_sizes(net, options, ["atmega328p"], ["-Os"])
    assert row.data == 0 and row.bss == 0 and row.rodata >= net.layers[1].kernel.size * (2 if dtype == "q15" else 4)
    function, stated = cortex.stated_stack(net, options.for_core("atmega328p"))
    skipped = {function, "net_scalar", "net_quantise", "net"}  # the predictor, its wrappers
    measured = row.functions[function][1] + sum(stack for name, (_, stack) in row.functions.items()
                                                if name.startswith("net_") and name not in skipped)
    assert measured <= stated, (row.functions, stated)
    if dtype == "q15":  # the Uno target: RAM = data + bss + stated stack <= 120 B
        assert stated == stack_bytes(net, "q15", storage="progmem", domain=(-1, 1))["q15"] <= 120


def test_avr_code_compiles_strictly_for_the_uno_and_the_host(tmp_path, avr, gcc):
    """The flash-table C (float table form, float tiled loops, q15) under the strict warnings,
    for the ATmega328P and for this machine (where its macros make plain arrays)."""
    net = mixed_net()
    sources = {"size": emit_c(net, name="nn", profile="embedded", optimize="size", storage="progmem"),
               "loops": emit_c(net, name="nn", profile="embedded", unroll="never", storage="progmem"),
               "q15": emit_c_fixed(net, name="nn", storage="progmem", domain=(-1, 1))}
    for label, text in sources.items():
        assert "pgm_read_" in text and "nn_CONST" in text, label
        source = tmp_path / f"{label}.c"
        source.write_text(text)
        for compiler, flags in (("avr-gcc", ["-mmcu=atmega328p", "-Os"]), (gcc, [])):
            subprocess.run([compiler, *STRICT_FLAGS, *flags, "-c", str(source), "-o", str(tmp_path / f"{label}.o")],
                           check=True)
    # a table-form file's weights are one PROGMEM object
    assert re.search(r"static const struct \{ unsigned char L\[5\]; float P\[\d+\]; \} nn_N nn_CONST = \{",
                     sources["size"])


def test_float64_refused_on_avr_and_lx106_sizes_only(tmp_path, capsys, avr, xtensa):
    path = tmp_path / "sine.onnx"
    path.write_bytes(onnx_model(sine_net()).SerializeToString())
    assert main(["size", str(path), "--core", "atmega328p", "--dtype", "float64"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "double is 32 bits" in err[0]
    assert main(["verify", str(path), "--core", "lx106", "-n", "4"]) == 2
    assert "no emulator" in capsys.readouterr().err
    assert main(["size", str(path), "--core", "lx106", "atmega328p", "--opt", "Os", "--dtype", "q15",
                 "--domain", "-1", "1"]) == 0
    out = capsys.readouterr().out
    lx106 = [line for line in out.splitlines() if line.startswith("lx106 -Os memory")]
    assert len(lx106) == 1 and "no emulator: sizes only" in lx106[0]
    uno = next(line for line in out.splitlines() if line.startswith("atmega328p -Os memory"))
    ram = int(re.search(r"RAM (\d+) of 2,048 B", uno).group(1))
    assert ram <= 120, uno


def test_verify_command_on_rv32imc(tmp_path, capsys, riscv):
    path = tmp_path / "sine.onnx"
    path.write_bytes(onnx_model(sine_net()).SerializeToString())
    assert main(["verify", str(path), "--core", "rv32imc", "-n", "16"]) == 0
    out = capsys.readouterr().out
    assert "on rv32imc (qemu-system-riscv32 virt)" in out and "vs ONNX Runtime" in out and "FAIL" not in out
    assert "instructions per inference on rv32imc" in out


ARDUINO_MAKEFILE = """ARDUINO_DIR = /usr/share/arduino
BOARD_TAG = uno
ARDUINO_LIBS = {name}
USER_LIB_PATH = {libraries}
# the example's stop for an emulator run (sleep with interrupts off: simavr quits)
CPPFLAGS += -DMLPCODEGEN_STOP
# Debian's arduino-core-avr with gcc-avr 5.4: <float.h> defines DECIMAL_DIG for C99 only
CXXFLAGS += -DDECIMAL_DIG=9
include /usr/share/arduino/Arduino.mk
"""


@pytest.mark.parametrize("dtype", ["q15"])
def test_arduino_library_builds_for_the_uno_and_prints_the_host_outputs(tmp_path, capsys, arduino, dtype):
    """convert --arduino writes the library; its example builds with the Arduino core and
    arduino-mk for the Uno and, on simavr, prints the outputs of the host build of the same C."""
    from mlpcodegen.app.cli_embedded import example_inputs

    net = sine_net()
    path = tmp_path / "sine.onnx"
    path.write_bytes(onnx_model(net).SerializeToString())
    library = tmp_path / "libraries" / "sine"
    assert main(["convert", str(path), "--arduino", str(library), "--dtype", dtype, "--name", "sine",
                 "--domain", "-1", "1"]) == 0
    files = sorted(str(p.relative_to(library)) for p in library.rglob("*") if p.is_file())
    assert files == ["examples/sine/sine.ino", "library.json", "library.properties", "src/sine.c", "src/sine.h"]
    assert "name=sine\n" in (library / "library.properties").read_text()
    sketch = tmp_path / "sketch"
    sketch.mkdir()
    (sketch / "sketch.ino").write_text((library / "examples/sine/sine.ino").read_text())
    (sketch / "Makefile").write_text(ARDUINO_MAKEFILE.format(name="sine", libraries=library.parent))
    subprocess.run(["make", "-s"], cwd=sketch, check=True, capture_output=True, timeout=600)
    image = next((sketch / "build-uno").glob("*.elf"))
    printed = cross.simavr(image, cross.core("atmega328p"), timeout=120)
    bits = np.array([[int(word, 16) for word in line.split()[1::2]] for line in printed.splitlines()], np.uint32)
    x = example_inputs(net)
    host = cortex.run_on_host(net, x, cortex.Options(name="sine", dtype=dtype, storage="progmem", domain=(-1, 1)))
    np.testing.assert_array_equal(bits, host.outputs.view(np.uint32))
    numbers = np.array([[float(word) for word in line.split()[0::2]] for line in printed.splitlines()])
    np.testing.assert_allclose(numbers, host.outputs, atol=1e-6)


def test_avr_q15_tanh_sigmoid_table_in_flash_bits(avr):
    """The q15 tanh table (PROGMEM, read with pgm_read_word) and sigmoid, and the AVR dot
    helper (inline MUL) on several layers: bit-identical to the host build."""
    rng = np.random.default_rng(8)
    net = Network(3, (Dense(rng.normal(size=(3, 8)), rng.normal(size=8) * 0.1, Activation("tanh")),
                      Dense(rng.normal(size=(8, 4)) / 3, rng.normal(size=4) * 0.1, Activation("sigmoid")),
                      Dense(rng.normal(size=(4, 2)), rng.normal(size=2) * 0.1, Activation("linear"))))
    x = _x(net, 16)
    options = cortex.Options(name="net", dtype="q15", domain=(-1, 1))
    host = cortex.run_on_host(net, x, options.for_core("atmega328p"))
    ran = cortex.run_on_core(net, x, "atmega328p", options)
    np.testing.assert_array_equal(_bits(ran.outputs), _bits(host.outputs))
    assert "net_T[257] net_CONST" in emit_c_fixed(net, name="net", storage="progmem", domain=(-1, 1))


def test_convert_core_writes_the_cores_c(tmp_path, capsys):
    """convert --core: the embedded C for the core (AVR: flash tables), with --header; float64 refused."""
    path = tmp_path / "sine.onnx"
    path.write_bytes(onnx_model(sine_net()).SerializeToString())
    out = tmp_path / "sine.c"
    assert main(["convert", str(path), "--core", "atmega328p", "--optimize", "size", "-o", str(out), "--header"]) == 0
    text = out.read_text()
    assert "#define sine_CONST PROGMEM" in text and "sine_batch" not in text
    assert (tmp_path / "sine.h").read_text().count("void sine(const float *x, float *y);") == 1
    assert main(["convert", str(path), "--core", "rv32imc", "--dtype", "q15", "--domain", "-1", "1"]) == 0
    assert "PROGMEM" not in capsys.readouterr().out
    assert main(["convert", str(path), "--core", "atmega328p", "--dtype", "float64"]) == 1
    assert "double is 32 bits" in capsys.readouterr().err


def _packed_nets() -> list[Network]:
    """ReLU hidden layers: int32 sums (relu, relu6; rows all zero, sums that saturate), int64 sums
    in every layer (x packed, signed), an int64 first layer before an int32 one, and 130 inputs
    (too many for a byte offset: x read unpacked)."""
    rng = np.random.default_rng(26)
    return [Network(3, (Dense(rng.normal(size=(3, 40)), rng.normal(size=40) * 1.5, Activation("relu")),
                        Dense(rng.normal(size=(40, 24)) / 3, rng.normal(size=24) - 0.5, Activation("relu6")),
                        Dense(rng.normal(size=(24, 2)), rng.normal(size=2) * 0.1, Activation("linear")))),
            Network(12, (Dense(rng.normal(size=(12, 48)) * 2, rng.normal(size=48), Activation("relu")),
                         Dense(rng.normal(size=(48, 32)), rng.normal(size=32) - 0.5, Activation("relu")),
                         Dense(rng.normal(size=(32, 3)), rng.normal(size=3) * 0.1, Activation("linear")))),
            Network(40, (Dense(rng.normal(size=(40, 16)), rng.normal(size=16), Activation("relu")),
                         Dense(rng.normal(size=(16, 2)), rng.normal(size=2) * 0.1, Activation("linear")))),
            Network(130, (Dense(rng.normal(size=(130, 8)) / 8, rng.normal(size=8), Activation("relu")),
                          Dense(rng.normal(size=(8, 2)), rng.normal(size=2) * 0.1, Activation("linear"))))]


@pytest.mark.parametrize("which,sums,helper", [(0, [32, 32, 32], "net_dotc(s, w, c, k)"),
                                               (1, [64, 64, 64], "net_dotcw(s, w, c, k)"),
                                               (2, [64, 32], "net_dotcws(s, w, c, k)"),
                                               (3, [64, 32], "net_dotc(s, w, c, k)")])
def test_avr_q15_packed_relu_inputs_equal_the_mirror(avr, which, sums, helper):
    """AVR, ReLU hidden layers: the layers after the first multiply their nonzero inputs only
    (NAME_pack, NAME_dotc* in assembly: int32 sums, or 40 bits widened to int64; an int64 first
    layer packs x, signed) and ReLU sums are shifted as unsigned.  On the Uno the output codes
    equal the Python mirror (fixed.run_codes) bit for bit, as do the host build's; the file's
    stated stack covers the measured frames."""
    from mlpcodegen.core.fixed import plan, quantise_inputs, run_codes

    net = _packed_nets()[which]
    fixed = plan(net, (-1, 1))
    assert [layer.acc_bits for layer in fixed.layers] == sums
    x = np.concatenate([_x(net, 20), np.full((2, net.n_inputs), -1.0, np.float32),
                        np.ones((2, net.n_inputs), np.float32)])
    options = cortex.Options(name="net", dtype="q15", domain=(-1, 1))
    source = emit_c_fixed(net, name="net", storage="progmem", domain=(-1, 1))
    assert helper in source and "net_pack(c, h, " in source
    expected = run_codes(fixed, quantise_inputs(fixed, x.astype(np.float64)))
    assert 0 < np.count_nonzero(expected) and np.ptp(expected) > 0
    for ran in (cortex.run_on_core(net, x, "atmega328p", options),
                cortex.run_on_host(net, x, options.for_core("atmega328p"))):
        codes = ran.outputs.astype(np.float64) * 2.0 ** fixed.out_frac
        np.testing.assert_array_equal(codes, expected)
    [row] = cortex.measure_sizes(net, options, ["atmega328p"], ["-Os"])
    function, stated = cortex.stated_stack(net, options.for_core("atmega328p"))
    measured = row.functions[function][1] + sum(stack for name, (_, stack) in row.functions.items()
                                                if name.startswith("net_") and name not in (function, "net_quantise"))
    assert measured <= stated, (row.functions, stated)


def test_avr_q15_relu_after_tanh_shifted_unsigned(avr):
    """A ReLU after a tanh (no packing: tanh outputs are seldom zero) still shifts its clamped
    sum as unsigned on AVR: the output codes equal fixed.run_codes on simavr and the host."""
    from mlpcodegen.core.fixed import plan, quantise_inputs, run_codes

    rng = np.random.default_rng(31)
    net = Network(3, (Dense(rng.normal(size=(3, 10)), rng.normal(size=10) * 0.3, Activation("tanh")),
                      Dense(rng.normal(size=(10, 8)), rng.normal(size=8) - 0.3, Activation("relu")),
                      Dense(rng.normal(size=(8, 2)), rng.normal(size=2) * 0.1, Activation("linear"))))
    source = emit_c_fixed(net, name="net", storage="progmem", domain=(-1, 1))
    assert "net_pack" not in source and "const uint32_t u = (uint32_t)s + " in source
    fixed = plan(net, (-1, 1))
    x = _x(net, 24)
    expected = run_codes(fixed, quantise_inputs(fixed, x.astype(np.float64)))
    options = cortex.Options(name="net", dtype="q15", domain=(-1, 1))
    for ran in (cortex.run_on_core(net, x, "atmega328p", options),
                cortex.run_on_host(net, x, options.for_core("atmega328p"))):
        np.testing.assert_array_equal(ran.outputs.astype(np.float64) * 2.0 ** fixed.out_frac, expected)


def test_avr_int8_tables_in_flash_equal_the_mirror(avr):
    """int8 on the Uno: weights, biases, per-channel multipliers and shifts, the tanh table
    and the softmax's exp constants in flash (PROGMEM, pgm_read_*: no .data, no .rodata copied
    to RAM); a calibrated 4-12-8-3 (relu, tanh, softmax) network's output codes equal the NumPy
    mirror (quant.run_int8) bit for bit, as the host build's; the file's stated stack covers
    the measured frames."""
    from mlpcodegen.backends.c_int8 import emit_c_int8
    from mlpcodegen.backends.c_int8 import stack_bytes as int8_stack
    from mlpcodegen.core.ptq import calibrate
    from mlpcodegen.core.quant import round_half_away, run_int8

    rng = np.random.default_rng(27)
    float_net = Network(4, (Dense(rng.normal(size=(4, 12)), rng.normal(size=12) * 0.3, Activation("relu")),
                            Dense(rng.normal(size=(12, 8)) / 2, rng.normal(size=8) * 0.3, Activation("tanh")),
                            Dense(rng.normal(size=(8, 3)), rng.normal(size=3) * 0.3, Activation("softmax"))))
    net = calibrate(float_net, rng.uniform(-1, 1, (128, 4)))
    source = emit_c_int8(net, name="net", storage="progmem")
    for table in ("net_w1[48] net_CONST", "net_m1[12] net_CONST", "net_s1[12] net_CONST", "f[7] net_CONST"):
        assert table in source
    assert "net_LDI8(&net_t" in source  # the tanh table read from flash
    x = _x(net, 24)
    options = cortex.Options(name="net", dtype="int8")
    plan = net.int8
    codes = np.array([[np.clip(round_half_away(float(np.float32(v) / np.float32(plan.input.scale))) +
                               plan.input.zero_point, -128, 127) for v in row] for row in x])
    expected = run_int8(plan, codes.astype(np.int8)).astype(np.float64)
    for ran in (cortex.run_on_core(net, x, "atmega328p", options),
                cortex.run_on_host(net, x, options.for_core("atmega328p"))):
        got = np.round(ran.outputs.astype(np.float64) / plan.output.scale) + plan.output.zero_point
        np.testing.assert_array_equal(got, expected)
    [row] = cortex.measure_sizes(net, options, ["atmega328p"], ["-Os"])
    assert row.data == 0 and row.bss == 0 and row.rodata >= 48 + 96 + 64 + 256
    stated = int8_stack(net, "int8", storage="progmem")["int8"]
    measured = row.functions["net_int8"][1] + sum(stack for name, (_, stack) in row.functions.items()
                                                  if name.startswith("net_") and name not in ("net_int8", "net",
                                                                                              "net_quantize"))
    assert measured <= stated, (row.functions, stated)
