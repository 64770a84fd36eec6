"""The PyTorch frontend (mlpcodegen/frontends/torch.py) through the public
``mlpcodegen.load``: random nn.Sequential architectures against the module's own forward
pass and the float64 reference, one compiled C target, and every refusal.

Tolerances (errors measured at the reference magnitude, mlpcodegen.harness.verify):
* the module's forward in float64 (``.double()``) vs the reference: rel <= 1e-12;
* the module's forward in float32 vs the reference: <= 8 float32 ULP (torch's float32
  kernels, e.g. erf, tanh, the LayerNorm reductions, are not correctly rounded; the
  project's own float32 targets are held to 8);
* compiled float32 C vs the reference and vs torch's float32 forward: <= 8 / 16 ULP.
"""
from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mlpcodegen
from mlpcodegen.core.errors import MlpCodegenError, ModelFormatError, UnsupportedError, ValidationError
from mlpcodegen.harness.report import compare
from mlpcodegen.core.ir import Affine
from mlpcodegen.core.reference import evaluate_magnitude

from conftest import import_optional
from nets import inputs

torch = import_optional("torch")  # [all] leaves it out (the [torch] extra; .ci/run installs the CPU build)
nn = torch.nn

F64_REL = 1e-12
TORCH_F32_ULP = 8.0
C_F32_ULP = 8.0


#: Activation modules with random parameters, drawn by the random architectures.
ACTIVATIONS = {
    "ReLU": lambda r, w: nn.ReLU(),
    "LeakyReLU": lambda r, w: nn.LeakyReLU(float(r.uniform(0.01, 0.3))),
    "PReLU": lambda r, w: nn.PReLU(int(r.choice([1, w])), init=float(r.uniform(0.05, 0.5))),
    "ELU": lambda r, w: nn.ELU(float(r.uniform(0.5, 2.0))),
    "SELU": lambda r, w: nn.SELU(),
    "CELU": lambda r, w: nn.CELU(float(r.uniform(0.5, 2.0))),
    "GELU": lambda r, w: nn.GELU(approximate=str(r.choice(["none", "tanh"]))),
    "SiLU": lambda r, w: nn.SiLU(),
    "Mish": lambda r, w: nn.Mish(),
    "Sigmoid": lambda r, w: nn.Sigmoid(),
    "Tanh": lambda r, w: nn.Tanh(),
    # threshold 40: torch's switch to x is then below float64 resolution (the default 20: below)
    "Softplus": lambda r, w: nn.Softplus(beta=float(r.choice([1.0, 0.5, 3.0])), threshold=40.0),
    "Softsign": lambda r, w: nn.Softsign(),
    "Hardtanh": lambda r, w: nn.Hardtanh(*[(-1.0, 1.0), (0.0, 2.5), (-2.0, 0.5), (0.25, 3.0)][int(r.integers(4))]),
    "ReLU6": lambda r, w: nn.ReLU6(),
    "Hardsigmoid": lambda r, w: nn.Hardsigmoid(),
    "Hardswish": lambda r, w: nn.Hardswish(),
    "LogSigmoid": lambda r, w: nn.LogSigmoid(),
    "Tanhshrink": lambda r, w: nn.Tanhshrink(),
    "Softshrink": lambda r, w: nn.Softshrink(float(r.uniform(0.1, 0.6))),
    "Identity": lambda r, w: nn.Identity(),
}
#: Extras after a hidden layer: normalisations and inference no-ops.
EXTRAS = {
    "BatchNorm1d": lambda r, w: _batch_norm(r, w),
    "LayerNorm": lambda r, w: _layer_norm(r, w),
    "Dropout": lambda r, w: nn.Dropout(0.3),
    "Flatten": lambda r, w: nn.Flatten(),
}
HEADS = ("none", "Softmax", "LogSoftmax", "Sigmoid")


def _randomise(module: nn.Module, r: np.random.Generator) -> nn.Module:
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.from_numpy(r.uniform(-1.0, 1.0, tuple(p.shape))))
    return module


def _batch_norm(r: np.random.Generator, width: int) -> nn.Module:
    bn = _randomise(nn.BatchNorm1d(width, eps=float(r.choice([1e-5, 1e-3])), affine=bool(r.integers(2))), r)
    bn.running_mean.copy_(torch.from_numpy(r.normal(size=width)))
    bn.running_var.copy_(torch.from_numpy(r.uniform(0.2, 3.0, width)))
    return bn


