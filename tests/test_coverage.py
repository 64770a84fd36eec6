"""Every supported activation and layer, through every backend, against the
reference evaluator and model.predict (issue: full Keras dense-network coverage).

Each model is built with set_weights from a fixed seed, saved as .keras and .h5 and
read back; inputs include +-50 and the kinks of the activations (0, +-0.5, +-1, +-3, 6).
"""
import numpy as np
import pytest

from mlpcodegen import runtime
from mlpcodegen.backends import BACKENDS
from mlpcodegen.frontends.keras import SUPPORTED_LAYERS, load
from mlpcodegen.harness.report import F32_ULP_BOUND, F64_REL_BOUND, compare
from mlpcodegen.core.ir import Affine, Dense
from mlpcodegen.core.reference import evaluate_magnitude

KINKS = np.array([0.0, 0.5, -0.5, 1.0, -1.0, 3.0, -3.0, 6.0, -6.0, 50.0, -50.0, 1e-3, -1e-3, 0.2, 2.0, -2.0])
WIDTH = 4
#: every target that runs in-process, with its dtypes
TARGETS = [(name, dtype) for name in runtime.LOADERS for dtype in BACKENDS[name].dtypes]

KERAS_ACTIVATIONS = [
    "linear", "relu", "relu6", "leaky_relu", "elu", "selu", "celu", "gelu", "silu", "swish", "hard_silu",
    "hard_swish", "sigmoid", "hard_sigmoid", "log_sigmoid", "tanh", "hard_tanh", "tanh_shrink", "hard_shrink",
    "soft_shrink", "softplus", "softsign", "sparse_plus", "squareplus", "mish", "exponential", "sparse_sigmoid",
    "softmax", "log_softmax",
]


