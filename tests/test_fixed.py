"""Q15 fixed point (issue 13): planning, the stated error bound, the C printer, compile_c(dtype="q15")."""
from __future__ import annotations

import dataclasses
import functools
import re
import shutil
import subprocess

import numpy as np
import pytest

from mlpcodegen import compile_c, load
from mlpcodegen.backends import emit, get_backend
from mlpcodegen.core.errors import UnsupportedError, ValidationError
from mlpcodegen.core.fixed import (SUPPORTED, TANH_ERROR, TABLE_POSITION, measure_tanh_error, plan, run_codes,
                              run_fixed, quantise_inputs)
from mlpcodegen.core.ir import Activation, Dense, Network
from mlpcodegen.core.numeric import NUMERIC_TYPES, numeric_type
from mlpcodegen.core.reference import evaluate
from nets import dense_chain, inputs

STRICT = ["-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Wconversion", "-Wdouble-promotion", "-Werror"]


#: tests/nets.py's chain with this file's biases (N(0, 0.09)) and network name; ``kernel_scale``
#: multiplies the N(0, 1/fan-in) kernels.
chain = functools.partial(dense_chain, bias_scale=0.3, name="net")


def fitted_sine() -> Network:
    """1-16-16-1 relu fitted to sin on [-pi, pi] (scikit-learn, L-BFGS, fixed seed: a few seconds;
    bench/fixed.py fits the same way)."""
    from sklearn.neural_network import MLPRegressor

    x = np.linspace(-np.pi, np.pi, 512)[:, None]
    fit = MLPRegressor(hidden_layer_sizes=(16, 16), activation="relu", solver="lbfgs", random_state=0,
                       max_iter=2000, tol=1e-9).fit(x, np.sin(x[:, 0]))
    return dataclasses.replace(load(fit), name="sine")  # the scikit-learn frontend reads it


MODELS = {
    "seed": (lambda: load("generated/seed/seed.keras"), (-1.0, 1.0)),
    "sine": (fitted_sine, (-np.pi, np.pi)),
    "cls": (lambda: chain([16, 64, 64, 10], ["relu", "relu", "softmax"], 2), (-1.0, 1.0)),
    "mixed": (lambda: chain([3, 8, 6, 4], ["sigmoid", "relu6", "hard_tanh"], 3), (-2.0, 2.0)),
}


@pytest.fixture(scope="module")
def compiled():
    """name -> (net, domain, plan, predictor): one compile each."""
    out = {}
    for key, (make, domain) in MODELS.items():
        net = make()
        out[key] = (net, domain, plan(net, domain), compile_c(net, dtype="q15", name=key, domain=domain))
    return out


@pytest.mark.parametrize("key", list(MODELS))
@pytest.mark.filterwarnings("ignore::mlpcodegen.runtime.predictor.OutsideDomainWarning")
def test_c_is_the_plan_bit_for_bit_inside_and_outside_the_domain(compiled, key):
    net, domain, fixed, predictor = compiled[key]
    x = inputs(net.n_inputs, 0, 3000, domain=(3 * domain[0], 3 * domain[1]))
    x[:4] = np.array([np.nan, np.inf, -np.inf, 1e30])[:, None]
    y = predictor(x)
    assert y.dtype == np.float32 and y.shape == (len(x), net.n_outputs)
    if fixed.softmax:  # the wrapper normalises in float32: compare the classes and closely
        np.testing.assert_allclose(y, run_fixed(fixed, x), atol=1e-6)
    else:
        assert np.array_equal(y, run_fixed(fixed, x).astype(np.float32))
    assert np.array_equal(predictor(x[5]), y[5])


@pytest.mark.parametrize("key", list(MODELS))
def test_error_within_the_stated_bound(compiled, key):
    net, domain, fixed, predictor = compiled[key]
    x = inputs(net.n_inputs, 0, 20000, domain=domain)
    error = np.abs(predictor(x) - evaluate(net, x.astype(np.float64))).max(axis=0)
    assert np.all(error <= fixed.bound), (error, fixed.bound)


