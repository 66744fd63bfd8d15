"""fastae.MLPClassifier and fastae.MLPRegressor: the supervised models on the engine.

Checked against independent references: a float64 NumPy forward/backward of the same weights
(itself checked by finite differences), PyTorch trained from the same weights on the same batches
(when torch is installed), and scikit-learn's own MLPs on the same data (accuracy and R^2).
"""

import pickle

import numpy as np
import pytest

import fastae
from fastae import Autoencoder, MLPClassifier, MLPRegressor

F64 = np.float64

try:
    import sklearn
    from sklearn.utils.estimator_checks import parametrize_with_checks
except ImportError:  # NumPy alone
    sklearn = None

needs_sklearn = pytest.mark.skipif(sklearn is None, reason="scikit-learn is not installed")


@pytest.fixture(scope="module")
def digits():
    """The embedded UCI digits (1797 x 64 in [0, 1]) with their labels, split 3:1 (seeded)."""
    X, y = fastae.load_digits()
    order = np.random.default_rng(0).permutation(len(X))
    X, y = np.ascontiguousarray(X[order], dtype=np.float32), y[order]
    cut = len(X) * 3 // 4
    return X[:cut], y[:cut], X[cut:], y[cut:]


def regression_data(n=300, d=6, k=1, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    W = rng.normal(size=(d, k))
    Y = np.tanh(X @ W) + 0.1 * (X[:, :1] ** 2) + 0.01 * rng.normal(size=(n, k))
    return X, (Y[:, 0] if k == 1 else Y).astype(np.float32)


# ---- an independent NumPy reference of a supervised network -----------------------------------

def np_act(name, z):
    return {"relu": lambda: np.maximum(z, 0.0), "tanh": lambda: np.tanh(z), "linear": lambda: z,
            "sigmoid": lambda: 1.0 / (1.0 + np.exp(-z))}[name]()


def np_act_grad(name, z):
    return {"relu": lambda: (z > 0).astype(F64), "tanh": lambda: 1.0 - np.tanh(z) ** 2,
            "linear": lambda: np.ones_like(z)}[name]()


def np_forward(weights, X, hidden_act):
    """Inputs of each layer and the pre-activations, float64."""
    a, inputs, zs = np.asarray(X, F64), [], []
    for i, (W, b) in enumerate(weights):
        inputs.append(a)
        z = a @ np.asarray(W, F64) + np.asarray(b, F64)
        zs.append(z)
        a = np_act(hidden_act, z) if i < len(weights) - 1 else z
    return inputs, zs


def np_softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def np_loss_and_grads(weights, X, T, hidden_act, head):
    """Mean loss over samples (cross_entropy: -sum t log softmax; mse: mean over outputs) and
    its gradient, by hand."""
    inputs, zs = np_forward(weights, X, hidden_act)
    z, T, n = zs[-1], np.asarray(T, F64), len(X)
    if head == "cross_entropy":
        logp = np.log(np_softmax(z))
        loss, dz = -(T * logp).sum(axis=1).mean(), (np_softmax(z) - T) / n
    else:
        r = z - T
        loss, dz = (r * r).mean(), 2.0 * r / r.size
    grads = [None] * len(weights)
    for i in reversed(range(len(weights))):
        grads[i] = (inputs[i].T @ dz, dz.sum(axis=0))
        if i > 0:
            dz = (dz @ np.asarray(weights[i][0], F64).T) * np_act_grad(hidden_act, zs[i - 1])
    return loss, grads


def flat(pairs):
    return np.concatenate([np.concatenate([np.ravel(W), np.ravel(b)]) for W, b in pairs])


def unflat(vector, shapes):
    out, off = [], 0
    for n_in, n_out in shapes:
        W = vector[off:off + n_in * n_out].reshape(n_in, n_out)
        off += n_in * n_out
        out.append((W, vector[off:off + n_out]))
        off += n_out
    return out


def one_hot(y, k):
    T = np.zeros((len(y), k), dtype=np.float32)
    T[np.arange(len(y)), y] = 1
    return T


@pytest.mark.parametrize("head", ["cross_entropy", "mse"])
def test_numpy_reference_gradient_matches_finite_differences(head):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(7, 5))
    shapes = [(5, 4), (4, 3)]
    weights = [(rng.normal(size=s), rng.normal(size=s[1])) for s in shapes]
    T = one_hot(rng.integers(0, 3, 7), 3) if head == "cross_entropy" else rng.normal(size=(7, 3))
    _, grads = np_loss_and_grads(weights, X, T, "tanh", head)
    x0, eps = flat(weights), 1e-6
    numeric = np.array([(np_loss_and_grads(unflat(x0 + eps * e, shapes), X, T, "tanh", head)[0] -
                         np_loss_and_grads(unflat(x0 - eps * e, shapes), X, T, "tanh", head)[0]) / (2 * eps)
                        for e in np.eye(x0.size)])
    np.testing.assert_allclose(flat(grads), numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("Est, head", [(MLPClassifier, "cross_entropy"), (MLPRegressor, "mse")])
def test_engine_loss_and_gradient_match_numpy(Est, head):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(40, 6)).astype(np.float32)
    y = rng.integers(0, 4, 40) if head == "cross_entropy" else rng.normal(size=(40, 2)).astype(np.float32)
    est = Est(hidden_layer_sizes=(8, 5), activation="tanh", epochs=1, random_state=0).fit(X, y)
    T = one_hot(np.searchsorted(est.classes_, y), 4) if head == "cross_entropy" else y
    loss, grad = est._model.loss_and_gradient(X, np.ascontiguousarray(T, dtype=np.float32))
    want_loss, want_grads = np_loss_and_grads(est.get_weights(), X, T, "tanh", head)
    assert loss == pytest.approx(want_loss, rel=1e-5)
    np.testing.assert_allclose(grad, flat(want_grads), rtol=1e-4, atol=1e-6)


