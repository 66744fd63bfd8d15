"""fastae.AnomalyDetector: scikit-learn's outlier-detector contract (its own check_estimator on the
defaults), the scores against a NumPy forward pass of the fitted weights, the thresholds
(contamination, "auto"), any template with fit/predict/score_samples, parameter checks, inputs
(data frames, sparse, input_scale), NumPy alone, and the MNIST finding of docs/anomaly.md on one digit."""

import json
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from conftest import MNIST, REPO, smooth_data

from fastae import AnomalyDetector, Autoencoder, NotFittedError

try:
    import sklearn
    from sklearn.exceptions import SkipTestWarning
except ImportError:
    sklearn = None

needs_sklearn = pytest.mark.skipif(sklearn is None, reason="scikit-learn is not installed")


def roc_auc(is_normal, scores):
    """ROC AUC of scores (higher is more normal) for the normal class, in NumPy (Mann-Whitney)."""
    is_normal = np.asarray(is_normal, dtype=bool)
    pos, neg = np.sort(scores[~is_normal]), scores[is_normal]
    below = np.searchsorted(pos, neg, side="left")
    tied = np.searchsorted(pos, neg, side="right") - below
    return float((below + 0.5 * tied).sum() / (len(pos) * len(neg)))


def forward(ae, X):
    """The reconstruction from the fitted weights, in float64 NumPy (relu hidden layers, the output's
    sigmoid or linear activation)."""
    pairs = ae.get_weights()
    a = np.asarray(X, dtype=np.float64)
    for i, (W, b) in enumerate(pairs):
        z = a @ W.astype(np.float64) + b
        if i < len(pairs) - 1:
            a = np.maximum(z, 0.0)
        else:
            a = 1.0 / (1.0 + np.exp(-z)) if ae.output_activation_ == "sigmoid" else z
    return a


def anomalies(n, d, seed):
    """Rows off the smooth data's low-dimensional family: uniform noise in (0, 1)."""
    return np.random.default_rng(seed).uniform(size=(n, d)).astype(np.float32)


@pytest.fixture(scope="module")
def task():
    """Normal training rows, and a test set of normal rows and anomalies (is_normal)."""
    X = smooth_data(400, 16, seed=3)
    test = np.vstack([smooth_data(100, 16, seed=4), anomalies(40, 16, seed=5)])
    return X, test, np.r_[np.ones(100, bool), np.zeros(40, bool)]


@pytest.fixture(scope="module")
def fitted(task):
    template = Autoencoder(hidden_layer_sizes=(3,), epochs=150, batch_size=32, random_state=0, n_threads=1)
    return AnomalyDetector(template, contamination=0.05).fit(task[0])


# ---- scikit-learn's own checks -------------------------------------------------------------------

@needs_sklearn
def test_sklearn_check_estimator_on_the_defaults():
    """Every check scikit-learn runs on an outlier detector passes with the defaults (none is expected
    to fail; a check that cannot run here, such as the array API one, is skipped by scikit-learn)."""
    from sklearn.utils.estimator_checks import check_estimator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkipTestWarning)
        results = check_estimator(AnomalyDetector(), on_fail=None)
    failed = {r["check_name"]: repr(r["exception"]) for r in results if r["status"] == "failed"}
    assert not failed, failed
    names = {r["check_name"] for r in results if r["status"] == "passed"}
    assert {"check_outliers_train", "check_outliers_fit_predict", "check_fit_idempotent",
            "check_n_features_in_after_fitting", "check_estimators_nan_inf"} <= names, names


