"""fastae's whole vocabulary (activations, losses, optimizers, initializers, sample weights)
against an independent NumPy reference in float64, written from the documented formulas, not from
the C++.

References used, test by test:

* loss and gradient (every hidden activation x every allowed (output activation, loss) pair):
  the loss is computed by the NumPy forward pass below; the gradient is compared with float64
  central finite differences of that NumPy loss (and the NumPy backward pass is itself checked
  against the same finite differences, so the reference is tested too).
* optimizers: k full-batch steps of a real fit (batch_size >= n_samples, shuffle=False, so epoch
  t is step t) replayed in float64 with the torch update rules, gradients from the NumPy backward.
* sample_weight: the weighted loss sum_i w_i l_i / batch_size (Keras' definition, l_i the
  sample's mean over its outputs or its cross-entropy) through one or two plain SGD steps, plus
  exact consequences of that definition (weights all 1 = no weights, zero weight = dropping the
  sample up to the normaliser, weight 2 = duplicating the sample up to the normaliser).
* kernel_initializer: statistics of a large layer's first draws (bound, std, mean, kurtosis)
  against Keras' definitions; the default's draws pinned to those of fastae before the
  vocabulary grew.
* bad names and values: ValueError before any training.

The vocabulary lists come from the package (fastae._core.ACTIVATIONS, ...) when it offers them,
else from the lists this file references, and a test checks that the two agree, so that a name
added to the engine without a reference here fails.
"""

import math
import zlib

import numpy as np
import pytest

import fastae
from fastae import Autoencoder, NotFittedError

F32, F64 = np.float32, np.float64

# ---- the vocabulary ---------------------------------------------------------------------------

# The documented defaults of the hyperparameters that the reference needs.
DEFAULTS = dict(leaky_relu_slope=0.01, huber_delta=1.0, learning_rate=1e-3, beta_1=0.9, beta_2=0.999,
                epsilon=1e-8, weight_decay=0.01, momentum=0.9, nesterov=True, rho=0.9,
                kernel_initializer="glorot_uniform")

OUTPUT_ONLY = {"softmax"}                                       # activations allowed on the output only
REQUIRED_OUTPUT = {"bce": "sigmoid", "cross_entropy": "softmax"}  # other losses: any non-output-only one


# ---- the reference, float64 -------------------------------------------------------------------

try:  # scipy comes with scikit-learn (a test dependency); math.erf is the same function, slower
    from scipy.special import erf as _erf
except ImportError:  # pragma: no cover
    _erf = np.vectorize(math.erf, otypes=[F64])


def _sigmoid(z):
    return np.exp(-np.logaddexp(0.0, -z))


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# name: (f(z, slope), f'(z, slope)); softmax has no elementwise derivative (it is fused with
# cross_entropy, whose dL/dz is written in sample_losses).
ACTIVATION_REF = {
    "linear": (lambda z, s: z, lambda z, s: np.ones_like(z)),
    "relu": (lambda z, s: np.maximum(z, 0.0), lambda z, s: (z > 0).astype(F64)),
    "leaky_relu": (lambda z, s: np.where(z > 0, z, s * z), lambda z, s: np.where(z > 0, 1.0, s)),
    "elu": (lambda z, s: np.where(z > 0, z, np.expm1(np.minimum(z, 0.0))),
            lambda z, s: np.where(z > 0, 1.0, np.exp(np.minimum(z, 0.0)))),
    # exact GELU, z * Phi(z) (torch.nn.GELU(approximate='none'))
    "gelu": (lambda z, s: 0.5 * z * (1.0 + _erf(z / math.sqrt(2.0))),
             lambda z, s: 0.5 * (1.0 + _erf(z / math.sqrt(2.0))) + z * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)),
    "tanh": (lambda z, s: np.tanh(z), lambda z, s: 1.0 - np.tanh(z) ** 2),
    "sigmoid": (lambda z, s: _sigmoid(z), lambda z, s: _sigmoid(z) * (1.0 - _sigmoid(z))),
    # log(1 + e^z) without torch's switch to z above 20 (the data here stays far below)
    "softplus": (lambda z, s: np.logaddexp(0.0, z), lambda z, s: _sigmoid(z)),
    "softmax": (lambda z, s: _softmax(z), None),
}

LOSS_REF = ("mse", "bce", "mae", "huber", "cross_entropy")
OPTIMIZER_REF = ("adam", "adamw", "sgd", "rmsprop")
# name: (normal, scale, fan) with fan "avg" = (fan_in + fan_out) / 2 or "in" = fan_in (Keras)
INITIALIZER_REF = {
    "glorot_uniform": (False, 1.0, "avg"),
    "glorot_normal": (True, 1.0, "avg"),
    "he_uniform": (False, 2.0, "in"),
    "he_normal": (True, 2.0, "in"),
    "lecun_normal": (True, 1.0, "in"),
}
REFERENCED = {"ACTIVATIONS": tuple(ACTIVATION_REF), "LOSSES": LOSS_REF, "OPTIMIZERS": OPTIMIZER_REF,
              "INITIALIZERS": tuple(INITIALIZER_REF)}