def test_predictions_match_a_numpy_forward_pass(digits):
    X, y, Xt, _ = digits
    clf = MLPClassifier(hidden_layer_sizes=(32, 16), epochs=3, random_state=0).fit(X, y)
    proba = np_softmax(np_forward(clf.get_weights(), Xt, "relu")[1][-1])
    np.testing.assert_allclose(clf.predict_proba(Xt), proba, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(clf.predict_proba(Xt).sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(clf.predict(Xt), clf.classes_[np.argmax(proba, axis=1)])
    np.testing.assert_allclose(clf.predict_log_proba(Xt), np.log(proba), rtol=1e-4, atol=1e-5)
    Xr, yr = regression_data(k=3)
    reg = MLPRegressor(hidden_layer_sizes=(16,), activation="tanh", epochs=3, random_state=0).fit(Xr, yr)
    np.testing.assert_allclose(reg.predict(Xr), np_forward(reg.get_weights(), Xr, "tanh")[1][-1], rtol=1e-5,
                               atol=1e-6)


# ---- against PyTorch, from the same weights on the same batches --------------------------------

def _torch_twin(weights, X, T, head, epochs, batch):
    torch = pytest.importorskip("torch")
    layers = []
    for i, (W, b) in enumerate(weights):
        lin = torch.nn.Linear(*W.shape)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
            lin.bias.copy_(torch.from_numpy(b))
        layers += [lin] + ([torch.nn.ReLU()] if i < len(weights) - 1 else [])
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss() if head == "cross_entropy" else torch.nn.MSELoss()
    Xt, Tt = torch.from_numpy(X), torch.from_numpy(T)
    for _ in range(epochs):
        for s in range(0, len(X), batch):
            opt.zero_grad()
            loss_fn(model(Xt[s:s + batch]), Tt[s:s + batch]).backward()
            opt.step()
    return [(m.weight.detach().numpy().T, m.bias.detach().numpy()) for m in model if isinstance(m, torch.nn.Linear)]


@pytest.mark.parametrize("Est", [MLPClassifier, MLPRegressor])
def test_training_equals_pytorch_from_the_same_weights(Est, digits):
    pytest.importorskip("torch")
    X, y, _, _ = digits
    X, y = X[:100], y[:100]
    rng = np.random.default_rng(3)
    if Est is MLPClassifier:
        T, head, target = one_hot(y, 10), "cross_entropy", y
    else:
        T, head = rng.normal(size=(100, 2)).astype(np.float32), "mse"
        target = T
    sizes = [64, 24, T.shape[1]]
    weights = [(rng.normal(0, 0.3, size=(a, b)).astype(np.float32), rng.normal(0, 0.1, size=b).astype(np.float32))
               for a, b in zip(sizes[:-1], sizes[1:])]
    est = Est(hidden_layer_sizes=(24,), epochs=1, batch_size=32, random_state=0).fit(X, target)  # fixes the outputs
    est.set_params(warm_start=True, shuffle=False, epochs=3, n_threads=1)
    est.set_weights(weights)
    est.fit(X, target)
    want = _torch_twin(weights, X, T, head, epochs=3, batch=32)
    moved = max(np.abs(W1 - W0).max() for (W1, _), (W0, _) in zip(want, weights))
    assert moved > 1e-3
    for (W, b), (W_ref, b_ref) in zip(est.get_weights(), want):
        np.testing.assert_allclose(W, W_ref, rtol=1e-4, atol=2e-5)
        np.testing.assert_allclose(b, b_ref, rtol=1e-4, atol=2e-5)


# ---- quality beside scikit-learn's MLPs --------------------------------------------------------

@needs_sklearn
def test_classifier_matches_scikit_learn_accuracy_on_digits(digits):
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier as SkMLPClassifier

    X, y, Xt, yt = digits
    ours = MLPClassifier(hidden_layer_sizes=(100,), batch_size=200, epochs=30, random_state=0).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs = SkMLPClassifier(hidden_layer_sizes=(100,), batch_size=200, max_iter=30, alpha=0.0, tol=0.0,
                                 n_iter_no_change=10 ** 6, random_state=0).fit(X, y)
    ours_acc, theirs_acc = ours.score(Xt, yt), theirs.score(Xt, yt)
    assert ours_acc > 0.9
    assert ours_acc >= theirs_acc - 0.01, (ours_acc, theirs_acc)


@needs_sklearn
def test_regressor_matches_scikit_learn_r2_on_diabetes():
    import warnings

    from sklearn.datasets import load_diabetes
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPRegressor as SkMLPRegressor

    X, y = load_diabetes(return_X_y=True)  # bundled with scikit-learn: no download
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    y = (y - y.mean()) / y.std()
    X_train, y_train, X_test, y_test = X[:330], y[:330], X[330:], y[330:]
    ours = MLPRegressor(hidden_layer_sizes=(32,), epochs=100, batch_size=32, random_state=0).fit(X_train, y_train)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs = SkMLPRegressor(hidden_layer_sizes=(32,), max_iter=100, batch_size=32, alpha=0.0, tol=0.0,
                                n_iter_no_change=10 ** 6, random_state=0).fit(X_train, y_train)
    ours_r2, theirs_r2 = ours.score(X_test, y_test), theirs.score(X_test, y_test)
    assert ours_r2 > 0.3
    assert ours_r2 >= theirs_r2 - 0.03, (ours_r2, theirs_r2)
    from sklearn.metrics import r2_score
    assert ours_r2 == pytest.approx(r2_score(y_test, ours.predict(X_test)), rel=1e-9)


# ---- labels and targets ------------------------------------------------------------------------

def test_labels_of_any_type_and_order():
    X, y = regression_data(200, 4)
    labels = np.where(y > 0.3, "high", np.where(y < -0.3, "low", "mid"))
    clf = MLPClassifier(hidden_layer_sizes=(16,), batch_size=20, epochs=100, random_state=0).fit(X, labels)
    assert clf.classes_.tolist() == ["high", "low", "mid"]
    assert set(clf.predict(X)) <= set(labels) and clf.score(X, labels) > 0.8
    sparse_ints = np.array([3, 7, 42])[(y > 0).astype(int) + (y > 0.5)]
    clf = MLPClassifier(hidden_layer_sizes=(16,), epochs=5, random_state=0).fit(X, sparse_ints)
    assert clf.classes_.tolist() == [3, 7, 42] and clf.predict_proba(X).shape == (200, 3)


def test_multilabel_y_trains_sigmoid_outputs_with_bce():
    X, Y = regression_data(300, 5, k=3)
    labels = (Y > 0).astype(int)
    clf = MLPClassifier(hidden_layer_sizes=(32,), batch_size=20, epochs=40, random_state=0).fit(X, labels)
    assert clf.multilabel_ and clf.loss_function_ == "bce" and clf.output_activation_ == "sigmoid"
    proba = clf.predict_proba(X)
    assert proba.shape == (300, 3) and not np.allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(clf.predict(X), (proba > 0.5).astype(int))
    assert clf.score(X, labels) > 0.7


def test_bad_targets_are_named():
    X, y = regression_data(50, 4)
    with pytest.raises(ValueError, match="requires y"):
        MLPClassifier(epochs=1).fit(X, None)
    with pytest.raises(ValueError, match="continuous"):
        MLPClassifier(epochs=1).fit(X, y)
    with pytest.raises(ValueError, match="at least 2 classes"):
        MLPClassifier(epochs=1).fit(X, np.zeros(50))
    with pytest.raises(ValueError, match="one row per sample"):
        MLPClassifier(epochs=1).fit(X, np.zeros(49))
    with pytest.raises(ValueError, match="multi-output multi-class"):
        MLPClassifier(epochs=1).fit(X, np.random.default_rng(0).integers(0, 3, (50, 2)))
    bad = y.copy()
    bad[7] = np.nan
    with pytest.raises(ValueError, match="row 7"):
        MLPRegressor(epochs=1).fit(X, bad)
    with pytest.raises(ValueError, match="loss"):
        MLPRegressor(loss="bce", epochs=1).fit(X, y)
    reg = MLPRegressor(epochs=1).fit(X, np.stack([y, y], axis=1))
    with pytest.raises(ValueError, match="1 targets per sample; the model has 2"):
        reg.partial_fit(X, y)


def test_partial_fit_needs_classes_first_and_keeps_them():
    X, y = regression_data(120, 4)
    labels = (y > 0).astype(int)
    clf = MLPClassifier(hidden_layer_sizes=(8,), random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X, labels)
    clf.partial_fit(X[:60], labels[:60], classes=[0, 1, 2])
    assert clf.classes_.tolist() == [0, 1, 2] and clf.n_iter_ == 1
    clf.partial_fit(X[60:], labels[60:])
    assert clf.n_iter_ == 2 and len(clf.history_["loss"]) == 2
    with pytest.raises(ValueError, match="not in classes_"):
        clf.partial_fit(X[:5], np.array([0, 1, 5, 0, 1]))
    with pytest.raises(ValueError, match="first call"):
        clf.partial_fit(X[:5], labels[:5], classes=[0, 1])


def test_validation_data_early_stopping_and_sample_weight(digits):
    X, y, Xt, yt = digits
    clf = MLPClassifier(hidden_layer_sizes=(32,), epochs=200, early_stopping=True, patience=3,
                        min_delta=1e-3, random_state=0)
    clf.fit(X, y, validation_data=(Xt, yt))
    assert clf.stop_reason_ == "early_stopping" and clf.n_iter_ < 200
    assert len(clf.history_["val_loss"]) == clf.n_iter_
    assert clf.best_loss_ == clf.history_["val_loss"][clf.best_epoch_ - 1]
    assert clf.n_iter_ - clf.best_epoch_ == 3
    split = MLPClassifier(hidden_layer_sizes=(16,), epochs=2, validation_split=0.2, random_state=0).fit(X, y)
    assert len(split.history_["val_loss"]) == 2
    w = np.ones(len(X))
    same = MLPClassifier(hidden_layer_sizes=(16,), epochs=2, random_state=0, n_threads=1)
    a = same.fit(X, y).get_weights()
    b = same.fit(X, y, sample_weight=w).get_weights()
    for (Wa, ba), (Wb, bb) in zip(a, b):
        np.testing.assert_array_equal(Wa, Wb)
        np.testing.assert_array_equal(ba, bb)
    w[y == 3] = 0.0  # a class with weight zero is never learned
    zeroed = MLPClassifier(hidden_layer_sizes=(16,), epochs=30, random_state=0).fit(X, y, sample_weight=w)
    assert (zeroed.predict(Xt) == 3).mean() < 0.01 and (yt == 3).mean() > 0.05


def test_same_seed_same_weights():
    X, y = regression_data(100, 5)
    runs = [MLPRegressor(hidden_layer_sizes=(8, 8), epochs=3, random_state=5, n_threads=2).fit(X, y).get_weights()
            for _ in range(2)]
    for (Wa, ba), (Wb, bb) in zip(*runs):
        np.testing.assert_array_equal(Wa, Wb)
        np.testing.assert_array_equal(ba, bb)


# ---- files and pickles -------------------------------------------------------------------------

def test_save_load_and_pickle_give_the_same_model(tmp_path, digits):
    X, y, Xt, _ = digits
    labels = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])[y]
    clf = MLPClassifier(hidden_layer_sizes=(16,), epochs=2, random_state=0).fit(X, labels)
    Xr, yr = regression_data(k=2)
    reg = MLPRegressor(hidden_layer_sizes=(8,), loss="huber", epochs=2, random_state=0).fit(Xr, yr)
    for est, data in ((clf, Xt), (reg, Xr)):
        path = tmp_path / f"{type(est).__name__}.fae"
        est.save(path)
        for back in (fastae.load(path), type(est).load(path), pickle.loads(pickle.dumps(est))):
            assert type(back) is type(est)
            np.testing.assert_array_equal(back.predict(data), est.predict(data))
            assert back.n_outputs_ == est.n_outputs_ and back.history_ == est.history_
        with pytest.raises(fastae.ModelFileError, match="not a"):
            Autoencoder.load(path)
    back = fastae.load(tmp_path / "MLPClassifier.fae")
    assert back.classes_.tolist() == clf.classes_.tolist() and back.classes_.dtype == clf.classes_.dtype
    np.testing.assert_array_equal(back.predict_proba(Xt), clf.predict_proba(Xt))
    back.partial_fit(X[:50], labels[:50])  # the loaded model trains on
    assert back.n_iter_ == 3


