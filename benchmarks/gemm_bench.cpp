// gemm_bench.cpp -- fastae's gemm (csrc/src/gemm.h) against Eigen's product on the dense layers'
// shapes (784-64-784 and 784-256-64-256-784 at batch 256, the 128-sample shards of a 2-thread
// step and the deep model's 16-sample shards of a 16-thread one), one thread. Runs the two side
// by side, alternating, and prints medians of GFLOP/s.
// Usage: gemm_bench [sample pairs (default 201)] [milliseconds per sample (default 0: one run)]
// One run per sample (0.1-4 ms) keeps most samples clear of the scheduler on a busy machine.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "fastae/machine.h"
#include "gemm.h"

namespace {

using Clock = std::chrono::steady_clock;
using fastae::detail::gemm;
using fastae::detail::GemmWorkspace;
using Matrix = Eigen::MatrixXf;

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t h = v.size() / 2;
    return v.size() % 2 ? v[h] : 0.5 * (v[h - 1] + v[h]);
}

// Mean of the "cpu MHz" lines of /proc/cpuinfo (what the kernel reports; may be the nominal
// clock in a virtual machine), 0 if unknown.
double cpuinfo_mhz() {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    double sum = 0;
    int count = 0;
    while (std::getline(in, line)) {
        if (line.rfind("cpu MHz", 0) == 0) {
            const auto colon = line.find(':');
            if (colon != std::string::npos) {
                sum += std::atof(line.c_str() + colon + 1);
                ++count;
            }
        }
    }
    return count ? sum / count : 0.0;
}

// /proc/loadavg's 1, 5 and 15 minute figures: how busy the shared machine was.
std::string loadavg() {
    std::ifstream in("/proc/loadavg");
    double a = 0, b = 0, c = 0;
    if (!(in >> a >> b >> c)) return "unknown";
    char text[64];
    std::snprintf(text, sizeof text, "%.2f %.2f %.2f", a, b, c);
    return text;
}

// The core's clock while this thread runs, in GHz: a chain of dependent integer adds (one cycle
// each on every x86-64 core) timed, the best of `runs` runs of 8 million adds (about 2 ms); 0 off
// x86-64. /proc/cpuinfo's figure can be the nominal clock in a virtual machine (2596 MHz on the
// Zen 4 development machine, which measures 3.69 GHz). The peak line divides by this one to tell
// how many full-width FMAs a cycle the core retires: on that Zen 4, 1.00 16-lane FMA (its 512-bit
// FMAs run as two 256-bit halves) and 2.00 8-lane ones, so the AVX-512 build's products gain
// nothing there from the width itself; a core with two 512-bit FMA units shows 2.
double measured_clock_ghz(int runs = 50) {
#if defined(__x86_64__)
    constexpr long kIters = 1'000'000;
    double best = 0.0;
    for (int r = 0; r < runs; ++r) {
        unsigned long x = static_cast<unsigned long>(r);
        const auto t0 = Clock::now();
        for (long i = 0; i < kIters; ++i) {
            __asm__ volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
                             "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0"
                             : "+r"(x));
        }
        best = std::max(best, 8.0 * double(kIters) / seconds_since(t0) * 1e-9);
    }
    return best;
#else
    (void)runs;
    return 0.0;
#endif
}

// Lanes of the widest vectors this build's kernels use, for the peak line (the peak itself is
// fastae::measured_fma_peak_gflops, fastae/machine.h).
#if defined(__AVX512F__)
constexpr int kPeakLanes = 16;
#elif defined(__AVX2__) && defined(__FMA__)
constexpr int kPeakLanes = 8;
#else
constexpr int kPeakLanes = 0;
#endif

struct Product {
    std::string name;
    bool trans_a, trans_b;
    int m, n, k;
};

// One product on buffers owned by its Sequence, column-major with minimal leading dimensions
// (as in network.cpp): a stored (m, k), or (k, m) if trans_a; b (k, n), or (n, k) if trans_b.
struct Call {
    Product p;
    const float* a;
    const float* b;
    float* c;
    int a_rows() const { return p.trans_a ? p.k : p.m; }
    int b_rows() const { return p.trans_b ? p.n : p.k; }
    void run_fastae(GemmWorkspace& ws) const {
        gemm(p.trans_a, p.trans_b, p.m, p.n, p.k, 1.0f, a, a_rows(), b, b_rows(), 0.0f, c, p.m, ws);
    }
    void run_eigen() const {
        using ConstMap = Eigen::Map<const Matrix>;
        const ConstMap am(a, a_rows(), p.trans_a ? p.m : p.k);
        const ConstMap bm(b, b_rows(), p.trans_b ? p.k : p.n);
        Eigen::Map<Matrix> cm(c, p.m, p.n);
        if (!p.trans_a && !p.trans_b) cm.noalias() = am * bm;
        if (!p.trans_a && p.trans_b) cm.noalias() = am * bm.transpose();
        if (p.trans_a && !p.trans_b) cm.noalias() = am.transpose() * bm;
        if (p.trans_a && p.trans_b) cm.noalias() = am.transpose() * bm.transpose();
    }
    double flops() const { return 2.0 * p.m * p.n * p.k; }
};

