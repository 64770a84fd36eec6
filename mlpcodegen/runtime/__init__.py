"""Running what the backends emit, in this process: the layer between the code
generators (which only emit text) and the harness (which verifies and times).

``load(net, target, dtype=..., name=...)`` returns a callable over NumPy arrays for
every target in :data:`LOADERS` (:mod:`.loaders`, the top of this layer); C is compiled
with cffi (:mod:`.cffi_build`, cached by :mod:`.cache_key`: a content hash of the IR, the
options, the package, the toolchain and the CPU: a hit emits nothing) into a library that
also carries CPython entry points (:mod:`.native`: ``predict`` with ``out=`` and
``threads=``, ``scalar``), which the returned :class:`CompiledNetwork` (:mod:`.predictor`)
calls; the Python-family targets are imported from a cached file (:mod:`.pymodule`); all
share the cache folder (:mod:`.cache`).  Imports the backends; never the harness, the
frontends or the command line.
"""
from .loaders import LOADERS, Loader, Predictor, compile_c, get_loader, load, run_options
from .predictor import BoundCall, CompiledNetwork

__all__ = ["load", "compile_c", "get_loader", "run_options", "LOADERS", "Loader", "Predictor",
           "CompiledNetwork", "BoundCall"]
