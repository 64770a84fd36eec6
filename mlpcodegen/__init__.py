"""mlpcodegen: compile trained multilayer perceptrons into native functions.

>>> import mlpcodegen                                       # doctest: +SKIP
>>> net = mlpcodegen.load("generated/seed/seed.keras")     # no TensorFlow import
>>> source = mlpcodegen.emit(net, "c", dtype="float32", name="seed")
>>> f = mlpcodegen.compile_c(net, dtype="float32", name="seed")
>>> f([0.5])                                                # one sample -> array([...])
>>> mlpcodegen.verify("generated/seed/seed.keras").ok       # imports TensorFlow
True
"""
from importlib import import_module as _import_module

from .core.errors import CompileError, MlpCodegenError, ModelFormatError, UnsupportedError, ValidationError

#: The public functions, imported on first use (PEP 562): ``import mlpcodegen`` loads only
#: the errors, and a caller pays for the layers it uses (``mlpcodegen.load`` loads no
#: printer, runtime or harness; each module costs milliseconds of start-up).
_LAZY = {"load": ".frontends", "emit": ".backends", "compile_c": ".runtime", "verify": ".harness.verify",
         "evaluate": ".core.reference", "Scaling": ".core.scaling", "with_scaling": ".core.scaling",
         "write_scaling_file": ".core.scaling"}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mlpcodegen' has no attribute {name!r}")
    value = getattr(_import_module(module, __name__), name)
    globals()[name] = value  # later look-ups find it directly
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "load", "emit", "compile_c", "verify", "evaluate", "Scaling", "with_scaling", "write_scaling_file",
    "MlpCodegenError", "ValidationError", "UnsupportedError", "ModelFormatError", "CompileError",
]
__version__ = "0.1.0"  # as pyproject.toml's (tests/test_cli.py::test_version checks)
