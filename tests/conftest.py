"""Shared fixtures: random Keras MLPs built with fixed seeds via set_weights (the IR
networks and inputs the tests share are in tests/nets.py); the tools
(gcc, the Cortex-M toolchain: tests/toolchains.py) and optional packages (torch) a test
needs, installed or skipped with one summary line each, a failure under CI=true."""
from __future__ import annotations

import contextlib
import importlib.util
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import toolchains  # noqa: E402
from toolchains import on_ci, require  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
STRICT_FLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Wpedantic", "-Wconversion",
                "-Wdouble-promotion", "-Werror"]



def build_flags() -> tuple[str, ...]:
    """The flags cffi_build uses (DEFAULT_FLAGS), without debug information: Python's
    CFLAGS add -g, which changes no generated code but is most of gcc's time on a large
    file (a 300-layer chain: 21 s with -g, 3.5 s without at -O1)."""
    from mlpcodegen.runtime.cffi_build import DEFAULT_FLAGS

    return (*DEFAULT_FLAGS, "-g0")


@pytest.fixture(autouse=True, scope="session")
def _private_cffi_cache(tmp_path_factory):
    """Each test session compiles into its own cache so every build path runs."""
    previous = os.environ.get("MLPCODEGEN_CACHE")
    os.environ["MLPCODEGEN_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if previous is None:
        os.environ.pop("MLPCODEGEN_CACHE", None)
    else:
        os.environ["MLPCODEGEN_CACHE"] = previous


def build_model(widths, activations, biases, seed: int = 0, functional: bool = False):
    """A Keras MLP whose weights are set from a seeded NumPy generator."""
    import keras

    rng = np.random.default_rng(seed)
    dense = [keras.layers.Dense(w, activation=a, use_bias=b)
             for w, a, b in zip(widths[1:], activations, biases)]
    if functional:
        inputs = keras.Input((widths[0],))
        x = inputs
        for layer in dense:
            x = layer(x)
        model = keras.Model(inputs, x)
    else:
        model = keras.Sequential([keras.Input((widths[0],))] + dense)
    for layer, n_in, n_out in zip(dense, widths[:-1], widths[1:]):
        scale = np.sqrt(2.0 / (n_in + n_out))
        weights = [rng.normal(0.0, 1.5 * scale, (n_in, n_out))]
        if layer.use_bias:
            weights.append(rng.normal(0.0, 0.5, n_out))
        layer.set_weights([w.astype(np.float32) for w in weights])
    return model


def _say(config):
    """A line on the terminal while a test runs (past pytest's capture): what is installed."""
    def say(line: str) -> None:
        capture = config.pluginmanager.getplugin("capturemanager")  # None under -p no:capture
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            print(f"\n{line}", file=sys.stderr, flush=True)
    return say


@pytest.fixture(scope="session")
def gcc(request) -> str:
    """The C compiler: installed when missing (tests/toolchains.py), a failure under CI."""
    import shutil

    found = shutil.which("gcc") or shutil.which("cc")
    if found is None:
        require("gcc", say=_say(request.config))
        found = shutil.which("gcc")
    return found


@pytest.fixture(scope="session")
def arm_toolchain(request) -> None:
    """arm-none-eabi-gcc/g++ and qemu-system-arm, for the Cortex-M builds and runs: installed
    when missing, else every such test skips with the same line (fails under CI=true)."""
    require("arm", say=_say(request.config))


#: Python packages some tests need that `pip install -e ".[all]"` leaves out (torch pulls
#: several GB of CUDA libraries; .ci/run installs the CPU build).
OPTIONAL_MODULES = {"torch": 'pip install -e ".[torch]"', "onnxscript": 'pip install -e ".[torch]"'}


def import_optional(name: str):
    """``import name`` for a test module: the module, or a skip (a module-level one too)
    when it is an optional package that is not installed; under CI=true the error."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        _skip_if_optional(error)
        raise


def _skip_if_optional(error: ModuleNotFoundError) -> None:
    """Skip, with one line for every such test, when ``error`` is the import of an optional
    package that is not installed (never under CI=true: .ci/run installs them)."""
    top = (error.name or "").split(".")[0]
    if top in OPTIONAL_MODULES and not on_ci() and importlib.util.find_spec(top) is None:
        toolchains.skip(f"needs {top}, which [all] leaves out: {OPTIONAL_MODULES[top]}")


def _one_line(report):
    """A skip of toolchains.skip() reported at tests/toolchains.py, whichever test or
    fixture raised it: `pytest -ra` folds skips by place and reason."""
    if report.skipped and isinstance(report.longrepr, tuple):
        reason = report.longrepr[2]
        if reason.removeprefix("Skipped: ") in toolchains.ONE_LINE_SKIPS:
            report.longrepr = (toolchains.__file__, None, reason)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    return _one_line((yield))


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    return _one_line((yield))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    try:
        return (yield)
    except ModuleNotFoundError as error:
        _skip_if_optional(error)
        raise


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    try:
        return (yield)
    except ModuleNotFoundError as error:
        _skip_if_optional(error)
        raise


@pytest.fixture(scope="session")
def keras_module():
    import keras

    return keras
