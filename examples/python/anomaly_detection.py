"""Anomaly detection by reconstruction error: an AnomalyDetector fitted on one digit's images (the
normal class), then the test images of every digit scored, with the ROC AUC of "is normal", the
share of each class flagged at the threshold that `contamination` sets, and the inputs that made
the most unusual image unusual (feature_errors).

    python examples/python/anomaly_detection.py [--data mnist.npz] [--digit 0] [--epochs 40]

MNIST: an .npz with x_train/y_train/x_test/y_test. Without --data it runs on the UCI digits fastae
ships (8x8 images; about 145 training images of the normal digit).
"""

import argparse

import numpy as np

import fastae


def load(path):
    if path is None:
        X, y = fastae.load_digits()
        order = np.random.default_rng(0).permutation(len(X))
        test, train = order[:600], order[600:]
        return X[train], y[train], X[test], y[test], (8, 8)
    with np.load(path) as d:
        X, Xt = (d[k].reshape(len(d[k]), -1).astype(np.float32) / 255 for k in ("x_train", "x_test"))
        return X, d["y_train"], Xt, d["y_test"], (28, 28)


def roc_auc(scores, positive):
    """The probability that a positive sample scores above a negative one (ties count half)."""
    negatives = np.sort(scores[~positive])
    below = np.searchsorted(negatives, scores[positive], side="left")
    up_to = np.searchsorted(negatives, scores[positive], side="right")
    return float((below + 0.5 * (up_to - below)).sum() / (positive.sum() * len(negatives)))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help="an .npz with x_train, y_train, x_test, y_test (MNIST); default: embedded digits")
    ap.add_argument("--digit", type=int, default=0, help="the normal class")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--contamination", type=float, default=0.05)
    args = ap.parse_args(argv)

    X, y, X_test, y_test, shape = load(args.data)
    code = 64 if args.data else 16
    template = fastae.Autoencoder(hidden_layer_sizes=(code,), dropout=0.2, epochs=args.epochs, batch_size=32,
                                  random_state=0)
    detector = fastae.AnomalyDetector(template, contamination=args.contamination).fit(X[y == args.digit])
    normal = y_test == args.digit
    scores = detector.score_samples(X_test)          # higher is more normal
    flagged = detector.predict(X_test) == -1
    auc = roc_auc(scores, normal)
    print(f"normal digit {args.digit}: {int((y == args.digit).sum())} training images; "
          f"test ROC AUC {auc:.4f} ({int(normal.sum())} normal, {int((~normal).sum())} anomalies)")
    print(f"threshold (squared error) {detector.threshold_:.4f}: flags {flagged[normal].mean():.1%} of the normal "
          f"test images and {flagged[~normal].mean():.1%} of the others")
    worst = int(np.argmin(scores))
    errors = detector.feature_errors(X_test[worst:worst + 1])[0]
    top = np.argsort(errors)[::-1][:5]
    print(f"most unusual test image: #{worst} (a {y_test[worst]}); its worst pixels (row, column): "
          + ", ".join(f"({p // shape[1]}, {p % shape[1]})" for p in top))
    return auc, flagged[normal].mean(), flagged[~normal].mean()


if __name__ == "__main__":
    main()
