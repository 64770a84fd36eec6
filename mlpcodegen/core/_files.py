"""Output files: written atomically, and only ever as regular files; input files
(models, weights, scaling, data) opened through one opener, :func:`open_regular`, that opens
regular files only, without blocking, checked on the descriptor.

A reader never sees a half-written file: the data goes to a temporary file in the
destination's folder, which is then renamed over the destination.  Renaming replaces
whatever is at the path, so the path is checked first:

* a symbolic link is followed (the whole chain) and its *target* is written, in the
  target's folder, as ``>`` in a shell would; the link itself stays.  A dangling link
  writes its target when the target's folder exists; a loop is refused.
* a device, FIFO or socket is refused, never replaced or written through.  Writing
  through is not atomic, a FIFO nobody reads blocks forever, and renaming over a device
  destroys it (as root, ``-o /dev/null`` once replaced the device with a regular file).
  The command line's ``-o -`` (standard output, then redirect) covers those uses.
* a directory, a path under a regular file, and (unless ``mkdir``) a missing folder are
  refused with a message naming the path.
* an existing file keeps its permission bits and, where allowed, its owner and group.

Every failure is an :class:`OutputPathError` (an :class:`OSError` from the system, such as
permission denied or a full disk, is wrapped with the path); no temporary file is left.
"""
from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Mapping, Union

from .errors import MlpCodegenError

PathLike = Union[str, "os.PathLike[str]"]
Data = Union[str, bytes]

_KINDS = ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory"))


class OutputPathError(MlpCodegenError):
    """An output path that cannot be written as a regular file (or the write failed)."""


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _os_message(exc: OSError) -> str:
    return os.strerror(exc.errno) if exc.errno else str(exc)


def resolve_output(path: PathLike, *, mkdir: bool = False, create: bool = True) -> Path:
    """The regular file that writing ``path`` will create or replace (symbolic links
    followed), after checking it can be one; raises :class:`OutputPathError`.
    ``mkdir``: a missing folder is allowed (and made, when ``create``)."""
    given = Path(path)
    if str(path).endswith(("/", os.sep)):
        raise OutputPathError(f"output path {str(path)!r} names a directory; give a file name")
    target = Path(os.path.realpath(given))  # follows every link; a dangling one gives its target
    try:
        info = os.lstat(target)
    except (FileNotFoundError, NotADirectoryError):  # the folder check below says which
        info = None
    except OSError as exc:
        raise OutputPathError(f"cannot use output path {given}: {_os_message(exc)}") from None
    if info is not None and stat.S_ISLNK(info.st_mode):
        raise OutputPathError(f"output path {given} is a symbolic link loop")
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise OutputPathError(
            f"output path {given} is {_kind(info.st_mode)}; mlpcodegen only writes regular files "
            "(to send the output elsewhere, write to standard output with '-' and redirect it)")
    _check_folder(given, target.parent, mkdir, create)
    return target


def _check_folder(given: Path, folder: Path, mkdir: bool, create: bool) -> None:
    if folder.is_dir():
        return
    if folder.exists() or any(p.exists() and not p.is_dir() for p in folder.parents):
        raise OutputPathError(f"cannot write {given}: a part of its folder {folder} is not a directory")
    if not mkdir:
        raise OutputPathError(f"cannot write {given}: folder {folder} does not exist (create it first, "
                              "or pass --mkdir)")
    if not create:
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputPathError(f"cannot create folder {folder}: {_os_message(exc)}") from None


def write_atomic(path: PathLike, data: Data, *, mkdir: bool = True) -> Path:
    """Write ``data`` (text is UTF-8) to ``path`` atomically; return ``Path(path)``.

    ``mkdir``: create missing folders (the library's default; the command line asks).
    """
    write_all({path: data}, mkdir=mkdir)
    return Path(path)


def write_all(files: Mapping[PathLike, Data], *, mkdir: bool = True) -> list[Path]:
    """Write several files all-or-nothing as far as the system allows: every path is
    checked and every temporary file written before the first rename."""
    targets = [(resolve_output(path, mkdir=mkdir), path, data) for path, data in files.items()]
    if len({target for target, _, _ in targets}) != len(targets):
        raise OutputPathError(f"two outputs name the same file: {', '.join(str(p) for _, p, _ in targets)}")
    temps: list[tuple[str, Path]] = []
    try:
        for target, given, data in targets:
            temps.append((_write_temp(target, given, data), target))
        for temp, target in temps:
            os.replace(temp, target)
    except OSError as exc:
        raise OutputPathError(f"cannot write {exc.filename or ', '.join(str(p) for _, p, _ in targets)}: "
                              f"{_os_message(exc)}") from None
    finally:
        for temp, _ in temps:
            _unlink_quietly(temp)
    return [Path(given) for _, given, _ in targets]


