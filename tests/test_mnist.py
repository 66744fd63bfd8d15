"""End to end on the real MNIST when ../shared/data/mnist.npz exists (skipped otherwise): the
Keras tutorial's model trained 5 epochs reaches a test BCE below 0.10."""

import numpy as np

from fastae import Autoencoder


def test_tutorial_model_reaches_bce_below_0_10_in_5_epochs(mnist):
    x_train, x_test = mnist
    ae = Autoencoder(hidden_layer_sizes=(64,), activation="relu", output_activation="sigmoid", loss="bce",
                     optimizer="adam", learning_rate=1e-3, batch_size=256, epochs=5, shuffle=True, random_state=0)
    ae.fit(x_train, validation_data=x_test)
    test_bce = -ae.score(x_test)
    print(f"MNIST test BCE after 5 epochs: {test_bce:.5f}; s/epoch: {ae.history_['seconds']}")
    assert test_bce < 0.10
    assert ae.history_["val_loss"][-1] == test_bce or abs(ae.history_["val_loss"][-1] - test_bce) < 1e-6
    assert all(np.diff(ae.history_["loss"]) < 0)  # steadily learning
    codes = ae.transform(x_test)
    assert codes.shape == (10000, 64) and codes.min() >= 0  # relu codes
