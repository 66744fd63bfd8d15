"""fastae.choose_code_size: the rule on scripted figures, and a real run on the embedded digits."""

import math

import numpy as np
import pytest

import fastae
from fastae import choose_code_size
from fastae._code_size import CodeSizeReport, recommend_code_size


def test_the_rule_is_the_smallest_code_within_tolerance_of_the_best():
    sizes = [2, 4, 8, 16, 32]
    losses = [0.30, 0.20, 0.1015, 0.1000, 0.1002]
    assert recommend_code_size(sizes, losses, 0.02) == 8      # 0.1015 <= 0.1 * 1.02
    assert recommend_code_size(sizes, losses, 0.01) == 16     # 0.1015 > 0.101; 16 is the best
    assert recommend_code_size(sizes, losses, 0.0) == 16
    assert recommend_code_size(sizes, losses, 2.0) == 2       # 0.30 <= 0.1 * 3
    assert recommend_code_size(sizes, [math.nan, 0.5, 0.4, 0.41, 0.45], 0.05) == 8  # NaN never recommended
    with pytest.raises(ValueError, match="finite"):
        recommend_code_size([2, 4], [math.nan, math.inf], 0.1)


def test_report_table_names_every_size_and_the_recommendation():
    report = CodeSizeReport([4, 8, 16], [0.2, 0.101, 0.1], [1.0, 1.5, 2.0], {}, 0.02, "mse")
    assert report.recommended == 8
    text = str(report)
    for size in ("4", "8", "16"):
        assert any(line.split()[0] == size for line in text.splitlines()[2:5])
    assert "<- recommended" in [line for line in text.splitlines() if line.split()[0] == "8"][0]
    assert "recommended: 8" in text


def test_a_real_run_on_digits(capsys):
    X, _ = fastae.load_digits()
    report = choose_code_size(X[:600], candidates=(16, 2, 6), epochs=15, batch_size=32, random_state=0, verbose=1)
    assert report.sizes == [2, 6, 16]
    assert set(report.models) == {2, 6, 16}
    assert all(m.hidden_layer_sizes == (s,) for s, m in report.models.items())
    assert report.val_losses[0] > report.val_losses[1] > report.val_losses[2]  # more code, less loss
    best = min(report.val_losses)
    assert report.recommended == min(s for s, v in zip(report.sizes, report.val_losses) if v <= best * 1.02)
    # each loss is the model's own mean loss on the same held-out rows
    order = np.random.default_rng(0).permutation(600)
    held_out = X[:600][order[:120]]
    for size, loss in zip(report.sizes, report.val_losses):
        assert loss == pytest.approx(-report.models[size].score(held_out), rel=1e-6)
    assert all(s > 0 for s in report.train_seconds)
    assert capsys.readouterr().out.count("choose_code_size: code") == 3


def test_prefix_layers_and_bad_arguments():
    X, _ = fastae.load_digits()
    report = choose_code_size(X[:200], candidates=(3, 5), hidden_layer_sizes=(20, 99), epochs=1, random_state=1)
    assert [m.hidden_layer_sizes for m in report.models.values()] == [(20, 3), (20, 5)]
    with pytest.raises(ValueError, match="candidates"):
        choose_code_size(X[:50], candidates=(4, 4))
    with pytest.raises(ValueError, match="candidates"):
        choose_code_size(X[:50], candidates=(0, 4))
    with pytest.raises(ValueError, match="validation_split"):
        choose_code_size(X[:50], validation_split=1.5)
    with pytest.raises(ValueError, match="learning_rate"):
        choose_code_size(X[:50], candidates=(2,), learning_rate=-1.0)
