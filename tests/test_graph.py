"""The expression graph and its interpreters (issue 10 item 1): the float64 evaluator
agrees with the independent reference evaluator, the Builder shares nodes, and the
interval evaluator is sound for random networks, random expressions and random boxes
(every sampled number inside its node's bounds, a NaN only at a node the bounds
say may be NaN) and exact for monotone single units.

Tolerance of the float64 comparison: 8 ULPs of the reference *magnitude*
(:func:`mlpcodegen.core.reference.evaluate_magnitude`, the running sum of the sizes of
everything that was rounded), plus 1e-300.  The graph adds left to right where NumPy's
matmul uses its own order; measured differences stay below 1 such ULP.  Where the
magnitude is not finite (a NaN or inf upstream that a select dropped), 1e-9 relative
to 1 + |value|.  NaN where the reference has NaN, the same infinities.
"""
import math

import numpy as np
import pytest

from mlpcodegen.core import graph_eval
from mlpcodegen.core.activations import REGISTRY
from mlpcodegen.core.errors import ValidationError
from mlpcodegen.core.graph import Builder, Let, Program, walk
from mlpcodegen.core.graph_eval import Interval, bounds, evaluate, evaluate_network, interval_network, network_bounds
from mlpcodegen.core.ir import Activate, Activation, Affine, Dense, Network
from mlpcodegen.core.network_graph import input_nodes, network_program
from mlpcodegen.core.reference import evaluate_magnitude

EPS = 2.0**-52
ULPS = 8
nan, inf = math.nan, math.inf

#: Non-default parameters, so every branch of every formula runs.
PARAMS = {
    "relu": [{}, {"negative_slope": 0.1}, {"max_value": 6.0}, {"threshold": 0.5},
             {"negative_slope": 0.1, "max_value": 2.0, "threshold": 0.25}],
    "elu": [{}, {"alpha": 0.5}], "celu": [{"alpha": 2.0}], "gelu": [{}, {"approximate": 1.0}],
    "leaky_relu": [{"negative_slope": 0.3}], "threshold": [{"threshold": 0.1, "default_value": -1.0}],
    "squareplus": [{"b": 2.0}], "hard_shrink": [{"threshold": 0.3}], "soft_shrink": [{"threshold": 0.3}],
    "layer_norm": [{"epsilon": 0.1}], "rms_norm": [{"epsilon": 0.1}], "variance_scale": [{"epsilon": 0.1}],
    "unit_norm": [{"epsilon": 0.5}],
}


def activation(name: str, width: int, variant: int = 0) -> Activation:
    if name == "prelu":
        return Activation(name, (("alpha", tuple(np.linspace(-0.3, 0.4, width))),))
    return Activation(name, tuple(PARAMS.get(name, [{}])[variant].items()))


ACTIVATIONS = [(name, i) for name in sorted(REGISTRY) for i in range(len(PARAMS.get(name, [{}])))]


def random_network(rng: np.random.Generator, widths: list[int], names: list[str]) -> Network:
    """Dense layers of ``widths`` with activations ``names``; after the first, an
    Activate or Affine step now and then."""
    layers, width = [], widths[0]
    for position, (units, name) in enumerate(zip(widths[1:], names)):
        units += units % 2 if name == "glu" else 0
        bias = rng.normal(0, 0.5, units) if rng.random() < 0.8 else None
        layers.append(Dense(rng.normal(0, 1.5 / np.sqrt(width), (width, units)), bias,
                            activation(name, units), f"d{position}"))
        width = layers[-1].n_out
        extra = rng.integers(0, 4)
        if extra == 1:
            layers.append(Affine(rng.uniform(0.5, 2, width) * rng.choice([-1, 1], width), rng.normal(0, 1, width),
                                 f"n{position}"))
        elif extra == 2:
            layers.append(Activate(width, activation("tanh" if width % 2 else rng.choice(sorted(REGISTRY)), width),
                                   f"a{position}"))
            width = layers[-1].n_out
    return Network(widths[0], tuple(layers))


def has_sparsemax(net: Network) -> bool:
    return any(layer.activation.name == "sparsemax" for layer in net.layers)


