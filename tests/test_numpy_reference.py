"""The engine against a small, independent NumPy implementation of the same maths (float64):
the forward pass, the loss, its gradient, and several optimizer steps of a real fit."""

import numpy as np
import pytest
from conftest import smooth_data

from fastae import Autoencoder

# ---- the reference, written from the formulas (docs/ARCHITECTURE.md), not from the C++ --------

def act(name, z):
    return {"linear": lambda z: z, "relu": lambda z: np.maximum(z, 0), "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
            "tanh": np.tanh}[name](z)


def act_grad(name, z):
    """f'(z) from the pre-activation."""
    if name == "linear":
        return np.ones_like(z)
    if name == "relu":
        return (z > 0).astype(z.dtype)
    if name == "sigmoid":
        s = 1 / (1 + np.exp(-z))
        return s * (1 - s)
    return 1 - np.tanh(z) ** 2


def np_forward(weights, X, hidden, out):
    """Returns the inputs of every layer and the output logits."""
    a = X.astype(np.float64)
    inputs, z = [], None
    for i, (W, b) in enumerate(weights):
        inputs.append(a)
        z = a @ W.astype(np.float64) + b.astype(np.float64)
        a = act(hidden, z) if i + 1 < len(weights) else None
    return inputs, z


def np_loss_and_grads(weights, X, hidden, out, loss):
    X64 = X.astype(np.float64)
    inputs, z = np_forward(weights, X, hidden, out)
    N = X.size
    if loss == "bce":
        p = 1 / (1 + np.exp(-z))
        value = -np.mean(X64 * np.log(p) + (1 - X64) * np.log(1 - p))  # the textbook form
        dz = (p - X64) / N
    else:
        y = act(out, z)
        value = np.mean((y - X64) ** 2)
        dz = 2 * (y - X64) / N * act_grad(out, z)
    grads = [None] * len(weights)
    for i in reversed(range(len(weights))):
        W = weights[i][0].astype(np.float64)
        grads[i] = (inputs[i].T @ dz, dz.sum(axis=0))
        if i > 0:
            z_prev = inputs[i - 1] @ weights[i - 1][0].astype(np.float64) + weights[i - 1][1]
            dz = (dz @ W.T) * act_grad(hidden, z_prev)
    return value, grads


def np_adam(weights, grads, state, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
    state["t"] += 1
    t = state["t"]
    out = []
    for i, ((W, b), (gW, gb)) in enumerate(zip(weights, grads)):
        new = []
        for j, (p, g) in enumerate(((W, gW), (b, gb))):
            m = state.setdefault(("m", i, j), np.zeros_like(g))
            v = state.setdefault(("v", i, j), np.zeros_like(g))
            m[...] = b1 * m + (1 - b1) * g
            v[...] = b2 * v + (1 - b2) * g * g
            new.append(p - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps))
        out.append(tuple(new))
    return out


def np_sgd(weights, grads, state, lr, momentum, nesterov):
    out = []
    for i, ((W, b), (gW, gb)) in enumerate(zip(weights, grads)):
        new = []
        for j, (p, g) in enumerate(((W, gW), (b, gb))):
            u = state.setdefault(("u", i, j), np.zeros_like(g))
            u[...] = momentum * u + g
            new.append(p - lr * (g + momentum * u if nesterov else u))
        out.append(tuple(new))
    return out


def fitted(X, **kw):
    params = dict(hidden_layer_sizes=(8, 3), epochs=1, batch_size=len(X), shuffle=False, random_state=0)
    params.update(kw)
    return Autoencoder(**params).fit(X)


# ---- tests ------------------------------------------------------------------------------------

@pytest.mark.parametrize("hidden", ["relu", "sigmoid", "tanh", "linear"])
@pytest.mark.parametrize("out,loss", [("sigmoid", "bce"), ("sigmoid", "mse"), ("linear", "mse"), ("tanh", "mse")])
def test_forward_encode_decode_match_numpy(hidden, out, loss):
    X = smooth_data(50, 12, seed=2)
    ae = fitted(X, activation=hidden, output_activation=out, loss=loss)
    weights = ae.get_weights()
    inputs, z = np_forward(weights, X, hidden, out)
    np.testing.assert_allclose(ae.predict(X), act(out, z), rtol=1e-5, atol=1e-6)
    # The code is the output of the encoder's last layer (layer 2 of 4).
    code = act(hidden, inputs[1] @ weights[1][0] + weights[1][1])
    np.testing.assert_allclose(ae.transform(X), code, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ae.inverse_transform(ae.transform(X)), ae.predict(X), rtol=1e-6, atol=1e-7)
    value, _ = np_loss_and_grads(weights, X, hidden, out, loss)
    assert ae.score(X) == pytest.approx(-value, rel=1e-5)
    per_sample = ae.reconstruction_error(X)
    assert per_sample.shape == (50,)
    assert per_sample.mean() == pytest.approx(value, rel=1e-5)