def _layer_norm(r: np.random.Generator, width: int) -> nn.Module:
    return _randomise(nn.LayerNorm(width, eps=float(r.choice([1e-5, 1e-3])), bias=bool(r.integers(2))), r)


def random_sequential(seed: int) -> nn.Sequential:
    """Depth 1-4, widths 1-8 (2+ where a normalisation needs them), a random activation
    module after each hidden Linear, extras, nested Sequentials, bias or not, a head."""
    torch.manual_seed(seed)
    r = np.random.default_rng(seed)
    depth = int(r.integers(1, 5))
    widths = [int(w) for w in r.integers(2, 9, size=depth + 1)]
    names = list(ACTIVATIONS)
    modules: list[nn.Module] = []
    for i in range(depth):
        block = [_randomise(nn.Linear(widths[i], widths[i + 1], bias=bool(r.integers(0, 4))), r)]
        if i < depth - 1:
            block.append(ACTIVATIONS[names[int(r.integers(len(names)))]](r, widths[i + 1]))
            if r.random() < 0.5:
                extra = list(EXTRAS)[int(r.integers(len(EXTRAS)))]
                block.append(EXTRAS[extra](r, widths[i + 1]))
        modules.extend([nn.Sequential(*block)] if r.random() < 0.3 else block)
    head = HEADS[int(r.integers(len(HEADS)))]
    if head in ("Softmax", "LogSoftmax"):
        modules.append(getattr(nn, head)(dim=int(r.choice([-1, 1]))))
    elif head == "Sigmoid":
        modules.append(nn.Sigmoid())
    return nn.Sequential(*modules).eval()


def forward(module: nn.Module, x: np.ndarray, dtype) -> np.ndarray:
    """The module's own forward pass in ``dtype`` (a copy: the caller's module is kept)."""
    twin = copy.deepcopy(module).to(dtype).eval()
    with torch.no_grad():
        return twin(torch.from_numpy(x).to(dtype)).double().numpy()


def check_against_torch(model: nn.Module, net, x: np.ndarray) -> None:
    expected, scale = evaluate_magnitude(net, x)
    reference = mlpcodegen.evaluate(net, x)
    np.testing.assert_array_equal(reference, expected)
    _, rel64, _ = compare(forward(model, x, torch.float64), expected, scale, "float64")
    assert rel64 <= F64_REL, f"float64 forward vs reference: rel {rel64:.3g}"
    x32 = x.astype(np.float32).astype(np.float64)
    expected32, scale32 = evaluate_magnitude(net, x32)
    _, _, ulp32 = compare(forward(model, x32, torch.float32), expected32, scale32, "float32")
    assert ulp32 <= TORCH_F32_ULP, f"float32 forward vs reference: {ulp32:.3g} ULP"


@pytest.mark.parametrize("seed", range(24))
def test_random_sequential_matches_forward_and_reference(seed):
    model = random_sequential(seed)
    net = mlpcodegen.load(model)
    assert net.n_inputs == next(m for m in model.modules() if isinstance(m, nn.Linear)).in_features
    check_against_torch(model, net, inputs(net.n_inputs, 1000 + seed, dtype=np.float64))
    unfolded = mlpcodegen.load(model, fold=False)
    x = inputs(net.n_inputs, 1000 + seed, 16, dtype=np.float64)
    np.testing.assert_allclose(mlpcodegen.evaluate(unfolded, x), mlpcodegen.evaluate(net, x), rtol=1e-12, atol=1e-12)


def test_every_listed_activation_module_is_drawn():
    """The random architectures above cover every activation module the frontend maps,
    except the few tested one by one below."""
    from mlpcodegen.frontends import torch as frontend

    tested_alone = {"Linear", "Softmax", "LogSoftmax", "GLU", "Threshold", "Hardshrink", "RMSNorm", "AlphaDropout"}
    assert set(frontend.READERS) - tested_alone <= set(ACTIVATIONS) | set(EXTRAS)


