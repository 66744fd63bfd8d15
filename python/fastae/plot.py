"""Pictures of what a model learned, as matplotlib Figures (``pip install "fastae[plot]"``).

    import fastae.plot
    fig = fastae.plot.reconstructions(ae, X_test[:8])   # originals above reconstructions
    fig.savefig("reconstructions.png")                    # or show it in a notebook

- ``history(est)``: the training (and validation) loss per epoch;
- ``reconstructions(est, X, image_shape=(28, 28))``: inputs above their reconstructions (and, for
  an ``AnomalyDetector``, the per-pixel squared errors that made a sample unusual);
- ``codes(est, X, y)``: the codes in 2-D (their first two principal components when the code is
  wider than 2), coloured by label;
- ``samples(vae)``: images drawn from a generative estimator (one with ``sample`` and
  ``inverse_transform``, such as the variational autoencoder).

Each returns a ``matplotlib.figure.Figure`` made without pyplot (no window, no global figure
state; a notebook shows it, ``fig.savefig`` writes it with any backend). matplotlib is imported
only when one of them is called: ``import fastae`` and ``import fastae.plot`` never import it.
An ``AnomalyDetector`` may be given wherever an autoencoder is: its fitted ``autoencoder_`` is
used.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ._compat import NotFittedError

__all__ = ["codes", "history", "reconstructions", "samples"]

_INSTALL = 'pip install "fastae[plot]"'


def _figure(**kwargs: Any) -> Any:
    """A new matplotlib Figure, not registered with pyplot; ImportError naming the extra when
    matplotlib is not installed."""
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(f"fastae.plot needs matplotlib, which is not installed: {_INSTALL} "
                          f"(or pip install matplotlib)") from exc
    return Figure(**kwargs)


def _model(est: Any) -> Any:
    """The estimator whose network is pictured: an AnomalyDetector's fitted ``autoencoder_``, else est."""
    if hasattr(est, "feature_errors") and hasattr(est, "autoencoder"):  # an AnomalyDetector
        if not hasattr(est, "autoencoder_"):
            raise NotFittedError(f"This {type(est).__name__} instance is not fitted yet: call fit before plotting it.")
        return est.autoencoder_
    return est


def _images(values: np.ndarray, image_shape: Sequence[int], name: str) -> np.ndarray:
    """Rows as images of image_shape; ValueError when the widths do not match."""
    shape = tuple(int(s) for s in image_shape)
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise ValueError(f"image_shape must be (height, width) or (height, width, channels) of positive ints; "
                         f"got image_shape={image_shape!r}")
    if values.ndim != 2 or values.shape[1] != int(np.prod(shape)):
        raise ValueError(f"image_shape={shape} holds {int(np.prod(shape))} values but each row of {name} has "
                         f"{values.shape[1] if values.ndim == 2 else values.shape}; pass the image_shape of the data")
    return values.reshape((values.shape[0],) + shape)


def _count(n: Any, name: str) -> int:
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{name} must be a positive int; got {name}={n!r}")
    return int(n)


def _show(ax: Any, image: np.ndarray, vmin: float, vmax: float, cmap: str = "gray_r") -> None:
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 3:  # colour: imshow takes RGB(A) in [0, 1]
        ax.imshow(np.clip((image - vmin) / (vmax - vmin or 1.0), 0.0, 1.0))
    else:
        ax.imshow(image, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def history(est: Any) -> Any:
    """The loss per epoch of a fitted estimator's ``history_`` ("loss", and "val_loss" where the
    epochs have one), on a log scale, with the best epoch marked when ``best_epoch_`` is set.
    Returns a matplotlib Figure with one Axes."""
    model = _model(est)
    record = getattr(model, "history_", None)
    if record is None:
        raise NotFittedError(f"{type(model).__name__} has no history_: fit it before plotting its history")
    loss = np.asarray(record.get("loss", []), dtype=np.float64)
    if loss.size == 0:
        raise ValueError(f"{type(model).__name__}.history_ holds no epochs (weights set or loaded without training)")
    fig = _figure(figsize=(6.0, 4.0), layout="constrained")
    ax = fig.add_subplot()
    epochs = np.arange(1, loss.size + 1)
    ax.plot(epochs, loss, marker="o" if loss.size <= 30 else None, label="loss")
    val = np.asarray(record.get("val_loss", []), dtype=np.float64)
    if val.size == loss.size and np.isfinite(val).any():
        ax.plot(epochs, val, marker="o" if loss.size <= 30 else None, label="val_loss")
    best = getattr(model, "best_epoch_", None)
    if best is not None and 1 <= best <= loss.size:
        ax.axvline(best, color="0.6", linestyle=":", label=f"best epoch ({best})")
    positive = np.concatenate([loss, val if val.size == loss.size else []])
    positive = positive[np.isfinite(positive)]
    if positive.size and (positive > 0).all():
        ax.set_yscale("log")
    loss_name = getattr(model, "loss_function_", None)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"loss ({loss_name})" if loss_name else "loss")
    ax.set_title(f"{type(model).__name__}: training history")
    ax.legend()
    return fig


