"""The compiled-code cache (MLPCODEGEN_CACHE, default ~/.cache/mlpcodegen): a damaged
entry is rebuilt, never loaded; a cache that cannot be used is a clear error."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from mlpcodegen import runtime
from mlpcodegen.core.errors import MlpCodegenError
from mlpcodegen.core.ir import Activation, Dense, Network
from mlpcodegen.runtime import cffi_build, pymodule

NET = Network(3, (Dense(np.arange(6.0).reshape(3, 2) / 10, np.array([0.5, -0.5]), Activation("tanh"), "h"),))
EXPECTED = np.tanh(np.array([0.1, 0.2, 0.3]) @ NET.layers[0].kernel + NET.layers[0].bias)

#: Built and called in a child process: a library truncated under the loader can kill
#: the process with SIGBUS, which must not take pytest with it.
CHILD = textwrap.dedent("""
    import numpy as np
    from mlpcodegen.runtime import compile_c as load
    from mlpcodegen.core.ir import Activation, Dense, Network
    net = Network(3, (Dense(np.arange(6.0).reshape(3, 2) / 10, np.array([0.5, -0.5]), Activation("tanh"), "h"),))
    print(repr(load(net, dtype="float64", name="cached")(np.array([0.1, 0.2, 0.3])).tolist()))
