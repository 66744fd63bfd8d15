// test_head.cpp -- the output head (head.h) against its naive twin, and the naive twin against
// checks of its own: softmax columns, the head pass for every valid (loss, output activation)
// pair (float64 central differences of head_naive's loss for its dz), hand values of huber, mae
// and cross-entropy with probability targets, and the BCE column's versions, NaN logits and
// saturated logits. Every list of names comes from the vocabulary.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "activation.h"
#include "check.h"
#include "head.h"
#include "test_data.h"

using namespace fastae;
using namespace fastae::detail;
using fastae_test::Head;
using fastae_test::random_vector;
using fastae_test::test_activation;

namespace {

std::string label(Head h) { return std::string(name_of(h.loss)) + " on " + name_of(h.out); }

// Naive softmax of d values, in double.
void softmax_naive(const double* z, int d, double* out) {
    double m = z[0];
    for (int k = 1; k < d; ++k) m = std::max(m, z[k]);
    double sum = 0.0;
    for (int k = 0; k < d; ++k) sum += std::exp(z[k] - m);
    for (int k = 0; k < d; ++k) out[k] = std::exp(z[k] - m) / sum;
}

// The outputs the head leaves in z when !want_grad: sigmoid for the fused BCE, softmax for
// cross-entropy, f(z) otherwise.
void head_outputs_naive(const HeadSpec& head, const ActivationSpec& out, const double* z, int d, double* a) {
    if (out.kind == Activation::softmax) {
        softmax_naive(z, d, a);
        return;
    }
    for (int k = 0; k < d; ++k) {
        a[k] = head.loss == Loss::bce ? 1.0 / (1.0 + std::exp(-z[k])) : activation_naive(out, z[k]);
    }
}

}  // namespace

TEST(softmax_columns_matches_naive_softmax) {
    for (int d : {1, 2, 7, 13}) {
        const int b = 5;
        const auto zr = random_vector(std::size_t(d) * b, -10.0f, 10.0f, 30 + unsigned(d));
        AlignedFloats z(zr.begin(), zr.end());  // aligned, as in activation_forward_and_backward_match_naive
        z[0] = 100.0f;  // large logits: exp(z) alone would overflow
        if (d > 1) z[1] = -100.0f;
        AlignedFloats s = z;
        softmax_columns(s.data(), d, b);
        AlignedFloats block = z;
        activate_block(activation_spec(Activation::softmax), block.data(), d, b);
        CHECK(block == s);
        std::vector<double> zd(z.begin(), z.end()), want(zd.size());
        for (int j = 0; j < b; ++j) softmax_naive(zd.data() + j * d, d, want.data() + j * d);
        for (std::size_t i = 0; i < s.size(); ++i) CHECK_NEAR(s[i], want[i], 1e-6 * (1 + want[i]));
        for (int j = 0; j < b; ++j) {
            double sum = 0;
            for (int k = 0; k < d; ++k) sum += s[std::size_t(j * d + k)];
            CHECK_NEAR(sum, 1.0, 1e-6);
        }
    }
    // activate_block on an elementwise activation is activation_forward.
    const auto zr = random_vector(40, -3.0f, 3.0f, 31);
    AlignedFloats a(zr.begin(), zr.end()), b = a;
    activate_block(test_activation(Activation::elu), a.data(), 8, 5);
    activation_forward(test_activation(Activation::elu), b.data(), b.data(), 40);
    CHECK(a == b);
}

