"""Robustness: every bad hyperparameter and array gets a clear error and leaves a fitted model
exactly as it was (weights, optimizer state, history); valid but unusual arrays give the results
of a float32 C-contiguous array; sizes beyond the engine or the memory raise ValueError or
MemoryError. Cases that allocate a lot run in a subprocess under an address-space limit, so that a
crash (or the out-of-memory killer) fails the test instead of taking pytest or the machine down.
tests/test_bad_inputs.py has the first cases; this file extends them."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import REPO, smooth_data
from test_bad_inputs import BAD_X
from test_numpy_reference import np_adam, np_forward, np_loss_and_grads

from fastae import Autoencoder, _core, _params

# ---- a fitted model, and proof that it did not change -----------------------------------------

def fitted_model():
    X = smooth_data(40, 6, seed=3)
    ae = Autoencoder(hidden_layer_sizes=(3,), epochs=2, batch_size=16, random_state=0).fit(X, validation_data=X[:8])
    return ae, X


def snapshot(ae):
    """Everything a fit learns, copied: weights, optimizer state, history and the *_ attributes."""
    state = ae._model.optimizer_state()
    assert state is not None and state["steps"] > 0  # a real state, so comparing it means something
    return {"weights": [(W.copy(), b.copy()) for W, b in ae.get_weights()],
            "optimizer": {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in state.items()},
            "history": json.loads(json.dumps(ae.history_)), "n_iter_": ae.n_iter_, "loss_": ae.loss_,
            "n_features_in_": ae.n_features_in_}


def assert_unchanged(ae, before):
    after = snapshot(ae)
    for (W0, b0), (W1, b1) in zip(before["weights"], after["weights"]):
        assert np.array_equal(W0, W1) and np.array_equal(b0, b1)
    assert len(before["weights"]) == len(after["weights"])
    assert before["optimizer"]["config"] == after["optimizer"]["config"]
    assert before["optimizer"]["steps"] == after["optimizer"]["steps"]
    assert np.array_equal(before["optimizer"]["m"], after["optimizer"]["m"])
    assert np.array_equal(before["optimizer"]["v"], after["optimizer"]["v"])
    for key in ("history", "n_iter_", "loss_", "n_features_in_"):
        assert before[key] == after[key], key


# ---- hyperparameters: every constructor option ------------------------------------------------

def ALLOWED(names):
    """The allowed-list text of a vocabulary check, from the engine's table."""
    return "one of " + ", ".join(repr(n) for n in names)


