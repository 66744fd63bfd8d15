// vae.h -- a variational code (fastae/config.h: VariationalSpec): the reparameterisation step
// between the code layer and the decoder, its backward pass with the KL term, the draws of eps
// keyed by dataset row, and their naive twins (double, plain loops).
//
// The code layer's output (its Z, linear) holds per sample 2k values: the means mu_i (rows
// [0, k)) and the raw log-variances r_i (rows [k, 2k)). With
//   v_i = clamp(r_i, kLogVarMin, kLogVarMax),   s_i = exp(v_i / 2),
// the decoder reads z_i = mu_i + s_i eps_i (training: eps_i ~ N(0, 1), code_noise below) or
// z_i = mu_i (inference). The sample's KL divergence to the standard normal is
//   KL = 1/2 sum_i (mu_i^2 + exp(v_i) - v_i - 1).
// The objective adds beta_e * KL to the sample's reconstruction loss (summed over its outputs),
// both times the sample's weight w, and averages over the batch (c = w / batch samples). Backward,
// with g_i = dObjective/dz_i from the decoder (already scaled by c):
//   dObjective/dmu_i = g_i + c beta_e mu_i
//   dObjective/dr_i  = [kLogVarMin <= r_i <= kLogVarMax] (g_i eps_i s_i / 2 + c beta_e (exp(v_i) - 1) / 2)
// The clamp keeps exp finite; its gradient is 0 outside the bounds and 1 inside them (bounds
// included), as torch.clamp's.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "eigen_types.h"
#include "fastae/config.h"
#include "head.h"
#include "rng.h"

namespace fastae::detail {

inline double clamp_logvar(double r) { return std::min(std::max(r, kLogVarMin), kLogVarMax); }
inline bool logvar_inside(double r) { return r >= kLogVarMin && r <= kLogVarMax; }

// beta_e for 1-based epoch e (VariationalSpec); epoch 0 (inference, validation): beta.
inline double kl_weight(const VariationalSpec& v, int epoch) {
    if (v.kl_warmup_epochs <= 0 || epoch <= 0) return v.beta;
    return v.beta * std::min(1.0, double(epoch) / double(v.kl_warmup_epochs));
}

// eps for one sample's k code units: k standard normals (rng.h's Box-Muller, rounded to float)
// from a stream keyed by (seed, epoch, row), apart from dropout's and input noise's keys, so a
// seed gives the same draws whatever the threads or the batch's order.
inline void code_noise(std::uint64_t seed, int epoch, std::uint64_t row, float* eps, Eigen::Index k) {
    constexpr std::uint64_t kCodeStream = 0x8CB92BA72F3D8DD7ull;
    Rng rng(mix64(seed ^ kCodeStream) ^ mix64(std::uint64_t(std::uint32_t(epoch)) * 0x9E3779B97F4A7C15ull + row));
    for (Eigen::Index i = 0; i < k; ++i) eps[i] = float(rng.normal());
}

// One sample's KL (float inputs, summed in double): mu and r are k values each.
inline double sample_kl(const float* mu, const float* r, Eigen::Index k) {
    double kl = 0.0;
    for (Eigen::Index i = 0; i < k; ++i) {
        const double v = clamp_logvar(double(r[i]));
        kl += 0.5 * (double(mu[i]) * double(mu[i]) + std::exp(v) - v - 1.0);
    }
    return kl;
}

// z (2k, b) -> a (k, b): a = mu + exp(v / 2) * eps with eps drawn into eps (k, b) for column j's
// row rows(j) when `draw`, else a = mu.
template <typename Rows>
void gaussian_forward(const float* z, float* a, float* eps, Eigen::Index k, Eigen::Index b, bool draw,
                      std::uint64_t seed, int epoch, Rows&& rows) {
    for (Eigen::Index j = 0; j < b; ++j) {
        const float* mu = z + j * 2 * k;
        const float* r = mu + k;
        float* out = a + j * k;
        if (!draw) {
            std::copy(mu, mu + k, out);
            continue;
        }
        float* e = eps + j * k;
        code_noise(seed, epoch, rows(j), e, k);
        for (Eigen::Index i = 0; i < k; ++i) {
            out[i] = mu[i] + std::exp(float(clamp_logvar(r[i])) * 0.5f) * e[i];
        }
    }
}

// The backward pass above: z (2k, b) the code layer's outputs, eps (k, b) the draws (null: the
// inference path, z = mu), g (k, b) dObjective/dz; writes dObjective/d(mu, r) into dz (2k, b), which
// may be z itself (each value is read before it is written). Returns the sum over the columns of
// weight * KL (the scale's weight, unscaled).
inline double gaussian_backward(const float* z, const float* eps, const float* g, float* dz, Eigen::Index k,
                                Eigen::Index b, ColumnScale scale, double beta) {
    double total = 0.0;
    for (Eigen::Index j = 0; j < b; ++j) {
        const float c = scale(j) * float(beta);
        const float* mu = z + j * 2 * k;
        const float* r = mu + k;
        const float* gj = g + j * k;
        const float* e = eps ? eps + j * k : nullptr;
        const double kl = sample_kl(mu, r, k);
        total += scale.weight ? kl * double(scale.weight[j]) : kl;
        float* dmu = dz + j * 2 * k;
        float* dr = dmu + k;
        for (Eigen::Index i = 0; i < k; ++i) {
            const float m = mu[i], rv = r[i];
            const float v = float(clamp_logvar(rv));
            const float s = std::exp(v * 0.5f);
            const float grad_r = (e ? gj[i] * e[i] * s * 0.5f : 0.0f) + c * (std::exp(v) - 1.0f) * 0.5f;
            dmu[i] = gj[i] + c * m;
            dr[i] = logvar_inside(rv) ? grad_r : 0.0f;
        }
    }
    return total;
}

// Naive twins, one sample in double: z (2k) -> a (k) with eps (k, or null: a = mu); and the
// backward pass from g (k) into dz (2k) with the KL's scale c (its value is sample_kl).
inline void gaussian_forward_naive(const double* z, const double* eps, double* a, int k) {
    for (int i = 0; i < k; ++i) a[i] = z[i] + (eps ? std::exp(clamp_logvar(z[k + i]) / 2) * eps[i] : 0.0);
}
inline double gaussian_backward_naive(const double* z, const double* eps, const double* g, double c, double* dz, int k) {
    double kl = 0.0;
    for (int i = 0; i < k; ++i) {
        const double mu = z[i], r = z[k + i], v = clamp_logvar(r);
        kl += 0.5 * (mu * mu + std::exp(v) - v - 1.0);
        dz[i] = g[i] + c * mu;
        const double dv = (eps ? g[i] * eps[i] * std::exp(v / 2) / 2 : 0.0) + c * (std::exp(v) - 1.0) / 2;
        dz[k + i] = logvar_inside(r) ? dv : 0.0;
    }
    return kl;
}

}  // namespace fastae::detail
