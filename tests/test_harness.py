"""The runtime (compiled and imported predictors, the cffi cache) and verify against any peer."""
import numpy as np
import pytest

from mlpcodegen import runtime
from mlpcodegen.backends import BACKENDS
from mlpcodegen.core.errors import UnsupportedError, ValidationError
from mlpcodegen.harness import peers
from mlpcodegen.harness.report import F32_ULP_BOUND, F64_REL_BOUND, compare
from mlpcodegen.harness.verify import verify
from mlpcodegen.core.ir import Activation, Dense, Network
from mlpcodegen.core.reference import evaluate, evaluate_magnitude
from mlpcodegen.runtime import CompiledNetwork, cache, cffi_build, compile_c

NET = Network(3, (Dense(np.arange(6.0).reshape(3, 2) / 10, np.array([0.5, -0.5]), Activation("tanh"), "h"),))


def test_one_sample_and_batch_shapes_and_values():
    f = compile_c(NET, dtype="float64", name="h")
    x = np.array([[0.1, 0.2, 0.3], [1.0, -1.0, 0.5]])
    expected = np.tanh(x @ NET.layers[0].kernel + NET.layers[0].bias)
    np.testing.assert_allclose(f(x), expected, rtol=1e-15)
    np.testing.assert_allclose(f(x[1]), expected[1], rtol=1e-15)
    assert f(x[1]).shape == (2,)
    assert f(np.empty((0, 3))).shape == (0, 2)
    np.testing.assert_allclose(f([1, 2, 3]), f(np.array([1.0, 2.0, 3.0])))  # ints and lists are converted
    np.testing.assert_allclose(f(np.asfortranarray(x)), expected, rtol=1e-15)  # non-contiguous input


@pytest.mark.parametrize("bad", [np.ones(2), np.ones((4, 2)), np.ones((2, 3, 3)), np.float64(1.0)])
def test_wrong_shapes_raise_value_error(bad):
    f = compile_c(NET, dtype="float32", name="h")
    with pytest.raises(ValueError, match=r"expected shape \(3,\) for one sample or \(n, 3\)"):
        f(bad)


@pytest.mark.parametrize("bad", [np.array(["a", "b", "c"]), np.array([1 + 1j, 2, 3]), [None, None, None]])
def test_wrong_dtypes_raise_value_error(bad):
    f = compile_c(NET, dtype="float32", name="h")
    with pytest.raises(ValueError, match="expected real numbers"):
        f(bad)


def _libraries(cache):
    return sorted((cache / "cffi").glob("_mlpcodegen_*[!6]"))  # not the .sha256 stamps


def test_builds_are_cached_on_disk_by_source_hash(tmp_path, monkeypatch):
    monkeypatch.setenv("MLPCODEGEN_CACHE", str(tmp_path))
    monkeypatch.setattr(cffi_build, "_LOADED", {})
    compile_c(NET, dtype="float32", name="cached")
    libraries = _libraries(tmp_path)
    assert len(libraries) == 1 and len(list((tmp_path / "cffi").iterdir())) == 2  # the library and its stamp
    mtime = libraries[0].stat().st_mtime_ns
    monkeypatch.setattr(cffi_build, "_LOADED", {})
    compile_c(NET, dtype="float32", name="cached")  # same source: loaded, not rebuilt
    assert _libraries(tmp_path) == libraries
    assert libraries[0].stat().st_mtime_ns == mtime
    compile_c(NET, dtype="float64", name="cached")  # different source: a second library
    assert len(_libraries(tmp_path)) == 2


def test_compile_errors_are_reported_as_compile_error(tmp_path, monkeypatch):
    from mlpcodegen.core.errors import CompileError

    monkeypatch.setenv("MLPCODEGEN_CACHE", str(tmp_path))
    with pytest.raises(CompileError, match="compiling the generated C failed"):
        cffi_build.build_module("void f(void) { this is not C }", "void f(void);")
    assert not list((tmp_path / "cffi").glob("_mlpcodegen_*"))  # no half-built library left behind


def test_repr_says_what_the_predictor_is(monkeypatch):
    f = compile_c(NET, dtype="float32", name="h")
    text = repr(f)
    assert text.startswith("<mlpcodegen C predictor 'h' ") and text.endswith(".so>")
    assert "float32" in text and f"cache {f.library}" in text and str(cache.cache_dir()) in text
    from mlpcodegen.backends.c import cdef, emit_c

    module = cffi_build.build_module(emit_c(NET, dtype="float64", name="h"), cdef(NET, "float64", "h"))
    described = CompiledNetwork(module, "h", 3, 2, "float64", description=NET.describe(), math="fast")
    assert repr(described) == (f"<mlpcodegen C predictor 'h' 3-2 (tanh), float64, fast math (inline exp/tanh), "
                               f"cache {module.__file__}>")


