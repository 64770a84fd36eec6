"""The inputs a verification runs: random in a domain (its corners first), or rows of the
user's own data (an array, a ``.npy`` or ``.csv`` file read through the safe opener), each
validated (finite, in float32's range, one column per input) before any work.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..core.errors import ValidationError


def _per_feature(values: Any, n_inputs: int, what: str) -> np.ndarray:
    """A scalar or one number per input, as ``n_inputs`` float64s."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValidationError(f"{what} must be a number or one number per input, got {values!r}") from None
    if array.ndim == 0 or array.shape == (1,):
        return np.full(n_inputs, float(array.reshape(-1)[0]))
    if array.shape != (n_inputs,):
        raise ValidationError(f"{what} has {array.size} values but the network has {n_inputs} inputs: "
                              f"give one number for every input, or one per input")
    return array


def input_domain(n_inputs: int, domain: Any = None, sample: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature (low, high): from ``domain`` (a pair whose sides are each a scalar or
    one number per input), else the range seen in ``sample``, else [-1, 1]."""
    if domain is not None:
        if isinstance(domain, (str, bytes)) or len(domain) != 2:
            raise ValidationError(f"the domain is a pair (low, high), got {domain!r}")
        lo, hi = (_per_feature(v, n_inputs, f"the domain's {side}") for v, side in zip(domain, ("low", "high")))
    elif sample is not None:
        sample = as_inputs(sample, n_inputs, "the sample")
        lo, hi = sample.min(axis=0), sample.max(axis=0)
    else:
        lo, hi = np.full(n_inputs, -1.0), np.full(n_inputs, 1.0)
    bad = np.flatnonzero(~np.isfinite(lo) | ~np.isfinite(hi) | (lo > hi))
    if bad.size:
        i = int(bad[0])
        raise ValidationError(f"the domain of input x{i} is [{lo[i]:g}, {hi[i]:g}]: it must be finite with "
                              f"low <= high")
    return lo, hi


def random_inputs(n_inputs: int, n: int, lo: np.ndarray, hi: np.ndarray, seed: int = 0) -> np.ndarray:
    """``n`` float32-representable inputs: the domain's two corners, then uniform draws."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(lo, hi, size=(max(n, 2), n_inputs))
    x[0], x[1] = lo, hi
    return x.astype(np.float32)


#: Largest inputs file read_inputs reads (raise it with ``max_bytes``).
MAX_INPUT_BYTES = 256 * 2**20


def as_inputs(data: Any, n_inputs: Optional[int], what: str = "the data") -> np.ndarray:
    """``data`` as a finite float64 (rows, n_inputs) array (a 1-D array is one column
    when the network has one input), or a ValidationError that says what is wrong."""
    array = np.asarray(data)
    if array.dtype.kind not in "fiu":
        raise ValidationError(f"{what} must be numbers, got an array of {array.dtype}")
    if array.ndim == 1 and n_inputs == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise ValidationError(f"{what} must be a 2-D array (one row per sample, one column per input), "
                              f"got shape {array.shape}")
    if array.shape[0] == 0:
        raise ValidationError(f"{what} has no rows")
    if n_inputs is not None and array.shape[1] != n_inputs:
        raise ValidationError(f"{what} has {array.shape[1]} columns but the network has {n_inputs} inputs")
    array = array.astype(np.float64)
    with np.errstate(over="ignore"):
        bad = np.flatnonzero(~np.all(np.isfinite(array.astype(np.float32)), axis=1))
    if bad.size:
        rows = ", ".join(map(str, bad[:5])) + (", ..." if bad.size > 5 else "")
        raise ValidationError(f"{what}: {bad.size} row(s) hold NaN, an infinity or a value beyond the float32 "
                              f"range (rows {rows}, counting from 0): remove them")
    return array


def read_inputs(path: Any, n_inputs: Optional[int] = None, *, max_bytes: int = MAX_INPUT_BYTES) -> np.ndarray:
    """Inputs from a ``.npy`` array or a ``.csv`` file (comma-separated, one row per
    sample, an optional header row) as a float64 (rows, n_inputs) array."""
    path = Path(path)
    reader = _INPUT_READERS.get(path.suffix.lower())
    if reader is None:
        raise ValidationError(f"{path}: inputs must be a .npy or .csv file")
    import io

    from ..core._files import read_input

    data = read_input(path, max_bytes, "inputs file")
    array = reader(io.BytesIO(data), len(data), path)
    return as_inputs(array, n_inputs, str(path))


def _read_npy(stream, size: int, path: Path) -> np.ndarray:
    """A plain numeric .npy array; its declared size is checked against the file before
    anything is allocated."""
    try:
        version = np.lib.format.read_magic(stream)
        header = {(1, 0): np.lib.format.read_array_header_1_0,
                  (2, 0): np.lib.format.read_array_header_2_0}.get(version)
        if header is None:
            raise ValueError(f"unsupported .npy version {version}")
        shape, _, dtype = header(stream)
        if dtype.hasobject or dtype.kind not in "fiu":
            raise ValueError(f"the array holds {dtype}, not numbers")
        if int(np.prod(shape, dtype=np.float64)) * dtype.itemsize > size - stream.tell():
            raise ValueError(f"the header declares shape {shape}, more than the file holds")
        stream.seek(0)
        return np.load(stream, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ValidationError(f"{path} is not a readable .npy array: {exc}") from None


def _read_csv(stream, size: int, path: Path) -> np.ndarray:
    """Comma-separated numbers, one sample per line; a first line that is not numbers is a header."""
    try:
        lines = [line for line in stream.read(size).decode("utf-8").splitlines() if line.strip()]
    except UnicodeDecodeError:
        raise ValidationError(f"{path} is not UTF-8 text") from None
    if lines and not _numeric_line(lines[0]):
        lines = lines[1:]
    if not lines:
        raise ValidationError(f"{path} has no rows of numbers")
    try:
        return np.loadtxt(lines, delimiter=",", ndmin=2, dtype=np.float64)
    except ValueError as exc:
        raise ValidationError(f"{path}: {exc} (counting data rows from 0, after any header)") from None


def _numeric_line(line: str) -> bool:
    try:
        [float(cell) for cell in line.split(",")]
    except ValueError:
        return False
    return True


_INPUT_READERS = {".npy": _read_npy, ".csv": _read_csv}


def draw_inputs(n_inputs: int, n: int, domain: Any, sample: Any, data: Any, seed: int):
    """(x as float32, (lo, hi), source): ``n`` rows of ``data``, or random in the domain."""
    if data is None:
        lo, hi = input_domain(n_inputs, domain, sample)
        return random_inputs(n_inputs, n, lo, hi, seed), (lo, hi), "random"
    if domain is not None or sample is not None:
        raise ValidationError("give either the user's inputs (data) or a domain to draw from, not both")
    source = "the given data"
    if isinstance(data, (str, bytes)) or hasattr(data, "__fspath__"):
        source, data = str(data), read_inputs(data, n_inputs)
    rows = as_inputs(data, n_inputs)
    if n < len(rows):  # an even spread of the file, in its order
        rows = rows[np.sort(np.random.default_rng(seed).choice(len(rows), n, replace=False))]
    x = rows.astype(np.float32)
    return x, (x.min(axis=0).astype(np.float64), x.max(axis=0).astype(np.float64)), source
