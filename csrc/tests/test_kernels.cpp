// test_kernels.cpp -- every fast kernel against its naive twin: activations, the output pass,
// the whole forward pass and the loss gradient of a batch.
#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "activation.h"
#include "check.h"
#include "loss.h"
#include "network.h"

using namespace fastae;
using namespace fastae::detail;

namespace {

const Activation kActivations[] = {Activation::linear, Activation::relu, Activation::sigmoid, Activation::tanh};

std::vector<float> random_vector(std::size_t n, float lo, float hi, unsigned seed) {
    std::mt19937 gen(seed);
    std::vector<float> v(n);
    for (auto& x : v) x = lo + (hi - lo) * float(gen() % 1000003) / 1000003.0f;
    return v;
}

}  // namespace

TEST(activation_forward_and_backward_match_naive) {
    const int rows = 37, cols = 5;
    for (Activation act : kActivations) {
        auto z = random_vector(rows * cols, -4.0f, 4.0f, 1);
        auto d = random_vector(rows * cols, -1.0f, 1.0f, 2);
        auto a = z;
        activation_forward(act, MutMatrixMap(a.data(), rows, cols));
        auto g = d;
        activation_backward(act, MutMatrixMap(g.data(), rows, cols), MutMatrixMap(a.data(), rows, cols));
        for (int i = 0; i < rows * cols; ++i) {
            const double want_a = activation_naive(act, z[i]);
            CHECK_NEAR(a[i], want_a, 1e-6 + 1e-6 * std::fabs(want_a));
            const double want_g = d[i] * activation_derivative_naive(act, want_a);
            CHECK_NEAR(g[i], want_g, 1e-6);
        }
    }
}

TEST(output_pass_matches_naive_for_every_loss) {
    const int d = 19, n = 7;
    struct Case { Loss loss; Activation out; };
    const Case cases[] = {{Loss::bce, Activation::sigmoid}, {Loss::mse, Activation::linear},
                          {Loss::mse, Activation::relu},    {Loss::mse, Activation::sigmoid},
                          {Loss::mse, Activation::tanh}};
    for (const Case& c : cases) {
        auto z = random_vector(d * n, -30.0f, 30.0f, 3);  // wide: exercises the stable BCE form
        auto y = random_vector(d * n, 0.0f, 1.0f, 4);
        auto g = z;
        std::vector<float> scratch(3 * d), per_sample(n);
        const float scale = 0.25f;
        const double sum = output_pass(c.loss, c.out, MutMatrixMap(g.data(), d, n), ConstMatrixMap(y.data(), d, n),
                                       scale, true, per_sample.data(), scratch.data());
        double want_sum = 0;
        for (int j = 0; j < n; ++j) {
            double col = 0;
            for (int i = 0; i < d; ++i) {
                double l, dz;
                loss_naive(c.loss, c.out, z[j * d + i], y[j * d + i], &l, &dz);
                col += l;
                CHECK_NEAR(g[j * d + i], dz * scale, 1e-6);
            }
            CHECK_NEAR(per_sample[j], col / d, 1e-4 * (1 + col / d));
            want_sum += col;
        }
        CHECK_NEAR(sum, want_sum, 1e-5 * (1 + std::fabs(want_sum)));
    }
}

// Both versions of the BCE column (Eigen's, used by builds without AVX2, and the AVX2 one the
// output pass uses here) against the naive twin, for lengths with every tail size.
TEST(bce_column_versions_match_naive) {
    for (int d : {1, 7, 8, 9, 16, 23, 784}) {
        // |z| <= 20: beyond it the naive twin's log(1 - sigmoid(z)) loses digits in double.
        auto z = random_vector(d, -20.0f, 20.0f, 11 + unsigned(d));
        auto y = random_vector(d, 0.0f, 1.0f, 12 + unsigned(d));
        z[0] = 0.0f;  // the z >= 0 branch at its edge
        double want_sum = 0;
        std::vector<double> want_g(static_cast<std::size_t>(d));
        for (int i = 0; i < d; ++i) {
            double l, dz;
            loss_naive(Loss::bce, Activation::sigmoid, z[std::size_t(i)], y[std::size_t(i)], &l, &dz);
            want_sum += l;
            want_g[std::size_t(i)] = dz * 0.5;
        }
        for (int version = 0; version < 2; ++version) {
            auto g = z;
            std::vector<float> scratch(3 * std::size_t(d));
            float sum = 0;
            if (version == 0) {
                sum = bce_column_eigen(Eigen::Map<Eigen::ArrayXf>(g.data(), d),
                                       Eigen::Map<const Eigen::ArrayXf>(y.data(), d), 0.5f, true, scratch.data());
            } else {
#ifdef FASTAE_HAVE_AVX2_MATH
                sum = bce_column_avx2(g.data(), y.data(), d, 0.5f, true);
#else
                continue;
#endif
            }
            CHECK_NEAR(sum, want_sum, 2e-6 * (1 + std::fabs(want_sum)));
            for (int i = 0; i < d; ++i) CHECK_NEAR(g[std::size_t(i)], want_g[std::size_t(i)], 3e-7);
        }
    }
}

