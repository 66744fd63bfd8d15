// test_gemm.cpp -- gemm (gemm.h) against a naive triple loop in double: all four transpose
// cases, sizes around the micro-tile and cache-block edges, alpha/beta, sub-matrix views
// (leading dimensions past the rows, padded with NaN that must never be read), beta = 0 over NaN,
// address independence, argument errors, and a workspace that stops growing.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "check.h"
#include "gemm.h"

using fastae::detail::GemmWorkspace;

namespace {

const float kNaN = std::numeric_limits<float>::quiet_NaN();

using GemmFn = void (*)(bool, bool, int, int, int, float, const float*, int, const float*, int,
                        float, float*, int, GemmWorkspace&);

struct Case {
    bool trans_a, trans_b;
    int m, n, k;
    float alpha = 1.0f, beta = 0.0f;
    int pad = 0;  // extra rows in every leading dimension (a sub-matrix view)
};

std::string describe(const Case& c) {
    return std::string(c.trans_a ? "T" : "N") + (c.trans_b ? "T" : "N") + " m=" + std::to_string(c.m) +
           " n=" + std::to_string(c.n) + " k=" + std::to_string(c.k) + " alpha=" +
           std::to_string(c.alpha) + " beta=" + std::to_string(c.beta) + " pad=" + std::to_string(c.pad);
}

// A column-major (rows, cols) matrix with leading dimension rows + pad: values in [-1, 1],
// the padding rows NaN (a kernel that reads them poisons its result).
std::vector<float> random_matrix(int rows, int cols, int pad, std::mt19937& gen) {
    const int ld = std::max(1, rows + pad);
    std::vector<float> v(std::size_t(ld) * std::size_t(std::max(cols, 1)), kNaN);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    for (int j = 0; j < cols; ++j) {
        for (int i = 0; i < rows; ++i) v[std::size_t(j) * ld + i] = dist(gen);
    }
    return v;
}

// Runs one case through `fn` and compares every element of C with the double reference, within
// the rounding bound of a length-k float dot product (k + 4 units of 2^-24 of the sum of the
// magnitudes); checks that C's padding rows are untouched. Returns false on a mismatch.
bool check_case(const Case& cs, GemmFn fn, GemmWorkspace& ws, unsigned seed, bool nan_c = false) {
    std::mt19937 gen(seed);
    const int a_rows = cs.trans_a ? cs.k : cs.m, a_cols = cs.trans_a ? cs.m : cs.k;
    const int b_rows = cs.trans_b ? cs.n : cs.k, b_cols = cs.trans_b ? cs.k : cs.n;
    const int lda = std::max(1, a_rows + cs.pad), ldb = std::max(1, b_rows + cs.pad);
    const int ldc = std::max(1, cs.m + cs.pad);
    const auto a = random_matrix(a_rows, a_cols, cs.pad, gen);
    const auto b = random_matrix(b_rows, b_cols, cs.pad, gen);
    auto c = random_matrix(cs.m, cs.n, cs.pad, gen);
    if (nan_c) {
        for (int j = 0; j < cs.n; ++j) {
            for (int i = 0; i < cs.m; ++i) c[std::size_t(j) * ldc + i] = kNaN;
        }
    }
    const auto c0 = c;
    fn(cs.trans_a, cs.trans_b, cs.m, cs.n, cs.k, cs.alpha, a.data(), lda, b.data(), ldb, cs.beta,
       c.data(), ldc, ws);

    // op(A) (m, k) and op(B) (k, n) in double, column-major, then C = sum over p in double.
    std::vector<double> oa(std::size_t(cs.m) * cs.k), ob(std::size_t(cs.k) * cs.n);
    for (int p = 0; p < cs.k; ++p) {
        for (int i = 0; i < cs.m; ++i) {
            oa[std::size_t(p) * cs.m + i] = cs.trans_a ? a[std::size_t(i) * lda + p] : a[std::size_t(p) * lda + i];
        }
        for (int j = 0; j < cs.n; ++j) {
            ob[std::size_t(j) * cs.k + p] = cs.trans_b ? b[std::size_t(p) * ldb + j] : b[std::size_t(j) * ldb + p];
        }
    }
    std::vector<double> sum(std::size_t(cs.m)), mag(std::size_t(cs.m));
    const double unit = std::ldexp(1.0, -24);
    for (int j = 0; j < cs.n; ++j) {
        std::fill(sum.begin(), sum.end(), 0.0);
        std::fill(mag.begin(), mag.end(), 0.0);
        for (int p = 0; p < cs.k; ++p) {
            const double bp = ob[std::size_t(j) * cs.k + p];
            const double* col = &oa[std::size_t(p) * cs.m];
            for (int i = 0; i < cs.m; ++i) {
                sum[i] += col[i] * bp;
                mag[i] += std::fabs(col[i] * bp);
            }
        }
        for (int i = 0; i < cs.m; ++i) {
            const double old = cs.beta == 0.0f ? 0.0 : double(c0[std::size_t(j) * ldc + i]);
            const double want = double(cs.alpha) * sum[i] + double(cs.beta) * old;
            const double tol = (cs.k + 4) * unit * (std::fabs(cs.alpha) * mag[i] + std::fabs(cs.beta * old)) + 1e-30;
            const double got = c[std::size_t(j) * ldc + i];
            if (!(std::fabs(got - want) <= tol)) {
                fastae_test::fail(__FILE__, __LINE__,
                                  describe(cs) + ": C(" + std::to_string(i) + "," + std::to_string(j) +
                                      ") = " + std::to_string(got) + ", want " + std::to_string(want) +
                                      " +- " + std::to_string(tol));
                return false;
            }
        }
        for (int i = cs.m; i < ldc; ++i) {  // padding rows: still the NaN they started as
            if (!std::isnan(c[std::size_t(j) * ldc + i])) {
                fastae_test::fail(__FILE__, __LINE__, describe(cs) + ": wrote into C's padding row " +
                                                          std::to_string(i));
                return false;
            }
        }
    }
    return true;
}

// Every size from `sizes` for m, n and k against every transpose case.
void check_cube(GemmFn fn, const std::vector<int>& sizes, float alpha, float beta, int pad) {
    GemmWorkspace ws;
    unsigned seed = 1;
    for (int t = 0; t < 4; ++t) {
        for (int m : sizes) {
            for (int n : sizes) {
                for (int k : sizes) {
                    const Case cs{(t & 1) != 0, (t & 2) != 0, m, n, k, alpha, beta, pad};
                    if (!check_case(cs, fn, ws, seed++)) return;  // one report per cube is enough
                }
            }
        }
    }
}

// Around the micro-tiles (16 x 6, 32 x 8), blocks (k: 256; m: 128; n: 504) and the layers'
// shapes; combinations, not the whole cube, to keep the test short.
const std::vector<int> kSmall = {1, 2, 5, 7, 15, 16, 17, 31, 33, 63, 64, 65};

std::vector<Case> large_cases() {
    std::vector<Case> cases;
    const int big[][3] = {
        {64, 256, 784}, {784, 256, 64}, {784, 64, 256}, {64, 256, 784}, {64, 784, 256},  // model
        {256, 256, 784}, {256, 256, 64}, {64, 256, 256}, {784, 256, 256}, {256, 784, 256},  // deep
        {64, 128, 784}, {784, 128, 64}, {784, 64, 128}, {64, 784, 128},  // 2-thread shards
        {255, 257, 256}, {257, 255, 257}, {129, 505, 255}, {127, 503, 513}, {1, 784, 784},
        {784, 1, 784}, {784, 784, 1}, {17, 1009, 65}, {7, 15, 1000}, {65, 63, 511}};
    for (const auto& s : big) cases.push_back(Case{false, false, s[0], s[1], s[2]});
    return cases;
}

void check_large(GemmFn fn) {
    GemmWorkspace ws;
    unsigned seed = 1000;
    const std::vector<Case> cases = large_cases();
    for (std::size_t index = 0; index < cases.size(); ++index) {
        for (int t = 0; t < 4; ++t) {
            Case c = cases[index];
            c.trans_a = (t & 1) != 0;
            c.trans_b = (t & 2) != 0;
            // The biggest shapes in one transpose case each, the rest in all four.
            if (std::int64_t(c.m) * c.n * c.k > 20'000'000 && t != int(index % 4)) {
                continue;
            }
            check_case(c, fn, ws, seed++);
        }
    }
}

// gemm_shared_a through gemm's signature (alpha 1 only): packs op(A) in the call, then multiplies.
void shared_a_fn(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, int lda,
                 const float* b, int ldb, float beta, float* c, int ldc, GemmWorkspace& ws) {
    if (alpha != 1.0f) throw std::logic_error("shared_a_fn: alpha must be 1");
    fastae::detail::SharedPackedA packed(trans_a, m, k, a, lda);
    packed.pack();
    fastae::detail::gemm_shared_a(packed, trans_b, n, b, ldb, beta, c, ldc, ws);
}

}  // namespace

