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
import zipfile
from typing import Any, Iterator

import numpy as np

from ..core._files import read_regular
from ..core.errors import ModelFormatError, UnsupportedError
from ..core.limits import LimitExceeded, MiB, ReadLimits
from ._preflight import check_regular, file_too_large, size_text  # noqa: F401 - check_regular: used by keras.py's callers

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
        config_text, groups, version = _read_keras_archive(data, path, limits)
    elif data.startswith(HDF5_MAGIC):
        config_text, groups, version = _read_legacy_h5(io.BytesIO(data), path, limits)
    elif is_json_text(data):
        raise ModelFormatError(
            f"{path} is a Keras architecture JSON (model.to_json()), which holds no weights: give the weights "
            "file saved by model.save_weights too (--weights FILE, or load(path, weights=FILE))"
        )
    else:
        raise ModelFormatError(
            f"{path} is neither a .keras archive nor an HDF5 (.h5) file "
            "(save the model with model.save('model.keras'))"
        )
    return encode(config_text, groups, "keras" if data.startswith(ZIP_MAGIC) else "h5", version)


def read_json_with_weights(path: str, weights_path: str, limits: ReadLimits) -> bytes:
    """The sandbox job for an architecture JSON (``model.to_json()``) and the weights
    file ``model.save_weights`` wrote: Keras 2's HDF5 layout (``layer_names`` /
    ``weight_names`` attributes) or the ``.weights.h5`` layout of Keras 3 and tf.keras
    2.13-2.15 (``layers/<group>/vars/<i>``).  Both files are untrusted."""
    data = read_regular_file(path, limits)
    if not is_json_text(data):
        kind = ("a .keras archive" if data.startswith(ZIP_MAGIC) else
                "an HDF5 model file" if data.startswith(HDF5_MAGIC) else "not a JSON file")
        raise ModelFormatError(f"{path} is {kind}; a separate weights file goes with an architecture JSON "
                               "(model.to_json()) only: convert a .keras or .h5 model file alone")
    if len(data) > limits.max_member_bytes:
        raise LimitExceeded(f"{path}: the architecture JSON is larger than {size_text(limits.max_member_bytes)}; "
                            "if the model is genuine, raise the limit (--max-size MIB, or ReadLimits.for_size)")
    config_text = _decode_text(data, path).lstrip("\ufeff")
    parse_json(config_text, path)
    weights = read_regular_file(weights_path, limits)
    if not weights.startswith(HDF5_MAGIC):
        what = "a .keras archive (convert it alone)" if weights.startswith(ZIP_MAGIC) else "not an HDF5 file"
        raise ModelFormatError(f"weights file {weights_path} is {what}: give the .h5 file model.save_weights wrote")
    layout, groups, version = _read_weights_h5(io.BytesIO(weights), weights_path, limits)
    return encode(config_text, groups, layout, version)


