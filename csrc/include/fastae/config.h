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
};

// The loss on the output layer's activation (the pairing rules are in vocabulary.h's table).
struct HeadSpec {
    Loss loss = Loss::bce;
    double huber_delta = 1.0;  // huber: quadratic below delta, linear above (torch.nn.HuberLoss)
};

struct NetworkSpec {
    int n_inputs = 0;
    std::vector<LayerSpec> layers;  // at least one
    HeadSpec head;
    // The layer whose output is the code (encode/decode split there); -1: the middle, layer
    // max(1, layers.size() / 2) - 1 (an autoencoder's code). Model::spec() holds it resolved.
    int code_layer = -1;
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
// by the rules named beside it and ignored (but still range-checked) by the others.
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
    // Parts of the loss beyond the data term, each an epoch mean as `loss` is: for instance
    // {"penalty", ...} when a layer has l1 or l2. Empty when there are none.
    std::vector<std::pair<std::string, double>> metrics;
};

struct TrainOptions {
    int epochs = 10;
    int batch_size = 256;
    bool shuffle = true;
    std::uint64_t seed = 0;    // drives the per-epoch shuffles and the dropout masks
    int n_threads = 1;         // threads that split each batch (1 = the calling thread only)
    // false: a fresh optimizer state (zero moments, t = 0). true: continue from the model's
    // saved state (Model::optimizer_state) when it is of the same optimizer kind, with the
    // hyperparameters given to fit; a fresh state otherwise.
    bool resume_optimizer = false;
    // Called after every epoch; return false to stop training after that epoch.
    std::function<bool(const EpochReport&)> on_epoch;
    // Polled between batches; return true to stop at once (the model keeps the weights of the
    // last completed step). Used for Ctrl-C; keep it cheap.
    std::function<bool()> should_stop;
};

// What a model trains on. Row-major buffers (layout.h), read in place, never copied whole.
struct TrainingData {
    std::size_t n = 0;
    const float* x = nullptr;             // (n, n_inputs), or:
    const std::uint8_t* x_u8 = nullptr;   // (n, n_inputs) 8-bit values, read as x_u8[i] * scale
    float scale = 1.0f;
    const float* y = nullptr;             // (n, n_outputs) targets; null: the inputs (autoencoder)
    const float* sample_weight = nullptr; // (n) finite, >= 0; null: every sample weighs 1. A
                                          // sample's loss is multiplied by its weight; a batch's
                                          // loss is still the mean over its samples (as Keras)
};

// How a call to fit ended.
enum class StopReason { completed, callback, interrupted };

// Thrown by Model::fit when the loss or the weights become NaN or infinite. Training stops at
// that step and the model keeps the weights of the last finite step.
class TrainingDiverged : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

}  // namespace fastae
