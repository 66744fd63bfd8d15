"""fastae against PyTorch (CPU) on the reference workloads, side by side in one process.

    pip install ".[benchmark]"                    # torch==2.13.0 (CPU), threadpoolctl
    python benchmarks/train_speed.py              # MNIST from ../shared/data when present
    python benchmarks/train_speed.py --quick      # fewer epochs, for a smoke run

Workloads: the Keras tutorial autoencoder 784 -> 64 relu -> 784 sigmoid and the deep
784-256-64-256-784, BCE, Adam lr 1e-3, batch 256, shuffled, 60000 samples (235 steps an epoch).
The peer is written as a performance-aware PyTorch user writes it: data held as a tensor, batches
by index slicing of a per-epoch permutation, nn.Sequential(Linear, ReLU, Linear),
BCEWithLogitsLoss on the logits, torch.optim.Adam, torch.set_num_threads(T). Both start from the
same initial weights. Epochs alternate between the two (fastae, peer, fastae, ...) so that noise
from a shared machine hits both alike, each after a 0.3 s pause (PyTorch's OpenMP threads spin
on after its work and would take the other's second core); figures are medians. The machine's
single-core sgemm peak is measured in the same run: the faster of torch.matmul and fastae's own
product on 2048^2 at one thread (torch's build may not use AVX-512 where the machine has it: on a
Zen 5, 93 against 201 GFLOP/s). The "GEMM limit" of an epoch is its dense-product flops over that
peak; the register-only FMA peak of fastae's widest
vectors (fastae._core.measured_fma_peak_gflops) is printed beside it.

Then fastae alone: 1 thread against T in pairs of epochs back to back, the sgemm peak measured
afresh before each pair, the speedup and the 1-thread share of the GEMM limit taken within each
pair (medians over the pairs): the figures of the train section come from medians taken minutes
apart on a machine whose speed can move by 10-40% in that time.

Then encoding (transform) of the 10000 test images at each thread count, the peak RSS of a fit,
and fastae's default n_threads against 1 thread while another process keeps a core busy.
Prints a table per section and ends with one JSON line holding every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
MNIST = os.path.join(HERE, "..", "..", "shared", "data", "mnist.npz")
MODELS = {"tutorial": (64,), "deep": (256, 64)}


def load_data(path=MNIST):
    if os.path.exists(path):
        with np.load(path) as d:
            return (d["x_train"].reshape(-1, 784), d["x_test"].reshape(-1, 784), f"MNIST ({os.path.relpath(path)})")
    # Same shape and sparsity as MNIST: 81% zeros, the rest spread over 1..255.
    rng = np.random.default_rng(0)

    def fake(n):
        x = rng.integers(1, 256, size=(n, 784), dtype=np.uint8)
        x[rng.uniform(size=x.shape) < 0.81] = 0
        return x

    return fake(60000), fake(10000), "synthetic (MNIST's shape and sparsity; MNIST not found)"


def layer_sizes(hidden, d=784):
    return [d, *hidden, *reversed(hidden[:-1]), d]


def epoch_gflop(sizes, n):
    """Matrix-product FLOPs of one epoch: forward 2*n*in*out per layer, backward dW for every
    layer and dA for every layer but the first (no input gradient)."""
    total = 0
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        total += 2 * n * a * b * (3 if i > 0 else 2)
    return total / 1e9


def sgemm_peak(torch, fastae, seconds=1.0):
    """The single-core sgemm peak: the faster of torch.matmul and fastae's product (2048^2)."""
    threads = torch.get_num_threads()
    torch_rate = torch_sgemm(torch, seconds)
    torch.set_num_threads(threads)
    fastae_rate = fastae._core.measured_sgemm_gflops(2048, seconds)
    fma = fastae._core.measured_fma_peak_gflops()
    return {"torch": torch_rate, "fastae": fastae_rate, "fma": fma, "peak": max(torch_rate, fastae_rate)}


def torch_sgemm(torch, seconds):
    torch.set_num_threads(1)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    best, end = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * 2048 ** 3 / best / 1e9