#ifdef FASTAE_HAVE_AVX2_MATH
TEST(vector_exp_is_within_2_ulp) {
    // Every float in [-87, 0] at a stride, and the edges; below -87 the result is exp(-87).
    double worst = 0;
    std::vector<float> inputs = {0.0f, -0.0f, -1e-30f, -87.0f, -0.5f * 0.693147f};
    for (float a = -87.0f; a < 0.0f; a += 0.000731f) inputs.push_back(a);
    for (std::size_t i = 0; i + 8 <= inputs.size(); i += 8) {
        float out[8];
        _mm256_storeu_ps(out, avx2::exp_nonpositive(_mm256_loadu_ps(&inputs[i])));
        for (int k = 0; k < 8; ++k) {
            const double want = std::exp(double(inputs[i + std::size_t(k)]));
            const double ulp = std::nextafter(float(want), 1.0f) - float(want);
            worst = std::max(worst, std::fabs(out[k] - want) / ulp);
        }
    }
    CHECK(worst <= 2.0);
    float out[8];
    const float nan = std::numeric_limits<float>::quiet_NaN();
    _mm256_storeu_ps(out, avx2::exp_nonpositive(_mm256_setr_ps(-100.0f, -1e30f, -std::numeric_limits<float>::infinity(),
                                                                nan, -nan, -3.0f, -4.0f, -5.0f)));
    CHECK_NEAR(out[0], std::exp(-87.0), 1e-44);
    CHECK_NEAR(out[1], std::exp(-87.0), 1e-44);
    CHECK_NEAR(out[2], std::exp(-87.0), 1e-44);
    CHECK(std::isnan(out[3]));
    CHECK(std::isnan(out[4]));
}
#endif

TEST(bce_propagates_nan_logits_into_the_loss) {
    // The trainer stops on a non-finite loss, so a NaN logit must reach the sum.
    const int d = 11;
    std::vector<float> z(d, 0.5f), y(d, 0.25f), scratch(3 * d);
    z[9] = std::numeric_limits<float>::quiet_NaN();
    const double sum = output_pass(Loss::bce, Activation::sigmoid, MutMatrixMap(z.data(), d, 1),
                                   ConstMatrixMap(y.data(), d, 1), 1.0f, true, nullptr, scratch.data());
    CHECK(std::isnan(sum));
}

TEST(bce_is_stable_for_saturated_logits) {
    // Naive log(sigmoid(z)) overflows here; the fused form must stay finite and exact.
    const int d = 4;
    std::vector<float> z = {100.0f, -100.0f, 100.0f, -100.0f};
    std::vector<float> y = {1.0f, 0.0f, 0.0f, 1.0f};
    std::vector<float> scratch(3 * d);
    const double sum = output_pass(Loss::bce, Activation::sigmoid, MutMatrixMap(z.data(), d, 1),
                                   ConstMatrixMap(y.data(), d, 1), 1.0f, true, nullptr, scratch.data());
    CHECK_NEAR(sum, 200.0, 1e-3);  // two perfect predictions (~0) and two at loss 100
    CHECK_NEAR(z[0], 0.0, 1e-6);
    CHECK_NEAR(z[2], 1.0, 1e-6);
    CHECK_NEAR(z[3], -1.0, 1e-6);
}

TEST(forward_and_gradient_match_naive) {
    for (Activation act : kActivations) {
        for (Loss loss : {Loss::bce, Loss::mse}) {
            NetworkConfig cfg;
            cfg.layer_sizes = {13, 7, 3, 7, 13};
            cfg.activation = act;
            cfg.output_activation = loss == Loss::bce ? Activation::sigmoid : Activation::tanh;
            cfg.loss = loss;
            Network net(cfg);
            const std::size_t n = 9;
            auto p = random_vector(net.n_params(), -0.6f, 0.6f, 5);
            auto x = random_vector(n * 13, 0.0f, 1.0f, 6);
            std::vector<double> pd(p.begin(), p.end()), xd(x.begin(), x.end());

            Workspace ws(net, n);
            forward_batch(net, p.data(), ConstMatrixMap(x.data(), 13, n), 0, net.n_layers(), ws, true);
            std::vector<double> want(n * 13);
            forward_naive(net, pd.data(), n, xd.data(), want.data());
            auto out = ws.act(net.n_layers(), Eigen::Index(n));
            for (std::size_t s = 0; s < n; ++s)
                for (int o = 0; o < 13; ++o) CHECK_NEAR(out(o, Eigen::Index(s)), want[s * 13 + std::size_t(o)], 1e-5);

            std::vector<float> grad(net.n_params());
            const float scale = 1.0f / float(n * 13);
            const double sum = loss_gradient_batch(net, p.data(), ConstMatrixMap(x.data(), 13, n),
                                                   ConstMatrixMap(x.data(), 13, n), scale, ws, grad.data());
            std::vector<double> want_grad(net.n_params());
            const double want_loss = loss_gradient_naive(net, pd.data(), n, xd.data(), xd.data(), want_grad.data());
            CHECK_NEAR(sum * scale, want_loss, 1e-5 * (1 + want_loss));
            double max_err = 0, max_ref = 0;
            for (std::size_t i = 0; i < grad.size(); ++i) {
                max_err = std::max(max_err, std::fabs(grad[i] - want_grad[i]));
                max_ref = std::max(max_ref, std::fabs(want_grad[i]));
            }
            CHECK(max_ref > 0);
            CHECK_NEAR(max_err, 0.0, 1e-5 * (1 + max_ref));
        }
    }
}
