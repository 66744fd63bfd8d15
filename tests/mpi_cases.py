"""The training cases tests/test_mpi.py runs under MPI (tests/mpi/worker.py) and in one process."""
import numpy as np

import fastae

_BASE = dict(hidden_layer_sizes=(16, 4), epochs=2, batch_size=32, random_state=7, n_threads=1, verbose=0)

CASES = {
    # 203 rows: uneven shards on 2 and 3 ranks, and a partial last batch
    "plain": dict(rows=203, params=_BASE),
    # validation data, sample weights, dropout and input noise (keyed by the global row), a
    # learning-rate schedule and early stopping on the global val_loss
    "options": dict(rows=203, weights=True, validation=True,
                    params=dict(_BASE, dropout=0.2, noise="gaussian", noise_level=0.1, lr_schedule="step",
                                lr_decay_steps=1, lr_decay_rate=0.5, early_stopping=True, patience=1, epochs=3)),
    # validation_split over the global rows; the sparsity KL (whole-batch mean activations); no shuffle
    "split_sparse": dict(rows=150, params=dict(_BASE, validation_split=0.2, shuffle=False,
                                              activation=["relu", "sigmoid"], sparsity_target=0.1,
                                              sparsity_weight=0.5)),
    # three partial_fit calls (one epoch each) with validation_split and early stopping's bookkeeping
    "partial_fit": dict(rows=150, partial=3, params=dict(_BASE, validation_split=0.2, early_stopping=True,
                                                         patience=2)),
    # a supervised model: labels of three classes, the last rank's shard holding only two of them
    # (every rank must still build the three-class output layer), with validation data
    "classifier": dict(rows=203, estimator="MLPClassifier", validation=True, params=_BASE),
}


def make(case):
    """The case's estimator, unfitted."""
    return getattr(fastae, case.get("estimator", "Autoencoder"))(**case["params"])


def targets_of(case):
    """(y, y_val) of a supervised case (None, None otherwise): class k of row i is i % 3 for the
    first 100 rows and i % 2 after them."""
    if "estimator" not in case:
        return None, None
    rows = np.arange(case["rows"])
    y = np.where(rows < 100, rows % 3, rows % 2)
    return y, np.arange(37) % 3


def fit(est, case, X, y=None, **kwargs):
    """fit, or `partial` calls of partial_fit (y: a supervised case's targets)."""
    args = (X,) if y is None else (X, y)
    for _ in range(case.get("partial", 0)):
        est.partial_fit(*args, **kwargs)
    return est if case.get("partial") else est.fit(*args, **kwargs)


def data_of(case):
    rng = np.random.default_rng(11)
    X = rng.random((case["rows"], 10), dtype=np.float32)
    w = rng.random(case["rows"]).astype(np.float32) + 0.5 if case.get("weights") else None
    X_val = rng.random((37, 10), dtype=np.float32) if case.get("validation") else None
    return X, w, X_val
