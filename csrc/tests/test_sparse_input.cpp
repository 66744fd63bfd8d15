// test_sparse_input.cpp -- the first layer's sparse products give the dense GEMM's bits.
//
// The sparse path sums the same terms as the GEMM minus the zero ones, in gemm's runs of k
// (gemm.h: gemm_k_block), so with the FMA kernels (gemm_sums_in_k_runs) Z = W X and dW = dZ X^T
// must equal gemm's results bit for bit: that is what lets the engine pick either path by
// measurement without changing a run's results (network.h: FirstLayerPath). Each product runs at
// every vector geometry the build has (simd.h: Vec8, Twin16 -- the 16-lane loops and masked
// tails on AVX2 machines -- and Vec16 with AVX-512) and one output at a time (ScalarLanes). The
// naive twins in double (test_kernels.cpp) check the values; this file checks the bits.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "check.h"
#include "gemm.h"
#include "network.h"
#include "sparse_input.h"
#include "test_data.h"
#include "widths.h"

using namespace fastae::detail;
using fastae_test::for_each_width;
using fastae_test::random_vector;

namespace {

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Index of the first element whose bits differ (size when none), for the failure message.
std::size_t first_difference(const std::vector<float>& a, const std::vector<float>& b) {
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0) return i;
    }
    return a.size();
}

// x (d, b) with about `density` nonzeros in [-1, 1]; sample `empty` (if < b) all zeros.
std::vector<float> sparse_batch(int d, int b, double density, int empty, unsigned seed) {
    std::mt19937 gen(seed);
    std::uniform_real_distribution<float> unit(0.0f, 1.0f);
    std::vector<float> x(std::size_t(d) * std::size_t(b));
    for (float& v : x) v = unit(gen) < density ? unit(gen) * 2.0f - 1.0f : 0.0f;
    if (empty < b) std::fill(x.begin() + std::ptrdiff_t(empty) * d, x.begin() + std::ptrdiff_t(empty + 1) * d, 0.0f);
    return x;
}

// Sparse and dense products of one batch, checked to agree bit for bit.
void check_products(const std::vector<float>& x, const std::vector<float>& w, const std::vector<float>& dz, int d,
                    int b, int n_out, const std::string& what) {
    SparseInput sp(d, std::size_t(b));
    CHECK_IN(sp.compress(x.data(), d, b), what);
    GemmWorkspace gws;
    std::vector<float> z_dense(std::size_t(n_out) * std::size_t(b), 3.0f), dw_dense(w.size(), 3.0f);
    gemm(false, false, n_out, b, d, 1.0f, w.data(), n_out, x.data(), d, 0.0f, z_dense.data(), n_out, gws);
    gemm(false, true, n_out, d, b, 1.0f, dz.data(), n_out, x.data(), d, 0.0f, dw_dense.data(), n_out, gws);
    // Every vector geometry of the build (the production one, NativeLanes, among them).
    // Each compacts the batch itself (compress_with), so its lists are checked through the products.
    auto check = [&](auto lanes, const char* name) {
        using V = decltype(lanes);
        const std::string where = what + ", " + name;
        CHECK_IN(sp.compress_with<V>(x.data(), d, b), where + ": compress declined");
        std::vector<float> z(z_dense.size(), -7.0f), dw(dw_dense.size(), -7.0f);
        sp.forward_with<V>(w.data(), n_out, z.data());
        sp.weight_gradient_with<V>(dz.data(), n_out, dw.data());
        CHECK_IN(same_bits(z, z_dense), where + ": Z differs at " + std::to_string(first_difference(z, z_dense)));
        CHECK_IN(same_bits(dw, dw_dense), where + ": dW differs at " + std::to_string(first_difference(dw, dw_dense)));
    };
    check(ScalarLanes{}, "scalar");
    for_each_width(check);
    CHECK_IN(sp.compress(x.data(), d, b), what + ", production: compress declined");
    std::vector<float> z(z_dense.size(), -7.0f), dw(dw_dense.size(), -7.0f);
    sp.forward(w.data(), n_out, z.data());
    sp.weight_gradient(dz.data(), n_out, dw.data());
    CHECK_IN(same_bits(z, z_dense) && same_bits(dw, dw_dense), what + ", production");
    // Inference's stream (stream_input): the rows to come asked for during the product (here the
    // batch's own, in part or whole, so that the next compress finds them asked for, or none, so
    // that it asks itself), the same bits.
    for (std::size_t bytes : {std::size_t(4), x.size() * sizeof(float) / 3, x.size() * sizeof(float), std::size_t(0)}) {
        sp.stream_input(bytes ? x.data() : nullptr, bytes);
        CHECK_IN(sp.compress(x.data(), d, b), what + ", streamed: compress declined");
        std::fill(z.begin(), z.end(), -7.0f);
        sp.forward(w.data(), n_out, z.data());
        CHECK_IN(same_bits(z, z_dense), what + ", streamed " + std::to_string(bytes) + " bytes");
    }
}

}  // namespace

