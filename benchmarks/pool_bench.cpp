// pool_bench.cpp -- what one fork/join of the training step's thread team costs
// (csrc/src/worker_pool.h): runs of T items on a pool of T members, each item a fixed spin of
// about `work` ns (default 2000), timed over many runs back to back, at T = 1,
// 2, 4, ... up to the CPUs given. A step makes three or four such runs (shards, the deferred
// products and sum, the update), so this is the part of benchmarks/scaling_model.py's sync term
// that grows with T, which the model holds at its 2-thread value: on a machine with the cores it
// says how far that holds.
//
//   pool_bench [max threads (default: the hardware's)] [work ns per item (default 2000)]
//
// With no work an item the caller tends to run every item before a worker has seen the run:
// give the items some work.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "worker_pool.h"

namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

// Spins for about ns nanoseconds (a clock read every 16 iterations).
void spin_for(long ns) {
    if (ns <= 0) return;
    const auto end = Clock::now() + std::chrono::nanoseconds(ns);
    volatile int sink = 0;
    for (int i = 0;; ++i) {
        sink = sink + 1;
        if (i % 16 == 0 && Clock::now() >= end) return;
    }
}

// Median over `rounds` of the mean microseconds per run of `runs` runs back to back.
double us_per_run(fastae::detail::WorkerPool& pool, int items, long work_ns, int runs, int rounds) {
    auto task = [work_ns](int, int) { spin_for(work_ns); };
    for (int r = 0; r < runs / 4; ++r) pool.run(task, items);  // wake the team, warm the lines
    std::vector<double> means;
    for (int round = 0; round < rounds; ++round) {
        const auto t0 = Clock::now();
        for (int r = 0; r < runs; ++r) pool.run(task, items);
        means.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / runs);
    }
    return median(means);
}

}  // namespace

int main(int argc, char** argv) {
    const int hw = int(std::max(1u, std::thread::hardware_concurrency()));
    const int max_threads = argc > 1 ? std::max(1, std::atoi(argv[1])) : hw;
    const long work_ns = argc > 2 ? std::max(0L, std::atol(argv[2])) : 2000L;
    std::vector<int> counts;
    for (int t = 1; t < max_threads; t *= 2) counts.push_back(t);
    counts.push_back(max_threads);
    std::printf("fork/join of T items on T members, %ld ns of work an item; %d hardware threads; medians of 7 "
                "rounds of 2000 runs\n",
                work_ns, hw);
    std::printf("%8s %12s %16s\n", "threads", "us per run", "over the work");
    for (int t : counts) {
        fastae::detail::WorkerPool pool(t);
        const double us = us_per_run(pool, t, work_ns, 2000, 7);
        // The work's own time: its items spread over the cores there are (t on t, or t on hw).
        const int waves = (t + std::min(t, hw) - 1) / std::min(t, hw);
        std::printf("%8d %12.3f %16.3f%s\n", t, us, us - double(waves) * double(work_ns) * 1e-3,
                    t > hw ? "  (more threads than hardware threads)" : "");
    }
    return 0;
}
