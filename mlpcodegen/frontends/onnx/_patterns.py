"""The multi-node forms exporters write for one step (:data:`~._ops.DECOMPOSED_FORMS`):
a fan-out ``(users, chain, consumers) -> (layers, the node whose output is the result,
nodes used)`` or None, tried in :data:`_FAN_OUTS` order where a value has several
readers, and :data:`_OPENERS` for a form starting at one node (GLU's Split).  Each is
read only when every node of it is as the exporter writes it, constants included."""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

from ...core.errors import UnsupportedError
from ...core.ir import Activate, Activation, Affine, Dense
from ..torch import SOFTPLUS_MIN_THRESHOLD
from ._chain import _Chain, _attr, _where
from ._ops import _f32, _reshape_to, _scalar


# -- fan-outs: the only non-chain shapes read (what exporters write for one activation)


def _gated(users: list[dict], chain: _Chain, consumers: dict) -> Optional[tuple[list, dict, list]]:
    """x * g(x), x / g(x) or x - g(x), g a short chain of unary nodes: silu, hard_silu,
    mish, softsign and tanh_shrink as exporters decompose them.  Returns (layers, the node whose output is
    the result, nodes used)."""
    for gate, start in ((users[0], users[1]), (users[1], users[0])):
        inputs = gate["inputs"]
        if gate["op"] not in ("Mul", "Div", "Sub") or len(inputs) != 2 or inputs.count(chain.current) != 1:
            continue
        target, path = inputs[1 - inputs.index(chain.current)], [start]
        while path[-1]["outputs"][:1] != [target] and len(path) < 3:
            following = consumers.get(path[-1]["outputs"][0], [])
            if len(following) != 1:
                break
            path.append(following[0])
        name = _GATES.get((gate["op"], tuple(node["op"] for node in path)))
        if (name and path[-1]["outputs"][:1] == [target] and (gate["op"] == "Mul" or inputs[0] == chain.current)
                and _unary_chain(path, chain) and (name != "hard_silu" or _standard_hard_sigmoid(path[0]))):
            layer = Activate(chain.width, Activation(name), name=gate["name"] or name)
            return [layer], gate, path + [gate]
    return None


#: (combining operator, the unary chain g) -> activation: x * g(x), x / g(x), x - g(x).
_GATES = {("Mul", ("Sigmoid",)): "silu", ("Mul", ("HardSigmoid",)): "hard_silu",
          ("Mul", ("Softplus", "Tanh")): "mish", ("Div", ("Abs", "Add")): "softsign",
          ("Sub", ("Tanh",)): "tanh_shrink"}


def _unary_chain(path: list[dict], chain: _Chain) -> bool:
    """Each node reads the previous one's value (an Add: and the constant 1)."""
    value = chain.current
    for node in path:
        others = [name for name in node["inputs"] if name != value]
        if len(others) != len(node["inputs"]) - 1 or node["domain"] not in ("", "ai.onnx"):
            return False
        if others and not (node["op"] == "Add" and len(others) == 1 and _is_one(chain.constants.get(others[0]))):
            return False
        value = node["outputs"][0]
    return True


def _standard_hard_sigmoid(node: dict) -> bool:
    return _f32(_attr(node, "alpha", 0.2)) == _f32(1 / 6) and _attr(node, "beta", 0.5) == 0.5


def _is_one(found: Optional[tuple]) -> bool:
    return found is not None and found[0] is not None and found[0].size == 1 and float(found[0].reshape(-1)[0]) == 1.0


def _complement(users: list[dict], chain: _Chain, consumers: dict) -> Optional[tuple[list, dict, list]]:
    """Concat(c - p, p) of the value p (skl2onnx's binary and multi-label classifiers:
    [1 - p, p]): a linear Dense layer w -> 2w with weights -1 and 1 and biases c and 0
    (c - p rounds the same way; the zero weights add exact zeros)."""
    by_op = {node["op"]: node for node in users}
    sub, concat = by_op.get("Sub"), by_op.get("Concat")
    if sub is None or concat is None or sub["inputs"][1:] != [chain.current]:
        return None
    left = sub["outputs"][0]
    if sorted(concat["inputs"]) != sorted([left, chain.current]) or len(consumers.get(left, [])) != 1:
        return None
    if not chain.is_feature_axis(_attr(concat, "axis", 1, int)):
        return None
    constant = _scalar(sub, chain, 0, "the subtracted-from constant", 0.0)
    eye, zeros = np.eye(chain.width), np.zeros(chain.width)
    first = concat["inputs"][0] == left
    kernel = np.hstack([-eye, eye] if first else [eye, -eye])
    bias = np.concatenate([zeros + constant, zeros] if first else [zeros, zeros + constant])
    return [Dense(kernel, bias, name=concat["name"] or "Concat")], concat, [sub, concat]


