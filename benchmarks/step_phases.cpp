// step_phases.cpp -- a training step's phases timed apart, on T threads against one, in one run:
// compute_gradients (the shards' forward and backward), reduce (the shards' sum, when asked) and
// apply (the sum, unless reduce ran, and the update), through the public TrainingSession calls.
// Three sessions step side by side: 1 thread, T threads as a team, and the same T shards one
// after another on one core (ThreadMode::solo: the work of T shards, benchmarks/scaling_model.py).
// They run in turns of 24 steps (the first 2 of each turn uncounted) over the same batches, so
// every mode meets the machine's slow and fast minutes alike; the medians of each phase follow.
// On a shared machine whose speed moves by 30% within minutes, this separates what the code costs
// on T cores (the team's phase against the solo's / T) from the moment's memory and neighbours
// (all three modes moving together).
//
//   step_phases [--deep] [--threads T] [--turns N] [--batch B] [--data x.f32] [--reduce] [--no-team]
//
// --data as epoch_bench's (60000 x 784 float32, raw; without it, synthetic data of MNIST's
// sparsity). The model and optimizer as epoch_bench's. --reduce: reduce() between the two calls
// (a process group's order); without it apply sums the buffers itself, as Model::fit does.
// --no-team: the 1-thread and solo sessions alone (for T past the cores at hand: the work of T
// shards over one shard's, what benchmarks/scaling_model.py's form in turns takes).
#include <fastae/model.h>
#include <fastae/training.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "reference_workload.h"

namespace {

using Clock = std::chrono::steady_clock;

double micros_since(Clock::time_point t) { return std::chrono::duration<double, std::micro>(Clock::now() - t).count(); }

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0.0 : v[v.size() / 2];
}

struct Mode {
    const char* name;
    int threads;
    fastae::ThreadMode thread_mode;
    std::unique_ptr<fastae::Model> model;
    std::unique_ptr<fastae::TrainingSession> session;
    std::vector<double> gradients, reduce, apply, step;
};

}  // namespace

int main(int argc, char** argv) {
    bool deep = false, separate_reduce = false, no_team = false;
    int threads = 2, turns = 40, batch = 256;
    std::string data_path;
    bench::Flags flags;
    flags.add("--deep", &deep);
    flags.add("--reduce", &separate_reduce);
    flags.add("--threads", &threads);
    flags.add("--turns", &turns);
    flags.add("--batch", &batch);
    flags.add("--data", &data_path);
    flags.add("--no-team", &no_team);
    if (!flags.parse(argc, argv, "[--deep] [--threads T] [--turns N] [--batch B] [--data x.f32] [--reduce] [--no-team]")) {
        return 2;
    }
    if (threads < 2 || turns < 1 || batch < threads) {
        std::fprintf(stderr, "need --threads >= 2, --turns >= 1 and --batch >= threads\n");
        return 2;
    }
    const std::size_t n = bench::kSamples;
    std::vector<float> x;
    if (!bench::reference_inputs(data_path, x)) return 1;
    const fastae::NetworkConfig config = bench::reference_model(deep);
    fastae::TrainingData data;
    data.n = n;
    data.x = x.data();
    Mode modes[3] = {{"1 thread", 1, fastae::ThreadMode::solo, {}, {}, {}, {}, {}, {}},
                     {"team", threads, fastae::ThreadMode::team, {}, {}, {}, {}, {}, {}},
                     {"solo", threads, fastae::ThreadMode::solo, {}, {}, {}, {}, {}, {}}};
    std::vector<Mode*> active = {&modes[0], &modes[1], &modes[2]};
    if (no_team) active.erase(active.begin() + 1);
    try {
        for (Mode* mode : active) {
            Mode& m = *mode;
            m.model = std::make_unique<fastae::Model>(config);
            m.model->init_weights(0);
            fastae::TrainOptions options;
            options.n_threads = m.threads;
            options.batch_size = batch;
            options.thread_mode = m.thread_mode;
            m.session = std::make_unique<fastae::TrainingSession>(*m.model, data, fastae::OptimizerConfig{}, options);
            m.session->set_check_data(false);
        }
        std::vector<std::size_t> order(n);
        for (std::size_t i = 0; i < n; ++i) order[i] = i;
        std::shuffle(order.begin(), order.end(), std::mt19937(1));
        constexpr int kTurn = 24, kUncounted = 2;
        const std::size_t batches = n / std::size_t(batch);
        std::size_t next = 0;
        for (int t = 0; t < turns; ++t) {
            const std::size_t first = next;
            for (Mode* mode : active) {
                Mode& m = *mode;
                next = first;
                for (int s = 0; s < kTurn; ++s, ++next) {
                    fastae::Batch b;
                    b.rows = order.data() + (next % batches) * std::size_t(batch);
                    b.size = std::size_t(batch);
                    const auto t0 = Clock::now();
                    const double loss = m.session->compute_gradients(b);
                    const double g = micros_since(t0);
                    const auto t1 = Clock::now();
                    if (separate_reduce) m.session->reduce();
                    const double r = micros_since(t1);
                    const auto t2 = Clock::now();
                    m.session->apply(loss);
                    const double a = micros_since(t2);
                    if (s < kUncounted) continue;
                    m.gradients.push_back(g);
                    m.reduce.push_back(r);
                    m.apply.push_back(a);
                    m.step.push_back(g + r + a);
                }
            }
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "training failed: %s\n", e.what());
        return 1;
    }
    std::printf("%s, batch %d, %s, %zu steps a mode; medians, us:\n", bench::model_name(deep), batch,
                data_path.empty() ? "synthetic data" : data_path.c_str(), modes[0].step.size());
    std::printf("  %-22s %10s %10s %10s %10s\n", "mode", "gradients", separate_reduce ? "reduce" : "-", "apply", "step");
    for (const Mode* mode : active) {
        const Mode& m = *mode;
        char name[64];
        std::snprintf(name, sizeof name, "%s%s", m.name,
                      m.threads > 1 ? (std::string(", ") + std::to_string(m.threads) + " shards").c_str() : "");
        std::printf("  %-22s %10.1f %10.1f %10.1f %10.1f\n", name, median(m.gradients), median(m.reduce),
                    median(m.apply), median(m.step));
    }
    const double one = median(modes[0].step), solo = median(modes[2].step);
    if (no_team) {
        std::printf("  the solo's work over one shard's: %.3f\n", solo / one);
        return 0;
    }
    const double team = median(modes[1].step), gradients_per_core = median(modes[2].gradients) / threads;
    std::printf("  %d threads over 1: %.3fx; the solo's work over one shard's: %.3f; the team's step over the solo's / %d: "
                "%.3f (gradients %.3f)\n",
                threads, one / team, solo / one, threads, team / (solo / threads),
                median(modes[1].gradients) / gradients_per_core);
    return 0;
}
