"""Fuzzing the file reader (issue 9): mutated .keras and .h5 files (Keras 2.2 to 3) and
architecture JSON + weights pairs (issue 11) give a clean error
(an MlpCodegenError) or a valid network — never another exception, a hang or unbounded
memory — and through the command line: exit 1, no traceback, no output file.

Fixed seeds, bounded (well under 60 s).  bench/fuzz_files.py runs the same mutators
for longer and writes bench/FUZZ.md.
"""
from __future__ import annotations

import functools
import io
import json
import os
import random
import resource
import struct
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pytest

from conftest import REPO
from mlpcodegen.core.errors import MlpCodegenError
from mlpcodegen.frontends.keras import load
from mlpcodegen.core.ir import Network
from mlpcodegen.core.limits import ReadLimits
from test_frontend_safety import default_weights, functional_config, h5_bytes, keras_bytes, sequential_config
from test_keras_formats import keras22_h5, random_spec, tf_keras2_json, tf_keras2_weights, tf_keras213_archive

#: tight enough that a spinning or ballooning parse is cut short quickly
LIMITS = ReadLimits(seconds=10, memory_bytes=1 << 30)
JUNK = [[], None, "x", 1e308, -1, {}, True, 0, "", [[[[[]]]]], {"class_name": "x"}, "\udcff", 2 ** 70]

Mutant = tuple[str, bytes]  # (description, file bytes)


# ------------------------------------------------------------------- base files


def _written(writer: Callable, *args) -> bytes:
    blob = io.BytesIO()
    writer(blob, *args)
    return blob.getvalue()


def base_files() -> dict[str, bytes]:
    """Valid files of every layout, built without TensorFlow."""
    return {
        "seq.keras": keras_bytes(),
        "func.keras": keras_bytes(functional_config()),
        "seq.h5": h5_bytes(),
        "func.h5": h5_bytes(functional_config()),
        "seed.keras": (REPO / "generated/seed/seed.keras").read_bytes(),
        "keras22 list-config.h5": _written(keras22_h5, random_spec(1)),
        "tf.keras 2.13.keras": _written(tf_keras213_archive, random_spec(2), "backslash", True),
    }


def json_pair() -> tuple[bytes, bytes]:
    """A tf.keras 2 architecture JSON and its save_weights file."""
    spec = random_spec(1)
    return json.dumps(tf_keras2_json(spec, functional=True)).encode(), _written(tf_keras2_weights, spec, True)


PairMutant = tuple[str, bytes, bytes]  # (description, JSON bytes, weights bytes)


def pair_mutants(seed: int, scale: int = 1) -> Iterator[PairMutant]:
    """The JSON + weights pair with one of them truncated, flipped or given junk values."""
    rng = random.Random(seed)
    text, weights = json_pair()
    for what, data in [*truncations("weights.h5", weights, rng, 10 * scale),
                       *byte_flips("weights.h5", weights, rng, 20 * scale)]:
        yield what, text, data
    for what, data in truncations("model.json", text, rng, 5 * scale):
        yield what, data, weights
    config = json.loads(text)
    for _ in range(20 * scale):
        path = rng.choice(list(_paths(config)))
        new = rng.choice(JUNK)
        mutated = json.dumps(_replaced(config, path, new)).encode()
        yield f"model.json {'/'.join(map(str, path))} = {new!r}", mutated, weights


# --------------------------------------------------------------------- mutators


def truncations(name: str, data: bytes, rng: random.Random, count: int) -> Iterator[Mutant]:
    for cut in sorted(rng.sample(range(len(data)), min(count, len(data)))):
        yield f"{name} cut at {cut}", data[:cut]


def byte_flips(name: str, data: bytes, rng: random.Random, count: int) -> Iterator[Mutant]:
    for _ in range(count):
        mutated = bytearray(data)
        for _ in range(rng.choice((1, 1, 2, 8))):
            position = rng.randrange(len(mutated))
            mutated[position] = rng.randrange(256) if rng.random() < 0.5 else mutated[position] ^ (1 << rng.randrange(8))
        yield f"{name} flipped", bytes(mutated)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, prefix + (index,))


def _replaced(config, path, new):
    if not path:
        return new
    config = json.loads(json.dumps(config))
    target = config
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = new
    return config


