"""The ``fastae`` command line (also ``python -m fastae``): train, encode, reconstruct, score,
info and demo. docs/cli.md describes it; ``fastae COMMAND --help`` lists each command's options.

Every failure ends with one line on stderr, ``fastae: error: ...``, and an exit status: 2 for bad
input (a bad option value, a DATA or MODEL file that is missing or is not what it should be, a
wrong shape), 1 when the work itself fails (training diverged, memory, an output that cannot be
written), 130 when interrupted (Ctrl-C). Everything is checked before any work starts and before
anything is printed, so a bad option never leaves a half-written output or a header behind it."""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence

PROG = "fastae"
EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130

_OUTPUT_FORMATS = (".npy", ".csv", ".tsv", ".txt")


class CliError(Exception):
    """A one-line error for the user; code: the exit status."""

    def __init__(self, message: object, code: int = EXIT_USAGE) -> None:
        super().__init__(" ".join(str(message).split()))
        self.code = code


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _note(text):
    print(f"{PROG}: {text}", file=sys.stderr, flush=True)


# ---- option types (argparse reports a ValueError from these as "invalid ... value") -----------


def _int_list(text):
    """'256,64' (or '256 64') -> (256, 64)."""
    parts = [p for p in text.replace(",", " ").split() if p]
    if not parts:
        raise argparse.ArgumentTypeError(f"expected widths such as 256,64; got {text!r}")
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integer widths such as 256,64; got {text!r}") from None
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"widths must be >= 1; got {text!r}")
    return values


def _names(allowed):
    """A name from `allowed`, or a comma-separated list of them (one per encoder layer)."""

    def parse(text):
        names = [p.strip() for p in text.split(",") if p.strip()]
        bad = [n for n in names if n not in allowed]
        if not names or bad:
            raise argparse.ArgumentTypeError(f"expected one of {', '.join(allowed)} (or a comma-separated list of "
                                             f"them, one per encoder layer); got {text!r}")
        return names[0] if len(names) == 1 else names

    return parse


def _image_shape(text):
    parts = [p for p in text.lower().replace("x", " ").replace(",", " ").split() if p]
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        shape = ()
    if not 2 <= len(shape) <= 3 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH (e.g. 28x28); got {text!r}")
    return shape


# ---- shared pieces ------------------------------------------------------------------------


def _add_data_options(p, threads=True):
    p.add_argument("--key", help="the array to read from an .npz DATA file (default: its only array, else the first "
                                 "of X, x, data, x_train, images)")
    header = p.add_mutually_exclusive_group()
    header.add_argument("--header", dest="header", action="store_true", default=None,
                        help="the first row of a text DATA file is a header (default: detected)")
    header.add_argument("--no-header", dest="header", action="store_false", help="the first row is data")
    if threads:
        p.add_argument("--threads", type=int, metavar="N",
                       help="threads (default: every CPU available; -1 too)")


def _read(path, args):
    from ._data_io import read_data

    data = read_data(path, getattr(args, "key", None), getattr(args, "header", None))
    if data.note:
        _note(data.note)
    return data


def _check_output(path, formats=None, option="-o"):
    """Refuses, before any work, an output that cannot be written: an unknown extension, a missing
    folder, a folder given as the file."""
    if formats is not None and os.path.splitext(path)[1].lower() not in formats:
        raise CliError(f"{option} {path}: the output format is told by its extension, one of {', '.join(formats)}")
    if os.path.isdir(path):
        raise CliError(f"{option} {path}: is a folder; give a file name")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CliError(f"{option} {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise CliError(f"{option} {path}: the folder {folder} is not writable")


def _write_array(path, arr):
    """arr to path (.npy, or a text table: .csv, .tsv, .txt), through a temporary file renamed
    over it, so a failed write leaves no partial file."""
    import numpy as np

    ext = os.path.splitext(path)[1].lower()
    folder = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".fastae-", suffix=ext, dir=folder)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # the permissions of a file written in place, not mkstemp's 0600
        with os.fdopen(fd, "wb") as f:
            if ext == ".npy":
                np.save(f, arr)
            else:
                np.savetxt(f, arr, fmt="%.9g", delimiter={".csv": ",", ".tsv": "\t"}.get(ext, " "))
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        raise CliError(f"cannot write {path}: {exc.strerror or exc}", EXIT_FAILURE) from None


