"""The worked examples under examples/python/, run on the small data they default to (the UCI
digits fastae ships), so that they keep working as the package changes."""

import importlib.util
import os

import numpy as np
import pytest

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "python")


def example(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(EXAMPLES, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_compression_reconstructs_the_digits(capsys):
    ae, mse = example("mnist_compression").main([])
    out = capsys.readouterr().out
    assert "4.0x smaller" in out and "samples/s" in out
    assert mse < 0.02  # the pixels' own variance is about 0.1: the 16-float code keeps most of it
    assert ae.transform(np.zeros((1, 64), dtype=np.float32)).shape == (1, 16)


def test_compression_writes_its_picture(tmp_path):
    pytest.importorskip("matplotlib")
    example("mnist_compression").main(["--epochs", "2", "--plot", str(tmp_path / "r.png")])
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_encoder_transfer_trains_both_classifiers(capsys):
    transfer, scratch = example("encoder_transfer").main(["--labels", "300", "--epochs", "30"])
    assert transfer > 0.7 and scratch > 0.7  # ten classes: chance is 0.1
    assert "frozen pretrained encoder" in capsys.readouterr().out


def test_anomaly_detection_separates_the_normal_digit(capsys):
    module = example("anomaly_detection")
    auc, flagged_normal, flagged_others = module.main(["--epochs", "30"])
    assert auc > 0.95 and flagged_others > 0.5 and flagged_normal < 0.2
    assert "most unusual test image" in capsys.readouterr().out
    rng = np.random.default_rng(0)  # the example's AUC against scikit-learn's, ties included
    scores, positive = rng.integers(0, 5, 200).astype(float), rng.random(200) < 0.3
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    assert module.roc_auc(scores, positive) == pytest.approx(sklearn_metrics.roc_auc_score(positive, scores))