def _layer_norm_written_out(users: list[dict], chain: _Chain, consumers: dict) -> Optional[tuple[list, dict, list]]:
    """torch's LayerNorm below opset 17: d = x - ReduceMean(x); d / Sqrt(ReduceMean(Pow(d, 2)) + eps)
    (its Mul by the weight and Add of the bias follow as ordinary steps)."""
    by_op = {node["op"]: node for node in users}
    mean, sub = by_op.get("ReduceMean"), by_op.get("Sub")
    if mean is None or sub is None or not _feature_mean(mean, chain, chain.current):
        return None
    if sub["inputs"] != [chain.current, mean["outputs"][0]] or consumers.get(mean["outputs"][0]) != [sub]:
        return None
    spread = sub["outputs"][0]
    after = {node["op"]: node for node in consumers.get(spread, [])}
    line = _line(after.get("Pow"), spread, ("Pow", "ReduceMean", "Add", "Sqrt"), consumers)
    if line is None or len(consumers[spread]) != 2 or "Div" not in after:
        return None
    power, second, add, root = line
    div, epsilon = after["Div"], _constant_operand(add, second["outputs"][0], chain)
    if (div["inputs"] != [spread, root["outputs"][0]] or consumers.get(root["outputs"][0]) != [div]
            or _constant_operand(power, spread, chain) != 2.0 or epsilon is None
            or not _feature_mean(second, chain, power["outputs"][0])):
        return None
    step = Activation("layer_norm", (("epsilon", epsilon),))
    return [Activate(chain.width, step, name=div["name"] or "LayerNorm")], div, [mean, sub, *line, div]


def _rms_norm_written_out(users: list[dict], chain: _Chain, consumers: dict) -> Optional[tuple[list, dict, list]]:
    """torch's RMSNorm as the dynamo exporter writes it before opset 23:
    x * Reciprocal(Sqrt(ReduceMean(Pow(x, 2)) + eps)) (its Mul by the weight follows as an
    ordinary step)."""
    x, by_op = chain.current, {node["op"]: node for node in users}
    if len(users) != 2 or sorted(by_op) != ["Mul", "Pow"]:
        return None
    line = _line(by_op["Pow"], x, ("Pow", "ReduceMean", "Add", "Sqrt", "Reciprocal", "Mul"), consumers)
    if line is None or line[5] is not by_op["Mul"]:
        return None
    power, mean, add, _root, inverse, gate = line
    epsilon = _constant_operand(add, mean["outputs"][0], chain)
    if (_constant_operand(power, x, chain) != 2.0 or not _feature_mean(mean, chain, power["outputs"][0])
            or epsilon is None or not epsilon > 0 or sorted(gate["inputs"]) != sorted([x, inverse["outputs"][0]])):
        return None
    step = Activation("rms_norm", (("epsilon", epsilon),))
    return [Activate(chain.width, step, name=gate["name"] or "RMSNorm")], gate, line


def _prelu_written_out(users: list[dict], chain: _Chain, consumers: dict) -> Optional[tuple[list, dict, list]]:
    """Keras' PReLU as tf2onnx writes it: Relu(x) + Relu(Neg(x)) * c, c = -alpha a constant (one
    value or one per feature): the IR's prelu, relu(x) - alpha * relu(-x), rounded the same."""
    x, by_op = chain.current, {node["op"]: node for node in users}
    if len(users) != 2 or sorted(by_op) != ["Neg", "Relu"]:
        return None
    line = _line(by_op["Neg"], x, ("Neg", "Relu", "Mul", "Add"), consumers)
    positive = by_op["Relu"]
    if line is None or _only_reader(positive, consumers) is not line[3] or len(positive["inputs"]) != 1:
        return None
    _neg, negative, scale, total = line
    factor = _constant_factor(scale, negative["outputs"][0], chain)
    if factor is None or sorted(total["inputs"]) != sorted([positive["outputs"][0], scale["outputs"][0]]):
        return None
    step = Activation("prelu", (("alpha", tuple(float(-v) for v in factor)),))
    return [Activate(chain.width, step, name=total["name"] or "PReLU")], total, [positive, *line]


