// test_training.cpp -- models through the public API: the epoch loop (learning, seed determinism,
// threads, callbacks and interruption, divergence, 8-bit data, no allocation inside the batch
// loop, dropout independent of the thread count), every optimizer and head lowering the loss, and
// the optimizer state of every kind resumed exactly. Argument and data errors:
// test_training_errors.cpp; initializers and network checks: test_network_spec.cpp.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <new>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "check.h"
#include "fastae/fastae.h"
#include "network.h"
#include "test_data.h"

// Every allocation in this program is counted, so a test can see whether a code path allocates.
// (Not inlined: GCC would otherwise see free() meet operator new and warn of a mismatch.)
#if defined(__GNUC__)
#define FASTAE_TEST_NOINLINE __attribute__((noinline))
#else
#define FASTAE_TEST_NOINLINE
#endif
static std::atomic<long> g_allocations{0};
FASTAE_TEST_NOINLINE void* operator new(std::size_t size) {
    ++g_allocations;
    if (void* p = std::malloc(size ? size : 1)) return p;
    throw std::bad_alloc();
}
FASTAE_TEST_NOINLINE void operator delete(void* p) noexcept { std::free(p); }
FASTAE_TEST_NOINLINE void operator delete(void* p, std::size_t) noexcept { std::free(p); }

using namespace fastae;
using fastae_test::make_data;
using fastae_test::params_of;
using fastae_test::small_config;
using fastae_test::training_optimizer;

TEST(training_lowers_the_loss) {
    const int d = 32;
    auto x = make_data(600, d, 1);
    Model m(small_config(d));
    m.init_weights(42);
    const double before = m.loss(600, x.data());
    OptimizerConfig opt;
    opt.learning_rate = 1e-2;
    TrainOptions t;
    t.epochs = 20;
    t.batch_size = 64;
    std::vector<EpochReport> history;
    CHECK(m.fit(600, x.data(), nullptr, 100, x.data(), nullptr, opt, t, &history) == StopReason::completed);
    CHECK(history.size() == 20);
    const double after = m.loss(600, x.data());
    CHECK(after < 0.5 * before + 0.5 * 0.6931);  // well below the start
    CHECK(history.back().loss < history.front().loss);
    CHECK(history.back().has_val_loss);
    CHECK_NEAR(history.back().val_loss, m.loss(100, x.data()), 1e-6);
}

TEST(same_seed_gives_bit_identical_weights) {
    const int d = 24;
    auto x = make_data(300, d, 2);
    auto run = [&](std::uint64_t seed, int threads) {
        Model m(small_config(d));
        m.init_weights(seed);
        TrainOptions t;
        t.epochs = 3;
        t.batch_size = 50;
        t.seed = seed;
        t.n_threads = threads;
        m.fit(300, x.data(), nullptr, 0, nullptr, nullptr, OptimizerConfig{}, t);
        return std::vector<float>(m.params(), m.params() + m.n_params());
    };
    CHECK(run(5, 1) == run(5, 1));
    CHECK(run(5, 2) == run(5, 2));
    CHECK(run(5, 1) != run(6, 1));
    // Two threads split each batch: not bit-identical to one thread, but the same training.
    auto a = run(5, 1), b = run(5, 2);
    for (std::size_t i = 0; i < a.size(); ++i) CHECK_NEAR(a[i], b[i], 1e-4);
}

TEST(one_full_batch_sgd_step_equals_naive_gradient_step) {
    const int d = 10;
    auto x = make_data(40, d, 3);
    NetworkConfig cfg;
    cfg.layer_sizes = {d, 6, d};
    Model m(cfg);
    m.init_weights(9);
    std::vector<double> p(m.params(), m.params() + m.n_params()), xd(x.begin(), x.end()), g(p.size());
    detail::Network net(to_spec(cfg));
    detail::loss_gradient_naive(net, p.data(), 40, xd.data(), xd.data(), nullptr, nullptr, g.data());
    OptimizerConfig opt;
    opt.kind = OptimizerKind::sgd;
    opt.learning_rate = 0.5;
    TrainOptions t;
    t.epochs = 1;
    t.batch_size = 40;
    t.shuffle = false;
    m.fit(40, x.data(), nullptr, 0, nullptr, nullptr, opt, t);
    for (std::size_t i = 0; i < p.size(); ++i) CHECK_NEAR(m.params()[i], p[i] - 0.5 * g[i], 1e-6);
}

