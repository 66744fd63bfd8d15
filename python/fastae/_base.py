"""What every estimator on fastae's engine shares: the parameter contract and its checks, input
validation (arrays, data frames, SciPy sparse matrices, feature names), the training driver and
weights; model files and pickling come from the mixin ``_persistence._Persistent``. A concrete
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

import math
import re
import sys
import warnings
from contextlib import contextmanager
from typing import Any, NamedTuple, Optional

import numpy as np

from . import _core, _persistence, _progress
from . import distributed as _distributed
from ._compat import BaseEstimator, NotFittedError, tags_with

# Model files and pickling. ModelFileError, load and from_bytes are re-exported: they were
# fastae._base's before _persistence.py (fastae itself imports them from there).
from ._persistence import ModelFileError, _Persistent, from_bytes, load  # noqa: F401
from ._validation import (
    INITIALIZERS,
    MAX_INT,
    OPTIMIZERS,
    SPARSE_CHUNK_ROWS,
    Boolean,
    Check,
    Integer,
    Options,
    Real,
    check_activations,
    check_array,
    check_bytes,
    check_callbacks,
    check_hidden_layer_sizes,
    check_lr_schedule,
    check_network_size,
    check_sample_weight,
    check_sparse,
    dataframe_to_array,
    densify,
    densify_all,
    feature_names_of,
    in_unit_range,
    is_dataframe,
    is_sparse,
    ndim_or_none,
    resolve_head,
    resolve_n_threads,
    seed_from,
    value_text,
)

# Keeps the shuffle stream apart from the weight-initialisation stream of the same seed: fit trains
# with shuffle seed (seed + offset) mod 2^64 after init_weights(seed). Defined once, in C++
# (fastae/autoencoder.h), so that C++ programs can train the same network.
_SHUFFLE_SEED_OFFSET = _core.AUTOENCODER_SHUFFLE_SEED_OFFSET


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


@contextmanager
def _engine_errors():
    """The engine's input errors as Python states them: it prints NaN as C++ does ("nan"); here it
    is "NaN", as NumPy and scikit-learn write it."""
    try:
        yield
    except ValueError as exc:
        message = str(exc)
        fixed = re.sub(r"\(-?nan\)", "(NaN)", message)
        if fixed == message or type(exc) is not ValueError:
            raise
        raise ValueError(fixed) from None


class _NetworkEstimator(_Persistent, BaseEstimator):
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
        stays sparse (_CsrRows): the engine expands each batch's rows, never the whole matrix."""
        owner = type(self).__name__
        if as_bytes is None:
            as_bytes = scale is not None and isinstance(X, np.ndarray) and X.dtype == np.uint8
        if as_bytes:
            return check_bytes(X, name, n_features, owner)
        if is_sparse(X):
            X = check_sparse(X, name, n_features, owner)
            if sparse_rows:
                return _CsrRows(X, scale, name)
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
        with _engine_errors():
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
        if isinstance(X, _CsrRows):
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

    # ---- training ----------------------------------------------------------------------------

    @_distributed.collective
    def _train(self, X, validation_data, sample_weight, partial, resume, y=None, comm=None):
        """The training driver of fit (partial=False) and partial_fit (partial=True); y: the
        supervised models' targets (None for the autoencoder). comm: an MPI communicator for
        data-parallel training, which fastae.distributed turns into its Group."""
        p = self._validated_params()
        fitted = getattr(self, "_model", None) is not None
        continuing = partial and fitted  # partial_fit on a fitted model: same inputs, same network
        data = self._training_data(X, validation_data, sample_weight, y, p["input_scale"], continuing, comm)
        p = self._training_params(p, data, continuing, comm)
        model = self._starting_model(p, data, partial, resume, fitted)
        epochs = 1 if partial else p["epochs"]
        record = _EpochRecord(self.history_ if continuing else None, p, epochs,
                              validating=data.X_val is not None or p["validation_split"] > 0.0,
                              verbose=p["verbose"] if comm is None or comm.rank == 0 else 0)
        cut_due = False
        if continuing:
            # The engine's monitor starts afresh each call: the best epoch so far and a plateau cut
            # due come from the history, so that partial_fit tracks and cuts as one fit would.
            cut_due = record.replay_monitor(p["lr_patience"])
            if self._stopped_early(p, record.best.get("epoch"), len(record.history["loss"])):
                return self
        options = self._engine_options(p, epochs, record, partial, resume and fitted, cut_due,
                                       data.X_val is not None)
        if comm is not None:
            comm.check_model(model)  # the same network everywhere, rank 0's weights
        self._fit_model(model, data, p, options, record, continuing, comm)
        if partial and p["early_stopping"] and p["restore_best_weights"]:
            if record.best.get("epoch") == len(record.history["loss"]):  # this call's epoch is the best so far
                self._best_params = (record.best["epoch"], model.get_params())  # kept for _stopped_early
        return self

    def _training_data(self, X, validation_data, sample_weight, y, scale, continuing, comm):
        """The training call's data checked and converted as the engine takes them (_TrainingData),
        in this order: the feature names (partial_fit on a fitted model: those fit saw), X,
        validation_data's X, y, validation_data's y, sample_weight, validation_data's weights."""
        names = None
        if continuing:
            self._check_feature_names(X)
        else:
            names = feature_names_of(X)
        X_val, y_val, val_weight = self._split_validation_data(validation_data)
        n_features = self._model.n_inputs if continuing else None
        X = self._training_array(X, "X", scale, n_features, sparse_rows=True)
        if X_val is not None:  # uint8 exactly when X is
            X_val = self._training_array(X_val, "validation_data", scale, X.shape[1], as_bytes=X.dtype == np.uint8)
        Y, target_attributes = self._training_targets(y, X.shape[0], "y",
                                                      self._target_attributes() if continuing else None)
        Y_val = None
        if Y is not None and X_val is not None:
            Y_val, _ = self._training_targets(y_val, X_val.shape[0], "validation_data's y", target_attributes)
        sample_weight = check_sample_weight(sample_weight, X.shape[0])
        if sample_weight is not None and not sample_weight.any() and comm is None:  # (comm: checked globally)
            raise ValueError("sample_weight is zero for every sample: there is nothing to train on (weights must "
                             "contain at least one non-zero number)")
        val_weight = None if X_val is None else check_sample_weight(val_weight, X_val.shape[0],
                                                                    "validation_data's sample weights")
        return _TrainingData(X, Y, sample_weight, X_val, Y_val, val_weight, scale, names, target_attributes)

    def _training_params(self, p, data, continuing, comm):
        """p completed for the network to train: its head (a fitted network's own for partial_fit,
        else "auto" resolved from the training data's range) and what the targets give it
        (_network_params). With comm, the ranks agree first (Group.setup)."""
        X, scale = data.X, data.scale
        if comm is not None:  # every rank's shapes, rank 0's seed, the global data range
            comm.setup(self, p, X, data.sample_weight, self._needs_target_range(p),
                       lambda: self._targets_in_unit_range(X, scale))
        if continuing:  # the network goes on as it is, its head included
            p["loss"], p["output_activation"] = self._model.loss, self._model.output_activation
        else:
            self._resolve_head(p, (self._targets_in_unit_range(X, scale) if comm is None else comm.unit_range)
                               if self._needs_target_range(p) else None)
        return self._network_params(p, data.target_attributes)

    def _starting_model(self, p, data, partial, resume, fitted):
        """The network to train: the fitted one continued (partial_fit, or warm_start=True, on a
        fitted estimator: _continued_model), else a new one, its weights drawn from p's seed."""
        model = self._new_model(data.X.shape[1], p, float_data=data.X.dtype != np.uint8)
        if (partial or p["warm_start"]) and fitted:
            return self._continued_model(model, p, partial, resume)
        if resume and not partial:
            raise ValueError("resume_optimizer=True needs warm_start=True and a fitted (or loaded) model: it "
                             "continues the training that model went through")
        model.init_weights(p["seed"])
        self._seed_weights(model, p)
        return model

    def _continued_model(self, model, p, partial, resume):
        """The fitted network, continued, once checked against model (a new network of the current
        parameters and data): for partial_fit a copy of it (its weights and optimizer state, if
        any); for warm_start=True model with its weights (and, with resume, its optimizer state)."""
        if list(self._model.layer_sizes) != list(model.layer_sizes):
            what = "partial_fit" if partial else "warm_start=True"
            raise ValueError(f"{what} needs the fitted layer sizes {list(self._model.layer_sizes)}; the "
                             f"current parameters and X give {list(model.layer_sizes)}")
        ties = [[layer["tied_to"] for layer in m.spec()["layers"]] for m in (self._model, model)]
        if not partial and ties[0] != ties[1]:
            raise ValueError(f"warm_start=True needs the fitted network's weight ties (tied_weights="
                             f"{any(t >= 0 for t in ties[0])}): its weights do not fit a network with "
                             f"tied_weights={any(t >= 0 for t in ties[1])}")
        if partial:
            return self._model.copy()  # weights and optimizer state continued (if any)
        model.set_params(self._model.get_params())
        if resume:
            model.set_optimizer_state(self._resumed_optimizer_state(p))
        return model

    def _resumed_optimizer_state(self, p):
        """The fitted model's optimizer state, for fit(..., resume_optimizer=True) with warm_start."""
        state = self._model.optimizer_state()
        if state is None:
            raise ValueError("resume_optimizer=True, but the model has no optimizer state to resume (its "
                             "weights came from set_weights, or from a file saved with "
                             "include_optimizer_state=False)")
        if state["config"]["optimizer"] != p["optimizer"]:
            raise ValueError(f"resume_optimizer=True, but the saved optimizer state is "
                             f"{state['config']['optimizer']!r}'s and optimizer={p['optimizer']!r}")
        return state

    def _stopped_early(self, p, best_epoch, n_epochs):
        """Early stopping over partial_fit calls: once patience epochs have passed without a better
        one than best_epoch, a call trains no more (returns True); the model goes back to the best
        epoch's weights (kept by the calls, _best_params) with restore_best_weights."""
        if not (p["early_stopping"] and best_epoch is not None and n_epochs - best_epoch >= p["patience"]):
            return False
        kept = getattr(self, "_best_params", None)
        if p["restore_best_weights"] and kept is not None and kept[0] == best_epoch:
            restored = self._model.copy()
            restored.set_params(kept[1])
            self._model = restored
        self.stop_reason_ = "early_stopping"
        return True

    def _engine_options(self, p, epochs, record, partial, resume, cut_due, has_validation_data):
        """The engine's options (fastae::TrainOptions) for this call. Each call shuffles
        differently: the engine draws the shuffles from this seed and initial_epoch (the epochs
        already run); the seed alone picks validation_split's rows, so that every partial_fit call
        holds out the same ones."""
        history = record.history
        shuffle_seed = (p["seed"] + _SHUFFLE_SEED_OFFSET) & 0xFFFFFFFFFFFFFFFF
        options = {"epochs": epochs, "batch_size": p["batch_size"], "shuffle": p["shuffle"], "seed": shuffle_seed,
                   "n_threads": p["n_threads"], "resume_optimizer": resume, "initial_epoch": record.first_epoch,
                   **self._training_controls(p, has_validation_data)}
        if partial and history.get("lr") and math.isfinite(history["lr"][-1]) and history["lr"][-1] > 0:
            options["lr_in_force"] = history["lr"][-1]  # plateau and a callable continue from it
            if cut_due and p["lr_schedule"] == "plateau":
                options["lr_in_force"] = max(options["lr_in_force"] * p["lr_decay_rate"], p["lr_min"])
        return options

    # Threads: while this model trains, other threads keep using the previous one (none but this
    # thread can reach the new model -- partial_fit trains a copy -- so fastae::Model's guard never
    # refuses them; see model.h). The new model and its learned state become the estimator's in one
    # dict update (_publish: one step under the GIL, so a reader sees the old state or the new,
    # never a mix) when training ends, however it ends: an interrupted fit (Ctrl-C) or a divergence
    # leaves the weights of the last completed (finite) step. Except when the engine refused the
    # data or its buffers: ValueError (it checks NaN/inf and ranges as the first epoch reads the
    # data, and undoes any step before a bad value) or MemoryError: then the previous state stays.

    def _fit_model(self, model, data, p, options, record, continuing, comm):
        """Runs the engine's epoch loop on model (calling back record) and publishes the result,
        however training ends but for the engine's refusals (see the comment above)."""
        try:
            _, reason = model.fit(
                data.X.engine_input if isinstance(data.X, _CsrRows) else data.X, data.Y, data.sample_weight,
                data.X_val, data.Y_val, data.val_weight, scale=1.0 if data.scale is None else data.scale,
                optimizer=self._optimizer_settings(p), options=options, on_epoch=record.on_epoch,
                on_progress=record.display.progress if record.display is not None else None,
                lr_function=record.lr_function if record.schedule is not None else None,
                processes=None if comm is None else comm.engine_args())
        except BaseException as exc:
            from_user = record.raised_by_user(exc)
            if isinstance(exc, (MemoryError, ValueError)) and not from_user:
                # the engine refused the data, a rate or its buffers: the previous state stays
                with _engine_errors():
                    raise
            self._publish(model, data, record, continuing,
                          "interrupted" if isinstance(exc, KeyboardInterrupt) else
                          "diverged" if isinstance(exc, _core.TrainingDivergedError) else "callback")
            raise
        finally:
            if record.display is not None:
                record.display.close()
        self._publish(model, data, record, continuing, reason)

    def _publish(self, model, data, record, continuing, reason):
        """The trained model and its learned state made the estimator's, in one dict update."""
        history, best, names = record.history, record.best, data.names
        self.__dict__.update(_model=model, _input_scale=data.scale, n_features_in_=data.X.shape[1], history_=history,
                             n_iter_=len(history["loss"]),
                             loss_=history["loss"][-1] if history["loss"] else float("nan"),
                             best_epoch_=best.get("epoch"), best_loss_=best.get("loss"), stop_reason_=reason,
                             **self._head_attributes(model), **data.target_attributes,
                             **({"feature_names_in_": names} if names is not None else {}))
        if not continuing and names is None:
            self.__dict__.pop("feature_names_in_", None)

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
        try:
            pairs = [(None if W is None else np.asarray(W), np.asarray(b)) for W, b in weights]
        except (TypeError, ValueError):
            raise ValueError("weights must be a list of (W, b) pairs") from None
        if getattr(self, "_model", None) is not None:
            model = self._model.copy()
        else:
            p = self._resolve_head(self._validated_params(draw_seed=False), None)
            p = self._network_params(p, self._target_attributes())
            if not pairs or pairs[0][0] is None or pairs[0][0].ndim != 2:
                raise ValueError("weights must be a non-empty list of (W, b) pairs with 2-D W")
            model = self._new_model(pairs[0][0].shape[0], p, for_training=False)
        sizes = model.layer_sizes
        if len(pairs) != model.n_layers:
            raise ValueError(f"weights has {len(pairs)} layers; the model has {model.n_layers} (layer sizes {sizes})")
        flat = np.empty(model.n_params, dtype=np.float32)
        ties = [layer["tied_to"] for layer in model.spec()["layers"]]
        shapes = _layer_shapes(model)
        for layer, (W, b) in enumerate(pairs):
            want_w, want_b = shapes[layer], (shapes[layer][1],)
            if W is None and ties[layer] < 0:
                raise ValueError(f"layer {layer}: W is None, but only a tied layer (tied_weights) may leave it out")
            shape = want_w if W is None else W.shape
            if shape != want_w or b.shape != want_b:
                raise ValueError(f"layer {layer}: W has shape {shape} and b {b.shape}; expected {want_w} and {want_b}")
            if (W is not None and W.dtype.kind not in "biuf") or b.dtype.kind not in "biuf":
                raise ValueError(f"layer {layer}: weights must be real numbers; got "
                                 f"{W.dtype if W is not None else None} and {b.dtype}")
            flat[model.bias_offset(layer):model.bias_offset(layer) + b.size] = b
            if ties[layer] < 0 and W is not None:  # (an untied layer's W is never None: checked above)
                off = model.param_offset(layer)
                flat[off:off + W.size] = W.reshape(-1)
        for layer, (W, _) in enumerate(pairs):  # a tied layer's W, when given, must be its mirror's W^T
            mirror = ties[layer]
            if mirror >= 0 and W is not None and not np.array_equal(
                    W.astype(np.float32), pairs[mirror][0].astype(np.float32).T):
                raise ValueError(f"layer {layer}: tied_weights: its W must be layer {mirror}'s W transposed (the "
                                 f"two share one matrix), or None")
        model.set_params(flat)  # checks finiteness; the model is untouched if this raises
        self._model = model
        self.n_features_in_ = sizes[0]
        self.__dict__.update(self._head_attributes(model))
        if not hasattr(self, "_input_scale"):
            self._input_scale = self._validated_params(draw_seed=False)["input_scale"]
        if not hasattr(self, "history_"):
            self.history_: dict[str, list[float]] = {"loss": [], "seconds": []}
        return self


