"""fastae.plot: each picture rendered to PNG with the Agg backend and the file checked (signature,
size, the header's width and height), the figure's axes and artists checked, the 2-D code view
against an independent PCA; matplotlib imported only when a picture is asked for, and an ImportError
naming the extra without it. Skips where matplotlib is not installed (the `plot` extra)."""

import json
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import REPO, smooth_data

from fastae import AnomalyDetector, Autoencoder, NotFittedError

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from matplotlib.image import AxesImage

import fastae.plot

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SIDE = 8  # images of 8 x 8 = 64 features


def render(fig, path, dpi=50):
    """Writes fig as PNG; checks the file and returns its (width, height) from the IHDR chunk."""
    assert isinstance(fig, Figure)
    fig.savefig(path, format="png", dpi=dpi)
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR" and len(data) > 1000
    width, height = struct.unpack(">II", data[16:24])
    expected = np.round(fig.get_size_inches() * dpi)
    assert abs(width - expected[0]) <= 1 and abs(height - expected[1]) <= 1
    return width, height


def images_of(ax):
    return [a for a in ax.get_children() if isinstance(a, AxesImage)]


@pytest.fixture(scope="module")
def digits_like():
    """64-feature rows in [0, 1] from three smooth families (labels 0, 1, 2)."""
    parts = [smooth_data(60, 64, seed=s) ** (k + 1) for k, s in enumerate((11, 12, 13))]
    return np.vstack(parts), np.repeat([0, 1, 2], 60)


@pytest.fixture(scope="module")
def ae(digits_like):
    return Autoencoder(hidden_layer_sizes=(16, 5), activation="elu", epochs=12, batch_size=32, validation_split=0.2,
                       random_state=0, n_threads=1).fit(digits_like[0])


def test_history(ae, tmp_path):
    fig = fastae.plot.history(ae)
    render(fig, tmp_path / "history.png")
    (ax,) = fig.axes
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert {"loss", "val_loss"} <= set(lines)
    np.testing.assert_array_equal(lines["loss"].get_xdata(), np.arange(1, 13))
    np.testing.assert_allclose(lines["loss"].get_ydata(), ae.history_["loss"])
    np.testing.assert_allclose(lines["val_loss"].get_ydata(), ae.history_["val_loss"])
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "loss (bce)" and ax.get_yscale() == "log"


def test_history_of_an_unfitted_or_untrained_estimator():
    with pytest.raises(NotFittedError, match="no history_"):
        fastae.plot.history(Autoencoder())
    with pytest.raises(NotFittedError, match="AnomalyDetector instance is not fitted"):
        fastae.plot.history(AnomalyDetector())
    blank = Autoencoder(hidden_layer_sizes=(2,))
    rng = np.random.default_rng(0)
    blank.set_weights([(rng.normal(size=(4, 2)), np.zeros(2)), (rng.normal(size=(2, 4)), np.zeros(4))])
    with pytest.raises(ValueError, match="no epochs"):
        fastae.plot.history(blank)


def test_reconstructions(ae, digits_like, tmp_path):
    X = digits_like[0]
    fig = fastae.plot.reconstructions(ae, X[::30], image_shape=(SIDE, SIDE), n_images=5)
    render(fig, tmp_path / "reconstructions.png")
    assert len(fig.axes) == 10
    shown = [images_of(ax) for ax in fig.axes]
    assert all(len(s) == 1 for s in shown)
    # the first row holds the inputs, the second their reconstructions, image by image
    rows = np.asarray(fig.axes).reshape(2, 5)
    for i in range(5):
        np.testing.assert_allclose(images_of(rows[0, i])[0].get_array(), X[30 * i].reshape(SIDE, SIDE), rtol=1e-6)
        np.testing.assert_allclose(images_of(rows[1, i])[0].get_array(),
                                   ae.predict(X[30 * i:30 * i + 1])[0].reshape(SIDE, SIDE), rtol=1e-6)
    assert rows[0, 0].get_ylabel() == "original" and rows[1, 0].get_ylabel() == "reconstruction"
    with pytest.raises(ValueError, match=r"image_shape=\(28, 28\) holds 784 values but each row of X has 64"):
        fastae.plot.reconstructions(ae, X[:3])
    with pytest.raises(ValueError, match="n_images must be a positive int"):
        fastae.plot.reconstructions(ae, X, image_shape=(SIDE, SIDE), n_images=0)