def test_hostile_metadata_is_refused(tmp_path):
    import json

    X, y = regression_data(60, 4)
    clf = MLPClassifier(hidden_layer_sizes=(4,), epochs=1, random_state=0).fit(X, (y > 0).astype(int))
    doc = json.loads(clf._metadata())
    for attributes in ({"classes_": "ab"}, {"classes_": {"dtype": "O", "values": [[1], 2]}},
                       {"n_outputs_": -1}, {"n_outputs_": 3}, {"encoder_layers_": "x"}):
        bad = json.loads(json.dumps(doc))
        bad["attributes"].update(attributes)
        data = fastae._core.model_to_bytes(clf._model, None, False, json.dumps(bad).encode())
        path = tmp_path / "bad.fae"
        path.write_bytes(data)
        with pytest.raises(fastae.ModelFileError):
            fastae.load(path)


# ---- encoder transfer --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def encoder(digits):
    X, _, _, _ = digits
    return Autoencoder(hidden_layer_sizes=(32, 16), batch_size=32, epochs=60, random_state=0).fit(X)


def test_frozen_encoder_layers_are_copied_and_never_change(encoder, digits):
    X, y, Xt, yt = digits
    before = [(W.copy(), b.copy()) for W, b in encoder.get_weights()]
    clf = MLPClassifier(encoder=encoder, hidden_layer_sizes=(), batch_size=32, epochs=40, learning_rate=3e-3,
                        random_state=0).fit(X, y)
    assert clf._model.layer_sizes == [64, 32, 16, 10]
    got = clf.get_weights()
    for (W, b), (W0, b0) in zip(got[:2], before[:2]):
        np.testing.assert_array_equal(W, W0)
        np.testing.assert_array_equal(b, b0)
    assert [l.get("trainable", True) for l in clf._model.spec()["layers"]] == [False, False, True]
    np.testing.assert_allclose(np_forward(got[:2], Xt, "relu")[1][-1].clip(0),
                               encoder.transform(Xt), rtol=1e-5, atol=1e-6)  # the classifier sees the codes
    assert clf.score(Xt, yt) > 0.7
    for (W, b), (W0, b0) in zip(encoder.get_weights(), before):  # the autoencoder is untouched
        np.testing.assert_array_equal(W, W0)
        np.testing.assert_array_equal(b, b0)
    tuned = MLPClassifier(encoder=encoder, freeze_encoder=False, hidden_layer_sizes=(), epochs=5,
                          random_state=0).fit(X, y)
    assert not np.array_equal(tuned.get_weights()[0][0], before[0][0])


