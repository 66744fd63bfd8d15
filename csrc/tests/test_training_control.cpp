// test_training_control.cpp -- the epoch-end policies of the C++ trainer (trainer.h): early
// stopping on a scripted loss sequence (Monitor), the plateau schedule's cuts, the schedules'
// formulas, validation_split's held-out rows, the best weights restored exactly by Model::fit,
// the learning-rate function, max_time, and clipnorm through TrainingSession.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <vector>

#include "check.h"
#include "fastae/fastae.h"
#include "fastae/training.h"
#include "test_data.h"
#include "trainer.h"

using namespace fastae;
using fastae_test::make_data;
using fastae_test::params_of;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// A tiny autoencoder {6, 3, 6} (relu, sigmoid, bce) with seeded weights.
Model small_model(unsigned seed) {
    NetworkConfig cfg;
    cfg.layer_sizes = {6, 3, 6};
    Model m(cfg);
    m.init_weights(seed);
    return m;
}

TrainOptions quiet_options(int epochs) {
    TrainOptions t;
    t.epochs = epochs;
    t.batch_size = 8;
    t.seed = 11;
    t.n_threads = 1;
    return t;
}

TrainingData data_of(const std::vector<float>& x, std::size_t n) {
    TrainingData d;
    d.n = n;
    d.x = x.data();
    return d;
}

}  // namespace

// patience 3, min_delta 0.01. By hand (an epoch improves when loss < best - 0.01):
//   e1 1.00  improves (best 1.00)          e5 0.925 no (0.925 >= 0.92)   since_best 1
//   e2 0.95  improves (0.95 < 0.99)        e6 0.921 no                   since_best 2
//   e3 0.945 no (0.945 >= 0.94), since 1  e7 NaN   never improves        since_best 3: stop
//   e4 0.93  improves (0.93 < 0.94)
// so should_stop turns true after epoch 7 (not before) and the best epoch is 4.
TEST(monitor_stops_at_the_hand_computed_epoch) {
    const std::vector<double> losses = {1.0, 0.95, 0.945, 0.93, 0.925, 0.921, kNaN};
    const std::vector<bool> improves = {true, true, false, true, false, false, false};
    TrainOptions t;
    t.early_stopping = true;
    t.patience = 3;
    t.min_delta = 0.01;
    t.restore_best_weights = true;
    detail::Monitor monitor(t, 2);
    for (std::size_t e = 0; e < losses.size(); ++e) {
        const float params[2] = {float(e + 1), -float(e + 1)};  // epoch e+1's "weights"
        CHECK(monitor.record(losses[e], params) == improves[e]);
        CHECK(monitor.should_stop() == (e + 1 == losses.size()));
    }
    const float* best = monitor.best_params();
    CHECK(best != nullptr);
    if (best) CHECK(best[0] == 4.0f && best[1] == -4.0f);

    // Without early stopping it never asks to stop and keeps no weights; without
    // restore_best_weights it keeps none either.
    for (bool early : {false, true}) {
        TrainOptions u = t;
        u.early_stopping = early;
        u.restore_best_weights = !early;
        detail::Monitor m(u, 2);
        for (double loss : losses) {
            const float params[2] = {0.0f, 0.0f};
            m.record(loss, params);
        }
        CHECK(m.should_stop() == early);
        CHECK(m.best_params() == nullptr);
    }

    // "More than min_delta": exactly min_delta below the best is not an improvement.
    TrainOptions exact = t;
    exact.min_delta = 0.25;
    detail::Monitor boundary(exact, 0);
    CHECK(boundary.record(1.0, nullptr));
    CHECK(!boundary.record(0.75, nullptr));
    CHECK(boundary.record(0.7421875, nullptr));

    // The first finite loss improves on nothing-so-far; a NaN first never does.
    detail::Monitor first(t, 0);
    CHECK(!first.record(kNaN, nullptr));
    CHECK(first.record(5.0, nullptr));
}

