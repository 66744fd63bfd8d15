"""The command line's shared pieces (fastae/_cli.py): the exit codes and the one-line error,
the option types, DATA reading, output checks and writing, plots and model loading."""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import warnings

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
