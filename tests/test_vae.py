"""fastae.VariationalAutoencoder: the objective against an independent NumPy implementation (float64,
with float64 finite differences of it), the KL term against its closed form, one training step
against the same VAE in PyTorch (same weights, same eps draws; skipped without torch), seeds,
sampling, the methods, model files, pickling and hostile VARC sections.

The NumPy reference (`objective` below) is written from the formulas of csrc/src/vae.h and the
estimator's docstring, not from the engine: per sample, the reconstruction loss summed over the
features plus beta_e times KL = 1/2 sum(mu^2 + exp(v) - v - 1), v = clip(logvar, -30, 20),
z = mu + exp(v / 2) * eps, averaged over the batch.
"""

import copy
import pickle
import struct
import zlib

import numpy as np
import pytest
from conftest import smooth_data

import fastae
from fastae import ModelFileError, VariationalAutoencoder, _core
from fastae._training import _SHUFFLE_SEED_OFFSET

# ---- the NumPy reference -------------------------------------------------------------------

ACT = {"tanh": np.tanh, "relu": lambda z: np.maximum(z, 0), "linear": lambda z: z}


def objective(weights, X, eps, beta, acts, loss="bce"):
    """The mean objective of a batch in float64: weights [(W, b)] in the estimator's layout (code
    layer: 2k outputs), eps (n, k), acts: one name per layer before the code, mirrored after it."""
    n_layers = len(weights)
    code = (n_layers - 2) // 2
    h = X.astype(np.float64)
    for i, (W, b) in enumerate(weights):
        z = h @ W + b
        if i == code:
            k = z.shape[1] // 2
            mu, logvar = z[:, :k], z[:, k:]
            v = np.clip(logvar, -30.0, 20.0)
            kl = 0.5 * np.sum(mu ** 2 + np.exp(v) - v - 1.0, axis=1)
            h = mu + np.exp(v / 2) * eps
        elif i == n_layers - 1:
            logits = z
        else:
            name = acts[i] if i < code else acts[n_layers - 2 - i]
            h = ACT[name](z)
    if loss == "bce":
        rec = np.sum(np.maximum(logits, 0) - logits * X + np.log1p(np.exp(-np.abs(logits))), axis=1)
    else:  # mse on a linear output
        rec = np.sum((logits - X) ** 2, axis=1)
    return float(np.mean(rec + beta * kl)), rec, kl


def random_weights(shapes, seed, scale=0.5):
    rng = np.random.default_rng(seed)
    return [(rng.uniform(-scale, scale, size=s).astype(np.float32),
             rng.uniform(-0.1, 0.1, size=s[1]).astype(np.float32)) for s in shapes]


def small_vae(**params):
    defaults = dict(hidden_layer_sizes=(6, 3), activation="tanh", random_state=0, n_threads=1, epochs=2,
                    batch_size=16)
    defaults.update(params)
    return VariationalAutoencoder(**defaults)


SHAPES = [(8, 6), (6, 6), (3, 6), (6, 8)]  # 8 -> 6 -> (2 x 3) -> 6 -> 8


@pytest.fixture(scope="module")
def X8():
    return smooth_data(40, 8, seed=3)


@pytest.fixture(scope="module")
def fitted():
    X = fastae.load_digits()[0][:300]
    return VariationalAutoencoder(hidden_layer_sizes=(32, 4), epochs=3, random_state=0, n_threads=1,
                                  kl_warmup_epochs=2).fit(X), X


# ---- numerics ------------------------------------------------------------------------------

