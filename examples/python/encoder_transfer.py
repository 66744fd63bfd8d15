"""Feature learning: a denoising autoencoder trained on every image (no labels), its encoder then
the frozen first layers of a classifier trained on a few labelled images, beside the same network
trained from scratch on those few (on MNIST with 1,000 labels: benchmarks/mlp_mnist.py).

    python examples/python/encoder_transfer.py [--data mnist.npz] [--labels 1000] [--epochs 10]

MNIST: an .npz with x_train/y_train/x_test/y_test. Without --data it runs on the UCI digits fastae
ships (1,437 images to pretrain on, --labels of them labelled, 360 to test).
The autoencoder: one hidden layer (256 on MNIST, 32 on the digits), masking noise 0.5; the
classifiers: that layer, then 64 relu units and the softmax.
"""

import argparse

import numpy as np

import fastae


def load(path):
    if path is None:
        X, y = fastae.load_digits()
        order = np.random.default_rng(0).permutation(len(X))
        test, train = order[:360], order[360:]
        return X[train], y[train], X[test], y[test], 32
    with np.load(path) as d:
        X, Xt = (d[k].reshape(len(d[k]), -1).astype(np.float32) / 255 for k in ("x_train", "x_test"))
        return X, d["y_train"], Xt, d["y_test"], 256


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help="an .npz with x_train, y_train, x_test, y_test (MNIST); default: embedded digits")
    ap.add_argument("--labels", type=int, default=1000, help="labelled training samples (default 1000)")
    ap.add_argument("--epochs", type=int, default=10, help="autoencoder epochs")
    args = ap.parse_args(argv)

    X, y, X_test, y_test, code = load(args.data)
    ae = fastae.Autoencoder(hidden_layer_sizes=(code,), noise="masking", noise_level=0.5, batch_size=64,
                            epochs=args.epochs, random_state=0).fit(X)
    few = np.random.default_rng(1).permutation(len(X))[:args.labels]
    common = dict(batch_size=32, epochs=100, early_stopping=True, validation_split=0.1, patience=10, random_state=0)
    transfer = fastae.MLPClassifier(encoder=ae, hidden_layer_sizes=(64,), **common).fit(X[few], y[few])
    scratch = fastae.MLPClassifier(hidden_layer_sizes=(code, 64), **common).fit(X[few], y[few])
    a, b = transfer.score(X_test, y_test), scratch.score(X_test, y_test)
    print(f"{len(few)} labels: frozen pretrained encoder {a:.4f}, the same network from scratch {b:.4f}")
    return a, b


if __name__ == "__main__":
    main()
