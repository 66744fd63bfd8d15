// test_update_rules.cpp -- optimizer.h's update rules written once over simd.h's vector traits
// (apply_lanes), run at every width this machine has (widths.h: Vec8, Twin16, Vec16 where the
// build has AVX-512F): every width gives the bits of the rule's formula in scalar float (the order
// the header documents) for p, the state slots, the saved previous values and the finite flag, for
// every tail length 0..31 and lengths past 64, with non-finite gradients, nothing past the end
// read or written; and the results against the rules' naive twins in double. In every build,
// with or without AVX2, the optimizers as training runs them give the scalar formula's bits.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "check.h"
#include "optimizer.h"
#include "test_data.h"
#include "widths.h"

using namespace fastae;
using namespace fastae::detail;
using fastae_test::for_each_width;
using fastae_test::kInf;
using fastae_test::kNaN;
using fastae_test::lengths;
using fastae_test::same_bits;

namespace {

// The rule's formula (optimizer.h) in scalar float, one operation at a time in the order written
// there (the build compiles with -ffp-contract=off, so no operation is fused, and std::sqrt is
// correctly rounded): every build's update, at every width, must give these bits. Constants as
// begin_step forms them.
struct ScalarRule {
    OptimizerConfig c;
    std::int64_t t;
    bool operator()(std::size_t n, float* p, const float* g, float* s0, float* s1, float* previous) const {
        bool finite = true;
        const double lr = c.learning_rate;
        for (std::size_t i = 0; i < n; ++i) {
            if (previous) previous[i] = p[i];
            switch (c.kind) {
                case OptimizerKind::adam:
                case OptimizerKind::adamw: {
                    const double wd = c.kind == OptimizerKind::adamw ? c.weight_decay : 0.0;
                    const float decay = float(1.0 - lr * wd), b1 = float(c.beta1), b2 = float(c.beta2);
                    const float c1 = float(1.0 - c.beta1), c2 = float(1.0 - c.beta2);
                    const float step = float(lr / (1.0 - std::pow(c.beta1, double(t))));
                    const float inv = float(1.0 / std::sqrt(1.0 - std::pow(c.beta2, double(t))));
                    const float pd = p[i] * decay;
                    s0[i] = b1 * s0[i] + c1 * g[i];
                    s1[i] = b2 * s1[i] + c2 * (g[i] * g[i]);
                    p[i] = pd - step * s0[i] / (std::sqrt(s1[i]) * inv + float(c.epsilon));
                    break;
                }
                case OptimizerKind::sgd: {
                    const float lrf = float(lr), mu = float(c.momentum);
                    if (c.momentum == 0) {
                        p[i] = p[i] - lrf * g[i];
                    } else {
                        s0[i] = mu * s0[i] + g[i];
                        p[i] = p[i] - lrf * (c.nesterov ? g[i] + mu * s0[i] : s0[i]);
                    }
                    break;
                }
                case OptimizerKind::rmsprop: {
                    const float lrf = float(lr), rho = float(c.rho), cr = float(1.0 - c.rho);
                    s0[i] = rho * s0[i] + cr * (g[i] * g[i]);
                    p[i] = p[i] - lrf * g[i] / (std::sqrt(s0[i]) + float(c.epsilon));
                    break;
                }
            }
            finite = finite && std::isfinite(p[i]);
        }
        return finite;
    }
};

std::vector<OptimizerConfig> configs() {
    std::vector<OptimizerConfig> out;
    OptimizerConfig c;
    c.learning_rate = 0.01;
    for (OptimizerKind kind : all_optimizers()) {
        c.kind = kind;
        switch (kind) {
            case OptimizerKind::adam:
                out.push_back(c);
                break;
            case OptimizerKind::adamw:
                c.weight_decay = 0.1;
                out.push_back(c);
                break;
            case OptimizerKind::sgd:
                c.momentum = 0.0;
                out.push_back(c);
                c.momentum = 0.9;
                out.push_back(c);
                c.nesterov = true;
                out.push_back(c);
                break;
            case OptimizerKind::rmsprop:
                c.rho = 0.9;
                c.epsilon = 1e-6;
                out.push_back(c);
                break;
        }
    }
    return out;
}

// The state of one run: p, the two slots, previous; each n values plus 16 guard values.
struct State {
    std::vector<float> p, s0, s1, previous;
    bool operator==(const State& o) const {
        return same_bits(p, o.p) && same_bits(s0, o.s0) && same_bits(s1, o.s1) && same_bits(previous, o.previous);
    }
};

}  // namespace