@pytest.mark.parametrize("loss,beta,warmup,epoch", [("bce", 1.0, 0, 1), ("bce", 0.3, 4, 2), ("mse", 2.0, 0, 5)])
def test_gradient_of_the_whole_objective_against_float64_finite_differences(X8, loss, beta, warmup, epoch):
    """The engine's float32 gradient of a training step's objective (fixed eps: the draws of rows
    0..n-1 in that epoch) against central differences of the float64 NumPy objective with the same
    eps, and the engine's loss against the NumPy one."""
    X = X8[:10]
    est = small_vae(loss=loss, beta=beta, kl_warmup_epochs=warmup,
                    output_activation="sigmoid" if loss == "bce" else "linear").set_weights(random_weights(SHAPES, 1))
    model = est._model
    seed = 1234
    eps = model.code_noise(len(X), seed, epoch, 0).astype(np.float64)
    beta_e = beta * min(1.0, epoch / warmup) if warmup else beta
    weights = [(W.astype(np.float64), b.astype(np.float64)) for W, b in est.get_weights()]
    loss_engine, grad = model.training_loss_and_gradient(X, seed, epoch)
    want, _, _ = objective(weights, X, eps, beta_e, ["tanh"], loss)
    assert loss_engine == pytest.approx(want, rel=2e-6)

    h = 1e-6
    fd = []
    for W, b in weights:
        for array in (W, b):
            flat = array.reshape(-1)
            for i in range(flat.size):
                keep = flat[i]
                flat[i] = keep + h
                up = objective(weights, X, eps, beta_e, ["tanh"], loss)[0]
                flat[i] = keep - h
                down = objective(weights, X, eps, beta_e, ["tanh"], loss)[0]
                flat[i] = keep
                fd.append((up - down) / (2 * h))
    fd = np.array(fd)
    np.testing.assert_allclose(grad, fd, rtol=0, atol=2e-4 * np.abs(fd).max())
    # the log-variance half of the code layer's gradient is not zero: the draws reach it
    W_code_offset = model.param_offset(1)
    logvar_columns = grad[W_code_offset:W_code_offset + 36].reshape(6, 6)[:, 3:]
    assert np.abs(logvar_columns).max() > 1e-4


def test_kl_term_against_its_closed_form(fitted):
    est, X = fitted
    mean, logvar = est.encode(X[:50], return_var=True)
    assert mean.shape == logvar.shape == (50, 4)
    np.testing.assert_array_equal(mean, est.transform(X[:50]))
    m, v = mean.astype(np.float64), logvar.astype(np.float64)
    kl_closed = 0.5 * np.sum(m ** 2 + np.exp(v) - v - 1.0, axis=1)
    rec, kl = est._model.elbo_terms(np.ascontiguousarray(X[:50], dtype=np.float32), 7)
    np.testing.assert_allclose(kl, kl_closed, rtol=1e-5, atol=1e-6)
    assert np.all(rec > 0)
    np.testing.assert_allclose(est.score_samples(X[:50], random_state=7), -(rec.astype(np.float64) + kl), rtol=1e-12)


def test_history_reports_the_loss_and_its_two_parts(fitted):
    est, _ = fitted
    h = est.history_
    assert len(h["loss"]) == len(h["reconstruction"]) == len(h["kl"]) == 3
    # kl_warmup_epochs=2: the KL is weighed 1/2 in epoch 1, then 1
    for e, weight in enumerate([0.5, 1.0, 1.0]):
        assert h["loss"][e] == pytest.approx(h["reconstruction"][e] + weight * h["kl"][e], rel=1e-9)
        assert h["kl"][e] > 0


# ---- PyTorch -------------------------------------------------------------------------------

