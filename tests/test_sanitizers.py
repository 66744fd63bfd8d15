"""The C++ test suite under AddressSanitizer and UndefinedBehaviorSanitizer (CMake option
FASTAE_SANITIZE): built in its own folder under build/ and run with ctest; any finding fails.

Built as Debug with -O1 -g1: -O1 is what the sanitizers' authors recommend (the -O3 build of
network.cpp alone takes minutes under UBSan), Debug keeps Eigen's own bounds assertions on, and
-g1 gives reports file and line."""

import os
import shutil
import subprocess
import textwrap

import pytest
from conftest import REPO
from test_cpp import _tool, configure_and_build

SANITIZERS = "address,undefined"
FLAGS = [f"-fsanitize={SANITIZERS}", "-fno-omit-frame-pointer", "-fno-sanitize-recover=all"]
ENV = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:detect_stack_use_after_return=1:check_initialization_order=1",
           UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")

# A heap overflow (argument "heap") and a signed overflow (argument "int"), each of which the
# sanitizers must catch: proof that they work here before their silence is taken as a pass.
CANARY = textwrap.dedent("""
    #include <climits>
    #include <cstring>
    int main(int argc, char** argv) {
        if (argc > 1 && std::strcmp(argv[1], "heap") == 0) {
            int* p = new int[4];
            const int v = p[argc + 2];
            delete[] p;
            return v == 12345;
        }
        int x = INT_MAX - 1;
        x += argc + 1;
        return x == 0;
    }
""")


@pytest.fixture(scope="module")
def canary(tmp_path_factory):
    compiler = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
    if compiler is None:
        pytest.fail("no C++ compiler found")
    folder = tmp_path_factory.mktemp("canary")
    source = folder / "canary.cpp"
    source.write_text(CANARY)
    binaries = {}
    # ASan alone for the heap case (UBSan's object-size check would report it first), both for
    # the signed overflow.
    for name, flags in (("address", ["-fsanitize=address", "-fno-omit-frame-pointer"]), ("both", FLAGS)):
        binaries[name] = folder / f"canary-{name}"
        build = subprocess.run([compiler, *flags, "-O1", "-g", str(source), "-o", str(binaries[name])],
                               capture_output=True, text=True)
        if build.returncode != 0:
            pytest.skip(f"{compiler} cannot build with {' '.join(flags)} here: {build.stderr[-500:]}")
    return binaries


def test_the_sanitizers_catch_a_planted_heap_overflow_and_signed_overflow(canary):
    heap = subprocess.run([str(canary["address"]), "heap"], capture_output=True, text=True, env=ENV)
    assert heap.returncode != 0 and "AddressSanitizer: heap-buffer-overflow" in heap.stderr, heap.stderr[-2000:]
    signed = subprocess.run([str(canary["both"]), "int"], capture_output=True, text=True, env=ENV)
    assert signed.returncode != 0 and "runtime error: signed integer overflow" in signed.stderr, signed.stderr[-2000:]


def test_cpp_suite_under_asan_and_ubsan_has_no_findings(canary):
    build_dir = os.path.join(REPO, "build", "pytest-cpp-sanitize")
    configure_and_build(build_dir, f"-DFASTAE_SANITIZE={SANITIZERS}", "-DCMAKE_BUILD_TYPE=Debug",
                        "-DCMAKE_CXX_FLAGS_DEBUG=-O1 -g1")
    # the binaries really are instrumented
    test_binary = os.path.join(build_dir, "csrc", "tests", "test_training")
    with open(test_binary, "rb") as f:
        image = f.read()
    assert b"__asan_init" in image and b"__ubsan_handle" in image

    ctest = _tool("ctest")
    result = subprocess.run([ctest, "--test-dir", build_dir, "--output-on-failure", "-V", "--timeout", "600"],
                            capture_output=True, text=True, env=ENV)
    output = result.stdout + result.stderr
    print(output[-4000:])
    assert result.returncode == 0, output[-8000:]
    assert "100% tests passed" in result.stdout
    for finding in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
        assert finding not in output
