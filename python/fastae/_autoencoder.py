"""fastae.Autoencoder: a scikit-learn estimator over the C++ engine (fastae._core).

What every estimator on the engine shares (parameters, input checks, the training driver,
weights; model files and pickling from _persistence.py) is in _base.py; this file holds what is
the autoencoder's own: its parameters, its mirrored network, and its methods.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
from numpy.typing import ArrayLike

from . import _core
from ._arrays import (
    check_array,
    check_sample_weight,
    check_sparse,
    dataframe_to_array,
    densify_all,
    is_dataframe,
    is_sparse,
)
from ._base import _LAYER_OPTION_CHECKS, _feature_names_out, _NetworkEstimator
from ._compat import TransformerMixin, tags_with
from ._engine_input import engine_errors
from ._params import (
    ACTIVATIONS,
    LOSSES,
    Boolean,
    Check,
    Options,
    Real,
    check_bool,
    check_hidden_layer_sizes,
    check_noise,
    check_output_and_loss,
    resolve_head,
)


class Autoencoder(TransformerMixin, _NetworkEstimator):
    """A dense autoencoder trained on the CPU by fastae's C++ engine.

    The encoder has the widths in ``hidden_layer_sizes`` (the last is the code size) and the
    decoder mirrors them: ``(256, 64)`` on 784 features is 784-256-64-256-784. The hidden layers
    use ``activation``; the output uses ``output_activation``.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default (64,)
    activation : str or list of str, default "relu"
        "relu", "leaky_relu" (slope ``leaky_relu_slope``), "elu" (alpha 1), "gelu" (the exact erf
        form, as torch.nn.GELU()), "tanh", "sigmoid", "softplus" or "linear"; or one name per
        encoder layer, mirrored in the decoder: with ``hidden_layer_sizes=(256, 64)`` and
        ``activation=["tanh", "elu"]`` the layers 784-256-64-256-784 use tanh, elu, tanh, then
        ``output_activation`` (a decoder layer takes the activation of the encoder layer of the
        same width).
    output_activation : str, default "auto"
        Any of the above, or "softmax" (with ``loss="cross_entropy"`` only). "auto": the output
        the loss requires (bce: sigmoid, cross_entropy: softmax), else "sigmoid" when the
        training data lie in [0, 1] and "linear" otherwise; ``output_activation_`` records it.
    loss : {"auto", "bce", "mse", "mae", "huber", "cross_entropy"}, default "auto"
        "auto" chooses at fit from the training data: "bce" when they lie in [0, 1] (pixels
        scaled to [0, 1], min-max scaled features), else "mse" (standardized features, any real
        data); ``loss_function_`` records it. So the defaults train data in [0, 1] as bce on a
        sigmoid output and other data as mse on a linear output. partial_fit on a fitted
        estimator keeps the network's choice; set_weights on an unfitted estimator takes the
        [0, 1] choice. The losses are
        means over all elements (cross_entropy: over samples), as Keras reports them. "bce" is
        computed from the logits (stable, fused with the sigmoid) and needs
        ``output_activation="sigmoid"`` and data in [0, 1]; "huber" is torch.nn.HuberLoss with
        ``huber_delta``; "cross_entropy" is fused with a softmax output and needs rows that are
        probability vectors.
    optimizer : {"adam", "adamw", "sgd", "rmsprop"}, default "adam"
        Exactly torch.optim's Adam, AdamW (decoupled ``weight_decay``), SGD (``momentum``,
        ``nesterov``) and RMSprop (``rho`` as its alpha, ``epsilon``; no momentum, not centered).
    learning_rate : float, default 1e-3
    batch_size : int, default 256
        The last, partial batch of an epoch is used too.
    epochs : int, default 10
    shuffle : bool, default True
        Reshuffle the samples every epoch (seeded by ``random_state``).
    random_state : None, int, numpy RandomState or Generator, default None
        The same int gives bit-identical weights after training for the same n_threads
        (however the threads happen to be scheduled).
    n_threads : None or int, default None
        Shards each batch is split into, and the most threads used. None or -1: every CPU
        available to this process. Each training step runs on all of them or on one, whichever
        is measured faster (a core kept busy by another process makes one thread faster).
        Training results depend on n_threads only through the order of floating-point sums:
        set it explicitly to reproduce a run bit for bit on machines with other CPU counts.
        Inference (transform, inverse_transform, predict, the scores) shares its chunks of 256
        samples among as many threads; its results are identical whatever n_threads.
    warm_start : bool, default False
        If True, ``fit`` starts from the current weights (for instance from ``set_weights`` or
        ``fastae.load``) with a fresh optimizer state, or, with ``fit(X, resume_optimizer=True)``,
        with the optimizer state the last fit left (Adam's moments and step count).
    verbose : {0, 1, 2}, default 0
        1 shows a live progress bar per epoch (steps, running loss, samples/s, ETA; tqdm's when
        it is installed), or a line per epoch when the output is not a terminal; 2 prints one
        line per epoch.
    beta_1, beta_2, epsilon : float
        Adam's and AdamW's parameters (defaults 0.9, 0.999, 1e-8, as torch.optim.Adam); epsilon is
        RMSprop's too.
    momentum : float, default 0.9
        SGD momentum.
    nesterov : bool, default True
        SGD Nesterov momentum.
    input_scale : None or float, default None
        If set, every X given to the estimator (fit, partial_fit, validation_data, transform,
        predict, score, ...) is multiplied by it first: ``input_scale=1/255`` trains on 8-bit
        images directly. A C-contiguous uint8 X is then used in place by fit, scaled batch by
        batch inside the engine, so MNIST occupies 47 MB instead of the 188 MB of a float32
        copy (validation_data must then be uint8 too). Other inputs are converted once.

    tied_weights : bool, default False
        Each decoder layer uses the transpose of its mirror encoder layer's W (its own bias): half
        the weights. The gradient of a shared W is the sum of both uses; l1 and l2 count it once.
        Needs the mirrored decoder (decoder_layer_sizes None or the mirror). ``get_weights`` gives
        a tied layer's W as a copy of the transpose; ``set_weights`` takes it as None or exactly
        that transpose. The model file records the tie.
    contractive : float, default 0.0
        The contractive autoencoder's penalty: ``contractive`` times the squared Frobenius norm of
        the code's Jacobian with respect to the input, ``sum_j f'(z_j)^2 sum_i W_ij^2`` per sample
        (closed form), averaged over the batch. For a one-hidden-layer encoder
        (``hidden_layer_sizes=(k,)``) with a sigmoid or tanh code; computed on the code before
        dropout, at the noisy input when ``noise`` is set.

    Attributes
    ----------
    n_features_in_ : int
    feature_names_in_ : ndarray of str, the column names of the data frame fit was given (only
        then); later inputs that are data frames must have the same columns in the same order
    loss_function_, output_activation_ : str, the loss and output activation of the network (what
        "auto" resolved to)
    history_ : dict with "loss" (and "val_loss" with validation data), "lr" and "seconds" per
        epoch
    n_iter_ : int, epochs run by the last fit
    loss_ : float, training loss of the last epoch
    best_epoch_, best_loss_ : the epoch (1-based, as ``history_`` counts) with the best monitored loss
        (val_loss, else loss) and that loss; with early_stopping and restore_best_weights the
        model holds that epoch's weights
    stop_reason_ : str, why the last fit ended: "completed", "early_stopping", "max_time",
        "callback" (one returned False or raised), "interrupted" (Ctrl-C) or "diverged"

    Inputs: NumPy arrays (any real dtype; float32 C-contiguous arrays are used without a copy),
    array-likes, data frames (pandas: nullable columns' missing values are reported as NaN, by
    row and column) and SciPy sparse matrices (densified to float32 for fit, chunk by chunk for
    the other methods). Outputs are float32.

    scikit-learn: when it is installed this is a scikit-learn transformer (``BaseEstimator``,
    ``TransformerMixin``): ``Pipeline`` (``transform`` gives the codes; ``predict``, ``score``,
    ``score_samples`` and ``inverse_transform`` pass through), ``GridSearchCV`` and
    ``cross_val_score`` (with ``score``), ``clone``, ``set_output(transform="pandas")`` and
    ``get_feature_names_out()`` (``code0``, ``code1``, ...). Without it, fastae needs NumPy only.

    Saving: ``ae.save(path)`` writes fastae's model file (weights, optimizer state,
    hyperparameters); ``fastae.load(path)`` reads it back, also in C++ (``fastae::load_model``).
    ``pickle``, ``copy.deepcopy`` and ``joblib`` round-trip exactly.
    """


    _ESTIMATOR_NAME = "fastae.Autoencoder"

    _param_checks = {
        **_NetworkEstimator._param_checks,
        "output_activation": Options(ACTIVATIONS + ("auto",)),
        "loss": Options(LOSSES + ("auto",)),
        "huber_delta": Real(0.0),
        **_LAYER_OPTION_CHECKS,
        "noise": Check(check_noise),
        "noise_level": Real(0.0, low_open=False),
        "activity_l1": Real(0.0, low_open=False),
        "sparsity_target": Real(0.0, 1.0, optional=True),
        "sparsity_weight": Real(0.0, low_open=False),
        "decoder_layer_sizes": Check(
            lambda v: None if v is None else check_hidden_layer_sizes(v, "decoder_layer_sizes", allow_empty=True)),
        "tied_weights": Boolean(),
        "contractive": Real(0.0, low_open=False),
    }

    def __init__(self, hidden_layer_sizes=(64,), activation="relu", output_activation="auto", loss="auto",
                 optimizer="adam", learning_rate=1e-3, batch_size=256, epochs=10, shuffle=True, random_state=None,
                 n_threads=None, warm_start=False, verbose=0, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 momentum=0.9, nesterov=True, input_scale=None, kernel_initializer="glorot_uniform",
                 leaky_relu_slope=0.01, huber_delta=1.0, weight_decay=0.01, rho=0.9, validation_split=0.0,
                 early_stopping=False, patience=10, min_delta=0.0, restore_best_weights=True, lr_schedule=None,
                 lr_decay_rate=0.1, lr_decay_steps=10, lr_min=0.0, lr_patience=5, clipnorm=None, callbacks=None,
                 max_time=None, l1=0.0, l2=0.0, dropout=0.0, noise=None, noise_level=0.1, activity_l1=0.0,
                 sparsity_target=None, sparsity_weight=1.0, decoder_layer_sizes=None, tied_weights=False,
                 contractive=0.0):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.output_activation = output_activation
        self.loss = loss
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.epochs = epochs
        self.shuffle = shuffle
        self.random_state = random_state
        self.n_threads = n_threads
        self.warm_start = warm_start
        self.verbose = verbose
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.momentum = momentum
        self.nesterov = nesterov
        self.input_scale = input_scale
        self.kernel_initializer = kernel_initializer
        self.leaky_relu_slope = leaky_relu_slope
        self.huber_delta = huber_delta
        self.weight_decay = weight_decay
        self.rho = rho
        self.validation_split = validation_split
        self.early_stopping = early_stopping
        self.patience = patience
        self.min_delta = min_delta
        self.restore_best_weights = restore_best_weights
        self.lr_schedule = lr_schedule
        self.lr_decay_rate = lr_decay_rate
        self.lr_decay_steps = lr_decay_steps
        self.lr_min = lr_min
        self.lr_patience = lr_patience
        self.clipnorm = clipnorm
        self.callbacks = callbacks
        self.max_time = max_time
        self.l1 = l1
        self.l2 = l2
        self.dropout = dropout
        self.noise = noise
        self.noise_level = noise_level
        self.activity_l1 = activity_l1
        self.sparsity_target = sparsity_target
        self.sparsity_weight = sparsity_weight
        self.decoder_layer_sizes = decoder_layer_sizes
        self.tied_weights = tied_weights
        self.contractive = contractive

    def _check_param_combinations(self, p):
        super()._check_param_combinations(p)
        check_output_and_loss(p["output_activation"], p["loss"])
        if p["noise"] == "masking" and not p["noise_level"] < 1.0:
            raise ValueError(f"noise='masking' sets a fraction noise_level of the inputs to 0: noise_level must be in "
                             f"[0, 1); got noise_level={p['noise_level']!r}")
        code_activation = p["activation"][-1]
        if p["sparsity_target"] is not None and code_activation != "sigmoid":
            raise ValueError(f"sparsity_target needs a sigmoid code layer (its outputs are activation rates): the "
                             f"activation of the code (the last of activation) is {code_activation!r}; got "
                             f"sparsity_target={p['sparsity_target']!r} with activation={self.activation!r}")
        decoder = p["decoder_layer_sizes"]
        mirror = tuple(p["hidden_layer_sizes"][-2::-1])
        if p["tied_weights"] and decoder is not None and tuple(decoder) != mirror:
            raise ValueError(f"tied_weights=True uses each encoder layer's W transposed in the mirror decoder layer, "
                             f"so the decoder must mirror the encoder: decoder_layer_sizes={decoder!r} is not "
                             f"{mirror!r} (hidden_layer_sizes={p['hidden_layer_sizes']!r} reversed, code left out)")
        if p["contractive"] > 0.0 and len(p["hidden_layer_sizes"]) != 1:
            raise ValueError(f"contractive (the code's Jacobian penalty, in closed form) needs a one-hidden-layer "
                             f"encoder: hidden_layer_sizes={p['hidden_layer_sizes']!r} has "
                             f"{len(p['hidden_layer_sizes'])} layers; got contractive={p['contractive']!r}")
        if p["contractive"] > 0.0 and code_activation not in ("sigmoid", "tanh"):
            raise ValueError(f"contractive needs a sigmoid or tanh code layer: the activation of the code is "
                             f"{code_activation!r}; got contractive={p['contractive']!r} with "
                             f"activation={self.activation!r}")
        if decoder is not None and not isinstance(self.activation, str) and len(decoder) != len(p["activation"]) - 1:
            raise ValueError(f"activation gives one name per encoder layer, which the decoder mirrors; "
                             f"decoder_layer_sizes={decoder!r} has {len(decoder)} layers where the mirror has "
                             f"{len(p['activation']) - 1}: give one activation name, or a decoder of that depth")

    def __sklearn_tags__(self):
        # Codes and reconstructions are float32 whatever the input's dtype.
        return tags_with(super().__sklearn_tags__(), preserves_dtype=["float32"])

    def _more_tags(self):  # scikit-learn < 1.6
        return {"preserves_dtype": [np.float32]}

    # ---- the network -------------------------------------------------------------------------

    @staticmethod
    def _network_spec(n_features, p):
        """The engine's network spec (_core.Model.spec()) for these hyperparameters (loss and
        output_activation resolved): the encoder's layers, the mirrored decoder (each decoder
        layer has the width and the activation of the encoder layer it mirrors), then the output
        layer."""
        hidden, acts = p["hidden_layer_sizes"], p["activation"]
        decoder = p.get("decoder_layer_sizes")
        if decoder is None:  # the mirror
            decoder, decoder_acts = hidden[-2::-1], acts[-2::-1]
        else:
            decoder_acts = acts[-2::-1] if len(set(acts)) > 1 else [acts[0]] * len(decoder)
        code = len(hidden) - 1
        n_layers = len(hidden) + len(decoder) + 1
        tied = bool(p.get("tied_weights"))

        def layer(i, units, activation):
            alpha = p["leaky_relu_slope"] if activation == "leaky_relu" else \
                _core.ACTIVATION_TRAITS[activation]["default_alpha"]
            hidden_layer = i < len(hidden) + len(decoder)
            sparse = i == code and p.get("sparsity_target") is not None
            tied_to = n_layers - 1 - i if tied and i > code else -1  # the decoder uses its mirror's W^T
            return {"units": units, "activation": activation, "alpha": alpha, "initializer": p["kernel_initializer"],
                    # a tied W is penalised once, by its encoder layer
                    "l1": p.get("l1", 0.0) if tied_to < 0 else 0.0, "l2": p.get("l2", 0.0) if tied_to < 0 else 0.0,
                    "dropout": p.get("dropout", 0.0) if hidden_layer else 0.0,
                    "noise": (p.get("noise") or "none") if i == 0 else "none",
                    "noise_level": p.get("noise_level", 0.0) if i == 0 and p.get("noise") else 0.0,
                    "activity_l1": p.get("activity_l1", 0.0) if i == code else 0.0,
                    "sparsity_target": p["sparsity_target"] if sparse else 0.0,
                    "sparsity_weight": p["sparsity_weight"] if sparse else 0.0,
                    "contractive": p.get("contractive", 0.0) if i == 0 else 0.0,
                    "tied_to": tied_to, "trainable": True}

        shape = [*zip(hidden, acts), *zip(decoder, decoder_acts), (n_features, p["output_activation"])]
        layers = [layer(i, units, activation) for i, (units, activation) in enumerate(shape)]
        return {"n_inputs": n_features, "code_layer": code, "loss": p["loss"],
                "huber_delta": p["huber_delta"], "layers": layers}

    @staticmethod
    def _params_of_network(spec, sizes):
        """The hyperparameters that describe a network read from a file without the estimator's
        metadata (one saved from C++); ModelFileError when no Autoencoder describes it. A head
        that "auto" gives (bce on a sigmoid, mse on a linear output) keeps the defaults."""
        layers = spec["layers"]
        n_layers = len(layers)
        hidden = tuple(sizes[1:n_layers // 2 + 1])
        acts = [layer["activation"] for layer in layers[:n_layers // 2]]
        if n_layers % 2 or sizes != [sizes[0], *hidden, *reversed(hidden[:-1]), sizes[0]] or \
                spec["code_layer"] not in (-1, len(hidden) - 1):
            raise _core.ModelFileError(f"model file: its network (layer sizes {sizes}) is not a mirrored autoencoder, "
                                       "so fastae.Autoencoder cannot hold it (load it in C++ with fastae::load_model)")
        head = (spec["loss"], layers[-1]["activation"])
        if head in (resolve_head("auto", "auto", True), resolve_head("auto", "auto", False)):
            head = ("auto", "auto")
        params = {"hidden_layer_sizes": hidden, "activation": acts[0] if len(set(acts)) == 1 else acts,
                  "output_activation": head[1], "loss": head[0],
                  "huber_delta": spec["huber_delta"], "kernel_initializer": layers[0]["initializer"]}
        ties = [layer["tied_to"] for layer in layers]
        if any(t >= 0 for t in ties):
            if ties != [-1] * (n_layers // 2) + [n_layers // 2 - 1 - j for j in range(n_layers // 2)]:
                raise _core.ModelFileError(f"model file: its decoder's tied weights ({ties}) are not the mirror of "
                                           "its encoder's, so fastae.Autoencoder cannot hold it")
            params["tied_weights"] = True
        if layers[0]["contractive"] > 0.0:
            params["contractive"] = layers[0]["contractive"]
        slopes = [layer["alpha"] for layer in layers if layer["activation"] == "leaky_relu"]
        if slopes:
            params["leaky_relu_slope"] = slopes[0]
        return params

    # ---- training --------------------------------------------------------------------------

    def fit(self, X: ArrayLike, y: Any = None, validation_data: Any = None, *,
            sample_weight: Optional[ArrayLike] = None, resume_optimizer: bool = False, comm: Any = None) -> Autoencoder:
        """Trains on X (n_samples, n_features) to reconstruct X; y is ignored (scikit-learn's
        convention for unsupervised estimators). validation_data: X_val, or (X_val,),
        (X_val, X_val) or (X_val, X_val, val_sample_weight) as Keras takes it; its loss is
        reported per epoch in ``history_["val_loss"]``.

        X: an array-like, a data frame (its column names become ``feature_names_in_``) or a SciPy
        sparse matrix (densified to float32 once, a few thousand rows at a time). With
        loss="auto" (the default) the loss and the output are chosen from X's range.

        sample_weight: None, or one weight >= 0 per sample (not all zero): each sample's loss is
        multiplied by its weight and a batch's loss is still the mean over its samples (as Keras
        does).

        Starts from new Glorot-uniform weights drawn from random_state, or with warm_start=True
        from the current weights with a fresh optimizer state.
        resume_optimizer=True (with warm_start=True on a fitted or loaded estimator) continues
        from the optimizer state the last fit left, Adam's moments and step count included, with
        the current hyperparameters: training goes on as if it had not stopped, except that the
        shuffles restart from random_state's stream. It raises ValueError when there is no state
        to resume (after set_weights, or a file saved with include_optimizer_state=False) or the
        state is of another optimizer. (partial_fit continues weights and state one epoch at a
        time.)

        The whole epoch loop runs in C++ with the GIL released. Ctrl-C raises KeyboardInterrupt
        within about 20 ms, after the current step; the model keeps the weights of the last
        completed step and ``history_`` the completed epochs. If the loss or the weights become NaN
        or infinite, training stops with fastae.TrainingDivergedError (a FloatingPointError) and
        the model keeps the weights of the last finite step. Other threads may use the estimator
        meanwhile: they get the previous model (or NotFittedError) until fit returns. Returns self.

        comm: an MPI communicator (mpi4py) for data-parallel training: X (and validation_data)
        are this rank's block of rows, as fastae.distributed.shard cuts them, and every rank ends
        with the weights one process would have on the whole data (fastae.distributed).
        """
        resume = check_bool("resume_optimizer", resume_optimizer)
        return self._train(X, validation_data, sample_weight, partial=False, resume=resume, comm=comm)

    def partial_fit(self, X: ArrayLike, y: Any = None, validation_data: Any = None, *,
                    sample_weight: Optional[ArrayLike] = None, comm: Any = None) -> Autoencoder:
        """One more epoch over X, continuing from the current weights AND optimizer state (Adam's
        moments and step count), so that successive calls train exactly as one longer fit
        would, up to the shuffles. On an unfitted estimator it starts as fit does (and "auto"
        resolves from this first X). ``history_`` and ``n_iter_`` grow by one epoch. comm: as
        fit's. Returns self."""
        return self._train(X, validation_data, sample_weight, partial=True, resume=True, comm=comm)

    def fit_transform(self, X: ArrayLike, y: Any = None, **fit_params: Any) -> np.ndarray:
        """fit(X) then transform(X)."""
        return self.fit(X, y, **fit_params).transform(X)

    # ---- using a fitted model --------------------------------------------------------------

    def transform(self, X: ArrayLike) -> np.ndarray:
        """Codes of X: the encoder's output, shape (n_samples, code size), float32 (a data
        frame with columns code0, code1, ... after set_output(transform="pandas"))."""
        return self._infer(lambda model, X, threads: model.encode(X, n_threads=threads), X)

    def encode(self, X: ArrayLike) -> np.ndarray:
        """The same as transform."""
        return self.transform(X)

    def get_feature_names_out(self, input_features: Optional[ArrayLike] = None) -> np.ndarray:
        """The names of transform's outputs: code0, code1, ... (input_features, if given, must
        match the names seen by fit)."""
        return _feature_names_out(self, "code", self._check_fitted().code_size, input_features)

    def inverse_transform(self, Z: ArrayLike) -> np.ndarray:
        """Decodes codes Z (n_samples, code size) into (n_samples, n_features)."""
        model = self._check_fitted()
        if is_sparse(Z):
            Z = densify_all(check_sparse(Z, "Z", model.code_size, type(self).__name__), "Z")
        elif is_dataframe(Z):
            Z = dataframe_to_array(Z, "Z")
        Z = check_array(Z, "Z", model.code_size, finite=False, owner=type(self).__name__)
        with engine_errors():
            return model.decode(Z, n_threads=self._inference_threads())

    def decode(self, Z: ArrayLike) -> np.ndarray:
        """The same as inverse_transform."""
        return self.inverse_transform(Z)

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Reconstruction of X: decode(encode(X)), in one pass."""
        return self._infer(lambda model, X, threads: model.predict(X, n_threads=threads), X)

    def reconstruct(self, X: ArrayLike) -> np.ndarray:
        """The same as predict."""
        return self.predict(X)

    def reconstruction_error(self, X: ArrayLike) -> np.ndarray:
        """Per-sample loss (the model's loss, mean over features), shape (n_samples,): the
        anomaly score of each sample (higher is more unusual)."""
        model = self._check_fitted()
        unit = model.loss if _core.LOSS_TRAITS[model.loss]["unit_targets"] else False
        return self._infer(lambda model, X, threads: model.sample_losses(X, n_threads=threads), X, unit_range=unit)

    def score_samples(self, X: ArrayLike) -> np.ndarray:
        """Minus the per-sample reconstruction loss (higher is more normal, as scikit-learn's
        outlier detectors score)."""
        return -self.reconstruction_error(X)

    def score(self, X: ArrayLike, y: Any = None, sample_weight: Optional[ArrayLike] = None) -> float:
        """Minus the mean reconstruction loss of X (higher is better; weighted by sample_weight
        if given): what GridSearchCV and cross_val_score maximise by default."""
        errors = self.reconstruction_error(X)
        if sample_weight is None:
            return -float(np.mean(errors, dtype=np.float64))
        weights = check_sample_weight(sample_weight, errors.shape[0])
        return -float(np.average(errors, weights=weights.astype(np.float64)))
