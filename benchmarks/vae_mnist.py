"""fastae's VariationalAutoencoder against the same VAE in PyTorch (CPU), side by side in one process.

    python benchmarks/vae_mnist.py              # MNIST from ../shared/data/mnist.npz (required)
    python benchmarks/vae_mnist.py --epochs 2   # a smoke run

The model: 784-256-(2x32)-256-784, relu, the code layer's 64 linear outputs the means and
log-variances of 32 latent units (clamped to [-30, 20]), z = mu + exp(logvar / 2) * eps, a sigmoid
output with BCE summed over the pixels plus the KL term (beta 1), averaged over the batch; Adam
lr 1e-3, batch 256, shuffled, 10 epochs on the 60000 training images scaled to [0, 1]. Both start
from the same Glorot-uniform weights. The peer is written as a performance-aware PyTorch user writes
it: the data as one tensor, batches by index slicing of a per-epoch torch.randperm, nn.Linear
layers, binary_cross_entropy_with_logits, torch.optim.Adam, torch.set_num_threads(T).

1. The test ELBO (nats, mean over the 10000 test images, one draw of the code per image) after the
   training epochs at 2 threads, epochs alternating between the two (fastae, peer, fastae, ...).
2. Epoch time at 1 and 2 threads: from the epochs of part 1 (2 threads) and 3 more alternating
   epochs at 1 thread; medians, each epoch after a 0.3 s pause (PyTorch's OpenMP threads spin on).
Prints a table and ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
MNIST = os.path.join(HERE, "..", "..", "shared", "data", "mnist.npz")
HIDDEN, LATENT, BATCH, LR = 256, 32, 256, 1e-3


def load_mnist():
    if not os.path.exists(MNIST):
        sys.exit(f"MNIST not found at {MNIST}")
    with np.load(MNIST) as d:
        x_train = np.ascontiguousarray(d["x_train"].reshape(-1, 784), dtype=np.float32) / np.float32(255)
        x_test = np.ascontiguousarray(d["x_test"].reshape(-1, 784), dtype=np.float32) / np.float32(255)
    return x_train, x_test


def glorot_weights(seed):
    rng = np.random.default_rng(seed)
    shapes = [(784, HIDDEN), (HIDDEN, 2 * LATENT), (LATENT, HIDDEN), (HIDDEN, 784)]
    out = []
    for n_in, n_out in shapes:
        a = np.sqrt(6.0 / (n_in + n_out))
        out.append((rng.uniform(-a, a, size=(n_in, n_out)).astype(np.float32), np.zeros(n_out, np.float32)))
    return out


class TorchVAE:
    def __init__(self, torch, weights, seed):
        self.torch = torch
        torch.manual_seed(seed)
        self.layers = [torch.nn.Linear(W.shape[0], W.shape[1]) for W, _ in weights]
        with torch.no_grad():
            for layer, (W, b) in zip(self.layers, weights):
                layer.weight.copy_(torch.from_numpy(W.T.copy()))
                layer.bias.copy_(torch.from_numpy(b))
        self.opt = torch.optim.Adam([p for layer in self.layers for p in layer.parameters()], lr=LR)

    def terms(self, x):
        """Per sample: the BCE summed over the pixels and the KL term, one draw of z."""
        torch, F = self.torch, self.torch.nn.functional
        code = self.layers[1](F.relu(self.layers[0](x)))
        mu, logvar = code[:, :LATENT], code[:, LATENT:]
        v = torch.clamp(logvar, -30.0, 20.0)
        z = mu + torch.exp(v / 2) * torch.randn_like(mu)
        logits = self.layers[3](F.relu(self.layers[2](z)))
        rec = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=1)
        kl = 0.5 * (mu ** 2 + torch.exp(v) - v - 1).sum(dim=1)
        return rec, kl

    def epoch(self, x):
        torch = self.torch
        n = x.shape[0]
        order = torch.randperm(n)
        total = 0.0
        for start in range(0, n, BATCH):
            xb = x[order[start:start + BATCH]]
            self.opt.zero_grad()
            rec, kl = self.terms(xb)
            loss = (rec + kl).mean()
            loss.backward()
            self.opt.step()
            total += loss.item() * xb.shape[0]
        return total / n

    def elbo(self, x):
        with self.torch.no_grad():
            rec, kl = self.terms(x)
        return -float((rec + kl).double().mean())


def timed(fn):
    time.sleep(0.3)
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--single-thread-epochs", type=int, default=3)
    args = parser.parse_args()

    import torch

    import fastae

    x_train, x_test = load_mnist()
    weights = glorot_weights(0)
    xt = torch.from_numpy(x_train)
    xv = torch.from_numpy(x_test)

    def new_fastae(threads):
        return fastae.VariationalAutoencoder(hidden_layer_sizes=(HIDDEN, LATENT), batch_size=BATCH, learning_rate=LR,
                                             random_state=0, n_threads=threads, warm_start=True).set_weights(weights)

    results = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
               "load_before": os.getloadavg(), "torch": torch.__version__, "fastae": fastae.__version__}
    # 1. 10 epochs each at 2 threads, alternating; the test ELBO after them.
    torch.set_num_threads(2)
    ours, peer = new_fastae(2), TorchVAE(torch, weights, 0)
    times = {("fastae", 2): [], ("torch", 2): []}
    for e in range(args.epochs):
        times[("fastae", 2)].append(timed(lambda: ours.partial_fit(x_train)))
        times[("torch", 2)].append(timed(lambda: peer.epoch(xt)))
        print(f"epoch {e + 1}: fastae loss {ours.history_['loss'][-1]:.2f} "
              f"({times[('fastae', 2)][-1]:.2f} s), torch {times[('torch', 2)][-1]:.2f} s", flush=True)
    results["test_elbo"] = {"fastae": ours.elbo(x_test, random_state=0), "torch": peer.elbo(xv)}
    results["train_loss_last_epoch"] = {"fastae": ours.history_["loss"][-1]}
    # 2. epochs at 1 thread, alternating (continuing the same models).
    torch.set_num_threads(1)
    ours.set_params(n_threads=1)
    times[("fastae", 1)], times[("torch", 1)] = [], []
    for _ in range(args.single_thread_epochs):
        times[("fastae", 1)].append(timed(lambda: ours.partial_fit(x_train)))
        times[("torch", 1)].append(timed(lambda: peer.epoch(xt)))
    results["load_after"] = os.getloadavg()
    results["epoch_seconds"] = {f"{who}@{t}": {"median": statistics.median(v), "min": min(v), "max": max(v)}
                                for (who, t), v in times.items()}

    f, p = results["test_elbo"]["fastae"], results["test_elbo"]["torch"]
    print(f"\n{args.epochs} epochs, 784-256-(2x32)-256-784, BCE + KL, Adam {LR}, batch {BATCH}")
    print(f"test ELBO (nats): fastae {f:.2f}, PyTorch {p:.2f} (difference {100 * (f - p) / abs(p):+.2f}%)")
    print("| threads | fastae s/epoch (median, min-max) | PyTorch s/epoch | fastae / PyTorch |")
    print("|---|---|---|---|")
    for t in (1, 2):
        a, b = results["epoch_seconds"][f"fastae@{t}"], results["epoch_seconds"][f"torch@{t}"]
        print(f"| {t} | {a['median']:.2f} ({a['min']:.2f}-{a['max']:.2f}) | {b['median']:.2f} "
              f"({b['min']:.2f}-{b['max']:.2f}) | {a['median'] / b['median']:.2f} |")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