def test_reconstructions_of_an_anomaly_detector_show_its_errors(digits_like, tmp_path):
    X = digits_like[0]
    det = AnomalyDetector(Autoencoder(hidden_layer_sizes=(5,), epochs=5, random_state=0, n_threads=1)).fit(X)
    fig = fastae.plot.reconstructions(det, X[:4], image_shape=(SIDE, SIDE))
    render(fig, tmp_path / "anomaly.png")
    rows = np.asarray(fig.axes).reshape(3, 4)
    errors = det.feature_errors(X[:4])
    for i in range(4):
        np.testing.assert_allclose(images_of(rows[2, i])[0].get_array(), errors[i].reshape(SIDE, SIDE), rtol=1e-6)
    assert rows[2, 0].get_xlabel() == f"{det.score_samples(X[:1])[0]:.3g}"


def test_reconstructions_with_input_scale_show_scaled_inputs(digits_like, tmp_path):
    raw = np.round(digits_like[0] * 255).astype(np.uint8)
    ae = Autoencoder(hidden_layer_sizes=(5,), epochs=3, input_scale=1 / 255, random_state=0, n_threads=1).fit(raw)
    fig = fastae.plot.reconstructions(ae, raw[:2], image_shape=(SIDE, SIDE))
    render(fig, tmp_path / "scaled.png")
    first = images_of(fig.axes[0])[0].get_array()
    np.testing.assert_allclose(first, raw[0].reshape(SIDE, SIDE) / 255, rtol=1e-6)


def test_codes_are_the_first_two_principal_components_coloured_by_label(ae, digits_like, tmp_path):
    X, y = digits_like
    fig = fastae.plot.codes(ae, X, y)
    render(fig, tmp_path / "codes.png")
    (ax,) = fig.axes
    groups = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert [g.get_label() for g in groups] == ["0", "1", "2"]
    assert len({tuple(g.get_facecolor()[0]) for g in groups}) == 3
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["0", "1", "2"]
    points = np.vstack([g.get_offsets() for g in groups])
    # independent reference: the covariance's eigenvectors (not an SVD), up to each axis' sign
    Z = ae.transform(X).astype(np.float64)
    assert (Z.std(axis=0) > 1e-3).all()  # five live code units
    values, vectors = np.linalg.eigh(np.cov(Z.T))
    reference = (Z - Z.mean(axis=0)) @ vectors[:, ::-1][:, :2]
    reference = np.vstack([reference[y == k] for k in (0, 1, 2)])
    for axis in range(2):
        sign = np.sign(points[:, axis] @ reference[:, axis])
        np.testing.assert_allclose(points[:, axis], sign * reference[:, axis], rtol=1e-6, atol=1e-9)
    share = values[::-1][0] / values.sum()
    assert ax.get_xlabel() == f"PC1 of the codes ({100 * share:.0f}% of the variance)"


def test_codes_of_narrow_codes_and_other_labels(digits_like, tmp_path):
    X, y = digits_like
    two = Autoencoder(hidden_layer_sizes=(2,), epochs=3, random_state=0, n_threads=1).fit(X)
    fig = fastae.plot.codes(two, X)  # no labels: one collection, the codes themselves
    render(fig, tmp_path / "two.png")
    (collection,) = fig.axes[0].collections
    np.testing.assert_allclose(collection.get_offsets(), two.transform(X), rtol=1e-6)
    assert fig.axes[0].get_xlabel() == "code0"
    one = Autoencoder(hidden_layer_sizes=(1,), epochs=3, random_state=0, n_threads=1).fit(X)
    values = np.linspace(0, 1, len(X))  # many distinct numeric labels: a colour scale
    fig = fastae.plot.codes(one, X, values)
    render(fig, tmp_path / "one.png")
    assert len(fig.axes) == 2 and fig.axes[1].get_label() == "<colorbar>"
    np.testing.assert_allclose(fig.axes[0].collections[0].get_offsets()[:, 1], one.transform(X)[:, 0], rtol=1e-6)
    with pytest.raises(ValueError, match=r"one label per row of X \(180\)"):
        fastae.plot.codes(one, X, y[:10])


