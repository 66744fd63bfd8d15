// test_optimizer.cpp -- every update rule of the vocabulary: its first steps against numbers
// computed by hand (independently, in Python's float64, and checked against torch.optim in
// float64: see the comments), against its naive double twin over many elements and steps split
// into ranges as the threads split them, its state slots, resuming from an exported state,
// apply()'s saved previous values and non-finite report, and validate()'s range checks.
#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "check.h"
#include "fastae/model.h"
#include "optimizer.h"

using namespace fastae;
using namespace fastae::detail;

namespace {

// The configurations each kind is tested with (a switch with no default: a new kind does not
// compile until it has its cases here). Fields other kinds use are set to odd values, which the
// rule must ignore.
std::vector<OptimizerConfig> variants_of(OptimizerKind kind) {
    OptimizerConfig c;
    c.kind = kind;
    c.momentum = 0.5;  // used by sgd only
    c.rho = 0.7;       // rmsprop only
    c.weight_decay = 0.2;  // adamw only
    std::vector<OptimizerConfig> out;
    switch (kind) {
        case OptimizerKind::adam:
            out.push_back(c);
            c.beta1 = 0.5;
            c.beta2 = 0.9;
            c.epsilon = 1e-3;
            out.push_back(c);
            break;
        case OptimizerKind::adamw:
            c.weight_decay = 0.1;
            out.push_back(c);
            c.learning_rate = 0.05;
            c.weight_decay = 0.0;  // = Adam
            out.push_back(c);
            break;
        case OptimizerKind::sgd:
            c.learning_rate = 0.05;
            c.momentum = 0.0;
            out.push_back(c);
            c.momentum = 0.8;
            out.push_back(c);
            c.nesterov = true;
            out.push_back(c);
            break;
        case OptimizerKind::rmsprop:
            c.learning_rate = 0.01;
            c.rho = 0.8;
            out.push_back(c);
            c.rho = 0.99;
            c.epsilon = 1e-4;
            out.push_back(c);
            break;
    }
    return out;
}

std::string label(const OptimizerConfig& c) {
    return std::string(name_of(c.kind)) + " lr " + std::to_string(c.learning_rate) + " momentum " +
           std::to_string(c.momentum) + (c.nesterov ? " nesterov" : "") + " rho " + std::to_string(c.rho) +
           " weight_decay " + std::to_string(c.weight_decay);
}

}  // namespace

TEST(adam_two_steps_match_hand_computed_values) {
    // p0 = 1, lr = 0.1, betas (0.9, 0.999), eps 1e-8, gradients 0.5 then -0.25:
    //   t=1: m = 0.05, v = 2.5e-4, p = 1 - 0.1 * 0.5 / (0.5 + 1e-8)           = 0.900000002
    //   t=2: m = 0.02, v = 3.1225e-4, mhat = 0.02 / 0.19, vhat = 3.1225e-4 / 0.001999
    //        p = 0.9 - 0.1 * mhat / (sqrt(vhat) + 1e-8)                           = 0.8733662987
    OptimizerConfig c;
    c.learning_rate = 0.1;
    Optimizer opt(c, 1);
    float p = 1.0f, g = 0.5f;
    opt.step(&p, &g);
    CHECK_NEAR(p, 0.9000000019999999, 1e-7);
    g = -0.25f;
    opt.step(&p, &g);
    CHECK_NEAR(p, 0.8733662987078462, 1e-6);
    CHECK(opt.steps() == 2);
}

