// optimizer.cpp -- Adam and SGD over the flat parameter buffer (formulas in optimizer.h).
#include "optimizer.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "eigen_types.h"
#include "vector_math.h"

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

namespace {

#ifdef FASTAE_HAVE_AVX2_MATH
// Adam over [0, n) of the given pointers, with the operations of the Eigen expression in
// Optimizer::apply in the same order (no FMA), so both give bit-identical results.
bool adam_avx2(std::size_t n, float* p, const float* g, float* m, float* v, float* previous, float b1,
               float b2, float c1, float c2, float step, float inv_sqrt_bc2, float eps) {
    const __m256 vb1 = _mm256_set1_ps(b1), vb2 = _mm256_set1_ps(b2), vc1 = _mm256_set1_ps(c1),
                 vc2 = _mm256_set1_ps(c2), vstep = _mm256_set1_ps(step),
                 vinv = _mm256_set1_ps(inv_sqrt_bc2), veps = _mm256_set1_ps(eps);
    const __m256 magnitude = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 inf = _mm256_set1_ps(std::numeric_limits<float>::infinity());
    __m256 bad = _mm256_setzero_ps();
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 gv = _mm256_loadu_ps(g + i);
        const __m256 pv = _mm256_loadu_ps(p + i);
        if (previous) _mm256_storeu_ps(previous + i, pv);
        const __m256 mv = _mm256_add_ps(_mm256_mul_ps(vb1, _mm256_loadu_ps(m + i)), _mm256_mul_ps(vc1, gv));
        const __m256 vv = _mm256_add_ps(_mm256_mul_ps(vb2, _mm256_loadu_ps(v + i)),
                                        _mm256_mul_ps(vc2, _mm256_mul_ps(gv, gv)));
        const __m256 denom = _mm256_add_ps(_mm256_mul_ps(_mm256_sqrt_ps(vv), vinv), veps);
        const __m256 pn = _mm256_sub_ps(pv, _mm256_div_ps(_mm256_mul_ps(vstep, mv), denom));
        _mm256_storeu_ps(m + i, mv);
        _mm256_storeu_ps(v + i, vv);
        _mm256_storeu_ps(p + i, pn);
        bad = _mm256_or_ps(bad, _mm256_cmp_ps(_mm256_and_ps(pn, magnitude), inf, _CMP_NLT_UQ));  // inf or NaN
    }
    bool finite = _mm256_movemask_ps(bad) == 0;
    for (; i < n; ++i) {
        if (previous) previous[i] = p[i];
        m[i] = b1 * m[i] + c1 * g[i];
        v[i] = b2 * v[i] + c2 * (g[i] * g[i]);
        p[i] -= step * m[i] / (std::sqrt(v[i]) * inv_sqrt_bc2 + eps);
        finite = finite && std::isfinite(p[i]);
    }
    return finite;
}
#endif

}  // namespace

bool Optimizer::apply(float* params, const float* grad, std::size_t begin, std::size_t end, float* previous) {
    const auto n = static_cast<Eigen::Index>(end - begin);
    // 1 - beta is formed in double, as torch does, before rounding to float.
    const float b1 = static_cast<float>(config_.beta1);
    const float b2 = static_cast<float>(config_.beta2);
    const float c1 = static_cast<float>(1.0 - config_.beta1);
    const float c2 = static_cast<float>(1.0 - config_.beta2);
    const float eps = static_cast<float>(config_.epsilon);
#ifdef FASTAE_HAVE_AVX2_MATH
    if (config_.kind == OptimizerKind::adam) {
        return adam_avx2(end - begin, params + begin, grad + begin, m_.data() + begin, v_.data() + begin,
                         previous ? previous + begin : nullptr, b1, b2, c1, c2, step_size_, inv_sqrt_bc2_, eps);
    }
#endif
    if (previous) std::copy(params + begin, params + end, previous + begin);
    Eigen::Map<Eigen::ArrayXf> p(params + begin, n);
    Eigen::Map<const Eigen::ArrayXf> g(grad + begin, n);
    Eigen::Map<Eigen::ArrayXf> m(m_.data() + begin, n);
    if (config_.kind == OptimizerKind::adam) {
        Eigen::Map<Eigen::ArrayXf> v(v_.data() + begin, n);
        m = b1 * m + c1 * g;
        v = b2 * v + c2 * g.square();
        p -= step_size_ * m / (v.sqrt() * inv_sqrt_bc2_ + eps);
        return p.allFinite();
    }
    const float lr = static_cast<float>(config_.learning_rate);
    const float mu = static_cast<float>(config_.momentum);
    if (mu == 0.0f) {
        p -= lr * g;
    } else {
        m = mu * m + g;
        if (config_.nesterov) {
            p -= lr * (g + mu * m);
        } else {
            p -= lr * m;
        }
    }
    return p.allFinite();
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
