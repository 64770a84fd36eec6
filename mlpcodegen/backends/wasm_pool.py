"""The constants pass of the wasm target: :func:`pool_constants` rewrites the module clang
and wasm-ld built from the C target (``python -m mlpcodegen.app.wasm_pool MODULE.wasm``
runs it on a file, in place).

V8 (TurboFan) builds every ``f64.const`` in a general register and
moves it to an xmm register, two instructions, in every inlined copy of exp/expm1/tanh; a
load from linear memory is one, or none when folded into the arithmetic.  Each constant
but +0 becomes a load from a pool after the module's data (the same values, the same bits).
Measured (CPU time of node, 3-5 interleaved rounds, C native in the same run): seed 1-3-2-1
float64 95 -> 82 ns per call (2.05x -> 1.77x C native); float32 46-47 either way; mid and
cls unchanged (their weights are loads already).  The C with its functions' literals read
from a global array instead (by hand, a change to C's printer, not made) measured 94.5 ->
66.2 ns: clang then loads each constant once per function.

Reads the binary format (sections, LEB128 numbers, the instructions clang writes: MVP,
sign extension, bulk memory, simd128); meets anything else, it leaves the module as built.
"""
from __future__ import annotations

from typing import Callable, Optional

_F64_CONST, _F32_CONST = 0x44, 0x43
_NO_IMMEDIATE = frozenset((0x00, 0x01, 0x05, 0x0B, 0x0F, 0x1A, 0x1B, 0xD1, *range(0x45, 0xC5)))
_MEMARG = frozenset(range(0x28, 0x3F))
_ONE_INDEX = frozenset((0x0C, 0x0D, 0x10, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0xD2))


class _Reader:
    """A cursor over wasm bytes: LEB128 numbers and raw spans."""

    def __init__(self, data: bytes, at: int = 0, end: int = -1) -> None:
        self.data, self.at, self.end = data, at, len(data) if end < 0 else end

    def byte(self) -> int:
        if self.at >= self.end:
            raise ValueError("truncated wasm")
        self.at += 1
        return self.data[self.at - 1]

    def _leb(self) -> tuple[int, int, int]:
        """A LEB128 number's bits, their count and its last byte."""
        value = shift = 0
        while True:
            b = self.byte()
            value |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return value, shift, b

    def uleb(self) -> int:
        return self._leb()[0]

    def sleb(self) -> int:
        value, shift, last = self._leb()
        return value - (1 << shift) if last & 0x40 else value

    def skip(self, n: int) -> None:
        if self.at + n > self.end:
            raise ValueError("truncated wasm")
        self.at += n


