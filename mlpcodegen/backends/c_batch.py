"""The C backend's batch kernels: how ``NAME_batch`` lays out a block of samples, and the
dense helpers that compute a loop layer over a block, with a register tile chosen from
the instruction set the file is compiled for.

Two block layouts (:class:`BlockPlan`):

- ``lanes``: every value is a row of ``lanes`` samples (``p[unit][lane]``): the compiler
  vectorises the written-out layers and the activations across samples.  For networks
  whose widest layer lets two buffers of full lanes fit :data:`BLOCK_BUFFER_BYTES` (and
  whose input can be copied into one).  Loop layers go through ``NAME_dense``: a tile of
  units x all lanes accumulated over the inputs, each weight broadcast.
- ``rows``: a block is a few samples' rows (``p[sample][unit]``), read from x in place by
  the first layer: for wide networks, where full lanes would not fit the budget (two
  buffers of 1024 units x 32 lanes take 256 KiB).  Loop layers go through ``NAME_gemm``:
  a tile of samples x one panel of :data:`PANEL` units, the weights packed at generation
  time panel by panel (``[panel][input][PANEL]``, the last panel padded with zeros) so
  each tile reads one contiguous stream of them; the one-sample function reads the same
  arrays through the same helper.

Every sum keeps the order of the IR's single-sample form, ((b + h0 w0) + h1 w1) + ...,
in every tile: the batch, the one-sample function and a block's leftover rows give the
same bits (compiled with the same contraction flags; with -ffp-contract=off bit for bit
in any case, tested).  The tiles are written with GCC's vector extension (GCC and clang)
when the file is compiled for AVX2 (32-byte vectors) or AVX-512 (64-byte ones: two FMA
ports of 16 float32 each, 223 GFLOP/s of FMA against 120 with 32-byte vectors on this
project's Sapphire Rapids-class KVM guest, 12 independent chains); as plain loops
otherwise (every other compiler and machine, aarch64 included).  A vector's arithmetic contracts
exactly as the scalar statements do (``acc += w * h`` in both), so the choice of ISA
changes no result.
"""
from __future__ import annotations

from dataclasses import dataclass
import numpy as np

from ..core.ir import Network
from ..core.numeric import numeric_type

#: Bytes the two buffers of a batch block may take: a block then fits a 512 KiB thread
#: stack (musl's default, macOS's secondary threads) many times over.  Only a layer wider
#: than BLOCK_BUFFER_BYTES / (2 x value size) values (8192 float32) exceeds it, by what
#: its two rows of values need.
BLOCK_BUFFER_BYTES = 64 * 1024
#: Bytes the caller-provided workspace of ``NAME_batch_ws`` (rows layout only) may take:
#: its two buffers hold WORK_ROWS rows of the widest layer, halved until they fit.  A
#: block's weights are read once per block: 8-row blocks stream a 1024 x 1024 float32
#: layer (4 MiB, more than L2) from L3 for every 8 rows (4 flops a byte); 96-row blocks
#: keep each pair of panels in L2 for 8 row tiles.  32-1024-1024-1, in C, thread CPU time
#: on a loaded machine: 8-row blocks 115 GFLOP/s (AVX-512) and 76 (AVX2), 96-row blocks
#: 162 and 99; 64 to 192 rows within 2%; slicing the inputs so that a slice of the panels
#: stays in L1 gained nothing (0.9-1.0x, with or without padded rows).
WORK_BUFFER_BYTES = 2 * 1024 * 1024
#: Rows per block of ``NAME_batch_ws`` at most (a multiple of every ISA's row tile).
WORK_ROWS = 96
#: Weights of a layer from which a network takes the ``rows`` layout even when full lanes
#: would fit: its packed GEMM reads the weights once per NAME_batch_ws block of WORK_ROWS
#: rows, the lanes block once per ``lanes`` samples.  64-256-256-10 (256 x 256), in C:
#: AVX2 104 GFLOP/s against the lanes block's 92, AVX-512 151 against 153.
ROWS_WEIGHTS = 256 * 256
#: Units per panel of a packed (``rows`` layout) kernel: one 64-byte vector of float32
#: (AVX-512), two 32-byte ones (AVX2); the packing does not depend on the ISA.
PANEL = 16


