"""Checks every frontend makes on a model file's path before reading it: it exists,
is a regular file (a FIFO, device or socket is never opened for reading), and is
within the read limits.  The reader checks the descriptor it opens again."""
from __future__ import annotations

import os
import stat

from ..core.errors import ModelFormatError
from ..core.limits import LimitExceeded, MiB, ReadLimits


def size_text(size: int) -> str:
    return f"{size:,} bytes" if size < MiB else f"{size / MiB:.1f} MiB"


def preflight(label: str, limits: ReadLimits, what: str = "model file") -> None:
    """Clear errors for a missing, special or oversized file before any work."""
    try:
        info = os.stat(label)
    except FileNotFoundError:
        raise ModelFormatError(f"{what} not found: {label}") from None
    except OSError as exc:
        raise ModelFormatError(f"cannot read {label}: {exc.strerror}") from None
    check_regular(info, label, limits)


def check_regular(info: os.stat_result, path: str, limits: ReadLimits) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise ModelFormatError(
            f"{path} is a directory (a TensorFlow SavedModel?); save the model as a "
            ".keras file with model.save('model.keras')"
        )
    if not stat.S_ISREG(info.st_mode):
        raise ModelFormatError(
            f"{path} is not a regular file (a FIFO, socket or device); save the model to a file "
            "and pass its path"
        )
    if info.st_size > limits.max_file_bytes:
        raise file_too_large(path, info.st_size, limits)


def file_too_large(path: str, size: int, limits: ReadLimits) -> LimitExceeded:
    return LimitExceeded(
        f"{path} is {size_text(size)}, more than the limit of {size_text(limits.max_file_bytes)} for a "
        "model file; if the model is genuine, raise the limit (--max-size MIB, or ReadLimits.for_size)"
    )
