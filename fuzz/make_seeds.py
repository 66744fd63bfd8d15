"""Writes the seed corpus of the model-file fuzz target (fuzz/corpus/model_file/): small real model
files, each a different path through the reader. Run from the repository root with fastae
installed: python fuzz/make_seeds.py [out_dir]. The committed seeds came from this script; training
may round differently on another CPU, so a rerun can change weight bytes but not the structure.
tests/test_fuzz.py checks every committed seed still loads."""

import os
import sys

import numpy as np

from fastae import Autoencoder, _core

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus",
                                                             "model_file")

ADAM = {"optimizer": "adam", "nesterov": False, "learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999,
        "epsilon": 1e-8, "momentum": 0.0}


def data(n, d, seed):
    return np.random.default_rng(seed).uniform(0.05, 0.95, size=(n, d)).astype(np.float32)


def network(sizes, activation, output_activation, loss, seed=0):
    model = _core.Model(sizes, activation, output_activation, loss)
    model.init_weights(seed)
    return model


def main():
    os.makedirs(OUT, exist_ok=True)
    x = data(40, 6, 0)
    seeds = {}
    # ae.save: JSON metadata, Adam state (m and v), relu/sigmoid/bce.
    est = Autoencoder(hidden_layer_sizes=(3,), epochs=2, batch_size=16, random_state=0).fit(x)
    est.save(os.path.join(OUT, "ae_adam_bce.fae"))
    # The same without the optimizer state.
    est.save(os.path.join(OUT, "ae_no_state.fae"), include_optimizer_state=False)
    # SGD with Nesterov momentum: m only, v empty; tanh/linear/mse, two hidden layers.
    Autoencoder(hidden_layer_sizes=(4, 2), activation="tanh", output_activation="linear", loss="mse",
                optimizer="sgd", learning_rate=0.05, momentum=0.5, nesterov=True, epochs=1, batch_size=20,
                random_state=1).fit(x[:, :5]).save(os.path.join(OUT, "ae_sgd_nesterov_tanh_mse.fae"))
    # As a C++ program writes it: no metadata, settings that are not the defaults.
    sgd = {**ADAM, "optimizer": "sgd", "learning_rate": 0.25, "momentum": 0.0}
    seeds["cpp_no_metadata.fae"] = _core.model_to_bytes(network([5, 2, 5], "linear", "sigmoid", "mse", 1), sgd,
                                                         True, b"")
    # A plain network (not a mirrored autoencoder): a valid file Python's Autoencoder refuses.
    seeds["mlp_not_mirrored.fae"] = _core.model_to_bytes(network([4, 3, 2], "relu", "tanh", "mse", 2), ADAM,
                                                         True, b"")
    # Many narrow layers: the widths loop and the per-layer parameter count.
    seeds["deep_narrow.fae"] = _core.model_to_bytes(network([2] + [1] * 30 + [2], "relu", "linear", "mse", 3),
                                                    ADAM, True, b"")
    # Metadata of another program (not JSON), kept verbatim by the C++ reader.
    seeds["other_metadata.fae"] = _core.model_to_bytes(network([3, 1, 3], "sigmoid", "sigmoid", "bce", 4), ADAM,
                                                       True, b"written by a C++ host \x00\xff")
    for name, blob in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(blob)
    for name in sorted(os.listdir(OUT)):
        print(f"{name}: {os.path.getsize(os.path.join(OUT, name))} bytes")


if __name__ == "__main__":
    main()
