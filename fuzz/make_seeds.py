"""Writes the version-2 seeds of the model-file fuzz target (fuzz/corpus/model_file/v2_*.fae): small
real model files, each a different path through the reader, together holding every section
(NETW, VARC, HEAD, PARM, OPTC, OPTS of every optimizer, META, and a section the reader skips), every
activation, loss, initializer and noise, the per-layer penalties, tied weights, the contractive
penalty, a frozen layer and a variational autoencoder. Run from the repository root with fastae installed:
python fuzz/make_seeds.py [out_dir].

The corpus also holds version-1 files (the names without "v2_"), written by this script in fastae
0.1.0, before format version 2, and version-2 files with the 72-byte layer records of before tied
weights (v2_records72_*, this script's output then). fastae writes neither any more, so they are
kept as they are and this script leaves them alone. Training may round differently on another CPU, so a rerun can change
weight bytes but not the structure. tests/test_fuzz.py checks that every committed seed still
loads."""

import os
import struct
import sys
import zlib

import numpy as np

from fastae import Autoencoder, VariationalAutoencoder, _core

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus",
                                                             "model_file")


def settings(optimizer="adam", **changes):
    s = {"optimizer": optimizer, "nesterov": False, "learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999,
         "epsilon": 1e-8, "momentum": 0.0, "weight_decay": 0.01, "rho": 0.9}
    s.update(changes)
    return s


def data(n, d, seed):
    return np.random.default_rng(seed).uniform(0.05, 0.95, size=(n, d)).astype(np.float32)


def network(sizes, activation, output_activation, loss, seed=0):
    model = _core.Model(sizes, activation, output_activation, loss)
    model.init_weights(seed)
    return model


def layer(units, activation, initializer="glorot_uniform", **options):
    """A layer of a spec dict (Model.from_spec): the options not given keep their defaults."""
    return {"units": units, "activation": activation, "initializer": initializer, **options}


def from_spec(spec, seed):
    model = _core.Model.from_spec(spec)
    model.init_weights(seed)
    return model


def with_state(model, optimizer, seed, **changes):
    """The model with a made-up optimizer state of that kind (its slots, a few steps)."""
    rng = np.random.default_rng(seed)
    config = settings(optimizer, **changes)
    two_slots = optimizer in ("adam", "adamw")
    n = model.n_params
    model.set_optimizer_state({"config": config, "steps": 5, "m": rng.uniform(0, 0.01, n).astype(np.float32),
                               "v": rng.uniform(0, 1e-4, n if two_slots else 0).astype(np.float32)})
    return model


def with_unknown_section(blob, tag, flags, payload, before):
    """The file with one more section, placed before the known section `before` (docs/model-format.md:
    {tag, flags, length, payload}), resealed as a writer would."""
    pos = 24
    while blob[pos:pos + 4] != before:
        pos += 16 + struct.unpack_from("<Q", blob, pos + 8)[0]
    body = blob[24:pos] + tag + struct.pack("<IQ", flags, len(payload)) + payload + blob[pos:-4]
    head = blob[:16] + struct.pack("<Q", len(body))
    return head + body + struct.pack("<I", zlib.crc32(head + body))