def reconstructions(est: Any, X: Any, image_shape: Sequence[int] = (28, 28), n_images: int = 8) -> Any:
    """The first ``n_images`` rows of X (top row) above their reconstructions ``predict(X)``
    (second row), each reshaped to ``image_shape``; for an AnomalyDetector a third row shows
    ``feature_errors`` (the squared error of each pixel) with the sample's score. X is in the units
    the estimator takes (times its input_scale, if set, for display). Returns a Figure with
    2 (or 3) x n axes, one image each."""
    n = _count(n_images, "n_images")
    model = _model(est)
    X = X[:n] if hasattr(X, "shape") and len(getattr(X, "shape", ())) == 2 else np.asarray(X)[:n]
    recon = np.asarray(model.predict(X), dtype=np.float64)
    originals = X.toarray() if hasattr(X, "toarray") else np.asarray(X)
    originals = originals.astype(np.float64)
    scale = getattr(model, "input_scale", None)
    if scale is not None:
        originals = originals * scale
    originals = _images(originals, image_shape, "X")
    recon = _images(recon, image_shape, "the reconstructions")
    errors = None
    if model is not est:
        errors = _images(np.asarray(est.feature_errors(X), dtype=np.float64), image_shape, "the errors")
        scores = np.asarray(est.score_samples(X))
    count = originals.shape[0]
    rows = 2 if errors is None else 3
    fig = _figure(figsize=(1.3 * count + 1.2, 1.4 * rows + 0.4), layout="constrained")
    axes = fig.subplots(rows, count, squeeze=False)
    vmin = float(min(originals.min(), recon.min()))
    vmax = float(max(originals.max(), recon.max()))
    for i in range(count):
        _show(axes[0, i], originals[i], vmin, vmax)
        _show(axes[1, i], recon[i], vmin, vmax)
        if errors is not None:
            error = errors[i] if errors[i].ndim == 2 else errors[i].sum(axis=-1)
            _show(axes[2, i], error, 0.0, float(errors.max()) or 1.0, cmap="magma")
            axes[2, i].set_xlabel(f"{scores[i]:.3g}", fontsize=8)
    labels = ["original", "reconstruction", "squared error\n(score below)"]
    for r in range(rows):
        axes[r, 0].set_ylabel(labels[r], fontsize=9)
    name = type(model).__name__ if model is est else f"{type(est).__name__} ({type(model).__name__})"
    fig.suptitle(f"{name}: inputs and reconstructions")
    return fig


