// optimizer_bench.cpp -- one optimizer update (csrc/src/optimizer.h) as training runs it: begin_step,
// then apply over the whole parameter buffer with the previous values saved and the new ones
// checked, for each rule, over the parameter counts of the tutorial model (784-64-784) and the deep
// one (784-256-64-256-784). The rules and sizes run interleaved, each after an untimed read of
// 16 MB that leaves every case the same cache state (its buffers out of L1/L2, and no dirty lines
// of the case before it still to write back); prints the median of each, in microseconds. Build with -DFASTAE_BUILD_BENCHMARKS=ON; run
// build/.../optimizer_bench [reps (default 301)] [only the cases whose name contains this].
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "optimizer.h"

using namespace fastae;
using namespace fastae::detail;
using Clock = std::chrono::steady_clock;

namespace {

struct Case {
    std::string name;
    OptimizerConfig config;
    std::size_t n;
    std::vector<float> p, g, previous;
    std::vector<double> times;
};

std::size_t dense_params(const std::vector<std::size_t>& widths) {
    std::size_t n = 0;
    for (std::size_t k = 0; k + 1 < widths.size(); ++k) n += widths[k] * widths[k + 1] + widths[k + 1];
    return n;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    const int reps = argc > 1 ? std::atoi(argv[1]) : 301;
    const std::string only = argc > 2 ? argv[2] : "";
    const std::size_t tutorial = dense_params({784, 64, 784}), deep = dense_params({784, 256, 64, 256, 784});
    std::vector<Case> cases;
    for (OptimizerKind kind : {OptimizerKind::adam, OptimizerKind::adamw, OptimizerKind::sgd, OptimizerKind::rmsprop}) {
        for (const auto& [model, n] : {std::make_pair("tutorial", tutorial), std::make_pair("deep", deep)}) {
            OptimizerConfig c;
            c.kind = kind;
            c.learning_rate = 1e-4;
            c.momentum = 0.9;  // sgd
            const std::string name = std::string(name_of(kind)) + " " + model;
            if (name.find(only) != std::string::npos) cases.push_back({name, c, n, {}, {}, {}, {}});
        }
    }
    std::mt19937 gen(1);
    std::normal_distribution<float> normal(0.0f, 0.05f);
    for (Case& c : cases) {
        c.p.resize(c.n);
        c.g.resize(c.n);
        c.previous.resize(c.n);
        for (std::size_t i = 0; i < c.n; ++i) c.p[i] = normal(gen), c.g[i] = normal(gen);
    }
    std::vector<Optimizer> optimizers;
    for (const Case& c : cases) optimizers.emplace_back(c.config, c.n);
    bool finite = true;
    std::vector<float> other(std::size_t(4) << 20, 1.0f);  // the rest of a step's memory traffic
    float sink = 0.0f;
    for (int r = 0; r < reps; ++r) {
        for (std::size_t k = 0; k < cases.size(); ++k) {
            Case& c = cases[k];
            for (std::size_t i = 0; i < other.size(); i += 16) sink += other[i];
            const auto t = Clock::now();
            optimizers[k].begin_step();
            finite = optimizers[k].apply(c.p.data(), c.g.data(), 0, c.n, c.previous.data()) && finite;
            c.times.push_back(std::chrono::duration<double>(Clock::now() - t).count());
        }
    }
    std::printf("optimizer update with previous values and finite check, medians of %d interleaved runs%s:\n", reps,
                finite && sink > 0.0f ? "" : " (NON-FINITE RESULT)");
    for (const Case& c : cases) {
        std::printf("  %-18s %7zu params: %8.1f us\n", c.name.c_str(), c.n, median(c.times) * 1e6);
    }
}
