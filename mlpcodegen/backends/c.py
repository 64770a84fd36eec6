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

import numpy as np

from ..ir import Dense, Layer, Network
from ._text import HEADER, Lines, check_identifier, float_digits

#: dtype -> C spelling of the type, literal suffix and libm functions.
C_TYPES: dict[str, dict[str, str]] = {
    "float32": {"T": "float", "suffix": "f", "tanh": "tanhf", "exp": "expf"},
    "float64": {"T": "double", "suffix": "", "tanh": "tanh", "exp": "exp"},
}

#: element-wise activation -> C expression of the pre-activation ``{z}``.
#: The sum is written inline only where ``{z}`` is a whole argument, ``f({z})``;
#: anywhere else it is named first, so operator precedence can never bite.
C_ACTIVATIONS: dict[str, str] = {
    "linear": "{z}",
    "relu": "{z} > {zero} ? {z} : {zero}",
    "tanh": "{tanh}({z})",
    "sigmoid": "{one} / ({one} + {exp}(-{z}))",
}

DTYPES = tuple(C_TYPES)
#: Names a function may not take: the parameters, the libm functions used, and
#: (by pattern) the locals h1_0, z1_0, e1_0, m1, s1.
_TAKEN = frozenset({"x", "y", "n", "i", "main"} | {f for table in C_TYPES.values() for f in table.values()})
_LOCALS = r"[hzems]\d+(_\d+)?"
_TERMS_PER_LINE = 4


def literal(value: float, dtype: str) -> str:
    """An exact C floating constant (float32 with an ``f`` suffix)."""
    return float_digits(value, dtype) + C_TYPES[dtype]["suffix"]


def _words(dtype: str) -> dict[str, str]:
    words = dict(C_TYPES[dtype])
    words.update(zero=literal(0.0, dtype), one=literal(1.0, dtype))
    return words


def signature(net: Network, dtype: str, name: str) -> list[str]:
    """The two prototypes (without ``;``) every C output defines."""
    t = C_TYPES[dtype]["T"]
    return [
        f"void {name}(const {t} *x, {t} *y)",
        f"void {name}_batch(const {t} *x, {t} *y, size_t n)",
    ]


def affine_terms(weights: np.ndarray, inputs: list[str], bias: float | None, dtype: str) -> list[str]:
    """``w0*x0``, ``+ w1*x1``, ..., ``+ b`` with signs pulled out of the literals.

    ``a - w*x`` equals ``a + (-w)*x`` exactly in IEEE arithmetic, so writing the
    sign as an operator changes no result, only readability.
    """
    terms = [f"{literal(abs(w), dtype)}*{source}" for w, source in zip(weights, inputs)]
    signs = [bool(np.signbit(w)) for w in weights]
    if bias is not None:
        terms.append(literal(abs(bias), dtype))
        signs.append(bool(np.signbit(bias)))
    first = ("-" if signs[0] else "") + terms[0]
    return [first] + [("- " if s else "+ ") + t for s, t in zip(signs[1:], terms[1:])]


def _wrap(prefix: str, terms: list[str], suffix: str, lines: Lines) -> None:
    """Emit ``prefix terms... suffix`` over lines of a few terms each."""
    chunks = [" ".join(terms[i : i + _TERMS_PER_LINE]) for i in range(0, len(terms), _TERMS_PER_LINE)]
    if len(chunks) == 1:
        lines.add(prefix + chunks[0] + suffix)
        return
    lines.add(prefix + chunks[0])
    continuation = " " * len(prefix)
    for chunk in chunks[1:-1]:
        lines.add(continuation + chunk)
    lines.add(continuation + chunks[-1] + suffix)


def _preactivations(layer: Layer, inputs: list[str], dtype: str) -> list[list[str]]:
    if not isinstance(layer, Dense):
        return [[source] for source in inputs]
    biases = layer.bias if layer.bias is not None else [None] * layer.n_out
    return [affine_terms(layer.kernel[:, j], inputs, biases[j], dtype) for j in range(layer.n_out)]


def _emit_elementwise(layer: Layer, index: int, sums: list[list[str]], dtype: str, lines: Lines) -> list[str]:
    words, t = _words(dtype), C_TYPES[dtype]["T"]
    template = C_ACTIVATIONS[layer.activation.name]
    outputs = []
    for j, terms in enumerate(sums):
        out = f"h{index}_{j}"
        if template != "{z}" and "({z})" not in template:
            _wrap(f"const {t} z{index}_{j} = ", terms, ";", lines)
            lines.add(f"const {t} {out} = " + template.format(z=f"z{index}_{j}", **words) + ";")
        elif template == "{z}":
            _wrap(f"const {t} {out} = ", terms, ";", lines)
        else:
            head, tail = template.split("{z}")
            _wrap(f"const {t} {out} = " + head.format(**words), terms, tail.format(**words) + ";", lines)
        outputs.append(out)
    return outputs


