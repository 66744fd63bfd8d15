"""Checks and conversions of the data (arrays, sample weights, data frames, SciPy sparse
matrices), each raising an error that names the argument, the bad value and where it is. The C++
core checks again what it owns (shapes, finiteness, ranges); these checks exist so that errors
name Python arguments and happen before any work starts. The hyperparameters' checks are in
_params.py."""

from __future__ import annotations

import math
import sys
from typing import Any, Callable, Optional, overload

import numpy as np
from numpy.typing import ArrayLike

from . import _params

# bce targets must lie in [0, 1]; this much rounding outside is forgiven (a MinMaxScaler's 1 can
# come out as 1.0000001 in float32). The C++ core uses the same slack (model_impl.h, kUnitRangeSlack).
UNIT_RANGE_SLACK = 1e-6

# Rows checked for NaN/inf at a time: bounds the temporary boolean array to a few MB.
_FINITE_CHECK_ROWS = 4096


@overload
def check_sample_weight(sample_weight: None, n_samples: int, name: str = ...) -> None: ...


@overload
def check_sample_weight(sample_weight: ArrayLike, n_samples: int, name: str = ...) -> np.ndarray: ...


def check_sample_weight(sample_weight: Optional[ArrayLike], n_samples: int,
                        name: str = "sample_weight") -> Optional[np.ndarray]:
    """None, or a 1-D array of n_samples finite numbers >= 0, as C-contiguous float32."""
    if sample_weight is None:
        return None
    try:
        w = np.asarray(sample_weight)
    except Exception as exc:
        raise ValueError(f"{name} could not be read as an array: {exc}") from None
    if w.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold real numbers; got dtype {w.dtype}")
    if w.ndim != 1 or w.shape[0] != n_samples:
        raise ValueError(f"{name} must be 1-D with one value per sample ({n_samples}); got shape {w.shape}")
    with np.errstate(over="ignore"):
        w32 = np.ascontiguousarray(w, dtype=np.float32)
    bad = ~(np.isfinite(w32) & (w32 >= 0))
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{name} must hold finite numbers >= 0; got {w[i]!r} at index {i}")
    return w32



class NotANumberError(TypeError, ValueError):
    """An array that holds something other than numbers (an object array with a dict in it): a
    TypeError, as NumPy's conversion raises it, and a ValueError, as fastae's other input errors."""


_FLOAT32_MAX = float(np.finfo(np.float32).max)

_RESHAPE_HINT = ("Reshape your data either using array.reshape(-1, 1) if your data has a single feature or "
                 "array.reshape(1, -1) if it contains a single sample.")


def check_shape(arr: Any, name: str, n_features: Optional[int] = None, owner: Optional[str] = None) -> None:
    """2-D, at least one row and one column, and n_features columns when given (owner: who expects
    them, the estimator's class name; the wording is scikit-learn's)."""
    if arr.ndim != 2:
        hint = f" {_RESHAPE_HINT}" if arr.ndim < 2 else ""
        raise ValueError(f"{name} must be a 2-D array (n_samples, n_features); got shape {arr.shape}.{hint}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty: 0 sample(s) (shape={arr.shape}) while a minimum of 1 is required.")
    if arr.shape[1] == 0:
        raise ValueError(f"{name} is empty: 0 feature(s) (shape={arr.shape}) while a minimum of 1 is required.")
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(f"{name} has {arr.shape[1]} features, but {owner or 'the model'} is expecting {n_features} "
                         f"features as input.")


def check_bytes(X: Any, name: str, n_features: Optional[int] = None, owner: Optional[str] = None) -> np.ndarray:
    """A 2-D uint8 array as C-contiguous (8-bit data is never widened to float here)."""
    if not isinstance(X, np.ndarray) or X.dtype != np.uint8:
        raise ValueError(f"{name} must be a uint8 array like X (8-bit training data); got "
                         f"{getattr(X, 'dtype', type(X).__name__)}")
    check_shape(X, name, n_features, owner)
    return np.ascontiguousarray(X)

def ndim_or_none(X: Any) -> Optional[int]:
    """np.ndim(X), or None where X cannot be read as an array (a ragged list): check_array then
    reports it, naming the argument."""
    try:
        return np.ndim(X)
    except Exception:
        return None


def value_text(value: Any) -> str:
    """A value as an error message names it: NaN, inf, -inf, or the number as Python prints it."""
    value = float(value)
    return "NaN" if math.isnan(value) else repr(value)


def first_bad_value(original: np.ndarray,
                    bad_of_block: Callable[[np.ndarray], np.ndarray]) -> Optional[tuple[int, int, Any]]:
    """(row, column, value) of the first element of the 2-D array `original` (row-major order)
    for which bad_of_block(block) is True, scanning a few thousand rows at a time; None if none."""
    for start in range(0, original.shape[0], _FINITE_CHECK_ROWS):
        block = original[start:start + _FINITE_CHECK_ROWS]
        bad = bad_of_block(block)
        if bad.any():
            i, j = np.argwhere(bad)[0]
            return start + int(i), int(j), block[i, j]
    return None


