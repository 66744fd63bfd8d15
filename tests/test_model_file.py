"""Model files from Python: save/load, pickle, deepcopy and joblib round trips (same weights, same
outputs, same continued training), resuming the optimizer exactly, the byte layouts of
docs/model-format.md (version 2, which fastae writes, and version 1, which it still reads) checked
by an independent reader and writer written here from that document, the previous release's
version-1 files loading bit for bit, atomic saves, and corrupt or hostile files rejected cleanly
under a memory limit."""

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
from conftest import REPO

import fastae
from fastae import Autoencoder, ModelFileError, _core

# ---- an independent reference of docs/model-format.md -----------------------------------------

MAGIC = b"\x89FASTAE\n"
DOC = open(os.path.join(REPO, "docs", "model-format.md"), encoding="utf-8").read()


def _doc_table(rows_pattern):
    return [m.groups() for m in re.finditer(rows_pattern, DOC, re.M)]


# The codes table ("### Codes") and the settings' ids (OPTC), as the document states them.
DOC_CODES = {}
for _table, _code, _name in _doc_table(r"^\| (activation|loss|optimizer|initializer|noise) \| (\d+) \| `(\w+)` \|$"):
    DOC_CODES.setdefault(_table, {})[_name] = int(_code)
SETTING_IDS = {int(i): name for i, name in _doc_table(r"^\| (\d+) \| `(\w+)` \| [\w, ]+ \|$")}
# Codes as the library's tables give them (fastae/vocabulary.h, through the binding).
CODES = dict(_core.FILE_CODES)
NAMES = {table: {code: name for name, code in codes.items()} for table, codes in CODES.items()}


def layer_spec(units, activation, initializer="glorot_uniform", **options):
    """A layer as Model.spec() gives it: every key, the defaults unless given."""
    layer = {"units": units, "activation": activation, "alpha": 0.0, "initializer": initializer, "l1": 0.0,
             "l2": 0.0, "dropout": 0.0, "noise": "none", "noise_level": 0.0, "activity_l1": 0.0,
             "sparsity_target": 0.0, "sparsity_weight": 0.0, "contractive": 0.0, "tied_to": -1, "trainable": True}
    layer.update(options)
    return layer
# The state's slots of each optimizer, as torch names them (docs/model-format.md, OPTS).
SLOTS = {"adam": ["exp_avg", "exp_avg_sq"], "adamw": ["exp_avg", "exp_avg_sq"], "sgd": ["momentum_buffer"],
         "rmsprop": ["square_avg"]}
KNOWN = {"NETW": 1, "VARC": 1, "HEAD": 1, "PARM": 1, "OPTC": 1, "OPTS": 0, "META": 0}  # tag: flags, in file order


def seal(data):
    """Rewrites the body size and the CRC-32 (zlib's) so that a hand-made file reaches the parser."""
    data = bytearray(data)
    data[16:24] = struct.pack("<Q", len(data) - 28)
    data[-4:] = struct.pack("<I", zlib.crc32(bytes(data[:-4])))
    return bytes(data)


def file_of(version, body):
    return seal(MAGIC + struct.pack("<IIQ", version, 0x01020304, len(body)) + body + b"\0\0\0\0")


def settings_of(**changes):
    """Complete optimizer settings: OptimizerConfig's defaults, changed."""
    s = {"optimizer": "adam", "nesterov": False, "learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999,
         "epsilon": 1e-8, "momentum": 0.0, "weight_decay": 0.01, "rho": 0.9}
    s.update(changes)
    return s


# ---- version 1 ----

V1_ACTIVATIONS = ["linear", "relu", "sigmoid", "tanh"]  # version 1's codes: the index (frozen)
V1_LOSSES = ["mse", "bce"]
V1_OPTIMIZERS = ["adam", "sgd"]
V1_SETTINGS = ["learning_rate", "beta1", "beta2", "epsilon", "momentum"]


def v1_settings_block(s):
    return struct.pack("<BBxx5d", V1_OPTIMIZERS.index(s["optimizer"]), int(s["nesterov"]),
                       *(s[k] for k in V1_SETTINGS))


def build_v1(widths, activation, output_activation, loss, settings, params, state=None, metadata=b"",
             version=1, param_count=None):
    """A version-1 model file built from the document, field by field."""
    body = struct.pack("<I", len(widths)) + struct.pack(f"<{len(widths)}I", *widths)
    body += struct.pack("<BBBx", V1_ACTIVATIONS.index(activation), V1_ACTIVATIONS.index(output_activation),
                        V1_LOSSES.index(loss))
    body += v1_settings_block(settings)
    params = np.asarray(params, dtype="<f4")
    body += struct.pack("<Q", len(params) if param_count is None else param_count) + params.tobytes()
    if state is None:
        body += struct.pack("<Bxxx", 0)
    else:
        m, v = np.asarray(state["m"], "<f4"), np.asarray(state["v"], "<f4")
        body += struct.pack("<Bxxx", 1) + v1_settings_block(state["config"]) + struct.pack("<q", state["steps"])
        body += struct.pack("<Q", len(m)) + m.tobytes() + struct.pack("<Q", len(v)) + v.tobytes()
    body += struct.pack("<I", len(metadata)) + metadata
    return file_of(version, body)


class _Cursor:
    def __init__(self, data, pos, end):
        self.data, self.pos, self.end = data, pos, end

    def take(self, fmt):
        size = struct.calcsize("<" + fmt)
        assert self.pos + size <= self.end
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += size
        return values

    def floats(self, n):
        assert self.pos + 4 * n <= self.end
        out = np.frombuffer(self.data, "<f4", n, self.pos)
        self.pos += 4 * n
        return out


def check_frame(data, version):
    assert data[:8] == MAGIC
    assert struct.unpack_from("<IIQ", data, 8) == (version, 0x01020304, len(data) - 28)
    assert struct.unpack_from("<I", data, len(data) - 4)[0] == zlib.crc32(data[:-4])