# ------------------------------------------------------------------ runtime.load, every target

RNG = np.random.default_rng(7)
#: every kind of step a predictor runs: element-wise activations and a vector one
MIXED = Network(3, (
    Dense(RNG.normal(0, 0.8, (3, 5)), RNG.normal(0, 0.3, 5), Activation("tanh"), "a"),
    Dense(RNG.normal(0, 0.8, (5, 4)), RNG.normal(0, 0.3, 4), Activation("sigmoid"), "b"),
    Dense(RNG.normal(0, 0.8, (4, 4)), None, Activation("relu"), "c"),
    Dense(RNG.normal(0, 0.8, (4, 3)), RNG.normal(0, 0.3, 3), Activation("softmax"), "d"),
))
RUNNABLE = [(target, dtype) for target in runtime.LOADERS for dtype in BACKENDS[target].dtypes]


@pytest.mark.parametrize("target, dtype", RUNNABLE)
def test_every_runnable_target_agrees_with_the_reference(target, dtype):
    """Errors at the reference magnitude S of each output (see harness.verify): float64
    within rel 1e-12 of S, float32 within 8 float32 ULPs of S (verify's bounds)."""
    x = RNG.uniform(-2, 2, (40, 3)).astype(np.float32).astype(np.float64)
    predictor = runtime.load(MIXED, target, dtype=dtype, name="mixed")
    got = np.asarray(predictor(x))
    reference, scale = evaluate_magnitude(MIXED, x)
    assert got.shape == (40, 3) and np.asarray(predictor(x[0])).shape == (3,)
    _, max_rel, max_ulp = compare(got, reference, scale, dtype)
    if dtype == "float64":
        assert max_rel <= F64_REL_BOUND, (target, max_rel)
    else:
        assert max_ulp <= F32_ULP_BOUND, (target, max_ulp)
    np.testing.assert_array_equal(np.asarray(predictor(x[3])), got[3])  # one sample = its row of the batch


def test_runtime_load_defaults_and_errors():
    assert runtime.load(NET, "c").dtype == np.float32  # the target's first dtype, as emit's
    assert runtime.load(NET, "python")(np.zeros(3)).dtype == np.float64
    with pytest.raises(UnsupportedError, match="unknown target 'fortran'"):
        runtime.load(NET, "fortran")
    with pytest.raises(UnsupportedError, match="'latex' does not run in this process; targets that do: c, numba"):
        runtime.load(NET, "latex")
    with pytest.raises(UnsupportedError, match=r"'python' supports dtypes \('float64',\), not 'float32'"):
        runtime.load(NET, "python", dtype="float32")
    with pytest.raises(UnsupportedError, match=r"'numba' has no run option\(s\) \['unroll'\]"):
        runtime.load(NET, "numba", unroll="never")
    assert not hasattr(BACKENDS["c"], "load")  # backends only emit


def test_fast_entries_are_kept():
    single = Network(1, (Dense(np.array([[2.0]]), np.array([0.5]), Activation("tanh"), "s"),))
    c = runtime.load(single, "c", dtype="float64", name="s", unroll="never", math="libm")
    assert c.scalar(0.25) == pytest.approx(np.tanh(1.0), rel=1e-15) and "libm math" in repr(c)
    bound = c.bind()
    bound.x[:] = [0.25]
    bound.run()
    assert bound.y[0] == c.scalar(0.25)
    nb = runtime.load(single, "numba", dtype="float64", name="s")
    out = np.empty(1)
    nb.into(np.array([0.25]), out)
    assert out[0] == nb.scalar(0.25) == pytest.approx(np.tanh(1.0), rel=1e-15)


# ------------------------------------------------------------------ verify against any peer


