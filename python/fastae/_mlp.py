"""fastae.MLPClassifier and fastae.MLPRegressor: supervised networks on the same engine.

What every estimator on the engine shares is in _base.py; the supervised models add their targets
(labels one-hot encoded, or real targets), their head (softmax + cross-entropy, sigmoid + BCE for
multi-label, a linear output with mse/mae/huber), a network that is a plain stack of layers, and
encoder transfer: a fitted Autoencoder's encoder layers, copied, as the first layers (frozen or
fine-tuned).
"""

from __future__ import annotations

import warnings
from typing import Any, Optional

import numpy as np
from numpy.typing import ArrayLike

from . import _core
from ._arrays import check_sample_weight
from ._base import _LAYER_OPTION_CHECKS, _caller_stacklevel, _layer_spec, _NetworkEstimator
from ._compat import ClassifierMixin, DataConversionWarning, RegressorMixin, tags_with
from ._params import Boolean, Check, Options, Real, check_bool, check_hidden_layer_sizes

_HIDDEN_LAYER_SIZES = Check(lambda v: check_hidden_layer_sizes(v, allow_empty=True))


def _check_encoder(value):
    """None, a fitted fastae.Autoencoder, or a scikit-learn FrozenEstimator wrapping one (which
    survives clone, as GridSearchCV clones its estimator's parameters). Returns the Autoencoder."""
    if value is None:
        return None
    from ._autoencoder import Autoencoder

    inner = getattr(value, "estimator", value) if type(value).__name__ == "FrozenEstimator" else value
    if not isinstance(inner, Autoencoder):
        raise ValueError(f"encoder must be a fitted fastae.Autoencoder (or a sklearn.frozen.FrozenEstimator of one); "
                         f"got {type(value).__name__}")
    if getattr(inner, "_model", None) is None:
        raise ValueError("encoder must be a fitted fastae.Autoencoder; this one is not fitted (note that "
                         "sklearn.base.clone, as GridSearchCV uses it, returns an unfitted copy: wrap a fitted "
                         "encoder in sklearn.frozen.FrozenEstimator to keep it through clone)")
    return inner


