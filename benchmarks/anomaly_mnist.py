"""Anomaly detection on MNIST (issue 14): one digit is the normal class, the other nine are anomalies.

For each digit d: train on the training images of d (about 6000), score the whole test set (10000
images, about 1000 of them d) and report the ROC AUC of "d is normal" for

- fastae.AnomalyDetector() with its defaults (random_state=0),
- scikit-learn's IsolationForest (random_state=0, 100 trees),
- PCA(32) reconstruction error (the squared distance to the 32-component subspace of d's images),
- the issue's starting point: minus the per-sample BCE (the model's own score_samples) of a
  784-64-784 Autoencoder trained 20 epochs (AnomalyDetector(..., anomaly_score="model")),

on the same splits, with each method's seconds (fit + scoring the test set), and a mean row.

--diagnose adds what predict flags with contamination=0.1 and "auto", and the investigation of
docs/anomaly.md: for the same 784-64-784 network trained 5/20/50/100 epochs (and with dropout 0.2
for 20/40/80), the mean AUC of four scores of the same reconstructions: minus the BCE, minus the
input's own entropy H(x) alone (no model at all), minus (BCE - H(x)) (the Bernoulli KL divergence
between input and reconstruction) and minus the squared error, with the share of H(x) in the mean
test BCE and the squared correlation of the per-sample BCE with H(x).
--configs '[{...}, ...]' runs only that investigation, for the given Autoencoder parameter sets.

    python benchmarks/anomaly_mnist.py [--data ../shared/data/mnist.npz] [--threads N] [--diagnose]
    python benchmarks/anomaly_mnist.py --configs '[{"hidden_layer_sizes": [8], "epochs": 20}]'
"""

import argparse
import json
import time

import numpy as np
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score

from fastae import AnomalyDetector, Autoencoder


def load(path):
    with np.load(path) as d:
        x_train = d["x_train"].reshape(-1, 784).astype(np.float32) / np.float32(255)
        x_test = d["x_test"].reshape(-1, 784).astype(np.float32) / np.float32(255)
        return x_train, d["y_train"], x_test, d["y_test"]


def timed(run):
    start = time.perf_counter()
    scores = run()
    return scores, time.perf_counter() - start


def pca_error(X, x_test):
    pca = PCA(n_components=32, random_state=0).fit(X)
    return -((pca.inverse_transform(pca.transform(x_test)) - x_test) ** 2).sum(axis=1)


def bernoulli_entropy(x):
    """Per-sample mean over pixels of H(x) = -x log x - (1-x) log(1-x): the smallest BCE any
    reconstruction of x can have (0 only for pixels exactly 0 or 1)."""
    x = np.clip(x.astype(np.float64), 1e-12, 1 - 1e-12)
    return -(x * np.log(x) + (1 - x) * np.log1p(-x)).mean(axis=1)


def table(data, threads):
    x_train, y_train, x_test, y_test = data
    methods = {
        "fastae AnomalyDetector()": lambda X: AnomalyDetector(random_state=0).fit(X).score_samples(x_test),
        "IsolationForest": lambda X: IsolationForest(random_state=0, n_jobs=threads).fit(X).score_samples(x_test),
        "PCA(32) error": lambda X: pca_error(X, x_test),
        "-BCE, 784-64-784, 20 epochs (the issue's)": lambda X: AnomalyDetector(
            Autoencoder(hidden_layer_sizes=(64,), epochs=20), anomaly_score="model",
            random_state=0).fit(X).score_samples(x_test),
    }
    rows = []
    for digit in range(10):
        X = x_train[y_train == digit]
        row = {"digit": digit, "n_train": int(X.shape[0])}
        for name, run in methods.items():
            scores, seconds = timed(lambda run=run, X=X: run(X))
            row[name] = (roc_auc_score(y_test == digit, scores), seconds)
        rows.append(row)
        print(json.dumps({k: v if not isinstance(v, tuple) else [round(v[0], 4), round(v[1], 2)]
                          for k, v in row.items()}), flush=True)
    names = list(methods)
    print("\n| normal digit | train images | " + " | ".join(f"{n} AUC (s)" for n in names) + " |")
    print("|---|---|" + "---|" * len(names))
    for row in rows:
        print(f"| {row['digit']} | {row['n_train']} | " +
              " | ".join(f"{row[n][0]:.4f} ({row[n][1]:.1f})" for n in names) + " |")
    print("| **mean** | | " + " | ".join(
        f"**{np.mean([r[n][0] for r in rows]):.4f}** ({np.mean([r[n][1] for r in rows]):.1f})" for n in names) + " |")


