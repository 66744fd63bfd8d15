"""The model-file fuzz target (csrc/tests/fuzz_model_file.cpp, fuzz/README.md): its seed corpus is
real model files, and a 60-second libFuzzer run (clang, AddressSanitizer, UBSan) over
fastae::model_from_bytes and fastae::load_model ends with no crash, no hang, no error other than
ModelFileError, no disagreement between the two, and no allocation beyond the input's size.

The run needs clang++ with libFuzzer (Debian/Ubuntu: apt-get install clang libclang-rt-dev; .ci/run
installs it). Without one the run is skipped, unless FASTAE_REQUIRE_FUZZ=1 (as in CI), where it
fails. FASTAE_FUZZ_SECONDS changes the length of the run."""

import math
import os
import re
import shutil
import struct
import subprocess
import sysconfig

import numpy as np
import pytest
from conftest import REPO
from test_cpp import _tool
from test_model_file import KNOWN, build_v1, file_of, netw, parse_v1, parse_v2, section, sections_of

from fastae import _core

SEEDS = os.path.join(REPO, "fuzz", "corpus", "model_file")
DICTIONARY = os.path.join(REPO, "fuzz", "model_file.dict")
FUZZ_SECONDS = int(os.environ.get("FASTAE_FUZZ_SECONDS", "60"))

# The limits of a run, from the longest input. fuzz_model_file.cpp checks, input by input, that
# loading keeps its heap within HEAP_FACTOR * size + HEAP_SLACK; libFuzzer's own guards back it up:
# no single allocation of MALLOC_LIMIT_MB or more (that budget for the longest input, rounded up to
# whole MiB), a process-wide RSS cap (ASan's quarantine of up to 256 MiB plus the corpus in memory
# fit well under it), and a per-input time limit far above the milliseconds an input takes.
MAX_LEN = 64 * 1024
HEAP_FACTOR, HEAP_SLACK = 8, 64 * 1024  # kHeapFactor, kHeapSlack in fuzz_model_file.cpp
MALLOC_LIMIT_MB = math.ceil((HEAP_FACTOR * MAX_LEN + HEAP_SLACK) / 2**20)
# The RSS cap is a backstop (the per-input heap budget above is the check): runs here plateau at
# 516-525 MiB (ASan's quarantine and allocator regions; 4 runs, 1.4 million inputs), but one CI run
# was at 1321 MiB by its 447th input with 27 MiB of live heap, which no rerun reproduced; 2 GiB
# keeps the cap without failing on the allocator's resident pages.
RSS_LIMIT_MB = 2048
TIMEOUT_S = 10


def libfuzzer_args(artifacts):
    return [f"-max_len={MAX_LEN}", f"-malloc_limit_mb={MALLOC_LIMIT_MB}", f"-rss_limit_mb={RSS_LIMIT_MB}",
            f"-timeout={TIMEOUT_S}", "-use_value_profile=1", f"-dict={DICTIONARY}",
            f"-artifact_prefix={artifacts}{os.sep}", "-print_final_stats=1"]


# ---- the seed corpus -------------------------------------------------------------------------

def _same_content(a, b):
    """Two loaded files (model, settings, metadata) hold the same network, weights, state and settings."""
    (ma, sa, da), (mb, sb, db) = a, b
    state_a, state_b = ma.optimizer_state(), mb.optimizer_state()
    same_state = state_a is state_b is None or (
        state_a is not None and state_b is not None and state_a["config"] == state_b["config"]
        and state_a["steps"] == state_b["steps"] and np.array_equal(state_a["m"], state_b["m"])
        and np.array_equal(state_a["v"], state_b["v"]))
    return (ma.spec() == mb.spec() and np.array_equal(ma.get_params(), mb.get_params()) and same_state
            and sa == sb and da == db)


