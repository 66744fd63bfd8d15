"""Checks of hyperparameters and arrays, each raising an error that names the argument, the bad
value and what is allowed. The C++ core checks again what it owns (shapes, finiteness, ranges);
these checks exist so that errors name Python arguments and happen before any work starts."""

from __future__ import annotations

import math
import numbers
import os
import sys
import warnings
from typing import Any, Callable, Optional, Sequence, cast, overload

import numpy as np
from numpy.typing import ArrayLike

from . import _core

# The vocabulary, read from the engine's tables (csrc/include/fastae/vocabulary.h): one list each,
# never a copy written here.
ACTIVATIONS = tuple(_core.ACTIVATIONS)
HIDDEN_ACTIVATIONS = tuple(a for a in ACTIVATIONS if not _core.ACTIVATION_TRAITS[a]["output_only"])
LOSSES = tuple(_core.LOSSES)
OPTIMIZERS = tuple(_core.OPTIMIZERS)
INITIALIZERS = tuple(_core.INITIALIZERS)

# bce targets must lie in [0, 1]; this much rounding outside is forgiven (a MinMaxScaler's 1 can
# come out as 1.0000001 in float32). The C++ core uses the same slack (model_impl.h, kUnitRangeSlack).
UNIT_RANGE_SLACK = 1e-6

# Rows checked for NaN/inf at a time: bounds the temporary boolean array to a few MB.
_FINITE_CHECK_ROWS = 4096

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


@overload
def check_sample_weight(sample_weight: None, n_samples: int, name: str = ...) -> None: ...


@overload
def check_sample_weight(sample_weight: ArrayLike, n_samples: int, name: str = ...) -> np.ndarray: ...


def check_sample_weight(sample_weight: Optional[ArrayLike], n_samples: int,
                        name: str = "sample_weight") -> Optional[np.ndarray]:
    """None, or a 1-D array of n_samples finite numbers >= 0, as C-contiguous float32."""
    if sample_weight is None:
        return None
    try:
        w = np.asarray(sample_weight)
    except Exception as exc:
        raise ValueError(f"{name} could not be read as an array: {exc}") from None
    if w.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold real numbers; got dtype {w.dtype}")
    if w.ndim != 1 or w.shape[0] != n_samples:
        raise ValueError(f"{name} must be 1-D with one value per sample ({n_samples}); got shape {w.shape}")
    with np.errstate(over="ignore"):
        w32 = np.ascontiguousarray(w, dtype=np.float32)
    bad = ~(np.isfinite(w32) & (w32 >= 0))
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{name} must hold finite numbers >= 0; got {w[i]!r} at index {i}")
    return w32


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
    them the model keeps after fit, and for float data (float_data) the weights as they were
    before fit, restored if the first epoch finds a bad value. Allocations that fail for other reasons
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
    need = 4 * n_params * buffers
    have = memory_available_bytes()
    if need > have:
        what = "storing its parameters" if n_threads is None else (
            f"training it (parameters and their last-step copy, {n_threads} gradient buffer(s), {optimizer}'s state "
            f"and its copy{', the weights before fit' if float_data else ''})")
        raise MemoryError(f"the network {list(layer_sizes)} has {n_params} parameters; {what} needs at least "
                          f"{need / 2**30:.1f} GiB, more than the {have / 2**30:.1f} GiB of memory available now")


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask), not the machine's total."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


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


class NotANumberError(TypeError, ValueError):
    """An array that holds something other than numbers (an object array with a dict in it): a
    TypeError, as NumPy's conversion raises it, and a ValueError, as fastae's other input errors."""


_FLOAT32_MAX = float(np.finfo(np.float32).max)

_RESHAPE_HINT = ("Reshape your data either using array.reshape(-1, 1) if your data has a single feature or "
                 "array.reshape(1, -1) if it contains a single sample.")