def test_encoder_survives_save_load(encoder, digits, tmp_path):
    X, y, Xt, _ = digits
    reg = MLPRegressor(encoder=encoder, hidden_layer_sizes=(8,), epochs=2, random_state=0).fit(X, y.astype(float))
    reg.save(tmp_path / "r.fae")
    back = fastae.load(tmp_path / "r.fae")
    assert back.encoder is None and back._model.layer_sizes == reg._model.layer_sizes
    np.testing.assert_array_equal(back.predict(Xt), reg.predict(Xt))
    back.partial_fit(X, y.astype(float))  # frozen layers stay frozen after loading
    np.testing.assert_array_equal(back.get_weights()[0][0], encoder.get_weights()[0][0])


def test_bad_encoders_are_named(encoder, digits):
    X, y, _, _ = digits
    with pytest.raises(ValueError, match="not fitted"):
        MLPClassifier(encoder=Autoencoder()).fit(X, y)
    with pytest.raises(ValueError, match="fastae.Autoencoder"):
        MLPClassifier(encoder="ae").fit(X, y)
    with pytest.raises(ValueError, match="input_scale"):
        MLPClassifier(encoder=encoder, input_scale=0.5).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        MLPClassifier(encoder=encoder, epochs=1).fit(X[:, :10], y)