def parse_v1(data):
    """Reads a version-1 model file by the document; returns its fields as a dict."""
    check_frame(data, 1)
    c = _Cursor(data, 24, len(data) - 4)

    def settings():
        kind, nesterov, *numbers = c.take("BBxx5d")
        return dict(zip(["optimizer", "nesterov", *V1_SETTINGS], [V1_OPTIMIZERS[kind], bool(nesterov), *numbers]))

    (n,) = c.take("I")
    out = {"widths": list(c.take(f"{n}I"))}
    a, o, l = c.take("BBBx")
    out.update(activation=V1_ACTIVATIONS[a], output_activation=V1_ACTIVATIONS[o], loss=V1_LOSSES[l],
               settings=settings())
    (p,) = c.take("Q")
    out["params"] = c.floats(p)
    (has_state,) = c.take("Bxxx")
    out["state"] = None
    if has_state:
        state = {"config": settings()}
        (state["steps"],) = c.take("q")
        for key in "mv":
            (k,) = c.take("Q")
            state[key] = c.floats(k)
        out["state"] = state
    (t,) = c.take("I")
    out["metadata"] = data[c.pos:c.pos + t]
    assert c.pos + t == c.end
    return out


# ---- version 2 ----

def section(tag, payload, flags=None):
    """{tag, flags, length, payload}; a known tag gets its documented flags unless told otherwise."""
    return tag.encode("latin-1") + struct.pack("<IQ", KNOWN[tag] if flags is None else flags, len(payload)) + payload


LAYER_NUMBERS = ["alpha", "l1", "l2", "dropout", "noise_level", "activity_l1", "sparsity_target", "sparsity_weight"]


def layer_record(layer, size=88):
    """units, activation, initializer, noise, a reserved byte, the 8 numbers (72 bytes); then
    contractive, tied_to + 1, the flags (bit 0: frozen) and 3 reserved bytes (88 bytes). Files
    written before tied weights have the 72-byte records."""
    record = struct.pack("<IBBBx8d", layer["units"], CODES["activation"][layer["activation"]],
                         CODES["initializer"][layer["initializer"]], CODES["noise"][layer["noise"]],
                         *(layer[k] for k in LAYER_NUMBERS))
    if size == 72:
        return record
    return record + struct.pack("<dIBxxx", layer["contractive"], layer["tied_to"] + 1, 0 if layer["trainable"] else 1)


def netw(spec, size=88):
    return struct.pack("<4I", spec["n_inputs"], len(spec["layers"]), spec["code_layer"], size) + b"".join(
        layer_record(layer, size) for layer in spec["layers"])


def varc(spec):
    """A variational network's VARC: kl_warmup_epochs, 4 reserved bytes, beta."""
    v = spec["variational"]
    return struct.pack("<I4xd", v["kl_warmup_epochs"], v["beta"])


def head(spec):
    return struct.pack("<Bxxxd", CODES["loss"][spec["loss"]], spec["huber_delta"])


def parm(params, count=None):
    params = np.asarray(params, dtype="<f4")
    return struct.pack("<Q", len(params) if count is None else count) + params.tobytes()


def settings_block(s):
    """Kind, flags (nesterov), 2 reserved, the count, then (id, value) by increasing id."""
    ids = sorted(SETTING_IDS)
    return struct.pack("<BBxxI", CODES["optimizer"][s["optimizer"]], int(s["nesterov"]), len(ids)) + b"".join(
        struct.pack("<Id", i, s[SETTING_IDS[i]]) for i in ids)


def slot(name, values):
    name = name.encode("ascii")
    values = np.asarray(values, dtype="<f4")
    return (struct.pack("<I", len(name)) + name + bytes(-len(name) % 4) + struct.pack("<Q", len(values))
            + values.tobytes())


def opts(state):
    names = SLOTS[state["config"]["optimizer"]]
    return (settings_block(state["config"]) + struct.pack("<qI", state["steps"], len(names))
            + b"".join(slot(name, state["mv"[k]]) for k, name in enumerate(names)))


def build_v2(spec, settings, params, state=None, metadata=b""):
    """A version-2 model file built from the document, section by section."""
    body = section("NETW", netw(spec)) + (section("VARC", varc(spec)) if "variational" in spec else b"")
    body += section("HEAD", head(spec)) + section("PARM", parm(params))
    body += section("OPTC", settings_block(settings))
    if state is not None:
        body += section("OPTS", opts(state))
    if metadata:
        body += section("META", metadata)
    return file_of(2, body)


def sections_of(data):
    """[(tag, flags, offset, payload)] of a well-framed version-2 file."""
    out, pos = [], 24
    while pos < len(data) - 4:
        tag = data[pos:pos + 4].decode("latin-1")
        flags, length = struct.unpack_from("<IQ", data, pos + 4)
        out.append((tag, flags, pos, data[pos + 16:pos + 16 + length]))
        pos += 16 + length
    assert pos == len(data) - 4
    return out


def parse_v2(data):
    """Reads a version-2 model file by the document; returns its fields as a dict."""
    check_frame(data, 2)
    sections = sections_of(data)
    known = [(tag, flags) for tag, flags, _, _ in sections if tag in KNOWN]
    assert all(flags == KNOWN[tag] for tag, flags in known)
    tags = [tag for tag, _ in known]
    assert tags == sorted(tags, key=list(KNOWN).index) and len(set(tags)) == len(tags)
    payloads = {tag: payload for tag, _, _, payload in sections if tag in KNOWN}

    def settings(c):
        kind, flags, count = c.take("BBxxI")
        assert flags in (0, 1)
        s = {"optimizer": NAMES["optimizer"][kind], "nesterov": bool(flags)}
        for _ in range(count):
            i, value = c.take("Id")
            s[SETTING_IDS[i]] = value
        return s

    out = {"tags": [tag for tag, _, _, _ in sections]}
    c = _Cursor(payloads["NETW"], 0, len(payloads["NETW"]))
    n_inputs, n, code_layer, record = c.take("4I")
    assert record in (72, 88)
    layers = []
    for _ in range(n):
        units, a, i, noise, *numbers = c.take("IBBBx8d")
        layers.append({"units": units, "activation": NAMES["activation"][a], "initializer": NAMES["initializer"][i],
                       "noise": NAMES["noise"][noise], **dict(zip(LAYER_NUMBERS, numbers)),
                       "contractive": 0.0, "tied_to": -1, "trainable": True})
        if record == 88:
            contractive, tied, flags = c.take("dIBxxx")
            assert flags in (0, 1)
            layers[-1].update(contractive=contractive, tied_to=tied - 1, trainable=flags == 0)
    assert c.pos == c.end
    loss, huber_delta = struct.unpack("<Bxxxd", payloads["HEAD"])
    out["spec"] = {"n_inputs": n_inputs, "code_layer": code_layer, "loss": NAMES["loss"][loss],
                   "huber_delta": huber_delta, "layers": layers}
    if "VARC" in payloads:
        warmup, beta = struct.unpack("<I4xd", payloads["VARC"])
        out["spec"]["variational"] = {"beta": beta, "kl_warmup_epochs": warmup}
    c = _Cursor(payloads["PARM"], 0, len(payloads["PARM"]))
    (p,) = c.take("Q")
    out["params"] = c.floats(p)
    assert c.pos == c.end
    c = _Cursor(payloads["OPTC"], 0, len(payloads["OPTC"]))
    out["settings"] = settings(c)
    assert c.pos == c.end
    out["state"] = None
    if "OPTS" in payloads:
        c = _Cursor(payloads["OPTS"], 0, len(payloads["OPTS"]))
        state = {"config": settings(c)}
        state["steps"], k = c.take("qI")
        state["slots"] = {}
        for _ in range(k):
            (length,) = c.take("I")
            name = c.take(f"{length}s")[0].decode("ascii")
            assert c.take(f"{-length % 4}s")[0] == bytes(-length % 4)
            (count,) = c.take("Q")
            state["slots"][name] = c.floats(count)
        assert c.pos == c.end and list(state["slots"]) == SLOTS[state["config"]["optimizer"]]
        out["state"] = state
    out["metadata"] = payloads.get("META", b"")
    return out


