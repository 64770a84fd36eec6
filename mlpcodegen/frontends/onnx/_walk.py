"""The graph walk: from the decoded description to the IR.  Constants are folded (a
Cast or Constant of constants), nodes off the path to the one output dropped, the graph's
input and output checked, then the value is followed node by node through the operator
table (:mod:`._ops`) or a multi-node form (:mod:`._patterns`)."""
from __future__ import annotations

import math
import re
from typing import Callable, Optional

import numpy as np

from ...core.errors import MlpCodegenError, ModelFormatError, UnsupportedError
from ...core.ir import Network
from ...core.limits import DEFAULT_LIMITS, LimitExceeded, ReadLimits
from ...core.passes import fold_affine, fuse_activations
from ...core.untrusted import quote_name
from .._onnx_cast import cast_constant, type_name
from ._chain import _Chain, _shape, _where
from ._ops import ML_OPS, _FORM_OPS, _ML_OPS, _OPS, _supported
from ._patterns import _FAN_OUTS, _HINTS, _OPENERS
from ._proto import _FLOAT_TYPES

MIN_OPSET = 9


# -- the walk


def _build(info: dict, label: str, fold: bool, limits: ReadLimits = DEFAULT_LIMITS) -> Network:
    try:
        net = _network(info, limits)
    except MlpCodegenError as exc:
        raise type(exc)(f"{label}: {exc}") from None
    except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:  # a malformed value unforeseen
        raise ModelFormatError(f"{label}: malformed ONNX graph ({type(exc).__name__}: {exc})") from None
    # fused again after folding: a folded BatchNormalization leaves Dense, relu adjacent
    return fuse_activations(fold_affine(fuse_activations(net))) if fold else fuse_activations(net)


def _network(info: dict, limits: ReadLimits) -> Network:
    opset = _opset(info)
    constants = {name: info["tensors"][key] for name, key in info["initializers"].items()}
    source = _input_name(info, constants)
    output, notes = _graph_output(info)
    nodes, failed = _fold_constants(info["nodes"], constants, info["tensors"])
    live = _needed(nodes, output, constants, source)
    _refuse_foreign(live, failed)
    dims, batched, input_notes = _graph_input(info, source, limits)
    chain = _Chain(opset, dims, batched, constants, current=source)
    n_inputs = chain.width
    consumers: dict[str, list[dict]] = {}
    for node in live:
        for name in dict.fromkeys(node["inputs"]):
            consumers.setdefault(name, []).append(node)
    visited = _walk(chain, consumers, output)
    left = [node for node in live if id(node) not in visited]
    if left:
        raise UnsupportedError(f"{_where(left[0])} is not on the chain from the input to the output (a second "
                               "input or a branch); only chains of dense layers are supported")
    if len(chain.sample) != 1:
        notes += (f"ONNX output {quote_name(output)} {_shape(chain.dims)}: returns each sample as {chain.width} values "
                  "flattened in C (row-major) order",)
    name = re.sub(r"\W", "_", info["name"]) if isinstance(info["name"], str) and info["name"] else "mlp"
    return Network(n_inputs, tuple(chain.layers), _weight_dtype(chain.dtypes), name,
                   (*input_notes, *notes, *chain.notes))


def _opset(info: dict) -> int:
    """The default domain's opset (9 or later); no domain's newer than onnx knows: the
    operators' meaning there is not known (ONNX Runtime refuses it too)."""
    opset = info["opset"].get("ai.onnx")
    if not isinstance(opset, int) or opset < MIN_OPSET:
        raise UnsupportedError(f"the model imports ONNX opset {opset}; opset {MIN_OPSET} or later is supported "
                               "(re-export with a newer opset)")
    for domain, version in info["opset"].items():
        known = info.get("known", {}).get(domain)
        if isinstance(known, int) and isinstance(version, int) and version > known:
            raise UnsupportedError(f"the model imports opset {version} of {quote_name(domain)!r}, newer than any "
                                   f"the installed onnx package knows (up to {known}): re-export with opset {known} "
                                   "or earlier (or upgrade onnx, if a newer release has that opset)")
    return opset


