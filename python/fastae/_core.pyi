"""
fastae's compiled engine (private: use fastae.Autoencoder).
"""
from __future__ import annotations
import collections.abc
import numpy
import numpy.typing
import typing
__all__: list[str] = ['ACTIVATIONS', 'ACTIVATION_TRAITS', 'AUTOENCODER_SHUFFLE_SEED_OFFSET', 'FILE_CODES', 'INITIALIZERS', 'LOSSES', 'LOSS_TRAITS', 'LR_SCHEDULES', 'MODEL_FILE_VERSION', 'Model', 'ModelFileError', 'NOISES', 'OPTIMIZERS', 'OPTIMIZER_SLOTS', 'PeerFailedError', 'TrainingDivergedError', 'affinity_cpus', 'available_cpus', 'build_info', 'cpu_limit', 'hardware_threads', 'load_model', 'measured_fma_peak_gflops', 'measured_sgemm_gflops', 'model_from_bytes', 'model_to_bytes', 'param_count', 'save_model']
class TrainingDivergedError(FloatingPointError):
    pass
class ModelFileError(ValueError):
    pass
class PeerFailedError(RuntimeError):
    pass
class Model:
    @staticmethod
    def from_spec(spec: dict) -> Model:
        """
        A model from a network spec dict (see spec()).
        """
    def __init__(self, layer_sizes: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], activation: str, output_activation: str, loss: str) -> None:
        ...
    def bias_offset(self, layer: typing.SupportsInt | typing.SupportsIndex) -> int:
        ...
    def code_noise(self, n: typing.SupportsInt | typing.SupportsIndex, seed: typing.SupportsInt | typing.SupportsIndex, epoch: typing.SupportsInt | typing.SupportsIndex, first_row: typing.SupportsInt | typing.SupportsIndex = 0) -> numpy.typing.NDArray[numpy.float32]:
        """
        The eps a training step draws for rows first_row... in 1-based epoch `epoch` of a fit seeded `seed`.
        """
    def copy(self) -> Model:
        """
        A deep copy.
        """
    def decode(self, codes: numpy.typing.NDArray[numpy.float32], n_threads: typing.SupportsInt | typing.SupportsIndex = 1) -> numpy.typing.NDArray[numpy.float32]:
        ...
    def elbo_terms(self, X: numpy.typing.NDArray[numpy.float32], seed: typing.SupportsInt | typing.SupportsIndex, n_threads: typing.SupportsInt | typing.SupportsIndex = 1) -> tuple[numpy.typing.NDArray[numpy.float32], numpy.typing.NDArray[numpy.float32]]:
        """
        Per sample: the reconstruction loss summed over the outputs and the KL term (one keyed draw).
        """
    def encode(self, X: numpy.typing.NDArray[numpy.float32], n_threads: typing.SupportsInt | typing.SupportsIndex = 1) -> numpy.typing.NDArray[numpy.float32]:
        ...
    def encode_gaussian(self, X: numpy.typing.NDArray[numpy.float32], n_threads: typing.SupportsInt | typing.SupportsIndex = 1) -> tuple[numpy.typing.NDArray[numpy.float32], numpy.typing.NDArray[numpy.float32]]:
        """
        A variational network's code means and (clamped) log-variances.
        """
    def fit(self, X: typing.Any, y: numpy.typing.NDArray[numpy.float32] | None, sample_weight: numpy.typing.NDArray[numpy.float32] | None, X_val: numpy.ndarray | None, y_val: numpy.typing.NDArray[numpy.float32] | None, w_val: numpy.typing.NDArray[numpy.float32] | None, scale: typing.SupportsFloat | typing.SupportsIndex, optimizer: dict, options: dict, on_epoch: collections.abc.Callable | None = None, on_progress: collections.abc.Callable | None = None, lr_function: collections.abc.Callable | None = None, processes: tuple | None = None) -> tuple:
        """
        Trains in place; returns (history, stop_reason). optimizer: settings dict (optimizer, learning_rate, beta1, beta2, epsilon, momentum, nesterov, weight_decay, rho); options: epochs, batch_size, shuffle, seed, n_threads, resume_optimizer. Raises KeyboardInterrupt on Ctrl-C after the current step, with the model usable.
        """
    def forward(self, first: typing.SupportsInt | typing.SupportsIndex, last: typing.SupportsInt | typing.SupportsIndex, X: numpy.typing.NDArray[numpy.float32], n_threads: typing.SupportsInt | typing.SupportsIndex = 1) -> numpy.typing.NDArray[numpy.float32]:
        ...
    def get_params(self) -> numpy.typing.NDArray[numpy.float32]:
        """
        A copy of the flat parameter buffer.
        """
    def init_weights(self, seed: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    def loss_and_gradient(self, X: numpy.typing.NDArray[numpy.float32], y: numpy.typing.NDArray[numpy.float32] | None = None) -> tuple[float, numpy.typing.NDArray[numpy.float32]]:
        """
        Mean loss of X (targets y, or X) and its gradient, in the layout of get_params().
        """
    def optimizer_state(self) -> typing.Any:
        """
        A copy of the optimizer state left by the last fit: {config, steps, m, v}, or None.
        """
    def param_offset(self, layer: typing.SupportsInt | typing.SupportsIndex) -> int:
        ...
    def predict(self, X: numpy.typing.NDArray[numpy.float32], n_threads: typing.SupportsInt | typing.SupportsIndex = 1) -> numpy.typing.NDArray[numpy.float32]:
        ...
    def sample(self, n: typing.SupportsInt | typing.SupportsIndex, seed: typing.SupportsInt | typing.SupportsIndex, n_threads: typing.SupportsInt | typing.SupportsIndex = 1) -> numpy.typing.NDArray[numpy.float32]:
        """
        Decodes n codes drawn from the prior N(0, I) (row i's keyed by (seed, i)).
        """
    def sample_losses(self, X: numpy.typing.NDArray[numpy.float32], y: numpy.typing.NDArray[numpy.float32] | None = None, n_threads: typing.SupportsInt | typing.SupportsIndex = 1) -> numpy.typing.NDArray[numpy.float32]:
        ...
    def set_optimizer_state(self, state: dict) -> None:
        ...
    def set_params(self, values: numpy.typing.NDArray[numpy.float32]) -> None:
        ...
    def spec(self) -> dict:
        """
        The network as a dict: n_inputs, code_layer, loss, huber_delta, layers [{units, activation, alpha, initializer, l1, l2, dropout, noise, noise_level, activity_l1, sparsity_target, sparsity_weight, contractive, tied_to, trainable}].
        """
    def training_loss_and_gradient(self, X: numpy.typing.NDArray[numpy.float32], seed: typing.SupportsInt | typing.SupportsIndex, epoch: typing.SupportsInt | typing.SupportsIndex) -> tuple[float, numpy.typing.NDArray[numpy.float32]]:
        """
        A training step's objective on X's rows (epoch `epoch`, seed `seed`) and its gradient.
        """
    @property
    def activation(self) -> str:
        ...
    @property
    def code_size(self) -> int:
        ...
    @property
    def has_optimizer_state(self) -> bool:
        ...
    @property
    def layer_sizes(self) -> list[int]:
        ...
    @property
    def loss(self) -> str:
        ...
    @property
    def n_encoder_layers(self) -> int:
        ...
    @property
    def n_inputs(self) -> int:
        ...
    @property
    def n_layers(self) -> int:
        ...
    @property
    def n_outputs(self) -> int:
        ...
    @property
    def n_params(self) -> int:
        ...
    @property
    def output_activation(self) -> str:
        ...
def affinity_cpus() -> int:
    """
    CPUs in this process's affinity mask (fastae/cpus.h).
    """
def available_cpus() -> int:
    """
    CPUs this process can keep busy: its affinity mask, capped by its control group's CPU limit rounded up (fastae/cpus.h).
    """
def build_info() -> str:
    """
    Version, SIMD instruction sets and Eigen version of this build.
    """
def cpu_limit() -> float:
    """
    This process's control-group CPU bandwidth limit in CPUs (quota / period), 0 where none (fastae/cpus.h).
    """
def hardware_threads() -> int:
    """
    Hardware threads reported by the C++ runtime.
    """
def load_model(path: bytes) -> tuple:
    """
    Reads a model file: (Model, optimizer settings dict, metadata bytes).
    """
def measured_fma_peak_gflops(runs: typing.SupportsInt | typing.SupportsIndex = 400) -> float:
    """
    Single-core GFLOP/s of register-only FMAs on this build's widest vectors (fastae/machine.h).
    """
def measured_sgemm_gflops(n: typing.SupportsInt | typing.SupportsIndex = 2048, seconds: typing.SupportsFloat | typing.SupportsIndex = 1.0) -> float:
    """
    Single-core GFLOP/s of the engine's own n x n x n float product (fastae/machine.h).
    """
def model_from_bytes(data: bytes) -> tuple:
    """
    Parses a model file: (Model, optimizer settings dict, metadata bytes).
    """
def model_to_bytes(model: Model, optimizer: dict | None, include_optimizer_state: bool, metadata: bytes) -> bytes:
    """
    The model file as bytes; optimizer: settings dict or None (those of the optimizer state).
    """
def param_count(spec: dict) -> int:
    """
    Parameters of the network a spec describes (validated as Model does).
    """
def save_model(model: Model, path: bytes, optimizer: dict | None, include_optimizer_state: bool, metadata: bytes) -> None:
    """
    Writes the model file atomically (temporary file, fsync, rename).
    """
ACTIVATIONS: tuple = ('linear', 'relu', 'sigmoid', 'tanh', 'leaky_relu', 'elu', 'gelu', 'softplus', 'softmax')
ACTIVATION_TRAITS: dict = {'linear': {'needs_preactivation': False, 'output_only': False, 'default_alpha': 0.0}, 'relu': {'needs_preactivation': False, 'output_only': False, 'default_alpha': 0.0}, 'sigmoid': {'needs_preactivation': False, 'output_only': False, 'default_alpha': 0.0}, 'tanh': {'needs_preactivation': False, 'output_only': False, 'default_alpha': 0.0}, 'leaky_relu': {'needs_preactivation': False, 'output_only': False, 'default_alpha': 0.01}, 'elu': {'needs_preactivation': False, 'output_only': False, 'default_alpha': 1.0}, 'gelu': {'needs_preactivation': True, 'output_only': False, 'default_alpha': 0.0}, 'softplus': {'needs_preactivation': False, 'output_only': False, 'default_alpha': 0.0}, 'softmax': {'needs_preactivation': False, 'output_only': True, 'default_alpha': 0.0}}
AUTOENCODER_SHUFFLE_SEED_OFFSET: int = 25214903917
FILE_CODES: dict = {'activation': {'linear': 0, 'relu': 1, 'sigmoid': 2, 'tanh': 3, 'leaky_relu': 4, 'elu': 5, 'gelu': 6, 'softplus': 7, 'softmax': 8}, 'loss': {'mse': 0, 'bce': 1, 'mae': 2, 'huber': 3, 'cross_entropy': 4}, 'optimizer': {'adam': 0, 'sgd': 1, 'adamw': 2, 'rmsprop': 3}, 'initializer': {'glorot_uniform': 0, 'glorot_normal': 1, 'he_uniform': 2, 'he_normal': 3, 'lecun_normal': 4}, 'noise': {'none': 0, 'gaussian': 1, 'masking': 2}}
INITIALIZERS: tuple = ('glorot_uniform', 'glorot_normal', 'he_uniform', 'he_normal', 'lecun_normal')
LOSSES: tuple = ('mse', 'bce', 'mae', 'huber', 'cross_entropy')
LOSS_TRAITS: dict = {'mse': {'required_output': None, 'per_sample': False, 'unit_targets': False}, 'bce': {'required_output': 'sigmoid', 'per_sample': False, 'unit_targets': True}, 'mae': {'required_output': None, 'per_sample': False, 'unit_targets': False}, 'huber': {'required_output': None, 'per_sample': False, 'unit_targets': False}, 'cross_entropy': {'required_output': 'softmax', 'per_sample': True, 'unit_targets': True}}
LR_SCHEDULES: tuple = ('none', 'step', 'exponential', 'cosine', 'plateau')
MODEL_FILE_VERSION: int = 2
NOISES: tuple = ('none', 'gaussian', 'masking')
OPTIMIZERS: tuple = ('adam', 'sgd', 'adamw', 'rmsprop')
OPTIMIZER_SLOTS: dict = {'adam': ('exp_avg', 'exp_avg_sq'), 'sgd': ('momentum_buffer'), 'adamw': ('exp_avg', 'exp_avg_sq'), 'rmsprop': ('square_avg')}
__version__: str = '0.1.0'