def test_training_steps_equal_pytorch(X8):
    """Two epochs of full-batch Adam steps with the KL warm-up (beta_e = 0.5, then 1), the same
    initial weights and the same eps (fastae's draws, read with code_noise): every weight and the
    epoch losses agree with torch."""
    torch = pytest.importorskip("torch")
    X = X8[:24]
    start = random_weights(SHAPES, 2)
    est = small_vae(epochs=2, batch_size=24, shuffle=False, warm_start=True, kl_warmup_epochs=2, random_state=5,
                    learning_rate=0.01).set_weights(start)
    seed = (5 + _SHUFFLE_SEED_OFFSET) & 0xFFFFFFFFFFFFFFFF
    eps = [torch.tensor(est._model.code_noise(len(X), seed, epoch, 0)) for epoch in (1, 2)]
    est.fit(X)

    torch.manual_seed(0)
    layers = [torch.nn.Linear(n_in, n_out) for n_in, n_out in SHAPES]
    with torch.no_grad():
        for layer, (W, b) in zip(layers, start):
            layer.weight.copy_(torch.tensor(W.T))
            layer.bias.copy_(torch.tensor(b))
    params = [p for layer in layers for p in layer.parameters()]
    opt = torch.optim.Adam(params, lr=0.01)
    x = torch.tensor(X)
    losses = []
    for epoch, beta in ((0, 0.5), (1, 1.0)):
        opt.zero_grad()
        h = torch.tanh(layers[0](x))
        code = layers[1](h)
        mu, logvar = code[:, :3], code[:, 3:]
        v = torch.clamp(logvar, -30.0, 20.0)
        z = mu + torch.exp(v / 2) * eps[epoch]
        logits = layers[3](torch.tanh(layers[2](z)))
        rec = torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=1)
        kl = 0.5 * (mu ** 2 + torch.exp(v) - v - 1).sum(dim=1)
        loss = (rec + beta * kl).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    np.testing.assert_allclose(est.history_["loss"], losses, rtol=1e-6)
    for (W, b), layer in zip(est.get_weights(), layers):
        np.testing.assert_allclose(W, layer.weight.detach().numpy().T, rtol=1e-4, atol=2e-5)
        np.testing.assert_allclose(b, layer.bias.detach().numpy(), rtol=1e-4, atol=2e-5)


# ---- seeds and sampling --------------------------------------------------------------------

def test_a_seed_reproduces_a_run_bit_for_bit():
    X = smooth_data(200, 12, seed=4)
    runs = [VariationalAutoencoder(hidden_layer_sizes=(8, 2), epochs=3, batch_size=32, random_state=11,
                                   n_threads=2).fit(X) for _ in range(2)]
    for (W0, b0), (W1, b1) in zip(runs[0].get_weights(), runs[1].get_weights()):
        np.testing.assert_array_equal(W0, W1)
        np.testing.assert_array_equal(b0, b1)
    assert runs[0].history_["loss"] == runs[1].history_["loss"]
    other = VariationalAutoencoder(hidden_layer_sizes=(8, 2), epochs=3, batch_size=32, random_state=12,
                                   n_threads=2).fit(X)
    assert not np.array_equal(other.get_weights()[0][0], runs[0].get_weights()[0][0])


def test_sampling_is_reproducible_with_random_state(fitted):
    est, X = fitted
    a = est.sample(6, random_state=3)
    assert a.shape == (6, X.shape[1]) and a.dtype == np.float32
    np.testing.assert_array_equal(a, est.sample(6, random_state=3))
    assert not np.array_equal(a, est.sample(6, random_state=4))
    np.testing.assert_array_equal(est.sample(6, random_state=np.random.RandomState(1)),
                                  est.sample(6, random_state=np.random.RandomState(1)))
    assert np.all((a >= 0) & (a <= 1))  # a sigmoid output
    # decoding the prior's draws: the same as decoding those codes
    codes = est._model.code_noise(6, 3, 0, 0)
    np.testing.assert_array_equal(a, est.inverse_transform(codes))
    assert est.sample(0).shape == (0, X.shape[1])
    with pytest.raises(ValueError, match="n must be an int"):
        est.sample(-1)


