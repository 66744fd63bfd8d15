// fastae/config.h -- what a network is made of and how it is trained: plain structs and enums,
// with the string names Python and model files use. Standard library only.
#pragma once

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "fastae/vocabulary.h"

namespace fastae {

// The network as a list of layer specs (any number of dense layers, each with its own options)
// and one output head. Widths, activations and options are checked by Model's constructor
// (std::invalid_argument naming the field).
struct ActivationSpec {
    Activation kind = Activation::relu;
    // leaky_relu: the slope for z < 0 (>= 0; torch's negative_slope). elu: alpha (> 0). Unused
    // by the others. default_alpha(kind) gives the Python defaults (0.01 and 1).
    double alpha = 0.0;
};
double default_alpha(Activation kind);
inline ActivationSpec activation_spec(Activation kind) { return {kind, default_alpha(kind)}; }

struct LayerSpec {
    int units = 0;                 // output width
    ActivationSpec activation;     // the last layer's is the output activation
    Initializer initializer = Initializer::glorot_uniform;
    // Penalties on this layer's W (not its bias), added to every batch's loss as Keras' kernel
    // regularizers do: l1 * sum |W| + l2 * sum W^2 (gradient l1 * sign(W) + 2 l2 W).
    double l1 = 0.0;
    double l2 = 0.0;
    // Inverted dropout on this layer's output (hidden layers only), training only: each output
    // is kept with probability 1 - dropout and then divided by it. The mask of a sample depends
    // only on (seed, epoch, dataset row, layer, unit), never on threads or batch position.
    double dropout = 0.0;
    // Noise on this layer's input, training only (the first layer's: a denoising autoencoder,
    // whose targets stay the clean inputs): gaussian adds noise_level * N(0, 1), masking sets
    // each input to 0 with probability noise_level. Drawn per dataset row, as dropout.
    Noise noise = Noise::none;
    double noise_level = 0.0;
    // Penalties on this layer's output h (a hidden layer's: the code, for sparse codes), added to
    // every batch's loss:
    //   activity_l1 * (sum over the batch of |h|) / batch samples   (Keras' activity regularizer)
    //   sparsity_weight * sum_j KL(sparsity_target || mean over the batch of h_j)
    //     KL(p || q) = p log(p / q) + (1 - p) log((1 - p) / (1 - q)); a sigmoid layer; the mean is
    //     the whole batch's, reduced over every thread's shard before the backward pass
    double activity_l1 = 0.0;
    double sparsity_target = 0.0;  // in (0, 1) when sparsity_weight > 0
    double sparsity_weight = 0.0;
    // The contractive penalty on this layer's output h with respect to the network's input x
    // (the first layer only, a sigmoid or tanh hidden layer: a contractive autoencoder's code):
    //   contractive * ||dh/dx||_F^2 summed over the batch / batch samples, where for one sample
    //   ||dh/dx||_F^2 = sum_j f'(z_j)^2 * sum_i W_ji^2 (closed form; h before dropout).
    double contractive = 0.0;
    // Tied weights: -1, the layer owns its W; k >= 0, an earlier layer whose W this layer uses
    // transposed (W = W_k^T: this layer's n_in is layer k's n_out and its n_out layer k's n_in;
    // a tied autoencoder's decoder). The layer then owns only its bias in the flat buffer; its
    // weight gradient is added to layer k's. A layer is tied to by at most one other; a tied
    // layer's l1 and l2 must be 0 (its W is penalised, once, by layer k's).
    int tied_to = -1;
    // false: a frozen layer. Its parameters get no gradient (its dW and db products are skipped,
    // and backward stops below the lowest trainable layer), no penalty and no update. A tied
    // layer and the layer it is tied to must agree.
    bool trainable = true;
};

// The loss on the output layer's activation (the pairing rules are in vocabulary.h's table).
struct HeadSpec {
    Loss loss = Loss::bce;
    double huber_delta = 1.0;  // huber: quadratic below delta, linear above (torch.nn.HuberLoss)
};

// A variational code (a VAE; src/vae.h has the formulas): the code layer is linear with 2k units,
// the means mu (its first k outputs) and log-variances (the last k, clamped to
// [kLogVarMin, kLogVarMax]); the next layer reads z = mu + exp(logvar / 2) * eps with eps ~ N(0, 1)
// drawn per (seed, epoch, dataset row) in training, and z = mu in inference. The objective is the
// reconstruction loss summed over the outputs plus beta_e * KL(N(mu, sigma^2) || N(0, 1)), per
// sample (times its weight), averaged over the batch; beta_e = beta * min(1, e / kl_warmup_epochs)
// in 1-based epoch e (beta when kl_warmup_epochs is 0).
struct VariationalSpec {
    bool enabled = false;
    double beta = 1.0;        // finite, >= 0
    int kl_warmup_epochs = 0; // >= 0
};
constexpr double kLogVarMin = -30.0, kLogVarMax = 20.0;

struct NetworkSpec {
    int n_inputs = 0;
    std::vector<LayerSpec> layers;  // at least one
    HeadSpec head;
    // The layer whose output is the code (encode/decode split there); -1: the middle, layer
    // max(1, layers.size() / 2) - 1 (an autoencoder's code). Model::spec() holds it resolved.
    int code_layer = -1;
    VariationalSpec variational;  // enabled: the code layer is a Gaussian's (mu, logvar)
};

// The shape of a network by its widths: layer_sizes = {n_features, h1, ..., code, ..., h1,
// n_features} for an autoencoder (any sequence of >= 2 widths for a plain MLP). Every layer but
// the last uses `activation`; the last uses `output_activation`. A convenience that builds a
// NetworkSpec (to_spec); Model takes either.
//
// Loss is the mean over all n * d_out elements (as Keras reports it):
//   mse: mean((y - x)^2)
//   bce: mean(max(z, 0) - z * x + log(1 + exp(-|z|))) computed from the output logits z,
//        which requires output_activation == sigmoid (checked); dL/dz = (sigmoid(z) - x) / N.
// (the other losses: vocabulary.h and src/head.h)
struct NetworkConfig {
    std::vector<int> layer_sizes;
    Activation activation = Activation::relu;
    Activation output_activation = Activation::sigmoid;
    Loss loss = Loss::bce;
};
NetworkSpec to_spec(const NetworkConfig& config);

// Optimizer settings. The exact update rules are written in src/optimizer.h. Each field is used
// by the rules named beside it and ignored by the others (validate checks the kind's own fields;
// a model file holds every field and requires each to be finite).
struct OptimizerConfig {
    OptimizerKind kind = OptimizerKind::adam;
    double learning_rate = 1e-3;
    double beta1 = 0.9;          // adam, adamw
    double beta2 = 0.999;        // adam, adamw
    double epsilon = 1e-8;       // adam, adamw, rmsprop
    double momentum = 0.0;       // sgd
    bool nesterov = false;       // sgd (requires momentum > 0)
    double weight_decay = 0.01;  // adamw (decoupled, as torch.optim.AdamW)
    double rho = 0.9;            // rmsprop (torch.optim.RMSprop's alpha)
};

// An optimizer's state after some steps, so training can resume exactly where it stopped.
// The slots are flat buffers in the parameters' layout, named as torch names them
// (optimizer_slot_names): m is the first, v the second (empty for one-slot rules):
//   adam, adamw: m = exp_avg, v = exp_avg_sq;  sgd: m = momentum_buffer;  rmsprop: m = square_avg.
// steps is the number of updates applied (Adam's t).
struct OptimizerState {
    OptimizerConfig config;
    std::int64_t steps = 0;
    std::vector<float> m;
    std::vector<float> v;
};

// One line of training history, passed to the per-epoch callback.
struct EpochReport {
    int epoch = 0;             // 1-based
    double loss = 0.0;         // mean training loss over the epoch (sample-weighted), penalties included
    double val_loss = 0.0;     // loss on the validation data after the epoch (no penalties)
    bool has_val_loss = false;
    double seconds = 0.0;      // wall time of the epoch (training and validation)
    double lr = 0.0;           // the learning rate used in this epoch
    // Whether this epoch improved the monitored loss (val_loss, else loss) on the best so far by
    // more than TrainOptions::min_delta: the last such epoch is the best one.
    bool improved = false;
    // Parts of the loss beyond the data term, each an epoch mean as `loss` is: for instance
    // {"penalty", ...} when a layer has l1 or l2. Empty when there are none.
    std::vector<std::pair<std::string, double>> metrics;
};

// Where training stands, for a progress display (TrainOptions::on_progress).
struct Progress {
    int epoch = 0;              // 1-based
    std::size_t step = 0;       // steps done in this epoch
    std::size_t steps = 0;      // steps of the epoch
    std::size_t samples = 0;    // samples done in this epoch
    double loss = 0.0;          // mean loss of the epoch's steps so far
    double seconds = 0.0;       // since the epoch started
};

// Data-parallel training across processes (MPI, fastae.distributed): the dataset's rows are cut
// into contiguous blocks in rank order, one per process, each holding its block as its
// TrainingData. Every process shuffles the global row numbers with the same seed and, for each
// global batch, computes the rows of it that it holds (Batch::global_size = the whole batch), so
// R processes visit the batches one process would. `sum` is the host's allreduce; the epoch loop
// calls it, in the same order on every process, for each step's loss and stop flags and then the
// flat gradient, for each epoch's validation sums and callback decision, and for the whole-batch
// statistics (the sparsity KL's mean activation). A process that fails announces it in the next
// sum, and every other process then throws PeerFailed there: no process waits for a partner that
// is gone. validation_split holds out a seeded subset of the global rows.
struct ProcessGroup {
    std::size_t global_rows = 0;  // rows of the whole dataset; 0: this process trains alone
    std::size_t row_offset = 0;   // the dataset row of this process's first row
    bool lead = true;             // exactly one process (rank 0) counts the whole-batch terms' value
    // Sums values[0..n) and figures[0..n_figures) elementwise across the processes, in place, with
    // the same result on every process (MPI_Allreduce); either array may be empty.
    std::function<void(float* values, std::size_t n, double* figures, std::size_t n_figures)> sum;
};

// How the shards of a step run when n_threads > 1. automatic: the team, or the calling thread
// alone when that measures faster as training goes (a core busy with another process makes a
// fork/join wait for the OS). team: always the team. solo: every shard on the calling thread, one
// after another: the same work and the same bits as the team's, on one core (what T shards cost
// in all, for benchmarks/scaling_model.py; or a machine known to be busy).
enum class ThreadMode { automatic, team, solo };

struct TrainOptions {
    int epochs = 10;
    int batch_size = 256;
    bool shuffle = true;
    std::uint64_t seed = 0;    // drives the per-epoch shuffles, the dropout masks and validation_split
    // Threads that split each batch (1 = the calling thread only). fastae::available_cpus()
    // (cpus.h) is what the process can keep busy: its CPUs, capped by a container's CPU limit.
    int n_threads = 1;
    ThreadMode thread_mode = ThreadMode::automatic;
    // false: a fresh optimizer state (zero moments, t = 0). true: continue from the model's
    // saved state (Model::optimizer_state) when it is of the same optimizer kind, with the
    // hyperparameters given to fit; a fresh state otherwise.
    bool resume_optimizer = false;
    // The model's epochs before this fit (partial_fit's count): epochs are numbered from it in
    // reports and schedules (the first epoch of this fit is initial_epoch + 1), and the shuffles
    // are drawn from seed + initial_epoch * 0x9E3779B97F4A7C15 (mod 2^64).
    int initial_epoch = 0;

