"""C99 backend: the network as an unrolled closed form.

Every neuron is one statement with its weights as exact literals; no loops, no weight
arrays, no globals, no allocation.  The file needs ``<math.h>`` and the freestanding
``<stddef.h>`` only, and compiles warning-free with
``gcc -std=c99 -Wall -Wextra -Wpedantic -Wconversion -Wdouble-promotion -Werror``.

>>> import numpy as np
>>> from mlpcodegen.ir import Network, Dense, Activation
>>> net = Network(1, (Dense(np.array([[0.5]]), np.array([0.25]), Activation("tanh")),))
>>> print(emit_c(net, dtype="float32", name="f").splitlines()[-11])
    const float h1_0 = tanhf(0.5f*x[0] + 0.25f);
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..activations import REGISTRY
from ..ir import Dense, Layer, Network
from ._closed_form import Language, TextOps, activate_statements, emit_layer, is_atom, layer_comment, strip_parens
from ._text import HEADER, Lines, check_identifier, float_digits

#: dtype -> C spelling of the type, literal suffix and libm function suffix.
C_TYPES: dict[str, dict[str, str]] = {
    "float32": {"T": "float", "suffix": "f", "f": "f"},
    "float64": {"T": "double", "suffix": "", "f": ""},
}

#: primitive -> C text over ``{a}``; ``{f}`` is the libm suffix (tanhf / tanh),
#: ``{zero}``/``{one}`` literals of the type.  sigmoid: exp(-a) overflows to inf for
#: very negative a, and 1/(1+inf) is the correct 0.
C_FUNCTIONS: dict[str, str] = {
    "abs": "fabs{f}({{a}})", "exp": "exp{f}({{a}})", "expm1": "expm1{f}({{a}})", "log": "log{f}({{a}})",
    "log1p": "log1p{f}({{a}})", "tanh": "tanh{f}({{a}})", "erf": "erf{f}({{a}})", "sqrt": "sqrt{f}({{a}})",
    "sigmoid": "({one} / ({one} + exp{f}(-{{a}})))",
    "softplus": "(log1p{f}(exp{f}(-fabs{f}({{a}}))) + fmax{f}({{a}}, {zero}))",
}

DTYPES = tuple(C_TYPES)
#: Names a function may not take: the parameters, the libm functions used, and
#: (by pattern) the locals h1_0, z1_0, e1_0, m1, s1.
_TAKEN = frozenset({"x", "y", "n", "i", "main", "j", "k"} | {
    name + suffix for name in ("fabs", "exp", "expm1", "log", "log1p", "tanh", "erf", "sqrt", "fmax", "fmin")
    for suffix in ("", "f")})
_LOCALS = r"[a-z]\d+(_\d+)?|hk|zj"


def literal(value: float, dtype: str) -> str:
    """An exact C floating constant (float32 with an ``f`` suffix)."""
    return float_digits(value, dtype) + C_TYPES[dtype]["suffix"]


def language(dtype: str) -> Language:
    """The C spelling of the closed form for ``dtype``."""
    t, f = C_TYPES[dtype]["T"], C_TYPES[dtype]["f"]
    zero, one = literal(0.0, dtype), literal(1.0, dtype)
    functions = {key: text.format(f=f, zero=zero, one=one) for key, text in C_FUNCTIONS.items()}

    def extremum(op: str, libm: str) -> Callable[[str, str], str]:
        # A ternary on names and literals compiles to one instruction; fmax is a call.
        return lambda a, b: f"({a} {op} {b} ? {a} : {b})" if is_atom(a) and is_atom(b) else f"{libm}{f}({a}, {b})"

    return Language(
        literal=lambda value: literal(value, dtype),
        functions=functions,
        where="({c} ? {a} : {b})",
        max2=extremum(">", "fmax"),
        min2=extremum("<", "fmin"),
        max_statement=lambda m, zs: [f"{t} {m} = {zs[0]};"] + [f"if ({z} > {m}) {m} = {z};" for z in zs[1:]],
        declare=f"const {t} ",
        end=";",
    )


def signature(net: Network, dtype: str, name: str) -> list[str]:
    """The prototypes (without ``;``) the C output defines: one sample, a batch and,
    for one-input one-output networks, ``T NAME_scalar(T x)`` (no arrays to pass)."""
    t = C_TYPES[dtype]["T"]
    prototypes = [
        f"void {name}(const {t} *x, {t} *y)",
        f"void {name}_batch(const {t} *x, {t} *y, size_t n)",
    ]
    if net.n_inputs == net.n_outputs == 1:
        prototypes.append(f"{t} {name}_scalar({t} x)")
    return prototypes


#: ``--unroll auto`` writes a Dense layer as loops over ``static const`` arrays above
#: this many weights, as the unrolled closed form at or below it.  Provisional: the
#: benchmark issue measures where unrolling stops paying.
UNROLL_MAX_WEIGHTS = 256
UNROLL_MODES = ("auto", "always", "never")


def _loops(layer: Layer, unroll: str) -> bool:
    """Whether ``layer`` is written as loops (Dense layers without per-unit parameters)."""
    if not isinstance(layer, Dense) or any(isinstance(v, tuple) for _, v in layer.activation.params):
        return False
    return unroll == "never" or (unroll == "auto" and layer.n_in * layer.units > UNROLL_MAX_WEIGHTS)


def _array(name: str, values: np.ndarray, dtype: str, t: str) -> list[str]:
    """``static const T name[..] = {...};``, a few literals per line (row per unit for 2-D)."""
    if values.ndim == 1:
        return [f"static const {t} {name}[{len(values)}] = {{{', '.join(literal(v, dtype) for v in values)}}};"]
    body = [f"    {{{', '.join(literal(v, dtype) for v in row)}}}" for row in values]
    return [f"static const {t} {name}[{values.shape[0]}][{values.shape[1]}] = {{"] + \
           [line + ("," if i < len(body) - 1 else "") for i, line in enumerate(body)] + ["};"]


def _emit_loop_layer(layer: Dense, index: int, sources: list[str], dtype: str, name: str,
                     lines: Lines, arrays: list[str]) -> list[str]:
    """z = h W + b as loops over an input-major ``static const`` kernel (Keras' own
    layout).  The inner loop runs over units: independent sums the compiler vectorises
    without reordering any sum, so each z[j] is still ((h0 w0j + h1 w1j) + ...) + b[j]."""
    t, lang = C_TYPES[dtype]["T"], language(dtype)
    w, b, z = f"{name}_W{index}", f"{name}_B{index}", f"z{index}"
    arrays += _array(w, layer.kernel, dtype, t)
    if layer.bias is not None:
        arrays += _array(b, layer.bias, dtype, t)
    source = sources[0].split("[")[0] if all(s == f"{sources[0].split('[')[0]}[{i}]" for i, s in enumerate(sources)) else None
    if source is None:  # the inputs are scalars from an unrolled layer: gather them
        source = f"v{index}"
        lines.add(f"const {t} {source}[{len(sources)}] = {{{', '.join(sources)}}};")
    zero, units = literal(0.0, dtype), f"{layer.units}u"
    lines.add(f"{t} {z}[{layer.units}];", "{", "    size_t j, k;",
              f"    for (j = 0; j < {units}; ++j) {z}[j] = {zero};",
              f"    for (k = 0; k < {layer.n_in}u; ++k) {{", f"        const {t} hk = {source}[k];",
              f"        for (j = 0; j < {units}; ++j) {z}[j] += {w}[k][j] * hk;", "    }")
    if layer.bias is not None:
        lines.add(f"    for (j = 0; j < {units}; ++j) {z}[j] += {b}[j];")
    lines.add("}")
    sums = [[f"{z}[{j}]"] for j in range(layer.units)]
    if layer.activation.is_vector or layer.activation.is_identity:
        return activate_statements(lang, layer, index, sums, lines) if not layer.activation.is_identity \
            else [f"{z}[{j}]" for j in range(layer.units)]
    text = strip_parens(REGISTRY[layer.activation.name].formula(TextOps(lang), "zj", layer.activation.unit_params(0)))
    h = f"h{index}"
    lines.add(f"{t} {h}[{layer.units}];", "{", "    size_t j;", f"    for (j = 0; j < {layer.units}u; ++j) {{",
              f"        const {t} zj = {z}[j];", f"        {h}[j] = {text};", "    }", "}")
    return [f"{h}[{j}]" for j in range(layer.units)]


def _emit_body(net: Network, dtype: str, name: str, unroll: str, lines: Lines, arrays: list[str]) -> None:
    lang = language(dtype)
    sources = [f"x[{i}]" for i in range(net.n_inputs)]
    for index, layer in enumerate(net.layers, start=1):
        shape = "loops" if _loops(layer, unroll) else "unrolled"
        lines.add(f"/* {layer_comment(layer, index)}; {shape} */")
        if shape == "loops":
            sources = _emit_loop_layer(layer, index, sources, dtype, name, lines, arrays)
        else:
            sources = emit_layer(lang, layer, index, sources, lines)
    # Outputs are stored only after every input has been read: x and y may overlap.
    for j, source in enumerate(sources):
        lines.add(f"y[{j}] = {source};")


def _file_comment(net: Network, dtype: str, name: str) -> list[str]:
    return [
        f"/* {HEADER}",
        f" * network {net.name}: {net.describe()}, {net.weight_dtype} weights",
        f" * {name}(x, y): one sample, x[{net.n_inputs}] -> y[{net.n_outputs}], {C_TYPES[dtype]['T']}",
        f" * {name}_batch(x, y, n): n samples, row-major x[n][{net.n_inputs}] -> y[n][{net.n_outputs}]",
        " * Reentrant: no mutable globals, no allocation.  Needs <math.h> (link with -lm). */",
    ]


def emit_c(net: Network, *, dtype: str = "float32", name: str = "mlp", unroll: str = "auto") -> str:
    """C99 source defining ``name`` (one sample) and ``name_batch`` (row-major batch).

    ``unroll``: ``"always"`` writes every layer as the closed form, ``"never"`` writes
    Dense layers as loops over ``static const`` arrays, ``"auto"`` unrolls layers of at
    most :data:`UNROLL_MAX_WEIGHTS` weights."""
    check_identifier(name, _TAKEN, _LOCALS)
    if dtype not in C_TYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    if unroll not in UNROLL_MODES:
        raise ValueError(f"unroll must be one of {UNROLL_MODES}, got {unroll!r}")
    single, batch = signature(net, dtype, name)[:2]
    body, arrays = Lines(), []
    body.level = 1
    _emit_body(net, dtype, name, unroll, body, arrays)
    lines = Lines().add(*_file_comment(net, dtype, name), "#include <math.h>", "#include <stddef.h>", "")
    if arrays:
        lines.add("/* weights of the layers written as loops: [input][unit] as in Keras, read-only */", *arrays, "")
    lines.add(single, "{")
    lines.extend(body)
    lines.add("}", "", batch, "{")
    lines.level = 1
    lines.add("size_t i;", "for (i = 0; i < n; ++i) {")
    lines.level = 2
    lines.add(f"{name}(x + i * {net.n_inputs}u, y + i * {net.n_outputs}u);")
    lines.level = 1
    lines.add("}")
    lines.level = 0
    lines.add("}")
    if net.n_inputs == net.n_outputs == 1:
        t = C_TYPES[dtype]["T"]
        lines.add("", signature(net, dtype, name)[2], "{", f"    {t} y;", f"    {name}(&x, &y);", "    return y;", "}")
    return str(lines)


def emit_c_header(net: Network, *, dtype: str = "float32", name: str = "mlp") -> str:
    """A header declaring the functions :func:`emit_c` defines."""
    check_identifier(name, _TAKEN, _LOCALS)
    guard = f"{name.upper()}_H"
    lines = Lines().add(*_file_comment(net, dtype, name), f"#ifndef {guard}", f"#define {guard}", "")
    lines.add("#include <stddef.h>", "")
    lines.add(*(proto + ";" for proto in signature(net, dtype, name)))
    lines.add("", f"#endif /* {guard} */")
    return str(lines)


def cdef(net: Network, dtype: str, name: str) -> str:
    """Declarations for cffi's ``ffi.cdef``."""
    return "\n".join(proto + ";" for proto in signature(net, dtype, name)) + "\n"



def load(net: Network, *, dtype: str = "float32", name: str = "mlp", unroll: str = "auto"):
    """Emit, compile through cffi (cached) and return a :class:`CompiledNetwork`."""
    from ..harness.cffi_build import CompiledNetwork, build_module

    module = build_module(emit_c(net, dtype=dtype, name=name, unroll=unroll), cdef(net, dtype, name))
    return CompiledNetwork(module, name, net.n_inputs, net.n_outputs, dtype)
