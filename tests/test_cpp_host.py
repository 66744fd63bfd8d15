"""C++ hosts: examples/cpp built three ways -- add_subdirectory(fastae) in a host project, against a
`cmake --install` tree, and against the pip-installed package (`python -m fastae --cmake-dir`) --
then run on models Python saved (codes must equal ae.transform) and training models Python loads
(weights must equal Python's for the same seed).

Exactness: the codes are compared bit for bit, not to a tolerance. The pip route links the very
static library that was built beside this fastae._core; the other two compile the same sources
with the same compiler and flags. Inference does the same operations in the same order in both
processes (the engine's chunking and summation order do not depend on the caller), and the CSV
files carry float32 values with 9 significant digits, which round-trip exactly.

The library is compiled once per session (about a minute on 2 cores); the examples are small.
"""

import os
import re
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastae
from fastae import Autoencoder

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(REPO, "examples", "cpp")
ROUTES = ["subdirectory", "installed", "pip"]


def _tool(name):
    here = os.path.dirname(sys.executable)
    return shutil.which(name, path=here + os.pathsep + os.environ.get("PATH", ""))


def _run(cmd, **kw):
    out = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=900, **kw)
    if out.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} failed ({out.returncode}):\n{out.stdout[-4000:]}\n"
                             f"{out.stderr[-4000:]}")
    return out


@pytest.fixture(scope="session")
def cmake():
    exe = _tool("cmake")
    if exe is None:
        pytest.skip("cmake is not installed (pip install '.[test]' brings it)")
    generator = ["-G", "Ninja"] if _tool("ninja") else []
    return [exe, *generator, "-DCMAKE_BUILD_TYPE=Release"], exe


def _configure_and_build(cmake, source, build, *defines):
    configure, exe = cmake
    _run([*configure, "-S", source, "-B", build, "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON", *defines])
    _run([exe, "--build", build, "--parallel", str(os.cpu_count() or 2)])


@pytest.fixture(scope="session")
def hosts(cmake, tmp_path_factory):
    """{route: {"encode": path, "train": path, "build": folder}} for the three routes."""
    root = tmp_path_factory.mktemp("cpp_hosts")
    # Route 1: a host project that adds fastae and both examples as subdirectories; the same
    # build is installed into a prefix for route 2.
    (root / "super").mkdir()
    (root / "super" / "CMakeLists.txt").write_text(textwrap.dedent(f"""
        cmake_minimum_required(VERSION 3.18)
        project(host_project LANGUAGES CXX)
        add_subdirectory("{REPO}" fastae)
        add_subdirectory("{EXAMPLES}/encode" encode)
        add_subdirectory("{EXAMPLES}/train" train)
    """))
    eigen_prefixes = [p for p in sys.path if os.path.isdir(os.path.join(p, "cmeel.prefix"))]
    _configure_and_build(cmake, root / "super", root / "super-build", "-DFASTAE_INSTALL=ON",
                         f"-DCMAKE_PREFIX_PATH={';'.join(eigen_prefixes)}")
    _run([cmake[1], "--install", root / "super-build", "--prefix", root / "prefix"])
    routes = {"subdirectory": {"encode": root / "super-build" / "encode" / "fastae_encode",
                               "train": root / "super-build" / "train" / "fastae_train",
                               "build": root / "super-build"}}
    # Routes 2 and 3: each example on its own, finding fastae with find_package.
    cmake_dir = _run([sys.executable, "-m", "fastae", "--cmake-dir"]).stdout.strip()
    finders = {"installed": f"-DCMAKE_PREFIX_PATH={root / 'prefix'}", "pip": f"-Dfastae_DIR={cmake_dir}"}
    for route, finder in finders.items():
        routes[route] = {"config_dir": root / "prefix" / "lib" / "cmake" / "fastae" if route == "installed"
                         else cmake_dir}
        for example in ("encode", "train"):
            build = root / f"{route}-{example}"
            _configure_and_build(cmake, os.path.join(EXAMPLES, example), build, finder)
            routes[route][example] = build / f"fastae_{example}"
            routes[route][f"{example}_build"] = build
    return routes


