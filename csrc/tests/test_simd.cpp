// test_simd.cpp -- the kernels written once over simd.h's vector traits, run at every width this
// machine has: Vec8, Twin16 (Vec16's geometry on two AVX2 halves, so the 16-lane loops, tails,
// masks and sum orders run on machines without AVX-512) and Vec16 where the build has AVX-512F.
// For each kernel: (a) every width gives the same bits (outputs, sums) for every tail length
// 0..31 and lengths past 64, NaN and infinite inputs included, and nothing past the end is read or
// written; (b) the results against an independent reference: std::exp / std::log1p, head.h's
// naive twin in double. The traits themselves: masked tails, the documented order of the
// horizontal sums, the aligned sweep of the non-temporal stores. The update rules at every width:
// test_update_rules.cpp.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "check.h"
#include "fastae/version.h"
#include "gemm.h"
#include "head.h"
#include "test_data.h"
#include "vector_math.h"
#include "widths.h"

using namespace fastae;
using namespace fastae::detail;
using fastae_test::for_each_width;
using fastae_test::kInf;
using fastae_test::kNaN;
using fastae_test::lengths;
using fastae_test::same_bits;

#ifdef FASTAE_HAVE_AVX2_MATH

namespace {

// Some values that have to survive every width alike: signed zeros, the edges of exp's clamp,
// infinities, NaNs of both signs, subnormals.
std::vector<float> special_values() {
    return {0.0f, -0.0f, -87.0f, -87.5f, -100.0f, -1e30f, -kInf, kInf, kNaN, -kNaN, 1e-40f, -1e-40f, 88.0f, 3.0f};
}

// out[i] = fn(in[i]) over n values through sweep<V> (whole vectors and a masked tail). The
// buffers have 16 guard values past n, which the sweep must neither read into a result nor write.
template <class V, class Fn>
std::vector<float> map_values(const std::vector<float>& in, Fn fn) {
    std::vector<float> src = in, out(in.size() + 16, 7.0f);
    src.resize(in.size() + 16, kNaN);
    simd::sweep<V>(in.size(), [&](const auto& at) { at.store(out.data(), fn(at.load(src.data()))); });
    for (std::size_t i = in.size(); i < out.size(); ++i) CHECK(out[i] == 7.0f);
    out.resize(in.size());
    return out;
}

}  // namespace

// ---- the traits ---------------------------------------------------------------------------------

// first_lanes / load_masked / store_masked: every count 0..lanes reads and writes exactly the first
// count floats (the rest of a loaded vector is 0); the horizontal sum runs in the order simd.h
// documents: 8 running sums (lane k, then lane k + 8), then (0+4, 1+5, 2+6, 3+7), (0+2, 1+3), 0+1.
TEST(traits_masked_tails_and_horizontal_sum_order) {
    std::mt19937 gen(1);
    std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
    for_each_width([&](auto v, const char* name) {
        using V = decltype(v);
        for (int count = 0; count <= V::lanes; ++count) {
            std::vector<float> src(V::lanes), dst(V::lanes, 5.0f), back(V::lanes, 9.0f);
            for (float& x : src) x = unit(gen) * 1e4f;
            const auto m = V::first_lanes(count);
            V::storeu(back.data(), V::load_masked(src.data(), m));
            V::store_masked(dst.data(), m, V::loadu(src.data()));
            for (int k = 0; k < V::lanes; ++k) {
                const bool in = k < count;
                if (back[std::size_t(k)] != (in ? src[std::size_t(k)] : 0.0f) ||
                    dst[std::size_t(k)] != (in ? src[std::size_t(k)] : 5.0f)) {
                    fastae_test::fail(__FILE__, __LINE__, std::string(name) + ": masked lane " + std::to_string(k) +
                                                              " of count " + std::to_string(count));
                }
            }
            CHECK(V::any(m) == (count > 0));
            // Sum of values of very different magnitudes, so that the order shows in the bits.
            for (int k = 0; k < V::lanes; ++k) src[std::size_t(k)] = unit(gen) * std::ldexp(1.0f, 3 * (k % 7));
            float s8[8];
            for (int k = 0; k < 8; ++k) s8[k] = 0.0f + src[std::size_t(k)];
            for (int k = 8; k < V::lanes; ++k) s8[k - 8] = s8[k - 8] + src[std::size_t(k)];
            const float s4[4] = {s8[0] + s8[4], s8[1] + s8[5], s8[2] + s8[6], s8[3] + s8[7]};
            const float want = (s4[0] + s4[2]) + (s4[1] + s4[3]);
            CHECK(same_bits(V::horizontal_sum(V::loadu(src.data())), want));
        }
    });
}

