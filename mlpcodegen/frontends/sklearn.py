"""scikit-learn frontend: the only module that knows scikit-learn.

Reads a fitted ``MLPRegressor`` or ``MLPClassifier`` (alone, or as the last step of a
``Pipeline`` whose earlier steps are scalers) into the IR, so that the network's outputs
are what the estimator itself returns:

* ``MLPRegressor``: ``predict`` (one output, or several); ``loss="poisson"`` ends in exp.
* ``MLPClassifier``, several classes: ``predict_proba`` (softmax over the classes).
* ``MLPClassifier``, two classes: ``predict_proba`` = ``[1 - p, p]``, written as the
  logistic output unit followed by a linear layer with kernel ``[[-1, 1]]`` and bias
  ``[1, 0]`` (``1 - p`` computed as scikit-learn computes it: one rounding).
* ``MLPClassifier``, multi-label: ``predict_proba`` (one logistic per label).

``predict`` of a classifier (the labels) is the arg-max of these probabilities (or
``p > 0.5`` per label), mapped through ``classes_``: that step is not part of the network.

Pipeline steps before the estimator may be ``StandardScaler`` (``with_mean`` /
``with_std`` honoured), ``MinMaxScaler`` (any ``feature_range``; ``clip=True`` is kept
exactly: clipping to ``[a, b]`` becomes ``max(x, a)`` and ``min(x, b)`` steps, written
with the IR's ``threshold`` activation and exact negations, so it is not folded),
``RobustScaler``, ``MaxAbsScaler``, or ``"passthrough"``; nested pipelines are
flattened.  A scaler becomes an ``Affine`` step that the exact passes fold into the
first layer (``fold=True``); the network's ``notes`` say which scaling was folded in.

A ``TransformedTargetRegressor`` around such a regressor (or pipeline) whose
``transformer`` is one of those scalers (or none) has the inverse of its target scaling
folded into the output layer (``inverse_transform`` never clips); ``func`` /
``inverse_func`` are Python functions and are refused.  A search wrapper
(``GridSearchCV``...) is refused with a pointer to its ``best_estimator_``.

Classes are recognised by name (scikit-learn is never imported here, so importing
mlpcodegen does not import it).  Anything else -- another estimator or step, an
unfitted estimator, non-finite coefficients -- is refused with an error saying what is
supported.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..core.errors import MlpCodegenError, ModelFormatError, UnsupportedError, ValidationError
from ..core.ir import Activation, Dense, Layer, Network
from ..core.passes import fold_affine, fuse_activations
from ..core.scaling import Scaling
from ._clamp import clamp_layers

#: scikit-learn's activation names (``activation`` and ``out_activation_``) -> the IR's.
ACTIVATIONS = {"identity": "linear", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu",
               "softmax": "softmax", "exp": "exponential"}

ESTIMATORS = ("MLPRegressor", "MLPClassifier")


def _standard(scaler: Any, where: str) -> tuple[Scaling, list[Layer]]:
    return Scaling.from_sklearn(scaler), []


def _minmax(scaler: Any, where: str) -> tuple[Scaling, list[Layer]]:
    """A MinMaxScaler; clip=True adds the exact clipping steps after the affine map."""
    if not getattr(scaler, "clip", False):
        return Scaling.from_sklearn(scaler), []
    low, high = (float(v) for v in scaler.feature_range)
    scaling = Scaling.minmax(scaler.data_min_, scaler.data_max_, (low, high))
    return scaling, clamp_layers(int(scaling.scale.shape[0]), low, high, f"{where} clip")


#: Pipeline step class name -> reader(scaler, where): its scaling and the layers after it.
SCALERS: dict[str, Callable[[Any, str], tuple[Scaling, list[Layer]]]] = {
    "StandardScaler": _standard, "MinMaxScaler": _minmax, "RobustScaler": _standard,
    "MaxAbsScaler": _standard,
}


#: Wrappers refused with what to pass instead.
_HINTS = {name: " (pass its fitted best_estimator_)" for name in
          ("GridSearchCV", "RandomizedSearchCV", "HalvingGridSearchCV", "HalvingRandomSearchCV")}


def _supported() -> str:
    return (f"{' / '.join(ESTIMATORS)}, alone or as the last step of a Pipeline after "
            f"{', '.join(SCALERS)} or 'passthrough' steps; a TransformedTargetRegressor around one, "
            f"with one of those scalers as its transformer")


def load_object(obj: Any, *, fold: bool = True) -> Network:
    """The frontend-table entry: a fitted MLP estimator or a Pipeline ending in one,
    optionally inside a TransformedTargetRegressor (its output scaling folded in)."""
    obj, output, output_notes = _target_transform(obj)
    steps = _flatten(obj, type(obj).__name__)
    *scalers, (where, estimator) = steps
    if output is not None and _class_name(estimator) != "MLPRegressor":
        raise UnsupportedError(f"TransformedTargetRegressor around {where}: only an MLPRegressor's predict can be "
                               "converted there")
    layers: list[Layer] = []
    notes: list[str] = []
    n_inputs = _n_inputs(estimator, where)
    for name, step in scalers:
        layers.extend(_scaler_layers(name, step, n_inputs, notes))
    layers.extend(_estimator_layers(estimator, where))
    if output is not None:
        layers.append(output.affine(layers[-1].n_out, "TransformedTargetRegressor.transformer_"))
        notes.extend(output_notes)
    try:
        net = Network(n_inputs, tuple(layers), _weight_dtype(estimator), "mlp", tuple(notes))
    except MlpCodegenError as exc:
        raise type(exc)(f"{where}: {exc}") from None
    return fold_affine(fuse_activations(net)) if fold else fuse_activations(net)


def _target_transform(obj: Any) -> tuple[Any, Scaling | None, list[str]]:
    """A TransformedTargetRegressor: (its fitted regressor, the inverse of its target
    scaling, the note saying so); anything else: (obj, None, [])."""
    if _class_name(obj) != "TransformedTargetRegressor":
        return obj, None, []
    where = "TransformedTargetRegressor"
    _fitted(obj, "regressor_", where)
    transformer = obj.transformer_
    if _class_name(transformer) == "FunctionTransformer":
        if transformer.func is None and transformer.inverse_func is None:
            return obj.regressor_, None, []
        raise UnsupportedError(f"{where}: func/inverse_func are Python functions and cannot be converted; use "
                               f"transformer= one of {', '.join(SCALERS)}")
    if _class_name(transformer) not in SCALERS:
        raise UnsupportedError(f"{where}: transformer {_class_name(transformer)} cannot be converted; supported: "
                               f"{', '.join(SCALERS)}")
    try:
        scaling = _plain_scaling(transformer)
    except ValidationError as exc:
        raise ValidationError(f"{where} transformer: {exc}") from None
    note = f"output scaling folded in: {where} transformer ({_class_name(transformer)}) inverted: {scaling.describe()}"
    return obj.regressor_, scaling.inverse(), [note]


def _plain_scaling(scaler: Any) -> Scaling:
    """The affine map of a fitted scaler (inverse_transform never clips)."""
    if _class_name(scaler) == "MinMaxScaler":
        return Scaling.minmax(scaler.data_min_, scaler.data_max_, tuple(scaler.feature_range))
    return Scaling.from_sklearn(scaler)


def _class_name(obj: Any) -> str:
    return type(obj).__name__


def _flatten(obj: Any, where: str) -> list[tuple[str, Any]]:
    """(name, step) of every step, nested pipelines flattened, 'passthrough' dropped;
    the last one is the MLP estimator, the others scalers."""
    if _class_name(obj) not in ESTIMATORS + ("Pipeline",):
        raise UnsupportedError(f"{where}: a scikit-learn {_class_name(obj)} cannot be converted"
                               f"{_HINTS.get(_class_name(obj), '')}; supported: {_supported()}")
    steps = _steps(obj, where)
    if not steps or _class_name(steps[-1][1]) not in ESTIMATORS:
        last = steps[-1][0] if steps else "the Pipeline (no steps)"
        raise UnsupportedError(f"{last}: the last step must be an MLPRegressor or MLPClassifier; supported: "
                               f"{_supported()}")
    for label, step in steps[:-1]:
        if _class_name(step) not in SCALERS:
            raise UnsupportedError(f"{label} cannot be converted; supported: {_supported()}")
    return steps


def _steps(obj: Any, where: str) -> list[tuple[str, Any]]:
    if _class_name(obj) != "Pipeline":
        return [(where, obj)]
    steps: list[tuple[str, Any]] = []
    for name, step in obj.steps:
        if step is not None and not (isinstance(step, str) and step == "passthrough"):
            steps.extend(_steps(step, f"Pipeline step {str(name)!r} ({_class_name(step)})"))
    return steps


def _fitted(obj: Any, attribute: str, where: str = "") -> None:
    if not hasattr(obj, attribute):
        raise ModelFormatError(f"{where or 'the ' + _class_name(obj)} is not fitted (no {attribute}); "
                               "call fit() first")


def _n_inputs(estimator: Any, where: str) -> int:
    _fitted(estimator, "coefs_", where)
    coefs = estimator.coefs_
    if not coefs or np.ndim(coefs[0]) != 2:
        raise ModelFormatError(f"{where}: coefs_ is not a list of 2-D arrays")
    return int(np.shape(coefs[0])[0])


def _scaler_layers(where: str, scaler: Any, width: int, notes: list[str]) -> list[Layer]:
    _fitted(scaler, "n_features_in_", where)
    try:
        scaling, after = SCALERS[_class_name(scaler)](scaler, where)
        step = scaling.affine(width, where)
    except ValidationError as exc:
        raise ValidationError(f"{where}: {exc}") from None
    except AttributeError as exc:  # a scaler fitted by another version, or not at all
        raise ModelFormatError(f"{where} is not fitted or not readable ({exc}); call fit() first") from None
    clip = " then clipped to its feature_range" if after else ""
    notes.append(f"input scaling folded in: {where}: {scaling.describe()}{clip}")
    return [step, *after]


def _estimator_layers(estimator: Any, where: str) -> list[Layer]:
    """One Dense layer per coefs_ entry; the output activation as scikit-learn applies it."""
    hidden = _activation(getattr(estimator, "activation", None), "activation", where)
    output = _activation(getattr(estimator, "out_activation_", None), "out_activation_", where)
    coefs, intercepts = list(estimator.coefs_), list(getattr(estimator, "intercepts_", []))
    if len(intercepts) != len(coefs):
        raise ModelFormatError(f"{where}: {len(coefs)} coefs_ but {len(intercepts)} intercepts_")
    layers: list[Layer] = []
    for index, (kernel, bias) in enumerate(zip(coefs, intercepts)):
        last = index == len(coefs) - 1
        name = "output" if last else f"hidden_{index + 1}"
        layers.append(Dense(_weights(kernel, f"coefs_[{index}]", where), _weights(bias, f"intercepts_[{index}]", where),
                            output if last else hidden, name))
    if _class_name(estimator) == "MLPClassifier" and layers[-1].n_out == 1:
        # predict_proba of a binary classifier: [1 - p, p].
        layers.append(Dense(np.array([[-1.0, 1.0]]), np.array([1.0, 0.0]), name="predict_proba"))
    return layers


def _activation(name: Any, attribute: str, where: str) -> Activation:
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise UnsupportedError(f"{where}: {attribute}={name!r} is not supported; supported: "
                               f"{', '.join(ACTIVATIONS)}")
    return Activation(ACTIVATIONS[name])


def _weights(values: Any, what: str, where: str) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype.kind != "f":
        raise ModelFormatError(f"{where}: {what} holds {array.dtype} values, not floating-point numbers")
    bad = np.argwhere(~np.isfinite(array))
    if len(bad):
        index = tuple(int(i) for i in bad[0])
        raise ValidationError(f"{where}: {what} has {len(bad)} non-finite value(s), first {array[index]!r} at "
                              f"index {index}: the fit diverged; refit (e.g. a smaller learning_rate_init or "
                              f"scaled inputs) before converting")
    return array.astype(np.float64)


def _weight_dtype(estimator: Any) -> str:
    """The widest type the coefficients are stored in (fit on float32 data: float32)."""
    dtypes = {np.asarray(c).dtype.name for c in estimator.coefs_}
    return next((d for d in ("float64", "float32", "float16") if d in dtypes), "float64")