@pytest.fixture(scope="module")
def digits():
    return fastae.load_digits()[0]


def _write_csv(path, X):
    np.savetxt(path, X, fmt="%.9g", delimiter=",")
    assert np.array_equal(np.loadtxt(path, delimiter=",", dtype=np.float32, ndmin=2), X)  # exact round trip


def _read_csv(path):
    return np.loadtxt(path, delimiter=",", dtype=np.float32, ndmin=2)


def test_installed_and_pip_configs_need_no_eigen_and_leak_no_flags(hosts):
    for route in ("installed", "pip"):
        targets = open(os.path.join(hosts[route]["config_dir"], "fastaeTargets.cmake")).read()
        assert "fastae::fastae" in targets and "Threads::Threads" in targets
        assert "Eigen" not in targets and "march" not in targets
        for example in ("encode", "train"):
            cache = open(hosts[route][f"{example}_build"] / "CMakeCache.txt").read()
            found = re.search(r"^fastae_DIR:\w+=(.*)$", cache, re.M).group(1)
            assert found == str(hosts[route]["config_dir"])  # the intended copy, not another one
            assert "Eigen3_DIR" not in cache
            commands = open(hosts[route][f"{example}_build"] / "compile_commands.json").read()
            assert "-march" not in commands and "eigen" not in commands.lower()


@pytest.mark.parametrize("route", ROUTES)
def test_cpp_host_codes_equal_python_transform_exactly(hosts, route, digits, tmp_path):
    ae = Autoencoder(hidden_layer_sizes=(32, 10), epochs=3, batch_size=64, random_state=0).fit(digits)
    ae.save(tmp_path / "model.fae")
    X = np.concatenate([digits[:300], np.random.default_rng(0).random((300, 64), dtype=np.float32)])
    _write_csv(tmp_path / "samples.csv", X)
    out = _run([hosts[route]["encode"], tmp_path / "model.fae", tmp_path / "samples.csv", tmp_path / "codes.csv"])
    assert "600 samples of 64 features -> codes of 10" in out.stdout
    codes = _read_csv(tmp_path / "codes.csv")
    expected = ae.transform(X)
    assert codes.shape == expected.shape == (600, 10)
    assert np.array_equal(codes, expected), f"max |diff| {np.max(np.abs(codes - expected))}"


@pytest.mark.parametrize("route", ROUTES)
def test_cpp_host_predictions_of_supervised_models_equal_python_exactly(hosts, route, digits, tmp_path):
    """An MLPClassifier's probabilities and an MLPRegressor's predictions, saved from Python and
    loaded by fastae::load_model, then Model::predict (encode --predict)."""
    labels = fastae.load_digits()[1]
    clf = fastae.MLPClassifier(hidden_layer_sizes=(16,), epochs=3, random_state=0).fit(digits, labels)
    reg = fastae.MLPRegressor(hidden_layer_sizes=(8,), epochs=3, random_state=0).fit(digits, digits[:, :3])
    X = digits[:200]
    _write_csv(tmp_path / "samples.csv", X)
    outputs = []
    for est, expected in ((clf, clf.predict_proba(X)), (reg, reg.predict(X).astype(np.float32))):
        est.save(tmp_path / "model.fae")
        out = _run([hosts[route]["encode"], tmp_path / "model.fae", tmp_path / "samples.csv", tmp_path / "out.csv",
                    "--predict"])
        assert f"200 samples of 64 features -> outputs of {expected.shape[1]}" in out.stdout
        got = _read_csv(tmp_path / "out.csv")
        assert np.array_equal(got, expected), f"max |diff| {np.max(np.abs(got - expected))}"
        outputs.append(got)
    np.testing.assert_array_equal(clf.classes_[np.argmax(outputs[0], axis=1)], clf.predict(X))


