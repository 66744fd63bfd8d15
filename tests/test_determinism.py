"""Determinism, exactly as docs/ARCHITECTURE.md ("Threads and determinism") promises it: a given
random_state and n_threads reproduce a run bit for bit (weights, optimizer state, history,
outputs), in another process and wherever the input lies in memory; different n_threads differ
only by rounding. tests/test_api.py checks the basic case in one process; this extends it."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import REPO

from fastae import Autoencoder

# Computes a fingerprint of every configuration; run here and in fresh interpreters.
FINGERPRINTS = textwrap.dedent("""
    import hashlib, itertools, json, sys
    import numpy as np
    from fastae import Autoencoder

    def fingerprint(ae, X):
        h = lambda *arrays: hashlib.sha256(b"".join(np.ascontiguousarray(a).tobytes() for a in arrays)).hexdigest()
        state = ae._model.optimizer_state()
        return {"weights": h(*[a for pair in ae.get_weights() for a in pair]),
                "optimizer": [state["steps"], h(state["m"], state["v"])],
                "loss": [v.hex() for v in ae.history_["loss"]],
                "val_loss": [v.hex() for v in ae.history_["val_loss"]],
                "outputs": h(ae.transform(X), ae.predict(X), ae.reconstruction_error(X)),
                "score": ae.score(X).hex()}

    def fingerprints(offset=0):
        rng = np.random.default_rng(0)
        X = rng.uniform(size=(300, 37)).astype(np.float32)
        # the same values at another address (offset floats into a bigger buffer), used in place
        base = np.empty(X.size + 16, dtype=np.float32)
        Xo = base[offset:offset + X.size].reshape(X.shape)
        Xo[...] = X
        out = {}
        # 6 threads: 6 shards, whose weight gradients the step's sum computes (training.cpp: choose_deferred)
        for threads, optimizer, shuffle in itertools.product((1, 2, 6), ("adam", "sgd"), (True, False)):
            ae = Autoencoder(hidden_layer_sizes=(19, 7), epochs=2, batch_size=50, optimizer=optimizer,
                             learning_rate=1e-2, shuffle=shuffle, random_state=11, n_threads=threads)
            out[f"{threads}-{optimizer}-{shuffle}"] = fingerprint(ae.fit(Xo, validation_data=Xo[:60]), Xo)
        return out

    if __name__ == "__main__":
        junk = np.ones(int(sys.argv[1]), dtype=np.uint8)  # moves later allocations elsewhere
        print(json.dumps(fingerprints(int(sys.argv[2]))))
""")


def _in_fresh_process(junk_bytes, offset):
    proc = subprocess.run([sys.executable, "-c", FINGERPRINTS, str(junk_bytes), str(offset)], capture_output=True,
                          text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def here():
    namespace = {"__name__": "fingerprints"}
    exec(FINGERPRINTS, namespace)
    return namespace["fingerprints"]


def test_same_random_state_and_n_threads_are_bit_identical_across_processes_and_addresses(here):
    ref = here(0)
    assert len(ref) == 12
    for junk_bytes, offset in ((0, 0), (12345, 1), (7 << 20, 3)):
        other = _in_fresh_process(junk_bytes, offset)
        for config in ref:
            assert other[config] == ref[config], (config, junk_bytes, offset)
    for offset in (1, 2, 5):  # unaligned copies in this process too
        assert here(offset) == ref


def test_configurations_do_differ(here):
    """The fingerprints above would be worthless if they ignored what they fingerprint."""
    ref = here(0)
    for threads in ("1", "2", "6"):  # optimizer and shuffle change the run (threads only its rounding)
        assert len({v["weights"] for k, v in ref.items() if k.startswith(threads)}) == 4
    ae = Autoencoder(hidden_layer_sizes=(19, 7), epochs=2, batch_size=50, optimizer="adam", learning_rate=1e-2,
                     random_state=12)
    X = np.random.default_rng(0).uniform(size=(300, 37)).astype(np.float32)
    assert ae.fit(X, validation_data=X[:60]).history_["loss"][0].hex() != ref["1-adam-True"]["loss"][0]


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_different_n_threads_differ_only_by_rounding(optimizer):
    X = np.random.default_rng(1).uniform(size=(400, 30)).astype(np.float32)
    runs = {}
    for threads in (1, 2, 6):  # 6 shards: the weight gradients computed in the step's sum
        ae = Autoencoder(hidden_layer_sizes=(12, 5), epochs=3, batch_size=64, optimizer=optimizer,
                         learning_rate=1e-2, random_state=3, n_threads=threads)
        runs[threads] = ae.fit(X, validation_data=X[:100])
    one = runs[1]
    for other in (runs[2], runs[6]):
        np.testing.assert_allclose(one.history_["loss"], other.history_["loss"], rtol=1e-5)
        np.testing.assert_allclose(one.history_["val_loss"], other.history_["val_loss"], rtol=1e-5)
        for (W1, b1), (W2, b2) in zip(one.get_weights(), other.get_weights()):
            np.testing.assert_allclose(W1, W2, rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(b1, b2, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(one.predict(X), other.predict(X), rtol=1e-4, atol=1e-5)
        assert one._model.optimizer_state()["steps"] == other._model.optimizer_state()["steps"] == 3 * 7


def test_validation_data_does_not_change_the_training():
    X = np.random.default_rng(2).uniform(size=(200, 16)).astype(np.float32)
    for threads in (1, 2):
        params = dict(hidden_layer_sizes=(6,), epochs=3, batch_size=32, random_state=4, n_threads=threads)
        plain = Autoencoder(**params).fit(X)
        checked = Autoencoder(**params).fit(X, validation_data=X[::3])
        assert plain.history_["loss"] == checked.history_["loss"]
        for (W1, b1), (W2, b2) in zip(plain.get_weights(), checked.get_weights()):
            assert np.array_equal(W1, W2) and np.array_equal(b1, b2)


def test_inference_repeats_bit_for_bit_and_a_row_depends_on_its_call_only_by_rounding():
    """The same call gives the same bits. A row's output can change in the last bit with the
    number of rows in the call (the GEMM kernels block by the chunk's width): not promised
    bit-identical, and checked to rounding."""
    X = np.random.default_rng(3).uniform(size=(600, 37)).astype(np.float32)
    ae = Autoencoder(hidden_layer_sizes=(19, 7), epochs=1, random_state=0).fit(X)
    full = ae.predict(X)
    assert np.array_equal(ae.predict(X), full)
    for rows in (1, 2, 3, 255, 256, 257, 599):
        assert np.array_equal(ae.predict(X[:rows]), ae.predict(X[:rows]))
        np.testing.assert_allclose(ae.predict(X[:rows]), full[:rows], rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(ae.transform(X[-rows:]), ae.transform(X)[-rows:], rtol=1e-6, atol=1e-7)
