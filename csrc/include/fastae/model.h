// fastae/model.h -- a dense network (an autoencoder is one whose output width equals its input
// width): its parameters, inference, and training. Standard library only; the data layout of
// every pointer argument is the one in fastae/layout.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "fastae/config.h"
#include "fastae/layout.h"

namespace fastae {

// Threads: any number of const calls (inference, losses, copies) may run at once on one model.
// fit, init_weights, set_params, set_optimizer_state, clear_optimizer_state and copy assignment
// change it and need it to themselves: a call that would overlap one of them, in either order,
// throws std::runtime_error at its start and changes nothing (refused, never a data race; in a
// close race both calls may be refused).
// params() and optimizer_state() return references that this cannot watch: from other threads
// use copy_params and copy_optimizer_state, which are refused like inference.
class Model {
public:
    // Validates the spec (std::invalid_argument naming the bad field). Weights start as zeros
    // until init_weights or set_params.
    explicit Model(const NetworkSpec& spec);
    explicit Model(const NetworkConfig& config);  // Model(to_spec(config))
    Model(const Model& other);
    Model& operator=(const Model& other);
    Model(Model&&) noexcept;
    Model& operator=(Model&&) noexcept;
    ~Model();

    const NetworkSpec& spec() const;
    // The network as a NetworkConfig: its widths, the first layer's activation, the output
    // activation and the loss (per-layer options are in spec()).
    const NetworkConfig& config() const;
    int n_layers() const;                    // dense layers
    int n_inputs() const;                    // layer_sizes.front()
    int n_outputs() const;                   // layer_sizes.back()
    int n_encoder_layers() const;            // layers up to the code (spec().code_layer + 1)
    int code_size() const;                   // width of the code

    // Weights drawn by each layer's initializer (vocabulary.h; glorot_uniform: U(-a, a),
    // a = sqrt(6 / (n_in + n_out))) and zero biases, layer by layer in parameter order from one
    // generator seeded with `seed`.
    void init_weights(std::uint64_t seed);

    // The flat parameter buffer (layout.h): n_params() floats.
    std::size_t n_params() const;
    const float* params() const;
    // Copies n_params() floats in; throws std::invalid_argument on a wrong count or a non-finite
    // value (and leaves the model unchanged).
    void set_params(const float* values, std::size_t count);
    // Copies the n_params() parameters into out.
    void copy_params(float* out) const;
    // Offset of layer l's W in the flat buffer; its b follows at offset + n_in * n_out. A tied
    // layer (LayerSpec::tied_to = k) owns no W: this is layer k's, whose (n_in, n_out) row-major W
    // it uses transposed, and its b is at bias_offset(l).
    std::size_t param_offset(int layer) const;
    std::size_t bias_offset(int layer) const;  // layer l's b

    // Runs layers [first, last) on n samples: in is (n, layer_sizes[first]), out is
    // (n, layer_sizes[last]). Any number of concurrent calls on one model (see Threads above). A
    // NaN or infinite input throws std::invalid_argument naming it (the first in row order; out's
    // content is then unspecified). n_threads (>= 1) threads share the chunks of 256 samples the
    // rows are cut into; each output row is the same, bit for bit, whatever n_threads.
    void forward(int first, int last, std::size_t n, const float* in, float* out, int n_threads = 1) const;
    void encode(std::size_t n, const float* x, float* codes, int n_threads = 1) const;    // (n, code_size())
    void decode(std::size_t n, const float* codes, float* out, int n_threads = 1) const;  // (n, n_outputs())
    void predict(std::size_t n, const float* x, float* out, int n_threads = 1) const;     // all layers

    // Mean loss over all n * n_outputs() elements of predicting targets y (n, n_outputs())
    // from x (n, n_inputs()); y == nullptr means y = x (reconstruction).
    double loss(std::size_t n, const float* x, const float* y = nullptr, int n_threads = 1) const;
    // Per-sample loss (mean over that sample's outputs) into out (n); threads as in forward.
    void sample_losses(std::size_t n, const float* x, const float* y, float* out, int n_threads = 1) const;
    // The same mean loss and its gradient with respect to every parameter, into grad
    // (n_params() floats, layout of params()); 0 for the parameters of frozen layers
    // (LayerSpec::trainable false). No dropout, noise or activity and contractive terms: those
    // are training's.
    double loss_and_gradient(std::size_t n, const float* x, const float* y, float* grad) const;

