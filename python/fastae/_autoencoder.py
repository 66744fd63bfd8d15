"""fastae.Autoencoder: a scikit-learn-style estimator over the C++ engine (fastae._core).

This layer only stores hyperparameters, validates, converts arrays once and keeps the learned
state; the training loop, the kernels and the optimizers all run in C++.
"""

from __future__ import annotations

import inspect
import json
import math
import numbers
import os
import warnings

import numpy as np

from . import _core, _progress
from ._validation import (
    ACTIVATIONS,
    INITIALIZERS,
    LOSSES,
    MAX_INT,
    OPTIMIZERS,
    check_activations,
    check_array,
    check_bool,
    check_bytes,
    check_callbacks,
    check_choice,
    check_hidden_layer_sizes,
    check_int,
    check_lr_schedule,
    check_network_size,
    check_output_and_loss,
    check_real,
    check_sample_weight,
    ndim_or_none,
    resolve_n_threads,
    seed_from,
)

# Keeps the shuffle stream apart from the weight-initialisation stream of the same seed: fit trains
# with shuffle seed (seed + offset) mod 2^64 after init_weights(seed). Defined once, in C++
# (fastae/autoencoder.h), so that C++ programs can train the same network.
_SHUFFLE_SEED_OFFSET = _core.AUTOENCODER_SHUFFLE_SEED_OFFSET

ModelFileError = _core.ModelFileError

# What ae.save stores in a model file's metadata (UTF-8 JSON, see docs/model-format.md).
_METADATA_KIND = "fastae.Autoencoder"


class NotFittedError(ValueError, AttributeError):
    """Raised when a method that needs learned weights is called before fit (as in scikit-learn)."""