TEST(callback_stops_and_should_stop_interrupts) {
    const int d = 16;
    auto x = make_data(200, d, 4);
    Model m(small_config(d));
    m.init_weights(1);
    TrainOptions t;
    t.epochs = 10;
    t.batch_size = 20;
    int calls = 0;
    t.on_epoch = [&](const EpochReport& r) {
        ++calls;
        return r.epoch < 3;
    };
    std::vector<EpochReport> history;
    CHECK(m.fit(200, x.data(), nullptr, 0, nullptr, nullptr, OptimizerConfig{}, t, &history) == StopReason::callback);
    CHECK(calls == 3 && history.size() == 3);

    int polls = 0;
    TrainOptions s;
    s.epochs = 10;
    s.batch_size = 20;
    s.should_stop = [&] { return ++polls == 4; };
    history.clear();
    CHECK(m.fit(200, x.data(), nullptr, 0, nullptr, nullptr, OptimizerConfig{}, s, &history) == StopReason::interrupted);
    CHECK(history.empty());
    for (std::size_t i = 0; i < m.n_params(); ++i) CHECK(std::isfinite(m.params()[i]));
}

TEST(batch_loop_allocates_nothing) {
    // Same epochs, 4x the batches: if any allocation happened per batch, the counts would differ.
    const int d = 20;
    // Allocations of a 2-epoch fit of an autoencoder of this network (a NetworkConfig or a spec).
    auto count_for = [&](const auto& network, std::size_t n, int threads) {
        auto x = make_data(n, d, 6);
        Model m(network);
        m.init_weights(1);
        TrainOptions t;
        t.epochs = 2;
        t.batch_size = 32;
        t.n_threads = threads;
        t.should_stop = [] { return false; };
        std::vector<EpochReport> history;
        history.reserve(2);
        const long before = g_allocations.load();
        m.fit(n, x.data(), nullptr, 0, nullptr, nullptr, OptimizerConfig{}, t, &history);
        return g_allocations.load() - before;
    };
    auto count = [&](std::size_t n, int threads) { return count_for(small_config(d), n, threads); };
    for (int threads : {1, 2, 5}) {  // 5: the weight gradients computed in the step's sum
        const long small = count(32 * 5 + 7, threads), large = count(32 * 20 + 7, threads);
        CHECK(small == large);
        CHECK(small > 0);  // the counter does see the set-up allocations
    }
    // The same with every per-step feature: targets apart from the inputs, sample weights,
    // dropout, a layer that keeps z (gelu), l1/l2 penalties, a per-sample loss (softmax with
    // cross-entropy), shuffled rows and validation data.
    NetworkSpec spec;
    spec.n_inputs = d;
    spec.layers.resize(3);
    spec.layers[0].units = 12;
    spec.layers[0].activation = activation_spec(Activation::gelu);
    spec.layers[0].dropout = 0.25;
    spec.layers[0].l1 = 1e-4;
    spec.layers[1].units = 6;
    spec.layers[1].activation = fastae_test::test_activation(Activation::elu);
    spec.layers[1].l2 = 1e-3;
    spec.layers[2].units = 5;
    spec.layers[2].activation = activation_spec(Activation::softmax);
    spec.head.loss = Loss::cross_entropy;
    auto count_general = [&](std::size_t n, int threads) {
        auto x = make_data(n, d, 6);
        auto y = fastae_test::probability_rows(n, 5, 7);
        auto w = fastae_test::random_vector(n, 0.0f, 2.0f, 8);
        TrainingData data;
        data.n = n;
        data.x = x.data();
        data.y = y.data();
        data.sample_weight = w.data();
        TrainingData val = data;
        val.n = 40;
        Model m(spec);
        m.init_weights(1);
        TrainOptions t;
        t.epochs = 2;
        t.batch_size = 32;
        t.n_threads = threads;
        t.should_stop = [] { return false; };
        std::vector<EpochReport> history;
        history.reserve(2);
        OptimizerConfig opt = training_optimizer(OptimizerKind::adamw);
        const long before = g_allocations.load();
        m.fit(data, &val, opt, t, &history);
        const long allocations = g_allocations.load() - before;
        CHECK(history.size() == 2 && !history[0].metrics.empty());  // the penalty is reported
        return allocations;
    };
    for (int threads : {1, 3, 5}) {
        const long small = count_general(32 * 5 + 7, threads), large = count_general(32 * 20 + 7, threads);
        CHECK(small == large);
    }
    // Tied weights, the contractive penalty (with dropout on its layer) and frozen layers.
    NetworkSpec tied;
    tied.n_inputs = d;
    const std::pair<int, Activation> layers[] = {
        {12, Activation::sigmoid}, {6, Activation::relu}, {12, Activation::elu}, {d, Activation::sigmoid}};
    for (auto [units, act] : layers) {
        LayerSpec l;
        l.units = units;
        l.activation = activation_spec(act);
        tied.layers.push_back(l);
    }
    tied.layers[0].contractive = 0.1;
    tied.layers[0].dropout = 0.2;
    tied.layers[2].tied_to = 1;
    tied.layers[3].tied_to = 0;
    tied.layers[1].trainable = tied.layers[2].trainable = false;
    for (int threads : {1, 2, 5}) {
        const long small = count_for(tied, 32 * 5 + 7, threads), large = count_for(tied, 32 * 20 + 7, threads);
        CHECK(small == large);
    }
}