    // Held-out validation (when fit is given no validation data): this fraction of the rows, in
    // [0, 1), chosen by a shuffle seeded with `seed` (not the last rows), never trained on.
    double validation_split = 0.0;

    // Early stopping on the monitored loss (val_loss, or the training loss without validation):
    // training stops once `patience` epochs in a row have not improved the best by more than
    // min_delta; with restore_best_weights the model ends with the best epoch's exact weights.
    bool early_stopping = false;
    int patience = 10;
    double min_delta = 0.0;
    bool restore_best_weights = true;

    // The learning rate per epoch (vocabulary.h: FASTAE_LR_SCHEDULES), from the optimizer's rate.
    LrSchedule lr_schedule = LrSchedule::none;
    double lr_decay_rate = 0.1;  // step, exponential, plateau: the factor; (0, 1]
    int lr_decay_steps = 10;     // step, exponential, cosine: epochs; >= 1
    double lr_min = 0.0;         // every schedule's floor; >= 0
    int lr_patience = 5;         // plateau: epochs without improvement before a cut; >= 1
    // If set, overrides lr_schedule: called at the start of each epoch with the 0-based epoch
    // (initial_epoch counted) and the rate in force; returns the epoch's rate (finite, >= 0).
    std::function<double(int, double)> lr_function;
    // The rate in force when this fit starts (0: the optimizer's learning_rate): a previous fit's
    // last rate, so that plateau and lr_function continue across partial_fit calls.
    double lr_in_force = 0.0;