class Autoencoder:
    """A dense autoencoder trained on the CPU by fastae's C++ engine.

    The encoder has the widths in ``hidden_layer_sizes`` (the last is the code size) and the
    decoder mirrors them: ``(256, 64)`` on 784 features is 784-256-64-256-784. The hidden layers
    use ``activation``; the output uses ``output_activation``.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default (64,)
    activation : str or list of str, default "relu"
        "relu", "leaky_relu" (slope ``leaky_relu_slope``), "elu" (alpha 1), "gelu" (the exact erf
        form, as torch.nn.GELU()), "tanh", "sigmoid", "softplus" or "linear"; or one name per
        encoder layer, mirrored in the decoder: with ``hidden_layer_sizes=(256, 64)`` and
        ``activation=["tanh", "elu"]`` the layers 784-256-64-256-784 use tanh, elu, tanh, then
        ``output_activation`` (a decoder layer takes the activation of the encoder layer of the
        same width).
    output_activation : str, default "sigmoid"
        Any of the above, or "softmax" (with ``loss="cross_entropy"`` only).
    loss : {"bce", "mse", "mae", "huber", "cross_entropy"}, default "bce"
        Means over all elements (cross_entropy: over samples), as Keras reports them. "bce" is
        computed from the logits (stable, fused with the sigmoid) and needs
        ``output_activation="sigmoid"`` and data in [0, 1]; "huber" is torch.nn.HuberLoss with
        ``huber_delta``; "cross_entropy" is fused with a softmax output and needs rows that are
        probability vectors.
    optimizer : {"adam", "adamw", "sgd", "rmsprop"}, default "adam"
        Exactly torch.optim's Adam, AdamW (decoupled ``weight_decay``), SGD (``momentum``,
        ``nesterov``) and RMSprop (``rho`` as its alpha, ``epsilon``; no momentum, not centered).
    learning_rate : float, default 1e-3
    batch_size : int, default 256
        The last, partial batch of an epoch is used too.
    epochs : int, default 10
    shuffle : bool, default True
        Reshuffle the samples every epoch (seeded by ``random_state``).
    random_state : None, int, numpy RandomState or Generator, default None
        The same int gives bit-identical weights after training for the same n_threads
        (however the threads happen to be scheduled).
    n_threads : None or int, default None
        Shards each batch is split into, and the most threads used. None or -1: every CPU
        available to this process. Each training step runs on all of them or on one, whichever
        is measured faster (a core kept busy by another process makes one thread faster).
        Training results depend on n_threads only through the order of floating-point sums:
        set it explicitly to reproduce a run bit for bit on machines with other CPU counts.
        Inference (transform, inverse_transform, predict, the scores) shares its chunks of 256
        samples among as many threads; its results are identical whatever n_threads.
    warm_start : bool, default False
        If True, ``fit`` starts from the current weights (for instance from ``set_weights`` or
        ``fastae.load``) with a fresh optimizer state, or, with ``fit(X, resume_optimizer=True)``,
        with the optimizer state the last fit left (Adam's moments and step count).
    verbose : {0, 1, 2}, default 0
        1 shows a live progress bar per epoch (steps, running loss, samples/s, ETA; tqdm's when
        it is installed), or a line per epoch when the output is not a terminal; 2 prints one
        line per epoch.
    beta_1, beta_2, epsilon : float
        Adam's and AdamW's parameters (defaults 0.9, 0.999, 1e-8, as torch.optim.Adam); epsilon is
        RMSprop's too.
    momentum : float, default 0.9
        SGD momentum.
    nesterov : bool, default True
        SGD Nesterov momentum.
    input_scale : None or float, default None
        If set, every X given to the estimator (fit, partial_fit, validation_data, transform,
        predict, score, ...) is multiplied by it first: ``input_scale=1/255`` trains on 8-bit
        images directly. A C-contiguous uint8 X is then used in place by fit, scaled batch by
        batch inside the engine, so MNIST occupies 47 MB instead of the 188 MB of a float32
        copy (validation_data must then be uint8 too). Other inputs are converted once.

    Attributes
    ----------
    n_features_in_ : int
    history_ : dict with "loss" (and "val_loss" with validation data), "lr" and "seconds" per
        epoch
    n_iter_ : int, epochs run by the last fit
    loss_ : float, training loss of the last epoch
    best_epoch_, best_loss_ : the epoch (1-based, as history_ counts) with the best monitored loss
        (val_loss, else loss) and that loss; with early_stopping and restore_best_weights the
        model holds that epoch's weights
    stop_reason_ : str, why the last fit ended: "completed", "early_stopping", "max_time",
        "callback" or "interrupted"

    Saving: ``ae.save(path)`` writes fastae's model file (weights, optimizer state,
    hyperparameters); ``fastae.load(path)`` reads it back, also in C++ (``fastae::load_model``).
    ``pickle``, ``copy.deepcopy`` and ``joblib`` round-trip exactly.
    """

    def __init__(self, hidden_layer_sizes=(64,), activation="relu", output_activation="sigmoid", loss="bce",
                 optimizer="adam", learning_rate=1e-3, batch_size=256, epochs=10, shuffle=True, random_state=None,
                 n_threads=None, warm_start=False, verbose=0, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 momentum=0.9, nesterov=True, input_scale=None, kernel_initializer="glorot_uniform",
                 leaky_relu_slope=0.01, huber_delta=1.0, weight_decay=0.01, rho=0.9, validation_split=0.0,
                 early_stopping=False, patience=10, min_delta=0.0, restore_best_weights=True, lr_schedule=None,
                 lr_decay_rate=0.1, lr_decay_steps=10, lr_min=0.0, lr_patience=5, clipnorm=None, callbacks=None,
                 max_time=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.output_activation = output_activation
        self.loss = loss
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

    # ---- scikit-learn's estimator contract -------------------------------------------------

    @classmethod
    def _get_param_names(cls):
        return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]

    def get_params(self, deep=True):
        """The constructor's parameters as a dict (deep is accepted for scikit-learn)."""
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params):
        """Sets constructor parameters; unknown names raise ValueError. Returns self."""
        valid = self._get_param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"invalid parameter {name!r} for {type(self).__name__}; valid: {', '.join(valid)}")
            setattr(self, name, value)
        return self

    def __repr__(self):
        defaults = inspect.signature(type(self).__init__).parameters
        changed = []
        for name in self._get_param_names():
            value = getattr(self, name)
            default = defaults[name].default
            if not (value is default or (type(value) is type(default) and value == default)):
                changed.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(changed)})"

    # ---- validation ------------------------------------------------------------------------

    def _validated_params(self, draw_seed=True):
        """Every hyperparameter checked; returns the normalised values fit needs (with
        draw_seed=False, without "seed": drawing one from a RandomState changes it)."""
        hidden = check_hidden_layer_sizes(self.hidden_layer_sizes)
        p = {
            "hidden_layer_sizes": hidden,
            "activation": check_activations(self.activation, len(hidden)),
            "output_activation": check_choice("output_activation", self.output_activation, ACTIVATIONS),
            "loss": check_choice("loss", self.loss, LOSSES),
            "optimizer": check_choice("optimizer", self.optimizer, OPTIMIZERS),
            "learning_rate": check_real("learning_rate", self.learning_rate, 0.0, None),
            "batch_size": check_int("batch_size", self.batch_size, 1, MAX_INT),
            "epochs": check_int("epochs", self.epochs, 1, MAX_INT),
            "shuffle": check_bool("shuffle", self.shuffle),
            "warm_start": check_bool("warm_start", self.warm_start),
            "verbose": check_int("verbose", self.verbose, 0),
            "beta_1": check_real("beta_1", self.beta_1, 0.0, 1.0, low_open=False),
            "beta_2": check_real("beta_2", self.beta_2, 0.0, 1.0, low_open=False),
            "epsilon": check_real("epsilon", self.epsilon, 0.0, None),
            "momentum": check_real("momentum", self.momentum, 0.0, 1.0, low_open=False),
            "nesterov": check_bool("nesterov", self.nesterov),
            "input_scale": None if self.input_scale is None else check_real("input_scale", self.input_scale, 0.0, None),
            "kernel_initializer": check_choice("kernel_initializer", self.kernel_initializer, INITIALIZERS),
            "leaky_relu_slope": check_real("leaky_relu_slope", self.leaky_relu_slope, 0.0, None, low_open=False),
            "huber_delta": check_real("huber_delta", self.huber_delta, 0.0, None),
            "weight_decay": check_real("weight_decay", self.weight_decay, 0.0, None, low_open=False),
            "rho": check_real("rho", self.rho, 0.0, 1.0, low_open=False),
            "validation_split": check_real("validation_split", self.validation_split, 0.0, 1.0, low_open=False),
            "early_stopping": check_bool("early_stopping", self.early_stopping),
            "patience": check_int("patience", self.patience, 1, MAX_INT),
            "min_delta": check_real("min_delta", self.min_delta, 0.0, None, low_open=False),
            "restore_best_weights": check_bool("restore_best_weights", self.restore_best_weights),
            "lr_schedule": check_lr_schedule(self.lr_schedule),
            "lr_decay_rate": check_real("lr_decay_rate", self.lr_decay_rate, 0.0, 1.0, high_open=False),
            "lr_decay_steps": check_int("lr_decay_steps", self.lr_decay_steps, 1, MAX_INT),
            "lr_min": check_real("lr_min", self.lr_min, 0.0, None, low_open=False),
            "lr_patience": check_int("lr_patience", self.lr_patience, 1, MAX_INT),
            "clipnorm": None if self.clipnorm is None else check_real("clipnorm", self.clipnorm, 0.0, None),
            "callbacks": check_callbacks(self.callbacks),
            "max_time": None if self.max_time is None else check_real("max_time", self.max_time, 0.0, None),
        }
        check_output_and_loss(p["output_activation"], p["loss"])
        if p["optimizer"] == "sgd" and p["nesterov"] and p["momentum"] == 0.0:
            raise ValueError("nesterov=True needs momentum > 0; got momentum=0.0")
        p["n_threads"] = resolve_n_threads(self.n_threads)
        if draw_seed:
            p["seed"] = seed_from(self.random_state)
        return p

    def _check_fitted(self):
        if getattr(self, "_model", None) is None:
            raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet: call fit (or set_weights) "
                                 "before using it.")

    def _check_X(self, X, name="X", unit_range=False):
        self._check_fitted()
        return check_array(X, name, self._model.n_inputs, unit_range=unit_range, scale=self._fitted_scale(),
                           finite=False)  # the core checks NaN/inf as it reads

    def _inference_threads(self):
        """Threads for inference: n_threads, resolved as for training. Inputs are cut into chunks
        of 256 samples shared by the threads; each output row is the same whatever the count."""
        return resolve_n_threads(self.n_threads)

    def _fitted_scale(self):
        """input_scale as it was at fit (inference must scale as training did)."""
        return getattr(self, "_input_scale", None)

    @staticmethod
    def _network_spec(n_features, p):
        """The engine's network spec (_core.Model.spec()) for these hyperparameters: the encoder's
        layers, the mirrored decoder (each decoder layer has the width and the activation of the
        encoder layer it mirrors), then the output layer."""
        hidden, acts = p["hidden_layer_sizes"], p["activation"]
        widths = [*hidden, *reversed(hidden[:-1])]
        activations = [*acts, *reversed(acts[:-1])]

        def layer(units, activation):
            alpha = p["leaky_relu_slope"] if activation == "leaky_relu" else \
                _core.ACTIVATION_TRAITS[activation]["default_alpha"]
            return {"units": units, "activation": activation, "alpha": alpha, "initializer": p["kernel_initializer"],
                    "l1": 0.0, "l2": 0.0, "dropout": 0.0}

        layers = [layer(w, a) for w, a in zip(widths, activations)] + [layer(n_features, p["output_activation"])]
        return {"n_inputs": n_features, "code_layer": len(hidden) - 1, "loss": p["loss"],
                "huber_delta": p["huber_delta"], "layers": layers}

    def _new_model(self, n_features, p, for_training=True, float_data=True):
        spec = self._network_spec(n_features, p)
        check_network_size(spec, *((p["n_threads"], p["optimizer"], float_data) if for_training else ()))
        return _core.Model.from_spec(spec)

    @staticmethod
    def _optimizer_settings(p):
        """The engine's optimizer settings (fastae::OptimizerConfig) from the hyperparameters."""
        return {"optimizer": p["optimizer"], "learning_rate": p["learning_rate"], "beta1": p["beta_1"],
                "beta2": p["beta_2"], "epsilon": p["epsilon"], "momentum": p["momentum"], "nesterov": p["nesterov"],
                "weight_decay": p["weight_decay"], "rho": p["rho"]}

    # ---- training --------------------------------------------------------------------------

    def fit(self, X, y=None, validation_data=None, *, sample_weight=None, resume_optimizer=False):
        """Trains on X (n_samples, n_features) to reconstruct X; y is ignored (scikit-learn's
        convention for unsupervised estimators). validation_data: X_val, or (X_val,),
        (X_val, X_val) or (X_val, X_val, val_sample_weight) as Keras takes it; its loss is
        reported per epoch in history_["val_loss"].

        sample_weight: None, or one weight >= 0 per sample: each sample's loss is multiplied by
        its weight and a batch's loss is still the mean over its samples (as Keras does).

        Starts from new Glorot-uniform weights drawn from random_state, or with warm_start=True
        from the current weights with a fresh optimizer state.
        resume_optimizer=True (with warm_start=True on a fitted or loaded estimator) continues
        from the optimizer state the last fit left, Adam's moments and step count included, with
        the current hyperparameters: training goes on as if it had not stopped, except that the
        shuffles restart from random_state's stream. It raises ValueError when there is no state
        to resume (after set_weights, or a file saved with include_optimizer_state=False) or the
        state is of another optimizer. (partial_fit continues weights and state one epoch at a
        time.)

        The whole epoch loop runs in C++ with the GIL released. Ctrl-C raises KeyboardInterrupt
        within about 20 ms, after the current step; the model keeps the weights of the last
        completed step and history_ the completed epochs. If the loss or the weights become NaN
        or infinite, training stops with fastae.TrainingDivergedError (a FloatingPointError) and
        the model keeps the weights of the last finite step. Other threads may use the estimator
        meanwhile: they get the previous model (or NotFittedError) until fit returns. Returns self.
        """
        resume = check_bool("resume_optimizer", resume_optimizer)
        return self._train(X, validation_data, sample_weight, partial=False, resume=resume)

    def partial_fit(self, X, y=None, validation_data=None, *, sample_weight=None):
        """One more epoch over X, continuing from the current weights AND optimizer state (Adam's
        moments and step count), so that successive calls train exactly as one longer fit
        would, up to the shuffles. On an unfitted estimator it starts as fit does. history_ and
        n_iter_ grow by one epoch. Returns self."""
        return self._train(X, validation_data, sample_weight, partial=True, resume=True)

    def _train(self, X, validation_data, sample_weight, partial, resume):
        p = self._validated_params()
        scale = p["input_scale"]
        val_weight = None
        if validation_data is not None and isinstance(validation_data, (tuple, list)) and \
                len(validation_data) in (1, 2, 3) and not np.isscalar(validation_data[0]) and \
                ndim_or_none(validation_data[0]) == 2:
            if len(validation_data) == 3:
                val_weight = validation_data[2]
            validation_data = validation_data[0]
        if scale is not None and isinstance(X, np.ndarray) and X.dtype == np.uint8:
            # 8-bit data stays 8-bit: the engine scales each batch (range checked there).
            X = check_bytes(X, "X")
            X_val = None if validation_data is None else check_bytes(validation_data, "validation_data", X.shape[1])
        else:
            # NaN/inf and, for bce, the [0, 1] range are checked by the engine as its first epoch
            # reads the data (no temporary arrays), naming the first offender.
            X = check_array(X, "X", scale=scale, finite=False)
            X_val = None if validation_data is None else check_array(
                validation_data, "validation_data", X.shape[1], scale=scale, finite=False)
        sample_weight = check_sample_weight(sample_weight, X.shape[0])
        val_weight = None if X_val is None else check_sample_weight(val_weight, X_val.shape[0],
                                                                    "validation_data's sample weights")

        fitted = getattr(self, "_model", None) is not None
        model = self._new_model(X.shape[1], p, float_data=X.dtype != np.uint8)
        if (partial or p["warm_start"]) and fitted:
            if list(self._model.layer_sizes) != list(model.layer_sizes):
                what = "partial_fit" if partial else "warm_start=True"
                raise ValueError(f"{what} needs the fitted layer sizes {list(self._model.layer_sizes)}; the "
                                 f"current parameters and X give {list(model.layer_sizes)}")
            if partial:
                model = self._model.copy()  # weights and optimizer state continued (if any)
            else:
                model.set_params(self._model.get_params())
            if resume and not partial:
                state = self._model.optimizer_state()
                if state is None:
                    raise ValueError("resume_optimizer=True, but the model has no optimizer state to resume (its weights "
                                     "came from set_weights, or from a file saved with include_optimizer_state=False)")
                if state["config"]["optimizer"] != p["optimizer"]:
                    raise ValueError(f"resume_optimizer=True, but the saved optimizer state is "
                                     f"{state['config']['optimizer']!r}'s and optimizer={p['optimizer']!r}")
                model.set_optimizer_state(state)
        else:
            if resume and not partial:
                raise ValueError("resume_optimizer=True needs warm_start=True and a fitted (or loaded) model: it "
                                 "continues the training that model went through")
            model.init_weights(p["seed"])
        resume = resume and fitted
        epochs = 1 if partial else p["epochs"]

        history = {k: list(v) for k, v in self.history_.items()} if partial and fitted else {"loss": [], "seconds": []}
        if X_val is not None or p["validation_split"] > 0.0:
            history.setdefault("val_loss", [float("nan")] * len(history["loss"]))
        first_epoch = len(history["loss"])
        display = _progress.display(p["verbose"], first_epoch + epochs)
        callbacks = list(p["callbacks"] or ())
        best = {}

        def on_epoch(report):
            _append_history(history, report)
            if report["improved"]:
                best.update(epoch=report["epoch"], loss=report.get("val_loss", report["loss"]))
            if display is not None:
                display.epoch(report)
            logs = {k: v for k, v in report.items() if k not in ("epoch", "improved")}
            keep_going = True
            for callback in callbacks:  # an exception stops training and is raised by fit
                keep_going = callback(report["epoch"] - 1, logs) is not False and keep_going
            return keep_going
        # Threads: while this model trains, other threads keep using the previous one (none but
        # this thread can reach the new model -- partial_fit trains a copy -- so fastae::Model's
        # guard never refuses them; see model.h). The new model and its learned state become the
        # estimator's in one dict update (one step under the GIL: a reader sees the old state or
        # the new, never a mix) when training ends, however it ends: an interrupted fit (Ctrl-C)
        # or a divergence leaves the weights of the last completed (finite) step. Except when the
        # engine refused the data or its buffers: ValueError (it checks NaN/inf and ranges as the
        # first epoch reads the data, and undoes any step before a bad value) or MemoryError:
        # then the previous state stays.
        def publish():
            self.__dict__.update(_model=model, _input_scale=scale, n_features_in_=X.shape[1], history_=history,
                                 n_iter_=len(history["loss"]),
                                 loss_=history["loss"][-1] if history["loss"] else float("nan"),
                                 best_epoch_=best.get("epoch", getattr(self, "best_epoch_", None) if partial else None),
                                 best_loss_=best.get("loss", getattr(self, "best_loss_", None) if partial else None))

        # Each call shuffles differently: the shuffle stream depends on the epochs already run.
        shuffle_seed = (p["seed"] + _SHUFFLE_SEED_OFFSET + first_epoch * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
        options = {"epochs": epochs, "batch_size": p["batch_size"], "shuffle": p["shuffle"], "seed": shuffle_seed,
                   "n_threads": p["n_threads"], "resume_optimizer": resume, "initial_epoch": first_epoch,
                   **self._training_controls(p, X_val is not None)}
        if partial and history.get("lr") and math.isfinite(history["lr"][-1]) and history["lr"][-1] > 0:
            options["lr_in_force"] = history["lr"][-1]  # plateau and a callable continue from it
        lr_function = p["lr_schedule"] if callable(p["lr_schedule"]) else None
        try:
            _, self.stop_reason_ = model.fit(
                X, None, sample_weight, X_val, None, val_weight, scale=1.0 if scale is None else scale,
                optimizer=self._optimizer_settings(p), options=options, on_epoch=on_epoch,
                on_progress=display.progress if display is not None else None, lr_function=lr_function)
        except (MemoryError, ValueError):
            raise
        except BaseException:
            publish()
            raise
        finally:
            if display is not None:
                display.close()
        publish()
        return self

    @staticmethod
    def _training_controls(p, has_validation_data):
        """The engine's training controls (fastae::TrainOptions) from the hyperparameters."""
        schedule = p["lr_schedule"]
        return {"validation_split": 0.0 if has_validation_data else p["validation_split"],
                "early_stopping": p["early_stopping"], "patience": p["patience"], "min_delta": p["min_delta"],
                "restore_best_weights": p["restore_best_weights"],
                "lr_schedule": "none" if schedule is None or callable(schedule) else schedule,
                "lr_decay_rate": p["lr_decay_rate"], "lr_decay_steps": p["lr_decay_steps"], "lr_min": p["lr_min"],
                "lr_patience": p["lr_patience"], "clipnorm": p["clipnorm"] or 0.0, "max_time": p["max_time"] or 0.0}

    def fit_transform(self, X, y=None, **fit_params):
        """fit(X) then transform(X)."""
        return self.fit(X, y, **fit_params).transform(X)

    # ---- using a fitted model --------------------------------------------------------------

    def transform(self, X):
        """Codes of X: the encoder's output, shape (n_samples, code size)."""
        X = self._check_X(X)
        return self._model.encode(X, n_threads=self._inference_threads())

    encode = transform

    def inverse_transform(self, Z):
        """Decodes codes Z (n_samples, code size) into (n_samples, n_features)."""
        self._check_fitted()
        Z = check_array(Z, "Z", self._model.code_size, finite=False)
        return self._model.decode(Z, n_threads=self._inference_threads())

    decode = inverse_transform

    def predict(self, X):
        """Reconstruction of X: decode(encode(X)), in one pass."""
        X = self._check_X(X)
        return self._model.predict(X, n_threads=self._inference_threads())

    reconstruct = predict

    def reconstruction_error(self, X):
        """Per-sample loss (the model's loss, mean over features), shape (n_samples,): the
        anomaly score of each sample (higher is more unusual)."""
        self._check_fitted()
        X = self._check_X(X, unit_range=self._model.loss == "bce")
        return self._model.sample_losses(X, n_threads=self._inference_threads())

    def score_samples(self, X):
        """Minus the per-sample reconstruction loss (higher is more normal, as scikit-learn's
        outlier detectors score)."""
        return -self.reconstruction_error(X)

    def score(self, X, y=None):
        """Minus the mean reconstruction loss of X (higher is better)."""
        return -float(np.mean(self.reconstruction_error(X), dtype=np.float64))

    # ---- weights ---------------------------------------------------------------------------

    def get_weights(self):
        """[(W, b), ...] as float32 copies, encoder layers first; W is (n_in, n_out) as in Keras."""
        self._check_fitted()
        flat = self._model.get_params()
        sizes = self._model.layer_sizes
        out = []
        for layer in range(self._model.n_layers):
            n_in, n_out = sizes[layer], sizes[layer + 1]
            off = self._model.param_offset(layer)
            W = flat[off:off + n_in * n_out].reshape(n_in, n_out).copy()
            b = flat[off + n_in * n_out:off + n_in * n_out + n_out].copy()
            out.append((W, b))
        return out

    def set_weights(self, weights):
        """Loads [(W, b), ...] (as get_weights gives them). On an unfitted estimator the
        network's shape is taken from the weights, which must match hidden_layer_sizes."""
        try:
            pairs = [(np.asarray(W), np.asarray(b)) for W, b in weights]
        except (TypeError, ValueError):
            raise ValueError("weights must be a list of (W, b) pairs") from None
        if getattr(self, "_model", None) is not None:
            model = self._model.copy()
        else:
            p = self._validated_params()
            if not pairs or pairs[0][0].ndim != 2:
                raise ValueError("weights must be a non-empty list of (W, b) pairs with 2-D W")
            model = self._new_model(pairs[0][0].shape[0], p, for_training=False)
        sizes = model.layer_sizes
        if len(pairs) != model.n_layers:
            raise ValueError(f"weights has {len(pairs)} layers; the model has {model.n_layers} (layer sizes {sizes})")
        flat = np.empty(model.n_params, dtype=np.float32)
        for layer, (W, b) in enumerate(pairs):
            want_w, want_b = (sizes[layer], sizes[layer + 1]), (sizes[layer + 1],)
            if W.shape != want_w or b.shape != want_b:
                raise ValueError(f"layer {layer}: W has shape {W.shape} and b {b.shape}; expected {want_w} and {want_b}")
            if W.dtype.kind not in "biuf" or b.dtype.kind not in "biuf":
                raise ValueError(f"layer {layer}: weights must be real numbers; got {W.dtype} and {b.dtype}")
            off = model.param_offset(layer)
            flat[off:off + W.size] = W.reshape(-1)
            flat[off + W.size:off + W.size + b.size] = b
        model.set_params(flat)  # checks finiteness; the model is untouched if this raises
        self._model = model
        self.n_features_in_ = sizes[0]
        self._input_scale = self._validated_params()["input_scale"] if not hasattr(self, "_input_scale") else \
            self._input_scale
        if not hasattr(self, "history_"):
            self.history_ = {"loss": [], "seconds": []}
        return self

    # ---- model files ---------------------------------------------------------------------------

    def save(self, path, *, include_optimizer_state=True):
        """Writes the fitted estimator to ``path`` (str, bytes or os.PathLike) as a fastae model
        file (docs/model-format.md): the network, its weights, the optimizer settings and, unless
        include_optimizer_state=False, the optimizer state (about twice the weights' size) that
        ``fit(X, resume_optimizer=True)`` continues from; the hyperparameters and history_ go
        into the file's metadata as JSON. The file is written to a temporary file beside
        ``path`` and renamed over it: if the save fails, the previous file is left intact.
        C++ loads it with fastae::load_model. A random_state that is a RandomState or Generator
        is saved as None (with a warning); pickle keeps it.
        """
        self._check_fitted()
        include = check_bool("include_optimizer_state", include_optimizer_state)
        p = self._validated_params(draw_seed=False)
        _core.save_model(self._model, os.fsencode(path), self._optimizer_settings(p), include, self._metadata())

    @classmethod
    def load(cls, path):
        """Reads a model file written by ``save`` (or by C++'s fastae::save_model) and returns
        the fitted estimator. Raises fastae.ModelFileError (a ValueError) when the file is not a
        valid model file (truncated, corrupted, another version, hostile) and OSError when it
        cannot be read. Loading never executes code from the file.

        A file without the estimator's metadata (one saved from C++) gets its hyperparameters
        from the network (hidden_layer_sizes, activations, loss, which must be a mirrored
        autoencoder) and the file's optimizer settings; the others keep their defaults.
        """
        model, settings, metadata = _core.load_model(os.fsencode(path))
        return cls._from_model(model, settings, metadata)

    def _metadata(self):
        """The hyperparameters and training record as UTF-8 JSON (no NaN: null instead)."""
        params = {}
        for name in self._get_param_names():
            value = getattr(self, name)
            if name == "hidden_layer_sizes":
                value = list(check_hidden_layer_sizes(value))
            elif name == "activation" and isinstance(value, (list, tuple)):
                value = list(value)
            elif isinstance(value, np.generic):
                value = value.item()
            if name == "random_state" and not (value is None or isinstance(value, numbers.Integral)):
                warnings.warn(f"save stores random_state={value!r} as None (only None or an int fit in a model file; "
                              f"pickle keeps it)", UserWarning, stacklevel=3)
                value = None
            params[name] = value
        history = {key: [_finite_or_none(v) for v in values] for key, values in getattr(self, "history_", {}).items()}
        attributes = {"history_": history}
        if hasattr(self, "n_iter_"):
            attributes["n_iter_"] = int(self.n_iter_)
        if hasattr(self, "loss_"):
            attributes["loss_"] = _finite_or_none(self.loss_)
        doc = {"estimator": _METADATA_KIND, "params": params, "attributes": attributes}
        return json.dumps(doc, allow_nan=False, sort_keys=True).encode("utf-8")

    @classmethod
    def _from_model(cls, model, settings, metadata):
        """The estimator for a model read from a model file (see load)."""
        sizes = list(model.layer_sizes)
        doc = None
        if metadata:
            try:
                doc = json.loads(metadata.decode("utf-8"))
            except (UnicodeDecodeError, ValueError, RecursionError) as exc:
                raise ModelFileError(f"model file: its metadata is not UTF-8 JSON ({exc})") from None
            if not (isinstance(doc, dict) and doc.get("estimator") == _METADATA_KIND):
                doc = None  # metadata of some other program: derive the hyperparameters
        est = cls()
        if doc is not None:
            params, attributes = doc.get("params"), doc.get("attributes", {})
            if not isinstance(params, dict) or not isinstance(attributes, dict):
                raise ModelFileError("model file: its metadata's 'params' and 'attributes' must be JSON objects")
            valid = set(cls._get_param_names())
            unknown = sorted(set(params) - valid)
            if unknown:
                warnings.warn(f"model file: ignoring unknown hyperparameters {unknown} (saved by a newer fastae?)",
                              UserWarning, stacklevel=3)
            for name in valid & set(params):
                value = params[name]
                setattr(est, name, tuple(value) if name == "hidden_layer_sizes" and isinstance(value, list) else value)
        else:
            attributes = {}
            est.set_params(**cls._params_of_network(model.spec(), sizes))
            est.set_params(optimizer=settings["optimizer"], learning_rate=settings["learning_rate"],
                           beta_1=settings["beta1"], beta_2=settings["beta2"], epsilon=settings["epsilon"],
                           momentum=settings["momentum"], nesterov=settings["nesterov"],
                           weight_decay=settings["weight_decay"], rho=settings["rho"])
        # The hyperparameters must describe the network the file holds.
        try:
            check_hidden_layer_sizes(est.hidden_layer_sizes)
        except ValueError as exc:
            raise ModelFileError(f"model file: bad hidden_layer_sizes in its metadata: {exc}") from None
        try:
            p = est._validated_params(draw_seed=False)
        except ValueError as exc:
            raise ModelFileError(f"model file: bad hyperparameters in its metadata: {exc}") from None
        described, held = cls._network_spec(sizes[0], p), model.spec()
        if described != held:
            raise ModelFileError(f"model file: its metadata describes the network {described} but the file holds {held}")
        try:
            history = attributes.get("history_", {"loss": [], "seconds": []})
            est.history_ = {str(key): [float("nan") if v is None else float(v) for v in values]
                            for key, values in history.items()}
            if "n_iter_" in attributes:
                est.n_iter_ = int(attributes["n_iter_"])
            if "loss_" in attributes:
                est.loss_ = float("nan") if attributes["loss_"] is None else float(attributes["loss_"])
        except (AttributeError, TypeError, ValueError) as exc:
            raise ModelFileError(f"model file: bad training record in its metadata: {exc}") from None
        est._model = model
        est.n_features_in_ = sizes[0]
        return est

    @staticmethod
    def _params_of_network(spec, sizes):
        """The hyperparameters that describe a network read from a file without the estimator's
        metadata (one saved from C++); ModelFileError when no Autoencoder describes it."""
        layers = spec["layers"]
        n_layers = len(layers)
        hidden = tuple(sizes[1:n_layers // 2 + 1])
        acts = [layer["activation"] for layer in layers[:n_layers // 2]]
        if n_layers % 2 or sizes != [sizes[0], *hidden, *reversed(hidden[:-1]), sizes[0]] or \
                spec["code_layer"] not in (-1, len(hidden) - 1):
            raise ModelFileError(f"model file: its network (layer sizes {sizes}) is not a mirrored autoencoder, "
                                 "so fastae.Autoencoder cannot hold it (load it in C++ with fastae::load_model)")
        params = {"hidden_layer_sizes": hidden, "activation": acts[0] if len(set(acts)) == 1 else acts,
                  "output_activation": layers[-1]["activation"], "loss": spec["loss"],
                  "huber_delta": spec["huber_delta"], "kernel_initializer": layers[0]["initializer"]}
        slopes = [layer["alpha"] for layer in layers if layer["activation"] == "leaky_relu"]
        if slopes:
            params["leaky_relu_slope"] = slopes[0]
        return params

    # ---- pickling (copy, deepcopy, pickle, joblib) -----------------------------------------

    # The model travels as model-file bytes (weights and optimizer state, checked on the way
    # back); everything else in __dict__, hyperparameters included, is pickled as usual.

    def __getstate__(self):
        state = self.__dict__.copy()
        model = state.pop("_model", None)
        if model is not None:
            state["_model_file"] = _core.model_to_bytes(model, None, True, b"")
        return state

    def __setstate__(self, state):
        state = dict(state)
        data = state.pop("_model_file", None)
        self.__dict__.update(state)
        if data is not None:
            self._model = _core.model_from_bytes(bytes(data))[0]


def _append_history(history, report):
    """One epoch's report into history_, every list kept one value per epoch (NaN where an epoch
    has no value, as an epoch without validation data among epochs with it)."""
    n_before = len(history["loss"])
    for key, value in report.items():
        if key in ("epoch", "improved"):
            continue
        history.setdefault(key, [float("nan")] * n_before).append(value)
    for values in history.values():
        if len(values) == n_before:
            values.append(float("nan"))


def load(path):
    """Reads an estimator saved with ``Autoencoder.save`` (or a model saved from C++): the same as
    ``Autoencoder.load(path)``."""
    return Autoencoder.load(path)


def _finite_or_none(value):
    value = float(value)
    return value if math.isfinite(value) else None
