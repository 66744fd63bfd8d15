// test_session_threads.cpp -- a training step's shards and threads (training.cpp,
// training_slices.cpp): the shards share each step's packed weights, the thread modes give the
// same bits, the shards' gradients are summed in shard order (a deferred first-layer dW
// included), and their buffers take memory only where the shards write (zero_pages.h).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <utility>
#include <vector>

#include "check.h"
#include "fastae/fastae.h"
#include "fastae/training.h"
#include "gemm.h"
#include "network.h"
#include "rng.h"
#include "test_data.h"
#include "zero_pages.h"

using namespace fastae;
using fastae_test::gradient_of;
using fastae_test::make_data;
using fastae_test::params_of;
using fastae_test::resident_bytes;

// The shards of a step share each layer's packed W (network.h: SharedWeights), packed anew every
// step. Training with 1, 2 and 3 threads then follows the same path up to the order of the
// gradient sums (a few units of 2^-24); weights packed one step late would move it by the
// learning rate. W of 300 x 140 and 140 x 300 spans two of gemm's cache blocks of A in m and in
// k; a tied decoder layer reads W transposed.
TEST(shards_share_each_steps_weights) {
    const int d = 300;
    const std::vector<float> x = make_data(240, d, 31);
    for (bool tied : {false, true}) {
        NetworkSpec spec;
        spec.n_inputs = d;
        spec.layers.resize(3);
        spec.layers[0].units = 140;
        spec.layers[1].units = 40;
        spec.layers[2].units = d;
        spec.layers[2].activation = activation_spec(Activation::sigmoid);
        spec.head.loss = Loss::bce;
        if (tied) {
            spec.layers.resize(4);
            spec.layers[2].units = 140;
            spec.layers[2].activation = activation_spec(Activation::relu);
            spec.layers[2].tied_to = 1;
            spec.layers[3].units = d;
            spec.layers[3].activation = activation_spec(Activation::sigmoid);
            spec.layers[3].tied_to = 0;
        }
        std::vector<std::vector<float>> runs;
        for (int threads : {1, 2, 3}) {
            Model m(spec);
            m.init_weights(5);
            TrainOptions t;
            t.epochs = 2;
            t.batch_size = 60;
            t.n_threads = threads;
            OptimizerConfig opt;
            opt.learning_rate = 1e-2;
            m.fit(240, x.data(), nullptr, 0, nullptr, nullptr, opt, t);
            runs.push_back(params_of(m));
        }
        for (std::size_t r = 1; r < runs.size(); ++r) {
            double worst = 0.0;
            for (std::size_t i = 0; i < runs[0].size(); ++i) worst = std::max(worst, double(std::fabs(runs[r][i] - runs[0][i])));
            CHECK(worst < 1e-4);
            CHECK(worst > 0.0);  // different sums: the runs are not one path replayed
        }
    }
}

// d -> units (relu) -> d (sigmoid), BCE.
static NetworkSpec bce_autoencoder(int d, int units) {
    NetworkSpec spec;
    spec.n_inputs = d;
    spec.layers.resize(2);
    spec.layers[0].units = units;
    spec.layers[1].units = d;
    spec.layers[1].activation = activation_spec(Activation::sigmoid);
    spec.head.loss = Loss::bce;
    return spec;
}

// TrainOptions::thread_mode: the team, the calling thread alone and the measured choice run the
// same shards, so a run gives the same weights in every mode, bit for bit; a different thread
// count (other shards) does not.
TEST(thread_modes_give_the_same_bits) {
    const int d = 120;
    const std::vector<float> x = make_data(200, d, 41);
    const NetworkSpec spec = bce_autoencoder(d, 30);
    auto train = [&](int threads, ThreadMode mode) {
        Model m(spec);
        m.init_weights(9);
        TrainOptions t;
        t.epochs = 3;
        t.batch_size = 50;
        t.n_threads = threads;
        t.thread_mode = mode;
        t.validation_split = 0.2;  // the validation pass runs in the mode too
        m.fit(200, x.data(), nullptr, 0, nullptr, nullptr, OptimizerConfig{}, t);
        return params_of(m);
    };
    const std::vector<float> automatic = train(3, ThreadMode::automatic);
    CHECK(train(3, ThreadMode::team) == automatic);
    CHECK(train(3, ThreadMode::solo) == automatic);
    CHECK(train(2, ThreadMode::solo) != automatic);
    const std::vector<float> nine = train(9, ThreadMode::automatic);  // the sum's deferred dWs
    CHECK(train(9, ThreadMode::team) == nine);
    CHECK(train(9, ThreadMode::solo) == nine);
    CHECK(train(1, ThreadMode::solo) == train(1, ThreadMode::team));
}

