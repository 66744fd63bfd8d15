"""The command line (fastae/_cli.py, docs/cli.md): train, encode, reconstruct, score, info, demo.

Outputs are compared with the Python API's results on the same data (the same seed and one
thread give bit-identical weights), every DATA format is read back against the array written,
and each bad input must end with exit status 2 (1 when the work itself fails), one line on
stderr, no traceback and no output file. Most commands run in this process through
``fastae._cli.main`` (each `python -m fastae` pays seconds of imports on a loaded machine); a few
run `python -m fastae` as a subprocess, which is what the console script runs."""

from __future__ import annotations

import gzip
import importlib
import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

import fastae
from fastae import _cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cli(capsys, *args):
    """Runs the command line in this process: (exit status, stdout, stderr)."""
    try:
        rc = _cli.main([str(a) for a in args])
    except SystemExit as exc:  # argparse: --help (0) and usage errors (2)
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


def run(*args, cwd=None):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (os.path.dirname(fastae.__path__[0]), env.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, "-m", "fastae", *map(str, args)], capture_output=True, text=True,
                          timeout=120, env=env, cwd=cwd, check=False)


def one_error_line(err, code_text="error:"):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("fastae") and code_text in lines[0] and "Traceback" not in err, err
    return lines[0]


def idx_bytes(arr):
    code = {np.uint8: 0x08, np.float32: 0x0D}[arr.dtype.type]
    header = bytes([0, 0, code, arr.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


TRAIN_OPTIONS = ["--hidden", "6,3", "--epochs", "3", "--batch-size", "32", "--threads", "1", "--seed", "5",
                 "--learning-rate", "0.01", "--validation-split", "0.2", "--early-stopping", "--patience", "2"]
TRAIN_PARAMS = {"hidden_layer_sizes": (6, 3), "epochs": 3, "batch_size": 32, "n_threads": 1, "random_state": 5,
                "learning_rate": 0.01, "validation_split": 0.2, "early_stopping": True, "patience": 2}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    X = rng.random((120, 9)).astype(np.float32)
    np.save(d / "x.npy", X)
    images = rng.integers(0, 256, size=(60, 4, 4), dtype=np.uint8)
    (d / "images-idx3-ubyte").write_bytes(idx_bytes(images))
    with gzip.open(d / "images-idx3-ubyte.gz", "wb") as f:
        f.write(idx_bytes(images))
    (d / "labels-idx1-ubyte").write_bytes(idx_bytes(rng.integers(0, 10, 60, dtype=np.uint8)))
    return {"dir": d, "X": X, "images": images}


@pytest.fixture(scope="module")
def model(files, tmp_path_factory):
    """A model trained by the command line, and the same model trained by the Python API."""
    path = files["dir"] / "model.fae"
    assert _cli.main(["train", str(files["dir"] / "x.npy"), "-o", str(path), "-q", *TRAIN_OPTIONS]) == 0
    reference = fastae.Autoencoder(**TRAIN_PARAMS).fit(files["X"])
    return path, reference


# ---- train and the model it writes ----------------------------------------------------------------


def test_train_gives_the_python_api_model(files, model):
    path, reference = model
    loaded = fastae.load(path)
    for (w, b), (w_ref, b_ref) in zip(loaded.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(w, w_ref)
        np.testing.assert_array_equal(b, b_ref)
    assert loaded.history_["loss"] == reference.history_["loss"]
    assert loaded.history_["val_loss"] == reference.history_["val_loss"]
    assert loaded.hidden_layer_sizes == (6, 3) and loaded.early_stopping is True and loaded.verbose == 0


def test_train_prints_progress_and_a_summary(files, tmp_path, capsys):
    rc, out, err = cli(capsys, "train", files["dir"] / "x.npy", "-o", tmp_path / "m.fae", "--hidden", "4",
                       "--epochs", "2", "--threads", "1", "--loss", "mse", "--optimizer", "rmsprop")
    assert rc == 0, err
    lines = out.splitlines()
    assert [line.split()[1] for line in lines[:2]] == ["1/2", "2/2"]  # the progress display, one line per epoch
    assert lines[2].startswith(f"saved {tmp_path / 'm.fae'}: 9 -> 4 -> 9 (relu, sigmoid output), loss mse; "
                               f"2 epoch(s)") and "samples/s" in lines[2]
    assert fastae.load(tmp_path / "m.fae").optimizer == "rmsprop"


def test_train_validation_data_file(files, tmp_path, capsys):
    np.save(tmp_path / "v.npy", files["X"][:20])
    rc, _out, err = cli(capsys, "train", files["dir"] / "x.npy", "-o", tmp_path / "m.fae", "--validation-data",
                       tmp_path / "v.npy", "--epochs", "2", "--threads", "1", "--hidden", "3", "-q")
    assert rc == 0, err
    ref = fastae.Autoencoder(hidden_layer_sizes=(3,), epochs=2, n_threads=1, random_state=0).fit(
        files["X"], validation_data=files["X"][:20])
    assert fastae.load(tmp_path / "m.fae").history_["val_loss"] == ref.history_["val_loss"]


def test_uint8_idx_is_scaled_and_the_model_keeps_the_scale(files, tmp_path, capsys):
    rc, _out, err = cli(capsys, "train", files["dir"] / "images-idx3-ubyte.gz", "-o", tmp_path / "m.fae",
                       "--hidden", "5", "--epochs", "2", "--threads", "1", "-q")
    assert rc == 0 and "scaled by 1/255" in err
    X8 = files["images"].reshape(60, 16)
    ref = fastae.Autoencoder(hidden_layer_sizes=(5,), epochs=2, n_threads=1, random_state=0,
                             input_scale=1 / 255).fit(X8)
    rc, _out, err = cli(capsys, "encode", tmp_path / "m.fae", files["dir"] / "images-idx3-ubyte", "-o",
                       tmp_path / "c.npy")
    assert rc == 0, err
    np.testing.assert_array_equal(np.load(tmp_path / "c.npy"), ref.transform(X8))


def test_diverging_training_exits_1_and_saves_nothing(tmp_path, capsys):
    np.save(tmp_path / "big.npy", np.random.default_rng(0).standard_normal((100, 5)) * 100)
    rc, _out, err = cli(capsys, "train", tmp_path / "big.npy", "-o", tmp_path / "m.fae", "--optimizer", "sgd",
                       "--learning-rate", "1e6", "--epochs", "5", "--threads", "1", "-q")
    assert rc == 1 and "diverged" in one_error_line(err) and "nothing saved" in err
    assert not (tmp_path / "m.fae").exists()


# ---- encode, reconstruct, score ---------------------------------------------------------------


def test_encode_reconstruct_score_equal_the_python_api(files, model, tmp_path, capsys):
    path, _ = model
    est = fastae.load(path)
    X = files["X"]
    rc, out, err = cli(capsys, "encode", path, files["dir"] / "x.npy", "-o", tmp_path / "codes.npy")
    assert rc == 0 and out.startswith(f"wrote {tmp_path / 'codes.npy'}: codes of shape (120, 3)"), err
    np.testing.assert_array_equal(np.load(tmp_path / "codes.npy"), est.transform(X))
    rc, out, err = cli(capsys, "reconstruct", path, files["dir"] / "x.npy", "-o", tmp_path / "r.csv", "--threads", 1)
    assert rc == 0, err
    np.testing.assert_array_equal(np.loadtxt(tmp_path / "r.csv", delimiter=",").astype(np.float32), est.predict(X))
    rc, out, err = cli(capsys, "score", path, files["dir"] / "x.npy")
    assert rc == 0, err
    np.testing.assert_array_equal(np.array(out.split(), dtype=np.float32), est.reconstruction_error(X))
    rc, out, err = cli(capsys, "score", path, files["dir"] / "x.npy", "-o", tmp_path / "e.npy")
    errors = est.reconstruction_error(X).astype(np.float64)
    assert rc == 0 and f"120 per-sample errors (bce): mean {errors.mean():.6g}" in out
    np.testing.assert_array_equal(np.load(tmp_path / "e.npy"), est.reconstruction_error(X))


def test_info_of_a_model(model, capsys):
    path, reference = model
    rc, out, err = cli(capsys, "info", path)
    assert rc == 0, err
    lines = out.splitlines()
    n_params = sum(w.size + b.size for w, b in reference.get_weights())
    assert lines[0] == f"{path}: fastae.Autoencoder, {os.path.getsize(path):,} bytes"
    assert lines[1] == f"network: 9 -> 6 -> 3 -> 6 -> 9 (relu, sigmoid output); {n_params:,} parameters; code size 3"
    assert "early_stopping=True" in out and "hidden_layer_sizes=(6, 3)" in out and "learning_rate=0.01" in out
    epochs = len(reference.history_["loss"])
    assert f"history: {epochs} epoch(s), loss {reference.history_['loss'][0]:.6g} -> " in out


def test_info_of_the_build_and_version(capsys):
    rc, out, _err = cli(capsys, "info")
    assert rc == 0 and "Eigen" in out and "CPUs" in out
    rc, out, _err = cli(capsys, "--version")
    assert rc == 0 and out.strip() == fastae.__version__


def test_cmake_dir(capsys):
    rc, out, err = cli(capsys, "--cmake-dir")
    if rc == 0:
        assert os.path.isfile(os.path.join(out.strip(), "fastaeConfig.cmake"))
    else:  # a source tree without the installed C++ files
        assert rc == 1 and "fastaeConfig.cmake" in one_error_line(err)


# ---- DATA formats --------------------------------------------------------------------------------


def encode_via_cli(capsys, model_path, data, out, *options):
    rc, _, err = cli(capsys, "encode", model_path, data, "-o", out, *options)
    assert rc == 0, err
    return np.load(out), err


@pytest.mark.parametrize("header", ["detected", "forced", "none"])
def test_csv(files, model, tmp_path, capsys, header):
    path, _ = model
    est = fastae.load(path)
    X = files["X"][:10]
    csv = tmp_path / "x.csv"
    names = ",".join(f"f{j}" for j in range(9))
    if header == "detected":
        np.savetxt(csv, X, delimiter=",", fmt="%.9g", header=names, comments="")
    else:
        np.savetxt(csv, X, delimiter=",", fmt="%.9g")  # float32 written exactly
    options = ["--header"] if header == "forced" else []
    codes, err = encode_via_cli(capsys, path, csv, tmp_path / "c.npy", *options)
    expected = X[1:] if header == "forced" else X  # a forced header drops the first (numeric) row
    np.testing.assert_array_equal(codes, est.transform(expected))
    assert ("first row taken as a header" in err) == (header != "none")
    if header == "detected":  # gzipped: the same table
        with open(csv, "rb") as f, gzip.open(tmp_path / "x.csv.gz", "wb") as g:
            g.write(f.read())
        np.testing.assert_array_equal(encode_via_cli(capsys, path, tmp_path / "x.csv.gz", tmp_path / "c.npy")[0],
                                      codes)


def test_npz_key_and_default(files, model, tmp_path, capsys):
    path, _ = model
    est = fastae.load(path)
    X = files["X"]
    np.savez(tmp_path / "d.npz", x_train=X[:30], x_test=X[30:50])
    codes, err = encode_via_cli(capsys, path, tmp_path / "d.npz", tmp_path / "c.npy")
    np.testing.assert_array_equal(codes, est.transform(X[:30]))
    assert "using array 'x_train'" in err and "--key" in err
    codes, _ = encode_via_cli(capsys, path, tmp_path / "d.npz", tmp_path / "c.npy", "--key", "x_test")
    np.testing.assert_array_equal(codes, est.transform(X[30:50]))


def test_idx_gzipped_or_not_and_images_flattened(files, tmp_path, capsys):
    from fastae._data_io import read_data

    for name in ("images-idx3-ubyte", "images-idx3-ubyte.gz"):
        data = read_data(files["dir"] / name)
        assert data.X.dtype == np.uint8 and data.image_shape == (4, 4)
        np.testing.assert_array_equal(data.X, files["images"].reshape(60, 16))
    f = np.random.default_rng(1).random((3, 2, 5)).astype(np.float32)
    (tmp_path / "f.idx").write_bytes(idx_bytes(f))
    np.testing.assert_array_equal(read_data(tmp_path / "f.idx").X, f.reshape(3, 10))


# ---- bad input: exit 2, one line, no traceback, nothing written --------------------------------------


def bad_cases(d, model_path):
    np.save(d / "one.npy", np.zeros(5))
    np.save(d / "wide.npy", np.zeros((4, 7), dtype=np.float32))
    np.savez(d / "two.npz", a=np.zeros((3, 9)), b=np.zeros((3, 9)))
    (d / "text.csv").write_text("1,2,3\n4,x,6\n")
    np.save(d / "nan.npy", np.array([[0.5] * 9, [0.5] * 8 + [np.nan]], dtype=np.float32))
    (d / "truncated.fae").write_bytes(model_path.read_bytes()[:100])
    (d / "empty.csv").write_text("")
    (d / "broken.npz").write_bytes(b"PK\x03\x04 not a zip archive")
    np.save(d / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    if not (d / "mlp.fae").exists():
        X = np.random.default_rng(0).random((20, 9))
        fastae.MLPClassifier(hidden_layer_sizes=(3,), epochs=1, random_state=0).fit(X, X[:, 0] > 0.5).save(
            d / "mlp.fae")


BAD = [
    (["encode", "{model}", "{d}/missing.npy", "-o", "{d}/out.npy"], "missing.npy: no such file"),
    (["encode", "{d}/missing.fae", "{x}", "-o", "{d}/out.npy"], "missing.fae: no such file"),
    (["encode", "{x}", "{x}", "-o", "{d}/out.npy"], "not a fastae model file"),
    (["encode", "{d}/truncated.fae", "{x}", "-o", "{d}/out.npy"], "truncated.fae"),
    (["score", "{model}", "{d}/one.npy"], "1-D array of shape (5,)"),
    (["reconstruct", "{model}", "{d}/wide.npy", "-o", "{d}/out.npy"], "7 features per sample; the model"),
    (["encode", "{model}", "{d}/two.npz", "-o", "{d}/out.npy"], "holds a, b; choose one with --key"),
    (["encode", "{model}", "{d}/two.npz", "--key", "c", "-o", "{d}/out.npy"], "has no array 'c'"),
    (["encode", "{model}", "{x}", "--key", "c", "-o", "{d}/out.npy"], "--key applies to .npz files only"),
    (["encode", "{model}", "{d}/text.csv", "-o", "{d}/out.npy"], "not a table of numbers"),
    (["score", "{model}", "{d}/nan.npy", "-o", "{d}/out.npy"], "NaN) at row 1, column 8"),
    (["score", "{model}", "{d}/empty.csv"], "empty.csv: holds an empty array"),
    (["score", "{model}", "{d}/broken.npz"], "cannot read it as an .npz file"),
    (["score", "{model}", "{d}/objects.npy"], "Object arrays cannot be loaded"),
    (["encode", "{model}", "{x}", "-o", "{d}/out.json"], "one of .npy, .csv, .tsv, .txt"),
    (["encode", "{model}", "{x}", "-o", "{d}/no/out.npy"], "does not exist"),
    (["train", "{top}/labels-idx1-ubyte", "-o", "{d}/out.fae"], "1-D array"),
    (["train", "{x}", "-o", "{d}/out.fae", "--learning-rate", "-1"], "--learning-rate: learning_rate must be"),
    (["train", "{x}", "-o", "{d}/out.fae", "--epochs", "0"], "--epochs: epochs must be"),
    (["train", "{x}", "-o", "{d}/out.fae", "--validation-split", "1.5"], "--validation-split"),
    (["train", "{x}", "-o", "{d}/out.fae", "--threads", "0"], "n_threads must be"),
    (["train", "{x}", "-o", "{d}/out.fae", "--hidden", "0"], "widths must be >= 1"),
    (["train", "{x}", "-o", "{d}/out.fae", "--hidden", "a,b"], "expected integer widths"),
    (["train", "{x}", "-o", "{d}/out.fae", "--activation", "bogus"], "expected one of linear, relu"),
    (["train", "{x}", "-o", "{d}/out.fae", "--loss", "bogus"], "invalid choice: 'bogus'"),
    (["train", "{x}", "-o", "{d}/out.fae", "--loss", "bce", "--output-activation", "linear"],
     "needs output_activation"),
    (["encode", "{d}/mlp.fae", "{d}/missing.npy", "-o", "{d}/out.npy"], "an MLPClassifier has no codes to give"),
    (["reconstruct", "{d}/mlp.fae", "{x}", "-o", "{d}/out.npy"], "does not reconstruct its inputs"),
    (["score", "{d}/mlp.fae", "{x}"], "gives no per-sample reconstruction errors"),
    (["train", "{x}"], "-o/--output"),
    (["train", "{x}", "-o", "{d}"], "is a folder"),
]


@pytest.mark.parametrize("argv,expected", BAD, ids=[" ".join(a[:1] + [e[:30]]) for a, e in BAD])
def test_bad_input(files, model, capsys, argv, expected):
    d = files["dir"] / "bad"
    d.mkdir(exist_ok=True)
    bad_cases(d, model[0])
    args = [a.format(d=d, model=model[0], x=files["dir"] / "x.npy", top=files["dir"]) for a in argv]
    rc, _out, err = cli(capsys, *args)
    line = one_error_line(err)
    assert rc == 2 and expected in line, line
    assert not (d / "out.npy").exists() and not (d / "out.fae").exists() and not (d / "out.json").exists()


# ---- demo -----------------------------------------------------------------------------------------


def test_demo_on_the_embedded_digits(capsys):
    rc, out, err = cli(capsys, "demo", "--epochs", "3", "--threads", "1", "--no-plot")
    assert rc == 0, err
    lines = out.splitlines()
    assert "UCI 8x8 digits" in lines[0] and "1438 train, 359 test, 64 features" in lines[0]
    assert lines[1].startswith("model: 64 -> 16 -> 64 (relu hidden, sigmoid output), bce")
    assert [line.split()[1] for line in lines if line.startswith("epoch")] == ["1/3", "2/3", "3/3"]
    assert "compression: 64 features -> a code of 16 numbers (4.0x smaller)" in lines
    # The error it reports is the model's: the same training through the API.
    images, _ = fastae.load_digits()
    order = np.random.default_rng(0).permutation(len(images))
    x_test, x_train = images[order[:359]], images[order[359:]]
    ae = fastae.Autoencoder(hidden_layer_sizes=(16,), learning_rate=3e-3, batch_size=32, epochs=3, n_threads=1,
                            random_state=0).fit(x_train, validation_data=x_test)
    mse = float(np.mean((ae.predict(x_test).astype(np.float64) - x_test) ** 2))
    error = next(line for line in lines if line.startswith("reconstruction error"))
    assert f"bce {-ae.score(x_test):.6f}, mse {mse:.6f}" in error
    speed = next(line for line in lines if line.startswith("training speed"))
    assert speed.startswith("training speed: 1438 samples x 3 epochs in") and "samples/s" in speed
    # text art: 4 test digits beside their reconstructions, 8 rows each
    art = [line for line in lines if " | " in line]
    assert art.count(next(line for line in art if "original" in line)) == 2 and len(art) == 2 * 9
    assert lines[-1] == ""


def test_demo_data_files(files, tmp_path, capsys):
    """Any .npy (the crash of the bug list), .npz (x_train/x_test or one array) or IDX file."""
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "split.npz", x_train=rng.integers(0, 256, size=(300, 5, 5), dtype=np.uint8),
             x_test=rng.integers(0, 256, size=(50, 5, 5), dtype=np.uint8))
    cases = [(files["dir"] / "x.npy", "96 train, 24 test, 9 features"),
             (tmp_path / "split.npz", "300 train, 50 test, 25 features"),
             (files["dir"] / "images-idx3-ubyte.gz", "48 train, 12 test, 16 features")]
    for path, expected in cases:
        rc, out, err = cli(capsys, "demo", "--data", path, "--epochs", "2", "--hidden", "8", "3", "--no-plot")
        assert rc == 0, err
        assert expected in out.splitlines()[0]
        assert f"{expected.split()[-2]} -> 8 -> 3 -> 8 -> {expected.split()[-2]}" in out


@pytest.mark.parametrize("argv,expected", [
    (["--activation", "bogus"], "expected one of"),
    (["--learning-rate", "-1"], "--learning-rate: learning_rate must be"),
    (["--epochs", "0"], "--epochs"),
    (["--data", "missing.npz"], "missing.npz: no such file"),
    (["--show", "-1"], "--show"),
])
def test_demo_checks_everything_before_printing(tmp_path, monkeypatch, capsys, argv, expected):
    monkeypatch.chdir(tmp_path)
    rc, out, err = cli(capsys, "demo", *argv)
    assert rc == 2 and out == "" and expected in one_error_line(err)


# ---- pictures ---------------------------------------------------------------------------------------


def test_plot_without_matplotlib(files, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    rc, out, err = cli(capsys, "train", files["dir"] / "x.npy", "-o", tmp_path / "m.fae", "--plot", tmp_path / "h.png")
    assert rc == 2 and "needs matplotlib, which is not installed" in one_error_line(err)
    assert not (tmp_path / "m.fae").exists()  # checked before training
    monkeypatch.chdir(tmp_path)
    rc, out, err = cli(capsys, "demo", "--epochs", "1", "--show", "0")
    assert rc == 0 and "picture: none (a picture needs matplotlib, which is not installed" in out
    assert not (tmp_path / "fastae-demo.png").exists()


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="needs matplotlib")
def test_plot_option_writes_the_figures_of_fastae_plot(files, model, tmp_path, monkeypatch, capsys):
    """What the command line asks of fastae.plot and does with the answer, with a stand-in module
    recording the calls (the real module is tested below when it is there)."""
    import types

    from matplotlib.figure import Figure

    calls = []

    def figure(name):
        def make(*args, **kwargs):
            calls.append((name, args, kwargs))
            fig = Figure(figsize=(2, 2))
            fig.add_subplot().plot([0, 1], [1, 0])
            return fig
        return make

    stand_in = types.ModuleType("fastae.plot")
    stand_in.history, stand_in.reconstructions = figure("history"), figure("reconstructions")
    monkeypatch.setitem(sys.modules, "fastae.plot", stand_in)
    monkeypatch.setattr(fastae, "plot", stand_in, raising=False)
    png = b"\x89PNG\r\n\x1a\n"
    rc, out, err = cli(capsys, "train", files["dir"] / "x.npy", "-o", tmp_path / "m.fae", "--epochs", "2", "-q",
                       "--threads", "1", "--plot", tmp_path / "h.png")
    assert rc == 0 and (tmp_path / "h.png").read_bytes()[:8] == png, err
    name, args, _ = calls.pop()
    assert name == "history" and args[0].history_["loss"] == fastae.load(tmp_path / "m.fae").history_["loss"]
    rc, out, err = cli(capsys, "reconstruct", model[0], files["dir"] / "x.npy", "-o", tmp_path / "r.npy", "--plot",
                       tmp_path / "r.png", "--image-shape", "3x3", "--plot-samples", "5")
    assert rc == 0 and (tmp_path / "r.png").read_bytes()[:8] == png, err
    name, args, kwargs = calls.pop()
    assert name == "reconstructions" and kwargs == {"image_shape": (3, 3), "n_images": 5}
    np.testing.assert_array_equal(args[1], files["X"])
    rc, out, err = cli(capsys, "reconstruct", model[0], files["dir"] / "images-idx3-ubyte", "-o", tmp_path / "r.npy",
                       "--plot", tmp_path / "r.png")
    assert rc == 2 and "16 features per sample (images of 4x4); the model" in one_error_line(err)
    monkeypatch.chdir(tmp_path)
    rc, out, err = cli(capsys, "demo", "--epochs", "1", "--show", "0", "--plot", "d.svg")
    assert rc == 0 and "picture: wrote d.svg" in out and (tmp_path / "d.svg").read_text().lstrip().startswith("<?xml")
    name, args, kwargs = calls.pop()
    assert name == "reconstructions" and kwargs == {"image_shape": (8, 8), "n_images": 8}
    assert args[1].shape == (359, 64)
    rc, out, err = cli(capsys, "demo", "--epochs", "1", "--plot", "d.nosuchformat")
    assert rc == 2 and out == "" and "the picture's format is told by its extension" in one_error_line(err)


plot_available = pytest.mark.skipif(
    importlib.util.find_spec("matplotlib") is None or importlib.util.find_spec("fastae.plot") is None,
    reason="needs matplotlib and fastae.plot")


@plot_available
def test_plots_are_written(files, model, tmp_path, monkeypatch, capsys):
    png = b"\x89PNG\r\n\x1a\n"
    rc, out, err = cli(capsys, "train", files["dir"] / "x.npy", "-o", tmp_path / "m.fae", "--epochs", "2", "-q",
                       "--plot", tmp_path / "h.png")
    assert rc == 0, err
    assert (tmp_path / "h.png").read_bytes()[:8] == png
    rc, out, err = cli(capsys, "reconstruct", model[0], files["dir"] / "x.npy", "-o", tmp_path / "r.npy", "--plot",
                       tmp_path / "r.png", "--image-shape", "3x3")
    assert rc == 0 and (tmp_path / "r.png").read_bytes()[:8] == png, err
    monkeypatch.chdir(tmp_path)
    rc, out, err = cli(capsys, "demo", "--epochs", "1", "--show", "0")
    assert rc == 0 and "picture: wrote fastae-demo.png" in out, err
    assert (tmp_path / "fastae-demo.png").read_bytes()[:8] == png


def test_reconstruct_plot_needs_an_image_shape(files, model, tmp_path, capsys):
    if importlib.util.find_spec("matplotlib") is None or importlib.util.find_spec("fastae.plot") is None:
        pytest.skip("needs matplotlib and fastae.plot")
    rc, _out, err = cli(capsys, "reconstruct", model[0], files["dir"] / "x.npy", "-o", tmp_path / "r.npy",
                       "--plot", tmp_path / "r.png", "--image-shape", "2x2")
    assert rc == 2 and "has 4 pixels; the data have 9 features" in one_error_line(err)


# ---- help, the module entry point, the console script -----------------------------------------------


@pytest.mark.parametrize("command", [[], ["train"], ["encode"], ["reconstruct"], ["score"], ["info"], ["demo"]])
def test_help_everywhere(capsys, command):
    rc, out, _err = cli(capsys, *command, "--help")
    assert rc == 0 and out.startswith(f"usage: fastae {' '.join(command)}".rstrip())


def test_python_m_fastae_as_a_subprocess(files, model, tmp_path):
    """What the console script runs, in a process of its own (two runs: each pays the imports)."""
    path, reference = model
    r = run("encode", path, files["dir"] / "x.npy", "-o", tmp_path / "c.npy")
    assert r.returncode == 0 and r.stdout.startswith("wrote"), r.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "c.npy"), reference.transform(files["X"]))
    r = run("encode", tmp_path / "missing.fae", files["dir"] / "x.npy", "-o", tmp_path / "c2.npy")
    assert r.returncode == 2 and "missing.fae: no such file" in one_error_line(r.stderr)


def test_no_command_prints_the_commands(capsys):
    rc, out, _err = cli(capsys)
    assert rc == 2 and all(c in out for c in ("train", "encode", "reconstruct", "score", "info", "demo"))


def test_console_script_and_extras_in_pyproject():
    tomllib = pytest.importorskip("tomllib")
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)["project"]
    module, _, name = project["scripts"]["fastae"].partition(":")
    assert getattr(importlib.import_module(module), name) is _cli.main
    extras = project["optional-dependencies"]
    assert extras["plot"] == ["matplotlib"] and "matplotlib" in extras["test"] and extras["progress"] == ["tqdm"]

