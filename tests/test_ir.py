import numpy as np
import pytest

from mlpcodegen.core.errors import ValidationError
from mlpcodegen.core.ir import Activate, Activation, Dense, Network
from mlpcodegen.core.passes import fuse_activations
from mlpcodegen.core.reference import evaluate


def dense(kernel, bias=None, act="linear", name="d"):
    return Dense(np.array(kernel, dtype=float), None if bias is None else np.array(bias, dtype=float),
                 Activation(act), name)


def test_unknown_activation_names_the_supported_ones():
    with pytest.raises(ValidationError, match=r"unknown activation 'swishy'.*tanh"):
        Activation("swishy")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weights_name_the_layer(bad):
    with pytest.raises(ValidationError, match=r"layer 'hidden' kernel has 1 non-finite.*index \(1, 0\)"):
        dense([[1.0], [bad]], name="hidden")
    with pytest.raises(ValidationError, match=r"layer 'out' bias has 1 non-finite"):
        dense([[1.0]], [bad], name="out")


def test_shapes_must_chain():
    with pytest.raises(ValidationError, match=r"layer 1 \('b'\) expects 3 inputs but the previous layer gives 2"):
        Network(1, (dense([[1.0, 2.0]], name="a"), dense(np.ones((3, 1)), name="b")))
    with pytest.raises(ValidationError, match="expects 3 inputs but the previous layer gives 2"):
        Network(2, (dense(np.ones((2, 2))), Activate(3, Activation("relu"))))


def test_bias_shape_kernel_rank_and_empty_network():
    with pytest.raises(ValidationError, match="bias shape"):
        dense([[1.0, 2.0]], [1.0, 2.0, 3.0])
    with pytest.raises(ValidationError, match="2-D"):
        Dense(np.ones(3), None)
    with pytest.raises(ValidationError, match="at least one Dense"):
        Network(2, (Activate(2, Activation("relu")),))
    with pytest.raises(ValidationError, match="n_inputs"):
        Network(0, (dense([[1.0]]),))
    with pytest.raises(ValidationError, match="weight dtype"):
        Network(1, (dense([[1.0]]),), weight_dtype="int8")


def test_ir_is_immutable():
    layer = dense([[1.0]], [0.0])
    with pytest.raises(ValueError):
        layer.kernel[0, 0] = 2.0
    with pytest.raises(AttributeError):
        layer.name = "other"


def test_reference_matches_hand_computed_values():
    # h = tanh(2x + 1), h2 = relu([1, -1] h + [0, 0.5]), y = sigmoid(h2 . [1, 2] - 1)
    net = Network(1, (
        dense([[2.0]], [1.0], "tanh"),
        dense([[1.0, -1.0]], [0.0, 0.5], "relu"),
        dense([[1.0], [2.0]], [-1.0], "sigmoid"),
    ))
    for x in (-2.0, -0.25, 0.0, 0.7):
        h = np.tanh(2 * x + 1)
        h2 = [max(h, 0.0), max(-h + 0.5, 0.0)]
        z = h2[0] + 2 * h2[1] - 1
        assert evaluate(net, np.array([x]))[0] == pytest.approx(1 / (1 + np.exp(-z)), rel=1e-15)


def test_reference_softmax_is_stable_and_sums_to_one():
    net = Network(2, (dense([[1000.0, 0.0, -1000.0], [0.0, 1.0, 0.0]], None, "softmax"),))
    y = evaluate(net, np.array([[1.0, 0.0], [-1.0, 2.0]]))
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-15)
    np.testing.assert_allclose(y[0], [1.0, 0.0, 0.0])


def test_reference_sigmoid_is_finite_for_large_inputs():
    net = Network(1, (dense([[1.0]], None, "sigmoid"),))
    y = evaluate(net, np.array([[-1000.0], [1000.0]]))
    assert y.tolist() == [[0.0], [1.0]]


def test_reference_rejects_wrong_input_width():
    net = Network(2, (dense(np.ones((2, 1))),))
    with pytest.raises(ValidationError, match=r"expected input of shape \(2,\)"):
        evaluate(net, np.ones(3))


