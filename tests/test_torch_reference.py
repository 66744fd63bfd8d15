"""fastae against PyTorch (CPU, float32): the same network trained the same way.

Each test builds a fastae Autoencoder and the identical torch model (nn.Linear layers, torch
weight = W.T, bias = b; the activations as torch.nn modules: LeakyReLU(negative_slope), ELU(),
GELU() exact, Softplus(), ...; bce and cross_entropy on the logits as BCEWithLogitsLoss and
CrossEntropyLoss with probability targets, like fastae's fused output), starts both from the same
weights (drawn in NumPy, set with set_weights and warm_start=True), feeds the same batches
(shuffle=False, batch_size 32 on 100 digits: 3 full batches and one of 4) for 3 epochs (12 steps)
with the same torch.optim optimizer, and compares every weight, and fastae's per-epoch
history_["loss"] with torch's mean epoch loss (sum over batches of batch loss * batch size / n).
Covered: every hidden activation, every output activation, every loss, every optimizer, per-layer
activation lists (the decoder's mirroring), sample_weight.

Tolerance: both sides compute in float32 in different orders (blocked products, fused output
passes), and those rounding differences compound over 12 steps (Adam divides tiny gradients by
their own root mean square, which amplifies their rounding). The weights move by 4e-2 to 2e-1 and
agree to at most 5e-6, most to 1e-7 (measured with relu/sigmoid/tanh/linear, mse/bce, adam/sgd);
the comparisons allow rtol 1e-4 and atol 2e-5, which a wrong formula (a missing factor, a
misplaced epsilon, another mirroring) exceeds by orders of magnitude. Epoch losses agree to
1e-7 relative; they are compared with rtol 1e-6.

The first tests check the NumPy reference of test_reference_vocabulary.py (activations, losses,
optimizer rules) against torch in float64, so both references agree.

Skipped without torch (pip install "torch==2.13.0"); torch is never a runtime dependency.
"""


import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

from test_reference_vocabulary import (  # noqa: E402
    ACTIVATION_REF,
    DEFAULTS,
    OPTIMIZER_CASES,
    REQUIRED_OUTPUT,
    Reference,
    act,
    act_grad,
    hidden_activations,
    layer_activations,
    network_sizes,
    np_optimizer,
    random_weights,
    seed_of,
    vocabulary,
)

import fastae  # noqa: E402
from fastae import Autoencoder  # noqa: E402

RTOL, ATOL = 1e-4, 2e-5
N_SAMPLES, BATCH, EPOCHS = 100, 32, 3


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def digits():
    """100 UCI digits in [0, 1] (fastae ships them)."""
    X, _ = fastae.load_digits()
    return np.ascontiguousarray(X[:N_SAMPLES], dtype=np.float32)


def probability_rows(X):
    """Inputs for cross_entropy: each row nonnegative, summing to 1."""
    X = X.astype(np.float64) + 1e-3  # no all-zero row
    return np.ascontiguousarray(X / X.sum(axis=1, keepdims=True), dtype=np.float32)


# ---- the torch side ---------------------------------------------------------------------------

def torch_activation(name, slope):
    modules = {"linear": lambda: nn.Identity(), "relu": lambda: nn.ReLU(),
               "leaky_relu": lambda: nn.LeakyReLU(negative_slope=slope), "elu": lambda: nn.ELU(),
               "gelu": lambda: nn.GELU(approximate="none"), "tanh": lambda: nn.Tanh(),
               "sigmoid": lambda: nn.Sigmoid(), "softplus": lambda: nn.Softplus(),
               "softmax": lambda: nn.Softmax(dim=-1)}
    if name not in modules:
        raise KeyError(f"no torch module for activation {name!r}")
    return modules[name]()


def torch_model(weights, acts, loss, slope=DEFAULTS["leaky_relu_slope"]):
    """nn.Sequential of the fastae network; bce and cross_entropy models end on the logits."""
    layers = []
    for i, ((W, b), name) in enumerate(zip(weights, acts)):
        lin = nn.Linear(*W.shape)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
            lin.bias.copy_(torch.from_numpy(b))
        layers.append(lin)
        if not (i == len(weights) - 1 and loss in REQUIRED_OUTPUT):
            layers.append(torch_activation(name, slope))
    return nn.Sequential(*layers)


