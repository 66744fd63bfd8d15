"""fastae.AnomalyDetector: reconstruction-error anomaly detection over an autoencoder template,
with scikit-learn's outlier-detector contract (``OutlierMixin`` when scikit-learn is installed).

It relies only on the template's ``fit``, ``predict`` (the reconstruction) and, for
``anomaly_score="model"``, ``score_samples``, so it works for any such estimator (``Autoencoder``; the
variational autoencoder, whose ``score_samples`` is the per-sample ELBO). Why the default score is
the squared reconstruction error and not the model's own loss: docs/anomaly.md.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ._arrays import (
    check_array,
    check_sparse,
    dataframe_to_array,
    densify_all,
    feature_names_of,
    is_dataframe,
    is_sparse,
)
from ._autoencoder import Autoencoder
from ._base import _NetworkEstimator
from ._compat import BaseEstimator, NotFittedError, OutlierMixin, clone, tags_with

SCORES = ("squared_error", "model")

# The default template (autoencoder=None). Measured on MNIST one-digit-normal tasks
# (benchmarks/anomaly_mnist.py, docs/anomaly.md): dropout keeps the network from learning to
# reconstruct everything as training goes on, so 40 epochs still improve the ranking where the plain
# network's gets worse after ~20.
DEFAULT_TEMPLATE_PARAMS = {"hidden_layer_sizes": (64,), "dropout": 0.2, "epochs": 40}


def default_template() -> Autoencoder:
    """The template used when autoencoder=None: Autoencoder(hidden_layer_sizes=(64,), dropout=0.2,
    epochs=40), every other parameter at its default (loss="auto": bce on a sigmoid output for data
    in [0, 1], mse on a linear output otherwise)."""
    return Autoencoder(**DEFAULT_TEMPLATE_PARAMS)




class AnomalyDetector(OutlierMixin, BaseEstimator):
    """Anomaly detection by reconstruction error: fits a clone of an autoencoder on (mostly)
    normal data; samples it reconstructs badly are anomalies.

    Parameters
    ----------
    autoencoder : estimator or None, default None
        The unfitted template: any estimator with ``fit(X)``, ``predict(X)`` returning the
        reconstruction (n_samples, n_features) and ``get_params`` (``fastae.Autoencoder``, the
        variational autoencoder; with ``anomaly_score="model"`` also ``score_samples``). ``fit`` trains a
        clone (the template itself is left untouched, and any fitted state it has is not used).
        None: ``Autoencoder(hidden_layer_sizes=(64,), dropout=0.2, epochs=40)`` (see
        docs/anomaly.md for why).
    contamination : "auto" or float in (0, 0.5], default 0.1
        The expected fraction of outliers in the training data: ``offset_`` is that quantile of
        the training scores, so ``predict`` flags that fraction of the training samples (up to
        ties). "auto": no fraction is assumed (as IsolationForest's "auto" uses its score's
        natural scale instead): the threshold is Tukey's upper fence of the training errors,
        ``Q3 + 1.5 * (Q3 - Q1)`` (quartiles of ``-score_samples`` on the training data).
    anomaly_score : {"squared_error", "model"}, default "squared_error"
        "squared_error": a sample's score is minus the mean over features of ``feature_errors``,
        the squared differences between the sample (times the template's ``input_scale``, if
        set) and its reconstruction. It does not depend on the loss the template trained with
        and works in any data space. "model": the template's own ``score_samples`` (an
        Autoencoder's minus per-sample loss, e.g. minus the BCE; a VAE's ELBO). With BCE that
        score carries each input's own entropy, which no model can reduce and which says nothing
        about normality: on MNIST it ranks anomalies worse than PCA does (docs/anomaly.md).
    random_state : None, int, numpy RandomState or Generator, default None
        None keeps the template's random_state; otherwise the clone's random_state is set to it
        (the template must then have a random_state parameter).

    Attributes
    ----------
    autoencoder_ : the fitted clone of the template
    offset_ : float
        ``decision_function(X) = score_samples(X) - offset_``: negative for outliers.
    threshold_ : float
        ``-offset_``: the reconstruction error (minus the score) above which ``predict`` says -1,
        in the score's units (PyOD's convention: higher is more anomalous).
    n_features_in_ : int
    feature_names_in_ : ndarray of str, the column names of the data frame fit was given (only
        then)

    Inputs are NumPy arrays (any real dtype), array-likes, data frames and SciPy sparse matrices,
    checked here (shape, width, column names, worded as scikit-learn words them) and handed to the
    template as float32 arrays (sparse ones as CSR matrices). Scores are float64.

    Choosing a threshold: with labelled anomalies to spare, pick it from their scores (e.g. a
    precision you want); otherwise set ``contamination`` to the fraction you expect, or use
    "auto". ``decision_function`` and ``score_samples`` rank samples without any threshold
    (what a ROC AUC measures).
    """

    def __init__(self, autoencoder: Any = None, contamination: float | str = 0.1,
                 anomaly_score: str = "squared_error", random_state: Any = None) -> None:
        self.autoencoder = autoencoder
        self.contamination = contamination
        self.anomaly_score = anomaly_score
        self.random_state = random_state

    # ---- parameters ---------------------------------------------------------------------------

    def _template(self):
        """The template the parameters describe (checked)."""
        template = self.autoencoder
        if template is None:
            return default_template()
        if isinstance(template, type):  # every fastae parameter check raises ValueError
            raise ValueError(  # noqa: TRY004
                f"autoencoder must be an estimator instance (e.g. {template.__name__}()), not the class "
                f"{template.__name__}")
        required = ["fit", "predict", "get_params"]
        needs = "fit, predict (the reconstruction) and get_params"
        if self.anomaly_score == "model":
            required.append("score_samples")
            needs = "fit, predict (the reconstruction), get_params and score_samples (anomaly_score='model')"
        missing = [name for name in required if not callable(getattr(template, name, None))]
        if missing:
            raise ValueError(f"autoencoder must be an estimator with {needs}; {template!r} has no {', '.join(missing)}")
        return template

    def _check_params(self):
        """Checks the parameters; returns the template (ValueError naming the parameter and value)."""
        c = self.contamination
        if not (isinstance(c, str) and c == "auto") and (
                isinstance(c, (bool, np.bool_)) or not isinstance(c, numbers.Real) or not 0.0 < float(c) <= 0.5):
            raise ValueError(f"contamination must be 'auto' or a float in (0, 0.5]; got contamination={c!r}")
        if not (isinstance(self.anomaly_score, str) and self.anomaly_score in SCORES):
            raise ValueError(f"anomaly_score must be one of {', '.join(map(repr, SCORES))}; got "
                             f"anomaly_score={self.anomaly_score!r}")
        template = self._template()
        if self.random_state is not None and "random_state" not in template.get_params(deep=False):
            raise ValueError(f"random_state={self.random_state!r} needs a template with a random_state parameter; "
                             f"{type(template).__name__} has none (leave random_state=None)")
        return template

    def __sklearn_tags__(self):
        template = self.autoencoder if self.autoencoder is not None and not isinstance(self.autoencoder, type) \
            else default_template()
        sparse = False
        if hasattr(template, "__sklearn_tags__"):
            try:
                sparse = bool(template.__sklearn_tags__().input_tags.sparse)
            except AttributeError:
                sparse = False
        return tags_with(super().__sklearn_tags__(), sparse=sparse, allow_nan=False)

    def _more_tags(self):  # scikit-learn < 1.6
        return {"allow_nan": False, "requires_y": False}

    def __sklearn_is_fitted__(self):
        return hasattr(self, "autoencoder_")

    # ---- inputs -------------------------------------------------------------------------------

    def _check_fitted(self):
        if not hasattr(self, "autoencoder_"):
            raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet: call fit before using it.")
        return self.autoencoder_

    # scikit-learn's rule for the column names of data frames given after fit (the same as every
    # fastae estimator's, worded with this class's name).
    _check_feature_names = _NetworkEstimator._check_feature_names

    def _input(self, X, fitting, est):
        """X as the template est gets it: a float32 C-contiguous array (or a CSR matrix), its shape
        and width checked here and worded with this class's name. NaN and inf are left to a fastae
        template (its engine names the value and its row as it reads) and checked here for others.
        When fitting, also returns the column names."""
        owner = type(self).__name__
        n_features = None if fitting else self.n_features_in_
        if fitting:
            names = feature_names_of(X)
        else:
            self._check_feature_names(X)
        if is_sparse(X):
            X = check_sparse(X, "X", n_features, owner)
            X = X.astype(np.float32) if X.dtype != np.float32 else X
        else:
            if is_dataframe(X):
                X = dataframe_to_array(X, "X")
            X = check_array(X, "X", n_features, finite=not isinstance(est, _NetworkEstimator), owner=owner)
        if fitting:
            return X, names
        return X

    # ---- training -----------------------------------------------------------------------------

    def fit(self, X: ArrayLike, y: Any = None) -> AnomalyDetector:
        """Fits a clone of the template on X (y is ignored), scores the training samples and sets
        ``offset_`` and ``threshold_`` from them by contamination. If the template's fit raises, the
        detector keeps its previous state. Returns self."""
        self._fit(X)
        return self

    def fit_predict(self, X: ArrayLike, y: Any = None) -> np.ndarray:
        """fit(X) then predict(X) (+1 inliers, -1 outliers), reusing the training scores."""
        scores = self._fit(X)
        return np.where(scores - self.offset_ < 0, -1, 1)

    def _fit(self, X):
        template = self._check_params()
        X, names = self._input(X, fitting=True, est=template)
        est = clone(template)
        if self.random_state is not None:
            est.set_params(random_state=self.random_state)
        est.fit(X)
        scores = self._scores(est, X)
        if isinstance(self.contamination, str):  # "auto": Tukey's upper fence of the training errors
            q1, q3 = np.percentile(-scores, [25.0, 75.0])
            offset = -(q3 + 1.5 * (q3 - q1))
        else:
            offset = np.percentile(scores, 100.0 * float(self.contamination))
        # Everything at once, after the template's fit and the scores succeeded.
        self.autoencoder_ = est
        self.n_features_in_ = X.shape[1]
        if names is not None:
            self.feature_names_in_ = names
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self.offset_ = float(offset)
        self.threshold_ = -self.offset_
        return scores

    # ---- scores -------------------------------------------------------------------------------

    @staticmethod
    def _squared_errors(est, X):
        """(X * input_scale - est.predict(X)) ** 2 per feature, float32 (X: an _input result)."""
        reconstruction = np.asarray(est.predict(X), dtype=np.float32)
        if reconstruction.shape != X.shape:
            raise ValueError(f"the template's predict must return the reconstruction, of shape {X.shape}; "
                             f"{type(est).__name__}.predict returned shape {reconstruction.shape}")
        if is_sparse(X):
            X = densify_all(X, "X")
        scale = getattr(est, "input_scale", None)
        if scale is not None:
            X = X * np.float32(scale)
        errors = reconstruction - X  # a new array: the caller's X is never written
        np.square(errors, out=errors)
        return errors

    def _scores(self, est, X):
        if self.anomaly_score == "model":
            return np.asarray(est.score_samples(X), dtype=np.float64)
        return -self._squared_errors(est, X).mean(axis=1, dtype=np.float64)

    def feature_errors(self, X: ArrayLike) -> np.ndarray:
        """Per-feature squared reconstruction errors, shape (n_samples, n_features), float32:
        ``(X - predict(X)) ** 2`` with X times the template's input_scale if set (the features that
        made a sample unusual have the largest). With anomaly_score="squared_error" the mean of a row is
        minus that sample's score_samples."""
        est = self._check_fitted()
        return self._squared_errors(est, self._input(X, fitting=False, est=est))

    def score_samples(self, X: ArrayLike) -> np.ndarray:
        """The normality of each sample (higher is more normal), float64: minus its mean squared
        reconstruction error (anomaly_score="squared_error"), or the template's score_samples
        (anomaly_score="model")."""
        est = self._check_fitted()
        return self._scores(est, self._input(X, fitting=False, est=est))

    def decision_function(self, X: ArrayLike) -> np.ndarray:
        """score_samples(X) - ``offset_``: negative for outliers, positive for inliers."""
        return self.score_samples(X) - self.offset_

    def predict(self, X: ArrayLike) -> np.ndarray:
        """+1 for inliers, -1 for outliers (decision_function < 0)."""
        return np.where(self.decision_function(X) < 0, -1, 1)
