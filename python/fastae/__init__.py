"""fastae: fast training of dense autoencoders on CPUs.

    from fastae import Autoencoder
    ae = Autoencoder(hidden_layer_sizes=(64,), epochs=10, random_state=0).fit(X_train)
    codes = ae.transform(X_test)

The engine is C++ (Eigen kernels, the whole training loop); this package is a thin,
scikit-learn-style layer over it. Runtime dependency: numpy.
"""

from . import _core
from ._autoencoder import Autoencoder, NotFittedError
from ._core import TrainingDivergedError
from ._validation import available_cpus
from .datasets import load_digits

__version__ = _core.__version__

__all__ = ["Autoencoder", "NotFittedError", "TrainingDivergedError", "load_digits", "show_config", "__version__"]


def show_config(file=None):
    """Prints (and returns) how this fastae was built and what it will use: version, SIMD
    instruction sets, Eigen version, and the CPUs available to this process."""
    import sys

    text = (f"{_core.build_info()}\n"
            f"extension: {_core.__file__}\n"
            f"CPUs available to this process: {available_cpus()} (hardware threads: {_core.hardware_threads()})\n"
            f"default n_threads: 1")
    print(text, file=file if file is not None else sys.stdout)
    return text