@pytest.mark.parametrize("build", [
    lambda: nn.Sequential(nn.Linear(3, 6), nn.GLU(dim=-1), nn.Linear(3, 2)),
    lambda: nn.Sequential(nn.Linear(3, 4), nn.Threshold(0.1, -0.5), nn.Linear(4, 2)),
    lambda: nn.Sequential(nn.Linear(3, 4), nn.Hardshrink(0.4), nn.AlphaDropout(0.2), nn.Linear(4, 2)),
    lambda: nn.Sequential(nn.Linear(3, 4), nn.RMSNorm(4, eps=1e-5), nn.Linear(4, 2), nn.LogSoftmax(dim=1)),
    lambda: nn.Sequential(nn.Linear(3, 4), nn.Hardtanh(-0.5, float("inf")), nn.Linear(4, 2)),
    lambda: nn.Sequential(_batch_norm(np.random.default_rng(3), 3), nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1),
                          nn.Softmax(dim=-1)),
    lambda: nn.Linear(5, 3),
    lambda: nn.Sequential(nn.Sequential(nn.Sequential(nn.Linear(2, 3, bias=False)), nn.ReLU()), nn.Linear(3, 1)),
], ids=["glu", "threshold", "hardshrink", "rms_norm", "half_open_hardtanh", "input_batchnorm", "bare_linear",
        "nested"])
def test_single_modules(build):
    torch.manual_seed(7)
    model = build().eval()
    net = mlpcodegen.load(model)
    check_against_torch(model, net, inputs(net.n_inputs, 1005, dtype=np.float64))


def test_softplus_default_threshold_within_documented_bound():
    """torch returns x where beta * x > threshold; the IR's exact softplus differs from
    it by at most exp(-threshold) / beta there (the frontend's docstring)."""
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(2, 3), nn.Softplus(beta=3.0), nn.Linear(3, 1)).eval()
    with torch.no_grad():
        model[0].weight.mul_(10.0)  # pre-activations well past threshold / beta
    net = mlpcodegen.load(model)
    x = inputs(2, 1000, dtype=np.float64)
    difference = np.abs(forward(model, x, torch.float64) - mlpcodegen.evaluate(net, x))
    bound = np.exp(-20.0) / 3.0 * np.abs(model[2].weight.detach().double().numpy()).sum()
    assert 0 < difference.max() <= bound * (1 + 1e-6)


@pytest.mark.parametrize("dtype,name", [(torch.float16, "float16"), (torch.bfloat16, "bfloat16"),
                                        (torch.float64, "float64")])
def test_parameter_dtypes_read_exactly(dtype, name):
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(3, 5), nn.ELU(), nn.LayerNorm(5), nn.Linear(5, 2)).to(dtype).eval()
    net = mlpcodegen.load(model)
    assert net.weight_dtype == name
    np.testing.assert_array_equal(net.layers[0].kernel, model[0].weight.detach().double().numpy().T)
    x = inputs(3, 1002, dtype=np.float64)
    expected, scale = evaluate_magnitude(net, x)
    _, rel64, _ = compare(forward(model, x, torch.float64), expected, scale, "float64")
    assert rel64 <= F64_REL


def test_rms_norm_default_eps_is_the_machine_epsilon_of_the_dtype():
    """RMSNorm(eps=None) adds torch.finfo(input dtype).eps: 2**-52 in float64, not float32's."""
    from mlpcodegen.harness.verify import verify

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.RMSNorm(4), nn.Linear(4, 1)).to(torch.float64).eval()
    net = mlpcodegen.load(model)
    x = inputs(3, 1000, dtype=np.float64) * 1e-3  # mean(x^2) ~ 1e-7: float32's epsilon would change the result
    expected, scale = evaluate_magnitude(net, x)
    assert compare(forward(model, x, torch.float64), expected, scale, "float64")[1] <= F64_REL
    assert verify(model, "numpy", "float64", n=64).ok
    for dtype in (torch.float16, torch.bfloat16):
        for affine in (True, False):  # without a weight: the dtype the chain carries (the Linear's)
            small = nn.Sequential(nn.Linear(3, 4), nn.RMSNorm(4, elementwise_affine=affine)).to(dtype)
            params = dict(mlpcodegen.load(small).layers[0].activation.params)
            assert params["epsilon"] == torch.finfo(dtype).eps, (dtype, affine)