def main():
    os.makedirs(OUT, exist_ok=True)
    x = data(40, 6, 0)
    seeds = {}
    # ae.save: JSON metadata, Adam's state (exp_avg, exp_avg_sq), relu/sigmoid/bce.
    est = Autoencoder(hidden_layer_sizes=(3,), epochs=2, batch_size=16, random_state=0).fit(x)
    est.save(os.path.join(OUT, "v2_ae_adam_bce.fae"))
    # A variational autoencoder (VARC: beta and the KL warm-up; the decoder reads half the code layer).
    vae = VariationalAutoencoder(hidden_layer_sizes=(4, 2), epochs=2, batch_size=16, random_state=0, beta=0.5,
                                 kl_warmup_epochs=3).fit(x)
    vae.save(os.path.join(OUT, "v2_vae.fae"))
    # The same without the optimizer state.
    est.save(os.path.join(OUT, "v2_ae_no_state.fae"), include_optimizer_state=False)
    # As a C++ program writes it: no metadata (no META), SGD settings that are not the defaults.
    seeds["v2_cpp_no_metadata.fae"] = _core.model_to_bytes(
        network([5, 2, 5], "linear", "sigmoid", "mse", 1), settings("sgd", learning_rate=0.25), True, b"")
    # The state of every other optimizer: SGD (momentum_buffer), AdamW (two slots), RMSprop (square_avg).
    seeds["v2_state_sgd_nesterov.fae"] = _core.model_to_bytes(
        with_state(network([4, 2, 4], "tanh", "linear", "mse", 2), "sgd", 2, momentum=0.5, nesterov=True),
        None, True, b"sgd")
    seeds["v2_state_adamw.fae"] = _core.model_to_bytes(
        with_state(network([4, 3, 4], "relu", "sigmoid", "bce", 3), "adamw", 3, weight_decay=0.05), None, True, b"")
    seeds["v2_state_rmsprop.fae"] = _core.model_to_bytes(
        with_state(network([3, 2, 3], "sigmoid", "sigmoid", "mse", 4), "rmsprop", 4, rho=0.8), settings("adam"),
        True, b"rmsprop")
    # Every elementwise activation inside, with per-layer alpha, penalties, dropout and initializers.
    hidden = [a for a in _core.ACTIVATIONS if a != "softmax"]
    inits = _core.INITIALIZERS
    spec = {"n_inputs": 3, "code_layer": 3, "loss": "huber", "huber_delta": 0.5,
            "layers": [layer(2 + i % 2, a, inits[i % len(inits)], alpha=0.2 if a == "leaky_relu" else 0.5 if a == "elu"
                             else 0.0, l1=1e-4 * i, l2=1e-3 if i % 2 else 0.0, dropout=0.1 * (i % 3),
                             activity_l1=1e-3 * (i % 2))
                       for i, a in enumerate(hidden)] + [layer(3, "linear", "lecun_normal")]}
    spec["layers"][0].update(noise="gaussian", noise_level=0.1)
    for hidden_layer in spec["layers"]:
        if hidden_layer["activation"] == "sigmoid":
            hidden_layer.update(sparsity_target=0.05, sparsity_weight=0.25)
    seeds["v2_every_activation_huber.fae"] = _core.model_to_bytes(from_spec(spec, 5), None, False, b"")
    # Softmax with cross-entropy, and mae.
    spec = {"n_inputs": 4, "code_layer": 0, "loss": "cross_entropy", "huber_delta": 1.0,
            "layers": [layer(3, "gelu", "he_normal"), layer(4, "softmax", "glorot_normal")]}
    seeds["v2_softmax_cross_entropy.fae"] = _core.model_to_bytes(from_spec(spec, 6), None, False, b"")
    spec = {"n_inputs": 2, "code_layer": 0, "loss": "mae", "huber_delta": 1.0,
            "layers": [layer(2, "softplus", "he_uniform", l2=0.01, noise="masking", noise_level=0.25),
                       layer(2, "linear")]}
    seeds["v2_mae.fae"] = _core.model_to_bytes(from_spec(spec, 7), settings("rmsprop"), False, b"")
    # Tied weights (the decoder owns its biases only), the contractive penalty, a frozen layer; and
    # a tied Autoencoder saved by Python.
    spec = {"n_inputs": 4, "code_layer": 0, "loss": "bce", "huber_delta": 1.0,
            "layers": [layer(3, "tanh", contractive=0.5), layer(2, "relu", trainable=False),
                       layer(3, "elu", trainable=False), layer(4, "sigmoid", tied_to=0)]}
    seeds["v2_tied_contractive_frozen.fae"] = _core.model_to_bytes(from_spec(spec, 11), None, False, b"")
    est = Autoencoder(hidden_layer_sizes=(4, 2), tied_weights=True, epochs=2, batch_size=16, random_state=1).fit(x)
    est.save(os.path.join(OUT, "v2_ae_tied.fae"))
    # A plain network (not a mirrored autoencoder): a valid file Python's Autoencoder refuses.
    seeds["v2_mlp_not_mirrored.fae"] = _core.model_to_bytes(network([4, 3, 2], "relu", "tanh", "mse", 8),
                                                            settings(), True, b"")
    # Many narrow layers: the layer records and the per-layer parameter count.
    seeds["v2_deep_narrow.fae"] = _core.model_to_bytes(network([2] + [1] * 30 + [2], "relu", "linear", "mse", 9),
                                                       settings(), True, b"")
    # Sections this fastae does not know and may skip (flags 0): one before OPTC, one at the end.
    plain = _core.model_to_bytes(with_state(network([3, 1, 3], "sigmoid", "sigmoid", "bce", 10), "adam", 10),
                                 None, True, b"written by a C++ host \x00\xff")
    skipped = with_unknown_section(plain, b"XTRA", 0, b"a later fastae's section", b"OPTC")
    seeds["v2_unknown_optional_section.fae"] = with_unknown_section(skipped, b"ZZZZ", 0, b"", b"META")
    for name, blob in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(blob)
    for name in sorted(os.listdir(OUT)):
        print(f"{name}: {os.path.getsize(os.path.join(OUT, name))} bytes")


if __name__ == "__main__":
    main()
