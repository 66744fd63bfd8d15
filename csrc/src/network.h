// network.h -- a network of dense layers built from a NetworkSpec, its parameter layout, and its
// forward and backward passes over one batch.
//
// Shapes (eigen_types.h): a batch of b samples is (features, b) column-major; layer l maps
// A_l (n_in, b) to A_{l+1} = f_l(W_l A_l + b_l) (n_out, b), W_l viewed (n_out, n_in), times the
// layer's dropout mask M_l when training (entries 0 or 1 / (1 - p), dropout.h). The three matrix
// products (W A, dZ A^T, W^T dZ) go through gemm.h, except the first layer's two (W X and dZ X^T)
// when the input batch is mostly zeros (sparse_input.h).
// Backward from dZ_L (the output head, head.h):
//   dW_l = dZ_l A_l^T,   db_l = sum over samples of dZ_l,
//   dZ_{l-1} = (W_l^T dZ_l) * M_{l-1} * f'_{l-1}   for l > 0 (no gradient for the input).
// A tied layer (LayerSpec::tied_to = k) has W_l = W_k^T: its forward product is W_k^T A_l, its
// dZ_{l-1} uses W_k dZ_l, and its dW_l^T = A_l dZ_l^T is added to dW_k (written first, since
// backward reaches l before k). A frozen layer (LayerSpec::trainable false) skips dW and db, and
// nothing below first_trainable() gets a dZ.
// f' comes from the layer's output A (in place over Z: the fast path) or, for layers that keep Z
// (an activation that needs it, or dropout, whose A is masked), from Z.
// The naive twins (forward_naive, loss_gradient_naive; network_naive.cpp) do the same in double
// with plain loops.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "eigen_types.h"
#include "fastae/config.h"
#include "gemm.h"
#include "head.h"
#include "measured_choice.h"
#include "sparse_input.h"
#include "zero_pages.h"

namespace fastae::detail {

// One dense layer as the passes run it; the parameter layout (layout.h) is fixed here once.
struct DenseLayer {
    int n_in = 0;
    int n_out = 0;
    // W at offset (layout.h), b at b_offset = offset + n_in * n_out. A tied layer (tied_to >= 0)
    // reads the W of layer tied_to at that layer's offset, (n_in, n_out) column-major, transposed,
    // and owns only its b.
    std::size_t offset = 0;
    std::size_t b_offset = 0;
    int tied_to = -1;
    bool tied_by = false;    // another layer uses this layer's W transposed
    bool trainable = true;   // LayerSpec::trainable
    ActivationSpec activation;
    float dropout = 0.0f;
    bool keeps_z = false;    // training keeps Z apart from A (needs_preactivation, or dropout)
    Noise noise = Noise::none;     // on the layer's input (the first layer's only), training only
    float noise_level = 0.0f;
    float activity_l1 = 0.0f;      // penalties on the output (LayerSpec)
    float sparsity_target = 0.0f;
    float sparsity_weight = 0.0f;
    float contractive = 0.0f;      // the contractive penalty on the output (the first layer's)
    std::size_t bias_offset() const { return b_offset; }
    // The range of the flat buffer this layer owns: [offset, b_offset + n_out), or its bias only.
    std::size_t owned_begin() const { return tied_to >= 0 ? b_offset : offset; }
    std::size_t owned_end() const { return b_offset + std::size_t(n_out); }
    // The code layer of a variational network (vae.h): its n_out = 2k outputs (mu, logvar) are Z,
    // and its A is the k-wide z the next layer reads (drawn in training, mu in inference).
    bool gaussian = false;
    int out_width() const { return gaussian ? n_out / 2 : n_out; }
};

struct SharedWeights;
struct DeferredGradients;

// A training step's context beyond its data. Where a batch's samples came from, for the
// randomness keyed by dataset row (dropout masks, input noise): column j is dataset row rows[j]
// (first + j when rows is null) in epoch `epoch`. The activity terms (LayerSpec::activity_l1,
// the sparsity KL) need the whole batch's size and, for the KL, each such layer's mean output
// over the whole batch (batch_means[l + 1] for layer l, computed before the backward pass); their
// value for this shard is added to *term_value.
struct StepContext {
    std::uint64_t seed = 0;
    int epoch = 0;
    const std::size_t* rows = nullptr;
    std::size_t first = 0;
    double batch_samples = 0.0;
    const std::vector<AlignedFloats>* batch_means = nullptr;
    double* term_value = nullptr;
    std::size_t row_offset = 0;  // a process group's first row: the keys are global dataset rows
    // A variational network's KL sum over the shard's columns (weight * KL each), added here.
    double* code_kl = nullptr;
    // Inference with a VAE's draws (the ELBO of given data): eps is drawn, dropout is not.
    bool draws_only = false;
    // The step's weights packed once for all its shards (shared_weights.h), or null.
    SharedWeights* weights = nullptr;
    // The shard's layers whose dW the step's sum computes (deferred_gradient.h), or null.
    const DeferredGradients* deferred = nullptr;
    std::size_t row(Eigen::Index j) const { return (rows ? rows[j] : first + std::size_t(j)) + row_offset; }
};

// The noise of LayerSpec::noise on one sample's d inputs x into out (training only), drawn from a
// stream keyed by (seed, epoch, row): gaussian x + level * N(0, 1), masking x or 0 (0 with
// probability level).
void input_noise(Noise kind, float level, const StepContext& ctx, std::size_t row, const float* x, float* out,
                 Eigen::Index d);

class Network {
public:
    // Validates the spec; throws std::invalid_argument naming the bad field.
    explicit Network(const NetworkSpec& spec);

