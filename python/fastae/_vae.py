"""fastae.VariationalAutoencoder: a variational autoencoder (VAE) trained wholly by the C++ engine.

What every estimator on the engine shares is in _base.py; this file holds the VAE's own
parameters, its network (a mirrored autoencoder whose code layer is a Gaussian's mean and
log-variance, csrc/src/vae.h) and its methods (sampling, interpolation, the ELBO).
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
from numpy.typing import ArrayLike

from . import _core
from ._arrays import check_sample_weight
from ._autoencoder import Autoencoder
from ._base import _layer_spec, _NetworkEstimator
from ._compat import TransformerMixin, tags_with
from ._engine_input import engine_errors
from ._params import (
    ACTIVATIONS,
    MAX_INT,
    Check,
    Integer,
    Options,
    Real,
    check_activations,
    check_bool,
    check_output_and_loss,
    resolve_head,
    seed_from,
)

# The reconstruction losses a VAE takes (cross_entropy's rows are distributions, not a VAE's data).
_VAE_LOSSES = ("bce", "mse", "mae", "huber")


class VariationalAutoencoder(TransformerMixin, _NetworkEstimator):
    """A variational autoencoder trained on the CPU by fastae's C++ engine.

    The encoder has the widths of ``hidden_layer_sizes`` but the last, which is the latent size
    k; it ends in a linear layer of 2k units, the means mu and the log-variances of a diagonal
    Gaussian (the log-variances are clamped to [-30, 20] so that exp stays finite; the clamp
    passes no gradient outside that range). Training draws ``z = mu + exp(logvar / 2) * eps``,
    eps ~ N(0, 1), in C++ from a stream keyed by (random_state, epoch, sample), and decodes z with
    the mirrored decoder. The objective (the negative ELBO, with a weight on its KL term) is, per
    sample, the reconstruction loss summed over the features plus ``beta`` times
    KL(N(mu, sigma^2) || N(0, I)) = 1/2 sum (mu^2 + sigma^2 - log sigma^2 - 1), averaged over
    the batch. ``(256, 32)`` on 784 features is 784-256-(2x32)-256-784.

    The parameters not listed below (optimizer, learning_rate, batch_size, epochs, shuffle, random_state,
    n_threads, warm_start, verbose, beta_1, beta_2, epsilon, momentum, nesterov, input_scale,
    kernel_initializer, leaky_relu_slope, huber_delta, weight_decay, rho and the training controls
    validation_split, early_stopping, patience, min_delta, restore_best_weights, lr_schedule,
    lr_decay_rate, lr_decay_steps, lr_min, lr_patience, clipnorm, callbacks, max_time) are those of
    ``fastae.Autoencoder``.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default (256, 32)
        The encoder's widths; the last is the latent size.
    beta : float, default 1.0
        The weight of the KL term (beta-VAE; 1 is the ELBO).
    kl_warmup_epochs : int, default 0
        With n > 0, epoch e (1-based) weighs the KL term by beta * min(1, e / n): a linear ramp.
    loss : {"bce", "mse", "mae", "huber", "auto"}, default "bce"
        The reconstruction loss, summed over the features (bce: the Bernoulli log-likelihood, for
        data in [0, 1]; mse: a Gaussian's up to constants). "auto": bce for data in [0, 1], else mse.
    output_activation : str, default "auto"
        "auto": the loss's (bce: sigmoid), else sigmoid for data in [0, 1] and linear otherwise.
    activation : str or list of str, default "relu"
        The hidden layers' activation, or one name per encoder layer before the code (the code
        layer is linear), mirrored in the decoder.

    Attributes
    ----------
    history_ : dict with, per epoch, "loss" (the objective), "reconstruction" and "kl" (its two
        parts, the KL before its weight), "lr", "seconds", and "val_loss" with validation data
        (the validation data's reconstruction from the means plus beta times their KL)
    ``n_features_in_``, ``feature_names_in_``, ``loss_function_``, ``output_activation_``, ``n_iter_``, ``loss_``,
    best_epoch_, best_loss_, stop_reason_ : as ``fastae.Autoencoder``'s

    Saving, loading (``fastae.load``; C++: ``fastae::load_model``, whose ``Model`` can
    ``sample``, ``decode`` and ``encode_gaussian``) and pickling work as the autoencoder's.
    """

    _ESTIMATOR_NAME = "fastae.VariationalAutoencoder"

    _param_checks = {
        **_NetworkEstimator._param_checks,
        # One name per encoder layer before the code (the code layer is linear).
        "activation": Check(lambda v, p: check_activations(v, len(p["hidden_layer_sizes"]) - 1), with_params=True),
        "beta": Real(0.0, low_open=False),
        "kl_warmup_epochs": Integer(0, MAX_INT),
        "loss": Options(_VAE_LOSSES + ("auto",)),
        "output_activation": Options(tuple(a for a in ACTIVATIONS if a != "softmax") + ("auto",)),
        "huber_delta": Real(0.0),
    }

    def __init__(self, hidden_layer_sizes=(256, 32), beta=1.0, kl_warmup_epochs=0, loss="bce",
                 output_activation="auto", activation="relu", optimizer="adam", learning_rate=1e-3, batch_size=256,
                 epochs=10, shuffle=True, random_state=None, n_threads=None, warm_start=False, verbose=0,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, momentum=0.9, nesterov=True, input_scale=None,
                 kernel_initializer="glorot_uniform", leaky_relu_slope=0.01, huber_delta=1.0, weight_decay=0.01,
                 rho=0.9, validation_split=0.0, early_stopping=False, patience=10, min_delta=0.0,
                 restore_best_weights=True, lr_schedule=None, lr_decay_rate=0.1, lr_decay_steps=10, lr_min=0.0,
                 lr_patience=5, clipnorm=None, callbacks=None, max_time=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.beta = beta
        self.kl_warmup_epochs = kl_warmup_epochs
        self.loss = loss
        self.output_activation = output_activation
        self.activation = activation
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.epochs = epochs
        self.shuffle = shuffle
        self.random_state = random_state
        self.n_threads = n_threads
        self.warm_start = warm_start
        self.verbose = verbose
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.momentum = momentum
        self.nesterov = nesterov
        self.input_scale = input_scale
        self.kernel_initializer = kernel_initializer
        self.leaky_relu_slope = leaky_relu_slope
        self.huber_delta = huber_delta
        self.weight_decay = weight_decay
        self.rho = rho
        self.validation_split = validation_split
        self.early_stopping = early_stopping
        self.patience = patience
        self.min_delta = min_delta
        self.restore_best_weights = restore_best_weights
        self.lr_schedule = lr_schedule
        self.lr_decay_rate = lr_decay_rate
        self.lr_decay_steps = lr_decay_steps
        self.lr_min = lr_min
        self.lr_patience = lr_patience
        self.clipnorm = clipnorm
        self.callbacks = callbacks
        self.max_time = max_time

    def _check_param_combinations(self, p):
        super()._check_param_combinations(p)
        check_output_and_loss(p["output_activation"], p["loss"])

    def __sklearn_tags__(self):
        return tags_with(super().__sklearn_tags__(), preserves_dtype=["float32"])

    _more_tags = Autoencoder._more_tags  # scikit-learn < 1.6

    # What a VAE shares with the autoencoder, as it is: partial_fit, fit_transform, the codes'
    # feature names, and decoding (inverse_transform, decode).
    partial_fit = Autoencoder.partial_fit
    fit_transform = Autoencoder.fit_transform
    get_feature_names_out = Autoencoder.get_feature_names_out
    inverse_transform = Autoencoder.inverse_transform
    decode = Autoencoder.decode

    # ---- the network -------------------------------------------------------------------------

    @staticmethod
    def _network_spec(n_features, p):
        """The engine's network (_core.Model.spec()): the encoder's layers, the code layer (2k
        linear units: means, log-variances), the mirrored decoder, the output layer."""
        hidden, acts = p["hidden_layer_sizes"], p["activation"]
        k = hidden[-1]

        shape = [*zip(hidden[:-1], acts), (2 * k, "linear"), *zip(hidden[-2::-1], acts[::-1]),
                 (n_features, p["output_activation"])]
        return {"n_inputs": n_features, "code_layer": len(hidden) - 1, "loss": p["loss"],
                "huber_delta": p["huber_delta"], "layers": [_layer_spec(units, act, p) for units, act in shape],
                "variational": {"beta": float(p["beta"]), "kl_warmup_epochs": int(p["kl_warmup_epochs"])}}

    @staticmethod
    def _params_of_network(spec, sizes):
        """The hyperparameters of a variational network read from a file without the estimator's
        metadata (one saved from C++); ModelFileError when no VariationalAutoencoder describes it."""
        layers = spec["layers"]
        n_layers = len(layers)
        hidden = tuple(sizes[1:n_layers // 2 + 1])
        acts = [layer["activation"] for layer in layers[:n_layers // 2 - 1]]
        if "variational" not in spec or n_layers % 2 or \
                sizes != [sizes[0], *hidden, *reversed(hidden[:-1]), sizes[0]] or \
                spec["code_layer"] != len(hidden) - 1:
            raise _core.ModelFileError(f"model file: its network (layer sizes {sizes}) is not a mirrored variational "
                                       "autoencoder, so fastae.VariationalAutoencoder cannot hold it (load it in C++ "
                                       "with fastae::load_model)")
        head = (spec["loss"], layers[-1]["activation"])
        params = {"hidden_layer_sizes": hidden, "activation": acts[0] if len(set(acts)) == 1 else acts,
                  "output_activation": head[1], "loss": head[0], "huber_delta": spec["huber_delta"],
                  "kernel_initializer": layers[0]["initializer"], "beta": spec["variational"]["beta"],
                  "kl_warmup_epochs": spec["variational"]["kl_warmup_epochs"]}
        if head == resolve_head("bce", "auto", True):
            params["output_activation"] = "auto"
        slopes = [layer["alpha"] for layer in layers if layer["activation"] == "leaky_relu"]
        if slopes:
            params["leaky_relu_slope"] = slopes[0]
        return params

    # ---- training --------------------------------------------------------------------------

    def fit(self, X: ArrayLike, y: Any = None, validation_data: Any = None, *,
            sample_weight: Optional[ArrayLike] = None, resume_optimizer: bool = False) -> VariationalAutoencoder:
        """Trains on X (n_samples, n_features) to maximise the (beta-weighted) ELBO; y is ignored.
        validation_data, sample_weight (each sample's objective times its weight), warm_start and
        resume_optimizer as ``Autoencoder.fit``. Returns self."""
        resume = check_bool("resume_optimizer", resume_optimizer)
        return self._train(X, validation_data, sample_weight, partial=False, resume=resume)

    # ---- using a fitted model --------------------------------------------------------------

    def transform(self, X: ArrayLike) -> np.ndarray:
        """The code means of X, shape (n_samples, latent size), float32."""
        return self._infer(lambda model, X, threads: model.encode(X, n_threads=threads), X)

    def encode(self, X: ArrayLike, return_var: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """The code means of X; with return_var=True, (means, log-variances) (the log-variances
        as the decoder's draws use them: clamped to [-30, 20])."""
        if not check_bool("return_var", return_var):
            return self.transform(X)
        means, logvars = [], []

        def run(model, X, threads):  # per chunk of a sparse X, or once
            mean, logvar = model.encode_gaussian(X, n_threads=threads)
            means.append(mean)
            logvars.append(logvar)
            return mean

        self._infer(run, X)
        return np.concatenate(means), np.concatenate(logvars)

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Reconstruction of X from its code means: decode(transform(X)), in one pass."""
        return self._infer(lambda model, X, threads: model.predict(X, n_threads=threads), X)

    def sample(self, n: int, random_state: Any = None) -> np.ndarray:
        """n new samples: codes drawn from the prior N(0, I) in C++ (seeded by random_state:
        None, an int, a RandomState or a Generator), decoded. Shape (n, n_features), float32."""
        model = self._check_fitted()
        if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"n must be an int >= 0; got {n!r}")
        seed = seed_from(random_state)
        with engine_errors():
            return model.sample(int(n), seed, n_threads=self._inference_threads())

    def interpolate(self, x0: ArrayLike, x1: ArrayLike, steps: int = 10) -> np.ndarray:
        """Decodes `steps` codes evenly spaced on the straight line from x0's code mean to x1's
        (both ends included): shape (steps, n_features). x0 and x1 are single samples."""
        model = self._check_fitted()
        if isinstance(steps, (bool, np.bool_)) or not isinstance(steps, (int, np.integer)) or steps < 2:
            raise ValueError(f"steps must be an int >= 2; got {steps!r}")
        ends = []
        for name, x in (("x0", x0), ("x1", x1)):
            row = np.asarray(x)
            if row.ndim == 2 and row.shape[0] == 1:
                row = row[0]
            if row.ndim != 1:
                raise ValueError(f"{name} must be one sample (shape ({model.n_inputs},) or (1, {model.n_inputs})); "
                                 f"got shape {np.shape(x)}")
            ends.append(self.transform(row[None, :])[0].astype(np.float64))
        t = np.linspace(0.0, 1.0, int(steps))[:, None]
        codes = ((1.0 - t) * ends[0] + t * ends[1]).astype(np.float32)
        with engine_errors():
            return model.decode(codes, n_threads=self._inference_threads())

    def _elbo_terms(self, X, random_state):
        model = self._check_fitted()
        seed = self._score_seed(random_state)
        unit = model.loss if _core.LOSS_TRAITS[model.loss]["unit_targets"] else False
        rec, kl = [], []

        def run(model, X, threads):
            r, k = model.elbo_terms(X, seed, n_threads=threads)
            rec.append(r)
            kl.append(k)
            return r

        self._infer(run, X, unit_range=unit)
        return np.concatenate(rec), np.concatenate(kl)

    def _score_seed(self, random_state):
        """The seed of the ELBO's draws: random_state's, else the estimator's own random_state
        when it is an int, else 0 (so that scores are deterministic)."""
        if random_state is not None:
            return seed_from(random_state)
        own = self.random_state
        return seed_from(own) if isinstance(own, (int, np.integer)) and not isinstance(own, bool) else 0

    def score_samples(self, X: ArrayLike, random_state: Any = None) -> np.ndarray:
        """The per-sample ELBO in nats (minus the reconstruction loss summed over the features,
        minus the KL term; higher is more normal), with one draw of the code per sample keyed by
        the seed (random_state, see elbo) and the sample's values: a sample scores the same in
        any call. Shape (n_samples,), float64."""
        rec, kl = self._elbo_terms(X, random_state)
        return -(rec.astype(np.float64) + kl.astype(np.float64))

    def elbo(self, X: ArrayLike, random_state: Any = None) -> float:
        """The mean ELBO of X in nats (one draw of the code per sample, seeded by random_state;
        None: the estimator's random_state when it is an int, else 0)."""
        return float(np.mean(self.score_samples(X, random_state)))

    def score(self, X: ArrayLike, y: Any = None, sample_weight: Optional[ArrayLike] = None) -> float:
        """The mean ELBO of X (weighted by sample_weight if given): higher is better."""
        scores = self.score_samples(X)
        if sample_weight is None:
            return float(np.mean(scores))
        weights = check_sample_weight(sample_weight, scores.shape[0])
        return float(np.average(scores, weights=weights.astype(np.float64)))