def assert_matches_reference(net: Network, x: np.ndarray) -> None:
    got = evaluate_network(net, x)
    with np.errstate(all="ignore"):
        want, magnitude = evaluate_magnitude(net, x)
    assert got.shape == want.shape
    if has_sparsemax(net):
        # With an infinite z the sort-free threshold (the graph's, every target's) is NaN
        # for the whole row, the sorting reference's for part of it: both undefined.
        undefined = np.isnan(got).any(axis=-1, keepdims=True) | np.isnan(want).any(axis=-1, keepdims=True)
        assert np.array_equal(np.isnan(got).any(axis=-1), np.isnan(want).any(axis=-1)), (net.describe(), got, want)
        got, want, magnitude = (np.where(undefined, nan, v) for v in (got, want, magnitude))
    assert np.array_equal(np.isnan(got), np.isnan(want)), (net.describe(), got, want)
    infinite = np.isinf(want)
    assert np.array_equal(got[infinite], want[infinite]), net.describe()
    finite = np.isfinite(want)
    error = np.abs(got[finite] - want[finite])
    # no magnitude where a NaN or inf upstream was selected away (soft_shrink maps NaN to 0)
    allowed = np.where(np.isfinite(magnitude), ULPS * EPS * magnitude + 1e-300, 1e-9 * (1 + np.abs(want)))[finite]
    assert np.all(error <= allowed), (net.describe(), np.max(error / allowed))


# ----------------------------------------------------------------------------- float64 evaluator


@pytest.mark.parametrize("name,variant", ACTIVATIONS)
def test_evaluator_matches_reference_for_every_activation(name, variant):
    """Each activation (each parameter variant) after a Dense layer, as its own
    Activate step after an Affine one, and in the last layer."""
    rng = np.random.default_rng(len(name) * 10 + variant)
    width = 4
    act = activation(name, width, variant)
    last = act if name not in ("glu", "prelu") else Activation("linear")
    net = Network(3, (Dense(rng.normal(size=(3, width)), rng.normal(size=width), act, "d0"),
                      Dense(rng.normal(size=(act.out_width(width), width)), None, Activation("linear"), "d1"),
                      Affine(rng.normal(size=width), rng.normal(size=width), "n1"),
                      Activate(width, act, "a1"),
                      Dense(rng.normal(size=(act.out_width(width), 2)), rng.normal(size=2), last, "d2")))
    x = np.concatenate([rng.uniform(-4, 4, (200, 3)), [[0.0, -0.0, 0.0], [1e6, -1e6, 3.0]]])
    assert_matches_reference(net, x)


@pytest.mark.parametrize("seed", range(12))
def test_evaluator_matches_reference_for_random_networks(seed):
    """Depths 1-4, widths 1-64, random activations and layer kinds, with NaN, +-inf
    and huge inputs mixed in."""
    rng = np.random.default_rng(1000 + seed)
    depth = int(rng.integers(1, 5))
    top = 64 if seed % 3 == 0 else 8
    widths = [int(w) for w in rng.integers(1, top + 1, size=depth + 1)]
    names = [str(n) for n in rng.choice(sorted(REGISTRY), size=depth)]
    net = random_network(rng, widths, names)
    x = rng.uniform(-3, 3, (100, net.n_inputs))
    special = rng.choice([nan, inf, -inf, 1e200, -1e200, 0.0], size=(12, net.n_inputs))
    assert_matches_reference(net, np.concatenate([x, special]))


def activation_only(width: int, act: Activation) -> Network:
    """Just the activation, so z = x exactly, NaN and inf included (the IR asks for a
    Dense layer; the graph does not: the check is bypassed, as in test_special_values)."""
    net = Network(width, (Dense(np.eye(width), None, Activation("linear"), "identity"), Activate(width, act, "act")))
    object.__setattr__(net, "layers", net.layers[1:])
    return net


Z = [nan, inf, -inf, 0.0, -0.0, 1e30, -1e30, 3.4e38, -3.4e38, 1e300, -1e300, 5e-324]


@pytest.mark.parametrize("name,variant", [a for a in ACTIVATIONS if not REGISTRY[a[0]].vector])
def test_special_values_match_reference(name, variant):
    """NaN, +-inf, +-0, huge and subnormal pre-activations: the same value as the
    reference, NaN for NaN, the same infinity, signed zeros equal."""
    net = activation_only(1, activation(name, 1, variant))
    assert_matches_reference(net, np.array(Z)[:, None])


