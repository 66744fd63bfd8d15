"""Checks of hyperparameters, each raising an error that names the argument, the bad value and
what is allowed: the engine's vocabulary, numbers in their ranges, the declarative checks of the
estimators' parameter tables, `loss="auto"`'s rule, and what a parameter asks of the machine (the
network's size against the memory available, threads, seeds). The C++ core checks again what it
owns; these checks exist so that errors name Python arguments and happen before any work starts.
The data's checks are in _arrays.py."""

from __future__ import annotations

import math
import numbers
import os
import warnings
from typing import Any, Callable, Optional, Sequence, cast

import numpy as np

from . import _core

# The vocabulary, read from the engine's tables (csrc/include/fastae/vocabulary.h): one list each,
# never a copy written here.
ACTIVATIONS = tuple(_core.ACTIVATIONS)
HIDDEN_ACTIVATIONS = tuple(a for a in ACTIVATIONS if not _core.ACTIVATION_TRAITS[a]["output_only"])
LOSSES = tuple(_core.LOSSES)
OPTIMIZERS = tuple(_core.OPTIMIZERS)
INITIALIZERS = tuple(_core.INITIALIZERS)

# Largest value of an option the C++ core takes as an int (widths, batch_size, epochs): checked
# here so that a bigger one is a ValueError naming it, before any model is built or replaced.
MAX_INT = 2**31 - 1

# The engine's limit on a network's parameter count (csrc/src/network.cpp).
MAX_PARAMS = 2**32


def check_choice(name: str, value: Any, allowed: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(repr(a) for a in allowed)}; got {value!r}")
    return value


def check_int(name: str, value: Any, minimum: int, maximum: Optional[int] = None) -> int:
    bound = f"in [{minimum}, {maximum}]" if maximum is not None else f">= {minimum}"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer {bound}; got {value!r}")
    value = int(value)
    if value < minimum or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be an integer {bound}; got {value!r}")
    return value


def check_real(name: str, value: Any, low: float, high: Optional[float], low_open: bool = True,
               high_open: bool = True) -> float:
    """A finite real number in the interval given (open or closed at each end)."""
    interval = f"{'(' if low_open else '['}{low}, {high if high is not None else 'inf'}{')' if high_open else ']'}"
    try:
        as_float = float(value)
    except (TypeError, ValueError, OverflowError):  # e.g. an int beyond float's range
        as_float = math.nan
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not math.isfinite(as_float):
        raise ValueError(f"{name} must be a finite real number in {interval}; got {value!r}")
    value = as_float
    too_low = value <= low if low_open else value < low
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        raise ValueError(f"{name} must be in {interval}; got {value!r}")
    return value


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False; got {value!r}")
    return bool(value)


# ---- declarative parameter checks -------------------------------------------------------------
# An estimator's _param_checks table maps each constructor parameter to one of these; the base
# estimator's _validated_params runs them in order, each with the values checked before it (p).


class Options:
    """A name from a vocabulary (a tuple, or a function giving it, read when checked)."""

    def __init__(self, allowed: Sequence[str] | Callable[[], Sequence[str]]) -> None:
        self.allowed = allowed

    def __call__(self, name: str, value: Any, p: dict[str, Any]) -> str:
        allowed = self.allowed() if callable(self.allowed) else self.allowed
        return check_choice(name, value, allowed)


class Integer:
    """An integer in [low, high] (high None: no upper bound)."""

    def __init__(self, low: int, high: Optional[int] = None) -> None:
        self.low, self.high = low, high

    def __call__(self, name: str, value: Any, p: dict[str, Any]) -> int:
        return check_int(name, value, self.low, self.high)


class Real:
    """A finite real number in the interval (open or closed at each end); optional: None too."""

    def __init__(self, low: float, high: Optional[float] = None, *, low_open: bool = True, high_open: bool = True,
                 optional: bool = False) -> None:
        self.low, self.high, self.low_open, self.high_open, self.optional = low, high, low_open, high_open, optional

    def __call__(self, name: str, value: Any, p: dict[str, Any]) -> Optional[float]:
        if value is None and self.optional:
            return None
        return check_real(name, value, self.low, self.high, self.low_open, self.high_open)