TEST(gemm_small_sizes_all_transposes) {
    check_cube(fastae::detail::gemm, kSmall, 1.0f, 0.0f, 0);
}

TEST(gemm_small_sizes_alpha_beta_and_views) {
    check_cube(fastae::detail::gemm, {1, 7, 16, 17, 33, 64}, -0.5f, 2.0f, 3);
    check_cube(fastae::detail::gemm, {1, 6, 15, 65}, 0.75f, 1.0f, 1);
}

TEST(gemm_large_and_block_edge_sizes) {
    check_large(fastae::detail::gemm);
}

TEST(gemm_layer_shapes_with_views_and_accumulation) {
    GemmWorkspace ws;
    unsigned seed = 77;
    // beta = 1 accumulates into C (as a gradient summed over shards would).
    CHECK(check_case({false, true, 784, 64, 256, 1.0f, 1.0f, 5}, fastae::detail::gemm, ws, seed++));
    CHECK(check_case({true, false, 64, 256, 784, 0.5f, -1.0f, 2}, fastae::detail::gemm, ws, seed++));
    CHECK(check_case({false, false, 257, 255, 785, 1.0f, 0.25f, 1}, fastae::detail::gemm, ws, seed++));
}

TEST(gemm_beta_zero_ignores_nan_in_c) {
    GemmWorkspace ws;
    for (int t = 0; t < 4; ++t) {
        for (const int s : {1, 17, 65}) {
            const Case cs{(t & 1) != 0, (t & 2) != 0, s, s + 6, 300, 1.5f, 0.0f, 2};
            CHECK(check_case(cs, fastae::detail::gemm, ws, 500 + unsigned(s), /*nan_c=*/true));
        }
    }
}