// The layers whose dW a step of `threads` shards computes over the whole batch in its sum
// (training_deferred.cpp: choose_deferred): from 4 shards, with gemm's FMA kernels, every layer after the
// first that writes its dW with its own product alone. Their parameter ranges [W begin, W end).
static std::vector<std::pair<std::size_t, std::size_t>> batch_deferred(const NetworkSpec& spec, int threads) {
    std::vector<std::pair<std::size_t, std::size_t>> ranges;
    if (threads < 4 || !detail::gemm_sums_in_k_runs()) return ranges;
    const detail::Network net(spec);
    for (int l = 1; l < net.n_layers(); ++l) {
        const detail::DenseLayer& layer = net.layer(l);
        if (layer.trainable && layer.tied_to < 0 && !layer.tied_by && !layer.gaussian && layer.contractive == 0.0f) {
            ranges.emplace_back(layer.offset, layer.bias_offset());
        }
    }
    return ranges;
}

// A T-thread step's gradient, bit for bit: the T shards' gradients computed alone (1-thread
// sessions on each shard's rows, with global_size the whole batch) added in shard order, as
// ((g0 + g1) + g2) + ..., but for the layers whose dW the sum computes over the whole batch at
// once (batch_deferred), which are a 1-thread step's on the whole batch. 9 threads check the sum's
// deferred dWs (training_deferred.cpp: choose_deferred), every parameter, 3 the buffers' sum:
// - sparse inputs (80% zeros): the first layer's sparse path, whose 100 outputs take the weight
//   gradient by feature (its rows deferred, sparse_input.h: set_defer);
// - dense inputs: the first layer's dense product deferred, shard by shard (deferred_gradient.h);
// - a deeper ReLU network with dropout (the inputs the backward pass overwrites are kept);
// - a tied pair, whose dW no shard defers;
// - a variational autoencoder (its Gaussian code layer not deferred, the decoder's first layer
//   reading the drawn code).
// A batch of 2 rows leaves shards empty.
TEST(shard_gradients_sum_in_shard_order) {
    const int d = 200, n = 60;
    const std::vector<float> dense = make_data(n, d, 17);
    std::vector<float> sparse = dense;
    detail::Rng rng(5);
    for (float& v : sparse) v = rng.uniform() < 0.8 ? 0.0f : v;
    NetworkSpec deep = bce_autoencoder(d, 64);
    deep.layers.insert(deep.layers.begin() + 1, 2, deep.layers[0]);
    deep.layers[1].units = 16;
    deep.layers[0].dropout = 0.25;
    NetworkSpec tied = bce_autoencoder(d, 100);
    tied.layers[1].tied_to = 0;
    NetworkSpec vae = deep;  // 200 -> 64 -> 16 (8 means, 8 log-variances) -> 64 -> 200
    vae.layers[0].dropout = 0.0;
    vae.layers[1].activation = activation_spec(Activation::linear);
    vae.code_layer = 1;
    vae.variational = VariationalSpec{true, 1.0, 0};
    const std::pair<NetworkSpec, const std::vector<float>*> cases[] = {
        {bce_autoencoder(d, 100), &sparse}, {bce_autoencoder(d, 100), &dense}, {deep, &dense}, {deep, &sparse},
        {tied, &dense}, {vae, &dense}};
    for (const auto& [spec, x] : cases) {
        TrainingData data;
        data.n = n;
        data.x = x->data();
        for (const auto& [size, threads] : {std::pair<std::size_t, int>{60, 3}, {60, 9}, {2, 3}, {2, 9}}) {
            TrainOptions t;
            t.batch_size = n;  // the session's shards: 3 or 9 whatever the batch (so 2 rows leave some empty)
            t.n_threads = threads;
            Model whole(spec);
            whole.init_weights(3);
            std::vector<float> summed;
            {
                TrainingSession s(whole, data, OptimizerConfig{}, t);
                Batch b;
                b.size = size;
                for (int step = 0; step < 2; ++step) {  // the second finds the first's sum in the buffers
                    s.compute_gradients(b);
                    s.reduce();
                }
                summed = gradient_of(s);
            }
            auto alone_on = [&](std::size_t first, std::size_t rows) {  // a 1-thread session's gradient
                Model alone(spec);
                alone.init_weights(3);
                TrainOptions one = t;
                one.n_threads = 1;
                TrainingSession s(alone, data, OptimizerConfig{}, one);
                std::vector<float> g(s.n_params(), 0.0f);
                if (rows > 0) {
                    Batch b;
                    b.first = first;
                    b.size = rows;
                    b.global_size = size;
                    s.compute_gradients(b);
                    s.reduce();
                    g = gradient_of(s);
                }
                return g;
            };
            std::vector<float> expected;
            for (int shard = 0; shard < threads; ++shard) {
                const std::size_t c0 = size * std::size_t(shard) / std::size_t(threads);
                const std::size_t c1 = size * std::size_t(shard + 1) / std::size_t(threads);
                const std::vector<float> g = alone_on(c0, c1 - c0);
                if (shard == 0) {
                    expected = g;
                } else {
                    for (std::size_t i = 0; i < g.size(); ++i) expected[i] += g[i];
                }
            }
            const std::vector<float> one_shard = alone_on(0, size);
            for (const auto& [begin, end] : batch_deferred(spec, threads)) {
                std::copy(one_shard.begin() + std::ptrdiff_t(begin), one_shard.begin() + std::ptrdiff_t(end),
                          expected.begin() + std::ptrdiff_t(begin));
            }
            CHECK(summed.size() == expected.size());
            CHECK(std::memcmp(summed.data(), expected.data(), summed.size() * sizeof(float)) == 0);
        }
    }
}

