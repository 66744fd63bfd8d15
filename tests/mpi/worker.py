"""One rank of the MPI tests (tests/test_mpi.py runs it under mpiexec -n N).

    worker.py OUT_DIR SCENARIO...

For each scenario in turn (on the same communicator: a failure must leave it usable), every rank
writes OUT_DIR/{scenario}_rank{r}.npz: its flat weights and history (training cases), or the
exception it raised (fault scenarios); the test compares them with single-process training."""
import json
import os
import sys

import numpy as np
from mpi4py import MPI

import fastae
from fastae import distributed

comm = MPI.COMM_WORLD
rank = comm.Get_rank()
out, scenarios = sys.argv[1], sys.argv[2:]

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from mpi_cases import CASES, data_of, fit, make, targets_of  # noqa: E402  (shared with the test)


def write(scenario, **fields):
    np.savez(os.path.join(out, f"{scenario}_rank{rank}.npz"), **fields)


def error_fields(exc):
    return {"error_type": type(exc).__name__, "error": str(exc)}


def run(scenario):
    if scenario in CASES:
        case = CASES[scenario]
        X, w, X_val = data_of(case)
        y, y_val = targets_of(case)
        kwargs = dict(sample_weight=None if w is None else distributed.shard(w, comm))
        if X_val is not None:
            val = distributed.shard(X_val, comm)
            kwargs["validation_data"] = val if y_val is None else (val, distributed.shard(y_val, comm))
        if y is not None:
            kwargs["y"] = distributed.shard(y, comm)
        est = fit(make(case), case, distributed.shard(X, comm), comm=comm, **kwargs)
        write(scenario, params=est._model.get_params(), history=json.dumps(est.history_), stop=est.stop_reason_)
    elif scenario.startswith("fault_"):
        case = CASES["split_sparse" if scenario == "fault_nan_sparse" else "plain"]
        X, _, _ = data_of(case)
        params = dict(case["params"], epochs=3)
        X_mine = np.array(distributed.shard(X, comm))
        callbacks = None
        if scenario in ("fault_nan", "fault_nan_sparse") and rank == 1:
            X_mine[5, 3] = np.nan  # found by the engine as the first epoch reads the row
        if scenario == "fault_callback" and rank == comm.Get_size() - 1:
            def callbacks_raise(epoch, logs):
                if epoch == 1:
                    raise RuntimeError("callback failed on purpose")
            callbacks = [callbacks_raise]
        if scenario == "fault_shape" and rank == 1:
            params["hidden_layer_sizes"] = (7, 3)  # a different network on one rank
        if scenario == "fault_param" and rank == 0:
            params["batch_size"] = 0  # refused before any collective
        if scenario == "fault_width" and rank == 1:
            X_mine = X_mine[:, :-1]
        est = fastae.Autoencoder(**params, callbacks=callbacks)
        try:
            est.fit(X_mine, comm=comm)
            write(scenario, error_type="", error="", fitted=hasattr(est, "_model"))
        except Exception as exc:  # noqa: BLE001 - recorded for the test
            write(scenario, fitted=getattr(est, "_model", None) is not None, **error_fields(exc))
    else:
        raise SystemExit(f"unknown scenario {scenario}")


for name in scenarios:
    run(name)
