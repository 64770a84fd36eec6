"""The compiled predictor's native call path, its cache key and its threads.

``compile_c`` keys the cache on the IR's content, the options and the toolchain (a hit
emits nothing); the library carries CPython entry points (``predict`` with ``out=`` and
``threads=``, ``scalar``) that must agree bit for bit with the bound call and the
Python-over-cffi path, accept every input kind that path accepts and refuse the same
inputs with the same messages.  The predictor is an instance of a C type its library makes
(called through vectorcall) and pickles as its recipe (the IR and the options)."""
import os
import subprocess
import sys

import numpy as np
import pytest

from mlpcodegen.core.ir import Activate, Activation, Affine, Dense, Network
from mlpcodegen.runtime import CompiledNetwork, cache_key, cffi_build, compile_c, loaders
from mlpcodegen.runtime.cache_key import network_key
from mlpcodegen.runtime.cffi_build import DEFAULT_FLAGS
from nets import dense_chain


def _net(widths, activations, seed, name="d"):
    return dense_chain(widths, activations, seed, bias_scale=0.3, names=name + "{i}")


SMALL = _net([3, 5, 2], ["tanh", "softmax"], 1)
WIDE = _net([20, 48, 48, 3], ["relu", "sigmoid", "linear"], 2)  # loop layers: the tiled kernels
SCALAR = _net([1, 4, 1], ["tanh", "linear"], 3)
NETS = {"small": (SMALL, "float32"), "wide": (WIDE, "float32"), "scalar": (SCALAR, "float64")}


@pytest.fixture(scope="module")
def compiled():
    """name -> (native predictor, the same library called through the Python path)."""
    result = {}
    for key, (net, dtype) in NETS.items():
        native = compile_c(net, dtype=dtype, name=f"n_{key}")
        module = cffi_build._LOADED[os.path.basename(native.library).split(".")[0]]
        python = CompiledNetwork(module, f"n_{key}", net.n_inputs, net.n_outputs, dtype)
        assert native.native is not None and python.native is None
        result[key] = native, python
    return result


def _bits(array):
    return np.ascontiguousarray(array).view(np.uint8).tobytes()


# -- the cache key ---------------------------------------------------------------------

def _key(net, **options):
    dtype = options.pop("dtype", "float32")
    name = options.pop("name", "f")
    return network_key(("c", net, dtype, name, {"unroll": "auto", "math": "fast", **options}), DEFAULT_FLAGS)


def _flip_last_bit(array):
    flipped = np.array(array, dtype=np.float64)
    flipped.view(np.int64).reshape(-1)[-1] ^= 1
    return flipped


def test_the_key_is_the_content_not_the_object():
    twin = _net([3, 5, 2], ["tanh", "softmax"], 1)
    assert twin is not SMALL and _key(twin) == _key(SMALL)