def _hard_silu_written_out(users: list[dict], chain: _Chain, consumers: dict) -> Optional[tuple[list, dict, list]]:
    """Keras 3's hard_silu as tf2onnx writes it: x * (Clip(x + 3, 0, 6) * (1/6)) (or / 6)."""
    x, by_op = chain.current, {node["op"]: node for node in users}
    if len(users) != 2 or sorted(by_op) != ["Add", "Mul"]:
        return None
    first = _line(by_op["Add"], x, ("Add", "Clip"), consumers)
    last = _only_reader(first[1], consumers) if first else None
    gate = _only_reader(last, consumers)
    if first is None or last is None or gate is not by_op["Mul"] or last["op"] not in ("Mul", "Div"):
        return None
    add, clip = first
    sixth = _constant_operand(last, clip["outputs"][0], chain)
    if chain.opset < 11:
        bounds = (_attr(clip, "min", None), _attr(clip, "max", None))
    else:
        bounds = tuple(_number(name, chain) for name in clip["inputs"][1:3]) if len(clip["inputs"]) == 3 else ()
    if (_constant_operand(add, x, chain) != 3.0 or bounds != (0.0, 6.0) or not _is(last, last["op"])
            or sixth not in ((6.0,) if last["op"] == "Div" else (_f32(1 / 6), 1 / 6))
            or sorted(gate["inputs"]) != sorted([x, last["outputs"][0]])):
        return None
    return [Activate(chain.width, Activation("hard_silu"), name=gate["name"] or "hard_silu")], gate, [
        add, clip, last, gate]


def _layer_norm_tf2onnx(users: list[dict], chain: _Chain, consumers: dict) -> Optional[tuple[list, dict, list]]:
    """Keras' LayerNormalization as tf2onnx writes it (TensorFlow's batch-normalisation
    arithmetic): mean = ReduceMean(x); m = Reciprocal(Sqrt(ReduceMean(d * d) + eps)) * gamma,
    d = x - mean; then x * m + (Neg(mean) * m + beta).  gamma and beta (constants) may be
    absent (scale=False, center=False).  Read as layer_norm(x, eps) * gamma + beta."""
    x, by_op = chain.current, {node["op"]: node for node in users}
    if len(users) != 3 or sorted(by_op) != ["Mul", "ReduceMean", "Sub"]:
        return None
    mean, sub, scaled = by_op["ReduceMean"], by_op["Sub"], by_op["Mul"]
    average = mean["outputs"][0]
    mean_readers = {node["op"]: node for node in consumers.get(average, [])}
    if (not _feature_mean(mean, chain, x) or sub["inputs"] != [x, average] or len(consumers.get(average, [])) != 2
            or sorted(mean_readers) != ["Neg", "Sub"] or not _is(mean_readers["Neg"], "Neg")):
        return None
    spread = sub["outputs"][0]
    square = consumers.get(spread, [])
    if len(square) != 1 or not _is(square[0], "Mul") or square[0]["inputs"] != [spread, spread]:
        return None
    line = _line(_only_reader(square[0], consumers), square[0]["outputs"][0],
                 ("ReduceMean", "Add", "Sqrt", "Reciprocal"), consumers)
    if line is None or not _feature_mean(line[0], chain, square[0]["outputs"][0]):
        return None
    epsilon = _constant_operand(line[1], line[0]["outputs"][0], chain)
    factor, used = line[3], [mean, sub, square[0], *line, mean_readers["Neg"], scaled]
    gamma = _constant_factor(_only_reader(factor, consumers), factor["outputs"][0], chain)
    if gamma is not None:
        factor = _only_reader(factor, consumers)
        used.append(factor)
    shifted = [node for node in consumers.get(factor["outputs"][0], []) if node is not scaled]
    negated = mean_readers["Neg"]["outputs"][0]
    if (epsilon is None or not epsilon > 0 or len(shifted) != 1 or not _is(shifted[0], "Mul")
            or sorted(shifted[0]["inputs"]) != sorted([negated, factor["outputs"][0]])
            or sorted(scaled["inputs"]) != sorted([x, factor["outputs"][0]])):
        return None
    offset, beta = shifted[0], None
    used.append(offset)
    following = _only_reader(offset, consumers)
    total = _only_reader(scaled, consumers)
    if following is not None and following is not total:
        beta = _constant_factor(following, offset["outputs"][0], chain, op="Add")
        if beta is None:
            return None
        offset = following
        used.append(offset)
    if (total is None or not _is(total, "Add") or _only_reader(offset, consumers) is not total
            or sorted(total["inputs"]) != sorted([scaled["outputs"][0], offset["outputs"][0]])):
        return None
    name = total["name"] or "LayerNormalization"
    width = chain.width
    step = Activate(width, Activation("layer_norm", (("epsilon", epsilon),)), name=name)
    affine = Affine(np.ones(width) if gamma is None else gamma, np.zeros(width) if beta is None else beta,
                    name=f"{name} (scale)")
    return [step, affine], total, used + [total]


