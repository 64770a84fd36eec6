"""mlpcodegen: compile trained multilayer perceptrons into native functions.

>>> import mlpcodegen                                       # doctest: +SKIP
>>> net = mlpcodegen.load("generated/seed/seed.keras")     # no TensorFlow import
>>> source = mlpcodegen.emit(net, "c", dtype="float32", name="seed")
>>> f = mlpcodegen.compile_c(net, dtype="float32", name="seed")
>>> f([0.5])                                                # one sample -> array([...])
>>> mlpcodegen.verify("generated/seed/seed.keras").ok       # imports TensorFlow
True
"""
from .backends import emit
from .errors import CompileError, MlpCodegenError, ModelFormatError, UnsupportedError, ValidationError
from .frontends import load
from .harness.verify import verify
from .reference import evaluate
from .runtime import compile_c
from .scaling import Scaling, with_scaling, write_scaling_file

__all__ = [
    "load", "emit", "compile_c", "verify", "evaluate", "Scaling", "with_scaling", "write_scaling_file",
    "MlpCodegenError", "ValidationError", "UnsupportedError", "ModelFormatError", "CompileError",
]
__version__ = "0.1.0"  # as pyproject.toml's (tests/test_cli.py::test_version checks)