@pytest.mark.parametrize("hidden", ["relu", "sigmoid", "tanh", "linear"])
@pytest.mark.parametrize("out,loss", [("sigmoid", "bce"), ("linear", "mse"), ("sigmoid", "mse")])
def test_gradient_matches_numpy(hidden, out, loss):
    X = smooth_data(40, 10, seed=3)
    ae = fitted(X, activation=hidden, output_activation=out, loss=loss)
    weights = ae.get_weights()
    value, grads = np_loss_and_grads(weights, X, hidden, out, loss)
    got_value, flat = ae._model.loss_and_gradient(X)
    assert got_value == pytest.approx(value, rel=1e-5)
    want = np.concatenate([np.concatenate([gW.ravel(), gb]) for gW, gb in grads])
    assert np.abs(want).max() > 0
    np.testing.assert_allclose(flat, want, rtol=1e-4, atol=1e-5 * np.abs(want).max())


def test_adam_steps_of_a_real_fit_match_numpy():
    """Four minibatch Adam steps (the last batch partial) of fit, replayed in NumPy."""
    X = smooth_data(100, 16, seed=4)
    start = Autoencoder(hidden_layer_sizes=(6,), epochs=1, random_state=5).fit(X[:2]).get_weights()
    ae = Autoencoder(hidden_layer_sizes=(6,), learning_rate=1e-2, batch_size=30, epochs=1, shuffle=False,
                     warm_start=True)
    ae.set_weights(start).fit(X)
    weights = [(W.astype(np.float64), b.astype(np.float64)) for W, b in start]
    state = {"t": 0}
    for s in range(0, 100, 30):
        _, grads = np_loss_and_grads(weights, X[s:s + 30], "relu", "sigmoid", "bce")
        weights = np_adam(weights, grads, state, lr=1e-2)
    assert state["t"] == 4
    for (W, b), (W_ref, b_ref) in zip(ae.get_weights(), weights):
        np.testing.assert_allclose(W, W_ref, rtol=1e-4, atol=2e-6)
        np.testing.assert_allclose(b, b_ref, rtol=1e-4, atol=2e-6)
    # and the weights did move: the comparison is not between two untouched copies
    assert np.abs(ae.get_weights()[0][0] - start[0][0]).max() > 1e-3


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_steps_match_numpy(nesterov):
    X = smooth_data(60, 8, seed=6)
    start = Autoencoder(hidden_layer_sizes=(4,), epochs=1, random_state=7).fit(X[:2]).get_weights()
    ae = Autoencoder(hidden_layer_sizes=(4,), optimizer="sgd", learning_rate=0.5, momentum=0.8, nesterov=nesterov,
                     loss="mse", batch_size=20, epochs=2, shuffle=False, warm_start=True)
    ae.set_weights(start).fit(X)
    weights = [(W.astype(np.float64), b.astype(np.float64)) for W, b in start]
    state = {}
    for _ in range(2):
        for s in range(0, 60, 20):
            _, grads = np_loss_and_grads(weights, X[s:s + 20], "relu", "sigmoid", "mse")
            weights = np_sgd(weights, grads, state, lr=0.5, momentum=0.8, nesterov=nesterov)
    for (W, b), (W_ref, b_ref) in zip(ae.get_weights(), weights):
        np.testing.assert_allclose(W, W_ref, rtol=1e-4, atol=2e-6)
        np.testing.assert_allclose(b, b_ref, rtol=1e-4, atol=2e-6)


def test_history_loss_is_the_sample_weighted_mean_of_batch_losses():
    X = smooth_data(70, 8, seed=8)
    start = Autoencoder(hidden_layer_sizes=(4,), epochs=1, random_state=1).fit(X[:2]).get_weights()
    ae = Autoencoder(hidden_layer_sizes=(4,), batch_size=32, epochs=1, shuffle=False, warm_start=True,
                     learning_rate=1e-2)
    ae.set_weights(start).fit(X, validation_data=X)
    weights = [(W.astype(np.float64), b.astype(np.float64)) for W, b in start]
    state, total = {"t": 0}, 0.0
    for s in range(0, 70, 32):
        value, grads = np_loss_and_grads(weights, X[s:s + 32], "relu", "sigmoid", "bce")
        total += value * len(X[s:s + 32])
        weights = np_adam(weights, grads, state, lr=1e-2)
    assert ae.history_["loss"][0] == pytest.approx(total / 70, rel=1e-5)
    assert ae.history_["val_loss"][0] == pytest.approx(-ae.score(X), rel=1e-6)