    // Clip the gradient (penalties included) to this global L2 norm before each update; 0: off.
    double clipnorm = 0.0;
    // A wall-clock budget in seconds: training stops after the step that crosses it; 0: none.
    double max_time = 0.0;

    // Called after every epoch; return false to stop training after that epoch.
    std::function<bool(const EpochReport&)> on_epoch;
    // Called during an epoch at most every progress_interval seconds (and after its last step),
    // for a progress display. It never changes what is computed.
    std::function<void(const Progress&)> on_progress;
    double progress_interval = 0.1;
    // Polled between batches; return true to stop at once (the model keeps the weights of the
    // last completed step). Used for Ctrl-C; keep it cheap.
    std::function<bool()> should_stop;
    // Data-parallel training across processes; by default this process alone.
    ProcessGroup processes;
};

// What a model trains on. Row-major buffers (layout.h), read in place, never copied whole.
struct TrainingData {
    std::size_t n = 0;
    const float* x = nullptr;             // (n, n_inputs), or:
    const std::uint8_t* x_u8 = nullptr;   // (n, n_inputs) 8-bit values, read as x_u8[i] * scale, or:
    // a CSR matrix (SciPy's csr_matrix layout): row i's nonzeros are csr_values[k] at column
    // csr_indices[k] for k in [csr_indptr[i], csr_indptr[i + 1]) (duplicates add up). Each batch's
    // rows are expanded into the dense batch buffer, never the whole matrix. Training data only
    // (validation data is dense).
    const std::int64_t* csr_indptr = nullptr;   // n + 1 offsets, csr_indptr[0] == 0, non-decreasing
    const std::int32_t* csr_indices = nullptr;  // column of each nonzero, in [0, n_inputs)
    const float* csr_values = nullptr;          // value of each nonzero
    float scale = 1.0f;
    const float* y = nullptr;             // (n, n_outputs) targets; null: the inputs (autoencoder)
    const float* sample_weight = nullptr; // (n) finite, >= 0; null: every sample weighs 1. A
                                          // sample's loss is multiplied by its weight; a batch's
                                          // loss is still the mean over its samples (as Keras)
};

// How a call to fit ended.
enum class StopReason { completed, callback, interrupted, early_stopping, max_time };

// Thrown from a host's callback (TrainOptions::lr_function, on_progress, on_epoch) to end
// training at once: fit rethrows it after keeping the weights of the last completed step.
class TrainingStopped : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Thrown on every other process of a ProcessGroup when one process failed (it throws its own
// error); the host exchanges the message itself.
class PeerFailed : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Thrown by Model::fit when the loss or the weights become NaN or infinite. Training stops at
// that step and the model keeps the weights of the last finite step.
class TrainingDiverged : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

}  // namespace fastae