// lr_patience 2, min_delta 0.01: a cut after lr_patience epochs without improvement since the
// last improvement or cut. By hand:
//   e1 1.00 imp | e2 0.90 imp | e3 0.95 (1) | e4 0.97 (2) CUT | e5 0.96 (1) | e6 0.85 imp
//   e7 0.90 (1) | e8 0.91 (2) CUT | e9 0.92 (1) | e10 0.93 (2) CUT
TEST(plateau_cuts_at_the_hand_computed_epochs) {
    const std::vector<double> losses = {1.0, 0.9, 0.95, 0.97, 0.96, 0.85, 0.9, 0.91, 0.92, 0.93};
    const std::vector<int> cut_after = {4, 8, 10};
    TrainOptions t;
    t.lr_schedule = LrSchedule::plateau;
    t.lr_patience = 2;
    t.min_delta = 0.01;
    detail::Monitor monitor(t, 0);
    std::vector<int> cuts;
    for (std::size_t e = 0; e < losses.size(); ++e) {
        monitor.record(losses[e], nullptr);
        if (monitor.plateau_cut()) cuts.push_back(int(e + 1));
    }
    CHECK(cuts == cut_after);
}

// The formulas of vocabulary.h, written out here: step lr*rate^floor(e/steps), exponential
// lr*rate^(e/steps), cosine lr_min + (lr - lr_min)(1 + cos(pi min(e, steps)/steps))/2, each
// floored at lr_min; none and plateau give lr0.
TEST(schedule_formulas) {
    const double pi = 3.14159265358979323846;
    TrainOptions t;
    t.lr_decay_rate = 0.5;
    t.lr_decay_steps = 3;
    t.lr_min = 0.0;
    const double lr0 = 0.2;
    for (int e : {0, 1, 2, 3, 5, 6, 7, 30}) {
        t.lr_schedule = LrSchedule::none;
        CHECK(detail::lr_of_epoch(t, lr0, e) == lr0);
        t.lr_schedule = LrSchedule::plateau;
        CHECK(detail::lr_of_epoch(t, lr0, e) == lr0);
        t.lr_schedule = LrSchedule::step;
        CHECK_NEAR(detail::lr_of_epoch(t, lr0, e), lr0 * std::pow(0.5, double(e / 3)), 1e-15);
        t.lr_schedule = LrSchedule::exponential;
        CHECK_NEAR(detail::lr_of_epoch(t, lr0, e), lr0 * std::pow(0.5, double(e) / 3.0), 1e-15);
        t.lr_schedule = LrSchedule::cosine;
        CHECK_NEAR(detail::lr_of_epoch(t, lr0, e), lr0 * (1 + std::cos(pi * std::min(e, 3) / 3.0)) / 2, 1e-15);
    }
    CHECK(detail::lr_of_epoch(t, lr0, 3) == 0.0);  // cosine ends at lr_min = 0 and stays there
    t.lr_min = 0.03;
    t.lr_schedule = LrSchedule::cosine;
    CHECK_NEAR(detail::lr_of_epoch(t, lr0, 1), 0.03 + (lr0 - 0.03) * (1 + std::cos(pi / 3)) / 2, 1e-15);
    CHECK(detail::lr_of_epoch(t, lr0, 9) == 0.03);
    t.lr_schedule = LrSchedule::step;
    CHECK_NEAR(detail::lr_of_epoch(t, lr0, 3), 0.1, 1e-15);
    CHECK(detail::lr_of_epoch(t, lr0, 9) == 0.03);  // 0.025 floored
    t.lr_schedule = LrSchedule::exponential;
    CHECK(detail::lr_of_epoch(t, lr0, 30) == 0.03);
}