@needs_sklearn
def test_it_is_a_scikit_learn_outlier_detector():
    from sklearn.base import OutlierMixin, clone, is_outlier_detector
    from sklearn.utils import get_tags

    det = AnomalyDetector(Autoencoder(epochs=3), contamination="auto")
    assert isinstance(det, OutlierMixin) and is_outlier_detector(det)
    tags = get_tags(det)
    assert tags.input_tags.sparse and not tags.input_tags.allow_nan and tags.requires_fit
    twin = clone(det)
    assert twin.autoencoder is not det.autoencoder and twin.autoencoder.get_params() == det.autoencoder.get_params()
    assert "autoencoder__epochs" in det.get_params(deep=True)
    assert repr(det) == "AnomalyDetector(autoencoder=Autoencoder(epochs=3), contamination='auto')"


# ---- scores and thresholds -----------------------------------------------------------------------

def test_scores_are_minus_the_mean_squared_error_of_the_weights_forward_pass(task, fitted):
    test = task[1]
    ae = fitted.autoencoder_
    assert ae is not fitted.autoencoder and ae.loss_function_ == "bce"  # data in [0, 1]: the default head
    reference = ((test.astype(np.float64) - forward(ae, test)) ** 2).mean(axis=1)
    scores = fitted.score_samples(test)
    assert scores.dtype == np.float64 and scores.shape == (140,)
    np.testing.assert_allclose(-scores, reference, rtol=1e-4, atol=1e-9)
    errors = fitted.feature_errors(test)
    assert errors.shape == test.shape and errors.dtype == np.float32 and (errors >= 0).all()
    np.testing.assert_allclose(errors, (test - forward(ae, test)) ** 2, rtol=1e-3, atol=1e-7)
    np.testing.assert_allclose(errors.mean(axis=1, dtype=np.float64), -scores, rtol=1e-6)
    np.testing.assert_array_equal(fitted.decision_function(test), scores - fitted.offset_)


def test_offset_is_the_contamination_quantile_of_the_training_scores(task, fitted):
    X = task[0]
    train = fitted.score_samples(X)
    assert fitted.offset_ == pytest.approx(np.percentile(train, 5.0), rel=1e-12)
    assert fitted.threshold_ == -fitted.offset_
    labels = fitted.predict(X)
    assert labels.dtype.kind == "i" and set(np.unique(labels)) == {-1, 1}
    assert (labels == -1).sum() == 20  # 5% of 400
    np.testing.assert_array_equal(labels == -1, -train > fitted.threshold_)


def test_fit_predict_is_fit_then_predict(task):
    template = Autoencoder(hidden_layer_sizes=(3,), epochs=20, random_state=1, n_threads=1)
    det = AnomalyDetector(template, contamination=0.2)
    labels = det.fit_predict(task[0])
    np.testing.assert_array_equal(labels, AnomalyDetector(template, contamination=0.2).fit(task[0]).predict(task[0]))
    assert (labels == -1).sum() == 80


def test_it_ranks_off_family_rows_as_anomalies(task, fitted):
    _, test, is_normal = task
    assert roc_auc(is_normal, fitted.score_samples(test)) > 0.95
    assert (fitted.predict(test)[~is_normal] == -1).mean() > 0.9  # most anomalies are past the threshold
    if sklearn is not None:
        from sklearn.metrics import roc_auc_score
        assert roc_auc(is_normal, fitted.score_samples(test)) == pytest.approx(
            roc_auc_score(is_normal, fitted.score_samples(test)), abs=1e-12)


def test_contamination_auto_is_tukeys_fence_of_the_training_errors(task):
    template = Autoencoder(hidden_layer_sizes=(3,), epochs=20, random_state=0, n_threads=1)
    det = AnomalyDetector(template, contamination="auto").fit(task[0])
    errors = -det.score_samples(task[0])
    q1, q3 = np.percentile(errors, [25, 75])
    assert det.threshold_ == pytest.approx(q3 + 1.5 * (q3 - q1), rel=1e-12)
    assert det.offset_ == -det.threshold_
    np.testing.assert_array_equal(det.predict(task[0]) == -1, errors > det.threshold_)


