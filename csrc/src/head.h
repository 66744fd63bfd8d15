// head.h -- the output head: output activation, loss value and dL/dz in one sweep over the
// logits, one sample (column) at a time so each column stays in L1. Next to it, the naive twin.
// One case per loss of vocabulary.h's table (a switch with no default: a new loss does not
// compile until it has its case here).
//
// With z the output logits, a = f(z) the output, x the target (per element unless noted):
//   bce (output f = sigmoid, fused, stable): l = max(z, 0) - z * x + log(1 + exp(-|z|))
//        dl/dz = sigmoid(z) - x, with sigmoid(z) = (z >= 0 ? 1 : e) / (1 + e), e = exp(-|z|)
//   mse, mae, huber (any elementwise output f): elementwise_column below, dl/dz = dl/da f'(z)
//   cross_entropy (output f = softmax, fused, per sample): softmax_ce_column below
// A batch's loss is the mean over its elements (or samples, for cross_entropy) of the sample
// weight times the loss; gradients are scaled per column by ColumnScale.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <stdexcept>

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
// same formulas: Eigen's array expressions (any build; scratch: 3 * d aligned floats), and
// bce_column below on simd.h's vectors with a cheaper exp (vector_math.h), used where available.
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
// The same formulas on V's vectors (simd.h: Vec8, Vec16, or Twin16, Vec16's geometry on two
// halves), with the cheaper exp of vector_math.h, and the log1p terms summed as one log of their
// product: l = max(z, 0) - z x is summed elementwise, while 1 + e (in [1, 2]) is multiplied into
// 8 running products, whose log is taken every 512 elements (64 factors a lane: at most 2^64)
// and at the end. One multiply an element instead of a division and 8 FMAs: the output pass of a
// 784 x 256 tutorial batch (output_pass_bench, Zen 5) took 50-51 against 82-83 us with Vec16,
// 83-84 against 150 us in an AVX2 build (Vec8). The product's rounding
// (at most 64 x 2^-24 relative) moves a lane's log by at most 4e-6, next to log sums up to 44;
// tests hold the column sums to 1e-6 of float64's. The sums and products take a wider vector 8
// lanes at a time, low half first, and the column's last d % lanes elements go through the same
// code as one masked vector whose missing lanes add zeros and multiply by ones; the logs are
// taken after the same elements (512 is a multiple of every width). So every width gives the
// same outputs and the same column sum, bit for bit: the sums and products see the same values
// in the same order as the 8-lane code's (adding +0 changes no sum that starts at +0, since such
// a sum is never -0; multiplying by 1 changes no product), and each lane does the same IEEE
// operations.
template <class V>
float bce_column(float* z, const float* x, Eigen::Index d, float grad_scale, bool want_grad) {
    using namespace simd;
    constexpr std::size_t kLogEvery = 512;
    const auto zero = V::zero(), one = V::set1(1.0f), scale = V::set1(grad_scale);
    __m256 sums = Vec8::zero(), products = Vec8::set1(1.0f);
    sweep<V>(std::size_t(d), [&](const auto& at) {
        const auto zv = at.load(z), xv = at.load(x);
        const auto e = exp_nonpositive<V>(V::negative_abs(zv));  // exp(-|z|)
        const auto sig = V::div(V::select(V::greater_equal(zv, zero), one, e), V::add(one, e));
        sums = V::add_to_sums8(sums, at.keep(V::fnmadd(zv, xv, V::max(zv, zero))));
        products = V::mul_into8(products, V::add(one, at.keep(e)));
        if ((at.i + std::size_t(V::lanes)) % kLogEvery == 0) {
            sums = Vec8::add(sums, log_at_least_one8(products));
            products = Vec8::set1(1.0f);
        }
        at.store(z, want_grad ? V::mul(V::sub(sig, xv), scale) : sig);
    });
    return Vec8::sum_across8(Vec8::add(sums, log_at_least_one8(products)));
}
#endif

// The columns' gradient scales: dL/dz of column j is multiplied by scale * weight[j] (weight
// null: 1). scale is 1 / the batch's normaliser (head_normaliser), so that the shards of a batch
// add up to its gradient.
struct ColumnScale {
    float scale = 1.0f;
    const float* weight = nullptr;
    float operator()(Eigen::Index j) const { return weight ? scale * weight[j] : scale; }
};