// Products timed as one unit, on buffers the sequence owns.
struct Sequence {
    std::string name;
    std::vector<std::unique_ptr<Matrix>> buffers;
    std::vector<Call> calls;
    float* buffer(int rows, int cols) {
        buffers.push_back(std::make_unique<Matrix>(Matrix::Random(rows, cols)));
        return buffers.back()->data();
    }
    double flops() const {
        double f = 0;
        for (const auto& c : calls) f += c.flops();
        return f;
    }
    void run_fastae(GemmWorkspace& ws) {
        for (const auto& c : calls) c.run_fastae(ws);
    }
    void run_eigen() {
        for (const auto& c : calls) c.run_eigen();
    }
};

struct Result {
    double fastae_median, eigen_median, ratio_median, fastae_best, eigen_best;
};

// Times fastae and Eigen alternately (which goes first alternates too), `samples` pairs of
// samples of `reps` calls each, and returns the median GFLOP/s of each, the median of the
// pairs' ratios (a pair shares the machine's load of the moment), and the best of each.
Result compare(Sequence& s, GemmWorkspace& ws, int samples, double ms_per_sample) {
    // Warm up both and size the repetition count to ~ms_per_sample for the slower one (one
    // run per sample when ms_per_sample is 0).
    s.run_fastae(ws);
    s.run_eigen();
    auto t0 = Clock::now();
    s.run_eigen();
    const double once = std::max(seconds_since(t0), 1e-7);
    const int reps = std::max(1, int(ms_per_sample * 1e-3 / once));
    std::vector<double> mine, theirs;
    for (int i = 0; i < samples; ++i) {
        for (int turn = 0; turn < 2; ++turn) {
            const bool fastae_now = (turn == 0) == (i % 2 == 0);
            t0 = Clock::now();
            for (int r = 0; r < reps; ++r) {
                if (fastae_now) {
                    s.run_fastae(ws);
                } else {
                    s.run_eigen();
                }
            }
            const double gflops = s.flops() * reps / seconds_since(t0) * 1e-9;
            (fastae_now ? mine : theirs).push_back(gflops);
        }
    }
    std::vector<double> ratios;
    for (std::size_t i = 0; i < mine.size(); ++i) ratios.push_back(mine[i] / theirs[i]);
    return {median(mine), median(theirs), median(ratios), *std::max_element(mine.begin(), mine.end()),
            *std::max_element(theirs.begin(), theirs.end())};
}

// One product on its own buffers, timed alone: repeated, it finds its operands in cache.
Sequence single(const Product& p) {
    Sequence s{p.name, {}, {}};
    const float* a = s.buffer(p.trans_a ? p.k : p.m, p.trans_a ? p.m : p.k);
    const float* b = s.buffer(p.trans_b ? p.n : p.k, p.trans_b ? p.k : p.n);
    s.calls.push_back({p, a, b, s.buffer(p.m, p.n)});
    return s;
}

// The products of one training step of a dense network with these widths at batch b, on
// buffers shared as in network.cpp (input X, weights W_l, activations A_l that turn into dZ_l
// in place, gradients dW_l, one dA buffer), so that each product meets the cache state the
// others leave: forward Z_l+1 = W_l A_l (NN), backward dW_l = dZ_l+1 A_l^T (NT) and
// dA_l = W_l^T dZ_l+1 (TN, not for the input). Also lists the products, named.
Sequence step(const std::vector<int>& w, int b, std::vector<Product>* products) {
    Sequence s{"whole step: the products in sequence", {}, {}};
    const int layers = int(w.size()) - 1;
    const int widest = *std::max_element(w.begin(), w.end());
    std::vector<float*> act(std::size_t(layers) + 1, nullptr);
    std::vector<float*> weight(std::size_t(layers), nullptr), grad(std::size_t(layers), nullptr);
    act[0] = s.buffer(w[0], b);  // X
    for (int l = 0; l < layers; ++l) {
        weight[std::size_t(l)] = s.buffer(w[l + 1], w[l]);
        grad[std::size_t(l)] = s.buffer(w[l + 1], w[l]);
        act[std::size_t(l) + 1] = s.buffer(w[l + 1], b);
    }
    float* delta = s.buffer(widest, b);
    for (int l = 0; l < layers; ++l) {
        const Product p{"fwd  Z" + std::to_string(l + 1) + " = W" + std::to_string(l + 1) + " A" +
                            std::to_string(l),
                        false, false, w[l + 1], b, w[l]};
        s.calls.push_back({p, weight[std::size_t(l)], act[std::size_t(l)], act[std::size_t(l) + 1]});
    }
    for (int l = layers - 1; l >= 0; --l) {
        const std::string i = std::to_string(l + 1);
        const Product pw{"bwd dW" + i + " = dZ" + i + " A" + std::to_string(l) + "^T", false, true,
                         w[l + 1], w[l], b};
        s.calls.push_back({pw, act[std::size_t(l) + 1], act[std::size_t(l)], grad[std::size_t(l)]});
        if (l > 0) {
            const Product pa{"bwd dA" + std::to_string(l) + " = W" + i + "^T dZ" + i, true, false,
                             w[l], b, w[l + 1]};
            s.calls.push_back({pa, weight[std::size_t(l)], act[std::size_t(l) + 1], delta});
        }
    }
    for (const auto& c : s.calls) products->push_back(c.p);
    s.name = "whole step: the " + std::to_string(s.calls.size()) + " in sequence";
    return s;
}

}  // namespace

