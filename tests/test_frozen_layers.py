"""Frozen layers (a layer spec's "trainable": False, for encoder transfer): built through
_core.Model.from_spec with a spec dict, trained by the engine's fit. A frozen layer's parameters
are bit-identical after training (whatever the optimizer: AdamW's decoupled decay and penalties
included); the trainable ones take exactly the gradient-descent step of a NumPy float64
backpropagation of the same network (one full-batch SGD step), and train as torch does with
requires_grad=False on the frozen layers (several Adam steps; skipped without torch). The flag
round-trips through the model file. The C++ side (gradients, the backward pass stopping below
the lowest trainable layer) is in csrc/tests/test_tied_frozen.cpp."""

import numpy as np
import pytest
from conftest import smooth_data

from fastae import _core

X = smooth_data(96, 12, seed=7)
ACTS = ["tanh", "relu", "sigmoid"]  # 12 -> 8 -> 6 -> 12, bce on the sigmoid output


def spec(trainable, l2=0.0):
    widths = [8, 6, 12]
    return {"n_inputs": 12, "code_layer": 0, "loss": "bce",
            "layers": [{"units": u, "activation": a, "trainable": t, "l2": l2}
                       for u, a, t in zip(widths, ACTS, trainable)]}


def layers_of(model):
    """[(W (n_in, n_out), b)] of a model's flat parameters."""
    flat, sizes = model.get_params(), model.layer_sizes
    out = []
    for layer in range(model.n_layers):
        n_in, n_out = sizes[layer], sizes[layer + 1]
        off, b_off = model.param_offset(layer), model.bias_offset(layer)
        out.append((flat[off:off + n_in * n_out].reshape(n_in, n_out).copy(), flat[b_off:b_off + n_out].copy()))
    return out


def train(model, optimizer="sgd", learning_rate=0.5, epochs=1, batch_size=None, weight_decay=0.01):
    batch_size = len(X) if batch_size is None else batch_size  # default: the whole of X in one batch
    settings = dict(optimizer=optimizer, learning_rate=learning_rate, beta1=0.9, beta2=0.999, epsilon=1e-8,
                    momentum=0.0, nesterov=False, weight_decay=weight_decay, rho=0.9)
    options = dict(epochs=epochs, batch_size=batch_size, shuffle=False, seed=1, n_threads=2, resume_optimizer=False)
    model.fit(X, None, None, None, None, None, scale=1.0, optimizer=settings, options=options)


def numpy_gradient(layers, x):
    """The float64 gradient of the mean bce of the network on x: [(dW, db)] by backpropagation."""
    acts = {"tanh": (np.tanh, lambda a: 1 - a * a), "relu": (lambda z: np.maximum(z, 0), lambda a: (a > 0) * 1.0)}
    a, inputs = x, []
    for i, (W, b) in enumerate(layers):
        inputs.append(a)
        z = a @ W + b
        a = z if i == len(layers) - 1 else acts[ACTS[i]][0](z)
    dz = (1 / (1 + np.exp(-a)) - x) / x.size  # bce on the logits, mean over all elements
    grads = []
    for i in range(len(layers) - 1, -1, -1):
        grads.append((inputs[i].T @ dz, dz.sum(axis=0)))
        if i:
            dz = (dz @ layers[i][0].T) * acts[ACTS[i - 1]][1](inputs[i])
    return grads[::-1]


@pytest.mark.parametrize("trainable", [(False, True, True), (True, False, True), (False, False, True),
                                       (True, True, False)])
def test_frozen_params_are_untouched_and_the_others_take_the_gradient_step(trainable):
    model = _core.Model.from_spec(spec(trainable))
    model.init_weights(4)
    assert [layer["trainable"] for layer in model.spec()["layers"]] == list(trainable)
    before = layers_of(model)
    grads = numpy_gradient([(W.astype(np.float64), b.astype(np.float64)) for W, b in before], X.astype(np.float64))
    train(model)
    after = layers_of(model)
    for layer, ((W0, b0), (W1, b1), (gW, gb)) in enumerate(zip(before, after, grads)):
        if not trainable[layer]:
            assert np.array_equal(W1, W0) and np.array_equal(b1, b0), layer
            continue
        assert np.abs(W1 - W0).max() > 1e-4, layer
        np.testing.assert_allclose(W1, W0 - 0.5 * gW, atol=2e-6, err_msg=f"layer {layer} W")
        np.testing.assert_allclose(b1, b0 - 0.5 * gb, atol=2e-6, err_msg=f"layer {layer} b")