def state_slots(state):
    """The binding's optimizer state {"m", "v"} as the file's named slots."""
    names = SLOTS[state["config"]["optimizer"]]
    return {name: state["mv"[k]] for k, name in enumerate(names)}


def test_the_documented_codes_and_setting_ids_are_the_librarys():
    """The document's code table is the library's (FILE_CODES, from vocabulary.h), and the names of
    the setting ids are the keys of the settings dicts; version 1's codes are version 2's."""
    assert DOC_CODES == CODES
    assert set(CODES) == {"activation", "loss", "optimizer", "initializer", "noise"}
    for table, names in [("activation", _core.ACTIVATIONS), ("loss", _core.LOSSES), ("optimizer", _core.OPTIMIZERS),
                         ("initializer", _core.INITIALIZERS), ("noise", _core.NOISES)]:
        assert set(CODES[table]) == set(names) and len(set(CODES[table].values())) == len(names)
    assert sorted(SETTING_IDS) == list(range(1, 8))
    assert set(SETTING_IDS.values()) | {"optimizer", "nesterov"} == set(settings_of())
    model = _core.Model([3, 2, 3], "relu", "sigmoid", "bce")
    assert set(_core.model_from_bytes(_core.model_to_bytes(model, None, True, b""))[1]) == set(settings_of())
    for names, table in [(V1_ACTIVATIONS, "activation"), (V1_LOSSES, "loss"), (V1_OPTIMIZERS, "optimizer")]:
        assert [CODES[table][n] for n in names] == list(range(len(names)))
    assert set(SLOTS) == set(_core.OPTIMIZERS)
    # Every key of a layer's spec has its place in the record.
    assert set(_core.Model([3, 2, 3], "relu", "sigmoid", "bce").spec()["layers"][0]) == set(layer_spec(1, "relu"))

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
    meta = json.loads(parse_v2(path.read_bytes())["metadata"].decode("utf-8"))
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
    f = parse_v2(data)
    assert f["tags"] == ["NETW", "HEAD", "PARM", "OPTC", "OPTS", "META"]
    model = fitted._model
    assert f["spec"] == model.spec()
    assert [f["spec"]["n_inputs"]] + [layer["units"] for layer in f["spec"]["layers"]] == [64, 16, 6, 16, 64]
    assert [layer["activation"] for layer in f["spec"]["layers"]] == ["relu"] * 3 + ["sigmoid"]
    assert f["spec"]["loss"] == "bce" and f["spec"]["code_layer"] == 1
    settings = _core.model_from_bytes(data)[1]
    assert f["settings"] == settings
    assert {k: f["settings"][k] for k in ("optimizer", "learning_rate", "beta1", "beta2", "epsilon")} == {
        "optimizer": "adam", "learning_rate": 3e-3, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8}
    assert np.array_equal(f["params"], model.get_params())
    state = model.optimizer_state()
    assert f["state"]["steps"] == state["steps"] == 3 * 7 and f["state"]["config"] == state["config"]
    assert list(f["state"]["slots"]) == ["exp_avg", "exp_avg_sq"]
    for name, values in state_slots(state).items():
        assert np.array_equal(f["state"]["slots"][name], values)
    # The same file, written here from the document, byte for byte.
    assert build_v2(model.spec(), f["settings"], model.get_params(), state=state, metadata=f["metadata"]) == data
    # Every float array starts at a multiple of 4 bytes.
    assert data.index(np.asarray(model.get_params(), "<f4").tobytes()) % 4 == 0


def test_tied_contractive_and_frozen_layers_match_the_documented_layout():
    """The 88-byte record's tail as the document writes it, and a file of 72-byte records (written
    before tied weights) loading with the defaults and saving as 88-byte records."""
    spec = {"n_inputs": 5, "code_layer": 0, "loss": "bce", "huber_delta": 1.0,
            "layers": [layer_spec(3, "sigmoid", contractive=0.25), layer_spec(3, "relu", trainable=False),
                       layer_spec(5, "sigmoid", tied_to=0)]}
    model = _core.Model.from_spec(spec)
    model.init_weights(2)
    assert model.spec() == spec and model.n_params == 5 * 3 + 3 + 3 * 3 + 3 + 5  # the tied layer: its bias only
    data = _core.model_to_bytes(model, None, True, b"")
    f = parse_v2(data)
    assert f["spec"] == spec
    assert build_v2(spec, f["settings"], model.get_params()) == data
    plain = {**spec, "layers": [layer_spec(3, "sigmoid"), layer_spec(5, "sigmoid")]}
    old = file_of(2, section("NETW", netw(plain, 72)) + section("HEAD", head(plain)) +
                  section("PARM", parm(np.zeros(5 * 3 + 3 + 3 * 5 + 5))) +
                  section("OPTC", settings_block(f["settings"])))
    back, _, _ = _core.model_from_bytes(old)
    assert back.spec() == plain
    assert parse_v2(_core.model_to_bytes(back, None, True, b""))["spec"] == plain