def test_a_child_process_computes_the_same_key():
    code = ("import numpy as np, sys; sys.path.insert(0, 'tests'); from test_runtime_native import SMALL, _key; "
            "print(_key(SMALL))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            cwd=os.path.dirname(os.path.dirname(__file__)))
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == _key(SMALL)


def _variants():
    """Networks and options that differ from SMALL/float32/auto/fast in one thing each."""
    first, second = SMALL.layers
    yield "one kernel bit", Network(3, (Dense(_flip_last_bit(first.kernel), first.bias, first.activation, "d0"),
                                        second)), {}
    yield "one bias bit", Network(3, (Dense(first.kernel, _flip_last_bit(first.bias), first.activation, "d0"),
                                      second)), {}
    yield "no bias", Network(3, (Dense(first.kernel, None, first.activation, "d0"), second)), {}
    yield "zero bias", Network(3, (Dense(first.kernel, np.zeros(5), first.activation, "d0"), second)), {}
    yield "activation", Network(3, (Dense(first.kernel, first.bias, Activation("sigmoid"), "d0"), second)), {}
    yield "layer name", Network(3, (Dense(first.kernel, first.bias, first.activation, "other"), second)), {}
    yield "network name", Network(3, SMALL.layers, name="other"), {}
    yield "notes", Network(3, SMALL.layers, notes=("input scaled",)), {}
    yield "weight dtype", Network(3, SMALL.layers, weight_dtype="float64"), {}
    yield "extra step", Network(3, (*SMALL.layers, Activate(2, Activation("relu")))), {}
    yield "affine step", Network(3, (Affine(np.ones(3), np.zeros(3)), *SMALL.layers)), {}
    yield "dtype", SMALL, {"dtype": "float64"}
    yield "name", SMALL, {"name": "g"}
    yield "unroll", SMALL, {"unroll": "never"}
    yield "math", SMALL, {"math": "libm"}
    yield "an option more", SMALL, {"profile": "embedded"}


@pytest.mark.parametrize("what, net, options", list(_variants()), ids=[v[0] for v in _variants()])
def test_one_difference_is_another_key(what, net, options):
    assert _key(net, **options) != _key(SMALL)


@pytest.mark.parametrize("param", [("leaky_relu", "negative_slope", 0.2, np.nextafter(0.2, 1)),
                                   ("relu", "max_value", None, 6.0), ("elu", "alpha", 0.0, -0.0)])
def test_one_activation_parameter_is_another_key(param):
    activation, key, one, other = param
    nets = [Network(2, (Dense(np.ones((2, 2)), None, Activation(activation, ((key, value),))),))
            for value in (one, other)]
    assert _key(nets[0]) != _key(nets[1])


def test_same_bytes_in_another_shape_are_another_key():
    kernel = np.arange(6.0)
    nets = [Network(shape[0], (Dense(kernel.reshape(shape), None),)) for shape in ((2, 3), (3, 2))]
    assert _key(nets[0]) != _key(nets[1])


def test_other_flags_are_another_key():
    parts = ("c", SMALL, "float32", "f", {"unroll": "auto", "math": "fast"})
    assert network_key(parts, ("-O2",)) != network_key(parts, DEFAULT_FLAGS)


def test_the_native_c_templates_are_keyed_and_shipped():
    """The entry points' C lives in .c files beside runtime/native.py: part of the
    package fingerprint (an edit to one is another key) and of the wheel's package data."""
    import fnmatch
    import tomllib
    from pathlib import Path

    from mlpcodegen.runtime import native

    folder = Path(native.__file__).parent
    templates = sorted(path.name for path in folder.glob("native_*.c"))
    assert templates == ["native_batch_loop.c", "native_batch_ws.c", "native_entry.c", "native_scalar.c"]
    keyed = {os.path.basename(path) for path, *_ in cache_key._package_fingerprint()}
    assert set(templates) <= keyed
    pyproject = tomllib.loads((folder.parent.parent / "pyproject.toml").read_text(encoding="utf-8"))
    shipped = pyproject["tool"]["setuptools"]["package-data"]["mlpcodegen.runtime"]
    assert all(any(fnmatch.fnmatch(name, pattern) for pattern in shipped) for name in templates)


def test_a_hit_emits_nothing(compiled, monkeypatch):
    expected = compiled["small"][0](np.ones(3))

    def refuse(*args, **kwargs):
        raise AssertionError("emitted on a cache hit")

    monkeypatch.setattr(loaders, "emit", refuse)
    again = compile_c(SMALL, dtype="float32", name="n_small")  # in this process
    assert _bits(again(np.ones(3))) == _bits(expected)
    monkeypatch.setattr(cffi_build, "_LOADED", {})
    monkeypatch.setattr(cache_key, "_MEMO", {})
    monkeypatch.setattr(cffi_build.tempfile, "mkdtemp", lambda *a, **k: pytest.fail("rebuilt an intact entry"))
    from_disk = compile_c(SMALL, dtype="float32", name="n_small")  # as a new process finds it
    assert _bits(from_disk(np.ones(3))) == _bits(expected)
    with pytest.raises(AssertionError, match="emitted on a cache hit"):  # and a miss does emit
        compile_c(SMALL, dtype="float32", name="n_small_other")


# -- the native call -------------------------------------------------------------------

@pytest.mark.parametrize("key", list(NETS))
def test_native_predict_equals_the_bound_call_bit_for_bit(compiled, key):
    native, _ = compiled[key]
    net, dtype = NETS[key]
    bound = native.bind()
    for row in np.random.default_rng(5).normal(scale=3, size=(200, net.n_inputs)).astype(dtype):
        bound.x[:] = row
        bound.run()
        assert _bits(native(row)) == _bits(bound.y)


@pytest.mark.parametrize("key", list(NETS))
def test_native_batch_equals_the_python_path_bit_for_bit(compiled, key):
    native, python = compiled[key]
    x = np.random.default_rng(6).normal(scale=3, size=(1000, NETS[key][0].n_inputs))
    assert _bits(native(x)) == _bits(python(x))


def _inputs(n_in):
    rng = np.random.default_rng(7)
    base = rng.normal(size=(9, 2 * n_in))
    swapped = base[:, :n_in].astype(">f4")
    readonly = base[:, :n_in].copy()
    readonly.flags.writeable = False
    return {
        "list": base[0, :n_in].tolist(),
        "nested list": base[:3, :n_in].tolist(),
        "float64": base[0, :n_in],
        "int": np.arange(n_in),
        "bool": np.ones(n_in, dtype=bool),
        "uint8 batch": (np.arange(4 * n_in) % 7).astype(np.uint8).reshape(4, n_in),
        "float16": base[1, :n_in].astype(np.float16),
        "non-contiguous": base[:, ::2],
        "non-contiguous 1-D": base[0, ::2],
        "Fortran order": np.asfortranarray(base[:, :n_in]),
        "byte-swapped": swapped,
        "read-only": readonly,
        "empty batch": np.empty((0, n_in)),
        "float32 batch": base[:, :n_in].astype(np.float32),
    }


@pytest.mark.parametrize("key", ["small", "scalar"])
def test_every_input_kind_gives_what_the_python_path_gives(compiled, key):
    native, python = compiled[key]
    for what, x in _inputs(NETS[key][0].n_inputs).items():
        got, expected = native(x), python(x)
        assert got.dtype == expected.dtype and got.shape == expected.shape, what
        assert _bits(got) == _bits(expected), what


@pytest.mark.parametrize("x", [np.zeros(4), np.zeros((2, 4)), np.zeros((2, 3, 1)), np.float32(1.0), [],
                               [[1, 2, 3], [4, 5]], ["a", "b", "c"], np.zeros(3, dtype=complex),
                               [None, 1, 2], np.zeros(3, dtype="datetime64[s]")],
                         ids=["4", "2x4", "3-D", "0-D", "empty list", "ragged", "strings", "complex", "None",
                              "datetime"])
def test_bad_inputs_get_the_python_path_s_error(compiled, x):
    native, python = compiled["small"]
    with pytest.raises(ValueError) as expected:
        python(x)
    with pytest.raises(ValueError) as got:
        native(x)
    assert str(got.value) == str(expected.value)


def test_nan_and_inf_pass_through(compiled):
    native, python = compiled["small"]
    x = np.array([[np.nan, 0, 0], [np.inf, -np.inf, 0], [0, 0, 0]], dtype=np.float32)
    got = native(x)
    assert np.isnan(got[0]).all() and _bits(got) == _bits(python(x))
    assert _bits(native(x[0])) == _bits(python(x[0]))


def test_argument_errors(compiled):
    native, _ = compiled["small"]
    for call, error in [(lambda: native(), TypeError), (lambda: native(np.ones(3), None), TypeError),
                        (lambda: native(np.ones(3), outs=None), TypeError)]:
        with pytest.raises(error):
            call()


# -- scalar ----------------------------------------------------------------------------

def test_scalar_equals_the_cffi_scalar(compiled):
    native, python = compiled["scalar"]
    assert native.scalar is not python.scalar
    for value in [0.0, -0.0, 0.3, -2.5, 1e300, float("inf"), float("nan"), 3, np.float32(0.5), True]:
        got, expected = native.scalar(value), python.scalar(value)
        assert type(got) is float and (got == expected or (got != got and expected != expected)), value
        assert got == native([value])[0] or got != got
    for bad in ["1", None, [1.0]]:
        with pytest.raises(TypeError):
            native.scalar(bad)
    assert compiled["small"][0].scalar is None


# -- out= ------------------------------------------------------------------------------

def test_out_is_written_and_returned(compiled):
    native, python = compiled["small"]
    x = np.random.default_rng(8).normal(size=(70, 3))
    out = np.full((70, 2), 7, dtype=np.float32)
    assert native(x, out=out) is out and _bits(out) == _bits(python(x))
    one = np.empty(2, dtype=np.float32)
    assert native(x[0], out=one) is one and _bits(one) == _bits(python(x[0]))
    empty = np.empty((0, 2), dtype=np.float32)
    assert native(np.empty((0, 3)), out=empty) is empty
    py_out = np.empty((70, 2), dtype=np.float32)
    assert python(x, out=py_out) is py_out and _bits(py_out) == _bits(out)


def test_out_overlapping_the_input_reads_a_copy(compiled):
    native, python = compiled["small"]
    x = np.random.default_rng(9).normal(size=(100, 3)).astype(np.float32)
    expected = python(x)
    buffer = x.copy()
    out = buffer.reshape(-1)[50:250].reshape(100, 2)  # overlaps rows it has not read yet
    native(buffer, out=out)
    assert _bits(out) == _bits(expected)


@pytest.mark.parametrize("out, error, message", [
    ([0.0, 0.0], TypeError, "out must be a NumPy array of dtype float32, got list"),
    (np.empty(2), ValueError, r"out must have shape \(2,\) and dtype float32, got shape \(2,\) and dtype float64"),
    (np.empty(3, np.float32), ValueError, r"out must have shape \(2,\) and dtype float32, got shape \(3,\)"),
    (np.empty((1, 2), np.float32), ValueError, r"out must have shape \(2,\)"),
    (np.empty(2, ">f4"), ValueError, "out must have shape"),
    (np.empty(4, np.float32)[::2], ValueError, "out must be writeable, C-contiguous and aligned"),
    (np.frombuffer(bytes(8), np.float32), ValueError, "out must be writeable"),
])
def test_a_bad_out_is_refused_by_both_paths(compiled, out, error, message):
    for predictor in compiled["small"]:
        with pytest.raises(error, match=message):
            predictor(np.ones(3), out=out)


def test_a_batch_out_of_the_wrong_rows_is_refused(compiled):
    for predictor in compiled["small"]:
        with pytest.raises(ValueError, match=r"out must have shape \(5, 2\) and dtype float32, got shape \(4, 2\)"):
            predictor(np.ones((5, 3)), out=np.empty((4, 2), np.float32))


# -- threads ---------------------------------------------------------------------------

@pytest.mark.parametrize("key", list(NETS))
def test_thread_counts_give_equal_bits(compiled, key):
    native, python = compiled[key]
    x = np.random.default_rng(10).normal(size=(5000 + 37, NETS[key][0].n_inputs))
    one = native(x, threads=1)
    for threads in (2, 3, 8, None, 1000):
        assert _bits(native(x, threads=threads)) == _bits(one), threads
    assert _bits(python(x, threads=8)) == _bits(one)
    out = np.empty_like(one)
    assert _bits(native(x, out=out, threads=2)) == _bits(one)


@pytest.mark.parametrize("threads, error", [(0, ValueError), (-2, ValueError), (1.5, TypeError),
                                            (True, TypeError), ("2", TypeError)])
def test_a_bad_thread_count_is_refused_by_both_paths(compiled, threads, error):
    for predictor in compiled["small"]:
        with pytest.raises(error, match="threads must be a positive integer or None"):
            predictor(np.ones((4, 3)), threads=threads)


def test_the_predictor_stays_the_public_type(compiled):
    native, _ = compiled["small"]
    assert isinstance(native, CompiledNetwork)
    assert "n_small" in repr(native) and callable(native.bind().run)


def test_the_predictor_is_called_through_vectorcall(compiled):
    """Calling the predictor goes straight into the library's ``predict`` (its C type has
    vectorcall, Py_TPFLAGS_HAVE_VECTORCALL = 1 << 11), with the same results and errors."""
    for key, (native, python) in compiled.items():
        assert type(native).__flags__ & (1 << 11) and not type(python).__flags__ & (1 << 11)
        x = np.random.default_rng(11).normal(size=(70, NETS[key][0].n_inputs))
        assert _bits(native(x)) == _bits(native.native(x)) == _bits(python(x))
    native = compiled["small"][0]
    with pytest.raises(TypeError, match=r"predict\(\) takes 1 positional argument \(x\) but 2 were given"):
        native(np.ones(3), np.ones(3))
    with pytest.raises(TypeError, match="unexpected keyword argument 'outs'"):
        native(np.ones(3), outs=None)


# -- pickling: the recipe, not the library --------------------------------------------

#: Every IR layer kind a recipe carries through the pickle (the arrays come back read-only).
MIXED = Network(2, (Affine(np.array([0.5, 2.0]), np.array([-0.25, 0.125]), "scale"),
                    Dense(np.array([[0.3, -0.7, 0.2], [0.9, 0.1, -0.4]]), None, Activation("linear"), "d"),
                    Activate(3, Activation("leaky_relu", (("negative_slope", 0.1),)), "act"),
                    Dense(np.array([[0.5], [-1.0], [0.25]]), np.array([0.1]), Activation("sigmoid"), "out")),
                notes=("scaled",))
PICKLED = {**NETS, "mixed": (MIXED, "float64")}

CHILD = """
import pickle, sys
import numpy as np
predictors, x = pickle.loads(sys.stdin.buffer.read())
sys.stdout.buffer.write(pickle.dumps({key: (f(x[key]), f(x[key][0]), repr(f)) for key, f in predictors.items()}))
"""


def test_a_pickled_predictor_computes_the_same_bits_in_a_fresh_process(compiled):
    import pickle

    predictors = {key: compiled[key][0] for key in NETS}
    predictors["mixed"] = compile_c(MIXED, dtype="float64", name="n_mixed", math="libm")
    rng = np.random.default_rng(12)
    x = {key: rng.normal(size=(67, net.n_inputs)) for key, (net, _) in PICKLED.items()}
    data = pickle.dumps((predictors, x))
    assert len(data) < 50_000  # the recipe (IR + options), not the library
    result = subprocess.run([sys.executable, "-c", CHILD], input=data, capture_output=True, timeout=300,
                            cwd=os.path.dirname(os.path.dirname(__file__)))  # the cache: MLPCODEGEN_CACHE
    assert result.returncode == 0, result.stderr[-2000:].decode(errors="replace")
    for key, (rows, one, text) in pickle.loads(result.stdout).items():
        f = predictors[key]
        assert _bits(rows) == _bits(f(x[key])) and _bits(one) == _bits(f(x[key][0])), key
        assert text.split(", cache ")[0] == repr(f).split(", cache ")[0]  # the path: see the key's test


def test_an_unpickled_predictor_is_rebuilt_from_a_validated_network(compiled):
    import copy
    import pickle

    native = compile_c(MIXED, dtype="float64", name="n_mixed", math="libm")
    twin = pickle.loads(pickle.dumps(native))
    assert twin is not native and twin.native is native.native  # the same cached library, loaded once
    x = np.random.default_rng(13).normal(size=(9, 2))
    assert _bits(twin(x)) == _bits(copy.deepcopy(native)(x)) == _bits(native(x))
    recipe = twin._recipe
    assert recipe[0] == "c" and recipe[2:] == ("float64", "n_mixed", {"unroll": "auto", "math": "libm"})
    arrays = [value for layer in recipe[1].layers for value in vars(layer).values() if isinstance(value, np.ndarray)]
    assert len(arrays) == 5 and not any(array.flags.writeable for array in arrays)
    assert recipe[1].notes == ("scaled",) and recipe[1].layers[2].activation == MIXED.layers[2].activation
    again = pickle.loads(pickle.dumps(native))  # rebuilt before in this process: a new instance of that one
    assert again is not twin and again._recipe is twin._recipe and _bits(again(x)) == _bits(native(x))


def test_a_predictor_without_a_recipe_refuses_to_pickle(compiled):
    import pickle

    with pytest.raises(TypeError, match="cannot be pickled: it was not built by mlpcodegen.compile_c"):
        pickle.dumps(compiled["small"][1])


def test_a_wide_network_s_predict_is_its_one_sample_function_on_every_row():
    """A network in the rows layout (issue 22: a 300-unit layer, 37 inputs read in place):
    predict(X) on one and two threads, with and without out=, and the one-sample call give
    the same bits on every row (whole blocks and the leftover rows alike), and out= the
    input itself works in place."""
    from mlpcodegen.backends.c import block_plan

    rng = np.random.default_rng(22)
    net = Network(37, (Dense((rng.normal(size=(37, 300)) / 6).astype(np.float32), rng.normal(size=300).astype(np.float32),
                             Activation("relu"), "wide"),
                       Dense((rng.normal(size=(300, 37)) / 17).astype(np.float32), None, Activation("linear"), "out")))
    assert block_plan(net, "float32").rows
    f = compile_c(net, dtype="float32", name="wide")
    x = rng.uniform(-1, 1, (16 * 9 + 5, 37)).astype(np.float32)
    rows = np.stack([f(row) for row in x])
    np.testing.assert_array_equal(f(x, threads=1), rows)
    np.testing.assert_array_equal(f(x, threads=2), rows)
    out = np.empty_like(rows)
    assert f(x, out=out, threads=1) is out
    np.testing.assert_array_equal(out, rows)
    inplace = x.copy()  # 37 -> 37: y may be x
    assert f(inplace, out=inplace) is inplace
    np.testing.assert_array_equal(inplace, rows)