def vocabulary(kind):
    """The package's list of names (fastae._core.ACTIVATIONS, ...), or this file's before the
    package offers one."""
    return tuple(getattr(fastae._core, kind, REFERENCED[kind]))


def hidden_activations():
    return tuple(a for a in vocabulary("ACTIVATIONS") if a not in OUTPUT_ONLY)


def output_loss_pairs():
    """Every allowed (output_activation, loss)."""
    pairs = []
    for loss in vocabulary("LOSSES"):
        if loss in REQUIRED_OUTPUT:
            pairs.append((REQUIRED_OUTPUT[loss], loss))
        else:
            pairs += [(out, loss) for out in hidden_activations()]
    return pairs


def act(name, z, slope=0.01):
    if name not in ACTIVATION_REF:
        raise KeyError(f"no NumPy reference for activation {name!r}")
    return ACTIVATION_REF[name][0](z, slope)


def act_grad(name, z, slope=0.01):
    return ACTIVATION_REF[name][1](z, slope)


def layer_activations(hidden_layer_sizes, activation, output_activation):
    """One activation per layer. A list gives the encoder's; decoder hidden layer k (k = 0 the
    first decoder layer, output width h[K-2-k]) uses encoder layer K-2-k's, the encoder layer of
    the same output width: (h0, h1) with [a0, a1] gives a0, a1, a0, output_activation."""
    K = len(hidden_layer_sizes)
    enc = [activation] * K if isinstance(activation, str) else list(activation)
    assert len(enc) == K
    return enc + [enc[K - 2 - k] for k in range(K - 1)] + [output_activation]


class Reference:
    """The network and loss an estimator's parameters describe, in float64. The forward pass and
    the loss also take a stack of B networks (W (B, n_in, n_out), b (B, 1, n_out), as unflatten
    makes them from (B, n_params)), for the finite differences."""

    def __init__(self, hidden_layer_sizes, activation="relu", output_activation="sigmoid", loss="bce",
                 leaky_relu_slope=DEFAULTS["leaky_relu_slope"], huber_delta=DEFAULTS["huber_delta"], **_):
        if loss not in LOSS_REF:
            raise KeyError(f"no NumPy reference for loss {loss!r}")
        self.acts = layer_activations(hidden_layer_sizes, activation, output_activation)
        self.loss_name, self.slope, self.delta = loss, leaky_relu_slope, huber_delta
        self.code_layer = len(hidden_layer_sizes) - 1

    @classmethod
    def of(cls, params):
        return cls(**params)

    def forward(self, weights, X):
        """(inputs of each layer, pre-activations of each layer)."""
        a = np.asarray(X, F64)
        inputs, zs = [], []
        for (W, b), f in zip(weights, self.acts):
            inputs.append(a)
            z = a @ np.asarray(W, F64) + np.asarray(b, F64)
            zs.append(z)
            a = act(f, z, self.slope)
        return inputs, zs

    def predict(self, weights, X):
        return act(self.acts[-1], self.forward(weights, X)[1][-1], self.slope)

    def transform(self, weights, X):
        return act(self.acts[self.code_layer], self.forward(weights, X)[1][self.code_layer], self.slope)

    def sample_losses(self, z, T):
        """l_i of each sample (its mean over the outputs, or its cross-entropy) and dl_i/dz."""
        T = np.asarray(T, F64)
        d = z.shape[-1]
        if self.loss_name == "bce":  # -(t log p + (1 - t) log(1 - p)), p = sigmoid(z)
            return (np.logaddexp(0.0, z) - T * z).mean(axis=-1), (_sigmoid(z) - T) / d
        if self.loss_name == "cross_entropy":  # -sum_k t_k log softmax(z)_k
            logp = z - z.max(axis=-1, keepdims=True)
            logp = logp - np.log(np.exp(logp).sum(axis=-1, keepdims=True))
            return -(T * logp).sum(axis=-1), _softmax(z) * T.sum(axis=-1, keepdims=True) - T
        out = self.acts[-1]
        r = act(out, z, self.slope) - T
        if self.loss_name == "mse":
            e, de = r * r, 2.0 * r
        elif self.loss_name == "mae":
            e, de = np.abs(r), np.sign(r)
        else:  # huber, as torch.nn.HuberLoss(delta)
            small = np.abs(r) < self.delta
            e = np.where(small, 0.5 * r * r, self.delta * (np.abs(r) - 0.5 * self.delta))
            de = np.clip(r, -self.delta, self.delta)
        return e.mean(axis=-1), de * act_grad(out, z, self.slope) / d

    def loss(self, weights, X, sample_weight=None):
        """sum_i w_i l_i / n (w = 1 without sample weights); one per network of a stack."""
        l, _ = self.sample_losses(self.forward(weights, X)[1][-1], X)
        n = l.shape[-1]
        w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, F64)
        value = (w * l).sum(axis=-1) / n
        return float(value) if np.ndim(value) == 0 else value

    def loss_and_grads(self, weights, X, sample_weight=None):
        inputs, zs = self.forward(weights, X)
        l, dl = self.sample_losses(zs[-1], X)
        n = len(l)
        w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, F64)
        dz = dl * (w / n)[:, None]
        grads = [None] * len(weights)
        for i in reversed(range(len(weights))):
            grads[i] = (inputs[i].T @ dz, dz.sum(axis=0))
            if i > 0:
                dz = (dz @ np.asarray(weights[i][0], F64).T) * act_grad(self.acts[i - 1], zs[i - 1], self.slope)
        return float((w * l).sum() / n), grads