def test_model_score_is_the_templates_own(task):
    template = Autoencoder(hidden_layer_sizes=(3,), epochs=20, random_state=0, n_threads=1)
    det = AnomalyDetector(template, anomaly_score="model", contamination=0.1).fit(task[0])
    ae = det.autoencoder_
    np.testing.assert_array_equal(det.score_samples(task[1]), ae.score_samples(task[1]).astype(np.float64))
    # minus the per-sample BCE, from the forward pass of the weights
    x, r = task[1].astype(np.float64), np.clip(forward(ae, task[1]), 1e-12, 1 - 1e-12)
    bce = -(x * np.log(r) + (1 - x) * np.log(1 - r)).mean(axis=1)
    np.testing.assert_allclose(-det.score_samples(task[1]), bce, rtol=1e-4)
    assert det.offset_ == pytest.approx(np.percentile(ae.score_samples(task[0]), 10.0), rel=1e-6)


def test_the_template_is_cloned_and_left_unfitted(task):
    template = Autoencoder(hidden_layer_sizes=(3,), epochs=2, random_state=0)
    det = AnomalyDetector(template).fit(task[0])
    assert det.autoencoder is template and not hasattr(template, "history_")
    assert det.autoencoder_ is not template and det.autoencoder_.get_params() == template.get_params()
    assert det.n_features_in_ == 16


def test_random_state_sets_the_clones(task):
    template = Autoencoder(hidden_layer_sizes=(3,), epochs=3, n_threads=1)
    a = AnomalyDetector(template, random_state=7).fit(task[0])
    b = AnomalyDetector(template, random_state=7).fit(task[0])
    assert a.autoencoder_.random_state == 7 and template.random_state is None
    np.testing.assert_array_equal(a.score_samples(task[1]), b.score_samples(task[1]))


def test_default_template(task):
    det = AnomalyDetector(random_state=0).fit(task[0])
    ae = det.autoencoder_
    assert isinstance(ae, Autoencoder)
    assert (ae.hidden_layer_sizes, ae.dropout, ae.epochs) == ((64,), 0.2, 40) and ae.n_iter_ == 40


# ---- any template with fit / predict / score_samples ---------------------------------------------

class LinearReconstructor:
    """A template that is not fastae's: PCA in NumPy (fit, predict = the projection, score_samples =
    a made-up model score), with the constructor contract clone needs."""

    def __init__(self, n_components=2):
        self.n_components = n_components

    def get_params(self, deep=True):
        return {"n_components": self.n_components}

    def set_params(self, **params):
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def fit(self, X, y=None):
        self.mean_ = X.mean(axis=0)
        self.components_ = np.linalg.svd(X - self.mean_, full_matrices=False)[2][:self.n_components]
        return self

    def predict(self, X):
        return (X - self.mean_) @ self.components_.T @ self.components_ + self.mean_

    def score_samples(self, X):
        return -np.abs(X - self.predict(X)).sum(axis=1)


def test_any_estimator_with_fit_predict_and_score_samples(task):
    X, test, is_normal = task
    det = AnomalyDetector(LinearReconstructor(2), contamination=0.1).fit(X)
    pca = det.autoencoder_
    assert isinstance(pca, LinearReconstructor) and not hasattr(det.autoencoder, "mean_")
    np.testing.assert_allclose(-det.score_samples(test), ((test - pca.predict(test)) ** 2).mean(axis=1), rtol=1e-5)
    assert roc_auc(is_normal, det.score_samples(test)) > 0.95
    model = AnomalyDetector(LinearReconstructor(2), anomaly_score="model").fit(X)
    np.testing.assert_allclose(model.score_samples(test), model.autoencoder_.score_samples(test), rtol=1e-6)
    with pytest.raises(ValueError, match="random_state=3 needs a template with a random_state parameter"):
        AnomalyDetector(LinearReconstructor(), random_state=3).fit(X)
    bad = test.copy()
    bad[4, 1] = np.nan  # a template that checks nothing: the detector names the value
    with pytest.raises(ValueError, match=r"NaN.*row 4"):
        det.score_samples(bad)
    with pytest.raises(ValueError, match=r"NaN.*row 4"):
        AnomalyDetector(LinearReconstructor(2)).fit(bad)


