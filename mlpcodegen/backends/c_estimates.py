"""Upper bounds the generated C states about itself: the stack of each function (desktop
and embedded), the embedded profile's machine code and the bytes of its weight arrays.
Each is checked against the compilers by the tests (-fstack-usage, linker maps)."""
from __future__ import annotations

from typing import Sequence

from ..core.ir import Dense, Layer, Network
from ..core.numeric import numeric_type
from . import c_batch
from .c_batch import block_plan
from .c_policy import LayerShape, UNROLL_MAX_WEIGHTS, _loops, _table_type, table_buffer


#: Bytes added to every function's stated stack for saved registers, alignment and
#: spills (checked with gcc -fstack-usage at -O0, -O2 and -O3 by the tests).
FRAME_OVERHEAD = 512


def _scalar_locals(layer: Layer, loops: bool) -> int:
    """At most how many scalar locals one layer's statements declare (gcc -O0 gives each
    its own slot): a loop over an element-wise activation needs two; written out, a sum
    and an output per unit, and for the vector activations up to three more per unit
    and a few per layer."""
    if layer.activation.is_vector:
        return 5 * layer.units + 8
    return 4 if loops else 3 * layer.units + 4


def _materialised_weights(layer: Layer, loops: bool) -> int:
    """Weights gcc's SLP vectoriser may copy to the stack: seen for unrolled layers
    larger than ``--unroll auto`` writes (64 x 64 with ``always``: 16 KiB), never below."""
    return layer.kernel.size if isinstance(layer, Dense) and not loops and layer.kernel.size > UNROLL_MAX_WEIGHTS else 0


def stack_bytes(net: Network, dtype: str, unroll: str = "auto") -> dict[str, int]:
    """An upper bound of the stack each generated function uses, its calls included:
    ``one`` (NAME), ``scalar``, ``block`` (the dense helpers inlined or called) and
    ``batch``.  The arrays are exact; scalars and spills are bounded generously."""
    size, plan = numeric_type(dtype).np_dtype.itemsize, block_plan(net, dtype)
    loops = [_loops(layer, unroll) for layer in net.layers]
    arrays = sum(layer.units * (1 if layer.activation.is_identity or layer.activation.is_vector else 2)
                 for layer, looped in zip(net.layers, loops) if looped)
    gathers = sum(layer.n_in for i, layer in enumerate(net.layers) if loops[i] and i and (
        not loops[i - 1] or net.layers[i - 1].activation.is_vector))
    scalars = sum(_scalar_locals(layer, looped) + _materialised_weights(layer, looped)
                  for layer, looped in zip(net.layers, loops))
    tile = c_batch.tile_bytes(dtype) + FRAME_OVERHEAD if any(loops) else 0  # a dense helper's frame
    one = (arrays + gathers + scalars) * size + 8 * 4 * len(net.layers) + FRAME_OVERHEAD + (tile if plan.rows else 0)
    widest_lane_loop = max(_scalar_locals(layer, looped) for layer, looped in zip(net.layers, loops))
    buffers = min(len(net.layers) + plan.transpose, 2) * plan.width * plan.lanes * size
    block = buffers + scalars * size + widest_lane_loop * 64 + 8 * 4 * len(net.layers) + FRAME_OVERHEAD + tile
    # NAME_batch_ws: the block without its buffers (they are the caller's workspace); never NAME
    work = block - buffers + FRAME_OVERHEAD
    return {"one": one, "scalar": one + FRAME_OVERHEAD, "block": block, "batch": max(block, one) + FRAME_OVERHEAD,
            "batch_ws": work}


#: Bytes added to every embedded function's stated stack: saved core and FPU registers
#: (r4-r11, lr and s16-s31 take 100 bytes on Cortex-M4F), alignment, spills and the frames of
#: the fast-math functions when not inlined (-O0); checked with -fstack-usage by the tests.
EMBEDDED_FRAME_OVERHEAD = 256


#: A written-out layer of more weights than this may have them copied to the stack by gcc
#: -O2 (sine 1-16-16-1's 16 x 16 layer: 920 bytes on Cortex-M4F, 808 on x86-64): counted.
EMBEDDED_COPIED_WEIGHTS = 64