// The update as training runs it (Optimizer::apply: apply_lanes<simd::Widest> where the build has
// AVX2, the Eigen expression elsewhere) gives the scalar formula's bits in every build, split
// into two ranges at every length as the threads split the buffer; its previous values and
// finite flag too.
TEST(production_update_same_bits_as_scalar_formula) {
    for (const OptimizerConfig& c : configs()) {
        for (int n : lengths()) {
            std::mt19937 gen{unsigned(n + 5)};
            std::normal_distribution<float> normal(0.0f, 1.0f);
            const std::size_t size = std::size_t(n);
            std::vector<float> p(size), previous(size, -2.0f), want_previous(size, -2.0f);
            for (float& x : p) x = normal(gen);
            std::vector<float> want = p, s0(size, 0.0f), s1(size, 0.0f);
            Optimizer opt(c, size);
            bool ok = true;
            for (int t = 1; t <= 3; ++t) {
                std::vector<float> g(size);
                for (float& x : g) x = normal(gen) * 0.1f;
                if (t == 2 && n > 3) g[size - 2] = kInf;
                opt.begin_step();
                const std::size_t half = size / 2;
                const bool finite_low = opt.apply(p.data(), g.data(), 0, half, previous.data());
                const bool finite = opt.apply(p.data(), g.data(), half, size, previous.data()) && finite_low;
                ok = ok && finite == ScalarRule{c, t}(size, want.data(), g.data(), s0.data(), s1.data(),
                                                      want_previous.data());
            }
            const OptimizerState state = opt.export_state();
            const bool slots = same_bits(state.m, s0) && (state.v.empty() || same_bits(state.v, s1));
            if (!ok || !slots || !same_bits(p, want) || !same_bits(previous, want_previous)) {
                fastae_test::fail(__FILE__, __LINE__, std::string(name_of(c.kind)) + ", n " + std::to_string(n));
            }
        }
    }
}

#ifdef FASTAE_HAVE_AVX2_MATH

// ---- optimizer.h: the update rules at every width ---------------------------------------------

namespace {

// One update at width V by the rule of c.kind (apply_lanes of its class).
template <class V>
bool apply_at(const OptimizerConfig& c, std::int64_t t, std::size_t n, float* p, const float* g, float* s0, float* s1,
              float* previous) {
    switch (c.kind) {
        case OptimizerKind::adam: {
            Adam rule(c);
            rule.begin_step(t, c.learning_rate);
            return rule.template apply_lanes<V>(n, p, g, s0, s1, previous);
        }
        case OptimizerKind::adamw: {
            AdamW rule(c);
            rule.begin_step(t, c.learning_rate);
            return rule.template apply_lanes<V>(n, p, g, s0, s1, previous);
        }
        case OptimizerKind::sgd: {
            Sgd rule(c);
            rule.begin_step(t, c.learning_rate);
            return rule.template apply_lanes<V>(n, p, g, s0, previous);
        }
        case OptimizerKind::rmsprop: {
            RmsProp rule(c);
            rule.begin_step(t, c.learning_rate);
            return rule.template apply_lanes<V>(n, p, g, s0, previous);
        }
    }
    return false;
}

}  // namespace