def _write_temp(target: Path, given: PathLike, data: Data) -> str:
    """A temporary file beside ``target`` holding ``data``, with ``target``'s permissions."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        handle, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        exc.filename = str(given)
        raise
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
        _copy_mode(target, temp)
    except BaseException as exc:
        _unlink_quietly(temp)
        if isinstance(exc, OSError):
            exc.filename = str(given)
        raise
    return temp


def _copy_mode(target: Path, temp: str) -> None:
    """The existing file's mode and owner; a new file gets 0666 less the umask, as ``open`` gives."""
    try:
        info = os.stat(target)
    except FileNotFoundError:
        os.chmod(temp, 0o666 & ~_umask())
        return
    os.chmod(temp, stat.S_IMODE(info.st_mode))
    try:
        os.chown(temp, info.st_uid, info.st_gid)
    except OSError as exc:  # only root (or the owner, for the group) may: keep what we can
        if exc.errno not in (errno.EPERM, errno.EACCES):
            raise


def _umask() -> int:
    # Read, not set-and-restore: os.umask(0) would briefly loosen files other threads create.
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            return next(int(line.split()[1], 8) for line in status if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError, IndexError):
        return 0o022


def _unlink_quietly(temp: str) -> None:
    try:
        os.unlink(temp)
    except FileNotFoundError:
        pass


def check_outputs(paths: Iterable[PathLike], *, mkdir: bool = False) -> list[Path]:
    """Check ``paths`` before any work is done (nothing is written, folders only with ``mkdir``)."""
    return [resolve_output(path, mkdir=mkdir, create=False) for path in paths]


def open_regular(path: PathLike, what: str = "input file", *, error: type = None,
                 check: Callable[[os.stat_result], None] | None = None) -> BinaryIO:
    """THE safe opener of every input file (models, weights, scaling, data): ``path``
    opened for reading without blocking (``open`` on a FIFO waits for a writer forever)
    and checked on the open descriptor, so what is read is what was checked.  ``check``
    judges the descriptor's ``fstat`` (its errors stand); without it, anything but a
    regular file is refused.  Errors are ``error`` (default ValidationError), naming
    ``what`` and the path."""
    from .errors import ValidationError

    error = error or ValidationError
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
    try:
        descriptor = os.open(path, flags)
    except FileNotFoundError:
        raise error(f"{what} not found: {path}") from None
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {_os_message(exc)}") from None
    try:
        info = os.fstat(descriptor)
        if check is not None:
            check(info)
        elif not stat.S_ISREG(info.st_mode):
            raise error(f"{what} {path} is not a regular file ({_kind(info.st_mode)}): save it to a "
                        "file and pass its path")
    except BaseException:
        os.close(descriptor)
        raise
    return os.fdopen(descriptor, "rb")


def read_regular(path: PathLike, max_bytes: int, what: str = "input file", *, error: type = None,
                 check: Callable[[os.stat_result], None] | None = None,
                 too_large: Callable[[int], Exception] | None = None) -> bytes:
    """The whole of ``path`` through :func:`open_regular`, if it holds at most
    ``max_bytes`` (checked on the descriptor, and again while reading: a file that grows
    is refused); ``too_large(size)`` makes the size error (default: ``error``)."""
    from .errors import ValidationError

    error = error or ValidationError
    too_large = too_large or (lambda size: error(f"{what} {path} has {size:,} bytes, more than the {max_bytes:,} read"))
    with open_regular(path, what, error=error, check=check) as stream:
        size = os.fstat(stream.fileno()).st_size
        if size > max_bytes:
            raise too_large(size)
        data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:  # it grew after the check
        raise too_large(len(data))
    return data


def read_input(path: PathLike, max_bytes: int, what: str = "input file") -> bytes:
    """The whole of the input file ``path`` (a scaling JSON, a data file): :func:`read_regular`
    with :class:`~mlpcodegen.core.errors.ValidationError` naming ``what`` and the path."""
    return read_regular(path, max_bytes, what)
