"""The demo: a short summary of what was done, where the files are, in stated units."""
import json
import os

import pytest

from conftest import build_model
from mlpcodegen.app.demo import function_name, run_demo


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    build_model([2, 3, 1], ["tanh", "linear"], [True, True], seed=4).save(folder / "my-model (2).keras")
    (folder / "scaling.json").write_text(json.dumps({"input": {"kind": "minmax", "min": [0, 100], "max": [10, 300]}}))
    return folder


def test_summary_is_short_states_units_and_names_the_files(model_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert run_demo(model_dir / "my-model (2).keras", out_dir=out) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert len(lines) <= 25, text
    assert "#include" not in text  # the C is in the file, not on the screen
    assert sorted(p.name for p in out.iterdir()) == ["my_model_2.c", "my_model_2.h", "my_model_2.tex"]
    assert "void my_model_2(const float *x, float *y)" in (out / "my_model_2.c").read_text()
    for path in out.iterdir():
        assert str(path) in text
    assert "units     original units (input scaling from" in text
    assert "random inputs in x0 in [0, 10], x1 in [100, 300] (original units)" in text
    assert "formula   in original units" in text and "y = " in text
    assert text.count(": ok") == 2 and lines[-1] == "result    ok"
    assert "x faster than model.predict" in text and "x faster than model(x) eager" in text
    speed = next(line for line in lines if line.startswith("speed"))
    assert "model(x) eager" in speed and "LiteRT" in speed and "x faster than LiteRT" in text
    assert "XNNPACK" not in text and "XNNPACK" not in capsys.readouterr().err
    assert "needed" not in text and "NO " not in text


def test_quiet_is_one_line_and_the_default_folder_is_temporary_and_removed(model_dir, tmp_path, monkeypatch,
                                                                           capsys):
    import tempfile

    work, temporary = tmp_path / "cwd", tmp_path / "tmp"
    work.mkdir(), temporary.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    assert run_demo(model_dir / "my-model (2).keras", verbosity=0) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith("ok: my-model (2).keras (2-3-1 (tanh, linear)) -> my_model_2.c (temporary: -o DIR keeps "
                           "it); ")
    assert "faster than model.predict" in line and "faster than model(x) eager" in line
    assert not any(work.iterdir()) and not any(temporary.iterdir())  # nothing left behind, anywhere
    assert run_demo(model_dir / "my-model (2).keras") == 0
    assert "(in a temporary folder, removed when the demo ends: -o DIR keeps the files)" in capsys.readouterr().out
    assert not any(temporary.iterdir())


def test_verbose_also_prints_the_generated_c(model_dir, tmp_path, capsys):
    assert run_demo(model_dir / "my-model (2).keras", verbosity=2, out_dir=tmp_path) == 0
    text = capsys.readouterr().out
    assert (tmp_path / "my_model_2.c").read_text().rstrip("\n") in text
    assert text.splitlines()[-1] == "result    ok"


@pytest.mark.parametrize("stem,name", [("seed", "seed"), ("my-model (2)", "my_model_2"), ("2layer", "mlp_2layer"),
                                       ("", "mlp"), ("--", "mlp"), ("ünï", "n"), ("a" * 80, "a" * 40)])
def test_function_name_from_the_file_stem(stem, name):
    assert function_name(stem) == name


def test_a_large_network_gets_no_formula_on_screen(tmp_path):
    """94 KB of C or a million-term formula belong in files, not in the summary."""
    import numpy as np

    from mlpcodegen.app import demo
    from mlpcodegen.core.ir import Activation, Dense, Network

    rng = np.random.default_rng(0)
    net = Network(16, (Dense(rng.normal(size=(16, 64)), rng.normal(size=64), Activation("relu"), "a"),
                       Dense(rng.normal(size=(64, 10)), rng.normal(size=10), Activation("softmax"), "b")))
    run = demo._Run(tmp_path / "big.keras", net, "big", "model units", tmp_path, 0.0,
                    domain=(np.full(16, -1.0), np.full(16, 1.0)))
    assert demo._formula_lines(run) == ["formula   not shown for 1,738 weights (mlpcodegen formula MODEL --layout "
                                        "named writes one line per neuron)"]


def test_native_log_lines_are_filtered_off_the_screen(capfd):
    """LiteRT's C++ writes "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." to file
    descriptor 2 on its first call, past sys.stderr: bench and the demo capture the
    descriptors around it and pass on every other line."""
    from mlpcodegen.harness.bench import LITERT_LOG, native_output_filtered

    with native_output_filtered(LITERT_LOG):
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
        os.write(1, b"a real problem\n")
    print("table")
    out, err = capfd.readouterr()
    assert out == "table\n" and err == "a real problem\n"