def test_the_seed_corpus_is_small_real_model_files():
    """Every seed loads through both entry points (so the fuzzer starts deep in the reader) and
    writes back to itself: a version-2 seed byte for byte, less the sections the reader skips; a
    version-1 seed (the corpus keeps those of fastae 0.1.0) as version 2 with the same content, and
    as version 1, by the document's writer, byte for byte. Together they cover both versions, every
    section (a skipped one too), the state of every optimizer, every activation, loss, initializer and
    noise, every per-layer penalty, tied weights and a frozen layer, 72- and 88-byte layer records,
    metadata or none, mirrored autoencoders and a plain network, deep and shallow."""
    names = sorted(os.listdir(SEEDS))
    assert len(names) >= 15
    seen = set()
    for name in names:
        path = os.path.join(SEEDS, name)
        data = open(path, "rb").read()
        assert len(data) <= 4096, f"{name}: seeds stay tiny"
        loaded = _core.model_from_bytes(data)
        model, settings, metadata = loaded
        assert _same_content(_core.load_model(os.fsencode(path)), loaded), name
        written = _core.model_to_bytes(model, settings, True, metadata)
        assert _same_content(_core.model_from_bytes(written), loaded), name
        version = struct.unpack_from("<I", data, 8)[0]
        seen.add(f"version {version}")
        if version == 1:
            f = parse_v1(data)
            assert build_v1(f["widths"], f["activation"], f["output_activation"], f["loss"], settings,
                            model.get_params(), state=model.optimizer_state(), metadata=metadata) == data, name
        else:
            # Written back, it is the same file, less the sections this fastae skips (72-byte layer
            # records, of files from before tied weights, written as this version's 88-byte ones).
            sections = sections_of(data)
            spec = parse_v2(data)["spec"]
            record = struct.unpack_from("<I", dict((t, p) for t, _, _, p in sections)["NETW"], 12)[0]
            seen.add(f"layer records of {record} bytes")
            kept = b"".join(section(tag, netw(spec) if tag == "NETW" else payload, flags)
                            for tag, flags, _, payload in sections if tag in KNOWN)
            assert written == file_of(2, kept), name
            if record == 88:
                assert netw(spec) == dict((t, p) for t, _, _, p in sections)["NETW"], name
            seen.update(f"section {tag}" if tag in KNOWN else "skipped section" for tag, _, _, _ in sections)
            seen.add(f"loss {spec['loss']}")
            for layer in spec["layers"]:
                seen.update({f"activation {layer['activation']}", f"initializer {layer['initializer']}",
                             f"noise {layer['noise']}"})
                seen.update(f"layer {k}" for k in ("l1", "l2", "dropout", "activity_l1", "sparsity_weight",
                                                    "contractive") if layer[k] > 0)
                seen.update({"tied layer"} if layer["tied_to"] >= 0 else set())
                seen.update({"frozen layer"} if not layer["trainable"] else set())
        state = model.optimizer_state()
        seen.add("state" if state is not None else "no state")
        if state is not None:
            seen.add(f"{state['config']['optimizer']} state, version {version}")
        sizes = list(model.layer_sizes)
        seen.add("metadata" if metadata else "no metadata")
        seen.add("mirrored" if sizes == sizes[::-1] else "not mirrored")
        seen.add("deep" if len(sizes) > 8 else "shallow")
    assert seen == {"version 1", "version 2", "state", "no state", "metadata", "no metadata", "mirrored",
                    "not mirrored", "deep", "shallow", "skipped section",
                    "adam state, version 1", "sgd state, version 1",
                    *(f"{kind} state, version 2" for kind in _core.OPTIMIZERS),
                    *(f"section {tag}" for tag in KNOWN),
                    *(f"activation {a}" for a in _core.ACTIVATIONS), *(f"loss {l}" for l in _core.LOSSES),
                    *(f"initializer {i}" for i in _core.INITIALIZERS), *(f"noise {n}" for n in _core.NOISES),
                    *(f"layer {k}" for k in ("l1", "l2", "dropout", "activity_l1", "sparsity_weight", "contractive")),
                    "tied layer", "frozen layer", "layer records of 72 bytes", "layer records of 88 bytes"}


# ---- the libFuzzer run -----------------------------------------------------------------------

def _has_libfuzzer(cxx, folder):
    src = os.path.join(folder, "probe.cpp")
    with open(src, "w") as f:
        f.write('#include <cstddef>\n#include <cstdint>\nextern "C" int LLVMFuzzerTestOneInput('
                'const std::uint8_t*, std::size_t) { return 0; }\n')
    probe = subprocess.run([cxx, "-fsanitize=fuzzer,address,undefined", src, "-o", os.path.join(folder, "probe")],
                           capture_output=True, text=True)
    return probe.returncode == 0


def _clang_with_libfuzzer(folder):
    for name in ["clang++", *(f"clang++-{v}" for v in range(21, 13, -1))]:
        path = shutil.which(name)
        if path and _has_libfuzzer(path, folder):
            return path
    return None


