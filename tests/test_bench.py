"""The benchmark's pieces compute the right thing (tests never assert wall-clock times):
the ONNX graph built from the IR, the LiteRT peer, the plain C kernel and the in-C
driver, the low-overhead call paths, and `mlpcodegen bench` end to end."""
import numpy as np
import pytest

from conftest import build_model
from mlpcodegen import runtime
from mlpcodegen.app.cli import main
from mlpcodegen.core.errors import UnsupportedError
from mlpcodegen.frontends.keras import load
from mlpcodegen.harness.report import F32_ULP_BOUND, compare
from mlpcodegen.core.ir import Activation, Dense, Network
from mlpcodegen.core.reference import evaluate_magnitude
from nets import inputs, random_net

SEED = "generated/seed/seed.keras"


@pytest.mark.parametrize("seed", range(8))
def test_onnx_graph_from_the_ir_matches_the_reference(seed):
    from mlpcodegen.harness.onnx_peer import onnx_runtime_session

    net = random_net(seed)
    x = inputs(net.n_inputs, seed, 300)
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
    from mlpcodegen.harness.peers import litert_runner

    model = build_model([3, 8, 2], ["tanh", "softmax"], [True, True], seed=4)
    x = inputs(load(model).n_inputs, 1, 100)
    run = litert_runner(model)
    np.testing.assert_allclose(run(x), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(run(x[:1]), model.predict(x[:1], verbose=0), rtol=1e-5, atol=1e-6)  # resized


@pytest.mark.parametrize("seed", [0, 2, 8, 15])
def test_plain_c_kernel_computes_the_network(gcc, seed):
    """The kernel the generated C is measured against is a correct implementation."""
    from mlpcodegen.harness.cdriver import plain_kernel
    from mlpcodegen.runtime import CompiledNetwork
    from mlpcodegen.runtime.cffi_build import build_module

    net = random_net(seed)
    module = build_module(plain_kernel(net) + "void plain_batch(const float *x, float *y, size_t n)\n"
                          "{ size_t i; for (i = 0; i < n; ++i) plain(x + i * %du, y + i * %du); }\n"
                          % (net.n_inputs, net.n_outputs),
                          "void plain(const float *x, float *y);\nvoid plain_batch(const float *x, float *y, size_t n);\n")
    plain = CompiledNetwork(module, "plain", net.n_inputs, net.n_outputs, "float32")
    x = inputs(net.n_inputs, seed, 300)
    reference, scale = evaluate_magnitude(net, x.astype(np.float64))
    assert compare(plain(x), reference, scale, "float32")[2] <= F32_ULP_BOUND


def test_in_c_driver_reports_every_measurement(gcc):
    from mlpcodegen.harness.cdriver import time_in_c

    result = time_in_c(load(SEED), [40, 1000])
    assert set(result.batch) == set(result.plain_batch) == {40, 1000}
    assert all(0 < t < 1 for t in [result.one, result.plain_one, *result.batch.values(), *result.plain_batch.values()])


def test_bound_call_and_scalar_entry_agree_with_the_array_call(gcc):
    net = load(SEED)
    c = runtime.load(net, "c", dtype="float32", name="seed")
    x = inputs(net.n_inputs, 0, 300)
    bound, other = c.bind(), c.bind()
    for row in x[:20]:
        bound.x[:] = row
        assert bound.run() is None
        np.testing.assert_array_equal(bound.y, c(row))
        assert c.scalar(float(row[0])) == c(row)[0]
    assert not other.y.any()  # each binding owns its buffers
    wide = random_net(2)
    cw = runtime.load(wide, "c", dtype="float64", name="w")
    b = cw.bind()
    b.x[:] = inputs(wide.n_inputs)[0]
    b.run()
    np.testing.assert_array_equal(b.y, cw(inputs(wide.n_inputs)[0].astype(np.float64)))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_numba_into_and_scalar_agree_with_the_single_call(dtype):
    net = load(SEED)
    nb = runtime.load(net, "numba", dtype=dtype, name="seed")
    out = np.empty(1, dtype)
    for value in inputs(net.n_inputs)[:10, 0].astype(dtype):
        row = np.array([value])
        nb.into(row, out)
        np.testing.assert_array_equal(out, nb(row))
        assert nb.scalar(value) == nb(row)[0]
    with pytest.raises(ValueError, match="expects arrays of 1 inputs and 1 outputs"):
        nb.into(np.zeros(2, dtype), out)


def test_bench_command_writes_a_checked_report(gcc, keras_module, tmp_path, capsys):
    """Every path runs and is correct on the checked rows; the report and plot exist and
    state facts and ratios, not the project's own speed goals (times are not asserted)."""
    out = tmp_path / "seed_bench.md"
    assert main(["bench", SEED, "--quick", "--rows", "64", "256", "--out", str(out)]) == 0
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
    assert "## Summary" in text and "convert .keras -> C, fresh process: " in text and "256 rows: C via cffi" in text
    assert "## Targets" not in text and "needed" not in text


def _synthetic_bench(label: str = "seed"):
    from mlpcodegen.harness.bench import ModelBench, Timing

    paths = [Timing("model.predict", "peer", 44e-3, {10_000: 2.4e5}, 0.5),
             Timing("LiteRT, XNNPACK (1 thread)", "peer", 1.6e-6, {10_000: 1.7e8, 1_000_000: 1.6e8}, 0.9),
             Timing("ONNX Runtime (1 thread)", "peer", 6e-6, {10_000: 8e7, 1_000_000: 1e8}, 0.9),
             Timing("C via cffi: net(x)", "mlpcodegen", 1.2e-6, {10_000: 2.4e8, 1_000_000: 3.2e8}, 0.7),
             Timing("C via cffi: bound call", "mlpcodegen", 160e-9, {}, 0.7),
             Timing("empty cffi call (2 pointers)", "floor", 140e-9),
             Timing("generated C, timed inside C", "in C", 35e-9, {10_000: 3e8, 1_000_000: 3.5e8}),
             Timing("plain C loops, timed inside C", "in C", 70e-9, {10_000: 1e8, 1_000_000: 1.1e8})]
    facts = {"convert .keras -> C, fresh process (s)": 0.165, "generated C (bytes)": 8188}
    return ModelBench(label, "1-3-2-1 (tanh, tanh, linear)", paths, facts)


def test_summary_lines_state_facts_and_ratios_not_goals():
    from mlpcodegen.harness.bench_report import summary_lines

    lines = summary_lines(_synthetic_bench())
    assert lines == [
        "seed: 1-3-2-1 (tanh, tanh, linear), float32, one thread",
        "  one sample: C via cffi: bound call 160 ns (275,000× faster than model.predict; 10× faster than LiteRT, "
        "XNNPACK (1 thread)); the C alone 35 ns",
        "  1,000,000 rows: C via cffi 320 M/s (2× the rate of LiteRT, XNNPACK (1 thread))",
        "  convert .keras -> C, fresh process: 0.165 s",
        "  generated C: 8,188 bytes",
        "  largest error of any path on the checked rows: 0.9 float32 ulp against the float64 reference",
    ]


def test_goals_are_written_only_when_asked(tmp_path):
    """bench/bench_speed.py keeps the project's goals table; a user's report does not have it."""
    from mlpcodegen.harness.bench_report import write_report

    bench = _synthetic_bench()
    write_report([bench], [10_000, 1_000_000], tmp_path / "user.md", "mlpcodegen bench")
    write_report([bench], [10_000, 1_000_000], tmp_path / "goals.md", "bench_speed", seed_labels=["seed"], goals=True)
    user, goals = (tmp_path / "user.md").read_text(), (tmp_path / "goals.md").read_text()
    assert "## Targets" not in user and "needed" not in user and "**no**" not in user
    assert "## Targets" in goals and "| seed | in-C one sample / plain C loops | 0.5× | ≤ 0.6× | yes |" in goals


def test_plot_has_a_legend_and_unit_labels(tmp_path, monkeypatch):
    import matplotlib.axes
    import matplotlib.figure

    from mlpcodegen.harness import bench_report

    seen = {}
    monkeypatch.setattr(matplotlib.figure.Figure, "legend",
                        lambda self, *a, **k: seen.setdefault("legend", [h.get_label() for h in k["handles"]]))
    original = matplotlib.axes.Axes.set_xlabel
    monkeypatch.setattr(matplotlib.axes.Axes, "set_xlabel",
                        lambda self, text, **k: (seen.setdefault("xlabels", []).append(text), original(self, text, **k)))
    bench_report.plot([_synthetic_bench()], [10_000, 1_000_000], tmp_path / "p.png")
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    assert seen["legend"] == ["other runtimes", "mlpcodegen, called from Python", "empty call (the call's own cost)",
                              "timed inside C (no Python)"]
    assert seen["xlabels"] == ["seconds per sample (log scale; shorter is faster)",
                               "samples per second (log scale; longer is faster)"]
    assert bench_report._tick(3e-7, bench_report.TIME_UNITS) == "300 ns"
    assert bench_report._tick(2e7, bench_report.RATE_UNITS) == "20 M/s"
    assert bench_report._tick(1e-3, bench_report.TIME_UNITS) == "1 ms"


def test_cpuid_view_hides_avx512_from_a_child_python_only(tmp_path):
    """bench/batch.py's AVX2 column: the peers' CPUID must show AVX2 + FMA and no AVX-512, and
    the compilers the child runs must still work (gcc's cc1 has its own SIGSEGV handler)."""
    import subprocess
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    import cpuid_view

    if not (cpuid_view.needed() and cpuid_view.possible()):
        pytest.skip("the host has no AVX-512 to hide, or no CPUID faulting (/proc/cpuinfo flag cpuid_fault)")
    env = cpuid_view.environment(cpuid_view.build(tmp_path))
    probe = ("import sys; sys.path.insert(0, %r); import cpuid_view, subprocess;"
             "print(cpuid_view.active());"
             "open(%r, 'w').write('int f(void) { return 1; }\\n');"
             "print(subprocess.run(['gcc', '-c', %r, '-o', %r]).returncode)"
             % (str(Path(cpuid_view.__file__).parent), str(tmp_path / "f.c"), str(tmp_path / "f.c"),
                str(tmp_path / "f.o")))
    seen = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert seen.stdout.split() == ["True", "0"], seen.stderr
    assert not cpuid_view.active()  # this process, without the view, still sees AVX-512


def test_batch_bench_pairs_the_kernel_with_the_fma_loop_block_by_block(gcc):
    """bench/batch.py's same-conditions peak: the paired call runs NAME_batch_ws over every
    block (the same bits as NAME_batch) and times both it and the FMA loop between them."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    import batch
    from mlpcodegen.backends.c_batch import block_plan

    rng = np.random.default_rng(4)
    net = Network(8, (Dense(rng.normal(size=(8, 256)).astype(np.float32), rng.normal(size=256).astype(np.float32),
                            Activation("relu"), "d0"),
                      Dense(rng.normal(size=(256, 256)).astype(np.float32) / 16, np.zeros(256, np.float32),
                            Activation("relu"), "d1"),
                      Dense(rng.normal(size=(256, 3)).astype(np.float32) / 16, np.ones(3, np.float32),
                            Activation("linear"), "d2")))
    assert block_plan(net, "float32").rows  # the layout NAME_batch_ws has
    x = rng.uniform(-1, 1, (250, 8)).astype(np.float32)  # two whole 96-row blocks and a part
    flags = ("-O2",)
    call, per_iteration, y = batch.paired_call(net, flags, x)
    kernel, loop, loop_flops = call(1000)
    assert kernel > 0 and loop > 0 and loop_flops == per_iteration * 1000 * 3
    whole, expected = batch.in_c_call(net, flags, x)
    whole()
    assert np.array_equal(y.view(np.uint32), expected.view(np.uint32))
    reference, scale = evaluate_magnitude(net, x.astype(np.float64))
    assert compare(y, reference, scale, "float32")[2] <= F32_ULP_BOUND
