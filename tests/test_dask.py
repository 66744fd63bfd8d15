"""fastae.dask on a distributed.LocalCluster of 2 worker processes (loopback): a fitted model mapped
over a Dask array's blocks and a Dask DataFrame's partitions gives the in-memory results bit for
bit, and an out-of-core .npy file larger than each worker's memory limit is encoded block by block
(each worker's peak memory measured and printed). Skipped without dask and distributed."""
import os

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

from conftest import smooth_data  # noqa: E402

import fastae  # noqa: E402
import fastae.dask as fd  # noqa: E402

METHODS = ("transform", "predict", "score_samples")
# Each worker's memory limit; the out-of-core file is larger. A worker process with Dask,
# distributed and fastae imported holds about 230 MiB here before any task.
WORKER_LIMIT = 360 * 2**20


def worker_memory():
    """This worker process's peak and current resident memory, in bytes (Linux /proc)."""
    fields = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                fields[key] = int(value.split()[0]) * 1024
    return fields


@pytest.fixture(scope="module")
def client():
    if not os.path.exists("/proc/self/status"):
        pytest.skip("worker memory is read from /proc (Linux)")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       memory_limit=WORKER_LIMIT, dashboard_address=None)
    with cluster, distributed.Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def fitted():
    X = smooth_data(2500, 24, seed=3)
    est = fastae.Autoencoder(hidden_layer_sizes=(16, 6), epochs=2, random_state=0, n_threads=2).fit(X)
    return est, X


@pytest.mark.parametrize("method", METHODS)
def test_dask_array_blocks_equal_in_memory(client, fitted, method):
    est, X = fitted
    expected = getattr(est, method)(X)
    # uneven row blocks (not multiples of the engine's 256-row inference chunks) and split columns
    dX = da.from_array(X, chunks=((700, 1, 999, 800), (10, 14)))
    lazy = getattr(fd, method)(est, dX)
    assert lazy.shape == expected.shape and lazy.dtype == np.float32
    out = lazy.compute()
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("method", METHODS)
def test_dask_dataframe_partitions_equal_in_memory(client, method):
    pd = pytest.importorskip("pandas")
    dd = pytest.importorskip("dask.dataframe")
    X = smooth_data(1200, 12, seed=4)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(12)], index=np.arange(5000, 6200))
    est = fastae.Autoencoder(hidden_layer_sizes=(8, 3), epochs=2, random_state=1, n_threads=1).fit(frame)
    expected = getattr(est, method)(frame)
    out = getattr(fd, method)(est, dd.from_pandas(frame, npartitions=5)).compute()
    np.testing.assert_array_equal(np.asarray(out), expected)
    assert (out.index == frame.index).all()
    if method == "transform":
        assert list(out.columns) == list(est.get_feature_names_out())
    elif method == "predict":
        assert list(out.columns) == list(frame.columns)


def test_model_ships_as_model_file_bytes(fitted):
    est, X = fitted
    data = est.to_bytes()
    assert data[:4] == open_model_magic(est)
    again = fastae.from_bytes(data)
    np.testing.assert_array_equal(again.transform(X), est.transform(X))
    assert again.get_params()["hidden_layer_sizes"] == est.get_params()["hidden_layer_sizes"]


def open_model_magic(est, tmp=None):
    import tempfile
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "m.fae")
        est.save(path, include_optimizer_state=False)
        with open(path, "rb") as f:
            return f.read(4)


def test_non_dask_input_is_refused(fitted):
    est, X = fitted
    with pytest.raises(TypeError, match="dask"):
        fd.transform(est, X)


def test_out_of_core_array_larger_than_worker_memory(client, fitted, tmp_path):
    est, _ = fitted
    rows, d, block = 256 * 1024 + 123, 384, 4096
    path = tmp_path / "big.npy"
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, d))
    pattern = smooth_data(4096, d, seed=5)
    for a in range(0, rows, 4096):
        mm[a:a + 4096] = pattern[:min(4096, rows - a)]
    mm.flush()
    del mm
    size = os.path.getsize(path)
    assert size > WORKER_LIMIT  # 384 MiB file, 360 MiB per worker
    est = fastae.Autoencoder(hidden_layer_sizes=(32, 8), epochs=1, random_state=0, n_threads=2).fit(pattern)
    workers = sorted(client.scheduler_info()["workers"])
    X = fd.read_npy(path, block)
    codes = fd.transform(est, X).compute()
    peak = client.run(worker_memory)
    assert sorted(client.scheduler_info()["workers"]) == workers  # no worker was restarted
    expected = np.concatenate([est.transform(pattern[:min(4096, rows - a)]) for a in range(0, rows, 4096)])
    np.testing.assert_array_equal(codes, expected)
    for address, memory in peak.items():
        print(f"worker {address}: peak {memory['VmHWM'] / 2**20:.0f} MiB resident for a {size / 2**20:.0f} MiB "
              f"file (limit {WORKER_LIMIT / 2**20:.0f} MiB)")
        assert memory["VmHWM"] < size  # never held whole