# name -> (what the error must say is allowed, bad values: wrong types and out of range)
BAD_PARAMS = {
    "hidden_layer_sizes": ("integers in [1, 2147483647]",
                           [(0,), (4, -1), "64", (2.5,), None, (2**31,), (True,), [np.float64(3)], {"a": 1}]),
    "activation": (ALLOWED(a for a in _core.ACTIVATIONS if not _core.ACTIVATION_TRAITS[a]["output_only"]),
                   ["swish", None, 3, "RELU"]),
    "output_activation": (ALLOWED((*_core.ACTIVATIONS, "auto")), ["swish", 1.0, b"sigmoid", "Auto"]),
    "loss": (ALLOWED((*_core.LOSSES, "auto")), ["hinge", None, "MSE", "AUTO"]),
    "optimizer": (ALLOWED(_core.OPTIMIZERS), ["lbfgs", ["adam"], None]),
    "kernel_initializer": (ALLOWED(_core.INITIALIZERS), ["orthogonal", None, "Glorot_Uniform"]),
    "leaky_relu_slope": ("[0.0, inf)", [-0.01, float("nan"), float("inf"), "0.01", None]),
    "huber_delta": ("(0.0, inf)", [0.0, -1.0, float("nan"), "1", None]),
    "weight_decay": ("[0.0, inf)", [-0.01, float("inf"), "0.01", None]),
    "rho": ("[0.0, 1.0)", [1.0, -0.1, float("nan"), "0.9"]),
    "learning_rate": ("(0.0, inf)", [0.0, -1e-3, float("nan"), float("inf"), "fast", None, True, 1j, 10**400]),
    "batch_size": ("[1, 2147483647]", [0, -1, 2.0, True, "32", 2**31, None]),
    "epochs": ("[1, 2147483647]", [0, -3, 2**31, 1.5, None, np.float32(2)]),
    "shuffle": ("True or False", ["yes", 1, None]),
    "random_state": ("[0, 2**64)", [-1, 2**64]),
    "n_threads": ("None, -1 or an integer >= 1", [0, -2, 1.5, "2", True]),
    "warm_start": ("True or False", [1, "no", None]),
    "verbose": (">= 0", [-1, 1.5, "loud", None]),
    "beta_1": ("[0.0, 1.0)", [1.0, -0.1, float("nan"), "0.9"]),
    "beta_2": ("[0.0, 1.0)", [1.0, -0.1, float("inf")]),
    "epsilon": ("(0.0, inf)", [0.0, -1e-8, float("inf"), None, -(10**400)]),
    "momentum": ("[0.0, 1.0)", [1.0, -0.5, float("nan"), "0.9"]),
    "nesterov": ("True or False", [1, "yes", None]),
    "input_scale": ("(0.0, inf)", [0.0, -1.0, float("nan"), float("inf"), "1/255"]),
    "validation_split": ("[0.0, 1.0)", [1.0, -0.1, float("nan"), "0.2", None, True]),
    "early_stopping": ("True or False", [1, "yes", None]),
    "patience": ("[1, 2147483647]", [0, -1, 2.5, "10", None, True, 2**31]),
    "min_delta": ("[0.0, inf)", [-1e-3, float("nan"), float("inf"), "0", None]),
    "restore_best_weights": ("True or False", [0, "no", None]),
    "lr_schedule": ("None, " + ALLOWED(s for s in _core.LR_SCHEDULES if s != "none") + ", or a callable",
                    ["linear", "none", "Step", 0.1, ("step",)]),
    "lr_decay_rate": ("(0.0, 1.0]", [0, 0.0, 1.5, -0.1, float("nan"), "0.1", None]),
    "lr_decay_steps": ("[1, 2147483647]", [0, -2, 2.5, "10", None, False]),
    "lr_min": ("[0.0, inf)", [-1e-6, float("nan"), float("inf"), "0", None]),
    "lr_patience": ("[1, 2147483647]", [0, -1, 1.5, None, True]),
    "clipnorm": ("(0.0, inf)", [0, 0.0, -1, float("nan"), float("inf"), "1", True]),
    "callbacks": ("None or a list of callables", [[1], [print, None], print, "print", 3]),
    "max_time": ("(0.0, inf)", [0, 0.0, -5.0, float("nan"), float("inf"), "60", True]),
    "l1": ("[0.0, inf)", [-0.1, float("nan"), float("inf"), "0.1", None]),
    "l2": ("[0.0, inf)", [-0.1, float("nan"), "0.1", None]),
    "dropout": ("[0.0, 1.0)", [1.0, -0.1, float("nan"), "0.5", None]),
    "noise": ("None or one of 'gaussian', 'masking'", ["salt", "Gaussian", 1, True]),
    "noise_level": ("[0.0, inf)", [-0.1, float("nan"), float("inf"), "0.1", None]),
    "activity_l1": ("[0.0, inf)", [-1e-3, float("nan"), "0.001", None]),
    "sparsity_target": ("(0.0, 1.0)", [0.0, 1.0, -0.5, float("nan"), "0.05"]),
    "sparsity_weight": ("[0.0, inf)", [-1.0, float("inf"), "3", None]),
    "decoder_layer_sizes": ("integers in [1, 2147483647]", [(0,), (4, -1), "64", (2.5,), (True,), {"a": 1}]),
    "tied_weights": ("True or False", [1, "yes", None]),
    "contractive": ("[0.0, inf)", [-0.1, float("nan"), float("inf"), "0.1", None]),
}
RANDOM_STATE_TYPES = ["seed", 1.5, object]  # "None, an int, ... RandomState or ... Generator"


def test_every_constructor_parameter_has_bad_values_here():
    assert set(BAD_PARAMS) == set(Autoencoder._get_param_names())


@pytest.mark.parametrize("name,value,allowed",
                         [(n, v, a) for n, (a, values) in BAD_PARAMS.items() for v in values] +
                         [("random_state", v, "RandomState or a numpy.random.Generator") for v in RANDOM_STATE_TYPES],
                         ids=lambda x: repr(x)[:30])
def test_bad_hyperparameter_at_fit_names_it_says_what_is_allowed_and_changes_nothing(name, value, allowed):
    ae, X = fitted_model()
    before = snapshot(ae)
    ae.set_params(**{name: value})  # only stored: checks happen at fit
    with pytest.raises((ValueError, TypeError)) as info:
        ae.fit(X)
    message = str(info.value)
    assert name in message
    assert repr(value) in message
    assert allowed in message
    assert_unchanged(ae, before)


