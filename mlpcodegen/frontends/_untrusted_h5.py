"""Reading an untrusted model file: the raw parse, run in the sandbox child.

Only what a Keras model needs is read, and every object is checked before it is
followed or read: links must be hard links inside the file (no external or soft
links), datasets must hold their own bytes (no external raw storage, no virtual
datasets, only HDF5's built-in filters), their declared shapes and types are checked
against the limits and every value they declare must be stored (no fill-value-only
datasets).  The result is plain data: the config text and, per weight group, NumPy
arrays of numbers, encoded as bytes (``np.save`` without pickle) for the parent.

The parent (keras.py) validates the config's structure and builds the network; this
module knows the two file layouts, not what the layers mean.
"""
from __future__ import annotations

import io
import json
import os
import stat
import zipfile
from typing import Any

import numpy as np

from ..errors import ModelFormatError, UnsupportedError
from ..limits import LimitExceeded, MiB, ReadLimits

ZIP_MAGIC = b"PK\x03\x04"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"

#: HDF5's own filters (always present in libhdf5) and h5py's built-in lzf.  Any other id
#: is a user-defined filter: a plugin loaded from disk to decode the data, refused.
ALLOWED_FILTERS = {1: "deflate", 2: "shuffle", 3: "fletcher32", 5: "nbit", 6: "scaleoffset", 32000: "lzf"}
_MAX_RANK = 8  # weights are vectors and matrices; a few more axes cost nothing to allow
_MAX_MEMBERS = 100_000  # groups or datasets read from one file
_MAX_LAYER_WEIGHTS = 256  # weight arrays of one layer (a Dense has 2, with LoRA 4)
_MAX_ATTRIBUTE = 1 << 16  # bytes of a small attribute (a dtype name)

#: group name -> [(key, array, source dtype), ...] in the order Keras saved them
Groups = dict[str, list[tuple[str, np.ndarray, str]]]


# ----------------------------------------------------------------------- the file


def read_model_file(path: str, limits: ReadLimits) -> bytes:
    """The sandbox job: parse ``path`` and return the encoded config text and weights."""
    data = read_regular_file(path, limits)
    if data.startswith(ZIP_MAGIC):
        config_text, groups = _read_keras_archive(data, path, limits)
    elif data.startswith(HDF5_MAGIC):
        config_text, groups = _read_legacy_h5(io.BytesIO(data), path, limits)
    else:
        raise ModelFormatError(
            f"{path} is neither a .keras archive nor an HDF5 (.h5) file "
            "(save the model with model.save('model.keras'))"
        )
    return encode(config_text, groups, "keras" if data.startswith(ZIP_MAGIC) else "h5")


