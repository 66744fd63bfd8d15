"""Builds the C++ library and its CTest suite with CMake (no Python involved in the build) and
runs it, so that `python -m pytest` covers the C++ tests too. The build folder is kept under
build/ so that a second run only recompiles what changed."""

import os
import shutil
import subprocess
import sys
import sysconfig

import pytest
from conftest import REPO


def _tool(name):
    """A tool from this interpreter's environment first (the [test] extra installs cmake and
    ninja there), then from PATH."""
    here = os.path.join(os.path.dirname(sys.executable), name)
    return here if os.path.exists(here) else shutil.which(name)


def configure_and_build(build_dir, *extra_args):
    cmake = _tool("cmake")
    if cmake is None:
        pytest.fail("cmake not found: install the test extra (pip install '.[test]')")
    args = [cmake, "-S", REPO, "-B", build_dir, "-DFASTAE_BUILD_TESTS=ON", "-DCMAKE_BUILD_TYPE=Release",
            f"-DCMAKE_PREFIX_PATH={sysconfig.get_paths()['purelib']}", *extra_args]
    ninja = _tool("ninja")
    if ninja and not os.path.exists(os.path.join(build_dir, "CMakeCache.txt")):
        args += ["-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={ninja}"]
    subprocess.run(args, check=True, capture_output=True, text=True)
    build = subprocess.run([cmake, "--build", build_dir, "-j", str(os.cpu_count() or 2)], capture_output=True,
                           text=True)
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]


@pytest.fixture(scope="session")
def cpp_build():
    build_dir = os.path.join(REPO, "build", "pytest-cpp")
    configure_and_build(build_dir)
    return build_dir


def test_ctest_suite_passes(cpp_build):
    ctest = _tool("ctest")
    result = subprocess.run([ctest, "--test-dir", cpp_build, "--output-on-failure"], capture_output=True, text=True)
    print(result.stdout[-6000:])
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "100% tests passed" in result.stdout
