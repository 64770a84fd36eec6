"""Scoring data beyond one process: a Dask array or Dask DataFrame (and a Spark DataFrame
through ``mapInPandas``) with a network compiled once per worker process.

What travels to the workers is the IR (:class:`mlpcodegen.core.ir.Network`, frozen and
picklable) with the target, dtype and options, as one task of the graph that every block
depends on: a worker receives it once, however many blocks it scores.  The first block a
worker process scores builds the predictor through :func:`.loaders.load` (C: the on-disk
cache keyed by the IR's content, the options and the toolchain, shared by the workers of
a machine and installed atomically, so two workers building the same network at once
both load a complete library); the loaded predictor is then kept in the process
(:data:`_PREDICTORS`), so later blocks cost only the computation.

Dask and PySpark are imported inside the functions that need them, never when the
runtime is imported.
"""
from __future__ import annotations

import hashlib
import pickle
import threading
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ..backends import get_backend
from ..core.errors import UnsupportedError, ValidationError
from ..core.ir import Network
from .cache import keep_recent
from .loaders import Predictor, check_options, get_loader, load
from .native import SPLIT_ROWS


@dataclass(frozen=True)
class Scoring:
    """What a worker needs to build the predictor: the network, the target, its dtype,
    the function name and the run options; ``threads`` is what each block's C call uses
    (one: a Dask worker thread is one core).  ``key`` is a digest of all of them, the
    worker's in-memory cache key (cheap to compare, unlike the weights)."""

    network: Network
    target: str
    dtype: str
    name: str
    options: tuple[tuple[str, Any], ...]
    threads: int
    key: str

    def predictor(self) -> Predictor:
        """The loaded predictor, built on this process's first call only."""
        found = _PREDICTORS.get(self.key)
        if found is None:
            with _BUILD_LOCK:  # two threads of one worker: one build
                found = _PREDICTORS.get(self.key)
                if found is None:
                    found = load(self.network, self.target, dtype=self.dtype, name=self.name,
                                 **dict(self.options))
                    keep_recent(_PREDICTORS, self.key, found)  # a long-lived worker: the oldest dropped
        return found

    def score(self, rows: np.ndarray) -> np.ndarray:
        """Outputs of a block of rows (2-D), one row each, in the scoring dtype."""
        predictor = self.predictor()
        rows = np.ascontiguousarray(rows, dtype=np.dtype(self.dtype))
        if rows.shape[0] == 0:
            return np.empty((0, self.network.n_outputs), np.dtype(self.dtype))
        if get_loader(self.target).threads:
            return np.asarray(predictor(rows, threads=self.threads), dtype=np.dtype(self.dtype))
        return np.asarray(predictor(rows), dtype=np.dtype(self.dtype))


#: Scoring.key -> loaded predictor, in this process (a worker's cache), oldest first; at
#: most :data:`.cache.REMEMBERED` (each holds a loaded library or module).
_PREDICTORS: dict[str, Predictor] = {}
_BUILD_LOCK = threading.Lock()


def scoring(model: object, *, target: Optional[str] = None, dtype: Optional[str] = None,
            name: Optional[str] = None, threads: int = 1, **options: object) -> Scoring:
    """The :class:`Scoring` of ``model`` (a :class:`~mlpcodegen.core.ir.Network`, or a
    predictor from :func:`~mlpcodegen.runtime.compile_c`, whose recipe gives the target,
    dtype, name and options not given here), checked here, before any worker builds."""
    network, target, dtype, name, options = _settings(model, target, dtype, name, options)
    loader = get_loader(target)
    supported = get_backend(target).dtypes
    if dtype not in supported:
        raise UnsupportedError(f"scoring on workers runs target {target!r} in dtypes {supported}, not {dtype!r}")
    check_options(target, loader, options)
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValidationError(f"threads must be a positive integer (C calls per block), got {threads!r}")
    settled = tuple(sorted(options.items()))
    key = hashlib.sha256(pickle.dumps((network, target, dtype, name, settled), protocol=4)).hexdigest()
    return Scoring(network, target, dtype, name, settled, threads, key)


#: What a Network alone is scored with when the call does not say.
DEFAULTS = {"target": "c", "dtype": "float32", "name": "mlp"}


def _settings(model: object, target: Optional[str], dtype: Optional[str], name: Optional[str],
              options: dict) -> tuple:
    """(network, target, dtype, name, options): the call's, else the compiled predictor's
    recipe, else :data:`DEFAULTS`; a call contradicting the predictor it ships is refused."""
    recipe = getattr(model, "recipe", None) if not isinstance(model, Network) else None
    given = {"target": target, "dtype": dtype, "name": name}
    if recipe is None:
        return (_network_of(model), *(given[k] if given[k] is not None else DEFAULTS[k] for k in DEFAULTS), options)
    for key, value in [*given.items(), *options.items()]:
        built = recipe[key] if key in given else recipe["options"].get(key)
        if value is not None and value != built:
            raise UnsupportedError(f"the predictor was compiled with {key}={built!r}, not {value!r}: "
                                   f"pass its network (predictor.recipe['network']) to score it otherwise")
    return recipe["network"], recipe["target"], recipe["dtype"], recipe["name"], dict(recipe["options"])