// Inputs of 1 to 4 runs of features (784 = 4 x 196, 600 = 3 x 200, 257 = 2 runs), batches of 1 to
// 2 runs of samples (300 = 2 x 150), output widths of every vector count and tail (and 80 and
// 128: the weight gradient's scatter in blocks of 64 outputs), empty samples and never-used
// features.
TEST(sparse_products_equal_gemm_bit_for_bit) {
    if (!gemm_sums_in_k_runs()) {
        std::printf("skipped: this build's gemm is Eigen's product (its own summation order)\n");
        return;
    }
    unsigned seed = 40;
    for (int d : {13, 256, 257, 600, 784}) {
        for (int b : {1, 7, 128, 256, 300}) {
            for (int n_out : {1, 10, 16, 64, 80, 100, 128, 130}) {
                if (std::size_t(d) * std::size_t(b) * std::size_t(n_out) > (std::size_t(1) << 24)) continue;
                const double density = (seed % 3 == 0) ? 0.05 : 0.3;
                const auto x = sparse_batch(d, b, density, /*empty=*/b / 2, seed++);
                const auto w = random_vector(std::size_t(d) * std::size_t(n_out), -1.0f, 1.0f, seed++);
                const auto dz = random_vector(std::size_t(n_out) * std::size_t(b), -1.0f, 1.0f, seed++);
                check_products(x, w, dz, d, b, n_out,
                               "d " + std::to_string(d) + ", b " + std::to_string(b) + ", n_out " + std::to_string(n_out));
            }
        }
    }
}

// A product that underflows to -0 in the first run, with every later weight of that run negative
// (so gemm's zero terms there add -0 and keep it -0): gemm's later runs start from +0 and add it,
// so the sparse path must add its empty runs too. (With a positive weight later in the same run,
// gemm would make the -0 a +0 where the sparse sum keeps -0: the one difference of sign that
// sparse_input.h admits.)
TEST(sparse_products_keep_gemm_signed_zeros) {
    if (!gemm_sums_in_k_runs()) return;
    const int d = 784, b = 4, n_out = 16;
    std::vector<float> x(std::size_t(d) * b, 0.0f);
    for (int j = 0; j < b; ++j) x[std::size_t(j) * d + 3] = 1e-20f;  // feature 3: in the first run only
    std::vector<float> w(std::size_t(d) * n_out, -0.5f);
    for (int o = 0; o < n_out; ++o) w[3 * std::size_t(n_out) + std::size_t(o)] = o % 2 ? -1e-30f : 1e-30f;
    std::vector<float> dz(std::size_t(n_out) * b, 1.0f);
    SparseInput sp(d, b);
    CHECK(sp.compress(x.data(), d, b));
    std::vector<float> z(std::size_t(n_out) * b);
    sp.forward(w.data(), n_out, z.data());
    for (float v : z) CHECK(v == 0.0f && !std::signbit(v));  // -1e-50 rounds to -0, then + 0 = +0
    check_products(x, w, dz, d, b, n_out, "underflow to -0");
}


