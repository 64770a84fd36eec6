"""Target name -> how to run what its backend emits in this process, in one table.

A loader emits through the backend registry (the same text ``mlpcodegen convert``
writes) and turns it into a callable over NumPy arrays: one sample (1-D) gives one
output row, a batch (2-D) gives one row per sample.  C is compiled with cffi
(:mod:`.cffi_build`) and called through :mod:`.predictor`; the Python-family targets are
imported from a cached file (:mod:`.pymodule`); SymPy's expressions are evaluated
numerically, never executed.  LaTeX does not run.

The top of the runtime: every other runtime module sits below this registry and none
imports it (a pickled C predictor is rebuilt by :func:`rebuild_predictor`, which the
registry hands to each predictor it makes).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from ..backends import c_printer, emit, get_backend
from ..backends.c_batch import block_plan
from ..core.errors import UnsupportedError, ValidationError
from ..core.ir import Network
from ..core.numeric import NumericType, numeric_type
from .cache import keep_recent
from .cffi_build import build_network
from .native import native_source
from .numba_runtime import load_numba
from .predictor import OUTSIDE, CompiledNetwork, DomainChecked
from .pymodule import import_generated
from .subprocess_peer import TOOLCHAINS, loader as subprocess_loader

Predictor = Callable[[Any], np.ndarray]


@dataclass(frozen=True)
class Loader:
    """How one target runs: ``run(net, numeric, name, **options) -> predictor``;
    ``options`` are the target's emit options that change what runs (C's unroll, math)."""

    run: Callable[..., Predictor]
    options: tuple[str, ...] = ()
    #: whether its predictor takes ``threads=`` (rows split over threads; Dask passes it,
    #: else every worker thread would start the target's whole pool)
    threads: bool = False


def _load_c(net: Network, numeric: NumericType, name: str, *, unroll: str = "auto",
            math: str = "fast", **options: object) -> Predictor:
    """Compile through cffi (cached) and wrap in a :class:`CompiledNetwork` calling the
    library's native entry points.  The cache is keyed on the IR's content and the
    options (:func:`~.cache_key.network_key`): a hit emits nothing."""
    options = {"unroll": unroll, "math": math, **options}
    domain = options.pop("domain", None)
    if numeric.plans_domain:  # q15's formats are planned for the domain: part of what is built
        from ..core.fixed import as_domain

        options["domain"] = tuple(tuple(float(v) for v in side) for side in as_domain(net.n_inputs, domain))
    parts = ("c", net, numeric.name, name, options)
    module, native = build_network(parts, lambda module: _c_source(net, numeric, name, options, module))
    return CompiledNetwork(module, name, net.n_inputs, net.n_outputs, numeric,
                           description=net.describe(), math=math, native=native, recipe=parts,
                           rebuild=rebuild_predictor)


def _c_source(net: Network, numeric: NumericType, name: str, options: dict, module: str) -> tuple[str, str]:
    """(source, cdef) of the library ``module``: the emitted C, then the native entry points."""
    from ..backends.numba import work_per_row

    printer = c_printer(numeric.name)
    source = emit(net, "c", dtype=numeric.name, name=name, **options)
    profile = {"profile": options["profile"]} if "profile" in options else {}
    prototypes = printer.signature(net, numeric.name, name, **profile)
    cdef = "".join(proto + ";\n" for proto in prototypes)
    if any(f"{name}_batch_ws(" in proto for proto in prototypes):  # its workspace size, read from the source
        cdef += f"#define {name}_BATCH_WORK ...\n"
    native = native_source(module, name, numeric, net.n_inputs, net.n_outputs, cdef=cdef,
                           work_per_row=work_per_row(net), lanes=block_plan(net, numeric.name).lanes,
                           stack=printer.stack_bytes(net, numeric.name, str(options["unroll"]))["batch"])
    return source + native, cdef


def _import(net: Network, target: str, numeric: NumericType, name: str) -> Any:
    return import_generated(emit(net, target, dtype=numeric.name, name=name), target)


def _load_numpy(net: Network, numeric: NumericType, name: str) -> Predictor:
    function = getattr(_import(net, "numpy", numeric, name), name)

    def call(x):
        x = np.asarray(x)
        return function(x[None, :])[0] if x.ndim == 1 else function(x)

    return call


def _load_python(net: Network, numeric: NumericType, name: str) -> Predictor:
    module = _import(net, "python", numeric, name)
    single, batch = getattr(module, name), getattr(module, name + "_batch")
    np_dtype = numeric.np_dtype

    def call(x):
        x = np.asarray(x, dtype=np_dtype)
        return np.array(single(x) if x.ndim == 1 else batch(x), dtype=np_dtype).reshape(
            (net.n_outputs,) if x.ndim == 1 else (len(x), net.n_outputs))

    return call


def _load_sympy(net: Network, numeric: NumericType, name: str) -> Predictor:
    """The expressions the module holds (built in-process as the backend prints them,
    Piecewise, Max and Min unevaluated), evaluated in float64 NumPy."""
    from ..backends.sympy import evaluate_expressions, network_expressions

    inputs, outputs = network_expressions(net, evaluate=False)

    def call(x):
        x = np.asarray(x, dtype=np.float64)
        result = evaluate_expressions(outputs, inputs, x)
        return result[0] if x.ndim == 1 else result

    return call


#: target -> loader: the targets that run in this process.
LOADERS: dict[str, Loader] = {
    "c": Loader(_load_c, options=get_backend("c").options, threads=True),  # unroll, math (any later C option)
    "numba": Loader(load_numba, threads=True),
    "numpy": Loader(_load_numpy),
    "python": Loader(_load_python),
    "sympy": Loader(_load_sympy),
}
#: target -> loader of the languages built by their own toolchain and run as a subprocess
#: (js, rust, go, java, wasm: :mod:`.subprocess_peer`); load and verify take them too.
SUBPROCESS_LOADERS: dict[str, Loader] = {target: Loader(subprocess_loader(target)) for target in TOOLCHAINS}


def get_loader(target: str) -> Loader:
    """The loader of ``target``; an unknown or non-running target is a clear error."""
    loader = LOADERS.get(target) or SUBPROCESS_LOADERS.get(target)
    if loader is None:
        get_backend(target)  # an unknown target: the registry's error, listing them all
        raise UnsupportedError(f"target {target!r} does not run in this process; targets that do: "
                               f"{', '.join(LOADERS)}")
    return loader


def load(net: Network, target: str, *, dtype: "str | NumericType | None" = None, name: str = "mlp",
         **options: object) -> Predictor:
    """``net`` emitted for ``target`` and made a callable over NumPy arrays (one sample
    or a batch of rows).  ``dtype`` defaults to the target's first, as in
    :func:`mlpcodegen.backends.emit`; ``options`` are the target's run options
    (:attr:`Loader.options`: ``unroll`` and ``math`` for C)."""
    loader = get_loader(target)
    numeric = _numeric(target, dtype)
    check_options(target, loader, options)
    return loader.run(net, numeric, name, **options)


def check_options(target: str, loader: Loader, options: dict) -> None:
    """Refuse the ``options`` that ``target``'s loader does not take, naming the ones it does."""
    unknown = set(options) - set(loader.options)
    if unknown:
        raise UnsupportedError(f"target {target!r} has no run option(s) {sorted(unknown)}; "
                               f"it takes {loader.options}")