// head_pass against head_naive for every valid (loss, output activation), with and without
// per-column weights, with and without the gradient, with per-sample losses.
TEST(head_pass_matches_naive_for_every_valid_head) {
    const int n = 7;
    int cases = 0;
    for (Head h : fastae_test::valid_heads()) {
        for (int d : {3, 19}) {  // 19: vectors and a tail (the vector BCE column)
            for (bool weighted : {false, true}) {
                for (bool want_grad : {true, false}) {
                    HeadSpec head;
                    head.loss = h.loss;
                    head.huber_delta = 0.6;  // not the default: used by huber only
                    const ActivationSpec out = test_activation(h.out);
                    // |z| <= 8: beyond about 17 the naive BCE's log(1 - sigmoid(z)) loses digits.
                    auto z = random_vector(std::size_t(d) * n, -8.0f, 8.0f, 3 + unsigned(d));
                    auto y = fastae_test::targets_for<float>(h.loss, n, d, 4 + unsigned(d));
                    if (h.loss == Loss::mae) {  // away from the kink of |a - y| at 0
                        for (std::size_t i = 0; i < z.size(); ++i) {
                            if (std::fabs(activation_naive(out, z[i]) - y[i]) < 1e-3) y[i] += 0.01f;
                        }
                    }
                    auto w = random_vector(n, 0.0f, 2.0f, 5);
                    w[2] = 0.0f;
                    const float scale_value = 0.125f;
                    const ColumnScale scale{scale_value, weighted ? w.data() : nullptr};
                    auto g = z;
                    std::vector<float> per_sample(n, -1.0f);
                    Eigen::VectorXf scratch(3 * d);
                    const double sum = head_pass(head, out, MutMatrixMap(g.data(), d, n), ConstMatrixMap(y.data(), d, n),
                                                 scale, want_grad, per_sample.data(), scratch.data());
                    const std::string what = label(h) + ", d " + std::to_string(d) + (weighted ? ", weighted" : "") +
                                             (want_grad ? ", gradient" : ", outputs");
                    double want_sum = 0;
                    for (int j = 0; j < n; ++j) {
                        std::vector<double> zd(z.begin() + j * d, z.begin() + (j + 1) * d);
                        std::vector<double> yd(y.begin() + j * d, y.begin() + (j + 1) * d);
                        std::vector<double> dz(static_cast<std::size_t>(d)), a(static_cast<std::size_t>(d));
                        const double l = head_naive(head, out, zd.data(), yd.data(), d, dz.data());
                        const double wj = weighted ? w[std::size_t(j)] : 1.0;
                        want_sum += wj * l;
                        const double per = traits_of(h.loss).per_sample ? l : l / d;
                        CHECK_IN(std::fabs(per_sample[std::size_t(j)] - per) <= 1e-5 * (1 + std::fabs(per)), what);
                        head_outputs_naive(head, out, zd.data(), d, a.data());
                        for (int k = 0; k < d; ++k) {
                            const float got = g[std::size_t(j * d + k)];
                            const double want = want_grad ? dz[std::size_t(k)] * scale_value * wj : a[std::size_t(k)];
                            CHECK_IN(std::fabs(got - want) <= 2e-6 * (1 + std::fabs(want)), what);
                        }
                    }
                    CHECK_IN(std::fabs(sum - want_sum) <= 1e-5 * (1 + std::fabs(want_sum)), what);
                    ++cases;
                }
            }
        }
    }
    CHECK(cases == int(fastae_test::valid_heads().size()) * 8);
}

// The independent check of head_naive: its dz against central differences of its own loss in
// float64, for every valid head, away from the kinks (relu-like outputs at z = 0, mae at a = y,
// huber's switch at |a - y| = delta, where the second derivative jumps).
TEST(head_naive_gradient_matches_finite_differences) {
    const int d = 6, n = 4;
    const double h = 1e-6;
    for (Head hd : fastae_test::valid_heads()) {
        HeadSpec head;
        head.loss = hd.loss;
        head.huber_delta = 0.4;
        const ActivationSpec out = test_activation(hd.out);
        auto z = fastae_test::random_doubles(std::size_t(d) * n, -3.0, 3.0, 40);
        auto y = fastae_test::targets_for<double>(hd.loss, n, d, 41);
        for (std::size_t i = 0; i < z.size(); ++i) {
            if (std::fabs(z[i]) < 0.05) z[i] += 0.1;
            const double e = head.loss == Loss::bce || out.kind == Activation::softmax ? 1.0
                                                                                        : activation_naive(out, z[i]) - y[i];
            if (std::fabs(e) < 0.05 || std::fabs(std::fabs(e) - head.huber_delta) < 1e-3) y[i] += 0.1;
        }
        for (int j = 0; j < n; ++j) {
            double* zj = z.data() + j * d;
            const double* yj = y.data() + j * d;
            std::vector<double> dz(static_cast<std::size_t>(d)), unused(static_cast<std::size_t>(d));
            head_naive(head, out, zj, yj, d, dz.data());
            for (int k = 0; k < d; ++k) {
                const double keep = zj[k];
                zj[k] = keep + h;
                const double up = head_naive(head, out, zj, yj, d, unused.data());
                zj[k] = keep - h;
                const double down = head_naive(head, out, zj, yj, d, unused.data());
                zj[k] = keep;
                const double fd = (up - down) / (2 * h);
                CHECK_IN(std::fabs(fd - dz[std::size_t(k)]) <= 1e-7 * (1 + std::fabs(dz[std::size_t(k)])), label(hd));
            }
        }
    }
}