def test_issue_targets_on_the_host(compiled):
    """seed: <= 5e-3 of the output range, bound within 10x; sine (fitted): <= 5e-4 of the
    range; cls: the classes of 1,000 inputs."""
    for key, limit in (("seed", 5e-3), ("sine", 5e-4)):
        net, domain, fixed, predictor = compiled[key]
        x = inputs(net.n_inputs, 0, 20000, domain=domain)
        reference = evaluate(net, x.astype(np.float64))
        error = np.abs(predictor(x) - reference).max()
        assert error <= limit * np.ptp(reference), (key, error)
        assert fixed.bound.max() <= 10 * error, (key, fixed.bound.max(), error)
    net, domain, fixed, predictor = compiled["cls"]
    x = inputs(16, 0, 1000, domain=domain)
    agree = np.mean(predictor(x).argmax(axis=1) == evaluate(net, x.astype(np.float64)).argmax(axis=1))
    assert agree == 1.0


def test_bound_never_exceeded_on_random_networks():
    """Property (bounded here; bench/fixed.py runs 10^5 inputs): the integer mirror (bit-exact
    with the C, tested above) never errs beyond the stated bound."""
    rng = np.random.default_rng(7)
    for case in range(24):
        depth = int(rng.integers(1, 4))
        widths = [int(rng.integers(1, 9)) for _ in range(depth + 1)]
        activations = [str(rng.choice(["relu", "tanh", "sigmoid", "linear", "relu6", "hard_tanh"]))
                       for _ in range(depth)]
        net = chain(widths, activations, case, kernel_scale=float(rng.uniform(0.5, 4)))
        half = float(rng.uniform(0.1, 8))
        fixed = plan(net, (-half, half))
        x = inputs(net.n_inputs, case, 5000, domain=(-half, half))
        error = np.abs(run_fixed(fixed, x) - evaluate(net, x.astype(np.float64))).max(axis=0)
        assert np.all(error <= fixed.bound), (case, widths, activations, error, fixed.bound)


def test_wide_inputs_split_and_affine_bound_sound():
    """Beyond 12 inputs the planner halves the 8 inputs of widest spread (cls: its second
    relu layer's bound drops below 8, Q12 instead of Q11), and the affine (noise-symbol)
    propagation through relu/linear layers halves cls's logit bound (|W| propagation alone:
    0.0209); the bound stays sound on random wide relu networks."""
    rng = np.random.default_rng(11)
    for case in range(6):
        widths = [int(rng.integers(13, 21))] + [int(rng.integers(4, 25)) for _ in range(int(rng.integers(1, 3)))] + [3]
        activations = ["relu"] * (len(widths) - 2) + [str(rng.choice(["linear", "softmax"]))]
        net = chain(widths, activations, 50 + case, kernel_scale=float(rng.uniform(0.5, 2)))
        half = float(rng.uniform(0.2, 4))
        fixed = plan(net, (-half, half))
        x = inputs(net.n_inputs, case, 5000, domain=(-half, half))
        error = np.abs(run_fixed(fixed, x) - evaluate(net, x.astype(np.float64))).max(axis=0)
        assert np.all(error <= fixed.bound), (case, widths, error, fixed.bound)
    # bench/fixed.py's cls (bench/native_call.py's random_net): the stored figures below are its plan's
    cls = dense_chain([16, 64, 64, 10], ["relu", "relu", "softmax"], 2, names="dense_{i}")
    fixed = plan(cls, (-1.0, 1.0))
    assert [layer.out_frac for layer in fixed.layers] == [12, 12, 26]
    assert fixed.layers[-1].logit_error < 0.0105


def test_tanh_table_error_is_measured():
    assert measure_tanh_error() == TANH_ERROR


def test_unsupported_activation_refused_by_name():
    net = Network(2, (Dense(np.ones((2, 2)), np.zeros(2), Activation("elu"), name="hidden"),))
    with pytest.raises(UnsupportedError) as info:
        emit(net, "c", dtype="q15")
    assert "'hidden'" in str(info.value) and "'elu'" in str(info.value)
    assert all(name in str(info.value) for name in SUPPORTED)


