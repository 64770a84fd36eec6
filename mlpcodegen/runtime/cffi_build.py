"""Compile generated C with cffi (API mode), cache the extension by a hash of its
source and flags, and wrap it in a NumPy-friendly callable."""
from __future__ import annotations

import functools
import hashlib
import importlib.machinery
import importlib.util
import os
import platform
import shutil
import stat
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Callable, Sequence

import numpy as np

from .._files import write_atomic
from ..errors import CompileError, MlpCodegenError
from ..numeric import NumericType, numeric_type

#: Flags for the extension built in-process, on and for this machine: -O3 vectorises
#: the batch blocks, -march=native uses the host's SIMD (AVX2/AVX-512 FMA), and
#: -ffp-contract=fast (gcc's default outside strict ISO modes) fuses a*b + c into one
#: FMA, more accurate and ~1.4x faster in the batch (measured 11.2 against 8.0 M
#: samples/s on mid 8-64-64-1).  Never -ffast-math.  The strict-warning check of the
#: generated C is done on the bare file (see tests), because cffi's own wrapper code
#: is not written for -Wconversion.
DEFAULT_FLAGS: tuple[str, ...] = ("-O3", "-march=native", "-ffp-contract=fast")
_LOADED: dict[str, ModuleType] = {}


def cache_dir() -> Path:
    """``$MLPCODEGEN_CACHE`` or ``~/.cache/mlpcodegen``."""
    root = os.environ.get("MLPCODEGEN_CACHE")
    if root:
        return Path(root)
    try:
        return Path.home() / ".cache" / "mlpcodegen"
    except RuntimeError:  # no home directory to be found
        raise MlpCodegenError("no home directory for the compiled-code cache: set MLPCODEGEN_CACHE "
                              "to a writable folder") from None


def cache_problem(path: Path, exc: Exception) -> MlpCodegenError:
    """The error for a cache folder or entry that cannot be read or written."""
    if isinstance(exc, OSError):
        reason = exc.strerror or type(exc).__name__
    else:  # refused by write_atomic: a folder, device or FIFO where an entry goes
        reason = "not a regular file" if path.exists() and not path.is_file() else str(exc)
    return MlpCodegenError(
        f"the compiled-code cache cannot be used: {path}: {reason}. Set MLPCODEGEN_CACHE to a writable "
        f"folder (now {os.environ.get('MLPCODEGEN_CACHE') or 'unset: ~/.cache/mlpcodegen'}), or remove "
        f"what is in the way")


def cache_folder(sub: str) -> Path:
    """The cache's ``sub`` folder, created when missing; a clear error when it cannot be
    (the cache root is a file, a folder is not writable, ...)."""
    folder = cache_dir() / sub
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise cache_problem(folder, exc) from None
    return folder


def _key(source: str, cdef: str, flags: Sequence[str]) -> str:
    import cffi

    digest = hashlib.sha256()
    for part in (source, cdef, " ".join(flags), sys.version, cffi.__version__, platform.machine(), _cpu()):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:24]