def _every_kind_of_network():
    """Networks using every activation, loss and initializer of the library's tables, with per-layer
    options: every pairing of output activation and loss, those the library refuses left out."""
    acts, inits = _core.ACTIVATIONS, _core.INITIALIZERS
    specs = []
    for i, loss in enumerate(_core.LOSSES):
        for k, output in enumerate(acts):
            hidden = [acts[(k + 1) % len(acts)], acts[(k + 2 + i) % len(acts)]]
            layers = [layer_spec(units, a, inits[(i + k + j) % len(inits)], alpha=0.25 + 0.5 * j, l1=1e-4 * (j + 1),
                                 l2=0.0 if j == 1 else 2.5e-3, dropout=0.0 if j == 2 else 0.125 * (j + 1),
                                 activity_l1=0.0 if j == 2 else 1e-3 * (j + 1))
                      for j, (units, a) in enumerate([(4, hidden[0]), (3, hidden[1]), (5, output)])]
            noise = _core.NOISES[(i + k) % len(_core.NOISES)]
            layers[0].update(noise=noise, noise_level=0.0 if noise == "none" else 0.125)
            for hidden_layer in layers[:2]:
                if hidden_layer["activation"] == "sigmoid":  # the sparsity penalty needs one
                    hidden_layer.update(sparsity_target=0.05, sparsity_weight=0.5)
            spec = {"n_inputs": 5, "code_layer": (i + k) % 3, "loss": loss, "huber_delta": 0.5 + k, "layers": layers}
            try:
                _core.Model.from_spec(spec)
            except ValueError:
                continue  # softmax inside, or an output the loss does not take
            specs.append(spec)
    return specs


def test_every_name_of_every_table_round_trips_byte_for_byte():
    specs = _every_kind_of_network()
    used = {"activation": set(), "initializer": set(), "loss": set(), "noise": set(), "sparsity": set()}
    x = np.random.default_rng(0).uniform(size=(4, 5)).astype(np.float32)
    for seed, spec in enumerate(specs):
        model = _core.Model.from_spec(spec)
        model.init_weights(seed)
        assert model.spec() == spec
        used["loss"].add(spec["loss"])
        for layer in spec["layers"]:
            used["activation"].add(layer["activation"])
            used["initializer"].add(layer["initializer"])
            used["noise"].add(layer["noise"])
            used["sparsity"].add(layer["sparsity_weight"] > 0)
        data = _core.model_to_bytes(model, settings_of(), True, b"")
        assert data == build_v2(spec, settings_of(), model.get_params())
        assert parse_v2(data)["spec"] == spec
        back, settings, metadata = _core.model_from_bytes(data)
        assert back.spec() == spec and settings == settings_of() and metadata == b""
        assert np.array_equal(back.get_params(), model.get_params())
        assert np.array_equal(back.predict(x), model.predict(x))
    assert used == {"activation": set(_core.ACTIVATIONS), "initializer": set(_core.INITIALIZERS),
                    "loss": set(_core.LOSSES), "noise": set(_core.NOISES), "sparsity": {False, True}}
    # Every optimizer, with its state's slots.
    rng = np.random.default_rng(1)
    model = _core.Model.from_spec(specs[0])
    for kind in _core.OPTIMIZERS:
        settings = settings_of(optimizer=kind, learning_rate=0.25, momentum=0.5, nesterov=kind == "sgd",
                               weight_decay=0.125, rho=0.75)
        n = model.n_params
        state = {"config": settings, "steps": 7, "m": rng.uniform(size=n).astype(np.float32),
                 "v": rng.uniform(size=n if len(SLOTS[kind]) == 2 else 0).astype(np.float32)}
        model.set_optimizer_state(state)
        data = _core.model_to_bytes(model, None, True, b"state")
        assert data == build_v2(specs[0], settings, model.get_params(), state=state, metadata=b"state")
        f = parse_v2(data)
        assert list(f["state"]["slots"]) == SLOTS[kind] and f["state"]["config"] == settings
        back, back_settings, _ = _core.model_from_bytes(data)
        got = back.optimizer_state()
        assert back_settings == settings and got["config"] == settings and got["steps"] == 7
        assert np.array_equal(got["m"], state["m"]) and np.array_equal(got["v"], state["v"])


# ---- version 1 ---------------------------------------------------------------------------------

V1_FILES = os.path.join(REPO, "tests", "data", "model_v1")


def _check_v1_model(model, settings, what, expected, name, x):
    """model (and its optimizer settings), read from tests/data/model_v1/<name>.fae, is what fastae 0.1.0 read."""
    widths, activation, output_activation, loss = json.loads(str(expected[f"{name}/layout"]))
    settings_then = json.loads(str(expected[f"{name}/settings"]))
    spec = model.spec()
    assert [spec["n_inputs"]] + [layer["units"] for layer in spec["layers"]] == widths, what
    assert [layer["activation"] for layer in spec["layers"]] == [activation] * (len(widths) - 2) + [
        output_activation], what
    assert spec["loss"] == loss, what
    assert np.array_equal(model.get_params(), expected[f"{name}/params"]), what
    # Version 1 stores neither weight_decay nor rho: OptimizerConfig's defaults.
    assert settings == {**settings_then, "weight_decay": 0.01, "rho": 0.9}, what
    state = model.optimizer_state()
    if f"{name}/m" in expected:
        assert state["steps"] == int(expected[f"{name}/steps"]), what
        assert np.array_equal(state["m"], expected[f"{name}/m"]), what
        assert np.array_equal(state["v"], expected[f"{name}/v"]), what
    else:
        assert state is None, what
    assert np.array_equal(model.predict(x), expected[f"{name}/predict"]), what