def _number(name: str, chain: _Chain) -> Optional[float]:
    """The value of a one-number finite constant; None for anything else."""
    found = chain.constants.get(name)
    if found is None or found[0] is None or found[0].size != 1 or not np.isfinite(found[0]).all():
        return None
    return float(found[0].reshape(-1)[0])


def _only_reader(node: Optional[dict], consumers: dict) -> Optional[dict]:
    readers = consumers.get(node["outputs"][0], []) if node is not None else []
    return readers[0] if len(readers) == 1 else None


def _constant_factor(node: Optional[dict], value: str, chain: _Chain, op: str = "Mul") -> Optional[np.ndarray]:
    """The per-feature constant a Mul (or Add) combines ``value`` with, broadcast to the
    width; None when the node is not that."""
    if node is None or not _is(node, op) or len(node["inputs"]) != 2 or node["inputs"].count(value) != 1:
        return None
    found = chain.constants.get(node["inputs"][1 - node["inputs"].index(value)])
    if found is None or found[0] is None or found[0].size not in (1, chain.width) or not np.isfinite(found[0]).all():
        return None
    # the shape too, not only the size: a (width, 1) constant broadcasts a row into a matrix
    template = (1, *chain.sample) if chain.batched else chain.sample
    try:
        fits = np.broadcast_shapes(template, found[0].shape) == template
    except ValueError:
        fits = False
    if not fits:
        return None
    return np.broadcast_to(np.asarray(found[0], np.float64).reshape(-1), (chain.width,)).copy()


def _gelu_written_out(users: list[dict], chain: _Chain, consumers: dict) -> Optional[tuple[list, dict, list]]:
    """torch's exact GELU below opset 20: x * (Erf(x / sqrt(2)) + 1) * 0.5 (TorchScript), or
    x * (0.5 * (Erf(x / sqrt(2)) + 1)) (the dynamo exporter): the same rounding, as * 0.5 is exact."""
    by_op = {node["op"]: node for node in users}
    line = _line(by_op.get("Div"), chain.current, ("Div", "Erf", "Add", "Mul", "Mul"), consumers)
    if line is None or not any(by_op.get("Mul") is node for node in line[3:]):
        return None
    div, erf, add, first, second = line
    gate, half = (first, second) if by_op["Mul"] is first else (second, first)
    if (_constant_operand(div, chain.current, chain) not in (_f32(math.sqrt(2)), math.sqrt(2))
            or _constant_operand(add, erf["outputs"][0], chain) != 1.0
            or sorted(gate["inputs"]) != sorted([chain.current, first["outputs"][0] if gate is second
                                                 else add["outputs"][0]])
            or _constant_operand(half, (first if half is second else add)["outputs"][0], chain) != 0.5):
        return None
    return [Activate(chain.width, Activation("gelu"), name=second["name"] or "GELU")], second, line


def _gelu_tanh_written_out(users: list[dict], chain: _Chain, consumers: dict) -> Optional[tuple[list, dict, list]]:
    """torch's tanh GELU below opset 20: x * (Tanh(sqrt(2/pi) * (x + 0.044715 * x * (x * x))) + 1) * 0.5."""
    x = chain.current
    square = next((node for node in users if _is(node, "Mul") and node["inputs"] == [x, x]), None)
    readers = consumers.get(square["outputs"][0], []) if square and len(users) == 4 else []
    line = _line(readers[0] if len(readers) == 1 else None, square["outputs"][0] if square else "",
                 ("Mul", "Mul", "Add", "Mul", "Tanh", "Add", "Mul", "Mul"), consumers)
    if line is None:
        return None
    cube, scaled, inner, outer, tanh, shifted, gate, half = line
    reads_x = all(sorted(node["inputs"]) == sorted([x, value]) for node, value in
                  ((cube, square["outputs"][0]), (inner, scaled["outputs"][0]), (gate, shifted["outputs"][0])))
    constants = [_constant_operand(node, value["outputs"][0], chain) for node, value in
                 ((scaled, cube), (outer, inner), (shifted, tanh), (half, gate))]
    if not reads_x or constants[2:] != [1.0, 0.5] or constants[0] not in (_f32(0.044715), 0.044715) or \
            constants[1] not in (_f32(math.sqrt(2 / math.pi)), math.sqrt(2 / math.pi)):
        return None
    step = Activation("gelu", (("approximate", 1.0),))
    return [Activate(chain.width, step, name=half["name"] or "GELU")], half, [square, *line]