def _raise_first_nonfinite(original, name, float32=True, first_row=0):
    """The error for the first value of `original` that is NaN, infinite or (float32) beyond
    float32's range, named by its value and position as the caller passed them."""
    with np.errstate(invalid="ignore", over="ignore"):
        found = first_bad_value(original, lambda b: ~np.isfinite(b) | ((np.abs(b) > _FLOAT32_MAX) if float32 and
                                                                        b.dtype.itemsize > 4 else False))
    if found is None:
        return
    i, j, v = found
    i += first_row
    if math.isfinite(float(v)):
        raise ValueError(f"{name} contains {value_text(v)} at row {i}, column {j}, beyond float32's range "
                         f"(+-{_FLOAT32_MAX:.4g}); values must be finite and within float32's range")
    raise ValueError(f"{name} contains a non-finite value ({value_text(v)}) at row {i}, column {j}")


def check_array(X: ArrayLike, name: str = "X", n_features: Optional[int] = None, unit_range: bool | str = False,
                scale: Optional[float] = None, finite: bool = True, owner: Optional[str] = None,
                first_row: int = 0) -> np.ndarray:
    """X as a 2-D C-contiguous float32 array, with no copy when it already is one.

    Other numeric dtypes and layouts (float64, integers, Fortran order, strided views) are
    converted once; an object array is read as float64 first (scikit-learn does the same); with
    `scale`, the result is X * scale (a new array). A float64 value beyond float32's range is
    reported by its value and position as given. finite=False leaves the NaN/inf scan to the C++
    core, which checks every array it is given (without the temporary arrays a NumPy scan needs)
    and names the value and its row. Raises ValueError for non-numeric data, a shape other than
    2-D, no rows or no columns, NaN or inf, a width other than n_features (owner: the estimator's
    name, for the message), or (unit_range: True or the loss's name) values outside [0, 1]; NotANumberError (a TypeError
    and a ValueError) for an object array that holds something other than numbers. first_row:
    the row number of X's first row in the caller's data (X a chunk of it), for the messages.
    """
    if isinstance(X, np.ndarray):
        arr = X
    else:
        try:
            arr = np.asarray(X)
        except Exception as exc:  # ragged lists and the like
            raise ValueError(f"{name} could not be read as an array: {exc}") from None
    kind = arr.dtype.kind
    if kind == "c":
        raise ValueError(f"{name} must hold real numbers (bool, int, uint or float); got dtype {arr.dtype} "
                         f"(Complex data not supported)")
    if kind not in "biufO":
        raise ValueError(f"{name} must hold real numbers (bool, int, uint or float); got dtype {arr.dtype}")
    check_shape(arr, name, n_features, owner)
    if kind == "O":
        try:
            arr = arr.astype(np.float64)
        except TypeError as exc:
            raise NotANumberError(f"{name} must hold real numbers (bool, int, uint or float); its object array holds "
                                  f"something else: {exc}") from None
        except ValueError as exc:
            raise ValueError(f"{name} must hold real numbers (bool, int, uint or float); its object array holds "
                             f"something else: {exc}") from None
    original = arr
    if arr.dtype.kind == "f" and arr.dtype.itemsize > 4:
        try:
            with np.errstate(over="raise"):  # a value beyond float32's range: named below, as given
                arr = np.ascontiguousarray(arr, dtype=np.float32)
        except FloatingPointError:
            _raise_first_nonfinite(original, name, first_row=first_row)
            raise  # not reached: the scan finds the value that overflowed
    else:
        arr = np.ascontiguousarray(arr, dtype=np.float32)
    if finite and original.dtype.kind == "f":
        for start in range(0, arr.shape[0], _FINITE_CHECK_ROWS):
            if not np.isfinite(arr[start:start + _FINITE_CHECK_ROWS]).all():
                _raise_first_nonfinite(original, name, first_row=first_row)
    if scale is not None:
        arr = arr * np.float32(scale)
    if unit_range:
        lo, hi = float(arr.min()), float(arr.max())
        if not (np.isfinite(lo) and np.isfinite(hi)):  # NaN propagates into min/max; inf is an extreme
            _raise_first_nonfinite(arr, name, first_row=first_row)
        if lo < -UNIT_RANGE_SLACK or hi > 1.0 + UNIT_RANGE_SLACK:
            loss = unit_range if isinstance(unit_range, str) else "bce"
            raise ValueError(f"{name} must lie in [0, 1] for loss={loss!r} (its targets are probabilities); "
                             f"got values in [{lo}, {hi}]. Scale it (e.g. X / 255 for 8-bit images) or use loss='mse'")
    return arr


def in_unit_range(arr: np.ndarray) -> bool:
    """Whether every value of the float32 array lies in [0, 1] (with the rounding slack bce
    forgives); False when it holds NaN (the engine then names the value as it reads it)."""
    lo, hi = float(arr.min()), float(arr.max())
    return -UNIT_RANGE_SLACK <= lo and hi <= 1.0 + UNIT_RANGE_SLACK