def flatten(weights):
    """get_params()'s layout: per layer W (row-major (n_in, n_out)), then b."""
    return np.concatenate([np.concatenate([np.ravel(W), np.ravel(b)]) for W, b in weights]).astype(F64)


def unflatten(flat, shapes):
    """The inverse of flatten; a (B, n_params) stack gives W (B, n_in, n_out) and b (B, 1, n_out)."""
    out, off = [], 0
    lead = flat.shape[:-1]
    for n_in, n_out in shapes:
        W = flat[..., off:off + n_in * n_out].reshape(*lead, n_in, n_out)
        off += n_in * n_out
        b = flat[..., off:off + n_out]
        out.append((W, b[..., None, :] if lead else b))
        off += n_out
    return out


def shapes_of(weights):
    return [np.shape(W) for W, _ in weights]


def finite_difference_gradient(f, flat, eps=1e-6):
    """Central differences of f at flat, in float64; f takes a (B, n_params) stack of points and
    returns their B values."""
    step = eps * np.eye(flat.size)
    values = f(np.concatenate([flat + step, flat - step]))
    return (values[:flat.size] - values[flat.size:]) / (2 * eps)


def np_optimizer(name, params):
    """The torch update rule of optimizer `name` with the estimator's hyperparameters, in float64:
    returns step(p, g) -> new p (flat arrays)."""
    hp = {**DEFAULTS, **params}
    lr = hp["learning_rate"]
    state = {"t": 0}

    def step(p, g):
        state["t"] += 1
        t = state["t"]
        if name in ("adam", "adamw"):
            b1, b2, eps = hp["beta_1"], hp["beta_2"], hp["epsilon"]
            if name == "adamw":  # decoupled: the decay first, on every parameter, biases included
                p = p * (1.0 - lr * hp["weight_decay"])
            m = state["m"] = b1 * state.get("m", 0.0) + (1 - b1) * g
            v = state["v"] = b2 * state.get("v", 0.0) + (1 - b2) * g * g
            return p - lr / (1 - b1 ** t) * m / (np.sqrt(v) / math.sqrt(1 - b2 ** t) + eps)
        if name == "sgd":
            mu = hp["momentum"]
            if mu == 0:
                return p - lr * g
            u = state["u"] = mu * state["u"] + g if "u" in state else g.copy()  # torch: u starts as g
            return p - lr * (g + mu * u if hp["nesterov"] else u)
        if name == "rmsprop":  # torch.optim.RMSprop(alpha=rho), not centered, no momentum
            rho = hp["rho"]
            s = state["s"] = rho * state.get("s", 0.0) + (1 - rho) * g * g
            return p - lr * g / (np.sqrt(s) + hp["epsilon"])
        raise KeyError(f"no NumPy reference for optimizer {name!r}")

    return step


# ---- problems ---------------------------------------------------------------------------------

def seed_of(*names):
    return zlib.crc32("/".join(map(str, names)).encode())


def data_for(loss, n, d, rng):
    """Inputs (= targets) a loss accepts: [0, 1] for bce, probability rows for cross_entropy,
    else values spread enough that huber's both branches and every activation's curvature count."""
    if loss == "bce":
        X = rng.uniform(0.05, 0.95, size=(n, d))
    elif loss == "cross_entropy":
        X = _softmax(rng.normal(0.0, 1.5, size=(n, d)))
    else:
        X = rng.normal(0.5, 1.5, size=(n, d))
    return np.ascontiguousarray(X, dtype=F32)


