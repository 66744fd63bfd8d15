// optimizer.cpp -- Adam and SGD over the flat parameter buffer (formulas in optimizer.h).
#include "optimizer.h"

#include <cmath>

#include "eigen_types.h"

namespace fastae::detail {

Optimizer::Optimizer(const OptimizerConfig& config, std::size_t n_params)
    : config_(config), n_(n_params), m_(n_params, 0.0f) {
    if (config.kind == OptimizerKind::adam) v_.assign(n_params, 0.0f);
}

Optimizer::Optimizer(const OptimizerConfig& config, const OptimizerState& state)
    : config_(config), n_(state.m.size()), t_(state.steps), m_(state.m.begin(), state.m.end()),
      v_(state.v.begin(), state.v.end()) {}

OptimizerState Optimizer::export_state() const {
    OptimizerState s;
    s.config = config_;
    s.steps = t_;
    s.m.assign(m_.begin(), m_.end());
    s.v.assign(v_.begin(), v_.end());
    return s;
}

void Optimizer::begin_step() {
    ++t_;
    if (config_.kind == OptimizerKind::adam) {
        const double bc1 = 1.0 - std::pow(config_.beta1, static_cast<double>(t_));
        const double bc2 = 1.0 - std::pow(config_.beta2, static_cast<double>(t_));
        step_size_ = static_cast<float>(config_.learning_rate / bc1);
        inv_sqrt_bc2_ = static_cast<float>(1.0 / std::sqrt(bc2));
    }
}

void Optimizer::apply(float* params, const float* grad, std::size_t begin, std::size_t end) {
    const auto n = static_cast<Eigen::Index>(end - begin);
    Eigen::Map<Eigen::ArrayXf> p(params + begin, n);
    Eigen::Map<const Eigen::ArrayXf> g(grad + begin, n);
    Eigen::Map<Eigen::ArrayXf> m(m_.data() + begin, n);
    if (config_.kind == OptimizerKind::adam) {
        Eigen::Map<Eigen::ArrayXf> v(v_.data() + begin, n);
        // 1 - beta is formed in double, as torch does, before rounding to float.
        const float b1 = static_cast<float>(config_.beta1);
        const float b2 = static_cast<float>(config_.beta2);
        const float c1 = static_cast<float>(1.0 - config_.beta1);
        const float c2 = static_cast<float>(1.0 - config_.beta2);
        const float eps = static_cast<float>(config_.epsilon);
        m = b1 * m + c1 * g;
        v = b2 * v + c2 * g.square();
        p -= step_size_ * m / (v.sqrt() * inv_sqrt_bc2_ + eps);
        return;
    }
    const float lr = static_cast<float>(config_.learning_rate);
    const float mu = static_cast<float>(config_.momentum);
    if (mu == 0.0f) {
        p -= lr * g;
        return;
    }
    m = mu * m + g;
    if (config_.nesterov) {
        p -= lr * (g + mu * m);
    } else {
        p -= lr * m;
    }
}

void optimizer_step_naive(const OptimizerConfig& c, std::int64_t t, std::size_t n, double* p,
                          const double* g, double* m, double* v) {
    for (std::size_t i = 0; i < n; ++i) {
        if (c.kind == OptimizerKind::adam) {
            m[i] = c.beta1 * m[i] + (1 - c.beta1) * g[i];
            v[i] = c.beta2 * v[i] + (1 - c.beta2) * g[i] * g[i];
            const double mhat = m[i] / (1 - std::pow(c.beta1, double(t)));
            const double vhat = v[i] / (1 - std::pow(c.beta2, double(t)));
            p[i] -= c.learning_rate * mhat / (std::sqrt(vhat) + c.epsilon);
        } else if (c.momentum == 0) {
            p[i] -= c.learning_rate * g[i];
        } else {
            m[i] = c.momentum * m[i] + g[i];
            p[i] -= c.learning_rate * (c.nesterov ? g[i] + c.momentum * m[i] : m[i]);
        }
    }
}

}  // namespace fastae::detail