def test_q15_is_a_dtype_of_c_only_and_never_reaches_the_float_printer():
    assert numeric_type("q15").is_fixed and "q15" not in NUMERIC_TYPES
    assert "q15" in get_backend("c").supported and "q15" not in get_backend("c").dtypes
    with pytest.raises(UnsupportedError):
        emit(chain([1, 1], ["linear"], 0), "numba", dtype="q15")


@pytest.mark.parametrize("key", ["seed", "cls"])
def test_generated_text_and_strict_builds(compiled, key, tmp_path, arm_toolchain):
    net, domain, fixed, _ = compiled[key]
    source, header = emit(net, "c", dtype="q15", name=key, domain=domain), \
        get_backend("c").header(net, dtype="q15", name=key, domain=domain)
    assert source.startswith("/* generated by mlpcodegen — do not edit") and 'extern "C"' in header
    assert f"#define {key}_Q15_IN_FRAC {fixed.in_frac}" in header
    start, end = source.index("static const int16_t"), source.index(f"static int16_t {key}_quantise")
    integer_part = re.sub(r"/\*.*?\*/", "", source[start:end], flags=re.S)  # arrays, helpers, NAME_q15
    assert not re.search(r"\b(float|double)\b|[^/]/[^/*]", integer_part)  # no float, no division
    (tmp_path / f"{key}.c").write_text(source)
    (tmp_path / f"{key}.h").write_text(header)
    (tmp_path / "use.cpp").write_text(f'#include "{key}.h"\nint main() {{ return 0; }}\n')
    gcc = shutil.which("gcc")
    subprocess.run([gcc, *STRICT, "-O2", "-c", str(tmp_path / f"{key}.c"), "-o", str(tmp_path / "a.o")], check=True)
    cxx = ["g++", "-std=c++11", *STRICT[1:], "-fsyntax-only"]  # the strict flags, as C++
    subprocess.run([*cxx, "-x", "c++", str(tmp_path / f"{key}.c")], check=True)
    subprocess.run([*cxx, str(tmp_path / "use.cpp")], check=True, cwd=tmp_path)
    arm = shutil.which("arm-none-eabi-gcc")
    assert arm, "the arm_toolchain fixture installs arm-none-eabi-gcc"
    subprocess.run([arm, *STRICT, "-mthumb", "-mcpu=cortex-m0plus", "-Os", "-fstack-usage", "-c",
                    str(tmp_path / f"{key}.c"), "-o", str(tmp_path / "m0.o")], check=True, cwd=tmp_path)
    from mlpcodegen.backends.c_fixed import stack_bytes

    usage = {line.split("\t")[0].rsplit(":", 1)[-1]: int(line.split("\t")[1])
             for line in (tmp_path / "m0.su").read_text().splitlines()}
    stated = stack_bytes(net, "q15")
    assert usage[f"{key}_q15"] <= stated["q15"] and usage[key] + usage[f"{key}_q15"] <= stated["one"]


def _floor_shift(a: int, s: int) -> int:
    """floor((a + 2^(s-1)) / 2^s) with Python's unbounded integers."""
    return (a + (1 << (s - 1))) >> s


def _edges(bits: int) -> list[int]:
    top = 2 ** (bits - 1)
    values = {-top, -top + 1, top - 1, top - 2, 0, 1, -1, 2, -2, 3, -3}
    for k in range(1, bits - 1):  # ties (odd multiples of 2^(k-1)) and their neighbours, both signs
        for base in (1 << (k - 1), 3 << (k - 1), (1 << k) - 1, (1 << k) + 1):
            values |= {base, -base} if base < top else set()
    return sorted(values)