def _plot_module(option="--plot"):
    """fastae.plot with matplotlib's file-only backend, or a CliError saying what is missing."""
    try:
        import matplotlib
    except ImportError:
        raise CliError(f"{option} needs matplotlib, which is not installed: pip install matplotlib "
                       f"(or pip install 'fastae[plot]')") from None
    matplotlib.use("Agg")  # the command line only writes files
    try:
        from . import plot
    except ImportError as exc:
        raise CliError(f"{option}: fastae.plot cannot be imported: {exc}") from None
    return plot


def _check_plot_path(path, option="--plot"):
    _check_output(path, option=option)
    from matplotlib.figure import Figure

    formats = Figure().canvas.get_supported_filetypes()
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    if ext not in formats:
        raise CliError(f"{option} {path}: the picture's format is told by its extension, one of "
                       f"{', '.join('.' + f for f in sorted(formats))}")


def _save_figure(fig, path):
    try:
        fig.savefig(path, dpi=100)
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot write {path}: {exc}", EXIT_FAILURE) from None


def _load_model(path):
    import fastae

    if not os.path.exists(path):
        raise CliError(f"{path}: no such file")
    if os.path.isdir(path):
        raise CliError(f"{path}: is a folder, not a model file")
    try:
        est = fastae.load(path)
    except fastae.ModelFileError as exc:
        message = str(exc)
        raise CliError(message if path in message else f"{path}: {message}") from None
    except OSError as exc:
        raise CliError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    return est


def _image_shape_for(width, file_shape, given):
    """The image shape for pictures: --image-shape (given), else the DATA file's sample shape
    (file_shape), else a square one for a square number of features; None when none fits."""
    if given is not None:
        if math.prod(given) != width:
            raise CliError(f"--image-shape {'x'.join(map(str, given))} has {math.prod(given)} pixels; the data have "
                           f"{width} features")
        return given
    if file_shape is not None:
        return file_shape
    side = math.isqrt(width)
    return (side, side) if side * side == width else None


def _data_error(path, exc):
    """A ValueError raised on a DATA file's contents, as one line naming the file."""
    return CliError(f"{path}: {exc}")


def _threads(args, est):
    if getattr(args, "threads", None) is not None:
        est.set_params(n_threads=args.threads)


# ---- train --------------------------------------------------------------------------------

# (flag, parameter) of the Autoencoder options train exposes; a flag left out keeps the default.
_TRAIN_PARAMS = [
    ("--hidden", "hidden_layer_sizes"), ("--activation", "activation"),
    ("--output-activation", "output_activation"), ("--loss", "loss"), ("--optimizer", "optimizer"),
    ("--learning-rate", "learning_rate"), ("--batch-size", "batch_size"), ("--epochs", "epochs"),
    ("--threads", "n_threads"), ("--seed", "random_state"), ("--input-scale", "input_scale"),
    ("--validation-split", "validation_split"), ("--early-stopping", "early_stopping"),
    ("--patience", "patience"), ("--min-delta", "min_delta"), ("--lr-schedule", "lr_schedule"),
    ("--clipnorm", "clipnorm"), ("--max-time", "max_time"), ("--weight-decay", "weight_decay"),
    ("--momentum", "momentum"), ("--kernel-initializer", "kernel_initializer"), ("--l1", "l1"), ("--l2", "l2"),
    ("--dropout", "dropout"), ("--noise", "noise"), ("--noise-level", "noise_level"),
]