TEST(resumed_optimizer_state_continues_exactly) {
    // For every optimizer kind, without shuffling: 2 epochs in one fit equal 1 epoch + 1 resumed
    // epoch bit for bit; a fresh optimizer state (the default) gives a different second epoch.
    const int d = 12;
    auto x = make_data(100, d, 8);
    for (OptimizerKind kind : all_optimizers()) {
        const OptimizerConfig opt = training_optimizer(kind);
        TrainOptions t;
        t.batch_size = 30;
        t.shuffle = false;
        Model once(small_config(d));
        once.init_weights(3);
        Model twice = once;
        Model fresh = once;
        t.epochs = 2;
        once.fit(100, x.data(), nullptr, 0, nullptr, nullptr, opt, t);
        CHECK(once.has_optimizer_state() && once.optimizer_state().steps == 8);
        t.epochs = 1;
        twice.fit(100, x.data(), nullptr, 0, nullptr, nullptr, opt, t);
        fresh.fit(100, x.data(), nullptr, 0, nullptr, nullptr, opt, t);
        t.resume_optimizer = true;
        twice.fit(100, x.data(), nullptr, 0, nullptr, nullptr, opt, t);
        t.resume_optimizer = false;
        fresh.fit(100, x.data(), nullptr, 0, nullptr, nullptr, opt, t);
        CHECK(params_of(once) == params_of(twice));
        CHECK(params_of(once) != params_of(fresh));
        CHECK(twice.optimizer_state().steps == 8 && fresh.optimizer_state().steps == 4);
        CHECK(twice.optimizer_state().config.kind == kind);
        CHECK(twice.optimizer_state().m == once.optimizer_state().m);
        CHECK(twice.optimizer_state().v == once.optimizer_state().v);
        // Resuming with another kind starts that kind fresh.
        const OptimizerKind other = all_optimizers()[(std::size_t(kind) + 1) % all_optimizers().size()];
        Model resumed = twice, restarted = twice;
        restarted.clear_optimizer_state();
        t.resume_optimizer = true;
        resumed.fit(100, x.data(), nullptr, 0, nullptr, nullptr, training_optimizer(other), t);
        restarted.fit(100, x.data(), nullptr, 0, nullptr, nullptr, training_optimizer(other), t);
        CHECK(params_of(resumed) == params_of(restarted));
        CHECK(resumed.optimizer_state().steps == 4 && resumed.optimizer_state().config.kind == other);
    }
}

TEST(divergence_stops_with_the_last_finite_weights) {
    // SGD with a huge learning rate on mse with a linear output blows the weights up within a few
    // steps; fit must throw TrainingDiverged and leave finite weights behind.
    const int d = 8;
    auto x = make_data(64, d, 9);
    NetworkConfig cfg;
    cfg.layer_sizes = {d, 4, d};
    cfg.activation = Activation::linear;
    cfg.output_activation = Activation::linear;
    cfg.loss = Loss::mse;
    Model m(cfg);
    m.init_weights(1);
    OptimizerConfig opt;
    opt.kind = OptimizerKind::sgd;
    opt.learning_rate = 1e6;
    TrainOptions t;
    t.epochs = 50;
    t.batch_size = 8;
    std::vector<EpochReport> history;
    bool thrown = false;
    try {
        m.fit(64, x.data(), nullptr, 0, nullptr, nullptr, opt, t, &history);
    } catch (const TrainingDiverged& e) {
        thrown = true;
        CHECK(std::string(e.what()).find("non-finite") != std::string::npos);
    }
    CHECK(thrown);
    CHECK(history.size() < 50);
    for (std::size_t i = 0; i < m.n_params(); ++i) CHECK(std::isfinite(m.params()[i]));
}