@functools.lru_cache(maxsize=None)
def _cpu() -> str:
    """The host CPU's model and feature flags: a cache shared between machines (say, a
    home directory on NFS) must not hand one CPU a module built -march=native for another."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor()
    return "".join(line for line in text.splitlines()[:30] if line.startswith(("model name", "flags")))


def build_module(source: str, cdef: str, flags: Sequence[str] = DEFAULT_FLAGS) -> ModuleType:
    """Compile (or fetch from the cache) an extension exposing ``cdef`` from ``source``.

    A cached library is loaded only if its size and SHA-256 match the stamp written after
    it was complete: a truncated or empty file (a full disk, a crash) would make the
    loader fail or the process die of SIGBUS, so it is rebuilt instead."""
    name = f"_mlpcodegen_{_key(source, cdef, flags)}"
    if name in _LOADED:
        return _LOADED[name]
    library = cache_folder("cffi") / (name + importlib.machinery.EXTENSION_SUFFIXES[0])
    if not _intact(library):
        _compile(name, source, cdef, flags, library)
    try:
        module = _import(name, library)
    except ImportError:  # intact but unloadable (say, another machine's build): rebuild once
        _compile(name, source, cdef, flags, library)
        try:
            module = _import(name, library)
        except ImportError as exc:
            raise CompileError(f"the compiled library {library} cannot be loaded: {exc}") from None
    _LOADED[name] = module
    return module


def _stamp(library: Path) -> Path:
    return library.with_name(library.name + ".sha256")


def _digest(stream) -> tuple[int, str]:
    """(size, SHA-256 hex) of an open binary file."""
    size = os.fstat(stream.fileno()).st_size
    return size, hashlib.file_digest(stream, "sha256").hexdigest()


def _intact(library: Path) -> bool:
    """Whether ``library`` is a regular file whose size and hash match its stamp."""
    try:
        size_text, digest = _stamp(library).read_text(encoding="ascii").split()
        with open(library, "rb") as stream:
            if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
                return False
            return _digest(stream) == (int(size_text), digest)
    except (OSError, ValueError, UnicodeDecodeError):  # missing, unreadable or malformed: rebuild
        return False


def _import(name: str, library: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, library)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _compile(name: str, source: str, cdef: str, flags: Sequence[str], library: Path) -> None:
    """Build in a private folder, make the library durable, rename it into place, then
    write its stamp: a reader never loads half a file, and a crash at any point leaves
    an entry that fails the check and is rebuilt."""
    import cffi

    ffi = cffi.FFI()
    ffi.cdef(cdef)
    ffi.set_source(name, source, extra_compile_args=list(flags), libraries=["m"])
    try:
        work = Path(tempfile.mkdtemp(prefix=name, dir=library.parent))
    except OSError as exc:
        raise cache_problem(library.parent, exc) from None
    try:
        try:
            built = ffi.compile(tmpdir=str(work), verbose=False)
        except Exception as exc:  # cffi/setuptools raise several error types
            raise CompileError(f"compiling the generated C failed: {exc}") from None
        _install(Path(built), library)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _install(built: Path, library: Path) -> None:
    """Make ``built`` durable, rename it to ``library``, then write the stamp."""
    try:
        with open(built, "rb") as stream:
            os.fsync(stream.fileno())
            size, digest = _digest(stream)
        os.replace(built, library)
    except OSError as exc:
        raise cache_problem(library, exc) from None
    try:
        write_atomic(_stamp(library), f"{size} {digest}\n")
    except (OSError, MlpCodegenError) as exc:
        raise cache_problem(_stamp(library), exc) from None


@dataclass(frozen=True)
class BoundCall:
    """The lowest-overhead way to call the one-sample function from Python: write the
    sample into ``x``, call ``run()``, read ``y``.  ``x`` and ``y`` are NumPy views of
    C buffers whose pointers ``run`` already holds, so a call converts and allocates
    nothing: it costs what an empty cffi call costs plus the C itself.  Not shared
    between threads (make one per thread)."""
    x: np.ndarray
    y: np.ndarray
    run: Callable[[], None]


class CompiledNetwork:
    """A compiled network: call it with one sample (1-D) or a batch (2-D, rows)."""

    def __init__(self, module: ModuleType, name: str, n_inputs: int, n_outputs: int,
                 dtype: "str | NumericType", *, description: str = "", math: str = ""):
        #: for repr(): the network (``1-3-2-1 (tanh, tanh, linear)``), the math option, the library
        self.name, self.description, self.math = name, description, math
        self.library = getattr(module, "__file__", None)
        self._ffi = module.ffi
        self._single = getattr(module.lib, name)
        self._batch = getattr(module.lib, name + "_batch")
        #: ``f(float) -> float`` straight into C, for one-input one-output networks
        #: (cffi converts the Python float: no array, no allocation); else None.
        self.scalar = getattr(module.lib, name + "_scalar", None)
        self.n_inputs, self.n_outputs = n_inputs, n_outputs
        #: the numeric type the C computes in (its C spelling names the cffi buffers)
        self.numeric = numeric_type(dtype)
        self.dtype = self.numeric.np_dtype
        self._ctype = self.numeric.c_type + "[]"
        self._one_shape = (n_inputs,)

    def __repr__(self) -> str:
        shape = self.description or f"{self.n_inputs} -> {self.n_outputs}"
        math = {"fast": "fast math (inline exp/tanh)", "libm": "libm math"}.get(self.math, self.math)
        if self.math == "fast" and not self.numeric.has_fast_math:
            math = "libm math"  # no inline functions for this type: it always calls the C library
        parts = [f"{self.name!r} {shape}", self.dtype.name, math, f"cache {self.library}" if self.library else ""]
        return f"<mlpcodegen C predictor {', '.join(part for part in parts if part)}>"

    def bind(self) -> BoundCall:
        """Preallocated input/output buffers and a zero-argument call (see :class:`BoundCall`)."""
        px, py = self._ffi.new(self._ctype, self.n_inputs), self._ffi.new(self._ctype, self.n_outputs)
        x = np.frombuffer(self._ffi.buffer(px), dtype=self.dtype)
        y = np.frombuffer(self._ffi.buffer(py), dtype=self.dtype)
        return BoundCall(x, y, functools.partial(self._single, px, py))

    def _coerce(self, x: object) -> np.ndarray:
        array = np.asarray(x)
        if array.dtype.kind not in "fiub":
            raise ValueError(f"expected real numbers, got an array of dtype {array.dtype}")
        if not (array.ndim in (1, 2) and array.shape[-1] == self.n_inputs):
            raise ValueError(
                f"expected shape ({self.n_inputs},) for one sample or (n, {self.n_inputs}) "
                f"for a batch, got {array.shape}"
            )
        return np.ascontiguousarray(array, dtype=self.dtype)

    def __call__(self, x: object) -> np.ndarray:
        one_ready = type(x) is np.ndarray and x.dtype == self.dtype and x.shape == self._one_shape \
            and x.flags.c_contiguous  # one sample of the right type: skip the checks and the copy
        array = x if one_ready else self._coerce(x)
        buffer = self._ffi.from_buffer
        if array.ndim == 1:
            out = np.empty(self.n_outputs, dtype=self.dtype)
            self._single(buffer(self._ctype, array), buffer(self._ctype, out, require_writable=True))
            return out
        out = np.empty((array.shape[0], self.n_outputs), dtype=self.dtype)
        if array.shape[0]:
            self._batch(
                buffer(self._ctype, array),
                buffer(self._ctype, out, require_writable=True),
                array.shape[0],
            )
        return out
