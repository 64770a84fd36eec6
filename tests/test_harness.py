import numpy as np
import pytest

from mlpcodegen.ir import Activation, Dense, Network
from mlpcodegen.runtime import cffi_build, compile_c

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
    from mlpcodegen.errors import CompileError

    monkeypatch.setenv("MLPCODEGEN_CACHE", str(tmp_path))
    with pytest.raises(CompileError, match="compiling the generated C failed"):
        cffi_build.build_module("void f(void) { this is not C }", "void f(void);")
    assert not list((tmp_path / "cffi").glob("_mlpcodegen_*"))  # no half-built library left behind


def test_repr_says_what_the_predictor_is(monkeypatch):
    f = compile_c(NET, dtype="float32", name="h")
    text = repr(f)
    assert text.startswith("<mlpcodegen C predictor 'h' ") and text.endswith(".so>")
    assert "float32" in text and f"cache {f.library}" in text and str(cffi_build.cache_dir()) in text
    from mlpcodegen.backends.c import cdef, emit_c

    module = cffi_build.build_module(emit_c(NET, dtype="float64", name="h"), cdef(NET, "float64", "h"))
    described = cffi_build.CompiledNetwork(module, "h", 3, 2, "float64", description=NET.describe(), math="fast")
    assert repr(described) == f"<mlpcodegen C predictor 'h' 3-2 (tanh), float64, libm math, cache {module.__file__}>"
