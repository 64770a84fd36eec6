"""The C backend's layout decisions, as data and pure functions of the layer shapes:
unrolled or loops (``--unroll auto`` from bench/UNROLL.md; the embedded profile's own
rule for a scalar core), units per pass of an embedded loop, the layer table of
``--optimize size``, and the option vocabularies :func:`~.c.emit_c` checks."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.ir import Dense, Layer, Network
from .c_batch import BlockPlan


#: ``--unroll auto`` writes a Dense layer as the unrolled closed form when it has at
#: most UNROLL_MAX_WEIGHTS weights and at most UNROLL_MAX_INPUTS inputs (or at most
#: UNROLL_ANY_SHAPE_WEIGHTS weights), and fewer than UNROLL_MIN_LOOP_UNITS units; as
#: loops over ``static const`` arrays otherwise.  Set from bench/UNROLL.md (python
#: bench/unroll_threshold.py): see :func:`unrolled_by_default`.
UNROLL_MAX_WEIGHTS = 256
UNROLL_MAX_INPUTS = 16
UNROLL_ANY_SHAPE_WEIGHTS = 32
UNROLL_MIN_LOOP_UNITS = 32
UNROLL_MODES = ("auto", "always", "never")


def unrolled_by_default(n_in: int, units: int) -> bool:
    """Whether ``--unroll auto`` writes a Dense layer of this shape unrolled.

    Measured (bench/UNROLL.md): loops win from UNROLL_MIN_LOOP_UNITS units on (the
    sums vectorise across units: 1 x 64 takes 4 ns as loops, 24 ns unrolled); below
    that the unrolled form wins while the layer is small or has few inputs (8 x 8:
    14 ns against 27), and loses on long dot products feeding several units (64 x 2:
    137 against 67).  A lone 64 x 1 output layer measures faster unrolled on its own
    but slower inside mid 8-64-64-1 (162 against 140 ns for the network), so long
    dot products are loops."""
    if units >= UNROLL_MIN_LOOP_UNITS:
        return False
    weights = n_in * units
    return (weights <= UNROLL_MAX_WEIGHTS and n_in <= UNROLL_MAX_INPUTS) or weights <= UNROLL_ANY_SHAPE_WEIGHTS


def _loops(layer: Layer, unroll: str) -> bool:
    """Whether ``layer`` is written as loops (Dense layers without per-unit parameters)."""
    if not isinstance(layer, Dense) or _per_unit(layer):
        return False
    return unroll == "never" or (unroll == "auto" and not unrolled_by_default(layer.n_in, layer.units))


PROFILES = ("desktop", "embedded")
OPTIMIZE_MODES = ("speed", "size")
#: The keyword options of :func:`~.c.emit_c` / :func:`~.c.emit_c_header` (the backend registry's ``options``).
OPTIONS = ("unroll", "math", "profile", "optimize", "storage")
#: Embedded profile, ``--optimize speed``: a Dense layer of at most this many weights is
#: written out (a literal load and a multiply-add per weight: the fewest instructions,
#: about 12 bytes of flash per weight on Cortex-M4F), a larger one as tiled loops.  sine
#: 1-16-16-1 unrolled: 4.2 KB, ~760 instructions; cls 16-64-64-10 unrolled would be 88 KB.
EMBEDDED_SPEED_UNROLL_MAX_WEIGHTS = 256
#: Embedded ``--optimize size``: written out only up to this many weights (a loop costs
#: a few dozen bytes of code, a written-out weight about three times its 4 bytes).
EMBEDDED_SIZE_UNROLL_MAX_WEIGHTS = 4
#: Units summed side by side per pass of an embedded ``speed`` loop: each input is
#: loaded once per tile and the accumulators stay in FPU registers (M4F has 32).
EMBEDDED_TILE_UNITS = 8


def embedded_shape(layer: Layer, unroll: str, optimize: str, soft_tile: int = 0) -> tuple[bool, int]:
    """(loops, units per pass) of ``layer`` in the embedded profile: the choice is made
    for a scalar core (flash bytes, instructions), not by the x86 timings of
    :func:`unrolled_by_default`; ``unroll`` always/never still forces it.  ``soft_tile``
    (a core without an FPU, :func:`c_softfloat.speed_tile`): speed takes loops of that
    many units per pass, never written out unless ``unroll`` is always."""
    if not isinstance(layer, Dense) or _per_unit(layer):
        return False, 1
    if optimize == "speed" and soft_tile:
        return unroll != "always", soft_tile
    limit = EMBEDDED_SPEED_UNROLL_MAX_WEIGHTS if optimize == "speed" else EMBEDDED_SIZE_UNROLL_MAX_WEIGHTS
    loops = unroll == "never" or (unroll == "auto" and layer.kernel.size > limit)
    return loops, (EMBEDDED_TILE_UNITS if optimize == "speed" else 1)


def tiled_kernel(kernel: np.ndarray, tile: int) -> np.ndarray:
    """The kernel (IR layout [input][unit]) in the order an embedded loop reads it: for
    each pass of ``tile`` units (the last one narrower), for each input, the pass's
    units.  ``tile`` 1 is the output-major [unit][input] layout."""
    n_in, units = kernel.shape
    parts = [kernel[:, j:j + tile].reshape(-1) for j in range(0, units, tile)]
    return np.concatenate(parts) if parts else kernel.reshape(-1)


def _dense_kinds(net: Network, unroll: str, plan: BlockPlan) -> list[str]:
    """The dense helper the batch (and, rows layout, the one-sample function) calls: none
    without loop layers."""
    if not any(_loops(layer, unroll) for layer in net.layers):
        return []
    return ["gemm"] if plan.rows else ["dense"]


def _per_unit(layer: Layer) -> bool:
    return any(isinstance(v, tuple) for _, v in layer.activation.params)


#: The table form reads its shapes from memory at every unit (a few instructions more
#: per unit than per-layer loops, whose counts are constants): used from this many weights
#: per unit on.  Measured on Cortex-M4F -Os (bench/EMBEDDED.md): sine 1-16-16-1 (8.7 per
#: unit) 1,388 B and 1,867 instructions against 1,452 B and 1,712 as per-layer loops.
TABLE_MIN_WEIGHTS_PER_UNIT = 8


def table_form(shapes: tuple[LayerShape, ...]) -> bool:
    """Whether ``--optimize size`` runs the whole network as one loop nest over a layer
    table (:meth:`~.c.CRenderer._table_body`): at least two layers (the last one then reads a
    buffer, never x, and may write y even when y is x), every one an output-major loop
    layer, element-wise activations without per-unit parameters (a softmax on the last
    layer is applied to y after the nest), widths below 65536, and at least
    :data:`TABLE_MIN_WEIGHTS_PER_UNIT` weights per unit."""
    if len(shapes) < 2 or not all(shape.loops and shape.tile == 1 for shape in shapes):
        return False
    units = sum(shape.layer.units for shape in shapes)
    if sum(shape.layer.kernel.size for shape in shapes) < TABLE_MIN_WEIGHTS_PER_UNIT * units:
        return False
    if any(shape.layer.activation.is_vector for shape in shapes[:-1]):
        return False
    last = shapes[-1].layer.activation
    return (not last.is_vector or last.name == "softmax") and _table_type(shapes)[1] > 0


def _table_type(shapes: tuple[LayerShape, ...]) -> tuple[str, int]:
    """The C type of the layer table's entries and its bytes (0: too wide for a table)."""
    widest = max(max(shape.layer.n_in, shape.layer.units) for shape in shapes)
    return ("unsigned char", 1) if widest < 256 else ("unsigned short", 2) if widest < 65536 else ("", 0)