def check_shape(arr: Any, name: str, n_features: Optional[int] = None, owner: Optional[str] = None) -> None:
    """2-D, at least one row and one column, and n_features columns when given (owner: who expects
    them, the estimator's class name; the wording is scikit-learn's)."""
    if arr.ndim != 2:
        hint = f" {_RESHAPE_HINT}" if arr.ndim < 2 else ""
        raise ValueError(f"{name} must be a 2-D array (n_samples, n_features); got shape {arr.shape}.{hint}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty: 0 sample(s) (shape={arr.shape}) while a minimum of 1 is required.")
    if arr.shape[1] == 0:
        raise ValueError(f"{name} is empty: 0 feature(s) (shape={arr.shape}) while a minimum of 1 is required.")
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(f"{name} has {arr.shape[1]} features, but {owner or 'the model'} is expecting {n_features} "
                         f"features as input.")


def check_bytes(X: Any, name: str, n_features: Optional[int] = None, owner: Optional[str] = None) -> np.ndarray:
    """A 2-D uint8 array as C-contiguous (8-bit data is never widened to float here)."""
    if not isinstance(X, np.ndarray) or X.dtype != np.uint8:
        raise ValueError(f"{name} must be a uint8 array like X (8-bit training data); got "
                         f"{getattr(X, 'dtype', type(X).__name__)}")
    check_shape(X, name, n_features, owner)
    return np.ascontiguousarray(X)



def ndim_or_none(X: Any) -> Optional[int]:
    """np.ndim(X), or None where X cannot be read as an array (a ragged list): check_array then
    reports it, naming the argument."""
    try:
        return np.ndim(X)
    except Exception:
        return None


def value_text(value: Any) -> str:
    """A value as an error message names it: NaN, inf, -inf, or the number as Python prints it."""
    value = float(value)
    return "NaN" if math.isnan(value) else repr(value)


def first_bad_value(original: np.ndarray,
                    bad_of_block: Callable[[np.ndarray], np.ndarray]) -> Optional[tuple[int, int, Any]]:
    """(row, column, value) of the first element of the 2-D array `original` (row-major order)
    for which bad_of_block(block) is True, scanning a few thousand rows at a time; None if none."""
    for start in range(0, original.shape[0], _FINITE_CHECK_ROWS):
        block = original[start:start + _FINITE_CHECK_ROWS]
        bad = bad_of_block(block)
        if bad.any():
            i, j = np.argwhere(bad)[0]
            return start + int(i), int(j), block[i, j]
    return None


def _raise_first_nonfinite(original, name, float32=True, first_row=0):
    """The error for the first value of `original` that is NaN, infinite or (float32) beyond
    float32's range, named by its value and position as the caller passed them."""
    with np.errstate(invalid="ignore", over="ignore"):
        found = first_bad_value(original, lambda b: ~np.isfinite(b) | ((np.abs(b) > _FLOAT32_MAX) if float32 and
                                                                        b.dtype.itemsize > 4 else False))
    if found is None:
        return
    i, j, v = found
    i += first_row
    if math.isfinite(float(v)):
        raise ValueError(f"{name} contains {value_text(v)} at row {i}, column {j}, beyond float32's range "
                         f"(+-{_FLOAT32_MAX:.4g}); values must be finite and within float32's range")
    raise ValueError(f"{name} contains a non-finite value ({value_text(v)}) at row {i}, column {j}")


