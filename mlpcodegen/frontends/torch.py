"""PyTorch frontend: the only module (with the tests) that imports torch, and only
when a torch object is converted.

Reads an in-memory ``nn.Sequential`` (nested Sequentials are flattened; a bare
``nn.Linear`` is a one-layer network) into the IR.  Each child module is mapped by its
class name through :data:`READERS` (classes from ``torch.nn`` only: a user-defined
subclass may override ``forward``, so it is refused by name even when it derives from a
supported class).  Weights are read with ``.detach().cpu().double().numpy()``: exact
for float16, bfloat16, float32 and float64 parameters; ``Network.weight_dtype`` keeps
the widest type they were stored in.

**Inference semantics.**  The network is what the module computes after
``model.eval()``: ``BatchNorm1d`` uses its running statistics (folded into the
neighbouring Linear layers), ``Dropout`` / ``AlphaDropout`` are the identity.  A module
left in training mode is converted the same way (a note in the network says so), not
refused: the exported function is an inference function.  A ``BatchNorm1d`` built with
``track_running_stats=False`` has no running statistics -- it normalises by the batch even
in eval mode -- and is refused.

**Softplus.**  PyTorch's ``Softplus(beta, threshold)`` returns ``x`` where
``beta * x > threshold``; the IR computes the exact ``log1p(exp(beta x)) / beta``
everywhere (as ``beta x`` -> softplus -> ``/ beta``).  The two differ by at most
``exp(-threshold) / beta`` (2.1e-9 at the default 20): a relative difference below
half a float32 ulp for every ``threshold >= 15``; a smaller threshold changes results
visibly and is refused.

**Modules with hooks** (user hooks, the old ``weight_norm``/``spectral_norm``) and
parametrized modules (``ParametrizedLinear``) are refused: what they compute is not in
their parameters alone.

**Files: not read here; they go through ONNX.**  A ``state_dict`` file
(``torch.load(..., weights_only=True)``) holds tensors but no architecture: converting it
would mean guessing the user's ``forward``.  A pickled whole module (``torch.save(model)``)
can only be read by unpickling, which runs arbitrary code from the file; a TorchScript
archive (``torch.jit.save``) carries code and pickles that ``torch.jit.load`` executes.
A model file is untrusted input, so none of these is read.  Export the model instead:
``torch.onnx.export(model.eval(), torch.zeros(1, n_inputs), "model.onnx", external_data=False)`` and convert
``model.onnx`` (the ONNX frontend reads it with the ``onnx`` package only, no pickle, no
torch).  In-memory objects -- the user's own, trusted -- come through this frontend.
:func:`is_torch_file` recognises those files from their first bytes (for the format
table) and :func:`load_file` refuses them with this advice.
"""
from __future__ import annotations

import math
import sys
from typing import Any, Callable

import numpy as np

from ..core.errors import MlpCodegenError, ModelFormatError, UnsupportedError, ValidationError
from ..core.ir import Activate, Activation, Affine, Dense, Layer, Network
from ..core.passes import fold_affine, fuse_activations
from ._clamp import clamp_layers

#: torch parameter dtypes -> the IR's weight dtype names.
WEIGHT_DTYPES = {"torch.float16": "float16", "torch.bfloat16": "bfloat16", "torch.float32": "float32",
                 "torch.float64": "float64"}

#: torch dtype -> its machine epsilon (torch.finfo(dtype).eps): RMSNorm's eps=None.
MACHINE_EPSILON = {"torch.float16": 2.0 ** -10, "torch.bfloat16": 2.0 ** -7, "torch.float32": 2.0 ** -23,
                   "torch.float64": 2.0 ** -52}

#: The smallest Softplus threshold accepted (see the module docstring).
SOFTPLUS_MIN_THRESHOLD = 15.0

ROOT = "model"


class _Module:
    """One leaf module of the chain: where it is (``model.3``), the module, and the
    width and torch dtype (``torch.float64``...) of the vector it receives."""

    def __init__(self, path: str, module: Any, width: int, dtype: str = "torch.float32") -> None:
        self.path, self.module, self.width, self.dtype = path, module, width, dtype

    @property
    def where(self) -> str:
        return f"{self.path} ({type(self.module).__name__})"