class TorchPeer:
    def __init__(self, torch, weights, lr=1e-3):
        self.torch = torch
        layers = []
        for i, (W, b) in enumerate(weights):
            lin = torch.nn.Linear(*W.shape)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(W.T.copy()))
                lin.bias.copy_(torch.from_numpy(b))
            layers.append(lin)
            if i + 1 < len(weights):
                layers.append(torch.nn.ReLU())
        self.model = torch.nn.Sequential(*layers)
        # The encoder: the first half of the Linear layers, each with its ReLU.
        self.encoder = torch.nn.Sequential(*layers[:2 * (len(weights) // 2)])
        self.opt = torch.optim.Adam(self.model.parameters(), lr=lr)
        self.loss = torch.nn.BCEWithLogitsLoss()

    def epoch(self, X, batch, gen):
        torch = self.torch
        perm = torch.randperm(X.shape[0], generator=gen)
        for s in range(0, X.shape[0], batch):
            xb = X[perm[s:s + batch]]
            self.opt.zero_grad(set_to_none=True)
            loss = self.loss(self.model(xb), xb)
            loss.backward()
            self.opt.step()

    def bce(self, X):
        with self.torch.inference_mode():
            return float(self.loss(self.model(X), X))


def glorot(sizes, seed):
    """Glorot-uniform weights and zero biases, the initial point given to both frameworks."""
    rng = np.random.default_rng(seed)
    out = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        limit = np.sqrt(6 / (a + b))
        out.append((rng.uniform(-limit, limit, size=(a, b)).astype(np.float32), np.zeros(b, np.float32)))
    return out


def summarize(times):
    return {"median": statistics.median(times), "min": min(times), "max": max(times)}


# Pause before each timed epoch (or block of calls), for both frameworks: PyTorch's OpenMP
# threads keep spinning after its work returns, and at 2 threads they hold the core the next
# timed run needs. Measured here: fastae's 2-thread epoch took 0.399 s right after PyTorch work,
# 0.366 s after a 0.05 s pause, 0.312 s after 0.2 s, and 0.316 s with no PyTorch in the process.
SETTLE_S = 0.3


def train_section(torch, fastae, x_train, x_test, model_name, threads, epochs, peak):
    hidden = MODELS[model_name]
    sizes = layer_sizes(hidden)
    n = x_train.shape[0]
    gflop = epoch_gflop(sizes, n)
    start = glorot(sizes, seed=0)
    ae = fastae.Autoencoder(hidden_layer_sizes=hidden, batch_size=256, learning_rate=1e-3, random_state=0,
                            n_threads=threads).set_weights(start)
    peer = TorchPeer(torch, start)
    torch.set_num_threads(threads)
    Xt = torch.from_numpy(x_train)
    gen = torch.Generator().manual_seed(0)
    fa, pt = [], []
    for _ in range(epochs):
        time.sleep(SETTLE_S)
        t = time.perf_counter()
        ae.partial_fit(x_train)  # one epoch; wall time includes the call's checks of the data
        fa.append(time.perf_counter() - t)
        time.sleep(SETTLE_S)
        t = time.perf_counter()
        peer.epoch(Xt, 256, gen)
        pt.append(time.perf_counter() - t)
    f, p = summarize(fa), summarize(pt)
    row = {
        "model": model_name, "layers": "-".join(map(str, sizes)), "threads": threads, "epochs": epochs,
        "fastae_s_per_epoch": f,
        # the engine's own timing of the epoch loop (what each epoch of fit(epochs=N) costs)
        "fastae_engine_s_per_epoch": summarize(ae.history_["seconds"]), "peer_s_per_epoch": p,
        "ratio": f["median"] / p["median"],
        "fastae_samples_per_s": n / f["median"], "peer_samples_per_s": n / p["median"],
        "gflop_per_epoch": gflop, "fastae_gflops": gflop / f["median"], "peer_gflops": gflop / p["median"],
        "fastae_pct_of_1core_peak": 100 * gflop / f["median"] / peak,
        "gemm_limit_s_per_epoch": gflop / peak,
        "fastae_train_bce": -ae.score(x_train), "fastae_test_bce": -ae.score(x_test),
        "peer_train_bce": peer.bce(Xt), "peer_test_bce": peer.bce(torch.from_numpy(x_test)),
    }
    return row


def scaling_section(torch, fastae, x_train, model_name, threads, pairs):
    """fastae alone, 1 thread against `threads`, in pairs of epochs taken back to back (1 thread,
    then `threads`), each pair after the sgemm peak is measured afresh (as at the start: the best
    of 1 s of torch's and of fastae's products). The ratio and the share of the GEMM limit are
    taken within each pair and their medians reported: on a machine whose speed moves from minute
    to minute, figures taken seconds apart compare what the train section's medians, taken
    minutes apart, cannot."""
    sizes = layer_sizes(MODELS[model_name])
    gflop = epoch_gflop(sizes, x_train.shape[0])
    start = glorot(sizes, seed=0)
    models = {t: fastae.Autoencoder(hidden_layer_sizes=MODELS[model_name], batch_size=256, learning_rate=1e-3,
                                    random_state=0, n_threads=t).set_weights(start) for t in (1, threads)}
    one, many, ratios, pct, peaks = [], [], [], [], []
    for _ in range(pairs):
        peak = sgemm_peak(torch, fastae)["peak"]
        times = {}
        for t, ae in models.items():
            time.sleep(SETTLE_S)
            t0 = time.perf_counter()
            ae.partial_fit(x_train)
            times[t] = time.perf_counter() - t0
        one.append(times[1])
        many.append(times[threads])
        ratios.append(times[1] / times[threads])
        pct.append(100 * gflop / times[1] / peak)
        peaks.append(peak)
    return {"model": model_name, "threads": threads, "pairs": pairs, "one_thread_s": summarize(one),
            "threads_s": summarize(many), "speedup": summarize(ratios), "pct_of_1core_peak": summarize(pct),
            "sgemm_peak_gflops": summarize(peaks)}


def encode_section(torch, fastae, x_train, x_test, threads=1, repeats=15):
    torch.set_num_threads(threads)
    ae = fastae.Autoencoder(hidden_layer_sizes=(64,), epochs=1, random_state=0, n_threads=1).fit(x_train[:2048])
    ae.set_params(n_threads=threads)
    peer = TorchPeer(torch, ae.get_weights())
    Xt = torch.from_numpy(x_test)
    fa, pt = [], []
    # Blocks of calls, alternating between the frameworks after a pause (SETTLE_S), the first
    # call of each block untimed: single calls alternating measured fastae at 2 threads at 0.79M
    # samples/s right after PyTorch's calls against 1.11M alone.
    block = 6
    for _ in range(max(1, repeats // (block - 1))):
        time.sleep(SETTLE_S)
        for i in range(block):
            t = time.perf_counter()
            codes = ae.transform(x_test)
            if i:
                fa.append(time.perf_counter() - t)
        time.sleep(SETTLE_S)
        for i in range(block):
            t = time.perf_counter()
            with torch.inference_mode():
                ref = peer.encoder(Xt)
            if i:
                pt.append(time.perf_counter() - t)
    max_diff = float(np.abs(codes - ref.numpy()).max())
    f, p = statistics.median(fa), statistics.median(pt)
    return {"n": len(x_test), "threads": threads, "fastae_samples_per_s": len(x_test) / f,
            "peer_samples_per_s": len(x_test) / p, "speedup": p / f, "max_abs_diff_vs_peer": max_diff}


# Peak RSS of the fit alone: the data is prepared first, then the kernel's peak counter
# (VmHWM) is reset through /proc/self/clear_refs, so temporaries of loading do not count.
RSS_CHILD = """
import sys, numpy as np, fastae
def status(key):
    for line in open('/proc/self/status'):
        if line.startswith(key):
            return int(line.split()[1]) / 1024
x = np.load(sys.argv[1])['x_train'].reshape(-1, 784)
scale = None
if sys.argv[2] == 'float32':
    x = x.astype(np.float32) / np.float32(255)
else:
    scale = 1 / 255
ae = fastae.Autoencoder(hidden_layer_sizes=(64,), epochs=1, random_state=0, n_threads=1, input_scale=scale)
ae.fit(x[:256])  # everything imported and initialised once
open('/proc/self/clear_refs', 'w').write('5')
before = status('VmRSS')
ae.fit(x)
print(before, status('VmHWM'), x.nbytes / 2**20)
"""


def rss_section(dtype, path=MNIST):
    if not os.path.exists(path):
        return None
    out = subprocess.run([sys.executable, "-c", RSS_CHILD, path, dtype], capture_output=True, text=True)
    if out.returncode != 0:
        return {"dtype": dtype, "error": out.stderr.strip().splitlines()[-1]}
    before, peak, data_mb = map(float, out.stdout.split())
    return {"dtype": dtype, "data_mb": data_mb, "rss_before_fit_mb": before, "peak_rss_mb": peak,
            "fit_overhead_mb": peak - before}  # peak_rss_mb: the whole process, data included


def contention_section(fastae, x_train, epochs):
    """fastae's default n_threads against n_threads=1 while another process keeps a core busy."""
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        runs = {"default": [], "1": []}
        encodes = {"default": [], "1": []}
        models = {k: fastae.Autoencoder(hidden_layer_sizes=(64,), random_state=0,
                                        n_threads=None if k == "default" else 1) for k in runs}
        for _ in range(epochs):
            for k, ae in models.items():
                t = time.perf_counter()
                ae.partial_fit(x_train)
                runs[k].append(time.perf_counter() - t)
        for _ in range(15):
            for k, ae in models.items():
                t = time.perf_counter()
                ae.transform(x_train[:10000])
                encodes[k].append(time.perf_counter() - t)
    finally:
        busy.kill()
    d, one = statistics.median(runs["default"]), statistics.median(runs["1"])
    ed, eone = statistics.median(encodes["default"]), statistics.median(encodes["1"])
    return {"default_s_per_epoch": d, "one_thread_s_per_epoch": one, "default_over_one": d / one,
            "encode_default_s": ed, "encode_one_thread_s": eone, "encode_default_over_one": ed / eone}


def fmt_row(r):
    f, p = r["fastae_s_per_epoch"], r["peer_s_per_epoch"]
    return (f"{r['model']:<9}{r['threads']:>3}  {f['median']:.3f} ({f['min']:.3f}-{f['max']:.3f}) "
            f"[{r['fastae_engine_s_per_epoch']['median']:.3f}]  "
            f"{p['median']:.3f} ({p['min']:.3f}-{p['max']:.3f})  {r['ratio']:>5.2f}x  "
            f"{r['fastae_samples_per_s']:>8.0f}  {r['fastae_gflops']:>6.1f}  {r['fastae_pct_of_1core_peak']:>5.1f}%  "
            f"{r['fastae_train_bce']:.4f}/{r['fastae_test_bce']:.4f}  "
            f"{r['peer_train_bce']:.4f}/{r['peer_test_bce']:.4f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=5, help="timed epochs per framework (tutorial model)")
    ap.add_argument("--deep-epochs", type=int, default=3, help="timed epochs per framework (deep model)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--pairs", type=int, default=7, help="pairs of epochs in the scaling section (tutorial model)")
    ap.add_argument("--deep-pairs", type=int, default=5, help="pairs of epochs in the scaling section (deep model)")
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--no-contention", action="store_true", help="skip the busy-core measurement")
    ap.add_argument("--quick", action="store_true", help="2 epochs each, tutorial model only")
    ap.add_argument("--data", default=MNIST, help="MNIST as an .npz with x_train and x_test (default: "
                    "../shared/data/mnist.npz; synthetic data of its shape and sparsity where absent)")
    args = ap.parse_args()
    if args.quick:
        args.epochs, args.deep_epochs, args.models, args.pairs = 2, 1, ["tutorial"], 2

    import torch

    import fastae

    x_train_raw, x_test_raw, source = load_data(args.data)
    x_train = x_train_raw.astype(np.float32) / np.float32(255)
    x_test = x_test_raw.astype(np.float32) / np.float32(255)
    rates = sgemm_peak(torch, fastae)
    peak = rates["peak"]
    cpus = fastae.available_cpus()
    print(f"data: {source}; {x_train.shape[0]} train, {x_test.shape[0]} test")
    print(f"machine: {platform.processor() or platform.machine()}, {cpus} CPUs available; "
          f"{fastae._core.build_info()}; torch {torch.__version__}")
    print(f"measured 1-core sgemm peak: {peak:.1f} GFLOP/s (2048^2 products: torch.matmul {rates['torch']:.1f}, "
          f"fastae {rates['fastae']:.1f}; register-only FMA peak {rates['fma']:.1f}); %peak divides by the first\n")

    rows = []
    print("model   thr  fastae s/epoch (min-max) [engine]  peer s/epoch (min-max)  ratio  samples/s  GFLOP/s  %peak  "
          "fastae train/test BCE  peer train/test BCE")
    for name in args.models:
        for threads in args.threads:
            if threads > cpus:
                continue
            epochs = args.epochs if name == "tutorial" else args.deep_epochs
            row = train_section(torch, fastae, x_train, x_test, name, threads, epochs, peak)
            rows.append(row)
            print(fmt_row(row), flush=True)

    scaling = []
    if len(args.threads) > 1 and min(args.threads) == 1:
        print("\nfastae alone, thread scaling in pairs of epochs back to back (1 thread, then T), each pair "
              "after measuring the sgemm peak afresh; medians of the pairs' figures (min-max):")
        print("model   T  pairs  1 thread s/epoch  T threads s/epoch  T over 1  1-thread %peak  sgemm peak")
        for name in args.models:
            for threads in args.threads:
                if threads == 1 or threads > cpus:
                    continue
                pairs = args.pairs if name == "tutorial" else args.deep_pairs
                sc = scaling_section(torch, fastae, x_train, name, threads, pairs)
                scaling.append(sc)
                o, m, r, q, k = (sc[key] for key in ("one_thread_s", "threads_s", "speedup", "pct_of_1core_peak",
                                                     "sgemm_peak_gflops"))
                print(f"{name:<9}{threads:>2}  {pairs:>4}  {o['median']:.3f} ({o['min']:.3f}-{o['max']:.3f})  "
                      f"{m['median']:.3f} ({m['min']:.3f}-{m['max']:.3f})  "
                      f"{r['median']:.2f}x ({r['min']:.2f}-{r['max']:.2f})  "
                      f"{q['median']:.1f}% ({q['min']:.1f}-{q['max']:.1f})  {k['median']:.0f} GFLOP/s", flush=True)

    print()
    encs = []
    for threads in args.threads:
        if threads > cpus:
            continue
        enc = encode_section(torch, fastae, x_train, x_test, threads)
        encs.append(enc)
        print(f"encode {enc['n']} test images, {threads} thread(s): "
              f"fastae {enc['fastae_samples_per_s']:.0f} samples/s, "
              f"peer {enc['peer_samples_per_s']:.0f} samples/s: {enc['speedup']:.2f}x "
              f"(max |code difference| {enc['max_abs_diff_vs_peer']:.2e})")
    enc = encs[0] if encs else None  # "encode": the 1-thread figure the target is about

    rss = [r for r in (rss_section("float32", args.data), rss_section("uint8", args.data)) if r]
    for r in rss:
        if "error" in r:
            print(f"peak RSS, {r['dtype']} data: not measured ({r['error']})")
        else:
            print(f"peak RSS of a 1-epoch fit on {r['dtype']} MNIST ({r['data_mb']:.0f} MB of data): process "
                  f"{r['peak_rss_mb']:.0f} MB, of which {r['fit_overhead_mb']:.1f} MB above the process before fit")

    cont = None
    if not args.no_contention and cpus >= 2:
        cont = contention_section(fastae, x_train, max(2, args.epochs // 2))
        print(f"other core busy: default n_threads {cont['default_s_per_epoch']:.3f} s/epoch, n_threads=1 "
              f"{cont['one_thread_s_per_epoch']:.3f} s/epoch: {cont['default_over_one']:.2f}x; encoding 10000 "
              f"images {1e3 * cont['encode_default_s']:.1f} against {1e3 * cont['encode_one_thread_s']:.1f} ms: "
              f"{cont['encode_default_over_one']:.2f}x")

    print(json.dumps({"data": source, "cpus": cpus, "sgemm_peak_gflops": peak, "sgemm_rates_gflops": rates,
                      "build": fastae._core.build_info(),
                      "torch": torch.__version__, "train": rows, "scaling": scaling, "encode": enc,
                      "encode_by_threads": encs, "rss": rss, "contention": cont}))


if __name__ == "__main__":
    main()
