"""Small real datasets shipped inside the package, so examples and the demo need no network."""

from __future__ import annotations

import os

import numpy as np

_DATA = os.path.join(os.path.dirname(__file__), "data")


def load_digits(scaled: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The UCI 8x8 handwritten digits (1797 samples; see data/DIGITS_LICENSE.txt for source,
    credit and license, CC BY 4.0).

    Returns (images, labels): images (1797, 64), float32 in [0, 1] when ``scaled`` (pixel
    counts 0..16 divided by 16), else the raw uint8 counts; labels (1797,) uint8.
    """
    with np.load(os.path.join(_DATA, "digits.npz")) as d:
        images, labels = d["images"], d["labels"]
    if scaled:
        images = images.astype(np.float32) / np.float32(16.0)
    return images, labels


def load_npz_images(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """x_train and x_test from an .npz such as MNIST's (uint8 0..255 are scaled by 1/255; float
    arrays are taken as they are). Raises ValueError naming what is missing or wrong."""
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise ValueError(f"cannot read {path!r} as an .npz file: {exc}") from None
    if not isinstance(data, np.lib.npyio.NpzFile):  # an .npy: one array, no x_train/x_test
        raise ValueError(f"{path!r} is an .npy file (one array of shape {data.shape}), not an .npz with x_train and "
                         f"x_test; `python -m fastae demo --data` takes it and holds out a fifth as test data")
    with data:
        missing = [k for k in ("x_train", "x_test") if k not in data.files]
        if missing:
            raise ValueError(f"{path!r} lacks {', '.join(missing)} (it has: {', '.join(data.files) or 'nothing'})")
        out = []
        for key in ("x_train", "x_test"):
            x = data[key]
            x = x.reshape(len(x), -1)
            if x.dtype == np.uint8:
                x = x.astype(np.float32) / np.float32(255.0)
            out.append(x)
    return out[0], out[1]
