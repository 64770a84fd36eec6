"""Backend registry: target name -> how to emit it.  Backends only emit text; running
it in this process (compiling C, importing Python) is :mod:`mlpcodegen.runtime`'s."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Callable, Optional

import numpy as np

from ..core.errors import UnsupportedError, ValidationError
from ..core.ir import Dense, Network
from . import c, c_fixed, c_int8, go, java, js, latex, numba, numpy, python, rust, sympy, wasm
from .printer import UnwritableError

Emit = Callable[..., str]  # emit(net, *, dtype, name) -> source text


@dataclass(frozen=True)
class Backend:
    name: str
    suffix: str
    dtypes: tuple[str, ...]
    emit: Emit
    header: Optional[Emit] = None
    options: tuple[str, ...] = ()  # extra keyword options of emit (e.g. LaTeX digits)
    #: Fixed-point dtypes the target also prints (by another printer: C's q15).  Apart from
    #: ``dtypes`` so that what iterates over a target's floating-point types (tolerances in
    #: ULPs, every activation) is not handed a format with its own error bound.
    fixed_dtypes: tuple[str, ...] = ()
    header_file: Callable[[str], str] = lambda output: str(Path(output).with_suffix(".h"))  # where --header writes

    @property
    def supported(self) -> tuple[str, ...]:
        """Every dtype ``emit`` takes for this target."""
        return self.dtypes + self.fixed_dtypes


#: dtype -> the printer module of the C that is not the float C (q15's fixed point, int8's LiteRT kernels).
C_PRINTERS: dict[str, ModuleType] = {dtype: printer for printer in (c_fixed, c_int8) for dtype in printer.DTYPES}
#: dtype -> (emit, header) of those printers.
C_BY_DTYPE: dict[str, tuple[Emit, Emit]] = {dtype: printer.EMITTERS for dtype, printer in C_PRINTERS.items()}


def c_printer(dtype: str) -> ModuleType:
    """The C printer module that emits ``dtype`` (its ``signature`` and ``stack_bytes``
    describe what it emits): the fixed-point or int8 printer for those dtypes, else the float C."""
    return C_PRINTERS.get(dtype, c)


#: Options only the fixed-point printers read (the input domain their formats are planned for).
FIXED_OPTIONS = ("domain", "rounding")  # rounding: int8's requantisation (single or double)


def _c_part(part: int) -> Emit:
    """The C emit (``part`` 0) or header (1) for the dtype asked: the float C's, or the
    fixed-point printer's by :data:`C_BY_DTYPE`; a float dtype ignores ``domain``."""
    floats = (c.emit_c, c.emit_c_header)[part]

    def run(net: Network, *, dtype: str = c.DTYPES[0], domain: object = None, **options: object) -> str:
        if dtype not in c_int8.DTYPES:
            options.pop("rounding", None)
        fixed = C_BY_DTYPE.get(dtype)
        return fixed[part](net, dtype=dtype, domain=domain, **options) if fixed else floats(net, dtype=dtype,
                                                                                                **options)
    return run


BACKENDS: dict[str, Backend] = {
    "c": Backend("c", ".c", c.DTYPES, _c_part(0), _c_part(1), options=c.OPTIONS + FIXED_OPTIONS,
                 fixed_dtypes=c_fixed.DTYPES + c_int8.DTYPES),
    "numba": Backend("numba", ".py", numba.DTYPES, numba.emit_numba),
    "numpy": Backend("numpy", ".py", numpy.DTYPES, numpy.emit_numpy),
    "python": Backend("python", ".py", python.DTYPES, python.emit_python),
    "sympy": Backend("sympy", ".py", sympy.DTYPES, sympy.emit_sympy, options=("rational",)),
    "js": Backend("js", ".mjs", js.DTYPES, js.emit_js, js.emit_js_types, header_file=js.types_file),
    "rust": Backend("rust", ".rs", rust.DTYPES, rust.emit_rust),
    "go": Backend("go", ".go", go.DTYPES, go.emit_go),
    "java": Backend("java", ".java", java.DTYPES, java.emit_java),
    "wasm": Backend("wasm", ".mjs", wasm.DTYPES, wasm.emit_wasm),
    "latex": Backend("latex", ".tex", latex.DTYPES, latex.emit_latex, options=("digits", "expand", "layout")),
}


