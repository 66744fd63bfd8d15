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

#include "activation.h"
#include "eigen_types.h"
#include "fastae/config.h"

namespace fastae::detail {

// z: (d, n) logits, overwritten by dL/dz * grad_scale when want_grad, else by the outputs f(z).
// y: (d, n) targets. sample_loss (n, nullable): per-sample mean loss. scratch: 3 * d floats at
// an aligned address, so that nothing is allocated here and every column's sum runs over the same
// alignment (Eigen's vectorised sums peel by address: summing in place over z or y would make the
// rounding depend on where the caller's buffers happen to lie). Returns the sum of the
// elementwise losses over the block.
inline double output_pass(Loss loss, Activation out_act, MutMatrixMap z, ConstMatrixMap y,
                          float grad_scale, bool want_grad, float* sample_loss, float* scratch) {
    const Eigen::Index d = z.rows();
    auto tmp = Eigen::Map<Eigen::ArrayXf>(scratch, d);
    auto elementwise = Eigen::Map<Eigen::ArrayXf>(scratch + d, d);
    auto tmp2 = Eigen::Map<Eigen::ArrayXf>(scratch + 2 * d, d);
    double total = 0.0;
    for (Eigen::Index j = 0; j < z.cols(); ++j) {
        auto zc = z.col(j).array();
        auto xc = y.col(j).array();
        float col_sum;
        if (loss == Loss::bce) {
            // e = exp(-|z|) is shared by the loss and the sigmoid. log(1 + e) for e in (0, 1]
            // is 2 atanh(t), t = e / (2 + e) <= 1/3, summed as its odd series to t^13 (error
            // < 2e-8 relative): Eigen's log1p is not vectorised and cost more than the rest.
            auto& e = tmp;
            e = (-zc.abs()).exp();
            auto& t = tmp2;
            t = e / (e + 2.0f);
            elementwise = zc.max(0.0f) - zc * xc +
                          2.0f * t * (1.0f + t.square() * (1.0f / 3 + t.square() * (1.0f / 5 + t.square() *
                                      (1.0f / 7 + t.square() * (1.0f / 9 + t.square() *
                                      (1.0f / 11 + t.square() * (1.0f / 13)))))));
            col_sum = elementwise.sum();
            const auto sig = (zc >= 0.0f).select(Eigen::ArrayXf::Ones(d), e) / (1.0f + e);
            if (want_grad) {
                zc = (sig - xc) * grad_scale;
            } else {
                zc = sig;
            }
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
