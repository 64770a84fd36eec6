"""The scikit-learn frontend (mlpcodegen/frontends/sklearn.py) through the public
``mlpcodegen.load``: random MLPRegressor / MLPClassifier estimators (every activation,
every output kind, optionally after scalers in a Pipeline) against their own
``predict`` / ``predict_proba`` and the float64 reference, one compiled C target, and
every refusal.

Estimators are fitted for a few iterations on small random data with a fixed
random_state (the weights need not be good, only fitted), then their weights are
spread out so that the activations' non-linear ranges are used.

Tolerances (errors measured at the reference magnitude, mlpcodegen.harness.verify):
* scikit-learn's float64 predict / predict_proba vs the reference: rel <= 1e-12;
* an estimator fitted on float32 data (float32 weights, float32 predict) vs the
  reference: <= 8 float32 ULP;
* compiled float32 C vs the reference and vs scikit-learn: <= 8 float32 ULP.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.compose import TransformedTargetRegressor
from sklearn.decomposition import PCA
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import GridSearchCV
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, RobustScaler, StandardScaler

import mlpcodegen
from mlpcodegen.core.errors import ModelFormatError, UnsupportedError, ValidationError
from mlpcodegen.harness.report import compare
from mlpcodegen.core.ir import Activate, Affine
from mlpcodegen.core.reference import evaluate_magnitude

F64_REL = 1e-12
F32_ULP = 8.0
ACTIVATIONS = ("identity", "logistic", "tanh", "relu")
KINDS = ("regressor", "regressor_multi", "poisson", "binary", "multiclass", "multilabel")


def _targets(kind: str, x: np.ndarray, r: np.random.Generator) -> np.ndarray:
    w = r.normal(size=(x.shape[1], 3))
    z = x @ w
    return {
        "regressor": z[:, 0],
        "regressor_multi": z,
        "poisson": np.exp(np.tanh(z[:, 0])),
        "binary": (z[:, 0] > 0).astype(int),
        "multiclass": np.argmax(z, axis=1) + 5,  # labels 5, 6, 7
        "multilabel": (z > 0).astype(int),
    }[kind]


def _estimator(kind: str, activation: str, hidden: tuple[int, ...], seed: int):
    options = dict(hidden_layer_sizes=hidden, activation=activation, max_iter=5, random_state=seed)
    if kind.startswith("regressor"):
        return MLPRegressor(**options)
    if kind == "poisson":
        return MLPRegressor(loss="poisson", **options)
    return MLPClassifier(**options)


def _scalers(r: np.random.Generator) -> list:
    """0-2 scalers in front, with their options drawn."""
    choices = [
        lambda: StandardScaler(with_mean=bool(r.integers(2)), with_std=bool(r.integers(2))),
        lambda: MinMaxScaler(feature_range=[(0.0, 1.0), (-1.0, 1.0), (-2.0, 0.5)][int(r.integers(3))],
                             clip=bool(r.random() < 0.5)),
        lambda: RobustScaler(),
        lambda: MaxAbsScaler(),
    ]
    return [choices[int(r.integers(len(choices)))]() for _ in range(int(r.integers(0, 3)))]


def fit(model, x: np.ndarray, y: np.ndarray):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: a few iterations on purpose
        return model.fit(x, y)


def _spread(estimator, r: np.random.Generator) -> None:
    """Larger weights than 5 iterations give, so tanh/logistic saturate somewhere."""
    estimator.coefs_ = [c * r.uniform(1.0, 3.0) for c in estimator.coefs_]


def random_model(seed: int, kind: str):
    r = np.random.default_rng(seed)
    n_inputs = int(r.integers(1, 7))
    hidden = tuple(int(w) for w in r.integers(1, 9, size=int(r.integers(1, 4))))
    activation = ACTIVATIONS[seed % len(ACTIVATIONS)]
    x = r.normal(size=(40, n_inputs)) * r.uniform(0.5, 5.0, n_inputs) + r.normal(size=n_inputs)
    estimator = _estimator(kind, activation, hidden, seed)
    scalers = _scalers(r) if seed % 3 else []
    model = make_pipeline(*scalers, estimator) if scalers else estimator
    fit(model, x, _targets(kind, x, r))
    _spread(estimator, r)
    test_x = r.normal(size=(64, n_inputs)) * 1.5 * x.std(axis=0) + x.mean(axis=0)  # also outside the fit range
    return model, test_x


def framework_output(model, x: np.ndarray) -> np.ndarray:
    """What the network must equal: predict_proba for classifiers, predict for regressors."""
    out = model.predict_proba(x) if hasattr(model, "predict_proba") else model.predict(x)
    return np.asarray(out, dtype=np.float64).reshape(len(x), -1)


#: Seeds whose draws cover every activation (seed % 4) and every scaler, clip or not.
SEEDS = (0, 1, 2, 4, 5, 7, 10, 11, 13)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", SEEDS)
def test_random_estimators_match_sklearn_and_reference(kind, seed):
    model, x = random_model(seed, kind)
    net = mlpcodegen.load(model)
    expected, scale = evaluate_magnitude(net, x)
    np.testing.assert_array_equal(mlpcodegen.evaluate(net, x), expected)
    actual = framework_output(model, x)
    assert actual.shape == expected.shape
    _, rel, _ = compare(actual, expected, scale, "float64")
    assert rel <= F64_REL, f"{kind}: sklearn vs reference rel {rel:.3g}"
    unfolded = mlpcodegen.load(model, fold=False)
    np.testing.assert_allclose(mlpcodegen.evaluate(unfolded, x), expected, rtol=1e-12, atol=1e-12)


def test_output_semantics():
    """Binary: [1 - p, p]; multi-class: rows sum to 1; multi-label: independent logistics;
    predict is the arg-max / threshold of those, through classes_."""
    for kind, width in (("binary", 2), ("multiclass", 3), ("multilabel", 3)):
        model, x = random_model(1, kind)
        net = mlpcodegen.load(model)
        proba = mlpcodegen.evaluate(net, x)
        assert net.n_outputs == width
        if kind == "multilabel":
            np.testing.assert_array_equal(model.predict(x), (proba > 0.5).astype(int))
        else:
            np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-14)
            np.testing.assert_array_equal(model.predict(x), model.classes_[np.argmax(proba, axis=1)])


def test_activation_names_map():
    for activation, name in (("identity", "linear"), ("logistic", "sigmoid"), ("tanh", "tanh"), ("relu", "relu")):
        model, _ = random_model(0, "regressor")
        model.set_params(activation=activation)
        assert mlpcodegen.load(model).layers[0].activation.name == name


def test_float32_fit():
    """Fitted on float32 data: float32 weights, float32 predict within float32 tolerance."""
    r = np.random.default_rng(5)
    x = r.normal(size=(40, 3)).astype(np.float32)
    model = fit(MLPRegressor(hidden_layer_sizes=(6, 4), activation="tanh", max_iter=5, random_state=0),
                x, x.sum(axis=1))
    assert model.coefs_[0].dtype == np.float32
    net = mlpcodegen.load(model)
    assert net.weight_dtype == "float32"
    expected, scale = evaluate_magnitude(net, x.astype(np.float64))
    assert compare(model.predict(x), expected, scale, "float32")[2] <= F32_ULP


@pytest.mark.parametrize("seed,kind", [(13, "multiclass")])  # MinMaxScaler(clip=True) steps in front
def test_compiled_c_float32(seed, kind):
    model, x = random_model(seed, kind)
    net = mlpcodegen.load(model)
    predict = mlpcodegen.compile_c(net, dtype="float32", name="predict")
    x = x.astype(np.float32).astype(np.float64)
    expected, scale = evaluate_magnitude(net, x)
    actual = np.asarray(predict(x.astype(np.float32)), dtype=np.float64)
    assert compare(actual, expected, scale, "float32")[2] <= F32_ULP
    assert compare(actual, framework_output(model, x), scale, "float32")[2] <= F32_ULP


@pytest.mark.parametrize("feature_range,kinds", [
    ((0.0, 1.0), {"relu"}), ((-1.0, 1.0), {"hard_tanh"}), ((-2.0, 0.5), {"threshold"}), ((0.0, 6.0), {"relu6"}),
])
def test_minmax_clip_kept_exactly(feature_range, kinds):
    r = np.random.default_rng(0)
    x = r.normal(size=(40, 3))
    model = fit(make_pipeline(MinMaxScaler(feature_range, clip=True),
                              MLPRegressor(hidden_layer_sizes=(4,), max_iter=5, random_state=0)), x, x[:, 0])
    net = mlpcodegen.load(model)
    assert {layer.activation.name for layer in net.layers if isinstance(layer, Activate)} == kinds
    assert "clipped" in " ".join(net.notes)
    wide = r.normal(size=(64, 3)) * 4  # most rows clipped somewhere
    expected, scale = evaluate_magnitude(net, wide)
    assert compare(model.predict(wide), expected, scale, "float64")[1] <= F64_REL
    # the clipped scaled inputs are bit-exact: compare the scaler alone
    scaled = model[0].transform(wide)
    head = mlpcodegen.load(make_pipeline(model[0], _identity_regressor(3)), fold=False)
    np.testing.assert_array_equal(mlpcodegen.evaluate(head, wide), scaled)


def _identity_regressor(width: int) -> MLPRegressor:
    """A fitted-looking MLPRegressor computing the identity (one linear hidden layer)."""
    model = fit(MLPRegressor(hidden_layer_sizes=(width,), activation="identity", max_iter=1, random_state=0),
                np.zeros((4, width)), np.zeros((4, width)))
    model.coefs_ = [np.eye(width), np.eye(width)]
    model.intercepts_ = [np.zeros(width), np.zeros(width)]
    return model


def test_scaling_notes_and_fold_false():
    r = np.random.default_rng(1)
    x = r.normal(size=(30, 2)) * 10
    model = fit(Pipeline([("scale", StandardScaler()), ("mlp", MLPRegressor(hidden_layer_sizes=(3,), max_iter=5,
                                                                           random_state=0))]), x, x[:, 1])
    folded, unfolded = mlpcodegen.load(model), mlpcodegen.load(model, fold=False)
    assert not any(isinstance(layer, Affine) for layer in folded.layers)
    assert isinstance(unfolded.layers[0], Affine)
    assert any("'scale'" in note and "StandardScaler" in note for note in folded.notes)


def test_nested_pipeline_and_passthrough():
    r = np.random.default_rng(2)
    x = r.normal(size=(30, 2)) * 3
    inner = make_pipeline(StandardScaler(), "passthrough")
    model = fit(Pipeline([("pre", inner), ("skip", "passthrough"), ("mlp", MLPClassifier(hidden_layer_sizes=(3,),
                                                                                       max_iter=5, random_state=0))]),
                x, (x[:, 0] > 0).astype(int))
    net = mlpcodegen.load(model)
    expected, scale = evaluate_magnitude(net, x)
    assert compare(model.predict_proba(x), expected, scale, "float64")[1] <= F64_REL


@pytest.mark.parametrize("transformer", [StandardScaler(), MinMaxScaler((-1.0, 1.0), clip=True), RobustScaler(),
                                         None], ids=["standard", "minmax_clip", "robust", "identity"])
@pytest.mark.parametrize("outputs", [1, 2])
def test_transformed_target_regressor_output_scaling(transformer, outputs):
    """TransformedTargetRegressor: the inverse of its target scaler is folded into the
    output layer (inverse_transform does not clip), so the network equals its predict."""
    r = np.random.default_rng(outputs)
    x = r.normal(size=(40, 3)) * 5
    y = (x @ r.normal(size=(3, outputs))) * 100 + 1000
    regressor = make_pipeline(StandardScaler(), MLPRegressor(hidden_layer_sizes=(5,), activation="tanh",
                                                             max_iter=5, random_state=0))
    model = fit(TransformedTargetRegressor(regressor, transformer=transformer), x, y[:, 0] if outputs == 1 else y)
    net = mlpcodegen.load(model)
    assert net.n_outputs == outputs
    assert ("output scaling" in " ".join(net.notes)) == (transformer is not None)
    expected, scale = evaluate_magnitude(net, x * 1.5)
    assert compare(model.predict(x * 1.5), expected, scale, "float64")[1] <= F64_REL


def _fitted_mlp() -> MLPRegressor:
    return fit(MLPRegressor(hidden_layer_sizes=(3,), max_iter=5, random_state=0), np.eye(3), np.arange(3.0))


def _nan_coefs() -> MLPRegressor:
    model = _fitted_mlp()
    model.coefs_[1] = model.coefs_[1].copy()
    model.coefs_[1][2, 0] = np.inf
    return model


@pytest.mark.parametrize("build,error,words", [
    (lambda: MLPRegressor(), ModelFormatError, ["MLPRegressor is not fitted", "fit()"]),
    (lambda: make_pipeline(StandardScaler(), _fitted_mlp()), ModelFormatError,
     ["'standardscaler' (StandardScaler)", "not fitted"]),
    (lambda: fit(LinearRegression(), np.eye(3), np.arange(3.0)), UnsupportedError,
     ["LinearRegression", "MLPRegressor / MLPClassifier", "StandardScaler, MinMaxScaler"]),
    (lambda: fit(make_pipeline(PCA(2), MLPRegressor(max_iter=2)), np.eye(3), np.arange(3.0)), UnsupportedError,
     ["step 'pca' (PCA)", "supported"]),
    (lambda: fit(make_pipeline(StandardScaler(), LinearRegression()), np.eye(3), np.arange(3.0)), UnsupportedError,
     ["'linearregression' (LinearRegression)", "last step must be"]),
    (_nan_coefs, ValidationError, ["coefs_[1]", "non-finite", "refit"]),
    (lambda: make_pipeline(StandardScaler().fit(np.eye(4)), _fitted_mlp()), ValidationError,
     ["'standardscaler'", "4 features", "network 3"]),
    (lambda: fit(GridSearchCV(MLPRegressor(max_iter=2), {"alpha": [1e-4]}, cv=2), np.eye(4), np.arange(4.0)),
     UnsupportedError, ["GridSearchCV", "best_estimator_"]),
    (lambda: fit(TransformedTargetRegressor(MLPRegressor(max_iter=2), func=np.log1p, inverse_func=np.expm1),
                 np.eye(3), np.arange(3.0)), UnsupportedError, ["func/inverse_func", "StandardScaler"]),
    (lambda: TransformedTargetRegressor(MLPRegressor()), ModelFormatError, ["TransformedTargetRegressor", "fit()"]),
], ids=["unfitted", "unfitted_scaler", "other_estimator", "other_step", "mlp_not_last", "non_finite",
        "width_mismatch", "grid_search", "ttr_functions", "ttr_unfitted"])
def test_refusals(build, error, words):
    with pytest.raises(error) as caught:
        mlpcodegen.load(build())
    for word in words:
        assert word in str(caught.value)