def test_rounding_shift_and_input_rounding_mirror(tmp_path):
    """The shift is floor((a + 2^(s-1)) / 2^s) (round half up) on edge values: +-(2^31 - 1),
    -2^31, ties, the int64 edges; in the mirror and in the C helpers (_shr32, _shr64) built
    with the strict flags and UBSan.  Inputs round half away from zero and saturate (NaN
    to -32768)."""
    from mlpcodegen.backends.c_fixed import _Printer
    from mlpcodegen.core.fixed import _shift

    cases = [(bits, a, s) for bits in (32, 64) for a in _edges(bits) for s in range(1, bits)]
    for bits, a, s in cases:
        assert int(_shift(np.array([a], dtype=np.int64), s)[0]) == _floor_shift(a, s), (bits, a, s)

    class Helpers(_Printer):
        def needed(self):
            return {"shr32", "shr64"}

    net = chain([1, 1], ["linear"], 0)
    literal = {32: lambda a: str(a) if a > -2 ** 31 else "-2147483647 - 1",
               64: lambda a: f"INT64_C({a})" if a > -2 ** 63 else "INT64_C(-9223372036854775807) - 1"}
    tables = []
    for bits in (32, 64):
        mine = [(a, s) for b, a, s in cases if b == bits]
        tables += [f"static const int{bits}_t a{bits}[{len(mine)}] = {{",
                   *(f"    {literal[bits](a)}," for a, _ in mine), "};",
                   f"static const uint32_t s{bits}[{len(mine)}] = {{", *(f"    {s}u," for _, s in mine), "};"]
    loops = [f'    for (i = 0u; i < sizeof a{bits} / sizeof a{bits}[0]; ++i) '
             f'printf("%lld\\n", (long long)m_shr{bits}(a{bits}[i], s{bits}[i]));' for bits in (32, 64)]
    (tmp_path / "shr.c").write_text("\n".join(["#include <stdio.h>", "#include <stdint.h>",
                                               *Helpers(net, plan(net, (-1, 1)), "m").helpers(), *tables,
                                               "int main(void)", "{", "    size_t i;", *loops, "    return 0;", "}",
                                               ""]))
    subprocess.run(["gcc", *STRICT, "-O1", "-fsanitize=undefined", "-fno-sanitize-recover=all",
                    str(tmp_path / "shr.c"), "-o", str(tmp_path / "shr")], check=True)
    run = subprocess.run([str(tmp_path / "shr")], check=True, capture_output=True, text=True)
    assert [int(v) for v in run.stdout.split()] == [_floor_shift(a, s) for _, a, s in cases]
    fixed = plan(Network(1, (Dense(np.array([[1.0]]), np.array([0.0]), name="d"),)), (-1, 1))
    half = 0.5 / 2 ** fixed.in_frac
    q = quantise_inputs(fixed, np.array([[np.nan], [5.0], [-5.0], [half], [-half], [3 * half], [-3 * half]]))
    assert q[:, 0].tolist() == [-32768, 32767, -32768, 1, -1, 2, -2]
    assert TABLE_POSITION == 20


def _c_codes(tmp_path, net, domain, codes, name="m"):
    """The generated NAME_q15 built with the strict flags and UBSan (any undefined behaviour
    aborts), run on int16 ``codes`` (rows): its output codes."""
    source = emit(net, "c", dtype="q15", name=name, domain=domain)
    header = get_backend("c").header(net, dtype="q15", name=name, domain=domain)
    out_type = "int32_t" if net.layers[-1].activation.name == "softmax" else "int16_t"
    m = net.n_outputs
    (tmp_path / f"{name}.c").write_text(source)
    (tmp_path / f"{name}.h").write_text(header)
    (tmp_path / "drive.c").write_text("\n".join([
        "#include <stdio.h>", f'#include "{name}.h"', "int main(void)", "{",
        f"    int16_t x[{net.n_inputs}];", f"    {out_type} y[{m}];", "    unsigned k;",
        "    while (fread(x, sizeof x, 1, stdin) == 1) {", f"        {name}_q15(x, y);",
        f'        for (k = 0u; k < {m}u; ++k) printf("%ld\\n", (long)y[k]);', "    }", "    return 0;", "}", ""]))
    subprocess.run(["gcc", *STRICT, "-O1", "-fsanitize=undefined", "-fno-sanitize-recover=all",
                    str(tmp_path / f"{name}.c"), str(tmp_path / "drive.c"), "-o", str(tmp_path / name), "-lm"],
                   check=True, cwd=tmp_path)
    run = subprocess.run([str(tmp_path / name)], input=np.asarray(codes, dtype="<i2").tobytes(),
                         capture_output=True, check=True)
    return np.array(run.stdout.split(), dtype=np.int64).reshape(len(codes), m)