// sweep_aligned_to: at every offset of the aligned buffer (each possible head) and every length
// around a vector's, every element is visited exactly once, at.stream writes exactly [0, n) of
// it (the guard values around stay), and every whole vector's stream lands on an aligned
// address (a non-temporal store to an unaligned one faults, so a wrong head would crash here).
TEST(sweep_aligned_to_visits_each_element_once_with_aligned_streams) {
    for_each_width([&](auto v, const char* name) {
        using V = decltype(v);
        constexpr int L = V::lanes;
        AlignedFloats buffer(std::size_t(8 * L), -3.0f);  // 64-byte aligned
        std::vector<float> src(std::size_t(8 * L));
        for (std::size_t i = 0; i < src.size(); ++i) src[i] = float(i) + 0.5f;
        for (int offset = 0; offset < L; ++offset) {
            for (int n : {0, 1, L - 1, L, L + 1, 2 * L - 1, 3 * L + 2, 5 * L}) {
                std::fill(buffer.begin(), buffer.end(), -3.0f);
                float* out = buffer.data() + offset;
                std::vector<int> visits(std::size_t(n), 0);
                bool aligned = true;
                std::vector<float> lanes(static_cast<std::size_t>(L));  // on the heap: ASan's fake stack frames are not 64-byte aligned
                simd::sweep_aligned_to<V>(out, std::size_t(n), [&](const auto& at) {
                    const auto x = at.load(src.data());
                    at.stream(out, x);
                    V::storeu(lanes.data(), at.keep(V::set1(1.0f)));
                    for (int k = 0; k < L; ++k) {
                        if (lanes[std::size_t(k)] == 1.0f) ++visits[at.i + std::size_t(k)];
                    }
                    if constexpr (std::is_same_v<std::decay_t<decltype(at)>, simd::Whole<V>>) {
                        aligned = aligned && reinterpret_cast<std::uintptr_t>(out + at.i) % (sizeof(float) * L) == 0;
                    }
                });
                simd::stream_fence();
                bool ok = aligned;
                for (int i = 0; i < n; ++i) ok = ok && visits[std::size_t(i)] == 1 && out[i] == src[std::size_t(i)];
                for (std::size_t i = 0; i < buffer.size(); ++i) {
                    if (i < std::size_t(offset) || i >= std::size_t(offset + n)) ok = ok && buffer[i] == -3.0f;
                }
                if (!ok) {
                    fastae_test::fail(__FILE__, __LINE__, std::string(name) + ": offset " + std::to_string(offset) +
                                                              ", n " + std::to_string(n));
                }
            }
        }
    });
}