def _numeric(target: str, dtype: "str | NumericType | None") -> NumericType:
    """The numeric type ``target`` runs in: ``dtype`` if the target supports it."""
    supported = get_backend(target).supported
    wanted = supported[0] if dtype is None else getattr(dtype, "name", dtype)
    if wanted not in supported:
        raise UnsupportedError(f"target {target!r} supports dtypes {supported}, not {wanted!r}")
    return numeric_type(wanted)


def compile_c(net: Network, *, dtype: "str | NumericType" = "float32", name: str = "mlp",
              unroll: str = "auto", math: str = "fast", outside: str = "warn", **options: object) -> Any:
    """``net`` as C compiled through cffi (cached by the IR's content hash, the options
    and the toolchain: a hit emits nothing): a
    :class:`~mlpcodegen.runtime.predictor.CompiledNetwork`, whose call is the library's
    native ``predict(x, *, out=None, threads=None)``.

    ``dtype="q15"``: the Q15 fixed-point C (:mod:`mlpcodegen.backends.c_fixed`) planned
    for inputs in ``domain=(low, high)`` (required: each side a number or one per input),
    called through its float wrapper: it takes and returns float32 like the float
    predictors.  Outside the domain the C saturates; the predictor (a
    :class:`~.predictor.DomainChecked`) says so: ``outside="warn"`` (once), ``"raise"`` or ``"ignore"``."""
    numeric = _numeric("c", dtype)
    if not numeric.plans_domain:  # floats, and int8 (its scales are the model's)
        return load(net, "c", dtype=dtype, name=name, unroll=unroll, math=math, **options)
    from ..core.fixed import as_domain

    if outside not in OUTSIDE:
        raise ValidationError(f"outside= is one of {', '.join(OUTSIDE)}, not {outside!r}")
    low, high = as_domain(net.n_inputs, options.get("domain"))  # required: no silent [-1, 1]
    predictor = load(net, "c", dtype=dtype, name=name, unroll=unroll, math=math, **options)
    return DomainChecked(predictor, low, high, outside)


def run_options(target: str) -> tuple[str, ...]:
    """The emit options that change what ``target`` runs (none for non-running targets)."""
    loader: Optional[Loader] = LOADERS.get(target)
    return loader.options if loader is not None else ()


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