def _gelu_tanh_dynamo(users: list[dict], chain: _Chain, consumers: dict) -> Optional[tuple[list, dict, list]]:
    """torch's tanh GELU as its dynamo exporter writes it below opset 20:
    x * (0.5 * (Tanh(sqrt(2/pi) * (x + 0.044715 * Pow(x, 3))) + 1))."""
    x, by_op = chain.current, {node["op"]: node for node in users}
    if len(users) != 3 or sorted(by_op) != ["Add", "Mul", "Pow"]:
        return None
    line = _line(by_op["Pow"], x, ("Pow", "Mul", "Add", "Mul", "Tanh", "Add", "Mul", "Mul"), consumers)
    if line is None:
        return None
    power, scaled, inner, outer, tanh, shifted, half, gate = line
    if (inner is not by_op["Add"] or gate is not by_op["Mul"]
            or sorted(inner["inputs"]) != sorted([x, scaled["outputs"][0]])
            or sorted(gate["inputs"]) != sorted([x, half["outputs"][0]])):
        return None
    constants = [_constant_operand(node, value["outputs"][0], chain) for node, value in
                 ((scaled, power), (outer, inner), (shifted, tanh), (half, shifted))]
    if (_constant_operand(power, x, chain) != 3.0 or constants[2:] != [1.0, 0.5]
            or constants[0] not in (_f32(0.044715), 0.044715)
            or constants[1] not in (_f32(math.sqrt(2 / math.pi)), math.sqrt(2 / math.pi))):
        return None
    step = Activation("gelu", (("approximate", 1.0),))
    return [Activate(chain.width, step, name=gate["name"] or "GELU")], gate, line


def _softplus_thresholded(users: list[dict], chain: _Chain, consumers: dict) -> Optional[tuple[list, dict, list]]:
    """torch's Softplus(beta, threshold) as its dynamo exporter writes it: Where(s > threshold, x,
    Softplus(s) / beta), s = x * beta (beta 1: s = x, no Mul or Div).  Read as the exact softplus,
    as the torch frontend reads the module: the two differ by at most exp(-threshold) / beta,
    below float32's rounding for threshold >= 15; a smaller threshold is refused."""
    x, by_op = chain.current, {node["op"]: node for node in users}
    where = by_op.get("Where")
    scale = by_op.get("Mul") if len(users) == 2 else None
    if where is None or len(users) not in (2, 3) or (len(users) == 2) != (scale is not None):
        return None
    beta = 1.0 if scale is None else _constant_operand(scale, x, chain)
    scaled = x if scale is None else scale["outputs"][0]
    inner = {node["op"]: node for node in (users if scale is None else consumers.get(scaled, []))}
    softplus, greater = inner.get("Softplus"), inner.get("Greater")
    if (beta is None or not beta > 0 or softplus is None or greater is None or len(inner) != 2 + (scale is None)
            or softplus["inputs"] != [scaled] or not all(_is(node, node["op"]) for node in (where, softplus, greater))):
        return None
    value, used = softplus["outputs"][0], [softplus, greater, where] + ([scale] if scale else [])
    if scale is not None:
        divide = consumers.get(value, [])
        if len(divide) != 1 or not _is(divide[0], "Div") or _constant_operand(divide[0], value, chain) != beta:
            return None
        value = divide[0]["outputs"][0]
        used.append(divide[0])
    threshold = _constant_operand(greater, scaled, chain)
    condition = greater["outputs"][0]
    if (threshold is None or where["inputs"] != [condition, x, value] or consumers.get(condition) != [where]
            or consumers.get(value) != [where]):
        return None
    if not threshold >= SOFTPLUS_MIN_THRESHOLD:
        raise UnsupportedError(f"{_where(where)}: torch's Softplus with threshold={threshold:g} switches to x where "
                               f"softplus differs from it visibly; only threshold >= {SOFTPLUS_MIN_THRESHOLD:g} can "
                               "be converted (the IR computes softplus exactly)")
    name = where["name"] or "Softplus"
    layers = [Activate(chain.width, Activation("softplus"), name=name)]
    if scale is not None:
        layers = [Affine(np.full(chain.width, beta), np.zeros(chain.width), name=f"{name} (beta x)"), *layers,
                  Affine(np.full(chain.width, 1.0 / beta), np.zeros(chain.width), name=f"{name} (/ beta)")]
    return layers, where, used