def torch_weights(model):
    lins = [m for m in model if isinstance(m, nn.Linear)]
    return [(m.weight.detach().numpy().T.copy(), m.bias.detach().numpy().copy()) for m in lins]


def torch_sample_losses(loss, out, target, delta):
    """l_i: the sample's mean over its outputs (its cross-entropy for cross_entropy)."""
    if loss == "cross_entropy":
        return F.cross_entropy(out, target, reduction="none")
    per_element = {"mse": lambda: F.mse_loss(out, target, reduction="none"),
                   "mae": lambda: F.l1_loss(out, target, reduction="none"),
                   "huber": lambda: F.huber_loss(out, target, reduction="none", delta=delta),
                   "bce": lambda: F.binary_cross_entropy_with_logits(out, target, reduction="none")}
    if loss not in per_element:
        raise KeyError(f"no torch loss for {loss!r}")
    return per_element[loss]().mean(dim=1)


def torch_loss_module(loss, delta):
    return {"mse": lambda: nn.MSELoss(), "mae": lambda: nn.L1Loss(), "huber": lambda: nn.HuberLoss(delta=delta),
            "bce": lambda: nn.BCEWithLogitsLoss(), "cross_entropy": lambda: nn.CrossEntropyLoss()}[loss]()


def torch_optimizer(name, parameters, hyper):
    hp = {**DEFAULTS, **hyper}
    lr, betas, eps = hp["learning_rate"], (hp["beta_1"], hp["beta_2"]), hp["epsilon"]
    if name == "adam":
        return torch.optim.Adam(parameters, lr=lr, betas=betas, eps=eps)
    if name == "adamw":
        return torch.optim.AdamW(parameters, lr=lr, betas=betas, eps=eps, weight_decay=hp["weight_decay"])
    if name == "sgd":
        return torch.optim.SGD(parameters, lr=lr, momentum=hp["momentum"], nesterov=hp["nesterov"], dampening=0)
    if name == "rmsprop":
        return torch.optim.RMSprop(parameters, lr=lr, alpha=hp["rho"], eps=eps, momentum=0, centered=False)
    raise KeyError(f"no torch optimizer for {name!r}")


def train_torch(weights, X, params, sample_weight=None, epochs=EPOCHS, batch_size=BATCH, acts=None):
    """The torch twin of Autoencoder(**params, shuffle=False, ...).fit(X, sample_weight):
    (final weights [(W, b), ...], per-epoch losses)."""
    hp = {**DEFAULTS, "activation": "relu", "output_activation": "sigmoid", "loss": "bce", "optimizer": "adam",
          **params}
    if acts is None:
        acts = layer_activations(hp["hidden_layer_sizes"], hp["activation"], hp["output_activation"])
    model = torch_model(weights, acts, hp["loss"], hp["leaky_relu_slope"])
    opt = torch_optimizer(hp["optimizer"], model.parameters(), {k: v for k, v in hp.items() if k in DEFAULTS})
    loss_module = torch_loss_module(hp["loss"], hp["huber_delta"])
    Xt = torch.from_numpy(X)
    wt = None if sample_weight is None else torch.from_numpy(np.asarray(sample_weight, dtype=np.float32))
    history = []
    for _ in range(epochs):
        total = 0.0
        for s in range(0, len(X), batch_size):
            xb = Xt[s:s + batch_size]
            opt.zero_grad()
            out = model(xb)
            if wt is None:
                loss = loss_module(out, xb)
            else:  # sum_i w_i l_i / batch size
                losses = torch_sample_losses(hp["loss"], out, xb, hp["huber_delta"])
                loss = (wt[s:s + batch_size] * losses).sum() / len(xb)
            loss.backward()
            opt.step()
            total += loss.item() * len(xb)
        history.append(total / len(X))
    return torch_weights(model), history