// Through a whole training batch: a workspace's first batches try both paths (the measured
// choice runs a block of each while it warms up, measured_choice.h), and the loss and every
// gradient entry come out the same bit for bit on each.
TEST(training_batch_gives_the_same_bits_on_either_first_layer_path) {
    if (!gemm_sums_in_k_runs()) return;
    using fastae_test::Hidden;
    const int d = 784, b = 64;
    const fastae::NetworkSpec spec = fastae_test::make_spec(
        d, {Hidden{32, fastae::ActivationSpec{fastae::Activation::relu}}}, d,
        fastae_test::Head{fastae::Loss::bce, fastae::Activation::sigmoid});
    const Network net(spec);
    const auto p = random_vector(net.n_params(), -0.1f, 0.1f, 61);
    auto x = sparse_batch(d, b, 0.2, b, 62);
    for (float& v : x) v = std::fabs(v);  // BCE targets in [0, 1]
    Workspace ws(net, std::size_t(b));
    std::vector<float> grads[2];  // [dense, sparse]: the first batch on each path
    double losses[2] = {0.0, 0.0};
    for (int call = 0; call < 8; ++call) {
        std::vector<float> grad(net.n_params(), -1.0f);
        const ConstMatrixMap xm(x.data(), d, b);
        const double loss = loss_gradient_batch(net, p.data(), xm, xm, ColumnScale{1.0f / float(b * d), nullptr},
                                                nullptr, ws, grad.data());
        const int path = ws.sparse().active() ? 1 : 0;
        if (grads[path].empty()) {
            grads[path] = grad;
            losses[path] = loss;
        }
    }
    CHECK(!grads[0].empty() && !grads[1].empty());  // both paths ran
    CHECK(losses[0] == losses[1]);
    CHECK(same_bits(grads[0], grads[1]));
}

// ---- against the naive twins ----------------------------------------------------------------

// The first layer's sparse products (sparse_input.h) against their naive twins, over output
// widths that exercise every vector count and the scalar tail, batch sizes and densities; the
// dense GEMM gives the same to rounding.
TEST(sparse_input_products_match_naive) {
    std::mt19937 gen(21);
    std::uniform_real_distribution<float> unit(0.0f, 1.0f);
    for (int d : {1, 9, 70, 784}) {
        for (int n_out : {1, 7, 8, 64, 71, 130, 256}) {
            for (int b : {1, 13, 256}) {
                // The naive twins are dense triple loops: beyond 4M products a case (784 inputs
                // with 256 samples and over 8 outputs) costs most of the suite's time and adds no
                // path (every output width runs at 784 inputs with 13 samples, and with 256
                // samples at 70 inputs).
                if (std::size_t(d) * std::size_t(n_out) * std::size_t(b) > (std::size_t(1) << 22)) continue;
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

// At every geometry's compaction (a NaN in a whole vector, an infinity in the first lanes, and
// past d = 50's last whole vector of 16 a NaN in the scalar tail).
TEST(sparse_input_declines_dense_batches_and_keeps_non_finite_values) {
    auto check = [](auto lanes, const char* name) {
        using V = decltype(lanes);
        const int d = 50, b = 40;
        std::vector<float> x(std::size_t(d) * b, 0.0f);
        for (std::size_t i = 0; i < x.size(); i += 2) x[i] = 0.5f;  // 50% nonzeros: over the 40% budget
        SparseInput sp(d, 64);
        CHECK_IN(!sp.compress_with<V>(x.data(), d, b), name);
        CHECK_IN(!sp.active(), name);
        CHECK_IN(!sp.compress_with<V>(x.data(), d, 65), name);  // more samples than its capacity
        std::fill(x.begin(), x.end(), 0.0f);
        x[3 * d + 7] = std::numeric_limits<float>::quiet_NaN();
        x[5 * d + 1] = std::numeric_limits<float>::infinity();
        x[9 * d + 49] = std::numeric_limits<float>::quiet_NaN();
        CHECK_IN(sp.compress_with<V>(x.data(), d, b), name);
        auto w = random_vector(std::size_t(d) * 8, -1.0f, 1.0f, 24);
        w[1 * 8 + 2] = 0.0f;  // inf * 0 is NaN: still non-finite
        std::vector<float> z(std::size_t(8) * b);
        sp.forward_with<V>(w.data(), 8, z.data());
        for (int j = 0; j < b; ++j) {
            for (int o = 0; o < 8; ++o) {
                const bool finite = std::isfinite(z[std::size_t(j) * 8 + std::size_t(o)]);
                CHECK_IN(finite == (j != 3 && j != 5 && j != 9), std::string(name) + ", sample " + std::to_string(j));
            }
        }
    };
    check(ScalarLanes{}, "scalar");
    for_each_width(check);
}