// The denominator of a batch's mean loss: samples for per-sample losses (cross-entropy), else
// samples x outputs (the mean over elements, as Keras reports it).
inline double head_normaliser(Loss loss, double samples, Eigen::Index d_out) {
    return traits_of(loss).per_sample ? samples : samples * double(d_out);
}

// One column of an elementwise head other than bce: a = f(z) into `a`, returns the column's loss
// sum; when want_grad, z becomes dL/dz * grad_scale, else the outputs a.
//   mse:   l = (a - x)^2                  dl/da = 2 (a - x)
//   mae:   l = |a - x|                    dl/da = sign(a - x)   (0 at 0, as torch)
//   huber: e = a - x, l = |e| <= delta ? e^2 / 2 : delta (|e| - delta / 2)
//                                         dl/da = |e| <= delta ? e : delta sign(e)  (torch.nn.HuberLoss)
// then dl/dz = dl/da * f'(z) (activation.h; from z, so any elementwise output activation works).
inline float elementwise_column(const HeadSpec& head, const ActivationSpec& out, float* z, const float* x,
                                Eigen::Index d, float grad_scale, bool want_grad, float* scratch) {
    Eigen::Map<Eigen::ArrayXf> zc(z, d);
    const Eigen::Map<const Eigen::ArrayXf> xc(x, d);
    auto a = Eigen::Map<Eigen::ArrayXf>(scratch, d);
    auto elementwise = Eigen::Map<Eigen::ArrayXf>(scratch + d, d);
    auto g = Eigen::Map<Eigen::ArrayXf>(scratch + 2 * d, d);
    activation_forward(out, z, a.data(), d);
    const float delta = static_cast<float>(head.huber_delta);
    switch (head.loss) {
        case Loss::mse:
            elementwise = (a - xc).square();
            g = 2.0f * (a - xc);
            break;
        case Loss::mae:
            elementwise = (a - xc).abs();
            g = (a - xc).sign();
            break;
        case Loss::huber: {
            const auto e = a - xc;
            elementwise = (e.abs() <= delta).select(0.5f * e.square(), delta * (e.abs() - 0.5f * delta));
            g = (e.abs() <= delta).select(e, delta * e.sign());
            break;
        }
        case Loss::bce:
        case Loss::cross_entropy: throw std::logic_error("fastae: elementwise_column: not an elementwise head");
    }
    const float col_sum = elementwise.sum();
    if (want_grad) {
        g *= grad_scale;
        activation_backward(out, g.data(), nullptr, z, d);
        zc = g;
    } else {
        zc = a;
    }
    return col_sum;
}

// One column of softmax with cross-entropy, from the logits z (d) and target probabilities x:
//   l = sum_k x_k (lse - z_k),  lse = m + log sum_k e^(z_k - m),  m = max_k z_k
//   dl/dz = softmax(z) * sum_k x_k - x      (torch.nn.CrossEntropyLoss with probability targets)
// Returns l; z becomes dl/dz * grad_scale, or softmax(z) when !want_grad.
inline float softmax_ce_column(float* z, const float* x, Eigen::Index d, float grad_scale, bool want_grad,
                               float* scratch) {
    Eigen::Map<Eigen::ArrayXf> zc(z, d);
    const Eigen::Map<const Eigen::ArrayXf> xc(x, d);
    auto e = Eigen::Map<Eigen::ArrayXf>(scratch, d);
    auto tmp = Eigen::Map<Eigen::ArrayXf>(scratch + d, d);
    const float m = zc.maxCoeff();
    e = (zc - m).exp();
    const float sum_e = e.sum();
    const float lse = m + std::log(sum_e);
    tmp = xc * (lse - zc);
    const float loss = tmp.sum();
    const float mass = xc.sum();
    if (want_grad) {
        zc = (e * (mass / sum_e) - xc) * grad_scale;
    } else {
        zc = e / sum_e;
    }
    return loss;
}