    const NetworkSpec& spec() const { return spec_; }
    const std::vector<DenseLayer>& layers() const { return layers_; }
    const DenseLayer& layer(int l) const { return layers_[std::size_t(l)]; }
    int n_layers() const { return static_cast<int>(layers_.size()); }
    int width(int i) const { return i == 0 ? spec_.n_inputs : layers_[std::size_t(i - 1)].out_width(); }
    int max_width() const { return max_width_; }
    std::size_t n_params() const { return n_params_; }
    int n_encoder_layers() const { return n_encoder_layers_; }
    const HeadSpec& head() const { return spec_.head; }
    const ActivationSpec& output_activation() const { return layers_.back().activation; }
    bool has_dropout() const { return has_dropout_; }
    // Layers [0, batch_stat_layers()) must run for the whole batch before any shard's backward
    // pass: their last one has the deepest whole-batch statistic (the sparsity KL); 0: none.
    int batch_stat_layers() const { return batch_stat_layers_; }
    // The lowest layer with trainable parameters (n_layers() when every layer is frozen): the
    // backward pass computes no gradient for the layers' inputs below it.
    int first_trainable() const { return first_trainable_; }
    bool variational() const { return spec_.variational.enabled; }

private:
    NetworkSpec spec_;
    std::vector<DenseLayer> layers_;
    std::size_t n_params_ = 0;
    int max_width_ = 0;
    int n_encoder_layers_ = 1;
    bool has_dropout_ = false;
    int batch_stat_layers_ = 0;
    int first_trainable_ = 0;
};

// The denominator of a batch's mean loss: head_normaliser's, or the samples for a variational
// network (its reconstruction loss is summed over the outputs).
inline double batch_normaliser(const Network& net, double samples) {
    return net.variational() ? samples : head_normaliser(net.head().loss, samples, net.width(net.n_layers()));
}

// The first layer's products, batch by batch: over the input's nonzeros (sparse_input.h, when the
// batch is sparse enough) or the dense GEMM, whichever measures faster on this machine (forward
// and weight gradient timed together; measured_choice.h). Where gemm sums in runs
// (gemm_sums_in_k_runs) the two paths give the same bits, so the choice changes only the time;
// with Eigen's product the sparse path is always tried, a fixed rule.
class FirstLayerPath {
public:
    // At a batch's first-layer forward: records the previous batch's time, returns whether to try
    // the sparse path for this one.
    bool next_sparse() {
        if (measuring_) choice_.record(!sparse_, seconds_);
        seconds_ = 0.0;
        measuring_ = gemm_sums_in_k_runs();
        sparse_ = !measuring_ || !choice_.next();
        return sparse_;
    }
    // Time spent on this batch's first-layer products (forward, then weight gradient).
    void add(double seconds) { seconds_ += seconds; }

private:
    // Default: sparse; alternative: dense. Probes of 4 runs, the first after a switch uncounted
    // (the other path's buffers are cold then), 16 to 256 runs apart.
    MeasuredChoice choice_{16, 256, 4, true};
    bool measuring_ = false, sparse_ = true;
    double seconds_ = 0.0;
};

// Buffers for running up to `capacity` samples through a network; made once, reused per batch
// (one per thread: the GEMM packing buffers inside are not shareable).
class Workspace {
public:
    Workspace(const Network& net, std::size_t capacity);
    std::size_t capacity() const { return capacity_; }
    // Output of layer l - 1 (input of layer l) for l >= 1: (width(l), b) view.
    MutMatrixMap act(int l, Eigen::Index b) {
        return MutMatrixMap(act_data(l), net_widths_[std::size_t(l)], b);
    }
    // Layer l - 1's Z when it keeps it (DenseLayer::keeps_z), else act(l): (width(l), b).
    float* z(int l) { return keeps_z_[std::size_t(l)] ? z_[std::size_t(l)].data() : act_data(l); }
    // act(l) written in `external` instead of the workspace's own buffer (room for the batch's
    // columns of width(l) floats), until unbind(): a training step of many shards has a deferred
    // layer's dZ, which backward leaves in act(l + 1), land where the step's sum reads it
    // (deferred_gradient.h: BatchWeightGradient::dz_columns) instead of being copied there.
    void bind_act(int l, float* external) { bound_[std::size_t(l)] = external; }
    void unbind() { std::fill(bound_.begin(), bound_.end(), nullptr); }
    // Layer l - 1's dropout mask (width(l), b) when it has dropout; a Gaussian code layer's eps.
    float* mask(int l) { return mask_[std::size_t(l)].data(); }
    MutMatrixMap delta(Eigen::Index rows, Eigen::Index b) { return MutMatrixMap(delta_.data(), rows, b); }
    float* scratch() { return scratch_.data(); }
    GemmWorkspace& gemm() { return gemm_; }
    SparseInput& sparse() { return sparse_; }
    FirstLayerPath& first_layer() { return first_layer_; }

private:
    std::size_t capacity_;
    std::vector<Eigen::Index> net_widths_;
    std::vector<char> keeps_z_;
    float* act_data(int l) {
        float* bound = bound_[std::size_t(l)];
        return bound ? bound : act_[std::size_t(l)].data();
    }

