"""The public Python API: the scikit-learn estimator contract, weights, warm start, seeds,
validation data, threads, pickling, and the deep architecture."""

import copy
import pickle

import numpy as np
import pytest
from conftest import smooth_data

import fastae
from fastae import Autoencoder, NotFittedError


def test_init_only_stores_and_defaults_are_the_documented_ones():
    ae = Autoencoder()
    assert ae.get_params() == dict(
        hidden_layer_sizes=(64,), activation="relu", output_activation="auto", loss="auto", optimizer="adam",
        learning_rate=1e-3, batch_size=256, epochs=10, shuffle=True, random_state=None, n_threads=None,
        warm_start=False, verbose=0, beta_1=0.9, beta_2=0.999, epsilon=1e-8, momentum=0.9, nesterov=True,
        input_scale=None, kernel_initializer="glorot_uniform", leaky_relu_slope=0.01, huber_delta=1.0,
        weight_decay=0.01, rho=0.9, validation_split=0.0, early_stopping=False, patience=10, min_delta=0.0,
        restore_best_weights=True, lr_schedule=None, lr_decay_rate=0.1, lr_decay_steps=10, lr_min=0.0, lr_patience=5,
        clipnorm=None, callbacks=None, max_time=None, l1=0.0, l2=0.0, dropout=0.0, noise=None, noise_level=0.1,
        activity_l1=0.0, sparsity_target=None, sparsity_weight=1.0, decoder_layer_sizes=None,
        tied_weights=False, contractive=0.0)
    # Nothing is validated or learned at construction.
    bad = Autoencoder(hidden_layer_sizes="nonsense", learning_rate=-1)
    assert bad.learning_rate == -1
    assert not hasattr(bad, "n_features_in_")


def test_set_params_and_unknown_parameter():
    ae = Autoencoder()
    assert ae.set_params(epochs=3, learning_rate=0.01) is ae
    assert ae.epochs == 3 and ae.learning_rate == 0.01
    with pytest.raises(ValueError, match="invalid parameter 'epoch'"):
        ae.set_params(epoch=3)


def test_sklearn_clone_and_pipeline():
    sklearn = pytest.importorskip("sklearn")
    from sklearn.base import clone
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler

    ae = Autoencoder(hidden_layer_sizes=(7, 3), epochs=2, random_state=4)
    twin = clone(ae)
    assert twin is not ae and twin.get_params() == ae.get_params()
    X = smooth_data(80, 10) * 5.0
    pipe = make_pipeline(MinMaxScaler(), Autoencoder(hidden_layer_sizes=(3,), epochs=2, random_state=0))
    codes = pipe.fit_transform(X)
    assert codes.shape == (80, 3)
    assert sklearn.__version__


def test_use_before_fit_raises_a_clear_error():
    ae = Autoencoder()
    X = smooth_data(5, 4)
    for call in (ae.transform, ae.encode, ae.predict, ae.reconstruction_error, ae.score):
        with pytest.raises(NotFittedError, match="not fitted"):
            call(X)
    with pytest.raises(NotFittedError, match="not fitted"):
        ae.get_weights()
    with pytest.raises(ValueError):  # NotFittedError is a ValueError, as scikit-learn's
        ae.inverse_transform(X)


def test_fit_returns_self_and_learned_state(data):
    ae = Autoencoder(hidden_layer_sizes=(12, 4), epochs=4, batch_size=64, random_state=0)
    assert ae.fit(data, validation_data=data[:50]) is ae
    assert ae.n_features_in_ == 20
    assert ae.n_iter_ == 4
    assert set(ae.history_) == {"loss", "val_loss", "lr", "seconds"}
    assert all(len(v) == 4 for v in ae.history_.values())
    assert ae.loss_ == ae.history_["loss"][-1]
    assert ae.history_["val_loss"][-1] == pytest.approx(-ae.score(data[:50]), rel=1e-6)


def test_shapes_of_a_deep_autoencoder(data):
    ae = Autoencoder(hidden_layer_sizes=(16, 8, 3), epochs=1, random_state=0).fit(data)
    shapes = [(W.shape, b.shape) for W, b in ae.get_weights()]
    assert shapes == [((20, 16), (16,)), ((16, 8), (8,)), ((8, 3), (3,)), ((3, 8), (8,)), ((8, 16), (16,)),
                      ((16, 20), (20,))]
    assert all(W.dtype == np.float32 and b.dtype == np.float32 for W, b in ae.get_weights())
    assert ae.transform(data).shape == (300, 3)
    assert ae.inverse_transform(np.zeros((4, 3))).shape == (4, 20)
    assert ae.predict(data).shape == (300, 20)
    assert ae.fit_transform(data).shape == (300, 3)


def test_training_learns(data):
    ae = Autoencoder(hidden_layer_sizes=(8,), epochs=60, batch_size=32, learning_rate=1e-2, random_state=0)
    ae.fit(data)
    h = ae.history_["loss"]
    assert h[-1] < h[0]
    # Far better than predicting every feature's mean (whose squared error is the data's variance).
    mse = np.mean((ae.predict(data) - data) ** 2)
    assert mse < 0.25 * np.mean(np.var(data, axis=0))


