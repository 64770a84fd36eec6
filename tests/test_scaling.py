"""Scaling folded into the network (issue 9): constant features as scikit-learn does,
the feature named in every error, clear errors for bad files and flags, notes in the
generated code, and the scaling JSON written from fitted scikit-learn scalers."""
import json

import numpy as np
import pytest
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, RobustScaler, StandardScaler

from conftest import REPO
from mlpcodegen.backends import emit
from mlpcodegen.app.cli import main
from mlpcodegen.core.errors import ValidationError
from mlpcodegen.frontends.keras import load
from mlpcodegen.core.ir import Dense, Network
from mlpcodegen.core.reference import evaluate
from mlpcodegen.core.scaling import Scaling, read_scaling_file, summarise, with_scaling, write_scaling_file

SEED = REPO / "generated" / "seed" / "seed.keras"
RNG = np.random.default_rng(9)
RAW = np.column_stack([RNG.uniform(10, 20, 50), np.full(50, 7.5), RNG.normal(1000, 300, 50)])  # feature 1 constant


def identity_net(width):
    return Network(width, (Dense(np.eye(width), np.zeros(width), name="id"),))


@pytest.mark.parametrize("scaler", [MinMaxScaler(), MinMaxScaler(feature_range=(-1, 1)), StandardScaler(),
                                    StandardScaler(with_mean=False), StandardScaler(with_std=False),
                                    RobustScaler(), MaxAbsScaler()], ids=repr)
def test_every_sklearn_scaler_matches_transform_constant_feature_included(scaler):
    scaler.fit(RAW)
    folded = with_scaling(identity_net(3), scaler)
    np.testing.assert_allclose(evaluate(folded, RAW), scaler.transform(RAW), rtol=1e-12, atol=1e-12)


def test_constant_features_from_numbers_are_accepted_as_sklearn():
    minmax = Scaling.minmax([0.0, 5.0], [1.0, 5.0])
    np.testing.assert_allclose(minmax.apply([[0.5, 5.0]]), MinMaxScaler().fit([[0, 5], [1, 5]]).transform([[0.5, 5]]))
    standard = Scaling.standard([1.0, 2.0], [2.0, 0.0])
    assert standard.scale.tolist() == [0.5, 1.0]


@pytest.mark.parametrize("build,message", [
    (lambda: Scaling.minmax([0, 0, 3], [1, 1, 2]), "min-max scaling of feature 2: max 2 is below min 3"),
    (lambda: Scaling.standard([0, 0], [1, -1]), "standard scaling of feature 1: std -1 is negative"),
    (lambda: Scaling.minmax([0, float("nan")], [1, 1]), "min of feature 1 is nan"),
    (lambda: Scaling([1.0, 0.0], [0.0, 0.0]), "scaling factor of feature 1 is zero"),
    (lambda: Scaling.minmax([0, 0, 0], [1, 1]), "min has 3 values and max 2"),
    (lambda: Scaling.minmax([0], [1], feature_range=(1, 0)), "feature_range must be two numbers, low < high"),
    (lambda: Scaling.minmax("abc", [1]), "min must be a number or a list of numbers"),
    (lambda: Scaling.from_sklearn(MinMaxScaler(clip=True).fit(RAW)), "clip=True cannot be folded in"),
    (lambda: Scaling.from_sklearn(MinMaxScaler()), "not fitted"),
    (lambda: Scaling.from_sklearn(object()), "MinMaxScaler, StandardScaler, RobustScaler, MaxAbsScaler"),
])
def test_scaling_errors_name_the_feature_and_are_short(build, message):
    with pytest.raises(ValidationError) as caught:
        build()
    assert message in str(caught.value) and len(str(caught.value)) < 200


def test_128_constant_feature_error_is_short():
    with pytest.raises(ValidationError) as caught:
        Scaling.minmax(np.arange(128.0), np.arange(128.0) - np.r_[np.zeros(127), 1.0])
    assert "feature 127" in str(caught.value) and len(str(caught.value)) < 120