def check_array(X: ArrayLike, name: str = "X", n_features: Optional[int] = None, unit_range: bool | str = False,
                scale: Optional[float] = None, finite: bool = True, owner: Optional[str] = None,
                first_row: int = 0) -> np.ndarray:
    """X as a 2-D C-contiguous float32 array, with no copy when it already is one.

    Other numeric dtypes and layouts (float64, integers, Fortran order, strided views) are
    converted once; an object array is read as float64 first (scikit-learn does the same); with
    `scale`, the result is X * scale (a new array). A float64 value beyond float32's range is
    reported by its value and position as given. finite=False leaves the NaN/inf scan to the C++
    core, which checks every array it is given (without the temporary arrays a NumPy scan needs)
    and names the value and its row. Raises ValueError for non-numeric data, a shape other than
    2-D, no rows or no columns, NaN or inf, a width other than n_features (owner: the estimator's
    name, for the message), or (unit_range: True or the loss's name) values outside [0, 1]; NotANumberError (a TypeError
    and a ValueError) for an object array that holds something other than numbers. first_row:
    the row number of X's first row in the caller's data (X a chunk of it), for the messages.
    """
    if isinstance(X, np.ndarray):
        arr = X
    else:
        try:
            arr = np.asarray(X)
        except Exception as exc:  # ragged lists and the like
            raise ValueError(f"{name} could not be read as an array: {exc}") from None
    kind = arr.dtype.kind
    if kind == "c":
        raise ValueError(f"{name} must hold real numbers (bool, int, uint or float); got dtype {arr.dtype} "
                         f"(Complex data not supported)")
    if kind not in "biufO":
        raise ValueError(f"{name} must hold real numbers (bool, int, uint or float); got dtype {arr.dtype}")
    check_shape(arr, name, n_features, owner)
    if kind == "O":
        try:
            arr = arr.astype(np.float64)
        except TypeError as exc:
            raise NotANumberError(f"{name} must hold real numbers (bool, int, uint or float); its object array holds "
                                  f"something else: {exc}") from None
        except ValueError as exc:
            raise ValueError(f"{name} must hold real numbers (bool, int, uint or float); its object array holds "
                             f"something else: {exc}") from None
    original = arr
    if arr.dtype.kind == "f" and arr.dtype.itemsize > 4:
        try:
            with np.errstate(over="raise"):  # a value beyond float32's range: named below, as given
                arr = np.ascontiguousarray(arr, dtype=np.float32)
        except FloatingPointError:
            _raise_first_nonfinite(original, name, first_row=first_row)
            raise  # not reached: the scan finds the value that overflowed
    else:
        arr = np.ascontiguousarray(arr, dtype=np.float32)
    if finite and original.dtype.kind == "f":
        for start in range(0, arr.shape[0], _FINITE_CHECK_ROWS):
            if not np.isfinite(arr[start:start + _FINITE_CHECK_ROWS]).all():
                _raise_first_nonfinite(original, name, first_row=first_row)
    if scale is not None:
        arr = arr * np.float32(scale)
    if unit_range:
        lo, hi = float(arr.min()), float(arr.max())
        if not (np.isfinite(lo) and np.isfinite(hi)):  # NaN propagates into min/max; inf is an extreme
            _raise_first_nonfinite(arr, name, first_row=first_row)
        if lo < -UNIT_RANGE_SLACK or hi > 1.0 + UNIT_RANGE_SLACK:
            loss = unit_range if isinstance(unit_range, str) else "bce"
            raise ValueError(f"{name} must lie in [0, 1] for loss={loss!r} (its targets are probabilities); "
                             f"got values in [{lo}, {hi}]. Scale it (e.g. X / 255 for 8-bit images) or use loss='mse'")
    return arr


def in_unit_range(arr: np.ndarray) -> bool:
    """Whether every value of the float32 array lies in [0, 1] (with the rounding slack bce
    forgives); False when it holds NaN (the engine then names the value as it reads it)."""
    lo, hi = float(arr.min()), float(arr.max())
    return -UNIT_RANGE_SLACK <= lo and hi <= 1.0 + UNIT_RANGE_SLACK


# ---- other containers: data frames and SciPy sparse matrices -----------------------------------

def is_sparse(X: Any) -> bool:
    """A SciPy sparse matrix or array (without importing SciPy: one exists only if it is loaded)."""
    sparse = sys.modules.get("scipy.sparse")
    return sparse is not None and sparse.issparse(X)


def is_dataframe(X: Any) -> bool:
    """A data frame (pandas, polars, ...): 2-D, with columns and per-column dtypes."""
    return (not isinstance(X, np.ndarray) and hasattr(X, "columns") and hasattr(X, "dtypes")
            and len(getattr(X, "shape", ())) == 2)


