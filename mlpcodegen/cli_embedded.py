"""Command line for microcontrollers: ``mlpcodegen size`` and ``verify --core``.
(Being built: see issue 12.)"""
from __future__ import annotations

import argparse


def add_size(sub, common) -> None:
    """Add the ``size`` command to the subparsers ``sub``."""


def verify_on_core(args: argparse.Namespace, net, domain, common) -> int:
    """``mlpcodegen verify --core CORE``: run the C on an emulated core; exit code."""
    raise common.UsageError("--core is not available yet")