def _emit_softmax(layer: Layer, index: int, sums: list[list[str]], dtype: str, lines: Lines) -> list[str]:
    """Softmax with the maximum subtracted first, so exp never overflows."""
    words, t = _words(dtype), C_TYPES[dtype]["T"]
    z = [f"z{index}_{j}" for j in range(len(sums))]
    for name, terms in zip(z, sums):
        _wrap(f"const {t} {name} = ", terms, ";", lines)
    lines.add(f"{t} m{index} = {z[0]};")
    for name in z[1:]:
        lines.add(f"if ({name} > m{index}) m{index} = {name};")
    for j, name in enumerate(z):
        lines.add(f"const {t} e{index}_{j} = {words['exp']}({name} - m{index});")
    _wrap(f"const {t} s{index} = ", [("+ " if j else "") + f"e{index}_{j}" for j in range(len(z))], ";", lines)
    outputs = [f"h{index}_{j}" for j in range(len(z))]
    for j, out in enumerate(outputs):
        lines.add(f"const {t} {out} = e{index}_{j} / s{index};")
    return outputs


#: vector activation -> emitter; everything else goes through C_ACTIVATIONS.
C_VECTOR_ACTIVATIONS = {"softmax": _emit_softmax}


def _layer_comment(layer: Layer, index: int) -> str:
    kind = "dense" if isinstance(layer, Dense) else "activation"
    return f"/* layer {index} ({layer.name}): {kind} {layer.n_in} -> {layer.n_out}, {layer.activation.name} */"


def _emit_body(net: Network, dtype: str, lines: Lines) -> None:
    sources = [f"x[{i}]" for i in range(net.n_inputs)]
    for index, layer in enumerate(net.layers, start=1):
        lines.add(_layer_comment(layer, index))
        sums = _preactivations(layer, sources, dtype)
        emit = C_VECTOR_ACTIVATIONS.get(layer.activation.name, _emit_elementwise)
        sources = emit(layer, index, sums, dtype, lines)
    # Outputs are stored only after every input has been read: x and y may overlap.
    for j, source in enumerate(sources):
        lines.add(f"y[{j}] = {source};")


def _file_comment(net: Network, dtype: str, name: str) -> list[str]:
    return [
        f"/* {HEADER}",
        f" * network {net.name}: {net.describe()}, {net.weight_dtype} weights",
        f" * {name}(x, y): one sample, x[{net.n_inputs}] -> y[{net.n_outputs}], {C_TYPES[dtype]['T']}",
        f" * {name}_batch(x, y, n): n samples, row-major x[n][{net.n_inputs}] -> y[n][{net.n_outputs}]",
        " * Reentrant: no globals, no allocation.  Needs <math.h> (link with -lm). */",
    ]


def emit_c(net: Network, *, dtype: str = "float32", name: str = "mlp") -> str:
    """C99 source defining ``name`` (one sample) and ``name_batch`` (row-major batch)."""
    check_identifier(name, _TAKEN, _LOCALS)
    if dtype not in C_TYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    single, batch = signature(net, dtype, name)
    lines = Lines().add(*_file_comment(net, dtype, name), "#include <math.h>", "#include <stddef.h>", "")
    lines.add(single, "{")
    lines.level = 1
    _emit_body(net, dtype, lines)
    lines.level = 0
    lines.add("}", "", batch, "{")
    lines.level = 1
    lines.add("size_t i;", "for (i = 0; i < n; ++i) {")
    lines.level = 2
    lines.add(f"{name}(x + i * {net.n_inputs}u, y + i * {net.n_outputs}u);")
    lines.level = 1
    lines.add("}")
    lines.level = 0
    lines.add("}")
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



def load(net: Network, *, dtype: str = "float32", name: str = "mlp"):
    """Emit, compile through cffi (cached) and return a :class:`CompiledNetwork`."""
    from ..harness.cffi_build import CompiledNetwork, build_module

    module = build_module(emit_c(net, dtype=dtype, name=name), cdef(net, dtype, name))
    return CompiledNetwork(module, name, net.n_inputs, net.n_outputs, dtype)
