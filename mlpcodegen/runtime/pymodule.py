"""Import generated Python source from a real file, so tracebacks show the generated
line and Numba's ``cache=True`` can store compiled code beside it."""
from __future__ import annotations

import hashlib
import importlib.util
import io
import pickletools
import sys
from pathlib import Path
from types import ModuleType
from typing import Optional

from ..core._files import write_atomic
from ..core.errors import MlpCodegenError
from .cache import cache_folder, cache_problem


def import_generated(source: str, stem: str) -> ModuleType:
    """Write ``source`` to the cache (named by its hash) unless the file there already
    holds exactly that text, then import it.  A truncated, empty, unreadable or
    foreign file in its place is rewritten; a cache that cannot be written is a clear
    :class:`~mlpcodegen.core.errors.MlpCodegenError`."""
    key = hashlib.sha256(source.encode()).hexdigest()[:20]
    name = f"_mlpcodegen_{stem}_{key}"
    if name in sys.modules:
        return sys.modules[name]
    path = cache_folder("py") / f"{name}.py"
    if _read(path) != source.encode("utf-8"):
        try:
            write_atomic(path, source)
        except (OSError, MlpCodegenError) as exc:
            raise cache_problem(path, exc) from None
    _drop_damaged_numba_cache(path)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _read(path: Path) -> Optional[bytes]:
    """The bytes at ``path``, or None when they cannot be read (missing, a folder, ...)."""
    try:
        return path.read_bytes()
    except OSError:
        return None


def _drop_damaged_numba_cache(path: Path) -> None:
    """Numba (``cache=True``) keeps compiled code in ``__pycache__`` beside the module
    as pickles, and fails on the first call when one is truncated or empty (after a
    crash or a full disk).  Remove such files: Numba then compiles again.  The check
    walks the pickle opcodes without running them."""
    for cached in path.parent.glob(f"__pycache__/{path.stem}.*.nb[ic]"):
        try:
            whole = _whole_pickles(cached.read_bytes())
        except OSError:
            whole = False
        if not whole:
            cached.unlink(missing_ok=True)


def _whole_pickles(data: bytes) -> bool:
    """Whether ``data`` is one or more complete pickles back to back."""
    stream = io.BytesIO(data)
    try:
        while stream.tell() < len(data):
            for _ in pickletools.genops(stream):  # stops after each pickle's STOP
                pass
    except Exception:  # truncated or not a pickle (genops raises ValueError and others)
        return False
    return bool(data)