class _SupervisedEstimator(_NetworkEstimator):
    """What the classifier and the regressor share: the layer stack, encoder transfer, the
    training methods and the JSON form of their fitted attributes. Not public."""

    _param_checks = {
        **_NetworkEstimator._param_checks,
        "hidden_layer_sizes": _HIDDEN_LAYER_SIZES,
        **_LAYER_OPTION_CHECKS,
        "encoder": Check(_check_encoder),
        "freeze_encoder": Boolean(),
    }

    def __sklearn_tags__(self):
        tags = tags_with(super().__sklearn_tags__(), sparse=True, allow_nan=False)
        tags.target_tags.required = True
        return tags

    def _more_tags(self):  # scikit-learn < 1.6
        return {"allow_nan": False, "requires_y": True}

    # ---- the network -------------------------------------------------------------------------

    def _check_param_combinations(self, p):
        super()._check_param_combinations(p)
        if p["encoder"] is not None:
            scale = p["encoder"].input_scale
            if scale != p["input_scale"]:
                raise ValueError(f"the encoder was trained with input_scale={scale!r} and this "
                                 f"{type(self).__name__} has input_scale={p['input_scale']!r}: set the same (the "
                                 "encoder's layers expect inputs scaled as at its training)")

    def _resolve_head(self, p, unit_range):
        return p  # the head follows from the targets: _network_params

    def _needs_target_range(self, p):
        return False

    @staticmethod
    def _encoder_layers(encoder, p):
        """The layer specs of an encoder's layers (input to code) as this network's first layers:
        their widths and activations, this estimator's penalties and dropout, and trainable unless
        freeze_encoder."""
        spec = encoder._model.spec()
        layers = []
        for layer in spec["layers"][:spec["code_layer"] + 1]:
            copied = {"units": layer["units"], "activation": layer["activation"], "alpha": layer["alpha"],
                      "initializer": layer["initializer"]}
            if p["freeze_encoder"]:
                copied["trainable"] = False
            layers.append(copied)
        return layers

    def _network_params(self, p, attributes):
        if "n_outputs_" not in attributes:
            raise ValueError(f"this {type(self).__name__} has no output layer yet (its width comes from y): fit it "
                             "first")
        p["n_outputs"] = attributes["n_outputs_"]
        p["encoder_layers"] = attributes.get("_encoder_layers", [])
        p["loss"], p["output_activation"] = self._head(p, attributes)
        return p

    @staticmethod
    def _network_spec(n_features, p):
        """The engine's network: the encoder's copied layers (if any), the hidden layers, then the
        output layer with the head."""
        hidden, acts = p["hidden_layer_sizes"], p["activation"]

        def options(layer, hidden_layer):
            return _layer_spec(layer["units"], layer["activation"], p,
                               **{k: v for k, v in layer.items() if k not in ("units", "activation")},
                               l1=p["l1"], l2=p["l2"], dropout=p["dropout"] if hidden_layer else 0.0)

        own = [{"units": u, "activation": a} for u, a in zip(hidden, acts)]
        own.append({"units": p["n_outputs"], "activation": p["output_activation"]})
        stack = [*p["encoder_layers"], *own]
        layers = [options(layer, i < len(stack) - 1) for i, layer in enumerate(stack)]
        return {"n_inputs": n_features, "code_layer": max(len(layers) - 2, 0), "loss": p["loss"],
                "huber_delta": p.get("huber_delta", 1.0), "layers": layers}

    @staticmethod
    def _params_of_network(spec, sizes):
        raise _core.ModelFileError("model file: it has no fastae metadata naming a supervised model's targets "
                                   "(classes, outputs); load it with fastae.load or fastae::load_model")

    def _new_fit_attributes(self, p):
        """What a new fit fixes besides the targets: the encoder's layers."""
        encoder = _check_encoder(self.encoder)
        return {"_encoder_layers": self._encoder_layers(encoder, p) if encoder is not None else []}

    def _seed_weights(self, model, p):
        encoder = _check_encoder(self.encoder)
        if encoder is None:
            return
        if encoder.n_features_in_ != model.n_inputs:
            raise ValueError(f"X has {model.n_inputs} features; the encoder was trained on {encoder.n_features_in_}")
        flat = model.get_params()
        for layer, (W, b) in enumerate(encoder.get_weights()[:len(p["encoder_layers"])]):
            off = model.param_offset(layer)
            flat[off:off + W.size] = W.reshape(-1)
            flat[off + W.size:off + W.size + b.size] = b
        model.set_params(flat)

    # ---- the targets -------------------------------------------------------------------------

    @staticmethod
    def _check_target_rows(y, n_samples, name):
        if y is None:
            raise ValueError(f"this estimator requires y to be passed, but the target y is None ({name} is what it "
                             f"learns to predict from X)")
        y = np.asarray(y)
        if y.ndim not in (1, 2) or y.shape[0] != n_samples:
            raise ValueError(f"{name} must have one row per sample of X ({n_samples}); got shape {y.shape}")
        if y.ndim == 2 and y.shape[1] == 0:
            raise ValueError(f"{name} has no columns: shape {y.shape}")
        return y

    @staticmethod
    def _column_vector(y, name):
        """A 2-D y of one column, raveled with scikit-learn's DataConversionWarning."""
        if y.ndim == 2 and y.shape[1] == 1:
            warnings.warn(f"A column-vector {name} was passed when a 1d array was expected. Please change the shape "
                          f"of y to (n_samples, ), for example using ravel().", DataConversionWarning,
                          stacklevel=_caller_stacklevel())
            return y.ravel()
        return y

    def _target_attributes(self):
        return {name: getattr(self, name) for name in self._TARGET_ATTRIBUTES if hasattr(self, name)}

    # ---- training ----------------------------------------------------------------------------

    def fit(self, X: ArrayLike, y: ArrayLike, validation_data: Any = None, *,
            sample_weight: Optional[ArrayLike] = None, resume_optimizer: bool = False,
            comm: Any = None) -> _SupervisedEstimator:
        """Trains on X (n_samples, n_features) to predict y. validation_data: (X_val, y_val) or
        (X_val, y_val, sample_weight_val), as Keras takes it; its loss is reported per epoch in
        ``history_["val_loss"]`` (and early_stopping monitors it). sample_weight: one weight >= 0 per
        sample. Options, warm_start and resume_optimizer as for fastae.Autoencoder.fit. comm: an
        MPI communicator for data-parallel training on this rank's shard of (X, y), as for
        fastae.Autoencoder.fit (a classifier's classes are the union of every rank's labels).
        Returns self."""
        resume = check_bool("resume_optimizer", resume_optimizer)
        self._classes_given = self._global_classes(y, comm)
        try:
            return self._train(X, validation_data, sample_weight, partial=False, resume=resume, y=y, comm=comm)
        finally:
            del self._classes_given

    @staticmethod
    def _global_classes(y: Any, comm: Any) -> Any:
        """Under MPI, the labels every rank's y holds (so that every rank builds the same output
        layer); None otherwise."""
        return None

    # ---- model files -------------------------------------------------------------------------

    def _saved_attributes(self):
        if not hasattr(self, "n_outputs_"):
            return {}
        return {"n_outputs_": int(self.n_outputs_), "encoder_layers_": list(getattr(self, "_encoder_layers", [])),
                **self._saved_target_attributes()}

    def _restore_attributes(self, attributes):
        n_outputs = attributes.get("n_outputs_")
        if not isinstance(n_outputs, int) or isinstance(n_outputs, bool) or n_outputs < 1:
            raise ValueError(f"n_outputs_ must be a positive integer; got {n_outputs!r}")
        layers = attributes.get("encoder_layers_", [])
        if not isinstance(layers, list) or not all(isinstance(layer, dict) for layer in layers):
            raise ValueError("encoder_layers_ must be a list of layer specs")
        self.n_outputs_ = n_outputs
        self._encoder_layers = layers
        self._restore_target_attributes(attributes)