""")


def _child(cache) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLPCODEGEN_CACHE": str(cache)}
    return subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=300)


def _library(cache):
    (found,) = [p for p in (cache / "cffi").iterdir() if p.name.startswith("_mlpcodegen_") and
                not p.name.endswith(".sha256")]
    return found


def _assert_child_computes(cache):
    result = _child(cache)
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    np.testing.assert_allclose(eval(result.stdout), EXPECTED, rtol=1e-15)


@pytest.mark.parametrize("damage", ["truncate", "empty", "garbage", "no stamp", "bad stamp"])
def test_a_damaged_cached_library_is_rebuilt_not_loaded(tmp_path, damage):
    _assert_child_computes(tmp_path)
    library = _library(tmp_path)
    stamp = library.with_name(library.name + ".sha256")
    size = library.stat().st_size
    if damage == "truncate":  # a full disk: the first half of the file
        os.truncate(library, size // 2)
    elif damage == "empty":
        os.truncate(library, 0)
    elif damage == "garbage":  # same size, one page overwritten
        with open(library, "r+b") as stream:
            stream.seek(size // 3)
            stream.write(b"\xff" * 4096)
    elif damage == "no stamp":  # also: a cache written before entries had stamps
        stamp.unlink(missing_ok=True)
    else:
        stamp.write_text("12 not-a-hash\n")
    _assert_child_computes(tmp_path)
    assert library.stat().st_size == size  # rebuilt in place
    assert stamp.read_text().split()[0] == str(size)
    assert sorted(p.name for p in (tmp_path / "cffi").iterdir()) == sorted([library.name, stamp.name])


def test_an_intact_entry_is_loaded_without_rebuilding(tmp_path):
    _assert_child_computes(tmp_path)
    library = _library(tmp_path)
    before = library.stat().st_mtime_ns, library.stat().st_ino
    _assert_child_computes(tmp_path)
    assert (library.stat().st_mtime_ns, library.stat().st_ino) == before


@pytest.mark.parametrize("target", ["c", "numpy"])
def test_a_cache_that_is_a_file_is_a_clear_error(tmp_path, monkeypatch, target):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("MLPCODEGEN_CACHE", str(blocker))
    monkeypatch.setattr(cffi_build, "_LOADED", {})
    with pytest.raises(MlpCodegenError, match=r"compiled-code cache cannot be used: .*not-a-folder.*MLPCODEGEN_CACHE"):
        runtime.load(NET, target, dtype="float64", name="blocked")
    assert blocker.read_text() == "x"


def test_a_cache_that_cannot_be_created_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("MLPCODEGEN_CACHE", "/proc/self/mlpcodegen-cache")
    monkeypatch.setattr(cffi_build, "_LOADED", {})
    with pytest.raises(MlpCodegenError, match="compiled-code cache cannot be used: /proc/self/mlpcodegen-cache"):
        runtime.load(NET, "c", dtype="float64", name="nowhere")


def test_an_unwritable_cache_is_a_clear_error(tmp_path, monkeypatch):
    """We may run as root, where permissions do not stop a write: the refusal is simulated."""
    monkeypatch.setenv("MLPCODEGEN_CACHE", str(tmp_path))
    monkeypatch.setattr(cffi_build, "_LOADED", {})

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(cffi_build.tempfile, "mkdtemp", refuse)
    with pytest.raises(MlpCodegenError, match="compiled-code cache cannot be used: .*Permission denied"):
        runtime.load(NET, "c", dtype="float64", name="readonly")


def test_a_read_only_cache_with_intact_entries_still_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("MLPCODEGEN_CACHE", str(tmp_path))
    monkeypatch.setattr(cffi_build, "_LOADED", {})
    runtime.load(NET, "c", dtype="float64", name="shared")
    monkeypatch.setattr(cffi_build, "_LOADED", {})
    monkeypatch.setattr(cffi_build.tempfile, "mkdtemp", lambda *a, **k: pytest.fail("rebuilt an intact entry"))
    np.testing.assert_allclose(runtime.load(NET, "c", dtype="float64", name="shared")([0.1, 0.2, 0.3]), EXPECTED,
                               rtol=1e-15)


def _module_path(tmp_path, source):
    import hashlib

    key = hashlib.sha256(source.encode()).hexdigest()[:20]
    return tmp_path / "py" / f"_mlpcodegen_test_{key}.py"


@pytest.mark.parametrize("damage", [b"", b"VALUE = ", b"\xff\xfe not utf-8", b"VALUE = 2\n"])
def test_a_damaged_python_module_is_rewritten(tmp_path, monkeypatch, damage):
    monkeypatch.setenv("MLPCODEGEN_CACHE", str(tmp_path))
    source = f"VALUE = 1  # {damage!r}\n"
    path = _module_path(tmp_path, source)
    path.parent.mkdir(parents=True)
    path.write_bytes(damage)
    try:
        assert pymodule.import_generated(source, "test").VALUE == 1
    finally:
        sys.modules.pop(path.stem, None)
    assert path.read_text() == source


def test_a_folder_in_place_of_a_python_module_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("MLPCODEGEN_CACHE", str(tmp_path))
    source = "VALUE = 3\n"
    _module_path(tmp_path, source).mkdir(parents=True)
    with pytest.raises(MlpCodegenError, match=r"compiled-code cache cannot be used: .*\.py: not a regular file"):
        pymodule.import_generated(source, "test")


def test_a_folder_in_place_of_a_library_stamp_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("MLPCODEGEN_CACHE", str(tmp_path))
    monkeypatch.setattr(cffi_build, "_LOADED", {})
    runtime.load(NET, "c", dtype="float64", name="stamped")
    library = _library(tmp_path)
    stamp = library.with_name(library.name + ".sha256")
    stamp.unlink()
    stamp.mkdir()
    monkeypatch.setattr(cffi_build, "_LOADED", {})
    with pytest.raises(MlpCodegenError, match=r"compiled-code cache cannot be used: .*\.sha256: not a regular file"):
        runtime.load(NET, "c", dtype="float64", name="stamped")


NUMBA_CHILD = CHILD.replace("from mlpcodegen.runtime import compile_c as load",
                            "from functools import partial; from mlpcodegen.runtime import load as run; "
                            "load = partial(run, target='numba')")


@pytest.mark.parametrize("damage", ["half", "empty"])
def test_a_damaged_numba_cache_is_compiled_again(tmp_path, damage):
    """Numba's own cache files (cache=True, in __pycache__ beside the cached module)."""
    def child():
        env = {**os.environ, "MLPCODEGEN_CACHE": str(tmp_path)}
        result = subprocess.run([sys.executable, "-c", NUMBA_CHILD], env=env, capture_output=True, text=True,
                                timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        np.testing.assert_allclose(eval(result.stdout), EXPECTED, rtol=1e-15)

    child()
    cached = sorted((tmp_path / "py" / "__pycache__").glob("*.nb[ic]"))
    assert len(cached) >= 2
    for path in cached:
        os.truncate(path, path.stat().st_size // 2 if damage == "half" else 0)
    child()
    assert all(path.stat().st_size > 0 for path in cached)  # written again