@pytest.fixture(scope="module")
def keras_net(keras_module, tmp_path_factory):
    """(keras model, its .keras file, its network): 3-4-2, tanh then linear, fixed weights."""
    from mlpcodegen.frontends.keras import load

    model = keras_module.Sequential([keras_module.Input((3,)), keras_module.layers.Dense(4, activation="tanh"),
                                     keras_module.layers.Dense(2)])
    rng = np.random.default_rng(3)
    for layer in model.layers:
        n_in, n_out = layer.kernel.shape
        layer.set_weights([rng.normal(0, 0.7, (n_in, n_out)).astype(np.float32),
                           rng.normal(0, 0.2, n_out).astype(np.float32)])
    path = tmp_path_factory.mktemp("peer") / "m.keras"
    model.save(path)
    return model, path, load(model)


def _labels(report):
    return [c.label for c in report.comparisons]


def test_verify_against_a_keras_model_and_a_file(keras_net):
    model, path, _ = keras_net
    for peer in (model, path, str(path)):
        report = verify(peer, "c", "float32", n=64)
        assert report.ok, report.table()
        assert _labels(report)[1] == "c float32 vs model.predict"  # as before: CLI output unchanged
        assert _labels(report)[3] == "model.predict vs reference"


def test_verify_against_the_reference_and_another_target(keras_net):
    _, _, net = keras_net
    reference = verify(peers.reference_peer(net), "numba", "float64", n=64)
    assert reference.ok and _labels(reference)[1] == "numba float64 vs reference evaluator"
    assert reference.comparisons[1].bound == f"rel <= {F64_REL_BOUND:g}"
    other = verify(peers.target_peer(net, "python"), "c", "float32", n=64)
    assert other.ok and _labels(other)[1] == "c float32 vs python float64", other.table()
    assert other.comparisons[1].bound == f"ulp <= {F32_ULP_BOUND:g}"  # the coarser type sets the unit
    predictor = runtime.load(net, "numpy", dtype="float64")  # a predictor itself: the network is passed
    assert verify(predictor, "c", "float64", n=64, network=net).ok


def test_verify_against_anything_with_predict(keras_net):
    _, _, net = keras_net

    class Regressor:  # say, a scikit-learn model trained on the same data
        def predict(self, x):
            return evaluate(net, x)

    def by_hand(x):
        return evaluate(net, x).tolist()

    for peer, label in ((Regressor(), "Regressor.predict"), (by_hand, "by_hand")):
        report = verify(peer, "c", "float64", n=64, network=net)
        assert report.ok and _labels(report)[1] == f"c float64 vs {label}", report.table()
    with pytest.raises(ValidationError, match="verify needs the network the peer 'by_hand' computes"):
        verify(by_hand, "c", "float64", n=8)
    with pytest.raises(ValidationError, match="cannot compare with a int"):
        verify(3, "c", "float64", n=8, network=net)


def test_verify_finds_a_peer_that_disagrees(keras_net):
    _, _, net = keras_net
    report = verify(lambda x: evaluate(net, x) + 1e-3, "c", "float64", n=32, network=net)
    assert not report.ok and report.comparisons[1].passed is False and report.comparisons[0].passed


def test_verify_scales_a_float64_peers_inputs_in_float64():
    """A peer that computes in float64 (the reference, a float64 target, a user's function)
    gets its scaled inputs unrounded: rounding them to float32 (right for Keras) made
    a float64 check fail at rel 2.6e-9 (review finding)."""
    from mlpcodegen.harness.peers import reference_peer, target_peer
    from mlpcodegen.core.scaling import Scaling

    rng = np.random.default_rng(0)
    net = Network(2, (Dense(rng.normal(size=(2, 3)), rng.normal(size=3), Activation("tanh"), "h"),
                      Dense(rng.normal(size=(3, 1)), rng.normal(size=1), Activation("linear"), "o")), name="n")
    scaling = Scaling(np.array([0.1234567, 3.3333333]), np.array([0.7, -0.1]))
    for peer in (reference_peer(net), target_peer(net, "numpy", "float64")):
        report = verify(peer, "python", "float64", network=net, n=50, input_scaling=scaling)
        assert report.ok, str(report)


# ------------------------------------------------------------------ every format's own framework (issue 11)


def test_verify_a_keras_architecture_json_with_its_weights_file(keras_net, tmp_path):
    model, _, _ = keras_net
    (tmp_path / "m.json").write_text(model.to_json())
    model.save_weights(tmp_path / "w.weights.h5")
    report = verify(tmp_path / "m.json", "numpy", "float32", n=64, weights=tmp_path / "w.weights.h5")
    assert report.ok and _labels(report)[1] == "numpy float32 vs model.predict", report.table()
    with pytest.raises(ValidationError, match="weights file goes with a model file path"):
        verify(model, "numpy", "float32", n=8, weights=tmp_path / "w.weights.h5")


