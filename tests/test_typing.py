"""Typing: the compiled module's stub (python/fastae/_core.pyi) names everything the module
exports, and mypy and ruff find nothing in the package (each run when installed; the test extra
brings both)."""

import os
import re
import shutil
import subprocess
import sys

import pytest

import fastae
from fastae import _core

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(REPO, "python", "fastae")


def test_the_stub_names_every_public_name_of_the_module():
    stub = open(os.path.join(PACKAGE, "_core.pyi")).read()
    declared = set(re.findall(r"^(?:class|def) (\w+)|^(\w+): ", stub, re.M))
    declared = {a or b for a, b in declared}
    exported = {name for name in dir(_core) if not name.startswith("_")}
    assert exported <= declared, f"missing from _core.pyi: {sorted(exported - declared)}"
    methods = set(re.findall(r"^    def (\w+)", stub, re.M))
    model_methods = {name for name in dir(_core.Model) if not name.startswith("_")}
    assert model_methods <= methods | set(re.findall(r"^    (\w+): ", stub, re.M)) | \
        set(re.findall(r"^    def (\w+)\(self\) ->", stub, re.M)), sorted(model_methods - methods)
    assert os.path.exists(os.path.join(os.path.dirname(fastae.__file__), "py.typed"))


def _tool(name):
    found = shutil.which(name, path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    if found is None:
        pytest.skip(f"{name} is not installed (the test extra brings it)")
    return found


def test_mypy_finds_nothing():
    out = subprocess.run([_tool("mypy"), os.path.join(REPO, "python", "fastae")], capture_output=True, text=True,
                         cwd=REPO, timeout=600)
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]


def test_ruff_finds_nothing():
    out = subprocess.run([_tool("ruff"), "check", "python", "tests", "benchmarks", "examples"], capture_output=True,
                         text=True, cwd=REPO, timeout=600)
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