TEST(adamw_two_steps_match_hand_computed_values) {
    // torch.optim.AdamW: the weight first decays by 1 - lr * weight_decay, then Adam's step.
    // p0 = 1, lr = 0.1, weight_decay 0.1, betas (0.9, 0.999), eps 1e-8, gradients 0.5 then -0.25:
    //   t=1: p = 1 * (1 - 0.01) = 0.99; m = 0.05, v = 2.5e-4, mhat = 0.5, vhat = 0.25
    //        p = 0.99 - 0.1 * 0.5 / (0.5 + 1e-8)                                = 0.890000002
    //   t=2: p = 0.890000002 * 0.99 = 0.88110000198; m = 0.02, v = 3.1225e-4,
    //        mhat = 0.02 / 0.19 = 0.10526315789473685, vhat = 3.1225e-4 / 0.001999 = 0.15620310155077766
    //        p = 0.88110000198 - 0.1 * mhat / (sqrt(vhat) + 1e-8)                = 0.8544662986878463
    // (torch.optim.AdamW in float64 gives the same two values.)
    OptimizerConfig c;
    c.kind = OptimizerKind::adamw;
    c.learning_rate = 0.1;
    c.weight_decay = 0.1;
    Optimizer opt(c, 1);
    float p = 1.0f, g = 0.5f;
    opt.step(&p, &g);
    CHECK_NEAR(p, 0.890000002, 1e-7);
    g = -0.25f;
    opt.step(&p, &g);
    CHECK_NEAR(p, 0.8544662986878463, 1e-6);
    const OptimizerState s = opt.export_state();
    CHECK(s.steps == 2 && s.m.size() == 1 && s.v.size() == 1);
    CHECK_NEAR(s.m[0], 0.02, 1e-8);
    CHECK_NEAR(s.v[0], 3.1225e-4, 1e-10);
}

TEST(rmsprop_two_steps_match_hand_computed_values) {
    // torch.optim.RMSprop (alpha = rho, not centered, no momentum):
    // p0 = 1, lr = 0.01, rho 0.8, eps 1e-8, gradients 0.5 then -0.25:
    //   s = 0.2 * 0.25 = 0.05, sqrt(s) = 0.22360679774997894
    //   p = 1 - 0.01 * 0.5 / (0.22360679774997894 + 1e-8)                        = 0.9776393212250021
    //   s = 0.8 * 0.05 + 0.2 * 0.0625 = 0.0525, sqrt(s) = 0.22912878474779197
    //   p = 0.9776393212250021 + 0.01 * 0.25 / (0.22912878474779197 + 1e-8)      = 0.9885502152606113
    // (torch.optim.RMSprop in float64 gives the same two values.)
    OptimizerConfig c;
    c.kind = OptimizerKind::rmsprop;
    c.learning_rate = 0.01;
    c.rho = 0.8;
    Optimizer opt(c, 1);
    float p = 1.0f, g = 0.5f;
    opt.step(&p, &g);
    CHECK_NEAR(p, 0.9776393212250021, 1e-7);
    g = -0.25f;
    opt.step(&p, &g);
    CHECK_NEAR(p, 0.9885502152606113, 1e-6);
    const OptimizerState s = opt.export_state();
    CHECK(s.steps == 2 && s.m.size() == 1 && s.v.empty());
    CHECK_NEAR(s.m[0], 0.0525, 1e-8);
}

TEST(sgd_momentum_and_nesterov_match_hand_computed_values) {
    // p0 = 1, lr = 0.1, momentum 0.9, gradients 0.5 then -0.25:
    //   classic : u = 0.5, p = 0.95;   u = 0.2, p = 0.93
    //   nesterov: u = 0.5, p = 1 - 0.1 * (0.5 + 0.45) = 0.905;  u = 0.2, p = 0.905 + 0.007 = 0.912
    for (bool nesterov : {false, true}) {
        OptimizerConfig c;
        c.kind = OptimizerKind::sgd;
        c.learning_rate = 0.1;
        c.momentum = 0.9;
        c.nesterov = nesterov;
        Optimizer opt(c, 1);
        float p = 1.0f, g = 0.5f;
        opt.step(&p, &g);
        CHECK_NEAR(p, nesterov ? 0.905 : 0.95, 1e-7);
        g = -0.25f;
        opt.step(&p, &g);
        CHECK_NEAR(p, nesterov ? 0.912 : 0.93, 1e-6);
    }
    // Plain SGD: p = 1 - 0.1 * 0.5
    OptimizerConfig c;
    c.kind = OptimizerKind::sgd;
    c.learning_rate = 0.1;
    Optimizer opt(c, 1);
    float p = 1.0f, g = 0.5f;
    opt.step(&p, &g);
    CHECK_NEAR(p, 0.95, 1e-7);
}