class Generative:
    """A stand-in for the variational autoencoder: codes from a standard normal prior, decoded by
    a fitted Autoencoder's decoder (sample returns rows, or, with codes_only, the codes)."""

    def __init__(self, ae, codes_only=False):
        self.ae, self.codes_only, self.calls = ae, codes_only, []

    def sample(self, n, random_state=None):
        self.calls.append((n, random_state))
        z = np.random.default_rng(random_state).normal(size=(n, self.ae.transform(np.zeros((1, 64))).shape[1]))
        z = z.astype(np.float32)
        return z if self.codes_only else self.ae.inverse_transform(z)

    def inverse_transform(self, Z):
        return self.ae.inverse_transform(Z)


@pytest.mark.parametrize("codes_only", [False, True])
def test_samples(ae, tmp_path, codes_only):
    vae = Generative(ae, codes_only)
    fig = fastae.plot.samples(vae, n=10, image_shape=(SIDE, SIDE), random_state=3, n_cols=4)
    render(fig, tmp_path / "samples.png")
    assert vae.calls == [(10, 3)]
    assert len(fig.axes) == 10  # a 3 x 4 grid less its two empty cells
    expected = ae.inverse_transform(np.random.default_rng(3).normal(size=(10, 5)).astype(np.float32))
    for k, ax in enumerate(fig.axes):
        np.testing.assert_allclose(images_of(ax)[0].get_array(), expected[k].reshape(SIDE, SIDE), rtol=1e-6)


def test_samples_needs_a_generative_estimator(ae):
    with pytest.raises(TypeError, match="Autoencoder has no sample"):
        fastae.plot.samples(ae, image_shape=(SIDE, SIDE))

    class SampleOnly:
        def sample(self, n):
            return np.zeros((n, 64))

    with pytest.raises(TypeError, match="SampleOnly has no inverse_transform"):
        fastae.plot.samples(SampleOnly())


def test_matplotlib_is_imported_only_when_a_picture_is_asked_for():
    code = textwrap.dedent("""
        import json, sys
        import fastae, fastae.plot
        before = "matplotlib" in sys.modules
        import numpy as np
        X = np.random.default_rng(0).uniform(size=(40, 4))
        ae = fastae.Autoencoder(hidden_layer_sizes=(2,), epochs=2, random_state=0).fit(X)
        fastae.plot.history(ae)
        print(json.dumps({"before": before, "after": "matplotlib" in sys.modules}))
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120,
                         check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(run.stdout.strip().splitlines()[-1]) == {"before": False, "after": True}


def test_without_matplotlib_each_picture_names_the_extra():
    code = textwrap.dedent("""
        import json, sys
        sys.modules["matplotlib"] = None  # import matplotlib now raises ImportError
        import numpy as np
        import fastae, fastae.plot
        X = np.random.default_rng(0).uniform(size=(40, 4))
        ae = fastae.Autoencoder(hidden_layer_sizes=(2,), epochs=2, random_state=0).fit(X)
        messages = []
        for call in (lambda: fastae.plot.history(ae), lambda: fastae.plot.reconstructions(ae, X, (2, 2)),
                     lambda: fastae.plot.codes(ae, X)):
            try:
                call()
            except ImportError as exc:
                messages.append(str(exc))
        print(json.dumps(messages))
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120,
                         check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    messages = json.loads(run.stdout.strip().splitlines()[-1])
    assert len(messages) == 3 and all('pip install "fastae[plot]"' in m for m in messages)
