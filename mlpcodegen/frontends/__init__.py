"""Frontends: read a model of any supported framework into the IR.

``load(source)`` finds the format by content (the first bytes of a file, the module
of an object), never by extension alone, and hands the source to the one frontend
module that knows that framework.  The table :data:`FORMATS` is the only list of
formats: the CLI, the README's format table and the error messages read it.

A frontend module offers ``load_file(path, *, fold, limits, weights)`` (file formats)
and/or ``load_object(obj, *, fold)`` (in-memory objects).  Detection here reads bytes
and type names only: it imports no framework.
"""
from __future__ import annotations

import importlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from ..core._files import open_regular
from ..core.errors import ModelFormatError
from ..core.limits import DEFAULT_LIMITS, ReadLimits

#: How many leading bytes detection reads (an HDF5 superblock may start at 0, 512, 1024 or 2048).
HEAD_BYTES = 2048 + 8
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def _is_zip(head: bytes) -> bool:
    return head[:4] == b"PK\x03\x04"


def _is_hdf5(head: bytes) -> bool:
    return any(head[offset:offset + 8] == _HDF5_MAGIC for offset in (0, 512, 1024, 2048))


def _is_json_object(head: bytes) -> bool:
    return head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{"


def _is_keras(head: bytes) -> bool:
    return _is_zip(head) or _is_hdf5(head) or _is_json_object(head)


def _is_onnx(head: bytes) -> bool:
    """An ONNX ModelProto starts with a protobuf field tag: ir_version (field 1, varint)
    is written first by every exporter; nothing else we read starts with byte 0x08."""
    return head[:1] == b"\x08"


def _module_prefix(*prefixes: str) -> Callable[[Any], bool]:
    """An object test: its class, or a class it derives from, comes from one of these
    packages (a user's subclass of ``nn.Sequential`` goes to the PyTorch frontend, which
    says what it refuses and why)."""
    def from_package(cls: type) -> bool:
        module = getattr(cls, "__module__", None) or ""
        return any(module == p or module.startswith(p + ".") for p in prefixes)

    def owns(obj: Any) -> bool:
        return any(from_package(cls) for cls in type(obj).__mro__ if cls is not object)
    return owns


def _is_torch_file(head: bytes) -> bool:
    """torch.save / torch.jit.save archives and pickles: recognised to be refused with
    the reason (loading them runs code from the file), before the zip test of Keras."""
    from . import torch as frontend  # imports no torch

    return frontend.is_torch_file(head)


def _is_keras_object(obj: Any) -> bool:
    return hasattr(obj, "get_config") and hasattr(obj, "layers") and _module_prefix("keras", "tf_keras",
                                                                                    "tensorflow")(obj)


def _names(items) -> str:
    return ", ".join(f"`{item}`" for item in items)


def _onnx_details() -> str:
    from . import onnx

    return (f"ONNX operators: {_names(onnx.SUPPORTED_OPS)}; and the multi-node forms exporters write: "
            f"{_names(onnx.DECOMPOSED_FORMS)}.")


def _torch_details() -> str:
    from . import torch

    return f"PyTorch modules: {_names(torch.SUPPORTED)}."


def _sklearn_details() -> str:
    from . import sklearn

    return (f"scikit-learn: {_names(sklearn.ESTIMATORS)} (activations {_names(sklearn.ACTIVATIONS)}), after "
            f"{_names(sklearn.SCALERS)} in a `Pipeline`, or in a `TransformedTargetRegressor`.")


@dataclass(frozen=True)
class Format:
    """One framework a frontend reads."""
    name: str                                   # "keras", "onnx", ...
    module: str                                 # the frontend module (imported when used)
    title: str                                  # for the README table and messages
    reads: str                                  # what is read, for the README table
    sniff: Optional[Callable[[bytes], bool]]    # file content test; None: objects only
    owns: Optional[Callable[[Any], bool]]       # object test; None: files only
    needs: str = ""                             # the package reading it needs (README table)
    takes_weights: bool = False                 # a separate weights file (Keras JSON + .h5)
    suffixes: tuple[str, ...] = ()              # the usual names of its files (help texts); () objects only
    #: what it reads in detail, from the frontend's own tables: one Markdown line for the docs
    details: Optional[Callable[[], str]] = None

    def frontend(self):
        return importlib.import_module(self.module)


FORMATS: tuple[Format, ...] = (
    Format("keras", "mlpcodegen.frontends.keras", "Keras",
           "`.keras` (Keras 3, tf.keras 2.13-2.15), legacy `.h5` (Keras 2.0 and later), architecture "
           "`.json` + weights `.h5` (`--weights`), a `keras.Model` object",
           _is_keras, _is_keras_object, needs="h5py (no TensorFlow)", takes_weights=True,
           suffixes=(".keras", ".h5", ".json")),
    Format("onnx", "mlpcodegen.frontends.onnx", "ONNX",
           "`.onnx` files and `onnx.ModelProto` objects (opset 9 and later; float16/bfloat16/float32/float64 weights), as `torch.onnx.export`, skl2onnx and tf2onnx write it",
           _is_onnx, _module_prefix("onnx"), needs="onnx (no onnxruntime, no torch)", suffixes=(".onnx",),
           details=_onnx_details),
    Format("sklearn", "mlpcodegen.frontends.sklearn", "scikit-learn",
           "`MLPRegressor` / `MLPClassifier` objects, alone or in a `Pipeline` after a scaler",
           None, _module_prefix("sklearn"), needs="scikit-learn (the object's own)", details=_sklearn_details),
    Format("torch", "mlpcodegen.frontends.torch", "PyTorch",
           "an `nn.Sequential` object (nested, or a bare `nn.Linear`) of `Linear`, activation modules, "
           "`BatchNorm1d`, `LayerNorm`, `RMSNorm`, `Dropout`, `Flatten`, `Identity`; files: export them to "
           "`.onnx` (`torch.save` / TorchScript files are refused with why: loading them runs code)",
           _is_torch_file, _module_prefix("torch"), needs="torch (the object's own)", details=_torch_details),
    Format("tflite", "mlpcodegen.frontends.tflite", "TensorFlow Lite",
           "`.tflite` files (float32, and full-integer int8 for `--dtype int8`) and the bytes `TFLiteConverter.convert()` "
           "returns", lambda head: head[4:8] == b"TFL3", lambda obj: isinstance(obj, bytes) and obj[4:8] == b"TFL3",
           needs="flatbuffers (no TensorFlow, no LiteRT)", suffixes=(".tflite",)),
)

#: The order content tests are tried in: a PyTorch archive is a zip too, so before Keras; a TFLite
#: flatbuffer (identifier TFL3 at byte 4) first, whatever its root offset's first byte.
SNIFF_ORDER: tuple[str, ...] = ("tflite", "torch", "keras", "onnx")


def _supported() -> str:
    return "; ".join(f"{f.title}: {f.reads}" for f in FORMATS)


def read_head(path: Path) -> bytes:
    """The first bytes of a model file, with clear errors for what is not a readable file."""
    def check(info: os.stat_result) -> None:
        if stat.S_ISDIR(info.st_mode):
            raise ModelFormatError(f"{path} is a folder, not a model file")
        if not stat.S_ISREG(info.st_mode):
            raise ModelFormatError(f"{path} is not a regular file (a device, FIFO or socket): not read")

    with open_regular(path, "model file", error=ModelFormatError, check=check) as stream:
        return stream.read(HEAD_BYTES)


def file_format(path: Any) -> Format:
    """The format of a model file, by its content."""
    path = Path(path)
    if os.path.exists(path) and not os.path.isfile(path) and not os.path.isdir(path):
        raise ModelFormatError(f"{path} is not a regular file (a device, FIFO or socket): not read")
    head = read_head(path)
    by_name = {fmt.name: fmt for fmt in FORMATS}
    for name in SNIFF_ORDER:
        if by_name[name].sniff(head):
            return by_name[name]
    raise ModelFormatError(f"{path}: not a model file mlpcodegen reads (empty, or neither zip, HDF5, JSON, "
                           f"ONNX nor TFLite). Supported: {_supported()}")


def object_format(obj: Any) -> Format:
    for fmt in FORMATS:
        if fmt.owns is not None and fmt.owns(obj):
            return fmt
    hint = ""
    if isinstance(obj, dict) and any(_module_prefix("torch")(v) for v in list(obj.values())[:64]):
        hint = "a state_dict holds weights without the architecture: pass the nn.Module itself. "
    raise ModelFormatError(f"cannot read a model from a {type(obj).__module__}.{type(obj).__name__} object. "
                           f"{hint}Supported: {_supported()}")


def load(source: Any, *, weights: Any = None, fold: bool = True, limits: ReadLimits | None = None):
    """Read a model into a :class:`~mlpcodegen.core.ir.Network`: a file path (format found by
    content) or an in-memory model object (Keras, scikit-learn, PyTorch, ONNX ModelProto).

    ``weights``: a weights file for formats that keep them apart (a Keras architecture
    JSON + ``model.save_weights`` ``.h5``).  ``fold=False`` keeps normalisation layers as
    separate steps.  ``limits`` bounds what reading a file may cost."""
    limits = DEFAULT_LIMITS if limits is None else limits
    if isinstance(source, (str, os.PathLike)):
        fmt = file_format(source)
        if weights is not None and not fmt.takes_weights:
            raise ModelFormatError(f"{source}: a separate weights file is for Keras architecture JSON; "
                                   f"a {fmt.title} file holds its own weights")
        extra = {} if weights is None else {"weights": weights}
        return fmt.frontend().load_file(source, fold=fold, limits=limits, **extra)
    if weights is not None:
        raise ModelFormatError("a separate weights file goes with a Keras architecture JSON path, not an object")
    return object_format(source).frontend().load_object(source, fold=fold)