// Huber with delta 0.3, errors e = a - y on both sides of |e| = delta (and at it), against the
// formula written out (torch.nn.HuberLoss): |e| <= delta: e^2 / 2, grad e; else
// delta (|e| - delta / 2), grad delta sign(e). Both branches meet at |e| = delta (value
// delta^2 / 2 = 0.045, grad +-0.3).
TEST(huber_with_non_default_delta_around_delta) {
    HeadSpec head;
    head.loss = Loss::huber;
    head.huber_delta = 0.3;
    const ActivationSpec out = activation_spec(Activation::linear);
    const std::vector<double> errors = {-0.9, -0.31, -0.3, -0.29, -0.1, 0.05, 0.29, 0.3, 0.301, 0.31, 0.9};
    const int d = int(errors.size());
    std::vector<float> z(errors.size()), y(errors.size(), 0.25f);
    for (int k = 0; k < d; ++k) z[std::size_t(k)] = 0.25f + float(errors[std::size_t(k)]);
    auto g = z;
    Eigen::VectorXf scratch(3 * d);
    float per_sample = 0;
    const double sum = head_pass(head, out, MutMatrixMap(g.data(), d, 1), ConstMatrixMap(y.data(), d, 1),
                                 ColumnScale{1.0f, nullptr}, true, &per_sample, scratch.data());
    std::vector<double> zd(z.begin(), z.end()), yd(y.begin(), y.end()), dz(errors.size());
    const double naive = head_naive(head, out, zd.data(), yd.data(), d, dz.data());
    double want_sum = 0;
    for (int k = 0; k < d; ++k) {
        const double e = double(z[std::size_t(k)]) - 0.25;  // the error as the floats hold it
        const double loss = std::fabs(e) <= 0.3 ? 0.5 * e * e : 0.3 * (std::fabs(e) - 0.15);
        const double grad = std::fabs(e) <= 0.3 ? e : (e > 0 ? 0.3 : -0.3);
        want_sum += loss;
        CHECK_NEAR(g[std::size_t(k)], grad, 1e-6);
        CHECK_NEAR(dz[std::size_t(k)], grad, 1e-12);
    }
    CHECK_NEAR(sum, want_sum, 1e-6);
    CHECK_NEAR(naive, want_sum, 1e-12);
    CHECK_NEAR(per_sample, want_sum / d, 1e-6);
    // Central differences of the naive loss just inside and outside |e| = delta.
    for (double e : {-0.301, -0.299, 0.299, 0.301}) {
        double zz = 0.25 + e, x = 0.25, unused;
        const double h = 1e-7;
        double up = zz + h, down = zz - h;
        const double fd = (head_naive(head, out, &up, &x, 1, &unused) - head_naive(head, out, &down, &x, 1, &unused)) / (2 * h);
        head_naive(head, out, &zz, &x, 1, &unused);
        CHECK_NEAR(fd, unused, 1e-7);
    }
}