@dataclass(frozen=True)
class VectorIsa:
    """The register tiles of one instruction set: the vector size, the ``lanes`` tile
    (units x vectors of lanes per pass) and the ``rows`` tile (samples x panels), and the
    panels a one-sample (single row) tile takes at once."""

    condition: str  # preprocessor condition
    vector_bytes: int
    lanes_units: int
    lanes_chunk: int
    rows: int
    row_panels: int
    one_row_panels: int

    def per(self, size: int) -> int:
        return self.vector_bytes // size


#: The vector tiles, most registers first.  AVX-512 (32 registers of 64 bytes: two FMA
#: ports of 16 float32 each, 213 GFLOP/s measured on this project's Sapphire Rapids-class
#: guest at 3.51 GHz against 112 with 32-byte vectors): 12 units x 2 vectors of lanes (24
#: sums; each weight an embedded broadcast) and 12 rows x 2 panels (24 sums: 27 registers
#: with the two panels' weights and a broadcast; 1.06x the 8 x 2 tile and 1.12x 6 x 3 on
#: 32-1024-1024-1's 96-row blocks; 8-row blocks still take 8 x 2).  AVX2 (16
#: registers of 32 bytes): 6 units x 2 vectors (12 sums, two passes over 32 lanes) and
#: 6 rows x 1 panel of 2 vectors; measured interleaved on 64-256-256-10, mid and cls: 6 x 2
#: ran 1.12-1.33x the 3 x 4 tile (whose inputs come from memory operands), 2 x 4 0.93-1.19x.
#: 16-byte vectors (SSE2: the x86-64 baseline; NEON on aarch64 only, as ARMv7's NEON flushes
#: float32 denormals to zero, which would part a batch row's bits from NAME's; WebAssembly's simd128:
#: the wasm target, 9-12% more rows/s on mid and cls, either dtype) for every other GCC or
#: clang build: without them the plain loops ran a float64 lanes block 6-7x slower than the
#: one-sample function row by row (mid 8-64-64-1: 0.19 against 1.3 M rows/s, gcc -O3
#: x86-64), 1.4 M rows/s with them; float32 cls 2.39 -> 2.54, mid 3.06 -> 3.3 M rows/s; the
#: rows tile of 8 rows x 1 panel (32 sums: NEON's 32 registers, spilled on SSE2's 16) ran
#: 64-256-256-10 at 0.89-1.0x the plain loops in float32 and 1.02x in float64, the best of
#: 2-16 rows measured.  The plain loops stay for other compilers and targets.
VECTOR_ISAS = (VectorIsa("defined(__AVX512F__)", 64, 12, 2, 12, 2, 8),
               VectorIsa("defined(__AVX2__)", 32, 6, 2, 6, 1, 4),
               VectorIsa("(defined(__SSE2__) || (defined(__ARM_NEON) && defined(__aarch64__)) "
                         "|| defined(__wasm_simd128__))", 16, 6, 2, 8, 1, 2))
#: Values ahead of the weight stream a rows tile asks the cache for: the weights of a wide
#: layer come from L3 (1024 x 1024 float32: 4 MiB), one line per input; 2 KiB ahead took
#: 32-1024-1024-1 from ~40 to ~50 GFLOP/s (AVX-512 build, a loaded machine).  Only within
#: the array (a prefetch never faults, but a pointer past the end would be undefined).
PREFETCH = 512
#: Bytes the packed (rows layout) arrays are aligned to where the vector tiles are compiled:
#: a 64-byte panel row then sits on one cache line (GCC placed them 32 bytes off a line:
#: every AVX-512 weight load split two lines).  NAME_batch_ws, AVX-512, in C, thread CPU time,
#: interleaved: 32-1024-1024-1 153 -> 164 GFLOP/s, 784-512-512-10 153 -> 164 (1.07x); AVX2 1.00x.
#: What else was measured on the 12 x 2 tile (AVX-512, 32-1024-1024-1, the same way): its loop
#: alone, in L1, reaches 176-185 GFLOP/s (~78% of the FMA loop's ~230): 14 loads (12 broadcasts,
#: 2 panel rows) per 24 FMAs (an asm loop of 24 FMAs: 209, with those loads 190).  Tiles 8 x 3
#: 0.97x, 14 x 2 0.98x, 6 x 4 0.94x; PREFETCH 256 or 1024 1.00x, none 0.92x, only for a panel's
#: first row tile 0.95x; the k loop unrolled by 2 or 4 1.00x; a branch-free prefetch 0.99x; the
#: tile's inputs packed k-major 0.99x; k slices of 128/256/512 inputs 0.94/0.97/0.99x; a row
#: stride padded to an odd number of lines (1040 floats for 1024) 1.02x here, 1.00x on
#: 784-512-512-10 (not taken: NAME_block's buffers share the stride, and 8 rows of 1040 exceed
#: BLOCK_BUFFER_BYTES).
PACKED_ALIGN = 64
#: The portable tiles (plain loops) of the ``lanes`` and ``rows`` kernels.
PLAIN_TILE_UNITS, PLAIN_TILE_ROWS = 4, 4
#: Panels the portable one-sample (single row) tile takes at once.
PLAIN_ONE_ROW_PANELS = 4


