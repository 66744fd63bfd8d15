// test_optimizer.cpp -- Adam and SGD steps against numbers computed by hand (independently, in
// Python's float64: see the comments) and against the naive double twin over many elements.
#include <limits>
#include <random>
#include <vector>

#include "check.h"
#include "optimizer.h"

using namespace fastae;
using namespace fastae::detail;

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

TEST(optimizers_match_naive_twin_over_many_steps) {
    std::mt19937 gen(7);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const std::size_t n = 1003;  // not a multiple of any vector width
    for (int variant = 0; variant < 4; ++variant) {
        OptimizerConfig c;
        if (variant > 0) {
            c.kind = OptimizerKind::sgd;
            c.learning_rate = 0.05;
            c.momentum = variant == 1 ? 0.0 : 0.8;
            c.nesterov = variant == 3;
        }
        Optimizer opt(c, n);
        std::vector<float> p(n), g(n);
        for (auto& v : p) v = normal(gen);
        std::vector<double> pd(p.begin(), p.end()), gd(n), m(n, 0.0), v(n, 0.0);
        for (int t = 1; t <= 20; ++t) {
            for (std::size_t i = 0; i < n; ++i) {
                g[i] = normal(gen) * 0.1f;
                gd[i] = g[i];
            }
            // Split the update over two ranges, as the threads do.
            opt.begin_step();
            opt.apply(p.data(), g.data(), 0, 400);
            opt.apply(p.data(), g.data(), 400, n);
            optimizer_step_naive(c, t, n, pd.data(), gd.data(), m.data(), v.data());
        }
        for (std::size_t i = 0; i < n; ++i) CHECK_NEAR(p[i], pd[i], 2e-5 * (1 + std::fabs(pd[i])));
    }
}

TEST(apply_saves_previous_values_and_reports_non_finite_results) {
    const std::size_t n = 1003;  // a vector part and a scalar tail
    for (OptimizerKind kind : {OptimizerKind::adam, OptimizerKind::sgd}) {
        OptimizerConfig c;
        c.kind = kind;
        for (std::size_t bad_at : {std::size_t(5), std::size_t(1001), n}) {  // n: nothing bad
            Optimizer opt(c, n);
            std::vector<float> p(n), g(n, 0.5f), previous(n, -1.0f);
            for (std::size_t i = 0; i < n; ++i) p[i] = float(i) * 0.01f;
            const std::vector<float> before = p;
            if (bad_at < n) g[bad_at] = std::numeric_limits<float>::infinity();
            opt.begin_step();
            const bool finite_a = opt.apply(p.data(), g.data(), 0, 500, previous.data());
            const bool finite_b = opt.apply(p.data(), g.data(), 500, n, previous.data());
            CHECK(previous == before);
            CHECK(finite_a == (bad_at >= 500));
            CHECK(finite_b == (bad_at < 500 || bad_at == n));
            CHECK(p[7] != before[7]);  // the update ran
        }
    }
}
