"""Issue 14's "Found when tried as a new user would" items that live in the input checks
(python/fastae/_arrays.py) and the dataset loader; the command-line ones are in test_cli.py.
NaN named by position in every method and sparse input are tested in test_sklearn.py."""

import numpy as np
import pytest

import fastae
from fastae.datasets import load_npz_images


def small(**kw):
    return fastae.Autoencoder(hidden_layer_sizes=(2,), epochs=1, n_threads=1, random_state=0, **kw)


def test_float64_beyond_float32_is_named_as_given_with_shuffling():
    """The value and row as passed, not the converted inf at its place in a shuffled batch."""
    X = np.random.default_rng(0).random((50, 4))
    X[37, 2] = -3e300
    with pytest.raises(ValueError, match=r"X contains -3e\+300 at row 37, column 2, beyond float32's range"):
        small(shuffle=True).fit(X)


def test_pandas_missing_values_in_object_and_nullable_columns():
    pd = pytest.importorskip("pandas")
    X = np.random.default_rng(0).random((30, 3))
    nullable = pd.DataFrame(X, columns=["a", "b", "c"]).astype("Float64")
    nullable.loc[4, "b"] = pd.NA
    objects = pd.DataFrame(X, columns=["a", "b", "c"]).astype(object)
    objects.loc[4, "b"] = pd.NA
    for frame in (nullable, objects):
        with pytest.raises(ValueError, match=r"\(NaN\) at row 4, column 1"):
            small().fit(frame)
    objects.loc[4, "b"] = "x"
    with pytest.raises(ValueError, match=r"its column 'b' holds 'x' at row 4"):
        small().fit(objects)
    # the same frame without the bad cell trains as the float64 array does
    objects.loc[4, "b"] = X[4, 1]
    np.testing.assert_array_equal(small().fit(objects).get_weights()[0][0], small().fit(X).get_weights()[0][0])


def test_load_npz_images_on_an_npy_file(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"is an \.npy file \(one array of shape \(3, 4\)\)"):
        load_npz_images(tmp_path / "x.npy")


def test_a_loaded_model_scales_its_inputs(tmp_path):
    X8 = np.random.default_rng(0).integers(0, 256, size=(40, 6), dtype=np.uint8)
    ae = small(input_scale=1 / 255).fit(X8)
    ae.save(tmp_path / "m.fae")
    np.testing.assert_array_equal(fastae.load(tmp_path / "m.fae").transform(X8), ae.transform(X8))