TEST(eight_bit_data_trains_exactly_like_its_float_conversion) {
    const int d = 20;
    std::mt19937 gen(11);
    std::vector<std::uint8_t> x8(150 * d);
    for (auto& v : x8) v = std::uint8_t(gen() % 256);
    const float scale = 1.0f / 255.0f;
    std::vector<float> xf(x8.size());
    for (std::size_t i = 0; i < x8.size(); ++i) xf[i] = float(x8[i]) * scale;
    for (bool shuffle : {true, false}) {
        Model a(small_config(d)), b(small_config(d));
        a.init_weights(4);
        b.init_weights(4);
        TrainOptions t;
        t.epochs = 3;
        t.batch_size = 32;
        t.shuffle = shuffle;
        t.n_threads = 2;
        std::vector<EpochReport> ha, hb;
        a.fit(150, xf.data(), nullptr, 40, xf.data(), nullptr, OptimizerConfig{}, t, &ha);
        b.fit_u8(150, x8.data(), scale, 40, x8.data(), OptimizerConfig{}, t, &hb);
        CHECK(std::vector<float>(a.params(), a.params() + a.n_params()) ==
              std::vector<float>(b.params(), b.params() + b.n_params()));
        CHECK(ha.back().loss == hb.back().loss && ha.back().val_loss == hb.back().val_loss);
    }
    Model m(small_config(d));
    CHECK_THROWS(m.fit_u8(150, x8.data(), 1.0f, 0, nullptr, OptimizerConfig{}, TrainOptions{}), std::invalid_argument);
    CHECK_THROWS(m.fit_u8(150, x8.data(), -1.0f, 0, nullptr, OptimizerConfig{}, TrainOptions{}), std::invalid_argument);
}

TEST(more_threads_than_cores_stay_deterministic) {
    // Shards are claimed by whichever thread is free; results must not depend on who ran what.
    const int d = 24;
    auto x = make_data(400, d, 12);
    auto run = [&]() {
        Model m(small_config(d));
        m.init_weights(8);
        TrainOptions t;
        t.epochs = 2;
        t.batch_size = 64;
        t.n_threads = 5;
        m.fit(400, x.data(), nullptr, 100, x.data(), nullptr, OptimizerConfig{}, t);
        return std::vector<float>(m.params(), m.params() + m.n_params());
    };
    const auto first = run();
    for (int i = 0; i < 3; ++i) CHECK(run() == first);
}
// ---- dropout ---------------------------------------------------------------------------------

namespace {

NetworkSpec dropout_spec(int d) {
    NetworkSpec spec;
    spec.n_inputs = d;
    spec.layers.resize(3);
    spec.layers[0].units = 16;
    spec.layers[0].dropout = 0.3;
    spec.layers[1].units = 8;
    spec.layers[1].activation = activation_spec(Activation::gelu);
    spec.layers[1].dropout = 0.5;
    spec.layers[2].units = d;
    spec.layers[2].activation = activation_spec(Activation::sigmoid);
    return spec;
}

}  // namespace