# ---- arrays ------------------------------------------------------------------------------------

@pytest.mark.parametrize("label,X,message", BAD_X, ids=[b[0] for b in BAD_X])
def test_bad_array_anywhere_leaves_weights_optimizer_state_and_history_unchanged(label, X, message):
    ae, data = fitted_model()
    before = snapshot(ae)
    # inverse_transform takes codes (3 wide): the same defects, 3 columns wide
    Z = X[:, :3] if isinstance(X, np.ndarray) and X.ndim == 2 and X.shape[1] == 6 else X
    calls = [(ae.fit, X, message), (lambda A: ae.fit(data, validation_data=A), X, message),
             # a pair of arrays that are not 2-D reads as one matrix: the error still names validation_data
             (lambda A: ae.fit(data, validation_data=(A, A)), X, "validation_data"),
             (ae.fit_transform, X, message), (ae.transform, X, message), (ae.predict, X, message),
             (ae.inverse_transform, Z, message), (ae.reconstruction_error, X, message),
             (ae.score_samples, X, message), (ae.score, X, message)]
    for call, arg, expected in calls:
        with pytest.raises(ValueError, match=f"(?i){expected}"):
            call(arg)
        assert_unchanged(ae, before)


def test_validation_data_errors_name_it_and_change_nothing():
    ae, data = fitted_model()
    before = snapshot(ae)
    bad = {"has 5 features, but Autoencoder is expecting 6": np.zeros((4, 5)),
           "2-D": np.zeros(6),
           "empty": np.zeros((0, 6)),
           "nan": np.where(np.eye(4, 6, dtype=bool), np.nan, 0.5),
           r"\[0, 1\]": np.full((3, 6), 2.0),  # bce targets
           "real numbers": np.full((3, 6), "x")}
    for message, val in bad.items():
        with pytest.raises(ValueError, match=f"(?i)validation_data.*{message}|{message}.*validation_data"):
            ae.fit(data, validation_data=val)
        assert_unchanged(ae, before)


def test_feature_count_and_warm_start_mismatches_change_nothing():
    ae, data = fitted_model()
    before = snapshot(ae)
    wide = smooth_data(10, 7)
    for call, arg, message in ((ae.transform, wide, "7 features, but Autoencoder is expecting 6"),
                               (ae.predict, wide, "7 features, but Autoencoder is expecting 6"),
                               (ae.score, wide, "7 features, but Autoencoder is expecting 6"),
                               (ae.inverse_transform, np.zeros((2, 4)), "4 features, but Autoencoder is expecting 3")):
        with pytest.raises(ValueError, match=message):
            call(arg)
        assert_unchanged(ae, before)
    ae.set_params(warm_start=True)
    with pytest.raises(ValueError, match=r"warm_start=True needs the fitted layer sizes \[6, 3, 6\]"):
        ae.fit(wide)
    assert_unchanged(ae, before)
    with pytest.raises(ValueError, match="weights has 1 layers"):
        ae.set_weights(ae.get_weights()[:1])
    assert_unchanged(ae, before)


def test_mse_out_of_unit_range_is_fine_but_bce_range_error_changes_nothing():
    ae, data = fitted_model()
    before = snapshot(ae)
    with pytest.raises(ValueError, match=r"\[0, 1\] for loss='bce'"):
        ae.reconstruction_error(data * 3)
    ae.set_params(loss="bce")  # loss="auto" would take mse for these data
    with pytest.raises(ValueError, match=r"\[0, 1\] for loss='bce'"):
        ae.fit(data - 1)
    assert_unchanged(ae, before)
    # transform and predict have no targets: any finite values are valid inputs
    assert np.isfinite(ae.transform(data * 3)).all()


def test_labels_are_ignored_as_scikit_learn_does_for_unsupervised_estimators():
    X = smooth_data(40, 6, seed=3)
    ref = Autoencoder(hidden_layer_sizes=(3,), epochs=2, random_state=0).fit(X).get_weights()
    for y in (np.arange(40), "anything", np.zeros((3, 3))):
        got = Autoencoder(hidden_layer_sizes=(3,), epochs=2, random_state=0).fit(X, y).get_weights()
        assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(ref, got))


# ---- valid but unusual arrays: the results of a float32 C-contiguous array --------------------