ROWS = [[0.0, -inf, 1.0, 2.0], [-inf, -inf, -inf, 0.0], [inf, 0.0, 1.0, 2.0], [nan, 0.0, 1.0, 2.0],
        [1e30, 0.0, -1e30, 1.0], [-0.0, 0.0, 0.0, 0.0], [3.4e38, -3.4e38, 3.4e38, 1.0], [1.0, 1.0, 1.0, 1.0]]


@pytest.mark.parametrize("name", sorted(n for n, spec in REGISTRY.items() if spec.vector))
def test_special_values_of_vector_activations(name):
    assert_matches_reference(activation_only(4, activation(name, 4)), np.array(ROWS))


def test_evaluate_takes_named_inputs_and_items():
    b = Builder()
    x, y = b.ref("x"), b.item("v", 2)
    out = b.div(b.call("exp", x), b.max(y, b.num(0.0)))
    values = evaluate([out], {"x": np.array([0.0, 1000.0]), "v": np.array([[0, 0, 2.0], [0, 0, nan]])})
    assert values.outputs[0][0] == 0.5 and np.isnan(values.outputs[0][1])  # exp overflow; max keeps NaN
    assert evaluate([out], {"x": 0.0, ("v", 2): 4.0}).outputs[0] == 0.25
    with pytest.raises(ValidationError, match="v"):
        evaluate([out], {"x": 0.0})


def test_where_takes_the_other_branch_for_nan_and_sums_left_to_right():
    b = Builder()
    z = b.ref("z")
    picked = b.where(b.gt(z, b.num(0.0)), z, b.num(-1.0))
    assert evaluate([picked], {"z": np.array([nan, 2.0, -3.0])}).outputs[0].tolist() == [-1.0, 2.0, -1.0]
    # (1e16 + 1) + 1 rounds twice; 1e16 + (1 + 1) would not
    total = b.sum([b.term(b.num(1e16)), b.term(b.num(1.0)), b.term(b.num(1.0))])
    assert evaluate([total], {}).outputs[0] == 1e16
    negative_first = b.sum([b.term(z, 2.0, negative=True), b.term(z, -3.0)], bias=1.0)
    assert evaluate([negative_first], {"z": 2.0}).outputs[0] == -9.0


# ----------------------------------------------------------------------------- builder sharing


def test_builder_shares_nodes():
    rng = np.random.default_rng(3)
    net = random_network(rng, [3, 5, 4, 2], ["tanh", "softmax", "linear"])
    b = Builder()
    first = network_program(net, input_nodes(b, net), b)
    second = network_program(net, input_nodes(b, net), b)
    assert all(p is q for p, q in zip(first.outputs, second.outputs))
    z = b.sum([b.term(b.item("x", 0), 2.0)], 1.0, "z9_0")
    formula = REGISTRY["silu"].formula(b, z, {})  # z * sigmoid(z): z once
    nodes = list(walk([formula]))
    assert sum(node is z for node in nodes) == 1 and len(nodes) == len({id(n) for n in nodes})
    assert b.mul(z, b.call("sigmoid", z)) is formula
    assert b.num(0.0) is b.num(0.0) and b.num(0.0) is not b.num(-0.0)


# ----------------------------------------------------------------------------- interval bounds


def sample_box(rng: np.random.Generator, lower: np.ndarray, upper: np.ndarray, n: int) -> np.ndarray:
    """``n`` points of each box (lower/upper: (boxes, inputs)): its corners' extremes
    (all lower, all upper) and uniform points; shape (boxes, n, inputs)."""
    u = rng.random((lower.shape[0], n, lower.shape[1]))
    u[:, 0], u[:, 1] = 0.0, 1.0
    u[:, 2:10] = u[:, 2:10].round()  # some corners
    return lower[:, None] + u * (upper - lower)[:, None]


def assert_inside(name: str, value: np.ndarray, box: Interval) -> None:
    """Samples (last axis) of boxes: NaN only where the bounds say it may be, every
    number inside them."""
    lo, hi, nan_ok = (np.asarray(v)[..., None] for v in np.broadcast_arrays(box.lo, box.hi, box.nan))
    inside = np.where(np.isnan(value), nan_ok, (lo <= value) & (value <= hi))
    assert inside.all(), (name, np.broadcast_to(value, inside.shape)[~inside][:3], box)