@pytest.fixture(scope="session")
def fuzzer(tmp_path_factory):
    clang = _clang_with_libfuzzer(str(tmp_path_factory.mktemp("probe")))
    if clang is None:
        why = ("no clang++ with libFuzzer (-fsanitize=fuzzer) on PATH; Debian/Ubuntu: "
               "apt-get install clang libclang-rt-dev (.ci/run does)")
        if os.environ.get("FASTAE_REQUIRE_FUZZ") == "1":
            pytest.fail(why)
        pytest.skip(why)
    cmake, ninja = _tool("cmake"), _tool("ninja")
    build_dir = os.path.join(REPO, "build", "pytest-fuzz")
    # A build folder configured with another compiler (clang++-14 then clang++, say) cannot be
    # reconfigured in place: start it afresh.
    if _cached(build_dir, "CMAKE_CXX_COMPILER") not in (None, clang):
        shutil.rmtree(build_dir)
    args = [cmake, "-S", REPO, "-B", build_dir, "-DFASTAE_BUILD_TESTS=ON", "-DFASTAE_FUZZ=ON",
            f"-DCMAKE_CXX_COMPILER={clang}", "-DCMAKE_BUILD_TYPE=Release",
            f"-DCMAKE_PREFIX_PATH={sysconfig.get_paths()['purelib']}"]
    if ninja and not os.path.exists(os.path.join(build_dir, "CMakeCache.txt")):
        args += ["-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={ninja}"]
    configure = subprocess.run(args, capture_output=True, text=True)
    assert configure.returncode == 0, configure.stdout[-4000:] + configure.stderr[-4000:]
    build = subprocess.run([cmake, "--build", build_dir, "--target", "fuzz_model_file", "-j",
                            str(os.cpu_count() or 2)], capture_output=True, text=True)
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    return os.path.join(build_dir, "csrc", "tests", "fuzz_model_file")


def _cached(build_dir, name):
    """A variable's value in build_dir's CMakeCache.txt, or None."""
    try:
        with open(os.path.join(build_dir, "CMakeCache.txt")) as f:
            for line in f:
                if line.startswith(name + ":"):
                    return line.split("=", 1)[1].strip()
    except FileNotFoundError:
        pass
    return None


def _stat(log, name):
    m = re.search(rf"^stat::{name}:\s+(\d+)", log, re.M)
    assert m, f"no stat::{name} in the fuzzer's output:\n{log[-3000:]}"
    return int(m.group(1))


def test_a_short_fuzz_run_finds_nothing(fuzzer, tmp_path):
    corpus, artifacts = tmp_path / "corpus", tmp_path / "artifacts"
    corpus.mkdir()
    artifacts.mkdir()
    run = subprocess.run([fuzzer, *libfuzzer_args(artifacts), f"-max_total_time={FUZZ_SECONDS}", str(corpus),
                          SEEDS], cwd=tmp_path, capture_output=True, text=True, timeout=FUZZ_SECONDS + 300,
                         env={**os.environ, "FASTAE_FUZZ_REPORT": "1"})
    log = run.stdout + run.stderr
    found = sorted(os.listdir(artifacts))
    assert run.returncode == 0 and not found, f"rc {run.returncode}, artifacts {found}:\n{log[-6000:]}"
    runs, per_second = _stat(log, "number_of_executed_units"), _stat(log, "average_exec_per_sec")
    cov = [int(c) for c in re.findall(r"\bcov: (\d+)", log)]
    tally = re.search(r"inputs loaded (\d+); rejected: magic (\d+), header or size (\d+), checksum (\d+), "
                      r"content (\d+)", log)
    heap = re.search(r"fullest heap budget while loading: ([\d.]+)% \((\d+) bytes for a (\d+)-byte input", log)
    assert tally and heap, log[-3000:]
    loaded, magic, header, checksum, content = map(int, tally.groups())
    print(f"{runs} inputs in {FUZZ_SECONDS} s ({per_second}/s), coverage {max(cov)} edges, "
          f"{len(os.listdir(corpus))} new corpus inputs; loaded {loaded}, rejected: magic {magic}, "
          f"header {header}, checksum {checksum}, content {content}; heap peak {heap.group(2)} bytes for a "
          f"{heap.group(3)}-byte input ({heap.group(1)}% of its budget)")
    assert runs >= 1000 and loaded + magic + header + checksum + content == runs
    # The re-sealing mutator takes most inputs past the checksum into the fields, and some load.
    assert content > checksum and loaded > 0
    # The heap accounting saw the loads (a peak above zero), not an idle hook.
    assert int(heap.group(2)) > 0
