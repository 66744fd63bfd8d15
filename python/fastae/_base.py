"""What every estimator on fastae's engine shares: the parameter contract and its checks, input
validation (arrays, data frames, SciPy sparse matrices, feature names) and weights; the training
driver comes from the mixin ``_training._Trainer``, model files and pickling from
``_persistence._Persistent``. A concrete
estimator (``Autoencoder``; the supervised models and the variational autoencoder as they land)
adds only what is its own:

- ``_ESTIMATOR_NAME``: the kind its model files' metadata names (``fastae.load`` returns that
  class; declared in _persistence.py);
- ``_param_checks``: its constructor parameters' checks, usually the base's table plus its own;
- ``_network_spec(n_features, p)``: the engine's network for resolved hyperparameters;
- ``_params_of_network(spec, sizes)``: the hyperparameters that describe a network read from a
  file without metadata (one saved from C++);
- its public methods (fit, transform, predict, ...), each a few lines over the helpers here.

With scikit-learn installed the base is a ``sklearn.base.BaseEstimator`` (``_compat.py``).
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

import numpy as np

from . import _core, _persistence
from ._arrays import (
    SPARSE_CHUNK_ROWS,
    check_array,
    check_bytes,
    check_sparse,
    dataframe_to_array,
    densify,
    densify_all,
    feature_names_of,
    in_unit_range,
    is_dataframe,
    is_sparse,
    ndim_or_none,
)
from ._compat import BaseEstimator, NotFittedError, tags_with
from ._engine_input import CsrRows, engine_errors
from ._params import (
    INITIALIZERS,
    MAX_INT,
    OPTIMIZERS,
    Boolean,
    Check,
    Integer,
    Options,
    Real,
    check_activations,
    check_callbacks,
    check_hidden_layer_sizes,
    check_lr_schedule,
    check_network_size,
    resolve_head,
    resolve_n_threads,
    seed_from,
)

# Model files and pickling. ModelFileError, load and from_bytes are re-exported: they were
# fastae._base's before _persistence.py (fastae itself imports them from there).
from ._persistence import ModelFileError, _Persistent, from_bytes, load  # noqa: F401
from ._training import _Trainer

# The options every layer of a network takes (penalties on its weights, dropout on its output):
# constructor parameters of each estimator that offers them.
_LAYER_OPTION_CHECKS = {
    "l1": Real(0.0, low_open=False),
    "l2": Real(0.0, low_open=False),
    "dropout": Real(0.0, 1.0, low_open=False),
}


def _layer_spec(units, activation, p, **options):
    """One layer of the engine's network spec (_core.Model.spec()'s form): every field, with the
    options given and the defaults of a plain layer (no penalty, dropout, noise or tie;
    trainable); the activation's parameter and the initializer from the hyperparameters p."""
    alpha = (p["leaky_relu_slope"] if activation == "leaky_relu"
             else _core.ACTIVATION_TRAITS[activation]["default_alpha"])
    layer = {"units": units, "activation": activation, "alpha": alpha, "initializer": p["kernel_initializer"],
             "l1": 0.0, "l2": 0.0, "dropout": 0.0, "noise": "none", "noise_level": 0.0, "activity_l1": 0.0,
             "sparsity_target": 0.0, "sparsity_weight": 0.0, "contractive": 0.0, "tied_to": -1, "trainable": True}
    layer.update(options)
    return layer