TEST(gemm_alpha_zero_or_k_zero_only_scales_c) {
    GemmWorkspace ws;
    const int m = 5, n = 4, k = 3;
    const std::vector<float> nan_a(m * k, kNaN), nan_b(k * n, kNaN);
    std::vector<float> c(m * n, 2.0f);
    fastae::detail::gemm(false, false, m, n, k, 0.0f, nan_a.data(), m, nan_b.data(), k, 0.5f,
                         c.data(), m, ws);
    for (float v : c) CHECK(v == 1.0f);  // alpha = 0: A and B (NaN) are not read
    fastae::detail::gemm(false, false, m, n, 0, 1.0f, nullptr, m, nullptr, 1, 3.0f, c.data(), m, ws);
    for (float v : c) CHECK(v == 3.0f);
    std::vector<float> nan_c(m * n, kNaN);
    fastae::detail::gemm(true, true, m, n, 0, 1.0f, nullptr, 1, nullptr, n, 0.0f, nan_c.data(), m, ws);
    for (float v : nan_c) CHECK(v == 0.0f);
    // m or n == 0: nothing to do, and nothing is touched.
    fastae::detail::gemm(false, false, 0, n, k, 1.0f, nullptr, 1, nan_b.data(), k, 0.0f, nullptr, 1, ws);
}