class NoScores(LinearReconstructor):
    score_samples = None


class WrongShape(LinearReconstructor):
    def predict(self, X):
        return X[:, :2]


def test_templates_that_cannot_serve_are_refused(task):
    X = task[0]
    with pytest.raises(ValueError, match=r"anomaly_score='model'.*has no score_samples"):
        AnomalyDetector(NoScores(), anomaly_score="model").fit(X)
    AnomalyDetector(NoScores()).fit(X)  # the squared error needs only predict
    with pytest.raises(ValueError, match=r"must return the reconstruction, of shape \(400, 16\).*\(400, 2\)"):
        AnomalyDetector(WrongShape()).fit(X)


# ---- bad parameters and inputs -------------------------------------------------------------------

@pytest.mark.parametrize("name, value, message", [
    ("contamination", 0.0, r"contamination must be 'auto' or a float in \(0, 0.5\]; got contamination=0.0"),
    ("contamination", 0.6, "got contamination=0.6"),
    ("contamination", -0.1, "got contamination=-0.1"),
    ("contamination", "max", "got contamination='max'"),
    ("contamination", True, "got contamination=True"),
    ("contamination", None, "got contamination=None"),
    ("contamination", float("nan"), "got contamination=nan"),
    ("anomaly_score", "bce", "anomaly_score must be one of 'squared_error', 'model'; got anomaly_score='bce'"),
    ("anomaly_score", None, "got anomaly_score=None"),
    ("autoencoder", Autoencoder, r"must be an estimator instance \(e.g. Autoencoder\(\)\), not the class"),
    ("autoencoder", "Autoencoder", "has no fit, predict, get_params"),
    ("autoencoder", object(), "has no fit, predict, get_params"),
])
def test_bad_parameters_are_named(task, name, value, message):
    det = AnomalyDetector(**{name: value})
    with pytest.raises(ValueError, match=message):
        det.fit(task[0])
    assert not hasattr(det, "autoencoder_")


def test_bad_template_parameters_come_from_the_template(task):
    with pytest.raises(ValueError, match="epochs"):
        AnomalyDetector(Autoencoder(epochs=0)).fit(task[0])
    with pytest.raises(ValueError, match="random_state"):
        AnomalyDetector(Autoencoder(), random_state="seven").fit(task[0])


def test_a_failed_fit_keeps_the_previous_state(task, fitted):
    import copy

    det = copy.deepcopy(fitted)
    before = det.score_samples(task[1])
    bad = task[0].copy()
    bad[7, 3] = np.nan
    with pytest.raises(ValueError, match="row 7"):
        det.fit(bad)
    np.testing.assert_array_equal(det.score_samples(task[1]), before)
    assert det.offset_ == fitted.offset_


def test_unfitted_and_malformed_inputs(task, fitted):
    det = AnomalyDetector()
    for call in (det.score_samples, det.decision_function, det.predict, det.feature_errors):
        with pytest.raises(NotFittedError, match="AnomalyDetector instance is not fitted"):
            call(task[1])
    with pytest.raises(ValueError, match="X has 15 features, but AnomalyDetector is expecting 16 features"):
        fitted.predict(task[1][:, :15])
    with pytest.raises(ValueError, match="Reshape your data"):
        fitted.score_samples(task[1][0])
    bad = task[1].copy()
    bad[5, 2] = np.inf
    with pytest.raises(ValueError, match="row 5"):
        fitted.feature_errors(bad)


