"""Scoring Dask collections on a local cluster of two worker processes
(mlpcodegen.runtime.distributed): the outputs equal the single-process predictor bit for
bit, each worker builds once, two workers building the same network at once both load
a complete library, and bad data gets the package's errors before anything runs.
Spark's per-batch function is plain pandas and tested here; Spark itself runs in
bench/scale_out.py only (a session start costs 9-45 s: see bench/DISTRIBUTED.md)."""
from __future__ import annotations

import ast
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import dask.array as da
import dask.dataframe as dd
from distributed import Client, LocalCluster

from mlpcodegen.core.errors import UnsupportedError, ValidationError
from mlpcodegen.core.ir import Network
from mlpcodegen.runtime import compile_c, load
from mlpcodegen.runtime import distributed as dist
from mlpcodegen.runtime.cache import cache_folder
from mlpcodegen.runtime.cffi_build import _intact
from mlpcodegen.runtime.native import SPLIT_ROWS
from nets import dense_chain


def small_net(seed: int, widths=(5, 8, 3), activations=("tanh", "softmax")) -> Network:
    return dense_chain(widths, activations, seed, names="dense_{i}")


NET = small_net(7)


def rows(n: int, width: int = 5, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, width)).astype(np.float32)


@pytest.fixture(scope="module")
def client():
    """Two worker processes of one thread each; they inherit the session's private cache."""
    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None,
                      silence_logs=40) as cluster, Client(cluster) as connected:
        yield connected


def _loaded_on_workers(client) -> dict:
    return client.run(lambda: {key: id(found) for key, found in dist._PREDICTORS.items()})


def test_dask_array_equals_predict_bit_for_bit_and_each_worker_builds_once(client):
    x = rows(3000)
    data = da.from_array(x, chunks=(700, 3))  # unaligned rows, split columns: both get fixed
    result = dist.score_dask(data, NET)
    assert result.shape == (3000, 3) and result.dtype == np.float32
    assert all(size % SPLIT_ROWS == 0 for size in result.chunks[0][:-1]) and len(result.chunks[0]) == 5
    expected = compile_c(NET)(x)
    assert np.array_equal(result.compute(), expected)
    first = _loaded_on_workers(client)
    assert np.array_equal(dist.score_dask(data, NET).compute(), expected)
    assert _loaded_on_workers(client) == first  # the same predictor objects: built once per worker
    key = dist.scoring(NET).key
    assert sum(key in loaded for loaded in first.values()) == 2  # both workers scored


def test_dask_dataframe_keeps_index_and_partitions(client):
    x = rows(4 * 640, seed=1)
    frame = pd.DataFrame(x, columns=list("abcde"), index=pd.RangeIndex(1000, 1000 + len(x)))
    data = dd.from_pandas(frame, npartitions=4, sort=False)  # 640-row partitions: whole blocks
    result = dist.score_dask(data, NET, columns=["p0", "p1", "p2"])
    assert list(result.columns) == ["p0", "p1", "p2"] and result.npartitions == 4
    scored = result.compute()
    assert scored.index.equals(frame.index)
    assert np.array_equal(scored.to_numpy(), compile_c(NET)(x))


def test_dataframe_partitions_of_any_length_equal_predict_on_each(client):
    """The C batch's tail rows may differ from whole blocks in the last bits, so rows of a
    partition that does not start at a multiple of SPLIT_ROWS equal predict on that partition."""
    x = rows(1000, seed=2)
    data = dd.from_pandas(pd.DataFrame(x, columns=list("abcde")), npartitions=3, sort=False)
    scored = dist.score_dask(data, NET).compute().to_numpy()
    predict = compile_c(NET)
    bounds = np.cumsum([0, *data.map_partitions(len).compute()])
    expected = np.concatenate([predict(x[a:b]) for a, b in zip(bounds, bounds[1:])])
    assert np.array_equal(scored, expected)


def test_the_numpy_target_in_float64(client):
    x = rows(900, seed=3).astype(np.float64)
    result = dist.score_dask(da.from_array(x, chunks=(256, 5)), NET, target="numpy", dtype="float64")
    assert np.array_equal(result.compute(), load(NET, "numpy", dtype="float64")(x))


def test_rows_of_unknown_counts_are_scored_as_they_come():
    """A DataFrame's array (row counts unknown until computed) cannot be aligned: scored per block."""
    x = rows(500, seed=7).astype(np.float64)
    data = dd.from_pandas(pd.DataFrame(x, columns=list("abcde")), npartitions=2, sort=False).to_dask_array()
    result = dist.score_dask(data, NET, target="numpy", dtype="float64")
    assert np.array_equal(result.compute(scheduler="sync"), load(NET, "numpy", dtype="float64")(x))


def test_two_networks_in_one_graph_keep_their_own_outputs(client):
    """The task names carry the network's digest: no two scorings share a key."""
    import dask

    x = rows(500, seed=6).astype(np.float64)
    data = da.from_array(x, chunks=(250, 5))
    other = small_net(8)
    mine, theirs = dask.compute(dist.score_dask(data, NET, target="numpy", dtype="float64"),
                                dist.score_dask(data, other, target="numpy", dtype="float64"))
    assert np.array_equal(mine, load(NET, "numpy", dtype="float64")(x))
    assert np.array_equal(theirs, load(other, "numpy", dtype="float64")(x))