def _walk(chain: _Chain, consumers: dict, output: str) -> set:
    """Follow the chain's value from the input to ``output``, node by node (or through
    one recognised fan-out); the ids of the nodes read."""
    visited: set = set()
    while chain.current != output:
        users = consumers.get(chain.current, [])
        layers, node, done = _step(users, chain, consumers)
        if any(id(n) in visited for n in done):  # a hostile file's cycle must not loop forever
            raise ModelFormatError(f"{_where(node)} is reached twice: the graph has a cycle")
        chain.layers.extend(layers)
        _single_output(node, consumers, output)
        visited.update(id(n) for n in done)
        chain.current = node["outputs"][0]
    return visited


def _step(users: list[dict], chain: _Chain, consumers: dict) -> tuple[list, dict, list]:
    """(IR layers, the node whose first output is the chain's next value, nodes read)."""
    opener = _OPENERS.get(users[0]["op"]) if len(users) == 1 and users[0]["domain"] in ("", "ai.onnx") else None
    if len(users) == 1 and opener is None:
        return _reader(users[0])(users[0], chain), users[0], users
    standard = all(node["domain"] in ("", "ai.onnx") for node in users)
    forms = (opener,) if opener else _FAN_OUTS if len(users) > 1 and standard else ()
    readers = {id(node) for node in users}
    found = next((hit for hit in (form(users, chain, consumers) for form in forms)
                  if hit and readers <= {id(node) for node in hit[2]}), None)
    if found is None:
        named = ", ".join(_where(node) for node in users) or "nothing"
        hints = "".join(f" ({_HINTS[op]})" for op in dict.fromkeys(node["op"] for node in users) if op in _HINTS)
        raise UnsupportedError(f"value {quote_name(chain.current)!r} feeds {named}: a branch{hints}; only chains "
                               f"are supported: {_supported()}")
    if found[0] and found[0][-1].n_out != chain.width:  # GLU, Concat: on a flat value
        chain.width = found[0][-1].n_out
    return found


def _reader(node: dict) -> Callable[[dict, _Chain], list]:
    standard = node["domain"] in ("", "ai.onnx")
    reader = (_OPS if standard else _ML_OPS if node["domain"] == "ai.onnx.ml" else {}).get(node["op"])
    if reader is None:
        if node["domain"] == "ai.onnx.ml":
            raise UnsupportedError(f"{_where(node)} of domain 'ai.onnx.ml' is not an affine step, so not part of a "
                                   f"dense network; supported ai.onnx.ml operators: {', '.join(ML_OPS)}")
        domain = "" if standard else f" of domain {quote_name(node['domain'])!r}"
        raise UnsupportedError(f"{_where(node)}{domain} is not supported (not part of a dense network); supported "
                               f"operators: {_supported()}")
    return reader


def _refuse_foreign(live: list[dict], failed: dict) -> None:
    """Before any shape is looked at, the first node the output depends on that no dense
    network has (a Conv after an image input is named, not the input's shape), or a
    constant Cast that cannot be folded."""
    for node in live:
        if id(node) in failed:
            raise failed[id(node)]
        if not (node["domain"] in ("", "ai.onnx") and node["op"] in _FORM_OPS):
            _reader(node)


def _single_output(node: dict, consumers: dict, output: str) -> None:
    """Only a node's first output may be used (Dropout's mask, BatchNormalization's
    running statistics are training outputs)."""
    for extra in node["outputs"][1:]:
        if extra and (extra in consumers or extra == output):
            raise UnsupportedError(f"{_where(node)}: its output {quote_name(extra)!r} is used; only the first "
                                   "output of a node can be")
    if not node["outputs"]:
        raise ModelFormatError(f"{_where(node)} has no output")


def _input_name(info: dict, constants: dict) -> str:
    """The one graph input that is not an initializer."""
    inputs = [v for v in info["inputs"] if v["name"] not in constants]
    if len(inputs) != 1:
        names = ", ".join(repr(quote_name(v["name"])) for v in inputs) or "none"
        raise UnsupportedError(f"the graph has {len(inputs)} inputs ({names}); exactly one is supported")
    return inputs[0]["name"]


