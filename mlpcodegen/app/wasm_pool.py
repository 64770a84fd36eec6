"""``python -m mlpcodegen.app.wasm_pool MODULE.wasm``: the wasm target's constants pass
(:func:`mlpcodegen.backends.wasm_pool.pool_constants`) on a built module, in place."""
from __future__ import annotations

import sys
from typing import Optional

from ..backends.wasm_pool import pool_constants
from ..core._files import read_regular, write_atomic
from ..core.errors import MlpCodegenError

#: the largest module the pass reads (the C target's wasm of a 784-512-512-10 network is ~5 MB)
MAX_MODULE_BYTES = 256 << 20


def main(argv: Optional[list[str]] = None) -> int:
    """``python -m mlpcodegen.app.wasm_pool MODULE.wasm``: :func:`pool_constants` in place."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m mlpcodegen.app.wasm_pool MODULE.wasm (its constants moved to memory, in place)",
              file=sys.stderr)
        return 2
    try:
        module = read_regular(args[0], MAX_MODULE_BYTES, "wasm module")
    except MlpCodegenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if module[:8] != b"\0asm\1\0\0\0":
        print(f"error: {args[0]} is not a wasm module (version 1)", file=sys.stderr)
        return 1
    try:
        pooled = pool_constants(module)
    except ValueError as exc:  # the module stays as built: the same bits, constants as clang wrote them
        print(f"note: {args[0]}: constants left in the code ({exc})", file=sys.stderr)
        return 0
    if pooled != module:
        write_atomic(args[0], pooled)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