def test_methods(fitted):
    est, X = fitted
    Z = est.transform(X[:5])
    np.testing.assert_allclose(est.predict(X[:5]), est.inverse_transform(Z), rtol=1e-6, atol=1e-7)
    path = est.interpolate(X[0], X[1], 5)
    assert path.shape == (5, X.shape[1])
    np.testing.assert_allclose(path[0], est.predict(X[:1])[0], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(path[-1], est.predict(X[1:2])[0], rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="steps"):
        est.interpolate(X[0], X[1], 1)
    with pytest.raises(ValueError, match="one sample"):
        est.interpolate(X[:2], X[1], 3)
    scores = est.score_samples(X[:20])
    assert scores.shape == (20,) and np.all(scores < 0)
    # one draw per sample keyed by its values: the same in another order or call
    np.testing.assert_array_equal(est.score_samples(X[:20][::-1]), scores[::-1])
    assert est.elbo(X[:20]) == pytest.approx(float(np.mean(scores)))
    assert est.score(X[:20]) == pytest.approx(est.elbo(X[:20]))
    assert not np.array_equal(est.score_samples(X[:20], random_state=1), est.score_samples(X[:20], random_state=2))
    assert est.get_feature_names_out().tolist() == ["code0", "code1", "code2", "code3"]


def test_parameters_are_checked():
    X = smooth_data(50, 6)
    for params, match in [({"beta": -1.0}, "beta"), ({"kl_warmup_epochs": -1}, "kl_warmup_epochs"),
                          ({"loss": "cross_entropy"}, "loss"), ({"activation": ["relu", "tanh"]}, "activation")]:
        with pytest.raises(ValueError, match=match):
            VariationalAutoencoder(hidden_layer_sizes=(4, 2), epochs=1, **params).fit(X)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):  # bce (the default) needs data in [0, 1]
        VariationalAutoencoder(hidden_layer_sizes=(4, 2), epochs=1).fit(X * 3)
    # mse and "auto" take any real data
    est = VariationalAutoencoder(hidden_layer_sizes=(4, 2), epochs=1, loss="auto", random_state=0).fit(X * 3 - 1)
    assert est.loss_function_ == "mse" and est.output_activation_ == "linear"


# ---- files and pickling --------------------------------------------------------------------

def _same(a, b, X):
    for (W0, b0), (W1, b1) in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(W0, W1)
        np.testing.assert_array_equal(b0, b1)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    np.testing.assert_array_equal(a.sample(3, random_state=0), b.sample(3, random_state=0))


def test_save_load_pickle_round_trips(fitted, tmp_path):
    est, X = fitted
    est.save(tmp_path / "vae.fae")
    back = fastae.load(tmp_path / "vae.fae")
    assert type(back) is VariationalAutoencoder
    assert back.get_params() == est.get_params()
    assert back.history_ == est.history_
    _same(est, back, X[:10])
    assert type(VariationalAutoencoder.load(tmp_path / "vae.fae")) is VariationalAutoencoder
    with pytest.raises(ModelFileError, match="holds a fastae.VariationalAutoencoder"):
        fastae.Autoencoder.load(tmp_path / "vae.fae")
    for clone in (pickle.loads(pickle.dumps(est)), copy.deepcopy(est)):
        _same(est, clone, X[:10])
    # training continues exactly from a loaded file
    a = fastae.load(tmp_path / "vae.fae").set_params(warm_start=True, epochs=1)
    b = copy.deepcopy(est).set_params(warm_start=True, epochs=1)
    _same(a.fit(X, resume_optimizer=True), b.fit(X, resume_optimizer=True), X[:10])


def test_a_file_saved_from_cpp_loads_as_a_vae(fitted, tmp_path):
    """A model file without the estimator's metadata (as a C++ host writes it) is read back as a
    VariationalAutoencoder whose hyperparameters come from the network."""
    est, X = fitted
    (tmp_path / "cpp.fae").write_bytes(_core.model_to_bytes(est._model, None, False, b""))
    back = fastae.load(tmp_path / "cpp.fae")
    assert type(back) is VariationalAutoencoder
    assert back.hidden_layer_sizes == (32, 4) and back.beta == 1.0 and back.kl_warmup_epochs == 2
    _same(est, back, X[:10])


def _reseal(body_sections, header):
    body = b"".join(body_sections)
    head = header[:16] + struct.pack("<Q", len(body))
    return head + body + struct.pack("<I", zlib.crc32(head + body))


def _sections(data):
    out, pos = [], 24
    while pos < len(data) - 4:
        tag = data[pos:pos + 4]
        flags, length = struct.unpack_from("<IQ", data, pos + 4)
        out.append((tag, flags, data[pos + 16:pos + 16 + length]))
        pos += 16 + length
    return out