def test_version_1_files_of_the_previous_release_load_bit_for_bit():
    """tests/data/model_v1: files fastae 0.1.0 wrote, and what it read from them (expected.npz). They
    load to identical parameters, optimizer state, settings and predictions; saved again, they are
    version 2 files that load to the same."""
    expected = np.load(os.path.join(V1_FILES, "expected.npz"))
    names = sorted(name[:-4] for name in os.listdir(V1_FILES) if name.endswith(".fae"))
    assert names == ["ae_adam_bce", "ae_sgd_tanh_mse", "cpp_mlp_no_state"]
    for name in names:
        path = os.path.join(V1_FILES, name + ".fae")
        data = open(path, "rb").read()
        assert struct.unpack_from("<I", data, 8)[0] == 1
        widths = json.loads(str(expected[f"{name}/layout"]))[0]
        x = np.random.default_rng(2).uniform(size=(7, widths[0])).astype(np.float32)

        model, settings, metadata = _core.load_model(os.fsencode(path))
        _check_v1_model(model, settings, f"{name} as loaded", expected, name, x)
        # The document's reader reads the same.
        f = parse_v1(data)
        assert np.array_equal(f["params"], model.get_params()) and f["metadata"] == metadata
        # Written back by the document's writer, it is the very file: nothing was lost.
        assert build_v1(f["widths"], f["activation"], f["output_activation"], f["loss"], settings, model.get_params(),
                        state=model.optimizer_state(), metadata=metadata) == data
        # Saved again: version 2, with the same content.
        again = _core.model_to_bytes(model, settings, True, metadata)
        assert parse_v2(again)["metadata"] == metadata
        model2, settings2, metadata2 = _core.model_from_bytes(again)
        _check_v1_model(model2, settings2, f"{name} saved as version 2", expected, name, x)
        assert metadata2 == metadata
        if name.startswith("ae_"):  # written by ae.save: the estimator loads it too
            est = fastae.load(path)
            assert np.array_equal(est.predict(x), expected[f"{name}/predict"])


def test_version_1_files_from_the_document_load_and_save_as_version_2(fitted, X):
    model = fitted._model
    state = model.optimizer_state()
    settings = settings_of(learning_rate=0.125, momentum=0.5, nesterov=True)
    data = build_v1(list(model.layer_sizes), "relu", "sigmoid", "bce", settings, model.get_params(),
                    state=state, metadata=b"{}")
    back, back_settings, metadata = _core.model_from_bytes(data)
    assert back_settings == settings and metadata == b"{}"
    assert np.array_equal(back.get_params(), model.get_params())
    got = back.optimizer_state()
    assert got["steps"] == state["steps"] and np.array_equal(got["m"], state["m"])
    assert np.array_equal(got["v"], state["v"]) and got["config"] == state["config"]
    assert np.array_equal(back.encode(X), model.encode(X))
    assert back.spec() == {**model.spec(), "layers": [{**layer, "initializer": "glorot_uniform"}
                                                      for layer in model.spec()["layers"]]}
    again = _core.model_to_bytes(back, back_settings, True, metadata)
    assert parse_v2(again)["settings"] == settings
    assert again == build_v2(back.spec(), settings, model.get_params(), state=got, metadata=b"{}")


def test_a_file_without_metadata_gets_hyperparameters_from_the_network(X):
    """As a C++ program writes it (fastae::save_model with no metadata), in either version."""
    model = Autoencoder(hidden_layer_sizes=(9, 3), activation="tanh", random_state=0, epochs=1).fit(X)._model
    settings = settings_of(optimizer="sgd", learning_rate=0.25, beta1=0.5, beta2=0.75, epsilon=1e-3)
    files = [build_v1(list(model.layer_sizes), "tanh", "sigmoid", "bce", settings, model.get_params()),
             build_v2(model.spec(), settings, model.get_params())]
    for data in files:
        est = Autoencoder._from_model(*_core.model_from_bytes(data))
        assert est.get_params() == {**Autoencoder().get_params(), "hidden_layer_sizes": (9, 3),
                                    "activation": "tanh", "optimizer": "sgd", "learning_rate": 0.25,
                                    "beta_1": 0.5, "beta_2": 0.75, "epsilon": 1e-3, "momentum": 0.0,
                                    "nesterov": False}
        assert np.array_equal(est._model.get_params(), model.get_params()) and est._model.optimizer_state() is None
    # A plain MLP (not mirrored) is a valid model file but not an Autoencoder.
    spec = {"n_inputs": 4, "code_layer": 0, "loss": "mse", "huber_delta": 1.0,
            "layers": [layer_spec(3, "relu"), layer_spec(2, "linear")]}
    for mlp in [build_v1([4, 3, 2], "relu", "linear", "mse", settings, np.zeros(4 * 3 + 3 + 3 * 2 + 2)),
                build_v2(spec, settings, np.zeros(4 * 3 + 3 + 3 * 2 + 2))]:
        assert _core.model_from_bytes(mlp)[0].layer_sizes == [4, 3, 2]
        with pytest.raises(ModelFileError, match="not a mirrored autoencoder"):
            Autoencoder._from_model(*_core.model_from_bytes(mlp))


def _small_spec(output="sigmoid", loss="bce"):
    """3 -> 2 -> 3, relu then `output`."""
    return {"n_inputs": 3, "code_layer": 0, "loss": loss, "huber_delta": 1.0,
            "layers": [layer_spec(2, "relu"), layer_spec(3, output)]}


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
@pytest.mark.parametrize("version", [1, 2])
def test_bad_metadata_is_a_model_file_error(metadata, match, version):
    spec = {**_small_spec(), "n_inputs": 4,
            "layers": [{**layer, "units": u} for layer, u in zip(_small_spec()["layers"], [3, 4])]}
    params = np.zeros(4 * 3 + 3 + 3 * 4 + 4)
    data = (build_v1([4, 3, 4], "relu", "sigmoid", "bce", settings_of(), params, metadata=metadata) if version == 1
            else build_v2(spec, settings_of(), params, metadata=metadata))
    with pytest.raises(ModelFileError, match=match):
        Autoencoder._from_model(*_core.model_from_bytes(data))


