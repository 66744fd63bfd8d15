"""A loop of small partial_fit calls, the streaming use: each call is a new training session.

    python benchmarks/partial_fit_loop.py [--threads 2] [--calls 20] [--rows 2048] [--repeats 3]

Times `calls` partial_fit calls of `rows` MNIST rows each (batch 256: rows / 256 steps a call) on
the tutorial model, after one untimed call, and prints the median over `repeats` loops. Without
../shared/data/mnist.npz, synthetic rows of MNIST's shape and sparsity.
"""

import argparse
import os
import statistics
import time

import numpy as np

import fastae

HERE = os.path.dirname(os.path.abspath(__file__))
MNIST = os.path.join(HERE, "..", "..", "shared", "data", "mnist.npz")


def load(n):
    if os.path.exists(MNIST):
        with np.load(MNIST) as d:
            return (d["x_train"].reshape(-1, 784)[:n] / np.float32(255)).astype(np.float32)
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(n, 784)).astype(np.float32)
    x[rng.uniform(size=x.shape) < 0.81] = 0.0
    return x


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--calls", type=int, default=20)
    ap.add_argument("--rows", type=int, default=2048)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    x = load(args.calls * args.rows)
    times = []
    for _ in range(args.repeats):
        ae = fastae.Autoencoder(hidden_layer_sizes=(64,), batch_size=256, n_threads=args.threads, random_state=0)
        ae.partial_fit(x[: args.rows])
        start = time.perf_counter()
        for i in range(0, len(x), args.rows):
            ae.partial_fit(x[i : i + args.rows])
        times.append(time.perf_counter() - start)
    print(f"{args.calls} partial_fit calls of {args.rows} rows, {args.threads} thread(s): "
          f"median {1e3 * statistics.median(times):.1f} ms (runs: {', '.join(f'{1e3 * t:.1f}' for t in times)})")


if __name__ == "__main__":
    main()