class _NetworkEstimator(_Persistent, _Trainer, BaseEstimator):
    """The base of fastae's estimators (see the module docstring). Not public: use its subclasses."""

    # Every constructor parameter's check, run in this order by _validated_params, each given the
    # values checked before it. tests/test_robustness.py holds bad values for every parameter.
    _param_checks = {
        "hidden_layer_sizes": Check(check_hidden_layer_sizes),
        "activation": Check(lambda v, p: check_activations(v, len(p["hidden_layer_sizes"])), with_params=True),
        "optimizer": Options(OPTIMIZERS),
        "learning_rate": Real(0.0),
        "batch_size": Integer(1, MAX_INT),
        "epochs": Integer(1, MAX_INT),
        "shuffle": Boolean(),
        "random_state": Check(lambda value: value),  # checked as fit draws the seed from it (seed_from)
        "n_threads": Check(resolve_n_threads),
        "warm_start": Boolean(),
        "verbose": Integer(0),
        "beta_1": Real(0.0, 1.0, low_open=False),
        "beta_2": Real(0.0, 1.0, low_open=False),
        "epsilon": Real(0.0),
        "momentum": Real(0.0, 1.0, low_open=False),
        "nesterov": Boolean(),
        "input_scale": Real(0.0, optional=True),
        "kernel_initializer": Options(INITIALIZERS),
        "leaky_relu_slope": Real(0.0, low_open=False),
        "weight_decay": Real(0.0, low_open=False),
        "rho": Real(0.0, 1.0, low_open=False),
        "validation_split": Real(0.0, 1.0, low_open=False),
        "early_stopping": Boolean(),
        "patience": Integer(1, MAX_INT),
        "min_delta": Real(0.0, low_open=False),
        "restore_best_weights": Boolean(),
        "lr_schedule": Check(check_lr_schedule),
        "lr_decay_rate": Real(0.0, 1.0, high_open=False),
        "lr_decay_steps": Integer(1, MAX_INT),
        "lr_min": Real(0.0, low_open=False),
        "lr_patience": Integer(1, MAX_INT),
        "clipnorm": Real(0.0, optional=True),
        "callbacks": Check(check_callbacks),
        "max_time": Real(0.0, optional=True),
    }

    # ---- scikit-learn's estimator contract -------------------------------------------------

    def set_params(self, **params: Any) -> _NetworkEstimator:
        """Sets constructor parameters; unknown names raise ValueError. Returns self."""
        valid = self._get_param_names()
        for name in params:
            if name.partition("__")[0] not in valid:
                raise ValueError(f"invalid parameter {name!r} for {type(self).__name__}; valid: {', '.join(valid)}")
        return super().set_params(**params)

    def __sklearn_is_fitted__(self):
        return getattr(self, "_model", None) is not None

    def __sklearn_tags__(self):
        # SciPy sparse X is accepted (densified in chunks); NaN is refused.
        return tags_with(super().__sklearn_tags__(), sparse=True, allow_nan=False)

    def _more_tags(self):  # scikit-learn < 1.6
        return {"allow_nan": False, "requires_y": False}

    # ---- hyperparameters -------------------------------------------------------------------

    def _validated_params(self, draw_seed=True):
        """Every hyperparameter checked, by the class's _param_checks table; returns the
        normalised values fit needs (n_threads resolved, and with draw_seed "seed": drawing one
        from a RandomState changes it, so save and load do not)."""
        p = {}
        for name, check in self._param_checks.items():
            p[name] = check(name, getattr(self, name), p)
        self._check_param_combinations(p)
        if draw_seed:
            p["seed"] = seed_from(self.random_state)
        return p

    def _check_param_combinations(self, p):
        """Rules between parameters (a subclass adds its own and calls this)."""
        if p["optimizer"] == "sgd" and p["nesterov"] and p["momentum"] == 0.0:
            raise ValueError("nesterov=True needs momentum > 0; got momentum=0.0")

    def _resolve_head(self, p, unit_range):
        """p with "auto" loss and output_activation resolved (resolve_head); unit_range: whether
        the training targets lie in [0, 1], or None without data."""
        p["loss"], p["output_activation"] = resolve_head(p["loss"], p["output_activation"], unit_range)
        return p

    def _needs_target_range(self, p):
        """Whether resolving "auto" depends on the range of the training targets."""
        return p["loss"] == "auto" or (p["output_activation"] == "auto" and
                                       _core.LOSS_TRAITS[p["loss"]]["required_output"] is None)

    @staticmethod
    def _optimizer_settings(p):
        """The engine's optimizer settings (fastae::OptimizerConfig) from the hyperparameters."""
        return {"optimizer": p["optimizer"], "learning_rate": p["learning_rate"], "beta1": p["beta_1"],
                "beta2": p["beta_2"], "epsilon": p["epsilon"], "momentum": p["momentum"], "nesterov": p["nesterov"],
                "weight_decay": p["weight_decay"], "rho": p["rho"]}

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

    def _new_model(self, n_features, p, for_training=True, float_data=True):
        spec = self._network_spec(n_features, p)
        check_network_size(spec, *((p["n_threads"], p["optimizer"], float_data) if for_training else ()))
        return _core.Model.from_spec(spec)

    # ---- inputs ------------------------------------------------------------------------------

    def _check_fitted(self):
        model = getattr(self, "_model", None)
        if model is None:
            raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet: call fit (or set_weights) "
                                 "before using it.")
        return model

    def _fitted_scale(self):
        """input_scale as it was at fit (inference must scale as training did)."""
        return getattr(self, "_input_scale", None)

    def _inference_threads(self):
        """Threads for inference: n_threads, resolved as for training. Inputs are cut into chunks
        of 256 samples shared by the threads; each output row is the same whatever the count."""
        return resolve_n_threads(self.n_threads)

    def _check_feature_names(self, X):
        """scikit-learn's rule for the column names of a data frame given after fit: the names
        and their order must be those seen by fit (ValueError); names where fit saw none, or none
        where it saw some, give a warning."""
        fitted = getattr(self, "feature_names_in_", None)
        names = feature_names_of(X)
        if fitted is None and names is None:
            return
        name = type(self).__name__
        if fitted is None:
            warnings.warn(f"X has feature names, but {name} was fitted without feature names", UserWarning,
                          stacklevel=_caller_stacklevel())
            return
        if names is None:
            warnings.warn(f"X does not have valid feature names, but {name} was fitted with feature names",
                          UserWarning, stacklevel=_caller_stacklevel())
            return
        if len(fitted) == len(names) and np.all(fitted == names):
            return
        message = "The feature names should match those that were passed during fit.\n"
        unexpected, missing = sorted(set(names) - set(fitted)), sorted(set(fitted) - set(names))

        def listed(items):
            return "".join(f"- {item}\n" for item in items[:5]) + ("- ...\n" if len(items) > 5 else "")

        if unexpected:
            message += "Feature names unseen at fit time:\n" + listed(unexpected)
        if missing:
            message += "Feature names seen at fit time, yet now missing:\n" + listed(missing)
        if not unexpected and not missing:
            message += "Feature names must be in the same order as they were in fit.\n"
        raise ValueError(message)

    def _training_array(self, X, name, scale, n_features=None, as_bytes=None, sparse_rows=False):
        """A training input (array-like, data frame or SciPy sparse) as the engine takes it:
        float32 C-contiguous (used in place when it is one), scaled by input_scale; or, when
        input_scale is set and X is a uint8 array (as_bytes None) or as_bytes is True, a
        C-contiguous uint8 array used in place (the engine scales each batch). NaN/inf and, for
        bce, the [0, 1] range are checked by the engine as its first epoch reads the data (no
        temporary arrays), naming the first offender by its row. With sparse_rows, a SciPy sparse X
        stays sparse (CsrRows): the engine expands each batch's rows, never the whole matrix."""
        owner = type(self).__name__
        if as_bytes is None:
            as_bytes = scale is not None and isinstance(X, np.ndarray) and X.dtype == np.uint8
        if as_bytes:
            return check_bytes(X, name, n_features, owner)
        if is_sparse(X):
            X = check_sparse(X, name, n_features, owner)
            if sparse_rows:
                return CsrRows(X, scale, name)
            X = densify_all(X, name)
            return X * np.float32(scale) if scale is not None else X
        if is_dataframe(X):
            X = dataframe_to_array(X, name)
        return check_array(X, name, n_features, scale=scale, finite=False, owner=owner)

    def _infer(self, run, X, unit_range=False):
        """run(model, X32) over an inference input after the checks (fitted, feature names, width,
        dtype; unit_range: values in [0, 1], for bce's per-sample losses). A SciPy sparse X is
        densified and run a few thousand rows at a time (each chunk checked here, its rows named as
        in X), so the dense copy never exceeds one chunk."""
        model = self._check_fitted()
        self._check_feature_names(X)
        owner, scale = type(self).__name__, self._fitted_scale()
        n_threads = self._inference_threads()
        if is_sparse(X):
            X = check_sparse(X, "X", model.n_inputs, owner)
            parts = [run(model, check_array(densify(X, start, start + SPARSE_CHUNK_ROWS), "X", unit_range=unit_range,
                                            scale=scale, first_row=start), n_threads)
                     for start in range(0, X.shape[0], SPARSE_CHUNK_ROWS)]
            return np.concatenate(parts)
        if is_dataframe(X):
            X = dataframe_to_array(X, "X")
        # NaN/inf are checked by the engine as it reads (it names the value and its row).
        X = check_array(X, "X", model.n_inputs, unit_range=unit_range, scale=scale, finite=False, owner=owner)
        with engine_errors():
            return run(model, X, n_threads)

    @staticmethod
    def _split_validation_data(validation_data):
        """validation_data as Keras takes it: X_val, or (X_val,), (X_val, y_val) or
        (X_val, y_val, sample_weight_val). Returns (X_val, y_val, weights)."""
        if validation_data is not None and isinstance(validation_data, (tuple, list)) and \
                len(validation_data) in (1, 2, 3) and not np.isscalar(validation_data[0]) and \
                ndim_or_none(validation_data[0]) == 2:
            rest = list(validation_data[1:]) + [None] * (3 - len(validation_data))
            return validation_data[0], rest[0], rest[1]
        return validation_data, None, None

    @staticmethod
    def _targets_in_unit_range(X, scale):
        """Whether the training data (the engine's input: scaled floats, or uint8 scaled by the
        engine) lie in [0, 1]."""
        if isinstance(X, CsrRows):
            return in_unit_range(X.values)  # and the implicit zeros
        if X.dtype == np.uint8:
            return in_unit_range(np.array([X.min(), X.max()], dtype=np.float32) * np.float32(scale))
        return in_unit_range(X)

    # ---- what a supervised estimator adds (the autoencoder's targets are its inputs) ----------

    def _training_targets(self, y, n_samples, name, fitted):
        """The engine's targets for y: (a float32 C-contiguous (n_samples, n_outputs) array, or
        None when the targets are the inputs; the fitted attributes y sets, such as ``classes_``).
        fitted: None when y defines those attributes (a new fit), else the attributes y must fit
        (partial_fit on a fitted estimator, validation targets)."""
        return None, {}

    def _target_attributes(self):
        """The fitted attributes _training_targets set, as the estimator holds them now."""
        return {}

    def _network_params(self, p, attributes):
        """p completed with what the network takes from the training targets (the supervised
        models' head and output width, an encoder's layers), given the fitted attributes that
        _training_targets set (or a model file restored)."""
        return p

    def _seed_weights(self, model, p):
        """Called after a new network's weights are drawn: a subclass may overwrite some (an
        encoder's copied layers)."""

    def _saved_attributes(self):
        """Fitted attributes of the subclass for a model file's metadata (JSON values)."""
        return {}

    def _restore_attributes(self, attributes):
        """The subclass's fitted attributes from a model file's metadata (ValueError, TypeError
        when they are malformed)."""

    @staticmethod
    def _head_attributes(model):
        """The fitted attributes that record what "auto" resolved to: the network's loss and
        output activation."""
        return {"loss_function_": model.loss, "output_activation_": model.output_activation}

    # ---- weights ---------------------------------------------------------------------------

    def get_weights(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """[(W, b), ...] as float32 copies, first layer first; W is (n_in, n_out) as in Keras.
        A tied layer (tied_weights) owns no W: its W is given as a copy of its mirror layer's W
        transposed, the matrix it uses."""
        model = self._check_fitted()
        flat = model.get_params()
        ties = [layer["tied_to"] for layer in model.spec()["layers"]]
        out = []
        for layer, (n_in, n_out) in enumerate(_layer_shapes(model)):
            off, b_off = model.param_offset(layer), model.bias_offset(layer)
            if ties[layer] >= 0:  # the mirror's (n_out, n_in) W, transposed
                W = flat[off:off + n_in * n_out].reshape(n_out, n_in).T.copy()
            else:
                W = flat[off:off + n_in * n_out].reshape(n_in, n_out).copy()
            out.append((W, flat[b_off:b_off + n_out].copy()))
        return out

    def set_weights(self, weights: Any) -> _NetworkEstimator:
        """Loads [(W, b), ...] (as get_weights gives them). On an unfitted estimator the
        network's shape is taken from the weights, which must match hidden_layer_sizes, and
        "auto" loss and output_activation take the choice for data in [0, 1] (bce on a sigmoid):
        set them explicitly for other data. A tied layer's W (tied_weights) may be None; given,
        it must be exactly its mirror layer's W transposed (as get_weights gives it), else
        ValueError: the two layers share one matrix."""
        pairs = _weight_pairs(weights)
        model = self._model.copy() if getattr(self, "_model", None) is not None else self._model_for_weights(pairs)
        model.set_params(_flat_weights(model, pairs))  # checks finiteness; the model is untouched if this raises
        self._model = model
        self.n_features_in_ = model.layer_sizes[0]
        self.__dict__.update(self._head_attributes(model))
        if not hasattr(self, "_input_scale"):
            self._input_scale = self._validated_params(draw_seed=False)["input_scale"]
        if not hasattr(self, "history_"):
            self.history_: dict[str, list[float]] = {"loss": [], "seconds": []}
        return self

    def _model_for_weights(self, pairs):
        """set_weights' network on an unfitted estimator: the hyperparameters' ("auto" as for data
        in [0, 1]), on as many inputs as the first W has rows."""
        p = self._resolve_head(self._validated_params(draw_seed=False), None)
        p = self._network_params(p, self._target_attributes())
        if not pairs or pairs[0][0] is None or pairs[0][0].ndim != 2:
            raise ValueError("weights must be a non-empty list of (W, b) pairs with 2-D W")
        return self._new_model(pairs[0][0].shape[0], p, for_training=False)


# The name of the estimators' type in the annotations of _persistence's load and from_bytes, for
# typing.get_type_hints at run time (_persistence imports it only for mypy: _base imports it).
_persistence._NetworkEstimator = _NetworkEstimator  # type: ignore[misc]


def _caller_stacklevel():
    """The stacklevel of a warning that points at the first frame outside fastae (and outside
    scikit-learn's set_output wrappers): the line of the caller's code that passed the input."""
    frame, level = sys._getframe(1), 1
    inside = ("fastae.", "sklearn.utils._set_output")
    while frame is not None and frame.f_globals.get("__name__", "").startswith(inside):
        frame, level = frame.f_back, level + 1
    return level


def _feature_names_out(estimator, prefix, n_out, input_features):
    """get_feature_names_out of an estimator whose outputs are its own (codes): prefix0, prefix1,
    ...; input_features, if given, is checked against ``feature_names_in_`` and ``n_features_in_`` (as
    scikit-learn checks it)."""
    estimator._check_fitted()
    if input_features is not None:
        input_features = np.asarray(input_features, dtype=object)
        fitted = getattr(estimator, "feature_names_in_", None)
        if fitted is not None and not np.array_equal(fitted, input_features):
            raise ValueError("input_features is not equal to feature_names_in_")
        if len(input_features) != estimator.n_features_in_:
            raise ValueError(f"input_features should have length equal to number of features "
                             f"({estimator.n_features_in_}), got {len(input_features)}")
    return np.asarray([f"{prefix}{i}" for i in range(n_out)], dtype=object)


def _layer_shapes(model):
    """Each layer's (n_in, n_out): the layer sizes', except that a variational code layer has 2k
    outputs (means, log-variances) and the next layer k inputs."""
    spec = model.spec()
    shapes, n_in = [], spec["n_inputs"]
    for i, layer in enumerate(spec["layers"]):
        shapes.append((n_in, layer["units"]))
        n_in = layer["units"] // 2 if "variational" in spec and i == spec["code_layer"] else layer["units"]
    return shapes


def _weight_pairs(weights):
    """set_weights' argument as a list of (W, b) NumPy arrays (W may be None)."""
    try:
        return [(None if W is None else np.asarray(W), np.asarray(b)) for W, b in weights]
    except (TypeError, ValueError):
        raise ValueError("weights must be a list of (W, b) pairs") from None


def _flat_weights(model, pairs):
    """The (W, b) pairs in model's flat parameter layout, once each is checked against its layer
    (_check_weight_pair) and each tied layer's W given against its mirror's (_check_tied_weights)."""
    if len(pairs) != model.n_layers:
        raise ValueError(f"weights has {len(pairs)} layers; the model has {model.n_layers} (layer sizes "
                         f"{model.layer_sizes})")
    flat = np.empty(model.n_params, dtype=np.float32)
    ties = [layer["tied_to"] for layer in model.spec()["layers"]]
    shapes = _layer_shapes(model)
    for layer, (W, b) in enumerate(pairs):
        _check_weight_pair(layer, W, b, shapes[layer], tied=ties[layer] >= 0)
        flat[model.bias_offset(layer):model.bias_offset(layer) + b.size] = b
        if ties[layer] < 0 and W is not None:  # (an untied layer's W is never None: checked above)
            off = model.param_offset(layer)
            flat[off:off + W.size] = W.reshape(-1)
    _check_tied_weights(pairs, ties)
    return flat


def _check_weight_pair(layer, W, b, want_w, tied):
    """Layer `layer`'s (W, b): W given unless the layer is tied, the shapes (want_w: W's, (n_in,
    n_out)) and real dtypes."""
    want_b = (want_w[1],)
    if W is None and not tied:
        raise ValueError(f"layer {layer}: W is None, but only a tied layer (tied_weights) may leave it out")
    shape = want_w if W is None else W.shape
    if shape != want_w or b.shape != want_b:
        raise ValueError(f"layer {layer}: W has shape {shape} and b {b.shape}; expected {want_w} and {want_b}")
    if (W is not None and W.dtype.kind not in "biuf") or b.dtype.kind not in "biuf":
        raise ValueError(f"layer {layer}: weights must be real numbers; got "
                         f"{W.dtype if W is not None else None} and {b.dtype}")


def _check_tied_weights(pairs, ties):
    """A tied layer's W, when given, must be its mirror's W transposed (ties: each layer's mirror,
    or -1)."""
    for layer, (W, _) in enumerate(pairs):
        mirror = ties[layer]
        if mirror >= 0 and W is not None and not np.array_equal(
                W.astype(np.float32), pairs[mirror][0].astype(np.float32).T):
            raise ValueError(f"layer {layer}: tied_weights: its W must be layer {mirror}'s W transposed (the "
                             f"two share one matrix), or None")
