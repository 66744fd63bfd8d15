// optimizer.cpp -- the update rules over the flat parameter buffer (formulas in optimizer.h).
#include "optimizer.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "eigen_types.h"

namespace fastae::detail {

#ifndef FASTAE_HAVE_AVX2_MATH
namespace {

// Copies p to previous (when given) before an update written as an Eigen expression.
void save_previous(std::size_t n, const float* p, float* previous) {
    if (previous) std::copy(p, p + n, previous);
}

// The correctly rounded square root, as the vector kernels take it: Eigen's own sqrt() on float
// packets is an estimate refined by one Newton step (EIGEN_FAST_MATH), whose last bits differ
// from it and between instruction sets.
struct ExactSqrt {
    float operator()(float x) const { return std::sqrt(x); }
};

}  // namespace
#endif

// ---- Adam and AdamW --------------------------------------------------------------------------

Adam::Adam(const OptimizerConfig& c, double weight_decay)
    : beta1_(c.beta1), beta2_(c.beta2), weight_decay_(weight_decay), b1_(static_cast<float>(c.beta1)),
      b2_(static_cast<float>(c.beta2)), c1_(static_cast<float>(1.0 - c.beta1)), c2_(static_cast<float>(1.0 - c.beta2)),
      eps_(static_cast<float>(c.epsilon)) {}

void Adam::begin_step(std::int64_t t, double lr) {
    const double bc1 = 1.0 - std::pow(beta1_, static_cast<double>(t));
    const double bc2 = 1.0 - std::pow(beta2_, static_cast<double>(t));
    step_size_ = static_cast<float>(lr / bc1);
    inv_sqrt_bc2_ = static_cast<float>(1.0 / std::sqrt(bc2));
    decay_ = static_cast<float>(1.0 - lr * weight_decay_);
}

bool Adam::apply(std::size_t n, float* params, const float* grad, float* m_, float* v_, float* previous) const {
#ifdef FASTAE_HAVE_AVX2_MATH
    return apply_lanes<simd::Widest>(n, params, grad, m_, v_, previous);
#else
    save_previous(n, params, previous);
    const auto size = static_cast<Eigen::Index>(n);
    Eigen::Map<Eigen::ArrayXf> p(params, size), m(m_, size), v(v_, size);
    Eigen::Map<const Eigen::ArrayXf> g(grad, size);
    if (decay_ != 1.0f) p *= decay_;
    m = b1_ * m + c1_ * g;
    v = b2_ * v + c2_ * g.square();
    p -= step_size_ * m / (v.unaryExpr(ExactSqrt()) * inv_sqrt_bc2_ + eps_);
    return p.allFinite();
#endif
}

void Adam::naive(const OptimizerConfig& c, double weight_decay, std::int64_t t, std::size_t n, double* p,
                 const double* g, double* m, double* v) {
    for (std::size_t i = 0; i < n; ++i) {
        p[i] *= 1 - c.learning_rate * weight_decay;
        m[i] = c.beta1 * m[i] + (1 - c.beta1) * g[i];
        v[i] = c.beta2 * v[i] + (1 - c.beta2) * g[i] * g[i];
        const double mhat = m[i] / (1 - std::pow(c.beta1, double(t)));
        const double vhat = v[i] / (1 - std::pow(c.beta2, double(t)));
        p[i] -= c.learning_rate * mhat / (std::sqrt(vhat) + c.epsilon);
    }
}

// ---- SGD -------------------------------------------------------------------------------------

Sgd::Sgd(const OptimizerConfig& c) : mu_(static_cast<float>(c.momentum)), nesterov_(c.nesterov) {}

void Sgd::begin_step(std::int64_t, double lr) { lr_ = static_cast<float>(lr); }

bool Sgd::apply(std::size_t n, float* params, const float* grad, float* u_, float*, float* previous) const {
#ifdef FASTAE_HAVE_AVX2_MATH
    return apply_lanes<simd::Widest>(n, params, grad, u_, previous);
#else
    save_previous(n, params, previous);
    const auto size = static_cast<Eigen::Index>(n);
    Eigen::Map<Eigen::ArrayXf> p(params, size), u(u_, size);
    Eigen::Map<const Eigen::ArrayXf> g(grad, size);
    if (mu_ == 0.0f) {
        p -= lr_ * g;
    } else {
        u = mu_ * u + g;
        if (nesterov_) {
            p -= lr_ * (g + mu_ * u);
        } else {
            p -= lr_ * u;
        }
    }
    return p.allFinite();
#endif
}

void Sgd::naive(const OptimizerConfig& c, std::size_t n, double* p, const double* g, double* u) {
    for (std::size_t i = 0; i < n; ++i) {
        if (c.momentum == 0) {
            p[i] -= c.learning_rate * g[i];
        } else {
            u[i] = c.momentum * u[i] + g[i];
            p[i] -= c.learning_rate * (c.nesterov ? g[i] + c.momentum * u[i] : u[i]);
        }
    }
}

// ---- RMSprop ---------------------------------------------------------------------------------

RmsProp::RmsProp(const OptimizerConfig& c)
    : rho_(static_cast<float>(c.rho)), c_(static_cast<float>(1.0 - c.rho)), eps_(static_cast<float>(c.epsilon)) {}

void RmsProp::begin_step(std::int64_t, double lr) { lr_ = static_cast<float>(lr); }

bool RmsProp::apply(std::size_t n, float* params, const float* grad, float* s_, float*, float* previous) const {
#ifdef FASTAE_HAVE_AVX2_MATH
    return apply_lanes<simd::Widest>(n, params, grad, s_, previous);
#else
    save_previous(n, params, previous);
    const auto size = static_cast<Eigen::Index>(n);
    Eigen::Map<Eigen::ArrayXf> p(params, size), s(s_, size);
    Eigen::Map<const Eigen::ArrayXf> g(grad, size);
    s = rho_ * s + c_ * g.square();
    p -= lr_ * g / (s.unaryExpr(ExactSqrt()) + eps_);
    return p.allFinite();
#endif
}

void RmsProp::naive(const OptimizerConfig& c, std::size_t n, double* p, const double* g, double* s) {
    for (std::size_t i = 0; i < n; ++i) {
        s[i] = c.rho * s[i] + (1 - c.rho) * g[i] * g[i];
        p[i] -= c.learning_rate * g[i] / (std::sqrt(s[i]) + c.epsilon);
    }
}

// ---- the rule of a kind, and its state -------------------------------------------------------

std::unique_ptr<UpdateRule> make_rule(const OptimizerConfig& c) {
    switch (c.kind) {
        case OptimizerKind::adam: return std::make_unique<Adam>(c);
        case OptimizerKind::adamw: return std::make_unique<AdamW>(c);
        case OptimizerKind::sgd: return std::make_unique<Sgd>(c);
        case OptimizerKind::rmsprop: return std::make_unique<RmsProp>(c);
    }
    throw std::invalid_argument("make_rule: invalid optimizer kind");
}

void optimizer_step_naive(const OptimizerConfig& c, std::int64_t t, std::size_t n, double* p, const double* g,
                          double* s0, double* s1) {
    switch (c.kind) {
        case OptimizerKind::adam: Adam::naive(c, 0.0, t, n, p, g, s0, s1); return;
        case OptimizerKind::adamw: AdamW::naive(c, t, n, p, g, s0, s1); return;
        case OptimizerKind::sgd: Sgd::naive(c, n, p, g, s0); return;
        case OptimizerKind::rmsprop: RmsProp::naive(c, n, p, g, s0); return;
    }
    throw std::invalid_argument("optimizer_step_naive: invalid optimizer kind");
}

Optimizer::Optimizer(const OptimizerConfig& config, std::size_t n_params)
    : config_(config), n_(n_params), rule_(make_rule(config)) {
    for (int k = 0; k < traits_of(config.kind).n_slots; ++k) slots_[k].assign(n_params, 0.0f);
}

Optimizer::Optimizer(const OptimizerConfig& config, const OptimizerState& state)
    : config_(config), n_(state.m.size()), t_(state.steps), rule_(make_rule(config)) {
    slots_[0].assign(state.m.begin(), state.m.end());
    slots_[1].assign(state.v.begin(), state.v.end());
}

OptimizerState Optimizer::export_state() const {
    OptimizerState s;
    s.config = config_;
    s.steps = t_;
    s.m.assign(slots_[0].begin(), slots_[0].end());
    s.v.assign(slots_[1].begin(), slots_[1].end());
    return s;
}

void Optimizer::begin_step() {
    ++t_;
    rule_->begin_step(t_, config_.learning_rate);
}

bool Optimizer::apply(float* params, const float* grad, std::size_t begin, std::size_t end, float* previous) {
    return rule_->apply(end - begin, params + begin, grad + begin, slot(0, begin), slot(1, begin),
                        previous ? previous + begin : nullptr);
}

}  // namespace fastae::detail
