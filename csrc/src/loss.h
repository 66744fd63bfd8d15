// loss.h -- the output pass: output activation, loss value and dL/dz in one sweep over the
// logits, one sample (column) at a time so each column stays in L1. Next to it, the naive twin.
//
// Elementwise losses, with z the output logits, a = f(z) the output, x the target:
//   bce (output f = sigmoid, fused, stable): l = max(z, 0) - z * x + log(1 + exp(-|z|))
//        dl/dz = sigmoid(z) - x, with sigmoid(z) = (z >= 0 ? 1 : e) / (1 + e), e = exp(-|z|)
//   mse (any output f): l = (a - x)^2,  dl/dz = 2 (a - x) f'(a)
// The reported loss is the mean over all elements; gradients are scaled by `grad_scale`, which
// the caller sets to 1 / (batch samples * outputs) so that shards of a batch sum to its gradient.
#pragma once

#include <cmath>
#include <cstddef>
#include <utility>

#include "activation.h"
#include "eigen_types.h"
#include "fastae/config.h"
#include "vector_math.h"

namespace fastae::detail {

// One column of the BCE pass (d logits z, targets x): returns the sum of the column's losses
// and overwrites z with (sigmoid(z) - x) * grad_scale, or with sigmoid(z) when !want_grad.
// e = exp(-|z|) is shared by the loss and the sigmoid; log(1 + e) for e in (0, 1] is
// 2 atanh(t), t = e / (2 + e) <= 1/3, summed as its odd series to t^13 (error < 2e-8
// relative): Eigen's log1p is not vectorised and cost more than the rest. Two versions of the
// same formulas: Eigen's array expressions (any build; scratch: 3 * d aligned floats), and AVX2
// intrinsics with a cheaper exp (vector_math.h), used where available.
template <typename ZCol, typename XCol>
float bce_column_eigen(ZCol&& zc, const XCol& xc, float grad_scale, bool want_grad, float* scratch) {
    const Eigen::Index d = zc.size();
    auto e = Eigen::Map<Eigen::ArrayXf>(scratch, d);
    auto elementwise = Eigen::Map<Eigen::ArrayXf>(scratch + d, d);
    auto t = Eigen::Map<Eigen::ArrayXf>(scratch + 2 * d, d);
    e = (-zc.abs()).exp();
    t = e / (e + 2.0f);
    elementwise = zc.max(0.0f) - zc * xc +
                  2.0f * t * (1.0f + t.square() * (1.0f / 3 + t.square() * (1.0f / 5 + t.square() *
                              (1.0f / 7 + t.square() * (1.0f / 9 + t.square() *
                              (1.0f / 11 + t.square() * (1.0f / 13)))))));
    const float col_sum = elementwise.sum();
    const auto sig = (zc >= 0.0f).select(Eigen::ArrayXf::Ones(d), e) / (1.0f + e);
    if (want_grad) {
        zc = (sig - xc) * grad_scale;
    } else {
        zc = sig;
    }
    return col_sum;
}

#ifdef FASTAE_HAVE_AVX2_MATH
// Lanes are summed in 8 running sums, then across, in a fixed order; the column's last d % 8
// elements go through the same vector code with masked loads and stores.
inline float bce_column_avx2(float* z, const float* x, Eigen::Index d, float grad_scale, bool want_grad) {
    using namespace avx2;
    const __m256 sign = _mm256_set1_ps(-0.0f), zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
    const __m256 scale = _mm256_set1_ps(grad_scale);
    __m256 sum = zero;
    auto lanes = [&](__m256 zv, __m256 xv) {  // returns the outputs, adds the losses to sum
        const __m256 e = exp_nonpositive(_mm256_or_ps(zv, sign));  // exp(-|z|)
        const __m256 l = _mm256_add_ps(_mm256_fnmadd_ps(zv, xv, _mm256_max_ps(zv, zero)), log1p_unit(e));
        const __m256 numerator = _mm256_blendv_ps(e, one, _mm256_cmp_ps(zv, zero, _CMP_GE_OQ));
        const __m256 sig = _mm256_div_ps(numerator, _mm256_add_ps(one, e));
        return std::make_pair(l, want_grad ? _mm256_mul_ps(_mm256_sub_ps(sig, xv), scale) : sig);
    };
    Eigen::Index i = 0;
    for (; i + 8 <= d; i += 8) {
        const auto [l, out] = lanes(_mm256_loadu_ps(z + i), _mm256_loadu_ps(x + i));
        sum = _mm256_add_ps(sum, l);
        _mm256_storeu_ps(z + i, out);
    }
    if (i < d) {
        const __m256i mask = first_lanes(int(d - i));
        const auto [l, out] = lanes(_mm256_maskload_ps(z + i, mask), _mm256_maskload_ps(x + i, mask));
        sum = _mm256_add_ps(sum, _mm256_and_ps(l, _mm256_castsi256_ps(mask)));
        _mm256_maskstore_ps(z + i, mask, out);
    }
    return horizontal_sum(sum);
}
#endif

// z: (d, n) logits, overwritten by dL/dz * grad_scale when want_grad, else by the outputs f(z).
// y: (d, n) targets. sample_loss (n, nullable): per-sample mean loss. scratch: 3 * d floats at
// an aligned address, so that nothing is allocated here and every column's sum runs over the same
// alignment (Eigen's vectorised sums peel by address: summing in place over z or y would make the
// rounding depend on where the caller's buffers happen to lie; the AVX2 BCE column never peels).
// Returns the sum of the elementwise losses over the block.
inline double output_pass(Loss loss, Activation out_act, MutMatrixMap z, ConstMatrixMap y,
                          float grad_scale, bool want_grad, float* sample_loss, float* scratch) {
    const Eigen::Index d = z.rows();
    auto tmp = Eigen::Map<Eigen::ArrayXf>(scratch, d);
    auto elementwise = Eigen::Map<Eigen::ArrayXf>(scratch + d, d);
    double total = 0.0;
    for (Eigen::Index j = 0; j < z.cols(); ++j) {
        auto zc = z.col(j).array();
        auto xc = y.col(j).array();
        float col_sum;
        if (loss == Loss::bce) {
#ifdef FASTAE_HAVE_AVX2_MATH
            col_sum = bce_column_avx2(zc.data(), xc.data(), d, grad_scale, want_grad);
#else
            col_sum = bce_column_eigen(zc, xc, grad_scale, want_grad, scratch);
#endif
        } else {
            activation_forward(out_act, zc);
            auto& diff = tmp;
            diff = zc - xc;
            elementwise = diff.square();
            col_sum = elementwise.sum();
            if (want_grad) {
                auto g = (2.0f * grad_scale) * diff;
                switch (out_act) {
                    case Activation::linear: zc = g; break;
                    case Activation::relu: zc = (zc > 0.0f).select(g, 0.0f); break;
                    case Activation::sigmoid: zc = g * zc * (1.0f - zc); break;
                    case Activation::tanh: zc = g * (1.0f - zc.square()); break;
                }
            }
        }
        total += col_sum;
        if (sample_loss) sample_loss[j] = col_sum / static_cast<float>(d);
    }
    return total;
}

// Naive twin, in double: one element's loss and dl/dz (unscaled).
inline void loss_naive(Loss loss, Activation out_act, double z, double x, double* l, double* dz) {
    if (loss == Loss::bce) {
        const double s = 1.0 / (1.0 + std::exp(-z));
        *l = -(x * std::log(s) + (1.0 - x) * std::log(1.0 - s));
        *dz = s - x;
        return;
    }
    const double a = activation_naive(out_act, z);
    const double fp = activation_derivative_naive(out_act, a);
    *l = (a - x) * (a - x);
    *dz = 2.0 * (a - x) * fp;
}

}  // namespace fastae::detail