def _network_of(model: object) -> Network:
    network = model if isinstance(model, Network) else getattr(model, "network", None)
    if not isinstance(network, Network):
        raise UnsupportedError(
            f"cannot ship a {type(model).__name__} to the workers: pass the network "
            "(an mlpcodegen.core.ir.Network, e.g. mlpcodegen.frontends.load('model.keras')), which the "
            "workers compile once each")
    return network


# ------------------------------------------------------------------ Dask


def score_dask(data: Any, model: object, *, target: Optional[str] = None, dtype: Optional[str] = None,
               name: Optional[str] = None, columns: Optional[Sequence[str]] = None, threads: int = 1, **options: object) -> Any:
    """The outputs of ``model`` on every row of ``data``, lazily, as a collection of the
    same kind: a Dask array ``(n, n_inputs)`` gives a Dask array ``(n, n_outputs)`` with
    the same row chunks; a Dask DataFrame of ``n_inputs`` numeric columns (in the network's
    input order) gives a Dask DataFrame with the same index and partitions and columns
    ``columns`` (default ``output_0``, ``output_1``, ...).  Results equal the
    single-process ``load(model, target, dtype=dtype)(rows)`` bit for bit.

    Each worker process compiles (C: or loads from the machine's cache) the network once
    and keeps it; ``threads`` is the C call's thread count per block (one per Dask worker
    thread by default).  ``options`` are the target's run options (C: ``unroll``, ``math``)."""
    dask = _require("dask", "dask[distributed,dataframe]")
    spec = scoring(model, target=target, dtype=dtype, name=name, threads=threads, **options)
    for kind, scorer in _dask_kinds():
        if isinstance(data, kind):
            # one key per network and options (not a hash of the weights): each worker fetches it once
            shipped = dask.delayed(spec, name=f"mlpcodegen-network-{spec.key}-{spec.threads}", traverse=False)
            return scorer(data, shipped, spec, columns)
    raise UnsupportedError(f"score_dask scores a Dask array or a Dask DataFrame, not a {type(data).__name__} "
                           "(for a NumPy array call the predictor itself: mlpcodegen.runtime.load)")


def _dask_kinds() -> tuple[tuple[type, Callable], ...]:
    """(collection type, scorer): the table score_dask dispatches through."""
    import dask.array as da
    import dask.dataframe as dd

    return ((da.Array, _score_array), (dd.DataFrame, _score_frame))


def _score_array(data: Any, shipped: Any, spec: Scoring, columns: Optional[Sequence[str]]) -> Any:
    if columns is not None:
        raise UnsupportedError("columns= names a DataFrame's outputs; a Dask array's outputs are columns 0..n-1")
    net = spec.network
    if data.ndim != 2 or data.dtype.kind not in "fiub":
        raise ValidationError(f"expected a 2-D Dask array of real numbers, rows of {net.n_inputs} inputs; got "
                              f"{data.ndim}-D of dtype {data.dtype}")
    _check_width(data.shape[1], net, "columns")
    if len(data.chunks[1]) > 1:
        data = data.rechunk({1: -1})  # a row's inputs in one block
    if not any(np.isnan(data.chunks[0])):  # unknown row counts (a DataFrame's rows): left as they are
        data = data.rechunk({0: aligned_chunks(data.chunks[0])})
    out = np.dtype(spec.dtype)
    return data.map_blocks(_score_rows, shipped, dtype=out, chunks=(data.chunks[0], (net.n_outputs,)),
                           meta=np.empty((0, net.n_outputs), out), token="mlpcodegen-score")


def aligned_chunks(chunks: Sequence[int], step: int = SPLIT_ROWS) -> tuple[int, ...]:
    """Row chunks whose boundaries are moved to the nearest multiple of ``step`` (the C
    batch's block, :data:`~.native.SPLIT_ROWS`): a row then goes through the same block
    or tail code as in one ``predict`` over all rows, so the outputs are equal bit for bit.
    At most ``step - 1`` rows move per boundary; chunks already aligned are kept."""
    total = sum(chunks)
    ends = {min(total, step * round(end / step)) for end in np.cumsum(chunks)[:-1].tolist()}
    bounds = [0, *sorted(end for end in ends if 0 < end < total), total]
    return tuple(b - a for a, b in zip(bounds, bounds[1:])) if total else tuple(chunks)


def _score_rows(block: np.ndarray, spec: Scoring) -> np.ndarray:
    return spec.score(block)


