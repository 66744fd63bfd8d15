"""The autoencoder family's options (penalties, dropout, denoising, sparse codes, an asymmetric
decoder): L1/L2 against PyTorch on the same weights and batches; the random options' properties
(exact equivalences at level 0, a seed reproducing a run, draws independent of n_threads,
inference unaffected); the whole-batch sparsity mean; invalid combinations; files and
partial_fit. The gradients of the activity terms and noise are checked in C++ against float64
finite differences (csrc/tests/test_activity_terms.cpp)."""

import numpy as np
import pytest

import fastae
from fastae import Autoencoder
from conftest import smooth_data

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
])
def test_bad_options_and_combinations_name_the_parameters(kw, names):
    with pytest.raises(ValueError) as info:
        fit(**kw)
    for name in names:
        assert name in str(info.value)


def test_options_survive_files_pickle_and_partial_fit(tmp_path):
    import pickle

    kw = dict(hidden_layer_sizes=(8, 4), activation=["tanh", "sigmoid"], l2=1e-3, dropout=0.1, noise="masking",
              noise_level=0.2, activity_l1=1e-3, sparsity_target=0.2, sparsity_weight=0.1, decoder_layer_sizes=(6,))
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
    assert ae._model.spec()["layers"][0]["noise"] == "masking"
