// test_process_group.cpp -- data-parallel training (TrainOptions::processes) without MPI: R threads
// play R processes, each fitting its block of rows, with a `sum` that adds the R buffers in rank
// order (a barrier). Every process ends with the same weights, equal to one process's fit on all
// rows up to float summation order (dropout and the sparsity KL included); a process whose data
// is bad throws its own error and the others PeerFailed, with no one left waiting.
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "check.h"
#include "fastae/fastae.h"
#include "process_group.h"
#include "test_data.h"

using namespace fastae;

namespace {

// An allreduce among threads: the last to arrive sums every rank's buffers in rank order and
// writes the sums back to all of them.
class ThreadGroup {
public:
    explicit ThreadGroup(int size) : size_(size), values_(std::size_t(size)), figures_(std::size_t(size)) {}
    void sum(int rank, float* v, std::size_t n, double* f, std::size_t m) {
        std::unique_lock<std::mutex> lock(mutex_);
        values_[std::size_t(rank)] = v;
        figures_[std::size_t(rank)] = f;
        const long generation = generation_;
        if (++arrived_ < size_) {
            done_.wait(lock, [&] { return generation_ != generation; });
            return;
        }
        std::vector<float> vs(n, 0.0f);
        std::vector<double> fs(m, 0.0);
        for (int r = 0; r < size_; ++r) {
            for (std::size_t i = 0; i < n; ++i) vs[i] += values_[std::size_t(r)][i];
            for (std::size_t i = 0; i < m; ++i) fs[i] += figures_[std::size_t(r)][i];
        }
        for (int r = 0; r < size_; ++r) {
            if (n) std::memcpy(values_[std::size_t(r)], vs.data(), n * sizeof(float));
            if (m) std::memcpy(figures_[std::size_t(r)], fs.data(), m * sizeof(double));
        }
        arrived_ = 0;
        ++generation_;
        done_.notify_all();
    }

private:
    int size_, arrived_ = 0;
    long generation_ = 0;
    std::vector<float*> values_;
    std::vector<double*> figures_;
    std::mutex mutex_;
    std::condition_variable done_;
};

// 9 -> 8 (relu, dropout 0.25) -> 3 (sigmoid, sparsity KL) -> 9 (sigmoid), bce.
NetworkSpec spec() {
    NetworkSpec s;
    s.n_inputs = 9;
    s.layers.resize(3);
    s.layers[0].units = 8;
    s.layers[0].dropout = 0.25;
    s.layers[1].units = 3;
    s.layers[1].activation = activation_spec(Activation::sigmoid);
    s.layers[1].sparsity_target = 0.2;
    s.layers[1].sparsity_weight = 0.3;
    s.layers[2].units = 9;
    s.layers[2].activation = activation_spec(Activation::sigmoid);
    s.head.loss = Loss::bce;
    return s;
}

TrainOptions options() {
    TrainOptions t;
    t.epochs = 2;
    t.batch_size = 16;
    t.seed = 5;
    t.validation_split = 0.2;
    return t;
}

struct Outcome {
    std::vector<float> params;
    std::vector<EpochReport> history;
    std::string error;  // "peer" for PeerFailed, else the message
};

// Fits on `size` threads, each with its block of x (numpy.array_split's cut).
std::vector<Outcome> fit_in_group(const std::vector<float>& x, std::size_t n, int size,
                                  const OptimizerConfig& opt = OptimizerConfig()) {
    ThreadGroup group(size);
    std::vector<Outcome> out;
    out.resize(std::size_t(size));
    std::vector<std::thread> threads;
    for (int r = 0; r < size; ++r) {
        threads.emplace_back([&, r] {
            const std::size_t base = n / std::size_t(size), extra = n % std::size_t(size);
            const std::size_t begin = std::size_t(r) * base + std::min<std::size_t>(std::size_t(r), extra);
            const std::size_t rows = base + (std::size_t(r) < extra ? 1 : 0);
            Model m(spec());
            m.init_weights(3);
            TrainOptions t = options();
            t.processes.global_rows = n;
            t.processes.row_offset = begin;
            t.processes.lead = r == 0;
            t.processes.sum = [&group, r](float* v, std::size_t k, double* f, std::size_t j) {
                group.sum(r, v, k, f, j);
            };
            TrainingData d;
            d.n = rows;
            d.x = x.data() + begin * 9;
            try {
                m.fit(d, nullptr, opt, t, &out[std::size_t(r)].history);
            } catch (const PeerFailed&) {
                out[std::size_t(r)].error = "peer";
            } catch (const std::exception& e) {
                out[std::size_t(r)].error = e.what();
            }
            out[std::size_t(r)].params = fastae_test::params_of(m);
        });
    }
    for (auto& t : threads) t.join();
    return out;
}

}  // namespace