def test_hostile_varc_sections_are_refused(fitted, tmp_path):
    est, _ = fitted
    data = _core.model_to_bytes(est._model, None, False, b"")
    assert data[:12] == b"\x89FASTAE\n" + struct.pack("<I", 2)
    sections = _sections(data)
    assert [s[0] for s in sections] == [b"NETW", b"VARC", b"HEAD", b"PARM", b"OPTC"]
    assert sections[1][1] == 1 and sections[1][2] == struct.pack("<I4xd", 2, 1.0)

    def rebuilt(**changes):
        out = []
        for tag, flags, payload in sections:
            flags, payload = changes.get(tag.decode(), (flags, payload))
            if payload is not None:
                out.append(tag + struct.pack("<IQ", flags, len(payload)) + payload)
        return _reseal(out, data)

    assert _core.model_from_bytes(rebuilt())[0].spec() == est._model.spec()  # the resealed file is valid
    cases = {
        "negative beta": (rebuilt(VARC=(1, struct.pack("<I4xd", 0, -1.0))), "variational.beta must be"),
        "NaN beta": (rebuilt(VARC=(1, struct.pack("<I4xd", 0, float("nan")))), "beta at byte"),
        "warm-up beyond int": (rebuilt(VARC=(1, struct.pack("<I4xd", 2**31, 1.0))), "kl_warmup_epochs at byte"),
        "reserved bytes": (rebuilt(VARC=(1, struct.pack("<I4sd", 0, b"\x01\0\0\0", 1.0))), "reserved"),
        "flags 0": (rebuilt(VARC=(0, sections[1][2])), "flags"),
        "short": (rebuilt(VARC=(1, struct.pack("<I", 0))), "VARC"),
        "long": (rebuilt(VARC=(1, sections[1][2] + b"\0")), "unexpected bytes"),
        "missing": (rebuilt(VARC=(1, None)), "parameter"),
    }
    for blob, match in cases.values():
        with pytest.raises(ModelFileError, match=match):
            _core.model_from_bytes(blob)
        (tmp_path / "bad.fae").write_bytes(blob)
        with pytest.raises(ModelFileError):
            fastae.load(tmp_path / "bad.fae")
    # VARC on a network whose code layer is not linear, or after HEAD
    netw = bytearray(sections[0][2])
    record = struct.unpack_from("<I", netw, 12)[0]  # the layer record's size
    struct.pack_into("<B", netw, 16 + record + 4, _core.FILE_CODES["activation"]["relu"])  # layer 1: the code
    with pytest.raises(ModelFileError, match="variational code layer is linear"):
        _core.model_from_bytes(rebuilt(NETW=(1, bytes(netw))))
    # VARC after HEAD: HEAD builds the network without it, whose decoder reads 2k values and so has
    # more weights than the file holds
    swapped = [sections[0], sections[2], sections[1], *sections[3:]]
    with pytest.raises(ModelFileError, match="section HEAD .* parameters, more than"):
        _core.model_from_bytes(_reseal([t + struct.pack("<IQ", f, len(p)) + p for t, f, p in swapped], data))


def test_pickle_carries_model_file_bytes(fitted):
    est, _ = fitted
    state = est.__getstate__()
    assert "_model" not in state and isinstance(state["_model_file"], bytes)
    assert b"VARC" in state["_model_file"]


# ---- every hyperparameter's bad values (tests/test_robustness.py's, and the VAE's own) ----------

def _vae_bad_params():
    from test_robustness import ALLOWED, BAD_PARAMS

    names = VariationalAutoencoder._get_param_names()
    bad = {name: BAD_PARAMS[name] for name in names if name in BAD_PARAMS}
    outputs = [a for a in _core.ACTIVATIONS if a != "softmax"]
    bad.update({
        "beta": ("[0.0, inf)", [-1.0, float("nan"), float("inf"), "1", None]),
        "kl_warmup_epochs": ("[0, 2147483647]", [-1, 1.5, "3", None, True, 2**31]),
        "loss": (ALLOWED(("bce", "mse", "mae", "huber", "auto")), ["cross_entropy", "hinge", None, "BCE"]),
        "output_activation": (ALLOWED((*outputs, "auto")), ["softmax", "swish", 1.0]),
    })
    return bad


def test_every_constructor_parameter_has_bad_values():
    assert set(_vae_bad_params()) == set(VariationalAutoencoder._get_param_names())