def embedded_stack_bytes(net: Network, dtype: str, shapes: tuple[LayerShape, ...]) -> dict[str, int]:
    """An upper bound of the stack of the embedded profile's functions, calls included:
    ``one`` (NAME) and ``scalar`` (NAME_scalar): each loop layer's sums array (the
    activation is applied in place), the gathers of scalar inputs into an array, the
    locals of the written-out statements, and :data:`EMBEDDED_FRAME_OVERHEAD`."""
    size = numeric_type(dtype).np_dtype.itemsize
    if shapes and shapes[0].table:  # the buffer, softmax's m and s, 32 bytes a layer (its activation's
        # locals and calls: at -O0 the fast-math helpers keep their own frames)
        one = (table_buffer(shapes)[0] + 2) * size + EMBEDDED_FRAME_OVERHEAD + 32 * len(shapes)
        return {"one": one, "scalar": one + 32}
    arrays = sum(shape.layer.units for shape in shapes if shape.loops)
    gathers = sum(shape.layer.n_in for i, shape in enumerate(shapes) if shape.loops and i and (
        not shapes[i - 1].loops or shapes[i - 1].layer.activation.is_vector))
    scalars = sum(_scalar_locals(shape.layer, shape.loops) + (shape.tile if shape.loops else 0) for shape in shapes)
    copies = sum(shape.layer.kernel.size for shape in shapes if not shape.loops and isinstance(shape.layer, Dense)
                 and shape.layer.kernel.size > EMBEDDED_COPIED_WEIGHTS)
    one = (arrays + gathers + scalars + copies) * size + EMBEDDED_FRAME_OVERHEAD
    return {"one": one, "scalar": one + 32}


#: Bounds of the machine code of the embedded profile on Cortex-M0+/M4F/M7 (gcc 12, -Os and
#: -O2; checked by tests/test_embedded.py): per written-out weight and unit, per loop layer
#: and per pass unit, and per call site of a fast-math function (gcc -O2 inlines each: a
#: soft-float tanh on M0+ takes ~540 bytes).
CODE_PER_WEIGHT, CODE_PER_UNIT, CODE_PER_LOOP, CODE_PER_PASS_UNIT, CODE_PER_MATH_CALL = 40, 64, 256, 48, 640
CODE_PER_SCALAR = 48
#: The table form's loop nest, softmax's loops included (measured 100-300 bytes).
CODE_TABLE = 512


def embedded_code_bytes(shapes: tuple[LayerShape, ...], math_calls: Sequence[bool]) -> int:
    """An upper bound of NAME's machine code (its inline functions included), without the
    weight arrays: generous, to hold on every core and level, for a linker map's budget.
    ``math_calls``: whether each layer's activation calls a fast-math function."""
    if shapes and shapes[0].table:  # one loop nest; an activation's math at one call site per layer at most
        return CODE_TABLE + CODE_PER_UNIT * len(shapes) + CODE_PER_MATH_CALL * sum(map(bool, math_calls))
    total = 0
    for shape, uses_math in zip(shapes, math_calls):
        layer, spec = shape.layer, shape.layer.activation
        calls = 0 if not uses_math else (layer.units if not shape.loops or spec.is_vector else 1 + (shape.tile > 1))
        if shape.loops:
            total += CODE_PER_LOOP + CODE_PER_PASS_UNIT * 2 * max(shape.tile, 1)
            total += CODE_PER_UNIT * layer.units if spec.is_vector else 0
        else:
            total += CODE_PER_WEIGHT * (layer.kernel.size if isinstance(layer, Dense) else layer.n_in)
            total += CODE_PER_UNIT * layer.units
        total += CODE_PER_MATH_CALL * calls
    return total


def weight_bytes(net: Network, dtype: str, shapes: tuple[LayerShape, ...]) -> int:
    """Bytes of the ``static const`` arrays (read-only data, flash on a microcontroller)."""
    size = numeric_type(dtype).np_dtype.itemsize
    if shapes and shapes[0].table:  # every bias stored (0 when absent), after the layer table (padded)
        blob = sum(shape.layer.kernel.size + shape.layer.units for shape in shapes) * size
        return blob + -(-(len(shapes) + 1) * _table_type(shapes)[1] // size) * size
    return sum((shape.layer.kernel.size + (shape.layer.units if shape.layer.bias is not None else 0)) * size
               for shape in shapes if shape.loops)