# ---- other containers: data frames and SciPy sparse matrices -----------------------------------

def is_sparse(X: Any) -> bool:
    """A SciPy sparse matrix or array (without importing SciPy: one exists only if it is loaded)."""
    sparse = sys.modules.get("scipy.sparse")
    return sparse is not None and sparse.issparse(X)


def is_dataframe(X: Any) -> bool:
    """A data frame (pandas, polars, ...): 2-D, with columns and per-column dtypes."""
    return (not isinstance(X, np.ndarray) and hasattr(X, "columns") and hasattr(X, "dtypes")
            and len(getattr(X, "shape", ())) == 2)


def feature_names_of(X: Any) -> Optional[np.ndarray]:
    """The column names of a data frame whose names are all strings (scikit-learn's rule:
    otherwise None, and a TypeError when string and non-string names are mixed)."""
    if not is_dataframe(X):
        return None
    names = np.asarray(list(X.columns), dtype=object)
    if len(names) == 0:
        return None
    types = sorted({type(v).__qualname__ for v in names})
    if len(types) > 1 and "str" in types:
        raise TypeError(f"Feature names are only supported if all input features have string names, but your input "
                        f"has {types} as feature name / column name types. If you want feature names to be stored "
                        f"and validated, you must convert them all to strings, by using "
                        f"X.columns = X.columns.astype(str) for example. Otherwise you can remove feature / column "
                        f"names from your input data, or convert them all to a non-string data type.")
    return names if types == ["str"] else None


def dataframe_to_array(X: Any, name: str) -> np.ndarray:
    """A data frame's values as a NumPy array: as they are when every column has a NumPy numeric
    dtype; otherwise as float64, with missing values (pandas' NA) as NaN, which the engine
    reports by row and column. A column that does not hold numbers is named."""
    dtypes = list(X.dtypes)
    if all(isinstance(dt, np.dtype) and dt.kind in "biuf" for dt in dtypes):
        return np.asarray(X)
    for column, dt in zip(X.columns, dtypes):
        if getattr(dt, "kind", "O") not in "biuf":
            if not isinstance(dt, np.dtype) or dt.kind != "O":
                raise ValueError(f"{name} must hold real numbers; its column {column!r} has dtype {dt}")
    try:
        return X.to_numpy(dtype=np.float64, na_value=np.nan)  # pandas
    except (TypeError, ValueError):
        pass
    # An object column: pandas' missing values (pd.NA, None) become NaN; anything else that is not
    # a number is named by its column and row.
    values: Any
    try:
        values = X.to_numpy(dtype=object, na_value=np.nan)  # pandas
    except TypeError:
        values = np.asarray(X.to_numpy(), dtype=object)  # other frames (polars: nulls become None)
        # (NumPy's stubs take no None operand; on an object array it compares each element with None)
        values = np.where(np.equal(values, None), np.nan, values)  # type: ignore[call-overload]
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        for j, column in enumerate(X.columns):
            for i, v in enumerate(values[:, j]):
                try:
                    float(v)
                except (TypeError, ValueError):
                    raise ValueError(f"{name} must hold real numbers; its column {column!r} holds {v!r} at row {i}"
                                     ) from None
        raise


def check_sparse(X: Any, name: str, n_features: Optional[int] = None, owner: Optional[str] = None) -> Any:
    """A SciPy sparse X as CSR (rows can then be cut), its dtype and shape checked."""
    if X.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold real numbers (bool, int, uint or float); got a sparse matrix of dtype "
                         f"{X.dtype}")
    check_shape(X, name, n_features, owner)
    return X.tocsr()


SPARSE_CHUNK_ROWS = 4096


def densify(X: Any, start: int = 0, stop: Optional[int] = None) -> np.ndarray:
    """Rows [start, stop) of a CSR matrix as a C-contiguous float64 or float32 array (float64 when
    X is wider than float32, so that check_array can name a value beyond float32's range)."""
    block = X[start:stop]
    dtype = np.float64 if X.dtype.kind == "f" and X.dtype.itemsize > 4 else np.float32
    return np.ascontiguousarray(block.toarray(), dtype=dtype)


def densify_all(X: Any, name: str) -> np.ndarray:
    """The whole CSR matrix as one float32 array (for training: the engine reads dense batches,
    and its first layer then skips the zeros), filled a few thousand rows at a time so that the
    peak is the float32 array; MemoryError when it does not fit in the memory available."""
    n, d = X.shape
    need = 4 * n * d
    available = _params.memory_available_bytes  # (looked up here: one stand-in for it reaches both checks)
    if need > available():
        raise MemoryError(f"{name} is a sparse {n} x {d} matrix; training needs it dense in float32, "
                          f"{need / 2**30:.1f} GiB, more than the {available() / 2**30:.1f} GiB of memory "
                          f"available now")
    out = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, SPARSE_CHUNK_ROWS):
        out[start:start + SPARSE_CHUNK_ROWS] = check_array(densify(X, start, start + SPARSE_CHUNK_ROWS), name,
                                                           finite=False, first_row=start)
    return out
