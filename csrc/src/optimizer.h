// optimizer.h -- parameter updates over the flat parameter buffer: one pass, one formula each.
// State (moments, step count) lives in flat buffers of the parameters' layout.
//
// Adam (exactly the update torch.optim.Adam computes, without weight decay or amsgrad):
//   t <- t + 1
//   m <- beta1 * m + (1 - beta1) * g
//   v <- beta2 * v + (1 - beta2) * g^2
//   p <- p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// SGD (torch.optim.SGD, dampening 0):
//   momentum == 0:  p <- p - lr * g
//   otherwise:      u <- momentum * u + g          (u starts at 0, so the first u is g)
//                   p <- p - lr * (nesterov ? g + momentum * u : u)
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "eigen_types.h"
#include "fastae/config.h"

namespace fastae::detail {

class Optimizer {
public:
    Optimizer(const OptimizerConfig& config, std::size_t n_params);
    // Continues from a saved state (sizes already checked) with the hyperparameters of config.
    Optimizer(const OptimizerConfig& config, const OptimizerState& state);
    OptimizerState export_state() const;

    // One update of params (n_params floats) from grad (same layout).
    void step(float* params, const float* grad) {
        begin_step();
        apply(params, grad, 0, n_);
    }
    // The same update split in two so that threads can share it: begin_step once (advances t),
    // then apply over disjoint ranges [begin, end) of the flat buffer that together cover it.
    // apply first copies the range's old values to previous[begin, end) when previous is not
    // null (so a step can be undone), and returns whether every updated value is finite; both
    // ride along in the update's own sweep (Adam with AVX2), not in passes of their own.
    void begin_step();
    bool apply(float* params, const float* grad, std::size_t begin, std::size_t end,
               float* previous = nullptr);

    std::int64_t steps() const { return t_; }
    const OptimizerConfig& config() const { return config_; }

private:
    OptimizerConfig config_;
    std::size_t n_;
    std::int64_t t_ = 0;
    AlignedFloats m_;  // Adam first moment, or SGD momentum buffer u
    AlignedFloats v_;  // Adam second moment
    // Per-step constants, set by begin_step.
    float step_size_ = 0.0f;     // Adam: lr / (1 - beta1^t)
    float inv_sqrt_bc2_ = 1.0f;  // Adam: 1 / sqrt(1 - beta2^t)
};

// Naive twin: the same update in double, one element at a time, for tests.
void optimizer_step_naive(const OptimizerConfig& config, std::int64_t t, std::size_t n,
                          double* params, const double* grad, double* m, double* v);

}  // namespace fastae::detail
