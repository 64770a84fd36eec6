"""Compile generated C with cffi (API mode), cache the extension by a hash of its
source and flags, and wrap it in a NumPy-friendly callable."""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.machinery
import importlib.util
import os
import platform
import shutil
import stat
import sys
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Callable, Sequence

import numpy as np

from ..core._files import write_atomic
from ..core.errors import CompileError, MlpCodegenError
from ..core.numeric import NumericType, numeric_type

#: Flags for the extension built in-process, on and for this machine: -O3 vectorises
#: the batch blocks, -march=native uses the host's SIMD (AVX2/AVX-512 FMA), and
#: -ffp-contract=fast (gcc's default outside strict ISO modes) fuses a*b + c into one
#: FMA, more accurate and ~1.4x faster in the batch (measured 11.2 against 8.0 M
#: samples/s on mid 8-64-64-1).  Never -ffast-math.  The strict-warning check of the
#: generated C is done on the bare file (see tests), because cffi's own wrapper code
#: is not written for -Wconversion.
DEFAULT_FLAGS: tuple[str, ...] = ("-O3", "-march=native", "-ffp-contract=fast")
_LOADED: dict[str, ModuleType] = {}


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


def _key(source: str, cdef: str, flags: Sequence[str]) -> str:
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


def build_module(source: str, cdef: str, flags: Sequence[str] = DEFAULT_FLAGS) -> ModuleType:
    """Compile (or fetch from the cache) an extension exposing ``cdef`` from ``source``,
    cached by a hash of the source text (for sources that are not a network: tests,
    benchmarks; networks go through :func:`build_network`, keyed without emitting).

    A cached library is loaded only if its size and SHA-256 match the stamp written after
    it was complete: a truncated or empty file (a full disk, a crash) would make the
    loader fail or the process die of SIGBUS, so it is rebuilt instead."""
    name = f"_mlpcodegen_{_key(source, cdef, flags)}"
    return _build(name, lambda _: (source, cdef), flags)


def _build(name: str, produce: Callable[[str], tuple[str, str]], flags: Sequence[str]) -> ModuleType:
    """The module ``name`` from the memory or disk cache, else built from
    ``produce(name) -> (source, cdef)``, which is called only on a miss."""
    if name in _LOADED:
        return _LOADED[name]
    library = cache_folder("cffi") / (name + importlib.machinery.EXTENSION_SUFFIXES[0])
    if not _intact(library):
        _compile(name, *produce(name), flags, library)
    try:
        module = _import(name, library)
    except ImportError:  # intact but unloadable (say, another machine's build): rebuild once
        _compile(name, *produce(name), flags, library)
        try:
            module = _import(name, library)
        except ImportError as exc:
            raise CompileError(f"the compiled library {library} cannot be loaded: {exc}") from None
    _LOADED[name] = module
    return module


#: The runtime's own modules and everything the C backend emits through: their text is
#: part of a network's cache key (the "emitter version"), so an edit to any of them, or
#: an upgrade, never loads a library built by other code.  The frontends, the harness
#: and the command line do not change what a given IR compiles to.
_KEY_EXCLUDED = ("frontends", "harness", "app")


def network_key(parts: Sequence[object], flags: "Sequence[str] | None" = None) -> str:
    """The cache key of a library built from ``parts`` (the IR, the dtype, the name and
    every option that changes the output) with ``flags``: a SHA-256 of their content, of
    the package's code, of the toolchain (compiler identity, Python, cffi, NumPy) and of
    the CPU, computed without emitting anything (a few ms for 784-512-512-10).  ``flags``
    None: :data:`DEFAULT_FLAGS` as it is at the call (a benchmark may set it, say, to an
    AVX2-only build on an AVX-512 machine)."""
    flags = DEFAULT_FLAGS if flags is None else flags
    digest = hashlib.sha256()
    for part in (*parts, tuple(flags), _toolchain(), _package_fingerprint()):
        _feed(digest, part)
    return digest.hexdigest()[:24]