// The comparisons, select, not_finite, max/min on NaN and signed zeros, round, to_int and pow2
// lane by lane against scalar C++ (the x86 max/min rule: the second operand when either is NaN
// or both are zero), and the same bits at every width.
TEST(traits_lanewise_operations_match_scalar_rules) {
    std::vector<float> a = special_values(), b = special_values();
    for (std::size_t k = 0; k < b.size(); ++k) b[k] = b[(k * 5 + 3) % a.size()];
    for (float x : {2.5f, -2.5f, 3.5f, 0.49999997f, -126.0f, 127.0f, 5.0f, -1.0f}) {
        a.push_back(x);
        b.push_back(-x);
    }
    const std::size_t n = a.size(), kOps = 10;
    std::vector<std::vector<float>> results;
    for_each_width([&](auto v, const char* name) {
        using V = decltype(v);
        std::vector<float> out(kOps * n);  // out[op * n + i]
        for (std::size_t i = 0; i < n; i += std::size_t(V::lanes)) {
            std::vector<float> x(std::size_t(V::lanes), 1.0f), y(std::size_t(V::lanes), 1.0f);
            for (std::size_t k = 0; k < std::size_t(V::lanes) && i + k < n; ++k) x[k] = a[i + k], y[k] = b[i + k];
            const auto xv = V::loadu(x.data()), yv = V::loadu(y.data());
            const auto one = V::set1(1.0f), zero = V::zero();
            const typename V::type ops[] = {
                V::max(xv, yv), V::min(xv, yv), V::select(V::greater(xv, yv), one, zero),
                V::select(V::greater_equal(xv, yv), one, zero), V::select(V::not_finite(xv), one, zero),
                V::abs(xv), V::negative_abs(xv), V::round(V::min(V::max(xv, V::set1(-1e6f)), V::set1(1e6f))),
                V::pow2(V::to_int(V::min(V::max(V::round(xv), V::set1(-126.0f)), V::set1(127.0f)))),
                V::to_float(V::to_int(V::min(V::max(xv, V::set1(-1e6f)), V::set1(1e6f))))};
            for (std::size_t op = 0; op < kOps; ++op) {
                std::vector<float> lane(std::size_t(V::lanes));
                V::storeu(lane.data(), ops[op]);
                for (std::size_t k = 0; k < std::size_t(V::lanes) && i + k < n; ++k) out[op * n + i + k] = lane[k];
            }
        }
        if (!results.empty() && !same_bits(out, results[0])) {
            fastae_test::fail(__FILE__, __LINE__, std::string(name) + ": lanewise operations differ from Vec8's");
        }
        results.push_back(out);
    });
    // The Vec8 results (identical at every width, checked above) against scalar rules.
    const std::vector<float>& out = results[0];
    for (std::size_t op = 0; op < kOps; ++op) {
        for (std::size_t i = 0; i < n; ++i) {
            {
                const std::size_t at = op * n + i;
                const float x = a[i], y = b[i];
                const float clamped = std::fmin(std::fmax(x, -1e6f), 1e6f);
                float want = 0;
                switch (int(op)) {
                    case 0: want = x > y ? x : y; break;  // x86 max: y unless x > y
                    case 1: want = x < y ? x : y; break;
                    case 2: want = x > y ? 1.0f : 0.0f; break;
                    case 3: want = x >= y ? 1.0f : 0.0f; break;
                    case 4: want = std::isfinite(x) ? 0.0f : 1.0f; break;
                    case 5: want = std::fabs(x); break;
                    case 6: want = -std::fabs(x); break;
                    case 7: want = std::isnan(x) ? out[at] : std::nearbyint(clamped); break;
                    case 8:
                        want = std::isnan(x) ? out[at]
                                             : std::ldexp(1.0f, int(std::fmin(std::fmax(std::nearbyint(x), -126.0f), 127.0f)));
                        break;
                    case 9: want = std::isnan(x) ? out[at] : float(std::lrint(clamped)); break;  // -0.3 -> +0
                }
                if (!same_bits(out[at], want)) {
                    fastae_test::fail(__FILE__, __LINE__, "operation " + std::to_string(op) + " on " + std::to_string(x) +
                                                              ", " + std::to_string(y) + ": " + std::to_string(out[at]) +
                                                              " != " + std::to_string(want));
                }
            }
        }
    }
}

// ---- vector_math.h ------------------------------------------------------------------------------

