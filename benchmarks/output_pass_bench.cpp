// output_pass_bench.cpp -- the BCE output pass (csrc/src/head.h) as this build runs it (the vector
// column, simd.h's widest vectors, with its own exp where available), against the same formulas in Eigen array
// expressions (bce_column_eigen, the second version) and with Eigen's log1p (the first version),
// on the tutorial model's output block (784 x 256), alternating, medians. Build with
// -DFASTAE_BUILD_BENCHMARKS=ON; run build/bench/output_pass_bench.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>

#include "head.h"

using namespace fastae::detail;
using Clock = std::chrono::steady_clock;

namespace {

// The first version: Eigen's log1p (not vectorised) for log(1 + exp(-|z|)).
double bce_pass_log1p(MutMatrixMap z, ConstMatrixMap y, float scale, float* scratch) {
    const Eigen::Index d = z.rows();
    auto e = Eigen::Map<Eigen::ArrayXf>(scratch, d);
    auto l = Eigen::Map<Eigen::ArrayXf>(scratch + d, d);
    double total = 0;
    for (Eigen::Index j = 0; j < z.cols(); ++j) {
        auto zc = z.col(j).array();
        auto xc = y.col(j).array();
        e = (-zc.abs()).exp();
        l = zc.max(0.0f) - zc * xc + e.log1p();
        total += l.sum();
        zc = ((zc >= 0.0f).select(Eigen::ArrayXf::Ones(d), e) / (1.0f + e) - xc) * scale;
    }
    return total;
}

double bce_pass_eigen_series(MutMatrixMap z, ConstMatrixMap y, float scale, float* scratch) {
    double total = 0;
    for (Eigen::Index j = 0; j < z.cols(); ++j) {
        total += bce_column_eigen(z.col(j).array(), y.col(j).array(), scale, true, scratch);
    }
    return total;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

}  // namespace

int main() {
    const int d = 784, b = 256, reps = 201;
    std::mt19937 gen(1);
    std::normal_distribution<float> normal(0.0f, 4.0f);
    std::uniform_real_distribution<float> unit(0.0f, 1.0f);
    Matrix logits(d, b), targets(d, b), work(d, b);
    for (Eigen::Index i = 0; i < logits.size(); ++i) {
        logits.data()[i] = normal(gen);
        targets.data()[i] = unit(gen) < 0.8f ? 0.0f : unit(gen);
    }
    std::vector<float> scratch(3 * d);
    std::vector<double> fused, eigen_series, eigen_log1p;
    double check_a = 0, check_b = 0, check_c = 0;
    for (int r = 0; r < reps; ++r) {
        work = logits;
        auto t = Clock::now();
        check_a = head_pass(fastae::HeadSpec{}, fastae::activation_spec(fastae::Activation::sigmoid),
                            MutMatrixMap(work.data(), d, b), ConstMatrixMap(targets.data(), d, b), ColumnScale{},
                            true, nullptr, scratch.data());
        fused.push_back(std::chrono::duration<double>(Clock::now() - t).count());
        work = logits;
        t = Clock::now();
        check_c = bce_pass_eigen_series(MutMatrixMap(work.data(), d, b), ConstMatrixMap(targets.data(), d, b), 1.0f,
                                        scratch.data());
        eigen_series.push_back(std::chrono::duration<double>(Clock::now() - t).count());
        work = logits;
        t = Clock::now();
        check_b = bce_pass_log1p(MutMatrixMap(work.data(), d, b), ConstMatrixMap(targets.data(), d, b), 1.0f,
                                 scratch.data());
        eigen_log1p.push_back(std::chrono::duration<double>(Clock::now() - t).count());
    }
    std::printf("BCE output pass, 784 x 256, medians of %d alternating runs:\n", reps);
#if defined(FASTAE_HAVE_AVX512_MATH)
    const char* name = "Vec16 column, own exp";
#elif defined(FASTAE_HAVE_AVX2_MATH)
    const char* name = "Vec8 column, own exp";
#else
    const char* name = "Eigen series (this build)";
#endif
    std::printf("  head_pass (%s)  : %8.1f us\n", name, median(fused) * 1e6);
    std::printf("  Eigen exp, atanh series:        %8.1f us  (%.2fx; loss sums differ by %.2g relative)\n",
                median(eigen_series) * 1e6, median(eigen_series) / median(fused), std::abs(check_a - check_c) / check_c);
    std::printf("  Eigen exp, Eigen log1p:         %8.1f us  (%.2fx; loss sums differ by %.2g relative)\n",
                median(eigen_log1p) * 1e6, median(eigen_log1p) / median(fused), std::abs(check_a - check_b) / check_b);
}