def build_network(parts: Sequence[object], produce: Callable[[str], tuple[str, str]],
                  flags: "Sequence[str] | None" = None) -> tuple[ModuleType, ModuleType]:
    """(cffi module, native module) for the library keyed by :func:`network_key`;
    ``produce(name) -> (source, cdef)`` emits it and runs on a miss only.  The source
    must carry :func:`native_source`'s entry points for ``name``.  ``flags`` None:
    :data:`DEFAULT_FLAGS` as it is at the call."""
    flags = DEFAULT_FLAGS if flags is None else flags
    name = f"_mlpcodegen_{network_key(parts, flags)}"
    module = _build(name, produce, flags)
    native = _LOADED.get(name + NATIVE_SUFFIX)
    if native is None:
        native = _import(name + NATIVE_SUFFIX, Path(module.__file__))
        _LOADED[name + NATIVE_SUFFIX] = native
    return module, native


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
    compiles to (all but :data:`_KEY_EXCLUDED`; ``__init__.py`` holds the version), read
    once per process: an edit or an upgrade changes it (reading and hashing their text
    instead costs ~10 ms of a cache hit's 20)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    files = []
    for folder, subfolders, names in os.walk(root):  # os.walk + strings: pathlib costs ms here
        relative = os.path.relpath(folder, root)
        subfolders[:] = sorted(sub for sub in subfolders if relative != "." or sub not in _KEY_EXCLUDED)
        for file in sorted(names):
            if file.endswith(".py") and not (relative == "." and file in _KEY_EXCLUDED):
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


#: The native module is the second module of each network's library: its init function
#: is ``PyInit_<cffi module name>_native`` (CPython loads several modules from one shared
#: object when each has its own init function and its own name).
NATIVE_SUFFIX = "_native"
#: Batches are split between threads at multiples of this many rows: a multiple of every
#: block width the C uses (32 float32 / 16 float64 lanes, halved for wide layers), so each
#: row goes through the same block or tail code as with one thread (equal bits).
SPLIT_ROWS = 64
#: threads=None: one thread per this much work (multiply-adds plus activations) of rows,
#: up to the CPUs this process may run on.  Measured (bench/NATIVE.md): below ~1 ms of work
#: a second thread gains little against starting it and sharing the cores.
WORK_PER_THREAD = 4_000_000
#: A one-sample call of a network with more weights than this releases the GIL (a few
#: microseconds of C); smaller ones keep it (releasing costs more than they run).
RELEASE_ONE_WEIGHTS = 16_384

_NATIVE_C = r"""
/* ---- mlpcodegen runtime: native Python entry points (predict, scalar) ----
   Argument checks and calls only: -O1 halves what they add to gcc's time (the network's
   functions above keep the command line's -O3 and are not inlined here). */
#pragma GCC push_options
#pragma GCC optimize ("O1")
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>
#include <structmember.h>
#include <pthread.h>
#include <string.h>
#include <sched.h>
#include <unistd.h>

typedef @T@ mlpn__t;
#define MLPN__IN ((npy_intp)@IN@)
#define MLPN__OUT ((npy_intp)@OUT@)
#define MLPN__TYPE @NPY@
#define MLPN__SPLIT ((size_t)@SPLIT@)
#define MLPN__MAX_THREADS 256
#define MLPN__READY (NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED)
static const npy_intp mlpn__min_rows = @MIN_ROWS@;
static int mlpn__cpus = 1;

@BATCH@

typedef struct { const mlpn__t *x; mlpn__t *y; size_t n; } mlpn__job;

static void *mlpn__work(void *arg)
{
    mlpn__job *job = (mlpn__job *)arg;
    if (job->n) @NAME@_batch(job->x, job->y, job->n);
    return NULL;
}

/* n rows over up to `threads` threads (this one included), in chunks of whole
   MLPN__SPLIT-row groups; a thread that cannot be started runs its chunk here. */
static void mlpn__run(const mlpn__t *x, mlpn__t *y, size_t n, size_t threads)
{
    pthread_t ids[MLPN__MAX_THREADS];
    mlpn__job jobs[MLPN__MAX_THREADS];
    int started[MLPN__MAX_THREADS];
    pthread_attr_t attr;
    int have_attr = pthread_attr_init(&attr) == 0;
    size_t groups = (n + MLPN__SPLIT - 1) / MLPN__SPLIT, per, k, count = 0;
    if (threads > groups) threads = groups;
    if (threads <= 1) { if (have_attr) pthread_attr_destroy(&attr); @NAME@_batch(x, y, n); return; }
    /* at least the stack the C states it needs (plus room), never less than the usual 8 MiB */
    if (have_attr) pthread_attr_setstacksize(&attr, (size_t)@STACK@ + ((size_t)1 << 20) > ((size_t)8 << 20) ?
                                             (size_t)@STACK@ + ((size_t)1 << 20) : ((size_t)8 << 20));
    per = (groups + threads - 1) / threads * MLPN__SPLIT;
    for (k = 0; k * per < n; ++k) {
        size_t start = k * per, rows = n - start < per ? n - start : per;
        jobs[k].x = x + start * (size_t)MLPN__IN; jobs[k].y = y + start * (size_t)MLPN__OUT; jobs[k].n = rows;
        started[k] = k > 0 && pthread_create(&ids[k], have_attr ? &attr : NULL, mlpn__work, &jobs[k]) == 0;
        count = k + 1;
    }
    for (k = 0; k < count; ++k) if (!started[k]) mlpn__work(&jobs[k]);
    for (k = 1; k < count; ++k) if (started[k]) pthread_join(ids[k], NULL);
    if (have_attr) pthread_attr_destroy(&attr);
}

static PyObject *mlpn__shape(PyArrayObject *a)
{
    int d, nd = PyArray_NDIM(a);
    PyObject *shape = PyTuple_New(nd);
    if (shape == NULL) return NULL;
    for (d = 0; d < nd; ++d) {
        PyObject *item = PyLong_FromSsize_t((Py_ssize_t)PyArray_DIM(a, d));
        if (item == NULL) { Py_DECREF(shape); return NULL; }
        PyTuple_SET_ITEM(shape, d, item);
    }
    return shape;
}

/* x as a C-contiguous, aligned array of the network's type, with the checks and
   messages of the Python path (CompiledNetwork._coerce). */
static PyArrayObject *mlpn__input(PyObject *x)
{
    PyArrayObject *a = (PyArrayObject *)PyArray_FromAny(x, NULL, 0, 0, 0, NULL);
    PyObject *converted;
    int nd;
    char kind;
    if (a == NULL) return NULL;
    kind = PyArray_DESCR(a)->kind;
    if (kind != 'f' && kind != 'i' && kind != 'u' && kind != 'b') {
        PyErr_Format(PyExc_ValueError, "expected real numbers, got an array of dtype %S", (PyObject *)PyArray_DESCR(a));
        Py_DECREF(a);
        return NULL;
    }
    nd = PyArray_NDIM(a);
    if (!((nd == 1 || nd == 2) && PyArray_DIM(a, nd - 1) == MLPN__IN)) {
        PyObject *shape = mlpn__shape(a);
        if (shape != NULL) {
            PyErr_Format(PyExc_ValueError, "expected shape (%zd,) for one sample or (n, %zd) for a batch, got %R",
                         (Py_ssize_t)MLPN__IN, (Py_ssize_t)MLPN__IN, shape);
            Py_DECREF(shape);
        }
        Py_DECREF(a);
        return NULL;
    }
    converted = PyArray_FromArray(a, PyArray_DescrFromType(MLPN__TYPE), MLPN__READY | NPY_ARRAY_FORCECAST);
    Py_DECREF(a);
    return (PyArrayObject *)converted;
}

/* out= checked: an ndarray of the network's type and the result's shape, writeable,
   C-contiguous and aligned (it is written in place, never copied). */
static int mlpn__check_out(PyObject *out, int nd, npy_intp *dims)
{
    PyArrayObject *o = (PyArrayObject *)out;
    if (!PyArray_Check(out)) {
        PyErr_Format(PyExc_TypeError, "out must be a NumPy array of dtype @DTYPE@, got %s", Py_TYPE(out)->tp_name);
        return -1;
    }
    if (PyArray_TYPE(o) != MLPN__TYPE || !PyArray_ISNOTSWAPPED(o) || PyArray_NDIM(o) != nd ||
        PyArray_DIM(o, 0) != dims[0] || (nd == 2 && PyArray_DIM(o, 1) != dims[1])) {
        PyObject *shape = mlpn__shape(o);
        if (shape != NULL) {
            if (nd == 1)
                PyErr_Format(PyExc_ValueError, "out must have shape (%zd,) and dtype @DTYPE@, got shape %R and dtype %S",
                             (Py_ssize_t)dims[0], shape, (PyObject *)PyArray_DESCR(o));
            else
                PyErr_Format(PyExc_ValueError, "out must have shape (%zd, %zd) and dtype @DTYPE@, got shape %R and dtype %S",
                             (Py_ssize_t)dims[0], (Py_ssize_t)dims[1], shape, (PyObject *)PyArray_DESCR(o));
            Py_DECREF(shape);
        }
        return -1;
    }
    if ((PyArray_FLAGS(o) & (MLPN__READY | NPY_ARRAY_WRITEABLE)) != (MLPN__READY | NPY_ARRAY_WRITEABLE)) {
        PyErr_SetString(PyExc_ValueError, "out must be writeable, C-contiguous and aligned (it is written in place)");
        return -1;
    }
    return 0;
}

/* threads=: None (0: chosen by the batch's size), else a positive int. */
static int mlpn__threads(PyObject *value, size_t *threads)
{
    long count;
    if (value == NULL || value == Py_None) { *threads = 0; return 0; }
    if (PyBool_Check(value) || !PyLong_Check(value)) {
        PyErr_Format(PyExc_TypeError, "threads must be a positive integer or None, got %s", Py_TYPE(value)->tp_name);
        return -1;
    }
    count = PyLong_AsLong(value);
    if (count == -1 && PyErr_Occurred()) return -1;
    if (count < 1) {
        PyErr_Format(PyExc_ValueError, "threads must be a positive integer or None, got %ld", count);
        return -1;
    }
    *threads = count > MLPN__MAX_THREADS ? MLPN__MAX_THREADS : (size_t)count;
    return 0;
}

static size_t mlpn__auto_threads(npy_intp n)
{
    npy_intp threads = n / mlpn__min_rows;
    if (threads > mlpn__cpus) threads = mlpn__cpus;
    return threads < 1 ? 1 : (size_t)threads;
}

/* Whether the byte ranges of a and b overlap other than as the very same buffer of the
   same shape (which every C function supports: it works in place). */
static int mlpn__overlap(PyArrayObject *a, PyArrayObject *b)
{
    char *pa = (char *)PyArray_DATA(a), *pb = (char *)PyArray_DATA(b);
    char *ea = pa + PyArray_NBYTES(a), *eb = pb + PyArray_NBYTES(b);
    if (pa == pb && MLPN__IN == MLPN__OUT) return 0;
    return pa < eb && pb < ea;
}

static PyObject *mlpn__general(PyObject *x, PyObject *out, PyObject *threads_arg)
{
    PyArrayObject *a, *y;
    npy_intp dims[2];
    size_t threads;
    int nd;
    if (mlpn__threads(threads_arg, &threads) < 0) return NULL;
    a = mlpn__input(x);
    if (a == NULL) return NULL;
    nd = PyArray_NDIM(a);
    dims[0] = nd == 1 ? MLPN__OUT : PyArray_DIM(a, 0);
    dims[1] = MLPN__OUT;
    if (out == NULL || out == Py_None) {
        y = (PyArrayObject *)PyArray_SimpleNew(nd, dims, MLPN__TYPE);
    } else if (mlpn__check_out(out, nd, dims) < 0) {
        y = NULL;
    } else {
        Py_INCREF(out);
        y = (PyArrayObject *)out;
        if (mlpn__overlap(a, y)) {  /* out shares memory with the input: read from a copy */
            PyArrayObject *copy = (PyArrayObject *)PyArray_NewCopy(a, NPY_CORDER);
            Py_DECREF(a);
            a = copy;
            if (a == NULL) { Py_DECREF(y); return NULL; }
        }
    }
    if (y == NULL) { Py_DECREF(a); return NULL; }
    if (nd == 1) {
        @RELEASE_ONE_BEGIN@
        @NAME@((const mlpn__t *)PyArray_DATA(a), (mlpn__t *)PyArray_DATA(y));
        @RELEASE_ONE_END@
    } else if (dims[0] > 0) {
        size_t n = (size_t)dims[0];
        if (threads == 0) threads = mlpn__auto_threads(dims[0]);
        Py_BEGIN_ALLOW_THREADS
        mlpn__run((const mlpn__t *)PyArray_DATA(a), (mlpn__t *)PyArray_DATA(y), n, threads);
        Py_END_ALLOW_THREADS
    }
    Py_DECREF(a);
    return (PyObject *)y;
}

static const char *mlpn__keywords[] = {"out", "threads"};

static PyObject *mlpn__predict(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *values[2] = {NULL, NULL};
    Py_ssize_t k, nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    (void)self;
    if (nargs == 1 && nkw == 0) {
        PyObject *x = args[0];
        if (PyArray_CheckExact(x)) {  /* one sample ready as it is: no conversion, no checks beyond these */
            PyArrayObject *a = (PyArrayObject *)x;
            if (PyArray_NDIM(a) == 1 && PyArray_DIM(a, 0) == MLPN__IN && PyArray_TYPE(a) == MLPN__TYPE &&
                (PyArray_FLAGS(a) & MLPN__READY) == MLPN__READY && PyArray_ISNOTSWAPPED(a)) {
                npy_intp dim = MLPN__OUT;
                PyObject *y = PyArray_SimpleNew(1, &dim, MLPN__TYPE);
                if (y == NULL) return NULL;
                @RELEASE_ONE_BEGIN@
                @NAME@((const mlpn__t *)PyArray_DATA(a), (mlpn__t *)PyArray_DATA((PyArrayObject *)y));
                @RELEASE_ONE_END@
                return y;
            }
        }
        return mlpn__general(x, NULL, NULL);
    }
    if (nargs != 1) {
        PyErr_Format(PyExc_TypeError, "predict() takes 1 positional argument (x) but %zd were given", nargs);
        return NULL;
    }
    for (k = 0; k < nkw; ++k) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, k);
        int slot = PyUnicode_CompareWithASCIIString(key, mlpn__keywords[0]) == 0 ? 0
                 : PyUnicode_CompareWithASCIIString(key, mlpn__keywords[1]) == 0 ? 1 : -1;
        if (slot < 0) {
            PyErr_Format(PyExc_TypeError, "predict() got an unexpected keyword argument %R (it takes out= and threads=)", key);
            return NULL;
        }
        values[slot] = args[nargs + k];
    }
    return mlpn__general(args[0], values[0], values[1]);
}

@SCALAR@

/* The predictor's type: a subclass of the Python class it is given (CompiledNetwork),
   made once per library, whose instances CPython calls through vectorcall straight into
   predict(): no __call__ lookup, no argument tuple (a Python class's instance call costs
   ~50-90 ns of that dispatch; Python 3.11 does not inherit vectorcall into a subclass made
   in Python, so the type is made here).  Its instances keep the base's __dict__, so all
   the Python-level attributes and methods stay.  The entry point lives in each instance
   (tp_vectorcall_offset), set when the instance is allocated: object.__new__ allocates
   through tp_alloc whatever __new__ the Python side runs. */
static PyObject *mlpn__call(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    return mlpn__predict(callable, args, PyVectorcall_NARGS(nargsf), kwnames);
}

static PyObject *mlpn__alloc(PyTypeObject *type, Py_ssize_t items)
{
    PyObject *self = PyType_GenericAlloc(type, items);
    if (self != NULL && type->tp_vectorcall_offset > 0)
        *(vectorcallfunc *)(void *)((char *)self + type->tp_vectorcall_offset) = mlpn__call;
    return self;
}

static PyObject *mlpn__predictor_type(PyObject *self, PyObject *base)
{
    /* PyType_FromSpecWithBases copies tp_members into the heap type: a local array will do */
    PyMemberDef members[2] = {{"__vectorcalloffset__", T_PYSSIZET, 0, READONLY, NULL}, {NULL, 0, 0, 0, NULL}};
    PyType_Slot slots[] = {{Py_tp_call, (void *)PyVectorcall_Call}, {Py_tp_alloc, (void *)mlpn__alloc},
                           {Py_tp_members, NULL}, {0, NULL}};
    PyType_Spec spec = {"mlpcodegen.runtime.cffi_build.CompiledNetwork", 0, 0,
                        Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL, NULL};
    PyObject *bases, *type;
    Py_ssize_t size;
    (void)self;
    if (!PyType_Check(base)) {
        PyErr_SetString(PyExc_TypeError, "predictor_type() takes the base class");
        return NULL;
    }
    size = ((PyTypeObject *)base)->tp_basicsize;
    members[0].offset = size;
    slots[2].pfunc = members;
    spec.basicsize = (int)(size + (Py_ssize_t)sizeof(vectorcallfunc));
    spec.slots = slots;
    bases = PyTuple_Pack(1, base);
    if (bases == NULL) return NULL;
    type = PyType_FromSpecWithBases(&spec, bases);
    Py_DECREF(bases);
    return type;
}

static PyMethodDef mlpn__methods[] = {
    {"predict", (PyCFunction)(void (*)(void))mlpn__predict, METH_FASTCALL | METH_KEYWORDS,
     "predict(x, *, out=None, threads=None): one sample (1-D) -> outputs, a batch (n, inputs) -> (n, outputs)"},
    @SCALAR_ENTRY@
    {"predictor_type", mlpn__predictor_type, METH_O, "predictor_type(base): the subclass of base called as predict"},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef mlpn__module = {PyModuleDef_HEAD_INIT, "@MODULE@", NULL, -1, mlpn__methods,
                                          NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit_@MODULE@(void)
{
    cpu_set_t set;
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    import_array();
    mlpn__cpus = online > 0 ? (int)online : 1;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) mlpn__cpus = CPU_COUNT(&set);
    return PyModule_Create(&mlpn__module);
}
#pragma GCC pop_options
"""

_NATIVE_SCALAR = r"""
static PyObject *mlpn__scalar(PyObject *self, PyObject *v)
{
    double value = PyFloat_CheckExact(v) ? PyFloat_AS_DOUBLE(v) : PyFloat_AsDouble(v);
    (void)self;
    if (value == -1.0 && PyErr_Occurred()) return NULL;
    return PyFloat_FromDouble((double)@NAME@_scalar((mlpn__t)value));
}
"""

#: No NAME_batch in the C (a profile without it): the batch is the one-sample function per row.
_NATIVE_BATCH_LOOP = r"""
static void @NAME@_batch(const mlpn__t *x, mlpn__t *y, size_t n)
{
    size_t i;
    for (i = 0; i < n; ++i) @NAME@(x + i * (size_t)MLPN__IN, y + i * (size_t)MLPN__OUT);
}
"""


def native_source(module: str, name: str, numeric: NumericType, n_inputs: int, n_outputs: int, *,
                  cdef: str, work_per_row: int, stack: int = 0) -> str:
    """C for ``module + NATIVE_SUFFIX``: ``predict(x, *, out=None, threads=None)`` (METH_FASTCALL,
    NumPy C API) and, for 1 -> 1 networks, ``scalar(v)`` (METH_O), calling the generated
    functions ``name``/``name_batch``/``name_scalar`` of the same file directly.  ``cdef``
    says which of them exist; ``work_per_row`` (multiply-adds and activations) sets the
    rows per thread of ``threads=None``; ``stack`` (bytes the batch function needs) the
    worker threads' stack size (at least 8 MiB, as a main thread usually has)."""
    scalar = f"{name}_scalar(" in cdef
    release = work_per_row > RELEASE_ONE_WEIGHTS
    fills = {
        "@SCALAR@": _NATIVE_SCALAR if scalar else "",
        "@SCALAR_ENTRY@": '{"scalar", mlpn__scalar, METH_O, "scalar(v): the output for one input value"},'
                          if scalar else "",
        "@BATCH@": "" if f"{name}_batch(" in cdef else _NATIVE_BATCH_LOOP,
        "@RELEASE_ONE_BEGIN@": "Py_BEGIN_ALLOW_THREADS" if release else "",
        "@RELEASE_ONE_END@": "Py_END_ALLOW_THREADS" if release else "",
        "@MODULE@": module + NATIVE_SUFFIX, "@NAME@": name, "@T@": numeric.c_type,
        "@NPY@": f"NPY_{numeric.np_dtype.name.upper()}", "@DTYPE@": numeric.np_dtype.name,
        "@STACK@": str(int(stack)), "@IN@": str(n_inputs), "@OUT@": str(n_outputs), "@SPLIT@": str(SPLIT_ROWS),
        "@MIN_ROWS@": str(max(SPLIT_ROWS, -(-WORK_PER_THREAD // max(1, work_per_row)))),
    }
    text = _NATIVE_C
    for key, value in fills.items():
        text = text.replace(key, value)
    return text


def _stamp(library: Path) -> Path:
    return library.with_name(library.name + ".sha256")


def _digest(stream) -> tuple[int, str]:
    """(size, SHA-256 hex) of an open binary file."""
    size = os.fstat(stream.fileno()).st_size
    return size, hashlib.file_digest(stream, "sha256").hexdigest()


def _intact(library: Path) -> bool:
    """Whether ``library`` is a regular file whose size and hash match its stamp."""
    try:
        size_text, digest = _stamp(library).read_text(encoding="ascii").split()
        with open(library, "rb") as stream:
            if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
                return False
            return _digest(stream) == (int(size_text), digest)
    except (OSError, ValueError, UnicodeDecodeError):  # missing, unreadable or malformed: rebuild
        return False


def _import(name: str, library: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, library)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _compile(name: str, source: str, cdef: str, flags: Sequence[str], library: Path) -> None:
    """Build in a private folder, make the library durable, rename it into place, then
    write its stamp: a reader never loads half a file, and a crash at any point leaves
    an entry that fails the check and is rebuilt."""
    import cffi

    ffi = cffi.FFI()
    ffi.cdef(cdef)
    # Not the limited API: the native entry points (native_source) use NumPy's C API.
    ffi.set_source(name, source, extra_compile_args=list(flags), libraries=["m"], py_limited_api=False,
                   define_macros=[("_CFFI_NO_LIMITED_API", None)], include_dirs=[np.get_include()])
    try:
        work = Path(tempfile.mkdtemp(prefix=name, dir=library.parent))
    except OSError as exc:
        raise cache_problem(library.parent, exc) from None
    try:
        try:
            built = ffi.compile(tmpdir=str(work), verbose=False)
        except Exception as exc:  # cffi/setuptools raise several error types
            raise CompileError(f"compiling the generated C failed: {exc}") from None
        _install(Path(built), library)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _install(built: Path, library: Path) -> None:
    """Make ``built`` durable, rename it to ``library``, then write the stamp."""
    try:
        with open(built, "rb") as stream:
            os.fsync(stream.fileno())
            size, digest = _digest(stream)
        os.replace(built, library)
    except OSError as exc:
        raise cache_problem(library, exc) from None
    try:
        write_atomic(_stamp(library), f"{size} {digest}\n")
    except (OSError, MlpCodegenError) as exc:
        raise cache_problem(_stamp(library), exc) from None


@dataclass(frozen=True)
class BoundCall:
    """The lowest-overhead way to call the one-sample function from Python: write the
    sample into ``x``, call ``run()``, read ``y``.  ``x`` and ``y`` are NumPy views of
    C buffers whose pointers ``run`` already holds, so a call converts and allocates
    nothing: it costs what an empty cffi call costs plus the C itself.  Not shared
    between threads (make one per thread)."""
    x: np.ndarray
    y: np.ndarray
    run: Callable[[], None]


class CompiledNetwork:
    """A compiled network: call it with one sample (1-D) or a batch (2-D, rows).

    ``predict(x, *, out=None, threads=None)``: ``x`` is one sample (1-D), a batch (2-D
    rows) or a list of either, of any real dtype and layout; ``out`` an array of the
    result's shape and the network's dtype to write into (returned); ``threads`` splits a
    batch's rows over that many threads that run without the GIL (None: one per
    :data:`WORK_PER_THREAD` of work, up to the usable CPUs; results equal bit for bit
    whatever the count).

    Built with ``native`` (what :func:`mlpcodegen.runtime.compile_c` does), the call
    goes straight into the library's CPython entry point ``predict`` (METH_FASTCALL,
    NumPy C API: no Python frame), and ``scalar`` is its ``scalar``; the instance is then
    of a subclass made for it, whose ``__call__`` is that function.  Without it (a
    module from :func:`build_module`), the same call runs here in Python over cffi.
    ``recipe`` (with ``native``: the ``parts`` given to :func:`build_network`) is what a
    pickled predictor is rebuilt from; without it the predictor refuses to pickle."""

    def __new__(cls, module: ModuleType, *args, native: "ModuleType | None" = None, **kwargs):
        if native is None:
            return super().__new__(cls)
        return super().__new__(_native_kind(cls, native))

    def __init__(self, module: ModuleType, name: str, n_inputs: int, n_outputs: int,
                 dtype: "str | NumericType", *, description: str = "", math: str = "",
                 native: "ModuleType | None" = None, recipe: "tuple | None" = None):
        #: for repr(): the network (``1-3-2-1 (tanh, tanh, linear)``), the math option, the library
        self.name, self.description, self.math = name, description, math
        self.library = getattr(module, "__file__", None)
        self._ffi = module.ffi
        self._single = getattr(module.lib, name)
        self._batch = getattr(module.lib, name + "_batch", None)
        #: ``f(float) -> float`` straight into C, for one-input one-output networks
        #: (no array, no allocation; the native entry point when built with one); else None.
        self.scalar = getattr(native, "scalar", None) or getattr(module.lib, name + "_scalar", None)
        #: the native ``predict`` (None without one): what calling this object runs
        self.native = getattr(native, "predict", None)
        self.n_inputs, self.n_outputs = n_inputs, n_outputs
        #: the numeric type the C computes in (its C spelling names the cffi buffers)
        self.numeric = numeric_type(dtype)
        self.dtype = self.numeric.np_dtype
        self._ctype = self.numeric.c_type + "[]"
        self._one_shape = (n_inputs,)
        #: (target, Network, dtype, name, options) this was built from (the ``parts`` given
        #: to :func:`build_network`), for pickling; None when not given (not picklable)
        self._recipe = recipe if native is not None else None
        self._library_name = getattr(native, "__name__", None)

    @property
    def recipe(self) -> "dict | None":
        """What this was compiled from: ``target``, ``network`` (the IR), ``dtype``, ``name``
        and ``options`` (None when not built by :func:`mlpcodegen.runtime.compile_c`)."""
        if self._recipe is None:
            return None
        return dict(zip(("target", "network", "dtype", "name", "options"), self._recipe))

    def __reduce__(self):
        """Pickled as its recipe (the IR and the options), not its library: unpickling
        builds it through the same cache as :func:`mlpcodegen.runtime.compile_c` (the first
        time on a machine compiles, later ones load the cached library in milliseconds)."""
        if self._recipe is None:
            raise TypeError(f"this C predictor ({self.name!r}) cannot be pickled: it was not built by "
                            f"mlpcodegen.compile_c, so its network is unknown; pickle the Network and "
                            f"call compile_c on it where it is needed")
        return rebuild_predictor, (*self._recipe, self._library_name)

    def __repr__(self) -> str:
        from ..backends import c_math

        shape = self.description or f"{self.n_inputs} -> {self.n_outputs}"
        math = {"fast": "fast math (inline exp/tanh)", "libm": "libm math"}.get(self.math, self.math)
        if self.math == "fast" and not c_math.has_fast(self.numeric.name):
            math = "libm math"  # no inline functions for this type: it always calls the C library
        if self.numeric.is_fixed:  # fixed point: the float wrapper's I/O type says nothing
            parts = [f"{self.name!r} {shape}", f"{self.numeric.name} fixed point (float32 in and out)"]
        else:
            parts = [f"{self.name!r} {shape}", self.dtype.name, math]
        parts.append(f"cache {self.library}" if self.library else "")
        return f"<mlpcodegen C predictor {', '.join(part for part in parts if part)}>"

    def bind(self) -> BoundCall:
        """Preallocated input/output buffers and a zero-argument call (see :class:`BoundCall`)."""
        px, py = self._ffi.new(self._ctype, self.n_inputs), self._ffi.new(self._ctype, self.n_outputs)
        x = np.frombuffer(self._ffi.buffer(px), dtype=self.dtype)
        y = np.frombuffer(self._ffi.buffer(py), dtype=self.dtype)
        return BoundCall(x, y, functools.partial(self._single, px, py))

    def _coerce(self, x: object) -> np.ndarray:
        array = np.asarray(x)
        if array.dtype.kind not in "fiub":
            raise ValueError(f"expected real numbers, got an array of dtype {array.dtype}")
        if not (array.ndim in (1, 2) and array.shape[-1] == self.n_inputs):
            raise ValueError(
                f"expected shape ({self.n_inputs},) for one sample or (n, {self.n_inputs}) "
                f"for a batch, got {array.shape}"
            )
        return np.ascontiguousarray(array, dtype=self.dtype)

    def __call__(self, x: object, *, out: "np.ndarray | None" = None, threads: "int | None" = None) -> np.ndarray:
        """The Python path (modules without native entry points): as the native ``predict``."""
        count = _thread_count(threads)
        one_ready = type(x) is np.ndarray and x.dtype == self.dtype and x.shape == self._one_shape \
            and x.flags.c_contiguous  # one sample of the right type: skip the checks and the copy
        array = x if one_ready else self._coerce(x)
        shape = (self.n_outputs,) if array.ndim == 1 else (array.shape[0], self.n_outputs)
        if out is None:
            out = np.empty(shape, dtype=self.dtype)
        else:
            _check_out(out, shape, self.dtype)
            if np.shares_memory(array, out) and not (array.ctypes.data == out.ctypes.data and
                                                     self.n_inputs == self.n_outputs):
                array = array.copy()
        buffer = self._ffi.from_buffer
        if array.ndim == 1:
            self._single(buffer(self._ctype, array), buffer(self._ctype, out, require_writable=True))
        elif array.shape[0]:
            self._rows(array, out, count or 1)
        return out

    def _rows(self, array: np.ndarray, out: np.ndarray, threads: int) -> None:
        """The batch in chunks of whole SPLIT_ROWS groups over ``threads`` Python threads
        (cffi releases the GIL during each call)."""
        groups = -(-array.shape[0] // SPLIT_ROWS)
        per = -(-groups // max(1, min(threads, groups))) * SPLIT_ROWS
        chunks = [(array[i:i + per], out[i:i + per]) for i in range(0, array.shape[0], per)]
        if len(chunks) == 1:
            self._batch_call(*chunks[0])
            return
        import threading

        workers = [threading.Thread(target=self._batch_call, args=chunk) for chunk in chunks[1:]]
        for worker in workers:
            worker.start()
        self._batch_call(*chunks[0])
        for worker in workers:
            worker.join()

    def _batch_call(self, rows: np.ndarray, out: np.ndarray) -> None:
        buffer = self._ffi.from_buffer
        if self._batch is None:  # a C file without NAME_batch: one call per row
            for row, result in zip(rows, out):
                self._single(buffer(self._ctype, row), buffer(self._ctype, result, require_writable=True))
            return
        self._batch(buffer(self._ctype, rows), buffer(self._ctype, out, require_writable=True), rows.shape[0])


@functools.lru_cache(maxsize=None)
def _native_kind(cls: type, native: ModuleType) -> type:
    """The subclass of ``cls`` whose instances' call is the library's ``predict`` (one per
    library), made by the library itself (``predictor_type``): a C type calling its
    instances through vectorcall, without the instance-call dispatch a class made in
    Python costs (its ``__call__`` lookup and argument tuple: ~50-90 ns per call)."""
    kind = native.predictor_type(cls)
    kind.__doc__ = cls.__doc__
    return kind


def rebuild_predictor(target: str, net: "object", dtype: str, name: str, options: dict,
                      library: "str | None" = None) -> "CompiledNetwork":
    """The predictor ``compile_c`` makes from this recipe (what an unpickled predictor is):
    the network is rebuilt through its constructors first, so it is validated and its
    arrays read-only again (unpickling skips both), then compiled or fetched from the cache.

    ``library`` is the sender's module name (its cache key): when this process has already
    rebuilt that library from a recipe, the predictor is a new instance of that one, with no
    hashing or validation again (a Dask worker unpickles the predictor for every task).  Only
    this process's own rebuilds count: a library of that name on disk could have been built
    for another machine's CPU (a shared cache folder), the one keyed here was not."""
    from .loaders import get_loader

    earlier = _REBUILT.get(library) if library else None
    if earlier is not None:
        twin = object.__new__(type(earlier))
        twin.__dict__.update(earlier.__dict__)
        return twin
    # the loader itself, not load(): the options are those it was run with (its own, such as
    # a fixed-point domain it filled in, included)
    predictor = get_loader(target).run(_revalidated(net), numeric_type(dtype), name, **options)
    if library is not None and predictor._library_name == library:
        keep_recent(_REBUILT, library, predictor)
    return predictor


#: native module name -> a predictor this process rebuilt from a pickled recipe keyed so.
_REBUILT: dict[str, CompiledNetwork] = {}


def _revalidated(value: object) -> object:
    """A copy of an IR value made through its dataclasses' constructors."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return type(value)(**{field.name: _revalidated(getattr(value, field.name))
                              for field in dataclasses.fields(value) if field.init})
    if isinstance(value, tuple):
        return tuple(_revalidated(item) for item in value)
    return value


def _thread_count(threads: object) -> int:
    """``threads=`` checked as the native entry point checks it (0: None, chosen by size)."""
    if threads is None:
        return 0
    if isinstance(threads, bool) or not isinstance(threads, int):
        raise TypeError(f"threads must be a positive integer or None, got {type(threads).__name__}")
    if threads < 1:
        raise ValueError(f"threads must be a positive integer or None, got {threads}")
    return threads


def _check_out(out: object, shape: tuple, dtype: np.dtype) -> None:
    """``out=`` checked with the native entry point's messages."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a NumPy array of dtype {dtype.name}, got {type(out).__name__}")
    if out.dtype != dtype or out.shape != shape:
        raise ValueError(f"out must have shape {shape} and dtype {dtype.name}, got shape {out.shape} and dtype "
                         f"{out.dtype}")
    if not (out.flags.writeable and out.flags.c_contiguous and out.flags.aligned):
        raise ValueError("out must be writeable, C-contiguous and aligned (it is written in place)")