def _graph_input(info: dict, source: str, limits: ReadLimits) -> tuple[tuple, bool, tuple[str, ...]]:
    """(dims, batched, notes) of the input: (batch, features...) with fixed feature
    sizes, the batch any size (a fixed one too: each row is one sample); or [n], one
    sample (NNet style).  The sample's size is bounded like the weights: a few bytes of
    file could otherwise make the steps before the first Dense (a Mul by a scalar)
    allocate gigabytes."""
    value = next(v for v in info["inputs"] if v["name"] == source)
    dims, name = value["dims"], quote_name(source)
    if value["type"] not in _FLOAT_TYPES:
        raise UnsupportedError(f"the input {name!r} is not a floating-point tensor")
    sample = dims[1:] if dims and len(dims) > 1 else dims
    if not sample or not all(isinstance(d, int) and d >= 1 for d in sample):
        raise UnsupportedError(f"the input {name!r} has shape {_shape(dims)}; a (batch, features...) input with "
                               "fixed feature sizes, or a vector [n], is supported")
    width = math.prod(sample)
    if width > limits.max_weight_values:
        raise LimitExceeded(f"the input {name!r} declares {width:,} features, more than the "
                            f"{limits.max_weight_values:,} numbers read; if the model is genuine, raise the limit "
                            "(--max-size MIB)")
    if len(dims) == 1:
        return tuple(dims), False, (f"ONNX input {name} {_shape(dims)}: one sample, no batch axis",)
    batch = dims[0] if isinstance(dims[0], int) and dims[0] >= 1 else None
    notes = () if len(dims) == 2 else (f"ONNX input {name} {_shape(dims)}: takes each sample as {width} values "
                                       "flattened in C (row-major) order",)
    return (batch, *sample), True, notes


def _graph_output(info: dict) -> tuple[str, tuple[str, ...]]:
    """The one floating-point output; others (a classifier's label) are noted and ignored.
    Without one, the tensor a ZipMap (skl2onnx's classifier probabilities, as a sequence
    of maps) reads is converted, and the notes say so."""
    outputs = info["outputs"]
    chosen = [v["name"] for v in outputs if v["type"] in _FLOAT_TYPES]
    notes: list[str] = []
    if not chosen:
        zipped = [node for node in info["nodes"] if node["op"] == "ZipMap" and node["domain"] == "ai.onnx.ml"
                  and node["outputs"][:1] in ([v["name"]] for v in outputs) and len(node["inputs"]) == 1]
        if len(zipped) == 1:
            chosen, notes = [zipped[0]["inputs"][0]], [_zipmap_note(zipped[0])]
    if len(chosen) != 1:
        kinds = ", ".join(f"{quote_name(v['name'])!r} ({_kind(v)})" for v in outputs) or "none"
        raise UnsupportedError(f"the graph has {len(chosen)} floating-point tensor outputs (outputs: {kinds}); "
                               "exactly one is supported (or, without one, one ZipMap of the probabilities)")
    described = {zipped[0]["outputs"][0]} if notes else set()
    ignored = [quote_name(v["name"]) for v in outputs if v["name"] not in chosen and v["name"] not in described]
    if ignored:
        notes.insert(0, f"ONNX output(s) not converted (not floating point): {', '.join(ignored)}")
    return chosen[0], tuple(notes)


def _kind(value: dict) -> str:
    if value["type"] is None:
        return "not a tensor"
    return f"a {type_name(value['type'])} tensor" if isinstance(value["type"], int) else "unknown"


def _zipmap_note(node: dict) -> str:
    labels = node["attrs"].get("classlabels_int64s", node["attrs"].get("classlabels_strings", []))
    labels = labels if isinstance(labels, list) else []
    shown = ", ".join(quote_name(label) for label in labels[:8]) + (f", ... ({len(labels)})" if len(labels) > 8 else "")
    return (f"ZipMap output {quote_name(node['outputs'][0])}: its input {quote_name(node['inputs'][0])} is "
            f"converted, one output per class [{shown}]")


