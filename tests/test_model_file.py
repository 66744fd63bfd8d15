"""Model files from Python: save/load, pickle, deepcopy and joblib round trips (same weights, same
outputs, same continued training), resuming the optimizer exactly, the byte layout of
docs/model-format.md checked by an independent reader and writer written here from that document,
atomic saves, and corrupt or hostile files rejected cleanly under a memory limit."""

import copy
import json
import os
import pickle
import re
import struct
import subprocess
import sys
import textwrap
import zlib

import numpy as np
import pytest

import fastae
from fastae import Autoencoder, ModelFileError

# ---- an independent reference of docs/model-format.md -----------------------------------------

MAGIC = b"\x89FASTAE\n"
ACTIVATIONS = ["linear", "relu", "sigmoid", "tanh"]
LOSSES = ["mse", "bce"]
OPTIMIZERS = ["adam", "sgd"]


def optimizer_block(s):
    return struct.pack("<BBxx5d", OPTIMIZERS.index(s["optimizer"]), int(s["nesterov"]), s["learning_rate"],
                       s["beta1"], s["beta2"], s["epsilon"], s["momentum"])


def build_file(widths, activation, output_activation, loss, settings, params, state=None, metadata=b"",
               version=1, param_count=None):
    """A model file built from the document, field by field."""
    body = struct.pack("<I", len(widths)) + struct.pack(f"<{len(widths)}I", *widths)
    body += struct.pack("<BBBx", ACTIVATIONS.index(activation), ACTIVATIONS.index(output_activation),
                        LOSSES.index(loss))
    body += optimizer_block(settings)
    params = np.asarray(params, dtype="<f4")
    body += struct.pack("<Q", len(params) if param_count is None else param_count) + params.tobytes()
    if state is None:
        body += struct.pack("<Bxxx", 0)
    else:
        m, v = np.asarray(state["m"], "<f4"), np.asarray(state["v"], "<f4")
        body += struct.pack("<Bxxx", 1) + optimizer_block(state["config"]) + struct.pack("<q", state["steps"])
        body += struct.pack("<Q", len(m)) + m.tobytes() + struct.pack("<Q", len(v)) + v.tobytes()
    body += struct.pack("<I", len(metadata)) + metadata
    head = MAGIC + struct.pack("<IIQ", version, 0x01020304, len(body))
    return seal(head + body + b"\0\0\0\0")


def seal(data):
    """Rewrites the body size and the CRC-32 (zlib's) so that a hand-made file reaches the parser."""
    data = bytearray(data)
    data[16:24] = struct.pack("<Q", len(data) - 28)
    data[-4:] = struct.pack("<I", zlib.crc32(bytes(data[:-4])))
    return bytes(data)


def parse_file(data):
    """Reads a model file by the document; returns its fields as a dict."""
    assert data[:8] == MAGIC
    version, mark, body = struct.unpack_from("<IIQ", data, 8)
    assert (version, mark, body) == (1, 0x01020304, len(data) - 28)
    assert struct.unpack_from("<I", data, len(data) - 4)[0] == zlib.crc32(data[:-4])
    pos = 24

    def take(fmt):
        nonlocal pos
        values = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return values

    def settings():
        kind, nesterov, *numbers = take("BBxx5d")
        return dict(zip(["optimizer", "nesterov", "learning_rate", "beta1", "beta2", "epsilon", "momentum"],
                        [OPTIMIZERS[kind], bool(nesterov), *numbers]))

    (n,) = take("I")
    out = {"widths": list(take(f"{n}I"))}
    a, o, l = take("BBBx")
    out.update(activation=ACTIVATIONS[a], output_activation=ACTIVATIONS[o], loss=LOSSES[l], settings=settings())
    (p,) = take("Q")
    out["params"] = np.frombuffer(data, "<f4", p, pos)
    pos += 4 * p
    (has_state,) = take("Bxxx")
    out["state"] = None
    if has_state:
        state = {"config": settings()}
        (state["steps"],) = take("q")
        for key in "mv":
            (k,) = take("Q")
            state[key] = np.frombuffer(data, "<f4", k, pos)
            pos += 4 * k
        out["state"] = state
    (t,) = take("I")
    out["metadata"] = data[pos:pos + t]
    assert pos + t + 4 == len(data)
    return out


# ---- fixtures ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def X():
    return fastae.load_digits()[0][:400]


