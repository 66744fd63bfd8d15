"""Trains fastae.VariationalAutoencoder on the embedded UCI digits (8x8, 1797 images; or MNIST with
--mnist when ../shared/data/mnist.npz is present) and writes a PNG: a grid of new samples decoded
from the prior, then rows of interpolations between pairs of test digits (their code means joined
by a straight line).

    python examples/vae_digits.py [--mnist] [--out docs/images/vae_digits.png]

NumPy only (the PNG is written with zlib, no imaging library).
"""

from __future__ import annotations

import argparse
import os
import struct
import zlib

import numpy as np

import fastae

HERE = os.path.dirname(os.path.abspath(__file__))


def write_png(path, image):
    """image: 2-D float array in [0, 1] -> an 8-bit grayscale PNG."""
    pixels = (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
    raw = b"".join(b"\x00" + row.tobytes() for row in pixels)

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", pixels.shape[1], pixels.shape[0], 8, 0, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9))
                + chunk(b"IEND", b""))


def tile(images, side, columns, scale):
    """Rows of `columns` images (side x side each, upscaled by `scale`), one pixel apart."""
    rows = []
    for start in range(0, len(images), columns):
        row = [np.kron(im.reshape(side, side), np.ones((scale, scale))) for im in images[start:start + columns]]
        gap = np.zeros((side * scale, 1))
        rows.append(np.hstack([x for im in row for x in (im, gap)][:-1]))
    gap = np.zeros((1, rows[0].shape[1]))
    return np.vstack([x for r in rows for x in (r, gap)][:-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", action="store_true")
    parser.add_argument("--out", default=os.path.join(HERE, "..", "docs", "images", "vae_digits.png"))
    args = parser.parse_args()
    if args.mnist:
        with np.load(os.path.join(HERE, "..", "..", "shared", "data", "mnist.npz")) as d:
            X = d["x_train"].reshape(-1, 784).astype(np.float32) / 255
        side, hidden, epochs = 28, (256, 16), 10
    else:
        X, _ = fastae.load_digits()  # values in [0, 1]
        side, hidden, epochs = 8, (64, 8), 300
    train, test = X[:-100], X[-100:]
    vae = fastae.VariationalAutoencoder(hidden_layer_sizes=hidden, epochs=epochs, batch_size=64, random_state=0,
                                        kl_warmup_epochs=epochs // 5).fit(train)
    print(f"trained {epochs} epochs: loss {vae.history_['loss'][-1]:.2f} (reconstruction "
          f"{vae.history_['reconstruction'][-1]:.2f}, kl {vae.history_['kl'][-1]:.2f}); "
          f"test ELBO {vae.elbo(test):.2f} nats")
    samples = vae.sample(40, random_state=1)
    paths = np.vstack([vae.interpolate(test[a], test[b], 10) for a, b in ((0, 1), (2, 3))])
    scale = 4 if side == 8 else 1
    top, bottom = tile(samples, side, 10, scale), tile(paths, side, 10, scale)
    image = np.vstack([top, np.zeros((3 * scale, top.shape[1])), bottom])
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    write_png(args.out, 1.0 - image)  # dark strokes on white
    print(f"wrote {args.out}: 4 rows of samples from the prior, then 2 interpolations")


if __name__ == "__main__":
    main()