TEST(gemm_is_bit_identical_at_any_buffer_alignment) {
    const int m = 67, n = 29, k = 301;
    std::mt19937 gen(9);
    for (int t = 0; t < 4; ++t) {
        const bool ta = (t & 1) != 0, tb = (t & 2) != 0;
        const int lda = ta ? k : m, ldb = tb ? n : k;
        const auto a = random_matrix(ta ? k : m, ta ? m : k, 0, gen);
        const auto b = random_matrix(tb ? n : k, tb ? k : n, 0, gen);
        const auto c_in = random_matrix(m, n, 0, gen);
        std::vector<float> first;
        for (int shift = 0; shift < 8; ++shift) {
            // Copies of the operands starting `shift` floats into fresh buffers.
            std::vector<float> as(a.size() + 8), bs(b.size() + 8), cs(c_in.size() + 8);
            std::copy(a.begin(), a.end(), as.begin() + shift);
            std::copy(b.begin(), b.end(), bs.begin() + shift);
            std::copy(c_in.begin(), c_in.end(), cs.begin() + shift);
            GemmWorkspace ws;
            fastae::detail::gemm(ta, tb, m, n, k, 0.5f, as.data() + shift, lda, bs.data() + shift,
                                 ldb, 1.5f, cs.data() + shift, m, ws);
            std::vector<float> got(cs.begin() + shift, cs.begin() + shift + long(c_in.size()));
            if (shift == 0) {
                first = got;
            } else {
                CHECK(std::memcmp(first.data(), got.data(), got.size() * sizeof(float)) == 0);
            }
        }
    }
}

TEST(gemm_workspace_stops_growing_after_reserve) {
    // The five products of a 784-64-784 step at batch 256: no reallocation once reserved.
    GemmWorkspace ws(784, 784, 784);
    const float* before = ws.data();
    const std::size_t capacity = ws.capacity_floats();
    CHECK(capacity >= fastae::detail::gemm_workspace_floats(784, 784, 784));
    std::mt19937 gen(3);
    const auto w1 = random_matrix(64, 784, 0, gen), x = random_matrix(784, 256, 0, gen);
    const auto w2 = random_matrix(784, 64, 0, gen);
    std::vector<float> a1(64 * 256), z2(784 * 256), dw2(784 * 64), da1(64 * 256), dw1(64 * 784);
    using fastae::detail::gemm;
    for (int step = 0; step < 2; ++step) {
        gemm(false, false, 64, 256, 784, 1.0f, w1.data(), 64, x.data(), 784, 0.0f, a1.data(), 64, ws);
        gemm(false, false, 784, 256, 64, 1.0f, w2.data(), 784, a1.data(), 64, 0.0f, z2.data(), 784, ws);
        gemm(false, true, 784, 64, 256, 1.0f, z2.data(), 784, a1.data(), 64, 0.0f, dw2.data(), 784, ws);
        gemm(true, false, 64, 256, 784, 1.0f, w2.data(), 784, z2.data(), 784, 0.0f, da1.data(), 64, ws);
        gemm(false, true, 64, 784, 256, 1.0f, da1.data(), 64, x.data(), 784, 0.0f, dw1.data(), 64, ws);
    }
    CHECK(ws.data() == before);
    CHECK(ws.capacity_floats() == capacity);
    // A fresh workspace grows on its first call (the Eigen fallback build needs none) and then
    // stays.
    GemmWorkspace lazy;
    gemm(false, false, 64, 256, 784, 1.0f, w1.data(), 64, x.data(), 784, 0.0f, a1.data(), 64, lazy);
    const float* grown = lazy.data();
    CHECK(lazy.capacity_floats() >= fastae::detail::gemm_workspace_floats(64, 256, 784));
    gemm(false, false, 64, 256, 784, 1.0f, w1.data(), 64, x.data(), 784, 0.0f, a1.data(), 64, lazy);
    CHECK(lazy.data() == grown);
}

TEST(gemm_workspace_size_is_bounded_and_monotone) {
    using fastae::detail::gemm_workspace_floats;
    const int big = std::numeric_limits<int>::max();
    // Capped by the cache blocks, whatever the dimensions (no overflow near INT_MAX).
    CHECK(gemm_workspace_floats(big, big, big) == gemm_workspace_floats(100000, 100000, 100000));
    CHECK(gemm_workspace_floats(big, big, big) < (std::size_t(1) << 22));
    CHECK(gemm_workspace_floats(0, 5, 5) == 0);
    // Non-decreasing in each dimension, so reserving for the largest covers the rest.
    const int sizes[] = {1, 5, 16, 17, 63, 64, 128, 129, 255, 256, 257, 504, 505, 784, 1000};
    for (int a : sizes) {
        for (int b : sizes) {
            for (std::size_t i = 1; i < sizeof(sizes) / sizeof(sizes[0]); ++i) {
                const int lo = sizes[i - 1], hi = sizes[i];
                CHECK(gemm_workspace_floats(lo, a, b) <= gemm_workspace_floats(hi, a, b));
                CHECK(gemm_workspace_floats(a, lo, b) <= gemm_workspace_floats(a, hi, b));
                CHECK(gemm_workspace_floats(a, b, lo) <= gemm_workspace_floats(a, b, hi));
            }
        }
    }
}

