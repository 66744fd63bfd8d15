"""Bad hyperparameters and bad arrays raise ValueError naming the problem, before any training,
and leave a fitted model exactly as it was."""

import numpy as np
import pytest
from conftest import smooth_data

from fastae import Autoencoder, _core

# Names that are not in the engine's vocabulary tables (checked, so that a name added to a table
# cannot make a "bad" case here silently valid).
NOT_AN_ACTIVATION, NOT_A_LOSS, NOT_AN_OPTIMIZER = "swish", "hinge", "lbfgs"
assert NOT_AN_ACTIVATION not in _core.ACTIVATIONS and NOT_A_LOSS not in _core.LOSSES
assert NOT_AN_OPTIMIZER not in _core.OPTIMIZERS
# Output-only activations (softmax) are bad hidden activations.
OUTPUT_ONLY = [a for a in _core.ACTIVATIONS if _core.ACTIVATION_TRAITS[a]["output_only"]]

BAD_PARAMS = [
    ("hidden_layer_sizes", ()), ("hidden_layer_sizes", (0,)), ("hidden_layer_sizes", (4, -1)),
    ("hidden_layer_sizes", "64"), ("hidden_layer_sizes", (2.5,)), ("hidden_layer_sizes", None),
    ("activation", NOT_AN_ACTIVATION), ("activation", None), *[("activation", a) for a in OUTPUT_ONLY],
    ("output_activation", NOT_AN_ACTIVATION), ("loss", NOT_A_LOSS), ("optimizer", NOT_AN_OPTIMIZER),
    ("kernel_initializer", "orthogonal"), ("leaky_relu_slope", -0.1), ("huber_delta", 0.0), ("weight_decay", -1.0),
    ("rho", 1.0), ("learning_rate", 0.0), ("learning_rate", -1e-3), ("learning_rate", float("nan")),
    ("learning_rate", "fast"), ("batch_size", 0), ("batch_size", 2.0), ("batch_size", True), ("epochs", 0),
    ("epochs", -3), ("shuffle", "yes"), ("random_state", -1), ("random_state", "seed"), ("n_threads", 0),
    ("n_threads", 1.5), ("warm_start", 1), ("verbose", -1), ("beta_1", 1.0), ("beta_2", -0.1), ("epsilon", 0.0),
    ("momentum", 1.0),
]


@pytest.mark.parametrize("name,value", BAD_PARAMS)
def test_bad_hyperparameter_names_itself_and_value(name, value):
    X = smooth_data(20, 6)
    with pytest.raises(ValueError) as info:
        Autoencoder(**{"epochs": 1, name: value}).fit(X)
    assert name in str(info.value)
    assert repr(value) in str(info.value) or str(value) in str(info.value)


def test_incompatible_combinations():
    X = smooth_data(20, 6)
    with pytest.raises(ValueError, match="output_activation"):
        Autoencoder(loss="bce", output_activation="linear").fit(X)
    with pytest.raises(ValueError, match="nesterov"):
        Autoencoder(optimizer="sgd", momentum=0.0, nesterov=True).fit(X)
    # Every pairing rule of the loss table: a loss that needs its own output activation refuses
    # any other, and an output-only activation refuses any other loss.
    for loss, traits in _core.LOSS_TRAITS.items():
        required = traits["required_output"]
        for out in _core.ACTIVATIONS:
            allowed = out == required if required else not _core.ACTIVATION_TRAITS[out]["output_only"]
            if not allowed:
                with pytest.raises(ValueError, match="output_activation"):
                    Autoencoder(loss=loss, output_activation=out, epochs=1).fit(X)


BAD_X = [
    ("1-D", np.ones(10, dtype=np.float32), "2-D"),
    ("3-D", np.ones((2, 3, 4), dtype=np.float32), "2-D"),
    ("no rows", np.ones((0, 6), dtype=np.float32), "empty"),
    ("no columns", np.ones((5, 0), dtype=np.float32), "empty"),
    ("nan", np.where(np.eye(6, dtype=bool), np.nan, 0.5).astype(np.float32), "nan"),
    ("inf", np.full((3, 6), np.inf), "inf"),
    ("float64 overflow", np.full((3, 6), 1e300), "finite"),
    ("object", np.array([[object()] * 6] * 3), "real numbers"),
    ("strings", np.array([["a"] * 6] * 3), "real numbers"),
    ("complex", np.ones((3, 6), dtype=np.complex64), "real numbers"),
    ("ragged", [[0.1, 0.2], [0.3]], "array"),
    ("scalar", 3.0, "2-D"),
]


@pytest.mark.parametrize("label,X,message", BAD_X, ids=[b[0] for b in BAD_X])
def test_bad_X_in_fit(label, X, message):
    with pytest.raises(ValueError, match=f"(?i){message}"):
        Autoencoder(epochs=1).fit(X)


@pytest.mark.parametrize("label,X,message", BAD_X, ids=[b[0] for b in BAD_X])
def test_bad_X_after_fit_leaves_the_model_unchanged(label, X, message):
    data = smooth_data(30, 6)
    ae = Autoencoder(hidden_layer_sizes=(3,), epochs=2, random_state=0).fit(data)
    weights, history = ae.get_weights(), dict(ae.history_)
    for call in (ae.fit, ae.transform, ae.predict, ae.score):
        with pytest.raises(ValueError):
            call(X)
    after = ae.get_weights()
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(weights, after))
    assert ae.history_ == history


def test_wrong_feature_counts():
    data = smooth_data(30, 6)
    ae = Autoencoder(hidden_layer_sizes=(3,), epochs=1, random_state=0).fit(data)
    with pytest.raises(ValueError, match="X has 7 features, but Autoencoder is expecting 6 features as input"):
        ae.transform(np.zeros((2, 7)))
    with pytest.raises(ValueError, match="expecting 3"):
        ae.inverse_transform(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="validation_data"):
        Autoencoder(epochs=1).fit(data, validation_data=np.zeros((4, 5)))


def test_bce_needs_targets_in_unit_range():
    X = smooth_data(20, 6) * 255
    with pytest.raises(ValueError, match=r"\[0, 1\].*X / 255"):
        Autoencoder(epochs=1, loss="bce").fit(X)
    Autoencoder(epochs=1, loss="mse", output_activation="linear").fit(X)  # mse takes any range


def test_core_rejects_what_python_would_not_send():
    """The binding checks too: wrong dtype or layout is a TypeError, not a silent copy."""
    data = smooth_data(30, 6)
    ae = Autoencoder(hidden_layer_sizes=(3,), epochs=1, random_state=0).fit(data)
    with pytest.raises(TypeError):
        ae._model.encode(data.astype(np.float64))
    with pytest.raises(TypeError):
        ae._model.encode(np.asfortranarray(data))
    with pytest.raises(ValueError, match="columns"):
        ae._model.encode(np.zeros((3, 5), dtype=np.float32))
