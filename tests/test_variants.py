"""Portable builds (CMake option FASTAE_PORTABLE): one extension module per instruction set, picked
at import time by python/fastae/_loader.py.

Two parts. The loader's choice, unit-tested on CPU flags from real /proc/cpuinfo lines (no build).
Then a real portable build with CMake into build/pytest-portable (the engine compiled twice, for
x86-64-v3 and x86-64-v4: about 1.5 min of 2 cores, incremental afterwards): both modules exist,
the AVX2 module holds no AVX-512 instruction at all (so the two copies of Eigen's templates were
not merged) while the AVX-512 one does, and the AVX2 module -- loaded through the real loader from
a package assembled the way a wheel lays it out -- gives the installed module's codes and the NumPy
reference's to float32 tolerance. The AVX-512 module is only run on a CPU that has AVX-512.
"""

import importlib.machinery
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import time

import numpy as np
import pytest
from conftest import REPO
from test_cpp import _tool, configure_and_build
from test_numpy_reference import act, np_forward

import fastae
from fastae import Autoencoder, _loader

# ---- the loader's choice, on /proc/cpuinfo flag lines ----------------------------------------

# AMD EPYC (Zen 3): AVX2 and FMA, no AVX-512 (copied from the development machine).
ZEN3 = ("fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht "
        "syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology nonstop_tsc cpuid "
        "extd_apicid tsc_known_freq pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt "
        "tsc_deadline_timer aes xsave avx f16c rdrand hypervisor lahf_lm cmp_legacy cr8_legacy abm sse4a "
        "misalignsse 3dnowprefetch osvw topoext ssbd ibrs ibpb stibp vmmcall fsgsbase tsc_adjust bmi1 avx2 smep "
        "bmi2 erms invpcid rdseed adx smap clflushopt clwb sha_ni xsaveopt xsavec xgetbv1 xsaves clzero "
        "xsaveerptr wbnoinvd arat umip pku ospke vaes vpclmulqdq rdpid fsrm")
# Intel Xeon (Sapphire Rapids) in a cloud VM, a representative line: x86-64-v4.
SAPPHIRE_RAPIDS = ("fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse "
                   "sse2 ss ht syscall nx pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology nonstop_tsc cpuid "
                   "tsc_known_freq pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt aes xsave "
                   "avx f16c rdrand hypervisor lahf_lm abm 3dnowprefetch invpcid_single ssbd ibrs ibpb stibp "
                   "ibrs_enhanced fsgsbase tsc_adjust bmi1 avx2 smep bmi2 erms invpcid avx512f avx512dq rdseed adx "
                   "smap avx512ifma clflushopt clwb avx512cd sha_ni avx512bw avx512vl xsaveopt xsavec xgetbv1 xsaves "
                   "avx_vnni avx512_bf16 wbnoinvd arat avx512vbmi umip pku ospke waitpkg avx512_vbmi2 gfni vaes "
                   "vpclmulqdq avx512_vnni avx512_bitalg tme avx512_vpopcntdq rdpid cldemote movdiri movdir64b "
                   "md_clear serialize tsxldtrk amx_bf16 avx512_fp16 amx_tile amx_int8 arch_capabilities")
# Knights Landing's AVX-512 subset (F/CD/ER/PF, no BW/DQ/VL) on an otherwise x86-64-v3 CPU: x86-64-v4
# code would trap there, though avx512f is listed.
KNIGHTS_LANDING = ZEN3.replace("sha_ni", "avx512f avx512pf avx512er avx512cd")
# Like Sandy Bridge: AVX but no AVX2, FMA, BMI, F16C, LZCNT, MOVBE.
SANDY_BRIDGE = " ".join(f for f in ZEN3.split() if f not in {"avx2", "fma", "bmi1", "bmi2", "f16c", "movbe", "abm"})
# An Arm server (Neoverse N1): /proc/cpuinfo says "Features".
NEOVERSE = "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp ssbs"
PORTABLE_X86 = ("avx2", "avx512")


def cpuinfo(*flag_lines, key="flags"):
    return "".join(f"processor\t: {i}\nvendor_id\t: X\n{key}\t\t: {line}\nbogomips\t: 1.0\n\n"
                   for i, line in enumerate(flag_lines))


def flags(line):
    return _loader.parse_cpu_flags(cpuinfo(line))


