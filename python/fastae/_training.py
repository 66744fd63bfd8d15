"""The training driver of fastae's estimators (the mixin ``_Trainer`` of ``_base._NetworkEstimator``):
``_train`` runs fit and partial_fit in steps -- the data as the engine takes them, the resolved
parameters, the model to start from (new, or the fitted one continued), early stopping across
partial_fit calls, the engine's options and callbacks, the engine call with its errors, and the
fitted attributes published -- and ``_EpochRecord`` keeps ``history_`` as the engine reports
its epochs. The checks and conversions it calls are the base's (_base.py)."""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Optional

import numpy as np

from . import _core, _progress
from . import distributed as _distributed
from ._arrays import check_sample_weight, feature_names_of
from ._engine_input import CsrRows, engine_errors

# Keeps the shuffle stream apart from the weight-initialisation stream of the same seed: fit trains
# with shuffle seed (seed + offset) mod 2^64 after init_weights(seed). Defined once, in C++
# (fastae/autoencoder.h), so that C++ programs can train the same network.
_SHUFFLE_SEED_OFFSET = _core.AUTOENCODER_SHUFFLE_SEED_OFFSET


class _Trainer:
    """fit and partial_fit's driver (see the module docstring): a base of
    ``_base._NetworkEstimator``, never used alone."""

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
                data.X.engine_input if isinstance(data.X, CsrRows) else data.X, data.Y, data.sample_weight,
                data.X_val, data.Y_val, data.val_weight, scale=1.0 if data.scale is None else data.scale,
                optimizer=self._optimizer_settings(p), options=options, on_epoch=record.on_epoch,
                on_progress=record.display.progress if record.display is not None else None,
                lr_function=record.lr_function if record.schedule is not None else None,
                processes=None if comm is None else comm.engine_args())
        except BaseException as exc:
            from_user = record.raised_by_user(exc)
            if isinstance(exc, (MemoryError, ValueError)) and not from_user:
                # the engine refused the data, a rate or its buffers: the previous state stays
                with engine_errors():
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


class _TrainingData(NamedTuple):
    """A training call's data as the engine takes them (_Trainer._training_data)."""

    X: Any  # float32 or uint8, C-contiguous, or CsrRows
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