def unusual_forms(X32, tmp_path):
    """The same values as X32 in every valid form the estimator should accept."""
    n, d = X32.shape
    rows = np.zeros((2 * n, d), dtype=np.float32)
    rows[::2] = X32
    cols = np.zeros((n, 3 * d), dtype=np.float32)
    cols[:, ::3] = X32
    reversed_rows = np.ascontiguousarray(X32[::-1])
    read_only = X32.copy()
    read_only.setflags(write=False)
    path = os.path.join(str(tmp_path), "x.f32")
    X32.tofile(path)
    npy = os.path.join(str(tmp_path), "x.npy")
    np.save(npy, X32)
    return {
        "float64": X32.astype(np.float64),
        "longdouble": X32.astype(np.longdouble),
        "big-endian float32": X32.astype(">f4"),
        "Fortran order": np.asfortranarray(X32),
        "strided rows": rows[::2],
        "strided columns": cols[:, ::3],
        "negative strides": reversed_rows[::-1],
        "transposed view": np.ascontiguousarray(X32.T).T,
        "read-only": read_only,
        "np.memmap": np.memmap(path, dtype=np.float32, mode="r", shape=(n, d)),
        "np.load mmap": np.load(npy, mmap_mode="r"),
        "nested lists": X32.tolist(),
    }


def weights_equal(a, b):
    return all(np.array_equal(Wa, Wb) and np.array_equal(ba, bb) for (Wa, ba), (Wb, bb) in zip(a, b))


@pytest.mark.parametrize("shuffle", [True, False])
def test_unusual_float_forms_train_and_infer_bit_identically(tmp_path, shuffle):
    X32 = smooth_data(50, 8, seed=5)
    params = dict(hidden_layer_sizes=(4,), epochs=3, batch_size=16, shuffle=shuffle, random_state=2)
    ref = Autoencoder(**params).fit(X32, validation_data=X32[:10])
    ref_w, ref_codes, ref_out = ref.get_weights(), ref.transform(X32), ref.predict(X32)
    ref_err, ref_score = ref.reconstruction_error(X32), ref.score(X32)
    for label, X in unusual_forms(X32, tmp_path).items():
        ae = Autoencoder(**params).fit(X, validation_data=X)
        assert weights_equal(ae.get_weights(), ref_w), label
        assert ae.history_["loss"] == ref.history_["loss"], label
        assert np.array_equal(ref.transform(X), ref_codes), label
        assert np.array_equal(ref.predict(X), ref_out), label
        assert np.array_equal(ref.reconstruction_error(X), ref_err), label
        assert ref.score(X) == ref_score, label
        assert np.array_equal(ref.inverse_transform(np.asfortranarray(ref_codes)), ref.inverse_transform(ref_codes))


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.int64, np.uint64, bool])
def test_integer_and_bool_arrays_equal_their_float32_values(dtype):
    rng = np.random.default_rng(4)
    if dtype is bool:
        X = rng.uniform(size=(40, 7)) > 0.5
        params = dict(loss="bce")  # 0/1 values are valid bce targets
    else:
        info = np.iinfo(dtype)
        X = rng.integers(max(info.min, -100), min(info.max, 255), size=(40, 7), endpoint=True).astype(dtype)
        params = dict(loss="mse", output_activation="linear", learning_rate=1e-4)
    params.update(hidden_layer_sizes=(3,), epochs=2, batch_size=8, random_state=1)
    X32 = X.astype(np.float32)
    ref = Autoencoder(**params).fit(X32)
    ae = Autoencoder(**params).fit(X)
    assert weights_equal(ae.get_weights(), ref.get_weights())
    assert ae.history_["loss"] == ref.history_["loss"]
    assert np.array_equal(ref.predict(X), ref.predict(X32))
    assert np.array_equal(ref.reconstruction_error(X), ref.reconstruction_error(X32))