def table_width(shapes: tuple[LayerShape, ...]) -> int:
    """Values per buffer of the table form: the widest layer output but the last's (written to y)."""
    return max(shape.layer.units for shape in shapes[:-1])


def table_buffer(shapes: tuple[LayerShape, ...]) -> tuple[int, bool]:
    """(values, chained) of the table form's buffer s: each hidden layer's outputs after
    the previous one's (no pointer arithmetic between layers) when that takes no more
    than two buffers of :func:`table_width` taking turns (at most two hidden layers)."""
    hidden = sum(shape.layer.units for shape in shapes[:-1])
    width = table_width(shapes)
    return (hidden, True) if hidden <= 2 * width else (2 * width, False)


@dataclass(frozen=True)
class LayerShape:
    """The planning step's decision for one layer, as data: written out (``unrolled``)
    or as loops over ``static const`` arrays."""

    index: int
    layer: Layer
    loops: bool
    tile: int = 0  # embedded loops: units summed per pass (1: output-major); 0: the desktop layout
    table: bool = False  # embedded size: one loop nest over a layer table runs every layer (see table_form)

    @property
    def label(self) -> str:
        if not self.loops:
            return "unrolled"
        if self.table:
            return "table, output-major"
        if not self.tile:
            return "loops"
        return "loops, output-major" if self.tile == 1 else f"loops, {self.tile} units per pass"