def test_same_seed_bit_identical_different_seed_differs(data):
    def weights(seed, threads=None):
        ae = Autoencoder(hidden_layer_sizes=(6,), epochs=3, batch_size=50, random_state=seed, n_threads=threads)
        return np.concatenate([np.concatenate([W.ravel(), b]) for W, b in ae.fit(data).get_weights()]), ae

    a, ae_a = weights(3)
    b, ae_b = weights(3)
    c, _ = weights(4)
    assert np.array_equal(a, b)
    assert ae_a.history_["loss"] == ae_b.history_["loss"]
    assert not np.array_equal(a, c)
    a2, _ = weights(3, threads=2)
    b2, _ = weights(3, threads=2)
    assert np.array_equal(a2, b2)
    np.testing.assert_allclose(a, a2, atol=1e-4)  # two threads round differently, train the same


def test_random_state_kinds(data):
    for rs in (None, 7, np.random.RandomState(1), np.random.default_rng(2)):
        Autoencoder(hidden_layer_sizes=(4,), epochs=1, random_state=rs).fit(data)
    ae1 = Autoencoder(hidden_layer_sizes=(4,), epochs=1, random_state=np.random.RandomState(5)).fit(data)
    ae2 = Autoencoder(hidden_layer_sizes=(4,), epochs=1, random_state=np.random.RandomState(5)).fit(data)
    assert np.array_equal(ae1.get_weights()[0][0], ae2.get_weights()[0][0])


def test_set_weights_then_warm_start_continues(data):
    ae = Autoencoder(hidden_layer_sizes=(5,), epochs=30, learning_rate=1e-2, random_state=0).fit(data)
    w = ae.get_weights()
    fresh = Autoencoder(hidden_layer_sizes=(5,), epochs=1)
    fresh.set_weights(w)
    np.testing.assert_array_equal(fresh.predict(data), ae.predict(data))  # usable without fit
    before = -fresh.score(data)
    fresh.set_params(warm_start=True, epochs=5, learning_rate=1e-2, random_state=1).fit(data)
    assert -fresh.score(data) < before  # continued from w, not from scratch
    cold = Autoencoder(hidden_layer_sizes=(5,), epochs=5, learning_rate=1e-2, random_state=1).fit(data)
    assert -cold.score(data) > before  # 5 epochs from scratch are worse than 30
    # warm start with a different architecture is refused
    fresh.set_params(hidden_layer_sizes=(6,))
    with pytest.raises(ValueError, match="warm_start"):
        fresh.fit(data)


def test_warm_start_false_restarts(data):
    ae = Autoencoder(hidden_layer_sizes=(5,), epochs=2, random_state=0)
    first = ae.fit(data).get_weights()[0][0]
    again = ae.fit(data).get_weights()[0][0]
    np.testing.assert_array_equal(first, again)  # same seed, fresh start, same result