def _add_train_parser(sub):
    from . import _core
    from ._validation import HIDDEN_ACTIVATIONS

    p = sub.add_parser("train", help="train an autoencoder on DATA and save it", description=(
        "Train an autoencoder on DATA (.npy, .npz, .csv or MNIST IDX; images are flattened) and save it as a "
        "fastae model file. uint8 data are scaled by 1/255 unless --input-scale is given. Options left out keep "
        "fastae.Autoencoder's defaults (loss auto: bce on a sigmoid output for data in [0, 1], else mse)."))
    p.add_argument("data", metavar="DATA", help="training data file")
    p.add_argument("-o", "--output", required=True, metavar="MODEL", help="the model file to write (e.g. model.fae)")
    _add_data_options(p, threads=False)
    p.add_argument("--validation-data", metavar="FILE", help="validation data file (read with the same options)")
    p.add_argument("--plot", metavar="PNG", help="also write the loss history as a picture (needs matplotlib)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress display and no summary")
    g = p.add_argument_group("network")
    g.add_argument("--hidden", type=_int_list, metavar="W1,W2,...",
                   help="encoder widths, the last is the code size; the decoder mirrors them (default: 64)")
    g.add_argument("--activation", type=_names(HIDDEN_ACTIVATIONS), metavar="NAME",
                   help=f"hidden activation, or one per encoder layer: {', '.join(HIDDEN_ACTIVATIONS)} (default: relu)")
    g.add_argument("--output-activation", choices=("auto", *_core.ACTIVATIONS), metavar="NAME",
                   help=f"auto (default), {', '.join(_core.ACTIVATIONS)}")
    g.add_argument("--loss", choices=("auto", *_core.LOSSES), metavar="NAME",
                   help=f"auto (default: bce for data in [0, 1], else mse), {', '.join(_core.LOSSES)}")
    g.add_argument("--kernel-initializer", choices=_core.INITIALIZERS, metavar="NAME",
                   help=f"{', '.join(_core.INITIALIZERS)} (default: glorot_uniform)")
    g.add_argument("--dropout", type=float, metavar="P", help="dropout on the hidden layers while training")
    g.add_argument("--l1", type=float, help="L1 penalty on the weights")
    g.add_argument("--l2", type=float, help="L2 penalty on the weights")
    g.add_argument("--noise", choices=("gaussian", "masking"), help="a denoising autoencoder: noise on the input")
    g.add_argument("--noise-level", type=float, metavar="X", help="gaussian: its std; masking: the fraction set to 0")
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=int, metavar="N", help="epochs (default: 10)")
    g.add_argument("--batch-size", type=int, metavar="N", help="samples per step (default: 256)")
    g.add_argument("--optimizer", choices=_core.OPTIMIZERS, metavar="NAME",
                   help=f"{', '.join(_core.OPTIMIZERS)} (default: adam)")
    g.add_argument("--learning-rate", "--lr", type=float, metavar="LR", help="(default: 0.001)")
    g.add_argument("--weight-decay", type=float, metavar="X", help="adamw's decoupled weight decay (default: 0.01)")
    g.add_argument("--momentum", type=float, metavar="X", help="sgd's momentum (default: 0.9)")
    g.add_argument("--lr-schedule", choices=[s for s in _core.LR_SCHEDULES if s != "none"], metavar="NAME",
                   help=f"{', '.join(s for s in _core.LR_SCHEDULES if s != 'none')} (default: none)")
    g.add_argument("--clipnorm", type=float, metavar="X", help="clip the gradient to this global norm")
    g.add_argument("--validation-split", type=float, metavar="F",
                   help="hold out this fraction of the rows (seeded) to report val_loss")
    g.add_argument("--early-stopping", action="store_true", default=None,
                   help="stop when the monitored loss (val_loss, else loss) stops improving; keep the best weights")
    g.add_argument("--patience", type=int, metavar="N", help="epochs without improvement before stopping "
                                                            "(default: 10)")
    g.add_argument("--min-delta", type=float, metavar="X", help="the least change that counts as an improvement")
    g.add_argument("--max-time", type=float, metavar="S", help="stop after this many seconds")
    g = p.add_argument_group("run")
    g.add_argument("--threads", type=int, metavar="N", help="threads (default: every CPU available)")
    g.add_argument("--seed", type=int, default=0, metavar="N",
                   help="random seed of the weights and shuffles (default: 0)")
    g.add_argument("--input-scale", type=float, metavar="X",
                   help="multiply every input by X, here and wherever the model is used (default: 1/255 for uint8 "
                        "data, else none)")
    p.set_defaults(run=_train)


def _validated_estimator(cls, params, flags):
    """cls(**params) with its hyperparameters checked now (before any data are read); a bad
    value is reported by its command-line flag."""
    est = cls(**params)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # n_threads above the CPUs: warned at fit
            est._validated_params(draw_seed=False)
    except ValueError as exc:
        message = str(exc)
        for param, flag in sorted(flags.items(), key=lambda kv: -len(kv[0])):
            if message.startswith(param):
                raise CliError(f"{flag}: {message}") from None
        raise CliError(message) from None
    return est