def test_frozen_layers_get_no_decay_or_penalty():
    model = _core.Model.from_spec(spec((False, True, True), l2=0.05))
    model.init_weights(5)
    W0, b0 = layers_of(model)[0]
    train(model, optimizer="adamw", learning_rate=0.05, epochs=3, batch_size=32, weight_decay=0.5)
    W1, b1 = layers_of(model)[0]
    assert np.array_equal(W0, W1) and np.array_equal(b0, b1)
    assert model.optimizer_state()["steps"] == 9


def test_trainable_round_trips_through_the_model_file():
    model = _core.Model.from_spec(spec((False, True, False)))
    model.init_weights(6)
    back, _, _ = _core.model_from_bytes(_core.model_to_bytes(model, None, True, b""))
    assert back.spec() == model.spec()
    assert [layer["trainable"] for layer in back.spec()["layers"]] == [False, True, False]


def test_a_frozen_layer_sharing_a_tied_matrix_must_match_its_mirror():
    s = spec((False, True, True))
    s["layers"][1]["units"] = 8
    s["layers"][2]["tied_to"] = 0
    with pytest.raises(ValueError, match="both must be trainable or both frozen"):
        _core.Model.from_spec(s)
    s["layers"][2]["trainable"] = False
    _core.Model.from_spec(s)  # tied and frozen together: the decoder's bias is frozen too


def test_frozen_layers_train_as_torch_with_requires_grad_false():
    torch = pytest.importorskip("torch")
    trainable = (False, True, True)
    model = _core.Model.from_spec(spec(trainable))
    model.init_weights(8)
    start = layers_of(model)
    train(model, optimizer="adam", learning_rate=1e-2, epochs=3, batch_size=32)
    lins = []
    for (W, b), t in zip(start, trainable):
        lin = torch.nn.Linear(*W.shape)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(W.T.copy()))
            lin.bias.copy_(torch.from_numpy(b))
        lin.requires_grad_(t)
        lins.append(lin)
    net = torch.nn.Sequential(lins[0], torch.nn.Tanh(), lins[1], torch.nn.ReLU(), lins[2])
    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=1e-2)
    Xt = torch.from_numpy(X)
    for _ in range(3):
        for s in range(0, len(X), 32):
            xb = Xt[s:s + 32]
            opt.zero_grad()
            torch.nn.functional.binary_cross_entropy_with_logits(net(xb), xb).backward()
            opt.step()
    for layer, ((W, b), lin) in enumerate(zip(layers_of(model), lins)):
        np.testing.assert_allclose(W, lin.weight.detach().numpy().T, rtol=1e-4, atol=2e-5, err_msg=f"layer {layer}")
        np.testing.assert_allclose(b, lin.bias.detach().numpy(), rtol=1e-4, atol=2e-5, err_msg=f"layer {layer}")
    assert np.abs(layers_of(model)[2][0] - start[2][0]).max() > 1e-3


def test_loss_and_gradient_is_zero_for_frozen_layers():
    model = _core.Model.from_spec(spec((True, False, True)))
    model.init_weights(9)
    _, flat = model.loss_and_gradient(X, None)
    grads = numpy_gradient([(W.astype(np.float64), b.astype(np.float64)) for W, b in layers_of(model)],
                           X.astype(np.float64))
    sizes = model.layer_sizes
    for layer, (gW, gb) in enumerate(grads):
        off, b_off, n_in, n_out = model.param_offset(layer), model.bias_offset(layer), sizes[layer], sizes[layer + 1]
        got_w, got_b = flat[off:off + n_in * n_out].reshape(n_in, n_out), flat[b_off:b_off + n_out]
        if layer == 1:
            assert not got_w.any() and not got_b.any()
        else:
            np.testing.assert_allclose(got_w, gW, atol=1e-6)
            np.testing.assert_allclose(got_b, gb, atol=1e-6)