class Boolean:
    def __call__(self, name: str, value: Any, p: dict[str, Any]) -> bool:
        return check_bool(name, value)


class Check:
    """Any other check: fn(value), or fn(value, p) with with_params=True."""

    def __init__(self, fn: Callable[..., Any], with_params: bool = False) -> None:
        self.fn, self.with_params = fn, with_params

    def __call__(self, name: str, value: Any, p: dict[str, Any]) -> Any:
        return self.fn(value, p) if self.with_params else self.fn(value)


def check_activations(value: Any, n_hidden: int) -> list[str]:
    """`activation`: one name for every hidden layer, or a list of one name per hidden layer of the
    encoder (the decoder mirrors it). Returns the encoder's list."""
    if isinstance(value, str):
        check_choice("activation", value, HIDDEN_ACTIVATIONS)
        return [value] * n_hidden
    if isinstance(value, (list, tuple)):
        names = list(value)
        if len(names) != n_hidden:
            raise ValueError(f"activation has {len(names)} names; hidden_layer_sizes has {n_hidden} layers "
                             f"(give one name per encoder layer, or one name for all)")
        for i, name in enumerate(names):
            if not isinstance(name, str) or name not in HIDDEN_ACTIVATIONS:
                if isinstance(name, str) and name in ACTIVATIONS:
                    raise ValueError(f"activation[{i}] = {name!r} is allowed as output_activation only")
                raise ValueError(f"activation[{i}] must be one of {', '.join(repr(a) for a in HIDDEN_ACTIVATIONS)}; "
                                 f"got {name!r}")
        return names
    raise ValueError(f"activation must be one of {', '.join(repr(a) for a in HIDDEN_ACTIVATIONS)}, or a list of "
                     f"them (one per encoder layer); got {value!r}")


def check_output_and_loss(output_activation: str, loss: str) -> None:
    """The output head: the pairing rules come from the loss table (bce needs a sigmoid output,
    cross_entropy a softmax, softmax goes with cross_entropy only). "auto" (either) is checked
    once it is resolved (resolve_head)."""
    if output_activation == "auto" or loss == "auto":
        return
    required = _core.LOSS_TRAITS[loss]["required_output"]
    if required is not None and output_activation != required:
        raise ValueError(f"loss={loss!r} needs output_activation={required!r}; got output_activation="
                         f"{output_activation!r}" + (" (use loss='mse' for other outputs)" if loss == "bce" else ""))
    if required is None and _core.ACTIVATION_TRAITS[output_activation]["output_only"]:
        owner = [name for name, t in _core.LOSS_TRAITS.items() if t["required_output"] == output_activation]
        raise ValueError(f"output_activation={output_activation!r} goes with loss={owner[0]!r} only; got "
                         f"loss={loss!r}")


def resolve_head(loss: str, output_activation: str, unit_range: Any) -> tuple[str, str]:
    """The loss and output activation that "auto" stands for, given whether the training targets
    lie in [0, 1] (unit_range; None when there are no data to look at, as for set_weights on an
    unfitted estimator, which takes the [0, 1] choice):

    - loss="auto": the loss an output-only activation goes with (softmax: cross_entropy), else
      "bce" for targets in [0, 1] with a sigmoid (or "auto") output, else "mse";
    - output_activation="auto": the output the loss requires (bce: sigmoid, cross_entropy:
      softmax), else "sigmoid" for targets in [0, 1] and "linear" otherwise.

    So the defaults train data in [0, 1] as bce on a sigmoid, and any other data (standardized
    features) as mse on a linear output. Explicit names are returned unchanged (and checked)."""
    in_unit_range = unit_range is None or bool(unit_range)
    if loss == "auto":
        if output_activation != "auto" and _core.ACTIVATION_TRAITS[output_activation]["output_only"]:
            loss = [name for name, t in _core.LOSS_TRAITS.items() if t["required_output"] == output_activation][0]
        else:
            loss = "bce" if in_unit_range and output_activation in ("auto", "sigmoid") else "mse"
    if output_activation == "auto":
        required = _core.LOSS_TRAITS[loss]["required_output"]
        output_activation = required if required is not None else ("sigmoid" if in_unit_range else "linear")
    check_output_and_loss(output_activation, loss)
    return loss, output_activation