@pytest.fixture(scope="module")
def fitted_small():
    X = smooth_data(40, 6, seed=3)
    return VariationalAutoencoder(hidden_layer_sizes=(4, 2), epochs=2, batch_size=16, random_state=0).fit(X), X


@pytest.mark.parametrize("name,value,allowed", [(n, v, a) for n, (a, values) in _vae_bad_params().items()
                                                for v in values], ids=lambda x: repr(x)[:30])
def test_bad_hyperparameter_names_it_says_what_is_allowed_and_changes_nothing(fitted_small, name, value, allowed):
    from test_robustness import assert_unchanged, snapshot

    est, X = fitted_small
    est = copy.deepcopy(est)
    before = snapshot(est)
    est.set_params(**{name: value})
    with pytest.raises((ValueError, TypeError)) as info:
        est.fit(X)
    message = str(info.value)
    assert name in message and repr(value) in message and allowed in message
    assert_unchanged(est, before)


def test_validation_loss_is_the_objective_at_the_means(X8):
    """val_loss: the validation data's reconstruction decoded from the code means (eps = 0) plus
    beta times their KL, averaged; checked with the NumPy objective on the fitted weights."""
    X, X_val = X8[:30], X8[30:]
    est = small_vae(beta=0.7, epochs=2).fit(X, validation_data=X_val)
    weights = [(W.astype(np.float64), b.astype(np.float64)) for W, b in est.get_weights()]
    want, _, _ = objective(weights, X_val, np.zeros((len(X_val), 3)), 0.7, ["tanh"])
    assert est.history_["val_loss"][-1] == pytest.approx(want, rel=1e-5)
    # early stopping and the other training controls run as for the autoencoder
    stopped = small_vae(epochs=50, early_stopping=True, patience=1, min_delta=1e9).fit(X, validation_data=X_val)
    assert stopped.stop_reason_ == "early_stopping" and len(stopped.history_["loss"]) == 2


def test_uint8_input_with_input_scale_trains_as_the_scaled_floats():
    """8-bit data scaled inside the engine (input_scale) trains exactly as the same values given as
    float32; sample weights of 1 change nothing, other weights change the result."""
    X8bit = (smooth_data(64, 10, seed=5) * 255).astype(np.uint8)
    floats = X8bit.astype(np.float32) * np.float32(1 / 255)
    params = dict(hidden_layer_sizes=(6, 2), epochs=2, batch_size=16, random_state=3, n_threads=1)
    a = VariationalAutoencoder(input_scale=1 / 255, **params).fit(X8bit)
    b = VariationalAutoencoder(**params).fit(floats)
    c = VariationalAutoencoder(**params).fit(floats, sample_weight=np.ones(64))
    d = VariationalAutoencoder(**params).fit(floats, sample_weight=np.linspace(0.1, 2, 64))
    for (Wa, _), (Wb, _), (Wc, _), (Wd, _) in zip(a.get_weights(), b.get_weights(), c.get_weights(), d.get_weights()):
        np.testing.assert_array_equal(Wa, Wb)
        np.testing.assert_array_equal(Wb, Wc)
        assert not np.array_equal(Wb, Wd)


def test_sparse_input_gives_the_dense_results(fitted):
    sp = pytest.importorskip("scipy.sparse")
    est, X = fitted
    S = sp.csr_matrix(X[:40])
    for dense, sparse in [(est.encode(X[:40], return_var=True), est.encode(S, return_var=True)),
                          ((est.transform(X[:40]), est.predict(X[:40]), est.score_samples(X[:40])),
                           (est.transform(S), est.predict(S), est.score_samples(S)))]:
        for a, b in zip(dense, sparse):
            np.testing.assert_array_equal(a, b)


def test_a_latent_layer_alone():
    """hidden_layer_sizes=(k,): the input's layer is the code layer (2k), the output reads k."""
    X = smooth_data(60, 7, seed=2)
    est = VariationalAutoencoder(hidden_layer_sizes=(3,), epochs=2, random_state=0, n_threads=1).fit(X)
    assert [W.shape for W, _ in est.get_weights()] == [(7, 6), (3, 7)]
    assert est.transform(X).shape == (60, 3) and est.sample(2, random_state=0).shape == (2, 7)