def train_fastae(weights, X, params, sample_weight=None, epochs=EPOCHS, batch_size=BATCH):
    ae = Autoencoder(**params, warm_start=True, shuffle=False, batch_size=batch_size, epochs=epochs, n_threads=1,
                     random_state=0)
    ae.set_weights(weights)
    if sample_weight is None:
        ae.fit(X)
    else:
        ae.fit(X, sample_weight=sample_weight)
    return ae.get_weights(), ae.history_["loss"]


def assert_same_training(weights, X, params, sample_weight=None, **torch_kw):
    got, got_history = train_fastae(weights, X, params, sample_weight)
    want, want_history = train_torch(weights, X, params, sample_weight, **torch_kw)
    moved = max(np.abs(W1 - W0).max() for (W1, _), (W0, _) in zip(want, weights))
    assert moved > 100 * ATOL  # training did move the weights: the comparison is not vacuous
    for layer, ((W, b), (W_ref, b_ref)) in enumerate(zip(got, want)):
        np.testing.assert_allclose(W, W_ref, rtol=RTOL, atol=ATOL, err_msg=f"layer {layer} W")
        np.testing.assert_allclose(b, b_ref, rtol=RTOL, atol=ATOL, err_msg=f"layer {layer} b")
    np.testing.assert_allclose(got_history, want_history, rtol=1e-6, atol=1e-8)
    return got


def start(d, hidden, *seed):
    return random_weights(network_sizes(d, hidden), np.random.default_rng(seed_of("torch", *seed)), gain=1.0)


HIDDEN = (16, 8)


# ---- the NumPy reference agrees with torch (float64; no fastae involved) ----------------------