@pytest.mark.parametrize("route", ROUTES)
def test_model_trained_in_cpp_equals_python_with_the_same_seed(hosts, route, digits, tmp_path):
    _write_csv(tmp_path / "train.csv", digits)
    out = _run([hosts[route]["train"], tmp_path / "train.csv", tmp_path / "cpp.fae", "--hidden", 24, 6,
                "--epochs", 3, "--batch-size", 100, "--learning-rate", 0.004, "--seed", 123])
    assert out.stdout.count("epoch ") == 3
    loaded = fastae.load(tmp_path / "cpp.fae")
    py = Autoencoder(hidden_layer_sizes=(24, 6), epochs=3, batch_size=100, learning_rate=0.004,
                     random_state=123, n_threads=1).fit(digits)  # the example's default: 1 thread
    assert loaded.hidden_layer_sizes == (24, 6) and loaded.learning_rate == 0.004
    assert np.array_equal(loaded._model.get_params(), py._model.get_params())
    cpp_state, py_state = loaded._model.optimizer_state(), py._model.optimizer_state()
    assert cpp_state["steps"] == py_state["steps"] == 3 * 18
    assert np.array_equal(cpp_state["m"], py_state["m"]) and np.array_equal(cpp_state["v"], py_state["v"])
    # Python continues the C++ training exactly as it continues its own.
    for est in (loaded, py):
        est.set_params(warm_start=True, epochs=2, batch_size=100, random_state=5, n_threads=1).fit(
            digits, resume_optimizer=True)
    assert np.array_equal(loaded._model.get_params(), py._model.get_params())


def test_cpp_early_stopping_keeps_the_best_epoch_as_python_does(hosts, digits, tmp_path):
    """examples/cpp/train with --validation-split and --early-stopping: the same held-out rows,
    the same stop and the same best weights as Autoencoder(validation_split, early_stopping)."""
    _write_csv(tmp_path / "train.csv", digits[:300])
    out = _run([hosts["pip"]["train"], tmp_path / "train.csv", tmp_path / "es.fae", "--hidden", 8, "--epochs", 200,
                "--batch-size", 32, "--learning-rate", 0.05, "--seed", 7, "--validation-split", 0.2,
                "--early-stopping", 2])
    py = Autoencoder(hidden_layer_sizes=(8,), epochs=200, batch_size=32, learning_rate=0.05, random_state=7,
                     n_threads=1, validation_split=0.2, early_stopping=True, patience=2).fit(digits[:300])
    assert py.stop_reason_ == "early_stopping" and "stopped early" in out.stdout
    assert out.stdout.count("epoch ") == len(py.history_["loss"]) < 200
    assert out.stdout.count("(best)") >= 1
    assert np.array_equal(fastae.load(tmp_path / "es.fae")._model.get_params(), py._model.get_params())


def test_cpp_callback_stops_training_and_hosts_report_bad_files(hosts, digits, tmp_path):
    train, encode = hosts["pip"]["train"], hosts["pip"]["encode"]
    _write_csv(tmp_path / "train.csv", digits[:200])
    out = _run([train, tmp_path / "train.csv", tmp_path / "m.fae", "--hidden", 8, "--epochs", 50,
                "--batch-size", 50, "--stop-below", 10.0])
    assert out.stdout.count("epoch ") == 1  # the first epoch's loss (< 1) is below 10: stop
    assert fastae.load(tmp_path / "m.fae")._model.optimizer_state()["steps"] == 4
    data = bytearray((tmp_path / "m.fae").read_bytes())
    data[len(data) // 2] ^= 0x10
    (tmp_path / "bad.fae").write_bytes(bytes(data))
    bad = subprocess.run([str(encode), str(tmp_path / "bad.fae"), str(tmp_path / "train.csv"),
                          str(tmp_path / "c.csv")], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "checksum mismatch" in bad.stderr
    (tmp_path / "ragged.csv").write_text("0.5,0.25\n0.5\n")
    bad = subprocess.run([str(encode), str(tmp_path / "m.fae"), str(tmp_path / "ragged.csv"),
                          str(tmp_path / "c.csv")], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "ragged.csv:2: 1 values where the first sample has 2" in bad.stderr