def test_cpu_flags_are_those_every_processor_has():
    assert flags(ZEN3) == frozenset(ZEN3.split())
    # A flag one processor lacks is not used (a kernel may mask one on a core).
    two = _loader.parse_cpu_flags(cpuinfo(SAPPHIRE_RAPIDS, SAPPHIRE_RAPIDS.replace(" avx512vl", "")))
    assert "avx512f" in two and "avx512vl" not in two
    assert _loader.parse_cpu_flags(cpuinfo(NEOVERSE, key="Features")) == frozenset(NEOVERSE.split())
    assert _loader.parse_cpu_flags("processor : 0\nmodel name : ?\n") is None


def test_real_cpuinfo_is_read_on_linux():
    if not os.path.exists("/proc/cpuinfo"):
        pytest.skip("no /proc/cpuinfo on this system")
    got = _loader.read_cpu_flags()
    assert got, "no flags read from /proc/cpuinfo"
    if platform.machine() in ("x86_64", "AMD64"):
        assert {"sse2", "cx8"} <= got  # every x86-64 CPU has these
    assert _loader.read_cpu_flags("/nonexistent/cpuinfo") is None


@pytest.mark.parametrize("cpu,expected", [(ZEN3, "avx2"), (SAPPHIRE_RAPIDS, "avx512"), (KNIGHTS_LANDING, "avx2")],
                         ids=["zen3", "sapphire_rapids", "knights_landing_subset"])
def test_the_best_variant_the_cpu_runs_is_chosen(cpu, expected):
    choice = _loader.choose(PORTABLE_X86, flags(cpu))
    assert choice.variant == expected and choice.available == ("avx512", "avx2")
    if expected == "avx2":  # the reason names what the CPU lacks for the better one
        assert "not avx512" in choice.reason and "avx512bw" in choice.reason and "avx512vl" in choice.reason
    # A build with the baseline only still works on any of them.
    assert _loader.choose(["avx2"], flags(cpu)).variant == "avx2"


def test_a_cpu_below_the_baseline_gets_a_clear_import_error():
    with pytest.raises(ImportError, match=r"x86-64-v3.*lacks abm, avx2, bmi1, bmi2, f16c, fma, movbe.*--no-binary"):
        _loader.choose(PORTABLE_X86, flags(SANDY_BRIDGE))


def test_forcing_a_variant():
    spr, zen3 = flags(SAPPHIRE_RAPIDS), flags(ZEN3)
    choice = _loader.choose(PORTABLE_X86, spr, forced="avx2")
    assert choice.variant == "avx2" and "FASTAE_VARIANT=avx2" in choice.reason
    # Never code the CPU cannot run: forcing AVX-512 on a CPU without it is refused.
    with pytest.raises(ImportError, match=r"FASTAE_VARIANT='avx512'.*lacks avx512bw, avx512cd, avx512dq, avx512f, "
                                          r"avx512vl.*illegal instruction"):
        _loader.choose(PORTABLE_X86, zen3, forced="avx512")
    with pytest.raises(ImportError, match=r"lacks avx512bw, avx512dq, avx512vl;"):
        _loader.choose(PORTABLE_X86, flags(KNIGHTS_LANDING), forced="avx512")
    with pytest.raises(ImportError, match=r"'sse9' is not a variant; allowed: avx512, avx2, generic"):
        _loader.choose(PORTABLE_X86, spr, forced="sse9")
    with pytest.raises(ImportError, match=r"'avx512', but this installation has only: avx2"):
        _loader.choose(["avx2"], spr, forced="avx512")


def test_unknown_cpu_flags():
    with pytest.raises(ImportError, match=r"cannot read this CPU's instruction sets.*FASTAE_VARIANT=avx2"):
        _loader.choose(PORTABLE_X86, None)
    choice = _loader.choose(PORTABLE_X86, None, forced="avx2")  # the user's word is taken
    assert choice.variant == "avx2" and "trust" in choice.reason


def test_off_x86_the_generic_module_is_chosen():
    neoverse = _loader.parse_cpu_flags(cpuinfo(NEOVERSE, key="Features"))
    assert _loader.choose(["generic"], neoverse).variant == "generic"
    assert _loader.choose(["generic"], None).variant == "generic"
    with pytest.raises(ImportError, match="no compiled engine found"):
        _loader.choose([], neoverse)


def _fake_package(root, name, *modules):
    """A package `name` under `root` whose extension files are empty placeholders (never loaded)."""
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    (root / name).mkdir()
    (root / name / "__init__.py").write_text("")
    for module in modules:
        (root / name / f"{module}{suffix}").write_bytes(b"")
    return root / name


