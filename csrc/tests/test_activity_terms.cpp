// test_activity_terms.cpp -- input noise (denoising), the L1 activity penalty and the sparsity KL
// on a layer's output: the session's gradient (fastae/training.h, two phases for the KL's
// whole-batch mean) against the naive twin (loss_gradient_naive with the same step context), the
// naive twin against float64 central finite differences of its own loss (the independent check
// of the formulas), and the whole-batch mean being the batch's whatever the thread count.
#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "check.h"
#include "gradient_check.h"
#include "fastae/model.h"
#include "fastae/training.h"
#include "network.h"

using namespace fastae;
using namespace fastae::detail;
using namespace fastae_test;

namespace {

// 10 -> 6 (tanh) -> 4 (sigmoid: the code, with the terms) -> 6 (elu) -> 10 (sigmoid), bce.
NetworkSpec terms_spec(Noise noise, double level, double activity_l1, double sparsity_weight) {
    NetworkSpec spec;
    spec.n_inputs = 10;
    const std::pair<int, Activation> layers[] = {
        {6, Activation::tanh}, {4, Activation::sigmoid}, {6, Activation::elu}, {10, Activation::sigmoid}};
    for (auto [units, act] : layers) {
        LayerSpec l;
        l.units = units;
        l.activation = activation_spec(act);
        spec.layers.push_back(l);
    }
    spec.layers[0].noise = noise;
    spec.layers[0].noise_level = level;
    spec.layers[1].activity_l1 = activity_l1;
    spec.layers[1].sparsity_target = 0.1;
    spec.layers[1].sparsity_weight = sparsity_weight;
    spec.head.loss = Loss::bce;
    return spec;
}

struct Case {
    Noise noise;
    double level, activity_l1, sparsity_weight;
};
const Case kCases[] = {{Noise::gaussian, 0.3, 0.0, 0.0},
                       {Noise::masking, 0.4, 0.0, 0.0},
                       {Noise::none, 0.0, 0.05, 0.0},
                       {Noise::none, 0.0, 0.0, 0.5},
                       {Noise::masking, 0.2, 0.02, 0.3}};

}  // namespace

TEST(session_gradient_matches_naive_twin_with_noise_and_activity_terms) {
    const std::size_t n = 23;
    const auto x = unit_data(n, 10, 1);
    std::vector<std::size_t> rows = {4, 17, 0, 9, 22, 13, 5, 11, 2, 19, 8, 15};  // shuffled, 12 of 23
    for (const Case& c : kCases) {
        for (int threads : {1, 3}) {
            Model model(terms_spec(c.noise, c.level, c.activity_l1, c.sparsity_weight));
            model.init_weights(7);
            double loss = 0;
            const auto grad = session_gradient(model, x, n, threads, rows, 3, &loss);
            std::vector<double> want;
            const double want_loss = naive_gradient(model, x, 10, rows, 3, want);
            CHECK_NEAR(loss, want_loss, 1e-5 * (1 + std::fabs(want_loss)));
            double max_err = 0, max_ref = 0;
            gradient_error(grad, want, &max_err, &max_ref);
            CHECK(max_ref > 0);
            CHECK_NEAR(max_err, 0.0, 2e-6 * (1 + max_ref));
        }
    }
}

// The naive twin's gradient is the derivative of its own loss: central differences in float64,
// with the step context (noise and masks) fixed, so the loss is a deterministic function.
TEST(naive_twin_gradient_matches_finite_differences) {
    const std::size_t n = 9;
    const auto xf = unit_data(n, 10, 2);
    const std::vector<double> x(xf.begin(), xf.end());
    for (const Case& c : kCases) {
        Model model(terms_spec(c.noise, c.level, c.activity_l1, c.sparsity_weight));
        model.init_weights(11);
        const Network net(model.spec());
        std::vector<double> p(model.params(), model.params() + model.n_params());
        const StepContext ctx{5, 1, nullptr, 0, double(n)};
        const double worst = naive_vs_finite_differences(net, p, n, x, ctx, 3);
        CHECK_NEAR(worst, 0.0, 1e-6);
    }
}