# The name of the estimators' type in the annotations of _persistence's load and from_bytes, for
# typing.get_type_hints at run time (_persistence imports it only for mypy: _base imports it).
_persistence._NetworkEstimator = _NetworkEstimator  # type: ignore[misc]


class _CsrRows:
    """A SciPy sparse training input as the engine reads it (TrainingData's CSR arrays): int64
    row offsets, int32 column indices and float32 values (times input_scale), each batch's rows
    expanded into the engine's batch buffer, so the dense matrix is never built. Has the
    ``shape`` and ``dtype`` (float32) the training driver reads."""

    dtype = np.dtype(np.float32)

    def __init__(self, X: Any, scale: Optional[float], name: str) -> None:
        self.shape = X.shape
        values = np.asarray(X.data)
        with np.errstate(over="ignore", invalid="ignore"):
            scaled = values.astype(np.float32) * np.float32(1.0 if scale is None else scale)
        beyond = ~np.isfinite(scaled) & np.isfinite(values)
        if beyond.any():  # finite in X, not in float32: named as passed, by row and column
            k = int(np.argmax(beyond))
            row = int(np.searchsorted(X.indptr, k, side="right")) - 1
            raise ValueError(f"{name} contains {value_text(values[k])} at row {row}, column {int(X.indices[k])}, "
                             f"beyond float32's range"
                             + (" once multiplied by input_scale" if scale is not None else ""))
        self.values = np.ascontiguousarray(scaled)
        self.indptr = np.ascontiguousarray(X.indptr, dtype=np.int64)
        self.indices = np.ascontiguousarray(X.indices, dtype=np.int32)
        self.engine_input = ("csr", self.indptr, self.indices, self.values, int(X.shape[0]))


