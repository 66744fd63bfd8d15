// test_training.cpp -- models through the public API: the epoch loop (learning, seed determinism,
// threads, callbacks and interruption, no allocation inside the batch loop, dropout independent
// of the thread count), every weight initializer, the network and optimizer checks (every
// pairing rule of the vocabulary's traits, each invalid option), the optimizer state of every
// kind, argument and data errors.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <limits>
#include <new>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "check.h"
#include "fastae/fastae.h"
#include "network.h"
#include "optimizer.h"
#include "rng.h"
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

namespace {

// The message of the std::invalid_argument `call` throws, or "" if it throws nothing.
template <typename Call>
std::string invalid_argument_of(Call&& call) {
    try {
        call();
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// An optimizer configuration of each kind for the training tests (a switch with no default: a
// new kind does not compile until it has one here).
OptimizerConfig training_optimizer(OptimizerKind kind) {
    OptimizerConfig c;
    c.kind = kind;
    switch (kind) {
        case OptimizerKind::adam: c.learning_rate = 3e-3; break;
        case OptimizerKind::adamw: c.learning_rate = 3e-3; c.weight_decay = 0.1; break;
        case OptimizerKind::sgd: c.learning_rate = 0.5; c.momentum = 0.9; c.nesterov = true; break;
        case OptimizerKind::rmsprop: c.learning_rate = 1e-3; c.rho = 0.8; break;
    }
    return c;
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

TEST(bad_arguments_throw_invalid_argument) {
    NetworkConfig bad;
    bad.layer_sizes = {10};
    CHECK_THROWS(Model{bad}, std::invalid_argument);
    bad.layer_sizes = {10, 0, 10};
    CHECK_THROWS(Model{bad}, std::invalid_argument);
    bad.layer_sizes = {10, 4, 10};
    bad.output_activation = Activation::linear;  // bce needs a sigmoid output
    CHECK_THROWS(Model{bad}, std::invalid_argument);
    CHECK_THROWS(parse_activation("swish"), std::invalid_argument);  // not in the vocabulary
    CHECK_THROWS(parse_loss("hinge"), std::invalid_argument);
    CHECK_THROWS(parse_optimizer("lbfgs"), std::invalid_argument);
    CHECK_THROWS(parse_initializer("orthogonal"), std::invalid_argument);

    Model m(small_config(8));
    auto x = make_data(10, 8, 5);
    OptimizerConfig opt;
    opt.learning_rate = -1;
    CHECK_THROWS(m.fit(10, x.data(), nullptr, 0, nullptr, nullptr, opt, TrainOptions{}), std::invalid_argument);
    TrainOptions t;
    t.batch_size = 0;
    CHECK_THROWS(m.fit(10, x.data(), nullptr, 0, nullptr, nullptr, OptimizerConfig{}, t), std::invalid_argument);
    x[13] = std::nanf("");
    CHECK(contains(invalid_argument_of([&] { m.fit(10, x.data(), nullptr, 0, nullptr, nullptr, OptimizerConfig{}, TrainOptions{}); }),
                   "non-finite value (nan) at row 1, column 5"));
    x[13] = 1.5f;  // outside [0, 1] with bce
    CHECK(contains(invalid_argument_of([&] { m.fit(10, x.data(), nullptr, 0, nullptr, nullptr, OptimizerConfig{}, TrainOptions{}); }),
                   "[0, 1] for loss='bce'"));
    x[13] = 0.5f;
    std::vector<float> weights(10, 1.0f);
    weights[4] = -1.0f;
    TrainingData data;
    data.n = 10;
    data.x = x.data();
    data.sample_weight = weights.data();
    const std::string weight_error =
        invalid_argument_of([&] { m.fit(data, nullptr, OptimizerConfig{}, TrainOptions{}); });
    CHECK(contains(weight_error, "sample_weight") && contains(weight_error, "row 4"));
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
    for (int threads : {1, 2}) {
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
    for (int threads : {1, 3}) {
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
    for (int threads : {1, 2}) {
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

// set_optimizer_state checks each kind's slots (vocabulary.h: one or two of n_params values),
// steps, finiteness and the sign of running averages of squares, and changes nothing on error.
TEST(set_optimizer_state_checks_each_kinds_slots) {
    Model m(small_config(6));
    m.init_weights(1);
    const std::size_t n = m.n_params();
    for (OptimizerKind kind : all_optimizers()) {
        const int slots = traits_of(kind).n_slots;
        const std::vector<std::string> names = optimizer_slot_names(kind);
        CHECK(int(names.size()) == slots);
        OptimizerState good;
        good.config = training_optimizer(kind);
        good.steps = 3;
        good.m.assign(n, 0.25f);
        if (slots == 2) good.v.assign(n, 0.5f);
        m.set_optimizer_state(good);
        CHECK(m.optimizer_state().config.kind == kind && m.optimizer_state().steps == 3);
        auto refused = [&](const OptimizerState& bad, const std::string& part) {
            const std::string what = invalid_argument_of([&] { m.set_optimizer_state(bad); });
            if (!contains(what, part)) {
                fastae_test::fail(__FILE__, __LINE__, std::string(name_of(kind)) + ": expected '" + part + "' in '" + what + "'");
            }
        };
        OptimizerState bad = good;
        bad.m.pop_back();
        refused(bad, names[0]);
        bad = good;
        bad.m.clear();
        refused(bad, "m");
        bad = good;
        bad.v.assign(slots == 2 ? n - 1 : n, 0.5f);  // two slots: too short; one slot: none allowed
        refused(bad, "v");
        if (slots == 2) {
            bad = good;
            bad.v.clear();
            refused(bad, names[1]);
        }
        bad = good;
        bad.m[2] = std::numeric_limits<float>::quiet_NaN();
        refused(bad, "non-finite");
        bad = good;
        bad.steps = -1;
        refused(bad, "steps");
        bad = good;
        bad.config.learning_rate = 0.0;
        refused(bad, "learning_rate");
        // Running averages of squares (adam's and adamw's v, rmsprop's m) cannot be negative;
        // momentum can.
        bad = good;
        (slots == 2 ? bad.v : bad.m)[0] = -1.0f;
        const bool squares = kind != OptimizerKind::sgd;
        if (squares) {
            refused(bad, ">= 0");
        } else {
            m.set_optimizer_state(bad);
            CHECK(m.optimizer_state().m[0] == -1.0f);
            m.set_optimizer_state(good);
        }
        // Nothing changed by the refusals.
        CHECK(m.optimizer_state().m == good.m && m.optimizer_state().v == good.v && m.optimizer_state().steps == 3);
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

// ---- weight initializers --------------------------------------------------------------------

// Every initializer of the vocabulary on a 300 -> 100 -> 50 network (its traits give the scale
// and the fan): uniform draws within l = sqrt(3 scale / fan) and reaching it; normal draws
// within two std of the pre-scaled normal (std sqrt(scale / fan) / 0.8796...); the empirical
// std sqrt(scale / fan) either way (30000 draws: its standard error is about 0.4%); mean 0;
// zero biases; each layer with its own fan.
TEST(every_initializer_has_its_bounds_and_std) {
    for (Initializer init : all_initializers()) {
        const InitializerTraits& traits = traits_of(init);
        NetworkSpec spec;
        spec.n_inputs = 300;
        spec.layers.resize(2);
        spec.layers[0].units = 100;
        spec.layers[1].units = 50;
        spec.head.loss = Loss::mse;
        spec.layers[1].activation = activation_spec(Activation::linear);
        for (LayerSpec& l : spec.layers) l.initializer = init;
        Model m(spec);
        m.init_weights(11);
        for (int layer = 0; layer < 2; ++layer) {
            const int n_in = layer == 0 ? 300 : 100, n_out = layer == 0 ? 100 : 50;
            const double fan = traits.fan == 0 ? 0.5 * (n_in + n_out) : double(n_in);
            const double std_want = std::sqrt(traits.scale / fan);
            const double bound = traits.normal ? 2.0 * std_want / 0.87962566103423978 : std::sqrt(3.0 * traits.scale / fan);
            const float* w = m.params() + m.param_offset(layer);
            const std::size_t count = std::size_t(n_in) * std::size_t(n_out);
            double sum = 0, sq = 0, top = 0;
            for (std::size_t i = 0; i < count; ++i) {
                sum += w[i];
                sq += double(w[i]) * w[i];
                top = std::max(top, std::fabs(double(w[i])));
            }
            const std::string what = std::string(name_of(init)) + ", layer " + std::to_string(layer);
            const double mean = sum / double(count), sd = std::sqrt(sq / double(count) - mean * mean);
            if (!(top <= bound * (1 + 1e-7) && top > 0.97 * bound)) {
                fastae_test::fail(__FILE__, __LINE__, what + ": largest |w| " + std::to_string(top) + ", bound " + std::to_string(bound));
            }
            const double tolerance = layer == 0 ? 0.03 : 0.06;  // 30000 and 5000 draws
            if (!(std::fabs(sd / std_want - 1.0) < tolerance && std::fabs(mean) < 0.05 * std_want)) {
                fastae_test::fail(__FILE__, __LINE__, what + ": std " + std::to_string(sd) + " (want " +
                                                          std::to_string(std_want) + "), mean " + std::to_string(mean));
            }
            for (int o = 0; o < n_out; ++o) CHECK(w[count + std::size_t(o)] == 0.0f);
        }
        // A seed gives the same draws; another seed others.
        Model again(spec), other(spec);
        again.init_weights(11);
        other.init_weights(12);
        CHECK(params_of(again) == params_of(m));
        CHECK(params_of(other) != params_of(m));
    }
}

// glorot_uniform (the default) draws exactly what the library drew before initializers were
// added: w = float((2u - 1) sqrt(6 / (n_in + n_out))), u from one Rng(seed) in layer order,
// biases not drawn. The values are those of the earlier code (computed with its rng.h).
TEST(glorot_uniform_draws_are_unchanged) {
    NetworkConfig cfg;
    cfg.layer_sizes = {5, 3, 4};
    Model m(cfg);
    m.init_weights(2024);
    detail::Rng rng(2024);
    std::vector<float> want(m.n_params(), -1.0f);
    std::size_t at = 0;
    for (int l = 0; l < 2; ++l) {
        const int n_in = cfg.layer_sizes[std::size_t(l)], n_out = cfg.layer_sizes[std::size_t(l) + 1];
        const double limit = std::sqrt(6.0 / double(n_in + n_out));
        for (int i = 0; i < n_in * n_out; ++i) want[at++] = float((2.0 * rng.uniform() - 1.0) * limit);
        for (int o = 0; o < n_out; ++o) want[at++] = 0.0f;
    }
    CHECK(at == want.size());
    CHECK(std::equal(want.begin(), want.end(), m.params()));
    const float* w = m.params();
    CHECK(w[0] == -0.769389272f && w[1] == 0.488618076f && w[2] == -0.74122256f && w[14] == 0.47355932f);
    const float* w1 = m.params() + m.param_offset(1);
    CHECK(w1[0] == -0.574181974f && w1[1] == -0.846471488f && w1[2] == 0.282795906f && w1[11] == 0.00428431947f);
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

// ---- network and vocabulary checks ----------------------------------------------------------

namespace {

// A valid spec to break one field at a time: 6 -> 5 (relu) -> 4 (tanh) -> 6 (sigmoid), bce.
NetworkSpec valid_spec() {
    NetworkSpec spec;
    spec.n_inputs = 6;
    spec.layers.resize(3);
    spec.layers[0].units = 5;
    spec.layers[1].units = 4;
    spec.layers[1].activation = activation_spec(Activation::tanh);
    spec.layers[2].units = 6;
    spec.layers[2].activation = activation_spec(Activation::sigmoid);
    spec.head.loss = Loss::bce;
    return spec;
}

}  // namespace

// Each invalid option of a NetworkSpec throws std::invalid_argument naming it.
TEST(network_validation_names_each_bad_field) {
    struct Case {
        const char* what;
        void (*breaks)(NetworkSpec&);
        const char* message;
    };
    const Case cases[] = {
        {"softmax on a hidden layer",
         [](NetworkSpec& s) { s.layers[1].activation = activation_spec(Activation::softmax); },
         "layers[1]: activation 'softmax' is allowed on the output layer only"},
        {"bce without a sigmoid output",
         [](NetworkSpec& s) { s.layers[2].activation = activation_spec(Activation::linear); },
         "loss 'bce' needs output_activation 'sigmoid', got 'linear'"},
        {"cross_entropy without softmax", [](NetworkSpec& s) { s.head.loss = Loss::cross_entropy; },
         "loss 'cross_entropy' needs output_activation 'softmax', got 'sigmoid'"},
        {"softmax with mse",
         [](NetworkSpec& s) {
             s.layers[2].activation = activation_spec(Activation::softmax);
             s.head.loss = Loss::mse;
         },
         "output_activation 'softmax' goes with its own loss only, not 'mse'"},
        {"negative leaky slope",
         [](NetworkSpec& s) { s.layers[0].activation = {Activation::leaky_relu, -0.1}; },
         "layers[0]: leaky_relu's slope (alpha) must be a finite number >= 0"},
        {"NaN leaky slope",
         [](NetworkSpec& s) { s.layers[0].activation = {Activation::leaky_relu, std::nan("")}; }, "leaky_relu's slope"},
        {"elu alpha 0", [](NetworkSpec& s) { s.layers[1].activation = {Activation::elu, 0.0}; },
         "layers[1]: elu's alpha must be a finite number > 0"},
        {"huber_delta 0",
         [](NetworkSpec& s) {
             s.head.loss = Loss::huber;
             s.head.huber_delta = 0.0;
         },
         "huber_delta must be a finite number > 0"},
        {"huber_delta inf",
         [](NetworkSpec& s) {
             s.head.loss = Loss::huber;
             s.head.huber_delta = std::numeric_limits<double>::infinity();
         },
         "huber_delta"},
        {"dropout 1.0", [](NetworkSpec& s) { s.layers[0].dropout = 1.0; }, "layers[0].dropout must be in [0, 1)"},
        {"negative dropout", [](NetworkSpec& s) { s.layers[1].dropout = -0.1; }, "layers[1].dropout must be in [0, 1)"},
        {"dropout on the output layer", [](NetworkSpec& s) { s.layers[2].dropout = 0.5; },
         "layers[2]: dropout is for hidden layers, not the output layer"},
        {"negative l1", [](NetworkSpec& s) { s.layers[1].l1 = -1e-3; }, "layers[1].l1 must be a finite number >= 0"},
        {"NaN l2", [](NetworkSpec& s) { s.layers[2].l2 = std::nan(""); }, "layers[2].l2 must be a finite number >= 0"},
        {"units 0", [](NetworkSpec& s) { s.layers[1].units = 0; }, "layers[1].units must be >= 1, got 0"},
        {"code_layer past the end", [](NetworkSpec& s) { s.code_layer = 3; }, "code_layer must be -1 or in [0, 3), got 3"},
        {"code_layer below -1", [](NetworkSpec& s) { s.code_layer = -2; }, "code_layer must be -1 or in [0, 3), got -2"},
        {"n_inputs 0", [](NetworkSpec& s) { s.n_inputs = 0; }, "n_inputs must be >= 1"},
        {"no layers", [](NetworkSpec& s) { s.layers.clear(); }, "at least one layer"},
        {"activation outside the vocabulary",
         [](NetworkSpec& s) { s.layers[0].activation.kind = static_cast<Activation>(all_activations().size()); },
         "invalid activation"},
        {"loss outside the vocabulary", [](NetworkSpec& s) { s.head.loss = static_cast<Loss>(all_losses().size()); },
         "invalid loss"},
        {"initializer outside the vocabulary",
         [](NetworkSpec& s) { s.layers[0].initializer = static_cast<Initializer>(all_initializers().size()); },
         "invalid initializer"},
    };
    CHECK(invalid_argument_of([] { Model m(valid_spec()); }).empty());
    for (const Case& c : cases) {
        NetworkSpec spec = valid_spec();
        c.breaks(spec);
        const std::string what = invalid_argument_of([&] { Model m(spec); });
        if (!contains(what, c.message)) {
            fastae_test::fail(__FILE__, __LINE__, std::string(c.what) + ": expected '" + c.message + "', got '" + what + "'");
        }
    }
    // The limits themselves are valid: slope 0, a code layer at either end.
    NetworkSpec edge = valid_spec();
    edge.layers[0].activation = {Activation::leaky_relu, 0.0};
    edge.code_layer = 0;
    CHECK(invalid_argument_of([&] { Model m(edge); }).empty());
    edge.code_layer = 2;
    CHECK(invalid_argument_of([&] { Model m(edge); }).empty());
}

// The pairing rules, read from the traits for every (activation, loss): an output activation
// goes with a loss exactly when the loss requires it, or requires none and it is not
// output_only; a hidden layer takes every activation that is not output_only.
TEST(pairings_follow_the_traits) {
    int accepted = 0;
    for (Loss loss : all_losses()) {
        for (Activation out : all_activations()) {
            NetworkSpec spec = valid_spec();
            spec.layers[2].activation = activation_spec(out);
            spec.head.loss = loss;
            const bool valid = fastae_test::valid_head(loss, out);
            const std::string what = invalid_argument_of([&] { Model m(spec); });
            if (what.empty() != valid) {
                fastae_test::fail(__FILE__, __LINE__, std::string(name_of(loss)) + " with output " + name_of(out) +
                                                          (valid ? " refused: " + what : " accepted"));
            }
            accepted += valid;
        }
    }
    CHECK(accepted == int(fastae_test::valid_heads().size()));
    for (Activation hidden : all_activations()) {
        NetworkSpec spec = valid_spec();
        spec.layers[0].activation = fastae_test::test_activation(hidden);
        const bool refused = !invalid_argument_of([&] { Model m(spec); }).empty();
        CHECK(refused == traits_of(hidden).output_only);
    }
}

// Names round-trip through the parsers; a name outside the vocabulary is refused with the list
// of allowed ones.
TEST(vocabulary_names_round_trip) {
    for (Activation a : all_activations()) CHECK(parse_activation(name_of(a)) == a);
    for (Loss l : all_losses()) CHECK(parse_loss(name_of(l)) == l);
    for (OptimizerKind o : all_optimizers()) CHECK(parse_optimizer(name_of(o)) == o);
    for (Initializer i : all_initializers()) CHECK(parse_initializer(name_of(i)) == i);
    const std::string what = invalid_argument_of([] { parse_activation("swish"); });
    CHECK(contains(what, "'swish'"));
    for (Activation a : all_activations()) CHECK(contains(what, std::string("'") + name_of(a) + "'"));
    CHECK(contains(invalid_argument_of([] { parse_loss("hinge"); }), "'cross_entropy'"));
    CHECK(contains(invalid_argument_of([] { parse_optimizer("lbfgs"); }), "'rmsprop'"));
    CHECK(contains(invalid_argument_of([] { parse_initializer("orthogonal"); }), "'lecun_normal'"));
    for (Activation a : all_activations()) {
        const double alpha = default_alpha(a);
        CHECK(activation_spec(a).kind == a && activation_spec(a).alpha == alpha);
    }
    CHECK(default_alpha(Activation::leaky_relu) == 0.01 && default_alpha(Activation::elu) == 1.0);
}

TEST(code_layer_sets_the_encoder) {
    NetworkSpec spec = valid_spec();
    Model middle(spec);  // -1: the first layers.size() / 2 layers encode
    CHECK(middle.n_encoder_layers() == 1 && middle.code_size() == 5);
    spec.code_layer = 1;
    Model deeper(spec);
    CHECK(deeper.n_encoder_layers() == 2 && deeper.code_size() == 4);
    CHECK(deeper.spec().code_layer == 1 && deeper.n_layers() == 3);
    CHECK(deeper.config().layer_sizes == std::vector<int>({6, 5, 4, 6}));
    CHECK(deeper.config().output_activation == Activation::sigmoid && deeper.config().loss == Loss::bce);
    std::vector<float> x = make_data(3, 6, 1), codes(3 * 4), out(3 * 6), direct(3 * 6);
    deeper.init_weights(2);
    deeper.encode(3, x.data(), codes.data());
    deeper.decode(3, codes.data(), out.data());
    deeper.predict(3, x.data(), direct.data());
    CHECK(out == direct);
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