def _uleb(value: int) -> bytes:
    out = bytearray()
    while True:
        b, value = value & 0x7F, value >> 7
        out.append(b | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _sleb(value: int) -> bytes:
    out = bytearray()
    while True:
        b, value = value & 0x7F, value >> 7
        done = (value == 0 and not b & 0x40) or (value == -1 and b & 0x40)
        out.append(b | (0 if done else 0x80))
        if done:
            return bytes(out)


def _skip_immediates(r: _Reader, op: int) -> None:
    """Past the immediates of instruction ``op`` (MVP, sign-extension, bulk memory, simd128:
    what clang writes for the C target); an opcode outside them raises ValueError."""
    if op in _NO_IMMEDIATE:
        return
    if op in _MEMARG:
        r.uleb(), r.uleb()
    elif op in _ONE_INDEX:
        r.uleb()
    elif op in (0x02, 0x03, 0x04):  # block types: empty, a value type or a type index
        if r.data[r.at] in (0x40, 0x7F, 0x7E, 0x7D, 0x7C, 0x7B, 0x70, 0x6F):
            r.skip(1)
        else:
            r.sleb()
    elif op == 0x0E:  # br_table
        for _ in range(r.uleb() + 1):
            r.uleb()
    elif op == 0x11:  # call_indirect
        r.uleb(), r.uleb()
    elif op == 0x1C:  # select with types
        r.skip(r.uleb())
    elif op in (0x3F, 0x40, 0xD0):  # memory.size / grow (memory 0), ref.null (a type)
        r.skip(1)
    elif op == 0x41:
        r.sleb()
    elif op == 0x42:
        r.sleb()
    elif op == _F32_CONST:
        r.skip(4)
    elif op == _F64_CONST:
        r.skip(8)
    elif op == 0xFC:
        sub = r.uleb()
        if sub <= 7:  # saturating truncations
            return
        {8: lambda: (r.uleb(), r.skip(1)), 9: r.uleb, 10: lambda: r.skip(2), 11: lambda: r.skip(1),
         12: lambda: (r.uleb(), r.uleb()), 13: r.uleb, 14: lambda: (r.uleb(), r.uleb()), 15: r.uleb, 16: r.uleb,
         17: r.uleb}[sub]()
    elif op == 0xFD:
        sub = r.uleb()
        if sub <= 11 or sub in (92, 93):  # loads, stores, splat loads, load zero: a memarg
            r.uleb(), r.uleb()
        elif sub in (12, 13):  # v128.const, i8x16.shuffle
            r.skip(16)
        elif 21 <= sub <= 34:  # extract / replace lane
            r.skip(1)
        elif 84 <= sub <= 91:  # load / store lane: a memarg and a lane
            r.uleb(), r.uleb(), r.skip(1)
    else:
        raise ValueError(f"wasm opcode 0x{op:02x} not known to the constants pass")


def _pooled_body(body: bytes, address: Callable[[bytes], Optional[int]]) -> bytes:
    """A function body with each f64.const / f32.const for which ``address(its bytes)`` gives
    an address replaced by i32.const ADDRESS and a load of that type (aligned)."""
    r, out = _Reader(body), bytearray()
    for _ in range(r.uleb()):  # the locals
        r.uleb(), r.skip(1)
    out += body[:r.at]
    while r.at < r.end:
        start, op = r.at, r.byte()
        if op in (_F64_CONST, _F32_CONST):
            size = 8 if op == _F64_CONST else 4
            value = body[r.at:r.at + size]
            r.skip(size)
            at = address(value)
            if at is not None:
                out += bytes((0x41,)) + _sleb(at) + bytes((0x2B, 3, 0) if size == 8 else (0x2A, 2, 0))
                continue
        else:
            _skip_immediates(r, op)
        out += body[start:r.at]
    return bytes(out)


def _sections(module: bytes) -> list[tuple[int, bytes]]:
    if module[:8] != b"\0asm\1\0\0\0":
        raise ValueError("not a wasm module (version 1)")
    r, sections = _Reader(module, 8), []
    while r.at < r.end:
        kind, size = r.byte(), r.uleb()
        sections.append((kind, module[r.at:r.at + size]))
        r.skip(size)
    return sections


def _exported_global(exports: bytes, wanted: bytes) -> int:
    r = _Reader(exports)
    for _ in range(r.uleb()):
        length = r.uleb()
        name = exports[r.at:r.at + length]
        r.skip(length)
        kind, index = r.byte(), r.uleb()
        if name == wanted and kind == 3:
            return index
    raise ValueError(f"the module exports no global {wanted.decode()}")


def _global_constant(globals_: bytes, wanted: int) -> tuple[int, int, int]:
    """(start, end, value) of global ``wanted``, an i32.const initialiser."""
    r = _Reader(globals_)
    for index in range(r.uleb()):
        start = r.at
        r.skip(2)  # value type, mutability
        op = r.byte()
        value = r.sleb() if op == 0x41 else None
        if op != 0x41:
            _skip_immediates(r, op)
        if r.byte() != 0x0B:
            raise ValueError("a global's initialiser is not one instruction")
        if index == wanted:
            if value is None:
                raise ValueError("the global is not an i32 constant")
            return start, r.at, value
    raise ValueError("no such global")


def _code(sections: dict[int, bytes], address: Callable[[bytes], Optional[int]]) -> bytes:
    code = _Reader(sections[10])
    bodies = []
    for _ in range(code.uleb()):
        size = code.uleb()
        bodies.append(_pooled_body(code.data[code.at:code.at + size], address))
        code.skip(size)
    return _uleb(len(bodies)) + b"".join(_uleb(len(b)) + b for b in bodies)


def _pool_constants(module: bytes) -> bytes:
    """``module`` (as clang and wasm-ld build it from the C target) with its code's
    floating-point constants read from memory: each ``f64.const`` / ``f32.const`` but +0
    becomes a load from a pool placed at the old ``__heap_base``, which moves past it (the
    loader's buffers follow it).  The same values of the same types, so the same bits.
    V8 writes a constant in two instructions (into a general register, then an xmm one), a
    load in one, or none when folded into the arithmetic.  Raises ValueError on what it
    does not know (an opcode, a layout), leaving the module to the caller."""
    sections = _sections(module)
    by_kind = dict(sections)
    if any(kind not in by_kind for kind in (5, 6, 7, 10)):
        return module
    if 2 in by_kind:  # imported globals would shift the global indices read below; clang's build imports nothing
        raise ValueError("the module imports")
    heap = _exported_global(by_kind[7], b"__heap_base")
    g_start, g_end, base = _global_constant(by_kind[6], heap)
    found: dict[int, dict[bytes, int]] = {8: {}, 4: {}}

    def collect(value: bytes) -> Optional[int]:
        if any(value):  # +0: V8 writes it with one xor
            found[len(value)].setdefault(value, len(found[len(value)]))
        return None

    _code(by_kind, collect)
    if not found[8] and not found[4]:
        return module
    pool_at = (base + 15) & ~15
    f32_at = pool_at + 8 * len(found[8])
    data = b"".join(found[8]) + b"".join(found[4])
    new_base = (pool_at + len(data) + 15) & ~15

    def address(value: bytes) -> Optional[int]:
        index = found[len(value)].get(value)
        return None if index is None else (pool_at if len(value) == 8 else f32_at) + len(value) * index

    new = {6: by_kind[6][:g_start] + by_kind[6][g_start:g_start + 2] + bytes((0x41,)) + _sleb(new_base) +
           bytes((0x0B,)) + by_kind[6][g_end:],
           10: _code(by_kind, address)}
    segment = bytes((0, 0x41)) + _sleb(pool_at) + bytes((0x0B,)) + _uleb(len(data)) + data
    if 11 in by_kind:
        r = _Reader(by_kind[11])
        new[11] = _uleb(r.uleb() + 1) + by_kind[11][r.at:] + segment
    else:
        new[11] = _uleb(1) + segment
    if 12 in by_kind:
        new[12] = _uleb(_Reader(by_kind[12]).uleb() + 1)
    r = _Reader(by_kind[5])  # the memory: its initial pages must hold the pool
    if r.uleb() != 1:
        raise ValueError("not one memory")
    flags, pages = r.byte(), r.uleb()
    maximum = r.uleb() if flags & 1 else None
    need = -(-new_base // 65536)
    if need > pages:
        if maximum is not None and need > maximum:
            raise ValueError("the constants do not fit the module's memory")
        new[5] = _uleb(1) + bytes((flags,)) + _uleb(need) + (_uleb(maximum) if maximum is not None else b"")
    out = bytearray(module[:8])
    for kind, payload in sections:
        out += bytes((kind,)) + _uleb(len(new.get(kind, payload))) + new.get(kind, payload)
        if kind == 10 and 11 not in by_kind:  # the data section follows the code
            out += bytes((11,)) + _uleb(len(new[11])) + new[11]
    return bytes(out)



def pool_constants(module: bytes) -> bytes:
    """See :func:`_pool_constants`; any malformed or unknown content is a ValueError (the
    module is then left as built), never another exception."""
    try:
        return _pool_constants(module)
    except (IndexError, KeyError, OverflowError) as exc:
        raise ValueError(f"unreadable module ({type(exc).__name__})") from None
