"""fastae's supervised models beside scikit-learn's, encoder transfer, and choose_code_size.

    python benchmarks/mlp_mnist.py [--data ../shared/data/mnist.npz] [--epochs 10] [--threads 1 2]
                                   [--parts classifier regressor transfer code_size]

- classifier: MNIST (60,000 train / 10,000 test, pixels / 255), hidden (100,) relu, Adam 1e-3,
  batch 200, the same epochs, no penalty, no early stopping: fastae.MLPClassifier and
  sklearn.neural_network.MLPClassifier side by side in one run, at each thread count (scikit-learn's
  BLAS limited to it with threadpoolctl): test accuracy, seconds per epoch, the speed ratio.
- regressor: scikit-learn's bundled diabetes data (442 x 10, no download), standardized, the
  first 330 rows to train and the rest to test, hidden (100,), batch 32, 200 epochs: R^2 and time.
- transfer: a denoising autoencoder 784-256-784 (masking 0.5, 20 epochs) trained on all 60,000
  images; then 1,000 labelled images: classifiers on its frozen encoder beside the same networks
  trained from scratch on the 1,000 (three seeds); test accuracy.
- code_size: choose_code_size on MNIST (20% held out), candidates 2..128, the table.

Every figure is measured in this run; the machine, the thread count and the load are printed.
"""

import argparse
import os
import platform
import sys
import time
import warnings

import numpy as np

import fastae