@pytest.fixture(scope="module")
def fitted(X):
    return Autoencoder(hidden_layer_sizes=(16, 6), epochs=3, batch_size=64, random_state=3,
                       learning_rate=3e-3).fit(X, validation_data=X[:50])


def same_model(a, b):
    sa, sb = a._model.optimizer_state(), b._model.optimizer_state()
    same_state = (sa is None and sb is None) or (
        sa is not None and sb is not None and sa["config"] == sb["config"] and sa["steps"] == sb["steps"]
        and np.array_equal(sa["m"], sb["m"]) and np.array_equal(sa["v"], sb["v"]))
    return (np.array_equal(a._model.get_params(), b._model.get_params()) and same_state
            and a.get_params() == b.get_params())


def continued(est, X):
    """Two more epochs from where est stopped, optimizer state included (on a copy)."""
    est = copy.deepcopy(est).set_params(warm_start=True, epochs=2)
    return est.fit(X, resume_optimizer=True)


# ---- round trips -------------------------------------------------------------------------------

def test_save_load_round_trip_is_exact(fitted, X, tmp_path):
    path = tmp_path / "model.fae"
    fitted.save(path)
    back = fastae.load(path)
    assert isinstance(back, Autoencoder) and same_model(fitted, back)
    assert back.history_ == fitted.history_ and back.n_iter_ == fitted.n_iter_ and back.loss_ == fitted.loss_
    assert back.n_features_in_ == fitted.n_features_in_
    for method in ("transform", "predict", "reconstruction_error"):
        assert np.array_equal(getattr(back, method)(X), getattr(fitted, method)(X))
    assert np.array_equal(Autoencoder.load(str(path)).transform(X), fitted.transform(X))
    # Continued training is the same, with and without the optimizer state.
    assert np.array_equal(continued(back, X)._model.get_params(), continued(fitted, X)._model.get_params())
    plain = [copy.deepcopy(e).set_params(warm_start=True, epochs=1).fit(X)._model.get_params() for e in (back, fitted)]
    assert np.array_equal(*plain)


@pytest.mark.parametrize("how", ["pickle", "deepcopy", "copy", "joblib"])
def test_pickle_deepcopy_joblib_round_trips_are_exact(fitted, X, tmp_path, how):
    if how == "pickle":
        back = pickle.loads(pickle.dumps(fitted, protocol=pickle.HIGHEST_PROTOCOL))
    elif how == "deepcopy":
        back = copy.deepcopy(fitted)
    elif how == "copy":
        back = copy.copy(fitted)
    else:
        joblib = pytest.importorskip("joblib")
        joblib.dump(fitted, tmp_path / "model.joblib")
        back = joblib.load(tmp_path / "model.joblib")
    assert back is not fitted and back._model is not fitted._model
    assert same_model(fitted, back) and back.history_ == fitted.history_
    assert np.array_equal(back.transform(X), fitted.transform(X))
    assert np.array_equal(continued(back, X)._model.get_params(), continued(fitted, X)._model.get_params())


def test_pickle_keeps_every_hyperparameter_and_unfitted_estimators(X):
    rs = np.random.RandomState(5)
    est = Autoencoder(hidden_layer_sizes=[8], random_state=rs, n_threads=-1, optimizer="sgd", momentum=0.5)
    back = pickle.loads(pickle.dumps(est))
    assert isinstance(back.random_state, np.random.RandomState) and back.hidden_layer_sizes == [8]
    assert back.get_params()["n_threads"] == -1 and not hasattr(back, "_model")
    assert np.array_equal(back.random_state.get_state()[1], rs.get_state()[1])


def test_resume_optimizer_continues_exactly(X, tmp_path):
    """Without shuffling, 2 epochs + save + load + 2 resumed epochs give the very weights of 4 epochs
    in one fit: Adam's moments and step count travel in the file. (With shuffling the continued
    fit restarts the shuffle stream from random_state, so it differs from one long fit.)"""
    kw = dict(hidden_layer_sizes=(12, 5), batch_size=50, shuffle=False, random_state=1, learning_rate=1e-2)
    whole = Autoencoder(epochs=4, **kw).fit(X)
    Autoencoder(epochs=2, **kw).fit(X).save(tmp_path / "half.fae")
    resumed = fastae.load(tmp_path / "half.fae").set_params(warm_start=True)
    assert resumed._model.optimizer_state()["steps"] == 2 * 8
    resumed.fit(X, resume_optimizer=True)
    assert np.array_equal(resumed._model.get_params(), whole._model.get_params())
    assert resumed._model.optimizer_state()["steps"] == whole._model.optimizer_state()["steps"] == 4 * 8
    fresh = fastae.load(tmp_path / "half.fae").set_params(warm_start=True).fit(X)
    assert not np.array_equal(fresh._model.get_params(), whole._model.get_params())  # a fresh Adam differs