def test_unknown_optional_sections_are_skipped():
    """A section with a tag this fastae does not know and flags 0 is skipped wherever it is (a later
    fastae may add such sections); saved again, the file is what it was without it."""
    state = {"config": settings_of(), "steps": 3, "m": np.zeros(17, np.float32), "v": np.ones(17, np.float32)}
    base = build_v2(_small_spec(), settings_of(), np.arange(17) / 17, state=state, metadata=b"meta")
    parts = [data for _, _, _, data in sections_of(base)]
    tags = [tag for tag, _, _, _ in sections_of(base)]
    extra = section("XTRA", pickle.dumps(os.system), flags=0)
    for at in range(len(parts) + 1):
        body = b"".join(section(tag, data) for tag, data in zip(tags[:at], parts[:at])) + extra + b"".join(
            section(tag, data) for tag, data in zip(tags[at:], parts[at:]))
        data = file_of(2, body)
        assert parse_v2(data)["tags"] == tags[:at] + ["XTRA"] + tags[at:]
        model, settings, metadata = _core.model_from_bytes(data)
        assert np.array_equal(model.get_params(), np.float32(np.arange(17) / 17)) and metadata == b"meta"
        assert _core.model_to_bytes(model, settings, True, metadata) == base


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
    model = est._model
    old = build_v1(list(model.layer_sizes), "relu", "sigmoid", "bce", settings_of(), model.get_params(),
                   state=model.optimizer_state(), metadata=b"{}")
    rng = np.random.default_rng(0)
    cases = []
    for label, blob in [("v2", data), ("v1", old)]:
        cases += [(f"{label} cut {n}", blob[:n]) for n in range(len(blob))]
        for i in range(len(blob)):  # every byte, with a random non-zero xor
            bad = bytearray(blob)
            bad[i] ^= int(rng.integers(1, 256))
            cases.append((f"{label} flip {i}", bytes(bad)))
    result = _load_all_limited(cases, tmp_path)
    assert result["counts"] == {"rejected": 2 * (len(data) + len(old)), "loaded": 0}
    assert "truncated" in result["messages"]["v2 cut 100"]
    print(f"{len(data)}-byte file: {len(data)} truncations and {len(data)} flipped bytes rejected")


def test_changes_behind_a_valid_checksum_load_or_fail_cleanly(X, tmp_path):
    """With the CRC recomputed each random change reaches the parser: it loads (a changed weight
    is still a model) or raises ModelFileError, and never allocates much or crashes."""
    est = Autoencoder(hidden_layer_sizes=(3,), epochs=1, random_state=0).fit(X[:50, :6])
    data = _saved(est, tmp_path / "small.fae").read_bytes()
    model = est._model
    old = build_v1(list(model.layer_sizes), "relu", "sigmoid", "bce", settings_of(), model.get_params(),
                   state=model.optimizer_state(), metadata=b"{}")
    rng = np.random.default_rng(1)
    cases = []
    for label, blob in [("v2", data), ("v1", old)]:
        for k in range(1500):
            bad = bytearray(blob)
            for i in rng.integers(24, len(blob) - 4, size=int(rng.integers(1, 4))):
                bad[i] = int(rng.integers(0, 256))
            cases.append((f"{label} change {k}", seal(bytes(bad))))
    result = _load_all_limited(cases, tmp_path)
    for label in ("v1", "v2"):
        outcomes = [message for name, message in result["messages"].items() if name.startswith(label)]
        assert None in outcomes and any(outcomes), label  # some load, some are rejected


def _hostile_v1_cases():
    s = settings_of()
    big = 2**31 - 1
    ok = build_v1([3, 2, 3], "relu", "sigmoid", "bce", s, np.zeros(17))

    def patch(data, offset, fmt, value, reseal=True):
        data = bytearray(data)
        struct.pack_into("<" + fmt, data, offset, value)
        return seal(bytes(data)) if reseal else bytes(data)

    gib16 = 2**32  # parameters: 16 GiB of float32
    with_state = build_v1([3, 2, 3], "relu", "sigmoid", "bce", s, np.zeros(17),
                          state={"config": s, "steps": 1, "m": np.zeros(17), "v": np.zeros(17)})
    return [
        ("body size 2^63", patch(ok, 16, "Q", 2**63, reseal=False), "announces 9223372036854775808 bytes"),
        ("version 7", patch(ok, 8, "I", 7, reseal=False), "unsupported model file version 7 .*reads versions 1 and 2"),
        ("big-endian", patch(ok, 12, "I", 0x04030201, reseal=False), "written big-endian"),
        ("2^32-1 widths", patch(ok, 24, "I", 2**32 - 1), "number of layer widths at byte 24 is 4294967295"),
        ("width 2^31", patch(ok, 28, "I", 2**31), "layer width 0 at byte 28 is 2147483648"),
        ("widths claiming 2^62 parameters",
         build_v1([big, big], "relu", "sigmoid", "bce", s, [], param_count=big * big + big),
         f"claims {big * big + big} values"),
        ("16 GiB of weights claimed", build_v1([2**16, 2**16 - 1], "relu", "sigmoid", "bce", s, [],
                                               param_count=gib16 - 1), "claims 4294967295 values"),
        ("6 widths overflowing 2^64", build_v1([big] * 6, "relu", "sigmoid", "bce", s, []),
         "more than 2\\^64 parameters"),
        ("4097 layers", build_v1([1] * 4097, "relu", "sigmoid", "bce", s, np.zeros(2 * 4096)),
         "is 4097 \\(must be in \\[2, 4096\\]\\)"),
        ("m of 2^61 values",
         seal(with_state.replace(struct.pack("<Q", 17) + bytes(68) + struct.pack("<Q", 17),
                                 struct.pack("<Q", 2**61) + bytes(68) + struct.pack("<Q", 17))),
         "the optimizer state m's length at byte .* is 2305843009213693952"),
        ("metadata of 4 GiB", patch(ok, len(ok) - 8, "I", 2**32 - 1), "metadata length at byte 168 is 4294967295"),
        ("NaN weight", build_v1([3, 2, 3], "relu", "sigmoid", "bce", s, [np.nan] + [0] * 16), "value 0 is nan"),
        ("activation code 200", patch(ok, 40, "B", 200), "the activation at byte 40 has code 200"),
        # Version 1 knows the names it had, whatever version 2 knows.
        ("activation code 4", patch(ok, 40, "B", 4), "the activation at byte 40 has code 4 \\(known codes: 0 to 3\\)"),
        ("optimizer code 2", patch(ok, 44, "B", 2), "optimizer kind at byte 44 has code 2 \\(known codes: 0 to 1\\)"),
        ("infinite learning rate", patch(ok, 48, "d", float("inf")), "learning_rate must be finite"),
        ("negative steps", build_v1([3, 2, 3], "relu", "sigmoid", "bce", s, np.zeros(17),
                                    state={"config": s, "steps": -5, "m": np.zeros(17), "v": np.zeros(17)}),
         "step count at byte 212 is negative"),
    ]