// Each rule against its naive twin, 20 steps over 1003 values (a vector part and a tail) split
// into two ranges at an odd offset, as threads split them; then the slots against the twin's.
TEST(optimizers_match_naive_twin_over_many_steps) {
    std::mt19937 gen(7);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const std::size_t n = 1003;
    int configs = 0;
    for (OptimizerKind kind : all_optimizers()) {
        for (const OptimizerConfig& c : variants_of(kind)) {
            Optimizer opt(c, n);
            std::vector<float> p(n), g(n);
            for (auto& v : p) v = normal(gen);
            std::vector<double> pd(p.begin(), p.end()), gd(n), s0(n, 0.0), s1(n, 0.0);
            for (int t = 1; t <= 20; ++t) {
                for (std::size_t i = 0; i < n; ++i) {
                    g[i] = normal(gen) * 0.1f;
                    gd[i] = g[i];
                }
                opt.begin_step();
                opt.apply(p.data(), g.data(), 0, 397);
                opt.apply(p.data(), g.data(), 397, n);
                optimizer_step_naive(c, t, n, pd.data(), gd.data(), s0.data(), s1.data());
            }
            double worst = 0;
            for (std::size_t i = 0; i < n; ++i) worst = std::max(worst, std::fabs(p[i] - pd[i]) / (1 + std::fabs(pd[i])));
            if (!(worst <= 2e-5)) fastae_test::fail(__FILE__, __LINE__, label(c) + ": error " + std::to_string(worst));
            const OptimizerState s = opt.export_state();
            const int slots = traits_of(kind).n_slots;
            CHECK(s.steps == 20 && s.config.kind == kind);
            CHECK(s.m.size() == n);
            CHECK(s.v.size() == (slots == 2 ? n : 0));
            for (std::size_t i = 0; i < n; ++i) {
                CHECK_NEAR(s.m[i], s0[i], 1e-5 * (1 + std::fabs(s0[i])));
                if (slots == 2) CHECK_NEAR(s.v[i], s1[i], 1e-5 * (1 + std::fabs(s1[i])));
            }
            ++configs;
        }
    }
    CHECK(configs >= int(all_optimizers().size()));
}

// An optimizer rebuilt from an exported state continues exactly as the original does.
TEST(resuming_from_an_exported_state_continues_bit_for_bit) {
    const std::size_t n = 77;
    for (OptimizerKind kind : all_optimizers()) {
        for (const OptimizerConfig& c : variants_of(kind)) {
            std::mt19937 gen(3);
            std::normal_distribution<float> normal(0.0f, 1.0f);
            Optimizer a(c, n);
            std::vector<float> p(n), g(n);
            for (auto& v : p) v = normal(gen);
            for (int t = 0; t < 3; ++t) {
                for (auto& v : g) v = normal(gen);
                a.step(p.data(), g.data());
            }
            Optimizer b(c, a.export_state());
            std::vector<float> q = p;
            for (int t = 0; t < 3; ++t) {
                for (auto& v : g) v = normal(gen);
                a.step(p.data(), g.data());
                b.step(q.data(), g.data());
            }
            CHECK(p == q);
            CHECK(b.steps() == 6);
        }
    }
}