def _score_frame(data: Any, shipped: Any, spec: Scoring, columns: Optional[Sequence[str]]) -> Any:
    import pandas as pd

    names = _output_names(columns, spec.network)
    _check_frame(data.dtypes, spec.network)
    meta = pd.DataFrame({column: np.empty(0, np.dtype(spec.dtype)) for column in names},
                        index=data._meta.index)
    return data.map_partitions(_score_partition, shipped, names, meta=meta, enforce_metadata=False,
                               token="mlpcodegen-score")


def _score_partition(frame: Any, spec: Scoring, names: list[str]) -> Any:
    import pandas as pd

    outputs = spec.score(frame.to_numpy())
    return pd.DataFrame(outputs, index=frame.index, columns=names, copy=False)


def _check_frame(dtypes: Any, net: Network) -> None:
    """The columns of a DataFrame (their dtypes): ``n_inputs`` of them, all real."""
    _check_width(len(dtypes), net, "columns")
    bad = [f"{column!r} ({dtype})" for column, dtype in dtypes.items() if getattr(dtype, "kind", "O") not in "fiub"]
    if bad:
        raise ValidationError(f"the network's inputs must be real numbers; column(s) {', '.join(bad)} are not: "
                              "select or convert them first")


def _check_width(width: object, net: Network, what: str) -> None:
    if width != net.n_inputs:
        raise ValidationError(f"the data has {width} {what}, the network {net.describe()} takes "
                              f"{net.n_inputs} inputs: pass exactly its input columns, in its input order")


def _output_names(columns: Optional[Sequence[str]], net: Network) -> list[str]:
    names = [f"output_{i}" for i in range(net.n_outputs)] if columns is None else [str(c) for c in columns]
    if len(names) != net.n_outputs or len(set(names)) != len(names):
        raise ValidationError(f"columns= must be {net.n_outputs} distinct names (one per output of "
                              f"{net.describe()}), got {list(columns or [])}")
    return names


# ------------------------------------------------------------------ Spark


def score_spark(frame: Any, model: object, *, inputs: Optional[Sequence[str]] = None,
                columns: Optional[Sequence[str]] = None, target: Optional[str] = None,
                dtype: Optional[str] = None, name: Optional[str] = None, threads: int = 1, **options: object) -> Any:
    """The outputs of ``model`` on every row of the Spark DataFrame ``frame``, lazily
    (``frame.select(*inputs).mapInPandas``): a DataFrame of columns ``columns`` (default
    ``output_0``, ...), one row per input row, in the partitions' order.  ``inputs`` are
    the network's input columns in order (default: all of ``frame``'s).  Each Python
    worker process compiles the network once (Spark reuses its Python workers); the
    per-batch function is :class:`SparkBatches`, plain pandas (tested without Spark)."""
    _require("pyspark", "pyspark")
    spec = scoring(model, target=target, dtype=dtype, name=name, threads=threads, **options)
    chosen = list(frame.columns) if inputs is None else [str(column) for column in inputs]
    _check_width(len(chosen), spec.network, "input columns")
    names = _output_names(columns, spec.network)
    kind = {"float32": "float", "float64": "double"}.get(spec.dtype)
    if kind is None:
        raise UnsupportedError(f"Spark columns hold float32 or float64 outputs, not {spec.dtype}")
    schema = ", ".join(f"`{column.replace('`', '``')}` {kind}" for column in names)
    return frame.select(*chosen).mapInPandas(SparkBatches(spec, tuple(names)), schema)


@dataclass(frozen=True)
class SparkBatches:
    """What ``mapInPandas`` runs on a partition: pandas DataFrames of input columns in,
    DataFrames of outputs out (picklable: the network travels with it).  Rows are scored
    in runs of whole :data:`~.native.SPLIT_ROWS` blocks, the rest carried to the next
    batch (Arrow's batches hold 10,000 rows, not a multiple of 64): every row goes through
    the block or tail code it would in one ``predict`` over the partition (equal bits)."""

    spec: Scoring
    names: tuple[str, ...]

    def __call__(self, batches: Any) -> Any:
        carry = np.empty((0, self.spec.network.n_inputs), np.dtype(self.spec.dtype))
        for batch in batches:
            _check_width(batch.shape[1], self.spec.network, "columns")
            rows = batch.to_numpy() if not len(carry) else np.concatenate([carry, batch.to_numpy()])
            whole = len(rows) - len(rows) % SPLIT_ROWS
            carry = rows[whole:]
            if whole:
                yield self._frame(rows[:whole])
        if len(carry):
            yield self._frame(carry)

    def _frame(self, rows: np.ndarray) -> Any:
        import pandas as pd

        return pd.DataFrame(self.spec.score(rows), columns=list(self.names))


def _require(module: str, extra: str) -> Any:
    try:
        return __import__(module)
    except ImportError:
        raise UnsupportedError(f"scoring with {module} needs it installed: pip install \"{extra}\"") from None


__all__ = ["score_dask", "score_spark", "scoring", "Scoring", "SparkBatches", "aligned_chunks"]
