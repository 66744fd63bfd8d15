"""Shared fixtures: small datasets made here (no network) and the optional real MNIST."""

import os

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MNIST = os.path.join(REPO, "..", "shared", "data", "mnist.npz")


def smooth_data(n, d, seed=0):
    """Low-rank, smooth rows in (0, 1): data an autoencoder can learn."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, d)
    a, b, c = rng.uniform(size=(3, n, 1))
    x = 0.5 + 0.25 * a * np.sin(6 * t) + 0.2 * b * np.cos(3 * t) + 0.04 * c
    return x.astype(np.float32)


@pytest.fixture
def data():
    return smooth_data(300, 20, seed=1)


@pytest.fixture(scope="session")
def mnist():
    if not os.path.exists(MNIST):
        pytest.skip(f"MNIST not found at {MNIST}")
    with np.load(MNIST) as d:
        x_train = d["x_train"].reshape(-1, 784).astype(np.float32) / np.float32(255)
        x_test = d["x_test"].reshape(-1, 784).astype(np.float32) / np.float32(255)
    return x_train, x_test
