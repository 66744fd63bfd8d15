"""Reading the command line's DATA files: NumPy ``.npy`` and ``.npz``, text tables (``.csv``,
``.tsv``, ``.txt``, gzipped or not) and MNIST's IDX files (gzipped or not). The format is told
by the file's first bytes where it has a signature (npy, npz, gzip, IDX), else by its extension.

Every failure is a DataError (a ValueError) whose message names the file and what is wrong, in
one line: the command line prints it as it is."""

from __future__ import annotations

import gzip
import io
import os
import warnings
import zipfile

import numpy as np

_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"
_GZIP_MAGIC = b"\x1f\x8b"

# IDX type codes (http://yann.lecun.com/exdb/mnist/): the data are big-endian.
_IDX_TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
              0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}

# Keys taken from an .npz holding several arrays when --key is not given, in this order.
_DEFAULT_KEYS = ("X", "x", "data", "x_train", "images")

_TEXT_DELIMITERS = {".csv": ",", ".tsv": "\t"}


class DataError(ValueError):
    """A DATA file that cannot be read, or whose contents cannot be samples."""


class Data:
    """An array read from a file: ``X`` (n_samples, n_features), ``image_shape`` (the shape of
    one sample in the file, when it held more than 2 dimensions, e.g. (28, 28) for MNIST), and
    ``note`` (what was chosen on the reader's behalf, e.g. which .npz key), or None."""

    def __init__(self, X: np.ndarray, image_shape: tuple[int, ...] | None = None, note: str | None = None) -> None:
        self.X, self.image_shape, self.note = X, image_shape, note


def _head(path, n=8):
    with open(path, "rb") as f:
        return f.read(n)


def _check_readable(path):
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file")
    if os.path.isdir(path):
        raise DataError(f"{path}: is a folder, not a data file")


def _idx_from_bytes(raw, path):
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES or not 1 <= raw[3] <= 4:
        raise DataError(f"{path}: not an IDX file (bad header)")
    dtype, ndim = _IDX_TYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: IDX file truncated in its header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise DataError(f"{path}: IDX file of shape {shape} and type {dtype.name} should be {expected} bytes; "
                        f"it is {len(raw)}")
    arr = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="))  # native byte order (uint8: a copy that can be written)


def _is_idx(head):
    return len(head) >= 4 and head[0] == 0 and head[1] == 0 and head[2] in _IDX_TYPES and 1 <= head[3] <= 4


def _read_text(path, opener, ext, header):
    delimiter = _TEXT_DELIMITERS.get(ext)
    with opener() as f:
        first = f.readline()
    fields = [s.strip().strip('"') for s in (first.split(delimiter) if delimiter else first.split())]
    if header is None:  # detected: a first row with a field that is not a number is a header
        header = False
        for s in fields:
            try:
                float(s)
            except ValueError:
                header = True
                break
    try:
        with opener() as f, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an empty file: reported below as empty
            arr = np.loadtxt(f, delimiter=delimiter, skiprows=1 if header else 0, dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise DataError(f"{path}: not a table of numbers: {' '.join(str(exc).split())}"
                        f"{'' if header else ' (if the first row is a header, pass --header)'}") from None
    note = f"{path}: first row taken as a header" if header else None
    return arr, note


def _open_text(path, gzipped):
    if gzipped:
        return lambda: io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace")
    return lambda: open(path, encoding="utf-8", errors="replace")


def _read_npz(path, key):
    try:
        with np.load(path, allow_pickle=False) as data:
            keys = list(data.files)
            if key is None:
                if len(keys) == 1:
                    key = keys[0]
                else:
                    key = next((k for k in _DEFAULT_KEYS if k in keys), None)
                    if key is None:
                        raise DataError(f"{path}: holds {', '.join(keys) or 'no arrays'}; choose one with --key")
                note = (f"{path}: using array {key!r} (it also holds {', '.join(k for k in keys if k != key)}; "
                        f"--key chooses)") if len(keys) > 1 else None
            else:
                note = None
                if key not in keys:
                    raise DataError(f"{path}: has no array {key!r} (it holds: {', '.join(keys) or 'nothing'})")
            return data[key], note
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot read it as an .npz file: {exc}") from None
    except ValueError as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"{path}: cannot read it as an .npz file: {exc}") from None