// Dropout masks are keyed by dataset row, never by thread or batch position: training a dropout
// network on 1 or 3 threads gives the same losses up to the order of float sums (~1e-5
// relative), shuffled or not; with the same thread count, bit-identical weights and losses.
TEST(dropout_training_is_independent_of_thread_count) {
    const int d = 12;
    const std::size_t n = 120;
    auto x = make_data(n, d, 21);
    auto run = [&](int threads, bool shuffle, std::vector<EpochReport>* history) {
        Model m(dropout_spec(d));
        m.init_weights(4);
        TrainOptions t;
        t.epochs = 3;
        t.batch_size = 32;
        t.shuffle = shuffle;
        t.seed = 17;
        t.n_threads = threads;
        m.fit(n, x.data(), nullptr, 0, nullptr, nullptr, OptimizerConfig{}, t, history);
        return params_of(m);
    };
    for (bool shuffle : {false, true}) {
        std::vector<EpochReport> one, three, three_again;
        const auto w1 = run(1, shuffle, &one);
        const auto w3 = run(3, shuffle, &three);
        const auto w3_again = run(3, shuffle, &three_again);
        CHECK(w3 == w3_again);
        CHECK(one.size() == 3 && three.size() == 3 && three_again.size() == 3);
        for (std::size_t e = 0; e < one.size() && e < three.size(); ++e) {
            CHECK(three[e].loss == three_again[e].loss);
            CHECK_NEAR(one[e].loss, three[e].loss, 1e-5 * one[e].loss);
        }
        double largest = 0;
        CHECK(fastae_test::max_abs_diff(w1, w3, &largest) < 1e-5 * (1 + largest));
    }
    // The same network without dropout trains differently: the masks are applied.
    NetworkSpec plain = dropout_spec(d);
    for (LayerSpec& l : plain.layers) l.dropout = 0.0;
    Model m(plain);
    m.init_weights(4);
    TrainOptions t;
    t.epochs = 3;
    t.batch_size = 32;
    t.shuffle = false;
    t.seed = 17;
    std::vector<EpochReport> history, with_dropout;
    m.fit(n, x.data(), nullptr, 0, nullptr, nullptr, OptimizerConfig{}, t, &history);
    run(1, false, &with_dropout);
    CHECK(history[0].loss != with_dropout[0].loss);
}

// Dropout is training's only: inference, losses and gradients of a dropout network are those of
// the same network without it.
TEST(dropout_is_off_outside_training) {
    const int d = 12;
    NetworkSpec plain = dropout_spec(d);
    for (LayerSpec& l : plain.layers) l.dropout = 0.0;
    Model a(dropout_spec(d)), b(plain);
    a.init_weights(5);
    b.init_weights(5);
    const std::size_t n = 50;
    auto x = make_data(n, d, 3);
    std::vector<float> pa(n * d), pb(n * d), ga(a.n_params()), gb(b.n_params());
    a.predict(n, x.data(), pa.data());
    b.predict(n, x.data(), pb.data());
    CHECK(pa == pb);
    CHECK(a.loss(n, x.data()) == b.loss(n, x.data()));
    CHECK(a.loss_and_gradient(n, x.data(), nullptr, ga.data()) == b.loss_and_gradient(n, x.data(), nullptr, gb.data()));
    CHECK(ga == gb);
}

// Every optimizer of the vocabulary trains (a few epochs lower the loss), and every valid head
// does with Adam (the losses are not comparable across heads: each against its own start).
TEST(every_optimizer_and_head_lowers_the_loss) {
    const int d = 8;
    const std::size_t n = 200;
    auto x = make_data(n, d, 31);
    for (OptimizerKind kind : all_optimizers()) {
        Model m(small_config(d));
        m.init_weights(6);
        const double before = m.loss(n, x.data());
        TrainOptions t;
        t.epochs = 8;
        t.batch_size = 16;
        OptimizerConfig opt = training_optimizer(kind);
        opt.learning_rate *= kind == OptimizerKind::sgd ? 0.2 : 5.0;
        m.fit(n, x.data(), nullptr, 0, nullptr, nullptr, opt, t);
        const double after = m.loss(n, x.data());
        if (!(after < before)) {
            fastae_test::fail(__FILE__, __LINE__, std::string(name_of(kind)) + ": loss " + std::to_string(before) +
                                                      " -> " + std::to_string(after));
        }
    }
    for (fastae_test::Head head : fastae_test::valid_heads()) {
        NetworkSpec spec = fastae_test::make_spec(d, {{12, activation_spec(Activation::tanh)}}, 5, head);
        const auto y = fastae_test::targets_for<float>(head.loss, n, 5, 32);
        Model m(spec);
        m.init_weights(6);
        const double before = m.loss(n, x.data(), y.data());
        TrainOptions t;
        t.epochs = 5;
        t.batch_size = 16;
        OptimizerConfig opt;
        opt.learning_rate = 1e-2;
        m.fit(n, x.data(), y.data(), 0, nullptr, nullptr, opt, t);
        const double after = m.loss(n, x.data(), y.data());
        if (!(after < before)) {
            fastae_test::fail(__FILE__, __LINE__, std::string(name_of(head.loss)) + " on " + name_of(head.out) + ": loss " +
                                                      std::to_string(before) + " -> " + std::to_string(after));
        }
    }
}
