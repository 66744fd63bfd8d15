"""Model files and pickling of fastae's estimators: ``save``, ``to_bytes``, ``load`` and
``fastae.load`` / ``fastae.from_bytes`` over the engine's model file (docs/model-format.md), the
metadata (the hyperparameters and training record as JSON, never pickled objects) and the
estimator rebuilt from a file, and pickling (the model as model-file bytes).

``_Persistent`` is a mixin of ``_base._NetworkEstimator``, the base of every estimator: a
subclass names its metadata kind in ``_ESTIMATOR_NAME``, which registers it for ``fastae.load``.
The mixin reads the rest from the estimator (its parameter table, ``_network_spec``,
``_params_of_network``, ``_saved_attributes``/``_restore_attributes``, the checks of _base.py).
"""

from __future__ import annotations

import json
import math
import numbers
import os
import warnings
from typing import TYPE_CHECKING, Any, Optional, Union

import numpy as np

from . import _core
from ._params import check_bool

if TYPE_CHECKING:
    from ._base import _NetworkEstimator

ModelFileError = _core.ModelFileError

# Model-file metadata kind -> estimator class (filled as the classes are defined).
_REGISTRY: dict[str, type[_NetworkEstimator]] = {}
# The class for a model file without fastae's metadata (one saved from C++).
_DEFAULT_KIND = "fastae.Autoencoder"
_VARIATIONAL_KIND = "fastae.VariationalAutoencoder"  # the same, for a variational network


