"""Compile C with cffi (API mode) into an extension, through an on-disk cache that is
crash-safe (a library is loaded only when its stamp says it is whole) and a per-process
memory of what is loaded.  Names libraries by :mod:`.cache_key`; knows nothing of
networks beyond the ``parts`` it keys and the ``produce`` it calls on a miss."""
from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import os
import shutil
import stat
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Callable, Sequence

import numpy as np

from ..core._files import write_atomic
from ..core.errors import CompileError, MlpCodegenError
from .cache import cache_folder, cache_problem
from .cache_key import network_key, source_key
from .native import NATIVE_SUFFIX

#: Flags for the extension built in-process, on and for this machine: -O3 vectorises
#: the batch blocks, -march=native uses the host's SIMD (AVX2/AVX-512 FMA), and
#: -ffp-contract=fast (gcc's default outside strict ISO modes) fuses a*b + c into one
#: FMA, more accurate and ~1.4x faster in the batch (measured 11.2 against 8.0 M
#: samples/s on mid 8-64-64-1).  Never -ffast-math.  The strict-warning check of the
#: generated C is done on the bare file (see tests), because cffi's own wrapper code
#: is not written for -Wconversion.
DEFAULT_FLAGS: tuple[str, ...] = ("-O3", "-march=native", "-ffp-contract=fast")
_LOADED: dict[str, ModuleType] = {}


def build_module(source: str, cdef: str, flags: Sequence[str] = DEFAULT_FLAGS) -> ModuleType:
    """Compile (or fetch from the cache) an extension exposing ``cdef`` from ``source``,
    cached by a hash of the source text (for sources that are not a network: tests,
    benchmarks; networks go through :func:`build_network`, keyed without emitting).

    A cached library is loaded only if its size and SHA-256 match the stamp written after
    it was complete: a truncated or empty file (a full disk, a crash) would make the
    loader fail or the process die of SIGBUS, so it is rebuilt instead."""
    name = f"_mlpcodegen_{source_key(source, cdef, flags)}"
    return _build(name, lambda _: (source, cdef), flags)


def _build(name: str, produce: Callable[[str], tuple[str, str]], flags: Sequence[str]) -> ModuleType:
    """The module ``name`` from the memory or disk cache, else built from
    ``produce(name) -> (source, cdef)``, which is called only on a miss."""
    if name in _LOADED:
        return _LOADED[name]
    library = cache_folder("cffi") / (name + importlib.machinery.EXTENSION_SUFFIXES[0])
    if not _intact(library):
        _compile(name, *produce(name), flags, library)
    try:
        module = _import(name, library)
    except ImportError:  # intact but unloadable (say, another machine's build): rebuild once
        _compile(name, *produce(name), flags, library)
        try:
            module = _import(name, library)
        except ImportError as exc:
            raise CompileError(f"the compiled library {library} cannot be loaded: {exc}") from None
    _LOADED[name] = module
    return module


def build_network(parts: Sequence[object], produce: Callable[[str], tuple[str, str]],
                  flags: "Sequence[str] | None" = None) -> tuple[ModuleType, ModuleType]:
    """(cffi module, native module) for the library keyed by :func:`~.cache_key.network_key`;
    ``produce(name) -> (source, cdef)`` emits it and runs on a miss only.  The source
    must carry :func:`~.native.native_source`'s entry points for ``name``.  ``flags`` None:
    :data:`DEFAULT_FLAGS` as it is at the call."""
    flags = DEFAULT_FLAGS if flags is None else flags
    name = f"_mlpcodegen_{network_key(parts, flags)}"
    module = _build(name, produce, flags)
    native = _LOADED.get(name + NATIVE_SUFFIX)
    if native is None:
        native = _import(name + NATIVE_SUFFIX, Path(module.__file__))
        _LOADED[name + NATIVE_SUFFIX] = native
    return module, native


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
    # Not the limited API: the native entry points (native_source) use NumPy's C API.
    ffi.set_source(name, source, extra_compile_args=list(flags), libraries=["m"], py_limited_api=False,
                   define_macros=[("_CFFI_NO_LIMITED_API", None)], include_dirs=[np.get_include()])
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
