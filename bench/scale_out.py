#!/usr/bin/env python3
"""Scoring beyond one process: Dask on a local cluster of 2 worker processes (and Spark's
``mapInPandas`` with ``--spark``) against ``predict(X, threads=2)`` in one process.

    python bench/scale_out.py [--quick] [--spark] [--out bench/DISTRIBUTED.md]

Models as bench/native_call.py (seed 1-3-2-1, mid 8-64-64-1, cls 16-64-64-10, float32,
default options), 10^6 rows; seed also 10^7 and 10^8 rows (``--seed-rows``: its 10^6 rows
take two threads ~13 ms, less than Dask's round trip of an empty task here, which the
bench measures and prints).  Dask: ``LocalCluster(n_workers=2, threads_per_worker=1)``,
the rows in row chunks aligned to 64; three ways a user meets it:

* *on workers*: the rows are already on the workers (made there: ``da.random``, then
  persisted), the outputs stay there (``score_dask(X, net).persist()`` + ``wait``): what
  a pipeline that reads and writes files on the workers pays;
* *gathered*: the same, outputs brought back to the client (``.compute()``);
* *from the client*: a NumPy array on the client, wrapped by ``da.from_array`` and
  ``.compute()``: the rows travel to the workers and back.

Each round times ``predict(X, threads=2)`` and the Dask paths back to back; ratios are
taken within each round (throughput of the path ÷ throughput of 2 threads) and their
median is reported.  Every Dask result is checked equal bit for bit to ``predict``.
The machine's load (``os.getloadavg``) is printed before and after.

Named scale_out.py, not distributed.py: a script's folder comes first on ``sys.path``,
so a bench/distributed.py would hide the ``distributed`` package from every script here.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from bench.native_call import models  # noqa: E402
from mlpcodegen.runtime import compile_c  # noqa: E402
from mlpcodegen.runtime.distributed import score_dask, score_spark  # noqa: E402

PATHS = ("on workers", "gathered", "from the client")


def _timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def dask_rounds(client, net, rows: int, chunks: int, rounds: int, paths: int = len(PATHS)) -> list[tuple[float, ...]]:
    """Per round: (2-thread time, then the first ``paths`` of PATHS' times); checks the outputs once."""
    import dask.array as da
    from dask.core import flatten
    from distributed import wait

    size = -(-rows // chunks // 64) * 64
    data = da.random.default_rng(1).standard_normal((rows, net.n_inputs), chunks=(size, net.n_inputs),
                                                   dtype=np.float32).persist()
    wait(data)
    x = data.compute()
    predict = compile_c(net, name="bench")
    local = da.from_array(x, chunks=(size, net.n_inputs)) if paths > 2 else None
    expected = predict(x, threads=2)
    for collection in (data, local)[:paths - 1]:
        if not np.array_equal(score_dask(collection, net, name="bench").compute(), expected):
            raise SystemExit("Dask outputs differ from predict: the benchmark is void")
    del expected
    keys = [key for collection in (data, local)[:paths - 1]
            for key in flatten(score_dask(collection, net, name="bench").__dask_keys__())]
    _settle(client, keys)
    samples = []
    for _ in range(rounds):
        kept = []

        def on_workers():
            kept.append(score_dask(data, net, name="bench").persist())
            wait(kept[-1])

        threads, persisted = _timed(lambda: predict(x, threads=2)), _timed(on_workers)
        client.cancel(kept.pop())
        _settle(client, keys)
        times = []
        for collection in (data, local)[:paths - 1]:
            times.append(_timed(lambda rows=collection: score_dask(rows, net, name="bench").compute()))
            _settle(client, keys)
        samples.append((threads, persisted, *times))
    client.cancel(data)
    return samples


def _settle(client, keys: list, patience: float = 5.0) -> None:
    """Wait (untimed) until the workers hold none of ``keys`` (released asynchronously after
    a cancel or a compute): the next graph asks for the same keys and must compute them."""
    deadline = time.perf_counter() + patience
    while any(client.who_has(keys).values()) and time.perf_counter() < deadline:
        time.sleep(0.005)


def _row(label: str, rows: int, chunks: int, samples: list[tuple[float, ...]]) -> str:
    """A table row: throughputs (ms) of 2 threads and each timed path, then the ratios."""
    times = [statistics.median(column) for column in zip(*samples)]
    ratios = [statistics.median(s[0] / s[i] for s in samples) for i in range(1, len(times))]
    cells = [f"{rows / t / 1e6:.1f} M rows/s ({t * 1e3:.0f} ms)" for t in times]
    cells += ["not timed"] * (len(PATHS) + 1 - len(cells))
    shown = [f"**{ratios[0]:.2f}×**", *(f"{r:.2f}×" for r in ratios[1:])]
    shown += ["—"] * (len(PATHS) - len(shown))
    return f"| {label} | {rows:,} | {chunks} | " + " | ".join(cells + shown) + " |"


def round_trip(client, count: int = 41) -> float:
    """Median seconds of ``client.submit(inc, i).result()``: Dask's floor for any graph here."""
    times = []
    for i in range(count):
        times.append(_timed(lambda: client.submit(_inc, i, pure=False).result()))
    return statistics.median(times)


def _inc(value: int) -> int:
    return value + 1


def dask_table(runs: list[tuple], rounds: int) -> tuple[list[str], str]:
    """``runs``: (label, network, rows, chunk counts, paths timed) each; the table and a
    line on the cluster (its start, the empty task's round trip)."""
    from distributed import Client, LocalCluster

    started = time.perf_counter()
    cluster = LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None,
                           silence_logs=40)
    client = Client(cluster)
    start_time = time.perf_counter() - started
    lines = ["| model | rows | chunks | `predict(X, threads=2)` | " +
             " | ".join(f"Dask, {path}" for path in PATHS) + " | ratio on workers ÷ 2 threads (target ≥ 0.8) | "
             "ratio gathered | ratio from the client |", "|---|---|---|---|" + "---|" * (len(PATHS) + 3)]
    try:
        trip = round_trip(client)
        for label, net, rows, chunk_counts, paths in runs:
            for chunks in chunk_counts:
                lines.append(_row(label, rows, chunks, dask_rounds(client, net, rows, chunks, rounds, paths)))
                print(lines[-1], flush=True)
    finally:
        client.close()
        cluster.close()
    return lines, (f"LocalCluster start (2 worker processes): {start_time:.1f} s.  Round trip of an empty task "
                   f"(`client.submit(inc, i).result()`, median of 41): {trip * 1e3:.1f} ms — Dask's floor for "
                   "any graph on this machine, whatever it computes.")


def spark_table(nets: dict, rows: int, rounds: int) -> list[str]:
    """local[2] Spark: session start, then per model the scoring of a cached DataFrame
    into Spark's no-op sink (every row computed, nothing written)."""
    import pandas as pd
    from pyspark.sql import SparkSession

    started = time.perf_counter()
    spark = (SparkSession.builder.master("local[2]").appName("mlpcodegen-bench")
             .config("spark.ui.enabled", "false").config("spark.sql.execution.arrow.pyspark.enabled", "true")
             .getOrCreate())
    start_time = time.perf_counter() - started
    lines = [f"| model ({rows:,} rows) | first scoring (workers start, build) | Spark `mapInPandas` | "
             "`predict(X, threads=2)` | ratio Spark ÷ 2 threads | equal to `predict` bit for bit (10⁵ rows, "
             "one partition) |", "|---|---|---|---|---|---|"]
    try:
        for label, net in nets.items():
            x = np.random.default_rng(1).normal(size=(rows, net.n_inputs)).astype(np.float32)
            predict = compile_c(net, name="bench")
            columns = [f"x{i}" for i in range(net.n_inputs)]
            frame = spark.createDataFrame(pd.DataFrame(x, columns=columns)).repartition(2).cache()
            frame.count()

            def run():
                score_spark(frame, net, name="bench").write.format("noop").mode("overwrite").save()

            first = _timed(run)
            ordered = spark.createDataFrame(pd.DataFrame(x[:100_000], columns=columns)).coalesce(1)
            equal = np.array_equal(score_spark(ordered, net, name="bench").toPandas().to_numpy(),
                                   predict(x[:100_000]))
            samples = [(_timed(run), _timed(lambda: predict(x, threads=2))) for _ in range(rounds)]
            spark_time, local = (statistics.median(column) for column in zip(*samples))
            ratio = statistics.median(local / s for s, local in samples)
            lines.append(f"| {label} | {first:.1f} s | {rows / spark_time / 1e6:.1f} M rows/s | "
                         f"{rows / local / 1e6:.1f} M rows/s | {ratio:.2f}× | {'yes' if equal else '**no**'} |")
            frame.unpersist()
    finally:
        spark.stop()
    return [f"SparkSession start (`local[2]`): {start_time:.1f} s.", "", *lines]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument("--spark", action="store_true", help="also time Spark's mapInPandas (needs pyspark, Java)")
    parser.add_argument("--out", default=str(HERE / "DISTRIBUTED.md"))
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--models", default="seed,mid,cls", help="comma-separated: seed, mid, cls")
    parser.add_argument("--seed-rows", default="10000000,100000000",
                        help="comma-separated larger row counts for seed ('' for none): its 10^6 rows take "
                             "less than Dask's round trip")
    args = parser.parse_args()
    rounds, chunk_counts = (3, [2, 8]) if args.quick else (7, [2, 8, 32])
    os.environ.setdefault("MLPCODEGEN_CACHE", tempfile.mkdtemp(prefix="mlpcodegen-distributed-"))
    wanted = args.models.split(",")
    nets = {label: net for label, net in models().items() if label.split()[0] in wanted}
    for net in nets.values():
        compile_c(net, name="bench")  # built once here: the workers load it from the shared cache
    load_before = os.getloadavg()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    runs = [(label, net, args.rows, chunk_counts, len(PATHS)) for label, net in nets.items()]
    # larger inputs: on workers and gathered only (from the client would put GBs in the graph)
    runs += [(label, net, int(rows), [2, 8], 2) for label, net in nets.items() if label.startswith("seed")
             for rows in filter(None, args.seed_rows.split(","))]
    dask_lines, cluster_start = dask_table(runs, rounds)
    print("\n".join(dask_lines), flush=True)  # before Spark, which takes minutes
    spark_lines = spark_table(nets, args.rows, rounds) if args.spark else \
        ["Not run (`--spark` not given)."]
    load_after = os.getloadavg()
    command = "python bench/scale_out.py" + " --quick" * args.quick + " --spark" * args.spark
    text = "\n".join([
        "# Scoring beyond one process: Dask (and Spark)",
        "",
        f"`{command}` ({started}; {os.cpu_count()} CPUs; load average before {load_before[0]:.2f}, after "
        f"{load_after[0]:.2f} with this benchmark's own work: the machine "
        f"{'was shared with other work' if load_before[0] > 0.5 else 'was otherwise idle'}).",
        "",
        "## Dask, a local cluster of 2 worker processes of 1 thread each",
        "",
        f"`score_dask(X, net)` against `predict(X, threads=2)` in one process; medians of {rounds} rounds, "
        "ratios within each round (Dask throughput ÷ 2-thread throughput).  *on workers*: the rows were made "
        "on the workers and the outputs stay there (`persist` + `wait`); *gathered*: outputs brought to the "
        "client (`compute`); *from the client*: a NumPy array wrapped by `da.from_array` (rows travel to the "
        "workers and back).  Every Dask result was checked equal bit for bit to `predict`.",
        "",
        *dask_lines,
        "",
        cluster_start,
        "",
        "## Spark `mapInPandas` (`local[2]`)",
        "",
        *spark_lines,
        "",
    ])
    Path(args.out).write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