// Every rule, every length, three steps (the second with a non-finite gradient in some runs,
// at the start, in the last vector or in the tail): every width gives the scalar formula's bits
// for p, the slots and previous, and its finite flag; the guard values past n stay untouched
// (and a NaN there never reaches the flag). Without a previous buffer the update is the same.
TEST(update_rules_same_bits_at_every_width_as_scalar_formula) {
    int runs = 0;
    for (const OptimizerConfig& c : configs()) {
        for (int n : lengths()) {
            for (int bad : {-1, 0, n - 1, n / 2}) {  // -1: every gradient finite
                if (bad >= n) continue;
                std::mt19937 gen{unsigned(n * 31 + bad + 2)};
                std::normal_distribution<float> normal(0.0f, 1.0f);
                const std::size_t size = std::size_t(n) + 16;
                State start{std::vector<float>(size), std::vector<float>(size), std::vector<float>(size),
                            std::vector<float>(size, -2.0f)};
                for (std::size_t i = 0; i < size; ++i) {
                    start.p[i] = normal(gen);
                    start.s0[i] = normal(gen) * 0.1f;
                    start.s1[i] = std::fabs(normal(gen)) * 0.01f;
                }
                std::vector<std::vector<float>> grads(3, std::vector<float>(size, kNaN));  // NaN past n
                for (auto& g : grads) {
                    for (int i = 0; i < n; ++i) g[std::size_t(i)] = normal(gen) * 0.1f;
                }
                if (bad >= 0) grads[1][std::size_t(bad)] = bad % 2 ? kInf : kNaN;
                State want = start;
                std::vector<bool> want_finite;
                for (int t = 1; t <= 3; ++t) {
                    want_finite.push_back(ScalarRule{c, t}(std::size_t(n), want.p.data(), grads[std::size_t(t - 1)].data(),
                                                          want.s0.data(), want.s1.data(), want.previous.data()));
                }
                for_each_width([&](auto v, const char* name) {
                    using V = decltype(v);
                    State got = start, got_no_previous = start;
                    bool ok = true;
                    for (int t = 1; t <= 3; ++t) {
                        const float* g = grads[std::size_t(t - 1)].data();
                        const bool finite = apply_at<V>(c, t, std::size_t(n), got.p.data(), g, got.s0.data(),
                                                        got.s1.data(), got.previous.data());
                        apply_at<V>(c, t, std::size_t(n), got_no_previous.p.data(), g, got_no_previous.s0.data(),
                                    got_no_previous.s1.data(), nullptr);
                        ok = ok && finite == want_finite[std::size_t(t - 1)];
                    }
                    got_no_previous.previous = got.previous;
                    if (!ok || !(got == want) || !(got_no_previous == want)) {
                        fastae_test::fail(__FILE__, __LINE__, std::string(name) + " " + name_of(c.kind) +
                                                                  ": differs from the scalar formula, n " + std::to_string(n) +
                                                                  " bad at " + std::to_string(bad));
                    }
                });
                if (bad >= 0) CHECK(!want_finite[1]);
                ++runs;
            }
        }
    }
    CHECK(runs > 500);
}

// The rules at every width against their naive twins in double (Adam::naive etc.: bias
// corrections in double, no reassociation), 10 steps over lengths with every tail size.
TEST(update_rules_at_every_width_match_naive_twin) {
    for (const OptimizerConfig& c : configs()) {
        for (int n : {1, 7, 15, 17, 31, 100}) {
            for_each_width([&](auto v, const char* name) {
                using V = decltype(v);
                std::mt19937 gen{unsigned(n)};
                std::normal_distribution<float> normal(0.0f, 1.0f);
                const std::size_t size = std::size_t(n);
                std::vector<float> p(size), g(size), s0(size, 0.0f), s1(size, 0.0f);
                for (float& x : p) x = normal(gen);
                std::vector<double> pd(p.begin(), p.end()), gd(size), s0d(size, 0.0), s1d(size, 0.0);
                for (int t = 1; t <= 10; ++t) {
                    for (std::size_t i = 0; i < size; ++i) gd[i] = g[i] = normal(gen) * 0.1f;
                    CHECK(apply_at<V>(c, t, size, p.data(), g.data(), s0.data(), s1.data(), nullptr));
                    optimizer_step_naive(c, t, size, pd.data(), gd.data(), s0d.data(), s1d.data());
                }
                double worst = 0, worst_slot = 0;  // relative errors
                for (std::size_t i = 0; i < size; ++i) {
                    worst = std::max(worst, std::fabs(p[i] - pd[i]) / (1 + std::fabs(pd[i])));
                    worst_slot = std::max(worst_slot, std::fabs(s0[i] - s0d[i]) / (1e-3 + std::fabs(s0d[i])));
                    worst_slot = std::max(worst_slot, std::fabs(s1[i] - s1d[i]) / (1e-6 + std::fabs(s1d[i])));
                }
                if (!(worst <= 2e-5 && worst_slot <= 1e-4)) {
                    fastae_test::fail(__FILE__, __LINE__, std::string(name) + " " + name_of(c.kind) + ", n " +
                                                              std::to_string(n) + ": error " + std::to_string(worst) +
                                                              ", slots " + std::to_string(worst_slot));
                }
            });
        }
    }
}

#endif  // builds without AVX2 have no vector kernels: their Eigen versions are tested elsewhere
