"""fastae.choose_code_size: the autoencoder tutorial's first question (how small can the code be?)
answered by training one autoencoder per candidate size on the same split."""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

import numpy as np

from ._params import available_cpus, check_hidden_layer_sizes, check_real, seed_from


def recommend_code_size(sizes: Sequence[int], val_losses: Sequence[float], tolerance: float) -> int:
    """The smallest size whose validation loss is within ``tolerance`` (relative) of the best:
    loss <= best + tolerance * |best|. Sizes whose loss is not finite are never recommended."""
    finite = [(size, loss) for size, loss in zip(sizes, val_losses) if math.isfinite(loss)]
    if not finite:
        raise ValueError("no candidate has a finite validation loss: nothing to recommend")
    best = min(loss for _, loss in finite)
    return min(size for size, loss in finite if loss <= best + tolerance * abs(best))


class CodeSizeReport:
    """What choose_code_size measured: ``sizes`` (ascending), ``val_losses`` (each model's mean
    validation loss, the model's own loss), ``train_seconds`` (wall time of each fit),
    ``recommended`` (the smallest size within ``tolerance`` of the best loss) and ``models`` (the
    fitted Autoencoders, by size). ``str(report)`` is a table."""

    def __init__(self, sizes: Sequence[int], val_losses: Sequence[float], train_seconds: Sequence[float],
                 models: dict[int, Any], tolerance: float, loss_name: str) -> None:
        self.sizes = list(sizes)
        self.val_losses = [float(v) for v in val_losses]
        self.train_seconds = [float(s) for s in train_seconds]
        self.models = dict(models)
        self.tolerance = float(tolerance)
        self.loss_name = loss_name
        self.recommended = recommend_code_size(self.sizes, self.val_losses, self.tolerance)

    def __str__(self) -> str:
        best = min(v for v in self.val_losses if math.isfinite(v))
        lines = [f"code size  val {self.loss_name:<8}  vs best   train s",
                 "---------  ------------  -------  -------"]
        for size, loss, seconds in zip(self.sizes, self.val_losses, self.train_seconds):
            mark = "  <- recommended" if size == self.recommended else ""
            ratio = f"{loss / best:7.3f}" if best > 0 else "    n/a"
            lines.append(f"{size:9d}  {loss:12.6f}  {ratio}  {seconds:7.2f}{mark}")
        lines.append(f"recommended: {self.recommended} (the smallest code within {self.tolerance:g} of the best "
                     f"validation loss, relative)")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"CodeSizeReport(sizes={self.sizes}, val_losses={[round(v, 6) for v in self.val_losses]}, "
                f"recommended={self.recommended})")


def _check_candidates(candidates):
    sizes = check_hidden_layer_sizes(candidates, "candidates")
    if len(set(sizes)) != len(sizes):
        raise ValueError(f"candidates must be distinct sizes; got {candidates!r}")
    return sorted(sizes)


def _rows(X, index):
    return X.iloc[index] if hasattr(X, "iloc") else X[index]


def choose_code_size(X: Any, candidates: Sequence[int] = (2, 4, 8, 16, 32, 64, 128), validation_split: float = 0.2,
                     tolerance: float = 0.02, random_state: Any = None, **autoencoder_params: Any) -> CodeSizeReport:
    """Trains one fastae.Autoencoder per candidate code size on the same training rows and
    measures each one's loss on the same held-out rows (a seeded random ``validation_split`` of
    X). Returns a CodeSizeReport: sizes, val_losses, train_seconds, models and ``recommended``,
    the smallest code whose validation loss is within ``tolerance`` (relative) of the best.

    ``autoencoder_params`` go to every Autoencoder; with ``hidden_layer_sizes`` the candidates
    replace its last width (the code): ``hidden_layer_sizes=(256, 64)`` with candidates (8, 16)
    trains 256-8 and 256-16 encoders. ``verbose=1`` prints a line per fitted candidate (2 and
    more also gives the models that verbosity).

    Threads: without ``n_threads`` in autoencoder_params, candidates train side by side (the
    engine releases the GIL), as many at once as there are CPUs (at most one per candidate),
    sharing the CPUs between them; small codes on few features gain more from that than from
    splitting each batch over every CPU. With ``n_threads`` they train one after another, each
    with that many threads. ``random_state`` (None, an int, a RandomState or Generator) draws
    the split and every model's seed (the same seed for each candidate).
    """
    from ._autoencoder import Autoencoder

    sizes = _check_candidates(candidates)
    split = check_real("validation_split", validation_split, 0.0, 1.0)
    tolerance = check_real("tolerance", tolerance, 0.0, math.inf, low_open=False)
    for fixed in ("validation_split", "random_state"):
        autoencoder_params.pop(fixed, None)
    verbose = int(autoencoder_params.pop("verbose", 0) or 0)
    prefix = check_hidden_layer_sizes(autoencoder_params.pop("hidden_layer_sizes", (64,)))[:-1]

    n = X.shape[0] if hasattr(X, "shape") else len(X)
    n_val = int(round(n * split))
    if n_val < 1 or n - n_val < 1:
        raise ValueError(f"validation_split={validation_split!r} of {n} samples leaves {n - n_val} to train on and "
                         f"{n_val} to validate on: both need at least one")
    seed = seed_from(random_state)
    order = np.random.default_rng(seed).permutation(n)
    X_val, X_train = _rows(X, order[:n_val]), _rows(X, order[n_val:])

    explicit_threads = autoencoder_params.get("n_threads") is not None
    cpus = available_cpus()
    parallel = 1 if explicit_threads else max(1, min(len(sizes), cpus))
    threads = autoencoder_params.pop("n_threads", None) if explicit_threads else max(1, cpus // parallel)
    models = {size: Autoencoder(**autoencoder_params, hidden_layer_sizes=(*prefix, size), random_state=seed,
                                n_threads=threads, verbose=verbose if verbose >= 2 else 0) for size in sizes}
    # Every parameter is checked before the first model trains.
    for model in models.values():
        model._validated_params(draw_seed=False)

    def train(size):
        start = time.perf_counter()
        model = models[size].fit(X_train)
        seconds = time.perf_counter() - start
        loss = -model.score(X_val)
        if verbose:
            print(f"choose_code_size: code {size}: val {model.loss_function_} {loss:.6f} ({seconds:.2f} s)",
                  flush=True)
        return loss, seconds

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        results = list(pool.map(train, sizes))
    loss_name = models[sizes[0]].loss_function_
    return CodeSizeReport(sizes, [r[0] for r in results], [r[1] for r in results], models, tolerance, loss_name)