def read_regular_file(path: str, limits: ReadLimits) -> bytes:
    """The whole file, if it is a regular file within the size limit.

    Opened without blocking (a FIFO would block ``open`` until a writer comes) and
    checked on the open descriptor, so what is read is what was checked."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise ModelFormatError(f"model file not found: {path}") from None
    except OSError as exc:
        raise ModelFormatError(f"cannot read {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        check_regular(os.fstat(fd), path, limits)
        data = handle.read(limits.max_file_bytes + 1)
    if len(data) > limits.max_file_bytes:  # it grew after the check
        raise _file_too_large(path, len(data), limits)
    return data


def check_regular(info: os.stat_result, path: str, limits: ReadLimits) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise ModelFormatError(
            f"{path} is a directory (a TensorFlow SavedModel?); save the model as a "
            ".keras file with model.save('model.keras')"
        )
    if not stat.S_ISREG(info.st_mode):
        raise ModelFormatError(
            f"{path} is not a regular file (a FIFO, socket or device); save the model to a file "
            "and pass its path"
        )
    if info.st_size > limits.max_file_bytes:
        raise _file_too_large(path, info.st_size, limits)


def _file_too_large(path: str, size: int, limits: ReadLimits) -> LimitExceeded:
    return LimitExceeded(
        f"{path} is {size_text(size)}, more than the limit of {size_text(limits.max_file_bytes)} for a "
        "model file; if the model is genuine, raise the limit (--max-size MIB, or ReadLimits.for_size)"
    )


# --------------------------------------------------------------------- .keras zip


def _read_keras_archive(data: bytes, path: str, limits: ReadLimits) -> tuple[str, Groups]:
    """config.json and the weight groups ``layers/<group>/vars/<i>`` of model.weights.h5.

    Nothing is extracted to disk: members are read by their fixed names, so member names
    such as ``../x`` are never used as paths."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if len(archive.infolist()) > _MAX_MEMBERS:
                raise ModelFormatError(f"{path} holds {len(archive.infolist())} members: not a .keras archive")
            config = _read_member(archive, "config.json", path, limits)
            weights = _read_member(archive, "model.weights.h5", path, limits)
    except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile, NotImplementedError, OSError,
            ValueError, RuntimeError) as exc:
        raise ModelFormatError(f"{path} is a truncated or corrupt .keras archive: {exc}") from None
    config_text = _decode_text(config, f"{path}: config.json")
    parse_json(config_text, f"{path}: config.json")
    if not weights.startswith(HDF5_MAGIC):
        raise ModelFormatError(f"{path}: model.weights.h5 is not an HDF5 file (truncated or corrupt archive)")
    label = f"{path}:model.weights.h5"
    with _open_h5(io.BytesIO(weights), label) as h5:
        budget = _Budget(limits, label)
        groups: Groups = {}
        layers = _child(h5, "layers", label, "group", required=False)
        for name in _member_names(layers, label) if layers is not None else []:
            layer = _child(layers, name, label, "group")
            variables = _child(layer, "vars", label, "group", required=False)
            if variables is not None:
                count = _member_count(variables, label, _MAX_LAYER_WEIGHTS)
                groups[name] = [_read_weight(variables, str(i), label, budget) for i in range(count)]
    return config_text, groups


