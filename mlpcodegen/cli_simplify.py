"""Command line for ``mlpcodegen simplify``.  (Being built: see issue 14.)"""
from __future__ import annotations


def add_simplify(sub, common) -> None:
    """Add the ``simplify`` command to the subparsers ``sub``."""
