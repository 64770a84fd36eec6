"""The Numba target's loop layers, batches over threads and cache (issue 15 items 3, 5).

Loops (Dense layers past numba.LOOP_WEIGHTS weights) add each unit's terms in the closed
form's order, so both shapes give the same bits; every row gives the same bits whatever
the batch, part or thread count it is computed in; outputs match the float64 reference.
Networks are tiny and few: every one costs a Numba compile.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from mlpcodegen.backends import emit
from mlpcodegen.backends import numba as numba_backend
from mlpcodegen.core.ir import Network
from mlpcodegen.core.numeric import numeric_type
from mlpcodegen.core.reference import evaluate
from mlpcodegen.runtime.numba_runtime import load_numba
from nets import dense_chain

TOLERANCE = {"float32": dict(rtol=2e-5, atol=2e-6), "float64": dict(rtol=1e-12, atol=1e-13)}


def net_of(widths, activations, seed, bias=True) -> Network:
    """``bias=False``: none on the first layer only."""
    return dense_chain(widths, activations, seed, bias=[bias] + [True] * (len(widths) - 2), names="d{i}\nname",
                       alpha=(0.0, 0.5))


def load(net, dtype, name="p"):
    return load_numba(net, numeric_type(dtype), name)


def test_loop_layers_give_the_closed_forms_bits(monkeypatch):
    """3-11-3, both layers loops at LOOP_WEIGHTS = 32 (33 weights each), closed form at
    10**9: an elementwise activation, and a vector one (softmax) after a loop."""
    net = net_of([3, 11, 3], ["tanh", "softmax"], 1)
    x = np.random.default_rng(2).normal(size=(7, 3)).astype(np.float32)
    assert numba_backend.LOOP_WEIGHTS < 33
    loops = load(net, "float32")
    assert "for i in range(1, 3):" in open(loops.module.__file__).read()
    monkeypatch.setattr(numba_backend, "LOOP_WEIGHTS", 10 ** 9)
    closed = load(net, "float32")
    assert "_W1" not in open(closed.module.__file__).read()
    np.testing.assert_array_equal(loops(x), closed(x))
    np.testing.assert_array_equal(loops(x[3]), closed(x[3]))
    np.testing.assert_allclose(loops(x), evaluate(net, x.astype(np.float64)), **TOLERANCE["float32"])


def test_random_architecture_matches_the_reference():
    """Random widths and activations: loops and closed form mixed, a layer without bias,
    the input read straight by a loop, closed-form values gathered for a loop, a
    per-unit activation (prelu) after a loop."""
    rng = np.random.default_rng(4)
    widths = [int(w) for w in rng.integers(1, 12, size=4)]
    widths[1] = max(widths[1], 40)
    acts = [str(rng.choice(["elu", "sigmoid", "gelu", "softplus"])), "prelu", "log_softmax"]
    net = net_of(widths, acts, 4, bias=False)
    f = load(net, "float32")
    x = rng.normal(size=(33, widths[0])) * 2
    got = f(x)
    assert got.dtype == np.float32 and got.shape == (33, widths[-1])
    np.testing.assert_allclose(got, evaluate(net, x.astype(np.float32).astype(np.float64)), **TOLERANCE["float32"])
    for row in (0, 32):
        np.testing.assert_array_equal(f(x[row]), got[row])
        y = np.empty(widths[-1], np.float32)
        f.into(x[row].astype(np.float32), y)
        np.testing.assert_array_equal(y, got[row])
        bound = f.bind()  # NAME_into's compiled entry point on arrays of its own
        bound.x[:] = x[row]
        bound.run()
        np.testing.assert_array_equal(bound.y, got[row])


def test_scalar_function_with_a_loop_layer():
    net = net_of([1, 48, 1], ["tanh", "linear"], 5)
    f = load(net, "float64")
    xs = np.linspace(-3, 3, 9)
    assert [f.scalar(v) for v in xs] == list(f(xs[:, None])[:, 0])
    np.testing.assert_allclose(f(xs[:, None]), evaluate(net, xs[:, None]), **TOLERANCE["float64"])


CHILD = """
import json, sys
import numpy as np
sys.path.insert(0, {tests!r})
from test_numba import THREADED, load
f = load(THREADED, "float32")
x = np.random.default_rng(0).normal(size=({rows}, 12)).astype(np.float32)
m = f.module
y, first, serial = f(x, threads=2), f(x[0]), m.p_batch(x)
hits = {{k: len(getattr(m, k).stats.cache_hits) for k in ("p", "p_batch", "_p_batch_parts")}}
print(json.dumps([hits, first.tolist(), y[-1].tolist(), float(np.abs(y - serial).max())]))
"""
THREADED = net_of([12, 48, 4], ["relu", "softmax"], 2)
ROWS = 2 * numba_backend.WORK_PER_THREAD // numba_backend.work_per_row(THREADED) + 5


def test_batches_over_threads_are_bit_identical_and_cached():
    """A row's bits do not depend on the thread count or the parts (ROWS reach two parts);
    a second process loads every function from Numba's cache in the project's cache
    folder, the parallel one included."""
    f = load(THREADED, "float32")
    x = np.random.default_rng(0).normal(size=(ROWS, 12)).astype(np.float32)
    m = f.module
    results = [f(x, threads=1), f(x, threads=2), f(x), m._p_batch_parts(x, 3), m.p_batch(x), m.p_batch_parallel(x)]
    for result in results[1:]:
        np.testing.assert_array_equal(result, results[0])
    np.testing.assert_array_equal(f(x[-1]), results[0][-1])
    np.testing.assert_allclose(results[0][::997], evaluate(THREADED, x[::997].astype(np.float64)),
                               **TOLERANCE["float32"])
    code = CHILD.format(tests=os.path.dirname(__file__), rows=ROWS)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "NumbaWarning" not in done.stderr, done.stderr[-3000:]
    hits, first, last, difference = json.loads(done.stdout.strip().splitlines()[-1])
    assert hits == {"p": 1, "p_batch": 1, "_p_batch_parts": 1}  # loaded, not compiled
    assert first == results[0][0].tolist() and last == results[0][-1].tolist() and difference == 0


def test_threads_is_checked_and_the_module_documents_its_functions():
    net = net_of([1, 3, 1], ["tanh", "linear"], 6)
    source = emit(net, "numba", dtype="float64", name="p")
    assert "d0<U+000A>name" in source and "d0\nname" not in source
    for signature in ("p(x)", "p_into(x, y)", "p_batch(X)", "p_batch_parallel(X, threads=None)", "p_scalar(v)"):
        assert signature in source.split('"""')[1]
    f = load(net, "float64")
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="threads must be a positive int"):
            f(np.zeros((4, 1)), threads=bad)
    with pytest.raises(ValueError, match=r"expected shape \(1,\) or \(n, 1\)"):
        f(np.zeros((4, 3)))
