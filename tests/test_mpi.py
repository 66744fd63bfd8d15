"""Data-parallel training over MPI (fastae.distributed), on loopback: tests/mpi/worker.py runs under
``mpiexec -n 2`` and ``-n 3`` (uneven shards) and every rank's weights are compared with this
process's single-process training on the same data (float32 tolerance: only the order of the
gradient sums differs); a failing rank must stop every rank with its error, never hang.

Skipped without mpi4py or an mpiexec (``pip install "fastae[mpi]"`` brings both)."""
import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("mpi4py")

from mpi_cases import CASES, data_of, fit, make, targets_of  # noqa: E402

import fastae  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "mpi", "worker.py")
MPIEXEC = shutil.which("mpiexec") or shutil.which("mpiexec", path=os.path.dirname(sys.executable))
if MPIEXEC is None:
    pytest.skip("no mpiexec on PATH or beside the interpreter", allow_module_level=True)

# Weights after two or three epochs differ from one process's only by float summation order.
ATOL = 2e-6


FAULTS = {  # scenario: (exception type on every rank, words in every rank's message)
    "fault_nan": ("ValueError", "NaN"),
    "fault_nan_sparse": ("ValueError", "NaN"),  # found between the two phases of a sparsity step
    "fault_callback": ("RuntimeError", "callback failed on purpose"),
    "fault_shape": ("ValueError", "different networks"),
    "fault_param": ("ValueError", "batch_size"),
    "fault_width": ("ValueError", "features"),
}


def run_ranks(n, scenarios, out, timeout=300):
    """Runs the worker on n ranks, the scenarios one after another on one communicator; returns
    {scenario: [each rank's record]}. A hang fails at the timeout."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(fastae.__path__[0]),
                                                       os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([MPIEXEC, "-n", str(n), sys.executable, WORKER, str(out), *scenarios], env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    records = {}
    for scenario in scenarios:
        records[scenario] = []
        for r in range(n):
            with np.load(out / f"{scenario}_rank{r}.npz") as f:
                records[scenario].append({k: f[k] for k in f.files})
    return records


@pytest.fixture(scope="module", params=[2, 3], ids=lambda n: f"{n}ranks")
def ranks(request, tmp_path_factory):
    """One mpiexec per rank count: the faults first, then the training cases (which so also show
    that the communicator is still usable after every kind of failure)."""
    n = request.param
    return n, run_ranks(n, [*FAULTS, *sorted(CASES)], tmp_path_factory.mktemp(f"mpi{n}"))


def single_process(case, rows=None):
    X, w, X_val = data_of(case)
    y, y_val = targets_of(case)
    kwargs = {} if X_val is None else {"validation_data": X_val if y_val is None else (X_val, y_val)}
    rows = slice(None) if rows is None else rows
    return fit(make(case), case, X[rows], None if y is None else y[rows],
               sample_weight=None if w is None else w[rows], **kwargs)


@pytest.mark.parametrize("scenario", sorted(CASES))
def test_ranks_train_as_one_process(scenario, ranks):
    n, runs = ranks
    ref = single_process(CASES[scenario])
    records = runs[scenario]
    for r, rec in enumerate(records):  # every rank holds the same weights, bit for bit
        np.testing.assert_array_equal(rec["params"], records[0]["params"], err_msg=f"rank {r} of {n}")
    np.testing.assert_allclose(records[0]["params"], ref._model.get_params(), rtol=0, atol=ATOL)
    other = single_process(CASES[scenario], rows=slice(0, -1))
    assert np.abs(other._model.get_params() - ref._model.get_params()).max() > 100 * ATOL  # one row less shows
    history = json.loads(str(records[0]["history"]))
    assert str(records[0]["stop"]) == ref.stop_reason_
    assert len(history["loss"]) == len(ref.history_["loss"])
    for key in ("loss", "val_loss", "lr"):
        if key in ref.history_:
            np.testing.assert_allclose(history[key], ref.history_[key], rtol=1e-5, err_msg=key)


@pytest.mark.parametrize("scenario", sorted(FAULTS))
def test_a_failing_rank_stops_every_rank(scenario, ranks):
    n, runs = ranks
    kind, words = FAULTS[scenario]
    for r, rec in enumerate(runs[scenario]):
        assert str(rec["error_type"]) == kind, (r, rec["error_type"], rec["error"])
        assert words in str(rec["error"]), (r, str(rec["error"]))


def test_cpp_host_trains_data_parallel(tmp_path):
    """examples/cpp/mpi_train (TrainOptions::processes with MPI_Allreduce), built beside fastae with
    add_subdirectory when CMake finds MPI, on 2 ranks: the model rank 0 saves equals Python's
    single-process training of the same file."""
    import textwrap
    here = os.path.dirname(sys.executable)
    cmake = shutil.which("cmake", path=here + os.pathsep + os.environ.get("PATH", ""))
    mpicxx = shutil.which("mpicxx", path=here + os.pathsep + os.environ.get("PATH", ""))
    if cmake is None or mpicxx is None:
        pytest.skip("needs cmake and an MPI C++ compiler wrapper (mpicxx)")
    repo = os.path.dirname(HERE)
    host = pathlib.Path(repo, "build", "pytest-mpi-host")  # a fixed source folder for the kept build
    host.mkdir(parents=True, exist_ok=True)
    (host / "CMakeLists.txt").write_text(textwrap.dedent(f"""
        cmake_minimum_required(VERSION 3.18)
        project(mpi_host LANGUAGES CXX)
        add_subdirectory("{repo}" fastae)
        add_subdirectory("{repo}/examples/cpp/mpi_train" mpi_train)
    """))
    build = os.path.join(repo, "build", "pytest-mpi-example")  # kept: the library compiles once
    eigen = [p for p in sys.path if os.path.isdir(os.path.join(p, "cmeel.prefix"))]
    ninja = shutil.which("ninja", path=here + os.pathsep + os.environ.get("PATH", ""))
    configure = [cmake, "-S", str(host), "-B", build, "-DCMAKE_BUILD_TYPE=Release", "-DFASTAE_BUILD_TESTS=OFF",
                 "-DFASTAE_INSTALL=OFF", f"-DMPI_CXX_COMPILER={mpicxx}", f"-DCMAKE_PREFIX_PATH={';'.join(eigen)}"]
    if ninja and not os.path.exists(os.path.join(build, "CMakeCache.txt")):
        configure += ["-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={ninja}"]
    for cmd in (configure, [cmake, "--build", build, "--parallel", "2"]):
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    exe = os.path.join(build, "mpi_train", "fastae_mpi_train")
    assert os.path.exists(exe), "CMake found MPI but did not build fastae_mpi_train"
    X, _, _ = data_of(CASES["plain"])
    csv = tmp_path / "x.csv"
    np.savetxt(csv, X, delimiter=",", fmt="%.9g")
    X = np.loadtxt(csv, delimiter=",", dtype=np.float32)  # exactly the values the C++ host reads
    model = tmp_path / "m.fae"
    out = subprocess.run([MPIEXEC, "-n", "2", exe, str(csv), str(model), "--hidden", "16", "4", "--epochs", "2",
                          "--batch-size", "32", "--seed", "7"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    ref = fastae.Autoencoder(hidden_layer_sizes=(16, 4), epochs=2, batch_size=32, random_state=7, n_threads=1,
                             loss="bce", output_activation="sigmoid").fit(X)
    got = fastae.load(model)
    np.testing.assert_allclose(got._model.get_params(), ref._model.get_params(), rtol=0, atol=ATOL)