def vector_guard() -> str:
    """The condition under which the vector tiles are compiled."""
    return "defined(__GNUC__) && (" + " || ".join(isa.condition for isa in VECTOR_ISAS) + ")"


@dataclass(frozen=True)
class BlockPlan:
    """How ``NAME_batch`` lays out its blocks for one network."""

    lanes: int  # samples per block
    width: int  # values per sample in each of the two buffers
    transpose: bool  # lanes layout: the block's inputs are copied into a buffer first
    backwards: bool  # rows from the last one back: more outputs than inputs, and y may be x
    layout: str = "lanes"  # "lanes" (p[unit][sample]) or "rows" (p[sample][unit], x read in place)

    @property
    def rows(self) -> bool:
        return self.layout == "rows"


def block_plan(net: Network, dtype: str) -> BlockPlan:
    """The ``lanes`` layout with the numeric type's full ``lanes`` when its two buffers (as
    wide as the widest layer, and the input copied in) fit BLOCK_BUFFER_BYTES and no layer
    has ROWS_WEIGHTS weights; else the ``rows`` layout: as many samples per block (a power
    of two, at most ``lanes``) as two buffers as wide as the widest layer allow (x is read
    in place: its width does not count)."""
    kind = numeric_type(dtype)
    size, widest, lanes = kind.np_dtype.itemsize, max(layer.units for layer in net.layers), kind.lanes
    backwards = net.n_outputs > net.n_inputs
    width = max(widest, net.n_inputs)
    biggest = max(getattr(getattr(layer, "kernel", None), "size", 0) for layer in net.layers)
    if 2 * width * lanes * size <= BLOCK_BUFFER_BYTES and biggest < ROWS_WEIGHTS:
        return BlockPlan(lanes, width, True, backwards)
    rows = lanes
    while rows > 1 and 2 * widest * rows * size > BLOCK_BUFFER_BYTES:
        rows //= 2
    return BlockPlan(rows, widest, False, backwards, "rows")


def work_rows(net: Network, dtype: str) -> int:
    """Rows per block of ``NAME_batch_ws``: WORK_ROWS, halved while its two buffers exceed
    WORK_BUFFER_BYTES, never fewer than ``NAME_batch``'s (rows layout)."""
    plan, size = block_plan(net, dtype), numeric_type(dtype).np_dtype.itemsize
    rows = WORK_ROWS
    while rows > plan.lanes and 2 * plan.width * rows * size > WORK_BUFFER_BYTES:
        rows //= 2
    return max(rows, plan.lanes)


def work_bytes(net: Network, dtype: str) -> int:
    """Bytes of the workspace ``NAME_batch_ws`` takes (``NAME_BATCH_WORK``); 0 when the
    network has no such entry (the lanes layout)."""
    plan = block_plan(net, dtype)
    if not plan.rows:
        return 0
    return 2 * plan.width * work_rows(net, dtype) * numeric_type(dtype).np_dtype.itemsize


