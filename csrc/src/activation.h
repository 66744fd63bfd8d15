// activation.h -- activations: forward (f(z)) and backward (dZ = dA * f'), each next to its naive
// scalar twin that the tests compare against. Every activation but softmax is elementwise, so
// these run over any contiguous buffer of n values; softmax is a column pass (softmax_columns)
// and, on the output layer only, is fused with cross-entropy (head.h).
//
//   name        f(z)                                  f' from the output a     f' from z
//   linear      z                                     1                        1
//   relu        max(z, 0)                             a > 0                    z > 0
//   leaky_relu  z > 0 ? z : s z       (s = alpha)     a > 0 ? 1 : s            z > 0 ? 1 : s
//   elu         z > 0 ? z : alpha (e^z - 1)           a > 0 ? 1 : a + alpha    z > 0 ? 1 : alpha e^z
//   gelu        z Phi(z) = z (1 + erf(z / sqrt 2)) / 2   (needs z)             Phi(z) + z phi(z)
//   tanh        tanh(z)                               1 - a^2                  1 - tanh(z)^2
//   sigmoid     1 / (1 + e^-z)                        a (1 - a)                s (1 - s), s = f(z)
//   softplus    log(1 + e^z) = max(z, 0) + log1p(e^-|z|)   -expm1(-a)          sigmoid(z)
//   softmax     e^z_k / sum_j e^z_j (per sample)      (output only, fused with cross-entropy)
// At z = 0, f' is the value PyTorch uses: relu 0, leaky_relu s, elu alpha (from the output
// a = 0: a + alpha). Phi and phi are the standard normal distribution and density.
// The "from the output" form is used when training keeps only a = f(z) (in place over z); layers
// whose activation needs z (vocabulary.h: needs_preactivation) or that use dropout keep z.
#pragma once

#include <cmath>
#include <stdexcept>

#include "eigen_types.h"
#include "fastae/config.h"

