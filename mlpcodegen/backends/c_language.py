"""How C spells the expression graph: the libm table, exact literals, NaN-propagating
max/min, the :class:`~.printer.Language` for a numeric type and math mode, the prototypes
a file defines, and which function names it may take (C and C++ keywords, the names the
generated code uses itself, the C99 library's reserved names)."""
from __future__ import annotations

from typing import Callable

from ..core.errors import ValidationError
from ..core.ir import Network
from ..core.numeric import NUMERIC_TYPES, numeric_type
from . import c_math
from .c_batch import block_plan
from ._text import check_identifier
from .c_names import reserved_by
from .printer import Language, Printed, fill


#: primitive -> C text over ``{a}``; ``{f}`` is the libm suffix (tanhf / tanh),
#: ``{zero}``/``{one}`` literals of the type.  sigmoid: exp(-a) overflows to inf for
#: very negative a, and 1/(1+inf) is the correct 0.
C_FUNCTIONS: dict[str, str] = {
    "abs": "fabs{f}({{a}})", "exp": "exp{f}({{a}})", "expm1": "expm1{f}({{a}})", "log": "log{f}({{a}})",
    "log1p": "log1p{f}({{a}})", "tanh": "tanh{f}({{a}})", "erf": "erf{f}({{a}})", "sqrt": "sqrt{f}({{a}})",
    "sigmoid": "({one} / ({one} + exp{f}(-{{a}})))",
    "softplus": "(log1p{f}(exp{f}(-fabs{f}({{a}}))) + fmax{f}({{a}}, {zero}))",
}

DTYPES = tuple(NUMERIC_TYPES)
#: Names a function may not take: the parameters, the libm functions used, and
#: (by pattern) the locals h1_0, z1_0, e1_0, m1, s1.
_TAKEN = frozenset({"x", "y", "n", "i", "main", "j", "k", "l", "u", "acc", "wk",
                    "memcpy", "size_t", "int32_t", "uint32_t"} | {  # <string.h>, <stdint.h> with fast math
    name + suffix for name in ("fabs", "exp", "expm1", "log", "log1p", "tanh", "erf", "sqrt", "fmax", "fmin")
    for suffix in ("", "f")})
_LOCALS = r"[a-z]\d+(_\d+)?|hk|zj"
#: Names the generated file derives from NAME (W1/B1 stand for every layer's arrays).
DERIVED_SUFFIXES = ("_batch", "_scalar", "_block", "_dense", "_dense_rows", "_gemm", "_v", "_W1", "_B1", "_vwheref",
                    "_vwhere", "_nz", "_mul") + \
    tuple(f"_{flavour}{key}{suffix}" for key in ("exp", "expm1", "tanh", "sigmoid") for flavour in c_math.FLAVOURS
          for suffix in ("f", "")) + ("_P", "_L", "_N", "_keep", "_batch_ws", "_BATCH_WORK", "_rows")


def literal(value: float, dtype: str) -> str:
    """An exact C floating constant (float32 with an ``f`` suffix)."""
    return numeric_type(dtype).c_literal(value)


def _nan_extremum(op: str, where: str) -> Callable[[Printed, Printed], str]:
    """max (``op`` ">") or min ("<") that propagates NaN from either side, as TensorFlow's
    Maximum/Minimum and Keras' relu do (C's fmax(NaN, 0) is 0, and so is a bare
    ``a > b ? a : b``).  The arguments are pure expressions: writing one twice changes
    no result (compilers compute it once)."""
    return lambda a, b: fill(where, c=f"isnan({a}) | ({a} {op} {b})", a=a, b=b)