def _read_member(archive: zipfile.ZipFile, name: str, path: str, limits: ReadLimits) -> bytes:
    """A member's bytes, its declared size and the bytes actually inflated both capped:
    a zip bomb is stopped after ``max_member_bytes``, whatever its header says."""
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise ModelFormatError(f"{path} is not a complete .keras archive: missing {name!r}") from None
    if info.file_size > limits.max_member_bytes:
        raise _member_too_large(path, name, info.file_size, limits)
    chunks, total = [], 0
    with archive.open(info) as member:
        while True:
            chunk = member.read(min(MiB, limits.max_member_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limits.max_member_bytes:
                raise _member_too_large(path, name, total, limits)
    return b"".join(chunks)


def size_text(size: int) -> str:
    return f"{size:,} bytes" if size < MiB else f"{size / MiB:.1f} MiB"


def _member_too_large(path: str, name: str, size: int, limits: ReadLimits) -> LimitExceeded:
    return LimitExceeded(
        f"{path}: {name} inflates to more than {size_text(limits.max_member_bytes)} (it declares "
        f"{size_text(size)} or more): a zip bomb or a corrupt archive; if the model is genuine, raise the "
        "limit (--max-size MIB, or ReadLimits.for_size)"
    )


def parse_json(text: str, what: str) -> Any:
    """The config's JSON, refused before any weight is read when it is not JSON (the
    parent parses it again: only text crosses the process boundary)."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ModelFormatError(f"{what} nests too deeply to be a Keras model config") from None
    except ValueError as exc:
        raise ModelFormatError(f"{what} is not valid JSON: {exc}") from None


def _decode_text(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ModelFormatError(f"{what} is not valid JSON: {exc}") from None


# ---------------------------------------------------------------------- legacy .h5


def _read_legacy_h5(source: Any, path: str, limits: ReadLimits) -> tuple[str, Groups]:
    """The ``model_config`` attribute and, per layer group of ``model_weights``, the
    datasets its ``weight_names`` attribute lists, in that order."""
    with _open_h5(source, path) as h5:
        raw = _string_attribute(h5, "model_config", path, limits)
        if raw is None:
            raise ModelFormatError(
                f"{path} holds weights only (no model_config); save the whole model with "
                "model.save('model.keras')"
            )
        root = _child(h5, "model_weights", path, "group", required=False)
        root = h5 if root is None else root
        budget = _Budget(limits, path)
        groups: Groups = {}
        for name in _member_names(root, path):
            group = _child(root, name, path, None)
            if not _is_group(group):
                continue  # only layer groups hold weights
            keys = _weight_names(group, path, limits)
            groups[name] = [_read_weight(group, key, path, budget) for key in keys]
    return raw, groups


def _weight_names(group: Any, path: str, limits: ReadLimits) -> list[str]:
    where = f"{path}: {_quote(group.name)}"
    if "weight_names" not in group.attrs:
        return []
    values = _attribute(group, "weight_names", where, limits.max_member_bytes)
    values = np.asarray(values)
    if values.size == 0:
        return []
    if values.ndim != 1 or values.size > _MAX_LAYER_WEIGHTS:
        raise ModelFormatError(f"{where}: attribute weight_names is not a list of at most "
                               f"{_MAX_LAYER_WEIGHTS} names")
    names = []
    for value in values.tolist():
        if isinstance(value, bytes):
            value = _decode_text(value, f"{where}: weight_names")
        if not isinstance(value, str) or not value:
            raise ModelFormatError(f"{where}: attribute weight_names holds {type(value).__name__}, not names")
        names.append(value)
    return names


def _string_attribute(h5: Any, key: str, path: str, limits: ReadLimits) -> str | None:
    if key not in h5.attrs:
        return None
    value = _attribute(h5, key, path, limits.max_member_bytes)
    if isinstance(value, np.ndarray) and value.shape in ((), (1,)):
        value = value.reshape(()).item()
    if isinstance(value, bytes):
        value = _decode_text(value, f"{path}: {key}")
    if not isinstance(value, str):
        raise ModelFormatError(f"{path}: attribute {key} is a {type(value).__name__}, not the model's JSON text")
    if len(value) > limits.max_member_bytes:
        raise LimitExceeded(
            f"{path}: attribute {key} is larger than {limits.max_member_bytes / MiB:g} MiB; if the model is "
            "genuine, raise the limit (--max-size MIB, or ReadLimits.for_size)"
        )
    return value


def _attribute(obj: Any, key: str, where: str, max_bytes: int) -> Any:
    """An attribute's value, its declared size checked first.  Variable-length strings
    live in the file itself, so the file size bounds them."""
    attr = obj.attrs.get_id(key)
    shape = attr.shape
    if shape is None:
        raise ModelFormatError(f"{where}: attribute {key} is empty (null dataspace)")
    count = int(np.prod(shape, dtype=object)) if shape else 1
    if count * max(attr.dtype.itemsize, 1) > max_bytes:
        raise LimitExceeded(f"{where}: attribute {key} declares more than {max_bytes / MiB:g} MiB")
    if attr.dtype.kind not in "OSUiuf":
        raise ModelFormatError(f"{where}: attribute {key} has type {attr.dtype}, not text")
    return obj.attrs[key]


# ------------------------------------------------------------------ HDF5 objects


def _open_h5(source: Any, label: str) -> Any:
    import h5py  # light (no TensorFlow); imported here so `import mlpcodegen` stays fast

    try:
        return h5py.File(source, "r")
    except OSError as exc:
        raise ModelFormatError(f"{label} is a truncated or corrupt HDF5 file: {exc}") from None


def _is_group(obj: Any) -> bool:
    import h5py

    return isinstance(obj, h5py.Group)


def _member_names(group: Any, label: str) -> list[str]:
    names = list(group.keys())
    if len(names) > _MAX_MEMBERS:
        raise ModelFormatError(f"{label}: group {_quote(group.name)} has {len(names)} members: not a Keras model")
    return names


def _member_count(group: Any, label: str, limit: int) -> int:
    count = len(group)
    if count > limit:
        raise ModelFormatError(f"{label}: group {_quote(group.name)} has {count} members: not a Keras model")
    return count


def _child(group: Any, path: str, label: str, kind: str | None, required: bool = True) -> Any:
    """``group[path]``, each step checked to be a hard link inside this file *before* it
    is followed: an external link would read another file, a soft link could loop."""
    import h5py

    obj = group
    for part in path.split("/"):
        if part in ("", ".", ".."):
            raise ModelFormatError(f"{label}: weight path {_quote(path)} is not a plain path inside the file")
        where = f"{obj.name.rstrip('/')}/{part}"
        link = obj.get(part, getlink=True) if _is_group(obj) else None
        if link is None:
            if required:
                raise ModelFormatError(f"{label}: {_quote(where)} is missing (truncated or corrupt file?)")
            return None
        if isinstance(link, h5py.ExternalLink):
            raise UnsupportedError(
                f"{label}: {_quote(where)} is an external link to {_quote(link.filename)}; "
                "links to other files are refused (a model file must hold its own weights)"
            )
        if not isinstance(link, h5py.HardLink):
            raise UnsupportedError(
                f"{label}: {_quote(where)} is a {type(link).__name__}; only plain (hard-linked) groups and "
                "datasets are read"
            )
        obj = obj[part]
    if kind == "group" and not _is_group(obj):
        raise ModelFormatError(f"{label}: {_quote(obj.name)} is a dataset where a group was expected")
    return obj


class _Budget:
    """Numbers declared by the weights read so far, against ``max_weight_values``."""

    def __init__(self, limits: ReadLimits, label: str) -> None:
        self.limits, self.label, self.values, self.datasets = limits, label, 0, 0

    def take(self, count: int, where: str) -> None:
        self.values += count
        self.datasets += 1
        if self.values > self.limits.max_weight_values:
            raise LimitExceeded(
                f"{self.label}: the weights declare more than {self.limits.max_weight_values:,} numbers "
                f"(at {_quote(where)}); if the model is genuine, raise the limit (--max-size MIB, or "
                "ReadLimits.for_size)"
            )
        if self.datasets > _MAX_MEMBERS:
            raise ModelFormatError(f"{self.label}: more than {_MAX_MEMBERS} weight arrays: not a Keras model")


def _read_weight(group: Any, key: str, label: str, budget: _Budget) -> tuple[str, np.ndarray, str]:
    """One weight dataset, checked (storage, filters, shape, type) before it is read."""
    import h5py

    dataset = _child(group, key, label, None)
    where = dataset.name
    if not isinstance(dataset, h5py.Dataset):
        raise ModelFormatError(f"{label}: weight {_quote(where)} is a group, not an array")
    shape = _check_storage(dataset, label, where)
    count = int(np.prod(shape, dtype=object)) if shape else 1
    budget.take(count, where)
    dtype, source = _weight_type(dataset, label, where)
    _check_allocated(dataset, shape, count * dataset.dtype.itemsize, label, where)
    values = np.asarray(dataset[()])
    if values.shape != shape or values.dtype.itemsize != dataset.dtype.itemsize:
        raise ModelFormatError(f"{label}: weight {_quote(where)} read back with another shape (corrupt file)")
    if source == "bfloat16":  # stored as opaque 2-byte values: the top half of a float32
        bits = np.frombuffer(values.tobytes(), dtype="<u2").astype(np.uint32) << 16
        values = bits.view(np.float32).reshape(shape)
    else:
        values = values.astype(dtype.newbyteorder("="), copy=False)
    return key, values, source


def _check_storage(dataset: Any, label: str, where: str) -> tuple[int, ...]:
    """Refuse data that lives outside the file or needs code outside libhdf5."""
    if dataset.is_virtual:
        raise UnsupportedError(f"{label}: weight {_quote(where)} is a virtual dataset (its data lives in other "
                               "datasets or files); refused")
    plist = dataset.id.get_create_plist()
    if plist.get_external_count():
        raise UnsupportedError(f"{label}: weight {_quote(where)} declares external raw storage (its values live in "
                               "another file on disk); refused: a model file must hold its own weights")
    for index in range(plist.get_nfilters()):
        code = plist.get_filter(index)[0]
        if code not in ALLOWED_FILTERS:
            raise UnsupportedError(
                f"{label}: weight {_quote(where)} uses HDF5 filter {code}, a user-defined filter; only "
                f"{', '.join(sorted(ALLOWED_FILTERS.values()))} are read"
            )
    shape = dataset.shape
    if shape is None or len(shape) > _MAX_RANK or any(int(n) < 0 for n in shape):
        raise ModelFormatError(f"{label}: weight {_quote(where)} has no usable shape ({shape})")
    return tuple(int(n) for n in shape)


def _weight_type(dataset: Any, label: str, where: str) -> tuple[np.dtype, str]:
    """The stored type: IEEE floats, integers (Normalization's count) or Keras' bfloat16."""
    dtype = dataset.dtype
    tag = None
    if "dtype" in dataset.attrs:
        tag = _attribute(dataset, "dtype", f"{label}: {_quote(where)}", _MAX_ATTRIBUTE)
        tag = tag.decode("utf-8", "replace") if isinstance(tag, bytes) else tag
    if tag == "bfloat16":
        if dtype.itemsize != 2 or dtype.kind not in "Vu":
            raise ModelFormatError(f"{label}: weight {_quote(where)} is marked bfloat16 but stores {dtype} "
                                   "values (corrupt file)")
        return dtype, "bfloat16"
    if dtype.kind == "f" and dtype.itemsize in (2, 4, 8):
        return dtype, np.dtype(dtype.newbyteorder("=")).name
    if dtype.kind in "iu" and dtype.itemsize <= 8:
        return dtype, np.dtype(dtype.newbyteorder("=")).name
    what = "complex numbers (the imaginary part cannot be used)" if dtype.kind == "c" else f"values of type {dtype}"
    raise UnsupportedError(f"{label}: weight {_quote(where)} holds {what}; only float16/32/64, bfloat16 and "
                           "integer weights are read")


def _check_allocated(dataset: Any, shape: tuple[int, ...], nbytes: int, label: str, where: str) -> None:
    """Every declared value must be stored: a fill-value-only dataset costs time and
    memory out of proportion to the file (and Keras never writes one)."""
    import h5py

    if nbytes == 0:
        return
    layout = dataset.id.get_create_plist().get_layout()
    if layout == h5py.h5d.CHUNKED:
        chunks = dataset.chunks or shape
        total = 1
        for n, c in zip(shape, chunks):
            total *= -(-n // max(int(c), 1))
        stored = dataset.id.get_num_chunks()
        complete = stored == total
    else:
        complete = dataset.id.get_storage_size() >= nbytes
    if not complete:
        raise ModelFormatError(
            f"{label}: weight {_quote(where)} declares {shape} values but does not store them all (fill value "
            "only): not a saved model"
        )


def _quote(text: Any) -> str:
    """A name from the file, as inert text for an error message."""
    from ..untrusted import quote_name

    return repr(quote_name(text))


# --------------------------------------------------------------------- transport


def encode(config_text: str, groups: Groups, layout: str) -> bytes:
    """Config text and weights as bytes: a JSON header, then one ``.npy`` per array."""
    header: dict = {"layout": layout, "config": config_text, "groups": []}
    blobs = []
    for name, arrays in groups.items():
        entries = []
        for key, values, source in arrays:
            buffer = io.BytesIO()
            np.save(buffer, values, allow_pickle=False)
            blobs.append(buffer.getvalue())
            entries.append([key, source, len(blobs[-1])])
        header["groups"].append([name, entries])
    text = json.dumps(header, ensure_ascii=True).encode("ascii")
    return len(text).to_bytes(8, "little") + text + b"".join(blobs)


def decode(payload: bytes) -> tuple[str, str, dict[str, list[tuple[str, np.ndarray, str]]]]:
    """The inverse of ``encode`` (never unpickles: arrays of plain numbers only)."""
    size = int.from_bytes(payload[:8], "little")
    header = json.loads(payload[8: 8 + size].decode("ascii"))
    offset = 8 + size
    groups: dict[str, list[tuple[str, np.ndarray, str]]] = {}
    for name, entries in header["groups"]:
        arrays = []
        for key, source, length in entries:
            values = np.load(io.BytesIO(payload[offset: offset + length]), allow_pickle=False)
            offset += length
            if values.dtype.kind not in "fiu":
                raise ValueError(f"unexpected {values.dtype}")
            arrays.append((str(key), values, str(source)))
        groups[str(name)] = arrays
    if offset != len(payload) or not isinstance(header["config"], str) or header["layout"] not in ("keras", "h5"):
        raise ValueError("payload length mismatch")
    return header["layout"], header["config"], groups
