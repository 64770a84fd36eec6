"""The native Python entry points compiled into each network's library: ``predict(x, *,
out=None, threads=None)`` (METH_FASTCALL, NumPy C API, batches split over threads) and
``scalar(v)``, as C text made from the templates shipped beside this module
(``native_entry.c``, ``native_scalar.c``, ``native_batch_loop.c``, ``native_batch_ws.c``: real C files, so they
are read, diffed and searched as C).  Text only: compiling is :mod:`.cffi_build`'s."""
from __future__ import annotations

import functools
from pathlib import Path

from ..core.numeric import NumericType

#: The native module is the second module of each network's library: its init function
#: is ``PyInit_<cffi module name>_native`` (CPython loads several modules from one shared
#: object when each has its own init function and its own name).
NATIVE_SUFFIX = "_native"
#: Batches are split between threads at multiples of this many rows: a multiple of every
#: block width the C uses (32 float32 / 16 float64 lanes, halved for wide layers), so each
#: row goes through the same block or tail code as with one thread (equal bits); the rows
#: layout's workspace blocks (NAME_batch_ws) give every row the same bits whatever the block.
SPLIT_ROWS = 64
#: threads=None: one thread per this much work (multiply-adds plus activations) of rows,
#: up to the CPUs this process may run on.  Measured (bench/NATIVE.md): below ~1 ms of work
#: a second thread gains little against starting it and sharing the cores.
WORK_PER_THREAD = 4_000_000
#: A one-sample call of a network with more weights than this releases the GIL (a few
#: microseconds of C); smaller ones keep it (releasing costs more than they run).
RELEASE_ONE_WEIGHTS = 16_384


@functools.lru_cache(maxsize=None)
def _template(file: str) -> str:
    """The template ``file`` beside this module, after the blank line that separates it
    from the C it is appended to or inserted in (the files hold the C alone)."""
    return "\n" + Path(__file__).with_name(file).read_text(encoding="ascii")


def native_source(module: str, name: str, numeric: NumericType, n_inputs: int, n_outputs: int, *,
                  cdef: str, work_per_row: int, stack: int = 0, lanes: int = 0) -> str:
    """C for ``module + NATIVE_SUFFIX``: ``predict(x, *, out=None, threads=None)`` (METH_FASTCALL,
    NumPy C API) and, for 1 -> 1 networks, ``scalar(v)`` (METH_O), calling the generated
    functions ``name``/``name_batch``/``name_scalar`` of the same file directly.  ``cdef``
    says which of them exist; ``work_per_row`` (multiply-adds and activations) sets the
    rows per thread of ``threads=None``; ``stack`` (bytes the batch function needs) the
    worker threads' stack size (at least 8 MiB, as a main thread usually has); with
    ``name_batch_ws`` (wide networks), ``lanes`` (``name_batch``'s rows a block) is the
    batch size above which predict allocates its workspace (``native_batch_ws.c``)."""
    scalar = f"{name}_scalar(" in cdef
    release = work_per_row > RELEASE_ONE_WEIGHTS
    fills = {
        "@SCALAR@": _template("native_scalar.c") if scalar else "",
        "@SCALAR_ENTRY@": '{"scalar", mlpn__scalar, METH_O, "scalar(v): the output for one input value"},'
                          if scalar else "",
        "@BATCH@": "" if f"{name}_batch(" in cdef else _template("native_batch_loop.c"),
        "@WORK@": _template("native_batch_ws.c").replace("@LANES@", str(int(lanes))) if f"{name}_batch_ws(" in cdef
                  else f"static void mlpn__batch(const mlpn__t *x, mlpn__t *y, size_t n) {{ {name}_batch(x, y, n); }}",
        "@RELEASE_ONE_BEGIN@": "Py_BEGIN_ALLOW_THREADS" if release else "",
        "@RELEASE_ONE_END@": "Py_END_ALLOW_THREADS" if release else "",
        "@MODULE@": module + NATIVE_SUFFIX, "@NAME@": name, "@T@": numeric.c_type,
        "@NPY@": f"NPY_{numeric.np_dtype.name.upper()}", "@DTYPE@": numeric.np_dtype.name,
        "@STACK@": str(int(stack)), "@IN@": str(n_inputs), "@OUT@": str(n_outputs), "@SPLIT@": str(SPLIT_ROWS),
        "@MIN_ROWS@": str(max(SPLIT_ROWS, -(-WORK_PER_THREAD // max(1, work_per_row)))),
    }
    text = _template("native_entry.c")
    for key, value in fills.items():
        text = text.replace(key, value)
    return text
