"""The benchmark's pieces compute the right thing (tests never assert wall-clock times):
the ONNX graph built from the IR, the LiteRT peer, the plain C kernel and the in-C
driver, the low-overhead call paths, and `mlpcodegen bench` end to end."""
import numpy as np
import pytest

from conftest import build_model
from mlpcodegen.backends import BACKENDS
from mlpcodegen.cli import main
from mlpcodegen.errors import UnsupportedError
from mlpcodegen.frontends.keras import load
from mlpcodegen.harness.verify import F32_ULP_BOUND, compare
from mlpcodegen.ir import Activation, Dense, Network
from mlpcodegen.reference import evaluate_magnitude
from test_backend_c import random_net

SEED = "generated/seed/seed.keras"


def inputs(net: Network, seed: int = 0, n: int = 300) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-3, 3, (n, net.n_inputs)).astype(np.float32)


@pytest.mark.parametrize("seed", range(8))
def test_onnx_graph_from_the_ir_matches_the_reference(seed):
    from mlpcodegen.harness.onnx_peer import onnx_runtime_session

    net = random_net(seed)
    x = inputs(net, seed)
    reference, scale = evaluate_magnitude(net, x.astype(np.float64))
    # 8 ULPs at the reference magnitude, plus 1e-6 absolute: ONNX Runtime's own sigmoid is
    # a rational approximation (~1e-7 absolute, so huge ULP counts for outputs near 0)
    error = np.abs(onnx_runtime_session(net)(x) - reference)
    assert np.all(error <= 1e-6 + F32_ULP_BOUND * np.finfo(np.float32).eps * scale)


def test_onnx_graph_names_what_it_cannot_express():
    from mlpcodegen.harness.onnx_peer import onnx_model

    net = Network(2, (Dense(np.ones((2, 2)), None, Activation("gelu"), "g"),))
    with pytest.raises(UnsupportedError, match="layer 'g': activation 'gelu'.*supported: linear, relu"):
        onnx_model(net)


def test_litert_peer_matches_predict(keras_module):
    from mlpcodegen.frontends.keras import litert_runner

    model = build_model([3, 8, 2], ["tanh", "softmax"], [True, True], seed=4)
    x = inputs(load(model), 1, 100)
    run = litert_runner(model)
    np.testing.assert_allclose(run(x), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(run(x[:1]), model.predict(x[:1], verbose=0), rtol=1e-5, atol=1e-6)  # resized


@pytest.mark.parametrize("seed", [0, 2, 8, 15])
def test_plain_c_kernel_computes_the_network(gcc, seed):
    """The kernel the generated C is measured against is a correct implementation."""
    from mlpcodegen.harness.cdriver import plain_kernel
    from mlpcodegen.harness.cffi_build import CompiledNetwork, build_module

    net = random_net(seed)
    module = build_module(plain_kernel(net) + "void plain_batch(const float *x, float *y, size_t n)\n"
                          "{ size_t i; for (i = 0; i < n; ++i) plain(x + i * %du, y + i * %du); }\n"
                          % (net.n_inputs, net.n_outputs),
                          "void plain(const float *x, float *y);\nvoid plain_batch(const float *x, float *y, size_t n);\n")
    plain = CompiledNetwork(module, "plain", net.n_inputs, net.n_outputs, "float32")
    x = inputs(net, seed)
    reference, scale = evaluate_magnitude(net, x.astype(np.float64))
    assert compare(plain(x), reference, scale, "float32")[2] <= F32_ULP_BOUND


def test_in_c_driver_reports_every_measurement(gcc):
    from mlpcodegen.harness.cdriver import time_in_c

    result = time_in_c(load(SEED), [40, 1000])
    assert set(result.batch) == set(result.plain_batch) == {40, 1000}
    assert all(0 < t < 1 for t in [result.one, result.plain_one, *result.batch.values(), *result.plain_batch.values()])


def test_bound_call_and_scalar_entry_agree_with_the_array_call(gcc):
    net = load(SEED)
    c = BACKENDS["c"].load(net, dtype="float32", name="seed")
    x = inputs(net)
    bound, other = c.bind(), c.bind()
    for row in x[:20]:
        bound.x[:] = row
        assert bound.run() is None
        np.testing.assert_array_equal(bound.y, c(row))
        assert c.scalar(float(row[0])) == c(row)[0]
    assert not other.y.any()  # each binding owns its buffers
    wide = random_net(2)
    cw = BACKENDS["c"].load(wide, dtype="float64", name="w")
    b = cw.bind()
    b.x[:] = inputs(wide)[0]
    b.run()
    np.testing.assert_array_equal(b.y, cw(inputs(wide)[0].astype(np.float64)))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_numba_into_and_scalar_agree_with_the_single_call(dtype):
    net = load(SEED)
    nb = BACKENDS["numba"].load(net, dtype=dtype, name="seed")
    out = np.empty(1, dtype)
    for value in inputs(net)[:10, 0].astype(dtype):
        row = np.array([value])
        nb.into(row, out)
        np.testing.assert_array_equal(out, nb(row))
        assert nb.scalar(value) == nb(row)[0]
    with pytest.raises(ValueError, match="expects arrays of 1 inputs and 1 outputs"):
        nb.into(np.zeros(2, dtype), out)


def test_bench_command_writes_a_checked_report(gcc, keras_module, tmp_path, capsys):
    """Every path runs and is correct on the checked rows; the report and plot exist and
    list each of the issue's targets (met or not: times are not asserted)."""
    out = tmp_path / "seed_bench.md"
    assert main(["bench", SEED, "--quick", "--rows", "64", "256", "--tiny", "--out", str(out)]) == 0
    text = out.read_text()
    assert out.with_suffix(".png").stat().st_size > 10_000
    for path in ("model.predict", "ONNX Runtime (1 thread)", "LiteRT, XNNPACK (1 thread)", "C via cffi: bound call",
                 "C via cffi: scalar entry", "Numba: net_into(x, y)", "generated C, timed inside C",
                 "plain C loops, timed inside C", "empty cffi call (2 pointers)"):
        assert f"| {path} |" in text, path
    assert "failed:" not in text and "not run" not in text
    rows = [line.split(" | ") for line in text.splitlines() if line.startswith("| ") and " | peer | " in line
            or " | mlpcodegen | " in line]
    ulps = [float(cells[2]) for cells in rows if cells[2] != "—"]
    assert len(ulps) >= 8 and max(ulps) <= F32_ULP_BOUND
    assert text.count("| seed_bench |") == 0 and "## Targets" in text and "convert .keras -> C" in text
    printed = capsys.readouterr().out
    assert "× faster than model.predict" in printed and "in-C one sample / plain C loops" in printed