    std::vector<ZeroPages> act_, z_, mask_;  // pages taken as written (zero_pages.h)
    std::vector<float*> bound_;  // act(l)'s external buffer (bind_act), or null
    ZeroPages delta_;
    Eigen::VectorXf scratch_;  // Eigen's allocation: aligned to its widest packet
    GemmWorkspace gemm_;       // packing buffers, reserved for every product of the network
    SparseInput sparse_;       // the batch's input nonzeros, when sparse enough (sparse_input.h)
    FirstLayerPath first_layer_;
};

// Runs layers [first, last) on in (width(first), b); the result is ws.act(last, b). The last
// network layer's activation is applied only if `activate_output` (training keeps the logits).
// keep_z: layers that keep Z for the backward pass keep it (DenseLayer::keeps_z). With a step
// context (non-null), dropout masks are drawn and applied; without one (inference, validation,
// Model::loss_and_gradient), there is no dropout.
// If first_products_finite is given, it is set to whether layer first's products W a (before
// bias and activation) are all finite. A NaN or infinite input makes every product of its
// sample NaN or infinite (NaN * w, inf * w, inf * 0 and inf - inf are all non-finite), so
// inference checks its inputs only when this is false, instead of reading them twice.
void forward_batch(const Network& net, const float* params, ConstMatrixMap in, int first, int last, Workspace& ws,
                   bool activate_output, bool keep_z = false, const StepContext* dropout = nullptr,
                   bool* first_products_finite = nullptr);

// Loss and gradient of a batch (or a shard of one): x (n_in, b), y (n_out, b) targets.
// Writes the gradient of sum_j scale(j) * (sample j's loss sum) into grad (n_params), and returns
// the sum over samples of weight * loss sum (head.h: head_pass). Dropout with a step context only.
// The entries of frozen layers (LayerSpec::trainable false) are left as they were.
double loss_gradient_batch(const Network& net, const float* params, ConstMatrixMap x, ConstMatrixMap y,
                           ColumnScale scale, const StepContext* context, Workspace& ws, float* grad,
                           int forward_done = 0);
// forward_done: layers [0, forward_done) already ran on this batch in ws (forward_batch with
// keep_z and the same context), as a two-phase step with whole-batch statistics does.

// The same sum without gradient or dropout (and per-sample losses if requested);
// first_products_finite as in forward_batch.
double loss_batch(const Network& net, const float* params, ConstMatrixMap x, ConstMatrixMap y,
                  const float* weight, Workspace& ws, float* sample_loss, bool* first_products_finite = nullptr);

// A variational network's ELBO parts per sample of x (targets: x), with the code drawn as training
// draws it for the keys of `draws` (no dropout): the reconstruction loss summed over the outputs,
// and the KL term (vae.h), each unweighted; first_products_finite as in forward_batch.
void elbo_terms_batch(const Network& net, const float* params, ConstMatrixMap x, const StepContext& draws,
                      Workspace& ws, float* reconstruction, float* kl, bool* first_products_finite = nullptr);

// Naive twins in double: x, y, out row-major (n, width) as in layout.h; weight (n) or null.
// loss_gradient_naive returns the batch's mean loss (head_normaliser) and writes its exact
// gradient (frozen layers' entries included); with a training context it applies the same
// dropout masks and input noise as the fast pass and adds the activity and contractive terms.
void forward_naive(const Network& net, const double* params, std::size_t n, const double* x, double* out);
double loss_gradient_naive(const Network& net, const double* params, std::size_t n, const double* x,
                           const double* y, const double* weight, const StepContext* training, double* grad);

}  // namespace fastae::detail
