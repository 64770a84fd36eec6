"""verify's inputs: per-feature domains, the user's own data (array, .npy, .csv), and
the units the table states."""
import os

import numpy as np
import pytest

from conftest import build_model
from mlpcodegen.core.errors import MlpCodegenError, ValidationError
from mlpcodegen.harness.inputs import MAX_INPUT_BYTES, input_domain, read_inputs
from mlpcodegen.harness.verify import verify
from mlpcodegen.core.scaling import Scaling


@pytest.fixture(scope="module")
def model():
    return build_model([3, 4, 1], ["tanh", "linear"], [True, True], seed=3)


def test_per_feature_domain_is_used_and_stated(model):
    report = verify(model, "c", "float32", n=200, domain=([0, 10, 500], [1, 20, 1500]))
    assert report.ok, report.table()
    lo, hi = report.domain
    np.testing.assert_array_equal(lo, [0, 10, 500])
    np.testing.assert_array_equal(hi, [1, 20, 1500])
    head = report.table().splitlines()[0]
    assert "x0 in [0, 1], x1 in [10, 20], x2 in [500, 1500] (model units)" in head


def test_a_scalar_domain_applies_to_every_feature(model):
    head = verify(model, "c", "float32", n=50, domain=(-3, 3)).table().splitlines()[0]
    assert "random inputs in [-3, 3] for each of the 3 inputs (model units)" in head


def test_with_input_scaling_the_domain_is_in_original_units(model):
    scaling = Scaling.minmax([0.0, 10.0, 400.0], [1.0, 20.0, 1600.0])
    report = verify(model, "c", "float32", n=200, domain=([0, 10, 400], [1, 20, 1600]), input_scaling=scaling)
    assert report.ok, report.table()
    assert "(original units: input scaling folded in)" in report.table()


@pytest.mark.parametrize("domain,message", [
    (([0, 1], [1, 2]), "the domain's low has 2 values but the network has 3 inputs"),
    ((0, [1, 2, 3, 4]), "the domain's high has 4 values"),
    (([0, 5, 0], 1), r"the domain of input x1 is \[5, 1\]"),
    ((0, float("inf")), r"input x0 is \[0, inf\]: it must be finite"),
    ((0,), r"the domain is a pair \(low, high\)"),
    (("a", 1), "the domain's low must be a number"),
])
def test_bad_domains_are_clear_errors(domain, message):
    with pytest.raises(ValidationError, match=message):
        input_domain(3, domain)


def test_the_users_data_replaces_random_inputs(model):
    rng = np.random.default_rng(5)
    data = rng.uniform([0, 10, 500], [1, 20, 1500], (300, 3))
    report = verify(model, "c", "float32", n=100, data=data)
    assert report.ok and report.n_samples == 100
    assert "100 inputs from the given data in x0 in [" in report.table()
    assert np.all(report.domain[0] >= [0, 10, 500]) and np.all(report.domain[1] <= [1, 20, 1500])
    assert verify(model, "c", "float32", n=1000, data=data).n_samples == 300  # all rows when fewer than n
    with pytest.raises(ValidationError, match="not both"):
        verify(model, "c", "float32", data=data, domain=(0, 1))


def test_data_from_a_file(model, tmp_path):
    data = np.random.default_rng(6).uniform(-2, 2, (40, 3))
    np.savetxt(tmp_path / "x.csv", data, delimiter=",", header="a,b,c", comments="")
    report = verify(model, "c", "float64", data=tmp_path / "x.csv")
    assert report.ok and report.n_samples == 40
    assert f"inputs from {tmp_path / 'x.csv'}" in report.table()