@pytest.mark.parametrize("seed", [0])
def test_compiled_c_float32(seed):
    """One compiled target: float32 C within float32 tolerance of the reference and of
    torch's own float32 forward."""
    model = random_sequential(seed)
    net = mlpcodegen.load(model)
    predict = mlpcodegen.compile_c(net, dtype="float32", name="predict")
    x = inputs(net.n_inputs, 1000 + seed, dtype=np.float64).astype(np.float32).astype(np.float64)
    expected, scale = evaluate_magnitude(net, x)
    actual = np.asarray(predict(x.astype(np.float32)), dtype=np.float64)
    assert compare(actual, expected, scale, "float32")[2] <= C_F32_ULP
    assert compare(actual, forward(model, x, torch.float32), scale, "float32")[2] <= C_F32_ULP + TORCH_F32_ULP


def test_file_route_through_onnx_agrees(tmp_path):
    """Files go through ONNX (the frontend's docstring): the exported file, read by the
    ONNX frontend, is the same network as the object read by this one.  (Parameters are
    exact float32 values: ONNX stores activation attributes as float32.)"""
    torch.manual_seed(4)
    model = nn.Sequential(nn.Linear(3, 6), _batch_norm(np.random.default_rng(4), 6), nn.ReLU(),
                          nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Dropout(0.2)), nn.Linear(5, 4, bias=False),
                          nn.ELU(), nn.Linear(4, 3), nn.Softmax(dim=1)).eval()
    path = tmp_path / "model.onnx"
    # dynamo=False: the TorchScript-based exporter, which needs no onnxscript
    torch.onnx.export(model, (torch.zeros(2, 3),), str(path), dynamo=False)
    from_file, from_object = mlpcodegen.load(path), mlpcodegen.load(model)
    x = inputs(3, 1004, dtype=np.float64)
    expected, scale = evaluate_magnitude(from_object, x)
    assert compare(mlpcodegen.evaluate(from_file, x), expected, scale, "float64")[1] <= F64_REL


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_torch_files_recognised_and_refused(tmp_path):
    """torch.save (zip and legacy pickle), torch.jit.save archives and bare pickles are
    recognised from their first bytes and refused with what to do instead; a .keras
    archive is not taken for one.  (The dispatcher's table decides whether to ask.)"""
    from mlpcodegen.frontends import torch as frontend
    from mlpcodegen.frontends import HEAD_BYTES

    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh())
    torch.save(model.state_dict(), tmp_path / "state.pt")
    torch.save(model, tmp_path / "whole.pt")
    torch.save(model.state_dict(), tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    torch.jit.save(torch.jit.script(model), str(tmp_path / "scripted.pt"))
    for name in ("state.pt", "whole.pt", "legacy.pt", "scripted.pt"):
        assert frontend.is_torch_file((tmp_path / name).read_bytes()[:HEAD_BYTES]), name
        with pytest.raises(ModelFormatError, match="runs code stored in the file.*torch.onnx.export"):
            frontend.load_file(tmp_path / name)
    with pytest.raises(ModelFormatError, match="runs code stored in the file.*torch.onnx.export"):
        mlpcodegen.verify(tmp_path / "whole.pt", "c", "float32")  # the API's verify says why, as the CLI's
    seed = Path(mlpcodegen.__file__).resolve().parent.parent / "generated" / "seed" / "seed.keras"
    assert not frontend.is_torch_file(seed.read_bytes()[:HEAD_BYTES])


def test_training_mode_converted_with_eval_semantics():
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.Dropout(0.5), nn.Linear(3, 1))
    model.train()
    net = mlpcodegen.load(model)
    assert any("model.1, model.2" in note and "training mode" in note for note in net.notes)
    assert model.training  # the caller's module is not switched
    check_against_torch(model.eval(), net, inputs(2, 1000, dtype=np.float64))
    assert mlpcodegen.load(model).notes == ()


def test_fold_false_keeps_the_batch_norm_step():
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.Linear(3, 1)).eval()
    assert any(isinstance(layer, Affine) for layer in mlpcodegen.load(model, fold=False).layers)
    assert not any(isinstance(layer, Affine) for layer in mlpcodegen.load(model).layers)


class _MyLinear(nn.Linear):
    def forward(self, x):  # pragma: no cover - never run
        return super().forward(x) * 2


def _hooked() -> nn.Module:
    model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    model[1].register_forward_hook(lambda module, args, out: out * 2)
    return model


