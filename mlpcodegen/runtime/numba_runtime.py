"""Run what the Numba backend emits: the generated module imported from the cache
folder (:func:`.pymodule.import_generated`; Numba's ``cache=True`` keeps the compiled
code beside it, so a second process loads it instead of compiling), wrapped in one
callable over NumPy arrays.

A batch goes to ``NAME_batch_parallel``, which splits the rows over threads only when
each thread gets enough work (``WORK_PER_THREAD`` in the backend): a small batch runs on
the calling thread and never compiles the parallel function.  Every row gives the same
bits whatever the thread count.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..backends import emit
from ..core.ir import Network
from ..core.numeric import NumericType


def load_numba(net: Network, numeric: NumericType, name: str) -> Any:
    """``predict(x, *, threads=None)``: one sample (1-D) -> (outputs,), a batch (n, inputs)
    -> (n, outputs), rows over ``threads`` threads (default: Numba's thread count, when
    the batch is large enough); ``predict.into(x, y)`` and ``predict.scalar(v)`` (1 -> 1
    networks) are the module's jitted functions."""
    from .pymodule import import_generated

    module = import_generated(emit(net, "numba", dtype=numeric.name, name=name), "numba")
    single, parallel = getattr(module, name), getattr(module, name + "_batch_parallel")
    np_dtype, n_in = numeric.np_dtype, net.n_inputs

    def call(x, *, threads: Optional[int] = None):
        x = np.ascontiguousarray(x, dtype=np_dtype)
        if x.ndim not in (1, 2) or x.shape[-1] != n_in:
            raise ValueError(f"expected shape ({n_in},) or (n, {n_in}), got {x.shape}")
        if x.ndim == 1:
            return single(x)
        return parallel(x, _threads(threads))

    call.into = getattr(module, name + "_into")  # (x, y): checks the shapes only
    call.scalar = getattr(module, name + "_scalar", None)
    call.module = module
    call.bind = lambda: BoundCall(call.into, np_dtype, n_in, net.n_outputs)
    return call


class BoundCall:
    """One sample in preallocated arrays, as the C predictor's ``bind()``: write ``x``,
    call ``run()``, read ``y``.  ``run`` is the compiled ``NAME_into`` for exactly these
    arrays' types, called without Numba's dispatcher (which types every argument on
    every call: about half the cost of a small network's call).  That is safe only
    because the arrays are ours: created here, of the compiled dtype, contiguous, and
    never replaced (``x`` and ``y`` are read-only attributes; write into them)."""

    __slots__ = ("_x", "_y", "run")

    def __init__(self, into: Any, dtype: np.dtype, n_in: int, n_out: int) -> None:
        import functools

        import numba

        self._x, self._y = np.zeros(n_in, dtype), np.zeros(n_out, dtype)
        entry = into.compile((numba.typeof(self._x), numba.typeof(self._y)))  # loads from the cache when there
        self.run = functools.partial(entry, self._x, self._y)

    @property
    def x(self) -> np.ndarray:
        return self._x

    @property
    def y(self) -> np.ndarray:
        return self._y


def _threads(threads: Optional[int]) -> Optional[int]:
    """``threads`` checked: None (Numba's thread count) or a positive int."""
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ValueError(f"threads must be a positive int or None, got {threads!r}")
    return int(threads)