// SGD's update is linear in the gradient: the weights differ by summation order alone. Adam divides
// by the gradient's running RMS, which magnifies the relative rounding of near-zero gradients.
TEST(group_trains_as_one_process) {
    const std::size_t n = 101;  // uneven blocks on 2 and 3 processes, a partial last batch
    const std::vector<float> x = fastae_test::uniform_data(n, 9, 21);
    OptimizerConfig sgd;
    sgd.kind = OptimizerKind::sgd;
    sgd.learning_rate = 0.1;
    for (const auto& [opt, tolerance] : {std::pair{sgd, 1e-6}, std::pair{OptimizerConfig(), 1e-4}}) {
        Model single(spec());
        single.init_weights(3);
        TrainingData d;
        d.n = n;
        d.x = x.data();
        std::vector<EpochReport> history;
        single.fit(d, nullptr, opt, options(), &history);
        const std::vector<float> expected = fastae_test::params_of(single);
        for (int size : {2, 3}) {
            const std::vector<Outcome> out = fit_in_group(x, n, size, opt);
            for (const Outcome& o : out) {
                CHECK(o.error.empty());
                CHECK(o.params == out[0].params);  // every process the same weights, bit for bit
            }
            double largest = 0.0;
            const double gap = fastae_test::max_abs_diff(out[0].params, expected, &largest);
            std::printf("%s, %d processes: max |weight - one process's| = %g\n", name_of(opt.kind), size, gap);
            CHECK(gap < tolerance);
            Model initial(spec());
            initial.init_weights(3);
            CHECK(fastae_test::max_abs_diff(out[0].params, fastae_test::params_of(initial), &largest) > 1e-3);
            CHECK(out[0].history.size() == history.size());
            for (std::size_t e = 0; e < history.size(); ++e) {
                CHECK_NEAR(out[0].history[e].loss, history[e].loss, 1e-5);
                CHECK(out[0].history[e].has_val_loss && history[e].has_val_loss);
                CHECK_NEAR(out[0].history[e].val_loss, history[e].val_loss, 1e-5);
            }
        }
    }
}

TEST(a_failing_process_stops_the_group) {
    const std::size_t n = 60;
    std::vector<float> x = fastae_test::uniform_data(n, 9, 4);
    x[(20 + 7) * 9 + 2] = std::numeric_limits<float>::quiet_NaN();  // row 7 of process 1 (rows 20-39)
    const std::vector<Outcome> out = fit_in_group(x, n, 3);
    CHECK(out[0].error == "peer");
    CHECK(out[2].error == "peer");
    std::printf("process 1: %s\n", out[1].error.c_str());
    CHECK(out[1].error.find("non-finite") != std::string::npos);
}

TEST(local_part_keeps_this_process_rows_in_batch_order) {
    ProcessGroup g;
    g.global_rows = 10;
    g.row_offset = 4;
    const std::size_t rows[] = {9, 4, 2, 6, 7, 0};
    Batch global;
    global.rows = rows;
    global.size = 6;
    std::size_t mine[6];
    const Batch b = detail::local_part(global, g, 3, mine);  // holds rows 4, 5, 6
    CHECK(b.size == 2 && b.global_size == 6);
    CHECK(mine[0] == 0 && mine[1] == 2);
    g.sum = [](float*, std::size_t, double*, std::size_t) {};
    detail::check_group(g, 6);                                        // rows 4..9 of 10
    CHECK_THROWS(detail::check_group(g, 7), std::invalid_argument);  // rows 4..10: past the end
}