TEST(gemm_rejects_bad_arguments) {
    GemmWorkspace ws;
    std::vector<float> a(64, 1.0f), b(64, 1.0f), c(64, 0.0f);
    using fastae::detail::gemm;
    CHECK_THROWS(gemm(false, false, -1, 2, 2, 1.0f, a.data(), 2, b.data(), 2, 0.0f, c.data(), 2, ws), std::invalid_argument);
    CHECK_THROWS(gemm(false, false, 2, -1, 2, 1.0f, a.data(), 2, b.data(), 2, 0.0f, c.data(), 2, ws), std::invalid_argument);
    CHECK_THROWS(gemm(false, false, 2, 2, -1, 1.0f, a.data(), 2, b.data(), 2, 0.0f, c.data(), 2, ws), std::invalid_argument);
    CHECK_THROWS(gemm(false, false, 4, 2, 3, 1.0f, a.data(), 3, b.data(), 3, 0.0f, c.data(), 4, ws), std::invalid_argument);  // lda < m
    CHECK_THROWS(gemm(true, false, 4, 2, 3, 1.0f, a.data(), 2, b.data(), 3, 0.0f, c.data(), 4, ws), std::invalid_argument);   // lda < k
    CHECK_THROWS(gemm(false, false, 4, 2, 3, 1.0f, a.data(), 4, b.data(), 2, 0.0f, c.data(), 4, ws), std::invalid_argument);  // ldb < k
    CHECK_THROWS(gemm(false, true, 4, 2, 3, 1.0f, a.data(), 4, b.data(), 1, 0.0f, c.data(), 4, ws), std::invalid_argument);   // ldb < n
    CHECK_THROWS(gemm(false, false, 4, 2, 3, 1.0f, a.data(), 4, b.data(), 3, 0.0f, c.data(), 3, ws), std::invalid_argument);  // ldc < m
    CHECK_THROWS(gemm(false, false, 4, 2, 3, 1.0f, nullptr, 4, b.data(), 3, 0.0f, c.data(), 4, ws), std::invalid_argument);
    CHECK_THROWS(gemm(false, false, 4, 2, 3, 1.0f, a.data(), 4, nullptr, 3, 0.0f, c.data(), 4, ws), std::invalid_argument);
    CHECK_THROWS(gemm(false, false, 4, 2, 3, 1.0f, a.data(), 4, b.data(), 3, 0.0f, nullptr, 4, ws), std::invalid_argument);
    CHECK_THROWS(fastae::detail::gemm_workspace_floats(1, -2, 1), std::invalid_argument);
    try {
        gemm(false, false, 4, 2, 3, 1.0f, a.data(), 3, b.data(), 3, 0.0f, c.data(), 4, ws);
    } catch (const std::invalid_argument& e) {
        CHECK(std::string(e.what()).find("lda") != std::string::npos);
        CHECK(std::string(e.what()).find("got 3") != std::string::npos);
    }
}

TEST(gemm_avx512_geometry_with_avx2_vectors) {
    // The AVX-512 build's 32 x 8 tiling (packing, edges, blocks), run where AVX2 is all we have.
    if (!fastae::detail::gemm_avx512_geometry_on_avx2_available()) {
        std::printf("  (skipped: this build has no AVX2+FMA kernel; kernel is %s)\n",
                    fastae::detail::gemm_kernel_name());
        return;
    }
    check_cube(fastae::detail::gemm_avx512_geometry_on_avx2, {1, 7, 8, 9, 12, 13, 16, 17, 31, 32, 33, 64}, 1.0f, 0.0f, 0);
    check_cube(fastae::detail::gemm_avx512_geometry_on_avx2, {1, 11, 33}, -0.5f, 2.0f, 2);
    check_large(fastae::detail::gemm_avx512_geometry_on_avx2);
}