def test_resume_optimizer_errors(X, fitted, tmp_path):
    with pytest.raises(ValueError, match="needs warm_start=True"):
        copy.deepcopy(fitted).fit(X, resume_optimizer=True)
    with pytest.raises(ValueError, match="resume_optimizer must be True or False"):
        copy.deepcopy(fitted).set_params(warm_start=True).fit(X, resume_optimizer="yes")
    with pytest.raises(ValueError, match="'adam''s and optimizer='sgd'"):
        copy.deepcopy(fitted).set_params(warm_start=True, optimizer="sgd").fit(X, resume_optimizer=True)
    fitted.save(tmp_path / "light.fae", include_optimizer_state=False)
    light = fastae.load(tmp_path / "light.fae").set_params(warm_start=True)
    before = light._model.get_params()
    with pytest.raises(ValueError, match="no optimizer state to resume"):
        light.fit(X, resume_optimizer=True)
    assert np.array_equal(light._model.get_params(), before)  # nothing lost
    assert os.path.getsize(tmp_path / "light.fae") < os.path.getsize(_saved(fitted, tmp_path / "full.fae"))


def _saved(est, path):
    est.save(path)
    return path


def test_hyperparameters_and_history_travel_as_json(fitted, tmp_path):
    est = Autoencoder(hidden_layer_sizes=(5,), activation="tanh", output_activation="linear", loss="mse",
                      optimizer="sgd", learning_rate=0.05, momentum=0.3, nesterov=False, epochs=2, batch_size=32,
                      shuffle=False, random_state=2**64 - 1, n_threads=-1, verbose=0)
    est.fit(np.random.default_rng(0).normal(size=(100, 7)))
    path = _saved(est, tmp_path / "m.fae")
    meta = json.loads(parse_file(path.read_bytes())["metadata"].decode("utf-8"))
    assert meta["estimator"] == "fastae.Autoencoder"
    assert meta["params"]["random_state"] == 2**64 - 1 and meta["params"]["n_threads"] == -1
    back = fastae.load(path)
    assert back.get_params() == {**est.get_params(), "hidden_layer_sizes": (5,)}
    assert back.history_ == est.history_
    rs = copy.deepcopy(fitted).set_params(random_state=np.random.RandomState(0))
    with pytest.warns(UserWarning, match="random_state"):
        rs.save(tmp_path / "rs.fae")
    assert fastae.load(tmp_path / "rs.fae").random_state is None


# ---- the documented layout, from an independent reader and writer ------------------------------

def test_bytes_match_the_documented_layout(fitted, tmp_path):
    data = _saved(fitted, tmp_path / "m.fae").read_bytes()
    f = parse_file(data)
    assert f["widths"] == [64, 16, 6, 16, 64] and (f["activation"], f["output_activation"], f["loss"]) == (
        "relu", "sigmoid", "bce")
    assert f["settings"] == {"optimizer": "adam", "nesterov": True, "learning_rate": 3e-3, "beta1": 0.9,
                             "beta2": 0.999, "epsilon": 1e-8, "momentum": 0.9}
    assert np.array_equal(f["params"], fitted._model.get_params())
    state = fitted._model.optimizer_state()
    assert f["state"]["steps"] == state["steps"] == 3 * 7
    assert np.array_equal(f["state"]["m"], state["m"]) and np.array_equal(f["state"]["v"], state["v"])
    # The same file, written here from the document, byte for byte.
    rebuilt = build_file(f["widths"], "relu", "sigmoid", "bce", f["settings"], fitted._model.get_params(),
                         state=state, metadata=f["metadata"])
    assert rebuilt == data