def _first_two_components(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The projection of the rows of Z on its first two principal components (NumPy SVD of the
    centred codes; each axis' sign fixed so that its largest loading is positive) and the
    fraction of the variance each explains."""
    centred = Z - Z.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    vt = vt[:2]
    signs = np.sign(vt[np.arange(2), np.argmax(np.abs(vt), axis=1)])
    vt = vt * signs[:, None]
    total = float((s ** 2).sum())
    explained = (s[:2] ** 2) / total if total > 0 else np.zeros(2)
    return centred @ vt.T, explained


def codes(est: Any, X: ArrayLike, y: ArrayLike | None = None, max_classes: int = 20) -> Any:
    """A scatter plot of the codes ``transform(X)`` in 2-D, coloured by label y: the codes
    themselves when the code has 2 units, their first two principal components (computed in
    NumPy, the explained variance in the axis labels) when it is wider, and the code against the
    sample's row when it has 1 unit. Labels with at most ``max_classes`` distinct values get one
    colour each and a legend (one scatter collection per label, in sorted order); other numeric
    labels a colour scale. Returns a Figure."""
    model = _model(est)
    Z = np.asarray(model.transform(X), dtype=np.float64)
    if Z.ndim != 2 or Z.shape[0] == 0:
        raise ValueError(f"transform returned an array of shape {Z.shape}; codes needs (n_samples, code size)")
    n, width = Z.shape
    if width == 1:
        points, xlabel, ylabel = np.column_stack([np.arange(n), Z[:, 0]]), "sample", "code0"
    elif width == 2:
        points, xlabel, ylabel = Z, "code0", "code1"
    else:
        points, explained = _first_two_components(Z)
        xlabel = f"PC1 of the codes ({100 * explained[0]:.0f}% of the variance)"
        ylabel = f"PC2 of the codes ({100 * explained[1]:.0f}% of the variance)"
    fig = _figure(figsize=(6.0, 5.0), layout="constrained")
    ax = fig.add_subplot()
    size = 12 if n <= 2000 else 4
    if y is None:
        ax.scatter(points[:, 0], points[:, 1], s=size, alpha=0.7)
    else:
        labels = np.asarray(y)
        if labels.ndim != 1 or labels.shape[0] != n:
            raise ValueError(f"y must hold one label per row of X ({n}); got shape {labels.shape}")
        classes = np.unique(labels)
        if classes.size <= max_classes:
            cmap = _colours(classes.size)
            for k, label in enumerate(classes):
                mask = labels == label
                ax.scatter(points[mask, 0], points[mask, 1], s=size, alpha=0.7, color=cmap(k), label=str(label))
            ax.legend(title="label", markerscale=2, fontsize=8, loc="best")
        elif labels.dtype.kind in "biuf":
            dots = ax.scatter(points[:, 0], points[:, 1], s=size, alpha=0.7, c=labels, cmap="viridis")
            fig.colorbar(dots, ax=ax, label="y")
        else:
            raise ValueError(f"y has {classes.size} distinct non-numeric labels; at most max_classes={max_classes} "
                             f"can have a colour each")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(f"{type(model).__name__}: codes of {n} samples ({width} units)")
    return fig


def _colours(n: int) -> Any:
    from matplotlib import colormaps

    return colormaps["tab10" if n <= 10 else "tab20"]


def samples(vae: Any, n: int = 16, image_shape: Sequence[int] = (28, 28), random_state: Any = None,
            n_cols: int = 8) -> Any:
    """A grid of ``n`` samples drawn from a fitted generative estimator: one with ``sample`` and
    ``inverse_transform`` (fastae's variational autoencoder: ``sample(n, random_state)`` draws
    codes from the prior and decodes them). When ``sample`` returns codes rather than rows of
    ``image_shape`` (or, as scikit-learn's mixtures do, a tuple whose first item is the draws),
    they are decoded with ``inverse_transform``. Raises TypeError for an estimator without
    ``sample`` or ``inverse_transform`` (a plain Autoencoder has no prior to draw from). Returns a
    Figure with one axes per sample."""
    missing = [name for name in ("sample", "inverse_transform") if not callable(getattr(vae, name, None))]
    if missing:
        raise TypeError(f"samples needs a generative estimator with sample(n) and inverse_transform (such as "
                        f"fastae's variational autoencoder); {type(vae).__name__} has no {' or '.join(missing)}")
    count = _count(n, "n")
    n_cols = _count(n_cols, "n_cols")
    try:
        takes_seed = "random_state" in inspect.signature(vae.sample).parameters
    except (TypeError, ValueError):  # no signature (a builtin): pass the seed only when asked to
        takes_seed = random_state is not None
    if random_state is not None and not takes_seed:
        raise TypeError(f"{type(vae).__name__}.sample takes no random_state; call samples(..., random_state=None)")
    drawn = vae.sample(count, random_state=random_state) if takes_seed else vae.sample(count)
    if isinstance(drawn, tuple):
        drawn = drawn[0]
    drawn = np.asarray(drawn, dtype=np.float64)
    if drawn.ndim == 2 and drawn.shape[1] != int(np.prod(image_shape)):
        drawn = np.asarray(vae.inverse_transform(drawn), dtype=np.float64)
    images = _images(drawn, image_shape, "the samples")
    rows = -(-images.shape[0] // n_cols)
    cols = min(n_cols, images.shape[0])
    fig = _figure(figsize=(1.2 * cols + 0.4, 1.2 * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    vmin, vmax = float(images.min()), float(images.max())
    for k, ax in enumerate(axes.flat):
        if k < images.shape[0]:
            _show(ax, images[k], vmin, vmax)
        else:
            fig.delaxes(ax)
    fig.suptitle(f"{type(vae).__name__}: {images.shape[0]} samples")
    return fig