def random_weights(sizes, rng, gain=1.5):
    """Glorot-uniform-like draws times gain (pre-activations reach every activation's nonlinear
    range), and nonzero biases (so their gradients are tested)."""
    out = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        limit = gain * math.sqrt(6.0 / (n_in + n_out))
        out.append((rng.uniform(-limit, limit, size=(n_in, n_out)).astype(F32),
                    rng.uniform(-0.3, 0.3, size=n_out).astype(F32)))
    return out


def network_sizes(d, hidden):
    return [d, *hidden, *reversed(hidden[:-1]), d]


def estimator(weights, **params):
    """An estimator holding `weights` (set_weights, so no fit and no initializer involved)."""
    kw = dict(n_threads=1, random_state=0)
    kw.update(params)
    return Autoencoder(**kw).set_weights(weights)


# ---- the vocabulary lists ---------------------------------------------------------------------

@pytest.mark.parametrize("kind", sorted(REFERENCED))
def test_package_vocabulary_is_the_one_referenced_here(kind):
    """A name the engine offers without a reference here (or one referenced but not offered)
    fails here."""
    assert hasattr(fastae._core, kind), f"fastae._core.{kind} (a tuple of names) is missing"
    names = getattr(fastae._core, kind)
    assert isinstance(names, tuple) and all(isinstance(n, str) for n in names)
    assert len(set(names)) == len(names)
    assert set(names) == set(REFERENCED[kind])


def test_documented_defaults():
    params = Autoencoder().get_params()
    for name, value in DEFAULTS.items():
        assert name in params, name
        assert params[name] == value, name
    assert params["optimizer"] == "adam"


# ---- 1a: loss and gradient of every activation and (output activation, loss) ------------------

HIDDEN = (5, 3)
N_FEATURES = 6


def _gradient_case(hidden, out, loss, **extra):
    rng = np.random.default_rng(seed_of(hidden, out, loss, *extra.values()))
    X = data_for(loss, 16, N_FEATURES, rng)
    weights = random_weights(network_sizes(N_FEATURES, HIDDEN), rng)
    params = dict(hidden_layer_sizes=HIDDEN, activation=hidden, output_activation=out, loss=loss, **extra)
    return X, weights, params


def _check_reference_backward(ref, weights, X, sample_weight=None):
    """The NumPy backward pass against finite differences of the NumPy loss; returns the latter."""
    shapes = shapes_of(weights)
    fd = finite_difference_gradient(lambda f: ref.loss(unflatten(f, shapes), X, sample_weight), flatten(weights))
    _, grads = ref.loss_and_grads(weights, X, sample_weight)
    np.testing.assert_allclose(flatten(grads), fd, rtol=1e-6, atol=1e-9)
    assert np.abs(fd).max() > 1e-3
    return fd


