"""The optional scikit-learn pieces, with NumPy-only stand-ins (as LightGBM's compat module does).

With scikit-learn installed, fastae's estimators derive from ``sklearn.base.BaseEstimator`` and its
mixins, so they get scikit-learn's tags, ``set_output``, ``clone``, the HTML display and the
parameter machinery of ``Pipeline`` and ``GridSearchCV``; ``fastae.NotFittedError`` then derives
from ``sklearn.exceptions.NotFittedError``. Without it, the stand-ins below give the same
constructor contract (``get_params``, ``set_params``, a repr of the changed parameters) and
``fit_transform``, and fastae imports and works with NumPy alone.

Nothing else in fastae imports scikit-learn: every optional use goes through this module.
"""

from __future__ import annotations

import inspect

try:
    import sklearn
    from sklearn.base import BaseEstimator, ClassifierMixin, OutlierMixin, RegressorMixin, TransformerMixin, clone
    from sklearn.exceptions import DataConversionWarning
    from sklearn.exceptions import NotFittedError as _NotFittedBase
except ImportError:  # NumPy alone
    sklearn = None

    class DataConversionWarning(UserWarning):  # type: ignore[no-redef]
        """Stand-in for sklearn.exceptions.DataConversionWarning (a column-vector y, raveled)."""

    class ClassifierMixin:  # type: ignore[no-redef]
        """Stand-in for sklearn.base.ClassifierMixin (the estimators define score themselves)."""

        _estimator_type = "classifier"

    class OutlierMixin:  # type: ignore[no-redef]
        """Stand-in for sklearn.base.OutlierMixin."""

        _estimator_type = "outlier_detector"

        def fit_predict(self, X, y=None, **kwargs):
            """fit(X) then predict(X): +1 for inliers, -1 for outliers."""
            return self.fit(X, y, **kwargs).predict(X)

    def clone(estimator, *, safe=True):
        """Stand-in for sklearn.base.clone: an unfitted copy, the constructor called with deep
        copies of the parameters."""
        import copy

        params = estimator.get_params(deep=False)
        return type(estimator)(**{name: copy.deepcopy(value) for name, value in params.items()})

    class RegressorMixin:  # type: ignore[no-redef]
        """Stand-in for sklearn.base.RegressorMixin (the estimators define score themselves)."""

        _estimator_type = "regressor"

    class BaseEstimator:  # type: ignore[no-redef]
        """Stand-in for sklearn.base.BaseEstimator: the constructor's keyword arguments are the
        parameters, stored unchanged (scikit-learn's estimator contract)."""

        @classmethod
        def _get_param_names(cls):
            init = cls.__init__
            if init is object.__init__:
                return []
            return sorted(p for p in inspect.signature(init).parameters if p != "self")

        def get_params(self, deep=True):
            """The constructor's parameters as a dict (deep is accepted for scikit-learn)."""
            return {name: getattr(self, name) for name in self._get_param_names()}

        def set_params(self, **params):
            """Sets constructor parameters. Returns self."""
            for name, value in params.items():
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

    class TransformerMixin:  # type: ignore[no-redef]
        """Stand-in for sklearn.base.TransformerMixin."""

        def fit_transform(self, X, y=None, **fit_params):
            """fit(X) then transform(X)."""
            return self.fit(X, y, **fit_params).transform(X)

        def set_output(self, *, transform=None):
            """Needs scikit-learn, which is not installed."""
            raise ImportError("set_output needs scikit-learn: pip install 'fastae[sklearn]' (or scikit-learn)")

    class _NotFittedBase(ValueError, AttributeError):  # type: ignore[no-redef]
        """Stand-in for sklearn.exceptions.NotFittedError."""


SKLEARN_INSTALLED = sklearn is not None
SKLEARN_VERSION = sklearn.__version__ if SKLEARN_INSTALLED else None


class NotFittedError(_NotFittedBase):
    """Raised when a method that needs learned weights is called before fit. A ValueError and an
    AttributeError, and, when scikit-learn is installed, a sklearn.exceptions.NotFittedError."""


def tags_with(tags, *, sparse=None, preserves_dtype=None, allow_nan=None):
    """scikit-learn's Tags (``sklearn.utils.Tags``, scikit-learn >= 1.6) with the given fields
    changed; the estimators' ``__sklearn_tags__`` call it on the tags of their base classes."""
    if sparse is not None:
        tags.input_tags.sparse = sparse
    if allow_nan is not None:
        tags.input_tags.allow_nan = allow_nan
    if preserves_dtype is not None and tags.transformer_tags is not None:
        tags.transformer_tags.preserves_dtype = list(preserves_dtype)
    return tags
