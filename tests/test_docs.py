"""The user guide and API reference (docs/, Sphinx) build with every warning an error, from the
installed package's docstrings. Skipped where Sphinx is not installed (the test extra brings it)."""

import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_sphinx_builds_the_docs_without_warnings(tmp_path):
    pytest.importorskip("sphinx")
    out = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
                          os.path.join(REPO, "docs"), str(tmp_path / "html")], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    api = (tmp_path / "html" / "api.html").read_text()
    for name in ("Autoencoder", "MLPClassifier", "MLPRegressor", "choose_code_size", "predict_proba"):
        assert name in api