def test_read_inputs_npy_and_csv_with_and_without_header(tmp_path):
    data = np.arange(12.0).reshape(4, 3) / 7
    np.save(tmp_path / "x.npy", data)
    np.testing.assert_array_equal(read_inputs(tmp_path / "x.npy", 3), data)
    np.save(tmp_path / "i.npy", np.arange(12, dtype=np.int32).reshape(4, 3))
    np.testing.assert_array_equal(read_inputs(tmp_path / "i.npy", 3), np.arange(12.0).reshape(4, 3))
    np.savetxt(tmp_path / "plain.csv", data, delimiter=",")
    np.testing.assert_array_equal(read_inputs(tmp_path / "plain.csv", 3), data)
    (tmp_path / "head.csv").write_text("alcohol, proline ,x\n" + "\n".join(",".join(repr(float(v)) for v in r) for r in data) + "\n")
    np.testing.assert_array_equal(read_inputs(tmp_path / "head.csv", 3), data)
    np.testing.assert_array_equal(read_inputs(tmp_path / "head.csv"), data)  # any width
    (tmp_path / "one.csv").write_text("x\n1\n2.5\n")
    np.testing.assert_array_equal(read_inputs(tmp_path / "one.csv", 1), [[1.0], [2.5]])
    np.save(tmp_path / "flat.npy", np.array([1.0, 2.0]))
    np.testing.assert_array_equal(read_inputs(tmp_path / "flat.npy", 1), [[1.0], [2.0]])  # one input: a column


def _bad_files(tmp_path):
    """name -> (writer, expected message)."""
    np.save(tmp_path / "wide.npy", np.zeros((3, 4)))
    np.save(tmp_path / "strings.npy", np.array([["a", "b", "c"]]))
    np.save(tmp_path / "objects.npy", np.array([[1, None, 2]], dtype=object), allow_pickle=True)
    np.save(tmp_path / "nan.npy", np.array([[0, 1, 2], [0, np.nan, 1], [1, 1, np.inf]]))
    np.save(tmp_path / "huge.npy", np.array([[0, 1, 1e300]]))
    np.save(tmp_path / "empty.npy", np.zeros((0, 3)))
    np.save(tmp_path / "cube.npy", np.zeros((2, 3, 1)))
    (tmp_path / "lie.npy").write_bytes(_npy_header("(1000000000000, 3)"))
    (tmp_path / "junk.npy").write_bytes(b"not an array at all")
    (tmp_path / "text.csv").write_text("1,2,3\n4,five,6\n")
    (tmp_path / "ragged.csv").write_text("1,2,3\n4,5\n")
    (tmp_path / "header_only.csv").write_text("a,b,c\n")
    (tmp_path / "nothing.csv").write_text("")
    (tmp_path / "latin.csv").write_bytes(b"\xe9,1,2\n")
    (tmp_path / "x.txt").write_text("1,2,3\n")
    os.mkfifo(tmp_path / "fifo.csv")
    (tmp_path / "dir.npy").mkdir()
    return {
        "wide.npy": "has 4 columns but the network has 3 inputs",
        "strings.npy": "not numbers",
        "objects.npy": "not numbers",
        "nan.npy": r"2 row\(s\) hold NaN, an infinity or a value beyond the float32 range \(rows 1, 2",
        "huge.npy": "beyond the float32 range",
        "empty.npy": "has no rows",
        "cube.npy": "must be a 2-D array",
        "lie.npy": "more than the file holds",
        "junk.npy": "is not a readable .npy array",
        "text.csv": "could not convert string 'five'",
        "ragged.csv": "number of columns changed",
        "header_only.csv": "has no rows of numbers",
        "nothing.csv": "has no rows of numbers",
        "latin.csv": "is not UTF-8 text",
        "x.txt": "inputs must be a .npy or .csv file",
        "fifo.csv": "is not a regular file",
        "dir.npy": "is not a regular file|cannot read inputs",
        "missing.csv": "inputs file not found: .*missing.csv",
    }


def _npy_header(shape: str) -> bytes:
    text = "{'descr': '<f8', 'fortran_order': False, 'shape': %s, }" % shape
    text += " " * (118 - len(text)) + "\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text.encode()


def test_read_inputs_refuses_bad_files_clearly(tmp_path):
    for name, message in _bad_files(tmp_path).items():
        with pytest.raises(ValidationError, match=message):
            read_inputs(tmp_path / name, 3)
        assert issubclass(ValidationError, MlpCodegenError)


def test_read_inputs_bounds_the_file_size(tmp_path):
    np.save(tmp_path / "big.npy", np.zeros((1000, 3)))
    with pytest.raises(ValidationError, match="has 24,128 bytes, more than the 1,000 read"):
        read_inputs(tmp_path / "big.npy", 3, max_bytes=1000)
    assert MAX_INPUT_BYTES >= 2**20