def test_inputs_data_frames_sparse_and_input_scale(task, fitted):
    X, test, _ = task
    scipy_sparse = pytest.importorskip("scipy.sparse")
    np.testing.assert_allclose(fitted.score_samples(scipy_sparse.csr_matrix(test)), fitted.score_samples(test),
                               rtol=1e-6)
    np.testing.assert_array_equal(fitted.score_samples(test.astype(np.float64).tolist()),
                                  fitted.score_samples(test))
    # input_scale: the errors are in the scaled units the template reconstructs
    raw = np.round(X * 255).astype(np.uint8)
    scaled = AnomalyDetector(Autoencoder(hidden_layer_sizes=(3,), epochs=5, input_scale=1 / 255, random_state=0,
                                         n_threads=1)).fit(raw)
    errors = scaled.feature_errors(raw[:50])
    reference = (raw[:50].astype(np.float32) * np.float32(1 / 255) - scaled.autoencoder_.predict(raw[:50])) ** 2
    np.testing.assert_allclose(errors, reference, rtol=1e-6)
    assert errors.max() < 1.0

    pd = pytest.importorskip("pandas")
    names = [f"f{i}" for i in range(16)]
    frame = AnomalyDetector(Autoencoder(hidden_layer_sizes=(3,), epochs=3, random_state=0)).fit(
        pd.DataFrame(X, columns=names))
    assert list(frame.feature_names_in_) == names
    assert frame.score_samples(pd.DataFrame(test, columns=names)).shape == (140,)
    with pytest.raises(ValueError, match="same order"):
        frame.predict(pd.DataFrame(test[:, ::-1], columns=names[::-1]))


# ---- NumPy alone ---------------------------------------------------------------------------------

def test_it_works_with_numpy_alone():
    code = textwrap.dedent("""
        import sys
        sys.modules["sklearn"] = None  # import sklearn now raises ImportError
        import json
        import numpy as np
        import fastae
        X = np.random.default_rng(0).uniform(size=(60, 6))
        template = fastae.Autoencoder(hidden_layer_sizes=(2,), epochs=3, random_state=0)
        det = fastae.AnomalyDetector(template, contamination=0.1)
        assert repr(det).startswith("AnomalyDetector(autoencoder=Autoencoder("), repr(det)
        labels = det.fit_predict(X)
        assert (labels == -1).sum() == 6 and np.array_equal(det.predict(X), labels)
        assert det.autoencoder_ is not template and det.autoencoder_.get_params() == template.get_params()
        assert np.allclose(det.decision_function(X), det.score_samples(X) - det.offset_)
        assert det.set_params(contamination="auto") is det and det.get_params()["contamination"] == "auto"
        print(json.dumps({"ok": True, "sklearn_loaded": any(m.startswith("sklearn.") for m in sys.modules)}))
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120,
                         check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(run.stdout.strip().splitlines()[-1]) == {"ok": True, "sklearn_loaded": False}


# ---- the MNIST finding (docs/anomaly.md), on one digit -------------------------------------------

def test_mnist_one_digit_squared_error_beats_the_bce_score_and_pca(mnist):
    """Digit 8 normal, the other test digits anomalies (the hardest task of docs/anomaly.md's table):
    the default detector's AUC beats minus the per-sample BCE of the same weights and a PCA(32)
    reconstruction error computed here in NumPy."""
    with np.load(MNIST) as d:
        y_train, y_test = d["y_train"], d["y_test"]
    x_train, x_test = mnist
    X = x_train[y_train == 8]
    is_normal = y_test == 8
    det = AnomalyDetector(random_state=0).fit(X)
    auc = roc_auc(is_normal, det.score_samples(x_test))
    auc_bce = roc_auc(is_normal, det.autoencoder_.score_samples(x_test))  # the same network, minus its BCE
    mean = X.astype(np.float64).mean(axis=0)
    components = np.linalg.svd(X - mean, full_matrices=False)[2][:32]
    centred = x_test - mean
    pca_error = ((centred - centred @ components.T @ components) ** 2).sum(axis=1)
    auc_pca = roc_auc(is_normal, -pca_error)
    assert auc > auc_pca + 0.01 and auc > auc_bce + 0.03, (auc, auc_pca, auc_bce)