def json_mutations(rng: random.Random, count: int) -> Iterator[Mutant]:
    """A random sub-value of a valid config replaced by junk, in both layouts."""
    for _ in range(count):
        config = rng.choice((sequential_config(), functional_config()))
        path = rng.choice(list(_paths(config)))
        new = rng.choice(JUNK)
        text = json.dumps(_replaced(config, path, new))
        maker = rng.choice((lambda t: keras_bytes(t.encode()), h5_bytes))
        yield f"config {'/'.join(map(str, path))} = {new!r}", maker(text)
    deep = "[" * 200_000 + "]" * 200_000
    yield "deeply nested config.json", keras_bytes(deep.encode())
    yield "deeply nested model_config", h5_bytes("[" * 20_000 + "]" * 20_000)  # an attribute holds < 64 KiB
    yield "deeply nested layer", keras_bytes(json.dumps(_replaced(sequential_config(), ("config", "layers", 1, "config"),
                                                                  {"units": 4})).replace('"units": 4', '"units": ' + "[" * 5000 + "]" * 5000).encode())


def _rezip(data: bytes, change: Callable[[dict[str, bytes]], dict[str, bytes]]) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in change(members).items():
            archive.writestr(name, content)
    return out.getvalue()


def zip_mutations() -> Iterator[Mutant]:
    data = keras_bytes()
    yield "no config.json", _rezip(data, lambda m: {k: v for k, v in m.items() if k != "config.json"})
    yield "no weights", _rezip(data, lambda m: {k: v for k, v in m.items() if k != "model.weights.h5"})
    yield "renamed members", _rezip(data, lambda m: {k.upper(): v for k, v in m.items()})
    for bad in ("../escaped.txt", "/tmp/mlpcodegen_fuzz_absolute.txt", "..\\escaped.txt", "a/../../escaped.txt"):
        yield f"traversal member {bad}", _rezip(data, lambda m, bad=bad: {**m, bad: b"planted"})
        yield f"traversal as config {bad}", _rezip(data, lambda m, bad=bad: {
            (bad if k == "config.json" else k): v for k, v in m.items()})
    yield "zip bomb config", _rezip(data, lambda m: {**m, "config.json": b" " * (80 << 20) + m["config.json"]})
    yield "zip bomb weights", _rezip(data, lambda m: {**m, "model.weights.h5": m["model.weights.h5"] + bytes(80 << 20)})
    yield "weights not hdf5", _rezip(data, lambda m: {**m, "model.weights.h5": b"PK\x03\x04" + bytes(100)})
    yield "nested archive", _rezip(data, lambda m: {**m, "model.weights.h5": data})


def _swap(h5, path, values):
    del h5[path]
    h5[path] = values


def hdf5_mutations() -> Iterator[Mutant]:
    """Wrong shapes and types, huge declared sizes, in both layouts."""
    w = default_weights()
    cases = {
        "kernel transposed": w["hidden"][0].T.copy(),
        "kernel 3-d": w["hidden"][0][None],
        "kernel scalar": np.float32(1.0),
        "kernel empty": np.zeros((0, 4), "f4"),
        "bias too long": np.zeros(9, "f4"),
        "kernel int": np.ones((3, 4), "i4"),
        "kernel bool": np.ones((3, 4), bool),
        "kernel complex": np.ones((3, 4), "c8"),
        "kernel strings": np.array([[b"a"] * 4] * 3),
        "kernel compound": np.zeros((3, 4), dtype=[("a", "f4"), ("b", "i2")]),
        "kernel float128": np.ones((3, 4), np.longdouble),
        "kernel nan": np.full((3, 4), np.nan, "f4"),
        "kernel big-endian": w["hidden"][0].astype(">f8"),
    }
    for what, values in cases.items():
        yield f".keras {what}", keras_bytes(hook=lambda h5, v=values: _swap(h5, "layers/dense/vars/0", v))
        yield f".h5 {what}", h5_bytes(hook=lambda h5, v=values: _swap(h5, "model_weights/hidden/hidden/kernel", v))

    def huge(h5, path, shape=(4, 200_000_000)):
        del h5[path]
        h5.create_dataset(path, shape=shape, dtype="f8")
    yield ".h5 huge kernel", h5_bytes(hook=lambda h5: huge(h5, "model_weights/out/out/kernel"))
    yield ".keras huge kernel", keras_bytes(hook=lambda h5: huge(h5, "layers/dense_1/vars/0"))
    yield ".keras many small datasets", keras_bytes(hook=lambda h5: [h5.create_dataset(
        f"layers/dense/vars/{i}", shape=(1000, 1000), dtype="f8") for i in range(2, 200)])
    yield ".h5 no model_weights", h5_bytes(hook=lambda h5: h5.__delitem__("model_weights"))
    yield ".h5 model_weights a dataset", h5_bytes(hook=lambda h5: (h5.__delitem__("model_weights"),
                                                                   h5.__setitem__("model_weights", np.zeros(2))))
    yield ".h5 weight_names numbers", h5_bytes(hook=lambda h5: h5["model_weights/hidden"].attrs.__setitem__(
        "weight_names", np.arange(3)))
    yield ".h5 weight_names huge list", h5_bytes(hook=lambda h5: h5["model_weights/hidden"].attrs.__setitem__(
        "weight_names", ["hidden/kernel"] * 1000))
    yield ".h5 weight_names traversal", h5_bytes(hook=lambda h5: h5["model_weights/hidden"].attrs.__setitem__(
        "weight_names", ["../../out/out/kernel", "/model_weights/out/out/bias"]))
    yield ".h5 model_config bytes array", h5_bytes(hook=lambda h5: h5.attrs.__setitem__(
        "model_config", np.array([b"{}", b"[]"])))
    yield ".h5 model_config float", h5_bytes(hook=lambda h5: h5.attrs.__setitem__("model_config", 1.5))