// The sparsity KL uses the whole batch's mean: the same loss (and gradient, to rounding) for 1 and
// 4 threads, which would differ if each shard used its own mean.
TEST(sparsity_mean_is_the_whole_batch_s_whatever_the_threads) {
    const std::size_t n = 40;
    const auto x = unit_data(n, 10, 3);
    std::vector<std::size_t> rows(n);
    for (std::size_t i = 0; i < n; ++i) rows[i] = (i * 7) % n;
    std::vector<float> grads[2];
    double losses[2];
    for (int k = 0; k < 2; ++k) {
        Model model(terms_spec(Noise::none, 0.0, 0.0, 2.0));
        model.init_weights(3);
        grads[k] = session_gradient(model, x, n, k == 0 ? 1 : 4, rows, 3, &losses[k]);
    }
    CHECK_NEAR(losses[0], losses[1], 1e-6 * std::fabs(losses[0]));
    for (std::size_t i = 0; i < grads[0].size(); ++i) CHECK_NEAR(grads[0][i], grads[1][i], 1e-6);
}

// Noise is drawn per dataset row: a row's noisy input does not depend on its batch or position.
TEST(input_noise_is_keyed_by_dataset_row) {
    const std::vector<float> x = unit_data(1, 10, 4);
    std::vector<float> a(10), b(10), c(10);
    const StepContext ctx{9, 2, nullptr, 0};
    input_noise(Noise::gaussian, 0.5f, ctx, 31, x.data(), a.data(), 10);
    input_noise(Noise::gaussian, 0.5f, ctx, 31, x.data(), b.data(), 10);
    input_noise(Noise::gaussian, 0.5f, ctx, 32, x.data(), c.data(), 10);
    CHECK(a == b);
    CHECK(a != c);
    // Masking sets about `level` of the inputs to 0 and keeps the others exactly.
    std::vector<float> ones(10000, 1.0f), out(10000);
    input_noise(Noise::masking, 0.25f, ctx, 7, ones.data(), out.data(), 10000);
    const auto zeros = std::count(out.begin(), out.end(), 0.0f);
    CHECK(std::count(out.begin(), out.end(), 1.0f) + zeros == 10000);
    CHECK_NEAR(double(zeros) / 10000.0, 0.25, 0.02);
}

TEST(bad_activity_and_noise_options_are_refused) {
    auto bad = [](auto change) {
        NetworkSpec s = terms_spec(Noise::none, 0.0, 0.0, 0.0);
        change(s);
        return s;
    };
    CHECK_THROWS(Model(bad([](NetworkSpec& s) { s.layers[1].noise = Noise::gaussian; s.layers[1].noise_level = 0.1; })),
                 std::invalid_argument);  // noise past the first layer
    CHECK_THROWS(Model(bad([](NetworkSpec& s) { s.layers[0].noise = Noise::masking; s.layers[0].noise_level = 1.0; })),
                 std::invalid_argument);
    CHECK_THROWS(Model(bad([](NetworkSpec& s) { s.layers[0].noise = Noise::gaussian; s.layers[0].noise_level = -1; })),
                 std::invalid_argument);
    CHECK_THROWS(Model(bad([](NetworkSpec& s) { s.layers[1].activity_l1 = -0.1; })), std::invalid_argument);
    CHECK_THROWS(Model(bad([](NetworkSpec& s) { s.layers[0].sparsity_weight = 1.0; })),
                 std::invalid_argument);  // a tanh layer: not activation rates
    CHECK_THROWS(Model(bad([](NetworkSpec& s) { s.layers[1].sparsity_weight = 1.0; s.layers[1].sparsity_target = 1.0; })),
                 std::invalid_argument);
    CHECK_THROWS(Model(bad([](NetworkSpec& s) { s.layers[3].activity_l1 = 0.1; })),
                 std::invalid_argument);  // the output layer
}
