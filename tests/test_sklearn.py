"""fastae in the scikit-learn ecosystem: scikit-learn's own estimator checks on the defaults, pipelines,
grid searches, cross-validation, set_output, feature names, data frames and SciPy sparse input; the
loss="auto" default; and fastae without scikit-learn (NumPy alone). The tests that need scikit-learn,
pandas or SciPy skip where they are absent (the `test` extra installs them)."""

import json
import pickle
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from conftest import REPO, smooth_data

import fastae
from fastae import Autoencoder, NotFittedError, VariationalAutoencoder

try:
    import sklearn
    from sklearn.utils.estimator_checks import parametrize_with_checks
except ImportError:
    sklearn = None

needs_sklearn = pytest.mark.skipif(sklearn is None, reason="scikit-learn is not installed")


def standardized(n=120, d=10, seed=0):
    """Zero-mean, unit-variance columns (what StandardScaler gives): values well outside [0, 1]."""
    X = smooth_data(n, d, seed).astype(np.float64)
    return (X - X.mean(axis=0)) / X.std(axis=0)


# ---- scikit-learn's own checks -------------------------------------------------------------------

def expected_failed_checks(estimator):
    """The checks that cannot apply to fastae's estimators, each with the reason (scikit-learn's
    expected_failed_checks mechanism). Everything else must pass with the defaults."""
    if isinstance(estimator, Autoencoder):
        return {
            "check_sample_weight_equivalence_on_dense_data":
                "sample_weight multiplies each sample's loss in the batch mean over samples (Keras' "
                "convention), so integer weights match repeated rows only up to the batch normaliser and "
                "float32 rounding (Adam nearly cancels the normaliser: predictions agree to ~1e-6, not the "
                "check's rtol=1e-7); with mini-batches, repeated rows also change the batches",
            "check_sample_weight_equivalence_on_sparse_data":
                "as check_sample_weight_equivalence_on_dense_data (sparse X trains on the same float32 values, "
                "batch by batch)",
            "check_estimator_sparse_array":
                "sparse input is supported (check_estimator_sparse_tag passes; test_sparse_input_gives_the_dense_"
                "results covers every SciPy format), but this check asserts a 1-D predict, and an autoencoder's "
                "predict is the reconstruction, of shape (n_samples, n_features)",
            "check_estimator_sparse_matrix": "as check_estimator_sparse_array",
        }
    if isinstance(estimator, VariationalAutoencoder):
        inherent = {
            "check_sample_weight_equivalence_on_dense_data":
                "as the Autoencoder's; besides, a VAE draws its codes' noise per dataset row, so repeated rows "
                "get other draws than one row of weight 2",
            "check_sample_weight_equivalence_on_sparse_data": "as check_sample_weight_equivalence_on_dense_data",
            "check_estimator_sparse_array":
                "as the Autoencoder's: predict is the reconstruction, of shape (n_samples, n_features)",
            "check_estimator_sparse_matrix": "as check_estimator_sparse_array",
        }
        if estimator.loss != "bce":
            return inherent
        return {**{name: VAE_BCE_REASON for name in VAE_BCE_ONLY}, **inherent}
    return {}


# VariationalAutoencoder() on the defaults: loss="bce" (the default: a Bernoulli likelihood
# of data in [0, 1]) refuses data outside [0, 1], with a ValueError naming the value, its row and
# column; these checks train on standard-normal (or larger) data and fail for that reason alone.
# VariationalAutoencoder(loss="auto"), which takes mse for such data, passes every one of them.
VAE_BCE_REASON = ("loss='bce' (the default) needs X in [0, 1] and the check trains on data outside it; "
                  "VariationalAutoencoder(loss='auto') passes this check")
VAE_BCE_ONLY = [
    "check_dict_unchanged", "check_dont_overwrite_parameters", "check_estimators_dtypes",
    "check_estimators_fit_returns_self", "check_estimators_overwrite_params", "check_estimators_pickle",
    "check_f_contiguous_array_estimator", "check_fit2d_1feature", "check_fit2d_1sample", "check_fit2d_predict1d",
    "check_fit_check_is_fitted", "check_fit_idempotent", "check_methods_sample_order_invariance",
    "check_methods_subset_invariance", "check_n_features_in", "check_n_features_in_after_fitting",
    "check_pipeline_consistency", "check_positive_only_tag_during_fit", "check_readonly_memmap_input",
    "check_sample_weights_not_an_array", "check_sample_weights_not_overwritten", "check_sample_weights_pandas_series",
    "check_sample_weights_shape", "check_transformer_data_not_an_array", "check_transformer_general",
    "check_transformer_preserve_dtypes",
]