LR_SCHEDULES = tuple(s for s in _core.LR_SCHEDULES if s != "none")


def check_lr_schedule(value: Any) -> Any:
    """None, a schedule's name, or a callable f(epoch, lr) -> lr."""
    if value is None or callable(value):
        return value
    if isinstance(value, str) and value in LR_SCHEDULES:
        return value
    raise ValueError(f"lr_schedule must be None, one of {', '.join(repr(s) for s in LR_SCHEDULES)}, or a callable "
                     f"f(epoch, lr) -> lr; got {value!r}")


def check_callbacks(value: Any) -> Optional[list[Callable[..., Any]]]:
    """None or a list (or tuple) of callables f(epoch, logs)."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)) and all(callable(c) for c in value):
        return list(value)
    raise ValueError(f"callbacks must be None or a list of callables f(epoch, logs); got {value!r}")


def check_hidden_layer_sizes(value: Any, name: str = "hidden_layer_sizes",
                             allow_empty: bool = False) -> tuple[int, ...]:
    """A tuple of widths (an int: one width). allow_empty: () is allowed (a decoder without hidden
    layers)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
        value = (value,)
    allowed = f"a sequence of integers in [1, {MAX_INT}]"
    try:
        sizes = tuple(value)
    except TypeError:
        raise ValueError(f"{name} must be {allowed}; got {value!r}") from None
    if not sizes and not allow_empty:
        raise ValueError(f"{name} must hold at least one width (the code size); got ()")
    for s in sizes:
        if isinstance(s, (bool, np.bool_)) or not isinstance(s, numbers.Integral) or not 1 <= int(s) <= MAX_INT:
            raise ValueError(f"{name} must be {allowed}; got {value!r}")
    return tuple(int(s) for s in sizes)


NOISES = tuple(n for n in _core.NOISES if n != "none")


def check_noise(value: Any) -> Optional[str]:
    """None, "gaussian" or "masking"."""
    if value is None or (isinstance(value, str) and value in NOISES):
        return value
    raise ValueError(f"noise must be None or one of {', '.join(repr(n) for n in NOISES)}; got {value!r}")


def memory_available_bytes() -> int:
    """Memory this process can take now without swapping or meeting the out-of-memory killer:
    Linux's MemAvailable (physical RAM if it cannot be read), or less if a cgroup limits us."""
    available = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            with open(limit_file) as f, open(usage_file) as g:
                limit, usage = f.read().strip(), g.read().strip()
        except OSError:
            continue
        if limit.isdigit() and usage.isdigit():
            available = min(available, max(int(limit) - int(usage), 0))
    return available


