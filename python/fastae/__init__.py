"""fastae: fast training of dense autoencoders on CPUs.

    from fastae import Autoencoder
    ae = Autoencoder(hidden_layer_sizes=(64,), epochs=10, random_state=0).fit(X_train)
    codes = ae.transform(X_test)
    ae.save("model.fae"); ae = fastae.load("model.fae")   # also in C++: fastae::load_model

The engine is C++ (Eigen kernels, the whole training loop); this package is a thin
layer over it. Runtime dependency: numpy. With scikit-learn installed (``pip install
fastae[sklearn]``) the estimators are scikit-learn estimators (pipelines, grid searches,
``set_output``); without it they work the same with NumPy alone.
"""

from __future__ import annotations

from typing import Optional, TextIO

from . import _loader

# The engine: _core in a source build, or the variant of a portable build that this CPU runs,
# registered as fastae._core before the modules below import it (see _loader.py).
_loader.load_core()
from . import _core  # noqa: E402  (the module load_core registered)
from ._anomaly import AnomalyDetector  # noqa: E402
from ._autoencoder import Autoencoder  # noqa: E402
from ._code_size import CodeSizeReport, choose_code_size  # noqa: E402
from ._compat import NotFittedError  # noqa: E402
from ._core import TrainingDivergedError  # noqa: E402
from ._mlp import MLPClassifier, MLPRegressor  # noqa: E402
from ._params import available_cpus, cpu_limit, resolve_n_threads  # noqa: E402
from ._persistence import ModelFileError, from_bytes, load  # noqa: E402
from ._vae import VariationalAutoencoder  # noqa: E402
from .datasets import load_digits  # noqa: E402

__version__ = _core.__version__

__all__ = ["AnomalyDetector", "Autoencoder", "CodeSizeReport", "MLPClassifier", "MLPRegressor", "ModelFileError",
           "NotFittedError", "TrainingDivergedError", "VariationalAutoencoder", "choose_code_size", "from_bytes",
           "get_cmake_dir", "load", "load_digits", "show_config", "__version__"]


def get_cmake_dir() -> str:
    """The folder holding fastaeConfig.cmake inside this installed package, for C++ hosts:
    ``cmake -Dfastae_DIR="$(python -m fastae --cmake-dir)"`` then ``find_package(fastae CONFIG)``
    and ``target_link_libraries(host PRIVATE fastae::fastae)``. The headers and the static library
    it points at were built with the same compiler and flags as this module's engine. Raises
    FileNotFoundError when the package was installed without them."""
    import os

    folder = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib", "cmake", "fastae")
    if not os.path.isfile(os.path.join(folder, "fastaeConfig.cmake")):
        raise FileNotFoundError(f"no fastaeConfig.cmake in {folder}: this fastae was installed without its C++ "
                                "development files (they come with `pip install`)")
    return folder


def _cpu_sources() -> str:
    """Where available_cpus() comes from (the engine's figures, fastae/cpus.h): the affinity
    mask, the control group's CPU limit, the hardware threads."""
    limit = cpu_limit()
    return (f"affinity mask: {_core.affinity_cpus()}, cgroup CPU limit: {f'{limit:g}' if limit > 0 else 'none'}, "
            f"hardware threads: {_core.hardware_threads()}")


def show_config(file: Optional[TextIO] = None) -> str:
    """Prints (and returns) how this fastae was built and what it will use: version, SIMD
    instruction sets, Eigen version, the engine variant (and why it was chosen), and the CPUs
    available to this process."""
    import sys

    text = (f"{_core.build_info()}\n"
            f"{_loader.describe()}\n"
            f"extension: {_core.__file__}\n"
            f"CPUs available to this process: {available_cpus()} ({_cpu_sources()})\n"
            f"default n_threads: {resolve_n_threads(None)} (each step on all of them, or on one when that is "
            f"measured faster)")
    print(text, file=file if file is not None else sys.stdout)
    return text
