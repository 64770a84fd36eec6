"""The predictor a compiled network is called through: :class:`CompiledNetwork` (the
library's native ``predict`` when it has one, else the same call in Python over cffi),
:class:`BoundCall` (the lowest-overhead one-sample call) and the argument checks both
paths share; :class:`DomainChecked`, a fixed-point predictor that checks its inputs
against the domain its formats were planned for.  Wraps what it is given: never builds,
loads or keys a module."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable

import numpy as np

from ..core.errors import ValidationError
from ..core.numeric import NumericType, numeric_type
from .native import SPLIT_ROWS


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
    :data:`~.native.WORK_PER_THREAD` of work, up to the usable CPUs; results equal bit for bit
    whatever the count).

    Built with ``native`` (what :func:`mlpcodegen.runtime.compile_c` does), the call
    goes straight into the library's CPython entry point ``predict`` (METH_FASTCALL,
    NumPy C API: no Python frame), and ``scalar`` is its ``scalar``; the instance is then
    of a subclass made for it, whose ``__call__`` is that function.  Without it (a
    module from :func:`~.cffi_build.build_module`), the same call runs here in Python over cffi.
    ``recipe`` (with ``native``: the ``parts`` given to :func:`~.cffi_build.build_network`)
    is what a pickled predictor is rebuilt from, by ``rebuild(*recipe, library_name)`` (the
    loader registry's :func:`~.loaders.rebuild_predictor`, handed down so that this module,
    below the registry, never imports it); without both it refuses to pickle."""

    def __new__(cls, module: ModuleType, *args, native: "ModuleType | None" = None, **kwargs):
        if native is None:
            return super().__new__(cls)
        return super().__new__(_native_kind(cls, native))

    def __init__(self, module: ModuleType, name: str, n_inputs: int, n_outputs: int,
                 dtype: "str | NumericType", *, description: str = "", math: str = "",
                 native: "ModuleType | None" = None, recipe: "tuple | None" = None,
                 rebuild: "Callable[..., CompiledNetwork] | None" = None):
        #: for repr(): the network (``1-3-2-1 (tanh, tanh, linear)``), the math option, the library
        self.name, self.description, self.math = name, description, math
        self.library = getattr(module, "__file__", None)
        self._ffi = module.ffi
        self._single = getattr(module.lib, name)
        self._batch = getattr(module.lib, name + "_batch", None)
        #: wide networks: the batch with a caller's workspace, and its bytes (0: none)
        self._batch_ws = getattr(module.lib, name + "_batch_ws", None)
        self._work = int(getattr(module.lib, name + "_BATCH_WORK", 0)) if self._batch_ws is not None else 0
        #: the workspace is scratch: not zero-filled (up to 2 MiB a call)
        self._scratch = module.ffi.new_allocator(should_clear_after_alloc=False)
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
        #: to :func:`~.cffi_build.build_network`), for pickling; None when not given (not picklable)
        self._recipe = recipe if native is not None and rebuild is not None else None
        self._rebuild = rebuild
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
        return self._rebuild, (*self._recipe, self._library_name)

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
        if self._work and rows.shape[0] > 1:  # a workspace per call and thread: many rows a block
            work = self._scratch(self._ctype, -(-self._work // self.dtype.itemsize))
            self._batch_ws(buffer(self._ctype, rows), buffer(self._ctype, out, require_writable=True), rows.shape[0],
                           work)
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


class OutsideDomainWarning(UserWarning):
    """Inputs of a fixed-point predictor outside the domain its formats were planned for
    (there the C's values saturate: its stated error bound does not hold)."""


#: What a fixed-point predictor does with inputs outside its planned domain.
OUTSIDE = ("warn", "raise", "ignore")


class DomainChecked:
    """A fixed-point C predictor that checks its inputs against the planned domain before
    calling the C (which saturates outside it): ``outside="warn"`` warns once per predictor
    (:class:`OutsideDomainWarning`), ``"raise"`` raises a ValidationError, ``"ignore"``
    lets them through.  Everything else (``scalar``, ``bind``, ``n_inputs``, ...) is the
    compiled predictor's; ``bind()``'s zero-argument call is not checked."""

    def __init__(self, predictor: Any, low: np.ndarray, high: np.ndarray, outside: str = "warn") -> None:
        if outside not in OUTSIDE:
            raise ValidationError(f"outside= is one of {', '.join(OUTSIDE)}, not {outside!r}")
        self.predictor, self.low, self.high, self.outside = predictor, low, high, outside
        self._warned = False

    def _check(self, x: Any) -> None:
        if self.outside == "ignore":
            return
        array = np.asarray(x, dtype=np.float64)
        if array.ndim == 0 or array.shape[-1:] != self.low.shape:
            return  # a wrong shape: the predictor's own error says what it takes
        with np.errstate(invalid="ignore"):
            rows = ~np.all((array >= self.low) & (array <= self.high), axis=-1)
        count = int(np.count_nonzero(rows))
        if not count or (self.outside == "warn" and self._warned):
            return
        message = (f"{count} input row(s) outside the domain {self.low.tolist()} .. {self.high.tolist()} the "
                   f"fixed-point formats were planned for: there values saturate and the stated error bound does "
                   f"not hold (compile_c(..., domain=...) plans for another range)")
        if self.outside == "raise":
            raise ValidationError(message)
        import warnings

        self._warned = True
        warnings.warn(message + " (warned once per predictor; outside='raise' makes it an error)",
                      OutsideDomainWarning, stacklevel=3)

    def __call__(self, x: Any, **keywords: Any) -> np.ndarray:
        self._check(x)
        return self.predictor(x, **keywords)

    def predict(self, x: Any, **keywords: Any) -> np.ndarray:
        return self(x, **keywords)

    @property
    def scalar(self) -> Any:
        inner = self.predictor.scalar
        if inner is None:
            return None

        def scalar(value: float) -> float:
            self._check([value])
            return inner(value)
        return scalar

    def __getattr__(self, attribute: str) -> Any:
        if attribute == "predictor":  # not yet set (unpickling): no recursion
            raise AttributeError(attribute)
        return getattr(self.predictor, attribute)

    def __reduce__(self):
        return DomainChecked, (self.predictor, self.low, self.high, self.outside)

    def __repr__(self) -> str:
        return (f"{self.predictor!r} on the domain {self.low.tolist()} .. {self.high.tolist()} "
                f"(outside: {self.outside})")
