"""The command line: `python -m fastae demo` on the embedded digits and on an .npz given with
--data, `info`, `--version`, and clear errors for a bad --data."""

import subprocess
import sys

import numpy as np

import fastae


def run(*args):
    return subprocess.run([sys.executable, "-m", "fastae", *args], capture_output=True, text=True, timeout=300)


def test_demo_on_embedded_digits():
    r = run("demo", "--epochs", "4")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "UCI 8x8 digits" in lines[0] and "64 -> 64 -> 64" in lines[1]
    epochs = [l for l in lines if l.startswith("epoch")]
    assert len(epochs) == 4 and all("loss" in l and "val_loss" in l and l.endswith(" s") for l in epochs)
    assert "final reconstruction error" in lines[-1]
    first = float(epochs[0].split("val_loss")[1].split()[0])
    last = float(epochs[-1].split("val_loss")[1].split()[0])
    assert last < first


def test_demo_with_data_file(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "tiny.npz"
    np.savez(path, x_train=rng.integers(0, 256, size=(300, 5, 5), dtype=np.uint8),
             x_test=rng.integers(0, 256, size=(50, 5, 5), dtype=np.uint8))
    r = run("demo", "--data", str(path), "--epochs", "2", "--hidden", "8", "3")
    assert r.returncode == 0, r.stderr
    assert "300 train, 50 test, 25 features" in r.stdout and "25 -> 8 -> 3 -> 8 -> 25" in r.stdout


def test_demo_with_bad_data_file(tmp_path):
    r = run("demo", "--data", str(tmp_path / "missing.npz"))
    assert r.returncode == 2 and "error:" in r.stderr and "missing.npz" in r.stderr
    path = tmp_path / "wrong.npz"
    np.savez(path, images=np.zeros((3, 4)))
    r = run("demo", "--data", str(path))
    assert r.returncode == 2 and "x_train" in r.stderr


def test_info_and_version():
    r = run("info")
    assert r.returncode == 0 and "Eigen" in r.stdout and "CPUs" in r.stdout
    r = run("--version")
    assert r.returncode == 0 and r.stdout.strip() == fastae.__version__