@pytest.mark.parametrize("seed", range(40))
def test_bounds_hold_every_sampled_value(seed):
    """Random networks (every activation, every layer kind) and random boxes: 2000
    points of each box lie inside the bounds of every output and every named value."""
    rng = np.random.default_rng(2000 + seed)
    depth = int(rng.integers(1, 5))
    widths = [int(w) for w in rng.integers(1, 13, size=depth + 1)]
    names = [str(n) for n in rng.choice(sorted(REGISTRY), size=depth)]
    net = random_network(rng, widths, names)
    centre = rng.uniform(-2, 2, (6, net.n_inputs)) * (10.0 if seed % 5 == 0 else 1.0)  # some overflow
    radius = rng.choice([0.0, 1e-9, 0.1, 1.0, 3.0], size=(6, net.n_inputs))
    lower, upper = centre - radius, centre + radius
    b = Builder()
    program = network_program(net, input_nodes(b, net), b)
    found = bounds(program, {"x": (lower, upper)})
    points = sample_box(rng, lower, upper, 2000)
    values = evaluate(program, {"x": points})
    named = named_nodes(program)
    for name, node in named.items():
        assert_inside(name, values[node], found[node])
    for j, node in enumerate(program.outputs):
        assert_inside(f"output {j}", values[node], found.outputs[j])
    by_network = network_bounds(net, lower, upper)
    assert all(np.array_equal(p.lo, q.lo) and np.array_equal(p.hi, q.hi)
               for p, q in zip(by_network.outputs, found.outputs))
    assert by_network.named.keys() == found.named.keys() == named.keys()


def named_nodes(program: Program) -> dict:
    """name -> node: the Let statements and the named sums (z1_0)."""
    named = {node.name: node for node in walk(program.outputs) if getattr(node, "name", None)}
    named.update((s.name, s.node) for s in program.statements if isinstance(s, Let))
    return named


def random_expression(rng: np.random.Generator, b: Builder, leaves: list, depth: int):
    """A random graph over ``leaves`` using every kind of node, operation and function."""
    if depth == 0 or rng.random() < 0.15:
        return leaves[rng.integers(len(leaves))] if rng.random() < 0.8 else b.num(float(rng.normal(0, 2)))
    grow = lambda: random_expression(rng, b, leaves, depth - 1)  # noqa: E731
    kind = rng.integers(6)
    if kind == 0:
        return b.op(str(rng.choice(["add", "sub", "mul", "div", "quotient", "max", "min"])), grow(), grow())
    if kind == 1:
        return b.op(str(rng.choice(["neg", "square"])), grow())
    if kind == 2:
        return b.call(str(rng.choice(list(graph_eval.POINT_FUNCTIONS))), grow())
    if kind == 3:
        left, right = grow(), grow()
        return b.where(b.op(str(rng.choice(["gt", "ge"])), left, right if rng.random() < 0.7 else left),
                       *((left, grow()) if rng.random() < 0.5 else (grow(), right)))
    if kind == 4:
        return b.sum([b.term(grow(), float(rng.normal()) if rng.random() < 0.7 else None, bool(rng.random() < 0.3))
                      for _ in range(rng.integers(1, 4))], float(rng.normal()) if rng.random() < 0.5 else None)
    return b.largest([grow() for _ in range(rng.integers(1, 4))])


@pytest.mark.parametrize("seed", range(20))
def test_bounds_hold_for_random_expressions(seed):
    """Every node of random graphs (all operations, functions, selects on operands
    that also appear in the branches) holds its sampled values, NaN aside."""
    rng = np.random.default_rng(3000 + seed)
    b = Builder()
    leaves = [b.ref("x"), b.ref("y"), b.item("v", 0), b.sum([], bias=0.5)]  # a constant that is no Num
    roots = [random_expression(rng, b, leaves, 5) for _ in range(10)]
    lower = rng.uniform(-3, 1, (3, 8))
    upper = lower + rng.choice([0.0, 0.5, 2.0, 4.0], size=(3, 8))
    boxes = {"x": (lower[0], upper[0]), "y": (lower[1], upper[1]), ("v", 0): (lower[2], upper[2])}
    points = lower[..., None] + rng.random((3, 8, 500)) * (upper - lower)[..., None]
    points[..., :2] = np.stack([lower, upper], axis=-1)
    found = bounds(roots, boxes)
    values = evaluate(roots, {"x": points[0], "y": points[1], ("v", 0): points[2]})
    for node in walk(roots):
        assert_inside(type(node).__name__, values[node], found[node])