if sklearn is not None:
    @parametrize_with_checks([Autoencoder(), VariationalAutoencoder(), VariationalAutoencoder(loss="auto")],
                             expected_failed_checks=expected_failed_checks)
    def test_sklearn_check_estimator_on_the_defaults(estimator, check):
        check(estimator)
else:
    @needs_sklearn
    def test_sklearn_check_estimator_on_the_defaults():
        pass


@needs_sklearn
@pytest.mark.parametrize("check_name", ["check_transformer_get_feature_names_out",
                                        "check_transformer_get_feature_names_out_pandas",
                                        "check_get_feature_names_out_error", "check_set_output_transform",
                                        "check_set_output_transform_pandas", "check_global_output_transform_pandas",
                                        "check_dataframe_column_names_consistency"])
def test_sklearn_output_and_feature_name_checks(check_name):
    """Checks scikit-learn runs on its own transformers only: get_feature_names_out and set_output."""
    pytest.importorskip("pandas")
    from sklearn.utils import estimator_checks

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the checks provoke the feature-name warnings on purpose
        getattr(estimator_checks, check_name)("Autoencoder", Autoencoder(random_state=0))


@pytest.mark.parametrize("cls", [Autoencoder, VariationalAutoencoder])
def test_every_constructor_parameter_has_a_check_in_the_table(cls):
    assert list(cls._param_checks) and set(cls._param_checks) == set(cls._get_param_names())


# ---- the estimator API ---------------------------------------------------------------------------

@needs_sklearn
def test_it_is_a_scikit_learn_transformer_with_tags():
    from sklearn.base import BaseEstimator, TransformerMixin, clone
    from sklearn.utils import get_tags

    ae = Autoencoder(hidden_layer_sizes=(5,), epochs=3)
    assert isinstance(ae, BaseEstimator) and isinstance(ae, TransformerMixin)
    tags = get_tags(ae)
    assert tags.input_tags.sparse and not tags.input_tags.allow_nan and not tags.target_tags.required
    assert tags.transformer_tags.preserves_dtype == ["float32"] and tags.requires_fit
    twin = clone(ae)
    assert twin is not ae and twin.get_params() == ae.get_params()
    assert repr(ae) == "Autoencoder(epochs=3, hidden_layer_sizes=(5,))"


@needs_sklearn
def test_not_fitted_error_is_scikit_learns():
    from sklearn.exceptions import NotFittedError as SkNotFittedError
    from sklearn.utils.validation import check_is_fitted

    X = smooth_data(20, 4)
    ae = Autoencoder(hidden_layer_sizes=(2,), epochs=1, random_state=0)
    for call in (ae.transform, ae.predict, ae.score, ae.score_samples, ae.inverse_transform,
                 lambda _: ae.get_feature_names_out()):
        with pytest.raises(SkNotFittedError, match="not fitted"):
            call(X)
    assert issubclass(NotFittedError, SkNotFittedError)
    assert issubclass(NotFittedError, ValueError) and issubclass(NotFittedError, AttributeError)
    with pytest.raises(SkNotFittedError):
        check_is_fitted(ae)
    check_is_fitted(ae.fit(X))


@needs_sklearn
def test_pipeline_passes_every_method_through():
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.utils import estimator_html_repr

    X = smooth_data(150, 12, seed=2).astype(np.float64) * 40 + 7
    pipe = make_pipeline(StandardScaler(), Autoencoder(hidden_layer_sizes=(8, 3), epochs=20, random_state=0))
    pipe.fit(X)
    scaler, ae = pipe[0], pipe[-1]
    Xs = scaler.transform(X)
    assert ae.loss_function_ == "mse" and ae.output_activation_ == "linear"  # standardized data: auto took mse
    codes = pipe.transform(X)
    np.testing.assert_array_equal(codes, ae.transform(Xs))
    assert codes.shape == (150, 3) and codes.dtype == np.float32
    np.testing.assert_array_equal(pipe.predict(X), ae.predict(Xs))
    assert pipe.score(X) == ae.score(Xs) and np.isfinite(pipe.score(X))
    np.testing.assert_array_equal(pipe.score_samples(X), ae.score_samples(Xs))
    np.testing.assert_allclose(pipe.inverse_transform(codes), scaler.inverse_transform(ae.inverse_transform(codes)))
    np.testing.assert_array_equal(pipe[:-1].transform(X), Xs)
    np.testing.assert_array_equal(pipe.fit_transform(X), pipe.transform(X))
    html = estimator_html_repr(pipe)
    assert "Autoencoder" in html and "hidden_layer_sizes" in html
    assert "Autoencoder" in ae._repr_html_()