def test_fuse_activations_merges_only_after_linear_dense():
    net = Network(1, (
        dense([[1.0]], None, "linear", "a"), Activate(1, Activation("tanh"), "t"),
        dense([[1.0]], None, "relu", "b"), Activate(1, Activation("sigmoid"), "s"),
        Activate(1, Activation("linear"), "noop"),
    ))
    fused = fuse_activations(net)
    assert [(layer.name, layer.activation.name) for layer in fused.layers] == [
        ("a", "tanh"), ("b", "relu"), ("s", "sigmoid")]
    x = np.linspace(-2, 2, 9).reshape(-1, 1)
    np.testing.assert_array_equal(evaluate(net, x), evaluate(fused, x))


def test_magnitude_bounds_the_terms_of_each_sum():
    from mlpcodegen.core.reference import evaluate_magnitude

    # y = 3x - 3x + 1 cancels to 1 but the terms are as large as 3|x| each.
    net = Network(1, (dense([[3.0, -3.0]], None, "linear"), dense([[1.0], [1.0]], [1.0], "linear")))
    y, m = evaluate_magnitude(net, np.array([[2.0]]))
    assert y.tolist() == [[1.0]]
    assert m[0, 0] >= 6.0 + 6.0 + 1.0
    sat = Network(1, (dense([[1.0]], None, "tanh"),))
    _, m_sat = evaluate_magnitude(sat, np.array([[20.0]]))
    assert m_sat[0, 0] == pytest.approx(1.0, rel=1e-12)  # saturated tanh: errors in z do not reach y


def test_print_net_is_a_summary_not_the_weights():
    """print(net) gives a table like Keras' model.summary() (layers, shapes, activations,
    parameter counts); repr is one line; equality and hashing still compare the weights."""
    from mlpcodegen.core.ir import Affine, Polynomial

    rng = np.random.default_rng(0)
    net = Network(784, (
        dense(rng.normal(size=(784, 512)), rng.normal(size=512), "relu", "hidden"),
        Affine(np.full(512, 2.0), np.zeros(512), "scale"),
        Activate(512, Activation("prelu", (("alpha", tuple(np.linspace(0, 1, 512))),)), "p"),
        dense(rng.normal(size=(512, 10)), None, "softmax", "out\nimport os"),
    ), name="wide", notes=("input: (28, 28) per sample",))
    text = str(net)
    lines = text.splitlines()
    assert len(text) < 1000 and len(lines) == 8, text
    assert lines[0] == "Network 'wide': 784 inputs -> 10 outputs, float32 weights"
    assert lines[1].split() == ["#", "layer", "kind", "shape", "activation", "parameters"]
    assert lines[2].split() == ["0", "hidden", "Dense", "784", "->", "512", "relu", "401,920"]
    assert lines[3].split() == ["1", "scale", "Affine", "512", "->", "512", "-", "1,024"]
    assert lines[4].split() == ["2", "p", "Activate", "512", "->", "512", "prelu(alpha=[512", "values])", "512"]
    assert lines[5].split() == ["3", "out<U+000A>import", "os", "Dense", "512", "->", "10", "softmax", "5,120"]
    total = 784 * 512 + 512 + 2 * 512 + 512 + 512 * 10
    assert net.parameter_count == total and lines[6] == f"Total parameters: {total:,}"
    assert lines[7] == "note: input: (28, 28) per sample"
    assert repr(net) == f"<Network 'wide': 784-512-10 (relu, linear, prelu(alpha=[512 values]), softmax), " \
                        f"{total:,} parameters, float32 weights>".replace("prelu(alpha=[512 values])", "prelu")
    assert repr(net.layers[0]) == "Dense('hidden', 784 -> 512, relu)"
    assert repr(net.layers[3]) == "Dense('out\\nimport os', 512 -> 10, softmax, no bias)"
    poly = Network(2, (Polynomial(np.array([[0, 0], [1, 0], [0, 2]]), np.ones((1, 3)), np.zeros(2), np.ones(2)),))
    assert str(poly).splitlines()[2].split() == ["0", "polynomial", "Polynomial", "2", "->", "1", "chebyshev,",
                                                 "degree", "2,", "3", "terms", "7"]
    assert str(Activation("leaky_relu", (("negative_slope", 0.1),))) == "leaky_relu(negative_slope=0.1)"
    same = Network(784, net.layers, name="wide", notes=net.notes)
    assert same == net and hash(same.layers) == hash(net.layers)
    assert net != Network(784, net.layers[:3] + (dense(rng.normal(size=(512, 10)), None, "softmax", "out\nimport os"),),
                          name="wide", notes=net.notes)