def test_load_core_finds_the_variant_files(tmp_path, monkeypatch):
    """Which files load_core looks for and which it hands to the import (the import itself is
    replaced here: the placeholders are not modules)."""
    monkeypatch.setattr(_loader, "loaded", _loader.loaded)  # restored after the test
    monkeypatch.syspath_prepend(str(tmp_path))
    loads = []
    monkeypatch.setattr(_loader, "_load_as_core", lambda package, origin: loads.append((package, origin)) or origin)
    try:
        pkg = _fake_package(tmp_path, "fae_portable_fake", "_core_avx2", "_core_avx512")
        got = _loader.load_core("fae_portable_fake", environ={}, cpu_flags_reader=lambda: flags(SAPPHIRE_RAPIDS))
        assert loads == [("fae_portable_fake", got)] and os.path.basename(got).startswith("_core_avx512.")
        assert os.path.dirname(got) == str(pkg)
        got = _loader.load_core("fae_portable_fake", environ={}, cpu_flags_reader=lambda: flags(ZEN3))
        assert os.path.basename(got).startswith("_core_avx2.")
        assert _loader.loaded.variant == "avx2" and _loader.loaded.path == got
        assert "variant avx2" in _loader.describe() and "lacks avx512" in _loader.describe()
        got = _loader.load_core("fae_portable_fake", environ={"FASTAE_VARIANT": " AVX2 "},
                                cpu_flags_reader=lambda: flags(SAPPHIRE_RAPIDS))
        assert os.path.basename(got).startswith("_core_avx2.")
        # A source build's single _core is used as is, and a forced variant there is an error.
        _fake_package(tmp_path, "fae_source_fake", "_core", "_core_avx2")
        with pytest.raises(ImportError, match="source build"):
            _loader.load_core("fae_source_fake", environ={"FASTAE_VARIANT": "avx2"})
    finally:
        for name in ("fae_portable_fake", "fae_source_fake"):
            sys.modules.pop(name, None)


def test_the_installed_package_loaded_what_the_loader_says():
    c = _loader.loaded
    core = sys.modules["fastae._core"]
    assert fastae._core is core and fastae._autoencoder._core is core and c.path == core.__file__
    if c.variant is None:  # a source build
        assert os.path.basename(core.__file__).startswith("_core.")
        assert "source build" in fastae.show_config(file=open(os.devnull, "w"))
    else:
        assert c.variant == _loader.choose(c.available, _loader.read_cpu_flags(),
                                           os.environ.get("FASTAE_VARIANT")).variant
        assert f"variant {c.variant}" in fastae.show_config(file=open(os.devnull, "w"))


# ---- a real portable build -------------------------------------------------------------------

X86 = platform.machine() in ("x86_64", "AMD64")
EXT = sysconfig.get_config_var("EXT_SUFFIX")
CPU_FLAGS = _loader.read_cpu_flags()
HAS_X86_64_V4 = CPU_FLAGS is not None and _loader._X86_64_V4 <= CPU_FLAGS
needs_x86 = pytest.mark.skipif(not X86, reason="the AVX2/AVX-512 variants are x86-64 only")


@pytest.fixture(scope="module")
def portable_build():
    try:
        import pybind11
    except ImportError:
        pytest.fail("pybind11 not found: install the test extra (pip install '.[test]')")
    build_dir = os.path.join(REPO, "build", "pytest-portable")
    start = time.perf_counter()
    configure_and_build(build_dir, "-DFASTAE_BUILD_TESTS=OFF", "-DFASTAE_BUILD_PYTHON=ON", "-DFASTAE_PORTABLE=ON",
                        f"-Dpybind11_DIR={pybind11.get_cmake_dir()}", f"-DPython_EXECUTABLE={sys.executable}")
    print(f"portable build: {time.perf_counter() - start:.1f} s")
    return build_dir