// exp_nonpositive: within 2 ulp of exp over [-87, 0] at every width (and the same bits at every
// width, tails included); below -87 it gives exp(-87); NaN stays NaN. log1p_unit within 4 ulp of
// log1p over [0, 1].
TEST(exp_and_log1p_at_every_width) {
    std::vector<float> exp_in = special_values(), log_in = {0.0f, 1.0f, 1e-30f, 1e-40f, 0.5f, kNaN};
    for (float a = -87.0f; a < 0.0f; a += 0.000731f) exp_in.push_back(a);
    for (float e = 0.0f; e <= 1.0f; e += 0.0000613f) log_in.push_back(e);
    std::vector<float> exp8, log8;
    for_each_width([&](auto v, const char* name) {
        using V = decltype(v);
        for (int n : lengths()) {  // the first n values: every tail length
            const std::vector<float> head_in(exp_in.begin(), exp_in.begin() + n);
            const auto a = map_values<V>(head_in, [](auto x) { return simd::exp_nonpositive<V>(x); });
            const auto b = map_values<simd::Vec8>(head_in, [](auto x) { return simd::exp_nonpositive<simd::Vec8>(x); });
            if (!same_bits(a, b)) fastae_test::fail(__FILE__, __LINE__, std::string(name) + ": exp, n " + std::to_string(n));
        }
        const auto e = map_values<V>(exp_in, [](auto x) { return simd::exp_nonpositive<V>(x); });
        const auto l = map_values<V>(log_in, [](auto x) { return simd::log1p_unit<V>(x); });
        if (exp8.empty()) {
            exp8 = e, log8 = l;
        } else if (!same_bits(e, exp8) || !same_bits(l, log8)) {
            fastae_test::fail(__FILE__, __LINE__, std::string(name) + ": exp or log1p differs from Vec8's");
        }
    });
    double worst_exp = 0, worst_log = 0;
    for (std::size_t i = 0; i < exp_in.size(); ++i) {
        const float x = exp_in[i];
        if (std::isnan(x)) {
            CHECK(std::isnan(exp8[i]));
        } else if (x > 0.0f) {
            continue;  // outside the domain
        } else if (x < -87.0f) {
            CHECK_NEAR(exp8[i], std::exp(-87.0), 1e-44);
        } else {
            const double want = std::exp(double(x));
            const double ulp = double(std::nextafter(float(want), 1.0f)) - double(float(want));
            worst_exp = std::max(worst_exp, std::fabs(exp8[i] - want) / ulp);
        }
    }
    for (std::size_t i = 0; i < log_in.size(); ++i) {
        const float e = log_in[i];
        if (std::isnan(e)) {
            CHECK(std::isnan(log8[i]));
            continue;
        }
        const double want = std::log1p(double(e));
        const double ulp = want > 0 ? double(std::nextafter(float(want), 1.0f)) - double(float(want)) : 1e-45;
        worst_log = std::max(worst_log, std::fabs(log8[i] - want) / ulp);
    }
    CHECK(worst_exp <= 2.0);
    CHECK(worst_log <= 4.0);
}

// log_at_least_one8 (the log of the BCE column's products): within 3e-7 of log's magnitude over
// [1, 2^126] (powers of 2 and the values between), 0 at 1, NaN for NaN.
TEST(log_at_least_one8_against_std_log) {
    std::vector<float> in = {1.0f, std::nextafter(1.0f, 2.0f), 2.0f, 1.5f, 3.0f, 1e10f, 1.8446744e19f, 0x1p126f, kNaN};
    for (float x = 1.0f; x < 0x1p126f; x *= 1.0173f) in.push_back(x);
    double worst = 0;
    for (std::size_t i = 0; i < in.size(); i += 8) {
        alignas(32) float block[8], out[8];
        for (int k = 0; k < 8; ++k) block[k] = in[std::min(i + std::size_t(k), in.size() - 1)];
        _mm256_store_ps(out, simd::log_at_least_one8(_mm256_load_ps(block)));
        for (int k = 0; k < 8; ++k) {
            if (std::isnan(block[k])) {
                CHECK(std::isnan(out[k]));
                continue;
            }
            const double want = std::log(double(block[k]));
            worst = std::max(worst, std::fabs(out[k] - want) / std::max(1.0, want));
            if (block[k] == 1.0f) CHECK(out[k] == 0.0f && !std::signbit(out[k]));
        }
    }
    CHECK(worst <= 3e-7);
}

// ---- head.h: the BCE column -------------------------------------------------------------------