def _array(entry: _Module, tensor: Any, what: str) -> np.ndarray:
    """A parameter or buffer as float64 (exact from every float type torch stores)."""
    if tensor is None:
        raise ModelFormatError(f"{entry.where}: {what} is missing")
    if str(tensor.dtype) not in WEIGHT_DTYPES:
        raise UnsupportedError(f"{entry.where}: {what} is {tensor.dtype}; only {', '.join(WEIGHT_DTYPES)} "
                               "parameters can be converted (a quantised model?)")
    try:
        return tensor.detach().cpu().double().numpy()
    except (RuntimeError, NotImplementedError) as exc:  # meta tensors, uninitialised lazy parameters
        raise ModelFormatError(f"{entry.where}: cannot read {what} ({exc})") from None


def _per_unit(entry: _Module, values: np.ndarray, what: str) -> np.ndarray:
    values = np.ravel(values)
    if values.size not in (1, entry.width):
        raise ValidationError(f"{entry.where}: {what} has {values.size} values for {entry.width} features")
    return np.broadcast_to(values, (entry.width,)).copy()


def _feature_dim(entry: _Module, dim: Any, allowed: tuple = (-1, 1)) -> None:
    if dim not in allowed:
        raise UnsupportedError(f"{entry.where}: dim={dim!r}; only the feature axis of a (batch, features) "
                               f"input can be converted (dim {' or '.join(map(str, allowed))})")


# ------------------------------------------------------------------------ readers


def _read_linear(entry: _Module) -> list[Layer]:
    """Dense: x @ weight.T + bias (bias optional)."""
    m = entry.module
    bias = None if m.bias is None else _array(entry, m.bias, "bias")
    return [Dense(_array(entry, m.weight, "weight").T, bias, name=entry.path)]


def _activation(name: str, **params: str) -> Callable[[_Module], list[Layer]]:
    """A reader for a module that is one IR activation; ``params``: IR parameter ->
    the module's attribute holding it."""
    def read(entry: _Module) -> list[Layer]:
        values = tuple((key, float(getattr(entry.module, attribute))) for key, attribute in params.items())
        return [Activate(entry.width, Activation(name, values), entry.path)]
    given = ", ".join(key if key == attribute else f"{key} = {attribute}" for key, attribute in params.items())
    read.__doc__ = f"{name} ({given})" if params else name
    return read


def _read_gelu(entry: _Module) -> list[Layer]:
    """gelu (approximate 'none': erf; 'tanh': the tanh form)."""
    modes = {"none": 0.0, "tanh": 1.0}
    approximate = entry.module.approximate
    if approximate not in modes:
        raise UnsupportedError(f"{entry.where}: approximate={approximate!r}; supported: {', '.join(modes)}")
    return [Activate(entry.width, Activation("gelu", (("approximate", modes[approximate]),)), entry.path)]


def _read_prelu(entry: _Module) -> list[Layer]:
    """prelu: max(0, x) + weight * min(0, x), one weight or one per feature."""
    alpha = _per_unit(entry, _array(entry, entry.module.weight, "weight"), "weight")
    return [Activate(entry.width, Activation("prelu", (("alpha", tuple(alpha)),)), entry.path)]


def _read_softplus(entry: _Module) -> list[Layer]:
    """softplus: log1p(exp(beta x)) / beta, computed exactly; threshold >= 15 (PyTorch's switch to x
    there differs from it by at most exp(-threshold) / beta: see the module docstring)."""
    beta, threshold = float(entry.module.beta), float(entry.module.threshold)
    if not threshold >= SOFTPLUS_MIN_THRESHOLD:
        raise UnsupportedError(f"{entry.where}: threshold={threshold:g} switches to the identity where softplus "
                               f"differs from it visibly; only threshold >= {SOFTPLUS_MIN_THRESHOLD:g} can be "
                               "converted (the IR computes softplus exactly)")
    if not (math.isfinite(beta) and beta > 0):
        raise UnsupportedError(f"{entry.where}: beta={beta:g}; only a positive finite beta can be converted")
    step = Activate(entry.width, Activation("softplus"), entry.path)
    if beta == 1.0:
        return [step]
    width = entry.width
    return [Affine(np.full(width, beta), np.zeros(width), f"{entry.path} (beta)"), step,
            Affine(np.full(width, 1.0 / beta), np.zeros(width), f"{entry.path} (1/beta)")]