def npz_keys(path: str | os.PathLike) -> list[str] | None:
    """The names of the arrays of an .npz file, or None when the file is not one."""
    path = os.fspath(path)
    _check_readable(path)
    if not _head(path).startswith(_ZIP_MAGIC):
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return list(data.files)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise DataError(f"{path}: cannot read it as an .npz file: {exc}") from None


def read_array(path: str | os.PathLike, key: str | None = None,
               header: bool | None = None) -> tuple[np.ndarray, str | None]:
    """The array stored in the file at `path`, as it is stored (any shape) and a note (or None).
    key: the array of an .npz; header: True/False for a text table's first row, None to detect."""
    path = os.fspath(path)
    _check_readable(path)
    lower = path.lower()
    ext = os.path.splitext(lower.removesuffix(".gz"))[1]
    try:
        head = _head(path)
    except OSError as exc:
        raise DataError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    is_npz = head.startswith(_ZIP_MAGIC) or (ext == ".npz" and not head)
    if key is not None and not is_npz:
        raise DataError(f"{path}: --key applies to .npz files only")
    if is_npz:
        return _read_npz(path, key)
    if head.startswith(_NPY_MAGIC):
        try:
            return np.load(path, allow_pickle=False), None
        except (OSError, ValueError, EOFError) as exc:
            raise DataError(f"{path}: cannot read it as an .npy file: {' '.join(str(exc).split())}") from None
    if ext in (".npy", ".npz"):
        raise DataError(f"{path}: not a NumPy {ext} file (its first bytes are {head.hex(' ') or 'none: it is empty'})")
    gzipped = head.startswith(_GZIP_MAGIC)
    if gzipped:
        try:
            with gzip.open(path, "rb") as f:
                inner = f.read(8)
        except (OSError, EOFError) as exc:
            raise DataError(f"{path}: cannot read it as a gzip file: {exc}") from None
    else:
        inner = head
    if _is_idx(inner):
        try:
            if gzipped:
                with gzip.open(path, "rb") as f:
                    raw = f.read()
            else:
                with open(path, "rb") as f:
                    raw = f.read()
        except (OSError, EOFError) as exc:
            raise DataError(f"{path}: cannot read it: {exc}") from None
        return _idx_from_bytes(raw, path), None
    if ext in (".csv", ".tsv", ".txt", ".dat") or not inner.startswith(b"\x00"):
        try:
            arr, note = _read_text(path, _open_text(path, gzipped), ext, header)
        except (OSError, EOFError) as exc:
            raise DataError(f"{path}: cannot read it: {exc}") from None
        return arr, note
    raise DataError(f"{path}: unknown format (not .npy, .npz, a .csv table or an IDX file)")


def read_data(path: str | os.PathLike, key: str | None = None, header: bool | None = None) -> Data:
    """A DATA file as samples: a Data whose X is (n_samples, n_features); a 3-D or 4-D array
    (images) is flattened per sample and its sample shape kept as image_shape."""
    arr, note = read_array(path, key, header)
    if arr.dtype.kind not in "biuf":
        raise DataError(f"{path}: holds {arr.dtype} values; DATA must hold numbers")
    if arr.ndim < 2:
        raise DataError(f"{path}: holds a {arr.ndim}-D array of shape {arr.shape}; DATA must be 2-D (n_samples, "
                        f"n_features) or images (n_samples, height, width)")
    if arr.ndim > 4:
        raise DataError(f"{path}: holds a {arr.ndim}-D array of shape {arr.shape}; DATA must be 2-D (n_samples, "
                        f"n_features) or images (n_samples, height, width[, channels])")
    if arr.shape[0] == 0 or int(np.prod(arr.shape[1:])) == 0:
        raise DataError(f"{path}: holds an empty array of shape {arr.shape}")
    image_shape = tuple(int(s) for s in arr.shape[1:]) if arr.ndim > 2 else None
    X = arr.reshape(arr.shape[0], -1)
    if X.dtype == np.bool_:
        X = X.astype(np.float32)
    return Data(np.ascontiguousarray(X), image_shape, note)
