// optimizer.h -- parameter updates over the flat parameter buffer: one class per rule, one pass
// each, next to its naive twin. State (the rule's slots, vocabulary.h) lives in flat buffers of
// the parameters' layout; t counts the updates.
//
// Adam (exactly torch.optim.Adam, without weight decay or amsgrad); slots m = exp_avg, v = exp_avg_sq:
//   t <- t + 1
//   m <- beta1 * m + (1 - beta1) * g
//   v <- beta2 * v + (1 - beta2) * g^2
//   p <- p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// AdamW (exactly torch.optim.AdamW): first p <- p * (1 - lr * weight_decay), then Adam's update.
// SGD (torch.optim.SGD, dampening 0); slot u = momentum_buffer:
//   momentum == 0:  p <- p - lr * g
//   otherwise:      u <- momentum * u + g          (u starts at 0, so the first u is g)
//                   p <- p - lr * (nesterov ? g + momentum * u : u)
// RMSprop (exactly torch.optim.RMSprop, alpha = rho, no momentum, not centered); slot s = square_avg:
//   s <- rho * s + (1 - rho) * g^2
//   p <- p - lr * g / (sqrt(s) + eps)
// Constants such as 1 - beta are formed in double, as torch does, before rounding to float.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "eigen_types.h"
#include "fastae/config.h"

namespace fastae::detail {

// One update rule over a range of n parameters: p, g and the rule's state slots s0, s1 (n floats
// each; null for slots the rule does not have). apply copies the old p to previous when it is not
// null and returns whether every new p is finite; both ride along in the update's own sweep.
class UpdateRule {
public:
    virtual ~UpdateRule() = default;
    // Per-step constants for update t (1-based) at learning rate lr.
    virtual void begin_step(std::int64_t t, double lr) = 0;
    virtual bool apply(std::size_t n, float* p, const float* g, float* s0, float* s1, float* previous) const = 0;
};

class Adam : public UpdateRule {
public:
    explicit Adam(const OptimizerConfig& c, double weight_decay = 0.0);
    void begin_step(std::int64_t t, double lr) override;
    bool apply(std::size_t n, float* p, const float* g, float* m, float* v, float* previous) const override;
    // Naive twin: the same update in double (weight_decay as AdamW's).
    static void naive(const OptimizerConfig& c, double weight_decay, std::int64_t t, std::size_t n, double* p,
                      const double* g, double* m, double* v);

private:
    double beta1_, beta2_, weight_decay_;
    float b1_, b2_, c1_, c2_, eps_;
    float step_size_ = 0.0f;     // lr / (1 - beta1^t)
    float inv_sqrt_bc2_ = 1.0f;  // 1 / sqrt(1 - beta2^t)
    float decay_ = 1.0f;         // 1 - lr * weight_decay (AdamW), else exactly 1
};

class AdamW : public Adam {
public:
    explicit AdamW(const OptimizerConfig& c) : Adam(c, c.weight_decay) {}
    static void naive(const OptimizerConfig& c, std::int64_t t, std::size_t n, double* p, const double* g, double* m,
                      double* v) {
        Adam::naive(c, c.weight_decay, t, n, p, g, m, v);
    }
};

class Sgd : public UpdateRule {
public:
    explicit Sgd(const OptimizerConfig& c);
    void begin_step(std::int64_t t, double lr) override;
    bool apply(std::size_t n, float* p, const float* g, float* u, float* unused, float* previous) const override;
    static void naive(const OptimizerConfig& c, std::size_t n, double* p, const double* g, double* u);

private:
    float lr_ = 0.0f, mu_;
    bool nesterov_;
};

class RmsProp : public UpdateRule {
public:
    explicit RmsProp(const OptimizerConfig& c);
    void begin_step(std::int64_t t, double lr) override;
    bool apply(std::size_t n, float* p, const float* g, float* s, float* unused, float* previous) const override;
    static void naive(const OptimizerConfig& c, std::size_t n, double* p, const double* g, double* s);

private:
    float lr_ = 0.0f, rho_, c_, eps_;
};

// The rule of config.kind (a switch over the vocabulary with no default).
std::unique_ptr<UpdateRule> make_rule(const OptimizerConfig& config);

// A rule with its state over the whole parameter buffer.
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
    // The same update split so that threads can share it: begin_step once (advances t), then
    // apply over disjoint ranges [begin, end) that together cover the buffer (UpdateRule::apply).
    void begin_step();
    bool apply(float* params, const float* grad, std::size_t begin, std::size_t end, float* previous = nullptr);

    std::int64_t steps() const { return t_; }
    const OptimizerConfig& config() const { return config_; }
    void set_learning_rate(double lr) { config_.learning_rate = lr; }

private:
    float* slot(int k, std::size_t begin) { return slots_[std::size_t(k)].empty() ? nullptr : slots_[std::size_t(k)].data() + begin; }

    OptimizerConfig config_;
    std::size_t n_;
    std::int64_t t_ = 0;
    std::unique_ptr<UpdateRule> rule_;
    AlignedFloats slots_[2];  // OptimizerState's m and v
};

// Naive twin of one update of any rule, in double (s0, s1: the slots, as OptimizerState's m, v).
void optimizer_step_naive(const OptimizerConfig& config, std::int64_t t, std::size_t n, double* params,
                          const double* grad, double* s0, double* s1);

}  // namespace fastae::detail
