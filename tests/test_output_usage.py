"""The output side as a new user drives it: options that would be ignored, names and file
names that would give code that does not build, and errors that came after the work (or
after printing) are refused up front, in one line, with nothing written."""
import numpy as np
import pytest

from conftest import REPO
from mlpcodegen import load
from mlpcodegen.app import common
from mlpcodegen.app.cli import main
from mlpcodegen.backends import emit
from mlpcodegen.core.errors import UnsupportedError
from mlpcodegen.core.ir import Activation, Dense, Network

SEED = REPO / "generated" / "seed" / "seed.keras"


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.fixture
def no_model_read(monkeypatch):
    """Fails the test if the command reads the model: its refusal must come before any work."""
    def refuse(args):
        raise AssertionError("the model was read before the usage error")
    monkeypatch.setattr(common, "load", refuse)


@pytest.mark.parametrize("command", [
    ["convert", str(SEED), "--target", "rust"],
    ["convert", str(SEED), "--target", "c"],
    ["simplify", str(SEED), "--domain", "-1", "1", "--tolerance", "1e-2"],
    ["size", str(SEED), "--core", "m4f"],
])
@pytest.mark.parametrize("name", ["", "my-model", "int"])
def test_a_bad_name_is_refused_before_the_model_is_read_never_replaced(tmp_path, capsys, no_model_read,
                                                                        command, name):
    out = tmp_path / "out.txt"
    args = command + ["--name", name] + (["-o", str(out)] if command[0] != "size" else [])
    assert main(args) == 1
    assert repr(name) in _error(capsys)
    assert not out.exists()


@pytest.mark.parametrize("command", [["convert", str(SEED), "--target", "java"],
                                     ["simplify", str(SEED), "--domain", "-1", "1", "--tolerance", "1e-2",
                                      "--target", "java"]])
def test_java_output_must_be_named_after_its_class(tmp_path, capsys, no_model_read, command):
    out = tmp_path / "Foo.java"
    assert main(command + ["-o", str(out)]) == 2
    error = _error(capsys)
    assert "public class Seed" in error and "Seed.java" in error and "--name Foo" in error
    assert not out.exists()


def test_java_with_a_matching_name_writes_that_class(tmp_path, capsys):
    out = tmp_path / "Foo.java"
    assert main(["convert", str(SEED), "--target", "java", "--name", "foo", "-o", str(out)]) == 0
    assert "public final class Foo {" in out.read_text()


@pytest.mark.parametrize("extra", [["--optimize", "size"], ["--arduino", "lib", "-o", "x.c"],
                                   ["--arduino", "lib", "--header"]])
def test_c_options_that_would_be_ignored_are_bad_usage(tmp_path, capsys, monkeypatch, no_model_read, extra):
    monkeypatch.chdir(tmp_path)
    if "-o" not in extra and "--arduino" not in extra:
        extra = extra + ["-o", "x.c"]
    assert main(["convert", str(SEED)] + extra) == 2
    assert _error(capsys).startswith("mlpcodegen convert: error: --")
    assert list(tmp_path.iterdir()) == []


def test_optimize_size_with_the_embedded_profile_still_converts(tmp_path, capsys):
    out = tmp_path / "x.c"
    assert main(["convert", str(SEED), "--profile", "embedded", "--optimize", "size", "-o", str(out)]) == 0
    assert "optimize size" in out.read_text()


@pytest.mark.parametrize("target", ["rust", "c", "python"])
def test_domain_with_a_float_target_says_where_it_goes(capsys, no_model_read, target):
    assert main(["convert", str(SEED), "--target", target, "--domain", "0", "1"]) == 2
    error = _error(capsys)
    assert "--target c --dtype q15 or int8" in error and "(none)" not in error


def test_formula_refuses_a_bad_domain_before_printing(capsys, no_model_read):
    assert main(["formula", str(SEED), "--domain", "1", "-1"]) == 2
    assert capsys.readouterr().out == ""


def test_formula_refuses_a_picture_too_large_before_printing(tmp_path, capsys, monkeypatch):
    wide = Network(2, tuple(Dense(np.full((2 if i == 0 else 40, 40), 0.5), np.zeros(40), Activation("tanh"), f"d{i}")
                            for i in range(2)) + (Dense(np.ones((40, 1)), np.zeros(1), name="y"),), name="wide")
    monkeypatch.setattr(common, "load", lambda args: wide)
    png = tmp_path / "f.png"
    assert main(["formula", "unused.keras", "--png", str(png)]) == 1
    assert "too many to draw" in _error(capsys)
    assert capsys.readouterr().out == "" and not png.exists()


def test_a_refused_layer_names_its_activation_and_what_the_target_lacks():
    exact_gelu = Network(2, (Dense(np.eye(2), np.zeros(2), Activation("gelu", (("approximate", 0.0),)), "g"),))
    with pytest.raises(UnsupportedError) as refused:
        emit(exact_gelu, "rust", dtype="float32", name="f")
    message = str(refused.value)
    assert "\n" not in message
    assert "layer 1 (g, gelu (exact, erf))" in message
    lacking = message.split("writes every activation but ")[1]
    assert "gelu (exact, erf)" in lacking and "softplus" in lacking
    assert "tanh" not in lacking and "gelu (tanh)" not in lacking


