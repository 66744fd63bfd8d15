"""The engine's side of the estimators' inputs: ``engine_errors`` (its input errors in Python's
words) and ``CsrRows`` (a SciPy sparse training input as the engine reads it, never densified)."""

from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Any, Optional

import numpy as np

from ._arrays import value_text


@contextmanager
def engine_errors():
    """The engine's input errors as Python states them: it prints NaN as C++ does ("nan"); here it
    is "NaN", as NumPy and scikit-learn write it."""
    try:
        yield
    except ValueError as exc:
        message = str(exc)
        fixed = re.sub(r"\(-?nan\)", "(NaN)", message)
        if fixed == message or type(exc) is not ValueError:
            raise
        raise ValueError(fixed) from None


class CsrRows:
    """A SciPy sparse training input as the engine reads it (TrainingData's CSR arrays): int64
    row offsets, int32 column indices and float32 values (times input_scale), each batch's rows
    expanded into the engine's batch buffer, so the dense matrix is never built. Has the
    ``shape`` and ``dtype`` (float32) the training driver reads."""

    dtype = np.dtype(np.float32)

    def __init__(self, X: Any, scale: Optional[float], name: str) -> None:
        self.shape = X.shape
        values = np.asarray(X.data)
        with np.errstate(over="ignore", invalid="ignore"):
            scaled = values.astype(np.float32) * np.float32(1.0 if scale is None else scale)
        beyond = ~np.isfinite(scaled) & np.isfinite(values)
        if beyond.any():  # finite in X, not in float32: named as passed, by row and column
            k = int(np.argmax(beyond))
            row = int(np.searchsorted(X.indptr, k, side="right")) - 1
            raise ValueError(f"{name} contains {value_text(values[k])} at row {row}, column {int(X.indices[k])}, "
                             f"beyond float32's range"
                             + (" once multiplied by input_scale" if scale is not None else ""))
        self.values = np.ascontiguousarray(scaled)
        self.indptr = np.ascontiguousarray(X.indptr, dtype=np.int64)
        self.indices = np.ascontiguousarray(X.indices, dtype=np.int32)
        self.engine_input = ("csr", self.indptr, self.indices, self.values, int(X.shape[0]))