def get_backend(target: str) -> Backend:
    try:
        return BACKENDS[target]
    except KeyError:
        raise UnsupportedError(
            f"unknown target {target!r}; available targets: {', '.join(BACKENDS)}"
        ) from None


def emit(net: Network, target: str = "c", *, dtype: Optional[str] = None, name: str = "mlp",
         **options: object) -> str:
    """Source text of ``net`` for ``target`` (``dtype`` defaults to the target's first)."""
    backend = get_backend(target)
    dtype = dtype or backend.dtypes[0]
    if dtype not in backend.supported:
        raise UnsupportedError(f"target {target!r} supports dtypes {backend.supported}, not {dtype!r}")
    unknown = set(options) - set(backend.options)
    if unknown:
        raise UnsupportedError(f"target {target!r} has no option(s) {sorted(unknown)}; it takes {backend.options}")
    try:
        return backend.emit(net, dtype=dtype, name=name, **options)
    except UnwritableError as error:  # the one line also says what else the target cannot write
        lacking = ", ".join(activations_lacking(target, dtype))
        raise UnsupportedError(f"{error}; target {target} {dtype} writes every activation but {lacking} "
                               "(docs/supported.md: every target's)") from None


@lru_cache(maxsize=64)
def activations_lacking(target: str, dtype: str) -> tuple[str, ...]:
    """The activations (as docs/supported.md labels them) ``target`` cannot write in a float
    ``dtype``: found by emitting a one-layer probe with each, as generated/regenerate.py
    finds the page's matrix; only asked when a layer was refused."""
    from ..core.activations import REGISTRY
    from ..core.ir import Activation
    from ._closed_form import activation_label

    backend = get_backend(target)
    lacking = []
    for name, spec in REGISTRY.items():
        variants = [{"approximate": 1.0}, {"approximate": 0.0}] if name == "gelu" else [{}]
        for params in variants:
            units = 4 if spec.halves else 2
            params = {**params, **{key: (0.2,) * units for key in spec.per_unit}}
            if name == "threshold":
                params = {"threshold": 0.1, "default_value": -1.0}
            activation = Activation(name, tuple(sorted(params.items())))
            kernel = np.array([[0.5, -0.25, 0.75, -1.0], [0.25, 0.5, -0.5, 1.0]])[:, :units]
            probe = Network(2, (Dense(kernel, np.zeros(units), activation, "probe"),), name="probe")
            try:
                backend.emit(probe, dtype=dtype, name="probe")
            except UnsupportedError:
                lacking.append(activation_label(activation))
    return tuple(lacking)


def check_name(target: str, name: str) -> str:
    """``name`` if ``target`` accepts it as the function name, else the target's own
    ValidationError saying why: emitted for a 1-1 probe network, so every check the target
    makes (keywords, reserved C names, its own locals' patterns) applies and no list of them
    is kept twice.  Cheap: the command line checks a ``--name`` before reading the model."""
    probe = Network(1, (Dense(np.ones((1, 1)), np.zeros(1), name="probe"),))
    backend = get_backend(target)
    backend.emit(probe, dtype=backend.dtypes[0], name=name)
    if backend.header is not None:
        backend.header(probe, dtype=backend.dtypes[0], name=name)
    return name


@lru_cache(maxsize=256)
def name_is_usable(target: str, name: str) -> bool:
    """Whether ``target`` accepts ``name`` as the function name (:func:`check_name`)."""
    try:
        check_name(target, name)
    except ValidationError:
        return False
    return True
