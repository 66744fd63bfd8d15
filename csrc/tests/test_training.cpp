// test_training.cpp -- the epoch loop through the public API: learning, seed determinism, threads,
// callbacks and interruption, argument errors, and no allocation inside the batch loop.
#include <atomic>
#include <cstdlib>
#include <new>
#include <random>
#include <stdexcept>
#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "check.h"
#include "fastae/fastae.h"
#include "network.h"
#include "optimizer.h"

// Every allocation in this program is counted, so a test can see whether a code path allocates.
static std::atomic<long> g_allocations{0};
void* operator new(std::size_t size) {
    ++g_allocations;
    if (void* p = std::malloc(size ? size : 1)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

using namespace fastae;

namespace {

// Smooth, low-rank data in [0, 1]: what an autoencoder can learn.
std::vector<float> make_data(std::size_t n, int d, unsigned seed) {
    std::mt19937 gen(seed);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    std::vector<float> x(n * std::size_t(d));
    for (std::size_t i = 0; i < n; ++i) {
        const float a = u(gen), b = u(gen);
        for (int j = 0; j < d; ++j) {
            const float t = float(j) / float(d);
            x[i * std::size_t(d) + std::size_t(j)] = 0.5f + 0.25f * a * std::sin(6.0f * t) + 0.2f * b * std::cos(3.0f * t);
        }
    }
    return x;
}

NetworkConfig small_config(int d) {
    NetworkConfig cfg;
    cfg.layer_sizes = {d, 16, 4, 16, d};
    return cfg;
}

}  // namespace

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

TEST(glorot_uniform_init) {
    NetworkConfig cfg;
    cfg.layer_sizes = {300, 100, 300};
    Model m(cfg);
    m.init_weights(1);
    const double limit = std::sqrt(6.0 / 400.0);
    const float* w = m.params();
    double sum = 0, sq = 0, lo = 1, hi = -1;
    for (int i = 0; i < 300 * 100; ++i) {
        sum += w[i];
        sq += double(w[i]) * w[i];
        lo = std::min(lo, double(w[i]));
        hi = std::max(hi, double(w[i]));
    }
    const double n = 300 * 100;
    CHECK(lo >= -limit && hi <= limit);
    CHECK(hi > 0.99 * limit && lo < -0.99 * limit);
    CHECK_NEAR(sum / n, 0.0, 0.01 * limit);
    CHECK_NEAR(sq / n, limit * limit / 3.0, 0.02 * limit * limit);  // variance of U(-a, a)
    for (int i = 0; i < 100; ++i) CHECK(w[300 * 100 + i] == 0.0f);
}

TEST(one_full_batch_sgd_step_equals_naive_gradient_step) {
    const int d = 10;
    auto x = make_data(40, d, 3);
    NetworkConfig cfg;
    cfg.layer_sizes = {d, 6, d};
    Model m(cfg);
    m.init_weights(9);
    std::vector<double> p(m.params(), m.params() + m.n_params()), xd(x.begin(), x.end()), g(p.size());
    detail::Network net(cfg);
    detail::loss_gradient_naive(net, p.data(), 40, xd.data(), xd.data(), g.data());
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

TEST(bad_arguments_throw_invalid_argument) {
    NetworkConfig bad;
    bad.layer_sizes = {10};
    CHECK_THROWS(Model{bad}, std::invalid_argument);
    bad.layer_sizes = {10, 0, 10};
    CHECK_THROWS(Model{bad}, std::invalid_argument);
    bad.layer_sizes = {10, 4, 10};
    bad.output_activation = Activation::linear;  // bce needs a sigmoid output
    CHECK_THROWS(Model{bad}, std::invalid_argument);
    CHECK_THROWS(parse_activation("gelu"), std::invalid_argument);
    CHECK_THROWS(parse_loss("hinge"), std::invalid_argument);
    CHECK_THROWS(parse_optimizer("lbfgs"), std::invalid_argument);

    Model m(small_config(8));
    auto x = make_data(10, 8, 5);
    OptimizerConfig opt;
    opt.learning_rate = -1;
    CHECK_THROWS(m.fit(10, x.data(), nullptr, 0, nullptr, nullptr, opt, TrainOptions{}), std::invalid_argument);
    TrainOptions t;
    t.batch_size = 0;
    CHECK_THROWS(m.fit(10, x.data(), nullptr, 0, nullptr, nullptr, OptimizerConfig{}, t), std::invalid_argument);
    x[13] = std::nanf("");
    CHECK_THROWS(m.fit(10, x.data(), nullptr, 0, nullptr, nullptr, OptimizerConfig{}, TrainOptions{}), std::invalid_argument);
    x[13] = 1.5f;  // outside [0, 1] with bce
    CHECK_THROWS(m.fit(10, x.data(), nullptr, 0, nullptr, nullptr, OptimizerConfig{}, TrainOptions{}), std::invalid_argument);
    std::vector<float> params(m.n_params() - 1);
    CHECK_THROWS(m.set_params(params.data(), params.size()), std::invalid_argument);
}

// Inference checks its input through the first layer's products (network.h): every kind of
// non-finite value, anywhere in any chunk, must still be refused with the value's position,
// including where a weight is zero (inf * 0), and finite inputs whose products overflow pass.
TEST(inference_refuses_every_non_finite_input_and_names_it) {
    const int d = 8;
    NetworkConfig cfg = small_config(d);
    cfg.loss = Loss::mse;
    cfg.output_activation = Activation::linear;
    Model m(cfg);
    m.init_weights(3);
    std::vector<float> p(m.params(), m.params() + m.n_params());
    for (int o = 0; o < m.code_size(); ++o) p[std::size_t(5) * std::size_t(m.code_size()) + std::size_t(o)] = 0.0f;  // input 5's weights
    m.set_params(p.data(), p.size());
    const std::size_t n = 700;  // three inference chunks
    const float inf = std::numeric_limits<float>::infinity();
    for (float bad : {std::nanf(""), inf, -inf}) {
        for (std::size_t at : {std::size_t(0), std::size_t(5), std::size_t(300 * d + 3), n * d - 1, std::size_t(600 * d + 5)}) {
            auto x = make_data(n, d, 9);
            x[at] = bad;
            std::vector<float> codes(n * std::size_t(m.code_size())), out(n * d), losses(n);
            std::string what;
            try {
                m.encode(n, x.data(), codes.data());
            } catch (const std::invalid_argument& e) {
                what = e.what();
            }
            CHECK(what.find("row " + std::to_string(at / d) + ", column " + std::to_string(at % d)) != std::string::npos);
            CHECK_THROWS(m.predict(n, x.data(), out.data()), std::invalid_argument);
            CHECK_THROWS(m.sample_losses(n, x.data(), nullptr, losses.data()), std::invalid_argument);
        }
    }
    // Decoding starts at a later layer: its input (codes) is checked the same way.
    std::vector<float> codes(n * std::size_t(m.code_size()), 0.25f), decoded(n * d);
    codes[450 * std::size_t(m.code_size()) + 2] = std::nanf("");
    std::string what;
    try {
        m.decode(n, codes.data(), decoded.data());
    } catch (const std::invalid_argument& e) {
        what = e.what();
    }
    CHECK(what.find("row 450, column 2") != std::string::npos);
    // Finite but huge: the products overflow to inf, which is the honest result, not an error.
    auto x = make_data(n, d, 9);
    for (float& v : x) v = 3e38f;
    m.encode(n, x.data(), codes.data());
    bool any_inf = false;
    for (float c : codes) any_inf = any_inf || std::isinf(c);
    CHECK(any_inf);
}

// The first epoch checks each batch as it reads it; a bad value late in the data must still be
// named and leave the model exactly as it was, after steps were already taken on good batches.
TEST(bad_data_found_mid_epoch_changes_nothing) {
    const int d = 8;
    const std::size_t n = 300;
    for (bool shuffle : {true, false}) {
        for (bool bad_target : {false, true}) {
            for (int threads : {1, 2}) {
                NetworkConfig cfg = small_config(d);
                Model m(cfg);
                m.init_weights(4);
                auto x = make_data(n, d, 12);
                OptimizerConfig opt;
                TrainOptions t;
                t.epochs = 2;
                t.batch_size = 16;
                t.shuffle = shuffle;
                t.n_threads = threads;
                std::vector<EpochReport> history;
                m.fit(n, x.data(), nullptr, 0, nullptr, nullptr, opt, t, &history);  // some state to keep
                const std::vector<float> weights(m.params(), m.params() + m.n_params());
                const OptimizerState state = m.optimizer_state();
                auto y = x;
                std::vector<float>& bad = bad_target ? y : x;
                const std::size_t at = (n - 3) * d + 6;
                bad[at] = bad_target ? 1.5f : std::numeric_limits<float>::infinity();  // y: outside [0, 1]
                std::string what;
                t.resume_optimizer = true;
                try {
                    m.fit(n, x.data(), bad_target ? y.data() : nullptr, 0, nullptr, nullptr, opt, t, &history);
                } catch (const std::invalid_argument& e) {
                    what = e.what();
                }
                CHECK(what.find(std::string(bad_target ? "y" : "X")) == 0);
                CHECK(what.find("row " + std::to_string(n - 3) + ", column 6") != std::string::npos);
                CHECK(std::equal(weights.begin(), weights.end(), m.params()));
                CHECK(m.optimizer_state().steps == state.steps);
                CHECK(m.optimizer_state().m == state.m);
                CHECK(m.optimizer_state().v == state.v);
                CHECK(history.size() == 2);
            }
        }
    }
}

// With threads, each shard checks its own columns; the error must still name the first bad
// sample in batch order, whichever shard finished first.
TEST(bad_data_error_is_the_first_in_batch_order_with_threads) {
    const int d = 8;
    const std::size_t n = 300;
    for (int repeat = 0; repeat < 20; ++repeat) {
        Model m(small_config(d));
        m.init_weights(4);
        auto x = make_data(n, d, 12);
        x[290 * d + 1] = std::nanf("");  // batch 288..299: shard 0 holds 288..293, shard 1 294..299
        x[297 * d + 2] = std::nanf("");
        TrainOptions t;
        t.batch_size = 16;
        t.shuffle = false;
        t.n_threads = 2;
        std::string what;
        try {
            m.fit(n, x.data(), nullptr, 0, nullptr, nullptr, OptimizerConfig{}, t);
        } catch (const std::invalid_argument& e) {
            what = e.what();
        }
        CHECK(what.find("row 290, column 1") != std::string::npos);
    }
}

// The same through the first layer's sparse products: mostly-zero inputs (sparse_input.h).
TEST(inference_on_sparse_input_names_non_finite_values) {
    const int d = 40;
    Model m(small_config(d));
    m.init_weights(6);
    const std::size_t n = 600;
    auto x = make_data(n, d, 10);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = i % 7 == 0 ? x[i] : 0.0f;  // 1 in 7 nonzero
    std::vector<float> codes(n * std::size_t(m.code_size()));
    m.encode(n, x.data(), codes.data());  // fine
    for (float bad : {std::nanf(""), std::numeric_limits<float>::infinity()}) {
        auto y = x;
        y[333 * d + 11] = bad;
        std::string what;
        try {
            m.encode(n, y.data(), codes.data(), 2);
        } catch (const std::invalid_argument& e) {
            what = e.what();
        }
        CHECK(what.find("row 333, column 11") != std::string::npos);
    }
}

TEST(batch_loop_allocates_nothing) {
    // Same epochs, 4x the batches: if any allocation happened per batch, the counts would differ.
    const int d = 20;
    auto count = [&](std::size_t n, int threads) {
        auto x = make_data(n, d, 6);
        Model m(small_config(d));
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
    for (int threads : {1, 2}) {
        const long small = count(32 * 5 + 7, threads), large = count(32 * 20 + 7, threads);
        CHECK(small == large);
        CHECK(small > 0);  // the counter does see the set-up allocations
    }
}

TEST(resumed_optimizer_state_continues_exactly) {
    // Without shuffling, 2 epochs in one fit equal 1 epoch + 1 resumed epoch bit for bit; a
    // fresh optimizer state (the default) gives a different second epoch.
    const int d = 12;
    auto x = make_data(100, d, 8);
    TrainOptions t;
    t.batch_size = 30;
    t.shuffle = false;
    Model once(small_config(d));
    once.init_weights(3);
    Model twice = once;
    Model fresh = once;
    t.epochs = 2;
    once.fit(100, x.data(), nullptr, 0, nullptr, nullptr, OptimizerConfig{}, t);
    CHECK(once.has_optimizer_state() && once.optimizer_state().steps == 8);
    t.epochs = 1;
    twice.fit(100, x.data(), nullptr, 0, nullptr, nullptr, OptimizerConfig{}, t);
    fresh.fit(100, x.data(), nullptr, 0, nullptr, nullptr, OptimizerConfig{}, t);
    t.resume_optimizer = true;
    twice.fit(100, x.data(), nullptr, 0, nullptr, nullptr, OptimizerConfig{}, t);
    t.resume_optimizer = false;
    fresh.fit(100, x.data(), nullptr, 0, nullptr, nullptr, OptimizerConfig{}, t);
    const std::vector<float> a(once.params(), once.params() + once.n_params());
    const std::vector<float> b(twice.params(), twice.params() + twice.n_params());
    const std::vector<float> c(fresh.params(), fresh.params() + fresh.n_params());
    CHECK(a == b);
    CHECK(a != c);
    CHECK(twice.optimizer_state().steps == 8 && fresh.optimizer_state().steps == 4);

    OptimizerState bad = once.optimizer_state();
    bad.m.pop_back();
    CHECK_THROWS(twice.set_optimizer_state(bad), std::invalid_argument);
    bad = once.optimizer_state();
    bad.v[0] = -1.0f;
    CHECK_THROWS(twice.set_optimizer_state(bad), std::invalid_argument);
    CHECK(twice.optimizer_state().steps == 8);  // unchanged by the failed calls
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