def _train(args):
    import numpy as np

    from . import Autoencoder, TrainingDivergedError

    flags = {param: flag for flag, param in _TRAIN_PARAMS}
    params = {param: getattr(args, flag.lstrip("-").replace("-", "_")) for flag, param in _TRAIN_PARAMS}
    params = {k: v for k, v in params.items() if v is not None}
    params["verbose"] = 0 if args.quiet else 1
    est = _validated_estimator(Autoencoder, params, flags)
    plot = _plot_module() if args.plot else None
    if args.plot:
        _check_plot_path(args.plot)
    _check_output(args.output, option="-o")
    data = _read(args.data, args)
    X = data.X
    if args.input_scale is None and X.dtype == np.uint8:
        est.set_params(input_scale=1 / 255)
        _note(f"{args.data}: uint8 values, scaled by 1/255 (the model keeps input_scale; --input-scale overrides)")
    validation = None
    if args.validation_data:
        validation = _read(args.validation_data, args).X
        if validation.shape[1] != X.shape[1]:
            raise CliError(f"{args.validation_data}: {validation.shape[1]} features where {args.data} has "
                           f"{X.shape[1]}")
        if est.input_scale is not None and X.dtype == np.uint8 and validation.dtype != np.uint8:
            validation = validation.astype(np.float32)
            X = X.astype(np.float32)  # the engine reads uint8 in place only with uint8 validation data
    start = time.perf_counter()
    try:
        est.fit(X, validation_data=validation)
    except TrainingDivergedError as exc:
        raise CliError(f"{exc}; nothing saved (--learning-rate sets the rate, --clipnorm clips the gradient)",
                       EXIT_FAILURE) from None
    except MemoryError as exc:
        raise CliError(f"out of memory: {exc}", EXIT_FAILURE) from None
    except ValueError as exc:
        raise _data_error(args.data, exc) from None
    elapsed = time.perf_counter() - start
    est.set_params(verbose=0)  # the file's hyperparameters: no progress display where it is used later
    try:
        est.save(args.output)
    except OSError as exc:
        raise CliError(f"cannot write {args.output}: {exc}", EXIT_FAILURE) from None
    if not args.quiet:
        n_train = X.shape[0] * (1 - (est.validation_split if validation is None else 0.0))
        print(_train_summary(est, args.output, n_train, elapsed), flush=True)
    if plot is not None:
        _save_figure(plot.history(est), args.plot)
        if not args.quiet:
            print(f"wrote {args.plot} (loss history)")
    return 0


def _train_summary(est, path, n_train, elapsed):
    """One line: the file, the network, the last losses, the time and the speed."""
    h = est.history_
    epochs = len(h["loss"])
    line = (f"saved {path}: {_network_text(est)}, loss {est.loss_function_}; {epochs} epoch(s), "
            f"loss {h['loss'][-1]:.6g}")
    if h.get("val_loss"):
        line += f", val_loss {h['val_loss'][-1]:.6g}"
    line += f"; {elapsed:.2f} s, {n_train * epochs / elapsed:,.0f} samples/s"
    if getattr(est, "stop_reason_", "completed") != "completed":
        line += f" (stopped: {est.stop_reason_})"
    return line


def _network_text(est):
    """'784 -> 64 -> 784 (relu, sigmoid output)' from a fitted estimator."""
    try:
        layers = est._model.spec()["layers"]
        sizes = [est.n_features_in_, *(layer["units"] for layer in layers)]
        acts = [layer["activation"] for layer in layers]
        hidden = sorted(set(acts[:-1]), key=acts.index)
        text = " -> ".join(map(str, sizes))
        return f"{text} ({'/'.join(hidden) or 'no hidden layer'}, {acts[-1]} output)"
    except (AttributeError, KeyError, TypeError):
        weights = est.get_weights()
        return " -> ".join(map(str, [weights[0][0].shape[0], *(w.shape[1] for w, _ in weights)]))


# ---- encode, reconstruct, score -----------------------------------------------------------


def _add_model_data_parser(sub, name, help_text, output_help, output_required):
    p = sub.add_parser(name, help=help_text[0].lower() + help_text[1:],
                       description=help_text + ". DATA: .npy, .npz, .csv or MNIST IDX (gzipped or not); images are "
                       "flattened.")
    p.add_argument("model", metavar="MODEL", help="a model file written by fastae train (or Autoencoder.save)")
    p.add_argument("data", metavar="DATA", help="data file")
    p.add_argument("-o", "--output", required=output_required, metavar="FILE", help=output_help)
    _add_data_options(p)
    return p


