// activation_bench.cpp -- relu forward and backward (from the output), as activation.h runs them
// (Eigen array expressions, vectorised by Eigen at the build's width), against the same operation
// hand-written on simd.h's widest vectors, on the hidden blocks of the tutorial (64 x 256) and
// deep (256 x 256) models and a 2-thread shard (64 x 128). Alternating, medians. It measures
// whether activation.h would gain from hand vectorisation. Eigen 3.4 does not vectorise select
// (relu's backward), so that runs as whatever the compiler makes of its scalar loop: on Zen 5
// about 2x the 16-lane sweep's time, but about 1 us a step on the tutorial model (< 0.1% of an
// epoch), so activation.h keeps Eigen. relu's forward on the training path is fused with the
// bias in network.cpp.
// Build with -DFASTAE_BUILD_BENCHMARKS=ON; run build/.../activation_bench.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>

#include "activation.h"
#include "simd.h"

using namespace fastae::detail;
using Clock = std::chrono::steady_clock;

namespace {

#ifdef FASTAE_HAVE_AVX2_MATH
using V = simd::Widest;
void relu_backward_simd(float* d, const float* a, std::size_t n) {
    simd::sweep<V>(n, [&](const auto& at) {
        at.store(d, V::select(V::greater(at.load(a), V::zero()), at.load(d), V::zero()));
    });
}
void relu_forward_simd(const float* z, float* a, std::size_t n) {
    simd::sweep<V>(n, [&](const auto& at) { at.store(a, V::max(at.load(z), V::zero())); });
}
#endif

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

template <class F>
void time_into(std::vector<double>& out, F&& f) {
    const auto t = Clock::now();
    f();
    out.push_back(std::chrono::duration<double>(Clock::now() - t).count() * 1e6);
}

}  // namespace

int main() {
#ifndef FASTAE_HAVE_AVX2_MATH
    std::printf("this build has no simd.h vectors\n");
#else
    const auto relu = fastae::activation_spec(fastae::Activation::relu);
    std::printf("relu, medians of 2001 alternating runs, us (Eigen / %d-lane simd.h)\n", V::lanes);
    for (std::size_t n : {std::size_t(64 * 128), std::size_t(64 * 256), std::size_t(256 * 256)}) {
        std::mt19937 gen(1);
        std::normal_distribution<float> normal(0.0f, 1.0f);
        std::vector<float> z(n), a(n), d0(n), d(n), d_simd(n);
        for (std::size_t i = 0; i < n; ++i) z[i] = normal(gen), a[i] = std::max(z[i], 0.0f), d0[i] = normal(gen);
        std::vector<double> back_eigen, back_simd, fwd_eigen, fwd_simd;
        bool same = true;
        for (int r = 0; r < 2001; ++r) {
            d = d0;  // each timed call finds its buffers as warm as the other's
            time_into(back_eigen, [&] { activation_backward(relu, d.data(), a.data(), nullptr, Eigen::Index(n)); });
            d_simd = d0;
            time_into(back_simd, [&] { relu_backward_simd(d_simd.data(), a.data(), n); });
            same = same && d == d_simd;
            time_into(fwd_eigen, [&] { activation_forward(relu, z.data(), a.data(), Eigen::Index(n)); });
            time_into(fwd_simd, [&] { relu_forward_simd(z.data(), a.data(), n); });
        }
        std::printf("  %6zu values: backward %6.2f / %6.2f   forward %6.2f / %6.2f%s\n", n, median(back_eigen),
                    median(back_simd), median(fwd_eigen), median(fwd_simd), same ? "" : "  (RESULTS DIFFER)");
    }
#endif
}