def _all_codes(n_inputs, count, seed):
    """Every int16 code on the first input (the others random), extremes included."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(-32768, 32768, (count, n_inputs))
    codes[:65536, 0] = np.arange(-32768, 32768)
    codes[:4] = [[-32768], [32767], [0], [-1]]
    return codes


def _tiny(weight, activation, n_inputs=2, bias=0.0):
    return Network(n_inputs, (Dense(np.full((n_inputs, 1), weight), np.array([bias]), Activation(activation),
                                    name="d0"),), name="tiny")


TINY = [(_tiny(1e-5, "relu6"), 1e-4), (_tiny(1e-6, "tanh"), 1e-4), (_tiny(1e-6, "sigmoid"), 1e-4),
        (_tiny(1e-5, "hard_tanh"), 1e-4), (_tiny(1e-7, "relu6"), 1e-6),
        (chain([2, 3, 2], ["tanh", "relu6"], 4, kernel_scale=1e-5), 1e-4),
        (chain([3, 4], ["softmax"], 5, kernel_scale=1e-6), 1e-7)]  # one softmax layer: no int16 buffers


def test_every_shift_defined_for_tiny_weights_on_tiny_domains(tmp_path):
    """Tiny weights on a tiny domain make a fine accumulator format (shifts of 42-47 before
    issue 13's review): the plan keeps every shift within the accumulator (coarser weights),
    FixedLayer refuses a layer that breaks it, and the C (UBSan, -fno-sanitize-recover) is
    the mirror bit for bit on every int16 code; the bound holds and relu6 is exact."""
    from dataclasses import replace

    from mlpcodegen.core.errors import ValidationError

    for index, (net, half) in enumerate(TINY):
        fixed = plan(net, (-half, half))
        for layer in fixed.layers:
            if layer.kind in ("tanh", "sigmoid"):
                assert 0 <= layer.acc_frac + (layer.kind == "sigmoid") <= TABLE_POSITION + layer.acc_bits - 1
            else:
                assert 0 <= layer.shift < layer.acc_bits
        codes = _all_codes(net.n_inputs, 70000, index)
        assert np.array_equal(_c_codes(tmp_path, net, (-half, half), codes), run_codes(fixed, codes)), index
        x = inputs(net.n_inputs, index, 5000, domain=(-half, half))
        error = np.abs(run_fixed(fixed, x) - evaluate(net, x.astype(np.float64))).max(axis=0)
        assert np.all(error <= fixed.bound), (index, error, fixed.bound)
    layer = plan(TINY[0][0], (-1e-4, 1e-4)).layers[0]
    with pytest.raises(ValidationError, match="shift"):
        replace(layer, out_frac=layer.acc_frac - 32)


def test_clamp_beyond_the_accumulator_dropped_and_exact():
    """relu6 / hard_tanh whose clamp (6 or 1 in the accumulator's format) is beyond what the
    accumulator holds: that side is dropped (no sum reaches it), the bound stays tight (it was
    ~6 for a measured 1e-13 before issue 13's review)."""
    for activation in ("relu6", "hard_tanh"):
        net, half = _tiny(1e-5, activation), 1e-4
        fixed = plan(net, (-half, half))
        assert fixed.layers[0].high is None
        x = inputs(net.n_inputs, 1, 20000, domain=(-half, half))
        error = np.abs(run_fixed(fixed, x) - evaluate(net, x.astype(np.float64))).max()
        assert error <= fixed.bound.max() <= 4 * error + 1e-15, (activation, error, fixed.bound)


def test_more_than_32_inputs_planned_and_compiled(tmp_path):
    """NumPy's meshgrid stops at 32 dimensions: the sub-boxes are indexed over the split
    inputs only.  A 40-input network (C = mirror, within the bound) and a 200-input one."""
    net = chain([40, 6, 3], ["relu", "tanh"], 8)
    fixed = plan(net, (-1.0, 1.0))
    codes = np.random.default_rng(3).integers(-32768, 32768, (3000, 40))
    assert np.array_equal(_c_codes(tmp_path, net, (-1.0, 1.0), codes), run_codes(fixed, codes))
    x = inputs(40, 0, 5000, domain=(-1.0, 1.0))
    assert np.all(np.abs(run_fixed(fixed, x) - evaluate(net, x.astype(np.float64))).max(axis=0) <= fixed.bound)
    wide = chain([200, 8, 2], ["relu", "linear"], 9)
    fixed = plan(wide, (-1.0, 1.0))
    x = inputs(200, 0, 2000, domain=(-1.0, 1.0))
    assert np.all(np.abs(run_fixed(fixed, x) - evaluate(wide, x.astype(np.float64))).max(axis=0) <= fixed.bound)


def test_size_command_and_verify_on_m0plus(compiled, capsys, arm_toolchain):
    """`mlpcodegen size --dtype q15` and verify on the emulated Cortex-M0+ (qemu): within the
    stated bound, the same bits as the host build."""
    from mlpcodegen.app.cli import main
    from mlpcodegen.harness.cortex import Options, verify_on_core

    assert main(["size", "generated/seed/seed.keras", "--dtype", "q15", "--domain", "-1", "1", "--core", "m0plus",
                 "--opt", "Os"]) == 0
    assert "seed_q15" in capsys.readouterr().out
    net, domain, fixed, _ = compiled["sine"]
    report, instructions = verify_on_core(net, "m0plus", Options(dtype="q15", name="sine"), n=64, domain=domain)
    assert report.ok and [c.passed for c in report.comparisons] == [True, True], report.table()
    assert "bit-identical" in report.table() and 0 < instructions


def test_comment_states_every_format_in_full():
    """The file comment's formats line (a 16-input softmax network with a per-input domain:
    hundreds of characters) is printed whole; only the file's names and notes are quoted."""
    net = dataclasses.replace(chain([16, 8, 10], ["relu", "softmax"], 4),
                              notes=("input scaling folded in */ #include",))
    net = dataclasses.replace(net, layers=(dataclasses.replace(net.layers[0], name="hidden */ x\ny"),
                                           net.layers[1]))
    domain = (-1.0 - np.arange(16) / 8, 1.0 + np.arange(16) / 4)
    fixed = plan(net, domain)
    header = get_backend("c").header(net, dtype="q15", name="m", domain=domain)
    comment = header[:header.index("*/\n") + 2]
    names = ["hidden <U+002A>/ x<U+000A>y", "d1"]
    for name, layer in zip(names, fixed.layers):
        assert (f"{name}: weights Q{layer.weight_frac}, int{layer.acc_bits} sums, out Q{layer.out_frac} "
                f"({layer.kind})") in comment
    assert f"x15 in [{fixed.domain[0][15]:g}, {fixed.domain[1][15]:g}]" in comment
    assert "note: input scaling folded in <U+002A>/ <U+0023>include" in comment
    assert comment.count("*/") == 1 and "..." not in comment


def test_compile_c_q15_needs_the_domain_and_says_when_inputs_leave_it():
    """Issue 21, B14: no silent [-1, 1] plan; inputs outside the planned domain (which the C
    clips) warn once per predictor, or raise with outside="raise"; inside, nothing."""
    import pickle
    import warnings

    from mlpcodegen.runtime.predictor import OutsideDomainWarning

    net = load("generated/seed/seed.keras")
    with pytest.raises(ValidationError, match=r"plans its formats for the inputs' range.*domain=\(low, high\)"):
        compile_c(net, dtype="q15")
    with pytest.raises(ValidationError, match="plans its formats"):
        emit(net, "c", dtype="q15")
    predictor = compile_c(net, dtype="q15", domain=(0.0, 2.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        inside = predictor(np.array([[0.0], [1.0], [2.0]], dtype=np.float32))  # no warning inside
        assert predictor.scalar is None or predictor.scalar(1.5) == pytest.approx(predictor([1.5])[0])
    with pytest.warns(OutsideDomainWarning, match=r"2 input row\(s\) outside the domain \[0.0\] .. \[2.0\]"):
        clipped = predictor(np.array([[-1.0], [1.0], [5.0]], dtype=np.float32))
    assert clipped[1] == inside[1]  # a warning, the same outputs
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        predictor(np.array([7.0], dtype=np.float32))  # once per predictor
    strict = compile_c(net, dtype="q15", domain=(0.0, 2.0), outside="raise")
    with pytest.raises(ValidationError, match="1 input row"):
        strict(np.array([[1.0], [np.nan]]))
    again = pickle.loads(pickle.dumps(strict))
    assert again.outside == "raise" and np.array_equal(again([1.0]), strict([1.0]))
    with pytest.raises(ValidationError, match="outside= is one of warn, raise, ignore"):
        compile_c(net, dtype="q15", domain=(0.0, 2.0), outside="clip")


@pytest.mark.filterwarnings("ignore::mlpcodegen.runtime.predictor.OutsideDomainWarning")
def test_dsp_path_on_m4f_bit_identical_to_the_mirror(tmp_path, arm_toolchain):
    """Cortex-M4F (issue 25): the sums through SMLAD (int32) and SMLALD (int64), four or two
    rows at once and one by one, every tail (33, 9, 6 inputs; 9, 6, 3 rows) compiled in (the
    helpers are in the M4 object, not in the M0+ one) under the strict flags, within the stated
    stack; on qemu the outputs are the host mirror's bit for bit, inside and outside the domain."""
    from mlpcodegen.backends.c_fixed import stack_bytes
    from mlpcodegen.harness.cortex import Options, run_on_core

    net = chain([33, 9, 6, 3], ["relu", "tanh", "linear"], 1)
    fixed = plan(net, (-1.0, 1.0))
    assert [layer.acc_bits for layer in fixed.layers] == [64, 32, 32]
    source = emit(net, "c", dtype="q15", name="net", domain=(-1.0, 1.0))
    assert "__smlald(" in source and "__smlad(" in source and "#include <arm_acle.h>" in source
    (tmp_path / "net.c").write_text(source)
    arm = shutil.which("arm-none-eabi-gcc")
    symbols = {}
    for cpu, extra in (("cortex-m4", ["-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]), ("cortex-m0plus", [])):
        subprocess.run([arm, *STRICT, "-mthumb", f"-mcpu={cpu}", *extra, "-Os", "-fstack-usage", "-c", "net.c",
                        "-o", f"{cpu}.o"], check=True, cwd=tmp_path)
        symbols[cpu] = {line.split("\t")[0].rsplit(":", 1)[-1].split(".")[0]: int(line.split("\t")[1])  # .constprop
                        for line in (tmp_path / f"{cpu}.su").read_text().splitlines()}
    helpers = {"net_dot2w", "net_dot1w", "net_dot4", "net_dot1"}
    assert helpers <= set(symbols["cortex-m4"]) and not helpers & set(symbols["cortex-m0plus"])
    m4 = symbols["cortex-m4"]
    assert m4["net_q15"] + max(m4[h] for h in helpers) <= stack_bytes(net, "q15")["q15"]
    x = inputs(net.n_inputs, 7, 48, domain=(-1.5, 1.5))
    x[0], x[1] = 1.0, -1.0
    run = run_on_core(net, x, "m4f", Options(dtype="q15", name="net", domain=(-1.0, 1.0)))
    assert np.array_equal(run.outputs, run_fixed(fixed, x).astype(np.float32))
    assert run.instructions > 0