def _hard_shrink_written_out(users: list[dict], chain: _Chain, consumers: dict) -> Optional[tuple[list, dict, list]]:
    """torch's Hardshrink: Where(Or(x > l, x < -l), x, 0), the comparisons through Casts to bool."""
    by_op, x = {node["op"]: node for node in users}, chain.current
    greater, less = by_op.get("Greater"), by_op.get("Less")
    lambd = _constant_operand(greater, x, chain) if len(users) == 3 and greater and less else None
    if lambd is None or not lambd >= 0 or _constant_operand(less, x, chain) != -lambd:
        return None
    (above, casts), (below, more) = _past_casts(greater, consumers), _past_casts(less, consumers)
    either = consumers.get(above, [])
    if (len(either) != 1 or not _is(either[0], "Or") or consumers.get(below) != either
            or sorted(either[0]["inputs"]) != sorted([above, below])):
        return None
    where = _selected(either[0]["outputs"][0], x, chain, consumers)
    if where is None or by_op.get("Where") is not where:
        return None
    step = Activation("hard_shrink", (("threshold", lambd),))
    return [Activate(chain.width, step, name=where["name"] or "Hardshrink")], where, [*users, *casts, *more, either[0]]


def _soft_shrink_written_out(users: list[dict], chain: _Chain, consumers: dict) -> Optional[tuple[list, dict, list]]:
    """torch's Softshrink: Where(x > l, x - l, 0) + Where(x < -l, x + l, 0) (one term is 0: exact)."""
    by_op, x = {node["op"]: node for node in users}, chain.current
    if len(users) != 4 or any(op not in by_op for op in ("Greater", "Sub", "Less", "Add")):
        return None
    lambd = _constant_operand(by_op["Greater"], x, chain)
    if lambd is None or not lambd >= 0 or any(_constant_operand(by_op[op], x, chain) != value for op, value in
                                              (("Sub", lambd), ("Less", -lambd), ("Add", lambd))):
        return None
    upper = _selected(by_op["Greater"]["outputs"][0], by_op["Sub"]["outputs"][0], chain, consumers)
    lower = _selected(by_op["Less"]["outputs"][0], by_op["Add"]["outputs"][0], chain, consumers)
    if upper is None or lower is None:
        return None
    values = [upper["outputs"][0], lower["outputs"][0]]
    total = consumers.get(values[0], [])
    if len(total) != 1 or not _is(total[0], "Add") or consumers.get(values[1]) != total or sorted(
            total[0]["inputs"]) != sorted(values):
        return None
    step = Activation("soft_shrink", (("threshold", lambd),))
    return [Activate(chain.width, step, name=total[0]["name"] or "Softshrink")], total[0], [*users, upper, lower,
                                                                                          total[0]]


def _is(node: dict, op: str) -> bool:
    return node["op"] == op and node["domain"] in ("", "ai.onnx")


def _past_casts(node: dict, consumers: dict) -> tuple[str, list[dict]]:
    """The node's output after the Casts to bool that are its only readers (at most two)."""
    value, casts = node["outputs"][0], []
    while len(casts) < 2:
        readers = consumers.get(value, [])
        if len(readers) != 1 or not _is(readers[0], "Cast") or readers[0]["attrs"].get("to") != 9:
            break
        casts.append(readers[0])
        value = readers[0]["outputs"][0]
    return value, casts


def _selected(condition: str, chosen: str, chain: _Chain, consumers: dict) -> Optional[dict]:
    """Where(condition, chosen, 0), the only reader of ``condition``."""
    readers = consumers.get(condition, [])
    if len(readers) != 1 or not _is(readers[0], "Where") or readers[0]["inputs"][:2] != [condition, chosen]:
        return None
    where = readers[0]
    zero = chain.constants.get(where["inputs"][2]) if len(where["inputs"]) == 3 else None
    return where if zero is not None and zero[0] is not None and zero[0].size == 1 and not zero[0].any() else None


