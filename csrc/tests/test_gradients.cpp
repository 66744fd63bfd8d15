// test_gradients.cpp -- the naive network gradient (loss_gradient_naive) against central finite
// differences of its own loss in float64, for every hidden activation and every valid (loss,
// output activation) pair from the vocabulary's traits, with sample weights and with dropout (with
// a fixed step context the masks are fixed, so the loss is a smooth function of the parameters);
// then the fast float32 gradient against that float64 one.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "check.h"
#include "network.h"
#include "test_data.h"

using namespace fastae;
using namespace fastae::detail;
using fastae_test::Head;
using fastae_test::Hidden;

namespace {

// Largest |finite difference - analytic| over every parameter, relative to the gradient's largest
// entry (a per-element ratio would divide roundoff by near-zero entries).
double max_fd_error(const NetworkSpec& spec, bool weighted, const StepContext* context, unsigned seed) {
    Network net(spec);
    const std::size_t n = 5;
    const int d_in = net.width(0), d_out = net.width(net.n_layers());
    std::vector<double> p = fastae_test::random_doubles(net.n_params(), -0.8, 0.8, seed);
    const std::vector<double> x = fastae_test::random_doubles(n * std::size_t(d_in), 0.05, 0.95, seed + 1);
    const std::vector<double> y = fastae_test::targets_for<double>(spec.head.loss, n, d_out, seed + 2);
    std::vector<double> w = fastae_test::random_doubles(n, 0.2, 2.0, seed + 3);
    w[1] = 0.0;
    const double* weight = weighted ? w.data() : nullptr;
    std::vector<double> grad(net.n_params()), scratch(net.n_params());
    loss_gradient_naive(net, p.data(), n, x.data(), y.data(), weight, context, grad.data());
    const double h = 1e-6;
    double worst = 0, largest = 0;
    for (std::size_t i = 0; i < p.size(); ++i) {
        const double keep = p[i];
        p[i] = keep + h;
        const double up = loss_gradient_naive(net, p.data(), n, x.data(), y.data(), weight, context, scratch.data());
        p[i] = keep - h;
        const double down = loss_gradient_naive(net, p.data(), n, x.data(), y.data(), weight, context, scratch.data());
        p[i] = keep;
        const double fd = (up - down) / (2 * h);
        worst = std::max(worst, std::fabs(fd - grad[i]));
        largest = std::max(largest, std::fabs(grad[i]));
    }
    return largest > 0 ? worst / largest : 1.0;
}

}  // namespace

// Every hidden activation (each network: that activation, then the next one in the vocabulary,
// so each also sits under another) with every valid head; every other case with sample weights
// (one of them 0) and every other pair of cases with dropout on both hidden layers.
TEST(finite_differences_every_activation_and_loss) {
    const std::vector<Activation> hidden = fastae_test::hidden_activations();
    const std::size_t rows[5] = {31, 2, 900, 7, 64};
    const StepContext context{99, 2, rows, 0};
    int cases = 0;
    for (std::size_t k = 0; k < hidden.size(); ++k) {
        for (Head head : fastae_test::valid_heads()) {
            const bool weighted = cases % 2 == 1, dropout = cases % 4 >= 2;
            const double rate = dropout ? 0.4 : 0.0;
            NetworkSpec spec = fastae_test::make_spec(
                6, {Hidden{4, fastae_test::test_activation(hidden[k]), rate},
                    Hidden{3, fastae_test::test_activation(hidden[(k + 1) % hidden.size()]), rate}},
                5, head);
            spec.head.huber_delta = 0.3;
            const double error = max_fd_error(spec, weighted, dropout ? &context : nullptr, 11 + unsigned(cases));
            if (!(error <= 1e-6)) {
                fastae_test::fail(__FILE__, __LINE__,
                                  std::string("hidden ") + name_of(hidden[k]) + ", " + name_of(head.loss) + " on " +
                                      name_of(head.out) + (weighted ? ", weighted" : "") + (dropout ? ", dropout" : "") +
                                      ": relative error " + std::to_string(error));
            }
            ++cases;
        }
    }
    CHECK(cases == int(hidden.size() * fastae_test::valid_heads().size()));
}

// A dropout network's loss with a fixed step context does depend on the context (the masks are
// applied), and one without any context is the loss without dropout.
TEST(dropout_context_changes_the_naive_loss) {
    NetworkSpec spec = fastae_test::make_spec(
        6, {Hidden{8, activation_spec(Activation::relu), 0.5}, Hidden{4, activation_spec(Activation::tanh)}}, 6,
        Head{Loss::mse, Activation::linear});
    NetworkSpec plain = spec;
    plain.layers[0].dropout = 0.0;
    Network net(spec), net_plain(plain);
    const std::size_t n = 4;
    const auto p = fastae_test::random_doubles(net.n_params(), -0.8, 0.8, 1);
    const auto x = fastae_test::random_doubles(n * 6, 0.0, 1.0, 2);
    std::vector<double> g(net.n_params());
    const StepContext a{1, 1, nullptr, 0}, b{1, 2, nullptr, 0};
    const double with_a = loss_gradient_naive(net, p.data(), n, x.data(), x.data(), nullptr, &a, g.data());
    const double with_b = loss_gradient_naive(net, p.data(), n, x.data(), x.data(), nullptr, &b, g.data());
    const double without = loss_gradient_naive(net, p.data(), n, x.data(), x.data(), nullptr, nullptr, g.data());
    const double reference = loss_gradient_naive(net_plain, p.data(), n, x.data(), x.data(), nullptr, &a, g.data());
    CHECK(with_a != with_b);
    CHECK(with_a != without);
    CHECK(without == reference);
}

TEST(float32_gradient_matches_float64_gradient) {
    // The fast float32 kernel against the float64 gradient that finite differences vouch for.
    NetworkConfig cfg;
    cfg.layer_sizes = {20, 8, 20};
    Network net(to_spec(cfg));
    const std::size_t n = 16;
    const std::vector<float> p = fastae_test::random_vector(net.n_params(), -0.5f, 0.5f, 3);
    const std::vector<float> x = fastae_test::random_vector(n * 20, 0.0f, 1.0f, 4);
    std::vector<double> pd(p.begin(), p.end()), xd(x.begin(), x.end()), want(net.n_params());
    loss_gradient_naive(net, pd.data(), n, xd.data(), xd.data(), nullptr, nullptr, want.data());
    Workspace ws(net, n);
    std::vector<float> grad(net.n_params());
    loss_gradient_batch(net, p.data(), ConstMatrixMap(x.data(), 20, n), ConstMatrixMap(x.data(), 20, n),
                        ColumnScale{1.0f / float(n * 20), nullptr}, nullptr, ws, grad.data());
    for (std::size_t i = 0; i < grad.size(); ++i) CHECK_NEAR(grad[i], want[i], 1e-6 + 1e-4 * std::fabs(want[i]));
}
