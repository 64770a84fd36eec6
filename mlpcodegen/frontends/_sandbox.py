"""Run the parse of an untrusted file in a child process, under a time and memory limit.

libhdf5 is C code reading attacker-controlled bytes: a byte-flipped file was seen to
spin forever (ignoring Ctrl-C), others to allocate gigabytes.  The parse therefore runs
in a child whose address space is capped (``RLIMIT_AS``) and which the parent kills
after ``limits.seconds``.  The child returns bytes only (a status byte, a length and
the job's payload); nothing it sends is unpickled.

How the child is made (measured in bench/FRONTEND.md and the issue 9 report):

* ``os.fork()`` when no other Python thread runs and no threaded framework is loaded
  (the command line's ``convert``): h5py and NumPy are imported once in the parent, so
  each child costs about a millisecond.
* a fork server otherwise.  Forking a multi-threaded process (TensorFlow starts
  dozens of threads: ``verify``, ``demo``, ``bench``, a notebook, the test suite) copies
  only the calling thread, and any lock another thread held at that moment stays held
  forever in the child (h5py's global lock, TensorFlow's own).  The fork server is a
  fresh interpreter (``python -m mlpcodegen.frontends._sandbox``) started once per
  process with h5py and NumPy imported, that forks one clean child per file.  It is
  ours, not ``multiprocessing``'s: that one re-runs the caller's ``__main__`` script in
  the child and pickles its arguments.
* in-process when ``limits.isolate`` is False, or when neither is available: every
  declared-size check still applies, the time and memory limits do not.
"""
from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Callable

from ..core.errors import MlpCodegenError, ModelFormatError, UnsupportedError
from ..core.limits import LimitExceeded, MiB, ReadLimits

Job = Callable[..., bytes]
_HOW = {"format": ModelFormatError, "unsupported": UnsupportedError, "limit": LimitExceeded}
_PRELOAD = ["mlpcodegen.frontends._untrusted_h5", "h5py", "numpy"]
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(job: Job, args: tuple, limits: ReadLimits, label: str) -> bytes:
    """``job(*args)``'s bytes, computed in a child; its errors re-raised here.  ``job``
    is a module-level function and ``args`` JSON values or ReadLimits (the fork server
    gets them by name and as JSON)."""
    if not limits.isolate:
        return _unpack(_outcome(job, args), label, limits)
    mode = _mode()
    if mode == "fork":
        return _run_forked(job, args, limits, label)
    if mode is None:
        return _unpack(_outcome(job, args), label, limits)
    return _run_served(job, args, limits, label)


def _mode() -> str | None:
    if not hasattr(os, "fork"):
        return None
    if _fork_is_safe():
        for module in _PRELOAD:  # imported once here, not in every child
            __import__(module)
        return "fork"
    return "server"


#: Libraries that run thread pools of their own, whose locks a forked child could
#: inherit held.  NumPy's OpenBLAS starts a worker thread too, but registers fork
#: handlers (and the child never calls BLAS), so it does not count.
_THREADED = ("tensorflow", "torch", "jax", "keras")


def _fork_is_safe() -> bool:
    return threading.active_count() == 1 and not any(name in sys.modules for name in _THREADED)


# -------------------------------------------------------------------- child side


def _outcome(job: Job, args: tuple) -> bytes:
    """The message a child sends: b"0" + payload, or b"1" + {"kind", "message"} as JSON."""
    try:
        payload = job(*args)
        return b"0" + len(payload).to_bytes(8, "little") + payload
    except MemoryError:
        record = {"kind": "memory", "message": ""}
    except RecursionError:
        record = {"kind": "format", "message": "the file nests objects too deeply to be a model file"}
    except MlpCodegenError as exc:
        kind = next((k for k, cls in reversed(_HOW.items()) if isinstance(exc, cls)), "format")
        record = {"kind": kind, "message": str(exc)}
    except Exception as exc:  # anything libhdf5/h5py/zipfile raise on a corrupt file
        record = {"kind": "corrupt", "message": f"{type(exc).__name__}: {exc}"}
    return _error(record["kind"], record["message"])


def _error(kind: str, message: str) -> bytes:
    text = json.dumps({"kind": kind, "message": message}, ensure_ascii=True).encode("ascii")
    return b"1" + len(text).to_bytes(8, "little") + text


