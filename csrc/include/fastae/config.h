// fastae/config.h -- what a network is made of and how it is trained: plain structs and enums,
// with the string names Python and model files use. Standard library only.
#pragma once

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace fastae {

enum class Activation { linear, relu, sigmoid, tanh };
enum class Loss { mse, bce };
enum class OptimizerKind { adam, sgd };

// Names as used by Python ("relu", "bce", "adam", ...). The parsers throw
// std::invalid_argument naming the bad value and the allowed ones.
const char* name_of(Activation a);
const char* name_of(Loss l);
const char* name_of(OptimizerKind o);
Activation parse_activation(const std::string& name);
Loss parse_loss(const std::string& name);
OptimizerKind parse_optimizer(const std::string& name);

// The shape of a network: layer_sizes = {n_features, h1, ..., code, ..., h1, n_features} for an
// autoencoder (any sequence of >= 2 widths for a plain MLP). Every layer but the last uses
// `activation`; the last uses `output_activation`.
//
// Loss is the mean over all n * d_out elements (as Keras reports it):
//   mse: mean((y - x)^2)
//   bce: mean(max(z, 0) - z * x + log(1 + exp(-|z|))) computed from the output logits z,
//        which requires output_activation == sigmoid (checked); dL/dz = (sigmoid(z) - x) / N.
struct NetworkConfig {
    std::vector<int> layer_sizes;
    Activation activation = Activation::relu;
    Activation output_activation = Activation::sigmoid;
    Loss loss = Loss::bce;
};

// Optimizer settings. The exact update rules are written in src/optimizer.h.
struct OptimizerConfig {
    OptimizerKind kind = OptimizerKind::adam;
    double learning_rate = 1e-3;
    double beta1 = 0.9;     // Adam
    double beta2 = 0.999;   // Adam
    double epsilon = 1e-8;  // Adam
    double momentum = 0.0;  // SGD
    bool nesterov = false;  // SGD (requires momentum > 0)
};

// An optimizer's state after some steps, so training can resume exactly where it stopped.
// m and v are flat buffers in the parameters' layout: Adam's first and second moments (m, v),
// or SGD's momentum buffer (m; v empty). steps is the number of updates applied (Adam's t).
struct OptimizerState {
    OptimizerConfig config;
    std::int64_t steps = 0;
    std::vector<float> m;
    std::vector<float> v;
};

// One line of training history, passed to the per-epoch callback.
struct EpochReport {
    int epoch = 0;             // 1-based
    double loss = 0.0;         // mean training loss over the epoch (sample-weighted)
    double val_loss = 0.0;     // loss on the validation data after the epoch
    bool has_val_loss = false;
    double seconds = 0.0;      // wall time of the epoch (training and validation)
};

struct TrainOptions {
    int epochs = 10;
    int batch_size = 256;
    bool shuffle = true;
    std::uint64_t seed = 0;    // drives the per-epoch shuffles
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

// How a call to fit ended.
enum class StopReason { completed, callback, interrupted };

// Thrown by Model::fit when the loss or the weights become NaN or infinite. Training stops at
// that step and the model keeps the weights of the last finite step.
class TrainingDiverged : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

}  // namespace fastae