TEST(gemm_reports_its_kernel) {
    const std::string name = fastae::detail::gemm_kernel_name();
    std::printf("  kernel: %s\n", name.c_str());
    CHECK(name == "avx512 32x8" || name == "avx2+fma 16x6" || name == "eigen");
}

// A shared op(A) (SharedPackedA): the products against the double reference, as gemm's are.
TEST(gemm_shared_a_against_the_reference) {
    check_cube(shared_a_fn, {1, 7, 8, 9, 12, 13, 16, 17, 31, 32, 33, 64}, 1.0f, 0.0f, 0);
    check_cube(shared_a_fn, {1, 11, 33}, 1.0f, 2.0f, 2);
    GemmWorkspace ws;
    unsigned seed = 5000;
    for (Case c : large_cases()) {
        for (int t = 0; t < 4; ++t) {
            c.trans_a = (t & 1) != 0;
            c.trans_b = (t & 2) != 0;
            if (std::int64_t(c.m) * c.n * c.k > 20'000'000 && t != 0) continue;
            check_case(c, shared_a_fn, ws, seed++);
        }
    }
}

// The shards of a step: several threads pack one A together (each claiming blocks), then each
// multiplies it by its own B; every C is gemm's bit for bit. After invalidate() and new values in
// A, the next round packs the new values. Shapes past one cache block of A in m and in k.
TEST(gemm_shared_a_packed_by_several_threads_equals_gemm) {
    struct Shape { bool trans_a; int m, k, n; };
    const Shape shapes[] = {{false, 784, 256, 64}, {true, 256, 784, 64}, {false, 300, 600, 37}, {true, 64, 784, 128},
                            {false, 1, 1, 5}};
    std::mt19937 gen(7);
    for (const Shape& sh : shapes) {
        const int a_rows = sh.trans_a ? sh.k : sh.m, a_cols = sh.trans_a ? sh.m : sh.k;
        std::vector<float> a = random_matrix(a_rows, a_cols, 0, gen);
        fastae::detail::SharedPackedA packed(sh.trans_a, sh.m, sh.k, a.data(), a_rows);
        constexpr int kThreads = 4;
        std::vector<std::vector<float>> b(kThreads), got(kThreads), want(kThreads);
        for (int t = 0; t < kThreads; ++t) b[std::size_t(t)] = random_matrix(sh.k, sh.n, 0, gen);
        for (int round = 0; round < 3; ++round) {
            if (round > 0) {  // new weights, as after an update
                for (float& v : a) v = v * 0.5f + 0.25f;
                packed.invalidate();
            }
            CHECK(!packed.packed() || !fastae::detail::gemm_sums_in_k_runs());  // (the Eigen build packs nothing)
            std::vector<std::thread> team;
            for (int t = 0; t < kThreads; ++t) {
                team.emplace_back([&, t] {
                    GemmWorkspace ws;
                    packed.pack();
                    got[std::size_t(t)].assign(std::size_t(sh.m) * std::size_t(sh.n), -1.0f);
                    fastae::detail::gemm_shared_a(packed, false, sh.n, b[std::size_t(t)].data(), sh.k, 0.0f,
                                                  got[std::size_t(t)].data(), sh.m, ws);
                });
            }
            for (std::thread& th : team) th.join();
            GemmWorkspace ws;
            for (int t = 0; t < kThreads; ++t) {
                want[std::size_t(t)].assign(std::size_t(sh.m) * std::size_t(sh.n), -2.0f);
                fastae::detail::gemm(sh.trans_a, false, sh.m, sh.n, sh.k, 1.0f, a.data(), a_rows, b[std::size_t(t)].data(),
                                     sh.k, 0.0f, want[std::size_t(t)].data(), sh.m, ws);
                CHECK(std::memcmp(got[std::size_t(t)].data(), want[std::size_t(t)].data(),
                                  want[std::size_t(t)].size() * sizeof(float)) == 0);
            }
        }
    }
}