// ZeroPages (zero_pages.h): zeros on creation, written and read like any buffer, moved without
// a copy, page-aligned (AlignedFloats' alignment or more).
TEST(zero_pages_hold_zeros_and_move) {
    detail::ZeroPages none;
    CHECK(none.data() == nullptr && none.size() == 0);
    detail::ZeroPages empty(0);
    CHECK(empty.data() == nullptr && empty.size() == 0);
    const std::size_t n = 300001;  // past a page boundary, not a whole number of pages
    detail::ZeroPages a(n);
    CHECK(a.size() == n);
    CHECK(reinterpret_cast<std::uintptr_t>(a.data()) % 64 == 0);
    CHECK(std::all_of(a.data(), a.data() + n, [](float v) { return v == 0.0f && !std::signbit(v); }));
    a.data()[0] = 1.0f;
    a.data()[n - 1] = -2.0f;
    float* at = a.data();
    detail::ZeroPages b(std::move(a));
    CHECK(a.data() == nullptr && a.size() == 0);
    CHECK(b.data() == at && b.size() == n && b.data()[0] == 1.0f && b.data()[n - 1] == -2.0f);
    detail::ZeroPages c(5);
    c = std::move(b);
    CHECK(c.data() == at && c.size() == n && b.data() == nullptr);
    std::vector<detail::ZeroPages> many;
    for (int i = 0; i < 3; ++i) many.emplace_back(1000);  // moved when the vector grows
    CHECK(many[2].data()[999] == 0.0f);
}


// From 4 shards on, with gemm's FMA kernels, the weight gradients are the sum's
// (training_deferred.cpp), and a shard's gradient buffer takes memory only where the shard
// writes (zero_pages.h): here the biases.
// 16 threads on a dense 500 -> 400 -> 500 network (401,400 parameters, 1.6 MB a buffer), SGD:
// the session, full steps and a step of 3 rows (13 empty shards, zeroed where the sum reads
// them) grow the process by less than 8 buffers' worth (the sum's buffer, the saved weights, the
// batch-wide products' inputs and the workspaces), where the 16 gradient buffers alone took 16.
// The weights are checked against 1 thread's, so the buffers' unwritten parts are not read.
// (Not under AddressSanitizer, whose shadow memory changes the count.)
TEST(shard_gradient_buffers_take_memory_only_where_written) {
    const int d = 500, n = 64;
    const std::vector<float> x = make_data(n, d, 29);  // dense: the first layer's product deferred too
    TrainingData data;
    data.n = n;
    data.x = x.data();
    const NetworkSpec spec = bce_autoencoder(d, 400);
    auto train = [&](int threads, std::size_t* grown) {
        Model model(spec);
        model.init_weights(4);
        TrainOptions t;
        t.batch_size = n;
        t.n_threads = threads;
        t.thread_mode = ThreadMode::team;
        const std::size_t before = resident_bytes();
        {
            OptimizerConfig sgd;
            sgd.kind = OptimizerKind::sgd;
            sgd.learning_rate = 0.1;
            TrainingSession s(model, data, sgd, t);
            for (std::size_t rows : {std::size_t(64), std::size_t(64), std::size_t(3), std::size_t(64)}) {
                Batch b;
                b.size = rows;
                s.apply(s.compute_gradients(b));
            }
            if (grown) *grown = resident_bytes() - std::min(before, resident_bytes());
        }
        return params_of(model);
    };
    std::size_t grown = 0;
    const std::vector<float> many = train(16, &grown);
    const std::vector<float> one = train(1, nullptr);
    double worst = 0.0;
    for (std::size_t i = 0; i < one.size(); ++i) worst = std::max(worst, double(std::fabs(many[i] - one[i])));
    CHECK(worst < 1e-5);  // other shards sum in another order: rounding apart, not a step apart
    if (resident_bytes() > 0 && detail::gemm_sums_in_k_runs()) {  // (Eigen's product defers nothing)
        const std::size_t buffer = one.size() * sizeof(float);
        std::printf("  16 threads: the session and its steps grew the process by %.1f MB (%.2f gradient buffers)\n",
                    double(grown) / 1e6, double(grown) / double(buffer));
        CHECK(grown < 8 * buffer);
    }
}