class _TrainingData(NamedTuple):
    """A training call's data as the engine takes them (_NetworkEstimator._training_data)."""

    X: Any  # float32 or uint8, C-contiguous, or _CsrRows
    Y: Any  # the targets (float32), or None where they are the inputs
    sample_weight: Any
    X_val: Any  # validation_data's, or None
    Y_val: Any
    val_weight: Any
    scale: Optional[float]  # input_scale
    names: Any  # X's feature names, or None (always None for partial_fit on a fitted model)
    target_attributes: dict[str, Any]  # the fitted attributes y sets (_training_targets)


class _EpochRecord:
    """What a training call records as the engine reports its epochs (on_epoch): ``history_``
    (partial_fit on a fitted model continues the estimator's), the best epoch as the engine's
    monitor sees it, the display of verbose, and the exceptions of the user's callables (the
    callbacks, a callable lr_schedule), which fit raises after publishing what was done."""

    def __init__(self, history, p, epochs, validating, verbose):
        self.history = {k: list(v) for k, v in history.items()} if history is not None else {"loss": [], "seconds": []}
        if validating:
            self.history.setdefault("val_loss", [float("nan")] * len(self.history["loss"]))
        self.first_epoch = len(self.history["loss"])
        self.display = _progress.display(verbose, self.first_epoch + epochs)
        self.callbacks = list(p["callbacks"] or ())
        self.schedule = p["lr_schedule"] if callable(p["lr_schedule"]) else None
        self.min_delta = p["min_delta"]
        self.raised = []  # exceptions of the user's callables: fit publishes what was done, then raises them
        self.best = {}

    def replay_monitor(self, lr_patience):
        """The best epoch so far from the history (_monitor_replay); returns whether the plateau
        rule cuts the rate after its last epoch."""
        best_epoch, best_loss, cut_due = _monitor_replay(self.history, self.min_delta, lr_patience)
        if best_epoch is not None:
            self.best.update(epoch=best_epoch, loss=best_loss)
        return cut_due

    def on_epoch(self, report):
        """The engine's call after each epoch; returns whether training goes on (False when a
        callback returned False)."""
        _append_history(self.history, report)
        monitored = report.get("val_loss", report["loss"])
        if report["improved"] and ("loss" not in self.best or monitored < self.best["loss"] - self.min_delta):
            self.best.update(epoch=report["epoch"], loss=monitored)
        if self.display is not None:
            self.display.epoch(report)
        logs = {k: v for k, v in report.items() if k not in ("epoch", "improved")}
        keep_going = True
        try:
            for callback in self.callbacks:  # an exception stops training and is raised by fit
                keep_going = callback(report["epoch"] - 1, logs) is not False and keep_going
        except BaseException as exc:
            self.raised.append(exc)
            raise
        return keep_going

    def lr_function(self, epoch, lr):
        """The callable lr_schedule as the engine calls it."""
        try:
            return self.schedule(epoch, lr)
        except BaseException as exc:
            self.raised.append(exc)
            raise

    def raised_by_user(self, exc):
        """Whether exc came from one of the user's callables."""
        return any(exc is e for e in self.raised)


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


