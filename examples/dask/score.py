#!/usr/bin/env python3
"""Score a Dask array and a Dask DataFrame with a compiled network on a local cluster of
two worker processes (copy and adapt: point Client at your scheduler instead).

    pip install "mlpcodegen[dask]"
    python examples/dask/score.py [model.keras]

Every worker needs mlpcodegen (and a C compiler for target="c"; target="numpy" needs
none).  What travels is the network (the IR), once per worker; each worker compiles it
once (or loads it from its machine's cache) and keeps it for every block it scores.
tests/test_examples.py runs this script and compares the rows it prints with the model.
"""
import sys
from pathlib import Path

import dask.array as da
import dask.dataframe as dd
import numpy as np
from distributed import Client, LocalCluster

from mlpcodegen.frontends import load
from mlpcodegen.runtime import compile_c
from mlpcodegen.runtime.distributed import score_dask

MODEL = Path(__file__).resolve().parents[2] / "generated" / "seed" / "seed.keras"


def main() -> None:
    net = load(sys.argv[1] if len(sys.argv) > 1 else MODEL)  # the IR: what the workers receive
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, \
            Client(cluster):
        # Rows made on the workers (in practice: da.from_zarr, dd.read_parquet, ...).
        x = da.random.default_rng(0).standard_normal((1_000_000, net.n_inputs), chunks=(250_048, -1),
                                                     dtype=np.float32)
        y = score_dask(x, net)  # lazy: a Dask array (1_000_000, n_outputs), float32
        print("array:", y, sep="\n")
        for row, scored_row in zip(x[:3].compute(), y[:3].compute()):  # every float32 digit
            print("  x =", " ".join(map(str, row)), "-> y =", " ".join(map(str, scored_row)))

        frame = dd.from_dask_array(x, columns=[f"x{i}" for i in range(net.n_inputs)])
        scored = score_dask(frame, net, columns=[f"y{i}" for i in range(net.n_outputs)])
        print("frame:", scored.head(3), sep="\n")

        # Bit for bit what one process computes (row chunks are aligned to 64 rows for that).
        first = x[:100_000].compute()
        assert np.array_equal(y[:100_000].compute(), compile_c(net)(first))
        print("equal to compile_c(net)(rows) bit for bit")


if __name__ == "__main__":
    main()