// The output pass of a batch block: z (d, n) logits, overwritten by dL/dz * scale(j) when
// want_grad, else by the outputs f(z). y: (d, n) targets. sample_loss (n, nullable): each
// sample's own loss (its mean over outputs, or its cross-entropy), unweighted. scratch: 3 * d
// floats at an aligned address, so that nothing is allocated here and every column's sum runs over
// the same alignment (Eigen's vectorised sums peel by address: summing in place over z or y would
// make the rounding depend on where the caller's buffers happen to lie; the vector BCE column never
// peels). Returns the sum over samples of weight * the sample's loss sum (over its outputs); divided
// by head_normaliser it is the batch's mean loss.
inline double head_pass(const HeadSpec& head, const ActivationSpec& out, MutMatrixMap z, ConstMatrixMap y,
                        ColumnScale scale, bool want_grad, float* sample_loss, float* scratch,
                        bool sum_outputs = false) {
    const Eigen::Index d = z.rows();
    // sum_outputs: a sample's loss is its sum over the outputs (a variational network's).
    const float per_sample_divisor = traits_of(head.loss).per_sample || sum_outputs ? 1.0f : static_cast<float>(d);
    double total = 0.0;
    for (Eigen::Index j = 0; j < z.cols(); ++j) {
        float* zc = z.col(j).data();
        const float* xc = y.col(j).data();
        const float grad_scale = scale(j);
        float col_sum = 0.0f;
        switch (head.loss) {
            case Loss::bce:
#if defined(FASTAE_HAVE_AVX2_MATH)
                col_sum = bce_column<simd::Widest>(zc, xc, d, grad_scale, want_grad);
#else
                col_sum = bce_column_eigen(Eigen::Map<Eigen::ArrayXf>(zc, d), Eigen::Map<const Eigen::ArrayXf>(xc, d),
                                           grad_scale, want_grad, scratch);
#endif
                break;
            case Loss::cross_entropy: col_sum = softmax_ce_column(zc, xc, d, grad_scale, want_grad, scratch); break;
            case Loss::mse:
            case Loss::mae:
            case Loss::huber:
                col_sum = elementwise_column(head, out, zc, xc, d, grad_scale, want_grad, scratch);
                break;
        }
        total += scale.weight ? double(col_sum) * double(scale.weight[j]) : double(col_sum);
        if (sample_loss) sample_loss[j] = col_sum / per_sample_divisor;
    }
    return total;
}

// Naive twin, in double: the loss of one sample (d logits z, targets x, all its outputs summed)
// and dl/dz (unscaled) into dz.
inline double head_naive(const HeadSpec& head, const ActivationSpec& out, const double* z, const double* x, int d,
                         double* dz) {
    double loss = 0.0;
    if (head.loss == Loss::cross_entropy) {
        double m = z[0];
        for (int k = 1; k < d; ++k) m = std::max(m, z[k]);
        double sum = 0.0, mass = 0.0;
        for (int k = 0; k < d; ++k) sum += std::exp(z[k] - m);
        for (int k = 0; k < d; ++k) {
            const double p = std::exp(z[k] - m) / sum;
            loss -= x[k] * std::log(p);
            mass += x[k];
        }
        for (int k = 0; k < d; ++k) dz[k] = std::exp(z[k] - m) / sum * mass - x[k];
        return loss;
    }
    for (int k = 0; k < d; ++k) {
        if (head.loss == Loss::bce) {
            const double s = 1.0 / (1.0 + std::exp(-z[k]));
            loss -= x[k] * std::log(s) + (1.0 - x[k]) * std::log(1.0 - s);
            dz[k] = s - x[k];
            continue;
        }
        const double a = activation_naive(out, z[k]);
        const double e = a - x[k];
        double g = 0.0;
        switch (head.loss) {
            case Loss::mse: loss += e * e; g = 2 * e; break;
            case Loss::mae: loss += std::abs(e); g = e > 0 ? 1 : e < 0 ? -1 : 0; break;
            case Loss::huber: {
                const double delta = head.huber_delta;
                loss += std::abs(e) <= delta ? 0.5 * e * e : delta * (std::abs(e) - 0.5 * delta);
                g = std::abs(e) <= delta ? e : (e > 0 ? delta : -delta);
                break;
            }
            case Loss::bce:
            case Loss::cross_entropy: break;
        }
        dz[k] = g * activation_derivative_naive(out, z[k]);
    }
    return loss;
}

}  // namespace fastae::detail
