"""A fitted estimator mapped over the chunks of a Dask array or the partitions of a Dask DataFrame:
``fastae.dask.transform(est, X)``, ``predict`` and ``score_samples``, lazily, each block equal bit
for bit to the estimator's own method on those rows (an output row does not depend on the other
rows of its call).

The model ships once, as its model-file bytes (``est.to_bytes()``, a dependency of every block's
task, so each worker receives it once and parses it once per process); the blocks run there with
``n_threads`` engine threads each (default 1: Dask runs blocks in parallel). Out-of-core inputs
(``read_npy``: an ``.npy`` file memory-mapped block by block on the workers) are encoded without
ever being loaded whole.

Dask is optional: ``pip install "fastae[dask]"`` brings ``dask[array,dataframe]`` and
``distributed``; this module imports it when called.
"""
from __future__ import annotations

import hashlib
import os
import threading
from typing import Any, Optional

import numpy as np

__all__ = ["transform", "predict", "score_samples", "read_npy"]

_METHODS = ("transform", "predict", "score_samples")

# Estimators parsed on this process, by the digest of their bytes (a worker's blocks share one).
_parsed: dict[tuple[bytes, int], Any] = {}
_parsed_lock = threading.Lock()


def _dask():
    try:
        import dask
        import dask.array
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("fastae.dask needs Dask: pip install \"fastae[dask]\"") from exc
    return dask


def _estimator(payload, n_threads):
    key = (hashlib.blake2b(payload, digest_size=16).digest(), n_threads)
    with _parsed_lock:
        est = _parsed.get(key)
        if est is None:
            from . import from_bytes
            est = from_bytes(payload)
            est.set_params(n_threads=n_threads)
            if len(_parsed) >= 8:
                _parsed.clear()
            _parsed[key] = est
    return est


def _block(X, payload, method, n_threads):
    return getattr(_estimator(payload, n_threads), method)(X)


def _partition(df, payload, method, n_threads, columns):
    import pandas as pd
    out = _block(df, payload, method, n_threads)
    if out.ndim == 1:
        return pd.Series(out, index=df.index, name=method)
    return pd.DataFrame(out, index=df.index, columns=columns)


def _output_columns(est, method):
    """The output's column names (None: one score per sample)."""
    if method == "score_samples":
        return None
    if method == "transform":
        return [str(c) for c in est.get_feature_names_out()]
    names = getattr(est, "feature_names_in_", None)
    return [str(c) for c in names] if names is not None else [str(i) for i in range(est.n_features_in_)]


def _map(est, X, method, n_threads):
    dask = _dask()
    from . import _params
    n_threads = _params.resolve_n_threads(n_threads)
    payload = dask.delayed(est.to_bytes(), pure=True)  # one node of the graph: shipped once per worker
    columns = _output_columns(est, method)
    width = None if columns is None else len(columns)
    if hasattr(X, "map_partitions"):  # a Dask DataFrame
        import pandas as pd
        if columns is None:
            meta = pd.Series([], dtype=np.float32, name=method)
        else:
            meta = pd.DataFrame({c: pd.Series([], dtype=np.float32) for c in columns})
        return X.map_partitions(_partition, payload, method, n_threads, columns, meta=meta)
    da = dask.array
    if not isinstance(X, da.Array):
        raise TypeError(f"fastae.dask.{method} takes a dask.array.Array or a dask DataFrame, got "
                        f"{type(X).__name__} (use the estimator's own {method} for in-memory data)")
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (samples, features), got a dask array of shape {X.shape}")
    if X.numblocks[1] != 1:
        X = X.rechunk({1: -1})  # a block holds whole rows
    if width is None:
        return X.map_blocks(_block, payload, method, n_threads, dtype=np.float32, drop_axis=1,
                            meta=np.empty((0,), np.float32))
    return X.map_blocks(_block, payload, method, n_threads, dtype=np.float32, chunks=(X.chunks[0], (width,)),
                        meta=np.empty((0, 0), np.float32))


def transform(est: Any, X: Any, *, n_threads: Optional[int] = 1) -> Any:
    """est.transform (the codes) of every block of rows of X, lazily: a dask array (or a Dask
    DataFrame of the code columns, for a Dask DataFrame X)."""
    return _map(est, X, "transform", n_threads)


def predict(est: Any, X: Any, *, n_threads: Optional[int] = 1) -> Any:
    """est.predict (the reconstructions) of every block of rows of X, lazily."""
    return _map(est, X, "predict", n_threads)


def score_samples(est: Any, X: Any, *, n_threads: Optional[int] = 1) -> Any:
    """est.score_samples (one score per sample) of every block of rows of X, lazily: a 1-D dask
    array (a Dask Series for a Dask DataFrame)."""
    return _map(est, X, "score_samples", n_threads)


def _read_rows(path, start, stop):
    return np.array(np.load(path, mmap_mode="r")[start:stop])


def read_npy(path: str | os.PathLike[str], chunk_rows: int) -> Any:
    """A 2-D ``.npy`` file as a dask array of blocks of chunk_rows rows, each read (memory-mapped)
    by the worker that runs it: the file is never loaded whole, nor sent through the scheduler."""
    dask = _dask()
    path = os.fspath(path)
    mm = np.load(path, mmap_mode="r")
    if mm.ndim != 2:
        raise ValueError(f"read_npy: {path!r} holds an array of shape {mm.shape}; it must be 2-D")
    chunk_rows = int(chunk_rows)
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    n, d = mm.shape
    blocks = [dask.array.from_delayed(dask.delayed(_read_rows, pure=True)(path, a, min(a + chunk_rows, n)),
                                      shape=(min(a + chunk_rows, n) - a, d), dtype=mm.dtype)
              for a in range(0, n, chunk_rows)]
    return dask.array.concatenate(blocks, axis=0)