DIAGNOSE = [{"epochs": e} for e in (5, 20, 50, 100)] + [{"epochs": e, "dropout": 0.2} for e in (20, 40, 80)]


def diagnose(data, configs):
    """Per Autoencoder configuration (its parameters; hidden_layer_sizes (64,) and random_state 0
    unless given), the mean AUC over the ten digits of each score of the same reconstructions, the
    share of H(x) in the mean test BCE and the squared correlation of the per-sample BCE with H(x)
    (both "-" for a model trained with another loss, whose reconstruction_error is not the BCE)."""
    x_train, y_train, x_test, y_test = data
    entropy = bernoulli_entropy(x_test)
    print("\nROC AUC of -H(x) alone (no model) per normal digit: " +
          ", ".join(f"{d}: {roc_auc_score(y_test == d, -entropy):.3f}" for d in range(10)))
    print("\n| Autoencoder | -BCE | -H(x) alone | -(BCE - H(x)) | -squared error | H(x) / mean BCE | "
          "corr(BCE, H(x))^2 | seconds (10 digits) |")
    print("|---|---|---|---|---|---|---|---|")
    for config in configs:
        config = {"hidden_layer_sizes": (64,), "random_state": 0, **config}
        rows, start = [], time.perf_counter()
        for digit in range(10):
            is_normal = y_test == digit
            ae = Autoencoder(**config).fit(x_train[y_train == digit])
            squared = ((ae.predict(x_test) - x_test) ** 2).mean(axis=1, dtype=np.float64)
            row = [np.nan] * 6
            row[1], row[3] = roc_auc_score(is_normal, -entropy), roc_auc_score(is_normal, -squared)
            if ae.loss_function_ == "bce":
                bce = ae.reconstruction_error(x_test).astype(np.float64)
                row[0], row[2] = roc_auc_score(is_normal, -bce), roc_auc_score(is_normal, entropy - bce)
                row[4], row[5] = entropy.mean() / bce.mean(), np.corrcoef(bce, entropy)[0, 1] ** 2
            rows.append(row)
        label = ", ".join(f"{k}={tuple(v) if isinstance(v, list) else v}" for k, v in config.items())
        means = np.mean(rows, axis=0)
        print(f"| {label} | " + " | ".join("-" if np.isnan(m) else f"{m:.4f}" for m in means) +
              f" | {time.perf_counter() - start:.0f} |", flush=True)


def thresholds(data):
    """What predict flags with contamination=0.1 and "auto" (Tukey's fence), default detector."""
    x_train, y_train, x_test, y_test = data
    flagged = {0.1: [], "auto": []}
    for digit in range(10):
        X = x_train[y_train == digit]
        for contamination, found in flagged.items():
            det = AnomalyDetector(contamination=contamination, random_state=0).fit(X)
            test = det.predict(x_test) == -1
            found.append(((det.predict(X) == -1).mean(), test[y_test == digit].mean(),
                                           test[y_test != digit].mean()))
    print("\n| contamination | training images flagged (min-max over digits) | normal test images flagged | "
          "anomalies flagged |\n|---|---|---|---|")
    for contamination, measured in flagged.items():
        rows = np.asarray(measured)
        print(f"| {contamination!r} | {rows[:, 0].mean():.3f} ({rows[:, 0].min():.3f}-{rows[:, 0].max():.3f}) | "
              f"{rows[:, 1].mean():.3f} | {rows[:, 2].mean():.3f} |", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/mnist.npz")
    parser.add_argument("--threads", type=int, default=1, help="IsolationForest's n_jobs")
    parser.add_argument("--diagnose", action="store_true", help="also the score/epochs investigation")
    parser.add_argument("--configs", help="only the investigation, for these Autoencoder parameter sets (a JSON "
                                          "list of objects, e.g. '[{\"hidden_layer_sizes\": [8], \"epochs\": 20}]')")
    args = parser.parse_args()
    data = load(args.data)
    if args.configs:
        diagnose(data, json.loads(args.configs))
        return
    table(data, args.threads)
    if args.diagnose:
        thresholds(data)
        diagnose(data, DIAGNOSE)


if __name__ == "__main__":
    main()