@needs_sklearn
def test_frozen_estimator_keeps_the_encoder_through_clone(encoder, digits):
    from sklearn.base import clone
    from sklearn.frozen import FrozenEstimator

    X, y, Xt, yt = digits
    clf = clone(MLPClassifier(encoder=FrozenEstimator(encoder), hidden_layer_sizes=(), epochs=5, random_state=0))
    clf.fit(X, y)
    np.testing.assert_array_equal(clf.get_weights()[0][0], encoder.get_weights()[0][0])


# ---- scikit-learn's own checks -----------------------------------------------------------------

WEIGHT_REASON = ("sample_weight multiplies each sample's loss in the batch mean over samples (Keras' convention), so "
                 "integer weights match repeated rows only up to the batch normaliser and float32 rounding "
                 "(predictions agree to ~1e-6, not the check's rtol=1e-7); with mini-batches, repeated rows also "
                 "change the batches")


def expected_failed_checks(estimator):
    return {"check_sample_weight_equivalence_on_dense_data": WEIGHT_REASON,
            "check_sample_weight_equivalence_on_sparse_data": WEIGHT_REASON}


if sklearn is not None:
    @parametrize_with_checks([MLPClassifier(), MLPRegressor()], expected_failed_checks=expected_failed_checks)
    def test_sklearn_check_estimator_on_the_defaults(estimator, check):
        check(estimator)