def check_network_size(spec: dict[str, Any] | Sequence[int], n_threads: Optional[int] = None,
                       optimizer: Optional[str] = None, float_data: bool = True) -> None:
    """spec: the network spec dict (_core.Model.spec()), or a list of layer widths.

    Refuses a network too big for the engine (ValueError) or for the memory available now
    (MemoryError), before anything is allocated.

    Why here: Linux overcommits, so a network of, say, 20 GB on a 24 GB machine would be
    allocated and then killed by the out-of-memory killer while its buffers fill, which no
    exception can report. The figure compared counts the float32 buffers of the engine's peak
    and nothing else (so it never refuses what fits): the parameters and, for training
    (n_threads given), the copy of the weights the trainer keeps to undo a diverging step, one
    gradient buffer per thread, the optimizer's state slots (2 for Adam, 1 for SGD) and the copy of
    them the model keeps after fit, for float data (float_data) the weights as they were before
    fit, restored if the first epoch finds a bad value, and for more than one thread the weights
    packed once a step for the threads' products (each layer's W forward, and again for the
    backward product of every layer past the first). Allocations that fail for other reasons
    (ulimit -v, a cgroup without accounting) raise MemoryError from the engine.
    """
    if not isinstance(spec, dict):  # a list of widths: a plain network of them
        spec = {"n_inputs": spec[0], "loss": "mse", "layers": [{"units": w, "activation": "linear"} for w in spec[1:]]}
    layer_sizes = [spec["n_inputs"], *(layer["units"] for layer in spec["layers"])]
    n_params = sum(a * b + b for a, b in zip(layer_sizes[:-1], layer_sizes[1:]))
    if n_params > MAX_PARAMS:
        raise ValueError(f"hidden_layer_sizes on {layer_sizes[0]} features give the network {list(layer_sizes)} of "
                         f"{n_params} parameters; the limit is 2**32 = {MAX_PARAMS}")
    n_params = _core.param_count(spec)  # the engine's count (and its checks of the spec)
    moments = len(_core.OPTIMIZER_SLOTS[optimizer]) if optimizer is not None else 0
    buffers = 1 if n_threads is None else 2 + n_threads + 2 * moments + (1 if float_data else 0)
    weights = [a * b for a, b in zip(layer_sizes[:-1], layer_sizes[1:])]
    packed = sum(weights) + sum(weights[1:]) if n_threads is not None and n_threads > 1 else 0
    need = 4 * (n_params * buffers + packed)
    have = memory_available_bytes()
    if need > have:
        what = "storing its parameters" if n_threads is None else (
            f"training it (parameters and their last-step copy, {n_threads} gradient buffer(s), {optimizer}'s state "
            f"and its copy{', the weights before fit' if float_data else ''}"
            f"{', the weights packed for the threads' if packed else ''})")
        raise MemoryError(f"the network {list(layer_sizes)} has {n_params} parameters; {what} needs at least "
                          f"{need / 2**30:.1f} GiB, more than the {have / 2**30:.1f} GiB of memory available now")


def available_cpus() -> int:
    """CPUs this process can keep busy, not the machine's total: the CPUs it may run on (its
    affinity mask: taskset, a container's cpuset), capped by its control group's CPU limit rounded
    up (``docker run --cpus``, a Kubernetes CPU limit; ``fastae.cpu_limit()``). The engine's count
    (fastae/cpus.h), so that a C++ host gets the same."""
    return int(_core.available_cpus())


def cpu_limit() -> float:
    """This process's control-group CPU bandwidth limit in CPUs (quota / period, the smallest on the
    path to its hierarchy's root, cgroup v2 or v1), or 0.0 where none is set or can be read."""
    return float(_core.cpu_limit())


def resolve_n_threads(n_threads: Optional[int]) -> int:
    """None or -1 -> every CPU available to this process (a step falls back to one thread when
    that is measured faster, e.g. while another process keeps a core busy: docs/ARCHITECTURE.md,
    "Threads and determinism"); more than the available CPUs is clamped with a warning."""
    cpus = available_cpus()
    if n_threads is None:
        return cpus
    if isinstance(n_threads, numbers.Integral) and not isinstance(n_threads, (bool, np.bool_)) and n_threads == -1:
        return cpus
    if isinstance(n_threads, (bool, np.bool_)) or not isinstance(n_threads, numbers.Integral) or n_threads < 1:
        raise ValueError(f"n_threads must be None, -1 or an integer >= 1; got {n_threads!r}")
    n = int(n_threads)
    if n > cpus:
        warnings.warn(f"n_threads={n} is more than the {cpus} CPUs available; using {cpus}", RuntimeWarning,
                      stacklevel=3)
        n = cpus
    return n


def seed_from(random_state: Any) -> int:
    """A 64-bit seed from None (fresh entropy), an int, or a NumPy RandomState/Generator."""
    if random_state is None:
        return cast(int, np.random.SeedSequence().entropy) & 0xFFFFFFFFFFFFFFFF  # an int when none is given
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, (bool, np.bool_)):
        if not 0 <= int(random_state) < 2**64:
            raise ValueError(f"random_state must be in [0, 2**64); got {random_state!r}")
        return int(random_state)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**63 - 1, dtype=np.int64))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**64 - 1, dtype=np.uint64, endpoint=True))
    raise ValueError(
        f"random_state must be None, an int, a numpy.random.RandomState or a numpy.random.Generator; "
        f"got {random_state!r}")