def test_bounds_mix_constants_and_boxes():
    """A narrowed constant has a scalar end and an array end: every operation takes it."""
    b = Builder()
    x, c, d = b.ref("x"), b.sum([], bias=0.5), b.sum([], bias=-2.0)
    nodes = [b.where(b.gt(x, c), b.op(op, c, d), b.num(0.0)) for op in ("mul", "div", "max", "add")]
    nodes.append(b.where(b.ge(c, x), b.largest([c, d, x]), b.call("exp", c)))
    found = bounds(nodes, {"x": (np.array([-1.0, 0.0, 1.0]), np.array([0.0, 1.0, 2.0]))}, outward=False)
    assert found[nodes[0]].lo.tolist() == [0.0, -1.0, -1.0] and found[nodes[0]].hi.tolist() == [0.0, 0.0, -1.0]
    assert found[nodes[1]].lo.tolist() == [0.0, -0.25, -0.25]


def test_where_branches_know_their_condition():
    b = Builder()
    x, y = b.ref("x"), b.ref("y")
    cases = {
        "x > y: x >= y.lo": (b.where(b.gt(x, y), x, b.num(5.0)), (-1.0, 5.0)),
        "not x > y: x <= y.hi": (b.where(b.gt(x, y), b.num(5.0), x), (-2.0, 5.0)),
        "x >= y: y <= x.hi": (b.where(b.ge(x, y), y, b.num(-5.0)), (-5.0, 1.0)),
        "not x >= y: y >= x.lo": (b.where(b.ge(x, y), b.num(-5.0), y), (-5.0, 2.0)),
    }
    found = bounds([node for node, _ in cases.values()], {"x": (-2.0, 1.0), "y": (-1.0, 2.0)}, outward=False)
    for label, (node, want) in cases.items():
        assert (found[node].lo, found[node].hi) == want, label


#: Non-decreasing activations whose single-unit bounds are their exact image.
MONOTONE = [("linear", {}), ("relu", {}), ("relu", {"negative_slope": 0.1}), ("relu", {"max_value": 2.0}),
            ("relu", {"threshold": 0.5}), ("relu", {"negative_slope": 0.1, "max_value": 2.0, "threshold": 0.25}),
            ("relu6", {}), ("leaky_relu", {"negative_slope": 0.3}), ("prelu", {"alpha": (0.25,)}),
            ("elu", {}), ("elu", {"alpha": 0.5}), ("selu", {}), ("celu", {"alpha": 2.0}),
            ("hard_sigmoid", {}), ("sigmoid", {}), ("log_sigmoid", {}), ("tanh", {}), ("hard_tanh", {}),
            ("softplus", {}), ("exponential", {}), ("sparse_sigmoid", {}), ("sparse_plus", {}),
            ("soft_shrink", {"threshold": 0.3}), ("threshold", {"threshold": 0.1, "default_value": -1.0})]


@pytest.mark.parametrize("name,params", MONOTONE, ids=[f"{n}{p}" for n, p in MONOTONE])
def test_bounds_of_a_monotone_unit_are_its_image(name, params):
    """1 input, 1 unit: lower = min(f(w*lo+b), f(w*hi+b)), upper = the max, bit for bit
    without outward rounding, and within 1e-12 (relative to 1 + |f|) with it."""
    rng = np.random.default_rng(7)
    boxes = np.sort(rng.uniform(-4, 4, (64, 2)), axis=1)
    boxes[:8, 1] = boxes[:8, 0]  # points
    for weight, bias in ((1.3, 0.2), (-0.7, -0.4), (2.0, 0.0)):
        net = Network(1, (Dense([[weight]], [bias], Activation(name, tuple(params.items())), "unit"),))
        ends = evaluate_network(net, boxes.reshape(-1, 1)).reshape(-1, 2)
        image = Interval(ends.min(axis=1), ends.max(axis=1))
        exact = interval_network(net, boxes[:, :1], boxes[:, 1:], outward=False)
        assert np.array_equal(exact.lo[:, 0], image.lo) and np.array_equal(exact.hi[:, 0], image.hi), (weight, bias)
        sound = interval_network(net, boxes[:, :1], boxes[:, 1:])
        assert sound.nan.shape == (64, 1) and not sound.nan.any()
        slack = 1e-12 * (1.0 + np.abs(image.lo)), 1e-12 * (1.0 + np.abs(image.hi))
        assert np.all((sound.lo[:, 0] <= image.lo) & (sound.lo[:, 0] >= image.lo - slack[0]))
        assert np.all((sound.hi[:, 0] >= image.hi) & (sound.hi[:, 0] <= image.hi + slack[1]))