def _hostile_v2_cases():
    """Hostile version-2 files, from the small file whose sections lie at NETW 24, HEAD 200, PARM 228,
    OPTC 320, OPTS 428 and META 728 (docs/model-format.md, "An example", with bce, written with the
    72-byte layer records of files from before tied weights, which the reader still takes); then
    the fields of the 88-byte record."""
    spec = _small_spec()
    s = settings_of()
    zeros = np.zeros(17)
    state = {"config": s, "steps": 3, "m": zeros, "v": zeros}
    big = 2**31 - 1

    def build(netw_=None, head_=None, parm_=None, optc_=None, opts_=None, meta_=b"meta", tags=None, extra=()):
        payloads = {"NETW": netw(spec, 72) if netw_ is None else netw_, "HEAD": head(spec) if head_ is None else head_,
                    "PARM": parm(zeros) if parm_ is None else parm_,
                    "OPTC": settings_block(s) if optc_ is None else optc_,
                    "OPTS": opts(state) if opts_ is None else opts_, "META": meta_}
        body = b"".join(section(tag, payloads[tag]) for tag in tags or [t for t in KNOWN if t != "VARC"])
        for at, blob in extra:  # (byte offset in the body, a whole section)
            body = body[:at] + blob + body[at:]
        return file_of(2, body)

    def patched(blob, offset, fmt, value):
        blob = bytearray(blob)
        struct.pack_into("<" + fmt, blob, offset, value)
        return bytes(blob)

    def layers(*units, act="relu"):
        return {**spec, "n_inputs": big,
                "layers": [{**spec["layers"][0], "units": u, "activation": act} for u in units]}

    nan, inf = float("nan"), float("inf")
    ok = build()
    assert len(ok) == 752
    wide = {**spec, "n_inputs": 2**16, "layers": [{**spec["layers"][0], "units": 2**16 - 1}]}
    return [
        # Framing.
        ("unknown required section", build(extra=[(176, section("ZZZZ", b"abc", flags=1))]),
         "section 'ZZZZ' at byte 200: it is marked required, and fastae .* does not know it"),
        ("unknown flag bits", build(extra=[(176, section("ZZZZ", b"", flags=4))]),
         "section 'ZZZZ' at byte 200: its flags at byte 204 are 0x00000004"),
        ("required flag on OPTS", seal(patched(ok, 432, "I", 1)), None),
        ("duplicate NETW", build(tags=["NETW", "NETW", "HEAD", "PARM", "OPTC"]),
         "section NETW at byte 200: a second NETW section \\(the first is at byte 24\\)"),
        ("missing PARM", build(tags=["NETW", "HEAD", "OPTC"]),
         "the required section PARM is missing \\(before OPTC at byte 228"),
        ("no sections", file_of(2, b""), "the required section NETW is missing \\(the sections end at byte 24"),
        ("META before OPTS", build(tags=["NETW", "HEAD", "PARM", "OPTC", "META", "OPTS"]),
         "section OPTS at byte 448: it comes after META \\(at byte 428\\)"),
        ("section length 2^63", seal(patched(ok, 236, "Q", 2**63)),
         "section PARM at byte 228: its length at byte 236 is 9223372036854775808 but only 504 bytes remain"),
        ("a cut section header", seal(ok[:-4] + b"XTR" + ok[-4:]), "a section header at byte 748 needs 16 bytes"),
        ("bytes after HEAD's fields", build(head_=head(spec) + b"\0\0\0\0"),
         "section HEAD at byte 200: 4 unexpected bytes at byte 228"),
        # Counts larger than the bytes, and sizes no file could hold.
        ("2^32-1 layers", build(netw_=patched(netw(spec, 72), 4, "I", 2**32 - 1)),
         "section NETW at byte 24: the layer count at byte 44 is 4294967295 \\(must be in \\[1, 4095\\]\\)"),
        ("4095 layers in 96 bytes", build(netw_=patched(netw(spec, 72), 4, "I", 4095)),
         "the layer records at byte 56 claims 4095 values of 72 bytes but only 144 bytes remain"),
        ("record size 48", build(netw_=patched(netw(spec, 72), 12, "I", 48)),
         "the layer record size at byte 52 is 48; version 2 records are 88 bytes \\(72 in files written before"),
        ("72-byte records read as 88", build(netw_=patched(netw(spec, 72), 12, "I", 88)),
         "the layer records at byte 56 claims 2 values of 88 bytes but only 144 bytes remain"),
        # The 88-byte record's tail (NETW payload byte k is file byte 40 + k; records at 16 and 104).
        ("NaN contractive", build(netw_=patched(netw(spec), 16 + 72, "d", nan)),
         "layers\\[0\\].contractive at byte 128 is nan"),
        ("tied to itself", build(netw_=patched(netw(spec), 104 + 80, "I", 2)),
         "layers\\[1\\].tied_to \\+ 1 at byte 224 is 2 \\(must be in \\[0, 1\\]\\)"),
        ("unknown flag", build(netw_=patched(netw(spec), 16 + 84, "B", 2)), "layers\\[0\\].flags at byte 140 is 2"),
        ("reserved byte", build(netw_=patched(netw(spec), 104 + 87, "B", 1)),
         "layers\\[1\\].reserved bytes at byte 231 must be 0, got 1"),
        ("contractive on relu", build(netw_=patched(netw(spec), 16 + 72, "d", 0.5)), "sigmoid or tanh"),
        ("code layer -1", build(netw_=patched(netw(spec, 72), 8, "i", -1)), "code_layer at byte 48 is 4294967295"),
        ("widths claiming 2^63 parameters", build(netw_=netw(layers(big, big), 72)),
         "section HEAD at byte 200: the network of NETW \\(at byte 24\\) and this HEAD has 9223372032559808512 "
         "parameters, more than the \\d+ bytes after HEAD could hold"),
        ("16 GiB of weights claimed", build(netw_=netw(wide, 72), head_=head({**spec, "loss": "mse"})),
         "has 4294967295 parameters, more than"),
        ("6 layers overflowing 2^64", build(netw_=netw({**layers(*[big] * 6), "code_layer": 2}, 72)),
         "its layer widths give more than 2\\^64 parameters"),
        ("PARM count 2^61", build(parm_=parm(zeros, count=2**61)),
         "section PARM at byte 228: the parameter count at byte 244 is 2305843009213693952 but the network has 17"),
        ("PARM of 17 in 40 bytes", build(parm_=parm(zeros)[:48]),
         "the parameters at byte 252 claims 17 values of 4 bytes but only 40 bytes remain"),
        ("slot of 2^61 values", build(opts_=patched(opts(state), 116, "Q", 2**61)),
         "section OPTS at byte 428: slot exp_avg's length at byte 560 is 2305843009213693952 but the model has 17"),
        ("2^32-1 settings", build(optc_=patched(settings_block(s), 4, "I", 2**32 - 1)),
         "the settings at byte 344 claims 4294967295 values of 12 bytes"),
        ("metadata of 1 MiB + 1", build(meta_=b"m" * (2**20 + 1)), "holds 1048577 bytes of metadata"),
        ("empty META", build(meta_=b""), "section META at byte 728: it is empty"),
        # Bad codes.
        ("activation code 200", build(netw_=patched(netw(spec, 72), 20, "B", 200)),
         "layers\\[0\\].activation at byte 60 has code 200 \\(known codes: 0 linear, 1 relu"),
        ("initializer code 77", build(netw_=patched(netw(spec, 72), 21, "B", 77)),
         "layers\\[0\\].initializer at byte 61 has code 77"),
        ("loss code 99", build(head_=patched(head(spec), 0, "B", 99)),
         "section HEAD at byte 200: the loss at byte 216 has code 99"),
        ("optimizer code 9", build(optc_=patched(settings_block(s), 0, "B", 9)),
         "section OPTC at byte 320: the settings: the optimizer kind at byte 336 has code 9"),
        ("unknown setting id", build(optc_=patched(settings_block(s), 80, "I", 99)),
         "setting id 99 at byte 416 is unknown to fastae"),
        ("setting ids swapped", build(optc_=patched(patched(settings_block(s), 8, "I", 2), 20, "I", 1)),
         "setting id 2 \\(beta1\\) at byte 344 is out of place"),
        # Non-finite values.
        ("NaN alpha", build(netw_=patched(netw(spec, 72), 24, "d", nan)), "layers\\[0\\].alpha at byte 64 is nan"),
        ("infinite l2", build(netw_=patched(netw(spec, 72), 88 + 24, "d", inf)), "layers\\[1\\].l2 at byte 152 is inf"),
        ("NaN noise_level", build(netw_=patched(netw(spec, 72), 56, "d", nan)),
         "layers\\[0\\].noise_level at byte 96 is nan"),
        ("noise code 7", build(netw_=patched(netw(spec, 72), 22, "B", 7)), "layers\\[0\\].noise at byte 62 has code 7"),
        ("NaN huber_delta", build(head_=patched(head(spec), 4, "d", nan)), "huber_delta at byte 220 is nan"),
        ("NaN weight", build(parm_=parm([np.nan] + [0] * 16)), "the parameters \\(from byte 252\\): value 0 is nan"),
        ("infinite learning rate", build(optc_=patched(settings_block(s), 12, "d", inf)),
         "section OPTC at byte 320: the settings at byte 336: learning_rate must be finite"),
        ("NaN rho", build(optc_=patched(settings_block(s), 84, "d", nan)), "rho must be finite"),
        ("NaN in a slot", build(opts_=patched(opts(state), 124, "f", nan)),
         "slot exp_avg \\(from byte 568\\): value 0 is nan"),
        # Wrong slots.
        ("a misspelt slot", build(opts_=opts(state).replace(b"exp_avg\0", b"exp_avx\0")),
         "slot 0's name at byte 552 is 'exp_avx' but 'adam' calls its slot 0 'exp_avg'"),
        ("slots swapped", build(opts_=settings_block(s) + struct.pack("<qI", 3, 2) + slot("exp_avg_sq", zeros)
                                + slot("exp_avg", zeros)),
         "slot 0's name at byte 552 is 'exp_avg_sq' but 'adam' calls its slot 0 'exp_avg'"),
        ("SGD's slot in Adam's state", build(opts_=settings_block(s) + struct.pack("<qI", 3, 1)
                                             + slot("momentum_buffer", zeros)),
         "the slot count at byte 544 is 1 but 'adam' has 2"),
        ("negative steps", build(opts_=patched(opts(state), 92, "q", -5)),
         "section OPTS at byte 428: the step count at byte 536 is negative \\(-5\\)"),
        ("negative exp_avg_sq", build(opts_=opts({**state, "v": -np.ones(17)})),
         "section OPTS at byte 428: the optimizer state is invalid: .*must be >= 0"),
        # Networks Model refuses.
        ("dropout on the output", build(netw_=patched(netw(spec, 72), 88 + 32, "d", 0.5)),
         "section HEAD at byte 200: the network of NETW \\(at byte 24\\) and this HEAD is invalid: .*dropout"),
        ("bce after linear", build(netw_=netw(_small_spec(output="linear"))), "is invalid: .*sigmoid"),
        ("softmax inside", build(netw_=patched(netw(spec, 72), 20, "B", CODES["activation"]["softmax"])),
         "is invalid: .*output layer only"),
        ("noise inside", build(netw_=patched(netw(spec, 72), 88 + 6, "B", CODES["noise"]["gaussian"])),
         "is invalid: .*noise"),
        ("sparsity on relu", build(netw_=patched(netw(spec, 72), 16 + 64, "d", 0.5)), "is invalid: .*sparsity"),
    ]


def test_hostile_files_are_rejected_without_big_allocations(tmp_path):
    cases, expected = [], {}
    for name, data, match in _hostile_v1_cases() + _hostile_v2_cases():
        cases.append((name, data))
        expected[name] = match or "flags at byte 432 are 0x00000001; OPTS is written with 0x00000000"
    result = _load_all_limited(cases, tmp_path)
    assert result["counts"] == {"rejected": len(cases), "loaded": 0}
    for name, match in expected.items():
        assert re.search(match, result["messages"][name]), (name, result["messages"][name])
