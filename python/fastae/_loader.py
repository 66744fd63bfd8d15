"""Finds the compiled engine for this CPU and registers it as ``fastae._core``; the rest of the
package imports ``from . import _core`` and never learns which one it got.

A source build has one module, ``_core``, compiled for the machine it was built on
(``-march=native`` unless FASTAE_ARCH says otherwise): it is imported as is. A portable build (CMake
option FASTAE_PORTABLE, for wheels) has one module per instruction set instead: ``_core_avx512``
(x86-64-v4), ``_core_avx2`` (x86-64-v3, the baseline), or ``_core_generic`` off x86. Each exports
``PyInit__core`` and is loaded under the name ``fastae._core``, so classes and exceptions are named
alike whichever runs (a pickled ``fastae._core.ModelFileError`` does not name a CPU).

The choice: the first variant, best first, whose instruction sets the CPU has, as the kernel reports
them in /proc/cpuinfo (Linux clears a flag there when the OS does not save that extension's
registers, so a listed flag is usable). ``FASTAE_VARIANT=avx2`` (or ``avx512``, ``generic``)
forces a variant, and is refused if the CPU lacks it: code for instruction sets the CPU lacks kills
the process with SIGILL, which no exception can catch. Where the flags cannot be read (no
/proc/cpuinfo), a forced variant is taken on the user's word and an unforced choice fails clearly.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import sys
from typing import NamedTuple, Optional

ENV_VAR = "FASTAE_VARIANT"

# CPU flags as /proc/cpuinfo spells them ("pni" is SSE3, "abm" is LZCNT), for the x86-64 psABI
# levels the variants are compiled for (-march=x86-64-v3, -march=x86-64-v4).
_X86_64_V2 = frozenset({"cx16", "lahf_lm", "pni", "popcnt", "sse4_1", "sse4_2", "ssse3"})
_X86_64_V3 = _X86_64_V2 | {"abm", "avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "movbe", "xsave"}
_X86_64_V4 = _X86_64_V3 | {"avx512bw", "avx512cd", "avx512dq", "avx512f", "avx512vl"}


class Variant(NamedTuple):
    name: str          # the module is _core_<name>
    target: str        # what it is compiled for, in words
    needs: frozenset   # CPU flags it needs


# Best first: the choice is the first one present in the package that the CPU can run.
VARIANTS = (
    Variant("avx512", "x86-64-v4: AVX-512 F/BW/CD/DQ/VL, AVX2, FMA", _X86_64_V4),
    Variant("avx2", "x86-64-v3: AVX2, FMA, BMI1/2, F16C", _X86_64_V3),
    Variant("generic", "the compiler's default instruction set", frozenset()),
)
_BY_NAME = {v.name: v for v in VARIANTS}


class Choice(NamedTuple):
    variant: Optional[str]   # None for a source build (the single module _core)
    target: str
    reason: str
    available: tuple         # the variants this installation has (empty for a source build)
    path: str = ""           # the file loaded


def parse_cpu_flags(cpuinfo: str) -> Optional[frozenset]:
    """The flags every processor in a /proc/cpuinfo text has (x86 "flags", Arm "Features"), or
    None when it lists none. Intersected over processors, so a flag one core lacks is not used."""
    common = None
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("flags", "Features"):
            flags = frozenset(value.split())
            common = flags if common is None else common & flags
    return common


def read_cpu_flags(path: str = "/proc/cpuinfo") -> Optional[frozenset]:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return parse_cpu_flags(f.read())
    except OSError:
        return None


def _missing(variant: Variant, flags: frozenset) -> list:
    return sorted(variant.needs - flags)


def choose(available, cpu_flags: Optional[frozenset], forced: Optional[str] = None) -> Choice:
    """Picks one of `available` (variant names present in the package) for a CPU with `cpu_flags`
    (None: unknown); `forced` is FASTAE_VARIANT. Raises ImportError, saying what to do, when none fits."""
    present = tuple(v.name for v in VARIANTS if v.name in set(available))
    if not present:
        raise ImportError("fastae: no compiled engine found (neither _core nor a _core_<variant> module); "
                          "reinstall fastae")
    listing = ", ".join(present)
    if forced:
        if forced not in _BY_NAME:
            raise ImportError(f"fastae: {ENV_VAR}={forced!r} is not a variant; allowed: "
                              f"{', '.join(v.name for v in VARIANTS)} (this installation has {listing})")
        if forced not in present:
            raise ImportError(f"fastae: {ENV_VAR}={forced!r}, but this installation has only: {listing}")
        variant = _BY_NAME[forced]
        if cpu_flags is None:
            return Choice(variant.name, variant.target,
                          f"{ENV_VAR}={forced} (the CPU's flags could not be read: taken on trust)", present)
        lacking = _missing(variant, cpu_flags)
        if lacking:
            raise ImportError(f"fastae: {ENV_VAR}={forced!r} needs {variant.target}, and this CPU lacks "
                              f"{', '.join(lacking)}; it would crash with an illegal instruction. Unset "
                              f"{ENV_VAR} to choose automatically")
        return Choice(variant.name, variant.target, f"{ENV_VAR}={forced}", present)

    if cpu_flags is None:
        if "generic" in present:
            variant = _BY_NAME["generic"]
            return Choice(variant.name, variant.target, "the only variant that needs no CPU flags", present)
        raise ImportError(f"fastae: cannot read this CPU's instruction sets (no /proc/cpuinfo), so cannot choose "
                          f"among the variants of this portable build ({listing}). If the CPU has AVX2 and FMA, "
                          f"set {ENV_VAR}=avx2 (or avx512 if it has AVX-512); or build fastae from source")
    skipped: list[str] = []
    for name in present:
        variant = _BY_NAME[name]
        lacking = _missing(variant, cpu_flags)
        if not lacking:
            reason = "the best variant this CPU supports"
            if skipped:
                reason += " (" + "; ".join(skipped) + ")"
            return Choice(variant.name, variant.target, reason, present)
        skipped.append(f"not {name}: the CPU lacks {', '.join(lacking)}")
    lowest = _BY_NAME[present[-1]]
    raise ImportError(f"fastae: this build of fastae needs at least {lowest.target}, and this CPU lacks "
                      f"{', '.join(_missing(lowest, cpu_flags))}. Build it from source for this machine: "
                      f"pip install --no-binary fastae fastae")


def _load_as_core(package: str, origin: str):
    """Imports the extension file `origin` under the name <package>._core (it exports PyInit__core)."""
    name = f"{package}._core"
    loader = importlib.machinery.ExtensionFileLoader(name, origin)
    spec = importlib.util.spec_from_file_location(name, origin, loader=loader)
    if spec is None:
        raise ImportError(f"fastae: cannot load the engine from {origin}")
    module = importlib.util.module_from_spec(spec)  # runs the module's init
    sys.modules[name] = module
    try:
        loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


# What load_core chose, for show_config.
loaded: Optional[Choice] = None


def load_core(package: str = __package__, environ=os.environ, cpu_flags_reader=read_cpu_flags):
    """Imports the engine for this CPU as <package>._core and returns it (see the module docstring)."""
    global loaded
    forced = environ.get(ENV_VAR, "").strip().lower() or None
    if importlib.util.find_spec(f"{package}._core") is not None:
        if forced:
            raise ImportError(f"fastae: {ENV_VAR}={forced!r}, but this is a source build with one engine, "
                              f"compiled for the machine it was built on; unset {ENV_VAR}")
        module = importlib.import_module(f"{package}._core")
        loaded = Choice(None, "FASTAE_ARCH (default: the build machine's CPU)", "the only engine of a source build", (),
                        getattr(module, "__file__", ""))
        return module
    found = {v.name: importlib.util.find_spec(f"{package}._core_{v.name}") for v in VARIANTS}
    origins = {name: spec.origin for name, spec in found.items() if spec is not None and spec.origin}
    choice = choose(origins, cpu_flags_reader(), forced)
    origin = origins[str(choice.variant)]
    module = _load_as_core(package, origin)
    loaded = choice._replace(path=origin)
    return module


def describe() -> str:
    """One line on the engine in use, for show_config."""
    c = loaded
    if c is None:
        return "engine: not loaded"
    if c.variant is None:
        return "engine: source build (one module, _core, compiled for FASTAE_ARCH: by default the build machine's CPU)"
    return (f"engine: portable build, variant {c.variant} ({c.target}); {c.reason}; "
            f"variants in this build: {', '.join(c.available)}")
