"""The ``fastae`` command line (also ``python -m fastae``): train, encode, reconstruct, score,
info and demo. docs/cli.md describes it; ``fastae COMMAND --help`` lists each command's options.
This module holds the commands train, encode, reconstruct, score and info and the parser; the
shared pieces (exit codes, option types, reading DATA, writing outputs, plots, loading a model) are
in _cli_common.py, and the demo command in _cli_demo.py.

Every failure ends with one line on stderr, ``fastae: error: ...``, and an exit status: 2 for bad
input (a bad option value, a DATA or MODEL file that is missing or is not what it should be, a
wrong shape), 1 when the work itself fails (training diverged, memory, an output that cannot be
written), 130 when interrupted (Ctrl-C). Everything is checked before any work starts and before
anything is printed, so a bad option never leaves a half-written output or a header behind it."""

from __future__ import annotations

import math
import os
import sys
import time
import warnings
from collections.abc import Sequence

from ._cli_common import (
    _OUTPUT_FORMATS,
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    PROG,
    CliError,
    _add_data_options,
    _check_output,
    _check_plot_path,
    _data_error,
    _image_shape,
    _image_shape_for,
    _int_list,
    _load_model,
    _names,
    _note,
    _Parser,
    _plot_module,
    _read,
    _save_figure,
    _threads,
    _validated_estimator,
    _write_array,
)
from ._cli_demo import _add_demo_parser

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
    from ._params import HIDDEN_ACTIVATIONS

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
