"""Compression: the Keras tutorial's autoencoder (784 -> 64 relu -> 784 sigmoid, Adam, binary
cross-entropy, batch 256) on MNIST, then what it buys: the codes' size beside the images', the
reconstruction error, and a picture of originals beside reconstructions when matplotlib is there.

    python examples/python/mnist_compression.py [--data mnist.npz] [--epochs 50] [--plot out.png]

MNIST: an .npz with x_train/x_test (uint8 28x28), as keras.datasets.mnist.load_data() saves them.
Without --data it runs on the UCI digits fastae ships (8x8 images, code of 16).
"""

import argparse
import time

import numpy as np

import fastae


def load(path):
    if path is None:
        X, _ = fastae.load_digits()
        order = np.random.default_rng(0).permutation(len(X))
        return X[order[360:]], X[order[:360]], (8, 8), 16
    with np.load(path) as d:
        x_train, x_test = d["x_train"], d["x_test"]
    shape = x_train.shape[1:]
    flat = int(np.prod(shape))
    return (x_train.reshape(-1, flat).astype(np.float32) / 255, x_test.reshape(-1, flat).astype(np.float32) / 255,
            shape, 64)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help="an .npz with x_train and x_test (MNIST); default: the embedded digits")
    ap.add_argument("--epochs", type=int, help="default: 50 on MNIST (the tutorial's), 300 on the small digits")
    ap.add_argument("--plot", help="write originals beside reconstructions to this PNG (needs matplotlib)")
    args = ap.parse_args(argv)

    X_train, X_test, shape, code = load(args.data)
    epochs = args.epochs or (50 if args.data else 300)
    ae = fastae.Autoencoder(hidden_layer_sizes=(code,), activation="relu", output_activation="sigmoid", loss="bce",
                            batch_size=256, epochs=epochs, random_state=0)
    start = time.perf_counter()
    ae.fit(X_train, validation_data=X_test)
    seconds = time.perf_counter() - start
    codes = ae.transform(X_test)
    recon = ae.inverse_transform(codes)
    mse = float(np.mean((recon - X_test) ** 2))
    print(f"{X_train.shape[0]} training images of {X_train.shape[1]} pixels; code of {codes.shape[1]} floats: "
          f"{X_train.shape[1] / codes.shape[1]:.1f}x smaller")
    print(f"{epochs} epochs in {seconds:.1f} s ({epochs * X_train.shape[0] / seconds:,.0f} samples/s)")
    print(f"test bce {-ae.score(X_test):.4f}, test mse {mse:.5f}")
    if args.plot:
        from fastae import plot

        plot.reconstructions(ae, X_test[:10], image_shape=shape).savefig(args.plot)
        print(f"wrote {args.plot}")
    return ae, mse


if __name__ == "__main__":
    main()