def test_a_file_without_metadata_gets_hyperparameters_from_the_network(X):
    """As a C++ program writes it (fastae::save_model with no metadata)."""
    model = Autoencoder(hidden_layer_sizes=(9, 3), activation="tanh", random_state=0, epochs=1).fit(X)._model
    settings = {"optimizer": "sgd", "nesterov": False, "learning_rate": 0.25, "beta1": 0.5, "beta2": 0.75,
                "epsilon": 1e-3, "momentum": 0.0}
    data = build_file(list(model.layer_sizes), "tanh", "sigmoid", "bce", settings, model.get_params())
    est = Autoencoder._from_model(*fastae._core.model_from_bytes(data))
    assert est.get_params() == {**Autoencoder().get_params(), "hidden_layer_sizes": (9, 3), "activation": "tanh",
                                "optimizer": "sgd", "learning_rate": 0.25, "beta_1": 0.5, "beta_2": 0.75,
                                "epsilon": 1e-3, "momentum": 0.0, "nesterov": False}
    assert np.array_equal(est._model.get_params(), model.get_params()) and est._model.optimizer_state() is None
    # A plain MLP (not mirrored) is a valid model file but not an Autoencoder.
    mlp = build_file([4, 3, 2], "relu", "linear", "mse", settings, np.zeros(4 * 3 + 3 + 3 * 2 + 2))
    assert fastae._core.model_from_bytes(mlp)[0].layer_sizes == [4, 3, 2]
    with pytest.raises(ModelFileError, match="not a mirrored autoencoder"):
        Autoencoder._from_model(*fastae._core.model_from_bytes(mlp))


@pytest.mark.parametrize("metadata, match", [
    (b"\xff\xfe", "not UTF-8 JSON"),
    (b"[" * 100000, "not UTF-8 JSON"),
    (json.dumps({"estimator": "fastae.Autoencoder", "params": {"hidden_layer_sizes": [7]}}).encode(),
     "describes the network"),
    (json.dumps({"estimator": "fastae.Autoencoder", "params": {"hidden_layer_sizes": "x"}}).encode(),
     "bad hidden_layer_sizes"),
    (json.dumps({"estimator": "fastae.Autoencoder", "params": [], "attributes": {}}).encode(), "JSON objects"),
    (json.dumps({"estimator": "fastae.Autoencoder", "params": {"hidden_layer_sizes": [3]},
                 "attributes": {"history_": {"loss": ["a"]}}}).encode(), "bad training record"),
])
def test_bad_metadata_is_a_model_file_error(metadata, match):
    settings = {"optimizer": "adam", "nesterov": False, "learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999,
                "epsilon": 1e-8, "momentum": 0.0}
    data = build_file([4, 3, 4], "relu", "sigmoid", "bce", settings, np.zeros(4 * 3 + 3 + 3 * 4 + 4),
                      metadata=metadata)
    with pytest.raises(ModelFileError, match=match):
        Autoencoder._from_model(*fastae._core.model_from_bytes(data))


# ---- saving: atomic, and errors -----------------------------------------------------------------

def test_save_replaces_the_file_and_leaves_no_temporary_file(fitted, X, tmp_path):
    path = tmp_path / "m.fae"
    other = Autoencoder(hidden_layer_sizes=(4,), epochs=1, random_state=0).fit(X)
    other.save(path)
    os.chmod(path, 0o640)
    fitted.save(path)
    assert np.array_equal(fastae.load(path).transform(X), fitted.transform(X))
    assert os.stat(path).st_mode & 0o777 == 0o640 and os.listdir(tmp_path) == ["m.fae"]


def test_failed_saves_keep_the_old_file(fitted, X, tmp_path):
    path = tmp_path / "m.fae"
    fitted.save(path)
    old = path.read_bytes()
    with pytest.raises(IsADirectoryError):
        fitted.save(tmp_path)  # the folder itself is the target: the rename fails
    with pytest.raises(FileNotFoundError):
        fitted.save(tmp_path / "missing" / "m.fae")
    with pytest.raises(fastae.NotFittedError):
        Autoencoder().save(path)
    bad = copy.deepcopy(fitted).set_params(learning_rate=-1.0)
    with pytest.raises(ValueError, match="learning_rate"):
        bad.save(path)
    assert path.read_bytes() == old and sorted(os.listdir(tmp_path)) == ["m.fae"]


