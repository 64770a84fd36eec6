"""Running what the backends emit, in this process: the layer between the code
generators (which only emit text) and the harness (which verifies and times).

``load(net, target, dtype=..., name=...)`` returns a callable over NumPy arrays for
every target in :data:`LOADERS`; C is compiled with cffi (:mod:`.cffi_build`, cached by a
content hash of the IR, the options and the toolchain: a hit emits nothing) into a library
that also carries CPython entry points (``predict`` with ``out=`` and ``threads=``,
``scalar``), which the returned :class:`CompiledNetwork` calls; the Python-family targets
are imported from a cached file (:mod:`.pymodule`).  Imports the
backends; never the harness, the frontends or the command line.
"""
from .cffi_build import BoundCall, CompiledNetwork
from .loaders import LOADERS, Loader, Predictor, compile_c, get_loader, load, run_options

__all__ = ["load", "compile_c", "get_loader", "run_options", "LOADERS", "Loader", "Predictor",
           "CompiledNetwork", "BoundCall"]
