"""``fastae demo``, a command of the command line (fastae/_cli.py, docs/cli.md): trains an
autoencoder on the embedded 8x8 digits (or a DATA file), then prints test samples beside their
reconstructions as text art, with the compression ratio and error, and with --plot draws them."""

from __future__ import annotations

import shutil
import time

from ._cli_common import (
    CliError,
    _add_data_options,
    _check_plot_path,
    _data_error,
    _image_shape,
    _image_shape_for,
    _int_list,
    _names,
    _note,
    _plot_module,
    _save_figure,
    _validated_estimator,
)

# ---- demo ---------------------------------------------------------------------------------

_RAMP = " .:-=+*#%@"


def _art(image, shape, lo, hi):
    """One image as lines of text: 2 characters per pixel for narrow images (so they look square),
    else blocks of pixels averaged (a character is about twice as tall as it is wide)."""
    import numpy as np

    a = np.asarray(image, dtype=np.float64).reshape(shape)
    if a.ndim == 3:
        a = a.mean(axis=2)
    h, w = a.shape
    if w <= 16:
        bx, by, rep = 1, 1, 2
    else:
        bx = -(-w // 32)
        by, rep = 2 * bx, 1
    ph, pw = -(-h // by) * by, -(-w // bx) * bx
    padded = np.full((ph, pw), lo)
    padded[:h, :w] = a
    blocks = padded.reshape(ph // by, by, pw // bx, bx).mean(axis=(1, 3))
    level = np.clip((blocks - lo) / (hi - lo if hi > lo else 1.0), 0.0, 1.0)
    index = np.minimum((level * len(_RAMP)).astype(int), len(_RAMP) - 1)
    return ["".join(_RAMP[i] * rep for i in row) for row in index]


def _print_art(originals, recons, shape, lo, hi, n_pairs):
    columns = shutil.get_terminal_size((80, 24)).columns
    pairs = [(_art(o, shape, lo, hi), _art(r, shape, lo, hi)) for o, r in zip(originals[:n_pairs],
                                                                          recons[:n_pairs])]
    width = max(len(pairs[0][0][0]), len("reconstructed"))
    pair_width = 2 * width + 3
    per_line = max(1, min(len(pairs), (columns + 4) // (pair_width + 4)))
    for start in range(0, len(pairs), per_line):
        group = pairs[start:start + per_line]
        print("    ".join(f"{'original':<{width}} | {'reconstructed':<{width}}" for _ in group).rstrip())
        for row in range(len(group[0][0])):
            print("    ".join(f"{o[row]:<{width}} | {r[row]:<{width}}" for o, r in group).rstrip())
        print()


def _demo_data(args):
    """(x_train, x_test, source, image_shape)."""
    import numpy as np

    from ._data_io import DataError, npz_keys, read_array, read_data

    if not args.data:
        from .datasets import load_digits

        images, _ = load_digits()
        order = np.random.default_rng(0).permutation(len(images))
        n_test = len(images) // 5
        return (images[order[n_test:]], images[order[:n_test]],
                "UCI 8x8 digits (embedded; CC BY 4.0, Alpaydin & Kaynak 1998)", (8, 8))
    path = args.data
    if args.key is None:
        keys = npz_keys(path) or ()
        if "x_train" in keys and "x_test" in keys:
            train, test = read_array(path, "x_train")[0], read_array(path, "x_test")[0]
            if train.ndim < 2 or train.shape[1:] != test.shape[1:]:
                raise DataError(f"{path}: x_train {train.shape} and x_test {test.shape} must be samples of one shape")
            shape = tuple(train.shape[1:]) if train.ndim > 2 else None
            return (train.reshape(len(train), -1), test.reshape(len(test), -1),
                    f"{path} (x_train, x_test)", shape)
    data = read_data(path, args.key, args.header)
    if data.note:
        _note(data.note)
    X = data.X
    if len(X) < 2:
        raise DataError(f"{path}: {len(X)} sample(s); the demo needs at least 2 (it tests on a fifth of them)")
    order = np.random.default_rng(0).permutation(len(X))
    n_test = max(1, len(X) // 5)
    return X[order[n_test:]], X[order[:n_test]], f"{path} (a random fifth held out as test data)", data.image_shape


class _EpochPrinter:
    """The demo's training log: about ten evenly spaced epochs, and every epoch once epochs take
    seconds (so a long run on --data shows it is alive)."""

    def __init__(self, epochs):
        self.epochs, self.every = epochs, max(1, epochs // 10)
        self.last = time.perf_counter()

    def __call__(self, epoch, logs):
        now = time.perf_counter()
        n = epoch + 1
        if n == 1 or n % self.every == 0 or n == self.epochs or now - self.last > 2.0:
            line = f"epoch {n:>{len(str(self.epochs))}}/{self.epochs}  loss {logs['loss']:.6f}"
            if "val_loss" in logs:
                line += f"  val_loss {logs['val_loss']:.6f}"
            print(line, flush=True)
            self.last = now


def _add_demo_parser(sub):
    from ._params import HIDDEN_ACTIVATIONS

    p = sub.add_parser("demo", help="show what an autoencoder does: compress digits, print them beside their "
                                    "reconstructions", description=(
        "Train an autoencoder that compresses the embedded 8x8 digits (64 features) to a code of 16 numbers, then "
        "print test digits beside their reconstructions as text, the compression ratio, the reconstruction error "
        "and the training speed, and write a picture when matplotlib is installed. --data takes any .npz (x_train "
        "and x_test, or one array), .npy, .csv or IDX file instead (uint8 values are scaled by 1/255)."))
    p.add_argument("--data", metavar="FILE", help="data file (default: the embedded UCI 8x8 digits)")
    _add_data_options(p, threads=False)
    p.add_argument("--epochs", type=int, default=50, metavar="N", help="(default: 50)")
    p.add_argument("--hidden", type=_int_list, nargs="+", default=[(16,)], metavar="W",
                   help="encoder widths, the last is the code size (default: 16); 64,16 or 64 16")
    p.add_argument("--activation", type=_names(HIDDEN_ACTIVATIONS), default="relu", metavar="NAME",
                   help=f"{', '.join(HIDDEN_ACTIVATIONS)} (default: relu)")
    p.add_argument("--batch-size", type=int, default=32, metavar="N", help="(default: 32)")
    p.add_argument("--learning-rate", "--lr", type=float, default=3e-3, metavar="LR", help="(default: 0.003)")
    p.add_argument("--threads", type=int, metavar="N", help="(default: every CPU available)")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="(default: 0)")
    p.add_argument("--show", type=int, default=4, metavar="N", help="test samples to print (default: 4; 0: none)")
    p.add_argument("--image-shape", type=_image_shape, metavar="HxW", help="the shape of one sample as an image")
    pic = p.add_mutually_exclusive_group()
    pic.add_argument("--plot", metavar="PNG", help="write the picture here (default: fastae-demo.png when "
                                                   "matplotlib is installed)")
    pic.add_argument("--no-plot", action="store_true", help="write no picture")
    p.set_defaults(run=_demo)


_DEMO_FLAGS = {"hidden_layer_sizes": "--hidden", "activation": "--activation", "learning_rate": "--learning-rate",
               "batch_size": "--batch-size", "epochs": "--epochs", "n_threads": "--threads", "random_state": "--seed"}


def _demo_picture(args):
    """(fastae.plot, the picture's path, None), or (None, None, why there is none). An asked-for
    picture (--plot) that cannot be made is an error."""
    if args.no_plot:
        return None, None, "--no-plot"
    picture = args.plot or "fastae-demo.png"
    try:
        plot = _plot_module()
        _check_plot_path(picture)
    except CliError as exc:
        if args.plot:
            raise
        return None, None, str(exc).replace("--plot needs", "a picture needs", 1).replace("--plot: ", "", 1)
    return plot, picture, None


def _demo(args):
    import numpy as np

    from . import Autoencoder
    from ._params import resolve_head

    hidden = tuple(w for group in args.hidden for w in group)
    if args.show < 0:
        raise CliError(f"--show must be >= 0; got {args.show}")
    params = {"hidden_layer_sizes": hidden, "activation": args.activation, "learning_rate": args.learning_rate,
              "batch_size": args.batch_size, "epochs": args.epochs, "random_state": args.seed,
              "n_threads": args.threads, "callbacks": [_EpochPrinter(args.epochs)]}
    est = _validated_estimator(Autoencoder, params, _DEMO_FLAGS)
    plot, picture, why = _demo_picture(args)
    x_train, x_test, source, shape = _demo_data(args)
    if x_train.dtype == np.uint8:
        x_train = x_train.astype(np.float32) / np.float32(255.0)
        x_test = x_test.astype(np.float32) / np.float32(255.0)
    d = x_train.shape[1]
    shape = _image_shape_for(d, shape, args.image_shape)
    with np.errstate(all="ignore"):
        in_unit = bool(np.all((x_train >= 0) & (x_train <= 1)) and np.all((x_test >= 0) & (x_test <= 1)))
    loss, output = resolve_head("auto", "auto", in_unit)
    sizes = [d, *hidden, *reversed(hidden[:-1]), d]
    threads = est._validated_params(draw_seed=False)["n_threads"]
    acts = args.activation if isinstance(args.activation, str) else "/".join(args.activation)
    print(f"data: {source}: {x_train.shape[0]} train, {x_test.shape[0]} test, {d} features")
    print(f"model: {' -> '.join(map(str, sizes))} ({acts} hidden, {output} output), {loss}, adam "
          f"lr {args.learning_rate}, batch {args.batch_size}, {args.epochs} epochs, {threads} thread(s)")
    start = time.perf_counter()
    try:
        est.fit(x_train, validation_data=x_test)
    except ValueError as exc:
        raise _data_error(args.data or "digits", exc) from None
    elapsed = time.perf_counter() - start
    recon = est.predict(x_test)
    _demo_report(est, x_train.shape[0], x_test, recon, elapsed, loss)
    if args.show and shape is not None:
        print()
        _print_art(x_test, recon, shape, float(x_test.min()), float(x_test.max()), args.show)
    elif args.show:
        print(f"(no text pictures: {d} features are not a square image; give --image-shape HxW)")
    if plot is not None and shape is not None:
        _save_figure(plot.reconstructions(est, x_test, image_shape=shape, n_images=8), picture)
        print(f"picture: wrote {picture} (test samples and their reconstructions)")
    elif plot is not None:
        print("picture: none (the samples are not images: give --image-shape HxW)")
    elif not args.no_plot:
        print(f"picture: none ({why})")
    return 0


def _demo_report(est, n_train, x_test, recon, elapsed, loss):
    """The compression ratio, the test error and the training speed."""
    import numpy as np

    d, code = x_test.shape[1], est.hidden_layer_sizes[-1]
    err = recon.astype(np.float64) - x_test
    mse, mae = float(np.mean(err ** 2)), float(np.mean(np.abs(err)))
    print(f"compression: {d} features -> a code of {code} numbers " +
          (f"({d / code:.1f}x smaller)" if code < d else "(no smaller than the input: no compression)"))
    print(f"reconstruction error on the {x_test.shape[0]} test samples: {loss} {-est.score(x_test):.6f}, "
          f"mse {mse:.6f}, mean absolute error {mae:.4f} (value range {float(x_test.min()):.3g}.."
          f"{float(x_test.max()):.3g})")
    epochs = len(est.history_["loss"])
    print(f"training speed: {n_train} samples x {epochs} epochs in {elapsed:.2f} s = "
          f"{n_train * epochs / elapsed:,.0f} samples/s (validation included)")
