// machine.cpp -- measured single-core rates (fastae/machine.h).
#include "fastae/machine.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "eigen_types.h"
#include "gemm.h"

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif

namespace fastae {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

#if defined(__AVX512F__)
using PeakVector = __m512;
inline PeakVector peak_set1(float v) { return _mm512_set1_ps(v); }
inline PeakVector peak_fma(PeakVector a, PeakVector b, PeakVector c) { return _mm512_fmadd_ps(a, b, c); }
inline float peak_sum(PeakVector v) { return _mm512_reduce_add_ps(v); }
constexpr int kPeakLanes = 16;
#elif defined(__AVX2__) && defined(__FMA__)
using PeakVector = __m256;
inline PeakVector peak_set1(float v) { return _mm256_set1_ps(v); }
inline PeakVector peak_fma(PeakVector a, PeakVector b, PeakVector c) { return _mm256_fmadd_ps(a, b, c); }
inline float peak_sum(PeakVector v) {
    alignas(32) float out[8];
    _mm256_store_ps(out, v);
    return out[0] + out[1] + out[2] + out[3] + out[4] + out[5] + out[6] + out[7];
}
constexpr int kPeakLanes = 8;
#else
constexpr int kPeakLanes = 0;
#endif

}  // namespace

double measured_fma_peak_gflops(int runs) {
    if (runs < 1) throw std::invalid_argument("measured_fma_peak_gflops: runs must be >= 1, got " + std::to_string(runs));
#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
    // 12 independent accumulators: enough to cover the FMA latency (4-5 cycles) on 2 pipes.
    constexpr long kIters = 200'000;
    double best = 0.0;
    for (int r = 0; r < runs; ++r) {
        PeakVector acc[12];
        for (int i = 0; i < 12; ++i) acc[i] = peak_set1(float(i) * 1e-3f);
        const PeakVector x = peak_set1(0.999999f), y = peak_set1(1e-7f);
        const auto t0 = Clock::now();
        for (long it = 0; it < kIters; ++it) {
            for (int i = 0; i < 12; ++i) acc[i] = peak_fma(acc[i], x, y);
            __asm__ volatile("" : "+x"(acc[0]), "+x"(acc[1]), "+x"(acc[2]), "+x"(acc[3]), "+x"(acc[4]),
                             "+x"(acc[5]), "+x"(acc[6]), "+x"(acc[7]), "+x"(acc[8]), "+x"(acc[9]),
                             "+x"(acc[10]), "+x"(acc[11]));
        }
        const double s = seconds_since(t0);
        float sum = 0.0f;
        for (int i = 0; i < 12; ++i) sum += peak_sum(acc[i]);
        __asm__ volatile("" : : "x"(sum));  // keeps the loop's result alive
        best = std::max(best, 2.0 * kPeakLanes * 12 * double(kIters) / s * 1e-9);
    }
    return best;
#else
    return 0.0;
#endif
}

double measured_sgemm_gflops(int n, double seconds) {
    if (n < 1 || n > 8192) throw std::invalid_argument("measured_sgemm_gflops: n must be in [1, 8192], got " + std::to_string(n));
    if (!(seconds >= 0.0 && seconds <= 60.0)) {
        throw std::invalid_argument("measured_sgemm_gflops: seconds must be in [0, 60], got " + std::to_string(seconds));
    }
    const std::size_t size = std::size_t(n) * std::size_t(n);
    detail::AlignedFloats a(size), b(size), c(size);
    for (std::size_t i = 0; i < size; ++i) {  // values of order 1, no denormals
        a[i] = float((i * 7919) % 1000) * 1e-3f - 0.5f;
        b[i] = float((i * 104729) % 1000) * 1e-3f - 0.5f;
    }
    detail::GemmWorkspace ws(n, n, n);
    double best = 1e300;
    const auto end = Clock::now() + std::chrono::duration<double>(seconds);
    do {
        const auto t0 = Clock::now();
        detail::gemm(false, false, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n, ws);
        best = std::min(best, seconds_since(t0));
    } while (Clock::now() < end);
    return 2.0 * double(n) * double(n) * double(n) / best * 1e-9;
}

}  // namespace fastae