// bce_column at every width: the same outputs and column sum, bit for bit, for every length,
// both branches of z, with and without the gradient, with NaN and infinite logits anywhere
// (a NaN reaches the sum); and, on finite logits, against head_naive in double.
TEST(bce_column_same_bits_at_every_width_and_matches_naive) {
    HeadSpec head;
    head.loss = Loss::bce;
    const ActivationSpec out = activation_spec(Activation::sigmoid);
    const auto specials = special_values();
    // Past 512 the products' logs are taken on the way (after every 512 elements): lengths that
    // end a whole vector, a tail, or a column at such a point, and a long column.
    std::vector<int> ds = lengths();
    for (int d : {511, 512, 513, 1016, 1020, 1024, 1031, 3000}) ds.push_back(d);
    for (int d : ds) {
        for (int variant = 0; variant < 4; ++variant) {  // 0: |z| <= 20; 1: wide; 2: with specials; 3: |z| <= 1e-3
            const float range = variant == 0 ? 20.0f : variant == 3 ? 1e-3f : 120.0f;
            auto z = fastae_test::random_vector(std::size_t(d), -range, range, 100 + unsigned(d) * 3 + unsigned(variant));
            const auto y = fastae_test::random_vector(std::size_t(d), 0.0f, 1.0f, 7 + unsigned(d));
            if (d > 0) z[0] = 0.0f;
            if (variant == 2) {
                for (int k = 1; k < d; k += 3) z[std::size_t(k)] = specials[std::size_t(k) % specials.size()];
            }
            for (bool want_grad : {true, false}) {
                std::vector<float> out8;
                float sum8 = 0;
                bool first = true;
                for_each_width([&](auto v, const char* name) {
                    using V = decltype(v);
                    auto g = z;
                    g.resize(std::size_t(d) + 16, 3.0f);  // guard past the column
                    auto x = y;
                    x.resize(std::size_t(d) + 16, kNaN);
                    const float sum = bce_column<V>(g.data(), x.data(), d, 0.25f, want_grad);
                    for (std::size_t i = std::size_t(d); i < g.size(); ++i) CHECK(g[i] == 3.0f);
                    g.resize(std::size_t(d));
                    if (first) {
                        out8 = g, sum8 = sum, first = false;
                    } else if (!same_bits(g, out8) || !same_bits(sum, sum8)) {
                        fastae_test::fail(__FILE__, __LINE__, std::string(name) + ": bce column differs from Vec8's, d " +
                                                                  std::to_string(d) + " variant " + std::to_string(variant));
                    }
                });
                bool any_nan = false;
                for (float v : z) any_nan = any_nan || std::isnan(v);
                if (any_nan) CHECK(std::isnan(sum8));
                // variant 3: every 1 + e near 2, so each lane's product nears 2^64 by 512 elements.
                if ((variant != 0 && variant != 3) || d == 0) continue;
                std::vector<double> zd(z.begin(), z.end()), yd(y.begin(), y.end()), dz(static_cast<std::size_t>(d));
                const double want = head_naive(head, out, zd.data(), yd.data(), d, dz.data());
                CHECK_NEAR(sum8, want, 2e-6 * (1 + std::fabs(want)));
                for (int i = 0; i < d; ++i) {
                    const double sig = dz[std::size_t(i)] + yd[std::size_t(i)];
                    CHECK_NEAR(out8[std::size_t(i)], want_grad ? 0.25 * dz[std::size_t(i)] : sig, 3e-7);
                }
            }
        }
    }
}


#endif  // builds without AVX2 have no vector kernels: their Eigen versions are tested elsewhere

// build_info names what this build runs: the GEMM's micro-kernel and the vector kernels' width
// (Eigen's own string calls an AVX2+FMA build "AVX").
TEST(build_info_names_the_kernels_that_run) {
    const std::string info = fastae::build_info();
    CHECK(info.find(std::string("GEMM kernel: ") + fastae::detail::gemm_kernel_name()) != std::string::npos);
#if defined(FASTAE_HAVE_AVX512_MATH)
    CHECK(info.find("vector kernels: AVX-512F (16 lanes)") != std::string::npos);
#elif defined(FASTAE_HAVE_AVX2_MATH)
    CHECK(info.find("vector kernels: AVX2+FMA (8 lanes)") != std::string::npos);
#else
    CHECK(info.find("vector kernels: none") != std::string::npos);
#endif
    CHECK(info.find(fastae::version_string) != std::string::npos);
}