def test_size_states_the_int8_stack_of_the_int8_function():
    """size's RAM line for --dtype int8 is the stack the file states for NAME_int8 (it took
    q15's formula and name: 288 bytes for a file stating 988)."""
    from mlpcodegen.backends import c_int8
    from mlpcodegen.core.ptq import calibrate
    from mlpcodegen.harness.cortex import Options, stated_stack

    net = calibrate(load(SEED), np.linspace(0.0, 1.0, 64).reshape(-1, 1))
    options = Options(dtype="int8", name="seed8", math="fast", unroll="auto", optimize="speed",
                      domain=None).for_core("m4f")
    function, stack = stated_stack(net, options)
    assert function == "seed8_int8"
    assert stack == c_int8.stack_bytes(net, "int8", storage=options.storage)["int8"]
    assert f"seed8_int8 {stack}" in emit(net, "c", dtype="int8", name="seed8")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_rust_passes_cargo_clippy_with_warnings_denied(tmp_path, dtype):
    """A Rust user lints their crate with clippy: the generated module (the ported math
    functions too: needless return, LOG2_E written out, a range test) must not fail it."""
    import shutil
    import subprocess

    import toolchains

    if shutil.which("cargo") is None or shutil.which("cargo-clippy") is None:
        toolchains.skip("cargo clippy missing (rustup component add clippy): the Rust lint test skips")
    rng = np.random.default_rng(0)
    net = Network(3, (Dense(rng.normal(size=(3, 4)), rng.normal(size=4), Activation("tanh"), "a"),
                      Dense(rng.normal(size=(4, 40)), rng.normal(size=40), Activation("elu"), "b"),
                      Dense(rng.normal(size=(40, 2)), rng.normal(size=2), Activation("softmax"), "c")))
    (tmp_path / "src").mkdir()
    (tmp_path / "Cargo.toml").write_text('[package]\nname = "lint"\nversion = "0.1.0"\nedition = "2021"\n')
    (tmp_path / "src" / "lib.rs").write_text("#![no_std]\n#![deny(warnings)]\npub mod model;\n")
    (tmp_path / "src" / "model.rs").write_text(emit(net, "rust", dtype=dtype, name="model"))
    done = subprocess.run(["cargo", "clippy", "--offline", "-q", "--", "-D", "warnings"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "CARGO_TARGET_DIR": str(tmp_path / "target")})
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.parametrize("dtype,profile", [("float32", "desktop"), ("float64", "desktop"), ("float32", "embedded")])
def test_the_float_c_declares_its_functions_as_q15_and_int8_do(tmp_path, gcc, dtype, profile):
    """A caller's -Wmissing-prototypes -Werror build of the .c alone (or with the header
    included first) stays clean: the file declares its own API, as its header does."""
    import subprocess

    source = tmp_path / "model.c"
    source.write_text(emit(load(SEED), "c", dtype=dtype, name="model", profile=profile))
    flags = ["-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Wconversion", "-Wdouble-promotion",
             "-Wmissing-prototypes", "-Wmissing-declarations", "-Werror", "-c", "-o", str(tmp_path / "m.o")]
    done = subprocess.run([gcc, *flags, str(source)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("activations", [("tanh", "elu", "softmax"), ("relu", "selu", "log_softmax"),
                                         ("gelu", "mish", "sigmoid")])
def test_the_numpy_module_states_a_memory_bound_that_holds(dtype, activations):
    """The NumPy module's docstring states the bytes a row a call holds at most (a module
    of thousands of units on a million rows needs gigabytes: the user must be told); the
    peak traced while it runs stays within it."""
    import re
    import tracemalloc

    from mlpcodegen.runtime import load as load_target

    rng = np.random.default_rng(1)
    widths = (10, 64, 64, 3)
    net = Network(10, tuple(Dense(rng.normal(size=(widths[i], widths[i + 1])), rng.normal(size=widths[i + 1]),
                                  Activation(activations[i]), f"d{i}") for i in range(3)))
    source = emit(net, "numpy", dtype=dtype, name="f")
    stated = int(re.search(r"Memory: at most about (\d+) bytes a row", source).group(1))
    predict = load_target(net, "numpy", dtype=dtype)  # the module, imported by the runtime
    rows = rng.normal(size=(5000, 10))
    tracemalloc.start()
    try:
        predict(rows)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= stated * len(rows)
    assert "Memory: a call holds about 2 Python floats" in emit(
        Network(1, (Dense(np.ones((1, 1)), np.zeros(1), Activation("tanh"), "a"),
                    Dense(np.ones((1, 1)), np.zeros(1), name="b"))), "python", name="g")


def test_the_numba_module_states_the_scratch_it_allocates():
    """f_into is the low-overhead call, yet it allocates the loop layers' scratch: the
    docstring says how much, the number the code allocates."""
    import re

    rng = np.random.default_rng(2)
    net = Network(10, (Dense(rng.normal(size=(10, 64)), rng.normal(size=64), Activation("tanh"), "a"),
                       Dense(rng.normal(size=(64, 3)), rng.normal(size=3), Activation("softmax"), "b")))
    source = emit(net, "numba", dtype="float32", name="f")
    stated = int(re.search(r"Memory: each call allocates a scratch of (\d+) values \((\d+) bytes\)", source).group(1))
    allocated = {int(n) for n in re.findall(r"t = np\.empty\((\d+), dtype=np\.float32\)", source)}
    assert allocated == {stated}


def test_bench_of_a_non_keras_file_points_to_what_times_it(tmp_path, capsys):
    """bench without --target times Keras models only; another format is told what times
    it (--target, any format) before any timing, in one line."""
    pytest.importorskip("onnx")
    from mlpcodegen.harness.onnx_peer import onnx_model

    model = tmp_path / "m.onnx"
    model.write_bytes(onnx_model(Network(1, (Dense(np.ones((1, 1)), np.zeros(1), name="a"),))).SerializeToString())
    assert main(["bench", str(model), "--out", str(tmp_path / "b.md")]) == 2
    error = _error(capsys)
    assert "--target js rust go java wasm" in error and "is read as ONNX" in error
    assert not (tmp_path / "b.md").exists()
