"""Where the runtime keeps what it builds: the cache folder on disk (one sub-folder per
kind: cffi libraries, Python modules, other languages' builds), the one error for a cache
that cannot be used, and the bound on what a process keeps in memory.  The bottom of the
runtime: imports nothing of it."""
from __future__ import annotations

import os
from pathlib import Path

from ..core.errors import MlpCodegenError


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


#: How many rebuilt predictors a process remembers (and loaded ones, in
#: runtime.distributed): each holds a network's weights, and a long-lived process (a Dask
#: worker) compiles many.  Set again on every build, so a forgotten entry costs at most a
#: rebuild's hashing, never a wrong answer.
REMEMBERED = 32


def keep_recent(table: dict, key: str, value: object) -> None:
    """``table[key] = value``, the oldest entries dropped beyond :data:`REMEMBERED`."""
    table.pop(key, None)
    table[key] = value
    while len(table) > REMEMBERED:
        del table[next(iter(table))]