def _onnx_file(tmp_path, net, dtype="float32"):
    from mlpcodegen.harness.onnx_peer import onnx_model

    path = tmp_path / "m.onnx"
    path.write_bytes(onnx_model(net, dtype).SerializeToString())
    return path, onnx_model(net, dtype)


def test_verify_an_onnx_file_and_model_proto_with_onnx_runtime_on_the_original(tmp_path):
    rng = np.random.default_rng(5)
    net = Network(3, (Dense(rng.normal(size=(3, 5)), rng.normal(size=5), Activation("tanh"), "h"),
                      Dense(rng.normal(size=(5, 2)), None, Activation("softmax"), "o")))
    path, proto = _onnx_file(tmp_path, net)
    for model in (path, str(path), proto):
        report = verify(model, "c", "float32", n=64)
        assert report.ok and _labels(report)[1] == "c float32 vs ONNX Runtime", report.table()
        assert report.comparisons[1].bound == f"ulp <= {F32_ULP_BOUND:g} (magnitude >= 1 x output's largest)"
    path64, _ = _onnx_file(tmp_path, net, "float64")
    report = verify(path64, "numpy", "float64", n=64)  # a float64 graph is run in float64
    assert report.ok and report.comparisons[1].bound.startswith(f"rel <= {F64_REL_BOUND:g}"), report.table()


def test_onnx_runtime_errors_are_measured_at_the_outputs_largest_magnitude():
    """ONNX Runtime's float32 Sigmoid is accurate to about 1.4e-7 absolute: deep in the
    tail (z = -17) that is millions of ULPs of the true 4e-8, but 2 ULPs of the output's
    largest value (about 1 here)."""
    net = Network(1, (Dense(np.array([[17.0]]), None, Activation("sigmoid"), "s"),))
    peer = peers.onnx_runtime_peer(net)
    x = np.linspace(-1, 1, 201)[:, None].astype(np.float32)
    reference, scale = evaluate_magnitude(net, x)
    assert compare(peer.predict(x), reference, scale, "float32")[2] > 1000  # at the reference magnitude
    assert compare(peer.predict(x), reference, np.maximum(scale, 1.0), "float32")[2] <= F32_ULP_BOUND
    assert verify(peer, "numpy", "float32", data=x).ok


def test_an_error_on_an_output_small_everywhere_is_not_hidden_by_the_floor():
    """The floor is the output's own size: 0 for an output about 1e-6 everywhere fails."""
    net = Network(2, (Dense(np.full((2, 1), 1e-7), np.array([1e-6]), Activation("linear"), "o"),))
    wrong = peers.Peer("ONNX Runtime", lambda x: np.zeros((len(x), 1), np.float32), lambda: net, "float32",
                       magnitude_floor=peers.ORT_MAGNITUDE_FLOOR)
    report = verify(wrong, "numpy", "float32", n=32)
    assert not report.ok and report.comparisons[1].passed is False, report.table()
    right = peers.Peer("ONNX Runtime", lambda x: evaluate(net, x).astype(np.float32), lambda: net, "float32",
                       magnitude_floor=peers.ORT_MAGNITUDE_FLOOR)
    assert verify(right, "numpy", "float32", n=32).ok


def _dead_node_onnx(tmp_path, dead, opsets):
    """y = x @ I, plus a node off the output's chain (the reviewer's reproductions)."""
    from onnx import helper, numpy_helper

    nodes = [helper.make_node("MatMul", ["x", "W"], ["y"]), dead]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", 1, [None, 2])],
                              [helper.make_tensor_value_info("y", 1, [None, 2])],
                              [numpy_helper.from_array(np.eye(2, dtype=np.float32), "W")])
    path = tmp_path / "dead.onnx"
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid(*o) for o in opsets])
                     .SerializeToString())
    return path


@pytest.mark.parametrize("case", ["split", "custom"])
def test_onnx_runtime_gets_only_the_nodes_the_output_depends_on(tmp_path, case):
    """A dead Split with contradicting num_outputs aborted ONNX Runtime (the process);
    a dead node in an unknown domain made it raise: neither reaches it now."""
    from onnx import helper

    dead = {"split": (helper.make_node("Split", ["x"], ["a", "b"], axis=1, num_outputs=3), [("", 18)]),
            "custom": (helper.make_node("Evil", ["x"], ["z"], domain="com.evil"), [("", 18), ("com.evil", 1)])}
    path = _dead_node_onnx(tmp_path, *dead[case])
    report = verify(path, "numpy", "float32", n=16)
    assert report.ok and _labels(report)[1] == "numpy float32 vs ONNX Runtime", report.table()