def _child(fd: int, job: Job, args: tuple, limits: ReadLimits) -> None:
    """Body of the child: silence, limit, work, report.  Never returns normally to the
    caller's code (the callers ``os._exit``)."""
    try:
        import faulthandler
        import gc

        gc.disable()  # a collection would touch (and so copy) every page shared with the parent
        faulthandler.disable()  # a crash must not print a Python traceback
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C: the parent reports
        _limit_resources(limits)
        message = _outcome(job, args)
    except BaseException:  # noqa: BLE001 - nothing may escape a child
        os._exit(3)
    view = memoryview(message)
    while view:
        view = view[os.write(fd, view[: 1 << 20]):]


def _limit_resources(limits: ReadLimits) -> None:
    import resource

    pages = 0
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    wanted = pages * os.sysconf("SC_PAGE_SIZE") + limits.memory_bytes
    for key, value in ((resource.RLIMIT_AS, wanted), (resource.RLIMIT_CPU, int(limits.seconds) + 5)):
        soft, hard = resource.getrlimit(key)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        if soft == resource.RLIM_INFINITY or value < soft:
            resource.setrlimit(key, (value, hard))


# ------------------------------------------------------------------- parent side


def _fork_child(job: Job, args: tuple, limits: ReadLimits) -> tuple[int, int]:
    """(pid, read end of its pipe) of a child that runs ``job`` and reports on the pipe."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            os.close(read_fd)
            _child(write_fd, job, args, limits)
        finally:
            os._exit(0)
    os.close(write_fd)
    return pid, read_fd


def _run_forked(job: Job, args: tuple, limits: ReadLimits, label: str) -> bytes:
    pid, read_fd = _fork_child(job, args, limits)
    deadline = time.monotonic() + limits.seconds
    status = None
    try:
        message = _collect(read_fd, deadline, limits)
        status = _reap(pid, deadline)
    finally:
        os.close(read_fd)
        if status is None:  # timeout, limit or KeyboardInterrupt: the child must not linger
            _kill(pid)
    return _finish(message, status, label, limits)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def _reap(pid: int, deadline: float) -> int | None:
    """The child's exit code (negative: killed by that signal); None at the deadline."""
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            return None
        time.sleep(0.001)


class _Server:
    """The fork server, seen from the caller: one request at a time (a lock), a new
    server after a timeout or a crash (the old one is killed with its child)."""

    lock = threading.Lock()
    process: Any = None

    @classmethod
    def call(cls, request: bytes, deadline: float, limits: ReadLimits) -> tuple[bytes | None, int | None]:
        with cls.lock:
            if cls.process is None or cls.process.poll() is not None:
                cls.process = subprocess.Popen(
                    [sys.executable, "-m", "mlpcodegen.frontends._sandbox"], stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0, start_new_session=True,
                    env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [_ROOT, os.environ.get("PYTHONPATH")]))},
                )
            done = False
            try:
                cls.process.stdin.write(request)
                frame = _collect(cls.process.stdout.fileno(), deadline, limits, _response_complete)
                done = frame is not None and _response_complete(frame)
            except (BrokenPipeError, OSError):
                frame = None
            finally:
                if not done:  # timeout, crash of the server, Ctrl-C: start afresh next time
                    with contextlib.suppress(OSError):
                        os.killpg(cls.process.pid, signal.SIGKILL)
                    cls.process.wait()
                    cls.process = None
            if frame is None:
                return None, None
            size = int.from_bytes(frame[1:9], "little")
            return frame[9: 9 + size], int.from_bytes(frame[9 + size:], "little", signed=True)


def _response_complete(frame: bytes) -> bool:
    return len(frame) >= 13 and len(frame) == 13 + int.from_bytes(frame[1:9], "little")


def _run_served(job: Job, args: tuple, limits: ReadLimits, label: str) -> bytes:
    # The server keeps the folder it started in: relative paths are the caller's, so send its folder.
    request = {"job": [job.__module__, job.__qualname__], "args": [_encode_arg(a) for a in args],
               "cwd": os.getcwd()}
    deadline = time.monotonic() + limits.seconds
    message, status = _Server.call(json.dumps(request).encode() + b"\n", deadline, limits)
    if message is None and status is None and time.monotonic() < deadline:
        status = -signal.SIGKILL  # the server died: report it as a crash, not a timeout
        message = b""
    return _finish(message, status, label, limits)