def _read_hardtanh(entry: _Module) -> list[Layer]:
    """min(max(x, min_val), max_val), exactly (hard_tanh, relu6, relu or threshold steps)."""
    return clamp_layers(entry.width, entry.module.min_val, entry.module.max_val, entry.path)


def _vector(name: str) -> Callable[[_Module], list[Layer]]:
    def read(entry: _Module) -> list[Layer]:
        _feature_dim(entry, entry.module.dim, (-1, 1) if name == "glu" else (None, -1, 1))
        return [Activate(entry.width, Activation(name), entry.path)]
    read.__doc__ = f"{name} over the feature axis (dim -1 or 1{'' if name == 'glu' else ' or None'})"
    return read


def _read_batch_norm(entry: _Module) -> list[Layer]:
    """Inference: (x - running_mean) / sqrt(running_var + eps) * weight + bias, folded."""
    m = entry.module
    if m.running_mean is None or m.running_var is None:
        raise UnsupportedError(f"{entry.where}: built with track_running_stats=False, it normalises by the batch "
                               "even in eval mode; only running statistics can be converted")
    mean, var = _array(entry, m.running_mean, "running_mean"), _array(entry, m.running_var, "running_var")
    gamma = _array(entry, m.weight, "weight") if m.weight is not None else np.ones(entry.width)
    beta = _array(entry, m.bias, "bias") if m.bias is not None else np.zeros(entry.width)
    scale = gamma / np.sqrt(var + float(m.eps))
    return [Affine(scale, beta - mean * scale, entry.path)]


def _normalized_width(entry: _Module) -> None:
    shape = tuple(entry.module.normalized_shape)
    if shape != (entry.width,):
        raise UnsupportedError(f"{entry.where}: normalized_shape={shape}; only the last dimension of a "
                               f"(batch, {entry.width}) input can be converted")


def _norm_scale(entry: _Module) -> Affine:
    m, width = entry.module, entry.width
    gamma = _array(entry, m.weight, "weight") if getattr(m, "weight", None) is not None else np.ones(width)
    beta = _array(entry, m.bias, "bias") if getattr(m, "bias", None) is not None else np.zeros(width)
    return Affine(gamma, beta, f"{entry.path} (scale)")


def _read_layer_norm(entry: _Module) -> list[Layer]:
    """(x - mean) / sqrt(var + eps) * weight + bias over the last dimension."""
    _normalized_width(entry)
    step = Activation("layer_norm", (("epsilon", float(entry.module.eps)),))
    return [Activate(entry.width, step, entry.path), _norm_scale(entry)]


def _read_rms_norm(entry: _Module) -> list[Layer]:
    """x / sqrt(mean(x^2) + eps) * weight; eps=None: the machine epsilon of the input's
    dtype, as torch takes it (the module's weight dtype, else the dtype the chain carries)."""
    _normalized_width(entry)
    eps, weight = entry.module.eps, getattr(entry.module, "weight", None)
    dtype = str(weight.dtype) if weight is not None else entry.dtype
    step = Activation("rms_norm", (("epsilon", float(MACHINE_EPSILON.get(dtype, 2.0 ** -23) if eps is None
                                                     else eps)),))
    return [Activate(entry.width, step, entry.path), _norm_scale(entry)]


def _read_flatten(entry: _Module) -> list[Layer]:
    """Identity on a (batch, features) input (start_dim=1)."""
    if entry.module.start_dim != 1 or entry.module.end_dim not in (-1, 1):
        raise UnsupportedError(f"{entry.where}: start_dim={entry.module.start_dim}, end_dim={entry.module.end_dim}; "
                               "only Flatten(start_dim=1) of a (batch, features) input can be converted")
    return []


def _identity(entry: _Module) -> list[Layer]:
    """Identity at inference."""
    return []


