"""The autoencoder family's options (penalties, dropout, denoising, sparse codes, an asymmetric
decoder, tied weights, the contractive penalty): L1/L2 against PyTorch on the same weights and
batches (tied weights and the contractive penalty in test_torch_reference.py); the tied and
contractive gradients against float64 finite differences of a NumPy objective, and the
contractive value against an explicit Jacobian; the random options' properties
(exact equivalences at level 0, a seed reproducing a run, draws independent of n_threads,
inference unaffected); the whole-batch sparsity mean; invalid combinations; files and
partial_fit. The gradients of the activity terms and noise are checked in C++ against float64
finite differences (csrc/tests/test_activity_terms.cpp)."""

import numpy as np
import pytest
from conftest import smooth_data

import fastae
from fastae import Autoencoder

X = smooth_data(120, 12, seed=4)


def fit(**kw):
    params = dict(hidden_layer_sizes=(6,), epochs=3, batch_size=32, random_state=0, n_threads=1, loss="bce")
    params.update(kw)
    return Autoencoder(**params).fit(X)


def weights(ae):
    return ae._model.get_params()


# ---- L1 / L2 against PyTorch --------------------------------------------------------------------

@pytest.mark.parametrize("l1,l2", [(0.01, 0.0), (0.0, 0.02), (0.005, 0.01)])
def test_l1_l2_train_as_torch(l1, l2):
    """Keras' kernel regularizers on every W (not b): loss + l1 sum|W| + l2 sum W^2, per batch."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    w0 = [(rng.normal(0, 0.4, (12, 6)).astype(np.float32), rng.normal(0, 0.1, 6).astype(np.float32)),
          (rng.normal(0, 0.4, (6, 12)).astype(np.float32), rng.normal(0, 0.1, 12).astype(np.float32))]
    ae = Autoencoder(hidden_layer_sizes=(6,), loss="bce", optimizer="sgd", momentum=0.0, nesterov=False,
                     learning_rate=0.5, batch_size=32, epochs=3, shuffle=False, n_threads=1, warm_start=True,
                     l1=l1, l2=l2).set_weights(w0)
    ae.fit(X)
    layers = [torch.nn.Linear(12, 6), torch.nn.Linear(6, 12)]
    with torch.no_grad():
        for layer, (W, b) in zip(layers, w0):
            layer.weight.copy_(torch.from_numpy(W.T.copy()))
            layer.bias.copy_(torch.from_numpy(b))
    opt = torch.optim.SGD([p for layer in layers for p in layer.parameters()], lr=0.5)
    Xt = torch.from_numpy(X)
    for _ in range(3):
        for start in range(0, len(X), 32):
            xb = Xt[start:start + 32]
            logits = layers[1](torch.relu(layers[0](xb)))
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, xb)
            for layer in layers:
                loss = loss + l1 * layer.weight.abs().sum() + l2 * (layer.weight ** 2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
    for (W, b), layer in zip(ae.get_weights(), layers):
        np.testing.assert_allclose(W, layer.weight.detach().numpy().T, rtol=1e-4, atol=2e-5)
        np.testing.assert_allclose(b, layer.bias.detach().numpy(), rtol=1e-4, atol=2e-5)
    # The penalty's epoch mean is reported beside the loss.
    assert len(ae.history_["penalty"]) == 3 and all(v > 0 for v in ae.history_["penalty"])


# ---- random options ----------------------------------------------------------------------------

@pytest.mark.parametrize("noise", ["gaussian", "masking"])
def test_noise_of_level_zero_is_no_noise_bit_for_bit(noise):
    assert np.array_equal(weights(fit(noise=noise, noise_level=0.0)), weights(fit()))


def test_noise_and_dropout_change_training_and_a_seed_reproduces_them():
    plain = weights(fit())
    for kw in (dict(noise="gaussian", noise_level=0.2), dict(noise="masking", noise_level=0.3), dict(dropout=0.3)):
        a, b = weights(fit(**kw)), weights(fit(**kw))
        assert np.array_equal(a, b), kw
        assert not np.allclose(a, plain), kw
        other = weights(fit(random_state=1, **kw))
        assert not np.array_equal(a, other)


@pytest.mark.parametrize("kw", [dict(dropout=0.3), dict(noise="gaussian", noise_level=0.2),
                                dict(noise="masking", noise_level=0.3),
                                dict(activation="sigmoid", sparsity_target=0.1, sparsity_weight=0.5),
                                dict(activity_l1=0.01)])
def test_draws_and_batch_statistics_do_not_depend_on_n_threads(kw):
    """Masks and noise are keyed by dataset row and the sparsity mean is the whole batch's: 1 and 2
    threads differ only by the order of floating-point sums."""
    one, three = fit(n_threads=1, **kw), fit(n_threads=2, **kw)
    np.testing.assert_allclose(weights(one), weights(three), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(one.history_["loss"], three.history_["loss"], rtol=1e-5)
    # The same n_threads reproduces the run bit for bit.
    assert np.array_equal(weights(three), weights(fit(n_threads=2, **kw)))


def test_inference_has_no_dropout_or_noise():
    ae = fit(dropout=0.5, noise="gaussian", noise_level=0.5)
    assert np.array_equal(ae.predict(X), ae.predict(X))
    assert np.array_equal(ae.transform(X), ae.transform(X))
    plain = Autoencoder(hidden_layer_sizes=(6,), loss="bce", warm_start=True, n_threads=1).set_weights(ae.get_weights())
    assert np.array_equal(ae.predict(X), plain.predict(X))


def test_sparsity_penalty_makes_codes_sparser():
    plain = fit(activation="sigmoid", epochs=30, learning_rate=0.01)
    sparse = fit(activation="sigmoid", sparsity_target=0.05, sparsity_weight=3.0, epochs=30, learning_rate=0.01)
    assert sparse.transform(X).mean() < 0.5 * plain.transform(X).mean()
    l1 = fit(activity_l1=0.05, epochs=30, learning_rate=0.01)
    assert np.abs(l1.transform(X)).mean() < np.abs(fit(epochs=30, learning_rate=0.01).transform(X)).mean()


# ---- shapes and combinations ------------------------------------------------------------------

def test_decoder_layer_sizes_build_an_asymmetric_decoder():
    ae = fit(hidden_layer_sizes=(10, 4), decoder_layer_sizes=(7, 9))
    assert [w.shape for w, _ in ae.get_weights()] == [(12, 10), (10, 4), (4, 7), (7, 9), (9, 12)]
    assert ae.transform(X).shape == (120, 4) and ae.inverse_transform(ae.transform(X)).shape == (120, 12)
    assert [w.shape for w, _ in fit(hidden_layer_sizes=(10, 4), decoder_layer_sizes=()).get_weights()] == \
        [(12, 10), (10, 4), (4, 12)]


@pytest.mark.parametrize("kw,names", [
    (dict(activation="relu", sparsity_target=0.1), ("sparsity_target", "activation")),
    (dict(noise="masking", noise_level=1.0), ("noise", "noise_level")),
    (dict(hidden_layer_sizes=(8, 4), activation=["tanh", "sigmoid"], decoder_layer_sizes=(5, 6)),
     ("activation", "decoder_layer_sizes")),
    (dict(noise="salt"), ("noise",)), (dict(dropout=1.0), ("dropout",)), (dict(l1=-1.0), ("l1",)),
    (dict(sparsity_target=1.0, activation="sigmoid"), ("sparsity_target",)),
    (dict(decoder_layer_sizes=(0,)), ("decoder_layer_sizes",)),
    (dict(hidden_layer_sizes=(8, 4), tied_weights=True, decoder_layer_sizes=(6,)),
     ("tied_weights", "decoder_layer_sizes")),
    (dict(tied_weights=True, decoder_layer_sizes=(5,)), ("tied_weights", "decoder_layer_sizes")),
    (dict(hidden_layer_sizes=(8, 4), activation="sigmoid", contractive=0.1), ("contractive", "hidden_layer_sizes")),
    (dict(activation="relu", contractive=0.1), ("contractive", "activation")),
    (dict(contractive=-0.1), ("contractive",)), (dict(tied_weights="yes"), ("tied_weights",)),
])
def test_bad_options_and_combinations_name_the_parameters(kw, names):
    with pytest.raises(ValueError) as info:
        fit(**kw)
    for name in names:
        assert name in str(info.value)


@pytest.mark.parametrize("kw", [
    dict(hidden_layer_sizes=(8, 4), activation=["tanh", "sigmoid"], l2=1e-3, dropout=0.1, noise="masking",
         noise_level=0.2, activity_l1=1e-3, sparsity_target=0.2, sparsity_weight=0.1, decoder_layer_sizes=(6,)),
    dict(hidden_layer_sizes=(8, 4), tied_weights=True, l1=1e-3, dropout=0.1, noise="gaussian", noise_level=0.1,
         decoder_layer_sizes=(8,)),
    dict(hidden_layer_sizes=(5,), activation="tanh", contractive=0.2, tied_weights=True, dropout=0.1),
])
def test_options_survive_files_pickle_and_partial_fit(tmp_path, kw):
    import pickle

    ae = fit(**kw)
    ae.save(tmp_path / "m.fae")
    for other in (fastae.load(tmp_path / "m.fae"), pickle.loads(pickle.dumps(ae))):
        assert other._model.spec() == ae._model.spec()
        assert np.array_equal(other.predict(X), ae.predict(X))
        assert {k: other.get_params()[k] for k in kw} == {k: ae.get_params()[k] for k in kw}
    # partial_fit continues the same network (one more epoch, same options), as warm_start does.
    before = weights(ae)
    ae.partial_fit(X)
    assert len(ae.history_["loss"]) == 4 and not np.array_equal(before, weights(ae))
    ae.set_params(warm_start=True, epochs=1).fit(X)
    assert ae._model.spec() == fit(**kw)._model.spec()


# ---- tied weights and the contractive penalty ------------------------------------------------

def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def numpy_objective(W0, b0, b1, X, act, contractive, W1=None, l2=0.0):
    """The batch objective of 12 -> k (act) -> 12 (sigmoid, bce) in float64: the mean bce, plus
    contractive * mean over samples of ||dh/dx||_F^2 (the Jacobian built as a matrix per sample:
    J = diag(f'(z)) W0^T), plus l2 * sum W0^2. W1 None: tied (the decoder uses W0.T)."""
    W1 = W0.T if W1 is None else W1
    z = X @ W0 + b0
    h = _sigmoid(z) if act == "sigmoid" else np.tanh(z)
    logits = h @ W1 + b1
    bce = np.mean(np.maximum(logits, 0) - logits * X + np.log1p(np.exp(-np.abs(logits))))
    d = h * (1 - h) if act == "sigmoid" else 1 - h * h
    frob = sum(np.sum((np.diag(d[s]) @ W0.T) ** 2) for s in range(len(X)))
    return bce + contractive * frob / len(X) + l2 * np.sum(W0 ** 2)


@pytest.mark.parametrize("act,tied,contractive,l2", [("sigmoid", True, 0.0, 0.01), ("tanh", True, 0.7, 0.0),
                                                     ("sigmoid", False, 0.5, 0.0), ("sigmoid", True, 1.5, 0.02)])
def test_tied_and_contractive_gradient_matches_float64_finite_differences(act, tied, contractive, l2):
    """One full-batch SGD step of learning rate 1 moves the weights by minus the engine's gradient;
    it matches central differences of the NumPy objective (float64) in every parameter."""
    rng = np.random.default_rng(3)
    W0, b0, b1 = rng.normal(0, 0.5, (12, 5)), rng.normal(0, 0.2, 5), rng.normal(0, 0.2, 12)
    W1 = W0.T.copy() if tied else rng.normal(0, 0.5, (5, 12))
    w0 = [(W0.astype(np.float32), b0.astype(np.float32)), (W1.astype(np.float32), b1.astype(np.float32))]
    ae = Autoencoder(hidden_layer_sizes=(5,), activation=act, loss="bce", optimizer="sgd", momentum=0.0,
                     nesterov=False, learning_rate=1.0, batch_size=len(X), epochs=1, shuffle=False, n_threads=1,
                     warm_start=True, tied_weights=tied, contractive=contractive, l2=l2).set_weights(w0)
    ae.fit(X)
    got = [(a - b) for (a, _), (b, _) in zip(w0, ae.get_weights())], \
        [(a - b) for (_, a), (_, b) in zip(w0, ae.get_weights())]
    Xd = X.astype(np.float64)
    p = [w.astype(np.float64) for w in (w0[0][0], w0[0][1], w0[1][1], w0[1][0])]

    def objective(q):
        return numpy_objective(q[0], q[1], q[2], Xd, act, contractive, None if tied else q[3],
                               l2) + (0.0 if tied else l2 * np.sum(q[3] ** 2))

    eps = 1e-6
    for k, want_of in ((0, got[0][0]), (1, got[1][0]), (2, got[1][1]), (3, got[0][1])):
        if k == 3 and tied:
            continue  # the tied decoder has no W of its own: its gradient is in W0's
        fd = np.zeros_like(p[k])
        for idx in np.ndindex(p[k].shape):
            up = [q.copy() for q in p]
            down = [q.copy() for q in p]
            up[k][idx] += eps
            down[k][idx] -= eps
            fd[idx] = (objective(up) - objective(down)) / (2 * eps)
        assert np.abs(fd).max() > 1e-3
        np.testing.assert_allclose(want_of, fd, atol=3e-6, rtol=1e-3, err_msg=f"parameter {k}")
    if tied:  # the tied layer's W moved with its mirror
        W = ae.get_weights()
        assert np.array_equal(W[1][0], W[0][0].T)


@pytest.mark.parametrize("act", ["sigmoid", "tanh"])
def test_contractive_value_is_the_jacobian_norm(act):
    """The loss of one step (before its update) with the penalty minus without it is
    contractive * mean ||J||_F^2, J the code's Jacobian built entry by entry by central differences."""
    rng = np.random.default_rng(5)
    w0 = [(rng.normal(0, 0.5, (12, 5)).astype(np.float32), rng.normal(0, 0.2, 5).astype(np.float32)),
          (rng.normal(0, 0.5, (5, 12)).astype(np.float32), rng.normal(0, 0.2, 12).astype(np.float32))]
    losses = []
    for contractive in (0.0, 0.4):
        ae = Autoencoder(hidden_layer_sizes=(5,), activation=act, loss="bce", batch_size=len(X), epochs=1,
                         shuffle=False, n_threads=1, warm_start=True, contractive=contractive).set_weights(w0)
        losses.append(ae.fit(X).history_["loss"][0])
    W, b = w0[0][0].astype(np.float64), w0[0][1].astype(np.float64)

    def code(x):
        z = x @ W + b
        return _sigmoid(z) if act == "sigmoid" else np.tanh(z)

    frob = 0.0
    for x in X.astype(np.float64):
        J = np.empty((5, 12))
        for i in range(12):
            e = np.zeros(12)
            e[i] = 1e-6
            J[:, i] = (code(x + e) - code(x - e)) / 2e-6
        frob += np.sum(J ** 2)
    assert losses[1] - losses[0] > 0
    np.testing.assert_allclose(losses[1] - losses[0], 0.4 * frob / len(X), rtol=1e-5)


@pytest.mark.parametrize("kw", [dict(tied_weights=True, dropout=0.3, noise="gaussian", noise_level=0.2, l2=1e-3),
                                dict(activation="tanh", contractive=0.5, dropout=0.2, noise="masking",
                                     noise_level=0.2, activity_l1=0.01)])
def test_tied_and_contractive_seeds_and_threads(kw):
    """A seed reproduces a run bit for bit for a given n_threads; 1 and 2 threads agree to rounding;
    both options change training."""
    one, two = fit(n_threads=1, **kw), fit(n_threads=2, **kw)
    np.testing.assert_allclose(weights(one), weights(two), rtol=1e-4, atol=1e-6)
    assert np.array_equal(weights(two), weights(fit(n_threads=2, **kw)))
    without = {k: v for k, v in kw.items() if k not in ("tied_weights", "contractive")}
    assert not np.array_equal(fit(n_threads=1, **without).predict(X), one.predict(X))


def test_tied_weights_halve_the_weights_and_set_weights_checks_the_tie():
    ae = fit(hidden_layer_sizes=(8, 4), tied_weights=True)
    plain = fit(hidden_layer_sizes=(8, 4))
    assert ae._model.n_params == plain._model.n_params - (12 * 8 + 8 * 4)
    w = ae.get_weights()
    assert [W.shape for W, _ in w] == [W.shape for W, _ in plain.get_weights()]
    assert np.array_equal(w[2][0], w[1][0].T) and np.array_equal(w[3][0], w[0][0].T)
    # None for a tied W, or exactly the transpose, loads; anything else is refused, leaving the model.
    other = Autoencoder(hidden_layer_sizes=(8, 4), tied_weights=True, loss="bce")
    other.set_weights([w[0], w[1], (None, w[2][1]), (None, w[3][1])])
    assert np.array_equal(other.predict(X), ae.predict(X))
    bad = [w[0], w[1], w[2], (w[3][0] + 1e-3, w[3][1])]
    with pytest.raises(ValueError, match="layer 3: tied_weights"):
        ae.set_weights(bad)
    assert np.array_equal(weights(ae), weights(other))
    with pytest.raises(ValueError, match="layer 0: W is None"):
        ae.set_weights([(None, w[0][1]), w[1], w[2], w[3]])
    # A tied encoder's forward pass in NumPy with get_weights' matrices is the engine's.
    a = X.astype(np.float64)
    for i, (W, b) in enumerate(w):
        a = a @ W + b
        a = np.maximum(a, 0) if i < 3 else _sigmoid(a)
    np.testing.assert_allclose(ae.predict(X), a, atol=1e-5)


def test_a_tied_or_contractive_network_saved_from_cpp_loads_as_its_autoencoder(tmp_path):
    """A file without the estimator's metadata (as a C++ host writes it): the tie and the
    penalty are read from the network itself."""
    from fastae import _core

    for kw in (dict(hidden_layer_sizes=(8, 4), tied_weights=True), dict(activation="tanh", contractive=0.3)):
        ae = fit(**kw)
        path = tmp_path / "cpp.fae"
        _core.save_model(ae._model, bytes(path), None, True, b"")
        back = fastae.load(path)
        assert {k: back.get_params()[k] for k in kw} == kw
        assert np.array_equal(back.predict(X), ae.predict(X))


def test_warm_start_refuses_a_change_of_tied_weights():
    ae = fit()
    before = weights(ae)
    with pytest.raises(ValueError, match="warm_start=True needs the fitted network's weight ties"):
        ae.set_params(tied_weights=True, warm_start=True).fit(X)
    assert np.array_equal(weights(ae), before)