def all_mutants(seed: int, scale: int = 1) -> Iterator[Mutant]:
    rng = random.Random(seed)
    for name, data in base_files().items():
        yield from truncations(name, data, rng, 10 * scale)
        yield from byte_flips(name, data, rng, 20 * scale)
    yield from json_mutations(rng, 50 * scale)
    yield from zip_mutations()
    yield from hdf5_mutations()


# --------------------------------------------------------------------- .tflite (issue 25)


@functools.lru_cache(maxsize=1)
def tflite_base_files() -> tuple[tuple[str, bytes], ...]:
    """.tflite files made by TensorFlow's converter: a float32 and a full-integer int8 model."""
    from tflite_models import convert, keras_model

    model = keras_model(3, [("dense", 4, "tanh"), ("alone", "relu"), ("dense", 2, None), ("alone", "softmax")], 3)
    return (("float.tflite", convert(model, 3, int8=False)), ("int8.tflite", convert(model, 3)))


def _forged_words(name: str, data: bytes, rng: random.Random, count: int) -> Iterator[Mutant]:
    """A 32-bit word (an offset, a count, a vtable entry) replaced by an extreme or near-miss value."""
    for _ in range(count):
        blob = bytearray(data)
        position = rng.randrange(0, len(blob) - 4, 2)
        value = rng.choice((0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, len(blob), len(blob) - 4, rng.randrange(1 << 32)))
        struct.pack_into("<I", blob, position, value)
        yield f"{name} word at {position} = {value:#x}", bytes(blob)


def tflite_mutants(seed: int, scale: int = 1) -> Iterator[Mutant]:
    rng = random.Random(seed)
    for name, data in tflite_base_files():
        yield from truncations(name, data, rng, 10 * scale)
        yield from byte_flips(name, data, rng, 30 * scale)
        yield from _forged_words(name, data, rng, 40 * scale)


def tflite_outcome(path: Path, limits: ReadLimits = LIMITS) -> str:
    """As :func:`outcome`, through the format detection (a mutant may stop being a .tflite)."""
    from mlpcodegen.frontends import load as load_any

    try:
        net = load_any(path, limits=limits)
    except MlpCodegenError as exc:
        assert "Traceback" not in str(exc) and "\n" not in str(exc)
        return type(exc).__name__
    assert isinstance(net, Network)
    return "ok"


# --------------------------------------------------------------------- outcomes


def outcome(path: Path, limits: ReadLimits = LIMITS, weights: Path | None = None) -> str:
    """"ok", or the MlpCodegenError class name; anything else escapes (a test failure)."""
    try:
        net = load(path, limits=limits, weights=weights)
    except MlpCodegenError as exc:
        assert "Traceback" not in str(exc)
        return type(exc).__name__
    assert isinstance(net, Network)
    return "ok"


def suffix(data: bytes) -> str:
    return ".h5" if data.startswith(b"\x89HDF") else ".keras"