#: Operators read in a recognised form that take the one value only.
_UNARY = ("Sigmoid", "Sqrt", "Tanh", "Erf", "Reciprocal", "Neg")


def _line(start: Optional[dict], value: str, ops: tuple, consumers: dict) -> Optional[list[dict]]:
    """Nodes of types ``ops`` from ``start``, each the only reader of the previous one's
    value (``start`` reads ``value``), in the default domain; None if the graph differs."""
    line, node = [], start
    for index, op in enumerate(ops):
        if (node is None or node["op"] != op or node["domain"] not in ("", "ai.onnx")
                or node["inputs"].count(value) != 1 or (op in _UNARY and len(node["inputs"]) != 1)):
            return None
        line.append(node)
        value = node["outputs"][0]
        following = consumers.get(value, [])
        node = following[0] if len(following) == 1 else None
    return line


#: Binary operators whose order matters: ``value`` must be their first operand.
_ORDERED = ("Pow", "Div", "Sub", "Greater", "Less")


def _constant_operand(node: Optional[dict], value: str, chain: _Chain) -> Optional[float]:
    """The one-number constant a binary node combines ``value`` with (the second operand of
    the operators in _ORDERED); None when it is not one."""
    inputs = [] if node is None else node["inputs"]
    if len(inputs) != 2 or inputs.count(value) != 1 or (node["op"] in _ORDERED and inputs[0] != value):
        return None
    found = chain.constants.get(inputs[1 - inputs.index(value)])
    if found is None or found[0] is None or found[0].size != 1 or not np.isfinite(found[0]).all():
        return None
    return float(found[0].reshape(-1)[0])


def _feature_mean(node: dict, chain: _Chain, value: str) -> bool:
    """ReduceMean of ``value`` over the feature axis only, keeping it (axes an attribute,
    or a constant input from opset 18)."""
    if node["inputs"][:1] != [value] or node["domain"] not in ("", "ai.onnx") or not _attr(node, "keepdims", 1, int):
        return False
    axes = node["attrs"].get("axes")
    if len(node["inputs"]) > 1 and node["inputs"][1]:
        found = chain.constants.get(node["inputs"][1])
        axes = None if found is None or found[0] is None else [int(v) for v in found[0].reshape(-1)]
    return isinstance(axes, list) and len(axes) == 1 and chain.is_feature_axis(axes[0])


def _glu(users: list[dict], chain: _Chain, consumers: dict) -> tuple[list, dict, list]:
    """Split(x) into halves a, b; a * Sigmoid(b): torch's GLU over the feature axis."""
    split = users[0]
    halves = _split_in_halves(split, chain)
    if halves:
        first, second = halves
        following = consumers.get(second, [])
        gate = _line(following[0], second, ("Sigmoid", "Mul"), consumers) if len(following) == 1 else None
        if gate and consumers.get(first) == [gate[1]] and len(gate[1]["inputs"]) == 2 and first != second:
            mul = gate[1]
            return [Activate(chain.width, Activation("glu"), name=mul["name"] or "GLU")], mul, [split, *gate]
    raise UnsupportedError(f"{_where(split)}: a Split is read only as GLU's: two equal halves a, b of the "
                           "feature axis, then a * Sigmoid(b)")