def inputs(width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = [np.roll(np.resize(KINKS, width), k) for k in range(len(KINKS))]
    rows += list(rng.uniform(-4, 4, (40, width))) + list(rng.uniform(-60, 60, (8, width)))
    return np.array(rows, dtype=np.float32)


def finish(keras, layers, seed=0, n_in=WIDTH):
    """Sequential model of ``layers``, weights set from a seeded generator."""
    model = keras.Sequential([keras.Input((n_in,))] + layers)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if getattr(layer, "_identity_kernel", False):
            units = layer.units
            layer.set_weights([np.eye(n_in, units, dtype=np.float32), np.zeros(units, np.float32)][: len(layer.weights)])
        elif layer.weights and type(layer).__name__ != "Normalization":  # adapted or given: keep
            layer.set_weights([_plausible(v.name, w, rng) for v, w in zip(layer.weights, layer.get_weights())])
    return model


def _plausible(name: str, w: np.ndarray, rng) -> np.ndarray:
    """Random values of the right shape; variances positive."""
    values = rng.normal(0.0, 0.8, w.shape)
    if "variance" in name:
        values = np.abs(values) + 0.1
    return values.astype(w.dtype)


def activation_model(keras, name: str, identity: bool):
    units = 2 * WIDTH if name == "glu" else WIDTH
    first = keras.layers.Dense(units, activation=name)
    first._identity_kernel = identity  # z = x exactly, so the kinks in the inputs are hit
    return finish(keras, [first, keras.layers.Dense(3)], seed=len(name))


def layer_cases(keras):
    L = keras.layers
    dense = lambda units=WIDTH, **kw: L.Dense(units, **kw)  # noqa: E731
    normalization = L.Normalization(mean=[0.5, -1.0, 2.0, 0.0], variance=[4.0, 0.25, 1.0, 9.0])
    inverted = L.Normalization(mean=[0.5, -1.0, 2.0, 0.0], variance=[4.0, 0.25, 1.0, 9.0], invert=True)
    adapted = L.Normalization()
    adapted.adapt(np.random.default_rng(0).normal([1, 2, 3, 4], [1, 2, 3, 4], (200, WIDTH)).astype(np.float32))
    return {
        "Activation": [dense(), L.Activation("gelu"), dense(2)],
        "ReLU": [dense(), L.ReLU(), dense(2)],
        "ReLU-params": [dense(), L.ReLU(max_value=1.5, negative_slope=0.1, threshold=0.3), dense(2)],
        "LeakyReLU": [dense(), L.LeakyReLU(negative_slope=0.25), dense(2)],
        "PReLU": [dense(), L.PReLU(), dense(2)],
        "PReLU-shared": [dense(), L.PReLU(shared_axes=[1]), dense(2)],
        "ELU": [dense(), L.ELU(alpha=0.7), dense(2)],
        "Softmax": [dense(), L.Softmax(), dense(2)],
        "BatchNormalization": [dense(), L.BatchNormalization(), dense(2, activation="tanh")],
        "BatchNormalization-bare": [dense(activation="relu"), L.BatchNormalization(center=False, scale=False), dense(2)],
        "BatchNormalization-first": [L.BatchNormalization(epsilon=0.01), dense(3, activation="sigmoid")],
        "Normalization": [normalization, dense(3, activation="tanh")],
        "Normalization-adapted": [adapted, dense(3, activation="tanh")],
        "Normalization-invert": [dense(activation="tanh"), inverted],
        "Rescaling": [L.Rescaling(1 / 255.0, offset=-0.5), dense(2, activation="relu")],
        "identity-layers": [L.Dropout(0.5), L.AlphaDropout(0.2), L.GaussianNoise(0.3), L.GaussianDropout(0.2),
                            L.ActivityRegularization(l1=0.1), L.Flatten(), L.Reshape((WIDTH,)), dense(2)],
        "LayerNormalization": [dense(), L.LayerNormalization(), dense(2)],
        "LayerNormalization-bare": [dense(), L.LayerNormalization(center=False, scale=False, epsilon=0.1)],
        "LayerNormalization-rms": [dense(), L.LayerNormalization(rms_scaling=True), dense(2)],
        "RMSNormalization": [dense(), L.RMSNormalization(), dense(2)],
        "UnitNormalization": [dense(), L.UnitNormalization(), dense(2)],
        "no-bias": [dense(use_bias=False, activation="elu"), dense(2, use_bias=False)],
    }


ACTIVATION_CASES = [(name, identity) for name in KERAS_ACTIVATIONS for identity in (True, False)]
LAYER_CASES = [
    "Activation", "ReLU", "ReLU-params", "LeakyReLU", "PReLU", "PReLU-shared", "ELU", "Softmax",
    "BatchNormalization", "BatchNormalization-bare", "BatchNormalization-first", "Normalization",
    "Normalization-adapted", "Normalization-invert", "Rescaling", "identity-layers", "LayerNormalization",
    "LayerNormalization-bare", "LayerNormalization-rms", "RMSNormalization", "UnitNormalization", "no-bias"]


@pytest.fixture(scope="module")
def built(keras_module):
    """Every activation and layer case: (models, C functions).  Each model is built once;
    the C of all of them (as runtime.load emits it) is compiled in one file per dtype,
    one gcc run instead of one per case and dtype (the functions have distinct names)."""
    from conftest import build_flags
    from mlpcodegen.backends.c import cdef, emit_c
    from mlpcodegen.runtime import CompiledNetwork
    from mlpcodegen.runtime.cffi_build import build_module

    layers = layer_cases(keras_module)
    models = {**{case: activation_model(keras_module, *case) for case in ACTIVATION_CASES},
              **{case: finish(keras_module, layers[case], seed=len(case)) for case in LAYER_CASES}}
    nets = {case: load(model) for case, model in models.items()}
    names = {case: f"case_{i}" for i, case in enumerate(models)}
    c_functions = {}
    for dtype in BACKENDS["c"].dtypes:
        module = build_module("\n".join(emit_c(nets[k], dtype=dtype, name=n) for k, n in names.items()),
                              "".join(cdef(nets[k], dtype, n) for k, n in names.items()), build_flags())
        c_functions[dtype] = {k: (nets[k], CompiledNetwork(module, n, nets[k].n_inputs, nets[k].n_outputs, dtype))
                              for k, n in names.items()}
    return models, c_functions


def test_one_c_file_compiles_what_runtime_load_compiles(built):
    from mlpcodegen.backends import emit
    from mlpcodegen.backends.c import emit_c

    models, c_functions = built
    net, function = c_functions["float32"]["no-bias"]
    assert emit(net, "c", dtype="float32", name="case_0") == emit_c(net, dtype="float32", name="case_0")
    x = inputs(WIDTH, seed=1)
    np.testing.assert_allclose(function(x), runtime.load(net, "c", dtype="float32", name="m")(x), rtol=1e-6)


#: Numba compiles each case in one dtype (about a second per compile: half of this file's
#: time), alternating; both dtypes of every activation are compiled and checked against
#: the reference in test_languages and on special values in test_special_values.
def _numba_dtype(case) -> str:
    return ("float32", "float64")[(ACTIVATION_CASES + LAYER_CASES).index(case) % 2]


def check_everywhere(model, tmp_path, x, c_functions=None, case=None):
    """``model`` through the .keras and .h5 files and every target; ``c_functions``: the
    case's C already compiled (fixture ``built``), else through runtime.load."""
    model.save(tmp_path / "m.keras")
    model.save(tmp_path / "m.h5")
    net = load(tmp_path / "m.keras")
    assert net == load(tmp_path / "m.h5") == load(model)
    reference, scale = evaluate_magnitude(load(model, fold=False), x)  # rounding as Keras computes it
    predicted = model.predict(x, batch_size=len(x), verbose=0)
    assert compare(predicted, reference, scale, "float32")[2] <= F32_ULP_BOUND, "reference disagrees with Keras"
    for target, dtype in TARGETS:
        if target == "numba" and case is not None and dtype != _numba_dtype(case):
            continue
        if target == "c" and c_functions is not None:
            compiled_net, function = c_functions[dtype][case]
            assert compiled_net == net
            got = function(x)
        else:
            got = runtime.load(net, target, dtype=dtype, name="m")(x)
        if dtype == "float64":
            _, rel, _ = compare(got, reference, scale, "float64")
            assert rel <= F64_REL_BOUND, (target, dtype, rel)
        else:
            assert compare(got, reference, scale, "float32")[2] <= F32_ULP_BOUND, (target, dtype)
        assert compare(got, predicted, scale, "float32")[2] <= F32_ULP_BOUND, (target, dtype, "vs predict")
    return net


@pytest.mark.parametrize("identity", [True, False], ids=["kinks", "random"])
@pytest.mark.parametrize("name", KERAS_ACTIVATIONS)
def test_every_activation_in_every_backend(built, tmp_path, name, identity):
    x = inputs(WIDTH)
    if name == "exponential" and not identity:  # keep exp(z) finite in float32 (z < 88)
        x = np.clip(x, -20, 20)
    models, c_functions = built
    check_everywhere(models[name, identity], tmp_path, x, c_functions, (name, identity))


@pytest.mark.parametrize("case", LAYER_CASES)
def test_every_layer_in_every_backend(built, tmp_path, case):
    models, c_functions = built
    check_everywhere(models[case], tmp_path, inputs(WIDTH, seed=1), c_functions, case)


def test_numba_checks_every_case_in_both_dtypes_somewhere():
    """Each activation case (kinks, random) and the layer cases run Numba in both dtypes."""
    for name in KERAS_ACTIVATIONS:
        assert {_numba_dtype((name, True)), _numba_dtype((name, False))} == {"float32", "float64"}
    assert {_numba_dtype(case) for case in LAYER_CASES} == {"float32", "float64"}


def test_batch_normalization_is_folded_away(keras_module, tmp_path):
    """Dense -> BatchNorm -> Dense: no separate normalisation step in the IR or the C."""
    L = keras_module.layers
    model = finish(keras_module, [L.Dense(5, activation="tanh"), L.BatchNormalization(), L.Dense(2)], seed=3)
    net = check_everywhere(model, tmp_path, inputs(WIDTH, seed=2))
    assert [type(layer) for layer in net.layers] == [Dense, Dense]
    text = BACKENDS["c"].emit(net, dtype="float32", name="m")
    assert "affine" not in text and text.count("/* layer") == 4  # two in the one-sample function, two in the block


def test_normalisation_before_a_nonlinear_layer_is_folded_forward(keras_module):
    L = keras_module.layers
    model = finish(keras_module, [L.Dense(5, activation="relu"), L.BatchNormalization(), L.Dense(2, activation="relu")])
    assert [type(layer) for layer in load(model).layers] == [Dense, Dense]
    model = finish(keras_module, [L.Dense(5, activation="relu"), L.BatchNormalization()])
    assert [type(layer) for layer in load(model).layers] == [Dense, Affine]  # nothing to fold into


@pytest.mark.parametrize("dtype", ["float64", "float16", "bfloat16"])
def test_weight_dtypes(keras_module, tmp_path, dtype):
    L = keras_module.layers
    model = keras_module.Sequential([keras_module.Input((WIDTH,)), L.Dense(5, activation="tanh", dtype=dtype),
                                     L.Dense(2, dtype=dtype)])
    rng = np.random.default_rng(0)
    for layer in model.layers:
        layer.set_weights([rng.normal(size=w.shape) for w in layer.get_weights()])
    model.save(tmp_path / "m.keras")
    net = load(tmp_path / "m.keras")
    assert net.weight_dtype == dtype and net == load(model)
    from mlpcodegen.harness.verify import verify

    # model.predict computes in the layer's dtype: verify measures against it in that type's ULPs
    for target_dtype in ("float32", "float64"):
        report = verify(model, "c", target_dtype, n=200, domain=(-3, 3))
        assert report.ok, report.table()
        assert report.comparisons[1].ulp_dtype == (dtype if dtype != "float64" else target_dtype)


def test_supported_layers_cover_the_issue_list():
    wanted = {"InputLayer", "Dense", "Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax",
              "BatchNormalization", "Normalization", "Rescaling", "Dropout", "AlphaDropout", "GaussianNoise",
              "GaussianDropout", "SpatialDropout1D", "ActivityRegularization", "Flatten", "Reshape",
              "LayerNormalization", "RMSNormalization", "UnitNormalization"}
    assert wanted <= set(SUPPORTED_LAYERS)


def test_every_keras_activation_is_covered(keras_module):
    names = {n for n in dir(keras_module.activations) if not n.startswith("_")} - {"get", "serialize", "deserialize"}
    # threshold needs arguments (no string form); sparsemax is refused and glu cannot be
    # used in a Keras Dense layer (Keras infers the un-halved width), see below
    assert names - {"threshold", "sparsemax", "glu"} <= set(KERAS_ACTIVATIONS)


def test_glu_after_dense_is_explained(keras_module, tmp_path):
    """Keras builds the layer after a glu Dense for the un-halved width, so such a
    model cannot run; the converter says where the widths disagree."""
    from mlpcodegen.core.errors import MlpCodegenError

    model = activation_model(keras_module, "glu", identity=False)
    with pytest.raises(MlpCodegenError, match=r"Dense layer .*takes 8 inputs but the layer before gives 4"):
        load(model)


def test_sparsemax_from_keras_is_refused_with_the_reason(keras_module):
    model = activation_model(keras_module, "sparsemax", identity=False)
    from mlpcodegen.core.errors import UnsupportedError

    with pytest.raises(UnsupportedError, match="does not compute as defined"):
        load(model)


@pytest.mark.parametrize("target,dtype", TARGETS)
def test_sparsemax_and_threshold_in_the_ir(target, dtype):
    """Activations Keras cannot give us (as defined) still work through the IR."""
    from mlpcodegen.core.ir import Activation, Network

    rng = np.random.default_rng(5)
    for activation in (Activation("sparsemax"), Activation("threshold", (("threshold", 0.3), ("default_value", -1.0))),
                       Activation("glu")):
        units = 2 * WIDTH if activation.name == "glu" else WIDTH
        first = Dense(np.eye(WIDTH, units) + 0.1 * rng.normal(size=(WIDTH, units)), None, activation)
        net = Network(WIDTH, (first, Dense(rng.normal(size=(WIDTH, 2)), rng.normal(size=2))))
        x = inputs(WIDTH)
        reference, scale = evaluate_magnitude(net, x)
        got = runtime.load(net, target, dtype=dtype, name="m")(x)
        error = compare(got, reference, scale, dtype)
        assert (error[1] <= F64_REL_BOUND) if dtype == "float64" else (error[2] <= F32_ULP_BOUND), activation.name