// A tile of a product is the product's tile, bit for bit, written (beta 0) or added to C (beta
// 1): each element's sum depends only on its k (training_slices.cpp computes a deferred dW by
// tiles, training_deferred.cpp: choose_deferred). Tiles at and off the micro-kernels' edges; one k-run
// (16) and three (600).
TEST(gemm_tiles_have_the_whole_products_bits) {
    std::mt19937 gen(11);
    for (const int k : {16, 600}) {
        const int m = 200, n = 90;
        const std::vector<float> a = random_matrix(m, k, 0, gen);  // dZ-like: A (m, k)
        const std::vector<float> b = random_matrix(n, k, 0, gen);  // input-like: B^T stored (n, k)
        const std::vector<float> c0 = random_matrix(m, n, 0, gen);
        GemmWorkspace ws;
        for (const float beta : {0.0f, 1.0f}) {
            std::vector<float> whole = c0;
            fastae::detail::gemm(false, true, m, n, k, 1.0f, a.data(), m, b.data(), n, beta, whole.data(), m, ws);
            struct Tile { int r0, r1, c0, c1; };
            for (const Tile t :
                 {Tile{0, 200, 0, 90}, {0, 48, 0, 90}, {48, 112, 8, 40}, {37, 200, 3, 90}, {199, 200, 89, 90}}) {
                std::vector<float> c = c0;
                float* tile = c.data() + std::size_t(t.c0) * m + std::size_t(t.r0);
                fastae::detail::gemm(false, true, t.r1 - t.r0, t.c1 - t.c0, k, 1.0f, a.data() + t.r0, m,
                                     b.data() + t.c0, n, beta, tile, m, ws);
                bool same = true;
                for (int j = 0; j < n; ++j) {
                    for (int i = 0; i < m; ++i) {
                        const std::size_t at = std::size_t(j) * std::size_t(m) + std::size_t(i);
                        const bool inside = i >= t.r0 && i < t.r1 && j >= t.c0 && j < t.c1;
                        same = same && std::memcmp(&c[at], inside ? &whole[at] : &c0[at], sizeof(float)) == 0;
                    }
                }
                CHECK(same || !fastae::detail::gemm_sums_in_k_runs());  // (Eigen's product: its own order)
            }
        }
    }
}

// A product of at most 4 columns with A not transposed (one sample's layer in inference) reads A
// in place instead of packing it (gemm_kernels.h: FewColumns); its columns must have the bits the
// packed, blocked kernels give the same columns inside a wider product (9 columns), so that a
// 1-row call equals that row of a batch call. Sizes around the vector blocks (8, 4, 2, 1 vectors
// and a scalar tail) and the k runs (196 and 256 are one run, 257 and 784 several), both B
// layouts, alpha and beta as the layers use them and not, views, in the native build and the
// AVX-512 geometry on AVX2.
TEST(gemm_few_columns_have_the_blocked_products_bits) {
    if (!fastae::detail::gemm_sums_in_k_runs()) return;  // the Eigen build has one path
    std::mt19937 gen(5);
    const int wide = 9;
    struct AlphaBeta { float alpha, beta; };
    int compared = 0;
    for (GemmFn fn : {GemmFn(fastae::detail::gemm), GemmFn(fastae::detail::gemm_avx512_geometry_on_avx2)}) {
        GemmWorkspace ws;
        for (const int m : {1, 7, 8, 15, 16, 17, 33, 64, 65, 130, 784}) {
            for (const int k : {1, 3, 196, 256, 257, 784}) {
                const int pad = (m + k) % 2 == 0 ? 0 : 3;
                const int lda = m + pad, ldc = m + pad;
                const std::vector<float> a = random_matrix(m, k, pad, gen);
                const std::vector<float> c0 = random_matrix(m, wide, pad, gen);
                for (const bool trans_b : {false, true}) {
                    const int ldb = (trans_b ? wide : k) + pad;
                    const std::vector<float> b = random_matrix(trans_b ? wide : k, trans_b ? k : wide, pad, gen);
                    for (const AlphaBeta ab : {AlphaBeta{1.0f, 0.0f}, {1.0f, 1.0f}, {0.5f, 2.0f}, {-1.0f, 0.25f}}) {
                        std::vector<float> whole = c0;
                        fn(false, trans_b, m, wide, k, ab.alpha, a.data(), lda, b.data(), ldb, ab.beta, whole.data(),
                           ldc, ws);
                        for (int n = 1; n <= 4; ++n) {
                            std::vector<float> few = c0;
                            fn(false, trans_b, m, n, k, ab.alpha, a.data(), lda, b.data(), ldb, ab.beta, few.data(),
                               ldc, ws);
                            const std::size_t floats = std::size_t(ldc) * std::size_t(n);
                            const bool same = std::memcmp(few.data(), whole.data(), floats * sizeof(float)) == 0 &&
                                              std::memcmp(few.data() + floats, c0.data() + floats,
                                                          (c0.size() - floats) * sizeof(float)) == 0;
                            CHECK_IN(same, "m " + std::to_string(m) + " n " + std::to_string(n) + " k " +
                                               std::to_string(k) + (trans_b ? " NT" : " NN") + " alpha " +
                                               std::to_string(ab.alpha) + " beta " + std::to_string(ab.beta));
                            ++compared;
                        }
                    }
                }
            }
        }
    }
    CHECK(compared == 2 * 11 * 6 * 2 * 4 * 4);
}