def _split_in_halves(split: dict, chain: _Chain) -> Optional[tuple[str, str]]:
    """The two outputs of a Split of the feature axis into equal halves (sizes as the
    'split' attribute before opset 13, an input after, or num_outputs from opset 18)."""
    outputs = split["outputs"]
    if (len(outputs) != 2 or "" in outputs or split["inputs"][:1] != [chain.current] or chain.width % 2
            or not chain.is_feature_axis(_attr(split, "axis", 0, int)) or split["attrs"].get("num_outputs", 2) != 2):
        return None
    sizes = split["attrs"].get("split")
    if len(split["inputs"]) > 1 and split["inputs"][1]:
        sizes = [int(v) for v in chain.const(split, 1, "split").reshape(-1)]
    if sizes is not None and list(sizes) != [chain.width // 2] * 2:
        return None
    return outputs[0], outputs[1]


def _reshape_by_own_shape(users: list[dict], chain: _Chain, consumers: dict) -> Optional[tuple[list, dict, list]]:
    """torch's ``x.view(x.size(0), -1)`` with a dynamic batch: Reshape(x, s), s computed
    from Shape(x) by Gather, Unsqueeze, Squeeze, Slice, Concat, Cast and constants (the
    batch's size stays a symbol: it may only be the new shape's first entry)."""
    by_op = {node["op"]: node for node in users}
    shape, reshape = by_op.get("Shape"), by_op.get("Reshape")
    if (len(users) != 2 or shape is None or reshape is None or not _is(shape, "Shape")
            or reshape["inputs"][:1] != [chain.current] or len(reshape["inputs"]) != 2):
        return None
    dims = chain.dims[_attr(shape, "start", 0, int):shape["attrs"].get("end", len(chain.dims))]
    values, used = {shape["outputs"][0]: (list(dims), False)}, [shape]
    while reshape["inputs"][1] not in values:
        done = {id(node) for node in used} | {id(reshape)}
        ready = [node for name in values for node in consumers.get(name, []) if id(node) not in done
                 and all(v in values or v in chain.constants for v in node["inputs"] if v)]
        if not ready or len(used) > 16:
            return None
        node = ready[0]
        result = _shape_step(node, [values.get(v) or _listed(chain.constants.get(v)) for v in node["inputs"] if v])
        if result is None or node["domain"] not in ("", "ai.onnx") or len(node["outputs"]) != 1:
            return None
        values[node["outputs"][0]] = result
        used.append(node)
    spec, scalar = values[reshape["inputs"][1]]
    inside = {id(node) for node in used} | {id(reshape)}
    if scalar or any(id(reader) not in inside for node in used for reader in consumers.get(node["outputs"][0], [])):
        return None
    _reshape_to(reshape, chain, spec)
    return [], reshape, used + [reshape]


def _listed(found: Optional[tuple]) -> Optional[tuple[list, bool]]:
    """A constant integer vector or scalar as (values, is a scalar)."""
    if found is None or found[0] is None or found[0].ndim > 1 or not np.all(found[0] == np.round(found[0])):
        return None
    return [int(v) for v in found[0].reshape(-1)], found[0].ndim == 0


def _shape_step(node: dict, operands: list) -> Optional[tuple[list, bool]]:
    """One integer operation of a shape computation on (values, is a scalar) operands;
    None for anything else."""
    if any(operand is None for operand in operands) or not operands:
        return None
    (data, scalar), op, attrs = operands[0], node["op"], node["attrs"]
    if op in ("Identity", "Cast") and attrs.get("to", 7) in (6, 7):
        return data, scalar
    if op == "Gather" and len(operands) == 2 and not scalar and attrs.get("axis", 0) == 0:
        indices, single = operands[1]
        if all(-len(data) <= i < len(data) for i in indices):
            return [data[i] for i in indices], single
    axes = attrs.get("axes", operands[1][0] if len(operands) > 1 else None)
    if op == "Unsqueeze" and scalar and axes in ([0], [-1]):
        return data, False
    if op == "Squeeze" and not scalar and len(data) == 1 and axes in (None, [0], [-1]):
        return data, True
    if op == "Concat" and attrs.get("axis") == 0 and not any(flag for _, flag in operands):
        return [v for values, _ in operands for v in values], False
    if op == "Slice" and not scalar:
        bounds = [attrs.get(key) for key in ("starts", "ends", "axes")] if "starts" in attrs else [
            operand[0] for operand in operands[1:4]]
        steps = operands[4][0] if len(operands) > 4 else [1]
        if all(b is None or len(b) == 1 for b in bounds) and bounds[2] in (None, [0], [-1]) and len(steps) == 1 \
                and steps[0] != 0:
            return data[bounds[0][0]:bounds[1][0]:steps[0]], False
    return None


#: Recognised forms starting where the value has several readers: each returns (layers,
#: the node whose output is the result, nodes used: all the readers) or None.
_FAN_OUTS = (_gated, _prelu_written_out, _hard_silu_written_out, _rms_norm_written_out, _complement,
             _layer_norm_written_out, _layer_norm_tf2onnx, _gelu_written_out, _gelu_tanh_written_out,
             _gelu_tanh_dynamo, _softplus_thresholded, _hard_shrink_written_out, _soft_shrink_written_out,
             _reshape_by_own_shape)

#: Nodes with several used outputs that start one recognised activation: op -> reader
#: (users, chain, consumers) -> (layers, the node whose output is the result, nodes used).
_OPENERS = {"Split": _glu}

#: Said when a branch has a node of these types: what is read of them.
_HINTS = {"ReduceMean": "a layer normalisation is read as LayerNormalization (opset 17 or later: export with "
                        "opset_version=17) or as torch's exact written-out form"}