@pytest.mark.parametrize("content,message", [
    (None, "is not a regular file (a directory)"),
    ('{"input": 3}', "input must be an object"),
    ('{"input": {"kind": "minmax", "min": [0]}}', "minmax scaling needs 'max'"),
    ('{"input": {"kind": "log"}}', "kind must be one of minmax, standard, affine"),
    ('{"inptu": {"kind": "minmax", "min": [0], "max": [1]}}', "unknown scaling 'inptu'"),
    ('{"input": {"kind": "standard", "mean": [NaN], "std": [1]}}', "mean of feature 0 is nan"),
    ("[1, 2]", "needs an 'input' and/or 'output' object"),
    ("\xff", "not valid JSON"),
])
def test_bad_scaling_files_are_clear_errors(tmp_path, content, message):
    path = tmp_path / "s.json"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content.encode("latin-1"))
    with pytest.raises(ValidationError) as caught:
        read_scaling_file(path)
    assert message in str(caught.value)


def test_a_scaling_file_may_document_itself():
    inputs, outputs = read_scaling_file(REPO / "generated" / "seed" / "scaling.json")  # has a "target" text
    assert inputs.spec["kind"] == "minmax" and outputs is None


def test_write_scaling_file_round_trips_fitted_scalers(tmp_path):
    y = np.column_stack([RAW[:, 0] * 3, RAW[:, 2] / 7])
    x_scaler, y_scaler = MinMaxScaler(feature_range=(-1, 1)).fit(RAW), StandardScaler().fit(y)
    path = write_scaling_file(tmp_path / "scaling.json", input=x_scaler, output=y_scaler)
    spec = json.loads(path.read_text())
    assert spec["input"]["kind"] == "minmax" and spec["output"]["kind"] == "standard"
    inputs, outputs = read_scaling_file(path)
    np.testing.assert_array_equal(inputs.apply(RAW), Scaling.from_sklearn(x_scaler).apply(RAW))  # exact floats
    np.testing.assert_allclose(inputs.apply(RAW), x_scaler.transform(RAW), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(outputs.inverse().apply(y_scaler.transform(y)), y, rtol=1e-13)
    # A Scaling object round-trips too, as its exact affine map.
    again = write_scaling_file(tmp_path / "again.json", input=inputs.inverse())
    np.testing.assert_array_equal(read_scaling_file(again)[0].scale, inputs.inverse().scale)
    # and through the command line
    assert main(["formula", str(SEED), "--numpy", "--scaling", str(write_scaling_file(
        tmp_path / "seed.json", input=MinMaxScaler().fit([[-2.0], [2.0]])))]) == 0


def test_notes_record_each_scaling_briefly():
    scaler = MinMaxScaler().fit(np.vstack([np.zeros(128), np.arange(1.0, 129.0)]))
    net = with_scaling(identity_net(128), scaler, StandardScaler().fit(np.ones((2, 128))))
    assert len(net.notes) == 2
    assert net.notes[0].startswith("input scaling folded in: minmax min [0, 0, 0, ..., 0] (128 values) max [1, 2, 3")
    assert net.notes[1].startswith("output scaling folded in, inverted: standard mean [1, 1, 1, ..., 1] (128 values)")
    assert all(len(note) < 200 for note in net.notes)
    assert summarise([1.5, 2.0]) == "[1.5, 2]"


@pytest.mark.parametrize("target", ["c", "numpy", "python", "latex"])
def test_generated_code_states_the_scaling(target):
    net = with_scaling(load(SEED), Scaling.minmax([-3.0], [3.0]))
    assert "input scaling folded in: minmax min [-3] max [3]" in emit(net, target, name="seed")


def test_cli_scaling_flags_bad_usage_exits_2_and_bad_files_exit_1(tmp_path, capsys):
    assert main(["convert", str(SEED), "--input-min", "0,0", "--input-max", "1,1,1"]) == 2
    assert "--input-min/max: min has 2 values and max 3" in capsys.readouterr().err
    assert main(["convert", str(SEED), "--input-min", "0"]) == 2
    assert "give --input-min with --input-max" in capsys.readouterr().err
    assert main(["convert", str(SEED), "--input-min", "1", "--input-max", "0"]) == 2
    assert "feature 0: max 0 is below min 1" in capsys.readouterr().err
    assert main(["convert", str(SEED), "--scaling", str(tmp_path)]) == 1
    assert capsys.readouterr().err.startswith("mlpcodegen convert: error: scaling file ")
    (tmp_path / "n.json").write_text('{"input": 5}')
    assert main(["convert", str(SEED), "--scaling", str(tmp_path / "n.json")]) == 1
    assert "input must be an object" in capsys.readouterr().err


def test_cli_constant_feature_converts(capsys):
    assert main(["convert", str(SEED), "--target", "python", "--input-min", "2", "--input-max", "2"]) == 0
    assert "input scaling folded in: minmax min [2] max [2]" in capsys.readouterr().out