def panels(units: int) -> int:
    return -(-units // PANEL)


def packed_kernel(kernel: np.ndarray) -> np.ndarray:
    """The kernel (IR layout [input][unit]) in panel order: for each panel of PANEL units,
    for each input, the panel's units; the last panel padded with zeros."""
    n_in, units = kernel.shape
    padded = np.zeros((n_in, panels(units) * PANEL), dtype=kernel.dtype)
    padded[:, :units] = kernel
    return padded.reshape(n_in, -1, PANEL).transpose(1, 0, 2).reshape(-1)


def packed_bias(bias: np.ndarray) -> np.ndarray:
    """The bias padded with zeros to whole panels (a tile loads a panel's at once)."""
    out = np.zeros(panels(len(bias)) * PANEL, dtype=bias.dtype)
    out[:len(bias)] = bias
    return out


def _lower_powers(n: int) -> list[int]:
    """The powers of two below ``n``, largest first: the tiles that finish what a tile of
    ``n`` leaves (at most n - 1 of them)."""
    out, p = [], 1
    while p < n:
        out.insert(0, p)
        p *= 2
    return out


def _vector_typedef(name: str, t: str, isa: VectorIsa) -> list[str]:
    count = isa.per(4 if t == "float" else 8)
    return [f"typedef {t} {name}_v __attribute__((vector_size({isa.vector_bytes})));",
            f"/* {count} values: one register; loaded and stored by memcpy (no alignment assumed) */"]


def packed_alignment(name: str) -> list[str]:
    """``NAME_PACKED``: the packed arrays' alignment attribute, where the vector tiles are
    compiled (nothing elsewhere: no padding in a microcontroller's flash)."""
    return [f"#if {vector_guard()}", f"#define {name}_PACKED __attribute__((aligned({PACKED_ALIGN})))", "#else",
            f"#define {name}_PACKED", "#endif"]


def preamble(name: str, t: str) -> list[str]:
    """The vector type the tiles use, the ISA's register size."""
    lines = [""]
    for index, isa in enumerate(VECTOR_ISAS):
        lines += [("#if " if index == 0 else "#elif ") + f"defined(__GNUC__) && {isa.condition}",
                  *_vector_typedef(name, t, isa)]
    return lines + ["#endif"]


#: The widest layer from which ``NAME_block`` asks for 64-byte auto-vectorisation (below it,
#: a block's few lane loops ran slower so: seed 1-3-2-1 0.93x, measured interleaved).
WIDE_VECTOR_MIN_UNITS = 8


def block_attributes(net: Network) -> list[str]:
    """Lines before ``NAME_block``'s definition: on AVX-512, let the compiler vectorise its
    lane loops (the written-out layers, the activations) with 64-byte vectors; GCC and
    clang prefer 32-byte ones there by default.  Measured interleaved (in C, -O3
    -march=native): 10-16-8-1 tanh 1.22x, cls 16-64-64-10 1.19x, mid within noise, seed
    1-3-2-1 0.93x (not asked for below WIDE_VECTOR_MIN_UNITS units); the same bits (the
    same operations, wider)."""
    if max(layer.units for layer in net.layers) < WIDE_VECTOR_MIN_UNITS:
        return []
    return ["#if defined(__GNUC__) && !defined(__clang__) && defined(__AVX512F__)",
            '__attribute__((target("prefer-vector-width=512")))',
            "#elif defined(__clang__) && defined(__AVX512F__)", "__attribute__((min_vector_width(512)))", "#endif"]


# ------------------------------------------------------------------------ lanes layout


def _lanes_tile(name: str, t: str, lanes: int, units: int, size: int, chunk: int, per: int) -> list[str]:
    """``units`` units from j over all lanes, ``chunk`` vectors of ``per`` lanes at a time:
    units x chunk vector sums per pass."""
    vectors = min(chunk, lanes // per)
    passes = lanes // (vectors * per)
    sums = [[f"c{u}_{v}" for v in range(vectors)] for u in range(units)]
    hs = [f"h{v}" for v in range(vectors)]
    at = " + c" if passes > 1 else ""
    lines = ["{", f"    {name}_v " + ", ".join(s for row in sums for s in row) + ";"]
    if passes > 1:
        lines += ["    size_t c;", f"    for (c = 0; c < {lanes}u; c += {vectors * per}u) {{"]
    inner = []
    for u in range(units):
        inner.append(f"{{ const {t} s = b ? b[j + {u}u] : ({t})0; const {name}_v v = {{"
                     + ", ".join(["s"] * per) + "}; " + " ".join(f"{s} = v;" for s in sums[u]) + " }")
    inner += ["for (k = 0; k < n_in; ++k) {", f"    const {t} *hk = h + k * {lanes}u{at}, *wk = w + k * units + j;",
              f"    {name}_v " + ", ".join(hs) + ";",
              *(f"    memcpy(&{hv}, hk + {v * per}u, sizeof {hv});" for v, hv in enumerate(hs))]
    for u in range(units):
        inner.append(f"    {{ const {t} wu = wk[{u}u]; " + " ".join(f"{s} += wu * {hv};" for s, hv in zip(sums[u], hs))
                     + " }")
    inner.append("}")
    for u in range(units):
        inner += [f"memcpy(z + (j + {u}u) * {lanes}u{at} + {v * per}u, &{s}, sizeof {s});" for v, s in enumerate(sums[u])]
    indent = "        " if passes > 1 else "    "
    lines += [indent + line for line in inner]
    if passes > 1:
        lines.append("    }")
    return lines + [f"    j += {units}u;", "}"]


def _plain_lanes_tile(t: str, lanes: int, units: int) -> list[str]:
    """The portable form of a lanes tile: plain loops, the same sums in the same order."""
    return ["{", f"    {t} acc[{units}][{lanes}];",
            f"    for (u = 0; u < {units}u; ++u) for (l = 0; l < {lanes}u; ++l) acc[u][l] = b ? b[j + u] : ({t})0;",
            "    for (k = 0; k < n_in; ++k) {", f"        for (u = 0; u < {units}u; ++u) {{",
            f"            const {t} wk = w[k * units + j + u];",
            f"            for (l = 0; l < {lanes}u; ++l) acc[u][l] += wk * h[k * {lanes}u + l];", "        }", "    }",
            f"    for (u = 0; u < {units}u; ++u) for (l = 0; l < {lanes}u; ++l) z[(j + u) * {lanes}u + l] = acc[u][l];",
            f"    j += {units}u;", "}"]


def _lanes_body(tile, biggest: int) -> list[str]:
    body = [f"while (units - j >= {biggest}u)", *tile(biggest)]
    for rest in _lower_powers(biggest):
        body += [f"if (units - j >= {rest}u)", *tile(rest)]
    return body


def dense_helper(dtype: str, name: str, lanes: int) -> list[str]:
    """``static void NAME_dense``: z = h W + b over a block in the lanes layout
    (``h[input][lane]`` -> ``z[unit][lane]``), W in the IR layout [input][unit]."""
    kind = numeric_type(dtype)
    t, size = kind.c_type, kind.np_dtype.itemsize
    lines = [f"static void {name}_dense(const {t} *h, size_t n_in, const {t} *w, const {t} *b, size_t units, {t} *z)",
             "{", "    size_t j = 0, k;"]
    vector_ok = all(lanes % isa.per(size) == 0 for isa in VECTOR_ISAS)
    for index, isa in enumerate(VECTOR_ISAS):
        if not vector_ok:
            break
        lines.append(("#if " if index == 0 else "#elif ") + f"defined(__GNUC__) && {isa.condition}")
        lines += ["    " + line for line in _lanes_body(
            lambda u, isa=isa: _lanes_tile(name, t, lanes, u, size, isa.lanes_chunk, isa.per(size)), isa.lanes_units)]
    if vector_ok:
        lines.append("#else")
    lines += ["    size_t l, u;", *("    " + line for line in _lanes_body(lambda u: _plain_lanes_tile(t, lanes, u),
                                                                          PLAIN_TILE_UNITS))]
    if vector_ok:
        lines.append("#endif")
    return lines + ["}", ""]


# ------------------------------------------------------------------------- rows layout


def _rows_tile(name: str, t: str, rows: int, count: int, per: int) -> list[str]:
    """``rows`` samples from m x ``count`` panels from p: rows x count x PANEL / ``per``
    vector sums."""
    vectors = PANEL // per * count
    sums = [[f"c{r}_{v}" for v in range(vectors)] for r in range(rows)]
    ws = [f"w{v}" for v in range(vectors)]
    lines = ["{", f"    const {t} " + ", ".join(f"*a{r} = a + (m + {r}u) * lda" for r in range(rows)) + ";",
             f"    const {t} " + ", ".join(f"*q{q} = w + (p + {q}u) * n_in * {PANEL}u" for q in range(count)) + ";",
             f"    {name}_v " + ", ".join(s for row in sums for s in row) + ";",
             f"    {name}_v " + ", ".join(ws) + ";"]
    # the bias of each panel (zeros without one), into every row's sums
    lines.append("    if (b) {")
    lines += [f"        memcpy(&{wv}, b + (p + {v // (PANEL // per)}u) * {PANEL}u + {v % (PANEL // per) * per}u, sizeof {wv});"
              for v, wv in enumerate(ws)]
    lines += ["    } else {", f"        const {name}_v zero = {{" + ", ".join([f"({t})0"] * per) + "};",
              "        " + " ".join(f"{wv} = zero;" for wv in ws), "    }"]
    lines += ["    " + " ".join(f"{s} = {wv};" for s, wv in zip(row, ws)) for row in sums]
    lines += ["    for (k = 0; k < n_in; ++k) {"]
    for q in range(count):  # each panel's stream (the one-sample tile reads several)
        lines += [f"        {{ const size_t ahead = ((p + {q}u) * n_in + k) * {PANEL}u + {PREFETCH}u;",
                  f"          if (ahead < np * n_in * {PANEL}u) __builtin_prefetch(w + ahead); }}"]
    lines += [f"        memcpy(&{wv}, q{v // (PANEL // per)} + k * {PANEL}u + {v % (PANEL // per) * per}u, sizeof {wv});"
              for v, wv in enumerate(ws)]
    for r in range(rows):
        lines.append(f"        {{ const {t} s = a{r}[k]; " + " ".join(f"{c} += s * {wv};" for c, wv in zip(sums[r], ws)) + " }")
    lines.append("    }")
    # store: whole panels straight, the last (part of a) panel through a copy
    lines += [f"    if (units - p * {PANEL}u >= {count * PANEL}u) {{"]
    for r in range(rows):
        lines += [f"        memcpy(z + (m + {r}u) * ldz + p * {PANEL}u + {v * per}u, &{c}, sizeof {c});"
                  for v, c in enumerate(sums[r])]
    lines += ["    } else {", f"        {t} part[{count * PANEL}];",
              f"        const size_t n = units - p * {PANEL}u;"]
    for r in range(rows):
        lines += [f"        memcpy(part + {v * per}u, &{c}, sizeof {c});" for v, c in enumerate(sums[r])]
        lines.append(f"        memcpy(z + (m + {r}u) * ldz + p * {PANEL}u, part, n * sizeof part[0]);")
    return lines + ["    }", "}"]


def _plain_rows_tile(t: str, rows: int, count: int) -> list[str]:
    """The portable form of a rows tile: plain loops, the same sums in the same order."""
    width = count * PANEL
    return ["{", f"    {t} acc[{rows}][{width}];", "    size_t r, u, n = units - p * " + f"{PANEL}u;",
            f"    if (n > {width}u) n = {width}u;",
            f"    for (r = 0; r < {rows}u; ++r) for (u = 0; u < {width}u; ++u) acc[r][u] = b ? b[p * {PANEL}u + u] : ({t})0;",
            "    for (k = 0; k < n_in; ++k) {", f"        for (r = 0; r < {rows}u; ++r) {{",
            f"            const {t} s = a[(m + r) * lda + k];",
            f"            for (u = 0; u < {width}u; ++u) acc[r][u] += s * w[(p + u / {PANEL}u) * n_in * {PANEL}u + k * {PANEL}u"
            f" + u % {PANEL}u];", "        }", "    }",
            f"    for (r = 0; r < {rows}u; ++r) for (u = 0; u < n; ++u) z[(m + r) * ldz + p * {PANEL}u + u] = acc[r][u];",
            "}"]


def _row_tiles(tile, biggest: int, count: int) -> list[str]:
    """Tiles of ``biggest`` rows from m = 0, then of the powers of two below it down to 2,
    each ``count`` panels from p."""
    body = ["m = 0;", f"while (rows - m >= {biggest}u) {{", *("    " + line for line in tile(biggest, count)),
            f"    m += {biggest}u;", "}"]
    for rest in _lower_powers(biggest)[:-1]:
        body += [f"if (rows - m >= {rest}u) {{", *("    " + line for line in tile(rest, count)), f"    m += {rest}u;", "}"]
    return body


def _rows_body(tile, biggest: int, count: int, one_row: int) -> list[str]:
    """Panels outer (a panel's weights stay in cache for every tile of rows), ``count``
    panels at a time then one; a last single row takes ``one_row`` panels at once (a
    one-sample call: that many independent vector sums)."""
    body = [f"for (p = 0; p + {count}u <= np; p += {count}u) {{", *("    " + line for line in _row_tiles(tile, biggest, count)),
            "}"]
    if count > 1:
        body += [f"for (p = np - np % {count}u; p < np; ++p) {{", *("    " + line for line in _row_tiles(tile, biggest, 1)),
                 "}"]
    if biggest > 1:  # m: where the tiles stopped (the same in every panel); at most one row is left
        body += ["if (m < rows) {", "    m = rows - 1u;",
                 f"    for (p = 0; p + {one_row}u <= np; p += {one_row}u)",
                 *("    " + line for line in tile(1, one_row)),
                 f"    for (p = np - np % {one_row}u; p < np; ++p)", *("    " + line for line in tile(1, 1)), "}"]
    return body


def _rows_per_tile(rows: int, size: int) -> int:
    """A rows tile's samples for a value size: float64 takes half as many per vector."""
    return max(2, rows * 4 // size)


def gemm_helper(dtype: str, name: str) -> list[str]:
    """``static void NAME_gemm``: z = a W + b for ``rows`` samples in the rows layout
    (``a[row * lda + input]`` -> ``z[row * ldz + unit]``), W packed by :func:`packed_kernel`
    and b by :func:`packed_bias` (or NULL).  Odd row counts: every tile is a multiple of
    two rows but a last row's, which takes several panels at once (the one-sample call)."""
    kind = numeric_type(dtype)
    t, size = kind.c_type, kind.np_dtype.itemsize
    lines = [f"static void {name}_gemm(const {t} *a, size_t lda, size_t rows, size_t n_in, const {t} *w, const {t} *b,",
             f"                       size_t units, {t} *z, size_t ldz)",
             "{", f"    const size_t np = (units + {PANEL - 1}u) / {PANEL}u;", "    size_t p, m = 0, k;"]
    for index, isa in enumerate(VECTOR_ISAS):
        lines.append(("#if " if index == 0 else "#elif ") + f"defined(__GNUC__) && {isa.condition}")
        lines += ["    " + line for line in _rows_body(lambda r, c, isa=isa: _rows_tile(name, t, r, c, isa.per(size)),
                                                    _rows_per_tile(isa.rows, size), isa.row_panels, isa.one_row_panels)]
    lines.append("#else")
    lines += ["    " + line for line in _rows_body(lambda r, c: _plain_rows_tile(t, r, c), PLAIN_TILE_ROWS, 1,
                                                PLAIN_ONE_ROW_PANELS)]
    lines.append("#endif")
    return lines + ["}", ""]


def tile_bytes(dtype: str) -> int:
    """At most how many bytes of stack a dense helper's tiles take: at -O0 gcc may give
    every tile's vectors (sums, loaded weights or inputs, the broadcast) and the copy of a
    part panel their own slots, so all the tiles of the largest branch are counted."""
    kind = numeric_type(dtype)
    size, lanes = kind.np_dtype.itemsize, kind.lanes
    lanes_total = rows_total = 0
    for isa in VECTOR_ISAS:
        lanes_vectors = lanes // isa.per(size)
        lanes_total = max(lanes_total, sum((u + 1) * lanes_vectors + u + 2 for u in [isa.lanes_units,
                                                                                   *_lower_powers(isa.lanes_units)])
                          * isa.vector_bytes)
        panel_vectors = -(-PANEL // isa.per(size))
        biggest = _rows_per_tile(isa.rows, size)
        tiles = [(r, c) for c in {isa.row_panels, 1} for r in [biggest, *_lower_powers(biggest)]]
        tiles += [(1, isa.one_row_panels), (1, 1)]
        rows_total = max(rows_total, sum((r + 2) * panel_vectors * c * isa.vector_bytes + c * PANEL * size + 64
                                         for r, c in tiles))
    plain_lanes = (PLAIN_TILE_UNITS + 1) * lanes * size * (1 + len(_lower_powers(PLAIN_TILE_UNITS)))
    plain_rows = (PLAIN_TILE_ROWS + 1) * PLAIN_ONE_ROW_PANELS * PANEL * size * 4
    return max(lanes_total, plain_lanes, rows_total, plain_rows)