def test_one_sample_trains_as_the_numpy_reference_and_infers_like_a_batch():
    X = smooth_data(30, 12, seed=6)
    one = X[:1]
    start = Autoencoder(hidden_layer_sizes=(5,), epochs=1, random_state=3).fit(X[:2]).get_weights()
    ae = Autoencoder(hidden_layer_sizes=(5,), learning_rate=1e-2, batch_size=64, epochs=4, warm_start=True)
    ae.set_weights(start).fit(one)
    weights = [(W.astype(np.float64), b.astype(np.float64)) for W, b in start]
    state, losses = {"t": 0}, []
    for _ in range(4):  # one step per epoch: batch_size 64 > 1 sample
        value, grads = np_loss_and_grads(weights, one, "relu", "sigmoid", "bce")
        losses.append(value)
        weights = np_adam(weights, grads, state, lr=1e-2)
    assert ae._model.optimizer_state()["steps"] == 4
    np.testing.assert_allclose(ae.history_["loss"], losses, rtol=1e-5)
    for (W, b), (W_ref, b_ref) in zip(ae.get_weights(), weights):
        np.testing.assert_allclose(W, W_ref, rtol=1e-4, atol=2e-6)
        np.testing.assert_allclose(b, b_ref, rtol=1e-4, atol=2e-6)
    assert np.abs(ae.get_weights()[0][0] - start[0][0]).max() > 1e-3  # it did train
    # inference on one sample: the NumPy forward pass, and (to rounding) the row of a batch
    _, z = np_forward(ae.get_weights(), one, "relu", "sigmoid")
    np.testing.assert_allclose(ae.predict(one), 1 / (1 + np.exp(-z)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ae.predict(one), ae.predict(X)[:1], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(ae.transform(X[7:8]), ae.transform(X)[7:8], rtol=1e-6, atol=1e-7)
    assert ae.reconstruction_error(one).shape == (1,)


def test_batch_size_larger_than_the_data_is_one_full_batch():
    X = smooth_data(37, 8, seed=7)
    for shuffle in (True, False):
        params = dict(hidden_layer_sizes=(4,), epochs=3, shuffle=shuffle, random_state=5)
        full = Autoencoder(batch_size=37, **params).fit(X)
        for batch_size in (38, 1000, 2**31 - 1):
            big = Autoencoder(batch_size=batch_size, **params).fit(X)
            assert weights_equal(big.get_weights(), full.get_weights())
            assert big.history_["loss"] == full.history_["loss"]
            assert big._model.optimizer_state()["steps"] == 3  # one step per epoch


# ---- sizes beyond the engine or the memory ------------------------------------------------------

def run_limited(code, address_space_gib, timeout=120):
    """Runs code in a fresh interpreter whose address space is capped (so nothing it allocates can
    reach the machine's memory) and returns its last stdout line as JSON; a crash fails here."""
    prelude = textwrap.dedent(f"""
        import json, resource
        limit = int({address_space_gib} * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        import numpy as np
        from fastae import Autoencoder, _core, _params
        X = np.random.default_rng(0).uniform(size=(20, 6)).astype(np.float32)
        def outcome(call):
            try:
                call()
                return "ok"
            except (ValueError, MemoryError) as e:
                return type(e).__name__ + ": " + str(e)
    """)
    # one BLAS thread: OpenBLAS reserves address space per thread, which the cap would refuse on a big machine
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env=env)
    assert proc.returncode == 0, f"exit status {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_sizes_the_engine_cannot_hold_raise_value_error_saying_why():
    result = run_limited("""
        cases = {"width 2**31": (2**31,), "width 2**40": (2**40,), "2**32 parameters": (2**31 - 1,),
                 "product overflowing 2**32": (2**16, 2**16)}
        print(json.dumps({k: outcome(lambda h=h: Autoencoder(hidden_layer_sizes=h).fit(X)) for k, h in cases.items()}))
    """, address_space_gib=2)
    assert result["width 2**31"].startswith(
        "ValueError: hidden_layer_sizes must be a sequence of integers in [1, 2147483647]")
    assert result["width 2**40"].startswith("ValueError: hidden_layer_sizes must be")
    for case in ("2**32 parameters", "product overflowing 2**32"):
        assert result[case].startswith("ValueError: hidden_layer_sizes on 6 features give the network"), result[case]
        assert "the limit is 2**32" in result[case]


def test_a_network_larger_than_the_memory_raises_memory_error():
    result = run_limited("""
        real = outcome(lambda: Autoencoder(hidden_layer_sizes=(10**8,)).fit(X))  # about 29 GiB to train
        core = outcome(lambda: _core.Model([6, 10**8, 6], "relu", "sigmoid", "bce"))  # 5.2 GB of parameters
        _params.memory_available_bytes = lambda: 2**30  # as if 1 GiB were free
        print(json.dumps({"real": real, "core": core,
                          "adam": outcome(lambda: Autoencoder(hidden_layer_sizes=(10**8,), n_threads=1).fit(X)),
                          "sgd": outcome(lambda: Autoencoder(hidden_layer_sizes=(10**8,), optimizer="sgd",
                                                             n_threads=1).fit(X)),
                          "small": outcome(lambda: Autoencoder(hidden_layer_sizes=(8,), epochs=1).fit(X))}))
    """, address_space_gib=2)
    # Whichever refuses first (the check against the memory available, or the engine's allocation
    # under the 2 GiB cap), it is a MemoryError and the process lives.
    assert result["real"].startswith("MemoryError"), result["real"]
    assert result["core"].startswith("MemoryError"), result["core"]  # std::bad_alloc from the engine
    # The check before allocating: 1300000006 parameters, Adam: params and their copy + 1 gradient +
    # m, v and their copy + the weights before fit (float data) = 8 float32 buffers
    assert result["adam"] == ("MemoryError: the network [6, 100000000, 6] has 1300000006 parameters; training it "
                              "(parameters and their last-step copy, 1 gradient buffer(s), adam's state and its copy, "
                              "the weights before fit) needs at least 38.7 GiB, "
                              "more than the 1.0 GiB of memory available now")
    assert "needs at least 29.1 GiB" in result["sgd"]  # 6 buffers: SGD keeps one moment
    assert result["small"] == "ok"


def test_memory_check_counts_the_engine_buffers(monkeypatch):
    monkeypatch.setattr(_params, "memory_available_bytes", lambda: 6 * 2**30)
    _params.check_network_size([1024, 2**18, 1024])  # 2**29 + 2**18 + 1024 parameters: 2 GiB fit in 6
    # 1 GiB a buffer; params and their copy, 1 gradient, u and its copy (8-bit data: no weights kept from before fit)
    _params.check_network_size([1024, 2**17, 1024], 1, "sgd", float_data=False)
    with pytest.raises(MemoryError, match=r"its copy, the weights before fit\) needs at least 6.0 GiB"):
        _params.check_network_size([1024, 2**17, 1024], 1, "sgd")  # float data: one buffer more
    # 2 threads: 9 buffers, and the weights packed for the threads' products, 0.5 GiB a layer's W:
    # both layers' forward products, the second layer's backward one
    with pytest.raises(MemoryError, match=r"training it \(parameters and their last-step copy, 2 gradient "
                                          r"buffer\(s\), adam's state and its copy, the weights before fit, the "
                                          r"weights packed for the threads\) needs at least 10.5 GiB, more than the "
                                          r"6.0 GiB"):
        _params.check_network_size([1024, 2**17, 1024], 2, "adam")
    with pytest.raises(MemoryError, match="storing its parameters needs at least 6.0 GiB"):
        _params.check_network_size([1024, 3 * 2**18, 1024])


def test_memory_error_from_the_engine_during_fit_keeps_the_previous_model():
    """The check before allocating passes (it is told memory is plenty), and the engine's own
    allocations then fail under the address-space cap: at the moments, or at the gradients
    inside the training loop's setup. Either way fit raises MemoryError and the estimator keeps
    the model, optimizer state and history it had."""
    result = run_limited("""
        import resource
        ae = Autoencoder(hidden_layer_sizes=(3,), epochs=2, random_state=0).fit(X)
        def state():
            s = ae._model.optimizer_state()
            return ([w.tolist() for pair in ae.get_weights() for w in pair], s["steps"], s["m"].tolist(),
                    s["v"].tolist(), ae.history_, ae.n_iter_, ae.n_features_in_)
        before = state()
        _params.memory_available_bytes = lambda: 2**40
        with open("/proc/self/status") as f:
            vm = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmSize:"))
        buffer = 4 * (6 * 8 * 10**6 * 2 + 8 * 10**6 + 6)  # one float32 buffer of [6, 8e6, 6]: 416 MB
        out = {}
        for where, room in (("moments", 1.5 * buffer), ("gradients", 3.5 * buffer)):
            resource.setrlimit(resource.RLIMIT_AS, (int(vm + room), resource.getrlimit(resource.RLIMIT_AS)[1]))
            ae.set_params(hidden_layer_sizes=(8 * 10**6,), warm_start=False)
            out[where] = outcome(lambda: ae.fit(X))
            out[where + " unchanged"] = state() == before
        ae.set_params(hidden_layer_sizes=(3,))
        out["still usable"] = ae.transform(X).shape == (20, 3)
        print(json.dumps(out))
    """, address_space_gib=4)
    for where in ("moments", "gradients"):
        assert result[where].startswith("MemoryError"), result
        assert result[where + " unchanged"], where
    assert result["still usable"]
