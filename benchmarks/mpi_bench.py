"""Data-parallel training over MPI: steps per second and scaling efficiency of fastae (comm=) beside
PyTorch's DistributedDataParallel (gloo) on the same model, data and processes, plus the cost of
the per-step allreduce (raw mpi4py Allreduce of the flat gradient, and the same through fastae's
hook, which the engine calls from C++ under the GIL).

    mpiexec -n R python benchmarks/mpi_bench.py [--rows N] [--epochs E] [--hidden 256,64] [--no-torch]

Run it at R = 1, 2, 3 (...); rank 0 prints one JSON line per run. Efficiency at R processes is
steps/s(R) / (R * steps/s(1)) for the same global batch (each rank computes batch/R rows of a
step). One engine thread per process; set OMP/MKL threads to 1 for torch as well.
The machine this was written on has 2 cores shared with other work: results past 2 processes
measure oversubscription, not scaling."""
import argparse
import json
import os
import time

import numpy as np
from mpi4py import MPI

import fastae
from fastae import distributed


def parse():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=12288)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--hidden", default="256,64")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--no-torch", action="store_true")
    return ap.parse_args()


def data(rows, d=784, seed=0):
    """MNIST-shaped synthetic rows in [0, 1] with about 19% nonzeros (as in train_speed.py)."""
    rng = np.random.default_rng(seed)
    X = rng.random((rows, d), dtype=np.float32)
    X[X < 0.81] = 0.0
    return X


def time_allreduce(comm, n, repeats=200):
    buf = np.ones(n, np.float32)
    figures = np.ones(4)
    comm.Barrier()
    t = time.perf_counter()
    for _ in range(repeats):
        comm.Allreduce(MPI.IN_PLACE, figures, op=MPI.SUM)
        comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
    return (time.perf_counter() - t) / repeats


class TimedGroup(distributed.Group):
    """fastae's group with the time spent inside its sum (the allreduces) added up."""
    spent = 0.0
    calls = 0

    def sum(self, values, figures):
        t = time.perf_counter()
        super().sum(values, figures)
        TimedGroup.spent += time.perf_counter() - t
        TimedGroup.calls += 1


def fastae_run(comm, X_mine, hidden, batch, epochs):
    """Seconds of `epochs` epochs with comm (after a warm-up epoch), the time spent in the sums,
    their count, the last loss. comm=None: the same without a group (one process)."""
    est = fastae.Autoencoder(hidden_layer_sizes=hidden, batch_size=batch, epochs=1, random_state=0, n_threads=1,
                             loss="bce", output_activation="sigmoid")
    distributed.Group = TimedGroup  # the collective decorator builds its Group from this name
    est.fit(X_mine, comm=comm)  # warm-up epoch (allocations, the first epoch's data check)
    est.set_params(epochs=epochs, warm_start=True)
    TimedGroup.spent, TimedGroup.calls = 0.0, 0
    if comm is not None:
        comm.Barrier()
    t = time.perf_counter()
    est.fit(X_mine, comm=comm)
    return time.perf_counter() - t, TimedGroup.spent, TimedGroup.calls, est.history_["loss"][-1]


def hook_overhead(X, hidden, batch, epochs, repeats=5):
    """One process: the epoch loop with comm=COMM_WORLD (size 1: the hook, the separate reduce
    pass and two 1-rank Allreduces per step) against comm=None, alternating; medians."""
    with_comm, without = [], []
    for _ in range(repeats):
        with_comm.append(fastae_run(MPI.COMM_WORLD, X, hidden, batch, epochs)[0])
        without.append(fastae_run(None, X, hidden, batch, epochs)[0])
    return float(np.median(with_comm)), float(np.median(without))


def torch_run(comm, X_mine, sizes, batch, epochs):
    import torch
    import torch.distributed as dist
    torch.set_num_threads(1)
    size, rank = comm.Get_size(), comm.Get_rank()
    port = comm.bcast(29500 + os.getpid() % 1000 if rank == 0 else None)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=size)
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    torch.manual_seed(0)
    model = torch.nn.Sequential(*layers)
    ddp = torch.nn.parallel.DistributedDataParallel(model) if size > 1 else model
    opt = torch.optim.Adam(ddp.parameters(), lr=1e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    X = torch.from_numpy(X_mine)
    local_batch = max(1, batch // size)  # the same global batch, split across the ranks
    steps = X.shape[0] // local_batch

    def epoch(gen):
        perm = torch.randperm(X.shape[0], generator=gen)
        for s in range(steps):
            xb = X[perm[s * local_batch:(s + 1) * local_batch]]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(ddp(xb), xb)
            loss.backward()
            opt.step()
        return steps

    gen = torch.Generator().manual_seed(rank)
    epoch(gen)  # warm-up
    comm.Barrier()
    t = time.perf_counter()
    n = sum(epoch(gen) for _ in range(epochs))
    elapsed = time.perf_counter() - t
    dist.destroy_process_group()
    return elapsed, n


def main():
    args = parse()
    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    hidden = tuple(int(h) for h in args.hidden.split(","))
    X = data(args.rows)
    X_mine = np.ascontiguousarray(distributed.shard(X, comm))
    sizes = [X.shape[1], *hidden, *reversed(hidden[:-1]), X.shape[1]]
    n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    steps = -(-args.rows // args.batch) * args.epochs
    seconds, in_sum, calls, loss = fastae_run(comm, X_mine, hidden, args.batch, args.epochs)
    raw = time_allreduce(comm, n_params)
    result = {"processes": size, "model": "-".join(map(str, sizes)), "params": n_params, "rows": args.rows,
              "batch": args.batch, "epochs": args.epochs,
              "fastae_steps_per_s": steps / seconds, "fastae_seconds": seconds,
              "fastae_in_sum_ms_per_step": 1e3 * in_sum / steps, "sum_calls_per_step": calls / steps,
              "raw_allreduce_ms_per_step": 1e3 * raw, "fastae_final_loss": loss}
    if size == 1:
        with_comm, without = hook_overhead(X, hidden, args.batch, args.epochs)
        result.update(one_process_ms_per_step_with_comm=1e3 * with_comm / steps,
                      one_process_ms_per_step_without_comm=1e3 * without / steps)
    if not args.no_torch:
        try:
            t_seconds, t_steps = torch_run(comm, X_mine, sizes, args.batch, args.epochs)
            result.update(torch_ddp_steps_per_s=t_steps / t_seconds, torch_seconds=t_seconds)
        except ImportError:
            result["torch"] = "not installed"
    results = comm.gather(result)
    if rank == 0:
        # the slowest rank's figures (a step waits for every rank)
        worst = {k: (min(r[k] for r in results) if k.endswith("steps_per_s") else
                     max(r[k] for r in results) if isinstance(v, float) else v) for k, v in result.items()}
        print(json.dumps(worst))


if __name__ == "__main__":
    main()