namespace fastae::detail {

namespace activation_constants {
constexpr float kInvSqrt2 = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;
}  // namespace activation_constants

[[noreturn]] inline void softmax_is_not_elementwise() {
    throw std::logic_error("fastae: softmax is not elementwise (it runs as a column pass, head.h)");
}

// a[0..n) = f(z[0..n)); a may equal z (in place). Not for softmax.
inline void activation_forward(const ActivationSpec& act, const float* z, float* a, Eigen::Index n) {
    using namespace activation_constants;
    const Eigen::Map<const Eigen::ArrayXf> zv(z, n);
    Eigen::Map<Eigen::ArrayXf> av(a, n);
    const float alpha = static_cast<float>(act.alpha);
    switch (act.kind) {
        case Activation::linear: if (a != z) av = zv; break;
        case Activation::relu: av = zv.max(0.0f); break;
        case Activation::leaky_relu: av = (zv > 0.0f).select(zv, alpha * zv); break;
        case Activation::elu: av = (zv > 0.0f).select(zv, alpha * zv.min(0.0f).expm1()); break;
        case Activation::gelu:
            for (Eigen::Index i = 0; i < n; ++i) a[i] = 0.5f * z[i] * (1.0f + std::erf(z[i] * kInvSqrt2));
            break;
        case Activation::tanh: av = zv.tanh(); break;
        case Activation::sigmoid: av = zv.logistic(); break;
        case Activation::softplus: av = zv.max(0.0f) + (-zv.abs()).exp().log1p(); break;
        case Activation::softmax: softmax_is_not_elementwise();
    }
}

// d[0..n) *= f', from z when z is given, else from the outputs a (not for needs_preactivation
// activations). Not for softmax.
inline void activation_backward(const ActivationSpec& act, float* d, const float* a, const float* z,
                                Eigen::Index n) {
    using namespace activation_constants;
    Eigen::Map<Eigen::ArrayXf> dv(d, n);
    const float alpha = static_cast<float>(act.alpha);
    if (z != nullptr) {
        const Eigen::Map<const Eigen::ArrayXf> zv(z, n);
        switch (act.kind) {
            case Activation::linear: break;
            case Activation::relu: dv = (zv > 0.0f).select(dv, 0.0f); break;
            case Activation::leaky_relu: dv = (zv > 0.0f).select(dv, alpha * dv); break;
            case Activation::elu: dv = (zv > 0.0f).select(dv, alpha * zv.min(0.0f).exp() * dv); break;
            case Activation::gelu:
                for (Eigen::Index i = 0; i < n; ++i) {
                    const float cdf = 0.5f * (1.0f + std::erf(z[i] * kInvSqrt2));
                    const float pdf = kInvSqrt2Pi * std::exp(-0.5f * z[i] * z[i]);
                    d[i] *= cdf + z[i] * pdf;
                }
                break;
            case Activation::tanh: dv = dv * (1.0f - zv.tanh().square()); break;
            case Activation::sigmoid: dv = dv * zv.logistic() * (1.0f - zv.logistic()); break;
            case Activation::softplus: dv = dv * zv.logistic(); break;
            case Activation::softmax: softmax_is_not_elementwise();
        }
        return;
    }
    const Eigen::Map<const Eigen::ArrayXf> av(a, n);
    switch (act.kind) {
        case Activation::linear: break;
        case Activation::relu: dv = (av > 0.0f).select(dv, 0.0f); break;
        case Activation::leaky_relu: dv = (av > 0.0f).select(dv, alpha * dv); break;
        case Activation::elu: dv = (av > 0.0f).select(dv, (av + alpha) * dv); break;
        case Activation::gelu: throw std::logic_error("fastae: gelu's derivative needs z");
        case Activation::tanh: dv = dv * (1.0f - av.square()); break;
        case Activation::sigmoid: dv = dv * av * (1.0f - av); break;
        case Activation::softplus: dv = dv * -(-av).expm1(); break;
        case Activation::softmax: softmax_is_not_elementwise();
    }
}

// Softmax of each column of z (d, b), in place: e^(z - max) / sum, the max subtracted for range.
inline void softmax_columns(float* z, Eigen::Index d, Eigen::Index b) {
    for (Eigen::Index j = 0; j < b; ++j) {
        Eigen::Map<Eigen::ArrayXf> c(z + j * d, d);
        c = (c - c.maxCoeff()).exp();
        c /= c.sum();
    }
}

// f applied to a (d, b) block in place: elementwise, or per column for softmax.
inline void activate_block(const ActivationSpec& act, float* z, Eigen::Index d, Eigen::Index b) {
    if (act.kind == Activation::softmax) {
        softmax_columns(z, d, b);
    } else {
        activation_forward(act, z, z, d * b);
    }
}

// ---- naive twins, one value at a time in double ---------------------------------------------

inline double activation_naive(const ActivationSpec& act, double z) {
    const double alpha = act.alpha;
    switch (act.kind) {
        case Activation::linear: return z;
        case Activation::relu: return z > 0 ? z : 0;
        case Activation::leaky_relu: return z > 0 ? z : alpha * z;
        case Activation::elu: return z > 0 ? z : alpha * (std::exp(z) - 1);
        case Activation::gelu: return 0.5 * z * (1 + std::erf(z / std::sqrt(2.0)));
        case Activation::tanh: return std::tanh(z);
        case Activation::sigmoid: return 1 / (1 + std::exp(-z));
        case Activation::softplus: return z > 0 ? z + std::log1p(std::exp(-z)) : std::log1p(std::exp(z));
        case Activation::softmax: softmax_is_not_elementwise();
    }
    return z;
}

// f'(z), from z.
inline double activation_derivative_naive(const ActivationSpec& act, double z) {
    const double alpha = act.alpha;
    switch (act.kind) {
        case Activation::linear: return 1;
        case Activation::relu: return z > 0 ? 1 : 0;
        case Activation::leaky_relu: return z > 0 ? 1 : alpha;
        case Activation::elu: return z > 0 ? 1 : alpha * std::exp(z);
        case Activation::gelu: {
            const double pi = 3.14159265358979323846;
            return 0.5 * (1 + std::erf(z / std::sqrt(2.0))) + z * std::exp(-0.5 * z * z) / std::sqrt(2 * pi);
        }
        case Activation::tanh: return 1 - std::tanh(z) * std::tanh(z);
        case Activation::sigmoid: {
            const double s = 1 / (1 + std::exp(-z));
            return s * (1 - s);
        }
        case Activation::softplus: return 1 / (1 + std::exp(-z));
        case Activation::softmax: softmax_is_not_elementwise();
    }
    return 1;
}

}  // namespace fastae::detail
