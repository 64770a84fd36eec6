"""Cache keys: what a compiled library is named by, so that a cached library is loaded
only for exactly what built it.  A network's key is the content of its IR and options,
the flags, the package's own code, the toolchain and the CPU, computed without emitting
anything; a bare source's key is its text.  Reads no cache and builds nothing."""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import platform
import shutil
import sys
import weakref
from pathlib import Path
from typing import Sequence

import numpy as np


def source_key(source: str, cdef: str, flags: Sequence[str]) -> str:
    """The key of a library built from the C text ``source`` exposing ``cdef`` with ``flags``."""
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


#: The runtime's own modules and everything the C backend emits through: their text is
#: part of a network's cache key (the "emitter version"), so an edit to any of them, or
#: an upgrade, never loads a library built by other code.  The frontends, the harness
#: and the command line do not change what a given IR compiles to.
_KEY_EXCLUDED = ("frontends", "harness", "app")


def network_key(parts: Sequence[object], flags: Sequence[str]) -> str:
    """The cache key of a library built from ``parts`` (the IR, the dtype, the name and
    every option that changes the output) with ``flags``: a SHA-256 of their content, of
    the package's code, of the toolchain (compiler identity, Python, cffi, NumPy) and of
    the CPU, computed without emitting anything (a few ms for 784-512-512-10)."""
    digest = hashlib.sha256()
    for part in (*parts, tuple(flags), _toolchain(), _package_fingerprint()):
        _feed(digest, part)
    return digest.hexdigest()[:24]


def _feed(digest, value: object) -> None:
    """Add ``value`` to ``digest`` unambiguously: every item is tagged and its length
    given, so no two different values feed the same bytes (an array's dtype and shape
    are part of it; floats by their exact bits; dataclasses field by field, so a field
    added to the IR is part of the key without anyone remembering it)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        memo = _MEMO.get(id(value))
        if memo is not None and memo[0]() is value:  # this very (frozen) object, seen before
            _tagged(digest, b"M", memo[1])
            return
        inner = hashlib.sha256()
        _tagged(inner, b"D", type(value).__qualname__.encode())
        for field in dataclasses.fields(value):
            _tagged(inner, b"F", field.name.encode())
            _feed(inner, getattr(value, field.name))
        if value.__dataclass_params__.frozen:  # the IR's records: their content cannot change
            _remember(value, inner.digest())
        _tagged(digest, b"M", inner.digest())
    elif isinstance(value, np.ndarray):
        data = np.ascontiguousarray(value)
        _tagged(digest, b"A", f"{data.dtype.str}{data.shape}".encode())
        _tagged(digest, b"B", hashlib.sha256(memoryview(data).cast("B")).digest())  # ~1.5 GB/s
    elif isinstance(value, (tuple, list)):
        _tagged(digest, b"T", str(len(value)).encode())
        for item in value:
            _feed(digest, item)
    elif isinstance(value, dict):
        _feed(digest, sorted(value.items()))
    elif isinstance(value, (bool, int, np.integer)) or value is None:
        _tagged(digest, type(value).__name__.encode(), repr(int(value) if value is not None else None).encode())
    elif isinstance(value, (float, np.floating)):
        _tagged(digest, b"f", float(value).hex().encode())
    elif isinstance(value, str):
        _tagged(digest, b"s", value.encode("utf-8", "surrogatepass"))
    elif isinstance(value, bytes):
        _tagged(digest, b"b", value)
    else:
        raise TypeError(f"cannot key the cache on a {type(value).__name__}")


#: id(frozen IR object) -> (weak reference, its digest): a network keyed again in this
#: process is not hashed again (its weights cannot change: the IR's arrays are read-only).
_MEMO: dict[int, tuple] = {}
def _remember(value: object, digest: bytes) -> None:
    try:
        reference = weakref.ref(value, lambda _, key=id(value): _MEMO.pop(key, None))
    except TypeError:  # not weakly referable: not memoised
        return
    _MEMO[id(value)] = (reference, digest)


def _tagged(digest, tag: bytes, data) -> None:
    digest.update(tag + len(data).to_bytes(8, "little"))
    digest.update(data)


@functools.lru_cache(maxsize=None)
def _package_fingerprint() -> tuple:
    """The path, size and modification time of each module that decides what a network
    compiles to (all but :data:`_KEY_EXCLUDED`; ``__init__.py`` holds the version) and of
    each C file shipped beside them (the native entry points' templates), read
    once per process: an edit or an upgrade changes it (reading and hashing their text
    instead costs ~10 ms of a cache hit's 20)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    files = []
    for folder, subfolders, names in os.walk(root):  # os.walk + strings: pathlib costs ms here
        relative = os.path.relpath(folder, root)
        subfolders[:] = sorted(sub for sub in subfolders if relative != "." or sub not in _KEY_EXCLUDED)
        for file in sorted(names):
            if file.endswith((".py", ".c")) and not (relative == "." and file in _KEY_EXCLUDED):
                info = os.stat(os.path.join(folder, file))
                files.append((os.path.join(relative, file), info.st_size, info.st_mtime_ns))
    return tuple(files)


@functools.lru_cache(maxsize=None)
def _toolchain() -> tuple:
    """What builds and loads the library: Python, cffi, NumPy (the native entry points
    use its C API), the machine, the CPU, the compiler cffi runs (``$CC`` or Python's,
    identified by its resolved file's size and time: an upgrade changes them) and the
    flags the environment adds."""
    import sysconfig

    import _cffi_backend  # what the library loads with (importing cffi itself costs ms)

    compiler = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()
    found = shutil.which(compiler[0]) if compiler else None
    try:
        info = os.stat(os.path.realpath(found)) if found else None
        identity = (os.path.realpath(found), info.st_size, info.st_mtime_ns) if info else None
    except OSError:
        identity = None
    environment = tuple(os.environ.get(key) for key in ("CC", "CFLAGS", "CPPFLAGS", "LDFLAGS", "LDSHARED"))
    configured = tuple(sysconfig.get_config_var(key) for key in ("CC", "CFLAGS", "LDSHARED"))
    return (sys.version, _cffi_backend.__version__, np.__version__, platform.machine(), _cpu(), tuple(compiler),
            identity, environment, configured)