    // A variational network (NetworkSpec::variational): encode gives the means, decode reads codes
    // z. encode_gaussian writes the means and the (clamped) log-variances, (n, code_size()) each.
    // sample decodes n codes drawn from the prior N(0, I) (row i's from a stream keyed by (seed, i),
    // the same whatever n_threads) into out (n, n_outputs()). elbo_terms writes, per sample of x
    // (targets x), the reconstruction loss summed over the outputs and the KL term, with one code
    // drawn per sample keyed by (seed, a hash of the sample's values), so that a sample's terms do
    // not depend on the call, its order or n_threads: the ELBO is -(reconstruction + kl). code_noise
    // writes the eps a training step draws for rows first_row ... first_row + n - 1 in 1-based epoch
    // `epoch` of a fit with TrainOptions::seed = seed, (n, code_size()). Other networks: these
    // throw std::invalid_argument.
    void encode_gaussian(std::size_t n, const float* x, float* mean, float* logvar, int n_threads = 1) const;
    void sample(std::size_t n, std::uint64_t seed, float* out, int n_threads = 1) const;
    void elbo_terms(std::size_t n, const float* x, std::uint64_t seed, float* reconstruction, float* kl,
                    int n_threads = 1) const;
    void code_noise(std::size_t n, std::uint64_t seed, int epoch, std::size_t first_row, float* eps) const;
    // The objective of one training step on the batch of x's n rows (targets x, rows 0 ... n - 1,
    // 1-based epoch `epoch`, TrainOptions::seed = seed: the same dropout masks, input noise, VAE
    // draws and KL weight), penalties on activations included but not the layers' l1/l2, and its
    // gradient into grad (n_params() floats).
    double training_loss_and_gradient(std::size_t n, const float* x, std::uint64_t seed, int epoch, float* grad) const;

    // The optimizer state left by the last fit (or set_optimizer_state), if any.
    bool has_optimizer_state() const;
    const OptimizerState& optimizer_state() const;  // throws std::logic_error if there is none
    std::optional<OptimizerState> copy_optimizer_state() const;  // a copy, or none
    // Checks sizes (m: n_params(); v: n_params() for Adam, empty for SGD), steps >= 0 and
    // finiteness, throwing std::invalid_argument and leaving the model unchanged.
    void set_optimizer_state(const OptimizerState& state);
    void clear_optimizer_state();

    // Trains on n samples x (and targets y, or y = x when nullptr) for options.epochs epochs,
    // starting from the current weights with a fresh optimizer state (or the saved one, see
    // TrainOptions::resume_optimizer); the optimizer state is kept afterwards. Validation data
    // (n_val, ...) is optional (x_val == nullptr). Returns why it stopped; weights are those of
    // the last completed step. Throws TrainingDiverged (weights: the last finite step) if the
    // loss or the weights become non-finite, std::invalid_argument for bad arguments or data.
    // The history of every epoch is appended to *history if given. A fit that throws
    // std::invalid_argument or std::bad_alloc changes nothing: bad arguments, validation data and
    // memory for the buffers are checked before the first step; x and y are checked batch by
    // batch as the first epoch reads them (NaN/inf, and [0, 1] for bce, naming the row and
    // column), and a bad value there restores the weights, optimizer state and history.
    // With every option: data and optional validation data as TrainingData (sample weights,
    // 8-bit inputs with any targets). The overloads below are shorthands for it.
    StopReason fit(const TrainingData& data, const TrainingData* validation, const OptimizerConfig& optimizer,
                   const TrainOptions& options, std::vector<EpochReport>* history = nullptr);
    StopReason fit(std::size_t n, const float* x, const float* y,
                   std::size_t n_val, const float* x_val, const float* y_val,
                   const OptimizerConfig& optimizer, const TrainOptions& options,
                   std::vector<EpochReport>* history = nullptr);

    // fit for 8-bit data such as images (0..255), autoencoder only (targets = inputs): sample
    // values are x[i * n_inputs() + j] * scale (e.g. 1/255), converted batch by batch inside the
    // loop, so the dataset stays 8-bit in memory (MNIST: 47 MB instead of 188 MB as float32).
    StopReason fit_u8(std::size_t n, const std::uint8_t* x, float scale, std::size_t n_val,
                      const std::uint8_t* x_val, const OptimizerConfig& optimizer,
                      const TrainOptions& options, std::vector<EpochReport>* history = nullptr);

    // The library's internals (defined in its sources only; hosts cannot use it).
    struct Impl;

private:
    friend class TrainingSession;
    std::unique_ptr<Impl> impl_;
};

// Parameters of the network a spec describes (validated as Model's constructor does, but nothing
// the size of the model is allocated): the size of Model(spec).params().
std::size_t param_count(const NetworkSpec& spec);

// Throws std::invalid_argument naming the field if the optimizer or training options are out
// of range (Model::fit calls these before touching any weight).
void validate(const OptimizerConfig& optimizer);
void validate(const TrainOptions& options);

}  // namespace fastae
