// network.h -- the shapes of a dense network and its forward and backward passes over one batch.
//
// Shapes (eigen_types.h): a batch of b samples is (features, b) column-major; layer l maps
// A_l (n_in, b) to A_{l+1} = f(W_l A_l + b_l) (n_out, b), W_l viewed (n_out, n_in). The three
// matrix products (W A, dZ A^T, W^T dZ) go through gemm.h, except the first layer's two (W X and
// dZ X^T) when the input batch is mostly zeros (sparse_input.h).
// Backward from dZ_L (the output pass, loss.h):
//   dW_l = dZ_l A_l^T,   db_l = sum over samples of dZ_l,
//   dZ_{l-1} = (W_l^T dZ_l) * f'(A_l)   for l > 0 (no gradient for the input).
// The naive twins (forward_naive, gradient_naive) do the same in double with plain loops.
#pragma once

#include <cstddef>
#include <vector>

#include "eigen_types.h"
#include "fastae/config.h"
#include "gemm.h"
#include "sparse_input.h"

namespace fastae::detail {

struct DenseLayer {
    int n_in = 0;
    int n_out = 0;
    std::size_t offset = 0;  // W at offset (layout.h), b at offset + n_in * n_out
};

class Network {
public:
    // Throws std::invalid_argument naming the bad field.
    explicit Network(const NetworkConfig& config);

    const NetworkConfig& config() const { return config_; }
    const std::vector<DenseLayer>& layers() const { return layers_; }
    int n_layers() const { return static_cast<int>(layers_.size()); }
    int width(int i) const { return config_.layer_sizes[static_cast<std::size_t>(i)]; }
    int max_width() const { return max_width_; }
    std::size_t n_params() const { return n_params_; }
    Activation activation_of(int layer) const {
        return layer + 1 == n_layers() ? config_.output_activation : config_.activation;
    }

private:
    NetworkConfig config_;
    std::vector<DenseLayer> layers_;
    std::size_t n_params_ = 0;
    int max_width_ = 0;
};

// Buffers for running up to `capacity` samples through a network; made once, reused per batch
// (one per thread: the GEMM packing buffers inside are not shareable).
class Workspace {
public:
    Workspace(const Network& net, std::size_t capacity);
    std::size_t capacity() const { return capacity_; }
    // Output of layer l - 1 (input of layer l) for l >= 1: (width(l), b) view.
    MutMatrixMap act(int l, Eigen::Index b) {
        return MutMatrixMap(act_[static_cast<std::size_t>(l)].data(), net_widths_[l], b);
    }
    MutMatrixMap delta(Eigen::Index rows, Eigen::Index b) {
        return MutMatrixMap(delta_.data(), rows, b);
    }
    float* scratch() { return scratch_.data(); }
    GemmWorkspace& gemm() { return gemm_; }
    SparseInput& sparse() { return sparse_; }

private:
    std::size_t capacity_;
    std::vector<Eigen::Index> net_widths_;
    std::vector<AlignedFloats> act_;
    AlignedFloats delta_;
    Eigen::VectorXf scratch_;  // Eigen's allocation: aligned to its widest packet
    GemmWorkspace gemm_;       // packing buffers, reserved for every product of the network
    SparseInput sparse_;       // the batch's input nonzeros, when sparse enough (sparse_input.h)
};

// Runs layers [first, last) on in (width(first), b); the result is ws.act(last, b). The last
// network layer's activation is applied only if `activate_output` (training keeps the logits).
// If first_products_finite is given, it is set to whether layer first's products W a (before
// bias and activation) are all finite. A NaN or infinite input makes every product of its
// sample NaN or infinite (NaN * w, inf * w, inf * 0 and inf - inf are all non-finite), so
// inference checks its inputs only when this is false, instead of reading them twice.
void forward_batch(const Network& net, const float* params, ConstMatrixMap in, int first,
                   int last, Workspace& ws, bool activate_output,
                   bool* first_products_finite = nullptr);

// Loss and gradient of a batch (or a shard of one): x (n_in, b), y (n_out, b) targets.
// Writes the gradient of (grad_scale * sum of elementwise losses) into grad (n_params), and
// returns the sum of the elementwise losses.
double loss_gradient_batch(const Network& net, const float* params, ConstMatrixMap x,
                           ConstMatrixMap y, float grad_scale, Workspace& ws, float* grad);

// Sum of elementwise losses of a batch without gradient (and per-sample means if requested);
// first_products_finite as in forward_batch.
double loss_batch(const Network& net, const float* params, ConstMatrixMap x, ConstMatrixMap y,
                  Workspace& ws, float* sample_loss, bool* first_products_finite = nullptr);

// Naive twins in double: x, y, out row-major (n, width) as in layout.h.
// loss_gradient_naive returns the mean loss and writes its exact gradient (grad_scale = 1/(n d)).
void forward_naive(const Network& net, const double* params, std::size_t n, const double* x,
                   double* out);
double loss_gradient_naive(const Network& net, const double* params, std::size_t n,
                           const double* x, const double* y, double* grad);

}  // namespace fastae::detail