def _append_history(history, report):
    """One epoch's report into ``history_``, every list kept one value per epoch (NaN where an epoch
    has no value, as an epoch without validation data among epochs with it)."""
    n_before = len(history["loss"])
    for key, value in report.items():
        if key in ("epoch", "improved"):
            continue
        history.setdefault(key, [float("nan")] * n_before).append(value)
    for values in history.values():
        if len(values) == n_before:
            values.append(float("nan"))


def _monitor_replay(history, min_delta, lr_patience):
    """The engine's epoch-end monitor (csrc/src/trainer.h: Monitor) replayed over a ``history_``: the
    best epoch (1-based, or None) and its monitored loss (val_loss where an epoch has one, else
    loss), and whether the plateau rule cuts the rate after the last epoch."""
    val = history.get("val_loss")
    best_epoch, best_loss, since_cut, cut = None, math.inf, 0, False
    for i, loss in enumerate(history["loss"]):
        monitored = val[i] if val is not None and not math.isnan(val[i]) else loss
        cut = False
        if math.isfinite(monitored) and monitored < best_loss - min_delta:
            best_epoch, best_loss, since_cut = i + 1, monitored, 0
        else:
            since_cut += 1
            if since_cut >= lr_patience:
                since_cut, cut = 0, True
    return best_epoch, (best_loss if best_epoch is not None else None), cut


def _layer_shapes(model):
    """Each layer's (n_in, n_out): the layer sizes', except that a variational code layer has 2k
    outputs (means, log-variances) and the next layer k inputs."""
    spec = model.spec()
    shapes, n_in = [], spec["n_inputs"]
    for i, layer in enumerate(spec["layers"]):
        shapes.append((n_in, layer["units"]))
        n_in = layer["units"] // 2 if "variational" in spec and i == spec["code_layer"] else layer["units"]
    return shapes