def is_json_text(data: bytes) -> bool:
    """A JSON object (an architecture JSON), perhaps after a byte-order mark and blanks."""
    return data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{"


def read_regular_file(path: str, limits: ReadLimits) -> bytes:
    """The whole model (or weights) file through the one safe opener, if it is a regular
    file within the size limit (checked on the descriptor, and while reading)."""
    return read_regular(path, limits.max_file_bytes, "model file", error=ModelFormatError,
                        check=lambda info: check_regular(info, path, limits),
                        too_large=lambda size: file_too_large(path, size, limits))


# --------------------------------------------------------------------- .keras zip


def _read_keras_archive(data: bytes, path: str, limits: ReadLimits) -> tuple[str, Groups, str | None]:
    """config.json and the weight groups ``layers/<group>/vars/<i>`` of model.weights.h5.

    Nothing is extracted to disk: members are read by their fixed names, so member names
    such as ``../x`` are never used as paths."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if len(archive.infolist()) > _MAX_MEMBERS:
                raise ModelFormatError(f"{path} holds {len(archive.infolist())} members: not a .keras archive")
            config = _read_member(archive, "config.json", path, limits)
            weights = _read_member(archive, "model.weights.h5", path, limits)
            metadata = _read_member(archive, "metadata.json", path, limits, required=False)
    except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile, NotImplementedError, OSError,
            ValueError, RuntimeError) as exc:
        raise ModelFormatError(f"{path} is a truncated or corrupt .keras archive: {exc}") from None
    config_text = _decode_text(config, f"{path}: config.json")
    parse_json(config_text, f"{path}: config.json")
    if not weights.startswith(HDF5_MAGIC):
        raise ModelFormatError(f"{path}: model.weights.h5 is not an HDF5 file (truncated or corrupt archive)")
    label = f"{path}:model.weights.h5"
    with _open_h5(io.BytesIO(weights), label) as h5:
        groups = _saving_lib_groups(h5, label, limits)
    return config_text, groups, _archive_version(metadata)


def _archive_version(metadata: bytes | None) -> str | None:
    """``keras_version`` of metadata.json (optional: the config alone defines the model)."""
    try:
        value = json.loads(metadata.decode("utf-8")).get("keras_version") if metadata else None
    except (ValueError, AttributeError, RecursionError):
        return None
    return value if isinstance(value, str) and len(value) < 64 else None


#: Where Keras' saving library (Keras 3, tf.keras 2.13-2.15) puts each layer's variables:
#: ``layers/<group>/vars/<i>``; tf.keras 2.13 walked the model's attributes in sorted
#: order and so met ``_layer_checkpoint_dependencies`` first (its groups are numbered
#: differently: keras.py pairs them), and on Windows joined the path with backslashes
#: into one group name (``_layer_checkpoint_dependencies\dense``).
_STATE_PREFIXES = ("layers", "_layer_checkpoint_dependencies")
#: The name a group under ``_layer_checkpoint_dependencies`` gets in the payload (a
#: group under ``layers`` keeps its bare name).
CHECKPOINT_PREFIX = "_layer_checkpoint_dependencies/"


def _saving_lib_groups(h5: Any, label: str, limits: ReadLimits) -> Groups:
    """Layer group name -> its variables, in whichever of the layouts above the file has;
    a group stored twice (nested and backslash-joined) is ambiguous, and refused."""
    budget = _Budget(limits, label)
    groups: Groups = {}
    for prefix in _STATE_PREFIXES:
        for name, variables in _state_groups(h5, prefix, label):
            if variables is None:
                continue
            key = name if prefix == "layers" else CHECKPOINT_PREFIX + name
            if key in groups:
                raise ModelFormatError(
                    f"{label} stores layer group {_quote(prefix + '/' + name)} twice (as nested groups and as "
                    "one group named with backslashes): cannot tell which holds the weights")
            count = _member_count(variables, label, _MAX_LAYER_WEIGHTS)
            groups[key] = [_read_weight(variables, str(i), label, budget) for i in range(count)]
    return groups


def _state_groups(h5: Any, prefix: str, label: str) -> Iterator[tuple[str, Any]]:
    """(layer group name, its ``vars`` group or None) under ``prefix``, nested or
    backslash-joined."""
    nested = _child(h5, prefix, label, "group", required=False)
    for name in _member_names(nested, label) if nested is not None else []:
        yield name, _child(_child(nested, name, label, "group"), "vars", label, "group", required=False)
    for member in _member_names(h5, label):
        parts = member.split("\\")
        if len(parts) == 2 and parts[0] == prefix and parts[1]:
            yield parts[1], _child(_child(h5, member, label, "group"), "vars", label, "group", required=False)
        elif len(parts) == 3 and parts[0] == prefix and parts[1] and parts[2] == "vars":
            yield parts[1], _child(h5, member, label, "group")


def _read_member(archive: zipfile.ZipFile, name: str, path: str, limits: ReadLimits,
                 required: bool = True) -> bytes | None:
    """A member's bytes, its declared size and the bytes actually inflated both capped:
    a zip bomb is stopped after ``max_member_bytes``, whatever its header says."""
    try:
        info = archive.getinfo(name)
    except KeyError:
        if not required:
            return None
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


def _read_legacy_h5(source: Any, path: str, limits: ReadLimits) -> tuple[str, Groups, str | None]:
    """The ``model_config`` attribute and, per layer group of ``model_weights``, the
    datasets its ``weight_names`` attribute lists, in that order."""
    with _open_h5(source, path) as h5:
        raw = _string_attribute(h5, "model_config", path, limits)
        if raw is None:
            raise ModelFormatError(
                f"{path} holds weights only (model.save_weights, no model_config): give the architecture JSON "
                "(model.to_json()) as the model and this file as its weights (--weights FILE, or "
                "load(json, weights=FILE)), or save the whole model with model.save('model.keras')"
            )
        root = _child(h5, "model_weights", path, "group", required=False)
        groups = _legacy_groups(h5 if root is None else root, path, limits)
        return raw, groups, _version_attribute(h5, path, limits)


def _read_weights_h5(source: Any, path: str, limits: ReadLimits) -> tuple[str, Groups, str | None]:
    """A weights file: (layout, groups, Keras version).  Keras 2's ``save_weights``
    (and a whole legacy .h5 model) give layout "h5", groups named after the layers in
    the order of the ``layer_names`` attribute; Keras 3's ``.weights.h5`` gives layout
    "keras", groups named after the layer classes."""
    with _open_h5(source, path) as h5:
        root = _child(h5, "model_weights", path, "group", required=False)
        if root is not None:  # a whole model saved by model.save('m.h5')
            return "h5", _legacy_groups(root, path, limits), _version_attribute(h5, path, limits)
        saving_lib = "layer_names" not in h5.attrs and any(
            part.split("\\")[0] in _STATE_PREFIXES for part in _member_names(h5, path))
        if saving_lib:
            return "keras", _saving_lib_groups(h5, path, limits), None
        return "h5", _legacy_groups(h5, path, limits), _version_attribute(h5, path, limits)


def _legacy_groups(root: Any, path: str, limits: ReadLimits) -> Groups:
    """Per layer group, the datasets its ``weight_names`` list, in that order; the
    groups in the order of ``layer_names`` when the file has it (Keras' own
    ``load_weights`` pairs them with the model's layers in that order)."""
    budget = _Budget(limits, path)
    groups: Groups = {}
    for name in _ordered_members(root, path, limits):
        group = _child(root, name, path, None)
        if not _is_group(group):
            continue  # only layer groups hold weights
        keys = _weight_names(group, path, limits)
        groups[name] = [_read_weight(group, key, path, budget) for key in keys]
    return groups


def _ordered_members(root: Any, path: str, limits: ReadLimits) -> list[str]:
    members = _member_names(root, path)
    present = set(members)  # never `name in root`: h5py would resolve a path with links
    listed = _name_list(root, "layer_names", path, limits) if "layer_names" in root.attrs else []
    ordered = list(dict.fromkeys(name for name in listed if name in present))
    return ordered + [name for name in members if name not in set(ordered)]


def _version_attribute(h5: Any, path: str, limits: ReadLimits) -> str | None:
    """The root's ``keras_version`` attribute (Keras 2 wrote it as UTF-8 bytes)."""
    try:
        value = _string_attribute(h5, "keras_version", path, limits)
    except ModelFormatError:
        return None
    return value if value is not None and len(value) < 64 else None


def _weight_names(group: Any, path: str, limits: ReadLimits) -> list[str]:
    if "weight_names" not in group.attrs:
        return []
    return _name_list(group, "weight_names", path, limits)


def _name_list(group: Any, key: str, path: str, limits: ReadLimits) -> list[str]:
    """A list-of-names attribute (``weight_names``, ``layer_names``): bytes or str."""
    where = f"{path}: {_quote(group.name)}"
    values = np.asarray(_attribute(group, key, where, limits.max_member_bytes))
    if values.size == 0:
        return []
    limit = _MAX_LAYER_WEIGHTS if key == "weight_names" else _MAX_MEMBERS
    if values.ndim != 1 or values.size > limit:
        raise ModelFormatError(f"{where}: attribute {key} is not a list of at most {limit} names")
    names = []
    for value in values.tolist():
        if isinstance(value, bytes):
            value = _decode_text(value, f"{where}: {key}")
        if not isinstance(value, str) or not value:
            raise ModelFormatError(f"{where}: attribute {key} holds {type(value).__name__}, not names")
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
    from ..core.untrusted import quote_name

    return repr(quote_name(text))


# --------------------------------------------------------------------- transport


def encode(config_text: str, groups: Groups, layout: str, version: str | None = None) -> bytes:
    """Config text and weights as bytes: a JSON header, then one ``.npy`` per array."""
    header: dict = {"layout": layout, "config": config_text, "version": version, "groups": []}
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


def decode(payload: bytes) -> tuple[str, str, dict[str, list[tuple[str, np.ndarray, str]]], str | None]:
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
    version = header.get("version")
    if offset != len(payload) or not isinstance(header["config"], str) or header["layout"] not in ("keras", "h5") \
            or not isinstance(version, (str, type(None))):
        raise ValueError("payload length mismatch")
    return header["layout"], header["config"], groups, version