class MLPClassifier(ClassifierMixin, _SupervisedEstimator):
    """A multi-layer perceptron classifier trained on the CPU by fastae's C++ engine.

    Two or more classes: a softmax output trained with cross-entropy (fused, from the logits);
    a 2-D 0/1 ``y`` (one column per label) trains a multi-label model instead (one sigmoid output
    per label, with binary cross-entropy), as scikit-learn's MLPClassifier does.

    The parameters not listed below (optimizer, learning_rate, schedules, early stopping,
    clipnorm, callbacks, max_time, n_threads, random_state, input_scale, verbose, ...) are those
    of fastae.Autoencoder and mean the same.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default (100,)
        The widths of the hidden layers, in order; () gives a (multinomial) logistic regression,
        or with ``encoder`` a classifier on the encoder's codes.
    activation : str or list of str, default "relu"
        Every hidden layer's activation, or one name per hidden layer (the names of
        fastae.Autoencoder's ``activation``).
    encoder : None or fitted fastae.Autoencoder, default None
        Encoder transfer: the autoencoder's encoder layers (input to code), copied with their
        weights, become the first layers of this network, before ``hidden_layer_sizes``. The
        autoencoder itself is never changed. Wrap it in ``sklearn.frozen.FrozenEstimator`` to keep
        it fitted through ``clone`` (GridSearchCV, cross_val_score).
    freeze_encoder : bool, default True
        With ``encoder``: its layers get no updates (and cost no weight gradient); False fine-tunes
        them with the rest.
    l1, l2 : float, default 0.0
        Penalties on every weight matrix, ``l1 * sum|W| + l2 * sum W^2`` added to the batch loss
        (Keras' kernel regularizers; scikit-learn's ``alpha`` is ``l2 = alpha / (2 n_samples)``).
    dropout : float, default 0.0
        Inverted dropout on every hidden layer's output, training only.
    epochs : int, default 200
        As scikit-learn's ``max_iter``. Set ``early_stopping=True`` (with ``validation_split`` or
        ``validation_data``) to stop when the validation loss stops improving.
    batch_size : int, default 200
        As scikit-learn's ``batch_size="auto"`` for data of 200 samples or more.

    Attributes
    ----------
    classes_ : ndarray, the class labels (sorted); for a multi-label model, 0 .. n_labels - 1
    n_outputs_ : int, output units (classes, or labels)
    multilabel_ : bool, whether y was a 2-D label indicator matrix
    loss_function_, output_activation_ : "cross_entropy" and "softmax", or "bce" and "sigmoid"
    history_, n_iter_, loss_, best_epoch_, best_loss_, stop_reason_ : as for fastae.Autoencoder
    """

    _ESTIMATOR_NAME = "fastae.MLPClassifier"
    _TARGET_ATTRIBUTES = ("classes_", "n_outputs_", "multilabel_", "_encoder_layers")

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", optimizer="adam", learning_rate=1e-3,
                 batch_size=200, epochs=200, shuffle=True, random_state=None, n_threads=None, warm_start=False,
                 verbose=0, beta_1=0.9, beta_2=0.999, epsilon=1e-8, momentum=0.9, nesterov=True, input_scale=None,
                 kernel_initializer="glorot_uniform", leaky_relu_slope=0.01, weight_decay=0.01, rho=0.9,
                 validation_split=0.0, early_stopping=False, patience=10, min_delta=0.0, restore_best_weights=True,
                 lr_schedule=None, lr_decay_rate=0.1, lr_decay_steps=10, lr_min=0.0, lr_patience=5, clipnorm=None,
                 callbacks=None, max_time=None, l1=0.0, l2=0.0, dropout=0.0, encoder=None, freeze_encoder=True):
        self.hidden_layer_sizes = hidden_layer_sizes
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
        self.l1 = l1
        self.l2 = l2
        self.dropout = dropout
        self.encoder = encoder
        self.freeze_encoder = freeze_encoder

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

    # ---- the head and the targets ------------------------------------------------------------

    @staticmethod
    def _head(p, attributes):
        return ("bce", "sigmoid") if attributes.get("multilabel_") else ("cross_entropy", "softmax")

    def _training_targets(self, y, n_samples, name, fitted):
        y = self._check_target_rows(y, n_samples, name)
        y = self._column_vector(y, name)
        if fitted is None:
            attributes = self._labels_of(y, name, getattr(self, "_classes_given", None))
            attributes.update(self._new_fit_attributes(self._validated_params(draw_seed=False)))
        else:
            attributes = dict(fitted)
        multilabel, classes = attributes["multilabel_"], attributes["classes_"]
        if multilabel:
            if y.ndim != 2 or y.shape[1] != len(classes) or not np.isin(y, (0, 1)).all():
                raise ValueError(f"{name} must be a 0/1 label indicator matrix of {len(classes)} columns, as at fit; "
                                 f"got shape {y.shape}")
            return np.ascontiguousarray(y, dtype=np.float32), attributes
        if y.ndim != 1:
            raise ValueError(f"{name} must be 1-D labels, as at fit; got shape {y.shape}")
        index = np.searchsorted(classes, y)
        index[index == len(classes)] = 0
        unknown = classes[index] != y
        if np.any(unknown):
            raise ValueError(f"{name} contains labels not in classes_ {classes.tolist()}: "
                             f"{np.unique(y[unknown])[:10].tolist()}")
        onehot = np.zeros((n_samples, len(classes)), dtype=np.float32)
        onehot[np.arange(n_samples), index] = 1.0
        return onehot, attributes

    @staticmethod
    def _labels_of(y, name, classes=None):
        """classes_, ``n_outputs_`` and ``multilabel_`` for a new fit on y (or on the classes given to
        the first partial_fit)."""
        if y.ndim == 2:
            if y.dtype.kind not in "biuf" or not np.isin(y, (0, 1)).all():
                raise ValueError(f"a 2-D {name} must be a 0/1 label indicator matrix (multi-label); multi-output "
                                 f"multi-class targets are not supported")
            return {"classes_": np.arange(y.shape[1]), "n_outputs_": y.shape[1], "multilabel_": True}
        if y.dtype.kind == "f" and not np.isfinite(y).all():
            raise ValueError(f"Input {name} contains NaN or infinity.")
        if y.dtype.kind == "f" and np.any(y != np.round(y)):
            raise ValueError(f"Unknown label type: continuous. {name} holds real numbers that are not integers; a "
                             f"classifier needs class labels (use MLPRegressor for continuous targets)")
        try:
            found = np.unique(y)
            labels = found if classes is None else np.unique(np.asarray(classes))
        except TypeError as exc:
            raise ValueError(f"{name}'s labels must be comparable with each other (one type): {exc}") from None
        if classes is not None and not np.isin(found, labels).all():
            raise ValueError(f"{name} contains labels not in classes: {found[~np.isin(found, labels)][:10].tolist()}")
        if len(labels) < 2:
            raise ValueError(f"a classifier needs samples of at least 2 classes; {name} has only one class: "
                             f"{labels.tolist()}")
        return {"classes_": labels, "n_outputs_": len(labels), "multilabel_": False}

    @staticmethod
    def _global_classes(y: Any, comm: Any) -> Any:
        if comm is None or y is None or np.ndim(y) != 1:
            return None
        labels = np.unique(np.asarray(y))
        try:
            return np.unique(np.concatenate([np.asarray(part) for part in comm.allgather(labels)]))
        except TypeError as exc:
            raise ValueError(f"y's labels must be comparable with each other (one type on every rank): {exc}") from None

    def _saved_target_attributes(self):
        classes = self.classes_
        values = classes.tolist()
        if not all(isinstance(v, (str, int, float, bool)) for v in values):
            raise ValueError(f"save: the class labels must be strings or numbers to go in a model file; got "
                             f"{sorted({type(v).__name__ for v in values})} (pickle keeps any labels)")
        return {"classes_": {"dtype": classes.dtype.str if classes.dtype.kind != "O" else "O", "values": values},
                "multilabel_": bool(self.multilabel_)}

    def _restore_target_attributes(self, attributes):
        saved = attributes.get("classes_")
        if not isinstance(saved, dict) or not isinstance(saved.get("values"), list) or \
                saved.get("dtype") not in ("O",) and not (isinstance(saved.get("dtype"), str) and
                                                         saved["dtype"][1:2] in tuple("biufU")):
            raise ValueError("classes_ must be {'dtype': ..., 'values': [...]}")
        values = saved["values"]
        if not all(isinstance(v, (str, int, float, bool)) for v in values):
            raise ValueError("classes_ must hold strings or numbers")
        classes = np.asarray(values, dtype=object if saved["dtype"] == "O" else np.dtype(saved["dtype"]))
        if classes.ndim != 1 or len(classes) != self.n_outputs_ and not attributes.get("multilabel_"):
            raise ValueError(f"classes_ must hold n_outputs_ = {self.n_outputs_} labels")
        self.classes_ = classes
        self.multilabel_ = bool(attributes.get("multilabel_", False))

    # ---- training ----------------------------------------------------------------------------

    def partial_fit(self, X: ArrayLike, y: ArrayLike, classes: Optional[ArrayLike] = None, validation_data: Any = None,
                    *, sample_weight: Optional[ArrayLike] = None, comm: Any = None) -> MLPClassifier:
        """One more epoch over (X, y), continuing the weights and the optimizer state. The first
        call on an unfitted estimator needs ``classes`` (every label y may ever hold), as
        scikit-learn's partial_fit does; later calls may omit it (if given, it must equal
        ``classes_``). A multi-label y needs no classes. Returns self."""
        fitted = getattr(self, "_model", None) is not None
        if fitted:
            if classes is not None and not self.multilabel_ and not np.array_equal(np.unique(classes),
                                                                                   self.classes_):
                raise ValueError(f"classes={np.asarray(classes).tolist()!r} is not the same as on the first call to "
                                 f"partial_fit: {self.classes_.tolist()}")
        elif classes is None and np.ndim(y) != 2:
            raise ValueError("classes must be passed on the first call to partial_fit (every label y may hold)")
        self._classes_given = classes
        try:
            return self._train(X, validation_data, sample_weight, partial=True, resume=True, y=y, comm=comm)
        finally:
            del self._classes_given

    # ---- predicting --------------------------------------------------------------------------

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes) in the order of ``classes_`` (rows sum
        to 1); for a multi-label model each label's probability."""
        return self._infer(lambda model, X, threads: model.predict(X, n_threads=threads), X)

    def predict_log_proba(self, X: ArrayLike) -> np.ndarray:
        """The log of predict_proba."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X: ArrayLike) -> np.ndarray:
        """The most probable class of each sample (labels of ``classes_``); for a multi-label model a
        0/1 matrix (probability above 0.5)."""
        proba = self.predict_proba(X)
        if self.multilabel_:
            return (proba > 0.5).astype(np.int64)
        return self.classes_[np.argmax(proba, axis=1)]

    def score(self, X: ArrayLike, y: ArrayLike, sample_weight: Optional[ArrayLike] = None) -> float:
        """Accuracy of predict(X) against y (for multi-label, the fraction of samples whose every
        label is right), weighted by sample_weight if given."""
        pred = self.predict(X)
        y = self._column_vector(self._check_target_rows(y, pred.shape[0], "y"), "y")
        right = np.all(pred == y, axis=1) if self.multilabel_ else pred == y
        weights = check_sample_weight(sample_weight, right.shape[0])
        return float(np.average(right, weights=None if weights is None else weights.astype(np.float64)))


class MLPRegressor(RegressorMixin, _SupervisedEstimator):
    """A multi-layer perceptron regressor trained on the CPU by fastae's C++ engine: a linear
    output layer trained with ``loss`` ("mse", "mae" or "huber" with ``huber_delta``), for one or
    several targets.

    Parameters are those of fastae.MLPClassifier (hidden_layer_sizes, activation, encoder and
    freeze_encoder, l1, l2, dropout, and the training options), plus ``loss`` and
    ``huber_delta``. Targets are used as given (no scaling): standardize targets of large
    magnitude, as for scikit-learn's MLPRegressor.

    Attributes
    ----------
    n_outputs_ : int, targets per sample
    history_, n_iter_, loss_, best_epoch_, best_loss_, stop_reason_, loss_function_ : as for
        fastae.Autoencoder
    """

    _ESTIMATOR_NAME = "fastae.MLPRegressor"
    _TARGET_ATTRIBUTES = ("n_outputs_", "_y_1d", "_encoder_layers")
    _REGRESSION_LOSSES = tuple(name for name, t in _core.LOSS_TRAITS.items()
                               if t["required_output"] is None and not t["unit_targets"])

    _param_checks = {
        **_SupervisedEstimator._param_checks,
        "loss": Options(_REGRESSION_LOSSES),
        "huber_delta": Real(0.0),
    }

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", loss="mse", optimizer="adam",
                 learning_rate=1e-3, batch_size=200, epochs=200, shuffle=True, random_state=None, n_threads=None,
                 warm_start=False, verbose=0, beta_1=0.9, beta_2=0.999, epsilon=1e-8, momentum=0.9, nesterov=True,
                 input_scale=None, kernel_initializer="glorot_uniform", leaky_relu_slope=0.01, huber_delta=1.0,
                 weight_decay=0.01, rho=0.9, validation_split=0.0, early_stopping=False, patience=10, min_delta=0.0,
                 restore_best_weights=True, lr_schedule=None, lr_decay_rate=0.1, lr_decay_steps=10, lr_min=0.0,
                 lr_patience=5, clipnorm=None, callbacks=None, max_time=None, l1=0.0, l2=0.0, dropout=0.0,
                 encoder=None, freeze_encoder=True):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
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
        self.l1 = l1
        self.l2 = l2
        self.dropout = dropout
        self.encoder = encoder
        self.freeze_encoder = freeze_encoder

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    @staticmethod
    def _head(p, attributes):
        return p["loss"], "linear"

    def _training_targets(self, y, n_samples, name, fitted):
        y = self._check_target_rows(y, n_samples, name)
        if y.dtype.kind not in "biuf":
            try:
                y = y.astype(np.float64)
            except (TypeError, ValueError):
                raise ValueError(f"{name} must hold real numbers; got dtype {y.dtype}") from None
        Y = np.ascontiguousarray(y.reshape(n_samples, -1), dtype=np.float32)
        if fitted is None:
            attributes = {"n_outputs_": Y.shape[1], "_y_1d": y.ndim == 1 or y.shape[1] == 1,
                          **self._new_fit_attributes(self._validated_params(draw_seed=False))}
        else:
            attributes = dict(fitted)
            if Y.shape[1] != attributes["n_outputs_"]:
                raise ValueError(f"{name} has {Y.shape[1]} targets per sample; the model has "
                                 f"{attributes['n_outputs_']}")
        if not np.isfinite(Y).all():
            bad = np.argwhere(~np.isfinite(Y))[0]
            raise ValueError(f"Input {name} contains NaN or infinity (or values beyond float32's range): "
                             f"{y.reshape(n_samples, -1)[bad[0], bad[1]]!r} at row {bad[0]}")
        return Y, attributes

    def _saved_target_attributes(self):
        return {"y_1d": bool(self._y_1d)}

    def _restore_target_attributes(self, attributes):
        self._y_1d = bool(attributes.get("y_1d", self.n_outputs_ == 1))

    def partial_fit(self, X: ArrayLike, y: ArrayLike, validation_data: Any = None, *,
                    sample_weight: Optional[ArrayLike] = None, comm: Any = None) -> MLPRegressor:
        """One more epoch over (X, y), continuing the weights and the optimizer state (on an
        unfitted estimator it starts as fit does). comm: as fit's. Returns self."""
        return self._train(X, validation_data, sample_weight, partial=True, resume=True, y=y, comm=comm)

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predicted targets: shape (n_samples,) for a model fitted on one target, else
        (n_samples, n_outputs); float64, as scikit-learn's regressors give them (the engine
        computes in float32)."""
        out = self._infer(lambda model, X, threads: model.predict(X, n_threads=threads), X).astype(np.float64)
        return out.ravel() if self._y_1d else out

    def score(self, X: ArrayLike, y: ArrayLike, sample_weight: Optional[ArrayLike] = None) -> float:
        """The coefficient of determination R^2 of predict(X) (averaged uniformly over the
        targets), weighted by sample_weight if given, as scikit-learn's r2_score."""
        pred = np.asarray(self.predict(X), dtype=np.float64).reshape(-1, self.n_outputs_)
        y = self._check_target_rows(y, pred.shape[0], "y")
        y = np.asarray(y, dtype=np.float64).reshape(pred.shape[0], -1)
        if y.shape != pred.shape:
            raise ValueError(f"y has {y.shape[1]} targets per sample; the model predicts {pred.shape[1]}")
        weights = check_sample_weight(sample_weight, y.shape[0])
        w = np.ones(y.shape[0]) if weights is None else weights.astype(np.float64)
        mean = np.average(y, axis=0, weights=w)
        residual = (w[:, None] * (y - pred) ** 2).sum(axis=0)
        total = (w[:, None] * (y - mean) ** 2).sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            r2 = np.where(total > 0, 1.0 - residual / np.where(total > 0, total, 1.0),
                          np.where(residual > 0, 0.0, 1.0))
        return float(np.mean(r2))