TEST(apply_saves_previous_values_and_reports_non_finite_results) {
    const std::size_t n = 1003;  // a vector part and a scalar tail
    for (OptimizerKind kind : all_optimizers()) {
        for (const OptimizerConfig& c : variants_of(kind)) {
            for (std::size_t bad_at : {std::size_t(5), std::size_t(1001), n}) {  // n: nothing bad
                Optimizer opt(c, n);
                std::vector<float> p(n), g(n, 0.5f), previous(n, -1.0f);
                for (std::size_t i = 0; i < n; ++i) p[i] = float(i) * 0.01f;
                const std::vector<float> before = p;
                if (bad_at < n) g[bad_at] = std::numeric_limits<float>::infinity();
                opt.begin_step();
                const bool finite_a = opt.apply(p.data(), g.data(), 0, 500, previous.data());
                const bool finite_b = opt.apply(p.data(), g.data(), 500, n, previous.data());
                if (!(previous == before) || finite_a != (bad_at >= 500) || finite_b != (bad_at < 500 || bad_at == n)) {
                    fastae_test::fail(__FILE__, __LINE__, label(c) + ", bad at " + std::to_string(bad_at));
                }
                CHECK(p[7] != before[7]);  // the update ran
                // Without a buffer for them, the previous values are simply not kept.
                Optimizer again(c, n);
                std::vector<float> q = before;
                again.begin_step();
                CHECK(again.apply(q.data(), g.data(), 0, 500) == finite_a);
            }
        }
    }
}

// validate(OptimizerConfig): every kind's fields, each out of range in turn, throw
// std::invalid_argument naming the field; the fields a kind does not use are not its business.
TEST(validate_refuses_each_kinds_bad_fields) {
    auto message = [](const OptimizerConfig& c) -> std::string {
        try {
            validate(c);
        } catch (const std::invalid_argument& e) {
            return e.what();
        }
        return "";
    };
    const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
    for (OptimizerKind kind : all_optimizers()) {
        for (const OptimizerConfig& good : variants_of(kind)) {
            CHECK(message(good).empty());
            for (double lr : {0.0, -1.0, nan, inf}) {
                OptimizerConfig c = good;
                c.learning_rate = lr;
                CHECK(message(c).find("learning_rate") != std::string::npos);
            }
        }
        OptimizerConfig c;
        c.kind = kind;
        auto refused = [&](void (*set)(OptimizerConfig&), const char* field) {
            OptimizerConfig bad = c;
            set(bad);
            const std::string what = message(bad);
            if (what.find(field) == std::string::npos) {
                fastae_test::fail(__FILE__, __LINE__, std::string(name_of(kind)) + ": " + field + " not refused ('" +
                                                          what + "')");
            }
        };
        switch (kind) {
            case OptimizerKind::adam:
            case OptimizerKind::adamw:
                refused([](OptimizerConfig& o) { o.beta1 = 1.0; }, "beta1");
                refused([](OptimizerConfig& o) { o.beta1 = -0.1; }, "beta1");
                refused([](OptimizerConfig& o) { o.beta2 = 1.0; }, "beta2");
                refused([](OptimizerConfig& o) { o.beta2 = std::nan(""); }, "beta2");
                refused([](OptimizerConfig& o) { o.epsilon = 0.0; }, "epsilon");
                if (kind == OptimizerKind::adamw) {
                    refused([](OptimizerConfig& o) { o.weight_decay = -0.1; }, "weight_decay");
                    refused([](OptimizerConfig& o) { o.weight_decay = std::nan(""); }, "weight_decay");
                }
                break;
            case OptimizerKind::sgd:
                refused([](OptimizerConfig& o) { o.momentum = 1.0; }, "momentum");
                refused([](OptimizerConfig& o) { o.momentum = -0.1; }, "momentum");
                refused([](OptimizerConfig& o) { o.nesterov = true; }, "nesterov");  // momentum 0
                break;
            case OptimizerKind::rmsprop:
                refused([](OptimizerConfig& o) { o.rho = 1.0; }, "rho");
                refused([](OptimizerConfig& o) { o.rho = -0.1; }, "rho");
                refused([](OptimizerConfig& o) { o.epsilon = 0.0; }, "epsilon");
                refused([](OptimizerConfig& o) { o.epsilon = std::numeric_limits<double>::infinity(); }, "epsilon");
                break;
        }
    }
    OptimizerConfig outside;
    outside.kind = static_cast<OptimizerKind>(all_optimizers().size());  // not in the vocabulary
    CHECK_THROWS(validate(outside), std::invalid_argument);
}