def _model_and_data(args, output_formats, plot_option=None, needs=None):
    """The model (needs: a function that refuses a kind of estimator the command cannot use), then
    the output's checks, then the data (in that order: the cheap checks first)."""
    est = _load_model(args.model)
    if needs is not None:
        needs(est)
    _threads(args, est)
    plot = None
    if plot_option is not None:
        plot = _plot_module()
        _check_plot_path(plot_option)
    if args.output is not None:
        _check_output(args.output, output_formats)
    data = _read(args.data, args)
    width = getattr(est, "n_features_in_", None)
    if width is not None and data.X.shape[1] != width:
        raise CliError(f"{args.data}: {data.X.shape[1]} features per sample"
                       f"{' (images of ' + 'x'.join(map(str, data.image_shape)) + ')' if data.image_shape else ''}; "
                       f"the model {args.model} takes {width}")
    return est, data, plot


def _run_inference(args, fn, X):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # --threads above the CPUs: clamped, no matter
            return fn(X)
    except MemoryError as exc:
        raise CliError(f"out of memory: {exc}", EXIT_FAILURE) from None
    except (ValueError, AttributeError) as exc:
        raise _data_error(args.data, exc) from None


def _can_encode(path):
    def needs(est):
        if not hasattr(est, "transform"):
            raise CliError(f"{path}: {_kind(est)} has no codes to give (encode takes an autoencoder)")
    return needs


def _can_reconstruct(path):
    def needs(est):
        if not hasattr(est, "inverse_transform"):
            raise CliError(f"{path}: {_kind(est)} does not reconstruct its inputs (reconstruct takes an "
                           f"autoencoder)")
    return needs


def _encode(args):
    est, data, _ = _model_and_data(args, _OUTPUT_FORMATS, needs=_can_encode(args.model))
    codes = _run_inference(args, est.transform, data.X)
    _write_array(args.output, codes)
    print(f"wrote {args.output}: codes of shape {codes.shape} ({codes.dtype})")
    return 0


def _reconstruct(args):
    est, data, plot = _model_and_data(args, _OUTPUT_FORMATS, args.plot, needs=_can_reconstruct(args.model))
    shape = None
    if plot is not None:
        shape = _image_shape_for(data.X.shape[1], data.image_shape, args.image_shape)
        if shape is None:
            raise CliError(f"--plot: cannot tell the image shape of {data.X.shape[1]} features; give --image-shape "
                           f"HEIGHTxWIDTH")
    recon = _run_inference(args, est.predict, data.X)
    _write_array(args.output, recon)
    print(f"wrote {args.output}: reconstructions of shape {recon.shape} ({recon.dtype})")
    if plot is not None:
        _save_figure(plot.reconstructions(est, data.X, image_shape=shape, n_images=args.plot_samples), args.plot)
        print(f"wrote {args.plot} ({min(args.plot_samples, len(data.X))} originals and their reconstructions)")
    return 0


def _kind(est):
    name = type(est).__name__
    return f"{'an' if name[0] in 'AEIOUM' else 'a'} {name}"


def _per_sample_errors(est, path):
    if hasattr(est, "reconstruction_error"):
        return est.reconstruction_error
    if hasattr(est, "score_samples"):
        return lambda X: -est.score_samples(X)
    raise CliError(f"{path}: {_kind(est)} gives no per-sample reconstruction errors (score takes an autoencoder)")


def _score(args):
    import numpy as np

    est, data, _ = _model_and_data(args, _OUTPUT_FORMATS, needs=lambda est: _per_sample_errors(est, args.model))
    errors = _run_inference(args, _per_sample_errors(est, args.model), data.X)
    if args.output is None:
        sys.stdout.write("".join(f"{v:.9g}\n" for v in errors.tolist()))
        return 0
    _write_array(args.output, errors)
    e = errors.astype(np.float64)
    loss = getattr(est, "loss_function_", "loss")
    print(f"wrote {args.output}: {len(e)} per-sample errors ({loss}): mean {e.mean():.6g}, median "
          f"{np.median(e):.6g}, min {e.min():.6g}, max {e.max():.6g}")
    return 0


# ---- info ---------------------------------------------------------------------------------