def test_set_weights_checks_shapes(data):
    ae = Autoencoder(hidden_layer_sizes=(5,), epochs=1, random_state=0).fit(data)
    w = ae.get_weights()
    with pytest.raises(ValueError, match="layers"):
        ae.set_weights(w[:1])
    with pytest.raises(ValueError, match="layer 1"):
        ae.set_weights([w[0], (w[1][0][:, :-1], w[1][1])])
    bad = [(W.copy(), b.copy()) for W, b in w]
    bad[0][0][0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        ae.set_weights(bad)
    np.testing.assert_array_equal(ae.get_weights()[0][0], w[0][0])  # unchanged by the failures


def test_validation_data_forms(data):
    for val in (data[:20], (data[:20],), (data[:20], data[:20]), data[:20].tolist()):
        ae = Autoencoder(hidden_layer_sizes=(4,), epochs=2, random_state=0).fit(data, validation_data=val)
        assert len(ae.history_["val_loss"]) == 2


def test_dtypes_and_layouts_give_the_same_results(data):
    ae = Autoencoder(hidden_layer_sizes=(4,), epochs=2, random_state=0).fit(data)
    ref = ae.transform(data)
    for X in (data.astype(np.float64), np.asfortranarray(data), np.repeat(data, 2, axis=1)[:, ::2]):
        np.testing.assert_array_equal(ae.transform(X), ref)
    ro = data.copy()
    ro.setflags(write=False)
    np.testing.assert_array_equal(ae.transform(ro), ref)
    ints = (data * 0 + 1).astype(np.int64)
    assert ae.transform(ints).shape == (300, 4)
    # a single sample, and a batch larger than the data
    assert ae.transform(data[:1]).shape == (1, 4)
    Autoencoder(hidden_layer_sizes=(4,), epochs=1, batch_size=10_000, random_state=0).fit(data[:3])


def test_verbose_prints_one_line_per_epoch(data, capsys):
    Autoencoder(hidden_layer_sizes=(4,), epochs=3, verbose=1, random_state=0).fit(data, validation_data=data)
    lines = [l for l in capsys.readouterr().out.splitlines() if l.startswith("epoch")]
    assert len(lines) == 3 and "val_loss" in lines[0] and lines[-1].startswith("epoch 3/3")


def test_threads_clamped_with_warning(data):
    with pytest.warns(RuntimeWarning, match="n_threads"):
        Autoencoder(hidden_layer_sizes=(4,), epochs=1, n_threads=10_000, random_state=0).fit(data)
    Autoencoder(hidden_layer_sizes=(4,), epochs=1, n_threads=-1, random_state=0).fit(data)


def test_pickle_and_deepcopy_round_trip(data):
    ae = Autoencoder(hidden_layer_sizes=(6, 2), epochs=2, random_state=0).fit(data)
    for twin in (pickle.loads(pickle.dumps(ae)), copy.deepcopy(ae)):
        np.testing.assert_array_equal(twin.transform(data), ae.transform(data))
        assert twin.history_ == ae.history_ and twin.get_params() == ae.get_params()
    unfitted = pickle.loads(pickle.dumps(Autoencoder(epochs=3)))
    assert unfitted.epochs == 3
    with pytest.raises(NotFittedError):
        unfitted.transform(data)


def test_mse_regression_outputs_outside_unit_range():
    X = smooth_data(100, 6) * 10 - 5
    ae = Autoencoder(hidden_layer_sizes=(3,), output_activation="linear", loss="mse", epochs=20,
                     learning_rate=1e-2, random_state=0).fit(X)
    assert ae.predict(X).min() < 0  # a linear output reaches the negative targets


def test_show_config_and_version():
    text = fastae.show_config(file=open("/dev/null", "w"))
    assert fastae.__version__ in text and "Eigen" in text and "SIMD" in text
    assert "GEMM kernel: " in text and "vector kernels: " in text


def test_divergence_raises_and_keeps_finite_weights(data):
    X = data * 10
    ae = Autoencoder(hidden_layer_sizes=(4,), activation="linear", output_activation="linear", loss="mse",
                     optimizer="sgd", momentum=0.0, nesterov=False, learning_rate=1e5, batch_size=16, epochs=30,
                     random_state=0)
    with pytest.raises(fastae.TrainingDivergedError, match="non-finite"):
        ae.fit(X)
    assert isinstance(fastae.TrainingDivergedError("x"), FloatingPointError)
    assert all(np.isfinite(W).all() and np.isfinite(b).all() for W, b in ae.get_weights())
    assert ae.n_iter_ < 30
    assert ae.transform(X).shape == (300, 4)  # still usable


def test_partial_fit_continues_the_optimizer_exactly(data):
    """Without shuffling, 3 partial_fit calls are the same training as fit(epochs=3), bit for bit."""
    kw = dict(hidden_layer_sizes=(5,), batch_size=64, shuffle=False, random_state=2)
    full = Autoencoder(epochs=3, **kw).fit(data)
    inc = Autoencoder(**kw)
    for _ in range(3):
        inc.partial_fit(data)
    assert inc.n_iter_ == 3 and inc.history_["loss"] == full.history_["loss"]
    for (W1, b1), (W2, b2) in zip(full.get_weights(), inc.get_weights()):
        np.testing.assert_array_equal(W1, W2)
        np.testing.assert_array_equal(b1, b2)
    # whereas warm_start restarts the optimizer: a different third epoch
    warm = Autoencoder(epochs=2, **kw).fit(data)
    warm.set_params(warm_start=True, epochs=1).fit(data)
    assert not np.array_equal(warm.get_weights()[0][0], full.get_weights()[0][0])


def test_uint8_images_train_in_place_like_their_float_conversion():
    rng = np.random.default_rng(3)
    X8 = rng.integers(0, 256, size=(200, 30), dtype=np.uint8)
    Xf = X8.astype(np.float32) * np.float32(1 / 255)
    kw = dict(hidden_layer_sizes=(6,), epochs=3, batch_size=32, random_state=0)
    a = Autoencoder(**kw).fit(Xf, validation_data=Xf[:50])
    b = Autoencoder(input_scale=1 / 255, **kw).fit(X8, validation_data=X8[:50])
    for (W1, b1), (W2, b2) in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(W1, W2)
        np.testing.assert_array_equal(b1, b2)
    assert a.history_["val_loss"] == b.history_["val_loss"]
    # inference scales the same way, whatever the dtype given
    np.testing.assert_array_equal(b.transform(X8), a.transform(Xf))
    np.testing.assert_array_equal(b.transform(X8.astype(np.float64)), a.transform(Xf))
    assert b.score(X8) == a.score(Xf)
    with pytest.raises(ValueError, match="uint8"):
        Autoencoder(input_scale=1 / 255, **kw).fit(X8, validation_data=Xf[:50])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        Autoencoder(input_scale=1.0, loss="bce", **kw).fit(X8)  # 255 * 1.0 is no BCE target