def _no_traversal_written(before: set[str], folder: Path) -> None:
    assert not Path("/tmp/mlpcodegen_fuzz_absolute.txt").exists()
    assert {p.name for p in folder.parent.iterdir()} == before, "a member was extracted outside its folder"


def test_mutated_files_give_clean_errors_or_valid_networks(tmp_path):
    folder = tmp_path / "files"
    folder.mkdir()
    before = {p.name for p in tmp_path.iterdir()}
    counts: dict[str, int] = {}
    for index, (what, data) in enumerate(all_mutants(seed=9)):
        path = folder / f"m{index}{suffix(data)}"
        path.write_bytes(data)
        try:
            result = outcome(path)
        except Exception as exc:  # noqa: BLE001 - report which mutant escaped
            raise AssertionError(f"{what}: {type(exc).__name__}: {exc}") from exc
        counts[result] = counts.get(result, 0) + 1
        path.unlink()
    _no_traversal_written(before, folder)
    assert counts.get("ModelFormatError", 0) > 100 and counts.get("ok", 0) > 0, counts


def test_mutated_json_and_weights_give_clean_errors_or_valid_networks(tmp_path):
    counts: dict[str, int] = {}
    for what, text, weights in pair_mutants(seed=9):
        (tmp_path / "m.json").write_bytes(text)
        (tmp_path / "w.h5").write_bytes(weights)
        try:
            result = outcome(tmp_path / "m.json", weights=tmp_path / "w.h5")
        except Exception as exc:  # noqa: BLE001 - report which mutant escaped
            raise AssertionError(f"{what}: {type(exc).__name__}: {exc}") from exc
        counts[result] = counts.get(result, 0) + 1
    assert counts.get("ModelFormatError", 0) > 10 and counts.get("ok", 0) > 0, counts


def test_mutated_tflite_files_give_clean_errors_or_valid_networks(tmp_path):
    """Truncated, byte-flipped and word-forged .tflite files (issue 25): one-line errors or
    valid networks, never another exception (the flatbuffers runtime checks no offset)."""
    pytest.importorskip("tensorflow")
    counts: dict[str, int] = {}
    for index, (what, data) in enumerate(tflite_mutants(seed=9)):
        path = tmp_path / f"m{index}.tflite"
        path.write_bytes(data)
        try:
            result = tflite_outcome(path)
        except Exception as exc:  # noqa: BLE001 - report which mutant escaped
            raise AssertionError(f"{what}: {type(exc).__name__}: {exc}") from exc
        counts[result] = counts.get(result, 0) + 1
        path.unlink()
    assert counts.get("ModelFormatError", 0) > 50 and counts.get("ok", 0) > 0, counts


def _limited():
    limit = 1536 << 20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


CLI_CASES = ["deeply nested config.json", "zip bomb config", ".h5 huge kernel", "traversal as config ../escaped.txt",
             ".keras kernel complex", "no weights", ".h5 model_weights a dataset", "config config = []"]


def test_command_line_on_bad_files_exits_1_without_traceback_or_output(tmp_path):
    wanted = dict.fromkeys(CLI_CASES)
    rng = random.Random(4)
    mutants = list(all_mutants(seed=9))
    for what, data in mutants:
        if what in wanted and wanted[what] is None:
            wanted[what] = data
    picks = [(w, d) for w, d in wanted.items() if d is not None]
    picks += rng.sample([(w, d) for w, d in mutants if "cut at" in w or "flipped" in w], 3)
    assert len(picks) >= 10, [w for w, _ in picks]
    for index, (what, data) in enumerate(picks):
        model = tmp_path / f"bad{index}{suffix(data)}"
        model.write_bytes(data)
        if outcome(model) == "ok":
            continue  # a flip inside a weight value: a valid model
        out = tmp_path / f"out{index}.c"
        result = subprocess.run([sys.executable, "-m", "mlpcodegen.app.cli", "convert", str(model), "-o", str(out)],
                                capture_output=True, text=True, timeout=120, cwd=REPO, preexec_fn=_limited,
                                env={**os.environ, "PYTHONPATH": str(REPO)})
        assert result.returncode == 1, (what, result.returncode, result.stderr[-2000:])
        assert "Traceback" not in result.stderr and result.stderr.strip(), (what, result.stderr[-2000:])
        assert not out.exists() and not list(tmp_path.glob(f"out{index}*")), what
