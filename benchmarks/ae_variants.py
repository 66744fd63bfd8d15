"""The autoencoder variants on MNIST (issue: the autoencoder family), each beside the plain model
of the same size, epochs and seed:

- denoising: the mean squared distance between the reconstruction of a noisy test image and the
  clean image, plain against trained with the same noise;
- sparse codes (activity_l1 on a relu code, the KL sparsity penalty on a sigmoid code): mean |code|
  and the fraction of code values below 0.01, at the stated cost in clean reconstruction loss;
- every option's seconds per epoch (the engine's, median) beside the plain model's (tied weights
  beside the plain relu model, the contractive penalty beside the plain sigmoid code).

    python benchmarks/ae_variants.py [--data ../shared/data/mnist.npz] [--epochs 5] [--threads 1]
                                     [--only plain,tied_weights]
"""

import argparse
import statistics
import time

import numpy as np

from fastae import Autoencoder


def load(path):
    with np.load(path) as d:
        x_train = d["x_train"].reshape(-1, 784).astype(np.float32) / np.float32(255)
        x_test = d["x_test"].reshape(-1, 784).astype(np.float32) / np.float32(255)
    return x_train, x_test


def masked(x, fraction, seed):
    keep = np.random.default_rng(seed).uniform(size=x.shape) >= fraction
    return (x * keep).astype(np.float32)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/mnist.npz")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", default="", help="comma-separated name prefixes of the variants to run")
    args = parser.parse_args()
    x_train, x_test = load(args.data)
    base = dict(hidden_layer_sizes=(64,), loss="bce", epochs=args.epochs, batch_size=256, random_state=0,
                n_threads=args.threads)
    variants = {
        "plain": {},
        "l2=1e-5": dict(l2=1e-5),
        "dropout=0.2": dict(dropout=0.2),
        "noise=masking 0.3": dict(noise="masking", noise_level=0.3),
        "noise=gaussian 0.2": dict(noise="gaussian", noise_level=0.2),
        "activity_l1=1e-4": dict(activity_l1=1e-4),
        "plain sigmoid code": dict(activation="sigmoid"),
        "sparsity_target=0.05": dict(activation="sigmoid", sparsity_target=0.05, sparsity_weight=0.1),
        "tied_weights": dict(tied_weights=True),
        "contractive=0.1": dict(activation="sigmoid", contractive=0.1),
    }
    if args.only:
        prefixes = args.only.split(",")
        variants = {k: v for k, v in variants.items() if any(k.startswith(p) for p in prefixes)}
    noisy_test = masked(x_test, 0.3, seed=1)
    rows = []
    for name, kw in variants.items():
        start = time.perf_counter()
        ae = Autoencoder(**base, **kw).fit(x_train)
        wall = time.perf_counter() - start
        recon = ae.predict(x_test)
        codes = ae.transform(x_test)
        denoised = ae.predict(noisy_test)
        rows.append((name, statistics.median(ae.history_["seconds"]), wall,
                     float(np.mean(ae.reconstruction_error(x_test))),
                     float(np.mean((denoised - x_test) ** 2)), float(np.mean((recon - x_test) ** 2)),
                     float(np.mean(np.abs(codes))), float(np.mean(codes < 0.01))))
    print(f"MNIST 784-64-784, bce, Adam, batch 256, {args.epochs} epochs, {args.threads} thread(s), seed 0")
    print("| model | s/epoch (median) | test BCE (clean) | MSE of noisy->clean (30% masked) | MSE clean | "
          "mean abs code | codes < 0.01 |")
    print("|---|---|---|---|---|---|---|")
    for name, sec, _wall, bce, denoise, mse, mean_code, small in rows:
        print(f"| {name} | {sec:.3f} | {bce:.4f} | {denoise:.5f} | {mse:.5f} | {mean_code:.4f} | {small:.1%} |")


if __name__ == "__main__":
    main()
