"""Bounds on what reading one untrusted model file may cost.

A model file is untrusted input: its declared sizes are checked against these limits
*before* anything is read or allocated, and the parse itself runs under a time and
memory limit.  Every limit can be raised (``ReadLimits(...)``, ``ReadLimits.for_size``
or the command line's ``--max-size``) for a genuinely large model.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from .errors import ModelFormatError

MiB = 1 << 20


class LimitExceeded(ModelFormatError):
    """The model file declares or needs more than a read limit allows (the message
    names the limit and how to raise it)."""


@dataclass(frozen=True)
class ReadLimits:
    """What reading one model may cost at most.

    >>> ReadLimits().max_file_bytes // MiB
    256
    >>> ReadLimits.for_size(1024).max_weight_values
    268435456
    """

    max_file_bytes: int = 256 * MiB  # the model file itself
    max_member_bytes: int = 64 * MiB  # one decompressed archive member, JSON config or attribute
    max_weight_values: int = 64 * MiB  # numbers declared by all weight arrays together
    seconds: float = 60.0  # wall time of the whole parse
    memory_bytes: int = 4096 * MiB  # address space the parser may use
    #: parse in a child process (time and memory limits enforced by the OS); False
    #: parses in this process, with every declared-size check but no time limit
    isolate: bool = True

    def __post_init__(self) -> None:
        for key in ("max_file_bytes", "max_member_bytes", "max_weight_values", "memory_bytes"):
            if int(getattr(self, key)) < 1:
                raise ValueError(f"{key} must be positive")
        if not self.seconds > 0:
            raise ValueError("seconds must be positive")

    @classmethod
    def for_size(cls, mebibytes: float) -> "ReadLimits":
        """Limits for models of up to ``mebibytes`` MiB: every size bound scaled from
        the default's 256 MiB, the time bound too (at least the default's)."""
        factor = mebibytes / (cls.max_file_bytes / MiB)
        base = cls()
        return replace(
            base,
            max_file_bytes=max(1, int(base.max_file_bytes * factor)),
            max_member_bytes=max(1, int(base.max_member_bytes * factor)),
            max_weight_values=max(1, int(base.max_weight_values * factor)),
            seconds=max(base.seconds, base.seconds * factor),
            memory_bytes=max(base.memory_bytes, int(base.memory_bytes * factor)),
        )


DEFAULT_LIMITS = ReadLimits()