def test_bounds_of_a_point_are_its_value():
    """A box of zero width gives the float64 value itself (no outward rounding)."""
    rng = np.random.default_rng(11)
    for seed in range(4):
        net = random_network(rng, [3, 6, 4, 2], [str(n) for n in rng.choice(sorted(REGISTRY), size=3)])
        x = rng.uniform(-2, 2, (5, 3))
        found = interval_network(net, x, x, outward=False)
        value = evaluate_network(net, x)
        defined = ~np.isnan(value)
        assert np.all(found.lo[defined] <= value[defined]) and np.all(value[defined] <= found.hi[defined])


def test_bounds_special_cases():
    b = Builder()
    x, y = b.ref("x"), b.ref("y")
    cases = {
        "x*x": (b.mul(x, x), (0.0, 9.0)),
        "square": (b.op("square", x), (0.0, 9.0)),
        "abs": (b.call("abs", x), (0.0, 3.0)),
        "x*y": (b.mul(x, y), (-4.0, 6.0)),
        "1/y, y holds 0": (b.div(b.num(1.0), y), (-inf, inf)),
        "x >= x": (b.ge(x, x), (1.0, 1.0)),
        "x > y unknown": (b.gt(x, y), (0.0, 1.0)),
        "tanh": (b.call("tanh", b.num(50.0)), (1.0, 1.0)),
        "where decided": (b.where(b.gt(b.num(1.0), b.num(0.0)), x, y), (-2.0, 3.0)),
        "sqrt of maybe negative": (b.call("sqrt", x), (0.0, math.sqrt(3.0))),
        "exp overflows": (b.call("exp", b.mul(x, b.num(1e3))), (0.0, inf)),
    }
    found = bounds([node for node, _ in cases.values()], {"x": (-2.0, 3.0), "y": (-1.0, 2.0)}, outward=False)
    for label, (node, want) in cases.items():
        assert (found[node].lo, found[node].hi) == want, label
    wide = bounds([b.call("tanh", x)], {"x": (-2.0, 30.0)})
    assert wide.outputs[0].hi == 1.0 and wide.outputs[0].lo < math.tanh(-2.0)  # clipped to the range; widened
    with pytest.raises(ValidationError, match="lower <= upper"):
        bounds([x], {"x": (1.0, 0.0)})
    with pytest.raises(ValidationError, match="'y'"):
        bounds([y], {"x": (0.0, 1.0)})


def test_bounds_say_where_a_nan_may_arise():
    b = Builder()
    x, y = b.ref("x"), b.ref("y")
    big = b.call("exp", b.mul(x, b.num(1e3)))  # overflows for x > 0.71
    maybe_nan = b.call("sqrt", y)
    cases = {
        "sqrt of maybe negative": (maybe_nan, True),
        "log of positive": (b.call("log", b.add(b.call("abs", y), b.num(1.0))), False),
        "inf - inf": (b.sub(big, b.call("exp", b.mul(y, b.num(1e3)))), True),
        "inf - inf, one term": (b.sum([b.term(big), b.term(b.num(1.0), negative=True)]), False),
        "inf + -inf in a sum": (b.sum([b.term(big), b.term(big, negative=True)]), True),
        "0 * inf": (b.mul(big, b.sub(x, x)), True),  # x - x is 0: 0 * exp(1000) is NaN
        "0 * inf, maybe": (b.mul(big, y), True),
        "0 / 0": (b.div(y, y), True),
        "1 / (1 + |y|)": (b.div(b.num(1.0), b.add(b.num(1.0), b.call("abs", y))), False),
        "a comparison is a number": (b.gt(maybe_nan, b.num(0.0)), False),
        "select of NaN": (b.where(b.gt(y, b.num(0.0)), maybe_nan, b.num(0.0)), False),
        "select of NaN, other branch": (b.where(b.gt(y, b.num(0.0)), b.num(0.0), maybe_nan), True),
        "max keeps NaN": (b.max(maybe_nan, b.num(0.0)), True),
    }
    found = bounds([node for node, _ in cases.values()], {"x": (0.0, 1.0), "y": (-1.0, 1.0)})
    for label, (node, want) in cases.items():
        assert bool(found[node].nan) == want, label
    # NaN compares false: never sure to hold, and the false branch is not narrowed
    sure = bounds([b.ge(maybe_nan, b.num(-1.0))], {"y": (-1.0, 1.0)}).outputs[0]
    assert (sure.lo, sure.hi) == (0.0, 1.0)
    branch = b.where(b.gt(maybe_nan, x), b.num(0.0), x)  # NaN: x itself, not x <= sqrt(y)
    assert bounds([branch], {"x": (0.0, 5.0), "y": (-1.0, 1.0)}, outward=False).outputs[0].hi == 5.0


