"""The Debian tools the tests need: one table, and ``require`` that installs them.

A test that needs a tool asks for it (``require("arm-none-eabi-gcc", "qemu-system-arm")``;
conftest.py wraps the usual sets in fixtures).  When one is missing:

* as root with apt-get (unless ``MLPCODEGEN_NO_APT=1``), its Debian packages are installed
  once per session: ``apt-get update`` once, then ``apt-get install -y
  --no-install-recommends``, non-interactive, under a lock (threads and processes), so a
  fresh machine passes ``python -m pytest`` as .ci/run does;
* otherwise the test skips with one line naming the packages, the same line for every
  test asking for the same tools, so ``pytest -ra`` prints it once with a count;
* under ``CI=true`` a tool still missing fails the test: CI never skips a test silently.

The same table is .ci/run's: ``python3 tests/toolchains.py --install c arm`` installs
what is missing (it runs before pytest is installed: pytest is imported only to skip).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Sequence


@dataclass(frozen=True)
class Tool:
    """A command the tests run and the Debian packages that bring it (with the
    libraries it needs to build or run what the tests give it)."""

    command: str
    packages: tuple[str, ...]


#: One entry per tool: what the tests run -> what to install.
TOOLS: dict[str, Tool] = {tool.command: tool for tool in (
    Tool("gcc", ("gcc", "libc6-dev")),
    Tool("g++", ("g++",)),
    Tool("arm-none-eabi-gcc", ("gcc-arm-none-eabi", "libnewlib-arm-none-eabi")),  # newlib: libm, libc
    Tool("arm-none-eabi-g++", ("gcc-arm-none-eabi",)),
    Tool("qemu-system-arm", ("qemu-system-arm",)),
    Tool("clang", ("clang",)),
    Tool("ld.lld", ("lld",)),
    Tool("rustc", ("rustc",)),
    Tool("node", ("nodejs",)),
    Tool("go", ("golang-go",)),
    Tool("javac", ("default-jdk-headless",)),
    Tool("avr-gcc", ("gcc-avr", "avr-libc")),
    Tool("simavr", ("simavr",)),
    Tool("riscv64-unknown-elf-gcc", ("gcc-riscv64-unknown-elf", "picolibc-riscv64-unknown-elf")),
    Tool("qemu-system-riscv32", ("qemu-system-misc",)),
    Tool("xtensa-lx106-elf-gcc", ("gcc-xtensa-lx106",)),
    # the Arduino core for the Uno (/usr/share/arduino/hardware/arduino/avr) and its makefile rules
    Tool("ard-reset-arduino", ("arduino-core-avr", "arduino-mk", "make")),
)}

#: The sets the tests ask for together (and .ci/run installs by name).
GROUPS: dict[str, tuple[str, ...]] = {
    "c": ("gcc", "g++"),
    "arm": ("arm-none-eabi-gcc", "arm-none-eabi-g++", "qemu-system-arm"),
    "wasm": ("clang", "ld.lld"),
    "avr": ("avr-gcc", "simavr"),
    "riscv": ("riscv64-unknown-elf-gcc", "qemu-system-riscv32"),
    "xtensa": ("xtensa-lx106-elf-gcc",),
    "arduino": ("avr-gcc", "simavr", "ard-reset-arduino"),
}

NO_APT = "MLPCODEGEN_NO_APT"
LOCK_FILE = Path(tempfile.gettempdir()) / "mlpcodegen-apt.lock"
APT_TIMEOUT = 1800.0  # seconds: a cross toolchain is a few hundred MB

_lock = threading.Lock()
_tried: dict[str, Optional[str]] = {}  # package -> None (installed) or why it was not
_updated: list[bool] = []  # apt-get update ran in this process


def expand(names: Iterable[str]) -> tuple[str, ...]:
    """Group names and tool names -> tool names, in order, once each."""
    tools: list[str] = []
    for name in names:
        for tool in GROUPS.get(name, (name,)):
            if tool not in TOOLS:
                raise KeyError(f"unknown tool {tool!r}: tools {', '.join(TOOLS)}; groups {', '.join(GROUPS)}")
            if tool not in tools:
                tools.append(tool)
    return tuple(tools)


def packages(tools: Iterable[str]) -> tuple[str, ...]:
    """The Debian packages of ``tools`` (tool or group names), in order, once each."""
    return tuple(dict.fromkeys(p for tool in expand(tools) for p in TOOLS[tool].packages))


def missing(tools: Iterable[str]) -> tuple[str, ...]:
    return tuple(tool for tool in expand(tools) if shutil.which(tool) is None)


def on_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def why_no_apt() -> Optional[str]:
    """None when apt-get may install; else the reason, for the skip line."""
    if os.environ.get(NO_APT, "").strip() not in ("", "0"):
        return f"{NO_APT} is set"
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "not root"
    if shutil.which("apt-get") is None:
        return "no apt-get"
    return None


@contextmanager
def _machine_lock() -> Iterator[None]:
    """One installer at a time: this process's threads, then other processes (fcntl)."""
    with _lock:
        try:
            import fcntl
        except ImportError:  # not POSIX: no apt-get either
            yield
            return
        with open(LOCK_FILE, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _apt(arguments: Sequence[str]) -> Optional[str]:
    """Run apt-get; None, or its failure in one line."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "-q", "-o", "DPkg::Lock::Timeout=600", *arguments]
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=APT_TIMEOUT,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return f"apt-get {arguments[0]} took longer than {APT_TIMEOUT:g} s"
    if done.returncode == 0:
        return None
    tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no message"]
    return f"apt-get {arguments[0]} failed (exit {done.returncode}): {tail[0]}"


def install(tools: Iterable[str], say: Callable[[str], None] = lambda line: None) -> Optional[str]:
    """Install the packages of the missing ``tools`` with apt-get, each package tried at
    most once per session; None, or why they are not installed."""
    reason = why_no_apt()
    if reason is not None:
        return reason
    with _machine_lock():
        absent = missing(tools)  # again: another process may have installed them meanwhile
        wanted = packages(absent)
        todo = [p for p in wanted if p not in _tried]
        if todo:
            say(f"mlpcodegen tests: installing {' '.join(todo)} (apt-get, for {', '.join(absent)})")
            if not _updated:
                _updated.append(True)
                _apt(["update"])  # a failure here shows in the install's message
            error = _apt(["install", "-y", "--no-install-recommends", *todo])
            for package in todo:
                _tried[package] = error
        errors = sorted({_tried[p] for p in wanted if _tried.get(p)})
        return "; ".join(errors) or None


def require(*names: str, say: Callable[[str], None] = lambda line: None) -> None:
    """Return when every tool (or group) named is on PATH, installing it when it can;
    else skip the test with one line naming the packages (fail it under CI=true)."""
    if not missing(names):
        return
    reason = install(names, say)
    absent = missing(names)
    if not absent:
        return
    message = (f"needs {', '.join(absent)}: apt-get install {' '.join(packages(absent))}"
               f" (not installed by the tests: {reason or 'the packages did not bring it'})")
    if on_ci():
        import pytest

        pytest.fail(f"CI=true: {message}", pytrace=False)
    skip(message)


#: The reasons of skip(): conftest.py reports each at one place (this file), so that
#: ``pytest -ra`` folds every test skipped for it into one line with a count.
ONE_LINE_SKIPS: set[str] = set()


def skip(reason: str) -> None:
    """pytest.skip (module level too), with a line of its own in the summary."""
    import pytest

    ONE_LINE_SKIPS.add(reason)
    pytest.skip(reason, allow_module_level=True)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="The Debian packages of the tools the tests need.")
    parser.add_argument("names", nargs="+", help=f"tools or groups ({', '.join(GROUPS)})")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--install", action="store_true", help="install the packages of the missing tools")
    action.add_argument("--packages", action="store_true", help="print the packages, one line")
    args = parser.parse_args(argv)
    try:
        tools = expand(args.names)
    except KeyError as error:
        parser.error(error.args[0])
    if args.packages:
        print(" ".join(packages(tools)))
        return 0
    reason = install(tools, say=lambda line: print(line, flush=True))
    absent = missing(tools)
    if absent:
        print(f"toolchains: still missing {', '.join(absent)} (apt-get install {' '.join(packages(absent))}): "
              f"{reason or 'the packages did not bring it'}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