def test_two_workers_building_the_same_network_at_once(client, tmp_path):
    """Both compile the same new network at the same moment into the shared cache: each
    loads a complete library, and the cache ends with one intact library, no leftovers."""
    net = small_net(11, (5, 3), ("softmax",))  # no other test builds it: new to this session's cache
    spec = dist.scoring(net)
    x = rows(200, seed=4)

    def build_together(folder=str(tmp_path)):
        Path(folder, str(os.getpid())).touch()
        deadline = time.monotonic() + 20
        while len(os.listdir(folder)) < 2 and time.monotonic() < deadline:  # rendezvous
            time.sleep(0.01)
        predictor = spec.predictor()
        return predictor.library, spec.score(x).tobytes()

    built = client.run(build_together)
    assert len(built) == 2 and len({library for library, _ in built.values()}) == 1
    assert {outputs for _, outputs in built.values()} == {compile_c(net)(x).tobytes()}
    library = Path(next(iter(built.values()))[0])
    assert _intact(library)
    siblings = [p.name for p in cache_folder("cffi").iterdir() if p.name.startswith(library.name.split(".")[0])]
    assert sorted(siblings) == sorted([library.name, library.name + ".sha256"])


def test_wrong_number_of_columns_is_a_clear_error_before_anything_runs():
    with pytest.raises(ValidationError, match=r"the data has 4 columns, the network .* takes 5 inputs"):
        dist.score_dask(da.zeros((100, 4), chunks=50), NET)
    frame = dd.from_pandas(pd.DataFrame(rows(10)[:, :4], columns=list("abcd")), npartitions=1)
    with pytest.raises(ValidationError, match="has 4 columns"):
        dist.score_dask(frame, NET)
    text = pd.DataFrame({**{c: np.zeros(3) for c in "abcd"}, "e": ["x", "y", "z"]})
    with pytest.raises(ValidationError, match="column.*'e'"):
        dist.score_dask(dd.from_pandas(text, npartitions=1), NET)
    with pytest.raises(ValidationError, match="2-D"):
        dist.score_dask(da.zeros(5, chunks=5), NET)


def test_what_cannot_be_scored_or_shipped_is_named():
    with pytest.raises(UnsupportedError, match="Dask array or a Dask DataFrame, not a ndarray"):
        dist.score_dask(rows(3), NET)
    with pytest.raises(UnsupportedError, match="pass the network"):
        dist.score_dask(da.zeros((4, 5), chunks=2), object())
    with pytest.raises(UnsupportedError, match="no run option"):
        dist.scoring(NET, bogus=1)
    with pytest.raises(UnsupportedError, match="dtypes"):
        dist.scoring(NET, dtype="float16")
    with pytest.raises(ValidationError, match="columns= must be 3 distinct names"):
        dist.score_dask(dd.from_pandas(pd.DataFrame(rows(4), columns=list("abcde")), npartitions=1), NET,
                        columns=["a", "a", "b"])


def test_a_predictor_exposing_its_network_is_accepted():
    class Holder:
        network = NET

    assert dist.scoring(Holder()).key == dist.scoring(NET).key


def test_a_compiled_predictor_is_scored_as_it_was_compiled(client):
    """compile_c's predictor carries its recipe: the workers build the same dtype and
    options, and a call contradicting them is refused before anything runs."""
    predictor = compile_c(NET, dtype="float64", name="sixty_four", math="libm")
    assert predictor.recipe["dtype"] == "float64" and predictor.recipe["network"] is not None
    x = rows(300).astype(np.float64)
    result = dist.score_dask(da.from_array(x, chunks=(128, 5)), predictor).compute()
    assert result.dtype == np.float64 and np.array_equal(result, predictor(x))
    with pytest.raises(UnsupportedError, match="compiled with dtype='float64'"):
        dist.scoring(predictor, dtype="float32")
    with pytest.raises(UnsupportedError, match="compiled with math='libm'"):
        dist.scoring(predictor, math="fast")


def test_the_spark_batch_function_is_plain_pandas():
    """Batches of any length (Arrow's are 10,000 rows) are scored in whole blocks: the
    outputs equal predict over the partition bit for bit."""
    x = rows(1000, seed=5)
    batches = dist.SparkBatches(dist.scoring(NET), ("y0", "y1", "y2"))
    frames = [pd.DataFrame(x[a:b], columns=list("abcde")) for a, b in ((0, 100), (100, 130), (130, 1000))]
    out = list(batches(iter(frames)))
    assert [len(f) for f in out] == [64, 64, 832, 40]
    assert all(list(f.columns) == ["y0", "y1", "y2"] for f in out)
    assert np.array_equal(np.concatenate([f.to_numpy() for f in out]), compile_c(NET)(x))
    with pytest.raises(ValidationError, match="has 4 columns"):
        list(batches(iter([pd.DataFrame(x[:, :4])])))


def test_dask_and_spark_are_not_imported_with_the_runtime():
    tree = ast.parse(Path(dist.__file__).read_text(encoding="utf-8"))
    top = {alias.name.split(".")[0] for node in tree.body if isinstance(node, ast.Import) for alias in node.names}
    top |= {(node.module or "").split(".")[0] for node in tree.body if isinstance(node, ast.ImportFrom)}
    assert not top & {"dask", "distributed", "pyspark", "pandas"}