def _encode_arg(value: Any) -> Any:
    return {"limits": dataclasses.asdict(value)} if isinstance(value, ReadLimits) else value


def _decode_arg(value: Any) -> Any:
    return ReadLimits(**value["limits"]) if isinstance(value, dict) and "limits" in value else value


def serve() -> None:
    """The fork server's loop: one JSON request a line on stdin; for each, a child
    runs the job and the answer goes to stdout as b"R" + length + message + exit code."""
    for module in _PRELOAD:
        __import__(module)
    out = sys.stdout.buffer
    for line in sys.stdin.buffer:
        request = json.loads(line)
        module, name = request["job"]
        job = getattr(importlib.import_module(module), name)
        args = tuple(_decode_arg(a) for a in request["args"])
        with contextlib.suppress(OSError):  # a removed folder: the path is then not found
            os.chdir(request["cwd"])
        limits = next((a for a in args if isinstance(a, ReadLimits)), ReadLimits())
        pid, read_fd = _fork_child(job, args, limits)
        try:
            message = _collect(read_fd, float("inf"), limits) or b""
        except LimitExceeded as exc:
            os.kill(pid, signal.SIGKILL)
            message = _error("limit", str(exc))
        os.close(read_fd)
        status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        out.write(b"R" + len(message).to_bytes(8, "little") + message + status.to_bytes(4, "little", signed=True))
        out.flush()


def _collect(fd: int, deadline: float, limits: ReadLimits,
             complete: Callable[[bytes], bool] | None = None) -> bytes | None:
    """Everything the child writes until it closes the pipe (or until ``complete``
    says so); None at the deadline.  Capped: what the child may send is bounded by what
    it may read."""
    cap = 8 * limits.max_weight_values + 2 * limits.max_member_bytes + 64 * MiB
    chunks, total = [], 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        ready, _, _ = select.select([fd], [], [], min(remaining, 3600.0))
        if not ready:
            return None
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        if complete is not None and complete(b"".join(chunks)):
            return b"".join(chunks)
        total += len(chunk)
        if total > cap:
            raise LimitExceeded(f"the file reader sent more than {cap / MiB:g} MiB (a corrupt or hostile file?)")


def _finish(message: bytes | None, status: int | None, label: str, limits: ReadLimits) -> bytes:
    if message is None or status is None:
        raise LimitExceeded(
            f"{label}: reading the file took longer than {limits.seconds:g} s and was stopped (a corrupt or "
            "hostile file?); if the model is genuine, raise the limit (--max-size MIB, or "
            "ReadLimits(seconds=...))"
        )
    if status != 0 and not _complete(message):
        cause = f"was killed by signal {-status}" if status < 0 else f"exited with status {status}"
        raise ModelFormatError(
            f"{label}: the file reader {cause} on this file: it is corrupt, or it needed more than the "
            f"{limits.memory_bytes / MiB:g} MiB memory limit (raise it with --max-size MIB, or "
            "ReadLimits(memory_bytes=...), only for a file you trust)"
        )
    return _unpack(message, label, limits)


def _complete(message: bytes) -> bool:
    return len(message) >= 9 and int.from_bytes(message[1:9], "little") == len(message) - 9


def _unpack(message: bytes, label: str, limits: ReadLimits) -> bytes:
    if not _complete(message) or message[:1] not in (b"0", b"1"):
        raise ModelFormatError(f"{label}: the file reader returned an incomplete answer (corrupt file?)")
    body = message[9:]
    if message[:1] == b"0":
        return body
    try:
        record = json.loads(body.decode("ascii"))
        kind, text = str(record["kind"]), str(record["message"])
    except (ValueError, KeyError, TypeError):
        raise ModelFormatError(f"{label}: the file reader failed (corrupt file?)") from None
    if kind == "memory":
        raise LimitExceeded(
            f"{label}: reading the file needed more than the {limits.memory_bytes / MiB:g} MiB memory limit "
            "(a corrupt or hostile file?); if the model is genuine, raise it (--max-size MIB, or "
            "ReadLimits(memory_bytes=...))"
        )
    if kind == "corrupt":
        raise ModelFormatError(f"{label} is a truncated or corrupt model file ({text})")
    raise _HOW.get(kind, ModelFormatError)(text)


if __name__ == "__main__":
    serve()
