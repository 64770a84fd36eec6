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
from mlpcodegen.cli import main
from mlpcodegen.harness import cortex
from mlpcodegen.harness.onnx_peer import onnx_model
from mlpcodegen.harness.verify import F32_ULP_BOUND
from mlpcodegen.ir import Activation, Dense, Network
from mlpcodegen.runtime import cores, cross

from conftest import STRICT_FLAGS, _say
from nets import inputs
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


@pytest.mark.parametrize("dtype", ["q15", "float32"])
def test_avr_on_simavr_tables_in_flash(avr, dtype):
    """ATmega328P: q15 bit-identical to the host build, float32 within the ULP bound; the
    weights in flash (.progmem: no .data to copy into the 2 KiB of RAM); cycles counted."""
    net = sine_net()
    x = _x(net)
    options = cortex.Options(name="net", dtype=dtype, optimize="size", domain=(-1, 1) if dtype == "q15" else None)
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
        assert stated == stack_bytes(net, "q15", storage="progmem")["q15"] <= 120


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
    from mlpcodegen.cli_embedded import example_inputs

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