int main(int argc, char** argv) {
    const int samples = argc > 1 ? std::max(1, std::atoi(argv[1])) : 201;
    const double ms = argc > 2 ? std::max(0.0, std::atof(argv[2])) : 0.0;
    Eigen::setNbThreads(1);
    std::srand(1);

    const double mhz = cpuinfo_mhz();
    const double peak = fastae::measured_fma_peak_gflops();
    std::printf("gemm kernel: %s; Eigen %d.%d.%d; 1 thread\n", fastae::detail::gemm_kernel_name(),
                EIGEN_WORLD_VERSION, EIGEN_MAJOR_VERSION, EIGEN_MINOR_VERSION);
    const double ghz = measured_clock_ghz();
    std::printf("cpu MHz (/proc/cpuinfo): %.0f; measured register-only %d-lane FMA peak: %.1f GFLOP/s\n", mhz,
                kPeakLanes, peak);
    if (ghz > 0 && kPeakLanes > 0) {
        std::printf("measured clock %.2f GHz (dependent adds): %.1f flop/cycle, %.2f %d-lane FMAs a cycle\n", ghz,
                    peak / ghz, peak / ghz / (2.0 * kPeakLanes), kPeakLanes);
    }
    std::printf("%d alternating sample pairs of %s; load average at start: %s\n", samples,
                ms > 0 ? ("~" + std::to_string(ms) + " ms").c_str() : "one run each",
                loadavg().c_str());

    std::vector<std::pair<std::string, std::vector<Sequence>>> groups;
    auto add_group = [&](const std::string& title, const std::vector<int>& widths, int batch) {
        std::vector<Product> products;
        Sequence whole = step(widths, batch, &products);
        std::vector<Sequence> seqs;
        for (const auto& p : products) seqs.push_back(single(p));
        seqs.push_back(std::move(whole));
        groups.emplace_back(title, std::move(seqs));
    };
    add_group("784-64-784, batch 256: tutorial", {784, 64, 784}, 256);
    add_group("784-256-64-256-784, batch 256: deep", {784, 256, 64, 256, 784}, 256);
    add_group("784-64-784, shard of 128 (2 threads)", {784, 64, 784}, 128);
    add_group("784-256-64-256-784, shard of 16 (16 threads)", {784, 256, 64, 256, 784}, 16);

    GemmWorkspace ws(1024, 1024, 1024);
    std::printf("%-38s %-2s %4s %4s %4s | %7s %7s %6s %6s | %7s %7s\n", "product", "op", "m", "n",
                "k", "fastae", "Eigen", "ratio", "%peak", "fastae", "Eigen");
    std::printf("%-38s %-2s %4s %4s %4s | %30s | %15s\n", "", "", "", "", "",
                "medians, GFLOP/s               ", "best, GFLOP/s  ");
    for (auto& [title, seqs] : groups) {
        std::printf("-- %s\n", title.c_str());
        for (auto& s : seqs) {
            const Result r = compare(s, ws, samples, ms);
            const bool one = s.calls.size() == 1;
            const Product& p = s.calls.front().p;
            std::string op = one ? std::string(p.trans_a ? "T" : "N") + (p.trans_b ? "T" : "N") : "";
            std::printf("%-38s %-2s %4s %4s %4s | %7.1f %7.1f %5.2fx %5.0f%% | %7.1f %7.1f\n",
                        s.name.c_str(), op.c_str(), one ? std::to_string(p.m).c_str() : "",
                        one ? std::to_string(p.n).c_str() : "", one ? std::to_string(p.k).c_str() : "",
                        r.fastae_median, r.eigen_median, r.ratio_median,
                        peak > 0 ? 100.0 * r.fastae_median / peak : 0.0, r.fastae_best, r.eigen_best);
            std::fflush(stdout);
        }
    }
    std::printf("\nload average at end: %s\n", loadavg().c_str());
    std::printf("ratio = median over the sample pairs of fastae / Eigen; %%peak = fastae median / "
                "measured FMA peak; best = fastest sample.\n");
    return 0;
}