#: torch.nn class name -> reader (IR layers for the module).  Folding and fusing happen
#: afterwards, in mlpcodegen.core.passes.
READERS: dict[str, Callable[[_Module], list[Layer]]] = {
    "Linear": _read_linear,
    "Identity": _identity,
    "ReLU": _activation("relu"),
    "LeakyReLU": _activation("leaky_relu", negative_slope="negative_slope"),
    "PReLU": _read_prelu,
    "ELU": _activation("elu", alpha="alpha"),
    "SELU": _activation("selu"),
    "CELU": _activation("celu", alpha="alpha"),
    "GELU": _read_gelu,
    "SiLU": _activation("silu"),
    "Mish": _activation("mish"),
    "Sigmoid": _activation("sigmoid"),
    "LogSigmoid": _activation("log_sigmoid"),
    "Tanh": _activation("tanh"),
    "Tanhshrink": _activation("tanh_shrink"),
    "Hardshrink": _activation("hard_shrink", threshold="lambd"),
    "Softshrink": _activation("soft_shrink", threshold="lambd"),
    "Threshold": _activation("threshold", threshold="threshold", default_value="value"),
    "Softplus": _read_softplus,
    "Softsign": _activation("softsign"),
    "Hardtanh": _read_hardtanh,
    "ReLU6": _activation("relu6"),
    "Hardsigmoid": _activation("hard_sigmoid"),
    "Hardswish": _activation("hard_silu"),
    "Softmax": _vector("softmax"),
    "LogSoftmax": _vector("log_softmax"),
    "GLU": _vector("glu"),
    "BatchNorm1d": _read_batch_norm,
    "LayerNorm": _read_layer_norm,
    "RMSNorm": _read_rms_norm,
    "Dropout": _identity,
    "AlphaDropout": _identity,
    "Flatten": _read_flatten,
}

#: Modules whose forward depends on training mode (converted with eval semantics).
_MODE_DEPENDENT = ("Dropout", "AlphaDropout", "BatchNorm1d")

#: torch.nn class name -> the input width the module declares (where it declares one).
_WIDTHS: dict[str, Callable[[Any], int]] = {
    "Linear": lambda m: m.in_features,
    "BatchNorm1d": lambda m: m.num_features,
    "LayerNorm": lambda m: tuple(m.normalized_shape)[-1],
    "RMSNorm": lambda m: tuple(m.normalized_shape)[-1],
}

SUPPORTED = ("Sequential",) + tuple(READERS)


# ------------------------------------------------------------------------- files

#: What a member of a torch.save / torch.jit.save zip archive is called after its
#: ``<archive name>/`` prefix (the first member is one of these).
_ARCHIVE_MEMBERS = (b"data.pkl", b"version", b".format_version", b"byteorder", b"constants.pkl")
_ARCHIVE_FOLDERS = (b"data/", b".data/", b"code/", b"constants/")


def is_torch_file(head: bytes) -> bool:
    """Whether a file's first bytes are a PyTorch file: a zip archive whose first member
    is ``<name>/data.pkl``, ``<name>/data/0``, ... (torch.save, torch.jit.save), or a bare
    pickle (the legacy torch.save format; also joblib / pickle.dump files)."""
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return True
    if head[:4] != b"PK\x03\x04" or len(head) < 30:
        return False
    first = head[30:30 + int.from_bytes(head[26:28], "little")]
    _, slash, member = first.partition(b"/")
    return bool(slash) and (member in _ARCHIVE_MEMBERS or member.startswith(_ARCHIVE_FOLDERS))


def load_file(path: Any, *, fold: bool = True, limits: Any = None) -> Network:
    """PyTorch files are refused, with why and what to do instead (the module docstring)."""
    raise ModelFormatError(
        f"{path} is a PyTorch file (torch.save / torch.jit.save) or a Python pickle: not read, because loading "
        "it runs code stored in the file (unpickling, TorchScript) and a state_dict has no architecture. "
        "Export the model: torch.onnx.export(model.eval(), torch.zeros(1, n_inputs), 'model.onnx', "
        "external_data=False), and convert "
        "model.onnx; or, for a file you trust, load it yourself and pass the nn.Module (or scikit-learn object) "
        "to mlpcodegen.load")


# ------------------------------------------------------------------------- public