@pytest.mark.parametrize("name", sorted(ACTIVATION_REF))
def test_numpy_reference_activation_is_torch_s(name):
    z = torch.linspace(-8.0, 8.0, 1601, dtype=torch.float64).reshape(1, -1)
    z = torch.cat([z, z.flip(1) * 0.5]).requires_grad_()
    slope = 0.2
    y = torch_activation(name, slope)(z)
    np.testing.assert_allclose(act(name, z.detach().numpy(), slope), y.detach().numpy(), rtol=1e-13, atol=1e-13)
    if name != "softmax":
        (g,) = torch.autograd.grad(y.sum(), z)
        np.testing.assert_allclose(act_grad(name, z.detach().numpy(), slope), g.numpy(), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("out,loss,delta", [("sigmoid", "mse", 1.0), ("linear", "mae", 1.0), ("linear", "huber", 1.0),
                                            ("tanh", "huber", 0.3), ("sigmoid", "bce", 1.0),
                                            ("softmax", "cross_entropy", 1.0)])
def test_numpy_reference_loss_is_torch_s(out, loss, delta):
    """Per-sample losses and their gradient with respect to the logits, as torch defines them."""
    rng = np.random.default_rng(seed_of("loss", out, loss, delta))
    z = rng.normal(0.0, 2.0, size=(12, 7))
    if loss == "cross_entropy":
        T = rng.dirichlet(np.ones(7), size=12)
    elif loss == "bce":
        T = rng.uniform(size=(12, 7))
    else:
        T = rng.normal(0.5, 1.5, size=(12, 7))
    ref = Reference(hidden_layer_sizes=(3,), activation="relu", output_activation=out, loss=loss, huber_delta=delta)
    l_ref, dl_ref = ref.sample_losses(z, T)
    zt = torch.tensor(z, requires_grad=True)
    head = zt if loss in REQUIRED_OUTPUT else torch_activation(out, 0.01)(zt)
    l = torch_sample_losses(loss, head, torch.tensor(T), delta)
    (g,) = torch.autograd.grad(l.sum(), zt)
    np.testing.assert_allclose(l_ref, l.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dl_ref, g.numpy(), rtol=1e-11, atol=1e-14)
    # and the batch loss torch's modules report is the mean of l_i
    whole = torch_loss_module(loss, delta)(head, torch.tensor(T))
    assert whole.item() == pytest.approx(l.mean().item(), rel=1e-12)


def _optimizer_cases():
    return [pytest.param(name, kw, id=f"{name}-{i}")
            for name in vocabulary("OPTIMIZERS") for i, kw in enumerate(OPTIMIZER_CASES.get(name, [None]))]


@pytest.mark.parametrize("name,hyper", _optimizer_cases())
def test_numpy_reference_optimizer_is_torch_s(name, hyper):
    """Six steps on given gradients, float64."""
    assert hyper is not None, f"no reference case for optimizer {name!r}"
    rng = np.random.default_rng(seed_of("torch-opt", name, *hyper.items()))
    p0 = rng.normal(size=50)
    grads = rng.normal(scale=rng.uniform(1e-4, 1.0, size=50), size=(6, 50))
    p = torch.tensor(p0, requires_grad=True)
    opt = torch_optimizer(name, [p], hyper)
    step = np_optimizer(name, hyper)
    q = p0.copy()
    for g in grads:
        p.grad = torch.tensor(g)
        opt.step()
        q = step(q, g)
    np.testing.assert_allclose(q, p.detach().numpy(), rtol=1e-12, atol=1e-14)


# ---- fastae against torch ---------------------------------------------------------------------

@pytest.mark.parametrize("hidden", hidden_activations())
def test_hidden_activation_trains_as_torch(hidden, digits):
    params = dict(hidden_layer_sizes=HIDDEN, activation=hidden, output_activation="sigmoid", loss="mse",
                  learning_rate=1e-2)
    assert_same_training(start(64, HIDDEN, hidden), digits, params)


def test_leaky_relu_slope_trains_as_torch(digits):
    params = dict(hidden_layer_sizes=HIDDEN, activation="leaky_relu", leaky_relu_slope=0.2,
                  output_activation="leaky_relu", loss="mse", learning_rate=1e-2)
    assert_same_training(start(64, HIDDEN, "leaky"), digits, params)


@pytest.mark.parametrize("out", [a for a in hidden_activations()])
def test_output_activation_trains_as_torch(out, digits):
    params = dict(hidden_layer_sizes=HIDDEN, activation="tanh", output_activation=out, loss="mse",
                  learning_rate=1e-2)
    assert_same_training(start(64, HIDDEN, "out", out), digits, params)


LOSS_CASES = {
    "mse": [dict(output_activation="sigmoid")],
    "mae": [dict(output_activation="linear")],
    "huber": [dict(output_activation="linear"), dict(output_activation="softplus", huber_delta=0.25)],
    "bce": [dict(output_activation="sigmoid")],
    "cross_entropy": [dict(output_activation="softmax")],
}


def _loss_cases():
    return [pytest.param(loss, kw, id=f"{loss}-{i}")
            for loss in vocabulary("LOSSES") for i, kw in enumerate(LOSS_CASES.get(loss, [None]))]


def _data_for(loss, digits):
    return probability_rows(digits) if loss == "cross_entropy" else digits


@pytest.mark.parametrize("loss,extra", _loss_cases())
def test_loss_trains_as_torch(loss, extra, digits):
    assert extra is not None, f"no torch case for loss {loss!r}"
    X = _data_for(loss, digits)
    params = dict(hidden_layer_sizes=HIDDEN, activation="relu", loss=loss, learning_rate=1e-2, **extra)
    weights = start(64, HIDDEN, "loss", loss, *extra.values())
    if loss == "huber" and "huber_delta" in extra:  # both branches are exercised
        r = np.abs(Reference.of(params).predict(weights, X) - X)
        assert (r < extra["huber_delta"]).mean() > 0.1 and (r > extra["huber_delta"]).mean() > 0.1
    assert_same_training(weights, X, params)


@pytest.mark.parametrize("name,hyper", _optimizer_cases())
def test_optimizer_trains_as_torch(name, hyper, digits):
    assert hyper is not None, f"no reference case for optimizer {name!r}"
    params = dict(hidden_layer_sizes=HIDDEN, activation="tanh", output_activation="sigmoid", loss="mse",
                  optimizer=name, **hyper)
    assert_same_training(start(64, HIDDEN, "opt", name, *hyper.items()), digits, params)


def test_per_layer_activations_train_as_torch(digits):
    """hidden (16, 8, 4) with activation=["tanh", "elu", "sigmoid"]: torch layers tanh, elu,
    sigmoid, elu, tanh, then the output's. Decoder hidden layer k (output width h[K-2-k]) takes
    the activation of encoder layer K-2-k, the encoder layer of the same output width."""
    hidden = (16, 8, 4)
    params = dict(hidden_layer_sizes=hidden, activation=["tanh", "elu", "sigmoid"], output_activation="sigmoid",
                  loss="mse", learning_rate=1e-2)
    weights = start(64, hidden, "mirror")
    acts = ["tanh", "elu", "sigmoid", "elu", "tanh", "sigmoid"]
    assert layer_activations(hidden, params["activation"], "sigmoid") == acts
    got = assert_same_training(weights, digits, params, acts=acts)
    # the other plausible mirroring (the decoder layer of the same input width: sigmoid, elu)
    # trains to weights this test tells apart
    wrong, _ = train_torch(weights, digits, params, acts=["tanh", "elu", "sigmoid", "sigmoid", "elu", "sigmoid"])
    assert max(np.abs(W - W_wrong).max() for (W, _), (W_wrong, _) in zip(got, wrong)) > 100 * ATOL


@pytest.mark.parametrize("loss,extra", _loss_cases())
def test_sample_weight_trains_as_torch(loss, extra, digits):
    """Adam on sum_i w_i l_i / batch size, the weights in [0, 3) with some zeros."""
    assert extra is not None, f"no torch case for loss {loss!r}"
    X = _data_for(loss, digits)
    rng = np.random.default_rng(seed_of("sw", loss, *extra.values()))
    sw = rng.uniform(0.0, 3.0, size=len(X))
    sw[rng.choice(len(X), 10, replace=False)] = 0.0
    params = dict(hidden_layer_sizes=HIDDEN, activation="elu", loss=loss, learning_rate=1e-2, **extra)
    weights = start(64, HIDDEN, "sw", loss)
    got = assert_same_training(weights, X, params, sample_weight=sw)
    unweighted, _ = train_torch(weights, X, params)
    assert max(np.abs(W - W_u).max() for (W, _), (W_u, _) in zip(got, unweighted)) > 100 * ATOL


def test_sample_weight_with_sgd_momentum_trains_as_torch(digits):
    sw = np.random.default_rng(9).uniform(0.0, 2.0, size=len(digits))
    params = dict(hidden_layer_sizes=HIDDEN, activation="gelu", output_activation="sigmoid", loss="bce",
                  optimizer="sgd", learning_rate=0.5)
    assert_same_training(start(64, HIDDEN, "sw-sgd"), digits, params, sample_weight=sw)


# ---- tied weights and the contractive penalty ------------------------------------------------

def tied_start(d, hidden, *seed):
    """Initial weights of a tied network: each decoder layer's W is its mirror's W transposed."""
    weights = start(d, hidden, *seed)
    n = len(weights)
    return [(W if i < n // 2 else weights[n - 1 - i][0].T.copy(), b) for i, (W, b) in enumerate(weights)]


def train_torch_tied(weights, X, hidden_acts, optimizer, hyper, tied, l2=0.0, contractive=0.0):
    """A torch network with parameters W_l (n_in, n_out), b_l, in which decoder layer i (tied) uses
    W_{n-1-i}.T: torch sums the gradients of both uses of a shared tensor. The contractive term is
    contractive * sum over samples of ||dh/dx||_F^2 / batch, with the Jacobian rows from autograd
    (create_graph, so the penalty's own gradient flows). bce on the logits; l2 on each distinct W."""
    n = len(weights)
    Ws = [torch.nn.Parameter(torch.from_numpy(W.copy())) for W, _ in weights]
    bs = [torch.nn.Parameter(torch.from_numpy(b.copy())) for _, b in weights]
    owned = [i for i in range(n) if not (tied and i >= n // 2)]
    matrices = [Ws[n - 1 - i].T if tied and i >= n // 2 else Ws[i] for i in range(n)]
    opt = torch_optimizer(optimizer, [Ws[i] for i in owned] + bs, hyper)
    Xt = torch.from_numpy(X)
    history = []
    for _ in range(EPOCHS):
        total = 0.0
        for s in range(0, len(X), BATCH):
            xb = Xt[s:s + BATCH].clone().requires_grad_(contractive > 0)
            a, code = xb, None
            for i in range(n):
                z = a @ matrices[i] + bs[i]
                a = z if i == n - 1 else torch_activation(hidden_acts[i], 0.01)(z)
                if i == 0:
                    code = a
            loss = F.binary_cross_entropy_with_logits(a, xb.detach())
            for i in owned:
                loss = loss + l2 * (Ws[i] ** 2).sum()
            if contractive > 0:
                frob = sum((torch.autograd.grad(code[:, j].sum(), xb, create_graph=True)[0] ** 2).sum()
                           for j in range(code.shape[1]))
                loss = loss + contractive * frob / len(xb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(xb)
        history.append(total / len(X))
    out = [(matrices[i].detach().numpy().copy(), bs[i].detach().numpy().copy()) for i in range(n)]
    return out, history


@pytest.mark.parametrize("hidden,activation,optimizer,l2,contractive", [
    ((16, 8), "relu", "adam", 0.0, 0.0),
    ((16, 8), "tanh", "sgd", 0.01, 0.0),   # l2 counted once per shared matrix
    ((12,), "sigmoid", "adam", 0.0, 0.5),  # tied and contractive
])
def test_tied_weights_train_as_torch(digits, hidden, activation, optimizer, l2, contractive):
    weights = tied_start(digits.shape[1], hidden, "tied", activation)
    hyper = {"learning_rate": 0.05 if optimizer == "sgd" else 1e-2, "momentum": 0.0, "nesterov": False}
    params = dict(hidden_layer_sizes=hidden, activation=activation, loss="bce", optimizer=optimizer,
                  tied_weights=True, l2=l2, contractive=contractive, **hyper)
    got, got_history = train_fastae(weights, digits, params)
    acts = [activation] * (len(weights) - 1)
    want, want_history = train_torch_tied(weights, digits, acts, optimizer, hyper, True, l2, contractive)
    assert max(np.abs(W1 - W0).max() for (W1, _), (W0, _) in zip(want, weights)) > 100 * ATOL
    for layer, ((W, b), (W_ref, b_ref)) in enumerate(zip(got, want)):
        np.testing.assert_allclose(W, W_ref, rtol=RTOL, atol=ATOL, err_msg=f"layer {layer} W")
        np.testing.assert_allclose(b, b_ref, rtol=RTOL, atol=ATOL, err_msg=f"layer {layer} b")
    np.testing.assert_allclose(got_history, want_history, rtol=1e-6, atol=1e-8)
    n = len(got)
    for i in range(n // 2, n):  # still tied after training
        assert np.array_equal(got[i][0], got[n - 1 - i][0].T)


@pytest.mark.parametrize("activation,optimizer", [("tanh", "adam"), ("sigmoid", "sgd")])
def test_contractive_trains_as_torch_autograd_jacobian(digits, activation, optimizer):
    weights = start(digits.shape[1], (12,), "contractive", activation)
    hyper = {"learning_rate": 0.05 if optimizer == "sgd" else 1e-2, "momentum": 0.0, "nesterov": False}
    params = dict(hidden_layer_sizes=(12,), activation=activation, loss="bce", optimizer=optimizer,
                  contractive=0.3, **hyper)
    got, got_history = train_fastae(weights, digits, params)
    want, want_history = train_torch_tied(weights, digits, [activation], optimizer, hyper, False, contractive=0.3)
    for layer, ((W, b), (W_ref, b_ref)) in enumerate(zip(got, want)):
        np.testing.assert_allclose(W, W_ref, rtol=RTOL, atol=ATOL, err_msg=f"layer {layer} W")
        np.testing.assert_allclose(b, b_ref, rtol=RTOL, atol=ATOL, err_msg=f"layer {layer} b")
    np.testing.assert_allclose(got_history, want_history, rtol=1e-6, atol=1e-8)
    plain, plain_history = train_fastae(weights, digits, {**params, "contractive": 0.0})
    assert got_history[0] > plain_history[0]  # the penalty is in the reported loss
