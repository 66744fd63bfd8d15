// epoch_bench.cpp -- the engine's epoch time on the reference workload, from C++ alone: no
// Python, no peer; for comparing two builds of fastae (run the two binaries alternately and
// compare medians; the machines are shared and noisy).
//
//   epoch_bench [--deep] [--threads T] [--solo] [--epochs E] [--batch B] [--data x.f32] [--encode C]
//
// --data: 60000 x 784 float32 in [0, 1], raw, row-major (MNIST: python -c "import numpy as np;
// d = np.load('../shared/data/mnist.npz'); (d['x_train'].reshape(-1, 784) / np.float32(255))
// .astype(np.float32).tofile('x.f32')"); without it, synthetic data of the same shape and
// sparsity (80% zeros). The model is 784-64-784 (--deep: 784-256-64-256-784), relu and sigmoid,
// BCE, Adam lr 1e-3, batch 256 (or B), shuffled, weights from seed 0. Prints each epoch's engine time
// and loss, then the median. --solo: the T shards of each step run one after another on the
// calling thread (TrainOptions::thread_mode), so the epoch takes what T shards cost in all on
// one core (benchmarks/scaling_model.py). --encode C: then C calls encoding the first 10000 samples
// (T threads; a copy of them, as a caller's array) and the median of their times.
#include <fastae/model.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "reference_workload.h"

int main(int argc, char** argv) {
    bool deep = false, solo = false;
    int threads = 1, epochs = 3, batch = 256, encode_calls = 0;
    std::string data_path;
    bench::Flags flags;
    flags.add("--deep", &deep);
    flags.add("--solo", &solo);
    flags.add("--threads", &threads);
    flags.add("--epochs", &epochs);
    flags.add("--batch", &batch);
    flags.add("--encode", &encode_calls);
    flags.add("--data", &data_path);
    if (!flags.parse(argc, argv, "[--deep] [--threads T] [--solo] [--epochs E] [--batch B] [--data x.f32] [--encode C]")) {
        return 2;
    }
    const std::size_t n = bench::kSamples, d = bench::kFeatures;
    std::vector<float> x;
    if (!bench::reference_inputs(data_path, x)) return 1;
    const fastae::NetworkConfig config = bench::reference_model(deep);
    fastae::Model model(config);
    model.init_weights(0);
    fastae::TrainOptions options;
    options.epochs = epochs;
    options.n_threads = threads;
    options.batch_size = batch;
    if (solo) options.thread_mode = fastae::ThreadMode::solo;
    std::vector<fastae::EpochReport> history;
    try {
        model.fit(n, x.data(), nullptr, 0, nullptr, nullptr, fastae::OptimizerConfig{}, options, &history);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "fit failed: %s\n", e.what());
        return 1;
    }
    std::vector<double> seconds;
    for (const auto& r : history) {
        std::printf("epoch %d  loss %.5f  %.4f s\n", r.epoch, r.loss, r.seconds);
        seconds.push_back(r.seconds);
    }
    std::sort(seconds.begin(), seconds.end());
    std::printf("%s, %d thread(s)%s, batch %d, %s: median %.4f s/epoch\n", bench::model_name(deep),
                threads, solo ? " solo" : "", batch, data_path.empty() ? "synthetic data" : data_path.c_str(),
                seconds[seconds.size() / 2]);
    if (encode_calls > 0) {
        const std::size_t m = 10000;
        const std::vector<float> images(x.begin(), x.begin() + std::ptrdiff_t(m * d));
        std::vector<float> codes(m * std::size_t(model.code_size()));
        std::vector<double> ms;
        for (int c = 0; c < encode_calls; ++c) {
            const auto t0 = std::chrono::steady_clock::now();
            model.encode(m, images.data(), codes.data(), threads);
            ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        }
        std::sort(ms.begin(), ms.end());
        std::printf("encode %zu samples, %d thread(s): median %.3f ms a call (%.3f-%.3f), %d calls\n", m, threads,
                    ms[ms.size() / 2], ms.front(), ms.back(), encode_calls);
    }
}