def test_verify_reads_a_model_file_under_the_limits_given(tmp_path):
    from mlpcodegen.core.limits import LimitExceeded, ReadLimits

    path = _dead_node_onnx(tmp_path, _identity_node(), [("", 18)])
    with pytest.raises(LimitExceeded):
        verify(path, "numpy", "float32", n=4, limits=ReadLimits(max_file_bytes=64))
    with pytest.raises(LimitExceeded):
        peers.as_peer(path, limits=ReadLimits(max_file_bytes=64))
    assert verify(path, "numpy", "float32", n=4, limits=ReadLimits(max_file_bytes=4096)).ok


def _identity_node():
    from onnx import helper

    return helper.make_node("Identity", ["x"], ["dead"])


def test_onnx_runtime_failures_are_model_format_errors():
    from mlpcodegen.core.errors import ModelFormatError

    with pytest.raises(ModelFormatError, match="ONNX Runtime cannot run bad.onnx: "):
        peers._onnx_session_peer(b"\x08\x07\x12\x03abc", lambda: None, "bad.onnx")


def test_an_onnx_file_mlpcodegen_cannot_read_is_refused_before_onnx_runtime(tmp_path):
    from onnx import helper, numpy_helper

    graph = helper.make_graph([helper.make_node("Conv", ["x", "W"], ["y"], name="conv")], "g",
                              [helper.make_tensor_value_info("x", 1, ["n", 3])],
                              [helper.make_tensor_value_info("y", 1, ["n", 3])],
                              initializer=[numpy_helper.from_array(np.ones((1, 1, 1), np.float32), "W")])
    path = tmp_path / "conv.onnx"
    path.write_bytes(helper.make_model(graph).SerializeToString())
    with pytest.raises(UnsupportedError, match=r"node 'conv' \(Conv\) is not supported"):
        peers.as_peer(path)


def _sklearn(kind):
    import warnings

    from sklearn.neural_network import MLPClassifier, MLPRegressor

    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (50, 3))
    estimator, y = {"regressor": (MLPRegressor, x[:, 0] * x[:, 1]), "binary": (MLPClassifier, x[:, 0] > 0),
                    "classes": (MLPClassifier, (x[:, 0] > 0).astype(int) + (x[:, 1] > 0))}[kind]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 50 iterations do not converge: not the point
        return estimator(hidden_layer_sizes=(5,), max_iter=50, random_state=0).fit(x, y)


@pytest.mark.parametrize("kind,method", [("regressor", "predict"), ("binary", "predict_proba"),
                                         ("classes", "predict_proba")])
def test_verify_a_scikit_learn_estimator_with_its_own_predictions(kind, method):
    estimator = _sklearn(kind)
    assert peers.as_peer(estimator).label == f"{type(estimator).__name__}.{method}"
    for dtype in ("float64", "float32"):
        report = verify(estimator, "numpy", dtype, n=64)
        assert report.ok, report.table()
        assert _labels(report)[1] == f"numpy {dtype} vs {type(estimator).__name__}.{method}"


def test_verify_a_torch_sequential_with_its_forward_pass():
    import torch

    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(3, 6), torch.nn.Tanh(), torch.nn.Linear(6, 2),
                                 torch.nn.Softmax(dim=-1))
    module.train()  # verify runs it in eval mode and puts it back
    report = verify(module, "c", "float32", n=64)
    assert report.ok and _labels(report)[1] == "c float32 vs Sequential forward", report.table()
    assert module.training
    assert peers.as_peer(module).input_dtype == "float32"


def test_peers_are_chosen_by_format_without_importing_a_framework(tmp_path):
    """A Keras file's peer loads Keras only when predict is first called; detection reads
    module names and file content."""
    import subprocess
    import sys

    from conftest import REPO

    script = ("import sys; from mlpcodegen.harness.peers import as_peer; "
              "p = as_peer('generated/seed/seed.keras'); "
              "print(p.label, p.network().n_inputs > 0, [m for m in ('tensorflow', 'keras', 'torch', 'sklearn') "
              "if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.stdout.strip() == "model.predict True []", out.stdout + out.stderr