def feature_names_of(X: Any) -> Optional[np.ndarray]:
    """The column names of a data frame whose names are all strings (scikit-learn's rule:
    otherwise None, and a TypeError when string and non-string names are mixed)."""
    if not is_dataframe(X):
        return None
    names = np.asarray(list(X.columns), dtype=object)
    if len(names) == 0:
        return None
    types = sorted({type(v).__qualname__ for v in names})
    if len(types) > 1 and "str" in types:
        raise TypeError(f"Feature names are only supported if all input features have string names, but your input "
                        f"has {types} as feature name / column name types. If you want feature names to be stored "
                        f"and validated, you must convert them all to strings, by using "
                        f"X.columns = X.columns.astype(str) for example. Otherwise you can remove feature / column "
                        f"names from your input data, or convert them all to a non-string data type.")
    return names if types == ["str"] else None


def dataframe_to_array(X: Any, name: str) -> np.ndarray:
    """A data frame's values as a NumPy array: as they are when every column has a NumPy numeric
    dtype; otherwise as float64, with missing values (pandas' NA) as NaN, which the engine
    reports by row and column. A column that does not hold numbers is named."""
    dtypes = list(X.dtypes)
    if all(isinstance(dt, np.dtype) and dt.kind in "biuf" for dt in dtypes):
        return np.asarray(X)
    for column, dt in zip(X.columns, dtypes):
        if getattr(dt, "kind", "O") not in "biuf":
            if not isinstance(dt, np.dtype) or dt.kind != "O":
                raise ValueError(f"{name} must hold real numbers; its column {column!r} has dtype {dt}")
    try:
        return X.to_numpy(dtype=np.float64, na_value=np.nan)  # pandas
    except (TypeError, ValueError):
        pass
    # An object column: pandas' missing values (pd.NA, None) become NaN; anything else that is not
    # a number is named by its column and row.
    values: Any
    try:
        values = X.to_numpy(dtype=object, na_value=np.nan)  # pandas
    except TypeError:
        values = np.asarray(X.to_numpy(), dtype=object)  # other frames (polars: nulls become None)
        # (NumPy's stubs take no None operand; on an object array it compares each element with None)
        values = np.where(np.equal(values, None), np.nan, values)  # type: ignore[call-overload]
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        for j, column in enumerate(X.columns):
            for i, v in enumerate(values[:, j]):
                try:
                    float(v)
                except (TypeError, ValueError):
                    raise ValueError(f"{name} must hold real numbers; its column {column!r} holds {v!r} at row {i}"
                                     ) from None
        raise


def check_sparse(X: Any, name: str, n_features: Optional[int] = None, owner: Optional[str] = None) -> Any:
    """A SciPy sparse X as CSR (rows can then be cut), its dtype and shape checked."""
    if X.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold real numbers (bool, int, uint or float); got a sparse matrix of dtype "
                         f"{X.dtype}")
    check_shape(X, name, n_features, owner)
    return X.tocsr()


SPARSE_CHUNK_ROWS = 4096


def densify(X: Any, start: int = 0, stop: Optional[int] = None) -> np.ndarray:
    """Rows [start, stop) of a CSR matrix as a C-contiguous float64 or float32 array (float64 when
    X is wider than float32, so that check_array can name a value beyond float32's range)."""
    block = X[start:stop]
    dtype = np.float64 if X.dtype.kind == "f" and X.dtype.itemsize > 4 else np.float32
    return np.ascontiguousarray(block.toarray(), dtype=dtype)


def densify_all(X: Any, name: str) -> np.ndarray:
    """The whole CSR matrix as one float32 array (for training: the engine reads dense batches,
    and its first layer then skips the zeros), filled a few thousand rows at a time so that the
    peak is the float32 array; MemoryError when it does not fit in the memory available."""
    n, d = X.shape
    need = 4 * n * d
    if need > memory_available_bytes():
        raise MemoryError(f"{name} is a sparse {n} x {d} matrix; training needs it dense in float32, "
                          f"{need / 2**30:.1f} GiB, more than the {memory_available_bytes() / 2**30:.1f} GiB of memory "
                          f"available now")
    out = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, SPARSE_CHUNK_ROWS):
        out[start:start + SPARSE_CHUNK_ROWS] = check_array(densify(X, start, start + SPARSE_CHUNK_ROWS), name,
                                                           finite=False, first_row=start)
    return out
