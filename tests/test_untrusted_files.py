"""Loading never executes code from a file: a model file's metadata is JSON and is never unpickled,
even when it holds a pickle whose __reduce__ would act (checked by its absent side effect and by
Python's audit hooks), and neither is a section the reader does not know (skipped, or rejected when
marked required), and a pickled Autoencoder carries its network only as model-file bytes,
which go through the same checked reader. What pickle itself can and cannot promise is in
docs/model-format.md ("Pickle"): unpickling untrusted data runs code by design, whatever the
class; fastae.load is the safe route for files from elsewhere."""

import io
import json
import os
import pickle
import struct
import subprocess
import sys
import textwrap
import zlib

import numpy as np
import pytest

import fastae
from fastae import Autoencoder, ModelFileError, _core

MAGIC = b"\x89FASTAE\n"


class MakesADirectory:
    """Unpickling this calls os.mkdir(path): the side effect that shows code ran."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.mkdir, (self.path,))


@pytest.fixture(scope="module")
def fitted():
    X = fastae.load_digits()[0][:200]
    return Autoencoder(hidden_layer_sizes=(5,), epochs=1, random_state=0).fit(X)


def _save_with_metadata(est, path, metadata):
    """A real model file from the library's own writer, with the given bytes as its metadata."""
    settings = {"optimizer": "adam", "learning_rate": est.learning_rate, "beta1": est.beta_1, "beta2": est.beta_2,
                "epsilon": est.epsilon, "momentum": est.momentum, "nesterov": est.nesterov}
    _core.save_model(est._model, os.fsencode(path), settings, True, metadata)


def _with_section(data, tag, flags, payload):
    """A version-2 model file with one more section before its checksum (docs/model-format.md), resealed."""
    body = data[24:-4] + tag + struct.pack("<IQ", flags, len(payload)) + payload
    head = data[:16] + struct.pack("<Q", len(body))
    return head + body + struct.pack("<I", zlib.crc32(head + body))


def _hostile_files(est, folder):
    """Model files whose metadata carries a pickle that would create folder/'ran-<name>'."""
    files = {}

    def payload(name, protocol):
        return pickle.dumps(MakesADirectory(folder / f"ran-{name}"), protocol=protocol)

    for protocol in (0, 2, pickle.HIGHEST_PROTOCOL):  # 0 is ASCII text, the others binary
        name = f"pickle-protocol-{protocol}"
        _save_with_metadata(est, folder / f"{name}.fae", payload(name, protocol))
        files[name] = folder / f"{name}.fae"
    # Valid estimator JSON with the pickle as a string value: it stays a string.
    doc = json.loads(est._metadata())
    doc["params"]["random_state"] = payload("in-json", 0).decode("ascii")
    _save_with_metadata(est, folder / "in-json.fae", json.dumps(doc).encode())
    files["in-json"] = folder / "in-json.fae"
    # The pickle in a section this fastae does not know: skipped when optional, rejected when
    # required; never unpickled either way.
    plain = _core.model_to_bytes(est._model, None, True, est._metadata())
    for name, flags in [("optional-section", 0), ("required-section", 1)]:
        blob = _with_section(plain, b"PKLE", flags, payload(name, pickle.HIGHEST_PROTOCOL))
        (folder / f"{name}.fae").write_bytes(blob)
        files[name] = folder / f"{name}.fae"
    # The pickle as the whole file: not a model file at all.
    (folder / "bare-pickle.fae").write_bytes(payload("bare-pickle", pickle.HIGHEST_PROTOCOL))
    files["bare-pickle"] = folder / "bare-pickle.fae"
    return files


def test_a_pickle_in_the_metadata_is_never_unpickled(fitted, tmp_path):
    files = _hostile_files(fitted, tmp_path)
    outcomes = {}
    for name, path in files.items():
        try:
            est = fastae.load(path)
            outcomes[name] = "loaded"
        except ModelFileError as exc:
            outcomes[name] = str(exc)
        assert not (tmp_path / f"ran-{name}").exists(), f"{name}: loading ran the pickle"
    for protocol in (0, 2, pickle.HIGHEST_PROTOCOL):
        assert "its metadata is not UTF-8 JSON" in outcomes[f"pickle-protocol-{protocol}"]
    assert "not a fastae model file" in outcomes["bare-pickle"]
    assert outcomes["in-json"] == outcomes["optional-section"] == "loaded"
    assert "section 'PKLE' at byte" in outcomes["required-section"]
    assert "marked required" in outcomes["required-section"]
    est = fastae.load(files["in-json"])
    assert isinstance(est.random_state, str) and est.random_state.startswith("cposix\nmkdir")
    assert np.array_equal(est.transform(fastae.load_digits()[0][:5]), fitted.transform(fastae.load_digits()[0][:5]))
    # The same bytes given to pickle do run: the side effect is real, so its absence above means
    # something (and this is why a pickle from elsewhere must never be unpickled).
    pickle.loads(pickle.dumps(MakesADirectory(tmp_path / "ran-by-pickle")))
    assert (tmp_path / "ran-by-pickle").is_dir()