def _disassembly(path):
    out = subprocess.run([_tool("objdump") or "objdump", "-d", "--no-show-raw-insn", path], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def _evex_instructions(path):
    """Instructions with an EVEX prefix (0x62 after any address-size or segment prefix: in 64-bit
    code that byte is only EVEX), i.e. every AVX-512 instruction, including those on xmm/ymm
    registers (AVX-512VL), which a count of zmm registers would miss."""
    out = subprocess.run([_tool("objdump") or "objdump", "-d", path], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    count = 0
    for line in out.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) < 3 or not re.fullmatch(r"\s*[0-9a-f]+:", parts[0]):
            continue  # continuation lines of long instructions carry no mnemonic
        code = parts[1].split()
        while code and code[0] in ("67", "26", "2e", "36", "3e", "64", "65"):
            code.pop(0)
        count += bool(code) and code[0] == "62"
    return count


def _module(build_dir, variant):
    return os.path.join(build_dir, f"_core_{variant}{EXT}")


def _isa_counts(path):
    """Instructions using zmm registers, ymm registers, FMA; and EVEX-encoded instructions."""
    lines = _disassembly(path).splitlines()
    return {"zmm": sum("%zmm" in line for line in lines), "ymm": sum("%ymm" in line for line in lines),
            "fma": sum(bool(re.search(r"\tvfn?m(?:add|sub)", line)) for line in lines),
            "evex": _evex_instructions(path)}


@needs_x86
def test_portable_build_has_one_module_per_instruction_set(portable_build):
    for variant in PORTABLE_X86:
        path = _module(portable_build, variant)
        assert os.path.isfile(path), f"{path} was not built"
        symbols = subprocess.run([_tool("objdump") or "objdump", "-T", path], capture_output=True, text=True).stdout
        # Each exports PyInit__core (the loader imports it as fastae._core), none its own file name.
        assert re.search(r"\sPyInit__core$", symbols, re.M) and f"PyInit__core_{variant}" not in symbols
    assert not os.path.exists(os.path.join(portable_build, f"_core{EXT}"))  # no -march=native module
    # What a wheel gets: both modules in the package, and for C++ hosts the baseline library only.
    prefix = os.path.join(portable_build, "install-check")
    shutil.rmtree(prefix, ignore_errors=True)
    out = subprocess.run([_tool("cmake"), "--install", portable_build, "--prefix", prefix], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    installed = sorted(os.path.relpath(os.path.join(d, f), prefix) for d, _, fs in os.walk(prefix) for f in fs)
    assert f"fastae/_core_avx2{EXT}" in installed and f"fastae/_core_avx512{EXT}" in installed
    assert [f for f in installed if f.endswith(".a")] == ["fastae/lib/libfastae.a"]
    config = open(os.path.join(prefix, "fastae", "lib", "cmake", "fastae", "fastaeConfig.cmake")).read()
    assert 'set(fastae_ARCH "x86-64-v3")' in config
    assert _evex_instructions(os.path.join(prefix, "fastae", "lib", "libfastae.a")) == 0


@needs_x86
def test_avx2_module_holds_no_avx512_code_and_the_avx512_module_does(portable_build):
    counts = {v: _isa_counts(_module(portable_build, v)) for v in PORTABLE_X86}
    counts["libfastae.a"] = _isa_counts(os.path.join(portable_build, "libfastae.a"))
    print(json.dumps(counts))
    for name in ("avx2", "libfastae.a"):
        # Not one AVX-512 instruction (so no template instance compiled for AVX-512 was kept for
        # it), but real AVX2 and FMA code: the flags reached the engine.
        assert counts[name]["evex"] == 0 and counts[name]["zmm"] == 0, counts
        assert counts[name]["ymm"] > 500 and counts[name]["fma"] > 100, counts
    assert counts["avx512"]["zmm"] > 500 and counts["avx512"]["evex"] > counts["avx512"]["zmm"] // 2, counts


def _portable_package(build_dir, root):
    """The package laid out as a portable wheel has it: the Python sources and the variant modules,
    no _core."""
    package = root / "fastae"
    shutil.copytree(os.path.join(REPO, "python", "fastae"), package,
                    ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.pyd"))
    for variant in PORTABLE_X86:
        shutil.copy2(_module(build_dir, variant), package)
    return root


# Runs in a fresh interpreter, on the assembled package: loads a model file saved by the installed
# fastae, encodes and reconstructs, trains a copy; reports the loader's choice.
_CHILD = textwrap.dedent("""
    import json, sys
    import numpy as np
    import fastae
    root, model_path, data_path, out_path = sys.argv[1:5]
    assert fastae.__file__.startswith(root), fastae.__file__
    X = np.load(data_path)["X"]
    ae = fastae.load(model_path)
    fit = fastae.Autoencoder(hidden_layer_sizes=(16, 4), epochs=3, batch_size=64, random_state=0, n_threads=1).fit(X)
    np.savez(out_path, codes=ae.transform(X), recon=ae.predict(X), loss=np.array(fit.history_["loss"]))
    c = fastae._loader.loaded
    print(json.dumps({"variant": c.variant, "available": c.available, "path": c.path,
                      "core": fastae._core.__name__, "config": fastae.show_config(file=open("/dev/null", "w"))}))
""")


def _run_child(package_root, tmp_path, variant):
    env = dict(os.environ, PYTHONPATH=str(package_root))
    env.pop("FASTAE_VARIANT", None)
    if variant:
        env["FASTAE_VARIANT"] = variant
    out = tmp_path / f"out-{variant or 'auto'}.npz"
    r = subprocess.run([sys.executable, "-c", _CHILD, str(package_root), str(tmp_path / "model.fae"),
                        str(tmp_path / "data.npz"), str(out)], capture_output=True, text=True, env=env, timeout=300)
    return r, out


@pytest.fixture(scope="module")
def assembled(portable_build, tmp_path_factory):
    root = _portable_package(portable_build, tmp_path_factory.mktemp("portable"))
    work = tmp_path_factory.mktemp("variant-run")
    X = fastae.load_digits()[0]
    np.savez(work / "data.npz", X=X)
    ae = Autoencoder(hidden_layer_sizes=(16, 4), epochs=5, batch_size=64, random_state=0).fit(X)
    ae.save(work / "model.fae")
    native_fit = Autoencoder(hidden_layer_sizes=(16, 4), epochs=3, batch_size=64, random_state=0, n_threads=1).fit(X)
    return {"root": root, "work": work, "X": X, "ae": ae, "native_loss": np.array(native_fit.history_["loss"])}


def _check_variant_against_native_and_numpy(assembled, variant):
    r, out = _run_child(assembled["root"], assembled["work"], variant)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    info = json.loads(r.stdout.strip().splitlines()[-1])
    assert info["variant"] == variant and info["core"] == "fastae._core"
    assert os.path.basename(info["path"]) == f"_core_{variant}{EXT}"
    assert f"variant {variant}" in info["config"]
    got = np.load(out)
    ae, X = assembled["ae"], assembled["X"]
    native_codes, native_recon = ae.transform(X), ae.predict(X)
    # The independent reference: the forward pass in float64 NumPy from the same weights.
    weights = ae.get_weights()
    inputs, z = np_forward(weights, X, "relu", "sigmoid")
    ref_codes = inputs[2]  # the input of layer 2 is the code (the encoder's output)
    ref_recon = act("sigmoid", z)
    diffs = {"codes vs native": float(np.abs(got["codes"] - native_codes).max()),
             "recon vs native": float(np.abs(got["recon"] - native_recon).max()),
             "codes vs numpy": float(np.abs(got["codes"] - ref_codes).max()),
             "recon vs numpy": float(np.abs(got["recon"] - ref_recon).max()),
             "codes bit-equal to native": bool(np.array_equal(got["codes"], native_codes)),
             "fit loss vs native (max rel)": float(np.max(np.abs(got["loss"] / assembled["native_loss"] - 1)))}
    print(variant, json.dumps(diffs))
    np.testing.assert_allclose(got["codes"], native_codes, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got["recon"], native_recon, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["codes"], ref_codes, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got["recon"], ref_recon, rtol=1e-5, atol=1e-6)
    # Training runs in the variant too, and follows the same path from the same seed.
    np.testing.assert_allclose(got["loss"], assembled["native_loss"], rtol=1e-3)


@needs_x86
def test_avx2_module_matches_the_installed_module_and_numpy(assembled):
    _check_variant_against_native_and_numpy(assembled, "avx2")


@needs_x86
def test_avx512_module_matches_where_the_cpu_has_avx512(assembled):
    if not HAS_X86_64_V4:
        pytest.skip("this CPU lacks AVX-512 (x86-64-v4): the AVX-512 module is built and inspected, never run")
    _check_variant_against_native_and_numpy(assembled, "avx512")


@needs_x86
def test_real_package_chooses_for_this_cpu_and_refuses_what_it_cannot_run(assembled):
    r, _ = _run_child(assembled["root"], assembled["work"], None)
    assert r.returncode == 0, r.stderr[-3000:]
    info = json.loads(r.stdout.strip().splitlines()[-1])
    assert info["variant"] == ("avx512" if HAS_X86_64_V4 else "avx2")
    assert info["available"] == ["avx512", "avx2"]
    if not HAS_X86_64_V4:
        r, _ = _run_child(assembled["root"], assembled["work"], "avx512")
        # A clean ImportError before the module is opened, not SIGILL (returncode -4).
        assert r.returncode == 1 and "ImportError" in r.stderr and "lacks avx512" in r.stderr, r.stderr[-3000:]
    env = dict(os.environ, PYTHONPATH=str(assembled["root"]))
    env.pop("FASTAE_VARIANT", None)
    info = subprocess.run([sys.executable, "-m", "fastae", "info"], capture_output=True, text=True, env=env)
    assert info.returncode == 0 and "engine: portable build, variant" in info.stdout
    assert "default n_threads" in info.stdout