// reset(): a shared A read anew from another matrix with fewer columns (a shard's dZ, deferred:
// deferred_gradient.h) multiplies as gemm does, bit for bit; k past the constructor's is refused.
TEST(gemm_shared_a_reset_to_another_a) {
    std::mt19937 gen(13);
    const int m = 300, capacity = 256;
    const std::vector<float> first = random_matrix(m, capacity, 0, gen);
    fastae::detail::SharedPackedA packed(false, m, capacity, first.data(), m);
    GemmWorkspace ws;
    for (const int k : {256, 16, 1, 100, 0}) {
        const std::vector<float> a = random_matrix(m, std::max(k, 1), 0, gen);
        const std::vector<float> b = random_matrix(40, std::max(k, 1), 0, gen);
        packed.reset(a.data(), k);
        packed.pack();
        std::vector<float> got(std::size_t(m) * 40, -1.0f), want(std::size_t(m) * 40, -2.0f);
        fastae::detail::gemm_shared_a(packed, true, 40, b.data(), 40, 0.0f, got.data(), m, ws);
        fastae::detail::gemm(false, true, m, 40, k, 1.0f, a.data(), m, b.data(), 40, 0.0f, want.data(), m, ws);
        CHECK(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)) == 0);
        CHECK(packed.k() == k);
    }
    std::vector<float> a(std::size_t(m) * (capacity + 1), 1.0f);
    CHECK_THROWS(packed.reset(a.data(), capacity + 1), std::invalid_argument);
    CHECK_THROWS(packed.reset(a.data(), -1), std::invalid_argument);
    CHECK_THROWS(packed.reset(nullptr, 4), std::invalid_argument);
}

TEST(gemm_shared_a_refuses_an_unpacked_a_and_bad_sizes) {
    std::vector<float> a(64, 1.0f), b(64, 1.0f), c(64, 0.0f);
    GemmWorkspace ws;
    fastae::detail::SharedPackedA packed(false, 4, 3, a.data(), 4);
    if (fastae::detail::gemm_sums_in_k_runs()) {  // the Eigen build packs nothing
        CHECK_THROWS(fastae::detail::gemm_shared_a(packed, false, 2, b.data(), 3, 0.0f, c.data(), 4, ws), std::logic_error);
    }
    packed.pack();
    CHECK_THROWS(fastae::detail::gemm_shared_a(packed, false, 2, b.data(), 2, 0.0f, c.data(), 4, ws), std::invalid_argument);
    CHECK_THROWS(fastae::detail::SharedPackedA(false, 4, 3, a.data(), 3), std::invalid_argument);  // lda < m
    CHECK_THROWS(fastae::detail::SharedPackedA(false, -1, 3, a.data(), 3), std::invalid_argument);
    CHECK_THROWS(fastae::detail::SharedPackedA(false, 4, 3, nullptr, 4), std::invalid_argument);
}
