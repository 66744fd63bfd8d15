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
//
// Each rule's apply is one sweep that also saves the old p and checks the new one. Where the
// build has AVX2 it runs apply_lanes<simd::Widest>: the rule written once over simd.h's vector
// traits (any width gives the same bits; the tests run Vec8, Twin16 and Vec16), each lane doing
// the operations of the float expression in the order written in apply's Eigen version (no FMA,
// a correctly rounded sqrt), which other builds run, so every build gives the same bits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "eigen_types.h"
#include "fastae/config.h"
#include "simd.h"

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
#ifdef FASTAE_HAVE_AVX2_MATH
    template <class V>
    bool apply_lanes(std::size_t n, float* p, const float* g, float* m, float* v, float* previous) const;
#endif

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
#ifdef FASTAE_HAVE_AVX2_MATH
    template <class V>
    bool apply_lanes(std::size_t n, float* p, const float* g, float* u, float* previous) const;
#endif

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
#ifdef FASTAE_HAVE_AVX2_MATH
    template <class V>
    bool apply_lanes(std::size_t n, float* p, const float* g, float* s, float* previous) const;
#endif

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

#ifdef FASTAE_HAVE_AVX2_MATH
// ---- the rules on V's vectors (simd.h) --------------------------------------------------------

// One sweep over p[0, n): rule(at, old p) returns the new p (reading and writing its slots through
// at); the old p is copied to previous when given, and the result is whether every new p is finite.
// The copy is read back only when an update fails, so it is written past the caches
// (non-temporal stores): it then neither reads each line before writing it nor takes a share of
// the caches from the weights, gradients and slots. The deep model (1.7 MB of each), the two
// ways in turns in one process (step_phases, Zen 5, AVX-512, 3 runs): the update at 2 threads
// 116-170 against 136-219 us, the step 2.0-2.7% shorter; at 1 thread 7% and 0.6-1.0%; the
// tutorial's update 1-14% faster.
template <class V, class Rule>
bool update_sweep(std::size_t n, float* p, float* previous, const Rule& rule) {
    auto bad = V::no_lanes();
    auto update = [&](const auto& at) {
        const auto p_old = at.load(p);
        if (previous) at.stream(previous, p_old);
        const auto p_new = rule(at, p_old);
        at.store(p, p_new);
        bad = V::mask_or(bad, at.keep_mask(V::not_finite(p_new)));
    };
    if (previous) {
        simd::sweep_aligned_to<V>(previous, n, update);
        simd::stream_fence();
    } else {
        simd::sweep<V>(n, update);
    }
    return !V::any(bad);
}

template <class V>
bool Adam::apply_lanes(std::size_t n, float* p, const float* g, float* m, float* v, float* previous) const {
    const auto b1 = V::set1(b1_), b2 = V::set1(b2_), c1 = V::set1(c1_), c2 = V::set1(c2_);
    const auto step = V::set1(step_size_), inv = V::set1(inv_sqrt_bc2_), eps = V::set1(eps_), decay = V::set1(decay_);
    return update_sweep<V>(n, p, previous, [&](const auto& at, auto p_old) {
        const auto gv = at.load(g);
        const auto mv = V::add(V::mul(b1, at.load(m)), V::mul(c1, gv));
        const auto vv = V::add(V::mul(b2, at.load(v)), V::mul(c2, V::mul(gv, gv)));
        at.store(m, mv);
        at.store(v, vv);
        const auto denom = V::add(V::mul(V::sqrt(vv), inv), eps);
        return V::sub(V::mul(p_old, decay), V::div(V::mul(step, mv), denom));  // p * 1 is p (Adam)
    });
}

template <class V>
bool Sgd::apply_lanes(std::size_t n, float* p, const float* g, float* u, float* previous) const {
    const auto lr = V::set1(lr_), mu = V::set1(mu_);
    if (mu_ == 0.0f) {
        return update_sweep<V>(n, p, previous, [&](const auto& at, auto p_old) {
            return V::sub(p_old, V::mul(lr, at.load(g)));
        });
    }
    return update_sweep<V>(n, p, previous, [&](const auto& at, auto p_old) {
        const auto gv = at.load(g);
        const auto uv = V::add(V::mul(mu, at.load(u)), gv);
        at.store(u, uv);
        return V::sub(p_old, V::mul(lr, nesterov_ ? V::add(gv, V::mul(mu, uv)) : uv));
    });
}

template <class V>
bool RmsProp::apply_lanes(std::size_t n, float* p, const float* g, float* s, float* previous) const {
    const auto lr = V::set1(lr_), rho = V::set1(rho_), c = V::set1(c_), eps = V::set1(eps_);
    return update_sweep<V>(n, p, previous, [&](const auto& at, auto p_old) {
        const auto gv = at.load(g);
        const auto sv = V::add(V::mul(rho, at.load(s)), V::mul(c, V::mul(gv, gv)));
        at.store(s, sv);
        return V::sub(p_old, V::div(V::mul(lr, gv), V::add(V::sqrt(sv), eps)));
    });
}
#endif

}  // namespace fastae::detail