@needs_sklearn
def test_every_constructor_parameter_has_a_check():
    for Est in (MLPClassifier, MLPRegressor):
        assert sorted(Est._param_checks) == sorted(Est()._get_param_names())


@needs_sklearn
def test_pipeline_grid_search_and_cross_val_score(digits):
    from sklearn.model_selection import GridSearchCV, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y, _, _ = digits
    X, y = X[:400], y[:400]
    pipe = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(16,), batch_size=32, epochs=40,
                                                         random_state=0))
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.shape == (3,) and np.all(scores > 0.5)
    grid = GridSearchCV(MLPRegressor(epochs=5, random_state=0), {"hidden_layer_sizes": [(4,), (8,)]}, cv=2)
    grid.fit(X, y.astype(float))
    assert grid.best_params_["hidden_layer_sizes"] in ((4,), (8,))


# ---- every parameter's bad values --------------------------------------------------------------

OWN_BAD_PARAMS = {"loss": ["hinge", "bce", "cross_entropy", None], "freeze_encoder": ["yes", 1, None],
                  "encoder": ["ae", 3]}


@pytest.mark.parametrize("Est", [MLPClassifier, MLPRegressor])
def test_bad_hyperparameters_are_named_and_change_nothing(Est):
    from test_robustness import BAD_PARAMS

    X, y = regression_data(40, 3)
    y = (y > 0).astype(int) if Est is MLPClassifier else y
    est = Est(hidden_layer_sizes=(4,), epochs=1, random_state=0).fit(X, y)
    before = est.get_weights()
    names = Est._get_param_names()
    assert set(names) - set(BAD_PARAMS) <= set(OWN_BAD_PARAMS)
    for name in names:
        values = OWN_BAD_PARAMS[name] if name in OWN_BAD_PARAMS else BAD_PARAMS[name][1][:3]
        for value in values:
            bad = Est(**{**est.get_params(), name: value})
            with pytest.raises((ValueError, TypeError)) as info:
                bad.fit(X, y)
            assert name in str(info.value), (name, value, str(info.value))
            est.set_params(**{name: value})
            with pytest.raises((ValueError, TypeError)):
                est.fit(X, y)
            est.set_params(**{name: Est().get_params()[name] if name != "epochs" else 1})
    for (W, b), (W0, b0) in zip(est.get_weights(), before):
        np.testing.assert_array_equal(W, W0)
        np.testing.assert_array_equal(b, b0)