def test_a_save_that_fails_while_writing_keeps_the_old_file(fitted, X, tmp_path):
    """A real write failure: the file-size limit (RLIMIT_FSIZE) makes write() fail with EFBIG half
    way through the new, bigger file; the old file must stay as it was and no temporary remain."""
    pytest.importorskip("resource")
    path = tmp_path / "m.fae"
    small = Autoencoder(hidden_layer_sizes=(4,), epochs=1, random_state=0).fit(X)
    small.save(path)
    old = path.read_bytes()
    big = tmp_path / "big.pkl"
    big.write_bytes(pickle.dumps(fitted))
    code = textwrap.dedent(f"""
        import errno, pickle, resource, signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        est = pickle.loads(open({str(big)!r}, "rb").read())
        resource.setrlimit(resource.RLIMIT_FSIZE, ({len(old) + 1000}, {len(old) + 1000}))
        try:
            est.save({str(path)!r})
        except OSError as exc:
            print("failed", errno.errorcode.get(exc.errno))
        else:
            print("saved")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "failed EFBIG"
    assert path.read_bytes() == old
    assert sorted(os.listdir(tmp_path)) == ["big.pkl", "m.fae"]


def test_loading_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        fastae.load(tmp_path / "absent.fae")
    with pytest.raises(IsADirectoryError):
        fastae.load(tmp_path)
    (tmp_path / "text.fae").write_text("hello")
    with pytest.raises(ModelFileError, match="not a fastae model file"):
        fastae.load(tmp_path / "text.fae")
    assert issubclass(ModelFileError, ValueError)


# ---- corrupt and hostile files, in a subprocess under a memory limit ---------------------------

_LOADER = textwrap.dedent("""
    # Loads every candidate file under an address-space limit: a crash fails the parent's test,
    # and so does any MemoryError (a big allocation) or exception other than ModelFileError.
    import json, pickle, resource, sys
    import fastae
    from fastae import _core

    cases = pickle.load(open(sys.argv[1], "rb"))
    with open("/proc/self/status") as f:
        vm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    limit = vm + (256 << 20)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        bytearray(1 << 30)
        guard = "no limit"
    except MemoryError:
        guard = "limited"
    counts, odd, messages = {"rejected": 0, "loaded": 0}, [], {}
    for name, data in cases:
        try:
            model = _core.model_from_bytes(data)[0]
            model.get_params()
            counts["loaded"] += 1
            messages[name] = None
        except fastae.ModelFileError as exc:
            counts["rejected"] += 1
            messages[name] = str(exc)
        except BaseException as exc:
            odd.append(f"{name}: {type(exc).__name__}: {exc}")
    print(json.dumps({"guard": guard, "counts": counts, "odd": odd, "messages": messages}))
""")


def _load_all_limited(cases, tmp_path):
    (tmp_path / "cases.pkl").write_bytes(pickle.dumps(cases))
    out = subprocess.run([sys.executable, "-c", _LOADER, str(tmp_path / "cases.pkl")], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, f"the loader died (rc {out.returncode}): {out.stderr[-2000:]}"
    result = json.loads(out.stdout)
    assert result["guard"] == "limited", "the memory limit was not in force"
    assert result["odd"] == []
    return result


def test_every_truncation_and_byte_flip_is_a_clean_error(X, tmp_path):
    est = Autoencoder(hidden_layer_sizes=(3,), epochs=1, random_state=0).fit(X[:50, :6])
    data = _saved(est, tmp_path / "small.fae").read_bytes()
    rng = np.random.default_rng(0)
    cases = [(f"cut {n}", data[:n]) for n in range(len(data))]
    flips = []
    for i in range(len(data)):  # every byte, with a random non-zero xor
        bad = bytearray(data)
        bad[i] ^= int(rng.integers(1, 256))
        flips.append((f"flip {i}", bytes(bad)))
    result = _load_all_limited(cases + flips, tmp_path)
    assert result["counts"] == {"rejected": 2 * len(data), "loaded": 0}
    assert "truncated" in result["messages"]["cut 100"]
    print(f"{len(data)}-byte file: {len(data)} truncations and {len(data)} flipped bytes rejected")


def test_changes_behind_a_valid_checksum_load_or_fail_cleanly(X, tmp_path):
    """With the CRC recomputed each random change reaches the parser: it loads (a changed weight
    is still a model) or raises ModelFileError, and never allocates much or crashes."""
    est = Autoencoder(hidden_layer_sizes=(3,), epochs=1, random_state=0).fit(X[:50, :6])
    data = _saved(est, tmp_path / "small.fae").read_bytes()
    rng = np.random.default_rng(1)
    cases = []
    for k in range(3000):
        bad = bytearray(data)
        for i in rng.integers(24, len(data) - 4, size=int(rng.integers(1, 4))):
            bad[i] = int(rng.integers(0, 256))
        cases.append((f"change {k}", seal(bytes(bad))))
    result = _load_all_limited(cases, tmp_path)
    assert result["counts"]["rejected"] > 0 and result["counts"]["loaded"] > 0


def _hostile_cases():
    s = {"optimizer": "adam", "nesterov": False, "learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999,
         "epsilon": 1e-8, "momentum": 0.0}
    big = 2**31 - 1
    ok = build_file([3, 2, 3], "relu", "sigmoid", "bce", s, np.zeros(17))

    def patch(data, offset, fmt, value, reseal=True):
        data = bytearray(data)
        struct.pack_into("<" + fmt, data, offset, value)
        return seal(bytes(data)) if reseal else bytes(data)

    gib16 = 2**32  # parameters: 16 GiB of float32
    return [
        ("body size 2^63", patch(ok, 16, "Q", 2**63, reseal=False), "announces 9223372036854775808 bytes"),
        ("version 7", patch(ok, 8, "I", 7, reseal=False), "unsupported model file version 7"),
        ("big-endian", patch(ok, 12, "I", 0x04030201, reseal=False), "written big-endian"),
        ("2^32-1 widths", patch(ok, 24, "I", 2**32 - 1), "number of layer widths at byte 24 is 4294967295"),
        ("width 2^31", patch(ok, 28, "I", 2**31), "layer width 0 at byte 28 is 2147483648"),
        ("widths claiming 2^62 parameters",
         build_file([big, big], "relu", "sigmoid", "bce", s, [], param_count=big * big + big),
         f"claims {big * big + big} values"),
        ("16 GiB of weights claimed", build_file([2**16, 2**16 - 1], "relu", "sigmoid", "bce", s, [],
                                                 param_count=gib16 - 1), "claims 4294967295 values"),
        ("6 widths overflowing 2^64", build_file([big] * 6, "relu", "sigmoid", "bce", s, []),
         "more than 2\\^64 parameters"),
        ("4097 layers", build_file([1] * 4097, "relu", "sigmoid", "bce", s, np.zeros(2 * 4096)),
         "is 4097 \\(must be in \\[2, 4096\\]\\)"),
        ("m of 2^61 values",
         build_file([3, 2, 3], "relu", "sigmoid", "bce", s, np.zeros(17),
                    state={"config": s, "steps": 1, "m": np.zeros(17), "v": np.zeros(17)}).replace(
                        struct.pack("<Q", 17) + bytes(68) + struct.pack("<Q", 17),
                        struct.pack("<Q", 2**61) + bytes(68) + struct.pack("<Q", 17)),
         None),  # resealed below
        ("metadata of 4 GiB", patch(ok, len(ok) - 8, "I", 2**32 - 1), "metadata length at byte 168 is 4294967295"),
        ("NaN weight", build_file([3, 2, 3], "relu", "sigmoid", "bce", s, [np.nan] + [0] * 16), "value 0 is nan"),
        ("activation code 200", patch(ok, 40, "B", 200), "the activation at byte 40 has code 200"),
        ("infinite learning rate", patch(ok, 48, "d", float("inf")), "learning_rate must be finite"),
        ("negative steps", build_file([3, 2, 3], "relu", "sigmoid", "bce", s, np.zeros(17),
                                      state={"config": s, "steps": -5, "m": np.zeros(17), "v": np.zeros(17)}),
         "step count at byte 212 is negative"),
    ]


def test_hostile_headers_are_rejected_without_big_allocations(tmp_path):
    cases, expected = [], {}
    for name, data, match in _hostile_cases():
        if match is None:  # the m-length case: seal after the replacement
            data, match = seal(data), "the optimizer state m's length at byte .* is 2305843009213693952"
        cases.append((name, data))
        expected[name] = match
    result = _load_all_limited(cases, tmp_path)
    assert result["counts"] == {"rejected": len(cases), "loaded": 0}
    for name, match in expected.items():
        assert re.search(match, result["messages"][name]), (name, result["messages"][name])