def load_object(obj: Any, *, fold: bool = True) -> Network:
    """The frontend-table entry: an ``nn.Sequential`` (or a bare ``nn.Linear``)."""
    _check_global_hooks()
    leaves = _leaves(obj, ROOT)
    n_inputs = _input_width(leaves)
    layers, width, dtypes, carried = [], n_inputs, set(), "torch.float32"
    for path, module in leaves:
        own = [str(t.dtype) for t in module.parameters(recurse=False) if t.is_floating_point()]
        carried = own[0] if own else carried  # the dtype the chain carries here (torch needs them equal)
        entry = _Module(path, module, width, carried)
        dtypes.update(str(t.dtype) for t in (*module.parameters(recurse=False), *module.buffers(recurse=False)))
        try:
            new = READERS[type(module).__name__](entry)
        except MlpCodegenError as exc:  # readers name the module; the IR names the layer (its path)
            raise type(exc)(f"PyTorch {exc}") from None
        except (AttributeError, TypeError, ValueError) as exc:  # a module of a torch version we do not know
            raise ModelFormatError(f"PyTorch {entry.where}: cannot read its settings ({exc})") from None
        layers.extend(new)
        width = new[-1].n_out if new else width
    notes = _mode_notes(leaves)
    weight_dtype = next((WEIGHT_DTYPES[d] for d in ("torch.float64", "torch.float32", "torch.bfloat16",
                                                     "torch.float16") if d in dtypes), "float32")
    try:
        net = Network(n_inputs, tuple(layers), weight_dtype, "mlp", notes)
    except MlpCodegenError as exc:
        raise type(exc)(f"PyTorch {ROOT}: {exc}") from None
    return fold_affine(fuse_activations(net)) if fold else fuse_activations(net)


def _leaves(module: Any, path: str) -> list[tuple[str, Any]]:
    """(path, module) of every module in the chain, nested Sequentials flattened."""
    _check_module(module, path)
    if type(module).__name__ != "Sequential":
        return [(path, module)]
    leaves: list[tuple[str, Any]] = []
    for name, child in module.named_children():
        leaves.extend(_leaves(child, f"{path}.{name}"))
    return leaves


def _supported() -> str:
    return ", ".join(SUPPORTED)


def _check_module(module: Any, path: str) -> None:
    cls = type(module)
    where = f"{path} ({cls.__name__})"
    if cls.__name__ not in SUPPORTED or not (cls.__module__ or "").startswith("torch.nn."):
        raise UnsupportedError(f"PyTorch {where} cannot be converted{_hint(cls)}; supported modules: {_supported()}")
    hooks = [name for name in ("_forward_hooks", "_forward_pre_hooks") if getattr(module, name, None)]
    if hooks:
        raise UnsupportedError(f"PyTorch {where} has forward hooks (a user hook, weight_norm or spectral_norm?): "
                               "what it computes is not in its parameters alone; remove the hooks first")


def _check_global_hooks() -> None:
    """Hooks registered for every module (``register_module_forward_hook``) change every
    forward; read from torch's module without importing anything."""
    module = sys.modules.get("torch.nn.modules.module")
    hooks = [name for name in ("_global_forward_hooks", "_global_forward_pre_hooks") if getattr(module, name, None)]
    if hooks:
        raise UnsupportedError("PyTorch: global forward hooks are registered (register_module_forward_hook): "
                               "what the modules compute is not in their parameters alone; remove the hooks first")


def _hint(cls: type) -> str:
    """Why a class that looks like torch's is still refused."""
    if "Script" in cls.__name__:
        return " (a TorchScript module: pass the original nn.Module, or export it to ONNX)"
    if cls.__name__.startswith("Parametrized"):
        return (" (a parametrized module: torch.nn.utils.parametrize.remove_parametrizations(module, name, "
                "leave_parametrized=True) makes it a plain one)")
    base = next((b for b in cls.__mro__[1:] if (b.__module__ or "").startswith("torch.nn.")), None)
    if not (cls.__module__ or "").startswith("torch.nn.") and base is not None:
        return (f" (a subclass of torch.nn {base.__name__} defined in {cls.__module__}, not torch.nn: "
                "its forward may differ; build the chain from torch.nn modules)")
    return ""


def _input_width(leaves: list[tuple[str, Any]]) -> int:
    for path, module in leaves:
        reader = _WIDTHS.get(type(module).__name__)
        if reader is not None:
            return int(reader(module))
    raise UnsupportedError(f"PyTorch {ROOT}: no Linear layer, nothing to convert; supported modules: "
                           f"{_supported()}")


def _mode_notes(leaves: list[tuple[str, Any]]) -> tuple[str, ...]:
    training = [path for path, m in leaves if type(m).__name__ in _MODE_DEPENDENT and m.training]
    if not training:
        return ()
    return (f"converted with inference semantics (as after model.eval()); {', '.join(training)} "
            "were in training mode",)
