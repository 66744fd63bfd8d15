"""Command line: ``python -m fastae demo [--data PATH] [options]``, ``python -m fastae info`` and
``python -m fastae --cmake-dir`` (the folder to pass to CMake as fastae_DIR)."""

from __future__ import annotations

import argparse
import sys
import time


def _demo(args):
    import numpy as np

    from . import Autoencoder
    from .datasets import load_digits, load_npz_images

    if args.data:
        x_train, x_test = load_npz_images(args.data)
        source = args.data
    else:
        images, _ = load_digits()
        order = np.random.default_rng(0).permutation(len(images))
        n_test = len(images) // 5
        x_test, x_train = images[order[:n_test]], images[order[n_test:]]
        source = "UCI 8x8 digits (embedded; CC BY 4.0, Alpaydin & Kaynak 1998)"
    d = x_train.shape[1]
    hidden = tuple(args.hidden)
    sizes = [d, *hidden, *reversed(hidden[:-1]), d]
    print(f"data: {source}: {x_train.shape[0]} train, {x_test.shape[0]} test, {d} features")
    print(f"model: {' -> '.join(map(str, sizes))} ({args.activation} hidden, sigmoid output), bce, adam "
          f"lr {args.learning_rate}, batch {args.batch_size}, {args.epochs} epochs, {args.threads} thread(s)")
    ae = Autoencoder(hidden_layer_sizes=hidden, activation=args.activation, output_activation="sigmoid", loss="bce",
                     optimizer="adam", learning_rate=args.learning_rate, batch_size=args.batch_size,
                     epochs=args.epochs, shuffle=True, random_state=args.seed, n_threads=args.threads, verbose=1)
    start = time.perf_counter()
    ae.fit(x_train, validation_data=x_test)
    elapsed = time.perf_counter() - start
    recon = ae.predict(x_test)
    mse = float(np.mean((recon.astype(np.float64) - x_test) ** 2))
    print(f"final reconstruction error on the {x_test.shape[0]} test samples: bce {-ae.score(x_test):.6f}, "
          f"mse {mse:.6f}; trained in {elapsed:.2f} s")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fastae", description="fastae: dense autoencoders on CPUs")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument("--cmake-dir", action="store_true",
                        help="print the folder of fastaeConfig.cmake, for C++ hosts (cmake -Dfastae_DIR=...)")
    sub = parser.add_subparsers(dest="command")
    demo = sub.add_parser("demo", help="train the reference autoencoder and report per-epoch losses")
    demo.add_argument("--data", help=".npz with x_train and x_test (uint8 images are scaled by 1/255); "
                                     "default: the embedded UCI digits")
    demo.add_argument("--epochs", type=int, default=50)
    demo.add_argument("--hidden", type=int, nargs="+", default=[64], help="encoder widths (default: 64)")
    demo.add_argument("--activation", default="relu")
    demo.add_argument("--batch-size", type=int, default=256)
    demo.add_argument("--learning-rate", type=float, default=1e-3)
    demo.add_argument("--threads", type=int, default=1)
    demo.add_argument("--seed", type=int, default=0)
    sub.add_parser("info", help="print how fastae was built and what it uses (version, SIMD, engine variant, "
                                "Eigen, CPUs, threads)")
    args = parser.parse_args(argv)

    if args.version:
        from . import __version__

        print(__version__)
        return 0
    if args.cmake_dir:
        from . import get_cmake_dir

        try:
            print(get_cmake_dir())
        except FileNotFoundError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        return 0
    try:
        if args.command == "demo":
            return _demo(args)
        if args.command == "info":
            from . import show_config

            show_config()
            return 0
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    parser.print_help()
    return 1


if __name__ == "__main__":
    sys.exit(main())