// validation_split: int(n * (1 - split)) rows train, the rest (a seeded random subset, not the
// last rows) are copied out; the same seed draws the same subset, another seed another.
TEST(hold_out_draws_a_seeded_random_subset) {
    const std::size_t n = 40;
    const std::vector<float> x = make_data(n, 6, 3);
    const TrainingData data = data_of(x, n);
    const detail::HeldOut a = detail::hold_out(data, 6, 6, 0.25, 5);
    CHECK(a.train_rows.size() == 30 && a.validation.n == 10);
    CHECK(std::is_sorted(a.train_rows.begin(), a.train_rows.end()));
    std::vector<std::size_t> val_rows;
    for (std::size_t i = 0, k = 0; i < n; ++i) {
        if (k < a.train_rows.size() && a.train_rows[k] == i) {
            ++k;
        } else {
            val_rows.push_back(i);
        }
    }
    CHECK(val_rows.size() == 10);
    CHECK(val_rows.front() < 30);  // not the last 10 rows
    CHECK(a.validation.x != nullptr && a.validation.y == nullptr && a.validation.x_u8 == nullptr);
    for (std::size_t i = 0; i < val_rows.size() && a.validation.x; ++i) {
        CHECK(std::equal(a.validation.x + i * 6, a.validation.x + i * 6 + 6, x.data() + val_rows[i] * 6));
    }
    CHECK(detail::hold_out(data, 6, 6, 0.25, 5).train_rows == a.train_rows);
    CHECK(detail::hold_out(data, 6, 6, 0.25, 6).train_rows != a.train_rows);
    CHECK(detail::hold_out(data, 6, 6, 0.3, 5).validation.n == n - std::size_t(double(n) * 0.7));

    // 8-bit data stays 8-bit, with its scale.
    std::vector<std::uint8_t> u8(n * 6);
    for (std::size_t i = 0; i < u8.size(); ++i) u8[i] = std::uint8_t(i * 7 % 256);
    TrainingData bytes;
    bytes.n = n;
    bytes.x_u8 = u8.data();
    bytes.scale = 1.0f / 255.0f;
    const detail::HeldOut b = detail::hold_out(bytes, 6, 6, 0.25, 5);
    CHECK(b.train_rows == a.train_rows);
    CHECK(b.validation.x_u8 != nullptr && b.validation.x == nullptr && b.validation.scale == bytes.scale);
    for (std::size_t i = 0; i < val_rows.size() && b.validation.x_u8; ++i) {
        CHECK(std::equal(b.validation.x_u8 + i * 6, b.validation.x_u8 + i * 6 + 6, u8.data() + val_rows[i] * 6));
    }
    // A split that leaves no row on either side is refused.
    CHECK_THROWS(detail::hold_out(data_of(x, 1), 6, 6, 0.5, 5), std::invalid_argument);
}

// Model::fit with early stopping stops `patience` epochs after the best one and ends with the
// best epoch's exact weights: those of a run of best-epoch epochs from the same start. With
// restore_best_weights off it keeps the last epoch's. The improved flags match the rule.
TEST(fit_early_stopping_restores_the_best_epoch_exactly) {
    const std::vector<float> x = make_data(48, 6, 1), xv = make_data(16, 6, 2);
    const TrainingData data = data_of(x, 48), val = data_of(xv, 16);
    OptimizerConfig opt;
    opt.learning_rate = 0.2;  // large: the validation loss turns up within a few epochs
    TrainOptions t = quiet_options(200);
    t.early_stopping = true;
    t.patience = 2;
    t.min_delta = 1e-3;
    Model stopped = small_model(4);
    std::vector<EpochReport> history;
    CHECK(stopped.fit(data, &val, opt, t, &history) == StopReason::early_stopping);
    CHECK(history.size() < 200);
    int best = 0;
    double best_loss = std::numeric_limits<double>::infinity();
    for (const EpochReport& r : history) {
        CHECK(r.has_val_loss);
        CHECK(r.improved == (r.val_loss < best_loss - t.min_delta));
        if (r.improved) best = r.epoch, best_loss = r.val_loss;
    }
    CHECK(best >= 1 && int(history.size()) == best + t.patience);

    TrainOptions u = quiet_options(best);
    Model reference = small_model(4);
    CHECK(reference.fit(data, &val, opt, u, nullptr) == StopReason::completed);
    CHECK(params_of(stopped) == params_of(reference));

    t.restore_best_weights = false;
    Model last = small_model(4);
    last.fit(data, &val, opt, t, nullptr);
    u.epochs = int(history.size());
    Model reference_last = small_model(4);
    reference_last.fit(data, &val, opt, u, nullptr);
    CHECK(params_of(last) == params_of(reference_last));
    CHECK(params_of(last) != params_of(stopped));
}

// The plateau schedule in Model::fit: the rates reported follow the rule replayed on the
// monitored losses (the training loss here: no validation).
TEST(fit_plateau_rates_follow_the_rule) {
    const std::vector<float> x = make_data(48, 6, 1);
    OptimizerConfig opt;
    opt.learning_rate = 0.3;
    TrainOptions t = quiet_options(14);
    t.lr_schedule = LrSchedule::plateau;
    t.lr_patience = 2;
    t.lr_decay_rate = 0.5;
    t.min_delta = 0.02;  // most epochs do not improve by that much: several cuts
    t.lr_min = 0.05;
    Model m = small_model(2);
    std::vector<EpochReport> history;
    m.fit(data_of(x, 48), nullptr, opt, t, &history);
    CHECK(history.size() == 14);
    double lr = 0.3, best = std::numeric_limits<double>::infinity();
    int since = 0, cuts = 0;
    for (const EpochReport& r : history) {
        CHECK(r.lr == lr);
        if (r.loss < best - t.min_delta) {
            best = r.loss;
            since = 0;
        } else if (++since >= t.lr_patience) {
            since = 0;
            lr = std::max(lr * 0.5, t.lr_min);
            ++cuts;
        }
    }
    CHECK(cuts >= 3);  // 0.3, 0.15, 0.075, then 0.05: floored at lr_min
    CHECK(history.back().lr == 0.05);
}

