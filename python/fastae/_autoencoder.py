"""fastae.Autoencoder: a scikit-learn-style estimator over the C++ engine (fastae._core).

This layer only stores hyperparameters, validates, converts arrays once and keeps the learned
state; the training loop, the kernels and the optimizers all run in C++.
"""

from __future__ import annotations

import inspect
import sys

import numpy as np

from . import _core
from ._validation import (
    ACTIVATIONS,
    LOSSES,
    MAX_INT,
    OPTIMIZERS,
    check_array,
    check_bool,
    check_choice,
    check_hidden_layer_sizes,
    check_int,
    check_network_size,
    check_real,
    ndim_or_none,
    resolve_n_threads,
    seed_from,
)

# Keeps the shuffle stream apart from the weight-initialisation stream of the same seed.
_SHUFFLE_SEED_OFFSET = 0x5DEECE66D


class NotFittedError(ValueError, AttributeError):
    """Raised when a method that needs learned weights is called before fit (as in scikit-learn)."""


class Autoencoder:
    """A dense autoencoder trained on the CPU by fastae's C++ engine.

    The encoder has the widths in ``hidden_layer_sizes`` (the last is the code size) and the
    decoder mirrors them: ``(256, 64)`` on 784 features is 784-256-64-256-784. Every layer but
    the output uses ``activation``; the output uses ``output_activation``.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default (64,)
    activation : {"relu", "sigmoid", "tanh", "linear"}, default "relu"
    output_activation : {"sigmoid", "linear", "relu", "tanh"}, default "sigmoid"
    loss : {"bce", "mse"}, default "bce"
        Mean over all elements, as Keras reports it. "bce" is computed from the logits (stable,
        fused with the sigmoid) and needs ``output_activation="sigmoid"`` and data in [0, 1].
    optimizer : {"adam", "sgd"}, default "adam"
    learning_rate : float, default 1e-3
    batch_size : int, default 256
        The last, partial batch of an epoch is used too.
    epochs : int, default 10
    shuffle : bool, default True
        Reshuffle the samples every epoch (seeded by ``random_state``).
    random_state : None, int, numpy RandomState or Generator, default None
        The same int gives bit-identical weights after training (for the same n_threads).
    n_threads : None or int, default None
        Threads that split each batch. None means 1; -1 means every available CPU.
    warm_start : bool, default False
        If True, ``fit`` starts from the current weights (for instance from ``set_weights``)
        with a fresh optimizer state.
    verbose : int, default 0
        1 prints one line per epoch.
    beta_1, beta_2, epsilon : float
        Adam's parameters (defaults 0.9, 0.999, 1e-8, as torch.optim.Adam and Keras).
    momentum : float, default 0.9
        SGD momentum.
    nesterov : bool, default True
        SGD Nesterov momentum.

    Attributes
    ----------
    n_features_in_ : int
    history_ : dict with "loss" (and "val_loss" when validation data was given) per epoch,
        and "seconds"
    n_iter_ : int, epochs run by the last fit
    loss_ : float, training loss of the last epoch
    """

    def __init__(self, hidden_layer_sizes=(64,), activation="relu", output_activation="sigmoid", loss="bce",
                 optimizer="adam", learning_rate=1e-3, batch_size=256, epochs=10, shuffle=True, random_state=None,
                 n_threads=None, warm_start=False, verbose=0, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 momentum=0.9, nesterov=True):
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

    def _validated_params(self):
        """Every hyperparameter checked; returns the normalised values fit needs."""
        p = {
            "hidden_layer_sizes": check_hidden_layer_sizes(self.hidden_layer_sizes),
            "activation": check_choice("activation", self.activation, ACTIVATIONS),
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
        }
        if p["loss"] == "bce" and p["output_activation"] != "sigmoid":
            raise ValueError(f"loss='bce' needs output_activation='sigmoid'; got output_activation="
                             f"{p['output_activation']!r} (use loss='mse' for other outputs)")
        if p["optimizer"] == "sgd" and p["nesterov"] and p["momentum"] == 0.0:
            raise ValueError("nesterov=True needs momentum > 0; got momentum=0.0")
        p["n_threads"] = resolve_n_threads(self.n_threads)
        p["seed"] = seed_from(self.random_state)
        return p

    def _check_fitted(self):
        if getattr(self, "_model", None) is None:
            raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet: call fit (or set_weights) "
                                 "before using it.")

    def _check_X(self, X, name="X", unit_range=False):
        self._check_fitted()
        return check_array(X, name, self._model.n_inputs, unit_range=unit_range)

    def _new_model(self, n_features, p, for_training=True):
        sizes = [n_features, *p["hidden_layer_sizes"], *reversed(p["hidden_layer_sizes"][:-1]), n_features]
        check_network_size(sizes, *((p["n_threads"], p["optimizer"]) if for_training else ()))
        return _core.Model(sizes, p["activation"], p["output_activation"], p["loss"])

    # ---- training --------------------------------------------------------------------------

    def fit(self, X, y=None, validation_data=None):
        """Trains on X (n_samples, n_features) to reconstruct X; y is ignored (scikit-learn's
        convention for unsupervised estimators). validation_data: X_val, or (X_val,) or
        (X_val, X_val) as Keras takes it; its loss is reported per epoch in history_["val_loss"].

        The whole epoch loop runs in C++ with the GIL released. Ctrl-C raises KeyboardInterrupt
        within about 20 ms, after the current step; the model keeps the weights of the last
        completed step and history_ the completed epochs. Other threads may use the estimator
        meanwhile: they get the previous model (or NotFittedError) until fit returns. Returns self.
        """
        p = self._validated_params()
        unit = p["loss"] == "bce"
        X = check_array(X, "X", unit_range=unit)
        if validation_data is not None:
            if isinstance(validation_data, (tuple, list)) and len(validation_data) in (1, 2) and not np.isscalar(
                    validation_data[0]) and ndim_or_none(validation_data[0]) == 2:
                validation_data = validation_data[0]
            X_val = check_array(validation_data, "validation_data", X.shape[1], unit_range=unit)
        else:
            X_val = None

        model = self._new_model(X.shape[1], p)
        if p["warm_start"] and getattr(self, "_model", None) is not None:
            if list(self._model.layer_sizes) != list(model.layer_sizes):
                raise ValueError(f"warm_start=True needs the fitted layer sizes {list(self._model.layer_sizes)}; the "
                                 f"current parameters and X give {list(model.layer_sizes)}")
            model.set_params(self._model.get_params())
        else:
            model.init_weights(p["seed"])

        history = {"loss": [], "seconds": []}
        if X_val is not None:
            history["val_loss"] = []
        verbose = p["verbose"]
        epochs = p["epochs"]

        def on_epoch(report):
            history["loss"].append(report["loss"])
            history["seconds"].append(report["seconds"])
            if "val_loss" in report:
                history["val_loss"].append(report["val_loss"])
            if verbose:
                line = f"epoch {report['epoch']:>{len(str(epochs))}}/{epochs}  loss {report['loss']:.6f}"
                if "val_loss" in report:
                    line += f"  val_loss {report['val_loss']:.6f}"
                print(line + f"  {report['seconds']:.3f} s", file=sys.stdout, flush=True)
            return True

        # Threads: while this model trains, other threads keep using the previous one (none but
        # this thread can reach the new model, so fastae::Model's guard never refuses them; see
        # model.h). The new model and its learned state become the estimator's in one dict update
        # (one step under the GIL: a reader sees the old state or the new, never a mix) when
        # training ends, however it ends: an interrupted fit (Ctrl-C) or an error from the loop
        # leaves the weights of the last completed step. Except MemoryError: the engine could not
        # allocate its buffers (it does so before the first step), and the previous state stays.
        def publish():
            self.__dict__.update(_model=model, n_features_in_=X.shape[1], history_=history,
                                 n_iter_=len(history["loss"]),
                                 loss_=history["loss"][-1] if history["loss"] else float("nan"))

        try:
            model.fit(X, None, X_val, None, optimizer=p["optimizer"], learning_rate=p["learning_rate"],
                      beta1=p["beta_1"], beta2=p["beta_2"], epsilon=p["epsilon"], momentum=p["momentum"],
                      nesterov=p["nesterov"], epochs=epochs, batch_size=p["batch_size"], shuffle=p["shuffle"],
                      seed=(p["seed"] + _SHUFFLE_SEED_OFFSET) & 0xFFFFFFFFFFFFFFFF, n_threads=p["n_threads"],
                      on_epoch=on_epoch)
        except MemoryError:
            raise
        except BaseException:
            publish()
            raise
        publish()
        return self

    def fit_transform(self, X, y=None, **fit_params):
        """fit(X) then transform(X)."""
        return self.fit(X, y, **fit_params).transform(X)

    # ---- using a fitted model --------------------------------------------------------------

    def transform(self, X):
        """Codes of X: the encoder's output, shape (n_samples, code size)."""
        X = self._check_X(X)
        return self._model.encode(X)

    encode = transform

    def inverse_transform(self, Z):
        """Decodes codes Z (n_samples, code size) into (n_samples, n_features)."""
        self._check_fitted()
        return self._model.decode(check_array(Z, "Z", self._model.code_size))

    decode = inverse_transform

    def predict(self, X):
        """Reconstruction of X: decode(encode(X)), in one pass."""
        X = self._check_X(X)
        return self._model.predict(X)

    reconstruct = predict

    def reconstruction_error(self, X):
        """Per-sample loss (the model's loss, mean over features), shape (n_samples,): the
        anomaly score of each sample (higher is more unusual)."""
        self._check_fitted()
        X = self._check_X(X, unit_range=self._model.loss == "bce")
        return self._model.sample_losses(X)

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
        if not hasattr(self, "history_"):
            self.history_ = {"loss": [], "seconds": []}
        return self

    # ---- pickling (copy, deepcopy, pickle, joblib) -----------------------------------------

    def __getstate__(self):
        state = self.__dict__.copy()
        model = state.pop("_model", None)
        if model is not None:
            state["_model_state"] = {
                "layer_sizes": list(model.layer_sizes),
                "activation": model.activation,
                "output_activation": model.output_activation,
                "loss": model.loss,
                "params": model.get_params(),
            }
        return state

    def __setstate__(self, state):
        state = dict(state)
        model_state = state.pop("_model_state", None)
        self.__dict__.update(state)
        if model_state is not None:
            model = _core.Model(model_state["layer_sizes"], model_state["activation"],
                                model_state["output_activation"], model_state["loss"])
            model.set_params(np.ascontiguousarray(model_state["params"], dtype=np.float32))
            self._model = model