def _info(args):
    if args.model is None:
        from . import show_config

        show_config()
        return 0
    est = _load_model(args.model)
    print(f"{args.model}: {type(est).__module__.split('.')[0]}.{type(est).__name__}, "
          f"{os.path.getsize(args.model):,} bytes")
    weights = est.get_weights()
    n_params = sum(w.size + b.size for w, b in weights)
    code = getattr(getattr(est, "_model", None), "code_size", None) if hasattr(est, "transform") else None
    print(f"network: {_network_text(est)}; {n_params:,} parameters"
          + (f"; code size {code}" if code is not None else ""))
    head = [f"{name} {getattr(est, attr)}" for name, attr in (("loss", "loss_function_"),
                                                                ("output", "output_activation_"))
            if hasattr(est, attr)]
    if head:
        print(f"head: {', '.join(head)}")
    defaults = type(est)().get_params()
    changed = {k: v for k, v in est.get_params().items() if k in defaults and v != defaults[k]}
    options = ", ".join(f"{k}={v!r}" for k, v in sorted(changed.items()))
    print(f"options (others at their defaults): {options or 'none'}")
    h = getattr(est, "history_", {}) or {}
    losses = h.get("loss", [])
    if not losses:
        print("history: none (not trained by fastae's Python API, or trained by set_weights)")
    else:
        text = f"history: {len(losses)} epoch(s), loss {losses[0]:.6g} -> {losses[-1]:.6g}"
        val = h.get("val_loss", [])
        if val:
            best = min(range(len(val)), key=lambda i: val[i] if not math.isnan(val[i]) else math.inf)
            text += f", val_loss {val[0]:.6g} -> {val[-1]:.6g} (best {val[best]:.6g} at epoch {best + 1})"
        seconds = h.get("seconds", [])
        if seconds:
            text += f", {sum(seconds):.2f} s"
        print(text)
    return 0


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
    from ._validation import HIDDEN_ACTIVATIONS

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
    from ._validation import resolve_head

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


# ---- main ---------------------------------------------------------------------------------


def _parser():
    p = _Parser(prog=PROG, description="fastae: dense autoencoders trained fast on CPUs. Run "
                                       "'fastae COMMAND --help' for a command's options.")
    p.add_argument("--version", action="store_true", help="print the version and exit")
    p.add_argument("--cmake-dir", action="store_true",
                   help="print the folder of fastaeConfig.cmake, for C++ hosts (cmake -Dfastae_DIR=...)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    _add_train_parser(sub)
    _add_model_data_parser(sub, "encode", "Write the codes of DATA's samples (the encoder's output)",
                           "the codes file (.npy, .csv, .tsv or .txt)", True).set_defaults(run=_encode)
    r = _add_model_data_parser(sub, "reconstruct", "Write DATA's reconstructions (encode then decode)",
                               "the reconstructions file (.npy, .csv, .tsv or .txt)", True)
    r.add_argument("--plot", metavar="PNG", help="also write a picture of samples beside their reconstructions "
                                                 "(needs matplotlib)")
    r.add_argument("--plot-samples", type=int, default=8, metavar="N", help="samples in the picture (default: 8)")
    r.add_argument("--image-shape", type=_image_shape, metavar="HxW",
                   help="the shape of one sample as an image (default: the file's, or square)")
    r.set_defaults(run=_reconstruct)
    _add_model_data_parser(sub, "score", "Print (or write with -o) each sample's reconstruction error, the "
                                         "model's loss averaged over its features: higher is more unusual",
                           "write the errors here (.npy, .csv, .tsv or .txt) and print a summary", False
                           ).set_defaults(run=_score)
    i = sub.add_parser("info", help="without MODEL: how fastae was built and the CPUs it uses; with MODEL: the "
                                    "model's network, options, size and history",
                       description="Without MODEL: the version, the instruction sets the engine was built for, the "
                                   "engine variant, Eigen and the CPUs. With MODEL: its network, parameter count, "
                                   "options, file size and training history.")
    i.add_argument("model", metavar="MODEL", nargs="?", help="a model file")
    i.set_defaults(run=_info)
    _add_demo_parser(sub)
    return p


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"{PROG}: warning: {' '.join(str(message).split())}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status."""
    shown, warnings.showwarning = warnings.showwarning, _show_warning
    try:
        return _main(argv)
    finally:
        warnings.showwarning = shown


def _main(argv):
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.version:
            from . import __version__

            print(__version__)
            return 0
        if args.cmake_dir:
            from . import get_cmake_dir

            try:
                print(get_cmake_dir())
            except FileNotFoundError as exc:
                raise CliError(exc, EXIT_FAILURE) from None
            return 0
        if args.command is None:
            parser.print_help()
            return EXIT_USAGE
        if args.command == "reconstruct" and args.plot_samples < 1:
            raise CliError(f"--plot-samples must be >= 1; got {args.plot_samples}")
        return args.run(args)
    except CliError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.code
    except ValueError as exc:  # a DATA file's (DataError) or an option's
        print(f"{PROG}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `fastae score ... | head`: stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