def test_networks_on_finite_boxes_make_no_nan():
    rng = np.random.default_rng(8)
    for name in ("tanh", "relu", "softmax", "gelu", "sparsemax", "layer_norm", "softsign", "log_softmax"):
        net = random_network(rng, [3, 8, 6, 2], [name, name, "linear"])
        found = network_bounds(net, -np.ones(3), np.ones(3))
        assert not any(np.any(v.nan) for v in found.named.values()), name
        assert not any(np.any(v.nan) for v in found.outputs), name


def test_bounds_give_hidden_units_by_name():
    rng = np.random.default_rng(5)
    net = random_network(rng, [2, 3, 1], ["relu", "linear"])
    found = network_bounds(net, np.array([-1.0, -1.0]), np.array([1.0, 1.0]))
    assert {"z1_0", "z1_2", "h1_1", "z2_0", "h2_0"} <= set(found.named)
    z = found.named["z1_0"]
    kernel, bias = net.layers[0].kernel[:, 0], net.layers[0].bias
    spread = np.abs(kernel).sum()
    offset = 0.0 if bias is None else bias[0]
    assert z.lo <= offset - spread and z.hi >= offset + spread and z.hi - z.lo < 2 * spread + 1e-12


def tightness(activation_name: str, splits: int = 1, seed: int = 0, points: int = 101) -> float:
    """Bound width over sampled range of a 2-16-16-1 network's output on [-1, 1]^2,
    the box cut into ``splits``^2 boxes (their hull), sampled on a ``points``^2 grid."""
    rng = np.random.default_rng(seed)
    layers = []
    for position, (n_in, n_out) in enumerate(((2, 16), (16, 16), (16, 1))):
        act = Activation(activation_name if n_out == 16 else "linear")
        kernel, bias = rng.normal(0, 1 / np.sqrt(n_in), (n_in, n_out)), rng.normal(0, 0.5, n_out)
        layers.append(Dense(kernel, bias, act, f"d{position}"))
    net = Network(2, tuple(layers))
    grid = np.linspace(-1, 1, points)
    x = np.stack(np.meshgrid(grid, grid), axis=-1).reshape(-1, 2)
    y = evaluate_network(net, x)
    edges = np.linspace(-1, 1, splits + 1)
    lows = np.stack(np.meshgrid(edges[:-1], edges[:-1]), axis=-1).reshape(-1, 2)
    highs = np.stack(np.meshgrid(edges[1:], edges[1:]), axis=-1).reshape(-1, 2)
    found = interval_network(net, lows, highs)
    assert found.lo.min() <= y.min() and y.max() <= found.hi.max()
    return float((found.hi.max() - found.lo.min()) / (y.max() - y.min()))


@pytest.mark.parametrize("name", ["tanh", "relu"])
def test_bounds_tighten_when_the_box_is_cut(name):
    """Measured in the issue's note; here: sound, and cutting the box never widens."""
    ratios = [tightness(name, splits) for splits in (1, 4, 16)]
    assert ratios[0] >= ratios[1] >= ratios[2] >= 1.0, ratios


def test_module_imports_only_numpy_and_the_graph_layer():
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(graph_eval))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    modules = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= {"math", "numpy"}
    assert modules <= {"__future__", "typing", "graph", "network_graph", "ir", "activations", "errors"}


def test_program_statements_are_all_evaluated():
    b = Builder()
    x = b.ref("x")
    program = Program((Let("unused", b.call("exp", x)),), (x,))
    assert evaluate(program, {"x": 1.0}).named["unused"] == math.e