@needs_sklearn
def test_grid_search_and_cross_val_score_use_score():
    from sklearn.model_selection import GridSearchCV, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = standardized(240, 10, seed=3)
    search = GridSearchCV(Autoencoder(epochs=30, learning_rate=1e-2, batch_size=32, random_state=0),
                          {"hidden_layer_sizes": [(1,), (6,)]}, cv=3, error_score="raise").fit(X)
    scores = search.cv_results_["mean_test_score"]
    assert np.isfinite(scores).all() and (scores < 0).all()
    assert search.best_params_ == {"hidden_layer_sizes": (6,)}  # a wider code reconstructs better
    assert search.best_estimator_.n_features_in_ == 10
    pipe = make_pipeline(StandardScaler(), Autoencoder(hidden_layer_sizes=(4,), epochs=5, random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "scoring failed" warning, no NaN score
        cv = cross_val_score(pipe, X * 3 + 1, cv=3)
    assert cv.shape == (3,) and np.isfinite(cv).all()


def test_score_weights_samples():
    X = smooth_data(60, 6)
    ae = Autoencoder(hidden_layer_sizes=(3,), epochs=2, random_state=0).fit(X)
    errors = ae.reconstruction_error(X).astype(np.float64)
    w = np.arange(60) % 3
    assert ae.score(X, sample_weight=w) == pytest.approx(-np.average(errors, weights=w), rel=1e-12)
    assert ae.score(X) == pytest.approx(-errors.mean(), rel=1e-12)


def test_all_zero_sample_weights_are_refused():
    X = smooth_data(20, 4)
    with pytest.raises(ValueError, match="sample_weight is zero for every sample"):
        Autoencoder(epochs=1).fit(X, sample_weight=np.zeros(20))


# ---- set_output, feature names, data frames ------------------------------------------------------

@needs_sklearn
def test_set_output_pandas_and_feature_names_out():
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(smooth_data(40, 5), columns=list("abcde"), index=np.arange(100, 140))
    ae = Autoencoder(hidden_layer_sizes=(4, 2), epochs=2, random_state=0).set_output(transform="pandas")
    codes = ae.fit_transform(X)
    assert isinstance(codes, pd.DataFrame) and list(codes.columns) == ["code0", "code1"]
    assert list(codes.index) == list(X.index)
    assert list(ae.get_feature_names_out()) == ["code0", "code1"]
    assert list(ae.get_feature_names_out(list("abcde"))) == ["code0", "code1"]
    with pytest.raises(ValueError, match="input_features is not equal to feature_names_in_"):
        ae.get_feature_names_out(list("edcba"))
    np.testing.assert_array_equal(ae.transform(X).to_numpy(), ae.set_output(transform="default").transform(X))
    # a pipeline after it reads the codes by name
    assert ae.inverse_transform(codes).shape == (40, 5)


def test_feature_names_are_kept_and_checked():
    pd = pytest.importorskip("pandas")
    data = smooth_data(50, 4)
    X = pd.DataFrame(data, columns=["w", "x", "y", "z"])
    ae = Autoencoder(hidden_layer_sizes=(2,), epochs=2, random_state=0).fit(X)
    assert list(ae.feature_names_in_) == ["w", "x", "y", "z"] and ae.feature_names_in_.dtype == object
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        np.testing.assert_array_equal(ae.transform(X), ae.transform(data))
    with pytest.raises(ValueError, match="must be in the same order as they were in fit"):
        ae.transform(X[["x", "w", "y", "z"]])
    with pytest.raises(ValueError, match="Feature names unseen at fit time:\n- q"):
        ae.predict(X.rename(columns={"z": "q"}))
    with pytest.warns(UserWarning, match="X does not have valid feature names, but Autoencoder was fitted with"):
        ae.score(data)
    # refitted on an array: the names go
    ae.fit(data)
    assert not hasattr(ae, "feature_names_in_")
    with pytest.warns(UserWarning, match="X has feature names, but Autoencoder was fitted without"):
        ae.transform(X)


def test_feature_names_survive_save_load_and_pickle(tmp_path):
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(smooth_data(30, 3), columns=["alpha", "beta", "gamma"])
    ae = Autoencoder(hidden_layer_sizes=(2,), epochs=1, random_state=0).fit(X)
    ae.save(tmp_path / "m.fae")
    for back in (fastae.load(tmp_path / "m.fae"), pickle.loads(pickle.dumps(ae))):
        assert list(back.feature_names_in_) == ["alpha", "beta", "gamma"]
        with pytest.raises(ValueError, match="same order"):
            back.transform(X[["beta", "alpha", "gamma"]])


def test_data_frames_with_missing_values_and_nullable_dtypes():
    pd = pytest.importorskip("pandas")
    data = smooth_data(30, 3)
    X = pd.DataFrame({"a": data[:, 0], "b": pd.array(data[:, 1], dtype="Float64"), "c": data[:, 2]})
    ae = Autoencoder(hidden_layer_sizes=(2,), epochs=1, random_state=0).fit(X)
    np.testing.assert_array_equal(ae.transform(X), ae.transform(pd.DataFrame(data, columns=["a", "b", "c"])))
    X.loc[4, "b"] = pd.NA
    for call in (ae.fit, ae.transform, ae.predict, ae.score_samples):
        with pytest.raises(ValueError, match=r"X contains a non-finite value \(NaN\) at row 4, column 1"):
            call(X)
    ints = pd.DataFrame({"a": pd.array([0, 1, 1, 0], dtype="Int64"), "b": [True, False, True, True]})
    assert Autoencoder(hidden_layer_sizes=(1,), epochs=1).fit(ints).loss_function_ == "bce"
    words = pd.DataFrame({"a": [0.5, 0.2], "name": ["x", "y"]})
    with pytest.raises(ValueError, match="must hold real numbers"):
        Autoencoder(epochs=1).fit(words)


# ---- SciPy sparse input --------------------------------------------------------------------------

SPARSE_FORMATS = ["csr_matrix", "csc_matrix", "coo_matrix", "lil_matrix", "dok_matrix", "dia_matrix", "bsr_matrix",
                  "csr_array", "coo_array"]


@pytest.mark.parametrize("fmt", SPARSE_FORMATS)
def test_sparse_input_gives_the_dense_results(fmt, monkeypatch):
    sparse = pytest.importorskip("scipy.sparse")
    import fastae._arrays
    import fastae._base

    monkeypatch.setattr(fastae._base, "SPARSE_CHUNK_ROWS", 7)  # several chunks for inference
    monkeypatch.setattr(fastae._arrays, "SPARSE_CHUNK_ROWS", 7)  # and for fit's densifying
    rng = np.random.default_rng(5)
    X = np.where(rng.uniform(size=(40, 9)) < 0.7, 0.0, rng.uniform(size=(40, 9)))
    S = getattr(sparse, fmt)(X)
    kw = dict(hidden_layer_sizes=(4,), epochs=3, batch_size=8, random_state=0)
    dense, sparse_fit = Autoencoder(**kw).fit(X), Autoencoder(**kw).fit(S, validation_data=S)
    for (W1, b1), (W2, b2) in zip(dense.get_weights(), sparse_fit.get_weights()):
        np.testing.assert_array_equal(W1, W2)
        np.testing.assert_array_equal(b1, b2)
    for method in ("transform", "predict", "score_samples", "score"):
        np.testing.assert_array_equal(getattr(dense, method)(S), getattr(dense, method)(X))
    # a bad value in a later chunk is named by its row in X
    bad = X.copy()
    bad[23, 5] = np.nan
    with pytest.raises(ValueError, match=r"non-finite value \(NaN\) at row 23, column 5"):
        dense.transform(sparse.csr_matrix(bad))
    with pytest.raises(ValueError, match="X has 9 features, but Autoencoder is expecting 8"):
        Autoencoder(**kw).fit(X[:, :8]).predict(S)


def test_sparse_training_is_the_dense_training_bit_for_bit():
    """A CSR matrix trains through the engine's CSR rows (each batch expanded, never the whole
    matrix): the same weights as the dense array, shuffled or not, with validation_split, for the
    autoencoder and a supervised model."""
    sparse = pytest.importorskip("scipy.sparse")
    from fastae import MLPClassifier

    X = sparse.random(300, 30, density=0.15, format="csr", random_state=0, dtype=np.float64)
    X.data[::7] = 0.0  # explicit zeros
    dense = X.toarray()
    for kw in (dict(shuffle=True, n_threads=2), dict(shuffle=False, validation_split=0.2, n_threads=1)):
        a = Autoencoder(hidden_layer_sizes=(5,), epochs=3, batch_size=32, random_state=0, **kw).fit(X)
        b = Autoencoder(hidden_layer_sizes=(5,), epochs=3, batch_size=32, random_state=0, **kw).fit(dense)
        for (W1, b1), (W2, b2) in zip(a.get_weights(), b.get_weights()):
            np.testing.assert_array_equal(W1, W2)
            np.testing.assert_array_equal(b1, b2)
        assert a.history_["loss"] == b.history_["loss"]
    y = np.arange(300) % 3
    a = MLPClassifier(hidden_layer_sizes=(6,), epochs=2, random_state=0).fit(X.tocsc(), y)
    b = MLPClassifier(hidden_layer_sizes=(6,), epochs=2, random_state=0).fit(dense, y)
    np.testing.assert_array_equal(a.predict_proba(dense), b.predict_proba(dense))


def test_sparse_training_never_builds_the_dense_matrix():
    """A 5,000 x 50,000 CSR matrix (1 GB dense in float32, 0.6 MB of nonzeros) trains in a
    process whose peak memory stays far below the dense size."""
    pytest.importorskip("scipy.sparse")
    script = textwrap.dedent("""
        import resource, numpy as np, scipy.sparse as sp, fastae
        rng = np.random.default_rng(0)
        X = sp.csr_matrix((rng.random(25000, dtype=np.float32), rng.integers(0, 50000, 25000),
                           np.arange(0, 25001, 5)), shape=(5000, 50000))  # 5 nonzeros a row
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        ae = fastae.Autoencoder(hidden_layer_sizes=(4,), epochs=1, batch_size=512, n_threads=1,
                                random_state=0).fit(X)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(ae.loss_function_, np.isfinite(ae.loss_), (after - before) // 1024)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    loss, finite, grown_mib = out.stdout.split()
    assert loss == "bce" and finite == "True"
    assert int(grown_mib) < 400, f"peak memory grew by {grown_mib} MiB while training"


def test_sparse_of_non_numbers_and_overflow_are_named():
    sparse = pytest.importorskip("scipy.sparse")
    X = np.zeros((20, 3))
    X[17, 2] = 1e300
    with pytest.raises(ValueError, match=r"X contains 1e\+300 at row 17, column 2, beyond float32's range"):
        Autoencoder(epochs=1).fit(sparse.csr_matrix(X))
    with pytest.raises(ValueError, match="real numbers"):
        Autoencoder(epochs=1).fit(sparse.csr_matrix(np.ones((3, 3), dtype=np.complex128)))


# ---- loss="auto" --------------------------------------------------------------------------------

def test_auto_takes_bce_for_unit_range_data_and_mse_otherwise():
    unit = smooth_data(80, 6)
    kw = dict(hidden_layer_sizes=(3,), epochs=2, random_state=0)
    cases = [({}, unit, ("bce", "sigmoid")), ({}, standardized(80, 6), ("mse", "linear")),
             ({}, unit * 255, ("mse", "linear")), ({"input_scale": 1 / 255}, (unit * 255).astype(np.uint8),
                                                     ("bce", "sigmoid")),
             ({"loss": "mse"}, unit, ("mse", "sigmoid")), ({"loss": "mse"}, standardized(80, 6), ("mse", "linear")),
             ({"loss": "huber"}, unit - 2, ("huber", "linear")), ({"loss": "bce"}, unit, ("bce", "sigmoid")),
             ({"output_activation": "tanh"}, unit, ("mse", "tanh")),
             ({"output_activation": "softmax"}, unit / unit.sum(axis=1, keepdims=True), ("cross_entropy", "softmax")),
             ({"loss": "mse", "output_activation": "sigmoid"}, unit * 4, ("mse", "sigmoid"))]
    for params, X, (loss, output) in cases:
        ae = Autoencoder(**kw, **params).fit(X)
        assert (ae.loss_function_, ae.output_activation_) == (loss, output), params
        assert (ae._model.loss, ae._model.output_activation) == (loss, output)
        assert ae.get_params()["loss"] == params.get("loss", "auto")  # the parameter is never rewritten
    # explicit bce still needs data in [0, 1], as before
    with pytest.raises(ValueError, match=r"\[0, 1\] for loss='bce'"):
        Autoencoder(loss="bce", epochs=1).fit(standardized())
    with pytest.raises(ValueError, match="output_activation='linear'"):
        Autoencoder(loss="bce", output_activation="linear", epochs=1).fit(unit)
    with pytest.raises(ValueError, match="goes with loss='mse' only|goes with loss='cross_entropy' only"):
        Autoencoder(loss="mse", output_activation="softmax", epochs=1).fit(unit)


def test_auto_on_standardized_data_learns():
    X = standardized(300, 12, seed=4)
    ae = Autoencoder(hidden_layer_sizes=(6,), epochs=40, batch_size=32, learning_rate=1e-2, random_state=0).fit(X)
    assert ae.history_["loss"][-1] < 0.5 * ae.history_["loss"][0]
    assert np.mean((ae.predict(X) - X) ** 2) < 0.3  # the linear output reaches negative values
    assert ae.predict(X).min() < -1


def test_auto_is_kept_by_partial_fit_refit_by_fit_and_taken_as_unit_range_by_set_weights():
    unit = smooth_data(40, 5)
    ae = Autoencoder(hidden_layer_sizes=(2,), random_state=0).partial_fit(unit)
    ae.partial_fit(unit)
    assert ae.loss_function_ == "bce" and ae.n_iter_ == 2
    ae.fit(standardized(40, 5))
    assert ae.loss_function_ == "mse" and ae.output_activation_ == "linear"
    fresh = Autoencoder(hidden_layer_sizes=(2,)).set_weights(ae.get_weights())
    assert (fresh.loss_function_, fresh.output_activation_) == ("bce", "sigmoid")
    explicit = Autoencoder(hidden_layer_sizes=(2,), loss="mse", output_activation="linear")
    explicit.set_weights(ae.get_weights())
    np.testing.assert_array_equal(explicit.predict(unit), ae.predict(unit))


@pytest.mark.parametrize("data", ["unit", "standardized"])
def test_auto_round_trips_through_model_files_and_pickle(data, tmp_path):
    X = smooth_data(40, 5) if data == "unit" else standardized(40, 5)
    ae = Autoencoder(hidden_layer_sizes=(3,), epochs=2, random_state=0).fit(X)
    ae.save(tmp_path / "m.fae")
    meta = json.loads(_metadata_of(tmp_path / "m.fae"))
    assert meta["params"]["loss"] == meta["params"]["output_activation"] == "auto"
    assert meta["attributes"]["loss_function_"] == ae.loss_function_
    for back in (fastae.load(tmp_path / "m.fae"), Autoencoder.load(tmp_path / "m.fae"),
                 pickle.loads(pickle.dumps(ae))):
        assert type(back) is Autoencoder
        assert back.get_params() == ae.get_params()
        assert (back.loss_function_, back.output_activation_) == (ae.loss_function_, ae.output_activation_)
        np.testing.assert_array_equal(back.score_samples(X), ae.score_samples(X))


def _metadata_of(path):
    return fastae._core.load_model(bytes(str(path), "utf-8"))[2].decode("utf-8")


def test_metadata_that_contradicts_the_network_is_refused(tmp_path):
    ae = Autoencoder(hidden_layer_sizes=(3,), epochs=1, random_state=0).fit(smooth_data(30, 4))
    doc = json.loads(ae._metadata())
    doc["attributes"]["loss_function_"] = "mse"
    data = fastae._core.model_to_bytes(ae._model, None, True, json.dumps(doc).encode())
    with pytest.raises(fastae.ModelFileError, match="loss_function_ is 'mse' but the network's is 'bce'"):
        Autoencoder._from_model(*fastae._core.model_from_bytes(data))


# ---- errors that name what the caller passed ------------------------------------------------------

def test_float64_beyond_float32_is_named_by_its_value_and_row():
    X = smooth_data(30, 4).astype(np.float64)
    X[2, 1] = -3e39
    X[20, 3] = 1e300
    for call in (Autoencoder(epochs=1).fit, lambda A: Autoencoder(epochs=1).fit(X[:3], validation_data=A)):
        with pytest.raises(ValueError, match=r"contains -3e\+39 at row 2, column 1, beyond float32's range"):
            call(X)
    ae = Autoencoder(epochs=1, random_state=0).fit(smooth_data(30, 4))
    for call in (ae.transform, ae.predict, ae.score_samples, ae.score):
        with pytest.raises(ValueError, match=r"X contains -3e\+39 at row 2, column 1"):
            call(X)


def test_nan_is_named_by_position_everywhere():
    X = smooth_data(30, 4)
    ae = Autoencoder(epochs=1, random_state=0).fit(X)
    bad = X.copy()
    bad[5, 0] = np.nan
    for call in (Autoencoder(epochs=1).fit, ae.transform, ae.predict, ae.score_samples, ae.reconstruction_error,
                 ae.score):
        with pytest.raises(ValueError, match=r"X contains a non-finite value \(NaN\) at row 5, column 0"):
            call(bad)
    bad[5, 0] = -np.inf
    for call in (ae.score_samples, ae.transform):
        with pytest.raises(ValueError, match=r"X contains a non-finite value \(-inf\) at row 5, column 0"):
            call(bad)


def test_object_arrays_are_read_as_numbers_or_refused():
    X = smooth_data(20, 3).astype(object)
    ae = Autoencoder(hidden_layer_sizes=(2,), epochs=1, random_state=0).fit(X)
    np.testing.assert_array_equal(ae.transform(X), ae.transform(X.astype(np.float64)))
    X[0, 0] = {"a": 1}
    with pytest.raises(TypeError, match="argument must be a string or a real number"):
        ae.fit(X)
    with pytest.raises(ValueError, match="real numbers"):  # also a ValueError, as fastae's other input errors
        ae.transform(X)
    with pytest.raises(ValueError, match="Reshape your data"):
        ae.transform(X[0])


# ---- without scikit-learn ------------------------------------------------------------------------

def test_fastae_works_with_numpy_alone():
    """scikit-learn made unimportable: fastae imports, trains, transforms, pickles and keeps the
    estimator contract through its stand-ins (_compat.py)."""
    code = textwrap.dedent("""
        import sys
        sys.modules["sklearn"] = None  # import sklearn now raises ImportError
        import json, pickle
        import numpy as np
        import fastae
        from fastae import _compat
        assert not _compat.SKLEARN_INSTALLED
        X = np.random.default_rng(0).uniform(size=(50, 6))
        ae = fastae.Autoencoder(hidden_layer_sizes=(3,), epochs=2, random_state=0)
        assert repr(ae) == "Autoencoder(epochs=2, hidden_layer_sizes=(3,), random_state=0)"
        try:
            ae.transform(X)
        except fastae.NotFittedError as exc:
            assert isinstance(exc, ValueError) and isinstance(exc, AttributeError)
        codes = ae.fit_transform(X)
        twin = fastae.Autoencoder(**ae.get_params()).fit(X)
        assert np.array_equal(twin.transform(X), codes)
        back = pickle.loads(pickle.dumps(ae))
        assert np.array_equal(back.predict(X), ae.predict(X))
        assert list(ae.get_feature_names_out()) == ["code0", "code1", "code2"]
        assert ae.loss_function_ == "bce" and ae.set_params(epochs=3) is ae and ae.epochs == 3
        try:
            ae.set_params(epoch=3)
        except ValueError as exc:
            assert "invalid parameter 'epoch'" in str(exc)
        try:
            ae.set_output(transform="pandas")
        except ImportError as exc:
            assert "scikit-learn" in str(exc)
        print(json.dumps({"ok": True, "sklearn_loaded": any(m.startswith("sklearn.") for m in sys.modules)}))
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(run.stdout.strip().splitlines()[-1]) == {"ok": True, "sklearn_loaded": False}