def _fold_constants(nodes: list[dict], constants: dict, tensors: dict) -> tuple[list[dict], dict]:
    """Constant nodes (and Identity/Cast of constants) become constants; the rest stay.
    A Cast that cannot be folded stays a node, its error kept (raised if it is needed)."""
    rest, failed = [], {}
    for node in nodes:
        try:
            value = _constant_value(node, constants, tensors)
        except MlpCodegenError as exc:
            failed[id(node)], value = exc, None
        if value is None:
            rest.append(node)
        else:
            constants[node["outputs"][0]] = value
    return rest, failed


def _constant_value(node: dict, constants: dict, tensors: dict) -> Optional[tuple]:
    if node["domain"] not in ("", "ai.onnx") or len(node["outputs"]) != 1:
        return None
    if node["op"] in ("Identity", "Cast") and len(node["inputs"]) == 1 and node["inputs"][0] in constants:
        array, dtype = constants[node["inputs"][0]]
        return (array, dtype) if node["op"] == "Identity" else _cast(node, array, dtype)
    if node["op"] == "Transpose" and len(node["inputs"]) == 1 and node["inputs"][0] in constants:
        return _transposed(node, *constants[node["inputs"][0]])
    if node["op"] != "Constant":
        return None
    attrs = node["attrs"]
    if isinstance(attrs.get("value"), dict) and "tensor" in attrs["value"]:
        return tensors[attrs["value"]["tensor"]]
    for key, dtype in (("value_float", "float32"), ("value_floats", "float32"), ("value_int", "int64"),
                       ("value_ints", "int64")):
        if key in attrs:
            return np.asarray(attrs[key], dtype=np.float64), dtype
    raise UnsupportedError(f"{_where(node)}: a Constant of an unsupported kind ({', '.join(map(quote_name, attrs))})")


def _transposed(node: dict, array: Optional[np.ndarray], dtype: str) -> Optional[tuple]:
    """A Transpose of a constant (torch.onnx.export's do_constant_folding=False leaves the
    weights of a MatMul transposed by a node), applied as ONNX does: perm, or the axes reversed."""
    if array is None:
        return None
    perm = node["attrs"].get("perm", list(reversed(range(array.ndim))))
    if not isinstance(perm, list) or sorted(perm) != list(range(array.ndim)):
        raise ModelFormatError(f"{_where(node)}: perm {perm!r} is not a permutation of the {array.ndim} axes")
    return np.ascontiguousarray(np.transpose(array, perm)), dtype


def _cast(node: dict, array: Optional[np.ndarray], dtype: str) -> tuple:
    """A Cast of a constant, as ONNX computes it (rounded, truncated, wrapped) or refused."""
    to = node["attrs"].get("to")
    if not isinstance(to, int) or isinstance(to, bool):
        raise ModelFormatError(f"{_where(node)}: the attribute 'to' is missing or not a type number")
    if array is None:
        raise UnsupportedError(f"{_where(node)}: casts a constant of {dtype}, not numbers, to {type_name(to)}")
    return cast_constant(array, dtype, to, _where(node))


def _needed(nodes: list[dict], output: str, constants: dict, source: str) -> list[dict]:
    """The nodes the output depends on, in file order (others compute ignored outputs)."""
    producer = {name: node for node in nodes for name in node["outputs"] if name}
    wanted, stack = set(), [output]
    while stack:
        name = stack.pop()
        node = producer.get(name)
        if node is None:
            if name not in constants and name != source and name:
                raise ModelFormatError(f"value {quote_name(name)!r} is used but nothing computes it")
            continue
        if id(node) not in wanted:
            wanted.add(id(node))
            stack.extend(node["inputs"])
    return [node for node in nodes if id(node) in wanted]


def _weight_dtype(found: set) -> str:
    return next((d for d in ("float64", "float32", "bfloat16", "float16") if d in found), "float32")