def _check_engine(params, weights, X):
    ref = Reference.of(params)
    ae = estimator(weights, **params)
    value, grad = ae._model.loss_and_gradient(X, None)
    assert value == pytest.approx(ref.loss(weights, X), rel=1e-5)
    fd = _check_reference_backward(ref, weights, X)
    np.testing.assert_allclose(grad, fd, rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(ae.predict(X), ref.predict(weights, X), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ae.transform(X), ref.transform(weights, X), rtol=1e-5, atol=1e-6)
    # per sample: l_i (mean over the outputs, or the sample's cross-entropy); score is minus the mean
    want_samples, _ = ref.sample_losses(ref.forward(weights, X)[1][-1], X)
    np.testing.assert_allclose(ae.reconstruction_error(X), want_samples, rtol=1e-5, atol=1e-6)
    assert ae.score(X) == pytest.approx(-ref.loss(weights, X), rel=1e-5)
    return ae, ref


@pytest.mark.parametrize("out,loss", output_loss_pairs())
@pytest.mark.parametrize("hidden", hidden_activations())
def test_numpy_reference_backward_matches_finite_differences(hidden, out, loss):
    """The reference itself (no fastae involved): its backward pass is its loss's gradient."""
    X, weights, params = _gradient_case(hidden, out, loss)
    _check_reference_backward(Reference.of(params), weights, X)


@pytest.mark.parametrize("out,loss", [(REQUIRED_OUTPUT.get(loss, "sigmoid"), loss) for loss in LOSS_REF])
def test_numpy_reference_weighted_backward_matches_finite_differences(out, loss):
    """The reference's gradient of sum_i w_i l_i / n (no fastae involved)."""
    X, weights, params = _gradient_case("tanh", out, loss)
    sw = np.random.default_rng(5).uniform(0.0, 3.0, size=len(X))
    _check_reference_backward(Reference.of(params), weights, X, sw)


@pytest.mark.parametrize("out,loss", output_loss_pairs())
@pytest.mark.parametrize("hidden", hidden_activations())
def test_loss_and_gradient_match_numpy(hidden, out, loss):
    X, weights, params = _gradient_case(hidden, out, loss)
    _check_engine(params, weights, X)


@pytest.mark.parametrize("params,default", [
    (dict(activation="leaky_relu", output_activation="linear", loss="mse", leaky_relu_slope=0.2),
     dict(leaky_relu_slope=0.01)),
    (dict(activation="tanh", output_activation="leaky_relu", loss="mse", leaky_relu_slope=0.3),
     dict(leaky_relu_slope=0.01)),
    (dict(activation="tanh", output_activation="linear", loss="huber", huber_delta=0.3), dict(huber_delta=1.0)),
    (dict(activation="elu", output_activation="softplus", loss="huber", huber_delta=2.0), dict(huber_delta=1.0)),
], ids=["leaky_relu_slope-hidden", "leaky_relu_slope-output", "huber_delta-small", "huber_delta-large"])
def test_vocabulary_parameters_are_used(params, default):
    """leaky_relu_slope and huber_delta other than their defaults (and the test can tell them
    apart from the defaults)."""
    rng = np.random.default_rng(seed_of(*params.values()))
    X = data_for("mse", 16, N_FEATURES, rng)
    weights = random_weights(network_sizes(N_FEATURES, HIDDEN), rng)
    params = dict(hidden_layer_sizes=HIDDEN, **params)
    ref = Reference.of(params)
    other = Reference.of({**params, **default})
    assert abs(ref.loss(weights, X) - other.loss(weights, X)) > 1e-3 * abs(ref.loss(weights, X))
    if params["loss"] == "huber":  # both branches of huber are exercised
        r = np.abs(ref.predict(weights, X) - X)
        assert (r < params["huber_delta"]).mean() > 0.1 and (r > params["huber_delta"]).mean() > 0.1
    _check_engine(params, weights, X)


def test_per_layer_activations_mirror_in_the_decoder():
    """activation=[a0, a1, a2] with hidden (5, 4, 3): layers a0, a1, a2, a1, a0, output -- decoder
    hidden layer k uses the activation of the encoder layer of the same output width."""
    rng = np.random.default_rng(11)
    hidden = (5, 4, 3)
    X = data_for("mse", 16, 7, rng)
    weights = random_weights(network_sizes(7, hidden), rng)
    params = dict(hidden_layer_sizes=hidden, activation=["tanh", "elu", "sigmoid"], output_activation="linear",
                  loss="mse")
    ref = Reference.of(params)
    assert ref.acts == ["tanh", "elu", "sigmoid", "elu", "tanh", "linear"]
    # the other plausible mirroring (by input width: sigmoid, elu) would be told apart
    wrong = Reference.of(params)
    wrong.acts = ["tanh", "elu", "sigmoid", "sigmoid", "elu", "linear"]
    assert np.abs(wrong.predict(weights, X) - ref.predict(weights, X)).max() > 1e-2
    _check_engine(params, weights, X)


# ---- 1b: optimizers, several full-batch steps of a real fit -----------------------------------

OPTIMIZER_CASES = {
    "adam": [dict(learning_rate=1e-2), dict(learning_rate=2e-2, beta_1=0.8, beta_2=0.99, epsilon=1e-3)],
    "adamw": [dict(learning_rate=1e-2), dict(learning_rate=1e-2, weight_decay=0.5, beta_1=0.8, epsilon=1e-4)],
    "sgd": [dict(learning_rate=0.5, momentum=0.0, nesterov=False), dict(learning_rate=0.5, nesterov=False),
            dict(learning_rate=0.5), dict(learning_rate=0.3, momentum=0.5, nesterov=True)],
    "rmsprop": [dict(learning_rate=1e-2), dict(learning_rate=1e-2, rho=0.5, epsilon=1e-3)],
}


def _optimizer_cases():
    return [pytest.param(name, kw, id=f"{name}-{i}")
            for name in vocabulary("OPTIMIZERS") for i, kw in enumerate(OPTIMIZER_CASES.get(name, [None]))]


@pytest.mark.parametrize("name,hyper", _optimizer_cases())
def test_optimizer_steps_of_a_real_fit_match_numpy(name, hyper):
    assert hyper is not None, f"no reference case for optimizer {name!r}"
    steps, n, d, hidden = 5, 24, 8, (5, 3)
    rng = np.random.default_rng(seed_of("opt", name, *hyper.items()))
    X = rng.uniform(0.0, 1.0, size=(n, d)).astype(F32)
    weights = random_weights(network_sizes(d, hidden), rng, gain=1.0)
    net = dict(hidden_layer_sizes=hidden, activation="tanh", output_activation="sigmoid", loss="mse")
    ae = estimator(weights, **net, warm_start=True, optimizer=name, batch_size=n, shuffle=False,
                   epochs=steps, **hyper)
    ae.fit(X)

    ref, shapes = Reference.of(net), shapes_of(weights)
    step = np_optimizer(name, hyper)
    p, losses = flatten(weights), []
    for _ in range(steps):
        value, grads = ref.loss_and_grads(unflatten(p, shapes), X)
        losses.append(value)
        p = step(p, flatten(grads))
    got = ae._model.get_params().astype(F64)
    assert np.abs(p - flatten(weights)).max() > 5e-3  # the weights did move
    np.testing.assert_allclose(got, p, rtol=1e-4, atol=2e-6)
    np.testing.assert_allclose(ae.history_["loss"], losses, rtol=1e-5)


# ---- 1c: sample_weight --------------------------------------------------------------------------

SAMPLE_WEIGHT_NETS = [("tanh", "sigmoid", "bce"), ("relu", "linear", "mse"), ("elu", "softmax", "cross_entropy"),
                      ("gelu", "tanh", "huber"), ("softplus", "linear", "mae")]


def _sgd(**kw):
    return dict(optimizer="sgd", momentum=0.0, nesterov=False, shuffle=False, warm_start=True, **kw)


def _weighted_case(hidden, out, loss, n=20, d=6, seed=0):
    rng = np.random.default_rng(seed_of("sw", hidden, out, loss, seed))
    X = data_for(loss, n, d, rng)
    weights = random_weights(network_sizes(d, (4,)), rng)
    net = dict(hidden_layer_sizes=(4,), activation=hidden, output_activation=out, loss=loss)
    return rng, X, weights, net


@pytest.mark.parametrize("hidden,out,loss", SAMPLE_WEIGHT_NETS)
def test_sample_weighted_sgd_steps_match_numpy(hidden, out, loss):
    """Two full-batch plain SGD steps on sum_i w_i l_i / n; the epoch losses are that weighted loss."""
    rng, X, weights, net = _weighted_case(hidden, out, loss)
    sw = rng.uniform(0.0, 3.0, size=len(X))
    sw[[2, 7]] = 0.0
    lr = 0.5
    ae = estimator(weights, **net, **_sgd(learning_rate=lr, batch_size=len(X), epochs=2))
    ae.fit(X, sample_weight=sw)
    ref, shapes = Reference.of(net), shapes_of(weights)
    p, losses = flatten(weights), []
    for _ in range(2):
        value, grads = ref.loss_and_grads(unflatten(p, shapes), X, sw)
        losses.append(value)
        p = p - lr * flatten(grads)
    np.testing.assert_allclose(ae._model.get_params(), p, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(ae.history_["loss"], losses, rtol=1e-5)
    # and the weighting matters: unweighted SGD lands elsewhere
    _, grads = ref.loss_and_grads(weights, X)
    assert np.abs((flatten(weights) - lr * flatten(grads)) - p).max() > 1e-3


@pytest.mark.parametrize("hidden,out,loss", SAMPLE_WEIGHT_NETS)
def test_unit_sample_weights_are_bit_identical_to_none(hidden, out, loss):
    """Minibatches (the last partial), shuffled, Adam: weights all 1 change nothing, bit for bit."""
    _, X, weights, net = _weighted_case(hidden, out, loss, n=23)
    runs = []
    for sw in (None, np.ones(len(X)), np.ones(len(X), dtype=F32)):
        ae = estimator(weights, **net, warm_start=True, batch_size=5, epochs=3, shuffle=True, random_state=4,
                       learning_rate=1e-2)
        ae.fit(X, sample_weight=sw, validation_data=X)
        runs.append((ae._model.get_params(), ae.history_["loss"], ae.history_["val_loss"]))
    for params, loss_hist, val_hist in runs[1:]:
        np.testing.assert_array_equal(params, runs[0][0])
        assert loss_hist == runs[0][1] and val_hist == runs[0][2]


@pytest.mark.parametrize("hidden,out,loss", SAMPLE_WEIGHT_NETS)
def test_zero_weight_equals_dropping_the_sample_up_to_the_normaliser(hidden, out, loss):
    """One full-batch plain SGD step: with w_i = 0 on k of n samples the gradient is (n - k) / n
    times the mean gradient of the others, so it equals dropping them with lr * (n - k) / n."""
    _, X, weights, net = _weighted_case(hidden, out, loss)
    n, drop, lr = len(X), [1, 4, 9], 0.5
    sw = np.ones(n)
    sw[drop] = 0.0
    keep = np.delete(X, drop, axis=0)
    a = estimator(weights, **net, **_sgd(learning_rate=lr, batch_size=n, epochs=1)).fit(X, sample_weight=sw)
    b = estimator(weights, **net, **_sgd(learning_rate=lr * (n - len(drop)) / n, batch_size=n, epochs=1)).fit(keep)
    np.testing.assert_allclose(a._model.get_params(), b._model.get_params(), rtol=1e-5, atol=1e-7)
    assert a.history_["loss"][0] == pytest.approx(b.history_["loss"][0] * (n - len(drop)) / n, rel=1e-5)


@pytest.mark.parametrize("hidden,out,loss", SAMPLE_WEIGHT_NETS)
def test_weight_two_equals_duplicating_the_sample_up_to_the_normaliser(hidden, out, loss):
    """One full-batch plain SGD step: w_j = 2 gives (sum_{i != j} l_i + 2 l_j) / n, duplicating
    sample j gives the same sum over n + 1: equal with lr * (n + 1) / n."""
    _, X, weights, net = _weighted_case(hidden, out, loss)
    n, j, lr = len(X), 5, 0.5
    sw = np.ones(n)
    sw[j] = 2.0
    dup = np.concatenate([X, X[j:j + 1]])
    a = estimator(weights, **net, **_sgd(learning_rate=lr, batch_size=n + 1, epochs=1)).fit(X, sample_weight=sw)
    b = estimator(weights, **net, **_sgd(learning_rate=lr * (n + 1) / n, batch_size=n + 1, epochs=1)).fit(dup)
    np.testing.assert_allclose(a._model.get_params(), b._model.get_params(), rtol=1e-5, atol=1e-7)
    assert a.history_["loss"][0] == pytest.approx(b.history_["loss"][0] * (n + 1) / n, rel=1e-5)


def test_doubling_every_weight_equals_doubling_the_learning_rate():
    """Plain SGD, two epochs of minibatches: the gradient is linear in the weights."""
    _, X, weights, net = _weighted_case("tanh", "linear", "mse")
    sw = np.random.default_rng(3).uniform(0.5, 2.0, size=len(X))
    a = estimator(weights, **net, **_sgd(learning_rate=0.2, batch_size=6, epochs=2)).fit(X, sample_weight=2 * sw)
    b = estimator(weights, **net, **_sgd(learning_rate=0.4, batch_size=6, epochs=2)).fit(X, sample_weight=sw)
    np.testing.assert_allclose(a._model.get_params(), b._model.get_params(), rtol=1e-6, atol=1e-8)


# ---- kernel_initializer ------------------------------------------------------------------------

def _initial_weights(X, hidden, **params):
    """The weights right after initialisation: one plain SGD step of learning rate 1e-12 moves
    none by more than ~1e-14."""
    return Autoencoder(hidden_layer_sizes=hidden, epochs=1, batch_size=len(X), shuffle=False, optimizer="sgd",
                       momentum=0.0, nesterov=False, learning_rate=1e-12, n_threads=1, **params).fit(X).get_weights()


def _truncated_normal_moments(c=2.0):
    """E[Z^2] and E[Z^4] of a standard normal truncated to [-c, c]."""
    phi = math.exp(-0.5 * c * c) / math.sqrt(2 * math.pi)
    mass = math.erf(c / math.sqrt(2))
    m2 = 1 - 2 * c * phi / mass
    m4 = (3 * (mass - 2 * c * phi) - 2 * c ** 3 * phi) / mass
    return m2, m4


def test_truncated_normal_constant():
    """Keras' 0.87962566103423978 is the std of a standard normal truncated at 2."""
    assert math.sqrt(_truncated_normal_moments()[0]) == pytest.approx(0.87962566103423978, rel=1e-12)


@pytest.fixture(scope="module")
def wide_X():
    return np.random.default_rng(0).uniform(size=(2, 1024)).astype(F32)


@pytest.mark.parametrize("name", vocabulary("INITIALIZERS"))
def test_initializer_statistics(name, wide_X):
    """1024-512-1024: bound, std, mean and kurtosis of each layer's draws, by Keras' definitions
    (the two layers have different fan_in, so fan_in and fan_avg are told apart)."""
    normal, scale, fan_kind = INITIALIZER_REF[name]
    weights = _initial_weights(wide_X, (512,), kernel_initializer=name, random_state=1)
    m2, m4 = _truncated_normal_moments()
    for W, b in weights:
        fan_in, fan_out = W.shape
        fan = (fan_in + fan_out) / 2 if fan_kind == "avg" else fan_in
        std = math.sqrt(scale / fan)
        bound = 2 * std / 0.87962566103423978 if normal else math.sqrt(3) * std
        w = W.astype(F64).ravel()
        assert np.abs(b).max() <= 1e-9  # biases start at zero
        assert np.abs(w).max() <= bound * (1 + 1e-6)
        assert np.abs(w).max() >= bound * (0.99 if normal else 0.999)
        assert w.std() == pytest.approx(std, rel=0.01)
        assert abs(w.mean()) < 5 * std / math.sqrt(w.size)
        kurtosis = np.mean(w ** 4) / np.mean(w ** 2) ** 2
        assert kurtosis == pytest.approx(m4 / m2 ** 2 if normal else 1.8, abs=0.03)


@pytest.mark.parametrize("name", vocabulary("INITIALIZERS"))
def test_initializer_follows_random_state(name):
    X = np.random.default_rng(1).uniform(size=(2, 40)).astype(F32)

    def first(seed):
        return _initial_weights(X, (16, 8), kernel_initializer=name, random_state=seed)[1][0]

    a, b, c = first(3), first(3), first(4)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-2


# The first draws of fastae's Glorot-uniform (random_state=0, 6-3-6) before kernel_initializer existed.
GLOROT_UNIFORM_SEED_0 = [
    [0.16536179184913635, 0.4046134054660797, -0.6482656598091125, -0.13620945811271667, 0.38048213720321655,
     0.8160857558250427, -0.12702804803848267, 0.0582241527736187, 0.5805570483207703, 0.6839922666549683,
     -0.6298496127128601, -0.7067073583602905, -0.642297625541687, 0.2528415024280548, -0.006437028292566538,
     -0.33253416419029236, 0.33384257555007935, -0.5083730816841125],
    [0.08129251003265381, -0.722112238407135, -0.3064570724964142, -0.010333816520869732, -0.2912968099117279,
     0.20883363485336304, 0.794856071472168, -0.3223222494125366, 0.2369268387556076, 0.6752642393112183,
     0.7967101335525513, 0.6369884014129639, -0.5871015787124634, -0.3394942581653595, 0.4281061291694641,
     -0.5546486973762512, 0.7480316758155823, 0.7493008375167847],
]


def _fingerprint_X():
    return np.linspace(0.1, 0.9, 24, dtype=F32).reshape(4, 6)


def test_default_initializer_draws_are_unchanged():
    weights = _initial_weights(_fingerprint_X(), (3,), random_state=0)
    for (W, b), want in zip(weights, GLOROT_UNIFORM_SEED_0):
        np.testing.assert_allclose(W.ravel(), want, rtol=0, atol=1e-7)
        assert np.abs(b).max() <= 1e-9


def test_explicit_glorot_uniform_is_the_default():
    a = _initial_weights(_fingerprint_X(), (3,), random_state=0)
    b = _initial_weights(_fingerprint_X(), (3,), random_state=0, kernel_initializer="glorot_uniform")
    for (Wa, ba), (Wb, bb) in zip(a, b):
        np.testing.assert_array_equal(Wa, Wb)
        np.testing.assert_array_equal(ba, bb)


# ---- bad names and values ---------------------------------------------------------------------

BAD_PARAMS = [
    dict(activation="swish"),
    dict(loss="hinge"),
    dict(optimizer="adagrad"),
    dict(kernel_initializer="orthogonal"),
    dict(activation="leaky_relu", leaky_relu_slope=float("nan")),
    dict(loss="huber", output_activation="linear", huber_delta=0.0),
    dict(optimizer="rmsprop", rho=1.0),
    dict(optimizer="adamw", weight_decay=-0.1),
    dict(activation="softmax"),
    dict(activation=["tanh", "softmax"]),
    dict(activation=["tanh"]),  # one name per encoder layer: two here
    dict(loss="bce", output_activation="linear"),
    dict(loss="cross_entropy", output_activation="sigmoid"),
    dict(loss="mse", output_activation="softmax"),
]


@pytest.mark.parametrize("bad", BAD_PARAMS, ids=lambda d: ",".join(f"{k}={v!r}" for k, v in d.items()))
def test_bad_hyperparameters_raise_before_training(bad):
    X = data_for("bce", 10, 6, np.random.default_rng(0))
    ae = Autoencoder(hidden_layer_sizes=(4, 2), epochs=1, n_threads=1, random_state=0)
    ae.set_params(**bad)
    with pytest.raises(ValueError):
        ae.fit(X)
    with pytest.raises(NotFittedError):
        ae.get_weights()


@pytest.mark.parametrize("sample_weight", [np.ones(9), np.ones(11), np.ones((10, 1)), -np.ones(10),
                                           np.r_[np.ones(9), np.nan], np.r_[np.ones(9), np.inf]],
                         ids=["short", "long", "2-D", "negative", "nan", "inf"])
def test_bad_sample_weight_raises_before_training(sample_weight):
    rng = np.random.default_rng(1)
    X = data_for("bce", 10, 6, rng)
    weights = random_weights(network_sizes(6, (4,)), rng)
    ae = estimator(weights, hidden_layer_sizes=(4,), warm_start=True, epochs=2)
    ae.fit(X)
    before, history = ae._model.get_params(), dict(ae.history_)
    with pytest.raises(ValueError):
        ae.fit(X, sample_weight=sample_weight)
    np.testing.assert_array_equal(ae._model.get_params(), before)
    assert ae.history_ == history
