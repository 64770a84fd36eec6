"""The format dispatcher: ``mlpcodegen.load`` finds the format by content, not by name,
and refuses what no frontend reads with the list of what is read."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import mlpcodegen
from mlpcodegen.app.cli import main
from mlpcodegen.core.errors import ModelFormatError
from mlpcodegen.frontends import FORMATS, file_format, object_format
from mlpcodegen.core.reference import evaluate

SEED = Path(__file__).resolve().parent.parent / "generated" / "seed" / "seed.keras"


def test_every_format_names_a_frontend_module_and_a_test():
    names = [fmt.name for fmt in FORMATS]
    assert len(set(names)) == len(names)
    for fmt in FORMATS:
        assert fmt.module.startswith("mlpcodegen.frontends.")
        assert fmt.sniff is not None or fmt.owns is not None
        assert fmt.reads and fmt.needs


@pytest.mark.parametrize("suffix", [".onnx", ".h5", ".bin", ""])
def test_a_keras_archive_is_keras_whatever_its_name(tmp_path, suffix):
    renamed = tmp_path / f"model{suffix}"
    shutil.copyfile(SEED, renamed)
    assert file_format(renamed).name == "keras"
    x = np.linspace(-1, 1, 7).reshape(-1, 1)
    np.testing.assert_array_equal(evaluate(mlpcodegen.load(renamed), x), evaluate(mlpcodegen.load(SEED), x))


@pytest.mark.parametrize("content, words", [
    (b"", "not a model file"),
    (b"\x00\x01garbage", "not a model file"),
    (b"hello world", "not a model file"),
])
def test_what_no_frontend_reads_is_refused_with_the_list(tmp_path, content, words):
    path = tmp_path / "model.keras"
    path.write_bytes(content)
    with pytest.raises(ModelFormatError, match=words) as info:
        mlpcodegen.load(path)
    assert all(fmt.title in str(info.value) for fmt in FORMATS)


def test_missing_folder_and_fifo_are_clear_errors(tmp_path):
    with pytest.raises(ModelFormatError, match="not found"):
        mlpcodegen.load(tmp_path / "nope.keras")
    with pytest.raises(ModelFormatError, match="folder"):
        mlpcodegen.load(tmp_path)
    fifo = tmp_path / "pipe.keras"
    os.mkfifo(fifo)  # opening it would block until a writer comes: never opened
    with pytest.raises(ModelFormatError, match="not a regular file"):
        mlpcodegen.load(fifo)


def test_an_unknown_object_is_refused_with_the_list():
    with pytest.raises(ModelFormatError, match="cannot read a model from a builtins.dict") as info:
        mlpcodegen.load({"layers": []})
    assert all(fmt.title in str(info.value) for fmt in FORMATS)
    with pytest.raises(ModelFormatError):
        object_format(np.zeros(3))


def test_a_weights_file_goes_with_a_path_only():
    with pytest.raises(ModelFormatError, match="weights"):
        mlpcodegen.load(object(), weights="w.h5")


def test_cli_garbage_model_is_one_line_exit_1(tmp_path, capsys):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\xff" * 64)
    assert main(["convert", str(path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a model file" in err[0] and "Traceback" not in err[0]


def test_cli_verifies_an_onnx_file_against_onnx_runtime_without_tensorflow(tmp_path):
    """`verify x.onnx` compares with ONNX Runtime on that file; TensorFlow is not imported."""
    import subprocess
    import sys

    from mlpcodegen.harness.onnx_peer import onnx_model

    net = mlpcodegen.load(SEED)
    path = tmp_path / "seed.onnx"
    path.write_bytes(onnx_model(net, "float32").SerializeToString())
    code = ("import sys; from mlpcodegen.app.cli import main; rc = main(['verify', sys.argv[1], '-n', '50']);"
            "print('TF', 'tensorflow' in sys.modules, 'TORCH', 'torch' in sys.modules); sys.exit(rc)")
    run = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "ONNX Runtime" in run.stdout and "TF False TORCH False" in run.stdout


@pytest.mark.filterwarnings("ignore:`torch.jit.save` is deprecated:FutureWarning")
def test_torch_files_are_recognised_before_the_keras_zip_test_and_refused(tmp_path):
    import torch

    model = torch.nn.Sequential(torch.nn.Linear(2, 1))
    for name, save in (("pt", lambda p: torch.save(model, p)), ("sd", lambda p: torch.save(model.state_dict(), p)),
                       ("ts", lambda p: torch.jit.save(torch.jit.script(model), p))):
        path = tmp_path / f"model.{name}"
        save(path)
        assert file_format(path).name == "torch"
        with pytest.raises(ModelFormatError, match="runs code"):
            mlpcodegen.load(path)
    with pytest.raises(ModelFormatError, match="state_dict holds weights without the architecture"):
        mlpcodegen.load(model.state_dict())


def test_a_subclass_goes_to_its_framework_frontend():
    import torch

    class Mine(torch.nn.Sequential):
        pass

    assert object_format(Mine(torch.nn.Linear(2, 1))).name == "torch"


def test_verify_a_bfloat16_torch_module_keeps_each_submodules_mode():
    """The forward peer returns float64 (numpy has no bfloat16) and puts every submodule
    back in the mode it had (module.train() would give them all the root's)."""
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Dropout(0.5), torch.nn.Linear(4, 1))
    model.eval()
    model[2].train()
    report = mlpcodegen.verify(model.to(torch.bfloat16), "c", "float32", n=50)
    assert report.ok and report.comparisons[1].ulp_dtype == "bfloat16", report.table()  # held to its own ULPs
    assert [m.training for m in model.modules()] == [False, False, False, True, False]
    x = np.random.default_rng(0).uniform(-1, 1, (5, 3))
    with torch.no_grad():
        y = model.eval()(torch.as_tensor(x, dtype=torch.bfloat16)).to(torch.float64).numpy()
    np.testing.assert_allclose(evaluate(mlpcodegen.load(model), x), y, atol=0.05)  # bfloat16: 8 bits of mantissa
