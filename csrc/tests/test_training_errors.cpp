// test_training_errors.cpp -- argument and data errors through the public API: bad arguments and
// names outside the vocabulary, every non-finite input refused by inference and named (also
// through the sparse first layer), bad data found mid-epoch changing nothing (the first bad value
// in batch order named, with threads), and set_optimizer_state checking each kind's slots.
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "check.h"
#include "fastae/fastae.h"
#include "test_data.h"

using namespace fastae;
using fastae_test::contains;
using fastae_test::invalid_argument_of;
using fastae_test::make_data;
using fastae_test::small_config;
using fastae_test::training_optimizer;

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
    TrainOptions bad_mode;
    bad_mode.thread_mode = static_cast<ThreadMode>(7);  // no such mode: named, not run as another
    CHECK(contains(invalid_argument_of([&] { m.fit(10, x.data(), nullptr, 0, nullptr, nullptr, OptimizerConfig{}, bad_mode); }),
                   "thread_mode must be automatic, team or solo, got 7"));
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