// MAE away from 0: the loss |e| and the gradient sign(e) f'(z), for a linear and a tanh output;
// at e = 0 exactly the gradient is 0 (torch's sign(0)).
TEST(mae_matches_the_formula_away_from_zero) {
    HeadSpec head;
    head.loss = Loss::mae;
    for (Activation kind : {Activation::linear, Activation::tanh}) {
        const ActivationSpec out = activation_spec(kind);
        const std::vector<float> z = {-2.0f, -0.3f, 0.3f, 2.0f, 0.5f};
        std::vector<float> y = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
        activation_forward(out, &z[4], &y[4], 1);  // the float output itself: e = 0 exactly
        auto g = z;
        Eigen::VectorXf scratch(15);
        const double sum = head_pass(head, out, MutMatrixMap(g.data(), 5, 1), ConstMatrixMap(y.data(), 5, 1),
                                     ColumnScale{1.0f, nullptr}, true, nullptr, scratch.data());
        double want_sum = 0;
        for (int k = 0; k < 4; ++k) {
            const double a = activation_naive(out, z[std::size_t(k)]);
            want_sum += std::fabs(a);
            const double want = (a > 0 ? 1.0 : -1.0) * activation_derivative_naive(out, z[std::size_t(k)]);
            CHECK_NEAR(g[std::size_t(k)], want, 1e-6);
        }
        CHECK(g[4] == 0.0f);
        CHECK_NEAR(sum, want_sum, 1e-6);
    }
}

// Cross-entropy with probability targets, one class at probability 0, against values computed
// independently (mpmath, 40 digits): with lse = log sum_k e^z_k, l = sum_k x_k (lse - z_k) and
// dl/dz = softmax(z) * sum_k x_k - x.
//   z = (2, -1, 0.5, 3), x = (0.7, 0, 0.3, 0):  l = 1.8340917012886903,
//       dz = (-0.44944872813288529, 0.012474213302103306, -0.24409445458289791, 0.6810689694136799)
//   same z, x = (0.25, 0.25, 0, 0) (mass 0.5): l = 1.4420458506443451,
//       dz = (-0.12472436406644265, -0.24376289334894835, 0.027952772708551043, 0.34053448470683995)
//   z = (100, -100, 50, 0), x = (0, 0, 1, 0): l = 50, dz = (1, ~1e-87, -1, ~4e-44)
TEST(cross_entropy_with_probability_targets_matches_hand_values) {
    HeadSpec head;
    head.loss = Loss::cross_entropy;
    const ActivationSpec out = activation_spec(Activation::softmax);
    const std::vector<float> z = {2.0f, -1.0f, 0.5f, 3.0f, 2.0f, -1.0f, 0.5f, 3.0f, 100.0f, -100.0f, 50.0f, 0.0f};
    const std::vector<float> x = {0.7f, 0.0f, 0.3f, 0.0f, 0.25f, 0.25f, 0.0f, 0.0f, 0.0f, 0.0f, 1.0f, 0.0f};
    const double want_loss[3] = {1.8340917012886903, 1.4420458506443451, 50.0};
    const double want_dz[12] = {-0.44944872813288529, 0.012474213302103306, -0.24409445458289791, 0.6810689694136799,
                                -0.12472436406644265, -0.24376289334894835, 0.027952772708551043, 0.34053448470683995,
                                1.0, 0.0, -1.0, 0.0};
    auto g = z;
    std::vector<float> per_sample(3);
    Eigen::VectorXf scratch(12);
    const double sum = head_pass(head, out, MutMatrixMap(g.data(), 4, 3), ConstMatrixMap(x.data(), 4, 3),
                                 ColumnScale{1.0f, nullptr}, true, per_sample.data(), scratch.data());
    CHECK_NEAR(sum, want_loss[0] + want_loss[1] + want_loss[2], 2e-5);
    for (int j = 0; j < 3; ++j) {
        CHECK_NEAR(per_sample[std::size_t(j)], want_loss[j], 1e-6 * (1 + want_loss[j]));
        std::vector<double> zd(z.begin() + 4 * j, z.begin() + 4 * j + 4), xd(x.begin() + 4 * j, x.begin() + 4 * j + 4);
        std::vector<double> dz(4);
        // The float targets 0.7 and 0.3 are not exactly those decimals: 1e-7 of slack.
        CHECK_NEAR(head_naive(head, out, zd.data(), xd.data(), 4, dz.data()), want_loss[j], 1e-6 * (1 + want_loss[j]));
        for (int k = 0; k < 4; ++k) {
            CHECK_NEAR(g[std::size_t(4 * j + k)], want_dz[4 * j + k], 1e-6);
            CHECK_NEAR(dz[std::size_t(k)], want_dz[4 * j + k], 1e-7);
        }
    }
    for (float v : g) CHECK(std::isfinite(v));
}