def load_mnist(path):
    with np.load(path) as d:
        X = d["x_train"].reshape(-1, 784).astype(np.float32) / np.float32(255)
        Xt = d["x_test"].reshape(-1, 784).astype(np.float32) / np.float32(255)
        return X, d["y_train"].astype(np.int64), Xt, d["y_test"].astype(np.int64)


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def classifier(X, y, Xt, yt, epochs, threads):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits

    print(f"\n## MLPClassifier on MNIST: hidden (100,) relu, adam 1e-3, batch 200, {epochs} epochs")
    print("| threads | fastae acc | fastae s/epoch | sklearn acc | sklearn s/epoch | speed ratio |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for t in threads:
        ours, ours_s = timed(lambda t=t: fastae.MLPClassifier(hidden_layer_sizes=(100,), batch_size=200, epochs=epochs,
                                                              random_state=0, n_threads=t).fit(X, y))
        with threadpool_limits(limits=t), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            theirs, theirs_s = timed(lambda: MLPClassifier(hidden_layer_sizes=(100,), batch_size=200, max_iter=epochs,
                                                           alpha=0.0, tol=0.0, n_iter_no_change=10 ** 6,
                                                           random_state=0).fit(X, y))
        print(f"| {t} | {ours.score(Xt, yt):.4f} | {ours_s / epochs:.3f} | {theirs.score(Xt, yt):.4f} | "
              f"{theirs_s / epochs:.3f} | {theirs_s / ours_s:.2f}x |", flush=True)


def regressor(threads):
    from sklearn.datasets import load_diabetes
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPRegressor
    from threadpoolctl import threadpool_limits

    X, y = load_diabetes(return_X_y=True)
    X = ((X - X.mean(axis=0)) / X.std(axis=0)).astype(np.float32)
    y = (y - y.mean()) / y.std()
    Xa, ya, Xb, yb = X[:330], y[:330], X[330:], y[330:]
    epochs = 200
    print(f"\n## MLPRegressor on diabetes (330 train / 112 test): hidden (100,) relu, adam 1e-3, batch 32, "
          f"{epochs} epochs")
    print("| threads | fastae R^2 | fastae s | sklearn R^2 | sklearn s | speed ratio |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for t in threads:
        ours, ours_s = timed(lambda t=t: fastae.MLPRegressor(hidden_layer_sizes=(100,), batch_size=32, epochs=epochs,
                                                             random_state=0, n_threads=t).fit(Xa, ya))
        with threadpool_limits(limits=t), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            theirs, theirs_s = timed(lambda: MLPRegressor(hidden_layer_sizes=(100,), batch_size=32, max_iter=epochs,
                                                          alpha=0.0, tol=0.0, n_iter_no_change=10 ** 6,
                                                          random_state=0).fit(Xa, ya))
        print(f"| {t} | {ours.score(Xb, yb):.4f} | {ours_s:.3f} | {theirs.score(Xb, yb):.4f} | {theirs_s:.3f} | "
              f"{theirs_s / ours_s:.2f}x |", flush=True)


def transfer(X, y, Xt, yt, n_labels=1000, seeds=(0, 1, 2)):
    """A denoising autoencoder (784-256 relu, masking noise 0.5, 20 epochs) on all the images;
    then, on n_labels labelled images, MLPClassifier(encoder=ae, hidden_layer_sizes=(64,)) (the
    encoder frozen, a 64-unit layer and the softmax trained) beside the same network, 784-256-64-10,
    trained from scratch, and the linear read-out of the frozen codes beside 784-256-10 from
    scratch. Each seed draws other labelled images and other initial weights."""
    print(f"\n## Encoder transfer: autoencoder on all {len(X)} images, classifiers on {n_labels} labels")
    common = dict(batch_size=32, epochs=200, early_stopping=True, validation_split=0.1, patience=10)
    rows = {"frozen 784-256 (pretrained) -> 64 relu -> softmax 10": [],
            "784-256-64-10 from scratch": [],
            "frozen 784-256 (pretrained) -> softmax 10": [],
            "784-256-10 from scratch": []}
    for seed in seeds:
        ae = fastae.Autoencoder(hidden_layer_sizes=(256,), noise="masking", noise_level=0.5, epochs=20,
                                random_state=seed).fit(X)
        idx = np.random.default_rng(seed).permutation(len(X))[:n_labels]
        kw = dict(common, random_state=seed)
        fits = [fastae.MLPClassifier(encoder=ae, hidden_layer_sizes=(64,), **kw),
                fastae.MLPClassifier(hidden_layer_sizes=(256, 64), **kw),
                fastae.MLPClassifier(encoder=ae, hidden_layer_sizes=(), **kw),
                fastae.MLPClassifier(hidden_layer_sizes=(256,), **kw)]
        for name, clf in zip(rows, fits):
            rows[name].append(clf.fit(X[idx], y[idx]).score(Xt, yt))
    print("| model | " + " | ".join(f"seed {s}" for s in seeds) + " | mean |")
    print("| --- |" + " ---: |" * (len(seeds) + 1))
    for name, accs in rows.items():
        print(f"| {name} | " + " | ".join(f"{a:.4f}" for a in accs) + f" | {np.mean(accs):.4f} |")
    print("(classifiers: batch 32, up to 200 epochs, early stopping on a 10% split of the labelled images, "
          "patience 10; test accuracy on the 10,000 test images)", flush=True)


def code_size(X):
    print("\n## choose_code_size on MNIST (60,000 images, 20% held out, 5 epochs each, bce)")
    report, seconds = timed(lambda: fastae.choose_code_size(X, epochs=5, random_state=0))
    print("```")
    print(report)
    print("```")
    print(f"({seconds:.1f} s in all)", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data",
                                                   "mnist.npz"))
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--parts", nargs="+", default=["classifier", "regressor", "transfer", "code_size"])
    args = ap.parse_args()
    print(f"fastae {fastae.__version__}; {platform.processor() or platform.machine()}; "
          f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f} at start; python {sys.version.split()[0]}")
    if {"classifier", "transfer", "code_size"} & set(args.parts):
        X, y, Xt, yt = load_mnist(args.data)
    if "classifier" in args.parts:
        classifier(X, y, Xt, yt, args.epochs, args.threads)
    if "regressor" in args.parts:
        regressor(args.threads)
    if "transfer" in args.parts:
        transfer(X, y, Xt, yt)
    if "code_size" in args.parts:
        code_size(X)
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