@pytest.mark.parametrize("build,error,words", [
    (lambda: nn.Sequential(nn.Linear(2, 3), nn.Conv1d(1, 1, 1)), UnsupportedError,
     ["model.1 (Conv1d)", "supported modules", "Linear", "BatchNorm1d"]),
    (lambda: nn.Sequential(nn.Linear(2, 3), nn.Sequential(nn.ReLU(), nn.LSTM(3, 3))), UnsupportedError,
     ["model.1.1 (LSTM)"]),
    (lambda: nn.Sequential(nn.Linear(2, 3), _MyLinear(3, 1)), UnsupportedError,
     ["model.1 (_MyLinear)"]),
    (_hooked, UnsupportedError, ["model.1 (Linear)", "hooks"]),
    (lambda: nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3, track_running_stats=False)), UnsupportedError,
     ["model.1 (BatchNorm1d)", "track_running_stats"]),
    (lambda: nn.Sequential(nn.Linear(2, 3), nn.Softmax(dim=0)), UnsupportedError, ["model.1 (Softmax)", "dim=0"]),
    (lambda: nn.Sequential(nn.Linear(2, 3), nn.Softplus(threshold=5)), UnsupportedError,
     ["model.1 (Softplus)", "threshold"]),
    (lambda: nn.Sequential(nn.Linear(2, 4), nn.LayerNorm((2, 2))), UnsupportedError,
     ["model.1 (LayerNorm)", "normalized_shape"]),
    (lambda: nn.Sequential(nn.Linear(2, 3), nn.Flatten(0)), UnsupportedError, ["model.1 (Flatten)", "start_dim"]),
    (lambda: nn.Sequential(nn.ReLU(), nn.Tanh()), UnsupportedError, ["no Linear"]),
    (lambda: nn.Sequential(nn.Linear(2, 3), nn.Linear(4, 1)), ValidationError, ["model.1", "expects 4 inputs"]),
    (lambda: nn.Sequential(nn.Linear(2, 3, device="meta")), ModelFormatError, ["model.0 (Linear)", "cannot read"]),
], ids=["conv", "nested_lstm", "subclass", "hooks", "no_running_stats", "softmax_dim0",
        "softplus_threshold", "layer_norm_2d", "flatten_batch", "no_linear", "width_mismatch", "meta_device"])
def test_refusals_name_the_module(build, error, words):
    with pytest.raises(error) as caught:
        mlpcodegen.load(build())
    for word in words:
        assert word in str(caught.value)


def test_user_defined_root_module_refused():
    """A subclass of Sequential may override forward: the dispatcher does not hand it to
    the frontend (its module is not torch's), and the frontend refuses it by name."""
    from mlpcodegen.frontends import torch as frontend

    net = type("Net", (nn.Sequential,), {})(nn.Linear(2, 3))
    with pytest.raises(MlpCodegenError, match="Net"):
        mlpcodegen.load(net)
    with pytest.raises(UnsupportedError, match=r"model \(Net\).*not torch.nn"):
        frontend.load_object(net)


def test_global_hooks_and_parametrizations_refused():
    model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    handle = torch.nn.modules.module.register_module_forward_hook(lambda module, args, out: out)
    try:
        with pytest.raises(UnsupportedError, match="global forward hooks"):
            mlpcodegen.load(model)
    finally:
        handle.remove()
    mlpcodegen.load(model)
    torch.nn.utils.parametrizations.orthogonal(model[1])
    with pytest.raises(UnsupportedError, match=r"model.1 \(ParametrizedLinear\).*remove_parametrizations"):
        mlpcodegen.load(model)


def test_non_finite_weights_refused():
    model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    with torch.no_grad():
        model[1].weight[0, 2] = float("nan")
    with pytest.raises(ValidationError, match="model.1.*non-finite"):
        mlpcodegen.load(model)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
def test_torchscript_refused_with_a_hint():
    scripted = torch.jit.script(nn.Sequential(nn.Linear(2, 3), nn.ReLU()))
    with pytest.raises(UnsupportedError, match="TorchScript.*ONNX"):
        mlpcodegen.load(scripted)


def test_importing_the_frontends_imports_no_framework():
    code = ("import sys, mlpcodegen, mlpcodegen.frontends.torch, mlpcodegen.frontends.sklearn; "
            "print(sorted(m for m in ('torch', 'sklearn', 'tensorflow', 'keras') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "[]"