// Both versions of the BCE column (Eigen's, used by builds without AVX2, and the vector one the
// output pass uses here, at this build's widest width) against the naive twin, for lengths with
// every tail size. test_simd.cpp runs the vector one at every width.
TEST(bce_column_versions_match_naive) {
    HeadSpec head;
    head.loss = Loss::bce;
    const ActivationSpec out = activation_spec(Activation::sigmoid);
    for (int d : {1, 7, 8, 9, 16, 23, 784}) {
        // |z| <= 20: beyond it the naive twin's log(1 - sigmoid(z)) loses digits in double.
        auto z = random_vector(std::size_t(d), -20.0f, 20.0f, 11 + unsigned(d));
        auto y = random_vector(std::size_t(d), 0.0f, 1.0f, 12 + unsigned(d));
        z[0] = 0.0f;  // the z >= 0 branch at its edge
        std::vector<double> zd(z.begin(), z.end()), yd(y.begin(), y.end()), want_g(static_cast<std::size_t>(d));
        const double want_sum = head_naive(head, out, zd.data(), yd.data(), d, want_g.data());
        for (double& v : want_g) v *= 0.5;
        for (int version = 0; version < 2; ++version) {
            auto g = z;
            std::vector<float> scratch(3 * std::size_t(d));
            float sum = 0;
            if (version == 0) {
                sum = bce_column_eigen(Eigen::Map<Eigen::ArrayXf>(g.data(), d),
                                       Eigen::Map<const Eigen::ArrayXf>(y.data(), d), 0.5f, true, scratch.data());
            } else {
#ifdef FASTAE_HAVE_AVX2_MATH
                sum = bce_column<simd::Widest>(g.data(), y.data(), d, 0.5f, true);
#else
                continue;
#endif
            }
            CHECK_NEAR(sum, want_sum, 2e-6 * (1 + std::fabs(want_sum)));
            for (int i = 0; i < d; ++i) CHECK_NEAR(g[std::size_t(i)], want_g[std::size_t(i)], 3e-7);
        }
    }
}

TEST(bce_propagates_nan_logits_into_the_loss) {
    // The trainer stops on a non-finite loss, so a NaN logit must reach the sum.
    const int d = 11;
    HeadSpec head;
    head.loss = Loss::bce;
    std::vector<float> z(d, 0.5f), y(d, 0.25f), scratch(3 * d);
    z[9] = std::numeric_limits<float>::quiet_NaN();
    const double sum = head_pass(head, activation_spec(Activation::sigmoid), MutMatrixMap(z.data(), d, 1),
                                 ConstMatrixMap(y.data(), d, 1), ColumnScale{1.0f, nullptr}, true, nullptr, scratch.data());
    CHECK(std::isnan(sum));
}

TEST(bce_is_stable_for_saturated_logits) {
    // Naive log(sigmoid(z)) overflows here; the fused form must stay finite and exact.
    const int d = 4;
    HeadSpec head;
    head.loss = Loss::bce;
    std::vector<float> z = {100.0f, -100.0f, 100.0f, -100.0f};
    std::vector<float> y = {1.0f, 0.0f, 0.0f, 1.0f};
    std::vector<float> scratch(3 * d);
    const double sum = head_pass(head, activation_spec(Activation::sigmoid), MutMatrixMap(z.data(), d, 1),
                                 ConstMatrixMap(y.data(), d, 1), ColumnScale{1.0f, nullptr}, true, nullptr, scratch.data());
    CHECK_NEAR(sum, 200.0, 1e-3);  // two perfect predictions (~0) and two at loss 100
    CHECK_NEAR(z[0], 0.0, 1e-6);
    CHECK_NEAR(z[1], 0.0, 1e-6);
    CHECK_NEAR(z[2], 1.0, 1e-6);
    CHECK_NEAR(z[3], -1.0, 1e-6);
}
