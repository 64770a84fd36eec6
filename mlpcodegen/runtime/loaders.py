"""Target name -> how to run what its backend emits in this process, in one table.

A loader emits through the backend registry (the same text ``mlpcodegen convert``
writes) and turns it into a callable over NumPy arrays: one sample (1-D) gives one
output row, a batch (2-D) gives one row per sample.  C is compiled with cffi
(:mod:`.cffi_build`); the Python-family targets are imported from a cached file
(:mod:`.pymodule`); SymPy's expressions are evaluated numerically, never executed.
LaTeX does not run.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from ..backends import c_printer, emit, get_backend
from ..core.errors import UnsupportedError, ValidationError
from ..core.ir import Network
from ..core.numeric import NumericType, numeric_type
from .numba_runtime import load_numba
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
    options (:func:`~.cffi_build.network_key`): a hit emits nothing."""
    from .cffi_build import CompiledNetwork, build_network

    options = {"unroll": unroll, "math": math, **options}
    domain = options.pop("domain", None)
    if numeric.plans_domain:  # q15's formats are planned for the domain: part of what is built
        from ..core.fixed import as_domain

        options["domain"] = tuple(tuple(float(v) for v in side) for side in as_domain(net.n_inputs, domain))
    parts = ("c", net, numeric.name, name, options)
    module, native = build_network(parts, lambda module: _c_source(net, numeric, name, options, module))
    return CompiledNetwork(module, name, net.n_inputs, net.n_outputs, numeric,
                           description=net.describe(), math=math, native=native, recipe=parts)


def _c_source(net: Network, numeric: NumericType, name: str, options: dict, module: str) -> tuple[str, str]:
    """(source, cdef) of the library ``module``: the emitted C, then the native entry points."""
    from ..backends.numba import work_per_row
    from .cffi_build import native_source

    printer = c_printer(numeric.name)
    source = emit(net, "c", dtype=numeric.name, name=name, **options)
    profile = {"profile": options["profile"]} if "profile" in options else {}
    cdef = "".join(proto + ";\n" for proto in printer.signature(net, numeric.name, name, **profile))
    native = native_source(module, name, numeric, net.n_inputs, net.n_outputs, cdef=cdef,
                           work_per_row=work_per_row(net),
                           stack=printer.stack_bytes(net, numeric.name, str(options["unroll"]))["batch"])
    return source + native, cdef


def _import(net: Network, target: str, numeric: NumericType, name: str) -> Any:
    from .pymodule import import_generated

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


def compile_c(net: Network, *, dtype: "str | NumericType" = "float32", name: str = "mlp",
              unroll: str = "auto", math: str = "fast", outside: str = "warn", **options: object) -> Any:
    """``net`` as C compiled through cffi (cached by the IR's content hash, the options
    and the toolchain: a hit emits nothing): a
    :class:`~mlpcodegen.runtime.cffi_build.CompiledNetwork`, whose call is the library's
    native ``predict(x, *, out=None, threads=None)``.

    ``dtype="q15"``: the Q15 fixed-point C (:mod:`mlpcodegen.backends.c_fixed`) planned
    for inputs in ``domain=(low, high)`` (required: each side a number or one per input),
    called through its float wrapper: it takes and returns float32 like the float
    predictors.  Outside the domain the C saturates; the predictor (a
    :class:`DomainChecked`) says so: ``outside="warn"`` (once), ``"raise"`` or ``"ignore"``."""
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