class _Persistent:
    """Model files and pickling of an estimator (see the module docstring): the base of
    ``_base._NetworkEstimator``, never used alone."""

    _ESTIMATOR_NAME: Optional[str] = None

    if TYPE_CHECKING:  # what the estimator that inherits this provides (_base._NetworkEstimator)
        def _check_fitted(self) -> Any: ...

        def _validated_params(self, draw_seed: bool = True) -> dict[str, Any]: ...

        @staticmethod
        def _optimizer_settings(p: dict[str, Any]) -> dict[str, Any]: ...

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("_ESTIMATOR_NAME"):
            _REGISTRY[cls._ESTIMATOR_NAME] = cls

    # ---- model files ---------------------------------------------------------------------------

    def save(self, path: Union[str, bytes, os.PathLike], *, include_optimizer_state: bool = True) -> None:
        """Writes the fitted estimator to ``path`` (str, bytes or os.PathLike) as a fastae model
        file (docs/model-format.md): the network, its weights, the optimizer settings and, unless
        include_optimizer_state=False, the optimizer state (about twice the weights' size) that
        ``fit(X, resume_optimizer=True)`` continues from; the hyperparameters, ``history_`` and the
        other fitted attributes go into the file's metadata as JSON. The file is written to a
        temporary file beside ``path`` and renamed over it: if the save fails, the previous file
        is left intact. C++ loads it with fastae::load_model. A random_state that is a RandomState
        or Generator is saved as None (with a warning); pickle keeps it.
        """
        model = self._check_fitted()
        include = check_bool("include_optimizer_state", include_optimizer_state)
        p = self._validated_params(draw_seed=False)
        _core.save_model(model, os.fsencode(path), self._optimizer_settings(p), include, self._metadata())

    def to_bytes(self, *, include_optimizer_state: bool = False) -> bytes:
        """The model file ``save`` writes, as bytes (``fastae.from_bytes`` reads it back): how a
        fitted estimator ships to other processes (fastae.dask sends it to the workers once)."""
        model = self._check_fitted()
        include = check_bool("include_optimizer_state", include_optimizer_state)
        p = self._validated_params(draw_seed=False)
        return bytes(_core.model_to_bytes(model, self._optimizer_settings(p), include, self._metadata()))

    @classmethod
    def load(cls, path: Union[str, bytes, os.PathLike]) -> _NetworkEstimator:
        """Reads a model file written by ``save`` (or by C++'s fastae::save_model) and returns
        the fitted estimator. Raises fastae.ModelFileError (a ValueError) when the file is not a
        valid model file (truncated, corrupted, another version, hostile) or holds another kind
        of estimator, and OSError when it cannot be read. Loading never executes code from the file.

        A file without the estimator's metadata (one saved from C++) gets its hyperparameters
        from the network (hidden_layer_sizes, activations, loss) and the file's optimizer
        settings; the others keep their defaults.
        """
        model, settings, metadata = _core.load_model(os.fsencode(path))
        kind = _metadata_kind(metadata)
        if kind in _REGISTRY and _REGISTRY[kind] is not cls:
            raise ModelFileError(f"model file: it holds a {kind}, not a {cls._ESTIMATOR_NAME}; load it with "
                                 f"fastae.load")
        return cls._from_model(model, settings, metadata)

    def _metadata(self):
        """The hyperparameters and training record as UTF-8 JSON (no NaN: null instead)."""
        params = {}
        for name in self._get_param_names():
            value = getattr(self, name)
            if name == "hidden_layer_sizes":
                value = list(self._param_checks[name](name, value, {}))
            elif name == "activation" and isinstance(value, (list, tuple)):
                value = list(value)
            elif isinstance(value, np.generic):
                value = value.item()
            elif hasattr(value, "get_params"):  # an estimator (an encoder): what it gave is in the network
                value = None
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
        for name in ("loss_function_", "output_activation_"):
            if hasattr(self, name):
                attributes[name] = getattr(self, name)
        if getattr(self, "feature_names_in_", None) is not None:
            attributes["feature_names_in_"] = [str(n) for n in self.feature_names_in_]
        attributes.update(self._saved_attributes())
        doc = {"estimator": self._ESTIMATOR_NAME, "params": params, "attributes": attributes}
        return json.dumps(doc, allow_nan=False, sort_keys=True).encode("utf-8")

    @classmethod
    def _from_model(cls, model, settings, metadata):
        """The estimator for a model read from a model file (see load), in steps: the metadata read
        (_fastae_document), the hyperparameters set from it (_set_saved_params) or, without it,
        from the network and the file's optimizer settings (_set_network_params), checked against
        the network the file holds (_params_of_held_network), the training record restored
        (_restore_training_record), and the model made the estimator's."""
        sizes = list(model.layer_sizes)
        doc = cls._fastae_document(metadata)
        est = cls()
        held = model.spec()
        if doc is not None:
            attributes = est._set_saved_params(doc)
        else:
            attributes = {}
            est._set_network_params(held, sizes, settings)
        p = est._params_of_held_network(held, sizes[0], attributes)
        head = cls._head_attributes(model)
        est._restore_training_record(attributes, head, sizes[0])
        est.__dict__.update(head)
        est._model = model
        est._input_scale = p["input_scale"]  # inference scales its inputs as training did
        est.n_features_in_ = sizes[0]
        return est

    @classmethod
    def _fastae_document(cls, metadata):
        """A model file's metadata as this estimator's JSON document, or None (no metadata, or
        another program's: the hyperparameters are then derived from the network)."""
        if not metadata:
            return None
        try:
            doc = json.loads(metadata.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise ModelFileError(f"model file: its metadata is not UTF-8 JSON ({exc})") from None
        if not (isinstance(doc, dict) and doc.get("estimator") == cls._ESTIMATOR_NAME):
            return None  # metadata of some other program: derive the hyperparameters
        return doc

    def _set_saved_params(self, doc):
        """The hyperparameters the metadata holds set on this (new) estimator, with a warning for
        those it does not know; returns the metadata's fitted attributes."""
        params, attributes = doc.get("params"), doc.get("attributes", {})
        if not isinstance(params, dict) or not isinstance(attributes, dict):
            raise ModelFileError("model file: its metadata's 'params' and 'attributes' must be JSON objects")
        valid = set(self._get_param_names())
        unknown = sorted(set(params) - valid)
        if unknown:  # (stacklevel 4: load's caller, this being a step of _from_model)
            warnings.warn(f"model file: ignoring unknown hyperparameters {unknown} (saved by a newer fastae?)",
                          UserWarning, stacklevel=4)
        for name in valid & set(params):
            value = params[name]
            as_tuple = name in ("hidden_layer_sizes", "decoder_layer_sizes") and isinstance(value, list)
            setattr(self, name, tuple(value) if as_tuple else value)
        return attributes

    def _set_network_params(self, held, sizes, settings):
        """The hyperparameters of a file without fastae's metadata: the network's (held: its spec)
        and the file's optimizer settings."""
        self.set_params(**self._params_of_network(held, sizes))
        self.set_params(optimizer=settings["optimizer"], learning_rate=settings["learning_rate"],
                        beta_1=settings["beta1"], beta_2=settings["beta2"], epsilon=settings["epsilon"],
                        momentum=settings["momentum"], nesterov=settings["nesterov"],
                        weight_decay=settings["weight_decay"], rho=settings["rho"])

    def _params_of_held_network(self, held, n_inputs, attributes):
        """The validated parameters (p), once the hyperparameters and the fitted attributes they
        depend on are checked to describe the network the file holds (held: its spec; "auto" as
        it resolves for data in [0, 1] or for other data)."""
        try:
            self._param_checks["hidden_layer_sizes"]("hidden_layer_sizes", self.hidden_layer_sizes, {})
        except ValueError as exc:
            raise ModelFileError(f"model file: bad hidden_layer_sizes in its metadata: {exc}") from None
        try:
            self._restore_attributes(attributes)
        except (AttributeError, TypeError, ValueError) as exc:
            raise ModelFileError(f"model file: bad fitted attributes in its metadata: {exc}") from None
        try:
            p = self._network_params(self._validated_params(draw_seed=False), self._target_attributes())
            described = [self._network_spec(n_inputs, self._resolve_head(dict(p), unit_range))
                         for unit_range in (True, False)]
        except ValueError as exc:
            raise ModelFileError(f"model file: bad hyperparameters in its metadata: {exc}") from None
        if held not in described:
            raise ModelFileError(f"model file: its metadata describes the network {described[0]} but the file holds "
                                 f"{held}")
        return p

    def _restore_training_record(self, attributes, head, n_inputs):
        """history_, n_iter_, loss_ and feature_names_in_ from the metadata's attributes, whose
        head attributes (loss_function_, output_activation_) must be the network's (head)."""
        try:
            history = attributes.get("history_", {"loss": [], "seconds": []})
            self.history_ = {str(key): [float("nan") if v is None else float(v) for v in values]
                             for key, values in history.items()}
            if "n_iter_" in attributes:
                self.n_iter_ = int(attributes["n_iter_"])
            if "loss_" in attributes:
                self.loss_ = float("nan") if attributes["loss_"] is None else float(attributes["loss_"])
            for name, value in head.items():
                if name in attributes and attributes[name] != value:
                    raise ValueError(f"{name} is {attributes[name]!r} but the network's is {value!r}")
            names = attributes.get("feature_names_in_")
            if names is not None:
                if not (isinstance(names, list) and len(names) == n_inputs and all(isinstance(n, str) for n in names)):
                    raise ValueError(f"feature_names_in_ must be {n_inputs} strings")
                self.feature_names_in_ = np.asarray(names, dtype=object)
        except (AttributeError, TypeError, ValueError) as exc:
            raise ModelFileError(f"model file: bad training record in its metadata: {exc}") from None

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
            for name, value in self._head_attributes(self._model).items():
                self.__dict__.setdefault(name, value)  # pickles of fastae before these attributes


def _metadata_kind(metadata):
    """The estimator kind a model file's metadata names, or None (no metadata, or not fastae's;
    _from_model reports metadata that is not JSON)."""
    try:
        doc = json.loads(metadata.decode("utf-8")) if metadata else None
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return doc.get("estimator") if isinstance(doc, dict) and isinstance(doc.get("estimator"), str) else None


def load(path: Union[str, bytes, os.PathLike]) -> _NetworkEstimator:
    """Reads an estimator saved with ``save`` (or a model saved from C++, read as an Autoencoder,
    or a VariationalAutoencoder when its network is variational) and returns it as the class its
    metadata names."""
    return _estimator_of(*_core.load_model(os.fsencode(path)))


def from_bytes(data: bytes | bytearray | memoryview) -> _NetworkEstimator:
    """The estimator of a model file's bytes (``to_bytes``), as ``load`` reads a file."""
    return _estimator_of(*_core.model_from_bytes(bytes(data)))


def _estimator_of(model, settings, metadata):
    default = _VARIATIONAL_KIND if "variational" in model.spec() else _DEFAULT_KIND
    cls = _REGISTRY.get(_metadata_kind(metadata), _REGISTRY[default])
    return cls._from_model(model, settings, metadata)


def _finite_or_none(value):
    value = float(value)
    return value if math.isfinite(value) else None