// lr_function: called once per epoch at its start with the 0-based epoch (initial_epoch counted)
// and the rate in force (lr_in_force at first); its rates are the epochs' rates.
TEST(lr_function_is_called_once_per_epoch_and_used) {
    const std::vector<float> x = make_data(30, 6, 1);
    OptimizerConfig opt;
    opt.learning_rate = 0.01;
    TrainOptions t = quiet_options(3);
    t.initial_epoch = 5;
    t.lr_in_force = 0.04;
    t.lr_schedule = LrSchedule::step;  // overridden by the function
    std::vector<std::pair<int, double>> calls;
    t.lr_function = [&calls](int epoch, double lr) {
        calls.emplace_back(epoch, lr);
        return lr / 2;
    };
    Model m = small_model(3);
    std::vector<EpochReport> history;
    m.fit(data_of(x, 30), nullptr, opt, t, &history);
    const std::vector<std::pair<int, double>> want = {{5, 0.04}, {6, 0.02}, {7, 0.01}};
    CHECK(calls == want);
    CHECK(history.size() == 3 && history[0].epoch == 6 && history[2].epoch == 8);
    for (std::size_t e = 0; e < history.size() && e < 3; ++e) CHECK(history[e].lr == want[e].second / 2);

    // A bad rate stops with std::domain_error before the epoch runs.
    t.lr_function = [](int epoch, double lr) { return epoch == 6 ? kNaN : lr; };
    history.clear();
    CHECK_THROWS(m.fit(data_of(x, 30), nullptr, opt, t, &history), std::domain_error);
    CHECK(history.size() == 1);
}

// max_time: a budget every step crosses stops after the first step, which is still reported.
TEST(max_time_stops_after_the_first_step) {
    const std::vector<float> x = make_data(40, 6, 1);
    TrainOptions t = quiet_options(5);
    t.max_time = 1e-12;
    Model m = small_model(3);
    std::vector<EpochReport> history;
    CHECK(m.fit(data_of(x, 40), nullptr, OptimizerConfig(), t, &history) == StopReason::max_time);
    CHECK(history.size() == 1);
    CHECK(m.optimizer_state().steps == 1);
}

// clipnorm through the session: one full-batch SGD step (no momentum) from known weights gives
// w - lr * g * min(1, c / |g|), g the full gradient (Model::loss_and_gradient), for a c that
// clips and one that does not.
TEST(clipnorm_scales_the_gradient_to_its_norm) {
    const std::size_t n = 24;
    const std::vector<float> x = make_data(n, 6, 7);
    const TrainingData data = data_of(x, n);
    Model start = small_model(9);
    std::vector<float> g(start.n_params());
    start.loss_and_gradient(n, x.data(), nullptr, g.data());
    double norm = 0.0;
    for (float v : g) norm += double(v) * double(v);
    norm = std::sqrt(norm);
    CHECK(norm > 0.0);
    OptimizerConfig sgd;
    sgd.kind = OptimizerKind::sgd;
    sgd.momentum = 0.0;
    sgd.learning_rate = 0.5;
    for (double c : {norm / 4, norm * 3}) {
        for (int threads : {1, 2}) {
            Model m = start;
            TrainOptions t = quiet_options(1);
            t.batch_size = int(n);
            t.shuffle = false;
            t.clipnorm = c;
            t.n_threads = threads;
            {
                TrainingSession s(m, data, sgd, t);
                Batch b;
                b.size = n;
                s.apply(s.compute_gradients(b));
            }
            const std::vector<float> before = params_of(start), after = params_of(m);
            const double factor = std::min(1.0, c / norm);
            double worst = 0.0, unclipped_gap = 0.0;
            for (std::size_t i = 0; i < g.size(); ++i) {
                const double want = double(before[i]) - 0.5 * double(g[i]) * factor;
                worst = std::max(worst, std::fabs(double(after[i]) - want));
                unclipped_gap = std::max(unclipped_gap, std::fabs(double(after[i]) - (before[i] - 0.5 * double(g[i]))));
            }
            CHECK(worst < 1e-6);
            if (c < norm) CHECK(unclipped_gap > 1e-3);  // the clip made a difference
        }
    }
}