_AUDITED = textwrap.dedent("""
    # Loads each file with an audit hook installed (after a warm-up, so that first-time imports
    # are not counted) and prints, per file, the audit events that executing code would raise.
    import json, sys
    import fastae
    CODE_EVENTS = {"pickle.find_class", "exec", "compile", "marshal.loads", "marshal.load", "os.system",
                   "subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
                   "ctypes.dlopen", "ctypes.dlsym", "import", "builtins.input", "code.__new__", "function.__new__"}
    paths = json.loads(sys.argv[1])
    fastae.load(paths.pop("warm-up"))
    seen, current = {}, [None]

    def hook(event, args):
        if current[0] is not None and event in CODE_EVENTS:
            seen.setdefault(current[0], []).append(event)

    sys.addaudithook(hook)
    outcome = {}
    for name, path in paths.items():
        current[0] = name
        try:
            fastae.load(path)
            outcome[name] = "loaded"
        except fastae.ModelFileError:
            outcome[name] = "rejected"
        current[0] = None
    # The hook is live: unpickling anything that names a class raises pickle.find_class.
    import pickle
    current[0] = "control"
    pickle.loads(pickle.dumps(fastae.Autoencoder()))
    current[0] = None
    print(json.dumps({"events": seen, "outcome": outcome}))
""")


def test_loading_raises_no_code_execution_audit_event(fitted, tmp_path):
    """Python's audit hooks see every unpickled class lookup (pickle.find_class), exec, eval,
    compile, marshal, process start and new import: loading any of the hostile files, or a normal
    one, raises none of them."""
    files = {name: str(path) for name, path in _hostile_files(fitted, tmp_path).items()}
    fitted.save(tmp_path / "normal.fae")
    fitted.save(tmp_path / "warm-up.fae")
    files.update({"normal": str(tmp_path / "normal.fae"), "warm-up": str(tmp_path / "warm-up.fae")})
    run = subprocess.run([sys.executable, "-c", _AUDITED, json.dumps(files)], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["events"] == {"control": ["pickle.find_class"]}, result["events"]
    outcome = result["outcome"]
    assert outcome["normal"] == outcome["in-json"] == outcome["optional-section"] == "loaded"
    assert outcome["required-section"] == "rejected"
    assert not any((tmp_path / name).exists() for name in os.listdir(tmp_path) if name.startswith("ran-"))


# ---- pickling an Autoencoder ---------------------------------------------------------------

class _RecordingUnpickler(pickle.Unpickler):
    def __init__(self, data):
        super().__init__(io.BytesIO(data))
        self.globals = []

    def find_class(self, module, name):
        self.globals.append((module, name))
        return super().find_class(module, name)


@pytest.mark.parametrize("protocol", [3, 4, 5])
def test_a_pickled_autoencoder_holds_its_network_as_model_file_bytes(fitted, protocol):
    """The stream names one global, the Autoencoder class (no C++ object is pickled), and the
    network travels as the model file bytes that model_to_bytes writes."""
    data = pickle.dumps(fitted, protocol=protocol)
    unpickler = _RecordingUnpickler(data)
    back = unpickler.load()
    assert unpickler.globals == [("fastae._autoencoder", "Autoencoder")]
    model_bytes = _core.model_to_bytes(fitted._model, None, True, b"")
    assert model_bytes.startswith(MAGIC) and data.count(model_bytes) == 1
    assert np.array_equal(back._model.get_params(), fitted._model.get_params())


def test_unpickling_checks_the_network_with_the_model_file_reader(fitted):
    """Changed model bytes inside a pickle are caught by the reader (checksum), exactly as in a file."""
    data = pickle.dumps(fitted, protocol=pickle.HIGHEST_PROTOCOL)
    model_bytes = _core.model_to_bytes(fitted._model, None, True, b"")
    at = data.index(model_bytes) + 200  # a byte of the weights
    bad = data[:at] + bytes([data[at] ^ 0x40]) + data[at + 1:]
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        pickle.loads(bad)
    # A model file too short for its header, in place of the real one.
    state = fitted.__getstate__()
    state["_model_file"] = model_bytes[:20]
    with pytest.raises(ModelFileError, match="truncated at byte 20"):
        Autoencoder.__new__(Autoencoder).__setstate__(state)