def _nan_extremum_short(op: str, where: str) -> Callable[[Printed, Printed], str]:
    """:func:`_nan_extremum` in one comparison when ``b`` is a constant (never NaN):
    ``!(a <= b) ? a : b`` is max(a, b) with a NaN ``a`` kept, ±0 as before.  relu's isnan
    test and second compare cost 4 of its 8 instructions per unit on Cortex-M4F (sine
    1-16-16-1: 888 -> ~760 instructions); on x86-64 gcc -O3 both spellings time the same
    (bench/REGRESSION.md): one spelling for every profile."""
    negated = {">": "<=", "<": ">="}[op]
    full = _nan_extremum(op, where)
    return lambda a, b: fill(where, c=f"!({a} {negated} {b})", a=a, b=b) if getattr(b, "number", False) \
        else full(a, b)


def language(dtype: str, math: str = "libm", name: str = "mlp", vector: bool = False,
             size: bool = False) -> Language:
    """The C spelling of the graph for ``dtype``; ``math="fast"`` calls the inline
    functions of :mod:`c_math` (prefixed ``name``; ``vector``: their flavour for the
    batch block loops, ``size``: their smallest one-sample flavour) where ``dtype`` has them."""
    kind = numeric_type(dtype)
    zero, one = kind.c_literal(0.0), kind.c_literal(1.0)
    functions = {key: text.format(f=kind.math_suffix, zero=zero, one=one) for key, text in C_FUNCTIONS.items()}
    where, needs = "({c} ? {a} : {b})", {}
    if math == "fast" and c_math.has_fast(kind.name):
        functions.update(c_math.fast_functions(name, vector, size, kind.name))
        needs = c_math.fast_needs(vector, size)
        where = c_math.fast_where(name, kind.name) if vector else where
    return Language(
        literal=kind.c_literal,
        functions=functions,
        where=where,
        max2=_nan_extremum_short(">", where),
        min2=_nan_extremum_short("<", where),
        max_statement=lambda m, zs: [f"{kind.c_type} {m} = {zs[0]};"] + [f"if ({z} > {m}) {m} = {z};" for z in zs[1:]],
        declare=f"const {kind.c_type} ",
        end=";",
        needs=needs,
        comment=lambda text: f"/* {text} */",
    )


def signature(net: Network, dtype: str, name: str, profile: str = "desktop") -> list[str]:
    """The prototypes (without ``;``) the C output defines: one sample, a batch (desktop
    profile only; wide networks, the rows layout, also take a batch with a caller's
    workspace: ``NAME_batch_ws``) and, for one-input one-output networks, ``T
    NAME_scalar(T x)`` (no arrays to pass)."""
    t = numeric_type(dtype).c_type
    prototypes = [f"void {name}(const {t} *x, {t} *y)"]
    if profile == "desktop":
        prototypes.append(f"void {name}_batch(const {t} *x, {t} *y, size_t n)")
        if block_plan(net, dtype).rows:
            prototypes.append(f"void {name}_batch_ws(const {t} *x, {t} *y, size_t n, void *work)")
    if net.n_inputs == net.n_outputs == 1:
        prototypes.append(f"{t} {name}_scalar({t} x)")
    return prototypes


def check_name(name: str, suffixes: tuple[str, ...] = ()) -> str:
    """``name`` if the generated functions may take it: an identifier, no keyword of C
    or C++, none of the names the generated code uses itself, and neither it nor a name
    derived from it (NAME_batch, NAME_W1..., and NAME + each of a printer's own
    ``suffixes``) reserved by the C99 library headers (see :mod:`c_names`).  Raises
    ValidationError saying why otherwise."""
    why = reserved_by(name) if isinstance(name, str) else None
    if why is not None:
        raise ValidationError(f"{name!r} {why}; choose another name such as predict")
    check_identifier(name, _TAKEN, _LOCALS)
    for suffix in (*DERIVED_SUFFIXES, *suffixes):
        why = reserved_by(name + suffix)
        if why is not None:
            raise ValidationError(f"name {name!r} would make {name + suffix!r}, which {why}; "
                                  "choose another name such as predict")
    return name


def usable_name(name: str) -> bool:
    """Whether :func:`check_name` accepts ``name`` (for a caller choosing a default)."""
    try:
        check_name(name)
    except ValidationError:
        return False
    return True
