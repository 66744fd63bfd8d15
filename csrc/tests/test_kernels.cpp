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
#include "sparse_input.h"
#include "gemm.h"

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
          for (bool sparse : {false, true}) {
            auto x = random_vector(n * 13, 0.0f, 1.0f, 6);
            if (sparse) {  // 3 nonzeros of 13 per sample: the first layer's sparse products run
                for (std::size_t i = 0; i < x.size(); ++i) x[i] = (i * 7) % 13 < 3 ? x[i] : 0.0f;
            }
            std::vector<double> pd(p.begin(), p.end()), xd(x.begin(), x.end());

            Workspace ws(net, n);
            CHECK(ws.sparse().compress(x.data(), 13, int(n)) == sparse);
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
}

// The first layer's sparse products (sparse_input.h) against their naive twins, over output
// widths that exercise every vector count and the scalar tail, batch sizes and densities; the
// dense GEMM gives the same to rounding.
TEST(sparse_input_products_match_naive) {
    std::mt19937 gen(21);
    std::uniform_real_distribution<float> unit(0.0f, 1.0f);
    for (int d : {1, 9, 70, 784}) {
        for (int n_out : {1, 7, 8, 64, 71, 130, 256}) {
            for (int b : {1, 13, 256}) {
                for (double density : {0.0, 0.05, 0.39}) {
                    std::vector<float> x(std::size_t(d) * std::size_t(b));
                    for (float& v : x) v = unit(gen) < density ? unit(gen) * 2.0f - 1.0f : 0.0f;
                    auto w = random_vector(std::size_t(d) * std::size_t(n_out), -1.0f, 1.0f, 22);
                    auto dz = random_vector(std::size_t(n_out) * std::size_t(b), -1.0f, 1.0f, 23);
                    SparseInput sp(d, 256);
                    if (!sp.compress(x.data(), d, b)) {
                        // Only when the sample drew more than the budget allows.
                        std::size_t nnz = 0;
                        for (float v : x) nnz += v != 0.0f;
                        CHECK(double(nnz) > SparseInput::kMaxDensity * d * b);
                        continue;
                    }
                    std::vector<float> z(std::size_t(n_out) * std::size_t(b), -7.0f), dw(w.size(), -7.0f);
                    sp.forward(w.data(), n_out, z.data());
                    sp.weight_gradient(dz.data(), n_out, dw.data());
                    std::vector<double> z_want(z.size()), dw_want(dw.size());
                    sparse_forward_naive(x.data(), d, b, w.data(), n_out, z_want.data());
                    sparse_weight_gradient_naive(x.data(), d, b, dz.data(), n_out, dw_want.data());
                    double err = 0;
                    for (std::size_t i = 0; i < z.size(); ++i) err = std::max(err, std::fabs(z[i] - z_want[i]));
                    for (std::size_t i = 0; i < dw.size(); ++i) err = std::max(err, std::fabs(dw[i] - dw_want[i]));
                    CHECK(err < 1e-4);
                    // The dense products of the same matrices.
                    GemmWorkspace gws;
                    std::vector<float> z_dense(z.size()), dw_dense(dw.size());
                    gemm(false, false, n_out, b, d, 1.0f, w.data(), n_out, x.data(), d, 0.0f, z_dense.data(), n_out, gws);
                    gemm(false, true, n_out, d, b, 1.0f, dz.data(), n_out, x.data(), d, 0.0f, dw_dense.data(), n_out, gws);
                    double gap = 0;
                    for (std::size_t i = 0; i < z.size(); ++i) gap = std::max(gap, double(std::fabs(z[i] - z_dense[i])));
                    for (std::size_t i = 0; i < dw.size(); ++i) gap = std::max(gap, double(std::fabs(dw[i] - dw_dense[i])));
                    CHECK(gap < 1e-4);
                }
            }
        }
    }
}

TEST(sparse_input_declines_dense_batches_and_keeps_non_finite_values) {
    const int d = 50, b = 40;
    std::vector<float> x(std::size_t(d) * b, 0.0f);
    for (std::size_t i = 0; i < x.size(); i += 2) x[i] = 0.5f;  // 50% nonzeros: over the 40% budget
    SparseInput sp(d, 64);
    CHECK(!sp.compress(x.data(), d, b));
    CHECK(!sp.active());
    CHECK(!sp.compress(x.data(), d, 65));  // more samples than its capacity
    std::fill(x.begin(), x.end(), 0.0f);
    x[3 * d + 7] = std::numeric_limits<float>::quiet_NaN();
    x[5 * d + 1] = std::numeric_limits<float>::infinity();
    CHECK(sp.compress(x.data(), d, b));
    auto w = random_vector(std::size_t(d) * 8, -1.0f, 1.0f, 24);
    w[1 * 8 + 2] = 0.0f;  // inf * 0 is NaN: still non-finite
    std::vector<float> z(std::size_t(8) * b);
    sp.forward(w.data(), 8, z.data());
    for (int j = 0; j < b; ++j) {
        for (int o = 0; o < 8; ++o) {
            const bool finite = std::isfinite(z[std::size_t(j) * 8 + std::size_t(o)]);
            CHECK(finite == (j != 3 && j != 5));
        }
    }
}

